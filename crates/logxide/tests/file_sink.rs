//! Tests of the file sink: exact file bytes for every strategy and open mode, mmap growth,
//! append-mode repair, permissions, flags, and error handling.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use logxide::sink::{Batch, Durability, FileOptions, FileSink, IoStrategy, OpenMode, Sink};

const STRATEGIES: [IoStrategy; 3] = [IoStrategy::Line, IoStrategy::Block, IoStrategy::Mmap];
const MODES: [OpenMode; 2] = [OpenMode::Truncate, OpenMode::Append];

/// A batch that owns its bytes.
struct Owned {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Owned {
    fn new<S: AsRef<[u8]>>(records: &[S]) -> Self {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for r in records {
            bytes.extend_from_slice(r.as_ref());
            assert_eq!(bytes.last(), Some(&b'\n'));
            ends.push(bytes.len());
        }
        Owned { bytes, ends }
    }

    fn batch(&self) -> Batch<'_> {
        Batch::new(&self.bytes, &self.ends)
    }
}

fn write(sink: &mut FileSink, records: &[&str]) {
    sink.write_batch(&Owned::new(records).batch()).unwrap();
}

fn opts(strategy: IoStrategy) -> FileOptions {
    FileOptions::new().strategy(strategy).mmap_chunk(4096)
}

#[test]
fn every_strategy_and_mode_writes_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        for mode in MODES {
            for durability in [Durability::None, Durability::Full] {
                let path = dir
                    .path()
                    .join(format!("{strategy}-{mode}-{durability}.log"));
                fs::write(&path, "old 1\nold 2\n").unwrap();
                let mut sink = opts(strategy)
                    .open_mode(mode)
                    .durability(durability)
                    .open(&path)
                    .unwrap();
                assert_eq!(sink.strategy(), strategy);
                assert_eq!(sink.path(), path);
                let mut expected = match mode {
                    OpenMode::Truncate => String::new(),
                    OpenMode::Append => "old 1\nold 2\n".to_string(),
                };
                assert_eq!(sink.len(), expected.len() as u64);
                for i in 0..5 {
                    let recs: Vec<String> = (0..=i)
                        .map(|j| format!("{{\"b\":{i},\"r\":{j}}}\n"))
                        .collect();
                    let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
                    write(&mut sink, &recs);
                    expected.extend(recs);
                    assert_eq!(sink.len(), expected.len() as u64);
                }
                sink.flush().unwrap();
                sink.close().unwrap();
                assert_eq!(
                    fs::read_to_string(&path).unwrap(),
                    expected,
                    "{strategy} {mode} {durability}"
                );
                drop(sink);
                assert_eq!(fs::read_to_string(&path).unwrap(), expected);
            }
        }
    }
}

#[test]
fn coalesce_bytes_per_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    assert_eq!(opts(IoStrategy::Line).open(&p).unwrap().coalesce_bytes(), 0);
    assert_eq!(opts(IoStrategy::Mmap).open(&p).unwrap().coalesce_bytes(), 0);
    assert_eq!(
        opts(IoStrategy::Block).open(&p).unwrap().coalesce_bytes(),
        64 * 1024
    );
    let block = opts(IoStrategy::Block).block_size(1000).open(&p).unwrap();
    assert_eq!(block.coalesce_bytes(), 1000);
    assert_eq!(block.name(), p.display().to_string());
}

#[test]
fn empty_sink_leaves_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        let p = dir.path().join(format!("{strategy}.log"));
        let mut sink = opts(strategy).open(&p).unwrap();
        sink.write_batch(&Batch::new(b"", &[])).unwrap();
        assert!(sink.is_empty());
        sink.close().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"");
    }
}

#[test]
fn mmap_grows_over_many_chunks_and_is_readable_before_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.log");
    let mut sink = opts(IoStrategy::Mmap).open(&path).unwrap();
    let mut expected = Vec::new();
    for b in 0..400 {
        let recs: Vec<String> = (0..10)
            .map(|r| {
                format!(
                    "{{\"batch\":{b},\"rec\":{r},\"pad\":\"{}\"}}\n",
                    "x".repeat(b % 97)
                )
            })
            .collect();
        let owned = Owned::new(&recs);
        sink.write_batch(&owned.batch()).unwrap();
        expected.extend_from_slice(&owned.bytes);
        assert_eq!(sink.len(), expected.len() as u64);
        if b % 37 == 0 {
            // Another reader sees the records at once, followed only by padding.
            let seen = fs::read(&path).unwrap();
            assert!(seen.len() >= expected.len());
            assert_eq!(&seen[..expected.len()], &expected[..]);
            assert!(seen[expected.len()..].iter().all(|&b| b == 0));
        }
    }
    assert!(expected.len() > 300 * 1024, "{}", expected.len());
    sink.close().unwrap();
    let got = fs::read(&path).unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(!got.contains(&0));
    assert_eq!(got, expected);
}

#[test]
fn mmap_batch_larger_than_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let mut sink = opts(IoStrategy::Mmap).open(&path).unwrap();
    write(&mut sink, &["first\n"]);
    let recs: Vec<String> = (0..2000)
        .map(|i| format!("record number {i:08}\n"))
        .collect();
    let owned = Owned::new(&recs);
    assert!(owned.bytes.len() > 3 * 4096);
    sink.write_batch(&owned.batch()).unwrap();
    write(&mut sink, &["last\n"]);
    sink.close().unwrap();
    let mut expected = b"first\n".to_vec();
    expected.extend_from_slice(&owned.bytes);
    expected.extend_from_slice(b"last\n");
    assert_eq!(fs::read(&path).unwrap(), expected);
}

