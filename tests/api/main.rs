//! The integration test suite: one binary, so the test PostgreSQL cluster is
//! started once per run and shared by every test (each with its own database).

mod cli;
mod crypto;
mod health;
mod helpers;
