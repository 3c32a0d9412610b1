//! `Refunds::find` end to end: the facade reads the provider's own record of a refund from the
//! sandbox's read routes (Optty's Transaction Details, AfterPay's Get Order, Moyasar's Retrieve
//! Order), which answer from the same ledger as the refund routes. Found with the provider's
//! current status, absent at a stated time, AfterPay's refunds unattributed without a known
//! refund number; OpenApp publishes no read; a failed read leaves the outcome unknown; a refund
//! shows only once the sandbox's read delay has passed.

use std::time::{Duration, SystemTime};

use refunds::{ErrorKind, Finding, Lookup, Outcome, Provider, RefundStatus, Refunds};
use sandbox::{Fault, Match, Operation, RefundStatus as LedgerStatus, Sandbox, SandboxConfig};
use test_support::{handle, money, order_seed, request, seed};

/// A sandbox and a facade client of every provider pointed at it.
async fn env() -> (Sandbox, Refunds) {
    env_with(SandboxConfig::default()).await
}

async fn env_with(config: SandboxConfig) -> (Sandbox, Refunds) {
    let sb = test_support::start_sandbox_with(config).await;
    let refunds = test_support::client(&sb);
    (sb, refunds)
}

/// The refund the lookup found; panics with the finding otherwise.
fn found(lookup: &Lookup) -> &refunds::RecordedRefund {
    match &lookup.finding {
        Finding::Found(refund) => refund,
        other => panic!("expected a refund found, got {other:?}"),
    }
}

#[tokio::test]
async fn optty_finds_a_succeeded_refund_by_its_reference() {
    let (sb, refunds) = env().await;
    seed(&sb, Provider::Optty, "ORD-F1");
    let req = request(Provider::Optty, "ORD-F1", "12.50", "RF-F1");
    let before = SystemTime::now();
    let refund = refunds.refund(&req).await.unwrap();
    assert_eq!(refund.status, RefundStatus::Succeeded);

    // By the refund reference alone (the answer's bnplRefundId lost), and by the known id.
    for known in [None, refund.provider_refund_id.as_deref()] {
        let lookup = refunds.find(&req, known).await.unwrap();
        assert_eq!(lookup.provider, Provider::Optty);
        assert!(lookup.read_at >= before);
        let recorded = found(&lookup);
        assert_eq!(recorded.status, RefundStatus::Succeeded);
        assert_eq!(recorded.amount, Some(money(Provider::Optty, "12.50")));
        assert_eq!(recorded.provider_refund_id.as_deref(), Some("RF-F1"));
        assert_eq!(recorded.failure_reason.as_deref(), Some(""));
        assert!(recorded.created_at.is_some());
        assert!(String::from_utf8_lossy(lookup.raw.as_bytes()).contains("\"refunds\""));
    }
}

#[tokio::test]
async fn optty_reads_a_pending_refund_then_its_settlement() {
    let (sb, refunds) = env().await;
    handle(&sb, Provider::Optty).seed_order(
        order_seed(Provider::Optty, "ORD-F2", test_support::dec("100.00"))
            .refund_status(LedgerStatus::Pending),
    );
    let optty = handle(&sb, Provider::Optty);
    let pending = request(Provider::Optty, "ORD-F2", "10.00", "RF-P");
    let failing = request(Provider::Optty, "ORD-F2", "5.00", "RF-X");
    for req in [&pending, &failing] {
        assert_eq!(
            refunds.refund(req).await.unwrap().status,
            RefundStatus::Pending
        );
        let lookup = refunds.find(req, None).await.unwrap();
        assert_eq!(found(&lookup).status, RefundStatus::Pending);
    }
    let ledger_id = |reference: &str| optty.refunds_with_reference(reference)[0].id.clone();
    optty
        .settle("ORD-F2", &ledger_id("RF-P"), LedgerStatus::Succeeded)
        .unwrap();
    optty
        .settle("ORD-F2", &ledger_id("RF-X"), LedgerStatus::Failed)
        .unwrap();

    let lookup = refunds.find(&pending, None).await.unwrap();
    assert_eq!(found(&lookup).status, RefundStatus::Succeeded);
    let lookup = refunds.find(&failing, None).await.unwrap();
    let recorded = found(&lookup);
    assert_eq!(recorded.status, RefundStatus::Failed);
    assert_eq!(
        recorded.failure_reason.as_deref(),
        Some(sandbox::optty::FAILURE_REASON)
    );
}

#[tokio::test]
async fn optty_without_our_refund_is_absent() {
    let (sb, refunds) = env().await;
    seed(&sb, Provider::Optty, "ORD-F3");
    // Another refund on the order is not ours.
    refunds
        .refund(&request(Provider::Optty, "ORD-F3", "1.00", "RF-OTHER"))
        .await
        .unwrap();
    let lookup = refunds
        .find(&request(Provider::Optty, "ORD-F3", "1.00", "RF-MINE"), None)
        .await
        .unwrap();
    assert_eq!(lookup.finding, Finding::Absent);
}

