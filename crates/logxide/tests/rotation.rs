//! Tests of the rotating file sink: size and time rotation (with an injected clock),
//! retention, gzip/zstd compression, crash leftovers, the logger's options, and the writer
//! engine with concurrent producers.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use logxide::sink::rotate::{parse_size, rotated_files, ManualClock};
use logxide::sink::{
    Batch, Compression, FileOptions, IoStrategy, OpenMode, Period, RotateOptions, RotatingFile,
    Sink,
};
use logxide::writer::{Mode, Policy, Writer};

/// 2024-03-01T12:00:00Z.
const T0: u64 = 1_709_294_400;

/// A batch that owns its bytes.
struct Owned {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Owned {
    fn new<S: AsRef<str>>(records: &[S]) -> Self {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for r in records {
            bytes.extend_from_slice(r.as_ref().as_bytes());
            bytes.push(b'\n');
            ends.push(bytes.len());
        }
        Owned { bytes, ends }
    }

    fn batch(&self) -> Batch<'_> {
        Batch::new(&self.bytes, &self.ends)
    }
}

fn write(sink: &mut RotatingFile, records: &[&str]) {
    sink.write_batch(&Owned::new(records).batch()).unwrap();
}

fn read_any(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap();
    let name = path.to_str().unwrap();
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if name.ends_with(".zst") {
        zstd::stream::decode_all(&raw[..]).unwrap()
    } else {
        raw
    }
}

/// Rotated files oldest → newest, then the active file.
fn all_files(path: &Path) -> Vec<PathBuf> {
    let mut files = rotated_files(path).unwrap();
    files.push(path.to_owned());
    files
}

/// The contents of the rotated files, oldest first, then of the active one.
fn all_contents(path: &Path) -> Vec<Vec<u8>> {
    all_files(path)
        .iter()
        .map(|f| fs::read(f).unwrap())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn clocked(clock: &Arc<ManualClock>) -> RotateOptions {
    RotateOptions::new().clock(clock.clone())
}

#[test]
fn size_rotation_across_many_batches_keeps_every_record_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let limit = 200u64;
    let mut sink = clocked(&clock).max_bytes(limit).open(&path).unwrap();
    let mut expected = Vec::new();
    let mut n = 0;
    for b in 0..200 {
        let recs: Vec<String> = (0..(b % 7 + 1))
            .map(|_| {
                n += 1;
                format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(n % 30))
            })
            .collect();
        let owned = Owned::new(&recs);
        expected.extend_from_slice(&owned.bytes);
        sink.write_batch(&owned.batch()).unwrap();
        if b % 50 == 0 {
            clock.advance(Duration::from_millis(700));
        }
    }
    sink.close().unwrap();
    assert!(sink.rotations() > 10);
    let files = all_files(&path);
    assert_eq!(files.len() as u64, sink.rotations() + 1);
    let mut got = Vec::new();
    for f in &files {
        let bytes = fs::read(f).unwrap();
        assert!(
            bytes.len() as u64 <= limit,
            "{} has {}",
            f.display(),
            bytes.len()
        );
        assert!(bytes.ends_with(b"\n"));
        got.extend_from_slice(&bytes);
    }
    assert_eq!(got, expected);
    // Several rotations within one second got counters.
    assert!(names(dir.path()).iter().any(|n| n.ends_with(".1.log")));
}

#[test]
fn a_batch_crossing_the_limit_is_split_at_a_record_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(10).open(&path).unwrap();
    write(&mut sink, &["aaaa"]); // 5 bytes
    write(&mut sink, &["bbbb", "cccc", "dd"]); // 5 fits, then 5 + 3
    sink.close().unwrap();
    let rotated = rotated_files(&path).unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        rotated[0].file_name().unwrap().to_str().unwrap(),
        "app.20240301T120000.log"
    );
    assert_eq!(fs::read(&rotated[0]).unwrap(), b"aaaa\nbbbb\n");
    assert_eq!(fs::read(&path).unwrap(), b"cccc\ndd\n");
}

#[test]
fn a_record_larger_than_the_limit_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(8).open(&path).unwrap();
    let big = "y".repeat(20);
    write(&mut sink, &["a", &big, "b"]);
    write(&mut sink, &[&big]);
    sink.close().unwrap();
    let contents = all_contents(&path);
    let big_line = format!("{big}\n").into_bytes();
    assert_eq!(
        contents,
        vec![b"a\n".to_vec(), big_line.clone(), b"b\n".to_vec(), big_line]
    );
}

#[test]
fn time_rotation_at_minute_hour_and_day_boundaries() {
    for (period, step, first_name) in [
        (Period::Minute, 60, "app.20240301T120100.log"),
        (Period::Hour, 3600, "app.20240301T130000.log"),
        (Period::Day, 86_400, "app.20240302T000000.log"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        // 12:00:30 on 2024-03-01: boundaries are at whole minutes, hours and UTC days.
        let start = T0 + 30;
        let clock = ManualClock::at(start);
        let mut sink = clocked(&clock).every(period).open(&path).unwrap();
        write(&mut sink, &["one"]);
        let next = (start / step + 1) * step;
        clock.set(next - 1);
        write(&mut sink, &["two"]); // same period
        assert_eq!(sink.rotations(), 0, "{period}");
        clock.set(next);
        write(&mut sink, &["three", "four"]); // first batch of the next period
        assert_eq!(sink.rotations(), 1, "{period}");
        clock.set(next + 3 * step + 5);
        write(&mut sink, &["five"]);
        sink.close().unwrap();
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated[0].file_name().unwrap(), first_name, "{period}");
        let contents = all_contents(&path);
        assert_eq!(
            contents,
            vec![
                b"one\ntwo\n".to_vec(),
                b"three\nfour\n".to_vec(),
                b"five\n".to_vec()
            ],
            "{period}"
        );
    }
}

#[test]
fn an_empty_file_is_not_rotated_at_a_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).every(Period::Minute).open(&path).unwrap();
    clock.advance(Duration::from_secs(120));
    write(&mut sink, &["a"]);
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 0);
    assert!(rotated_files(&path).unwrap().is_empty());
}

#[test]
fn size_and_time_rotation_combined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .max_bytes(6)
        .every(Period::Hour)
        .open(&path)
        .unwrap();
    write(&mut sink, &["a1", "a2", "a3"]); // 3+3 fit, a3 rotates by size
    clock.set(T0 + 3600);
    write(&mut sink, &["b1"]); // hour boundary: a3 rotated by time
    write(&mut sink, &["b2", "b3"]); // b3 by size
    sink.close().unwrap();
    let files = all_files(&path);
    let contents: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(
        contents,
        vec![
            b"a1\na2\n".to_vec(),
            b"a3\n".to_vec(),
            b"b1\nb2\n".to_vec(),
            b"b3\n".to_vec()
        ]
    );
    let n: Vec<&str> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        n,
        [
            "app.20240301T120000.log",
            "app.20240301T130000.log",
            "app.20240301T130000.1.log",
            "app.log"
        ]
    );
}

#[test]
fn retention_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(2).keep(3).open(&path).unwrap();
    for i in 0..10 {
        clock.advance(Duration::from_secs(1));
        write(&mut sink, &[&i.to_string()]);
    }
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 9);
    let contents = all_contents(&path);
    assert_eq!(
        contents,
        vec![
            b"6\n".to_vec(),
            b"7\n".to_vec(),
            b"8\n".to_vec(),
            b"9\n".to_vec()
        ]
    );
}

#[test]
fn retention_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .every(Period::Hour)
        .max_age(Duration::from_secs(3 * 3600 + 60))
        .open(&path)
        .unwrap();
    for h in 0..6 {
        clock.set(T0 + h * 3600);
        write(&mut sink, &[&format!("h{h}")]);
    }
    sink.close().unwrap();
    // Rotations at 13:00 .. 17:00; at 17:00 those older than 3h01 (13:00) are gone.
    let n: Vec<String> = all_files(&path)
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        n,
        [
            "app.20240301T140000.log",
            "app.20240301T150000.log",
            "app.20240301T160000.log",
            "app.20240301T170000.log",
            "app.log"
        ]
    );
    assert_eq!(fs::read(&path).unwrap(), b"h5\n");
    assert_eq!(
        fs::read(dir.path().join("app.20240301T140000.log")).unwrap(),
        b"h1\n"
    );
}

fn compressed_round_trip(compression: Compression, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .max_bytes(4096)
        .compress(compression)
        .open(&path)
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..500 {
        let owned = Owned::new(&[format!(
            "{{\"i\":{i},\"msg\":\"compress me {}\"}}",
            i * 7919
        )]);
        expected.extend_from_slice(&owned.bytes);
        sink.write_batch(&owned.batch()).unwrap();
    }
    assert!(sink.wait_idle(Duration::from_secs(30)));
    sink.close().unwrap();
    assert_eq!(sink.background_errors().0, 0);
    let rotated = rotated_files(&path).unwrap();
    assert!(rotated.len() >= 3);
    let mut got = Vec::new();
    for f in &rotated {
        assert!(
            f.to_str().unwrap().ends_with(&format!(".log.{ext}")),
            "{}",
            f.display()
        );
        got.extend(read_any(f));
    }
    got.extend(fs::read(&path).unwrap());
    assert_eq!(got, expected);
    // Nothing but the compressed files and the active file.
    assert_eq!(names(dir.path()).len(), rotated.len() + 1);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".tmp")));
}

#[test]
fn gzip_compression_round_trips_exactly() {
    compressed_round_trip(Compression::Gzip, "gz");
}

#[test]
fn zstd_compression_round_trips_exactly() {
    compressed_round_trip(Compression::Zstd, "zst");
}

#[test]
fn crash_leftovers_are_cleaned_and_compression_resumes_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let d = dir.path();
    fs::write(&path, "active\n").unwrap();
    // A rotated file whose compression never started, and one whose compression was cut.
    fs::write(d.join("app.20240301T110000.log"), "r1\n").unwrap();
    fs::write(d.join("app.20240301T115000.log"), "r2\n").unwrap();
    fs::write(d.join("app.20240301T115000.log.gz.tmp"), "half").unwrap();
    fs::write(d.join("app.20240301T100000.log.zst.tmp"), "half").unwrap();
    fs::write(d.join("unrelated.tmp"), "keep me").unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .compress(Compression::Gzip)
        .file(FileOptions::new().open_mode(OpenMode::Append))
        .open(&path)
        .unwrap();
    assert!(sink.wait_idle(Duration::from_secs(30)));
    write(&mut sink, &["more"]);
    sink.close().unwrap();
    assert_eq!(
        names(d),
        [
            "app.20240301T110000.log.gz",
            "app.20240301T115000.log.gz",
            "app.log",
            "unrelated.tmp"
        ]
    );
    assert_eq!(read_any(&d.join("app.20240301T110000.log.gz")), b"r1\n");
    assert_eq!(read_any(&d.join("app.20240301T115000.log.gz")), b"r2\n");
    assert_eq!(fs::read(&path).unwrap(), b"active\nmore\n");
}

