//! A `tracing` span entered in a thread's life and kept entered in a thread-local, so that
//! it is exited and closed while the thread's locals are destroyed — before or after
//! logxide's own thread-locals (and the registry's) are gone. The layer's side must not
//! panic (a panic in a thread-local's destructor aborts the process): every thread-local it
//! uses is reached with `try_with` and a fallback. The span ends in the file, nothing lost.
//!
//! The global `tracing` dispatcher is the process's: one test in a binary of its own.
#![cfg(feature = "tracing")]

use std::cell::RefCell;

use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::MemorySink;
use logxide::Logger;
use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;

thread_local! {
    static HELD: RefCell<Option<tracing::span::EnteredSpan>> = const { RefCell::new(None) };
}

fn lvl(r: &Map<String, Value>) -> Vec<u64> {
    r["lvl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn a_span_kept_entered_in_a_thread_local_ends_when_the_thread_is_torn_down() {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(LogxideLayer::new(log.clone())),
    )
    .unwrap();

    // The holder's slot first: on Linux destroyed last, after logxide's and the registry's.
    std::thread::spawn(|| {
        HELD.with(|_| {});
        let span = tracing::info_span!("held:first", case = "first").entered();
        tracing::info!(case = "first", "inside");
        HELD.with(|h| *h.borrow_mut() = Some(span));
    })
    .join()
    .unwrap();
    // The holder's slot last: destroyed first, while the others are still there.
    std::thread::spawn(|| {
        let span = tracing::info_span!("held:last", case = "last").entered();
        tracing::info!(case = "last", "inside");
        HELD.with(|h| *h.borrow_mut() = Some(span));
    })
    .join()
    .unwrap();

    log.flush(None).unwrap();
    let lines = mem.lines();
    let all: Vec<Map<String, Value>> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 6, "{lines:#?}");
    for (i, at) in [(0, "held:first"), (3, "held:last")] {
        let (start, inside, end) = (&all[i], &all[i + 1], &all[i + 2]);
        assert_eq!(
            (start["at"].as_str(), start["st"].as_str()),
            (Some(at), Some("started"))
        );
        assert_eq!(lvl(start), [1]);
        assert_eq!(
            (inside["msg"].as_str(), lvl(inside)),
            (Some("inside"), vec![2])
        );
        assert_eq!(inside["tid"], start["tid"]);
        assert_eq!(
            (end["at"].as_str(), end["st"].as_str()),
            (Some(at), Some("succeeded"))
        );
        assert_eq!(
            (end["tid"].as_str(), lvl(end)),
            (start["tid"].as_str(), vec![3])
        );
    }
    let m = log.metrics();
    assert_eq!((m.enqueued, m.written, m.dropped, m.failed), (6, 6, 0, 0));
}
