//! Contacts over the API: `/api/v1/contacts` (with tags, attributes, birthday, time zone
//! and consent), their attribute definitions (`/api/v1/contact-attributes`) and CSV imports
//! (`POST /api/v1/contacts/import`). Reading needs `read`; changing `admin`.

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dropcheck_core::contacts::{AttributeChanges, AttributeDef, Birthday, ConsentStatus, Contact, ContactUpdate};
use dropcheck_core::domain::Phone;
use dropcheck_core::store::{ContactFilter, ImportMapping, ImportMode};
use dropcheck_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) fn contact_json(c: &Contact) -> Value {
    json!({
        "phone": c.phone,
        "name": c.name,
        "tags": c.tags,
        "attributes": c.attributes,
        "birthday": c.birthday,
        "time_zone": c.time_zone,
        "consent": {"status": c.consent.status, "at": c.consent.at.map(rfc3339), "source": c.consent.source},
        "opted_out": c.opted_out,
        "muted_types": c.muted_types,
        "last_inbound_at": c.last_inbound_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
    })
}

/// A field that may be left out (unchanged), `null` (cleared) or a value.
fn clearable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactBody {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    opted_out: Option<bool>,
    /// `opted_in`, `opted_out` or `unknown` (or `{status}` as the API returns it).
    #[serde(default)]
    consent: Option<Value>,
    #[serde(default)]
    muted_types: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<AttributeChanges>,
    #[serde(default, deserialize_with = "clearable")]
    birthday: Option<Option<Birthday>>,
    #[serde(default, deserialize_with = "clearable")]
    time_zone: Option<Option<String>>,
}

impl ContactBody {
    fn update(self) -> ApiResult<ContactUpdate> {
        let consent = match self.consent {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(ConsentStatus::parse(&s)?),
            Some(Value::Object(m)) => match m.get("status").and_then(Value::as_str) {
                Some(s) => Some(ConsentStatus::parse(s)?),
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_consent",
                        "consent is opted_in, opted_out or unknown",
                    ))
                }
            },
            Some(_) => {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_consent", "consent is opted_in, opted_out or unknown"))
            }
        };
        Ok(ContactUpdate {
            name: self.name,
            opted_out: self.opted_out,
            consent,
            muted_types: self.muted_types,
            birthday: self.birthday,
            time_zone: self.time_zone,
            attributes: self.attributes.unwrap_or_default(),
            tags: self.tags,
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct ContactQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// `key:value`
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    consent: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    /// `json` (the default) or `csv`: every matching contact, streamed (no limit or offset).
    #[serde(default)]
    format: Option<String>,
}

impl ContactQuery {
    pub(crate) fn filter(&self) -> ApiResult<ContactFilter> {
        let attribute = match self.attribute.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => match a.split_once(':') {
                Some((k, v)) => Some((k.trim().to_string(), v.trim().to_string())),
                None => return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_attribute", "attribute is key:value")),
            },
            None => None,
        };
        let consent = match self.consent.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(ConsentStatus::parse(c)?),
            None => None,
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) || self.offset.is_some_and(|o| o < 0) {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit", "limit is 1–1000 and offset 0 or more"));
        }
        Ok(ContactFilter { q: self.q.clone(), tag: self.tag.clone(), attribute, consent, offset: self.offset.unwrap_or(0), limit })
    }
}

/// `GET /api/v1/contacts?q=&tag=&attribute=key:value&consent=&limit=&offset=`
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ContactQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.require("read")?;
    let Query(q) = query?;
    if wants_csv(q.format.as_deref())? {
        let filter = ContactQuery { limit: None, offset: None, ..q }.filter()?;
        return Ok(crate::csv_export::csv_response("contacts.csv", crate::csv_export::contacts_csv(st.store.clone(), filter).await?));
    }
    let (contacts, total) = st.store.contacts(&q.filter()?).await?;
    Ok(Json(json!({ "contacts": contacts.iter().map(contact_json).collect::<Vec<_>>(), "total": total })).into_response())
}

/// `GET /api/v1/contacts/{phone}`
pub(crate) async fn get_one(State(st): State<AppState>, caller: ApiCaller, ApiPath(phone): ApiPath<String>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    Ok(Json(contact_json(&st.store.contact(&Phone::parse(&phone)?).await?)))
}

