//! `LogxideLayer::global()` as the process's `tracing` subscriber while no logxide logger is
//! installed, racing with another thread's `init` and `shutdown`: every event is written
//! whole or counted as discarded. Its own binary: it counts the process's discards.
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::MemorySink;
use logxide::LoggerBuilder;
use tracing_subscriber::layer::SubscriberExt;

/// An event that found no global logger went on to the macros' path, which looked for the
/// logger again: an `init` in between received it as a stand-in record — its message
/// without its fields nor its `target` (neither written whole nor counted as discarded).
/// Now it is counted as discarded, as the layer found it. Every event here is in a sink
/// with all its fields, or in the discard count, exactly once.
#[test]
fn events_racing_with_init_are_written_whole_or_counted_discarded() {
    const CYCLES: usize = 300;
    const LOGGERS: usize = 2;
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let emitted = Arc::new(AtomicU64::new(0));
    let loggers: Vec<_> = (0..LOGGERS)
        .map(|t| {
            let (stop, emitted) = (Arc::clone(&stop), Arc::clone(&emitted));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(SeqCst) {
                    tracing::info!(target: "race", t, n, "event");
                    n += 1;
                }
                emitted.fetch_add(n, SeqCst);
            })
        })
        .collect();
    let mut installed = Vec::new();
    for _ in 0..CYCLES {
        let mem = MemorySink::new();
        let guard = LoggerBuilder::new()
            .use_env(false)
            .panic_hook(false)
            .sink(mem.clone())
            .init()
            .unwrap();
        std::thread::yield_now();
        logxide::logger::shutdown(None).unwrap();
        installed.push((guard, mem));
    }
    stop.store(true, SeqCst);
    for t in loggers {
        t.join().unwrap();
    }
    let (mut lines, mut whole, mut enqueued, mut written) = (0u64, 0u64, 0u64, 0u64);
    for (guard, mem) in &installed {
        for line in mem.lines() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            lines += 1;
            let fields = (&v["msg"], &v["target"], v["t"].is_u64(), v["n"].is_u64());
            if fields == (&"event".into(), &"race".into(), true, true) {
                whole += 1;
            }
        }
        // Its records, and those that reached it after its shutdown (counted dropped there).
        let m = guard.logger().metrics();
        enqueued += m.enqueued;
        written += m.written;
    }
    // With no logger installed, `metrics` reports the last one's counts plus every record
    // discarded for lack of a logger since the process began (each `init` carried them on).
    let last = installed.last().unwrap().0.logger().metrics();
    let discarded = logxide::logger::metrics().enqueued - last.enqueued;
    assert_eq!(
        (whole, lines),
        (written, written),
        "records without their fields"
    );
    assert!(written > 0 && discarded > 0, "{written} {discarded}");
    assert_eq!(enqueued + discarded, emitted.load(SeqCst));
}
