//! What `view` and `check` hold in memory and how deep they read: task levels of any depth
//! (the library nests actions as deep as the program does), a bounded number of tasks held
//! by `check`, and a bounded `view --follow --action` buffer.

mod common;
use common::{logxide_in, logxide_with_stdin, text};

/// `depth` actions nested in one another, each started inside the one before, the innermost
/// logging one message: written by the library itself.
fn nested(log: &logxide::Logger, depth: usize) {
    if depth == 0 {
        log.info("bottom");
        return;
    }
    let _a = log.start_action("rec", |_| {});
    nested(log, depth - 1);
}

/// A task 1000 actions deep, as the library writes it, is clean for `check` and `view`
/// shows it as a tree 1000 levels deep.
#[test]
fn a_task_1000_actions_deep_is_read() {
    use logxide::sink::MemorySink;
    const DEPTH: usize = 1000;
    let mem = MemorySink::new();
    let log = logxide::Logger::builder()
        .sink(mem.clone())
        .build()
        .unwrap();
    // (On a thread with room for the recursion.)
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, || nested(&log, DEPTH))
            .unwrap();
    });
    log.flush(None).unwrap();
    let file = mem.contents();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deep.log"), &file).unwrap();
    // The innermost action starts at [2,2,…,2,1] (1000 parts).
    let deepest = file.split(|&b| b == b'\n').nth(DEPTH - 1).unwrap();
    let deepest = text(deepest);
    assert!(
        deepest.contains(&format!(
            "\"lvl\":[{}1],\"at\":\"rec\"",
            "2,".repeat(DEPTH - 1)
        )),
        "{}",
        &deepest[..200]
    );

    let out = logxide_in(dir.path(), &["check", "deep.log"]);
    assert_eq!(
        text(&out.stdout),
        "deep.log: 2001 lines, 1 task, 2001 records (1 message, 1000 started, 1000 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = logxide_in(dir.path(), &["view", "--color", "never", "deep.log"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let s = text(&out.stdout);
    // The durations vary: each end line is compared up to its status.
    let got: Vec<&str> = s
        .lines()
        .skip(1)
        .map(|l| l.split(" succeeded").next().unwrap())
        .collect();
    let mut want = Vec::new();
    // The prefix under the action at depth k (0 = the task's root action).
    let under = |k: usize| format!("   {}", "│  ".repeat(k));
    want.push("└─ rec started".to_owned());
    for k in 1..DEPTH {
        want.push(format!("{}├─ rec started", under(k - 1)));
    }
    want.push(format!("{}├─ info: bottom", under(DEPTH - 1)));
    for k in (0..DEPTH).rev() {
        want.push(format!("{}└─ rec", under(k)));
    }
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {}", i + 2);
    }
}

/// A record 200 000 levels deep (a 400 kB line) is read as any other: `view` shows it,
/// `check` says once that nothing started around it — no stack overflow, no time or output
/// growing with the square of its depth.
#[test]
fn a_record_200000_levels_deep_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!(
        "{{\"ts\":1,\"tid\":\"T\",\"lvl\":[{}1],\"mt\":\"info\",\"msg\":\"deep\"}}\n",
        "1,".repeat(199_999)
    );
    std::fs::write(dir.path().join("deep.log"), line).unwrap();
    let out = logxide_in(dir.path(), &["view", "--color", "never", "deep.log"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "T 1970-01-01T00:00:01.000000Z\n└─ info: deep\n"
    );
    assert_eq!(out.status.code(), Some(0));
    let out = logxide_in(dir.path(), &["check", "deep.log"]);
    assert_eq!(
        text(&out.stdout),
        "deep.log:1: records at [1] in task T belong to no started action (nothing started at [1]; records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts)\n\
         deep.log: 1 line, 1 task, 1 record (1 message, 0 started, 0 succeeded, 0 failed), 0 incomplete tasks, 1 problem\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = logxide_with_stdin(
        &["view", "--follow", "--color", "never", "-"],
        line_bytes(&format!("[{}1]", "1,".repeat(199_999))).as_slice(),
    );
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert_eq!(
        s.len(),
        "T ".len() + 2 * 200_000 + "info: deep\n".len(),
        "{}",
        &s[..100]
    );
    assert!(s.starts_with("T      ") && s.ends_with("  info: deep\n"));
}

