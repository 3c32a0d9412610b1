//! AfterPay (Riverty) over real HTTP.

use crate::common::*;
use sandbox::{Fault, Match, OrderSeed, Sandbox, SandboxConfig};

/// The docs' request (`specs/afterpay/examples/`, with the legacy `orderItems` name).
const DOC_REQUEST: &str = include_str!("../../../specs/afterpay/examples/refund.request.json");

#[tokio::test]
async fn auth_key_is_required() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("300.00")));
    let c = client();
    let url = format!("{}/api/v3/orders/AP-1/refunds", sb.afterpay().base_url());
    let res = c.post(&url).body(DOC_REQUEST).send().await.unwrap();
    assert_eq!(read(res).await, (401, String::new()));
    let res = c
        .post(&url)
        .header("X-Auth-Key", "wrong")
        .body(DOC_REQUEST)
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, (401, String::new()));
    assert_eq!(sb.afterpay().refund_count(), 0);
    let res = afterpay_refund(&sb, &c, "AP-1", DOC_REQUEST.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn documented_request_refunds_by_line_items() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("300.00")));
    let c = client();
    let res = afterpay_refund(&sb, &c, "AP-1", DOC_REQUEST.into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            200,
            r#"{"totalCapturedAmount":300.00,"totalAuthorizedAmount":300.00,"totalRefundedAmount":60.00,"remainingAuthorizedAmount":0.00,"refundNumbers":["000000002"]}"#
                .into()
        )
    );
    // The current name `items` works the same; numbers continue.
    let res = afterpay_refund(
        &sb,
        &c,
        "AP-1",
        afterpay_body("000000001", "9.99", "2", None),
    )
    .send()
    .await
    .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""totalRefundedAmount":79.98,"#), "{body}");
    assert!(
        body.ends_with(r#""refundNumbers":["000000003"]}"#),
        "{body}"
    );

    let order = sb.afterpay().order("AP-1").unwrap();
    assert_eq!(order.refunded, dec("79.98"));
    let ids: Vec<_> = order.refunds.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["000000002", "000000003"]);
}

#[tokio::test]
async fn no_items_refunds_the_remaining_capture() {
    let sb = start().await;
    sb.afterpay().seed_order(
        OrderSeed::new("AP-2", "EUR", dec("120.00"))
            .authorized(dec("150.00"))
            .refunded(dec("20.00"))
            .capture_number("000000007"),
    );
    let c = client();
    let res = afterpay_refund(&sb, &c, "AP-2", r#"{"captureNumber":"000000007"}"#.into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            200,
            r#"{"totalCapturedAmount":120.00,"totalAuthorizedAmount":150.00,"totalRefundedAmount":120.00,"remainingAuthorizedAmount":30.00,"refundNumbers":["000000002"]}"#
                .into()
        )
    );
    assert_eq!(
        sb.afterpay().order("AP-2").unwrap().refunds[0].amount,
        dec("100.00")
    );
    // Nothing left now.
    let res = afterpay_refund(&sb, &c, "AP-2", r#"{"captureNumber":"000000007"}"#.into())
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""code":"InvalidRefundAmount""#), "{body}");
}

#[tokio::test]
async fn business_errors_are_response_message_arrays() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")).refunded(dec("90.00")));
    let c = client();
    let res = afterpay_refund(
        &sb,
        &c,
        "AP-1",
        afterpay_body("000000001", "10.01", "1", None),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"[{"type":"BusinessError","code":"400.003","message":"Refund Amount Exceeds Capture Amount: the refund amount 10.01 EUR exceeds the remaining captured amount 10.00 EUR.","fieldReference":"items"}]"#
                .into()
        )
    );
    let res = afterpay_refund(&sb, &c, "AP-1", afterpay_body("000000009", "1", "1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"[{"type":"BusinessError","code":"CaptureNotFound","message":"Capture '000000009' was not found for order 'AP-1'.","fieldReference":"captureNumber"}]"#
                .into()
        )
    );
    let res = afterpay_refund(&sb, &c, "NOPE", afterpay_body("000000001", "1", "1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            404,
            r#"[{"type":"BusinessError","code":"NotFound","message":"Order 'NOPE' was not found.","fieldReference":"orderNumber"}]"#
                .into()
        )
    );
    let order = sb.afterpay().order("AP-1").unwrap();
    assert_eq!(order.refunded, dec("90.00"));
    assert_eq!(sb.afterpay().refund_count(), 0);
}

