//! `/automations`: every rule, what starts it and what it does, whether it is on, when it
//! last ran.

use leptos::prelude::*;

use super::*;

#[component]
pub fn AutomationsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| automations_page());
    page("Automations · Dropcheck", data, None, move |d| {
        view! {
            <Layout me=d.me.clone()>
                <div class="mb-1 flex items-baseline gap-4">
                    <h1 class="text-2xl font-semibold">"Automations"</h1>
                    <a id="new-automation" href="/automations/new" class="text-sm text-blue-700 underline">"New rule"</a>
                </div>
                <p class="mb-4 text-sm text-slate-500">
                    "Rules run in the same transaction as the change that starts them, once per event (and once per episode for "
                    "“has been … for”), and every run is logged with what each action did."
                </p>
                <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                    <table class="min-w-full divide-y divide-slate-200 text-sm" id="automations">
                        <thead class="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-500">
                            <tr><th class="px-4 py-3">"Rule"</th><th class="px-4 py-3">"When"</th><th class="px-4 py-3">"Then"</th><th class="px-4 py-3">"State"</th><th class="px-4 py-3">"Last run"</th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {d.rules.into_iter().map(|r| view! {
                                <tr data-rule=r.name.clone()>
                                    <td class="px-4 py-2.5">
                                        <a class="font-medium text-blue-700 underline" href=format!("/automations/{}", r.id)>{r.name.clone()}</a>
                                        {r.built_in.then(|| view! { <span class="ml-2 rounded bg-slate-100 px-1.5 text-[10px] uppercase text-slate-600">"example"</span> })}
                                    </td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.when.clone()}</td>
                                    <td class="px-4 py-2.5 text-slate-700">{r.then.join("; ")}</td>
                                    <td class="px-4 py-2.5">
                                        {if r.enabled {
                                            view! { <span class="rounded bg-emerald-100 px-2 py-0.5 text-xs font-semibold text-emerald-800">"on"</span> }.into_any()
                                        } else {
                                            view! { <span class="rounded bg-slate-200 px-2 py-0.5 text-xs font-semibold text-slate-600">"off"</span> }.into_any()
                                        }}
                                    </td>
                                    <td class="px-4 py-2.5 text-slate-500">{r.last_run.clone()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </Layout>
        }
    })
}
