//! `logxide bench writer`: the asynchronous writer against a plain `write(2)` loop.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use logxide::sink::{FileOptions, IoStrategy};
use logxide::writer::{MetricsSnapshot, Mode, Policy, Writer, WriterHandle};
use serde::Serialize;

use crate::lines::{self, LineGen};
use crate::verify;
use logxide_measure::{mem, Histogram};

/// Size of each `write(2)` of the physical baseline.
const PHYSICAL_CHUNK: usize = 64 << 10;
/// Runs of the physical baseline; the fastest counts.
const PHYSICAL_RUNS: usize = 3;
/// One enqueue call in this many is timed.
const SAMPLE_EVERY: u64 = 8;
/// How often manual mode triggers the writer.
const MANUAL_TRIGGER_EVERY: Duration = Duration::from_millis(1);
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Runs of at least this many records report progress even when stderr is not a terminal.
const PROGRESS_RECORDS: u64 = 1_000_000;

/// Options of `logxide bench writer`.
#[derive(Args, Clone, Debug)]
#[command(after_long_help = AFTER_HELP, after_help = AFTER_HELP)]
pub struct WriterArgs {
    /// Records to write in total (at least 1)
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,

    /// Producer threads; the records are split evenly, the remainder to the first threads
    #[arg(long, value_name = "T", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub threads: u64,

    /// Bytes per record, the trailing newline included (at least 20: a line holds the
    /// producer id and the sequence number)
    #[arg(long, value_name = "B", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(20..=(64 << 20)))]
    pub line_bytes: u64,

    /// File I/O strategy: line, block or mmap
    #[arg(long, value_name = "STRATEGY", default_value = "block")]
    pub io: IoStrategy,

    /// When the writer thread writes: trigger, loop or manual (manual: the benchmark calls
    /// trigger() every millisecond from a helper thread)
    #[arg(long, value_name = "MODE", default_value = "trigger")]
    pub mode: Mode,

    /// What a producer does when the queue is full: block, drop_oldest, drop_newest or warn
    #[arg(long, value_name = "POLICY", default_value = "block")]
    pub policy: Policy,

    /// Queue capacity in records
    #[arg(long, value_name = "C", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 28)))]
    pub capacity: u64,

    /// Records pending that make the writer write in trigger mode (at most --capacity)
    #[arg(long, value_name = "S", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 28)))]
    pub batch: u64,

    /// Seconds to measure the CPU an idle writer (same settings) uses, from 0 to 3600; 0
    /// skips it
    #[arg(long, value_name = "S", default_value_t = 1.0, value_parser = parse_idle_secs)]
    pub idle_secs: f64,

    /// Directory for engine.log and physical.log [default: a fresh directory under the
    /// system temporary directory, removed at the end unless --keep]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the files written (and the temporary directory); otherwise they are removed
    #[arg(long)]
    pub keep: bool,

    /// Print one JSON object on stdout instead of the summary
    #[arg(long)]
    pub json: bool,
}

/// The longest `--idle-secs`.
const MAX_IDLE_SECS: f64 = 3600.0;

/// `--idle-secs`: a number of seconds from 0 to [`MAX_IDLE_SECS`] (NaN, infinities and
/// larger values are refused: one is no time to wait, the others panic in `Duration`).
fn parse_idle_secs(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=MAX_IDLE_SECS).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid number of seconds {text:?}: expected a number from 0 to {MAX_IDLE_SECS} \
             (0 skips the idle measurement)"
        )),
    }
}

const AFTER_HELP: &str = "\
The benchmark pre-formats each producer's lines, then:
  1. engine: T producer threads enqueue N records (each exactly B bytes) into a writer
     with a file sink at DIR/engine.log; the wall time runs from the start barrier until
     shutdown returns (every record handed to the OS, no fsync). One enqueue call in 8 is
     timed into a histogram (caller_ns); timing every call would cost two clock reads per
     record and halve the throughput measured. In manual mode a helper thread calls trigger() every 1 ms
     (a full queue with a blocked producer also makes the writer write).
  2. physical baseline: the same bytes written to DIR/physical.log by one thread in
     64 KiB write(2) calls, three times (the file removed in between); the fastest run
     counts, since the page cache makes single runs vary several-fold.
  3. verification: engine.log is read back; every producer's sequence numbers must appear
     in order with none missing or duplicated (with a drop policy: strictly increasing, and
     lines + dropped = N), and the writer's metrics must balance with nothing pending.
