//! Actions: typed, timed units of work that form task trees (Eliot's causal tracing).
//!
//! An action writes a `started` record when it begins and a `succeeded` or `failed` record
//! (with its duration `dur`) when it ends. Records logged while an action is *entered* on a
//! thread belong to it: they share its task id and take the next child position of its task
//! level (see the crate docs for the numbering). A child action occupies one position of its
//! parent.
//!
//! - [`Action`] is the guard returned by [`start_action!`](crate::start_action) and
//!   [`Logger::start_action`](super::Logger::start_action): it is entered on the current
//!   thread, ends `succeeded` when dropped normally and `failed` when dropped during a panic
//!   (one that began while it ran: an action a `Drop` starts during the unwinding ends as
//!   without it, and so does one an instrumented future ends in a poll a `Drop` makes then —
//!   a detached one dropped by another thread's panic fails) or ended with
//!   [`Action::fail`]. Limitation: an action a `Drop` starts during the unwinding and hands
//!   on (detached, stored) so that it outlives that panic is not failed by a *later* panic
//!   of the same thread either — it ends `succeeded` — as `std` does not tell one unwinding
//!   of a thread from the next (the thread is "panicking" in both).
//! - [`Action::detach`] turns it into a [`DetachedAction`] (`Send`) that can move to another
//!   thread and be [entered](DetachedAction::enter) there, or run a future with
//!   [`DetachedAction::instrument`] (entered during each poll, like `tracing::Instrument`).
//! - [`Action::context`] gives a small serializable [`ActionContext`] for continuing the task
//!   in another thread or process with [`Logger::continue_action`](super::Logger::continue_action).
//! - A process forked (`fork()`) inside an action inherits the thread's entered actions but
//!   not their numbering, which goes on in the parent: in the child they are no parent of
//!   anything — its records, actions and [contexts](Action::context) start tasks of their
//!   own (pass an [`Action::context`] taken before the fork to continue the task there).
//!
//! Pitfall: the entered action is the thread's, not a logger's. A record logged through
//! another [`Logger`] (one built for a second file, say) while an action of the first is
//! entered takes a position in that action's task all the same, so the second file holds
//! records of a task whose start and end are in the first (`logxide check` reports them as
//! belonging to no started action). Log a separate concern outside the action, or continue
//! it as a task of its own.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::fields::FieldWriter;
use super::level::Level;
use super::task::{new_task_id, TaskId, TaskIdMode};
use super::Logger;
use crate::encode::ActionStatus;

/// A task level: the position of a record in its task tree.
pub(crate) type LevelPath = SmallVec<[u64; 8]>;

/// Where the next record goes: its task and its level.
pub(crate) struct Position {
    pub(crate) task_id: TaskId,
    pub(crate) level: LevelPath,
}

pub(crate) struct ActionState {
    task_id: TaskId,
    /// The action's own position in its parent (empty for a task's root action).
    prefix: LevelPath,
    /// The next child position (the `started` record took 1).
    next: AtomicU64,
    action_type: Cow<'static, str>,
    /// When it started: its `dur` counts from here.
    start: Instant,
    /// Where it started among its thread's cancellations (see
    /// [`ActionState::dropped_by_cancellation`]).
    stamp: Stamp,
    logger: Logger,
    ended: AtomicBool,
    /// The future holding the action's guard was dropped unfinished (see [`Instrumented`]):
    /// a guard dropped without a panic ends it `cancelled`, not `succeeded`.
    cancelled: AtomicBool,
    /// The thread that started the action, if it was unwinding a panic then (in a `Drop`
    /// run by it): no later panic of that thread can end it during that unwinding (a second
    /// panic aborts the process), so its unwinding at the action's end is no failure of the
    /// action's own. (A thread, not a flag: another thread that panics while the action runs,
    /// and drops it — a detached action handed to it — fails it.) Inexact for an action that
    /// outlives that unwinding: a later panic of the same thread, after the first was caught,
    /// is taken for it (`std` gives no count of a thread's panics to tell them apart).
    started_panicking: Option<std::thread::ThreadId>,
    /// The [fork generation](super::fork) of the process that started it. A forked child
    /// inherits the thread's entered actions but not their counters, which go on in the
    /// parent: there they are no parent of anything (see [`ActionState::is_ours`]).
    /// [`NO_PARENT`] for an action whose records go nowhere ([`start_discarded`]).
    generation: u64,
    /// Who started it: [`NATIVE`], or the id of the `tracing` layer whose span it is.
    owner: Owner,
}

/// Who started an action: [`NATIVE`] (logxide's own API) or a `tracing` layer's id.
pub(crate) type Owner = u64;

/// The owner of the actions of logxide's own API, and the viewer that sees every action.
pub(crate) const NATIVE: Owner = 0;

impl ActionState {
    /// Whether records and actions of `viewer` may go inside this action: every action for
    /// [`NATIVE`]; for a `tracing` layer, logxide's own actions and its own spans' (another
    /// layer's span action, entered on the thread for the same span, belongs to that
    /// layer's tree and logger).
    fn visible_to(&self, viewer: Owner) -> bool {
        viewer == NATIVE || self.owner == NATIVE || self.owner == viewer
    }
}

impl ActionState {
    /// False in a process forked after the action started: its positions are the parent's
    /// to give (the child's copy of the counter would give them again), so the child's
    /// records and actions start tasks of their own instead of going inside it.
    #[inline]
    fn is_ours(&self) -> bool {
        self.generation == super::fork::current()
    }

    fn child_position(&self) -> Position {
        let mut level = self.prefix.clone();
        level.push(self.next.fetch_add(1, Relaxed));
        Position {
            task_id: self.task_id,
            level,
        }
    }

    /// Writes the end record once (later calls do nothing).
    fn end(&self, status: ActionStatus, error: Option<(&str, &str)>) {
        self.end_with(status, error, |_| {});
    }

    /// Writes the end record once, with `fields` after `exc`, `reason` and `dur`.
    fn end_with(
        &self,
        status: ActionStatus,
        error: Option<(&str, &str)>,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        if self.ended.swap(true, Relaxed) {
            return;
        }
        let pos = self.child_position();
        let dur = self.start.elapsed().as_secs_f64();
        // A failed action's end is an error; every other action record is info.
        let level = match status {
            ActionStatus::Failed => Level::Error,
            _ => Level::Info,
        };
        self.logger.emit(
            At::Pos(&pos),
            level,
            |enc| enc.action(&self.action_type, status),
            |f| {
                // logxpy's order: `exc`, `reason`, then `dur`.
                let enc = f.encoder();
                if let Some((exc, reason)) = error {
                    enc.exception(exc);
                    enc.reserved_field("reason", reason);
                }
                enc.reserved_field("dur", &dur);
                fields(f);
            },
        );
    }

    /// Ends the action `failed` for a panic (`exc` `panic`).
    fn end_panicked(&self) {
        self.end(ActionStatus::Failed, Some(("panic", "the thread panicked")));
    }

    /// Ends the action `failed` with `exc` `cancelled`: the future it ran in was dropped.
    fn end_cancelled(&self) {
        self.end(ActionStatus::Failed, Some(CANCELLED));
    }

    /// Whether the thread unwinds a panic that began while this action ran: it ends the
    /// action `failed`. An action started during the unwinding (by a `Drop`) ends on that
    /// thread as if no panic were under way; dropped by a panic of another thread, it fails.
    fn ended_by_panic(&self) -> bool {
        unwinding_ends_actions() && self.started_panicking != Some(std::thread::current().id())
    }

