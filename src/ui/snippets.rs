//! Usage snippets: how a tenant's code reads a token from tokenvault, in
//! curl, Node, Python, Go, Java, PHP, a WeChat cloud function and the
//! WeChat SDKs that can point at tokenvault; then, by the app's kind, its
//! JS-SDK tickets (a WeChat app) or its WeCom token and tickets (a WeCom
//! app), with wechatpy's set-ups for both. The one source of their text:
//! the keys page (right after a key is created), the app page and the
//! README all show these, filled in with different values (a test checks
//! the README against them).
//!
//! The code reads the key from the environment variable
//! [`KEY_ENV`], so it never ends up in source files; only the curl lines,
//! meant to be run once by hand, take the key itself when there is one.

use actix_web::HttpRequest;
use serde::Serialize;

use crate::domain::{AppId, AppKind};

/// The environment variable the snippets read the key from.
pub const KEY_ENV: &str = "TOKENVAULT_API_KEY";

/// Where a snippet is shown: the service's address and the app to read.
const BASE: &str = "%BASE%";
const APPID: &str = "%APPID%";
/// A WeCom app's corpid (the part of its id before the `-`).
const CORPID: &str = "%CORPID%";
/// The key in a shell command: the key itself, or `$TOKENVAULT_API_KEY`.
const KEY: &str = "%KEY%";

/// The two ways to read a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// `GET /api/v1/apps/{appid}/token`.
    Rest,
    /// The WeChat-shaped `/cgi-bin/token`, through an existing SDK.
    WeChat,
    /// A WeChat app's JS-SDK tickets and page signatures.
    Tickets,
    /// A WeCom app's token and tickets, WeCom-shaped and over REST.
    Wecom,
}

/// One snippet's text before it is filled in.
struct Template {
    /// Short id, unique, used in element ids and message keys.
    id: &'static str,
    group: Group,
    /// The code's language (a CSS class hint).
    lang: &'static str,
    code: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        id: "curl",
        group: Group::Rest,
        lang: "shell",
        code: r#"curl -H "Authorization: Bearer %KEY%" %BASE%/api/v1/apps/%APPID%/token"#,
    },
    Template {
        id: "node",
        group: Group::Rest,
        lang: "javascript",
        code: r"const res = await fetch('%BASE%/api/v1/apps/%APPID%/token', {
  headers: { Authorization: `Bearer ${process.env.TOKENVAULT_API_KEY}` },
});
if (!res.ok) throw new Error(`tokenvault: ${res.status} ${await res.text()}`);
const { access_token, expires_in } = await res.json();",
    },
    Template {
        id: "python",
        group: Group::Rest,
        lang: "python",
        code: r#"import json, os, urllib.request

req = urllib.request.Request("%BASE%/api/v1/apps/%APPID%/token",
                             headers={"Authorization": "Bearer " + os.environ["TOKENVAULT_API_KEY"]})
with urllib.request.urlopen(req, timeout=5) as res:  # raises HTTPError unless 2xx
    body = json.load(res)
access_token, expires_in = body["access_token"], body["expires_in"]"#,
    },
    Template {
        id: "go",
        group: Group::Rest,
        lang: "go",
        code: r#"req, _ := http.NewRequest("GET", "%BASE%/api/v1/apps/%APPID%/token", nil)
req.Header.Set("Authorization", "Bearer "+os.Getenv("TOKENVAULT_API_KEY"))
res, err := http.DefaultClient.Do(req)
if err != nil { return err }
defer res.Body.Close()
if res.StatusCode != http.StatusOK { return fmt.Errorf("tokenvault: %s", res.Status) }
var t struct { AccessToken string `json:"access_token"`; ExpiresIn int `json:"expires_in"` }
err = json.NewDecoder(res.Body).Decode(&t)"#,
    },
    Template {
        id: "java",
        group: Group::Rest,
        lang: "java",
        code: r#"HttpRequest req = HttpRequest.newBuilder(URI.create("%BASE%/api/v1/apps/%APPID%/token"))
    .header("Authorization", "Bearer " + System.getenv("TOKENVAULT_API_KEY")).build();
HttpResponse<String> res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
if (res.statusCode() != 200) throw new IOException("tokenvault: " + res.statusCode() + " " + res.body());
// parse res.body() with your JSON library: access_token, expires_in"#,
    },
    Template {
        id: "php",
        group: Group::Rest,
        lang: "php",
        code: r"$ctx = stream_context_create(['http' => [
    'header' => 'Authorization: Bearer ' . getenv('TOKENVAULT_API_KEY'),
    'ignore_errors' => true, 'timeout' => 5,
]]);
$body = json_decode(file_get_contents('%BASE%/api/v1/apps/%APPID%/token', false, $ctx), true);
if (!isset($body['access_token'])) throw new RuntimeException('tokenvault: ' . ($body['detail'] ?? 'no token'));
$token = $body['access_token'];",
    },
    Template {
        id: "cloudfn",
        group: Group::Rest,
        lang: "javascript",
        code: r"// cloudfunctions/wechatCall/index.js
const cloud = require('wx-server-sdk');
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV });
const TOKENVAULT_URL = '%BASE%';
const APPID = '%APPID%';

