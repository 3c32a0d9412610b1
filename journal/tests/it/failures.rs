//! What must never block the journal: text a provider sends (a NUL, a compressed body nobody
//! decoded), one entry that cannot be written, a transaction the database threw away. Each an
//! `async fn(Backend)` like [`crate::scenarios`], run on both backends.

use std::time::Duration;

use refunds::{Outcome, Provider};
use refunds_journal::{EntryState, JournaledRefund, Reconciliation, SettledBy};
use sandbox::{Fault, Match};

use crate::harness::{
    Backend, Canned, CannedAnswer, Env, TestDb, config_with_lease, reference, request,
};

/// A gateway's HTML page, gzip-compressed, sent with `content-encoding: gzip` to a client that
/// does not decode it: the bytes hold NULs (the gzip header's flags and time) and no UTF-8.
const GZIPPED_502: [u8; 75] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xb3, 0xc9, 0x28, 0xc9, 0xcd, 0xb1,
    0xb3, 0xc9, 0x48, 0x4d, 0x4c, 0xb1, 0xb3, 0x29, 0xc9, 0x2c, 0xc9, 0x49, 0xb5, 0x33, 0x35, 0x30,
    0x52, 0x70, 0x4a, 0x4c, 0x51, 0x70, 0x4f, 0x2c, 0x49, 0x2d, 0x4f, 0xac, 0xb4, 0xd1, 0x87, 0x08,
    0xdb, 0xe8, 0x43, 0x14, 0x25, 0xe5, 0xa7, 0x54, 0x62, 0xaa, 0x01, 0x8b, 0x02, 0x95, 0x80, 0x4c,
    0xe3, 0x02, 0x00, 0xfc, 0x8a, 0xb2, 0xd6, 0x55, 0x00, 0x00, 0x00,
];

/// The refund number the canned AfterPay answers with: a NUL, a backslash, and the text of the
/// journal's own escape (`\u0000` as six characters), all kept exactly.
const NUL_REFUND_NUMBER: &str = "RN\0 \\u0000 \\";

/// Makes the database fail every statement `on` (`BEFORE INSERT ON refund_journal_events`...)
/// for rows where `condition` holds, the way a full disk or an I/O error does: on SQLite the
/// trigger's `RAISE(ROLLBACK)` throws the whole transaction away (SQLite does that itself on
/// `SQLITE_FULL` or `SQLITE_IOERR`), on PostgreSQL an exception aborts it.
async fn fail_writes(db: &TestDb, name: &str, on: &str, condition: &str) {
    let sql = match db.backend() {
        Backend::Sqlite => format!(
            "CREATE TRIGGER {name} {on} FOR EACH ROW WHEN {condition} \
             BEGIN SELECT RAISE(ROLLBACK, 'injected failure {name}'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF {condition} THEN RAISE EXCEPTION 'injected failure {name}'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER {name} {on} FOR EACH ROW EXECUTE FUNCTION {name}();"
        ),
    };
    db.execute(&sql).await;
}

/// Lifts [`fail_writes`]: the disk has room again.
async fn allow_writes(db: &TestDb, name: &str, table: &str) {
    let sql = match db.backend() {
        Backend::Sqlite => format!("DROP TRIGGER {name};"),
        Backend::Postgres => format!("DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();"),
    };
    db.execute(&sql).await;
}

