-- Each write's value checks prepared once per connection, not once per statement (PostgreSQL
-- only; SQLite's 0007 changes nothing). PostgreSQL rebuilds a table's CHECK constraints from
-- their stored text for every statement that writes the table (parsing the text, then
-- planning the expression): under 32 callers that took about a tenth of the server's CPU
-- (`journal_c32/journal_postgres`, perf's call graph under ExecConstraints). A domain's CHECK
-- is read once into the connection's type cache. The columns keep their type's values (text,
-- which is what every client reads and binds: a domain over text is sent as text) and the
-- values allowed are the same as migrations 1 and 3 allow; NULL stays allowed where it was.
--
-- Changing a column's type from text to a domain over text rewrites no table: PostgreSQL
-- only checks the existing rows against the domain (and rebuilds the indexes on the column).
CREATE DOMAIN refund_journal_state AS TEXT
    CHECK (VALUE IN ('in_flight', 'applied', 'not_applied', 'unknown'));
CREATE DOMAIN refund_journal_refund_status AS TEXT
    CHECK (VALUE IN ('succeeded', 'pending', 'failed'));
CREATE DOMAIN refund_journal_settled_by AS TEXT
    CHECK (VALUE IN ('answer', 'reconcile', 'manual', 'read'));
CREATE DOMAIN refund_journal_event_kind AS TEXT
    CHECK (VALUE IN ('intent', 'answer', 'lease_expired', 'reconcile', 'manual', 'status',
                     'read', 'failed_after_applied'));
CREATE DOMAIN refund_journal_outcome AS TEXT
    CHECK (VALUE IN ('applied', 'not_applied', 'unknown'));

ALTER TABLE refund_journal_entries
    DROP CONSTRAINT refund_journal_entries_state_check,
    DROP CONSTRAINT refund_journal_entries_refund_status_check,
    DROP CONSTRAINT refund_journal_entries_settled_by_check,
    ALTER COLUMN state TYPE refund_journal_state,
    ALTER COLUMN refund_status TYPE refund_journal_refund_status,
    ALTER COLUMN settled_by TYPE refund_journal_settled_by;

ALTER TABLE refund_journal_events
    DROP CONSTRAINT refund_journal_events_kind_check,
    DROP CONSTRAINT refund_journal_events_outcome_check,
    ALTER COLUMN kind TYPE refund_journal_event_kind,
    ALTER COLUMN outcome TYPE refund_journal_outcome;
