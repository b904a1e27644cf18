//! `logxide check`: validates logxide files line by line and as task trees.
//!
//! Memory stays bounded whatever the number of tasks (see [`Checker`]): a task is checked
//! as a whole and forgotten as soon as it ends, and at most `--max-open-tasks` are held
//! open. A task's levels form a tree of [`Group`]s walked without recursion, so a level may
//! be any number of parts deep and each record costs time in proportion to its own depth.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::record::{
    self, level_text, level_text_then, sanitize, Chunk, Kind, ParseError, Record, Status,
};

/// Problems kept per file; further ones are only counted.
const MAX_PROBLEMS: usize = 10_000;

/// What a gap in a task's levels can mean: a level is taken when a record is made, so a
/// record the writer dropped (queue full, evicted, timed out, or its encoding panicked: the
/// writer's metrics count each) or a sink's level filter left out leaves its position empty.
/// Not a tree inconsistency: the records around it are as they should be.
const GAP_MEANS: &str = "records not in the file: dropped by the writer, which its metrics \
     count, or below a sink's level filter, which --filtered accepts";

/// What a missing start can also mean once tasks were forgotten (see [`Checker`]).
const FORGOTTEN_MEANS: &str =
    ", or earlier in the input, in a task forgotten past --max-open-tasks";

/// Validate logxide files: JSON, keys and types, timestamps, task trees
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each problem is printed as FILE:LINE: message, then one summary line per file.\n\
A task whose root action has no end record (the file ends first) is counted as incomplete,\n\
not as a problem (an action inside one that ended, without its own end, is a problem).\n\
Zero bytes at the start of a line (a hole a crash left) are a problem; the record after them\n\
is checked; --repair leaves them out (a line of nothing else whole).\n\
A gap in a task's levels, and a missing start whose position holds no other record, are\n\
problems that say records are missing, not that the tree is wrong: records the writer dropped\n\
(its metrics count them: queue full, evicted, timed out, or a record whose encoding panicked)\n\
or a sink's level filter left out (--filtered).\n\
Memory is bounded: a task is checked and forgotten when its root action ends (or when it is a\n\
lone message at [1]); of the last --max-open-tasks ended ones the end is remembered, so a later\n\
record of such a task is reported against it (\"comes after the end of its action\"); a later\n\
record of a task forgotten before that starts a new task (counted again). At most\n\
--max-open-tasks tasks are held open: past it, the one whose last record is the oldest is\n\
checked as it is so far, with a problem saying so. Task levels may be any number of parts deep.\n\
Rotated files compressed with gzip or zstd are decompressed (--repair refuses them).\n\n\
Several FILEs are checked as one log, so that a task may begin in one and go on in another: the\n\
files are taken whole, one after another, in the order of their first records' ts (the first\n\
FILE given on a tie), as the files of a rotated set were written, in whatever order they are\n\
given. With --interleave (files written at the same time, by processes that continue each\n\
other's tasks) the records of all are taken in the order of their ts, each file's in its own\n\
order; that order is as good as the times: a record whose thread was preempted between its\n\
call and the queue has an earlier ts than records before it in its file, and may be taken\n\
before another file's records. A task is counted in the file of its first record, each record\n\
and problem in its own file; a problem naming a line of another file says which\n\
(\"line N of FILE\"); --max-open-tasks counts the tasks of all files. A file given twice (or a\n\
link to it) is a usage error.\n\n\
Exit status: 0 clean, 1 problems (also when --repair wrote a clean copy), 2 usage errors,\n\
unreadable files or a --repair that wrote nothing.\n\
A file unreadable part way (a truncated or corrupt .gz or .zst) is reported for the lines read\n\
before the error, then the error: exit 2."
)]
pub struct CheckArgs {
    /// Files to check (`-`: standard input, read as it is, not decompressed)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write a copy of FILE without its NUL tail, its torn last line and the zero bytes at the
    /// start of lines (a line of nothing else removed whole) to OUT (one FILE only)
    #[arg(long, value_name = "OUT")]
    pub repair: Option<PathBuf>,
    /// Print the summary and problems as one JSON line, with every key in every case (null
    /// when it does not apply): {"files":[REPORT...],"problems":N,"clean":BOOL}, a REPORT per
    /// FILE in order: file, lines, tasks, records {messages, started, succeeded, failed},
    /// incomplete_tasks, torn_last_line {line, offset, bytes} or null, nul_tail {line,
    /// offset, bytes} or null, problem_count, problems [{line, message}] (the first 10000),
    /// repair {out, bytes_written, removed_nul_bytes, removed_torn_line (a line or null),
    /// added_newline, removed_hole_bytes} or null, repair_error (why --repair wrote nothing) or null, error (why
    /// the file could not be opened or read to its end) or null
    #[arg(long)]
    pub json: bool,
    /// Tasks held open at once: past it, the one whose last record is the oldest is checked
    /// as it is so far (a problem says so). Also the number of ended tasks remembered to
    /// report a record that comes after its task ended
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub max_open_tasks: u64,
    /// The longest line read (a number of bytes, or with K, M or G); a longer one is a
    /// problem, not read as a record nor held in memory (--repair keeps it, but refuses a last
    /// line that long without a newline: whether it is torn is not known). The default is the
    /// library's default queue bound, which no record it writes exceeds
    #[arg(long, value_name = "SIZE", default_value = record::DEFAULT_MAX_LINE, value_parser = record::parse_size)]
    pub max_line: u64,
    /// The files were written through a level filter (a sink with a level of its own): the
    /// records below it are missing from their tasks, which is not a problem. Gaps in task
    /// levels, records of an action whose start is missing, ends without a start, and tasks
    /// forgotten past --max-open-tasks (whose end may be filtered out) are not reported;
    /// everything else is checked as usual
    #[arg(long)]
    pub filtered: bool,
    /// Several FILEs written at the same time (processes that continue each other's tasks):
    /// their records are taken in the order of their ts, not file after file
    #[arg(long)]
    pub interleave: bool,
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
    /// Bytes of the holes removed: the zeros at the start of lines, and the lines that held
    /// nothing else (their whitespace and `\n` too).
    removed_hole_bytes: u64,
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
    repair: Option<Repair>,
    /// Why `--repair` wrote no copy (refused, or OUT could not be written).
    repair_error: Option<String>,
    /// Why reading stopped before the end (a corrupt or truncated compressed file, a read
    /// error): the report covers the lines before it; or why the file could not be opened
    /// (`cannot open: …`, the report is empty).
    error: Option<String>,
    /// Bytes of the input a repaired copy keeps.
    #[serde(skip)]
    keep: u64,
    /// Whether the repaired copy gets a `\n` after the kept bytes (an unterminated record).
    #[serde(skip)]
    add_newline: bool,
    /// The holes a repaired copy leaves out, as `(offset, bytes)` in the order of the file,
    /// adjacent ones merged (a run of lines of zeros is one): the zeros at the start of a
    /// line, or the whole line when nothing but whitespace follows them.
    #[serde(skip)]
    holes: Vec<(u64, u64)>,
    /// Lines with zeros at their start, and of them those that held nothing else.
    #[serde(skip)]
    hole_lines: (u64, u64),
    /// A last line without a `\n` longer than `--max-line`: its number and length (not read,
    /// so whether it is torn is not known).
    #[serde(skip)]
    long_last_line: Option<(u64, u64)>,
    /// The file could not be opened: in the JSON report with its `error`, no summary line in
    /// the text one (stderr said it).
    #[serde(skip)]
    unopened: bool,
}

