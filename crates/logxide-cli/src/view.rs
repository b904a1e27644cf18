//! `logxide view`: logxide files rendered as task trees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use logxide::Level;

use crate::record::{
    self, dur_text, parse_time, sanitize, sanitize_bytes, time_text, value_text, Chunk, Kind,
    Record, Status,
};

/// How long `--follow` waits between looks at the files.
const POLL: Duration = Duration::from_millis(100);
/// Characters of a bad line shown.
const BAD_LINE_CHARS: usize = 100;

/// When to color the output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    /// When standard output is a terminal and NO_COLOR is not set
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// Show logxide files as task trees
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Tasks are printed in the order they first appear, one line per record: action type and\n\
status, duration, then fields key=value. Tasks without their end record are marked (incomplete);\n\
lines that are not records are shown as `! line N: not a record: ...`. Control characters in the\n\
file are shown escaped (\\x1b, \\n, \\u{2028}), never sent to the terminal. Rotated files compressed\n\
with gzip or zstd (app.<stamp>.log.gz, .zst) are decompressed.\n\n\
--follow prints the whole file first, then every complete line appended, with its task id."
)]
pub struct ViewArgs {
    /// Files to show; `-` reads standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Keep reading lines appended to the files, like `tail -f` (a truncated or rotated file
    /// is reopened); records are printed as they arrive, indented by their depth
    #[arg(short, long)]
    pub follow: bool,
    /// Color failed actions and errors
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Hide messages below LEVEL (debug, info, success, note, warning, error, critical);
    /// actions are always shown
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub level: Option<Level>,
    /// Only tasks whose id starts with ID
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Only tasks containing an action of type TYPE
    #[arg(long, value_name = "TYPE")]
    pub action: Option<String>,
    /// Only tasks with records at or after TIME (Unix seconds or RFC 3339 UTC, e.g.
    /// 2026-11-23T10:00:00Z); with --follow, only records
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<f64>,
    /// Only tasks with records at or before TIME; with --follow, only records
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<f64>,
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

fn message_level(rec: &Record) -> Option<Level> {
    match &rec.kind {
        Kind::Message { mt, .. } => mt.parse().ok(),
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
            let style = match mt.parse::<Level>() {
                Ok(Level::Error | Level::Critical) => Some(RED_BOLD),
                Ok(Level::Warning) => Some(YELLOW),
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

fn bad_line(no: u64, bytes: &[u8]) -> String {
    format!(
        "! line {no}: not a record: {}",
        sanitize_bytes(bytes, BAD_LINE_CHARS)
    )
}

fn nul_line(no: u64, len: u64) -> String {
    format!("! line {no}: NUL tail ({len} zero bytes) ignored")
}

struct Node<'a> {
    rec: &'a Record,
    children: Vec<Node<'a>>,
    incomplete: bool,
}

/// The tree of records sharing the first `d` parts of their levels.
fn build<'a>(
    recs: &[&'a Record],
    d: usize,
    min: Option<Level>,
    incomplete: &mut bool,
) -> Vec<Node<'a>> {
    type Slot<'a> = (Vec<&'a Record>, Vec<&'a Record>);
    let mut slots: BTreeMap<u64, Slot<'a>> = BTreeMap::new();
    for &r in recs {
        let slot = slots.entry(r.lvl[d]).or_default();
        if r.lvl.len() == d + 1 {
            slot.0.push(r);
        } else {
            slot.1.push(r);
        }
    }
    let mut head = None;
    let mut ended = false;
    let mut items = Vec::new();
    for (k, (direct, deeper)) in slots {
        for r in direct {
            if k == 1 && head.is_none() && r.is_start() {
                head = Some(r);
                continue;
            }
            ended |= r.is_end();
            if !hidden(r, min) {
                items.push(Node {
                    rec: r,
                    children: Vec::new(),
                    incomplete: false,
                });
            }
        }
        if !deeper.is_empty() {
            items.extend(build(&deeper, d + 1, min, incomplete));
        }
    }
    match head {
        Some(rec) => {
            *incomplete |= !ended;
            vec![Node {
                rec,
                children: items,
                incomplete: !ended,
            }]
        }
        None => items,
    }
}

fn render(
    out: &mut dyn Write,
    nodes: &[Node<'_>],
    prefix: &mut String,
    p: Paint,
) -> io::Result<()> {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let guide = if last { "└─ " } else { "├─ " };
        writeln!(
            out,
            "{}{}",
            p.wrap(DIM, &format!("{prefix}{guide}")),
            record_line(n.rec, n.incomplete, p)
        )?;
        let len = prefix.len();
        prefix.push_str(if last { "   " } else { "│  " });
        render(out, &n.children, prefix, p)?;
        prefix.truncate(len);
    }
    Ok(())
}

struct Task {
    tid: String,
    recs: Vec<Record>,
}

enum Item {
    Task(usize),
    Note(String),
}

fn task_shown(t: &Task, args: &ViewArgs) -> bool {
    if let Some(prefix) = &args.task {
        if !t.tid.starts_with(prefix.as_str()) {
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

/// Reads all of `input`, then prints its tasks as trees in the order they first appear.
fn view_all(input: impl Read, args: &ViewArgs, p: Paint, out: &mut dyn Write) -> io::Result<()> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut items: Vec<Item> = Vec::new();
    record::for_each_line(BufReader::with_capacity(1 << 16, input), |chunk| {
        match chunk {
            Chunk::Line { no, bytes, .. } => {
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
                            items.push(Item::Task(tasks.len() - 1));
                            tasks.len() - 1
                        });
                        tasks[i].recs.push(rec);
                    }
                    Err(_) => items.push(Item::Note(bad_line(no, bytes))),
                }
            }
            Chunk::NulTail { no, len, .. } => items.push(Item::Note(nul_line(no, len))),
        }
        Ok(())
    })?;
    for item in &items {
        match item {
            Item::Note(text) => writeln!(out, "{}", p.wrap(YELLOW, text))?,
            Item::Task(i) => {
                let t = &tasks[*i];
                if !task_shown(t, args) {
                    continue;
                }
                let refs: Vec<&Record> = t.recs.iter().collect();
                let mut incomplete = false;
                let nodes = build(&refs, 0, args.level, &mut incomplete);
                let first = t.recs.iter().map(|r| r.ts).fold(f64::INFINITY, f64::min);
                let mut head = format!("{} {}", p.wrap(BOLD, &sanitize(&t.tid)), time_text(first));
                head = finish(head, incomplete, p);
                writeln!(out, "{head}")?;
                render(out, &nodes, &mut String::new(), p)?;
            }
        }
    }
    Ok(())
}

