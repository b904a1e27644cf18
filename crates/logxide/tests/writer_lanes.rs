//! What the per-thread lanes of the writer's queue must keep: the happens-before order of
//! records across threads, the global bounds with threads that come and go or fall idle,
//! `drop_oldest` evicting the oldest call over all lanes, and records larger than a lane's
//! first ring.
//!
//! Under Miri (`.ci/miri`) the counts and sizes are smaller, so that the interpreter runs
//! each test in minutes; each keeps what it checks.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use logxide::sink::MemorySink;
use logxide::writer::{DropReason, Mode, Policy, Queued, Writer};

/// A token passed around a ring of threads: each logs the hop number while it holds the
/// token, then hands it on. Every record happens before the next one, so the file must hold
/// the hops in order — although consecutive records come from different lanes, and the
/// writer reads the lanes while they are written.
#[test]
fn records_keep_their_happens_before_order_across_threads() {
    const THREADS: usize = 4;
    const HOPS: usize = if cfg!(miri) { 300 } else { 40_000 };
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .batch_size(16)
        .sink(mem.clone())
        .build()
        .unwrap();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<usize>()).unzip();
    thread::scope(|s| {
        for (i, rx) in receivers.into_iter().enumerate() {
            let next = senders[(i + 1) % THREADS].clone();
            let h = writer.handle();
            s.spawn(move || {
                while let Ok(hop) = rx.recv() {
                    if hop == HOPS {
                        let _ = next.send(HOPS);
                        return;
                    }
                    h.enqueue(format!("{hop}").as_bytes()).unwrap();
                    if next.send(hop + 1).is_err() {
                        return;
                    }
                }
            });
        }
        senders[0].send(0).unwrap();
    });
    drop(senders);
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(m.written, HOPS as u64);
    let hops: Vec<usize> = mem.lines().iter().map(|l| l.parse().unwrap()).collect();
    let first_wrong = hops.iter().enumerate().find(|(i, h)| *i != **h);
    assert!(first_wrong.is_none(), "out of order at {first_wrong:?}");
}

/// A writer that takes nothing until flushed (manual mode) and refuses what does not fit:
/// what the queue accepts is exactly what its bounds allow.
fn holding(capacity: usize) -> (Writer, MemorySink) {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(capacity)
        .mode(Mode::Manual)
        .policy(Policy::DropNewest)
        .sink(mem.clone())
        .build()
        .unwrap();
    (writer, mem)
}

/// 10 000 threads, one after the other, each queue one record and exit: each gives back the
/// credits it held unspent, so all of them fit a queue of 10 000 (the writer is in manual
/// mode and takes nothing meanwhile), and one more does not.
#[test]
fn threads_that_exit_give_their_credits_back() {
    const CAP: usize = if cfg!(miri) { 200 } else { 10_000 };
    let (writer, mem) = holding(CAP);
    for i in 0..CAP {
        let h = writer.handle();
        thread::spawn(move || h.enqueue(line(0, i).as_bytes()))
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("record {i} refused: {e}"));
    }
    let h = writer.handle();
    let extra = thread::spawn(move || h.enqueue(b"one too many"))
        .join()
        .unwrap();
    assert_eq!(extra.unwrap_err().reason, DropReason::QueueFull);
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!((m.written, m.dropped_by.queue_full), (CAP as u64, 1));
    assert_eq!(mem.contents(), expected_bytes(0, 0..CAP));
}

