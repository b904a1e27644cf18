//! `spdlog`: `spdlog-rs` structured key-values (`kv: { ... }`, typed values), formatted by its
//! `JsonFormatter` (`level`, `timestamp` in ms, `payload`, `kv`, `tid`) in the pool thread,
//! through a `FileSink` (a `BufWriter<File>` behind a mutex) wrapped in an `AsyncPoolSink`
//! with `OverflowPolicy::Block` (also its default) and a private one-thread `ThreadPool` with
//! the default 8 192-task channel; the caller's thread copies the record (payload and
//! key-values) into an owned task. At the end: `flush()` on the logger, then dropping the
//! logger, the sink and the last reference to the pool, which joins the pool thread after it
//! ran every queued task; dropping the `FileSink` flushes its `BufWriter`.
//!
//! ```text
//! {"level":"info","timestamp":1767225600123,"payload":"request handled","kv":{"user_id":42,"latency_ms":10.5,"path":"/api/v1/items"},"tid":12345}
//! ```

use std::path::Path;
use std::sync::Arc;

use ::spdlog::formatter::JsonFormatter;
use ::spdlog::sink::{AsyncPoolSink, FileSink, OverflowPolicy};
use ::spdlog::{Logger, ThreadPool};

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `spdlog` contender.
pub struct Spdlog {
    logger: Logger,
    pool: Arc<ThreadPool>,
}

impl Contender for Spdlog {
    fn setup(path: &Path) -> Result<Self, String> {
        let file = FileSink::builder()
            .path(path)
            .truncate(true)
            .formatter(JsonFormatter::new())
            .build()
            .map_err(|e| e.to_string())?;
        let pool = ThreadPool::builder()
            .build_arc()
            .map_err(|e| e.to_string())?;
        let sink = AsyncPoolSink::builder()
            .sink(Arc::new(file))
            .overflow_policy(OverflowPolicy::Block)
            .thread_pool(Arc::clone(&pool))
            .build()
            .map_err(|e| e.to_string())?;
        let logger = Logger::builder()
            .sink(Arc::new(sink))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Spdlog { logger, pool })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::spdlog::info!(logger: self.logger, "request handled", kv: { user_id = i, latency_ms = latency_ms(i), path = PATH });
    }

    fn finish(self) -> Result<(), String> {
        self.logger.flush();
        drop(self.logger);
        if Arc::strong_count(&self.pool) != 1 {
            return Err("spdlog: the thread pool is still referenced at the end".into());
        }
        drop(self.pool);
        Ok(())
    }
}
