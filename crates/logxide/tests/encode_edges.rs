//! Edge cases of the record encoder: every record one line of valid JSON, checked with
//! serde_json's parser, and values that read back as they were given.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use logxide::encode::{debug, display, serde, Encode, Format, RecordEncoder, Timestamp};
use serde_json::Value;

const FORMATS: [Format; 2] = [Format::Compact, Format::Eliot];

fn record(format: Format, fill: impl FnOnce(&mut RecordEncoder<'_>)) -> (Vec<u8>, Value) {
    let mut buf = Vec::new();
    let ts = Timestamp {
        secs: 1_700_000_000,
        micros: 5,
    };
    let mut rec = RecordEncoder::begin(&mut buf, format, ts, "Ab.1", &[1]);
    rec.message("info", "m");
    fill(&mut rec);
    rec.finish();
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(buf.last(), Some(&b'\n'));
    let v: Value = serde_json::from_slice(&buf)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf)));
    (buf, v)
}

fn value_of<V: Encode + ?Sized>(v: &V) -> Value {
    let (_, rec) = record(Format::Compact, |r| r.field("v", v));
    rec["v"].clone()
}

#[test]
fn wide_integers_read_back_exactly() {
    for v in [i128::MIN, i128::MAX, -1, 0] {
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, v.to_string().as_bytes());
        let back: i128 = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, v);
    }
    for v in [u128::MAX, u128::from(u64::MAX) + 1] {
        let mut out = Vec::new();
        v.encode(&mut out);
        let back: u128 = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, v);
    }
    let _ = value_of(&i128::MIN);
}

#[test]
fn f32_is_written_in_its_own_shortest_form() {
    for (v, want) in [
        (0.1f32, "0.1"),
        (f32::MAX, "3.4028235e+38"),
        (f32::MIN_POSITIVE, "1.1754944e-38"),
        (1e-45f32, "1e-45"),
        (-0.0f32, "-0.0"),
        (16_777_217.0f32, "16777216.0"),
    ] {
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        let back: f32 = serde_json::from_slice(&out).unwrap();
        assert_eq!(back.to_bits(), v.to_bits());
    }
}

#[test]
fn floats_round_trip_and_non_finite_are_strings() {
    for v in [
        -0.0f64,
        5e-324,
        f64::MAX,
        f64::MIN,
        0.1 + 0.2,
        1e21,
        1e-7,
        -1234.5,
    ] {
        let back = value_of(&v).as_f64().unwrap();
        assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
    }
    assert_eq!(value_of(&f64::NAN), Value::from("NaN"));
    assert_eq!(value_of(&f64::INFINITY), Value::from("Infinity"));
    assert_eq!(value_of(&f32::NEG_INFINITY), Value::from("-Infinity"));
}

#[test]
fn durations() {
    for d in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::MAX,
        Duration::from_millis(1500),
    ] {
        let back = value_of(&d).as_f64().unwrap();
        assert_eq!(back, d.as_secs_f64());
    }
    assert_eq!(value_of(&Duration::ZERO).to_string(), "0.0");
}

#[test]
fn odd_keys_are_valid_json_in_both_formats() {
    let keys = [
        "", " ", "\t", "\n", "\u{0}", "\u{7f}", "\u{2028}", "\u{2029}", "\"", "\\", "a\"b\\c", "_",
        "__", "é", "😀", "\u{feff}",
    ];
    for format in FORMATS {
        let (_, v) = record(format, |r| {
            for (i, k) in keys.iter().enumerate() {
                r.field(*k, &i);
            }
        });
        let obj = v.as_object().unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(obj[*k], Value::from(i), "{k:?}");
        }
    }
}

#[test]
fn reserved_keys_are_renamed_in_both_formats() {
    for format in FORMATS {
        let reserved = format.reserved_keys();
        let (buf, v) = record(format, |r| {
            for k in reserved {
                r.field(*k, "user");
                r.field(&*format!("_{k}"), "user_");
            }
        });
        let obj = v.as_object().unwrap();
        // serde_json keeps the last of duplicate keys: count them in the text instead.
        let text = String::from_utf8(buf).unwrap();
        for k in reserved {
            assert_eq!(obj[&format!("_{k}")], Value::from("user"), "{format} {k}");
            assert_eq!(obj[&format!("__{k}")], Value::from("user_"), "{format} {k}");
            assert!(
                text.matches(&format!("\"{k}\":")).count() <= 1,
                "{format} {k}: {text}"
            );
        }
        let keys = format.header_keys();
        assert_eq!(obj[keys.msg], Value::from("m"));
        assert_eq!(obj[keys.mt], Value::from("info"));
    }
}