impl FileReport {
    /// A hole of `len` bytes at `offset` for the repaired copy to leave out; `whole`: the
    /// line held nothing else.
    fn hole(&mut self, offset: u64, len: u64, whole: bool) {
        self.hole_lines.0 += 1;
        self.hole_lines.1 += u64::from(whole);
        match self.holes.last_mut() {
            Some((at, n)) if *at + *n == offset => *n += len,
            _ => self.holes.push((offset, len)),
        }
    }

    fn problem(&mut self, line: u64, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { line, message });
        }
    }
}

/// The reports of the files checked together (read as one log), and the locations of their
/// lines: a line's location is its file's index in the high bits and its number in the low
/// `shift` bits, as many as the files leave (all 64 of one file: its line numbers), so that a
/// task's records and problems may be in any of the files.
struct Reports {
    files: Vec<FileReport>,
    /// Bits of a location for the line number.
    shift: u32,
}

impl Reports {
    fn new(files: Vec<FileReport>) -> Self {
        // (The bits the largest index needs are left out: none for one file.)
        let shift = (files.len().saturating_sub(1) as u64).leading_zeros();
        Reports { files, shift }
    }

    /// The location of line `no` of file `file`.
    fn loc(&self, file: usize, no: u64) -> u64 {
        (file as u64).checked_shl(self.shift).unwrap_or(0) | no
    }

    /// The file and line number of location `at`.
    fn split(&self, at: u64) -> (usize, u64) {
        let file = at.checked_shr(self.shift).unwrap_or(0);
        let no = at & u64::MAX.checked_shr(64 - self.shift).unwrap_or(0);
        (file as usize, no)
    }

    /// The report of the file of location `at`.
    fn file(&mut self, at: u64) -> &mut FileReport {
        let file = self.split(at).0;
        &mut self.files[file]
    }

    /// A problem at location `at`.
    fn problem(&mut self, at: u64, message: String) {
        let (file, no) = self.split(at);
        self.files[file].problem(no, message);
    }

    /// Location `at` in a problem at `here`: `line N`, or `line N of FILE` in another file.
    fn line(&self, at: u64, here: u64) -> String {
        let (file, no) = self.split(at);
        if file == self.split(here).0 {
            format!("line {no}")
        } else {
            format!("line {no} of {}", sanitize(&self.files[file].file))
        }
    }
}

struct End {
    at: String,
    pos: u64,
    line: u64,
}

/// The records of a task that share a level prefix (an action's own records and those of
/// the actions inside it); the groups of a task form a tree, the prefix's parts its edges
/// (its [`Slot`]s). Small: a level may have a million parts, each a group.
#[derive(Default)]
struct Group {
    start: Option<Box<(String, u64)>>,
    end: Option<Box<End>>,
}

/// A position in a group: `(group, position)` in [`TaskState::slots`].
#[derive(Clone, Copy)]
struct Slot {
    /// The first line with a record at it or inside it.
    first_line: u64,
    /// The line of the group's own record there (not a child action's); 0: none.
    own_line: u64,
    /// The group one level deeper (the group's prefix followed by this position); 0: none
    /// (group 0 is the task's own, nobody's child).
    child: u32,
}

/// A task being checked.
struct TaskState {
    last_ts: f64,
    last_ts_line: u64,
    /// The groups; `groups[0]` is the task's own (the empty prefix).
    groups: Vec<Group>,
    /// The positions of every group, in order: `(group, position)`.
    slots: BTreeMap<(u32, u64), Slot>,
    /// Lines of records already reported as coming after the end of their action.
    after_end: HashSet<u64>,
    /// The groups with a start at a position other than the first (reported): their
    /// missing start is the file's contradiction, not a record missing from it.
    misplaced_start: HashSet<u32>,
    first_line: u64,
    last_line: u64,
    /// When its last record came (a count of records): in [`Checker::by_last`].
    last_seq: u64,
}

impl TaskState {
    fn new(line: u64, seq: u64) -> Self {
        TaskState {
            last_ts: f64::NEG_INFINITY,
            last_ts_line: 0,
            groups: vec![Group::default()],
            slots: BTreeMap::new(),
            after_end: HashSet::new(),
            misplaced_start: HashSet::new(),
            first_line: line,
            last_line: line,
            last_seq: seq,
        }
    }

    /// The line of group `g`'s own record at position `p`, if there is one.
    fn own_line(&self, g: u32, p: u64) -> Option<u64> {
        self.slots
            .get(&(g, p))
            .map(|s| s.own_line)
            .filter(|&l| l != 0)
    }

    /// Whether group `g` lacks its start as a dropped or filtered record would leave it:
    /// its first position holds nothing of its own and no start came at another.
    fn start_may_be_missing(&self, g: u32) -> bool {
        self.own_line(g, 1).is_none() && !self.misplaced_start.contains(&g)
    }

