//! The admin endpoints, startup and shutdown.

use crate::common::*;
use reqwest::Client;
use sandbox::{
    Fault, LedgerFilter, Match, OrderSeed, OrderState, PROVIDERS, RefundStatus, Sandbox,
    SandboxConfig,
};
use serde_json::{Value, json};

#[tokio::test]
async fn orders_can_be_seeded_and_read_over_http() {
    let sb = start().await;
    let c = client();
    for &name in sandbox::PROVIDERS {
        let p = provider(&sb, name);
        let res = c
            .post(format!("{}/__admin/orders", p.base_url()))
            .body(r#"{"id":"ORD-9","currency":"SAR","captured":100.00,"refunded":1.50}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{name}");
        let state: OrderState = res.json().await.unwrap();
        assert_eq!(state.refundable(), dec("98.50"));
        assert_eq!(p.order("ORD-9").unwrap(), state);

        let res = c
            .get(format!("{}/__admin/orders/ORD-9", p.base_url()))
            .send()
            .await
            .unwrap();
        let (status, body) = read(res).await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""captured":100.00"#), "{body}");

        let res = c
            .get(format!("{}/__admin/orders/NOPE", p.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let res = c
            .post(format!("{}/__admin/orders", p.base_url()))
            .body(r#"{"id":"BAD","currency":"SAR","captured":1.00,"refunded":2.00}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(
            read(res).await,
            (
                400,
                r#"{"error":"refunded exceeds captured","field":"refunded"}"#.into()
            )
        );
        // Admin traffic is not provider traffic.
        assert_eq!(p.requests_received(), 0, "{name}");
    }
    // An admin-seeded Moyasar order refunds like any other.
    let res = moyasar_refund(&sb, &c, "ORD-9", r#"{"amount":9850}"#.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        sb.moyasar().order("ORD-9").unwrap().refundable(),
        dec("0.00")
    );
    assert_eq!(sb.moyasar().requests_received(), 1);
}

#[tokio::test]
async fn servers_listen_on_return_and_stop_on_shutdown() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let urls: Vec<String> = PROVIDERS
        .iter()
        .map(|p| provider(&sb, p).base_url())
        .collect();
    let mut ports: Vec<_> = urls.iter().collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), PROVIDERS.len());
    let c = client();
    for url in &urls {
        assert!(url.starts_with("http://127.0.0.1:"));
        let res = c.get(format!("{url}/__admin/orders")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    sb.shutdown().await;
    for url in &urls {
        assert!(c.get(format!("{url}/__admin/orders")).send().await.is_err());
    }
}

/// One server per provider of the list, in its order, found by its name, by its accessor and
/// as its room describes it.
#[tokio::test]
async fn every_provider_of_the_list_has_one_server() {
    let sb = start().await;
    let names: Vec<&str> = sb.providers().map(|p| p.provider()).collect();
    assert_eq!(names, PROVIDERS);
    assert_eq!(sb.rooms().len(), PROVIDERS.len());
    for (room, name) in sb.rooms().zip(PROVIDERS) {
        assert_eq!(room.handle().provider(), *name);
        assert_eq!(provider(&sb, name).addr(), room.handle().addr());
        assert!(room.refund_path().starts_with('/'), "{name}");
        assert!(!room.facade_env().is_empty(), "{name}");
        // Every room's demo orders are valid seeds of its own server.
        for seed in room.demo_orders() {
            room.handle().try_seed_order(seed).unwrap();
        }
    }
    assert!(sb.handle("paypal").is_none());
    for (typed, name) in [
        (sb.optty().addr(), "optty"),
        (sb.afterpay().addr(), "afterpay"),
        (sb.moyasar().addr(), "moyasar"),
        (sb.openapp().addr(), "openapp"),
    ] {
        assert_eq!(typed, provider(&sb, name).addr());
    }
}

/// What a provider keeps beside an order (its duplicate keys, its flags) goes with the order:
/// a new seed of the same id, a removal or a reset starts it afresh.
#[tokio::test]
async fn a_new_seed_forgets_what_the_provider_kept_about_the_order() {
    let sb = start().await;
    let c = client();

    // Optty: a repeated refundReference replays, until the order is seeded again.
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let token = optty_token(&sb, &c).await;
    let send = || optty_refund(&sb, &c, &token, "ORD-1", optty_body("r-1", "10.00", "AUD"));
    let first = read(send().send().await.unwrap()).await;
    assert_eq!(read(send().send().await.unwrap()).await, first);
    assert_eq!(sb.optty().refund_count(), 1);
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let again = read(send().send().await.unwrap()).await;
    assert_eq!(again.0, 200);
    assert_ne!(again, first, "a new refund, not the old one's replay");
    assert_eq!(sb.optty().refund_count(), 1);
    sb.optty().reset();
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    assert_ne!(read(send().send().await.unwrap()).await, again);

    // Moyasar: a transaction_id used on a removed order is free again.
    let tx = r#"{"amount":100,"transaction_id":"f351a2a3-97c4-4f12-add3-80c1044091f5"}"#;
    for order in ["MY-1", "MY-2"] {
        sb.moyasar()
            .seed_order(OrderSeed::new(order, "SAR", dec("100.00")));
    }
    let res = moyasar_refund(&sb, &c, "MY-1", tx.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = moyasar_refund(&sb, &c, "MY-2", tx.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "used on another order");
    assert!(sb.moyasar().delete_order("MY-1").is_some());
    let res = moyasar_refund(&sb, &c, "MY-2", tx.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // OpenApp: a customer gone stays gone until the order is seeded again; the order is also
    // found by its oaOrderId.
    let seed = OrderSeed::new("SHOP-1", "PLN", dec("100.00")).oa_order_id("OA-1");
    sb.openapp().seed_order(seed.clone());
    assert!(sb.openapp().set_user_missing("SHOP-1", true));
    let res = openapp_refund(&sb, &c, openapp_body("OA-1", "SHOP-1", 100, "case-1"));
    assert_eq!(res.send().await.unwrap().status(), 404);
    assert_eq!(
        sb.openapp().order("OA-1").map(|o| o.id),
        Some("SHOP-1".into())
    );
    sb.openapp().seed_order(seed);
    let res = openapp_refund(&sb, &c, openapp_body("OA-1", "SHOP-1", 100, "case-1"));
    assert_eq!(res.send().await.unwrap().status(), 200);
    assert!(!sb.openapp().set_user_missing("SHOP-2", true));
}

#[tokio::test]
async fn unknown_routes_count_as_provider_traffic() {
    let sb = start().await;
    let c = client();
    let res = c
        .post(format!("{}/somewhere", sb.optty().base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(sb.optty().requests_received(), 1);
    assert_eq!(sb.afterpay().requests_received(), 0);
}

async fn admin(
    c: &Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c.request(method, url);
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// What the Rust API does shows over HTTP and the other way round: both are
/// one implementation.
#[tokio::test]
async fn rust_and_http_admin_are_one() {
    use reqwest::Method;
    let sb = start().await;
    let c = client();
    let base = sb.openapp().base_url();

    // A fault injected over HTTP is the Rust API's rule and fires.
    let (status, rule) = admin(
        &c,
        Method::POST,
        format!("{base}/__admin/faults"),
        Some(json!({"fault":{"kind":"status","status":503},"match":{"kind":"order","order":"O-1"},"times":1})),
    )
    .await;
    assert_eq!(status, 201);
    let rules = sb.openapp().fault_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id, rule["id"].as_u64().unwrap());
    assert_eq!(rules[0].fault, Fault::Status(503));
    assert_eq!(rules[0].matcher, Match::Order("O-1".into()));
    assert_eq!(rules[0].times_left, Some(1));

    // An order seeded over HTTP is refunded through the provider API, the
    // fault fires once, and the Rust API sees the same ledger.
    admin(
        &c,
        Method::POST,
        format!("{base}/__admin/orders"),
        Some(json!({"id":"O-1","currency":"PLN","captured":10.00})),
    )
    .await;
    let first = openapp_refund(&sb, &c, openapp_body("O-1", "O-1", 250, "case-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(sb.openapp().fault_rules()[0].fired, 1);
    let retry = openapp_refund(&sb, &c, openapp_body("O-1", "O-1", 250, "case-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let (_, ledger) = admin(
        &c,
        Method::GET,
        format!("{base}/__admin/refunds?reference=case-1"),
        None,
    )
    .await;
    let rust_ledger = sb.openapp().ledger(&LedgerFilter {
        reference: Some("case-1".into()),
        ..LedgerFilter::default()
    });
    assert_eq!(rust_ledger.len(), 1);
    assert_eq!(serde_json::to_value(&rust_ledger).unwrap(), ledger);
    assert_eq!(rust_ledger[0].status, RefundStatus::Pending);

    // Settled as failed over HTTP: the Rust API sees it and the money is
    // refundable again.
    let (status, settled) = admin(
        &c,
        Method::POST,
        format!("{base}/__admin/orders/O-1/refunds/case-1/settle"),
        Some(json!({"status":"FAILED"})),
    )
    .await;
    assert_eq!((status, settled["status"].as_str()), (200, Some("FAILED")));
    let order = sb.openapp().order("O-1").unwrap();
    assert_eq!(order.refunds[0].status, RefundStatus::Failed);
    assert_eq!(order.refundable(), dec("10.00"));
    // A failed refund does not succeed later.
    assert!(!sb.openapp().settle_refund("O-1", "case-1"));

    // The request log, both ways: two refund requests, the first faulted.
    let log = sb.openapp().request_log(None);
    let (_, http_log) = admin(&c, Method::GET, format!("{base}/__admin/requests"), None).await;
    assert_eq!(serde_json::to_value(&log).unwrap(), http_log);
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].status,
            log[0].fault.as_deref(),
            log[0].duplicate_key.as_deref()
        ),
        (Some(503), Some("status"), Some("case-1"))
    );
    assert_eq!((log[1].status, log[1].fault.as_deref()), (Some(200), None));
    let (_, since) = admin(
        &c,
        Method::GET,
        format!("{base}/__admin/requests?since={}", log[0].seq),
        None,
    )
    .await;
    assert_eq!(since.as_array().unwrap().len(), 1);

    // A fault injected in Rust is listed over HTTP and cleared by id.
    let handle = sb.openapp().inject(Fault::DropAfterCommit, Match::Nth(2));
    let (_, listed) = admin(&c, Method::GET, format!("{base}/__admin/faults"), None).await;
    let listed = listed.as_array().unwrap().last().unwrap().clone();
    assert_eq!(listed["id"].as_u64(), Some(handle.id()));
    assert_eq!(listed["fault"], json!({"kind":"drop_after_commit"}));
    assert_eq!(listed["match"], json!({"kind":"nth","n":2}));
    assert_eq!(listed["times_left"], Value::Null);
    let (status, _) = admin(
        &c,
        Method::DELETE,
        format!("{base}/__admin/faults/{}", handle.id()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!sb.openapp().clear_fault(handle.id()));

    // Reset over HTTP: the Rust API sees a fresh server.
    let (status, done) = admin(&c, Method::POST, format!("{base}/__admin/reset"), None).await;
    assert_eq!(status, 200);
    assert_eq!(done, json!({"orders":1,"faults":1,"requests":2}));
    assert!(sb.openapp().orders().is_empty());
    assert!(sb.openapp().fault_rules().is_empty());
    assert!(sb.openapp().request_log(None).is_empty());
    assert_eq!(sb.openapp().requests_received(), 0);
}

#[tokio::test]
async fn settlement_rules() {
    let sb = start().await;
    let c = client();
    sb.optty().seed_order(
        OrderSeed::new("P-1", "AUD", dec("50.00")).refund_status(RefundStatus::Pending),
    );
    let token = optty_token(&sb, &c).await;
    for (reference, amount) in [("r-1", "10.00"), ("r-2", "5.00")] {
        let res = optty_refund(&sb, &c, &token, "P-1", optty_body(reference, amount, "AUD"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let ids: Vec<String> = sb
        .optty()
        .ledger(&LedgerFilter::default())
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(sb.optty().order("P-1").unwrap().refundable(), dec("35.00"));
    let ok = sb
        .optty()
        .settle("P-1", &ids[0], RefundStatus::Succeeded)
        .unwrap();
    assert_eq!(ok.status, RefundStatus::Succeeded);
    // Idempotent to the same status; no change of outcome.
    assert!(
        sb.optty()
            .settle("P-1", &ids[0], RefundStatus::Succeeded)
            .is_ok()
    );
    let e = sb
        .optty()
        .settle("P-1", &ids[0], RefundStatus::Failed)
        .unwrap_err();
    assert_eq!((e.kind.status(), e.field.as_deref()), (409, Some("status")));
    sb.optty()
        .settle("P-1", &ids[1], RefundStatus::Failed)
        .unwrap();
    assert_eq!(sb.optty().order("P-1").unwrap().refundable(), dec("40.00"));
    let e = sb
        .optty()
        .settle("P-1", &ids[1], RefundStatus::Pending)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("status"));
    let e = sb
        .optty()
        .settle("NOPE", &ids[1], RefundStatus::Failed)
        .unwrap_err();
    assert_eq!(
        (e.kind.status(), e.field.as_deref()),
        (404, Some("order_id"))
    );
    let failed = sb.optty().ledger(&LedgerFilter {
        status: Some(RefundStatus::Failed),
        ..LedgerFilter::default()
    });
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reference.as_deref(), Some("r-2"));
    // A seed cannot make new refunds fail.
    let e = sb
        .optty()
        .try_seed_order(
            OrderSeed::new("P-2", "AUD", dec("1.00")).refund_status(RefundStatus::Failed),
        )
        .unwrap_err();
    assert_eq!(e.field, "refund_status");
}

#[tokio::test]
async fn admin_errors_name_the_field() {
    use reqwest::Method;
    let sb = start().await;
    let c = client();
    let base = sb.moyasar().base_url();
    for (body, field) in [
        (json!({"currency":"SAR","captured":1}), "id"),
        (json!({"id":"A","currency":"XXX1","captured":1}), "currency"),
        (
            json!({"id":"A","currency":"SAR","captured":1.001}),
            "captured",
        ),
        (
            json!({"id":"A","currency":"SAR","captured":1,"authorized":0.5}),
            "captured",
        ),
        (json!({"id":"A","currency":"SAR","captured":-1}), "captured"),
        (
            json!({"id":"A","currency":"SAR","captured":1,"colour":"red"}),
            "colour",
        ),
        (
            json!({"id":"A","currency":"SAR","captured":1,"refund_status":"FAILED"}),
            "refund_status",
        ),
        (json!(["not", "an", "object"]), "body"),
    ] {
        let (status, e) = admin(
            &c,
            Method::POST,
            format!("{base}/__admin/orders"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, e["field"].as_str()),
            (400, Some(field)),
            "{body}: {e}"
        );
    }
    for (body, field) in [
        (json!({"fault":{"kind":"latency"}}), "fault.ms"),
        (json!({"fault":{"kind":"latency","ms":600001}}), "fault.ms"),
        (
            json!({"fault":{"kind":"oversized_headers","bytes":-1}}),
            "fault.bytes",
        ),
        (
            json!({"fault":{"kind":"unsigned_answer","status":1}}),
            "fault.status",
        ),
        (
            json!({"fault":{"kind":"status","status":200},"match":{"kind":"order"}}),
            "match.order",
        ),
        (
            json!({"fault":{"kind":"status","status":200},"match":{"kind":"sometimes"}}),
            "match.kind",
        ),
        (
            json!({"fault":{"kind":"status","status":200},"times":"once"}),
            "times",
        ),
        (
            json!({"fault":{"kind":"status","status":200},"when":"now"}),
            "when",
        ),
    ] {
        let (status, e) = admin(
            &c,
            Method::POST,
            format!("{base}/__admin/faults"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, e["field"].as_str()),
            (400, Some(field)),
            "{body}: {e}"
        );
    }
    let (status, e) = admin(&c, Method::POST, format!("{base}/__admin/faults"), None).await;
    assert_eq!((status, e["field"].as_str()), (400, Some("body")));
    assert!(sb.moyasar().fault_rules().is_empty());
}
