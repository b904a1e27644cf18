//! Reads the benchmark's output file back and checks every record arrived, in order.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::lines;

/// Problems are listed up to this many; further ones are only counted.
const MAX_PROBLEMS: usize = 10;

/// What was found in the file.
#[derive(Debug, Default)]
pub struct FileCheck {
    /// Complete lines (ending with `\n`) and a possible unterminated tail.
    pub lines: u64,
    /// Lines per producer.
    pub per_producer: Vec<u64>,
    /// What is wrong, empty when the file is as expected.
    pub problems: Vec<String>,
}

impl FileCheck {
    fn problem(&mut self, msg: impl FnOnce() -> String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(msg());
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems
                .push("(further problems not listed)".to_owned());
        }
    }
}

/// Checks that `path` holds only lines of `line_bytes` bytes made for producers
/// `0..counts.len()`, each producer's sequence numbers strictly increasing. With `lossless`,
/// producer `p`'s numbers must be exactly `0..counts[p]` in order; otherwise records may be
/// missing (dropped), but never duplicated or reordered.
pub fn check_file(
    path: &Path,
    line_bytes: usize,
    counts: &[u64],
    lossless: bool,
) -> io::Result<FileCheck> {
    // The error names the file: the benchmark prints it as its only explanation.
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot read back {}: {e}", path.display()),
        )
    };
    check_lines(path, line_bytes, counts, lossless).map_err(named)
}

fn check_lines(
    path: &Path,
    line_bytes: usize,
    counts: &[u64],
    lossless: bool,
) -> io::Result<FileCheck> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut check = FileCheck {
        per_producer: vec![0; counts.len()],
        ..FileCheck::default()
    };
    let mut next: Vec<u64> = vec![0; counts.len()];
    let mut line = Vec::with_capacity(line_bytes + 1);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        check.lines += 1;
        let n = check.lines;
        if line.len() != line_bytes || line.last() != Some(&b'\n') {
            let len = line.len();
            check.problem(|| format!("line {n}: {len} bytes instead of {line_bytes}"));
            continue;
        }
        let Some(rec) = lines::parse(&line) else {
            let text = String::from_utf8_lossy(&line).into_owned();
            check.problem(|| format!("line {n}: not a benchmark record: {text:?}"));
            continue;
        };
        let Some(p) = usize::try_from(rec.producer)
            .ok()
            .filter(|&p| p < counts.len())
        else {
            check.problem(|| format!("line {n}: unknown producer {}", rec.producer));
            continue;
        };
        check.per_producer[p] += 1;
        let expected = next[p];
        if lossless && rec.seq != expected {
            check.problem(|| {
                format!(
                    "line {n}: producer {p} sequence {} where {expected} was expected",
                    rec.seq
                )
            });
        } else if !lossless && rec.seq < expected {
            check.problem(|| {
                format!(
                    "line {n}: producer {p} sequence {} is not above the previous one",
                    rec.seq
                )
            });
        } else if rec.seq >= counts[p] {
            check.problem(|| format!("line {n}: producer {p} sequence {} out of range", rec.seq));
        }
        next[p] = next[p].max(rec.seq + 1);
    }
    for (p, (&found, &sent)) in check.per_producer.clone().iter().zip(counts).enumerate() {
        if lossless && found != sent {
            check.problem(|| format!("producer {p}: {found} lines found, {sent} sent"));
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::LineGen;
    use std::io::Write;

    fn file_with(lines: &[Vec<u8>]) -> (std::path::PathBuf, impl Drop) {
        struct Rm(std::path::PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("logxide-verify-test-{}-{n}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        for l in lines {
            f.write_all(l).unwrap();
        }
        (path.clone(), Rm(path))
    }

    fn line(p: u64, s: u64) -> Vec<u8> {
        let mut g = LineGen::new(40, p, 3).unwrap();
        for _ in 0..s {
            g.advance();
        }
        g.line().to_vec()
    }

    #[test]
    fn a_read_error_names_the_file() {
        let path = std::env::temp_dir().join("logxide-verify-test-missing/engine.log");
        let e = check_file(&path, 40, &[1], true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read back {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn finds_gaps_duplicates_and_bad_lines() {
        let good = [line(0, 0), line(1, 0), line(0, 1), line(1, 1), line(0, 2)];
        let (path, _rm) = file_with(&good);
        let c = check_file(&path, 40, &[3, 2], true).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!((c.lines, c.per_producer.clone()), (5, vec![3, 2]));

        let gap = [line(0, 0), line(0, 2)];
        let (path, _rm2) = file_with(&gap);
        assert!(!check_file(&path, 40, &[3], true)
            .unwrap()
            .problems
            .is_empty());
        assert!(check_file(&path, 40, &[3], false)
            .unwrap()
            .problems
            .is_empty());

        let dup = [line(0, 0), line(0, 1), line(0, 1)];
        let (path, _rm3) = file_with(&dup);
        assert!(!check_file(&path, 40, &[3], false)
            .unwrap()
            .problems
            .is_empty());

        let bad = [line(0, 0), b"garbage\n".to_vec(), line(2, 0)];
        let (path, _rm4) = file_with(&bad);
        let c = check_file(&path, 40, &[1], true).unwrap();
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    }
}
