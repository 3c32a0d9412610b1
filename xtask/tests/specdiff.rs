//! `cargo xtask diff`: every kind of spec edit gets the class it has for callers, for an
//! OpenAPI provider (AfterPay, Moyasar, Optty) and a JSON Schema provider (OpenApp) alike.
//! Each case is one edit of a provider's normalized spec, the class it must get, and a word the
//! change's description must contain. Adding a case means adding a row.

use serde_json::{Value, json};
use xtask::specdiff::{Class, classify};
use xtask::{PROVIDERS, workspace_root};

fn normalized(name: &str) -> Value {
    PROVIDERS
        .iter()
        .find(|p| p.name == name)
        .unwrap()
        .normalized_spec(&workspace_root().unwrap())
        .unwrap()
        .openapi
}

/// Replaces (or with `None` removes) the value at a JSON pointer.
fn set(doc: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    let parent = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match (parent, value) {
        (Value::Object(map), Some(value)) => {
            map.insert(key, value);
        }
        (Value::Object(map), None) => {
            map.remove(&key);
        }
        (Value::Array(items), Some(value)) => items[key.parse::<usize>().unwrap()] = value,
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("{pointer} is not in an object or array"),
    }
}

const AFTERPAY_REQ: &str = "/components/schemas/RefundOrderRequest";
const AFTERPAY_ITEM: &str = "/components/schemas/RefundOrderItem";
const AFTERPAY_OK: &str = "/components/schemas/RefundOrderResponse";
const AFTERPAY_OP: &str = "/paths/~1api~1v3~1orders~1{orderNumber}~1refunds/post";
const MOYASAR_REQ: &str = "/components/schemas/RefundRequest";
const MOYASAR_OP: &str = "/paths/~1v1~1orders~1{id}~1refund/post";
const OPTTY_AMOUNT: &str = "/components/schemas/OrderRefundAmount/properties/amount";
const OPTTY_OK: &str = "/components/schemas/RefundResponse";
const OPENAPP_REQ: &str = "/components/schemas/RefundRequest";
const OPENAPP_ACK: &str = "/components/schemas/RefundAcknowledgement";
const OPENAPP_OP: &str = "/paths/~1merchant~1v1~1orders~1refund/post";

