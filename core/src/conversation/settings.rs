//! The settings the conversation reads (templates, projects, checklists, reasons), cached
//! until their stored version moves.

use super::*;
use crate::ids::ProjectId;

/// What the conversation reads of the settings: the message templates, the projects, their
/// checklists and the review reasons. Loaded by [`Store::settings`], which keeps it in memory
/// until the stored settings' version moves (any change to those tables moves it, by
/// trigger); a batch of events reads it once, so an admin's change applies from the next
/// batch on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub(crate) version: i64,
    pub(crate) templates: HashMap<String, (String, bool)>,
    pub(crate) projects: Vec<Project>,
    pub(crate) checklists: HashMap<ProjectId, Vec<ChecklistStep>>,
    pub(crate) reasons: Vec<Reason>,
}

impl Settings {
    /// A template's body and whether it is enabled: the stored one, else the built-in.
    pub(crate) fn template(&self, name: &str) -> CoreResult<(&str, bool)> {
        if let Some((body, enabled)) = self.templates.get(name) {
            return Ok((body, *enabled));
        }
        templates::shipped(name).map(|b| (b, true)).ok_or_else(|| CoreError::Internal(format!("no template {name}")))
    }

    pub(crate) fn project(&self, project_id: ProjectId) -> Option<&Project> {
        self.projects.iter().find(|p| p.project_id == project_id)
    }

    pub(crate) fn project_by_name(&self, name: &str) -> Option<&Project> {
        let name = name.trim().to_lowercase();
        self.projects.iter().find(|p| p.name.to_lowercase() == name)
    }

    /// A project's checklist, if the project was there when these settings were read.
    pub(crate) fn checklist(&self, project_id: ProjectId) -> Option<&[ChecklistStep]> {
        self.checklists.get(&project_id).map(Vec::as_slice)
    }

    pub(crate) fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
}

impl Store {
    /// The settings as [`Tx::handle_message`] uses them, as of `tx`: from memory while the
    /// stored version is the one they were read at, else read (in `tx`) and kept.
    pub async fn settings(&self, tx: &mut Tx<'_>) -> CoreResult<Arc<Settings>> {
        // The version first: what is read after it is at least as new, so a cached copy is
        // never older than the version it is kept under.
        let version: i64 =
            on_tx!(tx, c => sqlx::query_scalar("select version from settings_version where id = 1").fetch_one(&mut *c).await?);
        if let Some(cached) = self.memory.settings.lock().map_err(|_| CoreError::Internal("settings cache poisoned".into()))?.as_ref() {
            if cached.version == version {
                return Ok(cached.clone());
            }
        }
        let fresh = Arc::new(tx.read_settings(version).await?);
        let mut cache = self.memory.settings.lock().map_err(|_| CoreError::Internal("settings cache poisoned".into()))?;
        if cache.as_ref().is_none_or(|c| c.version < version) {
            *cache = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

impl Tx<'_> {
    async fn read_settings(&mut self, version: i64) -> CoreResult<Settings> {
        let (rows, projects, steps, reasons): (
            Vec<(String, String, i64)>,
            Vec<Project>,
            Vec<(ProjectId, i64, String, String)>,
            Vec<Reason>,
        ) = on_tx!(self, c => (
            sqlx::query_as("select name, body, enabled from message_template").fetch_all(&mut *c).await?,
            sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} order by project_id")).fetch_all(&mut *c).await?,
            sqlx::query_as("select project_id, step_no, name, description from checklist_step order by project_id, step_no")
                .fetch_all(&mut *c).await?,
            sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all(&mut *c).await?,
        ));
        let mut checklists: HashMap<ProjectId, Vec<ChecklistStep>> = projects.iter().map(|p| (p.project_id, vec![])).collect();
        for (project_id, step_no, name, description) in steps {
            checklists.entry(project_id).or_default().push(ChecklistStep { step_no, name, description });
        }
        Ok(Settings { version, templates: rows.into_iter().map(|(n, b, e)| (n, (b, e != 0))).collect(), projects, checklists, reasons })
    }
}
