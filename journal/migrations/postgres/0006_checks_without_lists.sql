-- Nothing to do on PostgreSQL: version 6 rewrites SQLite's `IN (...)` checks, which SQLite
-- runs through a temporary b-tree per statement (see ../sqlite/0006_checks_without_lists.sql).
-- PostgreSQL checks a list of constants as one array comparison, building nothing per run.
SELECT 1;
