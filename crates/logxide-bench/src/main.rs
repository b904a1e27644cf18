//! `logxide-bench`: runs the same logging workload through logxide and the established Rust
//! loggers, each in a child process of its own, and compares them. See the crate README.

mod contenders;
mod harness;
mod hist;
mod mem;
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
        }),
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
