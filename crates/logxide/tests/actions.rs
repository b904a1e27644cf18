//! Actions and task ids: ends, numbering, nesting, continuation, ids (the edge cases).

use logxide::sink::MemorySink;
use logxide::Logger;
use serde_json::{json, Value};

fn logger() -> (Logger, MemorySink) {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    (log, mem)
}

/// Every line parsed as a JSON object.
fn records(log: &Logger, mem: &MemorySink) -> Vec<serde_json::Map<String, Value>> {
    log.flush(None).unwrap();
    mem.lines()
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object: {l:?} ({other:?})"),
        })
        .collect()
}

/// Logs an action that starts and ends inside a `Drop` run by an unwinding panic.
struct LogsOnDrop(Logger);

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        let cleanup = self.0.start_action("cleanup", |_| {});
        self.0.info("cleaning up");
        drop(cleanup);
        // A future started here and dropped unfinished is cancelled, not failed by the panic.
        let wait = self.0.start_action("wait", |_| {}).detach();
        drop(wait.instrument(std::future::pending::<()>()));
    }
}

/// An action (or an instrumented future) that a `Drop` starts and ends while a panic unwinds
/// was ended `failed` with `exc` `panic`: `thread::panicking()` was true at its end, though
/// the panic had begun before it and no panic can begin inside it.
#[test]
fn an_action_started_and_ended_during_a_panic_succeeds() {
    let (log, mem) = logger();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _job = log.start_action("job", |_| {});
        let _guard = LogsOnDrop(log.clone());
        panic!("boom");
    }));
    assert!(result.is_err());
    let recs = records(&log, &mem);
    let summary: Vec<_> = recs
        .iter()
        .map(|r| {
            (
                r["lvl"].clone(),
                r.get("at").cloned(),
                r.get("st").cloned(),
                r.get("exc").cloned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!([1]), Some(json!("job")), Some(json!("started")), None),
            (
                json!([2, 1]),
                Some(json!("cleanup")),
                Some(json!("started")),
                None
            ),
            (json!([2, 2]), None, None, None),
            (
                json!([2, 3]),
                Some(json!("cleanup")),
                Some(json!("succeeded")),
                None
            ),
            (
                json!([3, 1]),
                Some(json!("wait")),
                Some(json!("started")),
                None
            ),
            (
                json!([3, 2]),
                Some(json!("wait")),
                Some(json!("failed")),
                Some(json!("cancelled"))
            ),
            (
                json!([4]),
                Some(json!("job")),
                Some(json!("failed")),
                Some(json!("panic"))
            ),
        ]
    );
}
