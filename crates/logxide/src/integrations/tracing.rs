//! The `tracing` ecosystem: a [`tracing_subscriber::Layer`] that turns spans into logxide
//! actions and events into logxide messages, in the same task trees as logxide's own records.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! use logxide::integrations::tracing::LogxideLayer;
//!
//! let mem = logxide::sink::MemorySink::new();
//! let logger = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
//! let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(logger.clone()));
//! // In an application: `tracing::subscriber::set_global_default(...)` once, with
//! // `LogxideLayer::global()` after `logxide::init()`.
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("db:query", table = "users");
//!     let _entered = span.enter();
//!     tracing::info!(rows = 3, "rows fetched");
//! });
//! logger.flush(None).unwrap();
//! let lines = mem.lines();
//! assert!(lines[0].contains(r#""lvl":[1],"at":"db:query","st":"started","table":"users"}"#));
//! assert!(lines[1].contains(r#""lvl":[2],"mt":"info","msg":"rows fetched","rows":3,"target":"#));
//! assert!(lines[2].contains(r#""lvl":[3],"at":"db:query","st":"succeeded","dur":"#));
//! ```
//!
//! # Spans
//!
//! A span becomes an action named after the span (`at`), with the span's fields as the fields
//! of its `started` record. That record is written when the span is **first entered** (when
//! its work starts; `dur` counts from there), or when a child span or an event with an
//! explicit parent needs it, or at the latest when the span closes (a span never entered
//! still writes `started` then its end record). Fields recorded with `Span::record` before the
//! start go on the `started` record, those recorded after it on the end record.
//!
//! When the span closes, its action ends:
//! - `failed` if the span has an `error` field other than `false` (`exc`: its `error.type` field if it has one,
//!   else `"error"`; `reason`: the `error` field's text, with its `source()` chain for an
//!   error value — either written `"***"` if the logger's [`Mask`](crate::logger::Mask)
//!   names its field);
//! - else `failed` with `exc` `panic` (`reason`: `"the thread panicked"`) if it closes
//!   during a panic — a span dropped by the unwinding, as `#[instrument]`'s span of a
//!   function that panics — as a logxide [`Action`](crate::logger::Action) dropped by a panic does
//!   (whether it was entered before the panic or not; a span *opened* during the unwinding, on
//!   the thread that unwinds — a clean-up's — is not failed by that panic, nor is one closed
//!   in the poll of an instrumented logxide future that a `Drop` makes during the unwinding:
//!   see [`DetachedAction::instrument`](crate::logger::DetachedAction::instrument); a
//!   limitation shared with actions: a span opened during an unwinding that outlives it is
//!   not failed by a later panic of that thread either, as `std` does not tell one unwinding
//!   of a thread from the next);
//! - else `failed` with `exc` `cancelled` (`reason`: `"the future was dropped before it
//!   completed"`) if it closes while an unfinished instrumented logxide future
//!   ([`Instrumented`](crate::logger::Instrumented)) is dropped, the span opened before that
//!   drop began — a span the future held, a `tracing::Instrument`ed future awaited inside it
//!   included — as the logxide actions that future held end (a span the drop opens, a
//!   clean-up's, is not cancelled by it). A `tracing::Instrument`ed future dropped unfinished
//!   outside any such drop closes its span `succeeded`: its drop is the same whether it
//!   finished or not, so the layer cannot tell (run it inside a logxide action with
//!   [`DetachedAction::instrument`](crate::logger::DetachedAction::instrument) to have its
//!   cancellation recorded);
//! - else `failed` if an event at ERROR level had the span as its (direct) parent (`exc`
//!   `"error"`; `reason`: the first such event's message);
//! - `succeeded` otherwise.
//!
//! Spans have no level here, as logxide's actions have none: every span reaching the layer
//! is written whatever the logger's threshold; filter spans with a per-layer filter
//! (`LogxideLayer::new(log).with_filter(...)`) if needed.
//!
//! While a span is entered on a thread (`Span::enter`, `in_scope`, `tracing::Instrument` for
//! every poll), its action is entered on that thread: records made there — tracing events
//! and logxide's own macros and actions alike — take its next child positions. A span can be
//! entered on several threads at once, and re-entered.
//!
//! Several layers on one subscriber (each into its own logger, each with its own per-layer
//! filter) keep a state and a task tree each: a layer's events and spans never go into
//! another layer's action of a span.
//!
//! **Parents.** A span is a child of its tracing parent (contextual or explicit) — of the
//! innermost logxide action entered on the thread inside that parent if the parent is
//! entered there (so a logxide action started inside a span keeps the spans started inside
//! it; not one entered inside another span of the layer: a span given an explicit parent
//! while a child span of that parent is entered is that child's sibling), else directly at
//! the parent's next position (an explicit parent that is not entered, or has no logxide
//! action entered inside it, a future polled on another thread). A span with no tracing parent is a child of the logxide action entered
//! on the thread where it was created, if any (an explicit `parent: None` is always a new
//! task), else a new task.
//!
//! # Events
//!
//! An event becomes a message: levels map as TRACE and DEBUG → debug, INFO → info, WARN →
//! warning, ERROR → error (the logger's threshold filters); the `message` field is `msg`, the
//! other fields keep their types (integers, floats, booleans; strings; `Debug`/`Display`
//! values as their text; errors with their `source()` chain), then the event's `target` —
//! unless the event has a field named `target`, which is then the record's `target` (the more
//! specific source wins, as a call-site field over a scope's: no line has the key twice).
//!
//! A field the event declares but does not record — an `Option` that is `None` (`tracing`
//! records no value for it) or `tracing::field::Empty` — writes nothing and hides the
//! context field of its key (bound with [`Logger::ctx`], or from a
//! [`scope`](crate::logger::scope)) from that record, as a `None` at a logxide call site
//! does: the event said the key has no value here. A span's unrecorded field hides nothing:
//! a span declares `Empty` fields to record them later (`Span::record`), so its records keep
//! the context field of that key until a value is recorded (a value recorded after the
//! start goes on the end record, over the context field).
//!
//! ```
//! # use tracing_subscriber::layer::SubscriberExt;
//! # let mem = logxide::sink::MemorySink::new();
//! # let logger = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
//! let req = logger.ctx(logxide::logger::Fields::new().with("user", "ada"));
//! let layer = logxide::integrations::tracing::LogxideLayer::new(req);
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     tracing::info!(target: "app", user = None::<&str>, "anonymous");
//!     tracing::info!(target: "app", "known");
//! });
//! logger.flush(None).unwrap();
//! assert!(mem.lines()[0].ends_with(r#""msg":"anonymous","target":"app"}"#));
//! assert!(mem.lines()[1].ends_with(r#""msg":"known","target":"app","user":"ada"}"#));
//! ```
//!
//! An event takes the next child position of the innermost action entered on the thread (its
//! span's, when that span is entered), or of its explicit parent span's action (or of the
//! logxide action entered inside that span, as for a span's parent: see **Parents**).
//!
//! A span the layer's filter leaves out (one kept by the subscriber's other layers) is
//! skipped, as it is by the spans started inside it: an event inside it — where no action of
//! the layer is entered on the thread, as in a filtered-out span entered on another thread
//! than its parent — or with it as explicit parent goes into its nearest ancestor the filter
//! keeps (and, at ERROR level, fails that one).
//!
//! ```
//! # use tracing_subscriber::layer::SubscriberExt;
//! # let mem = logxide::sink::MemorySink::new();
//! # let logger = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
//! # let layer = logxide::integrations::tracing::LogxideLayer::new(logger.clone());
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     tracing::info!(target: "app::db", "plain");
//!     tracing::info!(target: "app::db", target = "replica-2", "with a target field");
//! });
//! logger.flush(None).unwrap();
//! assert!(mem.lines()[0].ends_with(r#""msg":"plain","target":"app::db"}"#));
//! assert!(mem.lines()[1].ends_with(r#""msg":"with a target field","target":"replica-2"}"#));
//! ```
//!
//! # Spans open at shutdown
//!
//! A span still open when its logger shuts down (a span held by `main` past the logger's
//! guard, a future never finished) has its `started` record and no end record: its task is
//! *unfinished*, as Eliot leaves an action whose process stopped, and `logxide check`
//! counts it as incomplete (`logxide view` marks it `(incomplete)`). The layer writes no
//! end for it at shutdown: it cannot know how the span's work went. If the span closes
//! later, its end record is counted dropped (reason `shutdown`) by the logger's
//! [metrics](crate::logger::Logger::metrics), as every record logged after shutdown is.
//! Drop the spans (leave `main`'s span) before the guard to have them end in the file.
//!
//! Entering and exiting through the raw `Dispatch` API (`Dispatch::enter`/`exit`) follows
//! the registry: an exit on a thread that did not enter the span leaves nothing there (the
//! span stays entered on the thread that entered it), and spans exited out of order leave
//! exactly the one exited.
//!
//! # Without a logger
//!
//! With [`LogxideLayer::global`] and no global logger installed, events are counted as
//! discarded (as the macros' records are) and spans write nothing.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use smallvec::SmallVec;

