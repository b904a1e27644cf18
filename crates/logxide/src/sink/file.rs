//! File sink (placeholder: being written).
