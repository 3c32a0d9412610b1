//! The providers' read routes, answered from the same ledger as the refund routes: Optty's
//! Transaction Details, AfterPay's Get Order and Get Refunds, Moyasar's Retrieve Order (OpenApp
//! publishes none). Each answer decodes through the generated type of its operation; auth is
//! enforced; the read delay hides a new refund until it passes; a settlement changes what reads
//! say; faults target reads without touching refunds and the other way round; Optty's
//! notifications arrive, in order, are retried, and never hold up an answer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::Client;
use sandbox::credentials::*;
use sandbox::optty::{Delivery, NotifySettings};
use sandbox::{Fault, Match, Operation, OrderSeed, RefundStatus, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Decodes `body` as `T`, failing with the body text.
fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> T {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

fn value(body: &str) -> Value {
    decode("JSON", body)
}

/// Optty's Transaction Details of `order`, with `token` (none: no Authorization).
async fn optty_details(
    sb: &Sandbox,
    c: &Client,
    token: Option<&str>,
    order: &str,
) -> (u16, String) {
    let mut req = c.post(sb.optty().details_url(order));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    read(req.send().await.unwrap()).await
}

/// A GET on `path` of the provider's server with its demo credentials.
async fn get(sb: &Sandbox, c: &Client, p: &str, path: &str) -> (u16, String) {
    let url = format!("{}{path}", provider(sb, p).base_url());
    let req = match p {
        "afterpay" => c.get(url).header("X-Auth-Key", AFTERPAY_API_KEY),
        "moyasar" => c.get(url).bearer_auth(MOYASAR_SECRET_KEY),
        other => panic!("{other} has no GET read"),
    };
    read(req.send().await.unwrap()).await
}

/// Whether `text` is an RFC 3339 UTC time as the sandbox writes them (`..T..Z`, optional
/// milliseconds).
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    text.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && text.ends_with('Z')
}

// ---------------------------------------------------------------------------------------------
// Optty: Transaction Details
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn optty_details_lists_the_ledgers_refunds_by_refund_reference() {
    use optty_api::types::{ErrorResponse, TransactionDetails};

    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")).refunded(dec("5.00")));
    let c = client();
    let token = optty_token(&sb, &c).await;

    // Before any refund: the order, no refunds.
    let (status, body) = optty_details(&sb, &c, Some(&token), "ORD-1").await;
    assert_eq!(status, 200, "{body}");
    let details: TransactionDetails = decode("details 200", &body);
    assert_eq!(details.merchant_reference.as_deref(), Some("ORD-1"));
    assert_eq!(details.amount.map(|a| a.get()), Some(dec("100.00")));
    assert_eq!(details.currency.as_deref(), Some("AUD"));
    assert_eq!(details.status.as_deref(), Some("SUCCESSFUL"));
    assert!(details.refunds.is_empty(), "{body}");
    assert_eq!(details.order_captures.len(), 1);
    assert_eq!(value(&body)["amount"], "100.00", "a string, as the sample");
    assert_eq!(value(&body)["failureReason"], Value::Null);

    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("RF-1", "10.5", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();

    let (status, body) = optty_details(&sb, &c, Some(&token), "ORD-1").await;
    assert_eq!(status, 200, "{body}");
    let details: TransactionDetails = decode("details 200", &body);
    let [refund] = details.refunds.as_slice() else {
        panic!("one refund: {body}")
    };
    assert_eq!(
        refund.refund_id.as_deref(),
        Some("RF-1"),
        "our refundReference"
    );
    assert_ne!(answer["bnplRefundId"], "RF-1");
    assert_eq!(refund.amount.map(|a| a.get()), Some(dec("10.50")));
    assert_eq!(value(&body)["refunds"][0]["amount"], "10.50");
    assert_eq!(refund.currency.as_deref(), Some("AUD"));
    assert_eq!(refund.status.as_deref(), Some("SUCCESSFUL"));
    assert_eq!(
        refund.refund_reason.as_deref(),
        Some("Please refund this order")
    );
    assert_eq!(refund.refund_failure_reason.as_deref(), Some(""));
    assert!(
        refund.created_at.as_deref().is_some_and(is_rfc3339),
        "{body}"
    );

    // No body, `{}`, and the optional merchantId are all accepted; a body that is not JSON is
    // not.
    let url = sb.optty().details_url("ORD-1");
    for req in [
        c.post(&url)
            .header("content-type", "application/json")
            .body("{}"),
        c.post(format!("{url}?merchantId=M-1")),
    ] {
        let (status, again) = read(req.bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!((status, &again), (200, &body));
    }
    let (status, bad) = read(
        c.post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let _: ErrorResponse = decode("details 400", &bad);

    // Auth as the refund route, with the page's 401 sample.
    for token in [None, Some("sbx-optty.unknown")] {
        let (status, body) = optty_details(&sb, &c, token, "ORD-1").await;
        assert_eq!(status, 401);
        assert_eq!(
            value(&body),
            json!({"statusCode":401,"message":"You are not authorized to view this transaction...!","error":"Unauthorized"})
        );
    }
    // An unknown order: the refund route's 404.
    let (status, body) = optty_details(&sb, &c, Some(&token), "NOPE").await;
    assert_eq!(
        (status, value(&body)),
        (404, json!({"statusCode":404,"message":"Not Found"}))
    );
    // Reads are not refunds: the ledger holds the one refund.
    assert_eq!(sb.optty().refund_count(), 1);
}

#[tokio::test]
async fn optty_details_follow_a_settlement_pending_to_successful_or_failed() {
    use optty_api::types::TransactionDetails;

    let sb = start().await;
    sb.optty().seed_order(
        OrderSeed::new("ORD-P", "AUD", dec("100.00")).refund_status(RefundStatus::Pending),
    );
    let c = client();
    let token = optty_token(&sb, &c).await;
    for reference in ["RF-A", "RF-B"] {
        let res = optty_refund(&sb, &c, &token, "ORD-P", optty_body(reference, "10", "AUD"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let statuses = |body: &str| -> Vec<(String, String, String)> {
        let details: TransactionDetails = decode("details", body);
        details
            .refunds
            .into_iter()
            .map(|r| {
                (
                    r.refund_id.unwrap_or_default(),
                    r.status.unwrap_or_default(),
                    r.refund_failure_reason.unwrap_or_default(),
                )
            })
            .collect()
    };
    let (_, body) = optty_details(&sb, &c, Some(&token), "ORD-P").await;
    assert_eq!(
        statuses(&body),
        [
            ("RF-A".into(), "PENDING".into(), String::new()),
            ("RF-B".into(), "PENDING".into(), String::new())
        ]
    );
    let id = |reference: &str| sb.optty().refunds_with_reference(reference)[0].id.clone();
    sb.optty()
        .settle("ORD-P", &id("RF-A"), RefundStatus::Succeeded)
        .unwrap();
    sb.optty()
        .settle("ORD-P", &id("RF-B"), RefundStatus::Failed)
        .unwrap();
    let (_, body) = optty_details(&sb, &c, Some(&token), "ORD-P").await;
    assert_eq!(
        statuses(&body),
        [
            ("RF-A".into(), "SUCCESSFUL".into(), String::new()),
            (
                "RF-B".into(),
                "FAILED".into(),
                sandbox::optty::FAILURE_REASON.into()
            )
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// AfterPay: Get Order, Get Refunds
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn afterpay_get_order_and_get_refunds_list_booked_refunds_negative() {
    use afterpay_api::types::{GetOrderResponse, GetRefundsResponse, ResponseMessage};

    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("300.00")).capture_number("CAP-7"));
    let c = client();

    // An order without refunds.
    let (status, body) = get(&sb, &c, "afterpay", "/api/v3/orders/AP-1").await;
    assert_eq!(status, 200, "{body}");
    let order: GetOrderResponse = decode("get order 200", &body);
    assert!(order.refunds.is_empty());
    let details = order.order_details.clone().unwrap();
    assert_eq!(details.order_number.as_deref(), Some("AP-1"));
    assert_eq!(details.currency.as_deref(), Some("EUR"));
    assert_eq!(
        details.total_gross_amount.map(|a| a.get()),
        Some(dec("300.00"))
    );
    assert_eq!(order.captures[0].capture_number.as_deref(), Some("CAP-7"));

    // A refund of two lines, then one of the whole rest without items.
    let items = r#"{"captureNumber":"CAP-7","transactionReference":"TR-1","items":[
        {"productId":"SKU-1","description":"Jacket","netUnitPrice":84.03,"grossUnitPrice":100.00,"quantity":1,"vatPercent":19,"vatAmount":15.97,"type":"PhysicalArticle","imageUrl":"https://example.com/j.jpg"},
        {"productId":"SHIP","description":"Shipping","netUnitPrice":4.2,"grossUnitPrice":5,"quantity":2,"vatPercent":19,"vatAmount":0.8}]}"#;
    let res = afterpay_refund(&sb, &c, "AP-1", items.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let number = answer["refundNumbers"][0].as_str().unwrap().to_owned();

    let (status, body) = get(
        &sb,
        &c,
        "afterpay",
        &format!("/api/v3/orders/AP-1/refunds/{number}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refunds: GetRefundsResponse = decode("get refunds 200", &body);
    let [refund] = refunds.refunds.as_slice() else {
        panic!("one refund: {body}")
    };
    assert_eq!(refund.refund_number.as_deref(), Some(number.as_str()));
    assert_eq!(refund.order_number.as_deref(), Some("AP-1"));
    assert_eq!(refund.amount.map(|a| a.get()), Some(dec("-110.00")));
    assert_eq!(refund.balance.map(|a| a.get()), Some(dec("-110.00")));
    assert_eq!(refund.currency.as_deref(), Some("EUR"));
    assert_eq!(refund.capture_number.as_deref(), Some("CAP-7"));
    assert!(refund.inserted_at.as_deref().is_some_and(is_rfc3339));
    let refund_id = refund.refund_id.clone().unwrap();
    assert!(uuid::Uuid::parse_str(&refund_id).is_ok(), "{refund_id}");
    let raw = value(&body);
    let lines = &raw["refunds"][0]["refundItems"];
    assert_eq!(
        lines[0],
        json!({"refundId": refund_id, "productId":"SKU-1","description":"Jacket","type":"PhysicalArticle",
               "netUnitPrice":-84.03,"grossUnitPrice":-100.00,"quantity":1,"vatPercent":19,"vatAmount":-15.97,
               "imageUrl":"https://example.com/j.jpg"})
    );
    assert_eq!(lines[1]["grossUnitPrice"], json!(-5));
    assert_eq!(lines[1]["quantity"], json!(2));
    assert_eq!(raw["refunds"][0].get("transactionReference"), None);

    let res = afterpay_refund(&sb, &c, "AP-1", r#"{"captureNumber":"CAP-7"}"#.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Get Order lists both, oldest first, with the same shape as Get Refunds.
    let (status, body) = get(&sb, &c, "afterpay", "/api/v3/orders/AP-1").await;
    assert_eq!(status, 200, "{body}");
    let order: GetOrderResponse = decode("get order 200", &body);
    let amounts: Vec<_> = order
        .refunds
        .iter()
        .map(|r| (r.refund_number.clone().unwrap(), r.amount.unwrap().get()))
        .collect();
    assert_eq!(
        amounts,
        [
            (number.clone(), dec("-110.00")),
            ("000000003".to_owned(), dec("-190.00"))
        ]
    );
    assert!(order.refunds[1].refund_items.is_empty());
    assert_eq!(value(&body)["refunds"][0], raw["refunds"][0]);
    let capture = &order.captures[0];
    assert_eq!(
        capture.total_refunded_amount.map(|a| a.get()),
        Some(dec("300.00"))
    );
    assert_eq!(capture.balance.map(|a| a.get()), Some(dec("0.00")));

    // Unknown refund number or order: 404 with a ResponseMessage array naming the field.
    for (path, field) in [
        ("/api/v3/orders/AP-1/refunds/999999999", "refundNumber"),
        ("/api/v3/orders/NOPE/refunds/000000002", "orderNumber"),
        ("/api/v3/orders/NOPE", "orderNumber"),
    ] {
        let (status, body) = get(&sb, &c, "afterpay", path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let messages: Vec<ResponseMessage> = decode("404", &body);
        assert_eq!(
            messages[0].field_reference.as_deref(),
            Some(field),
            "{path}"
        );
        assert_eq!(messages[0].code.as_deref(), Some("NotFound"));
    }
    // No or a wrong X-Auth-Key: 401, no body.
    for key in [None, Some("wrong")] {
        let mut req = c.get(format!("{}/api/v3/orders/AP-1", sb.afterpay().base_url()));
        if let Some(key) = key {
            req = req.header("X-Auth-Key", key);
        }
        let (status, body) = read(req.send().await.unwrap()).await;
        assert_eq!((status, body.as_str()), (401, ""));
    }
    // The list-all form is not documented: only the refund POST lives there.
    let res = c
        .get(format!(
            "{}/api/v3/orders/AP-1/refunds",
            sb.afterpay().base_url()
        ))
        .header("X-Auth-Key", AFTERPAY_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

// ---------------------------------------------------------------------------------------------
// Moyasar: Retrieve Order
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn moyasar_retrieve_order_answers_the_refunds_order_object() {
    use moyasar_api::types::{ErrorResponse, Order};

    let sb = start().await;
    sb.moyasar()
        .seed_order(OrderSeed::from_minor("MY-1", "SAR", 262_346));
    let c = client();
    let tx = "f351a2a3-97c4-4f12-add3-80c1044091f5";
    let res = moyasar_refund(
        &sb,
        &c,
        "MY-1",
        format!(r#"{{"amount":1000,"transaction_id":"{tx}"}}"#),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let answer = res.text().await.unwrap();

    let (status, body) = get(&sb, &c, "moyasar", "/v1/orders/MY-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value(&body), value(&answer), "the same Order object");
    let order: Order = decode("retrieve order 200", &body);
    let refund = order
        .transactions
        .iter()
        .find(|t| t.type_.as_deref() == Some("refund"))
        .unwrap();
    assert_eq!(refund.id.as_deref(), Some(tx), "our transaction_id");
    assert_eq!(refund.status.as_deref(), Some("approved"));
    assert_eq!(refund.amount.map(|a| a.get()), Some(1000));
    assert_eq!(order.refunded_amount.map(|a| a.get()), Some(1000));

    // The key without the refund permission may read; others may not; unknown order: 404.
    let url = format!("{}/v1/orders/MY-1", sb.moyasar().base_url());
    let (status, _) = read(
        c.get(&url)
            .bearer_auth(MOYASAR_KEY_WITHOUT_REFUND)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    for req in [c.get(&url), c.get(&url).bearer_auth("sk_test_wrong")] {
        let (status, body) = read(req.send().await.unwrap()).await;
        assert_eq!(status, 401);
        let _: ErrorResponse = decode("401", &body);
    }
    let (status, body) = get(&sb, &c, "moyasar", "/v1/orders/NOPE").await;
    assert_eq!(
        (status, value(&body)),
        (404, json!({"message":"Object not found"}))
    );
}

#[tokio::test]
async fn openapp_has_no_read_route() {
    let sb = start().await;
    let c = client();
    for path in [
        "/merchant/v1/orders/OA-1",
        "/merchant/v1/orders/refund/OA-1",
    ] {
        let (status, body) = read(
            c.get(format!("{}{path}", sb.openapp().base_url()))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(value(&body)["exception"], "NotFoundException");
    }
}

// ---------------------------------------------------------------------------------------------
// Eventual consistency: the read delay
// ---------------------------------------------------------------------------------------------

/// How many refunds each provider's read lists on its order `order`.
async fn listed(sb: &Sandbox, c: &Client, token: &str, p: &str, order: &str) -> usize {
    let body = match p {
        "optty" => optty_details(sb, c, Some(token), order).await.1,
        "afterpay" => get(sb, c, p, &format!("/api/v3/orders/{order}")).await.1,
        "moyasar" => get(sb, c, p, &format!("/v1/orders/{order}")).await.1,
        other => panic!("{other} has no read"),
    };
    let v = value(&body);
    match p {
        "moyasar" => v["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "refund")
            .count(),
        "optty" | "afterpay" => v["refunds"].as_array().map_or(0, Vec::len),
        other => panic!("{other} has no read"),
    }
}

#[tokio::test]
async fn a_refund_shows_in_reads_only_once_the_read_delay_passed() {
    let delay = Duration::from_millis(400);
    let sb = Sandbox::start(SandboxConfig {
        read_delay: delay,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let token = optty_token(&sb, &c).await;
    sb.optty()
        .seed_order(OrderSeed::new("O-1", "AUD", dec("100.00")));
    sb.afterpay()
        .seed_order(OrderSeed::new("O-1", "EUR", dec("100.00")));
    sb.moyasar()
        .seed_order(OrderSeed::new("O-1", "SAR", dec("100.00")));
    for p in ["optty", "afterpay", "moyasar"] {
        assert_eq!(provider(&sb, p).read_delay(), delay);
    }
    let recorded = Instant::now();
    let statuses = [
        optty_refund(&sb, &c, &token, "O-1", optty_body("RF-1", "1.00", "AUD"))
            .send()
            .await
            .unwrap()
            .status(),
        afterpay_refund(
            &sb,
            &c,
            "O-1",
            afterpay_body("000000001", "1.00", "1", None),
        )
        .send()
        .await
        .unwrap()
        .status(),
        moyasar_refund(&sb, &c, "O-1", r#"{"amount":100}"#.to_owned())
            .send()
            .await
            .unwrap()
            .status(),
    ];
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Every refund was recorded between `recorded` and `answered`.
    let answered = Instant::now();
    for p in ["optty", "afterpay", "moyasar"] {
        if recorded.elapsed() < delay {
            assert_eq!(listed(&sb, &c, &token, p, "O-1").await, 0, "{p}: too early");
        }
    }
    let (status, _) = get(&sb, &c, "afterpay", "/api/v3/orders/O-1/refunds/000000002").await;
    if recorded.elapsed() < delay {
        assert_eq!(status, 404, "not listed yet");
    }
    tokio::time::sleep(delay.saturating_sub(answered.elapsed()) + Duration::from_millis(50)).await;
    for p in ["optty", "afterpay", "moyasar"] {
        assert_eq!(
            listed(&sb, &c, &token, p, "O-1").await,
            1,
            "{p}: after the delay"
        );
    }
    let (status, _) = get(&sb, &c, "afterpay", "/api/v3/orders/O-1/refunds/000000002").await;
    assert_eq!(status, 200);

    // Changed at run time, per server, over the admin API too.
    let settings = format!("{}/__admin/settings", sb.optty().base_url());
    let res = c
        .patch(&settings)
        .json(&json!({"read_delay_ms": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sb.optty().read_delay(), Duration::ZERO);
    assert_eq!(sb.moyasar().read_delay(), delay, "per server");
    sb.set_read_delay(Duration::from_secs(3600));
    let v: Value = c.get(&settings).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, json!({"read_delay_ms": 3_600_000}));
    // A delay longer than a refund's age hides it again; the ledger still has it.
    assert_eq!(listed(&sb, &c, &token, "optty", "O-1").await, 0);
    assert_eq!(sb.optty().refund_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Faults on reads
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn faults_on_reads_leave_refunds_alone_and_the_other_way_round() {
    let sb = start().await;
    let c = client();
    let token = optty_token(&sb, &c).await;
    for p in ["optty", "afterpay", "moyasar"] {
        provider(&sb, p).seed_order(OrderSeed::new("O-1", "EUR", dec("100.00")));
    }
    sb.optty()
        .seed_order(OrderSeed::new("O-1", "AUD", dec("100.00")));

    // A 503 in the provider's own shape on the next read; the refund route is untouched.
    for p in ["optty", "afterpay", "moyasar"] {
        let rule =
            provider(&sb, p).inject(Fault::Status(503), Match::Any.on(Operation::Read).once());
        assert_eq!(provider(&sb, p).fault_rules()[0].operation, Operation::Read);
        let res = match p {
            "optty" => optty_refund(&sb, &c, &token, "O-1", optty_body("RF-1", "1.00", "AUD")),
            "afterpay" => afterpay_refund(
                &sb,
                &c,
                "O-1",
                afterpay_body("000000001", "1.00", "1", None),
            ),
            "moyasar" => moyasar_refund(&sb, &c, "O-1", r#"{"amount":100}"#.to_owned()),
            other => panic!("{other} has no read"),
        }
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), 200, "{p}: refunds are not reads");
        assert_eq!(rule.fired(), 0);
        let (status, body) = match p {
            "optty" => optty_details(&sb, &c, Some(&token), "O-1").await,
            "afterpay" => get(&sb, &c, p, "/api/v3/orders/O-1").await,
            "moyasar" => get(&sb, &c, p, "/v1/orders/O-1").await,
            other => panic!("{other} has no read"),
        };
        assert_eq!(status, 503, "{p}: {body}");
        match p {
            "optty" => assert_eq!(value(&body)["statusCode"], 503),
            "afterpay" => assert_eq!(body, ""),
            "moyasar" => assert_eq!(value(&body)["message"], "Service Unavailable"),
            other => panic!("{other} has no read"),
        }
        assert_eq!(rule.fired(), 1);
        let log = provider(&sb, p).request_log(None);
        let last = log.last().unwrap();
        assert_eq!(
            (last.method.as_str(), last.status, last.fault.as_deref()),
            (
                if p == "optty" { "POST" } else { "GET" },
                Some(503),
                Some("status")
            ),
            "{p}"
        );
        assert_eq!(listed(&sb, &c, &token, p, "O-1").await, 1, "{p}: once only");
    }

    // A refund fault does not fire on reads.
    sb.moyasar().inject(Fault::NonJson502, Match::Any.once());
    let (status, _) = get(&sb, &c, "moyasar", "/v1/orders/O-1").await;
    assert_eq!(status, 200);
    sb.moyasar().clear_faults();

    // Latency, a gateway's page, a dropped connection and the n-th read, through the admin API.
    let admin = format!("{}/__admin/faults", sb.afterpay().base_url());
    for (fault, matcher) in [
        (
            json!({"kind":"latency","ms":300}),
            json!({"kind":"order","order":"O-1"}),
        ),
        (json!({"kind":"non_json_502"}), json!({"kind":"nth","n":1})),
        (json!({"kind":"drop_after_commit"}), json!({"kind":"any"})),
        (
            json!({"kind":"status_after_commit","status":504}),
            json!({"kind":"any"}),
        ),
    ] {
        let res = c
            .post(&admin)
            .json(&json!({"fault": fault, "match": matcher, "times": 1, "operation": "read"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let rule: Value = res.json().await.unwrap();
        assert_eq!(rule["operation"], "read");
        let started = Instant::now();
        let res = c
            .get(format!("{}/api/v3/orders/O-1", sb.afterpay().base_url()))
            .header("X-Auth-Key", AFTERPAY_API_KEY)
            .send()
            .await;
        match fault["kind"].as_str().unwrap() {
            "latency" => {
                assert_eq!(res.unwrap().status(), 200);
                assert!(started.elapsed() >= Duration::from_millis(300));
            }
            "non_json_502" => {
                let res = res.unwrap();
                assert_eq!(res.status(), 502);
                assert_eq!(res.headers()["content-type"], "text/html");
            }
            "drop_after_commit" => assert!(res.is_err(), "no answer at all"),
            "status_after_commit" => assert_eq!(res.unwrap().status(), 504),
            other => panic!("{other} is not tried here"),
        }
    }
    let (status, _) = get(&sb, &c, "afterpay", "/api/v3/orders/O-1").await;
    assert_eq!(status, 200, "every read fault fired once");
}

// ---------------------------------------------------------------------------------------------
// Optty's notifications
// ---------------------------------------------------------------------------------------------

/// A webhook receiver on loopback: records every body, answers `fail_first` of them 500 and the
/// rest 200; while `hold` is set, waits for `release` before answering.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    fail_first: Arc<Mutex<usize>>,
    hold: Arc<Mutex<bool>>,
    release: Arc<Notify>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first: Arc::new(Mutex::new(fail_first)),
            ..Receiver::default()
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Receiver>, body: String) -> StatusCode {
    r.bodies.lock().unwrap().push(value(&body));
    let held = *r.hold.lock().unwrap();
    if held {
        r.release.notified().await;
    }
    let mut fail = r.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

#[tokio::test]
async fn optty_notifications_follow_every_status_change_and_are_retried() {
    use optty_api::types::OrderNotification;

    let (receiver, url) = Receiver::start(2).await;
    let mut config = SandboxConfig::default();
    config.optty.notify = NotifySettings {
        url: Some(url.clone()),
        backoff: Duration::from_millis(5),
        ..NotifySettings::default()
    };
    let sb = Sandbox::start(config).await.unwrap();
    sb.optty().seed_order(
        OrderSeed::new("ORD-N", "AUD", dec("100.00")).refund_status(RefundStatus::Pending),
    );
    let c = client();
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &token, "ORD-N", optty_body("RF-N", "12.5", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = sb.optty().refunds_with_reference("RF-N")[0].id.clone();
    sb.optty()
        .settle("ORD-N", &id, RefundStatus::Succeeded)
        .unwrap();
    // Settling again to the same status changes nothing, and notifies nothing.
    sb.optty()
        .settle("ORD-N", &id, RefundStatus::Succeeded)
        .unwrap();

    wait_until(|| {
        let log = sb.optty().notifications();
        log.len() == 2 && log.iter().all(|n| n.delivery == Delivery::Delivered)
    })
    .await;
    let log = sb.optty().notifications();
    assert_eq!(
        log[0].attempts,
        [Some(500), Some(500), Some(200)],
        "retried"
    );
    assert_eq!(log[1].attempts, [Some(200)]);
    assert_eq!(log[0].url, url);
    // In order: the PENDING of the refund, then the SUCCESSFUL of its settlement.
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 4);
    let delivered: Vec<&Value> = [&bodies[2], &bodies[3]].into();
    for (body, status) in delivered.iter().zip(["PENDING", "SUCCESSFUL"]) {
        let n: OrderNotification = serde_json::from_value((*body).clone()).unwrap();
        assert_eq!(n.event, "ORDER_STATUS_UPDATE");
        let data = n.data.unwrap();
        assert_eq!(data.status.as_deref(), Some(status));
        assert_eq!(data.transaction_id.as_deref(), Some("RF-N"));
        assert_eq!(body["data"]["merchantReference"], "ORD-N");
        assert_eq!(body["data"]["refundId"], "RF-N");
        assert_eq!(body["data"]["bnplRefundId"], id.as_str());
        assert_eq!(body["data"]["amount"], "12.50");
        assert_eq!(body["data"]["currency"], "AUD");
    }
    assert_eq!(bodies[0], bodies[2], "a retry sends the same body");

    // A failed settlement notifies FAILED with the reason; an endpoint that never answers 2xx
    // is given up after the retries.
    sb.optty().set_notify_settings(NotifySettings {
        retries: 1,
        ..sb.optty().notify_settings()
    });
    *receiver.fail_first.lock().unwrap() = usize::MAX;
    let res = optty_refund(&sb, &c, &token, "ORD-N", optty_body("RF-F", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let failed = sb.optty().refunds_with_reference("RF-F")[0].id.clone();
    sb.optty()
        .settle("ORD-N", &failed, RefundStatus::Failed)
        .unwrap();
    wait_until(|| {
        let log = sb.optty().notifications();
        log.len() == 4 && log[3].delivery == Delivery::GaveUp
    })
    .await;
    let log = sb.optty().notifications();
    assert_eq!(log[3].attempts, [Some(500), Some(500)]);
    assert_eq!(log[3].body["data"]["status"], "FAILED");
    assert_eq!(
        log[3].body["data"]["refundFailureReason"],
        sandbox::optty::FAILURE_REASON
    );

    // Without a URL, nothing is sent.
    sb.optty().set_notify_url(None);
    assert_eq!(sb.optty().clear_notifications(), 4);
    let res = optty_refund(&sb, &c, &token, "ORD-N", optty_body("RF-Q", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(sb.optty().notifications().is_empty());
}

#[tokio::test]
async fn a_slow_webhook_never_holds_up_a_refund_or_a_settlement() {
    let (receiver, url) = Receiver::start(0).await;
    *receiver.hold.lock().unwrap() = true;
    let sb = start().await;
    // Set over the admin API, as a client in another language would.
    let c = client();
    let res = c
        .patch(format!("{}/__admin/notifications", sb.optty().base_url()))
        .json(&json!({"url": url, "backoff_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        sb.optty().notify_settings().url.as_deref(),
        Some(url.as_str())
    );
    sb.optty().seed_order(
        OrderSeed::new("ORD-S", "AUD", dec("100.00")).refund_status(RefundStatus::Pending),
    );
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &token, "ORD-S", optty_body("RF-S", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "answered while the webhook holds");
    let id = sb.optty().refunds_with_reference("RF-S")[0].id.clone();
    sb.optty()
        .settle("ORD-S", &id, RefundStatus::Succeeded)
        .unwrap();
    wait_until(|| receiver.bodies().len() == 1).await;
    assert_eq!(sb.optty().notifications()[0].delivery, Delivery::Pending);
    *receiver.hold.lock().unwrap() = false;
    receiver.release.notify_one();
    wait_until(|| {
        sb.optty()
            .notifications()
            .iter()
            .all(|n| n.delivery == Delivery::Delivered)
    })
    .await;
    let statuses: Vec<Value> = receiver
        .bodies()
        .iter()
        .map(|b| b["data"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("PENDING"), json!("SUCCESSFUL")]);
    let view: Value = c
        .get(format!("{}/__admin/notifications", sb.optty().base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["notifications"][1]["delivery"], "delivered");
    assert_eq!(view["url"], url.as_str());
}

/// Every read route a room names (from its generated crate's operations) is one its server
/// serves: a request without credentials is refused as unauthorized, not as an unknown route
/// or a wrong method.
#[tokio::test]
async fn each_room_serves_the_read_routes_it_names() {
    let sb = start().await;
    let c = client();
    let mut named = 0;
    for room in sb.rooms() {
        for route in room.read_routes() {
            // Each `{parameter}` filled with a value of its own.
            let path: String = route
                .path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "X-1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let res = c
                .request(method, format!("{}{path}", room.handle().base_url()))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{route} on {}", room.title());
            named += 1;
        }
    }
    assert!(named >= 4, "only {named} read routes named");
}
