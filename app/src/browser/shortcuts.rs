//! Keyboard shortcuts (browser only) on the drops list and the drop page. Every shortcut
//! clicks or focuses an element that also works by mouse and without JavaScript, so the keys
//! add speed, not function. No shortcut fires while typing in a field; the one exception is
//! a step's reject form, where the digits pick a coded reason while its note is still empty.
//!
//! The drop page re-renders after every save, so focus is placed after each render
//! ([`after_render`]) by what caused it: a verdict saved moves on to the next step needing a
//! verdict, Escape returns to the step, a new page starts at the first step needing one.

use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, KeyboardEvent};

fn by_id(id: &str) -> Option<HtmlElement> {
    document().get_element_by_id(id).and_then(|e| e.dyn_into::<HtmlElement>().ok())
}

fn all(selector: &str, root: Option<&Element>) -> Vec<HtmlElement> {
    let list = match root {
        Some(r) => r.query_selector_all(selector),
        None => document().query_selector_all(selector),
    };
    let Ok(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.item(i)).filter_map(|n| n.dyn_into::<HtmlElement>().ok()).collect()
}

fn active() -> Option<Element> {
    document().active_element()
}

/// Typing in a text field, a text area or a list: keys are text, not shortcuts.
fn is_typing(el: &Element) -> bool {
    match el.tag_name().as_str() {
        "TEXTAREA" | "SELECT" => true,
        "INPUT" => !matches!(el.get_attribute("type").as_deref(), Some("radio" | "checkbox" | "submit" | "button")),
        _ => el.has_attribute("contenteditable"),
    }
}

fn key_target(ev: &KeyboardEvent) -> Option<Element> {
    ev.target().and_then(|t| t.dyn_into::<Element>().ok())
}

fn plain(ev: &KeyboardEvent) -> bool {
    !(ev.ctrl_key() || ev.meta_key() || ev.alt_key())
}

fn go(url: &str) {
    let _ = window().location().set_href(url);
}

// ------------------------------------------------------------------ the drops list

