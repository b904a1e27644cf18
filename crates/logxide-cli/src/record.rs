//! Reading logxide files back: one record per JSON line, in the compact layout
//! (`ts tid lvl mt msg at st`) or Eliot's (`timestamp task_uuid task_level message_type
//! message action_type action_status`), shared by `logxide check` and `logxide view`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use logxide::encode::calendar::{civil_from_days, days_from_civil};
use logxide::encode::Format;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// JSON nested deeper than this (arrays and objects) is refused: parsing, printing and
/// dropping a value recurse. logxide writes serde values up to 1023 levels deep (deeper ones
/// become a serialize error), so every record it writes fits; this is well above serde_json's
/// own limit of 128.
pub const MAX_NESTING: usize = 1024;

/// Whether the arrays and objects of `line` nest deeper than `max` (strings skipped).
fn nests_deeper(line: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in line {
        if in_str {
            match b {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// An action's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The action's first record.
    Started,
    /// The action ended well.
    Succeeded,
    /// The action ended with an error.
    Failed,
}

impl Status {
    /// `started`, `succeeded` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }
}

/// What a record is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A log message: its type (the level name for log lines) and text.
    Message { mt: String, msg: Option<String> },
    /// An action record: its type and status.
    Action { at: String, st: Status },
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Unix seconds.
    pub ts: f64,
    /// Task id.
    pub tid: String,
    /// Task level (Eliot numbering), never empty, every part ≥ 1.
    pub lvl: Vec<u64>,
    pub kind: Kind,
    /// An action's duration in seconds (end records).
    pub dur: Option<f64>,
    /// Every other key, in the order of the line.
    pub fields: Vec<(String, Value)>,
}

impl Record {
    /// Whether this is an action's `started` record.
    pub fn is_start(&self) -> bool {
        matches!(
            self.kind,
            Kind::Action {
                st: Status::Started,
                ..
            }
        )
    }

    /// Whether this is an action's end record (`succeeded` or `failed`).
    pub fn is_end(&self) -> bool {
        matches!(self.kind, Kind::Action { st, .. } if st != Status::Started)
    }

    /// The action type, for action records.
    pub fn action_type(&self) -> Option<&str> {
        match &self.kind {
            Kind::Action { at, .. } => Some(at),
            Kind::Message { .. } => None,
        }
    }

    /// Depth in the task tree (the task itself is 0): an action's start is at the depth of
    /// its level's length, every other record of the action one deeper; a message outside
    /// any action (`[1]`) is at depth 1.
    pub fn depth(&self) -> usize {
        let n = self.lvl.len();
        if self.is_start() || (n == 1 && self.lvl[0] == 1) {
            n
        } else {
            n + 1
        }
    }
}

/// Why a line is not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON at all (or not an object).
    Json(String),
    /// A JSON object, but not a record: a key is missing or has the wrong type.
    Record(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(m) | ParseError::Record(m) => f.write_str(m),
        }
    }
}

