//! `cargo xtask diff`: every kind of spec edit gets the class it has for callers, for an
//! OpenAPI provider (AfterPay, Moyasar, Optty) and a JSON Schema provider (OpenApp) alike.
//! Each case is one edit of a provider's normalized spec, the class it must get, and a word the
//! change's description must contain. Adding a case means adding a row.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use xtask::specdiff::{Class, MAPPED_STATUSES, Report, classify, normalized_in, provider_diff};
use xtask::{Provider, generate, money, providers, surface, workspace_root};

/// Every provider of this checkout.
fn all() -> Vec<Provider> {
    providers(&workspace_root().unwrap()).unwrap()
}

/// The provider named `name`.
fn provider(name: &str) -> Provider {
    all()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no provider {name}"))
}

fn normalized(name: &str) -> Value {
    provider(name)
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
const MOYASAR_TRANSACTION: &str = "/components/schemas/Transaction";
const AFTERPAY_MESSAGE: &str = "/components/schemas/ResponseMessage";

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
        // Issue 18, item 2: a new value in an answer enum is breaking and names the transformer
        // that maps it; a status the facade maps from a plain string is breaking as soon as the
        // spec publishes its values, and names the function with the `match`.
        (
            "optty",
            (
                "refundStatus publishes its values",
                at(OPTTY_OK, "/properties/refundStatus/enum"),
                Some(json!(["SUCCESSFUL", "PENDING", "PARTIALLY_REFUNDED"])),
            ),
            Class::Breaking,
            "optty/transformers.rs refund_success maps `refundStatus`",
        ),
        (
            "moyasar",
            (
                "transaction status publishes its values",
                at(MOYASAR_TRANSACTION, "/properties/status/enum"),
                Some(json!([
                    "initiated",
                    "approved",
                    "failed",
                    "partially_refunded"
                ])),
            ),
            Class::Breaking,
            "moyasar/transformers.rs transaction_status",
        ),
        (
            "openapp",
            (
                "ack status publishes its values",
                at(OPENAPP_ACK, "/properties/status/enum"),
                Some(json!(["REGISTERED", "REJECTED"])),
            ),
            Class::Breaking,
            "openapp/transformers.rs refund_success",
        ),
        (
            "afterpay",
            (
                "error message type gains a value",
                at(AFTERPAY_MESSAGE, "/properties/type/enum"),
                Some(json!([
                    "BusinessError",
                    "TechnicalError",
                    "NotificationMessage",
                    "FraudError"
                ])),
            ),
            Class::Breaking,
            "enum values added: \"FraudError\" (the generated enum refuses them until regenerated",
        ),
        (
            "afterpay",
            (
                "error message type names its transformer",
                at(AFTERPAY_MESSAGE, "/properties/type/enum"),
                Some(json!([
                    "BusinessError",
                    "TechnicalError",
                    "NotificationMessage",
                    "FraudError"
                ])),
            ),
            Class::Breaking,
            "afterpay/transformers.rs refund_result",
        ),
        // Item 3: a dangling `$ref` is reported as such; `uniqueItems` and every keyword the
        // surface snapshot shows are compared (the loop test below tries each of them).
        (
            "moyasar",
            (
                "Transaction renamed, its reference left dangling",
                MOYASAR_TRANSACTION.to_owned(),
                None,
            ),
            Class::Breaking,
            "dangling $ref #/components/schemas/Transaction",
        ),
        (
            "afterpay",
            ("answer schema renamed away", at(AFTERPAY_OK, ""), None),
            Class::Breaking,
            "dangling $ref #/components/schemas/RefundOrderResponse",
        ),
        (
            "moyasar",
            (
                "answer schema renamed by the vendor",
                at(
                    MOYASAR_OP,
                    "/responses/200/content/application~1json/schema/$ref",
                ),
                Some(json!("#/components/schemas/Transaction")),
            ),
            Class::Breaking,
            "$ref #/components/schemas/Order -> #/components/schemas/Transaction (the generated type is renamed)",
        ),
        (
            "afterpay",
            (
                "items must be unique",
                at(AFTERPAY_REQ, "/properties/items/uniqueItems"),
                Some(json!(true)),
            ),
            Class::Breaking,
            "uniqueItems none -> true",
        ),
        (
            "openapp",
            (
                "request closed to unknown fields",
                at(OPENAPP_REQ, "/additionalProperties"),
                Some(json!(true)),
            ),
            Class::Additive,
            "additionalProperties false -> true",
        ),
        (
            "openapp",
            (
                "acknowledgement closed to unknown fields",
                at(OPENAPP_ACK, "/additionalProperties"),
                Some(json!(false)),
            ),
            Class::Breaking,
            "refuses any field it does not know",
        ),
        (
            "moyasar",
            (
                "amount exclusive floor",
                at(MOYASAR_REQ, "/properties/amount/exclusiveMinimum"),
                Some(json!(true)),
            ),
            Class::Breaking,
            "exclusiveMinimum none -> true",
        ),
        (
            "afterpay",
            (
                "captureNumber read-only",
                at(AFTERPAY_REQ, "/properties/captureNumber/readOnly"),
                Some(json!(true)),
            ),
            Class::Breaking,
            "we send it, and must no longer",
        ),
        (
            "afterpay",
            (
                "refundNumbers write-only",
                at(AFTERPAY_OK, "/properties/refundNumbers/writeOnly"),
                Some(json!(true)),
            ),
            Class::Breaking,
            "the answer no longer carries it",
        ),
        (
            "openapp",
            (
                "reason default changed",
                at(OPENAPP_REQ, "/properties/reason/default"),
                Some(json!("OTHER")),
            ),
            Class::Additive,
            "default none -> \"OTHER\"",
        ),
        (
            "openapp",
            (
                "currency fixed",
                at(OPENAPP_REQ, "/properties/currency/const"),
                Some(json!("PLN")),
            ),
            Class::Breaking,
            "const none -> \"PLN\"",
        ),
        // Item 4: a request constraint names the generated constant that states it, which is
        // what a test or an embedded payload reads instead of restating the value.
        (
            "openapp",
            (
                "notes widened",
                at(OPENAPP_REQ, "/properties/notes/maxLength"),
                Some(json!(1000)),
            ),
            Class::Additive,
            "openapp_api::constraints::refund_order::notes::MAX_LENGTH",
        ),
        (
            "afterpay",
            (
                "item productId constant",
                at(AFTERPAY_ITEM, "/properties/productId/maxLength"),
                Some(json!(50)),
            ),
            Class::Breaking,
            "afterpay_api::constraints::refund_order::items::items::product_id::MAX_LENGTH",
        ),
        (
            "afterpay",
            (
                "transactionReference now required names REQUIRED",
                at(AFTERPAY_REQ, "/required"),
                Some(json!(["captureNumber", "transactionReference"])),
            ),
            Class::Breaking,
            "afterpay_api::constraints::refund_order::transaction_reference::REQUIRED",
        ),
        // Item 5: a money field that turns into a float points to the overlay, not to an f64.
        (
            "moyasar",
            (
                "amount integer -> number",
                at(MOYASAR_REQ, "/properties/amount/type"),
                Some(json!("number")),
            ),
            Class::Breaking,
            "now generated as f64: if it is money, add `format: decimal` in specs/moyasar/overlay.json",
        ),
        (
            "afterpay",
            (
                "vatAmount loses format decimal",
                at(AFTERPAY_ITEM, "/properties/vatAmount/format"),
                None,
            ),
            Class::Additive,
            "add `format: decimal` in specs/afterpay/overlay.json",
        ),
        // Reads and webhooks: answers to us, so a wider schema breaks, and the change names the
        // read-back or notification code instead of the refund's transformer.
        (
            "afterpay",
            (
                "Get Refunds amount becomes text",
                "/components/schemas/Refund/properties/amount/type".to_owned(),
                Some(json!("string")),
            ),
            Class::Breaking,
            "(getRefunds) 200 .refunds[] .amount",
        ),
        (
            "afterpay",
            (
                "Get Order refunds name the read mapping",
                "/components/schemas/Refund/properties/amount/type".to_owned(),
                Some(json!("string")),
            ),
            Class::Breaking,
            "afterpay/ read mapping",
        ),
        (
            "optty",
            (
                "notification status becomes an integer",
                "/components/schemas/OrderNotificationData/properties/status/type".to_owned(),
                Some(json!("integer")),
            ),
            Class::Breaking,
            "webhook POST orderNotification (orderNotification) body .data .status",
        ),
        (
            "optty",
            (
                "notification event closed to an enum",
                "/components/schemas/OrderNotification/properties/event/enum".to_owned(),
                Some(json!(["ORDER_STATUS_UPDATE"])),
            ),
            Class::NoEffect,
            "notification handling",
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
    for provider in &all() {
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

/// Item 3: every keyword the surface snapshot shows (and `type` and `format`, shown as the type)
/// is compared, each by a rule of its own: a keyword added to the surface without a rule in the
/// diff is reported as "no rule classifies this keyword yet", and fails here.
#[test]
fn every_keyword_the_surface_shows_is_compared() {
    let sample = |key: &str| -> Value {
        match key {
            "nullable" | "exclusiveMinimum" | "exclusiveMaximum" | "uniqueItems" | "readOnly"
            | "writeOnly" => json!(true),
            "additionalProperties" => json!(false),
            "pattern" | "const" | "default" => json!("^a"),
            "format" => json!("email"),
            "type" => json!("integer"),
            "enum" => json!(["a"]),
            _ => json!(7),
        }
    };
    let old = normalized("openapp");
    let mut failures = Vec::new();
    for key in ["type", "format"]
        .into_iter()
        .chain(surface::KEYWORDS.iter().copied())
    {
        for base in [OPENAPP_REQ, OPENAPP_ACK] {
            let mut new = old.clone();
            set(
                &mut new,
                &format!("{base}/properties/caseId/{key}"),
                Some(sample(key)),
            );
            let changes = classify("openapp", &old, &new);
            let compared = changes
                .iter()
                .any(|c| c.detail.starts_with(key) && !c.detail.contains("no rule"));
            if !compared {
                failures.push(format!("{key} in {base}: {changes:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Item 2: each status the facade maps from a plain string is named with the function that maps
/// it; the function is still there, and the field is still in the spec.
#[test]
fn every_mapped_status_names_an_existing_function_and_field() {
    let root = workspace_root().unwrap();
    for mapped in MAPPED_STATUSES {
        let source = std::fs::read_to_string(root.join(mapped.file))
            .unwrap_or_else(|e| panic!("{}: {e}", mapped.file));
        assert!(
            source.contains(&format!("fn {}(", mapped.function)),
            "{} has no fn {}: update xtask::specdiff::MAPPED_STATUSES",
            mapped.file,
            mapped.function
        );
        let spec = normalized(mapped.provider);
        let field = format!(
            "/components/schemas/{}/properties/{}",
            mapped.schema, mapped.property
        );
        assert!(
            spec.pointer(&field).is_some(),
            "{} {field} is not in the spec",
            mapped.provider
        );
    }
}

/// A scratch copy of `specs/` under a fresh root (enough for `generate` and normalizing).
fn scratch_specs(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "xtask-specdiff-{label}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&workspace_root().unwrap().join("specs"), &dir.join("specs"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Edits a JSON file of a scratch root with `edit`.
fn edit_json(root: &Path, file: &str, edit: impl FnOnce(&mut Value)) {
    let path = root.join(file);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// Item 3: an overlay action that no longer applies (the vendor renamed the schema it targets)
/// is reported under its provider, the vendor's changes are still classified, and every other
/// provider is reported in full.
#[test]
fn a_stale_overlay_does_not_hide_the_other_providers() {
    let scratch = scratch_specs("stale-overlay");
    let path = scratch.join("specs/optty/openapi.json");
    let renamed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("RefundResponse", "OrderRefundResponse");
    std::fs::write(&path, renamed).unwrap();
    let real = workspace_root().unwrap();
    let providers = all()
        .iter()
        .map(|p| {
            provider_diff(
                p,
                "HEAD",
                normalized_in(p, &p.spec_dir(&real)),
                normalized_in(p, &p.spec_dir(&scratch)),
            )
        })
        .collect();
    let report = Report {
        rev: "HEAD".to_owned(),
        providers,
    };
    let text = report.to_string();
    for provider in &all() {
        assert!(
            text.contains(&format!("{} (HEAD -> working tree)", provider.name)),
            "{text}"
        );
    }
    let optty = report
        .providers
        .iter()
        .find(|p| p.provider == "optty")
        .unwrap();
    assert!(
        optty
            .errors
            .iter()
            .any(|e| e.contains("specs/optty/overlay.json") && e.contains("selects nothing")),
        "{text}"
    );
    // The vendor's own change, classified with the stale actions skipped.
    assert!(
        optty.changes.iter().any(|c| c.class == Class::Breaking),
        "{text}"
    );
    assert!(
        report
            .providers
            .iter()
            .filter(|p| p.provider != "optty")
            .all(|p| p.errors.is_empty() && p.changes.is_empty()),
        "{text}"
    );
    // Generation still refuses the spec.
    assert!(generate(&scratch, &provider("optty")).is_err());
    assert!(generate(&scratch, &provider("moyasar")).is_ok());
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Item 5: no number of today's specs would be an f64 unless it says so (`format: double`, not
/// money).
#[test]
fn no_spec_has_a_number_that_would_be_f64_money() {
    for provider in &all() {
        let found = money::check(provider, &normalized(provider.name));
        assert!(found.is_empty(), "{}: {found:?}", provider.name);
    }
}

/// Item 5: a number that would become an f64 is refused by `generate` (and reported by `diff`)
/// with its JSON pointer and the overlay action that fixes it, whatever made it a float: the
/// vendor's type change, an overlay that lost `format: decimal`, or `format: double` on money.
#[test]
fn a_number_that_would_be_f64_is_refused_naming_the_overlay() {
    type Case = (
        &'static str,
        &'static str,
        fn(&mut Value),
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        (
            "moyasar",
            "specs/moyasar/openapi.json",
            |doc| {
                doc["components"]["schemas"]["RefundRequest"]["properties"]["amount"]["type"] =
                    json!("number");
            },
            &[
                "/components/schemas/RefundRequest/properties/amount",
                "specs/moyasar/overlay.json",
                "$.components.schemas.RefundRequest.properties.amount",
                "Do not follow the compiler to an f64",
            ],
        ),
        (
            "afterpay",
            "specs/afterpay/overlay.json",
            |doc| {
                doc["actions"][0]["target"] = json!(
                    "$.components.schemas.RefundOrderItem.properties['netUnitPrice','grossUnitPrice','vatPercent','quantity']"
                );
            },
            &[
                "/components/schemas/RefundOrderItem/properties/vatAmount",
                "without `format: decimal`",
            ],
        ),
        (
            "afterpay",
            "specs/afterpay/openapi.json",
            |doc| {
                // A new total the overlay does not know yet, published as a double.
                doc["components"]["schemas"]["RefundOrderResponse"]["properties"]["totalVatAmount"] =
                    json!({"type": "number", "format": "double"});
            },
            &[
                "/components/schemas/RefundOrderResponse/properties/totalVatAmount",
                "money field declared `type: number, format: double`",
            ],
        ),
        (
            "openapp",
            "specs/openapp/overlay.json",
            |doc| {
                doc["actions"].as_array_mut().unwrap().truncate(1);
            },
            &[
                "/components/schemas/RefundProduct/properties/refundedQuantity",
                "$.definitions.RefundProduct.properties.refundedQuantity",
                "If it is not money",
            ],
        ),
    ];
    for (name, file, edit, words) in cases {
        let scratch = scratch_specs(name);
        edit_json(&scratch, file, edit);
        let provider = provider(name);
        let err = match generate(&scratch, &provider) {
            Ok(_) => panic!("{name} {file}: generated"),
            Err(err) => format!("{err:#}"),
        };
        for word in *words {
            assert!(err.contains(word), "{name} {file}: {word:?} not in {err}");
        }
        let diff = provider_diff(
            &provider,
            "HEAD",
            normalized_in(&provider, &provider.spec_dir(&workspace_root().unwrap())),
            normalized_in(&provider, &provider.spec_dir(&scratch)),
        );
        assert!(
            diff.errors.iter().any(|e| e.contains(words[0])),
            "{name}: diff does not report it: {diff:?}"
        );
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
