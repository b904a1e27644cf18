//! A serializer that keeps a failing `Display` inside a serde value from panicking (one given
//! to `collect_str`, or the message of a `custom` error), and a `Serialize` impl that breaks
//! serde's rules from making invalid JSON.
//!
//! A `Serialize` impl may write a string with [`Serializer::collect_str`], handing over a
//! `Display` (chrono's dates, `fmt::Arguments`, `serde_with`'s `DisplayFromStr`, ...).
//! serde_json's `collect_str` formats it straight into its output and, when formatting
//! returns `fmt::Error`, takes the error to come from its writer: it `expect`s the I/O error
//! it recorded, and panics when there is none, that is when the `Display` impl itself
//! failed. (Its map-key serializer forwards to the same code.)
//!
//! [`Guarded`] is a value that serializes the value it wraps through a [`Guard`] around
//! whatever serializer it is given. A `Guard` forwards every call to the serializer it wraps
//! and only changes `collect_str`: the `Display` is handed on inside a [`Checked`] that
//! formats it through a writer noting whether the *output* failed. A failure the output did
//! not cause is the `Display`'s own: `Checked` ends the string with what the `Display` wrote
//! so far, reporting success — the rule for a failing `Display` everywhere else in a record
//! (a `%x` field, an error's reason). A failure of the output is passed on unchanged, so
//! serde_json still finds (and returns) the I/O error it recorded.
//!
//! The other way a `Display` reaches serde_json is an error: a `Serialize` impl that fails
//! with `Err(S::Error::custom(msg))`. serde_json's `custom` is `msg.to_string()`, which
//! panics when `msg`'s `Display` fails on its own. So a `Guard`'s error type is its own,
//! [`GuardError`], wrapping the wrapped serializer's: its `custom` writes `msg` into a
//! `String` with `write!` (what the `Display` wrote so far, if it fails) and hands that text
//! to the wrapped error's `custom`. Every forwarded call wraps the error it returns, and a
//! `Guarded` unwraps it, so the error serde_json returns (rendered as
//! `"<serialize error: ...>"` by [`SerdeValue`](super::SerdeValue)) is serde_json's own, with
//! that text as its message. Only the failing path allocates (the text, as serde_json's own
//! `custom` does); wrapping and unwrapping are moves of the same error value.
//!
//! Why a wrapper around every serializer, and not only the top one: serde_json serializes
//! the elements, fields, map keys and values of a compound value with serializers of its own
//! (`&mut Serializer`, its private map-key serializer, ...), which a `Serialize` impl reaches
//! without passing through the top serializer again. So the compound serializers a `Guard`
//! returns (`SerializeSeq`, `SerializeMap`, `SerializeStruct`, ...) are `Guard`s too, and
//! hand each element, key and value on as a `Guarded`: whatever serializer serde_json then
//! gives it is wrapped in turn, and a `collect_str` at any depth is guarded. The wrapping is
//! generic over the wrapped serializer, so serde_json's special cases (a `RawValue`, whose
//! struct name it recognises; map keys that must be strings) are untouched: their calls
//! arrive as they would without the guard, and their errors leave as they did. Nothing is
//! allocated (but the first error's text, on a failing path), and a value that never calls
//! `collect_str` goes through the same serde_json code as before, only through (inlined)
//! forwarding calls.
//!
//! The guards also keep a value's JSON whole when its `Serialize` impl breaks serde's rules,
//! which serde_json does not check. Every error any part of the value returns is noted in
//! the value's [`Trail`] (the first one's text): an impl that ignores the error of a part
//! (`let _ = seq.serialize_element(..)`) and goes on leaves that part half-written, so the
//! value as a whole failed even if the impl returns `Ok` — [`SerdeValue`](super::SerdeValue)
//! writes the first error instead. And a map's guard refuses keys and values out of turn (a
//! second key before the first one's value, a value without a key, an end after a key),
//! which serde_json would write as they come (`{"a","b":1}`, `{:1}`, `{"a"}`).
//!
//! The alternatives are worse: formatting the `Display` into a buffer first allocates (and a
//! generic `Guard` could not write to the output directly), formatting it twice to check it
//! first runs a `Display` with side effects twice (and one that fails only the second time
//! still panics), and `catch_unwind` would leave a half-written value in the record.

use std::cell::Cell;
use std::fmt::{self, Display};

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// A value serialized through a [`Guard`] around the serializer it is given, noting its
/// errors in `trail`.
pub(crate) struct Guarded<'a, T: ?Sized> {
    value: &'a T,
    trail: &'a Trail,
}

impl<'a, T: ?Sized> Guarded<'a, T> {
    /// `value`, to serialize guarded, its errors noted in `trail`.
    #[inline]
    pub(crate) fn new(value: &'a T, trail: &'a Trail) -> Self {
        Guarded { value, trail }
    }
}

impl<T: Serialize + ?Sized> Serialize for Guarded<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value.serialize(Guard::new(serializer, self.trail)) {
            Ok(ok) => Ok(ok),
            // An error the value's own impl made (`custom`): noted too.
            Err(GuardError(e)) => Err(self.trail.noted(e)),
        }
    }
}