/// A JSON value at the top of a line: an object with its keys in order, or what else it is.
enum Top {
    Object(Vec<(String, Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Top::Object(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Other("an array"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
                Ok(Top::Other("a string"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
                Ok(Top::Other("null"))
            }
        }
        d.deserialize_any(V)
    }
}

fn take(obj: &mut Vec<(String, Value)>, key: &str) -> Option<Value> {
    let i = obj.iter().position(|(k, _)| k == key)?;
    Some(obj.remove(i).1)
}

/// What is wrong with a line serde_json refused: its message with the column, not
/// serde_json's "line 1" (the line is the file's, given apart).
fn json_error(line: &[u8], e: &serde_json::Error) -> ParseError {
    if line.iter().all(u8::is_ascii_whitespace) {
        return ParseError::Json("empty line, not a record".to_owned());
    }
    if let Err(u) = std::str::from_utf8(line) {
        // (serde_json calls it an "invalid unicode code point", or an unexpected value.)
        return ParseError::Json(format!(
            "not valid UTF-8: byte 0x{:02x} at column {}",
            line[u.valid_up_to()],
            u.valid_up_to() + 1
        ));
    }
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    let msg = text.strip_suffix(&at).unwrap_or(&text);
    ParseError::Json(format!("not valid JSON: {msg} at column {}", e.column()))
}

/// Parses one line (a trailing `\n` or `\r\n` is allowed).
pub fn parse(line: &[u8]) -> Result<Record, ParseError> {
    if nests_deeper(line, MAX_NESTING) {
        return Err(ParseError::Json(format!(
            "nested deeper than {MAX_NESTING} levels"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    de.disable_recursion_limit();
    let top = Top::deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top))
        .map_err(|e| json_error(line, &e))?;
    let mut obj = match top {
        Top::Object(o) => o,
        Top::Other(what) => return Err(ParseError::Json(format!("not a JSON object but {what}"))),
    };
    fn has(obj: &[(String, Value)], k: &str) -> bool {
        obj.iter().any(|(key, _)| key == k)
    }
    // The layout whose task key the record has; with both (a user field named like the
    // other layout's key: neither reserves the other's names), the one whose header comes
    // first, as the library writes it; with neither, compact (its errors name its keys).
    let eliot = match (has(&obj, "tid"), has(&obj, "task_uuid")) {
        (false, true) => true,
        (true, true) => obj
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| matches!(*k, "ts" | "tid" | "timestamp" | "task_uuid"))
            .is_some_and(|k| k == "timestamp" || k == "task_uuid"),
        _ => !has(&obj, "ts") && has(&obj, "timestamp"),
    };
    let keys = match eliot {
        true => Format::Eliot.header_keys(),
        false => Format::Compact.header_keys(),
    };
    let bad = |m: String| ParseError::Record(m);
    let missing = |k: &str| bad(format!("missing key \"{k}\""));
    // Readers disagree on which of two equal keys counts; logxide writes each of these once.
    for k in [
        keys.ts, keys.tid, keys.lvl, keys.mt, keys.msg, keys.at, keys.st, "dur",
    ] {
        if obj.iter().filter(|(key, _)| key == k).nth(1).is_some() {
            return Err(bad(format!("duplicate key \"{k}\"")));
        }
    }

    let ts = match take(&mut obj, keys.ts) {
        None => return Err(missing(keys.ts)),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| bad(format!("\"{}\" is not a number", keys.ts)))?,
    };
    let tid = match take(&mut obj, keys.tid) {
        None => return Err(missing(keys.tid)),
        // (The library never writes an empty one: it would name no task, and all such
        // records would make one task.)
        Some(Value::String(s)) if s.is_empty() => {
            return Err(bad(format!(
                "\"{}\" is an empty string, not a task id",
                keys.tid
            )))
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad(format!("\"{}\" is not a string", keys.tid))),
    };
    let lvl = match take(&mut obj, keys.lvl) {
        None => return Err(missing(keys.lvl)),
        Some(v) => v
            .as_array()
            .filter(|a| !a.is_empty())
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_u64().filter(|&n| n >= 1))
                    .collect::<Option<Vec<u64>>>()
            })
            .ok_or_else(|| {
                bad(format!(
                    "\"{}\" is not a non-empty array of positive integers",
                    keys.lvl
                ))
            })?,
    };
    let kind = if let Some(mt) = take(&mut obj, keys.mt) {
        let Value::String(mt) = mt else {
            return Err(bad(format!("\"{}\" is not a string", keys.mt)));
        };
        // (Both are reserved: the library writes one or the other, and readers would differ
        // on which this is.)
        if let Some(k) = [keys.at, keys.st].into_iter().find(|k| has(&obj, k)) {
            return Err(bad(format!(
                "both a message type (\"{}\") and \"{k}\": a record is a message or an action",
                keys.mt
            )));
        }
        let msg = match take(&mut obj, keys.msg) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(bad(format!("\"{}\" is not a string", keys.msg))),
        };
        Kind::Message { mt, msg }
    } else if let Some(at) = take(&mut obj, keys.at) {
        let Value::String(at) = at else {
            return Err(bad(format!("\"{}\" is not a string", keys.at)));
        };
        // (Reserved: the library writes a text on messages only.)
        if has(&obj, keys.msg) {
            return Err(bad(format!(
                "\"{}\" on an action: only a message has a text",
                keys.msg
            )));
        }
        let st = match take(&mut obj, keys.st) {
            None => return Err(missing(keys.st)),
            Some(Value::String(s)) => match s.as_str() {
                "started" => Status::Started,
                "succeeded" => Status::Succeeded,
                "failed" => Status::Failed,
                _ => {
                    return Err(bad(format!(
                        "\"{}\" is {s:?}, not started, succeeded or failed",
                        keys.st
                    )))
                }
            },
            Some(_) => return Err(bad(format!("\"{}\" is not a string", keys.st))),
        };
        Kind::Action { at, st }
    } else if has(&obj, keys.st) {
        return Err(missing(keys.at));
    } else {
        return Err(bad(format!(
            "neither a message type (\"{}\") nor an action type and status (\"{}\", \"{}\")",
            keys.mt, keys.at, keys.st
        )));
    };
    let dur = match obj.iter().position(|(k, _)| k == "dur") {
        Some(i) if obj[i].1.is_number() => obj.remove(i).1.as_f64(),
        Some(_) => return Err(bad("\"dur\" is not a number".to_owned())),
        None => None,
    };
    Ok(Record {
        ts,
        tid,
        lvl,
        kind,
        dur,
        fields: obj,
    })
}

/// How a file is compressed: logxide's rotation gzips or zstd-compresses rotated files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The compression of a file, from its first bytes (the gzip or zstd magic number); the
/// file is then at its start again (it must be seekable: a regular file).
pub fn compression_of(file: &mut File) -> io::Result<Option<Compression>> {
    let (magic, n) = first_bytes(file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(compression_by(&magic[..n]))
}

/// Up to the first 4 bytes of `r` (fewer if it ends), and how many.
fn first_bytes(r: &mut impl Read) -> io::Result<([u8; 4], usize)> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((magic, n))
}

/// The compression the first bytes of a file say.
fn compression_by(magic: &[u8]) -> Option<Compression> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// Whether `path` is a stream, neither a regular file nor a directory: a FIFO (a shell's
/// `<(cmd)`), a character device. It can be read once, from its start, without seeking.
pub fn is_stream(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Opens `path` for reading its lines: a gzip or zstd file (a rotated, compressed log) is
/// decompressed. Also says how it is compressed. The first bytes read to know it are read
/// again from memory, not by seeking back: a FIFO (a shell's `<(cmd)`) is read as a stream.
pub fn open_lines(path: &Path) -> io::Result<(Box<dyn Read>, Option<Compression>)> {
    let mut file = File::open(path)?;
    let (magic, n) = first_bytes(&mut file)?;
    let compression = compression_by(&magic[..n]);
    let file = io::Cursor::new(magic[..n].to_vec()).chain(file);
    let reader: Box<dyn Read> = match compression {
        Some(Compression::Gzip) => Box::new(GzipMembers {
            member: Some(flate2::bufread::GzDecoder::new(
                io::BufReader::with_capacity(1 << 16, file),
            )),
        }),
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::new(file)?),
        None => Box::new(file),
    };
    Ok((reader, compression))
}

