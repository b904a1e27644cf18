//! A process forked while the global logger's writer is busy. The child has a copy of the
//! parent's writer — queue, buffers, sinks, locks — but no writer thread, and a lock the
//! writer thread held at the fork stays held forever. The child must not hang, must not write
//! the parent's queued records a second time, must count what it logs through the inherited
//! writer as dropped (`forked`), and must be able to `init` a fresh logger.
//!
//! Each scenario forks with `libc::fork`; the child reports through a file and `_exit`s; the
//! parent waits with a timeout and kills a child that hangs.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use logxide::logger;
use logxide::sink::{Batch, FnSink, SinkError};
use logxide::LoggerBuilder;
use serde_json::Value;

/// The tests here share the global logger.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a child may take before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// Records the child logs through the inherited writer (plus one in sync mode).
const CHILD_INHERITED: u64 = 100;
/// Records the child logs after re-initializing onto its own file.
const CHILD_NEW: u64 = 50;

/// What the child does: log through the inherited global logger (queued and synchronous),
/// flush, trigger, read the metrics, then `init` onto its own file and log there.
fn child_body(dir: &Path, tag: &str) -> Result<Value, String> {
    let start = Instant::now();
    for i in 0..CHILD_INHERITED {
        logxide::info!("child-inherited", i);
    }
    {
        // Synchronous writes take the writer's lock and drain its queue in the same process:
        // exactly what must not happen with the parent's copy.
        let _sync = logger::sync_mode();
        logxide::info!("child-sync");
    }
    let t = Instant::now();
    logger::flush(None).map_err(|e| format!("flush: {e}"))?;
    let flush_ms = t.elapsed().as_millis() as u64;
    logger::trigger();
    let inherited = logger::metrics();
    let guard = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .target(dir.join(format!("{tag}-child.log")))
        .init()
        .map_err(|e| format!("re-init: {e}"))?;
    for i in 0..CHILD_NEW {
        logxide::info!("child-new", i);
    }
    let report = logger::shutdown(Some(Duration::from_secs(5))).ok_or("no global logger")?;
    drop(guard);
    Ok(serde_json::json!({
        "inherited": inherited,
        "new": report.metrics,
        "flush_ms": flush_ms,
        "total_ms": start.elapsed().as_millis() as u64,
    }))
}

/// Forks; the child runs [`child_body`], writes its report (or error) to
/// `<tag>-report.json` and `_exit`s with 0 (ok), 1 (error) or 2 (panic).
fn fork_child(dir: &Path, tag: &str) -> libc::pid_t {
    fork_with(&dir.join(format!("{tag}-report.json")), || {
        child_body(dir, tag)
    })
}

/// Forks; the child runs `body`, writes its report (or error) to `report` and `_exit`s with
/// 0 (ok), 1 (error) or 2 (panic).
fn fork_with(report: &Path, body: impl FnOnce() -> Result<Value, String>) -> libc::pid_t {
    // SAFETY: `fork` has no memory-safety preconditions of its own; the child only runs
    // `body` (logxide's fork handling is what is under test; glibc keeps `malloc` usable in a
    // forked child) and leaves through `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let (text, code) = match outcome {
            Ok(Ok(v)) => (v.to_string(), 0),
            Ok(Err(e)) => (e, 1),
            Err(p) => (
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default(),
                2,
            ),
        };
        let _ = fs::write(report, text);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for `pid`; kills it (SIGKILL) if it has not exited within [`CHILD_TIMEOUT`].
