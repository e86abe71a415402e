//! A short readable label for a session's `User-Agent` ("Chrome on
//! Windows"), for the sessions list. Only the family of the browser and of
//! the system, never versions: enough to recognise a session, and the same
//! label for a browser that updates itself.

/// Browser families, tested in this order: several browsers name the ones
/// they are built on (Edge and Opera say `Chrome/`, Chrome says `Safari/`).
const BROWSERS: &[(&str, &str)] = &[
    ("MicroMessenger/", "WeChat"),
    ("wxwork/", "WeCom"),
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Version/", "Safari"),
];

/// Systems, tested in this order (Android says `Linux`, iOS says `Mac OS X`).
const SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// The longest name kept for a client that is not a known browser.
const MAX_PRODUCT: usize = 32;

/// What a `User-Agent` says, in families.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrowserLabel {
    /// The browser or client ("Firefox", "curl"), if it could be told.
    pub browser: Option<String>,
    /// The operating system ("macOS"), if it could be told.
    pub system: Option<String>,
}

impl BrowserLabel {
    /// The label of `user_agent` (none: nothing known).
    pub fn of(user_agent: Option<&str>) -> Self {
        let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
            return Self::default();
        };
        let browser = BROWSERS
            .iter()
            .find(|(mark, _)| ua.contains(mark))
            .map(|(_, name)| (*name).to_string())
            .or_else(|| product(ua));
        let system = SYSTEMS
            .iter()
            .find(|(mark, _)| ua.contains(mark))
            .map(|(_, name)| (*name).to_string());
        Self { browser, system }
    }

    /// In English, as the API answers: "Chrome on Windows", "curl",
    /// "unknown".
    pub fn text(&self) -> String {
        match (&self.browser, &self.system) {
            (Some(b), Some(s)) => format!("{b} on {s}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => "unknown".to_string(),
        }
    }
}

/// The product name of a client that is not a browser (`curl/8.5.0` →
/// `curl`): letters, digits, `-`, `_` and `.`, at most [`MAX_PRODUCT`].
fn product(ua: &str) -> Option<String> {
    if ua.starts_with("Mozilla/") {
        return None;
    }
    let name = ua.split(['/', ' ']).next().unwrap_or_default();
    let ok = !name.is_empty()
        && name.len() <= MAX_PRODUCT
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(ua: &str) -> String {
        BrowserLabel::of(Some(ua)).text()
    }

    #[test]
    fn browsers_are_told_apart_by_family() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "Chrome on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44",
                "WeChat on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            ("curl/8.5.0", "curl"),
            ("python-requests/2.31", "python-requests"),
        ];
        for (ua, want) in cases {
            assert_eq!(label(ua), want, "{ua}");
        }
    }

    #[test]
    fn nothing_known_says_so_and_odd_names_are_not_repeated() {
        assert_eq!(BrowserLabel::of(None).text(), "unknown");
        assert_eq!(BrowserLabel::of(Some("  ")).text(), "unknown");
        assert_eq!(label("<script>alert(1)</script>"), "unknown");
        assert_eq!(label(&"x".repeat(100)), "unknown");
        assert_eq!(label("Mozilla/5.0 (compatible)"), "unknown");
    }
}
