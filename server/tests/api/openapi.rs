//! The API document covers every route: the served paths come from the server's own route
//! table ([`dropcheck::routes::Routes`]) and each path's methods are probed on the running
//! server (a method it does not route answers 405), so the document names exactly what is
//! served; and the document is a contract (bodies, parameters, every status).

use std::collections::BTreeSet;

use crate::helpers::spawn;
use dropcheck_core::testing::TestDb;
use reqwest::{header, StatusCode};

/// A concrete request path for a route pattern (its parameters filled in).
fn concrete(path: &str) -> String {
    path.replace("{number}", "DR12345678").replace("{id}", "1").replace("{name}", "drop_received").replace("{phone}", "%2B27821234567")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document_and_nothing_else() {
    let db = TestDb::sqlite().await;
    let app = spawn(db.store.clone()).await;
    // Signed in as an admin and same-origin, so that neither the sign-in gate nor the CSRF
    // check answers before the router says whether it routes a method.
    let r = app
        .client
        .post(format!("{}/rpc/setup", app.base))
        .header(header::ACCEPT, "text/html")
        .header(header::ORIGIN, app.base.clone())
        .form(&[("email", "ann@example.com"), ("password", "correct horse"), ("confirm", "correct horse")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let mut served = BTreeSet::new();
    for path in &app.api_paths {
        if *path == "/api/{*rest}" {
            continue; // the JSON 404 for unknown API paths
        }
        for method in ["get", "post", "put", "delete", "patch"] {
            let res = app
                .client
                .request(method.to_uppercase().parse().unwrap(), format!("{}{}", app.base, concrete(path)))
                .header(header::ORIGIN, app.base.clone())
                .send()
                .await
                .unwrap();
            if res.status() != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((method.to_string(), path.to_string()));
            }
        }
    }
    let doc = dropcheck::openapi::document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert!(served.len() > 30, "the route table and the probe found the routes: {served:?}");
    assert!(served.contains(&("get".into(), "/api/v1/drops".into())) && !served.contains(&("delete".into(), "/api/v1/drops".into())));
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["paths"]["/api/v1/drops/{number}"]["get"]["parameters"][0]["name"], "number");
    db.cleanup().await;
}

#[test]
fn the_document_is_a_contract_bodies_parameters_and_every_status() {
    let doc = dropcheck::openapi::document();
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    // Request bodies where the handler reads one.
    for (m, p) in [
        ("post", "/api/submit-installation"),
        ("post", "/api/v1/drops/{number}/review"),
        ("post", "/api/v1/templates"),
        ("put", "/api/v1/templates/{name}"),
        ("post", "/api/v1/contacts"),
        ("post", "/api/notifications/send-message"),
        ("post", "/send"),
        ("post", "/api/integrations/whatsapp/verify"),
    ] {
        let schema = &op(m, p)["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["type"], "object", "{m} {p}: {schema}");
        let responses = op(m, p)["responses"].as_object().unwrap().clone();
        for status in ["400", "415", "422"] {
            assert!(responses.contains_key(status), "{m} {p} lacks {status}");
        }
    }
    assert!(op("post", "/webhooks/twilio")["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    // Creates answer 201; authenticated operations document 401 and 403; no "4XX" catch-all.
    for (m, p) in [("post", "/api/v1/templates"), ("post", "/api/v1/contacts"), ("post", "/api/notifications/templates")] {
        assert!(op(m, p)["responses"]["201"].is_object(), "{m} {p}");
        assert!(op(m, p)["responses"]["200"].is_null(), "{m} {p}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, o) in item.as_object().unwrap() {
            let responses = o["responses"].as_object().unwrap();
            assert!(!responses.contains_key("4XX"), "{method} {path}");
            if o["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
            }
        }
    }
    // Query parameters of the lists, with their limits.
    let names: Vec<String> =
        op("get", "/api/v1/drops")["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    for n in ["status", "project", "contractor", "q", "flagged", "cursor", "limit"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    assert_eq!(op("get", "/api/v1/drops")["parameters"][3]["schema"]["maxLength"], 200);
    assert_eq!(op("post", "/api/v1/messages/{id}/resend")["parameters"][0]["schema"]["type"], "integer");
    // A drop's photos carry their checks.
    let photo = &op("get", "/api/v1/drops/{number}")["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["steps"]
        ["items"]["properties"]["photos"]["items"];
    let kinds = &photo["properties"]["checks"]["items"]["properties"]["kind"]["enum"];
    assert_eq!(
        kinds,
        &serde_json::json!(["small", "dark", "overexposed", "blurred", "featureless", "reused", "possibly_reused", "vision"]),
        "{photo}"
    );
    let check = &photo["properties"]["checks"]["items"]["properties"];
    assert_eq!(check["suggestion"]["enum"], serde_json::json!(["ok", "retake", null]), "{check}");
    assert!(check["values"].is_object() && check["model"].is_object(), "{check}");
    // Non-JSON answers say so.
    assert!(op("get", "/api/docs")["responses"]["200"]["content"]["text/html"].is_object());
    assert!(op("post", "/webhooks/twilio")["responses"]["200"]["content"]["text/xml"].is_object());
}
