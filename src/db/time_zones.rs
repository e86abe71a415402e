//! A person's chosen time zone (`users.time_zone`) and the zone names the
//! database knows (PostgreSQL's IANA time zone data).

use sqlx::PgExecutor;

use crate::domain::UserId;

/// Store `zone` (none: the browser's) as `user`'s time zone.
pub async fn set(
    db: impl PgExecutor<'_>,
    user: UserId,
    zone: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set time_zone = $2 where id = $1",
        user as UserId,
        zone
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whether `name` is a time zone the database knows, as a region/city name
/// (`Asia/Shanghai`) or `UTC`; never a POSIX rule or an abbreviation.
pub async fn is_known(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from pg_timezone_names
                          where name = $1 and (name = 'UTC' or name ~ '^[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+)+$')
                            and name !~ '^(posix|right|Etc|SystemV)/') as "known!""#,
        name
    )
    .fetch_one(db)
    .await
}

/// The region/city zone names the database knows, sorted (for the form's
/// suggestions; at most 1000).
pub async fn names(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select name as "name!" from pg_timezone_names
            where name ~ '^[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+)+$'
              and name !~ '^(posix|right|Etc|SystemV)/'
            order by name
            limit 1000"#
    )
    .fetch_all(db)
    .await
}
