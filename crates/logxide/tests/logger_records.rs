//! The logger's records: format, task levels, fields, context, masking, actions.

use logxide::logger::{scope, sync_mode, Fields, Mask};
use logxide::sink::MemorySink;
use logxide::{Level, Logger};
use serde_json::Value;

mod common;
use common::logger;

/// Every line parsed as JSON (each must be one object).
fn records(log: &Logger, mem: &MemorySink) -> Vec<serde_json::Map<String, Value>> {
    log.flush(None).unwrap();
    mem.lines()
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object: {l:?} ({other:?})"),
        })
        .collect()
}

/// The line with `ts` and `tid` replaced, for exact comparison.
fn normalized(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    let Value::Object(mut m) = v else { panic!() };
    assert!(m["ts"].is_f64() || m["ts"].is_u64());
    m.insert("ts".into(), Value::from(0));
    m.insert("tid".into(), Value::from("T"));
    // Keep key order: rebuild text from the original, replacing the two values.
    let ts_end = line.find(",\"tid\":").unwrap();
    let tid_end = line.find(",\"lvl\":").unwrap();
    format!("{{\"ts\":0,\"tid\":\"T\"{}", &line[tid_end..]).replace(&line[..ts_end], "{\"ts\":0")
}

#[test]
fn reference_task_tree_has_eliot_levels_and_key_order() {
    let (log, mem) = logger();
    logxide::info!(logger: log, "standalone message", user_id = 123);
    {
        let request = logxide::start_action!(logger: log, "http:request", path = "/api");
        logxide::info!(logger: log, "inside request");
        {
            let _query = logxide::start_action!(logger: log, "db:query", sql = "SELECT 1");
            logxide::debug!(logger: log, "rows fetched", rows = 1);
        }
        request.fail_with("ValueError", "boom");
    }
    log.flush(None).unwrap();
    let lines: Vec<String> = mem.lines().iter().map(|l| normalized(l)).collect();
    let dur_free: Vec<String> = lines
        .iter()
        .map(|l| match l.find(",\"dur\":") {
            Some(i) => {
                let rest = &l[i + 7..];
                let end = rest.find([',', '}']).unwrap();
                format!("{},\"dur\":D{}", &l[..i], &rest[end..])
            }
            None => l.clone(),
        })
        .collect();
    assert_eq!(
        dur_free,
        [
            r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"standalone message","user_id":123}"#,
            r#"{"ts":0,"tid":"T","lvl":[1],"at":"http:request","st":"started","path":"/api"}"#,
            r#"{"ts":0,"tid":"T","lvl":[2],"mt":"info","msg":"inside request"}"#,
            r#"{"ts":0,"tid":"T","lvl":[3,1],"at":"db:query","st":"started","sql":"SELECT 1"}"#,
            r#"{"ts":0,"tid":"T","lvl":[3,2],"mt":"debug","msg":"rows fetched","rows":1}"#,
            r#"{"ts":0,"tid":"T","lvl":[3,3],"at":"db:query","st":"succeeded","dur":D}"#,
            r#"{"ts":0,"tid":"T","lvl":[4],"at":"http:request","st":"failed","exc":"ValueError","reason":"boom","dur":D}"#,
        ]
    );
    // One task for the request, another for the standalone message; ts has six decimals.
    let recs = records(&log, &mem);
    let tid = |i: usize| recs[i]["tid"].as_str().unwrap().to_owned();
    assert_ne!(tid(0), tid(1));
    assert!((2..7).all(|i| tid(i) == tid(1)));
    for line in mem.lines() {
        let ts = &line[6..line.find(',').unwrap()];
        assert_eq!(ts.split('.').nth(1).map(str::len), Some(6), "{line}");
    }
}

#[test]
fn levels_filter_and_names() {
    let (log, mem) = logger();
    log.set_level(Level::Warning);
    logxide::info!(logger: log, "hidden");
    logxide::warning!(logger: log, "shown");
    logxide::critical!(logger: log, "also shown");
    for level in [Level::Debug, Level::Success, Level::Note] {
        logxide::log!(logger: log, level, "hidden too");
    }
    log.set_level(Level::Debug);
    for level in Level::ALL {
        logxide::log!(logger: log, level, "all");
    }
    let recs = records(&log, &mem);
    let mts: Vec<&str> = recs.iter().map(|r| r["mt"].as_str().unwrap()).collect();
    assert_eq!(
        mts,
        [
            "warning", "critical", "debug", "info", "success", "note", "warning", "error",
            "critical"
        ]
    );
}

#[test]
fn field_kinds_and_option_omission() {
    let (log, mem) = logger();
    let missing: Option<u8> = None;
    let present = Some("yes");
    let name = "ada";
    logxide::info!(logger: log, "kinds",
        a = 1u8, b = -2i64, c = u128::MAX, d = 1.5f32, e = true, f = 'x', g = "s",
        h = String::from("owned"), missing, present, name,
        i = %std::net::Ipv4Addr::LOCALHOST, j = ?vec![1, 2], "dotted.key" = 7,
        k = f64::NAN);
    let rec = &records(&log, &mem)[0];
    let line = &mem.lines()[0];
    assert_eq!(rec["a"], 1);
    assert_eq!(rec["b"], -2);
    assert_eq!(rec["d"], 1.5);
    assert_eq!(rec["e"], true);
    assert_eq!(rec["f"], "x");
    assert_eq!(rec["h"], "owned");
    assert!(!rec.contains_key("missing"));
    assert_eq!(rec["present"], "yes");
    assert_eq!(rec["name"], "ada");
    assert_eq!(rec["i"], "127.0.0.1");
    assert_eq!(rec["j"], "[1, 2]");
    assert_eq!(rec["dotted.key"], 7);
    assert!(line.contains(&format!("\"c\":{}", u128::MAX)));
    // Call order is kept.
    let pos = |k: &str| line.find(&format!("\"{k}\":")).unwrap();
    assert!(pos("a") < pos("b") && pos("b") < pos("k"));
}

