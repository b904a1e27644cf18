//! The macros' forms: every form compiles and writes what the docs say.

use std::cell::Cell;
use std::fmt;

use logxide::encode::serde as ser;
use logxide::sink::MemorySink;
use logxide::{Level, Logger};

mod common;
use common::logger;

/// The line after its `lvl` member (from `mt` or `at` on).
fn tail(line: &str) -> &str {
    let i = line.find("],").expect("a lvl") + 2;
    &line[i..]
}

fn tails(log: &Logger, mem: &MemorySink) -> Vec<String> {
    log.flush(None).unwrap();
    mem.lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
            tail(l).to_string()
        })
        .collect()
}

#[test]
fn messages_literal_string_and_braces() {
    let (log, mem) = logger();
    let owned = String::from("from a String {0}");
    logxide::info!(logger: log, "braces {} {x} are text");
    logxide::info!(logger: log, owned);
    logxide::info!(logger: log, &owned, n = 1);
    logxide::warning!(logger: log, "quote \" and \\ and\nnewline", a = 1,);
    logxide::error!(logger: log, format!("built {}", 2),);
    let level = Level::Note;
    logxide::log!(logger: log, level, "runtime level", k = "v",);
    logxide::log!(logger: log, level, owned.clone());
    logxide::checkpoint!(logger: log, "lit {}", n = 3,);
    logxide::checkpoint!(logger: log, owned);
    assert_eq!(
        tails(&log, &mem),
        [
            r#""mt":"info","msg":"braces {} {x} are text"}"#,
            r#""mt":"info","msg":"from a String {0}"}"#,
            r#""mt":"info","msg":"from a String {0}","n":1}"#,
            r#""mt":"warning","msg":"quote \" and \\ and\nnewline","a":1}"#,
            r#""mt":"error","msg":"built 2"}"#,
            r#""mt":"note","msg":"runtime level","k":"v"}"#,
            r#""mt":"note","msg":"from a String {0}"}"#,
            r#""mt":"info","msg":"📍 lit {}","n":3}"#,
            r#""mt":"info","msg":"📍 from a String {0}"}"#,
        ]
    );
}

struct Shown;
impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shown")
    }
}

#[test]
fn field_forms() {
    let (log, mem) = logger();
    let user = "ada";
    let r#type = 7u8;
    let v = serde_json::json!({"a": [1, {"password": "p"}]});
    logxide::info!(
        logger: log,
        "m",
        user,
        r#type,
        r#loop = 1,
        "http.status" = 200,
        "x y" = %Shown,
        "dbg" = ?Some(1),
        d = %Shown,
        g = ?"q",
        s = ser(&v),
        "token" = "t",
        none = None::<u8>,
        msg = "renamed",
    );
    assert_eq!(
        tails(&log, &mem),
        [concat!(
            r#""mt":"info","msg":"m","user":"ada","type":7,"loop":1,"http.status":200,"#,
            r#""x y":"shown","dbg":"Some(1)","d":"shown","g":"\"q\"","#,
            r#""s":{"a":[1,{"password":"***"}]},"token":"***","_msg":"renamed"}"#
        )]
    );
}

/// Fields, the message and the level are evaluated once when enabled, not at all when not.
#[test]
fn side_effects_once_and_not_when_disabled() {
    let (log, mem) = logger();
    log.set_level(Level::Critical);
    let n = Cell::new(0);
    let bump = || {
        n.set(n.get() + 1);
        n.get()
    };
    let msg = || {
        n.set(n.get() + 100);
        "msg".to_string()
    };
    logxide::info!(logger: log, "off", a = bump(), b = %bump(), c = ?bump());
    logxide::info!(logger: log, msg(), a = bump());
    logxide::checkpoint!(logger: log, msg(), a = bump());
    logxide::log!(logger: log, Level::Debug, msg(), a = bump());
    logxide::exception!(logger: log, &std::io::Error::other("x"), msg(), a = bump());
    assert_eq!(n.get(), 0);
    log.set_level(Level::Warning);
    logxide::warning!(logger: log, "on", a = bump(), b = %bump(), c = ?bump());
    assert_eq!(n.get(), 3);
    logxide::warning!(logger: log, msg(), a = bump());
    assert_eq!(n.get(), 104);
    let levels = Cell::new(0);
    let level = || {
        levels.set(levels.get() + 1);
        Level::Error
    };
    logxide::log!(logger: log, level(), "lv");
    logxide::log!(logger: log, level(), msg());
    assert_eq!(levels.get(), 2);
    assert_eq!(
        tails(&log, &mem),
        [
            r#""mt":"warning","msg":"on","a":1,"b":"2","c":"3"}"#,
            r#""mt":"warning","msg":"msg","a":104}"#,
            r#""mt":"error","msg":"lv"}"#,
            r#""mt":"error","msg":"msg"}"#,
        ]
    );
}

