//! What a record can hold, in the `eliot` format (Eliot's long key names, for Eliot's own
//! tools) with UUID4 task ids: typed fields, `Display`/`Debug` captures, a serde value as
//! nested JSON, `Option` (None omitted), a checkpoint, an error with its `source()` chain,
//! and an action carried across `.await` points by a future wrapper.
//!
//! ```text
//! cargo run -p logxide --example formats
//! ```

#[macro_use]
mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use logxide::encode::{serde, Format};
use logxide::{checkpoint, exception, info, start_action, LoggerBuilder, TaskIdMode};

#[derive(serde::Serialize)]
struct Order {
    id: u64,
    items: Vec<&'static str>,
    password: &'static str, // masked at any depth
}

/// A failure with a cause, for `exception!`.
#[derive(Debug)]
struct LoadError(std::io::Error);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot load the price list")
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A future that is pending once before it completes: an `.await` point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// The smallest executor: polls `future` on this thread until it completes.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("logxide-formats.log");
    let guard = LoggerBuilder::new()
        .target(&path)
        .format(Format::Eliot)
        .task_id_mode(TaskIdMode::Uuid)
        .init()?;

    let addr = std::net::Ipv4Addr::new(10, 0, 0, 7);
    let order = Order {
        id: 42,
        items: vec!["tea", "scones"],
        password: "hunter2",
    };
    info!(
        "typed fields",
        count = 3u16,
        ratio = 0.25,
        ok = true,
        grade = 'A',
        peer = %addr,
        backoff = ?std::time::Duration::from_millis(1500),
        order = serde(&order),
        coupon = None::<&str>,
        note = Some("\"quoted\"\n and a control \u{1} char"),
    );
    checkpoint!("prices loaded", entries = 128);
    let err = LoadError(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "prices.csv",
    ));
    exception!(&err, "falling back to cached prices");

    // An action followed across `.await` points: records logged while the future runs are
    // inside it, and it ends when the future completes.
    let fetch = start_action!("http:fetch", url = "https://example.com/prices").detach();
    block_on(fetch.instrument(async {
        info!("request sent");
        YieldOnce(false).await;
        info!("response received", status = 200);
    }));

    drop(guard);
    say!("{}:", path.display());
    put!("{}", std::fs::read_to_string(&path)?);
    Ok(())
}
