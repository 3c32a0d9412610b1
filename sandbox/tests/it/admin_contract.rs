//! The admin API's contract, `sandbox/admin.openapi.json`: the document is
//! valid OpenAPI 3.0 (it parses with `openapiv3`, every reference resolves,
//! every operation is named and answers JSON), and every answer the admin
//! API gives (on all four servers, success and error alike) validates
//! against the schema the document declares for its operation and status.
//! Every documented operation and status is exercised, so the document
//! cannot describe something the server no longer does.

use std::collections::BTreeSet;

use crate::common::*;
use reqwest::Method;
use sandbox::{OrderSeed, RefundStatus, Sandbox};
use serde_json::{Value, json};

const DOC: &str = include_str!("../../admin.openapi.json");

/// OpenAPI 3.0's `nullable` in JSON Schema terms, recursively.
fn to_json_schema(v: &Value) -> Value {
    match v {
        Value::Object(obj) => {
            let mut out: serde_json::Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "nullable" | "discriminator" | "example"))
                .map(|(k, v)| (k.clone(), to_json_schema(v)))
                .collect();
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                    }
                    _ => return json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get("$ref") {
                out.push(r.clone());
            }
            obj.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Whether a concrete path matches a template such as `/__admin/orders/{id}`.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

struct Contract {
    doc: Value,
    /// (method, path template, status) answered so far.
    seen: BTreeSet<(String, String, String)>,
}

impl Contract {
    fn new() -> Self {
        let doc: Value = serde_json::from_str(DOC).expect("admin.openapi.json is JSON");
        Contract {
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// Every documented (method, path template, status).
    fn documented(&self) -> BTreeSet<(String, String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                for status in op["responses"].as_object().unwrap().keys() {
                    all.insert((method.to_uppercase(), path.clone(), status.clone()));
                }
            }
        }
        all
    }

    /// Validates one answer against the document and notes it.
    fn check(&mut self, method: &Method, path: &str, status: u16, body: &Value) {
        let path_only = path.split('?').next().unwrap_or(path);
        let (template, item) = self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(t, _)| matches(t, path_only))
            .unwrap_or_else(|| panic!("{path} is not documented"));
        let op = &item[method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let status_key = status.to_string();
        let response = &op["responses"][&status_key];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, not documented: {body}"
        );
        let schema = &response["content"]["application/json"]["schema"];
        let mut root = to_json_schema(schema);
        root["components"] = to_json_schema(&self.doc["components"]);
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document: {errors:?}\n{body}"
        );
        self.seen
            .insert((method.to_string(), template.clone(), status_key));
    }
}

/// Sends one admin request and checks its answer; returns status and body.
async fn call(
    contract: &mut Contract,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method.clone(), format!("{base}{path}"));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()["content-type"],
        "application/json; charset=utf-8",
        "{method} {path}"
    );
    let body: Value = res.json().await.unwrap();
    contract.check(&method, path, status, &body);
    (status, body)
}

