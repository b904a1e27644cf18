//! The `tracing` layer: spans as actions, events as messages, in consistent task trees.
#![cfg(feature = "tracing")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use common::{logger, Members};
use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::MemorySink;
use logxide::Logger;
use serde_json::Value;
use tracing::instrument::WithSubscriber;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Runs `f` with a registry and the layer as the thread's subscriber; returns the lines.
fn capture(f: impl FnOnce(&Logger)) -> Vec<String> {
    let (log, mem) = logger();
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    tracing::subscriber::with_default(subscriber, || f(&log));
    log.flush(None).unwrap();
    mem.lines()
}

/// The value text after `"key":` in `line`, as a byte range.
fn value_range(line: &str, key: &str) -> Option<(usize, usize)> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let len = if let Some(s) = rest.strip_prefix('"') {
        s.find('"').unwrap() + 2
    } else {
        rest.find([',', '}']).unwrap()
    };
    Some((start, start + len))
}

/// `ts` and `dur` → 0, task ids → `T0`, `T1`, … in order of appearance; key order kept.
fn normalized(lines: &[String]) -> Vec<String> {
    let mut tids: Vec<String> = Vec::new();
    lines
        .iter()
        .map(|line| {
            let mut line = line.clone();
            for key in ["ts", "dur"] {
                if let Some((a, b)) = value_range(&line, key) {
                    assert!(line[a..b].parse::<f64>().is_ok(), "{line}");
                    line.replace_range(a..b, "0");
                }
            }
            let (a, b) = value_range(&line, "tid").unwrap();
            let tid = line[a..b].to_owned();
            let n = tids.iter().position(|t| *t == tid).unwrap_or_else(|| {
                tids.push(tid);
                tids.len() - 1
            });
            line.replace_range(a..b, &format!("\"T{n}\""));
            line
        })
        .collect()
}

const TARGET: &str = r#""target":"tracing_layer""#;

#[test]
fn nested_spans_with_events_are_a_task_tree() {
    let lines = capture(|_| {
        tracing::info!(user_id = 123, "standalone message");
        let request = tracing::info_span!("http:request", path = "/api");
        let _r = request.enter();
        tracing::info!("inside request");
        {
            let query = tracing::debug_span!("db:query", sql = "SELECT 1");
            let _q = query.enter();
            tracing::debug!(rows = 1, "rows fetched");
            tracing::trace!("trace is debug");
        }
        tracing::warn!("after the query");
    });
    let t = TARGET;
    let expected = [
        format!(
            r#"{{"ts":0,"tid":"T0","lvl":[1],"mt":"info","msg":"standalone message","user_id":123,{t}}}"#
        ),
        r#"{"ts":0,"tid":"T1","lvl":[1],"at":"http:request","st":"started","path":"/api"}"#
            .to_owned(),
        format!(r#"{{"ts":0,"tid":"T1","lvl":[2],"mt":"info","msg":"inside request",{t}}}"#),
        r#"{"ts":0,"tid":"T1","lvl":[3,1],"at":"db:query","st":"started","sql":"SELECT 1"}"#
            .to_owned(),
        format!(
            r#"{{"ts":0,"tid":"T1","lvl":[3,2],"mt":"debug","msg":"rows fetched","rows":1,{t}}}"#
        ),
        format!(r#"{{"ts":0,"tid":"T1","lvl":[3,3],"mt":"debug","msg":"trace is debug",{t}}}"#),
        r#"{"ts":0,"tid":"T1","lvl":[3,4],"at":"db:query","st":"succeeded","dur":0}"#.to_owned(),
        format!(r#"{{"ts":0,"tid":"T1","lvl":[4],"mt":"warning","msg":"after the query",{t}}}"#),
        r#"{"ts":0,"tid":"T1","lvl":[5],"at":"http:request","st":"succeeded","dur":0}"#.to_owned(),
    ];
    assert_eq!(normalized(&lines), expected);
}

#[test]
fn a_span_with_an_error_field_fails() {
    let lines = capture(|_| {
        let span = tracing::info_span!(
            "db:query",
            table = "users",
            error = tracing::field::Empty,
            error.type = tracing::field::Empty,
            rows = tracing::field::Empty,
        );
        let _s = span.enter();
        span.record("rows", 0);
        span.record("error", "no such table");
        span.record("error.type", "sqlite::Error");
    });
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"db:query","st":"started","table":"users"}"#,
            r#"{"ts":0,"tid":"T0","lvl":[2],"at":"db:query","st":"failed","exc":"sqlite::Error","reason":"no such table","dur":0,"rows":0}"#,
        ]
    );

    // An error value: its source chain is the reason; without `error.type`, exc is "error".
    let lines = capture(|_| {
        let err = std::io::Error::other(std::fmt::Error);
        let span = tracing::info_span!("job", error = &err as &(dyn std::error::Error + 'static));
        span.in_scope(|| {});
    });
    let lines = normalized(&lines);
    assert!(lines[1].ends_with(
        r#""lvl":[2],"at":"job","st":"failed","exc":"error","reason":"an error occurred when formatting an argument","dur":0}"#
    ), "{lines:?}");
}

/// `error = false` (the flag convention's "no error") is no failure: the span succeeds with
/// the field written as such; `error = true` fails it.
#[test]
fn an_error_field_of_false_is_no_failure() {
    let lines = capture(|_| {
        let span = tracing::info_span!("ok", error = tracing::field::Empty);
        span.in_scope(|| {});
        span.record("error", false);
        drop(span);
        tracing::info_span!("flagged", error = true).in_scope(|| {});
        tracing::info_span!("clean", error = false).in_scope(|| {});
    });
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"ok","st":"started"}"#,
            r#"{"ts":0,"tid":"T0","lvl":[2],"at":"ok","st":"succeeded","dur":0,"error":false}"#,
            r#"{"ts":0,"tid":"T1","lvl":[1],"at":"flagged","st":"started","error":true}"#,
            r#"{"ts":0,"tid":"T1","lvl":[2],"at":"flagged","st":"failed","exc":"error","reason":"true","dur":0}"#,
            r#"{"ts":0,"tid":"T2","lvl":[1],"at":"clean","st":"started","error":false}"#,
            r#"{"ts":0,"tid":"T2","lvl":[2],"at":"clean","st":"succeeded","dur":0}"#,
        ]
    );
}

