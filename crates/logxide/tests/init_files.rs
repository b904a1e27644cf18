//! The log file through the logger at init: a symbolic link refused by `O_NOFOLLOW`, a missing
//! directory, a directory that cannot be written (read-only file system, permission denied),
//! and the mode of a new file. Each failure is a typed error at init that names the path,
//! starts no thread, and leaves the previous global logger in place and working.
//!
//! Tests here share the global logger (and the process umask), so they take a lock.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use logxide::logger::{self, InitError, LoggerGuard};
use logxide::sink::FileOptions;
use logxide::LoggerBuilder;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn builder(path: &Path) -> LoggerBuilder {
    LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .target(path)
}

/// The `msg` of every line of `path`.
fn messages(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["msg"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Threads of this process named `name` (at most 15 bytes: the kernel's limit).
fn threads_named(name: &str) -> usize {
    assert!(name.len() <= 15);
    fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.trim_end() == name)
                .count()
        })
        .unwrap_or(0)
}

/// A global logger on `dir/previous.log` that has logged "before".
fn previous_logger(dir: &Path) -> (LoggerGuard, PathBuf) {
    let path = dir.join("previous.log");
    let guard = builder(&path).init().unwrap();
    logxide::info!("before");
    (guard, path)
}

/// The previous global logger is still installed, on its file, and still writes.
fn previous_still_works(guard: LoggerGuard, path: &Path) {
    let current = logger::global().expect("the global logger was removed");
    assert_eq!(current.path(), Some(path));
    logxide::info!("after");
    let report = logger::shutdown(None).unwrap();
    drop(guard);
    assert_eq!(report.metrics.dropped, 0);
    assert_eq!(messages(path), ["before", "after"]);
}

#[test]
fn a_symlink_is_refused_at_init_when_symlinks_are_not_followed() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (guard, previous) = previous_logger(dir.path());

    let dest = dir.path().join("elsewhere.log");
    let link = dir.path().join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    for how in ["file_options", "set", "clean", "rotation"] {
        for dest_exists in [false, true] {
            if dest_exists {
                fs::write(&dest, "precious\n").unwrap();
            }
            let err = refusing(how, &link).init().unwrap_err();
            assert!(
                matches!(&err, InitError::Symlink { path } if path == &link),
                "{how}: {err:?}"
            );
            let text = err.to_string();
            for needle in [&*link.to_string_lossy(), "symbolic link", "O_NOFOLLOW"] {
                assert!(text.contains(needle), "{how}: {needle:?} not in {text:?}");
            }
            // Nothing created or changed at the destination; the link is still there.
            if dest_exists {
                assert_eq!(fs::read_to_string(&dest).unwrap(), "precious\n", "{how}");
                fs::remove_file(&dest).unwrap();
            } else {
                assert!(!dest.exists(), "{how}: the link's destination was created");
            }
            assert!(fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(
                threads_named("lx-symlink"),
                0,
                "{how}: a writer thread was started"
            );
        }
    }

    // `check` finds it too, without side effects; `build` (no global) refuses it the same way.
    let err = refusing("set", &link).check().unwrap_err();
    assert!(matches!(err, InitError::Symlink { .. }), "{err:?}");
    let err = refusing("set", &link).build().unwrap_err();
    assert!(matches!(err, InitError::Symlink { .. }), "{err:?}");

    // The text option is validated like every boolean.
    let err = LoggerBuilder::new()
        .set("follow_symlinks", "sometimes")
        .unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "follow_symlinks"),
        "{err}"
    );
    assert!(err.to_string().contains("true/false"), "{err}");

    // By default a symlink is followed (documented): the record lands at its destination.
    assert!(!dest.exists());
    let log = builder(&link).build().unwrap();
    log.info("through the link");
    log.shutdown(None);
    assert_eq!(messages(&dest), ["through the link"]);

    previous_still_works(guard, &previous);
}

