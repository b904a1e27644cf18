//! The panic hook `init` installs, with the first `init` made while the thread unwinds a
//! panic (a clean-up in a `Drop` that sets up logging). The global logger and the panic hook
//! are the process's: the test runs itself again as a child, whose abort it can observe.

use std::process::{Command, Stdio};

use logxide::sink::MemorySink;
use logxide::LoggerBuilder;

const CHILD: &str = "LOGXIDE_PANIC_HOOK_CHILD";

/// An `init` during a panic's unwinding aborted the process: installing the panic hook
/// called `std::panic::take_hook`, which panics on a panicking thread (a panic while
/// panicking). The hook is now installed by the first `init` made outside a panic; the one
/// inside succeeds, and logs.
#[test]
fn an_init_while_a_panic_unwinds_succeeds_and_a_later_init_installs_the_hook() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_init_while_a_panic_unwinds_succeeds_and_a_later_init_installs_the_hook",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
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
