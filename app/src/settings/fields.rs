//! A setting on Settings → Integrations as an admin sees it, and its row in a form: shared
//! by the provider, vision and MyOperator sections.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

/// One provider setting as an admin may see it: a secret only as "set · …abcd".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldView {
    /// The environment variable's name.
    pub name: String,
    pub provider: String,
    pub label: String,
    pub help: String,
    pub secret: bool,
    pub env_only: bool,
    /// `environment`, `settings`, `default` or `unset`.
    pub source: String,
    pub shown: String,
}

fn source_badge(source: &str) -> impl IntoView {
    let (text, class) = match source {
        "environment" => ("from the environment", "bg-violet-100 text-violet-800"),
        "settings" => ("saved here", "bg-emerald-100 text-emerald-800"),
        "default" => ("default", "bg-slate-100 text-slate-600"),
        _ => ("not set", "bg-amber-100 text-amber-800"),
    };
    view! { <span class=format!("ml-2 rounded px-1.5 py-0.5 text-xs font-medium {class}") data-source=source.to_string()>{text}</span> }
}

/// One setting: read-only when the environment (or only the environment) sets it; a
/// password box that starts blank for a secret; a text box for the rest.
pub fn field_row(f: FieldView) -> impl IntoView {
    let input_name = f.name.to_lowercase();
    let id = format!("setting-{input_name}");
    let fixed = f.source == "environment" || f.env_only;
    let control = if fixed {
        view! { <p class="mt-1 rounded-md bg-slate-50 px-3 py-2 font-mono text-sm text-slate-700" id=id.clone()>{if f.shown.is_empty() { "—".to_string() } else { f.shown.clone() }}</p> }.into_any()
    } else if f.secret {
        let placeholder = if f.shown.is_empty() { "not set".to_string() } else { format!("{} — leave blank to keep", f.shown) };
        view! { <input id=id.clone() name=input_name type="password" autocomplete="off" placeholder=placeholder value="" class=field()/> }
            .into_any()
    } else {
        view! { <input id=id.clone() name=input_name type="text" autocomplete="off" value=f.shown.clone() class=field()/> }.into_any()
    };
    view! {
        <div class="mt-3">
            <label for=id class="text-sm font-medium">{f.label.clone()}</label>
            {source_badge(&f.source)}
            <span class="ml-2 font-mono text-xs text-slate-400">{f.name.clone()}</span>
            {control}
            <p class="mt-0.5 text-xs text-slate-500">{f.help.clone()}</p>
        </div>
    }
}
