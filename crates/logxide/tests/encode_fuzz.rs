//! Structured fuzzing of the record encoder through the logger, on stable Rust.
//!
//! A case is a byte string read as a sequence of operations, the way `arbitrary`'s
//! `Unstructured` reads one (every choice takes the next bytes; once they run out every
//! choice is 0 and the case ends): log calls through `Logger::log` and the macros with
//! every field kind the macros accept (integers of every width, floats with NaN, ±∞,
//! subnormals and -0.0, `bool`, `char`, strings, `Cow`, `Duration`, `Bytes`, `Option`, `Box`,
//! `%` / `?` captures through `Display` / `Debug` impls that emit arbitrary text in pieces and
//! may fail half-way, nested serde values with maps keyed by non-strings, non-finite floats,
//! serialization errors, deep nesting and huge strings); exceptions with `source()` chains;
//! actions started, nested, continued through a parsed `ActionContext`, detached,
//! re-entered and ended in every way and order; `ctx` children, scopes, `sync_mode`, the
//! threshold. Keys and text hold quotes, backslashes, controls, DEL, C1 controls,
//! U+2028/U+2029, invalid UTF-8 (decoded lossily, as the caller must), reserved and masked
//! names. The logger has a random format, async or sync writes, and a random mask.
//!
//! A model predicts every record. Each output line must be exactly one line (one `\n`, no
//! raw control character, no raw U+2028/U+2029) of valid JSON whose members, in order, read
//! back to the predicted values: strings exactly (with U+FFFD where the input bytes were not
//! UTF-8), numbers exactly (floats bit for bit), non-finite floats as the strings `"NaN"`,
//! `"Infinity"`, `"-Infinity"` at top level and as `null` inside serde values, masked values
//! as `"***"` (top level and nested), reserved names renamed with a leading `_`; task ids
//! and Eliot task levels as the model numbers them; no key twice in a record unless the
//! call site itself repeated it or it is past the 64 tracked context fields. The console
//! renders every line as exactly one line with no raw control character.
//!
//! Cases come from a seeded generator: `LOGXIDE_FUZZ_CASES=N` runs N cases (default 150,
//! a few seconds in a debug build), `LOGXIDE_FUZZ_SEED=S` picks another seed,
//! `LOGXIDE_FUZZ_VERBOSE=1` prints each case's time and size. A failure names the seed and
//! the case, to run alone with `LOGXIDE_FUZZ_SEED=S LOGXIDE_FUZZ_FIRST=C
//! LOGXIDE_FUZZ_CASES=1`. Bugs found are kept as regression tests below. For a long run:
//! `LOGXIDE_FUZZ_CASES=200000 cargo test --release -p logxide --test encode_fuzz`.

mod common;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use common::Members;
use logxide::encode::{bytes, debug, display, serde as ser, Encode, Format};
use logxide::logger::{
    scope, sync_mode, Action, ActionContext, DetachedAction, FieldValue, FieldWriter, Fields, Mask,
    ScopeGuard, SyncMode,
};
use logxide::sink::MemorySink;
use logxide::{Level, Logger};
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Reading choices from bytes.

/// The case's bytes, read front to back; zeros once they run out.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
    /// Huge strings still allowed in this case (they are slow to check).
    huge_left: u8,
    /// No huge string now (context fields: repeated in every record).
    no_huge: bool,
    /// The case's mask names, reused as keys (with their case changed).
    dict: Vec<String>,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input {
            data,
            pos: 0,
            huge_left: 1,
            no_huge: false,
            dict: Vec::new(),
        }
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn bit(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    fn u128(&mut self) -> u128 {
        u128::from(self.u64()) | u128::from(self.u64()) << 64
    }
    /// A number below `n` (0 if `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else if n <= 256 {
            self.byte() as usize % n
        } else {
            self.u32() as usize % n
        }
    }
    /// True with probability about 1/`n`.
    fn one_in(&mut self, n: u8) -> bool {
        self.byte() % n == 0 && !self.is_empty()
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

// ---------------------------------------------------------------------------------------
// Generated values.

/// Characters that need escaping, break lines, confuse terminals, or are multi-byte.
const ALPHABET: &[char] = &[
    'a',
    'b',
    'c',
    'x',
    'y',
    'z',
    'A',
    'Z',
    '0',
    '9',
    ' ',
    '.',
    '_',
    '-',
    ':',
    ',',
    '{',
    '}',
    '[',
    ']',
    '"',
    '\\',
    '/',
    '\n',
    '\r',
    '\t',
    '\0',
    '\u{1}',
    '\u{8}',
    '\u{b}',
    '\u{c}',
    '\u{1b}',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9b}',
    '\u{9f}',
    '\u{2027}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '\u{202e}',
    '\u{2066}',
    '\u{200e}',
    '\u{61c}',
    'é',
    '€',
    '😀',
    '\u{fffd}',
    '\u{feff}',
    '\u{d7ff}',
    '\u{e000}',
    '\u{10ffff}',
    '*',
];

/// Names that are masked, reserved, or both, in some spelling.
const NAMES: &[&str] = &[
    "password",
    "Token",
    "API_KEY",
    "authorization",
    "user",
    "msg",
    "ts",
    "tid",
    "lvl",
    "mt",
    "at",
    "st",
    "dur",
    "exc",
    "exception",
    "reason",
    "message",
    "timestamp",
    "task_uuid",
    "task_level",
    "message_type",
    "action_type",
    "action_status",
    "we\"ird",
    "new\nline",
    "\u{2028}sep",
    "",
    "api.key",
    "a.password",
    "x-api-key",
    "é😀",
    "\u{0}\u{7f}",
    "pin",
    "cookie.Set_Cookie",
];

