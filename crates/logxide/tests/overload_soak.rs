//! Overload: 16 producers log as fast as they can into a sink that sleeps 1 ms per batch, so
//! the queue is always full, under each policy. Each policy runs in a child process (the test
//! binary runs itself) that measures its own memory from `/proc/self/status` before and after;
//! the parent checks the growth of the peak RSS against a bound derived from the queue's
//! configuration (see [`rss_bound_kib`]).
//!
//! Also checked, in the child: the accounting is exact (`enqueued = written + dropped +
//! failed`, nothing pending, and `enqueued` is the producers' own count of calls); `block`
//! loses nothing and writes each producer's records gap-free in order; `drop_newest` and `warn`
//! write exactly the records whose `enqueue` returned `Ok`, refuse the rest as `queue_full`
//! (and `warn` reports them all); `drop_oldest` counts every eviction; whatever is written is
//! whole and in each producer's order.
//!
//! 1.5 s per policy; `LOGXIDE_SOAK_SECS=N` (seconds, fractions allowed) for a long soak.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use logxide::sink::{Batch, FnSink, SinkError};
use logxide::writer::{DropReason, Policy, Queued, Writer};

/// Set in the child process: the policy to run.
const CHILD: &str = "LOGXIDE_TEST_SOAK_CHILD";
const PRODUCERS: usize = 16;
/// Queue bounds. Records are 29–57 bytes with their `\n`, so the byte bound (about 750
/// records) is usually reached before the count.
const CAPACITY: usize = 1024;
const MAX_BYTES: usize = 32 << 10;
/// What the sink sleeps per batch.
const SINK_SLEEP: Duration = Duration::from_millis(1);

/// The bound on the growth of the peak RSS of a child (KiB), from the configuration above:
///
/// - the producers' lanes: each thread's ring holds at most what the queue's bounds allow
///   in one lane, `MAX_BYTES` plus a 16-byte header per record (`CAPACITY` of them), and its
///   first ring is no larger (64 KiB at most: `writer/lane.rs`). A lane that outgrows a ring
///   starts another and the writer frees the old one once read, so two rings per lane at
///   most; `PRODUCERS` lanes;
/// - the writer's batch: at most `MAX_BATCH_BYTES` (1 MiB) plus one record, and its end
///   offsets and levels (9 bytes per record);
/// - 18 threads (the producers, the writer and the child's memory sampler): stack pages
///   touched, thread-local state and a malloc arena each; 128 KiB per thread;
/// - slack for what the process touches for the first time during the run: pages of code
///   (the test binary is a large debug build: `VmHWM` counts file-backed pages too), lazily
///   initialized runtime state, page rounding: 4 MiB.
///
/// About 8.8 MiB in all, independent of how long the run lasts, while the producers offer
/// the writer 30–60 MiB of records per second: a queue that grew with the load would cross
/// it within a fraction of a second. Measured (2 cores, release build): the peak grows by
/// about 1.3 MiB under every policy, anonymous memory by about 1.1 MiB.
fn rss_bound_kib() -> u64 {
    let ring = (MAX_BYTES + 16 * CAPACITY).min(64 << 10);
    let lanes = PRODUCERS * 2 * ring;
    let batch = (1 << 20) + 64 + 9 * CAPACITY;
    let threads = (PRODUCERS + 2) * (128 << 10);
    let slack = 4 << 20;
    ((lanes + batch + threads + slack) / 1024) as u64
}

