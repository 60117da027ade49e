//! AES-256-GCM for what leaves the process: a random nonce leading each sealed value, bound to the entry's name.
//!
//! Not here: which key seals what (`memcached.rs`: per entry name; `tokens.rs`: per credentials).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// The AES-256-GCM key of 32 bytes of HMAC-SHA256 output.
pub(super) fn aead_key(secret: &[u8]) -> LessSafeKey {
    UnboundKey::new(&AES_256_GCM, secret)
        .map(LessSafeKey::new)
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 gives the 32 bytes AES-256 wants"))
}

/// `plain` encrypted under `key` with a random nonce (which leads the result), bound to `aad`.
pub(super) fn seal(key: &LessSafeKey, aad: &str, mut plain: Vec<u8>) -> Option<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut plain,
    )
    .ok()?;
    let mut value = nonce.to_vec();
    value.extend_from_slice(&plain);
    Some(value)
}

/// What [`seal`] made of it, if `sealed` opens under `key` and `aad`.
pub(super) fn open(key: &LessSafeKey, aad: &str, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let mut body = sealed.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&sealed).ok()?;
    let len = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body)
        .ok()?
        .len();
    body.truncate(len);
    Some(body)
}
