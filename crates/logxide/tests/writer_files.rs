//! File sinks behind the writer: ENOSPC (`/dev/full`) next to a healthy sink and alone,
//! unopenable paths, mmap growth across chunks, and append mode across two writers.

mod common;

use std::fs;
use std::io;

use common::*;
use logxide::sink::{FileOptions, IoStrategy, MemorySink, OpenMode};
use logxide::writer::Writer;

const N: usize = 200;

fn dev_full() -> logxide::sink::FileSink {
    FileOptions::new()
        .open_mode(OpenMode::Append)
        .open("/dev/full")
        .unwrap()
}

#[test]
fn enospc_next_to_a_healthy_sink() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .sink(dev_full())
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..N {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.contents(), expected_bytes(0, 0..N));
    assert_eq!((m.written, m.failed), (N as u64, 0));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (0, N as u64));
    assert_eq!((m.sinks[1].written, m.sinks[1].failed), (N as u64, 0));
    assert!(m.sinks[0].errors >= 1);
    assert_eq!(m.sinks[1].errors, 0);
    let err = m.sinks[0].last_error.clone().unwrap();
    assert!(err.contains("No space left on device"), "{err}");
    assert!(m.errors >= 1);
    assert_settled(&m);
}

#[test]
fn enospc_alone_fails_every_record() {
    let writer = Writer::builder().sink(dev_full()).build().unwrap();
    let h = writer.handle();
    for i in 0..N {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(None).unwrap();
    assert!(h.last_error().unwrap().contains("No space left on device"));
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.failed, m.bytes), (0, N as u64, 0));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (0, N as u64));
    assert!(m.errors >= 1);
    assert_settled(&m);
}

#[test]
fn unopenable_paths_fail_before_any_writer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regular");
    fs::write(&file, "x").unwrap();
    for strategy in [IoStrategy::Line, IoStrategy::Block, IoStrategy::Mmap] {
        // A path whose parent is a regular file, with and without creating parents.
        for create in [true, false] {
            let bad = file.join("app.log");
            let err = FileOptions::new()
                .strategy(strategy)
                .create_parents(create)
                .open(&bad)
                .unwrap_err();
            assert!(
                err.to_string().contains(&*file.to_string_lossy()),
                "error does not name the path: {err}"
            );
            assert_ne!(err.kind(), io::ErrorKind::Other);
        }
        // Under /proc.
        let err = FileOptions::new()
            .strategy(strategy)
            .create_parents(false)
            .open("/proc/version/app.log")
            .unwrap_err();
        assert!(err.to_string().contains("/proc/version/app.log"), "{err}");
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

fn mmap_sink(path: &std::path::Path, mode: OpenMode) -> logxide::sink::FileSink {
    FileOptions::new()
        .strategy(IoStrategy::Mmap)
        .mmap_chunk(4096)
        .open_mode(mode)
        .open(path)
        .unwrap()
}

#[test]
fn mmap_grows_across_many_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let writer = Writer::builder()
        .capacity(1024)
        .sink(mmap_sink(&path, OpenMode::Truncate))
        .build()
        .unwrap();
    let h = writer.handle();
    let mut want = Vec::new();
    let mut i = 0;
    while want.len() < 2 << 20 {
        let l = line(0, i);
        h.enqueue(l.as_bytes()).unwrap();
        want.extend_from_slice(l.as_bytes());
        want.push(b'\n');
        i += 1;
    }
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    let got = fs::read(&path).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(!got.contains(&0), "NUL padding left in the file");
    assert!(got == want, "file content differs");
    assert_eq!((m.written, m.bytes), (i as u64, want.len() as u64));
    assert_settled(&m);
}

#[test]
fn append_mode_twice_concatenates() {
    for strategy in [IoStrategy::Mmap, IoStrategy::Line, IoStrategy::Block] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        for (run, range) in [(0, 0..3000), (1, 3000..3500)] {
            let sink = FileOptions::new()
                .strategy(strategy)
                .mmap_chunk(4096)
                .open_mode(OpenMode::Append)
                .open(&path)
                .unwrap();
            let writer = Writer::builder().sink(sink).build().unwrap();
            let h = writer.handle();
            for i in range.clone() {
                h.enqueue(line(run, i).as_bytes()).unwrap();
            }
            drop(writer);
        }
        let mut want = expected_bytes(0, 0..3000);
        want.extend(expected_bytes(1, 3000..3500));
        let got = fs::read(&path).unwrap();
        assert!(!got.contains(&0), "{strategy}: NUL in file");
        assert!(got == want, "{strategy}: content differs");
    }
}
