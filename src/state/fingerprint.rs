//! Value fingerprints: a 64-bit hash of a value's serde data-model *trace*, stored beside the
//! value so that reading it with another type is an error instead of a wrong value.
//!
//! Postcard is not self-describing: `100i32` read as `usize` gives `200`, `"ab"` read as
//! `Vec<u8>` gives `[97, 98]`. The trace records the *kind* of every serde call a value makes
//! (never the data): `i32`, `str`, `some`, `struct Point { x, y }`, `enum E::B`, … On insert a
//! tracing [`Serializer`](serde::Serializer) that writes nothing hashes the calls the
//! `Serialize` impl makes; on get a [`Deserializer`](serde::Deserializer) wrapped around
//! postcard's hashes the calls the `Deserialize` impl asks for (and the enum variants and
//! option tags it reads), and the two hashes must match. docs/FORMAT.md §6.1 specifies the
//! trace byte for byte; this file is its reference implementation.
//!
//! Nothing here allocates: the hash is updated in place (FNV-1a, 64 bits) as calls are made.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::ser::{self, Serialize, Serializer};

/// Trace tokens (docs/FORMAT.md §6.1). Each serde call contributes its token byte, then its
/// names (varint length ‖ UTF-8) and lengths (varint) where listed.
pub(crate) mod token {
    pub const BOOL: u8 = 0x01;
    pub const I8: u8 = 0x02;
    pub const I16: u8 = 0x03;
    pub const I32: u8 = 0x04;
    pub const I64: u8 = 0x05;
    pub const I128: u8 = 0x06;
    pub const U8: u8 = 0x07;
    pub const U16: u8 = 0x08;
    pub const U32: u8 = 0x09;
    pub const U64: u8 = 0x0a;
    pub const U128: u8 = 0x0b;
    pub const F32: u8 = 0x0c;
    pub const F64: u8 = 0x0d;
    pub const CHAR: u8 = 0x0e;
    /// `str` and `string`.
    pub const STR: u8 = 0x0f;
    /// `bytes` and `byte_buf`.
    pub const BYTES: u8 = 0x10;
    pub const NONE: u8 = 0x11;
    /// Followed by the inner value.
    pub const SOME: u8 = 0x12;
    pub const UNIT: u8 = 0x13;
    /// name
    pub const UNIT_STRUCT: u8 = 0x14;
    /// name, then the inner value.
    pub const NEWTYPE_STRUCT: u8 = 0x15;
    /// Then every element, then [`END`].
    pub const SEQ: u8 = 0x16;
    /// Closes a `SEQ` or a `MAP`.
    pub const END: u8 = 0x17;
    /// len, then `len` elements.
    pub const TUPLE: u8 = 0x18;
    /// name, len, then `len` elements.
    pub const TUPLE_STRUCT: u8 = 0x19;
    /// Then key, value, key, value, …, then [`END`].
    pub const MAP: u8 = 0x1a;
    /// name, number of fields, then for each field: its name, then its value.
    pub const STRUCT: u8 = 0x1b;
    /// enum name, variant name, then one of the four variant kinds below.
    pub const ENUM: u8 = 0x1c;
    pub const UNIT_VARIANT: u8 = 0x1d;
    /// Then the inner value.
    pub const NEWTYPE_VARIANT: u8 = 0x1e;
    /// len, then `len` elements.
    pub const TUPLE_VARIANT: u8 = 0x1f;
    /// number of fields, then for each field: its name, then its value.
    pub const STRUCT_VARIANT: u8 = 0x20;
    /// In place of a variant name when the index read is not among the reader's variants
    /// (the `Deserialize` impl rejects it anyway); followed by the index as a varint.
    pub const UNKNOWN_VARIANT: u8 = 0x21;
}

/// FNV-1a, 64 bits, fed the trace bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hasher(u64);