fn ascii_case_shuffle(inp: &mut Input<'_>, s: &str) -> String {
    s.chars()
        .map(|c| {
            if inp.bit() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Arbitrary text: mostly short and nasty, sometimes lossily decoded bytes, arbitrary
/// characters, reserved or masked names, or huge.
fn text(inp: &mut Input<'_>) -> String {
    match inp.byte() % 12 {
        0..=3 => {
            let n = inp.below(12);
            (0..n).map(|_| inp.pick(ALPHABET)).collect()
        }
        4 => {
            // Bytes that need not be UTF-8, decoded the documented way.
            let n = inp.below(16);
            String::from_utf8_lossy(inp.take(n)).into_owned()
        }
        5 => {
            let n = inp.below(8);
            (0..n)
                .filter_map(|_| char::from_u32(inp.u32() % 0x11_0000))
                .collect()
        }
        6 | 7 => {
            let name = if inp.bit() && !inp.dict.is_empty() {
                let i = inp.below(inp.dict.len());
                inp.dict[i].clone()
            } else {
                inp.pick(NAMES).to_owned()
            };
            let name = ascii_case_shuffle(inp, &name);
            let underscores = "_".repeat(inp.below(3));
            match inp.byte() % 4 {
                0 => format!("{underscores}{name}"),
                1 => format!("a.b.{name}"),
                2 => format!("{name}."),
                _ => name,
            }
        }
        8 => {
            // Long: a piece repeated; once in a case, up to hundreds of KiB.
            let piece: String = (0..1 + inp.below(6)).map(|_| inp.pick(ALPHABET)).collect();
            let huge = inp.one_in(3) && inp.huge_left > 0 && !inp.no_huge;
            let times = if huge {
                inp.huge_left -= 1;
                inp.below(300_000 / piece.len())
            } else {
                inp.below(100)
            };
            piece.repeat(times)
        }
        9 => "k".repeat(60 + inp.below(10)), // around the mask's 63-byte length class
        _ => String::new(),
    }
}

/// `Display` / `Debug` output written in pieces; the impl fails (`fmt::Error`) before piece
/// `fail_at` if set.
#[derive(Clone)]
struct Chunks {
    parts: Vec<String>,
    fail_at: Option<usize>,
}

impl Chunks {
    fn gen(inp: &mut Input<'_>) -> Self {
        let n = inp.below(5);
        let parts = (0..n).map(|_| text(inp)).collect();
        let fail_at = inp.one_in(4).then(|| inp.below(n + 1));
        Chunks { parts, fail_at }
    }
    /// What the impl writes before it stops.
    fn written(&self) -> String {
        let upto = self.fail_at.unwrap_or(usize::MAX).min(self.parts.len());
        self.parts[..upto].concat()
    }
    fn emit(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if self.fail_at == Some(i) {
                return Err(fmt::Error);
            }
            f.write_str(p)?;
        }
        if self.fail_at == Some(self.parts.len()) {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl fmt::Display for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.emit(f)
    }
}

impl fmt::Debug for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.emit(f)
    }
}

/// A value serialized through serde, with everything serde_json must cope with.
#[derive(Clone)]
enum Tree {
    Unit,
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    Bytes(Vec<u8>),
    None,
    Some(Box<Tree>),
    Seq(Vec<Tree>),
    Map(Vec<(Tree, Tree)>),
    Struct(Vec<(&'static str, Tree)>),
    UnitVariant(&'static str),
    NewtypeVariant(&'static str, Box<Tree>),
    /// `Serialize` returns this error.
    Error(String),
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Unit => s.serialize_unit(),
            Tree::Bool(v) => s.serialize_bool(*v),
            Tree::I64(v) => s.serialize_i64(*v),
            Tree::U64(v) => s.serialize_u64(*v),
            Tree::I128(v) => s.serialize_i128(*v),
            Tree::U128(v) => s.serialize_u128(*v),
            Tree::F32(v) => s.serialize_f32(*v),
            Tree::F64(v) => s.serialize_f64(*v),
            Tree::Char(v) => s.serialize_char(*v),
            Tree::Str(v) => s.serialize_str(v),
            Tree::Bytes(v) => s.serialize_bytes(v),
            Tree::None => s.serialize_none(),
            Tree::Some(v) => s.serialize_some(&**v),
            Tree::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Tree::Struct(fields) => {
                let mut st = s.serialize_struct("S", fields.len())?;
                for (k, v) in fields {
                    st.serialize_field(k, v)?;
                }
                st.end()
            }
            Tree::UnitVariant(name) => s.serialize_unit_variant("E", 0, name),
            Tree::NewtypeVariant(name, v) => s.serialize_newtype_variant("E", 1, name, &**v),
            Tree::Error(msg) => Err(S::Error::custom(msg)),
        }
    }
}

const F64_SPECIAL: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    f64::MIN_POSITIVE,
    5e-324,
    2.225_073_858_507_201e-308, // the largest subnormal
    -5e-324,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    1e21,
    1e-7,
    0.1,
    123_456_789.0,
    9_007_199_254_740_993.0,
];

fn f64_gen(inp: &mut Input<'_>) -> f64 {
    if inp.bit() {
        inp.pick(F64_SPECIAL)
    } else {
        f64::from_bits(inp.u64())
    }
}

fn f32_gen(inp: &mut Input<'_>) -> f32 {
    match inp.byte() % 4 {
        0 => inp.pick(F64_SPECIAL) as f32,
        1 => inp.pick(&[f32::MIN_POSITIVE, 1e-45, -0.0, f32::MAX, 16_777_217.0]),
        _ => f32::from_bits(inp.u32()),
    }
}

fn i128_gen(inp: &mut Input<'_>) -> i128 {
    match inp.byte() % 4 {
        0 => inp.pick(&[
            0,
            -1,
            1,
            i128::MIN,
            i128::MAX,
            i64::MIN as i128,
            u64::MAX as i128,
        ]),
        1 => i128::from(inp.byte() as i8),
        2 => i128::from(inp.u64() as i64),
        _ => inp.u128() as i128,
    }
}

fn char_gen(inp: &mut Input<'_>) -> char {
    if inp.bit() {
        inp.pick(ALPHABET)
    } else {
        char::from_u32(inp.u32() % 0x11_0000).unwrap_or('\u{fffd}')
    }
}

fn tree(inp: &mut Input<'_>, depth: usize) -> Tree {
    let leaf_only = depth >= 4;
    let kind = if leaf_only {
        inp.byte() % 12
    } else {
        inp.byte() % 21
    };
    match kind {
        0 => Tree::Unit,
        1 => Tree::Bool(inp.bit()),
        2 => Tree::I64(i128_gen(inp) as i64),
        3 => Tree::U64(inp.u64()),
        4 => Tree::I128(i128_gen(inp)),
        5 => Tree::U128(inp.u128()),
        6 => Tree::F32(f32_gen(inp)),
        7 => Tree::F64(f64_gen(inp)),
        8 => Tree::Char(char_gen(inp)),
        9 | 10 => Tree::Str(text(inp)),
        11 => {
            let n = inp.below(12);
            Tree::Bytes(inp.take(n).to_vec())
        }
        12 => Tree::None,
        13 => Tree::Some(Box::new(tree(inp, depth + 1))),
        14 => Tree::Seq((0..inp.below(5)).map(|_| tree(inp, depth + 1)).collect()),
        15 | 16 => Tree::Map(
            (0..inp.below(5))
                .map(|_| (map_key(inp), tree(inp, depth + 1)))
                .collect(),
        ),
        17 => Tree::Struct(
            (0..inp.below(5))
                .map(|_| (inp.pick(NAMES), tree(inp, depth + 1)))
                .collect(),
        ),
        18 => match inp.byte() % 3 {
            0 => Tree::UnitVariant(inp.pick(NAMES)),
            1 => Tree::NewtypeVariant(inp.pick(NAMES), Box::new(tree(inp, depth + 1))),
            _ => Tree::Error(text(inp)),
        },
        19 if depth == 0 => {
            // Deep nesting: arrays and objects (keys that may be masked) around a leaf, up
            // to 100 levels (serde_json reads at most 128).
            let mut t = tree(inp, 4);
            for _ in 0..1 + inp.below(100) {
                t = if inp.bit() {
                    Tree::Seq(vec![t])
                } else {
                    Tree::Map(vec![(Tree::Str(text(inp)), t)])
                };
            }
            t
        }
        _ => Tree::Str(text(inp)),
    }
}

/// A map key: mostly strings, and every other kind serde_json accepts or refuses.
fn map_key(inp: &mut Input<'_>) -> Tree {
    match inp.byte() % 16 {
        0 => Tree::I64(i128_gen(inp) as i64),
        1 => Tree::U128(inp.u128()),
        2 => Tree::Bool(inp.bit()),
        3 => Tree::Char(char_gen(inp)),
        4 => Tree::F64(f64_gen(inp)),
        5 => Tree::Unit,
        6 => Tree::Seq(vec![]),
        7 => Tree::Some(Box::new(Tree::Str(text(inp)))),
        8 => Tree::UnitVariant(inp.pick(NAMES)),
        9 => Tree::I128(i128_gen(inp)),
        10 => Tree::None,
        _ => Tree::Str(text(inp)),
    }
}

/// A field value: every kind a logging macro accepts.
#[derive(Clone)]
enum FVal {
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    Isize(isize),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    Usize(usize),
    F32(f32),
    F64(f64),
    Bool(bool),
    Char(char),
    Str(String),
    String(String),
    Cow(String),
    Dur(Duration),
    Bytes(Vec<u8>),
    None,
    Some(Box<FVal>),
    Boxed(Box<FVal>),
    Display(Chunks),
    Debug(Chunks),
    Serde(Tree),
}

fn fval(inp: &mut Input<'_>, depth: usize) -> FVal {
    let n = if depth >= 2 { 21 } else { 27 };
    match inp.byte() % n {
        0 => FVal::I8(inp.byte() as i8),
        1 => FVal::I16(inp.u32() as i16),
        2 => FVal::I32(inp.u32() as i32),
        3 => FVal::I64(i128_gen(inp) as i64),
        4 => FVal::I128(i128_gen(inp)),
        5 => FVal::Isize(inp.u64() as isize),
        6 => FVal::U8(inp.byte()),
        7 => FVal::U16(inp.u32() as u16),
        8 => FVal::U32(inp.u32()),
        9 => FVal::U64(inp.u64()),
        10 => FVal::U128(inp.u128()),
        11 => FVal::Usize(inp.u64() as usize),
        12 => FVal::F32(f32_gen(inp)),
        13 => FVal::F64(f64_gen(inp)),
        14 => FVal::Bool(inp.bit()),
        15 => FVal::Char(char_gen(inp)),
        16 => FVal::Str(text(inp)),
        17 => FVal::String(text(inp)),
        18 => FVal::Cow(text(inp)),
        19 => FVal::Dur(Duration::new(
            inp.pick(&[0, 1, 59, u64::from(u32::MAX), u64::MAX]),
            inp.u32() % 1_000_000_000,
        )),
        20 => {
            let n = inp.below(24);
            FVal::Bytes(inp.take(n).to_vec())
        }
        21 => FVal::None,
        22 => FVal::Some(Box::new(fval(inp, depth + 1))),
        23 => FVal::Boxed(Box::new(fval(inp, depth + 1))),
        24 => FVal::Display(Chunks::gen(inp)),
        25 => FVal::Debug(Chunks::gen(inp)),
        _ => FVal::Serde(tree(inp, 0)),
    }
}

/// `as_field`: the value as the logger's `FieldValue`; `as_encode`: as an `Encode` (for bound
/// and scope fields). The same boxing for two traits.
macro_rules! boxed_as {
    ($name:ident, $trait:ident) => {
        fn $name(v: &FVal) -> Box<dyn $trait + '_> {
            match v {
                FVal::I8(x) => Box::new(*x),
                FVal::I16(x) => Box::new(*x),
                FVal::I32(x) => Box::new(*x),
                FVal::I64(x) => Box::new(*x),
                FVal::I128(x) => Box::new(*x),
                FVal::Isize(x) => Box::new(*x),
                FVal::U8(x) => Box::new(*x),
                FVal::U16(x) => Box::new(*x),
                FVal::U32(x) => Box::new(*x),
                FVal::U64(x) => Box::new(*x),
                FVal::U128(x) => Box::new(*x),
                FVal::Usize(x) => Box::new(*x),
                FVal::F32(x) => Box::new(*x),
                FVal::F64(x) => Box::new(*x),
                FVal::Bool(x) => Box::new(*x),
                FVal::Char(x) => Box::new(*x),
                FVal::Str(s) => Box::new(s.as_str()),
                FVal::String(s) => Box::new(s.clone()),
                FVal::Cow(s) => Box::new(Cow::Borrowed(s.as_str())),
                FVal::Dur(d) => Box::new(*d),
                FVal::Bytes(b) => Box::new(bytes(b)),
                FVal::None => Box::new(None::<u8>),
                FVal::Some(inner) => Box::new(Some($name(inner))),
                FVal::Boxed(inner) => Box::new($name(inner)),
                FVal::Display(c) => Box::new(display(c)),
                FVal::Debug(c) => Box::new(debug(c)),
                FVal::Serde(t) => Box::new(ser(t)),
            }
        }
    };
}
boxed_as!(as_field, FieldValue);
boxed_as!(as_encode, Encode);

/// An error with a `source()` chain of texts.
#[derive(Debug)]
struct ChainErr {
    text: String,
    source: Option<Box<ChainErr>>,
}

impl fmt::Display for ChainErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ChainErr {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl ChainErr {
    fn gen(inp: &mut Input<'_>) -> Self {
        let mut texts: Vec<String> = (0..1 + inp.below(3)).map(|_| text(inp)).collect();
        let mut err = ChainErr {
            text: texts.pop().unwrap(),
            source: None,
        };
        while let Some(t) = texts.pop() {
            err = ChainErr {
                text: t,
                source: Some(Box::new(err)),
            };
        }
        err
    }
    /// The `reason` the logger writes: the texts of the chain joined by `": "`.
    fn reason(&self) -> String {
        let mut out = self.text.clone();
        let mut next = self.source.as_deref();
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.text);
            next = e.source.as_deref();
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The model: what every record must read back as.

/// The rules, written independently of the library.
struct Rules {
    format: Format,
    /// The mask's names as given.
    names: Vec<String>,
}

impl Rules {
    fn reserved(&self) -> &'static [&'static str] {
        match self.format {
            Format::Compact => &[
                "ts", "tid", "lvl", "mt", "msg", "at", "st", "dur", "exc", "reason",
            ],
            Format::Eliot => &[
                "timestamp",
                "task_uuid",
                "task_level",
                "message_type",
                "message",
                "action_type",
                "action_status",
                "dur",
                "exception",
                "reason",
            ],
        }
    }

    /// The key as written: one more `_` if, without its leading `_`s, it is reserved.
    fn written_key(&self, key: &str) -> String {
        if self.reserved().contains(&key.trim_start_matches('_')) {
            format!("_{key}")
        } else {
            key.to_owned()
        }
    }

    /// Masked: the key, or the part after its last `.`, equals a name ignoring ASCII case.
    fn masked(&self, key: &str) -> bool {
        let is_name = |k: &str| self.names.iter().any(|n| n.eq_ignore_ascii_case(k));
        is_name(key) || key.rsplit_once('.').is_some_and(|(_, last)| is_name(last))
    }

    /// A JSON value with the members the mask names, at any depth, replaced by `"***"`.
    fn mask_nested(&self, v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let v = if self.masked(&k) {
                            Value::from("***")
                        } else {
                            self.mask_nested(v)
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.mask_nested(v)).collect()),
            other => other,
        }
    }

    /// What a serde value reads back as: serde_json's own output (NaN and infinities as
    /// `null`, map keys as strings), or the error text, masked inside.
    fn serde_value(&self, t: &Tree) -> Value {
        match serde_json::to_string(t) {
            Ok(s) => self.mask_nested(serde_json::from_str(&s).expect("serde_json reads itself")),
            Err(e) => Value::from(format!("<serialize error: {e}>")),
        }
    }

    /// A value that is not an `Option` wrapper.
    fn value(&self, v: &FVal) -> Exp {
        let non_finite = |f: f64| {
            Exp::Json(Value::from(if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }))
        };
        match v {
            FVal::I8(x) => Exp::Int(i128::from(*x)),
            FVal::I16(x) => Exp::Int(i128::from(*x)),
            FVal::I32(x) => Exp::Int(i128::from(*x)),
            FVal::I64(x) => Exp::Int(i128::from(*x)),
            FVal::I128(x) => Exp::Int(*x),
            FVal::Isize(x) => Exp::Int(*x as i128),
            FVal::U8(x) => Exp::Int(i128::from(*x)),
            FVal::U16(x) => Exp::Int(i128::from(*x)),
            FVal::U32(x) => Exp::Int(i128::from(*x)),
            FVal::U64(x) => Exp::Int(i128::from(*x)),
            FVal::U128(x) => Exp::UInt(*x),
            FVal::Usize(x) => Exp::Int(*x as i128),
            FVal::F32(x) if x.is_finite() => Exp::F32(*x),
            FVal::F32(x) => non_finite(f64::from(*x)),
            FVal::F64(x) if x.is_finite() => Exp::F64(*x),
            FVal::F64(x) => non_finite(*x),
            FVal::Bool(x) => Exp::Json(Value::from(*x)),
            FVal::Char(c) => Exp::Json(Value::from(c.to_string())),
            FVal::Str(s) | FVal::String(s) | FVal::Cow(s) => Exp::Json(Value::from(s.as_str())),
            FVal::Dur(d) => Exp::F64(d.as_secs_f64()),
            FVal::Bytes(b) => Exp::Json(Value::from(String::from_utf8_lossy(b).into_owned())),
            FVal::Display(c) | FVal::Debug(c) => Exp::Json(Value::from(c.written())),
            FVal::Serde(t) => Exp::Json(self.serde_value(t)),
            FVal::None | FVal::Some(_) | FVal::Boxed(_) => unreachable!("unwrapped by callers"),
        }
    }

    /// A call-site field: `None` is omitted, a masked key hides any other value.
    fn call_field(&self, key: &str, v: &FVal) -> Option<Exp> {
        match v {
            FVal::None => None,
            FVal::Some(inner) | FVal::Boxed(inner) => self.call_field(key, inner),
            _ if self.masked(key) => Some(Exp::Json(Value::from("***"))),
            _ => Some(self.value(v)),
        }
    }

    /// A bound or scope field (encoded when bound; `None` never gets there).
    fn bound_field(&self, key: &str, v: &FVal) -> Exp {
        if self.masked(key) {
            return Exp::Json(Value::from("***"));
        }
        self.encoded(v)
    }

    fn encoded(&self, v: &FVal) -> Exp {
        match v {
            FVal::None => unreachable!("absent values are not kept in a context"),
            FVal::Some(inner) | FVal::Boxed(inner) => self.encoded(inner),
            _ => self.value(v),
        }
    }
}

