//! What the pages receive from the server functions: plain serialisable view models,
//! already formatted for display (times, labels), so the browser needs no domain crate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropRowView {
    pub number: String,
    pub status: String,
    pub status_label: String,
    pub project: String,
    pub contractor: String,
    pub photo_steps: i64,
    pub step_count: i64,
    pub round: i64,
    pub activity_ago: String,
    pub activity_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectOption {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropsPageData {
    pub me: Me,
    pub counts: Vec<StatusCount>,
    pub total: i64,
    pub rows: Vec<DropRowView>,
    pub next_cursor: Option<String>,
    pub projects: Vec<ProjectOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoView {
    pub id: i64,
    pub round: i64,
    pub received: String,
    pub width: i64,
    pub height: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub number: i64,
    pub name: String,
    pub description: String,
    pub verdict: String,
    pub reason: String,
    pub reason_label: String,
    pub note: String,
    pub reviewer: String,
    pub previous_verdict: String,
    pub previous_note: String,
    /// Photos of the current round, newest first.
    pub new_photos: Vec<PhotoView>,
    /// Photos of earlier rounds, newest first.
    pub old_photos: Vec<PhotoView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub text: String,
    /// For messages: queued / sent / delivered / read / failed.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonOption {
    pub code: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentView {
    pub id: i64,
    pub mime_type: String,
    pub size: String,
    pub received: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropPageData {
    pub me: Me,
    /// Files the contractor sent that are not checklist photos.
    pub attachments: Vec<AttachmentView>,
    pub number: String,
    pub status: String,
    pub status_label: String,
    pub project: String,
    pub contractor_name: String,
    pub contractor_phone: String,
    pub round: i64,
    pub created: String,
    pub steps: Vec<StepView>,
    pub timeline: Vec<TimelineEntry>,
    /// The exact feedback "Mark incomplete" would queue, or why it can't yet.
    pub feedback: Result<String, String>,
    pub reasons: Vec<ReasonOption>,
    pub can_review: bool,
    pub can_mark_incomplete: bool,
    pub can_approve: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub drop_pattern: String,
    /// One step per line: `Name | what the photo must show`.
    pub steps_text: String,
    pub step_count: usize,
    /// Drops wait for the contractor's `DONE` instead of completing themselves.
    pub wait_for_done: bool,
    /// "Created 2026-12-01 10:00 by API key Bridge", or by whom it is known.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created: String,
    pub is_me: bool,
}

pub const STATUSES: [(&str, &str); 5] = [
    ("collecting", "Collecting"),
    ("unreviewed", "Unreviewed"),
    ("incomplete", "Incomplete"),
    ("resubmitted", "Resubmitted"),
    ("approved", "Approved"),
];

/// Tailwind classes of a status badge (grey / blue / red / yellow / green, SPEC §1.1).
pub fn badge_class(status: &str) -> &'static str {
    match status {
        "collecting" => "bg-slate-100 text-slate-700 ring-slate-300",
        "unreviewed" => "bg-blue-100 text-blue-800 ring-blue-300",
        "incomplete" => "bg-red-100 text-red-800 ring-red-300",
        "resubmitted" => "bg-yellow-100 text-yellow-800 ring-yellow-300",
        "approved" => "bg-green-100 text-green-800 ring-green-300",
        _ => "bg-slate-100 text-slate-700 ring-slate-300",
    }
}

pub fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "bg-green-100 text-green-800",
        "missing" => "bg-red-100 text-red-800",
        "retake" => "bg-orange-100 text-orange-800",
        "rework" => "bg-purple-100 text-purple-800",
        _ => "bg-slate-100 text-slate-600",
    }
}

pub fn verdict_label(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "OK",
        "missing" => "Missing",
        "retake" => "Retake",
        "rework" => "Rework",
        _ => "Pending",
    }
}