    /// The groups of the prefixes of `prefix` that exist: `[0]` (the empty prefix) first,
    /// as far down as they go.
    fn path(&self, prefix: &[u64]) -> Vec<u32> {
        let mut ids = vec![0];
        for p in prefix {
            match self.slots.get(&(*ids.last().expect("never empty"), *p)) {
                Some(slot) if slot.child != 0 => ids.push(slot.child),
                _ => break,
            }
        }
        ids
    }
}

/// What is remembered of a task once it ended (its root action ended, or it was a lone
/// message at `[1]`): enough to report a later record of it.
struct Ended {
    /// The root action's end (`None`: a lone message).
    end: Option<End>,
    /// The line of its record at `[1]`.
    first: Option<u64>,
    last_ts: f64,
    last_ts_line: u64,
}

/// Checks the records of one input, holding a bounded number of tasks: those still open
/// (at most `max_open`: past it the least recently active one is checked as if the input
/// ended there) and the `max_open` that ended last (to report a record after their end).
/// A task is checked and forgotten as soon as it ends.
struct Checker {
    max_open: usize,
    /// `--filtered`: records missing from their tasks are no problem.
    filtered: bool,
    open: HashMap<String, TaskState>,
    /// Open tasks by when their last record came: the least recently active first.
    by_last: BTreeMap<u64, String>,
    /// Records seen so far (the lines of several files are no order).
    seq: u64,
    ended: HashMap<String, Ended>,
    /// The tasks in `ended`, the oldest first.
    ended_order: VecDeque<String>,
    /// A task was forgotten (past `max_open`): a later record of it starts a new task,
    /// whose start may be earlier in the input, not missing from it.
    forgot: bool,
}

impl Checker {
    fn new(max_open: usize, filtered: bool) -> Self {
        Checker {
            max_open: max_open.max(1),
            filtered,
            open: HashMap::new(),
            by_last: BTreeMap::new(),
            seq: 0,
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            forgot: false,
        }
    }

    /// Checks the record at location `line` (see [`Reports`]).
    fn record(&mut self, rep: &mut Reports, line: u64, rec: Record) {
        check_dur(rep, line, &rec);
        self.seq += 1;
        let seq = self.seq;
        let counts = &mut rep.file(line).records;
        match &rec.kind {
            Kind::Message { .. } => counts.messages += 1,
            Kind::Action { st, .. } => match st {
                Status::Started => counts.started += 1,
                Status::Succeeded => counts.succeeded += 1,
                Status::Failed => counts.failed += 1,
            },
        }
        if let Some(ended) = self.ended.get_mut(&rec.tid) {
            late_record(rep, ended, line, &rec);
            return;
        }
        let task = match self.open.get_mut(&rec.tid) {
            Some(task) => {
                let tid = self.by_last.remove(&task.last_seq).expect("indexed");
                task.last_line = line;
                task.last_seq = seq;
                self.by_last.insert(seq, tid);
                task
            }
            None => {
                // (Counted in the file of its first record.)
                rep.file(line).tasks += 1;
                self.by_last.insert(seq, rec.tid.clone());
                self.open
                    .entry(rec.tid.clone())
                    .or_insert(TaskState::new(line, seq))
            }
        };
        let lone = task.first_line == line && rec.lvl == [1] && rec.action_type().is_none();
        let root_end = on_record(rep, task, line, &rec);
        if lone || root_end {
            let task = self.open.remove(&rec.tid).expect("open");
            self.by_last.remove(&task.last_seq);
            finish_task(rep, &rec.tid, &task, self.filtered, self.forgot);
            let first = task.own_line(0, 1);
            let root = &task.groups[0];
            let end = root.end.as_ref().map(|e| End {
                at: e.at.clone(),
                pos: e.pos,
                line: e.line,
            });
            self.ended.insert(
                rec.tid.clone(),
                Ended {
                    end,
                    first,
                    last_ts: task.last_ts,
                    last_ts_line: task.last_ts_line,
                },
            );
            self.ended_order.push_back(rec.tid);
            if self.ended_order.len() > self.max_open {
                let old = self.ended_order.pop_front().expect("not empty");
                self.forgot = true;
                self.ended.remove(&old);
            }
        } else if self.open.len() > self.max_open {
            // (Never the task of this record: its last record is the newest.)
            self.evict(rep, line);
        }
    }

    /// Too many tasks open: the least recently active one is checked as if the input ended
    /// at `line`, and forgotten.
    fn evict(&mut self, rep: &mut Reports, line: u64) {
        let Some((_, tid)) = self.by_last.pop_first() else {
            return;
        };
        let task = self.open.remove(&tid).expect("indexed");
        self.forgot = true;
        let last = rep.line(task.last_line, line);
        // (In a filtered file a task whose end was filtered out stays open until then.)
        if !self.filtered {
            rep.problem(
                line,
                format!(
                    "more than {} tasks open at once (--max-open-tasks): task {} (last record on {last}) is checked as it is so far; a later record of it starts a new task",
                    self.max_open,
                    sanitize(&tid)
                ),
            );
        }
        finish_task(rep, &tid, &task, self.filtered, self.forgot);
    }

    /// The end of the input: the open tasks are checked, in the order they began.
    fn finish(&mut self, rep: &mut Reports) {
        let mut open: Vec<(String, TaskState)> = self.open.drain().collect();
        open.sort_by_key(|(_, t)| t.first_line);
        for (tid, task) in &open {
            finish_task(rep, tid, task, self.filtered, self.forgot);
        }
        self.by_last.clear();
    }
}

/// A record's `dur`: the library writes one on an action's end only, and never negative
/// (it is measured on a monotonic clock).
fn check_dur(rep: &mut Reports, line: u64, rec: &Record) {
    let Some(dur) = rec.dur else {
        return;
    };
    let tid = sanitize(&rec.tid);
    let only = "only an action's end has a duration";
    match &rec.kind {
        Kind::Message { .. } => {
            rep.problem(line, format!("\"dur\" on a message in task {tid}: {only}"));
        }
        Kind::Action { at, st } if *st == Status::Started => rep.problem(
            line,
            format!(
                "\"dur\" on a started record of action {} in task {tid}: {only}",
                sanitize(at)
            ),
        ),
        Kind::Action { .. } if dur < 0.0 => rep.problem(
            line,
            format!("\"dur\" is negative ({dur}) in task {tid}: a duration never is"),
        ),
        Kind::Action { .. } => {}
    }
}