/// `Ok(exit code)`, or `Err(())` if it hung (or died by a signal).
fn wait_child(pid: libc::pid_t) -> Result<i32, String> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `waitpid` on our own child with a valid pointer to a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return if libc::WIFEXITED(status) {
                Ok(libc::WEXITSTATUS(status))
            } else {
                Err(format!("child died by signal {}", libc::WTERMSIG(status)))
            };
        }
        if start.elapsed() > CHILD_TIMEOUT {
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!("child hung: killed after {CHILD_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks the child's outcome; returns its report.
fn child_report(dir: &Path, tag: &str, exit: Result<i32, String>) -> Value {
    let text = fs::read_to_string(dir.join(format!("{tag}-report.json"))).unwrap_or_default();
    match exit {
        Ok(0) => {}
        Ok(code) => panic!("{tag}: child failed (exit {code}): {text}"),
        Err(e) => panic!("{tag}: {e}; child's log: {:?}", read_child_log(dir, tag)),
    }
    let report: Value = serde_json::from_str(&text).unwrap();
    eprintln!("{tag}: child's report: {report}");
    let inherited = &report["inherited"];
    assert_eq!(inherited["state"], "forked", "{tag}: {report}");
    let forked = inherited["dropped_by"]["forked"].as_u64().unwrap();
    assert!(forked > CHILD_INHERITED, "{tag}: {report}");
    assert_eq!(inherited["pending"], 0, "{tag}: {report}");
    let n = |k: &str| inherited[k].as_u64().unwrap();
    assert_eq!(
        n("enqueued"),
        n("written") + n("dropped") + n("failed"),
        "{tag}: {report}"
    );
    assert!(
        report["flush_ms"].as_u64().unwrap() < 1000,
        "{tag}: {report}"
    );
    // The fresh logger in the child works.
    let new = &report["new"];
    assert_eq!(new["written"], CHILD_NEW, "{tag}: {report}");
    assert_eq!(new["dropped"], 0, "{tag}: {report}");
    let lines = read_child_log(dir, tag);
    assert_eq!(lines.len() as u64, CHILD_NEW, "{tag}");
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(
            (v["msg"].as_str(), v["i"].as_u64()),
            (Some("child-new"), Some(i as u64))
        );
    }
    report
}

fn read_child_log(dir: &Path, tag: &str) -> Vec<Value> {
    read_lines(&dir.join(format!("{tag}-child.log")))
}

fn read_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// Counts the parent's file: every `(msg, t, i)` exactly once, in order per `(msg, t)`, and
/// nothing the child logged.
fn check_parent_file(path: &Path, expected: &[(&str, u64, u64)]) {
    let lines = read_lines(path);
    let mut next: std::collections::HashMap<(String, u64), u64> = Default::default();
    for v in &lines {
        let msg = v["msg"].as_str().unwrap().to_owned();
        assert!(
            !msg.starts_with("child"),
            "a child's record in the parent's file: {v}"
        );
        let t = v["t"].as_u64().unwrap_or(0);
        let i = v["i"].as_u64().unwrap();
        let e = next.entry((msg.clone(), t)).or_insert(0);
        assert_eq!(i, *e, "{msg} t={t}: duplicate or gap (written twice?)");
        *e += 1;
    }
    for &(msg, t, n) in expected {
        assert_eq!(
            next.get(&(msg.to_owned(), t)).copied(),
            Some(n),
            "{msg} t={t}"
        );
    }
    assert_eq!(
        lines.len() as u64,
        expected.iter().map(|e| e.2).sum::<u64>(),
        "unexpected records"
    );
}

/// A sink that, while closed, holds the writer inside its call (with the writer's lock).
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    cv: Condvar,
    inside: AtomicBool,
}

impl Gate {
    fn sink(self: &Arc<Self>) -> impl logxide::sink::Sink {
        let gate = Arc::clone(self);
        FnSink::new("gate", move |_: &Batch<'_>| -> Result<(), SinkError> {
            let start = Instant::now();
            let mut closed = gate.closed.lock().unwrap();
            while *closed && start.elapsed() < CHILD_TIMEOUT {
                gate.inside.store(true, SeqCst);
                closed = gate
                    .cv
                    .wait_timeout(closed, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
            Ok(())
        })
    }

    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.cv.notify_all();
    }
}

/// Stops the producers and opens the gate when dropped.
struct Release(Arc<AtomicBool>, Arc<Gate>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
        self.1.set(false);
    }
}

