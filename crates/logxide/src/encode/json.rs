//! JSON primitives: string escaping and number formatting, straight into a byte buffer.
//!
//! Everything here appends to a `Vec<u8>` and never allocates anything else.

use std::convert::Infallible;
use std::fmt;

/// What to do with one byte of a string (indexed by the byte).
///
/// `0`: copy as is. `b'u'`: escape as `\u00XX`. `b'E'`: possibly the first byte of U+2028 /
/// U+2029 (`E2 80 A8` / `E2 80 A9`), check the next two bytes. Anything else: the letter of
/// the two-character escape (`\n`, `\"`, ...).
static ESCAPE: [u8; 256] = ESCAPE_TABLE;

/// [`ESCAPE`] as a constant, for [`is_plain_const`].
const ESCAPE_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[0x7f] = b'u';
    t[0xe2] = b'E';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `\u00XX` for the byte `b` (a control character, or DEL).
#[inline]
fn u_escape(b: u8) -> [u8; 6] {
    [
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[(b >> 4) as usize],
        HEX[(b & 0xf) as usize],
    ]
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first `needle` in `b`, eight bytes at a time: for the short runs between
/// capture segments, cheaper than a call to `memchr`.
#[inline]
pub(crate) fn find_byte(b: &[u8], needle: u8) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ (ONES * needle as u64);
        // The lowest flagged byte is exact (a borrow only flags bytes above a zero byte).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == needle)
        .map(|i| at + i)
}

/// Whether any of the eight bytes in `w` may need escaping: a control character, `"`, `\`,
/// DEL, or 0xE2 (the lead byte of U+2028 / U+2029, and of other characters: a false alarm
/// that only sends the word to the byte-at-a-time path).
#[inline(always)]
const fn word_needs_attention(w: u64) -> bool {
    // Bytes below 0x20: exact for "any byte", as the high bit of `!w` rules out >= 0x80.
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    // The five tests combined without branches: one test of the high bits at the end.
    (control
        | zero_bytes(w ^ (ONES * b'"' as u64))
        | zero_bytes(w ^ (ONES * b'\\' as u64))
        | zero_bytes(w ^ (ONES * 0x7f))
        | zero_bytes(w ^ (ONES * 0xe2)))
        & HIGHS
        != 0
}

/// SWAR: the high bit of each zero byte of `w` is set (and maybe of bytes above a zero
/// byte, through the borrow: exact for "any byte is zero").
#[inline(always)]
const fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w
}

/// Escapes `s` (the contents of a JSON string, without the quotes), handing the output to
/// `emit` in pieces: unescaped runs are passed through in one call each.
///
/// Escaped: `"`, `\`, U+0000–U+001F (short forms `\b \t \n \f \r`, the rest `\u00XX`),
/// DEL U+007F (`\u007f`), and U+2028 / U+2029 (`\u2028` / `\u2029`).
#[inline]
fn escape_with<E>(s: &str, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Fast path: skip eight plain bytes at a time.
        let slow_end = match bytes.get(i..i + 8) {
            Some(chunk) => {
                let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                if !word_needs_attention(w) {
                    i += 8;
                    continue;
                }
                i + 8
            }
            None => bytes.len(),
        };
        // Slow path: the flagged word (or the short tail), a byte at a time. An escape may
        // take `i` up to two bytes past `slow_end`: it is a character boundary all the same.
        while i < slow_end {
            let b = bytes[i];
            let class = ESCAPE[b as usize];
            if class == 0 {
                i += 1;
                continue;
            }
            let short: [u8; 2];
            let long: [u8; 6];
            let (esc, len): (&[u8], usize) = match class {
                b'E' => {
                    // U+2028 is E2 80 A8, U+2029 is E2 80 A9. `s` is valid UTF-8, so E2
                    // always starts a three-byte sequence: the two bytes after it exist.
                    match (bytes[i + 1], bytes[i + 2]) {
                        (0x80, 0xa8) => (b"\\u2028", 3),
                        (0x80, 0xa9) => (b"\\u2029", 3),
                        _ => {
                            i += 3;
                            continue;
                        }
                    }
                }
                b'u' => {
                    long = u_escape(b);
                    (&long, 1)
                }
                c => {
                    short = [b'\\', c];
                    (&short, 1)
                }
            };
            if start < i {
                emit(&bytes[start..i])?;
            }
            emit(esc)?;
            i += len;
            start = i;
        }
    }
    if start < bytes.len() {
        emit(&bytes[start..])?;
    }
    Ok(())
}

