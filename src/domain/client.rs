//! Who is on the other end: the client's address behind trusted reverse
//! proxies, whether such a proxy says the request came over HTTPS, and the
//! key every per-address limit counts under.
//!
//! `X-Forwarded-For` is read only when the TCP peer is one of the trusted
//! proxies (`TOKENVAULT_TRUSTED_PROXIES`); anyone else can write anything in
//! it. The chain is walked from the right (the entry the nearest proxy
//! appended) past every trusted proxy; the first address that is not one is
//! the client. An entry that is not an address stops the walk: what lies to
//! its left was written by someone we do not trust, so the client is the
//! last trusted hop reached. Only the right-most [`MAX_HOPS`] entries are
//! ever looked at, so an overlong header costs nothing and changes nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// Right-most `X-Forwarded-For` entries considered at most.
pub const MAX_HOPS: usize = 16;

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies (IPv4-mapped IPv6
    /// addresses are matched as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted (the header is never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For`
    /// header values in the order they came.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let entries = forwarded_for
            .rev()
            .flat_map(|value| value.rsplit(|b| *b == b','))
            .take(MAX_HOPS);
        for entry in entries {
            let Some(hop) = parse_hop(entry) else {
                // Garbage: nothing to its left can be believed.
                return client;
            };
            client = hop;
            if !self.contains(hop) {
                return hop;
            }
        }
        client
    }

    /// Whether a trusted `peer` says the request reached it over HTTPS: the
    /// right-most `X-Forwarded-Proto` entry (what the nearest proxy wrote),
    /// else the `proto=` of the right-most `Forwarded` element. From a peer
    /// that is not a trusted proxy both headers are ignored: anyone can
    /// write them. A wrong `https` only ever makes a cookie `Secure`.
    pub fn forwarded_https<'a>(
        &self,
        peer: IpAddr,
        forwarded_proto: impl DoubleEndedIterator<Item = &'a [u8]>,
        forwarded: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> bool {
        if !self.contains(peer) {
            return false;
        }
        let last = |values: &mut dyn DoubleEndedIterator<Item = &'a [u8]>| {
            values
                .next_back()
                .and_then(|v| v.rsplit(|b| *b == b',').next())
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::trim)
        };
        let mut proto = forwarded_proto;
        if let Some(proto) = last(&mut proto) {
            return proto.eq_ignore_ascii_case("https");
        }
        let mut forwarded = forwarded;
        last(&mut forwarded).is_some_and(|element| {
            element.split(';').any(|pair| {
                pair.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("proto")
                        && value.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        })
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`); `None` for anything else.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs (`10.0.0.0/8`) or single addresses
    /// (`192.0.2.7`, meaning /32 or /128); empty for none.
    fn from_str(value: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "{part:?} is not a CIDR such as 10.0.0.0/8 or an address (TOKENVAULT_TRUSTED_PROXIES)"
                    )
                })?;
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// The key every per-address limit counts under: an IPv4 address, or the
/// /64 of an IPv6 address (one subscriber usually holds a whole /64, so
/// counting single IPv6 addresses would give each caller 2^64 budgets).
/// IPv4-mapped IPv6 addresses count as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for ThrottleKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6(prefix64(v6)),
        }
    }
}

fn prefix64(ip: Ipv6Addr) -> u64 {
    u64::try_from(ip.to_bits() >> 64).unwrap_or(u64::MAX)
}

impl fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(ip) => write!(f, "{ip}"),
            Self::V6(prefix) => {
                let ip = Ipv6Addr::from_bits(u128::from(*prefix) << 64);
                write!(f, "{ip}/64")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    fn client(trusted: &str, peer: &str, headers: &[&str]) -> IpAddr {
        proxies(trusted).client(ip(peer), headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn parses_cidrs_and_addresses() {
        let p = proxies(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,");
        assert!(p.contains(ip("10.1.2.3")));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert!(p.contains(ip("2001:db8:1::5")));
        assert!(
            p.contains(ip("::ffff:10.9.9.9")),
            "mapped IPv4 matches IPv4"
        );
        assert_eq!(p.to_string(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32");
        assert!(proxies("").is_empty());
        assert!(proxies(" , ").is_empty());
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/8;rm", "1.2.3"] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(err.contains("TOKENVAULT_TRUSTED_PROXIES"), "{err}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(
            client("", "203.0.113.9", &["198.51.100.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client("10.0.0.0/8", "203.0.113.9", &["198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client() {
        let t = "10.0.0.0/8";
        assert_eq!(client(t, "10.0.0.1", &["198.51.100.1"]), ip("198.51.100.1"));
        // The right-most untrusted entry: a client cannot choose its own
        // address by writing one on the left.
        assert_eq!(
            client(t, "10.0.0.1", &["1.1.1.1, 198.51.100.1, 10.0.0.2"]),
            ip("198.51.100.1")
        );
        // Several header lines are one chain, in order.
        assert_eq!(
            client(t, "10.0.0.1", &["1.1.1.1", "198.51.100.1", "10.0.0.2"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(t, "10.0.0.1", &["[2001:db8::1]:4711"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client(t, "10.0.0.1", &["198.51.100.1:443"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(t, "::ffff:10.0.0.1", &["::ffff:198.51.100.1"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn garbage_falls_back_to_the_last_trusted_hop() {
        let t = "10.0.0.0/8";
        for headers in [
            &[][..],
            &[""][..],
            &["unknown"][..],
            &[" , ,"][..],
            &["\u{0}\u{1}"][..],
            &["198.51.100.1, garbage"][..],
        ] {
            assert_eq!(
                client(t, "10.0.0.1", headers),
                ip("10.0.0.1"),
                "{headers:?}"
            );
        }
        assert_eq!(
            client(t, "10.0.0.1", &["garbage, 10.0.0.3"]),
            ip("10.0.0.3")
        );
        // Only trusted hops: the left-most one reached.
        assert_eq!(
            client(t, "10.0.0.1", &["10.0.0.4, 10.0.0.3"]),
            ip("10.0.0.4")
        );
        let invalid_utf8: &[u8] = &[0xff, 0xfe];
        assert_eq!(
            proxies(t).client(ip("10.0.0.1"), [invalid_utf8].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_overlong_chain_is_read_from_the_right_only() {
        let t = "10.0.0.0/8";
        let long = format!("{}198.51.100.1", "1.2.3.4, ".repeat(10_000));
        assert_eq!(client(t, "10.0.0.1", &[&long]), ip("198.51.100.1"));
        let trusted_hops = vec!["10.0.0.9"; MAX_HOPS + 5].join(",");
        let chain = format!("198.51.100.1, {trusted_hops}");
        assert_eq!(client(t, "10.0.0.1", &[&chain]), ip("10.0.0.9"));
    }

    fn https(trusted: &str, peer: &str, proto: &[&str], forwarded: &[&str]) -> bool {
        proxies(trusted).forwarded_https(
            ip(peer),
            proto.iter().map(|h| h.as_bytes()),
            forwarded.iter().map(|h| h.as_bytes()),
        )
    }

    #[test]
    fn only_a_trusted_proxy_says_https() {
        let t = "10.0.0.0/8";
        assert!(https(t, "10.0.0.1", &["https"], &[]));
        assert!(https(t, "10.0.0.1", &["HTTPS"], &[]));
        assert!(!https(t, "10.0.0.1", &["http"], &[]));
        assert!(!https(t, "10.0.0.1", &[], &[]));
        // The nearest proxy's word counts, not what the client wrote first.
        assert!(!https(t, "10.0.0.1", &["https, http"], &[]));
        assert!(https(t, "10.0.0.1", &["http", "https"], &[]));
        assert!(https(t, "10.0.0.1", &[], &["for=192.0.2.1;proto=https"]));
        assert!(https(
            t,
            "10.0.0.1",
            &[],
            &["for=1.2.3.4, for=192.0.2.1; Proto=\"https\""]
        ));
        assert!(!https(
            t,
            "10.0.0.1",
            &[],
            &["proto=https, for=192.0.2.1;proto=http"]
        ));
        assert!(!https(t, "10.0.0.1", &[], &["for=192.0.2.1"]));
        // X-Forwarded-Proto first when both are sent.
        assert!(!https(t, "10.0.0.1", &["http"], &["proto=https"]));
        // Anyone else: ignored.
        assert!(!https(t, "203.0.113.9", &["https"], &["proto=https"]));
        assert!(!https("", "10.0.0.1", &["https"], &["proto=https"]));
        assert!(https(t, "::ffff:10.0.0.1", &["https"], &[]));
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a = ThrottleKey::from(ip("2001:db8:1:2:aaaa::1"));
        let b = ThrottleKey::from(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let other = ThrottleKey::from(ip("2001:db8:1:3::1"));
        assert_eq!(a, b, "one /64, one key");
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let v4 = ThrottleKey::from(ip("192.0.2.1"));
        assert_eq!(ThrottleKey::from(ip("::ffff:192.0.2.1")), v4);
        assert_ne!(ThrottleKey::from(ip("192.0.2.2")), v4);
        assert_eq!(v4.to_string(), "192.0.2.1");
    }
}
