//! Memory-mapped file region (placeholder: being written).
