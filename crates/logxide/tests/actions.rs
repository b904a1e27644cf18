//! Actions and task ids: ends, numbering, nesting, continuation, ids (the edge cases).

use logxide::sink::MemorySink;
use logxide::Logger;
use serde_json::{json, Value};

mod common;
use common::logger;

/// Every line parsed as a JSON object.
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

/// Logs an action that starts and ends inside a `Drop` run by an unwinding panic.
struct LogsOnDrop(Logger);

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        let cleanup = self.0.start_action("cleanup", |_| {});
        self.0.info("cleaning up");
        drop(cleanup);
        // A future started here and dropped unfinished is cancelled, not failed by the panic.
        let wait = self.0.start_action("wait", |_| {}).detach();
        drop(wait.instrument(std::future::pending::<()>()));
    }
}

/// An action (or an instrumented future) that a `Drop` starts and ends while a panic unwinds
/// was ended `failed` with `exc` `panic`: `thread::panicking()` was true at its end, though
/// the panic had begun before it and no panic can begin inside it.
#[test]
fn an_action_started_and_ended_during_a_panic_succeeds() {
    let (log, mem) = logger();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _job = log.start_action("job", |_| {});
        let _guard = LogsOnDrop(log.clone());
        panic!("boom");
    }));
    assert!(result.is_err());
    let recs = records(&log, &mem);
    let summary: Vec<_> = recs
        .iter()
        .map(|r| {
            (
                r["lvl"].clone(),
                r.get("at").cloned(),
                r.get("st").cloned(),
                r.get("exc").cloned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!([1]), Some(json!("job")), Some(json!("started")), None),
            (
                json!([2, 1]),
                Some(json!("cleanup")),
                Some(json!("started")),
                None
            ),
            (json!([2, 2]), None, None, None),
            (
                json!([2, 3]),
                Some(json!("cleanup")),
                Some(json!("succeeded")),
                None
            ),
            (
                json!([3, 1]),
                Some(json!("wait")),
                Some(json!("started")),
                None
            ),
            (
                json!([3, 2]),
                Some(json!("wait")),
                Some(json!("failed")),
                Some(json!("cancelled"))
            ),
            (
                json!([4]),
                Some(json!("job")),
                Some(json!("failed")),
                Some(json!("panic"))
            ),
        ]
    );
}

mod polling {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

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

    /// Polls `fut` once on a new thread, then logs "after poll" there.
    pub fn poll_on_thread<F: Future + Send + Unpin>(log: &logxide::Logger, fut: &mut F) -> bool {
        std::thread::scope(|s| {
            s.spawn(|| {
                let waker = noop_waker();
                let ready = Pin::new(&mut *fut)
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready();
                log.info("after poll");
                ready
            })
            .join()
            .unwrap()
        })
    }
}

/// Each record as `(task number in order of appearance, lvl, msg or at:st[:exc])`.
fn summary(recs: &[serde_json::Map<String, Value>]) -> Vec<(usize, Value, String)> {
    let mut tids: Vec<Value> = Vec::new();
    recs.iter()
        .map(|r| {
            let n = tids.iter().position(|t| *t == r["tid"]).unwrap_or_else(|| {
                tids.push(r["tid"].clone());
                tids.len() - 1
            });
            let what = match (r.get("msg"), r.get("exc")) {
                (Some(m), _) => m.as_str().unwrap().to_owned(),
                (None, None) => format!(
                    "{}:{}",
                    r["at"].as_str().unwrap(),
                    r["st"].as_str().unwrap()
                ),
                (None, Some(e)) => format!(
                    "{}:{}:{}",
                    r["at"].as_str().unwrap(),
                    r["st"].as_str().unwrap(),
                    e.as_str().unwrap()
                ),
            };
            (n, r["lvl"].clone(), what)
        })
        .collect()
}