/// A builder for `link` that refuses symlinks, set up the way `how` names: typed file
/// options, the text option, with `clean` (which would remove the link itself: refused
/// before that), with rotation.
fn refusing(how: &str, link: &Path) -> LoggerBuilder {
    let b = builder(link).set("thread_name", "lx-symlink").unwrap();
    match how {
        "file_options" => b.file_options(FileOptions::new().follow_symlinks(false)),
        "set" => b.set("follow_symlinks", "false").unwrap(),
        "clean" => b
            .set("follow_symlinks", "no")
            .unwrap()
            .set("clean", "true")
            .unwrap(),
        "rotation" => b
            .set("follow_symlinks", "off")
            .unwrap()
            .set("rotate_size", "1MB")
            .unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn a_missing_directory_is_created_unless_create_parents_is_off() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (guard, previous) = previous_logger(dir.path());

    // Off: a typed error naming the directory; nothing created; no thread.
    let missing = dir.path().join("missing/sub");
    let target = missing.join("app.log");
    for b in [
        builder(&target).file_options(FileOptions::new().create_parents(false)),
        builder(&target).set("create_parents", "false").unwrap(),
    ] {
        let err = b
            .set("thread_name", "lx-missing")
            .unwrap()
            .init()
            .unwrap_err();
        let InitError::File { path, error } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &target);
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.contains(&*missing.to_string_lossy()) && text.contains("does not exist"),
            "{text}"
        );
        assert!(text.contains("create_parents"), "{text}");
        assert!(!dir.path().join("missing").exists());
        assert_eq!(threads_named("lx-missing"), 0);
    }
    let err = LoggerBuilder::new().set("create_parents", "2").unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "create_parents"),
        "{err}"
    );

    // The default (documented in the README's option table and `FileOptions`): created.
    let log = builder(&target).build().unwrap();
    log.info("in a new directory");
    log.shutdown(None);
    assert_eq!(messages(&target), ["in a new directory"]);

    previous_still_works(guard, &previous);
}

/// A read-only tmpfs mounted on a directory; unmounted (lazily) when dropped.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path) -> Option<Self> {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| ReadOnlyMount(dir.to_owned()))
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_directory_is_an_error_at_init() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = ReadOnlyMount::new(&dir.path().join("ro")) else {
        eprintln!("skipped: cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)");
        return;
    };
    let (guard, previous) = previous_logger(dir.path());
    let ro = dir.path().join("ro");
    for (target, names) in [
        (ro.join("app.log"), ro.join("app.log")),
        // A directory to create under it: the error names that directory.
        (ro.join("sub/app.log"), ro.join("sub")),
    ] {
        for strategy in ["line", "block", "mmap"] {
            let err = builder(&target)
                .set("writer_type", strategy)
                .unwrap()
                .set("thread_name", "lx-readonly")
                .unwrap()
                .init()
                .unwrap_err();
            let InitError::File { path, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(path, &target);
            let text = err.to_string();
            assert!(text.contains(&*names.to_string_lossy()), "{text}");
            assert!(text.contains("Read-only file system"), "{text}");
            assert!(text.contains("os error 30"), "{text}"); // EROFS
            assert_eq!(threads_named("lx-readonly"), 0);
        }
    }
    previous_still_works(guard, &previous);
}

const EACCES_CHILD: &str = "LOGXIDE_TEST_EACCES_DIR";

/// Run as uid 65534 by `a_directory_without_write_permission_is_an_error_at_init`, or in
/// this process when it is not root.
fn eacces_checks(base: &Path) {
    let locked = base.join("locked");
    let (guard, previous) = previous_logger(&base.join("open"));
    for target in [locked.join("app.log"), locked.join("sub/app.log")] {
        let err = builder(&target)
            .set("thread_name", "lx-eacces")
            .unwrap()
            .init()
            .unwrap_err();
        let InitError::File { path, error } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &target);
        assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
        let text = err.to_string();
        assert!(text.contains(&*locked.to_string_lossy()), "{text}");
        assert!(text.contains("Permission denied (os error 13)"), "{text}");
        assert_eq!(threads_named("lx-eacces"), 0);
    }
    assert!(!locked.join("sub").exists());
    previous_still_works(guard, &previous);
}

