//! Bound and scope fields against call-site fields: exactly one key per line, also past the
//! first 64 fields of a context set.

use logxide::logger::{scope, Fields};
use logxide::Level;

mod common;
use common::logger;

/// How often `key` occurs as a member key of the record `line` (top level).
fn count_key(line: &str, key: &str) -> usize {
    let mut n = 0;
    let needle = format!(",\"{key}\":");
    let mut rest = line;
    while let Some(i) = rest.find(&needle) {
        n += 1;
        rest = &rest[i + needle.len()..];
    }
    n
}

fn many(prefix: &str, n: usize) -> Fields {
    (0..n).fold(Fields::new(), |f, i| f.with(&format!("{prefix}{i}"), i))
}

/// A call-site field overriding the 66th bound field was written twice: the hidden-bit
/// mask tracked only the first 64 fields of a context set.
#[test]
fn a_call_site_field_overrides_a_bound_field_past_the_64th() {
    let (log, mem) = logger();
    let req = log.ctx(many("b", 70));
    req.log(Level::Info, "m", |f| {
        f.field("b65", "call");
        f.field("b3", "call");
    });
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert_eq!(count_key(line, "b65"), 1, "{line}");
    assert_eq!(count_key(line, "b3"), 1, "{line}");
    assert!(line.contains(r#","b65":"call","#), "{line}");
    assert!(line.contains(r#","b69":69}"#), "{line}");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    // 3 header keys + mt + msg + 70 fields.
    assert_eq!(v.as_object().unwrap().len(), 5 + 70, "{line}");
}

/// The same for a scope field past the 64th, and a bound field of the same name: the
/// call site's value, once.
#[test]
fn a_call_site_field_overrides_a_scope_field_past_the_64th_and_a_bound_one() {
    let (log, mem) = logger();
    let req = log.ctx(Fields::new().with("s66", "bound").with("other", 1));
    let _s = scope(many("s", 80));
    req.log(Level::Info, "m", |f| f.field("s66", "call"));
    // And without the call site: the scope's value wins over the bound one, once.
    req.log(Level::Info, "n", |_| {});
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(count_key(&lines[0], "s66"), 1, "{}", lines[0]);
    assert!(lines[0].contains(r#","s66":"call","#), "{}", lines[0]);
    assert_eq!(count_key(&lines[1], "s66"), 1, "{}", lines[1]);
    assert!(lines[1].contains(r#","s66":66,"#), "{}", lines[1]);
    assert!(lines[1].ends_with(r#","other":1}"#), "{}", lines[1]);
}

/// A call-site field whose value is `None` (omitted from the record) did not hide the
/// context field of its key: the call overrides context fields on equal keys, yet the
/// bound / scope value was written. The call's `None` now removes the key from that record
/// — bound, scope, both, past the 64th field, through every macro form — and only from it.
#[test]
fn a_call_site_none_hides_the_context_field_of_its_key() {
    let (log, mem) = logger();
    let req = log.ctx(
        Fields::new()
            .with("user", "ada")
            .with("zone", "eu")
            .with("both", "bound")
            .with("kept", 1),
    );
    let _s = scope(many("s", 70).with("tenant", "a").with("both", "scope"));
    req.log(Level::Info, "fn", |f| {
        f.field("user", &None::<&str>);
        f.field("tenant", &None::<u8>);
        f.field("both", &Some(None::<bool>));
        f.field("s66", &Box::new(None::<i32>));
    });
    let user: Option<&str> = None;
    logxide::info!(logger: req, "macro", user, zone = None::<String>, "s3" = &None::<u8>);
    logxide::log!(logger: req, Level::Note, String::from("dyn"), tenant = None::<u8>);
    logxide::exception!(logger: req, &std::fmt::Error, "exc", zone = None::<u8>);
    drop(logxide::start_action!(logger: req, "act", user = None::<u8>));
    // The next record, without the call's `None`, has the context fields again.
    req.info("after");
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(lines.len(), 7, "{lines:#?}");
    let keys = |line: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    };
    let has = |i: usize, k: &str| keys(&lines[i]).iter().any(|key| key == k);
    for k in ["user", "tenant", "both", "s66"] {
        assert!(!has(0, k), "{k}: {}", lines[0]);
    }
    assert!(
        has(0, "zone") && has(0, "kept") && has(0, "s65"),
        "{}",
        lines[0]
    );
    for k in ["user", "zone", "s3"] {
        assert!(!has(1, k), "{k}: {}", lines[1]);
    }
    assert!(has(1, "tenant") && has(1, "s66"), "{}", lines[1]);
    assert!(!has(2, "tenant") && has(2, "user"), "{}", lines[2]);
    assert!(!has(3, "zone") && has(3, "user"), "{}", lines[3]);
    assert!(!has(4, "user") && has(4, "zone"), "{}", lines[4]);
    // The action's end record is not the call's: it has its context fields.
    assert!(has(5, "user") && has(5, "zone"), "{}", lines[5]);
    assert!(
        lines[6].ends_with(
            r#","s68":68,"s69":69,"tenant":"a","both":"scope","user":"ada","zone":"eu","kept":1}"#
        ),
        "{}",
        lines[6]
    );
}

/// The same through the global logger's macros (its scope fields).
#[test]
fn a_global_macro_none_hides_the_scope_field_of_its_key() {
    let mem = logxide::sink::MemorySink::new();
    let _guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .sink(mem.clone())
        .init()
        .unwrap();
    let _s = scope(Fields::new().with("user", "ada").with("zone", "eu"));
    logxide::info!("literal", user = None::<&str>);
    let msg = String::from("dynamic");
    logxide::warning!(msg, zone = None::<&str>);
    logxide::exception!(
        &std::fmt::Error,
        "exc",
        user = None::<&str>,
        zone = None::<u8>
    );
    logxide::logger::flush(None).unwrap();
    let lines = mem.lines();
    assert!(
        lines[0].ends_with(r#""msg":"literal","zone":"eu"}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(r#""msg":"dynamic","user":"ada"}"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with(r#""reason":"an error occurred when formatting an argument"}"#),
        "{}",
        lines[2]
    );
}