/// The data of a gzip file: its members one after the other (as `MultiGzDecoder` reads
/// them), then, as gzip does, zero bytes up to the end of the file ignored (a preallocated
/// file, a tool padding to a block size leaves them; `MultiGzDecoder` read them as a header
/// and failed). Other bytes after those zeros are an error (gzip's "trailing garbage").
struct GzipMembers<R: BufRead> {
    /// The member being read; `None` once the data ended.
    member: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(member) = &mut self.member else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The member ended, its checksum and size checked: the rest of the file follows.
            let mut rest = self.member.take().expect("read from").into_inner();
            if !at_end_past_zeros(&mut rest)? {
                self.member = Some(flate2::bufread::GzDecoder::new(rest));
            }
        }
    }
}

/// After a gzip member: whether `r` is at its end once the zero bytes at its front are
/// skipped (`Ok(false)`: another member follows, no zero before it).
///
/// # Errors
/// Bytes other than zero after zeros, and `r`'s read errors.
fn at_end_past_zeros(r: &mut impl BufRead) -> io::Result<bool> {
    let mut zeros = 0u64;
    loop {
        let b = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if b.is_empty() {
            return Ok(true);
        }
        let n = b.iter().take_while(|&&c| c == 0).count();
        if n == 0 {
            if zeros == 0 {
                return Ok(false);
            }
            let what = if zeros == 1 {
                "zero byte"
            } else {
                "zero bytes"
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{zeros} {what}, then other bytes after the gzip data"),
            ));
        }
        r.consume(n);
        zeros += n as u64;
    }
}

/// The first of `files` that is a file named before it (under another name, or a hard link:
/// the same device and inode; elsewhere the same path once resolved). Several files are read
/// as one log, so its records would be read twice. `-` and files that cannot be looked at
/// (reported when they are opened) are left out.
pub fn repeated_file(files: &[PathBuf]) -> Option<&PathBuf> {
    let mut seen = std::collections::HashSet::new();
    files
        .iter()
        .filter(|f| f.as_os_str() != "-")
        .find(|f| file_key(f).is_some_and(|key| !seen.insert(key)))
}

#[cfg(unix)]
fn file_key(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_key(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The usage error of [`repeated_file`] `f`.
pub fn repeated_file_text(f: &Path) -> String {
    format!(
        "{} is given twice: the files are read as one log, its records would be read twice",
        sanitize(&f.display().to_string())
    )
}

/// How far an input was read: its complete lines and their bytes (decompressed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSoFar {
    /// Lines read (the last one possibly without its `\n`).
    pub lines: u64,
    /// Bytes of those lines.
    pub bytes: u64,
}

/// What an error that stopped reading an input means, for a person: for a compressed file,
/// that its data is truncated or corrupt and where; for a plain one, where reading failed.
pub fn read_error_text(e: &io::Error, compression: Option<Compression>, at: ReadSoFar) -> String {
    let lines = match at.lines {
        1 => "1 line".to_owned(),
        n => format!("{n} lines"),
    };
    match compression {
        Some(c) => {
            let what = if e.kind() == io::ErrorKind::UnexpectedEof
                || e.to_string().contains("incomplete")
            {
                "truncated"
            } else {
                "corrupt"
            };
            format!(
                "the {} data is {what} ({e}): {lines} ({} bytes) were read before it",
                c.name(),
                at.bytes
            )
        }
        None => format!("read error after {lines} ({} bytes): {e}", at.bytes),
    }
}

/// A size: a number of bytes, or with a K, M or G suffix (KiB, MiB, GiB).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&t[..t.len() - 1], 10),
        Some(b'M') => (&t[..t.len() - 1], 20),
        Some(b'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("invalid size {text:?}: expected a positive number of bytes, or with K, M or G (like 64K, 32M, 1G)")
        })
}

/// `--max-line`'s default: the library's default queue bound (`max_bytes`, 64 MiB), which no
/// record it writes with its defaults exceeds.
pub const DEFAULT_MAX_LINE: &str = "64M";

/// How [`read_line`] found a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRead {
    /// Bytes taken from the reader, the `\n` included; 0 at the end of the input.
    pub taken: u64,
    /// Whether the line ended with `\n` (else the input ended first).
    pub terminated: bool,
    /// Zero bytes at the end of what was taken (of an unterminated line: a NUL tail, maybe).
    pub trailing_zeros: u64,
}

impl LineRead {
    /// The line's length without its `\n`.
    pub fn len(&self) -> u64 {
        self.taken - u64::from(self.terminated)
    }
}

/// Reads one line of `r` (up to and with its `\n`, or to the end of the input), keeping in
/// `buf` (cleared first) at most `max + 1` of its bytes: all of a line of at most `max` bytes
/// with its `\n`, else only its beginning (the rest is read and counted, never held), so that
/// memory stays bounded however long a line is.
pub fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    buf.clear();
    let keep = max.saturating_add(1);
    let mut got = LineRead {
        taken: 0,
        terminated: false,
        trailing_zeros: 0,
    };
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(got);
        }
        let (n, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let part = &avail[..n];
        let room = keep - buf.len().min(keep);
        buf.extend_from_slice(&part[..n.min(room)]);
        let zeros = part.iter().rev().take_while(|&&b| b == 0).count() as u64;
        got.trailing_zeros = if zeros == n as u64 {
            got.trailing_zeros + zeros
        } else {
            zeros
        };
        got.taken += n as u64;
        r.consume(n);
        if done {
            got.terminated = true;
            return Ok(got);
        }
    }
}

