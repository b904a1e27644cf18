//! `logxide view`: logxide files rendered as task trees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use logxide::Level;

use crate::record::{
    self, dur_text, parse_size, parse_time, sanitize, sanitize_bytes, time_text, value_text, Chunk,
    Kind, Record, Status,
};

/// How long `--follow` waits between looks at the files.
const POLL: Duration = Duration::from_millis(100);
/// Characters of a bad line shown.
const BAD_LINE_CHARS: usize = 100;

/// When to color the output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    /// When standard output is a terminal, NO_COLOR is unset or empty and TERM is set and not
    /// `dumb`
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

/// The tasks `--task` selects: one id, or (`ID*`) the ids starting with ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskSel {
    /// Exactly this id.
    Exact(String),
    /// The ids starting with this (`ID*`; an id is a process prefix and a counter, so an
    /// exact id is a prefix of others: `P.1` of `P.10`).
    Prefix(String),
}

impl TaskSel {
    /// Whether `tid` is selected.
    fn matches(&self, tid: &str) -> bool {
        match self {
            TaskSel::Exact(id) => tid == id,
            TaskSel::Prefix(p) => tid.starts_with(p.as_str()),
        }
    }
}

fn parse_task(s: &str) -> Result<TaskSel, String> {
    if s.is_empty() {
        return Err(
            "an empty task id selects no task (ID* selects the ids starting with ID)".into(),
        );
    }
    Ok(match s.strip_suffix('*') {
        Some(prefix) => TaskSel::Prefix(prefix.to_owned()),
        None => TaskSel::Exact(s.to_owned()),
    })
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// Show logxide files as task trees
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Tasks are printed in the order they first appear, one line per record: action type and\n\
status, duration, then fields key=value. Tasks without their end record are marked (incomplete);\n\
lines that are not records are shown as `! line N: not a record: ...`; zero bytes at the start of\n\
a line (a hole a crash left) are skipped, with a line saying so. Control characters in the\n\
file are shown escaped (\\x1b, \\n, \\u{2028}), never sent to the terminal. Rotated files compressed\n\
with gzip or zstd (app.<stamp>.log.gz, .zst) are decompressed.\n\n\
Several FILEs are read as one log, so that a task may begin in one and go on in another: a task's\n\
records from all of them make one tree. The files are taken whole, one after another, in the\n\
order of their first records' ts (the first FILE given on a tie), as the files of a rotated set\n\
were written, in whatever order they are given; with --interleave (files written at the same\n\
time, by processes that continue each other's tasks) the records of all are taken in the order\n\
of their ts, each file's in its own order (as good as the times: a record whose thread was\n\
preempted between its call and the queue may be taken before another file's earlier records).\n\
A line that is not a record is shown as `! FILE: line N: ...`; a file given twice (or a link to\n\
it) is a usage error. With --follow, each file's lines are printed as they come, under a\n\
`==> FILE <==` line.\n\n\
--follow prints the whole file first, then every complete line appended, with its task id.\n\
With --action, a task's lines are held until it contains that action (then printed, and its\n\
later lines as they come, until its root action ends; a record of the action outside --since or\n\
--until counts too) or its root action ends without it (then forgotten); a lone message is\n\
never held. Past --max-buffer of held lines and remembered tasks, the oldest are dropped (held\n\
tasks by their first line, remembered ones by their latest), with a message on stderr.\n\n\
Exit status: 0, or 2 on a usage error or when a file cannot be read; a file unreadable part way\n\
(a truncated or corrupt .gz or .zst) has the tasks read before the error shown, then the error."
)]
pub struct ViewArgs {
    /// Files to show (gzip and zstd files, known by their first bytes, are decompressed; `-`:
    /// standard input, read as it is, not decompressed)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Keep reading lines appended to the files, like `tail -f` (a truncated file is read
    /// again from its start; a file moved away is read on until a new file is under its
    /// name, which is then read); records are printed as they arrive, indented by their depth.
    /// Of several FILEs, one that cannot be opened at the start is reported on stderr and
    /// read once it can be (it appears), the others followed meanwhile, as `tail -f` does;
    /// a directory is not followed (nor a FILE once its name is one); if no FILE can be
    /// followed, exit 2. A FIFO (a shell's `<(cmd)`) is read to its end, as
    /// `-` is, and must be the only FILE
    #[arg(short, long)]
    pub follow: bool,
    /// Several FILEs written at the same time (processes that continue each other's tasks):
    /// their records are taken in the order of their ts, not file after file
    #[arg(long, conflicts_with = "follow")]
    pub interleave: bool,
    /// Color failed actions and errors (auto: on a terminal, unless NO_COLOR is set and not
    /// empty or TERM is `dumb` or unset; always and never whatever the environment)
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Hide messages below LEVEL (debug, info, success, note, warning or warn, error,
    /// critical, or a level's number: 10, 20, 25, 26, 30, 40, 50); a message's level is its
    /// type when that is a level's name as written (lower case); actions are always shown
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub level: Option<Level>,
    /// Only the task with id ID; ID* (quoted for the shell): the tasks whose id starts with
    /// ID (`--task 'abcd1234.*'`: the tasks of one process)
    #[arg(long, value_name = "ID", value_parser = parse_task)]
    pub task: Option<TaskSel>,
    /// Only tasks containing an action of type TYPE
    #[arg(long, value_name = "TYPE")]
    pub action: Option<String>,
    /// Only tasks with a record at or after TIME, each shown whole (Unix seconds or RFC 3339,
    /// e.g. 2026-11-23T10:00:00Z or 2026-11-23T11:00:00+01:00); with --follow, only the
    /// records at or after TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_negative_numbers = true)]
    pub since: Option<f64>,
    /// Only tasks with a record at or before TIME, each shown whole (not before --since:
    /// that is a usage error); with --follow, only the records at or before TIME
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_negative_numbers = true)]
    pub until: Option<f64>,
    /// Bytes of record lines kept in memory to put each task's records together (a number,
    /// or with K, M or G: KiB, MiB, GiB). Within it the output is that of the whole input at
    /// once; past it, the oldest tasks are printed as they are so far (a part that by itself
    /// does not match --action, --since or --until is left out, and stderr says so). With --follow
    /// --action: the lines held of tasks not yet known to contain the action and the tasks
    /// remembered as containing it; past it, the oldest of both are dropped down to half of it
    /// (held tasks by their first line, remembered ones by their latest), and stderr says how
    /// many
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_size)]
    pub max_buffer: u64,
    /// The longest line read (a number of bytes, or with K, M or G); a longer one is skipped
    /// without being held in memory, and shown as `! line N: … longer than --max-line`. The
    /// default is the library's default queue bound, which no record it writes exceeds
    #[arg(long, value_name = "SIZE", default_value = record::DEFAULT_MAX_LINE, value_parser = parse_size)]
    pub max_line: u64,
}

/// Whether `file` is `-`, standard input.
fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

impl ViewArgs {
    /// `--max-line` in bytes.
    fn max_line(&self) -> usize {
        usize::try_from(self.max_line).unwrap_or(usize::MAX)
    }
}

/// Terminal colors, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, sgr: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

const RED_BOLD: &str = "1;31";
const YELLOW: &str = "33";
const GREEN: &str = "32";
const BOLD: &str = "1";
const DIM: &str = "2";

/// The level of a message: its type when it is a level's name as the library writes it
/// (`warning`, not `WARN`, `warn` or `30`, which `--level` accepts but are other message
/// types in a file).
fn message_level(rec: &Record) -> Option<Level> {
    match &rec.kind {
        Kind::Message { mt, .. } => Level::ALL.into_iter().find(|l| l.as_str() == mt),
        Kind::Action { .. } => None,
    }
}

fn hidden(rec: &Record, min: Option<Level>) -> bool {
    matches!((message_level(rec), min), (Some(l), Some(m)) if l < m)
}

/// One record as text, without tree guides.
fn record_line(rec: &Record, incomplete: bool, p: Paint) -> String {
    let (mut text, style) = match &rec.kind {
        Kind::Message { mt, msg } => {
            let style = match message_level(rec) {
                Some(Level::Error | Level::Critical) => Some(RED_BOLD),
                Some(Level::Warning) => Some(YELLOW),
                _ => None,
            };
            let t = match msg {
                Some(m) => format!("{}: {}", sanitize(mt), sanitize(m)),
                None => sanitize(mt).into_owned(),
            };
            (t, style)
        }
        Kind::Action { at, st } => {
            let style = match st {
                Status::Failed => Some(RED_BOLD),
                Status::Succeeded => Some(GREEN),
                Status::Started => None,
            };
            (format!("{} {}", sanitize(at), st.name()), style)
        }
    };
    if let Some(d) = rec.dur {
        text.push(' ');
        text.push_str(&dur_text(d));
    }
    let mut line = match style {
        Some(RED_BOLD) => {
            // The whole line stands out, fields (the error's type and text) included.
            for (k, v) in &rec.fields {
                text.push_str(&format!(" {}={}", sanitize(k), sanitize(&value_text(v))));
            }
            return finish(p.wrap(RED_BOLD, &text), incomplete, p);
        }
        Some(sgr) => p.wrap(sgr, &text),
        None => text,
    };
    for (k, v) in &rec.fields {
        line.push_str(&format!(" {}={}", sanitize(k), sanitize(&value_text(v))));
    }
    finish(line, incomplete, p)
}

fn finish(mut line: String, incomplete: bool, p: Paint) -> String {
    if incomplete {
        line.push(' ');
        line.push_str(&p.wrap(YELLOW, "(incomplete)"));
    }
    line
}

/// A line that is not a record, shown (without the `\r` of a CRLF line ending).
fn bad_line(no: u64, bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    format!(
        "! line {no}: not a record: {}",
        sanitize_bytes(bytes, BAD_LINE_CHARS)
    )
}

fn nul_line(no: u64, len: u64) -> String {
    format!("! line {no}: NUL tail ({len} zero bytes) ignored")
}

