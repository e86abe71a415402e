//! Languages of the web UI: English and Chinese (zh-CN), each a message
//! catalogue in `web/i18n/`, embedded in the binary. The language comes from
//! the `lang` cookie (set by the switch in the header), else from the
//! browser's `Accept-Language`, else English.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::HttpRequest;
use actix_web::http::header;

/// Cookie that remembers the chosen language.
pub const COOKIE: &str = "lang";

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

type Catalogue = BTreeMap<String, String>;

fn load(json: &str) -> Catalogue {
    serde_json::from_str(json).expect("the embedded message catalogue is valid JSON")
}

static EN: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../../web/i18n/en.json")));
static ZH: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../../web/i18n/zh-CN.json")));

impl Lang {
    /// The BCP 47 tag, for `<html lang>` and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    /// Parse a tag as sent in the cookie or the switch link.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "en" || tag.starts_with("en-") {
            Some(Self::En)
        } else if tag == "zh" || tag.starts_with("zh-") {
            Some(Self::Zh)
        } else {
            None
        }
    }

    /// The language of a request: cookie, else `Accept-Language`, else English.
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(lang) = req.cookie(COOKIE).and_then(|c| Self::from_tag(c.value())) {
            return lang;
        }
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Self::En, Self::negotiate)
    }

    /// The first supported language of an `Accept-Language` value, by quality.
    pub fn negotiate(accept: &str) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_tag(tag)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::En, |(_, l)| l)
    }

    /// This language's messages.
    pub fn messages(self) -> &'static Catalogue {
        match self {
            Self::En => &EN,
            Self::Zh => &ZH,
        }
    }

    /// One message; the key itself when missing (a test keeps that from happening).
    pub fn text(self, key: &str) -> &'static str {
        self.messages().get(key).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_exactly_the_same_keys() {
        let en: Vec<_> = EN.keys().collect();
        let zh: Vec<_> = ZH.keys().collect();
        assert_eq!(en, zh);
        for (k, v) in EN.iter().chain(ZH.iter()) {
            assert!(!v.trim().is_empty(), "empty message {k}");
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::negotiate("en-US,en;q=0.9,zh;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("fr,zh-TW;q=0.4"), Lang::Zh);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }
}