/// `FieldWriter::encoded` wrote an absent value (`None`) as `null` — `"k":null` — where
/// every other path omits it (`field`, the macros, `Fields::insert`: `Encode::is_absent`
/// says fields omit it). It is omitted now, and hides the context field of its key as a
/// `None` of `field` does.
#[test]
fn encoded_omits_an_absent_value_as_field_does() {
    let (log, mem) = logger();
    let req = log.ctx(Fields::new().with("bound", 1).with("kept", 2));
    req.log(Level::Info, "m", |f| {
        f.encoded("none".into(), &None::<u8>);
        f.encoded("nested".into(), &Some(None::<&str>));
        f.encoded("bound".into(), &None::<u8>);
        f.encoded("some".into(), &Some(3u8));
        f.encoded("null".into(), &logxide::encode::serde(None::<u8>)); // serde's own null
    });
    log.flush(None).unwrap();
    let line = &mem.lines()[0];
    assert!(
        line.ends_with(r#""msg":"m","some":3,"null":null,"kept":2}"#),
        "{line}"
    );
}

#[test]
fn context_call_site_wins_over_scope_over_logger() {
    let (log, mem) = logger();
    let child = log.ctx(
        Fields::new()
            .with("svc", "api")
            .with("zone", "eu")
            .with("user", "l"),
    );
    {
        let _s = scope(Fields::new().with("zone", "us").with("req", "r1"));
        logxide::info!(logger: child, "one", user = "call");
        let _inner = scope(Fields::new().with("req", "r2"));
        logxide::info!(logger: child, "two");
    }
    logxide::info!(logger: child, "three");
    logxide::info!(logger: log, "four");
    log.flush(None).unwrap();
    let ends: Vec<String> = mem
        .lines()
        .iter()
        .map(|l| l[l.find("\"msg\"").unwrap()..].to_owned())
        .collect();
    assert_eq!(
        ends,
        [
            r#""msg":"one","user":"call","zone":"us","req":"r1","svc":"api"}"#,
            r#""msg":"two","zone":"us","req":"r2","svc":"api","user":"l"}"#,
            r#""msg":"three","svc":"api","zone":"eu","user":"l"}"#,
            r#""msg":"four"}"#,
        ]
    );
}

#[test]
fn scopes_dropped_out_of_order_remove_their_own_fields() {
    let (log, mem) = logger();
    let a = scope(Fields::new().with("a", 1).with("shared", "a"));
    let b = scope(Fields::new().with("b", 2).with("shared", "b"));
    let c = scope(Fields::new().with("c", 3));
    logxide::info!(logger: log, "abc");
    // The middle scope ends first: a's and c's fields stay, and a's `shared` shows again.
    drop(b);
    logxide::info!(logger: log, "ac");
    // A scope entered now is inside the remaining ones.
    let d = scope(Fields::new().with("d", 4).with("a", 0));
    logxide::info!(logger: log, "acd");
    drop(a);
    logxide::info!(logger: log, "cd");
    drop(d);
    logxide::info!(logger: log, "c");
    drop(c);
    logxide::info!(logger: log, "none");
    log.flush(None).unwrap();
    let ends: Vec<String> = mem
        .lines()
        .iter()
        .map(|l| l[l.find("\"msg\"").unwrap()..].to_owned())
        .collect();
    assert_eq!(
        ends,
        [
            r#""msg":"abc","a":1,"shared":"b","b":2,"c":3}"#,
            r#""msg":"ac","a":1,"shared":"a","c":3}"#,
            r#""msg":"acd","a":0,"shared":"a","c":3,"d":4}"#,
            r#""msg":"cd","c":3,"d":4,"a":0}"#,
            r#""msg":"c","c":3}"#,
            r#""msg":"none"}"#,
        ]
    );
}

#[test]
fn masking_applies_on_every_path() {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .mask(Mask::new(["password", "token"]))
        .sink(mem.clone())
        .build()
        .unwrap();
    logxide::info!(logger: log, "call", password = "hunter2", user = "u");
    let child = log.ctx(Fields::new().with("Token", "abc"));
    logxide::info!(logger: child, "ctx");
    {
        let _s = scope(Fields::new().with("PASSWORD", "p2"));
        logxide::info!(logger: log, "scope");
    }
    {
        let _a = logxide::start_action!(logger: log, "login", password = "p3");
    }
    {
        let _sync = sync_mode();
        logxide::error!(logger: log, "sync", token = "t4");
    }
    log.flush(None).unwrap();
    let text = String::from_utf8(mem.contents()).unwrap();
    // (Quoted: a random task id may contain a short secret's letters, e.g. `…p2…`.)
    for secret in ["hunter2", "abc", "p2", "p3", "t4"] {
        let value = format!("\"{secret}\"");
        assert!(!text.contains(&value), "{secret} leaked:\n{text}");
    }
    assert_eq!(text.matches("\"***\"").count(), 5, "{text}");
    assert!(text.contains(r#""password":"***","user":"u""#));
}

#[test]
fn actions_nest_fail_on_panic_and_continue_across_threads() {
    let (log, mem) = logger();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _a = log.start_action("job", |_| {});
        panic!("boom");
    }));
    assert!(result.is_err());
    let parent = log.start_action("fanout", |f| f.field("n", &2));
    let ctx = parent.context();
    let log2 = log.clone();
    std::thread::spawn(move || {
        let _remote = log2.continue_action(&ctx, "worker", |_| {});
        logxide::info!(logger: log2, "working");
    })
    .join()
    .unwrap();
    parent.finish();
    let recs = records(&log, &mem);
    let lvl = |i: usize| recs[i]["lvl"].clone();
    assert_eq!(recs[1]["st"], "failed");
    assert_eq!(recs[1]["exc"], "panic");
    assert_eq!(lvl(1), serde_json::json!([2]));
    // fanout started [1]; the context reserved [2]; the worker's records nest under it.
    assert_eq!(recs[2]["at"], "fanout");
    assert_eq!(lvl(3), serde_json::json!([2, 1]));
    assert_eq!(lvl(4), serde_json::json!([2, 2]));
    assert_eq!(lvl(5), serde_json::json!([2, 3]));
    assert_eq!(recs[5]["st"], "succeeded");
    assert_eq!(lvl(6), serde_json::json!([3]));
    assert_eq!(recs[6]["st"], "succeeded");
    assert!((3..7).all(|i| recs[i]["tid"] == recs[2]["tid"]));
}