impl Hasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) const fn new() -> Self {
        Hasher(Self::OFFSET)
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
    }

    #[inline]
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.byte((n as u8) | 0x80);
            n >>= 7;
        }
        self.byte(n as u8);
    }

    #[inline]
    fn count(&mut self, n: usize) {
        self.varint(n as u64);
    }

    #[inline]
    fn name(&mut self, s: &str) {
        self.count(s.len());
        for &b in s.as_bytes() {
            self.byte(b);
        }
    }

    #[inline]
    fn token_name(&mut self, token: u8, name: &str) {
        self.byte(token);
        self.name(name);
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// The fingerprint of `value`: the hash of its trace. Fails only where postcard would fail
/// too (a sequence or map of unknown length, or the value's own `Serialize` error).
pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Result<u64, postcard::Error> {
    let mut h = Hasher::new();
    value
        .serialize(Tracer(&mut h))
        .map_err(|_| postcard::Error::SerdeSerCustom)?;
    Ok(h.finish())
}

/// Decodes `bytes` as a `T` with postcard, refusing trailing bytes, and checks that the
/// trace of the read equals `expected`.
pub(crate) fn decode_checked<T: de::DeserializeOwned>(
    bytes: &[u8],
    expected: u64,
) -> Result<T, postcard::Error> {
    let mut h = Hasher::new();
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let value = T::deserialize(De {
        inner: &mut de,
        h: &mut h,
    })?;
    if !de.finalize()?.is_empty() || h.finish() != expected {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// The write side: a serializer that writes nothing and hashes the calls.

/// What the tracer reports on failure: only that it failed (never the value).
#[derive(Debug)]
pub(crate) struct TraceError;

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value cannot be traced")
    }
}

impl std::error::Error for TraceError {}

impl ser::Error for TraceError {
    fn custom<M: fmt::Display>(_: M) -> Self {
        TraceError
    }
}

struct Tracer<'h>(&'h mut Hasher);

macro_rules! trace_primitive {
    ($($method:ident: $ty:ty => $token:ident),* $(,)?) => {
        $(
            #[inline]
            fn $method(self, _: $ty) -> Result<(), TraceError> {
                self.0.byte(token::$token);
                Ok(())
            }
        )*
    };
}

impl<'h> Serializer for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    trace_primitive! {
        serialize_bool: bool => BOOL,
        serialize_i8: i8 => I8,
        serialize_i16: i16 => I16,
        serialize_i32: i32 => I32,
        serialize_i64: i64 => I64,
        serialize_i128: i128 => I128,
        serialize_u8: u8 => U8,
        serialize_u16: u16 => U16,
        serialize_u32: u32 => U32,
        serialize_u64: u64 => U64,
        serialize_u128: u128 => U128,
        serialize_f32: f32 => F32,
        serialize_f64: f64 => F64,
        serialize_char: char => CHAR,
        serialize_str: &str => STR,
        serialize_bytes: &[u8] => BYTES,
    }

    fn serialize_none(self) -> Result<(), TraceError> {
        self.0.byte(token::NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), TraceError> {
        self.0.byte(token::SOME);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), TraceError> {
        self.0.byte(token::UNIT);
        Ok(())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), TraceError> {
        self.0.token_name(token::UNIT_STRUCT, name);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), TraceError> {
        self.0.token_name(token::ENUM, name);
        self.0.name(variant);
        self.0.byte(token::UNIT_VARIANT);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), TraceError> {
        self.0.token_name(token::NEWTYPE_STRUCT, name);
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), TraceError> {
        self.0.token_name(token::ENUM, name);
        self.0.name(variant);
        self.0.byte(token::NEWTYPE_VARIANT);
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self, TraceError> {
        // Postcard refuses sequences of unknown length: so does the trace.
        len.ok_or(TraceError)?;
        self.0.byte(token::SEQ);
        Ok(self)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self, TraceError> {
        self.0.byte(token::TUPLE);
        self.0.count(len);
        Ok(self)
    }

    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self, TraceError> {
        self.0.token_name(token::TUPLE_STRUCT, name);
        self.0.count(len);
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, TraceError> {
        self.0.token_name(token::ENUM, name);
        self.0.name(variant);
        self.0.byte(token::TUPLE_VARIANT);
        self.0.count(len);
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self, TraceError> {
        len.ok_or(TraceError)?;
        self.0.byte(token::MAP);
        Ok(self)
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self, TraceError> {
        self.0.token_name(token::STRUCT, name);
        self.0.count(len);
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, TraceError> {
        self.0.token_name(token::ENUM, name);
        self.0.name(variant);
        self.0.byte(token::STRUCT_VARIANT);
        self.0.count(len);
        Ok(self)
    }

    /// Only the kind counts: no formatting, no allocation.
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), TraceError> {
        self.0.byte(token::STR);
        Ok(())
    }

    /// As postcard's: types that serialize differently for humans take their compact form.
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl<'h> ser::SerializeSeq for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        self.0.byte(token::END);
        Ok(())
    }
}

impl<'h> ser::SerializeTuple for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        Ok(())
    }
}

impl<'h> ser::SerializeTupleStruct for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        Ok(())
    }
}