/// The writer thread is inside a sink call (holding the writer's lock) and producers are
/// blocked on a full queue when the process forks.
#[test]
fn fork_while_the_writer_holds_its_lock() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a-parent.log");
    let gate = Arc::new(Gate::default());
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .set("writer_type", "line")
        .unwrap()
        .set("queue", "1000")
        .unwrap()
        .sink(gate.sink())
        .init()
        .unwrap();
    for i in 0..200u64 {
        logxide::info!("parent-before", i);
    }
    logger::flush(None).unwrap();

    gate.set(true);
    let stop = Arc::new(AtomicBool::new(false));
    // Whatever happens, the producers stop and the gate opens (no cascade into other tests).
    let _release = Release(Arc::clone(&stop), Arc::clone(&gate));
    let producers: Vec<_> = (0..2u64)
        .map(|t| {
            let stop = Arc::clone(&stop);
            // Records started: each call, once started, completes (policy `block`).
            let count = Arc::new(AtomicU64::new(0));
            let c = Arc::clone(&count);
            let h = std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(SeqCst) {
                    c.store(i + 1, SeqCst);
                    logxide::info!("parent-busy", t, i);
                    i += 1;
                }
            });
            (h, count)
        })
        .collect();
    let start = Instant::now();
    // The writer is in the gate and both producers are logging (the first may fill the queue
    // before the second starts: then the second is blocked in its first call).
    while !gate.inside.load(SeqCst) || producers.iter().any(|p| p.1.load(SeqCst) == 0) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the writer never reached the gate ({}), or a producer never started ({:?})",
            gate.inside.load(SeqCst),
            producers
                .iter()
                .map(|p| p.1.load(SeqCst))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20)); // let the queue fill up

    let pid = fork_child(dir.path(), "a");
    gate.set(false);
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, SeqCst);
    let counts: Vec<u64> = producers
        .into_iter()
        .map(|(h, c)| {
            h.join().unwrap();
            c.load(SeqCst)
        })
        .collect();
    let exit = wait_child(pid);
    let report = logger::shutdown(None).unwrap();
    drop(guard);
    assert_eq!(report.metrics.dropped, 0, "{:?}", report.metrics);
    child_report(dir.path(), "a", exit);
    check_parent_file(
        &path,
        &[
            ("parent-before", 0, 200),
            ("parent-busy", 0, counts[0]),
            ("parent-busy", 1, counts[1]),
        ],
    );
}

/// Records wait in the queue (manual mode) and the lock is free when the process forks: a
/// child that drained the queue would write the parent's records a second time.
#[test]
fn fork_with_records_queued() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b-parent.log");
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .set("writer_mode", "manual")
        .unwrap()
        .init()
        .unwrap();
    for i in 0..500u64 {
        logxide::info!("parent-queued", i);
    }
    assert_eq!(logger::metrics().written, 0);

    let pid = fork_child(dir.path(), "b");
    let exit = wait_child(pid);
    // The child's sync write must not have written the parent's queue into the shared file.
    let early = fs::read_to_string(&path).unwrap_or_default();
    let report = logger::shutdown(None).unwrap();
    drop(guard);
    assert_eq!(report.metrics.written, 500);
    assert!(
        early.is_empty(),
        "the child wrote {} lines to the parent's file ({exit:?}): {early:.300}",
        early.lines().count()
    );
    let child = child_report(dir.path(), "b", exit);
    // In the child, the parent's 500 queued copies and the child's 101 records are `forked`.
    assert_eq!(
        child["inherited"]["dropped_by"]["forked"],
        500 + CHILD_INHERITED + 1,
        "{child}"
    );
    check_parent_file(&path, &[("parent-queued", 0, 500)]);
}

