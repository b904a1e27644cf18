//! A rotating log file: [`RotatingFile`], opened with [`RotateOptions`].
//!
//! # Rotation
//!
//! The file is rotated by size ([`RotateOptions::max_bytes`]), by time
//! ([`RotateOptions::every`]), or both:
//!
//! * **size**: before a record would make the active file exceed `max_bytes`, the file is
//!   rotated. A batch that crosses the limit is split at a record boundary: no record is ever
//!   split across files, and no file exceeds the limit unless a single record is larger than
//!   it (such a record is written alone into an empty file).
//! * **time**: periods are UTC minutes, hours or days counted from the Unix epoch. The first
//!   batch written after a period boundary goes into a new file (a file holding no record is
//!   never rotated). When an existing file is appended to, its modification time tells which
//!   period it belongs to. When the clock steps back (an NTP step), nothing is rotated then,
//!   and the periods are counted from the time it shows: the next boundary it crosses rotates
//!   (the names still never go back in time, see below).
//!
//! Both are decided on the file at the path: with [`FileOptions::reopen_if_moved`] (the
//! default), a file that another tool moved away, deleted or replaced is followed first (a new
//! file is opened at the path, appending: an existing one found there belongs, as an
//! appended file does, to the period of its modification time), and the size counted is that file's real size
//! (also after another tool truncated it in place, as logrotate's `copytruncate` does).
//! Where the path cannot be opened again (its directory moved too, say), the batch goes into
//! the moved file, unrotated, with the error reported and every record written, as a
//! [`FileSink`]'s does; a file deleted as well fails the batch.
//! After a rotation renamed the file, the new one is opened appending: lines another process
//! wrote at the path in between (it opened the path after the rename) are kept.
//! With [`FileOptions::durability`] on (`data` or `full`), the rename and the new file are
//! made durable with the batch written after the rotation: the directory is `fsync`ed then
//! (a failure is that batch's error, as a failed sync of its records is). Before a rotation
//! the records of the file are synced (after it they never are again: a failure is a failed
//! rotation); a directory that cannot be synced does not stop rotations.
//!
//! # Naming
//!
//! The active file is the path given to [`RotateOptions::open`]. For `logs/app.log`, a
//! rotation renames it to
//!
//! ```text
//! logs/app.<YYYYmmddTHHMMSS>.log         e.g. logs/app.20240301T120000.log
//! logs/app.<YYYYmmddTHHMMSS>.<n>.log     another rotation in the same second: n = 1, 2, ...
//! ```
//!
//! where the timestamp is the UTC time of the rotation (never earlier than the previous
//! rotation's, so the names stay in order when the clock steps back). The counter `n` is one
//! above the highest counter of that timestamp already in the directory (compressed,
//! uncompressed or temporary), and above the last one the sink used for it: an existing
//! rotated file is never overwritten, and a counter freed by retention (or by someone
//! deleting a file) is not used again, so the newest file always sorts last. A path without an
//! extension gets no extension (`app` → `app.20240301T120000`); an extension that is a number
//! after a stem without one (`app.1`, not `app.log.1`) is refused by [`RotateOptions::open`]
//! (its rotated names, `app.<stamp>.1`, would be those of a log `app` rotated twice in a
//! second). With compression the
//! rotated file becomes `… .log.gz` or `… .log.zst` (a log whose own extension is `gz`,
//! `zst` or `tmp` works the same: `app.gz` → `app.20240301T120000.gz`, compressed
//! `app.20240301T120000.gz.gz`; next to a log `app`, whose compressed files have those
//! names too, the first bytes of the file tell whose it is — a compressed file starts with
//! its format's magic number, records never do — and neither log lists, deletes or
//! compresses the other's). [`rotated_files`] lists them oldest
//! first (by timestamp then counter, which plain name order does not give).
//!
//! # A symbolic link at the path
//!
//! When the path is a symbolic link (`logs/app.log -> /data/logs/real.log`, through any
//! number of links, relative ones resolved from the link's directory), the link chain is
//! resolved once, at open, and the file it reaches — the link's destination — is the
//! active file: it is what a rotation renames, in its own directory and after its own name
//! (`/data/logs/real.<YYYYmmddTHHMMSS>.log`), and a new file is created at the destination
//! path, so the link, never renamed, moved or deleted, points at the new active file again.
//! Retention, compression, the recovery at open and [`rotated_files`] work on the
//! destination's directory with the destination's name; the link's directory gets nothing
//! but the link. Files moved or replaced by another tool (see above) are looked for at the
//! destination. A link changed to point elsewhere after the open (or replaced by a file) is
//! followed at the next batch, as a moved file is (with [`FileOptions::reopen_if_moved`], the
//! default): the new destination is opened, appending, and becomes the active file —
//! rotated next to itself, with retention and compression in its directory, its period
//! told by its modification time (as a file appended to at open: one from an earlier
//! period is rotated before the batch goes into it), its rotated
//! names never older than the last ones (leftover `.tmp` files there are removed by the
//! next open). The previous destination keeps what was written to it. Without
//! `reopen_if_moved`, or where the new destination cannot be opened (the batch then goes
//! into the current file and its error is reported, as a failed rotation's), the
//! records go on at the current destination, which is rotated by size and time as usual.
//!
//! A dangling link (its destination missing) is followed too: the destination is created,
//! as opening a plain [`FileSink`] through the link creates it (and its missing directories,
//! with [`FileOptions::create_parents`], the default). With
//! [`FileOptions::follow_symlinks`]`(false)` a link at the path is refused by
//! [`RotateOptions::open`] before anything is listed, deleted, created or truncated, in
//! either directory.
//!
//! # Compression and retention
//!
//! Compression ([`RotateOptions::compress`]) and retention ([`RotateOptions::keep`],
//! [`RotateOptions::max_age`]) run on one background thread per sink, started the first time
//! it has work and fed by an unbounded channel, so logging never waits for them. A file is
//! compressed into `<final name>.tmp` (created new, with the rotated file's mode: a file or
//! link already at that name is never written through, the compression fails and the
//! rotated file stays uncompressed), which is synced,
//! renamed to the final name, and only then is the uncompressed file deleted: after a crash
//! there is either the uncompressed rotated file or a complete compressed one under the final
//! name, never a half-written one (a rotated file whose compressed name is taken already is
//! deleted only when that file holds exactly its records, compressed: an earlier run that
//! stopped before the deletion; anything else there is left, the rotated file kept, and the
//! error counted). On open, leftover `*.gz.tmp` and `*.zst.tmp` files of this
//! log are deleted and uncompressed rotated files are queued for compression again (when
//! compression is on). The directory is listed and the leftovers deleted before the active
//! file is opened (and, in mode `w`, truncated): when either fails, the open fails with the
//! active file as it was.
//!
//! Retention counts rotated files (compressed or not): beyond the newest `keep` they are
//! deleted, and so is every rotated file whose rotation timestamp is older than `max_age`.
//! The active file is never deleted, nor any file whose name the sink does not write (such as
//! `app.backup.log`, `app.<stamp>.0.log`, `app.<stamp>.01.log`, `app.<stamp>.log.tmp`, or a
//! stamp of a day that does not exist, `app.20240230T000000.log`), nor compressed: neither is
//! a file that a file sink of this process writes (another log's active file, whatever its
//! name; a sink writes it from its open to its close or drop), and such a file does not count
//! as a rotated one. Retention runs at open and
//! after each rotation: a file past `max_age` goes at the next of them (a log that is not
//! rotated deletes nothing meanwhile). The age is that of the timestamp in the name: after the
//! clock was set ahead, the names keep that time (see above), and those files count as that
//! young until the clock gets there.
//!
//! [`Sink::close`] waits for the queued work, at most [`RotateOptions::close_timeout`]
//! (default 30 s); past that the thread is left to finish on its own, and anything it did not
//! do is picked up again by the next open. Dropping the sink without closing it waits the same way
//! (after a close, the drop does not wait again). Errors of the background thread (a file that
//! could not be compressed or deleted, or the thread could not be started) are counted in
//! [`RotatingFile::background_errors`] and reported to the writer once, by the sink's next
//! batch, flush or close — an error with every record written (one of the sink's `errors`
//! in the writer's metrics, their number and the last one's text in `last_error`; a close
//! that fails itself tells them after its own error); the
//! uncompressed file is then kept (the rotation itself is done, not a failed one). A rotated file that someone else deleted before its
//! compression is skipped, not counted: nothing written is lost by the sink.
//!
//! # Errors
//!
//! A failed rotation (the rename, or opening the new file) never loses a record: the sink
//! keeps writing to the current file, counts the failure
//! ([`RotatingFile::rotation_failures`]), and returns a [`SinkError`] whose
//! [`written`](SinkError::written) is the whole batch (every record is in the file) so the
//! writer reports the error: one of the sink's `errors` in the writer's metrics, whose
//! `last_error` says why the rotation failed and that the batch went on into the current
//! file, unrotated. The rest of that batch goes into the current file even past
//! `max_bytes` — no record is dropped to honour the limit, and trying again within the
//! batch would fail the same way — and a later batch tries the rotation again: the first
//! batch 1 s after the failure, then, while attempts keep failing, twice as long after each
//! one, at most 60 s (on the sink's clock; a clock stepped back to before the failure does
//! not wait). An attempt lists the directory, syncs and renames: a rotation that cannot
//! succeed (a read-only directory, say) costs that once per wait, not once per batch. The
//! batches in between try nothing; each one is written into the current file and returns
//! an error saying when the rotation is tried again and why the last attempt failed (not
//! counted in `rotation_failures`, which counts attempts). So while rotations keep failing
//! the file has no bound but the disk: it grows by every batch written meanwhile, each one
//! an error in the metrics, and the first rotation that succeeds moves all of it into one
//! rotated file (a success forgets the failures: the next failure waits 1 s again).
//! A failed write returns the exact number of records of the batch
//! that were written, in whichever files, before it (its error first, then those of a
//! rotation or a sync that failed earlier in the batch, if any); a failed sync (with
//! [`FileOptions::durability`]) of records that were written does not stop the rest of the
//! batch: it is written, and the error reported with the whole batch written (after a
//! failed rotation's, when the batch had both).
//!
//! No rename of a rotation replaces a file: the active file is given its rotated name with a
//! hard link, which fails on a name taken meanwhile (another process logging to the same file
//! rotated to it: the next counter is taken), and only then loses its active name (where the
//! file system has no hard links, a rename made only if the name is free just before). A
//! crash between the two leaves the file with both names; the next open removes the active
//! one (before it would truncate the rotated file in mode `w`). When opening the new file
//! fails, the rotated file is put back the same way; if another process created a file at
//! the path meanwhile, that file is kept and the rotated one stays rotated: the batch's
//! records go on into it (the sink's descriptor), and the next batch follows the file at the
//! path.
//!
//! # The `mmap` strategy
//!
//! Only the `line` and `block` strategies are supported: [`RotateOptions::open`] refuses
//! [`IoStrategy::Mmap`] with an [`io::ErrorKind::InvalidInput`] error naming the option (an
//! mmap file is padded while open; renaming it under a live mapping is not worth the risk).
//!
//! ```
//! use logxide::sink::{Batch, Compression, Period, RotateOptions, Sink};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("app.log");
//! let mut sink = RotateOptions::new()
//!     .max_bytes(16)
//!     .every(Period::Day)
//!     .keep(10)
//!     .compress(Compression::Gzip)
//!     .open(&path)
//!     .unwrap();
//! sink.write_batch(&Batch::new(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", &[8, 16, 24])).unwrap();
//! sink.close().unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{\"c\":3}\n");
//! let rotated = logxide::sink::rotate::rotated_files(&path).unwrap();
//! assert_eq!(rotated.len(), 1);
//! assert!(rotated[0].to_str().unwrap().ends_with(".log.gz"));
//! ```
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::file::{
    is_open_by_a_sink, sync_dir, DirChange, FileOptions, FileSink, IoStrategy, OpenMode,
    ParseOptionError,
};
use super::{Batch, Sink, SinkError};
use crate::encode::calendar::{civil_from_days, days_from_civil};

