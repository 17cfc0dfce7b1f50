//! The payload stage: postcard bytes ⇄ session metadata and (framed) entries.
//!
//! Layout (postcard, see docs/FORMAT.md §5): `schema: u8`, `id: [u8; 16]`, `issued_at`,
//! `expires_at`, `last_seen` (varint seconds since the Unix epoch), then a sequence of entries
//! in strictly ascending key order: `(key: str, value: bytes)` in schema 1,
//! `(key: str, fingerprint: Option<[u8; 8]>, value: bytes)` in schema 2. Schema 3 (issue 11)
//! inserts `validated_at` (varint seconds) after `last_seen` and lays entries out as schema 2,
//! fingerprint or not. Each value is framed by the compression stage. The encoder writes
//! schema 3 only when asked (a revalidation hook is configured), else schema 1 when no entry
//! has a fingerprint, so such sessions stay readable by builds that predate fingerprints.

use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};
use serde_bytes::Bytes;

use crate::error::DecodeError;
use crate::state::{SCHEMA_TYPED, SCHEMA_VALIDATED, SCHEMA_VERSION};

/// A decoded payload borrowing from the plaintext buffer.
#[derive(Debug)]
pub(crate) struct Payload<'a> {
    pub(crate) schema: u8,
    pub(crate) id: [u8; 16],
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
    /// Schema 3 only.
    pub(crate) validated_at: Option<u64>,
    pub(crate) entries: Vec<Entry<'a>>,
}

/// One entry: its key, the value's fingerprint (schema 2 only) and the framed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) key: &'a str,
    /// Little-endian bytes of the value's 64-bit fingerprint (docs/FORMAT.md §6.1).
    pub(crate) fingerprint: Option<[u8; 8]>,
    pub(crate) value: &'a [u8],
}

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut t = s.serialize_tuple(7)?;
        t.serialize_element(&self.schema)?;
        t.serialize_element(&self.id)?;
        t.serialize_element(&self.issued_at)?;
        t.serialize_element(&self.expires_at)?;
        t.serialize_element(&self.last_seen)?;
        match (self.schema, self.validated_at) {
            (SCHEMA_VALIDATED, Some(at)) => t.serialize_element(&at)?,
            (SCHEMA_VALIDATED, None) | (_, Some(_)) => {
                return Err(S::Error::custom(
                    "validated_at does not fit the payload schema",
                ));
            }
            _ => {}
        }
        t.serialize_element(&Entries {
            schema: self.schema,
            entries: &self.entries,
        })?;
        t.end()
    }
}

/// The entry sequence in the layout of `schema`.
struct Entries<'p, 'a> {
    schema: u8,
    entries: &'p [Entry<'a>],
}

impl Serialize for Entries<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut seq = s.serialize_seq(Some(self.entries.len()))?;
        for e in self.entries {
            match self.schema {
                SCHEMA_VERSION if e.fingerprint.is_none() => {
                    seq.serialize_element(&(e.key, Bytes::new(e.value)))?;
                }
                SCHEMA_TYPED | SCHEMA_VALIDATED => {
                    seq.serialize_element(&(e.key, e.fingerprint, Bytes::new(e.value)))?;
                }
                // Never drop a fingerprint silently, nor write an unknown schema.
                _ => return Err(S::Error::custom("entry does not fit the payload schema")),
            }
        }
        seq.end()
    }
}

/// Serializes a payload, appending to `out`: postcard over [`Payload`], the published layout
/// that [`write`] (the sealing path) must reproduce byte for byte; the tests and the fuzz
/// targets check `write` and the parser against it.
#[cfg_attr(not(any(test, feature = "actix")), allow(dead_code))]
pub(crate) fn encode(payload: &Payload<'_>, out: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(payload, out)
}

/// What a payload says besides its entries, for [`write`].
pub(crate) struct Meta {
    pub(crate) schema: u8,
    pub(crate) id: [u8; 16],
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
    /// Schema 3 only.
    pub(crate) validated_at: Option<u64>,
}

/// One entry to [`write`]: its key, fingerprint and raw (unframed) value.
pub(crate) type RawEntry<'a> = (&'a str, Option<[u8; 8]>, &'a [u8]);

