//! Message templates as admins manage them (`/settings/templates`, the API): list, get,
//! create, update, enable/disable. Every save renders the body with the template's sample
//! variables first, so a syntax error or an unknown variable is refused, never stored.

use serde::Serialize;
use sqlx::FromRow;

use crate::error::{CoreError, CoreResult, InputError};
use crate::store::{on_db, Db, DropDetail, Store};
use crate::templates::{self, ProviderTemplates};

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct TemplateRow {
    pub name: String,
    pub body: String,
    pub enabled: bool,
    pub description: Option<String>,
    /// JSON object: the variables the preview and the save check render with.
    pub sample_vars: Option<String>,
    /// JSON, see [`ProviderTemplates`].
    pub provider_template: Option<String>,
    pub updated_at: i64,
}

impl TemplateRow {
    pub fn built_in(&self) -> bool {
        templates::shipped(&self.name).is_some()
    }
}

/// A template as submitted by the editor or the API.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    pub name: String,
    pub body: String,
    pub description: String,
    pub sample_vars: String,
    /// JSON, empty for none.
    pub provider_template: String,
    pub enabled: bool,
}

const SELECT: &str =
    "select name, body, enabled <> 0 as enabled, description, sample_vars, provider_template, updated_at from message_template";

fn check_name(name: &str) -> Result<(), InputError> {
    let ok = (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(InputError::new("invalid_name", "a template name is 2–64 lower-case letters, digits and _, starting with a letter"))
    }
}

impl TemplateInput {
    /// Checks everything and returns the rendered sample (what the preview shows).
    pub fn check(&self) -> Result<String, InputError> {
        check_name(&self.name)?;
        if self.description.chars().count() > 300 {
            return Err(InputError::new("invalid_description", "a description has at most 300 characters"));
        }
        if !self.provider_template.trim().is_empty() {
            ProviderTemplates::parse(&self.provider_template)?;
        }
        templates::check(&self.body, &self.sample_vars)
    }
}

impl Store {
    pub async fn templates(&self) -> CoreResult<Vec<TemplateRow>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, TemplateRow>(&format!("{SELECT} order by name")).fetch_all(pool).await?))
    }

    pub async fn template(&self, name: &str) -> CoreResult<TemplateRow> {
        on_db!(self, pool => sqlx::query_as::<_, TemplateRow>(&format!("{SELECT} where name = $1")).bind(name).fetch_optional(pool).await?)
            .ok_or_else(|| CoreError::not_found("template_not_found", format!("There is no template called {name}.")))
    }

    /// Creates (`create`) or updates a template after checking it; returns the stored row.
    pub async fn save_template(&self, t: &TemplateInput, create: bool) -> CoreResult<TemplateRow> {
        t.check()?;
        let provider = Some(t.provider_template.trim()).filter(|s| !s.is_empty());
        let sample = Some(t.sample_vars.trim()).filter(|s| !s.is_empty());
        let description = Some(t.description.trim()).filter(|s| !s.is_empty());
        let now = crate::now_ms();
        let enabled = i64::from(t.enabled);
        let n = on_db!(self, pool => if create {
            sqlx::query(
                "insert into message_template (name, body, enabled, description, sample_vars, provider_template, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7) on conflict (name) do nothing")
                .bind(&t.name).bind(t.body.trim()).bind(enabled).bind(description).bind(sample).bind(provider).bind(now)
                .execute(pool).await?.rows_affected()
        } else {
            sqlx::query(
                "update message_template set body = $2, enabled = $3, description = $4, sample_vars = $5, provider_template = $6, updated_at = $7
                 where name = $1")
                .bind(&t.name).bind(t.body.trim()).bind(enabled).bind(description).bind(sample).bind(provider).bind(now)
                .execute(pool).await?.rows_affected()
        });
        if n == 0 {
            return Err(if create {
                CoreError::conflict("template_exists", format!("A template called {} exists already.", t.name))
            } else {
                CoreError::not_found("template_not_found", format!("There is no template called {}.", t.name))
            });
        }
        self.template(&t.name).await
    }

    pub async fn set_template_enabled(&self, name: &str, enabled: bool) -> CoreResult<()> {
        let n = on_db!(self, pool => sqlx::query("update message_template set enabled = $1, updated_at = $2 where name = $3")
            .bind(i64::from(enabled)).bind(crate::now_ms()).bind(name).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("template_not_found", format!("There is no template called {name}.")));
        }
        Ok(())
    }
}

impl Store {
    /// Seeds the built-in templates with their descriptions and sample variables (an
    /// admin's edits are kept).
    pub(crate) async fn seed_templates(&self) -> CoreResult<()> {
        let now = crate::now_ms();
        on_db!(self, pool => {
            for (name, body) in templates::BUILT_IN.iter().chain(templates::NOTIFICATIONS) {
                let (description, sample) = templates::sample(name).unwrap_or(("", "{}"));
                sqlx::query(
                    "insert into message_template (name, body, enabled, description, sample_vars, updated_at) values ($1, $2, 1, $3, $4, $5)
                     on conflict (name) do update set description = coalesce(message_template.description, excluded.description),
                        sample_vars = coalesce(message_template.sample_vars, excluded.sample_vars)")
                    .bind(*name).bind(*body).bind(description).bind(sample).bind(now).execute(pool).await?;
            }
            for (name, old) in templates::SUPERSEDED {
                let (Some(body), Some((_, sample))) = (templates::built_in(name), templates::sample(name)) else { continue };
                sqlx::query("update message_template set body = $1, sample_vars = $2, updated_at = $3 where name = $4 and body = $5")
                    .bind(body).bind(sample).bind(now).bind(*name).bind(*old).execute(pool).await?;
            }
        });
        Ok(())
    }

    /// Renders a stored template (the built-in when the row is missing).
    pub async fn render_template(&self, name: &str, vars: minijinja::Value) -> CoreResult<String> {
        let body: Option<String> = on_db!(self, pool => sqlx::query_scalar("select body from message_template where name = $1")
            .bind(name).fetch_optional(pool).await?);
        let body = match body {
            Some(b) => b,
            None => templates::shipped(name).ok_or_else(|| CoreError::Internal(format!("no template {name}")))?.to_string(),
        };
        templates::render(name, &body, vars)
    }

    /// Names (or, with `None`, removes) the approved provider templates a template is sent as
    /// outside the 24-hour window.
    pub async fn set_provider_template(&self, name: &str, t: Option<&templates::ProviderTemplates>) -> CoreResult<()> {
        let json = match t.filter(|t| !t.is_empty()) {
            Some(t) => Some(serde_json::to_string(t).map_err(|e| CoreError::Internal(e.to_string()))?),
            None => None,
        };
        let n = on_db!(self, pool => sqlx::query("update message_template set provider_template = $1, updated_at = $2 where name = $3")
            .bind(&json).bind(crate::now_ms()).bind(name).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("template_not_found", format!("template {name}")));
        }
        Ok(())
    }

    /// The feedback message "Mark incomplete" would queue now, rendered from the stored
    /// `drop_feedback` template, with the variables it was rendered from; or why it can't.
    pub async fn feedback_message(&self, drop: &DropDetail, reasons: &[crate::store::Reason]) -> CoreResult<(String, minijinja::Value)> {
        let vars = templates::feedback_vars(drop, reasons)?;
        let body = self.render_template("drop_feedback", vars.clone()).await?;
        Ok((body, vars))
    }
}
