//! `logxide view` streams its input (bounded memory), and a corrupt or truncated compressed
//! file is an error that says what is wrong and how much was read — after the records read
//! before it are shown (`view`) or checked (`check`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{logxide_in, text};

/// `n` tasks: an action with two messages, every fifth a lone message.
fn log_lines(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let ts = 1_700_000_000 + i;
        if i % 5 == 0 {
            writeln!(
                out,
                r#"{{"ts":{ts},"tid":"G.{i}","lvl":[1],"mt":"info","msg":"lone {i} {:x}"}}"#,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
            .unwrap();
            continue;
        }
        writeln!(
            out,
            r#"{{"ts":{ts},"tid":"G.{i}","lvl":[1],"at":"job","st":"started","n":{i}}}"#
        )
        .unwrap();
        writeln!(
            out,
            r#"{{"ts":{ts},"tid":"G.{i}","lvl":[2],"mt":"info","msg":"{:x}"}}"#,
            i.wrapping_mul(0x2545_f491_4f6c_dd1d)
        )
        .unwrap();
        writeln!(
            out,
            r#"{{"ts":{ts},"tid":"G.{i}","lvl":[3],"at":"job","st":"succeeded","dur":0.5}}"#
        )
        .unwrap();
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// What a decoder gives of `file` before its error: the bytes of the complete lines.
fn readable_prefix(file: &[u8]) -> Vec<u8> {
    let mut d = flate2::read::MultiGzDecoder::new(file);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match d.read(&mut buf) {
            Ok(0) => panic!("the file is not damaged"),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let end = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    out.truncate(end);
    out
}

/// A gzip log cut in the middle of its compressed data: `view` shows the tasks of every
/// complete line it could read, then says the gzip data is truncated, with how many lines
/// and bytes it read, and exits 2 (it used to show nothing: it read everything first).
#[test]
fn truncated_gzip_view_shows_what_it_read_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let plain = log_lines(20_000);
    let gz = gzip(&plain);
    let cut = &gz[..gz.len() / 2];
    std::fs::write(dir.path().join("cut.log.gz"), cut).unwrap();
    let prefix = readable_prefix(cut);
    assert!(prefix.len() > 100_000 && prefix.len() < plain.len());
    std::fs::write(dir.path().join("prefix.log"), &prefix).unwrap();
    let lines = prefix.iter().filter(|&&b| b == b'\n').count();

    let out = logxide_in(dir.path(), &["view", "--color", "never", "cut.log.gz"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "logxide view: cut.log.gz: the gzip data is truncated (incomplete deflate stream): \
             {lines} lines ({} bytes) were read before it\n",
            prefix.len()
        )
    );
    let expected = logxide_in(dir.path(), &["view", "--color", "never", "prefix.log"]);
    assert_eq!(expected.status.code(), Some(0));
    assert!(!expected.stdout.is_empty());
    assert!(out.stdout == expected.stdout, "the output differs");
}

/// A gzip log whose checksum does not match: every line was decompressed and is shown, but
/// the file is corrupt: said so, exit 2.
#[test]
fn gzip_with_a_bad_checksum_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let plain = log_lines(500);
    let mut gz = gzip(&plain);
    let crc = gz.len() - 8;
    gz[crc] ^= 0xff;
    std::fs::write(dir.path().join("crc.log.gz"), &gz).unwrap();
    std::fs::write(dir.path().join("plain.log"), &plain).unwrap();
    let lines = plain.iter().filter(|&&b| b == b'\n').count();
    let message = format!(
        "the gzip data is corrupt (corrupt gzip stream does not have a matching checksum): \
         {lines} lines ({} bytes) were read before it\n",
        plain.len()
    );

    let out = logxide_in(dir.path(), &["view", "--color", "never", "crc.log.gz"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("logxide view: crc.log.gz: {message}")
    );
    let expected = logxide_in(dir.path(), &["view", "--color", "never", "plain.log"]);
    assert_eq!(text(&out.stdout), text(&expected.stdout));

    let out = logxide_in(dir.path(), &["check", "crc.log.gz"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("logxide check: crc.log.gz: {message}")
    );
    assert_eq!(
        text(&out.stdout),
        format!(
            "crc.log.gz: {lines} lines, 500 tasks, {lines} records (500 messages, 400 started, \
             400 succeeded, 0 failed), 0 incomplete tasks, 0 problems, then a read error: the \
             rest of the file could not be read\n"
        )
    );
}

/// Zero bytes after the gzip data (a preallocated file, a tool padding to a block) are no
/// corruption: gzip ignores them (`gzip -d` is silent and exits 0), and so do `view` and
/// `check`, after one member or several (the data of a gzip file ends with its size, which
/// may end in zero bytes itself: the zeros after the data are the ones ignored). Other bytes
/// after the zeros still make the file corrupt.
#[test]
fn zero_bytes_after_gzip_data_are_ignored_like_gzip() {
    let dir = tempfile::tempdir().unwrap();
    // 256 bytes of lines: the size at the end of the member is 00 01 00 00.
    let mut plain = log_lines(1);
    let cut = plain.len();
    let head = r#"{"ts":1700000001,"tid":"Z.1","lvl":[1],"mt":"info","msg":""#;
    let pad = 256 - cut - head.len() - "\"}\n".len();
    writeln!(plain, "{head}{}\"}}", "x".repeat(pad)).unwrap();
    assert_eq!(plain.len(), 256);
    let mut padded = gzip(&plain);
    assert_eq!(padded[padded.len() - 4..], [0, 1, 0, 0]);
    padded.extend_from_slice(&[0; 4096]);
    std::fs::write(dir.path().join("padded.log.gz"), &padded).unwrap();
    let mut two = gzip(&plain[..cut]);
    two.extend_from_slice(&gzip(&plain[cut..]));
    two.extend_from_slice(&[0; 3]);
    std::fs::write(dir.path().join("two.log.gz"), &two).unwrap();
    std::fs::write(dir.path().join("plain.log"), &plain).unwrap();
    let view = |f: &str| logxide_in(dir.path(), &["view", "--color", "never", f]);
    let check = |f: &str| logxide_in(dir.path(), &["check", f]);
    let (v, c) = (view("plain.log"), check("plain.log"));
    assert_eq!(c.status.code(), Some(0), "{}", text(&c.stdout));
    for f in ["padded.log.gz", "two.log.gz"] {
        let out = view(f);
        assert_eq!(
            (out.status.code(), text(&out.stderr)),
            (Some(0), String::new()),
            "{f}"
        );
        assert_eq!(text(&out.stdout), text(&v.stdout), "{f}");
        let out = check(f);
        assert_eq!(
            (out.status.code(), text(&out.stderr)),
            (Some(0), String::new()),
            "{f}"
        );
        assert_eq!(
            text(&out.stdout),
            text(&c.stdout).replace("plain.log", f),
            "{f}"
        );
    }
    // Zeros, then something else: corrupt, as gzip says ("trailing garbage").
    padded.extend_from_slice(b"x");
    std::fs::write(dir.path().join("garbage.log.gz"), &padded).unwrap();
    let out = check("garbage.log.gz");
    assert_eq!(out.status.code(), Some(2));
    let lines = plain.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        text(&out.stderr),
        format!(
            "logxide check: garbage.log.gz: the gzip data is corrupt (4096 zero bytes, then \
             other bytes after the gzip data): {lines} lines (256 bytes) were read before it\n"
        )
    );
}

/// `check` on a truncated gzip log: the report of the lines it read (with the task cut in
/// the middle counted incomplete), the error on stderr and in the JSON report, exit 2 — not
/// only an error with nothing checked.
#[test]
fn truncated_gzip_check_reports_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip(&log_lines(20_000));
    let cut = &gz[..gz.len() / 2];
    std::fs::write(dir.path().join("cut.log.gz"), cut).unwrap();
    let prefix = readable_prefix(cut);
    std::fs::write(dir.path().join("prefix.log"), &prefix).unwrap();
    let lines = prefix.iter().filter(|&&b| b == b'\n').count();
    let message = format!(
        "the gzip data is truncated (incomplete deflate stream): {lines} lines ({} bytes) were \
         read before it",
        prefix.len()
    );

    let expected = text(&logxide_in(dir.path(), &["check", "prefix.log"]).stdout);
    let out = logxide_in(dir.path(), &["check", "cut.log.gz"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("logxide check: cut.log.gz: {message}\n")
    );
    assert_eq!(
        text(&out.stdout),
        expected.replace("prefix.log:", "cut.log.gz:").replace(
            " problems\n",
            " problems, then a read error: the rest of the file could not be read\n"
        )
    );

    let out = logxide_in(dir.path(), &["check", "--json", "cut.log.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["error"], message.as_str());
    assert_eq!(v["files"][0]["lines"], lines as u64);
    assert_eq!(v["clean"], false);
}

/// `view` prints tasks while it reads: with a small `--max-buffer`, the first tasks appear
/// while standard input is still open (it used to read everything first).
#[test]
fn view_prints_tasks_before_the_input_ends() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(["view", "--color", "never", "--max-buffer", "4K", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&log_lines(400)).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no output while the input is open");
        if let Ok(line) = rx.recv_timeout(left) {
            break line;
        }
    };
    assert_eq!(first, "G.0 2023-11-14T22:13:20.000000Z");
    drop(stdin);
    let mut rest: Vec<String> = rx.iter().collect();
    rest.insert(0, first);
    assert!(child.wait().unwrap().success());
    // 80 lone messages (2 lines each), 320 tasks of 4 lines.
    assert_eq!(rest.len(), 80 * 2 + 320 * 4);
}

/// `--max-buffer` takes a size, and says what it accepts.
#[test]
fn max_buffer_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), log_lines(3)).unwrap();
    let out = logxide_in(dir.path(), &["view", "--max-buffer", "1x", "a.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "invalid size \"1x\": expected a positive number of bytes, or with K, M or G (like 64K, 32M, 1G)"
    ));
    assert!(out.stdout.is_empty());
    let a = logxide_in(dir.path(), &["view", "--max-buffer", "64K", "a.log"]);
    let b = logxide_in(dir.path(), &["view", "a.log"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(text(&a.stdout), text(&b.stdout));
}
