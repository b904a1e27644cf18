//! The global logger: init options, validation before side effects, re-init, environment,
//! sync mode, the panic hook. Tests here share process-wide state, so they take a lock.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use logxide::logger::{self, InitError};
use logxide::writer::WriterState;
use logxide::LoggerBuilder;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn invalid_options_change_nothing() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keep.log");
    fs::write(&path, "precious\n").unwrap();
    let target = path.to_str().unwrap();

    // Text options are checked as they are set, with the option named.
    let err = LoggerBuilder::new().set("flush", "soon").unwrap_err();
    assert!(
        err.to_string().contains("`flush`") && err.to_string().contains("\"soon\""),
        "{err}"
    );
    let err = LoggerBuilder::new().set("policy", "sometimes").unwrap_err();
    assert!(err.to_string().contains("skip (= drop_newest)"), "{err}");
    let err = LoggerBuilder::new().set("colour", "red").unwrap_err();
    assert!(err.to_string().contains("unknown option"), "{err}");
    // A count too large says so, with the bound.
    let err = LoggerBuilder::new()
        .set("max_restarts", "4294967296")
        .unwrap_err();
    assert!(
        err.to_string().contains("too large, at most 4294967295"),
        "{err}"
    );
    let err = LoggerBuilder::new().set("queue", "1.5").unwrap_err();
    assert!(err.to_string().contains("expected a whole number"), "{err}");
    for (option, value) in [
        ("level", "loud"),
        ("mode", "r"),
        ("queue", "-1"),
        ("clean", "perhaps"),
        ("writer_type", "tape"),
        ("writer_mode", "auto"),
        ("task_id_mode", "serial"),
        ("format", "xml"),
        ("tick", "1 fortnight"),
        ("deadline", "x"),
    ] {
        let err = LoggerBuilder::new().set(option, value).unwrap_err();
        assert!(
            matches!(&err, InitError::Option { option: o, .. } if o == option),
            "{err}"
        );
    }

    // Cross-option problems are found by build/init, before `clean` deletes anything.
    let builder = || {
        LoggerBuilder::new()
            .use_env(false)
            .set("target", target)
            .unwrap()
            .set("clean", "true")
            .unwrap()
    };
    for (bad, name) in [
        (builder().set("queue", "0").unwrap(), "queue"),
        (builder().set("size", "20000").unwrap(), "size"), // larger than the queue
        (builder().set("flush", "0").unwrap(), "flush"),
        (
            builder()
                .set("writer_mode", "loop")
                .unwrap()
                .set("tick", "0ms")
                .unwrap(),
            "tick",
        ),
    ] {
        let err = bad.init().unwrap_err();
        // Named as the option was given, not as the writer calls it.
        assert!(
            matches!(&err, InitError::Option { option, .. } if option == name),
            "{err}"
        );
        assert!(err
            .to_string()
            .starts_with(&format!("logxide option `{name}`: invalid value ")));
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious\n");
    }
    assert!(logger::global().is_none());

    // An unopenable target is an error at init, naming the path.
    let err = LoggerBuilder::new()
        .use_env(false)
        .target(path.join("under-a-file.log"))
        .init()
        .unwrap_err();
    assert!(err.to_string().contains("under-a-file.log"), "{err}");
    assert!(logger::global().is_none());
}

#[test]
fn init_writes_drains_and_reinit_replaces_cleanly() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("nested/dir/first.log");
    let second = dir.path().join("second.log");
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&first)
        .init()
        .unwrap();
    assert!(logger::is_async());
    for i in 0..1000 {
        logxide::info!("first", i);
    }
    // Re-init: the first writer is drained and its thread joined before init returns.
    let guard2 = LoggerBuilder::new()
        .use_env(false)
        .target(&second)
        .set("mode", "a")
        .unwrap()
        .init()
        .unwrap();
    let recs = lines(&first);
    assert_eq!(recs.len(), 1000);
    assert!(recs.iter().enumerate().all(|(i, r)| r["i"] == i));
    assert_eq!(guard.logger().metrics().state, WriterState::Stopped);
    drop(guard); // no longer the global one: does nothing
    logxide::warning!("second", n = 1);
    logger::flush(None).unwrap();
    assert_eq!(lines(&second).len(), 1);
    drop(guard2);
    assert!(logger::global().is_some()); // uninstalled only by shutdown()
    logxide::info!("after the guard");
    let m = logger::metrics();
    assert_eq!((m.written, m.dropped_by.shutdown), (1, 1));
    logger::shutdown(None);
    assert!(logger::global().is_none());
}

