//! How the writer gathers batches for sinks that ask to be handed more bytes at a time
//! ([`Sink::coalesce_bytes`]), alone and next to a sink that asks for none: exact counts of
//! `write_batch` calls per sink.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use logxide::sink::{Batch, Sink, SinkError};
use logxide::writer::{Mode, Writer};

/// The records of each `write_batch` call a sink received, shared with the test.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<usize>>>);

impl Calls {
    fn get(&self) -> Vec<usize> {
        self.0.lock().unwrap().clone()
    }
}

/// Counts its `write_batch` calls (and the records in each); asks for `gather` bytes.
struct Counting {
    calls: Calls,
    gather: usize,
}

fn counting(gather: usize) -> (Counting, Calls) {
    let calls = Calls::default();
    let sink = Counting {
        calls: calls.clone(),
        gather,
    };
    (sink, calls)
}

impl Sink for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.calls.0.lock().unwrap().push(batch.len());
        Ok(())
    }
    fn coalesce_bytes(&self) -> usize {
        self.gather
    }
}

/// Trigger mode, a batch of 1 record, and a flush interval that never comes during the test:
/// the writer takes each record as it comes, and only the sinks' coalescing (or a flush)
/// decides when a batch is delivered.
fn builder() -> logxide::writer::WriterBuilder {
    Writer::builder()
        .mode(Mode::Trigger)
        .batch_size(1)
        .flush_interval(Duration::from_secs(3600))
}

const RECORDS: usize = 5;
const GATHER: usize = 1 << 16;

/// Alone, a sink that asks for 64 KiB gets the 5 small records in one call, at the flush.
#[test]
fn a_coalescing_sink_alone_gets_one_batch_at_the_flush() {
    let (sink, calls) = counting(GATHER);
    let writer = builder().sink(sink).build().unwrap();
    let h = writer.handle();
    for i in 0..RECORDS {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(None).unwrap();
    assert_eq!(calls.get(), [RECORDS]);
    writer.shutdown(None);
    assert_eq!(calls.get(), [RECORDS]);
}

/// Next to a sink that asks for nothing (0: as soon as the writer takes records), the one
/// that asks for 64 KiB gets every batch as the writer takes it too: one batch goes to
/// every sink, gathered to the smallest size any sink asks for (documented at
/// `Sink::coalesce_bytes`).
#[test]
fn with_several_sinks_the_smallest_coalescing_size_decides_for_all() {
    let (eager, eager_calls) = counting(0);
    let (patient, patient_calls) = counting(GATHER);
    let writer = builder().sink(eager).sink(patient).build().unwrap();
    let h = writer.handle();
    for i in 0..RECORDS {
        h.enqueue(line(0, i).as_bytes()).unwrap();
        // The next record only once this one was delivered: one record per batch.
        assert!(
            wait_for(Duration::from_secs(10), || eager_calls.get().len() == i + 1),
            "record {i} not delivered: {:?}",
            eager_calls.get()
        );
    }
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_eq!(eager_calls.get(), [1; RECORDS]);
    assert_eq!(patient_calls.get(), [1; RECORDS]);
    assert_eq!((m.written, m.batches), (RECORDS as u64, RECORDS as u64));
    assert_settled(&m);
}