/// An expected value.
#[derive(Clone, Debug)]
enum Exp {
    Json(Value),
    Int(i128),
    UInt(u128),
    F64(f64),
    F32(f32),
    /// Any number (timestamps, durations).
    Number,
    /// The task id of model task `n`.
    Tid(usize),
    Lvl(Vec<u32>),
}

/// A context field set as the model keeps it: keys and the values given.
type Ctx = Vec<(String, FVal)>;

/// `Fields::insert`: a new key goes last, an existing one keeps its place, an absent value
/// (`None`) removes the key.
fn ctx_insert(ctx: &mut Ctx, key: String, v: FVal) {
    fn absent(v: &FVal) -> bool {
        match v {
            FVal::None => true,
            FVal::Some(inner) | FVal::Boxed(inner) => absent(inner),
            _ => false,
        }
    }
    if absent(&v) {
        ctx.retain(|(k, _)| *k != key);
        return;
    }
    match ctx.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = v,
        None => ctx.push((key, v)),
    }
}

fn ctx_merged(outer: &Ctx, inner: &Ctx) -> Ctx {
    let mut out = outer.clone();
    for (k, v) in inner {
        ctx_insert(&mut out, k.clone(), v.clone());
    }
    out
}

struct ModelAction {
    task: usize,
    prefix: Vec<u32>,
    next: u32,
    ty: String,
    bound: Ctx,
}