#[test]
fn ten_thousand_fields() {
    let (_, v) = record(Format::Compact, |r| {
        for i in 0..10_000 {
            r.field(&*format!("k{i}"), &(i as f64 / 4.0));
        }
    });
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 10_000 + 5);
    assert_eq!(obj["k9999"], Value::from(2499.75));
}

struct Pieces(&'static [&'static str]);
impl fmt::Display for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            f.write_str(p)?;
        }
        Ok(())
    }
}

#[test]
fn display_written_in_pieces_is_escaped_whole() {
    let pieces: &'static [&'static str] = &[
        "\u{e2}", "\u{2028}", "\\", "u2028", "\"", "\n", "\u{7f}", "é", "",
    ];
    let v = value_of(&display(Pieces(pieces)));
    assert_eq!(v, Value::from(pieces.concat()));
    let v = value_of(&debug("\u{2028}\u{0}\u{10ffff}"));
    assert_eq!(v, Value::from(format!("{:?}", "\u{2028}\u{0}\u{10ffff}")));
}

#[test]
fn serde_map_keys_that_are_not_strings() {
    let mut ints = BTreeMap::new();
    ints.insert(-1i64, "a");
    ints.insert(u8::MAX as i64, "b");
    assert_eq!(
        value_of(&serde(&ints)),
        serde_json::json!({"-1": "a", "255": "b"})
    );
    let mut wide = BTreeMap::new();
    wide.insert(i128::MIN, 1);
    let v = value_of(&serde(&wide));
    assert_eq!(v, serde_json::json!({ i128::MIN.to_string(): 1 }));
    let mut chars = BTreeMap::new();
    chars.insert('\u{2028}', 1);
    chars.insert('\n', 2);
    let (buf, v) = record(Format::Compact, |r| r.field("v", &serde(&chars)));
    assert!(!buf.windows(3).any(|w| w == "\u{2028}".as_bytes()));
    assert_eq!(v["v"], serde_json::json!({"\n": 2, "\u{2028}": 1}));
    let mut units = BTreeMap::new();
    units.insert((), 1);
    assert!(value_of(&serde(&units))
        .as_str()
        .unwrap()
        .starts_with("<serialize error: "));
    let mut maps = BTreeMap::new();
    maps.insert(BTreeMap::from([(1, 2)]), 1);
    assert!(value_of(&serde(&maps))
        .as_str()
        .unwrap()
        .starts_with("<serialize error: "));
}

#[test]
fn serde_wide_and_float_values() {
    let v = value_of(&serde(&(u128::MAX, i128::MIN, 0.1f32, f32::NAN, -0.0f64)));
    assert_eq!(v[2].as_f64().unwrap() as f32, 0.1f32);
    assert_eq!(v[3], Value::Null);
    let (buf, _) = record(Format::Compact, |r| {
        r.field("v", &serde(&(u128::MAX, 0.1f32, -0.0f64)))
    });
    let text = String::from_utf8(buf).unwrap();
    assert!(
        text.ends_with(&format!(",\"v\":[{},0.1,-0.0]}}\n", u128::MAX)),
        "{text}"
    );
}

#[test]
fn timestamps_at_second_boundaries_and_far_dates() {
    // 2038-01-19T03:14:07Z (i32 end), 9999-12-31T23:59:59Z, u64::MAX.
    for (secs, micros, want) in [
        (2_147_483_647u64, 999_999u32, "2147483647.999999"),
        (2_147_483_647, 1_000_000, "2147483648.000000"),
        (253_402_300_799, 999_999, "253402300799.999999"),
        (253_402_300_799, 1_000_000, "253402300800.000000"),
        (u64::MAX, 999_999, "18446744073709551615.999999"),
    ] {
        let mut buf = Vec::new();
        RecordEncoder::begin(
            &mut buf,
            Format::Compact,
            Timestamp { secs, micros },
            "t",
            &[],
        )
        .finish();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            format!("{{\"ts\":{want},\"tid\":\"t\",\"lvl\":[]}}\n")
        );
        assert_eq!(Timestamp { secs, micros }.to_string(), want);
    }
}

/// A `Debug` that writes part of its text, then panics.
struct PanicsHalfway;
impl fmt::Debug for PanicsHalfway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half \"written")?;
        panic!("Debug panicked");
    }
}