/// Nested instrumented futures, each poll on a new thread: every record keeps its place in
/// the tree, and each polling thread is left with no current action (its next record is a
/// task of its own).
#[test]
fn nested_instrumented_futures_polled_on_several_threads_keep_their_tree() {
    use polling::{poll_on_thread, YieldOnce};
    let (log, mem) = logger();
    let l1 = log.clone();
    let outer = log.start_action("outer", |_| {}).detach();
    let mut fut = Box::pin(outer.instrument(async move {
        l1.info("outer 1");
        let l2 = l1.clone();
        let inner = l1.start_action("inner", |_| {}).detach();
        inner
            .instrument(async move {
                l2.info("inner 1");
                YieldOnce(false).await;
                l2.info("inner 2");
                YieldOnce(false).await;
                l2.info("inner 3");
            })
            .await;
        l1.info("outer 2");
        YieldOnce(false).await;
        l1.info("outer 3");
    }));
    let mut polls = 1;
    while !poll_on_thread(&log, &mut fut) {
        polls += 1;
    }
    assert_eq!(polls, 4);
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "outer:started"),
        (0, json!([2]), "outer 1"),
        (0, json!([3, 1]), "inner:started"),
        (0, json!([3, 2]), "inner 1"),
        (1, json!([1]), "after poll"),
        (0, json!([3, 3]), "inner 2"),
        (2, json!([1]), "after poll"),
        (0, json!([3, 4]), "inner 3"),
        (0, json!([3, 5]), "inner:succeeded"),
        (0, json!([4]), "outer 2"),
        (3, json!([1]), "after poll"),
        (0, json!([5]), "outer 3"),
        (0, json!([6]), "outer:succeeded"),
        (4, json!([1]), "after poll"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Nested instrumented futures polled on one thread and dropped mid-way on another: each
/// action ends once, `cancelled`, the inner one first; neither thread keeps an action.
#[test]
fn nested_instrumented_futures_dropped_on_another_thread_end_once() {
    use polling::{poll_on_thread, YieldOnce};
    let (log, mem) = logger();
    let l1 = log.clone();
    let outer = log.start_action("outer", |_| {}).detach();
    let mut fut = Box::pin(outer.instrument(async move {
        let l2 = l1.clone();
        let inner = l1.start_action("inner", |_| {}).detach();
        inner
            .instrument(async move {
                l2.info("inner 1");
                YieldOnce(false).await;
                l2.info("never");
            })
            .await;
        l1.info("never");
    }));
    assert!(!poll_on_thread(&log, &mut fut));
    let l3 = log.clone();
    std::thread::spawn(move || {
        drop(fut);
        l3.info("dropper after");
    })
    .join()
    .unwrap();
    log.info("main after");
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "outer:started"),
        (0, json!([2, 1]), "inner:started"),
        (0, json!([2, 2]), "inner 1"),
        (1, json!([1]), "after poll"),
        (0, json!([2, 3]), "inner:failed:cancelled"),
        (0, json!([3]), "outer:failed:cancelled"),
        (2, json!([1]), "dropper after"),
        (3, json!([1]), "main after"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// A context's text is Eliot's canonical `TASK_ID@/N/N...`: a level written with a sign or
/// leading zeros (`/+3`, `/03`) was accepted as `/3` — text that does not read back as itself,
/// and two spellings of one position.
#[test]
fn an_action_context_level_is_decimal_digits_without_sign_or_leading_zeros() {
    use logxide::logger::ActionContext;
    for bad in [
        "Ab@/+3",
        "Ab@/03",
        "Ab@/3/007",
        "Ab@/-1",
        "Ab@/3/+2",
        "Ab@/00",
        "Ab@/ 3",
    ] {
        let err = bad.parse::<ActionContext>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid action context {bad:?}: expected TASK_ID@/N/N... (a task id of 1 to 36 \
                 printable ASCII characters other than `\"` and `\\`, then positive integers \
                 in decimal digits, without sign or leading zeros)"
            ),
            "{bad}"
        );
    }
    for good in [
        "Ab@/3",
        "Ab@/10/1",
        "Ab@/18446744073709551615",
        "a@b@/1/20/300",
    ] {
        let ctx: ActionContext = good.parse().unwrap();
        assert_eq!(ctx.to_string(), good);
    }
    assert!("Ab@/18446744073709551616".parse::<ActionContext>().is_err());
}

