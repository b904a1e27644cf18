//! The workload and its measurement, run inside one child process per contender.
//!
//! `records` records in total from `threads` threads: thread `k` logs the sequence numbers of
//! its own contiguous range (the first `records % threads` threads take one more), every thread
//! starts at the same [`Barrier`]. Each record is the message [`MESSAGE`] with the fields
//! `user_id` (the sequence number), `latency_ms` ([`latency_ms`]) and `path` ([`PATH`]).
//!
//! **Caller latency** is sampled: the call with in-thread index `k % SAMPLE_EVERY == 0` (one
//! call in 8) is timed with two [`Instant::now`] reads into a per-thread [`Histogram`] that
//! was allocated before the barrier, so the timed loop never allocates for the measurement.
//! The other seven calls run untimed. The figures therefore include the cost of one
//! `Instant::now` (about 20 ns on Linux with the vDSO clock; [`timer_ns`] measures it, and
//! `peers` reports it next to the figures), and the percentiles are those of the sampled
//! calls.
//!
//! **Wall time** runs from the earliest instant any thread left the barrier until the
//! contender's `finish` returned, i.e. its shutdown / flush / guard drop: by then every record
//! was handed to the OS with `write(2)` (not necessarily synced to disk).
//!
//! **CPU time** is read for the whole process (`getrusage`, from before the setup until
//! `finish` returned) and for each workload thread around its loop (its `schedstat`), so a
//! report tells the callers' share from the library's threads' share.
//!
//! **Peak RSS delta** is `VmHWM` after `finish` minus `VmRSS` before the contender was set up,
//! both from `/proc/self/status` (the peak is first reset through `/proc/self/clear_refs`). It
//! counts the logger's queues and buffers and the threads' stacks as touched.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use logxide_measure::{mem, Histogram};

/// The message of every record.
pub const MESSAGE: &str = "request handled";
/// The value of the `path` field.
pub const PATH: &str = "/api/v1/items";
/// The fields of every record, in order.
pub const FIELDS: [&str; 3] = ["user_id", "latency_ms", "path"];
/// One call in this many is timed.
pub const SAMPLE_EVERY: u64 = 8;

/// The `latency_ms` field of record `i`.
#[inline]
pub fn latency_ms(i: u64) -> f64 {
    i as f64 * 0.25
}

/// Per-thread state handed to every call: the thread's index.
pub struct Local {
    /// The thread's index, 0-based.
    pub tid: usize,
}

/// One logger configured for the workload.
pub trait Contender: Sync + Sized {
    /// Each line starts with a fixed non-JSON prefix (a timestamp the library always writes)
    /// before the JSON object; the check skips to the first `{`.
    const LINE_PREFIX: bool = false;

    /// Builds and installs the logger writing to `path` (a fresh file).
    fn setup(path: &Path) -> Result<Self, String>;

    /// Logs record `i` (called from the workload threads, concurrently).
    fn log(&self, i: u64, local: &mut Local);

    /// Shuts the logger down (flush, guard drop, ...): when this returns, every record must
    /// have been written to the file.
    fn finish(self) -> Result<(), String>;
}

/// Caller latency percentiles, in nanoseconds, over the sampled calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallerNs {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
    /// How many calls were timed (one in [`SAMPLE_EVERY`]).
    pub samples: u64,
}

/// CPU time per record, over all threads of the contender's process (its own and the
/// library's, those that exited included), from setup to the end of its shutdown.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CpuNs {
    /// User time.
    pub user: f64,
    /// Kernel time (mostly the `write(2)`s into the page cache).
    pub system: f64,
    /// The part of `user + system` spent by the workload threads themselves, from the barrier
    /// to their last call (`/proc/self/task/*/schedstat`; `None` without `/proc`): what a log call
    /// costs its caller, the timing of one call in 8 included. The rest is the library's own
    /// threads, its setup and its shutdown.
    #[serde(default)]
    pub callers: Option<f64>,
}

/// What one child reports on its standard output, as one JSON line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub seconds: f64,
    pub records_per_sec: f64,
    pub caller_ns: CallerNs,
    pub peak_rss_delta_mb: Option<f64>,
    /// `None` where `getrusage` is unavailable.
    #[serde(default)]
    pub cpu_ns_per_record: Option<CpuNs>,
    pub bytes_per_line: f64,
    pub lines: u64,
    pub lines_ok: bool,
    /// Why `lines_ok` is false (the first problem found), `None` when it is true.
    pub lines_detail: Option<String>,
}

