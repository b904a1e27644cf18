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
//! - `deferred_caller` / `deferred_writer`: a prototype of Quill-style deferred formatting,
//!   to measure that alternative: the caller reads the clock and pushes the raw values (a
//!   counter for the task id, the integer, the float, two `&'static str`) into a bounded
//!   `ArrayQueue` with room for every record; a second thread encodes each with logxide's
//!   `RecordEncoder` into a buffer it empties every 64 KiB. `deferred_caller` is the caller's
//!   ns per call, `deferred_writer` the whole run's ns per record until the second thread has
//!   encoded everything (the pipeline's throughput). It leaves out what the logger adds (task
//!   positions, masking, context, the doorbell, sinks): a lower bound for that design.

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

/// The call `logxide-bench hot` makes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum HotCase {
    /// `logxide::info!` (micro's `info` case).
    Info,
    /// `tracing::info!` through [`LogxideLayer`] (micro's `tracing_event` case).
    Tracing,
    /// `log::info!` through logxide's `log` bridge (micro's `log_record` case).
    Log,
}

/// The `log` record of the `log_record` case and `hot --case log` (the bridge installed).
#[inline(always)]
fn log_record(i: u64) {
    ::log::info!(
        user_id = black_box(i),
        latency_ms = i as f64 * 0.25,
        path = "/api/v1/items";
        "request handled"
    );
}

/// Installs logxide's `log` bridge once in this process.
fn install_log_bridge() -> Result<(), String> {
    static ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| logxide::integrations::log::install().map_err(|e| e.to_string()))
        .clone()
}

/// `logxide-bench hot`: one case once, `records` calls; returns ns per call.
pub fn hot(case: HotCase, records: u64) -> Result<f64, String> {
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(discard())
        .init()
        .map_err(|e| e.to_string())?;
    let ns = match case {
        HotCase::Info => best_of(1, records, |i| {
            logxide::info!(
                "request handled",
                user_id = black_box(i),
                latency_ms = i as f64 * 0.25,
                path = "/api/v1/items"
            );
        }),
        HotCase::Tracing => {
            let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
            let _default = ::tracing::subscriber::set_default(subscriber);
            best_of(1, records, |i| {
                ::tracing::info!(
                    user_id = black_box(i),
                    latency_ms = i as f64 * 0.25,
                    path = "/api/v1/items",
                    "request handled"
                );
            })
        }
        HotCase::Log => {
            install_log_bridge()?;
            best_of(1, records, log_record)
        }
    };
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
    install_log_bridge()?;
    cases.push(Case {
        name: "log_record",
        ns_per_call: best_of(rounds, iterations, log_record),
    });
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

    let (caller, pipeline) = deferred(iterations, rounds);
    cases.push(Case {
        name: "deferred_caller",
        ns_per_call: caller,
    });
    cases.push(Case {
        name: "deferred_writer",
        ns_per_call: pipeline,
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

/// The raw values of one record, as a deferred-formatting caller would queue them.
struct Raw {
    ts: Timestamp,
    task: u64,
    user_id: u64,
    latency_ms: f64,
    msg: &'static str,
    path: &'static str,
}

/// The deferred-formatting prototype: (caller ns per call, whole-run ns per record), each the
/// best of `rounds`.
fn deferred(iterations: u64, rounds: u32) -> (f64, f64) {
    use crossbeam_queue::ArrayQueue;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (mut best_caller, mut best_total) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        // Room for every record, so that the caller's cost is its own (the clock and a
        // push), not the writer's pace showing through a full queue.
        let queue = Arc::new(ArrayQueue::<Raw>::new(iterations as usize));
        let done = Arc::new(AtomicBool::new(false));
        let consumer = {
            let (queue, done) = (Arc::clone(&queue), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(80 << 10);
                let mut line = Vec::with_capacity(512);
                let mut tid = String::with_capacity(24);
                let mut n = 0u64;
                loop {
                    match queue.pop() {
                        Some(r) => {
                            tid.clear();
                            tid.push_str("k3Jd82Qa.");
                            push_decimal(&mut tid, r.task);
                            let mut enc =
                                RecordEncoder::begin(&mut line, Format::Compact, r.ts, &tid, &[1]);
                            enc.message("info", r.msg);
                            enc.field("user_id", &r.user_id);
                            enc.field("latency_ms", &r.latency_ms);
                            enc.field("path", r.path);
                            enc.finish();
                            out.extend_from_slice(&line);
                            if out.len() >= 64 << 10 {
                                black_box(&out);
                                out.clear();
                            }
                            n += 1;
                        }
                        None if done.load(Ordering::Acquire) && queue.is_empty() => break,
                        None => std::thread::yield_now(),
                    }
                }
                n
            })
        };
        let start = Instant::now();
        for i in 0..iterations {
            let mut raw = Raw {
                ts: Timestamp::now(),
                task: i,
                user_id: black_box(i),
                latency_ms: i as f64 * 0.25,
                msg: "request handled",
                path: "/api/v1/items",
            };
            while let Err(back) = queue.push(raw) {
                raw = back;
                std::thread::yield_now();
            }
        }
        let caller = start.elapsed().as_nanos() as f64 / iterations as f64;
        done.store(true, Ordering::Release);
        let written = consumer.join().unwrap_or(0);
        let total = start.elapsed().as_nanos() as f64 / iterations as f64;
        assert_eq!(written, iterations);
        best_caller = best_caller.min(caller);
        best_total = best_total.min(total);
    }
    (best_caller, best_total)
}

/// Appends `n` in decimal (the prototype's task ids), without allocating.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}