#[test]
fn instrumented_future_runs_inside_its_action() {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    /// Yields once, so the future is polled twice.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    let (log, mem) = logger();
    let log2 = log.clone();
    let action = log.start_action("async:job", |_| {}).detach();
    logxide::info!(logger: log, "outside");
    let fut = action.instrument(async move {
        logxide::info!(logger: log2, "before await");
        YieldOnce(false).await;
        logxide::info!(logger: log2, "after await");
        7
    });
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let out = loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            break v;
        }
        logxide::info!(logger: log, "between polls");
    };
    assert_eq!(out, 7);
    let recs = records(&log, &mem);
    let task = recs[0]["tid"].clone();
    let summary: Vec<(bool, String)> = recs
        .iter()
        .map(|r| {
            (
                r["tid"] == task,
                r.get("msg")
                    .or_else(|| r.get("st"))
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (true, "started".into()),
            (false, "outside".into()),
            (true, "before await".into()),
            (false, "between polls".into()),
            (true, "after await".into()),
            (true, "succeeded".into()),
        ]
    );
}

/// A waker that does nothing, a future that is pending on its first poll, and each record
/// as `(task number in order of appearance, task level, msg or at:st)`.
mod polling {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    use serde_json::{Map, Value};

    pub fn noop_waker() -> Waker {
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        Waker::from(Arc::new(Noop))
    }

    /// Pending once (waking itself), then ready.
    pub struct YieldOnce(pub bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    pub fn summary(recs: &[Map<String, Value>]) -> Vec<(usize, Value, String)> {
        let mut tids: Vec<Value> = Vec::new();
        recs.iter()
            .map(|r| {
                let n = tids.iter().position(|t| *t == r["tid"]).unwrap_or_else(|| {
                    tids.push(r["tid"].clone());
                    tids.len() - 1
                });
                let what = match r.get("msg") {
                    Some(m) => m.as_str().unwrap().to_owned(),
                    None => format!(
                        "{}:{}",
                        r["at"].as_str().unwrap(),
                        r["st"].as_str().unwrap()
                    ),
                };
                (n, r["lvl"].clone(), what)
            })
            .collect()
    }

    /// Expected [`summary`] rows, written with `&str`s.
    pub fn rows(rows: &[(usize, Value, &str)]) -> Vec<(usize, Value, String)> {
        rows.iter()
            .map(|(n, l, w)| (*n, l.clone(), (*w).to_owned()))
            .collect()
    }
}

/// Two instrumented futures polled in turn on one thread: an action started inside one and
/// alive across its `.await` stays with that future — records between the polls are tasks
/// of their own, the other future's records stay in its action, and the inner action's
/// records continue its numbering on the next poll.
#[test]
fn an_action_alive_across_an_await_stays_with_its_future() {
    use polling::{noop_waker, rows, summary, YieldOnce};
    use serde_json::json;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    let (log, mem) = logger();
    let (la, lb) = (log.clone(), log.clone());
    let a = log.start_action("a", |_| {}).detach();
    let b = log.start_action("b", |_| {}).detach();
    let fut_a = a.instrument(async move {
        let inner = la.start_action("a:inner", |_| {});
        logxide::info!(logger: la, "a before");
        YieldOnce(false).await;
        logxide::info!(logger: la, "a after");
        drop(inner);
    });
    let fut_b = b.instrument(async move {
        logxide::info!(logger: lb, "b before");
        YieldOnce(false).await;
        logxide::info!(logger: lb, "b after");
    });
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut fut_a, mut fut_b) = (pin!(fut_a), pin!(fut_b));
    let (mut done_a, mut done_b) = (false, false);
    while !(done_a && done_b) {
        if !done_a {
            done_a = fut_a.as_mut().poll(&mut cx) == Poll::Ready(());
            logxide::info!(logger: log, "after a");
        }
        if !done_b {
            done_b = fut_b.as_mut().poll(&mut cx) == Poll::Ready(());
            logxide::info!(logger: log, "after b");
        }
    }
    let recs = records(&log, &mem);
    let got = summary(&recs);
    let want = rows(&[
        (0, json!([1]), "a:started"),
        (1, json!([1]), "b:started"),
        (0, json!([2, 1]), "a:inner:started"),
        (0, json!([2, 2]), "a before"),
        (2, json!([1]), "after a"),
        (1, json!([2]), "b before"),
        (3, json!([1]), "after b"),
        (0, json!([2, 3]), "a after"),
        (0, json!([2, 4]), "a:inner:succeeded"),
        (0, json!([3]), "a:succeeded"),
        (4, json!([1]), "after a"),
        (1, json!([3]), "b after"),
        (1, json!([4]), "b:succeeded"),
        (5, json!([1]), "after b"),
    ]);
    assert_eq!(got, want);
}

/// An instrumented future whose poll panics ends its action `failed` as a panicking
/// synchronous action does (`exc` `panic`), also when the executor catches the panic and
/// drops the future afterwards, as runtimes do; the actions entered inside it end the same
/// way, and the thread's next record is a task of its own. A future dropped unfinished
/// without a panic is `cancelled`.
#[test]
fn a_panicking_instrumented_future_fails_as_a_panic_and_a_dropped_one_is_cancelled() {
    use polling::{noop_waker, rows, summary, YieldOnce};
    use serde_json::json;
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::task::{Context, Poll};

    let (log, mem) = logger();
    let (l1, l2) = (log.clone(), log.clone());
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);

    let panicking = log.start_action("panics", |_| {}).detach();
    let mut fut = Box::pin(panicking.instrument(async move {
        YieldOnce(false).await;
        let _inner = l1.start_action("panics:inner", |_| {});
        panic!("boom");
    }));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let caught = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
    assert!(caught.is_err());
    logxide::info!(logger: log, "after the panic");
    drop(fut);

    let dropped = log.start_action("dropped", |_| {}).detach();
    let mut fut = Box::pin(dropped.instrument(async move {
        logxide::info!(logger: l2, "started work");
        YieldOnce(false).await;
    }));
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
    drop(fut);

    let recs = records(&log, &mem);
    let got = summary(&recs);
    let want = rows(&[
        (0, json!([1]), "panics:started"),
        (0, json!([2, 1]), "panics:inner:started"),
        (0, json!([2, 2]), "panics:inner:failed"),
        (0, json!([3]), "panics:failed"),
        (1, json!([1]), "after the panic"),
        (2, json!([1]), "dropped:started"),
        (2, json!([2]), "started work"),
        (2, json!([3]), "dropped:failed"),
    ]);
    assert_eq!(got, want);
    let error = |i: usize| (recs[i]["exc"].clone(), recs[i]["reason"].clone());
    let panic = (json!("panic"), json!("the thread panicked"));
    assert_eq!(error(2), panic);
    assert_eq!(error(3), panic);
    assert_eq!(
        error(7),
        (
            json!("cancelled"),
            json!("the future was dropped before it completed")
        )
    );
}

