//! The caller's side of a log call allocates nothing in the common case: a record of each
//! kind of field, inside actions, scopes and derived loggers, through the async writer to a
//! file. Counted by a global allocator that counts this thread's allocations while armed.
//!
//! (What may allocate, and is left out of the counted windows: the first record on a
//! thread — its lane, its buffers —, starting an action or a scope, deriving a logger, a
//! message that is not a literal of `checkpoint!`, a lane's ring growing under a backlog,
//! which the flush between rounds keeps from happening here.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv4Addr;

use logxide::logger::{scope, Fields};
use logxide::{Level, Logger};

/// Counts the allocations of the thread that armed it, and forwards everything to the
/// system allocator.
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // (`try_with`: a thread's allocations while its thread-locals are torn down.)
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// contract `GlobalAlloc` asks of an allocator is `System`'s; the counting touches only
// const-initialized thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations this thread makes in `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.set(0);
    ARMED.set(true);
    f();
    ARMED.set(false);
    COUNT.get()
}

/// Calls `f` 100 times while counting, 20 rounds, flushing between rounds (so that no lane
/// grows); returns the allocations counted. A first round warms the thread up uncounted.
fn counted(log: &Logger, mut f: impl FnMut(u64)) -> u64 {
    for i in 0..100 {
        f(i);
    }
    log.flush(None).unwrap();
    let mut total = 0;
    for round in 0..20 {
        total += allocations(|| {
            for i in 0..100 {
                f(round * 100 + i);
            }
        });
        log.flush(None).unwrap();
    }
    total
}

/// An async logger at info onto a file in a new directory (kept while the guard lives).
fn file_logger() -> (Logger, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alloc.log");
    let log = Logger::builder()
        .use_env(false)
        .level(Level::Info)
        .target(&path)
        .build()
        .unwrap();
    (log, path, dir)
}

struct Point {
    x: i32,
    y: i32,
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[derive(serde::Serialize)]
struct Query<'a> {
    table: &'a str,
    rows: u32,
}

#[test]
fn a_log_call_allocates_nothing_on_the_callers_thread() {
    // The counter counts (else this test could not fail).
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
    let (log, path, _dir) = file_logger();
    assert!(log.is_async());
    let addr = Ipv4Addr::LOCALHOST;
    let point = Point { x: 3, y: -4 };
    let name = String::from("ada");
    let check = |what: &str, f: &mut dyn FnMut(u64)| {
        let n = counted(&log, f);
        assert_eq!(n, 0, "{what}: {n} allocations in 2000 calls");
    };

    check(
        "a literal message",
        &mut |_| logxide::info!(logger: log, "ready"),
    );
    check("scalar fields", &mut |i| {
        logxide::info!(logger: log, "request handled",
            user_id = i, latency_ms = i as f64 * 0.25, path = "/api/v1/items",
            ok = true, grade = 'A', small = i as u8, wide = -(i as i128), ratio = 0.5f32,
            missing = None::<u32>, present = Some(i));
    });
    check("Display, Debug and serde fields", &mut |i| {
        logxide::warning!(logger: log, "captured", from = %addr, at = %point,
            v = ?(i, "x"), q = logxide::encode::serde(&Query { table: "users", rows: 2 }));
    });
    check("a message that is not a literal", &mut |_| {
        logxide::info!(logger: log, name.as_str(), n = 1);
    });
    check("a literal checkpoint", &mut |i| {
        logxide::checkpoint!(logger: log, "loaded", n = i);
    });
    check("a level below the threshold", &mut |i| {
        logxide::debug!(logger: log, "hidden", n = i);
    });
    let child = log.ctx(Fields::new().with("service", "api").with("shard", 7));
    check("a derived logger's bound fields", &mut |i| {
        logxide::info!(logger: child, "bound", n = i);
    });
    {
        let _s = scope(Fields::new().with("request", "r-1"));
        check("inside a scope", &mut |i| {
            logxide::info!(logger: log, "scoped", n = i);
        });
    }
    {
        let _outer = logxide::start_action!(logger: log, "http:request", path = "/");
        let _inner = logxide::start_action!(logger: log, "db:query");
        check("inside nested actions", &mut |i| {
            logxide::info!(logger: log, "row", n = i);
        });
    }
    log.flush(None).unwrap();
    let m = log.metrics();
    assert_eq!(m.enqueued, m.written, "{m:?}");
    assert_eq!(m.dropped + m.failed, 0, "{m:?}");
    let lines = std::fs::read_to_string(&path).unwrap();
    for line in lines.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    // Eight kinds that write (100 calls to warm up, 2000 counted each), and the two actions'
    // starts and ends.
    assert_eq!(lines.lines().count(), 8 * 2100 + 4);
    assert_eq!(m.written, 8 * 2100 + 4);
}

/// Records through the bridges: a `tracing` event (inside a span too) and a `log` record,
/// with key-values.
#[cfg(all(feature = "tracing", feature = "log"))]
#[test]
fn a_bridged_event_allocates_nothing_on_the_callers_thread() {
    use tracing_subscriber::layer::SubscriberExt;
    let (log, path, _dir) = file_logger();
    let subscriber = tracing_subscriber::registry().with(
        logxide::integrations::tracing::LogxideLayer::new(log.clone()),
    );
    log::set_boxed_logger(Box::new(logxide::integrations::log::LogBridge::new(
        log.clone(),
    )))
    .unwrap();
    log::set_max_level(log::LevelFilter::Info);
    tracing::subscriber::with_default(subscriber, || {
        let n = counted(&log, |i| {
            tracing::info!(
                user_id = i,
                latency_ms = 0.25,
                path = "/api",
                "request handled"
            );
        });
        assert_eq!(n, 0, "a tracing event: {n} allocations in 2000 calls");
        let span = tracing::info_span!("http:request", method = "GET");
        let _entered = span.enter();
        let n = counted(&log, |i| {
            tracing::warn!(attempt = i, "retrying {}", "db1");
        });
        assert_eq!(
            n, 0,
            "a tracing event in a span: {n} allocations in 2000 calls"
        );
    });
    let n = counted(&log, |i| {
        log::info!(user_id = i, ok = true; "connected to {} in {}ms", "db1", 12);
    });
    assert_eq!(n, 0, "a log record: {n} allocations in 2000 calls");
    log.flush(None).unwrap();
    let m = log.metrics();
    // Three kinds (100 calls to warm up and 2000 counted each) and the span's start and end.
    assert_eq!(m.written, 3 * 2100 + 2, "{m:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().lines().count(),
        3 * 2100 + 2
    );
}
