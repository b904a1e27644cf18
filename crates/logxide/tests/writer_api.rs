//! The writer's API edges: configuration validation, invalid records, use after shutdown.

mod common;

use std::time::Duration;

use common::*;
use logxide::sink::MemorySink;
use logxide::writer::{
    BuildError, DropReason, Dropped, Mode, Policy, Queued, Writer, WriterBuilder, WriterState,
};

fn base() -> WriterBuilder {
    Writer::builder().sink(MemorySink::new())
}

fn invalid(b: WriterBuilder, option: &str) {
    let err = b.build().unwrap_err();
    match &err {
        BuildError::Invalid { option: o, .. } => assert_eq!(*o, option, "{err}"),
        other => panic!("expected Invalid for {option}, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("`{option}`")),
        "message does not name the option: {msg}"
    );
}

#[test]
fn invalid_configs_name_the_option() {
    let ms = Duration::from_millis;
    invalid(base().capacity(0), "capacity");
    invalid(base().batch_size(0), "batch_size");
    invalid(base().capacity(10).batch_size(11), "batch_size");
    invalid(base().flush_interval(Duration::ZERO), "flush_interval");
    invalid(base().deadline(Duration::ZERO), "deadline");
    invalid(base().mode(Mode::Loop).tick(Duration::ZERO), "tick");
    invalid(base().max_bytes(0), "max_bytes");
    invalid(base().block_timeout(Duration::ZERO), "block_timeout");
    for p in [Policy::DropOldest, Policy::DropNewest, Policy::Warn] {
        invalid(base().policy(p).block_timeout(ms(10)), "block_timeout");
    }
    invalid(
        base().restart_backoff(Duration::ZERO, ms(1)),
        "restart_backoff",
    );
    invalid(base().restart_backoff(ms(10), ms(1)), "restart_backoff");
    // A zero tick is fine outside loop mode; the edge values are accepted.
    base().tick(Duration::ZERO).build().unwrap();
    base().capacity(10).batch_size(10).build().unwrap();
    base().capacity(1).batch_size(1).build().unwrap();
}

/// A `warn` hook with a policy that never calls it is refused, as a `block_timeout` with a
/// policy that never waits is: the message names both options.
#[test]
fn a_warn_hook_with_another_policy_is_refused_naming_both_options() {
    for p in [Policy::Block, Policy::DropOldest, Policy::DropNewest] {
        let err = base()
            .policy(p)
            .on_drop_warning(|_| {})
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid writer option `on_drop_warning` = a hook (with policy `{p}`): applies \
                 only to the warn policy"
            )
        );
        assert!(matches!(
            err,
            BuildError::Invalid {
                option: "on_drop_warning",
                ..
            }
        ));
        // `validate` says the same before anything is started.
        let b = base().policy(p).on_drop_warning(|_| {});
        assert_eq!(b.validate().unwrap_err().to_string(), err.to_string());
    }
    base()
        .policy(Policy::Warn)
        .on_drop_warning(|_| {})
        .build()
        .unwrap();
}

#[test]
fn no_sink_is_refused() {
    let err = Writer::builder().build().unwrap_err();
    assert!(matches!(err, BuildError::NoSink), "{err:?}");
    assert!(err.to_string().contains("sink"), "{err}");
}

