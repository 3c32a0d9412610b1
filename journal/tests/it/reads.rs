//! Settling by reading the provider's record (`Refunds::find`): pending refunds to their final
//! status, unknown outcomes found (Optty, Moyasar) or attributed (AfterPay), the per-order
//! lease, and migration 3 over rows an earlier version wrote. Each an `async fn(Backend)` like
//! [`crate::scenarios`], run on both backends.

use std::time::Duration;

use refunds::{Outcome, Provider, RefundStatus};
use refunds_journal::{
    EntryState, ErrorOutcome, EventKind, JournalError, JournaledRefund, Reconciliation, SettledBy,
};
use sandbox::{Fault, Match, Operation};

use crate::harness::{
    Backend, Env, TestDb, config_with_settling_delay, history_kinds, reference, request,
};

/// Optty refunds answered `PENDING`: while the record says pending, reconcile leaves them and
/// reports nothing; once the provider settles them, one succeeded is recorded
/// (`StatusRead`) and one failed is raised distinctly (`FailedAfterApplied`, its own event
/// kind, listed by `failed_after_applied`). Nothing is sent.
pub async fn pending_refunds_are_settled_by_reading(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    let mut requests = Vec::new();
    for (order, reference) in [("ORD-P-1", "RF-P-1"), ("ORD-P-2", "RF-P-2")] {
        env.seed_pending(Provider::Optty, order);
        let req = request(Provider::Optty, order, "10.00", reference);
        let result = journal.refund(&refunds, &req).await.unwrap();
        let JournaledRefund::Applied { entry, .. } = &result else {
            panic!("{result:?}");
        };
        assert_eq!(entry.refund_status, Some(RefundStatus::Pending));
        requests.push(req);
    }
    assert_eq!(journal.pending().await.unwrap().len(), 2);

    // Still pending at the provider: left as is, nothing reported.
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(report.reconciled.is_empty(), "{report:?}");
    assert_eq!(journal.pending().await.unwrap().len(), 2);

    let optty = env.handle(Provider::Optty);
    optty
        .settle(
            &requests[0].order_id,
            &env.refund_id(&requests[0]),
            sandbox::RefundStatus::Succeeded,
        )
        .unwrap();
    optty
        .settle(
            &requests[1].order_id,
            &env.refund_id(&requests[1]),
            sandbox::RefundStatus::Failed,
        )
        .unwrap();
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 2, "{report:?}");
    let Reconciliation::StatusRead { entry } = &report.reconciled[0] else {
        panic!("{report:?}");
    };
    assert_eq!(entry.merchant_reference, requests[0].merchant_reference);
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.refund_status, Some(RefundStatus::Succeeded));
    let Reconciliation::FailedAfterApplied { entry, reason } = &report.reconciled[1] else {
        panic!("{report:?}");
    };
    assert_eq!(entry.merchant_reference, requests[1].merchant_reference);
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.refund_status, Some(RefundStatus::Failed));
    assert!(entry.failed_after_applied());
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("declined")),
        "{reason:?}"
    );
    let value = serde_json::to_value(&report.reconciled[1]).unwrap();
    assert_eq!(value["action"], "failed_after_applied");

    assert!(journal.pending().await.unwrap().is_empty());
    let failed = journal.failed_after_applied().await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].merchant_reference, requests[1].merchant_reference);
    assert_eq!(
        history_kinds(&journal, Provider::Optty, &requests[0].merchant_reference).await,
        [EventKind::Intent, EventKind::Answer, EventKind::Read]
    );
    let history = journal
        .history(Provider::Optty, &requests[1].merchant_reference)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = history.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Intent,
            EventKind::Answer,
            EventKind::FailedAfterApplied
        ]
    );
    let detail = history[2].detail.as_deref().unwrap();
    assert!(
        detail.starts_with("read from the provider's record: pending -> failed"),
        "{detail}"
    );
    for req in &requests {
        assert_eq!(env.recorded(req), 1, "nothing sent again");
    }

    // Nothing left to read; a call answers from the record, failed status and all.
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.reconciled.is_empty(), "{report:?}");
    let again = journal.refund(&refunds, &requests[1]).await.unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert_eq!(again.entry().refund_status, Some(RefundStatus::Failed));
    db.cleanup().await;
}

/// An Optty notification reads back Optty's refunds and nothing else: the pending one the
/// provider settled is recorded from the record (whatever the notification claims, here a
/// forged "SUCCESSFUL" for a refund that failed), and a Moyasar entry left unknown is not
/// touched. A body that is not Optty's shape is refused before any read.
pub async fn a_notification_reads_back_the_notifying_providers_refunds(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed_pending(Provider::Optty, "ORD-N-1");
    let optty_req = request(Provider::Optty, "ORD-N-1", "10.00", "RF-N-1");
    journal.refund(&refunds, &optty_req).await.unwrap();
    env.seed(Provider::Moyasar, "ORD-N-2");
    let moyasar = env.handle(Provider::Moyasar);
    let drops = moyasar.inject(Fault::DropAfterCommit, Match::Any);
    let moyasar_req = request(Provider::Moyasar, "ORD-N-2", "10.00", "RF-N-2");
    let unresolved = journal.refund(&refunds, &moyasar_req).await.unwrap();
    assert_eq!(unresolved.outcome(), Outcome::Unknown, "{unresolved:?}");
    drop(drops);
    moyasar.clear_faults();

    env.handle(Provider::Optty)
        .settle(
            &optty_req.order_id,
            &env.refund_id(&optty_req),
            sandbox::RefundStatus::Failed,
        )
        .unwrap();
    let forged = br#"{"event":"ORDER_STATUS_UPDATE","data":{"status":"SUCCESSFUL","transactionId":"RF-N-1"}}"#;
    let notification = refunds::Notification::read(Provider::Optty, forged).unwrap();
    let report = journal
        .settle_notified(&refunds, &notification)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        report.reconciled.len(),
        1,
        "only Optty's entries: {report:?}"
    );
    let Reconciliation::FailedAfterApplied { entry, .. } = &report.reconciled[0] else {
        panic!("the record, not the notification, decides: {report:?}");
    };
    assert_eq!(entry.merchant_reference, optty_req.merchant_reference);
    assert_eq!(entry.refund_status, Some(RefundStatus::Failed));
    let left = journal.unresolved().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].provider, Provider::Moyasar);
    assert!(refunds::Notification::read(Provider::Optty, b"<html>").is_err());
    db.cleanup().await;
}

