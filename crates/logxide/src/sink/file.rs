//! The file sink: writes batches to a log file with the `line`, `block` or `mmap` strategy.
//!
//! All `unsafe` code (the memory mapping) lives in the sibling `mmap` module; this module
//! has none.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::mmap::{self, MappedRegion};
use super::{Batch, Sink, SinkError};

/// An option value (I/O strategy, open mode, durability) could not be parsed.
///
/// ```
/// use logxide::sink::IoStrategy;
/// let err = "foo".parse::<IoStrategy>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid I/O strategy "foo": expected one of line, block, mmap"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptionError {
    what: &'static str,
    input: String,
    expected: &'static str,
}

impl ParseOptionError {
    pub(super) fn new(what: &'static str, input: &str, expected: &'static str) -> Self {
        ParseOptionError {
            what,
            input: input.to_owned(),
            expected,
        }
    }

    /// The text that could not be parsed, as given.
    ///
    /// ```
    /// use logxide::sink::OpenMode;
    /// let err = " x ".parse::<OpenMode>().unwrap_err();
    /// assert_eq!(err.input(), " x ");
    /// ```
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: expected one of {}",
            self.what, self.input, self.expected
        )
    }
}

impl std::error::Error for ParseOptionError {}

impl crate::OptionNames for ParseOptionError {
    fn names(&self) -> (&'static str, &'static str) {
        (self.what, self.expected)
    }
}

/// How a [`FileSink`] hands records to the file.
///
/// Parsed case-insensitively from `line`, `block` or `mmap` (surrounding spaces are ignored);
/// displayed and serialized as the lowercase name.
///
/// ```
/// use logxide::sink::IoStrategy;
/// assert_eq!(IoStrategy::default(), IoStrategy::Block);
/// assert_eq!(" MMAP ".parse::<IoStrategy>().unwrap(), IoStrategy::Mmap);
/// assert_eq!(IoStrategy::Line.to_string(), "line");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoStrategy {
    /// One `write(2)` per batch, as soon as the writer has records: nothing waits in user
    /// space ([`Sink::coalesce_bytes`] is 0).
    Line,
    /// One `write(2)` per batch, but the writer gathers about
    /// [`FileOptions::block_size`] bytes first (the default).
    #[default]
    Block,
    /// Records are copied into a shared writable memory mapping of the file, which grows by
    /// [`FileOptions::mmap_chunk`] bytes whenever it is full.
    Mmap,
}

impl IoStrategy {
    /// The canonical lowercase name.
    ///
    /// ```
    /// use logxide::sink::IoStrategy;
    /// assert_eq!(IoStrategy::Mmap.as_str(), "mmap");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            IoStrategy::Line => "line",
            IoStrategy::Block => "block",
            IoStrategy::Mmap => "mmap",
        }
    }
}

impl fmt::Display for IoStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IoStrategy {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "line" => Ok(IoStrategy::Line),
            "block" => Ok(IoStrategy::Block),
            "mmap" => Ok(IoStrategy::Mmap),
            _ => Err(ParseOptionError::new(
                "I/O strategy",
                s,
                "line, block, mmap",
            )),
        }
    }
}

/// What happens to an existing file when a [`FileSink`] opens it.
///
/// Parsed case-insensitively from `truncate` or `w`, and `append` or `a`; displayed and
/// serialized as `truncate` / `append`.
///
/// ```
/// use logxide::sink::OpenMode;
/// assert_eq!(OpenMode::default(), OpenMode::Truncate);
/// assert_eq!("a".parse::<OpenMode>().unwrap(), OpenMode::Append);
/// assert_eq!(OpenMode::Append.to_string(), "append");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenMode {
    /// Empty the file (the default).
    #[default]
    #[serde(alias = "w")]
    Truncate,
    /// Keep the existing content and write after it.
    ///
    /// A tail of NUL bytes (left when a process writing with the `mmap` strategy crashed
    /// before trimming its file) is removed. NUL bytes before it are kept, with every record
    /// around them: a raw line may hold NULs, and the `mmap` strategy copies each batch in
    /// address order, so a process killed during a copy leaves a prefix of the batch, never a
    /// hole inside it (a hole left by a machine crash, pages written back out of order, or by
    /// an older version, stays as the line it is in; `logxide check` reports it). If the
    /// file then ends with a torn last line, that
    /// line is removed when it is a JSON record cut short (it starts with `{`), otherwise (some
    /// other text without a final newline) the first record written is preceded by a `\n`,
    /// so that it starts on a line of its own (a file only opened keeps its text as it was).
    #[serde(alias = "a")]
    Append,
}

impl OpenMode {
    /// The canonical lowercase name.
    ///
    /// ```
    /// use logxide::sink::OpenMode;
    /// assert_eq!(OpenMode::Truncate.as_str(), "truncate");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            OpenMode::Truncate => "truncate",
            OpenMode::Append => "append",
        }
    }
}

impl fmt::Display for OpenMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OpenMode {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "w" | "truncate" => Ok(OpenMode::Truncate),
            "a" | "append" => Ok(OpenMode::Append),
            _ => Err(ParseOptionError::new(
                "open mode",
                s,
                "truncate, append, w, a",
            )),
        }
    }
}

/// How hard a [`FileSink`] pushes each batch to stable storage.
///
/// With `data` or `full`, the directory entries are made durable too: when the sink created
/// the file (or missing parent directories), and after a [`RotatingFile`](super::RotatingFile)
/// renamed the active file and opened a new one, the directories concerned are
/// `fsync`ed before the next batch is reported durable (a created file's directory, and the
/// parent of every directory created for it). Without that, a machine crash could lose the
/// file's name (the whole file) or undo a rotation's rename although its records were synced.
/// A file with no storage (a pipe or FIFO, a terminal, `/dev/null`, a socket) has nothing to
/// sync: there durability changes nothing (no error either).
/// A directory that cannot be synced does not stop the records' own sync: the batch's error
/// says which directory, what changed there and what a crash may lose, and the directory is
/// tried again with the next batch (each one an error until it syncs) — unless it is no
/// longer at its path (moved away, deleted): that sync is given up, reported once.
///
/// Parsed case-insensitively from `none`, `data` or `fdatasync`, and `full` or `fsync`;
/// displayed and serialized as `none` / `data` / `full`.
///
/// ```
/// use logxide::sink::Durability;
/// assert_eq!(Durability::default(), Durability::None);
/// assert_eq!("fdatasync".parse::<Durability>().unwrap(), Durability::Data);
/// assert_eq!(Durability::Full.to_string(), "full");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Leave write-back to the kernel (the default). Records are visible to readers of the
    /// file at once but may be lost if the machine (not just the process) crashes.
    #[default]
    None,
    /// `fdatasync(2)` after every batch (for `mmap`: `msync(MS_SYNC)` of the written range,
    /// and at close, once the padding is cut off, `fdatasync(2)`: the file's new size).
    #[serde(alias = "fdatasync")]
    Data,
    /// `fsync(2)` after every batch (for `mmap`: `msync(MS_SYNC)` then `fsync`, and again
    /// at close, once the padding is cut off).
    #[serde(alias = "fsync")]
    Full,
}

impl Durability {
    /// The canonical lowercase name.
    ///
    /// ```
    /// use logxide::sink::Durability;
    /// assert_eq!(Durability::Data.as_str(), "data");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Data => "data",
            Durability::Full => "full",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Durability::None),
            "data" | "fdatasync" => Ok(Durability::Data),
            "full" | "fsync" => Ok(Durability::Full),
            _ => Err(ParseOptionError::new(
                "durability",
                s,
                "none, data, full, fdatasync, fsync",
            )),
        }
    }
}

