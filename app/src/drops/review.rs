//! A step of a drop under review: its card (photos, verdict, the move-photo form) and the
//! review forms, with the server functions they post to.

use leptos::prelude::*;

use serde::{Deserialize, Serialize};

use super::detail::{ReasonOption, StepView};
use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoView {
    pub id: i64,
    pub round: i64,
    pub received: String,
    pub width: i64,
    pub height: i64,
    /// The checks that did not pass, and the vision model's answer (empty with `checked`
    /// false: never checked).
    pub checks: Vec<CheckView>,
    pub checked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    pub kind: String,
    /// `flag` or `warn`.
    pub result: String,
    pub label: String,
    pub detail: String,
    /// A flag nobody dismissed on a photo nothing replaced.
    pub open: bool,
    /// For a closed flag: who or what closed it.
    pub resolved_by: String,
    /// For `reused`: the earlier photo (id, drop, step).
    pub original: Option<(i64, String, i64)>,
}

/// A photo as the drop page shows it.
#[cfg(feature = "ssr")]
pub(super) fn photo_view(p: &dropcheck_core::store::PhotoInfo) -> PhotoView {
    use dropcheck_core::fmt_time;
    let mut view = PhotoView {
        id: p.photo_id.get(),
        round: p.round,
        received: fmt_time(p.received_at),
        width: p.width,
        height: p.height,
        checked: !p.checks.is_empty(),
        checks: p
            .checks
            .iter()
            // The vision model's answer is shown whatever it is: a suggestion beside the verdicts.
            .filter(|c| c.result != dropcheck_core::domain::CheckResult::Pass || c.kind == dropcheck_core::domain::CheckKind::Vision)
            .map(|c| CheckView {
                kind: c.kind.as_str().into(),
                result: c.result.as_str().into(),
                label: c.kind.label().into(),
                detail: c.detail.clone(),
                open: c.is_open_flag(),
                resolved_by: c.resolved_by.clone().unwrap_or_default(),
                original: match (c.match_photo_id, &c.match_drop, c.match_step) {
                    (Some(id), Some(d), Some(s)) => Some((id.get(), d.clone(), s)),
                    _ => None,
                },
            })
            .collect(),
    };
    // A check shown with its original photo comes last, so the original sits under its own
    // check, not over the next one's.
    view.checks.sort_by_key(|c| c.original.is_some());
    view
}

/// Records a verdict on one step (`pending` re-opens an accepted step).
#[server(prefix = "/rpc", endpoint = "review_step")]
pub async fn review_step(
    number: String,
    step: String,
    verdict: String,
    reason: Option<String>,
    note: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, StepNo, Verdict};
    use dropcheck_core::store::StepVerdict;
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let verdict = Verdict::parse(&verdict).map_err(|e| fail(e.into()))?;
    let step = StepNo::parse(&step).map_err(|e| fail(e.into()))?;
    let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let v = StepVerdict { step, verdict, reason, note: note.unwrap_or_default() };
    st.store.set_verdicts(&number, &[v], &actor(&user)).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "move_photo")]
pub async fn move_photo(number: String, photo_id: String, step: String) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{DropNumber, StepNo};
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let photo_id: i64 = photo_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a photo"))?;
    let step = StepNo::parse(&step).map_err(|e| fail(e.into()))?;
    st.store.move_photo(&number, PhotoId(photo_id), step, &actor(&user)).await.map_err(fail)
}

/// Dismisses an open photo flag: the reviewer judged the photo good enough.
#[server(prefix = "/rpc", endpoint = "dismiss_check")]
pub async fn dismiss_check(number: String, photo_id: String, kind: String) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::{CheckKind, DropNumber};
    let (st, user) = require_user().await?;
    let number = DropNumber::parse(&number).map_err(|e| fail(e.into()))?;
    let photo_id: i64 = photo_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a photo"))?;
    let kind = CheckKind::parse(&kind).map_err(|e| fail(e.into()))?;
    st.store.dismiss_check(&number, PhotoId(photo_id), kind, &actor(&user)).await.map_err(fail)
}

