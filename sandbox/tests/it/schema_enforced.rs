//! The sandbox enforces each provider's request schema as a whole, from the spec alone: a spec
//! change reaches it with no edit of the sandbox.
//!
//! Each test takes a provider's normalized spec (`<provider>_api::NORMALIZED_OPENAPI`, what
//! `cargo xtask generate` writes from specs/), changes it in memory the way a vendor would (a
//! scratch copy: nothing on disk changes), starts a sandbox on it through the provider's
//! settings (`config.optty.spec`..) and sends real requests: what the unchanged spec accepts, the
//! changed one refuses in the provider's own 400 (422) shape naming the field, and a request that
//! follows the change is accepted again.

use std::borrow::Cow;

use crate::common::*;
use sandbox::{OrderSeed, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// The request body schema of `path`'s POST operation in a normalized spec, for a test to change.
fn body_schema<'a>(spec: &'a mut Value, path: &str) -> &'a mut Value {
    let reference =
        spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: the body schema is a $ref"))
            .to_owned();
    let pointer = reference.trim_start_matches('#');
    spec.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{reference} resolves"))
}

/// `spec` (JSON text) changed by `change` on the body schema of `path`, as JSON text.
fn changed(spec: &str, path: &str, change: impl FnOnce(&mut Value)) -> Cow<'static, str> {
    let mut spec: Value = serde_json::from_str(spec).unwrap();
    change(body_schema(&mut spec, path));
    Cow::Owned(spec.to_string())
}

/// A new required string property `name`.
fn require_new(name: &str) -> impl FnOnce(&mut Value) {
    move |schema| {
        schema["properties"][name] = json!({"type": "string", "description": "new"});
        require(name)(schema);
    }
}

/// An existing property made required.
fn require(name: &str) -> impl FnOnce(&mut Value) {
    move |schema| {
        let required = schema["required"].as_array_mut().unwrap();
        assert!(!required.contains(&json!(name)), "{name} is optional today");
        required.push(json!(name));
    }
}

/// Both sandboxes, today's specs and the changed ones, with the same orders.
async fn today_and_changed(config: SandboxConfig) -> [Sandbox; 2] {
    let both = [start().await, Sandbox::start(config).await.unwrap()];
    for sb in &both {
        sb.optty()
            .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
        sb.afterpay()
            .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
        sb.moyasar()
            .seed_order(OrderSeed::new("MY-1", "SAR", dec("100.00")));
        sb.openapp()
            .seed_order(OrderSeed::new("SHOP-1", "PLN", dec("100.00")).oa_order_id("OA-1"));
    }
    both
}

#[tokio::test]
async fn optty_new_required_store_code_is_refused_with_no_hand_edit() {
    let mut config = SandboxConfig::default();
    config.optty.spec = changed(
        optty_api::NORMALIZED_OPENAPI,
        "/orders/{orderReference}/refund",
        require_new("storeCode"),
    );
    let [today, changed] = today_and_changed(config).await;
    let c = client();
    let without = optty_body("r-1", "10.00", "AUD");

    let token = optty_token(&today, &c).await;
    let res = optty_refund(&today, &c, &token, "ORD-1", without.clone());
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);

    let token = optty_token(&changed, &c).await;
    let res = optty_refund(&changed, &c, &token, "ORD-1", without.clone());
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            400,
            r#"{"statusCode":400,"message":"storeCode should not be empty","error":"Bad Request"}"#
                .to_owned()
        )
    );
    assert_eq!(changed.optty().refund_count(), 0);

    let with = without.replacen('{', r#"{"storeCode":"S-1","#, 1);
    let res = optty_refund(&changed, &c, &token, "ORD-1", with);
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);
    assert_eq!(changed.optty().refund_count(), 1);
}

