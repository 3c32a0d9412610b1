//! Many callers writing at once. Their writes share transactions (the journal's writer commits
//! whatever is queued together: group commit; on PostgreSQL several writers side by side).
//! Either way every caller's refund is recorded whole, is there for a journal opened afterwards
//! (another process), and one caller's failing write fails that caller alone.

use refunds::{Provider, RefundRequest};
use refunds_journal::{
    EntryState, ErrorOutcome, EventKind, Journal, JournalError, JournaledRefund,
};

use crate::harness::{Backend, Env, TestDb, history_kinds, request};

/// Callers at once.
const CALLERS: usize = 32;

/// [`CALLERS`] Moyasar refunds of 10.00, the i-th on an order of its own, `ORD-{tag}-{i}`
/// (seeded), under the merchant reference `reference(i)`.
fn requests(env: &Env, tag: &str, reference: impl Fn(usize) -> String) -> Vec<RefundRequest> {
    (0..CALLERS)
        .map(|i| {
            let order = format!("ORD-{tag}-{i}");
            env.seed(Provider::Moyasar, &order);
            request(Provider::Moyasar, &order, "10.00", &reference(i))
        })
        .collect()
}

/// Sends every one of `requests` through `journal` at once, each from a task of its own; each
/// one's result with its request, in the order they finished.
async fn all_at_once(
    journal: &Journal,
    env: &Env,
    requests: &[RefundRequest],
) -> Vec<(Result<JournaledRefund, JournalError>, RefundRequest)> {
    let mut calls = tokio::task::JoinSet::new();
    for req in requests.iter().cloned() {
        let (journal, refunds) = (journal.clone(), env.refunds());
        calls.spawn(async move { (journal.refund(&refunds, &req).await, req) });
    }
    calls.join_all().await
}

/// 32 refunds at once, each on an order of its own: every one applied, with its intent and
/// answer on record, sent once, and all of it there for a journal opened afterwards on the same
/// database (the first one closed).
async fn concurrent_refunds_are_all_recorded(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let requests = requests(&env, "GC", |i| format!("RF-GC-{i}"));
    for (result, req) in all_at_once(&journal, &env, &requests).await {
        let result = result.unwrap_or_else(|e| panic!("{}: {e}", req.merchant_reference));
        assert_eq!(result.label(), "applied", "{result:?}");
        assert_eq!(result.entry().version, 2, "the intent and the answer");
    }
    journal.close().await;

    let reopened = db.journal().await;
    for req in &requests {
        let entry = reopened
            .entry(Provider::Moyasar, &req.merchant_reference)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} is on record", req.merchant_reference));
        assert_eq!(entry.state, EntryState::Applied);
        assert_eq!(entry.attempts, 1);
        assert!(entry.lease.is_none());
        assert_eq!(
            history_kinds(&reopened, Provider::Moyasar, &req.merchant_reference).await,
            [EventKind::Intent, EventKind::Answer]
        );
        assert_eq!(env.recorded(req), 1, "sent once");
    }
    reopened.close().await;
    db.cleanup().await;
}

