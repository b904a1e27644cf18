//! `view` and `check` of several files read them as one log: a task begun in one file and
//! continued in another is one task — the files of a rotated set taken whole in the order
//! they were written, whatever the order they are given in, and with `--interleave` the files
//! of two processes sharing a task through a serialized action, their records put together
//! by time.

mod common;
use common::{logxide_in, text};

/// A rotated set (`app.log.1` then `app.log`, here old.log and new.log) of one task, and two
/// processes' files of one task (a.log started it, b.log ran an action inside it).
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    write(
        "old.log",
        "{\"ts\":1,\"tid\":\"R.1\",\"lvl\":[1],\"at\":\"job\",\"st\":\"started\"}\n\
         {\"ts\":2,\"tid\":\"R.1\",\"lvl\":[2],\"mt\":\"info\",\"msg\":\"one\"}\n",
    );
    write(
        "new.log",
        "{\"ts\":3,\"tid\":\"R.1\",\"lvl\":[3],\"mt\":\"info\",\"msg\":\"two\"}\n\
         {\"ts\":4,\"tid\":\"R.1\",\"lvl\":[4],\"at\":\"job\",\"st\":\"succeeded\",\"dur\":3}\n",
    );
    write(
        "a.log",
        "{\"ts\":10,\"tid\":\"H.1\",\"lvl\":[1],\"at\":\"send\",\"st\":\"started\"}\n\
         {\"ts\":13,\"tid\":\"H.1\",\"lvl\":[3],\"at\":\"send\",\"st\":\"succeeded\",\"dur\":3}\n",
    );
    write(
        "b.log",
        "{\"ts\":11,\"tid\":\"H.1\",\"lvl\":[2,1],\"at\":\"recv\",\"st\":\"started\"}\n\
         {\"ts\":12,\"tid\":\"H.1\",\"lvl\":[2,2],\"at\":\"recv\",\"st\":\"succeeded\",\"dur\":1}\n",
    );
    dir
}