/// The zero bytes at the start of a line and the rest of it. Zeros before a record are a
/// hole a crash left (an mmap region never written, then a writer appending after it): the
/// tools skip them, saying so, and read the record after them.
pub fn split_zeros(line: &[u8]) -> (u64, &[u8]) {
    let n = line.iter().take_while(|&&b| b == 0).count();
    (n as u64, &line[n..])
}

/// One piece of an input, as [`for_each_line`] reads it.
#[derive(Debug)]
pub enum Chunk<'a> {
    /// A line, without its `\n`; `terminated` is false for a last line without one.
    Line {
        no: u64,
        offset: u64,
        bytes: &'a [u8],
        terminated: bool,
    },
    /// A line longer than the limit given to [`for_each_line`]: `len` bytes without its `\n`,
    /// not kept.
    Long {
        no: u64,
        offset: u64,
        len: u64,
        terminated: bool,
    },
    /// Zero bytes at the very end of the input (a crash with mmap leaves the pre-sized
    /// region after the last record zeroed). `no` is the line they are on.
    NulTail { no: u64, offset: u64, len: u64 },
}

impl Chunk<'_> {
    /// How far the input has been read once this chunk is: its lines and bytes so far.
    pub fn read_so_far(&self) -> ReadSoFar {
        match *self {
            Chunk::Line {
                no,
                offset,
                bytes,
                terminated,
            } => ReadSoFar {
                lines: no,
                bytes: offset + bytes.len() as u64 + u64::from(terminated),
            },
            Chunk::Long {
                no,
                offset,
                len,
                terminated,
            } => ReadSoFar {
                lines: no,
                bytes: offset + len + u64::from(terminated),
            },
            Chunk::NulTail { no, offset, len } => ReadSoFar {
                lines: no,
                bytes: offset + len,
            },
        }
    }
}

/// The lines of an input as [`Chunk`]s, one at a time: every line in order, then the NUL
/// tail if there is one. A line longer than `max` bytes (without its `\n`, and without a NUL
/// tail) is a [`Chunk::Long`]: at most `max + 1` bytes of a line are ever held.
pub struct Lines<R> {
    r: R,
    max: usize,
    buf: Vec<u8>,
    no: u64,
    offset: u64,
    /// The NUL tail after the line last given (`no`, `offset`, `len`), given next.
    nul: Option<(u64, u64, u64)>,
}

impl<R: BufRead> Lines<R> {
    /// The lines of `r`, each of at most `max` bytes held.
    pub fn new(r: R, max: usize) -> Self {
        Lines {
            r,
            max,
            buf: Vec::with_capacity(4096),
            no: 0,
            offset: 0,
            nul: None,
        }
    }

    /// The next chunk; `None` at the end of the input.
    ///
    /// # Errors
    /// The input's read errors.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk<'_>>> {
        if let Some((no, offset, len)) = self.nul.take() {
            return Ok(Some(Chunk::NulTail { no, offset, len }));
        }
        let got = read_line(&mut self.r, &mut self.buf, self.max)?;
        if got.taken == 0 {
            return Ok(None);
        }
        self.no += 1;
        let (no, start) = (self.no, self.offset);
        self.offset += got.taken;
        let nuls = if got.terminated {
            0
        } else {
            got.trailing_zeros
        };
        let len = got.len() - nuls;
        if nuls > 0 {
            self.nul = Some((no, start + len, nuls));
        }
        if len > self.max as u64 {
            return Ok(Some(Chunk::Long {
                no,
                offset: start,
                len,
                terminated: got.terminated,
            }));
        }
        if len > 0 || got.terminated {
            return Ok(Some(Chunk::Line {
                no,
                offset: start,
                bytes: &self.buf[..len as usize],
                terminated: got.terminated,
            }));
        }
        // (Nothing but zeros, no `\n`: the NUL tail alone.)
        let (no, offset, len) = self.nul.take().expect("zeros were taken");
        Ok(Some(Chunk::NulTail { no, offset, len }))
    }
}

