//! `logxide check`: validates logxide files line by line and as task trees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::record::{self, level_text, sanitize, Chunk, Kind, ParseError, Record, Status};

/// Problems kept per file; further ones are only counted.
const MAX_PROBLEMS: usize = 10_000;

/// Validate logxide files: JSON, keys and types, timestamps, task trees
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each problem is printed as FILE:LINE: message, then one summary line per file.\n\
A task whose action has no end record yet is counted as incomplete, not as a problem.\n\
Rotated files compressed with gzip or zstd are decompressed (--repair refuses them).\n\n\
Exit status: 0 clean, 1 problems (also when --repair wrote a clean copy), 2 usage errors or unreadable files.\n\
A file unreadable part way (a truncated or corrupt .gz or .zst) is reported for the lines read\n\
before the error, then the error: exit 2."
)]
pub struct CheckArgs {
    /// Files to check (`-`: standard input, read as it is, not decompressed)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write a copy of FILE without its NUL tail and torn last line to OUT (one FILE only)
    #[arg(long, value_name = "OUT")]
    pub repair: Option<PathBuf>,
    /// Print the summary and problems as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Default, Debug)]
struct Counts {
    messages: u64,
    started: u64,
    succeeded: u64,
    failed: u64,
}

#[derive(Serialize, Debug)]
struct Problem {
    line: u64,
    message: String,
}

#[derive(Serialize, Debug)]
struct Torn {
    line: u64,
    offset: u64,
    bytes: u64,
}

#[derive(Serialize, Debug)]
struct NulTail {
    line: u64,
    offset: u64,
    bytes: u64,
}

#[derive(Serialize, Debug)]
struct Repair {
    out: String,
    bytes_written: u64,
    removed_nul_bytes: u64,
    removed_torn_line: Option<u64>,
    added_newline: bool,
}

#[derive(Serialize, Default, Debug)]
struct FileReport {
    file: String,
    lines: u64,
    tasks: u64,
    records: Counts,
    incomplete_tasks: u64,
    torn_last_line: Option<Torn>,
    nul_tail: Option<NulTail>,
    problem_count: u64,
    problems: Vec<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repair: Option<Repair>,
    /// Why reading stopped before the end (a corrupt or truncated compressed file, a read
    /// error): the report covers the lines before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Bytes of the input a repaired copy keeps.
    #[serde(skip)]
    keep: u64,
    /// Whether the repaired copy gets a `\n` after the kept bytes (an unterminated record).
    #[serde(skip)]
    add_newline: bool,
}

impl FileReport {
    fn problem(&mut self, line: u64, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { line, message });
        }
    }
}

struct End {
    at: String,
    pos: u64,
    line: u64,
}

#[derive(Default)]
struct Group {
    /// Position → the first line with a record at it or inside it.
    occupied: BTreeMap<u64, u64>,
    /// Positions holding a record of this group itself (not a child action).
    own: HashSet<u64>,
    start: Option<(String, u64)>,
    end: Option<End>,
}

struct TaskState {
    last_ts: f64,
    last_ts_line: u64,
    levels: HashMap<Vec<u64>, u64>,
    groups: HashMap<Vec<u64>, Group>,
}