/// What the timing of one call adds to `caller_ns` by itself: the median of `samples` timed
/// regions around nothing, measured as the workload times a call.
pub fn timer_ns(samples: u32) -> u64 {
    let mut hist = Histogram::new();
    for _ in 0..samples {
        let t0 = Instant::now();
        hist.record(t0.elapsed().as_nanos() as u64);
    }
    hist.quantile(0.5)
}

/// The half-open range of sequence numbers thread `tid` logs.
pub fn range(records: u64, threads: usize, tid: usize) -> (u64, u64) {
    let t = threads as u64;
    let (per, extra, k) = (records / t, records % t, tid as u64);
    let lo = k * per + k.min(extra);
    let hi = lo + per + u64::from(k < extra);
    (lo, hi)
}

/// Runs the workload through contender `C` writing to `path`, then checks the file.
pub fn run<C: Contender>(records: u64, threads: usize, path: &Path) -> Result<RunReport, String> {
    assert!(threads > 0);
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
    }
    mem::reset_peak();
    let rss_before = mem::rss_kib();
    let cpu_before = mem::process_cpu_ns();
    let contender = C::setup(path)?;
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Histogram, Option<u64>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|tid| {
                let (lo, hi) = range(records, threads, tid);
                let (contender, barrier) = (&contender, &barrier);
                let name = format!("bench-{tid}");
                thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(s, move || {
                        let mut local = Local { tid };
                        let mut hist = Histogram::new();
                        barrier.wait();
                        let cpu_start = mem::thread_cpu_ns(&name);
                        let start = Instant::now();
                        for (k, i) in (lo..hi).enumerate() {
                            if k as u64 % SAMPLE_EVERY == 0 {
                                let t0 = Instant::now();
                                contender.log(i, &mut local);
                                hist.record(t0.elapsed().as_nanos() as u64);
                            } else {
                                contender.log(i, &mut local);
                            }
                        }
                        let cpu = cpu_start
                            .zip(mem::thread_cpu_ns(&name))
                            .map(|(t0, t1)| t1.saturating_sub(t0));
                        (start, hist, cpu)
                    })
                    .expect("spawn a workload thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a workload thread panicked"))
            .collect()
    });
    contender.finish()?;
    let start = results
        .iter()
        .map(|(t, _, _)| *t)
        .min()
        .expect("threads > 0");
    let seconds = start.elapsed().as_secs_f64();
    let cpu_after = mem::process_cpu_ns();
    let peak = mem::peak_rss_kib();
    let mut hist = Histogram::new();
    for (_, h, _) in &results {
        hist.merge(h);
    }
    let callers: Option<u64> = results.iter().map(|(_, _, cpu)| *cpu).sum();
    let peak_rss_delta_mb = match (rss_before, peak) {
        (Some(before), Some(peak)) => Some((peak as f64 - before as f64) / 1024.0),
        _ => None,
    };
    let check = check_file(path, records, C::LINE_PREFIX)?;
    Ok(RunReport {
        seconds,
        records_per_sec: records as f64 / seconds,
        caller_ns: CallerNs {
            p50: hist.quantile(0.5),
            p99: hist.quantile(0.99),
            p999: hist.quantile(0.999),
            max: hist.max(),
            mean: hist.mean(),
            samples: hist.count(),
        },
        peak_rss_delta_mb,
        cpu_ns_per_record: match (cpu_before, cpu_after) {
            (Some((u0, s0)), Some((u1, s1))) => Some(CpuNs {
                user: u1.saturating_sub(u0) as f64 / records as f64,
                system: s1.saturating_sub(s0) as f64 / records as f64,
                callers: callers.map(|ns| ns as f64 / records as f64),
            }),
            _ => None,
        },
        bytes_per_line: if check.lines == 0 {
            0.0
        } else {
            check.bytes as f64 / check.lines as f64
        },
        lines: check.lines,
        lines_ok: check.problem.is_none(),
        lines_detail: check.problem,
    })
}

/// What [`check_file`] found.
#[derive(Debug)]
pub struct Check {
    pub lines: u64,
    pub bytes: u64,
    /// The first problem found, if any.
    pub problem: Option<String>,
}

