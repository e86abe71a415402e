//! Usage snippets on the keys and app pages: every language, filled in with
//! the service's real address, an app the key may read and (only right
//! after creation) the key; escaped once, so the browser shows the code as
//! written; and the Node, Python (and, where installed, Java and curl) ones
//! run against the service and print the token it serves. Also: viewers are
//! not offered to register apps, and a replica counts as alive right after
//! it starts.

use std::time::{Duration, Instant};

use tokenvault::ui::snippets::{KEY_ENV, Snippets};
use tokenvault::upstream::simulator::{SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{Browser, get_with_key, spawn_app, spawn_app_with_sim};

const APPID_B: &str = "wx00000000000000b2";

/// Every snippet id, in page order.
const IDS: &[&str] = &[
    "curl",
    "node",
    "python",
    "go",
    "java",
    "php",
    "cloudfn",
    "curl_wechat",
    "wechat_api",
    "wechatpy",
    "wxjava",
    "easywechat",
    "gateway",
    "curl_ticket",
    "node_ticket",
    "python_ticket",
    "wechatpy_ticket",
];

/// A simulator whose tokens outlive the test, so the token a snippet
/// prints can be compared with the one the service serves.
fn simulator() -> SimHandle {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(900),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(APPID_B, SECRET);
    sim
}

pub(crate) async fn page(b: &Browser, path: &str) -> (u16, String) {
    let res = b.get(path).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

/// The raw (still escaped) text of the element with `id`.
fn raw_text<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let (_, rest) = html.split_once(&format!("id=\"{id}\""))?;
    let (_, rest) = rest.split_once('>')?;
    rest.split_once("</code>").map(|(text, _)| text)
}

/// What the browser shows for escaped text.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

/// The code of snippet `id` as the browser shows (and copies) it.
pub(crate) fn snippet(html: &str, id: &str) -> String {
    let raw = raw_text(html, &format!("snippet-{id}"))
        .unwrap_or_else(|| panic!("snippet {id} is on the page"));
    assert!(
        html.contains(&format!("data-copy=\"snippet-{id}\"")),
        "{id}: a copy button"
    );
    for c in ['<', '>', '"', '\''] {
        assert!(!raw.contains(c), "{id}: {c} is escaped in the HTML");
    }
    unescape(raw)
}

/// Text escaped once: quotes became entities, and no entity was escaped
/// a second time (the browser would show `&quot;` instead of `"`).
fn assert_escaped_once(html: &str) {
    assert!(
        html.contains("&quot;") || html.contains("&#34;"),
        "quotes in code are escaped"
    );
    for twice in ["&amp;quot;", "&amp;#", "&amp;lt;", "&amp;gt;", "&amp;amp;"] {
        assert!(!html.contains(twice), "escaped twice: {twice}");
    }
}

/// Whether missing interpreters fail the test rather than skip it.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Run `program args` with the key in the environment; its standard output,
/// or `None` when the program is not installed.
pub(crate) async fn run(program: &str, args: &[&str], key: &str) -> Option<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .env(KEY_ENV, key)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish within 60 s"))
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    assert!(
        out.status.success(),
        "{program} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// Report a missing interpreter: a failure under CI=true when `required`.
pub(crate) fn missing(program: &str, required: bool) {
    assert!(
        !(required && in_ci()),
        "{program} is required under CI=true to run the snippets"
    );
    eprintln!("skipped running the {program} snippet: {program} is not installed");
}

/// The token the service serves for `appid` to `key`.
async fn served_token(address: &str, appid: &str, key: &str) -> String {
    let res = get_with_key(address, &format!("/api/v1/apps/{appid}/token"), key).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Run the Node, Python, Java and shell snippets of a page with `key` in
/// the environment; each must print `token`.
async fn run_snippets(html: &str, key: &str, token: &str) {
    let node = format!("{}\nconsole.log(access_token);", snippet(html, "node"));
    match run("node", &["--input-type=module", "-e", &node], key).await {
        Some(out) => assert_eq!(out, token, "node"),
        None => missing("node", true),
    }

    let python = format!("{}\nprint(access_token)", snippet(html, "python"));
    match run("python3", &["-c", &python], key).await {
        Some(out) => assert_eq!(out, token, "python"),
        None => missing("python3", true),
    }

    // Java and curl are not installed by CI before the tests: run if here.
    let dir = std::env::temp_dir().join(format!("tv-snippet-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let java = dir.join("Snippet.java");
    std::fs::write(
        &java,
        format!(
            "import java.io.IOException;\nimport java.net.URI;\nimport java.net.http.*;\n\
             public class Snippet {{ public static void main(String[] args) throws Exception {{\n\
             {}\nSystem.out.println(res.body());\n}} }}\n",
            snippet(html, "java")
        ),
    )
    .unwrap();
    let ran = run("java", &[java.to_str().unwrap()], key).await;
    std::fs::remove_dir_all(&dir).unwrap();
    match ran {
        Some(out) => {
            let body: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(body["access_token"], token, "java");
        }
        None => missing("java", false),
    }

    run_ticket_snippets(html, key).await;

    if run("curl", &["--version"], key).await.is_none() {
        missing("curl", false);
        return;
    }
    for id in ["curl", "curl_wechat"] {
        let line = snippet(html, id);
        let out = run("sh", &["-c", &format!("{line} --silent --show-error")], key)
            .await
            .expect("a shell");
        let body: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{id}: {e}: {out}"));
        assert_eq!(body["access_token"], token, "{id}");
    }
}

/// The page URL the ticket snippets sign.
pub(crate) const PAGE_URL: &str = "https://shop.example.com/pay?order=42";

/// SHA-1 of WeChat's JS-SDK signature string, as an independent check.
pub(crate) fn jssdk_signature(ticket: &str, answer: &serde_json::Value) -> String {
    use sha1::Digest as _;
    let text = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={PAGE_URL}",
        answer["nonceStr"].as_str().unwrap(),
        answer["timestamp"].as_i64().unwrap(),
    );
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

/// Run a WeChat app's ticket snippets: Python prints the ticket, Node the
/// page signature, checked against that ticket.
async fn run_ticket_snippets(html: &str, key: &str) {
    let python = format!("{}\nprint(ticket)", snippet(html, "python_ticket"));
    let Some(ticket) = run("python3", &["-c", &python], key).await else {
        return missing("python3", true);
    };
    assert!(ticket.len() > 20, "python_ticket: {ticket}");
    let node = format!(
        "const pageUrl = '{PAGE_URL}';\n{}\nconsole.log(JSON.stringify(config));",
        snippet(html, "node_ticket")
    );
    match run("node", &["--input-type=module", "-e", &node], key).await {
        Some(out) => {
            let config: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                config["signature"],
                jssdk_signature(&ticket, &config),
                "node_ticket"
            );
        }
        None => missing("node", true),
    }
}

#[tokio::test]
async fn a_new_key_comes_with_every_snippet_filled_in_and_they_run() {
    let sim = simulator();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Snippets", "o@snip.test").await;
    for appid in [APPID, APPID_B] {
        let res = owner
            .post_json(
                "/api/v1/apps",
                &serde_json::json!({ "appid": appid, "secret": SECRET }),
            )
            .await;
        assert_eq!(res.status(), 201);
    }

    // A read-only key limited to the second app: the snippets read that one.
    let (_, form) = page(&owner, "/keys").await;
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .form(&[
            ("csrf_token", csrf_of(&form).as_str()),
            ("name", "snippets"),
            ("apps", APPID_B),
            ("read_only", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let key = unescape(raw_text(&html, "new-key").expect("the key is shown"));
    assert!(key.starts_with("tvk_"), "{key}");
    assert_escaped_once(&html);
    assert_eq!(
        unescape(raw_text(&html, "key-export").expect("the export line")),
        format!("export {KEY_ENV}={key}")
    );

    let base = &app.address;
    let expected = Snippets::new(base, APPID_B, Some(&key));
    assert_eq!(
        expected.all().map(|s| s.id).collect::<Vec<_>>(),
        IDS,
        "every snippet, in order"
    );
    for id in IDS {
        let code = snippet(&html, id);
        assert!(
            code.contains(base.as_str()),
            "{id}: the real address\n{code}"
        );
        if *id != "gateway" {
            assert!(code.contains(APPID_B), "{id}: the key's app\n{code}");
            assert!(
                !code.contains(APPID),
                "{id}: not an app the key may not read"
            );
        }
        if id.starts_with("curl") {
            assert!(code.contains(&key), "{id}: the key");
        } else {
            assert!(
                !code.contains(&key),
                "{id}: code reads the key from the environment"
            );
        }
        let shown = expected.all().find(|s| s.id == *id).unwrap();
        assert_eq!(
            code, shown.code,
            "{id}: the browser shows the code as written"
        );
    }
    for text in [
        "<summary>Node.js 18+ (fetch)</summary>",
        "<summary>WeChat cloud function (wx-server-sdk)</summary>",
        "<summary>wechatpy (PyPI)</summary>",
        "<summary>EasyWeChat 6 (PHP)</summary>",
        "<details class=\"snippet\" open>",
    ] {
        assert!(html.contains(text), "{text}");
    }
    assert!(
        html.contains("&quot;Authorization&quot;: &quot;Bearer &quot;")
            || html.contains("&#34;Authorization&#34;: &#34;Bearer &#34;"),
        "Python's quotes are entities in the HTML"
    );
    assert!(!html.contains("<script>"), "no inline script");

    let token = served_token(base, APPID_B, &key).await;
    assert_eq!(
        Some(token.as_str()),
        sim.current_token(APPID_B, tokenvault::upstream::simulator::TokenKind::Stable)
            .as_deref()
    );
    run_snippets(&html, &key, &token).await;

    // In Chinese, the titles are translated and the code is the same.
    let res = owner
        .client
        .get(format!("{base}/apps/{APPID_B}"))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let zh = res.text().await.unwrap();
    assert!(zh.contains("<summary>微信云函数（wx-server-sdk）</summary>"));
    assert!(zh.contains("使用此小程序或公众号的令牌"));

    // Never shown again: not in the list, not on the app page, whose
    // snippets read the key from the environment, the curl lines too.
    let (_, list) = page(&owner, "/keys").await;
    assert!(!list.contains(&key));
    assert!(
        !list.contains("id=\"snippet-"),
        "snippets only with a new key"
    );
    let (status, app_page) = page(&owner, &format!("/apps/{APPID_B}")).await;
    assert_eq!(status, 200);
    assert!(!app_page.contains(&key));
    assert!(
        app_page.contains("Use this app&#x27;s token")
            || app_page.contains("Use this app&#39;s token")
    );
    assert_escaped_once(&app_page);
    let without_key = Snippets::new(base, APPID_B, None);
    for s in without_key.all() {
        assert_eq!(snippet(&app_page, s.id), s.code, "{}", s.id);
    }
    assert_eq!(
        snippet(&app_page, "curl"),
        format!("curl -H \"Authorization: Bearer ${KEY_ENV}\" {base}/api/v1/apps/{APPID_B}/token")
    );
    run_snippets(&app_page, &key, &token).await;

    // A viewer sees the app but neither key nor snippets.
    let viewer = app.invite_and_join(&owner, "viewer", "v@snip.test").await;
    let (status, seen) = page(&viewer, &format!("/apps/{APPID_B}")).await;
    assert_eq!(status, 200);
    assert!(!seen.contains("id=\"snippet-"));
    assert!(!seen.contains(KEY_ENV));
    assert!(!seen.contains(&key));
}

#[tokio::test]
async fn a_key_for_every_app_reads_the_first_registered_one_in_its_snippets() {
    let sim = simulator();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("First", "o@first.test").await;
    let res = owner
        .post_json(
            "/api/v1/apps",
            &serde_json::json!({ "appid": APPID, "secret": SECRET }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (_, form) = page(&owner, "/keys").await;
    // Behind a proxy: the address the visitor used, from Forwarded headers.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "vault.example.cn")
        .form(&[("csrf_token", csrf_of(&form).as_str()), ("name", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let node = snippet(&html, "node");
    assert!(
        node.contains(&format!(
            "'https://vault.example.cn/api/v1/apps/{APPID}/token'"
        )),
        "{node}"
    );
    // A host that would break the code it is pasted into is not used.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .header("X-Forwarded-Host", "evil'); alert(1); ('")
        .form(&[
            ("csrf_token", csrf_of(&form).as_str()),
            ("name", "odd host"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    assert!(!html.contains("alert(1)"));
    assert!(snippet(&html, "node").contains("'https://tokenvault.example.com/api/v1/apps/"));
}

#[tokio::test]
async fn viewers_are_not_offered_to_register_apps_and_are_refused_the_form() {
    let app = spawn_app().await;
    let owner = app.signup("Roles", "o@roles.test").await;
    let admin = app.invite_and_join(&owner, "admin", "a@roles.test").await;
    let viewer = app.invite_and_join(&owner, "viewer", "v@roles.test").await;

    for (who, b) in [("owner", &owner), ("admin", &admin)] {
        let (status, html) = page(b, "/dashboard").await;
        assert_eq!(status, 200);
        assert!(html.contains("<a href=\"/apps/new\""), "{who}: in the nav");
        assert!(html.contains("Register your first mini-program"), "{who}");
        let (status, html) = page(b, "/apps/new").await;
        assert_eq!(status, 200, "{who}");
        assert!(html.contains("name=\"secret\""), "{who}: the form");
    }

    let (status, html) = page(&viewer, "/dashboard").await;
    assert_eq!(status, 200);
    assert!(!html.contains("/apps/new"), "no link to the form anywhere");
    assert!(!html.contains("Register your first mini-program"));
    assert!(!html.contains("Register an app"));
    assert!(html.contains("Owners and admins of your organisation register mini-programs"));

    // The same refusal as the keys page.
    let (keys_status, keys_page) = page(&viewer, "/keys").await;
    let (status, form) = page(&viewer, "/apps/new").await;
    assert_eq!((keys_status, status), (403, 403));
    let refusal = |html: &str| {
        let (_, main) = html.split_once("<main id=\"main\">").unwrap();
        main.split_once("</main>").unwrap().0.to_string()
    };
    assert_eq!(refusal(&form), refusal(&keys_page));
    assert!(form.contains("Your role does not allow this"));
    assert!(!form.contains("name=\"secret\""), "no form");
    assert!(!form.contains("/apps/new\""), "not in the nav either");

    // In Chinese too.
    let res = viewer
        .client
        .get(format!("{}/dashboard", app.address))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let zh = res.text().await.unwrap();
    assert!(zh.contains("小程序或公众号由本组织的所有者和管理员接入"));
    assert!(!zh.contains("/apps/new"));
}

#[tokio::test]
async fn a_replica_counts_as_alive_right_after_it_starts() {
    let app = spawn_app().await;
    let owner = app.signup("Alive", "o@alive.test").await;
    let started = Instant::now();
    let mut last = serde_json::Value::Null;
    // Well under the first tick (5 s by default).
    while started.elapsed() < Duration::from_secs(2) {
        let res = owner.get("/api/v1/service-health").await;
        assert_eq!(res.status(), 200);
        last = res.json().await.unwrap();
        if last["replicas"]["alive"].as_u64() == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["replicas"]["alive"], 1, "{last}");
    let me = &last["answered_by"];
    let items = last["replicas"]["items"].as_array().unwrap();
    assert!(
        items.iter().any(|r| &r["id"] == me && r["alive"] == true),
        "{last}"
    );
    assert_ne!(last["status"], "down", "{last}");
}