#[test]
fn eacces_child_entry() {
    if let Ok(base) = std::env::var(EACCES_CHILD) {
        eacces_checks(Path::new(&base));
    }
}

#[test]
fn a_directory_without_write_permission_is_an_error_at_init() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (locked, open) = (base.join("locked"), base.join("open"));
    fs::create_dir(&locked).unwrap();
    fs::create_dir(&open).unwrap();
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: the permission bits apply to this process.
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        eacces_checks(base);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    // Root ignores permission bits: run the checks in a child that is uid/gid 65534, for
    // which `locked` (root's, 0755) is not writable and `open` (0777) is.
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    if !common::run_as_nobody("eacces_child_entry", EACCES_CHILD, base) {
        return;
    }
    assert!(!locked.join("app.log").exists());
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Sets the process umask; restores the previous one when dropped.
struct Umask(libc::mode_t);

impl Umask {
    fn set(mask: libc::mode_t) -> Self {
        // SAFETY: `umask` only changes the process's file-mode creation mask.
        Umask(unsafe { libc::umask(mask) })
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::umask(self.0) };
    }
}

#[test]
fn new_files_get_0644_minus_the_umask_or_the_configured_mode() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let write = |b: LoggerBuilder, path: &Path| {
        let log = b.build().unwrap();
        log.info("x");
        log.shutdown(Some(Duration::from_secs(5)));
        assert_eq!(messages(path), ["x"]);
        mode_of(path)
    };
    let _umask = Umask::set(0o022);
    for strategy in ["line", "block", "mmap"] {
        let file = |name: &str| dir.path().join(format!("{strategy}-{name}.log"));
        let b = |path: &Path| builder(path).set("writer_type", strategy).unwrap();
        assert_eq!(write(b(&file("default")), &file("default")), 0o644);
        let path = file("typed");
        let typed = b(&path).file_options(FileOptions::new().permissions(0o600));
        assert_eq!(write(typed, &path), 0o600);
        let path = file("text");
        assert_eq!(
            write(b(&path).set("permissions", "0640").unwrap(), &path),
            0o640
        );
        // The umask still applies to a configured mode.
        let path = file("wide");
        assert_eq!(
            write(b(&path).set("permissions", "0o666").unwrap(), &path),
            0o644
        );
        // An existing file keeps its mode.
        assert_eq!(
            write(b(&path).set("permissions", "600").unwrap(), &path),
            0o644
        );
    }
    {
        let _umask = Umask::set(0o027);
        let path = dir.path().join("umask027.log");
        assert_eq!(write(builder(&path), &path), 0o640);
    }

    // Rotation: the new active files and the rotated ones get the configured mode too.
    let rotating = dir.path().join("rotating/app.log");
    let log = builder(&rotating)
        .set("rotate_size", "1KB")
        .unwrap()
        .set("permissions", "0600")
        .unwrap()
        .set("writer_type", "line")
        .unwrap()
        .build()
        .unwrap();
    for i in 0..40 {
        logxide::info!(logger: log, "rotate me", i, pad = "p".repeat(60));
        log.flush(None).unwrap();
    }
    log.shutdown(None);
    let files: Vec<_> = fs::read_dir(rotating.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() > 2, "{files:?}");
    for f in &files {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }

    // The text option is validated.
    for bad in [
        "rw-r--r--",
        "0o",
        "",
        "9",
        "0888",
        "1644",
        "0o1777",
        "0444",
        "+644",
    ] {
        let err = LoggerBuilder::new().set("permissions", bad).unwrap_err();
        assert!(
            matches!(&err, InitError::Option { option, .. } if option == "permissions"),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("0640"), "{err}");
    }
}

