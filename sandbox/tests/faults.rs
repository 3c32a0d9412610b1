//! Every fault kind, on every provider, as a client sees it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Client;
use sandbox::{Fault, Match, OrderSeed, Sandbox};

const PROVIDERS: [&str; 4] = ["optty", "afterpay", "moyasar", "openapp"];

/// Seeds order `O-1` (PLN 100.00) on every provider.
fn seed(sb: &Sandbox) {
    for p in PROVIDERS {
        provider(sb, p).seed_order(OrderSeed::new("O-1", "PLN", dec("100.00")));
    }
}

/// A valid refund of 1.00 with duplicate key `key-<n>`.
async fn refund(sb: &Sandbox, c: &Client, p: &str, n: usize) -> reqwest::Result<reqwest::Response> {
    match p {
        "optty" => {
            let token = optty_token(sb, c).await;
            optty_refund(
                sb,
                c,
                &token,
                "O-1",
                optty_body(&format!("key-{n}"), "1.00", "PLN"),
            )
            .send()
            .await
        }
        "afterpay" => {
            afterpay_refund(
                sb,
                c,
                "O-1",
                afterpay_body("000000001", "1.00", "1", Some(&format!("key-{n}"))),
            )
            .send()
            .await
        }
        "moyasar" => {
            let tx = uuid::Uuid::new_v4();
            moyasar_refund(
                sb,
                c,
                "O-1",
                format!(r#"{{"amount":100,"transaction_id":"{tx}"}}"#),
            )
            .send()
            .await
        }
        "openapp" => {
            openapp_refund(sb, c, openapp_body("O-1", "O-1", 100, &format!("key-{n}")))
                .send()
                .await
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn drop_after_commit_records_then_closes_without_a_response() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for p in PROVIDERS {
        let h = provider(&sb, p).inject(Fault::DropAfterCommit, Match::Any.once());
        let err = refund(&sb, &c, p, 1).await.expect_err(p);
        assert!(!err.is_status() && !err.is_timeout(), "{p}: {err:?}");
        assert_eq!(h.fired(), 1);
        assert_eq!(
            provider(&sb, p).refund_count(),
            1,
            "{p} recorded the refund"
        );
        assert_eq!(
            provider(&sb, p).order("O-1").unwrap().refunded,
            dec("1.00"),
            "{p}"
        );
        // Cleared after once: the next refund is answered normally.
        assert_eq!(refund(&sb, &c, p, 2).await.unwrap().status(), 200, "{p}");
    }
}

#[tokio::test]
async fn status_faults_answer_at_once_and_do_nothing() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for p in PROVIDERS {
        provider(&sb, p).inject(Fault::Status(503), Match::Order("O-1".into()).once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 503, "{p}");
        assert_eq!(provider(&sb, p).refund_count(), 0, "{p}");
    }
}

#[tokio::test]
async fn malformed_body_is_200_html_after_recording() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for p in PROVIDERS {
        provider(&sb, p).inject(Fault::MalformedBody, Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        let body = res.text().await.unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&body).is_err(),
            "{p}: {body}"
        );
        assert!(body.contains("502 Bad Gateway"));
        assert_eq!(provider(&sb, p).refund_count(), 1, "{p}");
    }
}

#[tokio::test]
async fn non_json_502_does_nothing() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for p in PROVIDERS {
        provider(&sb, p).inject(Fault::NonJson502, Match::Nth(1));
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 502, "{p}");
        assert_eq!(res.headers()["content-type"], "text/html");
        assert!(res.text().await.unwrap().starts_with("<html>"));
        assert_eq!(provider(&sb, p).refund_count(), 0, "{p}");
        // Nth(1) fired on the first request only.
        assert_eq!(refund(&sb, &c, p, 2).await.unwrap().status(), 200, "{p}");
    }
}

#[tokio::test]
async fn latency_delays_the_answer_and_outlives_an_impatient_client() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for p in PROVIDERS {
        provider(&sb, p).inject(
            Fault::Latency(Duration::from_millis(300)),
            Match::Any.once(),
        );
        let started = Instant::now();
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        assert!(started.elapsed() >= Duration::from_millis(300), "{p}");

        // A client that gives up still leaves a recorded refund behind.
        provider(&sb, p).inject(
            Fault::Latency(Duration::from_millis(300)),
            Match::Any.once(),
        );
        let err = if p == "optty" {
            let token = optty_token(&sb, &c).await;
            optty_refund(
                &sb,
                &impatient,
                &token,
                "O-1",
                optty_body("key-2", "1.00", "PLN"),
            )
            .send()
            .await
            .unwrap_err()
        } else {
            refund(&sb, &impatient, p, 2).await.unwrap_err()
        };
        assert!(err.is_timeout(), "{p}: {err:?}");
        wait_until(|| provider(&sb, p).refund_count() == 2).await;
    }
}

#[tokio::test]
async fn faults_apply_per_order_and_can_be_cleared() {
    let sb = start().await;
    seed(&sb);
    sb.afterpay
        .seed_order(OrderSeed::new("O-2", "PLN", dec("10.00")));
    let c = client();
    let h = sb
        .afterpay
        .inject(Fault::Status(500), Match::Order("O-2".into()));
    assert_eq!(refund(&sb, &c, "afterpay", 1).await.unwrap().status(), 200);
    let res = afterpay_refund(&sb, &c, "O-2", afterpay_body("000000001", "1", "1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let res = afterpay_refund(&sb, &c, "O-2", afterpay_body("000000001", "1", "1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(h.fired(), 2);
    h.clear();
    let res = afterpay_refund(&sb, &c, "O-2", afterpay_body("000000001", "1", "1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sb.afterpay.inject(Fault::NonJson502, Match::Any).times(2);
    sb.afterpay.clear_faults();
    assert_eq!(refund(&sb, &c, "afterpay", 3).await.unwrap().status(), 200);
}
