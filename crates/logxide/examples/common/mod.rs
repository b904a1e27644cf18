//! What every example shares: its output goes through [`say!`] / [`put!`], which return an
//! error instead of panicking when standard output is closed, and [`run`] ends the example
//! quietly on that error (`cargo run --example NAME | head -1`).

use std::error::Error;
use std::io;
use std::process::ExitCode;

/// `println!` that returns the error of a closed standard output (`?`) instead of panicking.
#[allow(unused_macros)] // not every example uses both
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` that returns the error of a closed standard output (`?`) instead of panicking.
#[allow(unused_macros)]
macro_rules! put {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// Runs the example: a broken pipe (the reader of its output went away) ends it with
/// success and without a message; any other error is printed, with a failure status.
pub fn run(example: fn() -> Result<(), Box<dyn Error>>) -> ExitCode {
    match example() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}
