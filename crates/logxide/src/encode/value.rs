//! The [`Encode`] trait: values that write themselves as JSON, and its implementations.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::capture::Scalar;
use super::guard::{text, Guarded, Trail};
use super::json;

/// A value that can be written as JSON.
///
/// `encode` appends exactly one complete JSON value (a string, number, `true`/`false`,
/// `null`, an array or an object) to `out`, whatever the value holds: strings are escaped so
/// the result is always valid JSON and never contains a line break.
///
/// | type | written as |
/// |---|---|
/// | integers (`i8`…`i128`, `u8`…`u128`, `isize`, `usize`) | a number |
/// | `f32`, `f64` | the shortest number that reads back the same (`0.2`, `1.0`, `1e+21`); NaN, +∞, −∞ as the **strings** `"NaN"`, `"Infinity"`, `"-Infinity"` |
/// | `bool` | `true` / `false` |
/// | `str`, `String`, `Cow<str>`, `char` | an escaped string |
/// | [`Bytes`] | a string, the bytes decoded as UTF-8 lossily |
/// | `Option<T>` | `None` → `null`, `Some(v)` → `v` |
/// | [`Duration`] | seconds as a float: 200 ms → `0.2` |
/// | [`DisplayValue`], [`DebugValue`] | the `Display` / `Debug` output as an escaped string |
/// | [`SerdeValue`] | nested JSON via `serde_json` |
/// | `&T`, `&mut T`, `Box<T>`, `Rc<T>`, `Arc<T>` | as `T` |
///
/// ```
/// use logxide::encode::Encode;
/// let mut out = Vec::new();
/// "a \"quoted\"\nline".encode(&mut out);
/// out.push(b' ');
/// 42u8.encode(&mut out);
/// out.push(b' ');
/// f64::NAN.encode(&mut out);
/// assert_eq!(out, br#""a \"quoted\"\nline" 42 "NaN""#);
/// ```
pub trait Encode {
    /// Appends this value as one JSON value to `out`.
    ///
    /// ```
    /// use logxide::encode::Encode;
    /// let mut out = b"x=".to_vec();
    /// Some(true).encode(&mut out);
    /// assert_eq!(out, b"x=true");
    /// ```
    fn encode(&self, out: &mut Vec<u8>);

    /// This value as a [`Scalar`] that the writer thread can format later, or `None` (the
    /// default) to be encoded now by [`encode`](Self::encode).
    ///
    /// Records logged through an asynchronous [`Logger`](crate::Logger) are *captured*: a
    /// value whose scalar is a float is copied raw into the queue and formatted on the
    /// writer's thread, and integers and strings are written by the fastest routine for
    /// their type (see [`encode`](crate::encode)). Return `Some` only when the scalar's JSON
    /// is exactly what `encode` writes; the default is always right.
    ///
    /// ```
    /// use logxide::encode::{Encode, Scalar};
    /// struct Port(u16);
    /// impl Encode for Port {
    ///     fn encode(&self, out: &mut Vec<u8>) { self.0.encode(out) }
    ///     fn scalar(&self) -> Option<Scalar<'_>> { Some(Scalar::Unsigned(self.0.into())) }
    /// }
    /// assert_eq!(Port(8080).scalar(), Some(Scalar::Unsigned(8080)));
    /// assert_eq!(Some(2.5).scalar(), Some(Scalar::Float(2.5)));
    /// assert_eq!(None::<u8>.scalar(), None); // written now, as `null`
    /// ```
    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        None
    }

    /// True for a value that stands for no value — `None` — which fields omit (the key is
    /// not written) rather than write as `null`. The default is `false`.
    ///
    /// ```
    /// use logxide::encode::Encode;
    /// assert!(None::<u8>.is_absent());
    /// assert!(!Some(0).is_absent());
    /// assert!(!"".is_absent());
    /// ```
    #[inline]
    fn is_absent(&self) -> bool {
        false
    }
}

macro_rules! encode_int {
    ($($t:ty => $variant:ident as $wide:ty),*) => {$(
        impl Encode for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                json::write_int(out, *self);
            }

            #[inline]
            fn scalar(&self) -> Option<Scalar<'_>> {
                Some(Scalar::$variant(*self as $wide))
            }
        }
    )*};
}
encode_int!(
    i8 => Signed as i64, i16 => Signed as i64, i32 => Signed as i64, i64 => Signed as i64,
    isize => Signed as i64, u8 => Unsigned as u64, u16 => Unsigned as u64,
    u32 => Unsigned as u64, u64 => Unsigned as u64, usize => Unsigned as u64
);

/// 128-bit integers are written now (a segment holds eight bytes).
macro_rules! encode_wide_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                json::write_int(out, *self);
            }
        }
    )*};
}
encode_wide_int!(i128, u128);

