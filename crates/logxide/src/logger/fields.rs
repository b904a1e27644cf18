//! Field values, the per-record field writer, bound field sets, and masking.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::encode::{Bytes, DebugValue, DisplayValue, Encode, Key, RecordEncoder, SerdeValue};

/// A value that can be a field of a record.
///
/// Implemented for integers, floats, `bool`, `char`, strings, [`Duration`], [`Bytes`], the
/// capture wrappers [`DisplayValue`] (`%x`), [`DebugValue`] (`?x`) and [`SerdeValue`]
/// (nested JSON), references, boxes, and `Option<T>` — `None` omits the field.
///
/// ```
/// use logxide::logger::FieldValue;
/// fn takes<V: FieldValue + ?Sized>(_: &V) {}
/// takes(&3u8);
/// takes("text");
/// takes(&Some(1.5));
/// takes(&logxide::encode::display(std::net::Ipv4Addr::LOCALHOST));
/// ```
pub trait FieldValue {
    /// Writes `key` and this value through `out` (or nothing, for an absent value).
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>);
}

macro_rules! field_value_via_encode {
    ($($t:ty),* $(,)?) => {$(
        impl FieldValue for $t {
            #[inline]
            fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
                out.encoded(key, self);
            }
        }
    )*};
}

field_value_via_encode!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char, str,
    String, Duration,
);

impl FieldValue for Cow<'_, str> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.encoded(key, self.as_ref());
    }
}

impl FieldValue for Bytes<'_> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.encoded(key, self);
    }
}

impl<T: fmt::Display> FieldValue for DisplayValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.encoded(key, self);
    }
}

impl<T: fmt::Debug> FieldValue for DebugValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.encoded(key, self);
    }
}

impl<T: serde::Serialize> FieldValue for SerdeValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.encoded(key, self);
    }
}

impl<T: FieldValue + ?Sized> FieldValue for &T {
    #[inline]
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        (**self).write_field(key, out);
    }
}

impl<T: FieldValue + ?Sized> FieldValue for Box<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        (**self).write_field(key, out);
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    #[inline]
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        if let Some(v) = self {
            v.write_field(key, out);
        }
    }
}

/// The names whose values are written as `"***"`, compared without regard to ASCII case.
///
/// ```
/// use logxide::logger::Mask;
/// let mask = Mask::default();
/// assert!(mask.is_masked("Password"));
/// assert!(mask.is_masked("api_key"));
/// assert!(!mask.is_masked("user"));
/// let custom = Mask::new(["pin"]);
/// assert!(custom.is_masked("PIN") && !custom.is_masked("password"));
/// ```
#[derive(Clone, Debug)]
pub struct Mask {
    names: Vec<String>,
    /// `by_len[n]`: the names of length `n` (names of 64+ bytes are in slot 63).
    by_len: Vec<Vec<String>>,
}

impl Mask {
    /// The default names: password, passwd, pwd, secret, token, api_key, apikey,
    /// authorization, auth_token, access_token, refresh_token, client_secret, private_key,
    /// cookie, set_cookie, session_id.
    pub const DEFAULT: [&'static str; 16] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "auth_token",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "cookie",
        "set_cookie",
        "session_id",
    ];

    /// A mask of exactly these names.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().to_ascii_lowercase())
            .collect();
        let mut by_len = vec![Vec::new(); 64];
        for n in &names {
            by_len[n.len().min(63)].push(n.clone());
        }
        Mask { names, by_len }
    }

    /// A mask that hides nothing.
    pub fn none() -> Self {
        Mask::new(std::iter::empty::<&str>())
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True if `key`'s value must be hidden.
    #[inline]
    pub fn is_masked(&self, key: &str) -> bool {
        self.by_len[key.len().min(63)]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(key))
    }
}

impl Default for Mask {
    fn default() -> Self {
        Mask::new(Mask::DEFAULT)
    }
}