/// A reconciler round works on entries concurrently, each within its deadline: Moyasar's reads
/// hang past it, so its unknown entry is reported failed (and Moyasar deferred in the next
/// round) while Optty's pending refund is read to its final status in the same round; once
/// Moyasar answers and its backoff has passed, a round settles its entry by reading.
pub async fn a_reconciler_round_bounds_each_entry_and_backs_off_a_failing_provider(
    backend: Backend,
) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed_pending(Provider::Optty, "ORD-R-1");
    let optty_req = request(Provider::Optty, "ORD-R-1", "10.00", "RF-R-1");
    journal.refund(&refunds, &optty_req).await.unwrap();
    env.seed(Provider::Moyasar, "ORD-R-2");
    let moyasar = env.handle(Provider::Moyasar);
    moyasar.inject(Fault::DropAfterCommit, Match::Any);
    let moyasar_req = request(Provider::Moyasar, "ORD-R-2", "10.00", "RF-R-2");
    let unresolved = journal.refund(&refunds, &moyasar_req).await.unwrap();
    assert_eq!(unresolved.outcome(), Outcome::Unknown, "{unresolved:?}");
    moyasar.clear_faults();
    moyasar.inject(
        Fault::Latency(Duration::from_secs(5)),
        Match::Any.on(Operation::Read),
    );
    env.handle(Provider::Optty)
        .settle(
            &optty_req.order_id,
            &env.refund_id(&optty_req),
            sandbox::RefundStatus::Succeeded,
        )
        .unwrap();

    let config = refunds_journal::ReconcilerConfig {
        entry_deadline: Duration::from_millis(400),
        backoff: Duration::from_millis(600),
        ..refunds_journal::ReconcilerConfig::default()
    };
    let mut backoff = refunds_journal::ProviderBackoff::default();
    let started = std::time::Instant::now();
    let report = journal
        .reconcile_round(&refunds, &config, &mut backoff)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the round waited {:?} on a hung read",
        started.elapsed()
    );
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].provider, "moyasar");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    assert!(
        matches!(&report.reconciled[0], Reconciliation::StatusRead { entry } if entry.provider == Provider::Optty),
        "{report:?}"
    );

    let report = journal
        .reconcile_round(&refunds, &config, &mut backoff)
        .await
        .unwrap();
    assert_eq!(report.deferred, [Provider::Moyasar], "{report:?}");
    assert!(
        report.reconciled.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );

    moyasar.clear_faults();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let report = journal
        .reconcile_round(&refunds, &config, &mut backoff)
        .await
        .unwrap();
    assert!(report.deferred.is_empty(), "{report:?}");
    assert!(
        matches!(&report.reconciled[..], [Reconciliation::SettledByReading { entry, .. }] if entry.provider == Provider::Moyasar),
        "{report:?}"
    );
    assert_eq!(env.recorded(&moyasar_req), 1, "nothing sent twice");
    db.cleanup().await;
}

/// Moyasar: every attempt of the call ends ambiguous after Moyasar committed. Reconcile reads
/// the order first and finds the refund: applied, settled by reading, nothing re-sent. An
/// unknown outcome the record does not hold (nothing was done) is re-sent under the same key,
/// the read noted; so is one whose read fails.
pub async fn moyasar_unknown_is_settled_by_reading(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    let attempts = journal.config().retry.max_attempts;
    let moyasar = env.sb.moyasar();

    // Committed, every answer lost: found by reading.
    env.seed(Provider::Moyasar, "ORD-MR-1");
    let found = request(Provider::Moyasar, "ORD-MR-1", "12.00", "RF-MR-1");
    moyasar.inject(
        Fault::StatusAfterCommit(502),
        Match::Any.times(attempts as usize),
    );
    let result = journal.refund(&refunds, &found).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    assert_eq!(env.recorded(&found), 1);

    // Nothing was done: not in the record, re-sent.
    env.seed(Provider::Moyasar, "ORD-MR-2");
    let absent = request(Provider::Moyasar, "ORD-MR-2", "12.00", "RF-MR-2");
    moyasar.inject(Fault::Status(503), Match::Any.times(attempts as usize));
    let result = journal.refund(&refunds, &absent).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    assert_eq!(env.recorded(&absent), 0);

    // Committed, and the read fails: re-sent (Moyasar deduplicates).
    env.seed(Provider::Moyasar, "ORD-MR-3");
    let unread = request(Provider::Moyasar, "ORD-MR-3", "12.00", "RF-MR-3");
    moyasar.inject(
        Fault::StatusAfterCommit(502),
        Match::Any.times(attempts as usize),
    );
    let result = journal.refund(&refunds, &unread).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    moyasar.inject(
        Fault::Status(500),
        Match::Order("ORD-MR-3".into()).on(Operation::Read).once(),
    );

    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 3, "{report:?}");

    let Reconciliation::SettledByReading { entry, detail } = &report.reconciled[0] else {
        panic!("{report:?}");
    };
    assert_eq!(entry.merchant_reference, found.merchant_reference);
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.settled_by, Some(SettledBy::Read));
    assert_eq!(entry.attempts, attempts, "nothing re-sent");
    assert_eq!(entry.refund_status, Some(RefundStatus::Succeeded));
    assert_eq!(entry.amount, Some(found.amount));
    assert_eq!(entry.provider_refund_id, Some(env.refund_id(&found)));
    assert!(!entry.ambiguous);
    assert_eq!(entry.unresolved_reason, None);
    assert!(detail.contains("found in moyasar's record"), "{detail}");
    let history = journal
        .history(Provider::Moyasar, &found.merchant_reference)
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.kind, last.outcome),
        (EventKind::Read, Some(Outcome::Applied))
    );
    assert_eq!(env.recorded(&found), 1);

    for (req, read) in [
        (&absent, "holds no refund of ours"),
        (&unread, "read of moyasar's record failed"),
    ] {
        let done = report
            .reconciled
            .iter()
            .find(|done| done.entry().merchant_reference == req.merchant_reference)
            .unwrap();
        let Reconciliation::Resent(JournaledRefund::Applied { entry, .. }) = done else {
            panic!("{done:?}");
        };
        assert_eq!(entry.settled_by, Some(SettledBy::Reconcile));
        assert_eq!(entry.attempts, attempts + 1);
        assert_eq!(env.recorded(req), 1, "one refund");
        let history = journal
            .history(Provider::Moyasar, &req.merchant_reference)
            .await
            .unwrap();
        let tail: Vec<EventKind> = history[history.len() - 4..]
            .iter()
            .map(|event| event.kind)
            .collect();
        assert_eq!(
            tail,
            [
                EventKind::Read,
                EventKind::Reconcile,
                EventKind::Intent,
                EventKind::Answer
            ]
        );
        let note = history[history.len() - 4].detail.as_deref().unwrap();
        assert!(note.contains(read), "{note}");
    }
    assert!(journal.unresolved().await.unwrap().is_empty());
    db.cleanup().await;
}