/// Options for opening a [`FileSink`], in builder style.
///
/// ```
/// use logxide::sink::{Durability, FileOptions, IoStrategy, OpenMode};
/// let dir = tempfile::tempdir().unwrap();
/// let sink = FileOptions::new()
///     .strategy(IoStrategy::Line)
///     .open_mode(OpenMode::Append)
///     .durability(Durability::None)
///     .permissions(0o600)
///     .open(dir.path().join("logs/app.log"))
///     .unwrap();
/// assert_eq!(sink.strategy(), IoStrategy::Line);
/// ```
#[derive(Clone, Debug)]
pub struct FileOptions {
    pub(super) strategy: IoStrategy,
    pub(super) open_mode: OpenMode,
    pub(super) durability: Durability,
    permissions: u32,
    follow_symlinks: bool,
    create_parents: bool,
    block_size: usize,
    mmap_chunk: usize,
    reopen_if_moved: bool,
    would_block_timeout: Duration,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            strategy: IoStrategy::default(),
            open_mode: OpenMode::default(),
            durability: Durability::default(),
            permissions: 0o644,
            follow_symlinks: true,
            create_parents: true,
            reopen_if_moved: true,
            block_size: 64 * 1024,
            mmap_chunk: 8 * 1024 * 1024,
            would_block_timeout: super::DEFAULT_WOULD_BLOCK_TIMEOUT,
        }
    }
}

impl FileOptions {
    /// The default options: `block` strategy, truncate, no durability, mode `0o644`, follow
    /// symlinks, create parent directories, reopen a file moved away, 64 KiB blocks, 8 MiB
    /// mmap chunks, a 10 s would-block timeout.
    ///
    /// ```
    /// use logxide::sink::{FileOptions, IoStrategy};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("logs").join("app.log"); // `logs` does not exist yet
    /// let sink = FileOptions::new().open(&path)?;
    /// assert_eq!(sink.strategy(), IoStrategy::Block);
    /// drop(sink);
    /// std::fs::write(&path, "old records\n")?;
    /// let sink = FileOptions::new().open(&path)?; // truncates
    /// assert!(sink.is_empty());
    /// assert_eq!(std::fs::metadata(&path)?.len(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The I/O strategy (default [`IoStrategy::Block`]).
    ///
    /// ```
    /// use logxide::sink::{FileOptions, IoStrategy};
    /// let dir = tempfile::tempdir()?;
    /// let sink = FileOptions::new().strategy(IoStrategy::Mmap).open(dir.path().join("app.log"))?;
    /// assert_eq!(sink.strategy(), IoStrategy::Mmap);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn strategy(mut self, strategy: IoStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Truncate or append to an existing file (default [`OpenMode::Truncate`]).
    ///
    /// ```
    /// use logxide::sink::{Batch, FileOptions, OpenMode, Sink};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.log");
    /// std::fs::write(&path, "{\"old\":1}\n")?;
    /// let mut sink = FileOptions::new().open_mode(OpenMode::Append).open(&path)?;
    /// sink.write_batch(&Batch::new(b"{\"new\":2}\n", &[10])).unwrap();
    /// drop(sink);
    /// assert_eq!(std::fs::read_to_string(&path)?, "{\"old\":1}\n{\"new\":2}\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_mode(mut self, mode: OpenMode) -> Self {
        self.open_mode = mode;
        self
    }

    /// Sync to stable storage after every batch (default [`Durability::None`]).
    ///
    /// ```
    /// use logxide::sink::{Durability, FileOptions};
    /// let opts = FileOptions::new().durability(Durability::Data);
    /// ```
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Permission bits for a newly created file (default `0o644`); the process umask is
    /// applied. An existing file keeps its permissions. At most `0o777`, and with the
    /// owner's write bit (`0o200`): setuid, setgid and sticky bits (or anything above them),
    /// or a mode its owner could not open again for writing, make
    /// [`validate`](Self::validate) and [`open`](Self::open) fail with
    /// [`io::ErrorKind::InvalidInput`] before anything is created.
    ///
    /// ```
    /// use logxide::sink::FileOptions;
    /// let opts = FileOptions::new().permissions(0o600);
    /// let err = FileOptions::new().permissions(0o4755).validate().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid permissions 0o4755: expected permission bits up to 0o777"));
    /// ```
    pub fn permissions(mut self, mode: u32) -> Self {
        self.permissions = mode;
        self
    }

    /// Whether a symbolic link at the path is followed (default `true`). With `false` the
    /// file is opened with `O_NOFOLLOW` and a symlink as the last path component makes
    /// [`FileOptions::open`] fail (nothing is created or truncated at the link's destination),
    /// with an error saying so. Directories on the way may still be symlinks.
    ///
    /// ```
    /// use logxide::sink::FileOptions;
    /// let dir = tempfile::tempdir()?;
    /// let (real, link) = (dir.path().join("real.log"), dir.path().join("app.log"));
    /// std::os::unix::fs::symlink(&real, &link)?;
    /// assert!(FileOptions::new().follow_symlinks(false).open(&link).is_err());
    /// assert!(!real.exists()); // nothing created through the link
    /// assert!(FileOptions::new().open(&link).is_ok()); // followed by default
    /// assert!(real.exists());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn follow_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// Whether a file renamed or deleted by another tool (logrotate, an operator) is replaced
    /// by a new file at the path before the next batch (default `true`, `line` and `block`
    /// strategies). It costs one `stat` per batch, which also gives the file's real size:
    /// after another tool truncated the file in place (logrotate's `copytruncate`),
    /// [`FileSink::len`] follows; after another process wrote to it, its last byte says
    /// whether that process left a line open (the next record then starts on a line of its
    /// own, never glued onto it). With `false` — and always with `mmap` — the sink keeps
    /// writing to the file it opened, wherever it went (into nothing, if it was deleted).
    /// Where the path cannot be opened again (a directory put there, permissions), a batch
    /// goes into the moved file while that still has a name, reported as an error with every
    /// record written; into a deleted one it fails (counted failed, not written into
    /// nothing). The next batch tries the path again.
    ///
    /// ```
    /// use logxide::sink::{Batch, FileOptions, Sink};
    /// let dir = tempfile::tempdir()?;
    /// let (path, moved) = (dir.path().join("app.log"), dir.path().join("app.log.1"));
    /// for reopen in [true, false] {
    ///     let mut sink = FileOptions::new().reopen_if_moved(reopen).open(&path)?;
    ///     std::fs::rename(&path, &moved)?;
    ///     sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
    ///     drop(sink);
    ///     // Followed: the record is in a new file at the path; not: in the moved file.
    ///     assert_eq!(path.exists(), reopen);
    ///     assert_eq!(std::fs::read(&moved)?.len(), if reopen { 0 } else { 3 });
    ///     let _ = std::fs::remove_file(&path);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reopen_if_moved(mut self, reopen: bool) -> Self {
        self.reopen_if_moved = reopen;
        self
    }

    /// Whether missing parent directories are created (default `true`): the file's, or
    /// where a symbolic link at the path dangles, its destination's (the open creates the
    /// destination, the link kept). With `false`, a missing directory makes
    /// [`FileOptions::open`] fail with [`io::ErrorKind::NotFound`] and an error naming the
    /// directory.
    ///
    /// ```
    /// use logxide::sink::FileOptions;
    /// let dir = tempfile::tempdir().unwrap();
    /// let missing = dir.path().join("no/such/dir/app.log");
    /// assert!(FileOptions::new().create_parents(false).open(&missing).is_err());
    /// ```
    pub fn create_parents(mut self, create: bool) -> Self {
        self.create_parents = create;
        self
    }

    /// For the `block` strategy: how many bytes the writer gathers before handing the sink a
    /// batch (default 64 KiB). This is what [`Sink::coalesce_bytes`] returns; the sink itself
    /// never buffers. `0` gathers nothing: each batch is written as the writer takes it, as
    /// with the `line` strategy.
    ///
    /// ```
    /// use logxide::sink::{FileOptions, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let sink = FileOptions::new().block_size(4096).open(dir.path().join("a.log")).unwrap();
    /// assert_eq!(sink.coalesce_bytes(), 4096);
    /// ```
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// For the `mmap` strategy: how much the file and its mapping grow each time the mapping
    /// is full (default 8 MiB; rounded up to the page size; a larger batch grows it by more;
    /// when the disk has no room for a whole chunk, by just what the batch needs, rounded up
    /// to a page and leaving at least one byte of padding after it).
    /// It must be from 1 byte to 1 TiB, or [`FileOptions::open`] fails with
    /// [`io::ErrorKind::InvalidInput`].
    ///
    /// ```
    /// use logxide::sink::{Batch, FileOptions, IoStrategy, Sink};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.log");
    /// let opts = FileOptions::new().strategy(IoStrategy::Mmap).mmap_chunk(1 << 20);
    /// let mut sink = opts.open(&path)?;
    /// sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
    /// assert_eq!(std::fs::metadata(&path)?.len(), 1 << 20); // one chunk, padded
    /// drop(sink); // cut to its exact length
    /// assert_eq!(std::fs::read(&path)?, b"{}\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mmap_chunk(mut self, bytes: usize) -> Self {
        self.mmap_chunk = bytes;
        self
    }

    /// For a file that is not a regular file (a FIFO, a device) whose descriptor is
    /// non-blocking: how long a write that would block may take no byte before the rest of
    /// the batch fails (default
    /// [`DEFAULT_WOULD_BLOCK_TIMEOUT`](super::DEFAULT_WOULD_BLOCK_TIMEOUT), 10 s;
    /// `Duration::ZERO`: fail at once). Until then the sink polls the descriptor and goes on
    /// as soon as the reader makes room: a slow reader costs time, not records.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::FileOptions;
    /// let opts = FileOptions::new().would_block_timeout(Duration::from_secs(1));
    /// ```
    pub fn would_block_timeout(mut self, timeout: Duration) -> Self {
        self.would_block_timeout = timeout;
        self
    }

    /// Whether a file moved away from the path is followed (see
    /// [`reopen_if_moved`](Self::reopen_if_moved)).
    pub(crate) fn reopens_if_moved(&self) -> bool {
        self.reopen_if_moved
    }

    /// Whether a symbolic link at the path is followed (see
    /// [`follow_symlinks`](Self::follow_symlinks)).
    pub(crate) fn follows_symlinks(&self) -> bool {
        self.follow_symlinks
    }

    /// Checks the options without touching the file system (what [`open`](Self::open)
    /// checks first).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`]: an `mmap_chunk` of 0 or above 1 TiB with the `mmap`
    /// strategy, or
    /// [`permissions`](Self::permissions) above `0o777` or without the owner's write bit.
    ///
    /// ```
    /// use logxide::sink::{FileOptions, IoStrategy};
    /// let opts = FileOptions::new().strategy(IoStrategy::Mmap).mmap_chunk(0);
    /// assert!(opts.validate().is_err());
    /// assert!(FileOptions::new().validate().is_ok());
    /// ```
    pub fn validate(&self) -> io::Result<()> {
        if self.permissions & !0o777 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid permissions {:#o}: expected permission bits up to 0o777 (setuid, setgid and sticky bits are refused), e.g. 0o644",
                    self.permissions
                ),
            ));
        }
        if self.permissions & 0o200 == 0 {
            // Created, the file is written through the descriptor that created it; but its
            // owner could never open it again.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid permissions {:#o}: the owner's write bit (0o200) is missing, so its owner could not open the log file again (to append at the next run, say); e.g. 0o644",
                    self.permissions
                ),
            ));
        }
        if self.strategy == IoStrategy::Mmap
            && !(1..=MAX_MMAP_CHUNK).contains(&(self.mmap_chunk as u64))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid mmap_chunk {}: expected from 1 byte to 1 TiB ({MAX_MMAP_CHUNK} bytes)",
                    self.mmap_chunk
                ),
            ));
        }
        Ok(())
    }

    /// Opens (creating if needed) the log file at `path` with these options.
    ///
    /// The file is opened close-on-exec. Errors name the path, e.g.
    /// `cannot open log file /var/log/app.log: Permission denied (os error 13)`, and keep the
    /// [`io::ErrorKind`] of the underlying error.
    ///
    /// ```
    /// use logxide::sink::{Batch, FileOptions, OpenMode, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// std::fs::write(&path, "old\n").unwrap();
    /// let mut sink = FileOptions::new().open_mode(OpenMode::Append).open(&path).unwrap();
    /// sink.write_batch(&Batch::new(b"new\n", &[4])).unwrap();
    /// sink.close().unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"old\nnew\n");
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<FileSink> {
        let path = path.as_ref();
        FileSink::open_with(self, path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot open log file {}: {err}", path.display()),
            )
        })
    }
}

