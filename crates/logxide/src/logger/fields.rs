//! Field values, the per-record field writer, bound field sets, and masking.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use smallvec::SmallVec;

use super::with_reused;
use crate::encode::key::{fold_hash, UNICODE_FOLD};
use crate::encode::{Bytes, DebugValue, DisplayValue, Encode, Key, RecordEncoder, SerdeValue};

/// A value that can be a field of a record.
///
/// Implemented for integers, floats, `bool`, `char`, strings, [`Duration`], [`Bytes`], the
/// capture wrappers [`DisplayValue`] (`%x`), [`DebugValue`] (`?x`) and [`SerdeValue`]
/// (nested JSON), references (`&T`, `&mut T`), `Box<T>`, `Rc<T>`, `Arc<T>`, and `Option<T>` —
/// `None` omits the field, and hides the [context field](FieldWriter) of its key from the
/// record as a value would override it.
///
/// ```
/// use logxide::logger::FieldValue;
/// fn takes<V: FieldValue + ?Sized>(_: &V) {}
/// takes(&3u8);
/// takes("text");
/// takes(&Some(1.5));
/// takes(&std::sync::Arc::<str>::from("shared"));
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
                out.flat(key, self);
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
        out.flat(key, self.as_ref());
    }
}

impl FieldValue for Bytes<'_> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.flat(key, self);
    }
}

impl<T: fmt::Display> FieldValue for DisplayValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.flat(key, self);
    }
}

impl<T: fmt::Debug> FieldValue for DebugValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.flat(key, self);
    }
}

impl<T: serde::Serialize> FieldValue for SerdeValue<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        out.nested(key, self);
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

impl<T: FieldValue + ?Sized> FieldValue for &mut T {
    #[inline]
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        (**self).write_field(key, out);
    }
}

impl<T: FieldValue + ?Sized> FieldValue for std::rc::Rc<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        (**self).write_field(key, out);
    }
}

impl<T: FieldValue + ?Sized> FieldValue for Arc<T> {
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        (**self).write_field(key, out);
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    #[inline]
    fn write_field(&self, key: Key<'_>, out: &mut FieldWriter<'_, '_>) {
        match self {
            Some(v) => v.write_field(key, out),
            None => out.absent(key),
        }
    }
}