/// Threads keep their own copy of the global logger: one that logged before a re-init (and
/// one that logs while a `Display` of its record logs too) must log to the new one after.
#[test]
fn a_thread_that_logged_before_a_reinit_logs_to_the_new_logger() {
    use std::sync::mpsc;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let init = |path: &std::path::Path| {
        LoggerBuilder::new()
            .use_env(false)
            .target(path)
            .init()
            .unwrap()
    };
    let g1 = init(&first);
    let (go, wait) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        struct Nested;
        impl std::fmt::Display for Nested {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                logxide::info!("nested");
                f.write_str("outer value")
            }
        }
        logxide::info!("before", v = %Nested);
        done.send(()).unwrap();
        wait.recv().unwrap();
        logxide::info!("after", v = %Nested);
        done.send(()).unwrap();
    });
    finished.recv().unwrap();
    let g2 = init(&second);
    go.send(()).unwrap();
    finished.recv().unwrap();
    worker.join().unwrap();
    logger::flush(None).unwrap();
    let msgs = |p: &std::path::Path| -> Vec<String> {
        lines(p)
            .iter()
            .map(|r| r["msg"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(msgs(&first), ["nested", "before"]);
    assert_eq!(msgs(&second), ["nested", "after"]);
    drop((g1, g2));
    logger::shutdown(None);
}

#[test]
fn mode_w_truncates_and_a_appends_for_every_strategy() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    for strategy in ["line", "block", "mmap"] {
        let path = dir.path().join(format!("{strategy}.log"));
        fs::write(&path, "{\"old\":1}\n").unwrap();
        for (mode, expected) in [("a", 2), ("w", 1), ("a", 2)] {
            let log = LoggerBuilder::new()
                .use_env(false)
                .target(&path)
                .set("writer_type", strategy)
                .unwrap()
                .set("mode", mode)
                .unwrap()
                .build()
                .unwrap();
            log.info("new");
            log.shutdown(None);
            let n = fs::read_to_string(&path).unwrap().lines().count();
            assert_eq!(n, expected, "{strategy} {mode}");
        }
    }
}

#[test]
fn sync_env_and_level_env() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.log");
    // Environment changes are serialized by the lock; no other test here reads them.
    std::env::set_var("LOGXPY_SYNC", "1");
    std::env::set_var("LOGXIDE_LEVEL", "warning");
    let log = LoggerBuilder::new().target(&path).build().unwrap();
    std::env::remove_var("LOGXPY_SYNC");
    assert!(!log.is_async());
    log.info("below the threshold");
    log.error("written at once");
    // Synchronous: in the file before any flush.
    assert_eq!(lines(&path).len(), 1);
    std::env::set_var("LOGXIDE_LEVEL", "chatty");
    let err = LoggerBuilder::new().target(&path).build().unwrap_err();
    assert!(err.to_string().contains("LOGXIDE_LEVEL"), "{err}");
    assert_eq!(lines(&path).len(), 1, "a failed build left the file alone");
    log.shutdown(None);
    // Empty is unset (as an empty LOGXIDE_SYNC is off): the configured level applies.
    std::env::set_var("LOGXIDE_LEVEL", "");
    let other = dir.path().join("empty-level.log");
    let log = LoggerBuilder::new()
        .target(&other)
        .set("level", "error")
        .unwrap()
        .build()
        .unwrap();
    std::env::remove_var("LOGXIDE_LEVEL");
    log.warning("below the configured threshold");
    log.error("kept");
    log.shutdown(None);
    let kept = lines(&other);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["msg"], "kept");
}

#[test]
fn panic_hook_logs_and_flushes() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panic.log");
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .set("flush", "10s")
        .unwrap()
        .set("size", "10000")
        .unwrap()
        .init()
        .unwrap();
    logxide::info!("before");
    let handle = std::thread::Builder::new()
        .name("doomed".into())
        .spawn(|| {
            let _a = logxide::start_action!("risky");
            panic!("kaboom");
        })
        .unwrap();
    assert!(handle.join().is_err());
    // The hook flushed: the panic record is in the file without waiting 10 s.
    let recs = lines(&path);
    let panic = recs
        .iter()
        .find(|r| r["msg"] == "panic")
        .expect("panic record");
    assert_eq!(panic["mt"], "critical");
    assert_eq!(panic["reason"], "kaboom");
    assert_eq!(panic["thread"], "doomed");
    drop(guard);
    logger::shutdown(Some(Duration::from_secs(5)));
    let recs = lines(&path);
    let failed = recs
        .iter()
        .find(|r| r["st"] == "failed")
        .expect("failed action");
    assert_eq!(failed["at"], "risky");
    assert_eq!(failed["exc"], "panic");
}

/// Runs `f` on a thread and fails the test if it does not finish in `secs` (a deadlock).
fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("did not finish: deadlock");
}

/// A logger from `builder` with two sinks: one that calls `on_batch` with the logger itself
/// (a sink that logs), then a memory sink.
fn with_chatty_sink(
    builder: LoggerBuilder,
    on_batch: impl Fn(&logxide::Logger, &logxide::sink::Batch<'_>) + Send + 'static,
) -> (logxide::Logger, logxide::sink::MemorySink) {
    use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
    use std::sync::{Arc, OnceLock};
    let me: Arc<OnceLock<logxide::Logger>> = Arc::new(OnceLock::new());
    let me2 = Arc::clone(&me);
    let chatty = FnSink::new("chatty", move |b: &Batch<'_>| -> Result<(), SinkError> {
        if let Some(log) = me2.get() {
            on_batch(log, b);
        }
        Ok(())
    });
    let mem = MemorySink::new();
    let log = builder.sink(chatty).sink(mem.clone()).build().unwrap();
    let _ = me.set(log.clone());
    (log, mem)
}

