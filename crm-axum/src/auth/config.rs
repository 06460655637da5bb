//! [`AuthConfig`]: how tokens are signed and checked, and the limits of the auth routes.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// Why an [`AuthConfig`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An HS256 secret shorter than 32 bytes (RFC 7518 §3.2 asks for at least the hash size).
    #[error("the JWT secret must be at least 32 bytes")]
    WeakSecret,
    /// A trusted proxy that is neither an IP address nor a network (`10.0.0.0/8`).
    #[error("not an IP address or network: `{0}`")]
    InvalidProxy(String),
    /// A Redis URL that does not parse (`redis://[:password@]host[:port][/db]`).
    #[cfg(feature = "redis")]
    #[error("not a Redis URL: {0}")]
    InvalidRedisUrl(String),
    /// A switch that is neither `on` nor `off`.
    #[error("{0} is `on` or `off`, not `{1}`")]
    InvalidSwitch(&'static str, String),
    /// An IPv6 prefix length that is not a number from 1 to 128.
    #[error("the IPv6 prefix length is a number from 1 to 128, not `{0}`")]
    InvalidPrefixLength(String),
}

/// The environment variable [`AuthConfig::registration_from_env`] reads: `on` (the default) or
/// `off`.
pub const REGISTRATION_ENV: &str = "CRM_REGISTRATION";

/// The environment variable [`AuthConfig::trusted_proxies_from_env`] reads: comma-separated
/// addresses or networks of the reverse proxies whose `Forwarded` / `X-Forwarded-For` headers
/// name the client.
pub const TRUSTED_PROXIES_ENV: &str = "CRM_TRUSTED_PROXIES";

/// The environment variable [`AuthConfig::ipv6_limit_prefix_from_env`] reads: the prefix length
/// (1–128) by which IPv6 clients are counted in the per-address limits.
pub const IPV6_LIMIT_PREFIX_ENV: &str = "CRM_IPV6_LIMIT_PREFIX";

