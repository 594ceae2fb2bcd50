//! Contacts (issue 14, item 1): `/contacts` lists and filters them, `/contacts/{phone}` shows
//! one with its tags, attributes, drops, messages, and the automation runs and events that
//! touched it, and `/contacts/import` takes a CSV file through mapping, preview and report.
//! Changes are plain form posts to the server's contact routes (`server/src/contacts_web.rs`):
//! they work without JavaScript.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::*;

pub mod detail;
pub mod import;
pub mod list;

/// A custom attribute's definition, for forms and filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrView {
    pub key: String,
    pub label: String,
    pub kind: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactLine {
    pub phone: String,
    pub name: String,
    pub tags: Vec<String>,
    pub consent: String,
    pub consent_label: String,
    /// "Plan: Gold · Cable (m): 12.5"
    pub attributes: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactsPageData {
    pub me: Me,
    pub rows: Vec<ContactLine>,
    pub total: i64,
    pub offset: i64,
    pub tags: Vec<String>,
    pub attributes: Vec<AttrView>,
}

pub const PAGE_SIZE: i64 = 50;

#[cfg(feature = "ssr")]
fn attr_views(defs: Vec<dropcheck_core::contacts::AttributeDef>) -> Vec<AttrView> {
    defs.into_iter().map(|d| AttrView { key: d.key, label: d.label, kind: d.kind.as_str().into(), options: d.options }).collect()
}

#[cfg(feature = "ssr")]
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "yes".into(),
        serde_json::Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

#[server(prefix = "/rpc", endpoint = "contacts_page")]
pub async fn contacts_page(
    q: Option<String>,
    tag: Option<String>,
    attribute: Option<String>,
    value: Option<String>,
    consent: Option<String>,
    offset: Option<String>,
) -> Result<ContactsPageData, AppError> {
    use crate::ssr::*;
    use dropcheck_core::contacts::ConsentStatus;
    let (st, user) = require_user().await?;
    let blank = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let consent = match blank(consent) {
        Some(c) => Some(ConsentStatus::parse(&c).map_err(|e| fail(e.into()))?),
        None => None,
    };
    let offset = match blank(offset) {
        Some(o) => o.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| refuse("invalid_offset", "That page link is not valid."))?,
        None => 0,
    };
    let attribute = match (blank(attribute), blank(value)) {
        (Some(k), Some(v)) => Some((k, v)),
        _ => None,
    };
    let filter = dropcheck_core::store::ContactFilter { q: blank(q), tag: blank(tag), attribute, consent, offset, limit: PAGE_SIZE };
    let (contacts, total) = st.store.contacts(&filter).await.map_err(fail)?;
    let defs = st.store.attribute_defs().await.map_err(fail)?;
    let rows = contacts
        .into_iter()
        .map(|c| ContactLine {
            phone: c.phone.to_string(),
            name: c.name.clone(),
            tags: c.tags.clone(),
            consent: c.consent.status.as_str().into(),
            consent_label: c.consent.status.label().into(),
            attributes: c
                .attributes
                .iter()
                .map(|(k, v)| format!("{}: {}", defs.iter().find(|d| &d.key == k).map(|d| d.label.as_str()).unwrap_or(k), value_text(v)))
                .collect::<Vec<_>>()
                .join(" · "),
            created: dropcheck_core::fmt_time(c.created_at),
        })
        .collect();
    Ok(ContactsPageData {
        me: me_of(&user),
        rows,
        total,
        offset,
        tags: st.store.all_tags().await.map_err(fail)?,
        attributes: attr_views(defs),
    })
}

/// One attribute on the contact page: its definition and the contact's value as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrValue {
    pub def: AttrView,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLine {
    pub at: String,
    pub what: String,
    pub detail: String,
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactPageData {
    pub me: Me,
    pub phone: String,
    pub name: String,
    pub consent: String,
    pub consent_note: String,
    pub birthday: String,
    pub time_zone: String,
    pub tags: Vec<String>,
    pub attributes: Vec<AttrValue>,
    pub opted_out: bool,
    pub last_inbound: String,
    pub created: String,
    /// (drop number, status label, project)
    pub drops: Vec<(String, String, String)>,
    pub messages: Vec<MessageView>,
    pub runs: Vec<ActivityLine>,
    pub events: Vec<ActivityLine>,
}

#[server(prefix = "/rpc", endpoint = "contact_page")]
pub async fn contact_page(phone: String) -> Result<ContactPageData, AppError> {
    use crate::ssr::*;
    let (st, user) = require_user().await?;
    let phone = dropcheck_core::domain::Phone::parse(&phone).map_err(|e| fail(e.into()))?;
    let c = st.store.contact(&phone).await.map_err(fail)?;
    let defs = st.store.attribute_defs().await.map_err(fail)?;
    let filter = dropcheck_core::store::DropFilter { contractor: Some(phone.to_string()), ..Default::default() };
    let (drops, _) = st.store.list_drops(&filter, None, 50).await.map_err(fail)?;
    let mf = dropcheck_core::outbox::MessageFilter::parse(Some(phone.to_string()), None, None, None, None, dropcheck_core::now_ms())
        .map_err(|e| fail(e.into()))?;
    let (messages, _) = st.store.list_messages(&mf, None, 20).await.map_err(fail)?;
    let runs = st.store.contact_runs(&phone, 30).await.map_err(fail)?;
    let events = st.store.events_of(phone.as_str(), 30).await.map_err(fail)?;
    Ok(ContactPageData {
        me: me_of(&user),
        phone: phone.to_string(),
        name: c.name.clone(),
        consent: c.consent.status.label().into(),
        consent_note: match (&c.consent.source, c.consent.at) {
            (Some(s), Some(at)) => format!("{s}, {}", dropcheck_core::fmt_time(at)),
            _ => String::new(),
        },
        birthday: c.birthday.map(|b| b.text()).unwrap_or_default(),
        time_zone: c.time_zone.clone().unwrap_or_default(),
        tags: c.tags.clone(),
        attributes: defs
            .into_iter()
            .map(|d| {
                let value = c.attributes.get(&d.key).map(value_text).unwrap_or_default();
                AttrValue { def: AttrView { key: d.key, label: d.label, kind: d.kind.as_str().into(), options: d.options }, value }
            })
            .collect(),
        opted_out: c.opted_out,
        last_inbound: c.last_inbound_at.map(dropcheck_core::fmt_time).unwrap_or_default(),
        created: dropcheck_core::fmt_time(c.created_at),
        drops: drops.into_iter().map(|d| (d.drop_number.to_string(), d.status.label().to_string(), d.project)).collect(),
        messages: messages.into_iter().map(message_view).collect(),
        runs: runs
            .into_iter()
            .map(|r| ActivityLine {
                at: dropcheck_core::fmt_time(r.started_at),
                what: format!("{} — {}", r.trigger, r.status),
                detail: r.actions.iter().map(|a| format!("{} {}: {}", a.kind, a.status, a.detail)).collect::<Vec<_>>().join("; "),
                href: format!("/automations/{}", r.rule_id),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|(kind, payload, at)| ActivityLine {
                at: dropcheck_core::fmt_time(at),
                detail: match payload.get("changed").and_then(|c| c.as_array()).filter(|c| !c.is_empty()) {
                    Some(c) => format!("changed: {}", c.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")),
                    None => payload.get("tag").and_then(|t| t.as_str()).map(|t| format!("tag {t}")).unwrap_or_default(),
                },
                what: kind,
                href: String::new(),
            })
            .collect(),
    })
}