Progress goes to stderr every second when stderr is a terminal or N >= 1000000.
Exit status: 0 verified, 1 verification failed (the result is still printed),
2 bad options, 3 the benchmark could not run (I/O error...).";

impl WriterArgs {
    /// Checks what clap cannot check option by option; the message names the option.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.batch > self.capacity {
            return Err((
                "--batch",
                format!(
                    "--batch {} exceeds --capacity {}: a batch could never fill",
                    self.batch, self.capacity
                ),
            ));
        }
        if self.threads > self.records {
            return Err((
                "--threads",
                format!(
                    "--threads {} exceeds --records {}: every producer needs a record",
                    self.threads, self.records
                ),
            ));
        }
        let width = lines::digits(self.per_thread(0) - 1);
        let need = lines::min_line_bytes(self.threads - 1, width);
        if (self.line_bytes as usize) < need {
            return Err((
                "--line-bytes",
                format!(
                    "--line-bytes {} is too short for {} records over {} threads: \
                     at least {need} bytes are needed",
                    self.line_bytes, self.records, self.threads
                ),
            ));
        }
        Ok(())
    }

    /// Records sent by producer `p`.
    fn per_thread(&self, p: u64) -> u64 {
        self.records / self.threads + u64::from(p < self.records % self.threads)
    }
}

/// Caller-side latency of `enqueue`, in nanoseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// The result of a run (the `--json` output).
#[derive(Debug, Serialize)]
pub struct Report {
    pub records: u64,
    pub threads: u64,
    pub line_bytes: u64,
    pub io: &'static str,
    pub mode: &'static str,
    pub policy: &'static str,
    pub capacity: u64,
    pub batch: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    pub mib_per_sec: f64,
    pub physical_seconds: f64,
    pub physical_records_per_sec: f64,
    pub ratio_to_physical: f64,
    pub caller_ns: Latency,
    pub peak_rss_delta_mb: Option<f64>,
    /// CPU time an idle writer thread used, in percent of one core (None: not measured).
    pub idle_cpu_percent: Option<f64>,
    pub verified: bool,
    /// Lines found in engine.log.
    pub lines: u64,
    /// Enqueue calls that returned an error (dropped records), as seen by the producers.
    pub refused: u64,
    pub shutdown_timed_out: bool,
    pub problems: Vec<String>,
    /// The engine's file, when kept.
    pub engine_log: Option<PathBuf>,
    pub physical_log: Option<PathBuf>,
    pub metrics: MetricsSnapshot,
}

/// Where the files go, and what to remove at the end.
struct Workdir {
    dir: PathBuf,
    remove_dir: bool,
}

impl Workdir {
    fn new(args: &WriterArgs) -> io::Result<Self> {
        match &args.dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot create --dir {}: {e}", dir.display()),
                    )
                })?;
                Ok(Workdir {
                    dir: dir.clone(),
                    remove_dir: false,
                })
            }
            None => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let dir = std::env::temp_dir()
                    .join(format!("logxide-bench-{}-{nanos:09}", std::process::id()));
                fs::create_dir(&dir).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
                })?;
                Ok(Workdir {
                    dir,
                    remove_dir: true,
                })
            }
        }
    }

    fn engine(&self) -> PathBuf {
        self.dir.join("engine.log")
    }

    fn physical(&self) -> PathBuf {
        self.dir.join("physical.log")
    }

    fn idle(&self) -> PathBuf {
        self.dir.join("idle.log")
    }

    /// Removes what the benchmark wrote (errors ignored: cleanup is best effort).
    fn clean(&self) {
        if self.remove_dir {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            let _ = fs::remove_file(self.engine());
            let _ = fs::remove_file(self.physical());
            let _ = fs::remove_file(self.idle());
        }
    }
}

/// Runs the benchmark; `Err` when it could not run (not when verification failed).
pub fn run(args: &WriterArgs) -> io::Result<Report> {
    let work = Workdir::new(args)?;
    let result = run_in(args, &work);
    if !args.keep {
        work.clean();
    }
    result
}