#[test]
fn mmap_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let err = RotateOptions::new()
        .max_bytes(100)
        .file(FileOptions::new().strategy(IoStrategy::Mmap))
        .open(&path)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`mmap`"), "{err}");
    assert!(err.to_string().contains("writer_type"), "{err}");
    assert!(!path.exists());
}

#[test]
fn a_failed_rotation_keeps_every_record_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    // Not following the path: the deleted file stays the active one (with the option on, a
    // new file at the path would be followed, see
    // a_file_moved_by_another_tool_is_followed_before_the_size_decision).
    let mut sink = clocked(&clock)
        .max_bytes(4)
        .file(FileOptions::new().reopen_if_moved(false))
        .open(&path)
        .unwrap();
    write(&mut sink, &["a"]);
    // Without the directory entry, the rename fails (NotFound).
    fs::remove_file(&path).unwrap();
    let owned = Owned::new(&["bb", "cc"]);
    let err = sink.write_batch(&owned.batch()).unwrap_err();
    assert_eq!(err.written, 2, "every record went into the current file");
    assert_eq!(err.error.kind(), std::io::ErrorKind::NotFound);
    assert!(err.error.to_string().contains("cannot rotate"), "{err}");
    assert_eq!(sink.rotation_failures(), 1);
    assert_eq!(sink.rotations(), 0);
    // The records went on into the current (deleted) file.
    assert!(!path.exists());
    assert_eq!(sink.len(), 8);
    assert!(rotated_files(&path).unwrap().is_empty());
}

#[test]
fn size_parser() {
    assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
    assert_eq!(parse_size("512KiB").unwrap(), 524_288);
    assert_eq!(parse_size(" 2 GiB ").unwrap(), 2 << 30);
    assert_eq!(parse_size("1gb").unwrap(), 1_000_000_000);
    assert_eq!(parse_size("7B").unwrap(), 7);
    assert_eq!(parse_size("3 kb").unwrap(), 3000);
    for bad in ["", "MB", "1.5MB", "-1", "10 TB"] {
        let err = parse_size(bad).unwrap_err().to_string();
        assert!(err.contains("KiB"), "{bad}: {err}");
    }
    // Too large: the error says so, with the bound.
    for bad in ["99999999999999999999", "20000000000GiB"] {
        let err = parse_size(bad).unwrap_err().to_string();
        assert!(
            err.ends_with(": too large, at most 18446744073709551615 bytes"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn logger_options_parse_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = logxide::Logger::builder()
        .use_env(false)
        .target(&path)
        .set("rotate_size", "1KiB")
        .unwrap()
        .set("rotate_every", "day")
        .unwrap()
        .set("keep", "2")
        .unwrap()
        .set("max_age", "7d")
        .unwrap()
        .set("compress", "zstd")
        .unwrap()
        .set("writer_type", "line")
        .unwrap()
        .build()
        .unwrap();
    for i in 0..200 {
        log.info(&format!("message {i}"));
    }
    log.shutdown(None);
    let rotated = rotated_files(&path).unwrap();
    assert_eq!(rotated.len(), 2, "{:?}", names(dir.path()));
    let mut text = Vec::new();
    for f in &all_files(&path) {
        let bytes = read_any(f);
        assert!(bytes.len() <= 1024);
        text.extend(bytes);
    }
    let text = String::from_utf8(text).unwrap();
    assert!(text.ends_with("\"msg\":\"message 199\"}\n"), "{text}");
}

/// `keep` and `max_age` take their documented defaults by name, `all` and `forever`, which
/// also undo an earlier count or age (they were refused); a bad value says so.
#[test]
fn keep_all_and_max_age_forever_are_the_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = logxide::Logger::builder()
        .use_env(false)
        .target(&path)
        .set("rotate_size", "1KiB")
        .unwrap()
        .set("keep", "1")
        .unwrap()
        .set("keep", "ALL")
        .unwrap()
        .set("max_age", "1ms")
        .unwrap()
        .set("max_age", " forever ")
        .unwrap()
        .set("writer_type", "line")
        .unwrap()
        .build()
        .unwrap();
    for i in 0..200 {
        log.info(&format!("message {i}"));
        if i % 20 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    log.shutdown(None);
    // Nothing deleted: every record is in the files, the first one too.
    let mut text = Vec::new();
    for f in &all_files(&path) {
        text.extend(read_any(f));
    }
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), 200, "{:?}", names(dir.path()));
    assert!(rotated_files(&path).unwrap().len() > 5);
    let b = || logxide::Logger::builder().use_env(false);
    let e = b().set("keep", "some").unwrap_err().to_string();
    assert!(
        e.contains("`keep`") && e.ends_with(", or all (no limit)"),
        "{e}"
    );
    let e = b().set("max_age", "ever").unwrap_err().to_string();
    assert!(
        e.contains("`max_age`") && e.ends_with(", or forever (no limit)"),
        "{e}"
    );
}

#[test]
fn logger_option_errors_touch_nothing() {
    let b = || logxide::Logger::builder().use_env(false);
    let msg =
        |r: Result<logxide::LoggerBuilder, logxide::logger::InitError>| r.unwrap_err().to_string();
    let e = msg(b().set("rotate_size", "lots"));
    assert!(e.contains("`rotate_size`") && e.contains("KiB"), "{e}");
    let e = msg(b().set("rotate_size", "0"));
    assert!(e.contains("greater than zero"), "{e}");
    let e = msg(b().set("rotate_every", "week"));
    assert!(
        e.contains("`rotate_every`") && e.contains("minute, hour, day"),
        "{e}"
    );
    let e = msg(b().set("keep", "-1"));
    assert!(e.contains("`keep`"), "{e}");
    let e = msg(b().set("max_age", "old"));
    assert!(e.contains("`max_age`"), "{e}");
    let e = msg(b().set("compress", "lz4"));
    assert!(
        e.contains("`compress`") && e.contains("none, gzip, zstd"),
        "{e}"
    );

    // Invalid values at build: the existing file is not truncated, removed or rotated.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, "precious\n").unwrap();
    let before = names(dir.path());
    assert!(b()
        .target(&path)
        .clean(true)
        .set("rotate_size", "10 XB")
        .is_err());
    let err = b()
        .target(&path)
        .clean(true)
        .rotate(RotateOptions::new().max_bytes(10))
        .writer_type(IoStrategy::Mmap)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`writer_type`") && err.contains("mmap"),
        "{err}"
    );
    let err = b()
        .target(&path)
        .clean(true)
        .rotate(RotateOptions::new().max_bytes(0))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("greater than zero"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"precious\n");
    assert_eq!(names(dir.path()), before);
}

#[test]
fn writer_with_four_producers_loses_nothing_across_rotations() {
    const PRODUCERS: usize = 4;
    const PER: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let limit = 64 * 1024;
    let sink = RotateOptions::new()
        .max_bytes(limit)
        .file(
            FileOptions::new()
                .strategy(IoStrategy::Block)
                .block_size(8192),
        )
        .open(&path)
        .unwrap();
    let writer = Writer::builder()
        .capacity(1024)
        .batch_size(64)
        .policy(Policy::Block)
        .mode(Mode::Trigger)
        .sink(sink)
        .build()
        .unwrap();
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let h = writer.handle();
            s.spawn(move || {
                for i in 0..PER {
                    h.enqueue(common::line(p, i).as_bytes()).unwrap();
                }
            });
        }
    });
    let m = writer.shutdown(None).metrics;
    assert_eq!(m.written, (PRODUCERS * PER) as u64);
    assert_eq!(m.failed, 0);
    let files = all_files(&path);
    assert!(files.len() > 20, "{}", files.len());
    let mut next = [0usize; PRODUCERS];
    for f in &files {
        let bytes = fs::read(f).unwrap();
        assert!(bytes.len() as u64 <= limit);
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let p = v["p"].as_u64().unwrap() as usize;
            let s = v["s"].as_u64().unwrap() as usize;
            assert_eq!(s, next[p], "producer {p} out of order in {}", f.display());
            next[p] += 1;
        }
    }
    assert_eq!(next, [PER; PRODUCERS]);
}

#[test]
fn a_rotation_in_the_same_second_numbers_after_the_highest_counter_present() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("app.log");
    // Left by an earlier run in the same second: counters 0 to 2 are free, 3 is taken.
    fs::write(d.join("app.20240301T120000.3.log"), "old\n").unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(4).open(&path).unwrap();
    write(&mut sink, &["aa", "bb"]);
    sink.close().unwrap();
    assert_eq!(
        names(d),
        [
            "app.20240301T120000.3.log",
            "app.20240301T120000.4.log",
            "app.log"
        ]
    );
    let contents = all_contents(&path);
    assert_eq!(
        contents,
        vec![b"old\n".to_vec(), b"aa\n".to_vec(), b"bb\n".to_vec()]
    );
}

#[test]
fn a_counter_freed_by_retention_is_not_reused_in_the_same_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(2).keep(1).open(&path).unwrap();
    for r in ["1", "2", "3", "4"] {
        write(&mut sink, &[r]);
        // Retention has run before the next rotation picks a name.
        assert!(sink.wait_idle(Duration::from_secs(30)));
    }
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 3);
    // With counter 0 reused, "3" went to app.20240301T120000.log, which sorts before .1 and
    // was deleted by retention in place of the older "2".
    assert_eq!(names(dir.path()), ["app.20240301T120000.2.log", "app.log"]);
    let contents = all_contents(&path);
    assert_eq!(contents, vec![b"3\n".to_vec(), b"4\n".to_vec()]);
}

/// `keep(0)`: no rotated file is kept; each rotation only starts the file afresh.
#[test]
fn keep_zero_keeps_no_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(2).keep(0).open(&path).unwrap();
    for r in ["1", "2", "3"] {
        write(&mut sink, &[r]);
        assert!(sink.wait_idle(Duration::from_secs(30)));
    }
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 2);
    assert_eq!(names(dir.path()), ["app.log"]);
    assert_eq!(fs::read(&path).unwrap(), b"3\n");
}

