//! The built-in WhatsApp simulator (`/sandbox`).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxPageData {
    pub me: Me,
    /// `None` when another provider is active (the simulator is off).
    pub provider: String,
    pub phone: String,
    pub phones: Vec<String>,
    /// The conversation, oldest first.
    pub messages: Vec<MessageView>,
}

#[server(prefix = "/rpc", endpoint = "sandbox_page")]
pub async fn sandbox_page(phone: Option<String>) -> Result<SandboxPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::outbox::MessageFilter;
    let (st, user) = require_user().await?;
    let phone = match phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => dropcheck_core::domain::Phone::parse(p).map_err(|e| fail(e.into()))?.as_str().to_string(),
        None => SANDBOX_DEFAULT_PHONE.to_string(),
    };
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    let filter = MessageFilter { phone: Some(digits), ..Default::default() };
    let (rows, _) = st.store.list_messages(&filter, None, 100).await.map_err(fail)?;
    let phones = st.store.contact_phones(20).await.map_err(fail)?;
    Ok(SandboxPageData {
        me: crate::ui::me_of(&user),
        provider: st.settings.integrations.active().to_string(),
        // list_messages matches digits anywhere; keep this number's own messages.
        messages: rows.into_iter().rev().filter(|m| m.phone == phone.as_str()).map(message_view).collect(),
        phone,
        phones: phones.iter().map(ToString::to_string).collect(),
    })
}

/// The number the simulator starts with.
#[cfg(feature = "ssr")]
pub const SANDBOX_DEFAULT_PHONE: &str = "+27640412391";

#[component]
pub fn SandboxPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.read().get("phone").filter(|v| !v.is_empty()), sandbox_page);
    page("Sandbox · Dropcheck", data, Some(("/sandbox", "Back to the sandbox")), move |d| view! { <SandboxView d=d/> })
}

#[component]
fn SandboxView(d: SandboxPageData) -> impl IntoView {
    let enabled = d.provider == "sandbox";
    let phone = d.phone.clone();
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-4 flex flex-wrap items-end gap-4">
                <div>
                    <h1 class="text-2xl font-semibold">"WhatsApp sandbox"</h1>
                    <p class="text-sm text-slate-600">"Play a contractor: what you send here goes through the same signed webhook and processing as a real WhatsApp message."</p>
                </div>
                <form method="get" action="/sandbox" class="ml-auto flex items-end gap-2">
                    <label class="text-sm">"Phone"
                        <input id="sandbox-phone" name="phone" value=phone.clone() list="sandbox-phones" class="mt-1 block w-48 rounded-md border border-slate-300 px-2 py-1.5 font-mono text-sm"/>
                    </label>
                    <datalist id="sandbox-phones">{d.phones.iter().map(|p| view! { <option value=p.clone()></option> }).collect_view()}</datalist>
                    <button type="submit" class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm hover:bg-slate-100">"Open"</button>
                </form>
            </div>
            {(!enabled).then(|| view! {
                <ErrorBox msg=format!("The sandbox is off: the active provider is {}. Messages go to real phones.", d.provider)/>
            })}
            <div class="mx-auto max-w-2xl overflow-hidden rounded-2xl border border-slate-300 bg-[#efeae2] shadow">
                <div class="flex items-center gap-3 bg-emerald-700 px-4 py-3 text-white">
                    <span class="inline-block h-8 w-8 rounded-full bg-emerald-300 text-center font-bold leading-8 text-emerald-900">"D"</span>
                    <div><div class="font-semibold">"Dropcheck"</div><div class="text-xs text-emerald-100">{format!("chatting as {phone}")}</div></div>
                    <a href=format!("/sandbox?phone={}", crate::ui::urlencode(&phone)) id="sandbox-refresh" class="ml-auto rounded bg-emerald-800 px-2 py-1 text-xs hover:bg-emerald-900">"Refresh"</a>
                </div>
                <ol id="sandbox-chat" class="max-h-[60vh] space-y-2 overflow-y-auto p-4">
                    {d.messages.is_empty().then(|| view! { <li class="text-center text-sm text-slate-500">"No messages yet. Send a drop number to start, e.g. DR12345678."</li> })}
                    {d.messages.into_iter().map(|m| {
                        let mine = m.direction == "in";
                        view! {
                            <li class=if mine { "flex justify-end" } else { "flex justify-start" }>
                                <div class=if mine { "sandbox-sent max-w-[80%] rounded-lg bg-[#d9fdd3] px-3 py-2 text-sm shadow-sm" } else { "sandbox-received max-w-[80%] rounded-lg bg-white px-3 py-2 text-sm shadow-sm" }>
                                    <div class="whitespace-pre-wrap">{m.body.clone()}</div>
                                    <div class="mt-1 text-right text-[11px] text-slate-500">{m.at.clone()}{(!mine).then(|| format!(" · {}", tick_label(&m.status)))}</div>
                                </div>
                            </li>
                        }
                    }).collect_view()}
                </ol>
                <form method="post" action="/sandbox/send" enctype="multipart/form-data" class="space-y-2 border-t border-slate-300 bg-[#f0f2f5] p-3">
                    <input type="hidden" name="phone" value=phone.clone()/>
                    <div class="flex gap-2">
                        <input id="sandbox-text" name="body" placeholder="Type a message (or a caption for the photos)" autocomplete="off"
                               class="block w-full rounded-full border border-slate-300 px-4 py-2 text-sm"/>
                        <button id="sandbox-send" type="submit" disabled=!enabled class="rounded-full bg-emerald-600 px-4 py-2 text-sm font-semibold text-white hover:bg-emerald-700 disabled:opacity-50">"Send"</button>
                    </div>
                    <label class="flex items-center gap-2 text-xs text-slate-600">
                        "Attach"
                        <select id="sandbox-photos" name="photos" class="rounded border border-slate-300 bg-white px-1 py-0.5">
                            {(0..=12).map(|n| view! { <option value=n.to_string()>{if n == 0 { "no photos".to_string() } else if n == 1 { "1 generated photo".to_string() } else { format!("{n} generated photos") }}</option> }).collect_view()}
                        </select>
                        <select id="sandbox-spoil" name="spoil" aria-label="The last generated photo" class="rounded border border-slate-300 bg-white px-1 py-0.5">
                            <option value="">"all sharp and bright"</option>
                            <option value="dark">"the last one too dark"</option>
                            <option value="blurred">"the last one blurred"</option>
                        </select>
                        "or your own files"
                        <input id="sandbox-files" type="file" name="files" multiple accept="image/jpeg,image/png,application/pdf" class="text-xs"/>
                    </label>
                    <p class="text-xs text-slate-500">"Each photo or file is sent as its own WhatsApp message, like a phone does; the text is the first one's caption."</p>
                </form>
            </div>
        </Layout>
    }
}
