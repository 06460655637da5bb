//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing is deliberately slow and memory hungry, so it runs on the blocking pool behind a
//! semaphore: a burst of logins can neither starve the async runtime nor exhaust memory.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// A password as typed. Its `Debug` never shows it.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Hashes and verifies passwords off the async threads, a few at a time.
#[derive(Debug, Clone)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
}

/// A hash of a throwaway password, made once: verifying against it when the user does not exist
/// costs the same time as a real check, so timing does not reveal which emails exist.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

impl Hasher {
    pub(crate) fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The PHC string of `password` with a fresh random salt.
    pub(crate) async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        self.run(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
        })
        .await
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) it still does the work and
    /// answers `false`.
    pub(crate) async fn verify(&self, password: &Password, hash: Option<&str>) -> Result<bool> {
        let password = password.clone();
        let known = hash.map(str::to_owned);
        self.run(move || {
            let hash = match &known {
                Some(h) => h.as_str(),
                None => DUMMY_HASH.get_or_init(|| {
                    Argon2::default()
                        .hash_password(b"not a real password")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                }),
            };
            let parsed = PasswordHash::new(hash)
                .map_err(|e| Error::Internal(format!("stored password hash is invalid: {e}")))?;
            let ok = Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known.is_some())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("password task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail() {
        let h = Hasher::new(2);
        let pw = Password::new("correct horse battery staple");
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(&pw, Some(&hash)).await.unwrap());
        assert!(
            !h.verify(&Password::new("wrong"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(!h.verify(&pw, None).await.unwrap());
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
