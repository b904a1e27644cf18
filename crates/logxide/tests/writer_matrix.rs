//! Every policy × mode × I/O strategy (4 × 3 × 3 = 36 tests): 4 producers × 2000 records
//! through a bounded queue into a `FileSink`, then shutdown; the file and the metrics are
//! checked exactly.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::*;
use logxide::sink::{FileOptions, IoStrategy};
use logxide::writer::{DropReason, Mode, Policy, Queued, Writer, WriterState};

const PRODUCERS: usize = 4;
const PER: usize = 2000;

fn run(policy: Policy, mode: Mode, strategy: IoStrategy) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.log");
    let sink = FileOptions::new()
        .strategy(strategy)
        .mmap_chunk(16 << 10)
        .open(&path)
        .unwrap();
    let mut builder = Writer::builder()
        .capacity(64)
        .batch_size(32)
        .policy(policy)
        .mode(mode)
        .tick(Duration::from_millis(5))
        .sink(sink);
    if policy == Policy::Warn {
        builder = builder.on_drop_warning(|_| {});
    }
    let writer = builder.build().unwrap();
    let outcomes: Vec<(Vec<usize>, usize, usize)> = thread::scope(|s| {
        let handles: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let h = writer.handle();
                s.spawn(move || {
                    let mut accepted = Vec::new();
                    let (mut refused, mut evicting) = (0, 0);
                    for i in 0..PER {
                        match h.enqueue(line(p, i).as_bytes()) {
                            Ok(Queued::Queued) => accepted.push(i),
                            Ok(Queued::EvictedOldest) => {
                                accepted.push(i);
                                evicting += 1;
                            }
                            Ok(Queued::WrittenSync) => panic!("fallback without a panic"),
                            Err(d) => {
                                assert_eq!(d.reason, DropReason::QueueFull, "{policy}");
                                refused += 1;
                            }
                        }
                    }
                    (accepted, refused, evicting)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let report = writer.shutdown(None);
    assert!(!report.timed_out);
    let m = report.metrics;
    assert_settled(&m);
    assert_eq!(m.enqueued, (PRODUCERS * PER) as u64);
    assert_eq!(m.failed, 0);
    assert_eq!(m.errors, 0);
    assert_eq!(m.state, WriterState::Stopped);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, m.bytes, "bytes counter vs file size");
    let refused: usize = outcomes.iter().map(|o| o.1).sum();
    let evicting: usize = outcomes.iter().map(|o| o.2).sum();
    match policy {
        Policy::Block => {
            assert_all_in_order(&bytes, PRODUCERS, PER);
            // Byte for byte, once sorted per producer.
            let mut sorted: Vec<&str> = split_lines(&bytes);
            sorted.sort_by_key(|l| parse(l));
            let mut want = Vec::new();
            for p in 0..PRODUCERS {
                want.extend(expected_bytes(p, 0..PER));
            }
            assert_eq!(sorted.join("\n") + "\n", String::from_utf8(want).unwrap());
            assert_eq!(m.written, (PRODUCERS * PER) as u64);
            assert_eq!((m.dropped, refused, evicting), (0, 0, 0));
        }
        Policy::DropNewest | Policy::Warn => {
            let n = assert_strictly_increasing(&bytes, PRODUCERS, PER);
            assert_eq!(n as u64 + m.dropped, (PRODUCERS * PER) as u64);
            assert_eq!(m.dropped_by.queue_full, refused as u64);
            assert_eq!(m.dropped, m.dropped_by.queue_full);
            assert_eq!(m.written, n as u64);
            assert_eq!(evicting, 0);
            // A refused record is never written and an accepted one is never lost.
            let got = per_producer(&bytes, PRODUCERS);
            for (p, o) in outcomes.iter().enumerate() {
                assert_eq!(got[p], o.0, "producer {p}: written != accepted");
            }
        }
        Policy::DropOldest => {
            let n = assert_strictly_increasing(&bytes, PRODUCERS, PER);
            assert_eq!(n as u64 + m.dropped, (PRODUCERS * PER) as u64);
            assert_eq!(m.dropped, m.dropped_by.evicted);
            assert_eq!(m.written, n as u64);
            assert_eq!(refused, 0);
            // Every eviction was reported to the producer that caused it.
            assert!(
                evicting as u64 <= m.dropped_by.evicted,
                "{evicting} EvictedOldest results but only {} evictions",
                m.dropped_by.evicted
            );
        }
    }
}

macro_rules! matrix {
    ($($name:ident: $policy:ident, $mode:ident, $strategy:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run(Policy::$policy, Mode::$mode, IoStrategy::$strategy);
            }
        )*
    };
}

matrix! {
    block_trigger_line: Block, Trigger, Line;
    block_trigger_block: Block, Trigger, Block;
    block_trigger_mmap: Block, Trigger, Mmap;
    block_loop_line: Block, Loop, Line;
    block_loop_block: Block, Loop, Block;
    block_loop_mmap: Block, Loop, Mmap;
    block_manual_line: Block, Manual, Line;
    block_manual_block: Block, Manual, Block;
    block_manual_mmap: Block, Manual, Mmap;
    drop_oldest_trigger_line: DropOldest, Trigger, Line;
    drop_oldest_trigger_block: DropOldest, Trigger, Block;
    drop_oldest_trigger_mmap: DropOldest, Trigger, Mmap;
    drop_oldest_loop_line: DropOldest, Loop, Line;
    drop_oldest_loop_block: DropOldest, Loop, Block;
    drop_oldest_loop_mmap: DropOldest, Loop, Mmap;
    drop_oldest_manual_line: DropOldest, Manual, Line;
    drop_oldest_manual_block: DropOldest, Manual, Block;
    drop_oldest_manual_mmap: DropOldest, Manual, Mmap;
    drop_newest_trigger_line: DropNewest, Trigger, Line;
    drop_newest_trigger_block: DropNewest, Trigger, Block;
    drop_newest_trigger_mmap: DropNewest, Trigger, Mmap;
    drop_newest_loop_line: DropNewest, Loop, Line;
    drop_newest_loop_block: DropNewest, Loop, Block;
    drop_newest_loop_mmap: DropNewest, Loop, Mmap;
    drop_newest_manual_line: DropNewest, Manual, Line;
    drop_newest_manual_block: DropNewest, Manual, Block;
    drop_newest_manual_mmap: DropNewest, Manual, Mmap;
    warn_trigger_line: Warn, Trigger, Line;
    warn_trigger_block: Warn, Trigger, Block;
    warn_trigger_mmap: Warn, Trigger, Mmap;
    warn_loop_line: Warn, Loop, Line;
    warn_loop_block: Warn, Loop, Block;
    warn_loop_mmap: Warn, Loop, Mmap;
    warn_manual_line: Warn, Manual, Line;
    warn_manual_block: Warn, Manual, Block;
    warn_manual_mmap: Warn, Manual, Mmap;
}
