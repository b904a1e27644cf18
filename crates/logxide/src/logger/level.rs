//! Severity levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::encode::record::MessageHead;

/// The severity of a log message. The numbers order them for filtering.
///
/// ```
/// use logxide::Level;
/// assert!(Level::Warning > Level::Info);
/// assert_eq!(Level::Success.value(), 25);
/// assert_eq!("WARN".parse::<Level>().unwrap(), Level::Warning);
/// assert_eq!("25".parse::<Level>().unwrap(), Level::Success); // a level's number
/// assert!("loud".parse::<Level>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Level {
    /// 10: details for developers.
    Debug = 10,
    /// 20: normal operation.
    Info = 20,
    /// 25: something completed well.
    Success = 25,
    /// 26: worth noting.
    Note = 26,
    /// 30: something unexpected, handled.
    Warning = 30,
    /// 40: an operation failed.
    Error = 40,
    /// 50: the program may not go on.
    Critical = 50,
}

impl Level {
    /// Every level, lowest first (ordered as their [`value`](Self::value)s).
    ///
    /// ```
    /// use logxide::Level;
    /// let values: Vec<u8> = Level::ALL.iter().map(|l| l.value()).collect();
    /// assert_eq!(values, [10, 20, 25, 26, 30, 40, 50]);
    /// assert!(Level::ALL.windows(2).all(|w| w[0] < w[1]));
    /// let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
    /// assert_eq!(names, ["debug", "info", "success", "note", "warning", "error", "critical"]);
    /// ```
    pub const ALL: [Level; 7] = [
        Level::Debug,
        Level::Info,
        Level::Success,
        Level::Note,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The numeric value (debug 10 … critical 50), what thresholds compare (see the
    /// example at [`ALL`](Self::ALL)).
    ///
    /// ```
    /// use logxide::Level;
    /// assert_eq!(Level::Debug.value(), 10);
    /// assert_eq!(Level::Note.value(), 26);
    /// assert_eq!(Level::Critical.value(), 50);
    /// ```
    pub const fn value(self) -> u8 {
        self as u8
    }

    /// The head of this level's log messages, spelled at compile time.
    #[inline]
    pub(crate) const fn message_head(self) -> &'static MessageHead {
        macro_rules! head {
            ($name:literal) => {
                &MessageHead {
                    compact: concat!(",\"mt\":\"", $name, "\",\"msg\":"),
                    eliot: concat!(",\"message_type\":\"", $name, "\",\"message\":"),
                }
            };
        }
        match self {
            Level::Debug => head!("debug"),
            Level::Info => head!("info"),
            Level::Success => head!("success"),
            Level::Note => head!("note"),
            Level::Warning => head!("warning"),
            Level::Error => head!("error"),
            Level::Critical => head!("critical"),
        }
    }

    /// The name written as the record's message type (`"info"`, …); also its `Display`, and
    /// what [`FromStr`] parses back.
    ///
    /// ```
    /// use logxide::Level;
    /// assert_eq!(Level::Warning.as_str(), "warning");
    /// assert_eq!(Level::Warning.to_string(), "warning");
    /// for level in Level::ALL {
    ///     assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Success => "success",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is neither one of the seven level names (or `warn`) nor one of their numbers.
///
/// ```
/// let err = "verbose".parse::<logxide::Level>().unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid level "verbose": expected one of debug, info, success, note, warning (or warn), error, critical, or a level's number: 10, 20, 25, 26, 30, 40, 50"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLevelError(String);

/// What a level is given as, for the messages of text that is none and of a value of the
/// wrong type in a configuration file.
const ACCEPTED: &str = "one of debug, info, success, note, warning (or warn), error, critical, or a level's number: 10, 20, 25, 26, 30, 40, 50";

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid level {:?}: expected {ACCEPTED}", self.0)
    }
}

impl std::error::Error for ParseLevelError {}

