//! Moyasar over real HTTP.

use std::time::Duration;

use crate::common::*;
use base64::Engine as _;
use sandbox::credentials::{MOYASAR_KEY_WITHOUT_REFUND, MOYASAR_SECRET_KEY};
use sandbox::{Fault, Match, OrderSeed};
use serde_json::Value;

const ORDER: &str = "0191f5a7-44a9-76c2-9fec-39709fdbf723";
const TX: &str = "f351a2a3-97c4-4f12-add3-80c1044091f5";

fn seed(sb: &sandbox::Sandbox) {
    sb.moyasar()
        .seed_order(OrderSeed::from_minor(ORDER, "SAR", 262_346));
}

#[tokio::test]
async fn auth_errors_follow_the_docs() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let url = format!("{}/v1/orders/{ORDER}/refund", sb.moyasar().base_url());
    let body = r#"{"amount":100}"#;
    let res = c.post(&url).body(body).send().await.unwrap();
    assert_eq!(
        read(res).await,
        (
            401,
            r#"{"message":"Missing authentication information"}"#.into()
        )
    );
    let res = c
        .post(&url)
        .bearer_auth("sk_test_wrong")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            401,
            r#"{"message":"Invalid authorization credentials"}"#.into()
        )
    );
    let res = c
        .post(&url)
        .bearer_auth(MOYASAR_KEY_WITHOUT_REFUND)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (403, r#"{"message":"Unauthorized"}"#.into())
    );
    assert_eq!(sb.moyasar().refund_count(), 0);
    // HTTP Basic with the key as user works as well as Bearer.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{MOYASAR_SECRET_KEY}:"));
    let res = c
        .post(&url)
        .header("authorization", format!("Basic {basic}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refund_answers_the_whole_order() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let res = moyasar_refund(
        &sb,
        &c,
        ORDER,
        format!(r#"{{"amount":262346,"transaction_id":"{TX}"}}"#),
    )
    .send()
    .await
    .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 200, "{body}");
    // Field order as in the docs' example.
    let keys = [
        "\"id\"",
        "\"merchant\"",
        "\"currency\"",
        "\"amount\"",
        "\"captured_amount\"",
        "\"refunded_amount\"",
        "\"voided_amount\"",
        "\"description\"",
        "\"created_at\"",
        "\"updated_at\"",
        "\"source\"",
        "\"reauthorized_order_id\"",
        "\"airline\"",
        "\"sub_merchant\"",
        "\"agreement\"",
        "\"transactions\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| body.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");

    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], ORDER);
    assert_eq!(v["currency"], "SAR");
    assert_eq!(v["amount"].as_i64(), Some(262_346));
    assert_eq!(v["captured_amount"].as_i64(), Some(262_346));
    assert_eq!(v["refunded_amount"].as_i64(), Some(262_346));
    assert_eq!(v["voided_amount"].as_i64(), Some(0));
    assert!(v["reauthorized_order_id"].is_null() && v["agreement"].is_null());
    let txs = v["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[0]["type"], "capture");
    let refund = &txs[1];
    assert_eq!(refund["id"], TX);
    assert_eq!(refund["type"], "refund");
    assert_eq!(refund["status"], "approved");
    assert_eq!(refund["amount"].as_i64(), Some(262_346));
    assert!(refund["auth_code"].is_null() && refund["reverse_reason"].is_null());

    let order = sb.moyasar().order(ORDER).unwrap();
    assert_eq!(order.refunded, dec("2623.46"));
    assert_eq!(order.refunds[0].id, TX);
}

