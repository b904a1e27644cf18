//! The `log` bridge, installed as the process's `log` logger (once: one test).
#![cfg(feature = "log")]

use logxide::sink::MemorySink;
use serde_json::Value;

#[test]
fn log_records_land_in_logxide_with_their_metadata_and_key_values() {
    let mem = MemorySink::new();
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .set("level", "info")
        .unwrap()
        .sink(mem.clone())
        .init()
        .unwrap();
    logxide::integrations::log::install().unwrap();
    assert!(logxide::integrations::log::install().is_err(), "only once");

    log::trace!("below the threshold");
    log::debug!("below the threshold too");
    log::info!(target: "pool", "connected to {} in {}ms", "db1", 12);
    log::warn!(user_id = 42, ratio = 0.5, ok = true, name = "ada", neg = -3; "plain message");
    log::error!("failed: {:?}", "quote\"d\nline");
    {
        let _a = logxide::start_action!("job");
        log::info!("inside an action");
    }
    logxide::logger::flush(None).unwrap();
    let recs: Vec<serde_json::Map<String, Value>> = mem
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let msgs: Vec<&str> = recs
        .iter()
        .filter_map(|r| r.get("msg").and_then(Value::as_str))
        .collect();
    assert_eq!(
        msgs,
        [
            "connected to db1 in 12ms",
            "plain message",
            "failed: \"quote\\\"d\\nline\"",
            "inside an action"
        ]
    );
    assert_eq!(recs[0]["mt"], "info");
    assert_eq!(recs[0]["target"], "pool");
    assert_eq!(recs[0]["file"], "crates/logxide/tests/log_bridge.rs");
    assert!(recs[0]["line"].is_u64());
    assert_eq!(recs[0]["module"], "log_bridge");
    assert_eq!(recs[1]["mt"], "warning");
    assert_eq!(recs[1]["user_id"], 42);
    assert_eq!(recs[1]["ratio"], 0.5);
    assert_eq!(recs[1]["ok"], true);
    assert_eq!(recs[1]["name"], "ada");
    assert_eq!(recs[1]["neg"], -3);
    assert_eq!(recs[2]["mt"], "error");
    // Inside an action, a `log` record takes the next position of its task.
    assert_eq!(recs[4]["lvl"], serde_json::json!([2]));
    assert_eq!(recs[4]["tid"], recs[3]["tid"]);
    drop(guard);
    logxide::logger::shutdown(None);
}
