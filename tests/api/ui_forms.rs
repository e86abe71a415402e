//! Bad input on every form of the web UI, table-driven: each field of each
//! form in turn gets each hostile value (markup, SQL, emoji, 10,000
//! characters, nothing, a NUL byte, bytes that are not UTF-8) while the
//! other fields are valid. Never a 5xx, never the markup unescaped, never
//! a secret sent back; a refusal shows its error where the field is and
//! stores nothing; what a form accepts is stored whole and shown escaped.
//! Pages opened with hostile query parameters behave the same.
//!
//! The members, invite and key forms' hostile text is tested in
//! `ui_people.rs` and `ui_ops.rs`; their rows below send only what those
//! do not. To cover a new form, add a `FormSpec` to a table.

use reqwest::redirect::Policy;
use sqlx::PgPool;
use tokenvault::upstream::simulator::{SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, PASSWORD, TestApp, sim_settings, spawn_app_with_settings};

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

/// The forms of people not signed in yet.
const ANONYMOUS_FORMS: &[FormSpec] = &[
    FormSpec {
        what: "sign up",
        path: "/signup",
        who: Who::Anonymous,
        fields: &[
            Field {
                name: "organization",
                valid: "Fresh Co",
                kind: Kind::Text,
                sends: &Evil::ALL,
                accepts: &[Script, Attr, Sql, Emoji, NotUtf8, Surrogate],
                error: Shown::Id("e-organization"),
                stored: Some(
                    "select t.name from tenants t join users u on u.tenant_id = t.id
                      where u.email = '{fresh_email}'",
                ),
            },
            Field {
                name: "email",
                valid: "{fresh_email}",
                kind: Kind::Text,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-email"),
                stored: None,
            },
            Field {
                name: "password",
                valid: "{password}",
                kind: Kind::Secret,
                sends: &Evil::ALL,
                // Any text of 10 to 1,000 characters that is not common.
                accepts: &[Script, Attr, Sql, Nul],
                error: Shown::Id("e-password"),
                stored: None,
            },
        ],
        shows: &["/dashboard", "/audit"],
    },
    FormSpec {
        what: "sign in",
        path: "/login",
        who: Who::Anonymous,
        fields: &[
            Field {
                name: "email",
                valid: "owner@forms.test",
                kind: Kind::Text,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-email"),
                stored: None,
            },
            Field {
                name: "password",
                valid: "{password}",
                kind: Kind::Secret,
                sends: &[
                    Script, Attr, Sql, Emoji, LongAscii, LongWide, Blank, Nul, NotUtf8, Surrogate,
                ],
                accepts: &[],
                // The same answer whatever is wrong: no oracle.
                error: Shown::Form,
                stored: None,
            },
            Field {
                name: "password",
                valid: "{password}",
                kind: Kind::Secret,
                sends: &[Empty, Missing],
                accepts: &[],
                error: Shown::Id("e-password"),
                stored: None,
            },
        ],
        shows: &[],
    },
    FormSpec {
        what: "join by invite",
        path: "{invite_path}",
        who: Who::Anonymous,
        // ui_people.rs sends the rest (markup, 10,000 characters, nothing).
        fields: &[
            Field {
                name: "email",
                valid: "invited@forms.test",
                kind: Kind::Other,
                sends: &[Attr, Nul, Missing, NotUtf8, Surrogate],
                accepts: &[],
                error: Shown::Id("e-email"),
                stored: None,
            },
            Field {
                name: "password",
                valid: "{password}",
                kind: Kind::Secret,
                sends: &[Emoji, Missing, NotUtf8, Surrogate],
                accepts: &[],
                error: Shown::Id("e-password"),
                stored: None,
            },
        ],
        shows: &[],
    },
];

#[tokio::test]
async fn sign_up_sign_in_and_join_refuse_bad_input_field_by_field() {
    let sim = simulator();
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    let mut case = 0;
    for spec in ANONYMOUS_FORMS {
        run_form(&app, &owner, &ctx, spec, &mut case).await;
    }
    assert!(case > 60, "{case} posts");
}

/// The fields of a form that is only a button.
const CSRF_ONLY: &[Field] = &[Field::csrf()];

/// A form that is only a button: it carries the CSRF token and nothing else.
const fn button_form(what: &'static str, path: &'static str) -> FormSpec {
    FormSpec {
        what,
        path,
        who: Who::Owner,
        fields: CSRF_ONLY,
        shows: &[],
    }
}

