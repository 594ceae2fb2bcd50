//! The API document covers every route: this reads the routers' source for `.route(...)`
//! registrations and checks that each method and path is in `/api/openapi.json` (and that
//! the document names nothing the routers do not serve).

use std::collections::BTreeSet;

fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for file in ["api.rs", "notifications.rs", "linking.rs", "webhooks.rs", "openapi.rs"] {
        let src = std::fs::read_to_string(format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(\"") {
            rest = &rest[i + 8..];
            let end = rest.find('"').unwrap();
            let path = rest[..end].to_string();
            // The handlers up to the end of this call: get(..).post(..)…
            let call_end = rest.find("\n").unwrap_or(rest.len());
            let line = &rest[end..call_end];
            if path == "/api/{*rest}" {
                continue; // the JSON 404 for unknown API paths
            }
            for method in ["get", "post", "put", "delete", "patch"] {
                if line.contains(&format!("({method}(")) || line.contains(&format!(" {method}(")) || line.contains(&format!(".{method}(")) {
                    found.insert((method.to_string(), path.clone()));
                }
            }
        }
    }
    found
}

#[test]
fn every_route_is_in_the_openapi_document_and_nothing_else() {
    let doc = dropcheck::openapi::document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served = routes_in_source();
    assert!(served.len() > 30, "the source scan found the routes: {served:?}");
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["paths"]["/api/v1/drops/{number}"]["get"]["parameters"][0]["name"], "number");
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
    for n in ["status", "project", "contractor", "q", "cursor", "limit"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    assert_eq!(op("get", "/api/v1/drops")["parameters"][3]["schema"]["maxLength"], 200);
    assert_eq!(op("post", "/api/v1/messages/{id}/resend")["parameters"][0]["schema"]["type"], "integer");
    // Non-JSON answers say so.
    assert!(op("get", "/api/docs")["responses"]["200"]["content"]["text/html"].is_object());
    assert!(op("post", "/webhooks/twilio")["responses"]["200"]["content"]["text/xml"].is_object());
}
