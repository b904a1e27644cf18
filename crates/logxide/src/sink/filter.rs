//! [`LevelFilter`]: a sink wrapper that passes on only the records at or above a level.

use std::io;

use super::{Batch, Sink, SinkError};
use crate::Level;

/// Passes to the wrapped sink only the records whose level is at least `min_level`.
///
/// Every record carries its severity through the writer ([`Batch::level`]): the logger's
/// numeric level (debug 10, info 20, success 25, note 26, warning 30, error 40, critical 50;
/// action records are info, a failed action's end record error). Records of unknown level
/// (enqueued with [`WriterHandle::enqueue`](crate::writer::WriterHandle::enqueue)) always pass.
///
/// The records that pass are copied, back to back, into a buffer the filter keeps and
/// reuses, so in steady state filtering allocates nothing; a batch whose records all pass is
/// handed on as it is, without a copy, and one where none pass is not handed on at all.
///
/// # Task trees
///
/// A record filtered out still took its position in its task (`lvl`): the records ahead of
/// the filter are numbered for every sink alike. So a filtered file's task trees have holes
/// — an action's records without its start, an end without its start, gaps between
/// positions — which `logxide check` reports as problems unless it is told the file was
/// filtered (`logxide check --filtered`), and which `logxide view` shows as they are.
///
/// # Accounting
///
/// A record filtered out counts as **written** for this sink in its own metrics
/// ([`SinkMetrics`](crate::writer::SinkMetrics)): the sink did what it was asked. Only
/// records the inner sink failed to write count as failed there — and, because a
/// [`SinkError`] reports a prefix of the batch, the filtered-out records that follow the
/// first one it failed to write. In the writer's totals a record filtered out is not
/// written by this sink ([`Sink::accepts`]): if every other sink failed it, it is failed.
///
/// ```
/// use logxide::sink::{Batch, LevelFilter, MemorySink, Sink};
/// use logxide::Level;
/// let mem = MemorySink::new();
/// let mut loud = LevelFilter::at_least(mem.clone(), Level::Warning);
/// let batch = Batch::with_levels(b"debug\nwarning\nerror\n", &[6, 14, 20], &[10, 30, 40]);
/// loud.write_batch(&batch).unwrap();
/// assert_eq!(mem.lines(), ["warning", "error"]);
/// ```
pub struct LevelFilter<S> {
    inner: S,
    min_level: u8,
    buf: Vec<u8>,
    ends: Vec<usize>,
    levels: Vec<u8>,
}

/// A filtered batch larger than this has its buffer freed afterwards (the writer's batches
/// are at most about 1 MiB, so this only trims after unusually large records).
const RETAIN_MAX: usize = 4 << 20;

impl<S: Sink> LevelFilter<S> {
    /// Wraps `sink`: it receives the records of level `min_level` or above (and those of
    /// unknown level).
    ///
    /// ```
    /// use logxide::sink::{Batch, LevelFilter, MemorySink, Sink};
    /// let mut loud = LevelFilter::new(MemorySink::new(), 30);
    /// loud.write_batch(&Batch::with_levels(b"info\nwarning\n", &[5, 13], &[20, 30])).unwrap();
    /// assert_eq!(loud.get_ref().lines(), ["warning"]);
    /// ```
    pub fn new(sink: S, min_level: u8) -> Self {
        LevelFilter {
            inner: sink,
            min_level,
            buf: Vec::new(),
            ends: Vec::new(),
            levels: Vec::new(),
        }
    }