#[test]
fn an_error_event_makes_its_span_fail() {
    let lines = capture(|_| {
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        {
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            tracing::error!(code = 7, "disk full");
            tracing::error!("second error, not the reason");
        }
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"inner","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2],"mt":"error","msg":"disk full","code":7,{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,3],"mt":"error","msg":"second error, not the reason",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[2,4],"at":"inner","st":"failed","exc":"error","reason":"disk full","dur":0}"#.to_owned(),
            // Only the event's own span fails.
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"outer","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

/// The message of an ERROR event inside a span is formatted once, though it is both the
/// record's `msg` and the span's failure `reason`: a `Display` with side effects runs once.
#[test]
fn an_error_events_message_is_formatted_once() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl std::fmt::Display for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            CALLS.fetch_add(1, SeqCst);
            f.write_str("counted")
        }
    }
    let lines = capture(|_| {
        let span = tracing::info_span!("work");
        let _e = span.enter();
        tracing::error!("{}", Counted);
    });
    assert_eq!(CALLS.load(SeqCst), 1);
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"work","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"error","msg":"counted",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"work","st":"failed","exc":"error","reason":"counted","dur":0}"#.to_owned(),
        ]
    );
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Point {
    x: i32,
}

#[test]
fn fields_keep_their_types() {
    let lines = capture(|_| {
        let span =
            tracing::info_span!("typed", big = u64::MAX, neg = -5i64, on = true, ratio = 0.5);
        let _s = span.enter();
        let err = std::io::Error::other("boom");
        tracing::info!(
            i = -3i64,
            u = 42u64,
            huge = 1u128 << 100,
            f = 1.25f64,
            nan = f64::NAN,
            b = false,
            s = "text",
            d = ?Point { x: 1 },
            shown = %std::net::Ipv4Addr::LOCALHOST,
            e = &err as &(dyn std::error::Error + 'static),
            "values {}", 7
        );
    });
    let lines = normalized(&lines);
    assert_eq!(
        lines[0],
        r#"{"ts":0,"tid":"T0","lvl":[1],"at":"typed","st":"started","big":18446744073709551615,"neg":-5,"on":true,"ratio":0.5}"#
    );
    let rec: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(rec["msg"], "values 7");
    assert_eq!(rec["i"], -3);
    assert_eq!(rec["u"], 42);
    assert!(lines[1].contains(&format!(r#""huge":{},"#, 1u128 << 100)));
    assert_eq!(rec["f"], 1.25);
    assert!(
        !rec["nan"].is_number(),
        "non-finite: valid JSON, not a number"
    );
    assert_eq!(rec["b"], false);
    assert_eq!(rec["s"], "text");
    assert_eq!(rec["d"], "Point { x: 1 }");
    assert_eq!(rec["shown"], "127.0.0.1");
    assert_eq!(rec["e"], "boom");
    assert_eq!(rec["target"], "tracing_layer");
    assert!(rec.get("message").is_none());
}

#[test]
fn a_span_never_entered_still_starts_and_ends_and_explicit_parents_are_kept() {
    let lines = capture(|_| {
        let parent = tracing::info_span!("parent");
        // Never entered: its child is started under it all the same.
        let child = tracing::info_span!(parent: &parent, "child", n = 1);
        tracing::info!(parent: &child, "explicit parent");
        tracing::info!(parent: None, "explicit root");
        drop(child);
        let lonely = tracing::info_span!("lonely");
        drop(lonely);
        drop(parent);
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"parent","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"child","st":"started","n":1}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2],"mt":"info","msg":"explicit parent",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T1","lvl":[1],"mt":"info","msg":"explicit root",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[2,3],"at":"child","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T2","lvl":[1],"at":"lonely","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T2","lvl":[2],"at":"lonely","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"parent","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

#[test]
fn logxide_records_and_actions_nest_with_spans() {
    let lines = capture(|log| {
        let _native = log.start_action("native", |_| {});
        let span = tracing::info_span!("span");
        let _s = span.enter();
        logxide::info!(logger: log, "macro inside the span");
        {
            let _inner = logxide::start_action!(logger: log, "inner");
            tracing::info!("event inside the inner action");
            tracing::info_span!("nested").in_scope(|| {});
        }
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"native","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"span","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,2],"mt":"info","msg":"macro inside the span"}"#
                .to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,3,1],"at":"inner","st":"started"}"#.to_owned(),
            format!(
                r#"{{"ts":0,"tid":"T0","lvl":[2,3,2],"mt":"info","msg":"event inside the inner action",{t}}}"#
            ),
            r#"{"ts":0,"tid":"T0","lvl":[2,3,3,1],"at":"nested","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,3,3,2],"at":"nested","st":"succeeded","dur":0}"#
                .to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,3,4],"at":"inner","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,4],"at":"span","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"native","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

/// Counts what reaches it, to check the layer composes with others.
#[derive(Default, Clone)]
struct Counting {
    events: Arc<AtomicUsize>,
    spans: Arc<AtomicUsize>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Counting {
    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        self.events.fetch_add(1, Relaxed);
    }
    fn on_new_span(&self, _: &tracing::span::Attributes<'_>, _: &tracing::Id, _: Context<'_, S>) {
        self.spans.fetch_add(1, Relaxed);
    }
}

#[test]
fn works_alongside_another_layer() {
    let (log, mem) = logger();
    log.set_level(logxide::Level::Info);
    let counting = Counting::default();
    let subscriber = tracing_subscriber::registry()
        .with(LogxideLayer::new(log.clone()))
        .with(counting.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("a").in_scope(|| {
            tracing::info!("one");
            tracing::debug!("below logxide's threshold, still seen by the other layer");
            tracing::info_span!("b").in_scope(|| tracing::warn!("two"));
        });
    });
    log.flush(None).unwrap();
    assert_eq!(counting.events.load(Relaxed), 3);
    assert_eq!(counting.spans.load(Relaxed), 2);
    let lines = normalized(&mem.lines());
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[1].contains(r#""lvl":[2],"mt":"info","msg":"one""#));
    assert!(lines[3].contains(r#""lvl":[3,2],"mt":"warning","msg":"two""#));
    assert!(lines[5].contains(r#""lvl":[4],"at":"a","st":"succeeded""#));
}

/// Checks that the records of one task form a consistent Eliot tree, and that each action's
/// end record comes after everything inside it.
fn check_tree(records: &[&Value]) {
    let levels: Vec<Vec<u64>> = records
        .iter()
        .map(|r| {
            r["lvl"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect()
        })
        .collect();
    // Prefix → the positions occupied under it.
    let mut children: BTreeMap<Vec<u64>, Vec<u64>> = BTreeMap::new();
    for level in &levels {
        for depth in 0..level.len() {
            let under = children.entry(level[..depth].to_vec()).or_default();
            if !under.contains(&level[depth]) {
                under.push(level[depth]);
            }
        }
    }
    for (prefix, positions) in &children {
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        let n = sorted.len() as u64;
        assert_eq!(
            sorted,
            (1..=n).collect::<Vec<_>>(),
            "positions under {prefix:?}"
        );
        let at = |last: u64| {
            let mut l = prefix.clone();
            l.push(last);
            levels.iter().position(|x| *x == l)
        };
        let first = at(1).unwrap_or_else(|| panic!("no start under {prefix:?}"));
        if n > 1 || !prefix.is_empty() {
            let end = at(n).unwrap_or_else(|| panic!("no end under {prefix:?}"));
            assert_eq!(records[first]["st"], "started", "{prefix:?}");
            assert!(matches!(
                records[end]["st"].as_str(),
                Some("succeeded" | "failed")
            ));
            assert_eq!(records[first]["at"], records[end]["at"]);
            // The end record is the last of the action's records in the file.
            let last_inside = levels
                .iter()
                .rposition(|x| x.starts_with(prefix) && x.len() > prefix.len())
                .unwrap();
            assert_eq!(last_inside, end, "end of {prefix:?} is not last");
            assert_eq!(
                first,
                levels.iter().position(|x| x.starts_with(prefix)).unwrap()
            );
        }
    }
}

#[test]
fn instrumented_futures_on_a_multi_threaded_runtime_keep_their_trees() {
    use tracing::Instrument;

    let (log, mem) = logger();
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let mut handles = Vec::new();
            for task in 0..20u64 {
                let dispatch = tracing::dispatcher::get_default(|d| d.clone());
                let span = tracing::info_span!("worker", task);
                let fut = async move {
                    for step in 0..5u64 {
                        let thread = format!("{:?}", std::thread::current().id());
                        tracing::info!(task, step, thread, "step");
                        if step % 2 == 0 {
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let inner = tracing::debug_span!("inner", task, step);
                        async {
                            tokio::task::yield_now().await;
                            tracing::debug!(task, step, "inside inner");
                        }
                        .instrument(inner)
                        .await;
                    }
                    if task % 5 == 0 {
                        tracing::error!(task, "task failed");
                    }
                }
                .instrument(span);
                // Each worker thread needs the subscriber: tasks carry it with them.
                handles.push(tokio::spawn(fut.with_subscriber(dispatch)));
            }
            for h in handles {
                h.await.unwrap();
            }
        });
    });
    drop(runtime);
    log.flush(None).unwrap();

    let records: Vec<Value> = mem
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 20 * (2 + 5 + 5 * 3) + 4);
    // The task id of each worker span's start.
    let mut task_tid: HashMap<u64, &str> = HashMap::new();
    for r in &records {
        if r["at"] == "worker" && r["st"] == "started" {
            assert!(task_tid
                .insert(r["task"].as_u64().unwrap(), r["tid"].as_str().unwrap())
                .is_none());
            assert_eq!(r["lvl"], serde_json::json!([1]));
        }
    }
    assert_eq!(task_tid.len(), 20);
    let mut by_tid: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in &records {
        let task = r["task"].as_u64();
        let tid = r["tid"].as_str().unwrap();
        if let Some(task) = task {
            assert_eq!(
                task_tid[&task], tid,
                "record of task {task} in another task: {r}"
            );
        }
        by_tid.entry(tid).or_default().push(r);
    }
    assert_eq!(by_tid.len(), 20);
    let migrated = by_tid
        .values()
        .filter(|recs| {
            let mut threads: Vec<&str> = recs.iter().filter_map(|r| r["thread"].as_str()).collect();
            threads.dedup();
            threads.len() > 1
        })
        .count();
    eprintln!("tasks polled on more than one thread: {migrated} of 20");
    for (tid, recs) in &by_tid {
        check_tree(recs);
        let task = recs[0]["task"].as_u64().unwrap();
        let end = recs.last().unwrap();
        assert_eq!(end["at"], "worker", "{tid}");
        let expected = if task % 5 == 0 { "failed" } else { "succeeded" };
        assert_eq!(end["st"], expected, "{tid}");
        assert_eq!(
            end["lvl"],
            serde_json::json!([2 + 5 * 2 + u64::from(task % 5 == 0)])
        );
    }
}

/// The only test of this file that touches the global logger.
#[test]
fn the_global_layer_follows_the_global_logger() {
    let mem = MemorySink::new();
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("job", n = 2).in_scope(|| {
            tracing::info!("through tracing");
            logxide::info!("through the macro");
        });
    });
    logxide::logger::flush(None).unwrap();
    drop(guard);
    let t = TARGET;
    assert_eq!(
        normalized(&mem.lines()),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"job","st":"started","n":2}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"through tracing",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3],"mt":"info","msg":"through the macro"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[4],"at":"job","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

#[test]
fn a_span_entered_on_two_threads_at_once_and_reentered() {
    let lines = capture(|_| {
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let span = tracing::info_span!("shared");
        let _outer = span.enter();
        {
            let _again = span.enter();
            tracing::info!("re-entered");
        }
        tracing::info!("still inside");
        std::thread::scope(|s| {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _there = span.enter();
                    tracing::info!("on another thread");
                });
            });
        });
    });
    let lines = normalized(&lines);
    let expected_tail = [
        r#""lvl":[1],"at":"shared","st":"started"}"#,
        r#""lvl":[2],"mt":"info","msg":"re-entered","#,
        r#""lvl":[3],"mt":"info","msg":"still inside","#,
        r#""lvl":[4],"mt":"info","msg":"on another thread","#,
        r#""lvl":[5],"at":"shared","st":"succeeded","#,
    ];
    assert_eq!(lines.len(), expected_tail.len(), "{lines:?}");
    for (line, part) in lines.iter().zip(expected_tail) {
        assert!(
            line.contains(r#""tid":"T0""#) && line.contains(part),
            "{line}"
        );
    }
}

/// Event keys are spelled once per field name and cached: the spelling must stay exactly
/// what the encoder writes for a run-time key — renamed when reserved, escaped, masked —
/// for every call site and thread, and two names that share a cache slot stay apart.
#[test]
fn event_keys_are_spelled_as_the_encoder_would_on_every_thread() {
    let lines = capture(|_| {
        let run = || {
            for i in 0..3 {
                tracing::info!(
                    msg = i,
                    ts = 1,
                    password = "hunter2",
                    "a\"b" = 2,
                    "x.token" = 3,
                    plain = true,
                    "first"
                );
                tracing::info!(msg = i, other = 4, "second");
            }
        };
        run();
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::scope(|s| {
            for _ in 0..2 {
                let dispatch = dispatch.clone();
                s.spawn(move || tracing::dispatcher::with_default(&dispatch, run));
            }
        });
    });
    assert_eq!(lines.len(), 18, "{lines:#?}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["_msg"].is_u64(), "{line}");
        if v["msg"] == "first" {
            assert!(
                line.contains(r#","_msg":"#)
                    && line.contains(
                        r#","_ts":1,"password":"***","a\"b":2,"x.token":"***","plain":true,"#
                    ),
                "{line}"
            );
        } else {
            assert_eq!(v["msg"], "second");
            assert!(line.contains(r#","other":4,"#), "{line}");
        }
    }
}

/// An event with a field named `target` keeps it: the layer's `target` (the event's
/// metadata) is left out then, as a scope's or a logger's field is under a call-site field
/// of the same key, so a line never has the key twice.
#[test]
fn an_event_field_named_target_wins_over_the_events_target() {
    let lines = capture(|_| {
        tracing::info!(target = "own", n = 1, "one");
        tracing::info!(target: "custom", target = "own", "two");
        tracing::info!(target: "custom", "three");
        let span = tracing::info_span!("s");
        let _s = span.enter();
        tracing::warn!(n = 2, target = ?'x', "four");
    });
    let ends: Vec<&str> = lines
        .iter()
        .filter_map(|l| Some(&l[l.find(r#""msg""#)?..]))
        .collect();
    assert_eq!(
        ends,
        [
            r#""msg":"one","target":"own","n":1}"#,
            r#""msg":"two","target":"own"}"#,
            r#""msg":"three","target":"custom"}"#,
            r#""msg":"four","n":2,"target":"'x'"}"#,
        ]
    );
    assert_eq!(lines.len(), 6);
    for line in &lines {
        let Members(members) = serde_json::from_str(line).unwrap();
        let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key twice: {line}");
    }
}

/// Runs `f` on a thread of its own and returns its lines, failing if it does not finish
/// within 10 s (a deadlock leaves that thread behind).
fn capture_or_hang(f: impl FnOnce() + Send + 'static) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(capture(|_| f()));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the layer deadlocked")
}

/// A value whose `Debug` logs an ERROR event (inside the span entered where it is formatted).
struct LogsAnError;

impl std::fmt::Debug for LogsAnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::error!("logged while formatting");
        f.write_str("value")
    }
}

/// A message argument whose `Display` records a field of the span.
struct RecordsIntoSpan(tracing::Span);

impl std::fmt::Display for RecordsIntoSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.record("n", 1);
        f.write_str("text")
    }
}

/// A value's `Debug` (a recorded field) or a message's `Display` (an ERROR event) that logs
/// into the span, or records into it, while the layer handles that span: no deadlock.
#[test]
fn formatting_that_logs_into_the_span_does_not_deadlock() {
    let lines = capture_or_hang(|| {
        let span = tracing::info_span!("s", v = tracing::field::Empty);
        let _s = span.enter();
        span.record("v", tracing::field::debug(LogsAnError));
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"s","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"error","msg":"logged while formatting",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"s","st":"failed","exc":"error","reason":"logged while formatting","dur":0,"v":"value"}"#.to_owned(),
        ]
    );

    let lines = capture_or_hang(|| {
        let span = tracing::info_span!("s", n = tracing::field::Empty);
        let _s = span.enter();
        tracing::error!("failed: {}", RecordsIntoSpan(span.clone()));
    });
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"s","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"error","msg":"failed: text",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"s","st":"failed","exc":"error","reason":"failed: text","dur":0,"n":1}"#.to_owned(),
        ]
    );
}

/// A `message` field that is no string (a number, a boolean, an error) is the record's
/// `msg`, as its text, and is not written a second time as a field named `message`.
#[test]
fn a_message_field_of_any_type_is_the_msg_only() {
    let lines = capture(|_| {
        tracing::info!(message = 5);
        tracing::info!(message = true, n = 1);
        tracing::info!(message = 0.5);
        let err = std::io::Error::other("boom");
        tracing::info!(message = &err as &(dyn std::error::Error + 'static));
        tracing::info!(n = 2);
    });
    let ends: Vec<&str> = lines
        .iter()
        .map(|l| &l[l.find(r#""msg""#).unwrap()..])
        .collect();
    assert_eq!(
        ends,
        [
            r#""msg":"5","target":"tracing_layer"}"#,
            r#""msg":"true","n":1,"target":"tracing_layer"}"#,
            r#""msg":"0.5","target":"tracing_layer"}"#,
            r#""msg":"boom","target":"tracing_layer"}"#,
            r#""msg":"","n":2,"target":"tracing_layer"}"#,
        ]
    );
}

/// Two layers on one subscriber, each into its own logger, the second with a per-layer
/// filter: each keeps its own state of a span and its own task tree (a span's action of
/// one layer is no parent of the other layer's records), with the spans it filters out
/// left out of its tree.
#[test]
fn two_layers_on_one_subscriber_write_a_tree_each() {
    use tracing_subscriber::filter::LevelFilter;

    let (first, first_mem) = logger();
    let (second, second_mem) = logger();
    let subscriber = tracing_subscriber::registry()
        .with(LogxideLayer::new(first.clone()))
        .with(LogxideLayer::new(second.clone()).with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        tracing::info!("one");
        tracing::debug!("first only");
        let debug_span = tracing::debug_span!("debug_span");
        let _d = debug_span.enter();
        tracing::info!("in the debug span");
        tracing::info_span!("inner").in_scope(|| tracing::error!("failed"));
    });
    first.flush(None).unwrap();
    second.flush(None).unwrap();
    let t = TARGET;
    assert_eq!(
        normalized(&first_mem.lines()),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"one",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3],"mt":"debug","msg":"first only",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,1],"at":"debug_span","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4,2],"mt":"info","msg":"in the debug span",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,3,1],"at":"inner","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4,3,2],"mt":"error","msg":"failed",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,3,3],"at":"inner","st":"failed","exc":"error","reason":"failed","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[4,4],"at":"debug_span","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[5],"at":"outer","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
    assert_eq!(
        normalized(&second_mem.lines()),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"one",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3],"mt":"info","msg":"in the debug span",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,1],"at":"inner","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4,2],"mt":"error","msg":"failed",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,3],"at":"inner","st":"failed","exc":"error","reason":"failed","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[5],"at":"outer","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
    // One task each: no record of one logger carries the other's task id.
    let tid =
        |lines: &[String]| value_range(&lines[0], "tid").map(|(a, b)| lines[0][a..b].to_owned());
    let (a, b) = (first_mem.lines(), second_mem.lines());
    assert_ne!(tid(&a), tid(&b));
    assert!(a.iter().all(|l| l.contains(&tid(&a).unwrap())));
    assert!(b.iter().all(|l| l.contains(&tid(&b).unwrap())));
}

/// 128-bit integers are JSON numbers in span and event fields alike (as through the `log`
/// bridge, which wrote them as strings).
#[test]
fn wide_integers_are_json_numbers_in_spans_and_events() {
    let lines = capture(|_| {
        let span = tracing::info_span!("wide", umax = u128::MAX, imin = i128::MIN);
        let _s = span.enter();
        tracing::info!(big = 1u128 << 64, neg = -(1i128 << 64), "e");
    });
    let lines = normalized(&lines);
    assert_eq!(
        lines[0],
        r#"{"ts":0,"tid":"T0","lvl":[1],"at":"wide","st":"started","umax":340282366920938463463374607431768211455,"imin":-170141183460469231731687303715884105728}"#
    );
    assert_eq!(
        lines[1],
        format!(
            r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"e","big":18446744073709551616,"neg":-18446744073709551616,{TARGET}}}"#
        )
    );
}

