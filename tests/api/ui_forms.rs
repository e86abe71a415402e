//! Bad input on every form of the web UI, table-driven: each field of each
//! form in turn gets each hostile value (markup, SQL, emoji, 10,000
//! characters, nothing, a NUL byte, bytes that are not UTF-8) while the
//! other fields are valid. Never a 5xx, never the markup unescaped, never
//! a secret sent back; a refusal shows its error where the field is and
//! stores nothing; what a form accepts is stored whole and shown escaped.
//! Pages opened with hostile query parameters behave the same.
//!
//! The members, invite and key forms' hostile text is tested in
//! `ui_people.rs` and `ui_ops.rs`; their rows send only what those do not.
//! To cover a new form, add a `FormSpec` to a table: the anonymous forms
//! are in `ui_forms/public.rs`, the owner's in `ui_forms/owner.rs`. This
//! file holds what the tables are made of and how a form is run; hostile
//! queries are in `ui_forms/queries.rs`, the accessibility check in
//! `ui_forms/a11y.rs`.

mod a11y;
mod owner;
mod public;
mod queries;

use reqwest::redirect::Policy;
use sqlx::PgPool;
use tokenvault::upstream::simulator::{SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, PASSWORD, TestApp, sim_settings, spawn_app_with_settings};

/// The pre-session token (login CSRF) of `client`'s browser, as any page
/// with a signed-out form shows it.
pub(crate) async fn signed_out_token(client: &reqwest::Client, address: &str) -> String {
    let html = client
        .get(format!("{address}/forgot"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::helpers::login_token_of(&html)
}

/// The markup that must never reach a page unescaped.
const RAW_MARKUP: [&str; 3] = [
    "<script>alert(1)</script>",
    "onerror=alert(1)>",
    "<img src=x",
];

/// A hostile value for one field, or a way of sending none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evil {
    Script,
    Attr,
    Sql,
    Emoji,
    LongAscii,
    LongWide,
    Empty,
    Blank,
    Missing,
    Nul,
    /// `%FF%FE`: not UTF-8 at all. Forms are decoded as browsers decode
    /// them (WHATWG): each bad byte becomes U+FFFD.
    NotUtf8,
    /// `%ED%A0%80`: a lone UTF-16 surrogate encoded as if it were UTF-8
    /// (U+FFFD too).
    Surrogate,
}

use Evil::{
    Attr, Blank, Emoji, Empty, LongAscii, LongWide, Missing, NotUtf8, Nul, Script, Sql, Surrogate,
};

impl Evil {
    const ALL: [Self; 12] = [
        Script, Attr, Sql, Emoji, LongAscii, LongWide, Empty, Blank, Missing, Nul, NotUtf8,
        Surrogate,
    ];

    /// The value as the service reads it; `None` for a missing field.
    fn text(self) -> Option<String> {
        Some(match self {
            Script => "<script>alert(1)</script>".into(),
            Attr => "\"><img src=x onerror=alert(1)>".into(),
            Sql => "'; drop table apps; --".into(),
            Emoji => "🙂🚀中文".into(),
            LongAscii => "a".repeat(10_000),
            LongWide => "中".repeat(10_000),
            Empty => String::new(),
            Blank => "   ".into(),
            Nul => "nul\0in the middle".into(),
            NotUtf8 => String::from_utf8_lossy(b"\xFF\xFE").into_owned(),
            Surrogate => String::from_utf8_lossy(b"a\xED\xA0\x80b").into_owned(),
            Missing => return None,
        })
    }

    /// The value percent-encoded for a form body; `None` for a missing field.
    fn encoded(self) -> Option<String> {
        match self {
            Missing => None,
            NotUtf8 => Some("%FF%FE".into()),
            Surrogate => Some("a%ED%A0%80b".into()),
            other => other.text().map(|t| form_encode(&t)),
        }
    }

    /// Short enough to look for on a page.
    fn is_short_text(self) -> bool {
        matches!(self, Script | Attr | Sql | Emoji)
    }
}

/// `application/x-www-form-urlencoded`, byte by byte.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// As the templates escape text.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// How a field is shown again after a refusal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Typed text: shown again as typed (escaped).
    Text,
    /// A secret: never shown again, not even escaped.
    Secret,
    /// A choice (radio, select) or a hidden field.
    Other,
}

