//! Masking on every path: the configured secret field names (the default list, and a custom
//! list; compared without regard to ASCII case) never reach any output in clear.
//!
//! One scenario logs a distinctive secret through every way a field can enter a record —
//! the macros with every field form, `Logger::log`, synchronous writes and `sync_mode`,
//! action start and end records, `ctx` children and scopes (with the call site over scope
//! over logger rule for equal keys), `exception!`, nested serde values, the `log` bridge and
//! the `tracing` layer — and runs against a logger writing a file, a memory sink and a
//! console sink at once, in both formats, async and sync, with the default and a custom mask.
//! The secret must appear in none of the three outputs, and the placeholder `"***"` must
//! stand where each secret field was.
#![cfg(all(feature = "log", feature = "tracing"))]

mod common;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use common::Members;
use logxide::encode::{bytes, debug, display, serde as ser, Encode, Format};
use logxide::integrations::log::LogBridge;
use logxide::integrations::tracing::LogxideLayer;
use logxide::logger::{scope, sync_mode, Fields, Mask};
use logxide::sink::{Console, MemorySink};
use logxide::{Level, Logger};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

const SECRET: &str = "hunter2-SECRET";

/// The custom mask of the tests, and the spellings its scenario uses.
fn custom_mask() -> Mask {
    Mask::new(["pin", "X-Api-Key", "credential", "error"])
}
const CUSTOM_KEYS: [&str; 3] = ["PIN", "x-api-key", "Credential"];
const DEFAULT_KEYS: [&str; 3] = ["Password", "API_KEY", "authorization"];

/// An error whose text is harmless (its `reason` is written as is).
#[derive(Debug)]
struct Oops;
impl fmt::Display for Oops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oops")
    }
}
impl std::error::Error for Oops {}

/// An error that carries the secret in its text: only ever a value of a masked field.
#[derive(Debug)]
struct SecretError;
impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad credentials {SECRET}")
    }
}
impl std::error::Error for SecretError {}

/// A hand-written JSON value (a user's `Encode` impl), written as is.
struct RawJson(String);
impl Encode for RawJson {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

/// `key` as the contents of a JSON string with its first character written as `\u00XX`.
fn escaped_first(key: &str) -> String {
    let first = key.chars().next().unwrap();
    format!("\\u{:04x}{}", first as u32, &key[first.len_utf8()..])
}

/// A console's output, shared with the test.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the test expects: the record `id` (a message's text, or `type:status` for an action
/// record) has `"***"` at each path; `once` paths (top-level keys) appear exactly once.
#[derive(Default)]
struct Plan {
    expects: Vec<(String, Vec<Vec<String>>)>,
    once: Vec<(String, String)>,
}

impl Plan {
    fn expect(&mut self, id: &str, paths: &[&[&str]]) {
        let paths = paths
            .iter()
            .map(|p| p.iter().map(|s| s.to_string()).collect())
            .collect();
        self.expects.push((id.to_owned(), paths));
    }

    /// `key` (top level) is masked and written exactly once in record `id`.
    fn once(&mut self, id: &str, key: &str) {
        self.expect(id, &[&[key]]);
        self.once.push((id.to_owned(), key.to_owned()));
    }
}

/// A logger writing a file, a memory sink and a console at once.
struct Rig {
    log: Logger,
    mem: MemorySink,
    console: Shared,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn rig(format: Format, async_writes: bool, mask: Mask) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mem = MemorySink::new();
    let console = Shared::default();
    let log = Logger::builder()
        .use_env(false)
        .target(&path)
        .format(format)
        .async_writes(async_writes)
        .mask(mask)
        .sink(mem.clone())
        .sink(Console::new(console.clone(), false).gather_bytes(0))
        .build()
        .unwrap();
    assert_eq!(log.is_async(), async_writes);
    Rig {
        log,
        mem,
        console,
        path,
        _dir: dir,
    }
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fails if the secret is anywhere in `bytes`, showing where.
fn assert_no_secret(what: &str, bytes: &[u8]) {
    if let Some(at) = find_bytes(bytes, SECRET.as_bytes()) {
        let from = at.saturating_sub(200);
        let to = (at + 100).min(bytes.len());
        panic!(
            "the secret leaked into the {what}: …{}…",
            String::from_utf8_lossy(&bytes[from..to])
        );
    }
}

/// Every key at any depth that the mask names holds `"***"`.
fn assert_masked_everywhere(mask: &Mask, v: &Value, line: &str) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if mask.is_masked(k) {
                    assert_eq!(v, "***", "key {k:?} not masked in {line}");
                } else {
                    assert_masked_everywhere(mask, v, line);
                }
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|v| assert_masked_everywhere(mask, v, line)),
        _ => {}
    }
}