    /// Whether this thread is dropping an unfinished [`Instrumented`] future that began
    /// dropping after this action started: the future held the action (an `Action` entered
    /// across an `.await` is also marked [`cancelled`](Self::cancelled); a `DetachedAction`,
    /// the `Send` way to hold one, is found only this way). An action started during the
    /// drop (a clean-up's) is not cancelled by it, nor is one an instrumented future the drop
    /// polls ends in that poll (see [`Cancelling::suspend`]).
    ///
    /// Exact, whatever the clock: "after" is counted in the thread's cancellations (see
    /// [`Stamp`]), not read from a clock whose readings repeat within its tick. An action
    /// started on another thread was held: the drop's own clean-up starts its actions here.
    fn dropped_by_cancellation(&self) -> bool {
        cancelled_since(self.stamp)
    }

    fn end_on_drop(&self) {
        if self.ended_by_panic() {
            self.end_panicked();
        } else if self.cancelled.load(Relaxed) || self.dropped_by_cancellation() {
            self.end_cancelled();
        } else {
            self.end(ActionStatus::Succeeded, None);
        }
    }
}

/// The `exc` and `reason` of an action (or a `tracing` span's) ended by the drop of the
/// unfinished future that held it.
pub(crate) const CANCELLED: (&str, &str) =
    ("cancelled", "the future was dropped before it completed");

/// Whether this thread is dropping an unfinished [`Instrumented`] future that began to drop
/// after `stamp` was taken (outside the polls that drop makes: see [`Cancelling::suspend`]):
/// what was made before and ends now (an action, a `tracing` span's action) was held by that
/// future, and is cancelled with it. See [`ActionState::dropped_by_cancellation`].
pub(crate) fn cancelled_since(stamp: Stamp) -> bool {
    CANCELLING
        .try_with(|c| c.get().is_some_and(|since| stamp.is_before(since)))
        .unwrap_or(false)
}

thread_local! {
    /// The actions entered on this thread, innermost last.
    ///
    /// Every access is a `try_with`: a record may be logged, or an action started, entered
    /// or left, while the thread's locals are destroyed (by another thread-local's `Drop`),
    /// where `with` panics — and a panic there aborts the process. Once the stack is gone,
    /// the thread has no current action: a record starts a task of its own, and an action
    /// started then is a new task that is not entered (its records are its own: `started`,
    /// then its end).
    static STACK: RefCell<Vec<Arc<ActionState>>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// When the innermost unfinished [`Instrumented`] future this thread is dropping began
    /// to drop: the thread's cancellation count then, that drop's included (see
    /// [`Stamp`]); `None` outside such a drop, and during an instrumented future's poll.
    static CANCELLING: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

thread_local! {
    /// This thread's number (0 until [`Stamp::now`] first gives it one) and how many
    /// unfinished [`Instrumented`] futures began to drop on it ([`Cancelling::begin`]).
    static CANCELS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Where something happened among its thread's cancellations: the thread's number, and how
/// many cancellations had begun on it before. Exact where a clock is not (two readings in one
/// tick are equal), and per thread: taking one costs a thread-local read, with no shared
/// counter to contend for (a thread takes its number from one once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The thread's number; 0 where the thread's locals could not be read.
    thread: u64,
    /// Its cancellations begun before.
    cancels: u64,
}

impl Stamp {
    /// This thread's stamp now.
    pub(crate) fn now() -> Stamp {
        CANCELS
            .try_with(|c| {
                let (mut thread, cancels) = c.get();
                if thread == 0 {
                    static THREADS: AtomicU64 = AtomicU64::new(1);
                    thread = THREADS.fetch_add(1, Relaxed);
                    c.set((thread, cancels));
                }
                Stamp { thread, cancels }
            })
            .unwrap_or(Stamp {
                thread: 0,
                cancels: 0,
            })
    }

    /// Whether this stamp was taken before this thread's cancellation `since` began (its
    /// count, see [`CANCELLING`]); one taken on another thread (or where its locals could
    /// not be read) is before it.
    fn is_before(self, since: u64) -> bool {
        let here = Stamp::now();
        self.thread == 0 || self.thread != here.thread || self.cancels < since
    }
}

thread_local! {
    /// Set during the poll of an [`Instrumented`] future that began while the thread unwound
    /// a panic (a `Drop` running the future): see [`PolledUnwinding`].
    static POLLED_UNWINDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the poll of an [`Instrumented`] future made while the thread unwinds a panic, until
/// dropped (restoring the outer poll's mark): no panic can begin inside that poll (a second
/// one aborts the process), so an action it ends is not failed by the unwinding around it —
/// its end is the future's own course.
struct PolledUnwinding(bool);

impl PolledUnwinding {
    fn begin() -> Self {
        let unwinding = std::thread::panicking();
        PolledUnwinding(
            POLLED_UNWINDING
                .try_with(|p| p.replace(unwinding))
                .unwrap_or(false),
        )
    }

    /// Whether this thread is in such a poll.
    fn now() -> bool {
        POLLED_UNWINDING.try_with(|p| p.get()).unwrap_or(false)
    }
}

impl Drop for PolledUnwinding {
    fn drop(&mut self) {
        let _ = POLLED_UNWINDING.try_with(|p| p.set(self.0));
    }
}

/// Whether the thread unwinds a panic that fails what ends now (an action, a `tracing`
/// span's action, unless begun during that unwinding): it is panicking, outside the poll of
/// an instrumented future made during the unwinding (see [`PolledUnwinding`]).
pub(crate) fn unwinding_ends_actions() -> bool {
    std::thread::panicking() && !PolledUnwinding::now()
}

/// Marks this thread as dropping a cancelled future until dropped (restoring the outer
/// drop's mark: a future dropped inside another's drop).
struct Cancelling(Option<u64>);

impl Cancelling {
    /// Counts a cancellation begun on this thread, and marks it: actions stamped before
    /// have a lower count, those started during the drop this one or a higher one.
    fn begin() -> Self {
        let since = CANCELS.try_with(|c| {
            let (thread, cancels) = c.get();
            c.set((thread, cancels + 1));
            cancels + 1
        });
        let Ok(since) = since else {
            return Cancelling(None);
        };
        Cancelling(
            CANCELLING
                .try_with(|c| c.replace(Some(since)))
                .ok()
                .flatten(),
        )
    }

    /// Clears the mark until dropped: the poll of an [`Instrumented`] future is its own
    /// course, not a cancellation — also when another future's drop runs it (a `Drop`
    /// finishing an async clean-up), whose mark would cancel what the poll drops.
    fn suspend() -> Self {
        Cancelling(CANCELLING.try_with(|c| c.replace(None)).ok().flatten())
    }
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        let _ = CANCELLING.try_with(|c| c.set(self.0));
    }
}

/// The time now: an action's start. In this module's unit tests, a clock the test holds
/// still (`tests::HELD_CLOCK`) — a coarse clock, whose readings repeat within its tick.
fn now() -> Instant {
    #[cfg(test)]
    if let Some(held) = tests::HELD_CLOCK.with(std::cell::Cell::get) {
        return held;
    }
    Instant::now()
}

/// The position of the next record logged on this thread: inside the innermost entered
/// action, or the first record of a new task.
pub(crate) fn next_position(mode: TaskIdMode) -> Position {
    inner_position().unwrap_or_else(|| Position {
        task_id: new_task_id(mode),
        level: SmallVec::from_slice(&[1]),
    })
}

/// The position of the next record logged on this thread inside the innermost entered
/// action; `None` outside any (the record starts a task of its own: [`At::NewTask`]).
#[inline]
pub(crate) fn inner_position() -> Option<Position> {
    with_innermost(NATIVE, |a| a.child_position())
}

/// Where a record goes: a position, or `[1]` of a new task whose id is written straight
/// into the record.
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Pos(&'a Position),
    NewTask,
}

fn enter(state: &Arc<ActionState>) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.push(Arc::clone(state));
        }
    });
}

