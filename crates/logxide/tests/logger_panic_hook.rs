//! The panic hook `init` installs, with the first `init` made while the thread unwinds a
//! panic (a clean-up in a `Drop` that sets up logging), and with a hook the application sets
//! after `init`. The global logger and the panic hook are the process's: each test runs
//! itself again as a child, whose abort it can observe.

use std::process::{Command, Stdio};

use logxide::sink::MemorySink;
use logxide::LoggerBuilder;

const CHILD: &str = "LOGXIDE_PANIC_HOOK_CHILD";

/// Runs the test `name` again in a child process with `var` set (the child runs its own
/// part), and checks that it passed.
fn run_in_child(name: &str, var: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// An `init` during a panic's unwinding aborted the process: installing the panic hook
/// called `std::panic::take_hook`, which panics on a panicking thread (a panic while
/// panicking). The hook is now installed by the first `init` made outside a panic; the one
/// inside succeeds, and logs.
#[test]
fn an_init_while_a_panic_unwinds_succeeds_and_a_later_init_installs_the_hook() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    run_in_child(
        "an_init_while_a_panic_unwinds_succeeds_and_a_later_init_installs_the_hook",
        CHILD,
    );
}

fn msgs(mem: &MemorySink) -> Vec<String> {
    mem.lines()
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["msg"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn child() {
    struct InitOnDrop(MemorySink);
    impl Drop for InitOnDrop {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            let guard = LoggerBuilder::new()
                .use_env(false)
                .sink(self.0.clone())
                .init()
                .unwrap();
            logxide::info!("set up while unwinding");
            std::mem::forget(guard);
        }
    }
    let during = MemorySink::new();
    let unwound = std::panic::catch_unwind({
        let during = during.clone();
        move || {
            let _clean_up = InitOnDrop(during);
            panic!("expected by the test");
        }
    });
    assert!(unwound.is_err());
    logxide::logger::flush(None).unwrap();
    assert_eq!(msgs(&during), ["set up while unwinding"]);
    // The next `init` installs the hook: a panic is logged.
    let after = MemorySink::new();
    let _guard = LoggerBuilder::new()
        .use_env(false)
        .sink(after.clone())
        .init()
        .unwrap();
    let _ = std::panic::catch_unwind(|| panic!("logged"));
    logxide::logger::flush(None).unwrap();
    assert_eq!(msgs(&after), ["panic"]);
}

const HOOKS_CHILD: &str = "LOGXIDE_PANIC_HOOK_USER_CHILD";

/// A hook the application sets after `init` is never removed nor overwritten by logxide: a
/// re-init, a guard's drop, `shutdown` and a later `init` leave the process's hook as they
/// found it (logxide installs its own once, chaining to the hook it found then). A hook that
/// chains to logxide's keeps the panic logged once; one that replaces it is the only hook
/// that runs.
#[test]
fn a_hook_the_application_sets_after_init_is_kept_by_reinit_and_shutdown() {
    if std::env::var_os(HOOKS_CHILD).is_some() {
        return hooks_child();
    }
    run_in_child(
        "a_hook_the_application_sets_after_init_is_kept_by_reinit_and_shutdown",
        HOOKS_CHILD,
    );
}

fn hooks_child() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    static CHAINING: AtomicUsize = AtomicUsize::new(0);
    static REPLACING: AtomicUsize = AtomicUsize::new(0);
    let init = |mem: &MemorySink| {
        LoggerBuilder::new()
            .use_env(false)
            .panic_hook(true)
            .sink(mem.clone())
            .init()
            .unwrap()
    };
    let panic_once = || {
        let _ = std::panic::catch_unwind(|| panic!("expected by the test"));
        logxide::logger::flush(None).unwrap();
    };
    let first = MemorySink::new();
    let g1 = init(&first);
    // A hook that chains to the one it replaces (logxide's).
    let logxides = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        CHAINING.fetch_add(1, SeqCst);
        logxides(info);
    }));
    let second = MemorySink::new();
    let g2 = init(&second);
    drop(g1);
    panic_once();
    assert_eq!(CHAINING.load(SeqCst), 1);
    assert_eq!(msgs(&second), ["panic"]); // once: logxide's hook was not installed again
                                          // A hook that replaces every other: no `init`, guard or `shutdown` brings logxide's back
                                          // over it, nor drops it.
    std::panic::set_hook(Box::new(|_| {
        REPLACING.fetch_add(1, SeqCst);
    }));
    let third = MemorySink::new();
    let g3 = init(&third);
    drop(g2);
    logxide::logger::shutdown(None);
    let fourth = MemorySink::new();
    let g4 = init(&fourth);
    panic_once();
    drop(g3);
    drop(g4);
    panic_once();
    assert_eq!((CHAINING.load(SeqCst), REPLACING.load(SeqCst)), (1, 2));
    assert!(msgs(&third).is_empty() && msgs(&fourth).is_empty());
}
