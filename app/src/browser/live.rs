//! The live-update stream (browser only).

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    static LIVE: RefCell<Option<web_sys::EventSource>> = const { RefCell::new(None) };
}

/// Listens to the server's change events (`/live/drops` for the list, `/live/drops/{number}`
/// for a drop) and bumps `version` on each, so the page refetches what changed elsewhere (new
/// photos, a resubmission, delivery ticks). One stream at a time: a new page closes the last.
pub fn live(url: String, version: RwSignal<u64>) {
    use wasm_bindgen::closure::Closure;
    LIVE.with(|cell| {
        if let Some(old) = cell.borrow_mut().take() {
            old.close();
        }
        let Ok(es) = web_sys::EventSource::new(&url) else { return };
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
            version.update(|v| *v += 1);
        });
        let _ = es.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        // The listener lives as long as the page; the EventSource is closed on the next drop.
        on_change.forget();
        *cell.borrow_mut() = Some(es);
    });
}
