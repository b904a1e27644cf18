//! Field keys: a key's name, and for keys known at compile time its JSON spelling, worked out
//! once so that the logging macros copy a key instead of checking it on every call.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use super::json::is_plain_const;
use super::Format;

/// A field key known at compile time, with its spelling (`,"name":`) in each [`Format`]
/// worked out when the program is compiled.
///
/// The logging macros make one per field in a `const`, so each record's keys are copied, not
/// escaped or checked against the reserved names, at every call. A key that must be escaped,
/// or renamed because it is reserved in a format (see [`RecordEncoder::field`]), keeps only
/// its name for that format and is spelled at run time: the output is the same either way.
///
/// `quoted` must be `,"` + `name` + `":` — the macros write it with `concat!`; any other text
/// is ignored and the key is spelled at run time.
///
/// ```
/// use logxide::encode::{Format, Key, RecordEncoder, StaticKey, Timestamp};
/// const USER: StaticKey = StaticKey::new("user", ",\"user\":");
/// const MSG: StaticKey = StaticKey::new("msg", ",\"msg\":"); // reserved in compact
/// let mut buf = Vec::new();
/// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[1]);
/// rec.field(Key::from(&USER), "ada");
/// rec.field(Key::from(&MSG), "hi");
/// rec.finish();
/// assert!(buf.ends_with(b",\"user\":\"ada\",\"_msg\":\"hi\"}\n"));
/// ```
///
/// [`RecordEncoder::field`]: super::RecordEncoder::field
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticKey {
    name: &'static str,
    compact: Option<&'static str>,
    eliot: Option<&'static str>,
    /// [`fold_hash`] of the name, and of its part after the last `.` (if it has one): what
    /// a mask looks up first.
    folds: (u64, Option<u64>),
}

impl StaticKey {
    /// The key `name`; `quoted` is its spelling `,"name":`.
    ///
    /// ```
    /// use logxide::encode::{Key, StaticKey};
    /// static USER: StaticKey = StaticKey::new("user", r#","user":"#);
    /// assert_eq!(USER.name(), "user");
    /// assert_eq!(Key::from(&USER).name(), "user");
    /// ```
    pub const fn new(name: &'static str, quoted: &'static str) -> StaticKey {
        let usable = is_plain_const(name.as_bytes()) && is_quoted(name, quoted);
        StaticKey {
            name,
            compact: if usable && !renamed(Format::Compact, name) {
                Some(quoted)
            } else {
                None
            },
            eliot: if usable && !renamed(Format::Eliot, name) {
                Some(quoted)
            } else {
                None
            },
            folds: folds(name.as_bytes()),
        }
    }

    /// The key's name.
    ///
    /// ```
    /// use logxide::encode::StaticKey;
    /// static ID: StaticKey = StaticKey::new("request_id", r#","request_id":"#);
    /// assert_eq!(ID.name(), "request_id");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The spelling `,"name":` in `format`, if the key is written as is there.
    #[inline]
    pub(crate) fn spelled(&self, format: Format) -> Option<&'static str> {
        match format {
            Format::Compact => self.compact,
            Format::Eliot => self.eliot,
        }
    }
}

/// A field key: a name, and for a [`StaticKey`] its precomputed spelling. Made from a `&str`
/// (spelled at run time) or a `&'static StaticKey`.
///
/// ```
/// use logxide::encode::Key;
/// let key = Key::from("user");
/// assert_eq!(key.name(), "user");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    name: &'a str,
    spelled: Option<&'static StaticKey>,
}

impl<'a> Key<'a> {
    /// The key's name.
    ///
    /// ```
    /// use logxide::encode::Key;
    /// assert_eq!(Key::from("port").name(), "port");
    /// ```
    #[inline]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The precomputed spelling in `format`, if any.
    #[inline]
    pub(crate) fn spelled(&self, format: Format) -> Option<&'static str> {
        self.spelled.and_then(|k| k.spelled(format))
    }

    /// The [`fold_hash`]es of the name and of its part after the last `.`: precomputed for
    /// a [`StaticKey`], worked out here for others.
    #[inline]
    pub(crate) fn folds(&self) -> (u64, Option<u64>) {
        match self.spelled {
            Some(k) => k.folds,
            None => folds(self.name.as_bytes()),
        }
    }
}

