-- A WeChat app is labelled a mini-program or an official account (both use
-- the same token endpoints; the label tells people which is which). WeCom
-- apps (ids '{corpid}-{agentid}') have no label.
alter table apps add column account_type text default 'mini_program'
    check (account_type in ('mini_program', 'official_account'));
update apps set account_type = null where appid ~ '-';
alter table apps add constraint apps_account_type_kind
    check ((account_type is null) = (appid ~ '-'));
