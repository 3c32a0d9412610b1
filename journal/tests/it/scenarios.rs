//! The scenarios, each an `async fn(Backend)`: `main.rs` runs every one against SQLite and
//! against PostgreSQL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use refunds::{ErrorKind, Outcome, Provider, RefundStatus};
use refunds_journal::{
    EntryState, EventKind, JournalError, JournaledRefund, Reconciliation, SettledBy, fingerprint,
};
use sandbox::{Fault, Match};

pub use crate::failures::*;
use crate::harness::{
    Backend, Env, TestDb, child, child_lines, history_kinds, request, wait_until,
};
pub use crate::reads::*;
pub use crate::service::*;

/// An event's kind, attempt, outcome and HTTP status.
type EventLine = (EventKind, Option<u32>, Option<Outcome>, Option<u16>);

/// The providers with a duplicate key, to which an unknown outcome is sent again.
fn deduplicating() -> impl Iterator<Item = Provider> {
    Provider::ALL
        .into_iter()
        .filter(|provider| provider.capabilities().idempotent_retries)
}

/// The status of a new refund, as the provider reports it.
fn expected_status(provider: Provider) -> RefundStatus {
    test_support::new_refund_status(provider)
}

/// The first call records the intent, then the answer and the outcome: state, the provider's
/// refund id, status, amounts, timing, and a history of one intent and one answer.
pub async fn refund_records_intent_answer_and_outcome(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    for provider in Provider::ALL {
        env.seed(provider, "ORD-1");
        let req = request(provider, "ORD-1", "30.00", &format!("RF-{provider}-1"));
        let result = journal.refund(&refunds, &req).await.expect("journaled");
        let JournaledRefund::Applied {
            refund,
            replayed: false,
            entry,
        } = result
        else {
            panic!("{provider}: {result:?}");
        };
        assert_eq!(refund.amount, req.amount, "{provider}");
        assert_eq!(entry.state, EntryState::Applied, "{provider}");
        assert_eq!(entry.attempts, 1);
        assert_eq!(entry.request, req, "{provider}: the request round-trips");
        assert_eq!(entry.fingerprint, fingerprint(&req));
        assert_eq!(entry.provider_refund_id, refund.provider_refund_id);
        assert!(entry.provider_refund_id.is_some(), "{provider}: {entry:?}");
        assert_eq!(entry.refund_status, Some(expected_status(provider)));
        assert_eq!(entry.amount, Some(req.amount));
        assert_eq!(entry.refunded_total, refund.refunded_total);
        assert_eq!(entry.captured_total, refund.captured_total);
        assert_eq!(entry.settled_by, Some(SettledBy::Answer));
        assert_eq!(entry.lease, None, "{provider}: the lease is released");
        assert!(entry.settled_at_ms.is_some());
        assert!(entry.created_at_ms <= entry.updated_at_ms);
        assert!(!entry.ambiguous);

        let history = journal
            .history(provider, &req.merchant_reference)
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "{provider}: {history:#?}");
        assert_eq!(history[0].kind, EventKind::Intent);
        assert_eq!(history[0].attempt, Some(1));
        assert_eq!(history[1].kind, EventKind::Answer);
        assert_eq!(history[1].attempt, Some(1));
        assert_eq!(history[1].outcome, Some(Outcome::Applied));
        assert!(history[1].elapsed_ms.is_some());
        assert!(history[0].at_ms <= history[1].at_ms);
        assert_eq!(history[0].owner, history[1].owner);
    }
    db.cleanup().await;
}