#[test]
fn a_file_moved_by_another_tool_is_followed_before_the_size_decision() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(10).open(&path).unwrap();
    // Moved away (logrotate): the 9 bytes are no longer at the path, so "bbbb" fits the
    // new file there; deciding on the old file's size tried to rotate a path that was gone.
    write(&mut sink, &["aaaaaaaa"]);
    fs::rename(&path, d.join("app.log.1")).unwrap();
    write(&mut sink, &["bbbb"]);
    assert_eq!((sink.rotations(), sink.rotation_failures()), (0, 0));
    assert_eq!(sink.len(), 5);
    // Replaced by a bigger file (logrotate's create, or another writer): its 9 bytes count,
    // so "cc" goes into a new file instead of making the one at the path exceed the limit.
    fs::rename(&path, d.join("app.log.2")).unwrap();
    fs::write(&path, "xxxxxxxx\n").unwrap();
    write(&mut sink, &["cc"]);
    sink.close().unwrap();
    assert_eq!((sink.rotations(), sink.rotation_failures()), (1, 0));
    assert_eq!(
        names(d),
        [
            "app.20240301T120000.log",
            "app.log",
            "app.log.1",
            "app.log.2"
        ]
    );
    assert_eq!(fs::read(d.join("app.log.1")).unwrap(), b"aaaaaaaa\n");
    assert_eq!(fs::read(d.join("app.log.2")).unwrap(), b"bbbb\n");
    assert_eq!(
        fs::read(d.join("app.20240301T120000.log")).unwrap(),
        b"xxxxxxxx\n"
    );
    assert_eq!(fs::read(&path).unwrap(), b"cc\n");
}

#[test]
fn a_file_truncated_by_another_tool_is_sized_by_its_real_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("app.log");
    let clock = ManualClock::at(T0);
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        let mut sink = clocked(&clock)
            .max_bytes(10)
            .file(FileOptions::new().strategy(strategy))
            .open(&path)
            .unwrap();
        write(&mut sink, &["aaaaaaaa"]);
        // copytruncate: copied away, then emptied in place. "bbbb" fits the empty file:
        // nothing to rotate (the old length rotated an empty file), and no hole of NULs.
        fs::copy(&path, d.join("app.log.1")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        write(&mut sink, &["bbbb"]);
        write(&mut sink, &["cccc"]);
        sink.close().unwrap();
        assert_eq!((sink.rotations(), sink.len()), (0, 10), "{strategy}");
        assert_eq!(names(d), ["app.log", "app.log.1"], "{strategy}");
        assert_eq!(fs::read(d.join("app.log.1")).unwrap(), b"aaaaaaaa\n");
        assert_eq!(fs::read(&path).unwrap(), b"bbbb\ncccc\n", "{strategy}");
    }
}

const OPEN_FAILURE_CHILD: &str = "LOGXIDE_TEST_ROTATE_OPEN_FAILURE_CHILD";

/// Opening a rotating file (mode `w`) in `base/unlisted`, which this process may search but
/// not list, and in `base/readonly`, which it may list but not write and which holds a
/// `.tmp` leftover: the directory scan fails, or the leftover's removal, and the active file
/// — which the process may write — is left as it was. (Before, the open truncated it first.)
fn open_failure_checks(base: &Path) {
    let opts = RotateOptions::new().max_bytes(1 << 20);
    let path = base.join("unlisted/app.log");
    let err = opts.open(&path).unwrap_err();
    assert_eq!(
        fs::read(&path).unwrap(),
        b"precious\n",
        "truncated before the scan"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot list the directory {} (for the rotated files of {}): Permission denied (os error 13)",
            base.join("unlisted").display(),
            path.display()
        )
    );

    let path = base.join("readonly/app.log");
    let tmp = base.join("readonly/app.20240301T115000.log.gz.tmp");
    let err = opts.open(&path).unwrap_err();
    assert_eq!(
        fs::read(&path).unwrap(),
        b"precious\n",
        "truncated before the removal"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot delete the leftover {}: Permission denied (os error 13)",
            tmp.display()
        )
    );
    assert_eq!(fs::read(&tmp).unwrap(), b"half");
}

#[test]
fn open_failure_child_entry() {
    if let Ok(base) = std::env::var(OPEN_FAILURE_CHILD) {
        open_failure_checks(Path::new(&base));
    }
}

#[test]
fn a_failing_scan_or_leftover_removal_leaves_the_active_file_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let (unlisted, readonly) = (base.join("unlisted"), base.join("readonly"));
    for d in [&unlisted, &readonly] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("app.log"), "precious\n").unwrap();
        fs::set_permissions(d.join("app.log"), fs::Permissions::from_mode(0o666)).unwrap();
    }
    fs::write(readonly.join("app.20240301T115000.log.gz.tmp"), "half").unwrap();
    let mode = |d: &Path, m: u32| fs::set_permissions(d, fs::Permissions::from_mode(m)).unwrap();
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: the owner's permission bits apply to this process.
        mode(&unlisted, 0o300);
        mode(&readonly, 0o500);
        open_failure_checks(base);
        mode(&unlisted, 0o755);
        mode(&readonly, 0o755);
        return;
    }
    // Root ignores permission bits: run the checks in a child that is uid/gid 65534, for
    // which `unlisted` (root's, 0711) can be searched but not listed and `readonly` (0755)
    // listed but not written.
    mode(base, 0o755);
    mode(&unlisted, 0o711);
    mode(&readonly, 0o755);
    common::run_as_nobody("open_failure_child_entry", OPEN_FAILURE_CHILD, base);
}

/// `logs/app.log -> <data>/real.log`: a link directory and a destination directory.
struct Linked {
    _links: tempfile::TempDir,
    _data: tempfile::TempDir,
    links: PathBuf,
    data: PathBuf,
}

impl Linked {
    fn new() -> Self {
        let links = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        Linked {
            links: links.path().to_owned(),
            data: data.path().to_owned(),
            _links: links,
            _data: data,
        }
    }
}

/// The records `a0`, `a1`, ... (3 bytes each with their `\n`) written in batches of 1, 3,
/// 2, 4, 1, 3, ... records; returns every byte written, in order.
fn write_numbered(sink: &mut RotatingFile, n: usize) -> Vec<u8> {
    let mut expected = Vec::new();
    let mut i = 0;
    for size in [1, 3, 2, 4].iter().cycle() {
        if i >= n {
            break;
        }
        let recs: Vec<String> = (i..(i + size).min(n)).map(|k| format!("a{k}")).collect();
        i += recs.len();
        let owned = Owned::new(&recs);
        expected.extend_from_slice(&owned.bytes);
        sink.write_batch(&owned.batch()).unwrap();
    }
    expected
}

/// The target is a symbolic link to a file in another directory: size rotation renames the
/// destination next to itself (`real.<stamp>[.<n>].log`) and recreates it, the link stays
/// and points at it, the link's directory holds only the link, every record is once, in
/// order, across the files. (Before, the link itself was renamed to `app.<stamp>.log` and a
/// plain file created at its path: the destination kept the old records forever.)
#[test]
fn size_rotation_through_a_symlink_rotates_the_destination_and_keeps_the_link() {
    let t = Linked::new();
    let dest = t.data.join("real.log");
    fs::write(&dest, "old\n").unwrap();
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let clock = ManualClock::at(T0);
    // Two 3-byte records per file.
    let mut sink = clocked(&clock).max_bytes(6).open(&link).unwrap();
    assert_eq!((sink.path(), sink.file()), (link.as_path(), dest.as_path()));
    let expected = write_numbered(&mut sink, 11);
    sink.close().unwrap();
    assert_eq!((sink.rotations(), sink.rotation_failures()), (5, 0));
    assert_eq!(fs::read_link(&link).unwrap(), dest);
    assert_eq!(fs::read(&dest).unwrap(), b"a10\n");
    assert_eq!(fs::read(&link).unwrap(), b"a10\n");
    assert_eq!(names(&t.links), ["app.log"]);
    assert_eq!(
        names(&t.data),
        [
            "real.20240301T120000.1.log",
            "real.20240301T120000.2.log",
            "real.20240301T120000.3.log",
            "real.20240301T120000.4.log",
            "real.20240301T120000.log",
            "real.log"
        ]
    );
    // Listed through the link or at the destination: the destination's rotated files.
    let rotated = rotated_files(&link).unwrap();
    assert_eq!(rotated, rotated_files(&dest).unwrap());
    assert_eq!(rotated, sink.rotated_files().unwrap());
    assert_eq!(rotated[0], t.data.join("real.20240301T120000.log"));
    let contents = all_contents(&dest);
    assert_eq!(
        contents,
        [
            &b"a0\na1\n"[..],
            b"a2\na3\n",
            b"a4\na5\n",
            b"a6\na7\n",
            b"a8\na9\n",
            b"a10\n"
        ]
    );
    assert_eq!(contents.concat(), expected);
}

/// A link to a link (relative links, resolved from each link's directory): the last
/// destination is rotated, both links stay as they were; with gzip the compressed files
/// are next to the destination too.
#[test]
fn rotation_through_a_link_to_a_link_rotates_the_last_destination() {
    let t = Linked::new();
    let sub = t.data.join("sub");
    fs::create_dir(&sub).unwrap();
    let dest = sub.join("real.log");
    // links/app.log -> <data>/sub/real.log (absolute); links/outer.log -> app.log (relative);
    // links/up/top.log -> ../outer.log (relative, climbing).
    let app = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &app).unwrap();
    std::os::unix::fs::symlink("app.log", t.links.join("outer.log")).unwrap();
    fs::create_dir(t.links.join("up")).unwrap();
    let top = t.links.join("up/top.log");
    std::os::unix::fs::symlink("../outer.log", &top).unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .max_bytes(6)
        .compress(Compression::Gzip)
        .open(&top)
        .unwrap();
    assert_eq!(
        fs::canonicalize(sink.file()).unwrap(),
        fs::canonicalize(&dest).unwrap()
    );
    let expected = write_numbered(&mut sink, 7);
    assert!(sink.wait_idle(Duration::from_secs(30)));
    sink.close().unwrap();
    assert_eq!((sink.rotations(), sink.background_errors().0), (3, 0));
    assert_eq!(fs::read_link(&top).unwrap(), Path::new("../outer.log"));
    assert_eq!(
        fs::read_link(t.links.join("outer.log")).unwrap(),
        Path::new("app.log")
    );
    assert_eq!(fs::read_link(&app).unwrap(), dest);
    assert_eq!(names(&t.links), ["app.log", "outer.log", "up"]);
    assert_eq!(names(&t.links.join("up")), ["top.log"]);
    assert_eq!(
        names(&sub),
        [
            "real.20240301T120000.1.log.gz",
            "real.20240301T120000.2.log.gz",
            "real.20240301T120000.log.gz",
            "real.log"
        ]
    );
    let mut got = Vec::new();
    for f in rotated_files(&top).unwrap() {
        assert_eq!(f.parent().unwrap(), sink.file().parent().unwrap());
        got.extend(read_any(&f));
    }
    got.extend(fs::read(&dest).unwrap());
    assert_eq!(got, expected);
}

