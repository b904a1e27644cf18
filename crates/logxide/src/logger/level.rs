//! Severity levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The severity of a log message. The numbers order them for filtering.
///
/// ```
/// use logxide::Level;
/// assert!(Level::Warning > Level::Info);
/// assert_eq!(Level::Success.value(), 25);
/// assert_eq!("WARN".parse::<Level>().unwrap(), Level::Warning);
/// assert!("loud".parse::<Level>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Every level, lowest first.
    pub const ALL: [Level; 7] = [
        Level::Debug,
        Level::Info,
        Level::Success,
        Level::Note,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The numeric value (debug 10 … critical 50).
    pub const fn value(self) -> u8 {
        self as u8
    }

    /// The name written as the record's message type (`"info"`, …).
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

/// A level name that is not one of the seven (or `warn`).
///
/// ```
/// let err = "verbose".parse::<logxide::Level>().unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid level "verbose": expected one of debug, info, success, note, warning (or warn), error, critical"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLevelError(String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid level {:?}: expected one of debug, info, success, note, warning (or warn), error, critical",
            self.0
        )
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, ParseLevelError> {
        let name = s.trim().to_ascii_lowercase();
        if name == "warn" {
            return Ok(Level::Warning);
        }
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == name)
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}