/// True if no byte of `b` may need escaping (see [`word_needs_attention`]): the common case,
/// checked eight bytes at a time — the last word overlaps the one before it, so there is no
/// byte-at-a-time tail for strings of eight bytes or more.
#[inline(always)]
pub(crate) fn is_plain(b: &[u8]) -> bool {
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
    let n = b.len();
    if n < 8 {
        return b.iter().all(|&c| ESCAPE[c as usize] == 0);
    }
    let mut i = 0;
    while i + 8 < n {
        if word_needs_attention(word(i)) {
            return false;
        }
        i += 8;
    }
    !word_needs_attention(word(n - 8))
}

/// [`is_plain`] for constants (a byte at a time).
pub(crate) const fn is_plain_const(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if ESCAPE_TABLE[b[i] as usize] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// Appends the escaped contents of `s` (no quotes) to `out`.
#[inline]
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    if is_plain(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
    } else {
        escape_slow(out, s);
    }
}

/// [`escape_into`] for strings that hold (or may hold) a character to escape.
#[inline(never)]
fn escape_slow(out: &mut Vec<u8>, s: &str) {
    let r: Result<(), Infallible> = escape_with(s, |piece| {
        out.extend_from_slice(piece);
        Ok(())
    });
    let Ok(()) = r;
}

/// Appends `s` as a quoted, escaped JSON string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends bytes as a JSON string, decoding them as UTF-8 lossily (each invalid sequence
/// becomes U+FFFD) without an intermediate allocation.
pub(crate) fn write_bytes_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        escape_into(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out.push(b'"');
}

/// A [`fmt::Write`] that escapes what it is given into a buffer, so that `Display` and
/// `Debug` output can be captured as the contents of a JSON string without an intermediate
/// `String`. Each `write_str` gets whole characters, so U+2028 is never split.
pub(crate) struct EscapeWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for EscapeWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends an integer.
#[inline]
pub(crate) fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float: finite values in their shortest round-trip form (`1.0`, `0.2`, `1e+21`),
/// NaN and the infinities as the JSON strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
#[inline]
pub(crate) fn write_float<F: Float>(out: &mut Vec<u8>, v: F) {
    match v.non_finite() {
        None => v.write_finite(out),
        Some(s) => out.extend_from_slice(s),
    }
}

/// `f32` and `f64`: classification and formatting.
pub(crate) trait Float: Copy {
    /// `None` when finite, else the quoted string to write.
    fn non_finite(self) -> Option<&'static [u8]>;
    /// Appends a finite value in its shortest round-trip form. This goes through
    /// serde_json's formatter (a shortest-digits algorithm, measured about twice as fast as
    /// `ryu` on typical values; it writes to a `Vec`, which cannot fail), except for the
    /// `f64`s that [`write_milli_decimal`] writes faster, with the same bytes.
    fn write_finite(self, out: &mut Vec<u8>);
}