/// Zero bytes at the start of line `no`, skipped (see [`record::split_zeros`]).
fn zeros_line(no: u64, zeros: u64) -> String {
    format!("! line {no}: {zeros} zero bytes skipped")
}

/// A line longer than `--max-line`, skipped.
fn long_line(no: u64, len: u64, max: u64) -> String {
    format!("! line {no}: {len} bytes, longer than --max-line ({max} bytes): not read")
}

/// One record of a task's tree and the records under it (indices into [`Tree::nodes`]).
struct Node<'a> {
    rec: &'a Record,
    children: Vec<usize>,
    incomplete: bool,
}

/// A task's records as a tree: the nodes in one vector (no recursion to build, print or
/// drop it, however deep its levels go), `roots` the top ones in order.
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    roots: Vec<usize>,
    /// Whether some action in it has no end record.
    incomplete: bool,
}

/// An action's subtree (or the task's top) while [`build`] fills it: the records of one
/// level prefix, the prefix's length `depth`.
#[derive(Default)]
struct Frame<'a> {
    /// The action's start (`…,1`), which the items are printed under.
    head: Option<&'a Record>,
    ended: bool,
    items: Vec<usize>,
}

/// The tree of a task's records: at each level prefix, its records in the order of their
/// positions (a position's own records in the order of the input, then those inside it),
/// an action's records under its start (`…,1`), messages below `min` left out.
///
/// The records sorted by level visit the prefixes depth first; a stack of frames, one per
/// part of the current prefix, holds the subtrees being filled. No recursion, and memory in
/// proportion to the records and the deepest level, however deep the levels go.
fn build<'a>(recs: &[&'a Record], min: Option<Level>) -> Tree<'a> {
    let mut sorted = recs.to_vec();
    sorted.sort_by(|a, b| a.lvl.cmp(&b.lvl)); // stable: equal levels in input order
    let mut nodes: Vec<Node<'a>> = Vec::new();
    let mut incomplete = false;
    // frames[d] holds the records under the prefix path[..d].
    let mut frames: Vec<Frame<'a>> = vec![Frame::default()];
    let mut path: Vec<u64> = Vec::new();
    // Ends the subtree of the deepest frame, adding it to its parent.
    let mut close = |frames: &mut Vec<Frame<'a>>, nodes: &mut Vec<Node<'a>>| {
        let done = frames.pop().expect("above the top frame");
        let parent = frames.last_mut().expect("the top frame stays");
        match done.head {
            Some(rec) => {
                incomplete |= !done.ended;
                nodes.push(Node {
                    rec,
                    children: done.items,
                    incomplete: !done.ended,
                });
                parent.items.push(nodes.len() - 1);
            }
            None => parent.items.extend(done.items),
        }
    };
    for r in sorted {
        let (prefix, pos) = r.lvl.split_at(r.lvl.len() - 1);
        let common = path.iter().zip(prefix).take_while(|(a, b)| a == b).count();
        while path.len() > common {
            close(&mut frames, &mut nodes);
            path.pop();
        }
        for &p in &prefix[common..] {
            path.push(p);
            frames.push(Frame::default());
        }
        let top = frames.last_mut().expect("one per part of the path");
        if pos == [1] && top.head.is_none() && r.is_start() {
            top.head = Some(r);
            continue;
        }
        top.ended |= r.is_end();
        if !hidden(r, min) {
            nodes.push(Node {
                rec: r,
                children: Vec::new(),
                incomplete: false,
            });
            top.items.push(nodes.len() - 1);
        }
    }
    // The task's own frame, under a sentinel that receives its subtree (the root action).
    frames.insert(0, Frame::default());
    while frames.len() > 1 {
        close(&mut frames, &mut nodes);
    }
    let top = frames.pop().expect("the sentinel");
    Tree {
        nodes,
        roots: top.items,
        incomplete,
    }
}

/// Prints the tree with its guides (`├─`, `│`), depth first, without recursion.
fn render(out: &mut dyn Write, tree: &Tree<'_>, p: Paint) -> io::Result<()> {
    let mut prefix = String::new();
    // The lists being printed, each with the next index and the prefix's length before it.
    let mut stack: Vec<(&[usize], usize, usize)> = vec![(&tree.roots, 0, 0)];
    while let Some(top) = stack.last_mut() {
        let (list, i, len) = *top;
        if i == list.len() {
            stack.pop();
            prefix.truncate(len);
            continue;
        }
        top.1 += 1;
        let last = i + 1 == list.len();
        let n = &tree.nodes[list[i]];
        let guide = if last { "└─ " } else { "├─ " };
        writeln!(
            out,
            "{}{}",
            p.wrap(DIM, &format!("{prefix}{guide}")),
            record_line(n.rec, n.incomplete, p)
        )?;
        if !n.children.is_empty() {
            let len = prefix.len();
            prefix.push_str(if last { "   " } else { "│  " });
            stack.push((&n.children, 0, len));
        }
    }
    Ok(())
}

struct Task {
    tid: String,
    recs: Vec<Record>,
}

fn task_shown(t: &Task, args: &ViewArgs) -> bool {
    if let Some(sel) = &args.task {
        if !sel.matches(&t.tid) {
            return false;
        }
    }
    if let Some(at) = &args.action {
        if !t.recs.iter().any(|r| r.action_type() == Some(at.as_str())) {
            return false;
        }
    }
    let first = t.recs.iter().map(|r| r.ts).fold(f64::INFINITY, f64::min);
    let last = t
        .recs
        .iter()
        .map(|r| r.ts)
        .fold(f64::NEG_INFINITY, f64::max);
    args.since.map_or(true, |s| last >= s) && args.until.map_or(true, |u| first <= u)
}

/// The filter a part of a task (printed early, over the budget) fails by itself while the
/// whole task might pass it: `--action` (the action may come later) or `--since`/`--until`
/// (later records may fall in the range); `None` when `--task` leaves it out (so does the
/// rest of the task).
fn part_filter(t: &Task, args: &ViewArgs) -> Option<String> {
    if args.task.as_ref().is_some_and(|sel| !sel.matches(&t.tid)) {
        return None;
    }
    match &args.action {
        Some(at) if !t.recs.iter().any(|r| r.action_type() == Some(at.as_str())) => {
            Some(format!("--action {}", sanitize(at)))
        }
        _ => Some("--since/--until".to_owned()),
    }
}

fn print_task(t: &Task, args: &ViewArgs, p: Paint, out: &mut dyn Write) -> io::Result<()> {
    if !task_shown(t, args) {
        return Ok(());
    }
    let refs: Vec<&Record> = t.recs.iter().collect();
    let tree = build(&refs, args.level);
    let first = t.recs.iter().map(|r| r.ts).fold(f64::INFINITY, f64::min);
    let mut head = format!("{} {}", p.wrap(BOLD, &sanitize(&t.tid)), time_text(first));
    head = finish(head, tree.incomplete, p);
    writeln!(out, "{head}")?;
    render(out, &tree, p)
}

/// One input's items (tasks and notes) in the order they first appear, kept in memory only
/// until they can be printed: the output of the whole input at once, with bounded memory.
///
/// Everything is kept while the lines kept stay within the budget (`--max-buffer`), and
/// printed at the end: every task with all its records. Past the budget, the items at the
/// front are printed and freed — finished tasks (their root action ended, or a lone
/// message) first; if the front task is still unfinished, it too is printed as it is so far
/// (its later records then make a new tree under the same task id).
struct Viewer<'a> {
    args: &'a ViewArgs,
    paint: Paint,
    budget: u64,
    /// Items in order; `queue[0]` has the number `base`.
    queue: VecDeque<Item>,
    base: u64,
    /// Task id → the number of its item, while in the queue.
    index: HashMap<String, u64>,
    /// Bytes of the lines kept.
    kept: u64,
    /// The names of the files read together (escaped): when several are given, the notes
    /// about their lines name them.
    names: Vec<String>,
    /// The file whose chunk is being read (in `names`).
    file: usize,
}

/// A task in the queue: its record lines as read (parsed again when it is printed: a parsed
/// record takes several times the memory of its line).
struct Kept {
    tid: String,
    /// The lines, one after the other, without their `\n`.
    lines: Vec<u8>,
    /// Where each line ends in `lines`.
    ends: Vec<usize>,
    /// Whether its root action ended, or it is a lone message at `[1]`: no more records are
    /// expected (a later one is still put with it while the task is in memory).
    finished: bool,
    /// Bytes counted against the budget.
    cost: u64,
}

impl Kept {
    /// The task with its records parsed.
    fn task(self) -> Task {
        let mut start = 0;
        let recs = self
            .ends
            .iter()
            .map(|&end| {
                let line = &self.lines[start..end];
                start = end;
                record::parse(line).expect("a line kept parsed as a record when it was read")
            })
            .collect();
        Task {
            tid: self.tid,
            recs,
        }
    }
}

enum Item {
    Task(Kept),
    Note(String),
}

impl Item {
    fn bytes(&self) -> u64 {
        match self {
            Item::Task(k) => k.cost,
            Item::Note(s) => s.len() as u64,
        }
    }
}

/// Bytes counted for a task kept besides its lines: its id (also in the index) and the
/// queue's and index's entries.
const TASK_COST: u64 = 128;
/// Bytes counted per line kept besides its bytes (its end offset).
const LINE_COST: u64 = 8;

impl<'a> Viewer<'a> {
    fn new(args: &'a ViewArgs, paint: Paint, budget: u64) -> Self {
        Viewer {
            args,
            paint,
            budget,
            queue: VecDeque::new(),
            base: 0,
            index: HashMap::new(),
            kept: 0,
            names: Vec::new(),
            file: 0,
        }
    }

    /// A note about a line (`! line N: …`) of the file being read: `! FILE: line N: …` when
    /// several are read together.
    fn named(&self, text: String) -> String {
        match (self.names.get(self.file), text.strip_prefix("! ")) {
            (Some(name), Some(rest)) if self.args.files.len() > 1 => format!("! {name}: {rest}"),
            _ => text,
        }
    }

