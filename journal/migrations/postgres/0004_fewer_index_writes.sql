-- Nothing to do on PostgreSQL: version 4 changes SQLite's layout only (see
-- ../sqlite/0004_fewer_index_writes.sql). PostgreSQL keeps its indexes of version 3, and its
-- event ids come from an identity column, which costs no extra page per event.
SELECT 1;
