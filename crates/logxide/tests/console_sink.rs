//! The console sink: golden renderings, colors, NO_COLOR, and no terminal injection.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use logxide::sink::{render_record, Batch, ColorChoice, Console, Sink};
use logxide::{Level, Logger};

fn render(line: &str, color: bool) -> String {
    let mut out = Vec::new();
    render_record(line.as_bytes(), color, &mut out);
    String::from_utf8(out).expect("the console writes UTF-8")
}

fn plain(line: &str) -> String {
    render(line, false)
}

#[test]
fn messages() {
    assert_eq!(
        plain(
            r#"{"ts":1700000000.000000,"tid":"Ab.1","lvl":[1],"mt":"info","msg":"standalone message","user_id":123}"#
        ),
        "22:13:20.000000 INFO      Ab.1/1 standalone message user_id=123\n"
    );
    assert_eq!(
        plain(
            r#"{"ts":1700000001.300000,"tid":"Ab.2","lvl":[3,2],"mt":"debug","msg":"rows fetched","rows":1,"who":"Ada Lovelace","empty":"","ok":true,"none":null,"tags":["a","b c"],"obj":{"k":1},"pi":3.25}"#
        ),
        "22:13:21.300000 DEBUG     Ab.2/3/2 rows fetched rows=1 who=\"Ada Lovelace\" empty=\"\" ok=true none=null tags=[\"a\",\"b c\"] obj={\"k\":1} pi=3.25\n"
    );
    // A message with an error: `exc: reason` after the text.
    assert_eq!(
        plain(r#"{"ts":1700000002.000001,"tid":"Zz9Xy8.17","lvl":[1],"mt":"error","msg":"bad input","exc":"core::num::error::ParseIntError","reason":"invalid digit","n":"x"}"#),
        "22:13:22.000001 ERROR     Xy8.17/1 bad input: core::num::error::ParseIntError: invalid digit n=x\n"
    );
    // Quotes and backslashes inside a quoted value are escaped; outside quotes kept.
    assert_eq!(
        plain(
            r#"{"ts":0.0,"tid":"t","lvl":[1],"mt":"note","msg":"C:\\dir","q":"say \"hi\" \\o/","p":"C:\\dir"}"#
        ),
        "00:00:00.000000 NOTE      t/1 C:\\dir q=\"say \\\"hi\\\" \\\\o/\" p=C:\\dir\n"
    );
}

#[test]
fn actions() {
    assert_eq!(
        plain(
            r#"{"ts":1700000001.000000,"tid":"k3Jd82Qa.2","lvl":[1],"at":"http:request","st":"started","path":"/api"}"#
        ),
        "22:13:21.000000 STARTED   82Qa.2/1 http:request started path=/api\n"
    );
    assert_eq!(
        plain(
            r#"{"ts":1700000001.400000,"tid":"Ab.2","lvl":[3,3],"at":"db:query","st":"succeeded","dur":0.2}"#
        ),
        "22:13:21.400000 SUCCEEDED Ab.2/3/3 db:query succeeded in 200.0ms\n"
    );
    assert_eq!(
        plain(
            r#"{"ts":1700000001.500000,"tid":"Ab.2","lvl":[4],"at":"http:request","st":"failed","exc":"ValueError","reason":"boom","dur":0.5}"#
        ),
        "22:13:21.500000 FAILED    Ab.2/4 http:request failed in 500.0ms: ValueError: boom\n"
    );
    assert_eq!(
        plain(
            r#"{"ts":86399.9999995,"tid":"t","lvl":[2],"at":"batch","st":"succeeded","dur":75.5}"#
        ),
        "00:00:00.000000 SUCCEEDED t/2 batch succeeded in 75.500s\n"
    );
    assert_eq!(
        plain(r#"{"ts":1.0,"tid":"t","lvl":[2],"at":"tiny","st":"succeeded","dur":0.0000025}"#),
        "00:00:01.000000 SUCCEEDED t/2 tiny succeeded in 2.5us\n"
    );
}

#[test]
fn eliot_records() {
    assert_eq!(
        plain(
            r#"{"timestamp":1700000001.100000,"task_uuid":"k3Jd82Qa.2","task_level":[2],"message_type":"info","message":"inside the request","user":"ada"}"#
        ),
        "22:13:21.100000 INFO      82Qa.2/2 inside the request user=ada\n"
    );
    assert_eq!(
        plain(
            r#"{"timestamp":1700000001.200000,"task_uuid":"Ab.2","task_level":[3,1],"action_type":"db:query","action_status":"started","sql":"SELECT 1"}"#
        ),
        "22:13:21.200000 STARTED   Ab.2/3/1 db:query started sql=\"SELECT 1\"\n"
    );
    assert_eq!(
        plain(
            r#"{"timestamp":1700000001.500000,"task_uuid":"Ab.2","task_level":[4],"action_type":"http:request","action_status":"failed","dur":0.5,"exception":"ValueError","reason":"boom"}"#
        ),
        "22:13:21.500000 FAILED    Ab.2/4 http:request failed in 500.0ms: ValueError: boom\n"
    );
    // In Eliot's layout the error type is `exception`: a field named `exc` is the user's own.
    assert_eq!(
        plain(
            r#"{"timestamp":1700000001.500000,"task_uuid":"Ab.2","task_level":[4],"message_type":"info","message":"retrying","exc":"mine"}"#
        ),
        "22:13:21.500000 INFO      Ab.2/4 retrying exc=mine\n"
    );
    // In Eliot's layout `ts` is an ordinary field.
    assert_eq!(
        plain(
            r#"{"timestamp":0.5,"task_uuid":"u","task_level":[1],"message_type":"app:event","ts":7}"#
        ),
        "00:00:00.500000 app:event u/1 ts=7\n"
    );
}

#[test]
fn colors() {
    let line = r#"{"ts":1700000000.000000,"tid":"Ab.1","lvl":[1],"mt":"info","msg":"hi","n":1}"#;
    assert_eq!(
        render(line, true),
        "\x1b[2m22:13:20.000000\x1b[0m INFO      \x1b[2mAb.1/1\x1b[0m hi n=1\n"
    );
    let styles = [
        ("debug", "DEBUG    ", "\x1b[2m"),
        ("success", "SUCCESS  ", "\x1b[32m"),
        ("note", "NOTE     ", "\x1b[36m"),
        ("warning", "WARNING  ", "\x1b[33m"),
        ("error", "ERROR    ", "\x1b[31m"),
        ("critical", "CRITICAL ", "\x1b[1;31m"),
    ];
    for (mt, name, code) in styles {
        let line = format!(r#"{{"ts":0,"tid":"t","lvl":[1],"mt":"{mt}","msg":"m"}}"#);
        let (name, pad) = name.split_at(name.trim_end().len());
        assert_eq!(
            render(&line, true),
            format!("\x1b[2m00:00:00.000000\x1b[0m {code}{name}\x1b[0m{pad} \x1b[2mt/1\x1b[0m {code}m\x1b[0m\n")
        );
    }
    assert_eq!(
        render(r#"{"ts":0,"tid":"t","lvl":[2],"at":"job","st":"failed","dur":1.0,"exc":"E","reason":"r"}"#, true),
        "\x1b[2m00:00:00.000000\x1b[0m \x1b[31mFAILED\x1b[0m    \x1b[2mt/2\x1b[0m \x1b[31mjob failed in 1.000s: E: r\x1b[0m\n"
    );
    assert_eq!(
        render(
            r#"{"ts":0,"tid":"t","lvl":[1],"at":"job","st":"started"}"#,
            true
        ),
        "\x1b[2m00:00:00.000000\x1b[0m STARTED   \x1b[2mt/1\x1b[0m job started\n"
    );
}

#[test]
fn no_color_rules() {
    let auto = ColorChoice::Auto;
    let xterm = Some(OsStr::new("xterm"));
    assert!(auto.resolve(true, None, xterm));
    assert!(auto.resolve(true, Some(OsStr::new("")), xterm));
    assert!(!auto.resolve(true, Some(OsStr::new("1")), xterm));
    assert!(!auto.resolve(true, Some(OsStr::new("0")), xterm)); // any non-empty value
    assert!(!auto.resolve(false, None, xterm));
    // A terminal that knows no escapes, or none named, as git and `logxide view` read it.
    assert!(!auto.resolve(true, None, Some(OsStr::new("dumb"))));
    assert!(!auto.resolve(true, None, None));
    assert!(auto.resolve(true, None, Some(OsStr::new("dumb-ish"))));
    assert!(ColorChoice::Always.resolve(false, Some(OsStr::new("1")), None));
    assert!(!ColorChoice::Never.resolve(true, None, xterm));
    assert_eq!(
        "always".parse::<ColorChoice>().unwrap(),
        ColorChoice::Always
    );
    assert_eq!(ColorChoice::default(), ColorChoice::Auto);
}

#[test]
fn unparsable_lines_are_printed_escaped() {
    assert_eq!(plain("plain text"), "plain text\n");
    assert_eq!(plain("[1,2]\n"), "[1,2]\n");
    let mut out = Vec::new();
    render_record(b"raw \x1b[2J\r\x00 \xff end\n", true, &mut out);
    assert_eq!(out, "raw \\x1b[2J\\r\\x00 \u{fffd} end\n".as_bytes());
}

/// No byte below 0x20 except the final `\n` (and the color codes, when `color`), no DEL,
/// no C1 control, no U+2028/2029.
fn assert_inert(out: &str, color: bool) {
    let mut text = out.to_owned();
    if color {
        for code in [
            "\x1b[0m",
            "\x1b[2m",
            "\x1b[32m",
            "\x1b[36m",
            "\x1b[33m",
            "\x1b[31m",
            "\x1b[1;31m",
        ] {
            text = text.replace(code, "");
        }
    }
    let body = text.strip_suffix('\n').expect("ends with a line break");
    for c in body.chars() {
        assert!(
            !(c < ' '
                || c == '\x7f'
                || ('\u{80}'..='\u{9f}').contains(&c)
                || c == '\u{2028}'
                || c == '\u{2029}'),
            "raw control {c:?} in {out:?}"
        );
    }
}

#[test]
fn injection_attempts_are_escaped() {
    let evil = "\x1b]0;pwned\x07\x1b[2J\r\n[FAKE] ok\0\u{9b}31m\u{85}\u{2028}\u{2029}\x7f";
    let line = serde_json::json!({
        "ts": 1.0, "tid": format!("ab{evil}"), "lvl": [1], "mt": "warning",
        "msg": evil, evil: evil, "list": [evil], "k": format!("x {evil}"),
    })
    .to_string();
    for color in [false, true] {
        let out = render(&line, color);
        assert_inert(&out, color);
        assert_eq!(out.matches('\n').count(), 1);
    }
    // json! sorts the keys; the task id keeps its last six characters. Inside the JSON array
    // serde_json's own escapes (`\u001b`) are visible text too.
    let e = r"\x1b]0;pwned\x07\x1b[2J\r\n[FAKE] ok\x00\u009b31m\u0085\u2028\u2029\x7f";
    assert_eq!(
        plain(&line),
        format!(
            "00:00:01.000000 WARNING   1m\\u0085\\u2028\\u2029\\x7f/1 {e} {e}=\"{e}\" k=\"x {e}\" list=[\"{j}\"]\n",
            j = r"\u001b]0;pwned\u0007\u001b[2J\r\n[FAKE] ok\u0000\u009b31m\u0085\u2028\u2029\x7f"
        )
    );
}

#[test]
fn every_control_character_in_every_place() {
    let mut chars: Vec<char> = (0u32..0x300).filter_map(char::from_u32).collect();
    chars.extend(['\u{2028}', '\u{2029}', '\u{202e}', '\u{2066}', '\u{feff}']);
    for c in chars {
        let s = format!("a{c}b");
        let records = [
            serde_json::json!({"ts": 0, "tid": s, "lvl": [1], "mt": s, "msg": s, s.clone(): s}),
            serde_json::json!({"ts": 0, "tid": "t", "lvl": [1], "at": s, "st": s, "dur": s, "exc": s, "reason": s}),
            serde_json::json!({"timestamp": 0, "task_uuid": s, "task_level": [1], "message_type": "info", "message": s}),
        ];
        for record in records {
            for color in [false, true] {
                assert_inert(&render(&record.to_string(), color), color);
            }
        }
        assert_inert(&plain(&s), false);
    }
}

/// Counts `write` calls and keeps the bytes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<(usize, Vec<u8>)>>);

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self.0.lock().unwrap();
        g.0 += 1;
        g.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn one_write_per_batch() {
    let rec = Recorder::default();
    let mut console = Console::new(rec.clone(), false);
    let bytes = concat!(
        r#"{"ts":0,"tid":"t","lvl":[1],"mt":"info","msg":"one"}"#,
        "\n",
        "not json\n",
        r#"{"ts":0,"tid":"t","lvl":[2],"mt":"info","msg":"three"}"#,
        "\n",
    )
    .as_bytes();
    let ends: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i] == b'\n')
        .map(|i| i + 1)
        .collect();
    console.write_batch(&Batch::new(bytes, &ends)).unwrap();
    let g = rec.0.lock().unwrap();
    assert_eq!(g.0, 1);
    assert_eq!(
        String::from_utf8(g.1.clone()).unwrap(),
        "00:00:00.000000 INFO      t/1 one\nnot json\n00:00:00.000000 INFO      t/2 three\n"
    );
}

/// Accepts `limit` bytes, then fails.
struct Short(usize);

impl Write for Short {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("closed"));
        }
        let n = buf.len().min(self.0);
        self.0 -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn partial_writes_report_whole_lines() {
    let bytes = b"a\nbb\nccc\n";
    let batch = Batch::new(bytes, &[2, 5, 9]);
    // "a\n" is 2 rendered bytes, "bb\n" 3: 4 bytes = one whole line.
    let err = Console::new(Short(4), false)
        .write_batch(&batch)
        .unwrap_err();
    assert_eq!(err.written, 1);
    assert!(Console::new(Short(9), false).write_batch(&batch).is_ok());
}

#[test]
fn logger_builder_console_adds_a_filtered_stderr_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = Logger::builder()
        .use_env(false)
        .target(&path)
        .console(ColorChoice::Never, Level::Critical)
        .build()
        .unwrap();
    log.info("file only");
    log.flush(None).unwrap();
    let m = log.metrics();
    assert_eq!(m.sinks.len(), 2);
    assert_eq!(m.sinks[1].name, "stderr");
    assert_eq!((m.sinks[1].written, m.sinks[1].failed), (1, 0));
    log.shutdown(None);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("\"msg\":\"file only\""));
}