#[tokio::test]
async fn minor_units_follow_the_currency_exponent() {
    let sb = start().await;
    sb.moyasar()
        .seed_order(OrderSeed::new("K-1", "KWD", dec("5.000")));
    sb.moyasar()
        .seed_order(OrderSeed::new("J-1", "JPY", dec("500")));
    let c = client();
    let res = moyasar_refund(&sb, &c, "K-1", r#"{"amount":1234}"#.into())
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["captured_amount"].as_i64(), Some(5000));
    assert_eq!(v["refunded_amount"].as_i64(), Some(1234));
    assert_eq!(sb.moyasar().order("K-1").unwrap().refunded, dec("1.234"));
    let res = moyasar_refund(&sb, &c, "J-1", r#"{"amount":500}"#.into())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sb.moyasar().order("J-1").unwrap().refunded, dec("500"));
    // A seed that does not convert exactly is refused.
    assert!(
        sb.moyasar()
            .try_seed_order(OrderSeed::new("S-1", "SAR", dec("1.005")))
            .is_err()
    );
}

#[tokio::test]
async fn validation_is_422_with_field_errors() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    use moyasar_api::constraints::refund_order as spec;
    let (min, max) = (spec::amount::MINIMUM, spec::amount::MAXIMUM);
    let id_min = spec::transaction_id::MIN_LENGTH;
    let cases = [
        (
            format!(r#"{{"amount":{}}}"#, min - 1),
            format!(
                r#"{{"message":"Data validation failed","errors":{{"amount":["The value must be greater than or equal to {min}."]}}}}"#
            ),
        ),
        (
            format!(r#"{{"amount":{}}}"#, max + 1),
            format!(
                r#"{{"message":"Data validation failed","errors":{{"amount":["The value must be less than or equal to {max}."]}}}}"#
            ),
        ),
        (
            r#"{"amount":1.5,"transaction_id":"nope"}"#.to_owned(),
            format!(
                r#"{{"message":"Data validation failed","errors":{{"amount":["The value must be an integer."],"transaction_id":["The value must be at least {id_min} characters.","The value must be a valid UUID."]}}}}"#
            ),
        ),
    ];
    for (body, expected) in cases {
        let res = moyasar_refund(&sb, &c, ORDER, body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(read(res).await, (422, expected), "{body}");
    }
    let res = moyasar_refund(&sb, &c, "missing", r#"{"amount":1}"#.into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (404, r#"{"message":"Object not found"}"#.into())
    );
    assert_eq!(sb.moyasar().refund_count(), 0);
}

#[tokio::test]
async fn beyond_refundable_is_400_and_changes_nothing() {
    let sb = start().await;
    sb.moyasar()
        .seed_order(OrderSeed::from_minor(ORDER, "SAR", 10_000).refunded(dec("99.00")));
    let c = client();
    let res = moyasar_refund(&sb, &c, ORDER, r#"{"amount":101}"#.into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"{"message":"Refund amount exceeds the refundable amount."}"#.into()
        )
    );
    assert_eq!(sb.moyasar().order(ORDER).unwrap().refunded, dec("99.00"));
    // The seeded refund shows as a transaction; the last 1.00 can go.
    let res = moyasar_refund(&sb, &c, ORDER, r#"{"amount":100}"#.into())
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["transactions"].as_array().unwrap().len(), 3);
    assert_eq!(v["refunded_amount"].as_i64(), Some(10_000));
}

#[tokio::test]
async fn repeated_transaction_id_returns_the_order_without_a_new_refund() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let body = format!(r#"{{"amount":1000,"transaction_id":"{TX}"}}"#);
    let first: Value = moyasar_refund(&sb, &c, ORDER, body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = moyasar_refund(&sb, &c, ORDER, body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(sb.moyasar().refund_count(), 1);
    assert_eq!(again["refunded_amount"].as_i64(), Some(1000));
}

#[tokio::test]
async fn duplicate_while_in_flight_is_still_processing() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    sb.moyasar().inject(
        Fault::Latency(Duration::from_millis(800)),
        Match::Any.once(),
    );
    let body = format!(r#"{{"amount":1000,"transaction_id":"{TX}"}}"#);
    let first = tokio::spawn(moyasar_refund(&sb, &c, ORDER, body.clone()).send());
    wait_until(|| sb.moyasar().in_flight() == 1).await;
    let res = moyasar_refund(&sb, &c, ORDER, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(res).await,
        (
            400,
            r#"{"message":"Initial request is still processing."}"#.into()
        )
    );
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(sb.moyasar().in_flight(), 0);
    assert_eq!(sb.moyasar().refund_count(), 1);
    // Afterwards the repeat is a plain replay.
    let res = moyasar_refund(&sb, &c, ORDER, body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sb.moyasar().refund_count(), 1);
}
