//! The integration test suite: one binary, so the test PostgreSQL cluster is
//! started once per run and shared by every test (each with its own database).

#![allow(
    clippy::too_many_lines,
    reason = "a scenario test reads best as one story"
)]

mod account_security;
mod accounts;
mod accounts_roles;
mod accounts_tenants;
mod alerts;
mod alerts_snippets;
mod apps;
mod apps_access;
mod browser;
mod browser_a11y;
mod browser_axe;
mod browser_ops;
mod browser_people;
mod browser_times;
mod cli;
mod crypto;
mod guards;
mod guards_budget;
mod guards_edge;
mod guards_edge_app_limit;
mod guards_edge_stats;
mod health;
mod helpers;
mod hermetic;
mod jobs;
mod mail;
mod openapi;
mod refresh;
mod refresh_races;
mod security;
mod simulator;
mod simulator_faults;
mod tickets;
mod ui;
mod ui_app_page;
mod ui_audit;
mod ui_charts;
mod ui_forms;
mod ui_invites;
mod ui_ops;
mod ui_people;
mod ui_snippets;
mod ui_time_zone;
mod upstream;
mod wechat_compat;