/// Checks one input, filling `rep`. When reading fails, `rep` covers what was read before
/// (the tasks so far checked as if the input ended there), and the error says how far that is.
fn check_reader(r: impl Read, rep: &mut FileReport) -> Result<(), (io::Error, record::ReadSoFar)> {
    let mut so_far = record::ReadSoFar::default();
    let mut tasks: HashMap<String, TaskState> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut after_end_lines: HashSet<u64> = HashSet::new();
    let read = record::for_each_line(BufReader::with_capacity(1 << 16, r), |chunk| {
        so_far = chunk.read_so_far();
        match chunk {
            Chunk::NulTail { no, offset, len } => {
                rep.problem(
                    no,
                    format!(
                        "NUL tail: {len} zero bytes from offset {offset} to the end (left by a crash)"
                    ),
                );
                rep.nul_tail = Some(NulTail {
                    line: no,
                    offset,
                    bytes: len,
                });
            }
            Chunk::Line {
                no,
                offset,
                bytes,
                terminated,
            } => {
                rep.lines += 1;
                let parsed = record::parse(bytes);
                if !terminated {
                    if let Err(ParseError::Json(_)) = parsed {
                        rep.problem(
                            no,
                            format!(
                                "torn last line: {} bytes without a newline, not JSON",
                                bytes.len()
                            ),
                        );
                        rep.torn_last_line = Some(Torn {
                            line: no,
                            offset,
                            bytes: bytes.len() as u64,
                        });
                        return Ok(());
                    }
                    rep.problem(no, "last line has no trailing newline".to_owned());
                    rep.keep = offset + bytes.len() as u64;
                    rep.add_newline = true;
                } else {
                    rep.keep = offset + bytes.len() as u64 + 1;
                }
                match parsed {
                    Err(e) => rep.problem(no, e.to_string()),
                    Ok(rec) => {
                        on_record(rep, &mut tasks, &mut order, &mut after_end_lines, no, rec)
                    }
                }
            }
        }
        Ok(())
    });
    for tid in &order {
        finish_task(rep, tid, &tasks[tid], &after_end_lines);
    }
    rep.tasks = order.len() as u64;
    rep.problems.sort_by_key(|p| p.line);
    read.map_err(|e| (e, so_far))
}

fn on_record(
    rep: &mut FileReport,
    tasks: &mut HashMap<String, TaskState>,
    order: &mut Vec<String>,
    after_end: &mut HashSet<u64>,
    line: u64,
    rec: Record,
) {
    match &rec.kind {
        Kind::Message { .. } => rep.records.messages += 1,
        Kind::Action { st, .. } => match st {
            Status::Started => rep.records.started += 1,
            Status::Succeeded => rep.records.succeeded += 1,
            Status::Failed => rep.records.failed += 1,
        },
    }
    let task = tasks.entry(rec.tid.clone()).or_insert_with(|| {
        order.push(rec.tid.clone());
        TaskState {
            last_ts: f64::NEG_INFINITY,
            last_ts_line: 0,
            levels: HashMap::new(),
            groups: HashMap::new(),
        }
    });
    let tid = sanitize(&rec.tid);
    let lvl = &rec.lvl;
    let lt = level_text(lvl);
    if rec.ts < task.last_ts {
        rep.problem(
            line,
            format!(
                "ts goes backwards in task {tid}: {} after {} (line {})",
                rec.ts, task.last_ts, task.last_ts_line
            ),
        );
    } else {
        task.last_ts = rec.ts;
        task.last_ts_line = line;
    }
    if let Some(first) = task.levels.get(lvl) {
        rep.problem(
            line,
            format!("duplicate task level {lt} in task {tid} (first on line {first})"),
        );
        return;
    }
    task.levels.insert(lvl.clone(), line);
    let n = lvl.len();
    // A record after the end of an action it is inside (innermost first).
    for i in (0..n).rev() {
        if i == n - 1 && rec.is_end() {
            continue; // a second end: reported below
        }
        if let Some(end) = task.groups.get(&lvl[..i]).and_then(|g| g.end.as_ref()) {
            if end.line < line {
                rep.problem(
                    line,
                    format!(
                        "record {lt} comes after the end of its action {} ({}, line {})",
                        sanitize(&end.at),
                        level_text(&[&lvl[..i], &[end.pos]].concat()),
                        end.line
                    ),
                );
                after_end.insert(line);
                break;
            }
        }
    }
    for i in 0..n {
        let g = task.groups.entry(lvl[..i].to_vec()).or_default();
        g.occupied.entry(lvl[i]).or_insert(line);
        if i == n - 1 {
            g.own.insert(lvl[i]);
        }
    }
    let group = task.groups.get_mut(&lvl[..n - 1]).expect("inserted above");
    if let Kind::Action { at, st } = &rec.kind {
        let at_s = sanitize(at);
        if *st == Status::Started {
            if lvl[n - 1] != 1 {
                rep.problem(
                    line,
                    format!("start of action {at_s} at {lt} is not the first position of its action (…,1)"),
                );
            } else {
                group.start = Some((at.clone(), line));
            }
        } else if let Some(prev) = &group.end {
            rep.problem(
                line,
                format!(
                    "second end of action {at_s} at {lt} (it ended on line {})",
                    prev.line
                ),
            );
        } else {
            group.end = Some(End {
                at: at.clone(),
                pos: lvl[n - 1],
                line,
            });
        }
    }
}

