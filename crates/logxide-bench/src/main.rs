//! `logxide-bench`: runs the same logging workload through logxide and the established Rust
//! loggers, each in a child process of its own, and compares them. See the crate README.

mod contenders;
mod harness;
mod micro;
mod peers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "logxide-bench",
    about = "Benchmarks logxide against the established Rust loggers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the workload through every contender (each in its own child process).
    Peers(PeersArgs),
    /// Measures the pieces of one log call on the caller's side (ns per call).
    Micro(MicroArgs),
    /// Logs N records (micro's `info`, `tracing_event` or `log_record` case) once, into a discarding sink: the workload to
    /// count instructions with `valgrind --tool=callgrind`, which do not depend on the load of
    /// a shared machine the way nanoseconds do.
    Hot(HotArgs),
    /// Runs one contender in this process and prints its result as one JSON line (used by
    /// `peers`).
    #[command(hide = true)]
    RunOne(RunOneArgs),
}

#[derive(Args)]
struct PeersArgs {
    /// Records in total.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Producer threads (the records are split evenly between them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Where the log files go (default: a new directory under the system's temp directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the log files.
    #[arg(long)]
    keep: bool,
    /// Run only these contenders (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run every contender this many times, interleaved (one round of all, then the next),
    /// and report each contender's median run by records/s, with the range of all runs: on a
    /// shared machine one run is noise.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    repeat: u64,
}

#[derive(Args)]
struct MicroArgs {
    /// Calls per round.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: u64,
    /// Rounds per case (the best counts).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HotArgs {
    /// Records to log.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// The call: `info` (logxide's macro), `tracing` (the same record through
    /// `tracing::info!` and logxide's layer) or `log` (through `log::info!` and logxide's
    /// `log` bridge).
    #[arg(long, value_enum, default_value_t = micro::HotCase::Info)]
    case: micro::HotCase,
}

#[derive(Args)]
struct RunOneArgs {
    #[arg(long)]
    contender: String,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,
    /// The log file (replaced if it exists).
    #[arg(long)]
    file: PathBuf,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Peers(a) => peers::main(peers::Options {
            records: a.records,
            threads: a.threads as usize,
            json: a.json,
            dir: a.dir,
            keep: a.keep,
            only: a.only,
            repeat: a.repeat as usize,
        }),
        Command::Micro(a) => match micro::run(a.iterations, a.rounds) {
            Ok(cases) if a.json => {
                println!(
                    "{}",
                    serde_json::json!({"iterations": a.iterations, "rounds": a.rounds, "cases": cases})
                );
                ExitCode::SUCCESS
            }
            Ok(cases) => {
                for c in &cases {
                    let v = serde_json::to_value(c).unwrap_or_default();
                    println!(
                        "{:<14} {:>8.1} ns/call",
                        v["name"].as_str().unwrap_or(""),
                        v["ns_per_call"].as_f64().unwrap_or(0.0)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("logxide-bench micro: {e}");
                ExitCode::from(2)
            }
        },
        Command::Hot(a) => match micro::hot(a.case, a.records) {
            Ok(ns) => {
                println!("{} records, {ns:.1} ns/call", a.records);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("logxide-bench hot: {e}");
                ExitCode::from(2)
            }
        },
        Command::RunOne(a) => {
            match contenders::run(&a.contender, a.records, a.threads as usize, &a.file) {
                Ok(report) => {
                    println!(
                        "{}",
                        serde_json::to_string(&report).expect("a report serializes")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("logxide-bench run-one {}: {e}", a.contender);
                    ExitCode::from(2)
                }
            }
        }
    }
}
