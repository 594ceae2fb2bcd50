//! The browser entry point: hydrates the server-rendered pages. `hydrate_lazy` waits for a
//! lazy route's wasm chunk before hydrating it (the rarely used pages are split out).

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
