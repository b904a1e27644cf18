#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]

pub mod sink;
pub mod writer;