/// A level's name (any case, surrounding spaces; `warn` for warning) or its number
/// ([`Level::value`]: `20` is info, as in Python's `logging`). A number between two levels
/// (`15`) is an error, not rounded to either.
impl FromStr for Level {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, ParseLevelError> {
        let name = s.trim().to_ascii_lowercase();
        if name == "warn" {
            return Ok(Level::Warning);
        }
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == name || (name.len() == 2 && l.value().to_string() == name))
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Format, RecordEncoder, Timestamp};

    fn record(format: Format, f: impl FnOnce(&mut RecordEncoder<'_>)) -> String {
        let mut out = Vec::new();
        let mut enc = RecordEncoder::begin(&mut out, format, Timestamp::default(), "t", &[1, 12]);
        f(&mut enc);
        enc.finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn message_heads_are_what_the_encoder_writes() {
        for level in Level::ALL {
            for format in [Format::Compact, Format::Eliot] {
                assert_eq!(
                    record(format, |e| e.message(level.as_str(), "m \"q\"")),
                    record(format, |e| e.message_with_head(
                        level.message_head(),
                        "m \"q\"",
                        false
                    )),
                    "{level} {format}"
                );
                assert_eq!(
                    record(format, |e| e.message(level.as_str(), "plain")),
                    record(format, |e| e.message_with_head(
                        level.message_head(),
                        "plain",
                        true
                    )),
                );
            }
        }
        assert_eq!(
            record(Format::Compact, |e| e.message_with_head(
                Level::Info.message_head(),
                "m",
                true
            )),
            "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1,12],\"mt\":\"info\",\"msg\":\"m\"}\n"
        );
    }

    /// A format like bincode or postcard: not human-readable, not self-describing (no
    /// `deserialize_any`); an enum is given by its variant, here `T` (an index, as those
    /// formats write one, or a name, as MessagePack and CBOR do).
    struct Compact<T>(T);

    impl<'de, T> Deserializer<'de> for Compact<T>
    where
        T: serde::de::IntoDeserializer<'de, serde::de::value::Error>,
        T::Deserializer: serde::de::EnumAccess<'de, Error = serde::de::value::Error>,
    {
        type Error = serde::de::value::Error;
        fn deserialize_any<W: serde::de::Visitor<'de>>(
            self,
            _: W,
        ) -> Result<W::Value, Self::Error> {
            Err(serde::de::Error::custom("deserialize_any is not supported"))
        }
        fn deserialize_enum<W: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            visitor: W,
        ) -> Result<W::Value, Self::Error> {
            visitor.visit_enum(self.0.into_deserializer())
        }
        fn is_human_readable(&self) -> bool {
            false
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            struct identifier ignored_any
        }
    }

    /// `Level`'s `Deserialize` asked for `deserialize_any`, which bincode and postcard do not
    /// have: a level they had written (its variant's index) could not be read back. A
    /// format that is not human-readable now reads a level as an enum: by the variant's
    /// index, as `Serialize` writes it there, or by its name or number where the format gives
    /// those.
    #[test]
    fn a_level_is_read_as_an_enum_from_a_format_that_is_not_human_readable() {
        let read = |index: u32| Level::deserialize(Compact(index));
        let indices: Vec<Level> = (0..7).map(|i| read(i).unwrap()).collect();
        assert_eq!(indices, Level::ALL);
        assert_eq!(read(25), Ok(Level::Success));
        assert_eq!(
            read(7).unwrap_err().to_string(),
            format!("invalid level \"7\": expected {ACCEPTED}, or a variant's index, 0 to 6")
        );
        assert_eq!(Level::deserialize(Compact(" WARN ")), Ok(Level::Warning));
        assert_eq!(Level::deserialize(Compact("critical")), Ok(Level::Critical));
        assert_eq!(Level::deserialize(Compact("40")), Ok(Level::Error));
        assert_eq!(
            Level::deserialize(Compact("loud")).unwrap_err().to_string(),
            format!("invalid level \"loud\": expected {ACCEPTED}")
        );
    }
}

deserialize_by_from_str!(@try_from Level);

/// In a human-readable format (JSON, TOML, YAML…), as [`FromStr`] parses text — a name in
/// any case, `warn`, or a level's number as text — and from a number too (`"level": 20` in a
/// configuration file); anything else fails with [`ParseLevelError`]'s message.
///
/// In a format that is not human-readable (bincode, postcard, MessagePack, CBOR…), as an
/// enum, the way [`Serialize`] writes it there: by its variant's index (`0` debug … `6`
/// critical: the order of [`Level::ALL`]), as bincode and postcard write it, or by its
/// name, as MessagePack and CBOR do; a level's number or text as above is taken too where
/// the format can tell it. (Such a format cannot tell a name from a number on its own:
/// without `deserialize_any` a level is read only as an enum.)
///
/// ```
/// use logxide::Level;
/// assert_eq!(serde_json::from_str::<Level>(r#"" Warning ""#).unwrap(), Level::Warning);
/// assert_eq!(serde_json::from_str::<Level>("25").unwrap(), Level::Success);
/// assert!(serde_json::from_str::<Level>("21").is_err());
/// ```
impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Visitor)
        } else {
            deserializer.deserialize_enum("Level", &NAMES, Visitor)
        }
    }
}

/// The variants' names, in the order of their indices.
const NAMES: [&str; 7] = {
    let mut names = [""; 7];
    let mut i = 0;
    while i < 7 {
        names[i] = Level::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Reads a level from text, a number, or an enum's variant.
struct Visitor;

impl<'de> serde::de::Visitor<'de> for Visitor {
    type Value = Level;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a level: {ACCEPTED}")
    }
    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Level, E> {
        text.parse().map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Level, E> {
        self.visit_str(&n.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Level, E> {
        self.visit_str(&n.to_string())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Level, A::Error> {
        let (Variant(level), unit) = data.variant()?;
        serde::de::VariantAccess::unit_variant(unit)?;
        Ok(level)
    }
}

/// An enum's variant: its index (0 to 6, which no level's number is), or a level's name or
/// number.
struct Variant(Level);

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Id;
        impl serde::de::Visitor<'_> for Id {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a level: {ACCEPTED}, or a variant's index, 0 to 6")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Level, E> {
                Visitor.visit_str(text)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Level, E> {
                match usize::try_from(n).ok().and_then(|i| Level::ALL.get(i)) {
                    Some(&level) => Ok(level),
                    None => n.to_string().parse().map_err(|e: ParseLevelError| {
                        E::custom(format_args!("{e}, or a variant's index, 0 to 6"))
                    }),
                }
            }
        }
        deserializer.deserialize_identifier(Id).map(Variant)
    }
}
