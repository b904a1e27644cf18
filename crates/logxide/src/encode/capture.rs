//! Deferred formatting: the caller captures a record's costly values raw, and the writer
//! thread turns them into JSON text.
//!
//! # Why
//!
//! Formatting a float, an integer or a timestamp is a good part of what a log call costs
//! the caller. In a *captured* record the caller writes everything else as finished JSON
//! (braces, keys, strings, the task id) and, in place of each number, a **segment**: a
//! marker byte, a tag and the value's eight raw bytes. The writer thread
//! [`expand`](Expander::expand)s the segments as it gathers a batch, so the number
//! formatting runs on the writer's core, in parallel with the callers (Quill's
//! hot-path/back-end split). The output is byte for byte what the eager encoder writes.
//!
//! Strings are not deferred: checking a short string for characters to escape costs the
//! caller about what copying it into a segment would, and a deferred string would cost the
//! writer a UTF-8 validation on top of the check (measured with callgrind, `logxide-bench
//! hot`). `Display`, `Debug` and serde values borrow the caller's data and are formatted by
//! the caller.
//!
//! # Why the marker is unambiguous
//!
//! A segment starts with [`MARK`] (`0x01`). The encoder never writes that byte raw in JSON
//! text: every control character inside a string or a key is escaped (`\u0001`), and JSON
//! has no other place a control character could be. So outside segments the byte cannot
//! occur, and a segment's payload is skipped by its fixed length without being looked at.
//! Captured records only ever come from [`RecordEncoder`](super::RecordEncoder) and travel
//! the queue tagged as such: lines given to the writer directly are never expanded.
//!
//! # Layout
//!
//! Ten bytes per segment: `MARK`, a tag, eight bytes little-endian.
//!
//! | tag | value | written as |
//! |---|---|---|
//! | `T` | seconds `<< 20 \| microseconds` (a time past 2^44 s is written now) | `1700000000.123456` |
//! | `i` | `i64` | `-42` |
//! | `u` | `u64` | `42` |
//! | `f` | `f64` bits | `0.25`, `"NaN"` |
//! | `g` | `f32` bits | `0.1` |

use super::json;

/// The byte that starts a segment.
pub(crate) const MARK: u8 = 0x01;

const TIMESTAMP: u8 = b'T';
const SIGNED: u8 = b'i';
const UNSIGNED: u8 = b'u';
const FLOAT: u8 = b'f';
const FLOAT32: u8 = b'g';

/// A value the writer thread can format later: see [`Encode::scalar`](super::Encode::scalar).
///
/// ```
/// use logxide::encode::{Encode, Scalar};
/// assert_eq!(7u8.scalar(), Some(Scalar::Unsigned(7)));
/// assert_eq!("text".scalar(), Some(Scalar::Str("text")));
/// assert_eq!(true.scalar(), None); // as cheap to write now
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Scalar<'a> {
    /// A signed integer.
    Signed(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A 64-bit float (non-finite values become the strings `"NaN"`, `"Infinity"`, …).
    Float(f64),
    /// A 32-bit float, written in its own shortest form.
    Float32(f32),
    /// A string, escaped when it is written.
    Str(&'a str),
}

/// Appends a timestamp segment (or, for a time past the year 500 000, its text).
#[inline(always)]
pub(crate) fn timestamp(out: &mut Vec<u8>, secs: u64, micros: u32) {
    // As `json::write_timestamp`: a million microseconds or more carry into the seconds.
    let (secs, micros) = if micros < 1_000_000 {
        (secs, micros)
    } else {
        (
            secs.saturating_add(u64::from(micros / 1_000_000)),
            micros % 1_000_000,
        )
    };
    if secs >> SECS_BITS != 0 {
        return json::write_timestamp(out, secs, micros);
    }
    segment(out, TIMESTAMP, secs << MICROS_BITS | u64::from(micros));
}

/// A timestamp segment packs the seconds and the microseconds into its eight bytes.
const MICROS_BITS: u32 = 20;
const SECS_BITS: u32 = 64 - MICROS_BITS;

/// Appends the segment of a scalar (a string is written now: see the module docs).
#[inline(always)]
pub(crate) fn scalar(out: &mut Vec<u8>, value: Scalar<'_>) {
    match value {
        Scalar::Signed(v) => segment(out, SIGNED, v as u64),
        Scalar::Unsigned(v) => segment(out, UNSIGNED, v),
        Scalar::Float(v) => segment(out, FLOAT, v.to_bits()),
        Scalar::Float32(v) => segment(out, FLOAT32, u64::from(v.to_bits())),
        Scalar::Str(s) => json::write_str(out, s),
    }
}

/// Every segment is ten bytes: `MARK`, the tag, eight bytes of value.
#[inline(always)]
fn segment(out: &mut Vec<u8>, tag: u8, bits: u64) {
    let mut seg = [MARK, tag, 0, 0, 0, 0, 0, 0, 0, 0];
    seg[2..].copy_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&seg);
}