/// The names whose values are written as `"***"`, compared without regard to case.
///
/// # Which fields are masked
///
/// A field is masked when its key, compared without regard to case, is one of the
/// names — or, for a dotted key, when the part after its last `.` is (`user.password`,
/// `http.Authorization`: the flattened spelling of a nested value, as `tracing` fields
/// and `log` keys often are). Its value is written as `"***"`, whatever it was (a string,
/// a number, an object). This holds on every path a field takes into a record: the
/// macros' fields in every form (`k = v`, `%v`, `?v`, `serde(v)`, bare `k`), the fields of
/// action start records, of [`exception!`](crate::exception) records, the fields bound
/// with [`Logger::ctx`](super::Logger::ctx) and [`scope`](super::scope) (each copy, when
/// several sources give the same key), the key-values of the `log` bridge, the fields of
/// `tracing` events and spans (a span's `error` field, which becomes the `reason` of its
/// failed end record, is hidden there too when `error` is masked), in every format and
/// every sink (the console renders the masked record).
///
/// **Case.** The key and the names are compared in lower case: ASCII lower case for a key
/// in ASCII; for a key with a character outside ASCII, Unicode lower case
/// ([`str::to_lowercase`]), whatever the names — `CONTRASEÑA` is the name `contraseña`, and
/// `to\u{212A}en`, with the KELVIN SIGN, is the name `token`. This is lower case, not
/// Unicode case folding: `STRASSE` is not the name `straße`.
///
/// **Nested values.** Inside a nested JSON value — a field given as
/// [`serde(v)`](crate::encode::serde), or a bound field whose value is an object or an
/// array — an object member whose key is masked (by the same rule, at any depth, in
/// arrays too) has its value replaced by `"***"`: `{"user": {"password": "x"}}` is written
/// `{"user":{"password":"***"}}`. The rest of the value is written unchanged.
///
/// **Not masked:** text. A secret inside a message, inside the `Display` / `Debug` text of a
/// `%v` / `?v` field under another name, or inside an error's text (`reason`), is written
/// as it is. The logger's own keys (`exc`, `reason`, `dur`, the header) are not fields and
/// are never masked. Keys are compared as given: `x-api-key` and `x_api_key` are different
/// names.
///
/// The `Debug` output of a [`Logger`](super::Logger) shows its bound fields masked by its
/// mask; that of [`Fields`] by the default names.
///
/// ```
/// use logxide::logger::Mask;
/// let mask = Mask::default();
/// assert!(mask.is_masked("Password"));
/// assert!(mask.is_masked("api_key"));
/// assert!(mask.is_masked("user.password"));
/// assert!(!mask.is_masked("user"));
/// assert!(!mask.is_masked("password.hint"));
/// assert!(mask.is_masked("to\u{212A}en")); // the KELVIN SIGN lowers to `k`
/// let custom = Mask::new(["pin"]);
/// assert!(custom.is_masked("PIN") && !custom.is_masked("password"));
/// ```
///
/// ```
/// use logxide::encode::serde;
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// let login = serde_json::json!({"user": {"name": "ada", "password": "x"}});
/// logxide::info!(logger: log, "login", form = serde(&login), API_KEY = "k");
/// log.flush(None).unwrap();
/// assert!(mem.lines()[0].ends_with(
///     r#""form":{"user":{"name":"ada","password":"***"}},"API_KEY":"***"}"#));
/// ```
#[derive(Clone, Debug)]
pub struct Mask {
    names: Vec<String>,
    /// `by_len[n]`: the names of length `n` (names of 64+ bytes are in slot 63).
    by_len: Vec<Vec<String>>,
    /// Bit `n`: `by_len[n]` is not empty (most keys are ruled out by their length alone).
    lengths: u64,
    /// A Bloom filter of the names' fold hashes (one bit each, of 256): a key whose bit is
    /// clear is no name. For the macros' keys the hash is computed at compile time, so most
    /// keys are ruled out by one lookup. The bit of [`UNICODE_FOLD`], which every key
    /// outside ASCII has, is set when `unicode` is.
    bloom: [u64; 4],
    /// A key outside ASCII may be one of the names in Unicode lower case: a name is outside
    /// ASCII, or has a `k` (the lower case of the KELVIN SIGN, U+212A: the one character
    /// outside ASCII whose lower case is ASCII). Such keys are then also compared in Unicode
    /// lower case (past the Bloom filter and the lengths, which fold ASCII only).
    unicode: bool,
}

impl Mask {
    /// The default names: password, passwd, pwd, secret, token, api_key, apikey,
    /// authorization, auth_token, access_token, refresh_token, client_secret, private_key,
    /// cookie, set_cookie, session_id, and the HTTP headers set-cookie, x-api-key and
    /// proxy-authorization (as headers are spelled, with hyphens). [`Mask::default`] masks
    /// these.
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// assert_eq!(Mask::default().names(), Mask::DEFAULT);
    /// // A mask of the defaults and more:
    /// let mask = Mask::new(Mask::DEFAULT.iter().chain(&["pin", "iban"]));
    /// assert!(mask.is_masked("token") && mask.is_masked("IBAN"));
    /// ```
    pub const DEFAULT: [&'static str; 19] = [
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
        "set-cookie",
        "x-api-key",
        "proxy-authorization",
    ];