/// The largest [`FileOptions::mmap_chunk`]: 1 TiB (the growth arithmetic stays far from
/// overflowing).
const MAX_MMAP_CHUNK: u64 = 1 << 40;

/// The file an open of `path` opens: with symbolic links followed, the destination of a link
/// at `path` (the end of a dangling chain: the file the open creates), else `path`.
fn opened_file(opts: &FileOptions, path: &Path) -> PathBuf {
    if opts.follow_symlinks {
        super::rotate::resolve_links(path).unwrap_or_else(|_| path.to_owned())
    } else {
        path.to_owned()
    }
}

/// Says why opening `path` failed when the OS error alone would not: a symlink refused by
/// `O_NOFOLLOW` (reported by Linux as "too many levels of symbolic links"), or a missing
/// directory. The error keeps its kind.
fn explain_open_error(opts: &FileOptions, path: &Path, err: io::Error) -> io::Error {
    let os = match err.raw_os_error() {
        Some(code) => format!(" (os error {code})"),
        None => String::new(),
    };
    if !opts.follow_symlinks
        && err.raw_os_error() == Some(libc::ELOOP)
        && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return io::Error::new(
            err.kind(),
            format!("it is a symbolic link, refused: follow_symlinks is off, the file is opened with O_NOFOLLOW{os}"),
        );
    }
    if err.kind() == io::ErrorKind::NotFound {
        let target = opened_file(opts, path);
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                let hint = if opts.create_parents {
                    ""
                } else {
                    " (create_parents is off)"
                };
                return io::Error::new(
                    err.kind(),
                    format!(
                        "the directory {} does not exist{hint}{os}",
                        parent.display()
                    ),
                );
            }
        }
    }
    err
}

