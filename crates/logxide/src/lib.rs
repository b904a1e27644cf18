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