#[tokio::test]
async fn afterpay_transaction_reference_made_required_is_refused_with_no_hand_edit() {
    let mut config = SandboxConfig::default();
    config.afterpay.spec = changed(
        afterpay_api::NORMALIZED_OPENAPI,
        "/api/v3/orders/{orderNumber}/refunds",
        require("transactionReference"),
    );
    let [today, changed] = today_and_changed(config).await;
    let c = client();
    let without = afterpay_body("000000001", "10.00", "1", None);

    let res = afterpay_refund(&today, &c, "AP-1", without.clone());
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);

    let res = afterpay_refund(&changed, &c, "AP-1", without);
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            400,
            r#"[{"type":"BusinessError","code":"ValidationError","message":"'transactionReference' is required.","actionCode":"AskConsumerToReEnterData","fieldReference":"transactionReference"}]"#
                .to_owned()
        )
    );
    assert_eq!(changed.afterpay().refund_count(), 0);

    let with = afterpay_body("000000001", "10.00", "1", Some("tx-1"));
    let res = afterpay_refund(&changed, &c, "AP-1", with);
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);
    assert_eq!(changed.afterpay().refund_count(), 1);
}

#[tokio::test]
async fn moyasar_and_openapp_new_required_fields_are_refused_with_no_hand_edit() {
    let mut config = SandboxConfig::default();
    config.moyasar.spec = changed(
        moyasar_api::NORMALIZED_OPENAPI,
        "/v1/orders/{id}/refund",
        require_new("reason"),
    );
    config.openapp.spec = changed(
        openapp_api::NORMALIZED_OPENAPI,
        "/merchant/v1/orders/refund",
        require("notes"),
    );
    let [today, changed] = today_and_changed(config).await;
    let c = client();

    let moyasar = r#"{"amount":100}"#.to_owned();
    let res = moyasar_refund(&today, &c, "MY-1", moyasar.clone());
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);
    let res = moyasar_refund(&changed, &c, "MY-1", moyasar);
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            422,
            r#"{"message":"Data validation failed","errors":{"reason":["The value is required."]}}"#
                .to_owned()
        )
    );
    let res = moyasar_refund(
        &changed,
        &c,
        "MY-1",
        r#"{"amount":100,"reason":"x"}"#.into(),
    );
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);

    let openapp = openapp_body("OA-1", "SHOP-1", 100, "case-1");
    let res = openapp_refund(&today, &c, openapp.clone());
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);
    let res = openapp_refund(&changed, &c, openapp.clone());
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            400,
            r#"{"exception":"ValidationException","message":"notes is required"}"#.to_owned()
        )
    );
    let with = openapp.replacen('{', r#"{"notes":"n","#, 1);
    let res = openapp_refund(&changed, &c, with);
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);
    assert_eq!(changed.moyasar().refund_count(), 1);
    assert_eq!(changed.openapp().refund_count(), 1);
}

