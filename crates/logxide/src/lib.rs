#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

#[macro_use]
mod macros;

/// `TryFrom<String>` and `Deserialize` by `FromStr` for option enums: a configuration file
/// takes what `set` takes — any case, surrounding spaces, aliases — with the same error
/// messages; a value that is not text (a number, a boolean, null, a list) is told the names
/// accepted, as the parser's error lists them (the types' `Err` are [`OptionNames`]).
/// `@try_from` gives only `TryFrom<String>` (for a type with its own `Deserialize`).
macro_rules! deserialize_by_from_str {
    (@try_from $($t:ty),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = <$t as std::str::FromStr>::Err;
            /// Parses the text as [`FromStr`](std::str::FromStr) does.
            fn try_from(text: String) -> Result<Self, <$t as std::str::FromStr>::Err> {
                text.parse()
            }
        }
    )*};
    ($($t:ty),* $(,)?) => {$(
        deserialize_by_from_str!(@try_from $t);

        /// As [`FromStr`](std::str::FromStr) parses text; anything but text is refused with
        /// the names accepted.
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        // The parser's own list: the empty text is no name of any option.
                        match "".parse::<$t>() {
                            Err(e) => {
                                let (what, names) = crate::OptionNames::names(&e);
                                write!(f, "text naming the {what}: one of {names}")
                            }
                            Ok(_) => f.write_str("text"),
                        }
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$t, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    )*};
}

/// An option's parse error that can tell what it parses and the names it accepts (the
/// message of a value of the wrong type in a configuration file).
pub(crate) trait OptionNames {
    /// What is parsed (`policy`) and the names accepted, as the error's message lists them.
    fn names(&self) -> (&'static str, &'static str);
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
