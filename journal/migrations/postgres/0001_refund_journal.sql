-- The refund journal (PostgreSQL). Keep in step with ../sqlite/0001_refund_journal.sql: the same
-- tables, columns and meanings; only the types differ (SQLite stores BIGINT and BOOLEAN as INTEGER).
--
-- One row per refund intent, keyed by (provider, merchant reference): the request (its
-- canonical JSON and SHA-256 fingerprint), where it stands (state, attempts, lease) and what the
-- provider said. Times are milliseconds since the Unix epoch, read from the database's clock.
CREATE TABLE refund_journal_entries (
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    fingerprint         TEXT    NOT NULL,
    request             TEXT    NOT NULL,
    currency            TEXT    NOT NULL,
    state               TEXT    NOT NULL
        CHECK (state IN ('in_flight', 'applied', 'not_applied', 'unknown')),
    attempts            BIGINT  NOT NULL,
    ambiguous           BOOLEAN NOT NULL,
    lease_owner         TEXT,
    lease_expires_at_ms BIGINT,
    provider_refund_id  TEXT,
    refund_status       TEXT
        CHECK (refund_status IS NULL OR refund_status IN ('succeeded', 'pending', 'failed')),
    amount              TEXT,
    refunded_total      TEXT,
    captured_total      TEXT,
    already_applied     BOOLEAN NOT NULL,
    http_status         BIGINT,
    error_kind          TEXT,
    error_message       TEXT,
    unresolved_reason   TEXT,
    settled_by          TEXT
        CHECK (settled_by IS NULL OR settled_by IN ('answer', 'reconcile', 'manual')),
    wire_ms             BIGINT  NOT NULL,
    created_at_ms       BIGINT  NOT NULL,
    updated_at_ms       BIGINT  NOT NULL,
    settled_at_ms       BIGINT,
    version             BIGINT  NOT NULL,
    PRIMARY KEY (provider, merchant_reference)
);

-- unresolved(): unknown outcomes and in-flight entries whose lease may have expired.
CREATE INDEX refund_journal_entries_open
    ON refund_journal_entries (state)
    WHERE state IN ('in_flight', 'unknown');

-- pending(): applied refunds whose provider status is not final yet.
CREATE INDEX refund_journal_entries_pending
    ON refund_journal_entries (refund_status)
    WHERE state = 'applied' AND refund_status = 'pending';

-- The audit trail: every intent, answer, lease expiry, reconciliation, manual decision and
-- status change of an entry, oldest first. Rows are only ever inserted.
CREATE TABLE refund_journal_events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider            TEXT    NOT NULL,
    merchant_reference  TEXT    NOT NULL,
    at_ms               BIGINT  NOT NULL,
    kind                TEXT    NOT NULL
        CHECK (kind IN ('intent', 'answer', 'lease_expired', 'reconcile', 'manual', 'status')),
    attempt             BIGINT,
    owner               TEXT,
    outcome             TEXT
        CHECK (outcome IS NULL OR outcome IN ('applied', 'not_applied', 'unknown')),
    http_status         BIGINT,
    error_kind          TEXT,
    detail              TEXT,
    elapsed_ms          BIGINT,
    FOREIGN KEY (provider, merchant_reference)
        REFERENCES refund_journal_entries (provider, merchant_reference)
);

CREATE INDEX refund_journal_events_by_entry
    ON refund_journal_events (provider, merchant_reference, id);