#[test]
fn a_reinit_onto_the_same_file_that_cannot_be_reopened_leaves_the_logger_in_place() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (guard, path) = previous_logger(dir.path());
    logger::flush(None).unwrap();
    // Another tool replaced the file with a directory: the path can no longer be opened
    // for writing (EISDIR), even by root. The logger still holds the file it opened.
    fs::rename(&path, dir.path().join("moved.log")).unwrap();
    fs::create_dir(&path).unwrap();
    for clean in [false, true] {
        let err = builder(&path)
            .clean(clean)
            .set("thread_name", "lx-reopen")
            .unwrap()
            .init()
            .unwrap_err();
        let InitError::File { path: named, error } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(named, &path);
        assert_eq!(error.raw_os_error(), Some(libc::EISDIR), "{err}");
        assert_eq!(threads_named("lx-reopen"), 0);
        let current = logger::global().expect("the global logger was removed");
        assert_eq!(current.path(), Some(path.as_path()));
    }
    assert!(path.is_dir(), "clean removed nothing");
    // The logger follows its path at the next batch (the file was moved): the directory
    // there cannot be opened, so that record goes into the moved file, with the reason.
    logxide::info!("after");
    logger::flush(None).unwrap();
    let m = logger::metrics();
    assert_eq!((m.enqueued, m.written, m.failed, m.dropped), (2, 2, 0, 0));
    assert_eq!(m.sinks[0].errors, 1);
    let reason = m.sinks[0].last_error.as_deref().unwrap_or_default();
    assert!(
        reason.contains("Is a directory") && reason.contains("went into the moved file"),
        "{reason}"
    );
    logger::shutdown(None).unwrap();
    drop(guard);
    assert_eq!(messages(&dir.path().join("moved.log")), ["before", "after"]);
}