/// The record of producer `p`, sequence `s`, into `out` (without `\n`); its pad length
/// depends on both, so that a record spliced from two others is caught.
fn record(out: &mut String, p: usize, s: u64) {
    out.clear();
    let pad = ((s * 7 + p as u64) % 23) as usize;
    let _ = write!(out, r#"{{"p":{p},"s":{s},"pad":""#);
    for _ in 0..pad {
        out.push('x');
    }
    out.push_str("\"}");
}

/// Parses a record made by [`record`] (with its `\n`), checking it is whole.
fn parse(r: &[u8]) -> Result<(usize, u64), String> {
    let bad = || format!("torn or foreign record {:?}", String::from_utf8_lossy(r));
    let rest = r.strip_prefix(br#"{"p":"#).ok_or_else(bad)?;
    let comma = rest.iter().position(|&b| b == b',').ok_or_else(bad)?;
    let p: usize = std::str::from_utf8(&rest[..comma])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(bad)?;
    let rest = rest[comma + 1..].strip_prefix(br#""s":"#).ok_or_else(bad)?;
    let comma = rest.iter().position(|&b| b == b',').ok_or_else(bad)?;
    let s: u64 = std::str::from_utf8(&rest[..comma])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(bad)?;
    let rest = rest[comma + 1..]
        .strip_prefix(br#""pad":""#)
        .ok_or_else(bad)?;
    let pad = rest.iter().take_while(|&&b| b == b'x').count();
    if &rest[pad..] != b"\"}\n" || pad != ((s * 7 + p as u64) % 23) as usize || p >= PRODUCERS {
        return Err(bad());
    }
    Ok((p, s))
}

/// What the sink saw: per producer the records written and the last sequence number, and the
/// first violation of order or integrity.
#[derive(Default)]
struct Seen {
    count: [u64; PRODUCERS],
    last: [Option<u64>; PRODUCERS],
    total: u64,
    batches: u64,
    error: Option<String>,
}

impl Seen {
    fn check(&mut self, batch: &Batch<'_>, gap_free: bool) {
        self.batches += 1;
        for r in batch.records() {
            self.total += 1;
            let (p, s) = match parse(r) {
                Ok(ps) => ps,
                Err(e) => {
                    self.error.get_or_insert(e);
                    continue;
                }
            };
            let ok = match (self.last[p], gap_free) {
                (None, true) => s == 0,
                (Some(l), true) => s == l + 1,
                (None, false) => true,
                (Some(l), false) => s > l,
            };
            if !ok {
                self.error.get_or_insert(format!(
                    "producer {p}: record {s} after {:?} (gap-free: {gap_free})",
                    self.last[p]
                ));
            }
            self.last[p] = Some(s);
            self.count[p] += 1;
        }
    }
}

/// `VmRSS`, `VmHWM` and `RssAnon` of this process, in KiB.
fn memory() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

/// Per-producer outcomes of `enqueue`.
#[derive(Default, Clone, Copy)]
struct Calls {
    calls: u64,
    queued: u64,
    evicted_oldest: u64,
    queue_full: u64,
    other_err: u64,
}

fn child(policy: Policy, secs: f64) {
    // Reset the peak RSS to the current RSS (Linux ≥ 4.0), so VmHWM after the run is the peak
    // of the run; if that fails the peak before counts too, which only makes the check stricter.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (rss_before, _, anon_before) = memory();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = {
        let seen = Arc::clone(&seen);
        let gap_free = policy == Policy::Block;
        FnSink::new("sleepy", move |b: &Batch<'_>| -> Result<(), SinkError> {
            thread::sleep(SINK_SLEEP);
            seen.lock().unwrap().check(b, gap_free);
            Ok(())
        })
    };
    let reported = Arc::new(AtomicU64::new(0));
    let hook_calls = Arc::new(AtomicU64::new(0));
    let writer = {
        let (reported, hook_calls) = (Arc::clone(&reported), Arc::clone(&hook_calls));
        let builder = Writer::builder()
            .capacity(CAPACITY)
            .max_bytes(MAX_BYTES)
            .policy(policy);
        // (Refused with another policy, which never reports.)
        let builder = match policy {
            Policy::Warn => builder.on_drop_warning(move |w| {
                reported.fetch_add(w.dropped, SeqCst);
                hook_calls.fetch_add(1, SeqCst);
            }),
            _ => builder,
        };
        builder.sink(sink).build().unwrap()
    };

    // The peak of the anonymous memory, sampled (VmHWM also counts file-backed pages).
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (calls, anon_peak) = thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = anon_before;
            while !stop.load(Relaxed) {
                peak = peak.max(memory().2);
                thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let h = writer.handle();
                let stop = &stop;
                s.spawn(move || {
                    let mut c = Calls::default();
                    let mut buf = String::with_capacity(64);
                    while !stop.load(Relaxed) {
                        record(&mut buf, p, c.calls);
                        c.calls += 1;
                        match h.enqueue(buf.as_bytes()) {
                            Ok(Queued::Queued) => c.queued += 1,
                            Ok(Queued::EvictedOldest) => c.evicted_oldest += 1,
                            Ok(Queued::WrittenSync) => c.other_err += 1,
                            Err(e) if e.reason == DropReason::QueueFull => c.queue_full += 1,
                            Err(_) => c.other_err += 1,
                        }
                    }
                    c
                })
            })
            .collect();
        thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Relaxed);
        let calls: Vec<Calls> = producers.into_iter().map(|t| t.join().unwrap()).collect();
        (calls, sampler.join().unwrap())
    });
    let produced_for = start.elapsed();
    let m = writer.shutdown(None).metrics;
    let elapsed = start.elapsed();
    let (rss_after, hwm, anon_after) = memory();
    let seen = seen.lock().unwrap();

    // Accounting.
    let sum = |f: fn(&Calls) -> u64| calls.iter().map(f).sum::<u64>();
    let total_calls = sum(|c| c.calls);
    assert_eq!(
        sum(|c| c.other_err),
        0,
        "{policy}: unexpected outcome: {m:?}"
    );
    assert_eq!(m.enqueued, total_calls, "{policy}: enqueued vs calls");
    assert_eq!(
        m.enqueued,
        m.written + m.dropped + m.failed,
        "{policy}: {m:?}"
    );
    assert_eq!((m.pending, m.failed), (0, 0), "{policy}: {m:?}");
    assert_eq!(m.dropped, m.dropped_by.total(), "{policy}: {m:?}");
    // Full by its byte bound: at least the records (57 bytes at most) of the half of it that
    // lanes cannot hold unspent (`high_water` counts records seen waiting, not capacity).
    assert!(
        m.high_water >= (MAX_BYTES / 2 / 57) as u64,
        "{policy}: the queue never filled: {m:?}"
    );
    // What the sink saw.
    if let Some(e) = &seen.error {
        panic!("{policy}: {e}");
    }
    assert_eq!(seen.total, m.written, "{policy}: sink vs written");
    match policy {
        Policy::Block => {
            assert_eq!((m.dropped, m.written), (0, total_calls), "{policy}: {m:?}");
            for (p, c) in calls.iter().enumerate() {
                assert_eq!(seen.count[p], c.calls, "{policy}: producer {p}");
            }
        }
        Policy::DropNewest | Policy::Warn => {
            assert_eq!(m.dropped_by.queue_full, m.dropped, "{policy}: {m:?}");
            assert_eq!(m.dropped_by.queue_full, sum(|c| c.queue_full));
            assert!(m.dropped > 0, "{policy}: nothing refused: {m:?}");
            // Exactly the records accepted were written, per producer.
            for (p, c) in calls.iter().enumerate() {
                assert_eq!(c.evicted_oldest, 0);
                assert_eq!(seen.count[p], c.queued, "{policy}: producer {p}");
            }
            if policy == Policy::Warn {
                assert_eq!(reported.load(SeqCst), m.dropped_by.queue_full);
                assert_eq!(hook_calls.load(SeqCst), m.warnings);
                assert!(m.warnings >= 1);
            } else {
                assert_eq!(m.warnings, 0);
            }
        }
        Policy::DropOldest => {
            assert_eq!(sum(|c| c.queue_full), 0);
            assert_eq!(m.dropped_by.evicted, m.dropped, "{policy}: {m:?}");
            assert_eq!(m.dropped_by.evicted, m.enqueued - m.written);
            let evicting = sum(|c| c.evicted_oldest);
            assert!(
                evicting > 0 && evicting <= m.dropped_by.evicted,
                "{policy}: {evicting} calls evicted, {m:?}"
            );
        }
    }
    let secs = produced_for.as_secs_f64();
    println!(
        "SOAK-RESULT policy={policy} secs={secs:.2} shutdown_ms={} rss_before_kib={rss_before} \
         hwm_kib={hwm} rss_after_kib={rss_after} anon_before_kib={anon_before} \
         anon_peak_kib={anon_peak} anon_after_kib={anon_after} hwm_reset={reset} \
         enqueued={} written={} dropped={} batches={} enqueued_per_s={:.0} written_per_s={:.0}",
        (elapsed - produced_for).as_millis(),
        m.enqueued,
        m.written,
        m.dropped,
        seen.batches,
        m.enqueued as f64 / secs,
        m.written as f64 / secs,
    );
}