impl<'h> ser::SerializeTupleVariant for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        Ok(())
    }
}

impl<'h> ser::SerializeMap for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TraceError> {
        key.serialize(Tracer(&mut *self.0))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TraceError> {
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        self.0.byte(token::END);
        Ok(())
    }
}

impl<'h> ser::SerializeStruct for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TraceError> {
        self.0.name(key);
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        Ok(())
    }
}

impl<'h> ser::SerializeStructVariant for Tracer<'h> {
    type Ok = ();
    type Error = TraceError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TraceError> {
        self.0.name(key);
        value.serialize(Tracer(&mut *self.0))
    }
    fn end(self) -> Result<(), TraceError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The read side: postcard's deserializer, wrapped so that every call the `Deserialize` impl
// makes (and every nested one, through wrapped visitors, seeds and accesses) is hashed.

/// A deserializer that hashes each hint before handing it to `inner`.
struct De<'h, D> {
    inner: D,
    h: &'h mut Hasher,
}

/// How a wrapped visitor wraps the sequence or enum it is handed.
#[derive(Clone, Copy)]
enum Ctx {
    /// Nothing to add (primitives; tuples, whose length is in the trace already).
    Plain,
    /// A `seq` or a `map`: `END` when the deserializer reports no more elements.
    Open,
    /// A struct: each element is preceded by its field name.
    Fields(&'static [&'static str]),
    /// An enum: the variant index read is hashed as the variant's name.
    Variants(&'static [&'static str]),
}

macro_rules! hint_primitive {
    ($($method:ident => $token:ident),* $(,)?) => {
        $(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.h.byte(token::$token);
                self.inner.$method(Vis::plain(visitor, self.h))
            }
        )*
    };
}