/// AfterPay: the answer is lost after Riverty booked the refund (the connection drops). A
/// repeat call sends nothing; reconcile reads the order and attributes the one refund no
/// journal entry accounts for (the order's earlier refund, made through the journal, is on
/// record): applied, settled by reading, its refund number on record. Nothing is re-sent.
pub async fn afterpay_lost_answer_is_attributed_by_reading(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::AfterPay, "ORD-AP-1");
    let earlier = request(Provider::AfterPay, "ORD-AP-1", "20.00", "RF-AP-0");
    let result = journal.refund(&refunds, &earlier).await.unwrap();
    assert_eq!(result.label(), "applied", "{result:?}");
    assert_eq!(
        result.entry().provider_refund_id,
        Some(env.refund_id(&earlier))
    );

    let req = request(Provider::AfterPay, "ORD-AP-1", "25.00", "RF-AP-1");
    env.sb
        .afterpay()
        .inject(Fault::DropAfterCommit, Match::Any.once());
    let result = journal.refund(&refunds, &req).await.unwrap();
    let JournaledRefund::Unresolved {
        error: Some(error),
        entry,
    } = &result
    else {
        panic!("{result:?}");
    };
    assert!(error.outcome_unknown(), "{error:?}");
    assert_eq!(entry.state, EntryState::Unknown);
    let reason = entry.unresolved_reason.as_deref().unwrap();
    assert!(reason.contains("no duplicate key"), "{reason}");
    assert!(reason.contains("reads order ORD-AP-1"), "{reason}");
    assert_eq!(env.recorded(&req), 1, "Riverty booked it");

    // A repeat (another instance, another client) sends nothing.
    let again = db
        .journal()
        .await
        .refund(&env.refunds(), &req)
        .await
        .unwrap();
    assert!(
        matches!(again, JournaledRefund::Unresolved { error: None, .. }),
        "{again:?}"
    );

    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    let Reconciliation::SettledByReading { entry, detail } = &report.reconciled[0] else {
        panic!("{report:?}");
    };
    let number = env.refund_id(&req);
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.settled_by, Some(SettledBy::Read));
    assert_eq!(entry.provider_refund_id.as_deref(), Some(number.as_str()));
    assert_ne!(
        entry.provider_refund_id,
        earlier_number(&journal, &earlier).await
    );
    assert_eq!(entry.refund_status, Some(RefundStatus::Succeeded));
    assert_eq!(entry.amount, Some(req.amount));
    assert_eq!(entry.attempts, 1, "never re-sent");
    assert!(detail.contains(&number), "{detail}");
    assert_eq!(
        history_kinds(&journal, Provider::AfterPay, &req.merchant_reference).await,
        [EventKind::Intent, EventKind::Answer, EventKind::Read]
    );
    // The refund numbers on record, per order.
    let numbers: Vec<Option<String>> = journal
        .order_entries(Provider::AfterPay, "ORD-AP-1")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.provider_refund_id)
        .collect();
    assert_eq!(numbers, [Some(env.refund_id(&earlier)), Some(number)]);
    assert_eq!(env.refunds_on(Provider::AfterPay, "ORD-AP-1").len(), 2);

    let again = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert!(journal.unresolved().await.unwrap().is_empty());
    db.cleanup().await;
}

async fn earlier_number(
    journal: &refunds_journal::Journal,
    req: &refunds::RefundRequest,
) -> Option<String> {
    journal
        .entry(req.provider, &req.merchant_reference)
        .await
        .unwrap()
        .unwrap()
        .provider_refund_id
}