/// A sink writing to a log file.
///
/// With the `line` and `block` strategies every batch is handed to the kernel with one
/// `write(2)` (the sink holds nothing back) on a descriptor opened with `O_APPEND` (in both
/// open modes; [`OpenMode::Truncate`] empties the file with `O_TRUNC`), so a file truncated by
/// another tool gets the next records at its start, not after a hole of NULs; with `mmap` it
/// is copied into a shared mapping of the file. Either way the records are in the page cache, visible to readers of the file,
/// when [`Sink::write_batch`] returns.
///
/// # Whole records
///
/// If a write fails part-way (for example with `ENOSPC`), the partial record is cut off the
/// end of the file and [`SinkError::written`] says how many records of the batch made it
/// (on a pipe or a device, where nothing can be cut, the partial record stays and the next
/// record starts on a line of its own).
/// The sink keeps working: a later batch is written after them once the cause is gone. The
/// cut is made only where the file ends with exactly the partial record's bytes, so that
/// nothing another process appended to the file is removed; when another process wrote after
/// it, the partial record stays and the next record starts on a line of its own.
///
/// # The `mmap` strategy
///
/// The file is extended ahead of the data (by [`FileOptions::mmap_chunk`] at a time; the
/// space is reserved with `fallocate`, or by writing zeros on file systems without it, so a
/// full disk is an `ENOSPC` error for the batch rather than a `SIGBUS` crash), so
/// while the sink is open the file ends with NUL padding. [`Sink::close`] — or dropping the
/// sink — truncates it to exactly the bytes written. After a crash the padding remains; opening
/// the file again with [`OpenMode::Append`] removes it. The sink must be the only one writing
/// to the file, and nothing else may truncate it while it is mapped: that is outside the
/// contract, and shrinking a mapped file makes the process fail with `SIGBUS`.
///
/// ```
/// use logxide::sink::{Batch, FileSink, Sink};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.log");
/// let mut sink = FileSink::open(&path).unwrap();
/// sink.write_batch(&Batch::new(b"{\"a\":1}\n{\"b\":2}\n", &[8, 16])).unwrap();
/// sink.close().unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
/// ```
pub struct FileSink {
    /// The options it was opened with (to reopen a moved file).
    options: FileOptions,
    file: File,
    path: PathBuf,
    name: String,
    strategy: IoStrategy,
    open_mode: OpenMode,
    durability: Durability,
    block_size: usize,
    /// Bytes of complete records in the file.
    len: u64,
    /// False for pipes, character devices, ...: no truncation, no mmap.
    regular: bool,
    /// Has storage that `fdatasync`/`fsync` apply to (a regular file or a block device; not
    /// a pipe, socket, terminal or `/dev/null`, where they fail with `EINVAL`).
    syncable: bool,
    /// The device and inode of the open file (they never change: what the path names is
    /// compared with them, see [`FileSink::follow_path`]).
    identity: (u64, u64),
    /// Registers the file (a regular one) as written by a sink of this process, from the
    /// open until the close or the drop (see [`is_open_by_a_sink`]).
    open_mark: Option<OpenFileMark>,
    /// The file's modification time when it was opened, before the repair of its tail
    /// (which changes it to now): when its records were last written.
    found_modified: Option<SystemTime>,
    /// A partial record could not be truncated away: start the next batch with `\n`.
    torn: bool,
    /// `mmap` only: the current window, if mapped.
    region: Option<MappedRegion>,
    /// `mmap` only: the physical size of the file (logical length plus padding).
    file_len: u64,
    /// `mmap` only: growth step, a multiple of the page size.
    chunk: u64,
    /// `mmap` only: records before this offset were synced with `msync`.
    synced: u64,
    /// Directories whose entries changed (the file or its parents were created, a rotation
    /// renamed the file) and are not synced yet; synced with the next batch when durability
    /// is on, never otherwise.
    dirs_unsynced: Vec<PendingDir>,
    /// Directories synced so far (see [`FileSink::directory_syncs`]).
    dir_syncs: u64,
    /// `fdatasync`s and `fsync`s of the file so far (not `msync`s). For tests.
    file_syncs: u64,
}

impl FileSink {
    /// Opens `path` with the default [`FileOptions`] (the `block` strategy, truncating).
    ///
    /// ```
    /// use logxide::sink::{FileSink, IoStrategy};
    /// let dir = tempfile::tempdir().unwrap();
    /// let sink = FileSink::open(dir.path().join("app.log")).unwrap();
    /// assert_eq!(sink.strategy(), IoStrategy::Block);
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileSink> {
        FileOptions::new().open(path)
    }