/// A time-rotation period, on UTC boundaries.
///
/// Parsed case-insensitively from `minute`, `hour` or `day`.
///
/// ```
/// use logxide::sink::Period;
/// assert_eq!("Hour".parse::<Period>().unwrap(), Period::Hour);
/// assert_eq!(Period::Day.to_string(), "day");
/// assert!("week".parse::<Period>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// Every UTC minute.
    Minute,
    /// Every UTC hour.
    Hour,
    /// Every UTC day (at midnight UTC).
    Day,
}

impl Period {
    /// The period's length in seconds.
    ///
    /// ```
    /// use logxide::sink::Period;
    /// assert_eq!([Period::Minute, Period::Hour, Period::Day].map(Period::seconds), [60, 3600, 86_400]);
    /// ```
    pub fn seconds(self) -> u64 {
        match self {
            Period::Minute => 60,
            Period::Hour => 3600,
            Period::Day => 86_400,
        }
    }

    /// The canonical lowercase name.
    ///
    /// ```
    /// use logxide::sink::Period;
    /// assert_eq!(Period::Hour.as_str(), "hour");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minute" => Ok(Period::Minute),
            "hour" => Ok(Period::Hour),
            "day" => Ok(Period::Day),
            _ => Err(ParseOptionError::new(
                "rotation period",
                s,
                "minute, hour, day",
            )),
        }
    }
}

/// How rotated files are compressed.
///
/// Parsed case-insensitively from `none`, `gzip` (or `gz`) and `zstd` (or `zst`).
///
/// ```
/// use logxide::sink::Compression;
/// assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::Gzip);
/// assert_eq!(Compression::Zstd.extension(), Some("zst"));
/// assert!("lz4".parse::<Compression>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Rotated files stay as they are (the default).
    #[default]
    None,
    /// gzip (`.gz`), default level.
    Gzip,
    /// Zstandard (`.zst`), level 3.
    Zstd,
}

impl Compression {
    /// The canonical lowercase name.
    ///
    /// ```
    /// use logxide::sink::Compression;
    /// assert_eq!("GZ".parse::<Compression>().unwrap().as_str(), "gzip"); // an alias, any case
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The extension added to a compressed file: `gz`, `zst`, or none.
    ///
    /// ```
    /// use logxide::sink::Compression;
    /// assert_eq!(Compression::Gzip.extension(), Some("gz"));
    /// assert_eq!(Compression::None.extension(), None);
    /// ```
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gz"),
            Compression::Zstd => Some("zst"),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(ParseOptionError::new("compression", s, "none, gzip, zstd")),
        }
    }
}

/// Text that is not a size, or one above `u64::MAX` bytes.
///
/// ```
/// use logxide::sink::rotate::parse_size;
/// let err = parse_size("10 TB").unwrap_err();
/// assert!(err.to_string().starts_with(r#"invalid size "10 TB": expected a whole number of bytes"#));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSizeError {
    text: String,
    too_large: bool,
}

impl ParseSizeError {
    /// The text is a size, but above `u64::MAX` bytes.
    pub(crate) fn too_large(&self) -> bool {
        self.too_large
    }
}

impl fmt::Display for ParseSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.too_large {
            return write!(
                f,
                "invalid size {:?}: too large, at most {} bytes",
                self.text,
                u64::MAX
            );
        }
        write!(
            f,
            "invalid size {:?}: expected a whole number of bytes, optionally with a unit B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. \"100MB\", \"512 KiB\"",
            self.text
        )
    }
}

impl std::error::Error for ParseSizeError {}

/// A size written as text: a whole number, optionally followed (spaces allowed) by a unit
/// `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024); units
/// are case-insensitive. A size above `u64::MAX` bytes is an error that says so.
///
/// ```
/// use logxide::sink::rotate::parse_size;
/// assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
/// assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
/// assert_eq!(parse_size("42").unwrap(), 42);
/// assert!(parse_size("1.5GB").is_err());
/// assert!(parse_size("10 TB").is_err());
/// assert!(parse_size("20000000000GB").unwrap_err().to_string().contains("too large"));
/// ```
pub fn parse_size(text: &str) -> Result<u64, ParseSizeError> {
    let error = |too_large| ParseSizeError {
        text: text.to_owned(),
        too_large,
    };
    let err = || error(false);
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(err());
    }
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(err()),
    };
    // Only digits: the one way to fail is a number above `u64::MAX`.
    let value: u64 = number.parse().map_err(|_| error(true))?;
    value.checked_mul(scale).ok_or_else(|| error(true))
}

/// Where a rotating file gets the time from. The real one is [`SystemClock`]; tests use
/// [`ManualClock`] to cross period boundaries without sleeping.
#[doc(hidden)]
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// [`SystemTime::now`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (for tests).
#[doc(hidden)]
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `unix_secs` seconds after the Unix epoch.
    pub fn at(unix_secs: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(
            UNIX_EPOCH + Duration::from_secs(unix_secs),
        )))
    }

    /// Sets the time to `unix_secs` seconds after the Unix epoch.
    pub fn set(&self, unix_secs: u64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            UNIX_EPOCH + Duration::from_secs(unix_secs);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Options of a [`RotatingFile`], in builder style. See the [module docs](self) (a symbolic
/// link at the path: [its destination is rotated, the link
/// kept](self#a-symbolic-link-at-the-path)).
///
/// ```
/// use logxide::sink::{Compression, RotateOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let opts = RotateOptions::new().max_bytes(100 << 20).keep(5).compress(Compression::Zstd);
/// let sink = opts.open(dir.path().join("app.log")).unwrap();
/// assert_eq!(sink.rotations(), 0);
/// ```
#[derive(Clone)]
pub struct RotateOptions {
    max_bytes: Option<u64>,
    every: Option<Period>,
    keep: Option<usize>,
    max_age: Option<Duration>,
    compression: Compression,
    file: FileOptions,
    close_timeout: Duration,
    clock: Arc<dyn Clock>,
    /// The logger's `clean`: the active file is deleted by the open, as its last step before
    /// opening it (see [`clean_active`](Self::clean_active)).
    clean: bool,
}

impl fmt::Debug for RotateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateOptions")
            .field("max_bytes", &self.max_bytes)
            .field("every", &self.every)
            .field("keep", &self.keep)
            .field("max_age", &self.max_age)
            .field("compression", &self.compression)
            .field("file", &self.file)
            .field("close_timeout", &self.close_timeout)
            .field("clean", &self.clean)
            .finish_non_exhaustive()
    }
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            max_bytes: None,
            every: None,
            keep: None,
            max_age: None,
            compression: Compression::None,
            file: FileOptions::new(),
            close_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            clean: false,
        }
    }
}

