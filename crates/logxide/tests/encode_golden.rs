//! Golden tests of the record encoder: exact bytes for the reference format's example lines
//! (compact and eliot), every escape, reserved-key renaming, non-finite floats, nested serde
//! values and Display/Debug captures.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use logxide::encode::{
    bytes, debug, display, serde, ActionStatus, Bytes, DebugValue, DisplayValue, Encode, Format,
    RecordEncoder, SerdeValue, Timestamp,
};
use serde_json::json;

fn ts(secs: u64, micros: u32) -> Timestamp {
    Timestamp { secs, micros }
}

fn line(buf: &[u8]) -> &str {
    std::str::from_utf8(buf).unwrap()
}

/// One encoded value, as text.
fn enc<V: Encode + ?Sized>(v: &V) -> String {
    let mut out = Vec::new();
    v.encode(&mut out);
    String::from_utf8(out).unwrap()
}

/// A record with one field `k` = `v`, fields part only (between the header and `}`).
fn one_field<V: Encode + ?Sized>(format: Format, key: &str, v: &V) -> String {
    let mut buf = Vec::new();
    let mut rec = RecordEncoder::begin(&mut buf, format, ts(0, 0), "t", &[1]);
    rec.field(key, v);
    rec.finish();
    let s = line(&buf);
    let head = match format {
        Format::Compact => r#"{"ts":0.000000,"tid":"t","lvl":[1],"#,
        Format::Eliot => r#"{"timestamp":0.000000,"task_uuid":"t","task_level":[1],"#,
    };
    s.strip_prefix(head)
        .and_then(|s| s.strip_suffix("}\n"))
        .unwrap_or_else(|| panic!("unexpected record {s:?}"))
        .to_string()
}

/// The seven example lines of the reference's section 3, built with the encoder.
fn reference_lines(format: Format) -> Vec<String> {
    let mut buf = Vec::new();
    let mut lines = Vec::new();

    let mut r = RecordEncoder::begin(&mut buf, format, ts(1_700_000_000, 0), "Ab.1", &[1]);
    r.message("info", "standalone message");
    r.field("user_id", &123);
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(&mut buf, format, ts(1_700_000_001, 0), "Ab.2", &[1]);
    r.action("http:request", ActionStatus::Started);
    r.field("path", "/api");
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(&mut buf, format, ts(1_700_000_001, 100_000), "Ab.2", &[2]);
    r.message("info", "inside request");
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(
        &mut buf,
        format,
        ts(1_700_000_001, 200_000),
        "Ab.2",
        &[3, 1],
    );
    r.action("db:query", ActionStatus::Started);
    r.field("sql", &String::from("SELECT 1"));
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(
        &mut buf,
        format,
        ts(1_700_000_001, 300_000),
        "Ab.2",
        &[3, 2],
    );
    r.message("debug", "rows fetched");
    r.field("rows", &1usize);
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(
        &mut buf,
        format,
        ts(1_700_000_001, 400_000),
        "Ab.2",
        &[3, 3],
    );
    r.action("db:query", ActionStatus::Succeeded);
    r.reserved_field("dur", &Duration::from_millis(200));
    r.finish();
    lines.push(line(&buf).to_string());

    let mut r = RecordEncoder::begin(&mut buf, format, ts(1_700_000_001, 500_000), "Ab.2", &[4]);
    r.action("http:request", ActionStatus::Failed);
    r.exception("ValueError");
    r.reserved_field("reason", &display("boom"));
    r.reserved_field("dur", &0.5f64);
    r.finish();
    lines.push(line(&buf).to_string());

    lines
}

#[test]
fn reference_example_lines_compact() {
    let want = [
        r#"{"ts":1700000000.000000,"tid":"Ab.1","lvl":[1],"mt":"info","msg":"standalone message","user_id":123}"#,
        r#"{"ts":1700000001.000000,"tid":"Ab.2","lvl":[1],"at":"http:request","st":"started","path":"/api"}"#,
        r#"{"ts":1700000001.100000,"tid":"Ab.2","lvl":[2],"mt":"info","msg":"inside request"}"#,
        r#"{"ts":1700000001.200000,"tid":"Ab.2","lvl":[3,1],"at":"db:query","st":"started","sql":"SELECT 1"}"#,
        r#"{"ts":1700000001.300000,"tid":"Ab.2","lvl":[3,2],"mt":"debug","msg":"rows fetched","rows":1}"#,
        r#"{"ts":1700000001.400000,"tid":"Ab.2","lvl":[3,3],"at":"db:query","st":"succeeded","dur":0.2}"#,
        r#"{"ts":1700000001.500000,"tid":"Ab.2","lvl":[4],"at":"http:request","st":"failed","exc":"ValueError","reason":"boom","dur":0.5}"#,
    ];
    let got = reference_lines(Format::Compact);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, &format!("{w}\n"));
    }
}