    fn open_with(opts: &FileOptions, path: &Path) -> io::Result<FileSink> {
        let page = mmap::page_size();
        opts.validate()?;
        let durable = opts.durability != Durability::None;
        // The file opened: a symbolic link's destination (where the link dangles, the file
        // created, in directories created for it), or the path itself.
        let target = opened_file(opts, path);
        // The directories whose entries this open creates (see `Durability`): the parent of
        // each directory created and, if the file is new, its own directory.
        let mut dirs_unsynced = Vec::new();
        if opts.create_parents {
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                if durable {
                    let mut missing = parent;
                    while let Some(up) = missing.parent().filter(|_| !missing.exists()) {
                        let up = if up.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            up
                        };
                        dirs_unsynced.push(PendingDir {
                            dir: up.to_owned(),
                            change: DirChange::Parent,
                            file: path.to_owned(),
                        });
                        missing = up;
                    }
                    dirs_unsynced.reverse();
                }
                fs::create_dir_all(parent).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot create directory {}: {e}", parent.display()),
                    )
                })?;
            }
        }
        let created_dir = if durable && fs::metadata(path).is_err() {
            let file = target.clone();
            let dir = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            Some(PendingDir {
                dir,
                change: DirChange::Created,
                file,
            })
        } else {
            None
        };

        let mmap = opts.strategy == IoStrategy::Mmap;
        let append = opts.open_mode == OpenMode::Append;
        let mut oo = OpenOptions::new();
        oo.write(true).create(true).mode(opts.permissions);
        // Reading is needed to map the file and to inspect the tail of an appended file.
        oo.read(mmap || append);
        let mut flags = 0;
        if mmap {
            // The mapping writes at explicit offsets: no O_APPEND for it.
            oo.truncate(!append);
        } else {
            // Every write(2) goes to the file's end as it is then: after another tool
            // truncated the file (logrotate's copytruncate), records go on at its start
            // instead of after a hole of NULs. std refuses truncate with append, so the
            // truncation is an explicit O_TRUNC.
            oo.append(true);
            if !append {
                flags |= libc::O_TRUNC;
            }
        }
        if !opts.follow_symlinks {
            flags |= libc::O_NOFOLLOW;
        }
        oo.custom_flags(flags);
        let file = oo
            .open(path)
            .map_err(|e| explain_open_error(opts, path, e))?;
        if let Some(created) = created_dir {
            if !dirs_unsynced.iter().any(|p| p.dir == created.dir) {
                dirs_unsynced.push(created);
            }
        }
        let meta = file.metadata()?;
        let regular = meta.file_type().is_file();
        let syncable = regular || meta.file_type().is_block_device();
        if mmap && !regular {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mmap strategy needs a regular file",
            ));
        }
        let (len, torn) = if regular && append {
            repair_tail(&file, meta.len())?
        } else if regular {
            (meta.len(), false)
        } else {
            (0, false)
        };

        let chunk = (opts.mmap_chunk as u64).div_ceil(page as u64) * page as u64;
        let mut sink = FileSink {
            options: opts.clone(),
            file,
            path: path.to_owned(),
            name: path.display().to_string(),
            strategy: opts.strategy,
            open_mode: opts.open_mode,
            durability: opts.durability,
            block_size: opts.block_size,
            len,
            regular,
            syncable,
            identity: (meta.dev(), meta.ino()),
            open_mark: regular.then(|| OpenFileMark::new((meta.dev(), meta.ino()))),
            found_modified: meta.modified().ok(),
            torn,
            region: None,
            file_len: len,
            chunk: chunk.max(page as u64),
            synced: len,
            dirs_unsynced,
            dir_syncs: 0,
            file_syncs: 0,
        };
        if mmap {
            sink.map_for(len)?;
        }
        Ok(sink)
    }

    /// If the path no longer names the file this sink writes (renamed or deleted by another
    /// tool), opens a new file there, appending. One `stat` per batch; nothing with
    /// [`FileOptions::reopen_if_moved`] off, the `mmap` strategy or a file that is not a
    /// regular file.
    ///
    /// [`Sink::write_batch`] does this before writing; a caller that decides on the file's
    /// length first (the rotating file) calls it, then [`write_followed`](Self::write_followed).
    /// Returns whether a new file was opened (see [`found_modified`](Self::found_modified)).
    pub(super) fn follow_path(&mut self) -> io::Result<bool> {
        if !self.options.reopen_if_moved || !self.regular || self.strategy == IoStrategy::Mmap {
            return Ok(false);
        }
        let moved = match fs::metadata(&self.path) {
            Ok(at_path) if (at_path.dev(), at_path.ino()) == self.identity => {
                self.resync_len(at_path.len());
                false
            }
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(_) => false,
        };
        if moved {
            // Append: never truncate what another process may have put at the path meanwhile.
            let options = self.options.clone().open_mode(OpenMode::Append);
            self.replace_with(FileSink::open_with(&options, &self.path)?);
        }
        Ok(moved)
    }

    /// The modification time the file had when this sink opened it (before the repair of
    /// its tail, which changes it): when the records found in it were last written.
    pub(super) fn found_modified(&self) -> Option<SystemTime> {
        self.found_modified
    }

    /// The batch when the file was moved away and its path could not be opened again
    /// (`reopen`): it goes into the moved file if that still has a name (renamed by a tool
    /// like logrotate: readable there), the error reported with every record written; a file
    /// deleted too (no link left: nobody could read it) fails the batch.
    fn write_unfollowed(&mut self, batch: &Batch<'_>, reopen: io::Error) -> SinkError {
        let Some(error) = self.moved_error(&reopen) else {
            return SinkError::new(reopen);
        };
        match self.write_followed(batch) {
            Ok(()) => SinkError {
                written: batch.len(),
                error,
            },
            Err(e) => e,
        }
    }

    /// After [`follow_path`](Self::follow_path) failed with `reopen` (the file was moved away
    /// and its path could not be opened again): the error of a batch written into the moved
    /// file, or `None` if it has no name left (deleted too: records written there would be
    /// read by nobody, so the batch fails).
    pub(super) fn moved_error(&self, reopen: &io::Error) -> Option<io::Error> {
        use std::os::unix::fs::MetadataExt;
        let linked = self.file.metadata().is_ok_and(|m| m.nlink() > 0);
        linked.then(|| {
            io::Error::new(
                reopen.kind(),
                format!(
                    "{} was moved and cannot be opened again ({reopen}): the batch went into \
                     the moved file",
                    self.path.display()
                ),
            )
        })
    }

    /// Takes the size of the open file (from the `stat` of [`follow_path`](Self::follow_path))
    /// as its length: another tool may have truncated it (logrotate's copytruncate) or written
    /// to it, and the next `write(2)` goes to its real end (`O_APPEND`).
    /// The file's last byte then says whether a line is open: another process may have
    /// appended text without a final newline (the next record must not be glued onto it) or
    /// ended a line the sink found open (no empty line after it).
    fn resync_len(&mut self, size: u64) {
        if size != self.len {
            self.len = size;
            if size == 0 {
                // Emptied: no torn line left to end.
                self.torn = false;
            } else if let Ok(last) = last_byte(&self.file, size) {
                self.torn = last != b'\n';
            }
        }
    }

    /// The path the sink was opened with.
    ///
    /// ```
    /// use logxide::sink::FileSink;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// assert_eq!(FileSink::open(&path).unwrap().path(), path);
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The I/O strategy in use.
    ///
    /// ```
    /// use logxide::sink::{FileOptions, IoStrategy};
    /// let dir = tempfile::tempdir().unwrap();
    /// let sink = FileOptions::new().strategy(IoStrategy::Mmap).open(dir.path().join("a.log")).unwrap();
    /// assert_eq!(sink.strategy(), IoStrategy::Mmap);
    /// ```
    pub fn strategy(&self) -> IoStrategy {
        self.strategy
    }

    /// Bytes of records in the file: its logical length, without the padding of the `mmap`
    /// strategy. For a file opened in append mode this includes the previous content. With
    /// the `line` and `block` strategies and [`FileOptions::reopen_if_moved`] on, it is set to
    /// the file's real size before each batch, when another tool truncated the file or wrote
    /// to it.
    ///
    /// ```
    /// use logxide::sink::{Batch, FileSink, Sink};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut sink = FileSink::open(dir.path().join("app.log")).unwrap();
    /// sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
    /// assert_eq!(sink.len(), 3);
    /// ```
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file holds no record.
    ///
    /// ```
    /// use logxide::sink::FileSink;
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(FileSink::open(dir.path().join("app.log")).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `batch` into the open file without looking at the path first:
    /// [`Sink::write_batch`] is [`follow_path`](Self::follow_path) then this.
    pub(super) fn write_followed(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self.strategy {
            IoStrategy::Line | IoStrategy::Block => self.write_fd(batch)?,
            IoStrategy::Mmap => self.write_mmap(batch)?,
        }
        // The records are in the file; only their durability is in doubt.
        self.sync().map_err(|error| SinkError {
            written: batch.len(),
            error,
        })
    }

    /// Makes sure a mapped window covers `[self.len, end)`, growing the file if needed.
    fn map_for(&mut self, end: u64) -> io::Result<()> {
        if let Some(region) = &self.region {
            // Strictly inside: a batch filling the window exactly would leave no padding.
            if region.offset() <= self.len && end < region.end() {
                return Ok(());
            }
        }
        // Unmap first: the old window is not needed any more and nothing may stay mapped if
        // growing fails.
        self.region = None;
        let page = mmap::page_size() as u64;
        // Grow when the batch does not fit, and also when it would fill the file exactly (at
        // open, this gives an appended file room for the first batch): the file always ends
        // with padding after the last batch (a crashed writer's file always has a NUL tail).
        if end >= self.file_len {
            let needed = ((end + 1).div_ceil(page) * page).max(self.file_len + page);
            let mut new_len = needed.max((self.file_len + self.chunk).div_ceil(page) * page);
            match mmap::extend_file(&self.file, self.file_len, new_len) {
                Ok(()) => {}
                // No room for a whole chunk (disk full, quota, file size limit): grow by just
                // what this batch needs, so that the last free space is used as with `line`.
                Err(e) if new_len > needed && is_out_of_space(&e) => {
                    mmap::extend_file(&self.file, self.file_len, needed)?;
                    new_len = needed;
                }
                Err(e) => return Err(e),
            }
            self.file_len = new_len;
        }
        let base = self.len / page * page;
        let window = usize::try_from(self.file_len - base)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "mapping window too large"))?;
        self.region = Some(MappedRegion::map(&self.file, base, window)?);
        Ok(())
    }

    fn write_mmap(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let bytes = batch.bytes();
        let start = self.next_record_at();
        let end = start + bytes.len() as u64;
        self.map_for(end)?;
        let region = self.region.as_mut().expect("mapped by map_for");
        if self.torn {
            region.write(self.len, b"\n");
            self.torn = false;
        }
        region.write(start, bytes);
        self.len = end;
        Ok(())
    }

    /// `write(2)` loop: returns how many bytes reached the file, and the error if not all.
    /// A descriptor that would block (non-blocking, full) is polled until it takes bytes
    /// again, for at most [`FileOptions::would_block_timeout`] without progress.
    fn write_some(&mut self, bytes: &[u8]) -> (usize, Option<io::Error>) {
        let timeout = self.options.would_block_timeout;
        let file = &self.file;
        let wait = |since, pause: &mut Duration| {
            super::wait_writable(Some(file.as_fd()), timeout, since, pause)
        };
        match super::write_waiting(&mut &*file, bytes, wait) {
            Ok(()) => (bytes.len(), None),
            Err((done, error)) => (done, Some(error)),
        }
    }

    fn write_fd(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if self.torn {
            match self.write_some(b"\n") {
                (1, None) => {
                    self.torn = false;
                    self.len += 1;
                }
                (_, err) => {
                    return Err(SinkError::new(
                        err.unwrap_or_else(|| io::ErrorKind::WriteZero.into()),
                    ))
                }
            }
        }
        let bytes = batch.bytes();
        let (done, err) = self.write_some(bytes);
        let Some(error) = err else {
            self.len += done as u64;
            return Ok(());
        };
        let written = batch.records_within(done);
        let keep = batch.prefix_bytes(written);
        let record_end = self.len + keep as u64;
        if keep < done && self.regular {
            // Take the partial record back out (with O_APPEND the next write starts at the new
            // end), if the file still ends with it: if another process appended to the file
            // after this write (or truncated it), cutting would remove its bytes — and where
            // `len` missed another process's bytes before this write, `len + keep` would
            // cut records reported written.
            return match cut_partial_tail(&self.file, &bytes[keep..done], self.len + done as u64) {
                Ok(Some(end)) => {
                    self.len = end;
                    Err(SinkError { written, error })
                }
                not_cut => {
                    // The partial record stays: the next record starts on a line of its own.
                    self.len = match not_cut {
                        Ok(None) => self.file.metadata().map_or(self.len, |m| m.len()),
                        _ => self.len + done as u64,
                    };
                    self.torn = true;
                    Err(SinkError { written, error })
                }
            };
        }
        if keep < done {
            // A pipe or device: the partial record cannot be taken back; end its line first.
            self.torn = true;
        }
        self.len = record_end;
        Err(SinkError { written, error })
    }

    /// With durability on, `dir`'s entries changed for this file (`change`: a rotation
    /// renamed it, say): the directory is synced with the next batch (or flush). A directory
    /// already pending is synced once; a rotation there (which also created the new file) is
    /// what its failed sync reports.
    pub(super) fn directory_changed(&mut self, dir: &Path, change: DirChange) {
        let file = self.path.clone();
        self.pending_dir(PendingDir {
            dir: dir.to_owned(),
            change,
            file,
        });
    }

    /// Adds `new` to the directories to sync (with durability on); for a directory already
    /// there, the change a crash may undo more of is the one kept (with its file).
    fn pending_dir(&mut self, new: PendingDir) {
        if self.durability == Durability::None {
            return;
        }
        match self.dirs_unsynced.iter_mut().find(|p| p.dir == new.dir) {
            Some(pending) if pending.change < new.change => *pending = new,
            Some(_) => {}
            None => self.dirs_unsynced.push(new),
        }
    }

    /// Where the next record starts: [`len`](Self::len), plus the `\n` that first ends a torn
    /// line (a partial record that could not be cut).
    pub(super) fn next_record_at(&self) -> u64 {
        self.len + u64::from(self.torn)
    }

    /// As after a partial record that could not be cut (for tests).
    #[cfg(test)]
    pub(super) fn mark_torn(&mut self) {
        self.torn = true;
    }

    /// Puts `new` in this sink's place: the directories this one had yet to sync are synced
    /// with `new`'s next batch, and the syncs it made stay counted.
    pub(super) fn replace_with(&mut self, new: FileSink) {
        let mut old = std::mem::replace(self, new);
        for pending in std::mem::take(&mut old.dirs_unsynced) {
            self.pending_dir(pending);
        }
        self.dir_syncs += old.dir_syncs;
    }

    /// How many times a directory was synced for this sink (with durability on: after the
    /// file or its parent directories were created, after a rotation). For tests.
    #[doc(hidden)]
    pub fn directory_syncs(&self) -> u64 {
        self.dir_syncs
    }

    /// Applies the durability setting to everything written so far: the pending
    /// directories and the records, each whatever became of the other (a directory that
    /// cannot be synced leaves no record unsynced). The records' error comes first.
    fn sync(&mut self) -> io::Result<()> {
        if self.durability == Durability::None {
            return Ok(());
        }
        let dirs = self.sync_dirs();
        self.sync_records().and(dirs)
    }

    /// Before a rotation renames the file (with durability on): syncs its records, which are
    /// synced no more once it is rotated, but not the pending directories — a directory that
    /// cannot be synced has nothing to do with the rotation, and stays pending (the
    /// rotation's own change is synced with the next batch).
    pub(super) fn sync_before_rotation(&mut self) -> io::Result<()> {
        if self.durability == Durability::None {
            return Ok(());
        }
        self.sync_records()
    }

    /// Syncs the directories whose entries changed, each whatever became of the others; the
    /// first failure is the error. One that fails stays pending, tried again with the next
    /// sync — unless it is no longer at its path (moved away or deleted): it could never be
    /// synced there, so it is given up, not an error of every batch from then on.
    fn sync_dirs(&mut self) -> io::Result<()> {
        let mut first: Option<io::Error> = None;
        let mut dir_syncs = 0;
        self.dirs_unsynced.retain(|p| match sync_dir(&p.dir) {
            Ok(()) => {
                dir_syncs += 1;
                false
            }
            Err(e) => {
                let gone = e.kind() == io::ErrorKind::NotFound;
                first.get_or_insert_with(|| p.change.sync_error(&p.dir, &p.file, e, gone));
                !gone
            }
        });
        self.dir_syncs += dir_syncs;
        first.map_or(Ok(()), Err)
    }

    /// Syncs the records written so far, per the durability setting. A file with no storage
    /// to sync (a pipe, a terminal) has nothing to do: its records are with the reader. The
    /// error names the file and says what a failure means for the records.
    fn sync_records(&mut self) -> io::Result<()> {
        if !self.syncable {
            return Ok(());
        }
        self.sync_storage().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot sync {} to stable storage (durability {}): {e}; the records are written and readable, but a machine crash may lose them (a later sync does not prove otherwise: after an I/O error the kernel may have dropped them already)",
                    self.path.display(),
                    self.durability
                ),
            )
        })
    }

    /// [`sync_records`](Self::sync_records)'s system calls.
    fn sync_storage(&mut self) -> io::Result<()> {
        if let Some(region) = &self.region {
            if self.synced < region.offset() {
                // Part of the unsynced range was in an earlier window (a sync failed before
                // the remap): write back the whole file.
                self.sync_file(Durability::Data)?;
            } else {
                region.sync(self.synced, self.len)?;
            }
        }
        match self.durability {
            Durability::None => {}
            Durability::Data if self.strategy != IoStrategy::Mmap => {
                self.sync_file(Durability::Data)?
            }
            Durability::Data => {}
            Durability::Full => self.sync_file(Durability::Full)?,
        }
        self.synced = self.len;
        Ok(())
    }

    /// `fdatasync` (`Data`) or `fsync` (`Full`) of the file; nothing for `None`.
    fn sync_file(&mut self, how: Durability) -> io::Result<()> {
        match how {
            Durability::None => return Ok(()),
            Durability::Data => self.file.sync_data()?,
            Durability::Full => self.file.sync_all()?,
        }
        self.file_syncs += 1;
        Ok(())
    }

    /// `mmap`: unmaps and cuts the padding off the file. Returns whether the size changed.
    fn trim(&mut self) -> io::Result<bool> {
        self.region = None;
        if self.file_len == self.len {
            return Ok(false);
        }
        self.file.set_len(self.len)?;
        self.file_len = self.len;
        Ok(true)
    }

    /// `mmap`, at close (the records synced already, per the durability): cuts the padding
    /// off and, with durability on, syncs the file's new size — without that a crash after
    /// the close may bring the padding back (the `msync` of the records does not cover the
    /// size; `fdatasync` does). The errors name the file and say what they mean.
    fn trim_at_close(&mut self) -> io::Result<()> {
        let cut = self.trim().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot cut the padding off {} at close (the mmap strategy's preallocation): {e}; the records are in the file, followed by NUL bytes, which the next open in append mode removes",
                    self.path.display()
                ),
            )
        })?;
        if !cut {
            return Ok(());
        }
        self.sync_file(self.durability).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot sync {} to stable storage after cutting its padding at close (durability {}): {e}; the records are synced, but a machine crash may bring the NUL padding back (the next open in append mode removes it)",
                    self.path.display(),
                    self.durability
                ),
            )
        })
    }
}