fn at_path<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, step| match v {
        Value::Object(m) => m.get(step),
        Value::Array(a) => a.get(step.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The record's id: its message, or `type:status` for an action record.
fn record_id(rec: &serde_json::Map<String, Value>, format: Format) -> String {
    let keys = format.header_keys();
    match (rec.get(keys.msg), rec.get(keys.at), rec.get(keys.st)) {
        (Some(Value::String(m)), _, _) => m.clone(),
        (_, Some(Value::String(a)), Some(Value::String(s))) => format!("{a}:{s}"),
        _ => panic!("record without message or action: {rec:?}"),
    }
}

/// Drains the logger and checks the file, the memory sink and the console against `plan`.
fn check(rig: Rig, format: Format, mask: &Mask, plan: &Plan) {
    rig.log.shutdown(None).expect("first shutdown");
    let file = std::fs::read(&rig.path).unwrap();
    let mem = rig.mem.contents();
    let console = rig.console.0.lock().unwrap().clone();
    assert_no_secret("file", &file);
    assert_no_secret("memory sink", &mem);
    assert_no_secret("console", &console);
    assert_eq!(
        file, mem,
        "the file and the memory sink got different bytes"
    );
    let console = String::from_utf8(console).unwrap();

    let text = std::str::from_utf8(&mem).unwrap();
    let mut by_id: HashMap<String, (String, serde_json::Map<String, Value>)> = HashMap::new();
    for line in text.lines() {
        let rec: serde_json::Map<String, Value> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_masked_everywhere(mask, &Value::Object(rec.clone()), line);
        let id = record_id(&rec, format);
        assert!(
            by_id.insert(id.clone(), (line.to_owned(), rec)).is_none(),
            "two records with id {id}"
        );
    }
    let mut placeholders = 0;
    for (id, paths) in &plan.expects {
        let (line, rec) = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no record {id:?} in\n{text}"));
        let rec = Value::Object(rec.clone());
        // The console line of the record: its message's last word, or the action's type
        // and status, as words of the line.
        let (word, status) = match id.rsplit_once(':') {
            Some((at, st)) if !id.starts_with("m-") => (at, Some(st)),
            _ => (id.rsplit(' ').next().unwrap(), None),
        };
        let con = console
            .lines()
            .find(|l| {
                // (A failure's message is followed by `:`.)
                let words: Vec<&str> = l.split(' ').map(|w| w.trim_end_matches(':')).collect();
                words.contains(&word) && status.map_or(true, |s| words.contains(&s))
            })
            .unwrap_or_else(|| panic!("no console line for {id:?} in\n{console}"));
        for path in paths {
            assert_eq!(
                at_path(&rec, path),
                Some(&Value::from("***")),
                "{id}: no placeholder at {path:?} in {line}"
            );
            placeholders += 1;
            let shown = match path.as_slice() {
                // The console shows a failure's reason after the message.
                [key] if key == "reason" => ": ***".to_owned(),
                [key] => format!(" {key}=***"),
                [.., last] => format!("\"{last}\":\"***\""),
                [] => unreachable!(),
            };
            assert!(con.contains(&shown), "{id}: console lacks {shown:?}: {con}");
        }
    }
    for (id, key) in &plan.once {
        let line = &by_id[id].0;
        let Members(members) = serde_json::from_str(line).unwrap();
        let n = members.iter().filter(|(k, _)| k == key).count();
        assert_eq!(n, 1, "{id}: key {key:?} written {n} times: {line}");
    }
    assert!(text.matches("\"***\"").count() >= placeholders);
}

/// Every path that takes runtime keys: `keys` are three spellings of masked names.
fn common_paths(log: &Logger, keys: [&str; 3], plan: &mut Plan) {
    let [k0, k1, k2] = keys;

    // Every field value kind, through `Logger::log`.
    log.log(Level::Info, "m-kinds", |f| {
        f.field(k0, SECRET);
        f.field(k1, &SECRET.to_owned());
        f.field(k2, &display(SECRET));
        f.field("user", "ada");
    });
    plan.expect("m-kinds", &[&[k0], &[k1], &[k2]]);
    log.log(Level::Warning, "m-kinds2", |f| {
        f.field(k0, &debug(SECRET));
        f.field(k1, &Some(SECRET));
        f.field(k2, &Box::new(SECRET.to_owned()));
    });
    plan.expect("m-kinds2", &[&[k0], &[k1], &[k2]]);
    log.log(Level::Error, "m-kinds3", |f| {
        f.field(k0, &Cow::Borrowed(SECRET));
        f.field(k1, &bytes(SECRET.as_bytes()));
        f.field(k2, &ser(SECRET));
    });
    plan.expect("m-kinds3", &[&[k0], &[k1], &[k2]]);
    log.log(Level::Note, "m-kinds4", |f| {
        f.field(k0, &ser(json!({ "nested": SECRET })));
        f.field(k1, &display(format_args!("{SECRET}!")));
        f.field(k2, &&&SECRET);
    });
    plan.expect("m-kinds4", &[&[k0], &[k1], &[k2]]);

    // Synchronous writes on this thread.
    {
        let _sync = sync_mode();
        log.log(Level::Critical, "m-sync", |f| f.field(k1, SECRET));
        plan.expect("m-sync", &[&[k1]]);
        let _a = log.start_action("act-sync", |f| f.field(k2, SECRET));
        plan.expect("act-sync:started", &[&[k2]]);
    }

    // Actions: fields of the start, records inside, nested, remote and detached actions.
    {
        let main = log.start_action("act-main", |f| {
            f.field(k0, SECRET);
            f.field("user", "ada");
        });
        plan.expect("act-main:started", &[&[k0]]);
        log.log(Level::Info, "m-in-action", |f| f.field(k1, SECRET));
        plan.expect("m-in-action", &[&[k1]]);
        {
            let _inner = log.start_action("act-inner", |f| f.field(k2, &display(SECRET)));
            plan.expect("act-inner:started", &[&[k2]]);
        }
        let ctx = main.context();
        let (log2, k) = (log.clone(), k1.to_owned());
        std::thread::spawn(move || {
            let _remote = log2.continue_action(&ctx, "act-remote", |f| f.field(&k, SECRET));
            log2.log(Level::Info, "m-remote", |f| f.field(&k, &debug(SECRET)));
        })
        .join()
        .unwrap();
        plan.expect("act-remote:started", &[&[k1]]);
        plan.expect("m-remote", &[&[k1]]);
        main.fail(&Oops);
    }
    let job = log
        .start_action("act-detached", |f| f.field(k2, SECRET))
        .detach();
    plan.expect("act-detached:started", &[&[k2]]);
    let (log2, k) = (log.clone(), k0.to_owned());
    std::thread::spawn(move || {
        let _job = job.enter();
        log2.log(Level::Info, "m-detached", |f| f.field(&k, SECRET));
    })
    .join()
    .unwrap();
    plan.expect("m-detached", &[&[k0]]);
    let fut = log
        .start_action("act-future", |f| f.field(k1, SECRET))
        .detach()
        .instrument(async {
            log.log(Level::Info, "m-future", |f| f.field(k2, SECRET));
        });
    block_on(fut);
    plan.expect("act-future:started", &[&[k1]]);
    plan.expect("m-future", &[&[k2]]);

    // `ctx` children: bound fields on messages and on action records, nested children.
    let child = log.ctx(Fields::new().with(k0, SECRET).with("user", "ada"));
    child.info("m-ctx");
    plan.expect("m-ctx", &[&[k0]]);
    let grand = child.ctx(Fields::new().with(k1, SECRET));
    grand.log(Level::Info, "m-ctx2", |f| f.field(k2, SECRET));
    plan.expect("m-ctx2", &[&[k0], &[k1], &[k2]]);
    {
        let _a = grand.start_action("act-ctx", |_| {});
    }
    plan.expect("act-ctx:started", &[&[k0], &[k1]]);
    plan.expect("act-ctx:succeeded", &[&[k0], &[k1]]);
    grand.exception("m-ctx-exc", &Oops);
    plan.expect("m-ctx-exc", &[&[k0], &[k1]]);

    // Scopes, nested, with an action inside.
    {
        let _s = scope(Fields::new().with(k2, SECRET));
        log.info("m-scope");
        plan.expect("m-scope", &[&[k2]]);
        let _t = scope(Fields::new().with(k0, display(SECRET)));
        log.info("m-scope2");
        plan.expect("m-scope2", &[&[k2], &[k0]]);
        let _a = log.start_action("act-scope", |_| {});
        plan.expect("act-scope:started", &[&[k2], &[k0]]);
    }

    // Equal keys: call site over scope over logger — one key, masked, whichever wins.
    let bound = log.ctx(Fields::new().with(k0, format!("{SECRET}-bound")));
    {
        let _s = scope(Fields::new().with(k0, format!("{SECRET}-scope")));
        bound.log(Level::Info, "m-dup-call", |f| {
            f.field(k0, &format!("{SECRET}-call"))
        });
        plan.once("m-dup-call", k0);
        bound.info("m-dup-scope");
        plan.once("m-dup-scope", k0);
    }
    bound.info("m-dup-bound");
    plan.once("m-dup-bound", k0);
    // Spellings that differ in case are different keys: each is written, each masked.
    let upper = k0.to_ascii_uppercase();
    let lower = k0.to_ascii_lowercase();
    let mixed: String = k0
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let cased = log.ctx(Fields::new().with(&upper, SECRET));
    {
        let _s = scope(Fields::new().with(&lower, SECRET));
        cased.log(Level::Info, "m-dup-case", |f| f.field(&mixed, SECRET));
    }
    let mut spellings = vec![mixed.as_str(), lower.as_str(), upper.as_str()];
    spellings.dedup();
    for s in &spellings {
        plan.once("m-dup-case", s);
    }
    // Past the 64 context fields whose keys are tracked the scope's copy is written too:
    // both masked.
    {
        let mut many = Fields::new();
        for i in 0..70 {
            many.insert(&format!("f{i}"), &i);
        }
        many.insert(k1, &format!("{SECRET}-scope"));
        let _s = scope(many);
        log.log(Level::Info, "m-many", |f| f.field(k1, SECRET));
        plan.expect("m-many", &[&[k1]]);
    }

    // The error-logging form.
    log.log_error("m-exc", &Oops, |f| {
        f.field(k0, SECRET);
        f.field(k1, &display(&SecretError));
    });
    plan.expect("m-exc", &[&[k0], &[k1]]);

    // Nested serde values: a masked key at any depth hides its whole value.
    let payload = json!({
        "user": { k0: SECRET, "name": "ada" },
        "list": [{ k1: SECRET }, { "ok": 1 }],
        k2: { "deep": [SECRET, { "x": SECRET }] },
        "n": 1,
    });
    log.log(Level::Info, "m-serde", |f| {
        f.field("payload", &ser(&payload))
    });
    plan.expect(
        "m-serde",
        &[
            &["payload", "user", k0],
            &["payload", "list", "0", k1],
            &["payload", k2],
        ],
    );
    let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    map.insert(k0.to_owned(), vec![SECRET]);
    map.insert("other".to_owned(), vec!["fine"]);
    let mut by_number: HashMap<u32, BTreeMap<&str, &str>> = HashMap::new();
    by_number.insert(7, BTreeMap::from([(k1, SECRET)]));
    log.log(Level::Info, "m-serde-maps", |f| {
        f.field("map", &ser(&map));
        f.field("by_number", &ser(&by_number));
        f.field(k2, &ser(&payload));
    });
    plan.expect(
        "m-serde-maps",
        &[&["map", k0], &["by_number", "7", k1], &[k2]],
    );
    // Nested values bound to a logger, to a scope, and a hand-written one whose key is
    // escaped (`\u0070assword` is `password`).
    let blob = format!(
        r#"{{"{}":"{SECRET}","ok":[1,{{"{}":2}}]}}"#,
        escaped_first(k1),
        k2
    );
    let nested = log.ctx(
        Fields::new()
            .with("cfg", ser(json!({ k0: SECRET, "list": [SECRET.len()] })))
            .with("blob", RawJson(blob)),
    );
    {
        let _s = scope(Fields::new().with("sc", ser(json!([{ k2: SECRET }]))));
        nested.info("m-serde-ctx");
    }
    plan.expect(
        "m-serde-ctx",
        &[
            &["cfg", k0],
            &["blob", k1],
            &["blob", "ok", "1", k2],
            &["sc", "0", k2],
        ],
    );

    // The `log` bridge: key-values of every value kind.
    {
        use log::kv::Value as KvValue;
        use log::Log;
        let bridge = LogBridge::new(log.clone());
        let strs = [(k0, SECRET), (k1, SECRET)];
        bridge.log(
            &log::Record::builder()
                .args(format_args!("m-log"))
                .level(log::Level::Warn)
                .target("app")
                .key_values(&strs)
                .build(),
        );
        plan.expect("m-log", &[&[k0], &[k1]]);
        let err = SecretError;
        let others = [
            (k0, KvValue::from_display(&SECRET)),
            (k1, KvValue::from_debug(&SECRET)),
            (k2, KvValue::from_dyn_display(&err)),
        ];
        bridge.log(
            &log::Record::builder()
                .args(format_args!("m-log{}", 2))
                .level(log::Level::Error)
                .key_values(&others)
                .build(),
        );
        plan.expect("m-log2", &[&[k0], &[k1], &[k2]]);
        let number = [(k2, 42u64)];
        bridge.log(
            &log::Record::builder()
                .args(format_args!("m-log3"))
                .level(log::Level::Info)
                .key_values(&number)
                .build(),
        );
        plan.expect("m-log3", &[&[k2]]);
    }
}

/// Polls a future to completion on this thread.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The macros and the `tracing` layer with the default mask's names (field names are
/// literals there).
#[allow(non_snake_case)]
fn default_mask_literal_paths(log: &Logger, plan: &mut Plan) {
    let Password = SECRET;
    logxide::info!(logger: log, "m-macro", Password, API_KEY = %SECRET,
        "authorization" = ?SECRET, user = "ada");
    plan.expect(
        "m-macro",
        &[&["Password"], &["API_KEY"], &["authorization"]],
    );
    logxide::warning!(logger: log, "m-macro2", token = Some(SECRET),
        secret = String::from(SECRET), "Set_Cookie" = ser(&[SECRET]));
    plan.expect("m-macro2", &[&["token"], &["secret"], &["Set_Cookie"]]);
    logxide::log!(logger: log, Level::Note, "m-macro3", PASSWD = Cow::Borrowed(SECRET),
        pwd = bytes(SECRET.as_bytes()), "Access_Token" = %SecretError);
    plan.expect("m-macro3", &[&["PASSWD"], &["pwd"], &["Access_Token"]]);
    logxide::checkpoint!(logger: log, "m-check", client_secret = SECRET);
    plan.expect("📍 m-check", &[&["client_secret"]]);
    logxide::debug!(logger: log, "m-macro4", auth_token = SECRET);
    logxide::success!(logger: log, "m-macro5", APIKEY = SECRET);
    logxide::critical!(logger: log, "m-macro6", Session_Id = SECRET);
    logxide::error!(logger: log, "m-macro7", refresh_token = ?SECRET);
    plan.expect("m-macro4", &[&["auth_token"]]);
    plan.expect("m-macro5", &[&["APIKEY"]]);
    plan.expect("m-macro6", &[&["Session_Id"]]);
    plan.expect("m-macro7", &[&["refresh_token"]]);
    logxide::exception!(logger: log, &Oops, "m-macro-exc", private_key = SECRET,
        Cookie = %SECRET);
    plan.expect("m-macro-exc", &[&["private_key"], &["Cookie"]]);
    {
        let _a = logxide::start_action!(logger: log, "act-macro", refresh_token = SECRET,
            Cookie = ?SECRET);
        plan.expect("act-macro:started", &[&["refresh_token"], &["Cookie"]]);
    }
    // A serde struct with secret field names, as users write them.
    #[derive(serde::Serialize)]
    struct Creds {
        api_key: String,
        #[serde(rename = "Authorization")]
        auth: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Login {
        user: &'static str,
        password: &'static str,
        creds: Creds,
        tokens: Vec<BTreeMap<&'static str, &'static str>>,
    }
    let login = Login {
        user: "ada",
        password: SECRET,
        creds: Creds {
            api_key: SECRET.to_owned(),
            auth: SECRET,
        },
        tokens: vec![BTreeMap::from([("refresh_token", SECRET), ("kind", "r")])],
    };
    logxide::info!(logger: log, "m-macro-serde", login = ser(&login));
    plan.expect(
        "m-macro-serde",
        &[
            &["login", "password"],
            &["login", "creds", "api_key"],
            &["login", "creds", "Authorization"],
            &["login", "tokens", "0", "refresh_token"],
        ],
    );

    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(Password = SECRET, user = "ada", "t-event");
        plan.expect("t-event", &[&["Password"]]);
        tracing::warn!(API_KEY = %SECRET, authorization = ?SECRET, "t-event2");
        plan.expect("t-event2", &[&["API_KEY"], &["authorization"]]);
        let err = SecretError;
        tracing::error!(
            token = &err as &(dyn std::error::Error + 'static),
            "t-event3"
        );
        plan.expect("t-event3", &[&["token"]]);
        tracing::info!("Secret" = SECRET, n = 1u64, "t-event4");
        plan.expect("t-event4", &[&["Secret"]]);
        // Dotted names: the last segment names the field.
        tracing::info!(user.password = SECRET, http.authorization = %SECRET, "t-dotted");
        plan.expect("t-dotted", &[&["user.password"], &["http.authorization"]]);

        let span = tracing::info_span!(
            "t-span",
            Password = SECRET,
            user = "ada",
            token = tracing::field::Empty,
            API_KEY = tracing::field::Empty
        );
        span.record("token", SECRET); // before the start: on the started record
        {
            let _e = span.enter();
            span.record("API_KEY", SECRET); // after it: on the end record
            tracing::info!(authorization = SECRET, "t-in-span");
        }
        drop(span);
        plan.expect("t-span:started", &[&["Password"], &["token"]]);
        plan.expect("t-span:succeeded", &[&["API_KEY"]]);
        plan.expect("t-in-span", &[&["authorization"]]);
        let never_entered = tracing::info_span!("t-span2", api_key = %SECRET);
        tracing::info!(parent: &never_entered, pwd = SECRET, "t-explicit");
        drop(never_entered);
        plan.expect("t-span2:started", &[&["api_key"]]);
        plan.expect("t-explicit", &[&["pwd"]]);
    });
}

/// The macros and the `tracing` layer with the custom mask's names.
fn custom_mask_literal_paths(log: &Logger, plan: &mut Plan) {
    logxide::info!(logger: log, "m-macro", "PIN" = SECRET, "x-api-key" = %SECRET,
        Credential = ?SECRET, password = "not-a-secret-here");
    plan.expect("m-macro", &[&["PIN"], &["x-api-key"], &["Credential"]]);
    logxide::exception!(logger: log, &Oops, "m-macro-exc", pin = SECRET);
    plan.expect("m-macro-exc", &[&["pin"]]);
    {
        let _a = logxide::start_action!(logger: log, "act-macro", CREDENTIAL = SECRET);
        plan.expect("act-macro:started", &[&["CREDENTIAL"]]);
    }
    logxide::info!(logger: log, "m-macro-serde",
        data = ser(json!({ "X-API-KEY": SECRET, "inner": { "Pin": [SECRET] } })));
    plan.expect(
        "m-macro-serde",
        &[&["data", "X-API-KEY"], &["data", "inner", "Pin"]],
    );

    let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(PIN = SECRET, "x-api-key" = %SECRET, "t-event");
        plan.expect("t-event", &[&["PIN"], &["x-api-key"]]);
        tracing::info!(account.pin = SECRET, "t-dotted");
        plan.expect("t-dotted", &[&["account.pin"]]);
        let span = tracing::info_span!("t-span", credential = SECRET);
        {
            let _e = span.enter();
            tracing::info!(Pin = ?SECRET, "t-in-span");
        }
        drop(span);
        plan.expect("t-span:started", &[&["credential"]]);
        plan.expect("t-in-span", &[&["Pin"]]);
        // `error` is a masked name here: the failed span's reason (its `error` field) is
        // hidden too.
        let failing = tracing::info_span!("t-fail", error = tracing::field::Empty);
        failing.in_scope(|| {
            failing.record("error", SECRET);
        });
        drop(failing);
        plan.expect("t-fail:failed", &[&["reason"]]);
    });
}

