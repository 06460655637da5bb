//! Random secrets in tokens: `<prefix>_<organization uuid>_<row uuid>_<secret>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A token's parts once parsed. Parsing checks only the shape; the secret is checked against the
/// stored hash.
pub(crate) struct Parsed<'a> {
    pub(crate) organization: Uuid,
    pub(crate) id: Uuid,
    pub(crate) secret: &'a str,
}

/// Makes a new token for row `id` of `organization`; returns the token and the hash to store.
pub(crate) fn mint(prefix: &str, organization: Uuid, id: Uuid) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&secret);
    (
        format!(
            "{prefix}_{}_{}_{secret}",
            organization.simple(),
            id.simple()
        ),
        hash,
    )
}

/// Splits a token made by [`mint`] with the same `prefix`; `None` for anything else.
pub(crate) fn parse<'a>(prefix: &str, token: &'a str) -> Option<Parsed<'a>> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('_')?;
    let (org, rest) = rest.split_once('_')?;
    let (id, secret) = rest.split_once('_')?;
    if org.len() != 32 || id.len() != 32 || secret.len() != 43 {
        return None;
    }
    Some(Parsed {
        organization: Uuid::try_parse(org).ok()?,
        id: Uuid::try_parse(id).ok()?,
        secret,
    })
}

/// SHA-256 of a secret, hex encoded.
pub(crate) fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two hashes in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_and_match_their_hash() {
        let (org, id) = (Uuid::now_v7(), Uuid::now_v7());
        let (token, h) = mint("crm_rt", org, id);
        let p = parse("crm_rt", &token).unwrap();
        assert_eq!((p.organization, p.id), (org, id));
        assert!(same(&hash(p.secret), &h));
        assert!(parse("crm_key", &token).is_none());
        assert!(parse("crm_rt", "crm_rt_x_y_z").is_none());
    }
}