/// Why a directory's entries changed for a file sink: what its `fsync` makes durable, and
/// what a crash may undo while it fails. Ordered by what a crash may lose (the largest wins
/// when one directory changed twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum DirChange {
    /// A directory on the way to the file was created in it.
    Parent,
    /// The file was created in it.
    Created,
    /// A rotation renamed the file in it and created the new one.
    Rotated,
}

impl DirChange {
    /// The error of a failed sync of `dir` for the file at `file`: which directory, what
    /// changed in it, and what that means for the records (written, but a crash may undo
    /// the change and lose them with it); and whether it is tried again (not when `gone`).
    fn sync_error(self, dir: &Path, file: &Path, e: io::Error, gone: bool) -> io::Error {
        let (file, dir) = (file.display(), dir.display());
        let (what, loss) = match self {
            DirChange::Parent => (
                format!("a directory on the way to {file} was created"),
                "the records are in the file, but a crash may undo that creation and lose the file with every record in it",
            ),
            DirChange::Created => (
                format!("{file} was created"),
                "the records are in the file, but a crash may undo its creation and lose every record in it",
            ),
            DirChange::Rotated => (
                format!("{file} was rotated"),
                "the records are in the new file, but a crash may undo the rotation and lose the new file with every record in it",
            ),
        };
        let then = match gone {
            true => "the directory is no longer at that path: its sync is given up",
            false => "the sync is tried again with the next batch",
        };
        io::Error::new(
            e.kind(),
            format!("cannot sync the directory {dir}, where {what}: {e}; {loss} ({then})"),
        )
    }
}