/// One predicted record: its members in order, and the keys allowed to appear twice.
struct ExpRec {
    members: Vec<(String, Exp)>,
    may_repeat: HashSet<String>,
    what: String,
}

struct State<'r> {
    rules: &'r Rules,
    base: Logger,
    cur: Logger,
    cur_bound: Ctx,
    threshold: Level,
    scope_guards: Vec<ScopeGuard>,
    scopes: Vec<Ctx>,
    syncs: Vec<SyncMode>,
    actions: Vec<ModelAction>,
    entered: Vec<(usize, Action)>,
    detached: Vec<(usize, DetachedAction)>,
    tasks: usize,
    expected: Vec<ExpRec>,
}

enum Head<'a> {
    Message(Level, &'a str),
    Action(&'a str, &'static str),
}

impl State<'_> {
    fn new_task(&mut self) -> usize {
        self.tasks += 1;
        self.tasks - 1
    }

    fn child_position(&mut self, id: usize) -> (usize, Vec<u32>) {
        let a = &mut self.actions[id];
        let mut level = a.prefix.clone();
        level.push(a.next);
        a.next += 1;
        (a.task, level)
    }

    /// Where a message goes: in the innermost entered action, or a new task.
    fn next_position(&mut self) -> (usize, Vec<u32>) {
        match self.entered.last() {
            Some(&(id, _)) => self.child_position(id),
            None => (self.new_task(), vec![1]),
        }
    }

    fn enabled(&self, level: Level) -> bool {
        level.value() >= self.threshold.value()
    }

    /// Predicts one record.
    fn expect(
        &mut self,
        pos: (usize, Vec<u32>),
        head: Head<'_>,
        reserved: Vec<(&'static str, Exp)>,
        call: &[(String, FVal)],
        bound: &Ctx,
    ) {
        let rules = self.rules;
        let keys = rules.format.header_keys();
        let mut members = vec![
            (keys.ts.to_owned(), Exp::Number),
            (keys.tid.to_owned(), Exp::Tid(pos.0)),
            (keys.lvl.to_owned(), Exp::Lvl(pos.1)),
        ];
        let what = match head {
            Head::Message(level, msg) => {
                members.push((keys.mt.to_owned(), Exp::Json(level.as_str().into())));
                members.push((keys.msg.to_owned(), Exp::Json(msg.into())));
                format!("message {:?}", short(msg))
            }
            Head::Action(ty, status) => {
                members.push((keys.at.to_owned(), Exp::Json(ty.into())));
                members.push((keys.st.to_owned(), Exp::Json(status.into())));
                format!("action {:?} {status}", short(ty))
            }
        };
        for (k, v) in reserved {
            members.push((k.to_owned(), v));
        }
        let mut may_repeat = HashSet::new();
        let mut written = HashSet::new();
        // Every call-site key hides the context fields of that key, a `None` (written as
        // nothing) too.
        let mut hidden = HashSet::new();
        for (k, v) in call {
            hidden.insert(k.clone());
            if let Some(e) = rules.call_field(k, v) {
                let key = rules.written_key(k);
                if !written.insert(k.clone()) {
                    may_repeat.insert(key.clone());
                }
                members.push((key, e));
            }
        }
        let written = hidden;
        let empty = Ctx::new();
        let scope = self.scopes.last().unwrap_or(&empty);
        // Only the first 64 entries of a context set are tracked against the call site.
        for (i, (k, v)) in scope.iter().enumerate() {
            if i < 64 && written.contains(k) {
                continue;
            }
            let key = rules.written_key(k);
            if i >= 64 {
                may_repeat.insert(key.clone());
            }
            members.push((key, rules.bound_field(k, v)));
        }
        for (i, (k, v)) in bound.iter().enumerate() {
            if (i < 64 && written.contains(k)) || scope.iter().any(|(s, _)| s == k) {
                continue;
            }
            let key = rules.written_key(k);
            if i >= 64 {
                may_repeat.insert(key.clone());
            }
            members.push((key, rules.bound_field(k, v)));
        }
        self.expected.push(ExpRec {
            members,
            may_repeat,
            what,
        });
    }

    fn call_fields(&self, inp: &mut Input<'_>) -> Vec<(String, FVal)> {
        (0..inp.below(7))
            .map(|_| (text(inp), fval(inp, 0)))
            .collect()
    }

    fn write(f: &mut FieldWriter<'_, '_>, fields: &[(String, FVal)]) {
        for (k, v) in fields {
            f.field(k, &as_field(v));
        }
    }

    fn fields_of(ctx: &Ctx) -> Fields {
        let mut fields = Fields::new();
        for (k, v) in ctx {
            fields.insert(k, &*as_encode(v));
        }
        fields
    }

    /// A message through `Logger::log`.
    fn log(&mut self, inp: &mut Input<'_>) {
        let level = inp.pick(&Level::ALL);
        let msg = text(inp);
        let fields = self.call_fields(inp);
        self.cur.log(level, &msg, |f| Self::write(f, &fields));
        if self.enabled(level) {
            let pos = self.next_position();
            let bound = self.cur_bound.clone();
            self.expect(pos, Head::Message(level, &msg), vec![], &fields, &bound);
        }
    }

    fn exception(&mut self, inp: &mut Input<'_>) {
        let msg = text(inp);
        let err = ChainErr::gen(inp);
        let fields = if inp.bit() {
            self.cur.exception(&msg, &err);
            Vec::new()
        } else {
            let fields = self.call_fields(inp);
            self.cur.log_error(&msg, &err, |f| Self::write(f, &fields));
            fields
        };
        self.expect_exception(&msg, &err, &fields);
    }

    /// The record an error-logging call makes (when error is enabled): `exc` and `reason`
    /// first, then the call's fields.
    fn expect_exception(&mut self, msg: &str, err: &ChainErr, call: &[(String, FVal)]) {
        if self.enabled(Level::Error) {
            let pos = self.next_position();
            let bound = self.cur_bound.clone();
            let reserved = vec![
                (
                    self.rules.format.header_keys().exc,
                    Exp::Json(std::any::type_name::<ChainErr>().into()),
                ),
                ("reason", Exp::Json(err.reason().into())),
            ];
            self.expect(
                pos,
                Head::Message(Level::Error, msg),
                reserved,
                call,
                &bound,
            );
        }
    }

    /// The macros, with their literal keys and every form of field.
    fn macros(&mut self, inp: &mut Input<'_>) {
        let level = inp.pick(&Level::ALL);
        let msg = text(inp);
        let a = i128_gen(inp) as i64;
        let c1 = Chunks::gen(inp);
        let c2 = Chunks::gen(inp);
        let t = tree(inp, 0);
        let s1 = text(inp);
        let s2 = text(inp);
        let opt = inp.bit().then(|| inp.u32());
        let x = f64_gen(inp);
        let opt_val = opt.map_or(FVal::None, |o| FVal::Some(Box::new(FVal::U32(o))));
        let cur = self.cur.clone();
        match inp.byte() % 4 {
            0 => {
                logxide::log!(logger: cur, level, &msg, a, "b.c" = %c1, d = ?c2,
                    e = ser(&t), msg = s1.clone(), password = s2.as_str(), opt, x);
                if self.enabled(level) {
                    let call = [
                        ("a".to_owned(), FVal::I64(a)),
                        ("b.c".to_owned(), FVal::Display(c1)),
                        ("d".to_owned(), FVal::Debug(c2)),
                        ("e".to_owned(), FVal::Serde(t)),
                        ("msg".to_owned(), FVal::String(s1)),
                        ("password".to_owned(), FVal::Str(s2)),
                        ("opt".to_owned(), opt_val),
                        ("x".to_owned(), FVal::F64(x)),
                    ];
                    let pos = self.next_position();
                    let bound = self.cur_bound.clone();
                    self.expect(pos, Head::Message(level, &msg), vec![], &call, &bound);
                }
            }
            1 => {
                let err = ChainErr::gen(inp);
                logxide::exception!(logger: cur, &err, &msg, "exc" = s1.as_str(),
                    reason = %c1, "quote\"d key\n" = ?c2, dur = x);
                let call = [
                    ("exc".to_owned(), FVal::Str(s1)),
                    ("reason".to_owned(), FVal::Display(c1)),
                    ("quote\"d key\n".to_owned(), FVal::Debug(c2)),
                    ("dur".to_owned(), FVal::F64(x)),
                ];
                self.expect_exception(&msg, &err, &call);
            }
            2 => {
                let ty = text(inp);
                let (parent_task, prefix) = self.parent_slot();
                let action = logxide::start_action!(logger: cur, ty.clone(), dur = x,
                    "\u{2028}" = s1.as_str(), tree = ser(&t), Token = ?c2);
                let call = [
                    ("dur".to_owned(), FVal::F64(x)),
                    ("\u{2028}".to_owned(), FVal::Str(s1)),
                    ("tree".to_owned(), FVal::Serde(t)),
                    ("Token".to_owned(), FVal::Debug(c2)),
                ];
                self.started(parent_task, prefix, ty, &call, action);
            }
            _ => {
                let bare = s1.clone();
                logxide::checkpoint!(logger: cur, &msg, bare, n = a, "" = opt);
                if self.enabled(Level::Info) {
                    let call = [
                        ("bare".to_owned(), FVal::String(s1)),
                        ("n".to_owned(), FVal::I64(a)),
                        (String::new(), opt_val),
                    ];
                    let pos = self.next_position();
                    let bound = self.cur_bound.clone();
                    let shown = format!("📍 {msg}");
                    self.expect(
                        pos,
                        Head::Message(Level::Info, &shown),
                        vec![],
                        &call,
                        &bound,
                    );
                }
            }
        }
    }

    fn checkpoint(&mut self, inp: &mut Input<'_>) {
        let msg = text(inp);
        self.cur.checkpoint(&msg);
        if self.enabled(Level::Info) {
            let pos = self.next_position();
            let bound = self.cur_bound.clone();
            let shown = format!("📍 {msg}");
            self.expect(pos, Head::Message(Level::Info, &shown), vec![], &[], &bound);
        }
    }

    /// The task and prefix of an action started now on this thread.
    fn parent_slot(&mut self) -> (usize, Vec<u32>) {
        match self.entered.last() {
            Some(&(id, _)) => self.child_position(id),
            None => (self.new_task(), Vec::new()),
        }
    }

    /// Records an action just started (and entered) at `prefix` of `task`.
    fn started(
        &mut self,
        task: usize,
        prefix: Vec<u32>,
        ty: String,
        call: &[(String, FVal)],
        action: Action,
    ) {
        let id = self.actions.len();
        self.actions.push(ModelAction {
            task,
            prefix,
            next: 1,
            ty: ty.clone(),
            bound: self.cur_bound.clone(),
        });
        self.entered.push((id, action));
        let pos = self.child_position(id);
        let bound = self.cur_bound.clone();
        self.expect(pos, Head::Action(&ty, "started"), vec![], call, &bound);
    }

    fn start(&mut self, inp: &mut Input<'_>) {
        if self.entered.len() >= 12 {
            return self.end(inp);
        }
        let ty = text(inp);
        let fields = self.call_fields(inp);
        let (task, prefix) = self.parent_slot();
        let action = self
            .cur
            .start_action(ty.clone(), |f| Self::write(f, &fields));
        self.started(task, prefix, ty, &fields, action);
    }

    /// Continues the task of an entered action through its context, read back from text.
    fn continue_(&mut self, inp: &mut Input<'_>) {
        if self.entered.is_empty() {
            return;
        }
        let i = inp.below(self.entered.len());
        let ctx = self.entered[i].1.context();
        let (task, prefix) = self.child_position(self.entered[i].0);
        let parsed: ActionContext = ctx.to_string().parse().expect("context text");
        assert_eq!(parsed, ctx);
        let reread: ActionContext =
            serde_json::from_str(&serde_json::to_string(&ctx).unwrap()).unwrap();
        assert_eq!(reread, ctx);
        let ty = text(inp);
        let fields = self.call_fields(inp);
        let action = self
            .cur
            .continue_action(&parsed, ty.clone(), |f| Self::write(f, &fields));
        self.started(task, prefix, ty, &fields, action);
    }

    /// Predicts the end record of action `id`.
    fn ended(&mut self, id: usize, failure: Option<(String, String)>) {
        let pos = self.child_position(id);
        let (ty, bound) = (self.actions[id].ty.clone(), self.actions[id].bound.clone());
        let mut reserved = Vec::new();
        let status = match failure {
            Some((exc, reason)) => {
                reserved.push((self.rules.format.header_keys().exc, Exp::Json(exc.into())));
                reserved.push(("reason", Exp::Json(reason.into())));
                "failed"
            }
            None => "succeeded",
        };
        reserved.push(("dur", Exp::Number));
        self.expect(pos, Head::Action(&ty, status), reserved, &[], &bound);
    }

    /// Ends an entered action (not necessarily the innermost) in one of the four ways.
    fn end(&mut self, inp: &mut Input<'_>) {
        if self.entered.is_empty() {
            return;
        }
        let i = inp.below(self.entered.len());
        let (id, action) = self.entered.remove(i);
        match inp.byte() % 4 {
            0 => {
                drop(action);
                self.ended(id, None);
            }
            1 => {
                action.finish();
                self.ended(id, None);
            }
            2 => {
                let err = ChainErr::gen(inp);
                action.fail(&err);
                let exc = std::any::type_name::<ChainErr>().to_owned();
                self.ended(id, Some((exc, err.reason())));
            }
            _ => {
                let (exc, reason) = (text(inp), text(inp));
                action.fail_with(&exc, &reason);
                self.ended(id, Some((exc, reason)));
            }
        }
    }

    fn detach(&mut self, inp: &mut Input<'_>) {
        if self.entered.is_empty() {
            return;
        }
        let i = inp.below(self.entered.len());
        let (id, action) = self.entered.remove(i);
        self.detached.push((id, action.detach()));
    }

    fn detached(&mut self, inp: &mut Input<'_>) {
        if self.detached.is_empty() {
            return;
        }
        let i = inp.below(self.detached.len());
        let (id, action) = self.detached.remove(i);
        if inp.bit() {
            self.entered.push((id, action.enter()));
        } else {
            drop(action);
            self.ended(id, None);
        }
    }

    fn context_fields(&self, inp: &mut Input<'_>) -> Ctx {
        let mut ctx = Ctx::new();
        inp.no_huge = true;
        for _ in 0..1 + inp.below(4) {
            ctx_insert(&mut ctx, text(inp), fval(inp, 0));
        }
        inp.no_huge = false;
        ctx
    }

    fn ctx(&mut self, inp: &mut Input<'_>) {
        if inp.one_in(3) {
            self.cur = self.base.clone();
            self.cur_bound.clear();
            return;
        }
        let new = self.context_fields(inp);
        self.cur = self.cur.ctx(Self::fields_of(&new));
        self.cur_bound = ctx_merged(&self.cur_bound, &new);
    }

    fn scope(&mut self, inp: &mut Input<'_>) {
        if inp.bit() && !self.scope_guards.is_empty() {
            self.scope_guards.pop();
            self.scopes.pop();
            return;
        }
        let new = self.context_fields(inp);
        self.scope_guards.push(scope(Self::fields_of(&new)));
        let merged = match self.scopes.last() {
            Some(outer) => ctx_merged(outer, &new),
            None => new,
        };
        self.scopes.push(merged);
    }

    fn step(&mut self, inp: &mut Input<'_>) {
        match inp.byte() % 20 {
            0..=4 => self.log(inp),
            5 | 6 => self.macros(inp),
            7 => self.checkpoint(inp),
            8 => self.exception(inp),
            9 | 10 => self.start(inp),
            11 => self.continue_(inp),
            12 | 13 => self.end(inp),
            14 => self.detach(inp),
            15 => self.detached(inp),
            16 => self.ctx(inp),
            17 => self.scope(inp),
            18 => {
                if inp.bit() {
                    self.syncs.push(sync_mode());
                } else {
                    self.syncs.pop();
                }
            }
            _ => {
                self.threshold = inp.pick(&Level::ALL);
                self.cur.set_level(self.threshold);
            }
        }
    }

    /// Ends what is still open: entered actions innermost first, then detached ones; then
    /// the scopes and `sync_mode` guards.
    fn finish(&mut self) {
        while let Some((id, action)) = self.entered.pop() {
            drop(action);
            self.ended(id, None);
        }
        while let Some((id, action)) = self.detached.pop() {
            drop(action);
            self.ended(id, None);
        }
        while self.scope_guards.pop().is_some() {
            self.scopes.pop();
        }
        self.syncs.clear();
    }
}

