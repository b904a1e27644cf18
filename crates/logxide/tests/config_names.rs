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
