-- Nothing to do on SQLite: version 5 reorders a PostgreSQL index so that prepared statements
-- can keep one plan (see ../postgres/0005_generic_plans.sql). SQLite plans each prepared
-- statement once already, with its own planner, and its (provider, order_id) index serves the
-- queries it plans (the tests pin each plan).
SELECT 1;