impl Encode for f64 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_float(out, *self);
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        Some(Scalar::Float(*self))
    }
}

impl Encode for f32 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_float(out, *self);
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        Some(Scalar::Float32(*self))
    }
}

impl Encode for bool {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl Encode for str {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        Some(Scalar::Str(self))
    }
}

impl Encode for String {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        Some(Scalar::Str(self))
    }
}

impl Encode for char {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_str(out, self.encode_utf8(&mut [0; 4]));
    }
}

/// Pointers and borrowed forms encode as what they point to (absent if it is).
macro_rules! encode_through {
    ($(impl<$t:ident: $($bound:path)|+> for $ty:ty;)*) => {$(
        impl<$t: $($bound +)+ ?Sized> Encode for $ty {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                (**self).encode(out);
            }

            #[inline]
            fn scalar(&self) -> Option<Scalar<'_>> {
                (**self).scalar()
            }

            #[inline]
            fn is_absent(&self) -> bool {
                (**self).is_absent()
            }
        }
    )*};
}
encode_through! {
    impl<T: Encode> for &T;
    impl<T: Encode> for &mut T;
    impl<T: Encode> for Box<T>;
    impl<T: Encode> for Rc<T>;
    impl<T: Encode> for Arc<T>;
    impl<B: Encode | ToOwned> for Cow<'_, B>;
}

impl<T: Encode> Encode for Option<T> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.encode(out),
            None => out.extend_from_slice(b"null"),
        }
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        self.as_ref().and_then(Encode::scalar)
    }

    #[inline]
    fn is_absent(&self) -> bool {
        self.as_ref().map_or(true, Encode::is_absent)
    }
}

impl Encode for Duration {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_float(out, self.as_secs_f64());
    }

    #[inline]
    fn scalar(&self) -> Option<Scalar<'_>> {
        Some(Scalar::Float(self.as_secs_f64()))
    }
}

/// Raw bytes written as a JSON string, decoded as UTF-8 lossily: each invalid sequence
/// becomes U+FFFD (`�`). No intermediate allocation.
///
/// ```
/// use logxide::encode::{Bytes, Encode};
/// let mut out = Vec::new();
/// Bytes(b"GET /\xff").encode(&mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "\"GET /\u{FFFD}\"");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Encode for Bytes<'_> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        json::write_bytes_lossy(out, self.0);
    }
}

/// A value captured with its [`Display`](fmt::Display) output (`%x` in a logging macro),
/// written as an escaped JSON string. The output is escaped as it is produced, without an
/// intermediate `String`.
///
/// ```
/// use logxide::encode::{DisplayValue, Encode};
/// let addr: std::net::Ipv4Addr = "10.0.0.1".parse().unwrap();
/// let mut out = Vec::new();
/// DisplayValue(addr).encode(&mut out);
/// assert_eq!(out, br#""10.0.0.1""#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DisplayValue<T>(pub T);

impl<T: fmt::Display> Encode for DisplayValue<T> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        // A `Display` impl that fails leaves what it wrote so far: still a valid string.
        let _ = fmt::write(&mut json::EscapeWriter(out), format_args!("{}", self.0));
        out.push(b'"');
    }
}

/// A value captured with its [`Debug`](fmt::Debug) output (`?x` in a logging macro),
/// written as an escaped JSON string, without an intermediate `String`.
///
/// ```
/// use logxide::encode::{DebugValue, Encode};
/// let mut out = Vec::new();
/// DebugValue(Some("a\"b")).encode(&mut out);
/// assert_eq!(out, br#""Some(\"a\\\"b\")""#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DebugValue<T>(pub T);

impl<T: fmt::Debug> Encode for DebugValue<T> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        let _ = fmt::write(&mut json::EscapeWriter(out), format_args!("{:?}", self.0));
        out.push(b'"');
    }
}