/// A future whose poll panics and whose state survives the unwind (a hand-written future, a
/// combinator's struct: unlike an async block, the unwind drops none of its fields) is
/// dropped at once, inside its action, during the panic: an action it holds ends first,
/// `failed` with `exc` `panic` as well, and a record its drop logs stays in the action; then
/// the action ends. (Before, the held action ended `succeeded`, after its parent's end and
/// after the thread's next record, when the executor dropped the future later.)
#[test]
fn a_future_whose_poll_panics_ends_the_actions_its_state_holds_before_its_own() {
    use polling::{noop_waker, rows, summary};
    use serde_json::json;
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Starts an action at its first poll and keeps it in a field; panics at the second.
    struct Holds {
        log: Logger,
        held: Option<(logxide::logger::Action, LogsOnDrop)>,
    }
    struct LogsOnDrop(Logger);
    impl Drop for LogsOnDrop {
        fn drop(&mut self) {
            logxide::info!(logger: self.0, "dropped");
        }
    }
    impl Future for Holds {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.held.is_none() {
                let action = self.log.start_action("holds:inner", |_| {});
                self.held = Some((action, LogsOnDrop(self.log.clone())));
                return Poll::Pending;
            }
            logxide::info!(logger: self.log, "second poll");
            panic!("boom");
        }
    }

    let (log, mem) = logger();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let holds = Holds {
        log: log.clone(),
        held: None,
    };
    let mut fut = Box::pin(log.start_action("holds", |_| {}).detach().instrument(holds));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let caught = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
    assert!(caught.is_err());
    logxide::info!(logger: log, "after the panic");
    drop(fut);

    let recs = records(&log, &mem);
    let want = rows(&[
        (0, json!([1]), "holds:started"),
        (0, json!([2, 1]), "holds:inner:started"),
        (0, json!([2, 2]), "second poll"),
        (0, json!([2, 3]), "holds:inner:failed"),
        (0, json!([3]), "dropped"),
        (0, json!([4]), "holds:failed"),
        (1, json!([1]), "after the panic"),
    ]);
    assert_eq!(summary(&recs), want);
    let panic = (json!("panic"), json!("the thread panicked"));
    for i in [3, 5] {
        assert_eq!((recs[i]["exc"].clone(), recs[i]["reason"].clone()), panic);
    }
}

/// A future that completes is dropped inside its action too: a hand-written future's fields
/// (unlike an async block's locals, gone when it returns `Ready`) live until the future is
/// dropped, and a record their drop logs belongs to the action, before its end. (Before, it
/// was a task of its own, written after the future had left its action.)
#[test]
fn a_completed_future_is_dropped_inside_its_action() {
    use polling::{noop_waker, rows, summary};
    use serde_json::json;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Starts an action at its first poll and keeps it in a field; completes at the second.
    struct Holds {
        log: Logger,
        held: Option<(logxide::logger::Action, LogsOnDrop)>,
    }
    struct LogsOnDrop(Logger);
    impl Drop for LogsOnDrop {
        fn drop(&mut self) {
            logxide::info!(logger: self.0, "dropped");
        }
    }
    impl Future for Holds {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.held.is_none() {
                let action = self.log.start_action("holds:inner", |_| {});
                self.held = Some((action, LogsOnDrop(self.log.clone())));
                return Poll::Pending;
            }
            Poll::Ready(())
        }
    }

    let (log, mem) = logger();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let holds = Holds {
        log: log.clone(),
        held: None,
    };
    let mut fut = Box::pin(log.start_action("holds", |_| {}).detach().instrument(holds));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert!(fut.as_mut().poll(&mut cx).is_ready());
    logxide::info!(logger: log, "after");
    drop(fut);

    let recs = records(&log, &mem);
    let want = rows(&[
        (0, json!([1]), "holds:started"),
        (0, json!([2, 1]), "holds:inner:started"),
        (0, json!([2, 2]), "holds:inner:succeeded"),
        (0, json!([3]), "dropped"),
        (0, json!([4]), "holds:succeeded"),
        (1, json!([1]), "after"),
    ]);
    assert_eq!(summary(&recs), want);
}

/// A future dropped unfinished is dropped inside its action: an action it holds across an
/// `.await` ends first, `cancelled` as well, and a record its drop logs stays in the action;
/// the action's own end comes last, and the thread's next record is a task of its own.
#[test]
fn a_dropped_future_ends_the_actions_it_holds_before_its_own() {
    use polling::{noop_waker, rows, summary, YieldOnce};
    use serde_json::json;
    use std::future::Future;
    use std::task::{Context, Poll};

    struct LogsOnDrop(logxide::Logger);
    impl Drop for LogsOnDrop {
        fn drop(&mut self) {
            logxide::info!(logger: self.0, "cleanup");
        }
    }

    let (log, mem) = logger();
    let l1 = log.clone();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let outer = log.start_action("outer", |_| {}).detach();
    let mut fut = Box::pin(outer.instrument(async move {
        let _cleanup = LogsOnDrop(l1.clone());
        let _held = l1.start_action("held", |_| {});
        logxide::info!(logger: l1, "inside held");
        YieldOnce(false).await;
        unreachable!("never polled again");
    }));
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
    logxide::info!(logger: log, "between");
    drop(fut);
    logxide::info!(logger: log, "after");

    let recs = records(&log, &mem);
    let want = rows(&[
        (0, json!([1]), "outer:started"),
        (0, json!([2, 1]), "held:started"),
        (0, json!([2, 2]), "inside held"),
        (1, json!([1]), "between"),
        (0, json!([2, 3]), "held:failed"),
        (0, json!([3]), "cleanup"),
        (0, json!([4]), "outer:failed"),
        (2, json!([1]), "after"),
    ]);
    assert_eq!(summary(&recs), want);
    let cancelled = (
        json!("cancelled"),
        json!("the future was dropped before it completed"),
    );
    for i in [4, 6] {
        assert_eq!(
            (recs[i]["exc"].clone(), recs[i]["reason"].clone()),
            cancelled
        );
    }
}

#[test]
fn every_line_is_one_json_object_whatever_the_input() {
    let (log, mem) = logger();
    let nasty =
        "quote\" backslash\\ nl\n cr\r tab\t nul\0 esc\x1b[31m ls\u{2028} ps\u{2029} del\x7f";
    logxide::info!(logger: log, nasty, "k\"ey\n" = nasty, f = f64::INFINITY, g = -0.0f64);
    logxide::info!(logger: log, "", "" = "");
    let recs = records(&log, &mem);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["msg"], nasty);
    assert_eq!(mem.contents().iter().filter(|&&b| b == b'\n').count(), 2);
}