/// A photo's checks that did not pass, each open flag with its "Dismiss" form.
fn photo_checks(p: &PhotoView, number: &str, can_review: bool, dismiss: ServerAction<DismissCheck>) -> impl IntoView {
    let all_passed = p.checked && p.checks.iter().all(|c| c.result == "pass");
    let items = p
        .checks
        .iter()
        .map(|c| {
            let (icon, cls) = match (c.result.as_str(), c.open) {
                ("pass", _) => ("✓", "text-green-700"),
                ("flag", true) => ("⚑", "text-red-700"),
                ("flag", false) => ("⚑", "text-slate-400 line-through"),
                _ => ("⚠", "text-amber-700"),
            };
            let closed = (c.result == "flag" && !c.open).then(|| format!(" — closed: {}", c.resolved_by));
            let form = (c.open && can_review).then(|| {
                let (number, id, kind) = (number.to_string(), p.id.to_string(), c.kind.clone());
                view! {
                    <ActionForm action=dismiss>
                        <input type="hidden" name="number" value=number/>
                        <input type="hidden" name="photo_id" value=id/>
                        <input type="hidden" name="kind" value=kind/>
                        <button type="submit" class="dismiss rounded border border-slate-300 px-1 text-[11px] text-slate-700 hover:bg-slate-100">"Dismiss"</button>
                    </ActionForm>
                }
            });
            // A reused photo: its original beside it, linked to its drop.
            let original = c.original.clone().map(|(id, drop, step)| {
                view! {
                    <a href=format!("/drops/{drop}#step-{step}") class="original mt-1 block" title=format!("The original: {drop}, step {step}")>
                        <img src=format!("/media/{id}/thumb") alt=format!("The original photo, {drop} step {step}") loading="lazy" width="160" height="120"
                             class="h-30 w-40 rounded-md object-cover ring-2 ring-red-300"/>
                        <span class="text-blue-700 underline">{format!("{drop} · step {step}")}</span>
                    </a>
                }
            });
            view! {
                <li class="check" data-kind=c.kind.clone() data-result=c.result.clone() data-open=c.open.to_string()>
                    <span class=cls title=c.detail.clone()>{format!("{icon} {}", c.label)}</span>
                    // The vision answer's words are beside the verdicts (for the newest photo); here its title has them.
                    {if c.kind == "vision" {
                        closed.map(|t| view! { <span class="block text-slate-500">{t}</span> }.into_any())
                    } else {
                        Some(view! { <span class="block text-slate-500">{c.detail.clone()}{closed}</span> }.into_any())
                    }}
                    {original}
                    {form}
                </li>
            }
        })
        .collect_view();
    view! {
        <ul class="checks mt-1 space-y-1 text-[11px]">
            {all_passed.then(|| view! { <li class="check text-green-700" data-result="pass">"✓ Usable"</li> })}
            {items}
        </ul>
    }
}

