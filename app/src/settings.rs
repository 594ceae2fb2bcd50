//! Admin settings: projects with their checklists, and users.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::*;
use crate::err_text;
use crate::pages::{ErrorBox, Layout};

pub(crate) fn field() -> &'static str {
    "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-blue-500 focus:outline-none"
}

fn last_error<T: Clone + Send + Sync + 'static>(v: Option<Result<T, ServerFnError>>) -> Option<String> {
    v.and_then(|r| r.err()).map(|e| err_text(&e))
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let save = ServerAction::<SaveProject>::new();
    let create = ServerAction::<CreateProject>::new();
    let me = Resource::new(|| (), |_| current_user());
    let data = Resource::new(move || (save.version().get(), create.version().get()), |_| projects_data());
    view! {
        <Title text="Projects · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                let projects = data.await;
                let (Some(me), Ok(projects)) = (me, projects.clone()) else {
                    let msg = projects.err().map(|e| err_text(&e)).unwrap_or_else(|| "Sign in first.".into());
                    return view! { <main class="p-8"><ErrorBox msg=msg/></main> }.into_any();
                };
                view! {
                    <Layout me=me>
                        <h1 class="mb-4 text-2xl font-semibold">"Projects and checklists"</h1>
                        {move || last_error(save.value().get()).map(|m| view! { <ErrorBox msg=m/> })}
                        {move || last_error(create.value().get()).map(|m| view! { <ErrorBox msg=m/> })}
                        <div class="space-y-6">
                            {projects.into_iter().map(|p| view! {
                                <section class="project rounded-lg border border-slate-200 bg-white p-5 shadow-sm" data-project=p.name.clone()>
                                    <h2 class="text-lg font-semibold">{p.name.clone()}</h2>
                                    <p class="text-sm text-slate-500">{format!("{} steps · {}", p.step_count, p.created)}</p>
                                    <ActionForm action=save>
                                        <input type="hidden" name="project_id" value=p.id.to_string()/>
                                        <label class="mt-3 block text-sm font-medium">"Drop number pattern (regular expression)"
                                            <input name="drop_pattern" value=p.drop_pattern.clone() class=format!("{} font-mono", field())/>
                                        </label>
                                        <label class="mt-3 block text-sm font-medium">"Checklist: one step per line, " <code>"Name | what the photo must show"</code>
                                            <textarea name="steps" rows="13" class=format!("{} font-mono", field())>{p.steps_text.clone()}</textarea>
                                        </label>
                                        <label class="mt-3 flex items-start gap-2 text-sm">
                                            <input type="checkbox" name="wait_for_done" value="on" checked=p.wait_for_done class="mt-0.5"/>
                                            <span>
                                                <span class="font-medium">"Wait for DONE"</span>
                                                <span class="block text-slate-500">"Off: a drop goes to review by itself once every step has a photo. On: it stays Collecting until the contractor sends DR… DONE."</span>
                                            </span>
                                        </label>
                                        <button type="submit" class="mt-3 rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Save project"</button>
                                    </ActionForm>
                                </section>
                            }).collect_view()}
                            <section class="rounded-lg border border-dashed border-slate-300 bg-white p-5">
                                <h2 class="text-lg font-semibold">"New project"</h2>
                                <p class="text-sm text-slate-500">"Starts with the default 12-step checklist."</p>
                                <ActionForm action=create>
                                    <div class="mt-3 grid gap-3 md:grid-cols-3">
                                        <label class="text-sm font-medium">"Name" <input name="name" required class=field()/></label>
                                        <label class="text-sm font-medium">"Drop number pattern" <input name="drop_pattern" placeholder="^DR[0-9]{8}$" class=format!("{} font-mono", field())/></label>
                                        <div class="flex items-end"><button type="submit" class="rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Create project"</button></div>
                                    </div>
                                </ActionForm>
                            </section>
                        </div>
                    </Layout>
                }.into_any()
            })}
        </Transition>
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let me = Resource::new(|| (), |_| current_user());
    let data = Resource::new(move || (add.version().get(), set_role.version().get(), delete.version().get()), |_| users_data());
    view! {
        <Title text="Users · Dropcheck"/>
        <Transition fallback=|| view! { <p class="p-8">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await.ok().flatten();
                let users = data.await;
                let (Some(me), Ok(users)) = (me, users.clone()) else {
                    let msg = users.err().map(|e| err_text(&e)).unwrap_or_else(|| "Sign in first.".into());
                    return view! { <main class="p-8"><ErrorBox msg=msg/></main> }.into_any();
                };
                view! {
                    <Layout me=me>
                        <h1 class="mb-4 text-2xl font-semibold">"Users"</h1>
                        {move || last_error(add.value().get()).map(|m| view! { <ErrorBox msg=m/> })}
                        {move || last_error(set_role.value().get()).map(|m| view! { <ErrorBox msg=m/> })}
                        {move || last_error(delete.value().get()).map(|m| view! { <ErrorBox msg=m/> })}
                        <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                            <table class="min-w-full divide-y divide-slate-200 text-sm" id="users-table">
                                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                                    <tr><th class="px-4 py-3">"E-mail"</th><th class="px-4 py-3">"Role"</th><th class="px-4 py-3">"Since"</th><th class="px-4 py-3"></th></tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {users.into_iter().map(|u| {
                                        let id = u.id.to_string();
                                        let del_id = id.clone();
                                        let other = if u.role == "admin" { "reviewer" } else { "admin" };
                                        view! {
                                            <tr data-user=u.email.clone()>
                                                <td class="px-4 py-2.5">{u.email.clone()} {u.is_me.then(|| " (you)")}</td>
                                                <td class="px-4 py-2.5">{u.role.clone()}</td>
                                                <td class="px-4 py-2.5 text-slate-500">{u.created.clone()}</td>
                                                <td class="flex gap-2 px-4 py-2.5">
                                                    <ActionForm action=set_role>
                                                        <input type="hidden" name="user_id" value=id/>
                                                        <input type="hidden" name="role" value=other/>
                                                        <button type="submit" class="rounded border border-slate-300 px-2 py-1 text-xs hover:bg-slate-100">{format!("Make {other}")}</button>
                                                    </ActionForm>
                                                    {(!u.is_me).then(|| view! {
                                                        <ActionForm action=delete>
                                                            <input type="hidden" name="user_id" value=del_id.clone()/>
                                                            <button type="submit" class="rounded border border-red-300 px-2 py-1 text-xs text-red-700 hover:bg-red-50">"Remove"</button>
                                                        </ActionForm>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <section class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-5">
                            <h2 class="text-lg font-semibold">"Add a user"</h2>
                            <ActionForm action=add>
                                <div class="mt-3 grid gap-3 md:grid-cols-4">
                                    <label class="text-sm font-medium">"E-mail" <input id="new-email" name="email" type="email" required class=field()/></label>
                                    <label class="text-sm font-medium">"Role"
                                        <select id="new-role" name="role" class=field()>
                                            <option value="reviewer">"Reviewer"</option>
                                            <option value="admin">"Admin"</option>
                                        </select>
                                    </label>
                                    <label class="text-sm font-medium">"Password" <input id="new-password" name="password" type="password" required minlength="8" autocomplete="new-password" class=field()/></label>
                                    <div class="flex items-end"><button id="add-user" type="submit" class="rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700">"Add user"</button></div>
                                </div>
                            </ActionForm>
                        </section>
                    </Layout>
                }.into_any()
            })}
        </Transition>
    }
}
