//! Settings: projects and their checklists, users, templates, API keys (admins), and
//! integrations (the provider for admins; phone linking for everyone).

pub mod api_keys;
pub mod fields;
pub mod integrations;
pub mod myoperator;
pub mod project_vision;
pub mod projects;
pub mod templates;
pub mod users;
pub mod vision;
pub mod webhooks;