/// Retention through a link counts the destination's rotated files (and deletes only
/// those): `keep(2)` leaves the two newest next to the destination; a file in the link's
/// directory named like a rotated file of the link (as the old rotation made them) is not
/// counted nor touched.
#[test]
fn retention_through_a_symlink_counts_the_destinations_rotated_files() {
    let t = Linked::new();
    let dest = t.data.join("real.log");
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let stale = t.links.join("app.20240301T110000.log");
    fs::write(&stale, "stale\n").unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(2).keep(2).open(&link).unwrap();
    for i in 0..8 {
        clock.advance(Duration::from_secs(1));
        write(&mut sink, &[&i.to_string()]);
    }
    assert!(sink.wait_idle(Duration::from_secs(30)));
    sink.close().unwrap();
    assert_eq!((sink.rotations(), sink.background_errors().0), (7, 0));
    assert_eq!(
        names(&t.data),
        [
            "real.20240301T120007.log",
            "real.20240301T120008.log",
            "real.log"
        ]
    );
    assert_eq!(all_contents(&dest), [&b"5\n"[..], b"6\n", b"7\n"]);
    assert_eq!(names(&t.links), ["app.20240301T110000.log", "app.log"]);
    assert_eq!(fs::read(&stale).unwrap(), b"stale\n");
    assert_eq!(fs::read_link(&link).unwrap(), dest);
}

/// A dangling link at open: its destination is created (with its missing directory, as
/// `create_parents` is on by default), written and rotated; the link is valid from then on.
/// A destination moved away by another tool (logrotate on the destination's directory) is
/// followed at the destination, not at the link: the next batch goes into a new file
/// there, and the size decision is made on it.
#[test]
fn a_dangling_link_gets_its_destination_and_a_moved_destination_is_followed() {
    let t = Linked::new();
    let dest = t.data.join("new/real.log");
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(10).open(&link).unwrap();
    assert_eq!(sink.file(), dest);
    assert!(dest.is_file());
    write(&mut sink, &["aaaaaaaa"]);
    // The 9 bytes moved away: "bbbb" fits the new file at the destination.
    fs::rename(&dest, t.data.join("new/real.log.1")).unwrap();
    write(&mut sink, &["bbbb"]);
    assert_eq!(
        (sink.rotations(), sink.rotation_failures(), sink.len()),
        (0, 0, 5)
    );
    write(&mut sink, &["cccccc"]);
    sink.close().unwrap();
    assert_eq!((sink.rotations(), sink.rotation_failures()), (1, 0));
    assert_eq!(fs::read_link(&link).unwrap(), dest);
    assert_eq!(names(&t.links), ["app.log"]);
    assert_eq!(
        names(&t.data.join("new")),
        ["real.20240301T120000.log", "real.log", "real.log.1"]
    );
    assert_eq!(
        fs::read(t.data.join("new/real.log.1")).unwrap(),
        b"aaaaaaaa\n"
    );
    assert_eq!(
        fs::read(t.data.join("new/real.20240301T120000.log")).unwrap(),
        b"bbbb\n"
    );
    assert_eq!(fs::read(&link).unwrap(), b"cccccc\n");
}

/// With `follow_symlinks(false)` a link at the path is refused by the open before anything
/// is changed: the `.tmp` leftovers of either directory stay, the destination keeps its
/// contents, the link stays.
#[test]
fn a_symlink_is_refused_before_any_side_effect_when_links_are_not_followed() {
    let t = Linked::new();
    let dest = t.data.join("real.log");
    fs::write(&dest, "precious\n").unwrap();
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    for dir in [&t.links, &t.data] {
        let stem = if dir == &t.links { "app" } else { "real" };
        fs::write(
            dir.join(format!("{stem}.20240301T110000.log.gz.tmp")),
            "half",
        )
        .unwrap();
    }
    let (before_links, before_data) = (names(&t.links), names(&t.data));
    for mode in [OpenMode::Truncate, OpenMode::Append] {
        let err = RotateOptions::new()
            .max_bytes(10)
            .keep(0)
            .compress(Compression::Gzip)
            .file(FileOptions::new().follow_symlinks(false).open_mode(mode))
            .open(&link)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&link.display().to_string())
                && err.contains("symbolic link")
                && err.contains("O_NOFOLLOW"),
            "{err}"
        );
        assert_eq!(names(&t.links), before_links);
        assert_eq!(names(&t.data), before_data);
        assert_eq!(fs::read(&dest).unwrap(), b"precious\n");
        assert_eq!(fs::read_link(&link).unwrap(), dest);
    }
}

/// Through the logger (`set("rotate_size", …)`, `keep`, mode `a`): the destination is
/// rotated next to itself, the link kept; the records are all there, once, in order.
#[test]
fn the_logger_rotates_a_symlinked_target_at_its_destination() {
    let t = Linked::new();
    let dest = t.data.join("real.log");
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let log = logxide::Logger::builder()
        .use_env(false)
        .target(&link)
        .set("rotate_size", "1KiB")
        .unwrap()
        .set("mode", "a")
        .unwrap()
        .set("writer_type", "line")
        .unwrap()
        .build()
        .unwrap();
    for i in 0..100 {
        log.info(&format!("message {i}"));
    }
    log.shutdown(None);
    assert_eq!(fs::read_link(&link).unwrap(), dest);
    assert_eq!(names(&t.links), ["app.log"]);
    let rotated = rotated_files(&link).unwrap();
    assert!(rotated.len() >= 3, "{:?}", names(&t.data));
    assert_eq!(names(&t.data).len(), rotated.len() + 1);
    let mut text = Vec::new();
    for f in all_files(&dest) {
        assert_eq!(f.parent().unwrap(), t.data);
        let bytes = fs::read(&f).unwrap();
        assert!(bytes.len() <= 1024);
        text.extend(bytes);
    }
    let text = String::from_utf8(text).unwrap();
    let messages: Vec<&str> = text
        .lines()
        .map(|l| {
            let start = l.find("\"msg\":\"").unwrap() + 7;
            &l[start..start + l[start..].find('"').unwrap()]
        })
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
    assert_eq!(messages, expected);
}

#[test]
fn time_rotation_goes_on_at_each_boundary_after_the_clock_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).every(Period::Minute).open(&path).unwrap();
    write(&mut sink, &["a"]);
    // Stepped an hour ahead by mistake, then back (an NTP step).
    clock.set(T0 + 3600);
    write(&mut sink, &["b"]); // a new period: "a" rotated
    clock.set(T0 + 30);
    write(&mut sink, &["c"]); // the step back itself rotates nothing
    clock.set(T0 + 60);
    write(&mut sink, &["d"]); // the next minute boundary the clock crosses: "b", "c" rotated
    clock.set(T0 + 120);
    write(&mut sink, &["e"]); // and the one after: "d" rotated
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 3);
    // Names never go back in time: the stamp of the rotation an hour ahead, then counters.
    assert_eq!(
        names(dir.path()),
        [
            "app.20240301T130000.1.log",
            "app.20240301T130000.2.log",
            "app.20240301T130000.log",
            "app.log"
        ]
    );
    let contents = all_contents(&path);
    assert_eq!(
        contents,
        vec![
            b"a\n".to_vec(),
            b"b\nc\n".to_vec(),
            b"d\n".to_vec(),
            b"e\n".to_vec()
        ]
    );
}

/// A clock that blocks the background thread (its retention pass asks for the time) until
/// released: background work that outlasts the close timeout.
struct StuckClock {
    released: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

impl logxide::sink::rotate::Clock for StuckClock {
    fn now(&self) -> std::time::SystemTime {
        if thread::current().name() == Some("logxide-rotate") {
            let released = self.released.lock().unwrap();
            drop(self.wake.wait_while(released, |r| !*r).unwrap());
        }
        std::time::UNIX_EPOCH + Duration::from_secs(T0)
    }
}

#[test]
fn a_drop_after_a_close_that_timed_out_does_not_wait_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = Arc::new(StuckClock {
        released: std::sync::Mutex::new(false),
        wake: std::sync::Condvar::new(),
    });
    let timeout = Duration::from_millis(1500);
    // Retention runs at open: the background thread is stuck in it.
    let mut sink = RotateOptions::new()
        .clock(clock.clone())
        .keep(1)
        .close_timeout(timeout)
        .open(&path)
        .unwrap();
    write(&mut sink, &["a"]);
    let started = std::time::Instant::now();
    let err = sink.close().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= timeout);
    // The thread was left to finish on its own: the drop does not wait for it a second time.
    let started = std::time::Instant::now();
    drop(sink);
    let dropped_in = started.elapsed();
    *clock.released.lock().unwrap() = true;
    clock.wake.notify_all();
    assert!(dropped_in < timeout / 2, "the drop waited {dropped_in:?}");
    assert_eq!(fs::read(&path).unwrap(), b"a\n");
}

#[test]
fn files_named_unlike_any_the_sink_writes_are_neither_recovered_nor_retained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("app.log");
    // The user's files: the sink writes no uncompressed `.tmp`, no counter 0, no counter
    // with a leading zero, no stamp of a day that does not exist.
    let foreign = [
        "app.20240301T110000.log.tmp",
        "app.20240301T110000.0.log",
        "app.20240301T110000.01.log",
        "app.20240230T110000.log",
        "app.backup.log",
    ];
    for name in foreign {
        fs::write(d.join(name), name).unwrap();
    }
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(2).keep(1).open(&path).unwrap();
    for r in ["1", "2", "3"] {
        write(&mut sink, &[r]);
    }
    sink.close().unwrap();
    let mut expected: Vec<&str> = foreign.to_vec();
    expected.extend(["app.20240301T120000.1.log", "app.log"]);
    expected.sort();
    assert_eq!(names(d), expected);
    for name in foreign {
        assert_eq!(fs::read(d.join(name)).unwrap(), name.as_bytes());
    }
    assert_eq!(all_contents(&path), vec![b"2\n".to_vec(), b"3\n".to_vec()]);
}

