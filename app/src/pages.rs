//! The reviewer's pages: sign-in, first-run set-up, the drops list and the drop checklist.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::*;
use crate::err_text;
use crate::model::*;

/// The frame of every signed-in page: navigation, who is signed in, sign-out.
#[component]
pub fn Layout(me: Me, children: Children) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="bg-slate-900 text-white">
            <nav class="mx-auto flex max-w-7xl items-center gap-6 px-4 py-3 text-sm">
                <a href="/" class="flex items-center gap-2 text-base font-semibold tracking-tight">
                    <span class="inline-block h-6 w-6 rounded-md bg-emerald-400 text-center font-bold text-slate-900">"✓"</span>
                    "Dropcheck"
                </a>
                <a href="/" class="text-slate-300 hover:text-white">"Drops"</a>
                <a href="/messages" class="text-slate-300 hover:text-white">"Messages"</a>
                <a href="/sandbox" class="text-slate-300 hover:text-white">"Sandbox"</a>
                <a href="/stats" class="text-slate-300 hover:text-white">"Stats"</a>
                // Settings in one menu (a <details>: opens without JavaScript).
                <details class="relative" id="settings-menu">
                    <summary class="cursor-pointer list-none text-slate-300 hover:text-white">"Settings ▾"</summary>
                    <div class="absolute left-0 z-30 mt-2 w-48 rounded-md bg-white py-1 text-slate-800 shadow-lg ring-1 ring-slate-200">
                        <a href="/settings/integrations" class="block px-3 py-1.5 hover:bg-slate-100">"Integrations"</a>
                        {me.admin.then(|| view! {
                            <a href="/settings/templates" class="block px-3 py-1.5 hover:bg-slate-100">"Templates"</a>
                            <a href="/settings/api-keys" class="block px-3 py-1.5 hover:bg-slate-100">"API keys"</a>
                            <a href="/settings/projects" class="block px-3 py-1.5 hover:bg-slate-100">"Projects"</a>
                            <a href="/settings/users" class="block px-3 py-1.5 hover:bg-slate-100">"Users"</a>
                            <a href="/events" class="block px-3 py-1.5 hover:bg-slate-100">"Webhook ledger"</a>
                        })}
                        <a href="/api/docs" rel="external" class="block px-3 py-1.5 hover:bg-slate-100">"API reference"</a>
                    </div>
                </details>
                <span class="ml-auto text-slate-400" id="signed-in-as">{me.email.clone()}</span>
                <ActionForm action=logout>
                    <button type="submit" class="rounded border border-slate-600 px-2 py-1 text-slate-200 hover:bg-slate-800">"Sign out"</button>
                </ActionForm>
            </nav>
        </header>
        <main class="mx-auto max-w-7xl px-4 py-6">{children()}</main>
    }
}

#[component]
pub fn ErrorBox(msg: String) -> impl IntoView {
    view! { <p role="alert" class="error-box my-3 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800">{msg}</p> }
}

/// Shows the last error of an action, if any (also after a no-JavaScript round trip).
fn action_error<I, O>(action: ServerAction<I>) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Output = O, Error = ServerFnError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
    ServerAction<I>: Copy,
{
    move || action.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox msg=err_text(&e)/> })
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-md text-center">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-600">"There is nothing at this address."</p>
            <a href="/" class="mt-4 inline-block text-blue-700 underline">"Back to the drops"</a>
        </div>
    }
}

fn input_class() -> &'static str {
    "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-blue-500 focus:outline-none focus:ring-2 focus:ring-blue-200"
}

