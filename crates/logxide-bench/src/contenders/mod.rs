//! The contenders: one module each, every module's documentation shows its configuration and
//! what one line of its output looks like.

pub mod fast_log;
pub mod ftlog;
pub mod logxide;
pub mod slog;
pub mod spdlog;
pub mod sync_baseline;
pub mod tracing;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{self, RunReport};

/// Every contender, in the order they run.
pub const NAMES: [&str; 7] = [
    "logxide",
    "tracing",
    "slog",
    "spdlog",
    "ftlog",
    "fast_log",
    "sync_baseline",
];

/// The time since the Unix epoch (0 if the clock is before it).
#[inline]
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Runs the workload through the contender called `name` (in this process: its logger is
/// installed globally where the library works that way).
pub fn run(name: &str, records: u64, threads: usize, path: &Path) -> Result<RunReport, String> {
    match name {
        "logxide" => harness::run::<self::logxide::Logxide>(records, threads, path),
        "tracing" => harness::run::<self::tracing::Tracing>(records, threads, path),
        "slog" => harness::run::<self::slog::Slog>(records, threads, path),
        "spdlog" => harness::run::<self::spdlog::Spdlog>(records, threads, path),
        "ftlog" => harness::run::<self::ftlog::Ftlog>(records, threads, path),
        "fast_log" => harness::run::<self::fast_log::FastLog>(records, threads, path),
        "sync_baseline" => {
            harness::run::<self::sync_baseline::SyncBaseline>(records, threads, path)
        }
        _ => Err(format!(
            "unknown contender {name:?}; expected one of {}",
            NAMES.join(", ")
        )),
    }
}
