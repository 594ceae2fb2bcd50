//! Dropcheck's dashboard: Leptos pages rendered on the server (complete without JavaScript,
//! `SsrMode::Async`) and hydrated in the browser. Start at [`App`] for the routes; the
//! server functions are in [`api`], the view models in [`model`].
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, SsrMode, StaticSegment,
};

pub mod api;
mod api_keys;
mod integrations;
#[cfg(feature = "hydrate")]
mod keys;
pub mod messages;
pub mod model;
mod pages;
mod settings;
mod templates;
#[cfg(feature = "ssr")]
pub mod ssr;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this marks the page as hydrated (tests wait on it).
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/dropcheck.css"/>
        <Title text="Dropcheck"/>
        <Router>
            <Routes fallback=|| view! { <pages::NotFound/> }>
                <Route path=StaticSegment("login") view=pages::LoginPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("setup") view=pages::SetupPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("") view=pages::DropsPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("drops"), ParamSegment("number")) view=pages::DropPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("messages") view=messages::MessagesPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("sandbox") view=messages::SandboxPage ssr=SsrMode::Async/>
                <Route path=StaticSegment("events") view=messages::EventsPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("projects")) view=settings::ProjectsPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("users")) view=settings::UsersPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("templates")) view=templates::TemplatesPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("api-keys")) view=api_keys::ApiKeysPage ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("integrations")) view=integrations::IntegrationsPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// The text of a server function error, without the framework's prefix.
pub fn err_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(s) => s.clone(),
        other => other.to_string(),
    }
}