fn primary_button() -> &'static str {
    "rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-blue-700 focus:outline-none focus:ring-2 focus:ring-blue-300 disabled:opacity-50"
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    view! {
        <Title text="Sign in · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
            <h1 class="mb-1 text-2xl font-semibold">"Sign in to Dropcheck"</h1>
            <p class="mb-6 text-sm text-slate-500">"Photo QA for field installations."</p>
            {action_error(login)}
            <ActionForm action=login>
                <label class="block text-sm font-medium">"E-mail"
                    <input id="email" type="email" name="email" required autocomplete="username" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password"
                    <input id="password" type="password" name="password" required autocomplete="current-password" class=input_class()/>
                </label>
                <button id="sign-in" type="submit" class=format!("mt-6 w-full {}", primary_button())>"Sign in"</button>
            </ActionForm>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<Setup>::new();
    view! {
        <Title text="Set up · Dropcheck"/>
        <div class="mx-auto mt-24 max-w-sm rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
            <h1 class="mb-1 text-2xl font-semibold">"Welcome to Dropcheck"</h1>
            <p class="mb-6 text-sm text-slate-500">"Create the first admin account. This page works only once."</p>
            {action_error(setup)}
            <ActionForm action=setup>
                <label class="block text-sm font-medium">"E-mail"
                    <input id="email" type="email" name="email" required class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password (at least 8 characters)"
                    <input id="password" type="password" name="password" required minlength="8" autocomplete="new-password" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Password again"
                    <input id="confirm" type="password" name="confirm" required minlength="8" autocomplete="new-password" class=input_class()/>
                </label>
                <label class="mt-4 block text-sm font-medium">"Your project"
                    <input id="project" type="text" name="project" value="Default project" maxlength="100" class=input_class()/>
                    <span class="mt-1 block text-xs font-normal text-slate-500">
                        "Drops from WhatsApp go here, with the standard 12-step checklist (editable later under Settings → Projects)."
                    </span>
                </label>
                <button id="create-admin" type="submit" class=format!("mt-6 w-full {}", primary_button())>"Create admin and sign in"</button>
            </ActionForm>
        </div>
    }
}

#[component]
pub fn StatusBadge(status: String, label: String) -> impl IntoView {
    view! {
        <span class=format!("status-badge inline-flex items-center rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {}", badge_class(&status))
              data-status=status.clone()>
            {label}
        </span>
    }
}

