//! The admin endpoints, startup and shutdown.

mod common;

use common::*;
use sandbox::{OrderState, Sandbox, SandboxConfig};

#[tokio::test]
async fn orders_can_be_seeded_and_read_over_http() {
    let sb = start().await;
    let c = client();
    for name in ["optty", "afterpay", "moyasar", "openapp"] {
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
            (400, r#"{"error":"refunded exceeds captured"}"#.into())
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
    assert_eq!(sb.moyasar.order("ORD-9").unwrap().refundable(), dec("0.00"));
    assert_eq!(sb.moyasar.requests_received(), 1);
}

#[tokio::test]
async fn servers_listen_on_return_and_stop_on_shutdown() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let urls: Vec<String> = ["optty", "afterpay", "moyasar", "openapp"]
        .iter()
        .map(|p| provider(&sb, p).base_url())
        .collect();
    let mut ports: Vec<_> = urls.iter().collect();
    ports.dedup();
    assert_eq!(ports.len(), 4);
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

#[tokio::test]
async fn unknown_routes_count_as_provider_traffic() {
    let sb = start().await;
    let c = client();
    let res = c
        .post(format!("{}/somewhere", sb.optty.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(sb.optty.requests_received(), 1);
    assert_eq!(sb.afterpay.requests_received(), 0);
}