#[test]
fn sync_mode_and_exception_and_checkpoint() {
    let (log, mem) = logger();
    {
        let _sync = sync_mode();
        logxide::critical!(logger: log, "written before returning");
        assert_eq!(mem.lines().len(), 1);
    }
    let err = std::io::Error::other(Chain);
    log.exception("failed", &err);
    logxide::checkpoint!(logger: log, "step", n = 3);
    let recs = records(&log, &mem);
    assert_eq!(recs[1]["exc"], "std::io::error::Error");
    assert_eq!(recs[1]["reason"], "outer: inner");
    assert_eq!(recs[2]["msg"], "📍 step");
    assert_eq!(recs[2]["n"], 3);

    #[derive(Debug)]
    struct Chain;
    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&Inner)
        }
    }
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("inner")
        }
    }
    impl std::error::Error for Inner {}
}

#[test]
fn records_after_shutdown_are_counted() {
    let (log, mem) = logger();
    logxide::info!(logger: log, "kept");
    let report = log.shutdown(None).unwrap();
    assert_eq!(report.metrics.written, 1);
    logxide::info!(logger: log, "late");
    let m = log.metrics();
    assert_eq!((m.enqueued, m.written, m.dropped_by.shutdown), (2, 1, 1));
    assert_eq!(mem.lines().len(), 1);
}

#[test]
fn eliot_format_uses_eliot_names() {
    let mem = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .set("format", "eliot")
        .unwrap()
        .set("task_id_mode", "uuid")
        .unwrap()
        .sink(mem.clone())
        .build()
        .unwrap();
    {
        let _a = logxide::start_action!(logger: log, "http:request", path = "/x");
        logxide::info!(logger: log, "inside", n = 1);
    }
    let recs = records(&log, &mem);
    assert_eq!(recs.len(), 3);
    let uuid = recs[0]["task_uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert!(recs.iter().all(|r| r["task_uuid"] == uuid));
    assert_eq!(recs[0]["action_type"], "http:request");
    assert_eq!(recs[0]["action_status"], "started");
    assert_eq!(recs[0]["task_level"], serde_json::json!([1]));
    assert_eq!(recs[1]["message_type"], "info");
    assert_eq!(recs[1]["task_level"], serde_json::json!([2]));
    assert_eq!(recs[2]["action_status"], "succeeded");
    assert!(recs.iter().all(|r| r["timestamp"].is_f64()));
    assert!(recs
        .iter()
        .all(|r| !r.contains_key("ts") && !r.contains_key("tid")));
}

/// Queued records are captured (their numbers formatted by the writer thread); records
/// written synchronously are encoded by the caller. Both must be the same bytes.
#[test]
fn captured_records_match_the_synchronously_encoded_ones() {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let (log, mem) = logger();
    let emit = |log: &Logger| {
        logxide::info!(logger: log, "numbers \u{1} \"q\"",
            a = i8::MIN, b = i16::MAX, c = i32::MIN, d = i64::MIN, e = isize::MAX,
            f = u8::MAX, g = u16::MAX, h = u32::MAX, i = u64::MAX, j = usize::MAX,
            k = 0.1f32, l = f32::NEG_INFINITY, m = -0.0f64, n = f64::NAN, o = 1e300,
            p = f64::MIN_POSITIVE, q = Duration::from_micros(1_500_001), r = Some(2.5),
            s = Some(&&7u16), t = Box::new(-3i32), u = &&4u64, v = Cow::Borrowed("c"),
            w = i128::MIN, x = "\u{2028}", y = None::<f64>, z = Some(None::<u8>));
    };
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    emit(&log);
    {
        let _sync = sync_mode();
        emit(&log);
    }
    log.flush(None).unwrap();
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let lines = mem.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(normalized(&lines[0]), normalized(&lines[1]));
    assert!(
        lines[0].contains("\"k\":0.1,\"l\":\"-Infinity\",\"m\":-0.0,\"n\":\"NaN\",\"o\":1e+300,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(&format!("\"i\":{},\"j\":{},", u64::MAX, usize::MAX)));
    assert!(lines[0]
        .contains("\"q\":1.5000010000000001,\"r\":2.5,\"s\":7,\"t\":-3,\"u\":4,\"v\":\"c\","));
    // `None` fields, at any depth, are omitted.
    assert!(lines[0].ends_with(",\"x\":\"\\u2028\"}"), "{}", lines[0]);
    for line in &lines {
        // Six decimals, within the call's time window.
        let ts = &line[6..line.find(",\"tid\"").unwrap()];
        assert_eq!(ts.len() - ts.find('.').unwrap(), 7, "{ts}");
        let ts: f64 = ts.parse().unwrap();
        assert!(
            before - 1e-6 <= ts && ts <= after + 1e-6,
            "{before} {ts} {after}"
        );
        serde_json::from_str::<Value>(line).unwrap();
    }
}

/// One thread logging without pause across several renewals of the tick clock's pairing with
/// the OS clock (every 100 ms): the times of its records never go back, as
/// `logxide check` requires within a task. (Whether a renewal would send time back depends
/// on the counter's calibration on the machine; the unit test
/// `a_new_anchor_never_sends_a_later_call_back_by_a_little_but_follows_a_clock_step` in
/// `encode::capture` makes that case happen.)
#[test]
fn queued_timestamps_of_one_thread_never_go_back() {
    use logxide::sink::{Batch, FnSink};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (seen, back) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (s, b) = (Arc::clone(&seen), Arc::clone(&back));
    let mut last = 0u64;
    let check = FnSink::new("check", move |batch: &Batch<'_>| {
        for line in batch.records() {
            // `{"ts":1700000000.123456,` → microseconds.
            let ts = std::str::from_utf8(&line[6..23]).unwrap().replace('.', "");
            let us: u64 = ts.parse().unwrap();
            if us < last {
                b.fetch_add(1, Relaxed);
            }
            last = last.max(us);
            s.fetch_add(1, Relaxed);
        }
        Ok(())
    });
    let log = Logger::builder()
        .use_env(false)
        .sink(check)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(450) {
        for _ in 0..64 {
            logxide::info!(logger: log, "tick", n);
            n += 1;
        }
    }
    log.flush(None).unwrap();
    assert_eq!(seen.load(Relaxed), n);
    assert_eq!(back.load(Relaxed), 0, "{n} records");
}