    /// A mask of exactly these names, kept in Unicode lower case (matching ignores case:
    /// see "Case" at [`Mask`]); `"\u{212A}ey"`, with the KELVIN SIGN, is kept as `key`.
    /// Pitfall: the [default names](Mask::DEFAULT) are not added — chain them in to keep
    /// them (see there).
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// let mask = Mask::new(["PIN", "x-api-key"]);
    /// assert_eq!(mask.names(), ["pin", "x-api-key"]);
    /// assert!(mask.is_masked("Pin") && mask.is_masked("card.pin"));
    /// assert!(!mask.is_masked("password")); // not a default any more
    /// assert!(!mask.is_masked("x_api_key")); // names are compared as given
    /// ```
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().to_lowercase())
            .collect();
        let unicode = names.iter().any(|n| !n.is_ascii() || n.contains('k'));
        let mut by_len = vec![Vec::new(); 64];
        for n in &names {
            by_len[n.len().min(63)].push(n.clone());
        }
        let lengths = by_len
            .iter()
            .enumerate()
            .filter(|(_, names)| !names.is_empty())
            .fold(0, |bits, (n, _)| bits | 1 << n);
        let mut bloom = [0; 4];
        let hashes = names.iter().map(|n| fold_hash(n.as_bytes()));
        for hash in hashes.chain(unicode.then_some(UNICODE_FOLD)) {
            let bit = bloom_bit(hash);
            bloom[bit / 64] |= 1 << (bit % 64);
        }
        Mask {
            names,
            by_len,
            lengths,
            bloom,
            unicode,
        }
    }

    /// [`is_masked`](Self::is_masked) for a [`Key`], whose fold hashes rule most keys out
    /// first (precomputed for the macros' keys).
    #[inline(always)]
    pub(crate) fn masks(&self, key: Key<'_>) -> bool {
        let (whole, tail) = key.folds();
        let maybe = |h: u64| {
            let bit = bloom_bit(h);
            self.bloom[bit / 64] & 1 << (bit % 64) != 0
        };
        // A key outside ASCII has the bit of `UNICODE_FOLD` (see `folds`).
        (maybe(whole) || tail.is_some_and(maybe)) && self.is_masked(key.name())
    }

    /// A mask that hides nothing (for a logger whose records must keep every value).
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .mask(Mask::none())
    ///     .sink(mem.clone())
    ///     .build()
    ///     .unwrap();
    /// assert!(Mask::none().is_empty() && !Mask::none().is_masked("password"));
    /// logxide::info!(logger: log, "test login", password = "hunter2");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""password":"hunter2"}"#));
    /// ```
    pub fn none() -> Self {
        Mask::new(std::iter::empty::<&str>())
    }

    /// The names, in lower case, in the order given (see the example at
    /// [`new`](Self::new)).
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// assert_eq!(Mask::new(["PIN", "Session"]).names(), ["pin", "session"]);
    /// ```
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True if `key`'s value must be hidden: `key`, or the part of a dotted key after its
    /// last `.`, is one of the names, case ignored (see "Case" at [`Mask`]). Only the
    /// last part counts:
    /// `password.hint` is not masked.
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// let mask = Mask::default();
    /// assert!(mask.is_masked("TOKEN"));
    /// assert!(mask.is_masked("http.request.authorization"));
    /// assert!(!mask.is_masked("password.hint"));
    /// assert!(!mask.is_masked("tokens"));
    /// ```
    #[inline]
    pub fn is_masked(&self, key: &str) -> bool {
        self.is_name(key)
            || key
                .bytes()
                .rposition(|b| b == b'.')
                .is_some_and(|i| self.is_name(&key[i + 1..]))
    }

    /// True if `key` is one of the names (ASCII case ignored; Unicode case too, for a key
    /// outside ASCII when one of the names may be its lower case: see `unicode`).
    #[inline]
    fn is_name(&self, key: &str) -> bool {
        let slot = key.len().min(63);
        (self.lengths & 1 << slot != 0
            && self.by_len[slot]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(key)))
            || self.unicode && !key.is_ascii() && self.is_unicode_name(key)
    }

    /// `key` (outside ASCII) in Unicode lower case is one of the names (whose length may
    /// differ from the key's: `İ` lowers to three bytes).
    #[cold]
    fn is_unicode_name(&self, key: &str) -> bool {
        let lower = key.to_lowercase();
        let slot = lower.len().min(63);
        self.lengths & 1 << slot != 0 && self.by_len[slot].contains(&lower)
    }

    /// True if the mask hides nothing (see the example at [`none`](Self::none)).
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// assert!(Mask::none().is_empty());
    /// assert!(!Mask::default().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
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
///
/// **Equality** (`==`) compares the keys, their values' JSON text and their order: the
/// order is part of a set, as records write its fields in that order (a replaced key keeps
/// its place). Two sets of the same fields in another order are different sets, as their
/// records are different lines.
///
/// ```
/// use logxide::logger::Fields;
/// let f = Fields::new().with("x", 1).with("y", 2);
/// assert_eq!(f, Fields::new().with("x", 1).with("y", 2));
/// assert_ne!(f, Fields::new().with("y", 2).with("x", 1)); // written `"y":2,"x":1`
/// assert_eq!(f, Fields::new().with("x", 0).with("y", 2).with("x", 1)); // `x` kept its place
/// assert_eq!(Fields::new().with("n", 1u8), Fields::new().with("n", 1i64)); // both `1`
/// assert_ne!(Fields::new().with("n", 1), Fields::new().with("n", 1.0)); // `1`, `1.0`
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    entries: Vec<(Arc<str>, Arc<str>)>,
}

