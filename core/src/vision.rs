//! The optional vision check: one photo and its step put to a vision model through any
//! OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM), and its answer read
//! back. What is asked, and how an answer is read, is here, without I/O; the server's vision
//! worker sends the request (`server/src/vision.rs`) and the store keeps the outcome.
//!
//! The request: the photo as a `data:image/jpeg;base64,` URL with its long side at most
//! [`MAX_SIDE`] px (image tokens grow with the size, and proxies limit bodies to about 1 MB),
//! a prompt from the step's name and description (or the project's own question for the step)
//! naming the values to read, temperature 0 (Ollama's default is 1), and a strict JSON-schema
//! response format: every object closed (`additionalProperties: false`), every property
//! required, an optional one typed `["string", "null"]`.
//!
//! Reading the answer, in order: a refusal (`message.refusal`) or a truncated answer
//! (`finish_reason: "length"`) is that; the content is read as JSON, else with a Markdown code
//! fence stripped (thinking models wrap their JSON), and checked against the schema here
//! (Ollama does not enforce it); anything else is "unknown". None of these is retried: at
//! temperature 0 the same question gets the same answer.

use std::collections::BTreeMap;
use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageDecoder, ImageReader};
use serde_json::{json, Value};

use crate::error::{CoreError, CoreResult, InputError};

/// The long side of the photo as sent.
pub const MAX_SIDE: u32 = 1024;
/// JPEG quality of the photo as sent.
const JPEG_QUALITY: u8 = 85;
/// The answer is short; this bounds what a model may spend on it.
pub const MAX_TOKENS: u32 = 400;

/// The vision model in effect: `DROPCHECK_VISION_URL` (the endpoint's base, e.g.
/// `https://api.openai.com` or `http://localhost:11434`; `/v1/chat/completions` is added
/// unless the URL already ends with it), `DROPCHECK_VISION_MODEL`, and the key when the
/// endpoint needs one. Its Debug output hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VisionConfig {
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for VisionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[set]"))
            .finish()
    }
}

impl VisionConfig {
    /// From the three settings; `None` when neither the URL nor the model is set (the check is
    /// off), an error naming the missing one when only one is.
    pub fn from_settings(url: Option<&str>, model: Option<&str>, api_key: Option<&str>) -> Result<Option<Self>, InputError> {
        let clean = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        match (clean(url), clean(model)) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err(InputError::new("missing_setting", "DROPCHECK_VISION_MODEL is required when DROPCHECK_VISION_URL is set"))
            }
            (None, Some(_)) => {
                Err(InputError::new("missing_setting", "DROPCHECK_VISION_URL is required when DROPCHECK_VISION_MODEL is set"))
            }
            (Some(url), Some(model)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(InputError::new("invalid_setting", "DROPCHECK_VISION_URL must start with http:// or https://"));
                }
                Ok(Some(Self { url, model, api_key: clean(api_key) }))
            }
        }
    }

    /// The chat-completions address.
    pub fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/chat/completions") {
            base.to_string()
        } else if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        }
    }
}

/// What is asked about a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepQuestion {
    pub number: i64,
    pub name: String,
    pub description: String,
    /// The project's own question for the step, instead of one built from its name.
    pub prompt: Option<String>,
    /// Values to read off the photo (e.g. "meter reading", "ONT serial").
    pub values: Vec<String>,
}

impl StepQuestion {
    pub fn text(&self) -> String {
        let mut q = match self.prompt.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => format!("Step {} '{}': {p}", self.number, self.name),
            None => {
                let what = if self.description.trim().is_empty() { self.name.clone() } else { self.description.trim().to_string() };
                format!(
                    "Step {} '{}': the photo must show {}. Does it show that, clearly enough to check the work?",
                    self.number,
                    self.name,
                    what.trim_end_matches('.')
                )
            }
        };
        if !self.values.is_empty() {
            let keys: Vec<String> = self.values.iter().map(|v| format!("\"{}\" ({v})", value_key(v))).collect();
            q.push_str(&format!(" Read these values exactly as shown, or null where not legible: {}.", keys.join(", ")));
        }
        q.push_str(" List any problems (blurred, dark, wrong subject, obstructed); an empty list if none.");
        q
    }
}

