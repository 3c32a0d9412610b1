//! What a service that runs the journal leans on: a database out of reach or out of time fails
//! a call within the journal's limits with an error that names it (never its password), `ping`
//! for health checks, `refund_or_wait` for a caller that meets another's attempt, and a manual
//! resolution that records what the operator found.
//!
//! The scenarios taking a [`Backend`] run on both backends; the PostgreSQL-only ones (a server
//! that is not there, a server that stops) are plain tests in `main.rs`.

use std::time::{Duration, Instant};

use refunds::{Money, Outcome, Provider, RefundStatus};
use refunds_journal::{
    Database, EntryState, ErrorOutcome, EventKind, Journal, JournalError, JournaledRefund,
    Reconciliation, Resolution, SettledBy,
};
use sandbox::{Fault, Match};

use crate::harness::{Backend, Env, TestDb, config, pg_url, request, wait_until};
use test_support::DatabaseProxy;

/// Two callers on one request: while the first one's attempt is on the wire (its answer held
/// back), `refund` answers the second `InProgress` at once, `refund_or_wait` with a short wait
/// answers the `InProgress` it last saw, and `refund_or_wait` with time to spare answers the
/// first one's outcome: applied (replayed from the record), one request sent in all.
pub async fn refund_or_wait_answers_the_other_callers_outcome(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    env.seed(Provider::Moyasar, "ORD-W");
    let req = request(Provider::Moyasar, "ORD-W", "10.00", "RF-W");
    let fault = env
        .sb
        .moyasar()
        .inject(Fault::Latency(Duration::from_secs(2)), Match::Any.once());

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

    let refunds = env.refunds();
    let busy = second_journal.refund(&refunds, &req).await.unwrap();
    assert!(
        matches!(&busy, JournaledRefund::InProgress { .. }),
        "{busy:?}"
    );
    let started = Instant::now();
    let short = second_journal
        .refund_or_wait(&refunds, &req, Duration::from_millis(100))
        .await
        .unwrap();
    let JournaledRefund::InProgress { entry } = &short else {
        panic!("{short:?}");
    };
    assert_eq!(entry.state, EntryState::InFlight);
    assert!(entry.lease.is_some(), "{entry:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(env.sb.moyasar().requests_received(), 1, "nothing sent");

    let waited = second_journal
        .refund_or_wait(&refunds, &req, Duration::from_secs(30))
        .await
        .unwrap();
    let JournaledRefund::Applied {
        refund,
        replayed: true,
        entry,
    } = &waited
    else {
        panic!("{waited:?}");
    };
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.attempts, 1);
    let first = first.await.unwrap().unwrap();
    let JournaledRefund::Applied {
        refund: sent,
        replayed: false,
        ..
    } = &first
    else {
        panic!("{first:?}");
    };
    assert_eq!(refund.provider_refund_id, sent.provider_refund_id);
    assert_eq!(refund.amount, req.amount);
    assert_eq!(
        env.sb.moyasar().requests_received(),
        1,
        "one request in all"
    );
    assert_eq!(env.recorded(&req), 1);
    // Nothing in flight: answered at once.
    let again = second_journal
        .refund_or_wait(&refunds, &req, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.label(), "replayed", "{again:?}");
    db.cleanup().await;
}

