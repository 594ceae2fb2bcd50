//! The server over real HTTP, in one test binary (one link of the whole server instead of
//! one per file): one module per capability, all started by `helpers::spawn_app` with the
//! background workers off, so tests drive the inbox and the outbox (`TestApp::drain`) instead
//! of sleeping and polling. Every scenario runs on SQLite and on PostgreSQL
//! (`dropcheck_core::testing::on_each_backend`).
//!
//! Each test runs its servers on a multi-threaded runtime, as the binary does: on a
//! current-thread runtime, a server-rendered page now and then never answered (about one run
//! of this binary in eight on a two-core machine; no log line, no error, the request simply
//! pending until the client's timeout), the same class of hang Leptos' issue 4647 reports for
//! resource-backed pages on a single worker.

mod helpers;

mod automations;
mod contacts;
mod exports;
mod first_contact;
mod http;
mod layout;
mod myoperator;
mod openapi;
mod operations;
mod photo_checks;
mod security;
mod vision;
mod webhooks_out;
mod whatsapp;