/// Checks that the file at `path` holds exactly `records` lines, each a JSON object (after a
/// fixed prefix up to the first `{` when `prefixed`) holding a `user_id`, and that the
/// `user_id`s are exactly `0..records`, each once.
pub fn check_file(path: &Path, records: u64, prefixed: bool) -> Result<Check, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let bytes = file.metadata().map_err(|e| e.to_string())?.len();
    let mut seen = vec![false; records as usize];
    let mut lines = 0u64;
    let mut problem = None;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        lines += 1;
        if problem.is_some() {
            continue;
        }
        let Some(text) = line.strip_suffix('\n') else {
            problem = Some(format!("line {lines} has no final newline"));
            continue;
        };
        match user_id_of(text, prefixed) {
            Ok(id) if id < records && !seen[id as usize] => seen[id as usize] = true,
            Ok(id) if id < records => problem = Some(format!("user_id {id} appears twice")),
            Ok(id) => problem = Some(format!("user_id {id} is out of range")),
            Err(e) => problem = Some(format!("line {lines}: {e}: {text:.200}")),
        }
    }
    if problem.is_none() && lines != records {
        problem = Some(format!("{lines} lines, expected {records}"));
    }
    if problem.is_none() {
        if let Some(missing) = seen.iter().position(|s| !s) {
            problem = Some(format!("user_id {missing} is missing"));
        }
    }
    Ok(Check {
        lines,
        bytes,
        problem,
    })
}

/// The `user_id` of one line: a JSON object with a numeric `user_id` member at any depth
/// (top level, or under `fields` / `kv` as tracing and spdlog nest them), or, for loggers that
/// can only format the fields into the message, a string member containing `user_id=N`.
pub fn user_id_of(line: &str, prefixed: bool) -> Result<u64, String> {
    let json = if prefixed {
        let at = line.find('{').ok_or("no JSON object")?;
        &line[at..]
    } else {
        line
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON ({e})"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    find_member(&value)
        .or_else(|| find_in_text(&value))
        .ok_or_else(|| "no user_id".into())
}

fn find_member(value: &serde_json::Value) -> Option<u64> {
    let map = value.as_object()?;
    if let Some(id) = map.get("user_id").and_then(|v| v.as_u64()) {
        return Some(id);
    }
    map.values().find_map(find_member)
}

fn find_in_text(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::String(s) => {
            let rest = &s[s.find("user_id=")? + "user_id=".len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        }
        serde_json::Value::Object(map) => map.values().find_map(find_in_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_alone_costs_less_than_a_timed_wait() {
        // A region that waits 50 µs is measured at 50 µs or more; the median of empty
        // regions is the timer's own cost, far less.
        let mut waited = Histogram::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            while t0.elapsed().as_micros() < 50 {}
            waited.record(t0.elapsed().as_nanos() as u64);
        }
        let timer = timer_ns(1000);
        assert!(timer < waited.quantile(0.5), "{timer} ns");
        assert!(waited.quantile(0.5) >= 45_000, "the histogram keeps 50 µs");
    }

    #[test]
    fn ranges_cover_everything_once() {
        for records in [0, 1, 7, 10, 2000, 1_000_001] {
            for threads in 1..=5 {
                let mut next = 0;
                for tid in 0..threads {
                    let (lo, hi) = range(records, threads, tid);
                    assert_eq!(lo, next);
                    assert!(hi - lo <= records / threads as u64 + 1);
                    next = hi;
                }
                assert_eq!(next, records);
            }
        }
    }

    #[test]
    fn finds_user_ids() {
        assert_eq!(user_id_of(r#"{"user_id":3}"#, false), Ok(3));
        assert_eq!(user_id_of(r#"{"fields":{"user_id":4}}"#, false), Ok(4));
        assert_eq!(
            user_id_of(
                r#"{"args":"request handled user_id=5 latency_ms=1"}"#,
                false
            ),
            Ok(5)
        );
        assert_eq!(
            user_id_of(r#"2024-01-01 00:00:00.000Z 0ms {"user_id":6}"#, true),
            Ok(6)
        );
        assert!(user_id_of(r#"x {"user_id":6}"#, false).is_err());
        assert!(user_id_of(r#"[1]"#, false).is_err());
        assert!(user_id_of(r#"{"user":1}"#, false).is_err());
    }

    #[test]
    fn checks_files() {
        let dir = std::env::temp_dir().join(format!("logxide-bench-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        fs::write(&path, "{\"user_id\":1}\n{\"user_id\":0}\n").unwrap();
        assert_eq!(check_file(&path, 2, false).unwrap().problem, None);
        let c = check_file(&path, 3, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("2 lines, expected 3"));
        fs::write(&path, "{\"user_id\":1}\n{\"user_id\":1}\n").unwrap();
        let c = check_file(&path, 2, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("user_id 1 appears twice"));
        fs::write(&path, "{\"user_id\":1}\n{\"user_id\":0}").unwrap();
        let c = check_file(&path, 2, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("line 2 has no final newline"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