fn finish_task(rep: &mut FileReport, tid: &str, task: &TaskState, after_end: &HashSet<u64>) {
    let tid_s = sanitize(tid);
    let closed = |q: &[u64]| {
        (0..=q.len()).any(|i| task.groups.get(&q[..i]).is_some_and(|g| g.end.is_some()))
    };
    let mut incomplete = false;
    let mut keys: Vec<&Vec<u64>> = task.groups.keys().collect();
    keys.sort();
    for q in keys {
        let g = &task.groups[q];
        let at_level = |p: u64| level_text(&[q.as_slice(), &[p]].concat());
        let first_line = g.occupied.values().copied().min().unwrap_or(0);
        let Some((start_at, start_line)) = &g.start else {
            if let Some(end) = &g.end {
                rep.problem(
                    end.line,
                    format!(
                        "end of action {} at {} without a start (no started record at {})",
                        sanitize(&end.at),
                        at_level(end.pos),
                        at_level(1)
                    ),
                );
            } else if !(q.is_empty() && g.occupied.len() == 1 && g.own.contains(&1)) {
                rep.problem(
                    first_line,
                    format!(
                        "records at {} in task {tid_s} belong to no started action (nothing started at {})",
                        level_text(&[q.as_slice(), &[*g.occupied.keys().next().unwrap_or(&1)]].concat()),
                        at_level(1)
                    ),
                );
            }
            continue;
        };
        let start_s = sanitize(start_at);
        if let Some(end) = &g.end {
            if &end.at != start_at {
                rep.problem(
                    end.line,
                    format!(
                        "end of action {} at {} does not match its start {start_s} (line {start_line})",
                        sanitize(&end.at),
                        at_level(end.pos)
                    ),
                );
            }
            for (&p, &l) in g.occupied.range(end.pos + 1..) {
                if !after_end.contains(&l) {
                    rep.problem(
                        l,
                        format!(
                            "record at {} is after the end of its action {start_s} ({}, line {})",
                            at_level(p),
                            at_level(end.pos),
                            end.line
                        ),
                    );
                }
            }
        } else if closed(q) {
            rep.problem(
                *start_line,
                format!(
                    "action {start_s} at {} in task {tid_s} has no end record, but an action around it ended",
                    at_level(1)
                ),
            );
        } else {
            incomplete = true;
        }
        if closed(q) {
            let mut expect = 1;
            for (&p, &l) in &g.occupied {
                if p > expect {
                    let missing = if p - expect == 1 {
                        at_level(expect)
                    } else {
                        format!("{} to {}", at_level(expect), at_level(p - 1))
                    };
                    rep.problem(
                        l,
                        format!(
                            "gap in the task levels of task {tid_s}: {missing} missing before {}",
                            at_level(p)
                        ),
                    );
                }
                expect = p + 1;
            }
        }
    }
    if incomplete {
        rep.incomplete_tasks += 1;
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary_line(rep: &FileReport) -> String {
    let c = &rep.records;
    let total = c.messages + c.started + c.succeeded + c.failed;
    format!(
        "{}: {}, {}, {} ({}, {} started, {} succeeded, {} failed), {}, {}",
        sanitize(&rep.file),
        plural(rep.lines, "line", "lines"),
        plural(rep.tasks, "task", "tasks"),
        plural(total, "record", "records"),
        plural(c.messages, "message", "messages"),
        c.started,
        c.succeeded,
        c.failed,
        plural(rep.incomplete_tasks, "incomplete task", "incomplete tasks"),
        plural(rep.problem_count, "problem", "problems"),
    ) + if rep.error.is_some() {
        ", then a read error: the rest of the file could not be read"
    } else {
        ""
    }
}

fn repair(src: &Path, out: &Path, rep: &FileReport) -> io::Result<Repair> {
    let mut input = File::open(src)?.take(rep.keep);
    let mut file = File::create(out)?;
    let mut written = io::copy(&mut input, &mut file)?;
    if written != rep.keep {
        return Err(io::Error::other(format!(
            "{} changed while it was repaired",
            src.display()
        )));
    }
    if rep.add_newline {
        file.write_all(b"\n")?;
        written += 1;
    }
    file.sync_all()?;
    Ok(Repair {
        out: out.display().to_string(),
        bytes_written: written,
        removed_nul_bytes: rep.nul_tail.as_ref().map_or(0, |n| n.bytes),
        removed_torn_line: rep.torn_last_line.as_ref().map(|t| t.line),
        added_newline: rep.add_newline,
    })
}

fn repair_text(r: &Repair, rep: &FileReport) -> String {
    let mut what = Vec::new();
    if let Some(n) = &rep.nul_tail {
        what.push(format!("removed the NUL tail ({} bytes)", n.bytes));
    }
    if let Some(t) = &rep.torn_last_line {
        what.push(format!(
            "removed the torn last line {} ({} bytes)",
            t.line, t.bytes
        ));
    }
    if r.added_newline {
        what.push("added the missing newline after the last line".to_owned());
    }
    if what.is_empty() {
        what.push("nothing to remove".to_owned());
    }
    format!(
        "{}: repaired copy written to {} ({}): {}",
        sanitize(&rep.file),
        sanitize(&r.out),
        plural(r.bytes_written, "byte", "bytes"),
        what.join(", ")
    )
}

fn usage_error(msg: &str) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = crate::Cli::command();
    let sub = cmd
        .find_subcommand_mut("check")
        .map(|c| c.clone().bin_name("logxide check"));
    let err = match sub {
        Some(mut c) => c.error(clap::error::ErrorKind::ArgumentConflict, msg),
        None => cmd.error(clap::error::ErrorKind::ArgumentConflict, msg),
    };
    let _ = err.print();
    ExitCode::from(2)
}

/// Runs `logxide check`: 0 when every file is clean, 1 on problems, 2 on usage errors and
/// unreadable files.
pub fn run(args: &CheckArgs) -> ExitCode {
    let stdin = |f: &&PathBuf| f.as_os_str() == "-";
    if args.files.iter().filter(stdin).count() > 1 {
        return usage_error("`-` (standard input) may be given once: it can be read only once");
    }
    if let Some(out) = &args.repair {
        if args.files.len() != 1 {
            return usage_error("--repair takes exactly one FILE");
        }
        if stdin(&&args.files[0]) {
            return usage_error(
                "--repair cannot check `-` (standard input): it reads FILE again to copy it",
            );
        }
        let same = match (
            std::fs::canonicalize(&args.files[0]),
            std::fs::canonicalize(out),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return usage_error("--repair OUT must not be the FILE being checked");
        }
        if let Ok(Some(c)) =
            File::open(&args.files[0]).and_then(|mut f| record::compression_of(&mut f))
        {
            return usage_error(&format!(
                "--repair: {} is compressed ({}); decompress it and repair the copy",
                sanitize(&args.files[0].display().to_string()),
                c.name()
            ));
        }
    }
    let mut reports = Vec::new();
    let mut unreadable = false;
    for path in &args.files {
        let mut rep = FileReport {
            file: path.display().to_string(),
            ..FileReport::default()
        };
        let opened = if stdin(&path) {
            let input: Box<dyn Read> = Box::new(io::stdin().lock());
            Ok((input, None))
        } else {
            record::open_lines(path)
        };
        let (input, compression) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!(
                    "logxide check: {}: {}",
                    sanitize(&path.display().to_string()),
                    sanitize(&e.to_string())
                );
                unreadable = true;
                continue;
            }
        };
        if let Err((e, so_far)) = check_reader(input, &mut rep) {
            // The report of the lines read before the error is printed too.
            let text = record::read_error_text(&e, compression, so_far);
            eprintln!(
                "logxide check: {}: {}",
                sanitize(&path.display().to_string()),
                sanitize(&text)
            );
            rep.error = Some(text);
            unreadable = true;
            reports.push(rep);
            continue;
        }
        if let Some(out) = &args.repair {
            match repair(path, out, &rep) {
                Ok(r) => rep.repair = Some(r),
                Err(e) => {
                    eprintln!(
                        "logxide check: cannot write {}: {}",
                        sanitize(&out.display().to_string()),
                        sanitize(&e.to_string())
                    );
                    unreadable = true;
                }
            }
        }
        reports.push(rep);
    }
    let problems: u64 = reports.iter().map(|r| r.problem_count).sum();
    let mut out = io::stdout().lock();
    let printed = if args.json {
        #[derive(Serialize)]
        struct All<'a> {
            files: &'a [FileReport],
            problems: u64,
            clean: bool,
        }
        serde_json::to_writer(
            &mut out,
            &All {
                files: &reports,
                problems,
                clean: problems == 0 && !unreadable,
            },
        )
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
    } else {
        (|| {
            for rep in &reports {
                let file = sanitize(&rep.file);
                for p in &rep.problems {
                    writeln!(out, "{file}:{}: {}", p.line, p.message)?;
                }
                if rep.problem_count > rep.problems.len() as u64 {
                    writeln!(
                        out,
                        "{file}: {} further problems not listed",
                        rep.problem_count - rep.problems.len() as u64
                    )?;
                }
                writeln!(out, "{}", summary_line(rep))?;
                if let Some(r) = &rep.repair {
                    writeln!(out, "{}", repair_text(r, rep))?;
                }
            }
            Ok(())
        })()
    };
    if let Err(e) = printed.and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("logxide check: cannot print: {e}");
            return ExitCode::from(2);
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else if problems > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> FileReport {
        let mut rep = FileReport::default();
        check_reader(text.as_bytes(), &mut rep).unwrap();
        rep
    }

    const GOOD: &str = r#"{"ts":1.0,"tid":"A","lvl":[1],"mt":"info","msg":"alone"}
{"ts":1.0,"tid":"B","lvl":[1],"at":"http","st":"started"}
{"ts":1.1,"tid":"B","lvl":[2],"mt":"info","msg":"in"}
{"ts":1.2,"tid":"B","lvl":[3,1],"at":"db","st":"started"}
{"ts":1.3,"tid":"B","lvl":[3,2],"at":"db","st":"succeeded","dur":0.1}
{"ts":1.5,"tid":"B","lvl":[4],"at":"http","st":"failed","exc":"E","reason":"boom"}
"#;

    #[test]
    fn clean_and_incomplete() {
        let r = check(GOOD);
        assert_eq!(r.problem_count, 0, "{:?}", r.problems);
        assert_eq!((r.lines, r.tasks, r.incomplete_tasks), (6, 2, 0));
        let partial: String = GOOD.lines().take(4).map(|l| format!("{l}\n")).collect();
        let r = check(&partial);
        assert_eq!(r.problem_count, 0, "{:?}", r.problems);
        assert_eq!(r.incomplete_tasks, 1);
    }

    #[test]
    fn finds_tree_problems() {
        let gap = GOOD.replace(r#""lvl":[2],"#, r#""lvl":[5],"#);
        let r = check(&gap);
        assert!(
            r.problems
                .iter()
                .any(|p| p.message.contains("after the end")),
            "{:?}",
            r.problems
        );
        let no_inner_end = GOOD.replace(
            r#"{"ts":1.3,"tid":"B","lvl":[3,2],"at":"db","st":"succeeded","dur":0.1}"#,
            "",
        );
        let r = check(&no_inner_end);
        assert!(
            r.problems
                .iter()
                .any(|p| p.message.contains("has no end record")),
            "{:?}",
            r.problems
        );
        let mismatch = GOOD.replace(
            r#""at":"db","st":"succeeded""#,
            r#""at":"dx","st":"succeeded""#,
        );
        let r = check(&mismatch);
        assert!(
            r.problems
                .iter()
                .any(|p| p.message.contains("does not match")),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn torn_and_nul_tail() {
        let r = check(&format!("{GOOD}{{\"ts\":1.6,\"ti\0\0\0"));
        assert_eq!(r.torn_last_line.as_ref().unwrap().bytes, 13);
        assert_eq!(r.nul_tail.as_ref().unwrap().bytes, 3);
        assert_eq!(r.keep, GOOD.len() as u64);
    }
}