/// Options that only opening the file (or starting the thread) used to find invalid are
/// refused by the check before anything: with `clean`, the file is neither deleted nor
/// truncated, no thread starts, and a re-init keeps the previous global logger. (Each was
/// found after `clean` or truncation before: a NUL in the thread's name panicked in
/// `thread::spawn` with the file already emptied.)
#[test]
fn options_invalid_at_open_are_refused_before_any_side_effect() {
    use std::os::unix::ffi::OsStrExt;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, PathBuf, LoggerBuilder)> = vec![
        (
            "thread_name",
            dir.path().join("nul.log"),
            builder(&dir.path().join("nul.log"))
                .set("thread_name", "app\0log")
                .unwrap(),
        ),
        (
            "file_options",
            dir.path().join("chunk.log"),
            builder(&dir.path().join("chunk.log"))
                .file_options(FileOptions::new().mmap_chunk(0))
                .set("writer_type", "mmap")
                .unwrap(),
        ),
        (
            "file_options",
            dir.path().join("setuid.log"),
            builder(&dir.path().join("setuid.log"))
                .file_options(FileOptions::new().permissions(0o4644)),
        ),
        (
            "rotating file name",
            dir.path().join(std::ffi::OsStr::from_bytes(b"app\xff.log")),
            builder(&dir.path().join(std::ffi::OsStr::from_bytes(b"app\xff.log")))
                .set("rotate_size", "1MB")
                .unwrap(),
        ),
    ];
    let (guard, previous) = previous_logger(dir.path());
    for (what, path, b) in cases {
        fs::write(&path, "precious\n").unwrap();
        let b = b.clean(true);
        let checked = b.check();
        assert!(checked.is_err(), "{what}: check passed");
        let err = b.init().unwrap_err();
        assert_eq!(err.to_string(), checked.unwrap_err().to_string(), "{what}");
        match (what, &err) {
            ("rotating file name", InitError::File { error, .. }) => {
                assert!(error.to_string().contains("UTF-8"), "{err}")
            }
            (_, InitError::Option { option, .. }) => assert_eq!(option, what, "{err}"),
            _ => panic!("{what}: {err:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), b"precious\n", "{what}: {err}");
    }
    previous_still_works(guard, &previous);
}

/// Rotation applies to the target file: asked for with only other sinks, it is an error,
/// not a setting silently ignored.
#[test]
fn rotation_without_a_target_file_is_an_error() {
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(logxide::sink::MemorySink::new())
        .set("keep", "3")
        .unwrap()
        .check()
        .unwrap_err();
    let InitError::Option { option, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(option, "rotate_size");
    assert!(message.contains("target"), "{message}");
}

/// Retention or compression without a size or a period to rotate at is an error, before
/// anything is touched: the file would never rotate (it was taken silently).
#[test]
fn retention_without_a_rotation_is_an_error() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "precious\n").unwrap();
    for (option, value) in [("keep", "3"), ("max_age", "7d"), ("compress", "gzip")] {
        let err = LoggerBuilder::new()
            .use_env(false)
            .target(&path)
            .set("clean", "true")
            .unwrap()
            .set(option, value)
            .unwrap()
            .init()
            .unwrap_err();
        let InitError::Option {
            option: name,
            message,
        } = &err
        else {
            panic!("{option}: {err:?}")
        };
        assert_eq!(name, "rotate_size", "{option}");
        assert!(
            message.contains("set rotate_size or rotate_every"),
            "{option}: {message}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"precious\n", "{option}");
    }
    // With a rotation it is accepted.
    let guard = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .set("keep", "3")
        .unwrap()
        .set("rotate_size", "1MB")
        .unwrap()
        .init()
        .unwrap();
    drop(guard);
}

/// An environment variable whose value is not UTF-8 is an error that names it, not taken
/// for unset.
#[test]
fn environment_values_that_are_not_utf8_are_errors() {
    use std::os::unix::ffi::OsStrExt;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    for var in ["LOGXIDE_LEVEL", "LOGXIDE_SYNC", "LOGXPY_SYNC"] {
        std::env::set_var(var, std::ffi::OsStr::from_bytes(b"1\xff"));
        let r = LoggerBuilder::new()
            .target(dir.path().join("env.log"))
            .check();
        std::env::remove_var(var);
        match r {
            Err(InitError::Option { option, message }) => {
                assert_eq!(option, var);
                assert!(message.contains("not valid UTF-8"), "{message}");
            }
            other => panic!("{var}: {other:?}"),
        }
    }
    assert!(!dir.path().join("env.log").exists());
}

/// A re-init onto the file the global logger writes, under another spelling (`..`, a
/// symbolic link, a hard link), drains and closes that logger first, as with the same
/// spelling: the old records are all in the file before the new logger truncates it, and
/// none is written over the new ones.
#[test]
fn a_reinit_onto_the_same_file_under_another_name_drains_the_previous_logger_first() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let path = dir.path().join("same.log");
    fs::write(&path, "").unwrap();
    std::os::unix::fs::symlink(&path, dir.path().join("link.log")).unwrap();
    fs::hard_link(&path, dir.path().join("hard.log")).unwrap();
    for second in [
        path.clone(),
        dir.path().join("sub/../same.log"),
        dir.path().join("link.log"),
        dir.path().join("hard.log"),
    ] {
        let first = builder(&path)
            .set("mode", "a")
            .unwrap()
            .set("flush", "1h")
            .unwrap()
            .set("size", "10000")
            .unwrap()
            .init()
            .unwrap();
        for _ in 0..1000 {
            logxide::info!("old");
        }
        let next = builder(&second).init().unwrap(); // mode w: truncates
        for _ in 0..10 {
            logxide::info!("new");
        }
        let report = logger::shutdown(None).unwrap();
        drop((first, next));
        assert_eq!(report.metrics.written, 10);
        assert_eq!(messages(&path), vec!["new"; 10], "{}", second.display());
    }
}

