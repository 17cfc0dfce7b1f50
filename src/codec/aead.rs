//! The AEAD stage: the only file that names a cipher type.
//!
//! Three algorithms, chosen per key (never by the input):
//! - **XAES-256-GCM** (C2SP): AES-256-GCM under a key derived per 192-bit nonce. Random nonces
//!   are safe for ~2^80 messages per key and it runs on AES-NI: the default.
//! - **XChaCha20-Poly1305**: 192-bit nonces, no AES hardware needed, slower here.
//! - **AES-256-GCM**: fastest, but random 96-bit nonces limit a key to 2^32 seals.

use std::cell::RefCell;

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::AeadInOut;
use chacha20::ChaCha12Rng;
use chacha20poly1305::XChaCha20Poly1305;
use rand_core::{Rng as _, SeedableRng, TryCryptoRng, TryRng};
use zeroize::Zeroizing;

use crate::keyring::Algorithm;

/// Length of the authentication tag every algorithm appends.
pub(crate) const TAG_LEN: usize = 16;

/// A cipher keyed once, when the keyring is loaded, so sealing pays no key schedule.
pub(crate) enum Cipher {
    Xaes(Box<XaesKey>),
    XChaCha(Box<XChaCha20Poly1305>),
    Aes(Box<Aes256Gcm>),
}

/// The AEAD rejected the input: wrong key, tampered bytes or a malformed nonce.
/// Deliberately opaque, like `aead::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenError;

impl Cipher {
    /// Keys the cipher for `algorithm` with a 256-bit secret.
    pub(crate) fn new(algorithm: Algorithm, secret: &[u8; 32]) -> Self {
        match algorithm {
            Algorithm::Xaes256Gcm => Cipher::Xaes(Box::new(XaesKey::new(secret))),
            Algorithm::XChaCha20Poly1305 => {
                Cipher::XChaCha(Box::new(XChaCha20Poly1305::new(&(*secret).into())))
            }
            Algorithm::Aes256Gcm => Cipher::Aes(Box::new(Aes256Gcm::new(&(*secret).into()))),
        }
    }

    /// Encrypts `buf` in place and appends the tag. `nonce` has the algorithm's nonce length.
    pub(crate) fn seal(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let tag = self.seal_detached(nonce, aad, buf)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Verifies the trailing tag of `buf` and decrypts in place; on success `buf` holds the
    /// plaintext.
    pub(crate) fn open(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let body_len = buf.len().checked_sub(TAG_LEN).ok_or(OpenError)?;
        let (body, tag) = buf.split_at_mut(body_len);
        self.open_detached(nonce, aad, body, tag)?;
        buf.truncate(body_len);
        Ok(())
    }

    /// Encrypts `body` in place and returns the tag.
    pub(crate) fn seal_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        body: &mut [u8],
    ) -> Result<[u8; TAG_LEN], OpenError> {
        let tag = match self {
            Cipher::Xaes(key) => {
                let (gcm, inner_nonce) = key.derive(nonce)?;
                gcm.encrypt_inout_detached(&inner_nonce.into(), aad, body.into())
            }
            Cipher::XChaCha(c) => {
                let nonce = nonce.try_into().map_err(|_| OpenError)?;
                c.encrypt_inout_detached(nonce, aad, body.into())
            }
            Cipher::Aes(c) => {
                let nonce = nonce.try_into().map_err(|_| OpenError)?;
                c.encrypt_inout_detached(nonce, aad, body.into())
            }
        }
        .map_err(|_| OpenError)?;
        Ok(tag.into())
    }

    /// Verifies `tag` over `body` and decrypts `body` in place. The tag is checked (in constant
    /// time) before any plaintext is released; on failure `body` is left unusable.
    pub(crate) fn open_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenError> {
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError)?;
        match self {
            Cipher::Xaes(key) => {
                let (gcm, inner_nonce) = key.derive(nonce)?;
                gcm.decrypt_inout_detached(&inner_nonce.into(), aad, body.into(), &tag.into())
            }
            Cipher::XChaCha(c) => {
                let nonce = nonce.try_into().map_err(|_| OpenError)?;
                c.decrypt_inout_detached(nonce, aad, body.into(), &tag.into())
            }
            Cipher::Aes(c) => {
                let nonce = nonce.try_into().map_err(|_| OpenError)?;
                c.decrypt_inout_detached(nonce, aad, body.into(), &tag.into())
            }
        }
        .map_err(|_| OpenError)
    }
}

