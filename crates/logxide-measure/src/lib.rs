//! Measuring helpers shared by logxide's benchmarks (`logxide bench writer` and
//! `logxide-bench`): a latency histogram cheap enough for a timed loop, and this process's
//! memory and per-thread CPU readings from `/proc`.

pub mod hist;
pub mod mem;

pub use hist::Histogram;
