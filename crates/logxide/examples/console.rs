//! A human-readable console next to the JSON log file: every record goes to the file, the
//! records at `info` or above also to standard error (the `debug` one only in the file), one colored line each (colors when
//! stderr is a terminal and `NO_COLOR` is not set).
//!
//! ```text
//! cargo run -p logxide --example console
//! NO_COLOR=1 cargo run -p logxide --example console
//! ```

#[macro_use]
mod common;

use logxide::sink::ColorChoice;
use logxide::{debug, error, info, note, start_action, warning, Level};

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("logxide-console.log");
    let guard = logxide::LoggerBuilder::new()
        .target(&path)
        .console(ColorChoice::Auto, Level::Info)
        .init()?;

    info!("service started", port = 8080, tls = true);
    debug!("config loaded", file = "/etc/app.toml", entries = 12);
    {
        let request = start_action!("http:request", path = "/api/orders", user = "Ada Lovelace");
        note!("cache miss", key = "orders:42");
        {
            let _query = start_action!("db:query", sql = "SELECT * FROM orders");
            info!("rows fetched", rows = 3);
        }
        warning!("slow upstream", ms = 950);
        request.fail(&std::io::Error::other("upstream timeout"));
    }
    // Record text never controls the terminal: this prints as `\x1b[2J\r\n...`.
    error!(
        "hostile input \x1b[2J\r\nFAKE LINE",
        from = "client\u{9b}31m"
    );
    drop(guard);
    // Its lines went to standard error; where the file is goes to standard output.
    say!("the JSON lines are in {}", path.display());
    Ok(())
}
