//! `/contacts`: every contact, filtered by text, tag, attribute and consent; for admins the
//! CSV import and the custom attributes.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::*;

#[component]
pub fn ContactsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| query.read().get(k).filter(|v| !v.is_empty());
    let data = Resource::new(
        move || (q("q"), q("tag"), q("attribute"), q("value"), q("consent"), q("offset")),
        |(text, tag, attribute, value, consent, offset)| contacts_page(text, tag, attribute, value, consent, offset),
    );
    page("Contacts · Dropcheck", data, Some(("/contacts", "All contacts")), move |d| view! { <ContactsView d=d/> })
}

#[component]
fn ContactsView(d: ContactsPageData) -> impl IntoView {
    let query = use_query_map();
    let cur = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let page_href = |offset: i64| {
        let mut parts: Vec<String> = ["q", "tag", "attribute", "value", "consent"]
            .iter()
            .filter_map(|k| query.read_untracked().get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencode(&v))))
            .collect();
        parts.push(format!("offset={offset}"));
        format!("/contacts?{}", parts.join("&"))
    };
    let shown = d.rows.len() as i64;
    let prev = (d.offset > 0).then(|| page_href((d.offset - PAGE_SIZE).max(0)));
    let next = (d.offset + shown < d.total).then(|| page_href(d.offset + PAGE_SIZE));
    let admin = d.me.admin;
    let attributes = d.attributes.clone();
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-1 flex items-baseline gap-4">
                <h1 class="text-2xl font-semibold">"Contacts"</h1>
                {admin.then(|| view! { <a id="import-contacts" href="/contacts/import" class="text-sm text-blue-700 underline">"Import CSV"</a> })}
            </div>
            <p class="mb-4 text-sm text-slate-500">
                "Everyone who wrote to Dropcheck, was written to, or was added or imported — with their tags, custom attributes and consent."
            </p>
            {notice()}
            <form method="get" action="/contacts" class="mb-4 flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                <label class="text-sm">"Name or number"
                    <input id="filter-q" name="q" value=cur("q") class=format!("{} w-44", select_class())/>
                </label>
                <label class="text-sm">"Tag"
                    <select id="filter-tag" name="tag" class=select_class()>
                        <option value="">"Any"</option>
                        {d.tags.iter().map(|t| view! { <option value=t.clone() selected=cur("tag").eq_ignore_ascii_case(t)>{t.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"Attribute"
                    <select id="filter-attribute" name="attribute" class=select_class()>
                        <option value="">"Any"</option>
                        {d.attributes.iter().map(|a| view! { <option value=a.key.clone() selected=cur("attribute") == a.key>{a.label.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"is"
                    <input id="filter-value" name="value" value=cur("value") placeholder="e.g. Gold" class=format!("{} w-32", select_class())/>
                </label>
                <label class="text-sm">"Consent"
                    <select id="filter-consent" name="consent" class=select_class()>
                        {[("", "Any"), ("opted_in", "Opted in"), ("unknown", "Not asked"), ("opted_out", "Opted out")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=cur("consent") == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-semibold text-white hover:bg-slate-900">"Filter"</button>
                <a href="/contacts" class="text-sm text-slate-600 underline">"Clear"</a>
                <span class="ml-auto">{csv_link(with_query("/contacts.csv", &["q", "tag", "attribute", "value", "consent"]), "contacts.csv")}</span>
            </form>
            <p class="mb-2 text-sm text-slate-500" id="contact-count">
                {if d.total == 0 { "No contacts match.".to_string() } else { format!("{}–{} of {}", d.offset + 1, d.offset + shown, d.total) }}
            </p>
            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="contacts">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr><th class="px-3 py-2">"Number"</th><th class="px-3 py-2">"Name"</th><th class="px-3 py-2">"Tags"</th>
                            <th class="px-3 py-2">"Attributes"</th><th class="px-3 py-2">"Consent"</th><th class="px-3 py-2">"Added"</th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.into_iter().map(|c| view! {
                            <tr class="contact-row" data-phone=c.phone.clone()>
                                <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">
                                    <a class="text-blue-700 underline" href=format!("/contacts/{}", urlencode(&c.phone))>{c.phone.clone()}</a>
                                </td>
                                <td class="px-3 py-2">{c.name.clone()}</td>
                                <td class="px-3 py-2">
                                    {c.tags.iter().map(|t| view! { <span class="mr-1 inline-block rounded bg-sky-100 px-1.5 text-xs text-sky-900">{t.clone()}</span> }).collect_view()}
                                </td>
                                <td class="px-3 py-2 text-slate-700">{c.attributes.clone()}</td>
                                <td class=format!("whitespace-nowrap px-3 py-2 {}", if c.consent == "opted_out" { "text-red-700" } else if c.consent == "opted_in" { "text-emerald-700" } else { "text-slate-500" })>
                                    {c.consent_label.clone()}
                                </td>
                                <td class="whitespace-nowrap px-3 py-2 text-slate-500">{c.created.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <div class="mt-4 flex gap-3">
                {prev.map(|h| view! { <a href=h id="prev-page" class="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">"← Newer"</a> })}
                {next.map(|h| view! { <a href=h id="next-page" class="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">"Older →"</a> })}
            </div>
            {admin.then(|| view! { <AttributesSection attributes=attributes/> })}
        </Layout>
    }
}

/// The custom attributes: each with its type (and options), a remove button, and a form to add one.
#[component]
fn AttributesSection(attributes: Vec<AttrView>) -> impl IntoView {
    view! {
        <section class="mt-8 rounded-lg border border-slate-200 bg-white p-4 shadow-sm" id="attributes">
            <h2 class="mb-1 text-lg font-semibold">"Custom attributes"</h2>
            <p class="mb-3 text-sm text-slate-500">
                "Typed fields every contact can have. Rules test them and templates use them by key (" <code>"{{ plan }}"</code> ")."
            </p>
            <ul class="mb-4 divide-y divide-slate-100 text-sm">
                {attributes.is_empty().then(|| view! { <li class="py-2 text-slate-500">"None yet."</li> })}
                {attributes.into_iter().map(|a| view! {
                    <li class="flex items-center gap-3 py-2" data-attribute=a.key.clone()>
                        <span class="font-medium">{a.label.clone()}</span>
                        <code class="text-xs text-slate-500">{a.key.clone()}</code>
                        <span class="text-xs text-slate-500">{a.kind.clone()}{(!a.options.is_empty()).then(|| format!(": {}", a.options.join(", ")))}</span>
                        <form method="post" action=format!("/contacts/attributes/{}/delete", a.key) class="ml-auto">
                            <button type="submit" class="rounded border border-slate-300 px-2 py-0.5 text-xs hover:bg-slate-100">"Remove"</button>
                        </form>
                    </li>
                }).collect_view()}
            </ul>
            <form method="post" action="/contacts/attributes" class="flex flex-wrap items-end gap-3" id="add-attribute">
                <label class="text-sm">"Label" <input name="label" required class=format!("{} w-40", select_class()) placeholder="Plan"/></label>
                <label class="text-sm">"Key" <input name="key" required pattern="[a-z][a-z0-9_]{0,39}" class=format!("{} w-32", select_class()) placeholder="plan"/></label>
                <label class="text-sm">"Type"
                    <select name="type" class=select_class()>
                        {["text", "number", "date", "bool", "enum", "url"].into_iter().map(|t| view! { <option value=t>{t}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">"Options (enum; comma-separated)" <input name="options" class=format!("{} w-56", select_class()) placeholder="Gold, Silver"/></label>
                <button type="submit" class="rounded-md bg-slate-800 px-3 py-1.5 text-sm font-semibold text-white hover:bg-slate-900">"Add attribute"</button>
            </form>
        </section>
    }
}