#[test]
fn a_sink_that_logs_or_panics_cannot_deadlock_the_writer() {
    let _s = serial();
    use logxide::sink::{Batch, FnSink, SinkError};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    // A sink that logs through the logger it belongs to, with a tiny blocking queue.
    within(20, || {
        let builder = LoggerBuilder::new()
            .use_env(false)
            .set("queue", "2")
            .unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&refused);
        let (log, mem) = with_chatty_sink(builder, move |log, b| {
            log.info(&format!("sink saw {} records", b.len()));
            // Returns at once inside a sink, saying why.
            let err = log.flush(None).unwrap_err();
            assert!(err.on_writer_thread, "{err}");
            assert!(err
                .to_string()
                .starts_with("flush refused on the writer's own thread"));
            seen.fetch_add(1, SeqCst);
        });
        for i in 0..2000 {
            logxide::info!(logger: log, "outer", i);
        }
        let m = log.shutdown(None).unwrap().metrics;
        assert_eq!(m.enqueued, m.written + m.dropped + m.failed);
        let outer = mem
            .lines()
            .iter()
            .filter(|l| l.contains("\"outer\""))
            .count();
        assert_eq!(outer, 2000, "the application's records are all written");
        assert!(refused.load(SeqCst) > 0);
    });

    // A sink that panics while the global panic hook is installed and the queue is full.
    within(30, || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.log");
        let guard = LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("queue", "4")
            .unwrap()
            .set("size", "1")
            .unwrap()
            .sink(FnSink::new(
                "bomb",
                |_: &Batch<'_>| -> Result<(), SinkError> { panic!("sink exploded") },
            ))
            .init()
            .unwrap();
        // As many records as the queue holds: the hook, running on the writer thread inside
        // the panicking sink, finds the queue full — it must drop its record, not wait for
        // the writer (itself). Shutdown then cuts the restart backoff short and drains.
        for i in 0..4 {
            logxide::info!("record", i);
        }
        drop(guard);
        let report = logger::shutdown(Some(Duration::from_secs(20)));
        let _ = report;
        let text = fs::read_to_string(&path).unwrap();
        for i in 0..4 {
            assert!(
                text.contains(&format!("\"msg\":\"record\",\"i\":{i}}}")),
                "record {i} missing"
            );
        }
    });
}

/// A sink that logs on every batch while its writer shuts down: a record it publishes just as
/// the writer leaves the running state must not make it lock the writer's state, which it
/// holds (a deadlock seen about once in a hundred runs before that case was handled).
#[test]
fn a_sink_that_logs_while_its_writer_shuts_down_never_deadlocks() {
    within(120, || {
        for round in 0..300 {
            let builder = LoggerBuilder::new()
                .use_env(false)
                .set("queue", "4")
                .unwrap()
                .set("size", "1")
                .unwrap();
            let (log, mem) = with_chatty_sink(builder, |log, _| log.info("from the sink"));
            for i in 0..50 {
                logxide::info!(logger: log, "outer", i);
            }
            let m = log.shutdown(None).unwrap().metrics;
            assert_eq!(m.pending, 0, "round {round}: {m:?}");
            assert_eq!(
                m.enqueued,
                m.written + m.dropped + m.failed,
                "round {round}"
            );
            let outer = mem
                .lines()
                .iter()
                .filter(|l| l.contains("\"outer\""))
                .count();
            assert_eq!(
                outer, 50,
                "round {round}: the application's records are all written"
            );
        }
    });
}

#[test]
fn reinit_onto_the_same_file_drains_first() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("same.log");
    for strategy in ["block", "mmap"] {
        let _ = fs::remove_file(&path);
        let first = LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("writer_type", strategy)
            .unwrap()
            .set("flush", "1h")
            .unwrap()
            .set("size", "10000")
            .unwrap()
            .init()
            .unwrap();
        for i in 0..1000 {
            logxide::info!("old", i);
        }
        // Still queued (the flush interval is an hour) when the new logger opens the file.
        let second = LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("writer_type", strategy)
            .unwrap()
            .set("mode", "a")
            .unwrap()
            .init()
            .unwrap();
        drop(first);
        for i in 0..10 {
            logxide::info!("new", i);
        }
        drop(second);
        logger::shutdown(None);
        let bytes = fs::read(&path).unwrap();
        assert!(!bytes.contains(&0), "{strategy}: NUL bytes");
        let recs = lines(&path);
        assert_eq!(recs.len(), 1010, "{strategy}");
        assert!(recs[..1000]
            .iter()
            .enumerate()
            .all(|(i, r)| r["msg"] == "old" && r["i"] == i));
        assert!(recs[1000..]
            .iter()
            .enumerate()
            .all(|(i, r)| r["msg"] == "new" && r["i"] == i));
    }
}

