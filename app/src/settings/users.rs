//! Users and their roles (`/settings/users`, admins).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created: String,
    pub is_me: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersPageData {
    pub me: Me,
    pub users: Vec<UserView>,
}

#[server(prefix = "/rpc", endpoint = "users_data")]
pub async fn users_data() -> Result<UsersPageData, AppError> {
    use crate::ssr::*;
    let (st, me) = require_admin().await?;
    let users = st
        .store
        .users()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|u| UserView {
            id: u.user_id.get(),
            role: u.role().as_str().into(),
            created: dropcheck_core::fmt_time(u.created_at),
            is_me: u.user_id == me.user_id,
            email: u.email,
        })
        .collect();
    Ok(UsersPageData { me: me_of(&me), users })
}

#[server(prefix = "/rpc", endpoint = "add_user")]
pub async fn add_user(email: String, role: String, password: String) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::{
        auth,
        domain::{Email, Role},
    };
    let (st, admin) = require_admin().await?;
    let email = Email::parse(&email).map_err(|e| fail(e.into()))?;
    let role = Role::parse(&role).map_err(|e| fail(e.into()))?;
    auth::check_password_policy(&password).map_err(|e| fail(e.into()))?;
    let hash = auth::hash_password(password).await.map_err(fail)?;
    let u = st.store.create_user(&email, &hash, role).await.map_err(fail)?;
    tracing::info!(by = admin.user_id.get(), user_id = u.user_id.get(), role = %role, "user added");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "set_user_role")]
pub async fn set_user_role(user_id: String, role: String) -> Result<(), AppError> {
    use crate::ssr::*;
    use dropcheck_core::domain::Role;
    let (st, _) = require_admin().await?;
    let id: i64 = user_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a user"))?;
    let role = Role::parse(&role).map_err(|e| fail(e.into()))?;
    st.store.set_role(UserId(id), role).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "delete_user")]
pub async fn delete_user(user_id: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let (st, me) = require_admin().await?;
    let id: i64 = user_id.trim().parse().map_err(|_| crate::ssr::refuse("invalid_id", "not a user"))?;
    if id == me.user_id.get() {
        return Err(crate::ssr::fail(dropcheck_core::CoreError::conflict("cannot_delete_self", "You cannot delete yourself.")));
    }
    st.store.delete_user(UserId(id)).await.map_err(fail)
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let data = Resource::new(move || (add.version().get(), set_role.version().get(), delete.version().get()), |_| users_data());
    page("Users · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me>
                <h1 class="mb-4 text-2xl font-semibold">"Users"</h1>
                {action_error(add)}
                {action_error(set_role)}
                {action_error(delete)}
                <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                    <table class="min-w-full divide-y divide-slate-200 text-sm" id="users-table">
                        <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                            <tr><th class="px-4 py-3">"E-mail"</th><th class="px-4 py-3">"Role"</th><th class="px-4 py-3">"Since"</th><th class="px-4 py-3"></th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {d.users.into_iter().map(|u| {
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
        }
    })
}