#[test]
fn invalid_records_are_dropped_and_counted() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .max_bytes(64)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let inv = Err(Dropped {
        reason: DropReason::Invalid,
    });
    assert_eq!(h.enqueue(b"two\nlines"), inv);
    assert_eq!(h.enqueue(b"two\nlines\n"), inv);
    assert_eq!(h.enqueue(b"blank\n\n"), inv);
    assert_eq!(
        h.enqueue(&[b'a'; 64]),
        inv,
        "64 bytes + newline > max_bytes"
    );
    assert_eq!(h.enqueue(&[b'b'; 100]), inv);
    // Exactly at the bound (63 bytes + the newline) is fine, with or without the `\n`.
    assert_eq!(h.enqueue(&[b'c'; 63]), Ok(Queued::Queued));
    let mut with_nl = vec![b'd'; 63];
    with_nl.push(b'\n');
    assert_eq!(h.enqueue(&with_nl), Ok(Queued::Queued));
    assert_eq!(h.enqueue(b"no newline"), Ok(Queued::Queued));
    assert_eq!(h.enqueue(b"one newline\n"), Ok(Queued::Queued));
    let m = writer.shutdown(None).metrics;
    let mut want = vec![b'c'; 63];
    want.push(b'\n');
    want.extend(with_nl);
    want.extend_from_slice(b"no newline\none newline\n");
    assert_eq!(mem.contents(), want);
    assert_eq!(m.dropped_by.invalid, 5);
    assert_eq!((m.enqueued, m.written, m.dropped), (9, 4, 5));
    assert_settled(&m);
}

#[test]
fn after_shutdown() {
    let mem = MemorySink::new();
    let writer = Writer::builder().sink(mem.clone()).build().unwrap();
    let h = writer.handle();
    h.enqueue(b"before").unwrap();
    let report = writer.shutdown(None);
    assert!(!report.timed_out);
    for _ in 0..3 {
        assert_eq!(
            h.enqueue(b"after"),
            Err(Dropped {
                reason: DropReason::Shutdown
            })
        );
    }
    assert_eq!(h.flush(None), Ok(()));
    assert_eq!(h.flush(Some(Duration::from_millis(10))), Ok(()));
    h.trigger();
    let m = h.metrics();
    assert_eq!(m.state, WriterState::Stopped);
    assert_eq!((m.enqueued, m.written, m.dropped_by.shutdown), (4, 1, 3));
    assert_settled(&m);
    assert_eq!(mem.contents(), b"before\n");
}

#[test]
fn metrics_count_batches_and_bytes() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..10 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(None).unwrap();
    let m = writer.metrics();
    assert_eq!(m.batches, 1);
    assert_eq!(m.bytes, expected_bytes(0, 0..10).len() as u64);
    assert_eq!(m.sinks[0].name, "memory");
    assert_eq!(m.state, WriterState::Running);
    drop(writer);
}

#[test]
fn write_sync_orders_after_queued_records_and_counts() {
    use logxide::sink::MemorySink;
    use logxide::writer::{DropReason, Mode, Queued, Writer};
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..5 {
        h.enqueue(format!("q{i}").as_bytes()).unwrap();
    }
    assert_eq!(h.write_sync(b"sync\n"), Ok(Queued::WrittenSync));
    // Written before write_sync returned, after everything queued before it.
    assert_eq!(mem.lines(), ["q0", "q1", "q2", "q3", "q4", "sync"]);
    assert_eq!(
        h.write_sync(b"two\nlines").unwrap_err().reason,
        DropReason::Invalid
    );
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.enqueued, m.written, m.dropped, m.pending), (7, 6, 1, 0));
    assert_eq!(
        h.write_sync(b"late").unwrap_err().reason,
        DropReason::Shutdown
    );
    assert_eq!(h.metrics().dropped_by.shutdown, 1);
}

#[test]
fn default_batch_size_fits_a_small_queue_but_an_explicit_one_must() {
    use logxide::sink::MemorySink;
    use logxide::writer::{BuildError, Writer};
    let w = Writer::builder()
        .capacity(8)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    assert_eq!(w.handle().settings().batch_size(), 8);
    let err = Writer::builder()
        .capacity(8)
        .batch_size(9)
        .sink(MemorySink::new())
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Invalid {
            option: "batch_size",
            ..
        }
    ));
}

/// The panics (message) of the threads whose name starts with `huge-`, since the hook was
/// installed (other threads' panics go to the previous hook).
fn huge_thread_panics() -> &'static std::sync::Mutex<Vec<String>> {
    static PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        quiet_injected_panics();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            if name.starts_with("huge-") && !info.to_string().contains("injected") {
                PANICS.lock().unwrap().push(format!("{name}: {info}"));
            }
            prev(info);
        }));
    });
    &PANICS
}