/// Raw identifier keys are their names without `r#` (tracing's macros strip the prefix), as
/// in logxide's own macros.
#[test]
fn raw_identifier_keys_lose_their_r_hash() {
    let lines = capture(|_| {
        let span = tracing::info_span!("s", r#type = 1);
        let _s = span.enter();
        tracing::info!(r#type = 2, "e");
    });
    let lines = normalized(&lines);
    assert_eq!(
        lines[0],
        r#"{"ts":0,"tid":"T0","lvl":[1],"at":"s","st":"started","type":1}"#
    );
    assert_eq!(
        lines[1],
        format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"e","type":2,{TARGET}}}"#)
    );
}

/// A `Display`, `Debug` and error `Display` that write a part and then fail (return
/// `fmt::Error` on their own).
struct Failing;

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("part \"")?;
        Err(std::fmt::Error)
    }
}

impl std::fmt::Debug for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dbg")?;
        Err(std::fmt::Error)
    }
}

impl std::error::Error for Failing {}

/// A span field given as `%x` / `?x` (at the span's creation or recorded later) was
/// formatted with `format!`, which panics when the `Display` / `Debug` fails on its own: the
/// span's creation (or `record`) panicked. It is now what it wrote so far, as event fields,
/// messages and error values already were (all checked here).
#[test]
fn a_failing_display_or_debug_in_a_span_or_event_is_what_it_wrote() {
    let lines = capture(|_| {
        let span =
            tracing::info_span!("s", d = %Failing, g = ?Failing, late = tracing::field::Empty);
        let _s = span.enter();
        span.record("late", tracing::field::display(Failing));
        tracing::info!(d = %Failing, g = ?Failing, "e {}", Failing);
        tracing::info!(err = &Failing as &(dyn std::error::Error + 'static), "x");
        tracing::info!(message = %Failing);
        tracing::info_span!("f", error = %Failing).in_scope(|| {});
        let failed =
            tracing::info_span!("g", error = &Failing as &(dyn std::error::Error + 'static));
        failed.in_scope(|| {});
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"s","st":"started","d":"part \"","g":"dbg"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"e part \"","d":"part \"","g":"dbg",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3],"mt":"info","msg":"x","err":"part \"",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4],"mt":"info","msg":"part \"",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[5,1],"at":"f","st":"started","error":"part \""}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[5,2],"at":"f","st":"failed","exc":"error","reason":"part \"","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[6,1],"at":"g","st":"started","error":"part \""}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[6,2],"at":"g","st":"failed","exc":"error","reason":"part \"","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[7],"at":"s","st":"succeeded","dur":0,"late":"part \""}"#.to_owned(),
        ]
    );
}

