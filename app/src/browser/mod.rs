//! What runs only in the browser: the keyboard shortcuts and the live-update stream.

pub mod live;
pub mod shortcuts;