#[test]
fn a_debug_that_panics_halfway_leaves_no_line_and_the_next_records_whole() {
    use logxide::sink::MemorySink;
    for format in ["compact", "eliot"] {
        let mem = MemorySink::new();
        let log = logxide::Logger::builder()
            .use_env(false)
            .set("format", format)
            .unwrap()
            .sink(mem.clone())
            .build()
            .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            logxide::info!(logger: log, "before", x = 1.5, bad = ?PanicsHalfway);
        }));
        assert!(r.is_err());
        logxide::info!(logger: log, "after", x = 2.5, s = "ok");
        log.flush(None).unwrap();
        let lines = mem.lines();
        assert_eq!(lines.len(), 1, "{format}: {lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let keys = Format::from_str_name(format).header_keys();
        assert_eq!(v[keys.msg], Value::from("after"));
        assert_eq!(v["x"], Value::from(2.5));
    }
}

trait FromName {
    fn from_str_name(s: &str) -> Format;
}
impl FromName for Format {
    fn from_str_name(s: &str) -> Format {
        s.parse().unwrap()
    }
}

/// A map with one entry whose key is `K`.
struct KeyMap<K>(K);
impl<K: ::serde::Serialize> ::serde::Serialize for KeyMap<K> {
    fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ::serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&self.0, &1)?;
        m.end()
    }
}

#[test]
fn serde_float_bool_and_odd_map_keys() {
    for (v, ok) in [
        (value_of(&serde(KeyMap(true))), true),
        (value_of(&serde(KeyMap(1.5f64))), true),
        (value_of(&serde(KeyMap(0.1f32))), true),
        (value_of(&serde(KeyMap(f64::NAN))), false),
        (value_of(&serde(KeyMap(f64::INFINITY))), false),
        (value_of(&serde(KeyMap(Some(3)))), true),
        (value_of(&serde(KeyMap(vec![1u8]))), false),
        (value_of(&serde(KeyMap(b"ab".as_slice()))), false),
        (value_of(&serde(KeyMap("\u{2028}\u{7f}\"\\"))), true),
        (value_of(&serde(KeyMap(u128::MAX))), true),
    ] {
        if ok {
            assert!(v.is_object(), "{v}");
        } else {
            assert!(
                v.as_str()
                    .is_some_and(|s| s.starts_with("<serialize error: ")),
                "{v}"
            );
        }
    }
}

#[test]
fn serde_raw_values_are_one_line() {
    let raw = serde_json::value::RawValue::from_string(
        " {\n \"a\\u2028\" : [ 1 ,\r\n\t\"x\u{2028}\u{7f}y\" ],\"\\ud83d\\ude00\":null } ".into(),
    )
    .unwrap();
    let (buf, v) = record(Format::Compact, |r| r.field("v", &serde(&raw)));
    let text = String::from_utf8(buf).unwrap();
    assert!(
        text.ends_with(",\"v\":{\"a\\u2028\":[1,\"x\\u2028\\u007fy\"],\"\\ud83d\\ude00\":null}}\n"),
        "{text}"
    );
    assert_eq!(v["v"]["😀"], Value::Null);
}

/// A number in raw JSON too large for an `f64` (`1e400`, a 400-digit integer) is valid JSON,
/// but serde_json (so `logxide check` and `view`) refuses the whole line: "number out of
/// range". It is written as `null`, as a non-finite float inside a serde value is; numbers
/// that fit (underflowing ones too) and text in strings are kept as written.
#[test]
fn raw_numbers_too_large_for_an_f64_become_null() {
    let huge = "9".repeat(400);
    let text = format!(
        "[1e400, -1E+400,1e-400,12345678901234567890123,-0.5e3,{{\"a\":{huge}}},\"1e400\",1.7976931348623157e308]"
    );
    let raw = serde_json::value::RawValue::from_string(text).unwrap();
    let (buf, v) = record(Format::Compact, |r| r.field("v", &serde(&raw)));
    let line = String::from_utf8(buf).unwrap();
    assert!(
        line.ends_with(
            ",\"v\":[null,null,1e-400,12345678901234567890123,-0.5e3,{\"a\":null},\"1e400\",1.7976931348623157e308]}\n"
        ),
        "{line}"
    );
    assert_eq!(v["v"][0], Value::Null);
    assert_eq!(v["v"][7], Value::from(f64::MAX));
}