fn exit(state: &Arc<ActionState>) {
    // Taken off the stack before it is dropped (outside the borrow).
    let removed = STACK.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let i = s.iter().rposition(|a| Arc::ptr_eq(a, state))?;
        Some(s.remove(i))
    });
    drop(removed);
}

/// A shared reference to an action's state, for the integrations that keep an action in
/// their own structures (the `tracing` layer): it can reserve child positions and be entered
/// on a thread, but never ends the action.
#[derive(Clone)]
pub(crate) struct ActionRef(Arc<ActionState>);

impl ActionRef {
    /// True once the end record is written.
    pub(crate) fn is_ended(&self) -> bool {
        self.0.ended.load(Relaxed)
    }

    /// Enters the action on this thread until the guard drops (without ending it).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn enter(&self) -> EnteredRef {
        enter(&self.0);
        EnteredRef {
            state: Arc::clone(&self.0),
            _not_send: PhantomData,
        }
    }
}

/// The innermost action entered on this thread that `viewer` sees.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn current_action(viewer: Owner) -> Option<ActionRef> {
    with_innermost(viewer, |a| ActionRef(Arc::clone(a)))
}

/// `f` of the innermost action entered on this thread that `viewer` sees; `None` if there
/// is none (or the thread's stack is in use or gone: see [`STACK`]).
#[inline]
fn with_innermost<R>(viewer: Owner, f: impl FnOnce(&Arc<ActionState>) -> R) -> Option<R> {
    STACK
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            s.iter()
                .rev()
                .find(|a| a.visible_to(viewer) && a.is_ours())
                .map(f)
        })
        .ok()
        .flatten()
}

/// Keeps an [`ActionRef`] entered on this thread; leaves it when dropped.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct EnteredRef {
    state: Arc<ActionState>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnteredRef {
    fn drop(&mut self) {
        // (`exit` copes with the thread's locals being destroyed.)
        exit(&self.state);
    }
}