/// Prints records one by one as they arrive (`--follow`).
struct Stream<'a> {
    args: &'a ViewArgs,
    paint: Paint,
    /// With `--action`: lines of tasks not (yet) known to contain the action.
    pending: HashMap<String, Vec<String>>,
    matched: HashSet<String>,
}

impl Stream<'_> {
    fn line(&mut self, out: &mut dyn Write, no: u64, bytes: &[u8]) -> io::Result<()> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let rec = match record::parse(bytes) {
            Ok(r) => r,
            Err(_) => return writeln!(out, "{}", self.paint.wrap(YELLOW, &bad_line(no, bytes))),
        };
        let a = self.args;
        if a.task
            .as_ref()
            .is_some_and(|t| !rec.tid.starts_with(t.as_str()))
            || a.since.is_some_and(|s| rec.ts < s)
            || a.until.is_some_and(|u| rec.ts > u)
            || hidden(&rec, a.level)
        {
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
        if self.matched.contains(&rec.tid) {
            return writeln!(out, "{text}");
        }
        if rec.action_type() == Some(want.as_str()) {
            for earlier in self.pending.remove(&rec.tid).unwrap_or_default() {
                writeln!(out, "{earlier}")?;
            }
            self.matched.insert(rec.tid.clone());
            return writeln!(out, "{text}");
        }
        if rec.is_end() && rec.lvl.len() == 1 {
            self.pending.remove(&rec.tid); // the task ended without the action
        } else {
            self.pending.entry(rec.tid.clone()).or_default().push(text);
        }
        Ok(())
    }
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
    /// Prints the complete lines after `pos`; an incomplete last line (or a NUL tail, where
    /// an mmap writer has not written yet) stays for the next look.
    fn read_new(&mut self, s: &mut Stream<'_>, out: &mut dyn Write) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let mut r = BufReader::with_capacity(1 << 16, file);
        r.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        let mut any = false;
        loop {
            match r.fill_buf()?.first() {
                None => break,
                Some(0) => {
                    // Zeros: an mmap region not written yet (wait), or zeros left by a crash
                    // with records after them (skip them).
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
                        break;
                    }
                    self.pos += zeros;
                    writeln!(
                        out,
                        "{}",
                        s.paint.wrap(
                            YELLOW,
                            &format!("! line {}: {zeros} zero bytes skipped", self.line_no + 1)
                        )
                    )?;
                    any = true;
                    continue;
                }
                Some(_) => {}
            }
            buf.clear();
            let n = r.read_until(b'\n', &mut buf)?;
            if buf.last() != Some(&b'\n') {
                break;
            }
            self.pos += n as u64;
            self.line_no += 1;
            s.line(out, self.line_no, &buf[..n - 1])?;
            any = true;
        }
        Ok(any)
    }

    fn poll(&mut self, s: &mut Stream<'_>, out: &mut dyn Write) -> io::Result<bool> {
        let Ok(meta) = fs::metadata(&self.path) else {
            return Ok(false); // moved away: wait for a new file under the name
        };
        let id = file_id(&meta);
        let mut any = false;
        if self.file.is_none() || (id.is_some() && id != self.id) {
            if self.file.is_some() {
                any |= self.read_new(s, out)?; // the rest of the old file first
                eprintln!(
                    "logxide view: {}: replaced, reading the new file",
                    sanitize(&self.name)
                );
            }
            self.file = Some(File::open(&self.path)?);
            self.id = id;
            self.pos = 0;
            self.line_no = 0;
            self.seen = None;
        } else if meta.len() < self.pos {
            eprintln!(
                "logxide view: {}: truncated, reading from the start",
                sanitize(&self.name)
            );
            self.pos = 0;
            self.line_no = 0;
        }
        let seen = Some((meta.len(), meta.modified().ok()));
        if seen == self.seen {
            return Ok(any);
        }
        self.seen = seen;
        Ok(self.read_new(s, out)? | any)
    }
}