#[component]
pub fn DropsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &'static str| query.read().get(k).filter(|v| !v.is_empty());
    // Bumped by the live stream when any drop changes (new drops, photos, status changes).
    let live = RwSignal::new(0u64);
    let data = Resource::new(
        move || (q("status"), q("project"), q("contractor"), q("q"), q("from"), q("to"), q("cursor"), live.get()),
        |(status, project, contractor, q, from, to, cursor, _)| drops_page(status, project, contractor, q, from, to, cursor),
    );
    #[cfg(feature = "hydrate")]
    {
        crate::keys::install_list();
        Effect::new(move |_| crate::keys::live("/live/drops".into(), live));
    }
    view! {
        <Title text="Drops · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <DropsView d=d/> }.into_any(),
                    Err(e) => view! { <main class="p-8"><ErrorBox msg=err_text(&e)/><a href="/login" class="text-blue-700 underline">"Sign in"</a></main> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DropsView(d: DropsPageData) -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let current_status = get("status");
    let keep = {
        // The filters other than status and cursor, kept when a badge is clicked.
        let mut parts = vec![];
        for k in ["project", "contractor", "q", "from", "to"] {
            let v = get(k);
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(&v)));
            }
        }
        parts.join("&")
    };
    let link = {
        let keep = keep.clone();
        move |status: &str| {
            let mut p = vec![];
            if !status.is_empty() {
                p.push(format!("status={status}"));
            }
            if !keep.is_empty() {
                p.push(keep.clone());
            }
            if p.is_empty() {
                "/".to_string()
            } else {
                format!("/?{}", p.join("&"))
            }
        }
    };
    let next_link = d.next_cursor.clone().map(|c| {
        let mut p = vec![format!("cursor={c}")];
        if !current_status.is_empty() {
            p.push(format!("status={current_status}"));
        }
        if !keep.is_empty() {
            p.push(keep.clone());
        }
        format!("/?{}", p.join("&"))
    });
    let is_first_page = get("cursor").is_empty();
    let all_active = current_status.is_empty();
    let project_sel = get("project");
    let kbd = |k: &'static str| view! { <kbd class="rounded bg-slate-100 px-1 ring-1 ring-slate-300">{k}</kbd> };
    view! {
        <Layout me=d.me.clone()>
            <div class="mb-5 flex flex-wrap items-center gap-3">
                <h1 class="mr-4 text-2xl font-semibold tracking-tight">"Drops"</h1>
                <a href=link("") class=format!("count-badge rounded-full px-3 py-1 text-sm font-medium ring-1 ring-inset {}",
                        if all_active { "bg-slate-900 text-white ring-slate-900" } else { "bg-white text-slate-700 ring-slate-300 hover:bg-slate-100" })>
                    "All " <span class="font-semibold">{d.total}</span>
                </a>
                {d.counts.iter().map(|c| {
                    let active = c.status == current_status;
                    let cls = if active { format!("ring-2 ring-offset-1 {}", badge_class(&c.status)) } else { format!("hover:brightness-95 {}", badge_class(&c.status)) };
                    view! {
                        <a href=link(&c.status) data-filter=c.status.clone()
                           class=format!("count-badge rounded-full px-3 py-1 text-sm font-medium ring-1 ring-inset {cls}")>
                            {c.label.clone()} " " <span class="font-semibold">{c.count}</span>
                        </a>
                    }
                }).collect_view()}
                <a href="/next" rel="external" id="review-next" class="ml-auto rounded-md bg-blue-600 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-blue-700">
                    "Review next " <kbd class="ml-1 rounded bg-blue-800 px-1.5 text-xs">"n"</kbd>
                </a>
            </div>
            {(get("waiting") == "none").then(|| view! {
                <p id="nothing-waiting" class="mb-4 rounded-md bg-green-50 px-4 py-3 text-sm text-green-800 ring-1 ring-green-200">
                    "Nothing is waiting for review right now: no drop is Unreviewed or Resubmitted."
                </p>
            })}
            <form method="get" action="/" class="mb-5 grid grid-cols-2 gap-3 rounded-lg border border-slate-200 bg-white p-4 shadow-sm md:grid-cols-7">
                <input type="hidden" name="status" value=current_status.clone()/>
                <label class="text-xs font-medium text-slate-600">"Project"
                    <select name="project" class=input_class()>
                        <option value="">"All projects"</option>
                        {d.projects.iter().map(|p| {
                            let id = p.id.to_string();
                            view! { <option value=id.clone() selected=id == project_sel>{p.name.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label class="text-xs font-medium text-slate-600">"Contractor"
                    <input name="contractor" value=get("contractor") placeholder="name or number" class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Drop number"
                    <input name="q" id="search" value=get("q") placeholder="DR…" class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Active from"
                    <input type="date" name="from" value=get("from") class=input_class()/>
                </label>
                <label class="text-xs font-medium text-slate-600">"Active to"
                    <input type="date" name="to" value=get("to") class=input_class()/>
                </label>
                <div class="col-span-2 flex items-end gap-2">
                    <button type="submit" class=primary_button()>"Filter"</button>
                    <a href="/" class="rounded-md px-3 py-2 text-sm text-slate-600 hover:bg-slate-100">"Reset"</a>
                </div>
            </form>
            <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                <table class="min-w-full divide-y divide-slate-200 text-sm" id="drops-table">
                    <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                        <tr>
                            <th class="px-4 py-3">"Drop"</th>
                            <th class="px-4 py-3">"Status"</th>
                            <th class="px-4 py-3">"Project"</th>
                            <th class="px-4 py-3">"Contractor"</th>
                            <th class="px-4 py-3">"Photos"</th>
                            <th class="px-4 py-3">"Round"</th>
                            <th class="px-4 py-3">"Last activity"</th>
                        </tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {d.rows.is_empty().then(|| if d.total == 0 {
                            // A fresh install: say how the first drop arrives.
                            view! {
                                <tr><td colspan="7" class="px-4 py-10 text-center text-slate-500" id="no-drops-yet">
                                    "No drops yet. A drop opens when a contractor sends its number (e.g. DR12345678) on WhatsApp; "
                                    <a href="/sandbox" class="text-blue-700 underline">"try it in the sandbox"</a> "."
                                </td></tr>
                            }.into_any()
                        } else {
                            view! { <tr><td colspan="7" class="px-4 py-10 text-center text-slate-500">"No drops match these filters."</td></tr> }.into_any()
                        })}
                        {d.rows.iter().map(|r| {
                            let href = format!("/drops/{}", r.number);
                            let complete = r.photo_steps >= r.step_count && r.step_count > 0;
                            view! {
                                <tr class="drop-row hover:bg-slate-50 focus-within:bg-blue-50" data-drop=r.number.clone()>
                                    <td class="px-4 py-2.5 font-mono font-semibold"><a href=href class="drop-link text-blue-700 hover:underline focus:outline-none focus:ring-2 focus:ring-blue-400 rounded">{r.number.clone()}</a></td>
                                    <td class="px-4 py-2.5"><StatusBadge status=r.status.clone() label=r.status_label.clone()/></td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.project.clone()}</td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.contractor.clone()}</td>
                                    <td class="px-4 py-2.5">
                                        <span class=if complete { "text-green-700" } else { "text-slate-600" }>{format!("{}/{}", r.photo_steps, r.step_count)}</span>
                                    </td>
                                    <td class="px-4 py-2.5 text-slate-600">{r.round}</td>
                                    <td class="px-4 py-2.5 text-slate-600" title=r.activity_at.clone()>{r.activity_ago.clone()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <div class="mt-4 flex flex-wrap items-center gap-3 text-sm">
                {(!is_first_page).then(|| view! { <a href=link(&current_status) class="rounded-md border border-slate-300 bg-white px-3 py-1.5 hover:bg-slate-100">"← First page"</a> })}
                {next_link.map(|l| view! { <a href=l id="next-page" class="rounded-md border border-slate-300 bg-white px-3 py-1.5 hover:bg-slate-100">"Next page →"</a> })}
                <p class="ml-auto text-xs text-slate-500" id="list-keys">
                    "Keys: " {kbd("j")} " / " {kbd("k")} " rows · " {kbd("Enter")} " open · " {kbd("/")} " search · " {kbd("n")} " review next"
                </p>
            </div>
        </Layout>
    }
}

/// Minimal query-string encoding for filter values typed by users.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[component]
pub fn DropPage() -> impl IntoView {
    let params = use_params_map();
    let number = move || params.read().get("number").unwrap_or_default();
    let review = ServerAction::<ReviewStep>::new();
    let mover = ServerAction::<MovePhoto>::new();
    let incomplete = ServerAction::<MarkIncomplete>::new();
    let approve = ServerAction::<ApproveAll>::new();
    // Bumped by the live stream when the drop changes elsewhere (contractor, other reviewers).
    let live = RwSignal::new(0u64);
    let data = Resource::new(
        move || (number(), review.version().get(), mover.version().get(), incomplete.version().get(), approve.version().get(), live.get()),
        |(n, ..)| drop_page(n),
    );
    #[cfg(feature = "hydrate")]
    {
        crate::keys::install(number);
        Effect::new(move |_| crate::keys::live(format!("/live/drops/{}", number()), live));
    }
    let actions = DropActions { review, mover, incomplete, approve };
    view! {
        <Title text=move || format!("{} · Dropcheck", number())/>
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <DropView d=d actions=actions/> }.into_any(),
                    Err(e) => view! {
                        <main class="mx-auto max-w-xl p-8"><ErrorBox msg=err_text(&e)/><a href="/" class="text-blue-700 underline">"Back to the drops"</a></main>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[derive(Clone, Copy)]
struct DropActions {
    review: ServerAction<ReviewStep>,
    mover: ServerAction<MovePhoto>,
    incomplete: ServerAction<MarkIncomplete>,
    approve: ServerAction<ApproveAll>,
}

#[component]
fn DropView(d: DropPageData, actions: DropActions) -> impl IntoView {
    let DropActions { review, mover, incomplete, approve } = actions;
    let step_count = d.steps.len() as i64;
    let number = d.number.clone();
    let contractor =
        if d.contractor_name.is_empty() { d.contractor_phone.clone() } else { format!("{} · {}", d.contractor_name, d.contractor_phone) };
    let feedback_text = d.feedback.clone();
    #[cfg(feature = "hydrate")]
    {
        let number = number.clone();
        Effect::new(move |_| crate::keys::after_render(number.clone()));
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
                    {d.can_approve.then(|| { let number = number.clone(); view! {
                        <ActionForm action=approve>
                            <input type="hidden" name="number" value=number/>
                            <button id="approve-all" type="submit" class="rounded-md bg-green-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-green-700">
                                "Approve all " <kbd class="ml-1 rounded bg-green-800 px-1.5 text-xs">"a"</kbd>
                            </button>
                        </ActionForm>
                    }})}
                    <a href=format!("/next?after={}", d.number) rel="external" id="next-drop" class="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm hover:bg-slate-100">
                        "Next drop " <kbd class="ml-1 rounded bg-slate-200 px-1.5 text-xs">"n"</kbd>
                    </a>
                </div>
            </div>
            {action_error(approve)}
            {action_error(incomplete)}
            {action_error(review)}
            {action_error(mover)}
            <div class="grid gap-6 lg:grid-cols-3">
                <section class="space-y-3 lg:col-span-2" id="steps">
                    {d.steps.iter().map(|s| view! {
                        <StepCard s=s.clone() number=number.clone() reasons=d.reasons.clone() step_count=step_count
                                  can_review=d.can_review review=review mover=mover/>
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
                                        {(!t.status.is_empty()).then(|| view! { <span class="ml-1 rounded bg-slate-100 px-1.5 text-slate-600">{crate::messages::tick_label(&t.status)}</span> })}
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

#[component]
fn StepCard(
    s: StepView,
    number: String,
    reasons: Vec<ReasonOption>,
    step_count: i64,
    can_review: bool,
    review: ServerAction<ReviewStep>,
    mover: ServerAction<MovePhoto>,
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