fn run(format: Format, async_writes: bool, custom: bool) {
    let mask = if custom {
        custom_mask()
    } else {
        Mask::default()
    };
    let rig = rig(format, async_writes, mask.clone());
    let mut plan = Plan::default();
    if custom {
        common_paths(&rig.log, CUSTOM_KEYS, &mut plan);
        custom_mask_literal_paths(&rig.log, &mut plan);
    } else {
        common_paths(&rig.log, DEFAULT_KEYS, &mut plan);
        default_mask_literal_paths(&rig.log, &mut plan);
    }
    check(rig, format, &mask, &plan);
}

#[test]
fn default_mask_compact_async() {
    run(Format::Compact, true, false);
}

#[test]
fn default_mask_eliot_sync() {
    run(Format::Eliot, false, false);
}

#[test]
fn custom_mask_compact_sync() {
    run(Format::Compact, false, true);
}

#[test]
fn custom_mask_eliot_async() {
    run(Format::Eliot, true, true);
}

#[test]
fn a_custom_mask_replaces_the_default_list() {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .mask(custom_mask())
        .sink(mem.clone())
        .build()
        .unwrap();
    logxide::info!(logger: log, "m", password = "visible", pin = SECRET);
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert!(
        line.ends_with(r#""password":"visible","pin":"***"}"#),
        "{line}"
    );
    // No mask at all: everything is written as given, nested values included.
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .mask(Mask::none())
        .sink(mem.clone())
        .build()
        .unwrap();
    logxide::info!(logger: log, "m", password = "p", v = ser(json!({"token": "t"})));
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert!(
        line.ends_with(r#""password":"p","v":{"token":"t"}}"#),
        "{line}"
    );
}

#[test]
fn nested_masking_keeps_the_rest_of_the_value_exact() {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let value = json!({
        "a": [1, 2.5, -0.0, null, true, "s\"t\\r\n\u{2028}"],
        "password": { "deep": [SECRET] },
        "b": { "token": null, "pass\"word": "kept", "c": [] },
        "": {},
        "Token": 0,
    });
    logxide::info!(logger: log, "m", v = ser(&value));
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    let rec: Value = serde_json::from_str(line).unwrap();
    let mut want = value.clone();
    want["password"] = json!("***");
    want["b"]["token"] = json!("***");
    want["Token"] = json!("***");
    assert_eq!(rec["v"], want, "{line}");
    assert!(!line.contains(SECRET));
}

#[test]
fn the_global_logger_and_its_bridges_mask() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("global.log");
    let guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .panic_hook(false)
        .mask(custom_mask())
        .target(&path)
        .init()
        .unwrap();
    logxide::info!("g-macro", PIN = SECRET, "x-api-key" = %SECRET);
    logxide::exception!(&Oops, "g-exc", credential = SECRET);
    {
        let _a = logxide::start_action!("g-act", pin = ?SECRET);
        logxide::info!("g-inside", data = ser(json!({"pin": SECRET})));
    }
    {
        use log::Log;
        let kvs = [("Credential", SECRET)];
        LogBridge::global().log(
            &log::Record::builder()
                .args(format_args!("g-log"))
                .level(log::Level::Info)
                .key_values(&kvs)
                .build(),
        );
    }
    let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("g-span", pin = SECRET);
        let _e = span.enter();
        tracing::info!("X-API-KEY" = SECRET, "g-event");
    });
    drop(guard);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_no_secret("global logger's file", text.as_bytes());
    assert_eq!(text.lines().count(), 9, "{text}");
    let mask = custom_mask();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_masked_everywhere(&mask, &v, line);
    }
    assert_eq!(text.matches("\"***\"").count(), 8, "{text}");
}

