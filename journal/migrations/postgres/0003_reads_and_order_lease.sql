-- Settling by reading the provider's record (keep in step with
-- ../sqlite/0003_reads_and_order_lease.sql):
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

-- The order of a stored request; '' for a request that is no JSON (damaged by hand: the journal
-- reports its row as unreadable anyway).
CREATE FUNCTION pg_temp.refund_journal_order_of(request TEXT) RETURNS TEXT
LANGUAGE plpgsql AS $$
BEGIN
    RETURN coalesce(request::json ->> 'order_id', '');
EXCEPTION WHEN others THEN
    RETURN '';
END
$$;

ALTER TABLE refund_journal_entries
    ADD COLUMN order_id            TEXT,
    ADD COLUMN attempt_at_ms       BIGINT,
    ADD COLUMN attempt_deadline_ms BIGINT,
    ADD COLUMN order_lease_exempt  BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE refund_journal_entries e SET
    order_id = pg_temp.refund_journal_order_of(e.request),
    attempt_at_ms = (
        SELECT max(v.at_ms) FROM refund_journal_events v
         WHERE v.provider = e.provider AND v.merchant_reference = e.merchant_reference
           AND v.kind = 'intent'),
    attempt_deadline_ms = CASE WHEN e.state = 'in_flight' THEN e.lease_expires_at_ms END;

UPDATE refund_journal_entries e SET order_lease_exempt = TRUE
 WHERE e.provider = 'afterpay' AND e.state IN ('in_flight', 'unknown') AND e.order_id <> ''
   AND EXISTS (
     SELECT 1 FROM refund_journal_entries o
      WHERE o.provider = e.provider
        AND o.order_id = e.order_id
        AND o.state IN ('in_flight', 'unknown')
        AND (o.created_at_ms < e.created_at_ms
             OR (o.created_at_ms = e.created_at_ms
                 AND o.merchant_reference < e.merchant_reference)));

ALTER TABLE refund_journal_entries ALTER COLUMN order_id SET NOT NULL;

DROP FUNCTION pg_temp.refund_journal_order_of(TEXT);

ALTER TABLE refund_journal_entries
    DROP CONSTRAINT refund_journal_entries_settled_by_check,
    ADD CONSTRAINT refund_journal_entries_settled_by_check
        CHECK (settled_by IS NULL OR settled_by IN ('answer', 'reconcile', 'manual', 'read'));

ALTER TABLE refund_journal_events
    DROP CONSTRAINT refund_journal_events_kind_check,
    ADD CONSTRAINT refund_journal_events_kind_check
        CHECK (kind IN ('intent', 'answer', 'lease_expired', 'reconcile', 'manual', 'status',
                        'read', 'failed_after_applied'));

-- order_entries(): the journal's refunds on an order, and the refund numbers it accounts for.
CREATE INDEX refund_journal_entries_by_order
    ON refund_journal_entries (provider, order_id);

-- The per-order lease: one AfterPay refund per order in flight or unknown at a time.
CREATE UNIQUE INDEX refund_journal_entries_order_lease
    ON refund_journal_entries (provider, order_id)
    WHERE provider = 'afterpay' AND state IN ('in_flight', 'unknown') AND NOT order_lease_exempt;

-- failed_after_applied(): refunds believed applied whose provider's record says failed.
CREATE INDEX refund_journal_entries_failed
    ON refund_journal_entries (created_at_ms)
    WHERE state = 'applied' AND refund_status = 'failed';