/// The forms of a signed-in owner.
const OWNER_FORMS: &[FormSpec] = &[
    FormSpec {
        what: "register an app",
        path: "/apps/new",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "appid",
                valid: "{fresh_appid}",
                kind: Kind::Text,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-appid"),
                stored: None,
            },
            Field {
                name: "secret",
                valid: "{secret}",
                kind: Kind::Secret,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-secret"),
                stored: None,
            },
            Field {
                name: "name",
                valid: "Fresh app",
                kind: Kind::Text,
                sends: &Evil::ALL,
                // Optional: nothing names the app by its AppID.
                accepts: &[
                    Script, Attr, Sql, Emoji, Empty, Blank, Missing, NotUtf8, Surrogate,
                ],
                error: Shown::Id("e-name"),
                stored: Some(
                    "select case when name = appid then '' else name end
                       from apps where appid = '{fresh_appid}'",
                ),
            },
            Field {
                name: "token_mode",
                valid: "classic",
                kind: Kind::Other,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-token_mode"),
                stored: None,
            },
        ],
        shows: &["/dashboard", "/keys"],
    },
    FormSpec {
        what: "replace the secret",
        path: "/apps/{appid}/secret",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "secret",
                valid: "{other_secret}",
                kind: Kind::Secret,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-secret"),
                stored: None,
            },
        ],
        shows: &[],
    },
    FormSpec {
        what: "set a secondary secret",
        path: "/apps/{appid}/secondary",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "secondary_secret",
                valid: "{other_secret}",
                kind: Kind::Secret,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::Id("e-secondary_secret"),
                stored: None,
            },
        ],
        shows: &[],
    },
    FormSpec {
        what: "clear the secondary secret",
        path: "/apps/{appid}/secondary",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "clear",
                valid: "1",
                kind: Kind::Other,
                sends: &Evil::ALL,
                // A flag: present is on. Without it the form sets a
                // secondary secret, and none was typed.
                accepts: &[
                    Script, Attr, Sql, Emoji, LongAscii, LongWide, Empty, Blank, Nul, NotUtf8,
                    Surrogate,
                ],
                error: Shown::Id("e-secondary_secret"),
                stored: None,
            },
        ],
        shows: &[],
    },
    FormSpec {
        what: "switch refreshing",
        path: "/apps/{appid}/enabled",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "enabled",
                valid: "true",
                kind: Kind::Other,
                sends: &Evil::ALL,
                accepts: &[],
                error: Shown::BadRequest,
                stored: None,
            },
        ],
        shows: &[],
    },
    button_form("refresh now", "/apps/{appid}/refresh"),
    button_form("delete the app", "/apps/{appid}/delete"),
    FormSpec {
        what: "create a key",
        path: "/keys",
        who: Who::Owner,
        // ui_ops.rs sends the rest into the name (markup, SQL, emoji,
        // 10,000 characters, nothing) and the apps.
        fields: &[
            Field::csrf(),
            Field {
                name: "name",
                valid: "build server",
                kind: Kind::Text,
                sends: &[Attr, LongWide, Nul, Missing, NotUtf8, Surrogate],
                accepts: &[Attr, NotUtf8, Surrogate],
                error: Shown::Id("e-name"),
                stored: Some("select name from api_keys order by created_at desc limit 1"),
            },
            Field {
                name: "read_only",
                valid: "1",
                kind: Kind::Other,
                sends: &Evil::ALL,
                // A checkbox: any value is ticked, none is not.
                accepts: &Evil::ALL,
                error: Shown::Id("e-read_only"),
                stored: None,
            },
        ],
        shows: &["/keys"],
    },
    button_form("revoke a key", "/keys/{key}/revoke"),
    FormSpec {
        what: "invite someone",
        path: "/members/invite",
        who: Who::Owner,
        // ui_people.rs sends the rest (markup, SQL, emoji, 10,000 characters).
        fields: &[
            Field::csrf(),
            Field {
                name: "email",
                valid: "{fresh_email}",
                kind: Kind::Text,
                sends: &[Attr, Nul, Missing, NotUtf8, Surrogate],
                accepts: &[],
                error: Shown::Id("e-email"),
                stored: None,
            },
            Field {
                name: "role",
                valid: "viewer",
                kind: Kind::Other,
                sends: &[Attr, LongWide, Nul, Missing, NotUtf8, Surrogate],
                accepts: &[],
                error: Shown::Id("e-role"),
                stored: None,
            },
        ],
        shows: &[],
    },
    FormSpec {
        what: "change a role",
        path: "/members/{member}/role",
        who: Who::Owner,
        fields: &[
            Field::csrf(),
            Field {
                name: "role",
                valid: "admin",
                kind: Kind::Other,
                sends: &[Attr, LongWide, Nul, Missing, NotUtf8, Surrogate],
                accepts: &[],
                error: Shown::Id("e-row-{member}"),
                stored: None,
            },
        ],
        shows: &[],
    },
    button_form("remove a member", "/members/{member}/remove"),
    button_form("withdraw an invite", "/members/invites/{invite}/revoke"),
    button_form("sign out", "/logout"),
];