/// `check` of a task's files (in either order) finds no problem: the task is counted in the
/// file of its first record, each record in its own file. It reported the continuation as
/// records of no started action, and the start as an incomplete task.
#[test]
fn check_reads_several_files_as_one_log() {
    let dir = files();
    let check = |args: &[&str]| {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let out = logxide_in(dir.path(), &all);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let old = "old.log: 2 lines, 1 task, 2 records (1 message, 1 started, 0 succeeded, 0 failed), \
               0 incomplete tasks, 0 problems\n";
    let new =
        "new.log: 2 lines, 0 tasks, 2 records (1 message, 0 started, 1 succeeded, 0 failed), \
               0 incomplete tasks, 0 problems\n";
    assert_eq!(
        check(&["old.log", "new.log"]),
        (Some(0), format!("{old}{new}"), String::new())
    );
    assert_eq!(
        check(&["new.log", "old.log"]),
        (Some(0), format!("{new}{old}"), String::new())
    );
    assert_eq!(
        check(&["--interleave", "b.log", "a.log"]),
        (
            Some(0),
            "b.log: 2 lines, 0 tasks, 2 records (0 messages, 1 started, 1 succeeded, 0 failed), \
             0 incomplete tasks, 0 problems\n\
             a.log: 2 lines, 1 task, 2 records (0 messages, 1 started, 1 succeeded, 0 failed), \
             0 incomplete tasks, 0 problems\n"
                .to_owned(),
            String::new()
        )
    );
    // Alone, each file is what it is: a task without its end, records without their start.
    let (code, out, _) = check(&["new.log"]);
    assert_eq!(code, Some(1), "{out}");
    // A problem across files names the other file's line.
    std::fs::write(
        dir.path().join("dup.log"),
        "{\"ts\":2.5,\"tid\":\"R.1\",\"lvl\":[2],\"mt\":\"info\",\"msg\":\"again\"}\n",
    )
    .unwrap();
    assert_eq!(
        check(&["new.log", "dup.log", "old.log"]),
        (
            Some(1),
            format!(
                "{new}dup.log:1: duplicate task level [2] in task R.1 (first on line 2 of old.log)\n\
                 dup.log: 1 line, 0 tasks, 1 record (1 message, 0 started, 0 succeeded, 0 failed), \
                 0 incomplete tasks, 1 problem\n{old}"
            ),
            String::new()
        )
    );
}

/// `view` of a task's files (in either order) prints one tree of the task, its records by
/// time; a line that is not a record is shown with its file's name. It printed each file
/// under a `==> FILE <==` header, the task cut in two trees.
#[test]
fn view_reads_several_files_as_one_log() {
    let dir = files();
    let view = |args: &[&str]| {
        let mut all = vec!["view", "--color", "never"];
        all.extend_from_slice(args);
        let out = logxide_in(dir.path(), &all);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let rotated = "R.1 1970-01-01T00:00:01.000000Z\n\
                   └─ job started\n   \
                      ├─ info: one\n   \
                      ├─ info: two\n   \
                      └─ job succeeded 3.000s\n";
    for args in [&["old.log", "new.log"], &["new.log", "old.log"]] {
        assert_eq!(view(args), (Some(0), rotated.to_owned(), String::new()));
    }
    assert_eq!(
        view(&["--interleave", "b.log", "a.log"]),
        (
            Some(0),
            "H.1 1970-01-01T00:00:10.000000Z\n\
             └─ send started\n   \
                ├─ recv started\n   \
                │  └─ recv succeeded 1.000s\n   \
                └─ send succeeded 3.000s\n"
                .to_owned(),
            String::new()
        )
    );
    let mut bad = std::fs::read(dir.path().join("new.log")).unwrap();
    bad.extend_from_slice(b"not json\n");
    std::fs::write(dir.path().join("new.log"), bad).unwrap();
    assert_eq!(
        view(&["new.log", "old.log"]),
        (
            Some(0),
            format!("{rotated}! new.log: line 3: not a record: not json\n"),
            String::new()
        )
    );
}

/// The same file given twice (under two names, or a hard link) is a usage error: the files
/// are one log, so its records would be read twice, each a duplicate of itself.
#[test]
fn the_same_file_twice_is_a_usage_error() {
    let dir = files();
    std::fs::hard_link(dir.path().join("old.log"), dir.path().join("link.log")).unwrap();
    for (args, name) in [
        (&["old.log", "new.log", "./old.log"][..], "./old.log"),
        (&["link.log", "old.log"], "old.log"),
    ] {
        let message = format!(
            "{name} is given twice: the files are read as one log, its records would be read twice"
        );
        for cmd in ["view", "check"] {
            let mut all = vec![cmd];
            all.extend_from_slice(args);
            let out = logxide_in(dir.path(), &all);
            assert_eq!(out.status.code(), Some(2), "{all:?}");
            assert_eq!(text(&out.stdout), "", "{all:?}");
            let err = text(&out.stderr);
            assert!(err.contains(&message), "{all:?}: {err}");
        }
    }
    let out = logxide_in(dir.path(), &["view", "--follow", "old.log", "old.log"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A rotated set whose older file has a record that goes back in time (its thread was
/// preempted between its call and the queue: a later record of another task was written
/// first), and whose newer file ends the task: read by time, the newer file's end came
/// before the older file's last record, which `check` then reported as coming after the end
/// of its action (and `view` showed as a second tree). Taken file after file, in the order of
/// their first records, the set is read as it was written, in either order.
#[test]
fn a_rotated_set_is_read_file_after_file_whatever_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    write(
        "app.log.1",
        "{\"ts\":1,\"tid\":\"A.1\",\"lvl\":[1],\"at\":\"job\",\"st\":\"started\"}\n\
         {\"ts\":5,\"tid\":\"B.1\",\"lvl\":[1],\"mt\":\"info\",\"msg\":\"other\"}\n\
         {\"ts\":2,\"tid\":\"A.1\",\"lvl\":[2],\"mt\":\"info\",\"msg\":\"late\"}\n",
    );
    write(
        "app.log",
        "{\"ts\":3,\"tid\":\"A.1\",\"lvl\":[3],\"at\":\"job\",\"st\":\"succeeded\",\"dur\":2}\n",
    );
    let run = |args: &[&str]| {
        let out = logxide_in(dir.path(), args);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let old =
        "app.log.1: 3 lines, 2 tasks, 3 records (2 messages, 1 started, 0 succeeded, 0 failed), \
               0 incomplete tasks, 0 problems\n";
    let new = "app.log: 1 line, 0 tasks, 1 record (0 messages, 0 started, 1 succeeded, 0 failed), \
               0 incomplete tasks, 0 problems\n";
    assert_eq!(
        run(&["check", "app.log.1", "app.log"]),
        (Some(0), format!("{old}{new}"), String::new())
    );
    assert_eq!(
        run(&["check", "app.log", "app.log.1"]),
        (Some(0), format!("{new}{old}"), String::new())
    );
    let tree = "A.1 1970-01-01T00:00:01.000000Z\n\
                └─ job started\n   \
                   ├─ info: late\n   \
                   └─ job succeeded 2.000s\n\
                B.1 1970-01-01T00:00:05.000000Z\n\
                └─ info: other\n";
    for args in [["app.log", "app.log.1"], ["app.log.1", "app.log"]] {
        let mut all = vec!["view", "--color", "never"];
        all.extend_from_slice(&args);
        assert_eq!(
            run(&all),
            (Some(0), tree.to_owned(), String::new()),
            "{args:?}"
        );
    }
    // Read by time (what --interleave asks for), the end comes first.
    let (code, out, _) = run(&["check", "--interleave", "app.log.1", "app.log"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("app.log.1:3: record [2] comes after the end of its action job"),
        "{out}"
    );
}