macro_rules! float {
    ($($t:ty => $write:ident after $shortcut:ident),*) => {$(
        impl Float for $t {
            #[inline]
            fn non_finite(self) -> Option<&'static [u8]> {
                if self.is_finite() {
                    None
                } else if self.is_nan() {
                    Some(b"\"NaN\"")
                } else if self > 0.0 {
                    Some(b"\"Infinity\"")
                } else {
                    Some(b"\"-Infinity\"")
                }
            }

            #[inline]
            fn write_finite(self, out: &mut Vec<u8>) {
                if !$shortcut(out, self) {
                    use serde_json::ser::Formatter;
                    let _ = serde_json::ser::CompactFormatter.$write(out, self);
                }
            }
        }
    )*};
}
/// `f32` has no such shortcut: its shortest forms are those of its own precision.
fn no_shortcut(_: &mut Vec<u8>, _: f32) -> bool {
    false
}

float!(f32 => write_f32 after no_shortcut, f64 => write_f64 after write_milli_decimal);

/// Below 2^42 the gap between neighbouring `f64`s is at most 2^-11, less than 0.001.
const MILLI_EXACT_BELOW: f64 = (1u64 << 42) as f64;

/// Writes `v` if a decimal with at most three digits after the point rounds to it (`12.5`,
/// `0.25`, `1234.567`, `3.0`: measured values, money, the `dur` of a whole second) and it
/// is below 2^42 in magnitude; returns false, writing nothing, otherwise.
///
/// That decimal is then the shortest round trip, the one the general algorithm would pick:
/// any decimal with fewer digits after the point differs from it by at least 0.001, more
/// than the gap between neighbouring `f64`s here, so it rounds to another value. The test
/// `milli_decimals_are_what_the_general_algorithm_writes` checks it against serde_json's
/// formatter on every kind of input. It costs about 80 instructions fewer than the general
/// algorithm (callgrind, `logxide-bench hot`: the writer's 680 per record became 600).
#[inline]
fn write_milli_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    // (NaN fails the comparisons below: it is never written here.)
    if v.abs() >= MILLI_EXACT_BELOW {
        return false;
    }
    // `v * 1000` is within a rounding of the integer `k` when `v` is the `f64` nearest to
    // `k / 1000`: truncation gives `k`, or `k - 1` below it (away from zero for negatives).
    let t = (v * 1000.0) as i64;
    // `k` and `1000` are exact in an `f64` (|k| < 2^52), so the division is correctly
    // rounded: equality means `k / 1000` rounds to `v`.
    let k = if t as f64 / 1000.0 == v {
        t
    } else {
        let k = if v < 0.0 { t - 1 } else { t + 1 };
        if k as f64 / 1000.0 != v {
            return false;
        }
        k
    };
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let k = k.unsigned_abs();
    let (whole, frac) = (k / 1000, (k % 1000) as usize);
    out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
    // `.0` for a whole number, else the digits without trailing zeros: all four bytes are
    // written (one store) and the zeros cut off.
    let cut = if frac % 100 == 0 {
        2
    } else if frac % 10 == 0 {
        1
    } else {
        0
    };
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        DIGIT_PAIRS[2 * (frac % 100)],
        DIGIT_PAIRS[2 * (frac % 100) + 1],
    ]);
    out.truncate(out.len() - cut);
    true
}

/// Appends a timestamp as seconds with exactly six decimals, e.g. `1700000000.000000`.
/// `micros` of a million or more carry into the seconds (see [`carried`]).
#[inline]
pub(crate) fn write_timestamp(out: &mut Vec<u8>, secs: u64, micros: u32) {
    let (secs, micros) = carried(secs, micros);
    write_int(out, secs);
    write_micros(out, micros);
}

/// `secs` and `micros` with the whole seconds of `micros` carried into `secs`: micros below
/// a million. A carry past the last second a `u64` holds saturates at that second's last
/// microsecond, `18446744073709551615.999999` (the seconds alone saturating gave
/// `….000000`, a time before the same second's `.999999`).
#[inline]
pub(crate) fn carried(secs: u64, micros: u32) -> (u64, u32) {
    match secs.checked_add(u64::from(micros / 1_000_000)) {
        Some(secs) => (secs, micros % 1_000_000),
        None => (u64::MAX, 999_999),
    }
}

