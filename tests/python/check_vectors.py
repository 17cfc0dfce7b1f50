#!/usr/bin/env python3
"""An independent decoder for the sealed-session v1 wire format (docs/FORMAT.md).

Written from docs/FORMAT.md only, it decodes every valid vector in docs/vectors/v1.json back
to its state (and re-encrypts its plaintext to the same envelope), opens every `opens` vector
to its state, and rejects every invalid vector, reporting the same error category as the
reference implementation. Vectors with `headers` are read from raw `Cookie` header lines.

Requirements: Python 3.9+, `pip install cryptography lz4`.

    python3 tests/python/check_vectors.py [path/to/v1.json]

The last line is `N passed, M failed`; the exit status is 0 only when M is 0.
"""

import base64
import datetime
import json
import os
import re
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
import lz4.block

AAD_LABEL = b"sealed-session/v1"
MAX_CHUNKS = 32
MAX_VALUE = 4096
MAX_OUR_COOKIES = 64
MAX_DUPLICATES = 4
MAX_ATTEMPTS = 8
NONCE_LEN = {1: 24, 2: 12, 3: 24}
ALGORITHMS = {"xchacha20poly1305": 1, "aes256gcm": 2, "xaes256gcm": 3}
ARMOR_ALPHABET = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class Reject(Exception):
    """A rejection with its FORMAT.md category."""

    def __init__(self, category):
        super().__init__(category)
        self.category = category


# --- keyring ------------------------------------------------------------------------------


def b64url_strict(text):
    data = text.encode() if isinstance(text, str) else bytes(text)
    if any(c not in ARMOR_ALPHABET for c in data) or len(data) % 4 == 1:
        raise ValueError("not strict base64url")
    out = base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    # Canonical: re-encoding gives the same text (no non-zero trailing bits).
    if base64.urlsafe_b64encode(out).rstrip(b"=") != data:
        raise ValueError("non-zero trailing bits")
    return out


class Keyring(dict):
    """Keys by id, and the cutoff `not_before` (Unix seconds, 0 for none; section 8)."""

    not_before = 0


KEYRING_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|\+00:00)\Z")


def keyring_time(text):
    """A keyring time (section 8) in whole Unix seconds; raises ValueError."""
    m = KEYRING_TIME.match(text)
    if not m:
        raise ValueError("not a keyring time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not 1970 <= year <= 9999 or second > 59:
        raise ValueError("out of range")
    t = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    return int(t.timestamp())


def load_keyring(doc):
    # Version 2 adds the optional cutoff; version 1 must not carry it.
    assert type(doc["version"]) is int and doc["version"] in (1, 2)
    assert set(doc) <= {"version", "keys", "not_before"}
    assert doc["version"] == 2 or "not_before" not in doc
    keys = Keyring()
    if "not_before" in doc:
        keys.not_before = keyring_time(doc["not_before"])
    for k in doc["keys"]:
        key_id = bytes.fromhex(k["id"])
        assert len(key_id) == 4 and k["id"] == k["id"].lower()
        secret = b64url_strict(k["secret"])
        assert len(secret) == 32
        keys[key_id] = {
            "algorithm": ALGORITHMS[k["algorithm"]],
            "secret": secret,
            "retired": "retired_at" in k,
        }
    return keys


# --- AEADs --------------------------------------------------------------------------------


def aes_block(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def xaes_derive(key, nonce):
    """C2SP XAES-256-GCM: the derived AES-256-GCM key and the inner 96-bit nonce."""
    l = int.from_bytes(aes_block(key, bytes(16)), "big")
    k1 = (l << 1) & ((1 << 128) - 1)
    if l >> 127:
        k1 ^= 0x87
    k1 = k1.to_bytes(16, "big")
    m1 = b"\x00\x01X\x00" + nonce[:12]
    m2 = b"\x00\x02X\x00" + nonce[:12]
    kx = b"".join(aes_block(key, bytes(a ^ b for a, b in zip(m, k1))) for m in (m1, m2))
    return kx, nonce[12:]


def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha-03, section 2.2)."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + list(
        struct.unpack("<4I", nonce16)
    )

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF
        s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF
        s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
        qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def aead(alg, key, nonce):
    """The AEAD object and the 12-byte nonce it takes."""
    if alg == 1:
        return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\x00" * 4 + nonce[16:]
    if alg == 2:
        return AESGCM(key), nonce
    kx, inner = xaes_derive(key, nonce)
    return AESGCM(kx), inner


# --- decoding -----------------------------------------------------------------------------