/// The first error of one guarded serialization, from whichever part of the value it came
/// (see the module docs): shared by all the [`Guard`]s of one value.
#[derive(Default)]
pub(crate) struct Trail {
    first: Cell<Option<String>>,
}

impl Trail {
    /// The text of the first error noted, if any.
    pub(crate) fn first_error(self) -> Option<String> {
        self.first.into_inner()
    }

    /// Notes `e` if it is the first error, and hands it back.
    #[cold]
    fn noted<E: Display>(&self, e: E) -> E {
        let first = self.first.take();
        self.first
            .set(first.or_else(|| Some(text(format_args!("{e}")))));
        e
    }

    /// `r` with its error noted and wrapped.
    #[inline(always)]
    fn check<T, E: Display>(&self, r: Result<T, E>) -> Result<T, GuardError<E>> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(GuardError(self.noted(e))),
        }
    }

    /// [`check`](Self::check) for a compound serializer, wrapped in its turn.
    #[inline(always)]
    fn compound<S, E: Display>(&self, r: Result<S, E>) -> Result<Guard<'_, S>, GuardError<E>> {
        self.check(r).map(|inner| Guard::new(inner, self))
    }

    /// An error of this guard's own (a map's keys and values out of turn), noted.
    #[cold]
    fn refuse<T, E: ser::Error>(&self, what: &str) -> Result<T, GuardError<E>> {
        Err(GuardError(self.noted(E::custom(what))))
    }
}

/// A serializer (or compound serializer) forwarding to the one it wraps, but for
/// `collect_str`, whose `Display` cannot make it panic, for its error type, whose `custom`
/// cannot either, and for the errors it notes in its [`Trail`] (see the module docs). A map's
/// guard also checks that keys and values take turns.
pub(crate) struct Guard<'t, S> {
    inner: S,
    trail: &'t Trail,
    /// For a map: a key was written, its value not yet.
    key_pending: bool,
}

impl<'t, S> Guard<'t, S> {
    #[inline(always)]
    fn new(inner: S, trail: &'t Trail) -> Self {
        Guard {
            inner,
            trail,
            key_pending: false,
        }
    }
}

/// The error of a [`Guard`]: the wrapped serializer's error, made by [`custom`] from the
/// text the message's `Display` wrote (so far, if it failed) rather than from the message.
///
/// [`custom`]: serde::ser::Error::custom
pub(crate) struct GuardError<E>(E);

impl<E: ser::Error> ser::Error for GuardError<E> {
    #[cold]
    fn custom<T: Display>(msg: T) -> Self {
        // serde_json's `custom` is `msg.to_string()`, which panics when the `Display` fails
        // on its own. Written into a `String` (whose writes never fail) with `write!`
        // instead: a failure is the `Display`'s, and the text is what it wrote so far, as
        // for a `%x` field or a `collect_str`. The wrapped error gets that text, whose
        // `Display` (a `String`'s) cannot fail.
        let mut text = String::new();
        let _ = fmt::write(&mut text, format_args!("{msg}"));
        GuardError(E::custom(text))
    }
}

impl<E: Display> Display for GuardError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: fmt::Debug> fmt::Debug for GuardError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error> std::error::Error for GuardError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A `Display` whose own failure ends its output with what it wrote so far, as a success; a
/// failure of the output it writes to is still returned.
///
/// Also what the writer formats a sink's error with (a user's `io::Error` may wrap an error
/// whose `Display` fails): see [`text`].
pub(crate) struct Checked<'a, T: ?Sized>(pub(crate) &'a T);

/// `args` written into a new `String`: what they wrote so far if a `Display` in them fails
/// on its own, where `format!` and `to_string` panic. Use it, with [`Checked`] around a value
/// of the user's, to format text off the hot path (errors, metrics).
#[cold]
pub(crate) fn text(args: fmt::Arguments<'_>) -> String {
    let mut s = String::new();
    // Writes into a `String` never fail: an error is a `Display`'s own.
    let _ = fmt::write(&mut s, args);
    s
}

impl<T: Display + ?Sized> Display for Checked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Writes to the formatter, noting whether a write failed.
        struct Noting<'a, 'b> {
            f: &'a mut fmt::Formatter<'b>,
            failed: bool,
        }
        impl fmt::Write for Noting<'_, '_> {
            #[inline]
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let r = self.f.write_str(s);
                self.failed |= r.is_err();
                r
            }
        }
        let mut out = Noting { f, failed: false };
        // `{}` without flags: what serde_json's `collect_str` itself formats.
        match fmt::write(&mut out, format_args!("{}", self.0)) {
            Err(fmt::Error) if !out.failed => Ok(()),
            r => r,
        }
    }
}

