//! Fork detection: a counter that the child process increments right after `fork()`.
//!
//! Task ids must differ between a parent and the children it forks, which share the parent's
//! memory image (and so its id prefix and counters). The only way to learn of a fork without
//! a syscall per id is a `pthread_atfork` child handler; this module is the one place that
//! registers it.
//!
//! The writer uses it too: a writer records the generation it was built in, and in a process
//! of another generation (a forked child, which has a copy of the writer but not its thread)
//! it stands down — see "Fork" in the [writer's docs](crate::writer). So does the opt-in
//! signal drain ([`default_action_in_children`], [`disposition`]).
//!
//! This is one of the three modules with `unsafe` code outside tests (the others are
//! `sink::mmap` and `writer::lane`): FFI calls whose contracts are stated next to each block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child() {
    // Async-signal-safe: one atomic increment, no allocation, no lock.
    GENERATION.fetch_add(1, Relaxed);
}

/// How many forks led to this process (0 in the original process); registers the handler
/// on first use.
#[inline]
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: `pthread_atfork` only records the function pointers; `in_child` is an
        // `extern "C"` function with no arguments that lives for the whole program and does
        // only an atomic increment, which is safe in a freshly forked child.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
    GENERATION.load(Relaxed)
}

/// The generation, without registering the handler: for hot paths whose caller called
/// [`generation`] before (a writer does when it is built), so the handler is in place. One
/// relaxed load of a word written only by a forked child before `fork` returns there.
#[inline]
pub(crate) fn current() -> u64 {
    GENERATION.load(Relaxed)
}

/// Makes `signal` take its default action in processes forked after this call (with the
/// handlers of the process that called it, but not its threads): the opt-in SIGTERM/SIGINT
/// drain relies on a thread, which a child does not inherit, so without this the child would
/// catch the signal and never act on it.
pub(crate) fn default_action_in_children(signal: libc::c_int) -> std::io::Result<()> {
    let generation = generation();
    let in_child = move || {
        if current() != generation {
            let _ = signal_hook::low_level::emulate_default_handler(signal);
        }
    };
    // SAFETY: `register` requires the action to be async-signal-safe: it does one atomic load
    // and calls `emulate_default_handler`, which signal-hook documents as async-signal-safe;
    // it allocates nothing and takes no lock.
    unsafe { signal_hook::low_level::register(signal, in_child) }.map(drop)
}

/// What a signal does now, before logxide handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `SIG_DFL`: its default action (SIGTERM and SIGINT end the process).
    Default,
    /// `SIG_IGN`: nothing.
    Ignored,
    /// A handler of the application's (or the disposition could not be read).
    Handled,
}

/// The current disposition of `signal`. The opt-in signal drain asks before it installs its
/// handlers: it leaves an ignored signal alone, drains without ending the process where the
/// application handles the signal, and chains to the default action when turned off.
pub(crate) fn disposition(signal: libc::c_int) -> Disposition {
    // SAFETY: `sigaction` with a null new action only writes the current one into `current`,
    // a valid, writable `sigaction` (plain data, for which all zeroes is a valid value).
    let (ok, handler) = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        let ok = libc::sigaction(signal, std::ptr::null(), &mut current) == 0;
        (ok, current.sa_sigaction)
    };
    match handler {
        libc::SIG_DFL if ok => Disposition::Default,
        libc::SIG_IGN if ok => Disposition::Ignored,
        _ => Disposition::Handled,
    }
}
