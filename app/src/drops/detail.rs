//! One drop (`/drops/{number}`): its steps, the feedback preview, attachments and timeline,
//! and the drop-wide actions (mark incomplete, approve all).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use super::review::{DismissCheck, MovePhoto, PhotoView, ReviewStep, StepCard};
use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub number: i64,
    pub name: String,
    pub description: String,
    pub verdict: String,
    pub reason: String,
    pub reason_label: String,
    pub note: String,
    pub reviewer: String,
    pub previous_verdict: String,
    pub previous_note: String,
    /// Photos of the current round, newest first.
    pub new_photos: Vec<PhotoView>,
    /// Photos of earlier rounds, newest first.
    pub old_photos: Vec<PhotoView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub text: String,
    /// For messages: queued / sent / delivered / read / failed.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonOption {
    pub code: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentView {
    pub id: i64,
    pub mime_type: String,
    pub size: String,
    pub received: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropPageData {
    pub me: Me,
    /// Files the contractor sent that are not checklist photos.
    pub attachments: Vec<AttachmentView>,
    pub number: String,
    pub status: String,
    pub status_label: String,
    pub project: String,
    pub contractor_name: String,
    pub contractor_phone: String,
    pub round: i64,
    pub created: String,
    pub steps: Vec<StepView>,
    pub timeline: Vec<TimelineEntry>,
    /// The exact feedback "Mark incomplete" would queue, or why it can't yet.
    pub feedback: Result<String, String>,
    pub reasons: Vec<ReasonOption>,
    pub can_review: bool,
    pub can_mark_incomplete: bool,
    pub can_approve: bool,
    /// The open photo flags ("step 2: too dark"): approving asks for a confirmation first.
    pub open_flags: Vec<String>,
}

#[server(prefix = "/rpc", endpoint = "drop_page")]
pub async fn drop_page(number: String) -> Result<DropPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, DropStatus};
    use dropcheck_core::fmt_time;
    use dropcheck_core::lifecycle::{self, Action, Actor};
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let d = st.store.drop_detail(&number).await.map_err(fail)?;
    let reasons = st.store.reasons().await.map_err(fail)?;
    let feedback = st.store.feedback_message(&d, &reasons).await.map(|(body, _)| body).map_err(|e| e.public_message());
    let photo = super::review::photo_view;
    let open_flags: Vec<String> = d
        .steps
        .iter()
        .flat_map(|s| {
            s.photos.iter().flat_map(move |p| p.open_flags().map(move |c| format!("step {}: {}", s.number, c.kind.label().to_lowercase())))
        })
        .collect();
    let mut steps: Vec<StepView> = d
        .steps
        .iter()
        .map(|s| StepView {
            number: s.number,
            name: s.name.clone(),
            description: s.description.clone(),
            verdict: s.verdict.as_str().into(),
            reason: s.reason.clone().unwrap_or_default(),
            reason_label: s.reason_label.clone().unwrap_or_default(),
            note: s.note.clone(),
            reviewer: s.reviewer.clone().unwrap_or_default(),
            previous_verdict: s.previous_verdict.map(|v| v.as_str().to_string()).unwrap_or_default(),
            previous_note: s.previous_note.clone().unwrap_or_default(),
            new_photos: s.photos.iter().filter(|p| p.round == d.round).map(photo).collect(),
            old_photos: s.photos.iter().filter(|p| p.round != d.round).map(photo).collect(),
        })
        .collect();
    // On a resubmitted drop the reopened steps come first.
    if d.status == DropStatus::Resubmitted {
        steps.sort_by_key(|s| (s.previous_verdict.is_empty(), s.number));
    }
    let mut timeline: Vec<(i64, TimelineEntry)> = d
        .history
        .iter()
        .map(|h| {
            (
                h.at,
                TimelineEntry {
                    at: fmt_time(h.at),
                    actor: h.actor.clone(),
                    kind: h.kind.clone(),
                    text: h.detail.clone(),
                    status: String::new(),
                },
            )
        })
        .collect();
    for m in &d.messages {
        timeline.push((
            m.created_at,
            TimelineEntry {
                at: fmt_time(m.created_at),
                actor: if m.direction == dropcheck_core::domain::Direction::Out {
                    format!("to {}", m.phone)
                } else {
                    format!("from {}", m.phone)
                },
                kind: format!("message_{}", m.direction),
                text: m.body.clone(),
                status: m.status.clone(),
            },
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    // What the page offers is what the lifecycle allows this user.
    let allowed = lifecycle::allowed_actions(d.status, Actor::User(user.role()));
    let attachments = st
        .store
        .attachments_for_drop(d.drop_id)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|a| AttachmentView {
            id: a.attachment_id.get(),
            mime_type: a.mime_type,
            size: format!("{} KB", (a.size_bytes + 1023) / 1024),
            received: fmt_time(a.received_at),
        })
        .collect();
    Ok(DropPageData {
        attachments,
        me: me_of(&user),
        number: d.drop_number.to_string(),
        status: d.status.as_str().into(),
        status_label: d.status.label().into(),
        project: d.project.clone(),
        contractor_name: d.contractor.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
        contractor_phone: d.contractor.as_ref().map(|c| c.phone.to_string()).unwrap_or_default(),
        round: d.round,
        created: fmt_time(d.created_at),
        steps,
        timeline: timeline.into_iter().map(|(_, t)| t).collect(),
        can_mark_incomplete: feedback.is_ok() && allowed.contains(&Action::MarkIncomplete),
        feedback,
        reasons: reasons.into_iter().map(|r| ReasonOption { code: r.code, label: r.label }).collect(),
        can_review: lifecycle::takes_verdicts(d.status),
        can_approve: allowed.contains(&Action::Approve),
        open_flags,
    })
}

/// Marks the drop incomplete; the feedback message is queued in the same transaction.
#[server(prefix = "/rpc", endpoint = "mark_incomplete")]
pub async fn mark_incomplete(number: String) -> Result<String, AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::DropNumber;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    st.store.mark_incomplete(&number, &actor(&user)).await.map_err(fail)
}