/// The calendar is total over every `i64` day: dates far outside any real log (a corrupt
/// `ts` in a file the `logxide` command reads) neither overflow nor come out wrong.
#[test]
fn calendar_round_trips_at_the_ends_of_i64_days() {
    use logxide::encode::calendar::{civil_from_days, days_from_civil};
    // 2038-01-19 (the end of 32-bit seconds) and 9999-12-31, exactly.
    assert_eq!(civil_from_days(2_147_483_647 / 86_400), (2038, 1, 19));
    assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    assert_eq!(civil_from_days(2_932_897), (10_000, 1, 1));
    assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    for days in [
        i64::MAX,
        i64::MAX - 1,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX / 2,
        i64::MIN / 3,
    ] {
        let (y, m, d) = civil_from_days(days);
        assert!(
            (1..=12).contains(&m) && (1..=31).contains(&d),
            "{days}: {y} {m} {d}"
        );
        assert_eq!(days_from_civil(y, m, d), days, "{days}: {y}-{m}-{d}");
    }
}

/// A timestamp whose microseconds carry past the last second a `u64` holds stays at that
/// second's end, `18446744073709551615.999999`: never before the same second's `.999999`.
#[test]
fn a_timestamp_carrying_past_u64_seconds_saturates_at_the_last_microsecond() {
    let last = "18446744073709551615.999999";
    for micros in [999_999, 1_000_000, 1_999_999, u32::MAX] {
        let ts = Timestamp {
            secs: u64::MAX,
            micros,
        };
        assert_eq!(ts.to_string(), last, "{micros}");
        let mut buf = Vec::new();
        RecordEncoder::begin(&mut buf, Format::Eliot, ts, "t", &[1]).finish();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            format!("{{\"timestamp\":{last},\"task_uuid\":\"t\",\"task_level\":[1]}}\n"),
        );
    }
    let ts = Timestamp {
        secs: u64::MAX - 1,
        micros: 1_000_001,
    };
    assert_eq!(ts.to_string(), "18446744073709551615.000001");
}

/// Every kind of value through an asynchronous logger (a captured record: floats and time
/// formatted on the writer's thread) and a synchronous one (written at once) gives the same
/// bytes but for the time and the task id, in both formats.
#[test]
fn captured_and_synchronous_records_are_the_same_bytes() {
    use logxide::sink::MemorySink;
    let lines = |format: &str, async_on: bool| {
        let mem = MemorySink::new();
        let log = logxide::Logger::builder()
            .use_env(false)
            .set("format", format)
            .unwrap()
            .async_writes(async_on)
            .sink(mem.clone())
            .build()
            .unwrap();
        assert_eq!(log.is_async(), async_on);
        let big = "é\u{2028}".repeat(40_000);
        for f in [
            0.1,
            -0.0,
            f64::NAN,
            f64::NEG_INFINITY,
            5e-324,
            1e21,
            1234.567,
            0.1 + 0.2,
        ] {
            logxide::info!(logger: log, "floats", f = f, g = f as f32, o = Some(f), n = None::<f64>,
                d = Duration::from_secs_f64(f.abs().min(1e9)), i = i128::MIN, u = u128::MAX,
                s = %format_args!("{f}\u{7f}"), q = ?f, j = serde(&[f, f]), ts = f, msg = 1.5f32);
            logxide::info!(logger: log, "big", a = 2.5, big = big.as_str(), b = 3.5f32);
            let a = logxide::start_action!(logger: log, "act\n", x = f);
            a.fail_with("E\"", "r\u{2029}");
        }
        log.flush(None).unwrap();
        mem.lines()
    };
    // Without the `ts`, `tid` and `dur` values.
    let strip = |line: &str| -> String {
        let v: Value = serde_json::from_str(line).unwrap();
        let tid = v
            .get("tid")
            .or(v.get("task_uuid"))
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let start = line.find(':').unwrap() + 1;
        let end = line.find(',').unwrap();
        let mut line = format!("{}{}", &line[..start], &line[end..]).replace(&tid, "T");
        // An action's `dur` is its own time: its value too.
        if let Some(at) = line.find(",\"dur\":") {
            let end = at + 7 + line[at + 7..].find([',', '}']).unwrap();
            line.replace_range(at + 7..end, "");
        }
        line
    };
    for format in ["compact", "eliot"] {
        let captured = lines(format, true);
        let eager = lines(format, false);
        assert_eq!(captured.len(), 32, "{format}");
        assert_eq!(captured.len(), eager.len());
        for (c, e) in captured.iter().zip(&eager) {
            assert_eq!(strip(c), strip(e), "{format}");
        }
    }
}