#[test]
fn compressed_rotated_files_keep_the_mode_of_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (compression, ext) in [(Compression::Gzip, "gz"), (Compression::Zstd, "zst")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let clock = ManualClock::at(T0);
        let mut sink = clocked(&clock)
            .max_bytes(2)
            .compress(compression)
            .file(FileOptions::new().permissions(0o600))
            .open(&path)
            .unwrap();
        write(&mut sink, &["1", "2"]);
        sink.close().unwrap();
        assert_eq!(sink.background_errors().0, 0);
        let rotated = dir.path().join(format!("app.20240301T120000.log.{ext}"));
        assert_eq!(
            names(dir.path()),
            [rotated.file_name().unwrap().to_str().unwrap(), "app.log"]
        );
        assert_eq!(read_any(&rotated), b"1\n");
        // The log's records are no more readable compressed than they were.
        assert_eq!(mode(&path), 0o600, "{compression}");
        assert_eq!(mode(&rotated), 0o600, "{compression}");
    }
}

#[test]
fn records_another_process_appends_during_a_rotation_are_kept() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(256).open(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Another writer of the same log (a second process, a tool), appending a line at a time.
    let other = {
        let (path, stop) = (path.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut f = fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .unwrap();
                f.write_all(format!("other{n}\n").as_bytes()).unwrap();
                n += 1;
                thread::sleep(Duration::from_micros(20));
            }
            n
        })
    };
    let mut ours = 0u64;
    while sink.rotations() < 500 {
        write(&mut sink, &[&format!("ours{ours}")]);
        ours += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let others = other.join().unwrap();
    sink.close().unwrap();
    let mut lines: Vec<String> = Vec::new();
    for f in all_files(&path) {
        lines.extend(
            String::from_utf8(fs::read(f).unwrap())
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
    }
    let found = lines.iter().filter(|l| l.starts_with("other")).count() as u64;
    assert_eq!(found, others, "lines of the other writer lost");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ours")).count() as u64,
        ours
    );
}

/// With durability on, each rotation's rename and new file are made durable: the directory
/// is synced with the batch after it (once per rotation, and once for the file created at
/// open); without durability no directory is synced.
#[test]
fn durability_syncs_the_directory_after_each_rotation() {
    use logxide::sink::Durability;
    let dir = tempfile::tempdir().unwrap();
    for (durability, expected) in [
        (Durability::None, [0, 0, 0]),
        (Durability::Data, [1, 2, 3]),
        (Durability::Full, [1, 2, 3]),
    ] {
        let path = dir.path().join(format!("{durability}.log"));
        let clock = ManualClock::at(T0);
        let mut sink = clocked(&clock)
            .max_bytes(2)
            .file(FileOptions::new().durability(durability))
            .open(&path)
            .unwrap();
        let mut syncs = Vec::new();
        for record in ["a", "b", "c"] {
            write(&mut sink, &[record]);
            syncs.push(sink.directory_syncs());
        }
        sink.close().unwrap();
        assert_eq!(syncs, expected, "{durability}");
        assert_eq!(sink.rotations(), 2);
        assert_eq!(
            all_contents(&path),
            vec![b"a\n".to_vec(), b"b\n".to_vec(), b"c\n".to_vec()]
        );
    }
}

/// Retention counts every rotated file of the log, compressed or not, whatever the
/// compression of this run, and whatever the log's own extension (also `gz` or `zst`, or
/// none): `keep` and `max_age` apply to all of them.
#[test]
fn retention_counts_compressed_and_uncompressed_rotated_files_in_every_mode() {
    let modes = [Compression::None, Compression::Gzip, Compression::Zstd];
    for name in [
        "app.log",
        "app",
        "app.gz",
        "app.zst",
        "app.tmp",
        "app.log.gz",
    ] {
        for first in modes {
            for second in modes {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(name);
                let clock = ManualClock::at(T0);
                // A first run leaves 3 rotated files (compressed by `first`)...
                let mut sink = clocked(&clock)
                    .max_bytes(2)
                    .compress(first)
                    .open(&path)
                    .unwrap();
                for i in 0..4 {
                    clock.advance(Duration::from_secs(1));
                    write(&mut sink, &[&i.to_string()]);
                }
                sink.close().unwrap();
                let case = format!("{name} {first} then {second}");
                assert_eq!(rotated_files(&path).unwrap().len(), 3, "{case}");
                // ... a second one, keeping 2, rotates once more: 2 are left, the newest.
                let mut sink = clocked(&clock)
                    .max_bytes(2)
                    .keep(2)
                    .compress(second)
                    .file(FileOptions::new().open_mode(OpenMode::Append))
                    .open(&path)
                    .unwrap();
                clock.advance(Duration::from_secs(1));
                write(&mut sink, &["4"]);
                sink.close().unwrap();
                let rotated = rotated_files(&path).unwrap();
                // Decoded by content: for `app.gz` an uncompressed file ends with `.gz` too.
                let decode = |f: &PathBuf| {
                    let raw = fs::read(f).unwrap();
                    if raw.starts_with(&[0x1f, 0x8b]) {
                        let mut out = Vec::new();
                        flate2::read::GzDecoder::new(&raw[..])
                            .read_to_end(&mut out)
                            .unwrap();
                        out
                    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                        zstd::stream::decode_all(&raw[..]).unwrap()
                    } else {
                        raw
                    }
                };
                let contents: Vec<Vec<u8>> = rotated.iter().map(decode).collect();
                assert_eq!(
                    contents,
                    [b"2\n".to_vec(), b"3\n".to_vec()],
                    "{case}: {rotated:?}"
                );
                assert_eq!(fs::read(&path).unwrap(), b"4\n", "{case}");
                // Every file in the directory is accounted for: the active one and those two.
                assert_eq!(
                    names(dir.path()).len(),
                    3,
                    "{case}: {:?}",
                    names(dir.path())
                );
                // max_age: an hour later, every rotated file is past 30 minutes.
                clock.advance(Duration::from_secs(3600));
                let mut sink = clocked(&clock)
                    .max_bytes(2)
                    .max_age(Duration::from_secs(1800))
                    .compress(second)
                    .file(FileOptions::new().open_mode(OpenMode::Append))
                    .open(&path)
                    .unwrap();
                sink.close().unwrap();
                assert_eq!(
                    rotated_files(&path).unwrap(),
                    Vec::<PathBuf>::new(),
                    "{case}"
                );
                assert_eq!(names(dir.path()), [name], "{case}");
            }
        }
    }
}

/// An appended file's modification time tells its period; one in the future (written while
/// the clock was ahead, then stepped back) is taken as the current period: time rotation
/// goes on at the next boundary the clock crosses, neither at once nor never.
#[test]
fn an_appended_file_with_a_future_mtime_rotates_at_the_next_boundary() {
    let dir = tempfile::tempdir().unwrap();
    for (mtime, rotates_at_once) in [(T0 + 86_400 * 365, false), (T0 - 3600, true)] {
        let path = dir.path().join(format!("app-{mtime}.log"));
        fs::write(&path, b"old\n").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
        drop(file);
        let clock = ManualClock::at(T0 + 10);
        let mut sink = clocked(&clock)
            .every(Period::Minute)
            .file(FileOptions::new().open_mode(OpenMode::Append))
            .open(&path)
            .unwrap();
        write(&mut sink, &["a"]);
        assert_eq!(sink.rotations(), u64::from(rotates_at_once), "{mtime}");
        clock.set(T0 + 50);
        write(&mut sink, &["b"]);
        assert_eq!(sink.rotations(), u64::from(rotates_at_once), "{mtime}");
        clock.set(T0 + 60);
        write(&mut sink, &["c"]);
        assert_eq!(sink.rotations(), 1 + u64::from(rotates_at_once), "{mtime}");
        clock.set(T0 + 130);
        write(&mut sink, &["d"]);
        assert_eq!(sink.rotations(), 2 + u64::from(rotates_at_once), "{mtime}");
        sink.close().unwrap();
        let expected: Vec<Vec<u8>> = if rotates_at_once {
            vec![
                b"old\n".to_vec(),
                b"a\nb\n".to_vec(),
                b"c\n".to_vec(),
                b"d\n".to_vec(),
            ]
        } else {
            vec![b"old\na\nb\n".to_vec(), b"c\n".to_vec(), b"d\n".to_vec()]
        };
        assert_eq!(all_contents(&path), expected, "{mtime}");
    }
}

/// A rotation links the active file to its rotated name, then removes the active name (so
/// that it never replaces a file another process put at either name). A crash between the
/// two leaves one file with both names: the next open finishes the rotation, in both modes,
/// and truncating (mode `w`) never empties the rotated file.
#[test]
fn a_rotation_cut_short_between_its_link_and_unlink_is_finished_at_open() {
    for mode in [OpenMode::Truncate, OpenMode::Append] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let rotated = dir.path().join("app.20240301T120000.log");
        fs::write(&rotated, b"a\n").unwrap();
        fs::hard_link(&rotated, &path).unwrap();
        // Another hard link that is no rotated file of this log is left alone.
        let other = dir.path().join("other.log");
        fs::write(&other, b"o\n").unwrap();
        let other_link = dir.path().join("other-backup.log");
        fs::hard_link(&other, &other_link).unwrap();
        let clock = ManualClock::at(T0 + 10);
        let mut sink = clocked(&clock)
            .max_bytes(100)
            .file(FileOptions::new().open_mode(mode))
            .open(&path)
            .unwrap();
        write(&mut sink, &["b"]);
        sink.close().unwrap();
        assert_eq!(
            all_contents(&path),
            vec![b"a\n".to_vec(), b"b\n".to_vec()],
            "{mode}"
        );
        let mut sink = clocked(&clock)
            .max_bytes(100)
            .file(FileOptions::new().open_mode(mode))
            .open(&other)
            .unwrap();
        sink.close().unwrap();
        let expected: &[u8] = if mode == OpenMode::Append {
            b"o\n"
        } else {
            b""
        };
        assert_eq!(fs::read(&other_link).unwrap(), expected, "{mode}");
    }
}

