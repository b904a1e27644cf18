//! `logxide view` and `logxide check` used as a person would: on fixture files, through
//! pipes, on a growing file, in a terminal.
//!
//! Golden outputs live in `tests/golden/`; `UPDATE_GOLDEN=1 cargo test -p logxide-cli`
//! rewrites them (then read the diff).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{logxide_in, logxide_with_stdin_in, text};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    manifest().join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn logxide(args: &[&str]) -> Output {
    logxide_in(&fixtures(), args)
}

/// Compares `actual` with `tests/golden/<name>`.
fn golden(name: &str, actual: &str) {
    let path = manifest().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "output differs from {}:\n--- actual\n{actual}--- expected\n{expected}",
        path.display()
    );
}

fn view_golden(file: &str, golden_name: &str) {
    let out = logxide(&["view", "--color", "never", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    golden(golden_name, &text(&out.stdout));
}

#[test]
fn view_nested_task_with_a_failure() {
    view_golden("nested_failure.log", "view_nested_failure.txt");
}

#[test]
fn view_interleaved_tasks() {
    view_golden("interleaved.log", "view_interleaved.txt");
}

#[test]
fn view_eliot_file() {
    view_golden("eliot.log", "view_eliot.txt");
}

#[test]
fn view_incomplete_task() {
    view_golden("incomplete.log", "view_incomplete.txt");
}

#[test]
fn view_torn_last_line() {
    view_golden("torn.log", "view_torn.txt");
}

/// A file left by a crash with mmap: the records, then the zeroed rest of the region.
fn nul_tail_file(dir: &Path) -> PathBuf {
    let mut bytes = fixture("nested_failure.log");
    bytes.extend_from_slice(&[0u8; 4096]);
    let path = dir.join("nul_tail.log");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn view_nul_tail() {
    let dir = tempfile::tempdir().unwrap();
    nul_tail_file(dir.path());
    let out = logxide_in(dir.path(), &["view", "--color", "never", "nul_tail.log"]);
    assert_eq!(out.status.code(), Some(0));
    golden("view_nul_tail.txt", &text(&out.stdout));
}

#[test]
fn view_reads_stdin_and_several_files() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--color", "never", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fixture("nested_failure.log"))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let expected = logxide(&["view", "--color", "never", "nested_failure.log"]);
    assert_eq!(out.stdout, expected.stdout);

    // Several files are one log: their tasks together, no header.
    let out = logxide(&["view", "--color", "never", "eliot.log", "incomplete.log"]);
    let expected = [
        logxide(&["view", "--color", "never", "eliot.log"]),
        logxide(&["view", "--color", "never", "incomplete.log"]),
    ];
    let s = text(&out.stdout);
    assert_eq!(
        s.lines().count(),
        expected
            .iter()
            .map(|o| text(&o.stdout).lines().count())
            .sum::<usize>(),
        "{s}"
    );
    assert!(!s.contains("==>"), "{s}");

    let out = logxide(&["view", "missing.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.log"));

    // Standard input can be read once: `- -` is a usage error (it read it, then nothing).
    let out = logxide(&["view", "-", "eliot.log", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "logxide view: `-` (standard input) may be given once: it can be read only once\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn view_filters() {
    let v = |args: &[&str]| {
        let mut all = vec!["view", "--color", "never"];
        all.extend_from_slice(args);
        let out = logxide(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    // --level hides messages below it, never actions.
    let s = v(&["--level", "warning", "nested_failure.log"]);
    assert!(
        !s.contains("inside request") && !s.contains("rows fetched"),
        "{s}"
    );
    assert!(!s.contains("standalone"), "{s}");
    assert!(
        s.contains("error: upstream said no") && s.contains("db:query succeeded"),
        "{s}"
    );
    assert!(
        s.contains("Ab.1 "),
        "the task stays, only its message is hidden: {s}"
    );
    // --task: the task id, or ID* for the ids starting with ID.
    let s = v(&["--task", "Tk.2", "interleaved.log"]);
    assert!(s.starts_with("Tk.2 ") && !s.contains("Tk.1"), "{s}");
    let s = v(&["--task", "Tk*", "interleaved.log"]);
    assert!(s.contains("Tk.1") && s.contains("Tk.2"), "{s}");
    // --action: whole tasks containing the action type.
    let s = v(&["--action", "cache:get", "interleaved.log"]);
    assert!(
        s.starts_with("Tk.2 ") && !s.contains("Tk.1") && s.contains("job:run started"),
        "{s}"
    );
    // --since / --until: Unix seconds or RFC 3339; tasks overlapping the window.
    let s = v(&["--since", "2023-11-14T22:13:21Z", "nested_failure.log"]);
    assert!(!s.contains("Ab.1") && s.contains("Ab.2"), "{s}");
    let s = v(&["--until", "1700000000.5", "nested_failure.log"]);
    assert!(s.contains("Ab.1") && !s.contains("Ab.2"), "{s}");
    let s = v(&[
        "--since",
        "1700000001.45",
        "--until",
        "1700000001.46",
        "nested_failure.log",
    ]);
    assert!(!s.contains("Ab.1") && s.contains("Ab.2"), "{s}");
    // Bad filter values are usage errors.
    for bad in [
        &["view", "--level", "loud", "eliot.log"][..],
        &["view", "--since", "yesterday", "eliot.log"],
        &["view", "--color", "sometimes", "eliot.log"],
        &["view"],
    ] {
        let out = logxide(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// `--task ID` selects the task ID only: `--task P.1` also showed `P.10` (library ids are a
/// process prefix and a counter, so every id is a prefix of others). `ID*` selects the ids
/// starting with ID; an empty ID is a usage error (it selects nothing).
#[test]
fn task_selects_one_id_or_a_prefix_with_a_star() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.log"),
        "{\"ts\":1,\"tid\":\"P.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"one\"}\n\
         {\"ts\":2,\"tid\":\"P.10\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"ten\"}\n\
         {\"ts\":3,\"tid\":\"Q.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"q\"}\n",
    )
    .unwrap();
    let view = |args: &[&str]| {
        let mut all = vec!["view", "--color", "never"];
        all.extend_from_slice(args);
        all.push("t.log");
        let out = logxide_in(dir.path(), &all);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let one = "P.1 1970-01-01T00:00:01.000000Z\n└─ info: one\n";
    let ten = "P.10 1970-01-01T00:00:02.000000Z\n└─ info: ten\n";
    assert_eq!(
        view(&["--task", "P.1"]),
        (Some(0), one.to_owned(), String::new())
    );
    assert_eq!(
        view(&["--task", "P"]),
        (Some(0), String::new(), String::new())
    );
    assert_eq!(
        view(&["--task", "P.1*"]),
        (Some(0), format!("{one}{ten}"), String::new())
    );
    // --follow alike (standard input: it ends with the input).
    let input = std::fs::read(dir.path().join("t.log")).unwrap();
    let out = logxide_with_stdin_in(
        dir.path(),
        &["view", "--color", "never", "--follow", "--task", "P.1", "-"],
        &input,
    );
    assert_eq!(text(&out.stdout), "P.1 info: one\n");
    let out = logxide_with_stdin_in(
        dir.path(),
        &["view", "--color", "never", "--follow", "--task", "P*", "-"],
        &input,
    );
    assert_eq!(text(&out.stdout), "P.1 info: one\nP.10 info: ten\n");
    let (code, out, err) = view(&["--task", ""]);
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert!(
        err.contains("invalid value '' for '--task <ID>': an empty task id selects no task"),
        "{err}"
    );
}

/// Every byte a terminal could act on: C0 controls but `\n`, DEL, C1, U+2028/2029.
fn assert_no_raw_controls(what: &str, out: &[u8]) {
    let s = String::from_utf8_lossy(out);
    for (i, c) in s.chars().enumerate() {
        let bad = (c < ' ' && c != '\n')
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || c == '\u{2028}'
            || c == '\u{2029}';
        assert!(!bad, "{what}: raw {c:?} at char {i}:\n{s}");
    }
}

#[test]
fn no_terminal_injection() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fixture("injection.log");
    // A line that is not JSON, with raw escape sequences, a bell, CR, NUL, DEL and C1.
    bytes.extend_from_slice(b"raw \x1b[2J\x1b]0;t\x07 \r\0 \x7f \xc2\x9b \xe2\x80\xa8 end\n");
    std::fs::write(dir.path().join("evil.log"), &bytes).unwrap();
    for color in ["never", "always"] {
        let out = logxide_in(dir.path(), &["view", "--color", color, "evil.log"]);
        assert_eq!(out.status.code(), Some(0));
        let s = text(&out.stdout);
        let plain = if color == "always" {
            // Only the viewer's own SGR sequences remain; strip them and look again.
            let mut t = s.clone();
            for sgr in [
                "\x1b[0m",
                "\x1b[1m",
                "\x1b[2m",
                "\x1b[1;31m",
                "\x1b[32m",
                "\x1b[33m",
            ] {
                t = t.replace(sgr, "");
            }
            t
        } else {
            s.clone()
        };
        assert_no_raw_controls(&format!("view --color {color}"), plain.as_bytes());
        assert!(s.contains(r"evil \x1b[2J\x1b]0;pwned\x07 title\r overwrite \x00 nul \u{2028} sep \u{9b} csi \x7f del"), "{s}");
        assert!(s.contains(r"X.\x1b[5m2"), "{s}");
        assert!(
            s.contains(
                r"! line 4: not a record: raw \x1b[2J\x1b]0;t\x07 \r\x00 \x7f \u{9b} \u{2028} end"
            ),
            "{s}"
        );
    }
    let out = logxide_in(dir.path(), &["check", "evil.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_raw_controls("check", &out.stdout);
    let out = logxide_in(dir.path(), &["view", "--follow", "-"]);
    assert_no_raw_controls("follow", &out.stdout);
}

fn check_golden(file: &str, code: i32, golden_name: &str) {
    let out = logxide(&["check", file]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{file}: {}",
        text(&out.stdout)
    );
    golden(golden_name, &text(&out.stdout));
}

#[test]
fn check_clean_files() {
    check_golden("nested_failure.log", 0, "check_clean.txt");
    let out = logxide(&[
        "check",
        "interleaved.log",
        "eliot.log",
        "incomplete.log",
        "injection.log",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let s = text(&out.stdout);
    assert!(s.contains("incomplete.log: 5 lines, 2 tasks, 5 records (1 message, 3 started, 1 succeeded, 0 failed), 1 incomplete task, 0 problems"), "{s}");
}

#[test]
fn check_broken_files() {
    for (file, golden_name) in [
        ("gap.log", "check_gap.txt"),
        ("end_without_start.log", "check_end_without_start.txt"),
        ("ts_backwards.log", "check_ts_backwards.txt"),
        ("duplicate.log", "check_duplicate.txt"),
        ("bad_json.log", "check_bad_json.txt"),
        ("missing_key.log", "check_missing_key.txt"),
        ("torn.log", "check_torn.txt"),
    ] {
        check_golden(file, 1, golden_name);
    }
}

#[test]
fn check_more_tree_problems() {
    let dir = tempfile::tempdir().unwrap();
    let lines = |name: &str, body: &str| {
        std::fs::write(dir.path().join(name), body).unwrap();
        let out = logxide_in(dir.path(), &["check", name]);
        (out.status.code(), text(&out.stdout))
    };
    let (code, s) = lines(
        "mismatch.log",
        "{\"ts\":1,\"tid\":\"a\",\"lvl\":[1],\"at\":\"x\",\"st\":\"started\"}\n\
         {\"ts\":2,\"tid\":\"a\",\"lvl\":[2],\"at\":\"y\",\"st\":\"succeeded\"}\n\
         {\"ts\":3,\"tid\":\"a\",\"lvl\":[3],\"mt\":\"info\",\"msg\":\"late\"}\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        s.contains("mismatch.log:2: end of action y at [2] does not match its start x (line 1)"),
        "{s}"
    );
    assert!(
        s.contains("mismatch.log:3: record [3] comes after the end of its action y ([2], line 2)"),
        "{s}"
    );
    let (code, s) = lines(
        "inner.log",
        "{\"ts\":1,\"tid\":\"a\",\"lvl\":[1],\"at\":\"x\",\"st\":\"started\"}\n\
         {\"ts\":2,\"tid\":\"a\",\"lvl\":[2,1],\"at\":\"y\",\"st\":\"started\"}\n\
         {\"ts\":3,\"tid\":\"a\",\"lvl\":[3],\"at\":\"x\",\"st\":\"failed\"}\n",
    );
    assert_eq!(code, Some(1));
    assert!(s.contains("inner.log:2: action y at [2,1] in task a has no end record, but an action around it ended"), "{s}");
    // Equal timestamps are fine; a gap in a task still running is not (yet) an error.
    let (code, s) = lines(
        "running.log",
        "{\"ts\":1,\"tid\":\"a\",\"lvl\":[1],\"at\":\"x\",\"st\":\"started\"}\n\
         {\"ts\":1,\"tid\":\"a\",\"lvl\":[3],\"mt\":\"info\",\"msg\":\"[2] still queued\"}\n",
    );
    assert_eq!(code, Some(0), "{s}");
    assert!(s.contains("1 incomplete task, 0 problems"), "{s}");
}

#[test]
fn check_nul_tail_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    nul_tail_file(dir.path());
    let out = logxide_in(
        dir.path(),
        &["check", "nul_tail.log", "--repair", "fixed.log"],
    );
    assert_eq!(out.status.code(), Some(1));
    golden("check_nul_tail_repair.txt", &text(&out.stdout));
    assert_eq!(
        std::fs::read(dir.path().join("fixed.log")).unwrap(),
        fixture("nested_failure.log")
    );
    let out = logxide_in(dir.path(), &["check", "fixed.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A torn last line after a NUL-free file; then both at once.
    std::fs::copy(fixtures().join("torn.log"), dir.path().join("torn.log")).unwrap();
    let out = logxide_in(
        dir.path(),
        &["check", "--repair", "torn-fixed.log", "torn.log"],
    );
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(s.contains("removed the torn last line 4 (60 bytes)"), "{s}");
    let torn = fixture("torn.log");
    let keep = torn.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(
        std::fs::read(dir.path().join("torn-fixed.log")).unwrap(),
        &torn[..keep]
    );

    let mut both = torn.clone();
    both.extend_from_slice(&[0; 100]);
    std::fs::write(dir.path().join("both.log"), &both).unwrap();
    let out = logxide_in(
        dir.path(),
        &["check", "--json", "--repair", "both-fixed.log", "both.log"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["torn_last_line"]["bytes"], 60);
    assert_eq!(f["nul_tail"]["bytes"], 100);
    assert_eq!(f["nul_tail"]["offset"], torn.len());
    assert_eq!(f["repair"]["removed_nul_bytes"], 100);
    assert_eq!(f["repair"]["removed_torn_line"], 4);
    assert_eq!(v["clean"], false);
    assert_eq!(
        std::fs::read(dir.path().join("both-fixed.log")).unwrap(),
        &torn[..keep]
    );

    // A clean file is copied byte for byte.
    let out = logxide(&[
        "check",
        "eliot.log",
        "--repair",
        dir.path().join("e.log").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nothing to remove"));
    assert_eq!(
        std::fs::read(dir.path().join("e.log")).unwrap(),
        fixture("eliot.log")
    );
}

#[test]
fn check_json_and_usage_errors() {
    let out = logxide(&["check", "--json", "gap.log", "eliot.log"]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert_eq!(s.lines().count(), 1, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["problems"], 1);
    assert_eq!(v["files"][0]["problems"][0]["line"], 3);
    assert_eq!(v["files"][1]["records"]["failed"], 1);

    for args in [
        &["check"][..],
        &["check", "no-such-file.log"],
        &["check", "--repair", "out.log", "gap.log", "eliot.log"],
        &["check", "--repair", "gap.log", "gap.log"],
        &["check", "--bogus", "gap.log"],
    ] {
        let out = logxide(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    assert!(!fixtures().join("out.log").exists());
}

/// Reads the child's stdout lines on a thread, so the test can wait with a deadline.
fn line_reader(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "{needle:?} did not appear within 5 s; seen:\n{}",
        seen.join("\n")
    );
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn view_follow_sees_appended_truncated_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.log");
    std::fs::write(
        &path,
        b"{\"ts\":1,\"tid\":\"F.1\",\"lvl\":[1],\"at\":\"job\",\"st\":\"started\"}\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--follow", "--color", "never"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = line_reader(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&rx, "F.1 job started", &mut seen);
        // Appended in two writes: half a line is not shown until its newline arrives.
        append(
            &path,
            b"{\"ts\":2,\"tid\":\"F.1\",\"lvl\":[2],\"mt\":\"info\",",
        );
        std::thread::sleep(Duration::from_millis(250));
        append(&path, b"\"msg\":\"appended\"}\n{\"ts\":3,\"tid\":\"F.1\",\"lvl\":[3,1],\"at\":\"sub\",\"st\":\"started\"}\n");
        wait_for(&rx, "sub started", &mut seen);
        assert!(
            seen.contains(&"F.1   info: appended".to_owned()),
            "{seen:?}"
        );
        assert!(
            seen.contains(&"F.1   sub started".to_owned()),
            "indented by depth: {seen:?}"
        );
        // Truncated and rewritten (copytruncate rotation).
        std::fs::write(
            &path,
            b"{\"ts\":4,\"tid\":\"F.2\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"after truncate\"}\n",
        )
        .unwrap();
        wait_for(&rx, "after truncate", &mut seen);
        // Renamed away and replaced by a new file.
        std::fs::rename(&path, dir.path().join("live.log.1")).unwrap();
        std::fs::write(
            &path,
            b"{\"ts\":5,\"tid\":\"F.3\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"new file\"}\n",
        )
        .unwrap();
        wait_for(&rx, "new file", &mut seen);
        // A NUL tail (mmap region not yet written) is skipped until records replace it.
        let at = std::fs::metadata(&path).unwrap().len();
        append(&path, &[0; 64]);
        std::thread::sleep(Duration::from_millis(250));
        {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(b"not json\n").unwrap();
        }
        wait_for(&rx, "not a record: not json", &mut seen);
        // Zeros with records after them (a crash, then a writer appending) are skipped.
        append(
            &path,
            b"{\"ts\":6,\"tid\":\"F.3\",\"lvl\":[2],\"mt\":\"info\",\"msg\":\"after zeros\"}\n",
        );
        wait_for(&rx, "after zeros", &mut seen);
        assert!(
            seen.iter().any(|l| l.ends_with(": 55 zero bytes skipped")),
            "{seen:?}"
        );
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn library_output_is_clean_and_viewable() {
    use logxide::sink::MemorySink;
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .sink(mem.clone())
        .build()
        .unwrap();
    log.info("standalone");
    {
        let _req = log.start_action("http:request", |f| {
            f.field("path", "/api");
        });
        log.info("inside");
        {
            let _q = log.start_action("db:query", |_| {});
            log.debug("rows");
        }
        let inner = log.start_action("cache:set", |_| {});
        inner.fail(&std::io::Error::other("full"));
        log.error("giving up");
    }
    log.flush(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.log"), mem.contents()).unwrap();
    let out = logxide_in(dir.path(), &["check", "lib.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("2 tasks, 10 records"),
        "{}",
        text(&out.stdout)
    );
    let out = logxide_in(dir.path(), &["view", "--color", "never", "lib.log"]);
    let s = text(&out.stdout);
    let shape: Vec<String> = s
        .lines()
        .skip(3)
        .map(|l| {
            l.split(" succeeded")
                .next()
                .unwrap()
                .split(" failed")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        shape,
        [
            "└─ http:request started path=/api",
            "   ├─ info: inside",
            "   ├─ db:query started",
            "   │  ├─ debug: rows",
            "   │  └─ db:query",
            "   ├─ cache:set started",
            "   │  └─ cache:set",
            "   ├─ error: giving up",
            "   └─ http:request",
        ],
        "{s}"
    );
}

#[test]
fn colors_on_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("tmux is not installed: skipping the terminal test");
        return;
    }
    let socket = format!("logxide-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    };
    // First with TERM=dumb and with NO_COLOR set (no colors on that terminal), then as is.
    let view = format!(
        "{} view --color auto {}",
        env!("CARGO_BIN_EXE_logxide"),
        fixtures().join("nested_failure.log").display()
    );
    let script = format!(
        "env -u NO_COLOR TERM=dumb {view}; env NO_COLOR=1 {view}; echo PLAIN-DONE; \
         env -u NO_COLOR {view}; echo VIEW-DONE; sleep 30"
    );
    let out = tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        &script,
    ]);
    assert!(out.status.success(), "tmux: {}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pane = String::new();
    while Instant::now() < deadline {
        pane = text(&tmux(&["capture-pane", "-p", "-e"]).stdout);
        if pane.contains("VIEW-DONE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = tmux(&["kill-server"]);
    assert!(pane.contains("VIEW-DONE"), "no output in the pane:\n{pane}");
    let (plain, pane) = pane.split_once("PLAIN-DONE").unwrap();
    assert_eq!(plain.matches("http:request failed").count(), 2, "{plain}");
    assert!(
        !plain.contains('\x1b'),
        "colors with TERM=dumb or NO_COLOR:\n{plain:?}"
    );
    assert!(pane.contains("http:request failed"), "{pane}");
    assert!(pane.contains("\x1b["), "no colors on a terminal:\n{pane}");
    // The failure is red: tmux writes SGR 31 (alone or combined).
    let failed = pane
        .lines()
        .find(|l| l.contains("http:request failed"))
        .unwrap();
    assert!(
        failed.contains("31m") || failed.contains(";31"),
        "{failed:?}"
    );
}

/// A record whose field nests 200 levels deep (logxide writes serde values at any depth) is
/// a record for `view` and `check`; a line nested deeper than the tools' limit is refused
/// with a message that says so, never a crash.
#[test]
fn deeply_nested_fields_are_records() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let line =
        format!(r#"{{"ts":1700000000,"tid":"N.1","lvl":[1],"mt":"info","msg":"deep","x":{deep}}}"#);
    std::fs::write(dir.path().join("deep.log"), format!("{line}\n")).unwrap();
    let out = logxide_in(dir.path(), &["check", "deep.log"]);
    assert_eq!(
        text(&out.stdout),
        "deep.log: 1 line, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"
    );
    assert_eq!(out.status.code(), Some(0));
    let out = logxide_in(dir.path(), &["view", "--color", "never", "deep.log"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("N.1 2023-11-14T22:13:20.000000Z\n└─ info: deep x={deep}\n")
    );

    let abyss = "[".repeat(1_000_000);
    let line = format!(r#"{{"ts":1700000000,"tid":"N.1","lvl":[1],"mt":"info","x":{abyss}}}"#);
    std::fs::write(dir.path().join("abyss.log"), format!("{line}\n")).unwrap();
    let out = logxide_in(dir.path(), &["check", "abyss.log"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("abyss.log:1: nested deeper than 1024 levels\n"),
        "{}",
        text(&out.stdout)
    );
    let out = logxide_in(dir.path(), &["view", "--color", "never", "abyss.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("! line 1: not a record: "));
}

/// A file name is text from outside too (`logxide check *.log` in a directory anyone can
/// write to): `check` prints it escaped, on stdout and stderr, as `view` does.
#[test]
fn file_names_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = "a\x1b]0;pwned\x07\x1b[2Jb.log";
    std::fs::write(dir.path().join(name), "not json\n").unwrap();
    let e = r"a\x1b]0;pwned\x07\x1b[2Jb.log";
    let out = logxide_in(dir.path(), &["check", name]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{e}:1: not valid JSON: expected ident at column 2\n\
             {e}: 1 line, 0 tasks, 0 records (0 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 1 problem\n"
        )
    );
    let out = logxide_in(dir.path(), &["check", "--repair", "fixed\x1b[2J.log", name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).ends_with(&format!(
            "{e}: repaired copy written to fixed\\x1b[2J.log (9 bytes): nothing to remove\n"
        )),
        "{}",
        text(&out.stdout)
    );
    // The JSON report keeps the name as it is (JSON escapes it).
    let out = logxide_in(dir.path(), &["check", "--json", name]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["file"], name);
    for cmd in ["check", "view"] {
        let out = logxide_in(dir.path(), &[cmd, "missing\x1b[2J.log"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!("logxide {cmd}: missing\\x1b[2J.log: No such file or directory (os error 2)\n")
        );
    }
}

/// A key the tools read (`ts`, `tid`, `lvl`, `mt`, `msg`, `at`, `st`, `dur`) given twice is
/// not a record: readers disagree on which one counts (the first, the last); logxide never
/// writes one twice. A field of the caller's given twice is fine (logxide writes both).
#[test]
fn duplicate_header_keys_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dup.log"),
        concat!(
            r#"{"ts":1700000000,"tid":"D.1","lvl":[1],"mt":"info","msg":"x","lvl":[5]}"#,
            "\n",
            r#"{"timestamp":1700000000,"task_uuid":"u","task_level":[1],"message_type":"info","task_uuid":"v"}"#,
            "\n",
            r#"{"ts":1700000000,"tid":"D.3","lvl":[1],"mt":"info","msg":"y","k":1,"k":2}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = logxide_in(dir.path(), &["check", "dup.log"]);
    assert_eq!(
        text(&out.stdout),
        "dup.log:1: duplicate key \"lvl\"\n\
         dup.log:2: duplicate key \"task_uuid\"\n\
         dup.log: 3 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = logxide_in(dir.path(), &["view", "--color", "never", "dup.log"]);
    let s = text(&out.stdout);
    assert!(s.starts_with("! line 1: not a record: "), "{s}");
    assert!(s.contains("\n! line 2: not a record: "), "{s}");
    assert!(
        s.ends_with("D.3 2023-11-14T22:13:20.000000Z\n└─ info: y k=1 k=2\n"),
        "{s}"
    );
}

/// Rotated files compressed by logxide (`app.<stamp>.log.gz`, `.zst`) are read as their
/// records, not shown as binary; `--repair` refuses them (its offsets are the plain file's).
#[test]
fn compressed_rotated_files_are_read() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture("nested_failure.log");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    std::fs::write(dir.path().join("a.log.gz"), gz.finish().unwrap()).unwrap();
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    std::fs::write(dir.path().join("a.log.zst"), zst).unwrap();
    std::fs::write(dir.path().join("a.log"), &plain).unwrap();
    let expected_view = logxide_in(dir.path(), &["view", "--color", "never", "a.log"]);
    let expected_check = text(&logxide_in(dir.path(), &["check", "a.log"]).stdout);
    for name in ["a.log.gz", "a.log.zst"] {
        let out = logxide_in(dir.path(), &["view", "--color", "never", name]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&expected_view.stdout), "{name}");
        let out = logxide_in(dir.path(), &["check", name]);
        assert_eq!(
            text(&out.stdout),
            expected_check.replacen("a.log:", &format!("{name}:"), 1),
            "{name}"
        );
        let out = logxide_in(dir.path(), &["check", "--repair", "fixed.log", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            text(&out.stderr).contains("is compressed"),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(!dir.path().join("fixed.log").exists());
        let out = logxide_in(dir.path(), &["view", "--follow", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            text(&out.stderr).contains("compressed"),
            "{name}: {}",
            text(&out.stderr)
        );
    }
}

/// The bidirectional marks (U+061C, U+200E, U+200F) reorder text on screen like the
/// overrides do: `view` escapes them, as the console sink does.
#[test]
fn bidi_marks_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bidi.log"),
        "{\"ts\":1700000000,\"tid\":\"B.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"a\u{61c}b\u{200e}c\u{200f}d\"}\n",
    )
    .unwrap();
    let out = logxide_in(dir.path(), &["view", "--color", "never", "bidi.log"]);
    assert_eq!(
        text(&out.stdout),
        "B.1 2023-11-14T22:13:20.000000Z\n└─ info: a\\u{61c}b\\u{200e}c\\u{200f}d\n"
    );
}

/// A JSON error names the column in the line, not serde_json's "line 1" (read as the file's
/// first line), and an empty line says so.
#[test]
fn json_errors_name_the_column_and_empty_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("e.log"),
        "{\"ts\":1700000000,\"tid\":\"E.1\",\"lvl\":[1],\"mt\":\"info\"}\n\n{\"ts\":1,}\n   \n",
    )
    .unwrap();
    let out = logxide_in(dir.path(), &["check", "e.log"]);
    assert_eq!(
        text(&out.stdout),
        "e.log:2: empty line, not a record\n\
         e.log:3: not valid JSON: trailing comma at column 9\n\
         e.log:4: empty line, not a record\n\
         e.log: 4 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 3 problems\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// Runs `logxide args…` in the fixtures' directory with `input` on its standard input.
fn logxide_with_stdin(args: &[&str], input: &[u8]) -> Output {
    logxide_with_stdin_in(&fixtures(), args, input)
}

/// `check -` reads standard input as `view -` does: the same report as for the file, under
/// the name `-`; it can be read once, and `--repair` (which reads its input twice) refuses it.
#[test]
fn check_reads_stdin() {
    for (file, code) in [("nested_failure.log", 0), ("gap.log", 1), ("torn.log", 1)] {
        let from_file = logxide(&["check", file]);
        let out = logxide_with_stdin(&["check", "-"], &fixture(file));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{file}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            text(&from_file.stdout).replace(file, "-"),
            "{file}"
        );
    }
    let out = logxide_with_stdin(&["check", "-", "gap.log", "-"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("standard input"),
        "{}",
        text(&out.stderr)
    );
    let out = logxide_with_stdin(&["check", "--repair", "out.log", "-"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--repair"),
        "{}",
        text(&out.stderr)
    );
}

/// `view --follow` on an input whose reads keep failing (replaced by a directory: it opens,
/// and every read is EISDIR) reports the error once, not at every poll (ten times a second),
/// and goes on following the other files.
#[test]
fn follow_reports_a_lasting_read_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.log");
    std::fs::write(
        &bad,
        b"{\"ts\":1,\"tid\":\"B.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"zero\"}\n",
    )
    .unwrap();
    let good = dir.path().join("good.log");
    std::fs::write(
        &good,
        b"{\"ts\":1,\"tid\":\"G.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"first\"}\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--follow", "--color", "never"])
        .arg(&bad)
        .arg(&good)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_reader(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    wait_for(&rx, "first", &mut seen);
    std::fs::remove_file(&bad).unwrap();
    std::fs::create_dir(&bad).unwrap();
    // A dozen polls at least.
    std::thread::sleep(Duration::from_millis(1500));
    append(
        &good,
        b"{\"ts\":2,\"tid\":\"G.2\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"second\"}\n",
    );
    wait_for(&rx, "second", &mut seen);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    assert!(seen.iter().any(|l| l.contains("zero")), "{seen:?}");
}

/// A file written through a level filter (a sink of its own level, here warning) holds
/// only some records of each task: the others took their positions all the same. `check`
/// reports the records without their action's start and the ends without their start;
/// `check --filtered` expects such missing records
/// and finds the file clean, while a real problem (a duplicate level) is still one.
#[test]
fn check_filtered_takes_a_level_filtered_file_as_clean() {
    use logxide::sink::{LevelFilter, MemorySink};
    use logxide::Level;
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .sink(LevelFilter::at_least(mem.clone(), Level::Warning))
        .build()
        .unwrap();
    log.info("standalone: filtered out");
    log.warning("standalone warning");
    {
        let _req = log.start_action("http:request", |_| {}); // info: filtered out
        log.info("inside: filtered out");
        log.warning("slow upstream");
        {
            let q = log.start_action("db:query", |_| {});
            log.debug("rows: filtered out");
            q.fail(&std::io::Error::other("timeout")); // error: kept
        }
        log.error("giving up");
    } // succeeded end, info: filtered out
    for i in 0..3 {
        let _a = log.start_action("job", |f| {
            f.field("i", &i);
        });
        log.warning("retrying");
    }
    log.flush(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let contents = String::from_utf8(mem.contents()).unwrap();
    std::fs::write(dir.path().join("warn.log"), &contents).unwrap();
    assert_eq!(contents.lines().count(), 7, "{contents}");

    let out = logxide_in(dir.path(), &["check", "warn.log"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(report.contains("belong to no started action"), "{report}");
    assert!(
        report.contains("end of action db:query at [4,3] without a start"),
        "{report}"
    );

    let out = logxide_in(dir.path(), &["check", "--filtered", "warn.log"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (
            Some(0),
            "warn.log: 7 lines, 5 tasks, 7 records (6 messages, 0 started, 0 succeeded, 1 failed), 0 incomplete tasks, 0 problems\n".to_owned()
        ),
        "{}",
        text(&out.stderr)
    );

    // What the filter cannot explain stays a problem.
    let first = contents.lines().nth(1).unwrap();
    let doubled = format!("{contents}{first}\n");
    std::fs::write(dir.path().join("doubled.log"), doubled).unwrap();
    let out = logxide_in(dir.path(), &["check", "--filtered", "doubled.log"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("duplicate task level"),
        "{}",
        text(&out.stdout)
    );
}

/// In the eliot format `ts` and `tid` are no reserved keys: a user field of that name is
/// written as it is, and `check` took such a line for a compact record with no `tid`.
#[test]
fn an_eliot_file_with_fields_named_ts_and_tid_is_clean() {
    use logxide::sink::MemorySink;
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .set("format", "eliot")
        .unwrap()
        .sink(mem.clone())
        .build()
        .unwrap();
    log.log(logxide::Level::Info, "odd keys", |f| {
        f.field("ts", &5);
        f.field("tid", "mine");
    });
    log.flush(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eliot.log"), mem.contents()).unwrap();
    let out = logxide_in(dir.path(), &["check", "eliot.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = logxide_in(dir.path(), &["view", "--color", "never", "eliot.log"]);
    assert!(
        text(&out.stdout).contains("info: odd keys ts=5 tid=mine"),
        "{}",
        text(&out.stdout)
    );
}

/// A record the library dropped inside an action (here one whose field's `Display`
/// panicked: counted as dropped, reason panicked) had taken its task level: `check` reports
/// the gap, and says what a gap can mean — records dropped by the writer (its metrics count
/// them) or left out by a level filter (`--filtered`) — rather than only that the levels are
/// wrong; `--filtered` accepts it, as it accepts any gap.
#[test]
fn check_explains_a_gap_a_dropped_record_left() {
    use logxide::sink::MemorySink;
    struct Panics;
    impl std::fmt::Display for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("a value that cannot be shown")
        }
    }
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    {
        let _job = log.start_action("job", |_| {});
        let lost = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            log.log(logxide::Level::Info, "lost", |f| {
                f.field("v", &Panics.to_string());
            });
        }));
        assert!(lost.is_err());
        log.info("after");
    }
    log.flush(None).unwrap();
    assert_eq!(log.metrics().dropped_by.panicked, 1);
    let body = mem.contents();
    let first: serde_json::Value =
        serde_json::from_slice(body.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let tid = first["tid"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.log"), &body).unwrap();
    let out = logxide_in(dir.path(), &["check", "lib.log"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "lib.log:2: gap in the task levels of task {tid}: [2] missing before [3] (records \
             not in the file: dropped by the writer, which its metrics count, or below a sink's \
             level filter, which --filtered accepts)\n\
             lib.log: 3 lines, 1 task, 3 records (1 message, 1 started, 1 succeeded, 0 failed), \
             0 incomplete tasks, 1 problem\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
    let out = logxide_in(dir.path(), &["check", "--filtered", "lib.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// `view --follow` with several files, one of which cannot be opened at the start (not
/// there yet): as `tail -f`, it is reported on stderr and the others are followed; once it
/// appears it is read from its start. (It exited 2 at once.) With no file that can be
/// opened there is nothing to follow: exit 2.
#[test]
fn follow_goes_on_without_a_file_missing_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |tid: &str, msg: &str| {
        format!("{{\"ts\":1,\"tid\":\"{tid}\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"{msg}\"}}\n")
    };
    std::fs::write(dir.path().join("a.log"), rec("A", "first")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--follow", "--color", "never", "a.log", "b.log"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_reader(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&rx, "first", &mut seen);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(dir.path().join("b.log"), rec("B", "appeared")).unwrap();
        wait_for(&rx, "appeared", &mut seen);
        append(&dir.path().join("a.log"), rec("A", "second").as_bytes());
        wait_for(&rx, "second", &mut seen);
    }));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        seen,
        [
            "==> a.log <==",
            "A info: first",
            "==> b.log <==",
            "B info: appeared",
            "==> a.log <==",
            "A info: second"
        ]
    );
    assert_eq!(
        text(&out.stderr),
        "logxide view: b.log: No such file or directory (os error 2); following the other files, and this one once it can be read\n\
         logxide view: b.log: appeared, reading it\n"
    );
    for names in [&["x.log"][..], &["x.log", "y.log"]] {
        let out = logxide_in(
            dir.path(),
            &[&["view", "--follow", "--color", "never"][..], names].concat(),
        );
        assert_eq!(out.status.code(), Some(2));
        let expected: String = names
            .iter()
            .map(|f| format!("logxide view: {f}: No such file or directory (os error 2)\n"))
            .collect();
        assert_eq!(text(&out.stderr), expected);
    }
}

/// `view --follow` refuses a directory (as `tail -f` gives up on one): said on stderr, and
/// with nothing else to follow, exit 2. (It was reported as to be read "once it can be read"
/// and retried silently at every look.)
#[test]
fn follow_refuses_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let out = logxide_in(dir.path(), &["view", "--follow", "d"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "logxide view: d: is a directory: not followed\n"
    );
    let out = logxide_in(dir.path(), &["view", "--follow", "d", "x.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "logxide view: d: is a directory: not followed\n\
         logxide view: x.log: No such file or directory (os error 2)\n"
    );
}