/// A span dropped by a panic's unwinding (as `#[instrument]`'s span of a function that
/// panics) fails with `exc` `panic`, as a logxide `Action` does: it was
/// written `succeeded`. An `error` field stays the reason; a span closed after the panic
/// was caught, outside it, still succeeds.
#[test]
fn a_span_closed_by_a_panic_fails_as_a_panic() {
    let lines = capture(|_| {
        let kept = tracing::info_span!("kept");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _k = kept.enter();
            let handler = tracing::info_span!("handler", error = tracing::field::Empty);
            let _h = handler.enter();
            let query = tracing::info_span!("query");
            let _q = query.enter();
            tracing::error!("an error event");
            handler.record("error", "bad input");
            panic!("boom");
        }));
        assert!(caught.is_err());
        drop(kept);
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"kept","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"handler","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,2,1],"at":"query","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2,2],"mt":"error","msg":"an error event",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[2,2,3],"at":"query","st":"failed","exc":"panic","reason":"the thread panicked","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,3],"at":"handler","st":"failed","exc":"error","reason":"bad input","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"kept","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

/// A span opened and closed during a panic's unwinding (in a `Drop` that the unwinding runs:
/// a clean-up) was not dropped by that panic: it succeeds, as a logxide `Action` started
/// there does. It was written `failed` with `exc` `panic`.
#[test]
fn a_span_opened_and_closed_while_a_panic_unwinds_succeeds() {
    struct CleansUp;
    impl Drop for CleansUp {
        fn drop(&mut self) {
            let _s = tracing::info_span!("cleanup").entered();
            tracing::info!("cleaning up");
        }
    }
    let lines = capture(|_| {
        let caught = std::panic::catch_unwind(|| {
            let _job = tracing::info_span!("job").entered();
            let _c = CleansUp;
            panic!("boom");
        });
        assert!(caught.is_err());
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"job","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"cleanup","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2],"mt":"info","msg":"cleaning up",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[2,3],"at":"cleanup","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"job","st":"failed","exc":"panic","reason":"the thread panicked","dur":0}"#.to_owned(),
        ]
    );
}