fn line_bytes(lvl: &str) -> Vec<u8> {
    format!("{{\"ts\":1,\"tid\":\"T\",\"lvl\":{lvl},\"mt\":\"info\",\"msg\":\"deep\"}}\n")
        .into_bytes()
}

/// A problem about a level deeper than 16 parts spells its first and last eight parts.
#[test]
fn long_levels_in_problems_are_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let lvl = format!("[{}5]", "2,".repeat(99));
    let mut body =
        b"{\"ts\":1,\"tid\":\"T\",\"lvl\":[1],\"at\":\"a\",\"st\":\"started\"}\n".to_vec();
    body.extend(line_bytes(&lvl));
    body.extend(line_bytes(&lvl));
    std::fs::write(dir.path().join("d.log"), body).unwrap();
    let out = logxide_in(dir.path(), &["check", "d.log"]);
    assert_eq!(
        text(&out.stdout),
        "d.log:2: records at [2,2] in task T belong to no started action (nothing started at [2,1]; records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts)\n\
         d.log:3: duplicate task level [2,2,2,2,2,2,2,2,…84 more…,2,2,2,2,2,2,2,5] in task T (first on line 2)\n\
         d.log: 3 lines, 1 task, 3 records (2 messages, 1 started, 0 succeeded, 0 failed), 1 incomplete task, 2 problems\n"
    );
}

/// Runs `logxide check ARGS… f.log` on `body`; the exit status and standard output.
fn check_text(body: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.log"), body).unwrap();
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.push("f.log");
    let out = logxide_in(dir.path(), &all);
    (out.status.code(), text(&out.stdout))
}

const LATE: &str = r#"{"ts":1,"tid":"A","lvl":[1],"at":"x","st":"started"}
{"ts":2,"tid":"A","lvl":[2],"at":"x","st":"succeeded"}
{"ts":3,"tid":"A","lvl":[3],"mt":"info","msg":"late"}
{"ts":1,"tid":"L","lvl":[1],"mt":"info","msg":"lone"}
{"ts":0,"tid":"L","lvl":[2],"mt":"info","msg":"after"}
{"ts":4,"tid":"A","lvl":[2],"at":"x","st":"failed"}
{"ts":4,"tid":"A","lvl":[4],"at":"x","st":"failed"}
"#;

/// `check` forgets a task once it ended (its root action ended, or it was a lone message at
/// `[1]`), remembering only its end: a later record of it is reported against that end, as
/// long as the task is among the last `--max-open-tasks` that ended; past that, it starts a
/// new task (which has no start).
#[test]
fn check_forgets_ended_tasks_and_reports_their_late_records() {
    let (code, s) = check_text(LATE, &[]);
    assert_eq!(
        s,
        "f.log:3: record [3] comes after the end of its action x ([2], line 2)\n\
         f.log:5: ts goes backwards in task L: 0 after 1 (line 4)\n\
         f.log:5: record [2] in task L comes after the task's only record, a message at [1] (line 4)\n\
         f.log:6: duplicate task level [2] in task A (first on line 2)\n\
         f.log:7: second end of action x at [4] (it ended on line 2)\n\
         f.log: 7 lines, 2 tasks, 7 records (3 messages, 1 started, 1 succeeded, 2 failed), 0 incomplete tasks, 5 problems\n"
    );
    assert_eq!(code, Some(1));
    // One ended task remembered: A is forgotten when L ends, so its record on line 6 starts
    // a new task.
    let (code, s) = check_text(LATE, &["--max-open-tasks", "1"]);
    assert_eq!(
        s,
        "f.log:3: record [3] comes after the end of its action x ([2], line 2)\n\
         f.log:5: ts goes backwards in task L: 0 after 1 (line 4)\n\
         f.log:5: record [2] in task L comes after the task's only record, a message at [1] (line 4)\n\
         f.log:6: end of action x at [2] without a start (no started record at [1]; records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts, or earlier in the input, in a task forgotten past --max-open-tasks)\n\
         f.log:7: second end of action x at [4] (it ended on line 6)\n\
         f.log: 7 lines, 3 tasks, 7 records (3 messages, 1 started, 1 succeeded, 2 failed), 0 incomplete tasks, 5 problems\n"
    );
    assert_eq!(code, Some(1));
}