/// A directory whose entries changed for a file (the one the sink wrote then: a link
/// retargeted since leaves it behind) and are not synced yet.
#[derive(Debug)]
struct PendingDir {
    dir: PathBuf,
    change: DirChange,
    file: PathBuf,
}

/// The files (device, inode) the file sinks of this process write, once per sink: a
/// rotating file's compression and retention never touch one of them, whatever its name
/// (another log's active file may be named like a rotated file of this one).
static OPEN_FILES: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// One entry of [`OPEN_FILES`], removed when dropped.
#[derive(Debug)]
struct OpenFileMark((u64, u64));

impl OpenFileMark {
    fn new(identity: (u64, u64)) -> Self {
        open_files().push(identity);
        OpenFileMark(identity)
    }
}

impl Drop for OpenFileMark {
    fn drop(&mut self) {
        let mut files = open_files();
        if let Some(i) = files.iter().position(|&f| f == self.0) {
            files.swap_remove(i);
        }
    }
}

fn open_files() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    // A panic while holding the lock left the list whole (push and remove do not panic
    // half-way): go on with it.
    OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a file sink of this process has the file `meta` describes open (as the file it
/// writes).
pub(super) fn is_open_by_a_sink(meta: &fs::Metadata) -> bool {
    open_files().contains(&(meta.dev(), meta.ino()))
}

/// `fsync` of a directory: makes the entries created, renamed or removed in it durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The error says the file cannot grow that much: disk full, quota exceeded, file size limit.
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
}

/// The offset where the line holding byte `end - 1` starts.
fn last_line_start(file: &File, end: u64) -> io::Result<u64> {
    let mut pos = end;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let n = buf.len().min(usize::try_from(pos).unwrap_or(usize::MAX));
        let start = pos - n as u64;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(nl) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + nl as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// The byte of `file` at `size - 1` (its last, `size` being its length). A write-only
/// handle (truncate mode) is read through `/proc/self/fd`.
fn last_byte(file: &File, size: u64) -> io::Result<u8> {
    let mut last = [0u8];
    let at = size.saturating_sub(1);
    match file.read_exact_at(&mut last, at) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
            use std::os::unix::io::AsRawFd;
            File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))?
                .read_exact_at(&mut last, at)?
        }
        other => other?,
    }
    Ok(last[0])
}

/// True if `file` holds `bytes` at `offset`.
fn tail_equals(file: &File, offset: u64, bytes: &[u8]) -> io::Result<bool> {
    const CHUNK: usize = 64 << 10;
    let mut buf = vec![0; bytes.len().min(CHUNK)];
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let buf = &mut buf[..chunk.len()];
        file.read_exact_at(buf, offset + (i * CHUNK) as u64)?;
        if buf != chunk {
            return Ok(false);
        }
    }
    Ok(true)
}

/// If `file` ends with `partial` (the start of a record a failed write left), cuts it off
/// and returns the new length; `None` if the file ends otherwise (another process wrote
/// after it, or truncated the file), leaving the file as it is. A file opened without read
/// access (truncate mode) is read through `/proc/self/fd`; where that fails too it is
/// judged by its size alone: it must end at `expected_end`.
fn cut_partial_tail(file: &File, partial: &[u8], expected_end: u64) -> io::Result<Option<u64>> {
    let size = file.metadata()?.len();
    let Some(start) = size.checked_sub(partial.len() as u64) else {
        return Ok(None);
    };
    let ends_with_partial = match tail_equals(file, start, partial) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
            use std::os::unix::io::AsRawFd;
            match File::open(format!("/proc/self/fd/{}", file.as_raw_fd())) {
                Ok(readable) => tail_equals(&readable, start, partial)?,
                Err(_) => size == expected_end,
            }
        }
        other => other?,
    };
    if !ends_with_partial {
        return Ok(None);
    }
    file.set_len(start)?;
    Ok(Some(start))
}