#[test]
fn durations_past_the_clocks_range_mean_never_instead_of_panicking() {
    within(Duration::from_secs(60), || {
        let panics = huge_thread_panics();
        let max = Duration::MAX;
        let settle = || std::thread::sleep(Duration::from_millis(100));
        // A flush interval that never expires: a lone record waits for a flush (the writer
        // panicked computing when to wake, and with no restart left fell back).
        let mem = MemorySink::new();
        let w = Writer::builder()
            .flush_interval(max)
            .max_restarts(0)
            .thread_name("huge-interval")
            .sink(mem.clone())
            .build()
            .unwrap();
        w.handle().enqueue(b"interval").unwrap();
        settle();
        let m = w.metrics();
        assert_eq!(
            (m.state, m.restarts, m.errors, m.written),
            (WriterState::Running, 0, 0, 0)
        );
        // A timeout that never expires, on flush and shutdown (they panicked in the caller).
        assert_eq!(w.flush(Some(max)), Ok(()));
        assert_eq!(mem.lines(), ["interval"]);
        let r = w.shutdown(Some(max));
        assert!(!r.timed_out);
        assert_eq!(
            (r.metrics.enqueued, r.metrics.written, r.metrics.errors),
            (1, 1, 0)
        );

        // A deadline that never expires, in manual mode.
        let mem = MemorySink::new();
        let w = Writer::builder()
            .mode(Mode::Manual)
            .deadline(max)
            .max_restarts(0)
            .thread_name("huge-deadline")
            .sink(mem.clone())
            .build()
            .unwrap();
        w.handle().enqueue(b"deadline").unwrap();
        settle();
        let m = w.metrics();
        assert_eq!(
            (m.state, m.restarts, m.errors, m.written),
            (WriterState::Running, 0, 0, 0)
        );
        let m = w.shutdown(None).metrics;
        assert_eq!((m.enqueued, m.written, m.errors), (1, 1, 0));
        assert_eq!(mem.lines(), ["deadline"]);

        // A tick that never comes, in loop mode (and the tick of the other modes, unused).
        for mode in [Mode::Loop, Mode::Trigger] {
            let mem = MemorySink::new();
            let w = Writer::builder()
                .mode(mode)
                .tick(max)
                .max_restarts(0)
                .thread_name("huge-tick")
                .sink(mem.clone())
                .build()
                .unwrap();
            w.handle().enqueue(b"tick").unwrap();
            settle();
            let m = w.metrics();
            assert_eq!(
                (m.state, m.restarts, m.errors),
                (WriterState::Running, 0, 0),
                "{mode}"
            );
            assert_eq!(w.flush(None), Ok(()));
            assert_eq!(mem.lines(), ["tick"]);
            assert_eq!(w.shutdown(None).metrics.written, 1);
        }

        // A block timeout that never expires: the producer waits for space (it panicked).
        let mem = MemorySink::new();
        let w = Writer::builder()
            .mode(Mode::Manual)
            .capacity(1)
            .block_timeout(max)
            .sink(mem.clone())
            .build()
            .unwrap();
        let h = w.handle();
        assert_eq!(h.enqueue(b"first"), Ok(Queued::Queued));
        assert_eq!(h.enqueue(b"second"), Ok(Queued::Queued));
        let m = w.shutdown(None).metrics;
        assert_eq!((m.enqueued, m.written, m.dropped), (2, 2, 0));
        assert_eq!(mem.lines(), ["first", "second"]);

        // A restart backoff that never ends: the writer waits for the shutdown to restart
        // (its thread panicked computing when to restart, and died).
        let sink = PanickySink::first(1);
        let w = Writer::builder()
            .restart_backoff(max, max)
            .thread_name("huge-backoff")
            .sink(sink.clone())
            .build()
            .unwrap();
        w.handle().enqueue(b"backoff").unwrap();
        assert!(wait_for(Duration::from_secs(10), || w.metrics().restarts == 1));
        settle();
        assert!(w.flush(Some(Duration::from_millis(50))).is_err());
        let r = w.shutdown(Some(Duration::from_secs(10)));
        assert!(!r.timed_out);
        let m = r.metrics;
        assert_eq!((m.enqueued, m.written, m.restarts, m.errors), (1, 1, 1, 1));
        assert_eq!(sink.mem.lines(), ["backoff"]);

        assert_eq!(*panics.lock().unwrap(), Vec::<String>::new());
    });
}