/// Where a refusal says what is wrong.
#[derive(Clone, Copy)]
enum Shown {
    /// The element with this id (placeholders allowed), next to the field.
    Id(&'static str),
    /// The form's own error (`class="form-error"`): sign-in says no more.
    Form,
    /// The form was out of date: the page says so.
    Stale,
    /// A bare "bad request" page (hidden fields nobody types into).
    BadRequest,
}

/// One field of a form.
struct Field {
    name: &'static str,
    /// A valid value (placeholders allowed), sent while another field is tested.
    valid: &'static str,
    kind: Kind,
    /// The hostile values this test sends (others are tested elsewhere).
    sends: &'static [Evil],
    /// Those the form takes as valid input.
    accepts: &'static [Evil],
    /// Where a refusal shows.
    error: Shown,
    /// SQL (placeholders allowed) giving what an accepted value stored.
    stored: Option<&'static str>,
}

impl Field {
    /// A field that only carries the session's CSRF token.
    const fn csrf() -> Self {
        Self {
            name: "csrf_token",
            valid: "{csrf}",
            kind: Kind::Other,
            sends: &Evil::ALL,
            accepts: &[],
            error: Shown::Stale,
            stored: None,
        }
    }
}

/// Who posts a form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Somebody not signed in, a new browser for each post.
    Anonymous,
    /// The owner of the organisation.
    Owner,
}

/// One form of the UI.
struct FormSpec {
    what: &'static str,
    /// Where it posts (placeholders allowed).
    path: &'static str,
    who: Who,
    fields: &'static [Field],
    /// Pages that show what an accepted post stored.
    shows: &'static [&'static str],
}

/// The values placeholders stand for in one run.
struct Ctx {
    pairs: Vec<(&'static str, String)>,
}

impl Ctx {
    fn fill(&self, template: &str, case: usize) -> String {
        let mut s = template
            .replace("{fresh_appid}", &format!("wx{:016x}", 0xf00d_0000 + case))
            .replace("{fresh_email}", &format!("new{case}@forms.test"));
        for (k, v) in &self.pairs {
            s = s.replace(k, v);
        }
        s
    }
}

/// What the service keeps, as text: a change anywhere in it is seen.
/// Sessions by count (a visit touches `last_seen_at`); failed sign-ins are
/// recorded on purpose; token state and the refresh log belong to the
/// refresher working in the background.
async fn snapshot(pool: &PgPool) -> String {
    let mut parts = Vec::new();
    for (table, filter) in [
        ("tenants", "true"),
        ("users", "true"),
        ("invites", "true"),
        ("apps", "true"),
        ("api_keys", "true"),
        ("api_key_apps", "true"),
        ("audit_log", "action <> 'signin.failed'"),
    ] {
        let sql = format!(
            "select count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '')
               from {table} t where {filter}"
        );
        let part: String = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
        parts.push(format!("{table}={part}"));
    }
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    parts.push(format!("sessions={sessions}"));
    parts.join(" ")
}

/// What a post answered, after following redirects.
struct Answer {
    status: u16,
    path: String,
    body: String,
}

async fn post_raw(client: &reqwest::Client, url: &str, body: String) -> Answer {
    let res = client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: res.status().as_u16(),
        path: res.url().path().to_string(),
        body: res.text().await.unwrap(),
    }
}

/// The start of a long text, for a failure message.
fn short(s: &str) -> String {
    let mut cut: String = s.chars().take(300).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    cut
}

fn assert_no_raw_markup(body: &str, what: &str) {
    for raw in RAW_MARKUP {
        assert!(!body.contains(raw), "{what}: unescaped {raw}");
    }
}