/// Formats the segments of captured records: [`expand`](Expander::expand). It remembers the
/// text of the last timestamp's seconds, which consecutive records nearly always share.
#[derive(Default)]
pub(crate) struct Expander {
    secs: u64,
    /// `secs` in decimal, `secs_len` bytes (none yet when 0).
    secs_text: [u8; 20],
    secs_len: usize,
}

impl Expander {
    /// Appends `captured` to `out` with every segment formatted: the finished JSON text,
    /// byte for byte what the eager encoder writes.
    ///
    /// # Panics
    /// If `captured` was not written by the capturing encoder (a segment cut short), which
    /// the queue's typing rules out.
    pub(crate) fn expand(&mut self, captured: &[u8], out: &mut Vec<u8>) {
        let mut rest = captured;
        while let Some(at) = json::find_byte(rest, MARK) {
            let (text, seg) = rest.split_at(at);
            out.extend_from_slice(text);
            let (&[_, tag, b0, b1, b2, b3, b4, b5, b6, b7], after) =
                seg.split_first_chunk::<10>().expect("a whole segment");
            let bits = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
            match tag {
                TIMESTAMP => self.timestamp(
                    out,
                    bits >> MICROS_BITS,
                    (bits & ((1 << MICROS_BITS) - 1)) as u32,
                ),
                SIGNED => json::write_int(out, bits as i64),
                UNSIGNED => json::write_int(out, bits),
                FLOAT => json::write_float(out, f64::from_bits(bits)),
                FLOAT32 => json::write_float(out, f32::from_bits(bits as u32)),
                other => unreachable!("unknown capture segment tag {other:#x}"),
            }
            rest = after;
        }
        out.extend_from_slice(rest);
    }

    #[inline]
    fn timestamp(&mut self, out: &mut Vec<u8>, secs: u64, micros: u32) {
        if secs != self.secs || self.secs_len == 0 {
            let mut digits = itoa::Buffer::new();
            let d = digits.format(secs).as_bytes();
            self.secs_text[..d.len()].copy_from_slice(d);
            self.secs_len = d.len();
            self.secs = secs;
        }
        out.extend_from_slice(&self.secs_text[..self.secs_len]);
        json::write_micros(out, micros);
    }
}

