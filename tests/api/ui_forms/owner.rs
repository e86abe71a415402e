//! Every form of a signed-in owner, field by field.

use super::*;

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