/// Where a record or an action goes (an action started before this process was forked from
/// its parent is never a parent here: see [`ActionState::is_ours`]).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) enum Parent<'a> {
    /// The innermost action entered on this thread (that the viewer sees), or a new task.
    Current,
    /// A remote position (see [`Action::context`]).
    Context(&'a ActionContext),
    /// Inside this action: if it is entered on this thread, at the innermost of the logxide
    /// actions entered right inside it (above it on the thread's stack, with no action of
    /// the viewer's own between — that is another span, not inside this one), so that
    /// actions entered inside it keep their records; else, or without such actions, at its
    /// next child position. A new task if it has ended (or was started before a fork).
    Action(&'a ActionRef),
    /// Inside the innermost action entered on this thread that the viewer sees, as the caller
    /// found it ([`current_action`]): its next child position, without looking for it again
    /// (or, if it has ended since, the innermost one now).
    Innermost(&'a ActionRef),
    /// A new task.
    NewTask,
}

/// The slot `parent` gives to the next record or action of `viewer`: its task and its
/// position; `None` for a new task (a record's caller then writes the new id in place: no
/// [`TaskId`] is made for it). "Innermost" is the innermost action `viewer` sees.
pub(crate) fn slot(parent: Parent<'_>, viewer: Owner) -> Option<Position> {
    let innermost = || with_innermost(viewer, |a| a.child_position());
    match parent {
        Parent::Current => innermost(),
        Parent::Context(ctx) => Some(Position {
            task_id: ctx.task_id,
            level: ctx.level.iter().copied().collect(),
        }),
        Parent::Action(a) if a.is_ended() || !a.0.is_ours() => None,
        Parent::Action(a) => Some(position_within(&a.0, viewer)),
        Parent::Innermost(a) if !a.is_ended() => Some(a.0.child_position()),
        Parent::Innermost(_) => innermost(),
        Parent::NewTask => None,
    }
}

/// The next child position of the action a record or an action of `viewer` inside
/// `action` goes into: `action`, or if it is entered on this thread, the innermost of the
/// logxide ([`NATIVE`]) actions entered above its innermost entry before any action of
/// `viewer`'s own (a `tracing` layer's span entered there is another span, which a record
/// with `action` as explicit parent is not inside; another layer's span is skipped, as
/// `viewer` does not see it).
fn position_within(action: &Arc<ActionState>, viewer: Owner) -> Position {
    let inside = STACK.try_with(|s| {
        let s = s.try_borrow().ok()?;
        let i = s.iter().rposition(|a| Arc::ptr_eq(a, action))?;
        s[i + 1..]
            .iter()
            .filter(|a| a.is_ours() && a.visible_to(viewer))
            .take_while(|a| a.owner == NATIVE || viewer == NATIVE)
            .last()
            .map(|a| a.child_position())
    });
    match inside {
        Ok(Some(pos)) => pos,
        _ => action.child_position(),
    }
}

/// Starts an action of `owner` under `parent` without entering it.
pub(crate) fn start_detached(
    logger: &Logger,
    owner: Owner,
    action_type: Cow<'static, str>,
    parent: Parent<'_>,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) -> DetachedAction {
    let (task_id, prefix) = match slot(parent, owner) {
        Some(pos) => (pos.task_id, pos.level),
        None => (new_task_id(logger.core.task_ids), LevelPath::new()),
    };
    let state = Arc::new(ActionState {
        task_id,
        prefix,
        next: AtomicU64::new(1),
        action_type,
        start: now(),
        stamp: Stamp::now(),
        logger: logger.clone(),
        ended: AtomicBool::new(false),
        cancelled: AtomicBool::new(false),
        started_panicking: std::thread::panicking().then(|| std::thread::current().id()),
        generation: super::fork::generation(),
        owner,
    });
    let pos = state.child_position();
    logger.emit(
        At::Pos(&pos),
        Level::Info,
        |enc| enc.action(&state.action_type, ActionStatus::Started),
        fields,
    );
    DetachedAction {
        state: Held(Some(state)),
    }
}

/// The [`ActionState::generation`] of an action that is no parent in any process: no fork
/// count reaches it.
const NO_PARENT: u64 = u64::MAX;

/// Starts an action into `logger`, which discards everything (the global macros' with no
/// global logger), entered on this thread but no parent of anything, as an action of the
/// process a child was forked from: a logger installed while it runs gets no record inside
/// a task whose start went nowhere — records and actions logged inside it are tasks of
/// their own, and so is its [context](Action::context). It starts a new task itself, so that
/// it takes no position of an action it is started in.
pub(crate) fn start_discarded(
    logger: &Logger,
    action_type: Cow<'static, str>,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) -> Action {
    let mut action = start_detached(logger, NATIVE, action_type, Parent::NewTask, fields);
    // Just made: the only reference to its state.
    if let Some(state) = action.state.0.as_mut().and_then(Arc::get_mut) {
        state.generation = NO_PARENT;
    }
    action.enter()
}

/// Starts an action as a child of `parent` (task id and position), or of the innermost
/// action entered on this thread, or as a new task.
pub(crate) fn start(
    logger: &Logger,
    action_type: Cow<'static, str>,
    parent: Option<&ActionContext>,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) -> Action {
    let parent = parent.map_or(Parent::Current, Parent::Context);
    start_detached(logger, NATIVE, action_type, parent, fields).enter()
}

/// An action entered on the current thread; ends when dropped. See [`Logger::start_action`]
/// and the [`logger`](crate::logger) module.
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// {
///     let _request = log.start_action("http:request", |f| f.field("path", "/api"));
///     log.info("inside");
/// } // ends: succeeded
/// log.flush(None).unwrap();
/// let lines = mem.lines();
/// assert!(lines[0].contains(r#""lvl":[1],"at":"http:request","st":"started","path":"/api""#));
/// assert!(lines[1].contains(r#""lvl":[2],"mt":"info","msg":"inside""#));
/// assert!(lines[2].contains(r#""lvl":[3],"at":"http:request","st":"succeeded","dur":"#));
/// ```
///
/// Pitfall: a guard passed to `std::mem::forget` never leaves the thread: the action never
/// ends, and every later record of the thread lands in it. End an action early with
/// [`finish`](Action::finish) or [`fail`](Action::fail), or hand it on with
/// [`detach`](Action::detach).
#[must_use = "an action ends when this guard is dropped: bind it with `let _action = ...`"]
pub struct Action {
    state: Held,
    /// Entered on this thread's stack: must be dropped here.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("type", &self.state.action_type)
            .field("task_id", &self.state.task_id)
            .field("level", &self.state.prefix)
            .finish()
    }
}

impl Action {
    /// Ends the action `failed`, with the error's type as `exc` and its text — with its
    /// `source()` chain, joined by `": "` (once round, if the chain loops) — as `reason`.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// let action = log.start_action("db:query", |_| {});
    /// let err = std::io::Error::new(std::io::ErrorKind::NotFound, "no table");
    /// action.fail(&err);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1]
    ///     .contains(r#""st":"failed","exc":"std::io::error::Error","reason":"no table","dur":"#));
    /// ```
    ///
    /// A trait object does not say its type: `exc` is then the name its `Debug` output
    /// starts with (see [`exception`](crate::Logger::exception)).
    pub fn fail<E: std::error::Error + ?Sized>(self, error: &E) {
        let reason = error_chain(error);
        self.state
            .end(ActionStatus::Failed, Some((&error_type(error), &reason)));
    }

    /// Ends the action `failed` with an explicit error type and reason (for a failure that
    /// is no `std::error::Error` value).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let action = log.start_action("rpc:call", |_| {});
    /// action.fail_with("Timeout", "no answer in 5 s");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1].contains(
    ///     r#""lvl":[2],"at":"rpc:call","st":"failed","exc":"Timeout","reason":"no answer in 5 s","dur":"#));
    /// ```
    pub fn fail_with(self, exc: &str, reason: &str) {
        self.state.end(ActionStatus::Failed, Some((exc, reason)));
    }

    /// Ends the action `succeeded` (as dropping it does), where the guard's scope would end
    /// it later; records logged afterwards are no longer inside it.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let action = log.start_action("load", |_| {});
    /// action.finish();
    /// log.info("after it");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1].contains(r#""lvl":[2],"at":"load","st":"succeeded""#));
    /// assert!(mem.lines()[2].contains(r#""lvl":[1],"mt":"info","msg":"after it""#)); // a new task
    /// ```
    pub fn finish(self) {
        self.state.end(ActionStatus::Succeeded, None);
    }

    /// The action's task id: the `tid` of its records and of every record and action inside
    /// it (a child action shares its parent's).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let action = log.start_action("job", |_| {});
    /// let id = action.task_id();
    /// log.info("inside");
    /// drop(action);
    /// log.flush(None).unwrap();
    /// let tid = format!(r#""tid":"{id}""#);
    /// assert!(mem.lines().iter().all(|line| line.contains(&tid)));
    /// ```
    pub fn task_id(&self) -> TaskId {
        self.state.task_id
    }

    /// Reserves the next child position of this action for work done elsewhere (another
    /// thread or process), which continues there with
    /// [`Logger::continue_action`](super::Logger::continue_action). Each call reserves a new
    /// position (see the pitfall there: continue each context once); a context never
    /// continued leaves its position out of the task, a gap in its numbering.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let action = log.start_action("rpc:call", |_| {});
    /// let ctx = action.context();
    /// assert_eq!((ctx.task_id(), ctx.level()), (action.task_id(), &[2][..]));
    /// log.info("next record: after the reserved position");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1].contains(r#""lvl":[3],"mt":"info""#));
    /// ```
    ///
    /// In a process forked (`fork()`) after the action started, the action's positions are
    /// the parent's to give: there the context starts a task of its own instead, as the
    /// child's records do — a new task id, at level `[1]` (the work continued from it writes
    /// `[1,1]`, `[1,2]`, …).
    pub fn context(&self) -> ActionContext {
        if !self.state.is_ours() {
            return ActionContext {
                task_id: new_task_id(self.state.logger.core.task_ids),
                level: vec![1],
            };
        }
        let pos = self.state.child_position();
        ActionContext {
            task_id: pos.task_id,
            level: pos.level.into_vec(),
        }
    }

    /// Leaves the current thread without ending the action, so it can move to another thread
    /// ([`DetachedAction::enter`]) or run a future ([`DetachedAction::instrument`]). Records
    /// logged here afterwards are no longer inside it.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let job = log.start_action("job", |_| {}).detach();
    /// log.info("not inside the job");
    /// drop(job); // ends: succeeded
    /// log.flush(None).unwrap();
    /// let lines = mem.lines();
    /// assert!(lines[1].contains(r#""lvl":[1],"mt":"info""#)); // a task of its own
    /// assert!(lines[2].contains(r#""lvl":[2],"at":"job","st":"succeeded""#));
    /// ```
    pub fn detach(mut self) -> DetachedAction {
        let state = self.state.take();
        exit(&state);
        DetachedAction {
            state: Held(Some(state)),
        }
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        if let Some(state) = self.state.0.take() {
            exit(&state);
            state.end_on_drop();
        }
    }
}

/// The state an action guard holds. A guard that turns into another one (`detach`, `enter`,
/// `instrument`) moves it out, which leaves its own drop nothing to do. (Forgetting the
/// guard instead would leak a reference count: the action's state, and with it the logger
/// and its writer's memory, would never be freed.)
struct Held(Option<Arc<ActionState>>);

impl Held {
    fn take(&mut self) -> Arc<ActionState> {
        self.0
            .take()
            .expect("a guard's state is moved out only by the method consuming the guard")
    }
}

impl std::ops::Deref for Held {
    type Target = Arc<ActionState>;
    fn deref(&self) -> &Arc<ActionState> {
        self.0
            .as_ref()
            .expect("a guard's state is moved out only by the method consuming the guard")
    }
}

/// The `exc` of `error`: its type's name. A trait object (`&dyn Error`, what a
/// `Box<dyn Error>` gives) does not say its type: for one, the name its `Debug` output starts
/// with (the type's name, for a derived `Debug`: `ParseIntError { .. }`), else the trait
/// object's own name (`dyn core::error::Error`).
pub(crate) fn error_type<E: std::error::Error + ?Sized>(error: &E) -> Cow<'static, str> {
    let name = std::any::type_name::<E>();
    if !name.starts_with("dyn ") {
        return Cow::Borrowed(name);
    }
    // `write!`, not `format!`: a `Debug` that fails gives what it wrote, not a panic.
    let mut debug = String::new();
    let _ = fmt::Write::write_fmt(&mut debug, format_args!("{error:?}"));
    let ident = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .map_or(debug.as_str(), |end| &debug[..end])
        .trim_end_matches(':');
    if ident.starts_with(|c: char| c.is_alphabetic()) {
        Cow::Owned(ident.to_owned())
    } else {
        Cow::Borrowed(name)
    }
}

