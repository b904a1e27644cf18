//! Stress: many producers on a small queue (block and drop_oldest), producers racing with
//! shutdown, and concurrent flushes while producers run.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use common::*;
use logxide::sink::MemorySink;
use logxide::writer::{DropReason, Mode, Policy, Queued, Writer};

const PRODUCERS: usize = 8;
const PER: usize = 50_000;

fn flood(policy: Policy) -> (MemorySink, logxide::writer::MetricsSnapshot, u64) {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(64)
        .batch_size(32)
        .policy(policy)
        .mode(Mode::Trigger)
        .sink(mem.clone())
        .build()
        .unwrap();
    let evictions: u64 = thread::scope(|s| {
        let hs: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let h = writer.handle();
                s.spawn(move || {
                    let mut ev = 0;
                    for i in 0..PER {
                        match h.enqueue(line(p, i).as_bytes()) {
                            Ok(Queued::Queued) => {}
                            Ok(Queued::EvictedOldest) => ev += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    ev
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let m = writer.shutdown(None).metrics;
    (mem, m, evictions)
}

#[test]
fn stress_block_exact_order_and_count() {
    let (mem, m, ev) = flood(Policy::Block);
    assert_all_in_order(&mem.contents(), PRODUCERS, PER);
    assert_eq!(ev, 0);
    assert_eq!((m.written, m.dropped), ((PRODUCERS * PER) as u64, 0));
    assert_settled(&m);
}

#[test]
fn stress_drop_oldest_accounting() {
    let (mem, m, ev) = flood(Policy::DropOldest);
    let n = assert_strictly_increasing(&mem.contents(), PRODUCERS, PER);
    assert_eq!(n as u64, m.written);
    assert_eq!(m.written + m.dropped, (PRODUCERS * PER) as u64);
    assert_eq!(m.dropped, m.dropped_by.evicted);
    assert!(ev <= m.dropped_by.evicted);
    assert_settled(&m);
}

#[test]
fn producers_racing_with_shutdown_lose_nothing_silently() {
    for round in 0..50 {
        let mem = MemorySink::new();
        let writer = Writer::builder()
            .capacity(16)
            .batch_size(4)
            .policy(if round % 2 == 0 {
                Policy::Block
            } else {
                Policy::DropNewest
            })
            .mode([Mode::Trigger, Mode::Loop, Mode::Manual][round % 3])
            .sink(mem.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        let go = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let h = writer.handle();
                let go = Arc::clone(&go);
                thread::spawn(move || {
                    while !go.load(SeqCst) {
                        std::hint::spin_loop();
                    }
                    let mut refused_shutdown = 0u64;
                    for i in 0..300 {
                        match h.enqueue(line(p, i).as_bytes()) {
                            Ok(_) => {}
                            Err(e) if e.reason == DropReason::Shutdown => refused_shutdown += 1,
                            Err(e) => assert_eq!(e.reason, DropReason::QueueFull),
                        }
                    }
                    refused_shutdown
                })
            })
            .collect();
        let stopper = thread::spawn(move || {
            go.store(true, SeqCst);
            for _ in 0..round * 20 {
                std::hint::spin_loop();
            }
            writer.shutdown(None)
        });
        let report = stopper.join().unwrap();
        assert!(!report.timed_out);
        let refused: u64 = producers.into_iter().map(|t| t.join().unwrap()).sum();
        let m = h.metrics();
        let n = assert_strictly_increasing(&mem.contents(), 3, 300);
        assert_eq!(m.enqueued, 900, "round {round}");
        assert_eq!(n as u64, m.written, "round {round}: {m:?}");
        assert_eq!(n as u64 + m.dropped, 900, "round {round}: {m:?}");
        assert!(refused <= m.dropped_by.shutdown, "round {round}");
        assert_eq!(m.failed, 0);
        assert_settled(&m);
        // Nothing was written after shutdown returned.
        assert_eq!(mem.contents().len() as u64, m.bytes);
    }
}

#[test]
fn concurrent_flushes_while_producers_run() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(128)
        .batch_size(64)
        .sink(mem.clone())
        .build()
        .unwrap();
    const THREADS: usize = 4;
    const ROUNDS: usize = 20;
    const BURST: usize = 50;
    thread::scope(|s| {
        for p in 0..THREADS {
            let h = writer.handle();
            let mem = mem.clone();
            s.spawn(move || {
                for r in 0..ROUNDS {
                    for i in r * BURST..(r + 1) * BURST {
                        h.enqueue(line(p, i).as_bytes()).unwrap();
                    }
                    h.flush(None).unwrap();
                    let mine = per_producer(&mem.contents(), THREADS).swap_remove(p);
                    assert_eq!(mine.len(), (r + 1) * BURST, "producer {p} round {r}");
                    assert!(mine.iter().enumerate().all(|(i, &s)| i == s));
                }
            });
        }
        // A thread that only flushes.
        let h = writer.handle();
        s.spawn(move || {
            for _ in 0..50 {
                h.flush(None).unwrap();
            }
        });
    });
    let m = writer.shutdown(None).metrics;
    assert_all_in_order(&mem.contents(), THREADS, ROUNDS * BURST);
    assert_settled(&m);
}