exports.main = async () => {
  const res = await fetch(`${TOKENVAULT_URL}/api/v1/apps/${APPID}/token?min_ttl=60`, {
    headers: { Authorization: `Bearer ${process.env.TOKENVAULT_API_KEY}` },
  });
  if (!res.ok) return { ok: false, status: res.status };
  const { access_token } = await res.json();
  // Use the token here, server-side; never return it to the mini-program.
  const ips = await (await fetch(`https://api.weixin.qq.com/cgi-bin/getcallbackip?access_token=${access_token}`)).json();
  return { ok: !ips.errcode };
};",
    },
    Template {
        id: "curl_wechat",
        group: Group::WeChat,
        lang: "shell",
        code: r#"curl "%BASE%/cgi-bin/token?grant_type=client_credential&appid=%APPID%&secret=%KEY%""#,
    },
    Template {
        id: "wechat_api",
        group: Group::WeChat,
        lang: "javascript",
        code: r"const API = require('wechat-api');
const api = new API('%APPID%', process.env.TOKENVAULT_API_KEY);
const fetchToken = api.getAccessToken;
api.getAccessToken = function (callback) {  // only the token fetch goes to tokenvault
  const endpoint = this.endpoint;
  this.endpoint = '%BASE%';  // the URL is built synchronously
  try { return fetchToken.call(this, callback); } finally { this.endpoint = endpoint; }
};
api.getIp((err, result) => { /* business calls go to api.weixin.qq.com as usual */ });",
    },
    Template {
        id: "wechatpy",
        group: Group::WeChat,
        lang: "python",
        code: r#"import os
from wechatpy import WeChatClient

class TokenvaultClient(WeChatClient):
    def fetch_access_token(self):
        return self._fetch_access_token(
            url="%BASE%/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )

client = TokenvaultClient("%APPID%", os.environ["TOKENVAULT_API_KEY"])
client.misc.get_wechat_ips()   # business calls go to api.weixin.qq.com as usual"#,
    },
    Template {
        id: "wxjava",
        group: Group::WeChat,
        lang: "java",
        code: r#"WxMaDefaultConfigImpl config = new WxMaDefaultConfigImpl();
config.setAppid("%APPID%");
config.setSecret(System.getenv("TOKENVAULT_API_KEY"));
config.setAccessTokenUrl(
    "%BASE%/cgi-bin/token?grant_type=client_credential&appid=%s&secret=%s");
// or: config.setApiHostUrl("https://wx-gateway.example.com");
WxMaService wxMa = new WxMaServiceImpl();
wxMa.setWxMaConfig(config);"#,
    },
    Template {
        id: "easywechat",
        group: Group::WeChat,
        lang: "php",
        code: r"// wx-gateway: /cgi-bin/token and /cgi-bin/stable_token to %BASE%, the rest to WeChat
$app = new \EasyWeChat\MiniApp\Application([
    'app_id' => '%APPID%',
    'secret' => getenv('TOKENVAULT_API_KEY'),
    'http'   => ['base_uri' => 'https://wx-gateway.example.com/'],
]);
$app->getClient()->get('cgi-bin/getcallbackip');",
    },
    Template {
        id: "gateway",
        group: Group::WeChat,
        lang: "nginx",
        code: r"# wx-gateway: the two token paths to tokenvault, everything else to WeChat.
proxy_ssl_server_name on;
location = /cgi-bin/token        { access_log off; proxy_pass %BASE%; }  # the key is in the query
location = /cgi-bin/stable_token { proxy_pass %BASE%; }
location / {
    proxy_pass https://api.weixin.qq.com;
    proxy_set_header Host api.weixin.qq.com;
}",
    },
    Template {
        id: "curl_ticket",
        group: Group::Tickets,
        lang: "shell",
        code: r#"curl -H "Authorization: Bearer %KEY%" %BASE%/api/v1/apps/%APPID%/tickets/jsapi"#,
    },
    Template {
        id: "node_ticket",
        group: Group::Tickets,
        lang: "javascript",
        code: r"const res = await fetch('%BASE%/api/v1/apps/%APPID%/jssdk-signature', {
  method: 'POST',
  headers: { Authorization: `Bearer ${process.env.TOKENVAULT_API_KEY}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ url: pageUrl }),  // the page's URL without its #fragment
});
if (!res.ok) throw new Error(`tokenvault: ${res.status} ${await res.text()}`);
const config = await res.json();  // wx.config({ ...config, jsApiList: [...] })",
    },
    Template {
        id: "python_ticket",
        group: Group::Tickets,
        lang: "python",
        code: r#"import json, os, urllib.request

req = urllib.request.Request("%BASE%/api/v1/apps/%APPID%/tickets/jsapi",
                             headers={"Authorization": "Bearer " + os.environ["TOKENVAULT_API_KEY"]})
with urllib.request.urlopen(req, timeout=5) as res:  # raises HTTPError unless 2xx
    body = json.load(res)
ticket, expires_in = body["ticket"], body["expires_in"]"#,
    },
    Template {
        id: "wechatpy_ticket",
        group: Group::Tickets,
        lang: "python",
        code: r#"import os
from wechatpy import WeChatClient

class TokenvaultTickets(WeChatClient):
    API_BASE_URL = "%BASE%/cgi-bin/"  # getticket from tokenvault: use this client for tickets only
    def fetch_access_token(self):
        return self._fetch_access_token(
            url="%BASE%/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )

ticket = TokenvaultTickets("%APPID%", os.environ["TOKENVAULT_API_KEY"]).jsapi.get_jsapi_ticket()"#,
    },
    Template {
        id: "curl_wecom",
        group: Group::Wecom,
        lang: "shell",
        code: r#"curl "%BASE%/cgi-bin/gettoken?corpid=%CORPID%&corpsecret=%KEY%""#,
    },
    Template {
        id: "node_wecom",
        group: Group::Wecom,
        lang: "javascript",
        code: r"const res = await fetch('%BASE%/api/v1/apps/%APPID%/jssdk-signature', {
  method: 'POST',
  headers: { Authorization: `Bearer ${process.env.TOKENVAULT_API_KEY}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ url: pageUrl, ticket_type: 'agent_config' }),  // without 'agent_config': wx.config's
});
if (!res.ok) throw new Error(`tokenvault: ${res.status} ${await res.text()}`);
const { appId, agentid, timestamp, nonceStr, signature } = await res.json();
// wx.agentConfig({ corpid: appId, agentid, timestamp, nonceStr, signature, jsApiList: [...] })",
    },
    Template {
        id: "python_wecom",
        group: Group::Wecom,
        lang: "python",
        code: r#"import json, os, urllib.request

def tokenvault(path):
    req = urllib.request.Request("%BASE%/api/v1/apps/%APPID%/" + path,
                                 headers={"Authorization": "Bearer " + os.environ["TOKENVAULT_API_KEY"]})
    with urllib.request.urlopen(req, timeout=5) as res:  # raises HTTPError unless 2xx
        return json.load(res)

access_token = tokenvault("token")["access_token"]
company_ticket = tokenvault("tickets/jsapi")["ticket"]        # wx.config
agent_ticket = tokenvault("tickets/agent_config")["ticket"]   # wx.agentConfig"#,
    },
    Template {
        id: "wechatpy_wecom",
        group: Group::Wecom,
        lang: "python",
        code: r#"import os
from wechatpy.enterprise import WeChatClient  # wechatpy 2: wechatpy.work

class TokenvaultWeCom(WeChatClient):
    def fetch_access_token(self):
        return self._fetch_access_token(
            url="%BASE%/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )

class TokenvaultWeComTickets(TokenvaultWeCom):
    API_BASE_URL = "%BASE%/cgi-bin/"  # tickets from tokenvault: use this client for tickets only

key = os.environ["TOKENVAULT_API_KEY"]  # a key limited to this one WeCom app
client = TokenvaultWeCom("%CORPID%", key)   # business calls go to qyapi.weixin.qq.com as usual
tickets = TokenvaultWeComTickets("%CORPID%", key)
company_ticket = tickets.jsapi.get_jsapi_ticket()
agent_ticket = tickets.jsapi.get_agent_jsapi_ticket()"#,
    },
];