#[test]
fn reference_example_lines_eliot() {
    let want = [
        r#"{"timestamp":1700000000.000000,"task_uuid":"Ab.1","task_level":[1],"message_type":"info","message":"standalone message","user_id":123}"#,
        r#"{"timestamp":1700000001.000000,"task_uuid":"Ab.2","task_level":[1],"action_type":"http:request","action_status":"started","path":"/api"}"#,
        r#"{"timestamp":1700000001.100000,"task_uuid":"Ab.2","task_level":[2],"message_type":"info","message":"inside request"}"#,
        r#"{"timestamp":1700000001.200000,"task_uuid":"Ab.2","task_level":[3,1],"action_type":"db:query","action_status":"started","sql":"SELECT 1"}"#,
        r#"{"timestamp":1700000001.300000,"task_uuid":"Ab.2","task_level":[3,2],"message_type":"debug","message":"rows fetched","rows":1}"#,
        r#"{"timestamp":1700000001.400000,"task_uuid":"Ab.2","task_level":[3,3],"action_type":"db:query","action_status":"succeeded","dur":0.2}"#,
        r#"{"timestamp":1700000001.500000,"task_uuid":"Ab.2","task_level":[4],"action_type":"http:request","action_status":"failed","exception":"ValueError","reason":"boom","dur":0.5}"#,
    ];
    let got = reference_lines(Format::Eliot);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, &format!("{w}\n"));
    }
}

#[test]
fn buffer_is_cleared_and_reused() {
    let mut buf = Vec::with_capacity(512);
    let cap = buf.capacity();
    let ptr = buf.as_ptr();
    for i in 0..100u64 {
        let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(1, 2), "x", &[i]);
        r.message("info", "again");
        r.finish();
        assert_eq!(
            line(&buf),
            format!(
                "{{\"ts\":1.000002,\"tid\":\"x\",\"lvl\":[{i}],\"mt\":\"info\",\"msg\":\"again\"}}\n"
            )
        );
    }
    assert_eq!((buf.capacity(), buf.as_ptr()), (cap, ptr));
}

#[test]
fn header_edge_cases() {
    let mut buf = Vec::new();
    RecordEncoder::begin(
        &mut buf,
        Format::Compact,
        ts(u64::MAX, 999_999),
        "a\"b\n",
        &[u64::MAX, 0, 7],
    )
    .finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":18446744073709551615.999999,\"tid\":\"a\\\"b\\n\",\"lvl\":[18446744073709551615,0,7]}\n"
    );
    RecordEncoder::begin(&mut buf, Format::Eliot, ts(3, 1_500_000), "", &[]).finish();
    assert_eq!(
        line(&buf),
        "{\"timestamp\":4.500000,\"task_uuid\":\"\",\"task_level\":[]}\n"
    );
}

#[test]
fn timestamp_conversions() {
    let t = Timestamp::from(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789));
    assert_eq!(t, ts(1_700_000_000, 123_456));
    assert_eq!(t.to_string(), "1700000000.123456");
    assert_eq!(
        Timestamp::from(UNIX_EPOCH - Duration::from_secs(5)),
        ts(0, 0)
    );
    assert_eq!(ts(1, 2_000_001).to_string(), "3.000001");
    let now = Timestamp::now();
    assert!(now.micros < 1_000_000);
}

