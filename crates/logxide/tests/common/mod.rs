//! Helpers shared by the integration tests: distinct numbered lines, their parsing,
//! per-producer order checks, the accounting identity, sinks that stall or panic on cue, and
//! a logger writing to memory.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logxide::sink::{Batch, MemorySink, Sink, SinkError};
use logxide::writer::MetricsSnapshot;

/// The record of producer `p`, sequence `s` (without `\n`). Lengths vary with `s`.
pub fn line(p: usize, s: usize) -> String {
    let pad = "x".repeat((s * 7 + p) % 23);
    format!(r#"{{"p":{p},"s":{s},"pad":"{pad}"}}"#)
}

/// `n` distinct records of producer `p`, each followed by `\n`, concatenated.
pub fn expected_bytes(p: usize, seqs: impl IntoIterator<Item = usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in seqs {
        out.extend_from_slice(line(p, s).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parses `(producer, seq)` out of a line made by [`line`], and checks the line is exactly
/// what [`line`] makes for them.
pub fn parse(l: &str) -> (usize, usize) {
    let rest = l
        .strip_prefix(r#"{"p":"#)
        .unwrap_or_else(|| panic!("unexpected line {l:?}"));
    let (p, rest) = rest.split_once(',').expect("p");
    let rest = rest.strip_prefix(r#""s":"#).expect("s");
    let (s, _) = rest.split_once(',').expect("s end");
    let (p, s) = (p.parse().unwrap(), s.parse().unwrap());
    assert_eq!(l, line(p, s), "line content corrupted");
    (p, s)
}

/// Splits `bytes` into lines; panics unless it ends with `\n` (or is empty) and has no NUL.
pub fn split_lines(bytes: &[u8]) -> Vec<&str> {
    assert!(!bytes.contains(&0), "NUL byte in output");
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "output does not end with a newline"
    );
    std::str::from_utf8(&bytes[..bytes.len() - 1])
        .expect("utf-8")
        .split('\n')
        .collect()
}

/// The sequences written per producer, in output order.
pub fn per_producer(bytes: &[u8], producers: usize) -> Vec<Vec<usize>> {
    let mut seqs = vec![Vec::new(); producers];
    for l in split_lines(bytes) {
        let (p, s) = parse(l);
        assert!(p < producers, "unknown producer {p}");
        seqs[p].push(s);
    }
    seqs
}

/// Every producer's records `0..per`, each exactly once, in order.
pub fn assert_all_in_order(bytes: &[u8], producers: usize, per: usize) {
    let seqs = per_producer(bytes, producers);
    for (p, got) in seqs.iter().enumerate() {
        assert_eq!(got.len(), per, "producer {p}: wrong number of records");
        for (i, &s) in got.iter().enumerate() {
            assert_eq!(s, i, "producer {p}: record {i} out of order or missing");
        }
    }
}

/// Each producer's records strictly increasing (no duplicate, no reordering); returns the
/// total number of lines.
pub fn assert_strictly_increasing(bytes: &[u8], producers: usize, per: usize) -> usize {
    let seqs = per_producer(bytes, producers);
    for (p, got) in seqs.iter().enumerate() {
        for w in got.windows(2) {
            assert!(w[0] < w[1], "producer {p}: {} then {}", w[0], w[1]);
        }
        if let Some(&last) = got.last() {
            assert!(last < per, "producer {p}: unknown seq {last}");
        }
    }
    seqs.iter().map(Vec::len).sum()
}

/// `enqueued == written + dropped + failed + pending`, dropped == sum by reason, pending 0.
pub fn assert_settled(m: &MetricsSnapshot) {
    assert_eq!(
        m.enqueued,
        m.written + m.dropped + m.failed + m.pending,
        "accounting: {m:?}"
    );
    assert_eq!(m.dropped, m.dropped_by.total(), "dropped by reason: {m:?}");
    assert_eq!(m.pending, 0, "pending after drain: {m:?}");
}

/// Polls `cond` every millisecond until it holds or `limit` passes; true if it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `scenario` on its own thread and returns its result, or panics if it takes longer
/// than `limit`: a deadlock fails the test instead of hanging it (the stuck thread is left
/// behind). A panic in the scenario fails the test with its message. Under Miri, whose
/// interpreter runs the scenario a hundred times slower or more, the limit is 50 times
/// longer: it still tells a deadlock from a slow run.
pub fn within<T: Send + 'static>(
    limit: Duration,
    scenario: impl FnOnce() -> T + Send + 'static,
) -> T {
    let limit = if cfg!(miri) { limit * 50 } else { limit };
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(scenario());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = thread.join();
            v
        }
        Err(RecvTimeoutError::Timeout) => panic!("the scenario did not finish within {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("the scenario ended without a result"),
        },
    }
}

/// The test's side of a [`GatedSink`].
pub struct Gate {
    entered: Receiver<usize>,
    permits: Option<Sender<()>>,
}

impl Gate {
    /// Waits until the writer is inside `write_batch`; returns the batch's record count.
    pub fn wait_entered(&self) -> usize {
        match self.entered.recv_timeout(Duration::from_secs(10)) {
            Ok(n) => n,
            Err(RecvTimeoutError::Timeout) => panic!("the writer never called the sink"),
            Err(RecvTimeoutError::Disconnected) => panic!("sink gone"),
        }
    }

    /// Lets one batch through (nothing to do once the gate is open).
    pub fn allow_one(&self) {
        if let Some(p) = &self.permits {
            p.send(()).unwrap();
        }
    }

    /// Lets every batch through from now on.
    pub fn open(&mut self) {
        self.permits = None;
    }
}

/// A sink that announces each batch, then waits for a permit from the test before writing it
/// to a [`MemorySink`]; once the gate is open it writes at once.
pub struct GatedSink {
    mem: MemorySink,
    entered: Sender<usize>,
    permits: Receiver<()>,
}

pub fn gated() -> (GatedSink, Gate, MemorySink) {
    let (etx, erx) = mpsc::channel();
    let (ptx, prx) = mpsc::channel();
    let mem = MemorySink::new();
    (
        GatedSink {
            mem: mem.clone(),
            entered: etx,
            permits: prx,
        },
        Gate {
            entered: erx,
            permits: Some(ptx),
        },
        mem,
    )
}

impl Sink for GatedSink {
    fn name(&self) -> &str {
        "gated"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let _ = self.entered.send(batch.len());
        let _ = self.permits.recv();
        self.mem.write_batch(batch)
    }
}

/// A sink that panics (before writing anything) on its first `panics` calls, or on every
/// batch holding a line that contains `poison`, and otherwise writes to a [`MemorySink`].
#[derive(Clone)]
pub struct PanickySink {
    pub mem: MemorySink,
    pub calls: Arc<AtomicUsize>,
    pub panics_left: Arc<AtomicUsize>,
    pub poison: Option<&'static str>,
    pub batches: Arc<Mutex<Vec<usize>>>,
}

impl PanickySink {
    pub fn first(panics: usize) -> Self {
        PanickySink {
            mem: MemorySink::new(),
            calls: Arc::default(),
            panics_left: Arc::new(AtomicUsize::new(panics)),
            poison: None,
            batches: Arc::default(),
        }
    }

    pub fn always() -> Self {
        Self::first(usize::MAX)
    }

    pub fn poisoned(poison: &'static str) -> Self {
        PanickySink {
            poison: Some(poison),
            ..Self::first(0)
        }
    }
}

impl Sink for PanickySink {
    fn name(&self) -> &str {
        "panicky"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.calls.fetch_add(1, SeqCst);
        if let Some(p) = self.poison {
            if batch
                .records()
                .any(|r| std::str::from_utf8(r).unwrap().contains(p))
            {
                panic!("poison record in batch");
            }
        }
        let left = self.panics_left.load(SeqCst);
        if left > 0 {
            if left != usize::MAX {
                self.panics_left.store(left - 1, SeqCst);
            }
            panic!("injected sink panic");
        }
        self.batches.lock().unwrap().push(batch.len());
        self.mem.write_batch(batch)
    }
}

/// Silences the default panic message of the injected panics (keeps others).
pub fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if msg.contains("injected") || msg.contains("poison") {
                return;
            }
            prev(info);
        }));
    });
}

