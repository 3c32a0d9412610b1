-- Fewer pages written per refund (SQLite only; PostgreSQL's 0004 changes nothing). Every
-- commit writes each page it changed to the WAL and syncs them: before this version a refund
-- (its intent, then its answer) changed about 15 pages, of which these were avoidable:
--
-- - `refund_journal_entries_open` (state of the rows in flight or unknown) was changed twice
--   per refund and read by no query: SQLite's planner does not match unresolved()'s
--   `state = 'unknown' OR (state = 'in_flight' AND ...)` to its `state IN (...)`, and scanned
--   the table. It goes; unresolved() now names `state IN ('in_flight', 'unknown')` and reads
--   the per-order lease below, which holds exactly the rows in flight or unknown.
-- - The per-order lease and that listing become ONE partial unique index over every row in
--   flight or unknown: (provider, order_id, 0) for an AfterPay row under the lease, so that two
--   such rows on one order collide as before; (provider, order_id, NULL) for any other (another
--   provider's, or a row migration 3 kept exempt), and NULLs never collide. The same rows are
--   refused as under migration 3's index, which had the same name (a refused write names it).
-- - The events' ids: `AUTOINCREMENT` kept the highest id ever given in `sqlite_sequence`, one
--   more page changed per event's commit. Events are only ever inserted, never deleted, so a
--   plain `INTEGER PRIMARY KEY` gives the same ids (the highest one plus one), in the same
--   order. The table is rebuilt (SQLite cannot drop `AUTOINCREMENT` in place), keeping every
--   id; foreign keys stay enforced throughout, as in migration 3.
DROP INDEX refund_journal_entries_open;
DROP INDEX refund_journal_entries_order_lease;

-- The per-order lease (AfterPay rows, not exempt) and unresolved()'s listing (every row).
CREATE UNIQUE INDEX refund_journal_entries_order_lease
    ON refund_journal_entries (
        provider, order_id,
        (CASE WHEN provider = 'afterpay' AND order_lease_exempt = 0 THEN 0 END))
    WHERE state IN ('in_flight', 'unknown');

CREATE TABLE refund_journal_events_v4 (
    id                  INTEGER PRIMARY KEY,
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
        REFERENCES refund_journal_entries (provider, merchant_reference)
);

INSERT INTO refund_journal_events_v4 (
    id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms)
SELECT id, provider, merchant_reference, at_ms, kind, attempt, owner, outcome, http_status,
    error_kind, detail, elapsed_ms
FROM refund_journal_events ORDER BY id;

DROP TABLE refund_journal_events;
ALTER TABLE refund_journal_events_v4 RENAME TO refund_journal_events;

-- history(): an entry's events, oldest first (as in version 1).
CREATE INDEX refund_journal_events_by_entry
    ON refund_journal_events (provider, merchant_reference, id);