#[tokio::test]
async fn afterpay_finds_by_refund_number_or_lists_the_orders_refunds() {
    let (sb, refunds) = env().await;
    seed(&sb, Provider::AfterPay, "AP-F1");
    seed(&sb, Provider::AfterPay, "AP-F2");
    let req = request(Provider::AfterPay, "AP-F1", "20.00", "RF-A1");
    let refund = refunds.refund(&req).await.unwrap();
    let number = refund.provider_refund_id.clone().expect("a refund number");

    let lookup = refunds.find(&req, Some(&number)).await.unwrap();
    let recorded = found(&lookup);
    assert_eq!(recorded.status, RefundStatus::Succeeded);
    assert_eq!(
        recorded.provider_refund_id.as_deref(),
        Some(number.as_str())
    );
    assert_eq!(
        recorded.amount,
        Some(money(Provider::AfterPay, "20.00")),
        "positive, though Riverty writes it negative"
    );

    // Without the number, Riverty's record cannot tell which refund is ours.
    let lookup = refunds.find(&req, None).await.unwrap();
    let Finding::Unattributed(listed) = &lookup.finding else {
        panic!("expected unattributed refunds, got {:?}", lookup.finding)
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].provider_refund_id.as_deref(),
        Some(number.as_str())
    );

    // A number the order does not have, and an order without refunds: absent.
    let lookup = refunds.find(&req, Some("999999999")).await.unwrap();
    assert_eq!(lookup.finding, Finding::Absent);
    let other = request(Provider::AfterPay, "AP-F2", "20.00", "RF-A2");
    let lookup = refunds.find(&other, None).await.unwrap();
    assert_eq!(lookup.finding, Finding::Absent);
}

#[tokio::test]
async fn moyasar_finds_our_transaction_or_nothing() {
    let (sb, refunds) = env().await;
    seed(&sb, Provider::Moyasar, "MY-F1");
    let req = request(Provider::Moyasar, "MY-F1", "7.25", "RF-M1");
    let refund = refunds.refund(&req).await.unwrap();

    let lookup = refunds.find(&req, None).await.unwrap();
    let recorded = found(&lookup);
    assert_eq!(recorded.status, RefundStatus::Succeeded);
    assert_eq!(recorded.amount, Some(money(Provider::Moyasar, "7.25")));
    assert_eq!(recorded.provider_refund_id, refund.provider_refund_id);

    let absent = request(Provider::Moyasar, "MY-F1", "7.25", "RF-M2");
    let lookup = refunds.find(&absent, None).await.unwrap();
    assert_eq!(lookup.finding, Finding::Absent);
}

#[tokio::test]
async fn openapp_publishes_no_read() {
    let (sb, refunds) = env().await;
    seed(&sb, Provider::OpenApp, "OA-F1");
    let req = request(Provider::OpenApp, "OA-F1", "5.00", "RF-O1");
    refunds.refund(&req).await.unwrap();
    let err = refunds.find(&req, None).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidRequest { field, .. } if field == "provider"),
        "{err}"
    );
    assert_eq!(err.outcome(), Outcome::Unknown);
    assert_eq!(
        handle(&sb, Provider::OpenApp).requests_received(),
        1,
        "nothing sent for the read"
    );
}

#[tokio::test]
async fn a_failed_read_leaves_the_outcome_unknown_and_the_next_read_works() {
    let (sb, refunds) = env().await;
    for provider in [Provider::Optty, Provider::AfterPay, Provider::Moyasar] {
        let order = format!("ORD-FAULT-{}", provider.as_str());
        seed(&sb, provider, &order);
        let req = request(provider, &order, "3.00", "RF-FAULT");
        refunds.refund(&req).await.unwrap();
        let server = handle(&sb, provider);
        let rule = server.inject(Fault::Status(503), Match::Any.on(Operation::Read).once());
        let err = refunds.find(&req, None).await.unwrap_err();
        assert_eq!(err.http_status(), Some(503), "{provider}: {err}");
        assert_eq!(err.outcome(), Outcome::Unknown, "{provider}");
        assert_eq!(rule.fired(), 1, "{provider}");
        let lookup = refunds.find(&req, None).await.unwrap();
        assert!(
            matches!(lookup.finding, Finding::Found(_) | Finding::Unattributed(_)),
            "{provider}: {:?}",
            lookup.finding
        );
    }
}

#[tokio::test]
async fn a_refund_is_absent_until_the_read_delay_passed() {
    let delay = Duration::from_millis(600);
    let (sb, refunds) = env_with(SandboxConfig {
        read_delay: delay,
        ..SandboxConfig::default()
    })
    .await;
    for provider in [Provider::Optty, Provider::AfterPay, Provider::Moyasar] {
        let order = format!("ORD-DELAY-{}", provider.as_str());
        seed(&sb, provider, &order);
    }
    let requests: Vec<_> = [Provider::Optty, Provider::AfterPay, Provider::Moyasar]
        .into_iter()
        .map(|provider| {
            request(
                provider,
                &format!("ORD-DELAY-{}", provider.as_str()),
                "4.00",
                "RF-DELAY",
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let mut known = Vec::new();
    for req in &requests {
        known.push(refunds.refund(req).await.unwrap().provider_refund_id);
    }
    // Every refund was recorded between `started` and `recorded`.
    let recorded = std::time::Instant::now();
    for (req, known) in requests.iter().zip(&known) {
        let lookup = refunds.find(req, known.as_deref()).await.unwrap();
        if started.elapsed() < delay {
            assert_eq!(lookup.finding, Finding::Absent, "{}", req.provider);
        }
    }
    tokio::time::sleep(delay.saturating_sub(recorded.elapsed()) + Duration::from_millis(50)).await;
    for (req, known) in requests.iter().zip(&known) {
        let lookup = refunds.find(req, known.as_deref()).await.unwrap();
        assert_eq!(
            found(&lookup).status,
            RefundStatus::Succeeded,
            "{}",
            req.provider
        );
    }
}