/// 300 threads each queue one record and stay alive, idle, holding what is left of their
/// grant of credits. The main thread can still queue at least half the capacity (idle lanes
/// never hold more than half of it), and nothing exceeds the capacity.
#[test]
fn idle_threads_cannot_starve_the_others() {
    const CAP: usize = if cfg!(miri) { 400 } else { 10_000 };
    const IDLE: usize = if cfg!(miri) { 12 } else { 300 };
    let (writer, mem) = holding(CAP);
    let logged = Arc::new(Barrier::new(IDLE + 1));
    let release = Arc::new(Barrier::new(IDLE + 1));
    let idle: Vec<_> = (0..IDLE)
        .map(|p| {
            let (h, logged, release) = (writer.handle(), logged.clone(), release.clone());
            thread::spawn(move || {
                h.enqueue(line(p + 1, 0).as_bytes()).unwrap();
                logged.wait();
                release.wait();
            })
        })
        .collect();
    logged.wait();
    let h = writer.handle();
    let mut accepted = 0;
    while h.enqueue(line(0, accepted).as_bytes()).is_ok() {
        accepted += 1;
    }
    assert!(
        accepted >= CAP / 2 - IDLE,
        "the main thread could queue only {accepted} records"
    );
    assert!(
        accepted + IDLE <= CAP,
        "{accepted} + {IDLE} exceed the capacity"
    );
    release.wait();
    for t in idle {
        t.join().unwrap();
    }
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(m.written, (accepted + IDLE) as u64);
    assert_eq!(m.dropped_by.queue_full, 1);
    let per = per_producer(&mem.contents(), IDLE + 1);
    assert_eq!(per[0], (0..accepted).collect::<Vec<_>>());
    assert!(per[1..].iter().all(|p| p == &[0]));
}

/// With the writer stuck in its sink, three threads fill a 10-record queue one after the
/// other; under `drop_oldest` the records evicted are the oldest calls over all lanes, not
/// the newest thread's own, and what is written is in call order.
#[test]
fn drop_oldest_evicts_the_oldest_call_of_any_lane() {
    let (sink, mut gate, mem) = gated();
    let writer = Writer::builder()
        .capacity(10)
        .batch_size(1)
        .policy(Policy::DropOldest)
        .sink(sink)
        .build()
        .unwrap();
    writer.handle().enqueue(line(9, 0).as_bytes()).unwrap();
    assert_eq!(gate.wait_entered(), 1);
    let burst = |p: usize, n: usize| {
        let h = writer.handle();
        thread::spawn(move || {
            (0..n)
                .map(|s| h.enqueue(line(p, s).as_bytes()).unwrap())
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap()
    };
    assert!(burst(0, 5).iter().all(|q| *q == Queued::Queued));
    assert!(burst(1, 5).iter().all(|q| *q == Queued::Queued));
    assert!(burst(2, 3).iter().all(|q| *q == Queued::EvictedOldest));
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!((m.written, m.dropped_by.evicted), (11, 3));
    let mut want = expected_bytes(9, 0..1);
    want.extend(expected_bytes(0, 3..5));
    want.extend(expected_bytes(1, 0..5));
    want.extend(expected_bytes(2, 0..3));
    assert_eq!(mem.contents(), want);
}

/// Records far larger than a lane's first ring (64 KiB; 4 KiB under Miri), between small
/// ones, from several threads: each arrives whole and in its thread's order.
#[test]
fn records_larger_than_a_lane_arrive_whole_and_in_order() {
    const LARGE: usize = if cfg!(miri) { 40 << 10 } else { 3 << 20 };
    let mem = MemorySink::new();
    let writer = Writer::builder().sink(mem.clone()).build().unwrap();
    thread::scope(|s| {
        for p in 0..3 {
            let h = writer.handle();
            s.spawn(move || {
                for i in 0..20 {
                    let size = if i % 5 == 2 { LARGE } else { 10 + i };
                    let text = format!("{p}:{i}:{}", "y".repeat(size));
                    h.enqueue(text.as_bytes()).unwrap();
                }
            });
        }
    });
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(m.written, 60);
    let mut next = [0usize; 3];
    for l in mem.lines() {
        let mut parts = l.splitn(3, ':');
        let p: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        let body = parts.next().unwrap();
        assert_eq!(i, next[p], "thread {p}");
        let size = if i % 5 == 2 { LARGE } else { 10 + i };
        assert!(body.len() == size && body.bytes().all(|b| b == b'y'));
        next[p] += 1;
    }
    assert_eq!(next, [20; 3]);
}