fn run_in(args: &WriterArgs, work: &Workdir) -> io::Result<Report> {
    let counts: Vec<u64> = (0..args.threads).map(|p| args.per_thread(p)).collect();
    let width = lines::digits(counts[0] - 1);
    let line_bytes = args.line_bytes as usize;
    let gens = (0..args.threads)
        .map(|p| LineGen::new(line_bytes, p, width))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    let progress = io::stderr().is_terminal() || args.records >= PROGRESS_RECORDS;

    // 1. The engine.
    mem::reset_peak();
    let rss_before = mem::rss_kib();
    let engine = run_engine(args, &work.engine(), &counts, gens.clone(), progress)?;
    let peak = mem::peak_rss_kib();
    let peak_rss_delta_mb = match (rss_before, peak) {
        (Some(before), Some(peak)) => Some(peak.saturating_sub(before) as f64 / 1024.0),
        _ => None,
    };

    // 2. The physical baseline.
    if progress {
        say!("logxide bench: physical baseline...");
    }
    let mut physical_seconds = f64::INFINITY;
    for _ in 0..PHYSICAL_RUNS {
        let _ = std::fs::remove_file(work.physical());
        physical_seconds =
            physical_seconds.min(run_physical(&work.physical(), &counts, gens.clone())?);
    }

    // 3. Idle CPU of a writer with the same settings and nothing to write.
    let idle_cpu_percent = if args.idle_secs > 0.0 {
        idle_cpu_percent(args, &work.idle())?
    } else {
        None
    };

    // 4. Verification.
    if progress {
        say!("logxide bench: verifying {}...", work.engine().display());
    }
    let m = &engine.metrics;
    let lossless = m.dropped == 0 || args.policy == Policy::Block;
    let check = verify::check_file(&work.engine(), line_bytes, &counts, lossless)?;
    let mut problems = check.problems;
    let n = args.records;
    if m.enqueued != n {
        problems.push(format!("metrics: enqueued {} instead of {n}", m.enqueued));
    }
    if m.enqueued != m.written + m.dropped + m.failed + m.pending {
        problems.push(format!(
            "metrics: enqueued {} != written {} + dropped {} + failed {} + pending {}",
            m.enqueued, m.written, m.dropped, m.failed, m.pending
        ));
    }
    if m.pending != 0 {
        problems.push(format!(
            "metrics: {} records pending after shutdown",
            m.pending
        ));
    }
    if m.failed != 0 {
        problems.push(format!("metrics: {} records failed", m.failed));
    }
    if m.written != check.lines {
        problems.push(format!(
            "metrics: {} written but the file holds {} lines",
            m.written, check.lines
        ));
    }
    if check.lines + m.dropped != n {
        problems.push(format!(
            "{} lines + {} dropped != {n} records",
            check.lines, m.dropped
        ));
    }
    if args.policy == Policy::Block && m.dropped != 0 {
        problems.push(format!(
            "{} records dropped under the block policy",
            m.dropped
        ));
    }
    let refused_expected = m.dropped - m.dropped_by.evicted;
    if engine.refused != refused_expected {
        problems.push(format!(
            "producers saw {} refused records, the metrics count {refused_expected}",
            engine.refused
        ));
    }
    let sampled: u64 = counts.iter().map(|c| c.div_ceil(SAMPLE_EVERY)).sum();
    if engine.latency.count() != sampled {
        problems.push(format!(
            "{} enqueue calls timed instead of {sampled}",
            engine.latency.count()
        ));
    }
    if engine.timed_out {
        problems.push("shutdown timed out".to_owned());
    }
    let physical_len = fs::metadata(work.physical())?.len();
    if physical_len != n * args.line_bytes {
        problems.push(format!(
            "physical.log holds {physical_len} bytes instead of {}",
            n * args.line_bytes
        ));
    }

    let h = &engine.latency;
    let records_per_sec = n as f64 / engine.seconds;
    let physical_records_per_sec = n as f64 / physical_seconds;
    Ok(Report {
        records: n,
        threads: args.threads,
        line_bytes: args.line_bytes,
        io: args.io.as_str(),
        mode: args.mode.as_str(),
        policy: args.policy.as_str(),
        capacity: args.capacity,
        batch: args.batch,
        seconds: engine.seconds,
        records_per_sec,
        mib_per_sec: records_per_sec * args.line_bytes as f64 / (1 << 20) as f64,
        physical_seconds,
        physical_records_per_sec,
        ratio_to_physical: records_per_sec / physical_records_per_sec,
        caller_ns: Latency {
            p50: h.quantile(0.50),
            p99: h.quantile(0.99),
            p999: h.quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        },
        peak_rss_delta_mb,
        idle_cpu_percent,
        verified: problems.is_empty(),
        lines: check.lines,
        refused: engine.refused,
        shutdown_timed_out: engine.timed_out,
        problems,
        engine_log: args.keep.then(|| work.engine()),
        physical_log: args.keep.then(|| work.physical()),
        metrics: engine.metrics,
    })
}