/// A record's `ts` against the latest of its task so far (at `last_line`): going backwards is
/// a problem, else it becomes the latest.
fn check_ts(
    rep: &mut Reports,
    line: u64,
    tid: &str,
    ts: f64,
    last_ts: &mut f64,
    last_line: &mut u64,
) {
    if ts < *last_ts {
        let last = rep.line(*last_line, line);
        rep.problem(
            line,
            format!("ts goes backwards in task {tid}: {ts} after {last_ts} ({last})"),
        );
    } else {
        *last_ts = ts;
        *last_line = line;
    }
}

/// A record of a task that ended (and was forgotten) earlier in the input.
fn late_record(rep: &mut Reports, ended: &mut Ended, line: u64, rec: &Record) {
    let tid = sanitize(&rec.tid);
    let lt = level_text(&rec.lvl);
    check_ts(
        rep,
        line,
        &tid,
        rec.ts,
        &mut ended.last_ts,
        &mut ended.last_ts_line,
    );
    let first = ended.first.filter(|_| rec.lvl == [1]);
    let first = first.or(ended
        .end
        .as_ref()
        .filter(|e| rec.lvl == [e.pos])
        .map(|e| e.line));
    if let Some(first) = first {
        let first = rep.line(first, line);
        rep.problem(
            line,
            format!("duplicate task level {lt} in task {tid} (first on {first})"),
        );
        return;
    }
    match &ended.end {
        None => {
            let first = rep.line(ended.first.unwrap_or(0), line);
            rep.problem(
                line,
                format!(
                    "record {lt} in task {tid} comes after the task's only record, a message at [1] ({first})"
                ),
            );
        }
        Some(end) => {
            let ended_on = rep.line(end.line, line);
            match &rec.kind {
                Kind::Action { at, st } if *st != Status::Started && rec.lvl.len() == 1 => rep
                    .problem(
                        line,
                        format!(
                            "second end of action {} at {lt} (it ended on {ended_on})",
                            sanitize(at)
                        ),
                    ),
                _ => rep.problem(
                    line,
                    format!(
                        "record {lt} comes after the end of its action {} ([{}], {ended_on})",
                        sanitize(&end.at),
                        end.pos
                    ),
                ),
            }
        }
    }
}

/// Checks one record of an open task; true when it is the end of the task's root action.
fn on_record(rep: &mut Reports, task: &mut TaskState, line: u64, rec: &Record) -> bool {
    let tid = sanitize(&rec.tid);
    let lvl = &rec.lvl;
    let n = lvl.len();
    let lt = level_text(lvl);
    check_ts(
        rep,
        line,
        &tid,
        rec.ts,
        &mut task.last_ts,
        &mut task.last_ts_line,
    );
    // The groups of the prefixes lvl[..i] that exist (ids[i] for lvl[..i]).
    let mut ids = task.path(&lvl[..n - 1]);
    if ids.len() == n {
        if let Some(first) = task.own_line(ids[n - 1], lvl[n - 1]) {
            let first = rep.line(first, line);
            rep.problem(
                line,
                format!("duplicate task level {lt} in task {tid} (first on {first})"),
            );
            return false;
        }
    }
    // A record after the end of an action it is inside (innermost first).
    for i in (0..ids.len()).rev() {
        if i == n - 1 && rec.is_end() {
            continue; // a second end: reported below
        }
        // (An end recorded is an earlier record's: this one's comes below.)
        if let Some(end) = &task.groups[ids[i] as usize].end {
            rep.problem(
                line,
                format!(
                    "record {lt} comes after the end of its action {} ({}, {})",
                    sanitize(&end.at),
                    level_text_then(&lvl[..i], Some(end.pos)),
                    rep.line(end.line, line)
                ),
            );
            task.after_end.insert(line);
            break;
        }
    }
    for i in 0..n {
        if i == ids.len() {
            let g = u32::try_from(task.groups.len()).expect("fewer groups than lines of 4 GiB");
            task.groups.push(Group::default());
            task.slots
                .get_mut(&(ids[i - 1], lvl[i - 1]))
                .expect("made at i - 1")
                .child = g;
            ids.push(g);
        }
        let slot = task.slots.entry((ids[i], lvl[i])).or_insert(Slot {
            first_line: line,
            own_line: 0,
            child: 0,
        });
        if i == n - 1 {
            slot.own_line = line;
        }
    }
    let g = ids[n - 1];
    let group = &mut task.groups[g as usize];
    let Kind::Action { at, st } = &rec.kind else {
        return false;
    };
    let at_s = sanitize(at);
    if *st == Status::Started {
        if lvl[n - 1] != 1 {
            task.misplaced_start.insert(g);
            rep.problem(
                line,
                format!(
                    "start of action {at_s} at {lt} is not the first position of its action (…,1)"
                ),
            );
        } else {
            group.start = Some(Box::new((at.clone(), line)));
        }
    } else if let Some(prev) = &group.end {
        let ended_on = rep.line(prev.line, line);
        rep.problem(
            line,
            format!("second end of action {at_s} at {lt} (it ended on {ended_on})"),
        );
    } else {
        group.end = Some(Box::new(End {
            at: at.clone(),
            pos: lvl[n - 1],
            line,
        }));
        return n == 1;
    }
    false
}

