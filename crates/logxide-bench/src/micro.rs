//! `logxide-bench micro`: what one log call costs the caller, piece by piece, in one process.
//!
//! Each case runs `iterations` calls in a tight loop on one thread and reports nanoseconds per
//! call (the best of `rounds` rounds, to shed the noise of a shared machine), so the figures
//! can be compared as ratios within one run:
//!
//! - `disabled`: `debug!` below an `info` threshold — the level check alone.
//! - `encode`: the encoder alone: a record with the message and three fields into a reused
//!   buffer (no clock, no queue).
//! - `clock`: `Timestamp::now()`.
//! - `enqueue`: a finished 150-byte line into the writer's queue (a discarding sink).
//! - `info`: the whole `info!` call with three fields on the global logger, writing to a
//!   sink that discards (so the disk is not measured).
//! - `tracing_event`: the same record as `info` through `tracing::info!` and logxide's
//!   `tracing` layer (`LogxideLayer::global()` on a `tracing_subscriber` registry): the cost
//!   of the bridge against the plain macro.
//! - `message`: a record with no field through a (non-global) `Logger`, same sink.

use std::hint::black_box;
use std::time::Instant;

use logxide::encode::{Format, RecordEncoder, Timestamp};
use logxide::integrations::tracing::LogxideLayer;
use logxide::sink::{Batch, FnSink};
use logxide::writer::Writer;
use serde::Serialize;
use tracing_subscriber::layer::SubscriberExt;

/// One case's result.
#[derive(Serialize)]
pub struct Case {
    name: &'static str,
    ns_per_call: f64,
}

fn best_of(rounds: u32, iterations: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for i in 0..iterations {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn discard() -> FnSink<impl FnMut(&Batch<'_>) -> Result<(), logxide::sink::SinkError> + Send> {
    FnSink::new("discard", |_: &Batch<'_>| Ok(()))
}

/// `logxide-bench hot`: the `info` case once, `records` calls; returns ns per call.
pub fn hot(records: u64) -> Result<f64, String> {
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(discard())
        .init()
        .map_err(|e| e.to_string())?;
    let ns = best_of(1, records, |i| {
        logxide::info!(
            "request handled",
            user_id = black_box(i),
            latency_ms = i as f64 * 0.25,
            path = "/api/v1/items"
        );
    });
    drop(guard);
    Ok(ns)
}

/// Runs every case.
pub fn run(iterations: u64, rounds: u32) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();

    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(discard())
        .set("level", "info")
        .and_then(|b| b.init())
        .map_err(|e| e.to_string())?;
    cases.push(Case {
        name: "disabled",
        ns_per_call: best_of(rounds, iterations, |i| {
            logxide::debug!("not written", i = black_box(i));
        }),
    });
    cases.push(Case {
        name: "info",
        ns_per_call: best_of(rounds, iterations, |i| {
            logxide::info!(
                "request handled",
                user_id = black_box(i),
                latency_ms = i as f64 * 0.25,
                path = "/api/v1/items"
            );
        }),
    });
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
    let default = ::tracing::subscriber::set_default(subscriber);
    cases.push(Case {
        name: "tracing_event",
        ns_per_call: best_of(rounds, iterations, |i| {
            ::tracing::info!(
                user_id = black_box(i),
                latency_ms = i as f64 * 0.25,
                path = "/api/v1/items",
                "request handled"
            );
        }),
    });
    drop(default);
    drop(guard);
    logxide::logger::shutdown(None);
    let local = logxide::Logger::builder()
        .use_env(false)
        .sink(discard())
        .build()
        .map_err(|e| e.to_string())?;
    cases.push(Case {
        name: "message",
        ns_per_call: best_of(rounds, iterations, |_| {
            local.log(logxide::Level::Info, "request handled", |_| {});
        }),
    });
    local.shutdown(None);

    let mut buf = Vec::with_capacity(512);
    let ts = Timestamp::now();
    cases.push(Case {
        name: "encode",
        ns_per_call: best_of(rounds, iterations, |i| {
            let mut enc = RecordEncoder::begin(&mut buf, Format::Compact, ts, "k3Jd82Qa.1", &[1]);
            enc.message("info", "request handled");
            enc.field("user_id", &black_box(i));
            enc.field("latency_ms", &(i as f64 * 0.25));
            enc.field("path", "/api/v1/items");
            enc.finish();
            black_box(&buf);
        }),
    });
    cases.push(Case {
        name: "clock",
        ns_per_call: best_of(rounds, iterations, |_| {
            black_box(Timestamp::now());
        }),
    });

    let writer = Writer::builder()
        .sink(discard())
        .build()
        .map_err(|e| e.to_string())?;
    let handle = writer.handle();
    let line = [b'x'; 149];
    cases.push(Case {
        name: "enqueue",
        ns_per_call: best_of(rounds, iterations, |_| {
            let _ = black_box(handle.enqueue(black_box(&line)));
        }),
    });
    writer.shutdown(None);
    Ok(cases)
}