/// An error whose `Display` and `Debug` write a part and then fail (return `fmt::Error`
/// although the formatter did not).
struct FailingError(bool);

impl std::fmt::Display for FailingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "outer" } else { "inner" })?;
        Err(std::fmt::Error)
    }
}

impl std::fmt::Debug for FailingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailingError")?;
        Err(std::fmt::Error)
    }
}

impl std::error::Error for FailingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.then_some(&FailingError(false))
    }
}

/// `exception!`, `Logger::exception` and `Action::fail` formatted the error with
/// `to_string` / `format!`, which panic when a `Display` or `Debug` fails ("a Display
/// implementation returned an error unexpectedly"): the log call panicked and its record
/// was lost. The record is now written with the text the error wrote, as `%v` fields are.
#[test]
fn an_error_whose_display_fails_is_logged_with_what_it_wrote() {
    let (log, mem) = logger();
    logxide::exception!(logger: log, &FailingError(true), "m", k = 1);
    let boxed: Box<dyn std::error::Error> = Box::new(FailingError(true));
    log.exception("d", &*boxed);
    log.start_action("a", |_| {}).fail(&FailingError(true));
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        normalized(&lines[0]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"error","msg":"m","exc":"logger_records::FailingError","reason":"outer: inner","k":1}"#
    );
    assert_eq!(
        normalized(&lines[1]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"error","msg":"d","exc":"FailingError","reason":"outer: inner"}"#
    );
    // The end record without its `dur`.
    let (head, dur) = lines[3].split_at(lines[3].find(",\"dur\":").unwrap());
    assert!(dur[7..dur.len() - 1].parse::<f64>().is_ok(), "{dur}");
    assert_eq!(
        normalized(&format!("{head}}}")),
        r#"{"ts":0,"tid":"T","lvl":[2],"at":"a","st":"failed","exc":"logger_records::FailingError","reason":"outer: inner"}"#
    );
}

/// A `Serialize` impl that writes a string with `collect_str` of a `Display` that writes a
/// part and then fails.
struct CollectsFailing;

impl serde::Serialize for CollectsFailing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&FailingError(false))
    }
}

/// serde_json's `collect_str` panics when the `Display` it formats fails on its own: the
/// log call panicked. The string is now what the `Display` wrote, at any depth.
#[test]
fn a_serde_value_whose_collect_str_display_fails_is_logged_with_what_it_wrote() {
    let (log, mem) = logger();
    let nested = serde_json::json!({"k": [1]});
    logxide::info!(logger: log, "m", a = logxide::encode::serde(CollectsFailing), b = 1);
    logxide::info!(logger: log, "n", v = logxide::encode::serde(vec![Some(CollectsFailing)]), w = logxide::encode::serde(&nested));
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        normalized(&lines[0]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"m","a":"inner","b":1}"#
    );
    assert_eq!(
        normalized(&lines[1]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"n","v":["inner"],"w":{"k":[1]}}"#
    );
}

/// A `Serialize` impl failing with `custom` of a message: a [`FailingError`] (its `Display`
/// writes a part, then fails) or a text.
enum RefusesWith {
    Failing,
    Text(&'static str),
}

impl serde::Serialize for RefusesWith {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            RefusesWith::Failing => Err(S::Error::custom(FailingError(false))),
            RefusesWith::Text(t) => Err(S::Error::custom(t)),
        }
    }
}

/// serde_json's `Error::custom` is `msg.to_string()`, which panics when the message's
/// `Display` fails on its own: the log call panicked. The value is now
/// `"<serialize error: ...>"` with what the `Display` wrote, at any depth; a message whose
/// `Display` succeeds is written as before.
#[test]
fn a_serde_value_failing_with_a_custom_error_whose_display_fails_is_logged() {
    let (log, mem) = logger();
    let nested = serde_json::json!({"k": [1]});
    let mut map = std::collections::BTreeMap::new();
    map.insert("k", vec![RefusesWith::Failing]);
    logxide::info!(logger: log, "m", a = logxide::encode::serde(RefusesWith::Failing), b = 1);
    logxide::info!(logger: log, "n", v = logxide::encode::serde(&map), w = logxide::encode::serde(&nested));
    logxide::info!(logger: log, "o", t = logxide::encode::serde(Some(RefusesWith::Text("no"))));
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        normalized(&lines[0]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"m","a":"<serialize error: inner>","b":1}"#
    );
    assert_eq!(
        normalized(&lines[1]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"n","v":"<serialize error: inner>","w":{"k":[1]}}"#
    );
    assert_eq!(
        normalized(&lines[2]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"o","t":"<serialize error: no>"}"#
    );
}

/// A field whose `Display` / `Debug` fails on its own (`%x`, `?x`, `display(x)` in
/// `Fields::with`, a context or a scope, an action's start field) is what it wrote so far: no
/// panic, and the line is valid JSON.
#[test]
fn a_field_whose_display_or_debug_fails_is_what_it_wrote() {
    use logxide::encode::{debug, display};
    let (log, mem) = logger();
    let child = log.ctx(
        Fields::new()
            .with("cd", display(FailingError(true)))
            .with("cg", debug(FailingError(true))),
    );
    {
        let _s = scope(Fields::new().with("sd", display(FailingError(false))));
        logxide::info!(logger: child, "m", d = %FailingError(true), g = ?FailingError(true));
    }
    {
        let _a = logxide::start_action!(logger: log, "a", d = %FailingError(false));
    }
    log.flush(None).unwrap();
    let lines = mem.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        normalized(&lines[0]),
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"m","d":"outer","g":"FailingError","sd":"inner","cd":"outer","cg":"FailingError"}"#
    );
    assert_eq!(
        normalized(&lines[1]),
        r#"{"ts":0,"tid":"T","lvl":[1],"at":"a","st":"started","d":"inner"}"#
    );
}