// ---------------------------------------------------------------------------------------
// Checking the output.

fn value_matches(exp: &Exp, got: &Value, tids: &mut HashMap<usize, String>) -> bool {
    match exp {
        Exp::Json(v) => got == v,
        Exp::Int(i) => match (got.as_i64(), got.as_u64()) {
            (Some(g), _) => i128::from(g) == *i,
            (_, Some(g)) => i128::from(g) == *i,
            _ => got.as_f64() == Some(*i as f64),
        },
        Exp::UInt(u) => match got.as_u64() {
            Some(g) => u128::from(g) == *u,
            None => got.is_f64() && got.as_f64() == Some(*u as f64),
        },
        Exp::F64(f) => got.is_number() && got.as_f64().map(f64::to_bits) == Some(f.to_bits()),
        Exp::F32(f) => {
            got.is_number() && got.as_f64().map(|g| (g as f32).to_bits()) == Some(f.to_bits())
        }
        Exp::Number => got.as_f64().is_some_and(|f| f >= 0.0),
        Exp::Tid(n) => match got.as_str() {
            Some(t) => {
                let known = tids.entry(*n).or_insert_with(|| t.to_owned());
                known == t
            }
            None => false,
        },
        Exp::Lvl(l) => {
            let want: Vec<Value> = l.iter().map(|&x| Value::from(x)).collect();
            got.as_array() == Some(&want)
        }
    }
}