impl<'t, S: Serializer> Serializer for Guard<'t, S> {
    type Ok = S::Ok;
    type Error = GuardError<S::Error>;
    type SerializeSeq = Guard<'t, S::SerializeSeq>;
    type SerializeTuple = Guard<'t, S::SerializeTuple>;
    type SerializeTupleStruct = Guard<'t, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Guard<'t, S::SerializeTupleVariant>;
    type SerializeMap = Guard<'t, S::SerializeMap>;
    type SerializeStruct = Guard<'t, S::SerializeStruct>;
    type SerializeStructVariant = Guard<'t, S::SerializeStructVariant>;

    #[inline]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.collect_str(&Checked(value)))
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_bool(v))
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_i8(v))
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_i16(v))
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_i32(v))
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_i64(v))
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_i128(v))
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_u8(v))
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_u16(v))
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_u32(v))
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_u64(v))
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_u128(v))
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_f32(v))
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_f64(v))
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_char(v))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_str(v))
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_bytes(v))
    }
    #[inline]
    fn serialize_none(self) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_none())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, Self::Error> {
        self.trail
            .check(self.inner.serialize_some(&Guarded::new(value, self.trail)))
    }
    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_unit())
    }
    #[inline]
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_unit_struct(name))
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, Self::Error> {
        self.trail.check(
            self.inner
                .serialize_unit_variant(name, variant_index, variant),
        )
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, Self::Error> {
        self.trail.check(
            self.inner
                .serialize_newtype_struct(name, &Guarded::new(value, self.trail)),
        )
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, Self::Error> {
        self.trail.check(self.inner.serialize_newtype_variant(
            name,
            variant_index,
            variant,
            &Guarded::new(value, self.trail),
        ))
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        self.trail.compound(self.inner.serialize_seq(len))
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        self.trail.compound(self.inner.serialize_tuple(len))
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        self.trail
            .compound(self.inner.serialize_tuple_struct(name, len))
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        self.trail.compound(
            self.inner
                .serialize_tuple_variant(name, variant_index, variant, len),
        )
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        self.trail.compound(self.inner.serialize_map(len))
    }
    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        self.trail.compound(self.inner.serialize_struct(name, len))
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        self.trail.compound(
            self.inner
                .serialize_struct_variant(name, variant_index, variant, len),
        )
    }
}

/// The compound serializers whose methods take one value each (`method`), or a field name
/// and a value (`keyed`): forwarded with the value guarded, the error wrapped.
macro_rules! forward_compound {
    ($($trait:ident: $method:ident),* $(,)?) => {$(
        impl<S: $trait> $trait for Guard<'_, S> {
            type Ok = S::Ok;
            type Error = GuardError<S::Error>;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
                self.trail.check(self.inner.$method(&Guarded::new(value, self.trail)))
            }
            #[inline]
            fn end(self) -> Result<S::Ok, Self::Error> {
                self.trail.check(self.inner.end())
            }
        }
    )*};
    (keyed $($trait:ident),* $(,)?) => {$(
        impl<S: $trait> $trait for Guard<'_, S> {
            type Ok = S::Ok;
            type Error = GuardError<S::Error>;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Self::Error> {
                self.trail.check(self.inner.serialize_field(key, &Guarded::new(value, self.trail)))
            }
            #[inline]
            fn skip_field(&mut self, key: &'static str) -> Result<(), Self::Error> {
                self.trail.check(self.inner.skip_field(key))
            }
            #[inline]
            fn end(self) -> Result<S::Ok, Self::Error> {
                self.trail.check(self.inner.end())
            }
        }
    )*};
}

forward_compound!(
    SerializeSeq: serialize_element,
    SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field,
    SerializeTupleVariant: serialize_field,
);
forward_compound!(keyed SerializeStruct, SerializeStructVariant);

/// What a map's guard says when keys and values do not take turns (serde_json writes them as
/// it is asked: `{"a","b":1}`, `{:1}`, `{"a"}`).
const KEY_AFTER_KEY: &str = "a map key came before the value of the key before it";
const VALUE_WITHOUT_KEY: &str = "a map value came without a key";
const END_AFTER_KEY: &str = "a map ended after a key without its value";

impl<S: SerializeMap> SerializeMap for Guard<'_, S> {
    type Ok = S::Ok;
    type Error = GuardError<S::Error>;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        if self.key_pending {
            return self.trail.refuse(KEY_AFTER_KEY);
        }
        self.key_pending = true;
        self.trail
            .check(self.inner.serialize_key(&Guarded::new(key, self.trail)))
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        if !self.key_pending {
            return self.trail.refuse(VALUE_WITHOUT_KEY);
        }
        self.key_pending = false;
        self.trail
            .check(self.inner.serialize_value(&Guarded::new(value, self.trail)))
    }
    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Self::Error> {
        if self.key_pending {
            return self.trail.refuse(KEY_AFTER_KEY);
        }
        self.trail.check(self.inner.serialize_entry(
            &Guarded::new(key, self.trail),
            &Guarded::new(value, self.trail),
        ))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, Self::Error> {
        if self.key_pending {
            return self.trail.refuse(END_AFTER_KEY);
        }
        self.trail.check(self.inner.end())
    }
}
