//! Modes: `flush(None)` and shutdown drain in every mode (manual included), and the timers:
//! flush interval and deadline in trigger mode, manual mode waiting for `trigger()`, manual +
//! deadline, and loop mode's tick.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use logxide::sink::MemorySink;
use logxide::writer::{DropReason, Dropped, Mode, Policy, Queued, Writer, WriterBuilder};

const MODES: [Mode; 3] = [Mode::Trigger, Mode::Loop, Mode::Manual];

/// Settings under which nothing would be written soon by itself: flush interval and tick
/// are long, batch size large.
fn lazy(mode: Mode, mem: &MemorySink) -> WriterBuilder {
    Writer::builder()
        .capacity(4096)
        .batch_size(1000)
        .flush_interval(Duration::from_secs(30))
        .tick(Duration::from_secs(30))
        .mode(mode)
        .sink(mem.clone())
}

#[test]
fn flush_none_writes_everything_enqueued_before_in_every_mode() {
    for mode in MODES {
        let mem = MemorySink::new();
        let writer = lazy(mode, &mem).build().unwrap();
        let h = writer.handle();
        let mut want = Vec::new();
        for round in 0..5 {
            for i in round * 37..(round + 1) * 37 {
                h.enqueue(line(0, i).as_bytes()).unwrap();
            }
            want.extend(expected_bytes(0, round * 37..(round + 1) * 37));
            writer.flush(None).unwrap();
            assert_eq!(mem.contents(), want, "{mode}: round {round}");
            let m = writer.metrics();
            assert_eq!((m.pending, m.written), (0, want_lines(&want)), "{mode}");
        }
        // A flush with nothing pending returns at once and writes nothing.
        writer.flush(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(mem.contents(), want);
        let m = writer.shutdown(None).metrics;
        assert_settled(&m);
        assert_eq!(m.written, 185);
    }
}

fn want_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[test]
fn flush_from_a_handle_in_manual_mode() {
    let mem = MemorySink::new();
    let writer = lazy(Mode::Manual, &mem).build().unwrap();
    let h = writer.handle();
    let t = thread::spawn(move || {
        for i in 0..10 {
            h.enqueue(line(1, i).as_bytes()).unwrap();
        }
        h.flush(None).unwrap();
    });
    t.join().unwrap();
    assert_eq!(mem.contents(), expected_bytes(1, 0..10));
    drop(writer);
}

#[test]
fn shutdown_drains_in_every_mode_without_trigger() {
    for mode in MODES {
        let mem = MemorySink::new();
        let writer = lazy(mode, &mem).build().unwrap();
        let h = writer.handle();
        for i in 0..500 {
            h.enqueue(line(0, i).as_bytes()).unwrap();
        }
        let report = writer.shutdown(Some(Duration::from_secs(10)));
        assert!(!report.timed_out, "{mode}");
        assert_eq!(mem.contents(), expected_bytes(0, 0..500), "{mode}");
        assert_settled(&report.metrics);
        assert_eq!(report.metrics.written, 500);
    }
}

#[test]
fn dropping_the_writer_drains_in_every_mode() {
    for mode in MODES {
        let mem = MemorySink::new();
        let writer = lazy(mode, &mem).build().unwrap();
        let h = writer.handle();
        for i in 0..300 {
            h.enqueue(line(2, i).as_bytes()).unwrap();
        }
        drop(writer);
        assert_eq!(mem.contents(), expected_bytes(2, 0..300), "{mode}");
        assert_settled(&h.metrics());
    }
}

#[test]
fn manual_mode_trigger_just_before_shutdown_loses_nothing() {
    let mem = MemorySink::new();
    let writer = lazy(Mode::Manual, &mem).build().unwrap();
    let h = writer.handle();
    for i in 0..100 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.trigger();
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.contents(), expected_bytes(0, 0..100));
    assert_settled(&m);
}

/// Polls the sink until it holds `want`; returns how long that took after `start`.
fn appears(mem: &MemorySink, want: &[u8], start: Instant, limit: Duration) -> Duration {
    assert!(
        wait_for(limit, || mem.contents() == want),
        "record not written within {limit:?}: sink holds {:?}",
        String::from_utf8_lossy(&mem.contents())
    );
    start.elapsed()
}

#[test]
fn trigger_mode_flush_interval_writes_a_lone_record() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(2000)
        .batch_size(1000)
        .flush_interval(Duration::from_millis(50))
        .mode(Mode::Trigger)
        .sink(mem.clone())
        .build()
        .unwrap();
    // Let the writer thread go idle (parked) first, as in a quiet process.
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    writer.handle().enqueue(b"lone").unwrap();
    let took = appears(&mem, b"lone\n", start, Duration::from_secs(2));
    assert!(
        took >= Duration::from_millis(45),
        "written after {took:?}, before the interval"
    );
    assert_eq!(writer.metrics().written, 1);
}

#[test]
fn trigger_mode_flush_interval_after_an_idle_period() {
    // The writer has been idle (parked) for a while before the record comes.
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(2000)
        .batch_size(1000)
        .flush_interval(Duration::from_millis(50))
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(b"first").unwrap();
    writer.flush(None).unwrap();
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    h.enqueue(b"second").unwrap();
    appears(&mem, b"first\nsecond\n", start, Duration::from_secs(2));
}

