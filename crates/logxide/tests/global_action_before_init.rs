//! An action started with no global logger writes nowhere, and so is no parent: what is
//! logged inside it after an `init` makes tasks of its own. Its own process (one test): it
//! installs the global logger.

/// A `start_action!` before `init` (one around `main`'s work, say) stayed entered, so every
/// record and action logged inside it once the logger was installed took a position in its
/// task, whose start (and end) went nowhere: the file had a task tree without its root
/// (`"lvl":[2]` first), and a context taken from it continued that tree elsewhere. They are
/// tasks of their own now.
#[test]
fn an_action_started_before_init_is_no_parent() {
    let mem = logxide::sink::MemorySink::new();
    let early = logxide::start_action!("before:init");
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    logxide::info!("after init");
    drop(logxide::start_action!("child"));
    let ctx = early.context();
    assert_eq!(ctx.level(), &[1]);
    let remote = guard.logger().continue_action(&ctx, "remote", |_| {});
    drop(remote);
    drop(early);
    logxide::logger::flush(None).unwrap();
    let lines = mem.lines();
    let tid = |line: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["tid"].as_str().unwrap().to_owned()
    };
    let ends: Vec<&str> = lines
        .iter()
        .map(|l| &l[l.find(r#""lvl""#).unwrap()..])
        .collect();
    assert_eq!(ends.len(), 5, "{lines:#?}");
    assert_eq!(ends[0], r#""lvl":[1],"mt":"info","msg":"after init"}"#);
    assert_eq!(ends[1], r#""lvl":[1],"at":"child","st":"started"}"#);
    assert!(ends[2].starts_with(r#""lvl":[2],"at":"child","st":"succeeded","dur":"#));
    assert_eq!(ends[3], r#""lvl":[1,1],"at":"remote","st":"started"}"#);
    assert!(ends[4].starts_with(r#""lvl":[1,2],"at":"remote","st":"succeeded","dur":"#));
    assert_eq!(tid(&lines[1]), tid(&lines[2]));
    assert_eq!(tid(&lines[3]), tid(&lines[4]));
    assert_eq!(tid(&lines[3]), ctx.task_id().as_str());
    let tids: std::collections::HashSet<String> = lines.iter().map(|l| tid(l)).collect();
    assert_eq!(tids.len(), 3, "{lines:#?}");
    drop(guard);
}