/// The problems of a task's tree as a whole (starts, ends, gaps), once it ended or the
/// input did. The groups are visited in the order of their prefixes, without recursion.
/// `filtered` (`--filtered`): the problems that only say a record is missing — a gap, an
/// end or records without their action's start, an action without its end — are left out.
/// `forgot`: tasks were forgotten past `--max-open-tasks`, so a missing start may be earlier
/// in the input (the task started again), which its problem says.
fn finish_task(rep: &mut Reports, tid: &str, task: &TaskState, filtered: bool, forgot: bool) {
    // A problem that a record below the file's level filter would explain.
    let missing_record = |rep: &mut Reports, line: u64, message: String| {
        if !filtered {
            rep.problem(line, message);
        }
    };
    let tid_s = sanitize(tid);
    let mut incomplete = false;
    // (group, its prefix's length, the prefix's last part, whether an action around it
    // ended, whether its parent group belongs to no started action: then that was
    // reported, not again for each group inside it)
    let mut stack = vec![(0u32, 0usize, 0u64, false, false)];
    let mut q: Vec<u64> = Vec::new();
    while let Some((id, len, part, closed_above, orphan_above)) = stack.pop() {
        q.truncate(len.saturating_sub(1));
        if len > 0 {
            q.push(part);
        }
        let g = &task.groups[id as usize];
        let slots = || {
            task.slots
                .range((id, 0)..=(id, u64::MAX))
                .map(|(&(_, p), s)| (p, s))
        };
        let closed = closed_above || g.end.is_some();
        let at_level = |p: u64| level_text_then(&q, Some(p));
        let mut orphan = false;
        // What a missing start means, when a missing record explains it.
        let means = if task.start_may_be_missing(id) {
            let earlier = if forgot { FORGOTTEN_MEANS } else { "" };
            format!("; {GAP_MEANS}{earlier}")
        } else {
            String::new()
        };
        match &g.start {
            None => {
                if let Some(end) = &g.end {
                    missing_record(
                        rep,
                        end.line,
                        format!(
                            "end of action {} at {} without a start (no started record at {}{means})",
                            sanitize(&end.at),
                            at_level(end.pos),
                            at_level(1)
                        ),
                    );
                } else if !(q.is_empty()
                    && slots().nth(1).is_none()
                    && task.own_line(0, 1).is_some())
                {
                    orphan = true;
                    if !orphan_above {
                        let first_line = slots().map(|(_, s)| s.first_line).min().unwrap_or(0);
                        missing_record(
rep,
                            first_line,
                            format!(
                                "records at {} in task {tid_s} belong to no started action (nothing started at {}{means})",
                                at_level(slots().next().map_or(1, |(p, _)| p)),
                                at_level(1)
                            ),
                        );
                    }
                }
            }
            Some(start) => {
                let (start_at, start_line) = &**start;
                let start_s = sanitize(start_at);
                if let Some(end) = &g.end {
                    if &end.at != start_at {
                        let started = rep.line(*start_line, end.line);
                        rep.problem(
                            end.line,
                            format!(
                                "end of action {} at {} does not match its start {start_s} ({started})",
                                sanitize(&end.at),
                                at_level(end.pos)
                            ),
                        );
                    }
                    let after = task.slots.range((
                        Bound::Excluded((id, end.pos)),
                        Bound::Included((id, u64::MAX)),
                    ));
                    for (&(_, p), &Slot { first_line: l, .. }) in after {
                        if !task.after_end.contains(&l) {
                            let ended_on = rep.line(end.line, l);
                            rep.problem(
                                l,
                                format!(
                                    "record at {} is after the end of its action {start_s} ({}, {ended_on})",
                                    at_level(p),
                                    at_level(end.pos)
                                ),
                            );
                        }
                    }
                } else if closed {
                    missing_record(
rep,
                        *start_line,
                        format!(
                            "action {start_s} at {} in task {tid_s} has no end record, but an action around it ended",
                            at_level(1)
                        ),
                    );
                } else {
                    incomplete = true;
                }
                if closed {
                    let mut expect = 1;
                    for (p, &Slot { first_line: l, .. }) in slots() {
                        if p > expect {
                            let missing = if p - expect == 1 {
                                at_level(expect)
                            } else {
                                format!("{} to {}", at_level(expect), at_level(p - 1))
                            };
                            missing_record(
rep,
                                l,
                                format!(
                                    "gap in the task levels of task {tid_s}: {missing} missing before {} ({GAP_MEANS})",
                                    at_level(p)
                                ),
                            );
                        }
                        expect = p.saturating_add(1); // (the last position: nothing after it)
                    }
                }
            }
        }
        let children: Vec<(u64, u32)> = slots()
            .filter(|(_, s)| s.child != 0)
            .map(|(p, s)| (p, s.child))
            .collect();
        stack.extend(
            children
                .into_iter()
                .rev()
                .map(|(p, c)| (c, len + 1, p, closed, orphan)),
        );
    }
    if incomplete {
        // (Counted in the file of its first record, as the task is.)
        rep.file(task.first_line).incomplete_tasks += 1;
    }
}

/// Checks the inputs as one log (see [`record::for_each_merged`]), holding at most
/// `max_open` open tasks (see [`Checker`]): input `(f, r)` is the file of `reps.files[f]`.
/// Returns the errors that stopped inputs, with the report's index and how far it was read
/// (its report covers the lines before; the other inputs are read on).
fn check_inputs<R: Read>(
    inputs: Vec<(usize, R)>,
    reps: &mut Reports,
    max_open: usize,
    max_line: u64,
    filtered: bool,
    interleave: bool,
) -> Vec<(usize, io::Error, record::ReadSoFar)> {
    let mut checker = Checker::new(max_open, filtered);
    let max = usize::try_from(max_line).unwrap_or(usize::MAX);
    let (files, readers): (Vec<usize>, Vec<_>) = inputs
        .into_iter()
        .map(|(f, r)| (f, BufReader::with_capacity(1 << 16, r)))
        .unzip();
    let mut errors = Vec::new();
    let read = record::for_each_merged(
        readers,
        max,
        interleave,
        |i, chunk, parsed| {
            on_chunk(reps, &mut checker, files[i], chunk, parsed, max_line);
            Ok(())
        },
        |i, e, so_far| {
            errors.push((files[i], e, so_far));
            Ok(())
        },
    );
    let Ok(()) = read else {
        unreachable!("neither callback fails");
    };
    checker.finish(reps);
    for rep in &mut reps.files {
        rep.problems.sort_by_key(|p| p.line);
    }
    errors
}