/// An event inside a span the layer's filter leaves out (kept by another layer) goes into the
/// nearest span the filter keeps, as the spans started there do, also where that span is not
/// entered — a filtered-out span entered on another thread, as a task's `debug_span` polled
/// on a worker — and an ERROR event there fails that span; an event with such a span as its
/// explicit parent goes there too. Those events were new tasks of their own (and the span
/// succeeded).
#[test]
fn an_event_inside_a_filtered_out_span_on_another_thread_stays_in_the_tree() {
    use tracing_subscriber::filter::LevelFilter;

    let (log, mem) = logger();
    // Another layer sees the debug span: it exists, entered on the worker thread.
    let subscriber = tracing_subscriber::registry()
        .with(LogxideLayer::new(log.clone()).with_filter(LevelFilter::INFO))
        .with(Counting::default());
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        let request = tracing::info_span!("request");
        let _r = request.enter();
        tracing::info!("one");
        let task = tracing::debug_span!("task");
        std::thread::scope(|s| {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _t = task.enter();
                    tracing::info!("in the filtered-out span");
                    tracing::info_span!("child").in_scope(|| tracing::info!("in its child"));
                    tracing::error!("an error there");
                });
            });
        });
        tracing::info!(parent: &task, "explicit parent left out");
        tracing::info!("two");
    });
    log.flush(None).unwrap();
    let t = TARGET;
    assert_eq!(
        normalized(&mem.lines()),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"request","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"info","msg":"one",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3],"mt":"info","msg":"in the filtered-out span",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,1],"at":"child","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4,2],"mt":"info","msg":"in its child",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,3],"at":"child","st":"succeeded","dur":0}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[5],"mt":"error","msg":"an error there",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[6],"mt":"info","msg":"explicit parent left out",{t}}}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[7],"mt":"info","msg":"two",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[8],"at":"request","st":"failed","exc":"error","reason":"an error there","dur":0}"#.to_owned(),
        ]
    );
}