#[test]
fn writer_limits_are_logger_options() {
    let _s = serial();
    let mem = logxide::sink::MemorySink::new();
    let log = LoggerBuilder::new()
        .use_env(false)
        .set("max_bytes", "64KiB")
        .unwrap()
        .set("block_timeout", "250ms")
        .unwrap()
        .set("max_restarts", "3")
        .unwrap()
        .set("thread_name", "app-log")
        .unwrap()
        .sink(mem.clone())
        .build()
        .unwrap();
    log.info("one");
    log.flush(None).unwrap();
    assert_eq!(mem.lines().len(), 1);
    for (option, value) in [
        ("max_bytes", "lots"),
        ("block_timeout", "later"),
        ("max_restarts", "-1"),
        ("thread_name", " "),
    ] {
        let err = LoggerBuilder::new().set(option, value).unwrap_err();
        assert!(err.to_string().contains(&format!("`{option}`")), "{err}");
    }
    // block_timeout with a drop policy is refused (it applies to `block` only).
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(logxide::sink::MemorySink::new())
        .set("policy", "drop_newest")
        .unwrap()
        .set("block_timeout", "1s")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("block_timeout"), "{err}");
    log.shutdown(None);
}

/// `metrics()` once `shutdown()` uninstalled the global logger: its counts, also while it
/// still drains after the timeout expired, then its final counts, plus the records logged
/// since (discarded, counted as dropped).
#[test]
fn metrics_after_shutdown_follow_the_stopped_logger() {
    use logxide::sink::{Batch, FnSink, SinkError};
    use std::sync::mpsc;
    let _s = serial();
    // A sink that waits for a go before each batch.
    let (go, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let gated = FnSink::new("gated", move |_: &Batch<'_>| -> Result<(), SinkError> {
        let _ = gate.lock().unwrap().recv();
        Ok(())
    });
    let guard = LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .sink(gated)
        .init()
        .unwrap();
    for i in 0..10 {
        logxide::info!("queued", i);
    }
    let report = logger::shutdown(Some(Duration::from_millis(50))).unwrap();
    assert!(report.timed_out, "{report:?}");
    let m = logger::metrics();
    assert_eq!((m.enqueued, m.written + m.pending), (10, 10), "{m:?}");
    assert!(m.pending > 0, "{m:?}");
    // Let it drain in the background: the counts follow.
    for _ in 0..20 {
        let _ = go.send(());
    }
    let drained = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        logger::metrics().written == 10
    });
    assert!(drained, "{:?}", logger::metrics());
    logxide::info!("after shutdown");
    let m = logger::metrics();
    assert_eq!(
        (m.enqueued, m.written, m.dropped_by.shutdown, m.pending),
        (11, 10, 1, 0)
    );
    drop(guard);
}

/// `panic_hook(false)` on a re-init turns off the hook an earlier init installed (it is
/// process-wide and cannot be removed): a panic is no longer logged to the new logger, and
/// a later init with the hook on logs panics again.
#[test]
fn a_reinit_with_the_panic_hook_off_stops_logging_panics() {
    use logxide::sink::MemorySink;
    let _s = serial();
    let msgs = |mem: &MemorySink| -> Vec<String> {
        mem.lines()
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["msg"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let init = |mem: &MemorySink, hook: bool| {
        LoggerBuilder::new()
            .use_env(false)
            .panic_hook(hook)
            .sink(mem.clone())
            .init()
            .unwrap()
    };
    let panic_on_a_thread = || {
        std::thread::spawn(|| panic!("expected by the test"))
            .join()
            .unwrap_err();
        logxide::info!("after the panic");
        logger::flush(None).unwrap();
    };
    let (on, off, again) = (MemorySink::new(), MemorySink::new(), MemorySink::new());
    let g1 = init(&on, true);
    panic_on_a_thread();
    assert_eq!(msgs(&on), ["panic", "after the panic"]);
    let g2 = init(&off, false);
    panic_on_a_thread();
    assert_eq!(msgs(&off), ["after the panic"]);
    let g3 = init(&again, true);
    panic_on_a_thread();
    assert_eq!(msgs(&again), ["panic", "after the panic"]);
    drop((g1, g2, g3));
    logger::shutdown(None);
}

/// A byte bound beyond what the queue's accounting holds (`i64::MAX`) is refused at build,
/// naming the bound; it refused every record as "queue full" before (or blocked the caller
/// for ever under `block`). The largest accepted bound writes.
#[test]
fn a_byte_bound_too_large_is_an_error_not_a_full_queue() {
    use logxide::sink::MemorySink;
    use logxide::writer::{BuildError, Writer};
    for value in [
        "9223372036854775808",
        "18446744073709551615",
        "10000000000GB",
    ] {
        let err = LoggerBuilder::new()
            .use_env(false)
            .sink(MemorySink::new())
            .set("max_bytes", value)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, InitError::Option { option, .. } if option == "max_bytes"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("at most 9223372036854775807 bytes"),
            "{err}"
        );
    }
    let err = Writer::builder()
        .max_bytes(usize::MAX)
        .sink(MemorySink::new())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Invalid {
                option: "max_bytes",
                ..
            }
        ),
        "{err}"
    );
    let mem = MemorySink::new();
    let log = LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .set("max_bytes", "9223372036854775807")
        .unwrap()
        .set("policy", "drop_newest")
        .unwrap()
        .build()
        .unwrap();
    log.info("fits");
    let report = log.shutdown(None).unwrap();
    assert_eq!((report.metrics.written, report.metrics.dropped), (1, 0));
    assert_eq!(mem.lines().len(), 1);
}