/// The list: `j`/`k` move between rows (their drop link takes focus, so Enter opens it),
/// `/` focuses the drop-number search, `n` opens the next drop to review.
pub fn install_list() {
    let handle = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        if !plain(&ev) {
            return;
        }
        if let Some(t) = key_target(&ev).filter(is_typing) {
            // Escape leaves a filter field, so the keys are shortcuts again.
            if ev.key() == "Escape" {
                if let Some(t) = t.dyn_ref::<HtmlElement>() {
                    let _ = t.blur();
                }
            }
            return;
        }
        let links = all("tr.drop-row a.drop-link", None);
        let current = active().and_then(|a| links.iter().position(|l| l.is_same_node(Some(&a))));
        let handled = match ev.key().as_str() {
            "j" => {
                let i = current.map(|i| (i + 1).min(links.len().saturating_sub(1))).unwrap_or(0);
                links.get(i).map(|l| l.focus()).is_some()
            }
            "k" => {
                let i = current.map(|i| i.saturating_sub(1)).unwrap_or(0);
                links.get(i).map(|l| l.focus()).is_some()
            }
            "/" => by_id("search").map(|s| s.focus()).is_some(),
            "n" => {
                go("/next");
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

// ------------------------------------------------------------------ the drop page

/// Where focus goes after the drop page next renders.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Focus {
    /// The first step needing a verdict (a new page).
    FirstPending,
    /// The next step needing a verdict after this one (a verdict was saved).
    After(i64),
    /// This step's card (a photo moved, Escape).
    Step(i64),
    /// Keep what the reviewer had (a live refresh): the last focused step if focus was lost.
    Keep,
}

thread_local! {
    static INTENT: Cell<Focus> = const { Cell::new(Focus::FirstPending) };
    static LAST_STEP: Cell<Option<i64>> = const { Cell::new(None) };
    static RENDERED: RefCell<String> = const { RefCell::new(String::new()) };
    /// The open full-size view: the thumbnails of its step and which one is shown.
    static LIGHTBOX: RefCell<Option<(Vec<HtmlElement>, usize)>> = const { RefCell::new(None) };
}

fn step_cards() -> Vec<HtmlElement> {
    all(".step-card", None)
}

fn card_of(el: &Element) -> Option<HtmlElement> {
    el.closest(".step-card").ok().flatten().and_then(|c| c.dyn_into::<HtmlElement>().ok())
}

fn step_of(card: &Element) -> Option<i64> {
    card.get_attribute("data-step").and_then(|s| s.parse().ok())
}

fn pending(card: &Element) -> bool {
    card.get_attribute("data-verdict").as_deref() == Some("pending")
}

/// The step card that has focus or contains it.
fn current_card() -> Option<HtmlElement> {
    active().and_then(|a| card_of(&a))
}

/// The step a key acts on: the focused one, else the first needing a verdict.
fn target_card() -> Option<HtmlElement> {
    current_card().or_else(|| step_cards().into_iter().find(|c| pending(c)))
}

fn focus_card(card: &HtmlElement) {
    let _ = card.focus();
}

/// Focus after the last verdict: the next step needing one (in page order, wrapping), else
/// what comes next for the drop — "Mark incomplete" when a step is rejected, else "Approve all".
fn focus_next_pending(after: Option<i64>) {
    let cards = step_cards();
    let start = after.and_then(|n| cards.iter().position(|c| step_of(c) == Some(n))).map(|i| i + 1).unwrap_or(0);
    let next = cards[start.min(cards.len())..].iter().chain(cards[..start.min(cards.len())].iter()).find(|c| pending(c));
    if let Some(c) = next {
        focus_card(c);
        return;
    }
    let rejected = cards.iter().any(|c| matches!(c.get_attribute("data-verdict").as_deref(), Some("missing" | "retake" | "rework")));
    let fallback = if rejected { document().query_selector("#incomplete-panel summary").ok().flatten() } else { None };
    match fallback.and_then(|e| e.dyn_into::<HtmlElement>().ok()).or_else(|| by_id("approve-all")) {
        Some(el) => {
            let _ = el.focus();
        }
        None => {
            if let Some(c) = cards.first() {
                focus_card(c);
            }
        }
    }
}

fn apply_focus(number: &str) {
    let fresh = RENDERED.with(|r| {
        let mut r = r.borrow_mut();
        let fresh = *r != number;
        *r = number.to_string();
        fresh
    });
    let intent = if fresh { Focus::FirstPending } else { INTENT.with(|i| i.replace(Focus::Keep)) };
    match intent {
        Focus::FirstPending => focus_next_pending(None),
        Focus::After(n) => focus_next_pending(Some(n)),
        Focus::Step(n) => {
            if let Some(c) = by_id(&format!("step-{n}")) {
                focus_card(&c);
            }
        }
        Focus::Keep => {
            let lost = active().is_none_or(|a| a.tag_name() == "BODY");
            if lost {
                if let Some(c) = LAST_STEP.with(|l| l.get()).and_then(|n| by_id(&format!("step-{n}"))) {
                    focus_card(&c);
                }
            }
        }
    }
}

/// Called by the drop view each time it renders: places focus once the new view is in the
/// page (the next tick).
pub fn after_render(number: String) {
    set_timeout(move || apply_focus(&number), std::time::Duration::ZERO);
}

fn close_form(card: &HtmlElement) {
    if let Some(n) = step_of(card) {
        if let Some(d) = document().get_element_by_id(&format!("reject-{n}")) {
            let _ = d.remove_attribute("open");
        }
    }
    focus_card(card);
}

fn open_form(card: &HtmlElement, verdict: &str) -> bool {
    let Some(n) = step_of(card) else { return false };
    if let Some(d) = document().get_element_by_id(&format!("reject-{n}")) {
        let _ = d.set_attribute("open", "");
    }
    if let Some(r) = by_id(&format!("v-{n}-{verdict}")) {
        r.click();
    }
    by_id(&format!("note-{n}")).map(|i| i.focus()).is_some()
}

/// A digit typed into a step's still empty note picks that coded reason (1 is the first).
fn pick_reason(note: &Element, digit: u32) -> bool {
    let Some(input) = note.dyn_ref::<web_sys::HtmlInputElement>() else { return false };
    if !input.value().is_empty() {
        return false;
    }
    let Some(n) = note.id().strip_prefix("note-").map(str::to_string) else { return false };
    let Some(select) = document().get_element_by_id(&format!("reason-{n}")).and_then(|s| s.dyn_into::<web_sys::HtmlSelectElement>().ok())
    else {
        return false;
    };
    if digit >= select.length() {
        return false;
    }
    select.set_selected_index(digit as i32);
    true
}

fn lightbox() -> Option<web_sys::HtmlDialogElement> {
    document().get_element_by_id("lightbox").and_then(|d| d.dyn_into::<web_sys::HtmlDialogElement>().ok())
}

fn show_photo(thumbs: &[HtmlElement], i: usize) {
    let Some(t) = thumbs.get(i) else { return };
    if let Some(img) = document().get_element_by_id("lightbox-img") {
        let _ = img.set_attribute("src", &t.get_attribute("href").unwrap_or_default());
        let _ = img.set_attribute("alt", &t.get_attribute("title").unwrap_or_default());
    }
    if let Some(c) = document().get_element_by_id("lightbox-caption") {
        c.set_text_content(Some(&format!(
            "{} — photo {} of {} · ← → other photos · Esc closes",
            t.get_attribute("data-caption").unwrap_or_default(),
            i + 1,
            thumbs.len()
        )));
    }
}

/// Opens a thumbnail full size over the page; the arrows go to its step's other photos.
fn open_lightbox(thumb: &HtmlElement) -> bool {
    let Some(dialog) = lightbox() else { return false };
    let thumbs = card_of(thumb).map(|c| all("a.thumb", Some(&c))).unwrap_or_else(|| vec![thumb.clone()]);
    let i = thumbs.iter().position(|t| t.is_same_node(Some(thumb))).unwrap_or(0);
    show_photo(&thumbs, i);
    LIGHTBOX.with(|l| *l.borrow_mut() = Some((thumbs, i)));
    dialog.show_modal().is_ok()
}

fn close_lightbox() {
    if let Some(d) = lightbox() {
        d.close();
    }
    if let Some((thumbs, i)) = LIGHTBOX.with(|l| l.borrow_mut().take()) {
        if let Some(t) = thumbs.get(i) {
            let _ = t.focus();
        }
    }
}

fn lightbox_key(key: &str) -> bool {
    match key {
        "Escape" => {
            close_lightbox();
            true
        }
        "ArrowRight" | "ArrowLeft" => {
            LIGHTBOX.with(|l| {
                if let Some((thumbs, i)) = l.borrow_mut().as_mut() {
                    let n = thumbs.len();
                    *i = if key == "ArrowRight" { (*i + 1) % n } else { (*i + n - 1) % n };
                    show_photo(thumbs, *i);
                }
            });
            true
        }
        _ => false,
    }
}

/// The drop page's keys (see the page's "Keyboard" panel).
pub fn install(number: impl Fn() -> String + Send + Sync + 'static) {
    INTENT.with(|i| i.set(Focus::FirstPending));
    RENDERED.with(|r| r.borrow_mut().clear());
    let keys = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        if !plain(&ev) {
            return;
        }
        let key = ev.key();
        if LIGHTBOX.with(|l| l.borrow().is_some()) {
            if lightbox_key(&key) {
                ev.prevent_default();
            }
            return;
        }
        let target = key_target(&ev);
        if key == "Escape" {
            // Leaves a step's reject form (or the feedback preview) and returns to the step.
            if let Some(card) = target.as_ref().and_then(card_of) {
                close_form(&card);
                ev.prevent_default();
            } else if let Some(panel) = target.as_ref().and_then(|t| t.closest("#incomplete-panel").ok().flatten()) {
                let _ = panel.remove_attribute("open");
                match LAST_STEP.with(|l| l.get()).and_then(|n| by_id(&format!("step-{n}"))) {
                    Some(card) => focus_card(&card),
                    None => focus_next_pending(None),
                }
                ev.prevent_default();
            }
            return;
        }
        if let Some(t) = target.as_ref().filter(|t| t.id().starts_with("note-")) {
            if let Some(d) = key.chars().next().filter(|_| key.len() == 1).and_then(|c| c.to_digit(10)).filter(|d| *d >= 1) {
                if pick_reason(t, d) {
                    ev.prevent_default();
                }
                return;
            }
        }
        if target.as_ref().is_some_and(is_typing) {
            return;
        }
        if key == " " || key == "Enter" {
            if let Some(thumb) =
                target.as_ref().filter(|t| t.class_list().contains("thumb")).and_then(|t| t.dyn_ref::<HtmlElement>().cloned())
            {
                if open_lightbox(&thumb) {
                    ev.prevent_default();
                }
            }
            return;
        }
        let cards = step_cards();
        let current = current_card().and_then(|c| cards.iter().position(|x| x.is_same_node(Some(&c))));
        let handled = match key.as_str() {
            "j" => {
                let i = current.map(|i| (i + 1).min(cards.len().saturating_sub(1))).unwrap_or(0);
                cards.get(i).map(focus_card).is_some()
            }
            "k" => {
                let i = current.map(|i| i.saturating_sub(1)).unwrap_or(0);
                cards.get(i).map(focus_card).is_some()
            }
            "o" => target_card().and_then(|c| step_of(&c)).and_then(|n| by_id(&format!("ok-{n}"))).map(|b| b.click()).is_some(),
            "m" => target_card().is_some_and(|c| open_form(&c, "missing")),
            "r" => target_card().is_some_and(|c| open_form(&c, "retake")),
            "w" => target_card().is_some_and(|c| open_form(&c, "rework")),
            "a" => match document().get_element_by_id("approve-panel") {
                // A flag is open: show the question, the confirmation takes Enter.
                Some(panel) => {
                    let _ = panel.set_attribute("open", "");
                    by_id("confirm-approve").map(|b| b.focus()).is_some()
                }
                None => by_id("approve-all").map(|b| b.click()).is_some(),
            },
            "i" => {
                if let Some(d) = document().get_element_by_id("incomplete-panel") {
                    let _ = d.set_attribute("open", "");
                }
                by_id("confirm-incomplete").map(|b| b.focus()).is_some()
            }
            "n" => {
                go(&format!("/next?after={}", number()));
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    });
    // What a save (by key or by mouse) does to focus once the page has re-rendered.
    let submits = window_event_listener(leptos::ev::submit, |ev: web_sys::SubmitEvent| {
        let Some(form) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()) else { return };
        let intent = match card_of(&form).and_then(|c| step_of(&c)) {
            Some(n) if form.query_selector("input[name=verdict]").ok().flatten().is_some() => Focus::After(n),
            Some(n) => Focus::Step(n),
            None => Focus::FirstPending,
        };
        INTENT.with(|i| i.set(intent));
    });
    let focus = window_event_listener(leptos::ev::focusin, |ev: web_sys::FocusEvent| {
        if let Some(n) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()).and_then(|t| card_of(&t)).and_then(|c| step_of(&c)) {
            LAST_STEP.with(|l| l.set(Some(n)));
        }
    });
    // A click on a thumbnail opens the same full-size view (without JavaScript: a new tab).
    let clicks = window_event_listener(leptos::ev::click, |ev: web_sys::MouseEvent| {
        if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
            return;
        }
        let Some(t) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()) else { return };
        if t.id() == "lightbox" {
            // The backdrop.
            close_lightbox();
            return;
        }
        if let Some(thumb) = t.closest("a.thumb").ok().flatten().and_then(|a| a.dyn_into::<HtmlElement>().ok()) {
            if open_lightbox(&thumb) {
                ev.prevent_default();
            }
        }
    });
    on_cleanup(move || {
        keys.remove();
        submits.remove();
        focus.remove();
        clicks.remove();
        close_lightbox();
    });
}