    fn push(&mut self, item: Item) -> u64 {
        self.kept += item.bytes();
        self.queue.push_back(item);
        self.base + self.queue.len() as u64 - 1
    }

    /// Line `no` of the current input; `parsed`: its record, if the merge of several inputs
    /// parsed it (see [`record::for_each_merged`]).
    fn line(
        &mut self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        no: u64,
        bytes: &[u8],
        parsed: Option<Record>,
    ) -> io::Result<()> {
        let (zeros, bytes) = record::split_zeros(bytes);
        if zeros > 0 {
            self.note(out, err, zeros_line(no, zeros))?;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match parsed.map_or_else(|| record::parse(bytes), Ok) {
            Ok(rec) => {
                let cost = bytes.len() as u64 + LINE_COST;
                let root_end = rec.lvl.len() == 1 && rec.is_end();
                match self.index.get(&rec.tid) {
                    Some(&n) => {
                        let Some(Item::Task(k)) = self.queue.get_mut((n - self.base) as usize)
                        else {
                            unreachable!("the index names tasks in the queue");
                        };
                        k.finished |= root_end;
                        k.lines.extend_from_slice(bytes);
                        k.ends.push(k.lines.len());
                        k.cost += cost;
                        self.kept += cost;
                    }
                    None => {
                        let finished = root_end || (rec.lvl == [1] && rec.action_type().is_none());
                        let cost = cost + TASK_COST + 2 * rec.tid.len() as u64;
                        let n = self.push(Item::Task(Kept {
                            tid: rec.tid.clone(),
                            lines: bytes.to_vec(),
                            ends: vec![bytes.len()],
                            finished,
                            cost,
                        }));
                        self.index.insert(rec.tid, n);
                    }
                }
            }
            Err(_) => {
                self.push(Item::Note(self.named(bad_line(no, bytes))));
            }
        }
        if self.kept > self.budget {
            self.spill(out, err)?;
        }
        Ok(())
    }

    /// A line about the input (not a record), in its place among the tasks.
    fn note(&mut self, out: &mut dyn Write, err: &mut dyn Write, text: String) -> io::Result<()> {
        self.push(Item::Note(self.named(text)));
        if self.kept > self.budget {
            self.spill(out, err)?;
        }
        Ok(())
    }

    /// Prints the front item and forgets it. `early`: the input goes on (over the budget),
    /// so an unfinished task is printed as a part: if that part by itself is left out by
    /// `--action`, `--since` or `--until`, `err` says so (the rest of the task may match).
    fn pop(&mut self, out: &mut dyn Write, err: &mut dyn Write, early: bool) -> io::Result<()> {
        let Some(item) = self.queue.pop_front() else {
            return Ok(());
        };
        self.base += 1;
        self.kept -= item.bytes();
        match item {
            Item::Note(text) => writeln!(out, "{}", self.paint.wrap(YELLOW, &text)),
            Item::Task(k) => {
                self.index.remove(&k.tid);
                let part = early && !k.finished;
                let task = k.task();
                if part && !task_shown(&task, self.args) {
                    if let Some(filter) = part_filter(&task, self.args) {
                        // What was printed comes first (the same terminal, often).
                        out.flush()?;
                        let _ = writeln!(
                            err,
                            "logxide view: task {} is longer than --max-buffer ({} bytes) and \
                             printed in parts: a part of {} records is not shown, as by itself \
                             it does not match {filter}; raise --max-buffer to see the task whole",
                            sanitize(&task.tid),
                            self.budget,
                            task.recs.len()
                        );
                    }
                    return Ok(());
                }
                print_task(&task, self.args, self.paint, out)
            }
        }
    }

    /// Over the budget: prints finished items from the front down to half of it, then
    /// unfinished ones too while still over it.
    fn spill(&mut self, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
        while self.kept > self.budget / 2
            && matches!(
                self.queue.front(),
                Some(Item::Note(_)) | Some(Item::Task(Kept { finished: true, .. }))
            )
        {
            self.pop(out, err, true)?;
        }
        while self.kept > self.budget {
            self.pop(out, err, true)?;
        }
        Ok(())
    }

    /// Prints everything kept (the input ended).
    fn finish(&mut self, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
        while !self.queue.is_empty() {
            self.pop(out, err, false)?;
        }
        Ok(())
    }
}

/// Reads the inputs as one log (see [`record::for_each_merged`]) and prints its tasks as
/// trees in the order they first appear (see [`Viewer`]); `names`: the inputs' names (escaped),
/// for the notes about their lines when there are several. Returns the errors that stopped
/// inputs, with the input's index and how far it was read (what was read before is printed;
/// the other inputs are read on), or the output's error.
fn view_all<R: Read>(
    inputs: Vec<R>,
    names: Vec<String>,
    args: &ViewArgs,
    p: Paint,
    budget: u64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<(usize, io::Error, record::ReadSoFar)>, io::Error> {
    let mut v = Viewer::new(args, p, budget);
    v.names = names;
    let mut output_err = None;
    let mut errors = Vec::new();
    let max = args.max_line();
    let readers = inputs
        .into_iter()
        .map(|r| BufReader::with_capacity(1 << 16, r))
        .collect();
    let read = record::for_each_merged(
        readers,
        max,
        args.interleave,
        |i, chunk, parsed| {
            v.file = i;
            let res = match chunk {
                Chunk::Line { no, bytes, .. } => v.line(out, err, no, bytes, parsed),
                Chunk::Long { no, len, .. } => v.note(out, err, long_line(no, len, args.max_line)),
                Chunk::NulTail { no, len, .. } => v.note(out, err, nul_line(no, len)),
            };
            res.map_err(|e| {
                output_err = Some(e);
                io::Error::other("output failed")
            })
        },
        |i, e, so_far| {
            errors.push((i, e, so_far));
            Ok(())
        },
    );
    if let Some(e) = output_err {
        return Err(e);
    }
    let Ok(()) = read else {
        unreachable!("only the output fails");
    };
    v.finish(out, err)?;
    Ok(errors)
}

/// Prints records one by one as they arrive (`--follow`).
///
/// With `--action`, the lines of a task are held until it is known to contain an action of
/// that type (then they are printed, and its later lines as they come, the task remembered
/// as matched until its root action ends) or until it ends without one (then they are
/// forgotten); a task that is a lone message at `[1]` is never held.
///
/// What is held and remembered is bounded by `--max-buffer` together: past it, the oldest
/// entries go first, down to half of it — held tasks by their first held line, matched ones
/// by their latest line (a matched task that never ends, its end lost or its program gone,
/// goes once it is the quietest) — with a message on stderr for each kind saying how many.
/// A dropped task that then turns out to contain the action has its lines from after the
/// drop shown; a forgotten matched task's later lines are held like any other task's.
struct Stream<'a> {
    args: &'a ViewArgs,
    paint: Paint,
    /// With `--action`: lines of tasks not (yet) known to contain the action.
    pending: HashMap<String, Held>,
    /// The tasks in `pending` by the number of their first held line: the oldest first.
    pending_order: BTreeMap<u64, String>,
    /// Bytes counted for `pending`.
    held: u64,
    /// Numbers given out so far for `pending_order` and `matched_order` (one clock, so that
    /// the oldest entry of either kind is known).
    seq: u64,
    /// Tasks known to contain the action and not ended yet → the number of their latest line.
    matched: HashMap<String, u64>,
    /// The tasks in `matched` by the number of their latest line: the quietest first.
    matched_order: BTreeMap<u64, String>,
    /// Bytes counted for `matched`.
    remembered: u64,
    /// Where a drop is reported (stderr).
    err: Box<dyn Write + 'a>,
}

/// Bytes counted for a task in [`Stream::matched`]: its id there and in the order, and the
/// entries.
fn matched_cost(tid: &str) -> u64 {
    TASK_COST + 2 * tid.len() as u64
}

/// A task's lines held by [`Stream`].
struct Held {
    lines: Vec<String>,
    seq: u64,
    cost: u64,
}

impl<'a> Stream<'a> {
    fn new(args: &'a ViewArgs, paint: Paint, err: Box<dyn Write + 'a>) -> Self {
        Stream {
            args,
            paint,
            pending: HashMap::new(),
            pending_order: BTreeMap::new(),
            held: 0,
            seq: 0,
            matched: HashMap::new(),
            matched_order: BTreeMap::new(),
            remembered: 0,
            err,
        }
    }

    /// Remembers `tid` as a task that contains the action.
    fn remember(&mut self, tid: String) {
        self.seq += 1;
        self.remembered += matched_cost(&tid);
        self.matched_order.insert(self.seq, tid.clone());
        self.matched.insert(tid, self.seq);
    }

    /// A line of `tid`: if it is matched, it is now the latest of the matched tasks.
    /// Whether it is matched.
    fn touch(&mut self, tid: &str) -> bool {
        let Some(at) = self.matched.get_mut(tid) else {
            return false;
        };
        self.seq += 1;
        let tid = self.matched_order.remove(at).expect("indexed");
        *at = self.seq;
        self.matched_order.insert(self.seq, tid);
        true
    }

    /// `tid` ended: it is no longer remembered as matched. Whether it was.
    fn forget(&mut self, tid: &str) -> bool {
        let Some(at) = self.matched.remove(tid) else {
            return false;
        };
        self.matched_order.remove(&at);
        self.remembered -= matched_cost(tid);
        true
    }

    fn take_pending(&mut self, tid: &str) -> Vec<String> {
        let Some(h) = self.pending.remove(tid) else {
            return Vec::new();
        };
        self.pending_order.remove(&h.seq);
        self.held -= h.cost;
        h.lines
    }