/// The text of `error` and of every error in its `source()` chain, joined by `": "`. A
/// chain that comes back to an error already written (a cycle: a `source` returning `self`,
/// two errors naming each other) stops there: an error at the address of one written before,
/// of its size, with its text, is taken for it. So does a chain past [`MAX_SOURCES`].
pub(crate) fn error_chain<E: std::error::Error + ?Sized>(error: &E) -> String {
    // Written with `write_fmt`, not `to_string`: an error whose `Display` fails part-way
    // (returns `fmt::Error` unprompted) gives what it wrote so far, not a panic.
    let mut text = String::new();
    let _ = fmt::Write::write_fmt(&mut text, format_args!("{error}"));
    // Each error written: its address and size, and where its text is.
    type Written = ((usize, usize), std::ops::Range<usize>);
    let id = |e: *const (), size: usize| (e as usize, size);
    let mut seen: SmallVec<[Written; 8]> = SmallVec::new();
    let first = id((error as *const E).cast(), std::mem::size_of_val(error));
    seen.push((first, 0..text.len()));
    let mut source = error.source();
    while let Some(s) = source {
        if seen.len() > MAX_SOURCES {
            break;
        }
        let start = text.len();
        text.push_str(": ");
        let _ = fmt::Write::write_fmt(&mut text, format_args!("{s}"));
        let this = id(
            (s as *const dyn std::error::Error).cast(),
            std::mem::size_of_val(s),
        );
        let piece = start + 2..text.len();
        let repeat = seen
            .iter()
            .any(|(e, at)| *e == this && text[at.clone()] == text[piece.clone()]);
        if repeat {
            text.truncate(start);
            break;
        }
        seen.push((this, piece));
        source = s.source();
    }
    text
}

/// The most sources of an error [`error_chain`] writes.
const MAX_SOURCES: usize = 256;

/// An action not entered on any thread (`Send`); ends when dropped: `succeeded`, `failed`
/// with `exc` `panic` during a panic (as an [`Action`]), or `failed` with `exc` `cancelled`
/// when an unfinished [`Instrumented`] future holding it is dropped.
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// let job = log.start_action("job", |_| {}).detach();
/// let log2 = log.clone();
/// std::thread::spawn(move || {
///     let _job = job.enter();
///     log2.info("on the worker thread");
/// }).join().unwrap();
/// log.flush(None).unwrap();
/// let lines = mem.lines();
/// assert!(lines[1].contains(r#""lvl":[2],"mt":"info""#));
/// assert!(lines[2].contains(r#""lvl":[3],"at":"job","st":"succeeded""#));
/// ```
pub struct DetachedAction {
    state: Held,
}

impl fmt::Debug for DetachedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetachedAction")
            .field("type", &self.state.action_type)
            .field("task_id", &self.state.task_id)
            .finish()
    }
}

impl DetachedAction {
    /// Enters the action on the current thread: records logged here until the returned
    /// [`Action`] drops (which ends the action) are inside it. See the example at
    /// [`DetachedAction`] for another thread; on the same thread:
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let detached = log.start_action("job", |_| {}).detach();
    /// log.info("outside");
    /// let job = detached.enter();
    /// log.info("inside");
    /// drop(job);
    /// log.flush(None).unwrap();
    /// let lines = mem.lines();
    /// assert!(lines[1].contains(r#""lvl":[1],"mt":"info","msg":"outside""#));
    /// assert!(lines[2].contains(r#""lvl":[2],"mt":"info","msg":"inside""#));
    /// assert!(lines[3].contains(r#""lvl":[3],"at":"job","st":"succeeded""#));
    /// ```
    pub fn enter(mut self) -> Action {
        let state = self.state.take();
        enter(&state);
        Action {
            state: Held(Some(state)),
            _not_send: PhantomData,
        }
    }

    /// Runs `future` inside the action: entered during each poll (and while the future is
    /// dropped, however it ends), ended `succeeded` when the future completes (whenever it
    /// does: also polled to its end by a `Drop` during a panic or another future's
    /// cancellation); `failed` with `exc` `panic` when a poll panics (as an [`Action`]
    /// dropped by a panic — also if the executor catches the panic and drops the future
    /// later), or when the future is dropped during a panic; `failed` with `exc` `cancelled`
    /// when it is dropped unfinished otherwise. A poll that panics drops the future at once,
    /// during the panic and inside the action (the actions its state holds end first,
    /// `failed` with `exc` `panic` too), so an executor's later drop of it finds nothing left
    /// to end.
    ///
    /// Each poll leaves the thread's entered actions as it found them: an action started
    /// inside the future and still alive when a poll returns `Pending` (held across an
    /// `.await`) leaves the thread with the future and is entered again, inside this one, at
    /// the next poll, so its records keep their positions and the thread's other work (the
    /// next task an executor polls) never lands in it.
    ///
    /// A future dropped unfinished is dropped inside its action: the actions it holds across
    /// an `.await` — entered [`Action`]s and [`DetachedAction`]s alike — end first
    /// (`cancelled` too, or `panic` during a panic; an action its drop starts and ends, a
    /// clean-up's, ends as it would elsewhere), and records its drop logs stay in the
    /// action; then the action ends.
    ///
    /// An [`Action`] is not `Send`: detach it first, as here (tokio's runtime; any executor
    /// does).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let inner = log.clone();
    /// let fetch = log.start_action("fetch", |_| {}).detach().instrument(async move {
    ///     inner.info("first poll");
    ///     tokio::task::yield_now().await;
    ///     inner.info("resumed");
    ///     7
    /// });
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(rt.block_on(fetch), 7);
    /// log.flush(None).unwrap();
    /// let lines = mem.lines();
    /// assert!(lines[1].contains(r#""lvl":[2],"mt":"info","msg":"first poll""#));
    /// assert!(lines[2].contains(r#""lvl":[3],"mt":"info","msg":"resumed""#));
    /// assert!(lines[3].contains(r#""lvl":[4],"at":"fetch","st":"succeeded""#));
    /// ```
    pub fn instrument<F: Future>(mut self, future: F) -> Instrumented<F> {
        Instrumented {
            future: Slot::Running { future },
            state: Some(self.state.take()),
            inner: Vec::new(),
        }
    }
}

#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
impl DetachedAction {
    /// A shared reference to the action (for the integrations).
    pub(crate) fn share(&self) -> ActionRef {
        ActionRef(Arc::clone(&self.state))
    }

    /// True if the logger of this action masks `key` (see [`Mask`](super::Mask)).
    pub(crate) fn is_masked(&self, key: &str) -> bool {
        self.state.logger.core.mask.is_masked(key)
    }

