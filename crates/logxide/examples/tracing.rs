//! `tracing` spans and events through logxide: spans become actions (task trees), events
//! messages; an error makes its span fail. Prints the lines written.
//!
//! ```sh
//! cargo run -p logxide --example tracing
//! ```

#[macro_use]
mod common;

use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::MemorySink;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
#[allow(dead_code)] // shown through `Debug`
struct Request<'a> {
    method: &'a str,
    path: &'a str,
}

fn fetch_user(id: u64) -> Result<String, std::io::Error> {
    let span = tracing::debug_span!(
        "db:query",
        table = "users",
        id,
        rows = tracing::field::Empty
    );
    let _entered = span.enter();
    if id == 0 {
        let err = std::io::Error::other("no user 0");
        tracing::error!(
            error = &err as &(dyn std::error::Error + 'static),
            "query failed"
        );
        return Err(err);
    }
    span.record("rows", 1);
    Ok(format!("user-{id}"))
}

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    // In an application: `logxide::init()`, then
    // `tracing::subscriber::set_global_default(registry().with(LogxideLayer::global()))`.
    let mem = MemorySink::new();
    let logger = logxide::Logger::builder().sink(mem.clone()).build()?;
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(logger.clone()));
    tracing::subscriber::set_global_default(subscriber)?;

    tracing::info!(port = 8080, tls = true, "service started");
    for id in [7, 0] {
        let request = Request {
            method: "GET",
            path: "/users",
        };
        let span = tracing::info_span!(
            "http:request",
            request = ?request,
            user_id = id,
            error = tracing::field::Empty, // recorded: the span ends failed
        );
        span.in_scope(|| match fetch_user(id) {
            Ok(name) => tracing::info!(%name, latency_ms = 1.5, "request handled"),
            Err(e) => {
                tracing::warn!("request not handled");
                span.record("error", tracing::field::display(&e));
            }
        });
    }

    logger.flush(None)?;
    for line in mem.lines() {
        say!("{line}");
    }
    Ok(())
}