/// Appends `.` and six digits: the fraction of a timestamp (`micros` below a million).
#[inline]
pub(crate) fn write_micros(out: &mut Vec<u8>, micros: u32) {
    let m = micros as usize;
    let (hi, mid, lo) = (m / 10_000, m / 100 % 100, m % 100);
    out.extend_from_slice(&[
        b'.',
        DIGIT_PAIRS[2 * hi],
        DIGIT_PAIRS[2 * hi + 1],
        DIGIT_PAIRS[2 * mid],
        DIGIT_PAIRS[2 * mid + 1],
        DIGIT_PAIRS[2 * lo],
        DIGIT_PAIRS[2 * lo + 1],
    ]);
}

/// `"00" "01" … "99"`: two decimal digits per lookup.
static DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// How many levels of arrays and objects a serde value may nest: a record, one level itself,
/// then nests at most 1024, what `logxide check` and `view` read. It also bounds the stack a
/// value's serialization takes (serde_json's serializer recurses with no limit, so a value
/// nested some thousands deep overflowed the caller's stack: the process aborted).
pub(crate) const MAX_SERDE_NESTING: usize = 1023;

/// A serde_json formatter that additionally escapes DEL, U+2028 and U+2029 inside strings
/// (serde_json itself already escapes quotes, backslashes and control characters), so nested
/// values keep the one-line guarantee, and refuses to nest deeper than [`MAX_SERDE_NESTING`]
/// (an I/O error `nested deeper than 1023 levels`, which serde_json returns as its own).
#[derive(Default)]
pub(crate) struct LineSafeFormatter {
    /// The arrays and objects open.
    depth: usize,
}

impl LineSafeFormatter {
    /// One more level opens: refused past [`MAX_SERDE_NESTING`].
    #[inline]
    fn open<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, c: u8) -> std::io::Result<()> {
        if self.depth >= MAX_SERDE_NESTING {
            return Err(too_deep());
        }
        self.depth += 1;
        writer.write_all(&[c])
    }

    #[inline]
    fn close<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, c: u8) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        writer.write_all(&[c])
    }
}

/// The error of a serde value nested deeper than [`MAX_SERDE_NESTING`].
#[cold]
fn too_deep() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("nested deeper than {MAX_SERDE_NESTING} levels"),
    )
}

