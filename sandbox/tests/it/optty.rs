//! Optty over real HTTP: tokens, refunds, limits, duplicates, errors.

use std::time::Duration;

use crate::common::*;
use optty_api::constraints::create_access_token as token_form;
use optty_api::constraints::refunds_controller_refund_order::refund_amount::amount as refund_amount;
use sandbox::credentials::{OPTTY_CLIENT_ID, OPTTY_CLIENT_SECRET};
use sandbox::{Fault, Match, OrderSeed, RefundStatus};

#[tokio::test]
async fn token_endpoint_checks_client_credentials() {
    let sb = start().await;
    let c = client();
    let res = c
        .post(sb.optty().token_url())
        .form(&[
            ("client_id", OPTTY_CLIENT_ID),
            ("client_secret", "wrong"),
            ("grant_type", token_form::grant_type::ENUM[0]),
            ("scope", token_form::scope::ENUM[0]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (401, r#"{"statusCode":401,"message":"Unauthorized"}"#.into())
    );

    let res = c
        .post(sb.optty().token_url())
        .form(&[
            ("client_id", OPTTY_CLIENT_ID),
            ("client_secret", OPTTY_CLIENT_SECRET),
            ("grant_type", token_form::grant_type::ENUM[0]),
            ("scope", token_form::scope::ENUM[0]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], token_form::scope::ENUM[0]);
    assert_eq!(v["expires_in"].as_u64(), Some(86_400));
    assert!(!v["access_token"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn refund_needs_a_valid_unexpired_token() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let c = client();
    let unauthorized = (
        401,
        r#"{"statusCode":401,"message":"Unauthorized"}"#.to_owned(),
    );

    let res = c
        .post(format!("{}/orders/ORD-1/refund", sb.optty().base_url()))
        .body(optty_body("r-0", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, unauthorized);
    let res = optty_refund(
        &sb,
        &c,
        "not-a-token",
        "ORD-1",
        optty_body("r-0", "1", "AUD"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(read(res).await, unauthorized);

    let token = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("r-1", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    sb.optty().expire_tokens();
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("r-2", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, unauthorized);

    sb.optty().set_token_lifetime(Duration::ZERO);
    let short = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &short, "ORD-1", optty_body("r-3", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, unauthorized);
    assert_eq!(sb.optty().refund_count(), 1);
}

#[tokio::test]
async fn refund_is_recorded_and_answered_as_documented() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let c = client();
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(
        &sb,
        &c,
        &token,
        "ORD-1",
        optty_body("TgEHcPtpN2HSrTMK-0", "24.98", "AUD"),
    )
    .send()
    .await
    .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(r#"{"refundReference":"TgEHcPtpN2HSrTMK-0","bnplProvider":"KLARNA_AU","refundedAmount":"24.98","refundStatus":"SUCCESSFUL","description":{},"refundDate":""#),
        "{body}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let date = v["refundDate"].as_str().unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    let id = v["bnplRefundId"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap();

    let order = sb.optty().order("ORD-1").unwrap();
    assert_eq!(order.refunded, dec("24.98"));
    assert_eq!(order.refundable(), dec("75.02"));
    assert_eq!(order.refunds.len(), 1);
    assert_eq!(order.refunds[0].id, id);
    assert_eq!(
        order.refunds[0].reference.as_deref(),
        Some("TgEHcPtpN2HSrTMK-0")
    );
    assert_eq!(sb.optty().refund_count(), 1);
    assert_eq!(sb.optty().requests_received(), 2);
}

#[tokio::test]
async fn over_limit_is_refused_with_the_remaining_amount() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")).refunded(dec("75.02")));
    let c = client();
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("r-1", "24.99", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"{"statusCode":400,"message":"You can only refund amount up to AUD 24.98","error":"Bad Request"}"#
                .into()
        )
    );
    let order = sb.optty().order("ORD-1").unwrap();
    assert_eq!(order.refunded, dec("75.02"));
    assert!(order.refunds.is_empty());

    // Exactly the remainder is fine.
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("r-2", "24.98", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sb.optty().order("ORD-1").unwrap().refundable(), dec("0"));
}

#[tokio::test]
async fn bad_input_answers_bad_request() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let c = client();
    let token = optty_token(&sb, &c).await;
    // JSON.parse's wording, with the offset of the offending character.
    let res = optty_refund(
        &sb,
        &c,
        &token,
        "ORD-1",
        r#"{"refundReference": abc}"#.into(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"{"statusCode":400,"message":"Unexpected token a in JSON at position 20","error":"Bad Request"}"#
                .into()
        )
    );
    let step: rust_decimal::Decimal = refund_amount::MULTIPLE_OF.parse().unwrap();
    let off_step = format!(
        r#"{{"refundReference":"r","refundAmount":{{"amount":{},"currency":"AUD"}},"refundDescription":"x"}}"#,
        rust_decimal::Decimal::ONE + step / rust_decimal::Decimal::TWO
    );
    let multiple_of_message = format!(
        "refundAmount.amount must be a multiple of {}",
        refund_amount::MULTIPLE_OF
    );
    let cases = [
        (
            r#"{"refundAmount":{"amount":1,"currency":"AUD"},"refundDescription":"x"}"#,
            "refundReference should not be empty",
        ),
        (
            r#"{"refundReference":"r","refundAmount":{"amount":"1","currency":"AUD"},"refundDescription":"x"}"#,
            "refundAmount.amount must be a number conforming to the specified constraints",
        ),
        (
            r#"{"refundReference":"r","refundAmount":{"amount":0,"currency":"AUD"},"refundDescription":"x"}"#,
            "refundAmount.amount must be a positive number",
        ),
        (
            r#"{"refundReference":"r","refundAmount":{"amount":1,"currency":"AUD"}}"#,
            "refundDescription should not be empty",
        ),
        (
            r#"{"refundReference":"r","refundAmount":{"amount":1,"currency":"AUD"},"refundDescription":7}"#,
            "refundDescription must be a string",
        ),
        // The schema's `multipleOf`: half a step off it.
        (off_step.as_str(), multiple_of_message.as_str()),
        // The same, where only the exact reading sees it: as an f64 this is 1.
        (
            r#"{"refundReference":"r","refundAmount":{"amount":1.0000000000000001,"currency":"AUD"},"refundDescription":"x"}"#,
            "refundAmount.amount must have at most 2 decimal places",
        ),
        (
            r#"{"refundReference":"r","refundAmount":{"amount":1,"currency":"NZD"},"refundDescription":"x"}"#,
            "Refund currency NZD does not match the order currency AUD",
        ),
    ];
    for (body, message) in cases {
        let res = optty_refund(&sb, &c, &token, "ORD-1", body.into())
            .send()
            .await
            .unwrap();
        assert_eq!(
            read(res).await,
            (
                400,
                format!(r#"{{"statusCode":400,"message":"{message}","error":"Bad Request"}}"#)
            ),
            "{body}"
        );
    }
    let res = optty_refund(&sb, &c, &token, "NOPE", optty_body("r", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (404, r#"{"statusCode":404,"message":"Not Found"}"#.into())
    );
    assert_eq!(sb.optty().refund_count(), 0);
}

#[tokio::test]
async fn repeated_reference_replays_or_is_refused() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    sb.optty()
        .seed_order(OrderSeed::new("ORD-2", "AUD", dec("100.00")));
    let c = client();
    let token = optty_token(&sb, &c).await;
    let first = read(
        optty_refund(
            &sb,
            &c,
            &token,
            "ORD-1",
            optty_body("ref-1", "10.00", "AUD"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(first.0, 200);
    // Same order, amount (10 == 10.00) and currency: the original answer.
    let again = read(
        optty_refund(&sb, &c, &token, "ORD-1", optty_body("ref-1", "10", "AUD"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again, first);
    assert_eq!(sb.optty().refund_count(), 1);
    assert_eq!(sb.optty().order("ORD-1").unwrap().refunded, dec("10.00"));

    let refused = (
        400,
        r#"{"statusCode":400,"message":"Refund reference ref-1 already exists","error":"Bad Request"}"#
            .to_owned(),
    );
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("ref-1", "11", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(res).await, refused);
    // Unique per merchant: another order cannot reuse it either.
    let res = optty_refund(
        &sb,
        &c,
        &token,
        "ORD-2",
        optty_body("ref-1", "10.00", "AUD"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(read(res).await, refused);
    assert_eq!(sb.optty().refund_count(), 1);
}

#[tokio::test]
async fn pending_orders_answer_pending_until_settled() {
    let sb = start().await;
    sb.optty().seed_order(
        OrderSeed::new("ORD-P", "AUD", dec("50.00")).refund_status(RefundStatus::Pending),
    );
    let c = client();
    let token = optty_token(&sb, &c).await;
    let res = optty_refund(&sb, &c, &token, "ORD-P", optty_body("p-1", "5", "AUD"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["refundStatus"], "PENDING");
    let order = sb.optty().order("ORD-P").unwrap();
    assert_eq!(order.refunds[0].status, RefundStatus::Pending);
    assert!(
        sb.optty()
            .settle_refund("ORD-P", v["bnplRefundId"].as_str().unwrap())
    );
    assert_eq!(
        sb.optty().order("ORD-P").unwrap().refunds[0].status,
        RefundStatus::Succeeded
    );
    assert!(
        sb.optty()
            .set_refund_status("ORD-P", RefundStatus::Succeeded)
    );
    let res = optty_refund(&sb, &c, &token, "ORD-P", optty_body("p-2", "5", "AUD"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["refundStatus"], "SUCCESSFUL");
}

#[tokio::test]
async fn injected_500_has_the_documented_body() {
    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")));
    let c = client();
    let token = optty_token(&sb, &c).await;
    sb.optty()
        .inject(Fault::Status(500), Match::Order("ORD-1".into()).once());
    let res = optty_refund(&sb, &c, &token, "ORD-1", optty_body("r", "1", "AUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            500,
            r#"{"statusCode":500,"message":"Internal server error"}"#.into()
        )
    );
    assert_eq!(sb.optty().refund_count(), 0);
}
