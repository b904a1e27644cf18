//! Option names and level values as the seed system's users write them: `async_en` (the
//! name of `init`'s async switch in the seed plan), levels by number (Python's `logging`
//! numbers are the same for debug, info, warning, error and critical) in `set("level")`
//! and `LOGXIDE_LEVEL`.

use std::sync::Mutex;

use logxide::logger::InitError;
use logxide::sink::MemorySink;
use logxide::writer::Mode;
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
    // A `warn` hook with a policy that never calls it, the same way (the policy comes from
    // the options, never from the environment).
    let err = LoggerBuilder::new()
        .use_env(false)
        .sink(MemorySink::new())
        .set("policy", "skip")
        .unwrap()
        .on_drop_warning(|_| {})
        .check()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "logxide option `on_drop_warning`: invalid value a hook (with policy `drop_newest`): \
         applies only to the warn policy"
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

/// `LOGXIDE_WRITER_MODE` / `LOGXPY_WRITER_MODE` and `LOGXIDE_WRITER_TYPE` /
/// `LOGXPY_WRITER_TYPE` (the seed plan's variables) override `writer_mode` and `writer_type`;
/// the `LOGXIDE_` one wins when both are set; `use_env(false)` ignores them.
#[test]
fn writer_mode_and_type_come_from_the_environment() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let vars = [
        "LOGXIDE_WRITER_MODE",
        "LOGXPY_WRITER_MODE",
        "LOGXIDE_WRITER_TYPE",
        "LOGXPY_WRITER_TYPE",
    ];
    let clear = || vars.iter().for_each(|v| std::env::remove_var(v));
    clear();
    let mode = |use_env: bool| {
        let log = LoggerBuilder::new()
            .use_env(use_env)
            .sink(MemorySink::new())
            .build()
            .unwrap();
        log.writer_settings().mode()
    };
    std::env::set_var("LOGXPY_WRITER_MODE", "manual");
    assert_eq!(mode(true), Mode::Manual);
    assert_eq!(mode(false), Mode::Trigger);
    std::env::set_var("LOGXIDE_WRITER_MODE", "loop");
    assert_eq!(mode(true), Mode::Loop);
    std::env::set_var("LOGXIDE_WRITER_MODE", " Manual ");
    assert_eq!(mode(true), Mode::Manual);
    // Blank is unset: the other variable applies.
    std::env::set_var("LOGXIDE_WRITER_MODE", "  ");
    std::env::set_var("LOGXPY_WRITER_MODE", "loop");
    assert_eq!(mode(true), Mode::Loop);
    clear();

    // The type from the environment is checked as the option is: `mmap` with rotation.
    let dir = tempfile::tempdir().unwrap();
    let rotating = || {
        LoggerBuilder::new()
            .target(dir.path().join("app.log"))
            .set("rotate_size", "1MB")
            .unwrap()
    };
    // Named by the variable, as an invalid value there is: the builder's `writer_type` is
    // not what is wrong.
    std::env::set_var("LOGXPY_WRITER_TYPE", "mmap");
    let err = rotating().build().unwrap_err();
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "LOGXPY_WRITER_TYPE"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "logxide option `LOGXPY_WRITER_TYPE`: the `mmap` I/O strategy cannot be used with rotation (rotate_size, rotate_every, ...): use `line` or `block`"
    );
    // Set on the builder, the option is named.
    let err = rotating()
        .use_env(false)
        .set("writer_type", "mmap")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("logxide option `writer_type`: the `mmap` I/O strategy cannot"),
        "{err}"
    );
    assert!(rotating().use_env(false).build().is_ok());
    std::env::set_var("LOGXIDE_WRITER_TYPE", "block");
    assert!(rotating().build().is_ok());
    clear();
}

