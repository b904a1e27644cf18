//! `tracing`: `tracing` events with typed fields, formatted by `tracing-subscriber`'s
//! `fmt().json()` layer (defaults: RFC 3339 timestamp, level, fields nested under `fields`,
//! target) in the caller's thread, and handed as finished lines to `tracing-appender`'s
//! `non_blocking` writer built with `NonBlockingBuilder::default().lossy(false)` (its default
//! is lossy: it drops lines when its 128 000-line channel is full). The worker thread writes
//! into a `BufWriter<File>`, which it flushes whenever its channel runs empty. Dropping the
//! `WorkerGuard` at the end drains the channel and flushes.
//!
//! ```text
//! {"timestamp":"2026-01-01T00:00:00.123456Z","level":"INFO","fields":{"message":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"},"target":"logxide_bench::contenders::tracing"}
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ::tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `tracing` contender.
pub struct Tracing {
    guard: WorkerGuard,
}

impl Contender for Tracing {
    fn setup(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| e.to_string())?;
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(false)
            .finish(BufWriter::new(file));
        ::tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(Tracing { guard })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::tracing::info!(
            user_id = i,
            latency_ms = latency_ms(i),
            path = PATH,
            "request handled"
        );
    }

    fn finish(self) -> Result<(), String> {
        drop(self.guard);
        Ok(())
    }
}