/// Calls `f` with every line of `r` in order, then with the NUL tail if there is one (see
/// [`Lines`]).
#[cfg(test)]
pub fn for_each_line(
    r: impl BufRead,
    max: usize,
    mut f: impl FnMut(Chunk<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut lines = Lines::new(r, max);
    while let Some(chunk) = lines.next_chunk()? {
        f(chunk)?;
    }
    Ok(())
}

/// One input of [`for_each_merged`].
struct Merged<R> {
    lines: Lines<R>,
    /// Its next record line, not given yet: the record parsed for its `ts` (given to `f`,
    /// not parsed again), and the chunk's fields (its bytes are the start of `lines.buf`).
    held: Option<(Record, u64, u64, usize, bool)>,
    /// The `ts` of its first record: its place among the inputs, unless they are
    /// interleaved.
    first: Option<f64>,
    so_far: ReadSoFar,
    done: bool,
}

/// Calls `f` with the chunks of several inputs read as one log, each input's chunks in their
/// order. Unless `interleave`, the inputs are taken whole, one after another, in the order of
/// their first records' `ts` (the first input given on a tie): the files of a rotated set,
/// given in any order, are read as they were written — exactly, since a file's records never
/// come before the previous file's (within a file, `ts` may go back: a thread that read the
/// clock and was preempted before its record was queued). With `interleave` (files written
/// at the same time: two processes continuing one task), of the record lines of all inputs
/// the one with the earliest `ts` comes next: the order they were written in, as well as
/// their times tell it.
/// Chunks that are not records (no `ts`) are given as they are read, the input read ahead by
/// one record. `f` gets the input's index; `failed` the error that stopped an input and how
/// far it was read (the others are read on). A single input is read as [`for_each_line`]
/// reads it.
///
/// With several inputs, a line that is a record (after the zeros at its start, see
/// [`split_zeros`]) is parsed to know its `ts`: `f` gets that record with it, so that the
/// line need not be parsed again (`parse` of the line would give the same). `None`: the
/// line was not parsed (one input), or is no record, or the chunk is no line.
///
/// # Errors
/// The first error of `f` or `failed`, which stops everything.
pub fn for_each_merged<R: BufRead>(
    inputs: Vec<R>,
    max: usize,
    interleave: bool,
    mut f: impl FnMut(usize, Chunk<'_>, Option<Record>) -> io::Result<()>,
    mut failed: impl FnMut(usize, io::Error, ReadSoFar) -> io::Result<()>,
) -> io::Result<()> {
    let many = inputs.len() > 1;
    let mut all: Vec<Merged<R>> = inputs
        .into_iter()
        .map(|r| Merged {
            lines: Lines::new(r, max),
            held: None,
            first: None,
            so_far: ReadSoFar::default(),
            done: false,
        })
        .collect();
    loop {
        for (i, m) in all.iter_mut().enumerate() {
            while !m.done && m.held.is_none() {
                let chunk = match m.lines.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => {
                        m.done = true;
                        break;
                    }
                    Err(e) => {
                        m.done = true;
                        failed(i, e, m.so_far)?;
                        break;
                    }
                };
                m.so_far = chunk.read_so_far();
                if let Chunk::Line {
                    no,
                    offset,
                    bytes,
                    terminated,
                } = chunk
                {
                    // (Of one input, the order is the input's: no need to know a time.)
                    if many {
                        if let Ok(rec) = parse(split_zeros(bytes).1) {
                            m.first.get_or_insert(rec.ts);
                            m.held = Some((rec, no, offset, bytes.len(), terminated));
                            break;
                        }
                    }
                }
                f(i, chunk, None)?;
            }
        }
        let next = all
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let held = m.held.as_ref()?;
                let key = if interleave { held.0.ts } else { m.first? };
                Some((key, i))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let Some((_, i)) = next else {
            return Ok(());
        };
        let m = &mut all[i];
        let (rec, no, offset, len, terminated) = m.held.take().expect("found");
        f(
            i,
            Chunk::Line {
                no,
                offset,
                bytes: &m.lines.buf[..len],
                terminated,
            },
            Some(rec),
        )?;
    }
}

/// Whether `c` must not reach a terminal as is: C0 and C1 controls, DEL, the line and
/// paragraph separators and the bidirectional marks, overrides and isolates (the console
/// sink's set).
fn is_unsafe(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character escaped: `\n`, `\r`, `\t`, `\x1b`, `\u{85}`, `\u{2028}`….
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c <= '\x7f' && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes shown as text: invalid UTF-8 replaced, unsafe characters escaped, at most `max`
/// characters (then `…`).
pub fn sanitize_bytes(b: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(b);
    let mut s: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        s.push('…');
    }
    sanitize(&s).into_owned()
}

/// A field's value as text: a plain string as is, anything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '=' || is_unsafe(c)) =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// Parts of a long level spelled at each end by [`level_text`].
const LEVEL_ENDS: usize = 8;

/// A level as `[3,1]`; one of more than 16 parts as its first and last eight with the count
/// of those between (`[2,2,2,2,2,2,2,2,…84 more…,2,2,2,2,2,2,2,5]`), so that a text about a
/// level is short however deep the level is.
pub fn level_text(lvl: &[u64]) -> String {
    level_text_then(lvl, None)
}

/// [`level_text`] of `prefix` followed by `last` (if any), without building that level.
pub fn level_text_then(prefix: &[u64], last: Option<u64>) -> String {
    let n = prefix.len() + usize::from(last.is_some());
    let part = |i: usize| prefix.get(i).copied().or(last).unwrap_or(0);
    let mut s = String::from("[");
    let shown: Box<dyn Iterator<Item = usize>> = if n > 2 * LEVEL_ENDS {
        Box::new((0..LEVEL_ENDS).chain(n - LEVEL_ENDS..n))
    } else {
        Box::new(0..n)
    };
    for i in shown {
        if i > 0 {
            s.push(',');
        }
        if n > 2 * LEVEL_ENDS && i == n - LEVEL_ENDS {
            let _ = write!(s, "…{} more…,", n - 2 * LEVEL_ENDS);
        }
        let _ = write!(s, "{}", part(i));
    }
    s.push(']');
    s
}

/// Seconds from which a duration is written in scientific notation (about 31 years).
const DUR_SCIENTIFIC: f64 = 1e9;

/// A duration in seconds, short: `1.500s`, `200.0ms`, `12µs`, `2.5e9s`; a negative one (no
/// logxide record has one) the same with a `-`.
pub fn dur_text(d: f64) -> String {
    let a = d.abs();
    if a >= DUR_SCIENTIFIC {
        // (`{:.3}` would spell 1e300 with 301 digits.)
        format!("{d:e}s")
    } else if a >= 1.0 {
        format!("{d:.3}s")
    } else if a >= 0.001 {
        format!("{:.1}ms", d * 1e3)
    } else {
        format!("{:.0}µs", d * 1e6)
    }
}

/// Unix seconds as RFC 3339 UTC with microseconds: `2023-11-14T22:13:20.000000Z`.
pub fn time_text(ts: f64) -> String {
    if !ts.is_finite() || ts.abs() > 1e12 {
        // (In scientific notation: `{}` would spell 1e300 with 301 digits.)
        return format!("{ts:e}");
    }
    let total = (ts * 1e6).round() as i64;
    let secs = total.div_euclid(1_000_000);
    let micros = total.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Unix seconds (`1700000000`, `1700000000.5`) or RFC 3339 (`2026-11-23T10:00:00Z`,
/// fractions allowed, `Z` or an offset from UTC: `2026-11-23T11:00:00+01:00` is the same
/// instant).
pub fn parse_time(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let err = || {
        format!(
            "invalid time {text:?}: expected Unix seconds or RFC 3339 like \
             2026-11-23T10:00:00Z or 2026-11-23T11:00:00+01:00"
        )
    };
    if let Ok(v) = t.parse::<f64>() {
        return if v.is_finite() { Ok(v) } else { Err(err()) };
    }
    let num = |s: &str, len: usize| -> Result<i64, String> {
        if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    // The offset: `Z`, or `+HH:MM` / `-HH:MM` (the local time is that far from UTC).
    let (t, offset) = match t.strip_suffix(['Z', 'z']) {
        Some(rest) => (rest, 0),
        None => {
            let at = t.len().checked_sub(6).filter(|&i| t.is_char_boundary(i));
            let (rest, off) = t.split_at(at.ok_or_else(err)?);
            let sign = match off.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(err()),
            };
            let (oh, om) = off[1..].split_once(':').ok_or_else(err)?;
            let (oh, om) = (num(oh, 2)?, num(om, 2)?);
            if oh > 23 || om > 59 {
                return Err(err());
            }
            (rest, sign * (oh * 3600 + om * 60))
        }
    };
    let (date, time) = t.split_once(['T', 't', ' ']).ok_or_else(err)?;
    let mut dp = date.split('-');
    let (y, mo, d) = match (dp.next(), dp.next(), dp.next(), dp.next()) {
        (Some(y), Some(m), Some(d), None) => (num(y, 4)?, num(m, 2)?, num(d, 2)?),
        _ => return Err(err()),
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            (a, format!("0.{f}").parse::<f64>().map_err(|_| err())?)
        }
        Some(_) => return Err(err()),
        None => (time, 0.0),
    };
    let mut tp = hms.split(':');
    let (h, mi, s) = match (tp.next(), tp.next(), tp.next(), tp.next()) {
        (Some(h), Some(m), Some(s), None) => (num(h, 2)?, num(m, 2)?, num(s, 2)?),
        _ => return Err(err()),
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&mo) || !(1..=month_days).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(err());
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok((days * 86_400 + h * 3600 + mi * 60 + s - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several inputs: each record line the merge parsed for its `ts` is given with that
    /// record (the consumers do not parse it again), the same `parse` of the line gives;
    /// other lines, and the lines of a single input (not parsed), come with none.
    #[test]
    fn the_merge_gives_the_records_it_parsed() {
        let a: &[u8] = b"{\"ts\":2,\"tid\":\"A\",\"lvl\":[1],\"mt\":\"info\"}\nnot json\n";
        let b: &[u8] = b"\0\0{\"ts\":1,\"tid\":\"B\",\"lvl\":[1],\"mt\":\"info\"}\n";
        let run = |inputs: Vec<&[u8]>| {
            let mut got = Vec::new();
            for_each_merged(
                inputs,
                1 << 20,
                true,
                |i, chunk, rec| {
                    let Chunk::Line { no, bytes, .. } = chunk else {
                        panic!("only lines");
                    };
                    if let Some(r) = &rec {
                        assert_eq!(Ok(r), parse(split_zeros(bytes).1).as_ref());
                    }
                    got.push((i, no, rec.map(|r| r.tid)));
                    Ok(())
                },
                |_, e, _| Err(e),
            )
            .unwrap();
            got
        };
        let some = |t: &str| Some(t.to_owned());
        assert_eq!(
            run(vec![a, b]),
            [(1, 1, some("B")), (0, 1, some("A")), (0, 2, None)]
        );
        assert_eq!(run(vec![a]), [(0, 1, None), (0, 2, None)]);
    }

    #[test]
    fn parses_both_layouts_keeping_field_order() {
        let r = parse(br#"{"ts":1700000001.5,"tid":"Ab.2","lvl":[3,3],"at":"db:query","st":"succeeded","dur":0.2,"z":1,"a":"x"}"#).unwrap();
        assert_eq!(r.lvl, vec![3, 3]);
        assert!(r.is_end());
        assert_eq!(r.dur, Some(0.2));
        assert_eq!(r.fields[0].0, "z");
        let e = parse(br#"{"timestamp":1.0,"task_uuid":"u","task_level":[1],"message_type":"info","message":"hi"}"#).unwrap();
        assert_eq!(
            e.kind,
            Kind::Message {
                mt: "info".into(),
                msg: Some("hi".into())
            }
        );
        assert!(matches!(parse(b"[1]"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"{\"ts\":1"), Err(ParseError::Json(_))));
        assert_eq!(
            parse(br#"{"ts":1,"lvl":[1],"mt":"info"}"#),
            Err(ParseError::Record("missing key \"tid\"".into()))
        );
        assert!(parse(br#"{"ts":1,"tid":"a","lvl":[0],"mt":"info"}"#).is_err());
        // Any depth: the library nests actions as deep as the program does.
        let deep = format!(
            r#"{{"ts":1,"tid":"a","lvl":[{}1],"mt":"info"}}"#,
            "1,".repeat(100_000)
        );
        assert_eq!(parse(deep.as_bytes()).unwrap().lvl, vec![1; 100_001]);
        assert_eq!(
            parse(br#"{"ts":1,"tid":"a","lvl":[],"mt":"info"}"#),
            Err(ParseError::Record(
                "\"lvl\" is not a non-empty array of positive integers".into()
            ))
        );
        assert!(parse(br#"{"ts":1,"tid":"a","lvl":[1],"at":"x","st":"done"}"#).is_err());
    }

    /// A record is a message or an action, never both: the library reserves the keys of
    /// either (a user field `at` is written `_at`), and readers would differ on which it is.
    #[test]
    fn a_message_with_an_action_type_or_status_is_no_record() {
        for (line, key) in [
            (&br#"{"ts":1,"tid":"a","lvl":[1],"mt":"info","msg":"m","at":"x","st":"started"}"#[..], "at"),
            (br#"{"ts":1,"tid":"a","lvl":[1],"mt":"info","st":"failed"}"#, "st"),
            (
                br#"{"timestamp":1,"task_uuid":"a","task_level":[1],"message_type":"info","action_type":"x"}"#,
                "action_type",
            ),
        ] {
            let mt = if key == "action_type" { "message_type" } else { "mt" };
            assert_eq!(
                parse(line),
                Err(ParseError::Record(format!(
                    "both a message type (\"{mt}\") and \"{key}\": a record is a message or an action"
                ))),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// A message's text on an action is no record the library writes (the key is reserved:
    /// a user field so named is written `_msg`); in eliot files, where `message` is reserved,
    /// likewise, while a compact action may have a field `message`.
    #[test]
    fn an_action_with_a_message_text_is_no_record() {
        assert_eq!(
            parse(br#"{"ts":1,"tid":"a","lvl":[1],"at":"x","st":"started","msg":"hi"}"#),
            Err(ParseError::Record(
                "\"msg\" on an action: only a message has a text".into()
            ))
        );
        assert_eq!(
            parse(br#"{"timestamp":1,"task_uuid":"a","task_level":[1],"action_type":"x","action_status":"started","message":"hi"}"#),
            Err(ParseError::Record(
                "\"message\" on an action: only a message has a text".into()
            ))
        );
        let r = parse(br#"{"ts":1,"tid":"a","lvl":[1],"at":"x","st":"started","message":"hi"}"#)
            .unwrap();
        assert_eq!(r.fields, [("message".to_owned(), Value::from("hi"))]);
    }

    /// An eliot record may hold user fields named `ts` or `tid` (they are not reserved in that
    /// format): it was taken for a compact one, `missing key "tid"`. The layout is the one
    /// whose task key is there (`tid` / `task_uuid`), and where both are, the one whose
    /// header comes first, as the library writes it.
    #[test]
    fn eliot_records_with_fields_named_like_compact_keys_are_eliot() {
        let e = parse(br#"{"timestamp":1.0,"task_uuid":"u","task_level":[1],"message_type":"info","message":"hi","ts":5}"#).unwrap();
        assert_eq!((e.ts, e.tid.as_str()), (1.0, "u"));
        assert_eq!(e.fields, [("ts".to_owned(), Value::from(5))]);
        let e = parse(br#"{"timestamp":1.0,"task_uuid":"u","task_level":[1],"message_type":"info","message":"hi","ts":5,"tid":"x"}"#).unwrap();
        assert_eq!((e.ts, e.tid.as_str(), e.fields.len()), (1.0, "u", 2));
        // Written by Eliot itself, keys in another order.
        let e = parse(
            br#"{"message_type":"info","task_uuid":"u","timestamp":2.0,"task_level":[1],"ts":5}"#,
        )
        .unwrap();
        assert_eq!((e.ts, e.tid.as_str()), (2.0, "u"));
        // A compact record with a field named like an eliot key is compact.
        let c = parse(br#"{"ts":1,"tid":"a","lvl":[1],"mt":"info","task_uuid":"u","timestamp":3}"#)
            .unwrap();
        assert_eq!((c.ts, c.tid.as_str(), c.fields.len()), (1.0, "a", 2));
    }

    /// However long a line, at most `max + 1` of its bytes are held; the zeros at the end of
    /// an unterminated line are counted across reads.
    #[test]
    fn read_line_holds_at_most_max_plus_one_bytes() {
        let mut input = vec![b'x'; 1 << 20];
        input.push(b'\n');
        input.extend_from_slice(b"ab\0\0");
        input.extend_from_slice(&[0; 40]);
        let mut r = io::BufReader::with_capacity(16, &input[..]);
        let mut buf = Vec::new();
        let got = read_line(&mut r, &mut buf, 100).unwrap();
        let line = |taken, terminated, trailing_zeros| LineRead {
            taken,
            terminated,
            trailing_zeros,
        };
        assert_eq!(got, line((1 << 20) + 1, true, 0));
        assert_eq!(got.len(), 1 << 20);
        assert_eq!(buf, vec![b'x'; 101]);
        assert!(buf.capacity() < 1024, "{}", buf.capacity());
        assert_eq!(
            read_line(&mut r, &mut buf, 100).unwrap(),
            line(44, false, 42)
        );
        assert_eq!(&buf[..4], b"ab\0\0");
        assert_eq!(read_line(&mut r, &mut buf, 100).unwrap(), line(0, false, 0));
        assert!(buf.is_empty());
    }

    /// The chunks of an input with lines longer than the limit: a long line is said long
    /// without its bytes, a long last line's NUL tail is a NUL tail still.
    #[test]
    fn lines_over_the_limit_are_long_chunks() {
        let mut input = b"short\n".to_vec();
        input.extend_from_slice(&[b'x'; 300]);
        input.push(b'\n');
        input.extend_from_slice(&[b'y'; 100]);
        input.push(b'\n');
        input.extend_from_slice(&[b'z'; 300]);
        input.extend_from_slice(&[0; 10]);
        let mut seen = Vec::new();
        for_each_line(io::BufReader::with_capacity(16, &input[..]), 100, |c| {
            seen.push(match c {
                Chunk::Line {
                    no,
                    offset,
                    bytes,
                    terminated,
                } => format!("line {no} at {offset}: {} bytes {terminated}", bytes.len()),
                Chunk::Long {
                    no,
                    offset,
                    len,
                    terminated,
                } => format!("long {no} at {offset}: {len} bytes {terminated}"),
                Chunk::NulTail { no, offset, len } => format!("nul {no} at {offset}: {len}"),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "line 1 at 0: 5 bytes true",
                "long 2 at 6: 300 bytes true",
                "line 3 at 307: 100 bytes true",
                "long 4 at 408: 300 bytes false",
                "nul 4 at 708: 10",
            ]
        );
    }

    #[test]
    fn long_levels_are_shortened() {
        assert_eq!(level_text(&[3, 1]), "[3,1]");
        assert_eq!(level_text(&[1; 16]), format!("[{}1]", "1,".repeat(15)));
        let mut lvl: Vec<u64> = (1..=17).collect();
        assert_eq!(
            level_text(&lvl),
            "[1,2,3,4,5,6,7,8,…1 more…,10,11,12,13,14,15,16,17]"
        );
        let last = lvl.pop();
        assert_eq!(
            level_text_then(&lvl, last),
            level_text(&[&lvl[..], &[17]].concat())
        );
        assert_eq!(level_text_then(&[], Some(4)), "[4]");
    }

    #[test]
    fn sanitizes_controls() {
        assert_eq!(
            sanitize("a\x1b[31mb\r\n\0\u{7f}\u{85}\u{2028}é"),
            "a\\x1b[31mb\\r\\n\\x00\\x7f\\u{85}\\u{2028}é"
        );
        assert!(matches!(sanitize("plain"), Cow::Borrowed(_)));
    }

    /// Durations are short whatever the value: a huge one in scientific notation (`{:.3}`
    /// spelled 1e300 with 301 digits), a negative one in the unit of its size (-2.5 was
    /// "-2500000µs").
    #[test]
    fn durations_are_short() {
        assert_eq!(dur_text(1.5), "1.500s");
        assert_eq!(dur_text(0.2), "200.0ms");
        assert_eq!(dur_text(0.000012), "12µs");
        assert_eq!(dur_text(86_400.0), "86400.000s");
        assert_eq!(dur_text(1e300), "1e300s");
        assert_eq!(dur_text(2.5e9), "2.5e9s");
        assert_eq!(dur_text(-2.5), "-2.500s");
        assert_eq!(dur_text(-0.2), "-200.0ms");
        assert_eq!(dur_text(-1e300), "-1e300s");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000.0);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000.0);
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5+00:00").unwrap(),
            1_700_000_000.5
        );
        assert_eq!(time_text(1_700_000_000.25), "2023-11-14T22:13:20.250000Z");
        assert_eq!(time_text(0.0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(time_text(1e300), "1e300");
        assert_eq!(time_text(-2.5e13), "-2.5e13");
        assert_eq!(time_text(f64::INFINITY), "inf");
        assert!(parse_time("2023-13-01T00:00:00Z").is_err());
        assert!(parse_time("2023-02-29T00:00:00Z").is_err());
        assert!(parse_time("2023-04-31T00:00:00Z").is_err());
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z").unwrap(),
            parse_time("2024-03-01T00:00:00Z").unwrap() - 86_400.0
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2023-11-14T22:13:20").is_err());
    }

    /// RFC 3339 times carry any offset from UTC (`+01:00`, `-05:30`; `-00:00` is UTC with
    /// the offset unknown): the instant is the local time minus the offset. An offset out of
    /// range, or without its minutes, is refused.
    #[test]
    fn times_with_an_offset_are_the_same_instant() {
        let utc = 1_700_000_000.0; // 2023-11-14T22:13:20Z
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00").unwrap(), utc);
        assert_eq!(
            parse_time("2023-11-14T16:43:20.25-05:30").unwrap(),
            utc + 0.25
        );
        assert_eq!(parse_time("2023-11-15T08:13:20+10:00").unwrap(), utc);
        assert_eq!(parse_time("2023-11-14T22:13:20-00:00").unwrap(), utc);
        for bad in [
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20+01:60",
            "2023-11-14T22:13:20+01",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+1:00",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!(
                    "invalid time {bad:?}: expected Unix seconds or RFC 3339 like \
                     2026-11-23T10:00:00Z or 2026-11-23T11:00:00+01:00"
                ))
            );
        }
    }
}
