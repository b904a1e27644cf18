//! The `log` bridge, installed as the process's `log` logger (once: one test).
#![cfg(feature = "log")]

use logxide::sink::MemorySink;
use serde_json::Value;

/// Each line of `mem` from its `"msg"` key on (what the bridge decides: the message, its own
/// fields, the key-values, the context's).
fn from_msg_on(mem: &MemorySink) -> Vec<String> {
    mem.lines()
        .iter()
        .map(|l| l[l.find(r#""msg""#).unwrap()..].to_owned())
        .collect()
}

/// A bridge into a logger of its own (not the process's `log` logger), with its logger and
/// the memory sink it writes.
fn own_bridge() -> (
    logxide::integrations::log::LogBridge,
    logxide::Logger,
    MemorySink,
) {
    let mem = MemorySink::new();
    let logger = logxide::Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
    (bridge, logger, mem)
}

/// Logs one record of target `t` with `kvs` through `bridge`.
fn record(
    bridge: &logxide::integrations::log::LogBridge,
    level: log::Level,
    args: std::fmt::Arguments<'_>,
    kvs: &[(&str, log::kv::Value<'_>)],
) {
    use log::Log;
    bridge.log(
        &log::Record::builder()
            .args(args)
            .level(level)
            .target("t")
            .key_values(&kvs)
            .build(),
    );
}

#[test]
fn log_records_land_in_logxide_with_their_metadata_and_key_values() {
    let mem = MemorySink::new();
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .set("level", "info")
        .unwrap()
        .sink(mem.clone())
        .init()
        .unwrap();
    logxide::integrations::log::install().unwrap();
    assert!(logxide::integrations::log::install().is_err(), "only once");
    // `log`'s maximum level follows the global logger's threshold.
    assert_eq!(log::max_level(), log::LevelFilter::Info);
    guard.logger().set_level(logxide::Level::Error);
    assert_eq!(log::max_level(), log::LevelFilter::Error);
    guard.logger().set_level(logxide::Level::Info);
    assert_eq!(log::max_level(), log::LevelFilter::Info);

    log::trace!("below the threshold");
    log::debug!("below the threshold too");
    log::info!(target: "pool", "connected to {} in {}ms", "db1", 12);
    log::warn!(user_id = 42, ratio = 0.5, ok = true, name = "ada", neg = -3; "plain message");
    log::error!("failed: {:?}", "quote\"d\nline");
    {
        let _a = logxide::start_action!("job");
        log::info!("inside an action");
    }
    logxide::logger::flush(None).unwrap();
    let recs: Vec<serde_json::Map<String, Value>> = mem
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let msgs: Vec<&str> = recs
        .iter()
        .filter_map(|r| r.get("msg").and_then(Value::as_str))
        .collect();
    assert_eq!(
        msgs,
        [
            "connected to db1 in 12ms",
            "plain message",
            "failed: \"quote\\\"d\\nline\"",
            "inside an action"
        ]
    );
    assert_eq!(recs[0]["mt"], "info");
    assert_eq!(recs[0]["target"], "pool");
    assert_eq!(recs[0]["file"], "crates/logxide/tests/log_bridge.rs");
    assert!(recs[0]["line"].is_u64());
    assert_eq!(recs[0]["module"], "log_bridge");
    assert_eq!(recs[1]["mt"], "warning");
    assert_eq!(recs[1]["user_id"], 42);
    assert_eq!(recs[1]["ratio"], 0.5);
    assert_eq!(recs[1]["ok"], true);
    assert_eq!(recs[1]["name"], "ada");
    assert_eq!(recs[1]["neg"], -3);
    assert_eq!(recs[2]["mt"], "error");
    // Inside an action, a `log` record takes the next position of its task.
    assert_eq!(recs[4]["lvl"], serde_json::json!([2]));
    assert_eq!(recs[4]["tid"], recs[3]["tid"]);
    drop(guard);
    logxide::logger::shutdown(None);
}

/// A key-value named like one of the bridge's own fields (`target`, `module`, `file`,
/// `line`) wins: the bridge leaves its own field of that name out, so no line has a key
/// twice. (Through a bridge into a logger of its own, not the process's `log` logger.)
#[test]
fn key_values_named_like_the_bridges_fields_win_over_them() {
    use log::kv::Value as KvValue;
    use log::Log;

    let (bridge, logger, mem) = own_bridge();
    let kvs = [
        ("target", KvValue::from("kv-target")),
        ("line", KvValue::from(7u64)),
        ("extra", KvValue::from(true)),
    ];
    let all = [
        ("module", KvValue::from("kv-module")),
        ("file", KvValue::from("kv-file")),
        ("line", KvValue::from(8u64)),
        ("target", KvValue::from("kv-target")),
    ];
    let record = |kvs: &[(&str, KvValue<'_>)], msg: &str| {
        bridge.log(
            &log::Record::builder()
                .args(format_args!("{msg}"))
                .level(log::Level::Info)
                .target("pool")
                .module_path(Some("app::pool"))
                .file(Some("src/pool.rs"))
                .line(Some(3))
                .key_values(&kvs)
                .build(),
        );
    };
    record(&kvs, "some");
    record(&all, "all");
    record(&[], "none");
    logger.flush(None).unwrap();
    let ends = from_msg_on(&mem);
    assert_eq!(
        ends,
        [
            r#""msg":"some","module":"app::pool","file":"src/pool.rs","target":"kv-target","line":7,"extra":true}"#,
            r#""msg":"all","module":"kv-module","file":"kv-file","line":8,"target":"kv-target"}"#,
            r#""msg":"none","target":"pool","module":"app::pool","file":"src/pool.rs","line":3}"#,
        ]
    );
}

/// 128-bit integer key-values beyond 64 bits were written as strings (their `Display`),
/// while the tracing layer writes them as numbers: they are JSON integers now, on both.
#[test]
fn wide_integer_key_values_are_json_numbers() {
    use log::kv::Value as KvValue;

    let (bridge, logger, mem) = own_bridge();
    let kvs = [
        ("umax", KvValue::from(u128::MAX)),
        ("imin", KvValue::from(i128::MIN)),
        ("big", KvValue::from(1u128 << 64)),
        ("neg", KvValue::from(-(1i128 << 64))),
        ("small", KvValue::from(7u128)),
        ("smallneg", KvValue::from(-7i128)),
    ];
    record(&bridge, log::Level::Info, format_args!("wide"), &kvs);
    logger.flush(None).unwrap();
    let lines = mem.lines();
    let line = &lines[0];
    assert_eq!(
        &line[line.find(r#""msg""#).unwrap()..],
        r#""msg":"wide","target":"t","umax":340282366920938463463374607431768211455,"imin":-170141183460469231731687303715884105728,"big":18446744073709551616,"neg":-18446744073709551616,"small":7,"smallneg":-7}"#
    );
}

/// An error key-value is written with its `source()` chain, as the tracing layer writes an
/// error field (it was its `Display` alone).
#[test]
fn error_key_values_carry_their_source_chain() {
    use log::kv::Value as KvValue;

    let (bridge, logger, mem) = own_bridge();
    #[derive(Debug)]
    struct QueryFailed(std::io::Error);
    impl std::fmt::Display for QueryFailed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("query failed")
        }
    }
    impl std::error::Error for QueryFailed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let err = QueryFailed(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such table",
    ));
    let kvs = [("error", KvValue::from_dyn_error(&err))];
    record(&bridge, log::Level::Error, format_args!("failed"), &kvs);
    logger.flush(None).unwrap();
    let lines = mem.lines();
    let line = &lines[0];
    assert_eq!(
        &line[line.find(r#""msg""#).unwrap()..],
        r#""msg":"failed","target":"t","error":"query failed: no such table"}"#
    );
}

/// A `Display` and `Debug` that write a part and then fail (return `fmt::Error` on their
/// own).
struct Failing;

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("part \"")?;
        Err(std::fmt::Error)
    }
}

impl std::fmt::Debug for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dbg")?;
        Err(std::fmt::Error)
    }
}

/// A `Display` that logs through the bridge while it is being formatted (a record whose
/// message is a [`Failing`]), then writes a part and fails.
struct LogsThenFails<'a>(&'a logxide::integrations::log::LogBridge);

impl std::fmt::Display for LogsThenFails<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use log::Log;
        self.0.log(
            &log::Record::builder()
                .args(format_args!("inner {}", Failing))
                .level(log::Level::Info)
                .target("t")
                .build(),
        );
        f.write_str("outer")?;
        Err(std::fmt::Error)
    }
}

