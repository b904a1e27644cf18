//! `WriteSink` and `Console` over writers that fail part-way: a record torn by an error
//! never has a later record glued onto it.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use logxide::sink::{Batch, Console, Sink, WriteSink};

/// Shared bytes; each `write` accepts at most what `budget` allows (then one error, after
/// which the budget is unlimited again). The error is not `WouldBlock`, which the sinks wait
/// out (see `sink_nonblocking.rs`).
#[derive(Clone, Default)]
struct Flaky(Arc<Mutex<(Vec<u8>, Option<usize>)>>);

impl Flaky {
    /// The next writes accept `n` bytes in all, then one fails.
    fn fail_after(&self, n: usize) {
        self.0.lock().unwrap().1 = Some(n);
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
    }
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self.0.lock().unwrap();
        let n = match g.1 {
            Some(0) => {
                g.1 = None;
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"));
            }
            Some(left) => {
                let n = left.min(buf.len());
                g.1 = Some(left - n);
                n
            }
            None => buf.len(),
        };
        g.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn batch(bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let ends = (0..bytes.len())
        .filter(|&i| bytes[i] == b'\n')
        .map(|i| i + 1)
        .collect();
    (bytes.to_vec(), ends)
}

#[test]
fn write_sink_ends_a_torn_record_before_the_next_batch() {
    let out = Flaky::default();
    let mut sink = WriteSink::new("flaky", out.clone());
    out.fail_after(11);
    let (b, e) = batch(b"{\"a\":1}\n{\"b\":2}\n");
    let err = sink.write_batch(&Batch::new(&b, &e)).unwrap_err();
    assert_eq!(err.written, 1);
    assert_eq!(err.error.kind(), io::ErrorKind::BrokenPipe);
    let (b, e) = batch(b"{\"c\":3}\n");
    sink.write_batch(&Batch::new(&b, &e)).unwrap();
    // The torn `{"b` is a line of its own: `{"c":3}` is intact.
    assert_eq!(out.text(), "{\"a\":1}\n{\"b\n{\"c\":3}\n");
    // A batch that failed at a record boundary leaves nothing to end.
    out.fail_after(8);
    let (b, e) = batch(b"{\"d\":4}\n{\"e\":5}\n");
    assert_eq!(
        sink.write_batch(&Batch::new(&b, &e)).unwrap_err().written,
        1
    );
    sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
    assert_eq!(out.text(), "{\"a\":1}\n{\"b\n{\"c\":3}\n{\"d\":4}\n{}\n");
}

#[test]
fn write_sink_whose_line_break_fails_writes_nothing_of_the_batch() {
    let out = Flaky::default();
    let mut sink = WriteSink::new("flaky", out.clone());
    out.fail_after(3);
    assert_eq!(
        sink.write_batch(&Batch::new(b"{\"a\":1}\n", &[8]))
            .unwrap_err()
            .written,
        0
    );
    out.fail_after(0);
    let err = sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap_err();
    assert_eq!(
        (err.written, err.error.kind()),
        (0, io::ErrorKind::BrokenPipe)
    );
    sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
    assert_eq!(out.text(), "{\"a\n{}\n");
}

#[test]
fn write_sink_close_ends_a_torn_record() {
    let out = Flaky::default();
    let mut sink = WriteSink::new("flaky", out.clone());
    out.fail_after(3);
    sink.write_batch(&Batch::new(b"{\"a\":1}\n", &[8]))
        .unwrap_err();
    sink.close().unwrap();
    assert_eq!(out.text(), "{\"a\n");
}

#[test]
fn console_ends_a_torn_line_and_resets_its_colors_before_the_next_batch() {
    let line = br#"{"ts":0,"tid":"t","lvl":[1],"mt":"error","msg":"m"}
"#;
    for color in [false, true] {
        let out = Flaky::default();
        let mut console = Console::new(out.clone(), color);
        // Cut inside the styled message.
        let full = {
            let mut v = Vec::new();
            logxide::sink::render_record(line, color, &mut v);
            String::from_utf8(v).unwrap()
        };
        let cut = if color {
            full.len() - "\x1b[0m\n".len()
        } else {
            full.len() - 1
        };
        out.fail_after(cut);
        let err = console
            .write_batch(&Batch::new(line, &[line.len()]))
            .unwrap_err();
        assert_eq!(err.written, 0);
        console
            .write_batch(&Batch::new(line, &[line.len()]))
            .unwrap();
        let reset = if color { "\x1b[0m" } else { "" };
        assert_eq!(out.text(), format!("{}{reset}\n{full}", &full[..cut]));
    }
}

const UNWRITABLE_CHILD: &str = "child_logs_to_an_unwritable_stdout";

/// Run by [`records_sent_to_an_unwritable_stdout_are_counted_failed`] in a child whose
/// standard output is open for reading only (as good as closed: every `write(2)` fails with
/// `EBADF`): logs three records, one batch each, through [`StdStream`] and a [`Console`] on
/// standard output, and prints the metrics to standard error.
#[test]
#[ignore = "a child process of records_sent_to_an_unwritable_stdout_are_counted_failed"]
fn child_logs_to_an_unwritable_stdout() {
    use logxide::sink::{ColorChoice, StdStream, Stream};
    use logxide::writer::Writer;
    let writer = Writer::builder()
        .sink(StdStream::new(Stream::Stdout))
        .sink(Console::stdout_with(ColorChoice::Never).gather_bytes(0))
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..3 {
        h.enqueue(format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        h.flush(None).unwrap();
    }
    let m = writer.shutdown(None).metrics;
    eprintln!("METRICS {}", serde_json::to_string(&m).unwrap());
}

/// Rust's own standard output takes a descriptor that cannot be written (`EBADF`: closed,
/// or open for reading only) for a success; the sinks on it must not: their records went
/// nowhere, so they are counted failed, with an error saying why.
#[test]
fn records_sent_to_an_unwritable_stdout_are_counted_failed() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("read-only");
    std::fs::write(&input, b"").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", UNWRITABLE_CHILD, "--nocapture"])
        .args(["--test-threads=1"])
        .stdout(Stdio::from(std::fs::File::open(&input).unwrap()))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json = stderr
        .lines()
        .find_map(|l| l.strip_prefix("METRICS "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let m: logxide::writer::MetricsSnapshot = serde_json::from_str(json).unwrap();
    assert_eq!((m.written, m.failed), (0, 3));
    let error = "standard output cannot be written (closed, or not open for writing): Bad file descriptor (os error 9) (before any record of the batch was written)";
    for (sink, name) in m.sinks.iter().zip(["stdout", "stdout"]) {
        assert_eq!(sink.name, name);
        assert_eq!((sink.written, sink.failed, sink.errors), (0, 3, 3));
        assert_eq!(sink.last_error.as_deref(), Some(error));
    }
}