/// 32 refunds at once, 8 of whose intents the database refuses: 4 by a failing statement
/// (SQLite undoes the statement), 4 by a failure that throws the whole transaction away
/// (SQLite's `RAISE(ROLLBACK)`, as on a full disk; on PostgreSQL both are an exception). The
/// 8 fail with nothing sent and nothing on record; the 24 others, written in the same
/// transactions, are applied and on record.
async fn a_failing_write_fails_its_caller_alone(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let (statement, transaction) = match backend {
        Backend::Sqlite => ("ABORT", "ROLLBACK"),
        Backend::Postgres => ("", ""),
    };
    for (name, failure, references) in [
        ("refuse_statement", statement, "RF-GCF-BAD-%"),
        ("refuse_transaction", transaction, "RF-GCF-LOST-%"),
    ] {
        let condition = format!("NEW.merchant_reference LIKE '{references}'");
        db.execute(&match backend {
            Backend::Sqlite => format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON refund_journal_events FOR EACH ROW \
                 WHEN {condition} BEGIN SELECT RAISE({failure}, 'injected failure {name}'); END;"
            ),
            Backend::Postgres => format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF {condition} THEN RAISE EXCEPTION 'injected failure {name}'; END IF; \
                 RETURN NEW; END $$; \
                 CREATE TRIGGER {name} BEFORE INSERT ON refund_journal_events FOR EACH ROW \
                 EXECUTE FUNCTION {name}();"
            ),
        })
        .await;
    }
    let requests = requests(&env, "GCF", |i| match i % 8 {
        3 => format!("RF-GCF-BAD-{i}"),
        6 => format!("RF-GCF-LOST-{i}"),
        _ => format!("RF-GCF-OK-{i}"),
    });
    let (mut applied, mut failed) = (0, 0);
    for (result, req) in all_at_once(&journal, &env, &requests).await {
        let reference = req.merchant_reference.as_str();
        if reference.starts_with("RF-GCF-OK-") {
            let result = result.unwrap_or_else(|e| panic!("{reference}: {e}"));
            assert_eq!(result.label(), "applied", "{result:?}");
            applied += 1;
        } else {
            let error = result.expect_err(reference);
            assert!(
                error.to_string().contains("injected failure"),
                "{reference}: {error}"
            );
            assert_eq!(error.outcome(), ErrorOutcome::NothingSent, "{error:?}");
            failed += 1;
        }
    }
    assert_eq!((applied, failed), (24, 8));
    for req in &requests {
        let reference = req.merchant_reference.as_str();
        let entry = journal
            .entry(Provider::Moyasar, &req.merchant_reference)
            .await
            .unwrap();
        if reference.starts_with("RF-GCF-OK-") {
            assert_eq!(
                entry.map(|e| e.state),
                Some(EntryState::Applied),
                "{reference}"
            );
            assert_eq!(env.recorded(req), 1, "{reference} sent once");
        } else {
            assert!(entry.is_none(), "{reference}: nothing on record");
            assert!(
                journal
                    .history(Provider::Moyasar, &req.merchant_reference)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(env.recorded(req), 0, "{reference}: nothing sent");
        }
    }
    journal.close().await;
    db.cleanup().await;
}

/// PostgreSQL: a write the server rolls back for a deadlock (here a trigger raises
/// `deadlock_detected` the first time one reference's intent is written, whether alone or in a
/// batch) runs again: every one of 32 refunds at once is applied, each sent once, none of their
/// callers sees the deadlock.
async fn a_deadlock_fails_no_caller() {
    let env = Env::start().await;
    let db = TestDb::new(Backend::Postgres);
    let journal = db.journal().await;
    db.execute(
        "CREATE SEQUENCE deadlock_once; \
         CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.merchant_reference = 'RF-GCD-7' AND nextval('deadlock_once') = 1 THEN \
         RAISE EXCEPTION 'injected deadlock' USING ERRCODE = 'deadlock_detected'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER deadlock_once BEFORE INSERT ON refund_journal_events FOR EACH ROW \
         EXECUTE FUNCTION deadlock_once();",
    )
    .await;
    let requests = requests(&env, "GCD", |i| format!("RF-GCD-{i}"));
    for (result, req) in all_at_once(&journal, &env, &requests).await {
        let result = result.unwrap_or_else(|e| panic!("{}: {e}", req.merchant_reference));
        assert_eq!(result.label(), "applied", "{result:?}");
    }
    // The sequence was drawn: the trigger raised its deadlock.
    db.execute(
        "DO $$ BEGIN IF NOT (SELECT is_called FROM deadlock_once) THEN \
         RAISE EXCEPTION 'no deadlock was injected'; END IF; END $$;",
    )
    .await;
    for req in &requests {
        assert_eq!(env.recorded(req), 1, "{} sent once", req.merchant_reference);
    }
    journal.close().await;
    db.cleanup().await;
}

mod sqlite {
    use crate::harness::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_refunds_are_all_recorded() {
        super::concurrent_refunds_are_all_recorded(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_fails_its_caller_alone() {
        super::a_failing_write_fails_its_caller_alone(Backend::Sqlite).await;
    }
}

mod postgres {
    use crate::harness::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_refunds_are_all_recorded() {
        super::concurrent_refunds_are_all_recorded(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_fails_its_caller_alone() {
        super::a_failing_write_fails_its_caller_alone(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_fails_no_caller() {
        super::a_deadlock_fails_no_caller().await;
    }
}