fn follow(args: &ViewArgs, p: Paint, out: &mut dyn Write) -> io::Result<ExitCode> {
    let mut s = Stream {
        args,
        paint: p,
        pending: HashMap::new(),
        matched: HashSet::new(),
    };
    if args.files.iter().any(|f| f == "-") {
        let stdin = io::stdin().lock();
        let mut no = 0;
        for line in stdin.split(b'\n') {
            no += 1;
            s.line(out, no, &line?)?;
            out.flush()?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut files = Vec::new();
    for name in &args.files {
        let path = PathBuf::from(name);
        match File::open(&path).and_then(|mut f| record::compression_of(&mut f)) {
            Err(e) => {
                eprintln!(
                    "logxide view: {}: {}",
                    sanitize(name),
                    sanitize(&e.to_string())
                );
                return Ok(ExitCode::from(2));
            }
            Ok(Some(c)) => {
                eprintln!(
                    "logxide view: {}: compressed ({}), a rotated file that does not grow: view it without --follow",
                    sanitize(name),
                    c.name()
                );
                return Ok(ExitCode::from(2));
            }
            Ok(None) => {}
        }
        files.push(Followed {
            name: name.clone(),
            path,
            file: None,
            id: None,
            pos: 0,
            line_no: 0,
            seen: None,
        });
    }
    let many = files.len() > 1;
    let mut current = usize::MAX;
    loop {
        for (i, f) in files.iter_mut().enumerate() {
            let mut buf = Vec::new();
            let res = f.poll(&mut s, &mut buf);
            if let Err(e) = res {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Err(e);
                }
                eprintln!(
                    "logxide view: {}: {}",
                    sanitize(&f.name),
                    sanitize(&e.to_string())
                );
                f.file = None;
            }
            if !buf.is_empty() {
                if many && current != i {
                    writeln!(out, "==> {} <==", sanitize(&f.name))?;
                    current = i;
                }
                out.write_all(&buf)?;
                out.flush()?;
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `logxide view`: 0, or 2 when an input cannot be read.
pub fn run(args: &ViewArgs) -> ExitCode {
    let color = match args.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty())
        }
    };
    let p = Paint(color);
    if args.follow && args.files.len() > 1 && args.files.iter().any(|f| f == "-") {
        eprintln!("logxide view: with --follow, `-` (standard input) must be the only input");
        return ExitCode::from(2);
    }
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        eprintln!("logxide view: `-` (standard input) may be given once: it can be read only once");
        return ExitCode::from(2);
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let res = if args.follow {
        follow(args, p, &mut out)
    } else {
        let mut code = ExitCode::SUCCESS;
        let many = args.files.len() > 1;
        let mut res = Ok(());
        for (i, name) in args.files.iter().enumerate() {
            if many {
                let sep = if i == 0 { "" } else { "\n" };
                if let Err(e) = writeln!(out, "{sep}==> {} <==", sanitize(name)) {
                    res = Err(e);
                    break;
                }
            }
            let r = if name == "-" {
                view_all(io::stdin().lock(), args, p, &mut out)
            } else {
                match record::open_lines(name.as_ref()) {
                    Ok(f) => view_all(f, args, p, &mut out),
                    Err(e) => {
                        let _ = out.flush();
                        eprintln!(
                            "logxide view: {}: {}",
                            sanitize(name),
                            sanitize(&e.to_string())
                        );
                        code = ExitCode::from(2);
                        continue;
                    }
                }
            };
            if let Err(e) = r {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    res = Err(e);
                    break;
                }
                let _ = out.flush();
                eprintln!(
                    "logxide view: {}: {}",
                    sanitize(name),
                    sanitize(&e.to_string())
                );
                code = ExitCode::from(2);
            }
        }
        res.map(|()| code)
    };
    match res.and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logxide view: {e}");
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

    #[test]
    fn tree_shape() {
        let rs = recs(
            r#"{"ts":1,"tid":"B","lvl":[1],"at":"http","st":"started"}
{"ts":1,"tid":"B","lvl":[3,1],"at":"db","st":"started"}
{"ts":1,"tid":"B","lvl":[2],"mt":"debug","msg":"in"}
{"ts":1,"tid":"B","lvl":[3,2],"at":"db","st":"succeeded","dur":0.1}"#,
        );
        let refs: Vec<&Record> = rs.iter().collect();
        let mut inc = false;
        let nodes = build(&refs, 0, None, &mut inc);
        assert!(inc);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].children.len(), 2);
        assert_eq!(nodes[0].children[1].children.len(), 1);
        let mut out = Vec::new();
        render(&mut out, &nodes, &mut String::new(), Paint(false)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "└─ http started (incomplete)\n   ├─ debug: in\n   └─ db started\n      └─ db succeeded 100.0ms\n"
        );
        let nodes = build(&refs, 0, Some(Level::Info), &mut inc);
        assert_eq!(nodes[0].children.len(), 1);
    }
}
