//! The writer engine on its own: several sinks, a drop policy under overload, metrics.
//!
//! ```text
//! cargo run -p logxide --example writer
//! ```

#[macro_use]
mod common;

use std::time::Duration;

use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
use logxide::writer::{Policy, Writer};

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let memory = MemorySink::new();
    // A slow sink: the queue fills and `drop_newest` refuses (and counts) what does not fit.
    let slow = FnSink::new("slow", |_: &Batch<'_>| -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(5));
        Ok(())
    });
    let writer = Writer::builder()
        .capacity(64)
        .policy(Policy::DropNewest)
        .sink(memory.clone())
        .sink(slow)
        .build()?;
    let handle = writer.handle();
    let mut refused = 0;
    for i in 0..10_000 {
        if handle
            .enqueue(format!(r#"{{"i":{i}}}"#).as_bytes())
            .is_err()
        {
            refused += 1;
        }
    }
    let report = writer.shutdown(None);
    let m = &report.metrics;
    say!("refused by enqueue: {refused}");
    say!(
        "enqueued {} = written {} + dropped {} (queue_full {}) + failed {} + pending {}",
        m.enqueued,
        m.written,
        m.dropped,
        m.dropped_by.queue_full,
        m.failed,
        m.pending
    );
    say!("lines in memory: {}", memory.lines().len());
    Ok(())
}
