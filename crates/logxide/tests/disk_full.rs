//! A disk that fills up and frees space again, on real file systems the test mounts: a small
//! tmpfs (and, for `mmap`, an ext2 image on a loop device: a file system without
//! `fallocate`). A file sink logs next to a memory sink; a filler file fills the file system;
//! records logged into the full disk fail for the file sink with `ENOSPC` readable in the
//! metrics while the memory sink gets every record; the filler is deleted and the file sink
//! writes again. The file is whole lines of JSON throughout.
//!
//! Mounting needs root: without it (or when `mount` fails, e.g. in a container without
//! `CAP_SYS_ADMIN`) these tests print a notice and pass; `/dev/full` in `writer_files.rs`
//! covers ENOSPC there. `line` and `block` run in this process; `mmap` runs in a child process
//! (the test binary runs itself), because a mapping that writes a page the file system cannot
//! back kills the process with `SIGBUS`: that must show as a failed test naming the signal.
//!
//! Also here: a sink that fails with `EIO` for a while (all of a batch, or after part of it),
//! then recovers.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;

use common::*;
use logxide::sink::{Batch, FileOptions, FnSink, IoStrategy, MemorySink, Sink, SinkError};
use logxide::writer::{Writer, WriterState};

/// Set in the child process: `<directory>|<strategy>`.
const CHILD: &str = "LOGXIDE_TEST_DISK_FULL_CHILD";

/// Records logged before the disk fills, into the full disk, and after space returns.
const N1: usize = 400;
const N2: usize = 4000;
const N3: usize = 400;
const TOTAL: usize = N1 + N2 + N3;
/// Space left free after filling: room for part of the records logged into the full disk, so
/// that a batch fails part-way through.
const FREE: u64 = 16 << 10;

/// A file system mounted on a fresh temporary directory; unmounted when dropped, also when
/// the test fails (lazily if something still holds it open), before the directory goes.
struct Mount {
    path: PathBuf,
    // Dropped after `drop` unmounted: the directory, then the image file (ext2).
    _dir: tempfile::TempDir,
    _image: Option<tempfile::NamedTempFile>,
}

