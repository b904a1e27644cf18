//! An action started with no global logger writes two records nowhere (its start and its
//! end): `logger::metrics()` counts both as discarded. Its own process (one test): "no
//! global logger" must really be none.

use logxide::logger;

fn counts() -> (u64, u64, u64, u64) {
    let m = logger::metrics();
    (m.enqueued, m.written, m.dropped, m.dropped_by.shutdown)
}

/// Only the start record was counted: the end record of an action started before `init`
/// was lost without a count.
#[test]
fn an_action_before_init_counts_its_start_and_its_end() {
    assert_eq!(counts(), (0, 0, 0, 0));
    {
        let _a = logxide::start_action!("before:init", n = 1);
        logxide::info!("inside");
        assert_eq!(counts(), (3, 0, 3, 3));
    }
    assert_eq!(counts(), (3, 0, 3, 3));
    let a = logxide::start_action!("failing");
    a.fail(&std::io::Error::other("x"));
    assert_eq!(counts(), (5, 0, 5, 5));
    logxide::exception!(&std::io::Error::other("y"), "error");
    assert_eq!(counts(), (6, 0, 6, 6));
}
