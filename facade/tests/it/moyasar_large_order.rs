//! Large Moyasar answers: Moyasar answers a refund with the whole order, every earlier refund
//! listed, so an order with thousands of refunds answers megabytes. An applied refund on an
//! order with 3,000 earlier refunds (about 1.1 MB, past the other providers' 512 KiB cap) is
//! reported applied, within Moyasar's own answer cap (`MoyasarConfig::DEFAULT_ANSWER_LIMITS`,
//! 4 MiB); an answer past that cap is still an unknown outcome, with a message that names it.
//!
//! The earlier refunds are recorded through the sandbox's Rust API
//! (`MoyasarServer::record_refunds`): sent one by one, each call answers the whole order so far,
//! and 3,000 of them take minutes in a debug build.

use std::time::Duration;

use refunds::{
    AnswerLimits, ErrorKind, Finding, MoyasarConfig, Provider, RefundError, RefundStatus, Refunds,
};
use sandbox::Sandbox;
use sandbox::credentials::MOYASAR_SECRET_KEY;
use test_support::{handle, money, request, seed_amount, start_sandbox};

const PROVIDER: Provider = Provider::Moyasar;

/// Each earlier refund: 1.00 (100 minor units of the test currency).
const EARLIER_MINOR: i64 = 100;

/// Generous: the sandbox renders an order of megabytes per answer in a debug build.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A client of Moyasar alone, with the production default caps unless `limits` says otherwise.
fn client(sb: &Sandbox, limits: Option<AnswerLimits>) -> Refunds {
    let config =
        MoyasarConfig::new(sb.moyasar().base_url(), MOYASAR_SECRET_KEY).with_timeout(TIMEOUT);
    let config = match limits {
        Some(limits) => config.with_answer_limits(limits),
        None => config,
    };
    Refunds::builder()
        .moyasar(config)
        .build()
        .expect("a Moyasar client")
}

/// Seeds `order_id` with room for `earlier` refunds of 1.00 and one of 10.00 per `calls`, and
/// records the `earlier` ones.
fn order_with_earlier_refunds(sb: &Sandbox, order_id: &str, earlier: usize, calls: usize) {
    let captured = format!("{}.00", earlier + 10 * calls);
    seed_amount(sb, PROVIDER, order_id, &captured);
    let state = sb
        .moyasar()
        .record_refunds(order_id, earlier, EARLIER_MINOR)
        .expect("recording the earlier refunds");
    assert_eq!(state.refunds.len(), earlier);
}

fn unknown_past_the_cap(error: &RefundError, cap: usize) {
    assert_eq!(error.kind(), &ErrorKind::Protocol, "{error}");
    assert!(error.outcome_unknown(), "{error}");
    assert_eq!(error.http_status(), Some(200), "{error}");
    let message = error.provider_message().unwrap_or_default();
    assert!(
        message.contains(&format!("more than the {cap} allowed"))
            || message.contains(&format!("larger than the {cap} bytes allowed")),
        "the message names the {cap}-byte cap: {message}"
    );
    assert!(
        message.contains("the refund may have been applied"),
        "{message}"
    );
}

#[tokio::test]
async fn an_applied_refund_on_an_order_with_3000_earlier_refunds_is_applied() {
    const EARLIER: usize = 3_000;
    let sb = start_sandbox().await;
    order_with_earlier_refunds(&sb, "ORD-3000", EARLIER, 2);
    let refunds = client(&sb, None);
    assert!(
        MoyasarConfig::new("http://x", "k").limits.max_body_bytes
            > AnswerLimits::DEFAULT.max_body_bytes,
        "Moyasar's default cap is its own"
    );

    let req = request(PROVIDER, "ORD-3000", "10.00", "RF-LARGE-1");
    let refund = refunds
        .refund(&req)
        .await
        .expect("an applied refund is reported applied, not unknown");
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.amount, money(PROVIDER, "10.00"));
    let ours = req.merchant_reference.moyasar_transaction_id().to_string();
    assert_eq!(refund.provider_refund_id.as_deref(), Some(ours.as_str()));
    assert_eq!(refund.refunded_total, Some(money(PROVIDER, "3010.00")));
    // The answer really is the whole order, past the cap the other providers keep.
    let raw = refund.raw.as_bytes();
    assert!(
        raw.len() > AnswerLimits::DEFAULT.max_body_bytes,
        "the answer ({} bytes) is past 512 KiB",
        raw.len()
    );
    assert!(raw.len() <= MoyasarConfig::DEFAULT_ANSWER_LIMITS.max_body_bytes);
    let text = String::from_utf8_lossy(raw);
    assert_eq!(text.matches(r#""type":"refund""#).count(), EARLIER + 1);

    // Retrieve Order reads the same order within the same caps.
    let lookup = refunds.find(&req, None).await.expect("the order is read");
    match lookup.finding {
        Finding::Found(found) => {
            assert_eq!(found.status, RefundStatus::Succeeded);
            assert_eq!(found.amount, Some(money(PROVIDER, "10.00")));
        }
        other => panic!("our refund is in the order: {other:?}"),
    }

    // The same answer within the other providers' 512 KiB: what the default was before, an
    // unknown outcome for a refund the sandbox applied.
    let small = client(&sb, Some(AnswerLimits::DEFAULT));
    let req = request(PROVIDER, "ORD-3000", "10.00", "RF-LARGE-2");
    let error = small.refund(&req).await.expect_err("past 512 KiB");
    unknown_past_the_cap(&error, AnswerLimits::DEFAULT.max_body_bytes);
    let order = handle(&sb, PROVIDER).order("ORD-3000").expect("the order");
    assert_eq!(order.refunds.len(), EARLIER + 2, "the refund was recorded");

    sb.shutdown().await;
}

#[tokio::test]
async fn an_answer_past_moyasars_cap_is_unknown_with_the_cap_named() {
    let cap = MoyasarConfig::DEFAULT_ANSWER_LIMITS.max_body_bytes;
    // At 300 bytes a refund transaction (the sandbox writes about 360), past the cap.
    let earlier = cap / 300;
    let sb = start_sandbox().await;
    order_with_earlier_refunds(&sb, "ORD-HUGE", earlier, 1);
    let refunds = client(&sb, None);

    let req = request(PROVIDER, "ORD-HUGE", "10.00", "RF-HUGE-1");
    let error = refunds.refund(&req).await.expect_err("past Moyasar's cap");
    unknown_past_the_cap(&error, cap);
    // The sandbox applied it: the outcome really is unknown.
    let order = handle(&sb, PROVIDER).order("ORD-HUGE").expect("the order");
    assert_eq!(order.refunds.len(), earlier + 1, "the refund was recorded");

    sb.shutdown().await;
}
