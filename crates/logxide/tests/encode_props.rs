//! Property tests of the record encoder: whatever the message, keys and values, a record is
//! exactly one line, parses as one JSON object with the keys in order and no duplicates, and
//! gives back the values it was given.

use std::fmt;

use logxide::encode::{
    debug, display, serde, ActionStatus, Bytes, Format, RecordEncoder, Timestamp,
};
use proptest::prelude::*;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object read with its keys in order (and duplicates kept).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    v.push(kv);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Strings rich in the characters that need escaping, plus anything else.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
        2 => prop::sample::select(vec![
            '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{7f}',
            '\u{80}', '\u{85}', '\u{2027}', '\u{2028}', '\u{2029}', '\u{202a}', '€', '😀', '/',
        ]),
    ];
    prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
}

/// Field keys: arbitrary text, or a reserved key of either format with leading underscores.
fn key() -> impl Strategy<Value = String> {
    let reserved: Vec<&'static str> = Format::Compact
        .reserved_keys()
        .iter()
        .chain(Format::Eliot.reserved_keys())
        .copied()
        .collect();
    prop_oneof![
        3 => text(),
        2 => (prop::sample::select(reserved), 0..3usize)
            .prop_map(|(k, n)| format!("{}{k}", "_".repeat(n))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    F64(f64),
    F32(f32),
    Bool(bool),
    Json(Value),
    Display(String),
    Debug(String),
    Bytes(Vec<u8>),
    Opt(Option<i32>),
    Masked,
}

fn val() -> impl Strategy<Value = Val> {
    let special_f64 = prop::sample::select(vec![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1e21,
        0.1,
    ]);
    prop_oneof![
        3 => text().prop_map(Val::Str),
        1 => any::<i64>().prop_map(Val::I64),
        1 => any::<u64>().prop_map(Val::U64),
        1 => any::<i128>().prop_map(Val::I128),
        2 => prop_oneof![any::<f64>(), special_f64].prop_map(Val::F64),
        1 => any::<f32>().prop_map(Val::F32),
        1 => any::<bool>().prop_map(Val::Bool),
        2 => json_value().prop_map(Val::Json),
        1 => text().prop_map(Val::Display),
        1 => text().prop_map(Val::Debug),
        1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(Val::Bytes),
        1 => any::<Option<i32>>().prop_map(Val::Opt),
        1 => Just(Val::Masked),
    ]
}

fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Checks that `got` is what encoding `v` should read back as.
fn check_value(v: &Val, got: &Value) -> Result<(), TestCaseError> {
    match v {
        Val::Str(s) | Val::Display(s) => prop_assert_eq!(got.as_str(), Some(s.as_str())),
        Val::Debug(s) => {
            let want = format!("{s:?}");
            prop_assert_eq!(got.as_str(), Some(want.as_str()))
        }
        Val::I64(i) => prop_assert_eq!(got.as_i64(), Some(*i)),
        Val::U64(u) => prop_assert_eq!(got.as_u64(), Some(*u)),
        Val::I128(i) => {
            // Beyond 64 bits serde_json reads a float: compare the text instead.
            if let Ok(i) = i64::try_from(*i) {
                prop_assert_eq!(got.as_i64(), Some(i));
            } else if let Ok(u) = u64::try_from(*i) {
                prop_assert_eq!(got.as_u64(), Some(u));
            } else {
                prop_assert!(got.is_number());
            }
        }
        Val::F64(f) if f.is_finite() => prop_assert_eq!(got.as_f64(), Some(*f)),
        Val::F64(f) => prop_assert_eq!(got.as_str(), Some(non_finite_name(*f))),
        Val::F32(f) if f.is_finite() => {
            prop_assert!(got.is_number());
            prop_assert_eq!(got.as_f64().map(|g| g as f32), Some(*f));
        }
        Val::F32(f) => prop_assert_eq!(got.as_str(), Some(non_finite_name(f64::from(*f)))),
        Val::Bool(b) => prop_assert_eq!(got.as_bool(), Some(*b)),
        Val::Json(j) => prop_assert_eq!(got, j),
        Val::Bytes(b) => {
            let want = String::from_utf8_lossy(b);
            prop_assert_eq!(got.as_str(), Some(want.as_ref()))
        }
        Val::Opt(o) => match o {
            Some(i) => prop_assert_eq!(got.as_i64(), Some(i64::from(*i))),
            None => prop_assert!(got.is_null()),
        },
        Val::Masked => prop_assert_eq!(got.as_str(), Some("***")),
    }
    Ok(())
}

fn write_field(r: &mut RecordEncoder<'_>, k: &str, v: &Val) {
    match v {
        Val::Str(s) => r.field(k, s),
        Val::I64(i) => r.field(k, i),
        Val::U64(u) => r.field(k, u),
        Val::I128(i) => r.field(k, i),
        Val::F64(f) => r.field(k, f),
        Val::F32(f) => r.field(k, f),
        Val::Bool(b) => r.field(k, b),
        Val::Json(j) => r.field(k, &serde(j)),
        Val::Display(s) => r.field(k, &display(s)),
        Val::Debug(s) => r.field(k, &debug(s)),
        Val::Bytes(b) => r.field(k, &Bytes(b)),
        Val::Opt(o) => r.field(k, o),
        Val::Masked => r.masked_field(k),
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Message(String, String),
    Action(String, ActionStatus),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (text(), text()).prop_map(|(l, m)| Kind::Message(l, m)),
        (
            text(),
            prop::sample::select(vec![
                ActionStatus::Started,
                ActionStatus::Succeeded,
                ActionStatus::Failed
            ])
        )
            .prop_map(|(a, s)| Kind::Action(a, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn record_is_one_line_of_json_that_reads_back(
        eliot in any::<bool>(),
        secs in 0u64..=u64::from(u32::MAX) * 4,
        micros in 0u32..1_000_000,
        tid in text(),
        level in prop::collection::vec(any::<u64>(), 0..5),
        kind in kind(),
        fields in prop::collection::vec((key(), val()), 0..8),
        dur in prop::option::of(0.0f64..1e6),
    ) {
        let format = if eliot { Format::Eliot } else { Format::Compact };
        // Field keys given twice would be written twice: keep the first of each.
        let mut seen = std::collections::HashSet::new();
        let fields: Vec<_> = fields.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();

        let mut buf = Vec::new();
        let mut r = RecordEncoder::begin(&mut buf, format, Timestamp { secs, micros }, &tid, &level);
        match &kind {
            Kind::Message(l, m) => r.message(l, m),
            Kind::Action(a, s) => r.action(a, *s),
        }
        for (k, v) in &fields {
            write_field(&mut r, k, v);
        }
        if let (Format::Compact, Some(d)) = (format, dur) {
            r.reserved_field("dur", &d);
        }
        r.finish();

        // Exactly one line: one `\n`, at the end; no other line break or control byte.
        prop_assert_eq!(buf.last(), Some(&b'\n'));
        prop_assert!(buf[..buf.len() - 1].iter().all(|&b| b >= 0x20 && b != 0x7f));
        let text = std::str::from_utf8(&buf).expect("UTF-8");
        let no_separators = !text.contains(['\u{2028}', '\u{2029}']);
        prop_assert!(no_separators, "raw U+2028/U+2029 in {}", text);
        prop_assert_eq!(text.lines().count(), 1);

        // One JSON object, keys in order, no duplicates.
        let Ordered(got) = serde_json::from_str(text).expect("valid JSON object");
        let mut names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        prop_assert_eq!(names.len(), n, "duplicate keys in {}", text);

        let header: [&str; 7] = match format {
            Format::Compact => ["ts", "tid", "lvl", "mt", "msg", "at", "st"],
            Format::Eliot => [
                "timestamp", "task_uuid", "task_level", "message_type", "message",
                "action_type", "action_status",
            ],
        };
        let mut it = got.iter();
        let (k, v) = it.next().unwrap();
        prop_assert_eq!(k, header[0]);
        prop_assert!(v.is_f64());
        let ts_text = format!("{secs}.{micros:06}");
        let ts_at = text.find(':').unwrap() + 1;
        prop_assert_eq!(&text[ts_at..ts_at + ts_text.len()], ts_text.as_str());
        let (k, v) = it.next().unwrap();
        prop_assert_eq!((k.as_str(), v.as_str()), (header[1], Some(tid.as_str())));
        let (k, v) = it.next().unwrap();
        prop_assert_eq!(k, header[2]);
        let want_level: Vec<Value> = level.iter().map(|&l| Value::from(l)).collect();
        prop_assert_eq!(v.as_array(), Some(&want_level));
        let (a, b, x, y) = match &kind {
            Kind::Message(l, m) => (header[3], header[4], l.as_str(), m.as_str()),
            Kind::Action(t, s) => (header[5], header[6], t.as_str(), s.as_str()),
        };
        let (k, v) = it.next().unwrap();
        prop_assert_eq!((k.as_str(), v.as_str()), (a, Some(x)));
        let (k, v) = it.next().unwrap();
        prop_assert_eq!((k.as_str(), v.as_str()), (b, Some(y)));

        for (key, val) in &fields {
            let (k, v) = it.next().unwrap();
            let renamed = format.is_reserved(key.trim_start_matches('_'));
            let want_key = if renamed { format!("_{key}") } else { key.clone() };
            prop_assert_eq!(k, &want_key);
            prop_assert!(!format.is_reserved(k));
            check_value(val, v)?;
        }
        if let (Format::Compact, Some(d)) = (format, dur) {
            let (k, v) = it.next().unwrap();
            prop_assert_eq!((k.as_str(), v.as_f64()), ("dur", Some(d)));
        }
        prop_assert!(it.next().is_none());
    }

    #[test]
    fn strings_round_trip_exactly(s in any::<String>(), t in text()) {
        for s in [s.as_str(), t.as_str()] {
            let mut out = Vec::new();
            logxide::encode::Encode::encode(s, &mut out);
            prop_assert!(out.iter().all(|&b| b >= 0x20 && b != 0x7f));
            let raw = std::str::from_utf8(&out).unwrap();
            let no_separators = !raw.contains(['\u{2028}', '\u{2029}']);
            prop_assert!(no_separators);
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn floats_round_trip_or_name_themselves(f in any::<f64>(), g in any::<f32>()) {
        let mut out = Vec::new();
        logxide::encode::Encode::encode(&f, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        if f.is_finite() {
            prop_assert_eq!(v.as_f64(), Some(f));
        } else {
            prop_assert_eq!(v.as_str(), Some(non_finite_name(f)));
        }
        out.clear();
        logxide::encode::Encode::encode(&g, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        if g.is_finite() {
            prop_assert_eq!(v.as_f64().map(|x| x as f32), Some(g));
        } else {
            prop_assert_eq!(v.as_str(), Some(non_finite_name(f64::from(g))));
        }
    }
}
