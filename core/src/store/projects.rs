//! Projects, their checklists and the review reasons.

use super::*;

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Project {
    pub project_id: ProjectId,
    pub name: String,
    pub drop_pattern: String,
    pub created_at: i64,
    /// Drops wait for the contractor's `DONE` instead of completing themselves when every
    /// step has a photo.
    pub wait_for_done: bool,
    /// Who created the project: an admin's e-mail, `API key <name>`, or `system`.
    pub created_by: String,
}

pub(crate) const PROJECT_COLS: &str = "select project_id, name, drop_pattern, created_at, wait_for_done, created_by from project";

impl Project {
    /// Checks a drop number against this project's pattern.
    pub fn check_drop_number(&self, n: &DropNumber) -> Result<(), InputError> {
        let re = regex::Regex::new(&self.drop_pattern)
            .map_err(|_| InputError::new("invalid_pattern", format!("project {} has an invalid drop pattern", self.name)))?;
        if re.is_match(n.as_str()) {
            Ok(())
        } else {
            Err(InputError::new(
                "invalid_drop_number",
                format!("{} does not match the drop number pattern of project {} ({})", n, self.name, self.drop_pattern),
            ))
        }
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ChecklistStep {
    pub step_no: i64,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Reason {
    pub code: String,
    pub label: String,
}

pub const DEFAULT_PROJECT_NAME: &str = "Default project";

impl Store {
    /// Stores the default review reasons (an admin's changes are kept).
    pub(crate) async fn seed_reasons(&self) -> CoreResult<()> {
        on_db!(self, pool => {
            for (i, (code, label)) in crate::domain::DEFAULT_REASONS.iter().enumerate() {
                sqlx::query("insert into review_reason (code, label, position) values ($1, $2, $3) on conflict (code) do nothing")
                    .bind(*code).bind(*label).bind(i as i64).execute(pool).await?;
            }
        });
        Ok(())
    }

    pub async fn reasons(&self) -> CoreResult<Vec<Reason>> {
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Reason>("select code, label from review_reason order by position, code").fetch_all(pool).await?),
        )
    }

    // ---------------------------------------------------------------- projects

    /// Creates a project with the default 12-step checklist.
    pub async fn create_project(&self, name: &str, drop_pattern: &str) -> CoreResult<Project> {
        self.create_project_by(name, drop_pattern, "").await
    }

    /// Creates a project with the default 12-step checklist, recording who created it (an
    /// admin's e-mail, `API key <name>`, `system`).
    pub async fn create_project_by(&self, name: &str, drop_pattern: &str, created_by: &str) -> CoreResult<Project> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(InputError::new("invalid_project_name", "a project name needs 1–100 characters").into());
        }
        regex::Regex::new(drop_pattern)
            .map_err(|e| InputError::new("invalid_pattern", format!("the drop pattern is not a valid regular expression: {e}")))?;
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let id: Option<i64> = sqlx::query_scalar(
                    "insert into project (name, drop_pattern, created_at, created_by) values ($1, $2, $3, $4) on conflict do nothing returning project_id")
                    .bind(name).bind(drop_pattern).bind(now).bind(created_by).fetch_optional(&mut *c).await?;
                let Some(id) = id else {
                    return Err(CoreError::conflict("project_exists", format!("a project named {name} already exists")));
                };
                for (i, (step, desc)) in DEFAULT_CHECKLIST.iter().enumerate() {
                    sqlx::query("insert into checklist_step (project_id, step_no, name, description) values ($1, $2, $3, $4)")
                        .bind(id).bind(i as i64 + 1).bind(*step).bind(*desc).execute(&mut *c).await?;
                }
                sqlx::query("update project set step_count = $1 where project_id = $2").bind(DEFAULT_CHECKLIST.len() as i64).bind(id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        self.project_by_name(name).await?.ok_or_else(|| CoreError::Internal("project vanished after insert".into()))
    }