/// Through the raw `Dispatch` API a span can be exited on another thread than the one that
/// entered it, and spans exited out of order: as the registry (for which the span stays
/// current on the thread that entered it), each thread's action stack loses only what was
/// exited there, and only that span — the records go where the registry's current span is.
#[test]
fn a_span_exited_on_another_thread_or_out_of_order_leaves_each_threads_stack_intact() {
    let lines = capture(|_| {
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let outer = tracing::info_span!("outer");
        let inner = tracing::info_span!(parent: &outer, "inner");
        let (o, i) = (outer.id().unwrap(), inner.id().unwrap());
        dispatch.enter(&o);
        dispatch.enter(&i);
        tracing::info!("a: in inner");
        std::thread::scope(|s| {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    // Neither is entered here: nothing to leave, and nothing is current.
                    dispatch.exit(&i);
                    dispatch.exit(&o);
                    tracing::info!("b: outside");
                    assert!(tracing::Span::current().is_none());
                });
            });
        });
        assert_eq!(tracing::Span::current().id(), Some(i.clone()));
        tracing::info!("a: still in inner");
        // Out of order: the outer one first; the inner one stays entered.
        dispatch.exit(&o);
        assert_eq!(tracing::Span::current().id(), Some(i.clone()));
        tracing::info!("a: inner after leaving outer");
        dispatch.exit(&i);
        assert!(tracing::Span::current().is_none());
        tracing::info!("a: outside");
        drop(inner);
        drop(outer);
    });
    let lines = normalized(&lines);
    let expected = [
        r#""tid":"T0","lvl":[1],"at":"outer","st":"started"}"#,
        r#""tid":"T0","lvl":[2,1],"at":"inner","st":"started"}"#,
        r#""tid":"T0","lvl":[2,2],"mt":"info","msg":"a: in inner","#,
        r#""tid":"T1","lvl":[1],"mt":"info","msg":"b: outside","#,
        r#""tid":"T0","lvl":[2,3],"mt":"info","msg":"a: still in inner","#,
        r#""tid":"T0","lvl":[2,4],"mt":"info","msg":"a: inner after leaving outer","#,
        r#""tid":"T2","lvl":[1],"mt":"info","msg":"a: outside","#,
        r#""tid":"T0","lvl":[2,5],"at":"inner","st":"succeeded","#,
        r#""tid":"T0","lvl":[3],"at":"outer","st":"succeeded","#,
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, part) in lines.iter().zip(expected) {
        assert!(line.contains(part), "{line}\n  does not contain {part}");
    }
}

/// A span still open when its logger shuts down has no end record in the file — its task is
/// unfinished, as Eliot leaves an action whose process stopped — and when it closes later,
/// its end record is counted dropped (reason `shutdown`), not lost silently.
#[test]
fn a_span_open_at_shutdown_is_left_unfinished_and_its_late_end_is_counted() {
    let (log, mem) = logger();
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("long:job");
        let entered = span.enter();
        tracing::info!("working");
        log.shutdown(None).unwrap();
        tracing::info!("after shutdown");
        drop(entered);
        drop(span);
    });
    let lines = normalized(&mem.lines());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains(r#""lvl":[1],"at":"long:job","st":"started"}"#));
    assert!(lines[1].contains(r#""lvl":[2],"mt":"info","msg":"working","#));
    let m = log.metrics();
    assert_eq!((m.written, m.dropped_by.shutdown), (2, 2), "{m:?}");
    assert_eq!(m.enqueued, m.written + m.dropped + m.failed + m.pending);
}

/// A span opened before a panic and dropped by its unwinding without having been entered —
/// or entered for the first time only during the unwinding (a clean-up that enters a span
/// made earlier) — was written `succeeded`: its action starts at its first enter (or at its
/// close), during the unwinding, and was taken for a clean-up's. Whether the panic ends it
/// is now decided by when the span was opened, as the docs say; a span opened during the
/// unwinding (on the thread that unwinds) still succeeds.
#[test]
fn a_span_opened_before_a_panic_fails_by_it_even_if_it_starts_during_the_unwinding() {
    struct EntersLate(tracing::Span);
    impl Drop for EntersLate {
        fn drop(&mut self) {
            let _e = self.0.enter();
            tracing::info!("entered late");
            let _c = tracing::info_span!("opened in the unwinding").entered();
        }
    }
    let lines = capture(|_| {
        let caught = std::panic::catch_unwind(|| {
            let _job = tracing::info_span!("job").entered();
            let _late = EntersLate(tracing::info_span!("late"));
            let _never = tracing::info_span!("never entered");
            panic!("boom");
        });
        assert!(caught.is_err());
    });
    let t = TARGET;
    let panic = r#""st":"failed","exc":"panic","reason":"the thread panicked","dur":0}"#;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"job","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"never entered","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2],"at":"never entered",{panic}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3,1],"at":"late","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3,2],"mt":"info","msg":"entered late",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3,3,1],"at":"opened in the unwinding","st":"started"}"#
                .to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[3,3,2],"at":"opened in the unwinding","st":"succeeded","dur":0}"#
                .to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3,4],"at":"late",{panic}"#),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[4],"at":"job",{panic}"#),
        ]
    );
}

