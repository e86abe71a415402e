//! Settings about how tokenvault is reached and what it reaches: the public
//! URL (which decides `Secure` cookies and HSTS), and whether a WeChat API
//! base in clear text is allowed.

use std::net::IpAddr;

use url::Url;

/// `TOKENVAULT_PUBLIC_URL`: an `http://` or `https://` URL without query or
/// fragment.
pub fn parse_public_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| {
        format!("expected the URL users reach tokenvault at, such as https://vault.example.com ({e}) (TOKENVAULT_PUBLIC_URL)")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL (TOKENVAULT_PUBLIC_URL)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("expected a URL without query or fragment (TOKENVAULT_PUBLIC_URL)".into());
    }
    Ok(url)
}

/// Whether `base` (an `http://` or `https://` URL) is one tokenvault may
/// send appsecrets to: any `https://` URL, an `http://` one only on a
/// loopback address (the simulator on this machine), unless `insecure` (the
/// explicit `TOKENVAULT_INSECURE_UPSTREAM`).
pub fn check_upstream(base: &str, insecure: bool) -> Result<(), String> {
    check_upstream_named("TOKENVAULT_WECHAT_API_BASE", base, insecure)
}

/// [`check_upstream`] for the setting `name` (each provider's API base:
/// `TOKENVAULT_WECHAT_API_BASE`, `TOKENVAULT_WECOM_API_BASE`).
pub fn check_upstream_named(name: &str, base: &str, insecure: bool) -> Result<(), String> {
    let Some(rest) = base.strip_prefix("http://") else {
        return Ok(());
    };
    if insecure || is_loopback(rest) {
        return Ok(());
    }
    Err(format!(
        "{name} ({base}) is http://: the app's secret would cross the network \
         in clear text. Use https://, a loopback address, or set TOKENVAULT_INSECURE_UPSTREAM=true \
         (--insecure-upstream) for a simulator on another machine"
    ))
}

/// `url` with its passwords masked: the one in the user information
/// (`user:***@host`) and any `password` or `sslpassword` parameter
/// (`?password=***`).
pub fn mask_database_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut masked = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_string(),
            },
            None => base.to_string(),
        },
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _))
                    if name.eq_ignore_ascii_case("password")
                        || name.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{name}=***")
                }
                _ => param.to_string(),
            })
            .collect();
        masked.push('?');
        masked.push_str(&params.join("&"));
    }
    masked
}

/// Whether the authority at the start of `rest` (after `http://`) is
/// `localhost` or a loopback address.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_text_upstreams_are_refused_unless_loopback_or_allowed() {
        for ok in [
            "https://api.weixin.qq.com",
            "http://127.0.0.1:9100",
            "http://localhost:9100/x",
            "http://[::1]:9100",
            "http://127.0.0.2",
        ] {
            assert_eq!(check_upstream(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://api.weixin.qq.com",
            "http://10.0.0.5:9100",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1@evil.example",
        ] {
            let err = check_upstream(bad, false).unwrap_err();
            assert!(err.contains("TOKENVAULT_INSECURE_UPSTREAM"), "{err}");
            assert_eq!(check_upstream(bad, true), Ok(()), "{bad}");
        }
    }

    #[test]
    fn database_passwords_are_masked_in_the_user_info_and_the_query() {
        for (url, shown) in [
            ("postgres://u:hunter2@db/x", "postgres://u:***@db/x"),
            (
                "postgres://u@db/x?sslmode=verify-full&password=hunter2",
                "postgres://u@db/x?sslmode=verify-full&password=***",
            ),
            (
                "postgres://db/x?PassWord=hunter2&sslpassword=hunter2",
                "postgres://db/x?PassWord=***&sslpassword=***",
            ),
            (
                "postgres://u:p@ss@db/x?password=a@b",
                "postgres://u:***@db/x?password=***",
            ),
        ] {
            assert_eq!(mask_database_url(url), shown);
            assert!(!mask_database_url(url).contains("hunter2"));
        }
    }

    #[test]
    fn public_urls_are_http_or_https_without_query() {
        assert!(parse_public_url("https://vault.example.com").is_ok());
        assert!(parse_public_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://x.example",
            "https://x.example/?a=1",
            "vault.example.com",
            "https://x.example/#f",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }
}
