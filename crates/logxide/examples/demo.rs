//! The main job: log through the asynchronous writer from several threads, then show where
//! the file is, its first lines, and the writer's metrics.
//!
//! ```text
//! cargo run --release -p logxide --example demo [-- PATH]
//! ```

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logxide::sink::{FileOptions, IoStrategy, OpenMode};
use logxide::writer::{Policy, Writer};

const THREADS: usize = 4;
const PER_THREAD: usize = 250_000;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("logxide-demo").join("demo.log"));

    let file = FileOptions::new()
        .strategy(IoStrategy::Block)
        .open_mode(OpenMode::Truncate)
        .open(&path)?;
    let writer = Writer::builder()
        .capacity(10_000)
        .policy(Policy::Block)
        .batch_size(100)
        .flush_interval(Duration::from_millis(100))
        .sink(file)
        .build()?;

    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..THREADS {
            let handle = writer.handle();
            s.spawn(move || {
                let mut line = Vec::with_capacity(160);
                for i in 0..PER_THREAD {
                    line.clear();
                    let ts = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_micros();
                    // Records arrive already serialized: one JSON object per line.
                    use std::io::Write;
                    write!(
                        line,
                        r#"{{"ts":{}.{:06},"tid":"demo.{t}","lvl":[1],"mt":"info","msg":"request handled","worker":{t},"seq":{i}}}"#,
                        ts / 1_000_000,
                        ts % 1_000_000
                    )
                    .expect("writing to a Vec cannot fail");
                    handle
                        .enqueue(&line)
                        .expect("the block policy never drops a record");
                }
            });
        }
    });
    let enqueue_time = start.elapsed();
    let report = writer.shutdown(None);
    let total_time = start.elapsed();

    println!("log file: {}", path.display());
    println!("first lines:");
    let reader = BufReader::new(std::fs::File::open(&path)?);
    for line in reader.lines().take(3) {
        println!("  {}", line?);
    }
    let m = &report.metrics;
    println!(
        "{} records from {THREADS} threads: enqueued in {:.3} s, on disk after {:.3} s ({:.2} M records/s)",
        m.enqueued,
        enqueue_time.as_secs_f64(),
        total_time.as_secs_f64(),
        m.written as f64 / total_time.as_secs_f64() / 1e6
    );
    println!(
        "accounting: enqueued {} = written {} + dropped {} + failed {} + pending {}",
        m.enqueued, m.written, m.dropped, m.failed, m.pending
    );
    println!("metrics: {}", serde_json::to_string_pretty(m)?);
    Ok(())
}
