//! Context: fields bound to a logger, scopes that add fields to everything logged inside
//! them, and masking of secret fields on every path.
//!
//! ```text
//! cargo run -p logxide --example context
//! ```

#[macro_use]
mod common;

use logxide::logger::{scope, Fields, Mask};
use logxide::{info, Logger};

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let memory = logxide::sink::MemorySink::new();
    let log = Logger::builder()
        .sink(memory.clone())
        .mask(Mask::new(Mask::DEFAULT.iter().chain(&["pin"])))
        .build()?;

    let request_log = log.ctx(Fields::new().with("request_id", "r-42").with("user", "ada"));
    {
        let _tenant = scope(Fields::new().with("tenant", "acme"));
        info!(logger: request_log, "login", password = "hunter2", pin = 1234);
        let _region = scope(Fields::new().with("tenant", "acme-eu").with("region", "eu"));
        info!(logger: request_log, "inner scope wins", user = "call site wins");
    }
    info!(logger: log, "no context here");

    log.flush(None)?;
    for line in memory.lines() {
        say!("{line}");
    }
    Ok(())
}
