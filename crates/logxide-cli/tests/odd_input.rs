//! `view` and `check` on odd input: extreme values, line endings, bytes that are not text.

use std::path::Path;
use std::process::{Command, Output};

fn logxide_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run logxide")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

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
        "f.log:2: gap in the task levels of task A: [2] to [18446744073709551614] missing before [18446744073709551615]\n\
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
         f.log:3: gap in the task levels of task A: [2] to [18446744073709551613] missing before [18446744073709551614]\n\
         f.log: 3 lines, 1 task, 3 records (1 message, 1 started, 1 succeeded, 0 failed), 0 incomplete tasks, 2 problems\n"
    );
    assert_eq!(code, Some(1));
}