/// AfterPay: a 503 before Riverty did anything (the client cannot know that). Reconcile reads
/// the order at once: nothing there yet, but too early to conclude (the settling delay), so it
/// is left with the reason, noted once however often reconcile runs. After the delay, a read
/// that still lists nothing proves it not applied: it is sent again, once, and applied.
pub async fn afterpay_refund_never_made_is_sent_again_after_the_settling_delay(backend: Backend) {
    let settling = Duration::from_millis(1_500);
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.open(config_with_settling_delay(settling)).await;
    let refunds = env.refunds();
    env.seed(Provider::AfterPay, "ORD-AP-2");
    let req = request(Provider::AfterPay, "ORD-AP-2", "10.00", "RF-AP-2");
    env.sb
        .afterpay()
        .inject(Fault::Status(503), Match::Any.once());
    let result = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    assert_eq!(env.recorded(&req), 0);

    for run in 0..2 {
        let report = journal.reconcile(&refunds).await.unwrap();
        assert!(report.is_complete(), "{report:?}");
        let Reconciliation::LeftUnresolved { entry, reason } = &report.reconciled[0] else {
            panic!("run {run}: {report:?}");
        };
        assert!(reason.contains("no refund there"), "{reason}");
        assert!(reason.contains("settling delay"), "{reason}");
        assert_eq!(entry.state, EntryState::Unknown);
        assert_eq!(entry.unresolved_reason.as_deref(), Some(reason.as_str()));
        assert_eq!(
            history_kinds(&journal, Provider::AfterPay, &req.merchant_reference).await,
            [EventKind::Intent, EventKind::Answer, EventKind::Read],
            "run {run}: the reason is noted once"
        );
    }
    assert_eq!(env.recorded(&req), 0, "nothing sent while in doubt");

    tokio::time::sleep(settling + Duration::from_millis(200)).await;
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    let Reconciliation::Resent(JournaledRefund::Applied {
        replayed: false,
        entry,
        ..
    }) = &report.reconciled[0]
    else {
        panic!("{report:?}");
    };
    assert_eq!(entry.attempts, 2);
    assert_eq!(entry.settled_by, Some(SettledBy::Reconcile));
    assert_eq!(entry.provider_refund_id, Some(env.refund_id(&req)));
    assert_eq!(env.recorded(&req), 1, "sent again once");
    let history = journal
        .history(Provider::AfterPay, &req.merchant_reference)
        .await
        .unwrap();
    let summary: Vec<(EventKind, Option<u32>, Option<Outcome>)> = history
        .iter()
        .map(|event| (event.kind, event.attempt, event.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::Intent, Some(1), None),
            (EventKind::Answer, Some(1), Some(Outcome::Unknown)),
            (EventKind::Read, Some(1), Some(Outcome::Unknown)),
            (EventKind::Read, Some(1), Some(Outcome::NotApplied)),
            (EventKind::Intent, Some(2), None),
            (EventKind::Answer, Some(2), Some(Outcome::Applied)),
        ]
    );
    let again = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert_eq!(env.recorded(&req), 1);
    db.cleanup().await;
}

/// AfterPay: a refund made outside the journal on the same order, after ours was lost: two
/// refunds no entry accounts for, and only one can be ours. Left unresolved with the evidence
/// (noted once), never re-sent; an operator resolves it, and from then on the reference is
/// answered from the record.
pub async fn afterpay_unattributable_refunds_are_left_for_a_person(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::AfterPay, "ORD-AP-3");
    let req = request(Provider::AfterPay, "ORD-AP-3", "10.00", "RF-AP-3");
    env.sb
        .afterpay()
        .inject(Fault::DropAfterCommit, Match::Any.once());
    let result = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    let outside = request(Provider::AfterPay, "ORD-AP-3", "10.00", "RF-OUTSIDE");
    refunds
        .refund(&outside)
        .await
        .expect("a refund made outside the journal");
    let numbers = [env.refund_id(&req), env.refund_id(&outside)];

    for run in 0..2 {
        let report = journal.reconcile(&refunds).await.unwrap();
        assert!(report.is_complete(), "{report:?}");
        let Reconciliation::LeftUnresolved { entry, reason } = &report.reconciled[0] else {
            panic!("run {run}: {report:?}");
        };
        assert!(reason.contains("cannot attribute"), "{reason}");
        assert!(reason.contains("2 refunds"), "{reason}");
        for number in &numbers {
            assert!(reason.contains(number.as_str()), "{reason}");
        }
        assert!(reason.contains("resolve_manually"), "{reason}");
        assert_eq!(entry.state, EntryState::Unknown);
        assert_eq!(entry.unresolved_reason.as_deref(), Some(reason.as_str()));
        assert_eq!(
            history_kinds(&journal, Provider::AfterPay, &req.merchant_reference).await,
            [EventKind::Intent, EventKind::Answer, EventKind::Read],
            "run {run}"
        );
    }
    assert_eq!(
        env.refunds_on(Provider::AfterPay, "ORD-AP-3").len(),
        2,
        "nothing re-sent"
    );

    let resolved = journal
        .resolve_manually(
            Provider::AfterPay,
            &req.merchant_reference,
            Outcome::Applied,
            "ops/alice: RF-AP-3 is the first refund on ORD-AP-3 at Riverty",
        )
        .await
        .unwrap();
    assert_eq!(resolved.state, EntryState::Applied);
    assert_eq!(resolved.settled_by, Some(SettledBy::Manual));
    let again = db
        .journal()
        .await
        .refund(&env.refunds(), &req)
        .await
        .unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert_eq!(journal.pending().await.unwrap().len(), 1);
    journal
        .record_status(
            Provider::AfterPay,
            &req.merchant_reference,
            RefundStatus::Succeeded,
        )
        .await
        .unwrap();
    assert!(journal.pending().await.unwrap().is_empty());
    let error = journal
        .resolve_manually(
            Provider::AfterPay,
            &req.merchant_reference,
            Outcome::NotApplied,
            "oops",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, JournalError::WrongState { .. }),
        "{error:?}"
    );
    let history = journal
        .history(Provider::AfterPay, &req.merchant_reference)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = history.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Intent,
            EventKind::Answer,
            EventKind::Read,
            EventKind::Manual,
            EventKind::Status
        ]
    );
    assert_eq!(history[3].owner.as_deref(), Some("operator"));
    assert_eq!(env.refunds_on(Provider::AfterPay, "ORD-AP-3").len(), 2);
    db.cleanup().await;
}

