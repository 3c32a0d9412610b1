-- Every statement planned once per connection (PostgreSQL's default `plan_cache_mode`), where
-- before every run was planned anew (`force_custom_plan`): planning cost about as much as the
-- write itself, twice the CPU per commit under 32 callers.
--
-- Why runs were planned anew: a prepared statement's generic plan is made after its fifth run
-- and kept until the table is next analyzed. Made while the journal was new and its tables
-- nearly empty, it read an entry for its UPDATE, and for the foreign key check of its events,
-- through `refund_journal_entries_by_order` on (provider, order_id) with only `provider`
-- known: every entry of the provider, a write growing with the table. With `order_id` first,
-- that index serves only what it is for (an order's entries: both columns known), and no
-- index but the primary key leads with `provider` for any plan to pick. The index is rebuilt
-- inside the migration's transaction (`CONCURRENTLY` cannot run in one): on a large journal,
-- writes wait for it.
DROP INDEX refund_journal_entries_by_order;

-- order_entries(): the journal's refunds on an order, and the refund numbers it accounts for.
CREATE INDEX refund_journal_entries_by_order
    ON refund_journal_entries (order_id, provider);
