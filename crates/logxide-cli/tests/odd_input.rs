//! `view` and `check` on odd input: extreme values, line endings, bytes that are not text.

mod common;
use common::{logxide_in, spawn_piped, text};

/// Runs `logxide ARGS… f.log` on `body`: exit status, stdout, stderr.
fn run(body: &[u8], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.log"), body).unwrap();
    let mut all = args.to_vec();
    all.push("f.log");
    let out = logxide_in(dir.path(), &all);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A task position of u64::MAX is a valid level: `check` reports what is wrong with it
/// rather than overflowing (it panicked computing the position after an end, or after the
/// last one, in the gap check).
#[test]
fn the_largest_position_does_not_overflow() {
    let body = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"at\":\"x\",\"st\":\"started\"}\n\
{\"ts\":2,\"tid\":\"A\",\"lvl\":[18446744073709551615],\"at\":\"x\",\"st\":\"succeeded\"}\n";
    let (code, out, err) = run(body, &["check"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "f.log:2: gap in the task levels of task A: [2] to [18446744073709551614] missing before [18446744073709551615] (records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts)\n\
         f.log: 2 lines, 1 task, 2 records (0 messages, 1 started, 1 succeeded, 0 failed), 0 incomplete tasks, 1 problem\n"
    );
    assert_eq!(code, Some(1));
    let body = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"at\":\"x\",\"st\":\"started\"}\n\
{\"ts\":2,\"tid\":\"A\",\"lvl\":[18446744073709551615],\"mt\":\"info\"}\n\
{\"ts\":2,\"tid\":\"A\",\"lvl\":[18446744073709551614],\"at\":\"x\",\"st\":\"succeeded\"}\n";
    let (code, out, err) = run(body, &["check"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "f.log:2: record at [18446744073709551615] is after the end of its action x ([18446744073709551614], line 3)\n\
         f.log:3: gap in the task levels of task A: [2] to [18446744073709551613] missing before [18446744073709551614] (records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts)\n\
         f.log: 3 lines, 1 task, 3 records (1 message, 1 started, 1 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(code, Some(1));
}

/// A line with bytes that are not UTF-8 is not a record, and `check` says so (serde_json's
/// "invalid unicode code point" named no code point of the line); `view` shows it with the
/// bytes replaced. CRLF line endings are accepted, and the `\r` of a bad line is not shown.
#[test]
fn non_utf8_and_crlf_lines() {
    let body =
        b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"\xff\xfe\"}\n\xc3(\r\n\
{\"ts\":1,\"tid\":\"B\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"ok\"}\r\n";
    let (code, out, err) = run(body, &["check"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "f.log:1: not valid UTF-8: byte 0xff at column 48\n\
         f.log:2: not valid UTF-8: byte 0xc3 at column 1\n\
         f.log: 3 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(code, Some(1));
    let (code, out, err) = run(body, &["view", "--color", "never"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "! line 1: not a record: {\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"\u{fffd}\u{fffd}\"}\n\
         ! line 2: not a record: \u{fffd}(\n\
         B 1970-01-01T00:00:01.000000Z\n\
         \u{2514}\u{2500} info: ok\n"
    );
    assert_eq!(code, Some(0));
}

/// `--repair OUT` where OUT is another name of FILE (a hard link) is refused before anything
/// is written: creating OUT truncated FILE itself, and the check's only copy was lost.
#[cfg(unix)]
#[test]
fn repair_refuses_a_hard_link_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let body = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"x\"}\n\0\0\0";
    std::fs::write(dir.path().join("f.log"), body).unwrap();
    std::fs::hard_link(dir.path().join("f.log"), dir.path().join("g.log")).unwrap();
    let out = logxide_in(dir.path(), &["check", "--repair", "g.log", "f.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--repair OUT must not be the FILE being checked"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(std::fs::read(dir.path().join("f.log")).unwrap(), body);
}

/// A line longer than `--max-line` is not read into memory (a 200 MB line without a newline
/// took three times its size): `view` says which line and how long it is and goes on, `check`
/// reports it as a problem (a repaired copy keeps it as it is), `view --follow` skips it too.
/// A last line that long without a newline cannot be told torn or not: `--repair` refuses to
/// guess, before writing anything.
#[test]
fn a_line_longer_than_max_line_is_skipped_and_reported() {
    let rec = |tid: &str, msg: &str| {
        format!(r#"{{"ts":1,"tid":"{tid}","lvl":[1],"mt":"info","msg":"{msg}"}}"#)
    };
    let long = rec("B", &"x".repeat(5000));
    assert_eq!(long.len(), 5049);
    let body = format!("{}\n{long}\n{}\n", rec("A", "a"), rec("C", "c"));
    let (code, out, err) = run(
        body.as_bytes(),
        &["view", "--color", "never", "--max-line", "1K"],
    );
    assert_eq!(err, "");
    assert_eq!(
        out,
        "A 1970-01-01T00:00:01.000000Z\n\u{2514}\u{2500} info: a\n\
         ! line 2: 5049 bytes, longer than --max-line (1024 bytes): not read\n\
         C 1970-01-01T00:00:01.000000Z\n\u{2514}\u{2500} info: c\n"
    );
    assert_eq!(code, Some(0));
    let (code, out, err) = run(body.as_bytes(), &["check", "--max-line", "1K"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "f.log:2: line of 5049 bytes, longer than --max-line (1024 bytes): not read as a record\n\
         f.log: 3 lines, 2 tasks, 2 records (2 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 1 problem\n"
    );
    assert_eq!(code, Some(1));
    // Within the limit (the default, 64M), it is a record as any other.
    let (code, out, _) = run(body.as_bytes(), &["check"]);
    assert!(out.ends_with("3 tasks, 3 records (3 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"), "{out}");
    assert_eq!(code, Some(0));
    // The repaired copy keeps the long line: only the tail is ever removed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.log"), &body).unwrap();
    let out = logxide_in(
        dir.path(),
        &["check", "--max-line", "1K", "--repair", "r.log", "f.log"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("r.log")).unwrap(),
        body.as_bytes()
    );
    // The last line, that long, without a newline.
    let torn = format!("{}\n{long}", rec("A", "a"));
    std::fs::write(dir.path().join("t.log"), &torn).unwrap();
    let out = logxide_in(
        dir.path(),
        &["check", "--max-line", "1K", "--repair", "rt.log", "t.log"],
    );
    assert_eq!(
        text(&out.stdout),
        "t.log:2: line of 5049 bytes, longer than --max-line (1024 bytes): not read as a record\n\
         t.log:2: last line has no trailing newline\n\
         t.log: 2 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(
        text(&out.stderr),
        "logxide check: --repair: t.log: the last line (line 2, 5049 bytes) has no newline and is longer than --max-line (1024 bytes): whether it is torn is not known, nothing written (raise --max-line to repair it)\n"
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("rt.log").exists());
    // --follow on standard input.
    let out = common::logxide_with_stdin(
        &[
            "view",
            "--follow",
            "--color",
            "never",
            "--max-line",
            "1K",
            "-",
        ],
        body.as_bytes(),
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "A info: a\n! line 2: 5049 bytes, longer than --max-line (1024 bytes): not read\nC info: c\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

/// `--since` after `--until` can match nothing: it is a usage error saying so (exit 2), not
/// an empty output that looks like a file without such records.
#[test]
fn since_after_until_is_a_usage_error() {
    let body = br#"{"ts":1700000000,"tid":"A","lvl":[1],"mt":"info","msg":"x"}
"#;
    for follow in [false, true] {
        let mut args = vec!["view", "--color", "never"];
        if follow {
            args.push("--follow");
        }
        args.extend(["--since", "2023-11-14T22:13:21Z", "--until", "1700000000"]);
        let (code, out, err) = run(body, &args);
        assert_eq!(
            err,
            "logxide view: --since 2023-11-14T22:13:21.000000Z is after --until 2023-11-14T22:13:20.000000Z: no record can match\n"
        );
        assert_eq!(out, "");
        assert_eq!(code, Some(2));
    }
    // Equal bounds are a window of one instant.
    let (code, out, _) = run(
        body,
        &[
            "view",
            "--color",
            "never",
            "--since",
            "1700000000",
            "--until",
            "1700000000",
        ],
    );
    assert_eq!(
        out,
        "A 2023-11-14T22:13:20.000000Z\n\u{2514}\u{2500} info: x\n"
    );
    assert_eq!(code, Some(0));
}

/// Zero bytes at the start of a line with a record after them (a hole a crash left, then a
/// writer appending) are skipped alike by `view`, `view --follow` on a file or on standard
/// input, and `check`, which says so and checks the record: only `view --follow` on a file
/// skipped them, `view` and `--follow -` showed the record as "not a record", and `check`
/// said "not valid JSON: expected value at column 1".
#[test]
fn zeros_before_a_record_are_skipped_alike() {
    let body = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"before\"}\n\
\0\0\0\0\0{\"ts\":2,\"tid\":\"B\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"after zeros\"}\n\
\0\0\n";
    let (code, out, err) = run(body, &["view", "--color", "never"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "A 1970-01-01T00:00:01.000000Z\n\u{2514}\u{2500} info: before\n\
         ! line 2: 5 zero bytes skipped\n\
         B 1970-01-01T00:00:02.000000Z\n\u{2514}\u{2500} info: after zeros\n\
         ! line 3: 2 zero bytes skipped\n"
    );
    assert_eq!(code, Some(0));
    let (code, out, err) = run(body, &["check"]);
    assert_eq!(err, "");
    assert_eq!(
        out,
        "f.log:2: 5 zero bytes at the start of the line (a hole a crash left), skipped\n\
         f.log:3: 2 zero bytes at the start of the line (a hole a crash left), skipped\n\
         f.log: 3 lines, 2 tasks, 2 records (2 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(code, Some(1));
    let out = common::logxide_with_stdin(&["view", "--follow", "--color", "never", "-"], body);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "A info: before\n! line 2: 5 zero bytes skipped\nB info: after zeros\n! line 3: 2 zero bytes skipped\n"
    );
}

/// `--repair OUT` where OUT cannot be created (its directory does not exist, or OUT is a
/// directory) is a usage error before FILE is read: it was found only once the whole file
/// had been checked, after its report.
#[test]
fn repair_out_that_cannot_be_created_is_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.log"),
        b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"x\"}\n\0\0",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for (out, why) in [
        ("no/such/r.log", "its directory no/such does not exist"),
        ("f.log/r.log", "its directory f.log is not a directory"),
        ("d", "it is a directory"),
    ] {
        let o = logxide_in(dir.path(), &["check", "--repair", out, "f.log"]);
        assert_eq!(text(&o.stdout), "", "{out}");
        assert_eq!(
            text(&o.stderr),
            format!("error: --repair {out}: cannot create it: {why}\n\nUsage: logxide check [OPTIONS] <FILE>...\n\nFor more information, try '--help'.\n")
        );
        assert_eq!(o.status.code(), Some(2));
    }
}

/// `check --json` reports every file given: one that cannot be opened is in `files` with its
/// error (it was left out, and the object said `"clean":false` with no file saying why).
#[test]
fn check_json_names_a_file_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.log"),
        b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"x\"}\n",
    )
    .unwrap();
    let out = logxide_in(dir.path(), &["check", "--json", "f.log", "missing.log"]);
    assert_eq!(
        text(&out.stdout),
        "{\"files\":[\
         {\"file\":\"f.log\",\"lines\":1,\"tasks\":1,\"records\":{\"messages\":1,\"started\":0,\"succeeded\":0,\"failed\":0},\"incomplete_tasks\":0,\"torn_last_line\":null,\"nul_tail\":null,\"problem_count\":0,\"problems\":[],\"repair\":null,\"repair_error\":null,\"error\":null},\
         {\"file\":\"missing.log\",\"lines\":0,\"tasks\":0,\"records\":{\"messages\":0,\"started\":0,\"succeeded\":0,\"failed\":0},\"incomplete_tasks\":0,\"torn_last_line\":null,\"nul_tail\":null,\"problem_count\":0,\"problems\":[],\"repair\":null,\"repair_error\":null,\"error\":\"cannot open: No such file or directory (os error 2)\"}\
         ],\"problems\":0,\"clean\":false}\n"
    );
    assert_eq!(
        text(&out.stderr),
        "logxide check: missing.log: No such file or directory (os error 2)\n"
    );
    assert_eq!(out.status.code(), Some(2));
    // The text output is unchanged: the error on stderr, no summary line for the file.
    let out = logxide_in(dir.path(), &["check", "f.log", "missing.log"]);
    assert_eq!(
        text(&out.stdout),
        "f.log: 1 line, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `check --json` has one schema: every key of a file's report in every case, `null` when it
/// does not apply (`torn_last_line` and `nul_tail` were `null`, but `repair`,
/// `repair_error` and `error` were left out).
#[test]
fn check_json_has_every_key_in_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let rec = "{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"x\"}\n";
    std::fs::write(dir.path().join("f.log"), rec).unwrap();
    std::fs::write(dir.path().join("t.log"), format!("{rec}{{\"ts\"")).unwrap();
    let counts = "\"records\":{\"messages\":1,\"started\":0,\"succeeded\":0,\"failed\":0}";
    let out = logxide_in(dir.path(), &["check", "--json", "f.log"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "{{\"files\":[{{\"file\":\"f.log\",\"lines\":1,\"tasks\":1,{counts},\
             \"incomplete_tasks\":0,\"torn_last_line\":null,\"nul_tail\":null,\"problem_count\":0,\
             \"problems\":[],\"repair\":null,\"repair_error\":null,\"error\":null}}],\
             \"problems\":0,\"clean\":true}}\n"
        )
    );
    let out = logxide_in(
        dir.path(),
        &["check", "--json", "--repair", "r.log", "t.log"],
    );
    assert_eq!(
        text(&out.stdout),
        format!(
            "{{\"files\":[{{\"file\":\"t.log\",\"lines\":2,\"tasks\":1,{counts},\
             \"incomplete_tasks\":0,\"torn_last_line\":{{\"line\":2,\"offset\":51,\"bytes\":5}},\
             \"nul_tail\":null,\"problem_count\":1,\"problems\":[{{\"line\":2,\"message\":\
             \"torn last line: 5 bytes without a newline, not JSON\"}}],\"repair\":{{\"out\":\
             \"r.log\",\"bytes_written\":51,\"removed_nul_bytes\":0,\"removed_torn_line\":2,\
             \"added_newline\":false,\"removed_hole_bytes\":0}},\"repair_error\":null,\
             \"error\":null}}],\"problems\":1,\"clean\":false}}\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
}

/// `check --json --repair`: a repair refused or failed is in the report
/// (`"repair_error"`), not only on stderr.
#[test]
fn check_json_reports_a_repair_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(
        r#"{{"ts":1,"tid":"B","lvl":[1],"mt":"info","msg":"{}"}}"#,
        "x".repeat(100)
    );
    std::fs::write(dir.path().join("t.log"), long).unwrap();
    let out = logxide_in(
        dir.path(),
        &[
            "check",
            "--json",
            "--max-line",
            "64",
            "--repair",
            "r.log",
            "t.log",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["files"][0]["repair_error"],
        "the last line (line 1, 149 bytes) has no newline and is longer than --max-line (64 bytes): whether it is torn is not known, nothing written (raise --max-line to repair it)"
    );
    assert!(v["files"][0]["repair"].is_null(), "{v}");
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("r.log").exists());
}

/// A file whose name is not UTF-8 is read by `view` as by `check` (clap refused it: "invalid
/// UTF-8 was detected in one or more arguments"); its name is shown with U+FFFD.
#[cfg(unix)]
#[test]
fn view_reads_a_file_whose_name_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.log");
    std::fs::write(
        dir.path().join(name),
        b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"x\"}\nbad\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("g.log"), b"").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--color", "never"])
        .arg(name)
        .arg("g.log")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "A 1970-01-01T00:00:01.000000Z\n\u{2514}\u{2500} info: x\n\
         ! bad\u{fffd}.log: line 2: not a record: bad\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Runs `logxide ARGS…` with stderr a pipe nobody reads any more (`… 2>&1 | head -1` once
/// `head` is gone), `input` on stdin: exit status and stdout. The reading end is closed
/// before the input is given, so before anything reading `-` first can write to stderr.
fn run_with_stderr_gone(args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let mut child = spawn_piped(std::path::Path::new("."), args);
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (child.wait().unwrap().code(), out)
}

/// A message on stderr that cannot be written (stderr a closed pipe) is given up, not a
/// panic: `eprintln!` panicked, exit 101 and the output cut short. The exit status and
/// stdout are those of a stderr that works.
#[test]
fn a_closed_stderr_is_no_panic() {
    let rec = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"hi\"}\n";
    let missing = "/nonexistent/logxide-test.log";
    assert_eq!(
        run_with_stderr_gone(&["check", "-", missing], rec),
        (
            Some(2),
            "-: 1 line, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), \
             0 incomplete tasks, 0 problems\n"
                .to_owned()
        )
    );
    assert_eq!(
        run_with_stderr_gone(&["view", "--color", "never", "-", missing], rec),
        (
            Some(2),
            "A 1970-01-01T00:00:01.000000Z\n└─ info: hi\n".to_owned()
        )
    );
}

/// Of several FILEs, a file that cannot be opened is said so on stderr (exit 2), the others
/// are read (as one log).
#[test]
fn view_reads_the_files_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |tid: &str| format!("{{\"ts\":1,\"tid\":\"{tid}\",\"lvl\":[1],\"mt\":\"info\"}}\n");
    std::fs::write(dir.path().join("a.log"), rec("A")).unwrap();
    std::fs::write(dir.path().join("b.log"), rec("B")).unwrap();
    let out = logxide_in(
        dir.path(),
        &[
            "view",
            "--color",
            "never",
            "gone.log",
            "a.log",
            "gone2.log",
            "b.log",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "A 1970-01-01T00:00:01.000000Z\n└─ info\nB 1970-01-01T00:00:01.000000Z\n└─ info\n"
    );
    assert_eq!(
        text(&out.stderr),
        "logxide view: gone.log: No such file or directory (os error 2)\n\
         logxide view: gone2.log: No such file or directory (os error 2)\n"
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `--since`/`--until` take negative Unix seconds (before 1970) as they are: `--since -5`
/// was 'unexpected argument' with the tip `-- -5`, which would make it a FILE.
#[test]
fn negative_unix_seconds_are_times() {
    let body = b"{\"ts\":-3,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\"}\n\
                 {\"ts\":3,\"tid\":\"B\",\"lvl\":[1],\"mt\":\"info\"}\n";
    assert_eq!(
        run(body, &["view", "--since", "-5", "--until", "-1.5"]),
        (
            Some(0),
            "A 1969-12-31T23:59:57.000000Z\n└─ info\n".to_owned(),
            String::new()
        )
    );
}

/// `view`'s help says what its exit status 2 means: a usage error too (`--since` after
/// `--until`, `-` twice, a file twice, clap's), not only a file that cannot be read.
#[test]
fn view_help_names_every_exit_status() {
    let (code, _, _) = run(b"", &["view", "--since", "5", "--until", "4"]);
    assert_eq!(code, Some(2));
    let (code, help, _) = run(b"", &["view", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        help.contains(
            "Exit status: 0, or 2 on a usage error or when a file cannot be read; a file \
             unreadable part way"
        ),
        "{help}"
    );
}

/// The help of `view` and `check` as a new user reads it: `view` names the two layouts it
/// reads ("both layouts" named none); `--since`/`--until` say that a task is shown whole
/// (only with --follow are records picked); `check` says that only a task whose root action
/// has not ended is incomplete (an inner action without its end inside an ended one is a
/// problem), that a --repair that wrote nothing exits 2, and no line of either runs past the
/// others' width.
#[test]
fn view_and_check_help_say_what_they_do() {
    let (_, top, _) = run(b"", &["--help"]);
    assert!(
        top.contains("view   Show logxide files as task trees (logxide's and Eliot's layouts;"),
        "{top}"
    );
    let (code, view, _) = run(b"", &["view", "--help"]);
    assert_eq!(code, Some(0));
    for text in [
        "Only tasks with a record at or after TIME, each shown whole",
        "with --follow, only the records at or after TIME",
        "Only tasks with a record at or before TIME, each shown whole",
        "with --follow, only the records at or before TIME",
    ] {
        assert!(view.contains(text), "{text}: {view}");
    }
    let (code, check, _) = run(b"", &["check", "--help"]);
    assert_eq!(code, Some(0));
    for text in [
        "A task whose root action has no end record (the file ends first) is counted as incomplete,\n\
         not as a problem",
        "Exit status: 0 clean, 1 problems (also when --repair wrote a clean copy), 2 usage errors,\n\
         unreadable files or a --repair that wrote nothing.",
    ] {
        assert!(check.contains(text), "{text}: {check}");
    }
    for help in [&view, &check] {
        let after = help.split("Print version").nth(1).unwrap_or("");
        for line in after.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}

/// A standard input that cannot be read (here a directory) is named in the error with
/// `--follow` as without it: `logxide view: Is a directory (os error 21)` said neither what
/// could not be read nor how far, as the output's own errors are said.
#[cfg(unix)]
#[test]
fn follow_names_a_stdin_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    for follow in [false, true] {
        let mut args = vec!["view", "-"];
        if follow {
            args.insert(1, "--follow");
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logxide"))
            .args(&args)
            .stdin(std::fs::File::open(dir.path()).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "logxide view: -: read error after 0 lines (0 bytes): Is a directory (os error 21)\n",
            "{args:?}"
        );
    }
}

/// `check --repair` removes what `check` reports of the zeros before a record in the middle
/// of a file (a hole a crash left): the zeros, and a line that holds nothing else. It printed
/// "nothing to remove" and copied them, and `check` of the copy reported them again.
#[test]
fn repair_removes_the_zeros_check_reports_before_records() {
    let a = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"before\"}\n";
    let b = b"{\"ts\":2,\"tid\":\"B\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"after zeros\"}\n";
    let c = b"{\"ts\":3,\"tid\":\"C\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"last\"}\n";
    let body = [&a[..], b"\0\0\0\0\0", b, b"\0\0\n\0 \n", c].concat();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.log"), &body).unwrap();
    let out = logxide_in(dir.path(), &["check", "--repair", "r.log", "f.log"]);
    assert_eq!(text(&out.stderr), "");
    let kept = a.len() + b.len() + c.len();
    assert_eq!(
        text(&out.stdout),
        format!(
            "f.log:2: 5 zero bytes at the start of the line (a hole a crash left), skipped\n\
             f.log:3: 2 zero bytes at the start of the line (a hole a crash left), skipped\n\
             f.log:4: 1 zero bytes at the start of the line (a hole a crash left), skipped\n\
             f.log: 5 lines, 3 tasks, 3 records (3 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 3 problems\n\
             f.log: repaired copy written to r.log ({kept} bytes): removed the zero bytes at the start of 3 lines (11 bytes, with the 2 lines that held nothing else)\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read(dir.path().join("r.log")).unwrap(),
        [&a[..], b, c].concat()
    );
    let out = logxide_in(dir.path(), &["check", "r.log"]);
    assert_eq!(
        text(&out.stdout),
        "r.log: 3 lines, 3 tasks, 3 records (3 messages, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"
    );
    assert_eq!(out.status.code(), Some(0));
    let out = logxide_in(
        dir.path(),
        &["check", "--json", "--repair", "j.log", "f.log"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["files"][0]["repair"],
        serde_json::json!({"out": "j.log", "bytes_written": kept, "removed_nul_bytes": 0,
            "removed_torn_line": null, "added_newline": false, "removed_hole_bytes": 11})
    ); // Zeros before a torn last line: the copy ends before that line, its zeros with it.
    let torn = [&a[..], b"\0\0\0{\"ts\":4,\"ti"].concat();
    std::fs::write(dir.path().join("t.log"), &torn).unwrap();
    let out = logxide_in(dir.path(), &["check", "--repair", "rt.log", "t.log"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "t.log:2: 3 zero bytes at the start of the line (a hole a crash left), skipped\n\
             t.log:2: torn last line: 14 bytes without a newline, not JSON\n\
             t.log: 2 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n\
             t.log: repaired copy written to rt.log ({} bytes): removed the torn last line 2 (14 bytes)\n",
            a.len()
        )
    );
    assert_eq!(std::fs::read(dir.path().join("rt.log")).unwrap(), a);
}

/// A last line of zeros then whitespace without a newline is a hole that held nothing else,
/// as it is with a newline: no record was torn, and nothing follows the zeros to be one.
/// `check` reported it as a torn last line (and its zeros as skipped before a record), while
/// the repaired copy, without it, was clean.
#[test]
fn a_last_line_of_zeros_and_spaces_is_a_hole_not_a_torn_line() {
    let a = b"{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"before\"}\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.log"), [&a[..], b"\0\0\0   "].concat()).unwrap();
    let out = logxide_in(dir.path(), &["check", "--repair", "r.log", "f.log"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        format!(
            "f.log:2: 3 zero bytes at the start of the line (a hole a crash left), skipped\n\
             f.log: 2 lines, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 1 problem\n\
             f.log: repaired copy written to r.log ({} bytes): removed the zero bytes at the start of 1 line (6 bytes, with the 1 line that held nothing else)\n",
            a.len()
        )
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.path().join("r.log")).unwrap(), a);
    let out = logxide_in(dir.path(), &["check", "--json", "f.log"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["torn_last_line"], serde_json::Value::Null);
    assert_eq!(v["files"][0]["problem_count"], 1);
}

/// A FIFO (and what a shell's `<(cmd)` gives, a pipe under /dev/fd) is read as a stream:
/// `view`, `check` and `view --follow` (which reads it to its end, as standard input) read
/// it; they failed with "Illegal seek (os error 29)" (the compression test seeked back after
/// the first bytes). `--repair`, which reads FILE again to copy it, refuses one before
/// opening it (it waited for a writer for ever).
#[cfg(unix)]
#[test]
fn a_fifo_is_read_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.log");
    match std::process::Command::new("mkfifo").arg(&fifo).status() {
        Ok(s) if s.success() => {}
        _ => {
            println!("mkfifo is not available: skipping");
            return;
        }
    }
    let body = "{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"through a pipe\"}\n";
    let feed = || {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, body).unwrap())
    };
    let cases: [(&[&str], &str); 3] = [
        (
            &["view", "--color", "never", "p.log"],
            "A 1970-01-01T00:00:01.000000Z\n\u{2514}\u{2500} info: through a pipe\n",
        ),
        (
            &["check", "p.log"],
            "p.log: 1 line, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n",
        ),
        (
            &["view", "--follow", "--color", "never", "p.log"],
            "A info: through a pipe\n",
        ),
    ];
    for (args, expected) in cases {
        let writer = feed();
        let out = logxide_in(dir.path(), args);
        writer.join().unwrap();
        assert_eq!(text(&out.stderr), "", "{args:?}");
        assert_eq!(text(&out.stdout), expected, "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let out = logxide_in(dir.path(), &["check", "--repair", "r.log", "p.log"]);
    assert_eq!(
        text(&out.stderr),
        "error: --repair needs a regular file: p.log is not one (it reads FILE again to copy it)\n\n\
         Usage: logxide check [OPTIONS] <FILE>...\n\nFor more information, try '--help'.\n"
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("r.log").exists());
    // Followed with other files it would hold them up: refused (as `-` is), not opened.
    std::fs::write(dir.path().join("f.log"), body).unwrap();
    let out = logxide_in(dir.path(), &["view", "--follow", "f.log", "p.log"]);
    assert_eq!(
        text(&out.stderr),
        "logxide view: with --follow, p.log (not a regular file: a stream, read once) must be the only input\n"
    );
    assert_eq!(out.status.code(), Some(2));
}
