//! The integration test suite: one binary, so the test PostgreSQL cluster is
//! started once per run and shared by every test (each with its own database).

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story"
)]

mod account_banner;
mod account_invites;
mod account_language;
mod account_leaving;
mod account_security;
mod account_sessions;
mod account_types;
mod accounts;
mod accounts_roles;
mod accounts_tenants;
mod alerts;
mod alerts_email;
mod alerts_folding;
mod alerts_limits;
mod alerts_replicas;
mod alerts_snippets;
mod alerts_summary;
mod apps;
mod apps_access;
mod browser;
mod browser_a11y;
mod browser_account;
mod browser_alerts;
mod browser_axe;
mod browser_ops;
mod browser_people;
mod browser_recovery;
mod browser_times;
mod browser_two_factor;
mod cli;
mod crypto;
mod db_tls;
mod embedded_auth;
mod guards;
mod guards_budget;
mod guards_edge;
mod guards_edge_app_limit;
mod guards_edge_stats;
mod health;
mod helpers;
mod hermetic;
mod jobs;
mod login_csrf;
mod mail;
mod openapi;
mod operator_audit;
mod refresh;
mod refresh_races;
mod security;
mod simulator;
mod simulator_faults;
mod tickets;
mod tickets_schedule;
mod two_factor;
mod two_factor_ui;
mod ui;
mod ui_alerts;
mod ui_app_page;
mod ui_audit;
mod ui_charts;
mod ui_forms;
mod ui_invites;
mod ui_ops;
mod ui_people;
mod ui_snippets;
mod ui_tickets;
mod ui_time_zone;
mod ui_wecom;
mod upstream;
mod wechat_compat;
mod wecom;
mod wecom_tickets;