impl RotateOptions {
    /// No rotation, no retention, no compression, the default [`FileOptions`].
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().open(dir.path().join("app.log")).unwrap();
    /// sink.write_batch(&Batch::new(b"a\nb\n", &[2, 4])).unwrap();
    /// assert_eq!((sink.len(), sink.rotations()), (4, 0)); // never rotates without a size or period
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Rotate before a record would make the active file larger than `bytes` (which must
    /// be greater than zero).
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let mut sink = RotateOptions::new().max_bytes(4).open(&path).unwrap();
    /// sink.write_batch(&Batch::new(b"a\nb\nc\n", &[2, 4, 6])).unwrap();
    /// assert_eq!(sink.rotations(), 1); // "c" would have made it 6 bytes
    /// assert_eq!(std::fs::read(&path).unwrap(), b"c\n");
    /// assert!(RotateOptions::new().max_bytes(0).validate().is_err());
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Rotate at the first batch after each UTC `period` boundary.
    ///
    /// ```
    /// use logxide::sink::{Batch, Period, RotateOptions, Sink};
    /// # use logxide::sink::rotate::ManualClock;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// # let clock = ManualClock::at(1_709_294_400); // 2024-03-01T12:00:00Z
    /// let mut sink = RotateOptions::new()
    ///     .every(Period::Hour)
    /// #   .clock(clock.clone())
    ///     .open(&path)
    ///     .unwrap();
    /// sink.write_batch(&Batch::new(b"noon\n", &[5])).unwrap();
    /// // An hour later:
    /// # clock.advance(std::time::Duration::from_secs(3600));
    /// sink.write_batch(&Batch::new(b"one\n", &[4])).unwrap();
    /// assert_eq!(sink.rotations(), 1);
    /// assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
    /// # assert!(dir.path().join("app.20240301T130000.log").exists());
    /// ```
    pub fn every(mut self, period: Period) -> Self {
        self.every = Some(period);
        self
    }

    /// Whether a size or a period is set: without either the file never rotates.
    pub(crate) fn rotates(&self) -> bool {
        self.max_bytes.is_some() || self.every.is_some()
    }

    /// Keep at most the newest `n` rotated files; older ones are deleted. `0` keeps none: a
    /// rotation then only starts the file afresh (the rotated one is deleted once renamed).
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().max_bytes(2).keep(1).open(dir.path().join("app.log")).unwrap();
    /// for r in [b"1\n", b"2\n", b"3\n"] {
    ///     sink.write_batch(&Batch::new(r, &[2])).unwrap(); // each one rotates the last
    /// }
    /// sink.close().unwrap(); // waits for the retention
    /// assert_eq!(sink.rotations(), 2);
    /// assert_eq!(sink.rotated_files().unwrap().len(), 1); // the newest kept
    /// ```
    pub fn keep(mut self, n: usize) -> Self {
        self.keep = Some(n);
        self
    }

    /// Delete rotated files whose rotation time is more than `age` ago.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// # use logxide::sink::rotate::ManualClock;
    /// let dir = tempfile::tempdir().unwrap();
    /// # let clock = ManualClock::at(1_709_294_400);
    /// let mut sink = RotateOptions::new()
    ///     .max_bytes(2)
    ///     .max_age(Duration::from_secs(86_400))
    /// #   .clock(clock.clone())
    ///     .open(dir.path().join("app.log"))
    ///     .unwrap();
    /// for r in [b"1\n", b"2\n"] {
    ///     sink.write_batch(&Batch::new(r, &[2])).unwrap();
    /// }
    /// // Two days later, a rotation's retention deletes the file rotated then:
    /// # clock.advance(Duration::from_secs(2 * 86_400));
    /// sink.write_batch(&Batch::new(b"3\n", &[2])).unwrap();
    /// assert!(sink.wait_idle(Duration::from_secs(30)));
    /// assert_eq!(sink.rotated_files().unwrap().len(), 1);
    /// ```
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Keep every rotated file whatever their number (the default; undoes [`keep`](Self::keep)).
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = RotateOptions::new().max_bytes(2).keep(1).keep_all();
    /// let mut sink = opts.open(dir.path().join("app.log")).unwrap();
    /// for r in [b"1\n", b"2\n", b"3\n"] {
    ///     sink.write_batch(&Batch::new(r, &[2])).unwrap();
    /// }
    /// sink.close().unwrap();
    /// assert_eq!(sink.rotated_files().unwrap().len(), 2);
    /// ```
    pub fn keep_all(mut self) -> Self {
        self.keep = None;
        self
    }

    /// Keep rotated files whatever their age (the default; undoes
    /// [`max_age`](Self::max_age)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::RotateOptions;
    /// let opts = RotateOptions::new().max_bytes(1 << 20).max_age(Duration::from_secs(60)).keep_forever();
    /// assert!(format!("{opts:?}").contains("max_age: None"));
    /// ```
    pub fn keep_forever(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// Compress rotated files (default [`Compression::None`]).
    ///
    /// ```
    /// use logxide::sink::{Batch, Compression, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new()
    ///     .max_bytes(2)
    ///     .compress(Compression::Zstd)
    ///     .open(dir.path().join("app.log"))
    ///     .unwrap();
    /// for r in [b"1\n", b"2\n"] {
    ///     sink.write_batch(&Batch::new(r, &[2])).unwrap();
    /// }
    /// sink.close().unwrap(); // waits for the compression
    /// let rotated = sink.rotated_files().unwrap();
    /// assert!(rotated[0].to_str().unwrap().ends_with(".log.zst"));
    /// ```
    pub fn compress(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Options of the active file: strategy (`line` or `block`; `mmap` is refused at open),
    /// open mode on the first open (later files are always new), durability, permissions...
    ///
    /// ```
    /// use logxide::sink::{FileOptions, IoStrategy, RotateOptions};
    /// let dir = tempfile::tempdir().unwrap();
    /// let line = RotateOptions::new().max_bytes(1 << 20).file(FileOptions::new().strategy(IoStrategy::Line));
    /// assert!(line.open(dir.path().join("app.log")).is_ok());
    /// let mmap = RotateOptions::new().max_bytes(1 << 20).file(FileOptions::new().strategy(IoStrategy::Mmap));
    /// assert_eq!(mmap.validate().unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn file(mut self, options: FileOptions) -> Self {
        self.file = options;
        self
    }

    /// How long [`Sink::close`] waits for pending compression and retention (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::{RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = RotateOptions::new().max_bytes(1 << 20).close_timeout(Duration::from_secs(5));
    /// let mut sink = opts.open(dir.path().join("app.log")).unwrap();
    /// assert!(sink.close().is_ok()); // nothing queued: returns at once
    /// ```
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The logger's `clean`: [`open`](Self::open) deletes the active file (a symbolic
    /// link's destination, never the link) after every step of it that can fail before the
    /// file is opened — the directory scan, the removal of leftovers, the recovery of a
    /// half-done rotation, the start of the background thread — so that a failed open
    /// leaves the file as it was; the new file is then created in its place.
    pub(crate) fn clean_active(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    /// The clock used for time rotation, rotated names and `max_age` (tests).
    #[doc(hidden)]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the options and the name of the active file `path` without touching the file
    /// system (what [`open`](Self::open) checks first).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`]: [`validate`](Self::validate)'s, a file name that
    /// is not UTF-8 (rotated files' names are made from it), or one whose extension is a
    /// number (`app.1`: see [Naming](self#naming)).
    ///
    /// ```
    /// use logxide::sink::RotateOptions;
    /// let opts = RotateOptions::new().max_bytes(1 << 20);
    /// assert!(opts.check("app.log").is_ok());
    /// assert!(opts.check("/").is_err()); // no file name
    /// ```
    pub fn check(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.validate()?;
        Naming::new(path.as_ref()).map(|_| ())
    }

    /// Checks the options without touching the file system.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`]: `max_bytes(0)`, the `mmap` strategy, or invalid
    /// [`FileOptions`] ([`FileOptions::validate`]).
    ///
    /// ```
    /// use logxide::sink::RotateOptions;
    /// assert!(RotateOptions::new().max_bytes(1 << 20).validate().is_ok());
    /// let err = RotateOptions::new().max_bytes(0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "max_bytes (rotate_size) must be greater than zero");
    /// ```
    pub fn validate(&self) -> io::Result<()> {
        self.file.validate()?;
        if self.file.strategy == IoStrategy::Mmap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the `mmap` I/O strategy (FileOptions::strategy / writer_type) is not supported for a rotating file: use `line` or `block`",
            ));
        }
        if self.max_bytes == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_bytes (rotate_size) must be greater than zero",
            ));
        }
        Ok(())
    }

    /// Opens the active file at `path`, removes leftovers of a crash and queues unfinished
    /// compression (see the [module docs](self)). A symbolic link at `path` is resolved
    /// here, once: the file it points to is the one written and rotated, in its own
    /// directory (see [A symbolic link at the path](self#a-symbolic-link-at-the-path)).
    ///
    /// # Errors
    /// Invalid options ([`validate`](Self::validate)), a symbolic link at `path` with
    /// [`FileOptions::follow_symlinks`]`(false)` (refused before anything is changed), a
    /// link that cannot be read or a chain of more than 40 links (`ELOOP`), a destination
    /// whose name is not UTF-8, the directory could not be listed or a leftover `.tmp`
    /// deleted (found before the active file is opened or truncated: it is left as it was),
    /// or the file could not be opened.
    ///
    /// ```
    /// use logxide::sink::RotateOptions;
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = RotateOptions::new().max_bytes(1 << 20);
    /// let sink = opts.open(dir.path().join("logs/app.log")).unwrap(); // `logs` is created
    /// assert!(sink.is_empty());
    /// // A number for the only extension is refused: `app.1` would rotate to the names of a log `app`.
    /// let err = opts.open(dir.path().join("app.1")).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(!dir.path().join("app.1").exists());
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<RotatingFile> {
        self.check(path.as_ref())?;
        RotatingFile::open_with(self.clone(), path.as_ref())
    }
}

/// How a rotated file's name splits up: `<stem>.<stamp>[.<counter>][.<ext>][.gz|.zst][.tmp]`.
#[derive(Clone, Debug)]
struct Rotated {
    path: PathBuf,
    stamp: u64,
    counter: u32,
    compression: Compression,
    tmp: bool,
}

/// The parts of the active path that rotated names are made from.
#[derive(Clone, Debug)]
struct Naming {
    /// The active file (for errors).
    active: PathBuf,
    dir: PathBuf,
    stem: String,
    ext: Option<String>,
}

impl Naming {
    fn new(path: &Path) -> io::Result<Naming> {
        let name = path.file_name().and_then(OsStr::to_str).ok_or_else(|| {
            let what = match path.file_name() {
                None => "a file name (the path ends in `..`, or is a root or empty)",
                Some(_) => "a UTF-8 file name",
            };
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a rotating log file needs {what}, e.g. app.log: {}",
                    path.display()
                ),
            )
        })?;
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], Some(name[i + 1..].to_owned())),
            _ => (name, None),
        };
        // `app.1` would rotate to `app.<stamp>.1`, the name of the second file a log `app`
        // rotates in a second: nothing would tell whose a file is, and either log's
        // retention could delete the other's. (Only where the stem is itself a name without
        // an extension: `app.log.1` rotates to `app.log.<stamp>.1`, and no log is named so
        // as to rotate to `app.log.<stamp>`.)
        let stem_has_ext = stem.rfind('.').is_some_and(|i| i > 0);
        if let Some(ext) = ext
            .as_deref()
            .filter(|e| is_counter_like(e) && !stem_has_ext)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a rotating log file's extension cannot be a number: its rotated files ({stem}.<stamp>.{ext}) would be named as those of a log {stem}, which could delete them; rename it, e.g. {stem}.{ext}.log: {}",
                    path.display()
                ),
            ));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Naming {
            active: path.to_owned(),
            dir,
            stem: stem.to_owned(),
            ext,
        })
    }

    /// [`scan`](Self::scan)'s error, naming the directory and the log.
    fn cannot_list(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "cannot list the directory {} (for the rotated files of {}): {e}",
                self.dir.display(),
                self.active.display()
            ),
        )
    }

    fn name(&self, stamp: u64, counter: u32) -> String {
        let mut s = format!("{}.{}", self.stem, format_stamp(stamp));
        if counter > 0 {
            s.push_str(&format!(".{counter}"));
        }
        if let Some(ext) = &self.ext {
            s.push('.');
            s.push_str(ext);
        }
        s
    }

    fn parse(&self, dir: &Path, file_name: &str) -> Option<Rotated> {
        let rest = file_name.strip_prefix(&self.stem)?.strip_prefix('.')?;
        let stamp = parse_stamp(rest.get(..15)?)?;
        let rest = &rest[15..];
        // Tried in turn, as the log's own extension may itself be `gz`, `zst` or `tmp`
        // (`app.gz` rotates to `app.<stamp>.gz`, compressed `app.<stamp>.gz.gz`): the
        // extension is always there, so at most one reading fits. Only compression writes a
        // `.tmp`: an uncompressed one is someone else's.
        const READINGS: [(Compression, bool); 5] = [
            (Compression::None, false),
            (Compression::Gzip, false),
            (Compression::Zstd, false),
            (Compression::Gzip, true),
            (Compression::Zstd, true),
        ];
        READINGS.iter().find_map(|&(compression, tmp)| {
            let rest = match tmp {
                true => rest.strip_suffix(".tmp")?,
                false => rest,
            };
            let rest = match compression.extension() {
                Some(ext) => rest.strip_suffix(ext)?.strip_suffix('.')?,
                None => rest,
            };
            let rest = match &self.ext {
                Some(ext) => rest.strip_suffix(ext.as_str())?.strip_suffix('.')?,
                None => rest,
            };
            let counter = if rest.is_empty() {
                0
            } else {
                let digits = rest.strip_prefix('.')?;
                // The sink writes counters from 1, without leading zeros: `.0` and `.01` are
                // someone else's files (and would stand for the same file as another name).
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()?
            };
            Some(Rotated {
                path: dir.join(file_name),
                stamp,
                counter,
                compression,
                tmp,
            })
        })
    }

    /// Whether the file `r` holds what its reading says, where the name alone cannot tell:
    /// a log without an extension (`app`) compresses to `app.<stamp>.gz`, the very name of
    /// an uncompressed rotated file of a log `app.gz` (and `.zst` of `app.zst`). A log's
    /// records are text lines, a compressed file starts with its format's magic number: the
    /// first bytes tell them apart. A file that cannot be read is left out (in doubt, the
    /// file is not this log's to delete or compress). One `open` and `read` per such file;
    /// nothing for every other name.
    fn holds_as_named(&self, r: &Rotated) -> bool {
        if r.tmp {
            return true;
        }
        let (format, compressed) = match (&self.ext, r.compression) {
            (None, Compression::None) => return true,
            (None, c) => (c, true),
            (Some(ext), Compression::None) => match ext.as_str() {
                "gz" => (Compression::Gzip, false),
                "zst" => (Compression::Zstd, false),
                _ => return true,
            },
            (Some(_), _) => return true,
        };
        starts_with_magic(&r.path, format) == Some(compressed)
    }

    /// Every rotated file (and leftover `.tmp`) of this log, oldest first: the files named
    /// as the sink names them, regular files, whose first bytes agree with their name
    /// ([`holds_as_named`](Self::holds_as_named)).
    fn scan(&self) -> io::Result<Vec<Rotated>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(r) = self.parse(&self.dir, name) {
                // Another log's active file may be named like a rotated file of this one:
                // one a sink of this process writes is never this log's to delete or
                // compress (one `lstat` per rotated file).
                let ours = entry.file_type().is_ok_and(|t| t.is_file())
                    && !entry.metadata().is_ok_and(|m| is_open_by_a_sink(&m))
                    && self.holds_as_named(&r);
                if ours {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| {
            (a.stamp, a.counter, a.compression as u8, a.tmp).cmp(&(
                b.stamp,
                b.counter,
                b.compression as u8,
                b.tmp,
            ))
        });
        Ok(out)
    }
}