/// Writes fine; its flush (an `fsync`, say) and its close fail.
struct UnsyncableSink;

impl logxide::sink::Sink for UnsyncableSink {
    fn name(&self) -> &str {
        "unsyncable"
    }
    fn write_batch(
        &mut self,
        _batch: &logxide::sink::Batch<'_>,
    ) -> Result<(), logxide::sink::SinkError> {
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("fsync failed"))
    }
    fn close(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("close failed"))
    }
}

/// A sink's failed flush or close is that sink's error too, not only the writer's: its
/// per-sink `errors` and `last_error` say so (a sink whose `fsync` fails would otherwise
/// look healthy in its own metrics).
#[test]
fn a_sinks_failed_flush_and_close_are_in_its_own_metrics() {
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(UnsyncableSink)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    writer.handle().enqueue(b"a").unwrap();
    writer.flush(None).unwrap();
    let m = writer.metrics();
    assert_eq!((m.written, m.failed, m.errors), (1, 0, 1));
    assert_eq!((m.sinks[0].written, m.sinks[0].errors), (1, 1));
    assert_eq!(
        m.sinks[0].last_error.as_deref(),
        Some("flush: fsync failed")
    );
    assert_eq!(
        (m.sinks[1].errors, m.sinks[1].last_error.as_deref()),
        (0, None)
    );
    assert_eq!(
        writer.handle().last_error().as_deref(),
        Some("unsyncable: flush: fsync failed")
    );
    let m = writer.shutdown(None).metrics;
    assert_eq!(m.sinks[0].errors, 2);
    assert_eq!(
        m.sinks[0].last_error.as_deref(),
        Some("close: close failed")
    );
    assert_eq!(
        (m.sinks[1].errors, m.sinks[1].last_error.as_deref()),
        (0, None)
    );
    assert_settled(&m);
}

/// A record's length is 32 bits in its lane's header: with `max_bytes` above 4 GiB, a larger
/// record would have its length cut there (read back as a record of a few bytes, the rest as
/// garbage records). It is refused as invalid, as one above `max_bytes` is. (Its bytes are
/// zero pages of an anonymous mapping, which take no memory: the length is checked before
/// the bytes are searched for line breaks.)
#[cfg(target_pointer_width = "64")]
#[test]
fn a_record_too_long_for_its_header_is_refused_whatever_max_bytes() {
    // With the `\n` the writer adds: one byte more than a header can say.
    let len = u32::MAX as usize;
    let huge = memmap2::MmapOptions::new()
        .len(len)
        .no_reserve_swap()
        .map_anon()
        .expect("an anonymous mapping");
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_bytes(8 << 30)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    let h = writer.handle();
    let result = h.enqueue(&huge);
    // (Not drained if it was accepted: its reading would be garbage.)
    let writer = std::mem::ManuallyDrop::new(writer);
    assert_eq!(
        result,
        Err(Dropped {
            reason: DropReason::Invalid
        })
    );
    drop(huge);
    h.enqueue(b"small").unwrap();
    let m = std::mem::ManuallyDrop::into_inner(writer)
        .shutdown(None)
        .metrics;
    assert_eq!((m.written, m.dropped_by.invalid), (1, 1));
    assert_settled(&m);
}