impl<'de, 'h, D: Deserializer<'de>> Deserializer<'de> for De<'h, D> {
    type Error = D::Error;

    /// Postcard refuses it; passed through so the error is postcard's.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(Vis::plain(visitor, self.h))
    }

    hint_primitive! {
        deserialize_bool => BOOL,
        deserialize_i8 => I8,
        deserialize_i16 => I16,
        deserialize_i32 => I32,
        deserialize_i64 => I64,
        deserialize_i128 => I128,
        deserialize_u8 => U8,
        deserialize_u16 => U16,
        deserialize_u32 => U32,
        deserialize_u64 => U64,
        deserialize_u128 => U128,
        deserialize_f32 => F32,
        deserialize_f64 => F64,
        deserialize_char => CHAR,
        deserialize_str => STR,
        deserialize_string => STR,
        deserialize_bytes => BYTES,
        deserialize_byte_buf => BYTES,
        deserialize_unit => UNIT,
    }

    /// `NONE` or `SOME` is hashed by the visitor, from the tag postcard reads.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_option(Vis::plain(visitor, self.h))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.token_name(token::UNIT_STRUCT, name);
        self.inner
            .deserialize_unit_struct(name, Vis::plain(visitor, self.h))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.token_name(token::NEWTYPE_STRUCT, name);
        self.inner
            .deserialize_newtype_struct(name, Vis::plain(visitor, self.h))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.h.byte(token::SEQ);
        self.inner
            .deserialize_seq(Vis::new(visitor, self.h, Ctx::Open))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.byte(token::TUPLE);
        self.h.count(len);
        self.inner
            .deserialize_tuple(len, Vis::plain(visitor, self.h))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.token_name(token::TUPLE_STRUCT, name);
        self.h.count(len);
        self.inner
            .deserialize_tuple_struct(name, len, Vis::plain(visitor, self.h))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.h.byte(token::MAP);
        self.inner
            .deserialize_map(Vis::new(visitor, self.h, Ctx::Open))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.token_name(token::STRUCT, name);
        self.h.count(fields.len());
        self.inner
            .deserialize_struct(name, fields, Vis::new(visitor, self.h, Ctx::Fields(fields)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.h.token_name(token::ENUM, name);
        self.inner.deserialize_enum(
            name,
            variants,
            Vis::new(visitor, self.h, Ctx::Variants(variants)),
        )
    }

    /// Postcard refuses it; passed through so the error is postcard's.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_identifier(Vis::plain(visitor, self.h))
    }

    /// Postcard refuses it; passed through so the error is postcard's.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_ignored_any(Vis::plain(visitor, self.h))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that forwards everything to `inner`, wrapping what it is handed to go on
/// deserializing (an option's or newtype's content, a sequence, a map, an enum).
struct Vis<'h, V> {
    inner: V,
    h: &'h mut Hasher,
    ctx: Ctx,
}

impl<'h, V> Vis<'h, V> {
    fn new(inner: V, h: &'h mut Hasher, ctx: Ctx) -> Self {
        Vis { inner, h, ctx }
    }

    fn plain(inner: V, h: &'h mut Hasher) -> Self {
        Vis::new(inner, h, Ctx::Plain)
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(
            #[inline]
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, 'h, V: Visitor<'de>> Visitor<'de> for Vis<'h, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char,
        visit_str: &str,
        visit_borrowed_str: &'de str,
        visit_string: String,
        visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8],
        visit_byte_buf: Vec<u8>,
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.h.byte(token::NONE);
        self.inner.visit_none()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.h.byte(token::SOME);
        self.inner.visit_some(De {
            inner: d,
            h: self.h,
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_newtype_struct(De {
            inner: d,
            h: self.h,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Seq {
            inner: seq,
            h: self.h,
            ctx: self.ctx,
            index: 0,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Map {
            inner: map,
            h: self.h,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let variants = match self.ctx {
            Ctx::Variants(variants) => variants,
            _ => &[],
        };
        self.inner.visit_enum(Enum {
            inner: data,
            h: self.h,
            variants,
        })
    }
}

/// A seed whose value is deserialized through [`De`], after an optional field name.
struct Seed<'h, S> {
    inner: S,
    h: &'h mut Hasher,
    field: Option<&'static str>,
}

impl<'de, 'h, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'h, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        if let Some(field) = self.field {
            self.h.name(field);
        }
        self.inner.deserialize(De {
            inner: d,
            h: self.h,
        })
    }
}

struct Seq<'h, A> {
    inner: A,
    h: &'h mut Hasher,
    ctx: Ctx,
    index: usize,
}

impl<'de, 'h, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Seq<'h, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let field = match self.ctx {
            // Postcard reads exactly `fields.len()` elements; past them the name is absent
            // and the read fails or the trace differs.
            Ctx::Fields(fields) => Some(fields.get(self.index).copied().unwrap_or("")),
            _ => None,
        };
        self.index = self.index.saturating_add(1);
        let next = self.inner.next_element_seed(Seed {
            inner: seed,
            h: &mut *self.h,
            field,
        })?;
        if next.is_none() && matches!(self.ctx, Ctx::Open) {
            self.h.byte(token::END);
        }
        Ok(next)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct Map<'h, A> {
    inner: A,
    h: &'h mut Hasher,
}

