//! `/settings/templates` (admins): every message the bot and the notifications API send comes
//! from one of these. List, create, edit, enable/disable, with a live preview rendered from
//! the template's sample variables; a syntax error or an unknown variable is shown and the
//! template is not saved. Each can name its approved provider template for sends outside
//! WhatsApp's 24-hour window.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateItem {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub built_in: bool,
    pub has_provider_template: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TemplateEdit {
    pub name: String,
    pub body: String,
    pub description: String,
    pub sample_vars: String,
    pub provider_template: String,
    pub enabled: bool,
    /// Editing an existing template (its name is fixed) rather than creating one.
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatesPageData {
    pub me: Me,
    pub items: Vec<TemplateItem>,
    pub current: TemplateEdit,
}

#[server(prefix = "/rpc", endpoint = "templates_page")]
pub async fn templates_page(name: Option<String>) -> Result<TemplatesPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let rows = st.store.templates().await.map_err(fail)?;
    let items = rows
        .iter()
        .map(|t| TemplateItem {
            name: t.name.clone(),
            description: t.description.clone().unwrap_or_default(),
            enabled: t.enabled,
            built_in: t.built_in(),
            has_provider_template: t.provider_template.is_some(),
        })
        .collect();
    let wanted = name.filter(|n| !n.is_empty()).unwrap_or_else(|| "drop_feedback".into());
    let current = match (wanted.as_str(), rows.into_iter().find(|t| t.name == wanted)) {
        ("new", _) => TemplateEdit { enabled: true, sample_vars: "{}".into(), ..Default::default() },
        (_, Some(t)) => TemplateEdit {
            name: t.name,
            body: t.body,
            description: t.description.unwrap_or_default(),
            sample_vars: t.sample_vars.unwrap_or_else(|| "{}".into()),
            provider_template: t.provider_template.unwrap_or_default(),
            enabled: t.enabled,
            exists: true,
        },
        (_, None) => {
            return Err(crate::ssr::fail(dropcheck_core::CoreError::not_found("template_not_found", format!("template {wanted}"))))
        }
    };
    Ok(TemplatesPageData { me: crate::ui::me_of(&user), items, current })
}

/// The live preview: the body rendered with the sample variables, or what is wrong.
#[server(prefix = "/rpc", endpoint = "preview_template")]
pub async fn preview_template(body: String, sample_vars: String) -> Result<String, AppError> {
    use crate::ssr::*;
    require_admin().await?;
    dropcheck_core::templates::check(&body, &sample_vars).map_err(|e| fail(e.into()))
}

#[server(prefix = "/rpc", endpoint = "save_template")]
#[allow(clippy::too_many_arguments)]
pub async fn save_template(
    name: String,
    body: String,
    description: Option<String>,
    sample_vars: Option<String>,
    provider_template: Option<String>,
    enabled: Option<String>,
    create: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, user) = require_admin().await?;
    let input = dropcheck_core::template_store::TemplateInput {
        name: name.trim().to_string(),
        body,
        description: description.unwrap_or_default(),
        sample_vars: sample_vars.unwrap_or_default(),
        provider_template: provider_template.unwrap_or_default(),
        enabled: enabled.is_some(),
    };
    let created = create.is_some();
    st.store.save_template(&input, created).await.map_err(fail)?;
    tracing::info!(template = %input.name, by = %user.email, created, "template saved");
    if created {
        leptos_axum::redirect(&format!("/settings/templates?name={}", input.name));
    }
    Ok(())
}

#[component]
pub fn TemplatesPage() -> impl IntoView {
    let query = use_query_map();
    let save = ServerAction::<SaveTemplate>::new();
    let data = Resource::new(move || (query.read().get("name"), save.version().get()), |(name, _)| templates_page(name));
    page("Templates · Dropcheck", data, Some(("/settings/templates", "All templates")), move |d| view! { <TemplatesView d=d save=save/> })
}

