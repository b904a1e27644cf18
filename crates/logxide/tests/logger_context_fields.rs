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