/// A settled reference is answered from the journal: a new journal instance and a new client
/// (as after a restart, or on another replica) send nothing. AfterPay, whose sandbox does not
/// replay here, would otherwise refund twice.
pub async fn settled_reference_is_answered_without_io(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    for provider in Provider::ALL {
        env.seed(provider, "ORD-2");
        let req = request(provider, "ORD-2", "20.00", &format!("RF-{provider}-2"));
        let first = db
            .journal()
            .await
            .refund(&env.refunds(), &req)
            .await
            .unwrap();
        assert_eq!(first.label(), "applied", "{provider}: {first:?}");
        let received = env.handle(provider).requests_received();

        let again = db
            .journal()
            .await
            .refund(&env.refunds(), &req)
            .await
            .unwrap();
        let JournaledRefund::Applied {
            refund,
            replayed: true,
            entry,
        } = again
        else {
            panic!("{provider}: {again:?}");
        };
        assert_eq!(
            env.handle(provider).requests_received(),
            received,
            "{provider}: nothing sent"
        );
        assert_eq!(refund.provider_refund_id, first.entry().provider_refund_id);
        assert_eq!(refund.status, expected_status(provider));
        assert_eq!(refund.amount, req.amount);
        assert_eq!(entry.attempts, 1);
        assert_eq!(env.recorded(&req), 1, "{provider}: one refund");
    }
    db.cleanup().await;
}