#[tokio::test]
async fn every_form_of_a_signed_in_owner_refuses_bad_input_field_by_field() {
    let sim = simulator();
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    let mut case = 0;
    for spec in OWNER_FORMS {
        run_form(&app, &owner, &ctx, spec, &mut case).await;
    }
    assert!(case > 150, "{case} posts");
    // Still signed in, the app still there: no refused post did anything.
    let res = owner.get(&format!("/apps/{APPID}")).await;
    assert_eq!(res.status(), 200);
}

/// Query parameters a page might read; every page gets all of them.
const QUERY_PARAMS: [&str; 7] = [
    "page", "action", "back", "before", "after", "cursor", "lang",
];

#[tokio::test]
async fn pages_opened_with_hostile_queries_and_paths_never_fail_or_reflect_markup() {
    let sim = simulator();
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    let anonymous = Browser::new(&app.address);
    // URLs carry the long values shorter: a client refuses a URL of 90 kB.
    let mut values: Vec<String> = Evil::ALL
        .iter()
        .filter(|e| **e != LongWide)
        .filter_map(|e| e.encoded())
        .collect();
    values.push(form_encode(&"中".repeat(2_000)));
    values.extend(
        [
            "-1",
            "0",
            "99999999999999999999",
            "9223372036854775807",
            "1e3",
            "%2e%2e%2f",
        ]
        .map(String::from),
    );

    // Every page with every parameter set to the same hostile value.
    let pages = [
        (&owner, "/dashboard"),
        (&owner, "/apps/new"),
        (&owner, "/apps/{appid}"),
        (&owner, "/keys"),
        (&owner, "/members"),
        (&owner, "/audit"),
        (&owner, "/status"),
        (&owner, "/operator"),
        (&anonymous, "/login"),
        (&anonymous, "/signup"),
        (&anonymous, "{invite_path}"),
    ];
    for (who, page) in pages {
        for v in &values {
            // Short values in every parameter at once; long ones one at a time.
            let queries: Vec<String> = if v.len() < 1_000 {
                vec![QUERY_PARAMS.map(|p| format!("{p}={v}")).join("&")]
            } else {
                QUERY_PARAMS.iter().map(|p| format!("{p}={v}")).collect()
            };
            for query in queries {
                let path = format!("{}?{query}", ctx.fill(page, 0));
                let res = who.get(&path).await;
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                let path = short(&path);
                assert!(status < 500, "{path}: {status}\n{}", short(&body));
                assert_no_raw_markup(&body, &path);
            }
        }
    }

    // The audit log's filter and cursor: a field error, or a plain refusal.
    let (script, attr) = (Script.encoded().unwrap(), Attr.encoded().unwrap());
    for (query, status, shown) in [
        (format!("action={script}"), 422, Some("id=\"e-action\"")),
        (format!("action={attr}"), 422, Some("id=\"e-action\"")),
        (format!("before={script}"), 400, None),
        ("before=-1".to_string(), 400, None),
        ("before=99999999999999999999".to_string(), 400, None),
        ("before=9223372036854775807".to_string(), 200, None),
    ] {
        let res = owner.get(&format!("/audit?{query}")).await;
        assert_eq!(res.status(), status, "{query}");
        let body = res.text().await.unwrap();
        if let Some(shown) = shown {
            assert!(body.contains(shown), "{query}");
        }
    }

    // Hostile path segments: pages that do not exist, never a failure.
    values.push("%0D%0ALocation:+%2F%2Fevil.test".into());
    for v in &values {
        for path in [
            format!("/apps/{v}"),
            format!("/invite/{v}"),
            format!("/lang/{v}"),
            format!("/{v}"),
        ] {
            let res = owner
                .client
                .get(format!("{}{path}", app.address))
                .header("Accept", "text/html")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            let path = short(&path);
            assert!(status < 500, "{path}: {status}\n{}", short(&body));
            assert_no_raw_markup(&body, &path);
        }
        for path in [
            format!("/apps/{APPID}/{v}"),
            format!("/apps/{v}/secret"),
            format!("/keys/{v}/revoke"),
            format!("/members/{v}/role"),
            format!("/members/{v}/remove"),
            format!("/members/invites/{v}/revoke"),
        ] {
            // With the right token and with a stale one (which goes back to the page).
            for csrf in [owner.csrf.as_str(), "stale"] {
                let res = owner
                    .client
                    .post(format!("{}{path}", app.address))
                    .form(&[("csrf_token", csrf), ("role", "viewer")])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                let path = short(&path);
                assert!(
                    status < 500,
                    "POST {path} ({csrf}): {status}\n{}",
                    short(&body)
                );
                assert_no_raw_markup(&body, &path);
            }
        }
    }

    // The language switch goes back to a page of this site, and only there.
    let plain = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let mut backs = values.clone();
    backs.extend(
        [
            "%2F%2Fevil.test%2Fx",
            "https%3A%2F%2Fevil.test%2F",
            "%2F%5Cevil.test",
            "javascript%3Aalert(1)",
            "%2F%0D%0ASet-Cookie%3A+tv_evil%3D1",
            "%2Fok%0A",
            "%2F%00",
            "%2F%E4%B8%AD%E6%96%87",
        ]
        .map(String::from),
    );
    for back in &backs {
        let res = plain
            .get(format!("{}/lang/zh-CN?back={back}", app.address))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let back = short(back);
        assert_eq!(status, 303, "back={back}");
        let location = String::from_utf8_lossy(res.headers()["location"].as_bytes());
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "back={back}: to {location}"
        );
        assert!(
            !res.headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.as_bytes().starts_with(b"tv_evil")),
            "back={back}: a header was injected"
        );
    }
}

