//! Records discarded for lack of a global logger stay in `logger::metrics()` when the next
//! logger is installed: before the first `init`, and between a `shutdown` and an `init` onto
//! another file. Its own process (this file holds one test): "before the first init" must
//! really be before any.

use logxide::logger;
use logxide::sink::MemorySink;
use logxide::LoggerBuilder;

fn counts() -> (u64, u64, u64, u64) {
    let m = logger::metrics();
    (m.enqueued, m.written, m.dropped, m.dropped_by.shutdown)
}

#[test]
fn discards_before_an_init_are_counted_with_the_logger_it_installs() {
    // The one-time warning about records before init goes to stderr; that is all it does.
    for i in 0..3 {
        logxide::info!("before any init", i = i);
    }
    assert_eq!(counts(), (3, 0, 3, 3));

    let first = MemorySink::new();
    let guard = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(first.clone())
        .init()
        .unwrap();
    assert_eq!(counts(), (3, 0, 3, 3), "the first logger carries them");
    logxide::info!("to the first logger");
    logger::flush(None).unwrap();
    assert_eq!(counts(), (4, 1, 3, 3));
    assert_eq!(first.lines().len(), 1);

    let report = logger::shutdown(None).unwrap();
    // The logger's own report counts only what reached it.
    assert_eq!((report.metrics.enqueued, report.metrics.written), (1, 1));
    assert_eq!(counts(), (4, 1, 3, 3), "kept after the shutdown");
    logxide::info!("between shutdown and init");
    logxide::info!("between shutdown and init");
    assert_eq!(counts(), (6, 1, 5, 5));
    drop(guard);

    // Another sink (not a re-init onto the same file): every record discarded so far is
    // carried over (those before the first init too, which the stopped logger reported);
    // what the stopped logger itself wrote is its own.
    let second = MemorySink::new();
    let guard = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(second.clone())
        .init()
        .unwrap();
    assert_eq!(counts(), (5, 0, 5, 5));
    logxide::info!("to the second logger");
    logger::flush(None).unwrap();
    assert_eq!(counts(), (6, 1, 5, 5));

    // Replacing a running logger carries nothing (none were discarded), and the replaced
    // one's counts stay readable through its guard.
    let third = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(MemorySink::new())
        .init()
        .unwrap();
    assert_eq!(counts(), (0, 0, 0, 0));
    let replaced = guard.logger().metrics();
    assert_eq!((replaced.enqueued, replaced.written), (1, 1));
    assert_eq!(second.lines().len(), 1);
    drop(third);
}
