//! Bridges from the ecosystem's logging facades into logxide.
//!
//! | feature | module | what |
//! |---|---|---|
//! | `log` (default) | [`log`](mod@self::log) | a `log::Log` implementation: records of crates that use the `log` macros land in the same file |

#[cfg(feature = "log")]
pub mod log;