/// A provider's text with a NUL (a refund number, an error message, the excerpt of a gzip body
/// nobody decoded) is recorded on both backends, read back exactly, and stored in the
/// journal's one escaped form (`\u0000` for U+0000, `\\` for a backslash). The caller gets the
/// answer, not a database error, and nothing stays in flight.
pub async fn provider_text_with_nul_is_recorded(backend: Backend) {
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let provider = Canned::start(vec![
        CannedAnswer::new(
            "ORD-NUL-APPLIED",
            200,
            r#"{"totalAuthorizedAmount":100.00,"totalCapturedAmount":100.00,"totalRefundedAmount":10.00,"refundNumbers":["RN\u0000 \\u0000 \\"]}"#,
        ),
        CannedAnswer::new(
            "ORD-NUL-REFUSED",
            400,
            r#"[{"type":"BusinessError","code":"Refund\u0000Refused","message":"refused\u0000 by a rule","customerFacingMessage":"no\u0000"}]"#,
        ),
        CannedAnswer::new("ORD-NUL-GZIP", 502, GZIPPED_502).with_headers(vec![
            ("content-type", "text/html"),
            ("content-encoding", "gzip"),
        ]),
    ])
    .await;
    let refunds = provider.afterpay();

    // Applied, with a NUL in the provider's refund number.
    let applied_req = request(Provider::AfterPay, "ORD-NUL-APPLIED", "10.00", "RF-NUL-1");
    let result = journal.refund(&refunds, &applied_req).await;
    let Ok(JournaledRefund::Applied {
        refund,
        replayed: false,
        entry,
    }) = &result
    else {
        panic!("an applied refund is recorded whatever its text: {result:?}");
    };
    assert_eq!(
        refund.provider_refund_id.as_deref(),
        Some(NUL_REFUND_NUMBER)
    );
    assert_eq!(entry.provider_refund_id.as_deref(), Some(NUL_REFUND_NUMBER));
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.lease, None);
    // Read back by another instance, and answered from the record.
    let again = db
        .journal()
        .await
        .refund(&refunds, &applied_req)
        .await
        .unwrap();
    let JournaledRefund::Applied {
        refund,
        replayed: true,
        ..
    } = &again
    else {
        panic!("{again:?}");
    };
    assert_eq!(
        refund.provider_refund_id.as_deref(),
        Some(NUL_REFUND_NUMBER)
    );
    assert_eq!(provider.received(), 1, "the repeat sent nothing");
    // The stored form: one escape for every backend.
    assert_eq!(
        db.stored_text(
            "SELECT provider_refund_id FROM refund_journal_entries \
             WHERE merchant_reference = 'RF-NUL-1'"
        )
        .await
        .as_deref(),
        Some(r"RN\u0000 \\u0000 \\")
    );

    // Refused, with NULs in the provider's code and message.
    let refused_req = request(Provider::AfterPay, "ORD-NUL-REFUSED", "10.00", "RF-NUL-2");
    let result = journal.refund(&refunds, &refused_req).await;
    let Ok(JournaledRefund::Rejected { error, entry }) = &result else {
        panic!("a refusal is recorded whatever its text: {result:?}");
    };
    let message = entry.error_message.as_deref().unwrap();
    assert!(message.contains("refused\0 by a rule"), "{message:?}");
    assert_eq!(message, error.to_string());
    assert_eq!(entry.state, EntryState::NotApplied);
    let history = journal
        .history(Provider::AfterPay, &refused_req.merchant_reference)
        .await
        .unwrap();
    assert_eq!(history[1].detail.as_deref(), Some(message));

    // A gateway's 502 with a gzip body the client does not decode: unknown, its excerpt kept.
    let gzip_req = request(Provider::AfterPay, "ORD-NUL-GZIP", "10.00", "RF-NUL-3");
    let result = journal.refund(&refunds, &gzip_req).await;
    let Ok(JournaledRefund::Unresolved {
        error: Some(error),
        entry,
    }) = &result
    else {
        panic!("an unknown outcome is recorded whatever its body: {result:?}");
    };
    let message = entry.error_message.as_deref().unwrap();
    assert!(message.contains('\0'), "{message:?}");
    assert_eq!(message, error.to_string());
    assert_eq!(entry.state, EntryState::Unknown);
    assert_eq!(entry.http_status, Some(502));
    let unresolved = journal.unresolved().await.unwrap();
    assert_eq!(unresolved.len(), 1, "{unresolved:?}");
    assert_eq!(unresolved[0].error_message.as_deref(), Some(message));
    db.cleanup().await;
}

