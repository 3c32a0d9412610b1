-- Settling by reading the provider's record (keep in step with
-- ../postgres/0003_reads_and_order_lease.sql):
--
-- - `order_id`: the request's order, backfilled from the stored request, so that the journal's
--   refunds (and the refund numbers it learnt) are listed per order;
-- - the per-order lease: at most one AfterPay refund per order in flight or unknown at a time,
--   across replicas (the unique index refund_journal_entries_order_lease), so that a refund on
--   the order no other entry accounts for can be attributed to the one that is unknown. Rows
--   written before that would break it (two unresolved AfterPay refunds on one order) are kept,
--   the later ones marked `order_lease_exempt` until they settle;
-- - `attempt_at_ms`, `attempt_deadline_ms`: when the latest attempt's intent was recorded
--   (backfilled from the latest intent event) and its deadline (the lease's expiry while it is
--   in flight; unknown for rows settled or unknown before this version);
-- - `settled_by` `read`, event kinds `read` and `failed_after_applied`.
--
-- SQLite cannot change a CHECK constraint in place, so both tables are rebuilt (SQLite's
-- documented procedure). Foreign keys stay enforced throughout: the new events table references
-- the new entries table, the old tables are dropped child first, and renaming the new entries
-- table to the old name carries the events' reference along (SQLite 3.26 and later).
CREATE TABLE refund_journal_entries_v3 (
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    fingerprint         TEXT    NOT NULL,
    request             TEXT    NOT NULL,
    currency            TEXT    NOT NULL,
    state               TEXT    NOT NULL
        CHECK (state IN ('in_flight', 'applied', 'not_applied', 'unknown')),
    attempts            INTEGER NOT NULL,
    ambiguous           INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at_ms INTEGER,
    provider_refund_id  TEXT,
    refund_status       TEXT
        CHECK (refund_status IS NULL OR refund_status IN ('succeeded', 'pending', 'failed')),
    amount              TEXT,
    refunded_total      TEXT,
    captured_total      TEXT,
    already_applied     INTEGER NOT NULL,
    http_status         INTEGER,
    error_kind          TEXT,
    error_message       TEXT,
    unresolved_reason   TEXT,
    settled_by          TEXT
        CHECK (settled_by IS NULL OR settled_by IN ('answer', 'reconcile', 'manual', 'read')),
    wire_ms             INTEGER NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    updated_at_ms       INTEGER NOT NULL,
    settled_at_ms       INTEGER,
    version             INTEGER NOT NULL,
    order_id            TEXT    NOT NULL,
    attempt_at_ms       INTEGER,
    attempt_deadline_ms INTEGER,
    order_lease_exempt  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, merchant_reference)
);

INSERT INTO refund_journal_entries_v3 (
    provider, merchant_reference, fingerprint, request, currency, state, attempts, ambiguous,
    lease_owner, lease_expires_at_ms, provider_refund_id, refund_status, amount, refunded_total,
    captured_total, already_applied, http_status, error_kind, error_message, unresolved_reason,
    settled_by, wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version,
    order_id, attempt_at_ms, attempt_deadline_ms, order_lease_exempt)
SELECT
    e.provider, e.merchant_reference, e.fingerprint, e.request, e.currency, e.state, e.attempts,
    e.ambiguous, e.lease_owner, e.lease_expires_at_ms, e.provider_refund_id, e.refund_status,
    e.amount, e.refunded_total, e.captured_total, e.already_applied, e.http_status, e.error_kind,
    e.error_message, e.unresolved_reason, e.settled_by, e.wire_ms, e.created_at_ms,
    e.updated_at_ms, e.settled_at_ms, e.version,
    -- A request that is no JSON (damaged by hand) gets no order: the journal reports its row
    -- as unreadable anyway.
    CASE WHEN json_valid(e.request)
        THEN coalesce(json_extract(e.request, '$.order_id'), '') ELSE '' END,
    (SELECT max(v.at_ms) FROM refund_journal_events v
      WHERE v.provider = e.provider AND v.merchant_reference = e.merchant_reference
        AND v.kind = 'intent'),
    CASE WHEN e.state = 'in_flight' THEN e.lease_expires_at_ms END,
    CASE WHEN e.provider = 'afterpay' AND e.state IN ('in_flight', 'unknown')
          AND json_valid(e.request) AND EXISTS (
            SELECT 1 FROM refund_journal_entries o
             WHERE o.provider = e.provider
               AND o.state IN ('in_flight', 'unknown')
               AND json_valid(o.request)
               AND json_extract(o.request, '$.order_id') = json_extract(e.request, '$.order_id')
               AND (o.created_at_ms < e.created_at_ms
                    OR (o.created_at_ms = e.created_at_ms
                        AND o.merchant_reference < e.merchant_reference)))
        THEN 1 ELSE 0 END
FROM refund_journal_entries e;

CREATE TABLE refund_journal_events_v3 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    at_ms               INTEGER NOT NULL,
    kind                TEXT    NOT NULL
        CHECK (kind IN ('intent', 'answer', 'lease_expired', 'reconcile', 'manual', 'status',
                        'read', 'failed_after_applied')),
    attempt             INTEGER,
    owner               TEXT,
    outcome             TEXT
        CHECK (outcome IS NULL OR outcome IN ('applied', 'not_applied', 'unknown')),
    http_status         INTEGER,
    error_kind          TEXT,
    detail              TEXT,
    elapsed_ms          INTEGER,
    FOREIGN KEY (provider, merchant_reference)
        REFERENCES refund_journal_entries_v3 (provider, merchant_reference)
);

INSERT INTO refund_journal_events_v3 (
    id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms)
SELECT id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms
FROM refund_journal_events ORDER BY id;

DROP TABLE refund_journal_events;
DROP TABLE refund_journal_entries;
ALTER TABLE refund_journal_entries_v3 RENAME TO refund_journal_entries;
ALTER TABLE refund_journal_events_v3 RENAME TO refund_journal_events;

-- As in version 1.
CREATE INDEX refund_journal_entries_open
    ON refund_journal_entries (state)
    WHERE state IN ('in_flight', 'unknown');
CREATE INDEX refund_journal_entries_pending
    ON refund_journal_entries (refund_status)
    WHERE state = 'applied' AND refund_status = 'pending';
CREATE INDEX refund_journal_events_by_entry
    ON refund_journal_events (provider, merchant_reference, id);

-- order_entries(): the journal's refunds on an order, and the refund numbers it accounts for.
CREATE INDEX refund_journal_entries_by_order
    ON refund_journal_entries (provider, order_id);

-- The per-order lease: one AfterPay refund per order in flight or unknown at a time.
CREATE UNIQUE INDEX refund_journal_entries_order_lease
    ON refund_journal_entries (provider, order_id)
    WHERE provider = 'afterpay' AND state IN ('in_flight', 'unknown') AND order_lease_exempt = 0;

-- failed_after_applied(): refunds believed applied whose provider's record says failed.
CREATE INDEX refund_journal_entries_failed
    ON refund_journal_entries (created_at_ms)
    WHERE state = 'applied' AND refund_status = 'failed';