/// What keeps a page from being usable with a screen reader, a keyboard or
/// on a phone; empty when nothing does.
fn accessibility_problems(html: &str) -> Vec<String> {
    use scraper::{ElementRef, Html, Selector};
    let doc = Html::parse_document(html);
    let all =
        |css: &str| -> Vec<ElementRef<'_>> { doc.select(&Selector::parse(css).unwrap()).collect() };
    let text = |el: &ElementRef| el.text().collect::<String>().trim().to_string();
    let attr = |el: &ElementRef, name: &str| el.value().attr(name).map(str::trim).map(String::from);
    let ancestors = |el: &ElementRef| -> Vec<String> {
        el.ancestors()
            .filter_map(ElementRef::wrap)
            .map(|a| a.value().name().to_string())
            .collect()
    };
    let mut problems = Vec::new();
    let ids: Vec<String> = all("[id]").iter().filter_map(|e| attr(e, "id")).collect();
    let has_id = |id: &str| ids.iter().any(|i| i == id);
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            problems.push(format!("id {id} is used twice"));
        }
    }

    if all("html[lang]")
        .iter()
        .all(|h| attr(h, "lang").unwrap_or_default().is_empty())
    {
        problems.push("html has no lang".into());
    }
    if !all("meta[name=viewport]").iter().any(|m| {
        attr(m, "content")
            .unwrap_or_default()
            .contains("width=device-width")
    }) {
        problems.push("no viewport meta tag".into());
    }
    let h1 = all("h1").len();
    if h1 != 1 {
        problems.push(format!("{h1} h1 elements"));
    }
    let main = all("main, [role=main]").len();
    if main != 1 {
        problems.push(format!("{main} main landmarks"));
    }
    for el in all("[tabindex]") {
        if attr(&el, "tabindex")
            .and_then(|t| t.parse::<i32>().ok())
            .unwrap_or(0)
            > 0
        {
            problems.push(format!("positive tabindex: {}", el.html()));
        }
    }
    // Every reference names an element that exists.
    for el in all("[aria-describedby], [aria-labelledby], label[for]") {
        for name in ["aria-describedby", "aria-labelledby", "for"] {
            for id in attr(&el, name).unwrap_or_default().split_whitespace() {
                if !has_id(id) {
                    problems.push(format!("{name}={id} names nothing"));
                }
            }
        }
    }
    let labelled_by_aria = |el: &ElementRef| {
        attr(el, "aria-label").is_some_and(|l| !l.is_empty())
            || attr(el, "aria-labelledby").is_some_and(|l| !l.is_empty())
    };
    for el in all("input, select, textarea") {
        let kind = attr(&el, "type").unwrap_or_default().to_ascii_lowercase();
        if el.value().name() == "input"
            && matches!(kind.as_str(), "hidden" | "submit" | "button" | "reset")
        {
            continue;
        }
        let by_for = attr(&el, "id").is_some_and(|id| {
            all("label[for]")
                .iter()
                .any(|l| attr(l, "for").as_deref() == Some(id.as_str()) && !text(l).is_empty())
        });
        let wrapped = ancestors(&el).iter().any(|a| a == "label");
        if !(by_for || wrapped || labelled_by_aria(&el)) {
            problems.push(format!("no label: {}", el.html()));
        }
    }
    for el in all("img") {
        if attr(&el, "alt").is_none() {
            problems.push(format!("no alt: {}", el.html()));
        }
    }
    for el in all("a[href], button, summary") {
        let named = !text(&el).is_empty()
            || labelled_by_aria(&el)
            || el
                .select(&Selector::parse("img[alt]").unwrap())
                .any(|i| attr(&i, "alt").is_some_and(|a| !a.is_empty()));
        if !named {
            problems.push(format!("no accessible name: {}", el.html()));
        }
    }
    for el in all("button") {
        let in_form = ancestors(&el).iter().any(|a| a == "form") || attr(&el, "form").is_some();
        if !in_form && attr(&el, "type").as_deref() != Some("button") {
            problems.push(format!(
                "a button outside a form without type=button: {}",
                el.html()
            ));
        }
    }
    problems
}