#[test]
fn mmap_drop_without_close_truncates_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for mode in MODES {
        let path = dir.path().join(format!("drop-{mode}.log"));
        fs::write(&path, "before\n").unwrap();
        {
            let mut sink = opts(IoStrategy::Mmap).open_mode(mode).open(&path).unwrap();
            write(&mut sink, &["a\n", "b\n"]);
            write(&mut sink, &["c\n"]);
            assert!(fs::metadata(&path).unwrap().len() >= 4096);
        }
        let expected = match mode {
            OpenMode::Truncate => "a\nb\nc\n",
            OpenMode::Append => "before\na\nb\nc\n",
        };
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }
}

#[test]
fn mmap_write_after_close_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.log");
    let mut sink = opts(IoStrategy::Mmap).open(&path).unwrap();
    write(&mut sink, &["a\n"]);
    sink.close().unwrap();
    write(&mut sink, &["b\n"]);
    sink.close().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "a\nb\n");
}

#[test]
fn append_trims_crash_tail_of_nuls() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        let path = dir.path().join(format!("crash-{strategy}.log"));
        let mut content = b"a\nb\n".to_vec();
        content.resize(content.len() + 10_000, 0);
        fs::write(&path, &content).unwrap();
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        assert_eq!(sink.len(), 4);
        write(&mut sink, &["c\n"]);
        sink.close().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"a\nb\nc\n", "{strategy}");
    }
}

#[test]
fn append_ends_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        for torn in [&b"a\nb"[..], b"a\nb\0\0\0"] {
            let path = dir.path().join(format!("torn-{strategy}.log"));
            fs::write(&path, torn).unwrap();
            let mut sink = opts(strategy)
                .open_mode(OpenMode::Append)
                .open(&path)
                .unwrap();
            // The `\n` ending "b" is written with the first record.
            assert_eq!(sink.len(), 3);
            write(&mut sink, &["c\n"]);
            assert_eq!(sink.len(), 6);
            sink.close().unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"a\nb\nc\n", "{strategy}");
        }
    }
}

#[test]
fn append_to_file_of_only_nuls_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        let path = dir.path().join(format!("nuls-{strategy}.log"));
        fs::write(&path, vec![0u8; 70_000]).unwrap();
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        assert!(sink.is_empty());
        write(&mut sink, &["c\n"]);
        sink.close().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"c\n");
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn permissions_apply_umask() {
    // SAFETY: `umask` only changes the process file-mode mask; no memory is involved. Other
    // tests of this binary do not check file modes.
    let old = unsafe { libc::umask(0o022) };
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        let default = dir.path().join(format!("default-{strategy}.log"));
        drop(opts(strategy).open(&default).unwrap());
        assert_eq!(mode_of(&default), 0o644);
        let private = dir.path().join(format!("private-{strategy}.log"));
        drop(opts(strategy).permissions(0o600).open(&private).unwrap());
        assert_eq!(mode_of(&private), 0o600);
        let wide = dir.path().join(format!("wide-{strategy}.log"));
        drop(opts(strategy).permissions(0o666).open(&wide).unwrap());
        assert_eq!(mode_of(&wide), 0o644);
    }
    // An existing file keeps its mode.
    let existing = dir.path().join("default-line.log");
    drop(
        opts(IoStrategy::Line)
            .permissions(0o600)
            .open(&existing)
            .unwrap(),
    );
    assert_eq!(mode_of(&existing), 0o644);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
}

#[test]
fn fd_is_close_on_exec() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        for mode in MODES {
            let sink = opts(strategy)
                .open_mode(mode)
                .open(dir.path().join("cloexec.log"))
                .unwrap();
            // SAFETY: F_GETFD on a descriptor the sink keeps open only reads its flags.
            let flags = unsafe { libc::fcntl(sink.as_raw_fd(), libc::F_GETFD) };
            assert!(flags >= 0);
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "{strategy} {mode}");
        }
    }
}

#[test]
fn symlinks_followed_unless_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.log");
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for strategy in STRATEGIES {
        fs::write(&target, "").unwrap();
        let err = opts(strategy)
            .follow_symlinks(false)
            .open(&link)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot open log file {}: ", link.display())),
            "{msg}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"");

        let mut sink = opts(strategy).open(&link).unwrap();
        write(&mut sink, &["via link\n"]);
        sink.close().unwrap();
        drop(sink);
        assert_eq!(fs::read(&target).unwrap(), b"via link\n");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // A plain file opens fine without following symlinks.
    drop(
        opts(IoStrategy::Line)
            .follow_symlinks(false)
            .open(&target)
            .unwrap(),
    );
}

#[test]
fn parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c/app.log");
    let mut sink = FileSink::open(&nested).unwrap();
    write(&mut sink, &["x\n"]);
    sink.close().unwrap();
    assert_eq!(fs::read(&nested).unwrap(), b"x\n");

    let missing = dir.path().join("missing/app.log");
    let err = FileOptions::new()
        .create_parents(false)
        .open(&missing)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot open log file {}: ", missing.display())),
        "{msg}"
    );
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn zero_mmap_chunk_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileOptions::new()
        .strategy(IoStrategy::Mmap)
        .mmap_chunk(0)
        .open(dir.path().join("a.log"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn mmap_refuses_non_regular_file() {
    if !Path::new("/dev/null").exists() {
        return;
    }
    let err = opts(IoStrategy::Mmap)
        .open_mode(OpenMode::Append)
        .open("/dev/null")
        .unwrap_err();
    assert!(err.to_string().contains("/dev/null"), "{err}");
}

#[test]
fn dev_full_reports_enospc_and_keeps_working() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open("/dev/full")
            .unwrap();
        let owned = Owned::new(&["a\n", "b\n"]);
        for _ in 0..2 {
            let err = sink.write_batch(&owned.batch()).unwrap_err();
            assert_eq!(err.written, 0);
            assert_eq!(err.error.raw_os_error(), Some(libc::ENOSPC));
        }
        assert_eq!(sink.len(), 0);
        sink.flush().unwrap();
    }
}