#[test]
fn a_loggers_debug_output_masks_its_bound_fields() {
    let log = Logger::builder()
        .use_env(false)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    let child = log.ctx(Fields::new().with("password", SECRET).with("user", "ada"));
    let text = format!("{child:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("ada"), "{text}");
}

/// A name with letters outside ASCII (`contraseña`, `пароль`) is matched without regard to
/// their case too: `CONTRASEÑA`, `Пароль` are masked on every path (the macros' keys, keys
/// given at run time, dotted keys, bound fields, nested members), as `PASSWORD` is.
#[test]
fn names_outside_ascii_are_matched_in_any_case() {
    let mask = Mask::new(["Contraseña", "пароль"]);
    assert_eq!(mask.names(), ["contraseña", "пароль"]);
    for key in [
        "contraseña",
        "CONTRASEÑA",
        "Contraseña",
        "ПАРОЛЬ",
        "Пароль",
        "user.ПАРОЛЬ",
    ] {
        assert!(mask.is_masked(key), "{key}");
    }
    assert!(!mask.is_masked("contrasena"));
    assert!(!mask.is_masked("ПАРОЛЬ.hint"));
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .mask(mask)
        .sink(mem.clone())
        .build()
        .unwrap();
    let bound = log.ctx(Fields::new().with("ПАРОЛЬ", SECRET));
    let key = String::from("CONTRASEÑA");
    bound.log(Level::Info, "m", |f| {
        f.field("Contraseña", SECRET);
        f.field(key.as_str(), SECRET);
        f.field("form.ПАРОЛЬ", SECRET);
        f.field(
            "form",
            &ser(json!({"items": [{"CONTRASEÑA": SECRET, "n": 1}]})),
        );
    });
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert!(
        line.ends_with(r#""msg":"m","Contraseña":"***","CONTRASEÑA":"***","form.ПАРОЛЬ":"***","form":{"items":[{"CONTRASEÑA":"***","n":1}]},"ПАРОЛЬ":"***"}"#),
        "{line}"
    );
}

/// HTTP headers logged as fields (a header map as a nested value, or one header as a
/// field) carry their secrets under the headers' own spellings, with hyphens: the default
/// mask hides `Set-Cookie`, `X-Api-Key` and `Proxy-Authorization` as it hides
/// `Authorization` and `Cookie`.
#[test]
fn the_default_mask_hides_secret_http_headers() {
    let mask = Mask::default();
    for key in [
        "Set-Cookie",
        "x-api-key",
        "X-API-KEY",
        "Proxy-Authorization",
        "Authorization",
        "Cookie",
        "headers.set-cookie",
    ] {
        assert!(mask.is_masked(key), "{key}");
    }
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .sink(mem.clone())
        .build()
        .unwrap();
    let headers = json!({ // (serde_json's map: written in key order)
        "Content-Type": "text/html",
        "Set-Cookie": format!("sid={SECRET}"),
        "X-Api-Key": SECRET,
        "Proxy-Authorization": SECRET,
    });
    logxide::info!(logger: log, "response", headers = ser(&headers), "set-cookie" = SECRET);
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert!(!line.contains(SECRET), "{line}");
    assert!(
        line.ends_with(r#""headers":{"Content-Type":"text/html","Proxy-Authorization":"***","Set-Cookie":"***","X-Api-Key":"***"},"set-cookie":"***"}"#),
        "{line}"
    );
}

/// `set("mask", "")` (or only commas and spaces) made a mask of no names: every value,
/// the default names' too, was written in clear, without a word. An empty list is now an
/// error, before anything changes; masking nothing is asked for with `none` (any case),
/// alone.
#[test]
fn an_empty_mask_option_is_an_error_and_none_masks_nothing() {
    use logxide::LoggerBuilder;
    let expected = "logxide option `mask`: no names given: expected the names to mask, comma-separated (they replace the default ones), or none (any case) to mask nothing";
    for empty in ["", "  ", ",", " , ,"] {
        let err = LoggerBuilder::new().set("mask", empty).unwrap_err();
        assert_eq!(err.to_string(), expected, "{empty:?}");
    }
    let err = LoggerBuilder::new().set("mask", "none, pin").unwrap_err();
    assert_eq!(
        err.to_string(),
        "logxide option `mask`: none (mask nothing) cannot be listed with names: \"none, pin\""
    );
    let line = |value: &str| {
        let mem = MemorySink::new();
        let log = LoggerBuilder::new()
            .use_env(false)
            .set("mask", value)
            .unwrap()
            .sink(mem.clone())
            .build()
            .unwrap();
        logxide::info!(logger: log, "m", password = "p", pin = 1);
        log.flush(None).unwrap();
        let line = mem.lines()[0].clone();
        line[line.find(r#","password""#).unwrap()..].to_owned()
    };
    assert_eq!(line(" None "), r#","password":"p","pin":1}"#);
    assert_eq!(line("pin, ,token"), r#","password":"p","pin":"***"}"#);
}

/// A key outside ASCII was compared in Unicode lower case only when one of the mask's names
/// was outside ASCII: `to\u{212A}en` (with the KELVIN SIGN, which lowers to `k`) is `token`
/// in lower case, yet the default mask wrote its value in clear while a mask of `token` and
/// `contraseña` hid it. Keys outside ASCII are now compared in Unicode lower case whatever
/// the names, on every path (macro keys, run-time keys, bound fields, nested members).
#[test]
fn a_key_outside_ascii_is_compared_in_unicode_lower_case_whatever_the_names() {
    for mask in [Mask::default(), Mask::new(["token", "contraseña"])] {
        assert!(mask.is_masked("to\u{212A}en"), "{:?}", mask.names());
        assert!(mask.is_masked("user.TO\u{212A}EN"));
        assert!(!mask.is_masked("to\u{212A}ens"));
        let mem = MemorySink::new();
        let log = Logger::builder()
            .use_env(false)
            .mask(mask.clone())
            .sink(mem.clone())
            .build()
            .unwrap();
        let child = log.ctx(Fields::new().with("bound.to\u{212A}en", SECRET));
        logxide::info!(logger: child, "m", "to\u{212A}en" = SECRET, v = ser(json!({"To\u{212A}en": SECRET})));
        child.log(Level::Info, "r", |f| f.field("x.to\u{212A}en", SECRET));
        log.flush(None).unwrap();
        let lines = mem.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let k = '\u{212A}';
        let want = [
            format!(r#""msg":"m","to{k}en":"***","v":{{"To{k}en":"***"}},"bound.to{k}en":"***"}}"#),
            format!(r#""msg":"r","x.to{k}en":"***","bound.to{k}en":"***"}}"#),
        ];
        for (line, want) in lines.iter().zip(&want) {
            assert!(line.ends_with(want.as_str()), "{line}");
        }
    }
    // A name is lowered too: the KELVIN SIGN in a name is `k`.
    assert!(Mask::new(["\u{212A}ey"]).is_masked("KEY"));
    assert!(!Mask::new(["pin"]).is_masked("to\u{212A}en"));
}
