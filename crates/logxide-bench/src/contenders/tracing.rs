//! `tracing`: `tracing` events with typed fields, formatted by `tracing-subscriber`'s
//! `fmt().json()` layer (defaults: RFC 3339 timestamp, level, fields nested under `fields`,
//! target) in the caller's thread, and handed as finished lines to `tracing-appender`'s
//! `non_blocking` writer built with `NonBlockingBuilder::default().lossy(false)` (its default
//! is lossy: it drops lines when its 128 000-line channel is full). The worker thread writes
//! into a `BufWriter<File>`, which it flushes whenever its channel runs empty. Dropping the
//! `WorkerGuard` at the end asks the worker to drain the channel and flush, but waits for it
//! **at most one second** (`send_timeout` of 1 000 ms in tracing-appender 0.2.5) and then
//! returns with lines still queued; so the end of the run is when the worker thread let go of
//! its writer ([`Released`], which flushes it), after the guard's drop, not the guard's drop
//! itself. The lines the non-blocking writer dropped (its `ErrorCounter`; 0 when lossless)
//! are checked too.
//!
//! ```text
//! {"timestamp":"2026-01-01T00:00:00.123456Z","level":"INFO","fields":{"message":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"},"target":"logxide_bench::contenders::tracing"}
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ::tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `tracing` contender.
pub struct Tracing {
    guard: WorkerGuard,
    released: Arc<Release>,
    dropped: ErrorCounter,
}

/// How long [`Tracing::finish`] waits for the worker to write everything after the guard's
/// drop returned (a run past it is an error, not a time).
const WORKER_TIMEOUT: Duration = Duration::from_secs(120);

/// The worker's writer: `W`, which signals through [`Release`] when the worker thread drops
/// it (after its last write), having flushed it.
pub struct Released<W: Write> {
    inner: W,
    release: Arc<Release>,
}

/// Set once, by [`Released`]'s drop: the result of its final flush.
#[derive(Default)]
pub struct Release {
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

impl<W: Write> Released<W> {
    pub fn new(inner: W) -> (Self, Arc<Release>) {
        let release = Arc::new(Release::default());
        let writer = Released {
            inner,
            release: Arc::clone(&release),
        };
        (writer, release)
    }
}

impl<W: Write> Write for Released<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for Released<W> {
    fn drop(&mut self) {
        let result = self.inner.flush().map_err(|e| e.to_string());
        let mut done = self.release.done.lock().unwrap_or_else(|p| p.into_inner());
        *done = Some(result);
        self.release.cv.notify_all();
    }
}

impl Release {
    /// Waits until the writer was dropped (at most `timeout`) and returns its final flush's
    /// result.
    pub fn wait(&self, timeout: Duration) -> Result<(), String> {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let (done, _) = self
            .cv
            .wait_timeout_while(done, timeout, |d| d.is_none())
            .unwrap_or_else(|p| p.into_inner());
        match &*done {
            Some(result) => result.clone(),
            None => Err(format!(
                "the tracing-appender worker still holds its writer {timeout:?} after the guard's drop"
            )),
        }
    }
}

impl Contender for Tracing {
    fn setup(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| e.to_string())?;
        let (file, released) = Released::new(BufWriter::new(file));
        let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(file);
        let dropped = writer.error_counter();
        ::tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(Tracing {
            guard,
            released,
            dropped,
        })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::tracing::info!(
            user_id = i,
            latency_ms = latency_ms(i),
            path = PATH,
            "request handled"
        );
    }

    fn finish(self) -> Result<(), String> {
        drop(self.guard);
        self.released.wait(WORKER_TIMEOUT)?;
        match self.dropped.dropped_lines() {
            0 => Ok(()),
            n => Err(format!("tracing-appender dropped {n} lines")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A writer that takes 1 ms per write into a shared buffer.
    struct Slow(Arc<Mutex<Vec<u8>>>);

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(1));
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_end_waits_for_the_worker_past_the_guards_one_second() {
        const LINES: usize = 1500;
        let out = Arc::new(Mutex::new(Vec::new()));
        let (slow, released) = Released::new(Slow(Arc::clone(&out)));
        let (mut writer, guard) = NonBlockingBuilder::default().lossy(false).finish(slow);
        let start = Instant::now();
        for i in 0..LINES {
            writer.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        // The guard gave up after about a second with lines still queued (they take 1.5 s).
        let after_guard = out.lock().unwrap().iter().filter(|b| **b == b'\n').count();
        assert!(
            after_guard < LINES,
            "{after_guard} after {:?}",
            start.elapsed()
        );
        released.wait(Duration::from_secs(60)).unwrap();
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<usize> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(lines, (0..LINES).collect::<Vec<_>>());
        assert!(start.elapsed() >= Duration::from_millis(LINES as u64));
    }

    #[test]
    fn a_writer_never_released_is_an_error() {
        let (writer, released) = Released::new(Vec::new());
        let err = released.wait(Duration::from_millis(10)).unwrap_err();
        assert!(err.contains("still holds its writer"), "{err}");
        drop(writer);
        assert_eq!(released.wait(Duration::from_millis(10)), Ok(()));
    }
}
