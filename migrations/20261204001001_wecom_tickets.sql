-- WeCom's JS-SDK tickets: a WeCom app keeps its company ticket (as `jsapi`)
-- and its app ticket (`agent_config`) in app_tickets like WeChat's tickets.
alter table app_tickets drop constraint app_tickets_ticket_type_check;
alter table app_tickets add constraint app_tickets_ticket_type_check
    check (ticket_type in ('jsapi', 'wx_card', 'agent_config'));
alter table refresh_log drop constraint refresh_log_credential_check;
alter table refresh_log add constraint refresh_log_credential_check
    check (credential in ('access_token', 'jsapi_ticket', 'wx_card_ticket', 'agent_config_ticket'));

-- Calls per clock hour (UTC) for providers that limit by the hour (WeCom's
-- ticket APIs: per company and per app). `scope` names what is counted,
-- e.g. 'wecom:ww0123456789abcdef:jsapi' or
-- 'app:ww0123456789abcdef-1000002:agent_config' (WeCom counts per company and
-- app whoever asks, so the rows are not per organisation); the engine locks
-- the rows in the ticket's transaction, company before app.
create table hourly_budget (
    scope   text primary key,
    hour    timestamptz not null,
    calls   integer not null default 0 check (calls >= 0)
);
