-- Nothing to do on SQLite: version 7 moves PostgreSQL's CHECK constraints into domains, which
-- PostgreSQL prepares once per connection rather than once per statement (see
-- ../postgres/0007_checks_as_domains.sql). SQLite prepares its checks with each statement,
-- once, and migration 6 made them cheap.
SELECT 1;