/// Runs in a child process (see `partial_write_is_cut_back_to_a_record_boundary`): a file size
/// limit makes a write stop in the middle of a record.
fn partial_write_child(dir: &Path) {
    // SAFETY: ignoring SIGXFSZ makes writes beyond the limit fail with EFBIG instead of
    // killing the process; setrlimit only changes this (child) process's limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let set_limit = |limit: libc::rlim_t| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid rlimit struct for the duration of both calls.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
            lim.rlim_cur = limit.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
    };
    let rec = |c: char| format!("{}\n", c.to_string().repeat(299));
    for (i, mode) in MODES.into_iter().enumerate() {
        for strategy in [IoStrategy::Line, IoStrategy::Block] {
            let path = dir.join(format!("limit-{i}-{strategy}.log"));
            set_limit(libc::RLIM_INFINITY);
            let mut sink = opts(strategy).open_mode(mode).open(&path).unwrap();
            let first = Owned::new(&[rec('a')]);
            sink.write_batch(&first.batch()).unwrap();
            set_limit(1000);
            // 300 + 4 * 300 > 1000: the third record of this batch is cut at byte 1000.
            let batch = Owned::new(&[rec('b'), rec('c'), rec('d'), rec('e')]);
            let err = sink.write_batch(&batch.batch()).unwrap_err();
            assert_eq!(err.written, 2, "{strategy} {mode}");
            assert_eq!(err.error.raw_os_error(), Some(libc::EFBIG));
            assert_eq!(sink.len(), 900);
            assert_eq!(fs::metadata(&path).unwrap().len(), 900);
            // The rest fails as a whole.
            let err = sink.write_batch(&batch.batch().skip(2)).unwrap_err();
            assert_eq!(err.written, 0);
            assert_eq!(fs::metadata(&path).unwrap().len(), 900);
            // Space comes back: the next records follow the last complete one.
            set_limit(libc::RLIM_INFINITY);
            sink.write_batch(&batch.batch().skip(2)).unwrap();
            sink.close().unwrap();
            let expected: String = ['a', 'b', 'c', 'd', 'e'].into_iter().map(rec).collect();
            assert_eq!(fs::read_to_string(&path).unwrap(), expected);

            // Another process appended a record the sink did not see (it does not follow the
            // path, so its length is 300 behind): the cut removes only the partial record,
            // never the other process's record nor one reported written.
            let path = dir.join(format!("shared-{i}-{strategy}.log"));
            set_limit(libc::RLIM_INFINITY);
            let mut sink = opts(strategy)
                .open_mode(mode)
                .reopen_if_moved(false)
                .open(&path)
                .unwrap();
            sink.write_batch(&first.batch()).unwrap();
            let mut other = fs::OpenOptions::new().append(true).open(&path).unwrap();
            io::Write::write_all(&mut other, rec('x').as_bytes()).unwrap();
            set_limit(1000);
            // 600 + 300 fits, the next record is cut at byte 1000.
            let err = sink.write_batch(&batch.batch()).unwrap_err();
            assert_eq!(err.written, 1, "{strategy} {mode}");
            assert_eq!(err.error.raw_os_error(), Some(libc::EFBIG));
            let expected: String = ['a', 'x', 'b'].into_iter().map(rec).collect();
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                expected,
                "{strategy} {mode}"
            );
            assert_eq!(sink.len(), 900, "{strategy} {mode}");
            set_limit(libc::RLIM_INFINITY);
            sink.write_batch(&batch.batch().skip(1)).unwrap();
            sink.close().unwrap();
            let expected: String = ['a', 'x', 'b', 'c', 'd', 'e']
                .into_iter()
                .map(rec)
                .collect();
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                expected,
                "{strategy} {mode}"
            );
        }
    }
}