/// Accepts every pending step and approves the drop. While a photo flag is open the
/// approval needs `confirm=flags` (the page's "Approve anyway").
#[server(prefix = "/rpc", endpoint = "approve_all")]
pub async fn approve_all(number: String, confirm: Option<String>) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::DropNumber;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let open = st.store.drop_summary(&number).await.map_err(fail)?.open_flags;
    if open > 0 && confirm.as_deref() != Some("flags") {
        let photos = if open == 1 { "A photo is" } else { "Photos are" };
        return Err(refuse("open_flags", &format!("{photos} still flagged ({open} open flags): dismiss them, or approve anyway.")));
    }
    st.store.approve(&number, true, &actor(&user)).await.map_err(fail)
}

#[component]
pub fn DropPage() -> impl IntoView {
    let params = use_params_map();
    let number = move || params.read().get("number").unwrap_or_default();
    let review = ServerAction::<ReviewStep>::new();
    let mover = ServerAction::<MovePhoto>::new();
    let dismiss = ServerAction::<DismissCheck>::new();
    let incomplete = ServerAction::<MarkIncomplete>::new();
    let approve = ServerAction::<ApproveAll>::new();
    // Bumped by the live stream when the drop changes elsewhere (contractor, other reviewers).
    let live = RwSignal::new(0u64);
    let data = Resource::new(
        move || {
            let versions = [review.version(), mover.version(), dismiss.version(), incomplete.version(), approve.version()];
            (number(), versions.map(|v| v.get()), live.get())
        },
        |(n, ..)| drop_page(n),
    );
    #[cfg(feature = "hydrate")]
    {
        crate::browser::shortcuts::install(number);
        Effect::new(move |_| crate::browser::live::live(format!("/live/drops/{}", number()), live));
    }
    let actions = DropActions { review, mover, dismiss, incomplete, approve };
    page(
        move || format!("{} · Dropcheck", number()),
        data,
        Some(("/", "Back to the drops")),
        move |d| view! { <DropView d=d actions=actions/> },
    )
}

#[derive(Clone, Copy)]
struct DropActions {
    review: ServerAction<ReviewStep>,
    mover: ServerAction<MovePhoto>,
    dismiss: ServerAction<DismissCheck>,
    incomplete: ServerAction<MarkIncomplete>,
    approve: ServerAction<ApproveAll>,
}

