//! The workload and its measurement, run inside one child process per contender.
//!
//! `records` records in total from `threads` threads: thread `k` logs the sequence numbers of
//! its own contiguous range (the first `records % threads` threads take one more), every thread
//! starts at the same [`Barrier`]. Each record is the message [`MESSAGE`] with the fields
//! `user_id` (the sequence number), `latency_ms` ([`latency_ms`]) and `path` ([`PATH`]).
//!
//! **Caller latency** is sampled: the call with in-thread index `k % SAMPLE_EVERY == 0` (one
//! call in 8) is timed with two reads of the CPU's time-stamp counter ([`CallTimer`], as
//! Quill's benchmarks time a call) into a per-thread [`Histogram`] that was allocated before
//! the barrier, so the timed loop never allocates for the measurement. The other seven calls
//! run untimed. The figures therefore include the cost of one counter read (about 10 ns
//! here, against about 20 ns for `Instant::now` with the vDSO clock; [`timer_ns`] measures
//! it, and `peers` reports it next to the figures), and the percentiles are those of the
//! sampled calls.
//!
//! Their resolution is the counter's step, which is not one tick everywhere: on the AMD EPYC
//! VMs of this project's measurements the counter advances by 25–26 ticks (10 ns at
//! 2.6 GHz) at a time — of a million back-to-back pairs of readings, 87 % differed by one
//! step and 9 % by a single tick (a repeated value bumped to keep the counter increasing). A
//! call is then timed as a whole number of steps, within one step of its true length, so
//! every `caller_ns` figure there is known to ±10 ns, the timer's own "10 ns" included.
//!
//! **Wall time** runs from the earliest instant any thread left the barrier until the
//! contender's `finish` returned, i.e. its shutdown / flush / guard drop: by then every record
//! was handed to the OS with `write(2)` (not necessarily synced to disk).
//!
//! **CPU time** is read for the whole process (`getrusage`, from before the setup until
//! `finish` returned) and for each workload thread around the barrier and its loop (its own
//! `/proc/thread-self/schedstat`, read before the barrier, so that only the clock read
//! stands between the barrier and the first call), so a report tells the callers' share from
//! the library's threads' share.
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
    /// The part of `user + system` spent by the workload threads themselves, from just before
    /// the barrier to their last call (`/proc/thread-self/schedstat`; `None` without `/proc`):
    /// what a log call costs its caller, the timing of one call in 8 included. The rest is the
    /// library's own threads, its setup and its shutdown.
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

/// Times one call: two reads of the time-stamp counter (`quanta`'s raw reads: `rdtsc` where
/// the counter is invariant, else the monotonic clock), scaled to nanoseconds after the
/// second read.
pub struct CallTimer {
    clock: quanta::Clock,
}

impl CallTimer {
    /// Calibrates the counter (once per process; quick after the first).
    pub fn new() -> CallTimer {
        CallTimer {
            clock: quanta::Clock::new(),
        }
    }

    /// A raw reading, to give [`ns_since`](Self::ns_since).
    #[inline(always)]
    pub fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Nanoseconds from `start` until now.
    #[inline(always)]
    pub fn ns_since(&self, start: u64) -> u64 {
        let end = self.clock.raw();
        self.clock.delta_as_nanos(start, end)
    }
}

impl Default for CallTimer {
    fn default() -> Self {
        CallTimer::new()
    }
}

/// What the timing of one call adds to `caller_ns` by itself: the median of `samples` timed
/// regions around nothing, measured as the workload times a call.
pub fn timer_ns(samples: u32) -> u64 {
    let timer = CallTimer::new();
    let mut hist = Histogram::new();
    for _ in 0..samples {
        let t0 = timer.start();
        hist.record(timer.ns_since(t0));
    }
    hist.quantile(0.5)
}

