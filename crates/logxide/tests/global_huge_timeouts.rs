//! Timeouts past the clock's range (`Duration::MAX`) on the logger's own waits: they mean
//! "never", as on the writer's (`writer_api::durations_past_the_clocks_range_mean_never_
//! instead_of_panicking`). A test of its own: it installs the global logger.

use std::time::Duration;

use logxide::sink::MemorySink;

/// `logger::flush`, `logger::flush_checked` and `Logger::shutdown` computed their deadline as
/// `Instant::now() + timeout`, which panics ("overflow when adding duration to instant") for
/// a timeout past the clock's range, though the writer's own flush and shutdown take it as no
/// deadline: they now wait as long as it takes, as with `None`.
#[test]
fn a_timeout_past_the_clocks_range_waits_without_a_deadline() {
    let max = Some(Duration::MAX);
    let mem = MemorySink::new();
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    logxide::info!("one");
    assert_eq!(logxide::logger::flush(max), Ok(()));
    logxide::info!("two");
    assert_eq!(logxide::logger::flush_checked(max), Ok(()));
    assert_eq!(mem.lines().len(), 2);
    drop(guard);

    let own = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .sink(own.clone())
        .build()
        .unwrap();
    log.info("three");
    let report = log.shutdown(max).expect("the first shutdown");
    assert_eq!((report.metrics.written, report.timed_out), (1, false));
    assert!(log.shutdown(max).is_none()); // already shut down: no wait
    assert_eq!(own.lines().len(), 1);
}