impl serde_json::ser::Formatter for LineSafeFormatter {
    #[inline]
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b'[')
    }

    #[inline]
    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b']')
    }

    #[inline]
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b'{')
    }

    #[inline]
    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b'}')
    }

    #[inline]
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        escape_with(fragment, |piece| writer.write_all(piece))
    }

    /// A number's text given as is: what serde_json writes for a `serde_json::Number` with
    /// its `arbitrary_precision` feature, which any crate of the program may enable. A
    /// `Serialize` impl can hand it any text that way, as for a `RawValue` (the struct and field
    /// name serde_json recognises), so the text is written only if it is a JSON number (RFC
    /// 8259's grammar; any number of digits), else it is an error (nothing written) and the
    /// serde value becomes `"<serialize error: number text is not a JSON number>"`. A number too
    /// large for an `f64` (`1e400`: see [`overflows_f64`]) is written as `null`, as a
    /// non-finite float inside a serde value is.
    #[inline]
    fn write_number_str<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: &str,
    ) -> std::io::Result<()> {
        if !is_json_number(value.as_bytes()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "number text is not a JSON number",
            ));
        }
        writer.write_all(if overflows_f64(value.as_bytes()) {
            b"null"
        } else {
            value.as_bytes()
        })
    }

    /// JSON text given as is (a `serde_json::value::RawValue`): valid JSON, but it may hold
    /// line breaks between its tokens and DEL, U+2028 and U+2029 raw inside its strings.
    /// Written without the whitespace between tokens, and with those characters (and any
    /// control character) escaped inside strings, so the record stays one line. An escaped
    /// lone surrogate (`\ud800` not followed by `\udc00`–`\udfff`, or a lone `\udc00`) is
    /// written as `\ufffd`, and a number too large for an `f64` (`1e400`, which serde_json
    /// refuses to read: see [`overflows_f64`]) as `null`, as a non-finite float inside a serde
    /// value is.
    ///
    /// The text is checked first: a `Serialize` impl can hand serde_json any text as raw
    /// JSON, the way `RawValue` does (its struct and field name), without `RawValue`'s check.
    /// Text that is not one JSON value is an error (nothing written), so the serde value
    /// becomes `"<serialize error: raw JSON text is not JSON: …>"`. (That check reads at most
    /// 127 levels, as a `RawValue` made by serde_json's parser has; its levels count with
    /// those around it toward [`MAX_SERDE_NESTING`].)
    fn write_raw_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(fragment) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("raw JSON text is not JSON: {e}"),
            ));
        }
        let b = fragment.as_bytes();
        let (mut start, mut i, mut in_string, mut raw_depth) = (0, 0, false, 0);
        while i < b.len() {
            let long: [u8; 6];
            // What replaces the `len` bytes at `i`.
            let (len, with): (usize, &[u8]) = match (in_string, b[i]) {
                (true, b'\\') => match hex_escape(&b[i..]) {
                    // A surrogate pair: kept.
                    Some(0xd800..=0xdbff)
                        if matches!(hex_escape(&b[i + 6..]), Some(0xdc00..=0xdfff)) =>
                    {
                        i += 12;
                        continue;
                    }
                    // A lone surrogate (which JSON readers such as serde_json reject).
                    Some(0xd800..=0xdfff) => (6, b"\\ufffd"),
                    // Any other escape and the (ASCII) character it escapes: kept.
                    _ => {
                        i += 2;
                        continue;
                    }
                },
                (true, 0xe2) if b[i + 1..].starts_with(&[0x80, 0xa8]) => (3, b"\\u2028"),
                (true, 0xe2) if b[i + 1..].starts_with(&[0x80, 0xa9]) => (3, b"\\u2029"),
                (true, c @ (0x00..=0x1f | 0x7f)) => {
                    long = u_escape(c);
                    (1, &long)
                }
                (false, b' ' | b'\t' | b'\n' | b'\r') => (1, b""),
                (false, b'-' | b'0'..=b'9') => {
                    let len = b[i..]
                        .iter()
                        .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                        .unwrap_or(b.len() - i);
                    if !overflows_f64(&b[i..i + len]) {
                        i += len;
                        continue;
                    }
                    (len, b"null")
                }
                (false, b'[' | b'{') => {
                    // Its levels count with those around it.
                    raw_depth += 1;
                    if self.depth + raw_depth > MAX_SERDE_NESTING {
                        return Err(too_deep());
                    }
                    i += 1;
                    continue;
                }
                (false, b']' | b'}') => {
                    raw_depth = raw_depth.saturating_sub(1);
                    i += 1;
                    continue;
                }
                (_, c) => {
                    in_string ^= c == b'"';
                    i += 1;
                    continue;
                }
            };
            writer.write_all(&b[start..i])?;
            writer.write_all(with)?;
            i += len;
            start = i;
        }
        writer.write_all(&b[start..])
    }
}

/// Whether the JSON number `s` is too large for an `f64` (`1e400`, a 400-digit integer):
/// valid JSON, but serde_json — and so `logxide check` and `view` — refuses to read it
/// ("number out of range"), and with it the whole line.
fn overflows_f64(s: &[u8]) -> bool {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(f64::is_infinite)
}