use tracing::dispatcher::{Dispatch, WeakDispatch};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::encode::{debug, ActionStatus, Key, StaticKey};
use crate::logger::{
    cancelled_since, current_action, error_chain, start_detached, unwinding_ends_actions,
    with_global, with_reused, ActionRef, DetachedAction, EnteredRef, FieldValue, FieldWriter,
    Level, Logger, Owner, Parent, Stamp, Unfinished, CANCELLED,
};

/// A `tracing_subscriber::Layer` writing into a [`Logger`], or into the global logger. See
/// the [module docs](self).
///
/// ```
/// use logxide::integrations::tracing::LogxideLayer;
/// use tracing_subscriber::prelude::*;
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
/// let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("job", id = 7).entered();
///     tracing::warn!(left = 3, "slow");
/// });
/// log.flush(None)?;
/// let lines = mem.lines();
/// assert!(lines[0].ends_with(r#""lvl":[1],"at":"job","st":"started","id":7}"#));
/// assert!(lines[1].contains(r#""lvl":[2],"mt":"warning","msg":"slow","left":3"#));
/// assert!(lines[2].contains(r#""lvl":[3],"at":"job","st":"succeeded""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogxideLayer {
    logger: Option<Logger>,
    /// This layer's id: its state in a span's extensions, its entered spans, its actions.
    id: LayerId,
    /// The dispatcher the layer is part of: its spans as the registry has them, also those
    /// the layer's filter leaves out (see [`LogxideLayer::kept_span`]).
    dispatch: OnceLock<WeakDispatch>,
}