/// Post every hostile value into every field of `spec` that sends one.
async fn run_form(app: &TestApp, owner: &Browser, ctx: &Ctx, spec: &FormSpec, case: &mut usize) {
    for tested in spec.fields.iter().filter(|f| !f.sends.is_empty()) {
        for &evil in tested.sends {
            *case += 1;
            let n = *case;
            let what = format!("{}: {} = {evil:?}", spec.what, tested.name);
            let brief = |body: &str| short(body);
            let fill = |s: &str| ctx.fill(s, n);
            let mut body = Vec::new();
            let mut named = Vec::new();
            for f in spec.fields {
                // A field listed twice (different errors for different values) is sent once.
                if named.contains(&f.name) {
                    continue;
                }
                named.push(f.name);
                let value = if f.name == tested.name {
                    evil.encoded()
                } else {
                    Some(form_encode(&fill(f.valid)))
                };
                if let Some(v) = value {
                    body.push(format!("{}={v}", f.name));
                }
            }
            let client = match spec.who {
                Who::Owner => owner.client.clone(),
                Who::Anonymous => Browser::new(&app.address).client,
            };
            if spec.who == Who::Anonymous {
                let token = signed_out_token(&client, &app.address).await;
                body.push(format!("login_token={token}"));
            }
            let path = fill(spec.path);
            let before = snapshot(&app.pool).await;
            let answer = post_raw(&client, &format!("{}{path}", app.address), body.join("&")).await;
            let after = snapshot(&app.pool).await;

            assert!(
                answer.status < 500,
                "{what}: {}\n{}",
                answer.status,
                brief(&answer.body)
            );
            assert_no_raw_markup(&answer.body, &what);
            // No secret sent back: neither the tested value nor a valid one.
            for f in spec.fields.iter().filter(|f| f.kind == Kind::Secret) {
                let value = if f.name == tested.name {
                    evil.text().unwrap_or_default()
                } else {
                    fill(f.valid)
                };
                if value.trim().chars().count() >= 4 {
                    assert!(
                        !answer.body.contains(&value) && !answer.body.contains(&escaped(&value)),
                        "{what}: the secret {} was sent back",
                        f.name
                    );
                }
            }

            if tested.accepts.contains(&evil) {
                assert!(
                    (200..300).contains(&answer.status),
                    "{what}: accepted, yet {}\n{}",
                    answer.status,
                    brief(&answer.body)
                );
                assert_ne!(before, after, "{what}: accepted, yet nothing stored");
                let typed = evil.text().unwrap_or_default();
                if let Some(sql) = tested.stored {
                    let stored: String = sqlx::query_scalar(&fill(sql))
                        .fetch_one(&app.pool)
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(stored, typed.trim(), "{what}: stored whole and as typed");
                }
                let mut pages = vec![answer.body];
                for shown in spec.shows {
                    let res = client
                        .get(format!("{}{}", app.address, fill(shown)))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "{what}: {shown}");
                    let page = res.text().await.unwrap();
                    assert_no_raw_markup(&page, &format!("{what} on {shown}"));
                    pages.push(page);
                }
                if tested.kind == Kind::Text && evil.is_short_text() {
                    assert!(
                        pages.iter().any(|p| p.contains(&escaped(typed.trim()))),
                        "{what}: shown escaped somewhere"
                    );
                }
                continue;
            }

            assert_eq!(before, after, "{what}: refused, yet something was stored");
            assert!(
                !(200..300).contains(&answer.status) || matches!(tested.error, Shown::Stale),
                "{what}: refused with {} at {}",
                answer.status,
                answer.path
            );
            match tested.error {
                Shown::Id(id) => {
                    let id = fill(id);
                    assert!(
                        answer.body.contains(&format!("id=\"{id}\"")),
                        "{what}: no error #{id} ({})\n{}",
                        answer.status,
                        brief(&answer.body)
                    );
                }
                Shown::Form => assert!(
                    answer.body.contains("class=\"form-error\""),
                    "{what}: no form error"
                ),
                Shown::Stale => assert!(
                    answer.body.contains("This form was out of date"),
                    "{what}: not said to be out of date ({} at {})",
                    answer.status,
                    answer.path
                ),
                Shown::BadRequest => assert_eq!(answer.status, 400, "{what}"),
            }
            // What was typed is kept (escaped), except secrets.
            if matches!(tested.error, Shown::Id(_) | Shown::Form) {
                for f in spec.fields.iter().filter(|f| f.kind == Kind::Text) {
                    let value = if f.name == tested.name {
                        if !evil.is_short_text() {
                            continue;
                        }
                        evil.text().unwrap_or_default()
                    } else {
                        fill(f.valid)
                    };
                    assert!(
                        answer
                            .body
                            .contains(&format!("value=\"{}\"", escaped(&value))),
                        "{what}: {} not kept",
                        f.name
                    );
                }
            }
        }
    }
}

/// The simulator with the test's app.
fn simulator() -> SimHandle {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim
}

/// The service on the simulator, with the sign-in throttle opened wide:
/// these tests post hundreds of forms a minute from one address.
async fn spawn(sim: &SimHandle) -> TestApp {
    let mut settings = sim_settings(&sim.base_url());
    settings.login_attempts_per_account = 1000;
    settings.login_attempts_per_address = 100_000;
    spawn_app_with_settings(settings).await
}

/// An owner with an app, a viewer, an API key and an open invite; the
/// placeholders that name them.
async fn owner_with_everything(app: &TestApp) -> (Browser, Ctx) {
    let owner = app.signup("Forms Co", "owner@forms.test").await;
    let res = owner
        .post_json(
            "/api/v1/apps",
            &serde_json::json!({ "appid": APPID, "secret": SECRET }),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let key = owner
        .create_key(serde_json::json!({ "name": "build server" }))
        .await;
    app.invite_and_join(&owner, "viewer", "viewer@forms.test")
        .await;
    let member: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'viewer@forms.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let res = owner
        .post_json(
            "/api/v1/invites",
            &serde_json::json!({ "role": "viewer", "email": "invited@forms.test" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let invite: serde_json::Value = res.json().await.unwrap();
    let invite_path = invite["url"]
        .as_str()
        .and_then(|u| u.find("/invite/").map(|i| u[i..].to_string()))
        .expect("an invite link");
    let ctx = Ctx {
        pairs: vec![
            ("{csrf}", owner.csrf.clone()),
            ("{appid}", APPID.into()),
            ("{secret}", SECRET.into()),
            ("{other_secret}", OTHER_SECRET.into()),
            ("{password}", PASSWORD.into()),
            ("{key}", key["id"].as_str().unwrap().into()),
            ("{member}", member.to_string()),
            ("{invite}", invite["id"].as_str().unwrap().into()),
            ("{invite_path}", invite_path),
        ],
    };
    (owner, ctx)
}
