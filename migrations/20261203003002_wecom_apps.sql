-- WeCom (企业微信) apps: their id is {corpid}-{agentid} (a corpid is 'ww' or
-- 'wx' and 16 hex digits; an agentid a positive number), beside WeChat's
-- AppIDs. The kind of an app is told by the form of its id.
alter table apps drop constraint apps_appid_check;
alter table apps add constraint apps_appid_check
    check (appid ~ '^wx[0-9a-f]{16}$' or appid ~ '^w[wx][0-9a-f]{16}-[1-9][0-9]{0,9}$');