impl<'de, 'h, A: de::MapAccess<'de>> de::MapAccess<'de> for Map<'h, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let next = self.inner.next_key_seed(Seed {
            inner: seed,
            h: &mut *self.h,
            field: None,
        })?;
        if next.is_none() {
            self.h.byte(token::END);
        }
        Ok(next)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(Seed {
            inner: seed,
            h: &mut *self.h,
            field: None,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct Enum<'h, A> {
    inner: A,
    h: &'h mut Hasher,
    variants: &'static [&'static str],
}

impl<'de, 'h, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Enum<'h, A> {
    type Error = A::Error;
    type Variant = Variant<'h, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(VariantSeed {
            inner: seed,
            h: &mut *self.h,
            variants: self.variants,
        })?;
        Ok((
            value,
            Variant {
                inner: variant,
                h: self.h,
            },
        ))
    }
}

/// The seed for a variant identifier: the index postcard reads is hashed as the name the
/// reader gives it, `variants[index]`.
struct VariantSeed<'h, S> {
    inner: S,
    h: &'h mut Hasher,
    variants: &'static [&'static str],
}

impl<'de, 'h, S: DeserializeSeed<'de>> DeserializeSeed<'de> for VariantSeed<'h, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Ident {
            inner: d,
            h: self.h,
            variants: self.variants,
        })
    }
}

/// Postcard hands variant identifiers over as a `u32` deserializer, which answers every
/// request with `visit_u32`: so every request goes to `deserialize_any`.
struct Ident<'h, D> {
    inner: D,
    h: &'h mut Hasher,
    variants: &'static [&'static str],
}

impl<'de, 'h, D: Deserializer<'de>> Deserializer<'de> for Ident<'h, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(IdentVis {
            inner: visitor,
            h: self.h,
            variants: self.variants,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct IdentVis<'h, V> {
    inner: V,
    h: &'h mut Hasher,
    variants: &'static [&'static str],
}

impl<'h, V> IdentVis<'h, V> {
    fn index(&mut self, index: u64) {
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.variants.get(i))
        {
            Some(name) => self.h.name(name),
            None => {
                self.h.byte(token::UNKNOWN_VARIANT);
                self.h.varint(index);
            }
        }
    }
}

impl<'de, 'h, V: Visitor<'de>> Visitor<'de> for IdentVis<'h, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_u32<E: de::Error>(mut self, v: u32) -> Result<V::Value, E> {
        self.index(u64::from(v));
        self.inner.visit_u32(v)
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<V::Value, E> {
        self.index(v);
        self.inner.visit_u64(v)
    }

    /// Not postcard's way, but a deserializer naming the variant is hashed the same.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.h.name(v);
        self.inner.visit_str(v)
    }
}

struct Variant<'h, A> {
    inner: A,
    h: &'h mut Hasher,
}

