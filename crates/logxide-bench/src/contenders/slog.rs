//! `slog`: `slog` key-value pairs, serialized by `slog-json` (with `add_default_keys`: `ts`
//! RFC 3339, `level`, `msg`) into a `BufWriter<File>` on `slog-async`'s worker thread. The
//! `Async` drain is built with `OverflowStrategy::Block` (its default, `DropAndReport`, drops
//! records when its channel is full) and its default channel of 128 records; the caller's
//! thread copies the record's values into the channel. Dropping the logger and the
//! `AsyncGuard` at the end joins the worker, which flushes the `BufWriter` when it drops it.
//!
//! ```text
//! {"msg":"request handled","level":"INFO","ts":"2026-01-01T00:00:00.123456789Z","path":"/api/v1/items","latency_ms":10.5,"user_id":42}
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ::slog::Drain as _;
use ::slog_async::{Async, AsyncGuard, OverflowStrategy};

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `slog` contender.
pub struct Slog {
    logger: ::slog::Logger,
    guard: AsyncGuard,
}

impl Contender for Slog {
    fn setup(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| e.to_string())?;
        let json = ::slog_json::Json::new(BufWriter::new(file))
            .add_default_keys()
            .build()
            .fuse();
        let (drain, guard) = Async::new(json)
            .overflow_strategy(OverflowStrategy::Block)
            .build_with_guard();
        let logger = ::slog::Logger::root(drain.fuse(), ::slog::o!());
        Ok(Slog { logger, guard })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::slog::info!(self.logger, "request handled"; "user_id" => i, "latency_ms" => latency_ms(i), "path" => PATH);
    }

    fn finish(self) -> Result<(), String> {
        drop(self.logger);
        drop(self.guard);
        Ok(())
    }
}
