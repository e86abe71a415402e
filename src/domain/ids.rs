//! Ids of the rows tokenvault owns, one type each: a tenant id can't be
//! passed where an app's is expected. All are UUIDs the application makes,
//! stored as `uuid` (`sqlx::Type`, transparent) and shown as text.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                s.parse().map(Self)
            }
        }
    };
}

id!(
    /// An organisation.
    TenantId
);
id!(
    /// A person (a tenant member or an operator).
    UserId
);
id!(
    /// A registered app: tokenvault's own id, not WeChat's AppID ([`super::AppId`]).
    AppUuid
);
id!(
    /// An API key.
    ApiKeyId
);
id!(
    /// An invitation to join an organisation.
    InviteId
);

id!(
    /// An alert channel (a webhook, a group robot).
    AlertChannelId
);
id!(
    /// One delivery of an alert event to one channel; the id receivers see,
    /// stable across retries.
    AlertDeliveryId
);
id!(
    /// A summary: the deliveries of many apps' changes to one channel sent
    /// as one message; the id receivers see, stable across retries.
    AlertSummaryId
);
id!(
    /// A browser session, as its owner sees it (never the cookie's hash).
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_their_uuid() {
        let t = TenantId::new();
        assert_eq!(t.to_string().parse::<TenantId>().unwrap(), t);
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        assert!(format!("{t:?}").starts_with("TenantId("));
        assert_ne!(AppUuid::new().uuid(), AppUuid::new().uuid());
    }
}