/// The same reference with another request (amount, order, text) is refused before any I/O;
/// an invalid request is refused before anything is recorded.
pub async fn another_request_under_a_reference_is_refused_before_io(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::Moyasar, "ORD-3");
    let req = request(Provider::Moyasar, "ORD-3", "10.00", "RF-3");
    journal.refund(&refunds, &req).await.unwrap();
    let received = env.sb.moyasar().requests_received();

    for other in [
        request(Provider::Moyasar, "ORD-3", "11.00", "RF-3"),
        request(Provider::Moyasar, "ORD-OTHER", "10.00", "RF-3"),
        req.clone().with_description("another text"),
    ] {
        match journal.refund(&refunds, &other).await {
            Err(JournalError::Conflict {
                provider,
                reference,
                recorded,
                requested,
            }) => {
                assert_eq!(provider, Provider::Moyasar);
                assert_eq!(reference, req.merchant_reference);
                assert_eq!(recorded, fingerprint(&req));
                assert_eq!(requested, fingerprint(&other));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(env.sb.moyasar().requests_received(), received);

    let invalid = request(Provider::Moyasar, "ORD-3", "0.00", "RF-3-INVALID");
    match journal.refund(&refunds, &invalid).await {
        Err(JournalError::Invalid(error)) => assert_eq!(error.field(), Some("amount")),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(
        journal
            .entry(Provider::Moyasar, &invalid.merchant_reference)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(env.sb.moyasar().requests_received(), received);
    db.cleanup().await;
}

/// While one instance sends (its answer delayed), another instance's call with the same
/// reference is told InProgress and sends nothing; once the first is recorded, the second is
/// answered from the journal.
pub async fn live_lease_elsewhere_is_in_progress(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    env.seed(Provider::Moyasar, "ORD-4");
    let req = request(Provider::Moyasar, "ORD-4", "10.00", "RF-4");
    let fault = env.sb.moyasar().inject(
        Fault::Latency(Duration::from_millis(1500)),
        Match::Any.once(),
    );

    let first_journal = db.journal().await;
    let second_journal = db.journal().await;
    let first = tokio::spawn({
        let refunds = env.refunds();
        let req = req.clone();
        async move { first_journal.refund(&refunds, &req).await }
    });
    wait_until(
        "the first attempt reached Moyasar",
        Duration::from_secs(20),
        || fault.fired() == 1,
    )
    .await;

    let second = second_journal.refund(&env.refunds(), &req).await.unwrap();
    let JournaledRefund::InProgress { entry } = &second else {
        panic!("{second:?}");
    };
    assert_eq!(entry.state, EntryState::InFlight);
    let lease = entry.lease.as_ref().expect("a live lease");
    assert_eq!(lease.owner, history_owner(&second_journal, &req).await);
    assert!(
        !lease.owner.starts_with(&second_journal.config().instance),
        "the lease is the other instance's: {lease:?}"
    );
    assert_eq!(env.sb.moyasar().requests_received(), 1, "nothing sent");

    let first = first.await.unwrap().unwrap();
    assert_eq!(first.label(), "applied", "{first:?}");
    let after = second_journal.refund(&env.refunds(), &req).await.unwrap();
    assert_eq!(after.label(), "replayed", "{after:?}");
    assert_eq!(env.sb.moyasar().requests_received(), 1);
    assert_eq!(env.recorded(&req), 1);
    db.cleanup().await;
}

async fn history_owner(journal: &refunds_journal::Journal, req: &refunds::RefundRequest) -> String {
    journal
        .history(req.provider, &req.merchant_reference)
        .await
        .unwrap()[0]
        .owner
        .clone()
        .expect("the intent names its owner")
}

/// A caller that stops waiting (a time-out around the call) does not abandon the attempt it
/// started: the answer is still recorded, so an AfterPay refund does not end unresolved.
pub async fn a_caller_that_stops_waiting_still_gets_the_answer_recorded(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    env.seed(Provider::AfterPay, "ORD-11");
    let req = request(Provider::AfterPay, "ORD-11", "10.00", "RF-11");
    env.sb.afterpay().inject(
        Fault::Latency(Duration::from_millis(600)),
        Match::Any.once(),
    );

    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        journal.refund(&env.refunds(), &req),
    )
    .await;
    assert!(gave_up.is_err(), "the caller gave up first: {gave_up:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // (On a slow machine the call's own task may not even have recorded the intent yet.)
        let entry = journal
            .entry(Provider::AfterPay, &req.merchant_reference)
            .await
            .unwrap();
        if let Some(entry) = entry {
            if entry.state == EntryState::Applied {
                assert_eq!(entry.lease, None);
                break;
            }
            assert_eq!(entry.state, EntryState::InFlight);
        }
        assert!(Instant::now() < deadline, "the answer was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = journal.refund(&env.refunds(), &req).await.unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    assert_eq!(env.recorded(&req), 1);
    db.cleanup().await;
}

/// AfterPay: a 503 before AfterPay acted (the client cannot know that): unresolved. The operator
/// finds nothing at the provider and resolves it as not applied; the next call (same client,
/// which remembered the unknown answer) sends it, once.
pub async fn afterpay_resolved_not_applied_is_sent_again(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::AfterPay, "ORD-6");
    let req = request(Provider::AfterPay, "ORD-6", "10.00", "RF-6");
    env.sb
        .afterpay()
        .inject(Fault::Status(503), Match::Any.once());

    let result = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(result.label(), "unresolved", "{result:?}");
    assert_eq!(env.recorded(&req), 0);

    journal
        .resolve_manually(
            Provider::AfterPay,
            &req.merchant_reference,
            Outcome::NotApplied,
            "ops/bob: no refund RF-6 at Riverty",
        )
        .await
        .unwrap();
    let result = journal.refund(&refunds, &req).await.unwrap();
    let JournaledRefund::Applied {
        replayed: false,
        entry,
        ..
    } = &result
    else {
        panic!("{result:?}");
    };
    assert_eq!(entry.attempts, 2);
    assert_eq!(env.recorded(&req), 1);
    assert_eq!(
        history_kinds(&journal, Provider::AfterPay, &req.merchant_reference).await,
        [
            EventKind::Intent,
            EventKind::Answer,
            EventKind::Manual,
            EventKind::Intent,
            EventKind::Answer
        ]
    );
    db.cleanup().await;
}

/// Optty, Moyasar, OpenApp: a gateway times out after the provider committed; the journal's
/// retry (same merchant reference) learns that it was applied. One refund, two attempts on
/// record.
pub async fn deduplicating_providers_retry_an_unknown_outcome_to_one_refund(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    for provider in deduplicating() {
        env.seed(provider, "ORD-7");
        let req = request(provider, "ORD-7", "15.00", &format!("RF-{provider}-7"));
        env.handle(provider)
            .inject(Fault::StatusAfterCommit(504), Match::Any.once());
        let result = journal.refund(&refunds, &req).await.unwrap();
        let JournaledRefund::Applied {
            replayed: false,
            entry,
            ..
        } = &result
        else {
            panic!("{provider}: {result:?}");
        };
        assert_eq!(entry.attempts, 2, "{provider}");
        assert_eq!(env.recorded(&req), 1, "{provider}: one refund");
        let history = journal
            .history(provider, &req.merchant_reference)
            .await
            .unwrap();
        let summary: Vec<EventLine> = history
            .iter()
            .map(|e| (e.kind, e.attempt, e.outcome, e.http_status))
            .collect();
        assert_eq!(
            summary,
            [
                (EventKind::Intent, Some(1), None, None),
                (
                    EventKind::Answer,
                    Some(1),
                    Some(Outcome::Unknown),
                    Some(504)
                ),
                (EventKind::Intent, Some(2), None, None),
                (
                    EventKind::Answer,
                    Some(2),
                    Some(Outcome::Applied),
                    history[3].http_status
                ),
            ],
            "{provider}"
        );
    }
    db.cleanup().await;
}

/// Moyasar: every attempt of the call ends ambiguous; the call leaves it unresolved, and
/// reconcile reads the order and finds the refund: settled by reading, nothing re-sent, one
/// refund.
pub async fn exhausted_retries_are_settled_by_reconcile(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    env.seed(Provider::Moyasar, "ORD-8");
    let req = request(Provider::Moyasar, "ORD-8", "12.00", "RF-8");
    let policy = journal.config().retry;
    env.sb.moyasar().inject(
        Fault::StatusAfterCommit(502),
        Match::Any.times(policy.max_attempts as usize),
    );

    let result = journal.refund(&env.refunds(), &req).await.unwrap();
    let JournaledRefund::Unresolved {
        error: Some(_),
        entry,
    } = &result
    else {
        panic!("{result:?}");
    };
    assert_eq!(entry.attempts, policy.max_attempts);
    assert!(
        entry
            .unresolved_reason
            .as_deref()
            .unwrap()
            .contains("reconcile() re-sends"),
        "{entry:?}"
    );
    assert_eq!(env.recorded(&req), 1);

    let report = journal.reconcile(&env.refunds()).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    let report = report.reconciled;
    assert_eq!(report.len(), 1);
    let Reconciliation::SettledByReading { entry, .. } = &report[0] else {
        panic!("{report:?}");
    };
    assert_eq!(entry.settled_by, Some(SettledBy::Read));
    assert_eq!(entry.attempts, policy.max_attempts, "nothing re-sent");
    assert_eq!(env.recorded(&req), 1, "one refund");
    assert!(journal.unresolved().await.unwrap().is_empty());
    db.cleanup().await;
}

/// A refusal is recorded as not applied, and a repeat sends it again (nothing was refunded);
/// a temporary refusal (429) is retried within the call.
pub async fn not_applied_is_recorded_and_sent_again(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed_amount(Provider::Optty, "ORD-9", "10.00");
    let req = request(Provider::Optty, "ORD-9", "25.00", "RF-9");

    let result = journal.refund(&refunds, &req).await.unwrap();
    let JournaledRefund::Rejected { error, entry } = &result else {
        panic!("{result:?}");
    };
    assert!(
        matches!(error.kind(), ErrorKind::ExceedsRefundable { .. }),
        "{error:?}"
    );
    assert_eq!(entry.state, EntryState::NotApplied);
    assert_eq!(entry.settled_by, Some(SettledBy::Answer));
    assert_eq!(entry.error_kind.as_deref(), Some("exceeds_refundable"));
    assert_eq!(entry.http_status, error.http_status());
    assert!(journal.unresolved().await.unwrap().is_empty());

    // The order grows (re-seeded); the same request now goes through, once.
    env.seed_amount(Provider::Optty, "ORD-9", "100.00");
    env.sb.optty().inject(Fault::Status(429), Match::Any.once());
    let result = journal.refund(&refunds, &req).await.unwrap();
    let JournaledRefund::Applied { entry, .. } = &result else {
        panic!("{result:?}");
    };
    assert_eq!(entry.attempts, 3, "refused, then 429, then applied");
    let history = journal
        .history(Provider::Optty, &req.merchant_reference)
        .await
        .unwrap();
    let outcomes: Vec<(EventKind, Option<Outcome>, Option<String>)> = history
        .iter()
        .map(|e| (e.kind, e.outcome, e.error_kind.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (EventKind::Intent, None, None),
            (
                EventKind::Answer,
                Some(Outcome::NotApplied),
                Some("exceeds_refundable".to_owned())
            ),
            (EventKind::Intent, None, None),
            (
                EventKind::Answer,
                Some(Outcome::NotApplied),
                Some("transient".to_owned())
            ),
            (EventKind::Intent, None, None),
            (EventKind::Answer, Some(Outcome::Applied), None),
        ]
    );
    assert_eq!(env.recorded(&req), 1);
    db.cleanup().await;
}

/// OpenApp refunds are pending after the answer: listed by pending() until their final status
/// is recorded; a status for a reference without an applied entry is refused.
pub async fn pending_refunds_move_to_their_final_status(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::OpenApp, "ORD-10");
    env.seed(Provider::Moyasar, "ORD-10");
    let pending_req = request(Provider::OpenApp, "ORD-10", "10.00", "RF-10-A");
    let done_req = request(Provider::Moyasar, "ORD-10", "10.00", "RF-10-B");
    journal.refund(&refunds, &pending_req).await.unwrap();
    journal.refund(&refunds, &done_req).await.unwrap();

    let pending = journal.pending().await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        pending[0].merchant_reference,
        pending_req.merchant_reference
    );

    let entry = journal
        .record_status(
            Provider::OpenApp,
            &pending_req.merchant_reference,
            RefundStatus::Succeeded,
        )
        .await
        .unwrap();
    assert_eq!(entry.refund_status, Some(RefundStatus::Succeeded));
    assert!(journal.pending().await.unwrap().is_empty());
    let history = journal
        .history(Provider::OpenApp, &pending_req.merchant_reference)
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.kind, EventKind::Status);
    assert_eq!(last.detail.as_deref(), Some("pending -> succeeded"));

    let missing = journal
        .record_status(
            Provider::OpenApp,
            &crate::harness::reference("RF-NONE"),
            RefundStatus::Failed,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, JournalError::NotFound { .. }),
        "{missing:?}"
    );
    db.cleanup().await;
}

