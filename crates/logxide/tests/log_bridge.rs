//! The `log` bridge, installed as the process's `log` logger (once: one test).
#![cfg(feature = "log")]

use logxide::sink::MemorySink;
use serde_json::Value;

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

    let mem = MemorySink::new();
    let logger = logxide::Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
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
    let lines = mem.lines();
    let ends: Vec<&str> = lines
        .iter()
        .map(|l| &l[l.find(r#""msg""#).unwrap()..])
        .collect();
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
    use log::Log;

    let mem = MemorySink::new();
    let logger = logxide::Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
    let kvs = [
        ("umax", KvValue::from(u128::MAX)),
        ("imin", KvValue::from(i128::MIN)),
        ("big", KvValue::from(1u128 << 64)),
        ("neg", KvValue::from(-(1i128 << 64))),
        ("small", KvValue::from(7u128)),
        ("smallneg", KvValue::from(-7i128)),
    ];
    bridge.log(
        &log::Record::builder()
            .args(format_args!("wide"))
            .level(log::Level::Info)
            .target("t")
            .key_values(&kvs)
            .build(),
    );
    logger.flush(None).unwrap();
    let lines = mem.lines();
    let line = &lines[0];
    assert_eq!(
        &line[line.find(r#""msg""#).unwrap()..],
        r#""msg":"wide","target":"t","umax":340282366920938463463374607431768211455,"imin":-170141183460469231731687303715884105728,"big":18446744073709551616,"neg":-18446744073709551616,"small":7,"smallneg":-7}"#
    );
}