/// A message or key-value whose `Display` / `Debug` fails is what it wrote so far, as a `%x`
/// field is, on every path: the message formatted into the reused buffer, key-values given
/// as `Display` or `Debug`, and the message of a record logged while another's message is
/// being formatted (formatted with `to_string`, which panics when the `Display` fails: the
/// log call panicked).
#[test]
fn a_failing_display_in_a_message_or_key_value_is_what_it_wrote() {
    use log::kv::Value as KvValue;
    use log::Log;

    let (bridge, logger, mem) = own_bridge();
    let kvs = [
        ("d", KvValue::from_display(&Failing)),
        ("g", KvValue::from_debug(&Failing)),
    ];
    bridge.log(
        &log::Record::builder()
            .args(format_args!("m {}", Failing))
            .level(log::Level::Info)
            .target("t")
            .key_values(&kvs)
            .build(),
    );
    bridge.log(
        &log::Record::builder()
            .args(format_args!("x {}", LogsThenFails(&bridge)))
            .level(log::Level::Info)
            .target("t")
            .build(),
    );
    logger.flush(None).unwrap();
    let ends = from_msg_on(&mem);
    assert_eq!(
        ends,
        [
            r#""msg":"m part \"","target":"t","d":"part \"","g":"dbg"}"#,
            r#""msg":"inner part \"","target":"t"}"#,
            r#""msg":"x outer","target":"t"}"#,
        ]
    );
}