/// The key a value is read under: its label in lower case, words joined by `_`.
pub fn value_key(label: &str) -> String {
    let mut key = String::new();
    for word in label.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if !key.is_empty() {
            key.push('_');
        }
        key.push_str(&word.to_ascii_lowercase());
    }
    if key.is_empty() {
        "value".into()
    } else {
        key
    }
}

/// The answer's schema, strict: the values object holds exactly the step's values.
pub fn answer_schema(values: &[String]) -> Value {
    let keys: Vec<String> = values.iter().map(|v| value_key(v)).collect();
    let props: serde_json::Map<String, Value> = keys.iter().map(|k| (k.clone(), json!({"type": ["string", "null"]}))).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["shows_expected_subject", "legible", "confidence", "problems", "values"],
        "properties": {
            "shows_expected_subject": {"type": "boolean"},
            "legible": {"type": "boolean"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "problems": {"type": "array", "items": {"type": "string"}},
            "values": {"type": "object", "additionalProperties": false, "required": keys, "properties": props},
        }
    })
}

/// The chat-completions request for one photo (`jpeg`: as [`photo_for_model`] made it).
pub fn request_body(model: &str, step: &StepQuestion, jpeg: &[u8]) -> Value {
    let url = format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg));
    json!({
        "model": model,
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "messages": [
            {"role": "system", "content": "You check one field-installation photo for a QA reviewer. Answer only from what is visible, in the JSON format asked for."},
            {"role": "user", "content": [
                {"type": "text", "text": step.text()},
                {"type": "image_url", "image_url": {"url": url}},
            ]},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "step_check", "strict": true, "schema": answer_schema(&step.values)}},
    })
}

/// The photo as the model gets it: upright (EXIF orientation), long side at most
/// [`MAX_SIDE`], JPEG.
pub fn photo_for_model(bytes: &[u8]) -> CoreResult<Vec<u8>> {
    let unreadable = |e: image::ImageError| CoreError::Input(InputError::new("invalid_image", format!("the photo could not be read: {e}")));
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| CoreError::Internal(e.to_string()))?;
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    if img.width().max(img.height()) > MAX_SIDE {
        img = img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&img.to_rgb8())
        .map_err(|e| CoreError::Internal(format!("encoding the photo for the vision model: {e}")))?;
    Ok(out)
}

/// The model's answer, as the schema has it (read by [`read_content`], which checks it).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub shows_expected_subject: bool,
    pub legible: bool,
    pub confidence: f64,
    pub problems: Vec<String>,
    /// By the value's label (as the project names it): what was read, or `None`.
    pub values: BTreeMap<String, Option<String>>,
}

impl Answer {
    /// Whether the photo should be taken again: it does not show the step or cannot be read.
    pub fn retake(&self) -> bool {
        !self.shows_expected_subject || !self.legible
    }
}

/// What a chat-completions response came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Answer(Answer),
    /// The model declined (`message.refusal`).
    Refused(String),
    /// The answer was cut off (`finish_reason: "length"`).
    Truncated,
    /// Not an answer in the schema: why, and an excerpt.
    Unknown(String),
}

/// Reads a chat-completions response body (HTTP 200) for a step asking for `values`.
pub fn read_response(body: &str, values: &[String]) -> Reading {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Reading::Unknown(format!("the response is not JSON ({e}): {}", excerpt(body))),
    };
    let choice = &v["choices"][0];
    let message = &choice["message"];
    if let Some(r) = message["refusal"].as_str().filter(|r| !r.trim().is_empty()) {
        return Reading::Refused(excerpt(r));
    }
    if choice["finish_reason"].as_str() == Some("length") {
        return Reading::Truncated;
    }
    match message["content"].as_str() {
        Some(content) => read_content(content, values),
        None => Reading::Unknown(format!("no message content in the response: {}", excerpt(body))),
    }
}

