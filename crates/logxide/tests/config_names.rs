//! Option names and level values as the seed system's users write them: `async_en` (the
//! name of `init`'s async switch in the seed plan), levels by number (Python's `logging`
//! numbers are the same for debug, info, warning, error and critical) in `set("level")`
//! and `LOGXIDE_LEVEL`.

use std::sync::Mutex;

use logxide::logger::InitError;
use logxide::sink::MemorySink;
use logxide::{Level, LoggerBuilder};

/// The tests that set `LOGXIDE_LEVEL` take turns (one process runs them all).
static ENV: Mutex<()> = Mutex::new(());

#[test]
fn async_en_is_an_alias_of_async() {
    let log = LoggerBuilder::new()
        .use_env(false)
        .sink(MemorySink::new())
        .set("async_en", "false")
        .unwrap()
        .build()
        .unwrap();
    assert!(!log.is_async());
    let err = LoggerBuilder::new().set("async_en", "maybe").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"logxide option `async_en`: invalid boolean "maybe": expected true/false, yes/no, on/off or 1/0"#
    );
}

#[test]
fn a_level_is_accepted_by_its_number() {
    for level in Level::ALL {
        let number = level.value().to_string();
        assert_eq!(number.parse::<Level>(), Ok(level), "{number}");
        assert_eq!(format!(" {number} ").parse::<Level>(), Ok(level));
        let log = LoggerBuilder::new()
            .use_env(false)
            .sink(MemorySink::new())
            .set("level", &number)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(log.level(), level);
    }
}

#[test]
fn a_number_that_is_no_level_is_an_error_that_lists_the_numbers() {
    for bad in [
        "15",
        "0",
        "-10",
        "20.0",
        "1e1",
        "256",
        "99999999999999999999",
    ] {
        let err = bad.parse::<Level>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid level {bad:?}: expected one of debug, info, success, note, warning (or warn), error, critical, or a level's number: 10, 20, 25, 26, 30, 40, 50"),
        );
        let Err(InitError::Option { option, .. }) = LoggerBuilder::new().set("level", bad) else {
            panic!("{bad} accepted");
        };
        assert_eq!(option, "level");
    }
}

#[test]
fn logxide_level_takes_a_number_too() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("LOGXIDE_LEVEL", "25");
    let built = LoggerBuilder::new().sink(MemorySink::new()).build();
    std::env::set_var("LOGXIDE_LEVEL", "21");
    let refused = LoggerBuilder::new().sink(MemorySink::new()).build();
    std::env::remove_var("LOGXIDE_LEVEL");
    assert_eq!(built.unwrap().level(), Level::Success);
    let err = refused.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"logxide option `LOGXIDE_LEVEL`: invalid level "21": expected one of"#),
        "{err}"
    );
}

/// A value that `set` took but the writer's checks refuse (out of range, or in conflict with
/// another option) is quoted as it was given — not as the writer's parsed form (`0ns` for
/// `"0ms"`) — so that the message points at the text in the configuration.
#[test]
fn a_value_refused_at_check_is_quoted_as_it_was_given() {
    let refused = |options: &[(&str, &str)]| {
        let mut b = LoggerBuilder::new().use_env(false).sink(MemorySink::new());
        for (option, value) in options {
            b = b.set(option, value).unwrap();
        }
        b.check().unwrap_err().to_string()
    };
    assert_eq!(
        refused(&[("flush", "0ms")]),
        r#"logxide option `flush`: invalid value "0ms": must be positive (use size 1 to write every record at once)"#
    );
    assert_eq!(
        refused(&[("async_flush_interval", "0")]),
        r#"logxide option `flush`: invalid value "0": must be positive (use size 1 to write every record at once)"#
    );
    assert_eq!(
        refused(&[("deadline", " 0 s ")]),
        r#"logxide option `deadline`: invalid value " 0 s ": must be positive"#
    );
    assert_eq!(
        refused(&[("queue", " 0")]),
        r#"logxide option `queue`: invalid value " 0": the queue must hold at least one record"#
    );
    assert_eq!(
        refused(&[("queue", "50"), ("size", "200")]),
        r#"logxide option `size`: invalid value "200": must not exceed the queue capacity, or a batch could never fill"#
    );
    assert_eq!(
        refused(&[("writer_mode", "loop"), ("tick", "0us")]),
        r#"logxide option `tick`: invalid value "0us": loop mode needs a positive tick"#
    );
    assert_eq!(
        refused(&[("max_bytes", "0 KiB")]),
        r#"logxide option `max_bytes`: invalid value "0 KiB": the queue must hold at least one byte"#
    );
    assert_eq!(
        refused(&[("policy", "skip"), ("block_timeout", "1s")]),
        r#"logxide option `block_timeout`: invalid value "1s": applies only to the block policy"#
    );
    // A typed setter called after `set` replaces the text: its value is shown as before.
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(MemorySink::new())
        .set("queue", "5")
        .unwrap()
        .queue(0)
        .check()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "logxide option `queue`: invalid value 0: the queue must hold at least one record"
    );
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(MemorySink::new())
        .set("flush", "5s")
        .unwrap()
        .flush_interval(std::time::Duration::ZERO)
        .check()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("logxide option `flush`: invalid value 0ns: must be positive"),
        "{err}"
    );
}
