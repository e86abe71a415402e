//! Members of an organisation: list them, change a member's role, remove
//! one, by the organisation's rules: admins manage admins and viewers,
//! owners manage everyone, and an organisation never loses its last owner.

use sqlx::PgConnection;

use super::Actor;
use crate::auth::TenantScope;
use crate::db;
use crate::domain::{AuditAction, FieldError, Role, TenantId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::db::accounts::MemberRow;

/// The roles a tenant member can have, highest first.
pub const TENANT_ROLES: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

/// Whether `actor` may give or take a role from a member who has `current`
/// and is to get `new` (admins manage admins and viewers; owners manage all).
pub fn may_manage(actor: Role, current: Role, new: Option<Role>) -> bool {
    let touches_owner = current == Role::Owner || new == Some(Role::Owner);
    match actor {
        Role::Owner => true,
        Role::Admin => !touches_owner,
        _ => false,
    }
}

/// The members of the actor's organisation, oldest first (every member
/// may see them), with the scope the actor acts in.
pub async fn list(
    state: &AppState,
    actor: &Actor,
) -> Result<(TenantScope, Vec<MemberRow>), ApiError> {
    let scope = actor.require_person(Role::Viewer)?;
    let members = db::accounts::list_members(&state.pool, scope.tenant_id).await?;
    Ok((scope, members))
}

/// A member whose role was changed.
pub struct RoleChange {
    /// The member, as before the change.
    pub member: MemberRow,
    /// The role they had.
    pub from: Role,
    /// The role they have now.
    pub to: Role,
}

/// Change a member's role by the rules of the organisation. The member's
/// sessions end, so the new role applies at once; giving the role they
/// have changes nothing (no audit entry, no sign-out).
pub async fn change_role(
    state: &AppState,
    actor: &Actor,
    member_id: UserId,
    new_role: Role,
) -> Result<RoleChange, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    if new_role == Role::Operator {
        return Err(
            FieldError::new("role", "invalid_role", "choose owner, admin or viewer").into(),
        );
    }
    let mut tx = state.pool.begin().await?;
    let member = lock_member(&mut tx, &scope, member_id).await?;
    let current = member.role;
    if !may_manage(scope.role, current, Some(new_role)) {
        return Err(ApiError::Forbidden(
            "only an owner may give or take the owner role",
        ));
    }
    if current == new_role {
        return Ok(RoleChange {
            member,
            from: current,
            to: new_role,
        });
    }
    if current == Role::Owner && new_role != Role::Owner {
        ensure_another_owner(&mut tx, scope.tenant_id).await?;
    }
    db::accounts::set_role(&mut tx, scope.tenant_id, member_id, new_role).await?;
    if !new_role.at_least(Role::Admin) {
        withdraw_invites_of(&mut tx, actor, &scope, &member, "inviter_demoted").await?;
    }
    let event = actor
        .audit(AuditAction::MemberRoleChanged)
        .target(member.email.as_str())
        .detail(serde_json::json!({ "from": current, "to": new_role }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(RoleChange {
        member,
        from: current,
        to: new_role,
    })
}

/// Remove a member by the rules of the organisation; returns the member as
/// they were.
pub async fn remove(
    state: &AppState,
    actor: &Actor,
    member_id: UserId,
) -> Result<MemberRow, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let member = lock_member(&mut tx, &scope, member_id).await?;
    if !may_manage(scope.role, member.role, None) {
        return Err(ApiError::Forbidden("only an owner may remove an owner"));
    }
    if member.role == Role::Owner {
        ensure_another_owner(&mut tx, scope.tenant_id).await?;
    }
    withdraw_invites_of(&mut tx, actor, &scope, &member, "inviter_removed").await?;
    db::accounts::delete_member(&mut tx, scope.tenant_id, member_id).await?;
    // Their address is a stranger's now: mail channels to it stop.
    let secret = crate::domain::credential::random_token(32);
    let paused = db::alert_confirmations::unconfirm_address(
        &mut tx,
        scope.tenant_id,
        member.email.as_str(),
        secret.as_bytes(),
    )
    .await?;
    let event = actor
        .audit(AuditAction::MemberRemoved)
        .target(member.email.as_str())
        .detail(serde_json::json!({ "alert_channels_paused": paused }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(member)
}

/// Withdraw the open invites `member` created (they were removed, or may
/// no longer invite), each audited with `reason`.
async fn withdraw_invites_of(
    tx: &mut PgConnection,
    actor: &Actor,
    scope: &TenantScope,
    member: &MemberRow,
    reason: &str,
) -> Result<(), ApiError> {
    let withdrawn = db::invites::withdraw_created_by(tx, scope.tenant_id, member.id).await?;
    for invite in withdrawn {
        let event = actor
            .audit(AuditAction::InviteWithdrawn)
            .target(invite.id.to_string())
            .detail(serde_json::json!({
                "role": invite.role,
                "email": invite.email,
                "reason": reason,
                "inviter": member.email,
            }));
        db::audit::record(&mut *tx, event).await?;
    }
    Ok(())
}

async fn lock_member(
    tx: &mut PgConnection,
    scope: &TenantScope,
    member_id: UserId,
) -> Result<MemberRow, ApiError> {
    db::accounts::member_for_update(tx, scope.tenant_id, member_id)
        .await?
        .ok_or(ApiError::NotFound("member"))
}

/// The last-owner rule: refused unless another owner stays (the owners'
/// rows are locked, so two demotions cannot both pass).
async fn ensure_another_owner(tx: &mut PgConnection, tenant_id: TenantId) -> Result<(), ApiError> {
    if db::accounts::owner_count_for_update(tx, tenant_id).await? < 2 {
        return Err(ApiError::Conflict {
            code: "last_owner",
            detail: "an organisation needs at least one owner: make someone else owner first"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_manage_whom() {
        assert!(may_manage(Role::Owner, Role::Owner, Some(Role::Viewer)));
        assert!(may_manage(Role::Admin, Role::Viewer, Some(Role::Admin)));
        assert!(!may_manage(Role::Admin, Role::Owner, Some(Role::Viewer)));
        assert!(!may_manage(Role::Admin, Role::Viewer, Some(Role::Owner)));
        assert!(!may_manage(Role::Admin, Role::Owner, None));
        assert!(!may_manage(Role::Viewer, Role::Viewer, None));
    }
}