impl Drop for Mount {
    fn drop(&mut self) {
        if run(Command::new("umount").arg(&self.path)).is_err() {
            let _ = run(Command::new("umount").arg("-l").arg(&self.path));
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{cmd:?}: {e}")),
    }
}

fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Mount {
    /// A tmpfs of `size` (mount's syntax, e.g. `1m`), or `None` (with a notice) when it
    /// cannot be mounted here.
    fn tmpfs(test: &str, size: &str) -> Option<Mount> {
        if !is_root() {
            eprintln!("{test}: SKIPPED (not root: cannot mount a small tmpfs)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path()));
        if let Err(e) = mounted {
            eprintln!("{test}: SKIPPED (cannot mount a tmpfs: {e})");
            return None;
        }
        Some(Mount {
            path: dir.path().to_owned(),
            _dir: dir,
            _image: None,
        })
    }

    /// An ext2 file system of `bytes` in an image file, loop-mounted, or `None` (with a
    /// notice) when mkfs.ext2 or loop mounts are not available.
    fn ext2(test: &str, bytes: u64) -> Option<Mount> {
        if !is_root() {
            eprintln!("{test}: SKIPPED (not root: cannot loop-mount an ext2 image)");
            return None;
        }
        let image = tempfile::NamedTempFile::new().unwrap();
        image.as_file().set_len(bytes).unwrap();
        if let Err(e) = run(Command::new("mkfs.ext2")
            .args(["-q", "-F"])
            .arg(image.path()))
        {
            eprintln!("{test}: SKIPPED (cannot make an ext2 image: {e})");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = run(Command::new("mount")
            .args(["-t", "ext2", "-o", "loop"])
            .arg(image.path())
            .arg(dir.path()));
        if let Err(e) = mounted {
            eprintln!("{test}: SKIPPED (cannot loop-mount an ext2 image: {e})");
            return None;
        }
        Some(Mount {
            path: dir.path().to_owned(),
            _dir: dir,
            _image: Some(image),
        })
    }
}

/// Fills the file system holding `dir` with a file, then gives `free` bytes back; returns the
/// file's path.
fn fill(dir: &Path, free: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let chunk = vec![b'f'; 64 << 10];
    let err = loop {
        if let Err(e) = f.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOSPC),
        "filling the file system: {err}"
    );
    let len = f.metadata().unwrap().len();
    assert!(len > free, "the file system was full before the filler");
    f.set_len(len - free).unwrap();
    path
}

/// The sequence numbers of the records in the log file, checking that every line is a whole
/// JSON record of producer 0, in increasing order, with no NUL and no torn line. With `mmap`
/// while the sink is open, the file ends with NUL padding: the records are what precedes it.
fn file_records(path: &Path, strategy: IoStrategy) -> Vec<usize> {
    let bytes = fs::read(path).unwrap();
    let content = match bytes.iter().position(|&b| b == 0) {
        Some(at) => {
            assert_eq!(strategy, IoStrategy::Mmap, "NUL at {at} without mmap");
            assert!(
                bytes[at..].iter().all(|&b| b == 0),
                "NUL inside the records"
            );
            &bytes[..at]
        }
        None => &bytes[..],
    };
    let mut seqs = Vec::new();
    for l in split_lines(content) {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        let (p, s) = parse(l);
        assert_eq!(p, 0);
        if let Some(&last) = seqs.last() {
            assert!(last < s, "record {s} after {last}");
        }
        seqs.push(s);
    }
    seqs
}

/// Logs to a file sink and a memory sink while the file system holding `dir` fills up and
/// frees space again; checks what this file's header says. Returns a one-line summary.
fn fill_and_recover(dir: &Path, strategy: IoStrategy, mmap_chunk: usize) -> String {
    let path = dir.join("app.log");
    let file = FileOptions::new()
        .strategy(strategy)
        .mmap_chunk(mmap_chunk)
        .open(&path)
        .unwrap();
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(1024)
        .sink(file)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let log = |seqs: Range<usize>| {
        for s in seqs {
            h.enqueue(line(0, s).as_bytes()).unwrap();
        }
        writer.flush(None).unwrap();
    };

    // Room for everything.
    log(0..N1);
    let m = writer.metrics();
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (N1 as u64, 0));
    assert_eq!(file_records(&path, strategy), (0..N1).collect::<Vec<_>>());

    // The disk fills up.
    let filler = fill(dir, FREE);
    log(N1..N1 + N2);
    let m = writer.metrics();
    let full = m.sinks[0].clone();
    assert!(
        full.failed > 0,
        "{strategy}: nothing failed on a full disk: {m:?}"
    );
    assert_eq!(full.written + full.failed, (N1 + N2) as u64);
    assert!(full.errors >= 1);
    let err = full.last_error.clone().unwrap_or_default();
    assert!(err.contains("No space left on device"), "{strategy}: {err}");
    assert!(h.last_error().unwrap().contains("No space left on device"));
    // The memory sink got every record, so none failed for the writer.
    assert_eq!(m.sinks[1].written, (N1 + N2) as u64);
    assert_eq!(m.sinks[1].failed, 0);
    assert_eq!((m.written, m.failed, m.dropped), ((N1 + N2) as u64, 0, 0));
    assert_eq!(m.state, WriterState::Running);
    let seqs = file_records(&path, strategy);
    assert_eq!(
        seqs.len() as u64,
        full.written,
        "{strategy}: file vs metrics"
    );
    assert_eq!(seqs[..N1], (0..N1).collect::<Vec<_>>()[..]);

    // Space returns.
    fs::remove_file(&filler).unwrap();
    log(N1 + N2..TOTAL);
    let m = writer.metrics();
    assert_eq!(
        m.sinks[0].failed, full.failed,
        "{strategy}: failed after recovery"
    );
    assert_eq!(m.sinks[0].written, full.written + N3 as u64);
    let seqs = file_records(&path, strategy);
    assert_eq!(seqs.len() as u64, m.sinks[0].written);
    assert_eq!(
        seqs[seqs.len() - N3..],
        (N1 + N2..TOTAL).collect::<Vec<_>>()[..]
    );

    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!((m.written, m.failed, m.dropped), (TOTAL as u64, 0, 0));
    assert_eq!(m.sinks[1].written, TOTAL as u64);
    assert!(mem.contents() == expected_bytes(0, 0..TOTAL), "memory sink");
    // Closed (mmap: trimmed), the file is whole lines without padding.
    let bytes = fs::read(&path).unwrap();
    assert!(!bytes.contains(&0), "{strategy}: NUL in the closed file");
    let seqs = file_records(&path, strategy);
    assert_eq!(seqs.len() as u64, m.sinks[0].written);
    assert_eq!(m.sinks[0].written + m.sinks[0].failed, TOTAL as u64);
    let into_full = seqs.iter().filter(|&&s| (N1..N1 + N2).contains(&s)).count();
    assert!(
        into_full > 0,
        "{strategy}: the space left free was not used"
    );
    format!(
        "{strategy}: {into_full} of {N2} records written into the full disk, {} failed \
         ({} failed calls; last error: {err})",
        m.sinks[0].failed, m.sinks[0].errors
    )
}

/// The child process: runs [`fill_and_recover`] on the directory the parent mounted.
#[test]
fn child_entry() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (dir, chunk) = spec.rsplit_once('|').unwrap();
        let summary = fill_and_recover(Path::new(dir), IoStrategy::Mmap, chunk.parse().unwrap());
        println!("CHILD-OK {summary}");
    }
}

/// Runs [`fill_and_recover`] for `mmap` with `chunk` in a child process on `dir`; panics with
/// what happened if the child failed, naming the signal that killed it.
fn mmap_in_child(dir: &Path, chunk: usize) -> String {
    let strategy = "mmap";
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{chunk}", dir.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.signal() {
        Some(libc::SIGBUS) => panic!(
            "{strategy}: the child was killed by SIGBUS: a mapped page the full file system \
             could not back\n{stdout}\n{stderr}"
        ),
        Some(sig) => panic!("{strategy}: the child was killed by signal {sig}\n{stdout}\n{stderr}"),
        None => {}
    }
    assert!(
        out.status.success(),
        "{strategy}: {}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("CHILD-OK ").map(|(_, summary)| summary))
        .unwrap_or_else(|| panic!("{strategy}: no result from the child\n{stdout}\n{stderr}"))
        .to_owned()
}

