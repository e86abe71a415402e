-- An operator may give one organisation its own limit on registered apps;
-- null means the service's default (TOKENVAULT_MAX_APPS_PER_TENANT).
alter table tenants add column app_limit integer
    check (app_limit is null or app_limit between 0 and 1000000);
