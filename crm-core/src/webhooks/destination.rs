//! Where a webhook may go: `https` URLs to public addresses, unless the operator allows more
//! ([`WebhookPolicy`]). Checked when a subscription is saved and again at every delivery, on
//! the addresses the name resolves to then, and the connection goes to an address that passed
//! (no second lookup a rebinding DNS server could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// The operator's settings for outbound webhooks.
///
/// ```
/// use crm_core::WebhookPolicy;
/// // Development against a receiver on this machine.
/// let policy = WebhookPolicy { allow_http: true, allow_private_networks: true };
/// assert!(!WebhookPolicy::default().allow_http);
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Allow `http://` URLs (`CRM_WEBHOOK_ALLOW_HTTP`); by default only `https://`.
    pub allow_http: bool,
    /// Allow loopback, private, link-local and other non-public addresses
    /// (`CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS`); by default they are refused, so that a
    /// subscription cannot reach the operator's internal services (SSRF).
    pub allow_private_networks: bool,
}

/// The variable of [`WebhookPolicy::allow_http`].
const ALLOW_HTTP_ENV: &str = "CRM_WEBHOOK_ALLOW_HTTP";
/// The variable of [`WebhookPolicy::allow_private_networks`].
const ALLOW_PRIVATE_NETWORKS_ENV: &str = "CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS";

impl WebhookPolicy {
    /// The policy `CRM_WEBHOOK_ALLOW_HTTP` and `CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS` set: each
    /// allows its part when set to anything but empty, `0`, `false`, `no`, `n`, `f` or `off`
    /// (as the `crm` command's flags read them).
    pub fn from_env() -> Self {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| is_set(&v));
        Self {
            allow_http: set(ALLOW_HTTP_ENV),
            allow_private_networks: set(ALLOW_PRIVATE_NETWORKS_ENV),
        }
    }
}

/// Whether an environment value switches a flag on (clap's `FalseyValueParser`'s reading).
fn is_set(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    !matches!(v.as_str(), "" | "0" | "false" | "no" | "n" | "f" | "off")
}

/// The longest URL a subscription may have.
pub(crate) const MAX_URL_LEN: usize = 2_000;

/// A checked URL.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]`, for the `Host` header.
    pub(crate) authority: String,
    /// Path and query, for the request line.
    pub(crate) target: String,
}