#[test]
fn enospc_on_a_small_tmpfs_line() {
    let Some(fs) = Mount::tmpfs("enospc_on_a_small_tmpfs_line", "1m") else {
        return;
    };
    println!("{}", fill_and_recover(&fs.path, IoStrategy::Line, 8 << 20));
}

#[test]
fn enospc_on_a_small_tmpfs_block() {
    let Some(fs) = Mount::tmpfs("enospc_on_a_small_tmpfs_block", "1m") else {
        return;
    };
    println!("{}", fill_and_recover(&fs.path, IoStrategy::Block, 8 << 20));
}

#[test]
fn enospc_on_a_small_tmpfs_mmap_in_a_child() {
    let Some(fs) = Mount::tmpfs("enospc_on_a_small_tmpfs_mmap_in_a_child", "1m") else {
        return;
    };
    println!("{}", mmap_in_child(&fs.path, 64 << 10));
}

/// The default 8 MiB chunk does not fit on a 1 MiB file system: the file grows by what each
/// batch needs instead (before, opening failed with `ENOSPC`).
#[test]
fn enospc_on_a_small_tmpfs_mmap_default_chunk_in_a_child() {
    let test = "enospc_on_a_small_tmpfs_mmap_default_chunk_in_a_child";
    let Some(fs) = Mount::tmpfs(test, "1m") else {
        return;
    };
    println!("{}", mmap_in_child(&fs.path, 8 << 20));
}

/// ext2 has no `fallocate`: the `mmap` sink reserves the space it maps by writing zeros
/// (before, it extended the file sparsely, and the child died of SIGBUS on the full disk).
#[test]
fn enospc_on_ext2_without_fallocate_mmap_in_a_child() {
    let test = "enospc_on_ext2_without_fallocate_mmap_in_a_child";
    let Some(fs) = Mount::ext2(test, 2 << 20) else {
        return;
    };
    println!("{}", mmap_in_child(&fs.path, 64 << 10));
}

/// How the `EIO` sink behaves: 0 healthy, 1 every batch fails, 2 half of each batch is
/// written, then the error.
const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const HALF: u8 = 2;

#[test]
fn eio_for_a_while_then_recovery() {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let refused = Arc::new(AtomicU64::new(0));
    let mem = MemorySink::new();
    let sink = {
        let (mode, refused, mut mem) = (Arc::clone(&mode), Arc::clone(&refused), mem.clone());
        FnSink::new("disk", move |b: &Batch<'_>| -> Result<(), SinkError> {
            let eio = || io::Error::from_raw_os_error(libc::EIO);
            match mode.load(SeqCst) {
                HEALTHY => mem.write_batch(b),
                FAILING => {
                    refused.fetch_add(b.len() as u64, SeqCst);
                    Err(SinkError::new(eio()))
                }
                _ => {
                    let k = b.len() / 2;
                    mem.write_batch(&b.take(k))?;
                    refused.fetch_add((b.len() - k) as u64, SeqCst);
                    Err(SinkError {
                        written: k,
                        error: eio(),
                    })
                }
            }
        })
    };
    let writer = Writer::builder().capacity(256).sink(sink).build().unwrap();
    let h = writer.handle();
    let log = |seqs: Range<usize>| {
        for s in seqs {
            h.enqueue(line(0, s).as_bytes()).unwrap();
        }
        writer.flush(None).unwrap();
    };
    log(0..100);
    mode.store(FAILING, SeqCst);
    log(100..300);
    let m = writer.metrics();
    assert_eq!((m.written, m.failed), (100, 200));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (100, 200));
    assert!(m.sinks[0].errors >= 1);
    let err = m.sinks[0].last_error.clone().unwrap();
    assert!(err.contains("Input/output error"), "{err}");
    assert!(h.last_error().unwrap().starts_with("disk: "));
    mode.store(HALF, SeqCst);
    log(300..600);
    let m = writer.metrics();
    let half_failed = m.failed - 200;
    assert!(half_failed > 0 && half_failed < 300, "{m:?}");
    mode.store(HEALTHY, SeqCst);
    log(600..800);
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(m.failed, refused.load(SeqCst));
    assert_eq!(m.written + m.failed, 800);
    assert_eq!(m.sinks[0].written, m.written);
    // What the sink wrote: in order, every record not refused, the last 200 all there.
    let seqs: Vec<usize> = split_lines(&mem.contents())
        .into_iter()
        .map(|l| parse(l).1)
        .collect();
    assert_eq!(seqs.len() as u64, m.written);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seqs[..100], (0..100).collect::<Vec<_>>()[..]);
    assert_eq!(seqs[seqs.len() - 200..], (600..800).collect::<Vec<_>>()[..]);
    assert!(!seqs.iter().any(|s| (100..300).contains(s)));
}