/// One chunk of the input of `reps.files[file]`; `parsed`: its record, if the merge of
/// several inputs parsed it (see [`record::for_each_merged`]).
fn on_chunk(
    reps: &mut Reports,
    checker: &mut Checker,
    file: usize,
    chunk: Chunk<'_>,
    parsed: Option<Record>,
    max_line: u64,
) {
    let rep = &mut reps.files[file];
    match chunk {
        Chunk::Long {
            no,
            offset,
            len,
            terminated,
        } => {
            rep.lines += 1;
            rep.problem(
                no,
                format!(
                    "line of {len} bytes, longer than --max-line ({max_line} bytes): not read as a record"
                ),
            );
            if terminated {
                rep.keep = offset + len + 1;
            } else {
                rep.problem(no, "last line has no trailing newline".to_owned());
                rep.long_last_line = Some((no, len));
            }
        }
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
            // (`bytes` stays the whole line: the repair's offsets count the zeros.)
            let (zeros, record) = record::split_zeros(bytes);
            if zeros > 0 {
                rep.problem(
                    no,
                    format!("{zeros} zero bytes at the start of the line (a hole a crash left), skipped"),
                );
                // A line of nothing else is a hole, last or not: without a newline it is no
                // torn record (nothing follows the zeros to be one).
                if record.iter().all(u8::is_ascii_whitespace) {
                    let len = bytes.len() as u64 + u64::from(terminated);
                    rep.hole(offset, len, true);
                    rep.keep = offset + len;
                    return;
                }
            }
            let parsed = parsed.map_or_else(|| record::parse(record), Ok);
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
                    return;
                }
                rep.problem(no, "last line has no trailing newline".to_owned());
                rep.keep = offset + bytes.len() as u64;
                rep.add_newline = true;
            } else {
                rep.keep = offset + bytes.len() as u64 + 1;
            }
            // (Not for a torn last line: the copy ends before it.)
            if zeros > 0 {
                rep.hole(offset, zeros, false);
            }
            match parsed {
                Err(e) => rep.problem(no, e.to_string()),
                Ok(rec) => {
                    let at = reps.loc(file, no);
                    checker.record(reps, at, rec);
                }
            }
        }
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

/// Writes to `out` the first `rep.keep` bytes of `src` without its holes (then a `\n`
/// if the last record lacks one).
fn repair(src: &Path, out: &Path, rep: &FileReport) -> io::Result<Repair> {
    let mut input = File::open(src)?;
    let mut file = File::create(out)?;
    let changed = || io::Error::other(format!("{} changed while it was repaired", src.display()));
    let (mut at, mut written, mut removed) = (0u64, 0u64, 0u64);
    // The parts between the holes, then the rest up to `keep`.
    let ends = rep.holes.iter().copied().chain([(rep.keep, 0)]);
    for (hole, len) in ends {
        let part = hole - at;
        if io::copy(&mut (&mut input).take(part), &mut file)? != part {
            return Err(changed());
        }
        written += part;
        input.seek(SeekFrom::Current(len as i64))?;
        removed += len;
        at = hole + len;
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
        removed_hole_bytes: removed,
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
    if r.removed_hole_bytes > 0 {
        let (lines, whole) = rep.hole_lines;
        let mut text = format!(
            "removed the zero bytes at the start of {} ({}",
            plural(lines, "line", "lines"),
            plural(r.removed_hole_bytes, "byte", "bytes")
        );
        if whole > 0 {
            text += &format!(
                ", with the {} that held nothing else",
                plural(whole, "line", "lines")
            );
        }
        what.push(text + ")");
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

/// Whether `a` and `b` name the same file: the same path once resolved, or (on Unix) the
/// same device and inode — a hard link, which `File::create` would truncate as the file.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        if a == b {
            return true;
        }
    }
    #[cfg(unix)]
    if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return a.dev() == b.dev() && a.ino() == b.ino();
    }
    false
}

/// Why `out` cannot be created, when that is known before trying: it is a directory, or
/// its directory does not exist (found before FILE is read, not once it was checked).
fn cannot_create(out: &Path) -> Option<String> {
    if out.is_dir() {
        return Some("it is a directory".to_owned());
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty())?;
    if parent.is_dir() {
        return None;
    }
    let what = if parent.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Some(format!(
        "its directory {} {what}",
        sanitize(&parent.display().to_string())
    ))
}