/// Forks; the child runs `body`, writes what it returns to `report` and `_exit`s; the parent
/// waits for it (killing it after 10 s) and returns its exit code.
fn in_forked_child(report: &std::path::Path, body: impl FnOnce() -> String) -> i32 {
    // SAFETY: `fork` has no memory-safety preconditions of its own; the child only runs
    // `body` and leaves through `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            Ok(text) => std::fs::write(report, text).map_or(3, |()| 0),
            Err(_) => 2,
        };
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `waitpid` on our own child with a valid pointer to a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            assert!(libc::WIFEXITED(status), "child died by a signal");
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child hung: killed after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A process forked inside an action inherits the thread's entered actions, but not their
/// counters: the child's records took the positions the parent went on to give its own
/// (`[3]` twice in one task). Actions entered in the parent are not the child's: there its
/// records and actions start tasks of their own (with the child's own ids).
#[test]
fn a_forked_child_does_not_log_inside_the_parents_actions() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("child.json");
    let (log, mem) = logger();
    let server = log.start_action("server", |_| {});
    log.info("before fork");
    let code = in_forked_child(&report, || {
        let (child_log, child_mem) = logger();
        child_log.info("in child");
        drop(child_log.start_action("child job", |_| {}));
        child_log.flush(None).unwrap();
        child_mem.lines().join("\n")
    });
    assert_eq!(code, 0);
    log.info("after fork");
    drop(server);
    let parent = records(&log, &mem);
    let child: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let task = &parent[0]["tid"];
    assert!(parent.iter().all(|r| r["tid"] == *task));
    let levels: Vec<_> = parent.iter().map(|r| r["lvl"].clone()).collect();
    assert_eq!(levels, [json!([1]), json!([2]), json!([3]), json!([4])]);
    assert_eq!(child.len(), 3, "{child:?}");
    let child_rows: Vec<_> = child
        .iter()
        .map(|r| {
            (
                r["lvl"].clone(),
                r.get("msg").or(r.get("st")).cloned().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        child_rows,
        [
            (json!([1]), json!("in child")),
            (json!([1]), json!("started")),
            (json!([2]), json!("succeeded")),
        ]
    );
    assert!(child.iter().all(|r| r["tid"] != *task), "{child:?}");
    assert_ne!(child[0]["tid"], child[1]["tid"]);
    assert_eq!(child[1]["tid"], child[2]["tid"]);
}

/// An instrumented future polled again after its poll panicked (an executor that caught the
/// panic) panicked with "polled after completion", though it never completed.
#[test]
fn polling_an_instrumented_future_again_after_a_panic_says_so() {
    use std::future::Future;
    let (log, _mem) = logger();
    let waker = polling::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let message = |p: Box<dyn std::any::Any + Send>| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap()
    };
    let mut boom = Box::pin(log.start_action("boom", |_| {}).detach().instrument(async {
        panic!("inside");
    }));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = boom.as_mut().poll(&mut cx);
    }));
    assert_eq!(message(first.unwrap_err()), "inside");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = boom.as_mut().poll(&mut cx);
    }));
    assert_eq!(
        message(again.unwrap_err()),
        "Instrumented polled after it completed or a poll of it panicked"
    );
    let mut done = Box::pin(
        log.start_action("done", |_| {})
            .detach()
            .instrument(async {}),
    );
    assert!(done.as_mut().poll(&mut cx).is_ready());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = done.as_mut().poll(&mut cx);
    }));
    assert_eq!(
        message(again.unwrap_err()),
        "Instrumented polled after it completed or a poll of it panicked"
    );
}