    /// A fresh install works at once: when there is no project, one named
    /// [`DEFAULT_PROJECT_NAME`] with the default 12-step checklist and drop pattern is
    /// created (the first admin can rename it at `/setup`). Returns it when it was created.
    pub async fn ensure_default_project(&self) -> CoreResult<Option<Project>> {
        if !self.projects().await?.is_empty() {
            return Ok(None);
        }
        match self.create_project_by(DEFAULT_PROJECT_NAME, DEFAULT_DROP_PATTERN, "system").await {
            Ok(p) => Ok(Some(p)),
            Err(CoreError::Conflict { .. }) => Ok(None), // another replica created it first
            Err(e) => Err(e),
        }
    }

    /// Renames a project (names are unique, case-insensitively as `project_by_name` finds them).
    pub async fn rename_project(&self, project_id: ProjectId, name: &str) -> CoreResult<()> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(InputError::new("invalid_project_name", "a project name needs 1–100 characters").into());
        }
        if let Some(other) = self.project_by_name(name).await? {
            if other.project_id != project_id {
                return Err(CoreError::conflict("project_exists", format!("a project named {name} already exists")));
            }
        }
        let n = on_db!(self, pool => sqlx::query("update project set name = $1 where project_id = $2")
            .bind(name).bind(project_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
        }
        Ok(())
    }

    pub async fn projects(&self) -> CoreResult<Vec<Project>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} order by name")).fetch_all(pool).await?))
    }

    pub async fn project_by_name(&self, name: &str) -> CoreResult<Option<Project>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Project>(
            &format!("{PROJECT_COLS} where lower(name) = lower($1)"))
            .bind(name.trim()).fetch_optional(pool).await?))
    }

    pub async fn project(&self, project_id: ProjectId) -> CoreResult<Project> {
        on_db!(self, pool => sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} where project_id = $1"))
            .bind(project_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("project_not_found", format!("project {project_id}")))
    }

    pub async fn checklist(&self, project_id: ProjectId) -> CoreResult<Vec<ChecklistStep>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ChecklistStep>(
            "select step_no, name, description from checklist_step where project_id = $1 order by step_no")
            .bind(project_id).fetch_all(pool).await?))
    }

    /// Sets whether the project's drops wait for the contractor's `DONE` (see
    /// [`Project::wait_for_done`]).
    pub async fn set_wait_for_done(&self, project_id: ProjectId, wait: bool) -> CoreResult<()> {
        let n = on_db!(self, pool => sqlx::query("update project set wait_for_done = $1 where project_id = $2")
            .bind(wait).bind(project_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
        }
        Ok(())
    }

    /// Replaces a project's checklist (steps numbered in the order given) and drop pattern.
    pub async fn update_project(&self, project_id: ProjectId, drop_pattern: &str, steps: &[(String, String)]) -> CoreResult<()> {
        regex::Regex::new(drop_pattern)
            .map_err(|e| InputError::new("invalid_pattern", format!("the drop pattern is not a valid regular expression: {e}")))?;
        if steps.is_empty() || steps.len() as i64 > StepNo::MAX {
            return Err(InputError::new("invalid_checklist", format!("a checklist needs 1–{} steps", StepNo::MAX)).into());
        }
        if let Some(i) = steps.iter().position(|(n, _)| n.trim().is_empty()) {
            return Err(InputError::new("invalid_checklist", format!("step {} needs a name", i + 1)).into());
        }
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("update project set drop_pattern = $1 where project_id = $2")
                    .bind(drop_pattern).bind(project_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
                }
                sqlx::query("delete from checklist_step where project_id = $1").bind(project_id).execute(&mut *c).await?;
                for (i, (name, desc)) in steps.iter().enumerate() {
                    sqlx::query("insert into checklist_step (project_id, step_no, name, description) values ($1, $2, $3, $4)")
                        .bind(project_id).bind(i as i64 + 1).bind(name.trim()).bind(desc.trim()).execute(&mut *c).await?;
                }
                sqlx::query("update project set step_count = $1 where project_id = $2").bind(steps.len() as i64).bind(project_id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    // ---------------------------------------------------------------- contacts
}
