//! The benchmark's records: one JSON line of exactly `line_bytes` bytes per record, holding
//! the producer id and its sequence number, so the output file can be verified.
//!
//! A [`LineGen`] keeps one line in a reused buffer and rewrites only the sequence digits in
//! place ([`LineGen::advance`] is a decimal increment: no formatting, no allocation). The
//! sequence number is right-aligned in a fixed-width field, padded with spaces, which JSON
//! allows between a `:` and a value:
//!
//! ```text
//! {"p":3,"s":    42,"pad":"xxxxxxxxxxxx"}\n      (when the line has room for a pad field)
//! {"p":3,"s":    42   }\n                        (short lines: spaces before the brace)
//! ```

const PREFIX: &[u8] = br#"{"p":"#;
const SEQ_KEY: &[u8] = br#","s":"#;
const PAD_KEY: &[u8] = br#","pad":""#;
const PAD_END: &[u8] = b"\"}\n";
const BRACE_END: &[u8] = b"}\n";

/// Decimal digits of `n` (1 for 0).
pub fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The shortest line that holds producer id `producer` and a sequence field `seq_width`
/// digits wide.
pub fn min_line_bytes(producer: u64, seq_width: usize) -> usize {
    PREFIX.len() + digits(producer) + SEQ_KEY.len() + seq_width + BRACE_END.len()
}

/// One producer's line, rewritten in place for each sequence number.
#[derive(Clone, Debug)]
pub struct LineGen {
    buf: Vec<u8>,
    /// Offset of the sequence field.
    seq_at: usize,
    seq_width: usize,
    seq: u64,
}

impl LineGen {
    /// The line of `producer` for sequence 0, exactly `line_bytes` long (with its `\n`).
    ///
    /// # Errors
    /// When the line cannot hold the producer id and a `seq_width`-digit sequence field.
    pub fn new(line_bytes: usize, producer: u64, seq_width: usize) -> Result<Self, String> {
        let need = min_line_bytes(producer, seq_width);
        if line_bytes < need {
            return Err(format!(
                "a line of {line_bytes} bytes cannot hold producer {producer} and a \
                 {seq_width}-digit sequence number: at least {need} bytes are needed"
            ));
        }
        let mut buf = Vec::with_capacity(line_bytes);
        buf.extend_from_slice(PREFIX);
        buf.extend_from_slice(producer.to_string().as_bytes());
        buf.extend_from_slice(SEQ_KEY);
        let seq_at = buf.len();
        buf.resize(seq_at + seq_width - 1, b' ');
        buf.push(b'0');
        let rest = line_bytes - buf.len();
        if rest >= PAD_KEY.len() + PAD_END.len() {
            buf.extend_from_slice(PAD_KEY);
            buf.resize(line_bytes - PAD_END.len(), b'x');
            buf.extend_from_slice(PAD_END);
        } else {
            buf.resize(line_bytes - BRACE_END.len(), b' ');
            buf.extend_from_slice(BRACE_END);
        }
        debug_assert_eq!(buf.len(), line_bytes);
        Ok(LineGen {
            buf,
            seq_at,
            seq_width,
            seq: 0,
        })
    }

    /// The current line, `\n` included.
    #[inline]
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// The current sequence number.
    #[cfg(test)]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Moves to the next sequence number by incrementing the digits in place. Past the
    /// field's width the digits wrap to zeros (the caller sizes the field for its count).
    #[inline]
    pub fn advance(&mut self) {
        self.seq += 1;
        let field = &mut self.buf[self.seq_at..self.seq_at + self.seq_width];
        for c in field.iter_mut().rev() {
            match *c {
                b'9' => *c = b'0',
                b' ' => {
                    *c = b'1';
                    return;
                }
                d => {
                    *c = d + 1;
                    return;
                }
            }
        }
    }

    /// Back to sequence 0.
    pub fn reset(&mut self) {
        self.seq = 0;
        let field = &mut self.buf[self.seq_at..self.seq_at + self.seq_width];
        field.fill(b' ');
        field[self.seq_width - 1] = b'0';
    }
}

/// A parsed benchmark line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Producer id.
    pub producer: u64,
    /// Sequence number.
    pub seq: u64,
}

/// Parses a line made by [`LineGen`] (`\n` included); `None` if it is not one.
pub fn parse(line: &[u8]) -> Option<Parsed> {
    let rest = line.strip_prefix(PREFIX)?;
    let (producer, rest) = number(rest)?;
    let rest = rest.strip_prefix(SEQ_KEY)?;
    let spaces = rest.iter().take_while(|&&c| c == b' ').count();
    let (seq, rest) = number(&rest[spaces..])?;
    let ok = if let Some(pad) = rest.strip_prefix(PAD_KEY) {
        pad.strip_suffix(PAD_END)
            .is_some_and(|x| x.iter().all(|&c| c == b'x'))
    } else {
        rest.strip_suffix(BRACE_END)
            .is_some_and(|s| s.iter().all(|&c| c == b' '))
    };
    ok.then_some(Parsed { producer, seq })
}

fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = s[..n]
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    Some((v, &s[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_exact_length_parse_back_and_are_json() {
        for (bytes, producer, width) in [(100, 3, 6), (20, 0, 6), (21, 12, 3), (30, 1, 1)] {
            let mut g = LineGen::new(bytes, producer, width).unwrap();
            let limit = 10u64.pow(width as u32).min(20_000);
            for s in 0..limit {
                assert_eq!(g.seq(), s);
                let line = g.line();
                assert_eq!(line.len(), bytes);
                assert_eq!(line.last(), Some(&b'\n'));
                assert_eq!(parse(line), Some(Parsed { producer, seq: s }), "{line:?}");
                if s % 997 == 0 || s + 1 == limit {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    assert_eq!(v["p"], producer);
                    assert_eq!(v["s"], s);
                }
                g.advance();
            }
            g.reset();
            assert_eq!(parse(g.line()), Some(Parsed { producer, seq: 0 }));
        }
    }

    #[test]
    fn too_short_and_garbage() {
        assert_eq!(min_line_bytes(0, 6), 19);
        assert!(LineGen::new(18, 0, 6).is_err());
        assert!(LineGen::new(19, 0, 6).is_ok());
        assert_eq!(
            parse(b"{\"p\":1,\"s\":2}\n"),
            Some(Parsed {
                producer: 1,
                seq: 2
            })
        );
        assert_eq!(parse(b"{\"p\":1,\"s\":2}"), None);
        assert_eq!(parse(b"{\"p\":1,\"s\":}\n"), None);
        assert_eq!(parse(b"{\"p\":1,\"s\":2,\"pad\":\"xy\"}\n"), None);
        assert_eq!(parse(b"\0\0\0"), None);
    }

    #[test]
    fn digits_counts() {
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(999_999), 6);
        assert_eq!(digits(u64::MAX), 20);
    }
}