/// FNV-1a of `bytes` with ASCII letters lowercased: names equal but for ASCII case (what a
/// [`Mask`](crate::logger::Mask) compares) hash alike.
pub(crate) const fn fold_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i].to_ascii_lowercase() as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// The top byte of the whole-name fold hash of every name outside ASCII (see [`folds`]).
pub(crate) const UNICODE_FOLD: u64 = 0xff << 56;

/// The fold hashes of `name` and of its part after the last `.`, if it has a `.`. The
/// whole name's hash of a name outside ASCII has its top byte set ([`UNICODE_FOLD`]): a
/// mask compares such a key in Unicode lower case, which [`fold_hash`] does not fold, so
/// it sets the Bloom bit of that byte and lets every such key through to the comparison
/// (worked out at compile time for the macros' keys: no cost at run time).
const fn folds(name: &[u8]) -> (u64, Option<u64>) {
    let whole = if name.is_ascii() {
        fold_hash(name)
    } else {
        fold_hash(name) | UNICODE_FOLD
    };
    let mut i = name.len();
    while i > 0 {
        i -= 1;
        if name[i] == b'.' {
            let (_, tail) = name.split_at(i + 1);
            return (whole, Some(fold_hash(tail)));
        }
    }
    (whole, None)
}

impl<'a> From<&'a str> for Key<'a> {
    #[inline]
    fn from(name: &'a str) -> Self {
        Key {
            name,
            spelled: None,
        }
    }
}

impl<'a> From<&&'a str> for Key<'a> {
    #[inline]
    fn from(name: &&'a str) -> Self {
        Key::from(*name)
    }
}

impl<'a> From<&'a String> for Key<'a> {
    #[inline]
    fn from(name: &'a String) -> Self {
        Key::from(name.as_str())
    }
}