/// An appended file that ends with foreign text without a newline, exactly at `max_bytes`:
/// the `\n` that would end it does not fit, so it is rotated as it was (never a byte over
/// the limit) and the record goes into the new file.
#[test]
fn a_torn_foreign_line_at_the_limit_is_rotated_without_a_byte_over() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in [IoStrategy::Line, IoStrategy::Block] {
        let path = dir.path().join(format!("{strategy}.log"));
        fs::write(&path, b"{}\nforeign").unwrap();
        let clock = ManualClock::at(T0);
        let mut sink = clocked(&clock)
            .max_bytes(10)
            .file(
                FileOptions::new()
                    .strategy(strategy)
                    .open_mode(OpenMode::Append),
            )
            .open(&path)
            .unwrap();
        write(&mut sink, &["{\"a\":1}"]);
        sink.close().unwrap();
        assert_eq!(sink.rotations(), 1);
        assert_eq!(
            all_contents(&path),
            vec![b"{}\nforeign".to_vec(), b"{\"a\":1}\n".to_vec()],
            "{strategy}"
        );
    }
}

/// A symbolic link at the path retargeted while the sink runs is followed at the next batch
/// (as a moved file is): the new destination is appended to and rotated next to itself,
/// with retention in its own directory; the old destination keeps what it got. With
/// `reopen_if_moved(false)` the sink stays on the destination found at the open.
#[test]
fn a_symlink_retargeted_while_running_is_followed_at_the_next_batch() {
    for follow in [true, false] {
        let t = Linked::new();
        let (a, b) = (t.data.join("a"), t.data.join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let first = a.join("real.log");
        let second = b.join("other.log");
        fs::write(&second, b"old\n").unwrap();
        // A rotated file of the second destination, from a minute later than the clock:
        // retention counts it, and names do not go back before it.
        fs::write(b.join("other.20240301T120100.log"), b"r\n").unwrap();
        let link = t.links.join("app.log");
        std::os::unix::fs::symlink(&first, &link).unwrap();
        let clock = ManualClock::at(T0);
        let mut sink = clocked(&clock)
            .max_bytes(10)
            .keep(1)
            .file(FileOptions::new().reopen_if_moved(follow))
            .open(&link)
            .unwrap();
        write(&mut sink, &["aaaa"]);
        // Retargeted (atomically, as `ln -sfn` through a rename does).
        let tmp_link = t.links.join("app.log.new");
        std::os::unix::fs::symlink(&second, &tmp_link).unwrap();
        fs::rename(&tmp_link, &link).unwrap();
        write(&mut sink, &["bb"]);
        write(&mut sink, &["cccccccc"]);
        sink.close().unwrap();
        assert_eq!(
            (sink.rotations(), sink.rotation_failures()),
            (1, 0),
            "{follow}"
        );
        assert_eq!(names(&t.links), ["app.log"]);
        if follow {
            assert_eq!(sink.file(), second);
            assert_eq!(fs::read(&first).unwrap(), b"aaaa\n");
            // "old bb" rotated at the stamp of the newest name there, counter 1; the older
            // rotated file is past keep(1).
            assert_eq!(names(&b), ["other.20240301T120100.1.log", "other.log"]);
            assert_eq!(
                fs::read(b.join("other.20240301T120100.1.log")).unwrap(),
                b"old\nbb\n"
            );
            assert_eq!(fs::read(&second).unwrap(), b"cccccccc\n");
            assert_eq!(names(&a), ["real.log"]);
        } else {
            assert_eq!(sink.file(), first);
            assert_eq!(names(&a), ["real.20240301T120000.log", "real.log"]);
            assert_eq!(
                fs::read(a.join("real.20240301T120000.log")).unwrap(),
                b"aaaa\nbb\n"
            );
            assert_eq!(fs::read(&first).unwrap(), b"cccccccc\n");
            assert_eq!(fs::read(&second).unwrap(), b"old\n");
        }
    }
}

/// A sync that fails after the records of a split batch's first part were written (their
/// durability in doubt, not their writing) does not fail the rest of the batch: every record
/// is written and the error is reported with the whole batch written.
#[test]
fn a_failed_sync_in_a_split_batch_still_writes_the_rest() {
    use logxide::sink::Durability;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let path = logs.join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .max_bytes(4)
        .file(
            FileOptions::new()
                .durability(Durability::Data)
                .reopen_if_moved(false),
        )
        .open(&path)
        .unwrap();
    // The new file's directory is synced with the first batch: gone, it cannot be.
    let moved = dir.path().join("moved");
    fs::rename(&logs, &moved).unwrap();
    let owned = Owned::new(&["a", "b", "c"]);
    let err = sink.write_batch(&owned.batch()).unwrap_err();
    assert_eq!(err.written, 3, "{err}");
    assert_eq!(err.error.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(
        err.error.to_string().contains("cannot sync the directory"),
        "{err}"
    );
    // "a", "b" fill the file; the rotation before "c" fails (its directory is gone), so "c"
    // goes into the current file too; the error tells both failures.
    assert!(
        err.error.to_string().starts_with(&format!(
            "cannot rotate {}: cannot list the directory {}: ",
            path.display(),
            logs.display()
        )),
        "{err}"
    );
    assert_eq!(sink.rotation_failures(), 1);
    assert_eq!(fs::read(moved.join("app.log")).unwrap(), b"a\nb\nc\n");
}

/// The period of an appended file is that of its modification time before the open: the
/// open's removal of a torn last record (which sets it to now) does not hide that its
/// records are from an earlier period, so the first batch rotates them.
#[test]
fn an_appended_file_repaired_at_open_keeps_the_period_of_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, b"{\"a\":1}\n{\"b\"").unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(T0 - 3600))
        .unwrap();
    drop(file);
    // The real time: the repair sets the modification time to (at least) it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = ManualClock::at(now);
    let mut sink = clocked(&clock)
        .every(Period::Hour)
        .file(FileOptions::new().open_mode(OpenMode::Append))
        .open(&path)
        .unwrap();
    write(&mut sink, &["{\"c\":3}"]);
    sink.close().unwrap();
    assert_eq!(sink.rotations(), 1);
    assert_eq!(
        all_contents(&path),
        vec![b"{\"a\":1}\n".to_vec(), b"{\"c\":3}\n".to_vec()]
    );
}

/// A path without a file name and one whose name is not UTF-8 are refused saying which
/// and what is accepted.
#[test]
fn a_rotating_path_without_a_usable_file_name_is_refused_saying_why() {
    use std::os::unix::ffi::OsStrExt;
    let opts = RotateOptions::new().max_bytes(100);
    for path in ["/", "logs/..", ""] {
        let err = opts.check(path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            format!("a rotating log file needs a file name (the path ends in `..`, or is a root or empty), e.g. app.log: {path}")
        );
    }
    let bad = Path::new(std::ffi::OsStr::from_bytes(b"app\xff.log"));
    let err = opts.check(bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "a rotating log file needs a UTF-8 file name, e.g. app.log: {}",
            bad.display()
        )
    );
}

/// A symbolic link retargeted to a destination that cannot be opened (here a directory):
/// the records go on at the current destination, the error reported with every batch —
/// and that file is still rotated by size, as with `reopen_if_moved(false)`: the failed
/// follow did not make every later batch ignore `max_bytes`.
#[test]
fn a_link_retargeted_to_an_unopenable_destination_still_rotates_by_size() {
    let t = Linked::new();
    let first = t.data.join("real.log");
    let blocked = t.data.join("a-directory");
    fs::create_dir_all(&blocked).unwrap();
    let link = t.links.join("app.log");
    std::os::unix::fs::symlink(&first, &link).unwrap();
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock).max_bytes(10).open(&link).unwrap();
    write(&mut sink, &["aaaa"]);
    let tmp_link = t.links.join("app.log.new");
    std::os::unix::fs::symlink(&blocked, &tmp_link).unwrap();
    fs::rename(&tmp_link, &link).unwrap();
    for record in ["bbbb", "cccc", "dddd", "eeee"] {
        let owned = Owned::new(&[record]);
        let err = sink.write_batch(&owned.batch()).unwrap_err();
        assert_eq!(
            err.written, 1,
            "{record}: the record is in the current file"
        );
        assert!(
            err.error.to_string().contains("a-directory"),
            "{record}: {err}"
        );
    }
    sink.close().unwrap();
    assert_eq!(sink.file(), first);
    assert_eq!((sink.rotations(), sink.rotation_failures()), (2, 0));
    assert_eq!(
        names(&t.data),
        [
            "a-directory",
            "real.20240301T120000.1.log",
            "real.20240301T120000.log",
            "real.log"
        ]
    );
    assert_eq!(
        all_contents(&first),
        [&b"aaaa\nbbbb\n"[..], b"cccc\ndddd\n", b"eeee\n"]
    );
}

/// The file moved away with its directory (renamed by another tool) and its path cannot be
/// opened again (no parent directory, and `create_parents` off): as with a plain file sink,
/// the batch goes into the moved file — every record written, the error reported — instead
/// of every record being counted failed.
#[test]
fn a_file_moved_where_its_path_cannot_be_reopened_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let clock = ManualClock::at(T0);
    let mut sink = clocked(&clock)
        .max_bytes(4)
        .file(FileOptions::new().create_parents(false))
        .open(&path)
        .unwrap();
    write(&mut sink, &["a"]);
    let moved = dir.path().join("moved");
    fs::rename(&logs, &moved).unwrap();
    let owned = Owned::new(&["b", "c"]);
    let err = sink.write_batch(&owned.batch()).unwrap_err();
    assert_eq!(err.written, 2, "{err}");
    assert_eq!(err.error.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(
        err.error
            .to_string()
            .contains("was moved and cannot be opened again"),
        "{err}"
    );
    // No rotation was tried (the path cannot be created): the records are in the moved file.
    assert_eq!((sink.rotations(), sink.rotation_failures()), (0, 0));
    assert_eq!(fs::read(moved.join("app.log")).unwrap(), b"a\nb\nc\n");
    assert!(!logs.exists());
    // A file deleted as well (nobody could read it) fails the batch, as a file sink's does.
    fs::remove_file(moved.join("app.log")).unwrap();
    let err = sink.write_batch(&owned.batch()).unwrap_err();
    assert_eq!(err.written, 0, "{err}");
}

