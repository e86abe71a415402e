//! The JS-SDK page signature (`docs/WECHAT.md`, "Tickets"): which page URLs
//! can be signed, and the signature itself.

use sha1::{Digest as _, Sha1};

use super::FieldError;

/// The longest page URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A page URL fit to sign: absolute `http`/`https`, printable ASCII without
/// spaces, no `#` fragment (WeChat signs the URL without it; the page must
/// send `location.href.split('#')[0]`), at most [`MAX_URL_LEN`] characters.
/// It is signed exactly as given.
pub fn parse_page_url(raw: &str) -> Result<String, FieldError> {
    let bad = |code, message: &str| Err(FieldError::new("url", code, message));
    if raw.is_empty() {
        return bad("required", "the page URL is required");
    }
    if raw.len() > MAX_URL_LEN {
        return bad("too_long", "the page URL is longer than 2048 characters");
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return bad(
            "invalid_characters",
            "the page URL has spaces, control or non-ASCII characters: send it percent-encoded, \
             exactly as the browser's location.href shows it",
        );
    }
    if raw.contains('#') {
        return bad(
            "fragment",
            "the page URL has a #fragment: WeChat signs the URL without it, so send \
             location.href.split('#')[0]",
        );
    }
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(raw.to_string())
        }
        _ => bad(
            "invalid_url",
            "the page URL must be an absolute http:// or https:// URL",
        ),
    }
}

/// `sha1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…")` in lowercase hex.
pub fn signature(ticket: &str, noncestr: &str, timestamp: i64, url: &str) -> String {
    let text = format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_example_signs_as_wechat_says() {
        // WeChat's JS-SDK documentation, appendix 1 (signature algorithm).
        let ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        assert_eq!(
            signature(
                ticket,
                "Wm3WZYTPz0wzccnW",
                1_414_587_457,
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }

    #[test]
    fn page_urls() {
        for good in [
            "https://example.com/page?a=1&b=%E4%B8%AD",
            "http://mp.weixin.qq.com?params=value",
        ] {
            assert_eq!(parse_page_url(good).unwrap(), good);
        }
        for (bad, code) in [
            ("", "required"),
            ("https://example.com/#/home", "fragment"),
            ("https://example.com/a b", "invalid_characters"),
            ("https://example.com/中文", "invalid_characters"),
            ("ftp://example.com/", "invalid_url"),
            ("/relative/page", "invalid_url"),
            ("javascript:alert(1)", "invalid_url"),
        ] {
            assert_eq!(parse_page_url(bad).unwrap_err().code, code, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse_page_url(&long).unwrap_err().code, "too_long");
    }
}