/// The randomness behind every nonce and session id: a ChaCha12 generator per thread, seeded
/// from the operating system, that reseeds itself when it finds itself in a new process (and
/// after every [`RESEED_AFTER`] bytes).
///
/// A generator copied by `fork()` would otherwise hand the parent and the child the same bytes:
/// the same nonce under the same key (XOR of two plaintexts, and for GCM the authentication
/// key) and the same session id. rand 0.9's `rand::rng()` no longer reseeds in a forked child.
/// The process id is compared on every draw (one `getpid`, measured in `benches/codec.rs`,
/// group `nonce_source`, and in SECURITY.md); drawing every nonce from the OS instead costs
/// more. Residual risk: a grandchild that is given, after pid wrap-around, the pid of an
/// ancestor that has exited, and inherits that ancestor's generator untouched since, repeats
/// what the ancestor drew after forking.
///
/// ```
/// use sealed_session::codec::ForkSafeRng;
///
/// let mut nonce = [0u8; 24];
/// ForkSafeRng::fill(&mut nonce);
/// assert_ne!(nonce, [0u8; 24]);
/// ```
///
/// # Panics
/// When the operating system has no randomness to give at (re)seeding time, as
/// `rand::rng()` does: sealing with predictable nonces is never an option.
#[derive(Debug, Default, Clone, Copy)]
#[doc(hidden)] // public for the benches and the fork test; not part of the stable API
pub struct ForkSafeRng;

impl ForkSafeRng {
    /// Fills `dest` with fresh random bytes.
    pub fn fill(dest: &mut [u8]) {
        let pid = std::process::id();
        let drawn = LOCAL.try_with(|local| {
            let Ok(mut local) = local.try_borrow_mut() else {
                return false;
            };
            local_fill(&mut local, pid, dest);
            true
        });
        if drawn != Ok(true) {
            // Thread teardown (or a re-entrant draw): straight from the OS.
            os_fill(dest);
        }
    }
}

impl TryRng for ForkSafeRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        Self::fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        Self::fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        Self::fill(dest);
        Ok(())
    }
}

impl TryCryptoRng for ForkSafeRng {}

/// The generator of this thread and the process it was seeded in.
struct Local {
    pid: u32,
    rng: ChaCha12Rng,
    drawn: usize,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Fills `dest` from this thread's generator, reseeding it first when it was seeded in another
/// process than `pid` (a fork) or has given [`RESEED_AFTER`] bytes.
fn local_fill(local: &mut Option<Local>, pid: u32, dest: &mut [u8]) {
    let current = match local {
        Some(l) if l.pid == pid && l.drawn < RESEED_AFTER => l,
        _ => {
            let mut seed = Zeroizing::new([0u8; 32]);
            os_fill(seed.as_mut_slice());
            local.insert(Local {
                pid,
                rng: ChaCha12Rng::from_seed(*seed),
                drawn: 0,
            })
        }
    };
    current.rng.fill_bytes(dest);
    current.drawn = current.drawn.saturating_add(dest.len());
}

#[allow(clippy::panic)] // documented on `ForkSafeRng`: no randomness, no seal
fn os_fill(dest: &mut [u8]) {
    if getrandom::fill(dest).is_err() {
        panic!("the operating system's random generator failed");
    }
}

/// Bytes a thread's generator gives before it is reseeded from the OS (as `rand::rng()`).
const RESEED_AFTER: usize = 64 * 1024;

/// Nonce length in bytes for each algorithm.
pub(crate) const fn nonce_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Xaes256Gcm | Algorithm::XChaCha20Poly1305 => 24,
        Algorithm::Aes256Gcm => 12,
    }
}

/// XAES-256-GCM key state: the AES-256 block cipher and the CMAC subkey K1, both computed
/// once per key. Each message derives its own AES-256-GCM key from the first half of its nonce
/// (C2SP XAES-256-GCM, section "Algorithm").
pub(crate) struct XaesKey {
    block: Aes256,
    k1: Zeroizing<[u8; 16]>,
}

impl XaesKey {
    fn new(secret: &[u8; 32]) -> Self {
        let block = Aes256::new(&(*secret).into());
        let mut l = [0u8; 16].into();
        block.encrypt_block(&mut l);
        let l: [u8; 16] = l.into();
        // K1 = L << 1, xor 0x87 into the last byte when the top bit of L was set.
        let mut k1 = Zeroizing::new((u128::from_be_bytes(l) << 1).to_be_bytes());
        if l[0] & 0x80 != 0 {
            if let Some(last) = k1.last_mut() {
                *last ^= 0x87;
            }
        }
        Self { block, k1 }
    }