/// A key-value that is `None` (`log` captures an `Option` as its value or as null) was
/// written as the string `"None"`; it is left out now, as a logxide `Option` field that is
/// `None` is, and `Some(v)` is `v` with its JSON type. Every other kind keeps its type too.
#[test]
fn none_key_values_are_left_out_and_every_kind_keeps_its_type() {
    use log::kv::{ToValue, Value as KvValue};

    let (bridge, logger, mem) = own_bridge();
    let none: Option<u32> = None;
    let some: Option<u32> = Some(5);
    let kvs = [
        ("none", none.to_value()),
        ("null", KvValue::null()),
        ("some", some.to_value()),
        ("c", 'x'.to_value()),
        ("f", 1.0f64.to_value()),
        ("neg", (-1i8).to_value()),
        ("u", 255u8.to_value()),
        ("s", "a \"q\"".to_value()),
        ("d", KvValue::from_debug(&[1, 2])),
    ];
    record(&bridge, log::Level::Info, format_args!("kinds"), &kvs);
    // A `None` named like one of the bridge's own fields leaves that field in.
    record(
        &bridge,
        log::Level::Info,
        format_args!("own"),
        &[("target", none.to_value())],
    );
    logger.flush(None).unwrap();
    let ends = from_msg_on(&mem);
    assert_eq!(
        ends,
        [
            r#""msg":"kinds","target":"t","some":5,"c":"x","f":1.0,"neg":-1,"u":255,"s":"a \"q\"","d":"[1, 2]"}"#,
            r#""msg":"own","target":"t"}"#,
        ]
    );
}

/// A key-value that is `None` did not hide the logger's or the scope's field of its key (a
/// key-value overrides them, as a call-site field does): the context's value was written.
/// It is hidden now. Metadata the record lacks (no module path, file or line) is not a
/// `None` of the caller's: a context field of that name stays.
#[test]
fn a_none_key_value_hides_the_context_field_of_its_key() {
    use log::kv::{ToValue, Value as KvValue};
    use logxide::logger::{scope, Fields};

    let (_, logger, mem) = own_bridge();
    let bound = logger.ctx(
        Fields::new()
            .with("user", "ada")
            .with("module", "ctx")
            .with("line", 0),
    );
    let bridge = logxide::integrations::log::LogBridge::new(bound);
    let _s = scope(Fields::new().with("zone", "eu").with("file", "ctx.rs"));
    let none: Option<u32> = None;
    record(
        &bridge,
        log::Level::Info,
        format_args!("kv"),
        &[("user", none.to_value()), ("zone", KvValue::null())],
    );
    use log::Log;
    bridge.log(
        &log::Record::builder()
            .args(format_args!("meta"))
            .level(log::Level::Info)
            .target("t")
            .module_path(Some("m"))
            .line(Some(7))
            .build(),
    );
    logger.flush(None).unwrap();
    let ends = from_msg_on(&mem);
    assert_eq!(
        ends,
        [
            r#""msg":"kv","target":"t","file":"ctx.rs","module":"ctx","line":0}"#,
            r#""msg":"meta","target":"t","module":"m","line":7,"zone":"eu","file":"ctx.rs","user":"ada"}"#,
        ]
    );
}

/// Key-values' keys, spelled once per name for the program (see `encode::key::interned`),
/// are written as every other key is: masked by name in any case, escaped, renamed when
/// reserved, whether the key is a literal or made at run time, on every record.
#[test]
fn key_value_keys_are_masked_escaped_and_renamed_on_every_record() {
    use log::kv::Value as KvValue;

    let (bridge, logger, mem) = own_bridge();
    let made = String::from("Api_Key"); // not a literal: another address every time
    for _ in 0..2 {
        let kvs = [
            ("PassWord", KvValue::from("hunter2")),
            (made.as_str(), KvValue::from("k-123")),
            ("a\"b", KvValue::from(1u64)),
            ("msg", KvValue::from("kv")),
            ("user", KvValue::from("ada")),
        ];
        record(&bridge, log::Level::Info, format_args!("m"), &kvs);
    }
    logger.flush(None).unwrap();
    let line = r#""msg":"m","target":"t","PassWord":"***","Api_Key":"***","a\"b":1,"_msg":"kv","user":"ada"}"#;
    assert_eq!(from_msg_on(&mem), [line, line]);
}

/// A message whose `Display` panics while the bridge formats it (before the logger is
/// called) left the record neither written nor counted, though a panicking key-value (whose
/// `Display` runs while the logger encodes) was counted dropped, reason panicked: both are.
#[test]
fn a_message_whose_display_panics_is_counted_as_dropped() {
    struct Panics;
    impl std::fmt::Display for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Display of Panics")
        }
    }
    let (bridge, logger, mem) = own_bridge();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        record(&bridge, log::Level::Info, format_args!("{}", Panics), &[])
    }));
    assert!(caught.is_err());
    record(&bridge, log::Level::Info, format_args!("next {}", 1), &[]);
    logger.flush(None).unwrap();
    assert_eq!(from_msg_on(&mem), [r#""msg":"next 1","target":"t"}"#]);
    let m = logger.metrics();
    assert_eq!(
        (m.enqueued, m.written, m.dropped, m.dropped_by.panicked),
        (2, 1, 1, 1)
    );
}