#[test]
fn child_entry() {
    if let Ok(policy) = std::env::var(CHILD) {
        let secs = std::env::var("LOGXIDE_SOAK_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.5);
        child(policy.parse().unwrap(), secs);
    }
}

/// The `key=value` fields of the child's result line.
fn field(result: &str, key: &str) -> u64 {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing from {result}"))
}

#[test]
fn sixteen_producers_against_a_sleeping_sink_stay_within_the_memory_bound() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("overload soak: SKIPPED (no /proc/self/status to measure memory with)");
        return;
    }
    let bound = rss_bound_kib();
    for policy in ["block", "drop_oldest", "drop_newest", "warn"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD, policy)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{policy}: child failed ({})\n{stdout}\n{stderr}",
            out.status
        );
        let result = stdout
            .lines()
            .find_map(|l| l.split_once("SOAK-RESULT ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("{policy}: no result\n{stdout}\n{stderr}"));
        println!("{result}");
        let growth = field(result, "hwm_kib").saturating_sub(field(result, "rss_before_kib"));
        assert!(
            growth <= bound,
            "{policy}: peak RSS grew by {growth} KiB, more than the bound of {bound} KiB: {result}"
        );
        let anon = field(result, "anon_peak_kib").saturating_sub(field(result, "anon_before_kib"));
        assert!(
            anon <= bound,
            "{policy}: anonymous memory grew by {anon} KiB, more than {bound} KiB: {result}"
        );
    }
}