/// Moyasar entries left unknown by a call whose every attempt ended ambiguous (502 after the
/// sandbox committed), one per reference.
async fn unknown_moyasar_entries(
    env: &Env,
    journal: &refunds_journal::Journal,
    references: &[&str],
) -> Vec<refunds::RefundRequest> {
    let attempts = journal.config().retry.max_attempts as usize;
    let mut requests = Vec::new();
    for (i, reference) in references.iter().enumerate() {
        let order = format!("ORD-REC-{i}");
        env.seed(Provider::Moyasar, &order);
        let req = request(Provider::Moyasar, &order, "10.00", reference);
        env.sb
            .moyasar()
            .inject(Fault::StatusAfterCommit(502), Match::Any.times(attempts));
        let result = journal.refund(&env.refunds(), &req).await.unwrap();
        assert_eq!(result.label(), "unresolved", "{result:?}");
        requests.push(req);
        // Distinct creation times: reconcile takes them oldest first.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    requests
}

/// One entry that cannot be written (its writes fail) and one whose row cannot be read (its
/// request text was damaged) do not stop reconcile: it settles the others, oldest first, and
/// reports the two by key with their errors; the next run settles the first once the database
/// accepts its writes again.
pub async fn reconcile_settles_every_entry_it_can(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let requests = unknown_moyasar_entries(
        &env,
        &journal,
        &["RF-REC-1", "RF-REC-2", "RF-REC-3", "RF-REC-4"],
    )
    .await;
    fail_writes(
        &db,
        "block_rec_1",
        "BEFORE UPDATE ON refund_journal_entries",
        "OLD.merchant_reference = 'RF-REC-1'",
    )
    .await;
    db.execute(
        "UPDATE refund_journal_entries SET request = 'not json' \
         WHERE merchant_reference = 'RF-REC-3'",
    )
    .await;

    let report = journal
        .reconcile(&env.refunds())
        .await
        .expect("reconcile reports per entry");
    for settled in [&requests[1], &requests[3]] {
        let entry = journal
            .entry(Provider::Moyasar, &settled.merchant_reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.state, EntryState::Applied, "{entry:?}");
        assert_eq!(entry.settled_by, Some(SettledBy::Read));
        assert_eq!(env.recorded(settled), 1, "one refund");
    }
    let keys: Vec<&str> = report
        .reconciled
        .iter()
        .map(|done| done.entry().merchant_reference.as_str())
        .collect();
    assert_eq!(keys, ["RF-REC-2", "RF-REC-4"], "{report:?}");
    assert!(
        report
            .reconciled
            .iter()
            .all(|done| matches!(done, Reconciliation::SettledByReading { .. })),
        "{report:?}"
    );
    let failed: Vec<(&str, &str)> = report
        .failed
        .iter()
        .map(|failure| {
            (
                failure.provider.as_str(),
                failure.merchant_reference.as_str(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [("moyasar", "RF-REC-1"), ("moyasar", "RF-REC-3")],
        "{report:?}"
    );
    let blocked = &report.failed[0];
    assert!(
        blocked.error.to_string().contains("injected failure"),
        "{blocked:?}"
    );
    assert_eq!(
        blocked.entry.as_ref().map(|entry| entry.state),
        Some(EntryState::Unknown)
    );
    let damaged = &report.failed[1];
    assert!(damaged.entry.is_none(), "{damaged:?}");
    assert!(
        matches!(damaged.error, refunds_journal::JournalError::Corrupt(_)),
        "{damaged:?}"
    );
    assert!(!report.is_complete());
    assert_eq!(env.recorded(&requests[0]), 1, "RF-REC-1 untouched");

    // The database takes writes again: the next run settles RF-REC-1 (RF-REC-3 waits for a
    // person: its row cannot be read).
    allow_writes(&db, "block_rec_1", "refund_journal_entries").await;
    let report = journal.reconcile(&env.refunds()).await.unwrap();
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    assert_eq!(
        report.reconciled[0].entry().merchant_reference.as_str(),
        "RF-REC-1"
    );
    assert_eq!(report.reconciled[0].entry().state, EntryState::Applied);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].merchant_reference, "RF-REC-3");
    assert_eq!(env.recorded(&requests[0]), 1, "still one refund");
    db.cleanup().await;
}

/// A transaction the database throws away (SQLite does on a full disk or an I/O error; here a
/// trigger does it on the intent) fails that call, and only that call: once the database takes
/// writes again, every following call works, on the same journal, without a restart.
pub async fn a_failed_transaction_leaves_the_journal_usable(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db.journal().await;
    let refunds = env.refunds();
    env.seed(Provider::Moyasar, "ORD-FULL");
    fail_writes(
        &db,
        "disk_full",
        "BEFORE INSERT ON refund_journal_events",
        "1 = 1",
    )
    .await;
    let first = request(Provider::Moyasar, "ORD-FULL", "1.00", "RF-FULL-0");
    let error = journal
        .refund(&refunds, &first)
        .await
        .expect_err("the database refuses the intent");
    assert!(error.to_string().contains("injected failure"), "{error:?}");
    assert_eq!(env.sb.moyasar().requests_received(), 0, "nothing sent");
    assert!(
        journal
            .entry(Provider::Moyasar, &first.merchant_reference)
            .await
            .unwrap()
            .is_none(),
        "the intent's transaction was rolled back whole"
    );

    allow_writes(&db, "disk_full", "refund_journal_events").await;
    // More calls than the pool has connections: each takes one in turn.
    for i in 0..8 {
        let req = request(
            Provider::Moyasar,
            "ORD-FULL",
            "1.00",
            &format!("RF-FULL-{i}"),
        );
        let result = journal
            .refund(&refunds, &req)
            .await
            .unwrap_or_else(|e| panic!("call {i} after the failure: {e}"));
        assert_eq!(result.label(), "applied", "{result:?}");
    }
    let entry = journal
        .entry(Provider::Moyasar, &reference("RF-FULL-0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.attempts, 1);
    assert_eq!(env.recorded(&first), 1);
    db.cleanup().await;
}

/// What a database error says about the money. The intent cannot be recorded: nothing was
/// sent. The answer cannot be recorded: the request was sent (the error carries the answer),
/// the entry stays in flight, and reconcile settles it once the lease lapses: one refund.
pub async fn database_errors_say_what_was_sent(backend: Backend) {
    let env = Env::start().await;
    let db = TestDb::new(backend);
    let journal = db
        .open(config_with_lease(Duration::from_millis(2_000)))
        .await;
    let refunds = env.refunds();
    env.seed(Provider::Moyasar, "ORD-DBE");

    // The intent.
    fail_writes(
        &db,
        "no_intent",
        "BEFORE INSERT ON refund_journal_entries",
        "NEW.merchant_reference = 'RF-DBE-1'",
    )
    .await;
    let req = request(Provider::Moyasar, "ORD-DBE", "10.00", "RF-DBE-1");
    let error = journal.refund(&refunds, &req).await.unwrap_err();
    assert_eq!(
        error.outcome(),
        refunds_journal::ErrorOutcome::NothingSent,
        "{error:?}"
    );
    assert!(error.to_string().contains("nothing was sent"), "{error}");
    assert_eq!(env.sb.moyasar().requests_received(), 0);
    assert!(
        journal
            .entry(Provider::Moyasar, &req.merchant_reference)
            .await
            .unwrap()
            .is_none()
    );
    allow_writes(&db, "no_intent", "refund_journal_entries").await;

    // The answer.
    fail_writes(
        &db,
        "no_answer",
        "BEFORE INSERT ON refund_journal_events",
        "NEW.merchant_reference = 'RF-DBE-2' AND NEW.kind = 'answer'",
    )
    .await;
    let req = request(Provider::Moyasar, "ORD-DBE", "10.00", "RF-DBE-2");
    let error = journal.refund(&refunds, &req).await.unwrap_err();
    assert_eq!(
        error.outcome(),
        refunds_journal::ErrorOutcome::SentNotRecorded,
        "{error:?}"
    );
    assert!(error.to_string().contains("was sent"), "{error}");
    let refunds_journal::JournalError::AnswerNotRecorded {
        provider,
        reference,
        answer,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*provider, Provider::Moyasar);
    assert_eq!(reference, &req.merchant_reference);
    let refund = answer.as_ref().as_ref().expect("the provider applied it");
    assert_eq!(refund.amount, req.amount);
    assert_eq!(env.recorded(&req), 1, "sent and applied");
    let entry = journal
        .entry(Provider::Moyasar, &req.merchant_reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, EntryState::InFlight);
    assert_eq!(entry.outcome(), Outcome::Unknown);

    // Reconcile settles it once the lease lapsed and the database takes writes again.
    allow_writes(&db, "no_answer", "refund_journal_events").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while journal.unresolved().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = journal.reconcile(&refunds).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    let entry = report.reconciled[0].entry();
    assert_eq!(entry.state, EntryState::Applied);
    assert_eq!(entry.settled_by, Some(SettledBy::Read), "found by reading");
    assert_eq!(entry.attempts, 1, "nothing re-sent");
    assert_eq!(env.recorded(&req), 1, "one refund");
    db.cleanup().await;
}

/// Rows written before the journal escaped its text (a backslash stored as itself) are brought
/// to the escaped form by migration 2 and read back exactly as they were written.
pub async fn rows_written_before_escaping_read_back_exactly(backend: Backend) {
    let db = TestDb::new(backend);
    db.journal().await;
    let req = request(Provider::Moyasar, "ORD-OLD", "10.00", "RF-OLD");
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let message = r"HTTP 400: {'path':'C:\dir\\share', 'nul':'\u0000', 'end':'\'}";
    let detail = r"an answer with \ and \\ and \u0000 as text";
    let owner = r"host\one/1";
    // As the first version wrote them, then the second migration made to run again.
    db.execute(&format!(
        "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, request, \
         currency, state, attempts, ambiguous, lease_owner, lease_expires_at_ms, \
         provider_refund_id, refund_status, amount, refunded_total, captured_total, \
         already_applied, http_status, error_kind, error_message, unresolved_reason, settled_by, \
         wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version, order_id) VALUES \
         ('moyasar', 'RF-OLD', {fingerprint}, {request}, 'SAR', 'not_applied', 1, FALSE, \
         {owner}, 1, {refund_id}, NULL, NULL, NULL, NULL, FALSE, 400, 'invalid_request', \
         {message}, NULL, 'answer', 1, 1, 1, 1, 1, 'ORD-OLD'); \
         INSERT INTO refund_journal_events (provider, merchant_reference, at_ms, kind, attempt, \
         owner, outcome, http_status, error_kind, detail, elapsed_ms) VALUES ('moyasar', \
         'RF-OLD', 1, 'answer', 1, {owner}, 'not_applied', 400, 'invalid_request', {detail}, 1); \
         DELETE FROM _sqlx_migrations WHERE version = 2;",
        fingerprint = quote(&refunds_journal::fingerprint(&req)),
        request = quote(&refunds_journal::canonical_json(&req)),
        owner = quote(owner),
        refund_id = quote(r"id\x"),
        message = quote(message),
        detail = quote(detail),
    ))
    .await;

    let journal = db.journal().await;
    let entry = journal
        .entry(Provider::Moyasar, &req.merchant_reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.error_message.as_deref(), Some(message));
    assert_eq!(entry.provider_refund_id.as_deref(), Some(r"id\x"));
    assert_eq!(entry.lease.as_ref().map(|l| l.owner.as_str()), Some(owner));
    let history = journal
        .history(Provider::Moyasar, &req.merchant_reference)
        .await
        .unwrap();
    assert_eq!(history[0].detail.as_deref(), Some(detail));
    assert_eq!(history[0].owner.as_deref(), Some(owner));
    assert_eq!(
        db.stored_text(
            "SELECT provider_refund_id FROM refund_journal_entries \
             WHERE merchant_reference = 'RF-OLD'"
        )
        .await
        .as_deref(),
        Some(r"id\\x")
    );
    // Migrated once: a third open changes nothing.
    let again = db.journal().await;
    let entry = again
        .entry(Provider::Moyasar, &req.merchant_reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.error_message.as_deref(), Some(message));
    db.cleanup().await;
}