/// Microseconds are `us`, `µs` (U+00B5 MICRO SIGN) or `μs` (U+03BC GREEK SMALL LETTER MU,
/// what many keyboards and input methods produce); the error lists them all. (Before, the
/// Greek mu was refused, and the message did not say it differs from the accepted sign.)
#[test]
fn durations_accept_the_micro_sign_and_the_greek_mu() {
    use logxide::logger::parse_duration;
    for text in ["250us", "250\u{b5}s", "250\u{3bc}s", " 250 \u{3bc}s "] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_micros(250)),
            "{text:?}"
        );
    }
    assert_eq!(
        parse_duration("1.5\u{3bc}s"),
        Ok(Duration::from_nanos(1500))
    );
    LoggerBuilder::new()
        .set("block_timeout", "500\u{3bc}s")
        .unwrap();
    assert_eq!(
        parse_duration("2 mus").unwrap_err().to_string(),
        "invalid duration \"2 mus\": expected a number of seconds, optionally with a unit ns, us, \u{b5}s or \u{3bc}s (micro sign or Greek mu), ms, s, m, h or d (e.g. \"100ms\", \"1.5 h\")"
    );
    let err = LoggerBuilder::new().set("flush", "3 \u{3bc}").unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "flush"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "logxide option `flush`: invalid duration \"3 \u{3bc}\": expected a number of seconds, optionally with a unit ns, us, \u{b5}s or \u{3bc}s (micro sign or Greek mu), ms, s, m, h or d (e.g. \"100ms\", \"1.5 h\")"
    );
}

/// A deadline of `None` (any case, as the seed system's Python default prints) is no
/// deadline; a bad one says `none` is accepted too. A duration or size too large says so,
/// with the bound. (Before: `None` was refused as an invalid duration that did not mention
/// `none`, and too large a value got the message of text that is no duration or size.)
#[test]
fn config_errors_say_what_was_wrong_and_what_is_accepted() {
    use logxide::logger::parse_duration;
    use logxide::sink::rotate::parse_size;
    for none in ["none", "None", "NONE", " None ", ""] {
        LoggerBuilder::new()
            .use_env(false)
            .sink(logxide::sink::MemorySink::new())
            .set("deadline", none)
            .unwrap()
            .check()
            .unwrap();
    }
    let err = LoggerBuilder::new().set("deadline", "never").unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "deadline"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "logxide option `deadline`: invalid duration \"never\": expected a number of seconds, optionally with a unit ns, us, \u{b5}s or \u{3bc}s (micro sign or Greek mu), ms, s, m, h or d (e.g. \"100ms\", \"1.5 h\"), or none (any case) for no deadline"
    );

    for text in ["1000000000001", "11575000d", "1".repeat(400).as_str()] {
        assert_eq!(
            parse_duration(text).unwrap_err().to_string(),
            format!("invalid duration {text:?}: too large, at most 1000000000000 seconds (about 31 700 years)")
        );
    }
    assert_eq!(
        parse_duration("1000000000000"),
        Ok(Duration::from_secs(1_000_000_000_000))
    );
    assert_eq!(
        LoggerBuilder::new()
            .set("max_age", "20000000000000 s")
            .unwrap_err()
            .to_string(),
        "logxide option `max_age`: invalid duration \"20000000000000 s\": too large, at most 1000000000000 seconds (about 31 700 years), or forever (no limit)"
    );

    for text in [
        "18446744073709551616",
        "20000000000GB",
        "18446744073709551615 KiB",
    ] {
        assert_eq!(
            parse_size(text).unwrap_err().to_string(),
            format!("invalid size {text:?}: too large, at most 18446744073709551615 bytes")
        );
    }
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    // A number too large with a unit that is none: the unit is what is wrong.
    assert!(parse_size("99999999999999999999 parsecs")
        .unwrap_err()
        .to_string()
        .contains("expected a whole number of bytes, optionally with a unit B, KB"));
    assert_eq!(
        LoggerBuilder::new()
            .set("rotate_size", "20000000000GB")
            .unwrap_err()
            .to_string(),
        "logxide option `rotate_size`: invalid size \"20000000000GB\": too large, at most 18446744073709551615 bytes"
    );
    // The byte bound of the queue: the writer's limit, as for a value below u64::MAX.
    assert_eq!(
        LoggerBuilder::new()
            .set("max_bytes", "20000000000GB")
            .unwrap_err()
            .to_string(),
        "logxide option `max_bytes`: invalid size \"20000000000GB\": too large, at most 9223372036854775807 bytes"
    );
}