#[test]
fn partial_write_is_cut_back_to_a_record_boundary() {
    const VAR: &str = "LOGXIDE_FILE_SINK_CHILD_DIR";
    if let Some(dir) = std::env::var_os(VAR) {
        partial_write_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "partial_write_is_cut_back_to_a_record_boundary",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(VAR, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The child really ran the test (and did not, e.g., filter it out).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn parse_strategy() {
    for (s, want) in [
        ("line", IoStrategy::Line),
        ("block", IoStrategy::Block),
        ("mmap", IoStrategy::Mmap),
        ("LINE", IoStrategy::Line),
        ("  Block ", IoStrategy::Block),
        ("\tMmAp\n", IoStrategy::Mmap),
    ] {
        assert_eq!(s.parse::<IoStrategy>().unwrap(), want, "{s:?}");
    }
    for s in STRATEGIES {
        assert_eq!(s.to_string().parse::<IoStrategy>().unwrap(), s);
    }
    assert_eq!(IoStrategy::default(), IoStrategy::Block);
    let err = "foo".parse::<IoStrategy>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid I/O strategy "foo": expected one of line, block, mmap"#
    );
    assert!("".parse::<IoStrategy>().is_err());
    assert!("mmap2".parse::<IoStrategy>().is_err());
    let _: &dyn std::error::Error = &err;
}

#[test]
fn parse_open_mode() {
    for (s, want) in [
        ("w", OpenMode::Truncate),
        ("truncate", OpenMode::Truncate),
        (" W ", OpenMode::Truncate),
        ("TRUNCATE", OpenMode::Truncate),
        ("a", OpenMode::Append),
        ("append", OpenMode::Append),
        ("A", OpenMode::Append),
        (" Append ", OpenMode::Append),
    ] {
        assert_eq!(s.parse::<OpenMode>().unwrap(), want, "{s:?}");
    }
    assert_eq!(OpenMode::Truncate.to_string(), "truncate");
    assert_eq!(OpenMode::Append.to_string(), "append");
    assert_eq!(OpenMode::default(), OpenMode::Truncate);
    assert_eq!(
        "r".parse::<OpenMode>().unwrap_err().to_string(),
        r#"invalid open mode "r": expected one of truncate, append, w, a"#
    );
}

#[test]
fn parse_durability() {
    for (s, want) in [
        ("none", Durability::None),
        (" NONE ", Durability::None),
        ("data", Durability::Data),
        ("fdatasync", Durability::Data),
        ("FDataSync", Durability::Data),
        ("full", Durability::Full),
        ("fsync", Durability::Full),
        (" Full", Durability::Full),
    ] {
        assert_eq!(s.parse::<Durability>().unwrap(), want, "{s:?}");
    }
    for (d, name) in [
        (Durability::None, "none"),
        (Durability::Data, "data"),
        (Durability::Full, "full"),
    ] {
        assert_eq!(d.to_string(), name);
    }
    assert_eq!(Durability::default(), Durability::None);
    assert_eq!(
        "sync".parse::<Durability>().unwrap_err().to_string(),
        r#"invalid durability "sync": expected one of none, data, full, fdatasync, fsync"#
    );
}

#[test]
fn serde_lowercase_names() {
    assert_eq!(
        serde_json::to_string(&IoStrategy::Mmap).unwrap(),
        r#""mmap""#
    );
    assert_eq!(
        serde_json::from_str::<IoStrategy>(r#""line""#).unwrap(),
        IoStrategy::Line
    );
    // Deserialized as the text is parsed: any case (see tests/serde_options.rs).
    assert_eq!(
        serde_json::from_str::<IoStrategy>(r#""Line""#).unwrap(),
        IoStrategy::Line
    );
    assert!(serde_json::from_str::<IoStrategy>(r#""direct""#).is_err());
    assert_eq!(
        serde_json::to_string(&OpenMode::Append).unwrap(),
        r#""append""#
    );
    assert_eq!(
        serde_json::from_str::<OpenMode>(r#""a""#).unwrap(),
        OpenMode::Append
    );
    assert_eq!(
        serde_json::to_string(&Durability::Full).unwrap(),
        r#""full""#
    );
    assert_eq!(
        serde_json::from_str::<Durability>(r#""fdatasync""#).unwrap(),
        Durability::Data
    );
}

/// NUL bytes before the NUL tail are kept with the records around them (a raw line may hold
/// NULs; an `mmap` writer killed during a copy leaves a prefix of its batch, no hole): only
/// the tail and a torn last JSON record go.
#[test]
fn append_keeps_nul_bytes_before_the_nul_tail() {
    use logxide::sink::{FileOptions, IoStrategy, OpenMode};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hole.log");
    let mut bytes = b"{\"a\":1}\n{\"b\":2}\n{\"c\"".to_vec();
    bytes.extend([0u8; 48]);
    bytes.extend(b"3}\n{\"d\":4}\n");
    let kept = bytes.clone();
    bytes.extend(b"{\"e\":");
    bytes.extend([0u8; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    for strategy in [IoStrategy::Block, IoStrategy::Mmap] {
        let sink = FileOptions::new()
            .strategy(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        drop(sink);
        assert_eq!(std::fs::read(&path).unwrap(), kept);
    }
}

#[test]
fn append_drops_a_json_record_cut_short_but_keeps_foreign_text() {
    use logxide::sink::{FileOptions, OpenMode};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.log");
    std::fs::write(&path, b"{\"a\":1}\n{\"b\":").unwrap();
    drop(
        FileOptions::new()
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap(),
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
    std::fs::write(&path, b"{\"a\":1}\nplain text").unwrap();
    drop(
        FileOptions::new()
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap(),
    );
    // Only opened: left as it was; the first record starts on a line of its own.
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\nplain text");
    for strategy in STRATEGIES {
        std::fs::write(&path, b"{\"a\":1}\nplain text").unwrap();
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        write(&mut sink, &["{\"b\":2}\n"]);
        sink.close().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{\"a\":1}\nplain text\n{\"b\":2}\n",
            "{strategy}"
        );
    }
}

#[test]
fn a_file_moved_or_deleted_by_another_tool_is_replaced_at_the_next_batch() {
    use logxide::sink::{Batch, FileOptions, IoStrategy, Sink};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let rotated = dir.path().join("app.log.1");
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        let _ = std::fs::remove_file(&path);
        let mut sink = FileOptions::new().strategy(strategy).open(&path).unwrap();
        sink.write_batch(&Batch::new(b"1\n", &[2])).unwrap();
        // logrotate-style: rename, then the next batch goes to a new file at the path.
        std::fs::rename(&path, &rotated).unwrap();
        sink.write_batch(&Batch::new(b"2\n", &[2])).unwrap();
        assert_eq!(std::fs::read(&rotated).unwrap(), b"1\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"2\n");
        // Deleted: recreated.
        std::fs::remove_file(&path).unwrap();
        sink.write_batch(&Batch::new(b"3\n", &[2])).unwrap();
        sink.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"3\n");
    }
    // With the option off the sink keeps its descriptor.
    let _ = std::fs::remove_file(&path);
    let mut sink = FileOptions::new()
        .reopen_if_moved(false)
        .open(&path)
        .unwrap();
    sink.write_batch(&Batch::new(b"1\n", &[2])).unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    sink.write_batch(&Batch::new(b"2\n", &[2])).unwrap();
    assert_eq!(std::fs::read(&rotated).unwrap(), b"1\n2\n");
    assert!(!path.exists());
}

/// A file moved away whose path cannot be opened again (a directory stands there now): the
/// batch goes into the moved file, which still has a name, and the error is reported with
/// every record written; once the moved file is deleted too (nobody could read what went
/// into it), the batch fails.
#[test]
fn a_moved_file_takes_the_batch_when_its_path_cannot_be_reopened() {
    use logxide::sink::{Batch, FileOptions, IoStrategy, Sink};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let rotated = dir.path().join("app.log.1");
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        let _ = std::fs::remove_dir(&path);
        let _ = std::fs::remove_file(&rotated);
        let mut sink = FileOptions::new().strategy(strategy).open(&path).unwrap();
        sink.write_batch(&Batch::new(b"1\n", &[2])).unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = sink
            .write_batch(&Batch::new(b"2\n3\n", &[2, 4]))
            .unwrap_err();
        assert_eq!(err.written, 2, "{strategy}: {err}");
        sink.flush().unwrap();
        assert_eq!(std::fs::read(&rotated).unwrap(), b"1\n2\n3\n", "{strategy}");
        // The moved file deleted as well: what went into it could not be read.
        std::fs::remove_file(&rotated).unwrap();
        let err = sink.write_batch(&Batch::new(b"4\n", &[2])).unwrap_err();
        assert_eq!(err.written, 0, "{strategy}: {err}");
        // The path usable again: the sink goes on there.
        std::fs::remove_dir(&path).unwrap();
        sink.write_batch(&Batch::new(b"5\n", &[2])).unwrap();
        sink.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"5\n", "{strategy}");
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_file_truncated_by_another_tool_gets_no_hole_and_its_length_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        for mode in MODES {
            std::fs::write(&path, b"old\n").unwrap();
            let mut sink = opts(strategy).open_mode(mode).open(&path).unwrap();
            write(&mut sink, &["aaaa\n", "bbbb\n"]);
            // logrotate's copytruncate: the same file, emptied in place.
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(0)
                .unwrap();
            write(&mut sink, &["cc\n"]);
            assert_eq!(sink.len(), 3, "{strategy} {mode}");
            write(&mut sink, &["d\n"]);
            sink.close().unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"cc\nd\n", "{strategy} {mode}");
            assert_eq!(sink.len(), 5, "{strategy} {mode}");
        }
    }
}

/// Another process that appends text without a final newline between two batches does not
/// get the next record glued onto its line; one that ends a line the sink found open gets
/// no empty line after it. The file's last byte is looked at when its size changed.
#[test]
fn a_line_another_process_leaves_open_or_ends_is_followed_exactly() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let append = |bytes: &[u8]| {
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap()
    };
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        for mode in MODES {
            let name = format!("{strategy} {mode}");
            fs::write(&path, b"").unwrap();
            let mut sink = opts(strategy).open_mode(mode).open(&path).unwrap();
            write(&mut sink, &["{\"a\":1}\n"]);
            append(b"xyz");
            write(&mut sink, &["{\"b\":2}\n"]);
            assert_eq!(
                fs::read(&path).unwrap(),
                b"{\"a\":1}\nxyz\n{\"b\":2}\n",
                "{name}"
            );
            // A torn line (found when appending: foreign text without a newline) that the
            // other process ends itself.
            drop(sink);
            fs::write(&path, b"foreign").unwrap();
            let mut sink = opts(strategy)
                .open_mode(OpenMode::Append)
                .open(&path)
                .unwrap();
            append(b" text\n");
            write(&mut sink, &["{\"c\":3}\n"]);
            assert_eq!(
                fs::read(&path).unwrap(),
                b"foreign text\n{\"c\":3}\n",
                "{name}"
            );
            assert_eq!(sink.len(), 21, "{name}");
        }
    }
}

/// A write to a pipe that fails part-way (here a full non-blocking pipe nobody reads, given
/// up after the sink's `would_block_timeout`) leaves the start of a record in the pipe,
/// where it cannot be cut: the next record starts on a line of its own instead of being
/// glued to it.
#[test]
fn a_partial_record_left_in_a_pipe_is_ended_before_the_next_record() {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    let mut sink = opts(IoStrategy::Line)
        .would_block_timeout(std::time::Duration::from_millis(50))
        .open(&path)
        .unwrap();
    let fd = sink.as_raw_fd();
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
    // 100 records of 1011 bytes: more than the pipe holds (64 KiB), and no record boundary
    // at a multiple of the page size.
    let record = format!("{{\"x\":\"{}\"}}\n", "y".repeat(1002));
    let records = vec![record.as_str(); 100];
    let err = sink.write_batch(&Owned::new(&records).batch()).unwrap_err();
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut, "{err}");
    let mut got = Vec::new();
    let mut drain = |got: &mut Vec<u8>| {
        let mut buf = vec![0; 1 << 20];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    };
    drain(&mut got);
    let whole = got.len() / record.len();
    assert_eq!(err.written, whole);
    assert_ne!(
        got.len() % record.len(),
        0,
        "the pipe holds a partial record"
    );
    write(&mut sink, &["{\"next\":1}\n"]);
    drain(&mut got);
    let text = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), whole + 2);
    assert_eq!(lines[..whole], vec![record.trim_end(); whole][..]);
    assert!(record.starts_with(lines[whole]));
    assert_eq!(lines[whole + 1], "{\"next\":1}");
}

/// NUL bytes in a file that does not end with a NUL tail were not left by a crashed `mmap`
/// writer (it always leaves padding after its last batch): appending keeps them and every
/// record after them, instead of cutting the file back to the line before the first NUL.
#[test]
fn append_keeps_records_after_foreign_nul_bytes_in_a_file_without_a_nul_tail() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        let path = dir.path().join(format!("foreign-nul-{strategy}.log"));
        let mut content = b"{\"a\":1}\nforeign \0 bytes\n".to_vec();
        for i in 0..100 {
            content.extend_from_slice(format!("{{\"i\":{i}}}\n").as_bytes());
        }
        fs::write(&path, &content).unwrap();
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        assert_eq!(sink.len(), content.len() as u64, "{strategy}");
        write(&mut sink, &["{\"next\":1}\n"]);
        sink.close().unwrap();
        content.extend_from_slice(b"{\"next\":1}\n");
        assert_eq!(fs::read(&path).unwrap(), content, "{strategy}");
    }
}

/// While an `mmap` sink is open its file ends with NUL padding, also after a batch that
/// exactly fills the mapped window: that padding is how opening for append tells a crashed
/// `mmap` writer's torn last batch from foreign NUL bytes.
#[test]
fn an_mmap_batch_that_fills_the_window_exactly_still_leaves_padding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.log");
    let page = 4096usize;
    let mut sink = opts(IoStrategy::Mmap).open(&path).unwrap();
    let physical = fs::metadata(&path).unwrap().len();
    assert!(physical as usize >= page);
    // One batch ending exactly at the end of the file as mapped.
    let record = format!("{}\n", "x".repeat(physical as usize - 1));
    write(&mut sink, &[record.as_str()]);
    assert_eq!(sink.len(), physical);
    let grown = fs::metadata(&path).unwrap().len();
    assert!(grown > sink.len(), "no padding after the batch: {grown}");
    // Two records filling the next window exactly.
    let half = (grown - sink.len()) as usize / 2;
    let a = format!("{}\n", "a".repeat(half - 1));
    let b = format!("{}\n", "b".repeat((grown - sink.len()) as usize - half - 1));
    write(&mut sink, &[a.as_str(), b.as_str()]);
    assert_eq!(sink.len(), grown);
    assert!(fs::metadata(&path).unwrap().len() > sink.len());
    sink.close().unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        [record.as_bytes(), a.as_bytes(), b.as_bytes()].concat()
    );
}

