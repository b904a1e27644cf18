//! Logging while a thread's locals are destroyed: a thread-local whose `Drop` logs (native
//! macros, an action, a `tracing` event and span, `log` records). Logxide's own
//! thread-locals may be gone by then (or not made yet): the records are written all the same,
//! none is lost, nothing panics (a panic inside a thread-local's destructor aborts the
//! process).
//!
//! The global logger, the `log` logger and the global `tracing` dispatcher are the process's:
//! one test in a binary of its own.
#![cfg(all(feature = "log", feature = "tracing"))]

use std::cell::RefCell;
use std::collections::HashSet;

use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::MemorySink;
use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;

/// Logs everything of [`log_all`] for its case when dropped.
struct LogsOnDrop {
    case: &'static str,
    /// Also a `tracing` span (see [`log_all`]).
    span: bool,
}

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        log_all(self.case, self.span);
    }
}

thread_local! {
    static HOLDER: RefCell<Option<LogsOnDrop>> = const { RefCell::new(None) };
    /// An action guard ended when the thread's locals are destroyed.
    static HELD: RefCell<Option<logxide::logger::Action>> = const { RefCell::new(None) };
}

/// Native records (one with fields, one written synchronously, one inside an action started
/// here), a `tracing` event,
/// optionally a `tracing` span with an event inside, and two `log` records (a formatted
/// message and a plain one), each with the field `case`.
///
/// The span only where `tracing-subscriber`'s registry has not used this thread's locals
/// yet: its own (`sharded-slab`'s thread id, `thread_local`'s) panic when a span is made or
/// entered after they were destroyed — not logxide's to fix. Its events are fine.
fn log_all(case: &'static str, span: bool) {
    logxide::info!("native", case = case, n = 1, who = "dtor");
    {
        let _sync = logxide::logger::sync_mode();
        logxide::info!("native sync", case = case, n = 7);
    }
    {
        let _action = logxide::start_action!("dtor:job", case = case);
        logxide::info!("inside the action", case = case, n = 2);
    }
    tracing::info!(case = case, n = 3, "tracing event");
    if span {
        let span = tracing::info_span!("dtor:span", case = case);
        let _entered = span.enter();
        tracing::warn!(case = case, n = 4, "tracing in a span");
    }
    log::info!(case = case, n = 5; "log {}", "formatted");
    log::warn!(case = case, n = 6; "log plain");
}

