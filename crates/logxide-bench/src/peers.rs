//! The `peers` command: runs every contender in a child process (`run-one`), collects the
//! JSON line each prints, and reports them as JSON or as a table.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde::Serialize;

use crate::contenders::NAMES;
use crate::harness::{timer_ns, CallerNs, CpuNs, RunReport, FIELDS, MESSAGE, SAMPLE_EVERY};

/// The options of `peers`.
pub struct Options {
    pub records: u64,
    pub threads: usize,
    pub json: bool,
    pub dir: Option<PathBuf>,
    pub keep: bool,
    pub only: Vec<String>,
    /// Runs of each contender (the median is reported).
    pub repeat: usize,
}

#[derive(Serialize)]
struct Output {
    workload: Workload,
    contenders: Vec<Entry>,
}

#[derive(Serialize)]
struct Workload {
    records: u64,
    threads: usize,
    fields: [&'static str; 3],
    message: &'static str,
    /// One call in this many is timed for `caller_ns`.
    caller_sample_every: u64,
    /// What timing a call adds by itself, included in every `caller_ns` figure: the median
    /// of empty timed regions in this process (`harness::timer_ns`).
    timer_ns: u64,
    /// Runs of each contender; each entry is its median run.
    repeat: usize,
}

#[derive(Serialize)]
struct Entry {
    name: String,
    seconds: Option<f64>,
    records_per_sec: Option<f64>,
    caller_ns: Option<CallerNs>,
    peak_rss_delta_mb: Option<f64>,
    /// CPU time per record, all threads: user and kernel.
    cpu_ns_per_record: Option<CpuNs>,
    bytes_per_line: Option<f64>,
    lines: Option<u64>,
    lines_ok: bool,
    lines_detail: Option<String>,
    error: Option<String>,
    /// Records/s of every run, in the order they ran (the entry is the median one).
    runs_records_per_sec: Vec<f64>,
}

impl Entry {
    fn from_report(name: &str, r: RunReport) -> Entry {
        Entry {
            name: name.to_owned(),
            seconds: Some(r.seconds),
            records_per_sec: Some(r.records_per_sec),
            caller_ns: Some(r.caller_ns),
            peak_rss_delta_mb: r.peak_rss_delta_mb,
            cpu_ns_per_record: r.cpu_ns_per_record,
            bytes_per_line: Some(r.bytes_per_line),
            lines: Some(r.lines),
            lines_ok: r.lines_ok,
            lines_detail: r.lines_detail,
            error: None,
            runs_records_per_sec: Vec::new(),
        }
    }

