#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod macros;

/// `TryFrom<String>` by `FromStr` for option enums, which deserialize through it
/// (`#[serde(try_from = "String")]`): a configuration file takes what `set` takes — any
/// case, surrounding spaces, aliases — with the same error messages.
macro_rules! deserialize_by_from_str {
    ($($t:ty),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = <$t as std::str::FromStr>::Err;
            /// Parses the text as [`FromStr`](std::str::FromStr) does.
            fn try_from(text: String) -> Result<Self, <$t as std::str::FromStr>::Err> {
                text.parse()
            }
        }
    )*};
}

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