/// A context from an untrusted source (a header's text, a message's JSON) had no bound on
/// its levels: one of 100 000 levels was accepted, and every record of the action continued
/// from it carried a 100 000-number `lvl`. A context has at most
/// `ActionContext::MAX_LEVELS` (1024) levels, parsed or deserialized; the error says so.
#[test]
fn an_action_context_of_more_than_1024_levels_is_an_error_that_says_the_bound() {
    use logxide::logger::ActionContext;
    assert_eq!(ActionContext::MAX_LEVELS, 1024);
    let text = |levels: usize| format!("Ab.1@{}", "/7".repeat(levels));
    let ok: ActionContext = text(1024).parse().unwrap();
    assert_eq!(ok.level(), &[7; 1024][..]);
    assert_eq!(ok.to_string(), text(1024));
    let shown = format!("{:?}…", &text(1025)[..64]);
    for levels in [1025, 1100, 100_000] {
        let err = text(levels).parse::<ActionContext>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid action context {shown} ({levels} levels): expected at most 1024 \
                 levels (TASK_ID@/N/N... with 1 to 1024 positive integers)"
            ),
            "{levels}"
        );
    }
    // The same bound for a deserialized context.
    let json = |levels: usize| json!({"task_id": "Ab.1", "level": vec![7; levels]});
    let ok: ActionContext = serde_json::from_value(json(1024)).unwrap();
    assert_eq!(ok.level().len(), 1024);
    let back: ActionContext = serde_json::from_str(&serde_json::to_string(&ok).unwrap()).unwrap();
    assert_eq!(back, ok);
    for levels in [1025, 100_000] {
        let err = serde_json::from_value::<ActionContext>(json(levels)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid action context level: more than 1024 levels (expected 1 to 1024 \
             positive integers)",
            "{levels}"
        );
        let text = json(levels).to_string();
        let err = serde_json::from_str::<ActionContext>(&text).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "invalid action context level: more than 1024 levels (expected 1 to 1024 \
                 positive integers) at line 1 column "
            ),
            "{err}"
        );
    }
}