#[test]
fn format_and_status_parse_display_serde() {
    assert_eq!("compact".parse::<Format>().unwrap(), Format::Compact);
    assert_eq!(" ELIOT ".parse::<Format>().unwrap(), Format::Eliot);
    let err = "xml".parse::<Format>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid format "xml": expected one of compact, eliot"#
    );
    assert_eq!(Format::Compact.to_string(), "compact");
    assert_eq!(serde_json::to_string(&Format::Eliot).unwrap(), r#""eliot""#);
    assert_eq!(
        serde_json::from_str::<Format>(r#""compact""#).unwrap(),
        Format::Compact
    );
    // Deserialized as the text is parsed: any case (see tests/serde_options.rs).
    assert_eq!(
        serde_json::from_str::<Format>(r#""Compact""#).unwrap(),
        Format::Compact
    );
    assert!(serde_json::from_str::<Format>(r#""xml""#).is_err());
    for (s, name) in [
        (ActionStatus::Started, "started"),
        (ActionStatus::Succeeded, "succeeded"),
        (ActionStatus::Failed, "failed"),
    ] {
        assert_eq!(s.as_str(), name);
        assert_eq!(s.to_string(), name);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
    }
}

#[test]
fn every_escape_in_values_and_keys() {
    let cases: &[(&str, &str)] = &[
        ("\"", r#"\""#),
        ("\\", r#"\\"#),
        ("\n", r#"\n"#),
        ("\r", r#"\r"#),
        ("\t", r#"\t"#),
        ("\u{8}", r#"\b"#),
        ("\u{c}", r#"\f"#),
        ("\u{0}", r#"\u0000"#),
        ("\u{1}", r#"\u0001"#),
        ("\u{b}", r#"\u000b"#),
        ("\u{1b}", r#"\u001b"#),
        ("\u{1f}", r#"\u001f"#),
        ("\u{7f}", r#"\u007f"#),
        ("\u{2028}", r#"\u2028"#),
        ("\u{2029}", r#"\u2029"#),
        // Not escaped.
        (" ", " "),
        ("/", "/"),
        ("'", "'"),
        ("\u{80}", "\u{80}"),
        ("\u{2027}", "\u{2027}"),
        ("\u{202a}", "\u{202a}"),
        ("é€😀", "é€😀"),
        ("\u{feff}", "\u{feff}"),
    ];
    for &(raw, escaped) in cases {
        let s = format!("a{raw}b{raw}");
        let e = format!("a{escaped}b{escaped}");
        assert_eq!(enc(s.as_str()), format!("\"{e}\""), "value {raw:?}");
        assert_eq!(
            one_field(Format::Compact, &s, &1),
            format!("\"{e}\":1"),
            "key {raw:?}"
        );
        // Message, level name, task id, action type are escaped too.
        let mut buf = Vec::new();
        let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), raw, &[1]);
        r.message(raw, raw);
        r.finish();
        assert_eq!(
            line(&buf),
            format!(
                "{{\"ts\":0.000000,\"tid\":\"{escaped}\",\"lvl\":[1],\"mt\":\"{escaped}\",\"msg\":\"{escaped}\"}}\n"
            )
        );
        let mut r = RecordEncoder::begin(&mut buf, Format::Eliot, ts(0, 0), "t", &[1]);
        r.action(raw, ActionStatus::Started);
        r.reserved_field(raw, raw);
        r.masked_field(raw);
        r.finish();
        assert!(line(&buf).ends_with(&format!(
            "\"action_type\":\"{escaped}\",\"action_status\":\"started\",\"{escaped}\":\"{escaped}\",\"{escaped}\":\"***\"}}\n"
        )));
    }
}

#[test]
fn line_breaks_never_survive() {
    let nasty = "l1\nl2\r\nl3\u{2028}l4\u{2029}l5\u{85}l6\u{b}\u{c}\u{0}";
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), nasty, &[1]);
    r.message(nasty, nasty);
    r.field(nasty, nasty);
    r.field("d", &display(nasty));
    r.field("g", &debug(nasty));
    r.field("s", &serde(json!({ nasty: [nasty] })));
    r.field("b", &bytes(nasty.as_bytes()));
    r.finish();
    let s = line(&buf);
    assert_eq!(s.lines().count(), 1);
    assert_eq!(s.matches('\n').count(), 1);
    assert!(!s.contains('\r') && !s.contains('\u{2028}') && !s.contains('\u{2029}'));
    let v: serde_json::Value = serde_json::from_str(s).unwrap();
    assert_eq!(v["msg"], nasty);
    assert_eq!(v[nasty], nasty);
    assert_eq!(v["d"], nasty);
    assert_eq!(v["s"], json!({ nasty: [nasty] }));
    assert_eq!(v["b"], nasty);
}

#[test]
fn reserved_keys_are_renamed() {
    for format in [Format::Compact, Format::Eliot] {
        for &k in format.reserved_keys() {
            assert_eq!(one_field(format, k, &1), format!("\"_{k}\":1"));
            assert_eq!(
                one_field(format, &format!("_{k}"), &1),
                format!("\"__{k}\":1")
            );
            assert_eq!(
                one_field(format, &format!("__{k}"), &1),
                format!("\"___{k}\":1")
            );
            assert_eq!(
                one_field(format, &format!("{k}_"), &1),
                format!("\"{k}_\":1")
            );
            assert_eq!(
                one_field(format, &format!("{k}x"), &1),
                format!("\"{k}x\":1")
            );
        }
    }
    // Only the format's own keys.
    assert_eq!(one_field(Format::Compact, "message", &1), "\"message\":1");
    assert_eq!(one_field(Format::Compact, "Msg", &1), "\"Msg\":1");
    assert_eq!(one_field(Format::Eliot, "msg", &1), "\"msg\":1");
    assert_eq!(one_field(Format::Compact, "_", &1), "\"_\":1");
    assert_eq!(one_field(Format::Compact, "", &1), "\"\":1");

    // A full record keeps the logger's keys and the user's side by side, no duplicates.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[2]);
    r.action("a", ActionStatus::Failed);
    r.field("ts", "user ts");
    r.field("_ts", "user _ts");
    r.field("reason", "user reason");
    r.masked_field("tid");
    r.reserved_field("reason", "boom");
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[2],\"at\":\"a\",\"st\":\"failed\",\
         \"_ts\":\"user ts\",\"__ts\":\"user _ts\",\"_reason\":\"user reason\",\
         \"_tid\":\"***\",\"reason\":\"boom\"}\n"
    );
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v.len(), 10);

    let mut r = RecordEncoder::begin(&mut buf, Format::Eliot, ts(0, 0), "t", &[1]);
    r.message("info", "m");
    r.field("message", "user");
    r.field("ts", "not reserved in eliot");
    r.finish();
    assert!(line(&buf)
        .ends_with(",\"message\":\"m\",\"_message\":\"user\",\"ts\":\"not reserved in eliot\"}\n"));
}

#[test]
fn masked_fields() {
    assert_eq!(
        {
            let mut buf = Vec::new();
            let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
            r.masked_field("password");
            r.masked_field("msg");
            r.finish();
            line(&buf).to_string()
        },
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"password\":\"***\",\"_msg\":\"***\"}\n"
    );
}

#[test]
fn integers() {
    assert_eq!(enc(&0u8), "0");
    assert_eq!(enc(&-128i8), "-128");
    assert_eq!(enc(&u16::MAX), "65535");
    assert_eq!(enc(&i32::MIN), "-2147483648");
    assert_eq!(enc(&u64::MAX), "18446744073709551615");
    assert_eq!(enc(&i64::MIN), "-9223372036854775808");
    assert_eq!(enc(&u128::MAX), "340282366920938463463374607431768211455");
    assert_eq!(enc(&i128::MIN), "-170141183460469231731687303715884105728");
    assert_eq!(enc(&usize::MAX), usize::MAX.to_string());
    assert_eq!(enc(&isize::MIN), isize::MIN.to_string());
}

#[test]
fn floats_finite_and_not() {
    assert_eq!(enc(&0.0f64), "0.0");
    assert_eq!(enc(&-0.0f64), "-0.0");
    assert_eq!(enc(&1.0f64), "1.0");
    assert_eq!(enc(&0.1f64), "0.1");
    assert_eq!(enc(&-2.5f64), "-2.5");
    assert_eq!(enc(&1e300f64), "1e+300");
    assert_eq!(enc(&5e-324f64), "5e-324");
    assert_eq!(enc(&f64::MAX), "1.7976931348623157e+308");
    assert_eq!(enc(&0.1f32), "0.1");
    assert_eq!(enc(&f32::MAX), "3.4028235e+38");
    assert_eq!(enc(&f64::NAN), r#""NaN""#);
    assert_eq!(enc(&-f64::NAN), r#""NaN""#);
    assert_eq!(enc(&f64::INFINITY), r#""Infinity""#);
    assert_eq!(enc(&f64::NEG_INFINITY), r#""-Infinity""#);
    assert_eq!(enc(&f32::NAN), r#""NaN""#);
    assert_eq!(enc(&f32::INFINITY), r#""Infinity""#);
    assert_eq!(enc(&f32::NEG_INFINITY), r#""-Infinity""#);
    // Every finite output is a JSON number that reads back the same.
    for v in [0.2, 1e21, 1e-7, 123456.789, f64::MIN_POSITIVE, -1e-300] {
        let back: f64 = serde_json::from_str(&enc(&v)).unwrap();
        assert_eq!(back, v);
    }
    // In a record, non-finite values keep the line valid.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("nan", &f64::NAN);
    r.field("inf", &f32::INFINITY);
    r.field("ninf", &f64::NEG_INFINITY);
    r.finish();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["nan"], "NaN");
    assert_eq!(v["inf"], "Infinity");
    assert_eq!(v["ninf"], "-Infinity");
}

#[test]
fn other_scalars_and_smart_pointers() {
    assert_eq!(enc(&true), "true");
    assert_eq!(enc(&false), "false");
    assert_eq!(enc(&'x'), r#""x""#);
    assert_eq!(enc(&'"'), r#""\"""#);
    assert_eq!(enc(&'\n'), r#""\n""#);
    assert_eq!(enc(&'\u{2028}'), r#""\u2028""#);
    assert_eq!(enc(&'😀'), "\"😀\"");
    assert_eq!(enc(&String::from("s")), r#""s""#);
    assert_eq!(enc(&&&"ref"), r#""ref""#);
    assert_eq!(enc(&Box::new(5)), "5");
    assert_eq!(enc(&Box::<str>::from("bs")), r#""bs""#);
    assert_eq!(enc(&Rc::new(1.5)), "1.5");
    assert_eq!(enc(&Arc::<str>::from("arc")), r#""arc""#);
    assert_eq!(enc(&Cow::Borrowed("cow")), r#""cow""#);
    assert_eq!(enc(&Cow::<str>::Owned("owned".into())), r#""owned""#);
    assert_eq!(enc(&None::<i32>), "null");
    assert_eq!(enc(&Some("x")), r#""x""#);
    assert_eq!(enc(&Some(None::<u8>)), "null");
    assert_eq!(enc(&Duration::from_millis(200)), "0.2");
    assert_eq!(enc(&Duration::from_secs(3)), "3.0");
    assert_eq!(enc(&Duration::from_nanos(1)), "1e-9");
    assert_eq!(enc(&Duration::ZERO), "0.0");
    // Unsized values through the `?Sized` bound of `field`.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("s", "str");
    let dynv: &dyn Encode = &7u8;
    r.field("dyn", dynv);
    r.finish();
    assert!(line(&buf).ends_with(",\"s\":\"str\",\"dyn\":7}\n"));
}

#[test]
fn lossy_bytes() {
    assert_eq!(enc(&Bytes(b"")), r#""""#);
    assert_eq!(enc(&Bytes(b"plain")), r#""plain""#);
    assert_eq!(enc(&Bytes(b"a\nb\"")), r#""a\nb\"""#);
    assert_eq!(enc(&Bytes(b"\xff\xfe")), "\"\u{FFFD}\u{FFFD}\"");
    assert_eq!(enc(&Bytes(b"x\xe2\x80\xa8y")), r#""x\u2028y""#);
    // A truncated U+2028 is invalid UTF-8, not a line separator.
    assert_eq!(enc(&bytes(b"x\xe2\x80")), "\"x\u{FFFD}\"");
    assert_eq!(enc(&bytes("é".as_bytes())), "\"é\"");
}

struct Tricky;

impl fmt::Display for Tricky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("say \"hi\"\n")?;
        f.write_str("back\\slash\t")?;
        fmt::Write::write_char(f, '\u{2029}')
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct Point {
    name: &'static str,
    x: i32,
}

struct Failing;

impl fmt::Display for Failing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("partial \"")?;
        Err(fmt::Error)
    }
}

#[test]
fn display_and_debug_captures() {
    assert_eq!(
        enc(&display(Tricky)),
        r#""say \"hi\"\nback\\slash\t\u2029""#
    );
    assert_eq!(enc(&DisplayValue(&Tricky)), enc(&display(Tricky)));
    assert_eq!(enc(&display(42)), r#""42""#);
    assert_eq!(enc(&display("")), r#""""#);
    assert_eq!(enc(&display(1.5)), r#""1.5""#);
    assert_eq!(enc(&debug("a\"b\n")), r#""\"a\\\"b\\n\"""#);
    assert_eq!(
        enc(&DebugValue(Point {
            name: "p\"q",
            x: -1
        })),
        r#""Point { name: \"p\\\"q\", x: -1 }""#
    );
    // Pretty Debug output has real newlines: escaped.
    assert_eq!(
        enc(&display(format_args!("{:#?}", Point { name: "n", x: 2 }))),
        r#""Point {\n    name: \"n\",\n    x: 2,\n}""#
    );
    // A Display impl that fails still leaves a valid string.
    assert_eq!(enc(&display(Failing)), r#""partial \"""#);
    // The captured text reads back exactly.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("d", &display(Tricky));
    r.field("g", &debug(Point { name: "z", x: 0 }));
    r.finish();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["d"], Tricky.to_string());
    assert_eq!(v["g"], format!("{:?}", Point { name: "z", x: 0 }));
}

#[derive(serde::Serialize)]
struct Req {
    path: &'static str,
    code: u16,
    ratio: f64,
    tags: Vec<&'static str>,
    inner: Option<Box<Req>>,
}

struct BadSerialize;

impl serde::Serialize for BadSerialize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = s.serialize_seq(None)?;
        seq.serialize_element(&1)?;
        seq.serialize_element("half")?;
        Err(S::Error::custom("refused \"here\"\nnow"))
    }
}

#[test]
fn nested_serde_values() {
    let req = Req {
        path: "/a\"b",
        code: 200,
        ratio: 0.5,
        tags: vec!["x", "y\n"],
        inner: Some(Box::new(Req {
            path: "/in",
            code: 404,
            ratio: f64::NAN,
            tags: vec![],
            inner: None,
        })),
    };
    assert_eq!(
        enc(&serde(&req)),
        r#"{"path":"/a\"b","code":200,"ratio":0.5,"tags":["x","y\n"],"inner":{"path":"/in","code":404,"ratio":null,"tags":[],"inner":null}}"#
    );
    // Non-finite floats inside serde values: null.
    assert_eq!(
        enc(&SerdeValue(vec![
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1.0
        ])),
        "[null,null,null,1.0]"
    );
    assert_eq!(enc(&serde(f32::NAN)), "null");
    // DEL and U+2028/9 in nested strings and keys are escaped too.
    assert_eq!(
        enc(&serde(json!({"k\u{2028}\u{7f}": ["\u{2029}", "\u{1}"]}))),
        r#"{"k\u2028\u007f":["\u2029","\u0001"]}"#
    );
    // Maps with non-string keys that serde_json can quote.
    let mut m = BTreeMap::new();
    m.insert(1, "one");
    m.insert(2, "two");
    assert_eq!(enc(&serde(&m)), r#"{"1":"one","2":"two"}"#);
    // Errors replace the value, nothing half-written remains.
    let mut fm = BTreeMap::new();
    fm.insert((1, 2), "tuple key");
    assert_eq!(
        enc(&serde(&fm)),
        r#""<serialize error: key must be a string>""#
    );
    assert_eq!(
        enc(&serde(BadSerialize)),
        r#""<serialize error: refused \"here\"\nnow>""#
    );
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("before", &1);
    r.field("bad", &serde(BadSerialize));
    r.field(
        "after",
        &serde(json!({"n": null, "t": true, "a": [1, 2.5, "s"]})),
    );
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"before\":1,\
         \"bad\":\"<serialize error: refused \\\"here\\\"\\nnow>\",\
         \"after\":{\"a\":[1,2.5,\"s\"],\"n\":null,\"t\":true}}\n"
    );
    serde_json::from_slice::<serde_json::Value>(&buf).unwrap();
}

/// JSON given as is (`serde_json::value::RawValue`, e.g. a payload forwarded unparsed) may
/// hold line breaks between its tokens and DEL, U+2028, U+2029 raw inside its strings: it
/// is written on one line, without that whitespace, those characters escaped. (It was copied
/// verbatim: a queued record came out as several lines, and a synchronous one was dropped as
/// invalid.)
#[test]
fn raw_json_values_stay_on_one_line() {
    use serde_json::value::RawValue;
    let raw = RawValue::from_string(
        "{\r\n\t\"a b\" : [ 1 , \"x\\\" \\\\\" ],\n  \"s\": \"p\u{2028}q\u{2029}r\u{7f}\u{e9}\u{20ac}\"\n}"
            .to_string(),
    )
    .unwrap();
    let want = r#"{"a b":[1,"x\" \\"],"s":"p\u2028q\u2029r\u007fé€"}"#;
    assert_eq!(enc(&serde(&raw)), want);
    // Nested, and in a record.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("v", &serde(json!({"k": &raw})));
    r.finish();
    assert_eq!(
        line(&buf),
        format!("{{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"v\":{{\"k\":{want}}}}}\n")
    );
}

/// An escaped lone surrogate in JSON given as is (a browser's payload cut inside an emoji,
/// forwarded as a `RawValue`) made a line that serde_json, and so `logxide check`, rejects:
/// it is written as `\ufffd`, and surrogate pairs and other escapes are kept.
#[test]
fn lone_surrogates_in_raw_json_become_replacement_characters() {
    use serde_json::value::RawValue;
    let raw = RawValue::from_string(
        r#"["\ud83d","x\ude00y","\ud83d\ude00","\uD800\u0041","\\ud800","\"\ud800\\","\u00e9\n"]"#
            .to_string(),
    )
    .unwrap();
    let out = enc(&serde(&raw));
    assert_eq!(
        out,
        r#"["\ufffd","x\ufffdy","\ud83d\ude00","\ufffd\u0041","\\ud800","\"\ufffd\\","\u00e9\n"]"#
    );
    let back: Vec<String> = serde_json::from_str(&out).unwrap();
    assert_eq!(back[2], "😀");
}

/// A value whose `Serialize` writes a string with `collect_str` of a `Display` that writes a
/// part and then fails (returns `fmt::Error` on its own).
struct CollectsFailing;

impl serde::Serialize for CollectsFailing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Failing)
    }
}

#[derive(serde::Serialize)]
struct Holder {
    at: CollectsFailing,
    n: u8,
    list: Vec<CollectsFailing>,
    opt: Option<CollectsFailing>,
    tup: (CollectsFailing, u8),
    var: Variant,
}

#[derive(serde::Serialize)]
enum Variant {
    V(CollectsFailing),
}

/// serde_json's `collect_str` `expect`s an I/O error when formatting fails, so a `Display`
/// that failed on its own made the log call panic. Such a string is now what the `Display`
/// wrote so far (as for a `%x` field), at any depth: in a struct, a seq, a tuple, an option,
/// a variant, a map's key and value.
#[test]
fn a_failing_display_given_to_collect_str_is_what_it_wrote() {
    assert_eq!(enc(&serde(CollectsFailing)), r#""partial \"""#);
    assert_eq!(enc(&serde(format_args!("{}", Failing))), r#""partial \"""#);
    let holder = Holder {
        at: CollectsFailing,
        n: 7,
        list: vec![CollectsFailing, CollectsFailing],
        opt: Some(CollectsFailing),
        tup: (CollectsFailing, 1),
        var: Variant::V(CollectsFailing),
    };
    assert_eq!(
        enc(&serde(&holder)),
        r#"{"at":"partial \"","n":7,"list":["partial \"","partial \""],"opt":"partial \"","tup":["partial \"",1],"var":{"V":"partial \""}}"#
    );
    let mut m = BTreeMap::new();
    m.insert(CollectsFailingKey, CollectsFailing);
    assert_eq!(enc(&serde(&m)), r#"{"partial \"":"partial \""}"#);
    assert_eq!(
        enc(&serde(json!({"k": [1, "x"]}))),
        r#"{"k":[1,"x"]}"#,
        "unchanged without collect_str"
    );
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("v", &serde(&holder.list));
    r.field("after", &1);
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"v\":[\"partial \\\"\",\"partial \\\"\"],\"after\":1}\n"
    );
}

/// [`CollectsFailing`] as a map key (ordered).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct CollectsFailingKey;

impl serde::Serialize for CollectsFailingKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Failing)
    }
}

/// A value whose `Serialize` fails with `custom` of a message: [`Failing`] (its `Display`
/// writes a part, then fails) or a text.
enum Refuses {
    Failing,
    Text(&'static str),
}

impl serde::Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            Refuses::Failing => Err(S::Error::custom(Failing)),
            Refuses::Text(t) => Err(S::Error::custom(t)),
        }
    }
}

impl PartialEq for Refuses {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Refuses {}
impl PartialOrd for Refuses {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Refuses {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[derive(serde::Serialize)]
struct HoldsRefusal {
    n: u8,
    list: Vec<u8>,
    bad: Refuses,
}

/// serde_json's `Error::custom` is `msg.to_string()`, which panics when the message's
/// `Display` fails on its own: a `Serialize` impl returning `Err(S::Error::custom(m))` with
/// such an `m` made the log call panic. The value is now the usual
/// `"<serialize error: ...>"` with what the `Display` wrote so far, at any depth (top level,
/// in a struct, a seq, an option, a variant, a map's value and key); a message whose
/// `Display` succeeds is written as before.
#[test]
fn a_custom_serialize_error_whose_display_fails_is_what_it_wrote() {
    let partial = r#""<serialize error: partial \">""#;
    assert_eq!(enc(&serde(Refuses::Failing)), partial);
    let holder = HoldsRefusal {
        n: 7,
        list: vec![1, 2],
        bad: Refuses::Failing,
    };
    assert_eq!(enc(&serde(&holder)), partial, "in a struct");
    assert_eq!(
        enc(&serde(vec![Refuses::Text("x"), Refuses::Failing])),
        r#""<serialize error: x>""#,
        "the first error in a seq"
    );
    assert_eq!(enc(&serde([Refuses::Failing])), partial, "in a seq");
    assert_eq!(enc(&serde(Some(Refuses::Failing))), partial, "in an option");
    assert_eq!(enc(&serde((1, Refuses::Failing))), partial, "in a tuple");
    let mut value = BTreeMap::new();
    value.insert("k", Refuses::Failing);
    assert_eq!(enc(&serde(&value)), partial, "a map's value");
    let mut key = BTreeMap::new();
    key.insert(Refuses::Failing, 1);
    assert_eq!(enc(&serde(&key)), partial, "a map's key");
    // A message whose `Display` succeeds: as before.
    assert_eq!(
        enc(&serde(Refuses::Text("no \"way\"\n"))),
        r#""<serialize error: no \"way\"\n>""#
    );
    let holder = HoldsRefusal {
        n: 7,
        list: vec![1, 2],
        bad: Refuses::Text("no"),
    };
    assert_eq!(enc(&serde(&holder)), r#""<serialize error: no>""#);
    // In a record: the line is complete and the fields around it untouched.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("before", &1);
    r.field("bad", &serde(vec![vec![Refuses::Failing]]));
    r.field("ok", &serde(Refuses::Text("fine")));
    r.field("after", &serde(json!({"a": [1]})));
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"before\":1,\
         \"bad\":\"<serialize error: partial \\\">\",\
         \"ok\":\"<serialize error: fine>\",\"after\":{\"a\":[1]}}\n"
    );
    serde_json::from_slice::<serde_json::Value>(&buf).unwrap();
}

/// A map written against serde's protocol: keys and values out of turn.
enum MisusesMap {
    /// `serialize_key` twice, then one value.
    KeyTwice,
    /// `serialize_value` with no key before it.
    ValueWithoutKey,
    /// `serialize_key`, then `end`.
    KeyWithoutValue,
}

impl serde::Serialize for MisusesMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("ok", &1)?;
        match self {
            MisusesMap::KeyTwice => {
                map.serialize_key("a")?;
                map.serialize_key("b")?;
                map.serialize_value(&2)?;
            }
            MisusesMap::ValueWithoutKey => map.serialize_value(&2)?,
            MisusesMap::KeyWithoutValue => map.serialize_key("a")?,
        }
        map.end()
    }
}

/// serde_json writes map keys and values as it is asked, without checking their order: a
/// `Serialize` impl calling `serialize_key` twice wrote `{"ok":1,"a","b":2}`, one calling
/// `serialize_value` first `{"ok":1,:2}`, one ending after a key `{"ok":1,"a"}` — records
/// that no JSON reader accepts. Now each is the usual `"<serialize error: ...>"`, saying
/// which rule was broken, in a record too.
#[test]
fn a_map_whose_keys_and_values_come_out_of_turn_is_a_serialize_error() {
    assert_eq!(
        enc(&serde(MisusesMap::KeyTwice)),
        r#""<serialize error: a map key came before the value of the key before it>""#
    );
    assert_eq!(
        enc(&serde(MisusesMap::ValueWithoutKey)),
        r#""<serialize error: a map value came without a key>""#
    );
    assert_eq!(
        enc(&serde(MisusesMap::KeyWithoutValue)),
        r#""<serialize error: a map ended after a key without its value>""#
    );
    // serde's own users of `serialize_key` / `serialize_value` (flatten, internally tagged
    // enums) keep their turns.
    #[derive(serde::Serialize)]
    struct Outer {
        a: u8,
        #[serde(flatten)]
        rest: BTreeMap<&'static str, u8>,
        tagged: Tagged,
    }
    #[derive(serde::Serialize)]
    #[serde(tag = "kind")]
    enum Tagged {
        Map(BTreeMap<&'static str, u8>),
    }
    let m = BTreeMap::from([("x", 1), ("y", 2)]);
    let outer = Outer {
        a: 0,
        rest: m.clone(),
        tagged: Tagged::Map(m),
    };
    assert_eq!(
        enc(&serde(&outer)),
        r#"{"a":0,"x":1,"y":2,"tagged":{"kind":"Map","x":1,"y":2}}"#
    );
    // Nested, and in a record.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("v", &serde(json!([1])));
    r.field("bad", &serde(vec![Some(MisusesMap::KeyWithoutValue)]));
    r.field("after", &1);
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[1],\"v\":[1],\
         \"bad\":\"<serialize error: a map ended after a key without its value>\",\"after\":1}\n"
    );
}

/// A `Serialize` impl that goes on after a part of it failed, ignoring the error.
enum IgnoresAnError {
    /// A seq element that wrote half a map and then failed.
    HalfElement,
    /// A map entry whose key is not a string.
    BadKey,
    /// A seq element that failed before writing anything (`custom`).
    RefusedElement,
}

/// A map with one entry, then an error.
struct HalfMap;

impl serde::Serialize for HalfMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("k", &1)?;
        Err(S::Error::custom("stopped half-way"))
    }
}

impl serde::Serialize for IgnoresAnError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            IgnoresAnError::HalfElement => {
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element(&1)?;
                let _ = seq.serialize_element(&HalfMap);
                seq.serialize_element(&2)?;
                seq.end()
            }
            IgnoresAnError::BadKey => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("a", &1)?;
                let _ = map.serialize_entry(&[1, 2], &2);
                map.serialize_entry("b", &3)?;
                map.end()
            }
            IgnoresAnError::RefusedElement => {
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element(&1)?;
                let _ = seq.serialize_element(&Refuses::Text("no"));
                seq.serialize_element(&2)?;
                seq.end()
            }
        }
    }
}

/// A `Serialize` impl that ignored an error of a part and went on left that part
/// half-written inside the value, which then "succeeded": `[1,{"k":1,2]`, `{"a":1,,"b":3}`,
/// `[1,,2]` in the record, invalid JSON. The value is now the `"<serialize error: ...>"` of
/// the first error, whatever the impl did with it, at any depth.
#[test]
fn an_error_a_serialize_impl_ignores_still_replaces_the_value() {
    assert_eq!(
        enc(&serde(IgnoresAnError::HalfElement)),
        r#""<serialize error: stopped half-way>""#
    );
    assert_eq!(
        enc(&serde(IgnoresAnError::BadKey)),
        r#""<serialize error: key must be a string>""#
    );
    assert_eq!(
        enc(&serde(IgnoresAnError::RefusedElement)),
        r#""<serialize error: no>""#
    );
    assert_eq!(
        enc(&serde(Some(vec![IgnoresAnError::BadKey]))),
        r#""<serialize error: key must be a string>""#
    );
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Eliot, ts(0, 0), "t", &[1]);
    r.field("bad", &serde((7, IgnoresAnError::HalfElement)));
    r.field("after", &serde(json!({"a": [1]})));
    r.finish();
    assert_eq!(
        line(&buf),
        "{\"timestamp\":0.000000,\"task_uuid\":\"t\",\"task_level\":[1],\
         \"bad\":\"<serialize error: stopped half-way>\",\"after\":{\"a\":[1]}}\n"
    );
}

/// A `Serialize` impl handing serde_json text as raw JSON the way `RawValue` does (the struct
/// and field name serde_json recognises), without `RawValue`'s check that it is JSON.
struct FakeRaw(&'static str);

impl serde::Serialize for FakeRaw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        const TOKEN: &str = "$serde_json::private::RawValue";
        let mut st = s.serialize_struct(TOKEN, 1)?;
        st.serialize_field(TOKEN, self.0)?;
        st.end()
    }
}

/// serde_json writes what a `Serialize` impl hands it as raw JSON without a check (the check
/// is `RawValue`'s, when one is made): text that is not JSON went into the record as it was,
/// `[notjson]`, `[]` for an empty text. Such text is now a serialize error, in a record too,
/// and real raw JSON is written as before.
#[test]
fn raw_text_that_is_not_json_is_a_serialize_error() {
    assert_eq!(
        enc(&serde(vec![FakeRaw("not json")])),
        r#""<serialize error: raw JSON text is not JSON: expected ident at line 1 column 2>""#
    );
    assert_eq!(
        enc(&serde(FakeRaw(""))),
        r#""<serialize error: raw JSON text is not JSON: EOF while parsing a value at line 1 column 0>""#
    );
    for bad in [
        "{\"a\":1",
        "[1,,2]",
        "\"open",
        "1 2",
        "{\"a\"\n:\n}",
        "\"\\q\"",
    ] {
        let mut buf = Vec::new();
        let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
        r.field("v", &serde(vec![FakeRaw(bad)]));
        r.field("after", &1);
        r.finish();
        let line = line(&buf);
        assert!(
            line.ends_with(",\"after\":1}\n")
                && line.contains(",\"v\":\"<serialize error: raw JSON text is not JSON: "),
            "{bad:?}: {line}"
        );
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    assert_eq!(
        enc(&serde(FakeRaw(" [1, {\"a\" : \"b\"}]\n"))),
        r#"[1,{"a":"b"}]"#
    );
}

/// Arrays (or objects, or newtype variants) nested `depth` levels around `1` or a raw JSON
/// value, made as they are serialized (nothing to build or drop).
struct Nested<'a> {
    depth: usize,
    kind: u8,
    leaf: Option<&'a serde_json::value::RawValue>,
}

fn nested(depth: usize, kind: u8) -> Nested<'static> {
    Nested {
        depth,
        kind,
        leaf: None,
    }
}

impl serde::Serialize for Nested<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if self.depth == 0 {
            return match self.leaf {
                Some(raw) => raw.serialize(s),
                None => s.serialize_u8(1),
            };
        }
        let inner = Nested {
            depth: self.depth - 1,
            ..*self
        };
        match self.kind {
            0 => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&inner)?;
                seq.end()
            }
            1 => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("k", &inner)?;
                map.end()
            }
            _ => s.serialize_newtype_variant("E", 0, "V", &inner),
        }
    }
}

/// How deep the arrays and objects of `json` nest (strings skipped).
fn nesting(json: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0, false, false);
    for b in json.bytes() {
        match (in_str, b) {
            (true, _) if esc => esc = false,
            (true, b'\\') => esc = true,
            (true, b'"') => in_str = false,
            (true, _) => {}
            (false, b'"') => in_str = true,
            (false, b'[' | b'{') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, b']' | b'}') => depth -= 1,
            _ => {}
        }
    }
    max
}

/// serde values were written at any depth: one nested deeper than 1023 levels made a record
/// that `logxide check` and `view` refuse (they read lines nested up to 1024 levels, the
/// record itself being one), and one nested some thousands deep overflowed the caller's stack
/// — the log call aborted the process. Nesting is now bounded: a value of up to 1023 levels
/// is written whole, a deeper one is `"<serialize error: nested deeper than 1023 levels>"`
/// (arrays, objects and newtype variants, `{"V":…}`, alike), and so is one whose raw JSON
/// takes it past that.
#[test]
fn serde_values_nested_deeper_than_the_readers_take_are_a_serialize_error() {
    let too_deep = r#""<serialize error: nested deeper than 1023 levels>""#;
    for kind in 0..3 {
        let ok = enc(&serde(nested(1023, kind)));
        assert_eq!(nesting(&ok), 1023, "kind {kind}");
        assert_eq!(enc(&serde(nested(1024, kind))), too_deep, "kind {kind}");
        // Far deeper than any stack holds: refused at the limit, no overflow.
        assert_eq!(
            enc(&serde(nested(10_000_000, kind))),
            too_deep,
            "kind {kind}"
        );
    }
    // Raw JSON's levels count with the levels around it.
    let raw = serde_json::value::RawValue::from_string(format!(
        " {}{{\"a\" : 1}}{}",
        "[".repeat(99),
        "]".repeat(99)
    ))
    .unwrap();
    let around = |depth| {
        enc(&serde(Nested {
            depth,
            kind: 0,
            leaf: Some(&raw),
        }))
    };
    assert_eq!(nesting(&around(923)), 1023);
    assert_eq!(around(924), too_deep);
    // In a record: the line nests 1024 levels at most.
    let mut buf = Vec::new();
    let mut r = RecordEncoder::begin(&mut buf, Format::Compact, ts(0, 0), "t", &[1]);
    r.field("ok", &serde(nested(1023, 2)));
    r.field("deep", &serde(nested(5000, 1)));
    r.field("after", &1);
    r.finish();
    let text = line(&buf);
    assert_eq!(nesting(text), 1024);
    assert!(
        text.ends_with(&format!(",\"deep\":{too_deep},\"after\":1}}\n")),
        "{text}"
    );
}