/// A rotation that keeps failing (here: every counter of the rotation's second is taken)
/// loses no record: each batch goes on into the active file, past `max_bytes`, with no bound
/// but the disk; every one of those batches is an error of the sink in the writer's metrics,
/// whose text says where the records went (and, for those in the wait after a failure, when
/// the rotation is tried again), so the first attempt after the cause is gone rotates
/// everything written meanwhile into one rotated file.
#[test]
fn a_rotation_that_keeps_failing_writes_every_batch_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let blocker = dir.path().join("app.20240301T120000.4294967295.log");
    fs::write(&blocker, b"").unwrap();
    let sink = clocked(&clock).max_bytes(4).open(&path).unwrap();
    let writer = Writer::builder().sink(sink).build().unwrap();
    let h = writer.handle();
    let send = |record: &str| {
        h.enqueue(record.as_bytes()).unwrap();
        h.flush(None).unwrap();
    };
    for record in ["a\n", "b\n", "c\n", "d\n", "e\n"] {
        send(record);
    }
    let m = h.metrics();
    let expected = format!(
        "the rotation of {p} is not tried again before 20240301T120001 UTC: the batch went on into {p}, unrotated; the last attempt failed: cannot rotate {p}: no counter left for timestamp 20240301T120000; the batch went on into {p}, unrotated: it grows past its limit until a rotation succeeds (tried again by the first batch from 20240301T120001 UTC on, 1 s after this failure: the wait doubles with each failure in a row, up to 60 s) (after 1 complete record of the batch)",
        p = path.display()
    );
    assert_eq!((m.written, m.failed, m.errors), (5, 0, 3));
    assert_eq!(
        (m.sinks[0].written, m.sinks[0].failed, m.sinks[0].errors),
        (5, 0, 3)
    );
    assert_eq!(m.sinks[0].last_error.as_deref(), Some(expected.as_str()));
    assert_eq!(
        h.last_error(),
        Some(format!("{}: {expected}", path.display()))
    );
    assert_eq!(fs::read(&path).unwrap(), b"a\nb\nc\nd\ne\n");
    // The cause gone, the next batch a second later rotates all of it (no further error).
    fs::remove_file(&blocker).unwrap();
    clock.advance(Duration::from_secs(1));
    send("f\n");
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.failed, m.errors), (6, 0, 3));
    assert_eq!(
        all_contents(&path),
        vec![b"a\nb\nc\nd\ne\n".to_vec(), b"f\n".to_vec()]
    );
    assert_eq!(names(dir.path()), ["app.20240301T120001.log", "app.log"]);
}

/// A rotating file with durability on (`max_bytes(4)`), through a link to `one/real.log`
/// (created by the open: `one` is to be synced), the link then retargeted to `two/real.log`
/// (holding 4 bytes already: the next record rotates it) and `one` moved away, so that `one`
/// cannot be synced. Returns the temporary directory, the sink, and the paths of `one` (as
/// it was) and `two`.
fn durable_sink_with_an_unsyncable_directory() -> (tempfile::TempDir, RotatingFile, PathBuf, PathBuf)
{
    use logxide::sink::Durability;
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    fs::create_dir(&one).unwrap();
    fs::create_dir(&two).unwrap();
    let link = dir.path().join("app.log");
    std::os::unix::fs::symlink(one.join("real.log"), &link).unwrap();
    let sink = RotateOptions::new()
        .clock(ManualClock::at(T0))
        .max_bytes(4)
        .file(FileOptions::new().durability(Durability::Data))
        .open(&link)
        .unwrap();
    fs::remove_file(&link).unwrap();
    fs::write(two.join("real.log"), b"xyz\n").unwrap();
    std::os::unix::fs::symlink(two.join("real.log"), &link).unwrap();
    fs::rename(&one, dir.path().join("one-moved")).unwrap();
    (dir, sink, one, two)
}

/// A directory sync that fails for a file the sink no longer writes (a link retargeted
/// since) names that file, not the current one.
#[test]
fn a_failed_directory_sync_names_the_file_it_was_for() {
    let (_dir, mut sink, one, two) = durable_sink_with_an_unsyncable_directory();
    let err = sink.write_batch(&Owned::new(&["a"]).batch()).unwrap_err();
    assert_eq!(err.written, 1);
    assert_eq!(sink.file(), two.join("real.log"));
    assert_eq!(
        err.error.to_string(),
        format!(
            "cannot sync the directory {}, where {} was created: No such file or directory (os error 2); the records are in the file, but a crash may undo its creation and lose every record in it (the directory is no longer at that path: its sync is given up)",
            one.display(),
            one.join("real.log").display()
        )
    );
}

/// A directory that cannot be synced (durability on; here the old destination's, after a
/// retargeted link) does not stop rotations: they have nothing to do with it. Its error is
/// the batch's, the records are synced, and the file stays within `max_bytes`.
#[test]
fn a_directory_that_cannot_be_synced_does_not_stop_rotations() {
    let (_dir, mut sink, one, two) = durable_sink_with_an_unsyncable_directory();
    // The batch rotates "xyz" before its record, with `one` still to be synced.
    let err = sink.write_batch(&Owned::new(&["a"]).batch()).unwrap_err();
    assert_eq!(err.written, 1);
    let unsyncable = format!("cannot sync the directory {}, ", one.display());
    assert!(err.error.to_string().starts_with(&unsyncable), "{err}");
    assert_eq!((sink.rotations(), sink.rotation_failures()), (1, 0));
    write(&mut sink, &["b"]);
    write(&mut sink, &["c"]);
    assert_eq!((sink.rotations(), sink.rotation_failures()), (2, 0));
    assert_eq!(
        names(&two),
        [
            "real.20240301T120000.1.log",
            "real.20240301T120000.log",
            "real.log"
        ]
    );
    assert_eq!(
        all_contents(&two.join("real.log")),
        [&b"xyz\n"[..], b"a\nb\n", b"c\n"]
    );
}

/// Runs in a child process (see `a_write_failing_after_a_failed_rotation_reports_both`): a
/// file size limit makes a write stop in the middle of a record.
fn write_failing_after_a_failed_rotation_child(dir: &Path) {
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
    let path = dir.join("app.log");
    let clock = ManualClock::at(T0);
    // No counter left for the rotation's timestamp: the rotation fails.
    fs::write(dir.join("app.20240301T120000.4294967295.log"), b"").unwrap();
    let mut sink = clocked(&clock).max_bytes(4).open(&path).unwrap();
    write(&mut sink, &["a", "b"]);
    set_limit(8);
    // The rotation fails, the batch goes on into the file: "c\n" fits, "dd\n" is cut at 8.
    let err = sink
        .write_batch(&Owned::new(&["c", "dd", "eee"]).batch())
        .unwrap_err();
    set_limit(libc::RLIM_INFINITY);
    assert_eq!(err.written, 1);
    assert_eq!(
        err.error.to_string(),
        format!(
            "File too large (os error 27); and cannot rotate {p}: no counter left for timestamp 20240301T120000; the batch went on into {p}, unrotated: it grows past its limit until a rotation succeeds (tried again by the first batch from 20240301T120001 UTC on, 1 s after this failure: the wait doubles with each failure in a row, up to 60 s)",
            p = path.display()
        )
    );
    assert_eq!(err.error.raw_os_error(), None, "the text joins both errors");
    assert_eq!(
        err.error.kind(),
        std::io::Error::from_raw_os_error(libc::EFBIG).kind()
    );
    assert_eq!(sink.rotation_failures(), 1);
    assert_eq!(fs::read(&path).unwrap(), b"a\nb\nc\n");
}