    /// Wraps `sink`: it receives the records at `level` or above.
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink};
    /// use logxide::Level;
    /// let errors = LevelFilter::at_least(MemorySink::new(), Level::Error);
    /// assert_eq!(errors.min_level(), 40);
    /// ```
    pub fn at_least(sink: S, level: Level) -> Self {
        Self::new(sink, level.value())
    }

    /// The lowest level passed on.
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink};
    /// assert_eq!(LevelFilter::new(MemorySink::new(), 25).min_level(), 25);
    /// ```
    pub fn min_level(&self) -> u8 {
        self.min_level
    }

    /// The wrapped sink.
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink, Sink};
    /// let filter = LevelFilter::new(MemorySink::new(), 30);
    /// assert_eq!(filter.get_ref().name(), "memory");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped sink, mutably.
    ///
    /// ```
    /// use logxide::sink::{Batch, LevelFilter, MemorySink, Sink};
    /// let mut filter = LevelFilter::new(MemorySink::new(), 30);
    /// // Written to the inner sink directly: no filtering.
    /// filter.get_mut().write_batch(&Batch::with_levels(b"quiet\n", &[6], &[10])).unwrap();
    /// assert_eq!(filter.get_ref().lines(), ["quiet"]);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the sink.
    ///
    /// ```
    /// use logxide::sink::{Batch, LevelFilter, MemorySink, Sink};
    /// let mut filter = LevelFilter::new(MemorySink::new(), 30);
    /// filter.write_batch(&Batch::with_levels(b"a\nb\n", &[2, 4], &[40, 10])).unwrap();
    /// let mem: MemorySink = filter.into_inner();
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn passes(&self, level: Option<u8>) -> bool {
        !matches!(level, Some(l) if l < self.min_level)
    }

    /// Maps "`kept` records of the filtered batch were written" to the number of leading
    /// records of the original batch that are done (written or filtered out).
    fn original_written(&self, batch: &Batch<'_>, kept: usize) -> usize {
        let mut seen = 0;
        for (i, level) in batch.levels().enumerate() {
            if self.passes(level) {
                if seen == kept {
                    return i;
                }
                seen += 1;
            }
        }
        batch.len()
    }
}

impl<S: Sink> Sink for LevelFilter<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let kept = batch.levels().filter(|&l| self.passes(l)).count();
        if kept == batch.len() {
            return self.inner.write_batch(batch);
        }
        if kept == 0 {
            return Ok(());
        }
        self.buf.clear();
        self.ends.clear();
        self.levels.clear();
        for (record, level) in batch.records().zip(batch.levels()) {
            if self.passes(level) {
                self.buf.extend_from_slice(record);
                self.ends.push(self.buf.len());
                self.levels.push(level.unwrap_or(Batch::NO_LEVEL));
            }
        }
        let filtered = Batch::with_levels(&self.buf, &self.ends, &self.levels);
        let result = self.inner.write_batch(&filtered);
        if self.buf.capacity() > RETAIN_MAX {
            self.buf = Vec::new();
        }
        result.map_err(|e| SinkError {
            written: self.original_written(batch, e.written),
            error: e.error,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn close(&mut self) -> io::Result<()> {
        self.inner.close()
    }

    fn coalesce_bytes(&self) -> usize {
        self.inner.coalesce_bytes()
    }

    fn accepts(&self, level: Option<u8>) -> bool {
        self.passes(level) && self.inner.accepts(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{FnSink, MemorySink};

    #[test]
    fn keeps_levels_and_maps_partial_failures_back() {
        // The inner sink writes one record of what it gets, then fails.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let inner = FnSink::new("half", move |b: &Batch<'_>| {
            seen2
                .lock()
                .unwrap()
                .push((b.bytes().to_vec(), b.levels().collect::<Vec<_>>()));
            Err(SinkError {
                written: 1,
                error: io::Error::other("full"),
            })
        });
        let mut f = LevelFilter::new(inner, 30);
        let bytes = b"a\nb\nc\nd\ne\n";
        let batch = Batch::with_levels(bytes, &[2, 4, 6, 8, 10], &[10, 30, 20, 255, 50]);
        let err = f.write_batch(&batch).unwrap_err();
        // Kept: b (30), d (unknown), e (50). One written: b; then c (filtered) is done too,
        // and d is the first record not written.
        assert_eq!(err.written, 3);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, b"b\nd\ne\n");
        assert_eq!(seen[0].1, [Some(30), None, Some(50)]);
    }

    #[test]
    fn passes_whole_batches_and_skips_empty_ones() {
        let mem = MemorySink::new();
        let mut f = LevelFilter::at_least(mem.clone(), Level::Error);
        f.write_batch(&Batch::new(b"x\n", &[2])).unwrap();
        f.write_batch(&Batch::with_levels(b"y\n", &[2], &[10]))
            .unwrap();
        f.write_batch(&Batch::with_levels(b"z\n", &[2], &[40]))
            .unwrap();
        assert_eq!(mem.lines(), ["x", "z"]);
    }
}