/// Mode bits above `0o777` (setuid, setgid, sticky, or no mode bit at all) are refused by
/// `validate` and by `open` before anything is created: no directory, no file.
#[test]
fn permissions_above_0o777_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o4644, 0o2644, 0o1644, 0o7777, 0o10644, u32::MAX] {
        let expected = format!(
            "invalid permissions {mode:#o}: expected permission bits up to 0o777 (setuid, setgid and sticky bits are refused), e.g. 0o644"
        );
        for strategy in STRATEGIES {
            let options = opts(strategy).permissions(mode);
            let err = options.validate().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(err.to_string(), expected);
            let path = dir.path().join("missing").join("app.log");
            let err = options.open(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(
                err.to_string(),
                format!("cannot open log file {}: {expected}", path.display())
            );
            assert!(!dir.path().join("missing").exists());
        }
        let path = dir.path().join("rotating.log");
        let err = logxide::sink::RotateOptions::new()
            .max_bytes(100)
            .file(FileOptions::new().permissions(mode))
            .open(&path)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
        assert!(!path.exists());
    }
    // The largest accepted mode.
    assert!(FileOptions::new().permissions(0o777).validate().is_ok());
}

/// A mode without the owner's write bit is refused by `validate` and by `open` before
/// anything is created: the file could be written through the descriptor that creates it,
/// but never opened again by its owner (appending at the next run, after a rotation failed).
#[test]
fn permissions_the_owner_cannot_write_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o444, 0o555, 0o0, 0o477] {
        let expected = format!(
            "invalid permissions {mode:#o}: the owner's write bit (0o200) is missing, so its owner could not open the log file again (to append at the next run, say); e.g. 0o644"
        );
        let options = FileOptions::new().permissions(mode);
        let err = options.validate().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
        let path = dir.path().join("missing").join("app.log");
        let err = options.open(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().join("missing").exists());
        let err = logxide::sink::RotateOptions::new()
            .max_bytes(100)
            .file(options)
            .open(&path)
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(!dir.path().join("missing").exists());
    }
    assert!(FileOptions::new().permissions(0o200).validate().is_ok());
}