/// The end record of a span failed by an ERROR event or by a panic left out the span's
/// `error` and `error.type` fields recorded after its start, though neither was its `reason`
/// or `exc` (an `error = false`, an `error.type` beside a panic): they were lost. They stay
/// fields now; only a field that became the `reason` or the `exc` is left out.
#[test]
fn error_fields_that_are_not_the_reason_or_exc_stay_on_the_end_record() {
    let lines = capture(|_| {
        let span = tracing::info_span!("evented", error = tracing::field::Empty);
        span.in_scope(|| {
            span.record("error", false);
            tracing::error!("went wrong");
        });
        drop(span);
        let caught = std::panic::catch_unwind(|| {
            let span = tracing::info_span!(
                "panicked",
                error = tracing::field::Empty,
                error.type = tracing::field::Empty
            );
            let _s = span.enter();
            span.record("error", false);
            span.record("error.type", "Timeout");
            panic!("boom");
        });
        assert!(caught.is_err());
        // `error.type` is the exc of an error event's failure: left out as a field.
        let span = tracing::info_span!("typed", error.type = tracing::field::Empty);
        span.in_scope(|| {
            span.record("error.type", "Refused");
            tracing::error!("refused");
        });
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"evented","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2],"mt":"error","msg":"went wrong",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3],"at":"evented","st":"failed","exc":"error","reason":"went wrong","dur":0,"error":false}"#.to_owned(),
            r#"{"ts":0,"tid":"T1","lvl":[1],"at":"panicked","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T1","lvl":[2],"at":"panicked","st":"failed","exc":"panic","reason":"the thread panicked","dur":0,"error":false,"error.type":"Timeout"}"#.to_owned(),
            r#"{"ts":0,"tid":"T2","lvl":[1],"at":"typed","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T2","lvl":[2],"mt":"error","msg":"refused",{t}}}"#),
            r#"{"ts":0,"tid":"T2","lvl":[3],"at":"typed","st":"failed","exc":"Refused","reason":"refused","dur":0}"#.to_owned(),
        ]
    );
}

/// A field an event declares but does not record — `None` (tracing records no value for
/// it) or `field::Empty` — hid nothing: the bound or scope field of its key stayed in the
/// record, where a logxide call-site `None` hides it. It hides it now, for that record only;
/// a span's unrecorded field (an `Empty` to be recorded later) hides nothing.
#[test]
fn an_events_unrecorded_field_hides_the_context_field_of_its_key() {
    let (log, mem) = logger();
    let req = log.ctx(
        logxide::logger::Fields::new()
            .with("user", "ada")
            .with("zone", "eu")
            .with("kept", 1),
    );
    let _s = logxide::logger::scope(logxide::logger::Fields::new().with("tenant", "a"));
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(req.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let user: Option<&str> = None;
        tracing::info!(user, tenant = tracing::field::Empty, "absent");
        tracing::info!(zone = Some("us"), kept = None::<u8>, "some");
        let span = tracing::info_span!("job", user = tracing::field::Empty, zone = None::<u8>);
        span.in_scope(|| tracing::info!("inside"));
        drop(span);
        tracing::info!("after");
    });
    log.flush(None).unwrap();
    let ends: Vec<String> = mem
        .lines()
        .iter()
        .map(|l| l[l.find(r#""lvl""#).unwrap()..].to_owned())
        .collect();
    let t = TARGET;
    let ctx = r#""tenant":"a","user":"ada","zone":"eu","kept":1}"#;
    assert_eq!(ends.len(), 6, "{ends:#?}");
    assert_eq!(
        [&ends[..4], &ends[5..]].concat(),
        [
            format!(r#""lvl":[1],"mt":"info","msg":"absent",{t},"zone":"eu","kept":1}}"#),
            format!(
                r#""lvl":[1],"mt":"info","msg":"some","zone":"us",{t},"tenant":"a","user":"ada"}}"#
            ),
            format!(r#""lvl":[1],"at":"job","st":"started",{ctx}"#),
            format!(r#""lvl":[2],"mt":"info","msg":"inside",{t},{ctx}"#),
            format!(r#""lvl":[1],"mt":"info","msg":"after",{t},{ctx}"#),
        ]
    );
    assert!(
        ends[4].starts_with(r#""lvl":[3],"at":"job","st":"succeeded","dur":"#)
            && ends[4].ends_with(&format!(",{ctx}")),
        "{}",
        ends[4]
    );
}

/// An event or a span with an explicit parent entered on the thread went into the innermost
/// action entered there, also when that was another span of the layer entered inside the
/// parent: `info!(parent: &outer, ..)` inside `inner` was written as inner's child, a span
/// with `parent: &outer` as inner's child, not its sibling. It goes into the parent now —
/// or into the logxide action entered inside it (above it, with no span of the layer
/// between), as a contextual one does.
#[test]
fn an_explicit_parent_entered_under_another_span_is_kept() {
    let lines = capture(|log| {
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        {
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            tracing::info!(parent: &outer, "to outer");
            drop(tracing::info_span!(parent: &outer, "sibling"));
            let _a = log.start_action("native", |_| {});
            tracing::info!(parent: &outer, "to outer again");
        }
        let _n = log.start_action("kept", |_| {});
        tracing::info!(parent: &outer, "into the action inside outer");
    });
    let t = TARGET;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"inner","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3],"mt":"info","msg":"to outer",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,1],"at":"sibling","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[4,2],"at":"sibling","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,2,1],"at":"native","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[5],"mt":"info","msg":"to outer again",{t}}}"#),
            r#"{"ts":0,"tid":"T0","lvl":[2,2,2],"at":"native","st":"succeeded","dur":0}"#
                .to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,3],"at":"inner","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[6,1],"at":"kept","st":"started"}"#.to_owned(),
            format!(
                r#"{{"ts":0,"tid":"T0","lvl":[6,2],"mt":"info","msg":"into the action inside outer",{t}}}"#
            ),
            r#"{"ts":0,"tid":"T0","lvl":[6,3],"at":"kept","st":"succeeded","dur":0}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[7],"at":"outer","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

/// A span a future holds across an `.await` and closes in its own course ended `failed`
/// with `exc` `panic` when a `Drop` run by a panic's unwinding polled that future to its
/// end (inside an instrumented logxide action): that panic began before the poll, and the
/// span's close is the future's own course, as for logxide's actions. It succeeds now.
#[test]
fn a_span_a_future_closes_in_its_course_succeeds_when_a_drop_runs_it_during_a_panic() {
    use serde_json::json;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    /// Pending once, then ready.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            let ready = std::mem::replace(&mut self.0, true);
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }
    /// Runs its future to the end when dropped.
    struct FinishesOnDrop(Pin<Box<dyn Future<Output = ()>>>);
    impl Drop for FinishesOnDrop {
        fn drop(&mut self) {
            let waker = Waker::from(Arc::new(Noop));
            let mut cx = Context::from_waker(&waker);
            while self.0.as_mut().poll(&mut cx).is_pending() {}
        }
    }
    let lines = capture(|log| {
        let mut fut = Box::pin(
            log.start_action("inner", |_| {})
                .detach()
                .instrument(async {
                    let span = tracing::info_span!("held");
                    YieldOnce(false).await;
                    drop(span);
                }),
        );
        let waker = Waker::from(Arc::new(Noop));
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _finishes = FinishesOnDrop(fut);
            panic!("expected by the test");
        }));
        assert!(unwound.is_err());
    });
    let ends: Vec<(Value, Value, Value, Option<Value>)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["lvl"].clone(),
                v["at"].clone(),
                v["st"].clone(),
                v.get("exc").cloned(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            (json!([1]), json!("inner"), json!("started"), None),
            (json!([2, 1]), json!("held"), json!("started"), None),
            (json!([2, 2]), json!("held"), json!("succeeded"), None),
            (json!([3]), json!("inner"), json!("succeeded"), None),
        ]
    );
}