/// CPU time, in nanoseconds, the calling thread has used so far (the first field of
/// `/proc/thread-self/schedstat`; `None` without it). One file read, where
/// `mem::thread_cpu_ns` finds a thread by scanning every task's name: a scan of all `T`
/// threads by each of them, between the barrier and the first call and after the last
/// one, would stagger the start and cost the run CPU that grows with `T²`.
pub fn own_cpu_ns() -> Option<u64> {
    let stat = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
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
                thread::Builder::new()
                    .name(format!("bench-{tid}"))
                    .spawn_scoped(s, move || {
                        let mut local = Local { tid };
                        let mut hist = Histogram::new();
                        let timer = CallTimer::new();
                        // Read before the barrier: nothing but the clock read stands between
                        // the barrier and the first call.
                        let cpu_start = own_cpu_ns();
                        barrier.wait();
                        let start = Instant::now();
                        for (k, i) in (lo..hi).enumerate() {
                            if k as u64 % SAMPLE_EVERY == 0 {
                                let t0 = timer.start();
                                contender.log(i, &mut local);
                                hist.record(timer.ns_since(t0));
                            } else {
                                contender.log(i, &mut local);
                            }
                        }
                        let cpu = cpu_start
                            .zip(own_cpu_ns())
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
/// fixed prefix up to the first `{` when `prefixed`) holding the whole record (see
/// [`record_of`]: the message, `user_id`, `latency_ms` matching it and `path`), and that the
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
        match record_of(text, prefixed) {
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

/// Checks that one line holds the whole record and returns its `user_id`.
///
/// The line is a JSON object; its members are searched at any depth (tracing nests the
/// fields under `fields`, spdlog under `kv`) for a numeric `user_id`, a numeric `latency_ms`
/// equal to [`latency_ms`] of that `user_id`, a string `path` equal to [`PATH`], and a string
/// equal to [`MESSAGE`]. For loggers that can only format the fields into the message
/// (fast_log), a string `"request handled user_id=N latency_ms=X path=P"` carries the message
/// and the fields as `key=value` words. A field found twice with different values is an error.
pub fn record_of(line: &str, prefixed: bool) -> Result<u64, String> {
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
    let mut found = Found::default();
    found.walk(&value)?;
    if !found.message {
        return Err(format!("no message {MESSAGE:?}"));
    }
    let id = found.user_id.ok_or("no user_id")?;
    match found.latency_ms {
        None => return Err("no latency_ms".into()),
        Some(x) if x != latency_ms(id) => {
            return Err(format!(
                "latency_ms {x}, expected {} for user_id {id}",
                latency_ms(id)
            ))
        }
        Some(_) => {}
    }
    match found.path.as_deref() {
        None => return Err("no path".into()),
        Some(p) if p != PATH => return Err(format!("path {p:?}, expected {PATH:?}")),
        Some(_) => {}
    }
    Ok(id)
}

/// The parts of the record found in one line.
#[derive(Default)]
struct Found {
    message: bool,
    user_id: Option<u64>,
    latency_ms: Option<f64>,
    path: Option<String>,
}

impl Found {
    fn walk(&mut self, value: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("user_id", Value::Number(n)) => {
                            let id = n.as_u64().ok_or(format!("user_id {n} is not a u64"))?;
                            set(&mut self.user_id, id, "user_id")?;
                        }
                        ("latency_ms", Value::Number(n)) => {
                            let x = n
                                .as_f64()
                                .ok_or(format!("latency_ms {n} is not a number"))?;
                            set(&mut self.latency_ms, x, "latency_ms")?;
                        }
                        ("path", Value::String(p)) => set(&mut self.path, p.clone(), "path")?,
                        _ => self.walk(v)?,
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.walk(v)?;
                }
            }
            Value::String(s) if s == MESSAGE => self.message = true,
            Value::String(s) => {
                if let Some(words) = s.strip_prefix(MESSAGE).and_then(|r| r.strip_prefix(' ')) {
                    self.message = true;
                    self.words(words)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `key=value` words after the message in a string.
    fn words(&mut self, words: &str) -> Result<(), String> {
        for word in words.split(' ') {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "user_id" => {
                    let id = value.parse().map_err(|_| format!("user_id={value}"))?;
                    set(&mut self.user_id, id, "user_id")?;
                }
                "latency_ms" => {
                    let x = value.parse().map_err(|_| format!("latency_ms={value}"))?;
                    set(&mut self.latency_ms, x, "latency_ms")?;
                }
                "path" => set(&mut self.path, value.to_owned(), "path")?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sets a field found in a line; the same field found again must have the same value.
fn set<T: PartialEq + std::fmt::Debug>(
    slot: &mut Option<T>,
    v: T,
    name: &str,
) -> Result<(), String> {
    match slot {
        Some(old) if *old != v => Err(format!("{name} appears as {old:?} and {v:?}")),
        Some(_) => Ok(()),
        None => {
            *slot = Some(v);
            Ok(())
        }
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
        let timer = CallTimer::new();
        for _ in 0..5 {
            let (t0, wall) = (timer.start(), Instant::now());
            while wall.elapsed().as_micros() < 50 {}
            waited.record(timer.ns_since(t0));
        }
        let timer = timer_ns(1000);
        assert!(timer < waited.quantile(0.5), "{timer} ns");
        assert!(waited.quantile(0.5) >= 45_000, "the histogram keeps 50 µs");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn own_cpu_is_the_calling_threads() {
        let (busy, idle) = thread::scope(|s| {
            let busy = s.spawn(|| {
                let t0 = own_cpu_ns().unwrap();
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed().as_millis() < 40 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                own_cpu_ns().unwrap() - t0
            });
            let idle = s.spawn(|| {
                let t0 = own_cpu_ns().unwrap();
                thread::sleep(std::time::Duration::from_millis(40));
                own_cpu_ns().unwrap() - t0
            });
            (busy.join().unwrap(), idle.join().unwrap())
        });
        assert!(busy >= 10_000_000, "{busy} ns");
        assert!(idle < 5_000_000, "{idle} ns");
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

    /// A whole record, as logxide writes it.
    fn line(id: u64) -> String {
        format!(
            r#"{{"msg":"request handled","user_id":{id},"latency_ms":{},"path":"/api/v1/items"}}"#,
            latency_ms(id)
        )
    }

    #[test]
    fn reads_every_contenders_shape_of_the_record() {
        assert_eq!(record_of(&line(3), false), Ok(3));
        // tracing, with a float written as an integer (ftlog does) elsewhere.
        let tracing = r#"{"level":"INFO","fields":{"message":"request handled","user_id":4,"latency_ms":1.0,"path":"/api/v1/items"},"target":"x"}"#;
        assert_eq!(record_of(tracing, false), Ok(4));
        let spdlog = r#"{"level":"info","payload":"request handled","kv":{"user_id":8,"latency_ms":2,"path":"/api/v1/items"},"tid":1}"#;
        assert_eq!(record_of(spdlog, false), Ok(8));
        let fast_log = r#"{"args":"request handled user_id=5 latency_ms=1.25 path=/api/v1/items","level":"INFO","line":40}"#;
        assert_eq!(record_of(fast_log, false), Ok(5));
        let ftlog = r#"2024-01-01 00:00:00.000+00 0ms {"msg":"request handled","user_id":6,"latency_ms":1.5,"path":"/api/v1/items"}"#;
        assert_eq!(record_of(ftlog, true), Ok(6));
        assert!(record_of(&format!("x {}", line(6)), false).is_err());
        assert!(record_of(r#"[1]"#, false).is_err());
    }

    #[test]
    fn a_line_without_the_whole_record_is_refused() {
        let cases = [
            (r#"{"user_id":3}"#, "no message"),
            (
                r#"{"msg":"request handled","latency_ms":0.75,"path":"/api/v1/items"}"#,
                "no user_id",
            ),
            (
                r#"{"msg":"request handled","user_id":3,"path":"/api/v1/items"}"#,
                "no latency_ms",
            ),
            (
                r#"{"msg":"request handled","user_id":3,"latency_ms":0.75}"#,
                "no path",
            ),
            (
                r#"{"msg":"request handled","user_id":3,"latency_ms":0.5,"path":"/api/v1/items"}"#,
                "latency_ms 0.5, expected 0.75",
            ),
            (
                r#"{"msg":"request handled","user_id":3,"latency_ms":0.75,"path":"/api/v1/item"}"#,
                "path \"/api/v1/item\"",
            ),
            (
                r#"{"msg":"request handle","user_id":3,"latency_ms":0.75,"path":"/api/v1/items"}"#,
                "no message",
            ),
            (
                r#"{"msg":"request handled","user_id":3,"latency_ms":0.75,"path":"/api/v1/items","f":{"user_id":4}}"#,
                "user_id appears as",
            ),
            (
                r#"{"args":"request handled user_id=3 latency_ms=0.75"}"#,
                "no path",
            ),
            (
                r#"{"args":"request handled user_id=x latency_ms=0.75 path=/api/v1/items"}"#,
                "user_id=x",
            ),
        ];
        for (text, expected) in cases {
            let err = record_of(text, false).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn checks_files() {
        let dir = std::env::temp_dir().join(format!("logxide-bench-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        fs::write(&path, format!("{}\n{}\n", line(1), line(0))).unwrap();
        assert_eq!(check_file(&path, 2, false).unwrap().problem, None);
        let c = check_file(&path, 3, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("2 lines, expected 3"));
        fs::write(&path, format!("{}\n{}\n", line(1), line(1))).unwrap();
        let c = check_file(&path, 2, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("user_id 1 appears twice"));
        fs::write(&path, format!("{}\n{}", line(1), line(0))).unwrap();
        let c = check_file(&path, 2, false).unwrap();
        assert_eq!(c.problem.as_deref(), Some("line 2 has no final newline"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_numbered_lines_missing_a_field_is_not_ok() {
        // Exactly N lines and every user_id once, but one record lost its other fields: a
        // count and numbering check alone would pass it.
        let dir = std::env::temp_dir().join(format!("logxide-bench-fields-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let text = format!(
            "{}\n{{\"msg\":\"request handled\",\"user_id\":1}}\n{}\n",
            line(0),
            line(2)
        );
        fs::write(&path, text).unwrap();
        let c = check_file(&path, 3, false).unwrap();
        assert_eq!(c.lines, 3);
        let problem = c.problem.unwrap();
        assert!(problem.starts_with("line 2: no latency_ms"), "{problem}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