#[component]
fn TemplatesView(d: TemplatesPageData, save: ServerAction<SaveTemplate>) -> impl IntoView {
    let cur = d.current.clone();
    let (body, set_body) = signal(cur.body.clone());
    let (sample, set_sample) = signal(cur.sample_vars.clone());
    // Re-rendered on the server as the admin types; the first render is the server's.
    let preview = Resource::new(move || (body.get(), sample.get()), |(b, s)| preview_template(b, s));
    let selected = cur.name.clone();
    let saved = move || save.value().get().is_some_and(|r| r.is_ok());
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-4 flex items-baseline gap-4">
                <h1 class="text-2xl font-semibold">"Message templates"</h1>
                <a href="/settings/templates?name=new" class="text-sm text-blue-700 underline">"New template"</a>
            </div>
            <div class="grid gap-6 lg:grid-cols-[16rem_1fr]">
                <nav class="self-start rounded-lg border border-slate-200 bg-white shadow-sm" id="template-list">
                    <ul class="divide-y divide-slate-100 text-sm">
                        {d.items.into_iter().map(|t| {
                            let active = t.name == selected;
                            view! {
                                <li>
                                    <a href=format!("/settings/templates?name={}", t.name) data-template=t.name.clone()
                                        class=if active { "block bg-blue-50 px-3 py-2" } else { "block px-3 py-2 hover:bg-slate-50" }>
                                        <span class="font-mono text-xs font-semibold">{t.name.clone()}</span>
                                        {(!t.enabled).then(|| view! { <span class="ml-2 rounded bg-slate-200 px-1.5 text-[10px] uppercase text-slate-600">"off"</span> })}
                                        {t.has_provider_template.then(|| view! { <span class="ml-2 rounded bg-emerald-100 px-1.5 text-[10px] uppercase text-emerald-700" title="has an approved provider template">"24h+"</span> })}
                                        <span class="block truncate text-xs text-slate-500">{t.description.clone()}</span>
                                    </a>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </nav>
                <section class="rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
                    {action_error(save)}
                    {move || saved().then(|| view! { <p role="status" id="template-saved" class="my-3 rounded-md border border-emerald-300 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">"Saved. New messages use this version."</p> })}
                    <ActionForm action=save>
                        {if cur.exists {
                            view! {
                                <h2 class="font-mono text-lg font-semibold">{cur.name.clone()}</h2>
                                <input type="hidden" name="name" value=cur.name.clone()/>
                            }.into_any()
                        } else {
                            view! {
                                <input type="hidden" name="create" value="1"/>
                                <label class="block text-sm font-medium">"Name (lower-case letters, digits and _)"
                                    <input name="name" required pattern="[a-z][a-z0-9_]{1,63}" class=format!("{} font-mono", field())/>
                                </label>
                            }.into_any()
                        }}
                        <label class="mt-3 block text-sm font-medium">"Description"
                            <input name="description" value=cur.description.clone() class=field()/>
                        </label>
                        <div class="mt-3 grid gap-4 xl:grid-cols-2">
                            <label class="block text-sm font-medium">"Body (Jinja2 syntax: " <code>"{{ drop_number }}"</code> ", " <code>"{% for s in steps %}…{% endfor %}"</code> ")"
                                <textarea id="template-body" name="body" rows="12" class=format!("{} font-mono", field())
                                    on:input=move |ev| set_body.set(event_target_value(&ev))>{cur.body.clone()}</textarea>
                            </label>
                            <div>
                                <p class="text-sm font-medium">"Preview with the sample variables"</p>
                                <Transition fallback=|| view! { <p class="mt-1 text-sm text-slate-400">"Rendering…"</p> }>
                                    {move || Suspend::new(async move {
                                        match preview.await {
                                            Ok(text) => view! {
                                                <div id="template-preview" class="mt-1 min-h-[10rem] whitespace-pre-wrap rounded-md border border-emerald-200 bg-emerald-50/50 px-3 py-2 text-sm text-slate-800">{text}</div>
                                            }.into_any(),
                                            Err(e) => view! {
                                                <div id="template-preview-error" role="alert" class="mt-1 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{e.message}</div>
                                            }.into_any(),
                                        }
                                    })}
                                </Transition>
                            </div>
                        </div>
                        <label class="mt-3 block text-sm font-medium">"Sample variables (JSON; the preview and the check on save use them)"
                            <textarea id="template-sample" name="sample_vars" rows="4" class=format!("{} font-mono text-xs", field())
                                on:input=move |ev| set_sample.set(event_target_value(&ev))>{cur.sample_vars.clone()}</textarea>
                        </label>
                        <label class="mt-3 block text-sm font-medium">"Approved provider template for sends outside the 24-hour window (JSON, optional)"
                            <textarea name="provider_template" rows="3" placeholder=r#"{"twilio": {"content_sid": "HX…", "variables": ["drop_number"]}, "meta": {"name": "drop_feedback", "language": "en_US", "params": ["drop_number"]}}"#
                                class=format!("{} font-mono text-xs", field())>{cur.provider_template.clone()}</textarea>
                        </label>
                        <p class="mt-1 text-xs text-slate-500">"Each parameter is an expression over the variables, e.g. " <code>"steps | map(attribute='number') | join(', ')"</code> "."</p>
                        <div class="mt-4 flex items-center gap-4">
                            <label class="flex items-center gap-2 text-sm"><input type="checkbox" name="enabled" value="on" checked=cur.enabled/>"Enabled"</label>
                            <button id="save-template" type="submit" class="rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">
                                {if cur.exists { "Save template" } else { "Create template" }}
                            </button>
                        </div>
                    </ActionForm>
                </section>
            </div>
        </Layout>
    }
}