fn parse(lines: &[String]) -> Vec<Map<String, Value>> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn lvl(r: &Map<String, Value>) -> Vec<u64> {
    r["lvl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// Checks the records of `case`: exactly those [`log_all`] logs, with their fields, each
/// either in the tree it belongs to (the thread's locals still there) or a task of its own
/// (they were gone) — thread-locals are destroyed in an order the platform chooses.
fn check_case(all: &[Map<String, Value>], case: &str, span: bool) {
    let recs: Vec<&Map<String, Value>> = all
        .iter()
        .filter(|r| r.get("case").is_some_and(|c| c == case))
        .collect();
    let what = |r: &Map<String, Value>| -> String {
        match (r.get("msg"), r.get("at")) {
            (Some(m), _) => m.as_str().unwrap().to_owned(),
            (None, Some(at)) => format!("{} {}", at.as_str().unwrap(), r["st"].as_str().unwrap()),
            (None, None) => panic!("neither message nor action: {r:?}"),
        }
    };
    let mut expected = vec![
        "native",
        "native sync",
        "dtor:job started",
        "inside the action",
        "dtor:job succeeded",
        "tracing event",
    ];
    if span {
        expected.extend([
            "dtor:span started",
            "tracing in a span",
            "dtor:span succeeded",
        ]);
    }
    expected.extend(["log formatted", "log plain"]);
    // The end records carry no fields of the action: find them by their task.
    let job = recs
        .iter()
        .find(|r| r.get("at").is_some_and(|a| a == "dtor:job"))
        .unwrap_or_else(|| panic!("{case}: no dtor:job: {recs:?}"));
    let job_task = job["tid"].as_str().unwrap();
    let span_task = recs
        .iter()
        .find(|r| r.get("at").is_some_and(|a| a == "dtor:span"))
        .map(|r| r["tid"].as_str().unwrap().to_owned());
    // In the order logged (one thread: the writer keeps it).
    let got: Vec<&Map<String, Value>> = all
        .iter()
        .filter(|r| {
            r.get("case").is_some_and(|c| c == case)
                || (r.get("st").is_some_and(|s| s != "started")
                    && (r["tid"] == job_task || span_task.as_deref() == r["tid"].as_str()))
        })
        .collect();
    assert_eq!(
        got.iter().map(|r| what(r)).collect::<Vec<_>>(),
        expected,
        "{case}"
    );

    let by = |w: &str| *got.iter().find(|r| what(r) == w).unwrap();
    let native = by("native");
    assert_eq!(native["mt"], "info");
    assert_eq!(native["n"], 1);
    assert_eq!(native["who"], "dtor");
    assert_eq!(lvl(native), [1]);
    let sync = by("native sync");
    assert_eq!(
        (sync["mt"].as_str(), sync["n"].as_u64()),
        (Some("info"), Some(7))
    );

    // The action: started [1] and its end in its task; the record inside it either its [2]
    // (the thread's action stack was there) or a task of its own (it was gone).
    let started = by("dtor:job started");
    let inside = by("inside the action");
    let ended = by("dtor:job succeeded");
    assert_eq!(inside["n"], 2);
    assert_eq!(lvl(started), [1]);
    assert!(ended["dur"].is_f64());
    assert_eq!(ended["tid"], started["tid"]);
    if inside["tid"] == started["tid"] {
        assert_eq!((lvl(inside), lvl(ended)), (vec![2], vec![3]), "{case}");
    } else {
        assert_eq!((lvl(inside), lvl(ended)), (vec![1], vec![2]), "{case}");
    }

    let event = by("tracing event");
    assert_eq!(
        (event["mt"].as_str(), event["n"].as_u64()),
        (Some("info"), Some(3))
    );
    assert_eq!(lvl(event), [1]);
    if span {
        let started = by("dtor:span started");
        let inside = by("tracing in a span");
        let ended = by("dtor:span succeeded");
        assert_eq!(
            (inside["mt"].as_str(), inside["n"].as_u64()),
            (Some("warning"), Some(4))
        );
        assert_eq!(ended["tid"], started["tid"]);
        if inside["tid"] == started["tid"] {
            assert_eq!((lvl(inside), lvl(ended)), (vec![2], vec![3]), "{case}");
        } else {
            assert_eq!((lvl(inside), lvl(ended)), (vec![1], vec![2]), "{case}");
        }
    }

    let formatted = by("log formatted");
    assert_eq!(
        (formatted["mt"].as_str(), formatted["n"].as_u64()),
        (Some("info"), Some(5))
    );
    assert_eq!(formatted["target"], "tls_teardown");
    let plain = by("log plain");
    assert_eq!(
        (plain["mt"].as_str(), plain["n"].as_u64()),
        (Some("warning"), Some(6))
    );
}

#[test]
fn records_logged_while_a_threads_locals_are_destroyed_are_written() {
    let mem = MemorySink::new();
    let _guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    logxide::integrations::log::install().unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(LogxideLayer::global()),
    )
    .unwrap();

    // The holder first, then logxide's thread-locals (and the registry's) by logging: where
    // the platform destroys them in reverse order (Linux), logxide's are gone when the holder
    // logs.
    std::thread::spawn(|| {
        HOLDER.with(|h| {
            *h.borrow_mut() = Some(LogsOnDrop {
                case: "early",
                span: false,
            })
        });
        log_all("before", true);
    })
    .join()
    .unwrap();
    // Only the holder: logxide's thread-locals are first touched inside its `Drop`.
    std::thread::spawn(|| {
        HOLDER.with(|h| {
            *h.borrow_mut() = Some(LogsOnDrop {
                case: "fresh",
                span: true,
            })
        });
    })
    .join()
    .unwrap();
    // Logxide's thread-locals first, then the holder: destroyed first on Linux.
    std::thread::spawn(|| {
        log_all("before late", true);
        HOLDER.with(|h| {
            *h.borrow_mut() = Some(LogsOnDrop {
                case: "late",
                span: true,
            })
        });
    })
    .join()
    .unwrap();

    // An action kept in a thread-local, registered before logxide's: it ends (leaving the
    // thread's action stack, writing its end record) as the thread's locals are destroyed.
    std::thread::spawn(|| {
        HELD.with(|_| {});
        logxide::info!("held before", case = "held");
        HELD.with(|h| *h.borrow_mut() = Some(logxide::start_action!("held", case = "held")));
    })
    .join()
    .unwrap();

    logxide::logger::flush(None).unwrap();
    let lines = mem.lines();
    let all = parse(&lines);
    for (case, span) in [
        ("before", true),
        ("early", false),
        ("fresh", true),
        ("before late", true),
        ("late", true),
    ] {
        check_case(&all, case, span);
    }
    let held: Vec<&Map<String, Value>> = all
        .iter()
        .filter(|r| r.get("case").is_some_and(|c| c == "held"))
        .collect();
    assert_eq!(held.len(), 2);
    assert_eq!(
        (held[0]["msg"].as_str(), lvl(held[0])),
        (Some("held before"), vec![1])
    );
    assert_eq!(
        (held[1]["st"].as_str(), lvl(held[1])),
        (Some("started"), vec![1])
    );
    let held_end: Vec<&Map<String, Value>> =
        all.iter().filter(|r| r["tid"] == held[1]["tid"]).collect();
    assert_eq!(held_end.len(), 2);
    assert_eq!(held_end[1]["at"], "held");
    assert_eq!(
        (held_end[1]["st"].as_str(), lvl(held_end[1])),
        (Some("succeeded"), vec![2])
    );

    // 11 records per case with a span, 8 without, 3 of the held action's thread: nothing
    // else, nothing lost.
    assert_eq!(lines.len(), 4 * 11 + 8 + 3, "{lines:#?}");
    // Every task id that starts a task is new (also those made without the thread's id
    // state).
    let roots: Vec<&str> = all
        .iter()
        .filter(|r| lvl(r) == [1])
        .map(|r| r["tid"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&str> = roots.iter().copied().collect();
    assert_eq!(distinct.len(), roots.len(), "{roots:?}");

    let m = logxide::logger::metrics();
    assert_eq!(m.enqueued, lines.len() as u64);
    assert_eq!((m.written, m.dropped, m.failed), (m.enqueued, 0, 0));
    assert_eq!(m.restarts, 0);
}