struct EngineRun {
    seconds: f64,
    latency: Histogram,
    refused: u64,
    timed_out: bool,
    metrics: MetricsSnapshot,
}

/// A helper thread that calls `tick` every `every` until the returned sender is dropped.
fn ticker(
    every: Duration,
    mut tick: impl FnMut() + Send + 'static,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || loop {
        match rx.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => tick(),
            _ => return,
        }
    });
    (tx, t)
}

fn run_engine(
    args: &WriterArgs,
    path: &Path,
    counts: &[u64],
    gens: Vec<LineGen>,
    progress: bool,
) -> io::Result<EngineRun> {
    let sink = FileOptions::new().strategy(args.io).open(path)?;
    let writer = Writer::builder()
        .capacity(args.capacity as usize)
        .policy(args.policy)
        .batch_size(args.batch as usize)
        .mode(args.mode)
        .sink(sink)
        .build()
        .map_err(io::Error::other)?;
    let barrier = Arc::new(Barrier::new(gens.len() + 1));
    let producers: Vec<_> = gens
        .into_iter()
        .zip(counts.iter().copied())
        .map(|(gen, count)| {
            let handle = writer.handle();
            let barrier = Arc::clone(&barrier);
            let mut hist = Histogram::new();
            thread::Builder::new()
                .name("bench-producer".to_owned())
                .spawn(move || {
                    let refused = produce(&handle, gen, count, &mut hist, &barrier);
                    (hist, refused)
                })
        })
        .collect::<io::Result<_>>()?;

    let trigger = (args.mode == Mode::Manual).then(|| {
        let handle = writer.handle();
        ticker(MANUAL_TRIGGER_EVERY, move || handle.trigger())
    });
    barrier.wait();
    let start = Instant::now();
    let monitor = progress.then(|| {
        let handle = writer.handle();
        let total = args.records;
        ticker(PROGRESS_EVERY, move || {
            say!(
                "logxide bench: {:.0} s, {}/{total} records enqueued",
                start.elapsed().as_secs_f64(),
                handle.metrics().enqueued
            );
        })
    });

    let mut latency = Histogram::new();
    let mut refused = 0;
    for p in producers {
        let (hist, r) = p
            .join()
            .map_err(|_| io::Error::other("a producer thread panicked"))?;
        latency.merge(&hist);
        refused += r;
    }
    let report = writer.shutdown(None);
    let seconds = start.elapsed().as_secs_f64();
    for (tx, t) in trigger.into_iter().chain(monitor) {
        drop(tx);
        let _ = t.join();
    }
    Ok(EngineRun {
        seconds,
        latency,
        refused,
        timed_out: report.timed_out,
        metrics: report.metrics,
    })
}

/// Builds a writer with the benchmark's settings, lets it sit idle for `--idle-secs`, and
/// returns the CPU its thread used meanwhile, in percent of one core (from the thread's
/// `schedstat`, in nanoseconds; `None` where that file does not exist).
fn idle_cpu_percent(args: &WriterArgs, path: &Path) -> io::Result<Option<f64>> {
    const NAME: &str = "logxide-idle";
    let writer = Writer::builder()
        .capacity(args.capacity as usize)
        .policy(args.policy)
        .batch_size(args.batch as usize)
        .mode(args.mode)
        .thread_name(NAME)
        .sink(FileOptions::new().strategy(args.io).open(path)?)
        .build()
        .map_err(io::Error::other)?;
    // One record, so the writer has been through a write and back to sleep.
    let _ = writer.handle().enqueue(b"{}");
    writer.flush(None).map_err(io::Error::other)?;
    thread::sleep(Duration::from_millis(20));
    let cpu = mem::thread_cpu_ns(NAME);
    let start = Instant::now();
    thread::sleep(Duration::from_secs_f64(args.idle_secs));
    let used = match (cpu, mem::thread_cpu_ns(NAME)) {
        (Some(a), Some(b)) => Some((b - a) as f64 / start.elapsed().as_nanos() as f64 * 100.0),
        _ => None,
    };
    writer.shutdown(None);
    Ok(used)
}

