//! `/contacts/{phone}`: a contact's profile (admins edit it here), tags and attributes, and
//! what touched it — drops, messages, automation runs, events.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::*;

#[component]
pub fn ContactPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(move || params.read().get("phone").unwrap_or_default(), contact_page);
    page("Contact · Dropcheck", data, Some(("/contacts", "All contacts")), move |d| view! { <ContactView d=d/> })
}

fn row(label: &'static str, value: String) -> impl IntoView {
    view! {
        <div class="flex gap-3 py-1.5 text-sm">
            <dt class="w-32 shrink-0 text-slate-500">{label}</dt>
            <dd class="text-slate-900">{if value.is_empty() { "—".to_string() } else { value }}</dd>
        </div>
    }
}

#[component]
fn ContactView(d: ContactPageData) -> impl IntoView {
    let admin = d.me.admin;
    let save_to = format!("/contacts/{}/save", urlencode(&d.phone));
    let edit = admin.then(|| view! { <EditForm d=d.clone() action=save_to.clone()/> });
    let activity = |title: &'static str, id: &'static str, lines: Vec<ActivityLine>| {
        view! {
            <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id=id>
                <h2 class="mb-2 font-semibold">{title}</h2>
                {lines.is_empty().then(|| view! { <p class="text-sm text-slate-500">"None yet."</p> })}
                <ul class="divide-y divide-slate-100 text-sm">
                    {lines.into_iter().map(|l| view! {
                        <li class="py-1.5">
                            <span class="text-slate-500">{l.at.clone()}</span>" "
                            {if l.href.is_empty() {
                                view! { <span class="font-medium">{l.what.clone()}</span> }.into_any()
                            } else {
                                view! { <a class="font-medium text-blue-700 underline" href=l.href.clone()>{l.what.clone()}</a> }.into_any()
                            }}
                            {(!l.detail.is_empty()).then(|| view! { <div class="text-xs text-slate-600">{l.detail.clone()}</div> })}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        }
    };
    view! {
        <Layout me=d.me.clone()>
            <a href="/contacts" class="text-sm text-blue-700 underline">"← Contacts"</a>
            <h1 class="mb-1 mt-2 text-2xl font-semibold" id="contact-name">{if d.name.is_empty() { d.phone.clone() } else { d.name.clone() }}</h1>
            <p class="mb-4 font-mono text-sm text-slate-600">{d.phone.clone()}</p>
            {notice()}
            <div class="grid gap-4 lg:grid-cols-2">
                <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="profile">
                    <h2 class="mb-2 font-semibold">"Profile"</h2>
                    <dl>
                        {row("Consent", if d.consent_note.is_empty() { d.consent.clone() } else { format!("{} ({})", d.consent, d.consent_note) })}
                        {row("Tags", d.tags.join(", "))}
                        {row("Birthday", d.birthday.clone())}
                        {row("Time zone", d.time_zone.clone())}
                        {d.attributes.iter().map(|a| view! {
                            <div class="flex gap-3 py-1.5 text-sm" data-attribute=a.def.key.clone()>
                                <dt class="w-32 shrink-0 text-slate-500">{a.def.label.clone()}</dt>
                                <dd>{if a.value.is_empty() { "—".to_string() } else { a.value.clone() }}</dd>
                            </div>
                        }).collect_view()}
                        {row("Last wrote", d.last_inbound.clone())}
                        {row("Added", d.created.clone())}
                    </dl>
                </section>
                {edit}
                <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="contact-drops">
                    <h2 class="mb-2 font-semibold">"Drops"</h2>
                    {d.drops.is_empty().then(|| view! { <p class="text-sm text-slate-500">"None."</p> })}
                    <ul class="text-sm">
                        {d.drops.iter().map(|(n, status, project)| view! {
                            <li class="py-1"><a class="font-mono text-blue-700 underline" href=format!("/drops/{n}")>{n.clone()}</a>
                                <span class="ml-2 text-slate-600">{format!("{status} · {project}")}</span></li>
                        }).collect_view()}
                    </ul>
                </section>
                <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="contact-messages">
                    <h2 class="mb-2 font-semibold">"Messages"
                        <a class="ml-2 text-xs font-normal text-blue-700 underline" href=format!("/messages?phone={}", urlencode(d.phone.trim_start_matches('+')))>"all"</a>
                    </h2>
                    {d.messages.is_empty().then(|| view! { <p class="text-sm text-slate-500">"None."</p> })}
                    <ul class="divide-y divide-slate-100 text-sm">
                        {d.messages.iter().map(|m| view! {
                            <li class="py-1.5">
                                <span class="text-slate-500">{m.at.clone()}</span>
                                <span class="ml-1">{if m.direction == "in" { "←" } else { "→" }}</span>
                                <span class=format!("ml-1 text-xs {}", tick_class(&m.status))>{tick_label(&m.status)}</span>
                                <div class="whitespace-pre-wrap text-slate-800">{m.body.clone()}</div>
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
                {activity("Automation runs", "contact-runs", d.runs.clone())}
                {activity("Events", "contact-events", d.events.clone())}
            </div>
        </Layout>
    }
}

/// The admins' form: every field of the profile and each attribute by its type.
#[component]
fn EditForm(d: ContactPageData, action: String) -> impl IntoView {
    let consent_value = match d.consent.as_str() {
        "Opted in" => "opted_in",
        "Opted out" => "opted_out",
        _ => "unknown",
    };
    view! {
        <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
            <h2 class="mb-2 font-semibold">"Change"</h2>
            <form method="post" action=action id="contact-form" class="grid gap-3 text-sm">
                <label class="grid gap-1">"Name" <input name="name" value=d.name.clone() maxlength="120" class=input_class()/></label>
                <label class="grid gap-1">"Consent"
                    <select name="consent" class=select_class()>
                        {[("unknown", "Not asked (transactional messages only)"), ("opted_in", "Opted in (may get broadcasts)"), ("opted_out", "Opted out (nothing but STOP/START replies)")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=consent_value == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <label class="grid gap-1">"Tags (comma-separated)" <input name="tags" value=d.tags.join(", ") class=input_class()/></label>
                <label class="grid gap-1">"Birthday (MM-DD or YYYY-MM-DD)" <input name="birthday" value=d.birthday.clone() placeholder="03-14" class=input_class()/></label>
                <label class="grid gap-1">"Time zone" <input name="time_zone" value=d.time_zone.clone() placeholder="Africa/Johannesburg" class=input_class()/></label>
                {d.attributes.into_iter().map(|a| {
                    let name = format!("attr.{}", a.def.key);
                    let input = match a.def.kind.as_str() {
                        "enum" | "bool" => {
                            let options: Vec<String> = if a.def.kind == "bool" { vec!["yes".into(), "no".into()] } else { a.def.options.clone() };
                            view! {
                                <select name=name class=select_class()>
                                    <option value="">"—"</option>
                                    {options.into_iter().map(|o| { let sel = o.eq_ignore_ascii_case(&a.value); view! { <option value=o.clone() selected=sel>{o.clone()}</option> } }).collect_view()}
                                </select>
                            }.into_any()
                        }
                        kind => {
                            let ty = match kind { "number" => "number", "date" => "date", "url" => "url", _ => "text" };
                            view! { <input type=ty step=(ty == "number").then_some("any") name=name value=a.value.clone() class=input_class()/> }.into_any()
                        }
                    };
                    view! { <label class="grid gap-1">{a.def.label.clone()}{input}</label> }
                }).collect_view()}
                <div><button type="submit" class=primary_button()>"Save"</button></div>
            </form>
        </section>
    }
}