/// One snippet, filled in, as the templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct Snippet {
    /// Short id: the element id is `snippet-{id}`.
    pub id: &'static str,
    /// Message key of its title (`snippet_{id}`).
    pub label: String,
    /// Message key of the line under the title (`snippet_{id}_hint`).
    pub hint: String,
    /// The code's language.
    pub lang: &'static str,
    /// The code.
    pub code: String,
}

/// Every snippet for one app, in the two groups the pages show.
#[derive(Debug, Clone, Serialize)]
pub struct Snippets {
    /// Through `GET /api/v1/apps/{appid}/token`.
    pub rest: Vec<Snippet>,
    /// Through the WeChat-compatible `/cgi-bin/token` and existing SDKs
    /// (none for a WeCom app).
    pub wechat: Vec<Snippet>,
    /// A WeChat app's JS-SDK tickets, or a WeCom app's token and tickets.
    pub tickets: Vec<Snippet>,
    /// The app is a WeCom app.
    pub wecom: bool,
}

impl Snippets {
    /// The snippets for reading `appid` from the service at `base`. With
    /// `key`, the curl lines carry it; without, they read the environment
    /// variable like the code does. A WeCom app's id (`{corpid}-{agentid}`)
    /// gets WeCom's snippets instead of WeChat's.
    pub fn new(base: &str, appid: &str, key: Option<&str>) -> Self {
        let wecom = AppId::parse("appid", appid).is_ok_and(|a| a.kind() == AppKind::Wecom);
        Self::of_kind(base, appid, key, wecom)
    }

