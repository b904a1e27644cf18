//! logxide: structured JSON-line logging with a lossless, bounded asynchronous writer.
#![warn(missing_docs)]

pub mod sink;
pub mod writer;