/// Several instances opening a new database at once: the migrations run once, all open.
pub async fn concurrent_opens_migrate_once(backend: Backend) {
    let db = TestDb::new(backend);
    let opens = (0..4).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { db.journal().await })
    });
    let mut journals = Vec::new();
    for open in opens {
        journals.push(open.await.unwrap());
    }
    for journal in &journals {
        assert!(journal.unresolved().await.unwrap().is_empty());
        assert!(journal.now_ms().await.unwrap() > 1_600_000_000_000);
    }
    db.cleanup().await;
}

/// The crash, for one provider: a child process records the intent and sends the refund; the
/// sandbox commits it; the child is killed (SIGKILL) before the answer arrives, so it is never
/// recorded. Returns the sandbox, the database and the request, with the child's lease lapsed.
pub async fn crash_while_sending(
    env: &Env,
    db: &TestDb,
    provider: Provider,
) -> refunds::RefundRequest {
    let order = format!("ORD-CRASH-{provider}");
    env.seed(provider, &order);
    let req = request(provider, &order, "40.00", &format!("RF-CRASH-{provider}"));
    // The provider holds the request a while before it commits: time to kill the sender.
    let fault = env.handle(provider).inject(
        Fault::Latency(Duration::from_millis(1200)),
        Match::Any.once(),
    );

    let mut vars = db.env();
    vars.extend(env.env());
    vars.push(("JOURNAL_IT_REQUEST", serde_json::to_string(&req).unwrap()));
    vars.push(("JOURNAL_IT_LEASE_MS", "1000".to_owned()));
    let mut sender = child("crash", &vars).spawn().expect("spawn the sender");

    let deadline = Instant::now() + Duration::from_secs(60);
    while fault.fired() == 0 {
        if let Ok(Some(status)) = sender.try_wait() {
            let output = sender.wait_with_output().await.unwrap();
            panic!(
                "{provider}: the sender exited ({status}) before its refund arrived:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{provider}: the refund never arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender.kill().await.expect("kill the sender");
    let status = sender.wait().await.unwrap();
    assert!(
        !status.success(),
        "{provider}: the sender was killed: {status}"
    );

    wait_until(
        &format!("{provider}: the sandbox committed the refund"),
        Duration::from_secs(20),
        || env.recorded(&req) == 1,
    )
    .await;
    req
}

/// Waits until the dead sender's lease lapsed: `unresolved()` lists the entry.
pub async fn until_unresolved(journal: &refunds_journal::Journal, req: &refunds::RefundRequest) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unresolved = journal.unresolved().await.unwrap();
        if unresolved
            .iter()
            .any(|entry| entry.merchant_reference == req.merchant_reference)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never listed as unresolved",
            req.merchant_reference
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Crash test, Optty, Moyasar and OpenApp: the same crash ends in exactly one refund after
/// reconcile: Optty and Moyasar settled by reading their record (nothing re-sent), OpenApp
/// (no read) re-sent under the same merchant reference and deduplicated.
pub async fn crash_deduplicating_providers_end_in_one_refund(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    db.journal().await;
    let (optty, moyasar, openapp) = tokio::join!(
        crash_while_sending(&env, &db, Provider::Optty),
        crash_while_sending(&env, &db, Provider::Moyasar),
        crash_while_sending(&env, &db, Provider::OpenApp),
    );
    let journal = db.journal().await;
    for req in [&optty, &moyasar, &openapp] {
        until_unresolved(&journal, req).await;
    }

    let report = journal.reconcile(&env.refunds()).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    let report = report.reconciled;
    assert_eq!(report.len(), 3, "{report:?}");
    let mut settled = BTreeMap::new();
    for done in &report {
        let entry = done.entry();
        assert_eq!(entry.state, EntryState::Applied, "{done:?}");
        assert_eq!(entry.lease, None);
        if entry.provider == Provider::OpenApp {
            let Reconciliation::Resent(result) = done else {
                panic!("{done:?}");
            };
            assert_eq!(result.label(), "applied", "{result:?}");
            assert_eq!(entry.settled_by, Some(SettledBy::Reconcile));
            assert_eq!(entry.attempts, 2);
        } else {
            assert!(
                matches!(done, Reconciliation::SettledByReading { .. }),
                "{done:?}"
            );
            assert_eq!(entry.settled_by, Some(SettledBy::Read));
            assert_eq!(entry.attempts, 1, "nothing re-sent");
        }
        settled.insert(entry.provider, entry.already_applied);
    }
    assert_eq!(settled.len(), 3);
    for req in [&optty, &moyasar, &openapp] {
        assert_eq!(env.recorded(req), 1, "{}: exactly one refund", req.provider);
        let expected: &[EventKind] = if req.provider == Provider::OpenApp {
            &[
                EventKind::Intent,
                EventKind::LeaseExpired,
                EventKind::Reconcile,
                EventKind::Intent,
                EventKind::Answer,
            ]
        } else {
            &[EventKind::Intent, EventKind::LeaseExpired, EventKind::Read]
        };
        assert_eq!(
            history_kinds(&journal, req.provider, &req.merchant_reference).await,
            expected,
            "{}",
            req.provider
        );
        let received = env.handle(req.provider).requests_received();
        let again = db
            .journal()
            .await
            .refund(&env.refunds(), req)
            .await
            .unwrap();
        assert_eq!(again.label(), "replayed", "{again:?}");
        assert_eq!(env.handle(req.provider).requests_received(), received);
    }
    assert!(journal.unresolved().await.unwrap().is_empty());
    db.cleanup().await;
}

/// How many refunds the replica test sends.
const REPLICA_REFUNDS: usize = 200;

/// Replica test: two OS processes, each with its own pool and its own `Refunds`, send the same
/// 200 AfterPay refunds concurrently to one sandbox whose AfterPay replay is off (a second send
/// would be a second refund). The sandbox records exactly 200 refunds; both processes report
/// the same outcome per reference, and each reference was sent by exactly one of them.
pub async fn replicas_send_each_refund_once(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let mut requests = Vec::new();
    for i in 0..REPLICA_REFUNDS {
        let order = format!("ORD-R-{i:03}");
        env.seed(Provider::AfterPay, &order);
        requests.push(request(
            Provider::AfterPay,
            &order,
            "10.00",
            &format!("RF-R-{i:03}"),
        ));
    }
    let mut vars = db.env();
    vars.extend(env.env());
    vars.push((
        "JOURNAL_IT_REQUESTS",
        serde_json::to_string(&requests).unwrap(),
    ));
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1500;
    vars.push(("JOURNAL_IT_START_AT_MS", start_at.to_string()));

    let replicas: Vec<_> = ["replica-a", "replica-b"]
        .into_iter()
        .map(|name| {
            let mut vars = vars.clone();
            vars.push(("JOURNAL_IT_INSTANCE", name.to_owned()));
            child("replica", &vars).spawn().expect("spawn a replica")
        })
        .collect();
    let mut reports = Vec::new();
    for replica in replicas {
        let output = tokio::time::timeout(Duration::from_secs(180), replica.wait_with_output())
            .await
            .expect("the replica finished in time")
            .unwrap();
        assert!(
            output.status.success(),
            "a replica failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = child_lines(&output.stdout);
        let outcomes: BTreeMap<String, (String, u32)> = lines
            .iter()
            .map(|line| {
                let mut parts = line.split(' ');
                let reference = parts.next().unwrap().to_owned();
                let label = parts.next().unwrap().to_owned();
                let waits: u32 = parts.next().unwrap().parse().unwrap();
                (reference, (label, waits))
            })
            .collect();
        assert_eq!(outcomes.len(), REPLICA_REFUNDS, "{lines:?}");
        reports.push(outcomes);
    }

    assert_eq!(
        env.sb.afterpay().refund_count(),
        REPLICA_REFUNDS,
        "exactly 200 refunds"
    );
    let mut sent = [0usize; 2];
    let mut waits = 0u32;
    for req in &requests {
        let key = req.merchant_reference.as_str();
        assert_eq!(env.recorded(req), 1, "{key}: one refund");
        let (a, b) = (&reports[0][key], &reports[1][key]);
        // The same outcome: applied, by a send of one process and from the record in the other.
        let outcome = |label: &str| match label {
            "applied" | "replayed" => "applied",
            other => panic!("{key}: {other}"),
        };
        assert_eq!(outcome(&a.0), outcome(&b.0), "{key}: {a:?} vs {b:?}");
        assert!(
            (a.0 == "applied") ^ (b.0 == "applied"),
            "{key}: exactly one process sent it: {a:?} {b:?}"
        );
        sent[usize::from(b.0 == "applied")] += 1;
        waits += a.1 + b.1;
    }
    assert_eq!(sent[0] + sent[1], REPLICA_REFUNDS);
    eprintln!(
        "replicas: a sent {}, b sent {}, in-progress answers waited out: {waits}",
        sent[0], sent[1]
    );
    for req in &requests {
        let entry = journal
            .entry(Provider::AfterPay, &req.merchant_reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.state, EntryState::Applied);
        assert_eq!(entry.attempts, 1);
    }
    db.cleanup().await;
}