#[test]
fn a_block_timeout_refused_for_its_policy_names_the_duration() {
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(logxide::sink::MemorySink::new())
        .set("policy", "skip")
        .unwrap()
        .set("block_timeout", "1s")
        .unwrap()
        .check()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"logxide option `block_timeout`: invalid value "1s": applies only to the block policy"#
    );
}

#[test]
fn a_blank_logxide_level_is_unset_as_a_blank_logxide_sync_is_off() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blank-level.log");
    // Environment changes are serialized by the lock; no other test here reads them.
    std::env::set_var("LOGXIDE_SYNC", " ");
    std::env::set_var("LOGXIDE_LEVEL", "  ");
    let built = LoggerBuilder::new()
        .target(&path)
        .set("level", "error")
        .unwrap()
        .build();
    std::env::remove_var("LOGXIDE_SYNC");
    std::env::remove_var("LOGXIDE_LEVEL");
    let log = built.unwrap();
    assert!(log.is_async(), "a blank LOGXIDE_SYNC is off");
    assert_eq!(log.level(), logxide::Level::Error, "the configured level");
    log.shutdown(None);
}

/// `LOGXIDE_SYNC` / `LOGXPY_SYNC` take the words their docs list, in any case and with
/// spaces around: `1`, `true`, `yes`, `on` force synchronous writes; `0`, `false`, `no`,
/// `off` leave the logger asynchronous; anything else is an error naming the variable.
#[test]
fn logxide_sync_takes_the_words_its_docs_list() {
    let _s = serial();
    let is_async_with = |var: &str, value: &str| {
        std::env::set_var(var, value);
        let built = LoggerBuilder::new()
            .sink(logxide::sink::MemorySink::new())
            .build();
        std::env::remove_var(var);
        let log = built.unwrap();
        let on = log.is_async();
        log.shutdown(None);
        on
    };
    for var in ["LOGXIDE_SYNC", "LOGXPY_SYNC"] {
        for value in ["1", "true", "YES", " On "] {
            assert!(!is_async_with(var, value), "{var}={value:?} forces sync");
        }
        for value in ["0", "false", "No", " OFF "] {
            assert!(is_async_with(var, value), "{var}={value:?} is off");
        }
        std::env::set_var(var, "maybe");
        let err = LoggerBuilder::new()
            .sink(logxide::sink::MemorySink::new())
            .check()
            .unwrap_err();
        std::env::remove_var(var);
        assert_eq!(
            err.to_string(),
            format!(
                "logxide option `{var}`: invalid value \"maybe\": expected 1, true, yes or on \
                 (synchronous writes) or 0, false, no, off or empty (any case)"
            )
        );
    }
}

#[test]
fn is_async_is_false_once_the_guard_drained_the_global_logger() {
    let _s = serial();
    let mem = logxide::sink::MemorySink::new();
    let guard = LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    assert!(logger::is_async());
    drop(guard);
    // The guard shut the writer down: nothing goes through a background thread any more.
    assert_eq!(logger::metrics().state, WriterState::Stopped);
    assert!(!logger::is_async());
    logxide::info!("after the guard");
    assert_eq!(logger::metrics().dropped_by.shutdown, 1);
    assert!(mem.lines().is_empty());
}

#[test]
fn concurrent_inits_onto_the_same_file_take_turns() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turns.log");
    // The first logger writes slowly: a batch of 5 records, then (0.2 s later) the 15 queued
    // meanwhile, while the re-init that replaces it waits for them.
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&delivered);
    let first = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .sink(logxide::sink::FnSink::new(
            "slow",
            move |batch: &logxide::sink::Batch<'_>| {
                std::thread::sleep(Duration::from_millis(200));
                counter.fetch_add(batch.len(), SeqCst);
                Ok(())
            },
        ))
        .set("writer_type", "line")
        .unwrap()
        .set("size", "5")
        .unwrap()
        .init()
        .unwrap();
    for i in 0..5 {
        logxide::info!("first", i);
    }
    std::thread::sleep(Duration::from_millis(20));
    for i in 5..20 {
        logxide::info!("first", i);
    }
    let append = |path: &std::path::Path| {
        LoggerBuilder::new()
            .use_env(false)
            .target(path)
            .set("mode", "a")
            .unwrap()
    };
    // One re-init onto the file drains the first logger; another one starts meanwhile.
    let a = std::thread::spawn({
        let path = path.clone();
        move || append(&path).init().unwrap()
    });
    std::thread::sleep(Duration::from_millis(100));
    let b = append(&path).init().unwrap();
    // (Counted in records, not batches: how the writer split them depends on its timing.)
    assert_eq!(
        delivered.load(SeqCst),
        20,
        "the second re-init returned (its file open) while the first logger still drained into the file"
    );
    b.logger().info("second");
    b.logger().flush(None).unwrap();
    let a = a.join().unwrap();
    logxide::info!("last");
    logger::shutdown(None);
    drop((first, a, b));
    let text = fs::read_to_string(&path).unwrap();
    let msgs: Vec<String> = text
        .lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(r) => r["msg"].as_str().unwrap_or("?").to_owned(),
            Err(_) => format!("garbled: {l:?}"),
        })
        .collect();
    let mut expected = vec!["first"; 20];
    expected.extend(["second", "last"]);
    assert_eq!(msgs, expected, "every record written, each once, in order");
}