/// A value written as nested JSON through its [`Serialize`] implementation (`serde_json`).
///
/// Strings inside are escaped like everywhere else in a record (DEL, U+2028 and U+2029
/// included), so the record stays one line. Non-finite floats *inside* a serde value are
/// written as `null` (serde_json's rule), unlike a top-level float field, which gives
/// `"NaN"` / `"Infinity"` / `"-Infinity"`. A map's keys are written as JSON strings: keys that
/// are strings, chars, integers (`u128` too), booleans, finite floats, unit variants, or a
/// newtype or `Some` of one of these are written as their text (`{"1":…}`, `{"true":…}`,
/// `{"1.5":…}`). If serialization fails (a map with keys of any other kind — a sequence, a
/// map, a struct, `()`, `None` — or a non-finite float key, a `Serialize` impl returning an
/// error, ...) whatever was written is removed and the
/// value becomes the string `"<serialize error: ...>"` with the first error's message, so
/// the record is still valid JSON. The same holds for an impl that ignores the error of a part
/// of the value and goes on (which leaves that part half-written), and for a map whose keys
/// and values do not take turns (`"<serialize error: a map value came without a key>"`).
/// A value nests at most 1023 levels of arrays and objects (so that a record, one level
/// itself, nests at most 1024, what `logxide check` reads; it also bounds the stack its
/// serialization takes): a deeper one is `"<serialize error: nested deeper than 1023
/// levels>"`.
/// A string a `Serialize` impl writes with `collect_str` (at any depth) whose `Display`
/// fails (returns `fmt::Error` on its own) is what it wrote so far, as for a
/// [`DisplayValue`]: no error, and no panic. Likewise the message of an error a `Serialize`
/// impl returns (`Err(S::Error::custom(msg))`) is what `msg`'s `Display` wrote, even if it
/// fails: `"<serialize error: what it wrote>"`, no panic.
///
/// ```
/// use logxide::encode::{Encode, SerdeValue};
/// use std::collections::BTreeMap;
/// let mut out = Vec::new();
/// SerdeValue(&[1.5, f64::NAN]).encode(&mut out);
/// assert_eq!(out, b"[1.5,null]");
///
/// let mut bad = BTreeMap::new();
/// bad.insert(vec![1], "key is not a string");
/// out.clear();
/// SerdeValue(&bad).encode(&mut out);
/// assert_eq!(out, br#""<serialize error: key must be a string>""#);
///
/// out.clear();
/// SerdeValue(&BTreeMap::from([(-1, "a"), (2, "b")])).encode(&mut out);
/// assert_eq!(out, br#"{"-1":"a","2":"b"}"#);
/// out.clear();
/// SerdeValue(&BTreeMap::from([(Some(true), 1)])).encode(&mut out);
/// assert_eq!(out, br#"{"true":1}"#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SerdeValue<T>(pub T);

impl<T: Serialize> Encode for SerdeValue<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut *out, json::LineSafeFormatter::default());
        // Through the guard: a `Display` given to `collect_str` that fails must not panic,
        // and an error is noted even where the value's impl ignores it.
        let trail = Trail::default();
        let result = Guarded::new(&self.0, &trail).serialize(&mut ser);
        // The first error, wherever it came from (the impl may have gone on after it, leaving
        // a part half-written).
        let error = match (trail.first_error(), result) {
            (Some(first), _) => first,
            (None, Err(e)) => text(format_args!("{e}")),
            (None, Ok(())) => return,
        };
        out.truncate(start);
        out.extend_from_slice(b"\"<serialize error: ");
        json::escape_into(out, &error);
        out.extend_from_slice(b">\"");
    }
}

/// Wraps a value to be written with its `Display` output: `display(x)` is
/// [`DisplayValue(x)`](DisplayValue).
///
/// ```
/// use logxide::encode::{display, Encode};
/// let mut out = Vec::new();
/// display(format_args!("{}+{}", 1, 2)).encode(&mut out);
/// assert_eq!(out, br#""1+2""#);
/// ```
#[inline]
pub fn display<T: fmt::Display>(v: T) -> DisplayValue<T> {
    DisplayValue(v)
}

/// Wraps a value to be written with its `Debug` output: `debug(x)` is
/// [`DebugValue(x)`](DebugValue).
///
/// ```
/// use logxide::encode::{debug, Encode};
/// let mut out = Vec::new();
/// debug(&vec!["a", "b"]).encode(&mut out);
/// assert_eq!(out, br#""[\"a\", \"b\"]""#);
/// ```
#[inline]
pub fn debug<T: fmt::Debug>(v: T) -> DebugValue<T> {
    DebugValue(v)
}

/// Wraps a value to be written as nested JSON through serde: `serde(x)` is
/// [`SerdeValue(x)`](SerdeValue).
///
/// ```
/// use logxide::encode::{serde, Encode};
/// let mut out = Vec::new();
/// serde(&serde_json::json!({"a": [1, "x"]})).encode(&mut out);
/// assert_eq!(out, br#"{"a":[1,"x"]}"#);
/// ```
#[inline]
pub fn serde<T: Serialize>(v: T) -> SerdeValue<T> {
    SerdeValue(v)
}

/// Wraps raw bytes to be written as a (lossily decoded) string: `bytes(b)` is
/// [`Bytes(b)`](Bytes).
///
/// ```
/// use logxide::encode::{bytes, Encode};
/// let mut out = Vec::new();
/// bytes(b"ok").encode(&mut out);
/// assert_eq!(out, br#""ok""#);
/// ```
#[inline]
pub fn bytes(b: &[u8]) -> Bytes<'_> {
    Bytes(b)
}