#[component]
fn DropView(d: DropPageData, actions: DropActions) -> impl IntoView {
    let DropActions { review, mover, dismiss, incomplete, approve } = actions;
    let step_count = d.steps.len() as i64;
    let number = d.number.clone();
    let contractor =
        if d.contractor_name.is_empty() { d.contractor_phone.clone() } else { format!("{} · {}", d.contractor_name, d.contractor_phone) };
    let feedback_text = d.feedback.clone();
    #[cfg(feature = "hydrate")]
    {
        let number = number.clone();
        Effect::new(move |_| crate::browser::shortcuts::after_render(number.clone()));
    }
    view! {
        <Layout me=d.me.clone()>
            // The full-size view of a photo (keyboard: Space or Enter on a thumbnail; arrows; Esc).
            <dialog id="lightbox" aria-label="Photo, full size" class="m-auto max-h-[95vh] max-w-[95vw] rounded-lg bg-slate-900 p-3 backdrop:bg-black/70">
                <img id="lightbox-img" alt="" class="mx-auto max-h-[85vh] max-w-[90vw] object-contain"/>
                <p id="lightbox-caption" class="mt-2 text-center text-sm text-slate-200"></p>
            </dialog>
            <div class="mb-4 flex flex-wrap items-start gap-4">
                <div>
                    <a href="/" class="text-sm text-slate-500 hover:underline">"← Drops"</a>
                    <h1 class="mt-1 flex items-center gap-3 font-mono text-2xl font-bold tracking-tight" id="drop-number">
                        {d.number.clone()}
                        <StatusBadge status=d.status.clone() label=d.status_label.clone()/>
                    </h1>
                    <p class="mt-1 text-sm text-slate-600">
                        {d.project.clone()} " · " {contractor} " · round " {d.round} " · opened " {d.created.clone()}
                    </p>
                </div>
                <div class="ml-auto flex flex-wrap items-center gap-2">
                    {d.can_approve.then(|| { let number = number.clone(); if d.open_flags.is_empty() { view! {
                        <ActionForm action=approve>
                            <input type="hidden" name="number" value=number/>
                            <button id="approve-all" type="submit" class="rounded-md bg-green-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-green-700">
                                "Approve all " <kbd class="ml-1 rounded bg-green-800 px-1.5 text-xs">"a"</kbd>
                            </button>
                        </ActionForm>
                    }.into_any() } else { view! {
                        // A flag is open: approving asks first (native disclosure, no script needed).
                        <details id="approve-panel" class="relative">
                            <summary id="approve-all" class="cursor-pointer select-none rounded-md bg-green-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-green-700">
                                "Approve all… " <kbd class="ml-1 rounded bg-green-800 px-1.5 text-xs">"a"</kbd>
                            </summary>
                            <div class="absolute right-0 z-10 mt-2 w-72 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900 shadow-lg">
                                <p id="approve-warning">{format!("Flagged and not dismissed: {}. Approve anyway?", d.open_flags.join("; "))}</p>
                                <ActionForm action=approve>
                                    <input type="hidden" name="number" value=number/>
                                    <input type="hidden" name="confirm" value="flags"/>
                                    <button id="confirm-approve" type="submit" class="mt-2 w-full rounded-md bg-green-700 px-3 py-1.5 font-semibold text-white hover:bg-green-800">
                                        "Approve anyway"
                                    </button>
                                </ActionForm>
                            </div>
                        </details>
                    }.into_any() } })}
                    <a href=format!("/drops/{}/evidence.pdf", d.number) rel="external" download=format!("evidence-{}.pdf", d.number) id="evidence-pdf"
                        class="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">"Evidence pack (PDF)"</a>
                    <a href=format!("/next?after={}", d.number) rel="external" id="next-drop" class="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">
                        "Next drop " <kbd class="ml-1 rounded bg-slate-200 px-1.5 text-xs">"n"</kbd>
                    </a>
                </div>
            </div>
            {action_error(approve)}
            {action_error(incomplete)}
            {action_error(review)}
            {action_error(mover)}
            {action_error(dismiss)}
            <div class="grid gap-6 lg:grid-cols-3">
                <section class="space-y-3 lg:col-span-2" id="steps">
                    {d.steps.iter().map(|s| view! {
                        <StepCard s=s.clone() number=number.clone() reasons=d.reasons.clone() step_count=step_count
                                  can_review=d.can_review review=review mover=mover dismiss=dismiss/>
                    }).collect_view()}
                </section>
                <aside class="space-y-4">
                    <div class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                        <details id="incomplete-panel" class="group">
                            <summary class="cursor-pointer select-none text-sm font-semibold text-red-700">
                                "Mark incomplete… " <kbd class="ml-1 rounded bg-red-100 px-1.5 text-xs">"i"</kbd>
                            </summary>
                            <p class="mt-3 text-xs text-slate-500">"The contractor will receive exactly this WhatsApp message:"</p>
                            {match feedback_text {
                                Ok(text) => view! { <pre id="feedback-preview" class="mt-2 whitespace-pre-wrap rounded-md bg-slate-50 p-3 font-sans text-sm ring-1 ring-slate-200">{text}</pre> }.into_any(),
                                Err(why) => view! { <p id="feedback-preview" class="mt-2 text-sm text-slate-600">{why}</p> }.into_any(),
                            }}
                            {d.can_mark_incomplete.then(|| { let number = number.clone(); view! {
                                <ActionForm action=incomplete>
                                    <input type="hidden" name="number" value=number/>
                                    <button id="confirm-incomplete" type="submit" class="mt-3 w-full rounded-md bg-red-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-red-700">
                                        "Queue feedback and mark incomplete"
                                    </button>
                                </ActionForm>
                            }})}
                        </details>
                    </div>
                    {(!d.attachments.is_empty()).then(|| view! {
                        <div class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="attachments">
                            <h2 class="mb-2 text-sm font-semibold">"Files from the contractor"</h2>
                            <ul class="space-y-1 text-sm">
                                {d.attachments.iter().map(|a| view! {
                                    <li>
                                        <a class="text-blue-700 underline" rel="external" href=format!("/attachments/{}", a.id)>{a.mime_type.clone()}</a>
                                        <span class="text-slate-500">{format!(" · {} · {}", a.size, a.received)}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        </div>
                    })}
                    <Shortcuts/>
                    <div class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
                        <h2 class="mb-3 text-sm font-semibold">"Timeline"</h2>
                        <ol class="space-y-3 text-sm" id="timeline">
                            {d.timeline.iter().rev().map(|t| view! {
                                <li class="border-l-2 border-slate-200 pl-3">
                                    <div class="text-xs text-slate-500">{t.at.clone()} " · " {t.actor.clone()}
                                        {(!t.status.is_empty()).then(|| view! { <span class="ml-1 rounded bg-slate-100 px-1.5 text-slate-600">{tick_label(&t.status)}</span> })}
                                    </div>
                                    <div class=if t.kind.starts_with("message") { "mt-0.5 whitespace-pre-wrap rounded bg-emerald-50 p-2 text-slate-800" } else { "mt-0.5 text-slate-800" }>{t.text.clone()}</div>
                                </li>
                            }).collect_view()}
                        </ol>
                    </div>
                </aside>
            </div>
        </Layout>
    }
}

#[component]
fn Shortcuts() -> impl IntoView {
    let keys = [
        ("j / k", "next / previous step"),
        ("o", "step OK, on to the next step"),
        ("m / r / w", "missing / retake / rework: opens the step's form"),
        ("1–9", "in that form, before typing a note: reason"),
        ("Enter", "save the form, on to the next step"),
        ("Esc", "leave the form (or the full-size photo)"),
        ("Space", "on a photo: full size (← → for the others)"),
        ("i", "feedback preview; Enter sends it"),
        ("a", "approve all"),
        ("n", "next drop to review"),
    ];
    view! {
        <div class="rounded-lg border border-slate-200 bg-white p-4 text-xs text-slate-600 shadow-sm" id="shortcuts">
            <h2 class="mb-2 text-sm font-semibold text-slate-800">"Keyboard"</h2>
            <dl class="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1">
                {keys.iter().map(|(k, what)| view! {
                    <dt><kbd class="rounded bg-slate-100 px-1.5 font-mono ring-1 ring-slate-300">{*k}</kbd></dt>
                    <dd>{*what}</dd>
                }).collect_view()}
            </dl>
        </div>
    }
}
