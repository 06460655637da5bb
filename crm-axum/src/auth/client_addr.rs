//! The client's address: the peer of the connection, or — only when that peer is a trusted
//! proxy — the address the proxies recorded in `Forwarded` (RFC 7239) or `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use ipnet::IpNet;

/// The client address of a request whose connection comes from `peer`.
///
/// When `peer` is in `trusted`, the forwarded chain is read from the right (the hop nearest to
/// this server) and the first address that is not a trusted proxy is the client; a chain of
/// trusted proxies only gives its leftmost address. An entry that is no address (`unknown`, an
/// obfuscated name, garbage) ends the walk: the last trusted hop is then the client, since
/// nothing left of it can be trusted. Headers from an untrusted peer are ignored.
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        let Some(ip) = hop else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// The forwarded addresses, leftmost (the original client) first: from `Forwarded` when the
/// request has it, else from `X-Forwarded-For`. `None` stands for an entry that is no address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded = values(FORWARDED.as_str());
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
            })
            .collect();
    }
    values("x-forwarded-for")
        .into_iter()
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.5, 10.1.1.1")]);
        // From the proxy: the first untrusted hop from the right (the client may forge the rest).
        assert_eq!(
            client_addr(ip("10.0.0.1"), &xff, &trusted),
            ip("203.0.113.5")
        );
        // From anyone else: the header is theirs to forge, so the peer counts.
        assert_eq!(
            client_addr(ip("192.0.2.9"), &xff, &trusted),
            ip("192.0.2.9")
        );
        let fwd = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
            ),
            ("x-forwarded-for", "203.0.113.99"),
        ]);
        assert_eq!(
            client_addr(ip("10.0.0.1"), &fwd, &trusted),
            ip("2001:db8::1")
        );
        let hidden = headers(&[("forwarded", "for=203.0.113.1, for=_hidden")]);
        assert_eq!(
            client_addr(ip("10.0.0.1"), &hidden, &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_addr(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
