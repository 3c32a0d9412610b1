//! Every fault kind, on every provider, as a client sees it.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Client;
use sandbox::credentials::OPENAPP_API_SECRET;
use sandbox::{Fault, Match, OrderSeed, Room, Sandbox, openapp};

/// Every provider of the sandbox, by name.
const PROVIDERS: &[&str] = sandbox::PROVIDERS;

/// Seeds order `O-1` (PLN 100.00) on every provider.
fn seed(sb: &Sandbox) {
    for &p in PROVIDERS {
        provider(sb, p).seed_order(OrderSeed::new("O-1", "PLN", dec("100.00")));
    }
}

/// The room of the provider named `p`.
fn room<'a>(sb: &'a Sandbox, p: &str) -> &'a dyn Room {
    sb.room(p)
        .unwrap_or_else(|| panic!("the sandbox has no room named {p:?}"))
}

/// The duplicate key of refund `n` as `p` records it: its room's key for `key-<n>`.
fn key(sb: &Sandbox, p: &str, n: usize) -> String {
    room(sb, p).example_key(&format!("key-{n}"))
}

/// A valid refund of 1.00 of `O-1` under the duplicate key of `key-<n>`, sent as the
/// provider's client would (its room's [`Room::send_example_refund`]).
async fn refund(sb: &Sandbox, c: &Client, p: &str, n: usize) -> reqwest::Result<reqwest::Response> {
    room(sb, p)
        .send_example_refund(c, "O-1", "PLN", &format!("key-{n}"))
        .await
}

/// Refund `n` of 1.00 was recorded exactly once on `p`, leaving `refunded`
/// as O-1's total.
fn assert_recorded(sb: &Sandbox, p: &str, n: usize, refunded: &str) {
    let found = provider(sb, p).refunds_with_reference(&key(sb, p, n));
    assert_eq!(found.len(), 1, "{p}: {found:?}");
    assert_eq!(found[0].amount, dec("1.00"), "{p}");
    assert_eq!(
        provider(sb, p).order("O-1").unwrap().refunded,
        dec(refunded),
        "{p}"
    );
}