/// Runs `logxide check`: 0 when every file is clean, 1 on problems, 2 on usage errors and
/// unreadable files.
pub fn run(args: &CheckArgs) -> ExitCode {
    let stdin = |f: &&PathBuf| f.as_os_str() == "-";
    if args.files.iter().filter(stdin).count() > 1 {
        return usage_error("`-` (standard input) may be given once: it can be read only once");
    }
    if let Some(f) = record::repeated_file(&args.files) {
        return usage_error(&record::repeated_file_text(f));
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
        if record::is_stream(&args.files[0]) {
            return usage_error(&format!(
                "--repair needs a regular file: {} is not one (it reads FILE again to copy it)",
                sanitize(&args.files[0].display().to_string())
            ));
        }
        if same_file(&args.files[0], out) {
            return usage_error("--repair OUT must not be the FILE being checked");
        }
        if let Some(why) = cannot_create(out) {
            return usage_error(&format!(
                "--repair {}: cannot create it: {why}",
                sanitize(&out.display().to_string())
            ));
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
    let mut files = Vec::new();
    let mut inputs = Vec::new();
    let mut compression = Vec::new();
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
        match opened {
            Ok((input, c)) => {
                inputs.push((files.len(), input));
                compression.push(c);
            }
            Err(e) => {
                say!(
                    "logxide check: {}: {}",
                    sanitize(&path.display().to_string()),
                    sanitize(&e.to_string())
                );
                rep.error = Some(format!("cannot open: {e}"));
                rep.unopened = true;
            }
        }
        files.push(rep);
    }
    let mut reps = Reports::new(files);
    // The input of each report, for its compression.
    let input_of: HashMap<usize, usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (*f, i))
        .collect();
    let errors = check_inputs(
        inputs,
        &mut reps,
        args.max_open_tasks as usize,
        args.max_line,
        args.filtered,
        args.interleave,
    );
    for (f, e, so_far) in errors {
        // The report of the lines read before the error is printed too.
        let text = record::read_error_text(&e, compression[input_of[&f]], so_far);
        say!(
            "logxide check: {}: {}",
            sanitize(&reps.files[f].file),
            sanitize(&text)
        );
        reps.files[f].error = Some(text);
    }
    let mut unreadable = reps.files.iter().any(|r| r.error.is_some());
    if let (Some(out), [rep]) = (&args.repair, &mut reps.files[..]) {
        if rep.error.is_none() {
            let repaired = match rep.long_last_line {
                Some((no, len)) => Err(format!(
                    "the last line (line {no}, {len} bytes) has no newline and is longer than \
                     --max-line ({} bytes): whether it is torn is not known, nothing written \
                     (raise --max-line to repair it)",
                    args.max_line
                )),
                None => repair(&args.files[0], out, rep)
                    .map_err(|e| format!("cannot write {}: {e}", out.display())),
            };
            match repaired {
                Ok(r) => rep.repair = Some(r),
                Err(why) => {
                    say!(
                        "logxide check: --repair: {}: {}",
                        sanitize(&rep.file),
                        sanitize(&why)
                    );
                    rep.repair_error = Some(why);
                    unreadable = true;
                }
            }
        }
    }
    let reports = reps.files;
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
            for rep in reports.iter().filter(|r| !r.unopened) {
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
            say!("logxide check: cannot print: {e}");
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

    /// The report's problems as (line, message).
    fn problems(rep: &FileReport) -> Vec<(u64, &str)> {
        rep.problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect()
    }

    /// The report of `text` checked alone.
    fn check_with(text: &str, max_open: usize, filtered: bool) -> FileReport {
        let mut reps = one();
        let input = vec![(0, text.as_bytes())];
        let errors = check_inputs(input, &mut reps, max_open, 1 << 20, filtered, false);
        assert!(errors.is_empty());
        reps.files.pop().expect("one")
    }

    fn check(text: &str) -> FileReport {
        check_with(text, 100_000, false)
    }

    /// The reports of one file.
    fn one() -> Reports {
        Reports::new(vec![FileReport::default()])
    }

    const GOOD: &str = r#"{"ts":1.0,"tid":"A","lvl":[1],"mt":"info","msg":"alone"}
{"ts":1.0,"tid":"B","lvl":[1],"at":"http","st":"started"}
{"ts":1.1,"tid":"B","lvl":[2],"mt":"info","msg":"in"}
{"ts":1.2,"tid":"B","lvl":[3,1],"at":"db","st":"started"}
{"ts":1.3,"tid":"B","lvl":[3,2],"at":"db","st":"succeeded","dur":0.1}
{"ts":1.5,"tid":"B","lvl":[4],"at":"http","st":"failed","exc":"E","reason":"boom"}
"#;

    /// A location keeps its file and line: one file's line numbers use all 64 bits, several
    /// files' leave the bits of the largest index.
    #[test]
    fn locations_keep_file_and_line() {
        let reports = |n: usize| {
            Reports::new(
                (0..n)
                    .map(|i| FileReport {
                        file: format!("f{i}"),
                        ..FileReport::default()
                    })
                    .collect(),
            )
        };
        let one = reports(1);
        assert_eq!(one.shift, 64);
        assert_eq!(one.split(one.loc(0, u64::MAX)), (0, u64::MAX));
        assert_eq!(one.line(7, 9), "line 7");
        let two = reports(2);
        assert_eq!(two.shift, 63);
        assert_eq!(two.split(two.loc(1, (1 << 63) - 1)), (1, (1 << 63) - 1));
        let many = reports(70_000);
        assert_eq!(many.shift, 64 - 17);
        let (a, b) = (many.loc(69_999, 5), many.loc(3, 5));
        assert_eq!((many.split(a), many.split(b)), ((69_999, 5), (3, 5)));
        assert_eq!(many.line(a, b), "line 5 of f69999");
    }

    /// `dur` is an action end's (the library writes it there only, from a clock that
    /// never goes back): on a start or a message, or negative, it is a problem (view shows
    /// it as the record's duration).
    #[test]
    fn a_duration_only_on_an_end_and_never_negative() {
        let rep = check(
            r#"{"ts":1,"tid":"A","lvl":[1],"at":"x","st":"started","dur":5}
{"ts":2,"tid":"A","lvl":[2],"mt":"info","msg":"m","dur":0.5}
{"ts":3,"tid":"A","lvl":[3],"at":"x","st":"succeeded","dur":-1}
{"ts":4,"tid":"B","lvl":[1],"at":"y","st":"started"}
{"ts":5,"tid":"B","lvl":[2],"at":"y","st":"failed","dur":0}
"#,
        );
        assert_eq!(
            problems(&rep),
            [
                (1, "\"dur\" on a started record of action x in task A: only an action's end has a duration"),
                (2, "\"dur\" on a message in task A: only an action's end has a duration"),
                (3, "\"dur\" is negative (-1) in task A: a duration never is"),
            ]
        );
        assert_eq!((rep.tasks, rep.incomplete_tasks), (2, 0));
    }

    /// An empty task id (the library never writes one: it names no task, and every such
    /// record would be one task) is a problem, in both layouts, and the line no record.
    #[test]
    fn an_empty_task_id_is_a_problem() {
        let rep = check(
            r#"{"ts":1,"tid":"","lvl":[1],"mt":"info","msg":"x"}
{"timestamp":1,"task_uuid":"","task_level":[1],"message_type":"info"}
"#,
        );
        assert_eq!(
            problems(&rep),
            [
                (1, "\"tid\" is an empty string, not a task id"),
                (2, "\"task_uuid\" is an empty string, not a task id"),
            ]
        );
        assert_eq!((rep.tasks, rep.records.messages), (0, 0));
    }

    /// `--filtered`: a gap, an inner action without its end and tasks held open past
    /// `--max-open-tasks` (their ends filtered out) are no problems; without it they are.
    #[test]
    fn filtered_files_miss_records_without_problems() {
        let run = |text: &str, max_open: usize, filtered: bool| {
            check_with(text, max_open, filtered)
                .problems
                .iter()
                .map(|p| p.message.split(':').next().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        };
        let gap = GOOD.replace(
            "{\"ts\":1.1,\"tid\":\"B\",\"lvl\":[2],\"mt\":\"info\",\"msg\":\"in\"}\n",
            "",
        );
        let no_inner_end = GOOD.replace(
            "{\"ts\":1.3,\"tid\":\"B\",\"lvl\":[3,2],\"at\":\"db\",\"st\":\"succeeded\",\"dur\":0.1}\n",
            "",
        );
        let open: String = (0..4)
            .map(|i| format!("{{\"ts\":1.0,\"tid\":\"T{i}\",\"lvl\":[2],\"mt\":\"warning\",\"msg\":\"w\"}}\n"))
            .collect();
        assert_eq!(run(&gap, 100, false), ["gap in the task levels of task B"]);
        assert_eq!(run(&no_inner_end, 100, false).len(), 1);
        assert_eq!(
            run(&open, 2, false).len(),
            2 + 4,
            "evictions, then no start"
        );
        for text in [&gap, &no_inner_end, &open] {
            assert_eq!(run(text, 2, true), Vec::<String>::new(), "{text}");
        }
    }

    /// A missing start that a missing record explains (its position is empty) says what a
    /// missing record means, as a gap does; one the file contradicts (a start at another
    /// position, another record at the first) does not.
    #[test]
    fn a_missing_start_says_what_a_missing_record_means() {
        let rep = check(
            r#"{"ts":1,"tid":"A","lvl":[2],"mt":"info","msg":"start dropped"}
{"ts":1,"tid":"A","lvl":[3],"at":"x","st":"succeeded"}
{"ts":1,"tid":"B","lvl":[2],"mt":"info","msg":"start dropped"}
{"ts":1,"tid":"C","lvl":[2],"at":"x","st":"started"}
{"ts":1,"tid":"C","lvl":[3],"at":"x","st":"succeeded"}
{"ts":1,"tid":"D","lvl":[2],"mt":"info","msg":"m"}
{"ts":1,"tid":"D","lvl":[1],"mt":"info","msg":"not a start"}
{"ts":1,"tid":"E","lvl":[1],"at":"x","st":"started"}
{"ts":1,"tid":"E","lvl":[2,1],"mt":"info","msg":"not a start"}
{"ts":1,"tid":"E","lvl":[2,2],"at":"y","st":"succeeded"}
{"ts":1,"tid":"E","lvl":[3],"at":"x","st":"succeeded"}
"#,
        );
        let means = format!("; {GAP_MEANS}");
        assert_eq!(
            problems(&rep),
            [
                (2, format!("end of action x at [3] without a start (no started record at [1]{means})").as_str()),
                (3, format!("records at [2] in task B belong to no started action (nothing started at [1]{means})").as_str()),
                (4, "start of action x at [2] is not the first position of its action (…,1)"),
                (5, "end of action x at [3] without a start (no started record at [1])"),
                (6, "records at [1] in task D belong to no started action (nothing started at [1])"),
                (10, "end of action y at [2,2] without a start (no started record at [2,1])"),
            ]
        );
    }

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

    /// However many tasks a file has, the checker holds at most `max_open` open ones and
    /// remembers the `max_open` that ended last.
    #[test]
    fn checker_holds_a_bounded_number_of_tasks() {
        let mut rep = one();
        let mut c = Checker::new(100, false);
        let mut line = 0;
        let mut rec = |c: &mut Checker, rep: &mut Reports, text: String| {
            line += 1;
            c.record(rep, line, record::parse(text.as_bytes()).unwrap());
            assert!(c.open.len() <= 100 && c.ended.len() <= 100);
            assert_eq!(c.by_last.len(), c.open.len());
            assert_eq!(c.ended_order.len(), c.ended.len());
        };
        for i in 0..10_000 {
            rec(
                &mut c,
                &mut rep,
                format!(r#"{{"ts":1,"tid":"E{i}","lvl":[1],"at":"x","st":"started"}}"#),
            );
            rec(
                &mut c,
                &mut rep,
                format!(r#"{{"ts":1,"tid":"O{i}","lvl":[1],"at":"x","st":"started"}}"#),
            );
            rec(
                &mut c,
                &mut rep,
                format!(r#"{{"ts":1,"tid":"M{i}","lvl":[1],"mt":"info"}}"#),
            );
            rec(
                &mut c,
                &mut rep,
                format!(r#"{{"ts":2,"tid":"E{i}","lvl":[2],"at":"x","st":"succeeded"}}"#),
            );
        }
        // Each O is evicted by the next but 99: a lone message or an ended task evicts none.
        assert_eq!(c.open.len(), 99);
        assert_eq!(rep.files[0].problem_count, 10_000 - 99);
        assert_eq!(rep.files[0].incomplete_tasks, 10_000 - 99);
        c.finish(&mut rep);
        assert!(c.open.is_empty() && c.by_last.is_empty());
        assert_eq!(rep.files[0].tasks, 30_000);
        assert_eq!(rep.files[0].incomplete_tasks, 10_000);
    }

    /// A level's every part is a group and a slot: they stay small (the maps a group held
    /// made a 2 MB line of a million parts take 500 MB).
    #[test]
    fn groups_and_slots_are_small() {
        assert_eq!(std::mem::size_of::<Group>(), 16);
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        let mut rep = one();
        let mut task = TaskState::new(1, 1);
        let lvl = vec![2; 1000];
        let rec =
            record::parse(format!(r#"{{"ts":1,"tid":"T","lvl":{lvl:?},"mt":"info"}}"#).as_bytes())
                .unwrap();
        on_record(&mut rep, &mut task, 1, &rec);
        assert_eq!((task.groups.len(), task.slots.len()), (1000, 1000));
    }

    #[test]
    fn torn_and_nul_tail() {
        let r = check(&format!("{GOOD}{{\"ts\":1.6,\"ti\0\0\0"));
        assert_eq!(r.torn_last_line.as_ref().unwrap().bytes, 13);
        assert_eq!(r.nul_tail.as_ref().unwrap().bytes, 3);
        assert_eq!(r.keep, GOOD.len() as u64);
    }
}