/// The sealing path's encoder: writes the payload straight into `out` (after the envelope
/// header), framing each value on the way with `frame` (`compress::deflate`, given a
/// scratch buffer for values that must be compressed before their length is known). No
/// intermediate list of entries or of framed values: the bytes are those [`encode`]
/// (postcard over [`Payload`]) writes, which the tests check.
///
/// Errors as `encode` would refuse the payload: `validated_at` without schema 3 or schema 3
/// without it, or an entry with a fingerprint under schema 1.
pub(crate) fn write<'a>(
    out: &mut Vec<u8>,
    meta: &Meta,
    entries: impl ExactSizeIterator<Item = RawEntry<'a>>,
    mut frame: impl FnMut(&[u8], &mut Vec<u8>),
) -> Result<(), ()> {
    out.push(meta.schema);
    out.extend_from_slice(&meta.id);
    push_varint(out, meta.issued_at);
    push_varint(out, meta.expires_at);
    push_varint(out, meta.last_seen);
    match (meta.schema, meta.validated_at) {
        (SCHEMA_VALIDATED, Some(at)) => push_varint(out, at),
        (SCHEMA_VALIDATED, None) | (_, Some(_)) => return Err(()),
        _ => {}
    }
    push_varint(out, u64::try_from(entries.len()).map_err(|_| ())?);
    for (key, fingerprint, value) in entries {
        push_varint(out, u64::try_from(key.len()).map_err(|_| ())?);
        out.extend_from_slice(key.as_bytes());
        match (meta.schema, fingerprint) {
            (SCHEMA_VERSION, None) => {}
            (SCHEMA_TYPED | SCHEMA_VALIDATED, None) => out.push(0),
            (SCHEMA_TYPED | SCHEMA_VALIDATED, Some(f)) => {
                out.push(1);
                out.extend_from_slice(&f);
            }
            _ => return Err(()),
        }
        // The framed value goes straight after a one-byte length; a length that needs more
        // bytes (128 or more) moves the value along once.
        let at = out.len();
        out.push(0);
        frame(value, out);
        let start = at.saturating_add(1);
        let len = out.len().saturating_sub(start);
        let len = u64::try_from(len).map_err(|_| ())?;
        if len < 0x80 {
            *out.get_mut(at).ok_or(())? = low_bits(len);
        } else {
            let mut prefix = Vec::with_capacity(10);
            push_varint(&mut prefix, len);
            out.splice(at..start, prefix);
        }
    }
    Ok(())
}

/// postcard's varint: LEB128, least significant group first.
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(low_bits(n) | 0x80);
        n = n.wrapping_shr(7);
    }
    out.push(low_bits(n));
}

/// The low 7 bits of `n`.
fn low_bits(n: u64) -> u8 {
    u8::try_from(n & 0x7f).unwrap_or(0)
}

/// The schema to write: 3 with a `validated_at`, else 2 as soon as an entry has a
/// fingerprint, else 1.
pub(crate) fn schema_for(entries: &[Entry<'_>], validated_at: Option<u64>) -> u8 {
    if validated_at.is_some() {
        SCHEMA_VALIDATED
    } else if entries.iter().any(|e| e.fingerprint.is_some()) {
        SCHEMA_TYPED
    } else {
        SCHEMA_VERSION
    }
}

/// Parses a payload: the whole buffer, known schema (2 only with a fingerprint), canonical
/// key order.
pub(crate) fn decode(bytes: &[u8]) -> Result<Payload<'_>, DecodeError> {
    parse(bytes).ok_or(DecodeError::Payload)
}

fn parse(bytes: &[u8]) -> Option<Payload<'_>> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let schema = u8::deserialize(&mut de).ok()?;
    if !matches!(schema, SCHEMA_VERSION | SCHEMA_TYPED | SCHEMA_VALIDATED) {
        return None;
    }
    let (id, issued_at, expires_at, last_seen) =
        <([u8; 16], u64, u64, u64)>::deserialize(&mut de).ok()?;
    let validated_at = if schema == SCHEMA_VALIDATED {
        Some(u64::deserialize(&mut de).ok()?)
    } else {
        None
    };
    let entries = EntriesSeed { schema }.deserialize(&mut de).ok()?;
    if !de.finalize().ok()?.is_empty() {
        return None;
    }
    // One spelling per payload: schema 2 only when an entry has a fingerprint (schema 3 is
    // chosen by the encoder's setting, whatever the entries).
    if schema_for(&entries, validated_at) != schema {
        return None;
    }
    if entries
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.key >= b.key))
    {
        return None;
    }
    Some(Payload {
        schema,
        id,
        issued_at,
        expires_at,
        last_seen,
        validated_at,
        entries,
    })
}