/// Fields bound to a logger ([`Logger::ctx`](super::Logger::ctx)) or a scope
/// ([`scope`](super::scope)): keys with their values already encoded as JSON.
///
/// ```
/// use logxide::logger::Fields;
/// let f = Fields::new().with("user", "ada").with("attempt", 2);
/// assert_eq!(f.len(), 2);
/// let g = Fields::new().with("attempt", 3);
/// let merged = f.merged_with(&g); // the second set wins on equal keys
/// assert_eq!(merged.get_json("attempt"), Some("3"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    entries: Vec<(Arc<str>, Arc<str>)>,
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields::default()
    }

    /// Adds (or replaces) `key` with `value`.
    pub fn with<V: Encode>(mut self, key: &str, value: V) -> Self {
        self.insert(key, &value);
        self
    }

    /// Adds (or replaces) `key` with `value`.
    pub fn insert<V: Encode + ?Sized>(&mut self, key: &str, value: &V) {
        let mut json = Vec::new();
        value.encode(&mut json);
        // Encoders write valid UTF-8 JSON.
        let json: Arc<str> = String::from_utf8_lossy(&json).into();
        match self.entries.iter_mut().find(|(k, _)| &**k == key) {
            Some(entry) => entry.1 = json,
            None => self.entries.push((key.into(), json)),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JSON text of `key`'s value.
    pub fn get_json(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// These fields, then `inner`'s: on equal keys `inner`'s value wins.
    pub fn merged_with(&self, inner: &Fields) -> Fields {
        let mut out = self.clone();
        for (k, v) in &inner.entries {
            match out.entries.iter_mut().find(|(ok, _)| ok == k) {
                Some(entry) => entry.1 = Arc::clone(v),
                None => out.entries.push((Arc::clone(k), Arc::clone(v))),
            }
        }
        out
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }
}

/// JSON text already encoded, written as is.
struct RawJson<'a>(&'a str);

impl Encode for RawJson<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

/// Writes the fields of one record, applying the mask. Handed to the closure of
/// [`Logger::log`](super::Logger::log); the macros call it for you.
///
/// Call-site fields come first; then the fields of the current [scopes](super::scope), then
/// those bound to the logger — each skipped when a more specific source already wrote the
/// same key (call site over scope over logger), so a record never repeats a key. (Only the
/// first 64 fields of a context set are tracked for this.)
pub struct FieldWriter<'e, 'b> {
    enc: &'e mut RecordEncoder<'b>,
    mask: &'e Mask,
    scope: &'e Fields,
    bound: &'e Fields,
    /// Bit `i`: the call site wrote the key of `scope` entry `i` / `bound` entry `i`.
    scope_hidden: u64,
    bound_hidden: u64,
}

impl<'e, 'b> FieldWriter<'e, 'b> {
    pub(crate) fn new(
        enc: &'e mut RecordEncoder<'b>,
        mask: &'e Mask,
        scope: &'e Fields,
        bound: &'e Fields,
    ) -> Self {
        FieldWriter {
            enc,
            mask,
            scope,
            bound,
            scope_hidden: 0,
            bound_hidden: 0,
        }
    }

    /// Writes one field (`None` writes nothing).
    #[inline]
    pub fn field<'k, V: FieldValue + ?Sized>(&mut self, key: impl Into<Key<'k>>, value: &V) {
        value.write_field(key.into(), self);
    }

    /// Writes `key` with an encodable value, masked if the key is masked.
    #[inline]
    pub fn encoded<V: Encode + ?Sized>(&mut self, key: Key<'_>, value: &V) {
        let name = key.name();
        if self.mask.is_masked(name) {
            self.enc.masked_field(key);
        } else {
            self.enc.field(key, value);
        }
        if !self.scope.is_empty() {
            self.scope_hidden |= position_bit(self.scope, name);
        }
        if !self.bound.is_empty() {
            self.bound_hidden |= position_bit(self.bound, name);
        }
    }

    /// Writes the scope and logger fields the call site did not override.
    pub(crate) fn finish_context(&mut self) {
        for (i, (k, v)) in self.scope.iter().enumerate() {
            if i < 64 && self.scope_hidden & (1 << i) != 0 {
                continue;
            }
            self.raw(k, v);
        }
        for (i, (k, v)) in self.bound.iter().enumerate() {
            if (i < 64 && self.bound_hidden & (1 << i) != 0) || self.scope.get_json(k).is_some() {
                continue;
            }
            self.raw(k, v);
        }
    }

    fn raw(&mut self, key: &str, json: &str) {
        if self.mask.is_masked(key) {
            self.enc.masked_field(key);
        } else {
            self.enc.field(key, &RawJson(json));
        }
    }

    /// The record being written (for the logger's own reserved fields).
    pub(crate) fn encoder(&mut self) -> &mut RecordEncoder<'b> {
        self.enc
    }
}

/// The bit of `key`'s position in `fields` (0 if absent or past 64).
fn position_bit(fields: &Fields, key: &str) -> u64 {
    fields
        .iter()
        .take(64)
        .position(|(k, _)| k == key)
        .map_or(0, |i| 1 << i)
}