/// `POST /api/v1/contacts` → 201 (409 when the number is a contact already).
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<ContactBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let Json(mut body) = body?;
    let phone = body.phone.take().ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", "phone is required"))?;
    let phone = Phone::parse(&phone)?;
    match st.store.contact(&phone).await {
        Ok(_) => return Err(ApiError::new(StatusCode::CONFLICT, "contact_exists", format!("{} is a contact already", phone.as_str()))),
        Err(CoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let (c, _) = st.store.save_contact(&phone, &body.update()?, &format!("API key {}", caller.name)).await?;
    Ok((StatusCode::CREATED, Json(contact_json(&c))))
}

/// `PUT /api/v1/contacts/{phone}`: the fields given change (attributes one by one, `null`
/// removing one; `tags` replaces the list); the rest stays.
pub(crate) async fn update(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(phone): ApiPath<String>,
    body: Result<Json<ContactBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let Json(body) = body?;
    let phone = Phone::parse(&phone)?;
    st.store.contact(&phone).await?;
    let (c, change) = st.store.save_contact(&phone, &body.update()?, &format!("API key {}", caller.name)).await?;
    tracing::info!(caller = %caller.name, changed = ?change.changed, "contact updated");
    Ok(Json(contact_json(&c)))
}

// ------------------------------------------------------------------ attribute definitions

/// `GET /api/v1/contact-attributes`
pub(crate) async fn list_attributes(State(st): State<AppState>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    Ok(Json(json!({ "attributes": st.store.attribute_defs().await? })))
}

/// `POST /api/v1/contact-attributes` `{key, label, type, options?}`: adds one, or changes a
/// key's label and options.
pub(crate) async fn save_attribute(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<AttributeDef>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let Json(def) = body?;
    Ok(Json(json!(st.store.save_attribute_def(&def).await?)))
}

/// `DELETE /api/v1/contact-attributes/{key}`: the definition and every contact's value.
pub(crate) async fn delete_attribute(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require("admin")?;
    st.store.delete_attribute_def(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ imports

fn unprocessable(code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg)
}

/// `POST /api/v1/contacts/import` (multipart): `file` (CSV), `mapping` (JSON: heading →
/// `phone` | `name` | `birthday` | `time_zone` | `consent` | `tags` | `attribute:KEY` |
/// `ignore`; guessed from the headings when left out), `default_region`, `mode` (`skip` |
/// `fill_blanks` | `overwrite`), `fire_rules`, `dry_run` → the report.
pub(crate) async fn import(State(st): State<AppState>, caller: ApiCaller, req: Request) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| unprocessable("invalid_multipart", e.body_text()))?;
    let mut file: Option<(String, String)> = None;
    let mut mapping = ImportMapping::default();
    let mut columns: Option<String> = None;
    let mut dry_run = false;
    let flag = |v: &str| matches!(v.trim(), "true" | "1" | "yes" | "on");
    while let Some(field) = mp.next_field().await.map_err(|e| unprocessable("invalid_multipart", e.body_text()))? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().unwrap_or("contacts.csv").to_string();
        let bytes = field.bytes().await.map_err(|e| unprocessable("invalid_multipart", e.body_text()))?;
        let text = || String::from_utf8(bytes.to_vec()).map_err(|_| unprocessable("invalid_csv", format!("{name} is not UTF-8 text")));
        match name.as_str() {
            "file" => file = Some((file_name, text()?)),
            "mapping" => columns = Some(text()?),
            "default_region" => mapping.default_region = Some(text()?).filter(|r| !r.trim().is_empty()),
            "mode" => mapping.mode = ImportMode::parse(&text()?)?,
            "fire_rules" => mapping.fire_rules = flag(&text()?),
            "dry_run" => dry_run = flag(&text()?),
            other => {
                return Err(unprocessable(
                    "invalid_multipart",
                    format!("unknown part '{other}' (file, mapping, default_region, mode, fire_rules, dry_run)"),
                ))
            }
        }
    }
    let (file_name, text) = file.ok_or_else(|| unprocessable("invalid_csv", "the CSV file goes in the part named file"))?;
    let id = st.store.stage_import(&file_name, &text, &format!("API key {}", caller.name)).await?;
    mapping.columns = match columns {
        Some(c) => serde_json::from_str(&c)
            .map_err(|e| unprocessable("invalid_mapping", format!("mapping is a JSON object of heading → field: {e}")))?,
        None => {
            let (_, f, _) = st.store.import_file(id).await?;
            let defs = st.store.attribute_defs().await?;
            f.headers.iter().map(|h| (h.clone(), dropcheck_core::contacts::import::Target::guess(h, &defs).as_string())).collect()
        }
    };
    let report = st.store.run_import(id, &mapping, dry_run, &format!("API key {}", caller.name)).await?;
    let mut v = json!(report);
    v["mapping"] = json!(mapping.columns);
    if !dry_run {
        v["rejected_csv"] = json!(format!("/api/v1/contacts/imports/{id}/rejected.csv"));
    }
    Ok(Json(v))
}

/// `GET /api/v1/contacts/imports/{id}/rejected.csv`: the rows an import refused, with why.
pub(crate) async fn rejected_csv(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    caller.require("read")?;
    let body = st.store.import_rejected_csv(id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"rejected-{id}.csv\"")),
        ],
        body,
    )
        .into_response())
}