/// A deserialized context's task id that is not one said what a task id is, but not what
/// was given; it now quotes it (its first 64 characters if longer).
#[test]
fn a_deserialized_context_with_a_bad_task_id_quotes_it() {
    use logxide::logger::ActionContext;
    let cases = [
        ("", r#""""#.to_owned()),
        ("a\"b", r#""a\"b""#.to_owned()),
        ("naïve", r#""naïve""#.to_owned()),
        ("tab\there", r#""tab\there""#.to_owned()),
        (&"x".repeat(37), format!("{:?}", "x".repeat(37))),
        (
            &"y".repeat(100),
            format!("{:?}… (100 bytes)", "y".repeat(64)),
        ),
    ];
    for (id, shown) in cases {
        let err = serde_json::from_value::<ActionContext>(json!({"task_id": id, "level": [1]}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid task id {shown}: expected 1 to 36 printable ASCII characters other \
                 than `\"` and `\\`"
            ),
            "{id}"
        );
    }
}

/// `Action::context` in a process forked inside the action reserved a position from the
/// counter the child copied from the parent: the child's context was the parent's next one
/// (`[3]` in both), so the work continued from it in the child and the parent's next record
/// shared a position. As the child's records do, its contexts start a task of their own:
/// a new task id (the child's), at level `[1]`.
#[test]
fn a_forked_childs_context_of_the_parents_action_is_a_task_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("child.json");
    let (log, mem) = logger();
    let server = log.start_action("server", |_| {});
    log.info("before fork");
    let code = in_forked_child(&report, || {
        let ctx = server.context();
        let again = server.context();
        let (child_log, child_mem) = logger();
        drop(child_log.continue_action(&ctx, "child job", |_| {}));
        child_log.flush(None).unwrap();
        let mut lines = vec![ctx.to_string(), again.to_string()];
        lines.extend(child_mem.lines());
        lines.join("\n")
    });
    assert_eq!(code, 0);
    let ctx = server.context();
    log.info("after fork");
    drop(server);
    let parent = records(&log, &mem);
    let task = parent[0]["tid"].as_str().unwrap().to_owned();
    assert_eq!(ctx.task_id().as_str(), task);
    assert_eq!(ctx.level(), &[3]);
    let levels: Vec<_> = parent.iter().map(|r| r["lvl"].clone()).collect();
    assert_eq!(levels, [json!([1]), json!([2]), json!([4]), json!([5])]);
    assert!(parent.iter().all(|r| r["tid"] == task.as_str()));

    let text = std::fs::read_to_string(&report).unwrap();
    let mut lines = text.lines();
    let child_ctx: logxide::logger::ActionContext = lines.next().unwrap().parse().unwrap();
    let child_again: logxide::logger::ActionContext = lines.next().unwrap().parse().unwrap();
    assert_ne!(child_ctx.task_id().as_str(), task, "{child_ctx}");
    assert_eq!(child_ctx.level(), &[1], "{child_ctx}");
    assert_ne!(child_again.task_id(), child_ctx.task_id());
    assert_ne!(child_again.task_id().as_str(), task);
    assert_eq!(child_again.level(), &[1]);
    let child: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let rows: Vec<_> = child
        .iter()
        .map(|r| (r["tid"].clone(), r["lvl"].clone(), r["st"].clone()))
        .collect();
    let tid = json!(child_ctx.task_id().as_str());
    assert_eq!(
        rows,
        [
            (tid.clone(), json!([1, 1]), json!("started")),
            (tid, json!([1, 2]), json!("succeeded")),
        ]
    );
}

/// A context's text that is not one was quoted whole in the error (and copied into it): a
/// bad header of megabytes made an error of megabytes. Text longer than 64 bytes is quoted
/// by its first 64, with its length; shorter text is quoted whole, as before.
#[test]
fn a_bad_action_context_is_quoted_by_its_first_64_bytes() {
    use logxide::logger::ActionContext;
    let expected = "expected TASK_ID@/N/N... (a task id of 1 to 36 printable ASCII characters \
                    other than `\"` and `\\`, then positive integers in decimal digits, \
                    without sign or leading zeros)";
    let long = format!("{}@/1", "x".repeat(1_000_000));
    let err = long.parse::<ActionContext>().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid action context {:?}… (1000003 bytes): {expected}",
            "x".repeat(64)
        )
    );
    // Cut at a character's boundary: 63 bytes of `x`, then `é` (2 bytes) would pass 64.
    let text = format!("{}é{}", "x".repeat(63), "@/1".repeat(10));
    let err = text.parse::<ActionContext>().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid action context {:?}… (95 bytes): {expected}",
            "x".repeat(63)
        )
    );
    let short = format!("{}@/0", "y".repeat(61));
    assert_eq!(short.len(), 64);
    let err = short.parse::<ActionContext>().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid action context {short:?}: {expected}")
    );
}

/// Starts and ends an action when dropped: a future's clean-up.
struct CleansUpOnDrop(Logger);

impl Drop for CleansUpOnDrop {
    fn drop(&mut self) {
        drop(self.0.start_action("cleanup", |_| {}));
    }
}