def parse_index(digits):
    """Canonical decimal 0..32, else None."""
    if len(digits) == 1 and 0x30 <= digits[0] <= 0x39:
        return digits[0] - 0x30
    if len(digits) == 2 and 0x31 <= digits[0] <= 0x39 and 0x30 <= digits[1] <= 0x39:
        n = int(digits)
        return n if n <= MAX_CHUNKS else None
    return None


def chunk_index(base, name):
    if name == base:
        return 0
    if name.startswith(base + b"."):
        i = parse_index(name[len(base) + 1 :])
        if i is not None and 0 < i < MAX_CHUNKS:
            return i
    return None


OWS = b" \t"  # section 2.4: only SP and HTAB are trimmed


def cookie_pairs(lines):
    """Section 2.4: every header line, split on `;`, pairs without `=` skipped."""
    for header in lines:
        for part in header.split(b";"):
            part = part.strip(OWS)
            if b"=" in part:
                name, value = part.split(b"=", 1)
                yield name.strip(OWS), value.strip(OWS)


def candidates(base, pairs, total_budget):
    """Section 2.4: every (count, pieces) candidate, or Reject. None when no chunk is present."""
    slots = {}
    seen = 0
    overflow = False
    for name, value in pairs:
        i = chunk_index(base, name)
        if i is None:
            continue
        seen += 1
        if seen > MAX_OUR_COOKIES:
            raise Reject("chunk.too_many")
        if len(value) > MAX_VALUE:
            raise Reject("chunk.too_long")
        slot = slots.setdefault(i, [])
        if value not in slot:
            if len(slot) == MAX_DUPLICATES:
                overflow = True  # still scan: too_many and too_long come first
            else:
                slot.append(value)
    if overflow:
        raise Reject("ambiguous")
    if not slots:
        return None
    if 0 not in slots:
        raise Reject("chunk.missing_first")
    out, last, formed = [], "chunk.count", 0
    for first in slots[0]:
        dot = first[:3].find(b".")
        count = parse_index(first[:dot]) if dot >= 0 else None
        if not count:
            last = "chunk.count"
            continue
        if len(slots[0]) == 1 and any(i >= count for i in slots):
            last = "chunk.extra"
            continue
        if any(i not in slots for i in range(1, count)):
            last = "chunk.missing"
            continue
        # Chunk 1's value varies fastest, then chunk 2's, ... (section 2.4 step 6).
        combos = [[]]
        for i in range(count - 1, 0, -1):
            combos = [[v] + c for v in slots[i] for c in combos]
        combos = [[first[dot + 1 :]] + c for c in combos]
        formed += len(combos)
        if formed > MAX_ATTEMPTS:
            raise Reject("chunk.candidates")
        for pieces in combos:
            if sum(len(p) for p in pieces) > total_budget:
                last = "chunk.total"
            else:
                out.append((count, pieces))
    if not out:
        raise Reject(last)
    return out


def read_varint(buf, pos, max_bytes=10):
    n = 0
    for i in range(max_bytes):
        if pos >= len(buf):
            raise Reject("payload")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i == 9 and b > 1:
                raise Reject("payload")
            return n, pos
    raise Reject("payload")


def parse_payload(pt):
    # Schema 2 entries carry an optional 8-byte fingerprint; schema 3 adds validated_at after
    # last_seen and lays entries out as schema 2 (FORMAT.md section 5).
    if len(pt) < 17 or pt[0] not in (1, 2, 3):
        raise Reject("payload")
    state = {"id": pt[1:17].hex()}
    pos = 17
    fields = ("issued_at", "expires_at", "last_seen") + (("validated_at",) if pt[0] == 3 else ())
    for field in fields:
        state[field], pos = read_varint(pt, pos)
    n, pos = read_varint(pt, pos)
    entries = []
    for _ in range(n):
        klen, pos = read_varint(pt, pos)
        if pos + klen > len(pt):
            raise Reject("payload")
        try:
            key = pt[pos : pos + klen].decode("utf-8")
        except UnicodeDecodeError:
            raise Reject("payload")
        pos += klen
        fingerprint = None
        if pt[0] in (2, 3):
            if pos >= len(pt) or pt[pos] > 1:
                raise Reject("payload")
            pos += 1
            if pt[pos - 1] == 1:
                if pos + 8 > len(pt):
                    raise Reject("payload")
                fingerprint = pt[pos : pos + 8]
                pos += 8
        vlen, pos = read_varint(pt, pos)
        if pos + vlen > len(pt):
            raise Reject("payload")
        entries.append((key, pt[pos : pos + vlen], fingerprint))
        pos += vlen
    if pos != len(pt):
        raise Reject("payload")
    if pt[0] == 2 and all(f is None for _, _, f in entries):
        raise Reject("payload")
    keys = [k.encode() for k, _, _ in entries]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise Reject("payload")
    return state, entries