/// Past `--max-open-tasks` tasks open at once, the least recently active one is checked as
/// it is so far (here: incomplete), and a problem says so; its later records start a new
/// task.
#[test]
fn check_caps_the_open_tasks() {
    let body = r#"{"ts":1,"tid":"A","lvl":[1],"at":"x","st":"started"}
{"ts":1,"tid":"B","lvl":[1],"at":"x","st":"started"}
{"ts":1,"tid":"C","lvl":[1],"at":"x","st":"started"}
{"ts":2,"tid":"B","lvl":[2],"at":"x","st":"succeeded"}
{"ts":2,"tid":"A","lvl":[2],"at":"x","st":"succeeded"}
{"ts":2,"tid":"C","lvl":[2],"at":"x","st":"succeeded"}
"#;
    let (code, s) = check_text(body, &["--max-open-tasks", "2"]);
    assert_eq!(
        s,
        "f.log:3: more than 2 tasks open at once (--max-open-tasks): task A (last record on line 1) is checked as it is so far; a later record of it starts a new task\n\
         f.log:5: end of action x at [2] without a start (no started record at [1]; records not in the file: dropped by the writer, which its metrics count, or below a sink's level filter, which --filtered accepts, or earlier in the input, in a task forgotten past --max-open-tasks)\n\
         f.log: 6 lines, 4 tasks, 6 records (0 messages, 3 started, 3 succeeded, 0 failed), 1 incomplete task, 2 problems\n"
    );
    assert_eq!(code, Some(1));
    let (code, s) = check_text(body, &["--max-open-tasks", "3"]);
    assert_eq!(
        s,
        "f.log: 6 lines, 3 tasks, 6 records (0 messages, 3 started, 3 succeeded, 0 failed), 0 incomplete tasks, 0 problems\n"
    );
    assert_eq!(code, Some(0));
    let (code, _) = check_text(body, &["--max-open-tasks", "0"]);
    assert_eq!(code, Some(2));
}

