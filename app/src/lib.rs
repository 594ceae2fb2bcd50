//! Dropcheck's dashboard: Leptos pages rendered on the server (complete without JavaScript,
//! `SsrMode::Async`) and hydrated in the browser. Start at [`App`] for the routes. Each
//! feature module holds its pages, its server functions and its view models; all of them build
//! on [`ui`] and none imports another feature.
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    lazy_route, Lazy, LazyRoute, ParamSegment, SsrMode, StaticSegment,
};

mod auth;
mod automations;
mod broadcasts;
#[cfg(feature = "hydrate")]
mod browser;
mod contacts;
mod drops;
mod ledger;
mod messages;
mod sandbox;
mod scorecards;
mod settings;
#[cfg(feature = "ssr")]
pub mod ssr;
mod stats;
pub mod ui;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::set_page_csp();
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
    view! {
        <Stylesheet id="leptos" href="/pkg/dropcheck.css"/>
        <Title text="Dropcheck"/>
        <Router>
            <Routes fallback=|| view! { <ui::NotFound/> }>
                <Route path=StaticSegment("login") view=|| view! { <auth::LoginPage/><Hydrated/> } ssr=SsrMode::Async/>
                <Route path=StaticSegment("setup") view={Lazy::<SetupRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("") view=|| view! { <drops::list::DropsPage/><Hydrated/> } ssr=SsrMode::Async/>
                <Route path=(StaticSegment("drops"), ParamSegment("number")) view=|| view! { <drops::detail::DropPage/><Hydrated/> } ssr=SsrMode::Async/>
                <Route path=StaticSegment("messages") view={Lazy::<MessagesRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("sandbox") view={Lazy::<SandboxRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("events") view={Lazy::<EventsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("projects")) view={Lazy::<ProjectsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("users")) view={Lazy::<UsersRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("templates")) view={Lazy::<TemplatesRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("api-keys")) view={Lazy::<ApiKeysRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("stats") view={Lazy::<StatsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("stats"), StaticSegment("contractors")) view={Lazy::<ScorecardsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("webhooks")) view={Lazy::<WebhooksRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("automations") view={Lazy::<AutomationsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("contacts") view={Lazy::<ContactsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("contacts"), StaticSegment("import")) view={Lazy::<ContactImportRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("contacts"), StaticSegment("import"), ParamSegment("id")) view={Lazy::<ContactImportMapRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("contacts"), ParamSegment("phone")) view={Lazy::<ContactRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("automations"), ParamSegment("id")) view={Lazy::<AutomationRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("settings"), StaticSegment("integrations")) view={Lazy::<IntegrationsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("broadcasts") view={Lazy::<BroadcastsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=(StaticSegment("broadcasts"), ParamSegment("id")) view={Lazy::<BroadcastRoute>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

// The pages a reviewer opens now and then are lazy routes: their code is a separate wasm
// chunk (`cargo leptos build --split`) loaded when the page is first visited, so the drops
// list and the drop page, where the day is spent, load only what they use.
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        struct $route;
        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }
            fn view(_this: Self) -> AnyView {
                view! { {$page()} <Hydrated/> }.into_any()
            }
        }
    };
}
// The first admin's set-up page is opened once per installation.
lazy_page!(SetupRoute, auth::SetupPage);
lazy_page!(MessagesRoute, messages::MessagesPage);
lazy_page!(SandboxRoute, sandbox::SandboxPage);
lazy_page!(EventsRoute, ledger::EventsPage);
lazy_page!(ProjectsRoute, settings::projects::ProjectsPage);
lazy_page!(UsersRoute, settings::users::UsersPage);
lazy_page!(TemplatesRoute, settings::templates::TemplatesPage);
lazy_page!(ApiKeysRoute, settings::api_keys::ApiKeysPage);
lazy_page!(IntegrationsRoute, settings::integrations::IntegrationsPage);
lazy_page!(StatsRoute, stats::StatsPage);
lazy_page!(ScorecardsRoute, scorecards::ScorecardsPage);
lazy_page!(WebhooksRoute, settings::webhooks::WebhooksPage);
lazy_page!(AutomationsRoute, automations::list::AutomationsPage);
lazy_page!(AutomationRoute, automations::detail::AutomationPage);
lazy_page!(ContactsRoute, contacts::list::ContactsPage);
lazy_page!(ContactRoute, contacts::detail::ContactPage);
lazy_page!(ContactImportRoute, contacts::import::ImportPage);
lazy_page!(ContactImportMapRoute, contacts::import::ImportMapPage);
lazy_page!(BroadcastsRoute, broadcasts::BroadcastsPage);
lazy_page!(BroadcastRoute, broadcasts::BroadcastPage);

/// Marks the page as hydrated once its route's view is (tests wait on `data-hydrated`). It
/// sits in each route's view, since a lazy route hydrates after the rest of the app.
#[component]
fn Hydrated() -> impl IntoView {
    // Effects run only in the browser.
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