/// With durability on, the directory entries of a new file (and of the missing directories
/// created for it) are synced with the first batch, once; an existing file, or no
/// durability, syncs no directory.
#[test]
fn durability_syncs_the_directories_of_a_new_file_once() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in STRATEGIES {
        for durability in [Durability::Data, Durability::Full] {
            let name = format!("{strategy}-{durability}");
            // A new file in an existing directory: that directory.
            let path = dir.path().join(format!("{name}.log"));
            let mut sink = opts(strategy).durability(durability).open(&path).unwrap();
            assert_eq!(sink.directory_syncs(), 0);
            write(&mut sink, &["{\"a\":1}\n"]);
            assert_eq!(sink.directory_syncs(), 1, "{name}");
            write(&mut sink, &["{\"b\":2}\n"]);
            sink.close().unwrap();
            assert_eq!(sink.directory_syncs(), 1, "{name}");
            // The same file again, existing: nothing to sync, in either mode.
            for mode in MODES {
                let mut sink = opts(strategy)
                    .durability(durability)
                    .open_mode(mode)
                    .open(&path)
                    .unwrap();
                write(&mut sink, &["{\"c\":3}\n"]);
                sink.close().unwrap();
                assert_eq!(sink.directory_syncs(), 0, "{name} {mode}");
            }
            // Three missing directories: the existing one and the three created.
            let nested = dir.path().join(&name).join("b").join("c").join("app.log");
            let mut sink = opts(strategy).durability(durability).open(&nested).unwrap();
            sink.flush().unwrap();
            assert_eq!(sink.directory_syncs(), 4, "{name}");
            write(&mut sink, &["{\"d\":4}\n"]);
            sink.close().unwrap();
            assert_eq!(sink.directory_syncs(), 4, "{name}");
            assert_eq!(fs::read(&nested).unwrap(), b"{\"d\":4}\n");
        }
        // No durability: no directory synced.
        let nested = dir.path().join(format!("none-{strategy}/x/app.log"));
        let mut sink = opts(strategy).open(&nested).unwrap();
        write(&mut sink, &["{\"a\":1}\n"]);
        sink.close().unwrap();
        assert_eq!(sink.directory_syncs(), 0);
    }
}