/// The writer's API in a forked child, without the logger: every call returns at once, with
/// `Err(Dropped { reason: Forked })` for records; nothing reaches the (inherited) sink.
#[test]
fn writer_api_in_a_forked_child() {
    use logxide::sink::MemorySink;
    use logxide::writer::{DropReason, Dropped, Mode, Writer, WriterState};

    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    // Only the child shuts this writer down (the closure must not own it in the parent).
    let writer = std::cell::RefCell::new(Some(writer));
    for i in 0..10 {
        h.enqueue(format!("parent {i}").as_bytes()).unwrap();
    }
    let report = dir.path().join("api-report.json");
    let pid = fork_with(&report, || {
        let forked = Err(Dropped {
            reason: DropReason::Forked,
        });
        let check = |what: &str, ok: bool| if ok { Ok(()) } else { Err(what.to_owned()) };
        check("enqueue", h.enqueue(b"child 1") == forked)?;
        check("write_sync", h.write_sync(b"child 2") == forked)?;
        let text = h.enqueue(b"child 3").unwrap_err().to_string();
        check(&format!("message: {text}"), text.contains("fork()"))?;
        check("flush", h.flush(None).is_ok())?;
        h.trigger();
        let m = h.metrics();
        check(&format!("metrics {m:?}"), m.state == WriterState::Forked)?;
        // The parent's 10 queued records (their copies here) and the child's 3.
        check(&format!("metrics {m:?}"), m.dropped_by.forked == 13)?;
        check(&format!("metrics {m:?}"), m.pending == 0 && m.written == 0)?;
        check("last_error", h.last_error().is_none())?;
        let report = writer.borrow_mut().take().unwrap().shutdown(None);
        check(&format!("shutdown {report:?}"), !report.timed_out)?;
        check("sink untouched", mem.lines().is_empty())?;
        Ok(Value::Null)
    });
    let exit = wait_child(pid);
    let text = fs::read_to_string(&report).unwrap_or_default();
    assert_eq!(exit, Ok(0), "{text}");
    // The parent's writer is unaffected: its records are written once, by the parent.
    h.trigger();
    h.flush(None).unwrap();
    let expected: Vec<String> = (0..10).map(|i| format!("parent {i}")).collect();
    assert_eq!(mem.lines(), expected);
    assert_eq!(h.metrics().state, WriterState::Running);
    let m = writer.into_inner().unwrap().shutdown(None).metrics;
    assert_eq!((m.written, m.dropped), (10, 0));
}

/// With `flush_on_signals`, the handlers are inherited by a forked child but the thread that
/// acts on them is not: the child must still die by SIGTERM (before: it ignored it).
#[test]
fn a_forked_child_still_dies_by_sigterm_with_flush_on_signals() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signals.log");
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .flush_on_signals(true)
        .init()
        .unwrap();
    logxide::info!("parent");
    let pid = fork_with(&dir.path().join("signals-report.json"), || {
        logxide::info!("child"); // dropped: the inherited writer stands down
        std::thread::sleep(Duration::from_secs(5));
        Err("SIGTERM did not end the child".to_owned())
    });
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut status = 0;
    // SAFETY: reaps our own child, with a valid pointer to a local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
        "status {status:#x}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    // The parent's logger is untouched (its signal thread did not act).
    logxide::info!("parent again");
    let report = logger::shutdown(None).unwrap();
    drop(guard);
    assert_eq!(report.metrics.written, 2);
    let msgs: Vec<_> = read_lines(&path)
        .iter()
        .map(|v| v["msg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(msgs, ["parent", "parent again"]);
}

/// A fork while another thread is inside `init` (draining the logger it replaces): the
/// child's copy of the lock that makes `init`s take turns is held by a thread the child does
/// not have, and the child's own `init` must not wait for it.
#[test]
fn a_child_forked_during_an_init_can_init() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let draining = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&draining);
    let first = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(FnSink::new("slow", move |_: &Batch<'_>| {
            flag.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(500));
            Ok::<(), SinkError>(())
        }))
        .set("writer_mode", "manual")
        .unwrap()
        .init()
        .unwrap();
    logxide::info!("queued");
    // This init replaces `first`, which takes half a second to drain.
    let path = dir.path().join("parent.log");
    let reinit = std::thread::spawn(move || {
        LoggerBuilder::new()
            .use_env(false)
            .panic_hook(false)
            .target(path)
            .init()
            .unwrap()
    });
    while !draining.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let child_log = dir.path().join("child.log");
    let report = dir.path().join("init-report.json");
    let pid = fork_with(&report, || {
        let guard = LoggerBuilder::new()
            .use_env(false)
            .panic_hook(false)
            .target(&child_log)
            .init()
            .map_err(|e| format!("init: {e}"))?;
        logxide::info!("child");
        drop(guard);
        Ok(Value::Null)
    });
    let exit = wait_child(pid);
    let text = fs::read_to_string(&report).unwrap_or_default();
    assert_eq!(exit, Ok(0), "{text}");
    assert_eq!(read_lines(&dir.path().join("child.log")).len(), 1);
    let second = reinit.join().unwrap();
    drop((first, second));
}