/// Whether the console would let `c` reach a terminal raw (it must not).
fn dangerous(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn short(s: &str) -> String {
    if s.len() <= 600 {
        return s.to_owned();
    }
    let mut end = 600;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// Checks the bytes the sink got against the predicted records.
fn check(out: &[u8], expected: &[ExpRec]) -> Result<usize, String> {
    if !out.is_empty() && out.last() != Some(&b'\n') {
        return Err("the output does not end with a newline".into());
    }
    let text = std::str::from_utf8(out).map_err(|e| format!("output not UTF-8: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != expected.len() {
        return Err(format!(
            "{} lines written, {} records predicted",
            lines.len(),
            expected.len()
        ));
    }
    let mut tids: HashMap<usize, String> = HashMap::new();
    for (n, (line, exp)) in lines.iter().zip(expected).enumerate() {
        let fail =
            |why: String| format!("record {n} ({}): {why}\n  line: {}", exp.what, short(line));
        if let Some(b) = line.bytes().find(|&b| b < 0x20 || b == 0x7f) {
            return Err(fail(format!("raw control byte {b:#04x}")));
        }
        if line.contains(['\u{2028}', '\u{2029}']) {
            return Err(fail("raw U+2028/U+2029".into()));
        }
        let Members(got) =
            serde_json::from_str(line).map_err(|e| fail(format!("not JSON: {e}")))?;
        let mut seen = HashSet::new();
        for (k, _) in &got {
            if !seen.insert(k) && !exp.may_repeat.contains(k) {
                return Err(fail(format!("key {k:?} written twice")));
            }
        }
        if got.len() != exp.members.len() {
            let got_keys: Vec<&String> = got.iter().map(|(k, _)| k).collect();
            let want_keys: Vec<&String> = exp.members.iter().map(|(k, _)| k).collect();
            return Err(fail(format!(
                "{} members, {} predicted\n  got keys:  {got_keys:?}\n  want keys: {want_keys:?}",
                got.len(),
                exp.members.len()
            )));
        }
        for ((gk, gv), (wk, wv)) in got.iter().zip(&exp.members) {
            if gk != wk {
                return Err(fail(format!("key {gk:?} where {wk:?} was predicted")));
            }
            if !value_matches(wv, gv, &mut tids) {
                return Err(fail(format!(
                    "{gk:?}: read back {} where {} was predicted",
                    short(&gv.to_string()),
                    short(&format!("{wv:?}"))
                )));
            }
        }
        // The console: exactly one line, nothing raw a terminal would act on.
        let mut shown = Vec::new();
        logxide::sink::render_record(line.as_bytes(), false, &mut shown);
        let shown = String::from_utf8(shown).map_err(|_| fail("console: not UTF-8".into()))?;
        let body = shown
            .strip_suffix('\n')
            .ok_or_else(|| fail("console: no final newline".into()))?;
        if let Some(c) = body.chars().find(|&c| dangerous(c)) {
            return Err(fail(format!("console: raw {c:?} in {}", short(&shown))));
        }
    }
    let distinct: HashSet<&String> = tids.values().collect();
    if distinct.len() != tids.len() {
        return Err("two tasks share a task id".into());
    }
    Ok(lines.len())
}

/// What one case did.
#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    pub records: usize,
    pub bytes: usize,
}

/// Runs one case: the operations `data` encodes, then the checks. `Err` describes the
/// first difference.
pub fn run_input(data: &[u8]) -> Result<Stats, String> {
    let mut inp = Input::new(data);
    // One case in eight may hold one huge string.
    inp.huge_left = u8::from(inp.one_in(8));
    let format = if inp.bit() {
        Format::Eliot
    } else {
        Format::Compact
    };
    let async_writes = inp.bit();
    let names: Vec<String> = match inp.byte() % 4 {
        0 => Mask::DEFAULT.iter().map(|s| s.to_string()).collect(),
        1 => Vec::new(),
        2 => (0..1 + inp.below(4)).map(|_| text(&mut inp)).collect(),
        _ => Mask::DEFAULT
            .iter()
            .map(|s| s.to_string())
            .chain((0..1 + inp.below(3)).map(|_| text(&mut inp)))
            .collect(),
    };
    inp.dict = names.clone();
    let rules = Rules {
        format,
        names: names.clone(),
    };
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .format(format)
        .async_writes(async_writes)
        .mask(Mask::new(&names))
        .sink(mem.clone())
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let mut state = State {
        rules: &rules,
        base: log.clone(),
        cur: log.clone(),
        cur_bound: Ctx::new(),
        threshold: Level::Debug,
        scope_guards: Vec::new(),
        scopes: Vec::new(),
        syncs: Vec::new(),
        actions: Vec::new(),
        entered: Vec::new(),
        detached: Vec::new(),
        tasks: 0,
        expected: Vec::new(),
    };
    let mut steps = 0;
    while !inp.is_empty() && steps < 300 {
        state.step(&mut inp);
        steps += 1;
    }
    state.finish();
    let expected = std::mem::take(&mut state.expected);
    drop(state);
    let report = log.shutdown(None);
    if report.is_some_and(|r| r.timed_out) {
        return Err("shutdown timed out".into());
    }
    let metrics = log.metrics();
    if metrics.dropped + metrics.failed != 0 {
        return Err(format!("records lost: {metrics:?}"));
    }
    let out = mem.contents();
    let records = check(&out, &expected)?;
    Ok(Stats {
        records,
        bytes: out.len(),
    })
}

// ---------------------------------------------------------------------------------------
// The driver.

/// SplitMix64: the case bytes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The bytes of case `case` of `seed`: 16 B to 4 KiB.
fn case_bytes(seed: u64, case: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed ^ case.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let len = 16 + (rng.next() % 4080) as usize;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(len);
    data
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number")),
        Err(_) => default,
    }
}

/// This process's resident memory in KiB (Linux; `None` elsewhere).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// In a long run, memory must stay flat: from its level after 1000 cases it may not grow by
/// more than this (a leak per case shows long before the machine runs out).
const RSS_GROWTH_LIMIT_KIB: u64 = 512 << 10;

#[test]
fn logger_records_read_back_whatever_the_input() {
    let seed = env_u64("LOGXIDE_FUZZ_SEED", 0x6c6f_6778_6964_6501);
    let cases = env_u64("LOGXIDE_FUZZ_CASES", 150);
    let first = env_u64("LOGXIDE_FUZZ_FIRST", 0);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let mut baseline = None;
    for case in first..first + cases {
        let done = case - first;
        if done == 1000 {
            baseline = rss_kib();
        }
        if let (Some(base), true) = (baseline, done % 500 == 0) {
            let now = rss_kib().unwrap_or(0);
            assert!(
                now <= base + RSS_GROWTH_LIMIT_KIB,
                "memory grew from {base} KiB (after 1000 cases) to {now} KiB after {done}: a leak"
            );
        }
        let data = case_bytes(seed, case);
        let t0 = std::time::Instant::now();
        let r = run_input(&data);
        if std::env::var_os("LOGXIDE_FUZZ_VERBOSE").is_some() {
            eprintln!("case {case}: {:?} {:?}", t0.elapsed(), r.as_ref().ok());
        }
        match r {
            Ok(s) => {
                total.records += s.records;
                total.bytes += s.bytes;
            }
            Err(e) => panic!(
                "case {case} of seed {seed} failed (rerun: LOGXIDE_FUZZ_SEED={seed} \
                 LOGXIDE_FUZZ_FIRST={case} LOGXIDE_FUZZ_CASES=1):\n{e}"
            ),
        }
    }
    eprintln!(
        "encode_fuzz: {cases} cases (seed {seed}, from {first}), {} records, {} bytes, in {:.1?}, \
         resident memory {:?} KiB (after 1000 cases: {baseline:?})",
        total.records,
        total.bytes,
        started.elapsed(),
        rss_kib(),
    );
}

#[test]
fn empty_and_tiny_inputs() {
    for data in [&[][..], &[0], &[1], &[0xff; 3], &[7, 0, 1, 2, 3]] {
        run_input(data).unwrap();
    }
}

/// Cases that found bugs, by seed and case number (`case_bytes`), run whatever the seed of
/// the main test. A case's bytes mean what this file's interpreter makes of them: a change
/// to the generators can move a bug to other cases, so each bug found also has a test of
/// its own, written out (below).
const REGRESSIONS: &[(u64, u64, &str)] = &[(
    0x6c6f_6778_6964_6501,
    6,
    "Eliot: a field named `exc` next to the logger's own `exc` (key written twice)",
)];

#[test]
fn regressions() {
    for &(seed, case, what) in REGRESSIONS {
        if let Err(e) = run_input(&case_bytes(seed, case)) {
            panic!("regression {what} (seed {seed}, case {case}):\n{e}");
        }
    }
}

/// Found by this test: in the Eliot format a field named `dur`, `exc` or `reason` (the
/// logger's own keys in both formats) was written as it was, next to the logger's key of
/// that name, so the record had the key twice and a reader kept one of the two values.
#[test]
fn eliot_renames_fields_named_like_the_loggers_own_keys() {
    let err = ChainErr {
        text: "boom".into(),
        source: None,
    };
    for format in [Format::Compact, Format::Eliot] {
        let mem = MemorySink::new();
        let log = Logger::builder()
            .use_env(false)
            .format(format)
            .sink(mem.clone())
            .build()
            .unwrap();
        logxide::exception!(logger: log, &err, "m", exc = "user exc", reason = "user reason");
        {
            let child = log.ctx(Fields::new().with("dur", "user dur"));
            let a = child.start_action("a", |f| f.field("_dur", "user _dur"));
            a.fail_with("E", "why");
        }
        log.flush(None).unwrap();
        let lines = mem.lines();
        assert_eq!(lines.len(), 3);
        for line in &lines {
            let Members(members) = serde_json::from_str(line).unwrap();
            let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            let n = keys.len();
            keys.dedup();
            assert_eq!(keys.len(), n, "a key twice in {line}");
        }
        let rec = |i: usize| serde_json::from_str::<Value>(&lines[i]).unwrap();
        // The error type is `exc` in compact, `exception` (Eliot's name) in eliot, where a
        // field named `exc` is then the user's own.
        let exc = format.header_keys().exc;
        assert_eq!(rec(0)[exc], std::any::type_name::<ChainErr>());
        assert_eq!(rec(0)["reason"], "boom");
        let user_exc = if exc == "exc" { "_exc" } else { "exc" };
        assert_eq!(rec(0)[user_exc], "user exc");
        assert_eq!(rec(0)["_reason"], "user reason");
        assert_eq!(rec(2)["reason"], "why");
        assert!(rec(2)["dur"].is_f64());
        assert_eq!(rec(2)["_dur"], "user dur");
        assert_eq!(rec(1)["__dur"], "user _dur");
    }
}

/// Found by a long run of this test (its memory grew by about 0.7 MB a case until the OOM
/// killer stopped it): `enter`, `detach` and `instrument` forgot the guard they consumed,
/// leaking a count of the action's state, which holds its logger — so every logger that
/// ever started an action, with its writer's queue, stayed in memory for good (and each
/// action's state too). Dropping the last handle of a logger must drop its writer and sinks.
#[test]
fn ended_actions_let_their_logger_go() {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    /// Sets its flag when dropped (with the writer, once the core is gone).
    struct Flag(Arc<AtomicBool>);
    impl logxide::sink::Sink for Flag {
        fn name(&self) -> &str {
            "flag"
        }
        fn write_batch(
            &mut self,
            _: &logxide::sink::Batch<'_>,
        ) -> Result<(), logxide::sink::SinkError> {
            Ok(())
        }
    }
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }

    for how in 0..4 {
        let dropped = Arc::new(AtomicBool::new(false));
        let log = Logger::builder()
            .use_env(false)
            .sink(Flag(Arc::clone(&dropped)))
            .build()
            .unwrap();
        match how {
            0 => drop(log.start_action("entered", |_| {})),
            1 => log
                .start_action("detached", |_| {})
                .detach()
                .enter()
                .finish(),
            2 => {
                let waker = Waker::from(Arc::new(Noop));
                let mut fut = std::pin::pin!(log
                    .start_action("future", |_| {})
                    .detach()
                    .instrument(async {}));
                assert!(fut
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready());
            }
            _ => {
                let ctx = log.start_action("parent", |_| {}).context();
                drop(log.continue_action(&ctx, "continued", |_| {}).detach());
            }
        }
        drop(log);
        assert!(
            dropped.load(SeqCst),
            "case {how}: the logger outlived its last handle (an action kept it)"
        );
    }
}