/// Reads the answer's JSON: as it is, else inside a code fence; checked against the schema.
pub fn read_content(content: &str, values: &[String]) -> Reading {
    let parsed =
        serde_json::from_str::<Value>(content.trim()).or_else(|e| strip_fence(content).map_or(Err(e), |inner| serde_json::from_str(inner)));
    let v = match parsed {
        Ok(v) => v,
        Err(_) => return Reading::Unknown(format!("the answer is not JSON: {}", excerpt(content))),
    };
    match check_answer(&v, values) {
        Ok(a) => Reading::Answer(a),
        Err(why) => Reading::Unknown(format!("the answer does not follow the schema ({why}): {}", excerpt(content))),
    }
}

fn strip_fence(content: &str) -> Option<&str> {
    let t = content.trim();
    let start = t.find("```")?;
    let after = &t[start + 3..];
    // The fence's language tag ("json") runs to the end of its line.
    let body = &after[after.find('\n')? + 1..];
    let end = body.rfind("```")?;
    Some(body[..end].trim())
}

/// The schema's rules, checked here (not every server enforces them).
fn check_answer(v: &Value, values: &[String]) -> Result<Answer, String> {
    let obj = v.as_object().ok_or("not an object")?;
    let mut a: Answer = Answer {
        shows_expected_subject: obj
            .get("shows_expected_subject")
            .and_then(Value::as_bool)
            .ok_or("shows_expected_subject is not a boolean")?,
        legible: obj.get("legible").and_then(Value::as_bool).ok_or("legible is not a boolean")?,
        confidence: obj.get("confidence").and_then(Value::as_f64).ok_or("confidence is not a number")?,
        problems: obj
            .get("problems")
            .and_then(Value::as_array)
            .ok_or("problems is not a list")?
            .iter()
            .map(|p| p.as_str().map(str::to_string).ok_or("a problem is not a string"))
            .collect::<Result<_, _>>()?,
        values: BTreeMap::new(),
    };
    if let Some(extra) =
        obj.keys().find(|k| !["shows_expected_subject", "legible", "confidence", "problems", "values"].contains(&k.as_str()))
    {
        return Err(format!("unexpected field {extra}"));
    }
    if !(0.0..=1.0).contains(&a.confidence) {
        return Err(format!("confidence {} is outside 0–1", a.confidence));
    }
    let read = obj.get("values").and_then(Value::as_object).ok_or("values is not an object")?;
    for label in values {
        let key = value_key(label);
        let value = match read.get(&key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) => None,
            Some(_) => return Err(format!("the value {key} is not a string or null")),
            None => return Err(format!("the value {key} is missing")),
        };
        a.values.insert(label.clone(), value);
    }
    Ok(a)
}

