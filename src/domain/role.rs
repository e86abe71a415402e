use serde::{Deserialize, Serialize};

/// What a person may do. Tenant roles are ordered: owner > admin > viewer.
/// The operator runs the service itself and belongs to no tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Role {
    /// Everything in the tenant, including other owners.
    Owner,
    /// Apps, keys and members (but not owners).
    Admin,
    /// Health and logs; never a secret or a token.
    Viewer,
    /// The service's own operators: every tenant's health, nothing secret.
    Operator,
}

names!(Role {
    Owner = "owner",
    Admin = "admin",
    Viewer = "viewer",
    Operator = "operator",
});

impl Role {
    /// Rank within a tenant; operators have no tenant rank.
    fn rank(self) -> u8 {
        match self {
            Self::Owner => 3,
            Self::Admin => 2,
            Self::Viewer => 1,
            Self::Operator => 0,
        }
    }

    /// Whether this tenant role includes everything `other` may do.
    pub fn at_least(self, other: Role) -> bool {
        self != Self::Operator && self.rank() >= other.rank()
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn ranks() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Admin));
        assert!(!Role::Operator.at_least(Role::Viewer));
        for r in [Role::Owner, Role::Admin, Role::Viewer, Role::Operator] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