/// GET or POST `path` as `b` (HTML wanted) and collect the page's problems.
async fn audit_page(
    b: &Browser,
    what: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
    status: u16,
    problems: &mut Vec<String>,
) {
    let url = format!("{}{path}", b.address);
    let req = match form {
        Some(fields) => b.client.post(url).form(fields),
        None => b.client.get(url),
    };
    let res = req.header("Accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), status, "{what}: {path}");
    let html = res.text().await.unwrap();
    for p in accessibility_problems(&html) {
        problems.push(format!("{what} {path}: {p}"));
    }
}

#[tokio::test]
async fn every_page_has_labels_names_one_h1_a_main_landmark_and_a_viewport() {
    let sim = simulator();
    let failing = "wx00000000000000f1";
    sim.add_app(failing, OTHER_SECRET);
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    // A second app whose secret WeChat refuses: the app page explains it.
    let res = owner
        .post_json(
            "/api/v1/apps",
            &serde_json::json!({ "appid": failing, "secret": SECRET, "name": "Broken <app>" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let viewer = app.login("viewer@forms.test", PASSWORD).await;
    let operator = crate::ui_ops::create_operator(&app, "ops@forms.test").await;
    let newcomer = app.signup("Empty Co", "empty@forms.test").await;
    let anonymous = Browser::new(&app.address);
    let invite_path = ctx.fill("{invite_path}", 0);
    let app_page = format!("/apps/{APPID}");
    let failing_page = format!("/apps/{failing}");
    let csrf = owner.csrf.as_str();
    let secret_path = format!("/apps/{APPID}/secret");

    let mut problems = Vec::new();
    let a = &anonymous;
    for (b, what, path, form, status) in [
        (a, "anonymous", "/login", None, 200),
        (a, "anonymous", "/signup", None, 200),
        (a, "anonymous", invite_path.as_str(), None, 200),
        (a, "anonymous", "/invite/nope", None, 404),
        (a, "anonymous", "/invite", None, 404),
        (a, "anonymous", "/no-such-page", None, 404),
        (a, "anonymous", "/api/docs", None, 200),
        (
            a,
            "anonymous, errors",
            "/signup",
            Some(&[("organization", ""), ("email", "x"), ("password", "")][..]),
            422,
        ),
        (
            a,
            "anonymous, errors",
            "/login",
            Some(&[("email", "x"), ("password", "")][..]),
            422,
        ),
        (
            a,
            "anonymous, errors",
            invite_path.as_str(),
            Some(&[("email", "invited@forms.test"), ("password", "")][..]),
            422,
        ),
    ] {
        audit_page(b, what, path, form, status, &mut problems).await;
    }
    let o = &owner;
    for (b, what, path, form, status) in [
        (o, "owner", "/dashboard", None, 200),
        (o, "owner", "/apps/new", None, 200),
        (o, "owner", app_page.as_str(), None, 200),
        (o, "owner", failing_page.as_str(), None, 200),
        (o, "owner", "/keys", None, 200),
        (o, "owner", "/members", None, 200),
        (o, "owner", "/audit", None, 200),
        (o, "owner", "/audit?action=nope", None, 422),
        (o, "owner", "/status", None, 200),
        (o, "owner", "/operator", None, 403),
        (o, "owner", "/apps/wx0000000000000000", None, 404),
        (
            o,
            "owner, errors",
            "/apps/new",
            Some(
                &[
                    ("csrf_token", csrf),
                    ("appid", "x"),
                    ("secret", ""),
                    ("token_mode", "x"),
                ][..],
            ),
            422,
        ),
        (
            o,
            "owner, errors",
            secret_path.as_str(),
            Some(&[("csrf_token", csrf), ("secret", "x")][..]),
            422,
        ),
        (
            o,
            "owner, errors",
            "/keys",
            Some(&[("csrf_token", csrf), ("name", ""), ("apps", "wxnope")][..]),
            422,
        ),
        (
            o,
            "owner, key shown",
            "/keys",
            Some(&[("csrf_token", csrf), ("name", "ci")][..]),
            201,
        ),
        (
            o,
            "owner, invite shown",
            "/members/invite",
            Some(
                &[
                    ("csrf_token", csrf),
                    ("email", "x@forms.test"),
                    ("role", "admin"),
                ][..],
            ),
            201,
        ),
        (&newcomer, "owner, no apps", "/dashboard", None, 200),
        (&viewer, "viewer", "/dashboard", None, 200),
        (&viewer, "viewer", app_page.as_str(), None, 200),
        (&viewer, "viewer", failing_page.as_str(), None, 200),
        (&viewer, "viewer", "/members", None, 200),
        (&viewer, "viewer", "/status", None, 200),
        (&viewer, "viewer", "/keys", None, 403),
        (&operator, "operator", "/operator", None, 200),
        (&operator, "operator", "/status", None, 200),
        (&operator, "operator", "/no-such-page", None, 404),
    ] {
        audit_page(b, what, path, form, status, &mut problems).await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself sees each problem it looks for.
#[test]
fn the_accessibility_check_sees_each_problem() {
    let good = r##"<!doctype html><html lang="en"><head>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
        <a class="skip" href="#main">Skip</a><main id="main"><h1>Title</h1>
        <form><label for="f-a">A</label><input id="f-a" aria-describedby="h-a"><p id="h-a">hint</p>
        <label><input type="checkbox" name="c"> C</label><input type="hidden" name="csrf_token">
        <select aria-label="Role"><option>x</option></select><button>Send</button></form>
        <button type="button">Copy</button><img src="x.png" alt=""></main></body></html>"##;
    assert_eq!(accessibility_problems(good), Vec::<String>::new());
    let bad = r#"<!doctype html><html><head></head><body>
        <h1>One</h1><h1>Two</h1><div tabindex="3">x</div>
        <form><input id="f-a" aria-describedby="e-a"><textarea></textarea></form>
        <p id="dup"></p><p id="dup"></p><img src="x.png"><a href="/x"> </a>
        <button>Copy</button><summary></summary></body></html>"#;
    let found = accessibility_problems(bad).join("\n");
    for expected in [
        "html has no lang",
        "no viewport meta tag",
        "2 h1 elements",
        "0 main landmarks",
        "positive tabindex",
        "aria-describedby=e-a names nothing",
        "no label: <input",
        "no label: <textarea",
        "id dup is used twice",
        "no alt",
        "no accessible name: <a",
        "no accessible name: <summary",
        "a button outside a form without type=button",
    ] {
        assert!(found.contains(expected), "{expected} not seen in:\n{found}");
    }
}