/// The rotated files of the log whose active file is `path`, oldest first (by rotation
/// timestamp, then counter). Temporary files are left out; when a file exists both
/// uncompressed and compressed (compression was finishing), only the compressed one is
/// listed. When `path` is a symbolic link, they are those of its destination, next to it
/// (as [`RotatingFile`] rotates them: see
/// [A symbolic link at the path](self#a-symbolic-link-at-the-path)).
///
/// # Errors
/// The directory could not be read (the error names it), a link could not be resolved, or
/// the file name is not UTF-8 or has a number for its extension.
///
/// ```
/// use logxide::sink::{Batch, RotateOptions, Sink};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.log");
/// let mut sink = RotateOptions::new().max_bytes(2).open(&path).unwrap();
/// for r in [b"1\n", b"2\n", b"3\n"] {
///     sink.write_batch(&Batch::new(r, &[2])).unwrap();
/// }
/// let rotated = logxide::sink::rotate::rotated_files(&path).unwrap();
/// let first: Vec<Vec<u8>> = rotated.iter().map(|p| std::fs::read(p).unwrap()).collect();
/// assert_eq!(first, [b"1\n".to_vec(), b"2\n".to_vec()]); // oldest first
/// ```
pub fn rotated_files(path: impl AsRef<Path>) -> io::Result<Vec<PathBuf>> {
    let naming = Naming::new(&resolve_links(path.as_ref())?)?;
    let mut out: Vec<Rotated> = Vec::new();
    let files = naming.scan().map_err(|e| naming.cannot_list(e))?;
    for r in files.into_iter().filter(|r| !r.tmp) {
        match out.last_mut() {
            Some(last) if (last.stamp, last.counter) == (r.stamp, r.counter) => {
                if last.compression == Compression::None {
                    *last = r;
                }
            }
            _ => out.push(r),
        }
    }
    Ok(out.into_iter().map(|r| r.path).collect())
}

/// Whether a name part is all digits, as the counter of a rotated name is (with or without
/// leading zeros: what the sink would never write still looks like one of its names).
fn is_counter_like(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the file at `path` starts with the magic number of `compression` (gzip
/// `1f 8b`, zstd `28 b5 2f fd`); `None` when it cannot be read.
fn starts_with_magic(path: &Path, compression: Compression) -> Option<bool> {
    let magic: &[u8] = match compression {
        Compression::Gzip => &[0x1f, 0x8b],
        Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
        Compression::None => return Some(false),
    };
    let mut head = [0u8; 4];
    let n = read_full(&mut File::open(path).ok()?, &mut head[..magic.len()]).ok()?;
    Some(head[..n] == *magic)
}

/// `YYYYmmddTHHMMSS` in UTC.
fn format_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn parse_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 15 || b[8] != b'T' {
        return None;
    }
    if !b[..8].iter().chain(&b[9..]).all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + se);
    let secs = u64::try_from(secs).ok()?;
    // A day that does not exist (`20240230`) is no stamp the sink wrote.
    (format_stamp(secs) == s).then_some(secs)
}

/// `path` with `.suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// How many symbolic links [`resolve_links`] follows before giving up (Linux's
/// `MAXSYMLINKS`, so a chain the kernel would open is resolved).
const MAX_LINKS: usize = 40;

/// `path` with the symbolic links at its last component followed, as `open(2)` follows
/// them (a relative link from its own directory): the file a rotating file writes, renames
/// and rotates next to. A path that is not a link is itself; the end of a dangling chain is
/// the missing file it names (the open creates it). Directories on the way are left as they
/// are (the kernel resolves them; nothing here is normalized, so `..` means what it means
/// to the kernel).
///
/// # Errors
/// A link could not be read, something on the way could not be looked at (other than
/// missing), or more than [`MAX_LINKS`] links (`ELOOP`, naming the path).
pub(crate) fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_owned();
    for _ in 0..=MAX_LINKS {
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = fs::read_link(&at).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot read the symbolic link {}: {e}", at.display()),
                    )
                })?;
                at = match at.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(_) => return Ok(at),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(at),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot resolve {}: {e}", at.display()),
                ))
            }
        }
    }
    let e = io::Error::from_raw_os_error(libc::ELOOP);
    Err(io::Error::new(
        e.kind(),
        format!(
            "cannot resolve {}: more than {MAX_LINKS} symbolic links: {e}",
            path.display()
        ),
    ))
}

/// Renames `from` to `to` without ever replacing a file at `to` (another process logging to
/// the same file may have rotated to that name, or created the active file again, with
/// records of its own): a hard link fails on an existing name, and only then is `from`
/// removed. Where the file system has no hard links, a rename, made only if nothing is at
/// `to` just before. Fails (`AlreadyExists`) when `to` is taken: `from` stays where it is.
/// A crash between the link and the removal leaves both names; the next open removes the
/// active one (see [`RotatingFile`]'s open).
fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).inspect_err(|_| {
            // Two names for one file: back to the rotated name alone.
            let _ = fs::remove_file(to);
        }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => match fs::symlink_metadata(to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(from, to),
            Err(e) => Err(e),
            Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        },
    }
}

/// Deletes `path`; one already gone is not an error.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Compresses `src` into `<src>.<ext>` through `<src>.<ext>.tmp`, then deletes `src`.
///
/// A `src` that is gone (deleted by someone after its rotation) is skipped: nothing the sink
/// wrote is lost by it, so it is not an error.
fn compress_file(src: &Path, compression: Compression) -> io::Result<()> {
    let Some(ext) = compression.extension() else {
        return Ok(());
    };
    let dest = with_suffix(src, ext);
    let mut input = match File::open(src) {
        Ok(input) => input,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let meta = input.metadata()?;
    if is_open_by_a_sink(&meta) {
        // Another log's active file under a rotated name (opened since the job was queued):
        // compressing it would delete the file its sink writes. Not this log's.
        return Ok(());
    }
    if fs::symlink_metadata(&dest).is_ok() {
        // An earlier run renamed the complete compressed file, then stopped before deleting
        // the original — if that is what it holds: anything else at the name (a link,
        // someone else's file) is left, and so are the records.
        if holds_compressed(&dest, &mut input, compression)? {
            return remove_if_present(src);
        }
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and does not hold {} compressed: both kept",
                dest.display(),
                src.display()
            ),
        ));
    }
    let tmp = with_suffix(&dest, "tmp");
    // The compressed file gets the rotated file's mode (the log's configured permissions),
    // from its creation on: never more readable than the records were. It is created new
    // (`O_EXCL`): whatever is at the name already — a link planted in a shared directory,
    // say — is neither written through nor truncated, nor removed (the open removes the
    // sink's own leftovers).
    let permissions = meta.permissions();
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(permissions.mode() & 0o777)
        .open(&tmp)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", tmp.display())))?;
    let result = (|| {
        out.set_permissions(permissions)?;
        let file = match compression {
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    BufWriter::with_capacity(64 * 1024, out),
                    flate2::Compression::default(),
                );
                io::copy(&mut input, &mut enc)?;
                enc.finish()?.into_inner().map_err(|e| e.into_error())?
            }
            Compression::Zstd => {
                let mut enc =
                    zstd::stream::write::Encoder::new(BufWriter::with_capacity(64 * 1024, out), 3)?;
                io::copy(&mut input, &mut enc)?;
                enc.finish()?.into_inner().map_err(|e| e.into_error())?
            }
            Compression::None => unreachable!("checked above"),
        };
        file.sync_all()?;
        fs::rename(&tmp, &dest)?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
        remove_if_present(src)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `dest` is a regular file (not a link) whose content, decompressed, is exactly
/// `original`'s (read from where it is). A file that does not decompress holds something
/// else.
fn holds_compressed(
    dest: &Path,
    original: &mut File,
    compression: Compression,
) -> io::Result<bool> {
    use std::io::Read;
    if !fs::symlink_metadata(dest)?.is_file() {
        return Ok(false);
    }
    let file = io::BufReader::new(File::open(dest)?);
    let mut decoded: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
        Compression::None => return Ok(false),
    };
    let mut original = io::BufReader::new(original);
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        // Any failure to decode (not gzip or zstd, cut short, unreadable) is doubt: the
        // rotated file is kept.
        let Ok(n) = read_full(&mut decoded, &mut a) else {
            return Ok(false);
        };
        let m = read_full(&mut original, &mut b[..n.max(1)])?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads into `buf` until it is full or the reader ends; returns how many bytes.
fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

enum Job {
    Compress(PathBuf),
    /// A retention pass over the rotated files of this naming (the active file's, which a
    /// retargeted symbolic link changes).
    Retain(Naming),
}

/// State shared with the background thread.
struct Shared {
    /// Jobs queued and not finished.
    pending: Mutex<usize>,
    idle: Condvar,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, what: String) {
        self.errors.fetch_add(1, SeqCst);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
    }
}

struct Background {
    tx: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts the background thread of a log.
    fn start(opts: &RotateOptions, shared: &Arc<Shared>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let worker = Worker {
            compression: opts.compression,
            keep: opts.keep,
            max_age: opts.max_age,
            clock: Arc::clone(&opts.clock),
            shared: Arc::clone(shared),
        };
        let thread = std::thread::Builder::new()
            .name("logxide-rotate".into())
            .spawn(move || worker.run(rx, done_tx))?;
        Ok(Background {
            tx: Some(tx),
            done,
            thread: Some(thread),
        })
    }
}

/// The time-rotation period of the records of `file`, opened appending: that of its
/// modification time at the open (before the repair of a torn last line, which changes it to
/// now, could hide their period), or of `now` when that is earlier (the clock stepped back),
/// when it is unknown, or when the file holds no record. `0` without time rotation.
fn records_period(opts: &RotateOptions, file: &FileSink, now: u64) -> u64 {
    let Some(period) = opts.every else {
        return 0;
    };
    let start = match file.found_modified() {
        Some(modified) if !file.is_empty() => now.min(unix_secs(modified)),
        _ => now,
    };
    start / period.seconds()
}