def check_lz4_block(block, out_len):
    """Section 6: the LZ4 block format's end-of-block rules, walked without decoding."""
    ip = op = 0

    def length(nibble):
        nonlocal ip
        n = nibble
        if nibble == 15:
            while True:
                if ip >= len(block):
                    raise Reject("compression")
                b = block[ip]
                ip += 1
                n += b
                if b != 255:
                    break
        return n

    while True:
        if ip >= len(block):
            raise Reject("compression")  # no last literals-only sequence
        token = block[ip]
        ip += 1
        lit = length(token >> 4)
        ip += lit
        op += lit
        if ip > len(block) or op > out_len:
            raise Reject("compression")
        if ip == len(block):
            if op != out_len:
                raise Reject("compression")
            return
        if ip + 2 > len(block):
            raise Reject("compression")
        offset = block[ip] | block[ip + 1] << 8
        ip += 2
        if offset == 0 or offset > op:
            raise Reject("compression")
        match = length(token & 15) + 4
        if op + 12 > out_len or op + match + 5 > out_len:
            raise Reject("compression")
        op += match


def unframe(frame, budget):
    """Returns (value, compressed?, budget left)."""
    if not frame:
        raise Reject("compression")
    if frame[0] == 0:
        value = frame[1:]
        if len(value) > budget:
            raise Reject("compression")
        return value, False, budget - len(value)
    if frame[0] != 1:
        raise Reject("compression")
    n, pos = 0, 1
    for i in range(4):
        if pos >= len(frame):
            raise Reject("compression")
        b = frame[pos]
        pos += 1
        n |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if b == 0 and i > 0:
                raise Reject("compression")  # non-canonical
            break
    else:
        raise Reject("compression")  # more than 4 bytes
    if n == 0:
        raise Reject("compression")  # an empty value is stored, never compressed
    if n > budget:
        raise Reject("compression")  # checked before allocating
    check_lz4_block(frame[pos:], n)
    try:
        value = lz4.block.decompress(frame[pos:], uncompressed_size=n)
    except Exception:
        raise Reject("compression")
    # python-lz4 treats the size as a maximum: check that it was met exactly.
    if len(value) != n:
        raise Reject("compression")
    return value, True, budget - n


def open_envelope(keyring, config, count, armored):
    if any(c not in ARMOR_ALPHABET for c in armored):
        raise Reject("armor")
    try:
        env = b64url_strict(armored)
    except ValueError:
        raise Reject("armor")
    if len(env) < 6:
        raise Reject("envelope.too_short")
    if env[0] != 1:
        raise Reject("envelope.unknown_version")
    alg = env[1]
    if alg not in NONCE_LEN:
        raise Reject("envelope.unknown_algorithm")
    header_len = 6 + NONCE_LEN[alg]
    if len(env) < header_len + 16:
        raise Reject("envelope.too_short")
    key = keyring.get(env[2:6])
    if key is None:
        raise Reject("key.unknown")
    if key["retired"]:
        raise Reject("key.retired")
    if key["algorithm"] != alg:
        raise Reject("key.algorithm_mismatch")
    name = config["cookie_name"].encode()
    aad = AAD_LABEL + bytes([len(name)]) + name + bytes([count]) + env[:header_len]
    purpose = config.get("purpose")
    if purpose is not None:
        purpose = purpose.encode()
        aad += bytes([len(purpose)]) + purpose
    cipher, nonce = aead(alg, key["secret"], env[6:header_len])
    try:
        plaintext = cipher.decrypt(nonce, env[header_len:], aad)
    except Exception:
        raise Reject("aead.tag")
    return env, aad, plaintext


