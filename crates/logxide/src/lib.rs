#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

pub mod encode;
pub mod sink;
pub mod writer;
