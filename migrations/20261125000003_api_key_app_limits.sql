-- A key limited to some apps must stay limited when those apps are deleted:
-- before this flag, an empty api_key_apps list meant "every app", so deleting
-- the only app a key was limited to widened the key to the whole tenant.
alter table api_keys add column limited_to_apps boolean not null default false;
update api_keys k set limited_to_apps = exists (select 1 from api_key_apps a where a.api_key_id = k.id);
