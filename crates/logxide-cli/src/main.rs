//! `logxide`: benchmarks and tools for logxide.

/// `eprintln!` that gives up a line stderr cannot take (a closed pipe: `logxide check a b
/// 2>&1 | head -1` once `head` is gone) instead of panicking: the message has nowhere to
/// go, and the exit status still says what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod check;
mod lines;
mod record;
mod verify;
mod view;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Benchmarks and tools for the logxide logging library.
#[derive(Parser, Debug)]
#[command(
    name = "logxide",
    version,
    propagate_version = true,
    after_help = "Examples:\n  logxide view app.log                 task trees\n  logxide view --follow --level warning app.log\n  logxide check app.log                exit 0 clean, 1 problems, 2 usage/unreadable\n  logxide check --repair fixed.log app.log"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Show logxide files as task trees (logxide's and Eliot's layouts; `-` for stdin; --follow
    /// like tail -f)
    View(view::ViewArgs),
    /// Validate logxide files: JSON, keys, timestamps, task trees, torn lines, NUL tails
    Check(check::CheckArgs),
    /// Measure the library's throughput and latency
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// The asynchronous writer with a file sink, against a plain write(2) baseline
    Writer(bench::WriterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::View(args) => view::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Bench {
            what: Bench::Writer(args),
        } => bench_writer(&args),
    }
}

fn bench_writer(args: &bench::WriterArgs) -> ExitCode {
    if let Err((_option, msg)) = args.validate() {
        let mut cmd = Cli::command();
        let sub = cmd
            .find_subcommand_mut("bench")
            .and_then(|b| b.find_subcommand_mut("writer"))
            .map(|w| w.clone().bin_name("logxide bench writer"));
        let err = match sub {
            Some(mut w) => w.error(clap::error::ErrorKind::ValueValidation, msg),
            None => cmd.error(clap::error::ErrorKind::ValueValidation, msg),
        };
        err.exit();
    }
    let report = match bench::run(args) {
        Ok(r) => r,
        Err(e) => {
            say!("logxide bench writer: error: {e}");
            return ExitCode::from(3);
        }
    };
    let mut out = io::stdout().lock();
    let printed = if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        bench::print_summary(&report, &mut out)
    };
    match printed.and_then(|()| out.flush()) {
        // Nobody reads the result any more (`| head`): nothing to report, as in view and check.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            say!("logxide bench writer: cannot print the result: {e}");
            return ExitCode::from(3);
        }
        Ok(()) => {}
    }
    if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