/// A detached action an instrumented future held across an `.await` (the `Send` way to hold
/// one in a spawned future) ended `succeeded` when the future was dropped unfinished, where
/// the docs say the actions it holds end `cancelled` first, as its entered `Action`s do. It
/// ends `cancelled` now; an action the future's drop starts and ends (a clean-up) still
/// succeeds.
#[test]
fn a_detached_action_held_by_a_cancelled_future_ends_cancelled() {
    use polling::{noop_waker, YieldOnce};
    use std::future::Future;
    let (log, mem) = logger();
    let l1 = log.clone();
    let outer = log.start_action("outer", |_| {}).detach();
    let mut fut = Box::pin(outer.instrument(async move {
        let _cleanup = CleansUpOnDrop(l1.clone());
        let held = l1.start_action("held", |_| {}).detach();
        let entered = l1.start_action("entered", |_| {});
        YieldOnce(false).await;
        drop(entered);
        drop(held);
    }));
    let waker = noop_waker();
    let poll = fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(poll.is_pending());
    log.info("after poll");
    drop(fut);
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "outer:started"),
        (0, json!([2, 1]), "held:started"),
        (0, json!([3, 1]), "entered:started"),
        (1, json!([1]), "after poll"),
        (0, json!([3, 2]), "entered:failed:cancelled"),
        (0, json!([2, 2]), "held:failed:cancelled"),
        (0, json!([4, 1]), "cleanup:started"),
        (0, json!([4, 2]), "cleanup:succeeded"),
        (0, json!([5]), "outer:failed:cancelled"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Starts an action while a panic unwinds and hands it, detached, to `out`.
struct StartsOnDrop(
    Logger,
    std::sync::mpsc::Sender<logxide::logger::DetachedAction>,
);

impl Drop for StartsOnDrop {
    fn drop(&mut self) {
        let _ = self.1.send(self.0.start_action("handed", |_| {}).detach());
    }
}

/// An action started while one thread unwound a panic (in a `Drop`), then dropped on
/// another thread by a panic of that thread, ended `succeeded`: "started during a panic"
/// was one flag for every thread, so the second thread's panic, which began while the action
/// ran, did not fail it. Only the unwinding of the thread that started it is left out now.
#[test]
fn a_detached_action_dropped_by_another_threads_panic_fails() {
    let (log, mem) = logger();
    let (tx, rx) = std::sync::mpsc::channel();
    let l1 = log.clone();
    let started = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = StartsOnDrop(l1, tx);
            panic!("first");
        }))
        .is_err()
    });
    assert!(started.join().unwrap());
    let handed = rx.recv().unwrap();
    let dropped = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = handed;
            panic!("second");
        }))
        .is_err()
    });
    assert!(dropped.join().unwrap());
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "handed:started"),
        (0, json!([2]), "handed:failed:panic"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Polls the instrumented future it holds to completion when dropped (an async clean-up run
/// to its end by a `Drop`, on a local executor).
struct CompletesOnDrop(std::pin::Pin<Box<logxide::logger::Instrumented<std::future::Ready<()>>>>);

impl Drop for CompletesOnDrop {
    fn drop(&mut self) {
        use std::future::Future;
        let waker = polling::noop_waker();
        let poll = self
            .0
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(poll.is_ready());
    }
}

/// An instrumented future that completes ends its action `succeeded`, as its docs say,
/// whenever it completes: it ended `failed` with `exc` `panic` when it completed during a
/// panic's unwinding (polled to its end by a `Drop`), and `failed` with `exc` `cancelled`
/// when it completed while another future was being cancelled (polled by that future's
/// drop) — the status of an action dropped unfinished, for one whose work was done.
#[test]
fn an_instrumented_future_that_completes_succeeds_during_a_panic_or_a_cancellation() {
    use polling::noop_waker;
    use std::future::Future;
    let (log, mem) = logger();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let fut = log
            .start_action("during-panic", |_| {})
            .detach()
            .instrument(std::future::ready(()));
        let _completes = CompletesOnDrop(Box::pin(fut));
        panic!("expected by the test");
    }));
    assert!(unwound.is_err());
    let inner = log
        .start_action("during-cancel", |_| {})
        .detach()
        .instrument(std::future::ready(()));
    let completes = CompletesOnDrop(Box::pin(inner));
    let mut outer = Box::pin(
        log.start_action("outer", |_| {})
            .detach()
            .instrument(async move {
                let _completes = completes;
                std::future::pending::<()>().await;
            }),
    );
    let waker = noop_waker();
    let poll = outer
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(poll.is_pending());
    drop(outer);
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "during-panic:started"),
        (0, json!([2]), "during-panic:succeeded"),
        (1, json!([1]), "during-cancel:started"),
        (2, json!([1]), "outer:started"),
        (1, json!([2]), "during-cancel:succeeded"),
        (2, json!([2]), "outer:failed:cancelled"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Runs the future it holds to its end when dropped (an async clean-up a `Drop` finishes).
struct FinishesOnDrop(std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>);

impl Drop for FinishesOnDrop {
    fn drop(&mut self) {
        let waker = polling::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        while self.0.as_mut().poll(&mut cx).is_pending() {}
    }
}

/// An action a future holds across an `.await` and ends in its own course (dropped as the
/// future goes on) ended `cancelled` when that future was run to its end by the drop of
/// another, cancelled, future: the cancellation's mark covered everything the thread dropped
/// meanwhile, the polls of a future that is not cancelled included. A poll of an
/// instrumented future is now outside any cancellation around it.
#[test]
fn an_action_a_future_ends_in_its_course_succeeds_while_another_future_is_cancelled() {
    use polling::{noop_waker, YieldOnce};
    use std::future::Future;
    let (log, mem) = logger();
    let l1 = log.clone();
    let mut inner = Box::pin(
        log.start_action("inner", |_| {})
            .detach()
            .instrument(async move {
                let held = l1.start_action("held", |_| {});
                YieldOnce(false).await;
                drop(held);
            }),
    );
    let waker = noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(inner.as_mut().poll(&mut cx).is_pending());
    let finishes = FinishesOnDrop(inner);
    let mut outer = Box::pin(
        log.start_action("outer", |_| {})
            .detach()
            .instrument(async move {
                let _finishes = finishes;
                std::future::pending::<()>().await;
            }),
    );
    assert!(outer.as_mut().poll(&mut cx).is_pending());
    drop(outer);
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "inner:started"),
        (0, json!([2, 1]), "held:started"),
        (1, json!([1]), "outer:started"),
        (0, json!([2, 2]), "held:succeeded"),
        (0, json!([3]), "inner:succeeded"),
        (1, json!([2]), "outer:failed:cancelled"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// An action a future holds across an `.await` and ends in its own course ended `failed`
/// with `exc` `panic` when a `Drop` run by a panic's unwinding polled that future to its
/// end: the panic had begun before the poll, and no panic can begin inside it (a second one
/// aborts the process), so it is no failure of the future's. It succeeds now.
#[test]
fn an_action_a_future_ends_in_its_course_succeeds_when_a_drop_runs_it_during_a_panic() {
    use polling::{noop_waker, YieldOnce};
    use std::future::Future;
    let (log, mem) = logger();
    let l1 = log.clone();
    let mut inner = Box::pin(
        log.start_action("inner", |_| {})
            .detach()
            .instrument(async move {
                let held = l1.start_action("held", |_| {});
                YieldOnce(false).await;
                drop(held);
            }),
    );
    let waker = noop_waker();
    assert!(inner
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _finishes = FinishesOnDrop(inner);
        panic!("expected by the test");
    }));
    assert!(unwound.is_err());
    let got = summary(&records(&log, &mem));
    let want: Vec<(usize, Value, String)> = [
        (0, json!([1]), "inner:started"),
        (0, json!([2, 1]), "held:started"),
        (0, json!([2, 2]), "held:succeeded"),
        (0, json!([3]), "inner:succeeded"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}

/// Each line from its `lvl` on, with the value of `dur` (the last field here) left out:
/// the bytes that do not depend on the clock or the task id.
fn from_lvl(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let from = &l[l.find("\"lvl\"").unwrap()..];
            match from.find(",\"dur\":") {
                Some(at) => {
                    let dur = &from[at + 7..from.len() - 1];
                    assert!(dur.parse::<f64>().unwrap() >= 0.0, "{l}");
                    format!("{},\"dur\":…}}", &from[..at])
                }
                None => from.to_owned(),
            }
        })
        .collect()
}

