//! A `shutdown` that uninstalls the global logger while an `init` replacing it is under way
//! (another thread's, between the `init`'s look at the global logger and its install):
//! records discarded meanwhile stay in `logger::metrics()`. Its own process (one test): it
//! counts the process's discards.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use logxide::logger;
use logxide::sink::{Batch, MemorySink, Sink, SinkError};
use logxide::LoggerBuilder;

/// A sink whose `name`, asked for once as the logger is built — inside `init`, after it
/// looked at the global logger — shuts the global logger down and logs a record, which
/// finds no logger, as another thread's `shutdown` and log call could then.
struct ShutsDownOnBuild(MemorySink);

static ACTED: AtomicBool = AtomicBool::new(false);

impl Sink for ShutsDownOnBuild {
    fn name(&self) -> &str {
        if !ACTED.swap(true, SeqCst) {
            logger::shutdown(None).unwrap();
            logxide::info!("discarded while the init is under way");
            assert_eq!(logger::metrics().dropped_by.shutdown, 1);
        }
        "shuts-down-on-build"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.0.write_batch(batch)
    }
}

/// The `init` had found a running logger, so it carried no discards over to the one it
/// installed; but that one was installed over none (the `shutdown` came between), and the
/// record discarded meanwhile — counted by `metrics` until then — vanished from its counts
/// (`dropped_by.shutdown` went from 1 to 0). Now the `init` decides what it carries as it
/// installs the logger, with no `shutdown` in between.
#[test]
fn records_discarded_between_a_shutdown_and_an_init_under_way_stay_counted() {
    let first = MemorySink::new();
    let g1 = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(first.clone())
        .init()
        .unwrap();
    logxide::info!("to the first logger");
    let second = MemorySink::new();
    let g2 = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(ShutsDownOnBuild(second.clone()))
        .init()
        .unwrap();
    assert!(ACTED.load(SeqCst));
    logxide::info!("to the second logger");
    logger::flush(None).unwrap();
    let m = logger::metrics();
    assert_eq!(
        (m.enqueued, m.written, m.dropped, m.dropped_by.shutdown),
        (2, 1, 1, 1)
    );
    assert_eq!((first.lines().len(), second.lines().len()), (1, 1));
    drop((g1, g2));
}