/// Removes the `.tmp` leftovers among `files` (the scan of an open); returns the jobs of the
/// open: uncompressed rotated files to compress again (when compression is on), and a
/// retention pass (when retention is on).
fn recovery_jobs(files: &[Rotated], naming: &Naming, opts: &RotateOptions) -> io::Result<Vec<Job>> {
    // Every `.tmp` goes before any compression starts (it would write one).
    for r in files.iter().filter(|r| r.tmp) {
        match fs::remove_file(&r.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot delete the leftover {}: {e}", r.path.display()),
                ))
            }
        }
    }
    let compress = opts.compression != Compression::None;
    let mut jobs: Vec<Job> = files
        .iter()
        .filter(|r| compress && !r.tmp && r.compression == Compression::None)
        .map(|r| Job::Compress(r.path.clone()))
        .collect();
    if opts.keep.is_some() || opts.max_age.is_some() {
        jobs.push(Job::Retain(naming.clone()));
    }
    Ok(jobs)
}

/// A crash between the two steps of a rotation's [`move_no_replace`] leaves the active file
/// with a second name, its rotated one: the rotation is finished by removing the active
/// name (before the open, which in mode `w` would truncate the rotated file's records).
fn unlink_half_rotated(active: &Path, files: &[Rotated]) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(active) else {
        return Ok(());
    };
    if !meta.is_file() || meta.nlink() < 2 {
        return Ok(());
    }
    let rotated_name = files.iter().filter(|r| !r.tmp).any(|r| {
        fs::symlink_metadata(&r.path).is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()))
    });
    if rotated_name {
        remove_if_present(active).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot finish the rotation of {} (it is also a rotated file): {e}",
                    active.display()
                ),
            )
        })?;
    }
    Ok(())
}

/// What the background thread needs.
struct Worker {
    compression: Compression,
    keep: Option<usize>,
    max_age: Option<Duration>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self, rx: mpsc::Receiver<Job>, done: mpsc::Sender<()>) {
        for job in rx {
            match job {
                Job::Compress(path) => {
                    if let Err(e) = compress_file(&path, self.compression) {
                        self.shared
                            .fail(format!("cannot compress {}: {e}", path.display()));
                    }
                }
                Job::Retain(naming) => {
                    if let Err(e) = self.retain(&naming) {
                        self.shared.fail(format!("retention: {e}"));
                    }
                }
            }
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *pending -= 1;
            if *pending == 0 {
                self.shared.idle.notify_all();
            }
        }
        let _ = done.send(());
    }

    fn retain(&self, naming: &Naming) -> io::Result<()> {
        let files = naming.scan().map_err(|e| naming.cannot_list(e))?;
        let files: Vec<Rotated> = files.into_iter().filter(|r| !r.tmp).collect();
        // One logical file may exist twice (compressed and not) while compression finishes.
        let mut keys: Vec<(u64, u32)> = files.iter().map(|r| (r.stamp, r.counter)).collect();
        keys.dedup();
        let now = unix_secs(self.clock.now());
        let mut doomed: Vec<(u64, u32)> = Vec::new();
        if let Some(keep) = self.keep {
            let excess = keys.len().saturating_sub(keep);
            doomed.extend_from_slice(&keys[..excess]);
        }
        if let Some(age) = self.max_age {
            doomed.extend(
                keys.iter()
                    .filter(|(stamp, _)| now.saturating_sub(*stamp) > age.as_secs())
                    .copied(),
            );
        }
        for r in files {
            if doomed.contains(&(r.stamp, r.counter)) {
                match fs::remove_file(&r.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => self
                        .shared
                        .fail(format!("cannot delete {}: {e}", r.path.display())),
                }
            }
        }
        Ok(())
    }
}

/// The longest wait between two attempts of a rotation that keeps failing, in seconds.
const MAX_RETRY_WAIT: u64 = 60;

/// A failed rotation, and when the next may be tried: a rotation lists the directory, syncs
/// and renames, which a failing one (a read-only directory, say) would do again for every
/// batch. The next attempt waits 1 s after a failure, twice as long after each failure in
/// a row, at most [`MAX_RETRY_WAIT`]; a success forgets it.
#[derive(Debug)]
struct Retry {
    /// When the last attempt failed (Unix seconds, on the sink's clock).
    failed_at: u64,
    /// Seconds after `failed_at` before the next attempt.
    wait: u64,
    /// The last attempt's error (the batches that do not try again report it).
    kind: io::ErrorKind,
    error: String,
}

impl Retry {
    /// Whether an attempt at `now` must wait. A clock that stepped back to before the
    /// failure does not postpone the next attempt (by hours, or years).
    fn waits(&self, now: u64) -> bool {
        now >= self.failed_at && now < self.failed_at.saturating_add(self.wait)
    }

    /// When the next attempt may be made.
    fn at(&self) -> u64 {
        self.failed_at.saturating_add(self.wait)
    }
}

/// A log file that rotates by size and/or time, with retention and compression of the
/// rotated files. Open one with [`RotateOptions::open`]; see the [module docs](self).
///
/// Through a symbolic link at the path, the link's destination (resolved at open) is the
/// active file: it is rotated next to itself and recreated at its path, the link is kept
/// and points at the new file ([`file`](Self::file); see
/// [A symbolic link at the path](self#a-symbolic-link-at-the-path)).
///
/// ```
/// use logxide::sink::RotateOptions;
/// use logxide::writer::Writer;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.log");
/// let sink = RotateOptions::new().max_bytes(4).open(&path).unwrap();
/// let writer = Writer::builder().sink(sink).build().unwrap();
/// for r in [b"a", b"b", b"c"] {
///     writer.handle().enqueue(r).unwrap();
/// }
/// writer.shutdown(None);
/// let rotated = logxide::sink::rotate::rotated_files(&path).unwrap();
/// let mut all = Vec::new();
/// for p in rotated.iter().chain([&path]) {
///     all.extend(std::fs::read(p).unwrap());
/// }
/// assert_eq!(all, b"a\nb\nc\n"); // every record once, in order
/// ```
pub struct RotatingFile {
    inner: FileSink,
    /// The path given to open (maybe a symbolic link).
    path: PathBuf,
    /// The active file: `path` with its symbolic links resolved at open or, when a link was
    /// retargeted, at the batch that followed it (`path` itself when it is no link). What is
    /// renamed, reopened and stat'ed.
    file: PathBuf,
    name: String,
    naming: Naming,
    opts: RotateOptions,
    /// The time-rotation period the active file belongs to.
    period: u64,
    /// Timestamp of the last rotation (names never go back in time).
    last_stamp: u64,
    /// The lowest counter a rotation at `last_stamp` may use (one above the last used).
    next_counter: u32,
    rotations: u64,
    rotation_failures: u64,
    /// After a failed rotation: when the next may be tried (see [`Retry`]).
    retry: Option<Retry>,
    shared: Arc<Shared>,
    /// How many of the background thread's errors were reported to the writer (by a batch,
    /// flush or close): the ones after are reported by the next.
    background_reported: u64,
    background: Option<Background>,
}

impl fmt::Debug for RotatingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingFile")
            .field("path", &self.path)
            .field("file", &self.file)
            .field("options", &self.opts)
            .field("len", &self.inner.len())
            .field("rotations", &self.rotations)
            .field("rotation_failures", &self.rotation_failures)
            .finish_non_exhaustive()
    }
}