#[tokio::test]
async fn validation_reports_every_failing_field() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
    let c = client();
    use afterpay_api::constraints::refund_order as spec;
    let reference_max = spec::transaction_reference::MAX_LENGTH;
    let body = format!(
        r#"{{"transactionReference":"{}","items":[{{"description":"x","netUnitPrice":1,"grossUnitPrice":"1","quantity":1,"vatPercent":0,"vatAmount":0,"vatCategory":"Huge"}}]}}"#,
        "t".repeat(reference_max + 1)
    );
    let res = afterpay_refund(&sb, &c, "AP-1", body).send().await.unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 400);
    let messages: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let fields: Vec<&str> = messages
        .iter()
        .map(|m| m["fieldReference"].as_str().unwrap())
        .collect();
    // In the order the schema validator reports them: the body's `required`, then its
    // properties by name, each item's fields within.
    assert_eq!(
        fields,
        [
            "captureNumber",
            "items[0].productId",
            "items[0].grossUnitPrice",
            "items[0].vatCategory",
            "transactionReference"
        ]
    );
    assert!(messages.iter().all(|m| m["type"] == "BusinessError"
        && m["code"] == "ValidationError"
        && m.get("customerFacingMessage").is_none()));
    let words: Vec<&str> = messages
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        words,
        [
            "'captureNumber' is required.".to_owned(),
            "'items[0].productId' is required.".to_owned(),
            "'items[0].grossUnitPrice' must be a number.".to_owned(),
            format!(
                "'items[0].vatCategory' must be one of: {}.",
                spec::items::items::vat_category::ENUM.join(", ")
            ),
            format!("'transactionReference' must be at most {reference_max} characters long."),
        ]
    );

    let res = afterpay_refund(&sb, &c, "AP-1", "{nope".into())
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 400);
    assert!(body.starts_with(r#"[{"type":"BusinessError","code":"ValidationError""#));
    assert_eq!(sb.afterpay().refund_count(), 0);
}

#[tokio::test]
async fn repeated_transaction_reference_replays_the_original() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
    let c = client();
    let body = afterpay_body("000000001", "10.00", "1", Some("tx-1"));
    let first = read(
        afterpay_refund(&sb, &c, "AP-1", body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first.0, 200);
    let again = read(afterpay_refund(&sb, &c, "AP-1", body).send().await.unwrap()).await;
    assert_eq!(again, first);
    assert_eq!(sb.afterpay().refund_count(), 1);
    assert_eq!(sb.afterpay().order("AP-1").unwrap().refunded, dec("10.00"));
}

#[tokio::test]
async fn replay_rule_can_be_switched_off() {
    let sb = Sandbox::start(SandboxConfig {
        afterpay: sandbox::afterpay::Settings {
            replay_transaction_reference: false,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
    let c = client();
    let body = afterpay_body("000000001", "10.00", "1", Some("tx-1"));
    for _ in 0..2 {
        let res = afterpay_refund(&sb, &c, "AP-1", body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(sb.afterpay().refund_count(), 2);
}

#[tokio::test]
async fn injected_500_is_empty() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("100.00")));
    sb.afterpay().inject(Fault::Status(500), Match::Any.once());
    let c = client();
    let res = afterpay_refund(&sb, &c, "AP-1", DOC_REQUEST.into())
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, (500, String::new()));
    assert_eq!(sb.afterpay().refund_count(), 0);
}