/// `chattr -a` on drop, so that the temporary directory can be removed.
struct AppendOnly(PathBuf);

impl AppendOnly {
    /// Makes `path` append-only (`chattr +a`); `None` where the file system or the
    /// privileges do not allow it.
    fn new(path: &Path) -> Option<Self> {
        let status = Command::new("chattr")
            .arg("+a")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| AppendOnly(path.to_owned()))
    }
}

impl Drop for AppendOnly {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-a").arg(&self.0).status();
    }
}

/// A re-init onto the file the global logger writes checks, before closing that logger,
/// that the file opens as the new logger will open it: an append-only file (`chattr +a`,
/// opened only with `O_APPEND`) is reopened in mode `a`, and still refused in mode `w`
/// (which would truncate it), with the logger left in place.
#[test]
fn a_reinit_in_mode_a_onto_an_append_only_file_reopens_it() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    fs::write(&path, "").unwrap();
    let Some(_append_only) = AppendOnly::new(&path) else {
        eprintln!("skipped: cannot make a file append-only here (chattr +a)");
        return;
    };
    let append = || builder(&path).set("mode", "a").unwrap();
    let first = append().init().unwrap();
    logxide::info!("one");
    let second = append().init().unwrap();
    logxide::info!("two");
    let err = builder(&path).init().unwrap_err();
    let InitError::File { path: named, error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(named, &path);
    assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{err}");
    let current = logger::global().expect("the global logger was removed");
    assert_eq!(current.path(), Some(path.as_path()));
    logxide::info!("three");
    let report = logger::shutdown(None).unwrap();
    assert_eq!(report.metrics.dropped, 0);
    drop((first, second));
    assert_eq!(messages(&path), ["one", "two", "three"]);
}

/// `clean` with a target that is a symbolic link (to a file, through a second link, to a
/// missing file) deletes the file the records go to — the link's destination — and keeps
/// the link, in both modes: the records land in a new file at the destination, through the
/// link. (Before, it deleted the link: the records went into a new plain file at the link's
/// path and the destination kept its old contents.)
#[test]
fn clean_through_a_symlink_empties_the_destination_and_keeps_the_link() {
    let _s = serial();
    for mode in ["w", "a"] {
        for how in ["link", "link to a link", "dangling link"] {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("real.log");
            if how != "dangling link" {
                fs::write(&dest, "{\"msg\":\"old\"}\n").unwrap();
            }
            let link = dir.path().join("link.log");
            std::os::unix::fs::symlink(&dest, &link).unwrap();
            let target = if how == "link to a link" {
                let outer = dir.path().join("outer.log");
                std::os::unix::fs::symlink(&link, &outer).unwrap();
                outer
            } else {
                link.clone()
            };
            let log = builder(&target)
                .set("mode", mode)
                .unwrap()
                .set("clean", "true")
                .unwrap()
                .build()
                .unwrap();
            log.info("new");
            log.shutdown(None);
            let what = format!("mode {mode}, {how}");
            assert_eq!(fs::read_link(&link).unwrap(), dest, "{what}: link replaced");
            if how == "link to a link" {
                assert_eq!(fs::read_link(&target).unwrap(), link, "{what}");
            }
            assert_eq!(messages(&dest), ["new"], "{what}");
            let names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(
                names.len(),
                if how == "link to a link" { 3 } else { 2 },
                "{what}: {names:?}"
            );
        }
    }
}

