//! `logxide`: the global logger installed by [`LoggerBuilder::init`] with the defaults (queue
//! 10 000 records, the lossless `block` policy, the `block` file strategy: large `write(2)`s),
//! each record logged with the [`info!`] macro; the record is encoded in the caller's thread
//! and copied into the writer's queue. The guard's drop drains the queue at the end.
//!
//! ```text
//! {"ts":1767225600.123456,"tid":"k3Jd82Qa.1","lvl":[1],"mt":"info","msg":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"}
//! ```
//!
//! [`LoggerBuilder::init`]: ::logxide::LoggerBuilder::init
//! [`info!`]: ::logxide::info

use std::path::Path;

use ::logxide::logger::LoggerGuard;
use ::logxide::LoggerBuilder;

use crate::harness::{latency_ms, Contender, Local, MESSAGE, PATH};

/// The `logxide` contender.
pub struct Logxide {
    guard: LoggerGuard,
}

impl Contender for Logxide {
    fn setup(path: &Path) -> Result<Self, String> {
        let guard = LoggerBuilder::new()
            .use_env(false)
            .target(path)
            .init()
            .map_err(|e| e.to_string())?;
        Ok(Logxide { guard })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::logxide::info!(
            MESSAGE,
            user_id = i,
            latency_ms = latency_ms(i),
            path = PATH
        );
    }

    fn finish(self) -> Result<(), String> {
        let logger = self.guard.logger().clone();
        drop(self.guard);
        let m = logger.metrics();
        if m.dropped > 0 || m.failed > 0 || m.pending > 0 || m.written != m.enqueued {
            return Err(format!("logxide lost records; after shutdown: {m:?}"));
        }
        Ok(())
    }
}
