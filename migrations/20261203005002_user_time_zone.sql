-- A person's chosen time zone (an IANA name PostgreSQL knows, checked by
-- the use case); null: the browser's own zone.
alter table users add column time_zone text
    check (time_zone is null or (length(time_zone) between 1 and 64));