impl From<&'static StaticKey> for Key<'static> {
    #[inline]
    fn from(key: &'static StaticKey) -> Self {
        Key {
            name: key.name,
            spelled: Some(key),
        }
    }
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `quoted == ",\"" + name + "\":"`.
const fn is_quoted(name: &str, quoted: &str) -> bool {
    let (n, q) = (name.as_bytes(), quoted.as_bytes());
    if q.len() != n.len() + 4 || q[0] != b',' || q[1] != b'"' {
        return false;
    }
    if q[q.len() - 2] != b'"' || q[q.len() - 1] != b':' {
        return false;
    }
    let mut i = 0;
    while i < n.len() {
        if q[i + 2] != n[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// [`Format::renames`] at compile time: `name` without its leading `_` is reserved.
const fn renamed(format: Format, name: &str) -> bool {
    let mut bare = name.as_bytes();
    while let [b'_', rest @ ..] = bare {
        bare = rest;
    }
    let reserved = format.reserved_keys();
    let mut i = 0;
    while i < reserved.len() {
        if bytes_eq(bare, reserved[i].as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

/// How many names [`interned`] spells at most, in all (each is leaked: a program whose keys
/// are made at run time from data, without bound, gets its keys spelled at every call past
/// it, as before).
const MAX_INTERNED: usize = 4096;

/// A [`StaticKey`] for a key name known only at run time (the `log` bridge's key-values,
/// whose keys are the call site's literals, though `log` does not say so): found by its text
/// in a small per-thread cache, so that a key seen before is copied, not checked, spelled
/// and hashed for the mask at every record. The first sight of a name on each thread takes
/// a process-wide lock (a name that another took its cache slot from is found again in the
/// thread's own list of the names it saw, without the lock: two names taking turns at one
/// slot, as a record's keys may, do not take it at every record); `None` once
/// [`MAX_INTERNED`] names are spelled, and for a name whose thread-local cache is gone (a
/// record logged while the thread's locals are destroyed).
pub(crate) fn interned(name: &str) -> Option<&'static StaticKey> {
    thread_local! {
        static CACHE: Slots = const { [const { Cell::new(None) }; WAYS] };
    }
    let way = (text_hash(name.as_bytes()) >> 56) as usize % WAYS;
    if let Ok(Some(k)) = CACHE.try_with(|c| c[way].get().filter(|k| k.name == name)) {
        return Some(k);
    }
    let k = seen_or_registered(name)?;
    let _ = CACHE.try_with(|c| c[way].set(Some(k)));
    Some(k)
}

/// [`interned`] for a `'static` name (`tracing`'s field names): its cache is found by the
/// name's address, a `'static` text never being freed — quicker than by its text.
pub(crate) fn interned_static(name: &'static str) -> Option<&'static StaticKey> {
    type Slot = Cell<Option<(*const u8, usize, &'static StaticKey)>>;
    thread_local! {
        static CACHE: [Slot; WAYS] = const { [const { Cell::new(None) }; WAYS] };
    }
    let (ptr, len) = (name.as_ptr(), name.len());
    let way = ((ptr as usize >> 3) ^ len) % WAYS;
    let found = CACHE.try_with(|c| match c[way].get() {
        Some((p, l, k)) if p == ptr && l == len => Some(k),
        _ => None,
    });
    if let Ok(Some(k)) = found {
        return Some(k);
    }
    let k = seen_or_registered(name)?;
    let _ = CACHE.try_with(|c| c[way].set(Some((ptr, len, k))));
    Some(k)
}

#[cfg(test)]
thread_local! {
    /// The registry's lookups made by this thread (each under its lock).
    static REGISTRY_LOOKUPS: Cell<u64> = const { Cell::new(0) };
}

/// `name`'s key from the names this thread saw (no lock), else from the registry (then
/// remembered here): what a cache slot taken by another name falls back on.
fn seen_or_registered(name: &str) -> Option<&'static StaticKey> {
    type Seen = RefCell<Option<HashMap<&'static str, &'static StaticKey>>>;
    thread_local! {
        // At most the registry's names: `MAX_INTERNED`.
        static SEEN: Seen = const { RefCell::new(None) };
    }
    let found = SEEN.try_with(|s| s.try_borrow().ok()?.as_ref()?.get(name).copied());
    if let Ok(Some(k)) = found {
        return Some(k);
    }
    let k = registered(name)?;
    let _ = SEEN.try_with(|s| {
        if let Ok(mut seen) = s.try_borrow_mut() {
            seen.get_or_insert_with(HashMap::new).insert(k.name, k);
        }
    });
    Some(k)
}

/// The slots of a per-thread cache of [`interned`] keys.
const WAYS: usize = 256;
type Slots = [Cell<Option<&'static StaticKey>>; WAYS];

/// The process-wide registry behind [`interned`]: `name`'s key, made on its first sight.
fn registered(name: &str) -> Option<&'static StaticKey> {
    #[cfg(test)]
    REGISTRY_LOOKUPS.with(|n| n.set(n.get() + 1));
    static KEYS: Mutex<Option<HashMap<&'static str, &'static StaticKey>>> = Mutex::new(None);
    static FULL: AtomicBool = AtomicBool::new(false);
    if FULL.load(Relaxed) {
        return None;
    }
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let k = intern_in(keys.get_or_insert_with(HashMap::new), name, MAX_INTERNED);
    if k.is_none() {
        FULL.store(true, Relaxed);
    }
    k
}

/// `name`'s key in `keys`, made (and leaked) if it is not there yet and `keys` holds fewer
/// than `max`.
fn intern_in(
    keys: &mut HashMap<&'static str, &'static StaticKey>,
    name: &str,
    max: usize,
) -> Option<&'static StaticKey> {
    if let Some(&k) = keys.get(name) {
        return Some(k);
    }
    if keys.len() >= max {
        return None;
    }
    let name: &'static str = Box::leak(name.into());
    let quoted: &'static str = Box::leak(format!(",\"{name}\":").into_boxed_str());
    let k: &'static StaticKey = Box::leak(Box::new(StaticKey::new(name, quoted)));
    keys.insert(name, k);
    Some(k)
}

/// A quick hash of a short text (its length and its first and last eight bytes), for a
/// cache slot: equal texts hash alike, whatever their addresses.
#[inline]
fn text_hash(b: &[u8]) -> u64 {
    let n = b.len();
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
    let (head, tail) = if n >= 8 {
        (word(0), word(n - 8))
    } else {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(b);
        (u64::from_le_bytes(w), 0)
    };
    (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_matches_the_runtime_rules() {
        for name in [
            "user",
            "msg",
            "_msg",
            "__ts",
            "ts_",
            "timestamp",
            "a\"b",
            "tab\t",
            "",
            "é",
            "\u{2028}",
            "message",
            "reason",
            "x_y",
        ] {
            let quoted: &'static str = Box::leak(format!(",\"{name}\":").into_boxed_str());
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            let key = StaticKey::new(name, quoted);
            for format in [Format::Compact, Format::Eliot] {
                let runtime_plain =
                    !format.renames(name) && super::super::json::is_plain(name.as_bytes());
                assert_eq!(
                    key.spelled(format).is_some(),
                    runtime_plain,
                    "{name:?} {format}"
                );
            }
        }
        // Fold hashes ignore ASCII case and split at the last dot.
        static K: StaticKey = StaticKey::new("User.PassWord", ",\"User.PassWord\":");
        let k = &K;
        assert_eq!(
            k.folds,
            (fold_hash(b"user.password"), Some(fold_hash(b"password")))
        );
        assert_eq!(Key::from(k).folds(), Key::from("user.PASSWORD").folds());
        assert_eq!(Key::from("x").folds(), (fold_hash(b"X"), None));
        // A name outside ASCII has the top byte of its whole hash set, as at run time.
        static U: StaticKey = StaticKey::new("User.to\u{212A}en", ",\"User.to\u{212A}en\":");
        let u = Key::from(&U).folds();
        assert_eq!(u, Key::from("User.to\u{212A}en").folds());
        assert_eq!(u.0 & UNICODE_FOLD, UNICODE_FOLD);
        assert_eq!(u.1, Some(fold_hash("to\u{212A}en".as_bytes())));
        // A wrong spelling is never used.
        assert_eq!(
            StaticKey::new("user", ",\"usr\":").spelled(Format::Compact),
            None
        );
        assert_eq!(
            StaticKey::new("user", "\"user\":").spelled(Format::Compact),
            None
        );
    }

    /// The macros' key of a raw identifier is its name without `r#`, spelled at compile time
    /// (copied at run time, as any other key); a reserved name so written is renamed.
    #[test]
    fn raw_identifier_keys_are_spelled_at_compile_time() {
        let raw: &'static StaticKey = crate::__ident_key!(r#type);
        assert_eq!(raw.name(), "type");
        assert_eq!(raw.spelled(Format::Compact), Some(",\"type\":"));
        assert_eq!(raw.spelled(Format::Eliot), Some(",\"type\":"));
        let plain: &'static StaticKey = crate::__ident_key!(user_id);
        assert_eq!(plain.name(), "user_id");
        assert_eq!(plain.spelled(Format::Compact), Some(",\"user_id\":"));
        let reserved: &'static StaticKey = crate::__ident_key!(r#msg);
        assert_eq!(reserved.name(), "msg");
        assert_eq!(reserved.spelled(Format::Compact), None);
        assert_eq!(reserved.spelled(Format::Eliot), Some(",\"msg\":"));
    }

    #[test]
    fn a_name_made_at_run_time_is_spelled_once_and_found_by_its_text() {
        let a = String::from("user_id");
        let b = String::from("user_id"); // another allocation, the same text
        let ka = interned(&a).expect("room");
        let kb = interned(&b).expect("room");
        assert!(std::ptr::eq(ka, kb));
        assert_eq!(ka.name(), "user_id");
        assert_eq!(ka.spelled(Format::Compact), Some(",\"user_id\":"));
        // Another text of the same length and ends is another key.
        let kc = interned("user_xd").expect("room");
        assert!(!std::ptr::eq(ka, kc));
        assert_eq!(kc.name(), "user_xd");
        // A name to escape, or reserved, keeps only its name (spelled at run time).
        assert_eq!(
            interned("a\"b").expect("room").spelled(Format::Compact),
            None
        );
        assert_eq!(
            interned("msg").expect("room").spelled(Format::Compact),
            None
        );
        assert_eq!(
            interned("msg").expect("room").spelled(Format::Eliot),
            Some(",\"msg\":")
        );
    }

    #[test]
    fn past_its_bound_the_registry_spells_no_new_name_but_finds_the_old_ones() {
        let mut keys = HashMap::new();
        let one = intern_in(&mut keys, "one", 2).expect("room");
        assert!(intern_in(&mut keys, "two", 2).is_some());
        assert!(intern_in(&mut keys, "three", 2).is_none());
        assert!(std::ptr::eq(
            intern_in(&mut keys, "one", 2).expect("kept"),
            one
        ));
        assert_eq!(keys.len(), 2);
    }

    /// Two names of one slot of a thread's cache, taking turns (keys of one record, say),
    /// each evicted the other: every record took the registry's process-wide lock, for
    /// each of them. The lock is taken once per name and thread.
    #[test]
    fn names_taking_turns_at_one_cache_slot_take_the_registry_lock_once_each() {
        std::thread::spawn(|| {
            // Of 257 names (texts, or addresses), two share a slot.
            let names: Vec<&'static str> = (0..=WAYS)
                .map(|i| &*Box::leak(format!("turns_{i}").into_boxed_str()))
                .collect();
            let pair = |way: &dyn Fn(&str) -> usize| {
                let mut seen = HashMap::new();
                names
                    .iter()
                    .find_map(|&n| seen.insert(way(n), n).map(|m| (m, n)))
                    .expect("pigeonholes")
            };
            let (a, b) = pair(&|n| (text_hash(n.as_bytes()) >> 56) as usize % WAYS);
            for _ in 0..10 {
                assert_eq!(interned(a).expect("room").name(), a);
                assert_eq!(interned(b).expect("room").name(), b);
            }
            assert_eq!(REGISTRY_LOOKUPS.with(Cell::get), 2);
            let (c, d) = pair(&|n| ((n.as_ptr() as usize >> 3) ^ n.len()) % WAYS);
            let before = REGISTRY_LOOKUPS.with(Cell::get);
            for _ in 0..10 {
                assert_eq!(interned_static(c).expect("room").name(), c);
                assert_eq!(interned_static(d).expect("room").name(), d);
            }
            // (Found by their texts, seen already or not.)
            assert!(REGISTRY_LOOKUPS.with(Cell::get) - before <= 2);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_static_name_is_found_by_its_address_and_shares_its_texts_key() {
        static ONE: &str = "span_field";
        let k = interned_static(ONE).expect("room");
        assert!(std::ptr::eq(interned_static(ONE).expect("cached"), k));
        // The same text elsewhere (at run time, or another static) is the same key.
        assert!(std::ptr::eq(
            interned(&String::from("span_field")).expect("room"),
            k
        ));
        assert_eq!(k.spelled(Format::Compact), Some(",\"span_field\":"));
    }
}