/// Opens an existing file for appending: removes a NUL tail left by a crashed `mmap` writer
/// (which copies in address order: what it leaves before the tail is a prefix of its last
/// batch, so NUL bytes before the tail are data, kept), and removes a torn last JSON record. Returns the resulting length, and whether the file ends
/// with other text without a newline (the next batch starts with `\n`: written lazily, so
/// that a rotating file counts it, and a file only opened is left as it was).
fn repair_tail(file: &File, len: u64) -> io::Result<(u64, bool)> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let n = buf.len().min(usize::try_from(end).unwrap_or(usize::MAX));
        let start = end - n as u64;
        file.read_exact_at(&mut buf[..n], start)?;
        match buf[..n].iter().rposition(|&b| b != 0) {
            Some(i) => {
                end = start + i as u64 + 1;
                break;
            }
            None => end = start,
        }
    }
    if end < len {
        file.set_len(end)?;
    }
    if end > 0 {
        let mut last = [0u8];
        file.read_exact_at(&mut last, end - 1)?;
        if last[0] != b'\n' {
            let line_start = last_line_start(file, end)?;
            let mut first = [0u8];
            file.read_exact_at(&mut first, line_start)?;
            if first[0] == b'{' {
                // A JSON record cut short by a crash: it was never whole, drop it.
                file.set_len(line_start)?;
                end = line_start;
            } else {
                // Someone else's text without a final newline: keep it, the next record
                // starts on a new line.
                return Ok((end, true));
            }
        }
    }
    Ok((end, false))
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(reopen) = self.follow_path() {
            return Err(self.write_unfollowed(batch, reopen));
        }
        self.write_followed(batch)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn close(&mut self) -> io::Result<()> {
        let closed = self.sync().and_then(|()| match self.strategy {
            IoStrategy::Mmap => self.trim_at_close(),
            IoStrategy::Line | IoStrategy::Block => Ok(()),
        });
        // Closed, the file is written no more: another log may compress or delete it (a
        // rotated name it has now, say), even if this close failed — but not before its last
        // sync and the cut of its mmap padding.
        self.open_mark = None;
        closed
    }

    fn coalesce_bytes(&self) -> usize {
        match self.strategy {
            IoStrategy::Block => self.block_size,
            IoStrategy::Line | IoStrategy::Mmap => 0,
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.strategy == IoStrategy::Mmap {
            let _ = self.trim();
        }
    }
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("strategy", &self.strategy)
            .field("open_mode", &self.open_mode)
            .field("durability", &self.durability)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl std::os::fd::AsFd for FileSink {
    /// The file descriptor of the log file, borrowed.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use logxide::sink::FileSink;
    /// let dir = tempfile::tempdir().unwrap();
    /// let sink = FileSink::open(dir.path().join("app.log")).unwrap();
    /// let _fd = sink.as_fd();
    /// ```
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(unix)]
impl std::os::unix::io::AsRawFd for FileSink {
    /// The file descriptor of the log file.
    ///
    /// ```
    /// use std::os::unix::io::AsRawFd;
    /// use logxide::sink::FileSink;
    /// let dir = tempfile::tempdir().unwrap();
    /// let sink = FileSink::open(dir.path().join("app.log")).unwrap();
    /// assert!(sink.as_raw_fd() >= 0);
    /// ```
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut of a failed write's partial record happens only where the file ends with
    /// exactly those bytes; a file another process wrote to after it is left whole. A
    /// write-only handle (truncate mode) is read through `/proc/self/fd`.
    #[test]
    fn a_partial_record_is_cut_only_where_the_file_ends_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        for readable in [true, false] {
            fs::write(&path, b"{\"a\":1}\n{\"b\":").unwrap();
            let file = OpenOptions::new()
                .read(readable)
                .append(true)
                .open(&path)
                .unwrap();
            // Another process's bytes after the partial record: nothing is cut.
            fs::write(&path, b"{\"a\":1}\n{\"b\":{\"x\":2}\n").unwrap();
            assert_eq!(cut_partial_tail(&file, b"{\"b\":", 13).unwrap(), None);
            assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":{\"x\":2}\n");
            // The partial record is the file's end: cut (also past a stale expected end).
            fs::write(&path, b"{\"x\":2}\n{\"a\":1}\n{\"b\":").unwrap();
            assert_eq!(cut_partial_tail(&file, b"{\"b\":", 13).unwrap(), Some(16));
            assert_eq!(fs::read(&path).unwrap(), b"{\"x\":2}\n{\"a\":1}\n");
            // A partial record larger than the read chunk, and one longer than the file.
            let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
            fs::write(&path, [&b"{}\n"[..], &big].concat()).unwrap();
            assert_eq!(cut_partial_tail(&file, &big, 0).unwrap(), Some(3));
            assert_eq!(cut_partial_tail(&file, &big, 0).unwrap(), None);
            assert_eq!(fs::read(&path).unwrap(), b"{}\n");
        }
    }

    /// `mmap` with durability on: the close cuts the padding off the file (its size
    /// changes), then syncs the file, so that a crash after the close cannot bring the
    /// padding back: `fdatasync` for `data` (the `msync` of the records does not cover the
    /// size), `fsync` for `full` (the second of its close, the first with the records).
    #[test]
    fn an_mmap_close_syncs_the_cut_of_the_padding() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, syncs) in [
            (Durability::None, 0),
            (Durability::Data, 1),
            (Durability::Full, 2),
        ] {
            let path = dir.path().join(format!("{durability}.log"));
            let mut sink = FileOptions::new()
                .strategy(IoStrategy::Mmap)
                .durability(durability)
                .open(&path)
                .unwrap();
            sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
            assert!(fs::metadata(&path).unwrap().len() > 2, "padded");
            let before = sink.file_syncs;
            sink.close().unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), 2, "{durability}");
            assert_eq!(sink.file_syncs - before, syncs, "{durability}");
        }
    }

    /// A directory that cannot be synced does not leave the records unsynced: their sync is
    /// made all the same (in every strategy), and the directory's error is the batch's.
    #[test]
    fn a_failed_directory_sync_still_syncs_the_records() {
        let dir = tempfile::tempdir().unwrap();
        for strategy in [IoStrategy::Line, IoStrategy::Block, IoStrategy::Mmap] {
            let top = dir.path().join(format!("{strategy}"));
            let mut sink = FileOptions::new()
                .strategy(strategy)
                .durability(Durability::Data)
                .reopen_if_moved(false)
                .open(top.join("app.log"))
                .unwrap();
            fs::rename(&top, dir.path().join(format!("{strategy}-moved"))).unwrap();
            let err = sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap_err();
            assert_eq!(err.written, 1);
            assert!(
                err.error
                    .to_string()
                    .starts_with("cannot sync the directory"),
                "{err}"
            );
            assert_eq!(sink.synced, 2, "{strategy}");
            // Given up (gone from its path): the next batch is synced without an error.
            sink.write_batch(&Batch::new(b"b\n", &[2])).unwrap();
            assert_eq!(sink.synced, 4, "{strategy}");
        }
    }
}

deserialize_by_from_str!(IoStrategy, OpenMode, Durability);