/// A layer's id, unique in the process (never 0, the owner of logxide's own actions); a layer added
/// to a subscriber takes a fresh one, so that clones added twice stay apart.
#[derive(Debug, Clone)]
struct LayerId(Owner);

impl Default for LayerId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        LayerId(NEXT.fetch_add(1, Relaxed))
    }
}

impl LogxideLayer {
    /// A layer writing into `logger`.
    ///
    /// ```
    /// use logxide::integrations::tracing::LogxideLayer;
    /// use tracing_subscriber::prelude::*;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// let subscriber = tracing_subscriber::registry().with(LogxideLayer::new(log.clone()));
    /// tracing::subscriber::with_default(subscriber, || tracing::info!(port = 8080, "started"));
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].contains(r#""mt":"info","msg":"started","port":8080"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(logger: Logger) -> Self {
        LogxideLayer {
            logger: Some(logger),
            id: LayerId::default(),
            dispatch: OnceLock::new(),
        }
    }

    /// A layer writing into the global logger (whatever [`init`](crate::init) installed, also
    /// after a re-init).
    ///
    /// ```
    /// use logxide::integrations::tracing::LogxideLayer;
    /// use tracing_subscriber::prelude::*;
    /// let mem = logxide::sink::MemorySink::new();
    /// let _guard = logxide::LoggerBuilder::new().use_env(false).sink(mem.clone()).init()?;
    /// let subscriber = tracing_subscriber::registry().with(LogxideLayer::global());
    /// tracing::subscriber::with_default(subscriber, || tracing::error!("to the global logger"));
    /// logxide::logger::flush(None)?;
    /// assert!(mem.lines()[0].contains(r#""mt":"error","msg":"to the global logger""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn global() -> Self {
        LogxideLayer {
            logger: None,
            id: LayerId::default(),
            dispatch: OnceLock::new(),
        }
    }

    fn with_logger<R>(&self, f: impl FnOnce(&Logger) -> R) -> Option<R> {
        match &self.logger {
            Some(l) => Some(f(l)),
            None => with_global(f),
        }
    }

    fn enabled(&self, level: Level) -> bool {
        match &self.logger {
            Some(l) => l.enabled(level),
            None => crate::logger::__enabled(level),
        }
    }

    /// For an event at `level` that is logged (enabled), the guard counting it dropped if
    /// formatting its message panics (see [`with_message`]).
    fn unformatted(&self, level: Level) -> Option<Unfinished<'_>> {
        self.enabled(level)
            .then(|| Unfinished(self.logger.as_ref()))
    }

    /// The span `id` as this layer sees it: itself, or if the layer's filter leaves it out
    /// (it exists for the subscriber's other layers), its nearest ancestor the filter keeps —
    /// where the spans started inside it go (`SpanRef::parent` skips the same spans).
    fn kept_span<'a, S>(&self, id: &Id, ctx: &'a Context<'_, S>) -> Option<SpanRef<'a, S>>
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        if let Some(span) = ctx.span(id) {
            return Some(span);
        }
        let dispatch = self.dispatch.get()?.upgrade()?;
        let registry = dispatch.downcast_ref::<S>()?;
        let span = registry.span(id)?;
        let kept = span.scope().skip(1).find_map(|s| ctx.span(&s.id()));
        kept
    }

    /// The span's action, started now under its parent if it was not yet.
    fn ensure_started<S>(&self, span: &SpanRef<'_, S>) -> Option<ActionRef>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        {
            let ext = span.extensions();
            let state = ext.get::<SpanStates>()?.get(self.id.0)?;
            if let Some(handle) = &state.handle {
                return Some(handle.clone());
            }
        }
        let parent_action = span.parent().and_then(|p| self.ensure_started(&p));
        let mut ext = span.extensions_mut();
        let state = ext.get_mut::<SpanStates>()?.get_mut(self.id.0)?;
        if let Some(handle) = &state.handle {
            return Some(handle.clone());
        }
        let parent = match (&state.origin, &parent_action) {
            (Origin::Span, Some(action)) | (Origin::Created(Some(action)), _) => {
                Parent::Action(action)
            }
            _ => Parent::NewTask,
        };
        let fields = &state.fields;
        let action = self.with_logger(|logger| {
            start_detached(logger, self.id.0, Cow::Borrowed(span.name()), parent, |f| {
                fields.write(f, &[])
            })
        })?;
        let handle = action.share();
        state.handle = Some(handle.clone());
        state.action = Some(action);
        Some(handle)
    }
}