/// A raw line may hold NUL bytes. An `mmap` writer that dies after reporting its batches
/// (here: the sink is forgotten, as a killed process leaves it, padding and all) must not
/// lose them when the file is reopened for append: only the NUL tail goes.
#[test]
fn append_after_an_mmap_crash_keeps_reported_lines_holding_nul_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nul.log");
    let mut sink = opts(IoStrategy::Mmap).open(&path).unwrap();
    write(&mut sink, &["{\"a\":1}\n", "raw \0 line\n"]);
    write(&mut sink, &["{\"b\":2}\n", "\0\0\0\0\0\0\0\0\0\0 more\n"]);
    write(&mut sink, &["{\"c\":3}\n"]);
    std::mem::forget(sink);
    let expected =
        b"{\"a\":1}\nraw \0 line\n{\"b\":2}\n\0\0\0\0\0\0\0\0\0\0 more\n{\"c\":3}\n".to_vec();
    assert!(
        fs::read(&path).unwrap().len() > expected.len(),
        "no padding"
    );
    for strategy in STRATEGIES {
        let mut sink = opts(strategy)
            .open_mode(OpenMode::Append)
            .open(&path)
            .unwrap();
        assert_eq!(sink.len(), expected.len() as u64, "{strategy}");
        sink.close().unwrap();
        assert_eq!(fs::read(&path).unwrap(), expected, "{strategy}");
    }
}

/// An `mmap_chunk` of 0 or above 1 TiB is refused by `validate` and `open` with an error
/// saying what is accepted, before anything is created (a huge one overflowed the growth
/// arithmetic); 1 TiB itself is accepted.
#[test]
fn mmap_chunk_out_of_range_is_refused_saying_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for chunk in [0usize, (1 << 40) + 1, usize::MAX] {
        let options = FileOptions::new()
            .strategy(IoStrategy::Mmap)
            .mmap_chunk(chunk);
        let expected = format!(
            "invalid mmap_chunk {chunk}: expected from 1 byte to 1 TiB (1099511627776 bytes)"
        );
        let err = options.validate().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
        let path = dir.path().join("new").join("a.log");
        let err = options.open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot open log file {}: {expected}", path.display())
        );
        assert!(!dir.path().join("new").exists());
    }
    assert!(FileOptions::new()
        .strategy(IoStrategy::Mmap)
        .mmap_chunk(1 << 40)
        .validate()
        .is_ok());
    // Other strategies do not use it.
    assert!(FileOptions::new().mmap_chunk(0).validate().is_ok());
}

/// A new FIFO at `path` and its read end, opened non-blocking so that the open does not wait
/// for a writer.
fn fifo_reader(path: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

/// A FIFO whose write end is non-blocking (set by another process sharing it, say) and whose
/// reader is slow: the sink waits for room instead of failing the records; every record
/// arrives, in order, and the batch is written whole.
#[test]
fn a_nonblocking_fifo_with_a_slow_reader_gets_every_record() {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    use std::io::Read;
    use std::os::fd::AsFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let mut reader = fifo_reader(&path);
    // The reader blocks: only the sink's end is non-blocking.
    fcntl_setfl(&reader, fcntl_getfl(&reader).unwrap() - OFlags::NONBLOCK).unwrap();
    let mut sink = opts(IoStrategy::Line).open(&path).unwrap();
    fcntl_setfl(
        sink.as_fd(),
        fcntl_getfl(sink.as_fd()).unwrap() | OFlags::NONBLOCK,
    )
    .unwrap();
    let records: Vec<String> = (0..2000)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "y".repeat(200)))
        .collect();
    let owned = Owned::new(&records.iter().map(|r| format!("{r}\n")).collect::<Vec<_>>());
    let total = owned.batch().bytes().len();
    let drained = std::thread::spawn(move || {
        // The sink fills the pipe (64 KiB) long before the 430 KB are read.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < total {
            let k = reader.read(&mut chunk).unwrap();
            assert!(k > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&chunk[..k]);
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        got
    });
    sink.write_batch(&owned.batch()).unwrap();
    let got = drained.join().unwrap();
    assert_eq!(got.len(), total);
    assert!(got == owned.batch().bytes(), "bytes differ");
}