    fn line(&mut self, out: &mut dyn Write, no: u64, bytes: &[u8]) -> io::Result<()> {
        let (zeros, bytes) = record::split_zeros(bytes);
        if zeros > 0 {
            writeln!(out, "{}", self.paint.wrap(YELLOW, &zeros_line(no, zeros)))?;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let rec = match record::parse(bytes) {
            Ok(r) => r,
            Err(_) => return writeln!(out, "{}", self.paint.wrap(YELLOW, &bad_line(no, bytes))),
        };
        let a = self.args;
        let root_end = rec.is_end() && rec.lvl.len() == 1;
        let other_task = a.task.as_ref().is_some_and(|sel| !sel.matches(&rec.tid));
        if other_task
            || a.since.is_some_and(|s| rec.ts < s)
            || a.until.is_some_and(|u| rec.ts > u)
            || hidden(&rec, a.level)
        {
            let wanted = a
                .action
                .as_deref()
                .is_some_and(|w| rec.action_type() == Some(w));
            if wanted && !other_task {
                // Outside --since/--until (--level hides no action), but the task contains
                // the action all the same: its lines in the window are shown.
                let known = if root_end {
                    self.forget(&rec.tid)
                } else {
                    self.touch(&rec.tid)
                };
                if !known {
                    for earlier in self.take_pending(&rec.tid) {
                        writeln!(out, "{earlier}")?;
                    }
                    if !root_end {
                        self.remember(rec.tid);
                        self.make_room(out)?;
                    }
                }
                return Ok(());
            }
            if root_end && a.action.is_some() {
                // The task ended: nothing more of it is expected.
                self.take_pending(&rec.tid);
                self.forget(&rec.tid);
            } else {
                self.touch(&rec.tid); // (not shown, but the task is not quiet)
            }
            return Ok(());
        }
        let text = format!(
            "{} {}{}",
            self.paint.wrap(BOLD, &sanitize(&rec.tid)),
            "  ".repeat(rec.depth().saturating_sub(1)),
            record_line(&rec, false, self.paint)
        );
        let Some(want) = &a.action else {
            return writeln!(out, "{text}");
        };
        let known = if root_end {
            self.forget(&rec.tid)
        } else {
            self.touch(&rec.tid)
        };
        if known {
            return writeln!(out, "{text}");
        }
        if rec.action_type() == Some(want.as_str()) {
            for earlier in self.take_pending(&rec.tid) {
                writeln!(out, "{earlier}")?;
            }
            writeln!(out, "{text}")?;
            if !root_end {
                self.remember(rec.tid);
                self.make_room(out)?;
            }
            return Ok(());
        }
        if root_end {
            self.take_pending(&rec.tid); // the task ended without the action
            return Ok(());
        }
        let lone = rec.lvl == [1] && rec.action_type().is_none();
        if lone && !self.pending.contains_key(&rec.tid) {
            return Ok(()); // a task of one message: it contains no action
        }
        let cost = text.len() as u64 + LINE_COST;
        self.held += cost;
        match self.pending.get_mut(&rec.tid) {
            Some(h) => {
                h.lines.push(text);
                h.cost += cost;
            }
            None => {
                let extra = TASK_COST + 2 * rec.tid.len() as u64;
                self.held += extra;
                self.seq += 1;
                self.pending_order.insert(self.seq, rec.tid.clone());
                self.pending.insert(
                    rec.tid,
                    Held {
                        lines: vec![text],
                        seq: self.seq,
                        cost: cost + extra,
                    },
                );
            }
        }
        self.make_room(out)
    }

    /// Over `--max-buffer` (what is held and remembered together): drops the oldest entries,
    /// held tasks by their first line held, matched ones by their latest line, down to half
    /// of it, and says how many of each kind.
    fn make_room(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let max = self.args.max_buffer;
        if self.held + self.remembered <= max {
            return Ok(());
        }
        let (mut lines, mut tasks, mut forgot) = (0u64, 0u64, 0u64);
        while self.held + self.remembered > max / 2 {
            let held_first = self.pending_order.first_key_value().map(|(&n, _)| n);
            let matched_first = self.matched_order.first_key_value().map(|(&n, _)| n);
            let held_oldest = match (held_first, matched_first) {
                (Some(h), Some(m)) => h < m,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if held_oldest {
                let (_, tid) = self.pending_order.pop_first().expect("seen");
                let h = self.pending.remove(&tid).expect("indexed");
                self.held -= h.cost;
                lines += h.lines.len() as u64;
                tasks += 1;
            } else {
                let (_, tid) = self.matched_order.pop_first().expect("seen");
                self.matched.remove(&tid);
                self.remembered -= matched_cost(&tid);
                forgot += 1;
            }
        }
        // What was printed comes first (stdout and stderr may be the same terminal).
        out.flush()?;
        let at = sanitize(self.args.action.as_deref().unwrap_or(""));
        if tasks > 0 {
            let _ = writeln!(
                self.err,
                "logxide view: --max-buffer ({max} bytes) reached holding the lines of tasks not \
                 yet known to contain an action of type {at}: dropped {} of {}, those held \
                 longest; if one of them turns out to contain it, only its lines from here on \
                 are shown",
                plural(lines, "line", "lines"),
                plural(tasks, "task", "tasks"),
            );
        }
        if forgot > 0 {
            let _ = writeln!(
                self.err,
                "logxide view: --max-buffer ({max} bytes) reached remembering the tasks known to \
                 contain an action of type {at}: forgot {}, those quiet longest; their later \
                 lines are shown only once another action of that type comes in them",
                plural(forgot, "task", "tasks"),
            );
        }
        Ok(())
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A file followed by `--follow`.
struct Followed {
    name: String,
    path: PathBuf,
    file: Option<File>,
    id: Option<(u64, u64)>,
    /// Bytes consumed: the offset after the last complete line.
    pos: u64,
    line_no: u64,
    seen: Option<(u64, Option<SystemTime>)>,
    /// The bytes skipped so far of a line longer than `--max-line` whose `\n` has not come
    /// yet (`pos` is past them: they are not read again).
    long: Option<u64>,
    /// Where the zeros at the end of the file began at the last look (an `mmap` writer's
    /// padding, which it writes its records into): a record written through a mapping
    /// changes neither the file's size nor, in a page already dirty, its time, so this byte
    /// is looked at every time.
    zeros_at: Option<u64>,
    /// The last error reported for this file: the same error again (every poll) is not
    /// printed again until a poll succeeds.
    error: Option<String>,
    /// It could not be opened at the start (the others are followed): once it opens, and
    /// is not compressed, a line on stderr says it is read.
    waiting: bool,
    /// Its name became a directory: it is no longer followed (as `tail -f` gives up on one).
    gone: bool,
}

#[cfg(unix)]
fn file_id(m: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl Followed {
    /// `name` (at `path`), not opened yet: the first look opens it and reads it from the start.
    fn new(name: &str, path: PathBuf) -> Self {
        Followed {
            name: name.to_owned(),
            path,
            file: None,
            id: None,
            pos: 0,
            line_no: 0,
            seen: None,
            long: None,
            zeros_at: None,
            error: None,
            waiting: false,
            gone: false,
        }
    }

    /// Whether the first zero byte at the end of the file (see `zeros_at`) has been written.
    fn zeros_written(&self) -> io::Result<bool> {
        let (Some(at), Some(mut file)) = (self.zeros_at, self.file.as_ref()) else {
            return Ok(false);
        };
        file.seek(SeekFrom::Start(at))?;
        let mut b = [0u8];
        Ok(file.read(&mut b)? == 1 && b[0] != 0)
    }

    /// Prints the complete lines after `pos`; an incomplete last line (or a NUL tail, where
    /// an mmap writer has not written yet) stays for the next look. Of a line longer than
    /// `--max-line`, at most that much is held: the rest is skipped as it comes (not read
    /// again at the next look), and once its `\n` comes a line says how long it was.
    fn read_new(&mut self, s: &mut Stream<'_>, out: &mut dyn Write) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let max = s.args.max_line();
        let mut r = BufReader::with_capacity(1 << 16, file);
        r.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        let mut any = false;
        self.zeros_at = None;
        loop {
            // (Zeros inside a long line being skipped are part of it.)
            if self.long.is_none() {
                match r.fill_buf()?.first() {
                    None => break,
                    Some(0) => {
                        // Zeros: an mmap region not written yet (wait), or zeros left by a
                        // crash with records after them (skip them).
                        let mut zeros = 0u64;
                        loop {
                            let b = r.fill_buf()?;
                            let n = b.iter().take_while(|&&c| c == 0).count();
                            if n == 0 {
                                break;
                            }
                            r.consume(n);
                            zeros += n as u64;
                        }
                        if r.fill_buf()?.is_empty() {
                            self.zeros_at = Some(self.pos);
                            break;
                        }
                        self.pos += zeros;
                        let text = zeros_line(self.line_no + 1, zeros);
                        writeln!(out, "{}", s.paint.wrap(YELLOW, &text))?;
                        any = true;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            let got = record::read_line(&mut r, &mut buf, max)?;
            if got.taken == 0 {
                break;
            }
            let before = self.long.unwrap_or(0);
            if !got.terminated {
                // Zeros at the end may be an mmap region the rest of the line goes into.
                let body = got.taken - got.trailing_zeros;
                if got.trailing_zeros > 0 {
                    self.zeros_at = Some(self.pos + body);
                }
                if before + body > max as u64 {
                    self.pos += body;
                    self.long = Some(before + body);
                }
                break;
            }
            self.pos += got.taken;
            self.line_no += 1;
            let len = before + got.len();
            if self.long.take().is_some() || len > max as u64 {
                let text = long_line(self.line_no, len, s.args.max_line);
                writeln!(out, "{}", s.paint.wrap(YELLOW, &text))?;
            } else {
                s.line(out, self.line_no, &buf[..len as usize])?;
            }
            any = true;
        }
        Ok(any)
    }

    /// The file open, while nothing is under its name: its new lines, if it changed.
    fn read_moved(&mut self, s: &mut Stream<'_>, out: &mut dyn Write) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let meta = file.metadata()?;
        let seen = Some((meta.len(), meta.modified().ok()));
        if seen == self.seen && !self.zeros_written()? {
            return Ok(false);
        }
        self.seen = seen;
        self.read_new(s, out)
    }

    fn poll(&mut self, s: &mut Stream<'_>, out: &mut dyn Write) -> io::Result<bool> {
        if self.gone {
            return Ok(false);
        }
        let Ok(meta) = fs::metadata(&self.path) else {
            // Moved away or deleted, no new file under the name yet: the open one goes on
            // (its writer may not have reopened the name), as with `tail -f`.
            return self.read_moved(s, out);
        };
        let id = file_id(&meta);
        let mut any = false;
        if meta.is_dir() {
            // Nothing to read in it (every read fails): the rest of the old file, then no
            // more looks.
            any |= self.read_new(s, out)?;
            out.flush()?;
            let _ = writeln!(
                s.err,
                "logxide view: {}: is now a directory: no longer followed",
                sanitize(&self.name)
            );
            self.gone = true;
            self.file = None;
            return Ok(any);
        }
        if self.file.is_none() || (id.is_some() && id != self.id) {
            // Opened again after an error, the same file: it goes on where it stopped.
            let same = self.file.is_none() && id.is_some() && id == self.id;
            if self.file.is_some() {
                any |= self.read_new(s, out)?; // the rest of the old file first
                out.flush()?;
                let _ = writeln!(
                    s.err,
                    "logxide view: {}: replaced, reading the new file",
                    sanitize(&self.name)
                );
            }
            let mut file = File::open(&self.path)?;
            if self.waiting {
                // As at the start: a compressed file is not followed.
                if let Some(c) = record::compression_of(&mut file)? {
                    return Err(io::Error::other(compressed_text(c)));
                }
                self.waiting = false;
                out.flush()?;
                let _ = writeln!(
                    s.err,
                    "logxide view: {}: appeared, reading it",
                    sanitize(&self.name)
                );
            }
            self.file = Some(file);
            self.id = id;
            if !same {
                self.pos = 0;
                self.line_no = 0;
                self.long = None;
            }
            self.seen = None;
        } else if meta.len() < self.pos {
            out.flush()?;
            let _ = writeln!(
                s.err,
                "logxide view: {}: truncated, reading from the start",
                sanitize(&self.name)
            );
            self.pos = 0;
            self.line_no = 0;
            self.long = None;
        }
        let seen = Some((meta.len(), meta.modified().ok()));
        if seen == self.seen && !self.zeros_written()? {
            return Ok(any);
        }
        self.seen = seen;
        Ok(self.read_new(s, out)? | any)
    }
}

fn follow(args: &ViewArgs, p: Paint, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut s = Stream::new(args, p, Box::new(io::stderr()));
    if args.files.iter().any(|f| is_stdin(f)) {
        return follow_stream(&mut s, &mut io::stdin().lock(), "-", out);
    }
    if let [path] = &args.files[..] {
        if record::is_stream(path) {
            // A FIFO: read to its end as standard input is (nothing to seek or look at again).
            let name = path.display().to_string();
            let mut input = match File::open(path) {
                Ok(f) => BufReader::with_capacity(1 << 16, f),
                Err(e) => {
                    say!(
                        "logxide view: {}: {}",
                        sanitize(&name),
                        sanitize(&e.to_string())
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            return follow_stream(&mut s, &mut input, &name, out);
        }
    }
    if let Some(path) = args.files.iter().find(|f| record::is_stream(f)) {
        say!(
            "logxide view: with --follow, {} (not a regular file: a stream, read once) must be the only input",
            sanitize(&path.display().to_string())
        );
        return Ok(ExitCode::from(2));
    }
    let mut files = open_followed(&args.files);
    if files.is_empty() {
        return Ok(ExitCode::from(2));
    }
    let mut current = usize::MAX;
    loop {
        poll_all(&mut files, &mut s, out, &mut current)?;
        if files.iter().all(|f| f.gone) {
            out.flush()?;
            say!("logxide view: no file left to follow");
            return Ok(ExitCode::from(2));
        }
        std::thread::sleep(POLL);
    }
}

/// `--follow` on a stream (standard input, a FIFO) named `name`: each line printed as it
/// comes, until its end (exit 0) or a read error (named, with how far it was read: exit 2).
fn follow_stream(
    s: &mut Stream<'_>,
    input: &mut impl BufRead,
    name: &str,
    out: &mut dyn Write,
) -> io::Result<ExitCode> {
    let (mut no, mut buf) = (0, Vec::new());
    let mut so_far = record::ReadSoFar::default();
    loop {
        let got = match record::read_line(input, &mut buf, s.args.max_line()) {
            Ok(got) => got,
            Err(e) => {
                // The input's error, not the output's: named, with how far it was read.
                out.flush()?;
                say!(
                    "logxide view: {}: {}",
                    sanitize(name),
                    sanitize(&record::read_error_text(&e, None, so_far))
                );
                return Ok(ExitCode::from(2));
            }
        };
        if got.taken == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        no += 1;
        so_far = record::ReadSoFar {
            lines: no,
            bytes: so_far.bytes + got.taken,
        };
        if got.len() > s.args.max_line {
            let text = long_line(no, got.len(), s.args.max_line);
            writeln!(out, "{}", s.paint.wrap(YELLOW, &text))?;
        } else {
            s.line(out, no, &buf[..got.len() as usize])?;
        }
        out.flush()?;
    }
}

/// Why a compressed file is not followed.
fn compressed_text(c: record::Compression) -> String {
    format!(
        "compressed ({}), a rotated file that does not grow: view it without --follow",
        c.name()
    )
}

/// The files to follow. One that cannot be opened is reported on stderr and, if another
/// can be, followed all the same, as `tail -f` does: it is read once it can be (a file not
/// created yet, or one whose permission is not given yet). None: each was reported, none
/// is returned. A compressed file is a usage error (reported, none returned): it does not
/// grow, and `view` without `--follow` reads it. A directory is reported and left out, as
/// `tail -f` does: it never becomes readable.
fn open_followed(paths: &[PathBuf]) -> Vec<Followed> {
    let mut files: Vec<Followed> = Vec::new();
    let mut unopened = Vec::new();
    for path in paths {
        // (Shown with U+FFFD for bytes that are not UTF-8, as check does.)
        let name = &path.display().to_string();
        if path.is_dir() {
            say!(
                "logxide view: {}: is a directory: not followed",
                sanitize(name)
            );
            continue;
        }
        match File::open(path).and_then(|mut f| record::compression_of(&mut f)) {
            Err(e) => unopened.push((files.len(), e.to_string())),
            Ok(Some(c)) => {
                for (i, e) in unopened {
                    say!(
                        "logxide view: {}: {}",
                        sanitize(&files[i].name),
                        sanitize(&e)
                    );
                }
                say!("logxide view: {}: {}", sanitize(name), compressed_text(c));
                return Vec::new();
            }
            Ok(None) => {}
        }
        files.push(Followed::new(name, path.clone()));
    }
    let none = unopened.len() == files.len();
    for (i, e) in unopened {
        let f = &mut files[i];
        let then = if none {
            ""
        } else {
            "; following the other files, and this one once it can be read"
        };
        say!(
            "logxide view: {}: {}{then}",
            sanitize(&f.name),
            sanitize(&e)
        );
        f.waiting = true;
        // (Not reported again while the same error lasts.)
        f.error = Some(e);
    }
    if none {
        files.clear();
    }
    files
}

/// One look at every followed file, printing what was appended as it is read; `current`:
/// the file whose lines were printed last (several files: a `==> name <==` line comes before
/// another's). Only a broken output stops it; a file's error is reported once, and the file
/// opened again at the next look.
fn poll_all(
    files: &mut [Followed],
    s: &mut Stream<'_>,
    out: &mut dyn Write,
    current: &mut usize,
) -> io::Result<()> {
    let many = files.len() > 1;
    for (i, f) in files.iter_mut().enumerate().filter(|(_, f)| !f.gone) {
        let header = (many && *current != i).then(|| format!("==> {} <==\n", sanitize(&f.name)));
        let mut to = Headed { out, header };
        let polled = f.poll(s, &mut to);
        if to.header.is_none() {
            *current = i; // (this file's lines were printed, or were already the last)
        }
        out.flush()?;
        match polled {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(e),
            Err(e) => {
                let text = e.to_string();
                if f.error.as_ref() != Some(&text) {
                    let _ = writeln!(
                        s.err,
                        "logxide view: {}: {}",
                        sanitize(&f.name),
                        sanitize(&text)
                    );
                    f.error = Some(text);
                }
                // Opened again at the next poll (going on where it stopped).
                f.file = None;
            }
            Ok(_) => f.error = None,
        }
    }
    Ok(())
}

/// The output of one followed file: written through to `out` as it comes (nothing of a
/// file is held), after `header` if there is one, once something is written.
struct Headed<'o> {
    out: &'o mut dyn Write,
    header: Option<String>,
}

impl Write for Headed<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.is_empty() {
            return Ok(0);
        }
        if let Some(h) = &self.header {
            self.out.write_all(h.as_bytes())?;
            self.header = None;
        }
        self.out.write(b)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether to color: `--color` `when`, for standard output a terminal or not (`tty`) and the
/// environment's NO_COLOR and TERM. `auto` colors a terminal unless NO_COLOR is set and not
/// empty (no-color.org) or TERM is `dumb` or unset (a terminal that knows no escapes, as git
/// reads it); `always` and `never` override the environment (as a command-line option may).
fn color_enabled(
    when: ColorWhen,
    tty: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    // The library's console sink follows the same rule.
    let choice = match when {
        ColorWhen::Always => logxide::sink::ColorChoice::Always,
        ColorWhen::Never => logxide::sink::ColorChoice::Never,
        ColorWhen::Auto => logxide::sink::ColorChoice::Auto,
    };
    choice.resolve(tty, no_color, term)
}

/// Runs `logxide view`: 0, or 2 on a usage error or when an input cannot be read.
pub fn run(args: &ViewArgs) -> ExitCode {
    let color = color_enabled(
        args.color,
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    let p = Paint(color);
    if args.follow && args.files.len() > 1 && args.files.iter().any(|f| is_stdin(f)) {
        say!("logxide view: with --follow, `-` (standard input) must be the only input");
        return ExitCode::from(2);
    }
    if args.files.iter().filter(|f| is_stdin(f)).count() > 1 {
        say!("logxide view: `-` (standard input) may be given once: it can be read only once");
        return ExitCode::from(2);
    }
    if let Some(f) = record::repeated_file(&args.files) {
        say!("logxide view: {}", record::repeated_file_text(f));
        return ExitCode::from(2);
    }
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since > until {
            say!(
                "logxide view: --since {} is after --until {}: no record can match",
                time_text(since),
                time_text(until)
            );
            return ExitCode::from(2);
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let res = if args.follow {
        follow(args, p, &mut out)
    } else {
        let mut code = ExitCode::SUCCESS;
        let (mut inputs, mut names, mut compression) = (Vec::new(), Vec::new(), Vec::new());
        for path in &args.files {
            let name = &path.display().to_string();
            let (input, c): (Box<dyn Read>, _) = if is_stdin(path) {
                (Box::new(io::stdin().lock()), None)
            } else {
                match record::open_lines(path) {
                    Ok(opened) => opened,
                    Err(e) => {
                        say!(
                            "logxide view: {}: {}",
                            sanitize(name),
                            sanitize(&e.to_string())
                        );
                        code = ExitCode::from(2);
                        continue;
                    }
                }
            };
            inputs.push(input);
            names.push(sanitize(name).into_owned());
            compression.push(c);
        }
        let budget = args.max_buffer;
        match view_all(
            inputs,
            names.clone(),
            args,
            p,
            budget,
            &mut out,
            &mut io::stderr(),
        ) {
            Err(e) => Err(e),
            Ok(errors) => out.flush().map(|()| {
                // What was read before an error is printed above the message.
                for (i, e, so_far) in errors {
                    say!(
                        "logxide view: {}: {}",
                        names[i],
                        sanitize(&record::read_error_text(&e, compression[i], so_far))
                    );
                    code = ExitCode::from(2);
                }
                code
            }),
        }
    };
    match res.and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say!("logxide view: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(text: &str) -> Vec<Record> {
        text.lines()
            .map(|l| record::parse(l.as_bytes()).unwrap())
            .collect()
    }

    fn args(extra: &[&str]) -> ViewArgs {
        use clap::Parser;
        let argv = ["logxide", "view"].iter().chain(extra).chain(&["f"]);
        match crate::Cli::parse_from(argv).command {
            crate::Command::View(a) => a,
            _ => unreachable!(),
        }
    }

    /// The output of the whole input at once: every record kept, then every item printed
    /// (what `view` did before it streamed).
    fn in_memory(input: &[u8], args: &ViewArgs) -> Vec<u8> {
        let p = Paint(false);
        let mut tasks: Vec<Task> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut items: Vec<Result<usize, String>> = Vec::new();
        record::for_each_line(input, args.max_line(), |chunk| {
            match chunk {
                Chunk::Line { no, bytes, .. } => {
                    let (zeros, bytes) = record::split_zeros(bytes);
                    if zeros > 0 {
                        items.push(Err(zeros_line(no, zeros)));
                    }
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        return Ok(());
                    }
                    match record::parse(bytes) {
                        Ok(rec) => {
                            let i = *index.entry(rec.tid.clone()).or_insert_with(|| {
                                tasks.push(Task {
                                    tid: rec.tid.clone(),
                                    recs: Vec::new(),
                                });
                                items.push(Ok(tasks.len() - 1));
                                tasks.len() - 1
                            });
                            tasks[i].recs.push(rec);
                        }
                        Err(_) => items.push(Err(bad_line(no, bytes))),
                    }
                }
                Chunk::Long { no, len, .. } => items.push(Err(long_line(no, len, args.max_line))),
                Chunk::NulTail { no, len, .. } => items.push(Err(nul_line(no, len))),
            }
            Ok(())
        })
        .unwrap();
        let mut out = Vec::new();
        for item in &items {
            match item {
                Err(text) => writeln!(out, "{text}").unwrap(),
                Ok(i) => print_task(&tasks[*i], args, p, &mut out).unwrap(),
            }
        }
        out
    }

    fn streamed(input: &[u8], args: &ViewArgs, budget: u64) -> Vec<u8> {
        let (out, err) = streamed_with_notices(input, args, budget);
        assert_eq!(err, "");
        out
    }

    /// What view prints on stdout and on stderr.
    fn streamed_with_notices(input: &[u8], args: &ViewArgs, budget: u64) -> (Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let names = vec!["f".to_owned()];
        let done = view_all(
            vec![input],
            names,
            args,
            Paint(false),
            budget,
            &mut out,
            &mut err,
        );
        assert!(
            done.is_ok_and(|errors| errors.is_empty()),
            "view_all failed"
        );
        (out, String::from_utf8(err).unwrap())
    }

    /// A message's level is its type spelled as the library writes it (`info`, `warning`…);
    /// a message type that `--level` would parse (`20`, `WARN`, ` debug`) is some other
    /// type, never hidden nor colored as a level.
    /// `--color auto` colors only a terminal, and not when NO_COLOR is set and not empty
    /// (no-color.org) or TERM is `dumb` or unset (a terminal without escapes, as git and
    /// others read it); `always` and `never` are what they say, whatever the environment.
    #[test]
    fn colors_follow_the_common_rules() {
        use std::ffi::OsStr;
        use ColorWhen::{Always, Auto, Never};
        let on = |when, tty, no_color: Option<&str>, term: Option<&str>| {
            color_enabled(when, tty, no_color.map(OsStr::new), term.map(OsStr::new))
        };
        assert!(on(Auto, true, None, Some("xterm-256color")));
        assert!(on(Auto, true, Some(""), Some("xterm")), "an empty NO_COLOR");
        assert!(!on(Auto, true, Some("1"), Some("xterm")));
        assert!(
            !on(Auto, true, Some("0"), Some("xterm")),
            "any value but empty"
        );
        assert!(!on(Auto, true, None, Some("dumb")));
        assert!(!on(Auto, true, None, None), "no TERM");
        assert!(!on(Auto, false, None, Some("xterm")), "not a terminal");
        assert!(on(Always, false, Some("1"), Some("dumb")));
        assert!(!on(Never, true, None, Some("xterm")));
    }

    #[test]
    fn only_level_names_as_written_are_levels() {
        let input = br#"{"ts":1,"tid":"A","lvl":[1],"mt":"20","msg":"a number"}
{"ts":1,"tid":"B","lvl":[1],"mt":"WARN","msg":"upper case"}
{"ts":1,"tid":"C","lvl":[1],"mt":" debug","msg":"spaced"}
{"ts":1,"tid":"D","lvl":[1],"mt":"info","msg":"hidden"}
{"ts":1,"tid":"E","lvl":[1],"mt":"error","msg":"shown"}
"#;
        let out = streamed(input, &args(&["--level", "warning"]), 1 << 20);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A 1970-01-01T00:00:01.000000Z\n\
             └─ 20: a number\n\
             B 1970-01-01T00:00:01.000000Z\n\
             └─ WARN: upper case\n\
             C 1970-01-01T00:00:01.000000Z\n\
             └─  debug: spaced\n\
             D 1970-01-01T00:00:01.000000Z\n\
             E 1970-01-01T00:00:01.000000Z\n\
             └─ error: shown\n"
        );
        let line = |mt: &str| {
            let rec = record::parse(
                format!(r#"{{"ts":1,"tid":"B","lvl":[1],"mt":"{mt}","msg":"m"}}"#).as_bytes(),
            )
            .unwrap();
            record_line(&rec, false, Paint(true))
        };
        assert_eq!(line("WARN"), "WARN: m");
        assert_eq!(line("40"), "40: m");
        assert_eq!(line("warning"), "\x1b[33mwarning: m\x1b[0m");
        assert_eq!(line("error"), "\x1b[1;31merror: m\x1b[0m");
    }

    /// A task longer than the budget is printed in parts; with --action, a part without the
    /// action (it comes later) is not shown — and stderr says so and how many records it
    /// had (they were left out silently): the records shown and those said not shown are
    /// all the task's.
    #[test]
    fn a_part_left_out_by_a_filter_is_reported() {
        let mut log = Vec::new();
        let rec = |log: &mut Vec<u8>, lvl: String, body: &str| {
            writeln!(log, r#"{{"ts":1,"tid":"L.1","lvl":{lvl},{body}}}"#).unwrap();
        };
        rec(&mut log, "[1]".into(), r#""at":"main","st":"started""#);
        for i in 0..2000u64 {
            rec(&mut log, format!("[{}]", i + 2), r#""mt":"info","msg":"m""#);
        }
        rec(&mut log, "[2002,1]".into(), r#""at":"db","st":"started""#);
        rec(&mut log, "[2002,2]".into(), r#""at":"db","st":"succeeded""#);
        rec(&mut log, "[2003]".into(), r#""at":"main","st":"succeeded""#);
        let a = args(&["--action", "db"]);
        let (out, err) = streamed_with_notices(&log, &a, 10_000);
        let out = String::from_utf8(out).unwrap();
        let heads = out.lines().filter(|l| l.starts_with("L.1 ")).count();
        let shown = out.lines().count() - heads;
        assert!(
            out.contains("db started") && out.contains("main succeeded"),
            "{out}"
        );
        let mut hidden = 0;
        for line in err.lines() {
            let rest = line
                .strip_prefix("logxide view: task L.1 is longer than --max-buffer (10000 bytes) and printed in parts: a part of ")
                .unwrap_or_else(|| panic!("{line}"));
            let (n, rest) = rest.split_once(' ').unwrap();
            assert_eq!(rest, "records is not shown, as by itself it does not match --action db; raise --max-buffer to see the task whole");
            hidden += n.parse::<usize>().unwrap();
        }
        assert!(hidden > 0, "{err}");
        assert_eq!(shown + hidden, 2004);
        // Whole within a large budget: all of it, no notice.
        let (out, err) = streamed_with_notices(&log, &a, 1 << 30);
        assert_eq!(err, "");
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2005);
    }

    /// A log of `tasks` tasks, up to eight running at once (nested actions, messages of
    /// every level, failures, lone messages, a bad line now and then, a record right after
    /// its task's end), the last two left unfinished, then a NUL tail.
    fn big_log(tasks: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // (tid, next position, open child action position if any)
        let mut open: Vec<(u64, u64, Option<u64>)> = Vec::new();
        let mut started = 0u64;
        let mut ts = 1_700_000_000.0f64;
        let line = |out: &mut Vec<u8>, tid: u64, lvl: String, body: String, ts: f64| {
            writeln!(
                out,
                r#"{{"ts":{ts:.6},"tid":"T.{tid}","lvl":{lvl},{body}}}"#
            )
            .unwrap();
        };
        while started < tasks || !open.is_empty() {
            ts += 0.001;
            if open.len() < 8 && started < tasks {
                started += 1;
                if next() % 5 == 0 {
                    line(
                        &mut out,
                        started,
                        "[1]".into(),
                        format!(r#""mt":"info","msg":"lone {started}""#),
                        ts,
                    );
                } else {
                    line(
                        &mut out,
                        started,
                        "[1]".into(),
                        format!(r#""at":"job:run","st":"started","n":{started}"#),
                        ts,
                    );
                    open.push((started, 2, None));
                }
                continue;
            }
            if started >= tasks && open.len() <= 2 {
                break; // the last two stay unfinished
            }
            let k = (next() % open.len() as u64) as usize;
            let (tid, pos, child) = open[k];
            let r = next() % 16;
            match (child, r) {
                (_, 0) => out.extend_from_slice(b"not a record {\n"),
                (None, 1..=3) => {
                    line(
                        &mut out,
                        tid,
                        format!("[{pos},1]"),
                        r#""at":"db:query","st":"started","q":"select 1""#.into(),
                        ts,
                    );
                    open[k].2 = Some(2);
                }
                (Some(c), 1..=3) => {
                    let st = if r == 3 {
                        r#""failed","exc":"E","reason":"boom""#
                    } else {
                        r#""succeeded""#
                    };
                    line(
                        &mut out,
                        tid,
                        format!("[{pos},{c}]"),
                        format!(r#""at":"db:query","st":{st},"dur":0.002"#),
                        ts,
                    );
                    open[k] = (tid, pos + 1, None);
                }
                (Some(c), 4..=9) => {
                    line(
                        &mut out,
                        tid,
                        format!("[{pos},{c}]"),
                        r#""mt":"debug","msg":"row""#.into(),
                        ts,
                    );
                    open[k].2 = Some(c + 1);
                }
                (None, 4..=13) => {
                    let mt = ["debug", "info", "warning", "error"][(r % 4) as usize];
                    line(
                        &mut out,
                        tid,
                        format!("[{pos}]"),
                        format!(r#""mt":"{mt}","msg":"step {pos}","k":"v w""#),
                        ts,
                    );
                    open[k].1 += 1;
                }
                (None, _) => {
                    line(
                        &mut out,
                        tid,
                        format!("[{pos}]"),
                        r#""at":"job:run","st":"succeeded","dur":0.5"#.into(),
                        ts,
                    );
                    open.remove(k);
                    if r == 15 {
                        line(
                            &mut out,
                            tid,
                            format!("[{}]", pos + 1),
                            r#""mt":"info","msg":"late""#.into(),
                            ts,
                        );
                    }
                }
                (Some(_), _) => {}
            }
        }
        out.extend_from_slice(&[0; 100]);
        out
    }

    #[test]
    fn streaming_prints_what_the_whole_input_at_once_printed() {
        let log = big_log(16_000);
        assert!(log.len() > 2 << 20, "{} bytes", log.len());
        for extra in [
            &[][..],
            &["--level", "warning"],
            &["--action", "db:query"],
            &["--task", "T.1*"],
        ] {
            let a = args(extra);
            let expected = in_memory(&log, &a);
            let budgets: &[u64] = if extra.is_empty() {
                &[1 << 20, 1 << 30]
            } else {
                &[1 << 20]
            };
            for &budget in budgets {
                let got = streamed(&log, &a, budget);
                assert!(
                    got == expected,
                    "{extra:?}, budget {budget}: the output differs"
                );
            }
        }
    }

    /// Past the budget with an unfinished task at the front, that task is printed as it is
    /// so far and its later records form a second tree under its id: every record is shown
    /// once, and memory stays bounded.
    #[test]
    fn an_unfinished_task_past_the_budget_is_printed_in_parts() {
        let mut log = Vec::new();
        writeln!(
            log,
            r#"{{"ts":1,"tid":"L.1","lvl":[1],"at":"main","st":"started"}}"#
        )
        .unwrap();
        for i in 0..2000u64 {
            writeln!(
                log,
                r#"{{"ts":1,"tid":"L.1","lvl":[{}],"mt":"info","msg":"m{i}"}}"#,
                i + 2
            )
            .unwrap();
        }
        writeln!(
            log,
            r#"{{"ts":2,"tid":"L.1","lvl":[2002],"at":"main","st":"succeeded","dur":1}}"#
        )
        .unwrap();
        let a = args(&[]);
        assert_eq!(streamed(&log, &a, 1 << 30), in_memory(&log, &a));
        let out = String::from_utf8(streamed(&log, &a, 10_000)).unwrap();
        let heads = out.lines().filter(|l| l.starts_with("L.1 ")).count();
        assert!(heads > 1, "{out}");
        for i in 0..2000 {
            let needle = format!(": m{i}\n");
            assert_eq!(out.matches(&needle).count(), 1, "m{i}");
        }
        assert_eq!(out.matches("main succeeded").count(), 1);
        assert_eq!(out.lines().count(), 2000 + 2 + heads);
        assert!(out.starts_with("L.1 1970-01-01T00:00:01.000000Z (incomplete)\n└─ main started (incomplete)\n   ├─ info: m0\n"), "{out}");
    }

    /// With `--follow --action`, what is held and remembered stays within `--max-buffer`
    /// however many tasks never contain the action or contain it and never end, lone
    /// messages are not held, and ended tasks and matched ones that ended are forgotten.
    #[test]
    fn follow_action_holds_a_bounded_amount() {
        let a = args(&["--follow", "--action", "db", "--max-buffer", "4K"]);
        let mut s = Stream::new(&a, Paint(false), Box::new(io::sink()));
        let mut out = Vec::new();
        let mut no = 0;
        let mut feed = |s: &mut Stream<'_>, out: &mut Vec<u8>, text: String| {
            no += 1;
            s.line(out, no, text.as_bytes()).unwrap();
            assert!(s.held + s.remembered <= 4096, "{} bytes held", s.held);
            assert_eq!(s.pending.len(), s.pending_order.len());
            assert_eq!(s.matched.len(), s.matched_order.len());
            let sum: u64 = s.pending.values().map(|h| h.cost).sum();
            assert_eq!(sum, s.held);
            let sum: u64 = s.matched.keys().map(|t| matched_cost(t)).sum();
            assert_eq!(sum, s.remembered);
        };
        for i in 0..5_000 {
            for (task, lvl, body) in [
                ("L", "[1]", r#""mt":"info","msg":"x""#),
                ("R", "[1]", r#""at":"job","st":"started""#),
                ("E", "[1]", r#""at":"job","st":"started""#),
                ("E", "[2]", r#""at":"job","st":"succeeded""#),
                ("N", "[1]", r#""at":"db","st":"started""#),
                ("M", "[1]", r#""at":"db","st":"started""#),
                ("M", "[2]", r#""at":"db","st":"failed""#),
            ] {
                let line = format!(r#"{{"ts":1,"tid":"{task}{i}","lvl":{lvl},{body}}}"#);
                feed(&mut s, &mut out, line);
            }
        }
        assert!(!s.matched.is_empty());
        assert!(
            s.matched.keys().all(|t| t.starts_with('N')),
            "{:?}",
            s.matched.keys()
        );
        assert!(
            s.pending.keys().all(|t| t.starts_with('R')),
            "{:?}",
            s.pending.keys()
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 15_000);
        assert!(
            text.ends_with("M4999 db started\nM4999   db failed\n"),
            "{text}"
        );
    }

    /// `--follow --action --since`: a task whose action record is before `--since` (not
    /// shown, the time filter being per record) still contains the action, so its records
    /// in the window are shown, as without `--follow` (they were held, then forgotten).
    #[test]
    fn follow_action_counts_an_action_before_since() {
        let a = args(&["--follow", "--action", "db", "--since", "10"]);
        let mut s = Stream::new(&a, Paint(false), Box::new(io::sink()));
        let mut out = Vec::new();
        for (no, line) in [
            r#"{"ts":5,"tid":"T","lvl":[1],"at":"job","st":"started"}"#,
            r#"{"ts":6,"tid":"T","lvl":[2,1],"at":"db","st":"started"}"#,
            r#"{"ts":7,"tid":"T","lvl":[2,2],"at":"db","st":"succeeded"}"#,
            r#"{"ts":11,"tid":"T","lvl":[3],"mt":"info","msg":"rows"}"#,
            r#"{"ts":13,"tid":"U","lvl":[1],"at":"job","st":"started"}"#,
            r#"{"ts":14,"tid":"T","lvl":[4],"at":"job","st":"succeeded"}"#,
            r#"{"ts":15,"tid":"U","lvl":[2],"at":"job","st":"succeeded"}"#,
        ]
        .into_iter()
        .enumerate()
        {
            s.line(&mut out, no as u64 + 1, line.as_bytes()).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "T   info: rows\nT   job succeeded\n"
        );
        assert!(s.matched.is_empty() && s.pending.is_empty());
    }

    /// A record line of task A: an info message `msg` at [1].
    fn rec(msg: &str) -> String {
        format!("{{\"ts\":1,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"{msg}\"}}\n")
    }

    /// `--follow` on a file: a line longer than `--max-line` that arrives in parts is held
    /// no more than that (what came of it is not read again), zeros after it (an mmap region
    /// not written yet) are left for the rest of it, and once its `\n` comes one line says
    /// how long it was; the records after it are shown.
    #[test]
    fn follow_skips_a_long_line_arriving_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        let rec =
            |msg: &str| format!(r#"{{"ts":1,"tid":"A","lvl":[1],"mt":"info","msg":"{msg}"}}"#);
        let first = format!("{}\n", rec("one"));
        let long = rec(&"x".repeat(200));
        fs::write(&path, format!("{first}{}", &long[..150])).unwrap();
        {
            use std::io::Write as _;
            let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&[0; 10]).unwrap();
        }
        let a = args(&["--follow", "--max-line", "100"]);
        let mut s = Stream::new(&a, Paint(false), Box::new(io::sink()));
        let mut f = Followed::new("f.log", path.clone());
        f.file = Some(File::open(&path).unwrap());
        let mut out = Vec::new();
        assert!(f.read_new(&mut s, &mut out).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), "A info: one\n");
        assert_eq!((f.pos, f.long), (first.len() as u64 + 150, Some(150)));
        // The rest of the line goes where the zeros were, then another record.
        {
            use std::io::{Seek as _, Write as _};
            let mut w = fs::OpenOptions::new().write(true).open(&path).unwrap();
            w.seek(SeekFrom::Start(f.pos)).unwrap();
            w.write_all(format!("{}\n{}\n", &long[150..], rec("three")).as_bytes())
                .unwrap();
        }
        let mut out = Vec::new();
        assert!(f.read_new(&mut s, &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "! line 2: {} bytes, longer than --max-line (100 bytes): not read\nA info: three\n",
                long.len()
            )
        );
        assert_eq!(f.long, None);
        assert_eq!(f.line_no, 3);
        assert_eq!(f.pos, fs::metadata(&path).unwrap().len());
    }

    /// `--follow` on a file an `mmap` writer fills: records written through the mapping
    /// into the zeros it pre-sized the file with change neither the file's size nor (in a page
    /// already dirty) its modification time, and they were not shown until something else
    /// changed; the first zero byte is looked at every time. (The writes here are plain ones,
    /// the time then set back: what a write through a mapping leaves.)
    #[test]
    fn follow_sees_records_written_into_the_zeros_of_an_mmap_file() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let mut body = rec("one").into_bytes();
        body.resize(8192, 0);
        fs::write(&path, &body).unwrap();
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        // Writes `bytes` at `at`, leaving the size and time of the file as they were.
        let write_at = |at: usize, bytes: &[u8]| {
            let mut w = fs::OpenOptions::new().write(true).open(&path).unwrap();
            w.seek(SeekFrom::Start(at as u64)).unwrap();
            w.write_all(bytes).unwrap();
            w.set_modified(mtime).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), 8192);
        };
        let a = args(&["--follow"]);
        let mut s = Stream::new(&a, Paint(false), Box::new(io::sink()));
        let mut f = Followed::new("m.log", path.clone());
        let look = |s: &mut Stream<'_>, f: &mut Followed| {
            let mut out = Vec::new();
            f.poll(s, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(look(&mut s, &mut f), "A info: one\n");
        assert_eq!(look(&mut s, &mut f), "");
        let mut at = rec("one").len();
        write_at(at, rec("two").as_bytes());
        assert_eq!(look(&mut s, &mut f), "A info: two\n");
        at += rec("two").len();
        // Half a record, then the rest.
        let three = rec("three");
        write_at(at, &three.as_bytes()[..20]);
        assert_eq!(look(&mut s, &mut f), "");
        write_at(at + 20, &three.as_bytes()[20..]);
        assert_eq!(look(&mut s, &mut f), "A info: three\n");
        assert_eq!(look(&mut s, &mut f), "");
    }

    /// `--follow` on a file moved away with no new file in its place yet: the lines still
    /// written to it (a writer that has not reopened the name) are shown as they come, as
    /// `tail -f` does; they waited until a new file appeared, or for ever if none did.
    #[test]
    fn follow_reads_a_moved_file_until_a_new_one_is_there() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let (path, moved) = (dir.path().join("a.log"), dir.path().join("a.1.log"));
        fs::write(&path, rec("one")).unwrap();
        let a = args(&["--follow"]);
        let both = Both::default();
        let mut s = Stream::new(&a, Paint(false), Box::new(both.clone()));
        let mut f = Followed::new("a.log", path.clone());
        let mut out = both.clone();
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(both.take(), "A info: one\n");
        fs::rename(&path, &moved).unwrap();
        let mut w = fs::OpenOptions::new().append(true).open(&moved).unwrap();
        w.write_all(rec("two").as_bytes()).unwrap();
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(both.take(), "A info: two\n");
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(both.take(), "");
        // A new file under the name: the rest of the old one first.
        w.write_all(rec("three").as_bytes()).unwrap();
        fs::write(&path, rec("new")).unwrap();
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(
            both.take(),
            "A info: three\nlogxide view: a.log: replaced, reading the new file\nA info: new\n"
        );
    }

    /// A directory is not followed, as `tail -f` does not: given at the start it is left
    /// out (the others are followed); a name that becomes one is no longer followed, once
    /// the rest of the file it named is read. (It was retried silently at every look.)
    #[test]
    fn follow_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (path, sub) = (dir.path().join("a.log"), dir.path().join("d"));
        fs::write(&path, rec("one")).unwrap();
        fs::create_dir(&sub).unwrap();
        let files = open_followed(&[sub.clone(), path.clone()]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, path);
        assert!(open_followed(std::slice::from_ref(&sub)).is_empty());
        let a = args(&["--follow"]);
        let both = Both::default();
        let mut s = Stream::new(&a, Paint(false), Box::new(both.clone()));
        let mut f = Followed::new("a.log", path.clone());
        let mut out = both.clone();
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(both.take(), "A info: one\n");
        let mut w = fs::OpenOptions::new().append(true).open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        w.write_all(rec("two").as_bytes()).unwrap();
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(
            both.take(),
            "A info: two\nlogxide view: a.log: is now a directory: no longer followed\n"
        );
        assert!(f.gone);
        f.poll(&mut s, &mut out).unwrap();
        assert_eq!(both.take(), "");
    }

    /// A writer shared by the standard output and error of a test: what each gets, in the
    /// order they get it.
    #[derive(Clone, Default)]
    struct Both(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Both {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Both {
        /// What was written since the last call.
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.borrow_mut())).unwrap()
        }
    }

    /// `--follow` prints a file's lines as it reads them, not once the whole look at it is
    /// done (it held the output of the whole file in memory first: a large file took memory
    /// in proportion, and printed nothing until read to its end), so what goes to stderr on
    /// the way (a drop of held lines, a file replaced) comes after the lines before it.
    #[test]
    fn follow_prints_as_it_reads_and_notices_come_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let rec = |tid: &str, lvl: &str, body: &str| {
            format!("{{\"ts\":1,\"tid\":\"{tid}\",\"lvl\":{lvl},{body}}}\n")
        };
        let job = format!(r#""at":"job","st":"started","pad":"{}""#, "x".repeat(300));
        let mut text = "hello\n".to_owned();
        for i in 0..3 {
            text += &rec(&format!("P{i}"), "[1]", &job);
        }
        text += &rec("M", "[1]", r#""at":"db","st":"started""#);
        fs::write(&a, text).unwrap();
        fs::write(&b, rec("B", "[1]", r#""at":"db","st":"started""#)).unwrap();
        let args = args(&["--follow", "--action", "db", "--max-buffer", "1K"]);
        let both = Both::default();
        let mut s = Stream::new(&args, Paint(false), Box::new(both.clone()));
        let mut files = vec![
            Followed::new("a.log", a.clone()),
            Followed::new("b.log", b.clone()),
        ];
        let mut current = usize::MAX;
        let mut out = both.clone();
        poll_all(&mut files, &mut s, &mut out, &mut current).unwrap();
        assert_eq!(
            both.take(),
            "==> a.log <==\n\
             ! line 1: not a record: hello\n\
             logxide view: --max-buffer (1024 bytes) reached holding the lines of tasks not yet known to contain an action of type db: dropped 2 lines of 2 tasks, those held longest; if one of them turns out to contain it, only its lines from here on are shown\n\
             M db started\n\
             ==> b.log <==\n\
             B db started\n"
        );
        // Rotated: a line appended to the old file, which is renamed, a new file in its place.
        fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .unwrap()
            .write_all(rec("M", "[2]", r#""mt":"info","msg":"last of the old""#).as_bytes())
            .unwrap();
        fs::rename(&a, dir.path().join("a.1.log")).unwrap();
        fs::write(&a, rec("N", "[1]", r#""at":"db","st":"started""#)).unwrap();
        poll_all(&mut files, &mut s, &mut out, &mut current).unwrap();
        assert_eq!(
            both.take(),
            "==> a.log <==\n\
             M   info: last of the old\n\
             logxide view: a.log: replaced, reading the new file\n\
             N db started\n"
        );
    }

    #[test]
    fn tree_shape() {
        let rs = recs(
            r#"{"ts":1,"tid":"B","lvl":[1],"at":"http","st":"started"}
{"ts":1,"tid":"B","lvl":[3,1],"at":"db","st":"started"}
{"ts":1,"tid":"B","lvl":[2],"mt":"debug","msg":"in"}
{"ts":1,"tid":"B","lvl":[3,2],"at":"db","st":"succeeded","dur":0.1}"#,
        );
        let refs: Vec<&Record> = rs.iter().collect();
        let tree = build(&refs, None);
        assert!(tree.incomplete);
        assert_eq!(tree.roots.len(), 1);
        let root = &tree.nodes[tree.roots[0]];
        assert_eq!(root.children.len(), 2);
        assert_eq!(tree.nodes[root.children[1]].children.len(), 1);
        let mut out = Vec::new();
        render(&mut out, &tree, Paint(false)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "└─ http started (incomplete)\n   ├─ debug: in\n   └─ db started\n      └─ db succeeded 100.0ms\n"
        );
        let tree = build(&refs, Some(Level::Info));
        assert_eq!(tree.nodes[tree.roots[0]].children.len(), 1);
    }
}
