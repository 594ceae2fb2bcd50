//! What the contractor's commands do (STATUS, DONE, HELP, STOP/START, VERIFY, a drop number),
//! and opening, finishing and completing drops.

use super::*;

impl Turn<'_, '_> {
    pub(crate) async fn command(&mut self, command: Command) -> CoreResult<()> {
        match command {
            Command::Drop(dn) => {
                if let Some(d) = self.open_drop(&dn).await? {
                    let attached = self.attach_held(&d).await?;
                    let d = if attached > 0 { self.drop_by_id(d.drop_id).await? } else { d };
                    let d = self.complete_if_ready(d).await?;
                    let (done, total, missing, next) = progress(&d);
                    let with_qa = with_qa(&d);
                    let vars =
                        context! { drop_number => &d.drop_number, project => &d.project, done, total, missing, next_step => next, with_qa };
                    self.reply("drop_opened", vars, Some(d.drop_id), None).await?;
                }
            }
            Command::Done(dn) => {
                let d = match dn {
                    Some(dn) => self.open_drop(&dn).await?,
                    None => self.active_drop().await?,
                };
                match d {
                    Some(d) => self.finish_drop(d).await?,
                    None => self.reply("status", context! { drop_number => None::<String> }, None, None).await?,
                }
            }
            Command::Help => self.reply("help", context! {}, None, None).await?,
            Command::Status => {
                let d = self.active_drop().await?;
                let vars = match &d {
                    Some(d) => {
                        let (done, total, missing, _) = progress(d);
                        context! { drop_number => &d.drop_number, project => &d.project, status => d.status.label(), done, total, missing }
                    }
                    None => context! { drop_number => None::<String> },
                };
                self.reply("status", vars, d.as_ref().map(|d| d.drop_id), None).await?;
            }
            Command::Drops => {
                #[derive(Serialize)]
                struct Open {
                    number: String,
                    status: &'static str,
                }
                let rows: Vec<(String, String)> = on_tx!(self.tx, c => sqlx::query_as(
                    "select d.drop_number, d.status from drop_job d join contact c on c.contact_id = d.contractor_id
                     where c.phone = $1 and d.status <> 'approved' order by d.activity_at desc limit 20")
                    .bind(self.phone.as_str()).fetch_all(&mut *c).await?);
                let mut drops = Vec::with_capacity(rows.len());
                for (number, s) in rows {
                    let status = DropStatus::parse(&s).map_err(|e| CoreError::Internal(format!("drop {number}: stored status: {e}")))?;
                    drops.push(Open { number, status: status.label() });
                }
                self.reply("drops", context! { drops }, None, None).await?;
            }
            Command::Project(name) => match self.settings.project_by_name(&name).cloned() {
                Some(p) => {
                    self.ctx.project_id = Some(p.project_id);
                    self.ctx.drop_id = None;
                    self.fx.note(format!("project {}", p.name));
                    self.reply("project_set", context! { project => p.name }, None, None).await?;
                }
                None => {
                    let mut projects: Vec<String> = self.settings.projects.iter().map(|p| p.name.clone()).collect();
                    projects.sort();
                    self.reply("project_unknown", context! { name, projects }, None, None).await?;
                }
            },
            Command::Clear => {
                self.ctx = Ctx::default();
                self.fx.note("context cleared");
                self.reply("cleared", context! {}, None, None).await?;
            }
            Command::Verify(code) => {
                let outcome = self.tx.verify_phone_link(self.secret, &self.phone, &code, None, self.now).await?;
                match outcome {
                    VerifyOutcome::Linked { user_id } | VerifyOutcome::AlreadyLinked { user_id } => {
                        let email: Option<String> = on_tx!(self.tx, c => sqlx::query_scalar("select email from app_user where user_id = $1")
                            .bind(user_id).fetch_optional(&mut *c).await?);
                        let email = email.ok_or_else(|| CoreError::not_found("user_not_found", format!("user {user_id}")))?;
                        self.fx.note(format!("phone linked to user {user_id}"));
                        self.reply("phone_linked", context! { email }, None, None).await?;
                    }
                    refused => {
                        // The code itself is never written to the ledger or the logs.
                        let reason = match refused.into_result() {
                            Err(e) => e.public_message(),
                            Ok(_) => String::new(),
                        };
                        self.fx.note(format!("phone link refused: {reason}"));
                        self.reply("phone_not_linked", context! { reason }, None, None).await?;
                    }
                }
            }
            // `apply` handles STOP/START itself before calling this.
            Command::Stop | Command::Start => {}
            Command::Unknown => {
                self.fx.note("text stored");
                self.reply("hint", context! {}, None, None).await?;
            }
        }
        Ok(())
    }

    /// The drop a contractor names: found, or created (collecting) in the conversation's
    /// project. A number the project's pattern refuses gets a reply saying so.
    pub(crate) async fn open_drop(&mut self, dn: &DropNumber) -> CoreResult<Option<DropDetail>> {
        match self.tx.drop_state_in(Some(self.settings), DropKey::Number(dn)).await {
            Ok(d) => {
                self.ctx.drop_id = Some(d.drop_id);
                self.ctx.project_id = Some(d.project_id);
                self.fx.note(format!("drop {dn} active"));
                return Ok(Some(d));
            }
            Err(CoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // The conversation's project, else the oldest one.
        let project = self.ctx.project_id.and_then(|id| self.settings.project(id)).or_else(|| self.settings.projects.first()).cloned();
        let Some(project) = project else {
            let message = "No project is set up yet; ask your coordinator.";
            self.reply("drop_refused", context! { message }, None, None).await?;
            return Ok(None);
        };
        let (contact_id, _) = self.tx.upsert_contact(&self.phone, "", self.now).await?;
        match self.tx.create_drop(&project, dn, Some(contact_id), DropStatus::Collecting, &self.actor, self.now).await {
            Ok(_) => {
                let d = self.tx.drop_state_in(Some(self.settings), DropKey::Number(dn)).await?;
                self.ctx.drop_id = Some(d.drop_id);
                self.ctx.project_id = Some(d.project_id);
                self.fx.note(format!("drop {dn} created"));
                Ok(Some(d))
            }
            Err(CoreError::Input(e)) => {
                self.fx.note(format!("drop {dn} refused: {}", e.message));
                self.reply("drop_refused", context! { message => e.message }, None, None).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `DONE`: a complete collecting drop goes to review; an incomplete drop whose rejected
    /// steps all have new photos is resubmitted; otherwise the reply lists what is missing.
    async fn finish_drop(&mut self, d: DropDetail) -> CoreResult<()> {
        let vars = |missing: Vec<String>| context! { drop_number => &d.drop_number, status => d.status.label(), missing };
        let missing: Vec<String> = match d.status {
            DropStatus::Collecting => d.steps.iter().filter(|s| s.photos.is_empty()).map(step_label).collect(),
            DropStatus::Incomplete => d.rejected_steps().filter(|s| !s.photos.iter().any(|p| p.round > d.round)).map(step_label).collect(),
            _ => vec![],
        };
        let drop_id = Some(d.drop_id);
        match d.status {
            DropStatus::Collecting | DropStatus::Incomplete if !missing.is_empty() => {
                self.fx.note(format!("drop {} not ready", d.drop_number));
                self.reply("drop_not_ready", vars(missing), drop_id, None).await
            }
            DropStatus::Collecting => {
                self.tx.change_status(&d, Action::Complete, &self.actor, None).await?;
                self.fx.note(format!("drop {} submitted", d.drop_number));
                self.reply("drop_submitted", vars(vec![]), drop_id, None).await
            }
            DropStatus::Incomplete => {
                self.tx.change_status(&d, Action::Resubmit, &self.actor, None).await?;
                self.fx.note(format!("drop {} resubmitted", d.drop_number));
                self.reply("drop_resubmitted", vars(vec![]), drop_id, None).await
            }
            // Already with QA (it completed itself when its last photo arrived): DONE is
            // confirmed, not answered "nothing to do".
            DropStatus::Unreviewed => self.reply("drop_submitted", vars(vec![]), drop_id, None).await,
            DropStatus::Resubmitted => self.reply("drop_resubmitted", vars(vec![]), drop_id, None).await,
            _ => self.reply("drop_waiting", vars(vec![]), drop_id, None).await,
        }
    }

    /// A collecting drop whose every step has a photo goes to review by itself (its history
    /// says why), unless its project waits for the contractor's `DONE`. Returns the drop as
    /// it is now.
    pub(crate) async fn complete_if_ready(&mut self, d: DropDetail) -> CoreResult<DropDetail> {
        if d.status != DropStatus::Collecting || d.steps.is_empty() || d.steps.iter().any(|s| s.photos.is_empty()) {
            return Ok(d);
        }
        let wait_for_done = self.settings.project(d.project_id).map(|p| p.wait_for_done);
        if wait_for_done.ok_or_else(|| CoreError::not_found("project_not_found", format!("project {}", d.project_id)))? {
            return Ok(d);
        }
        self.tx.change_status(&d, Action::Complete, &self.actor, Some("every step has a photo")).await?;
        self.fx.note(format!("drop {} complete: every step has a photo", d.drop_number));
        self.drop_by_id(d.drop_id).await
    }
}
