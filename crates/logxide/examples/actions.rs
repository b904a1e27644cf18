//! Actions and task trees: nesting, failure with an error, a detached action finished on
//! another thread, and a task continued "remotely" from its serialized context.
//!
//! ```text
//! cargo run -p logxide --example actions
//! ```

#[macro_use]
mod common;

use std::thread;

use logxide::{info, start_action, warning};

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("logxide-actions.log");
    let guard = logxide::LoggerBuilder::new().target(&path).init()?;

    {
        let checkout = start_action!("shop:checkout", cart = 3);
        {
            let _pay = start_action!("payment:charge", amount_cents = 1999);
            info!("card accepted");
        }
        let stock = start_action!("stock:reserve", sku = "A-17");
        warning!("only one left");
        stock.fail(&std::io::Error::other("reserved by another order"));
        // The checkout itself still succeeds (it ends when dropped).
        let _ = &checkout;
    }

    // Work handed to another thread stays in the same task.
    let job = start_action!("report:render").detach();
    thread::spawn(move || {
        let _job = job.enter();
        info!("rendering on a worker thread");
    })
    .join()
    .expect("the worker does not panic");

    // A task continued elsewhere: the context travels as text (e.g. an HTTP header).
    let call = start_action!("rpc:call", method = "lookup");
    let header = call.context().to_string();
    let logger = guard.logger().clone();
    thread::spawn(move || {
        let context = header.parse().expect("a context we just wrote");
        let _serve = logger.continue_action(&context, "rpc:serve", |f| f.field("peer", "client"));
        info!("serving the call");
    })
    .join()
    .expect("the server does not panic");
    drop(call);

    drop(guard);
    say!("{}:", path.display());
    put!("{}", std::fs::read_to_string(&path)?);
    Ok(())
}
