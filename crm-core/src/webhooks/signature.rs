//! Standard Webhooks signing: secrets (`whsec_…`) and the `webhook-signature` header.
//!
//! The scheme (<https://www.standardwebhooks.com>): the signature is the base64 HMAC-SHA256,
//! keyed with the secret's bytes, of `"{webhook-id}.{webhook-timestamp}.{body}"`, sent as
//! `v1,<signature>`; during a secret rotation both signatures are sent, space separated, and a
//! receiver accepts either. Receivers verify with the scheme's libraries.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};
use rand::RngCore as _;

/// What every secret starts with.
const PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` and 24 random bytes in base64, as the scheme's libraries
/// generate them.
pub(crate) fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret (`None` for text this library did not make).
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with each of `secrets`, space separated.
pub(crate) fn sign(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut out = String::new();
    for secret in secrets {
        let Some(key) = key(secret) else { continue };
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
            continue;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        out.push_str(&STANDARD.encode(mac.finalize().into_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signed as the scheme's reference library signs (and verifies).
    #[test]
    fn signs_as_the_reference_library_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        let reference = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            .unwrap();
        assert_eq!(signature, reference);
        let fresh = new_secret();
        assert!(fresh.starts_with("whsec_") && key(&fresh).is_some_and(|k| k.len() == 24));
        let both = sign(&[&fresh, secret], "id", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
    }
}