impl<'de, 'h, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Variant<'h, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.h.byte(token::UNIT_VARIANT);
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.h.byte(token::NEWTYPE_VARIANT);
        self.inner.newtype_variant_seed(Seed {
            inner: seed,
            h: self.h,
            field: None,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.h.byte(token::TUPLE_VARIANT);
        self.h.count(len);
        self.inner.tuple_variant(len, Vis::plain(visitor, self.h))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.h.byte(token::STRUCT_VARIANT);
        self.h.count(fields.len());
        self.inner
            .struct_variant(fields, Vis::new(visitor, self.h, Ctx::Fields(fields)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use serde_bytes::ByteBuf;

    use super::*;

    /// `a` written, read back as `B` through the fingerprint check.
    fn read_as<A: Serialize + ?Sized, B: de::DeserializeOwned>(
        a: &A,
    ) -> Result<B, postcard::Error> {
        let bytes = postcard::to_allocvec(a).unwrap();
        decode_checked(&bytes, of(a).unwrap())
    }

    fn misread<A: Serialize + ?Sized, B: de::DeserializeOwned>(a: &A) -> bool {
        read_as::<A, B>(a).is_err()
    }

    /// The examples of docs/FORMAT.md §6.1, computed there from the trace bytes by FNV-1a
    /// (independently of this code, with a few lines of Python).
    #[test]
    fn s2_fingerprints_match_the_format_examples() {
        #[derive(Serialize)]
        struct Point {
            x: i32,
            y: i32,
        }
        #[derive(Serialize)]
        enum Role {
            #[allow(dead_code)]
            Guest,
            Member(u32),
        }
        assert_eq!(of(&100i32).unwrap(), 0xaf63_b94c_8601_b113);
        assert_eq!(of("alice").unwrap(), 0xaf63_c24c_8601_c05e);
        assert_eq!(of(&String::from("alice")).unwrap(), of("alice").unwrap());
        assert_eq!(of(&Some(5u32)).unwrap(), 0x086f_bb07_b51f_74b4);
        assert_eq!(of(&vec![1u8, 2]).unwrap(), 0x3834_60f4_6d4e_dfa0);
        assert_eq!(of(&Point { x: 1, y: 2 }).unwrap(), 0x54e4_ce11_a381_a422);
        assert_eq!(of(&Role::Member(5)).unwrap(), 0x0718_7a5e_3dbc_e06a);
    }

    #[test]
    fn s2_unit_integer_width_and_signedness() {
        assert_eq!(read_as::<_, i32>(&100i32).unwrap(), 100);
        assert!(misread::<_, usize>(&100i32));
        assert!(misread::<_, u32>(&-1i32));
        assert!(misread::<_, i64>(&7u32));
        assert!(misread::<_, u8>(&true));
        assert!(misread::<_, bool>(&1u8));
        assert!(misread::<_, u128>(&1u64));
        assert!(misread::<_, f64>(&1.0f32));
    }

    #[test]
    fn s2_unit_string_bytes_and_byte_slices() {
        assert_eq!(read_as::<_, String>("ab").unwrap(), "ab");
        assert!(misread::<_, Vec<u8>>("ab"));
        assert!(misread::<_, ByteBuf>("ab"));
        let slice = serde_bytes::Bytes::new(b"ab");
        assert_eq!(read_as::<_, ByteBuf>(slice).unwrap(), b"ab".to_vec());
        assert!(misread::<_, String>(slice));
        assert!(misread::<_, Vec<u8>>(slice));
        assert!(misread::<_, ByteBuf>(&vec![1u8]));
        assert!(misread::<_, String>(&'a'));
    }

    #[test]
    fn s2_unit_option() {
        assert_eq!(read_as::<_, Option<u32>>(&Some(5u32)).unwrap(), Some(5));
        assert!(misread::<_, u32>(&Some(5u32)));
        assert!(misread::<_, u32>(&None::<u32>));
        assert!(misread::<_, Option<u32>>(&5u32));
        assert!(misread::<_, Option<i32>>(&Some(5u32)));
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ab {
        a: u8,
        b: u8,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Ab")] // only the fields differ
    struct Ba {
        b: u8,
        a: u8,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Ab")] // only the fields differ
    struct Ac {
        a: u8,
        c: u8,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Ab")] // only the fields differ
    struct Abc {
        a: u8,
        b: u8,
        c: u8,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct TupleAb(u8, u8);

    #[test]
    fn s2_unit_tuples_vs_structs() {
        assert_eq!(
            read_as::<_, Ab>(&Ab { a: 1, b: 2 }).unwrap(),
            Ab { a: 1, b: 2 }
        );
        assert!(misread::<_, (u8, u8)>(&Ab { a: 1, b: 2 }));
        assert!(misread::<_, TupleAb>(&Ab { a: 1, b: 2 }));
        assert!(misread::<_, Ab>(&(1u8, 2u8)));
        assert!(misread::<_, TupleAb>(&(1u8, 2u8)));
        assert_eq!(read_as::<_, (u8, u8)>(&[1u8, 2]).unwrap(), (1, 2));
    }

    #[test]
    fn s2_unit_struct_field_names_and_order() {
        let v = vec![Ab { a: 1, b: 2 }, Ab { a: 3, b: 4 }];
        assert!(misread::<_, Vec<Ba>>(&v));
        assert!(misread::<_, Vec<Ac>>(&v));
        assert!(misread::<_, Vec<Abc>>(&v));
        assert!(misread::<_, Vec<Abc>>(&[
            Ab { a: 1, b: 2 },
            Ab { a: 3, b: 4 },
            Ab { a: 5, b: 6 }
        ]));
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Abe {
        A,
        B(u8),
        C { x: u8 },
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Abe")] // only the variants differ
    enum Bae {
        B(u8),
        C { x: u8 },
        A,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Abe")] // only the variants differ
    enum Abcd {
        A,
        B(u8),
        C { x: u8 },
        D,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename = "Abe")] // only the variants differ
    enum Shapes {
        A(u8),
        B(u8, u8),
        C(u8),
    }

    #[test]
    fn s2_unit_enum_variant_names_and_order() {
        // Every variant moved: each index now names another variant.
        for v in [Abe::A, Abe::B(1), Abe::C { x: 2 }] {
            assert!(misread::<_, Bae>(&v), "{v:?}");
            assert!(misread::<_, Shapes>(&v), "{v:?}");
            assert_eq!(read_as::<_, Abe>(&v).unwrap(), v);
        }
        assert_eq!(read_as::<_, Abcd>(&Abe::B(1)).unwrap(), Abcd::B(1));
        assert_eq!(
            read_as::<_, Abcd>(&Abe::C { x: 2 }).unwrap(),
            Abcd::C { x: 2 }
        );
        assert!(misread::<_, Abe>(&Abcd::D));
    }

    #[test]
    fn s2_unit_nested_containers() {
        let m: BTreeMap<String, Vec<Option<u16>>> = [("k".to_owned(), vec![Some(1), None])].into();
        assert_eq!(
            read_as::<_, BTreeMap<String, Vec<Option<u16>>>>(&m).unwrap(),
            m
        );
        assert!(misread::<_, BTreeMap<String, Vec<Option<i16>>>>(&m));
        assert!(misread::<_, BTreeMap<ByteBuf, Vec<Option<u16>>>>(&m));
        assert!(misread::<_, Vec<(String, Vec<Option<u16>>)>>(&m));
        assert!(misread::<_, BTreeMap<String, Vec<u16>>>(&m));
    }

    #[test]
    fn s2_unit_trailing_bytes_are_refused() {
        let mut bytes = postcard::to_allocvec(&5u8).unwrap();
        bytes.push(0);
        assert!(decode_checked::<u8>(&bytes, of(&5u8).unwrap()).is_err());
        assert!(decode_checked::<u8>(&bytes[..1], of(&5u8).unwrap()).is_ok());
        assert!(decode_checked::<u8>(&bytes[..1], of(&5u8).unwrap() ^ 1).is_err());
    }

    #[test]
    fn unknown_length_sequences_are_refused_like_postcard() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq as _;
                s.serialize_seq(None)?.end()
            }
        }
        assert!(of(&Unsized).is_err());
        assert!(postcard::to_allocvec(&Unsized).is_err());
    }
}
