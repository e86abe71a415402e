-- Alert channels of kind `email`: mail through the mailer to the
-- organisation's verified owners and admins (target `members`) or to one
-- address (the target, encrypted like a URL).
alter table alert_channels drop constraint alert_channels_kind_check;
alter table alert_channels add constraint alert_channels_kind_check
    check (kind in ('webhook', 'wecom', 'feishu', 'dingtalk', 'email'));