#[component]
pub fn StepCard(
    s: StepView,
    number: String,
    reasons: Vec<ReasonOption>,
    step_count: i64,
    can_review: bool,
    review: ServerAction<ReviewStep>,
    mover: ServerAction<MovePhoto>,
    dismiss: ServerAction<DismissCheck>,
) -> impl IntoView {
    let n = s.number;
    let reopened = !s.previous_verdict.is_empty();
    let name = s.name.clone();
    let has_photo = !s.new_photos.is_empty() || !s.old_photos.is_empty();
    let photo_view = {
        let number = number.clone();
        move |p: &PhotoView| {
            let number = number.clone();
            let name = name.clone();
            let id = p.id.to_string();
            view! {
                <figure class="photo w-40">
                    <a href=format!("/media/{}", p.id) target="_blank" title="Open full size" class="thumb block rounded-md focus:outline-none focus:ring-2 focus:ring-blue-500"
                       data-caption=format!("Step {n}: {name} · {}", p.received)>
                        <img src=format!("/media/{}/thumb", p.id) alt=format!("Step {n} photo") loading="lazy" width="160" height="120"
                             class="h-30 w-40 rounded-md object-cover ring-1 ring-slate-200 hover:ring-2 hover:ring-blue-400"/>
                    </a>
                    <figcaption class="mt-1 text-[11px] text-slate-500">{p.received.clone()}</figcaption>
                    {photo_checks(p, &number, can_review, dismiss)}
                    {can_review.then(|| view! {
                        <ActionForm action=mover>
                            <input type="hidden" name="number" value=number/>
                            <input type="hidden" name="photo_id" value=id/>
                            <div class="mt-1 flex gap-1">
                                <select name="step" aria-label="Move to step" class="w-full rounded border border-slate-300 px-1 py-0.5 text-[11px]">
                                    {(1..=step_count).map(|k| view! { <option value=k.to_string() selected=k == n>{format!("Step {k}")}</option> }).collect_view()}
                                </select>
                                <button type="submit" class="rounded border border-slate-300 px-1.5 text-[11px] hover:bg-slate-100">"Move"</button>
                            </div>
                        </ActionForm>
                    })}
                </figure>
            }
        }
    };
    // The vision model's answer on the step's newest photo, shown beside the verdicts.
    let vision = s
        .new_photos
        .iter()
        .chain(&s.old_photos)
        .next()
        .and_then(|p| p.checks.iter().find(|c| c.kind == "vision"))
        .map(|c| (c.result.clone(), c.detail.clone()));
    let new_photos = s.new_photos.iter().map(photo_view.clone()).collect_view();
    let old_photos = s.old_photos.iter().map(photo_view).collect_view();
    let show_old = !s.old_photos.is_empty();
    let verdict = s.verdict.clone();
    let card_ring = match verdict.as_str() {
        "ok" => "border-green-200",
        "missing" | "retake" | "rework" => "border-red-200",
        _ => "border-slate-200",
    };
    view! {
        <article id=format!("step-{n}") data-step=n data-verdict=verdict.clone() tabindex="-1"
                 class=format!("step-card rounded-lg border bg-white p-4 shadow-sm outline-none focus:ring-2 focus:ring-blue-400 {card_ring}")>
            <header class="flex flex-wrap items-center gap-2">
                <span class="flex h-7 w-7 items-center justify-center rounded-full bg-slate-900 text-xs font-bold text-white">{n}</span>
                <h3 class="font-semibold">{s.name.clone()}</h3>
                <span class=format!("verdict rounded px-2 py-0.5 text-xs font-semibold {}", verdict_class(&verdict))>{verdict_label(&verdict)}</span>
                {reopened.then(|| view! {
                    <span class="rounded bg-yellow-100 px-2 py-0.5 text-xs font-semibold text-yellow-800">
                        {format!("Reopened — was {}", verdict_label(&s.previous_verdict))}
                    </span>
                })}
                {(!s.reason_label.is_empty()).then(|| view! { <span class="text-xs text-slate-600">{s.reason_label.clone()}</span> })}
            </header>
            <p class="mt-1 text-xs text-slate-500">{s.description.clone()}</p>
            {(!s.note.is_empty()).then(|| view! { <p class="mt-1 text-sm text-slate-700">"Note: " {s.note.clone()}</p> })}
            {(!s.previous_note.is_empty()).then(|| view! { <p class="mt-1 text-sm text-slate-500">"Earlier note: " {s.previous_note.clone()}</p> })}
            <div class="mt-3 flex flex-wrap gap-6">
                <div>
                    {show_old.then(|| view! { <p class="mb-1 text-xs font-semibold text-slate-500">"New"</p> })}
                    <div class="flex flex-wrap gap-3">
                        {new_photos}
                        {(!has_photo).then(|| view! { <p class="rounded-md border border-dashed border-slate-300 px-4 py-6 text-sm text-slate-400">"No photo yet"</p> })}
                    </div>
                </div>
                {show_old.then(|| view! {
                    <div class="border-l border-slate-200 pl-6">
                        <p class="mb-1 text-xs font-semibold text-slate-500">"Earlier rounds"</p>
                        <div class="flex flex-wrap gap-3 opacity-80">{old_photos}</div>
                    </div>
                })}
            </div>
            {vision.map(|(result, detail)| {
                let cls = if result == "pass" { "text-green-800 bg-green-50 border-green-200" } else { "text-amber-900 bg-amber-50 border-amber-200" };
                view! {
                    <p class=format!("vision-suggestion mt-3 rounded-md border px-2 py-1 text-xs {cls}") data-result=result>
                        <span class="font-semibold">"Vision model: "</span>{detail}
                    </p>
                }
            })}
            {can_review.then(|| view! { <ReviewForms n=n number=number.clone() verdict=verdict.clone() reasons=reasons.clone() review=review/> })}
        </article>
    }
}

