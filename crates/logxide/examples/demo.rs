//! The main job: a small service logs nested tasks through the asynchronous writer — HTTP
//! requests, a database query inside each, one failure with an error — from four threads.
//! Then it shows where the file is, its first lines, and the writer's metrics.
//!
//! ```text
//! cargo run --release -p logxide --example demo [-- PATH]
//! ```

#[macro_use]
mod common;

use std::error::Error;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use logxide::logger::{scope, Fields};
use logxide::{critical, debug, info, start_action, success, warning};

const THREADS: usize = 4;
const REQUESTS_PER_THREAD: usize = 50_000;

#[derive(Debug)]
struct DbError {
    table: &'static str,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relation \"{}\" does not exist", self.table)
    }
}

impl Error for DbError {}

/// One request: an action with a database query nested inside.
fn handle_request(worker: usize, n: usize) {
    let request = start_action!(
        "http:request",
        method = "GET",
        path = "/api/orders",
        worker,
        n
    );
    info!("request accepted", client = %std::net::Ipv4Addr::new(10, 0, 0, (n % 250) as u8));
    {
        let _query = start_action!(
            "db:query",
            sql = "SELECT * FROM orders WHERE id = $1",
            id = n
        );
        debug!(
            "rows fetched",
            rows = n % 7,
            password = "never written in clear"
        );
    }
    if n == REQUESTS_PER_THREAD / 2 && worker == 0 {
        // The one failing request: the error's type and text end the action.
        warning!("retrying once", attempt = 2);
        request.fail(&DbError {
            table: "orders_archive",
        });
    } else {
        success!(
            "request served",
            status = 200,
            latency_ms = (n % 50) as f64 * 0.25
        );
    }
}

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("logxide-demo").join("demo.log"));

    let guard = logxide::LoggerBuilder::new()
        .target(&path)
        .set("level", "debug")?
        .set("flush", "100ms")?
        .set("policy", "block")?
        .set("writer_type", "block")?
        .init()?;

    let start = Instant::now();
    info!(
        "service starting",
        threads = THREADS,
        requests = THREADS * REQUESTS_PER_THREAD
    );
    thread::scope(|s| {
        for worker in 0..THREADS {
            s.spawn(move || {
                let _svc = scope(
                    Fields::new()
                        .with("service", "orders")
                        .with("worker", worker),
                );
                for n in 0..REQUESTS_PER_THREAD {
                    handle_request(worker, n);
                }
            });
        }
    });
    critical!("service stopping", reason = "demo finished");
    let report = logxide::logger::shutdown(None).expect("the logger was installed");
    drop(guard);
    let elapsed = start.elapsed();

    say!("log file: {}", path.display());
    say!("first lines:");
    for line in BufReader::new(std::fs::File::open(&path)?).lines().take(8) {
        say!("  {}", line?);
    }
    let m = &report.metrics;
    say!(
        "{} records in {:.3} s ({:.2} M records/s, all in the file: shutdown drained the queue; not fsynced)",
        m.written,
        elapsed.as_secs_f64(),
        m.written as f64 / elapsed.as_secs_f64() / 1e6
    );
    say!(
        "accounting: enqueued {} = written {} + dropped {} + failed {} + pending {}",
        m.enqueued,
        m.written,
        m.dropped,
        m.failed,
        m.pending
    );
    say!("metrics: {}", serde_json::to_string_pretty(m)?);
    say!("read it as a tree: each line's \"tid\" is its task, \"lvl\" its place in the task");
    Ok(())
}
