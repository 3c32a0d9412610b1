-- Each write's constraint checks without a temporary table (SQLite only; PostgreSQL's 0006
-- changes nothing). SQLite checks `column IN (a, b, c)` of three values or more by building a
-- temporary b-tree of the values, once per run of each statement that checks it: every
-- INSERT of an entry built three (state, refund_status, settled_by), every event's INSERT two
-- (kind, outcome), every UPDATE one to three. Opening, filling and closing them took about a
-- fifth of SQLite's writer's time per write under 32 callers. The same checks as comparisons
-- joined by OR (as SQLite itself checks a list of two) build none; the values allowed are the
-- same as migration 3's and 4's.
--
-- SQLite cannot change a CHECK constraint in place, so both tables are rebuilt as in migration
-- 3, keeping every row, every id and every index: foreign keys stay enforced throughout (the
-- new events table references the new entries table, the old tables are dropped child first,
-- and renaming the new entries table to the old name carries the events' reference along). On
-- a large journal the rebuild holds the write lock while it copies.
CREATE TABLE refund_journal_entries_v6 (
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    fingerprint         TEXT    NOT NULL,
    request             TEXT    NOT NULL,
    currency            TEXT    NOT NULL,
    state               TEXT    NOT NULL
        CHECK (state = 'in_flight' OR state = 'applied' OR state = 'not_applied'
               OR state = 'unknown'),
    attempts            INTEGER NOT NULL,
    ambiguous           INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at_ms INTEGER,
    provider_refund_id  TEXT,
    refund_status       TEXT
        CHECK (refund_status IS NULL OR refund_status = 'succeeded'
               OR refund_status = 'pending' OR refund_status = 'failed'),
    amount              TEXT,
    refunded_total      TEXT,
    captured_total      TEXT,
    already_applied     INTEGER NOT NULL,
    http_status         INTEGER,
    error_kind          TEXT,
    error_message       TEXT,
    unresolved_reason   TEXT,
    settled_by          TEXT
        CHECK (settled_by IS NULL OR settled_by = 'answer' OR settled_by = 'reconcile'
               OR settled_by = 'manual' OR settled_by = 'read'),
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

INSERT INTO refund_journal_entries_v6 (
    provider, merchant_reference, fingerprint, request, currency, state, attempts, ambiguous,
    lease_owner, lease_expires_at_ms, provider_refund_id, refund_status, amount, refunded_total,
    captured_total, already_applied, http_status, error_kind, error_message, unresolved_reason,
    settled_by, wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version,
    order_id, attempt_at_ms, attempt_deadline_ms, order_lease_exempt)
SELECT
    provider, merchant_reference, fingerprint, request, currency, state, attempts, ambiguous,
    lease_owner, lease_expires_at_ms, provider_refund_id, refund_status, amount, refunded_total,
    captured_total, already_applied, http_status, error_kind, error_message, unresolved_reason,
    settled_by, wire_ms, created_at_ms, updated_at_ms, settled_at_ms, version,
    order_id, attempt_at_ms, attempt_deadline_ms, order_lease_exempt
FROM refund_journal_entries;

CREATE TABLE refund_journal_events_v6 (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    at_ms               INTEGER NOT NULL,
    kind                TEXT    NOT NULL
        CHECK (kind = 'intent' OR kind = 'answer' OR kind = 'lease_expired'
               OR kind = 'reconcile' OR kind = 'manual' OR kind = 'status' OR kind = 'read'
               OR kind = 'failed_after_applied'),
    attempt             INTEGER,
    owner               TEXT,
    outcome             TEXT
        CHECK (outcome IS NULL OR outcome = 'applied' OR outcome = 'not_applied'
               OR outcome = 'unknown'),
    http_status         INTEGER,
    error_kind          TEXT,
    detail              TEXT,
    elapsed_ms          INTEGER,
    FOREIGN KEY (provider, merchant_reference)
        REFERENCES refund_journal_entries_v6 (provider, merchant_reference)
);

INSERT INTO refund_journal_events_v6 (
    id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms)
SELECT id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms
FROM refund_journal_events ORDER BY id;

DROP TABLE refund_journal_events;
DROP TABLE refund_journal_entries;
ALTER TABLE refund_journal_entries_v6 RENAME TO refund_journal_entries;
ALTER TABLE refund_journal_events_v6 RENAME TO refund_journal_events;

-- The indexes, as migrations 3 and 4 left them.
-- pending(): applied refunds whose provider status is not final yet.
CREATE INDEX refund_journal_entries_pending
    ON refund_journal_entries (refund_status)
    WHERE state = 'applied' AND refund_status = 'pending';
-- order_entries(): the journal's refunds on an order.
CREATE INDEX refund_journal_entries_by_order
    ON refund_journal_entries (provider, order_id);
-- failed_after_applied(): refunds believed applied whose provider's record says failed.
CREATE INDEX refund_journal_entries_failed
    ON refund_journal_entries (created_at_ms)
    WHERE state = 'applied' AND refund_status = 'failed';
-- The per-order lease (AfterPay rows, not exempt) and unresolved()'s listing (every row).
CREATE UNIQUE INDEX refund_journal_entries_order_lease
    ON refund_journal_entries (
        provider, order_id,
        (CASE WHEN provider = 'afterpay' AND order_lease_exempt = 0 THEN 0 END))
    WHERE state IN ('in_flight', 'unknown');
-- history(): an entry's events, oldest first.
CREATE INDEX refund_journal_events_by_entry
    ON refund_journal_events (provider, merchant_reference, id);