/// AfterPay, the per-order lease: while one refund on an order is unresolved, another on that
/// order is refused before any I/O (a new reference, and a not-applied one sent again), by
/// every instance; a repeat of the unresolved refund is answered from its own entry; other
/// orders are free. Once the first is settled (by reading), the second goes through.
pub async fn a_second_afterpay_refund_on_an_unresolved_order_is_refused_before_io(
    backend: Backend,
) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::AfterPay, "ORD-AP-4");
    env.seed(Provider::AfterPay, "ORD-AP-5");
    let refused = request(Provider::AfterPay, "ORD-AP-4", "500.00", "RF-AP-4C");
    let result = journal.refund(&refunds, &refused).await.unwrap();
    assert_eq!(result.label(), "rejected", "{result:?}");

    let first = request(Provider::AfterPay, "ORD-AP-4", "10.00", "RF-AP-4A");
    env.sb
        .afterpay()
        .inject(Fault::StatusAfterCommit(504), Match::Any.once());
    let result = journal.refund(&refunds, &first).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    let received = env.sb.afterpay().requests_received();

    let second = request(Provider::AfterPay, "ORD-AP-4", "5.00", "RF-AP-4B");
    for (journal, req) in [
        (journal.clone(), &second),
        (db.journal().await, &second),
        (journal.clone(), &refused),
    ] {
        let error = journal.refund(&env.refunds(), req).await.unwrap_err();
        let JournalError::OrderBusy {
            provider,
            order_id,
            reference,
            holder,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*provider, Provider::AfterPay);
        assert_eq!(order_id, "ORD-AP-4");
        assert_eq!(reference, &req.merchant_reference);
        assert_eq!(holder.as_ref(), Some(&first.merchant_reference));
        assert_eq!(error.outcome(), ErrorOutcome::NothingSent);
        let text = error.to_string();
        assert!(text.contains("refused before any I/O"), "{text}");
        assert!(text.contains("RF-AP-4A"), "{text}");
    }
    assert_eq!(
        env.sb.afterpay().requests_received(),
        received,
        "nothing sent"
    );
    assert!(
        journal
            .entry(Provider::AfterPay, &second.merchant_reference)
            .await
            .unwrap()
            .is_none(),
        "nothing recorded"
    );
    let entry = journal
        .entry(Provider::AfterPay, &refused.merchant_reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((entry.state, entry.attempts), (EntryState::NotApplied, 1));

    // The unresolved refund itself: answered from its entry.
    let again = journal.refund(&refunds, &first).await.unwrap();
    assert!(
        matches!(again, JournaledRefund::Unresolved { error: None, .. }),
        "{again:?}"
    );
    // Another order is free.
    let other = request(Provider::AfterPay, "ORD-AP-5", "10.00", "RF-AP-5");
    assert_eq!(
        journal.refund(&refunds, &other).await.unwrap().label(),
        "applied"
    );
    // Another provider's refunds on an order of the same name are not AfterPay's.
    env.seed(Provider::Moyasar, "ORD-AP-4");
    let moyasar = request(Provider::Moyasar, "ORD-AP-4", "10.00", "RF-AP-4M");
    assert_eq!(
        journal.refund(&refunds, &moyasar).await.unwrap().label(),
        "applied"
    );

    // Settled by reading; the order is free again.
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(
        matches!(&report.reconciled[0], Reconciliation::SettledByReading { entry, .. } if entry.merchant_reference == first.merchant_reference),
        "{report:?}"
    );
    let result = journal.refund(&refunds, &second).await.unwrap();
    assert_eq!(result.label(), "applied", "{result:?}");
    assert_eq!(env.recorded(&first), 1);
    assert_eq!(env.recorded(&second), 1);
    db.cleanup().await;
}

/// AfterPay, the per-order lease under a race: six refunds on one order, sent at once from two
/// journal instances (replicas) while Riverty takes its time: exactly one is sent, the five
/// others are refused before any I/O.
pub async fn concurrent_afterpay_refunds_on_one_order_go_one_at_a_time(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journals = [db.journal().await, db.journal().await];
    env.seed(Provider::AfterPay, "ORD-AP-6");
    env.sb
        .afterpay()
        .inject(Fault::Latency(Duration::from_secs(2)), Match::Any.times(6));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(6));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let journal = journals[i % 2].clone();
        let refunds = env.refunds();
        let start = std::sync::Arc::clone(&start);
        let req = request(
            Provider::AfterPay,
            "ORD-AP-6",
            "1.00",
            &format!("RF-AP-6{i}"),
        );
        tasks.spawn(async move {
            start.wait().await;
            journal.refund(&refunds, &req).await
        });
    }
    let (mut applied, mut busy) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(result) if result.label() == "applied" => applied += 1,
            Err(JournalError::OrderBusy { .. }) => busy += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((applied, busy), (1, 5));
    assert_eq!(env.refunds_on(Provider::AfterPay, "ORD-AP-6").len(), 1);
    assert_eq!(
        journals[0]
            .order_entries(Provider::AfterPay, "ORD-AP-6")
            .await
            .unwrap()
            .len(),
        1,
        "nothing recorded for the refused ones"
    );
    db.cleanup().await;
}

/// Crash test, AfterPay: the sender is killed after Riverty booked the refund, before its
/// answer arrived. Once the lease lapsed, reconcile reads the order and attributes the refund:
/// applied, settled by reading, never re-sent.
pub async fn crash_afterpay_is_attributed_by_reading(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    db.journal().await; // the tables exist before the sender starts
    let req = crate::scenarios::crash_while_sending(&env, &db, Provider::AfterPay).await;

    let journal = db.journal().await;
    let entry = journal
        .entry(Provider::AfterPay, &req.merchant_reference)
        .await
        .unwrap()
        .expect("the intent was recorded before the request left");
    assert_eq!(entry.state, EntryState::InFlight);
    assert!(entry.attempt_deadline_ms.is_some());
    crate::scenarios::until_unresolved(&journal, &req).await;
    let received = env.sb.afterpay().refund_count();

    let report = journal.reconcile(&env.refunds()).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    let Reconciliation::SettledByReading { entry, .. } = &report.reconciled[0] else {
        panic!("{report:?}");
    };
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.settled_by, Some(SettledBy::Read));
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.lease, None);
    assert_eq!(entry.provider_refund_id, Some(env.refund_id(&req)));
    assert_eq!(env.sb.afterpay().refund_count(), received, "never re-sent");
    assert_eq!(
        history_kinds(&journal, Provider::AfterPay, &req.merchant_reference).await,
        [EventKind::Intent, EventKind::LeaseExpired, EventKind::Read]
    );
    let again = db
        .journal()
        .await
        .refund(&env.refunds(), &req)
        .await
        .unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert_eq!(env.recorded(&req), 1, "exactly one refund");
    db.cleanup().await;
}

