//! Records of crates that log through the `log` facade land in logxide's file, next to the
//! application's own records, with their target, module, file and line as fields.
//!
//! ```text
//! cargo run -p logxide --example log_bridge
//! ```

#[macro_use]
mod common;

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("logxide-log-bridge.log");
    let guard = logxide::LoggerBuilder::new()
        .target(&path)
        .set("level", "info")?
        .init()?;
    logxide::integrations::log::install()?;

    logxide::info!("application record", via = "logxide");
    log::info!(target: "db::pool", "connected to {} in {}ms", "db1", 12);
    log::warn!(attempt = 2, backoff_ms = 250; "retrying a query");
    log::debug!("below the threshold: not written");

    drop(guard);
    say!("{}:", path.display());
    put!("{}", std::fs::read_to_string(&path)?);
    Ok(())
}
