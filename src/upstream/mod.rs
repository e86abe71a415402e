//! Upstream token providers: how tokenvault talks to WeChat, and a faithful
//! WeChat simulator for tests and offline demos.

pub mod simulator;
