//! Where alerts may be sent: the URL rules, and the address rules that keep
//! a channel from reaching into the network tokenvault runs in (checked
//! when a channel is created and again, with a fresh DNS answer, at every
//! delivery; the delivery then connects to the address that was checked).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

use crate::domain::{ChannelKind, FieldError};

/// Longest target URL.
pub const MAX_URL_LEN: usize = 2048;

/// A target URL that passed the URL rules (not yet the address rules).
#[derive(Debug, Clone)]
pub struct TargetUrl {
    /// The parsed URL.
    pub url: Url,
    /// Its host name or address, as written.
    pub host: String,
    /// Its port (the scheme's default when not written).
    pub port: u16,
}

/// Check the URL rules: `http` or `https`, a host, no user name or
/// password, port 80, 443 or above 1023, at most [`MAX_URL_LEN`] bytes.
pub fn parse_url(raw: &str) -> Result<TargetUrl, FieldError> {
    let bad = |code, message: &str| Err(FieldError::new("url", code, message.to_string()));
    let raw = raw.trim();
    if raw.is_empty() {
        return bad("required", "url is required");
    }
    if raw.len() > MAX_URL_LEN {
        return bad("too_long", "url must be at most 2048 characters");
    }
    let Ok(url) = Url::parse(raw) else {
        return bad("invalid_url", "url must be an absolute http(s) URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return bad(
            "invalid_scheme",
            "url must start with https:// (or http://)",
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad(
            "credentials_in_url",
            "url must not contain a user name or password; use the signing secret instead",
        );
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return bad("invalid_url", "url must name a host");
    };
    let Some(port) = url.port_or_known_default() else {
        return bad("invalid_url", "url must name a port");
    };
    if !(port == 80 || port == 443 || port >= 1024) {
        return bad("invalid_port", "url's port must be 80, 443 or above 1023");
    }
    Ok(TargetUrl { url, host, port })
}

/// The URL with query values and, for Feishu, the hook token masked: a
/// robot's URL is its credential.
pub fn masked(kind: ChannelKind, url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "***".into();
    };
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, _)| (k.into_owned(), "***".to_string()))
        .collect();
    if pairs.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if kind == ChannelKind::Feishu {
        let path = parsed.path().to_string();
        if let Some((head, _)) = path.rsplit_once('/') {
            parsed.set_path(&format!("{head}/***"));
        }
    }
    parsed.to_string().replace("%2A%2A%2A", "***")
}

/// Whether `ip` is an address alerts must not reach by default: loopback,
/// private, link-local (which holds the cloud metadata service),
/// unique-local, shared (carrier-grade NAT), unspecified, broadcast,
/// multicast, documentation, or an IPv6 form of one of those.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0)
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b
}

/// Why a target's address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// The name does not resolve.
    Unresolvable,
    /// It resolves to (or is) an address alerts must not reach.
    Forbidden(IpAddr),
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unresolvable => f.write_str("the host name does not resolve"),
            Self::Forbidden(ip) => write!(
                f,
                "the host is (or resolves to) {ip}, a loopback, private, link-local or metadata \
                 address; alerts go there only with TOKENVAULT_ALERTS_ALLOW_PRIVATE_TARGETS=true"
            ),
        }
    }
}

/// The address to connect to for `target`: resolved now, every answer
/// checked (one forbidden answer refuses the name) unless `allow_private`.
pub async fn resolve(target: &TargetUrl, allow_private: bool) -> Result<SocketAddr, AddressError> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, target.port)]
    } else {
        tokio::net::lookup_host((host, target.port))
            .await
            .map_err(|_| AddressError::Unresolvable)?
            .collect()
    };
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(AddressError::Forbidden(bad.ip()));
    }
    addrs.first().copied().ok_or(AddressError::Unresolvable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(parse_url("https://example.com/hook").is_ok());
        assert!(parse_url("http://example.com:8080/hook").is_ok());
        for (raw, code) in [
            ("", "required"),
            ("ftp://example.com/", "invalid_scheme"),
            ("file:///etc/passwd", "invalid_scheme"),
            ("https://user:pw@example.com/", "credentials_in_url"),
            ("https://example.com:22/", "invalid_port"),
            ("not a url", "invalid_url"),
        ] {
            assert_eq!(parse_url(raw).unwrap_err().code, code, "{raw}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse_url(&long).unwrap_err().code, "too_long");
    }

    #[test]
    fn robot_credentials_are_masked() {
        assert_eq!(
            masked(
                ChannelKind::Wecom,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123"
            ),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
        );
        assert_eq!(
            masked(
                ChannelKind::Feishu,
                "https://open.feishu.cn/open-apis/bot/v2/hook/0b1c2d"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/***"
        );
        assert_eq!(
            masked(ChannelKind::Webhook, "https://example.com/hook"),
            "https://example.com/hook"
        );
    }

    #[test]
    fn address_rules() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in ["8.8.8.8", "203.119.1.1", "2400:3200::1"] {
            assert!(!is_forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn names_and_literals_are_checked() {
        let local = parse_url("http://localhost:8080/").unwrap();
        assert!(matches!(
            resolve(&local, false).await,
            Err(AddressError::Forbidden(_))
        ));
        assert!(resolve(&local, true).await.is_ok());
        let literal = parse_url("http://[::1]:8080/").unwrap();
        assert!(matches!(
            resolve(&literal, false).await,
            Err(AddressError::Forbidden(_))
        ));
    }
}