/// Migration 3 over rows an earlier version (migrations 1 and 2) wrote: every row gets its
/// order from its stored request (none for a damaged one) and its latest intent's time; of two
/// AfterPay refunds unresolved on one order the later is kept outside the per-order lease until
/// it settles; the history keeps its ids; the new settler and event kinds are accepted; foreign
/// keys still hold.
pub async fn migration_3_brings_earlier_rows_under_the_order_lease(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate_to(2).await;
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut sql = String::new();
    for (reference, order, state, refund_id, created) in [
        ("RF-M-1", "ORD-M", "unknown", None, 1_000),
        ("RF-M-2", "ORD-M", "unknown", None, 2_000),
        ("RF-M-3", "ORD-M", "applied", Some("RN-9"), 500),
        ("RF-M-4", "ORD-N", "in_flight", None, 3_000),
    ] {
        let req = request(Provider::AfterPay, order, "10.00", reference);
        sql.push_str(&format!(
            "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, \
             request, currency, state, attempts, ambiguous, lease_owner, lease_expires_at_ms, \
             provider_refund_id, refund_status, amount, refunded_total, captured_total, \
             already_applied, http_status, error_kind, error_message, unresolved_reason, \
             settled_by, wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version) VALUES \
             ('afterpay', {reference}, {fingerprint}, {request}, 'EUR', '{state}', 1, FALSE, \
             NULL, {lease}, {refund_id}, NULL, NULL, NULL, NULL, FALSE, NULL, NULL, NULL, NULL, \
             NULL, 1, {created}, {created}, NULL, 1); \
             INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind, \
             attempt, owner, outcome, http_status, error_kind, detail, elapsed_ms) VALUES \
             ('afterpay', {reference}, {at}, 'intent', 1, 'old/1', NULL, NULL, NULL, NULL, NULL); ",
            reference = quote(reference),
            fingerprint = quote(&refunds_journal::fingerprint(&req)),
            request = quote(&refunds_journal::canonical_json(&req)),
            lease = if state == "in_flight" { "4000" } else { "NULL" },
            refund_id = refund_id.map_or("NULL".to_owned(), quote),
            at = created + 1,
        ));
    }
    sql.push_str(
        "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, request, \
         currency, state, attempts, ambiguous, already_applied, wire_ms, created_at_ms, \
         updated_at_ms, version) VALUES ('moyasar', 'RF-M-5', 'fp', 'not json', 'SAR', \
         'not_applied', 1, FALSE, FALSE, 0, 1, 1, 1);",
    );
    db.execute(&sql).await;

    let journal = db.journal().await;
    let text = |sql: &'static str| {
        let db = db.clone();
        async move { db.stored_text(sql).await }
    };
    assert_eq!(
        text("SELECT order_id FROM refund_journal_entries WHERE merchant_reference = 'RF-M-1'")
            .await
            .as_deref(),
        Some("ORD-M")
    );
    assert_eq!(
        text("SELECT order_id FROM refund_journal_entries WHERE merchant_reference = 'RF-M-5'")
            .await
            .as_deref(),
        Some(""),
        "a damaged request has no order"
    );
    assert_eq!(
        text("SELECT merchant_reference FROM refund_journal_entries WHERE order_lease_exempt")
            .await
            .as_deref(),
        Some("RF-M-2"),
        "the later of two unresolved refunds on one order"
    );
    let entry = journal
        .entry(Provider::AfterPay, &reference("RF-M-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.attempt_at_ms, Some(1_001));
    assert_eq!(entry.attempt_deadline_ms, None);
    let entry = journal
        .entry(Provider::AfterPay, &reference("RF-M-4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.attempt_deadline_ms,
        Some(4_000),
        "the in-flight lease"
    );
    let order: Vec<String> = journal
        .order_entries(Provider::AfterPay, "ORD-M")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.merchant_reference.as_str().to_owned())
        .collect();
    assert_eq!(order, ["RF-M-3", "RF-M-1", "RF-M-2"]);

    // The order is held (by the earlier refund); a new refund on it is refused.
    let env = Env::start().await;
    env.seed(Provider::AfterPay, "ORD-M");
    let new = request(Provider::AfterPay, "ORD-M", "1.00", "RF-M-6");
    let error = journal.refund(&env.refunds(), &new).await.unwrap_err();
    assert!(
        matches!(&error, JournalError::OrderBusy { holder: Some(holder), .. } if holder.as_str() == "RF-M-1"),
        "{error:?}"
    );
    // Settled, the kept one comes under the lease.
    journal
        .resolve_manually(
            Provider::AfterPay,
            &reference("RF-M-2"),
            Outcome::NotApplied,
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(
        text("SELECT CAST(count(*) AS TEXT) FROM refund_journal_entries WHERE order_lease_exempt")
            .await
            .as_deref(),
        Some("0")
    );
    // The history kept its ids; new ids follow them.
    let history = journal
        .history(Provider::AfterPay, &reference("RF-M-2"))
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, 2);
    assert!(history[1].id > 4, "{history:?}");
    // The new values are accepted; a row of no entry is not.
    db.execute(
        "UPDATE refund_journal_entries SET settled_by = 'read' WHERE merchant_reference = 'RF-M-3'; \
         INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind) VALUES \
         ('afterpay', 'RF-M-3', 1, 'failed_after_applied'), ('afterpay', 'RF-M-3', 1, 'read');",
    )
    .await;
    assert!(
        db.try_execute(
            "INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind) \
             VALUES ('afterpay', 'RF-NONE', 1, 'read');"
        )
        .await
        .is_err(),
        "foreign keys hold"
    );
    assert!(
        db.try_execute(
            "UPDATE refund_journal_entries SET settled_by = 'guess' \
             WHERE merchant_reference = 'RF-M-3';"
        )
        .await
        .is_err(),
        "the settler check holds"
    );
    let entry = journal
        .entry(Provider::AfterPay, &reference("RF-M-3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.settled_by, Some(SettledBy::Read));
    let kinds = history_kinds(&journal, Provider::AfterPay, &reference("RF-M-3")).await;
    assert_eq!(
        kinds,
        [
            EventKind::Intent,
            EventKind::FailedAfterApplied,
            EventKind::Read
        ]
    );
    db.cleanup().await;
}

/// Migration 4 (on SQLite: one index for the per-order lease and the unresolved rows, event ids
/// without `AUTOINCREMENT`; on PostgreSQL: nothing) over rows version 3 wrote: the per-order
/// lease refuses what it refused (a second AfterPay refund on an order held, not one kept
/// exempt, not another provider's), the unresolved rows are listed (every provider's, lease
/// lapsed or outcome unknown, oldest first), and the history keeps its ids, new ids following
/// them.
pub async fn migration_4_keeps_the_order_lease_the_listing_and_the_history(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate_to(3).await;
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let row = |provider: Provider, reference: &str, state: &str, exempt: bool, created: i64| {
        let req = request(provider, "ORD-L", "10.00", reference);
        format!(
            "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, \
             request, currency, state, attempts, ambiguous, lease_owner, lease_expires_at_ms, \
             already_applied, wire_ms, created_at_ms, updated_at_ms, version, order_id, \
             order_lease_exempt) VALUES ({provider}, {reference}, {fingerprint}, {request}, \
             {currency}, '{state}', 1, FALSE, {owner}, {lease}, FALSE, 0, {created}, \
             {created}, 1, 'ORD-L', {exempt}); \
             INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind) \
             VALUES ({provider}, {reference}, {created}, 'intent'); ",
            provider = quote(provider.as_str()),
            reference = quote(reference),
            fingerprint = quote(&refunds_journal::fingerprint(&req)),
            request = quote(&refunds_journal::canonical_json(&req)),
            currency = quote(req.amount.currency().code()),
            owner = if state == "in_flight" {
                "'old/1'"
            } else {
                "NULL"
            },
            // Lapsed long ago.
            lease = if state == "in_flight" { "1" } else { "NULL" },
            exempt = if exempt { "TRUE" } else { "FALSE" },
        )
    };
    let mut sql = String::new();
    sql.push_str(&row(Provider::AfterPay, "RF-L-1", "unknown", false, 1_000));
    sql.push_str(&row(Provider::AfterPay, "RF-L-2", "unknown", true, 2_000));
    sql.push_str(&row(Provider::Moyasar, "RF-L-3", "in_flight", false, 3_000));
    sql.push_str(&row(Provider::Moyasar, "RF-L-4", "unknown", false, 4_000));
    sql.push_str(&row(
        Provider::AfterPay,
        "RF-L-5",
        "not_applied",
        false,
        500,
    ));
    db.execute(&sql).await;

    let journal = db.journal().await;
    let unresolved: Vec<String> = journal
        .unresolved()
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.merchant_reference.as_str().to_owned())
        .collect();
    assert_eq!(unresolved, ["RF-L-1", "RF-L-2", "RF-L-3", "RF-L-4"]);

    // The lease holds: a second AfterPay refund unresolved on the order is refused, by the
    // journal (naming the holder) and by the database.
    let env = Env::start().await;
    env.seed(Provider::AfterPay, "ORD-L");
    let new = request(Provider::AfterPay, "ORD-L", "1.00", "RF-L-6");
    let error = journal.refund(&env.refunds(), &new).await.unwrap_err();
    assert!(
        matches!(&error, JournalError::OrderBusy { holder: Some(holder), .. } if holder.as_str() == "RF-L-1"),
        "{error:?}"
    );
    assert!(
        db.try_execute(&row(
            Provider::AfterPay,
            "RF-L-7",
            "in_flight",
            false,
            5_000
        ))
        .await
        .is_err(),
        "a second AfterPay refund under the lease"
    );
    // Not a row kept exempt, nor another provider's.
    db.execute(&row(Provider::AfterPay, "RF-L-8", "unknown", true, 6_000))
        .await;
    db.execute(&row(Provider::Moyasar, "RF-L-9", "in_flight", false, 7_000))
        .await;
    // Once the holder settles, the order is free.
    journal
        .resolve_manually(
            Provider::AfterPay,
            &reference("RF-L-1"),
            Outcome::NotApplied,
            "ops",
        )
        .await
        .unwrap();
    db.execute(&row(
        Provider::AfterPay,
        "RF-L-10",
        "in_flight",
        false,
        8_000,
    ))
    .await;

    // The history kept its ids (1 to 5, one intent per row, in the order written); new ids
    // follow the highest given.
    let history = journal
        .history(Provider::AfterPay, &reference("RF-L-1"))
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].id, 1);
    assert!(
        history[1].id > 7,
        "after the intents of RF-L-8 and RF-L-9: {history:?}"
    );
    let history = journal
        .history(Provider::AfterPay, &reference("RF-L-5"))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, 5);
    db.cleanup().await;
}