/// A span held by a future that is dropped unfinished — a `tracing::Instrument`ed future
/// awaited inside an instrumented logxide future, which is dropped (a timeout, a lost
/// `select!`) — ended `succeeded`, where logxide's own actions it held end `failed` with
/// `exc` `cancelled`. The layer now asks the question logxide's actions ask: a span opened
/// before the drop began, closed during it, ends `cancelled`; one opened and closed by the
/// drop (a clean-up's) still succeeds. Dropped outside any instrumented logxide future, the
/// layer cannot tell a cancelled `tracing::Instrumented` from a finished one (its drop is the
/// same): that span still succeeds, as the module docs say.
#[test]
fn a_span_held_by_a_cancelled_future_ends_cancelled() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};
    use tracing::Instrument;
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    /// Opens and closes a span when dropped: a clean-up run by the cancelled future's drop.
    struct CleansUp;
    impl Drop for CleansUp {
        fn drop(&mut self) {
            drop(tracing::info_span!("cleanup").entered());
        }
    }
    let lines = capture(|log| {
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(
            log.start_action("outer", |_| {})
                .detach()
                .instrument(async {
                    let _cleanup = CleansUp;
                    let _never_entered = tracing::info_span!("never-entered");
                    std::future::pending::<()>()
                        .instrument(tracing::info_span!("held"))
                        .await;
                }),
        );
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
        let mut plain =
            Box::pin(std::future::pending::<()>().instrument(tracing::info_span!("plain")));
        assert!(plain.as_mut().poll(&mut cx).is_pending());
        drop(plain);
    });
    const CANCELLED: &str = r#""st":"failed","exc":"cancelled","reason":"the future was dropped before it completed","dur":0}"#;
    assert_eq!(
        normalized(&lines),
        [
            r#"{"ts":0,"tid":"T0","lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[2,1],"at":"held","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[2,2],"at":"held",{CANCELLED}"#),
            r#"{"ts":0,"tid":"T0","lvl":[3,1],"at":"never-entered","st":"started"}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[3,2],"at":"never-entered",{CANCELLED}"#),
            r#"{"ts":0,"tid":"T0","lvl":[4,1],"at":"cleanup","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T0","lvl":[4,2],"at":"cleanup","st":"succeeded","dur":0}"#.to_owned(),
            format!(r#"{{"ts":0,"tid":"T0","lvl":[5],"at":"outer",{CANCELLED}"#),
            r#"{"ts":0,"tid":"T1","lvl":[1],"at":"plain","st":"started"}"#.to_owned(),
            r#"{"ts":0,"tid":"T1","lvl":[2],"at":"plain","st":"succeeded","dur":0}"#.to_owned(),
        ]
    );
}

/// An event whose message's `Debug` panics while the layer formats it (before the logger is
/// called: for an error event in a span, even before its level is checked) left the record
/// neither written nor counted, though a panicking field (formatted while the logger
/// encodes) was counted dropped, reason panicked: both are. A span around it ends as usual.
#[test]
fn an_event_whose_message_panics_is_counted_as_dropped() {
    struct Panics;
    impl std::fmt::Display for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Display of Panics")
        }
    }
    let (log, mem) = logger();
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    let caught = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    tracing::subscriber::with_default(subscriber, || {
        assert!(caught(&|| tracing::info!("{}", Panics)));
        let span = tracing::info_span!("job").entered();
        assert!(caught(&|| tracing::error!("{}", Panics)));
        drop(span);
        tracing::info!("next");
    });
    log.flush(None).unwrap();
    let lines = normalized(&mem.lines());
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].contains(r#""at":"job","st":"succeeded""#),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(r#""msg":"next""#), "{}", lines[2]);
    let m = log.metrics();
    assert_eq!(
        (m.enqueued, m.written, m.dropped, m.dropped_by.panicked),
        (5, 3, 2, 2)
    );
}