/// A key written as a raw identifier (`r#type`) was written with its `r#` (`"r#type"`,
/// `stringify!` keeps it): it is the identifier's name (`"type"`), on every macro taking
/// fields and in every form (`= v`, `= %v`, `= ?v`, bare); a reserved name so written is
/// renamed as any other. A string literal key is the key as written.
#[test]
fn raw_identifier_keys_lose_their_r_hash() {
    let (log, mem) = logger();
    let r#loop = "bare";
    logxide::info!(logger: log, "m", r#type = 1, r#match = %"d", r#fn = ?"g", r#loop, r#msg = 2, "r#lit" = 3, plain = 4);
    logxide::log!(logger: log, Level::Note, "n", r#type = 1);
    logxide::checkpoint!(logger: log, "c", r#type = 1);
    logxide::exception!(logger: log, &FailingError(false), "e", r#type = 1);
    {
        let _a = logxide::start_action!(logger: log, "a", r#type = 1);
    }
    log.flush(None).unwrap();
    let lines: Vec<String> = mem.lines().iter().map(|l| normalized(l)).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(
        lines[0],
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"m","type":1,"match":"d","fn":"\"g\"","loop":"bare","_msg":2,"r#lit":3,"plain":4}"#
    );
    assert_eq!(
        lines[1],
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"note","msg":"n","type":1}"#
    );
    assert_eq!(
        lines[2],
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"📍 c","type":1}"#
    );
    assert_eq!(
        lines[3],
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"error","msg":"e","exc":"logger_records::FailingError","reason":"inner","type":1}"#
    );
    assert_eq!(
        lines[4],
        r#"{"ts":0,"tid":"T","lvl":[1],"at":"a","st":"started","type":1}"#
    );
}

/// The level macros spell a literal message with its keys at compile time; the bytes are
/// those of the run-time path, in both formats, for every level, for literals that need
/// escaping (which take the run-time path) and for `checkpoint!`.
#[test]
fn literal_messages_spelled_at_compile_time_are_what_the_runtime_path_writes() {
    for format in [
        logxide::encode::Format::Compact,
        logxide::encode::Format::Eliot,
    ] {
        let mem = MemorySink::new();
        let log = Logger::builder()
            .use_env(false)
            .level(Level::Debug)
            .format(format)
            .sink(mem.clone())
            .build()
            .unwrap();
        let pair = |macro_call: &dyn Fn(), level: Level, text: &str| {
            macro_call();
            log.log(level, text, |f| f.field("n", &1));
        };
        pair(
            &|| logxide::debug!(logger: log, "plain text", n = 1),
            Level::Debug,
            "plain text",
        );
        pair(
            &|| logxide::info!(logger: log, "say \"hi\"\n\t\\", n = 1),
            Level::Info,
            "say \"hi\"\n\t\\",
        );
        pair(
            &|| logxide::success!(logger: log, "é ü 📍", n = 1),
            Level::Success,
            "é ü 📍",
        );
        pair(
            &|| logxide::note!(logger: log, "note", n = 1),
            Level::Note,
            "note",
        );
        pair(
            &|| logxide::warning!(logger: log, "", n = 1),
            Level::Warning,
            "",
        );
        pair(
            &|| logxide::error!(logger: log, "e\u{2028}", n = 1),
            Level::Error,
            "e\u{2028}",
        );
        pair(
            &|| logxide::critical!(logger: log, "crit", n = 1),
            Level::Critical,
            "crit",
        );
        pair(
            &|| logxide::checkpoint!(logger: log, "step", n = 1),
            Level::Info,
            "📍 step",
        );
        pair(
            &|| logxide::checkpoint!(logger: log, "a\"b", n = 1),
            Level::Info,
            "📍 a\"b",
        );
        log.flush(None).unwrap();
        let lines = mem.lines();
        assert_eq!(lines.len(), 18);
        for pair in lines.chunks(2) {
            let strip =
                |l: &str| l[l.find("\"lvl\"").or(l.find("\"task_level\"")).unwrap()..].to_owned();
            assert_eq!(strip(&pair[0]), strip(&pair[1]), "{format:?}");
            serde_json::from_str::<Value>(&pair[0]).unwrap();
        }
    }
}

/// A context's text form reads back as the same context for every task id a context can
/// hold: a task id may contain `@` (any printable ASCII but `"` and `\`), so the text is cut
/// at its last `@`, which the level part never holds.
#[test]
fn an_action_context_whose_task_id_holds_an_at_sign_reads_back_from_its_text() {
    use logxide::logger::ActionContext;
    for json in [
        r#"{"task_id":"a@b","level":[1]}"#,
        r#"{"task_id":"@","level":[3,2]}"#,
        r#"{"task_id":"x@/1","level":[7]}"#,
    ] {
        let ctx: ActionContext = serde_json::from_str(json).unwrap();
        let text = ctx.to_string();
        assert_eq!(text.parse::<ActionContext>(), Ok(ctx.clone()), "{text}");
        let back: ActionContext =
            serde_json::from_str(&serde_json::to_string(&ctx).unwrap()).unwrap();
        assert_eq!(back, ctx);
    }
    assert_eq!(
        "a@b@/2/1"
            .parse::<ActionContext>()
            .unwrap()
            .task_id()
            .as_str(),
        "a@b"
    );
    for bad in ["a@b", "a@b@", "a@b@/", "a@/1@", "a@/1/x", "a@/0", "@/1"] {
        assert!(bad.parse::<ActionContext>().is_err(), "{bad}");
    }
}

/// An error whose `source()` chain comes back to an error already written (a `source` that
/// returns `self`, or two errors that name each other) is written once round: the chain
/// stops at the repeat. (Before, `exception` and `Action::fail` never returned: the
/// reason grew until memory ran out.)
#[test]
fn an_error_whose_source_chain_is_a_cycle_is_written_once_round() {
    use std::fmt;
    use std::sync::mpsc;
    use std::time::Duration;

    #[derive(Debug)]
    struct Loops;
    impl fmt::Display for Loops {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loops")
        }
    }
    impl std::error::Error for Loops {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self)
        }
    }
    /// `outer` names `inner` as its source, which names `outer` again.
    #[derive(Debug)]
    struct Pair {
        name: &'static str,
        other: std::sync::OnceLock<&'static Pair>,
    }
    impl fmt::Display for Pair {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }
    impl std::error::Error for Pair {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.other.get().map(|p| *p as _)
        }
    }
    let outer: &'static Pair = Box::leak(Box::new(Pair {
        name: "outer",
        other: std::sync::OnceLock::new(),
    }));
    let inner: &'static Pair = Box::leak(Box::new(Pair {
        name: "inner",
        other: std::sync::OnceLock::new(),
    }));
    outer.other.set(inner).unwrap();
    inner.other.set(outer).unwrap();

    /// Its source is its only field, at its own address: not a cycle (another size, text).
    #[derive(Debug)]
    struct Wraps(std::io::Error);
    impl fmt::Display for Wraps {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading config")
        }
    }
    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    let (log, mem) = logger();
    let (done, finished) = mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        l.exception("wraps", &Wraps(std::io::Error::other("no file")));
        l.exception("self", &Loops);
        l.exception("pair", outer);
        l.start_action("job", |_| {}).fail(outer);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("logging an error with a cyclic source chain returns");
    let recs = records(&log, &mem);
    let reasons: Vec<_> = recs
        .iter()
        .filter_map(|r| r.get("reason").and_then(|r| r.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            "reading config: no file",
            "loops",
            "outer: inner",
            "outer: inner"
        ]
    );
}