/// The environment variable [`AuthConfig::redis_url_from_env`] reads: the Redis server the
/// instances of one deployment share their rate limits through.
#[cfg(feature = "redis")]
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// How access tokens (JWTs) are signed and verified, and the auth routes' settings.
///
/// ```
/// use std::time::Duration;
/// let auth = crm_axum::AuthConfig::hs256(b"a secret of at least thirty-two bytes!!")
///     .unwrap()
///     .issuer("https://crm.example.com")
///     .access_ttl(Duration::from_secs(600))
///     .registration(false);
/// # let _ = auth;
/// ```
#[derive(Clone)]
pub struct AuthConfig {
    pub(crate) algorithm: Algorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) kid: Option<String>,
    pub(crate) previous_keys: Vec<(String, DecodingKey)>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) refresh_family_lifetime: Duration,
    pub(crate) registration: bool,
    pub(crate) principal_cache_ttl: Duration,
    pub(crate) idempotency_ttl: Duration,
    pub(crate) body_limit: usize,
    pub(crate) login_attempts_per_account: u32,
    pub(crate) login_attempts_per_address: u32,
    pub(crate) login_window: Duration,
    pub(crate) signups_per_address: u32,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) ipv6_limit_prefix: u8,
    pub(crate) webhook_posts_per_minute: u32,
    #[cfg(feature = "redis")]
    pub(crate) redis_url: Option<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("refresh_family_lifetime", &self.refresh_family_lifetime)
            .field("registration", &self.registration)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ipv6_limit_prefix", &self.ipv6_limit_prefix)
            .field("shared_limits", &self.shares_limits())
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// HS256 with a shared secret (at least 32 bytes), the default.
    ///
    /// # Errors
    /// [`ConfigError::WeakSecret`] for a shorter secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::WeakSecret);
        }
        Ok(Self::with_keys(
            Algorithm::HS256,
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
        ))
    }

    /// RS256 from a DER private key (PKCS#1) and a DER public key; `kid` names the key in
    /// token headers and is required of incoming tokens.
    pub fn rs256_der(private: &[u8], public: &[u8], kid: &str) -> Self {
        Self::with_keys(
            Algorithm::RS256,
            EncodingKey::from_rsa_der(private),
            DecodingKey::from_rsa_der(public),
        )
        .kid(kid)
    }

    /// EdDSA (Ed25519) from a DER private key (PKCS#8) and the raw public key; `kid` names
    /// the key.
    pub fn eddsa_der(private: &[u8], public: &[u8], kid: &str) -> Self {
        Self::with_keys(
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(private),
            DecodingKey::from_ed_der(public),
        )
        .kid(kid)
    }

    fn with_keys(algorithm: Algorithm, encoding: EncodingKey, decoding: DecodingKey) -> Self {
        Self {
            algorithm,
            encoding,
            decoding,
            kid: None,
            previous_keys: Vec::new(),
            issuer: "abetworks-crm".into(),
            audience: "abetworks-crm".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_family_lifetime: Duration::from_secs(90 * 24 * 3600),
            registration: true,
            principal_cache_ttl: Duration::from_secs(30),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            body_limit: 1024 * 1024,
            login_attempts_per_account: 5,
            login_attempts_per_address: 30,
            login_window: Duration::from_secs(15 * 60),
            signups_per_address: 10,
            trusted_proxies: Vec::new(),
            ipv6_limit_prefix: 64,
            webhook_posts_per_minute: 60,
            #[cfg(feature = "redis")]
            redis_url: None,
        }
    }

    /// The key id put into token headers (and required of incoming tokens).
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// During a key rotation, also accepts tokens whose header names `kid` and that are signed
    /// with that older key, with the same algorithm: for HS256 the old secret, for RS256 its DER
    /// public key, for EdDSA its raw public key. New tokens are always signed with the current
    /// key; drop the old one once its tokens have expired (the access TTL).
    pub fn accept_previous_key(mut self, kid: &str, key: &[u8]) -> Self {
        let key = match self.algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_der(key),
            Algorithm::EdDSA => DecodingKey::from_ed_der(key),
            _ => DecodingKey::from_secret(key),
        };
        self.previous_keys.push((kid.to_owned(), key));
        self
    }

    /// The `iss` claim issued and required (default `abetworks-crm`).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = issuer.to_owned();
        self
    }

    /// The `aud` claim issued and required (default `abetworks-crm`).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = audience.to_owned();
        self
    }

    /// Lifetime of access tokens (default 15 minutes).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Lifetime of refresh tokens (default 30 days).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// The absolute lifetime of a refresh-token family (default 90 days): however often its
    /// tokens are rotated, a sign-in is over this long after it happened, and the user signs in
    /// again. Each refresh token also expires [`AuthConfig::refresh_ttl`] after it is issued.
    pub fn refresh_family_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_family_lifetime = lifetime;
        self
    }

    /// Whether `POST /auth/register` creates organizations (default `true`).
    pub fn registration(mut self, enabled: bool) -> Self {
        self.registration = enabled;
        self
    }

    /// How long a user's "active, organization not suspended, role" check, and an API key's
    /// verification, are reused (default 30 s). It is also the longest a deactivation, a
    /// suspension or a key revoked by another process takes to refuse a credential — unless the
    /// processes share Redis (`AuthConfig::redis_url`, feature `redis`) and the change went
    /// through the API,
    /// which ends the reuse at once everywhere; `Duration::ZERO` checks on every request (one
    /// more query each).
    pub fn principal_cache_ttl(mut self, ttl: Duration) -> Self {
        self.principal_cache_ttl = ttl;
        self
    }

    /// How long an `Idempotency-Key` is remembered (default 24 hours).
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// Largest request body in bytes (default 1 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sign-in limits (defaults 5, 30 and 15 minutes):
    ///
    /// - `per_account`: failed attempts at one account *from one client address* before that
    ///   pair backs off (1 s, doubling with each further failure, at most `window`; forgotten
    ///   after a success or two quiet windows). Another address, such as the owner's, is not
    ///   affected;
    /// - `per_address`: sign-in attempts from one client address in each `window`, whatever
    ///   the account.
    ///
    /// A refused attempt answers 429 with the real remaining wait in `Retry-After`.
    pub fn login_limits(mut self, per_account: u32, per_address: u32, window: Duration) -> Self {
        self.login_attempts_per_account = per_account;
        self.login_attempts_per_address = per_address;
        self.login_window = window;
        self
    }

    /// Sign-ups (`auth/register`) allowed per client address in each sign-in window (default
    /// 10): a budget of their own, so that signing up does not spend the sign-in budget.
    pub fn signup_limit(mut self, per_address: u32) -> Self {
        self.signups_per_address = per_address;
        self
    }

    /// The reverse proxies (addresses or networks) trusted to name the client in `Forwarded`
    /// (RFC 7239) or `X-Forwarded-For`; default none. Only a request whose connection comes
    /// from one of them is read that way, from the right, skipping trusted hops: anything else
    /// could forge its address and escape the per-address limits.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// [`AuthConfig::trusted_proxies`] from [`TRUSTED_PROXIES_ENV`] (`CRM_TRUSTED_PROXIES`,
    /// e.g. `10.0.0.0/8, 192.0.2.7`), unchanged when it is unset.
    ///
    /// # Errors
    /// [`ConfigError::InvalidProxy`] for an entry that is no address or network.
    pub fn trusted_proxies_from_env(self) -> Result<Self, ConfigError> {
        let Ok(list) = std::env::var(TRUSTED_PROXIES_ENV) else {
            return Ok(self);
        };
        let proxies = list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::InvalidProxy(p.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.trusted_proxies(proxies))
    }

    /// The prefix length by which IPv6 clients are counted in every limit kept per client
    /// address (default 64, at most 128). One subscriber, or one server, is given a whole /64 (or
    /// more) and may take any address in it: counted one by one, its addresses would each get a
    /// budget of their own. IPv4 clients are counted by their address, also when they reach an
    /// IPv6 listener as IPv4-mapped addresses (`::ffff:192.0.2.1`).
    pub fn ipv6_limit_prefix(mut self, len: u8) -> Self {
        self.ipv6_limit_prefix = len.clamp(1, 128);
        self
    }

    /// [`AuthConfig::ipv6_limit_prefix`] from [`IPV6_LIMIT_PREFIX_ENV`]
    /// (`CRM_IPV6_LIMIT_PREFIX`, e.g. `56`), unchanged when it is unset or empty.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrefixLength`] for anything but a number from 1 to 128.
    pub fn ipv6_limit_prefix_from_env(self) -> Result<Self, ConfigError> {
        match std::env::var(IPV6_LIMIT_PREFIX_ENV).as_deref() {
            Err(_) | Ok("") => Ok(self),
            Ok(value) => Ok(self.ipv6_limit_prefix(prefix_length(value)?)),
        }
    }

    /// [`AuthConfig::registration`] from [`REGISTRATION_ENV`] (`CRM_REGISTRATION=off` switches
    /// sign-up off), unchanged when it is unset.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSwitch`] for a value other than `on` or `off`.
    pub fn registration_from_env(self) -> Result<Self, ConfigError> {
        match std::env::var(REGISTRATION_ENV).as_deref() {
            Err(_) | Ok("") => Ok(self),
            Ok("on") => Ok(self.registration(true)),
            Ok("off") => Ok(self.registration(false)),
            Ok(other) => Err(ConfigError::InvalidSwitch(
                REGISTRATION_ENV,
                other.to_owned(),
            )),
        }
    }

    /// Form posts allowed per API key per minute on `webhooks/forms` (default 60).
    pub fn webhook_posts_per_minute(mut self, n: u32) -> Self {
        self.webhook_posts_per_minute = n;
        self
    }

    /// Shares state with the other instances configured with the Redis server at `url`
    /// (`redis://[:password@]host[:port][/db]`): the rate limits (sign-in per account and per
    /// address, sign-up per address, web forms per key) spend one budget, and a cache epoch
    /// makes a user's deactivation or role change, a key's revocation or a custom-field change
    /// made through the API of any of them refuse or apply on all of them once it has returned.
    /// While Redis does not answer (each call waits at most 250 ms, and a failure pauses the
    /// calls for a second) limits count in process and nothing cached is used; Redis is used
    /// again once it answers. The change is logged once each way.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] for a URL that does not parse.
    #[cfg(feature = "redis")]
    pub fn redis_url(mut self, url: &str) -> Result<Self, ConfigError> {
        use bb8_redis::redis::IntoConnectionInfo as _;
        url.into_connection_info()
            .map_err(|e| ConfigError::InvalidRedisUrl(e.to_string()))?;
        self.redis_url = Some(url.to_owned());
        Ok(self)
    }

    /// [`AuthConfig::redis_url`] from [`REDIS_URL_ENV`], unchanged when it is unset or empty.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedisUrl`] for a URL that does not parse.
    #[cfg(feature = "redis")]
    pub fn redis_url_from_env(self) -> Result<Self, ConfigError> {
        match std::env::var(REDIS_URL_ENV) {
            Ok(url) if !url.is_empty() => self.redis_url(&url),
            _ => Ok(self),
        }
    }

    /// Whether the Redis server of [`AuthConfig::redis_url`] answers now (a `PING` within a
    /// second). Binaries call it at start, so that a wrong address or a Redis that is down is
    /// said then rather than found at the first request; serving goes on either way (limits
    /// count in process until Redis answers). `Ok` when no Redis is configured.
    ///
    /// # Errors
    /// What went wrong, in words: the connection failed, or no answer came in time.
    #[cfg(feature = "redis")]
    pub async fn check_redis(&self) -> Result<(), String> {
        use bb8_redis::redis;
        let Some(url) = self.redis_url.as_deref() else {
            return Ok(());
        };
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let call = async {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(1), call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("no answer within a second".to_owned()),
        }
    }

    /// Whether the rate limits and cache epoch are shared through Redis (when it answers).
    pub fn shares_limits(&self) -> bool {
        #[cfg(feature = "redis")]
        let shared = self.redis_url.is_some();
        #[cfg(not(feature = "redis"))]
        let shared = false;
        shared
    }
}

/// A prefix length of an IPv6 network, 1 to 128.
fn prefix_length(value: &str) -> Result<u8, ConfigError> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|len| (1..=128).contains(len))
        .ok_or_else(|| ConfigError::InvalidPrefixLength(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lengths_are_1_to_128() {
        assert_eq!(prefix_length("64").ok(), Some(64));
        assert_eq!(prefix_length(" 128 ").ok(), Some(128));
        for bad in ["0", "129", "/64", "sixty-four", "-1"] {
            assert!(prefix_length(bad).is_err(), "{bad}");
        }
    }
}
