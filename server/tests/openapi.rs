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