    /// Derives the per-message AES-256-GCM cipher and its 96-bit nonce from a 192-bit nonce.
    #[inline(always)]
    fn derive(&self, nonce: &[u8]) -> Result<(Aes256Gcm, [u8; 12]), OpenError> {
        let nonce: &[u8; 24] = nonce.try_into().map_err(|_| OpenError)?;
        let (salt, inner) = nonce.split_at(12);
        let mut m1 = [0u8; 16];
        m1[..4].copy_from_slice(&[0x00, 0x01, b'X', 0x00]);
        m1[4..].copy_from_slice(salt);
        let mut m2 = m1;
        m2[1] = 0x02;
        let mut derived = Zeroizing::new([0u8; 32]);
        for (half, mut block) in derived.chunks_exact_mut(16).zip([m1, m2]) {
            for (b, k) in block.iter_mut().zip(self.k1.iter()) {
                *b ^= k;
            }
            let mut b = block.into();
            self.block.encrypt_block(&mut b);
            half.copy_from_slice(b.as_slice());
        }
        let inner: [u8; 12] = inner.try_into().map_err(|_| OpenError)?;
        Ok((Aes256Gcm::new(&(*derived).into()), inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The two vectors published with the C2SP XAES-256-GCM specification.
    #[test]
    fn xaes_c2sp_vectors() {
        let nonce = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        for (key, aad, expected) in [
            (
                [1u8; 32],
                &b""[..],
                "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                [3u8; 32],
                &b"c2sp.org/XAES-256-GCM"[..],
                "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
            ),
        ] {
            let cipher = Cipher::new(Algorithm::Xaes256Gcm, &key);
            let mut buf = b"XAES-256-GCM".to_vec();
            cipher.seal(nonce, aad, &mut buf).unwrap();
            assert_eq!(hex(&buf), expected);
            cipher.open(nonce, aad, &mut buf).unwrap();
            assert_eq!(buf, b"XAES-256-GCM");
        }
    }

    /// Issue 9 A3 (the logic; tests/all/fork.rs really forks): a generator seeded in another
    /// process is replaced, never continued, and one in the same process is continued.
    #[test]
    fn a3_generator_reseeds_when_the_process_id_changes() {
        let mut local = None;
        local_fill(&mut local, 100, &mut [0u8; 24]);
        // What fork() copies: the generator's seed and position.
        let copy = |rng: &ChaCha12Rng| {
            let mut c = ChaCha12Rng::from_seed(rng.get_seed());
            c.set_word_pos(rng.get_word_pos());
            c
        };
        let copied = local.as_ref().map(|l: &Local| copy(&l.rng)).unwrap();
        // What the parent (pid 100) draws next after a fork.
        let mut parent = copy(&copied);
        let mut parent_next = [0u8; 24];
        parent.fill_bytes(&mut parent_next);
        // The same state, continued in the parent, repeats it.
        let mut same = [0u8; 24];
        local_fill(&mut local, 100, &mut same);
        assert_eq!(same, parent_next);
        // The copy in a child (pid 101) must not.
        let mut child = Some(Local {
            pid: 100,
            rng: copied,
            drawn: 24,
        });
        let mut child_next = [0u8; 24];
        local_fill(&mut child, 101, &mut child_next);
        assert_ne!(child_next, parent_next);
        assert_eq!(child.map(|l| (l.pid, l.drawn)), Some((101, 24)));
    }

    #[test]
    fn a3_generator_reseeds_after_its_byte_budget() {
        let mut local = None;
        local_fill(&mut local, 7, &mut [0u8; 16]);
        if let Some(l) = local.as_mut() {
            l.drawn = RESEED_AFTER;
        }
        local_fill(&mut local, 7, &mut [0u8; 16]);
        assert_eq!(local.map(|l| l.drawn), Some(16));
        let (a, b) = (ForkSafeRng.next_u64(), ForkSafeRng.next_u64());
        assert_ne!(a, b);
    }

    #[test]
    fn every_algorithm_round_trips_and_rejects_tampering() {
        for alg in [
            Algorithm::Xaes256Gcm,
            Algorithm::XChaCha20Poly1305,
            Algorithm::Aes256Gcm,
        ] {
            let cipher = Cipher::new(alg, &[7; 32]);
            let nonce = vec![9u8; nonce_len(alg)];
            let mut buf = b"hello".to_vec();
            cipher.seal(&nonce, b"aad", &mut buf).unwrap();
            assert_eq!(buf.len(), 5 + TAG_LEN);
            let sealed = buf.clone();
            cipher.open(&nonce, b"aad", &mut buf).unwrap();
            assert_eq!(buf, b"hello");
            let mut wrong_aad = sealed.clone();
            assert_eq!(cipher.open(&nonce, b"aae", &mut wrong_aad), Err(OpenError));
            let mut short = sealed[..TAG_LEN - 1].to_vec();
            assert_eq!(cipher.open(&nonce, b"aad", &mut short), Err(OpenError));
            let mut bad_nonce = sealed.clone();
            assert_eq!(
                cipher.open(&nonce[1..], b"aad", &mut bad_nonce),
                Err(OpenError)
            );
        }
    }
}