/// Whether `s` is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let s = s.strip_prefix(b"-").unwrap_or(s);
    let int = digits(s);
    if int == 0 || (s[0] == b'0' && int > 1) {
        return false;
    }
    let mut rest = &s[int..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

/// The code unit of the `\uXXXX` escape at the start of `s`, if it starts with one.
fn hex_escape(s: &[u8]) -> Option<u16> {
    let digits = s.strip_prefix(b"\\u")?.get(..4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn find_byte_finds_the_first_occurrence(
            hay in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 2, 0x80, 0x81, 0xff]), 0..40),
            needle in proptest::sample::select(vec![0u8, 1, 0x80, 0xff]),
        ) {
            proptest::prop_assert_eq!(find_byte(&hay, needle), hay.iter().position(|&b| b == needle));
        }
    }

    fn esc(s: &str) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    /// The reference escaper: one character at a time.
    fn slow(s: &str) -> String {
        let mut o = String::new();
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                '\u{8}' => o.push_str("\\b"),
                '\u{c}' => o.push_str("\\f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    o.push_str(&format!("\\u{:04x}", c as u32))
                }
                '\u{2028}' => o.push_str("\\u2028"),
                '\u{2029}' => o.push_str("\\u2029"),
                c => o.push(c),
            }
        }
        o
    }

    #[test]
    fn word_check_agrees_with_the_table() {
        // Every byte value at every position of an otherwise plain word.
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut word = *b"abcdefgh";
                word[pos] = b;
                let flagged = word_needs_attention(u64::from_le_bytes(word));
                assert_eq!(flagged, ESCAPE[b as usize] != 0, "byte {b:#x} at {pos}");
            }
        }
        // Mixed high bytes next to controls (borrows across bytes).
        for (a, b) in [
            (0x80u8, 0x00u8),
            (0xff, 0x1f),
            (0x00, 0x80),
            (0x20, 0x1f),
            (0x21, 0x21),
        ] {
            let w = u64::from_le_bytes([a, b, b'x', b'x', b'x', b'x', b'x', b'x']);
            let want = ESCAPE[a as usize] != 0 || ESCAPE[b as usize] != 0;
            assert_eq!(word_needs_attention(w), want, "{a:#x} {b:#x}");
        }
    }

    /// One byte of every value at every position of plain strings of every length up to
    /// 17: `is_plain` says whether it needs escaping exactly as the table does (short
    /// strings byte by byte, longer ones word by word with an overlapping last word).
    #[test]
    fn is_plain_agrees_with_the_table_at_every_length_and_position() {
        assert!(is_plain(b""));
        for n in 1..=17 {
            assert!(is_plain(&vec![b'x'; n]), "{n} plain bytes");
            for pos in 0..n {
                for b in 0..=255u8 {
                    let mut s = vec![b'x'; n];
                    s[pos] = b;
                    assert_eq!(
                        is_plain(&s),
                        ESCAPE[b as usize] == 0,
                        "byte {b:#x} at {pos} of {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_at_every_offset_around_word_boundaries() {
        for len in 0..40 {
            for pos in 0..len {
                for special in ["\"", "\n", "\u{7f}", "\u{2028}", "€", "é"] {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == pos {
                                special.to_string()
                            } else {
                                "x".into()
                            }
                        })
                        .collect();
                    assert_eq!(esc(&s), slow(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn empty_and_plain() {
        assert_eq!(esc(""), "");
        assert_eq!(esc("a"), "a");
        assert_eq!(esc("hello world"), "hello world");
    }

    #[test]
    fn escape_at_start_middle_end_and_alone() {
        for special in [
            "\"", "\\", "\n", "\u{0}", "\u{1f}", "\u{7f}", "\u{2028}", "\u{2029}",
        ] {
            for s in [
                special.to_string(),
                format!("{special}abc"),
                format!("abc{special}"),
                format!("ab{special}cd"),
                format!("{special}{special}"),
                format!("a{special}{special}b"),
            ] {
                assert_eq!(esc(&s), slow(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn all_control_characters() {
        for c in (0u32..0x20).chain([0x7f]) {
            let c = char::from_u32(c).unwrap();
            let want = match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                '\u{8}' => "\\b".to_string(),
                '\u{c}' => "\\f".to_string(),
                c => format!("\\u{:04x}", c as u32),
            };
            assert_eq!(esc(&c.to_string()), want);
        }
    }

    #[test]
    fn e2_lead_byte_without_line_separator_passes_through() {
        // Other characters starting with E2: U+2000..U+2FFF, e.g. '€' (E2 82 AC), '…' (E2 80 A6),
        // U+2027 (E2 80 A7), U+202A (E2 80 AA), at the end of the string too.
        for s in [
            "€",
            "a€",
            "€a",
            "…",
            "\u{2027}",
            "\u{202a}",
            "x\u{2027}\u{2028}\u{202a}y",
        ] {
            assert_eq!(esc(s), slow(s), "{s:?}");
        }
        assert_eq!(esc("€"), "€");
        assert_eq!(esc("\u{2027}\u{2028}"), "\u{2027}\\u2028");
    }

    #[test]
    fn every_char_boundary_of_a_mixed_string() {
        let s = "ab\"c\\d\ne\u{1}f\u{7f}g\u{2028}h\u{2029}i€j😀k";
        for (i, _) in s.char_indices() {
            for (j, _) in s[i..].char_indices() {
                let sub = &s[i..i + j];
                assert_eq!(esc(sub), slow(sub), "{sub:?}");
            }
        }
    }

    #[test]
    fn all_chars_round_trip_through_serde_json() {
        // Every char up to U+3000 and some beyond, in one string.
        let s: String = (0u32..0x3000)
            .chain([0xfeff, 0xfffd, 0x1f600, 0x10ffff])
            .filter_map(char::from_u32)
            .collect();
        let mut out = Vec::new();
        write_str(&mut out, &s);
        assert_eq!(esc(&s), slow(&s));
        assert!(!out.contains(&b'\n') && !out.contains(&b'\r') && !out.contains(&0x7f));
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn lossy_bytes() {
        let mut out = Vec::new();
        write_bytes_lossy(&mut out, b"ok\xff\"\xe2\x80");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"ok\u{FFFD}\\\"\u{FFFD}\""
        );
    }

    #[test]
    fn timestamps() {
        let ts = |s, m| {
            let mut out = Vec::new();
            write_timestamp(&mut out, s, m);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ts(1_700_000_000, 0), "1700000000.000000");
        assert_eq!(ts(1_700_000_001, 100_000), "1700000001.100000");
        assert_eq!(ts(0, 1), "0.000001");
        assert_eq!(ts(5, 999_999), "5.999999");
        assert_eq!(ts(7, 10_203), "7.010203");
        assert_eq!(ts(7, 123_456), "7.123456");
        assert_eq!(ts(5, 1_000_000), "6.000000");
        assert_eq!(ts(5, u32::MAX), "4299.967295");
        assert_eq!(ts(u64::MAX, 999_999), "18446744073709551615.999999");
        assert_eq!(ts(u64::MAX, 1_000_000), "18446744073709551615.999999");
        assert_eq!(ts(u64::MAX - 4, u32::MAX), "18446744073709551615.999999");
        assert_eq!(ts(u64::MAX - 4294, u32::MAX), "18446744073709551615.967295");
    }

    /// The shortcut writes exactly what serde_json's formatter writes, on values it takes
    /// (decimals with up to three places, whole numbers, both signs, near its 2^42 bound)
    /// and on values it must leave to the general algorithm.
    #[test]
    fn milli_decimals_are_what_the_general_algorithm_writes() {
        use serde_json::ser::Formatter;
        let general = |v: f64| {
            let mut out = Vec::new();
            serde_json::ser::CompactFormatter
                .write_f64(&mut out, v)
                .unwrap();
            out
        };
        let check = |v: f64| {
            let mut fast = Vec::new();
            let took = write_milli_decimal(&mut fast, v);
            if took {
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&general(v)),
                    "{v:e}"
                );
            } else {
                assert!(fast.is_empty(), "{v:e}");
            }
            let mut out = Vec::new();
            v.write_finite(&mut out);
            assert_eq!(out, general(v), "{v:e}");
            took
        };
        let mut taken = 0;
        for k in -20_000i64..=20_000 {
            for scale in [1.0, 10.0, 100.0, 1000.0, 1e4] {
                taken += usize::from(check(k as f64 / scale));
            }
        }
        let bound = MILLI_EXACT_BELOW;
        for v in [
            bound,
            bound / 2.0,
            bound - 1.0,
            bound - 0.5,
            bound - 0.25,
            1e12 + 0.125,
            4.0e12 + 0.001,
            0.001,
            0.0005,
            1e-3 * 3.0,
            0.1 + 0.2,
            1.0 / 3.0,
            2.5e-4,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            1e15,
            123_456_789.123,
            -987_654.321,
            1e21,
            1e-7,
        ] {
            check(v);
            check(-v);
            check(v.next_up());
            check(v.next_down());
        }
        // Pseudo-random values over the whole range of magnitudes and of bit patterns.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                check(v);
            }
            let m =
                (x % 10_000_000_000) as f64 / [1.0, 10.0, 100.0, 1000.0][(x >> 60) as usize % 4];
            taken += usize::from(check(m));
        }
        assert!(taken > 150_000, "the shortcut took {taken} values");
        assert!(!check(0.1 + 0.2) && !check(1.0 / 3.0) && !check(bound));
        assert!(check(12.5) && check(-0.25) && check(3.0) && check(-0.0) && check(0.001));
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut out = Vec::new();
            assert!(!write_milli_decimal(&mut out, v) && out.is_empty());
        }
    }

    /// A number's text as serde_json hands it on with its `arbitrary_precision` feature (a
    /// `serde_json::Number`, or any `Serialize` impl using its private struct name, as for
    /// `RawValue`): written only if it is a JSON number, else an error and nothing written.
    #[test]
    fn number_text_that_is_not_a_json_number_is_refused() {
        use serde_json::ser::Formatter;
        let write = |text: &str| {
            let mut out = Vec::new();
            let r = LineSafeFormatter::default().write_number_str(&mut out, text);
            (
                r.map_err(|e| e.to_string()),
                String::from_utf8(out).unwrap(),
            )
        };
        for good in [
            "0",
            "-0",
            "12",
            "-12.5",
            "1e-400",
            "1.5E-7",
            "2e+3",
            "123456789012345678901234567890",
        ] {
            assert_eq!(write(good), (Ok(()), good.to_string()), "{good:?}");
        }
        // Too large for an `f64`: serde_json refuses to read it back ("number out of range").
        for huge in ["1e400", "-1E+309", &"9".repeat(400)] {
            assert_eq!(write(huge), (Ok(()), "null".to_string()), "{huge:?}");
        }
        for bad in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "NaN",
            "inf",
            " 1",
            "1 ",
            "1\n",
            "1,\"x\":2",
            "1}\n{\"y\":1",
            "0x10",
            "1.2.3",
            "--1",
        ] {
            assert_eq!(
                write(bad),
                (
                    Err("number text is not a JSON number".to_string()),
                    String::new()
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn floats() {
        let f = |v: f64| {
            let mut out = Vec::new();
            write_float(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(f(0.2), "0.2");
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(f64::NAN), "\"NaN\"");
        assert_eq!(f(f64::INFINITY), "\"Infinity\"");
        assert_eq!(f(f64::NEG_INFINITY), "\"-Infinity\"");
        let mut out = Vec::new();
        write_float(&mut out, f32::NEG_INFINITY);
        write_float(&mut out, 1.5f32);
        assert_eq!(out, b"\"-Infinity\"1.5");
    }
}