#[test]
fn the_document_is_valid_openapi_3_0() {
    let doc: openapiv3::OpenAPI = serde_json::from_str(DOC).expect("parses as OpenAPI 3.0");
    assert!(doc.openapi.starts_with("3.0."), "{}", doc.openapi);
    let raw: Value = serde_json::from_str(DOC).unwrap();
    let mut all = Vec::new();
    refs(&raw, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(raw.pointer(pointer).is_some(), "{r} does not resolve");
    }
    let mut ids = BTreeSet::new();
    for (path, item) in doc.paths.iter() {
        assert!(path.starts_with("/__admin"), "{path}");
        let item = item.as_item().expect("no path references");
        for (method, op) in item.iter() {
            let id = op
                .operation_id
                .clone()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            assert!(!op.responses.responses.is_empty(), "{id} has no responses");
            for (status, response) in &op.responses.responses {
                let response = response.as_item().expect("no response references");
                assert!(
                    response.content.contains_key("application/json"),
                    "{id} {status} answers no JSON"
                );
            }
            if let Some(body) = &op.request_body {
                let body = body.as_item().expect("no body references");
                assert!(body.content.contains_key("application/json"), "{id}");
            }
        }
    }
    // Every schema compiles as JSON Schema once nullable is translated.
    let components = to_json_schema(&raw["components"]);
    for name in raw["components"]["schemas"].as_object().unwrap().keys() {
        let root =
            json!({"$ref": format!("#/components/schemas/{name}"), "components": components});
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// A refund of 1.00 PLN through the provider's own API on order `order` (seeded in PLN), as
/// the provider's room sends its example: under the duplicate key the room derives from
/// `reference` ([`sandbox::Room::example_key`]).
async fn refund_request(
    sb: &Sandbox,
    p: &str,
    order: &str,
    reference: &str,
) -> reqwest::Result<reqwest::Response> {
    let room = sb.room(p).expect("a provider of the list");
    room.send_example_refund(&client(), order, "PLN", reference)
        .await
}

#[tokio::test]
async fn every_admin_answer_matches_the_document() {
    let sb = start().await;
    let mut k = Contract::new();
    for &p in sandbox::PROVIDERS {
        let base = provider(&sb, p).base_url();
        let base = base.as_str();
        let reference = |n: u8| format!("RF-ADMIN-{n}");
        // The duplicate key the server records for refund `n`.
        let key = |n: u8| sb.room(p).unwrap().example_key(&reference(n));
        let k = &mut k;

        let (_, info) = call(k, base, Method::GET, "/__admin", None).await;
        assert_eq!(info["provider"], p);

        // Orders.
        let seed = json!({"id":"O-1","currency":"PLN","captured":100.00,"refund_status":"PENDING"});
        let (status, order) = call(k, base, Method::POST, "/__admin/orders", Some(seed)).await;
        assert_eq!((status, &order["captured"]), (201, &json!(100.00)));
        let bad = json!({"id":"O-2","currency":"PLN","captured":"100"});
        let (status, e) = call(k, base, Method::POST, "/__admin/orders", Some(bad)).await;
        assert_eq!((status, e["field"].as_str()), (400, Some("captured")));
        call(k, base, Method::GET, "/__admin/orders", None).await;
        call(k, base, Method::GET, "/__admin/orders/O-1", None).await;
        let (status, e) = call(k, base, Method::GET, "/__admin/orders/NOPE", None).await;
        assert_eq!((status, e["field"].as_str()), (404, Some("id")));

        // The ledger and settlement (a refund still pending can be settled once; one the
        // provider settled at once cannot: Optty's is pending on its PENDING seed, OpenApp's
        // always, the others' succeed at once).
        let res = refund_request(&sb, p, "O-1", &reference(1)).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        let (_, ledger) = call(k, base, Method::GET, "/__admin/refunds", None).await;
        assert_eq!(ledger.as_array().unwrap().len(), 1, "{p}");
        let refund_id = ledger[0]["id"].as_str().unwrap().to_owned();
        let pending = ledger[0]["status"] == "PENDING";
        call(
            k,
            base,
            Method::GET,
            &format!(
                "/__admin/refunds?order=O-1&reference={}&status=SUCCEEDED",
                key(1)
            ),
            None,
        )
        .await;
        let (status, e) = call(k, base, Method::GET, "/__admin/refunds?color=red", None).await;
        assert_eq!((status, e["field"].as_str()), (400, Some("color")));
        let settle = format!("/__admin/orders/O-1/refunds/{refund_id}/settle");
        let (status, e) = call(
            k,
            base,
            Method::POST,
            &settle,
            Some(json!({"status":"PENDING"})),
        )
        .await;
        assert_eq!((status, e["field"].as_str()), (400, Some("status")));
        let (status, settled) = call(
            k,
            base,
            Method::POST,
            &settle,
            Some(json!({"status":"FAILED"})),
        )
        .await;
        if pending {
            assert_eq!(
                (status, settled["status"].as_str()),
                (200, Some("FAILED")),
                "{p}"
            );
        } else {
            assert_eq!(
                (status, settled["field"].as_str()),
                (409, Some("status")),
                "{p}"
            );
        }
        let (status, _) = call(
            k,
            base,
            Method::POST,
            &settle,
            Some(json!({"status":"SUCCEEDED"})),
        )
        .await;
        assert_eq!(status, if pending { 409 } else { 200 }, "{p}");
        let (status, e) = call(
            k,
            base,
            Method::POST,
            "/__admin/orders/O-1/refunds/nope/settle",
            Some(json!({"status":"SUCCEEDED"})),
        )
        .await;
        assert_eq!((status, e["field"].as_str()), (404, Some("refund_id")));

        // Faults: every kind.
        for (i, fault) in [
            json!({"kind":"latency","ms":1}),
            json!({"kind":"status","status":503}),
            json!({"kind":"drop_after_commit"}),
            json!({"kind":"malformed_body"}),
            json!({"kind":"non_json_502"}),
            json!({"kind":"status_after_commit","status":504}),
            json!({"kind":"unsigned_answer"}),
            json!({"kind":"wrong_signature"}),
            json!({"kind":"oversized_body","bytes":4096}),
            json!({"kind":"oversized_headers","bytes":4096}),
        ]
        .into_iter()
        .enumerate()
        {
            let matcher = [
                json!({"kind":"any"}),
                json!({"kind":"order","order":"O-9"}),
                json!({"kind":"nth","n":3}),
            ][i % 3]
                .clone();
            let mut body = json!({"fault": fault, "match": matcher, "times": if i % 2 == 0 { json!(1) } else { Value::Null }});
            let operation = ["refund", "read"][i % 2];
            if i % 4 != 0 {
                body["operation"] = json!(operation);
            }
            let (status, rule) = call(k, base, Method::POST, "/__admin/faults", Some(body)).await;
            assert_eq!((status, &rule["fault"]), (201, &fault), "{p}");
            assert_eq!(rule["operation"], operation, "{p}");
        }
        let bad = json!({"fault":{"kind":"non_json_502"},"operation":"write"});
        let (status, e) = call(k, base, Method::POST, "/__admin/faults", Some(bad)).await;
        assert_eq!((status, e["field"].as_str()), (400, Some("operation")));
        let bad = json!({"fault":{"kind":"status","status":1000}});
        let (status, e) = call(k, base, Method::POST, "/__admin/faults", Some(bad)).await;
        assert_eq!((status, e["field"].as_str()), (400, Some("fault.status")));
        let (_, rules) = call(k, base, Method::GET, "/__admin/faults", None).await;
        let id = rules[0]["id"].as_u64().unwrap();
        call(k, base, Method::GET, &format!("/__admin/faults/{id}"), None).await;
        let (status, _) = call(k, base, Method::GET, "/__admin/faults/999", None).await;
        assert_eq!(status, 404);
        let (status, _) = call(k, base, Method::GET, "/__admin/faults/abc", None).await;
        assert_eq!(status, 400);
        call(
            k,
            base,
            Method::DELETE,
            &format!("/__admin/faults/{id}"),
            None,
        )
        .await;
        let (status, _) = call(
            k,
            base,
            Method::DELETE,
            &format!("/__admin/faults/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = call(k, base, Method::DELETE, "/__admin/faults/abc", None).await;
        assert_eq!(status, 400);
        let (_, removed) = call(k, base, Method::DELETE, "/__admin/faults", None).await;
        assert_eq!(removed["removed"], 9);

        // The request log, with an unanswered (dropped) request in it.
        provider(&sb, p).inject(sandbox::Fault::DropAfterCommit, sandbox::Match::Any.once());
        let c = client();
        let url = format!("{base}/nowhere");
        c.post(&url).send().await.unwrap();
        assert!(
            refund_request(&sb, p, "O-1", &reference(2)).await.is_err(),
            "{p}"
        );
        let (_, log) = call(k, base, Method::GET, "/__admin/requests", None).await;
        let last = log.as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["outcome"].as_str(), &last["status"]),
            (Some("dropped"), &Value::Null),
            "{p}: {log}"
        );
        assert_eq!(last["fault"], "drop_after_commit");
        assert_eq!(last["duplicate_key"], key(2));
        call(k, base, Method::GET, "/__admin/requests?since=1", None).await;
        let (status, e) = call(k, base, Method::GET, "/__admin/requests?since=x", None).await;
        assert_eq!((status, e["field"].as_str()), (400, Some("since")));
        call(k, base, Method::DELETE, "/__admin/requests", None).await;

        // Settings: the read delay.
        let (_, settings) = call(k, base, Method::GET, "/__admin/settings", None).await;
        assert_eq!(settings["read_delay_ms"], 0);
        let (status, settings) = call(
            k,
            base,
            Method::PATCH,
            "/__admin/settings",
            Some(json!({"read_delay_ms": 250})),
        )
        .await;
        assert_eq!((status, &settings["read_delay_ms"]), (200, &json!(250)));
        let (status, e) = call(
            k,
            base,
            Method::PATCH,
            "/__admin/settings",
            Some(json!({"read_delay_ms": -1})),
        )
        .await;
        assert_eq!((status, e["field"].as_str()), (400, Some("read_delay_ms")));
        call(
            k,
            base,
            Method::PATCH,
            "/__admin/settings",
            Some(json!({"read_delay_ms": 0})),
        )
        .await;

        // Optty's notifications; the other servers have no such route.
        let optty = p == "optty";
        let (status, view) = call(k, base, Method::GET, "/__admin/notifications", None).await;
        assert_eq!(status, if optty { 200 } else { 404 }, "{p}");
        if optty {
            assert_eq!(view["url"], Value::Null);
            assert_eq!(view["event"], "ORDER_STATUS_UPDATE");
        }
        let change = json!({"url": "http://127.0.0.1:9/hook", "retries": 0, "backoff_ms": 1});
        let (status, view) = call(
            k,
            base,
            Method::PATCH,
            "/__admin/notifications",
            Some(change),
        )
        .await;
        assert_eq!(status, if optty { 200 } else { 404 }, "{p}");
        if optty {
            assert_eq!(view["url"], "http://127.0.0.1:9/hook");
            let bad = json!({"url": "ftp://example.com/"});
            let (status, e) =
                call(k, base, Method::PATCH, "/__admin/notifications", Some(bad)).await;
            assert_eq!((status, e["field"].as_str()), (400, Some("url")));
            // A refund's notification, to a port nobody listens on: given up after one try.
            let res = refund_request(&sb, p, "O-1", &reference(3)).await.unwrap();
            assert_eq!(res.status(), 200);
            let mut view = Value::Null;
            for _ in 0..500 {
                view = call(k, base, Method::GET, "/__admin/notifications", None)
                    .await
                    .1;
                if view["notifications"][0]["delivery"] == "gave_up" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!(
                view["notifications"][0]["attempts"],
                json!([null]),
                "{view}"
            );
            call(
                k,
                base,
                Method::PATCH,
                "/__admin/notifications",
                Some(json!({"url": null})),
            )
            .await;
        }
        let (status, _) = call(k, base, Method::DELETE, "/__admin/notifications", None).await;
        assert_eq!(status, if optty { 200 } else { 404 }, "{p}");

        // Removing and resetting.
        call(k, base, Method::DELETE, "/__admin/orders/O-1", None).await;
        let (status, _) = call(k, base, Method::DELETE, "/__admin/orders/O-1", None).await;
        assert_eq!(status, 404);
        call(k, base, Method::DELETE, "/__admin/orders", None).await;
        call(k, base, Method::POST, "/__admin/reset", None).await;
    }
    let missing: Vec<_> = k.documented().difference(&k.seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented but never answered: {missing:?}"
    );
}

#[tokio::test]
async fn router_level_admin_errors_are_admin_errors() {
    let sb = start().await;
    sb.moyasar().seed_order(
        OrderSeed::new("O-1", "SAR", dec("1.00")).refund_status(RefundStatus::Succeeded),
    );
    let base = sb.moyasar().base_url();
    let c = client();
    for (method, path, status) in [
        (Method::GET, "/__admin/nope", 404),
        (Method::PUT, "/__admin/orders", 405),
        (Method::GET, "/__admin/reset", 405),
    ] {
        let res = c
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{method} {path}");
        if status == 405 {
            assert!(res.headers().contains_key("allow"));
        }
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    let res = c
        .post(format!("{base}/__admin/orders"))
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["field"], "body");
    assert_eq!(
        sb.moyasar().requests_received(),
        0,
        "admin traffic is not counted"
    );
}