/// An operator resolves an AfterPay refund whose answer was lost with what they found at
/// Riverty: its refund number and amount are recorded (exactly, the amount as a decimal
/// string), with the audit event. A later unknown refund on the same order is then attributed
/// by reading: the recorded number is accounted for. Resolved without a number (the old way),
/// the same later refund is left for a person, since the first may own any refund of the
/// order. A resolution that does not fit (another currency, a number on a refund not applied)
/// is refused and writes nothing.
pub async fn a_manual_resolution_records_the_refund_id_and_amount(backend: Backend) {
    let env = Env::without_afterpay_replay().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    let lost = |order: &str, amount: &str, reference: &str| {
        let req = request(Provider::AfterPay, order, amount, reference);
        env.sb
            .afterpay()
            .inject(Fault::DropAfterCommit, Match::Any.once());
        req
    };

    for (order, with_number) in [("ORD-RM-1", true), ("ORD-RM-2", false)] {
        env.seed(Provider::AfterPay, order);
        let first = lost(order, "10.00", &format!("{order}-A"));
        let result = journal.refund(&refunds, &first).await.unwrap();
        assert_eq!(result.label(), "unresolved", "{result:?}");
        let number = env.refund_id(&first);
        let reference = &first.merchant_reference;

        if with_number {
            // Refused, nothing written: another currency; a number on a refund not applied.
            let currency = if first.amount.currency().code() == "USD" {
                "EUR"
            } else {
                "USD"
            };
            let refusals = [
                Resolution::applied("ops").with_amount(Money::parse("10.00", currency).unwrap()),
                Resolution::not_applied("ops").with_provider_refund_id(&number),
                Resolution::applied("ops").with_provider_refund_id("  "),
            ];
            for resolution in refusals {
                let error = journal
                    .resolve_manually_with(Provider::AfterPay, reference, resolution.clone())
                    .await
                    .unwrap_err();
                assert!(
                    matches!(error, JournalError::Invalid(_)),
                    "{resolution:?}: {error:?}"
                );
                assert_eq!(error.outcome(), ErrorOutcome::NothingSent);
            }
            let entry = journal
                .entry(Provider::AfterPay, reference)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(entry.state, EntryState::Unknown, "nothing written");

            let amount = first.amount;
            let resolved = journal
                .resolve_manually_with(
                    Provider::AfterPay,
                    reference,
                    Resolution::applied("ops/alice: seen in Riverty's portal")
                        .with_provider_refund_id(format!(" {number} "))
                        .with_amount(amount),
                )
                .await
                .unwrap();
            assert_eq!(resolved.state, EntryState::Applied);
            assert_eq!(resolved.settled_by, Some(SettledBy::Manual));
            assert_eq!(
                resolved.provider_refund_id.as_deref(),
                Some(number.as_str())
            );
            assert_eq!(resolved.amount, Some(amount));
            assert_eq!(resolved.refund_status, Some(RefundStatus::Pending));
            assert_eq!(
                db.stored_text(&format!(
                    "SELECT amount FROM refund_journal_entries WHERE merchant_reference = '{}'",
                    reference.as_str()
                ))
                .await
                .as_deref(),
                Some("10.00"),
                "the amount, exact"
            );
            let history = journal
                .history(Provider::AfterPay, reference)
                .await
                .unwrap();
            let manual = history.last().unwrap();
            assert_eq!(manual.kind, EventKind::Manual);
            assert_eq!(manual.owner.as_deref(), Some("operator"));
            assert_eq!(manual.outcome, Some(Outcome::Applied));
            let detail = manual.detail.as_deref().unwrap();
            assert!(
                detail.starts_with("ops/alice: seen in Riverty's portal"),
                "{detail}"
            );
            assert!(
                detail.contains(&format!("refund id {number:?}")),
                "{detail}"
            );
            assert!(detail.contains(&amount.to_string()), "{detail}");
            // Answered from the record, with what the operator found.
            let again = journal.refund(&refunds, &first).await.unwrap();
            let JournaledRefund::Applied {
                refund,
                replayed: true,
                ..
            } = &again
            else {
                panic!("{again:?}");
            };
            assert_eq!(refund.provider_refund_id.as_deref(), Some(number.as_str()));
        } else {
            journal
                .resolve_manually(
                    Provider::AfterPay,
                    reference,
                    Outcome::Applied,
                    "ops/alice: seen in Riverty's portal",
                )
                .await
                .unwrap();
        }

        // A second refund on the order, its answer lost too.
        let second = lost(order, "5.00", &format!("{order}-B"));
        let result = journal.refund(&refunds, &second).await.unwrap();
        assert_eq!(result.label(), "unresolved", "{result:?}");
        let report = journal.reconcile(&refunds).await.unwrap();
        assert!(report.is_complete(), "{report:?}");
        let done: Vec<(&str, &Reconciliation)> = report
            .reconciled
            .iter()
            .map(|done| (done.entry().merchant_reference.as_str(), done))
            .collect();
        if with_number {
            // The second is attributed: the one refund the journal does not account for. And
            // the first's final status is read by its number.
            let [
                (b, Reconciliation::SettledByReading { entry, .. }),
                (a, Reconciliation::StatusRead { entry: first_entry }),
            ] = done.as_slice()
            else {
                panic!("{order}: {report:?}");
            };
            assert_eq!(*b, second.merchant_reference.as_str());
            assert_eq!(entry.provider_refund_id, Some(env.refund_id(&second)));
            assert_eq!(entry.settled_by, Some(SettledBy::Read));
            assert_eq!(entry.attempts, 1, "never re-sent");
            assert_eq!(*a, reference.as_str());
            assert_eq!(first_entry.refund_status, Some(RefundStatus::Succeeded));
            assert_eq!(first_entry.amount, Some(first.amount));
        } else {
            // Left for a person: the first, applied without a number, may own either refund.
            let [(b, Reconciliation::LeftUnresolved { reason, .. })] = done.as_slice() else {
                panic!("{order}: {report:?}");
            };
            assert_eq!(*b, second.merchant_reference.as_str());
            assert!(reason.contains("cannot attribute"), "{reason}");
        }
        assert_eq!(
            env.refunds_on(Provider::AfterPay, order).len(),
            2,
            "nothing re-sent"
        );
    }
    db.cleanup().await;
}