    /// [`Self::new`] for an app of the kind `wecom` says (for placeholders
    /// such as the README's `CORPID-AGENTID`).
    pub fn of_kind(base: &str, appid: &str, key: Option<&str>, wecom: bool) -> Self {
        let shell_key = key.map_or_else(|| format!("${KEY_ENV}"), str::to_string);
        let corpid = appid.split('-').next().unwrap_or(appid);
        let fill = |t: &Template| Snippet {
            id: t.id,
            label: format!("snippet_{}", t.id),
            hint: format!("snippet_{}_hint", t.id),
            lang: t.lang,
            code: t
                .code
                .replace(BASE, base)
                .replace(APPID, appid)
                .replace(CORPID, corpid)
                .replace(KEY, &shell_key),
        };
        let group = |g: Group| {
            TEMPLATES
                .iter()
                .filter(|t| t.group == g)
                .map(fill)
                .collect()
        };
        Self {
            rest: group(Group::Rest),
            wechat: if wecom {
                Vec::new()
            } else {
                group(Group::WeChat)
            },
            tickets: group(if wecom { Group::Wecom } else { Group::Tickets }),
            wecom,
        }
    }

    /// Every snippet, every group.
    pub fn all(&self) -> impl Iterator<Item = &Snippet> {
        self.rest.iter().chain(&self.wechat).chain(&self.tickets)
    }
}

/// The shell line that puts a new key where the snippets read it.
pub fn export_line(key: &str) -> String {
    format!("export {KEY_ENV}={key}")
}

