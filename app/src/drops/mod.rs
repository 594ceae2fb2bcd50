//! Drops: the list (`/`) and one drop's checklist (`/drops/{number}`).

pub mod detail;
pub mod list;
mod review;
