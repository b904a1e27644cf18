//! The option enums deserialize as `set` parses their text (any case, surrounding spaces,
//! aliases, the same error message), so that a configuration file takes what `init` takes;
//! they serialize as their canonical name, which reads back.

use logxide::encode::Format;
use logxide::sink::{Durability, IoStrategy, OpenMode};
use logxide::writer::{Mode, Policy};
use logxide::{Level, TaskIdMode};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn de<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|e| e.to_string())
}

/// Every value serializes to its canonical name and reads back; `text` (each case and
/// alias `set` accepts) deserializes to `expected`; a bad value fails with `FromStr`'s
/// message.
fn check<T>(all: &[T], accepted: &[(&str, T)], bad: &str)
where
    T: DeserializeOwned + Serialize + std::str::FromStr + PartialEq + std::fmt::Debug + Copy,
    T::Err: std::fmt::Display,
{
    for &v in all {
        let json = serde_json::to_value(v).unwrap();
        assert_eq!(
            serde_json::from_value::<T>(json.clone()).unwrap(),
            v,
            "{json}"
        );
    }
    for &(text, expected) in accepted {
        assert_eq!(de::<T>(text), Ok(expected), "{text:?}");
    }
    let parse_error = bad.parse::<T>().expect_err("a bad value").to_string();
    assert_eq!(de::<T>(bad).unwrap_err(), parse_error);
}

#[test]
fn option_enums_deserialize_as_their_text_is_parsed() {
    check(
        &Level::ALL,
        &[(" INFO ", Level::Info), ("Warning", Level::Warning)],
        "loud",
    );
    check(
        &[
            Policy::Block,
            Policy::DropOldest,
            Policy::DropNewest,
            Policy::Warn,
        ],
        &[
            ("skip", Policy::DropNewest),
            ("Replace", Policy::DropOldest),
            (" BLOCK", Policy::Block),
        ],
        "wait",
    );
    check(
        &[Mode::Trigger, Mode::Loop, Mode::Manual],
        &[("LOOP", Mode::Loop)],
        "often",
    );
    check(
        &[Format::Compact, Format::Eliot],
        &[("Eliot", Format::Eliot)],
        "json",
    );
    check(
        &[TaskIdMode::Sqid, TaskIdMode::Uuid],
        &[("UUID", TaskIdMode::Uuid)],
        "guid",
    );
    check(
        &[IoStrategy::Line, IoStrategy::Block, IoStrategy::Mmap],
        &[("MMAP", IoStrategy::Mmap)],
        "direct",
    );
    check(
        &[OpenMode::Truncate, OpenMode::Append],
        &[(" a ", OpenMode::Append)],
        "x",
    );
    check(
        &[Durability::None, Durability::Data, Durability::Full],
        &[("Full", Durability::Full)],
        "always",
    );
}

/// A level reads from a configuration file as `set("level", ...)` takes it: by name, by its
/// number as text, and by its number as a JSON number (`"level": 20`); a number that is no
/// level fails with the parser's message.
#[test]
fn a_level_deserializes_from_its_number() {
    assert_eq!(de::<Level>("25"), Ok(Level::Success));
    for level in Level::ALL {
        let number = serde_json::json!(level.value());
        assert_eq!(serde_json::from_value::<Level>(number).unwrap(), level);
    }
    let err = serde_json::from_value::<Level>(serde_json::json!(21)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "21".parse::<Level>().unwrap_err().to_string()
    );
    let err = serde_json::from_value::<Level>(serde_json::json!(-10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "-10".parse::<Level>().unwrap_err().to_string()
    );
    // A fraction is no level number either.
    assert!(serde_json::from_value::<Level>(serde_json::json!(20.5)).is_err());
    // The file's own form: a level inside a configuration struct.
    #[derive(serde::Deserialize)]
    struct Config {
        level: Level,
    }
    let config: Config = serde_json::from_str(r#"{"level": 40}"#).unwrap();
    assert_eq!(config.level, Level::Error);
}

/// A value of the wrong type in a configuration file (a number, a boolean, null, a list, a
/// map) is an error that says what is accepted — the names `set` takes, as the parser's
/// message lists them — not only serde's "expected a string".
#[test]
fn a_value_of_the_wrong_type_is_told_the_accepted_names() {
    fn check<T>()
    where
        T: DeserializeOwned + std::str::FromStr + std::fmt::Debug,
        T::Err: std::fmt::Display,
    {
        // `invalid <what> "": expected one of <names>`.
        let parse_error = "".parse::<T>().expect_err("empty text").to_string();
        let (what, names) = parse_error
            .strip_prefix("invalid ")
            .and_then(|rest| rest.split_once(" \"\": expected one of "))
            .unwrap_or_else(|| panic!("{parse_error}"));
        for (value, shown) in [
            (serde_json::json!(5), "integer `5`"),
            (serde_json::json!(true), "boolean `true`"),
            (serde_json::json!(null), "null"),
            (serde_json::json!(["block"]), "sequence"),
            (serde_json::json!({"a": 1}), "map"),
            (serde_json::json!(1.5), "floating point `1.5`"),
        ] {
            let err = serde_json::from_value::<T>(value).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid type: {shown}, expected text naming the {what}: one of {names}")
            );
        }
    }
    check::<Policy>();
    check::<Mode>();
    check::<Format>();
    check::<TaskIdMode>();
    check::<IoStrategy>();
    check::<OpenMode>();
    check::<Durability>();
}

/// A level of the wrong type (a boolean, null, a list, a fraction) is told the names and
/// numbers accepted as the parser tells them — `warn` included, and the seven numbers, not
/// a range `10 ... 50` that `15` is not in.
#[test]
fn a_level_of_the_wrong_type_is_told_the_names_and_numbers() {
    for (value, shown) in [
        (serde_json::json!(true), "boolean `true`"),
        (serde_json::json!(null), "null"),
        (serde_json::json!([20]), "sequence"),
        (serde_json::json!(20.5), "floating point `20.5`"),
    ] {
        let err = serde_json::from_value::<Level>(value).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid type: {shown}, expected a level: one of debug, info, success, note, warning (or warn), error, critical, or a level's number: 10, 20, 25, 26, 30, 40, 50")
        );
    }
}