impl RotatingFile {
    fn open_with(opts: RotateOptions, path: &Path) -> io::Result<RotatingFile> {
        // The file written and rotated: a symbolic link's destination (resolved once, here),
        // so that a rotation renames the destination next to it and the link stays. With
        // links not followed, a link is refused before the scan below deletes anything.
        let file = if opts.file.follows_symlinks() {
            resolve_links(path)?
        } else {
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                let e = io::Error::from_raw_os_error(libc::ELOOP);
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open log file {}: it is a symbolic link, refused: follow_symlinks is off, the file is opened with O_NOFOLLOW (os error {})",
                        path.display(),
                        libc::ELOOP
                    ),
                ));
            }
            path.to_owned()
        };
        let naming = Naming::new(&file)?;
        // Everything that can fail comes before the open, which truncates the active file in
        // mode `w`: a failure leaves the file as it was. First the directory scan (a missing
        // directory has nothing to recover: the open creates it, or reports it), then the
        // removal of `.tmp` leftovers (harmless if the open fails after: each is an
        // unfinished copy of a rotated file that is still there) and the background thread,
        // when there is work for it. Its jobs are queued only once the file is open:
        // retention deletes rotated files, not for a sink that could not be opened.
        let files = match naming.scan() {
            Ok(files) => files,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(naming.cannot_list(e)),
        };
        let jobs = recovery_jobs(&files, &naming, &opts)?;
        unlink_half_rotated(&file, &files)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(0),
            idle: Condvar::new(),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let background = match jobs.is_empty() {
            true => None,
            false => Some(Background::start(&opts, &shared)?),
        };
        if opts.clean {
            // Last, right before the open: nothing left to fail but the open itself.
            remove_if_present(&file)?;
        }
        let inner = opts.file.open(&file)?;
        let now = unix_secs(opts.clock.now());
        let period = match opts.file.open_mode {
            OpenMode::Append => records_period(&opts, &inner, now),
            OpenMode::Truncate => opts.every.map_or(0, |p| now / p.seconds()),
        };
        let mut sink = RotatingFile {
            inner,
            path: path.to_owned(),
            file,
            name: path.display().to_string(),
            naming,
            period,
            last_stamp: files.iter().map(|r| r.stamp).max().unwrap_or(0),
            next_counter: 0,
            rotations: 0,
            rotation_failures: 0,
            retry: None,
            shared,
            background_reported: 0,
            background,
            opts,
        };
        for job in jobs {
            sink.queue(job)?;
        }
        Ok(sink)
    }

    /// Hands a job to the background thread, starting it the first time.
    fn queue(&mut self, job: Job) -> io::Result<()> {
        if self.background.is_none() {
            self.background = Some(Background::start(&self.opts, &self.shared)?);
        }
        let bg = self.background.as_ref().expect("started above");
        let Some(tx) = &bg.tx else {
            return Err(io::Error::other("the rotating file is closed"));
        };
        *self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner()) += 1;
        if tx.send(job).is_err() {
            *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()) -= 1;
            return Err(io::Error::other("the compression thread has stopped"));
        }
        Ok(())
    }

    /// The path the file was opened with (a symbolic link stays one: see
    /// [`file`](Self::file)).
    ///
    /// ```
    /// use logxide::sink::RotateOptions;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let sink = RotateOptions::new().open(&path).unwrap();
    /// assert_eq!(sink.path(), path);
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The active file: [`path`](Self::path), or when that is a symbolic link, the file the
    /// link chain led to at open (or at a later batch, when the link was retargeted) — the
    /// one written, rotated and recreated, next to which the rotated files are.
    ///
    /// ```
    /// use logxide::sink::RotateOptions;
    /// let dir = tempfile::tempdir().unwrap();
    /// let real = dir.path().join("real.log");
    /// let link = dir.path().join("app.log");
    /// std::os::unix::fs::symlink(&real, &link).unwrap();
    /// let sink = RotateOptions::new().max_bytes(1 << 20).open(&link).unwrap();
    /// assert_eq!((sink.path(), sink.file()), (link.as_path(), real.as_path()));
    /// ```
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Bytes in the active file.
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().max_bytes(4).open(dir.path().join("app.log")).unwrap();
    /// sink.write_batch(&Batch::new(b"ab\n", &[3])).unwrap();
    /// assert_eq!(sink.len(), 3);
    /// sink.write_batch(&Batch::new(b"c\n", &[2])).unwrap(); // rotates first
    /// assert_eq!(sink.len(), 2);
    /// ```
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// True when the active file holds no record.
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().open(dir.path().join("app.log")).unwrap();
    /// assert!(sink.is_empty());
    /// sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
    /// assert!(!sink.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Rotations done since open.
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().max_bytes(2).open(dir.path().join("app.log")).unwrap();
    /// sink.write_batch(&Batch::new(b"1\n2\n3\n", &[2, 4, 6])).unwrap();
    /// assert_eq!(sink.rotations(), 2);
    /// ```
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Rotations that failed since open (the records went on into the current file): the
    /// attempts, not the batches that waited after one (see [Errors](self#errors)).
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().max_bytes(2).open(dir.path().join("app.log")).unwrap();
    /// sink.write_batch(&Batch::new(b"1\n2\n", &[2, 4])).unwrap();
    /// assert_eq!((sink.rotations(), sink.rotation_failures()), (1, 0));
    /// ```
    pub fn rotation_failures(&self) -> u64 {
        self.rotation_failures
    }

    /// How many times a directory was synced for the active files (with durability on:
    /// creations, rotations). For tests.
    #[doc(hidden)]
    pub fn directory_syncs(&self) -> u64 {
        self.inner.directory_syncs()
    }

    /// Compressions and deletions that failed on the background thread, and the last error
    /// (each also reported once to the writer, by the next batch, flush or close: see
    /// [Compression and retention](self#compression-and-retention)).
    ///
    /// ```
    /// use logxide::sink::{Batch, Compression, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new()
    ///     .max_bytes(2)
    ///     .compress(Compression::Gzip)
    ///     .open(dir.path().join("app.log"))
    ///     .unwrap();
    /// sink.write_batch(&Batch::new(b"1\n2\n", &[2, 4])).unwrap();
    /// sink.close().unwrap();
    /// assert_eq!(sink.background_errors(), (0, None)); // compressed without an error
    /// ```
    pub fn background_errors(&self) -> (u64, Option<String>) {
        (
            self.shared.errors.load(SeqCst),
            self.shared
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// The rotated files, oldest first (see [`rotated_files`]).
    ///
    /// # Errors
    /// The directory could not be read.
    ///
    /// ```
    /// use logxide::sink::{Batch, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new().max_bytes(2).open(dir.path().join("app.log")).unwrap();
    /// assert!(sink.rotated_files().unwrap().is_empty());
    /// sink.write_batch(&Batch::new(b"1\n2\n", &[2, 4])).unwrap();
    /// assert_eq!(sink.rotated_files().unwrap().len(), 1);
    /// ```
    pub fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        rotated_files(&self.file)
    }

    /// Waits until the background thread has finished the work queued so far, at most
    /// `timeout`. Returns whether it has.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::{Batch, Compression, RotateOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = RotateOptions::new()
    ///     .max_bytes(2)
    ///     .compress(Compression::Gzip)
    ///     .open(dir.path().join("app.log"))
    ///     .unwrap();
    /// sink.write_batch(&Batch::new(b"1\n2\n", &[2, 4])).unwrap();
    /// assert!(sink.wait_idle(Duration::from_secs(30))); // the compression is done
    /// assert!(sink.rotated_files().unwrap()[0].to_str().unwrap().ends_with(".gz"));
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (pending, _) = self
            .shared
            .idle
            .wait_timeout_while(pending, timeout, |p| *p > 0)
            .unwrap_or_else(|e| e.into_inner());
        *pending == 0
    }

    /// The name (and its counter) for a rotation at `stamp`: the counter is above every
    /// counter of that timestamp in the directory (rotated, compressed or temporary files)
    /// and above the last one this sink used for it, so no rotated file is overwritten and
    /// the new one sorts after every file of the same second, even when retention has
    /// deleted the older ones.
    fn rotation_target(&self, stamp: u64) -> io::Result<(PathBuf, u32)> {
        let no_counter_left = || {
            io::Error::other(format!(
                "cannot rotate {}: no counter left for timestamp {}",
                self.file.display(),
                format_stamp(stamp)
            ))
        };
        let mut counter = if stamp == self.last_stamp {
            self.next_counter
        } else {
            0
        };
        let files = self.naming.scan().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot rotate {}: cannot list the directory {}: {e}",
                    self.file.display(),
                    self.naming.dir.display()
                ),
            )
        })?;
        for r in files {
            if r.stamp == stamp {
                counter = counter.max(r.counter.checked_add(1).ok_or_else(no_counter_left)?);
            }
        }
        // Something the scan does not list (a directory, a file created since) may still
        // hold the name.
        loop {
            let candidate = self.naming.dir.join(self.naming.name(stamp, counter));
            let taken = [None, Some("gz"), Some("zst")].iter().any(|ext| {
                let p = match ext {
                    Some(e) => with_suffix(&candidate, e),
                    None => candidate.clone(),
                };
                p.symlink_metadata().is_ok() || with_suffix(&p, "tmp").symlink_metadata().is_ok()
            });
            if !taken {
                return Ok((candidate, counter));
            }
            counter = counter.checked_add(1).ok_or_else(no_counter_left)?;
        }
    }

    /// Gives the active file its rotated name for `stamp` (the next free counter): returns
    /// that name and its counter. On error the file is where it was, at its path.
    fn move_aside(&mut self, stamp: u64) -> io::Result<(PathBuf, u32)> {
        self.inner
            .sync_before_rotation()
            .map_err(|e| self.cannot_rotate(e))?;
        let mut tries = 0;
        loop {
            let (target, counter) = self.rotation_target(stamp)?;
            match move_no_replace(&self.file, &target) {
                Ok(()) => return Ok((target, counter)),
                // Taken since the scan (another process rotated to it): the next counter.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => {
                    tries += 1;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot rotate {} to {}: {e}",
                            self.file.display(),
                            target.display()
                        ),
                    ))
                }
            }
        }
    }

    /// `e` as the reason a rotation of the active file failed.
    fn cannot_rotate(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("cannot rotate {}: {e}", self.file.display()),
        )
    }

    /// The error of a rotation that failed with the file still at its path: it says what
    /// that means for the records (none lost; the file is over its limit until a rotation
    /// succeeds; the caller adds when it is tried again: see [Errors](self#errors)).
    fn unrotated(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "{e}; the batch went on into {}, unrotated: it grows past its limit until a rotation succeeds",
                self.file.display()
            ),
        )
    }

    /// Renames the active file (a symbolic link's destination, never the link) and opens a
    /// new one at its path.
    ///
    /// # Errors
    /// The rotation failed: the error says why and where the batch goes on (the current
    /// file, unrotated; or the rotated file, when it could not be put back).
    fn rotate(&mut self, now: u64) -> io::Result<()> {
        let stamp = now.max(self.last_stamp);
        let (target, counter) = self.move_aside(stamp).map_err(|e| self.unrotated(e))?;
        // Append, not truncate: never destroy what another process may have put at the
        // path since the rename (as when following a file moved away).
        let fresh = self.opts.file.clone().open_mode(OpenMode::Append);
        match fresh.open(&self.file) {
            Ok(file) => self.inner.replace_with(file),
            Err(e) => {
                let e = self.cannot_rotate(e);
                // Put the file back so the records keep going where they are expected. If
                // something took the path meanwhile, it is kept: the rotated file stays
                // rotated (its name used), the records go on into it through the open
                // descriptor, and the next batch follows the file at the path.
                if let Err(back) = move_no_replace(&target, &self.file) {
                    self.last_stamp = stamp;
                    self.next_counter = counter.saturating_add(1);
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{e}; the rotated file stays {} (not put back: {back}), and the batch went on into it",
                            target.display()
                        ),
                    ));
                }
                return Err(self.unrotated(e));
            }
        }
        // With durability on, the rename is made durable with the next batch: the
        // directory is synced then (an error is that batch's).
        self.inner
            .directory_changed(&self.naming.dir, DirChange::Rotated);
        self.last_stamp = stamp;
        self.next_counter = counter.saturating_add(1);
        self.rotations += 1;
        // The rotation is done: work that cannot be queued (the thread could not be started)
        // is a background error, the rotated file left uncompressed for the next open.
        let mut jobs = Vec::new();
        if self.opts.compression != Compression::None {
            jobs.push(Job::Compress(target.clone()));
        }
        if self.opts.keep.is_some() || self.opts.max_age.is_some() {
            jobs.push(Job::Retain(self.naming.clone()));
        }
        for job in jobs {
            if let Err(e) = self.queue(job) {
                self.shared.fail(format!(
                    "cannot queue the compression or retention after the rotation to {}: {e}",
                    target.display()
                ));
            }
        }
        Ok(())
    }

    /// A symbolic link at the path that now leads elsewhere (retargeted, or replaced by a
    /// file) is followed: its new destination, opened appending, becomes the active file
    /// (see [A symbolic link at the path](self#a-symbolic-link-at-the-path)). One `lstat`
    /// per batch (and a `readlink` per link); nothing without
    /// [`FileOptions::reopen_if_moved`] or with links not followed. A path that cannot be
    /// resolved now keeps the current file. On error the current file stays active.
    fn follow_link(&mut self) -> io::Result<()> {
        if !self.opts.file.reopens_if_moved() || !self.opts.file.follows_symlinks() {
            return Ok(());
        }
        let Ok(dest) = resolve_links(&self.path) else {
            return Ok(());
        };
        if dest == self.file {
            return Ok(());
        }
        let naming = Naming::new(&dest)?;
        let fresh = self.opts.file.clone().open_mode(OpenMode::Append);
        self.inner.replace_with(fresh.open(&dest)?);
        // An existing file appended to, as at open: its records' period is its own, so one
        // from an earlier period is rotated before the batch goes into it.
        let now = unix_secs(self.opts.clock.now());
        self.period = records_period(&self.opts, &self.inner, now);
        // Names never go back in time, in the new directory either.
        if let Ok(files) = naming.scan() {
            let newest = files.iter().map(|r| r.stamp).max().unwrap_or(0);
            self.last_stamp = self.last_stamp.max(newest);
        }
        self.file = dest;
        self.naming = naming;
        Ok(())
    }

    /// The background thread's errors not yet reported to the writer, as one error (how
    /// many, what they mean for the records, the last one's text); `None` if there are none.
    fn unreported_background_errors(&mut self) -> Option<io::Error> {
        let (errors, last) = self.background_errors();
        let new = errors
            .checked_sub(self.background_reported)
            .filter(|&n| n > 0)?;
        self.background_reported = errors;
        let plural = if new == 1 { "" } else { "s" };
        Some(io::Error::other(format!(
            "{new} new error{plural} in the background work on the rotated files of {} (compression, retention; no record written is affected, an uncompressed file is compressed by the next open); the last: {}",
            self.name,
            last.unwrap_or_default()
        )))
    }

    /// `Err` with the background errors not yet reported.
    fn report_background(&mut self) -> io::Result<()> {
        self.unreported_background_errors().map_or(Ok(()), Err)
    }

    /// [`rotate`](Self::rotate), unless the last one failed too recently to try again (see
    /// [`Retry`]): then nothing is tried — no scan, sync or rename — and the error says when
    /// it will be, and why the last attempt failed. On error (either) the batch goes on
    /// into the current file, unrotated; the first error of the batch is kept in `first`.
    fn rotate_or_wait(&mut self, now: u64, first: &mut Option<io::Error>) -> bool {
        if let Some(retry) = self.retry.as_ref().filter(|r| r.waits(now)) {
            let error = io::Error::new(
                retry.kind,
                format!(
                    "the rotation of {f} is not tried again before {at} UTC: the batch went on into {f}, unrotated; the last attempt failed: {last}",
                    f = self.file.display(),
                    at = format_stamp(retry.at()),
                    last = retry.error
                ),
            );
            first.get_or_insert(error);
            return false;
        }
        let Err(e) = self.rotate(now) else {
            self.retry = None;
            return true;
        };
        let wait = match &self.retry {
            Some(last) => last.wait.saturating_mul(2).min(MAX_RETRY_WAIT),
            None => 1,
        };
        let e = io::Error::new(
            e.kind(),
            format!(
                "{e} (tried again by the first batch from {} UTC on, {wait} s after this failure: the wait doubles with each failure in a row, up to {MAX_RETRY_WAIT} s)",
                format_stamp(now.saturating_add(wait))
            ),
        );
        self.retry = Some(Retry {
            failed_at: now,
            wait,
            kind: e.kind(),
            error: e.to_string(),
        });
        self.rotation_failures += 1;
        first.get_or_insert(e);
        false
    }

    /// Stops the background thread after its queued work, waiting at most the close timeout.
    fn finish_background(&mut self) -> io::Result<()> {
        let Some(bg) = &mut self.background else {
            return Ok(());
        };
        if bg.thread.is_none() {
            // Finished, or left to finish on its own by a close that timed out: the drop
            // after that close does not wait a second time.
            return Ok(());
        }
        bg.tx = None;
        match bg.done.recv_timeout(self.opts.close_timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = bg.thread.take() {
                    let _ = t.join();
                }
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bg.thread = None;
                let message = format!(
                    "compression of rotated files of {} still running after {:?}; it goes on in the background",
                    self.name, self.opts.close_timeout
                );
                Err(io::Error::new(io::ErrorKind::TimedOut, message))
            }
        }
    }
}

