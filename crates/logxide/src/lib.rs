#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod encode;
pub mod integrations;
pub mod logger;
pub mod sink;
pub mod writer;

pub use logger::{init, Level, Logger, LoggerBuilder, TaskIdMode};

/// The migration guides in `docs/`: their Rust examples run as doc tests.
#[cfg(doctest)]
pub mod migration_guides {
    /// `docs/MIGRATION-logxpy.md`.
    #[doc = include_str!("../../../docs/MIGRATION-logxpy.md")]
    pub struct Logxpy;

    /// `docs/MIGRATION-tracing-appender.md`.
    #[cfg(feature = "tracing")]
    #[doc = include_str!("../../../docs/MIGRATION-tracing-appender.md")]
    pub struct TracingAppender;
}