/// An invalid value is an error naming the variable and what it accepts, before any side
/// effect: with `clean`, the existing file is still there, untouched.
#[test]
fn an_invalid_writer_variable_is_an_error_before_anything_changes() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "kept\n").unwrap();
    let build = || LoggerBuilder::new().target(&path).clean(true).build();
    std::env::set_var("LOGXPY_WRITER_TYPE", "fast");
    let err = build().unwrap_err();
    std::env::remove_var("LOGXPY_WRITER_TYPE");
    assert_eq!(
        err.to_string(),
        r#"logxide option `LOGXPY_WRITER_TYPE`: invalid I/O strategy "fast": expected one of line, block, mmap"#
    );
    std::env::set_var("LOGXIDE_WRITER_MODE", "eager");
    let err = build().unwrap_err();
    std::env::remove_var("LOGXIDE_WRITER_MODE");
    assert_eq!(
        err.to_string(),
        r#"logxide option `LOGXIDE_WRITER_MODE`: invalid writer mode "eager": expected one of trigger, loop, manual"#
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
}

/// A count too large to parse is told the bound the option really has: for `queue` the
/// writer's 2^28 records (as a value between that and `usize::MAX` is told at check), for
/// `size` that and the queue's size — not `usize::MAX`, which the check then refuses.
#[test]
fn a_count_too_large_is_told_the_options_own_bound() {
    let set = |option: &str, value: &str| {
        LoggerBuilder::new()
            .use_env(false)
            .sink(MemorySink::new())
            .set(option, value)
            .and_then(|b| b.check())
            .unwrap_err()
            .to_string()
    };
    let huge = "99999999999999999999999";
    assert_eq!(
        set("queue", huge),
        format!("logxide option `queue`: invalid count {huge:?}: too large, at most 268435456")
    );
    assert_eq!(
        set("async_max_queue", "268435457"),
        r#"logxide option `queue`: invalid value "268435457": at most 268435456 records (use max_bytes to bound memory instead)"#
    );
    assert_eq!(
        set("size", huge),
        format!("logxide option `size`: invalid count {huge:?}: too large, at most the queue size (at most 268435456)")
    );
    // The other counts' bounds are their types'.
    assert_eq!(
        set("max_restarts", huge),
        format!(
            "logxide option `max_restarts`: invalid count {huge:?}: too large, at most 4294967295"
        )
    );
}

/// A count is digits only, as every other number of the options is (levels, sizes, time
/// strings, file modes refuse a sign): `+5` is refused like `-5`, not taken for 5.
#[test]
fn a_count_with_a_sign_is_refused() {
    // Named as given (`set` refuses it, before any alias is resolved).
    for option in ["queue", "async_batch_size", "max_restarts"] {
        for value in ["+5", "-5", " +5 ", "+-5"] {
            let err = LoggerBuilder::new().set(option, value).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "logxide option `{option}`: invalid count {value:?}: expected a whole number"
                ),
            );
        }
    }
    assert_eq!(
        LoggerBuilder::new()
            .set("keep", "+2")
            .unwrap_err()
            .to_string(),
        r#"logxide option `keep`: invalid count "+2": expected a whole number, or all (no limit)"#
    );
    // Surrounding spaces stay accepted.
    assert!(LoggerBuilder::new().set("queue", " 5 ").is_ok());
}

/// `loop` from `LOGXIDE_WRITER_MODE` with a zero `tick` was refused under `tick` alone,
/// although the builder's own mode (trigger) needs no tick: the error says where the mode
/// came from.
#[test]
fn a_tick_refused_for_a_loop_mode_from_the_environment_names_the_variable() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let vars = ["LOGXIDE_WRITER_MODE", "LOGXPY_WRITER_MODE"];
    vars.iter().for_each(|v| std::env::remove_var(v));
    std::env::set_var("LOGXPY_WRITER_MODE", "loop");
    let err = LoggerBuilder::new()
        .sink(MemorySink::new())
        .set("tick", "0")
        .unwrap()
        .build()
        .unwrap_err();
    vars.iter().for_each(|v| std::env::remove_var(v));
    assert!(
        matches!(&err, InitError::Option { option, .. } if option == "tick"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "logxide option `tick`: invalid value \"0\": loop mode needs a positive tick (the loop mode comes from LOGXPY_WRITER_MODE)"
    );
}