/// Another connection holds the write lock of the journal's entries past the statement limit
/// (PostgreSQL: a table lock, the statement cancelled by `statement_timeout`; SQLite: another
/// process's lock on the file, past `busy_timeout`): the call fails within about that limit
/// with an error that names the database, and sends nothing. `ping` (a read) still answers;
/// once the lock goes, the same call goes through.
pub async fn a_lock_held_past_the_statement_limit_fails_the_call_and_names_the_database(
    backend: Backend,
) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let limit = Duration::from_millis(300);
    let journal = Journal::open_with(db.database().statement_timeout(limit), config())
        .await
        .unwrap();
    journal.ping().await.expect("ping");
    match backend {
        Backend::Sqlite => assert!(
            journal.database().starts_with("SQLite at /"),
            "{}",
            journal.database()
        ),
        Backend::Postgres => assert!(
            journal.database().starts_with("PostgreSQL at "),
            "{}",
            journal.database()
        ),
    }
    env.seed(Provider::Moyasar, "ORD-LOCK");
    let req = request(Provider::Moyasar, "ORD-LOCK", "10.00", "RF-LOCK");
    let refunds = env.refunds();

    let lock = db.hold_write_lock().await;
    let started = Instant::now();
    let error = journal.refund(&refunds, &req).await.unwrap_err();
    let took = started.elapsed();
    let JournalError::Unavailable {
        database,
        problem,
        cause,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(database, journal.database());
    match backend {
        Backend::Sqlite => {
            assert_eq!(
                problem,
                "another process held the database's lock past the 300 ms busy limit"
            );
            assert!(cause.contains("locked"), "{cause}");
        }
        Backend::Postgres => {
            assert_eq!(problem, "a statement ran past the 300 ms statement limit");
            assert!(cause.contains("statement timeout"), "{cause}");
        }
    }
    assert_eq!(
        error.to_string(),
        format!("{}: {problem} ({cause})", journal.database())
    );
    assert_eq!(error.outcome(), ErrorOutcome::NothingSent);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(env.sb.moyasar().requests_received(), 0, "nothing sent");
    journal.ping().await.expect("reads go on");

    lock.release().await;
    let result = journal.refund(&refunds, &req).await.unwrap();
    assert_eq!(result.label(), "applied", "{result:?}");
    assert_eq!(env.recorded(&req), 1);
    db.cleanup().await;
}

