//! The client's address: the peer of the connection, or — only when that peer is a trusted
//! proxy — the address the proxies recorded in `Forwarded` (RFC 7239) or `X-Forwarded-For`;
//! and the network the per-address limits count it by.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The network the limits kept per client address count `client` by: an IPv4 address alone
/// (also written IPv4-mapped, `::ffff:192.0.2.1`, as a dual-stack listener sees it), an IPv6
/// address with every address of its `/ipv6_prefix`, which one subscriber may rotate through at
/// will ([`crate::AuthConfig::ipv6_limit_prefix`]).
pub(crate) fn limit_network(client: IpAddr, ipv6_prefix: u8) -> IpNet {
    match client.to_canonical() {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => {
            IpNet::V6(Ipv6Net::new(v6, ipv6_prefix).map_or(Ipv6Net::from(v6), |net| net.trunc()))
        }
    }
}

/// The client address of a request whose connection comes from `peer`.
///
/// When `peer` is in `trusted`, the forwarded chain is read from the right (the hop nearest to
/// this server) and the first address that is not a trusted proxy is the client; a chain of
/// trusted proxies only gives its leftmost address. An entry that is no address (`unknown`, an
/// obfuscated name, garbage) ends the walk: the last trusted hop is then the client, since
/// nothing left of it can be trusted. Headers from an untrusted peer are ignored. IPv4-mapped
/// IPv6 addresses are taken as the IPv4 addresses they are, so that a trusted `10.0.0.0/8` is
/// recognized behind a dual-stack listener too.
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        let Some(ip) = hop.map(|ip| ip.to_canonical()) else {
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
        // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
        let mapped = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            client_addr(ip("::ffff:10.0.0.1"), &mapped, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_prefix_and_mapped_ipv4_by_its_address() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(
            limit_network(ip("2001:db8:1:2:aaaa::1"), 64),
            net("2001:db8:1:2::/64")
        );
        assert_eq!(
            limit_network(ip("2001:db8:1:2:aaaa::1"), 48),
            net("2001:db8:1::/48")
        );
        assert_eq!(
            limit_network(ip("2001:db8:1:2:aaaa::1"), 128),
            net("2001:db8:1:2:aaaa::1/128")
        );
        assert_eq!(limit_network(ip("192.0.2.1"), 64), net("192.0.2.1/32"));
        assert_eq!(
            limit_network(ip("::ffff:192.0.2.1"), 64),
            net("192.0.2.1/32")
        );
    }
}