/// A directory sync that fails (durability on) says which directory, what changed in it
/// for which file, and what that means for the records: they are in the file, a crash may
/// undo the change (and lose them with it); a directory no longer at its path is given up.
#[test]
fn a_failed_directory_sync_says_what_changed_and_what_a_crash_may_lose() {
    let dir = tempfile::tempdir().unwrap();
    let enoent = "No such file or directory (os error 2)";
    // The file's own directory, created with it, is gone before its sync.
    let top = dir.path().join("top");
    let path = top.join("app.log");
    let mut sink = FileOptions::new()
        .durability(Durability::Data)
        .reopen_if_moved(false)
        .open(&path)
        .unwrap();
    fs::rename(&top, dir.path().join("moved")).unwrap();
    let err = sink.write_batch(&Owned::new(&["a\n"]).batch()).unwrap_err();
    assert_eq!(err.written, 1);
    assert_eq!(
        err.error.to_string(),
        format!(
            "cannot sync the directory {}, where {} was created: {enoent}; the records are in the file, but a crash may undo its creation and lose every record in it (the directory is no longer at that path: its sync is given up)",
            top.display(),
            path.display()
        )
    );
    assert_eq!(fs::read(dir.path().join("moved/app.log")).unwrap(), b"a\n");
    // Gone from its path, the directory cannot be synced ever: given up, not an error of
    // every batch from now on.
    sink.write_batch(&Owned::new(&["b\n"]).batch()).unwrap();
    assert_eq!(
        fs::read(dir.path().join("moved/app.log")).unwrap(),
        b"a\nb\n"
    );
    // A directory in which one on the way to the file was created.
    let base = dir.path().join("base");
    fs::create_dir(&base).unwrap();
    let nested = base.join("sub").join("app.log");
    let mut sink = FileOptions::new()
        .durability(Durability::Data)
        .reopen_if_moved(false)
        .open(&nested)
        .unwrap();
    fs::rename(&base, dir.path().join("base2")).unwrap();
    let err = sink.flush().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot sync the directory {}, where a directory on the way to {} was created: {enoent}; the records are in the file, but a crash may undo that creation and lose the file with every record in it (the directory is no longer at that path: its sync is given up)",
            base.display(),
            nested.display()
        )
    );
}

/// A file without storage to sync (a character device, a FIFO) takes every batch with
/// durability on as without: there is nothing to sync, and `fdatasync`/`fsync` on it would
/// fail every batch with `EINVAL`.
#[test]
fn durability_on_a_device_or_a_fifo_writes_without_errors() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let mut reader = fifo_reader(&fifo);
    for durability in [Durability::Data, Durability::Full] {
        for path in [Path::new("/dev/null"), fifo.as_path()] {
            for strategy in [IoStrategy::Line, IoStrategy::Block] {
                let mut sink = opts(strategy).durability(durability).open(path).unwrap();
                sink.write_batch(&Owned::new(&["a\n", "b\n"]).batch())
                    .unwrap();
                sink.flush().unwrap();
                sink.close().unwrap();
            }
        }
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 64];
    while let Ok(k) = reader.read(&mut chunk) {
        if k == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..k]);
    }
    assert_eq!(got, b"a\nb\n".repeat(4));
}

/// A sync of the records that fails (durability on) says so, on which file, and what it
/// means for the records: written, visible, but not known to be on stable storage. The
/// file is `/proc/thread-self/comm`, a regular file that takes a short line (the thread's
/// name) and whose `fdatasync`/`fsync` fail (`EINVAL`).
#[test]
fn a_failed_sync_of_the_records_names_the_file_and_what_it_means() {
    let path = Path::new("/proc/thread-self/comm");
    for durability in [Durability::Data, Durability::Full] {
        let mut sink = opts(IoStrategy::Line)
            .open_mode(OpenMode::Append)
            .durability(durability)
            .open(path)
            .unwrap();
        let err = sink.write_batch(&Owned::new(&["a\n"]).batch()).unwrap_err();
        assert_eq!(err.written, 1);
        assert_eq!(
            err.error.to_string(),
            format!(
                "cannot sync {} to stable storage (durability {durability}): Invalid argument (os error 22); the records are written and readable, but a machine crash may lose them (a later sync does not prove otherwise: after an I/O error the kernel may have dropped them already)",
                path.display()
            )
        );
        // The kernel keeps the line as the thread's name (with its `\n`).
        assert!(fs::read_to_string(path).unwrap().starts_with("a\n"));
    }
}

/// A dangling symbolic link at the path is opened as a rotating file opens it: the
/// destination is created, with its missing directories (`create_parents`, the default; made
/// durable with durability on), and the link kept; with `create_parents(false)` the error
/// names the destination's missing directory.
#[test]
fn a_dangling_link_gets_its_destination_with_its_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("app.log");
    let dest = dir.path().join("missing/dir/real.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let err = FileOptions::new()
        .create_parents(false)
        .open(&link)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "cannot open log file {}: the directory {} does not exist (create_parents is off) (os error 2)",
            link.display(),
            dest.parent().unwrap().display()
        )
    );
    assert!(!dir.path().join("missing").exists());
    let mut sink = FileOptions::new()
        .durability(Durability::Data)
        .open(&link)
        .unwrap();
    write(&mut sink, &["a\n"]);
    // The directory the first was created in, the one the second was, the file's.
    assert_eq!(sink.directory_syncs(), 3);
    assert_eq!(fs::read(&dest).unwrap(), b"a\n");
    assert_eq!(fs::read_link(&link).unwrap(), dest);
}