/// A JSON object's members in order, duplicates kept (`serde_json::Value` would merge
/// repeated keys and sort them).
pub struct Members(pub Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    v.push(kv);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Runs this test binary's test `entry`, alone, as uid/gid 65534 with the environment
/// variable `var` set to `value`: for checks that need permission bits, which root (the CI's
/// user) ignores. Returns false, with a notice, if the child cannot be started (e.g. the
/// binary is in a directory uid 65534 cannot enter); panics if its checks fail or did not
/// run.
pub fn run_as_nobody(entry: &str, var: &str, value: impl AsRef<std::ffi::OsStr>) -> bool {
    use std::os::unix::process::CommandExt;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(var, value)
        .uid(65534)
        .gid(65534)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: cannot run the test binary as uid 65534 (root ignores the permission bits this test needs): {e}");
            return false;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "child as uid 65534 failed:\n{text}"
    );
    assert!(text.contains("1 passed"), "the checks did not run:\n{text}");
    true
}

/// A logger that ignores the environment and writes to the returned memory sink.
pub fn logger() -> (logxide::Logger, MemorySink) {
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    (log, mem)
}

/// A global logger on `path` whose sink is stuck at a gate, and a re-init onto the same file
/// (on another thread) that has uninstalled it and is draining it: the state the
/// `logger_reinit_*` tests look at. Dropping `gate` lets the drain go on.
pub struct StuckReinit {
    pub dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub gate: Sender<()>,
    pub old: logxide::logger::LoggerGuard,
    pub reinit: std::thread::JoinHandle<logxide::logger::LoggerGuard>,
}

/// An `init` onto `path` (appending) on a thread of its own: it uninstalls the global logger
/// writing there and waits for its drain first.
pub fn reinit_onto(
    path: &std::path::Path,
) -> std::thread::JoinHandle<logxide::logger::LoggerGuard> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        logxide::LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("mode", "a")
            .unwrap()
            .init()
            .unwrap()
    })
}

/// Installs the gated logger, logs `A` (which the sink takes and stops on), then
/// `later` (queued behind it), starts the re-init and waits until it uninstalled the logger.
pub fn stuck_reinit(later: &[&str]) -> StuckReinit {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (gate, waiting) = mpsc::channel::<()>();
    let waiting = Mutex::new(waiting);
    let (entered, at_gate) = mpsc::channel();
    let entered = Mutex::new(entered);
    let old = logxide::LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .sink(logxide::sink::FnSink::new("gate", move |_: &Batch<'_>| {
            let _ = entered.lock().unwrap_or_else(|e| e.into_inner()).send(());
            // Returns once the gate is dropped (there is never a message).
            let _ = waiting.lock().unwrap_or_else(|e| e.into_inner()).recv();
            Ok(())
        }))
        .init()
        .unwrap();
    logxide::info!("A");
    at_gate.recv().unwrap();
    for msg in later {
        logxide::info!("later", msg = *msg);
    }
    let reinit = reinit_onto(&path);
    // The re-init has uninstalled the old logger and drains it (stuck at the gate).
    while logxide::logger::global().is_some() {
        std::thread::yield_now();
    }
    StuckReinit {
        dir,
        path,
        gate,
        old,
        reinit,
    }
}