/// The end records of an instrumented future dropped unfinished — never polled, or polled
/// once — and of a detached action it held, byte for byte: `failed`, `exc` `cancelled`,
/// as the docs of `Instrumented` and `DetachedAction` say; a detached action dropped outside
/// any future succeeds. (Checked against the docs; no change was needed.)
#[test]
fn the_end_records_of_dropped_unfinished_futures_are_failed_cancelled() {
    use polling::noop_waker;
    use std::future::Future;
    let (log, mem) = logger();
    drop(
        log.start_action("never-polled", |_| {})
            .detach()
            .instrument(std::future::pending::<()>()),
    );
    let l1 = log.clone();
    let mut polled = Box::pin(
        log.start_action("polled", |_| {})
            .detach()
            .instrument(async move {
                let _held = l1.start_action("held", |_| {}).detach();
                std::future::pending::<()>().await;
            }),
    );
    let waker = noop_waker();
    assert!(polled
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(polled);
    drop(log.start_action("plain", |_| {}).detach());
    log.flush(None).unwrap();
    const CANCELLED: &str = r#""st":"failed","exc":"cancelled","reason":"the future was dropped before it completed","dur":…}"#;
    assert_eq!(
        from_lvl(&mem.lines()),
        [
            r#""lvl":[1],"at":"never-polled","st":"started"}"#.to_owned(),
            format!(r#""lvl":[2],"at":"never-polled",{CANCELLED}"#),
            r#""lvl":[1],"at":"polled","st":"started"}"#.to_owned(),
            r#""lvl":[2,1],"at":"held","st":"started"}"#.to_owned(),
            format!(r#""lvl":[2,2],"at":"held",{CANCELLED}"#),
            format!(r#""lvl":[3],"at":"polled",{CANCELLED}"#),
            r#""lvl":[1],"at":"plain","st":"started"}"#.to_owned(),
            r#""lvl":[2],"at":"plain","st":"succeeded","dur":…}"#.to_owned(),
        ]
    );
}

/// The cancellation check counts each thread's cancellations (exact, where a clock is not):
/// an action started on another thread — one that had cancelled more futures than the
/// dropping thread — and held by a future dropped unfinished ends `cancelled`, as one
/// started here does; the counts of two threads are never compared.
#[test]
fn a_detached_action_started_on_another_thread_and_held_by_a_cancelled_future_ends_cancelled() {
    let (log, mem) = logger();
    let l1 = log.clone();
    let held = std::thread::spawn(move || {
        for _ in 0..3 {
            drop(
                l1.start_action("warm-up", |_| {})
                    .detach()
                    .instrument(std::future::pending::<()>()),
            );
        }
        l1.start_action("held", |_| {}).detach()
    })
    .join()
    .unwrap();
    let l2 = log.clone();
    std::thread::spawn(move || {
        let outer = l2.start_action("outer", |_| {}).detach();
        drop(outer.instrument(async move {
            let _held = held;
            std::future::pending::<()>().await;
        }));
    })
    .join()
    .unwrap();
    let got = summary(&records(&log, &mem));
    let got: Vec<_> = got
        .into_iter()
        .filter(|(_, _, w)| !w.starts_with("warm-up"))
        .collect();
    let want: Vec<(usize, Value, String)> = [
        (3, json!([1]), "held:started"),
        (4, json!([1]), "outer:started"),
        (3, json!([2]), "held:failed:cancelled"),
        (4, json!([2]), "outer:failed:cancelled"),
    ]
    .into_iter()
    .map(|(n, l, w)| (n, l, w.to_owned()))
    .collect();
    assert_eq!(got, want);
}
