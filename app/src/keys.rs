//! Keyboard shortcuts on the drop page (browser only). Every shortcut clicks or focuses an
//! element that also works by mouse and without JavaScript, so the keys add speed, not function.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, KeyboardEvent};

fn by_id(id: &str) -> Option<HtmlElement> {
    document().get_element_by_id(id).and_then(|e| e.dyn_into::<HtmlElement>().ok())
}

fn step_cards() -> Vec<HtmlElement> {
    let Ok(list) = document().query_selector_all(".step-card") else { return vec![] };
    (0..list.length()).filter_map(|i| list.item(i)).filter_map(|n| n.dyn_into::<HtmlElement>().ok()).collect()
}

/// The step card that has focus (or contains it), else the first one.
fn focused_index(cards: &[HtmlElement]) -> Option<usize> {
    let active = document().active_element()?;
    cards.iter().position(|c| c.contains(Some(&active)))
}

fn focus_card(card: &HtmlElement) {
    let _ = card.focus();
    card.scroll_into_view_with_bool(false);
}

pub fn install(number: impl Fn() -> String + Send + Sync + 'static) {
    let handle = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        // Typing in a field is typing, not a shortcut.
        if let Some(t) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            if matches!(t.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") {
                return;
            }
        }
        let cards = step_cards();
        let current = focused_index(&cards);
        let step_no = |i: usize| cards.get(i).and_then(|c| c.get_attribute("data-step"));
        let handled = match ev.key().as_str() {
            "j" => {
                let i = current.map(|i| (i + 1).min(cards.len().saturating_sub(1))).unwrap_or(0);
                cards.get(i).map(focus_card).is_some()
            }
            "k" => {
                let i = current.map(|i| i.saturating_sub(1)).unwrap_or(0);
                cards.get(i).map(focus_card).is_some()
            }
            "o" => current.and_then(step_no).and_then(|n| by_id(&format!("ok-{n}"))).map(|b| b.click()).is_some(),
            key @ ("m" | "r" | "w") => {
                let verdict = match key {
                    "m" => "missing",
                    "r" => "retake",
                    _ => "rework",
                };
                match current.and_then(step_no) {
                    Some(n) => {
                        if let Some(d) = document().get_element_by_id(&format!("reject-{n}")) {
                            let _ = d.set_attribute("open", "");
                        }
                        if let Some(r) = by_id(&format!("v-{n}-{verdict}")) {
                            r.click();
                        }
                        by_id(&format!("note-{n}")).map(|i| i.focus()).is_some()
                    }
                    None => false,
                }
            }
            "a" => by_id("approve-all").map(|b| b.click()).is_some(),
            "i" => {
                if let Some(d) = document().get_element_by_id("incomplete-panel") {
                    let _ = d.set_attribute("open", "");
                }
                by_id("confirm-incomplete").map(|b| b.focus()).is_some()
            }
            "n" => {
                let _ = window().location().set_href(&format!("/next?after={}", number()));
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    });
    on_cleanup(move || handle.remove());
}

thread_local! {
    static LIVE: std::cell::RefCell<Option<web_sys::EventSource>> = const { std::cell::RefCell::new(None) };
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