/// One producer: enqueue `count` records, timing every call. Returns the refused count.
fn produce(
    handle: &WriterHandle,
    mut gen: LineGen,
    count: u64,
    hist: &mut Histogram,
    barrier: &Barrier,
) -> u64 {
    let mut refused = 0;
    barrier.wait();
    for i in 0..count {
        let result = if i % SAMPLE_EVERY == 0 {
            let t0 = Instant::now();
            let result = handle.enqueue(gen.line());
            hist.record(t0.elapsed().as_nanos() as u64);
            result
        } else {
            handle.enqueue(gen.line())
        };
        refused += u64::from(result.is_err());
        gen.advance();
    }
    refused
}

/// The baseline: the same lines, written by one thread in 64 KiB `write(2)` calls.
/// Returns the seconds it took (file creation excluded).
fn run_physical(path: &Path, counts: &[u64], gens: Vec<LineGen>) -> io::Result<f64> {
    let mut file = File::create(path)?;
    let mut chunk = Vec::with_capacity(PHYSICAL_CHUNK);
    let start = Instant::now();
    for (mut gen, &count) in gens.into_iter().zip(counts) {
        gen.reset();
        for _ in 0..count {
            let mut rest = gen.line();
            while !rest.is_empty() {
                let n = rest.len().min(PHYSICAL_CHUNK - chunk.len());
                chunk.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if chunk.len() == PHYSICAL_CHUNK {
                    file.write_all(&chunk)?;
                    chunk.clear();
                }
            }
            gen.advance();
        }
    }
    file.write_all(&chunk)?;
    drop(file);
    Ok(start.elapsed().as_secs_f64())
}

/// The human-readable summary.
pub fn print_summary(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let m = &r.metrics;
    writeln!(
        out,
        "logxide bench writer: {} records of {} bytes, {} thread(s), io={} mode={} policy={} capacity={} batch={}",
        r.records, r.line_bytes, r.threads, r.io, r.mode, r.policy, r.capacity, r.batch
    )?;
    writeln!(
        out,
        "  engine:    {:>12.0} records/s  {:>8.1} MiB/s  ({:.3} s)",
        r.records_per_sec, r.mib_per_sec, r.seconds
    )?;
    writeln!(
        out,
        "  physical:  {:>12.0} records/s  ({:.3} s, one thread, 64 KiB writes)",
        r.physical_records_per_sec, r.physical_seconds
    )?;
    writeln!(out, "  ratio to physical: {:.2}", r.ratio_to_physical)?;
    let c = &r.caller_ns;
    writeln!(
        out,
        "  enqueue latency (ns): p50 {}  p99 {}  p99.9 {}  max {}  mean {:.1}",
        c.p50, c.p99, c.p999, c.max, c.mean
    )?;
    if let Some(p) = r.idle_cpu_percent {
        writeln!(out, "  idle writer CPU: {p:.3} % of a core")?;
    }
    match r.peak_rss_delta_mb {
        Some(mb) => writeln!(out, "  peak RSS delta: {mb:.1} MiB")?,
        None => writeln!(out, "  peak RSS delta: unknown (no /proc/self/status)")?,
    }
    writeln!(
        out,
        "  metrics: enqueued {} written {} dropped {} (queue_full {} evicted {}) failed {} pending {} batches {} bytes {} high_water {} warnings {} errors {} restarts {} state {:?}",
        m.enqueued, m.written, m.dropped, m.dropped_by.queue_full, m.dropped_by.evicted,
        m.failed, m.pending, m.batches, m.bytes, m.high_water, m.warnings, m.errors,
        m.restarts, m.state
    )?;
    if let Some(path) = &r.engine_log {
        writeln!(out, "  engine log kept: {}", path.display())?;
    }
    if let Some(path) = &r.physical_log {
        writeln!(out, "  physical log kept: {}", path.display())?;
    }
    if r.verified {
        writeln!(out, "  verified: yes ({} lines)", r.lines)?;
    } else {
        writeln!(out, "  verified: NO ({} lines)", r.lines)?;
        for p in &r.problems {
            writeln!(out, "    - {p}")?;
        }
    }
    Ok(())
}