#[tokio::test]
async fn drop_after_commit_records_then_closes_without_a_response() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for &p in PROVIDERS {
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
    for &p in PROVIDERS {
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
    for &p in PROVIDERS {
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
    for &p in PROVIDERS {
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
    for &p in PROVIDERS {
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
        let err = refund(&sb, &impatient, p, 2).await.unwrap_err();
        assert!(err.is_timeout(), "{p}: {err:?}");
        wait_until(|| provider(&sb, p).refund_count() == 2).await;
    }
}

#[tokio::test]
async fn faults_apply_per_order_and_can_be_cleared() {
    let sb = start().await;
    seed(&sb);
    sb.afterpay()
        .seed_order(OrderSeed::new("O-2", "PLN", dec("10.00")));
    let c = client();
    let h = sb
        .afterpay()
        .inject(Fault::Status(500), Match::Order("O-2".into()));
    assert_eq!(refund(&sb, &c, "afterpay", 1).await.unwrap().status(), 200);
    let refund_o2 = async || {
        afterpay_refund(&sb, &c, "O-2", afterpay_body("000000001", "1", "1", None))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(refund_o2().await, 500);
    assert_eq!(refund_o2().await, 500);
    assert_eq!(h.fired(), 2);
    h.clear();
    assert_eq!(refund_o2().await, 200);
    sb.afterpay().inject(Fault::NonJson502, Match::Any).times(2);
    sb.afterpay().clear_faults();
    assert_eq!(refund(&sb, &c, "afterpay", 3).await.unwrap().status(), 200);
}

#[tokio::test]
async fn status_after_commit_records_then_answers_a_gateway_page() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let cases = [
        (504, "504 Gateway Time-out"),
        (502, "502 Bad Gateway"),
        (503, "503 Service Temporarily Unavailable"),
        (520, "520 "),
    ];
    // Every provider, the gateway pages taken in turn.
    for (p, (code, title)) in PROVIDERS.iter().copied().zip(cases.into_iter().cycle()) {
        provider(&sb, p).inject(Fault::StatusAfterCommit(code), Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), code, "{p}");
        assert_eq!(res.headers()["content-type"], "text/html", "{p}");
        assert!(res.headers().get("x-app-signature").is_none(), "{p}");
        let body = res.text().await.unwrap();
        assert!(body.contains(&format!("<title>{title}")), "{p}: {body}");
        assert_recorded(&sb, p, 1, "1.00");
        assert!(provider(&sb, p).refunds_with_reference("key-9").is_empty());
    }
}

#[tokio::test]
async fn unsigned_answer_records_then_drops_openapps_signature() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for &p in PROVIDERS {
        provider(&sb, p).inject(Fault::UnsignedAnswer, Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        assert!(res.headers().get("authorization").is_none(), "{p}");
        assert!(res.headers().get("x-app-signature").is_none(), "{p}");
        // The real answer otherwise.
        let body: serde_json::Value = res.json().await.unwrap();
        if p == "openapp" {
            assert_eq!(body["status"], "REGISTERED");
            assert_eq!(body["caseId"], "key-1");
        }
        assert_recorded(&sb, p, 1, "1.00");
    }
    // Once only: OpenApp signs its next answer again.
    let res = refund(&sb, &c, "openapp", 2).await.unwrap();
    assert!(res.headers().contains_key("x-app-signature"));
}

#[tokio::test]
async fn wrong_signature_records_then_signs_another_body() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    for &p in PROVIDERS {
        provider(&sb, p).inject(Fault::WrongSignature, Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        if p == "openapp" {
            let auth = res.headers()["authorization"].to_str().unwrap().to_owned();
            let sig = res.headers()["x-app-signature"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = res.bytes().await.unwrap();
            assert!(openapp::parse_authorization(&auth).is_some(), "{auth}");
            assert!(!openapp::verify(OPENAPP_API_SECRET, &auth, &body, &sig));
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["status"], "REGISTERED");
        } else {
            assert!(res.headers().get("x-app-signature").is_none(), "{p}");
            res.json::<serde_json::Value>().await.unwrap();
        }
        assert_recorded(&sb, p, 1, "1.00");
    }
    // Once only: the next OpenApp answer verifies.
    let res = refund(&sb, &c, "openapp", 2).await.unwrap();
    let auth = res.headers()["authorization"].to_str().unwrap().to_owned();
    let sig = res.headers()["x-app-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = res.bytes().await.unwrap();
    assert!(openapp::verify(OPENAPP_API_SECRET, &auth, &body, &sig));
}

#[tokio::test]
async fn oversized_body_records_then_streams_exactly_n_bytes_of_json() {
    const N: usize = 3 * 1024 * 1024;
    let sb = start().await;
    seed(&sb);
    let c = client();
    for &p in PROVIDERS {
        provider(&sb, p).inject(Fault::OversizedBody(N), Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        assert_eq!(
            res.headers()["content-type"],
            "application/json; charset=utf-8",
            "{p}"
        );
        assert!(res.headers().get("content-length").is_none(), "{p}");
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), N, "{p}");
        assert!(body.starts_with(br#"{"padding":"xxx"#), "{p}");
        assert!(body.ends_with(br#"xx"}"#), "{p}");
        assert_recorded(&sb, p, 1, "1.00");
    }
    // Small sizes: the whole padding object, then a prefix of it.
    for (n, (size, expected)) in [(14, r#"{"padding":""}"#), (5, r#"{"pad"#), (0, "")]
        .into_iter()
        .enumerate()
    {
        sb.afterpay()
            .inject(Fault::OversizedBody(size), Match::Any.once());
        let res = refund(&sb, &c, "afterpay", n + 2).await.unwrap();
        assert_eq!(res.text().await.unwrap(), expected);
    }
}

#[tokio::test]
async fn oversized_headers_record_then_pad_the_real_answer() {
    const SMALL: usize = 64 * 1024;
    const LARGE: usize = 1024 * 1024;
    let sb = start().await;
    seed(&sb);
    let c = client();
    for &p in PROVIDERS {
        provider(&sb, p).inject(Fault::OversizedHeaders(SMALL), Match::Any.once());
        let res = refund(&sb, &c, p, 1).await.unwrap();
        assert_eq!(res.status(), 200, "{p}");
        let padding = res.headers()["x-sandbox-padding"].as_bytes();
        assert_eq!(padding.len(), SMALL, "{p}");
        assert!(padding.iter().all(u8::is_ascii_graphic), "{p}");
        res.json::<serde_json::Value>().await.unwrap();
        assert_recorded(&sb, p, 1, "1.00");

        // Beyond hyper's limit on a response head: no answer the client can
        // parse, yet the refund was recorded.
        provider(&sb, p).inject(Fault::OversizedHeaders(LARGE), Match::Any.once());
        let err = refund(&sb, &c, p, 2).await.expect_err(p);
        assert!(!err.is_status() && !err.is_timeout(), "{p}: {err:?}");
        assert_recorded(&sb, p, 2, "2.00");
    }
}