    /// Ends the action with `status`, `error` (`exc`, `reason`) and extra fields.
    pub(crate) fn end_with(
        self,
        status: ActionStatus,
        error: Option<(&str, &str)>,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        self.state.end_with(status, error, fields);
    }
}

impl Drop for DetachedAction {
    fn drop(&mut self) {
        if let Some(state) = self.state.0.take() {
            state.end_on_drop();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future running inside an action; see [`DetachedAction::instrument`]. Its output is
    /// the future's. Dropped unfinished, it ends the action `failed` with `exc` `cancelled`
    /// (a timeout that drops the future, a `select!` that loses): no action is left without
    /// an end record.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let never = log
    ///     .start_action("wait", |_| {})
    ///     .detach()
    ///     .instrument(std::future::pending::<()>());
    /// drop(never);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1].contains(
    ///     r#""at":"wait","st":"failed","exc":"cancelled","reason":"the future was dropped before it completed""#));
    /// ```
    pub struct Instrumented<F> {
        #[pin]
        future: Slot<F>,
        state: Option<Arc<ActionState>>,
        // The actions entered inside the future and still entered when its last poll
        // returned, innermost last: they go back on the thread's stack above this action at
        // the next poll (and leave it again when the poll returns).
        inner: Vec<Arc<ActionState>>,
    }

    impl<F> PinnedDrop for Instrumented<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.state.is_none() {
                return;
            }
            // Unfinished: drop the future in its action, with the actions it holds entered
            // above it and marked cancelled, so that their ends come before this one's.
            for inner in this.inner.iter() {
                inner.cancelled.store(true, Relaxed);
            }
            let mut entered = EnteredFuture::enter(this.state, this.inner, this.future.as_mut());
            let cancelling = Cancelling::begin();
            entered.future.set(Slot::Done);
            drop(cancelling);
            entered.returned = true;
            drop(entered);
            this.inner.clear();
            if let Some(state) = this.state.take() {
                if state.ended_by_panic() {
                    state.end_panicked();
                } else {
                    state.end_cancelled();
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// An [`Instrumented`]'s future until it completes or is dropped (dropped in place, while
    /// its action is entered).
    #[project = SlotProj]
    enum Slot<F> {
        Running { #[pin] future: F },
        Done,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        // (Dropped last: what the poll drops, on its way or as it unwinds, is inside them.)
        let _not_cancelling = Cancelling::suspend();
        let _polled_unwinding = PolledUnwinding::begin();
        let mut entered = EnteredFuture::enter(this.state, this.inner, this.future.as_mut());
        let SlotProj::Running { future } = entered.future.as_mut().project() else {
            unreachable!("a finished future's action is gone, so `enter` panicked");
        };
        let poll = future.poll(cx);
        if poll.is_ready() {
            // Dropped inside its action, as when it is dropped unfinished: what its fields'
            // drops log (a hand-written future's live until now) belongs to it.
            entered.future.set(Slot::Done);
        }
        entered.returned = true;
        drop(entered);
        if poll.is_ready() {
            this.inner.clear();
            if let Some(state) = this.state.take() {
                // Its work is done, as with `Action::finish`: not a guard's drop, whose
                // status would come from a panic unwinding or a future being cancelled
                // around this poll (a `Drop` running the future to its end).
                state.end(ActionStatus::Succeeded, None);
            }
        }
        poll
    }
}

/// An [`Instrumented`]'s action entered on this thread during one poll, with the actions
/// entered inside the future at its previous polls above it. When dropped (the poll returned
/// or unwound), it takes them all off the thread's stack again, keeping the inner ones still
/// entered for the next poll: the stack is then what it was before the poll, so nothing the
/// future entered becomes the parent of the thread's other work. If the poll unwound, it
/// first drops the future, in place and with everything still entered (so that the actions
/// its state holds end first, `failed` for the panic, and records its drop logs stay in
/// the action: a hand-written future's fields survive the unwind, unlike an async block's
/// locals), then ends the action `failed` for the panic (the future is not polled again; an
/// executor that catches the panic drops it later, which is no cancellation).
struct EnteredFuture<'a, F> {
    state: &'a mut Option<Arc<ActionState>>,
    inner: &'a mut Vec<Arc<ActionState>>,
    future: Pin<&'a mut Slot<F>>,
    /// The future's poll returned (else it is unwinding).
    returned: bool,
}

impl<'a, F> EnteredFuture<'a, F> {
    fn enter(
        state: &'a mut Option<Arc<ActionState>>,
        inner: &'a mut Vec<Arc<ActionState>>,
        future: Pin<&'a mut Slot<F>>,
    ) -> Self {
        let Some(action) = state.as_ref() else {
            panic!("Instrumented polled after it completed or a poll of it panicked");
        };
        // Without the thread's stack (destroyed: a poll inside another thread-local's
        // `Drop`), nothing is entered and `inner` keeps the actions for the next poll.
        let _ = STACK.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                s.push(Arc::clone(action));
                s.append(inner);
            }
        });
        EnteredFuture {
            state,
            inner,
            future,
            returned: false,
        }
    }
}

impl<F> Drop for EnteredFuture<'_, F> {
    fn drop(&mut self) {
        let Some(action) = self.state.as_ref() else {
            return;
        };
        if !self.returned {
            // Unwinding: the future goes now, inside its action (see above).
            self.future.set(Slot::Done);
        }
        // `try_with`: a poll may unwind while the thread's locals are destroyed.
        let _ = STACK.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if let Some(i) = s.iter().rposition(|a| Arc::ptr_eq(a, action)) {
                    self.inner.extend(s.drain(i + 1..));
                    s.truncate(i);
                }
            }
        });
        if !self.returned {
            self.inner.clear();
            if let Some(action) = self.state.take() {
                action.end_panicked();
            }
        }
    }
}

/// Where a task continues elsewhere: its id and the task level reserved for the remote work.
/// Serializes as `{"task_id":…,"level":[…]}`; its text form is Eliot's `task_id@/1/2` (parsed
/// at its last `@`: a task id may hold one).
///
/// ```
/// use logxide::logger::ActionContext;
/// let ctx: ActionContext = "Ab3dE9xQ.1f@/3/2".parse().unwrap();
/// assert_eq!(ctx.level(), &[3, 2]);
/// assert_eq!(ctx.to_string(), "Ab3dE9xQ.1f@/3/2");
/// assert!("no-level".parse::<ActionContext>().is_err());
/// ```
///
/// Deserializing checks what parsing checks: a `level` of 1 to
/// [`MAX_LEVELS`](ActionContext::MAX_LEVELS) (1024) positive integers, and a task id.
///
/// ```
/// use logxide::logger::ActionContext;
/// let ok: ActionContext = serde_json::from_str(r#"{"task_id":"Ab.1","level":[3,2]}"#).unwrap();
/// assert_eq!(ok.level(), &[3, 2]);
/// let err = serde_json::from_str::<ActionContext>(r#"{"task_id":"Ab.1","level":[]}"#);
/// assert!(err.unwrap_err().to_string().contains("positive integers"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedContext")]
pub struct ActionContext {
    #[serde(with = "task_id_text")]
    task_id: TaskId,
    level: Vec<u64>,
}