#[derive(Debug)]
struct Outer(std::io::Error);
impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outer failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn exception_with_a_source_chain() {
    let (log, mem) = logger();
    let err = Outer(std::io::Error::other("inner cause"));
    let msg = String::from("msg {}");
    logxide::exception!(logger: log, &err, msg, k = 1,);
    logxide::exception!(logger: log, &err, "lit");
    let boxed: Box<dyn std::error::Error> = Box::new(Outer(std::io::Error::other("c")));
    logxide::exception!(logger: log, &*boxed, "dyn", password = "p");
    let t = tails(&log, &mem);
    assert_eq!(t.len(), 3);
    assert!(
        t[0].starts_with(r#""mt":"error","msg":"msg {}","exc":""#),
        "{}",
        t[0]
    );
    assert!(t[0].contains("Outer"), "{}", t[0]);
    assert!(
        t[0].ends_with(r#"","reason":"outer failed: inner cause","k":1}"#),
        "{}",
        t[0]
    );
    assert!(
        t[1].ends_with(r#","reason":"outer failed: inner cause"}"#),
        "{}",
        t[1]
    );
    assert!(
        t[2].ends_with(r#","reason":"outer failed: c","password":"***"}"#),
        "{}",
        t[2]
    );
}

#[test]
fn action_forms() {
    let (log, mem) = logger();
    let kind = String::from("db:query");
    {
        let _a = logxide::start_action!(logger: log, kind.clone(), sql = "S", token = "t",);
        let _b = logxide::start_action!(logger: log, "lit");
    }
    let t = tails(&log, &mem);
    assert_eq!(
        t[0],
        r#""at":"db:query","st":"started","sql":"S","token":"***"}"#
    );
    assert_eq!(t[1], r#""at":"lit","st":"started"}"#);
    assert!(
        t[2].starts_with(r#""at":"lit","st":"succeeded","dur":"#),
        "{}",
        t[2]
    );
    assert!(
        t[3].starts_with(r#""at":"db:query","st":"succeeded","dur":"#),
        "{}",
        t[3]
    );
}

/// Values behind `&mut`, `Rc` and `Arc` are fields, as they are `Encode` values (before: the
/// macros refused them — no `FieldValue` impl).
#[test]
fn shared_and_mutable_references_are_fields() {
    let (log, mem) = logger();
    let name: std::sync::Arc<str> = "ada".into();
    let team = std::rc::Rc::new(String::from("core"));
    let mut n = 3u32;
    let count = &mut n;
    let token = std::sync::Arc::new("t");
    logxide::info!(logger: log, "m", name, team = team.clone(), count, token);
    assert_eq!(
        tails(&log, &mem),
        [r#""mt":"info","msg":"m","name":"ada","team":"core","count":3,"token":"***"}"#]
    );
}

/// `exception!` evaluated its message before its error, though the docs say the error, the
/// message and the fields are evaluated in the order written (error first); now they are,
/// with the global logger too, and the error may still borrow a temporary of the call.
#[test]
fn exception_evaluates_error_message_and_fields_in_the_order_written() {
    let (log, mem) = logger();
    let order = std::cell::RefCell::new(Vec::new());
    let note = |what: &'static str| order.borrow_mut().push(what);
    let err = std::io::Error::other("x");
    let error = || {
        note("error");
        &err
    };
    let msg = || {
        note("msg");
        String::from("m")
    };
    let field = || {
        note("field");
        1
    };
    logxide::exception!(logger: log, error(), msg(), a = field());
    // No global logger: discarded, its fields not evaluated.
    logxide::exception!(error(), msg(), a = field());
    // A temporary of the call lives as long as the record is written.
    logxide::exception!(logger: log, &*Box::new(std::fmt::Error), "t");
    logxide::exception!(logger: log, std::io::Error::other("y").get_ref().unwrap(), "r");
    assert_eq!(*order.borrow(), ["error", "msg", "field", "error", "msg"]);
    let t = tails(&log, &mem);
    assert_eq!(t.len(), 3);
    assert!(t[0].ends_with(r#""reason":"x","a":1}"#), "{}", t[0]);
}
