//! The runtime controls: a `manual` writer that writes only when told (`trigger`, `flush`),
//! `sync_mode` for records that must be in the file before the call returns, `metrics`,
//! `is_async`, the opt-in drain on SIGTERM/SIGINT, and `shutdown` with its report. Options
//! are given by name, as logxpy's `init` takes them.
//!
//! ```text
//! cargo run -p logxide --example runtime
//! ```

#[macro_use]
mod common;

use std::time::Duration;

use logxide::logger;
use logxide::{error, info, LoggerBuilder};

/// Lines in the file now.
fn lines_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("logxide-runtime.log");
    let _guard = LoggerBuilder::new()
        .target(&path)
        .set("writer_mode", "manual")?
        .set("queue", "1000")?
        .set("policy", "drop_oldest")?
        .flush_on_signals(true) // SIGTERM / SIGINT drain the logger, then act as usual
        .init()?;
    say!("async: {}", logger::is_async());

    for i in 0..3 {
        info!("queued", i);
    }
    let m = logger::metrics();
    say!(
        "after 3 records: {} pending, {} in the file",
        m.pending,
        lines_in(&path)
    );

    // `trigger` asks the writer to write now, without waiting; `flush` waits for it.
    logger::trigger();
    logger::flush(Some(Duration::from_secs(5)))?;
    say!("after flush: {} in the file", lines_in(&path));

    {
        // Written by this thread before each call returns, after everything queued before.
        let _sync = logger::sync_mode();
        info!("queued before the error");
        error!("disk almost full", free_mb = 12);
        say!("inside sync_mode: {} in the file", lines_in(&path));
    }

    info!("queued again");
    let report = logger::shutdown(Some(Duration::from_secs(5))).expect("a logger is installed");
    let m = report.metrics;
    say!(
        "shutdown: timed out {}, enqueued {} = written {} + dropped {} + failed {} + pending {}",
        report.timed_out,
        m.enqueued,
        m.written,
        m.dropped,
        m.failed,
        m.pending
    );
    info!("after shutdown: counted as dropped");
    say!(
        "metrics after shutdown: dropped {} (shutdown {})",
        logger::metrics().dropped,
        logger::metrics().dropped_by.shutdown
    );
    say!("{}:", path.display());
    put!("{}", std::fs::read_to_string(&path)?);
    Ok(())
}