impl Sink for RotatingFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Rotations are decided on the file at the path (a link's destination): one moved
        // away or replaced by another tool is followed first, not judged by the descriptor
        // left behind.
        // The error the batch reports (its records all written): a link that could not be
        // followed, or a rotation that failed. Only the latter stops rotations for the rest
        // of the batch (another attempt would fail the same way); a link not followed leaves
        // the current file active, rotated by size and time as without following.
        let mut failed: Option<io::Error> = self.follow_link().err();
        let mut rotation_failed = false;
        let followed = self.inner.follow_path();
        if let Ok(true) = followed {
            // A file another tool put at the path is an appended file too: its records'
            // period is its own (one from an earlier period is rotated first).
            let now = unix_secs(self.opts.clock.now());
            self.period = records_period(&self.opts, &self.inner, now);
        }
        if let Err(reopen) = followed {
            // Moved away, and the path cannot be opened again: as a plain file sink does, the
            // batch goes into the moved file if it still has a name (not rotated: a rotation
            // opens a new file at that path), else it fails.
            let moved = self.inner.moved_error(&reopen);
            let Some(error) = moved else {
                return Err(SinkError::new(reopen));
            };
            failed.get_or_insert(error);
            rotation_failed = true;
        }
        let now = unix_secs(self.opts.clock.now());
        let mut unsynced: Option<io::Error> = None;
        if let Some(p) = self.opts.every.filter(|_| !rotation_failed) {
            let period = now / p.seconds();
            if period > self.period {
                // A file holding no record is never rotated: it starts the new period.
                if self.inner.is_empty() || self.rotate_or_wait(now, &mut failed) {
                    self.period = period;
                } else {
                    rotation_failed = true;
                }
            } else if period < self.period {
                // The clock stepped back: the boundaries are those of the time it shows now,
                // not of one it may not reach again for hours (or years).
                self.period = period;
            }
        }
        let mut done = 0;
        while done < batch.len() {
            let rest = batch.skip(done);
            let n = match self.opts.max_bytes {
                None => rest.len(),
                Some(_) if rotation_failed => rest.len(),
                Some(max) => {
                    // A torn line is ended with `\n` before the next record: it counts.
                    let room = max.saturating_sub(self.inner.next_record_at());
                    let fit = rest.records_within(usize::try_from(room).unwrap_or(usize::MAX));
                    if fit > 0 {
                        fit
                    } else if self.inner.is_empty() {
                        // A single record larger than the limit: alone in its file.
                        1
                    } else if self.rotate_or_wait(now, &mut failed) {
                        continue;
                    } else {
                        // Never a record dropped for the limit: the rest of the batch goes
                        // into the current file, over `max_bytes`; a later batch tries the
                        // rotation again.
                        rotation_failed = true;
                        rest.len()
                    }
                }
            };
            if let Err(e) = self.inner.write_followed(&rest.take(n)) {
                if e.written < n {
                    // The failed write is the error (its kind, first in the text); a failed
                    // rotation or sync earlier in the batch is told after it, not lost.
                    let error = [failed.take(), unsynced.take()]
                        .into_iter()
                        .flatten()
                        .fold(e.error, |w, other| {
                            io::Error::new(w.kind(), format!("{w}; and {other}"))
                        });
                    return Err(SinkError {
                        written: done + e.written,
                        error,
                    });
                }
                // Every record of the part is in the file, only their sync failed: the
                // rest of the batch is still written, and the error reported after it.
                unsynced.get_or_insert(e.error);
            }
            done += n;
        }
        // A rotation (or link) that failed and a sync that failed are both told: neither
        // hides the other batch after batch.
        let error = match (failed, unsynced) {
            (Some(f), Some(u)) => Some(io::Error::new(f.kind(), format!("{f}; and {u}"))),
            (f, u) => f.or(u),
        };
        let error = error.or_else(|| self.unreported_background_errors());
        match error {
            // Every record is in the current file; the writer reports the error (a
            // background error not reported now is with the next batch).
            Some(error) => Err(SinkError {
                written: batch.len(),
                error,
            }),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        self.report_background()
    }

    fn close(&mut self) -> io::Result<()> {
        let closed = self.inner.close().err();
        let finished = self.finish_background().err();
        // The close is the background errors' last chance to reach the writer: a failed
        // close (or wait) does not hide them, they are told after its error.
        let background = self.unreported_background_errors();
        let error = [closed, finished, background]
            .into_iter()
            .flatten()
            .reduce(|first, next| io::Error::new(first.kind(), format!("{first}; and {next}")));
        error.map_or(Ok(()), Err)
    }

    fn coalesce_bytes(&self) -> usize {
        self.inner.coalesce_bytes()
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        let _ = self.finish_background();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn stamps_round_trip() {
        for secs in [0, 86_399, 951_782_400, 1_709_294_400, 4_102_444_799] {
            let s = format_stamp(secs);
            assert_eq!(parse_stamp(&s), Some(secs), "{s}");
        }
        assert_eq!(format_stamp(1_709_294_400), "20240301T120000");
        assert_eq!(format_stamp(951_782_400), "20000229T000000");
        assert_eq!(parse_stamp("20240230T000000"), None);
        assert_eq!(parse_stamp("20230229T000000"), None);
    }

    /// Runs `jobs` on a worker on this thread; returns the errors it counted.
    fn run_jobs(jobs: Vec<Job>) -> (u64, Option<String>) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(jobs.len()),
            idle: Condvar::new(),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let worker = Worker {
            compression: Compression::Gzip,
            keep: None,
            max_age: None,
            clock: Arc::new(SystemClock),
            shared: Arc::clone(&shared),
        };
        let (tx, rx) = mpsc::channel();
        for job in jobs {
            tx.send(job).unwrap();
        }
        drop(tx);
        let (done_tx, done) = mpsc::channel();
        worker.run(rx, done_tx);
        done.recv().unwrap();
        assert_eq!(*shared.pending.lock().unwrap(), 0);
        let last = shared.last_error.lock().unwrap().clone();
        (shared.errors.load(SeqCst), last)
    }

    /// A retention pass whose directory cannot be listed says which directory, and whose
    /// rotated files it was for.
    #[test]
    fn a_retention_that_cannot_list_its_directory_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let naming = Naming::new(&gone.join("app.log")).unwrap();
        assert_eq!(
            run_jobs(vec![Job::Retain(naming)]),
            (
                1,
                Some(format!(
                    "retention: cannot list the directory {} (for the rotated files of {}): No such file or directory (os error 2)",
                    gone.display(),
                    gone.join("app.log").display()
                ))
            )
        );
    }

    #[test]
    fn a_compression_whose_file_is_gone_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Deleted by someone between its rotation and its compression.
        let gone = d.join("app.20240301T120000.log");
        // Compressed by an earlier run, which stopped before deleting it, then deleted.
        let done = d.join("app.20240301T120001.log");
        fs::write(with_suffix(&done, "gz"), b"compressed").unwrap();
        assert_eq!(
            run_jobs(vec![Job::Compress(gone), Job::Compress(done)]),
            (0, None)
        );
        let mut names: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["app.20240301T120001.log.gz"]);
        // Any other failure is still counted: a directory cannot be compressed.
        let dir_src = d.join("app.20240301T120002.log");
        fs::create_dir(&dir_src).unwrap();
        let (errors, last) = run_jobs(vec![Job::Compress(dir_src.clone())]);
        assert_eq!(errors, 1);
        let last = last.unwrap();
        assert!(
            last.starts_with(&format!("cannot compress {}: ", dir_src.display())),
            "{last}"
        );
        assert!(dir_src.is_dir());
        assert!(!with_suffix(&dir_src, "gz.tmp").exists());
    }

    #[test]
    fn a_rotation_whose_background_work_cannot_be_queued_is_done_once_not_at_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let clock = ManualClock::at(1_709_294_400); // 2024-03-01T12:00:00Z
        let mut sink = RotateOptions::new()
            .clock(clock.clone())
            .every(Period::Minute)
            .compress(Compression::Gzip)
            .open(&path)
            .unwrap();
        let write =
            |sink: &mut RotatingFile, r: &[u8]| sink.write_batch(&Batch::new(r, &[r.len()]));
        write(&mut sink, b"a\n").unwrap();
        clock.set(1_709_294_460);
        write(&mut sink, b"b\n").unwrap(); // "a" rotated and compressed
        assert!(sink.wait_idle(Duration::from_secs(30)));
        // The background thread stops (as one that could not be started: a thread limit).
        sink.finish_background().unwrap();
        clock.set(1_709_294_520);
        // The rotation is done: the record is in the new file, nothing failed but the
        // compression, which the next open does. The batch reports it to the writer (every
        // record written), once.
        let err = write(&mut sink, b"c\n").unwrap_err();
        assert_eq!(err.written, 1);
        assert_eq!(
            err.error.to_string(),
            format!(
                "1 new error in the background work on the rotated files of {p} (compression, retention; no record written is affected, an uncompressed file is compressed by the next open); the last: cannot queue the compression or retention after the rotation to {d}: the rotating file is closed",
                p = path.display(),
                d = dir.path().join("app.20240301T120200.log").display()
            )
        );
        write(&mut sink, b"d\n").unwrap(); // same minute: no second rotation
        assert_eq!((sink.rotations(), sink.rotation_failures()), (2, 0));
        let (errors, last) = sink.background_errors();
        assert_eq!(errors, 1);
        let last = last.unwrap_or_default();
        assert!(last.contains("app.20240301T120200.log"), "{last}");
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "app.20240301T120100.log.gz",
                "app.20240301T120200.log",
                "app.log"
            ]
        );
        assert_eq!(
            fs::read(dir.path().join("app.20240301T120200.log")).unwrap(),
            b"b\n"
        );
        assert_eq!(fs::read(&path).unwrap(), b"c\nd\n");
    }

    /// An error of the background thread that no batch follows (the last rotation's
    /// compression failed) reaches the writer through the next flush, or the close; once.
    #[test]
    fn background_errors_are_reported_by_the_next_flush_or_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut sink = RotateOptions::new()
            .clock(ManualClock::at(1_709_294_400))
            .max_bytes(2)
            .open(&path)
            .unwrap();
        sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
        sink.flush().unwrap();
        sink.shared.fail("cannot compress x: disk on fire".into());
        sink.shared.fail("cannot compress y: disk on fire".into());
        let err = sink.flush().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "2 new errors in the background work on the rotated files of {} (compression, retention; no record written is affected, an uncompressed file is compressed by the next open); the last: cannot compress y: disk on fire",
                path.display()
            )
        );
        sink.flush().unwrap();
        sink.shared.fail("retention: gone".into());
        let err = sink.close().unwrap_err();
        assert!(err.to_string().starts_with("1 new error in "), "{err}");
        assert!(
            err.to_string().ends_with("the last: retention: gone"),
            "{err}"
        );
        assert_eq!(sink.background_errors().0, 3);
    }

    /// A close that fails (here a directory sync: durability on, the file's directory moved
    /// away) still reports the background errors no batch or flush reported: the close is
    /// their last chance, they are told after its own error.
    #[test]
    fn a_failing_close_still_reports_the_background_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        let path = sub.join("app.log");
        let mut sink = RotateOptions::new()
            .clock(ManualClock::at(1_709_294_400))
            .max_bytes(2)
            .file(FileOptions::new().durability(super::super::file::Durability::Data))
            .open(&path)
            .unwrap();
        fs::rename(&sub, dir.path().join("moved")).unwrap();
        sink.shared.fail("cannot compress x: disk on fire".into());
        let err = sink.close().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot sync the directory {}, where {} was created: No such file or directory (os error 2); the records are in the file, but a crash may undo its creation and lose every record in it (the directory is no longer at that path: its sync is given up); and 1 new error in the background work on the rotated files of {} (compression, retention; no record written is affected, an uncompressed file is compressed by the next open); the last: cannot compress x: disk on fire",
                sub.display(),
                path.display(),
                path.display()
            )
        );
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(sink.background_errors().0, 1);
    }

    /// The compressed file is created new: a symbolic link (or any file) at its temporary
    /// name — planted by another user of a shared log directory — is never written through
    /// nor truncated; the compression fails and the rotated file stays uncompressed.
    #[test]
    fn compression_never_writes_through_a_file_at_its_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app.20240301T120000.log");
        fs::write(&src, b"a\n").unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious\n").unwrap();
        let tmp = with_suffix(&with_suffix(&src, "gz"), "tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let err = compress_file(&src, Compression::Gzip).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(
            err.to_string(),
            format!("cannot create {}: File exists (os error 17)", tmp.display())
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
        assert_eq!(fs::read(&src).unwrap(), b"a\n");
        assert!(fs::symlink_metadata(with_suffix(&src, "gz")).is_err());
        // The planted name is left as it was (it is not the sink's to remove).
        assert!(fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink());
    }

    /// A file at the compressed name is taken for an earlier run's finished compression (the
    /// rotated file then deleted) only when it holds exactly the rotated file's records:
    /// anything else there — a link, someone else's file, a different log — is left, and so
    /// is the rotated file, with an error saying so.
    #[test]
    fn a_compressed_name_taken_by_another_file_never_costs_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app.20240301T120000.log");
        let dest = with_suffix(&src, "gz");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious\n").unwrap();
        let gzip = |bytes: &[u8]| {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        };
        let expected = format!(
            "{} exists and does not hold {} compressed: both kept",
            dest.display(),
            src.display()
        );
        // A link (even to the very same compressed records), a file with other records,
        // a file that is no gzip at all.
        fs::write(&victim, gzip(b"a\n")).unwrap();
        let planted: [&dyn Fn(); 3] = [
            &|| std::os::unix::fs::symlink(&victim, &dest).unwrap(),
            &|| fs::write(&dest, gzip(b"b\n")).unwrap(),
            &|| fs::write(&dest, b"not gzip").unwrap(),
        ];
        for plant in planted {
            fs::write(&src, b"a\n").unwrap();
            let _ = fs::remove_file(&dest);
            plant();
            let before = fs::read(&dest).unwrap();
            let err = compress_file(&src, Compression::Gzip).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            assert_eq!(err.to_string(), expected);
            assert_eq!(fs::read(&src).unwrap(), b"a\n");
            assert_eq!(fs::read(&dest).unwrap(), before);
        }
        // The earlier run's own compressed file: the rotated one goes.
        fs::remove_file(&dest).unwrap();
        fs::write(&dest, gzip(b"a\n")).unwrap();
        compress_file(&src, Compression::Gzip).unwrap();
        assert!(!src.exists());
        assert_eq!(fs::read(&victim).unwrap(), gzip(b"a\n"));
        // The same with zstd: its own file, then another log's.
        let zst = with_suffix(&src, "zst");
        for (other, kept) in [(&b"a\n"[..], false), (&b"b\n"[..], true)] {
            fs::write(&src, b"a\n").unwrap();
            fs::write(&zst, zstd::stream::encode_all(other, 3).unwrap()).unwrap();
            assert_eq!(compress_file(&src, Compression::Zstd).is_err(), kept);
            assert_eq!(src.exists(), kept);
        }
    }

    /// Putting a rotated file back never replaces a file at the active path.
    #[test]
    fn a_failed_rotation_puts_the_file_back_only_where_the_path_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("app.log");
        let rotated = dir.path().join("app.20240301T120000.log");
        fs::write(&rotated, b"rotated\n").unwrap();
        // Another process created the active file since the rename: both stay.
        fs::write(&active, b"other\n").unwrap();
        let err = move_no_replace(&rotated, &active).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&active).unwrap(), b"other\n");
        assert_eq!(fs::read(&rotated).unwrap(), b"rotated\n");
        // The path is free: the file is moved back, one name left.
        fs::remove_file(&active).unwrap();
        move_no_replace(&rotated, &active).unwrap();
        assert_eq!(fs::read(&active).unwrap(), b"rotated\n");
        assert!(!rotated.exists());
        assert_eq!(fs::metadata(&active).unwrap().nlink(), 1);
    }

    /// A partial record that could not be cut (another process wrote after it) makes the
    /// next write start with `\n`: that byte counts towards `max_bytes`.
    #[test]
    fn the_newline_ending_a_torn_line_counts_towards_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut sink = RotateOptions::new()
            .clock(ManualClock::at(1_709_294_400))
            .max_bytes(6)
            .open(&path)
            .unwrap();
        sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
        sink.inner.mark_torn();
        // 3 + 1 + 3 > 6: rotated first.
        sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
        assert_eq!(sink.rotations(), 1);
        let rotated = sink.rotated_files().unwrap();
        assert_eq!(fs::read(&rotated[0]).unwrap(), b"{}\n");
        // 3 + 1 + 2 = 6: fits.
        sink.inner.mark_torn();
        sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
        sink.close().unwrap();
        assert_eq!(sink.rotations(), 1);
        assert_eq!(fs::read(&path).unwrap(), b"{}\n\na\n");
    }

    /// With durability on, a directory sync that fails after a rotation says which
    /// directory, which file was rotated there, and what a crash may lose.
    #[test]
    fn a_failed_directory_sync_after_a_rotation_says_what_a_crash_may_lose() {
        use crate::sink::Durability;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        fs::create_dir(&logs).unwrap();
        let path = logs.join("app.log");
        let mut sink = RotateOptions::new()
            .clock(ManualClock::at(1_709_294_400))
            .file(
                FileOptions::new()
                    .durability(Durability::Data)
                    .reopen_if_moved(false),
            )
            .max_bytes(1 << 20)
            .open(&path)
            .unwrap();
        sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
        sink.rotate(1_709_294_400).unwrap();
        // Gone before the rotation's directory sync, which comes with the next batch or flush.
        fs::rename(&logs, dir.path().join("moved")).unwrap();
        let err = sink.flush().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot sync the directory {}, where {} was rotated: No such file or directory (os error 2); the records are in the new file, but a crash may undo the rotation and lose the new file with every record in it (the directory is no longer at that path: its sync is given up)",
                logs.display(),
                path.display()
            )
        );
    }

    #[test]
    fn names_parse_back() {
        let n = Naming::new(Path::new("/x/app.log")).unwrap();
        let dir = Path::new("/x");
        let r = n.parse(dir, "app.20240301T120000.3.log.gz").unwrap();
        assert_eq!(
            (r.counter, r.compression, r.tmp),
            (3, Compression::Gzip, false)
        );
        let r = n.parse(dir, "app.20240301T120000.log.zst.tmp").unwrap();
        assert_eq!(
            (r.counter, r.compression, r.tmp),
            (0, Compression::Zstd, true)
        );
        assert!(n.parse(dir, "app.log").is_none());
        assert!(n.parse(dir, "app.20240301T120000.x.log").is_none());
        assert!(n.parse(dir, "app.20240301T120000.log.tmp").is_none());
        assert!(n.parse(dir, "app.20240301T120000.0.log").is_none());
        assert!(n.parse(dir, "app.20240301T120000.01.log.gz").is_none());
        assert!(n.parse(dir, "app.20240301T120000..log").is_none());
        assert!(n.parse(dir, "other.20240301T120000.log").is_none());
        let bare = Naming::new(Path::new("app")).unwrap();
        assert_eq!(bare.name(0, 2), "app.19700101T000000.2");
        assert_eq!(bare.parse(dir, "app.19700101T000000.2").unwrap().counter, 2);
    }
}