/// A loopback port where nothing listens, held for as long as the socket lives: bound but never
/// listening, so a connection there is refused, and no other test (the statement-counting
/// proxy, a sandbox) can be given the port meanwhile, as it could once a bound port is let go.
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// A PostgreSQL URL on a loopback port where nothing listens, with a password in it: `open`
/// fails after the acquire limit (5 s by default, well within the start-up limit of 10 s),
/// instead of blocking for sqlx's 30 s, with an error that names the host, port and database
/// and the cause, and never the password (in its text, its JSON, its `Debug`). With a start-up
/// limit below the acquire limit, start-up ends first, saying where it was.
pub async fn postgres_that_is_not_there_fails_open_fast_and_says_so() {
    let (_held, port) = refusing_port();
    let password = "pw-not-to-be-shown-9d1c";
    let url = format!("postgres://refunds:{password}@127.0.0.1:{port}/refunds");

    let started = Instant::now();
    let error = Journal::open(Database::postgres(&url)).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("open on a stopped PostgreSQL (defaults) failed after {took:?}: {error}");
    assert_eq!(
        error.to_string(),
        format!(
            "PostgreSQL at 127.0.0.1:{port}/refunds: no connection within 5 s (connection refused)"
        )
    );
    assert!(
        took >= Duration::from_millis(4_500) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    assert_eq!(error.outcome(), ErrorOutcome::NothingSent);
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        serde_json::to_string(&error).unwrap(),
        format!("{:?}", Database::postgres(&url)),
    ] {
        assert!(!shown.contains(password), "{shown}");
    }

    let started = Instant::now();
    let error = Journal::open(
        Database::postgres(&url)
            .acquire_timeout(Duration::from_secs(30))
            .startup_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    eprintln!("open with a 1 s start-up limit failed after {took:?}: {error}");
    assert_eq!(
        error.to_string(),
        format!(
            "PostgreSQL at 127.0.0.1:{port}/refunds: start-up (connect and migrate) not done \
             within 1 s (connecting: connection refused)"
        )
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!format!("{error:?}").contains(password));
}

/// A PostgreSQL server that stops while the journal runs (a proxy in front of the real one,
/// stopped: every connection cut, nothing listening) and comes back on the same port: `ping`
/// and a refund fail within the acquire limit with the named error (nothing sent), and work
/// again once it is back, without reopening the journal.
pub async fn postgres_that_stops_fails_calls_fast_and_the_journal_recovers() {
    let env = Env::start().await;
    let db = TestDb::new(Backend::Postgres);
    let real = pg_url();
    let mut proxy = DatabaseProxy::start(&real).await;
    let journal = Journal::open_with(
        db.database_at(&proxy.url(&real))
            .acquire_timeout(Duration::from_secs(1)),
        config(),
    )
    .await
    .unwrap();
    let name = journal.database().to_owned();
    assert!(
        name.starts_with(&format!("PostgreSQL at 127.0.0.1:{}/", proxy.port())),
        "{name}"
    );
    journal.ping().await.expect("ping");
    env.seed(Provider::Moyasar, "ORD-STOP");
    let refunds = env.refunds();
    let before = request(Provider::Moyasar, "ORD-STOP", "10.00", "RF-STOP-1");
    assert_eq!(
        journal.refund(&refunds, &before).await.unwrap().label(),
        "applied"
    );

    proxy.stop().await;
    let started = Instant::now();
    let error = journal.ping().await.unwrap_err();
    let took = started.elapsed();
    eprintln!("ping on a stopped PostgreSQL (acquire limit 1 s) failed after {took:?}: {error}");
    assert_eq!(
        error.to_string(),
        format!("{name}: no connection within 1 s (connection refused)")
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");

    let during = request(Provider::Moyasar, "ORD-STOP", "5.00", "RF-STOP-2");
    let started = Instant::now();
    let error = journal.refund(&refunds, &during).await.unwrap_err();
    assert!(
        matches!(error, JournalError::Unavailable { .. }),
        "{error:?}"
    );
    assert_eq!(error.outcome(), ErrorOutcome::NothingSent);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(env.sb.moyasar().requests_received(), 1, "nothing sent");

    proxy.restart().await;
    journal
        .ping()
        .await
        .expect("ping once the database is back");
    assert_eq!(
        journal.refund(&refunds, &during).await.unwrap().label(),
        "applied"
    );
    assert_eq!(env.sb.moyasar().requests_received(), 2);
    journal.close().await;
    db.cleanup().await;
}

/// A PostgreSQL server that restarts between two calls (every pooled connection cut, the
/// server back at once): the next refunds, as many at once as the pool held connections, are
/// all applied with their answers recorded. Each connection that died idle is found dead before
/// it carries a write (sqlx pings a pooled connection before handing it out) and replaced; a
/// write on it would have failed, and an answer's write failing leaves a sent refund unrecorded
/// until its lease lapses.
pub async fn postgres_restarted_between_calls_costs_no_write() {
    const AT_ONCE: usize = 4;
    let env = Env::start().await;
    let db = TestDb::new(Backend::Postgres);
    let real = pg_url();
    let mut proxy = DatabaseProxy::start(&real).await;
    let journal = Journal::open_with(
        db.database_at(&proxy.url(&real))
            .max_connections(AT_ONCE as u32),
        config(),
    )
    .await
    .unwrap();
    env.seed(Provider::Moyasar, "ORD-RESTART");
    // `AT_ONCE` refunds at once, on as many pooled connections as the pool opens for them.
    let run = async |round: usize| {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..AT_ONCE {
            let (journal, refunds) = (journal.clone(), env.refunds());
            let reference = format!("RF-RESTART-{round}-{i}");
            let req = request(Provider::Moyasar, "ORD-RESTART", "1.00", &reference);
            calls.spawn(async move { (journal.refund(&refunds, &req).await, reference) });
        }
        while let Some(done) = calls.join_next().await {
            let (result, reference) = done.unwrap();
            let refund = result.unwrap_or_else(|error| panic!("{reference}: {error:?}"));
            assert_eq!(refund.label(), "applied", "{reference}: {refund:?}");
            assert_eq!(refund.entry().state, EntryState::Applied, "{reference}");
        }
    };
    // The pool's connections opened (at most `AT_ONCE`), then idle.
    run(0).await;

    proxy.stop().await;
    proxy.restart().await;
    run(1).await;
    assert_eq!(env.sb.moyasar().requests_received(), 2 * AT_ONCE);
    journal.close().await;
    db.cleanup().await;
}
