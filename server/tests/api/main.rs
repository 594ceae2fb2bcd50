//! The server over real HTTP, in one test binary (one link of the whole server instead of
//! one per file): one module per capability, all started by `helpers::spawn_app` with the
//! background workers off, so tests drive the inbox and the outbox (`TestApp::drain`) instead
//! of sleeping and polling. Every scenario runs on SQLite and on PostgreSQL
//! (`dropcheck_core::testing::on_each_backend`).

mod helpers;

mod first_contact;
mod http;
mod layout;
mod openapi;
mod security;
mod whatsapp;