/// `view --follow --action db --max-buffer 1K -` on `input`.
fn follow_db_actions_within_1k(input: &str) -> std::process::Output {
    let args = [
        "view",
        "--follow",
        "--color",
        "never",
        "--action",
        "db",
        "--max-buffer",
        "1K",
        "-",
    ];
    logxide_with_stdin(&args, input.as_bytes())
}
/// `view --follow --action` holds the lines of tasks not yet known to contain the action
/// within `--max-buffer`: past it, those held longest are dropped (down to half of it) and
/// stderr says how many; a dropped task that then turns out to contain the action is shown
/// from there on. A lone message is never held; a task that ends without the action is
/// forgotten.
#[test]
fn follow_action_holds_lines_within_max_buffer() {
    let mut input = String::new();
    let mut line = |tid: &str, lvl: &str, body: &str| {
        input.push_str(&format!(
            "{{\"ts\":1,\"tid\":\"{tid}\",\"lvl\":{lvl},{body}}}\n"
        ));
    };
    let start = |at: &str| format!(r#""at":"{at}","st":"started""#);
    let pad = "x".repeat(60);
    line("P.0", "[1]", &format!(r#"{},"pad":"{pad}""#, start("job")));
    for i in 1..=6 {
        line(
            &format!("F.{i}"),
            "[1]",
            &format!(r#"{},"pad":"{pad}""#, start("job")),
        );
    }
    line("P.0", "[2,1]", &start("db"));
    line("F.1", "[2]", r#""at":"job","st":"succeeded""#);
    line("M", "[1]", &start("job"));
    line("M", "[2]", r#""mt":"info","msg":"in""#);
    line("M", "[3,1]", &start("db"));
    line("L", "[1]", r#""mt":"info","msg":"lone""#);
    line("M", "[4]", r#""at":"job","st":"succeeded""#);
    let out = follow_db_actions_within_1k(&input);
    assert_eq!(
        text(&out.stdout),
        "P.0   db started\n\
         M job started\n\
         M   info: in\n\
         M   db started\n\
         M   job succeeded\n"
    );
    // Each start of P or F costs 222 bytes (80 of text, 8 per line, 134 per task): the fifth
    // makes 1110 > 1024, and P.0, F.1 and F.2 are dropped (to 444 <= 512); P.0 remembered as
    // matched costs 134, M's start then makes 1173, and F.3, F.4 and F.5 go (to 507).
    let drop = "logxide view: --max-buffer (1024 bytes) reached holding the lines of tasks not yet known to contain an action of type db: dropped 3 lines of 3 tasks, those held longest; if one of them turns out to contain it, only its lines from here on are shown\n";
    assert_eq!(text(&out.stderr), drop.repeat(2));
    assert_eq!(out.status.code(), Some(0));
    // Within the budget, nothing is dropped: P.0's first line is shown with its action.
    let args = [
        "view", "--follow", "--color", "never", "--action", "db", "-",
    ];
    let out = logxide_with_stdin(&args, input.as_bytes());
    assert_eq!(text(&out.stderr), "");
    assert!(text(&out.stdout).starts_with(&format!(
        "P.0 job started pad={pad}\nP.0   db started\nM job started\n"
    )));
}

/// `view --follow --action` remembers the tasks known to contain the action (to show their
/// later lines) within `--max-buffer` too: past it, those quiet longest are forgotten (down
/// to half of it, with what is held) and stderr says how many; a later line of a forgotten
/// task is held like any other task's, shown once an action of that type comes again in it.
/// (The ids of matched tasks that never end were kept for ever: a busy file followed for
/// long grew memory without bound.)
#[test]
fn follow_action_forgets_quiet_matched_tasks_past_max_buffer() {
    let mut input = String::new();
    let mut line = |tid: &str, lvl: &str, body: &str| {
        input.push_str(&format!(
            "{{\"ts\":1,\"tid\":\"{tid}\",\"lvl\":{lvl},{body}}}\n"
        ));
    };
    for i in 0..8 {
        line(&format!("T{i}"), "[1]", r#""at":"db","st":"started""#);
    }
    line("T0", "[2]", r#""mt":"info","msg":"after""#);
    line("T7", "[2]", r#""mt":"info","msg":"still""#);
    line("T0", "[3,1]", r#""at":"db","st":"started""#);
    let out = follow_db_actions_within_1k(&input);
    assert_eq!(
        text(&out.stdout),
        "T0 db started\nT1 db started\nT2 db started\nT3 db started\n\
         T4 db started\nT5 db started\nT6 db started\nT7 db started\n\
         T7   info: still\n\
         T0   info: after\n\
         T0   db started\n"
    );
    // Each task remembered costs 132 bytes (128 and twice its id): the eighth makes
    // 1056 > 1024, and T0 to T4 are forgotten (to 396 <= 512).
    assert_eq!(
        text(&out.stderr),
        "logxide view: --max-buffer (1024 bytes) reached remembering the tasks known to contain an action of type db: forgot 5 tasks, those quiet longest; their later lines are shown only once another action of that type comes in them\n"
    );
    assert_eq!(out.status.code(), Some(0));
    // Within the budget, nothing is forgotten: T0's line is shown as it comes.
    let out = logxide_with_stdin(
        &[
            "view", "--follow", "--color", "never", "--action", "db", "-",
        ],
        input.as_bytes(),
    );
    assert_eq!(text(&out.stderr), "");
    assert!(
        text(&out.stdout)
            .ends_with("T7 db started\nT0   info: after\nT7   info: still\nT0   db started\n"),
        "{}",
        text(&out.stdout)
    );
}
