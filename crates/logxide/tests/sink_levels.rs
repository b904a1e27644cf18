//! Per-record levels through the writer, and `LevelFilter`.

use logxide::sink::{Batch, FnSink, LevelFilter, MemorySink, SinkError};
use logxide::writer::{Mode, Writer};
use logxide::{Level, Logger};

/// Each line from `"lvl":` on (the time and task id vary between runs).
fn tails(mem: &MemorySink) -> Vec<String> {
    mem.lines()
        .iter()
        .map(|l| {
            let at = l.find(",\"lvl\":").expect("a record");
            let tail = &l[at + 1..];
            // Durations vary too.
            match tail.find(",\"dur\":") {
                Some(d) => {
                    let rest = &tail[d + 7..];
                    let end = rest.find([',', '}']).unwrap();
                    format!("{},\"dur\":D{}", &tail[..d], &rest[end..])
                }
                None => tail.to_owned(),
            }
        })
        .collect()
}

fn logger(sync: bool) -> (Logger, MemorySink, MemorySink) {
    let all = MemorySink::new();
    let loud = MemorySink::new();
    let log = Logger::builder()
        .use_env(false)
        .async_writes(!sync)
        .sink(all.clone())
        .sink(LevelFilter::at_least(loud.clone(), Level::Warning))
        .build()
        .unwrap();
    (log, all, loud)
}

fn log_everything(log: &Logger) {
    for level in Level::ALL {
        log.message(level, level.as_str());
    }
    log.exception("bad input", &std::io::Error::other("boom"));
    {
        let _ok = log.start_action("job:ok", |_| {});
        log.warning("inside");
    }
    let failing = log.start_action("job:bad", |_| {});
    failing.fail_with("Timeout", "too slow");
}

const ALL: [&str; 13] = [
    r#""lvl":[1],"mt":"debug","msg":"debug"}"#,
    r#""lvl":[1],"mt":"info","msg":"info"}"#,
    r#""lvl":[1],"mt":"success","msg":"success"}"#,
    r#""lvl":[1],"mt":"note","msg":"note"}"#,
    r#""lvl":[1],"mt":"warning","msg":"warning"}"#,
    r#""lvl":[1],"mt":"error","msg":"error"}"#,
    r#""lvl":[1],"mt":"critical","msg":"critical"}"#,
    r#""lvl":[1],"mt":"error","msg":"bad input","exc":"std::io::error::Error","reason":"boom"}"#,
    r#""lvl":[1],"at":"job:ok","st":"started"}"#,
    r#""lvl":[2],"mt":"warning","msg":"inside"}"#,
    r#""lvl":[3],"at":"job:ok","st":"succeeded","dur":D}"#,
    r#""lvl":[1],"at":"job:bad","st":"started"}"#,
    r#""lvl":[2],"at":"job:bad","st":"failed","exc":"Timeout","reason":"too slow","dur":D}"#,
];

const LOUD: [&str; 6] = [
    r#""lvl":[1],"mt":"warning","msg":"warning"}"#,
    r#""lvl":[1],"mt":"error","msg":"error"}"#,
    r#""lvl":[1],"mt":"critical","msg":"critical"}"#,
    r#""lvl":[1],"mt":"error","msg":"bad input","exc":"std::io::error::Error","reason":"boom"}"#,
    r#""lvl":[2],"mt":"warning","msg":"inside"}"#,
    r#""lvl":[2],"at":"job:bad","st":"failed","exc":"Timeout","reason":"too slow","dur":D}"#,
];

fn check(sync: bool) {
    let (log, all, loud) = logger(sync);
    log_everything(&log);
    log.flush(None).unwrap();
    assert_eq!(tails(&all), ALL);
    assert_eq!(tails(&loud), LOUD);
    // Filtered-out records count as written for the filtered sink: nothing failed.
    let m = log.metrics();
    assert_eq!(m.written, 13);
    assert_eq!(m.failed, 0);
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (13, 0));
    assert_eq!((m.sinks[1].written, m.sinks[1].failed), (13, 0));
}

#[test]
fn two_sinks_one_filtered_async() {
    check(false);
}

#[test]
fn two_sinks_one_filtered_sync() {
    check(true);
}

#[test]
fn sync_mode_guard_keeps_levels() {
    let (log, all, loud) = logger(false);
    log.info("queued");
    {
        let _sync = logxide::logger::sync_mode();
        log.error("synchronous");
        log.debug("synchronous too");
    }
    log.flush(None).unwrap();
    assert_eq!(all.lines().len(), 3);
    assert_eq!(
        tails(&loud),
        [r#""lvl":[1],"mt":"error","msg":"synchronous"}"#]
    );
}

#[test]
fn writer_levels_reach_sinks_in_order() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(FnSink::new("levels", move |b: &Batch<'_>| {
            seen2.lock().unwrap().extend(b.levels());
            Ok(())
        }))
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue_with_level(b"a", 10).unwrap();
    h.enqueue(b"b").unwrap();
    h.write_sync_with_level(b"c", 50).unwrap();
    h.enqueue_with_level(b"d", 30).unwrap();
    h.write_sync(b"e").unwrap();
    writer.shutdown(None);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(10), None, Some(50), Some(30), None]
    );
}

#[test]
fn failures_map_back_to_the_original_batch() {
    // The inner sink refuses everything: the records before the first kept one are done.
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(LevelFilter::new(
            FnSink::new("refuses", |_: &Batch<'_>| {
                Err(SinkError::new(std::io::Error::other("no")))
            }),
            30,
        ))
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue_with_level(b"quiet", 10).unwrap();
    h.enqueue_with_level(b"quiet too", 20).unwrap();
    h.enqueue_with_level(b"loud", 40).unwrap();
    h.enqueue_with_level(b"quiet again", 10).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (2, 2));
}

/// A record a filter keeps out is not written by that sink: if every sink that takes it
/// failed it, it is failed — not `written` because the filter "wrote" it by leaving it out
/// (a file next to a console at `warning`: the file's info records lost on a full disk would
/// be counted written). A record no sink takes is written (there was nothing to do).
#[test]
fn a_record_only_a_filter_left_out_is_failed_where_the_sink_taking_it_failed() {
    let loud = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(FnSink::new("full", |_: &Batch<'_>| {
            Err(SinkError::new(std::io::Error::other("disk full")))
        }))
        .sink(LevelFilter::new(loud.clone(), 30))
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue_with_level(b"quiet", 20).unwrap();
    h.enqueue_with_level(b"loud", 40).unwrap();
    h.enqueue_with_level(b"quiet again", 10).unwrap();
    writer.flush(None).unwrap();
    assert_eq!(loud.lines(), ["loud"]);
    let m = writer.metrics();
    assert_eq!((m.written, m.failed, m.bytes), (1, 2, 5), "{m:?}");
    // Per sink, as `LevelFilter` documents: the records it left out count as written there.
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (0, 3));
    assert_eq!((m.sinks[1].written, m.sinks[1].failed), (3, 0));
    // Alone, a filter that leaves a record out has done all there was to do with it.
    let quiet_only = Writer::builder()
        .mode(Mode::Manual)
        .sink(LevelFilter::new(MemorySink::new(), 30))
        .build()
        .unwrap();
    quiet_only
        .handle()
        .enqueue_with_level(b"quiet", 20)
        .unwrap();
    let m = quiet_only.shutdown(None).metrics;
    assert_eq!((m.written, m.failed), (1, 0));
}
