//! Sinks writing to a non-blocking descriptor (standard output set `O_NONBLOCK` by a
//! parent, a socket) whose reader is slow: a write that would block waits for the reader
//! instead of failing the records, and only a reader that takes nothing for the sink's
//! `would_block_timeout` fails them, with the records accepted before counted exactly.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use logxide::sink::{Batch, Sink, StdStream, Stream, WriteSink};
use logxide::writer::{MetricsSnapshot, Policy, Writer};

const CHILD_ENTRY: &str = "child_writes_records_to_its_nonblocking_stdout";

/// The record `i`: about 100 bytes, its number twice (a torn or glued line shows).
fn record(i: usize) -> String {
    format!(r#"{{"nb":{i},"pad":"{}","again":{i}}}"#, "x".repeat(64))
}

/// Run by [`std_stream_waits_for_a_slow_reader_of_a_nonblocking_stdout`] in a child process
/// whose standard output is a pipe the parent reads slowly: sets it non-blocking, writes
/// `LOGXIDE_NB_RECORDS` records through a writer to [`StdStream`], and prints the metrics to
/// standard error.
#[test]
#[ignore = "a child process of std_stream_waits_for_a_slow_reader_of_a_nonblocking_stdout"]
fn child_writes_records_to_its_nonblocking_stdout() {
    let n: usize = std::env::var("LOGXIDE_NB_RECORDS")
        .unwrap()
        .parse()
        .unwrap();
    io::stdout().flush().unwrap();
    let flags = rustix::fs::fcntl_getfl(io::stdout()).unwrap();
    rustix::fs::fcntl_setfl(io::stdout(), flags | rustix::fs::OFlags::NONBLOCK).unwrap();
    let writer = Writer::builder()
        .policy(Policy::Block)
        .sink(StdStream::new(Stream::Stdout))
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..n {
        h.enqueue(record(i).as_bytes()).unwrap();
    }
    let m = writer.shutdown(None).metrics;
    // Blocking again for the test harness's own lines.
    rustix::fs::fcntl_setfl(io::stdout(), flags).unwrap();
    eprintln!("METRICS {}", serde_json::to_string(&m).unwrap());
}

#[test]
fn std_stream_waits_for_a_slow_reader_of_a_nonblocking_stdout() {
    let n = 4000;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", CHILD_ENTRY, "--nocapture"])
        .args(["--test-threads=1"])
        .env("LOGXIDE_NB_RECORDS", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    // The child fills the pipe (64 KiB) long before the 400 KB are read.
    thread::sleep(Duration::from_millis(200));
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stdout.read(&mut chunk).unwrap() {
            0 => break,
            k => out.extend_from_slice(&chunk[..k]),
        }
        thread::sleep(Duration::from_millis(1));
    }
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(status.success(), "child failed: {errors}");
    let out = String::from_utf8(out).unwrap();
    // The test harness's lines around the records ("test … ... " before the first).
    let records: Vec<&str> = out
        .lines()
        .filter_map(|l| l.find(r#"{"nb":"#).map(|at| &l[at..]))
        .collect();
    let expected: Vec<String> = (0..n).map(record).collect();
    assert_eq!(records.len(), n, "records that arrived");
    assert!(records == expected, "records differ");
    let m: MetricsSnapshot = errors
        .lines()
        .find_map(|l| l.strip_prefix("METRICS "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no metrics from the child: {errors}"));
    assert_eq!(
        (m.enqueued, m.written, m.failed, m.dropped, m.pending),
        (n as u64, n as u64, 0, 0, 0),
        "{m:?}"
    );
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (n as u64, 0));
    assert_eq!(m.errors, 0, "{m:?}");
}

/// The records' bytes, back to back, and where each ends.
fn records(range: std::ops::Range<usize>) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for i in range {
        bytes.extend_from_slice(record(i).as_bytes());
        bytes.push(b'\n');
        ends.push(bytes.len());
    }
    (bytes, ends)
}

#[test]
fn write_sink_waits_for_a_slow_reader_of_a_nonblocking_socket() {
    let n = 20_000;
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let (expected, _) = records(0..n);
    let total = expected.len();
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let mut got = Vec::new();
        let mut chunk = [0u8; 8192];
        while got.len() < total {
            let k = theirs.read(&mut chunk).unwrap();
            assert!(k > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&chunk[..k]);
            thread::sleep(Duration::from_millis(1));
        }
        got
    });
    let writer = Writer::builder()
        .policy(Policy::Block)
        .sink(WriteSink::new("socket", ours))
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..n {
        h.enqueue(record(i).as_bytes()).unwrap();
    }
    let m = writer.shutdown(None).metrics;
    assert_eq!(
        (m.enqueued, m.written, m.failed, m.dropped, m.pending),
        (n as u64, n as u64, 0, 0, 0),
        "{m:?}"
    );
    assert_eq!(m.errors, 0, "{m:?}");
    assert!(reader.join().unwrap() == expected, "bytes differ");
}

/// A writer that refuses the first `refusals` writes with `WouldBlock`, then takes all.
struct Busy {
    refusals: usize,
    out: Vec<u8>,
}

impl Write for Busy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.refusals > 0 {
            self.refusals -= 1;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_sink_retries_a_write_that_would_block() {
    let mut sink = WriteSink::new(
        "busy",
        Busy {
            refusals: 3,
            out: Vec::new(),
        },
    );
    let (bytes, ends) = records(0..3);
    sink.write_batch(&Batch::new(&bytes, &ends)).unwrap();
    assert_eq!(sink.get_ref().out, bytes);
}

/// A reader that takes nothing: after `would_block_timeout` with no byte accepted the rest
/// of the batch fails, the records the socket took counted written (exactly those that
/// arrived whole), with an error that says why; the torn record's line is ended before the
/// next batch.
#[test]
fn a_reader_that_takes_nothing_fails_the_rest_after_the_timeout() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut sink = WriteSink::new("socket", ours).would_block_timeout(Duration::from_millis(50));
    // Far more than a socket buffer holds.
    let (bytes, ends) = records(0..50_000);
    let batch = Batch::new(&bytes, &ends);
    let err = sink.write_batch(&batch).unwrap_err();
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        err.error.to_string(),
        "the output would block and took no byte for 50ms (a non-blocking descriptor whose \
         reader does not read): the write is given up"
    );
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(k @ 1..) = theirs.read(&mut chunk) {
        got.extend_from_slice(&chunk[..k]);
    }
    assert!(err.written > 0 && err.written < 50_000, "{}", err.written);
    assert_eq!(batch.records_within(got.len()), err.written);
    assert_eq!(&got[..], &bytes[..got.len()]);
    // The next batch first ends the torn record's line (if one was torn).
    let torn = got.len() > batch.prefix_bytes(err.written);
    let (next, next_ends) = records(7..8);
    sink.write_batch(&Batch::new(&next, &next_ends)).unwrap();
    let mut rest = Vec::new();
    while let Ok(k @ 1..) = theirs.read(&mut chunk) {
        rest.extend_from_slice(&chunk[..k]);
    }
    let mut expected = if torn { b"\n".to_vec() } else { Vec::new() };
    expected.extend_from_slice(&next);
    assert_eq!(rest, expected);
}

/// The console over a writer that would block a few times: every line arrives.
#[test]
fn console_retries_a_write_that_would_block() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Shared(Arc<Mutex<Busy>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let out = Shared(Arc::new(Mutex::new(Busy {
        refusals: 3,
        out: Vec::new(),
    })));
    let mut console = logxide::sink::Console::new(out.clone(), false);
    let line = br#"{"ts":0,"tid":"t","lvl":[1],"mt":"info","msg":"m"}
"#;
    console
        .write_batch(&Batch::new(line, &[line.len()]))
        .unwrap();
    let mut expected = Vec::new();
    logxide::sink::render_record(line, false, &mut expected);
    assert_eq!(out.0.lock().unwrap().out, expected);
}