    fn failed(name: &str, error: String) -> Entry {
        Entry {
            name: name.to_owned(),
            seconds: None,
            records_per_sec: None,
            caller_ns: None,
            peak_rss_delta_mb: None,
            cpu_ns_per_record: None,
            bytes_per_line: None,
            lines: None,
            lines_ok: false,
            lines_detail: None,
            error: Some(error),
            runs_records_per_sec: Vec::new(),
        }
    }
}

/// Runs `peers`; the exit status is 0 when every contender run wrote exactly the expected
/// lines (a contender whose child failed counts as not ok).
pub fn main(opts: Options) -> ExitCode {
    let names: Vec<&str> = if opts.only.is_empty() {
        NAMES.to_vec()
    } else {
        let mut names = Vec::new();
        for n in &opts.only {
            match NAMES.iter().find(|k| **k == n.trim()) {
                Some(k) if !names.contains(k) => names.push(*k),
                Some(_) => {}
                None => {
                    eprintln!(
                        "logxide-bench: unknown contender {n:?}; expected one of {}",
                        NAMES.join(", ")
                    );
                    return ExitCode::from(2);
                }
            }
        }
        names
    };
    let (dir, made_dir) = match &opts.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("logxide-bench-{}", std::process::id())),
            true,
        ),
    };
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("logxide-bench: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("logxide-bench: cannot find my own executable: {e}");
            return ExitCode::from(2);
        }
    };

    let mut runs: Vec<Vec<Result<RunReport, String>>> = vec![Vec::new(); names.len()];
    for round in 1..=opts.repeat {
        for (name, runs) in names.iter().zip(&mut runs) {
            let path = dir.join(format!("{name}.log"));
            if !opts.json {
                eprintln!("running {name} ({round}/{}) ...", opts.repeat);
            }
            runs.push(run_child(&exe, name, &opts, &path));
            if !opts.keep {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let entries: Vec<Entry> = names
        .iter()
        .zip(runs)
        .map(|(name, runs)| median_entry(name, runs))
        .collect();
    if !opts.keep && made_dir {
        let _ = fs::remove_dir(&dir);
    }

    let all_ok = entries.iter().all(|e| e.lines_ok);
    let output = Output {
        workload: Workload {
            records: opts.records,
            threads: opts.threads,
            fields: FIELDS,
            message: MESSAGE,
            caller_sample_every: SAMPLE_EVERY,
            timer_ns: timer_ns(100_000),
            repeat: opts.repeat,
        },
        contenders: entries,
    };
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("the output serializes")
        );
    } else {
        print_table(&output);
        if opts.keep {
            println!("log files kept in {}", dir.display());
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A contender's entry from its runs: the median run by records/s (the upper one of an even
/// count); a failed run makes the entry a failure, and any run with wrong lines makes it
/// not ok.
fn median_entry(name: &str, runs: Vec<Result<RunReport, String>>) -> Entry {
    let mut reports = Vec::new();
    for run in runs {
        match run {
            Ok(r) => reports.push(r),
            Err(e) => return Entry::failed(name, e),
        }
    }
    let rates: Vec<f64> = reports.iter().map(|r| r.records_per_sec).collect();
    let all_ok = reports.iter().all(|r| r.lines_ok);
    reports.sort_by(|a, b| a.records_per_sec.total_cmp(&b.records_per_sec));
    let median = reports.swap_remove(reports.len() / 2);
    let mut entry = Entry::from_report(name, median);
    entry.lines_ok &= all_ok;
    entry.runs_records_per_sec = rates;
    entry
}

/// Runs `run-one` for `name` and reads the last JSON line of its standard output.
fn run_child(exe: &Path, name: &str, opts: &Options, path: &Path) -> Result<RunReport, String> {
    let out = Command::new(exe)
        .arg("run-one")
        .args(["--contender", name])
        .args(["--records", &opts.records.to_string()])
        .args(["--threads", &opts.threads.to_string()])
        .arg("--file")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if !out.status.success() {
        let tail: String = {
            let chars: Vec<char> = stderr.chars().collect();
            chars[chars.len().saturating_sub(2000)..].iter().collect()
        };
        return Err(format!("child {}: {tail}", out.status));
    }
    if !stderr.is_empty() && !opts.json {
        eprintln!("{name} (stderr): {stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<RunReport>(l).ok())
        .ok_or_else(|| format!("the child printed no result line; stdout: {stdout:.500}"))
}

fn print_table(out: &Output) {
    let w = &out.workload;
    println!(
        "{} records from {} thread(s): {:?} + {}; caller latency: one call in {} timed, \
         the timer's own {} ns included",
        w.records,
        w.threads,
        w.message,
        w.fields.join(", "),
        w.caller_sample_every,
        w.timer_ns
    );
    if w.repeat > 1 {
        println!(
            "each row: the median of {} interleaved runs, with the records/s of every run below it",
            w.repeat
        );
    }
    let rate_of = |name: &str| {
        out.contenders
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.records_per_sec)
    };
    let (logxide, sync) = (rate_of("logxide"), rate_of("sync_baseline"));
    let mut rows: Vec<&Entry> = out.contenders.iter().collect();
    rows.sort_by(|a, b| {
        let (a, b) = (
            a.records_per_sec.unwrap_or(-1.0),
            b.records_per_sec.unwrap_or(-1.0),
        );
        b.total_cmp(&a)
    });
    println!(
        "{:<14} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>10} {:>9} {:>11} {:>7} {:>8} {:>6}",
        "contender",
        "records/s",
        "seconds",
        "x logxide",
        "x sync",
        "p50 ns",
        "p99 ns",
        "p99.9 ns",
        "max ns",
        "RSS+ MiB",
        "cpu us+sy",
        "caller",
        "B/line",
        "lines"
    );
    let ratio = |r: Option<f64>, base: Option<f64>| match (r, base) {
        (Some(r), Some(b)) if b > 0.0 => format!("{:.2}", r / b),
        _ => "-".into(),
    };
    for e in rows {
        if let Some(err) = &e.error {
            println!("{:<14} failed: {err}", e.name);
            continue;
        }
        let c = e.caller_ns.as_ref();
        let ns = |f: fn(&CallerNs) -> u64| c.map_or("-".into(), |c| f(c).to_string());
        println!(
            "{:<14} {:>12.0} {:>9.3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>10} {:>9} {:>11} {:>7} {:>8.1} {:>6}",
            e.name,
            e.records_per_sec.unwrap_or(0.0),
            e.seconds.unwrap_or(0.0),
            ratio(e.records_per_sec, logxide),
            ratio(e.records_per_sec, sync),
            ns(|c| c.p50),
            ns(|c| c.p99),
            ns(|c| c.p999),
            ns(|c| c.max),
            e.peak_rss_delta_mb
                .map_or("-".into(), |m| format!("{m:.1}")),
            e.cpu_ns_per_record
                .map_or("-".into(), |c| format!("{:.0}+{:.0}", c.user, c.system)),
            e.cpu_ns_per_record
                .and_then(|c| c.callers)
                .map_or("-".into(), |c| format!("{c:.0}")),
            e.bytes_per_line.unwrap_or(0.0),
            if e.lines_ok { "ok" } else { "BAD" },
        );
        if e.runs_records_per_sec.len() > 1 {
            let mut sorted = e.runs_records_per_sec.clone();
            sorted.sort_by(f64::total_cmp);
            let millions: Vec<String> = sorted.iter().map(|r| format!("{:.2}", r / 1e6)).collect();
            println!("{:<14}   runs: {} M/s", "", millions.join(" "));
        }
        if let Some(d) = &e.lines_detail {
            println!("{:<14}   lines: {d}", "");
        }
    }
}