/// [`Expander::expand`] with a fresh expander (the writer's slow paths).
pub(crate) fn expand(captured: &[u8], out: &mut Vec<u8>) {
    Expander::default().expand(captured, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encode;
    use proptest::prelude::*;

    fn expanded(write: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut captured = Vec::new();
        write(&mut captured);
        let mut out = Vec::new();
        expand(&captured, &mut out);
        out
    }

    fn eager(write: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn every_scalar_expands_to_its_eager_encoding() {
        for v in [0i64, -1, i64::MIN, i64::MAX, 42] {
            assert_eq!(
                expanded(|o| scalar(o, Scalar::Signed(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [0u64, 1, u64::MAX] {
            assert_eq!(
                expanded(|o| scalar(o, Scalar::Unsigned(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [
            0.0f64,
            -0.0,
            0.25,
            1e300,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            1e21,
        ] {
            assert_eq!(
                expanded(|o| scalar(o, Scalar::Float(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [0.1f32, f32::NAN, f32::MAX, -3.5] {
            assert_eq!(
                expanded(|o| scalar(o, Scalar::Float32(v))),
                eager(|o| v.encode(o))
            );
        }
        for s in [
            "",
            "plain",
            "q\"b\\",
            "\u{1}\n\u{7f}",
            "a\u{2028}b",
            "ünï 🎉",
        ] {
            let captured = expanded(|o| scalar(o, Scalar::Str(s)));
            assert_eq!(captured, eager(|o| s.encode(o)), "{s:?}");
        }
    }

    #[test]
    fn timestamps_expand_to_their_eager_text_and_carry_micros() {
        let cases = [
            (0u64, 0u32),
            (1_700_000_000, 999_999),
            (1_700_000_000, 2_000_001),
            ((1 << SECS_BITS) - 1, 5),
            (1 << SECS_BITS, 5),
            (u64::MAX, 2_000_001),
        ];
        for (secs, micros) in cases {
            assert_eq!(
                expanded(|o| timestamp(o, secs, micros)),
                eager(|o| json::write_timestamp(o, secs, micros)),
                "{secs} {micros}"
            );
        }
        // One expander across records: the cached seconds are replaced when they change.
        let mut ex = Expander::default();
        let mut out = Vec::new();
        for (secs, micros) in [(5, 1), (5, 2), (6, 3), (10_000, 4), (5, 5)] {
            let mut c = Vec::new();
            timestamp(&mut c, secs, micros);
            c.push(b' ');
            ex.expand(&c, &mut out);
        }
        assert_eq!(out, b"5.000001 5.000002 6.000003 10000.000004 5.000005 ");
    }

    #[test]
    fn text_around_segments_is_copied() {
        let mut c = b"{\"a\":".to_vec();
        scalar(&mut c, Scalar::Unsigned(7));
        c.extend_from_slice(b",\"b\":\"\\u0001\",\"c\":");
        scalar(&mut c, Scalar::Signed(-7));
        scalar(&mut c, Scalar::Float(0.5));
        c.extend_from_slice(b"}\n");
        let mut out = b"kept ".to_vec();
        expand(&c, &mut out);
        assert_eq!(
            out,
            b"kept {\"a\":7,\"b\":\"\\u0001\",\"c\":-70.5}\n".to_vec()
        );
    }

    #[derive(Debug, Clone)]
    enum Part {
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Float32(f32),
        Str(String),
        Time(u64, u32),
        Text(String),
    }

    proptest! {
        #[test]
        fn any_mix_of_values_expands_to_the_eager_text(
            parts in proptest::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(Part::Signed),
                    any::<u64>().prop_map(Part::Unsigned),
                    any::<f64>().prop_map(Part::Float),
                    any::<f32>().prop_map(Part::Float32),
                    any::<String>().prop_map(Part::Str),
                    (any::<u64>(), any::<u32>()).prop_map(|(s, m)| Part::Time(s, m)),
                    "[a-z,:{}\\[\\]\"]{0,20}".prop_map(Part::Text),
                ],
                0..12,
            )
        ) {
            let (mut captured, mut want) = (Vec::new(), Vec::new());
            for p in &parts {
                match p {
                    Part::Signed(v) => { scalar(&mut captured, Scalar::Signed(*v)); v.encode(&mut want) }
                    Part::Unsigned(v) => { scalar(&mut captured, Scalar::Unsigned(*v)); v.encode(&mut want) }
                    Part::Float(v) => { scalar(&mut captured, Scalar::Float(*v)); v.encode(&mut want) }
                    Part::Float32(v) => { scalar(&mut captured, Scalar::Float32(*v)); v.encode(&mut want) }
                    Part::Str(v) => { scalar(&mut captured, Scalar::Str(v)); v.encode(&mut want) }
                    Part::Time(s, m) => { timestamp(&mut captured, *s, *m); json::write_timestamp(&mut want, *s, *m) }
                    Part::Text(t) => { captured.extend_from_slice(t.as_bytes()); want.extend_from_slice(t.as_bytes()) }
                }
            }
            let mut out = Vec::new();
            expand(&captured, &mut out);
            prop_assert_eq!(out, want);
        }
    }
}
