//! `fast_log`: `fast_log` has no key-value support (it copies `record.args()` to a `String`
//! and ignores the `log` crate's key-values), so the fields are formatted into the message:
//! `log::info!("request handled user_id={} latency_ms={} path={}", ...)`, and the check reads
//! `user_id=N` from the message. Lines are formatted by `FastLogFormatJson` on fast_log's
//! worker thread. Channel: `chan_len(Some(100_000))` — its default is `None`, an
//! **unbounded** channel; bounded channels block when full (crossbeam `send`), so nothing is
//! dropped. The file appender (`Config::file`, a plain `File` in append mode) does one
//! `write(2)` per batch the worker received. At the end `log::logger().flush()` sends a flush
//! command and waits on its `WaitGroup` until the appender has written everything before it.
//!
//! ```text
//! {"args":"request handled user_id=42 latency_ms=10.5 path=/api/v1/items","date":"2026-01-01 00:00:00.123456","file":"crates/logxide-bench/src/contenders/fast_log.rs","level":"INFO","line":40}
//! ```

use std::path::Path;

use ::fast_log::config::Config;
use ::fast_log::FastLogFormatJson;

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `fast_log` contender.
pub struct FastLog;

impl Contender for FastLog {
    fn setup(path: &Path) -> Result<Self, String> {
        let path = path.to_str().ok_or("the log path is not UTF-8")?;
        ::fast_log::init(
            Config::new()
                .file(path)
                .chan_len(Some(100_000))
                .format(FastLogFormatJson::new()),
        )
        .map_err(|e| e.to_string())?;
        Ok(FastLog)
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::log::info!(
            "request handled user_id={} latency_ms={} path={}",
            i,
            latency_ms(i),
            PATH
        );
    }

    fn finish(self) -> Result<(), String> {
        ::log::logger().flush();
        Ok(())
    }
}