/// An [`ActionContext`] as deserialized, before its level is checked (its length is, as it
/// is read: see [`bounded_level`]).
#[derive(Deserialize)]
struct UncheckedContext {
    #[serde(with = "task_id_text")]
    task_id: TaskId,
    #[serde(deserialize_with = "bounded_level")]
    level: Vec<u64>,
}

/// A context's `level`, refused as soon as it has more than [`ActionContext::MAX_LEVELS`]
/// numbers (not read to its end first: a sequence of any length costs no more than the
/// bound).
fn bounded_level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    struct Levels;
    impl<'de> serde::de::Visitor<'de> for Levels {
        type Value = Vec<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a sequence of 1 to {} positive integers",
                ActionContext::MAX_LEVELS
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
            let hint = seq.size_hint().unwrap_or(0);
            let mut level = Vec::with_capacity(hint.min(ActionContext::MAX_LEVELS));
            while let Some(n) = seq.next_element::<u64>()? {
                if level.len() == ActionContext::MAX_LEVELS {
                    return Err(serde::de::Error::custom(format_args!(
                        "invalid action context level: more than {max} levels (expected 1 to {max} positive integers)",
                        max = ActionContext::MAX_LEVELS
                    )));
                }
                level.push(n);
            }
            Ok(level)
        }
    }
    d.deserialize_seq(Levels)
}

/// `text` quoted as `Debug` quotes it, cut to its first 64 bytes (at a character's boundary)
/// with `…` after the quote if longer: an error that quotes untrusted text stays short.
fn quote_start(text: &str) -> String {
    const SHOWN: usize = 64;
    if text.len() <= SHOWN {
        return format!("{text:?}");
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &text[..end])
}

/// [`quote_start`], followed by the text's length in bytes when it was cut.
fn quote_with_length(text: &str) -> String {
    match quote_start(text) {
        cut if text.len() > 64 => format!("{cut} ({} bytes)", text.len()),
        whole => whole,
    }
}

/// What a context's level must be, parsed or deserialized: one or more positive integers.
fn is_task_level(level: &[u64]) -> bool {
    !level.is_empty() && !level.contains(&0)
}

impl TryFrom<UncheckedContext> for ActionContext {
    type Error = String;
    fn try_from(c: UncheckedContext) -> Result<Self, String> {
        if !is_task_level(&c.level) {
            return Err(format!(
                "invalid action context level {:?}: expected 1 to {} positive integers",
                c.level,
                ActionContext::MAX_LEVELS
            ));
        }
        Ok(ActionContext {
            task_id: c.task_id,
            level: c.level,
        })
    }
}

impl ActionContext {
    /// The most levels a context may have, parsed ([`FromStr`]) or deserialized: a bound
    /// for contexts from an untrusted source (a request header, a queued message), whose
    /// level every record of the continued action carries in its `lvl`. The
    /// [`Action::context`] of an action nested at most 1024 deep (a task's root action is 1
    /// deep) is within it; one of a deeper action does not parse back (the error says so).
    ///
    /// ```
    /// use logxide::logger::ActionContext;
    /// let deep = format!("Ab.1@{}", "/1".repeat(ActionContext::MAX_LEVELS + 1));
    /// let err = deep.parse::<ActionContext>().unwrap_err();
    /// assert!(err.to_string().ends_with(
    ///     "(1025 levels): expected at most 1024 levels (TASK_ID@/N/N... with 1 to 1024 positive integers)"));
    /// ```
    pub const MAX_LEVELS: usize = 1024;

    /// The task id.
    ///
    /// ```
    /// let ctx: logxide::logger::ActionContext = "Ab3dE9xQ.1f@/3/2".parse().unwrap();
    /// assert_eq!(ctx.task_id().as_str(), "Ab3dE9xQ.1f");
    /// assert_eq!(ctx.level(), &[3, 2]);
    /// ```
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// The task level reserved for the remote work (see the example at
    /// [`task_id`](Self::task_id)).
    pub fn level(&self) -> &[u64] {
        &self.level
    }
}

impl fmt::Display for ActionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.task_id)?;
        for l in &self.level {
            write!(f, "/{l}")?;
        }
        Ok(())
    }
}

/// Text that is not `task_id@/n/n...`: the message quotes it (by its first 64 bytes and its
/// length, if longer) and says what is accepted.
///
/// ```
/// use logxide::logger::ActionContext;
/// let err = "Ab3dE9xQ.1f@/3/0".parse::<ActionContext>().unwrap_err(); // levels start at 1
/// assert_eq!(
///     err.to_string(),
///     r#"invalid action context "Ab3dE9xQ.1f@/3/0": expected TASK_ID@/N/N... (a task id of 1 to 36 printable ASCII characters other than `"` and `\`, then positive integers in decimal digits, without sign or leading zeros)"#
/// );
/// assert!("Ab3dE9xQ.1f@/+3".parse::<ActionContext>().is_err()); // as `to_string` writes it
/// assert!("Ab3dE9xQ.1f/3".parse::<ActionContext>().is_err()); // no `@`
/// ```
///
/// Text of more than [`ActionContext::MAX_LEVELS`] levels is refused for that, quoted by its
/// first 64 bytes:
///
/// ```
/// use logxide::logger::ActionContext;
/// let deep = format!("Ab@{}", "/1".repeat(2000));
/// let err = deep.parse::<ActionContext>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     format!(
///         "invalid action context {:?}… (2000 levels): expected at most 1024 levels (TASK_ID@/N/N... with 1 to 1024 positive integers)",
///         &deep[..64]
///     )
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseContextError {
    /// The text, quoted (by its start if long: see [`quote_start`]).
    text: String,
    problem: ContextProblem,
}

/// What is wrong with a context's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContextProblem {
    /// Not `TASK_ID@/N/N...`.
    Syntax,
    /// More than [`ActionContext::MAX_LEVELS`] levels (this many).
    TooManyLevels(usize),
}

impl fmt::Display for ParseContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            ContextProblem::Syntax => write!(
                f,
                "invalid action context {}: expected TASK_ID@/N/N... (a task id of 1 to 36 printable ASCII characters other than `\"` and `\\`, then positive integers in decimal digits, without sign or leading zeros)",
                self.text
            ),
            ContextProblem::TooManyLevels(levels) => write!(
                f,
                "invalid action context {} ({levels} levels): expected at most {max} levels (TASK_ID@/N/N... with 1 to {max} positive integers)",
                self.text,
                max = ActionContext::MAX_LEVELS
            ),
        }
    }
}

impl std::error::Error for ParseContextError {}

impl FromStr for ActionContext {
    type Err = ParseContextError;
    fn from_str(s: &str) -> Result<Self, ParseContextError> {
        let err = || ParseContextError {
            text: quote_with_length(s),
            problem: ContextProblem::Syntax,
        };
        // At the last `@`: a task id may hold `@` (the level part never does).
        let (id, levels) = s.rsplit_once('@').ok_or_else(err)?;
        let task_id = TaskId::parse(id).ok_or_else(err)?;
        let levels = levels.strip_prefix('/').ok_or_else(err)?;
        // Digits only, no leading zero: `u64::from_str` also takes `+3` and `03`, which
        // would not read back as the same text.
        let position = |n: &str| {
            let canonical = n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0');
            n.parse::<u64>().ok().filter(|_| canonical)
        };
        let mut level = Vec::new();
        for n in levels.split('/') {
            if level.len() == ActionContext::MAX_LEVELS {
                return Err(ParseContextError {
                    text: quote_start(s),
                    problem: ContextProblem::TooManyLevels(levels.split('/').count()),
                });
            }
            level.push(position(n).ok_or_else(err)?);
        }
        if !is_task_level(&level) {
            return Err(err());
        }
        Ok(ActionContext { task_id, level })
    }
}