def decode(keyring, config, cookies, now, headers=None):
    """The opened session as (state, compressed keys, intermediates); raises Reject."""
    if headers:
        pairs = list(cookie_pairs(h.encode() for h in headers))
    else:
        pairs = [(c["name"].encode(), c["value"].encode()) for c in cookies]
    cands = candidates(config["cookie_name"].encode(), pairs, config["total_budget"])
    if cands is None:
        raise Reject("none")
    found, last = None, Reject("aead.tag")
    for count, pieces in cands:
        try:
            env, aad, plaintext = open_envelope(keyring, config, count, b"".join(pieces))
            state, entries = parse_payload(plaintext)
            budget, values, compressed = config["max_inflated"], [], []
            for key, frame, fingerprint in entries:
                value, was_compressed, budget = unframe(frame, budget)
                values.append({"key": key, "value": value.hex()})
                if fingerprint is not None:
                    values[-1]["fingerprint"] = fingerprint.hex()
                if was_compressed:
                    compressed.append(key)
            state["entries"] = values
        except Reject as e:
            last = e
            continue
        if found is not None and found[0] != state:
            raise Reject("ambiguous")  # two different sessions (section 2.4 step 7)
        if found is None:
            found = (state, compressed, {"aad": aad, "plaintext": plaintext, "envelope": env})
    if found is None:
        raise last
    state = found[0]
    skew, idle = config["clock_skew"], config["idle_timeout"]
    if state["issued_at"] > now + skew or state["last_seen"] > now + skew or state.get("validated_at", 0) > now + skew:
        raise Reject("time.future")
    if state["expires_at"] <= now:
        raise Reject("time.expired")
    if idle is not None and state["last_seen"] + idle <= now:
        raise Reject("time.idle")
    if state["issued_at"] < keyring.not_before:
        raise Reject("revoked")  # the keyring's cutoff (sections 7 and 8)
    return found


# --- driver -------------------------------------------------------------------------------


def check_valid(v):
    keyring = load_keyring(v["keyring"])
    state, compressed, inter = decode(keyring, v["config"], v["cookies"], v["now"])
    problems = []
    if state != v["state"]:
        problems.append("state differs")
    if compressed != v["compressed"]:
        problems.append("compressed keys differ: %r" % compressed)
    # Fingerprints: FNV-1a 64 of the trace, little-endian (FORMAT.md section 6.1).
    for note in v.get("fingerprints", []):
        h = 0xCBF29CE484222325
        for b in bytes.fromhex(note["trace"]):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        if h.to_bytes(8, "little").hex() != note["fingerprint"]:
            problems.append("fingerprint of %s differs" % note["key"])
    for field in ("aad", "plaintext", "envelope"):
        if inter[field].hex() != v[field]:
            problems.append(field + " differs")
    # Encryption direction: the plaintext sealed with the vector's nonce gives the envelope.
    env = inter["envelope"]
    alg = env[1]
    header_len = 6 + NONCE_LEN[alg]
    key = keyring[env[2:6]]
    if env[6:header_len].hex() != v["nonce"]:
        problems.append("nonce differs")
    cipher, nonce = aead(alg, key["secret"], bytes.fromhex(v["nonce"]))
    if env[:header_len] + cipher.encrypt(nonce, inter["plaintext"], inter["aad"]) != env:
        problems.append("re-encryption differs")
    # Chunk names and the count prefix.
    name = v["config"]["cookie_name"]
    names = [name] + ["%s.%d" % (name, i) for i in range(1, len(v["cookies"]))]
    if [c["name"] for c in v["cookies"]] != names:
        problems.append("chunk names")
    if not v["cookies"][0]["value"].startswith("%d." % len(v["cookies"])):
        problems.append("count prefix")
    return problems


def check_opens(v):
    keyring = load_keyring(v["keyring"])
    state, compressed, _ = decode(keyring, v["config"], v.get("cookies", []), v["now"], v.get("headers"))
    problems = []
    if state != v["state"]:
        problems.append("state differs")
    if compressed != v["compressed"]:
        problems.append("compressed keys differ: %r" % compressed)
    return problems


def check_invalid(v):
    keyring = load_keyring(v["keyring"])
    try:
        decode(keyring, v["config"], v["cookies"], v["now"], v.get("headers"))
    except Reject as e:
        if e.category != v["error"]:
            return ["rejected as %s, expected %s" % (e.category, v["error"])]
        return []
    return ["accepted"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "docs", "vectors", "v1.json")
    with open(path) as f:
        doc = json.load(f)
    assert doc["format"] == "sealed-session/v1"
    passed = failed = 0
    checks = (("valid", check_valid), ("invalid", check_invalid), ("opens", check_opens))
    for kind, check in checks:
        for v in doc.get(kind, []):
            try:
                problems = check(v)
            except Reject as e:
                problems = ["rejected: " + e.category]
            except Exception as e:  # a decoder bug, reported as a failure
                problems = ["error: %r" % (e,)]
            if problems:
                failed += 1
                print("FAIL %s %s: %s" % (kind, v["name"], "; ".join(problems)))
            else:
                passed += 1
                print("ok   %s %s" % (kind, v["name"]))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