/// A keyword a spec changes or adds is enforced the same way: a bound lowered, a length
/// narrowed, a pattern added where there was none.
#[tokio::test]
async fn changed_and_new_keywords_are_enforced_with_no_hand_edit() {
    let mut config = SandboxConfig::default();
    config.moyasar.spec = changed(
        moyasar_api::NORMALIZED_OPENAPI,
        "/v1/orders/{id}/refund",
        |schema| schema["properties"]["amount"]["maximum"] = json!(500),
    );
    config.openapp.spec = changed(
        openapp_api::NORMALIZED_OPENAPI,
        "/merchant/v1/orders/refund",
        |schema| schema["properties"]["caseId"]["maxLength"] = json!(4),
    );
    config.optty.spec = changed(
        optty_api::NORMALIZED_OPENAPI,
        "/orders/{orderReference}/refund",
        |schema| schema["properties"]["refundReference"]["pattern"] = json!("^R-[0-9]+$"),
    );
    let [today, changed] = today_and_changed(config).await;
    let c = client();

    for (sb, expected) in [(&today, 200), (&changed, 422)] {
        let res = moyasar_refund(sb, &c, "MY-1", r#"{"amount":501}"#.into());
        let (status, text) = read(res.send().await.unwrap()).await;
        assert_eq!(status, expected, "{text}");
        if expected == 422 {
            assert_eq!(
                text,
                r#"{"message":"Data validation failed","errors":{"amount":["The value must be less than or equal to 500."]}}"#
            );
        }
    }
    for (sb, expected) in [(&today, 200), (&changed, 400)] {
        let res = openapp_refund(sb, &c, openapp_body("OA-1", "SHOP-1", 100, "case-1"));
        let (status, text) = read(res.send().await.unwrap()).await;
        assert_eq!(status, expected, "{text}");
        if expected == 400 {
            assert_eq!(
                text,
                r#"{"exception":"ValidationException","message":"caseId must be at most 4 characters"}"#
            );
        }
    }
    for (sb, expected) in [(&today, 200), (&changed, 400)] {
        let token = optty_token(sb, &c).await;
        let res = optty_refund(sb, &c, &token, "ORD-1", optty_body("r-1", "1.00", "AUD"));
        let (status, text) = read(res.send().await.unwrap()).await;
        assert_eq!(status, expected, "{text}");
        if expected == 400 {
            assert_eq!(
                text,
                r#"{"statusCode":400,"message":"refundReference must match ^R-[0-9]+$ regular expression","error":"Bad Request"}"#
            );
        }
    }
}

/// A spec the sandbox cannot serve from fails the start, naming the provider.
#[tokio::test]
async fn a_spec_without_the_route_fails_the_start() {
    let mut spec: Value = serde_json::from_str(optty_api::NORMALIZED_OPENAPI).unwrap();
    spec["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/orders/{orderReference}/refund");
    let mut config = SandboxConfig::default();
    config.optty.spec = Cow::Owned(spec.to_string());
    let error = Sandbox::start(config).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("optty"), "{error}");
}

/// Where the schema's f64 reading of a number would be wrong, the exact reading of the number as
/// sent still refuses it.
#[tokio::test]
async fn amounts_stay_exact_where_f64_would_be_wrong() {
    let sb = start().await;
    let c = client();
    // As an f64, 123456789012345.675 is 123456789012345.67, a multiple of 0.01.
    sb.optty()
        .seed_order(OrderSeed::new("K-1", "KWD", dec("200000000000000.000")));
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(
        &sb,
        &c,
        &token,
        "K-1",
        optty_body("r-1", "123456789012345.675", "KWD"),
    );
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            400,
            r#"{"statusCode":400,"message":"refundAmount.amount must be a multiple of 0.01","error":"Bad Request"}"#
                .to_owned()
        )
    );
    let res = optty_refund(
        &sb,
        &c,
        &token,
        "K-1",
        optty_body("r-2", "123456789012345.67", "KWD"),
    );
    assert_eq!(read(res.send().await.unwrap()).await.0, 200);

    // Draft 4 takes 1e20 (an f64 past 2^63) for an integer; no i64 holds it.
    sb.openapp()
        .seed_order(OrderSeed::new("SHOP-1", "PLN", dec("100.00")).oa_order_id("OA-1"));
    let body =
        openapp_body("OA-1", "SHOP-1", 1, "case-1").replace(r#""amount":1,"#, r#""amount":1e20,"#);
    let res = openapp_refund(&sb, &c, body);
    assert_eq!(
        read(res.send().await.unwrap()).await,
        (
            400,
            r#"{"exception":"ValidationException","message":"amount must be an integer"}"#
                .to_owned()
        )
    );

    // A number no decimal holds is a number to the schema.
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
    let res = afterpay_refund(
        &sb,
        &c,
        "AP-1",
        afterpay_body("000000001", "1", "1e30", None),
    );
    let (status, text) = read(res.send().await.unwrap()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(r#""message":"'items[0].quantity' is out of range.","actionCode":"AskConsumerToReEnterData","fieldReference":"items[0].quantity""#),
        "{text}"
    );
    assert_eq!(sb.optty().refund_count(), 1);
    assert_eq!(sb.openapp().refund_count(), 0);
    assert_eq!(sb.afterpay().refund_count(), 0);
}