#[test]
fn trigger_mode_deadline_writes_a_lone_record() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(2000)
        .batch_size(1000)
        .flush_interval(Duration::from_secs(10))
        .deadline(Duration::from_millis(50))
        .mode(Mode::Trigger)
        .sink(mem.clone())
        .build()
        .unwrap();
    // Let the writer thread go idle (parked) first, as in a quiet process.
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    writer.handle().enqueue(b"lone").unwrap();
    let took = appears(&mem, b"lone\n", start, Duration::from_secs(2));
    assert!(took >= Duration::from_millis(45), "written after {took:?}");
}

#[test]
fn trigger_mode_full_batch_is_written_without_waiting_for_the_interval() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(100)
        .batch_size(10)
        .flush_interval(Duration::from_secs(30))
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let start = Instant::now();
    for i in 0..10 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    appears(
        &mem,
        &expected_bytes(0, 0..10),
        start,
        Duration::from_secs(2),
    );
}

#[test]
fn manual_mode_waits_for_trigger() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .flush_interval(Duration::from_millis(10))
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(b"held").unwrap();
    thread::sleep(Duration::from_millis(200));
    assert!(
        mem.contents().is_empty(),
        "manual mode wrote without trigger"
    );
    assert_eq!(writer.metrics().pending, 1);
    let start = Instant::now();
    h.trigger();
    appears(&mem, b"held\n", start, Duration::from_secs(2));
    let m = writer.metrics();
    assert_eq!((m.written, m.pending), (1, 0));
}

#[test]
fn manual_mode_deadline_writes_by_itself() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .deadline(Duration::from_millis(50))
        .sink(mem.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    writer.handle().enqueue(b"due").unwrap();
    let took = appears(&mem, b"due\n", start, Duration::from_secs(2));
    assert!(took >= Duration::from_millis(45), "written after {took:?}");
    // And again after the writer went idle.
    let start = Instant::now();
    writer.handle().enqueue(b"due again").unwrap();
    appears(&mem, b"due\ndue again\n", start, Duration::from_secs(2));
}

#[test]
fn loop_mode_tick_writes_by_itself() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Loop)
        .tick(Duration::from_millis(20))
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let start = Instant::now();
    h.enqueue(b"tick 1").unwrap();
    appears(&mem, b"tick 1\n", start, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(60));
    let start = Instant::now();
    h.enqueue(b"tick 2").unwrap();
    appears(&mem, b"tick 1\ntick 2\n", start, Duration::from_secs(2));
    assert_eq!(writer.metrics().written, 2);
}

#[test]
fn loop_mode_deadline_shorter_than_tick() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Loop)
        .tick(Duration::from_secs(30))
        .deadline(Duration::from_millis(50))
        .sink(mem.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    writer.handle().enqueue(b"soon").unwrap();
    appears(&mem, b"soon\n", start, Duration::from_secs(2));
}

#[test]
fn trigger_mode_polls_under_a_steady_stream_so_producers_rarely_wake_it() {
    // A writer that parked whenever it had emptied the queue would be woken by a producer
    // every batch or two (hundreds of wake-ups for 50 000 records written faster than they
    // come); while records flow it polls instead, and only the first record after a quiet
    // millisecond rings it.
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(10_000)
        .batch_size(100)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..50_000 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.enqueued, m.written), (50_000, 50_000));
    // Without polling: about one per batch of 100, 500. With it, 2–50 here, up to ~75 when
    // the machine's other core is busy (a producer descheduled for over a millisecond
    // lets the writer park): the bound leaves room for that and still tells them apart.
    assert!(
        m.wakeups <= 150,
        "{} wake-ups for 50 000 records",
        m.wakeups
    );
    // Idle again: the writer sleeps until the next record (no poll forever).
    let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    let h = writer.handle();
    thread::sleep(Duration::from_millis(20));
    h.enqueue(b"one").unwrap();
    writer.flush(None).unwrap();
    thread::sleep(Duration::from_millis(20));
    h.enqueue(b"two").unwrap();
    writer.flush(None).unwrap();
    assert_eq!(
        writer.metrics().wakeups,
        2,
        "each record after a quiet spell rings"
    );
}

/// A queue full by its byte bound with fewer records than `batch_size`: the batch can never
/// fill, so the writer writes the queue at once (a refused record asks for it) rather than
/// after the flush interval, refusing everything meanwhile.
#[test]
fn trigger_mode_writes_a_queue_full_by_its_byte_bound_without_waiting_for_the_interval() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(1000)
        .batch_size(100)
        .max_bytes(1000)
        .flush_interval(Duration::from_secs(3600))
        .policy(Policy::DropNewest)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    // 100 bytes each with its `\n`: ten fill the byte bound.
    let rec = |i: usize| format!("{i:0>99}");
    for i in 0..10 {
        assert_eq!(h.enqueue(rec(i).as_bytes()), Ok(Queued::Queued), "{i}");
    }
    assert_eq!(
        h.enqueue(rec(10).as_bytes()),
        Err(Dropped {
            reason: DropReason::QueueFull
        })
    );
    let want: String = (0..10).map(|i| rec(i) + "\n").collect();
    appears(
        &mem,
        want.as_bytes(),
        Instant::now(),
        Duration::from_secs(20),
    );
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.dropped_by.queue_full), (10, 1));
    assert_settled(&m);
}
