//! Bridges from the ecosystem's logging facades into logxide.
//!
//! | feature | module | what |
//! |---|---|---|
//! | `log` (default) | [`log`](mod@self::log) | a `log::Log` implementation: records of crates that use the `log` macros land in the same file |
//! | `tracing` (default) | [`tracing`](mod@self::tracing) | a `tracing_subscriber::Layer`: spans become actions (task trees), events messages |

#[cfg(feature = "log")]
pub mod log;

#[cfg(feature = "tracing")]
pub mod tracing;