/// The values of the [default mask](Mask::DEFAULT)'s names are shown as `"***"`.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        static DEFAULT: OnceLock<Mask> = OnceLock::new();
        self.masked(DEFAULT.get_or_init(Mask::default)).fmt(f)
    }
}

impl Fields {
    /// No fields (as `Fields::default()`).
    ///
    /// ```
    /// let f = logxide::logger::Fields::new();
    /// assert!(f.is_empty() && f.len() == 0 && f.get_json("any").is_none());
    /// ```
    pub fn new() -> Self {
        Fields::default()
    }

    /// Adds (or replaces) `key` with `value`; `None` removes `key` (fields omit absent
    /// values, as the logging macros do).
    ///
    /// Pitfall: `None` removes `key` from this set only. Unlike a call-site `None`, which
    /// hides the context fields of its key, a set holding no `key` hides nothing: given to
    /// [`ctx`](super::Logger::ctx) or [`scope`](super::scope), it leaves the logger's or an
    /// outer scope's field of that key in the records.
    ///
    /// ```
    /// use logxide::logger::{scope, Fields};
    /// let f = Fields::new().with("user", "ada").with("team", None::<&str>);
    /// assert_eq!(f.len(), 1);
    /// assert_eq!(f.clone().with("user", None::<&str>).len(), 0);
    ///
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let req = log.ctx(f);
    /// let _inner = scope(Fields::new().with("user", None::<&str>)); // hides nothing
    /// req.info("in scope");
    /// logxide::info!(logger: req, "call", user = None::<&str>); // hides the bound `user`
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""msg":"in scope","user":"ada"}"#));
    /// assert!(mem.lines()[1].ends_with(r#""msg":"call"}"#));
    /// ```
    pub fn with<V: Encode>(mut self, key: &str, value: V) -> Self {
        self.insert(key, &value);
        self
    }

    /// Adds (or replaces) `key` with `value`; `None` removes `key` (see [`with`](Self::with)).
    /// The value is encoded as JSON now: a later change of the original is not seen.
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let mut f = Fields::new();
    /// f.insert("user", "ada");
    /// f.insert("attempt", &1);
    /// f.insert("attempt", &2); // replaces, keeping its place
    /// assert_eq!(f.get_json("attempt"), Some("2"));
    /// f.insert("user", &None::<&str>);
    /// assert_eq!(f.len(), 1);
    /// ```
    pub fn insert<V: Encode + ?Sized>(&mut self, key: &str, value: &V) {
        if value.is_absent() {
            self.entries.retain(|(k, _)| &**k != key);
            return;
        }
        let mut json = Vec::new();
        value.encode(&mut json);
        // Encoders write valid UTF-8 JSON.
        let json: Arc<str> = String::from_utf8_lossy(&json).into();
        match self.entries.iter_mut().find(|(k, _)| &**k == key) {
            Some(entry) => entry.1 = json,
            None => self.entries.push((key.into(), json)),
        }
    }

    /// Number of fields (each key once).
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let f = Fields::new().with("a", 1).with("b", 2).with("a", 3);
    /// assert_eq!(f.len(), 2);
    /// assert!(!f.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no fields (see the example at [`len`](Self::len)).
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// assert!(Fields::new().is_empty());
    /// assert!(!Fields::new().with("a", 1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JSON text of `key`'s value, as it is written into records (unmasked: masking
    /// happens when a record is written); `None` if `key` is not set.
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let f = Fields::new().with("user", "ada \"the first\"").with("ok", true).with("token", "t");
    /// assert_eq!(f.get_json("user"), Some(r#""ada \"the first\"""#));
    /// assert_eq!(f.get_json("ok"), Some("true"));
    /// assert_eq!(f.get_json("token"), Some(r#""t""#));
    /// assert_eq!(f.get_json("missing"), None);
    /// ```
    pub fn get_json(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// These fields, then `inner`'s: on equal keys `inner`'s value wins (in the place the
    /// key had here). Neither set is changed.
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let outer = Fields::new().with("zone", "eu").with("tenant", "a");
    /// let inner = Fields::new().with("zone", "us").with("user", "ada");
    /// let merged = outer.merged_with(&inner);
    /// assert_eq!(merged.len(), 3);
    /// assert_eq!(merged.get_json("zone"), Some(r#""us""#));
    /// assert_eq!(outer.get_json("zone"), Some(r#""eu""#));
    /// ```
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

    /// A `Debug` view with the values `mask` names shown as `"***"` (nested ones too).
    pub(crate) fn masked<'a>(&'a self, mask: &'a Mask) -> impl fmt::Debug + 'a {
        struct Masked<'a>(&'a Fields, &'a Mask);
        impl fmt::Debug for Masked<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Masked(fields, mask) = *self;
                let mut map = f.debug_map();
                for (k, v) in fields.iter() {
                    if mask.is_masked(k) {
                        map.entry(&k, &"\"***\"");
                    } else {
                        let mut json = Vec::new();
                        write_masked_json(&mut json, v.as_bytes(), mask);
                        map.entry(&k, &String::from_utf8_lossy(&json));
                    }
                }
                map.finish()
            }
        }
        Masked(self, mask)
    }
}

