//! The forms of people not signed in yet (sign up, sign in, join), field
//! by field.

use super::*;

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