#[component]
fn ReviewForms(n: i64, number: String, verdict: String, reasons: Vec<ReasonOption>, review: ServerAction<ReviewStep>) -> impl IntoView {
    let step = n.to_string();
    let is_ok = verdict == "ok";
    let rejected = matches!(verdict.as_str(), "missing" | "retake" | "rework");
    let quick = {
        let (number, step) = (number.clone(), step.clone());
        let (value, id, label, class) = if is_ok {
            ("pending", format!("reopen-{n}"), "Reopen step", "rounded-md border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100")
        } else {
            ("ok", format!("ok-{n}"), "✓ OK", "rounded-md bg-green-600 px-3 py-1.5 text-sm font-semibold text-white hover:bg-green-700")
        };
        view! {
            <ActionForm action=review>
                <input type="hidden" name="number" value=number/>
                <input type="hidden" name="step" value=step/>
                <input type="hidden" name="verdict" value=value/>
                <button type="submit" id=id class=class>{label}</button>
            </ActionForm>
        }
    };
    let radios = [("missing", "Missing"), ("retake", "Retake"), ("rework", "Rework")]
        .into_iter()
        .map(|(v, label)| {
            let checked = verdict == v;
            view! {
                <label class="flex items-center gap-1">
                    <input type="radio" name="verdict" value=v id=format!("v-{n}-{v}") required checked=checked/>
                    {label}
                </label>
            }
        })
        .collect_view();
    // Numbered: while the note is still empty, typing the digit picks the reason.
    let reason_options = reasons
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let label = if i < 9 { format!("{} · {}", i + 1, r.label) } else { r.label };
            view! { <option value=r.code>{label}</option> }
        })
        .collect_view();
    view! {
        <div class="mt-3 flex flex-wrap items-start gap-3 border-t border-slate-100 pt-3">
            {quick}
            <details class="reject flex-1" id=format!("reject-{n}") open=rejected>
                <summary class="cursor-pointer select-none rounded-md border border-red-200 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50">"Reject…"</summary>
                <ActionForm action=review>
                    <input type="hidden" name="number" value=number/>
                    <input type="hidden" name="step" value=step/>
                    <div class="mt-2 flex flex-wrap items-end gap-3 rounded-md bg-red-50/50 p-3">
                        <fieldset class="flex gap-3 text-sm">
                            <legend class="sr-only">"Verdict"</legend>
                            {radios}
                        </fieldset>
                        <label class="text-xs text-slate-600">"Reason"
                            <select name="reason" id=format!("reason-{n}") class="mt-1 block rounded border border-slate-300 px-2 py-1 text-sm">
                                <option value="">"—"</option>
                                {reason_options}
                            </select>
                        </label>
                        <label class="min-w-48 flex-1 text-xs text-slate-600">"Note for the contractor"
                            <input name="note" id=format!("note-{n}") maxlength="2000" class="mt-1 block w-full rounded border border-slate-300 px-2 py-1 text-sm"/>
                        </label>
                        <button type="submit" id=format!("save-{n}") class="rounded-md bg-red-600 px-3 py-1.5 text-sm font-semibold text-white hover:bg-red-700">"Save"</button>
                    </div>
                </ActionForm>
            </details>
        </div>
    }
}