/// A batch whose rotation failed and whose write then failed part way reports both: the
/// failed write (how many records are in the file) and why the file was not rotated.
#[test]
fn a_write_failing_after_a_failed_rotation_reports_both() {
    const VAR: &str = "LOGXIDE_ROTATION_CHILD_DIR";
    if let Some(dir) = std::env::var_os(VAR) {
        write_failing_after_a_failed_rotation_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_write_failing_after_a_failed_rotation_reports_both",
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// A symbolic link retargeted to an existing file is an appended file like the one found at
/// open: its modification time tells its records' period. One from an earlier hour is
/// rotated before the next batch goes into it (every hour); one from this hour is not.
#[test]
fn a_link_retargeted_to_an_older_file_rotates_it_by_its_period() {
    for (mtime, rotated) in [(T0 - 2 * 3600, true), (T0 + 5, false)] {
        let t = Linked::new();
        let first = t.data.join("real.log");
        let second = t.data.join("other.log");
        fs::write(&second, b"old\n").unwrap();
        let file = fs::File::options().write(true).open(&second).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
        drop(file);
        let link = t.links.join("app.log");
        std::os::unix::fs::symlink(&first, &link).unwrap();
        let clock = ManualClock::at(T0 + 10);
        let mut sink = clocked(&clock).every(Period::Hour).open(&link).unwrap();
        write(&mut sink, &["a"]);
        let tmp_link = t.links.join("app.log.new");
        std::os::unix::fs::symlink(&second, &tmp_link).unwrap();
        fs::rename(&tmp_link, &link).unwrap();
        write(&mut sink, &["b"]);
        sink.close().unwrap();
        assert_eq!(sink.file(), second, "{mtime}");
        assert_eq!(fs::read(&first).unwrap(), b"a\n", "{mtime}");
        if rotated {
            assert_eq!(sink.rotations(), 1);
            assert_eq!(
                names(&t.data),
                ["other.20240301T120010.log", "other.log", "real.log"]
            );
            assert_eq!(
                fs::read(t.data.join("other.20240301T120010.log")).unwrap(),
                b"old\n"
            );
            assert_eq!(fs::read(&second).unwrap(), b"b\n");
        } else {
            assert_eq!(sink.rotations(), 0);
            assert_eq!(names(&t.data), ["other.log", "real.log"]);
            assert_eq!(fs::read(&second).unwrap(), b"old\nb\n");
        }
    }
}

/// A file another tool put at the path (the active file moved away) is followed as an
/// appended file: its modification time tells its records' period. One from an earlier hour
/// is rotated before the next batch goes into it (every hour); one from this hour is not.
#[test]
fn a_followed_file_from_an_earlier_period_is_rotated_before_the_batch() {
    for (mtime, rotated) in [(T0 - 2 * 3600, true), (T0 + 5, false)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let clock = ManualClock::at(T0 + 10);
        let mut sink = clocked(&clock).every(Period::Hour).open(&path).unwrap();
        write(&mut sink, &["a"]);
        fs::rename(&path, dir.path().join("moved")).unwrap();
        fs::write(&path, b"old\n").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
        drop(file);
        write(&mut sink, &["b"]);
        sink.close().unwrap();
        assert_eq!(fs::read(dir.path().join("moved")).unwrap(), b"a\n");
        if rotated {
            assert_eq!(sink.rotations(), 1);
            assert_eq!(
                names(dir.path()),
                ["app.20240301T120010.log", "app.log", "moved"]
            );
            assert_eq!(all_contents(&path), [&b"old\n"[..], b"b\n"]);
        } else {
            assert_eq!(sink.rotations(), 0);
            assert_eq!(names(dir.path()), ["app.log", "moved"]);
            assert_eq!(fs::read(&path).unwrap(), b"old\nb\n");
        }
    }
}

/// gzip-compressed `bytes`.
fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Two logs in one directory whose rotated names look alike: `app` (no extension: rotated
/// `app.<stamp>`, compressed `app.<stamp>.gz` or `.zst`) and `app.gz` or `app.zst`
/// (rotated, uncompressed, `app.<stamp>.gz` or `.zst`). Each one's retention (`keep(1)`)
/// deletes its own old files and none of the other's, and `app.gz` does not compress `app`'s
/// compressed files a second time — what the magic number at the start of the file tells
/// apart (a log's records are text lines). (Before, the retention of either deleted the
/// other's rotated files, and `app.gz` compressed `app`'s again, deleting them.)
#[test]
fn a_log_never_takes_the_rotated_files_of_a_log_named_like_its_compressed_ones() {
    for (compression, ext) in [(Compression::Gzip, "gz"), (Compression::Zstd, "zst")] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let compressed = |bytes: &[u8]| match compression {
            Compression::Zstd => zstd::stream::encode_all(bytes, 3).unwrap(),
            _ => gzipped(bytes),
        };
        let name = |stamp: &str| format!("app.20240301T{stamp}.{ext}");
        // Old rotated files of `app.<ext>` (plain text) and of `app` (compressed).
        let other = format!("{{\"log\":\"app.{ext}\"}}\n");
        for stamp in ["100000", "100001"] {
            fs::write(d.join(name(stamp)), &other).unwrap();
        }
        for stamp in ["100002", "100003"] {
            fs::write(d.join(name(stamp)), compressed(b"{}\n")).unwrap();
        }
        let clock = ManualClock::at(T0);
        let rotate_once = |active: &str| {
            let mut sink = clocked(&clock)
                .max_bytes(2)
                .keep(1)
                .compress(compression)
                .open(d.join(active))
                .unwrap();
            write(&mut sink, &["1"]);
            write(&mut sink, &["2"]);
            sink.close().unwrap();
            assert_eq!(sink.background_errors(), (0, None), "{active}");
            assert_eq!(sink.rotated_files().unwrap().len(), 1, "{active}");
        };
        // `app` keeps its newest (12:00:00) and the other log's files.
        rotate_once("app");
        let mut expected = vec![
            "app".to_owned(),
            name("100000"),
            name("100001"),
            name("120000"),
        ];
        expected.sort();
        assert_eq!(names(d), expected);
        assert_eq!(read_any(&d.join(name("120000"))), b"1\n");
        let newest_of_app = fs::read(d.join(name("120000"))).unwrap();
        // `app.<ext>` keeps its newest (12:00:00, counter 1: the name without is taken,
        // compressed) and `app`'s.
        rotate_once(&format!("app.{ext}"));
        let mut expected = vec![
            "app".to_owned(),
            format!("app.{ext}"),
            name("120000"),
            format!("app.20240301T120000.1.{ext}.{ext}"),
        ];
        expected.sort();
        assert_eq!(names(d), expected, "{ext}");
        assert_eq!(fs::read(d.join(name("120000"))).unwrap(), newest_of_app);
    }
}

/// A log whose extension is a number (`app.1`) would rotate to `app.<stamp>.1`: the name of
/// the second file a log `app` rotates in one second, so that each one's retention would
/// delete the other's files, with no way to tell them apart. Refused by the check (and so
/// by the open and the logger's options), before anything is listed, created or deleted.
#[test]
fn a_rotating_log_whose_extension_is_a_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A rotated file of a log `app` (its second in that second).
    let rotated = d.join("app.20240301T110000.1");
    fs::write(&rotated, "app\n").unwrap();
    for ext in ["1", "2024"] {
        let path = d.join(format!("app.{ext}"));
        let opts = RotateOptions::new().max_bytes(2).keep(0);
        let expected = format!(
            "a rotating log file's extension cannot be a number: its rotated files (app.<stamp>.{ext}) would be named as those of a log app, which could delete them; rename it, e.g. app.{ext}.log: {}",
            path.display()
        );
        let err = opts.check(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
        let err = opts.open(&path).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(!path.exists());
    }
    // A hidden file's name works the same (`.app` has no extension).
    let err = RotateOptions::new().check(d.join(".app.1")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a rotating log file's extension cannot be a number"),
        "{err}"
    );
    assert_eq!(names(d), ["app.20240301T110000.1"]);
    // A number before the extension, or a name that only looks like one, is fine; and so
    // is a number after a stem that has an extension itself (`app.log.1` rotates to
    // `app.log.<stamp>.1`: a log `app.log` rotates to `app.<stamp>.log`, no log to
    // `app.log.<stamp>`).
    for name in ["app.1.log", "app.v1", "app.1x", "app.log.1", "a.b.2"] {
        RotateOptions::new()
            .max_bytes(2)
            .check(d.join(name))
            .unwrap();
    }
}

/// Another log open in this process whose active file is named like one of this log's
/// rotated files (a plain file sink at `app.<stamp>.log`, a rotating one at
/// `app.<stamp>.1.log`): this log's compression and retention leave them alone — neither
/// compressed (which deletes the file being written) nor deleted — and they are not counted
/// as rotated files. (Before, the open queued them for compression and the retention
/// deleted them: every record their loggers wrote after was lost.)
#[test]
fn the_active_file_of_another_open_log_is_never_compressed_nor_retained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain_path = d.join("app.20240301T110000.log");
    let rotating_path = d.join("app.20240301T110000.1.log");
    let mut plain = FileOptions::new().open(&plain_path).unwrap();
    let clock = ManualClock::at(T0);
    let mut rotating = clocked(&clock)
        .max_bytes(1 << 20)
        .open(&rotating_path)
        .unwrap();
    plain.write_batch(&Batch::new(b"p1\n", &[3])).unwrap();
    write(&mut rotating, &["r1"]);
    let mut sink = clocked(&clock)
        .max_bytes(2)
        .keep(1)
        .compress(Compression::Gzip)
        .open(d.join("app.log"))
        .unwrap();
    assert!(sink.wait_idle(Duration::from_secs(30)));
    for r in ["1", "2", "3"] {
        write(&mut sink, &[r]);
    }
    sink.close().unwrap();
    assert_eq!(sink.background_errors(), (0, None));
    assert_eq!(sink.rotated_files().unwrap().len(), 1);
    plain.write_batch(&Batch::new(b"p2\n", &[3])).unwrap();
    write(&mut rotating, &["r2"]);
    plain.close().unwrap();
    rotating.close().unwrap();
    assert_eq!(fs::read(&plain_path).unwrap(), b"p1\np2\n");
    assert_eq!(fs::read(&rotating_path).unwrap(), b"r1\nr2\n");
    assert_eq!(
        names(d),
        [
            "app.20240301T110000.1.log",
            "app.20240301T110000.log",
            "app.20240301T120000.1.log.gz",
            "app.log"
        ]
    );
}

/// A rotation that keeps failing (every counter of its timestamp taken: the names never go
/// back in time, so a rotated file of a later hour fixes the timestamp) is not tried again
/// by every batch — each attempt lists the directory, syncs and renames — but 1 s after a
/// failure, then after twice as long with each failure in a row, up to 60 s (on the
/// injected clock). The batches in between are written, each an error saying when the
/// rotation is tried again and why the last one failed; the first attempt after the cause
/// is gone rotates everything written meanwhile.
#[test]
fn a_rotation_that_keeps_failing_is_tried_again_after_a_growing_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::at(T0);
    let blocker = dir.path().join("app.20240301T130000.4294967295.log");
    fs::write(&blocker, b"x\n").unwrap();
    let mut sink = clocked(&clock).max_bytes(2).open(&path).unwrap();
    write(&mut sink, &["a"]);
    let p = path.display();
    let failed = format!(
        "cannot rotate {p}: no counter left for timestamp 20240301T130000; the batch went on into {p}, unrotated: it grows past its limit until a rotation succeeds"
    );
    // The stamp `secs` after T0 (12:00:00), within the hour.
    let stamp = |secs: u64| format!("20240301T12{:02}{:02}", secs / 60, secs % 60);
    let tried = |at: u64, wait: u64| {
        format!(
            "{failed} (tried again by the first batch from {} UTC on, {wait} s after this failure: the wait doubles with each failure in a row, up to 60 s)",
            stamp(at + wait)
        )
    };
    let waiting = |until: u64, last: &str| {
        format!(
            "the rotation of {p} is not tried again before {} UTC: the batch went on into {p}, unrotated; the last attempt failed: {last}",
            stamp(until)
        )
    };
    let mut written = 1;
    let mut batch = |sink: &mut RotatingFile, secs: u64| {
        clock.set(T0 + secs);
        written += 1;
        let result = sink.write_batch(&Owned::new(&["b"]).batch());
        let text = result.map_err(|e| {
            assert_eq!(e.written, 1);
            e.error.to_string()
        });
        (text, sink.rotation_failures())
    };
    // One attempt at 12:00:00, none by the four batches after it in that second.
    assert_eq!(batch(&mut sink, 0), (Err(tried(0, 1)), 1));
    for _ in 0..4 {
        assert_eq!(batch(&mut sink, 0), (Err(waiting(1, &tried(0, 1))), 1));
    }
    // Attempt `n` at `at`: the next is `wait` later, not a second before.
    let attempts = [
        (1, 2),
        (3, 4),
        (7, 8),
        (15, 16),
        (31, 32),
        (63, 60),
        (123, 60),
    ];
    for (n, (at, wait)) in (2..).zip(attempts) {
        assert_eq!(batch(&mut sink, at), (Err(tried(at, wait)), n), "{at}");
        let last = tried(at, wait);
        assert_eq!(
            batch(&mut sink, at + wait - 1),
            (Err(waiting(at + wait, &last)), n),
            "{at}"
        );
    }
    assert_eq!(sink.rotations(), 0);
    // The cause gone, the next attempt (at 12:03:03) rotates.
    fs::remove_file(&blocker).unwrap();
    assert_eq!(batch(&mut sink, 182).1, 8);
    assert_eq!(batch(&mut sink, 183), (Ok(()), 8));
    assert_eq!(sink.rotations(), 1);
    sink.close().unwrap();
    let rotated = dir.path().join("app.20240301T130000.log");
    assert_eq!(names(dir.path()), ["app.20240301T130000.log", "app.log"]);
    let mut expected = b"a\n".to_vec();
    expected.extend(b"b\n".repeat(written - 2));
    assert_eq!(fs::read(&rotated).unwrap(), expected);
    assert_eq!(fs::read(&path).unwrap(), b"b\n");
}