/// A line that is not logxide's own (written raw through the writer) with a message *and*
/// `st` or `dur` lost its message, or its `dur`: a record is an action only without `mt`, and
/// `at` / `st` / `dur` are shown as fields of a message.
#[test]
fn a_message_with_action_keys_keeps_its_message_and_fields() {
    assert_eq!(
        plain(r#"{"ts":0,"tid":"t","lvl":[1],"mt":"info","msg":"m","st":"weird","at":"x"}"#),
        "00:00:00.000000 INFO      t/1 m st=weird at=x\n"
    );
    assert_eq!(
        plain(r#"{"msg":"raw","dur":5}"#),
        "--:--:--.------ -         - raw dur=5\n"
    );
    assert_eq!(
        plain(
            r#"{"timestamp":0,"task_uuid":"u","task_level":[1],"message_type":"info","message":"m","action_status":"s","dur":1}"#
        ),
        "00:00:00.000000 INFO      u/1 m action_status=s dur=1\n"
    );
}

/// A record nested deeper than the JSON parser's 128 levels is printed as its JSON text,
/// escaped as any line that does not parse: nothing of it lost, nothing raw.
#[test]
fn a_record_nested_past_128_levels_is_printed_as_its_text() {
    let deep = format!(
        "{{\"ts\":0,\"mt\":\"info\",\"msg\":\"deep \\u001b\",\"v\":{}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(plain(&deep), format!("{deep}\n"));
    assert_eq!(plain(&format!("{deep}\n")), format!("{deep}\n"));
}