#[test]
fn block_timeout_none_is_its_documented_default() {
    for none in ["none", "None", " NONE ", ""] {
        LoggerBuilder::new()
            .use_env(false)
            .sink(logxide::sink::MemorySink::new())
            .set("block_timeout", "2s")
            .unwrap()
            .set("block_timeout", none)
            .unwrap()
            // No timeout any more: another policy than block is fine.
            .set("policy", "skip")
            .unwrap()
            .check()
            .unwrap();
    }
    assert_eq!(
        LoggerBuilder::new()
            .set("block_timeout", "never")
            .unwrap_err()
            .to_string(),
        "logxide option `block_timeout`: invalid duration \"never\": expected a number of seconds, optionally with a unit ns, us, \u{b5}s or \u{3bc}s (micro sign or Greek mu), ms, s, m, h or d (e.g. \"100ms\", \"1.5 h\"), or none (any case) for no timeout"
    );
}

#[test]
fn records_logged_during_a_reinit_onto_the_same_file_are_written_or_counted() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.log");
    let builder = || {
        LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("mode", "a")
            .unwrap()
    };
    // The first logger takes a while to drain: its records are flushed once an hour.
    let first = builder().set("flush", "1h").unwrap().init().unwrap();
    for i in 0..20_000 {
        logxide::info!("before", i);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let logging = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let mut n = 0u64;
            while !stop.load(SeqCst) || n < 1000 {
                logxide::info!("during", n);
                n += 1;
                if n % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            n
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    let second = builder().init().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, SeqCst);
    let logged = logging.join().unwrap();
    let old = first.logger().metrics();
    let new = logger::metrics();
    drop(second);
    drop(first);
    logger::shutdown(None);
    // Still counted once the logger that counts them is shut down.
    assert_eq!(
        logger::metrics().dropped_by.shutdown,
        new.dropped_by.shutdown
    );
    let during = lines(&path).iter().filter(|r| r["msg"] == "during").count() as u64;
    // Every record is written, or counted as dropped: by the old logger (by a thread that
    // still used it) or, found no logger while the re-init drained the old one, with the new
    // logger's global metrics.
    assert_eq!(
        during + old.dropped + new.dropped,
        logged,
        "written {during}, dropped by the old logger {} and the new one {}",
        old.dropped,
        new.dropped
    );
}

/// An `init` from the `warn` hook — which the writer runs on its thread, here for its final
/// report while an `init` on another thread replaces that writer and waits for its thread —
/// does not wait for that other `init`'s turn (before: each waited for the other).
#[test]
fn an_init_from_the_warn_hook_during_another_init_does_not_deadlock() {
    use logxide::sink::{Batch, FnSink, MemorySink};
    use std::sync::{Arc, Mutex};
    let _s = serial();
    let from_hook: Arc<Mutex<Option<logxide::logger::LoggerGuard>>> = Arc::new(Mutex::new(None));
    let hook_mem = MemorySink::new();
    let (slot, mem) = (Arc::clone(&from_hook), hook_mem.clone());
    let first = LoggerBuilder::new()
        .use_env(false)
        .sink(FnSink::new("slow", |_: &Batch<'_>| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        }))
        .set("policy", "warn")
        .unwrap()
        .set("queue", "10")
        .unwrap()
        .on_drop_warning(move |_| {
            let mut slot = slot.lock().unwrap();
            if slot.is_none() {
                let guard = LoggerBuilder::new()
                    .use_env(false)
                    .sink(mem.clone())
                    .init()
                    .unwrap();
                *slot = Some(guard);
            }
        })
        .init()
        .unwrap();
    for i in 0..200 {
        logxide::info!("overflow", i);
    }
    assert!(first.logger().metrics().dropped > 0);
    let second_mem = MemorySink::new();
    let second = second_mem.clone();
    within(20, move || {
        // Replaces the first logger: drains it, and its final drop report runs the hook.
        let guard = LoggerBuilder::new()
            .use_env(false)
            .sink(second)
            .init()
            .unwrap();
        drop(first);
        drop(guard);
    });
    // The hook's init ran (its logger was installed, then replaced or shut down in turn).
    assert!(from_hook.lock().unwrap().is_some());
    drop(from_hook.lock().unwrap().take());
    logxide::logger::shutdown(None);
}

/// A time shorter than a nanosecond but not zero (`0.1ns`) is refused as too small, by the
/// grammar itself: it rounded to zero and came back as "0ns: must be positive", naming a
/// value the user never wrote.
#[test]
fn a_duration_below_a_nanosecond_is_too_small() {
    use logxide::logger::parse_duration;
    assert_eq!(
        parse_duration("0.1ns").unwrap_err().to_string(),
        r#"invalid duration "0.1ns": too small, the shortest is 1 ns (or 0)"#
    );
    assert_eq!(
        parse_duration("0.0000000001").unwrap_err().to_string(),
        r#"invalid duration "0.0000000001": too small, the shortest is 1 ns (or 0)"#
    );
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("0.0ns"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("1ns"), Ok(Duration::from_nanos(1)));
    assert_eq!(
        parse_duration("1.5ns"),
        Ok(Duration::from_nanos(2)),
        "to the nearest"
    );
    let e = LoggerBuilder::new()
        .set("flush", "0.4ns")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"logxide option `flush`: invalid duration "0.4ns": too small, the shortest is 1 ns (or 0)"#
    );
}

/// A global logger on `path` (written with `strategy`) that has logged "A", "B" and "C" and
/// cannot finish draining: its second sink waits for `gate` to be dropped. "A" is in the
/// file and its batch at the gate; "B" and "C" wait in the queue.
fn a_logger_stuck_at_a_gate(
    path: &std::path::Path,
    strategy: &'static str,
) -> (logger::LoggerGuard, std::sync::mpsc::Sender<()>) {
    use std::sync::mpsc;
    let (gate, waiting) = mpsc::channel::<()>();
    let waiting = Mutex::new(waiting);
    let (entered, at_gate) = mpsc::channel();
    let entered = Mutex::new(entered);
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(path)
        .set("writer_type", strategy)
        .unwrap()
        .sink(logxide::sink::FnSink::new(
            "gate",
            move |_: &logxide::sink::Batch<'_>| {
                let _ = entered.lock().unwrap_or_else(|e| e.into_inner()).send(());
                // Returns once the gate is dropped (there is never a message).
                let _ = waiting.lock().unwrap_or_else(|e| e.into_inner()).recv();
                Ok(())
            },
        ))
        .init()
        .unwrap();
    logxide::info!("A");
    at_gate.recv().unwrap();
    logxide::info!("B");
    logxide::info!("C");
    (guard, gate)
}