type Edit = (&'static str, String, Option<Value>);

/// (provider, edit, expected class, a word of the change's description).
fn cases() -> Vec<(&'static str, Edit, Class, &'static str)> {
    let at = |base: &str, rest: &str| format!("{base}{rest}");
    vec![
        // Requests: stricter breaks, looser is additive.
        (
            "openapp",
            (
                "caseId shorter",
                at(OPENAPP_REQ, "/properties/caseId/maxLength"),
                Some(json!(20)),
            ),
            Class::Breaking,
            "maxLength 36 -> 20",
        ),
        (
            "openapp",
            (
                "caseId longer",
                at(OPENAPP_REQ, "/properties/caseId/maxLength"),
                Some(json!(64)),
            ),
            Class::Additive,
            "maxLength 36 -> 64",
        ),
        (
            "openapp",
            (
                "notes limit dropped",
                at(OPENAPP_REQ, "/properties/notes/maxLength"),
                None,
            ),
            Class::Additive,
            "maxLength 500 -> none",
        ),
        (
            "openapp",
            (
                "reason value removed",
                at(OPENAPP_REQ, "/properties/reason/enum"),
                Some(json!(["OTHER", "RETURNED"])),
            ),
            Class::Breaking,
            "enum values removed",
        ),
        (
            "openapp",
            (
                "reason value added",
                at(OPENAPP_REQ, "/properties/reason/enum"),
                Some(json!(["OTHER", "RETURNED", "WARRANTY", "DAMAGED"])),
            ),
            Class::Additive,
            "enum values added",
        ),
        (
            "openapp",
            (
                "notes now required",
                at(OPENAPP_REQ, "/required"),
                Some(json!([
                    "amount",
                    "caseId",
                    "currency",
                    "notes",
                    "oaOrderId",
                    "reason",
                    "shopOrderId"
                ])),
            ),
            Class::Breaking,
            "now required",
        ),
        (
            "openapp",
            (
                "currency pattern added",
                at(OPENAPP_REQ, "/properties/currency/pattern"),
                Some(json!("^[A-Z]{3}$")),
            ),
            Class::Breaking,
            "pattern",
        ),
        (
            "openapp",
            (
                "new required field",
                at(OPENAPP_REQ, "/properties/channel"),
                Some(json!({"type": "string"})),
            ),
            Class::Additive,
            "property added (optional)",
        ),
        (
            "afterpay",
            (
                "captureNumber retyped",
                at(AFTERPAY_REQ, "/properties/captureNumber/type"),
                Some(json!("integer")),
            ),
            Class::Breaking,
            "type",
        ),
        (
            "afterpay",
            (
                "items limit lowered",
                at(AFTERPAY_REQ, "/properties/items/maxItems"),
                Some(json!(100)),
            ),
            Class::Breaking,
            "maxItems 200 -> 100",
        ),
        (
            "afterpay",
            (
                "transactionReference removed",
                at(AFTERPAY_REQ, "/properties/transactionReference"),
                None,
            ),
            Class::Breaking,
            "property removed",
        ),
        (
            "afterpay",
            (
                "captureNumber no longer required",
                at(AFTERPAY_REQ, "/required"),
                Some(json!([])),
            ),
            Class::Additive,
            "no longer required",
        ),
        (
            "afterpay",
            (
                "item productId shorter",
                at(AFTERPAY_ITEM, "/properties/productId/maxLength"),
                Some(json!(50)),
            ),
            Class::Breaking,
            "maxLength 100 -> 50",
        ),
        (
            "moyasar",
            (
                "amount ceiling lowered",
                at(MOYASAR_REQ, "/properties/amount/maximum"),
                Some(json!(1000)),
            ),
            Class::Breaking,
            "maximum 100000000 -> 1000",
        ),
        (
            "moyasar",
            (
                "amount floor lowered",
                at(MOYASAR_REQ, "/properties/amount/minimum"),
                Some(json!(0)),
            ),
            Class::Additive,
            "minimum 1 -> 0",
        ),
        (
            "optty",
            (
                "amount step finer",
                at(OPTTY_AMOUNT, "/multipleOf"),
                Some(json!(0.001)),
            ),
            Class::Breaking,
            "multipleOf",
        ),
        // Answers: wider breaks our decoding, narrower has no effect.
        (
            "optty",
            (
                "refundStatus becomes an enum",
                at(OPTTY_OK, "/properties/refundStatus/enum"),
                Some(json!(["SUCCESSFUL", "PENDING"])),
            ),
            Class::NoEffect,
            "enum added",
        ),
        (
            "afterpay",
            (
                "totals may be null",
                at(AFTERPAY_OK, "/properties/totalCapturedAmount/nullable"),
                Some(json!(true)),
            ),
            Class::Breaking,
            "nullable",
        ),
        (
            "afterpay",
            (
                "refundNumbers no longer required",
                at(AFTERPAY_OK, "/required"),
                Some(json!(["totalAuthorizedAmount", "totalCapturedAmount"])),
            ),
            Class::Breaking,
            "no longer required",
        ),
        (
            "afterpay",
            (
                "new optional total",
                at(AFTERPAY_OK, "/properties/totalVatAmount"),
                Some(json!({"type": "number"})),
            ),
            Class::Additive,
            "property added (optional)",
        ),
        (
            "openapp",
            (
                "ack caseId gains a limit",
                at(OPENAPP_ACK, "/properties/caseId/maxLength"),
                Some(json!(36)),
            ),
            Class::NoEffect,
            "maxLength none -> 36",
        ),
        (
            "openapp",
            (
                "ack status retyped",
                at(OPENAPP_ACK, "/properties/status/type"),
                Some(json!("integer")),
            ),
            Class::Breaking,
            "type",
        ),
        // Statuses and operations.
        (
            "openapp",
            (
                "a 422 is documented",
                at(OPENAPP_OP, "/responses/422"),
                Some(json!({"description": "validation"})),
            ),
            Class::Breaking,
            "status added",
        ),
        (
            "openapp",
            ("the 409 is dropped", at(OPENAPP_OP, "/responses/409"), None),
            Class::NoEffect,
            "status removed",
        ),
        (
            "moyasar",
            (
                "operation renamed",
                at(MOYASAR_OP, "/operationId"),
                Some(json!("createRefund")),
            ),
            Class::Breaking,
            "operationId",
        ),
        (
            "afterpay",
            (
                "auth required differently",
                at(AFTERPAY_OP, "/security"),
                Some(json!([{"oauth": []}])),
            ),
            Class::Breaking,
            "security",
        ),
        // Text only.
        (
            "afterpay",
            (
                "description reworded",
                at(AFTERPAY_REQ, "/properties/captureNumber/description"),
                Some(json!("The capture to refund")),
            ),
            Class::NoEffect,
            "description changed",
        ),
    ]
}

#[test]
fn every_spec_edit_gets_its_class() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (provider, (name, pointer, value), class, word) in cases {
        let old = normalized(provider);
        let mut new = old.clone();
        set(&mut new, &pointer, value);
        let changes = classify(provider, &old, &new);
        let hit = changes
            .iter()
            .any(|c| c.class == class && c.to_string().contains(word));
        if !hit {
            let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{provider} {name}: expected {class} with {word:?}, got:\n    {}",
                shown.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_unchanged_spec_has_no_changes_and_every_change_names_its_consumers() {
    for provider in PROVIDERS {
        let spec = normalized(provider.name);
        assert!(
            classify(provider.name, &spec, &spec).is_empty(),
            "{}",
            provider.name
        );
    }
    let old = normalized("openapp");
    let mut new = old.clone();
    set(
        &mut new,
        &format!("{OPENAPP_REQ}/properties/caseId/maxLength"),
        Some(json!(64)),
    );
    let change = &classify("openapp", &old, &new)[0];
    assert!(
        change
            .consumers
            .iter()
            .any(|c| c.contains("facade/src/providers/openapp")),
        "{change}"
    );
    assert!(
        change
            .consumers
            .iter()
            .any(|c| c.contains("sandbox/src/openapp.rs")),
        "{change}"
    );
}
