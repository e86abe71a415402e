//! The page an invite link opens: the form that joins the organisation
//! (by the same use case as the JSON API), or why the link does not work.

use crate::secret::Password;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::pages::{FieldErrors, field_errors, one, when};
use super::people::role_name;
use super::{Page, redirect_with_flash};
use crate::error::ApiError;
use crate::service::invites::{self, ClosedInvite, InviteByToken};
use crate::state::AppState;

/// The page for a link that does not work, saying what to do next.
fn closed_invite(page: &Page, why: ClosedInvite, invite: Option<&InviteByToken>) -> HttpResponse {
    let (status, reason) = match why {
        ClosedInvite::Unknown => (StatusCode::NOT_FOUND, "unknown"),
        ClosedInvite::Used => (StatusCode::GONE, "used"),
        ClosedInvite::Expired => (StatusCode::GONE, "expired"),
    };
    page.render(
        status,
        "invite_closed.html",
        context! {
            reason,
            organization => invite.map(|i| i.tenant_name.as_str()),
            expired_at => invite.map(|i| when(i.expires_at)),
        },
    )
}

/// Render the form that accepts `invite`.
fn join_form(
    page: &Page,
    invite: &InviteByToken,
    invite_token: &str,
    status: StatusCode,
    email: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    page.render(
        status,
        "invite.html",
        context! {
            organization => invite.tenant_name.as_str(),
            role => invite.role.as_str(),
            role_name => role_name(page.lang, invite.role.as_str()),
            fixed_email => invite.email.as_deref(),
            action => format!("/invite/{invite_token}"),
            expires_at => when(invite.expires_at),
            form => context! { email => invite.email.as_deref().unwrap_or(email) },
            errors => Serde(errors),
        },
    )
}

/// GET /invite/{token}: the form that joins the organisation, or a page
/// saying why the link does not work and what to do.
pub async fn invite_page(
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    match invites::open(&state, &path).await {
        Ok(Ok(invite)) => join_form(
            &page,
            &invite,
            &path,
            StatusCode::OK,
            "",
            &FieldErrors::new(),
        ),
        Ok(Err((why, invite))) => closed_invite(&page, why, invite.as_ref()),
        Err(e) => page.error(&e),
    }
}

/// The join form as posted (the password is never sent back).
#[derive(Debug, Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    email: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    password: Password,
    /// The pre-session token (login CSRF).
    #[serde(default)]
    login_token: String,
}

/// POST /invite/{token}: create the account with the invite's role and
/// sign it in, by the API's code path.
pub async fn accept_invite(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<JoinForm>,
) -> HttpResponse {
    let JoinForm {
        email,
        password,
        login_token,
    } = form.into_inner();
    let invite = match invites::open(&state, &path).await {
        Ok(Ok(invite)) => invite,
        Ok(Err((why, invite))) => return closed_invite(&page, why, invite.as_ref()),
        Err(e) => return page.error(&e),
    };
    let again =
        |status, errors: FieldErrors| join_form(&page, &invite, &path, status, &email, &errors);
    // No session yet: the same check against login CSRF as sign-up.
    if !page.signed_out_form_ok(&req, &login_token) {
        return again(
            StatusCode::FORBIDDEN,
            one("form", page.lang.text("err_cross_site")),
        );
    }
    let password = password.into_secret();
    let visitor = super::account::visitor_of(&page, &req);
    match invites::accept(&state, &visitor, &path, &email, password).await {
        Ok(joined) => {
            let key = format!("invite_joined_{}", joined.role.as_str());
            let mut res = redirect_with_flash("/dashboard", "ok", &key, "");
            let _ = res.add_cookie(&joined.session.cookie);
            res
        }
        Err(ApiError::Validation(errors)) => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, &errors),
        ),
        Err(ApiError::Conflict { .. }) => again(
            StatusCode::CONFLICT,
            one("email", page.lang.text("invite_email_taken")),
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            StatusCode::TOO_MANY_REQUESTS,
            one("form", page.lang.text("error_too_many")),
        ),
        Err(ApiError::Busy(_)) => again(
            StatusCode::SERVICE_UNAVAILABLE,
            one("form", page.lang.text("error_busy")),
        ),
        // Used or expired between opening the page and sending it.
        Err(ApiError::NotFound(_)) => match invites::open(&state, &path).await {
            Ok(Err((why, invite))) => closed_invite(&page, why, invite.as_ref()),
            _ => closed_invite(&page, ClosedInvite::Unknown, None),
        },
        Err(e) => page.error(&e),
    }
}

/// GET /invite: the invite link without its token (cut off when copied).
pub async fn invite_without_token(page: Page) -> HttpResponse {
    closed_invite(&page, ClosedInvite::Unknown, None)
}
