//! `kill -9` of a process logging at full speed from several threads: every line that made it
//! to the file is whole JSON, each producer's records form a gap-free prefix in order, and
//! nothing but a torn last line (and, for mmap, a NUL tail trimmed at the next open) is left.
//! The test binary runs itself as the child. Trials: 4 per strategy here; set
//! `LOGXIDE_KILL9_TRIALS` for a longer soak.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use logxide::sink::{FileOptions, IoStrategy, OpenMode};
use logxide::writer::Writer;

const CHILD: &str = "LOGXIDE_TEST_KILL9_CHILD";
const PRODUCERS: u64 = 4;

fn child(path: &str, strategy: &str) -> ! {
    let file = FileOptions::new()
        .strategy(strategy.parse().unwrap())
        .mmap_chunk(64 << 10)
        .open(path)
        .unwrap();
    let writer = Writer::builder().capacity(4096).sink(file).build().unwrap();
    let threads: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let h = writer.handle();
            std::thread::spawn(move || {
                let mut line = String::new();
                for s in 0u64.. {
                    line.clear();
                    use std::fmt::Write;
                    let _ = write!(
                        line,
                        r#"{{"p":{p},"s":{s},"pad":"{}"}}"#,
                        "x".repeat((s % 40) as usize)
                    );
                    h.enqueue(line.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    unreachable!("producers never stop");
}

#[test]
fn child_entry() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (path, strategy) = spec.rsplit_once('|').unwrap();
        child(path, strategy);
    }
}

/// Checks the file a killed child left; returns the records found.
fn check(bytes: &[u8], strategy: &str) -> usize {
    // mmap may leave a NUL tail (the mapping grows in chunks). It copies each batch in address
    // order: a copy cut short leaves a prefix of the batch, never a hole of NULs inside it, so
    // after the first NUL there are only NULs. Here: records before the first NUL.
    let content_end = match bytes.iter().position(|&b| b == 0) {
        Some(at) => {
            assert_eq!(strategy, "mmap", "a NUL byte at {at} without mmap");
            if let Some(after) = bytes[at..].iter().position(|&b| b != 0) {
                panic!("a hole of {after} NUL bytes at {at}, data after it");
            }
            at
        }
        None => bytes.len(),
    };
    let content = &bytes[..content_end];
    let whole = content
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let mut next: HashMap<u64, u64> = HashMap::new();
    let mut n = 0;
    for line in content[..whole]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let v: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(line)));
        let (p, s) = (v["p"].as_u64().unwrap(), v["s"].as_u64().unwrap());
        let expected = next.entry(p).or_insert(0);
        assert_eq!(s, *expected, "producer {p}: a gap or reordering");
        *expected += 1;
        n += 1;
    }
    // Whatever follows the last newline is one torn record, never a whole one lost in between.
    assert!(!content[whole..].contains(&b'\n'));
    n
}

#[test]
fn kill9_leaves_whole_lines_and_gap_free_prefixes() {
    use std::os::unix::process::ExitStatusExt;
    let trials: u32 = std::env::var("LOGXIDE_KILL9_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    for strategy in ["line", "block", "mmap"] {
        for trial in 0..trials {
            let path = dir.path().join(format!("{strategy}-{trial}.log"));
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("{}|{strategy}", path.display()))
                .spawn()
                .unwrap();
            // Kill at a moment while it logs: once its first record is in the file (the child
            // may take long to start on a loaded machine), then 3–114 ms later.
            let started = std::time::Instant::now();
            while !std::fs::read(&path).is_ok_and(|b| b.contains(&b'\n')) {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{strategy} trial {trial}: the child wrote nothing in 30 s"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(3 + 37 * u64::from(trial % 4)));
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            let bytes = std::fs::read(&path).unwrap();
            let n = check(&bytes, strategy);
            assert!(
                n > 0,
                "{strategy} trial {trial}: no whole line before the kill"
            );
            // Reopened for append, the file is repaired: no NUL tail, ends with a newline.
            let sink = FileOptions::new()
                .strategy(strategy.parse::<IoStrategy>().unwrap())
                .open_mode(OpenMode::Append)
                .open(&path)
                .unwrap();
            drop(sink);
            let repaired = std::fs::read(&path).unwrap();
            assert!(
                !repaired.contains(&0),
                "{strategy}: NUL left after reopening"
            );
            assert!(repaired.is_empty() || repaired.ends_with(b"\n"));
            // Every line of the repaired file is a whole record, still gap-free per producer.
            let kept = check(&repaired, "line");
            assert!(kept <= n, "{strategy}: the repair invented records");
        }
    }
}