/// Both tables as text: one JSON object per row (every column, named), in key order.
async fn dump(db: &TestDb) -> String {
    let mut tables = String::new();
    for (table, order) in [
        ("refund_journal_entries", "provider, merchant_reference"),
        ("refund_journal_events", "id"),
    ] {
        let sql = match db.backend() {
            Backend::Sqlite => {
                // SQLite has no row-to-JSON: the object is built from the table's own columns.
                let pairs = db
                    .stored_text(&format!(
                        "SELECT group_concat('''' || name || ''', ' || name, ', ') \
                         FROM (SELECT name FROM pragma_table_info('{table}') ORDER BY cid)"
                    ))
                    .await
                    .expect("the table's columns");
                format!(
                    "SELECT group_concat(json_object({pairs}), char(10)) \
                     FROM (SELECT * FROM {table} ORDER BY {order})"
                )
            }
            Backend::Postgres => format!(
                "SELECT string_agg(row_to_json(t)::text, E'\\n' ORDER BY {order}) FROM {table} t"
            ),
        };
        tables.push_str(&db.stored_text(&sql).await.expect("rows"));
        tables.push('\n');
    }
    tables
}

/// Migrations 6 and 7 (on SQLite, 6: the checks' `IN` lists written as comparisons, both
/// tables rebuilt; on PostgreSQL, 7: the checks moved from the tables into domains) over rows
/// version 5 wrote, with every value each checked column allows: every row of both tables is
/// kept as it was (every column, the events' ids), the checks refuse what they refused, and
/// the events' foreign key still holds.
pub async fn migrations_6_and_7_keep_every_row_and_check_the_same_values(backend: Backend) {
    let db = TestDb::new(backend);
    db.migrate_to(5).await;
    // Every column set, each to a value of its own, so that a column copied into another
    // shows in the dump.
    let entry = |reference: &str, state: &str, status: &str, settled_by: &str| {
        format!(
            "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, \
             request, currency, state, attempts, ambiguous, lease_owner, lease_expires_at_ms, \
             provider_refund_id, refund_status, amount, refunded_total, captured_total, \
             already_applied, http_status, error_kind, error_message, unresolved_reason, \
             settled_by, wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version, \
             order_id, attempt_at_ms, attempt_deadline_ms, order_lease_exempt) VALUES \
             ('optty', '{reference}', 'fp', '{{}}', 'EUR', '{state}', 2, TRUE, 'me/1', 4000, \
             'RFD-1', {status}, '1.50', '2.50', '3.50', TRUE, 201, 'declined', 'a \\\\ message', \
             'a reason', {settled_by}, 7, 1000, 2000, 3000, 3, 'ORD-6', 1100, 1200, TRUE);"
        )
    };
    let event = |reference: &str, kind: &str, outcome: &str| {
        format!(
            "INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind, \
             attempt, owner, outcome, http_status, error_kind, detail, elapsed_ms) VALUES \
             ('optty', '{reference}', 1500, '{kind}', 2, 'me/1', {outcome}, 502, 'timeout', \
             'a \\\\ detail', 35);"
        )
    };
    let mut sql = String::new();
    let states = ["in_flight", "applied", "not_applied", "unknown"];
    let statuses = ["NULL", "'succeeded'", "'pending'", "'failed'"];
    let settlers = ["NULL", "'answer'", "'reconcile'", "'manual'", "'read'"];
    for (i, state) in states.iter().enumerate() {
        for (j, status) in statuses.iter().enumerate() {
            let settled_by = settlers[(i + j) % settlers.len()];
            sql.push_str(&entry(&format!("RF-6-{i}-{j}"), state, status, settled_by));
        }
    }
    sql.push_str(&entry("RF-6-read", "applied", "'succeeded'", "'read'"));
    let kinds = [
        "intent",
        "answer",
        "lease_expired",
        "reconcile",
        "manual",
        "status",
        "read",
        "failed_after_applied",
    ];
    let outcomes = ["NULL", "'applied'", "'not_applied'", "'unknown'"];
    for (i, kind) in kinds.iter().enumerate() {
        sql.push_str(&event("RF-6-0-0", kind, outcomes[i % outcomes.len()]));
    }
    db.execute(&sql).await;
    let before = dump(&db).await;
    assert_eq!(before.lines().count(), 17 + 8, "{before}");

    let journal = db.journal().await;
    assert_eq!(dump(&db).await, before, "every row as it was");
    journal.close().await;
    if backend == Backend::Postgres {
        // PostgreSQL rebuilds a table's CHECK constraints for every statement that writes it;
        // a domain's, once per connection.
        let table_checks = db
            .stored_text(
                "SELECT string_agg(conname, ', ') FROM pg_constraint \
                 WHERE contype = 'c' AND conrelid IN \
                 ('refund_journal_entries'::regclass, 'refund_journal_events'::regclass)",
            )
            .await;
        assert_eq!(table_checks, None, "no CHECK left on the tables");
    }

    use sqlx::error::ErrorKind::{CheckViolation, ForeignKeyViolation};
    let refused = [
        (
            entry("RF-6-bad-1", "settled", "NULL", "NULL"),
            CheckViolation,
        ),
        (
            entry("RF-6-bad-2", "applied", "'refunded'", "NULL"),
            CheckViolation,
        ),
        (
            entry("RF-6-bad-3", "applied", "NULL", "'operator'"),
            CheckViolation,
        ),
        (event("RF-6-0-0", "note", "NULL"), CheckViolation),
        (event("RF-6-0-0", "answer", "'maybe'"), CheckViolation),
        (event("RF-6-none", "intent", "NULL"), ForeignKeyViolation),
    ];
    for (sql, kind) in refused {
        match db.try_execute(&sql).await {
            Err(sqlx::Error::Database(error))
                if std::mem::discriminant(&error.kind()) == std::mem::discriminant(&kind) => {}
            other => panic!("{sql}: {other:?}, not a {kind:?}"),
        }
    }
    // What the checks allow still goes in, after them.
    db.execute(&format!(
        "{}{}",
        entry("RF-6-after", "unknown", "'pending'", "'manual'"),
        event("RF-6-after", "failed_after_applied", "'not_applied'")
    ))
    .await;
    db.cleanup().await;
}