mod task_id_text {
    use super::TaskId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &TaskId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TaskId, D::Error> {
        let text = String::deserialize(d)?;
        TaskId::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "invalid task id {}: expected 1 to 36 printable ASCII characters other than `\"` and `\\`",
                super::quote_with_length(&text)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// What [`now`] reads on this thread, when set: a clock that does not move.
        pub(super) static HELD_CLOCK: std::cell::Cell<Option<Instant>> =
            const { std::cell::Cell::new(None) };
    }

    /// Starts and ends an action when dropped: a clean-up run by a cancelled future's drop.
    struct CleansUp(Logger);

    impl Drop for CleansUp {
        fn drop(&mut self) {
            drop(self.0.start_action("cleanup", |_| {}));
        }
    }

    /// A detached action a future held, started in the clock tick in which the future was
    /// dropped unfinished (a coarse clock, or a fast start-to-drop), ended `succeeded`: the
    /// check "started before the drop began" compared `Instant`s with `<`, and equal ones
    /// read as started during the drop (a clean-up's). The check no longer reads the clock:
    /// the held action ends `cancelled`, the clean-up's action started in that tick too
    /// still succeeds.
    #[test]
    fn an_action_started_in_the_tick_its_future_is_dropped_in_ends_cancelled() {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let mem = crate::sink::MemorySink::new();
        let logger = Logger::builder()
            .use_env(false)
            .sink(mem.clone())
            .build()
            .unwrap();
        HELD_CLOCK.with(|c| c.set(Some(Instant::now())));
        let l1 = logger.clone();
        let mut fut = Box::pin(logger.start_action("outer", |_| {}).detach().instrument(
            async move {
                let _cleanup = CleansUp(l1.clone());
                let _held = l1.start_action("held", |_| {}).detach();
                std::future::pending::<()>().await;
            },
        ));
        let waker = std::task::Waker::from(Arc::new(Noop));
        let poll = fut.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(poll.is_pending());
        drop(fut);
        HELD_CLOCK.with(|c| c.set(None));
        logger.flush(None).unwrap();
        let from_lvl: Vec<String> = mem
            .lines()
            .iter()
            .map(|l| {
                let from = &l[l.find(r#""lvl""#).unwrap()..];
                from.find(r#","dur":"#)
                    .map_or(from, |at| &from[..at])
                    .to_owned()
            })
            .collect();
        const CANCELLED: &str = r#""st":"failed","exc":"cancelled","reason":"the future was dropped before it completed""#;
        assert_eq!(
            from_lvl,
            [
                r#""lvl":[1],"at":"outer","st":"started"}"#.to_owned(),
                r#""lvl":[2,1],"at":"held","st":"started"}"#.to_owned(),
                format!(r#""lvl":[2,2],"at":"held",{CANCELLED}"#),
                r#""lvl":[3,1],"at":"cleanup","st":"started"}"#.to_owned(),
                r#""lvl":[3,2],"at":"cleanup","st":"succeeded""#.to_owned(),
                format!(r#""lvl":[4],"at":"outer",{CANCELLED}"#),
            ]
        );
    }

    /// An action's child positions go on past `u32::MAX` (a root action around a service's
    /// whole run reaches 2^32 children in about 12 hours at 100 000 records a second): they
    /// wrapped to 0 with a 32-bit counter, repeating positions.
    #[test]
    fn child_positions_go_on_past_u32() {
        let mem = crate::sink::MemorySink::new();
        let logger = Logger::builder()
            .use_env(false)
            .sink(mem.clone())
            .build()
            .unwrap();
        let state = ActionState {
            task_id: new_task_id(TaskIdMode::Sqid),
            prefix: LevelPath::from_slice(&[3]),
            next: AtomicU64::new(u64::from(u32::MAX)),
            action_type: Cow::Borrowed("service"),
            start: Instant::now(),
            stamp: Stamp::now(),
            logger: logger.clone(),
            ended: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            started_panicking: None,
            generation: crate::logger::fork::generation(),
            owner: NATIVE,
        };
        assert_eq!(state.child_position().level.as_slice(), &[3, 4_294_967_295]);
        assert_eq!(state.child_position().level.as_slice(), &[3, 4_294_967_296]);
        // The end record takes the next one, written as a JSON integer.
        state.end(ActionStatus::Succeeded, None);
        logger.flush(None).unwrap();
        assert!(mem.lines()[0].contains(r#""lvl":[3,4294967297],"at":"service","st":"succeeded""#));
    }

    /// The `ts` of a record: (seconds, microseconds).
    fn ts(line: &str) -> (u64, u32) {
        let rest = line.strip_prefix(r#"{"ts":"#).expect("ts first");
        let (secs, rest) = rest.split_once('.').expect("a fraction");
        let micros = &rest[..rest.find(',').expect("more fields")];
        (secs.parse().unwrap(), micros.parse().unwrap())
    }

    /// A thread's synchronous records ([`sync_mode`](crate::logger::sync_mode)) and its
    /// queued ones, in one action: their times never go back. With the tick clock 0.4 ms
    /// ahead of the OS clock (the anchor's error, which smoothing is there for), a
    /// synchronous record was dated by `CLOCK_REALTIME` at the call, 0.4 ms before the
    /// queued record logged just before it.
    #[test]
    fn a_threads_queued_and_sync_records_never_go_back_in_time() {
        let mem = crate::sink::MemorySink::new();
        let logger = Logger::builder()
            .use_env(false)
            .writer_mode(crate::writer::Mode::Manual)
            .sink(mem.clone())
            .build()
            .unwrap();
        logger.core.handle.skew_clock(400_000);
        let job = logger.start_action("job", |_| {});
        for _ in 0..3 {
            logger.info("queued");
            let _sync = crate::logger::sync_mode();
            logger.info("sync");
        }
        logger.info("queued");
        drop(job);
        logger.flush(None).unwrap();
        let lines = mem.lines();
        assert_eq!(lines.len(), 9);
        for pair in lines.windows(2) {
            assert!(ts(&pair[0]) <= ts(&pair[1]), "{}\n{}", pair[0], pair[1]);
        }
    }

    /// A logger with `async` off: each thread's records are dated against its lane's time,
    /// but none is queued, so no lane holds a ring (64 KiB each before) or credits.
    #[test]
    #[cfg(not(logxide_loom))] // (the budget's count is not in the loom build)
    fn threads_that_only_write_synchronously_hold_no_ring() {
        let mem = crate::sink::MemorySink::new();
        let logger = Logger::builder()
            .use_env(false)
            .async_writes(false)
            .sink(mem.clone())
            .build()
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let logger = &logger;
                s.spawn(move || {
                    for _ in 0..3 {
                        logger.info(&format!("sync {t}"));
                    }
                    // (Its lane is still there: the thread has not exited yet.)
                    assert_eq!(logger.core.handle.ring_bytes_and_credits(), (0, 0));
                });
            }
        });
        logger.info("main");
        assert_eq!(mem.lines().len(), 13);
        assert_eq!(logger.core.handle.ring_bytes_and_credits(), (0, 0));
    }
}