/// This service's address as the visitor reached it (scheme and host, as
/// a proxy's `Forwarded` headers say). A host with characters no host
/// name has would break the code it is pasted into: a placeholder then.
pub fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    let scheme = match info.scheme() {
        "https" => "https",
        _ => "http",
    };
    let host = info.host();
    let plausible = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if plausible {
        format!("{scheme}://{host}")
    } else {
        "https://tokenvault.example.com".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::i18n::Lang;

    /// The values the README's copies are filled in with.
    fn readme_snippets() -> Snippets {
        Snippets::new("https://tokenvault.example.com", "APPID", None)
    }

    #[test]
    fn the_readme_shows_every_snippet_as_the_ui_does() {
        let readme = include_str!("../../README.md");
        let wecom = Snippets::of_kind(
            "https://tokenvault.example.com",
            "CORPID-AGENTID",
            None,
            true,
        );
        for s in readme_snippets().all().chain(&wecom.tickets) {
            assert!(
                readme.contains(&s.code),
                "README.md lacks snippet {} as src/ui/snippets.rs has it:\n{}",
                s.id,
                s.code
            );
        }
    }

    #[test]
    fn every_snippet_is_filled_in_and_titled_in_both_languages() {
        let s = Snippets::new("http://127.0.0.1:8080", "wx0123456789abcdef", Some("tvk_k"));
        let w = Snippets::new(
            "http://127.0.0.1:8080",
            "ww0123456789abcdef-1000002",
            Some("tvk_k"),
        );
        assert!(w.wecom && w.wechat.is_empty() && !s.wecom);
        assert_eq!(s.all().count() + w.tickets.len(), TEMPLATES.len());
        let mut ids: Vec<_> = s.all().chain(&w.tickets).map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TEMPLATES.len(), "ids are unique");
        for snippet in &w.tickets {
            assert!(
                snippet.code.contains("ww0123456789abcdef"),
                "{}",
                snippet.id
            );
            assert!(!snippet.code.contains(CORPID), "{}", snippet.id);
        }
        for snippet in s.all().chain(&w.tickets) {
            for marker in [BASE, APPID, KEY] {
                assert!(!snippet.code.contains(marker), "{}: {marker}", snippet.id);
            }
            // The gateway serves every app alike.
            if snippet.id != "gateway" && !w.tickets.iter().any(|t| t.id == snippet.id) {
                assert!(
                    snippet.code.contains("wx0123456789abcdef"),
                    "{}",
                    snippet.id
                );
            }
            assert!(
                snippet.code.contains("http://127.0.0.1:8080"),
                "{}",
                snippet.id
            );
            for lang in [Lang::En, Lang::Zh] {
                for key in [&snippet.label, &snippet.hint] {
                    assert!(!lang.text(key).is_empty(), "{key} in {}", lang.tag());
                }
            }
        }
    }

    #[test]
    fn only_the_curl_lines_take_the_key() {
        let s = Snippets::new("https://tv.test", "wx0123456789abcdef", Some("tvk_k"));
        let w = Snippets::new(
            "https://tv.test",
            "ww0123456789abcdef-1000002",
            Some("tvk_k"),
        );
        for snippet in s.all().chain(&w.tickets) {
            assert_eq!(
                snippet.code.contains("tvk_k"),
                snippet.id.starts_with("curl"),
                "{}",
                snippet.id
            );
        }
        let s = Snippets::new("https://tv.test", "wx0123456789abcdef", None);
        assert!(
            s.all()
                .filter(|s| s.id != "gateway")
                .all(|s| s.code.contains(KEY_ENV))
        );
    }

    #[test]
    fn a_host_that_is_no_host_name_gives_a_placeholder() {
        let req = |host: &str| {
            actix_web::test::TestRequest::default()
                .insert_header(("host", host))
                .to_http_request()
        };
        assert_eq!(
            base_url(&req("tv.example.cn:8443")),
            "http://tv.example.cn:8443"
        );
        assert_eq!(base_url(&req("[::1]:8080")), "http://[::1]:8080");
        for bad in ["a'b", "x\"y", "h%s", "a b", "a/b"] {
            assert_eq!(
                base_url(&req(bad)),
                "https://tokenvault.example.com",
                "{bad}"
            );
        }
    }
}