/// At most 300 characters of something from outside, on one line.
pub fn excerpt(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out: String = one_line.chars().take(300).collect();
    if one_line.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(values: &[&str]) -> StepQuestion {
        StepQuestion {
            number: 7,
            name: "Power meter reading".into(),
            description: "The electricity meter with its reading legible.".into(),
            prompt: None,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn response(content: &str, finish: &str) -> String {
        json!({"choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}]}).to_string()
    }

    const GOOD: &str =
        r#"{"shows_expected_subject": true, "legible": true, "confidence": 0.9, "problems": [], "values": {"meter_reading": "004512.7"}}"#;

    #[test]
    fn the_request_is_strict_at_temperature_0_with_the_photo_as_a_data_url() {
        let body = request_body("gpt-4o-mini", &step(&["Meter reading"]), b"\xff\xd8jpeg");
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["temperature"], 0);
        let parts = &body["messages"][1]["content"];
        let text = parts[0]["text"].as_str().unwrap();
        assert!(
            text.contains("Step 7 'Power meter reading'") && text.contains("electricity meter") && text.contains("\"meter_reading\""),
            "{text}"
        );
        assert_eq!(parts[1]["image_url"]["url"], "data:image/jpeg;base64,/9hqcGVn");
        let format = &body["response_format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["json_schema"]["strict"], true);
        let schema = &format["json_schema"]["schema"];
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["values"]["required"], json!(["meter_reading"]));
        assert_eq!(schema["properties"]["values"]["additionalProperties"], false);
    }

    #[test]
    fn a_projects_own_question_replaces_the_built_one() {
        let s = StepQuestion { prompt: Some("Is the ONT's label readable?".into()), ..step(&[]) };
        assert!(s.text().starts_with("Step 7 'Power meter reading': Is the ONT's label readable?"));
        assert!(!s.text().contains("Read these values"));
    }

    #[test]
    fn answers_are_read_plain_or_fenced_and_checked_against_the_schema() {
        let values = vec!["Meter reading".to_string()];
        let Reading::Answer(a) = read_response(&response(GOOD, "stop"), &values) else { panic!("a plain answer") };
        assert_eq!(a.values["Meter reading"].as_deref(), Some("004512.7"));
        assert!(!a.retake());
        let fenced = format!("Here it is:\n```json\n{GOOD}\n```");
        assert_eq!(read_response(&response(&fenced, "stop"), &values), Reading::Answer(a));
        for bad in [
            r#"{"shows_expected_subject": "yes", "legible": true, "confidence": 0.9, "problems": [], "values": {"meter_reading": null}}"#,
            r#"{"shows_expected_subject": true, "legible": true, "confidence": 3, "problems": [], "values": {"meter_reading": null}}"#,
            r#"{"shows_expected_subject": true, "legible": true, "confidence": 0.5, "problems": [], "values": {}}"#,
            r#"{"shows_expected_subject": true, "legible": true, "confidence": 0.5, "problems": [], "values": {"meter_reading": 4}, "x": 1}"#,
            "The photo shows a meter.",
        ] {
            assert!(matches!(read_response(&response(bad, "stop"), &values), Reading::Unknown(_)), "{bad}");
        }
    }

    #[test]
    fn refusals_and_truncated_answers_are_named() {
        let refusal = json!({"choices": [{"finish_reason": "stop", "message": {"content": null, "refusal": "I can't help with that."}}]});
        assert_eq!(read_response(&refusal.to_string(), &[]), Reading::Refused("I can't help with that.".into()));
        assert_eq!(read_response(&response(r#"{"shows_expected_subject": tr"#, "length"), &[]), Reading::Truncated);
        assert!(matches!(read_response("<html>502</html>", &[]), Reading::Unknown(_)));
        assert!(matches!(read_response("{}", &[]), Reading::Unknown(_)));
    }

    #[test]
    fn a_photo_goes_at_most_1024_px_on_its_long_side() {
        let img = image::RgbImage::from_fn(2000, 1500, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let jpeg = photo_for_model(&png).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (1024, 768));
        assert!(photo_for_model(b"not a photo").is_err());
    }

    #[test]
    fn settings_need_both_the_url_and_the_model() {
        assert_eq!(VisionConfig::from_settings(None, Some(" "), Some("k")).unwrap(), None);
        assert!(VisionConfig::from_settings(Some("http://x"), None, None).is_err());
        assert!(VisionConfig::from_settings(Some("ftp://x"), Some("m"), None).is_err());
        let c = VisionConfig::from_settings(Some("http://localhost:11434"), Some("llava"), Some("sk-secret")).unwrap().unwrap();
        assert_eq!(c.endpoint(), "http://localhost:11434/v1/chat/completions");
        assert!(!format!("{c:?}").contains("sk-secret"));
        let c = VisionConfig { url: "https://api.openai.com/v1/".into(), ..c };
        assert_eq!(c.endpoint(), "https://api.openai.com/v1/chat/completions");
    }
}
