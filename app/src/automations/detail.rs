//! `/automations/{id}` (and `/automations/new`, `?from=ID` to start from a copy): one rule's
//! editor, its dry run (`?sample=`, a plain GET form) and its run log.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::*;

#[component]
pub fn AutomationPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let save = ServerAction::<SaveAutomation>::new();
    let delete = ServerAction::<DeleteAutomation>::new();
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), query.read().get("from"), query.read().get("sample"), save.version().get()),
        |(id, from, sample, _)| automation_page(id, from, sample),
    );
    page(
        "Automation · Dropcheck",
        data,
        Some(("/automations", "All automations")),
        move |d| view! { <RuleView d=d save=save delete=delete/> },
    )
}

/// The reference under the editor: each trigger, condition and action as JSON.
const HELP: &[(&str, &str)] = &[
    ("A status change", r#"{"type": "drop.status_changed", "from": "unreviewed", "to": "incomplete"} (either side may be left out)"#),
    ("A status held", r#"{"type": "drop.status_held", "status": "incomplete", "minutes": 1440}"#),
    (
        "A contractor's text",
        r#"{"type": "message.inbound", "match": "contains", "keywords": ["price"]} (exact, starts_with, contains, regex)"#,
    ),
    ("A schedule", r#"{"type": "schedule.cron", "cron": "0 8 * * 1-5", "time_zone": "Africa/Johannesburg", "catch_up": false}"#),
    ("A contact's tag", r#"{"type": "contact.tag_added", "tag": "vip"} · {"type": "contact.tag_removed"} (tag optional)"#),
    ("Another system's event", r#"{"type": "api.event", "event": "order.paid"} (POST /api/v1/events)"#),
    (
        "Conditions",
        r#"{"all": [{"field": "project", "op": "eq", "value": "Velo Test"}], "any": […]} — eq ne in not_in contains starts_with gt lt exists"#,
    ),
    (
        "Send a template",
        r#"{"type": "send_template", "template": "drop_reminder", "to": "contact", "variables": {"contractor_name": "{{ contractor_name or 'there' }}"}}"#,
    ),
    ("Send a text", r#"{"type": "send_text", "text": "…", "fallback_template": "drop_reminder"} (only inside the 24-hour window)"#),
    ("Tag the contact", r#"{"type": "add_tag", "tag": "late"} · {"type": "remove_tag", "tag": "late"}"#),
    ("Call a webhook", r#"{"type": "call_webhook", "endpoint": 1} (an endpoint from /api/v1/webhook-endpoints)"#),
    ("Tell the team", r#"{"type": "notify_users", "text": "{{ drop_number }} is still incomplete"} (users with a linked number)"#),
];

#[component]
fn RuleView(d: RulePageData, save: ServerAction<SaveAutomation>, delete: ServerAction<DeleteAutomation>) -> impl IntoView {
    let saved = move || save.value().get().is_some_and(|r| r.is_ok());
    let title = if d.id.is_some() { d.name.clone() } else { "New rule".to_string() };
    let id = d.id.map(|i| i.to_string()).unwrap_or_default();
    let delete_id = id.clone();
    view! {
        <Layout me=d.me.clone()>
            <p class="mb-2 text-sm"><a href="/automations" class="text-blue-700 underline">"← All automations"</a></p>
            <div class="mb-1 flex flex-wrap items-baseline gap-3">
                <h1 class="text-2xl font-semibold" id="rule-title">{title}</h1>
                {d.built_in.then(|| view! { <span class="rounded bg-slate-100 px-1.5 text-xs uppercase text-slate-600">"built-in example"</span> })}
                {d.id.map(|i| view! { <a id="copy-rule" href=format!("/automations/new?from={i}") class="text-sm text-blue-700 underline">"Make a copy"</a> })}
            </div>
            <p class="text-sm text-slate-700" id="rule-summary"><b>"When: "</b>{d.when.clone()}" · "<b>"Then: "</b>{d.then.join("; ")}</p>
            <section class="mt-4 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
                {action_error(save)}
                {move || saved().then(|| view! { <p role="status" id="rule-saved" class="mb-3 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">"Saved."</p> })}
                <ActionForm action=save>
                    <input type="hidden" name="id" value=id.clone()/>
                    <label class="block max-w-xl text-sm font-medium">"Name"
                        <input id="rule-name" name="name" required maxlength="120" value=d.name.clone() class=field()/>
                    </label>
                    <label class="mt-3 flex items-center gap-2 text-sm font-medium">
                        <input id="rule-enabled" type="checkbox" name="enabled" value="on" checked=d.enabled/>"On — the rule runs"
                    </label>
                    <label class="mt-3 block text-sm font-medium">"Trigger, conditions and actions (JSON)"
                        <textarea id="rule-body" name="body" rows="14" spellcheck="false" class=format!("{} font-mono text-xs", field())>{d.body.clone()}</textarea>
                    </label>
                    <details class="mt-1 text-xs text-slate-600" id="rule-reference">
                        <summary class="cursor-pointer text-blue-700">"Reference: triggers, conditions, actions"</summary>
                        <dl class="mt-1 grid gap-x-3 gap-y-1 sm:grid-cols-[11rem_1fr]">
                            {HELP.iter().map(|(what, json)| view! { <dt class="font-medium">{*what}</dt><dd class="font-mono">{*json}</dd> }).collect_view()}
                        </dl>
                    </details>
                    <p class="mt-1 text-xs text-slate-500">"Texts and template variables are Jinja2 over the trigger's variables — for drops: drop_number, project, status, from, round, contractor_name, contractor_phone."</p>
                    <button id="save-rule" type="submit" class=format!("mt-4 {}", primary_button())>{if d.id.is_some() { "Save rule" } else { "Create rule" }}</button>
                </ActionForm>
            </section>
            {d.id.map(|_| view! {
                <section class="mt-4 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
                    <h2 class="text-lg font-semibold">"Dry run"</h2>
                    <p class="text-sm text-slate-500">"What the saved rule would do for this sample event. Nothing is sent or logged."</p>
                    <form method="get">
                        <textarea id="dry-run-sample" name="sample" rows="6" spellcheck="false" class=format!("{} font-mono text-xs", field())>{d.sample.clone()}</textarea>
                        <button id="dry-run" type="submit" class="mt-2 rounded-md border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-50">"Try it"</button>
                    </form>
                    {d.dry_run.clone().map(|r| match r {
                        Ok(lines) => view! {
                            <ul id="dry-run-result" class="mt-3 space-y-1 rounded-md border border-sky-200 bg-sky-50 px-3 py-2 text-sm">
                                {lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p id="dry-run-result" role="alert" class="mt-3 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{e}</p> }.into_any(),
                    })}
                </section>
            })}
            {d.id.map(|_| view! { <RunLog runs=d.runs.clone()/> })}
            {(d.id.is_some() && !d.built_in).then(|| view! {
                <section class="mt-4">
                    {action_error(delete)}
                    <ActionForm action=delete>
                        <input type="hidden" name="id" value=delete_id.clone()/>
                        <button id="delete-rule" type="submit" class="rounded border border-red-300 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50">"Delete this rule and its run log"</button>
                    </ActionForm>
                </section>
            })}
        </Layout>
    }
}

#[component]
fn RunLog(runs: Vec<RunLine>) -> impl IntoView {
    view! {
        <section class="mt-4 overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
            <h2 class="px-5 pt-4 text-lg font-semibold">"Run log"</h2>
            <table class="mt-2 min-w-full divide-y divide-slate-200 text-sm" id="runs">
                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                    <tr><th class="px-4 py-2">"When"</th><th class="px-4 py-2">"Result"</th><th class="px-4 py-2">"About"</th><th class="px-4 py-2">"What it did"</th></tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {runs.is_empty().then(|| view! { <tr><td colspan="4" class="px-4 py-6 text-center text-slate-500">"No runs yet."</td></tr> })}
                    {runs.into_iter().map(|r| view! {
                        <tr class="align-top" data-run=r.id.to_string()>
                            <td class="whitespace-nowrap px-4 py-2 text-slate-500">{r.at.clone()}</td>
                            <td class="px-4 py-2"><span class=run_class(&r.status)>{r.status.replace('_', " ")}</span></td>
                            <td class="px-4 py-2">
                                {match r.subject_href.clone() {
                                    Some(href) => view! { <a class="text-blue-700 underline" href=href>{r.subject.clone()}</a> }.into_any(),
                                    None => view! { <span>{r.subject.clone()}</span> }.into_any(),
                                }}
                                <span class="block text-xs text-slate-500">{r.trigger.clone()}</span>
                            </td>
                            <td class="px-4 py-2">
                                {(!r.detail.is_empty()).then(|| view! { <p class="text-slate-600">{r.detail.clone()}</p> })}
                                <ul class="space-y-1">
                                    {r.actions.into_iter().map(|a| view! {
                                        <li class="run-action">
                                            <span class="font-mono text-xs">{a.kind.clone()}</span>
                                            " → " {if a.recipient.is_empty() { "—".to_string() } else { a.recipient.clone() }} " · "
                                            <span class=run_class(&a.status)>{a.status.clone()}</span>
                                            {a.message_id.map(|m| view! { <span class="ml-1 text-xs text-slate-500">{format!("message #{m}{}", a.message_status.clone().map(|s| format!(" ({s})")).unwrap_or_default())}</span> })}
                                            <span class="block whitespace-pre-wrap text-slate-600">{a.detail.clone()}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

fn run_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "done" => "rounded bg-emerald-100 px-1.5 text-xs font-semibold text-emerald-800",
        "failed" | "condition_error" => "rounded bg-red-100 px-1.5 text-xs font-semibold text-red-800",
        "partial" => "rounded bg-amber-100 px-1.5 text-xs font-semibold text-amber-800",
        _ => "rounded bg-slate-100 px-1.5 text-xs font-semibold text-slate-600",
    }
}