impl Destination {
    /// `url` if `policy` lets webhooks go there, as far as the text shows (not its addresses:
    /// see [`Destination::addresses`]); otherwise why not.
    pub(crate) fn parse(url: &str, policy: &WebhookPolicy) -> Result<Self, String> {
        if url.len() > MAX_URL_LEN {
            return Err(format!("is longer than {MAX_URL_LEN} characters"));
        }
        // The URL parser drops tabs and line breaks and escapes other controls, so such a URL
        // would parse, and the text stored would not be the URL checked (PostgreSQL cannot store
        // a NUL at all).
        if url.chars().any(char::is_control) {
            return Err("must not contain control characters (such as NUL or a line break)".into());
        }
        let parsed = Url::parse(url).map_err(|_| "is not an absolute http(s) URL".to_owned())?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" if policy.allow_http => false,
            "http" => {
                return Err("must be https (the operator allows http only for development)".into());
            }
            _ => return Err("is not an absolute http(s) URL".into()),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not hold credentials (user:password@)".into());
        }
        let (host, ip) = match parsed.host() {
            Some(Host::Domain(d)) => (d.to_owned(), None),
            Some(Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            None => return Err("has no host".into()),
        };
        if !policy.allow_private_networks {
            if host == "localhost" || host.ends_with(".localhost") {
                return Err("points to this machine (localhost)".into());
            }
            if let Some(ip) = ip
                && !is_public(ip)
            {
                return Err(format!("points to a non-public address ({ip})"));
            }
        }
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let authority = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err("has no host".into()),
        };
        let mut target = parsed.path().to_owned();
        if let Some(q) = parsed.query() {
            target.push('?');
            target.push_str(q);
        }
        Ok(Self {
            https,
            host,
            port,
            authority,
            target,
        })
    }

    /// The addresses to connect to, now: every address the host resolves to must be public
    /// (unless the policy allows private networks), or none is used.
    pub(crate) async fn addresses(
        &self,
        policy: &WebhookPolicy,
    ) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = match self.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("{} resolves to no address", self.host));
        }
        if !policy.allow_private_networks
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            // The address goes to the operator's log only: the error becomes the delivery's
            // `last_error`, which the tenant reads, and an internal name's address is not theirs
            // to learn.
            tracing::info!(host = %self.host, address = %bad.ip(), "a webhook destination resolves to a non-public address: refused");
            return Err(format!(
                "{} resolves to a non-public address: refused",
                self.host
            ));
        }
        Ok(addrs)
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared (CGNAT),
/// multicast, broadcast, unspecified, reserved or documentation, nor an address that hands the
/// packet to a translator or relay (NAT64, 6to4, the 6to4 relay anycast) whose far side may be the
/// operator's own network, nor discard-only. IPv4 mapped into IPv6 (`::ffff:a.b.c.d`, and the old
/// compatible `::a.b.c.d`) is judged as the IPv4 address it carries.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4() {
        // Mapped (::ffff:a.b.c.d) and the old compatible form (::a.b.c.d); `::1` is loopback.
        return !ip.is_loopback() && !ip.is_unspecified() && is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        // NAT64, well-known prefix (64:ff9b::/96, RFC 6052) and local-use (64:ff9b:1::/48,
        // RFC 8215): a translator turns them into IPv4 addresses, possibly the operator's own.
        || (s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1))
        || s[0] == 0x2002 // 6to4 (2002::/16, RFC 3056): relayed to the IPv4 address it carries
        || (s[0] == 0x100 && s[1..4] == [0; 3])) // discard-only (100::/64, RFC 6666)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_flags_read_as_the_cli_reads_them() {
        for on in ["1", "true", "yes", "on", "TRUE", " y "] {
            assert!(is_set(on), "{on}");
        }
        for off in ["", " ", "0", "false", "no", "n", "f", "off", "OFF"] {
            assert!(!is_set(off), "{off:?}");
        }
    }

    const STRICT: WebhookPolicy = WebhookPolicy {
        allow_http: false,
        allow_private_networks: false,
    };

    const PRIVATE: WebhookPolicy = WebhookPolicy {
        allow_http: false,
        allow_private_networks: true,
    };

    #[test]
    fn only_public_addresses_pass() {
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Prefixes that hand the packet to a translator or relay (whose far side may be the
    /// operator's network), or drop it: refused whole, whatever address they carry, unless the
    /// policy allows private networks.
    #[test]
    fn translated_relayed_and_discard_only_addresses_are_not_public() {
        for (range, ips) in [
            (
                "NAT64 64:ff9b::/96",
                &[
                    "64:ff9b::5db8:d822",
                    "64:ff9b::101:101",
                    "64:ff9b::ffff:ffff",
                ][..],
            ),
            (
                "local-use NAT64 64:ff9b:1::/48",
                &["64:ff9b:1::5db8:d822", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"],
            ),
            (
                "6to4 2002::/16",
                &["2002:5db8:d822::1", "2002:a00:1::1", "2002::"],
            ),
            (
                "discard-only 100::/64",
                &["100::", "100::1", "100::ffff:ffff:ffff:ffff"],
            ),
            (
                "6to4 relay anycast 192.88.99.0/24",
                &[
                    "192.88.99.0",
                    "192.88.99.1",
                    "192.88.99.255",
                    "::ffff:192.88.99.1",
                ],
            ),
        ] {
            for ip in ips {
                assert!(!is_public(ip.parse().unwrap()), "{range}: {ip}");
                let url = if ip.contains(':') {
                    format!("https://[{ip}]/in")
                } else {
                    format!("https://{ip}/in")
                };
                let refused = Destination::parse(&url, &STRICT).unwrap_err();
                assert!(refused.contains("non-public"), "{range}: {refused}");
                Destination::parse(&url, &PRIVATE).unwrap();
            }
        }
        // Their neighbours stay public.
        for ip in [
            "64:ff9b:2::1",
            "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
            "2003::1",
            "2001:ffff::1",
            "100:0:0:1::1",
            "192.88.98.1",
            "192.88.100.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_against_the_policy() {
        let ok = Destination::parse("https://hooks.example.com:8443/in?x=1", &STRICT).unwrap();
        assert!(ok.https);
        assert_eq!((ok.host.as_str(), ok.port), ("hooks.example.com", 8443));
        assert_eq!(ok.target, "/in?x=1");
        assert_eq!(ok.authority, "hooks.example.com:8443");
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com/in",
            "https://user:pw@hooks.example.com/",
            "https://localhost/",
            "https://api.localhost/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://hooks.example.com/in\0",
            "https://hooks.example.com/\0in",
            "https://hooks.exam\tple.com/in",
            "https://hooks.example.com/in\r\nX-Injected: 1",
            "https://hooks.example.com/\u{7f}",
            "https://hooks.example.com/\u{85}",
        ] {
            assert!(Destination::parse(bad, &STRICT).is_err(), "{bad}");
        }
        let dev = WebhookPolicy {
            allow_http: true,
            allow_private_networks: true,
        };
        let local = Destination::parse("http://127.0.0.1:9000", &dev).unwrap();
        assert_eq!((local.port, local.target.as_str()), (9000, "/"));
    }

    #[tokio::test]
    async fn addresses_are_checked_when_resolved_and_not_told() {
        let d = Destination::parse("https://localhost:1/", &PRIVATE).unwrap();
        // Allowed by the text only with the private-network setting; resolved under the strict
        // policy (as at delivery after the operator changed it), it is refused.
        let refused = d.addresses(&STRICT).await.unwrap_err();
        assert_eq!(
            refused,
            "localhost resolves to a non-public address: refused"
        );
        // Which address it resolves to is the operator's to know, not the tenant's: the error
        // becomes the delivery's `last_error`.
        let resolved = d.addresses(&PRIVATE).await.unwrap();
        assert!(!resolved.is_empty());
        for a in resolved {
            assert!(!refused.contains(&a.ip().to_string()), "{refused}");
        }
    }
}
