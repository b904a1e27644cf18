//! A serializer that keeps a failing `Display` inside a serde value from panicking.
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
//! Why a wrapper around every serializer, and not only the top one: serde_json serializes
//! the elements, fields, map keys and values of a compound value with serializers of its own
//! (`&mut Serializer`, its private map-key serializer, ...), which a `Serialize` impl reaches
//! without passing through the top serializer again. So the compound serializers a `Guard`
//! returns (`SerializeSeq`, `SerializeMap`, `SerializeStruct`, ...) are `Guard`s too, and
//! hand each element, key and value on as a `Guarded`: whatever serializer serde_json then
//! gives it is wrapped in turn, and a `collect_str` at any depth is guarded. The wrapping is
//! generic over the wrapped serializer, so serde_json's special cases (a `RawValue`, whose
//! struct name it recognises; map keys that must be strings) are untouched: their calls
//! arrive as they would without the guard. Nothing is allocated, and a value that never
//! calls `collect_str` goes through the same serde_json code as before, only through
//! (inlined) forwarding calls.
//!
//! The alternatives are worse: formatting the `Display` into a buffer first allocates (and a
//! generic `Guard` could not write to the output directly), formatting it twice to check it
//! first runs a `Display` with side effects twice (and one that fails only the second time
//! still panics), and `catch_unwind` would leave a half-written value in the record.

use std::fmt::{self, Display};

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// A value serialized through a [`Guard`] around the serializer it is given.
pub(crate) struct Guarded<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Serialize + ?Sized> Serialize for Guarded<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Guard(serializer))
    }
}

/// A serializer (or compound serializer) forwarding to the one it wraps, but for
/// `collect_str`, whose `Display` cannot make it panic (see the module docs).
pub(crate) struct Guard<S>(pub(crate) S);

/// A `Display` whose own failure ends its output with what it wrote so far, as a success; a
/// failure of the output it writes to is still returned.
struct Checked<'a, T: ?Sized>(&'a T);

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

impl<S: Serializer> Serializer for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Guard<S::SerializeSeq>;
    type SerializeTuple = Guard<S::SerializeTuple>;
    type SerializeTupleStruct = Guard<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Guard<S::SerializeTupleVariant>;
    type SerializeMap = Guard<S::SerializeMap>;
    type SerializeStruct = Guard<S::SerializeStruct>;
    type SerializeStructVariant = Guard<S::SerializeStructVariant>;

    #[inline]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(&Checked(value))
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.0.serialize_i8(v)
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.0.serialize_i16(v)
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.0.serialize_i32(v)
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.0.serialize_i64(v)
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.0.serialize_i128(v)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.0.serialize_u8(v)
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.0.serialize_u16(v)
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.0.serialize_u32(v)
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.0.serialize_u64(v)
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.0.serialize_u128(v)
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.0.serialize_f32(v)
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.0.serialize_f64(v)
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.serialize_bytes(v)
    }
    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Guarded(value))
    }
    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    #[inline]
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, variant_index, variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Guarded(value))
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, variant_index, variant, &Guarded(value))
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Guard)
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Guard)
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Guard)
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, variant_index, variant, len)
            .map(Guard)
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Guard)
    }
    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Guard)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, variant_index, variant, len)
            .map(Guard)
    }
}

impl<S: SerializeSeq> SerializeSeq for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Guarded(value))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTuple> SerializeTuple for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Guarded(value))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleStruct> SerializeTupleStruct for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&Guarded(value))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleVariant> SerializeTupleVariant for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&Guarded(value))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeMap> SerializeMap for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Guarded(key))
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Guarded(value))
    }
    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(&Guarded(key), &Guarded(value))
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Guarded(value))
    }
    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Guard<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Guarded(value))
    }
    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }
    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}