/// JSON text already encoded, written as is.
struct RawJson<'a>(&'a str);

impl Encode for RawJson<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

/// JSON bytes already encoded, written as is.
struct RawBytes<'a>(&'a [u8]);

impl Encode for RawBytes<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0);
    }
}

/// JSON already encoded, written with the values of masked members hidden.
struct MaskedJson<'a> {
    json: &'a [u8],
    mask: &'a Mask,
}

impl Encode for MaskedJson<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        write_masked_json(out, self.json, self.mask);
    }
}

thread_local! {
    /// Where a nested value is encoded before its masked members are hidden (reused).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer, empty (see [`with_reused`]).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    with_reused(&SCRATCH, 0, f)
}

/// Whether `json` is an object or an array (the only values with members to mask).
#[inline]
fn is_container(json: &[u8]) -> bool {
    matches!(json.first(), Some(b'{' | b'['))
}

/// Appends `json` (one JSON value) to `out` with the value of every object member whose key
/// `mask` names — at any depth, inside arrays too — replaced by `"***"`. Everything else is
/// copied byte for byte. Never panics, whatever the input; text that is not JSON is copied
/// as it is, with the members found in it masked as well as they can be.
fn write_masked_json(out: &mut Vec<u8>, json: &[u8], mask: &Mask) {
    if !is_container(json) || mask.is_empty() {
        out.extend_from_slice(json);
        return;
    }
    // Per open container: true for an object.
    let mut open: SmallVec<[bool; 16]> = SmallVec::new();
    // The next string is a member's key: right after `{`, or after `,` in an object.
    let mut at_key = false;
    let mut copied = 0;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'{' => {
                open.push(true);
                at_key = true;
            }
            b'[' => {
                open.push(false);
                at_key = false;
            }
            b'}' | b']' => {
                open.pop();
                at_key = false;
            }
            b',' => at_key = open.last() == Some(&true),
            b'"' => {
                let end = string_end(json, i);
                if at_key {
                    at_key = false;
                    if key_is_masked(&json[i..end], mask) {
                        let mut value = end;
                        while value < json.len()
                            && (json[value] == b':' || json[value].is_ascii_whitespace())
                        {
                            value += 1;
                        }
                        out.extend_from_slice(&json[copied..value]);
                        out.extend_from_slice(b"\"***\"");
                        i = value_end(json, value);
                        copied = i;
                        continue;
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&json[copied..]);
}

/// The index after the string starting with the `"` at `start` (the end of `json` if it is
/// not closed).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(found) = json
        .get(i..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        let at = i + found;
        if json[at] == b'"' {
            return at + 1;
        }
        i = at + 2; // a backslash and the character it escapes
    }
    json.len()
}

/// The index after the JSON value starting at `start`.
fn value_end(json: &[u8], start: usize) -> usize {
    match json.get(start) {
        None => json.len(),
        Some(b'"') => string_end(json, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < json.len() {
                match json[i] {
                    b'"' => {
                        i = string_end(json, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            json.len()
        }
        // A number, `true`, `false` or `null`.
        Some(_) => json[start..]
            .iter()
            .position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
            .map_or(json.len(), |n| start + n),
    }
}

/// Whether the quoted JSON string `quoted` (a member's key) is masked. A key with escapes
/// is decoded first (`"pass\u0077ord"` is `password`).
fn key_is_masked(quoted: &[u8], mask: &Mask) -> bool {
    let Some(inner) = quoted
        .strip_prefix(b"\"")
        .and_then(|q| q.strip_suffix(b"\""))
    else {
        return false;
    };
    if memchr::memchr(b'\\', inner).is_none() {
        return std::str::from_utf8(inner).is_ok_and(|k| mask.is_masked(k));
    }
    serde_json::from_slice::<String>(quoted).is_ok_and(|k| mask.is_masked(&k))
}

/// Writes the fields of one record, applying the mask. Handed to the closure of
/// [`Logger::log`](super::Logger::log); the macros call it for you.
///
/// Call-site fields come first; then the fields of the current [scopes](super::scope), then
/// those bound to the logger — each skipped when a more specific source already wrote the
/// same key (call site over scope over logger), so a context field never repeats a key of
/// the record. A call-site field whose value is `None` is written as nothing and overrides
/// all the same: the context fields of its key are left out of that record (the key is
/// absent), and of that record only.
///
/// **A key written twice by the call site** (`info!("m", a = 1, a = 2)`, or two `field`
/// calls) is in the record twice, in the order written: the call's own fields are written
/// as they come, not looked up among each other (a look-up would cost every record). Each
/// copy is masked if the key is. Such a line is valid JSON, but readers differ on which
/// copy they keep (`serde_json`, Python's `json`, JavaScript's `JSON.parse` and `jq` keep
/// the last): give each key once.
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
/// let req = log.ctx(logxide::logger::Fields::new().with("user", "ada").with("zone", "eu"));
/// req.log(logxide::Level::Info, "hit", |f| {
///     f.field("zone", "us");      // overrides the bound field
///     f.field("token", "secret"); // masked
///     f.field("cache", &None::<bool>); // absent: omitted
/// });
/// req.log(logxide::Level::Info, "anonymous", |f| {
///     f.field("user", &None::<&str>); // absent: hides the bound `user` too
/// });
/// log.flush(None).unwrap();
/// assert!(mem.lines()[0].ends_with(r#""msg":"hit","zone":"us","token":"***","user":"ada"}"#));
/// assert!(mem.lines()[1].ends_with(r#""msg":"anonymous","zone":"eu"}"#));
///
/// req.log(logxide::Level::Info, "twice", |f| {
///     f.field("token", "a");
///     f.field("token", "b"); // written again, masked again
/// });
/// log.flush(None).unwrap();
/// assert!(mem.lines()[2].ends_with(r#""msg":"twice","token":"***","token":"***","user":"ada","zone":"eu"}"#));
/// ```
pub struct FieldWriter<'e, 'b> {
    enc: &'e mut RecordEncoder<'b>,
    mask: &'e Mask,
    scope: &'e Fields,
    bound: &'e Fields,
    /// Bit `i`: the call site wrote the key of `scope` entry `i` / `bound` entry `i`.
    scope_hidden: Hidden,
    bound_hidden: Hidden,
}

/// A set of positions in a context set: the first 64 in one word (no allocation, one `or`
/// per field), the rest in words allocated only for a set that large.
#[derive(Default)]
struct Hidden {
    first: u64,
    more: Vec<u64>,
}

impl Hidden {
    /// Marks position `i`.
    #[inline(always)]
    fn insert(&mut self, i: usize) {
        if i < 64 {
            self.first |= 1 << i;
        } else {
            self.insert_more(i - 64);
        }
    }

    #[cold]
    fn insert_more(&mut self, i: usize) {
        let word = i / 64;
        if self.more.len() <= word {
            self.more.resize(word + 1, 0);
        }
        self.more[word] |= 1 << (i % 64);
    }

    /// Whether position `i` is marked.
    #[inline(always)]
    fn contains(&self, i: usize) -> bool {
        if i < 64 {
            self.first & 1 << i != 0
        } else {
            let i = i - 64;
            self.more
                .get(i / 64)
                .is_some_and(|w| w & 1 << (i % 64) != 0)
        }
    }
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
            scope_hidden: Hidden::default(),
            bound_hidden: Hidden::default(),
        }
    }

    /// Writes one field (`None` writes nothing, and hides the context fields of `key`): any
    /// [`FieldValue`], masked by the logger's
    /// [`Mask`] (nested members of a [`serde`](crate::encode::serde) value too). See the
    /// example at [`FieldWriter`].
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.log(logxide::Level::Info, "login", |f| {
    ///     f.field("user", "ada");
    ///     f.field("password", "hunter2"); // masked by default
    ///     f.field("code", &None::<u32>);  // absent: not written
    /// });
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].ends_with(r#""msg":"login","user":"ada","password":"***"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn field<'k, V: FieldValue + ?Sized>(&mut self, key: impl Into<Key<'k>>, value: &V) {
        value.write_field(key.into(), self);
    }

    /// Writes `key` with an encodable value, masked as a whole if the key is masked; an
    /// object or array value (a [`serde`](crate::encode::serde) value, or an `Encode` that
    /// writes one) has the masked members inside it hidden, as [`field`](Self::field)
    /// does. (It is encoded first to look inside: `field` is quicker for plain values.) An
    /// absent value ([`Encode::is_absent`]: `None`) is omitted, as `field` omits it.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// log.log(logxide::Level::Info, "m", |f| {
    ///     f.encoded("n".into(), &5u8);
    ///     f.encoded("password".into(), "x");
    ///     f.encoded("cache".into(), &None::<bool>); // absent: omitted
    ///     f.encoded("form".into(), &logxide::encode::serde(serde_json::json!({"pin": 1, "pwd": 2})));
    /// });
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""msg":"m","n":5,"password":"***","form":{"pin":1,"pwd":"***"}}"#));
    /// ```
    pub fn encoded<V: Encode + ?Sized>(&mut self, key: Key<'_>, value: &V) {
        if value.is_absent() {
            return self.absent(key);
        }
        self.nested(key, value);
    }

    /// Writes `key` with a value that holds no nested JSON (a scalar, a string, a
    /// `Display` / `Debug` capture), masked if the key is masked.
    #[inline(always)]
    fn flat<V: Encode + ?Sized>(&mut self, key: Key<'_>, value: &V) {
        let name = key.name();
        if self.mask.masks(key) {
            self.enc.masked_field(key);
        } else {
            self.enc.field(key, value);
        }
        self.hide(name);
    }

    /// A call-site field of `key` with no value (`None`): nothing is written, and the
    /// context fields of `key` are hidden from this record, as a value would override them.
    #[inline]
    pub(crate) fn absent(&mut self, key: Key<'_>) {
        self.hide(key.name());
    }

    /// Whether the record has context fields (scope or logger) a call-site field could hide:
    /// without any, an absent field has nothing to do (the `tracing` layer skips looking
    /// for the fields an event left unrecorded).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    #[inline]
    pub(crate) fn has_context(&self) -> bool {
        !(self.scope.is_empty() && self.bound.is_empty())
    }

    /// Marks the scope and logger fields of key `name` as overridden by the call site.
    #[inline(always)]
    fn hide(&mut self, name: &str) {
        if let Some(i) = position(self.scope, name) {
            self.scope_hidden.insert(i);
        }
        if let Some(i) = position(self.bound, name) {
            self.bound_hidden.insert(i);
        }
    }

    /// Writes the scope and logger fields the call site did not override.
    pub(crate) fn finish_context(&mut self) {
        for (i, (k, v)) in self.scope.iter().enumerate() {
            if self.scope_hidden.contains(i) {
                continue;
            }
            self.raw(k, v);
        }
        for (i, (k, v)) in self.bound.iter().enumerate() {
            if self.bound_hidden.contains(i) || self.scope.get_json(k).is_some() {
                continue;
            }
            self.raw(k, v);
        }
    }

    fn raw(&mut self, key: &str, json: &str) {
        if self.mask.is_masked(key) {
            self.enc.masked_field(key);
        } else if is_container(json.as_bytes()) && !self.mask.is_empty() {
            let mask = self.mask;
            self.enc.field(
                key,
                &MaskedJson {
                    json: json.as_bytes(),
                    mask,
                },
            );
        } else {
            self.enc.field(key, &RawJson(json));
        }
    }

    /// Writes `key` with a value that may be nested JSON (a serde value): masked as a
    /// whole if the key is masked, else with the masked members inside it hidden.
    fn nested<V: Encode + ?Sized>(&mut self, key: Key<'_>, value: &V) {
        let mask = self.mask;
        if mask.is_empty() || mask.is_masked(key.name()) {
            return self.flat(key, value);
        }
        with_scratch(|json| {
            value.encode(json);
            if is_container(json) {
                self.flat(key, &MaskedJson { json, mask });
            } else {
                self.flat(key, &RawBytes(json));
            }
        });
    }

    /// The record being written (for the logger's own reserved fields).
    pub(crate) fn encoder(&mut self) -> &mut RecordEncoder<'b> {
        self.enc
    }
}

/// Which of the mask's 256 Bloom bits a fold hash sets.
#[inline]
fn bloom_bit(hash: u64) -> usize {
    (hash >> 56) as usize
}

/// `key`'s position in `fields`, if it is there.
#[inline]
fn position(fields: &Fields, key: &str) -> Option<usize> {
    if fields.is_empty() {
        return None;
    }
    fields.iter().position(|(k, _)| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::StaticKey;

    /// `FieldWriter::encoded`, public, wrote a nested value (`serde(v)`) as it encoded,
    /// without hiding its masked members: `{"password":"x"}` reached the record, where
    /// `field` writes `{"password":"***"}`.
    #[test]
    fn encoded_hides_the_masked_members_of_a_nested_value() {
        let mem = crate::sink::MemorySink::new();
        let log = super::super::Logger::builder()
            .use_env(false)
            .sink(mem.clone())
            .build()
            .unwrap();
        let form = serde_json::json!({"user": "ada", "login": [{"password": "x"}]});
        log.log(super::super::Level::Info, "m", |f| {
            f.encoded("by_encoded".into(), &crate::encode::serde(&form));
            f.field("by_field", &crate::encode::serde(&form));
            f.encoded("n".into(), &1.5);
            f.encoded("token".into(), &crate::encode::serde(&form));
        });
        log.flush(None).unwrap();
        let line = &mem.lines()[0];
        assert!(
            line.ends_with(concat!(
                r#""msg":"m","by_encoded":{"login":[{"password":"***"}],"user":"ada"},"#,
                r#""by_field":{"login":[{"password":"***"}],"user":"ada"},"n":1.5,"token":"***"}"#
            )),
            "{line}"
        );
    }

    /// The mask's `unicode` flag rests on this: the KELVIN SIGN is the one character
    /// outside ASCII whose lower case is ASCII (`İ` lowers to `i` and a combining dot).
    #[test]
    fn only_the_kelvin_sign_lowers_into_ascii() {
        let into_ascii: Vec<(char, String)> = ('\u{80}'..=char::MAX)
            .map(|c| (c, c.to_lowercase().collect::<String>()))
            .filter(|(_, lower)| lower.is_ascii())
            .collect();
        assert_eq!(into_ascii, [('\u{212A}', "k".to_owned())]);
        assert!(!Mask::new(["pin"]).unicode && Mask::new(["pin"]).is_masked("PIN"));
        assert!(Mask::new(["kid"]).unicode && Mask::new(["kid"]).is_masked("\u{212A}ID"));
    }

    #[test]
    fn the_bloom_check_agrees_with_the_full_comparison() {
        let masks = [
            Mask::default(),
            Mask::new(["PIN", "x-api-key", "a", "Ünï"]),
            Mask::new(["pin"]),
            Mask::none(),
        ];
        let mut keys: Vec<String> = Vec::new();
        for base in Mask::DEFAULT.iter().chain(&[
            "pin",
            "x-api-key",
            "a",
            "Ünï",
            "user",
            "path",
            "to\u{212A}en",
            "\u{212A}",
        ]) {
            for k in [
                base.to_string(),
                base.to_ascii_uppercase(),
                format!("user.{base}"),
                format!("{base}.hint"),
                format!("a.b.{}", base.to_ascii_uppercase()),
                format!("{base}x"),
                format!(".{base}"),
                format!("{base}."),
            ] {
                keys.push(k);
            }
        }
        // Many keys that are no names, for the filter's false positives.
        keys.extend((0..2000).map(|i| format!("field_{i}")));
        for mask in &masks {
            for k in &keys {
                let want = mask.is_masked(k);
                assert_eq!(mask.masks(Key::from(k.as_str())), want, "{k:?}");
                let name: &'static str = Box::leak(k.clone().into_boxed_str());
                let quoted: &'static str = Box::leak(format!(",\"{k}\":").into_boxed_str());
                let stat: &'static StaticKey = Box::leak(Box::new(StaticKey::new(name, quoted)));
                assert_eq!(mask.masks(Key::from(stat)), want, "static {k:?}");
            }
        }
        // The filter rules out most keys that are no names (8 of 256 bits set by default).
        let d = Mask::default();
        let passed = (0..2000)
            .filter(|i| {
                let k = format!("field_{i}");
                let (h, _) = Key::from(k.as_str()).folds();
                let bit = bloom_bit(h);
                d.bloom[bit / 64] & 1 << (bit % 64) != 0
            })
            .count();
        assert!(passed < 400, "{passed} of 2000 keys passed the filter");
    }
}