/// Reads the entry sequence in the layout of `schema` straight into `Entry`s.
struct EntriesSeed {
    schema: u8,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Vec<Entry<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed {
    type Value = Vec<Entry<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("session entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Every entry takes at least two bytes: the hint is bounded by the input, but cap the
        // first allocation anyway.
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
        if self.schema != SCHEMA_VERSION {
            while let Some((key, fingerprint, value)) =
                seq.next_element::<(&str, Option<[u8; 8]>, &Bytes)>()?
            {
                entries.push(Entry {
                    key,
                    fingerprint,
                    value,
                });
            }
        } else {
            while let Some((key, value)) = seq.next_element::<(&str, &Bytes)>()? {
                entries.push(Entry {
                    key,
                    fingerprint: None,
                    value,
                });
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &'static str, value: &'static [u8]) -> Entry<'static> {
        Entry {
            key,
            fingerprint: None,
            value,
        }
    }

    fn sample(entries: Vec<Entry<'static>>) -> Vec<u8> {
        let p = Payload {
            schema: schema_for(&entries, None),
            id: [7; 16],
            issued_at: 1,
            expires_at: 300,
            last_seen: 2,
            validated_at: None,
            entries,
        };
        encode(&p, Vec::new()).unwrap()
    }

    #[test]
    fn layout_is_stable() {
        let bytes = sample(vec![entry("a", b"\0x")]);
        let mut expected = vec![1];
        expected.extend([7; 16]);
        expected.extend([1, 0xac, 0x02, 2, 1, 1, b'a', 2, 0, b'x']);
        assert_eq!(bytes, expected);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.entries[0].key, "a");
    }

    #[test]
    fn trailing_bytes_bad_schema_and_unordered_keys_are_refused() {
        let mut bytes = sample(vec![]);
        bytes.push(0);
        assert!(decode(&bytes).is_err());
        for schema in [0, 2, 4, 0xff] {
            let mut bytes = sample(vec![entry("a", b"\0")]);
            bytes[0] = schema;
            assert!(decode(&bytes).is_err(), "{schema}");
        }
        let bytes = sample(vec![entry("b", b"\0"), entry("a", b"\0")]);
        assert!(decode(&bytes).is_err());
        let bytes = sample(vec![entry("a", b"\0"), entry("a", b"\0")]);
        assert!(decode(&bytes).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn typed_layout_is_stable_and_fingerprints_round_trip() {
        let typed = Entry {
            key: "b",
            fingerprint: Some([1, 2, 3, 4, 5, 6, 7, 8]),
            value: b"\0y",
        };
        let bytes = sample(vec![entry("a", b"\0x"), typed]);
        let mut expected = vec![2];
        expected.extend([7; 16]);
        expected.extend([1, 0xac, 0x02, 2, 2]);
        expected.extend([1, b'a', 0, 2, 0, b'x']);
        expected.extend([1, b'b', 1, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0, b'y']);
        assert_eq!(bytes, expected);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.schema, 2);
        assert_eq!(p.entries, vec![entry("a", b"\0x"), typed]);
        // An option tag other than 0 or 1 is refused.
        let mut bad = bytes.clone();
        let tag = bad.len() - 12;
        assert_eq!(bad[tag], 1);
        bad[tag] = 2;
        assert!(decode(&bad).is_err());
        // Schema 2 without any fingerprint is refused (schema 1 is its only spelling).
        let mut untyped = bytes.clone();
        untyped.truncate(tag);
        untyped.extend([0, 2, 0, b'y']);
        assert!(decode(&untyped).is_err());
        // A truncated fingerprint is refused.
        assert!(decode(&bytes[..bytes.len() - 4]).is_err());
    }

    #[test]
    fn schema_1_never_drops_a_fingerprint() {
        let p = Payload {
            schema: SCHEMA_VERSION,
            id: [0; 16],
            issued_at: 0,
            expires_at: 0,
            last_seen: 0,
            validated_at: None,
            entries: vec![Entry {
                key: "k",
                fingerprint: Some([0; 8]),
                value: b"\0",
            }],
        };
        assert!(encode(&p, Vec::new()).is_err());
        assert_eq!(schema_for(&p.entries, None), SCHEMA_TYPED);
        assert_eq!(schema_for(&[entry("k", b"\0")], None), SCHEMA_VERSION);
        assert_eq!(schema_for(&[entry("k", b"\0")], Some(0)), SCHEMA_VALIDATED);
    }

    #[test]
    fn i11_schema_3_layout_carries_validated_at() {
        let typed = Entry {
            key: "b",
            fingerprint: Some([1, 2, 3, 4, 5, 6, 7, 8]),
            value: b"\0y",
        };
        let p = Payload {
            schema: SCHEMA_VALIDATED,
            id: [7; 16],
            issued_at: 1,
            expires_at: 300,
            last_seen: 2,
            validated_at: Some(3),
            entries: vec![entry("a", b"\0x"), typed],
        };
        let bytes = encode(&p, Vec::new()).unwrap();
        let mut expected = vec![3];
        expected.extend([7; 16]);
        expected.extend([1, 0xac, 0x02, 2, 3, 2]);
        expected.extend([1, b'a', 0, 2, 0, b'x']);
        expected.extend([1, b'b', 1, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0, b'y']);
        assert_eq!(bytes, expected);
        let back = decode(&bytes).unwrap();
        assert_eq!((back.schema, back.validated_at), (3, Some(3)));
        assert_eq!(back.entries, p.entries);

        // Schema 3 without any fingerprint: entries still in the typed layout.
        let plain = Payload {
            entries: vec![entry("a", b"\0x")],
            ..p
        };
        let bytes = encode(&plain, Vec::new()).unwrap();
        assert_eq!(
            &bytes[17..],
            [1, 0xac, 0x02, 2, 3, 1, 1, b'a', 0, 2, 0, b'x']
        );
        assert_eq!(decode(&bytes).unwrap().validated_at, Some(3));
        // Without validated_at it is refused, and the other schemas never carry one.
        let mut short = bytes.clone();
        short.remove(21);
        assert!(decode(&short).is_err());
        let wrong = Payload {
            schema: SCHEMA_TYPED,
            validated_at: Some(3),
            entries: vec![typed],
            ..plain
        };
        assert!(encode(&wrong, Vec::new()).is_err());
        let missing = Payload {
            schema: SCHEMA_VALIDATED,
            validated_at: None,
            ..wrong
        };
        assert!(encode(&missing, Vec::new()).is_err());
    }

    /// The sealing path's streaming writer spells every payload exactly as postcard over
    /// `Payload` does (the published layout), whatever the schema, the fingerprints, the
    /// value sizes (length prefixes of one to three bytes) and the framing.
    mod write_matches_encode {
        use super::super::*;
        use proptest::prelude::*;

        fn framed(value: &[u8], out: &mut Vec<u8>) {
            crate::codec::compress::deflate(value, 64, out);
        }

        proptest! {
            #[test]
            fn same_bytes(
                id in any::<[u8; 16]>(),
                times in any::<(u64, u64, u64, u64)>(),
                validated in any::<bool>(),
                raw in proptest::collection::btree_map(
                    "[a-z]{1,12}",
                    (proptest::option::of(any::<[u8; 8]>()),
                     prop_oneof![
                         proptest::collection::vec(any::<u8>(), 0..40),
                         proptest::collection::vec(Just(b'a'), 100..400),
                         proptest::collection::vec(any::<u8>(), 120..300),
                     ]),
                    0..6,
                ),
            ) {
                let validated_at = validated.then_some(times.3);
                let mut frames = Vec::new();
                for (_, value) in raw.values() {
                    let mut f = Vec::new();
                    framed(value, &mut f);
                    frames.push(f);
                }
                let entries: Vec<Entry<'_>> = raw
                    .iter()
                    .zip(&frames)
                    .map(|((k, (fp, _)), f)| Entry { key: k, fingerprint: *fp, value: f })
                    .collect();
                let schema = schema_for(&entries, validated_at);
                let expected = encode(
                    &Payload {
                        schema,
                        id,
                        issued_at: times.0,
                        expires_at: times.1,
                        last_seen: times.2,
                        validated_at,
                        entries: entries.clone(),
                    },
                    vec![9, 9],
                )
                .unwrap();
                let meta = Meta {
                    schema,
                    id,
                    issued_at: times.0,
                    expires_at: times.1,
                    last_seen: times.2,
                    validated_at,
                };
                let mut out = vec![9, 9];
                write(
                    &mut out,
                    &meta,
                    raw.iter().map(|(k, (fp, v))| (k.as_str(), *fp, v.as_slice())),
                    framed,
                )
                .unwrap();
                prop_assert_eq!(out, expected);
            }
        }

        #[test]
        fn refuses_what_encode_refuses() {
            let meta = |schema, validated_at| Meta {
                schema,
                id: [0; 16],
                issued_at: 1,
                expires_at: 2,
                last_seen: 1,
                validated_at,
            };
            let fp = Some([1u8; 8]);
            let one = || std::iter::once(("a", fp, &b"x"[..]));
            assert!(write(&mut Vec::new(), &meta(SCHEMA_VERSION, None), one(), framed).is_err());
            assert!(write(&mut Vec::new(), &meta(SCHEMA_TYPED, Some(5)), one(), framed).is_err());
            assert!(
                write(
                    &mut Vec::new(),
                    &meta(SCHEMA_VALIDATED, None),
                    one(),
                    framed
                )
                .is_err()
            );
            assert!(write(&mut Vec::new(), &meta(SCHEMA_TYPED, None), one(), framed).is_ok());
        }
    }
}