/// A rotating target that is a symbolic link to a file whose name is not UTF-8 (rotated
/// files' names are made from it) is refused by the check, before `clean` deletes that
/// file and before a re-init replaces the global logger. (Before, the check looked at the
/// link's name only: `clean` deleted the destination, then the rotating file's open refused
/// it, leaving no file and no logger.)
#[test]
fn a_rotating_link_to_a_file_named_in_no_utf8_is_refused_before_clean() {
    use std::os::unix::ffi::OsStrExt;
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (previous, previous_path) = previous_logger(dir.path());
    let dest = dir.path().join(std::ffi::OsStr::from_bytes(b"r\xffal.log"));
    fs::write(&dest, "{\"msg\":\"old\"}\n").unwrap();
    let link = dir.path().join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let rotating = || {
        builder(&link)
            .set("rotate_size", "1MB")
            .unwrap()
            .set("clean", "true")
            .unwrap()
    };
    let err = rotating().check().unwrap_err();
    assert!(
        matches!(&err, InitError::File { path, error } if *path == link && error.kind() == std::io::ErrorKind::InvalidInput),
        "{err:?}"
    );
    assert!(err.to_string().contains("UTF-8"), "{err}");
    let err = rotating().init().unwrap_err();
    assert!(matches!(&err, InitError::File { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(&dest).unwrap(), "{\"msg\":\"old\"}\n");
    previous_still_works(previous, &previous_path);
}

/// An empty target given to the typed setter is refused by the check, as `set("target",
/// "")` is, with the option named — not found at the open as a file "" that does not exist
/// (`check` said it was fine). The previous global logger stays.
#[test]
fn an_empty_target_is_an_option_error_at_check() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (previous, previous_path) = previous_logger(dir.path());
    let expected = "logxide option `target`: the target path is empty";
    let err = builder(Path::new("")).check().unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "target"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), expected);
    assert_eq!(
        builder(Path::new("")).init().unwrap_err().to_string(),
        expected
    );
    assert_eq!(
        LoggerBuilder::new()
            .set("target", "")
            .unwrap_err()
            .to_string(),
        expected
    );
    previous_still_works(previous, &previous_path);
}

const CLEAN_ROTATING_CHILD: &str = "LOGXIDE_TEST_CLEAN_ROTATING_CHILD";

/// Run as uid 65534 (see `clean_is_the_last_step_before_a_rotating_files_open`): the log
/// directory `base/logs` is root's, sticky and writable by all; `app.log` is this user's,
/// the leftover `.tmp` root's, which this user may not delete there.
fn clean_rotating_checks(base: &Path) {
    let path = base.join("logs/app.log");
    let tmp = base.join("logs/app.20240301T115000.log.gz.tmp");
    let err = builder(&path)
        .clean(true)
        .set("rotate_size", "1MB")
        .unwrap()
        .build()
        .unwrap_err();
    let InitError::File { path: named, error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(named, &path);
    assert_eq!(
        error.to_string(),
        format!(
            "cannot delete the leftover {}: Operation not permitted (os error 1)",
            tmp.display()
        )
    );
    assert_eq!(fs::read(&path).unwrap(), b"precious\n", "deleted by clean");
    assert_eq!(fs::read(&tmp).unwrap(), b"half");
}

#[test]
fn clean_rotating_child_entry() {
    if let Ok(base) = std::env::var(CLEAN_ROTATING_CHILD) {
        clean_rotating_checks(Path::new(&base));
    }
}

/// `clean` with a rotating file: the active file is deleted only once every step of the
/// rotating file's open that can fail before the file is opened has succeeded (here the
/// removal of a leftover `.tmp` fails): a failed init leaves it as it was. (Before, `clean`
/// deleted it first, then the open failed: no logger, and the file gone.)
#[test]
fn clean_is_the_last_step_before_a_rotating_files_open() {
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root (to give the files two owners)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let logs = base.join("logs");
    fs::create_dir(&logs).unwrap();
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(logs.join("app.log"), "precious\n").unwrap();
    std::os::unix::fs::chown(logs.join("app.log"), Some(65534), Some(65534)).unwrap();
    fs::write(logs.join("app.20240301T115000.log.gz.tmp"), "half").unwrap();
    common::run_as_nobody("clean_rotating_child_entry", CLEAN_ROTATING_CHILD, base);
}