/// A second `shutdown` while another thread's is draining returned `None` at once, before
/// the drain ended: a caller that shuts down before exiting could lose what was still on its
/// way to the sinks. It returns `None` once the drain is over (or its own timeout expires).
#[test]
fn a_shutdown_during_another_threads_shutdown_returns_after_the_drain() {
    use std::sync::mpsc;
    use std::time::Duration;
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let mem = MemorySink::new();
    let sink_mem = mem.clone();
    let sink = logxide::sink::FnSink::new("slow", move |b: &logxide::sink::Batch<'_>| {
        let _ = entered_tx.send(());
        let _ = released.lock().unwrap().recv();
        logxide::sink::Sink::write_batch(&mut sink_mem.clone(), b)
    });
    let log = Logger::builder()
        .use_env(false)
        .writer_mode(logxide::writer::Mode::Manual)
        .sink(sink)
        .build()
        .unwrap();
    for i in 0..10 {
        log.info(&format!("r{i}"));
    }
    let first = {
        let log = log.clone();
        std::thread::spawn(move || log.shutdown(None).map(|r| r.metrics.written))
    };
    entered.recv().unwrap(); // the first shutdown's drain is in the sink
    let second = {
        let log = log.clone();
        std::thread::spawn(move || {
            let none = log.shutdown(None).is_none();
            (none, log.metrics().written, log.metrics().pending)
        })
    };
    // A timed second shutdown gives up at its timeout, still before the drain ended.
    let started = std::time::Instant::now();
    assert!(log.shutdown(Some(Duration::from_millis(200))).is_none());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(log.metrics().written, 0);
    assert!(!second.is_finished(), "returned before the drain ended");
    drop(release); // every batch goes on
    assert_eq!(first.join().unwrap(), Some(10));
    assert_eq!(second.join().unwrap(), (true, 10, 0));
    assert_eq!(mem.lines().len(), 10);
}

/// A value whose `Display`, `Debug` or `Serialize` panics.
struct Panics;

impl std::fmt::Display for Panics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Display of Panics")
    }
}

impl std::fmt::Debug for Panics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug of Panics")
    }
}

impl serde::Serialize for Panics {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Serialize of Panics")
    }
}

/// A value whose `Display` / `Debug` / `Serialize` panicked in a log call left the record
/// half-encoded and uncounted: neither written nor in the metrics. It is now counted as
/// dropped (reason `panicked`), queued or written synchronously, inside an action too; the
/// next record of the thread is complete, and the panic reaches the caller as it was.
#[test]
fn a_record_whose_value_panics_is_counted_as_dropped_and_the_next_is_whole() {
    use logxide::encode::serde as ser;
    let (log, mem) = logger();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = |f: &dyn Fn()| {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        err.downcast_ref::<&str>().map(|s| s.to_string()).unwrap()
    };
    let mut panics = vec![
        caught(&|| logxide::info!(logger: log, "m", a = 1, d = %Panics, b = 2)),
        caught(&|| logxide::info!(logger: log, "m", long = "x".repeat(300), g = ?Panics)),
        caught(&|| logxide::info!(logger: log, "m", s = ser(&[Panics]))),
    ];
    {
        let _sync = logxide::logger::sync_mode();
        panics.push(caught(&|| logxide::info!(logger: log, "m", d = %Panics)));
    }
    {
        let _a = logxide::start_action!(logger: log, "a");
        panics.push(caught(&|| logxide::info!(logger: log, "in", d = %Panics)));
        logxide::info!(logger: log, "after", n = 1);
    }
    std::panic::set_hook(quiet);
    logxide::info!(logger: log, "next", n = 1);
    log.flush(None).unwrap();
    assert_eq!(
        panics,
        [
            "Display of Panics",
            "Debug of Panics",
            "Serialize of Panics",
            "Display of Panics",
            "Display of Panics"
        ]
    );
    let lines: Vec<String> = mem.lines().iter().map(|l| normalized(l)).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        r#"{"ts":0,"tid":"T","lvl":[1],"at":"a","st":"started"}"#
    );
    // The record at [2] was the one that panicked.
    assert_eq!(
        lines[1],
        r#"{"ts":0,"tid":"T","lvl":[3],"mt":"info","msg":"after","n":1}"#
    );
    assert_eq!(
        lines[3],
        r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"next","n":1}"#
    );
    let m = log.metrics();
    assert_eq!(
        (m.enqueued, m.written, m.dropped, m.failed, m.pending),
        (9, 4, 5, 0, 0)
    );
    assert_eq!(m.dropped_by.panicked, 5);
}

/// A key the call site gives twice is written twice, in the order given (the logger does
/// not look for repeats among a call's own fields), each copy masked if the key is; the
/// context fields of that key are left out, as for a key given once.
#[test]
fn a_key_given_twice_by_the_call_is_written_twice_each_copy_masked() {
    let (log, mem) = logger();
    let child = log.ctx(Fields::new().with("a", 0).with("token", "bound"));
    logxide::info!(logger: child, "m", a = 1, token = "x", a = 2, "token" = %"y", TOKEN = ?"z");
    child.log(Level::Info, "r", |f| {
        f.field("a", &1);
        f.field("a", &None::<u8>);
        f.field("a", &3);
    });
    log.flush(None).unwrap();
    let lines: Vec<String> = mem.lines().iter().map(|l| normalized(l)).collect();
    assert_eq!(
        lines,
        [
            r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"m","a":1,"token":"***","a":2,"token":"***","TOKEN":"***"}"#,
            r#"{"ts":0,"tid":"T","lvl":[1],"mt":"info","msg":"r","a":1,"a":3,"token":"***"}"#,
        ]
    );
    // A JSON reader keeps one of them: serde_json the last.
    let v: serde_json::Value = serde_json::from_str(&mem.lines()[0]).unwrap();
    assert_eq!(v["a"], 2);
}