/// On another thread, an `init` onto `path` (mode `a`) that logs "new"; once it is seen
/// waiting for the logger stuck at `gate` (or at once, if it does not wait), the gate
/// opens. The file then holds exactly "A", "B", "C", "new", as whole JSON lines.
fn reinit_after_the_gate_opens(
    path: &std::path::Path,
    strategy: &'static str,
    gate: std::sync::mpsc::Sender<()>,
) {
    let (done, finished) = std::sync::mpsc::channel();
    let reinit = std::thread::spawn({
        let path = path.to_owned();
        move || {
            let new = LoggerBuilder::new()
                .use_env(false)
                .target(&path)
                .set("writer_type", strategy)
                .unwrap()
                .set("mode", "a")
                .unwrap()
                .init()
                .unwrap();
            logxide::info!("new");
            logger::flush(None).unwrap();
            let _ = done.send(());
            new
        }
    });
    let _ = finished.recv_timeout(Duration::from_secs(1));
    drop(gate);
    drop(reinit.join().unwrap());
    logger::shutdown(None);
    let bytes = fs::read(path).unwrap();
    assert!(!bytes.contains(&0), "{strategy}: NUL bytes");
    let msgs: Vec<String> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{strategy}: {l:?} is not JSON: {e}"));
            r["msg"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(msgs, ["A", "B", "C", "new"], "{strategy}");
}

/// A `shutdown` whose timeout expired leaves the writer draining in the background; an
/// `init` onto that logger's file waits for it to finish, as a re-init onto the installed
/// logger's file drains it first. Before, the new logger opened the file at once: with
/// `line` the old logger's last records landed after the new logger's, with `mmap` they
/// were written over them (and the file cut at the old mapping's length).
#[test]
fn an_init_onto_the_file_of_a_logger_still_draining_after_a_shutdown_timeout_waits_for_it() {
    let _s = serial();
    for strategy in ["line", "mmap"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let (old, gate) = a_logger_stuck_at_a_gate(&path, strategy);
        let report = logger::shutdown(Some(Duration::from_millis(50))).unwrap();
        assert!(report.timed_out, "{strategy}");
        reinit_after_the_gate_opens(&path, strategy, gate);
        drop(old);
    }
}

/// A re-init onto the installed logger's file while that logger's guard, dropped on another
/// thread, is still draining it: the `init` waits for that drain too (its own shutdown of
/// the logger found it already taken, and returned at once). Before, it opened the file
/// at once, as in the test above.
#[test]
fn a_reinit_onto_the_file_of_a_logger_whose_guard_is_draining_waits_for_it() {
    let _s = serial();
    for strategy in ["line", "mmap"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let (old, gate) = a_logger_stuck_at_a_gate(&path, strategy);
        let installed = logger::global().unwrap();
        let dropping = std::thread::spawn(move || drop(old));
        // The guard's shutdown has begun once the logger no longer writes asynchronously.
        while installed.is_async() {
            std::thread::yield_now();
        }
        reinit_after_the_gate_opens(&path, strategy, gate);
        dropping.join().unwrap();
    }
}