/// The logxide level of a `tracing` level.
///
/// ```
/// use logxide::integrations::tracing::level;
/// use logxide::Level;
/// assert_eq!(level(&tracing::Level::WARN), Level::Warning);
/// assert_eq!(level(&tracing::Level::TRACE), Level::Debug);
/// ```
pub fn level(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

/// Where a span's action goes when it has no tracing parent.
enum Origin {
    /// Under its tracing parent's action.
    Span,
    /// Under the logxide action entered where the span was created, or a new task.
    Created(Option<ActionRef>),
}

/// The states of one span of the layers it reaches (one per `LogxideLayer` of the
/// subscriber, by layer id), in its extensions.
#[derive(Default)]
struct SpanStates(SmallVec<[(Owner, SpanState); 1]>);

impl SpanStates {
    fn get(&self, layer: Owner) -> Option<&SpanState> {
        self.0.iter().find(|(l, _)| *l == layer).map(|(_, s)| s)
    }

    fn get_mut(&mut self, layer: Owner) -> Option<&mut SpanState> {
        self.0.iter_mut().find(|(l, _)| *l == layer).map(|(_, s)| s)
    }

    fn remove(&mut self, layer: Owner) -> Option<SpanState> {
        let i = self.0.iter().position(|(l, _)| *l == layer)?;
        Some(self.0.remove(i).1)
    }
}

/// A layer's state of one span.
struct SpanState {
    /// Fields recorded before the start: the `started` record's.
    fields: Recorded,
    /// Fields recorded after the start: the end record's.
    late: Recorded,
    origin: Origin,
    /// The action once started (taken when it ends).
    action: Option<DetachedAction>,
    /// The action once started, shared with the threads that enter it.
    handle: Option<ActionRef>,
    /// The message of the first ERROR event inside the span.
    error_event: Option<String>,
    /// The thread that opened the span, if it was unwinding a panic then (a clean-up's
    /// span): that panic does not fail it. (Its action starts later, at its first enter or
    /// its close, so the action's own record of this would miss a span opened before the
    /// panic and started during the unwinding.)
    opened_unwinding: Option<std::thread::ThreadId>,
    /// When the span was opened among its thread's cancellations: closed by the drop of an
    /// unfinished instrumented logxide future that began after, the span was held by it
    /// (see [`cancelled_since`]). (Not its action's: that starts later.)
    opened: Stamp,
}

impl SpanState {
    /// The text of a field recorded before or after the start.
    /// The field `key`'s value: recorded late, else given at the span's creation.
    fn value(&self, key: &str) -> Option<&Value> {
        self.late.get(key).or_else(|| self.fields.get(key))
    }

    fn text(&self, key: &str) -> Option<String> {
        self.value(key).map(|v| match v {
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A field value kept until the record that writes it.
#[derive(Debug)]
enum Value {
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I64(v) => v.fmt(f),
            Value::U64(v) => v.fmt(f),
            Value::I128(v) => v.fmt(f),
            Value::U128(v) => v.fmt(f),
            Value::F64(v) => v.fmt(f),
            Value::Bool(v) => v.fmt(f),
            Value::Str(v) => v.fmt(f),
        }
    }
}

/// A span's recorded fields, in the order first recorded (a field recorded again keeps its
/// place and takes the new value).
#[derive(Default)]
struct Recorded(Vec<(&'static str, Value)>);

impl Recorded {
    fn set(&mut self, key: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Writes the fields but those named in `skip`.
    fn write(&self, f: &mut FieldWriter<'_, '_>, skip: &[&str]) {
        for (key, value) in &self.0 {
            if skip.contains(key) {
                continue;
            }
            match value {
                Value::I64(v) => f.field(key, v),
                Value::U64(v) => f.field(key, v),
                Value::I128(v) => f.field(key, v),
                Value::U128(v) => f.field(key, v),
                Value::F64(v) => f.field(key, v),
                Value::Bool(v) => f.field(key, v),
                Value::Str(v) => f.field(key, v.as_str()),
            }
        }
    }
}

impl Visit for Recorded {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.set(field.name(), Value::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.set(field.name(), Value::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), Value::Str(error_chain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `write!`, not `format!` (which panics when a `Debug`, or the `Display` of a `%x`
        // field, fails on its own): the text is what it wrote so far, as for event fields.
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.set(field.name(), Value::Str(text));
    }
}

/// Writes an event's fields straight into its record, skipping `message`; notes whether
/// one is named `target`.
struct EventFields<'a, 'e, 'b> {
    f: &'a mut FieldWriter<'e, 'b>,
    /// A field named `target` was written: the event's own `target` is left out.
    has_target: bool,
}

impl EventFields<'_, '_, '_> {
    #[inline]
    fn field<V: FieldValue + ?Sized>(&mut self, field: &Field, value: &V) {
        // `message` is the record's `msg`, whatever its type (see `Message`).
        if field.name() == "message" {
            return;
        }
        self.has_target |= field.name() == "target";
        self.f.field(key(field), value);
    }
}

impl Visit for EventFields<'_, '_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, &value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, &value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, &value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() != "message" {
            self.field(field, &error_chain(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &debug(value));
    }
}

/// Hides the context fields of the keys `event` declares but did not record (a `None`, a
/// `field::Empty`: `tracing` records no value for them), as a logxide call-site `None`
/// hides them. The recorded ones were hidden as they were written: hiding them again
/// changes nothing, so every declared field but `message` (the record's `msg`) is marked.
#[inline]
fn hide_unrecorded(event: &Event<'_>, f: &mut FieldWriter<'_, '_>) {
    if !f.has_context() {
        return;
    }
    for field in event.fields() {
        if field.name() != "message" {
            f.absent(Key::from(field.name()));
        }
    }
}

/// The key of an event field, spelled once per field name (see
/// [`interned_static`](crate::encode::key::interned_static): `tracing`'s field names are
/// `'static` strings of the call sites) — instead of checking and spelling the key, and
/// hashing it for the mask, at every event (measured: about 180 instructions per field).
fn key(field: &Field) -> Key<'static> {
    let name: &'static str = field.name();
    match crate::encode::key::interned_static(name) {
        Some(k) => Key::from(k),
        None => Key::from(name),
    }
}

/// Finds an event's `message` field and writes its text.
struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

thread_local! {
    /// Event messages are written here (reused).
    static MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The spans entered on this thread by the layers (by layer id), innermost last, each
    /// keeping its action entered.
    static ENTERED: RefCell<Vec<(Owner, Id, EnteredRef)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the event's message. `unformatted`: the guard of an event that is logged,
/// counting it dropped (reason panicked) if formatting its message panics — forgotten once
/// it is formatted, before `f` (the logger's own guard counts a panic there).
fn with_message<R>(
    event: &Event<'_>,
    unformatted: Option<Unfinished<'_>>,
    f: impl FnOnce(&str) -> R,
) -> R {
    // The thread's reused buffer, or a fresh one: a field's `Debug` that logs while the
    // message is being formatted, or a thread being torn down.
    with_reused(&MESSAGE, 0, |text| {
        event.record(&mut Message(text));
        std::mem::forget(unformatted);
        f(text)
    })
}

impl<S> Layer<S> for LogxideLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_layer(&mut self, _subscriber: &mut S) {
        self.id = LayerId::default();
        // A clone of a layer already registered gets its own subscriber's dispatcher.
        self.dispatch = OnceLock::new();
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Recorded::default();
        attrs.record(&mut fields);
        let origin = if span.parent().is_some() {
            Origin::Span
        } else if attrs.is_contextual() {
            Origin::Created(current_action(self.id.0))
        } else {
            Origin::Created(None)
        };
        let state = SpanState {
            fields,
            late: Recorded::default(),
            origin,
            action: None,
            handle: None,
            error_event: None,
            opened_unwinding: std::thread::panicking().then(|| std::thread::current().id()),
            opened: Stamp::now(),
        };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanStates>() {
            Some(states) => states.0.push((self.id.0, state)),
            None => ext.insert(SpanStates(SmallVec::from_buf([(self.id.0, state)]))),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // Recorded before the span's extensions are locked: a value's `Debug` may log an
        // event inside the span, or record into it.
        let mut recorded = Recorded::default();
        values.record(&mut recorded);
        let mut ext = span.extensions_mut();
        if let Some(state) = ext
            .get_mut::<SpanStates>()
            .and_then(|s| s.get_mut(self.id.0))
        {
            let into = if state.handle.is_some() {
                &mut state.late
            } else {
                &mut state.fields
            };
            for (key, value) in recorded.0 {
                into.set(key, value);
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(action) = self.ensure_started(&span) {
            let entered = action.enter();
            // Without the list (in use, or destroyed with the thread's locals), the action
            // is left again at once: `entered` drops here.
            let _ = ENTERED.try_with(|e| {
                if let Ok(mut e) = e.try_borrow_mut() {
                    e.push((self.id.0, id.clone(), entered));
                }
            });
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let left = ENTERED.try_with(|e| {
            let mut e = e.try_borrow_mut().ok()?;
            e.iter()
                .rposition(|(layer, entered, _)| *layer == self.id.0 && entered == id)
                .map(|i| e.remove(i))
        });
        drop(left);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        self.ensure_started(&span);
        let mut ext = span.extensions_mut();
        let Some(mut state) = ext
            .get_mut::<SpanStates>()
            .and_then(|s| s.remove(self.id.0))
        else {
            return;
        };
        drop(ext);
        let Some(action) = state.action.take() else {
            return;
        };
        // The `error` and `error.type` fields become `reason` and `exc`: hidden like the
        // fields they come from when the logger masks their names.
        let hide = |key: &str, text: Option<String>| match text {
            Some(_) if action.is_masked(key) => Some("***".to_owned()),
            text => text,
        };
        // A span dropped by a panic's unwinding fails as a panic, as an `Action` does (not
        // one opened during the unwinding, on the thread that unwinds: a clean-up's).
        const PANIC: (&str, &str) = ("panic", "the thread panicked");
        // (`error = false`, the flag convention's "no error", is no failure: it stays a field.)
        let error = match state.value("error") {
            Some(Value::Bool(false)) => None,
            _ => hide("error", state.text("error")),
        };
        let by_error_field = error.is_some();
        // (Not inside the poll of an instrumented future a `Drop` makes during the unwinding:
        // a span that future closes in its course is not failed by that panic.)
        let panicked = !by_error_field
            && unwinding_ends_actions()
            && state.opened_unwinding != Some(std::thread::current().id());
        // Closed by the drop of the unfinished future that held it, as logxide's actions that
        // future held end (not one the drop opened: a clean-up's).
        let cancelled = !by_error_field && !panicked && cancelled_since(state.opened);
        let ended = match (panicked, cancelled) {
            (true, _) => Some(PANIC),
            (false, true) => Some(CANCELLED),
            (false, false) => None,
        };
        let reason = match ended {
            Some((_, reason)) => Some(reason.to_owned()),
            None => error.or(state.error_event.take()),
        };
        match reason {
            Some(reason) => {
                let exc = match ended {
                    Some((exc, _)) => Some(exc.to_owned()),
                    None => hide("error.type", state.text("error.type")),
                };
                let exc = exc.as_deref().unwrap_or("error");
                // The fields that became the `reason` and the `exc` are not written again;
                // the others stay (an `error = false`, an `error.type` beside a panic).
                let used: &[&str] = match (by_error_field, ended.is_some()) {
                    (true, _) => &["error", "error.type"],
                    (false, false) => &["error.type"],
                    (false, true) => &[],
                };
                action.end_with(ActionStatus::Failed, Some((exc, &reason)), |f| {
                    state.late.write(f, used);
                });
            }
            None => action.end_with(ActionStatus::Succeeded, None, |f| {
                state.late.write(f, &[]);
            }),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = level(event.metadata().level());
        // A contextual event goes into the innermost action entered here; where this layer
        // has none entered (the current span is one its filter leaves out, entered on this
        // thread, inside a span entered on another), into the nearest span it keeps. The
        // innermost action is looked for once: its position is taken from it at the end.
        let current = match event.is_contextual() {
            true => current_action(self.id.0),
            false => None,
        };
        let entered_here = current.is_some();
        let span = if event.is_root() {
            None
        } else if event.is_contextual() {
            // When entered here, only needed to mark a failure. (Outside any span, one look
            // at the current span suffices.)
            let current = ctx.current_span();
            match current.id() {
                Some(id) if level == Level::Error || !entered_here => {
                    ctx.lookup_current().or_else(|| self.kept_span(id, &ctx))
                }
                _ => None,
            }
        } else {
            event.parent().and_then(|id| self.kept_span(id, &ctx))
        };
        // The message, when it was formatted already for the span's failure: a `Display`
        // runs once per event (one that logs writes its record once).
        let mut formatted: Option<String> = None;
        if level == Level::Error {
            if let Some(span) = &span {
                let unset = span
                    .extensions()
                    .get::<SpanStates>()
                    .and_then(|s| s.get(self.id.0))
                    .is_some_and(|state| state.error_event.is_none());
                if unset {
                    // Formatted before the span's extensions are locked: the message's
                    // `Display` may log an event inside the span, or record into it.
                    let logged = self.unformatted(level);
                    let message = with_message(event, logged, str::to_owned);
                    let mut ext = span.extensions_mut();
                    if let Some(state) = ext
                        .get_mut::<SpanStates>()
                        .and_then(|s| s.get_mut(self.id.0))
                    {
                        if state.error_event.is_none() {
                            state.error_event = Some(message.clone());
                        }
                    }
                    formatted = Some(message);
                }
            }
        }
        if !self.enabled(level) {
            return;
        }
        let span_action = match &span {
            Some(span) if !entered_here => self.ensure_started(span),
            _ => None,
        };
        let parent = match (&span_action, &current) {
            (Some(action), _) => Parent::Action(action),
            (None, Some(current)) => Parent::Innermost(current),
            (None, None) => Parent::NewTask,
        };
        let target = event.metadata().target();
        let log = |msg: &str| {
            let fields = |f: &mut FieldWriter<'_, '_>| {
                let mut visitor = EventFields {
                    f,
                    has_target: false,
                };
                event.record(&mut visitor);
                hide_unrecorded(event, visitor.f);
                // A field named `target` wins over the event's target (one key per line).
                if !visitor.has_target {
                    const TARGET: StaticKey = StaticKey::new("target", ",\"target\":");
                    visitor.f.field(Key::from(&TARGET), target);
                }
            };
            let written =
                self.with_logger(|logger| logger.log_in(parent, self.id.0, level, msg, fields));
            if written.is_none() {
                // No global logger: counted and reported as the macros' records are — here,
                // not by logging it through the macros, which would look for the logger
                // again and could find one an `init` installed meanwhile: it would get the
                // message without the event's fields, neither written whole nor discarded.
                crate::logger::discarded(1);
            }
        };
        match &formatted {
            Some(msg) => log(msg),
            None => with_message(event, self.unformatted(level), log),
        }
    }
}
