//! The two backends behind one set of statements.
//!
//! Every statement is written once, with `$n` parameters (SQLite reads `$n` as the n-th
//! parameter too) and `{now}` for the database's clock in milliseconds since the Unix epoch,
//! replaced per backend. The writes (a new entry, an entry's change, an event) are built from
//! one list of columns each, name and value side by side ([`entry_changes`], [`new_entry`],
//! [`new_event`]): a new column is one line there. Each operation's body is written once and
//! compiled for both pools by [`on_pool!`]. Nothing is checked against a database at build
//! time.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "postgres")]
use refunds::ExposeSecret;
use refunds::{MerchantReference, Money, Provider, RefundRequest};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query::Query;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ColumnIndex, Decode, Encode, Row, Type};

use crate::database::{Database, Kind, Phase, Target, human};

use crate::entry::{
    Entry, EntryState, Event, EventKind, Lease, OutcomeColumn, SettledBy, StatusColumn,
    outcome_str, status_str,
};
use crate::error::JournalError;
use crate::machine::{LeaseWrite, NEW_ENTRY, NewEvent, Write};
use crate::text::{escape_opt, unescape};

/// The pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs `$body` (a block that returns a `Result<_, JournalError>`; `?` and `return` in it end
/// the block) with `$pool` bound to the concrete pool of either backend. An error that says the
/// database is out of reach or out of time comes out named ([`Target::named`]).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        let result = match &$store.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => named_result(async { $body }).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => named_result(async { $body }).await,
        };
        match result {
            Ok(value) => Ok(value),
            Err(error) => Err($store.target.named(error).await),
        }
    }};
}

/// The result of `body`: fixes its error type for the `?` inside [`on_pool!`]'s blocks.
async fn named_result<T>(
    body: impl std::future::Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    body.await
}

/// Every column of an entry, in the order [`decode_entry`] reads them by name.
const ENTRY_COLUMNS: &str = "provider, merchant_reference, fingerprint, request, currency, state, \
    attempts, ambiguous, lease_owner, lease_expires_at_ms, provider_refund_id, refund_status, \
    amount, refunded_total, captured_total, already_applied, http_status, error_kind, \
    error_message, unresolved_reason, settled_by, wire_ms, created_at_ms, updated_at_ms, \
    settled_at_ms, attempt_at_ms, attempt_deadline_ms, version";

const EVENT_COLUMNS: &str = "id, provider, merchant_reference, at_ms, kind, attempt, owner, \
    outcome, http_status, error_kind, detail, elapsed_ms";

/// The statements, with `{now}` replaced for one backend; the writes are built per call
/// ([`Statement`]).
#[derive(Debug)]
struct Sql {
    /// The database's clock, for `{now}` in the writes.
    now: &'static str,
    select_entry: String,
    select_unresolved: String,
    select_pending: String,
    select_failed: String,
    select_order: String,
    select_history: String,
    select_now: String,
}

impl Sql {
    fn new(now: &'static str) -> Sql {
        let s = |text: String| text.replace("{now}", now);
        Sql {
            now,
            select_entry: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE provider = $1 AND merchant_reference = $2"
            )),
            // `state IN (...)` first: the rows of SQLite's per-order lease index (migration 4),
            // which SQLite reads only when the query names its condition so.
            select_unresolved: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE state IN ('in_flight', 'unknown') AND (state = 'unknown' OR \
                 lease_expires_at_ms IS NULL OR lease_expires_at_ms <= {{now}}) \
                 ORDER BY created_at_ms, provider, merchant_reference"
            )),
            select_pending: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE state = 'applied' AND refund_status = 'pending' \
                 ORDER BY created_at_ms, provider, merchant_reference"
            )),
            select_failed: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE state = 'applied' AND refund_status = 'failed' \
                 ORDER BY created_at_ms, provider, merchant_reference"
            )),
            select_order: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE provider = $1 AND order_id = $2 \
                 ORDER BY created_at_ms, merchant_reference"
            )),
            select_history: format!(
                "SELECT {EVENT_COLUMNS} FROM refund_journal_events \
                 WHERE provider = $1 AND merchant_reference = $2 ORDER BY id"
            ),
            select_now: s("SELECT {now} AS now_ms".to_owned()),
        }
    }
}

/// A value a write binds, of a type both backends encode. The column enums (state, status,
/// settler, event kind, outcome) are bound as their text, as they are stored: PostgreSQL then
/// needs no look-up of a declared type's id on a new connection (sqlx's `SELECT
/// $1::regtype::oid`, one more statement).
#[derive(Debug)]
enum Bind<'a> {
    /// Text, stored as given: escape free text first ([`Bind::escaped`]).
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(bool),
}

impl<'a> Bind<'a> {
    /// Text the journal chooses itself (keys, amounts, JSON), stored as it is.
    fn text(text: impl Into<Cow<'a, str>>) -> Bind<'a> {
        Bind::Text(Some(text.into()))
    }

    /// A column enum's value (`EntryState::as_str`, ...), or NULL.
    fn word(word: Option<&'static str>) -> Bind<'a> {
        Bind::Text(word.map(Cow::Borrowed))
    }

    /// Free text (a provider's, an owner, a reason), stored escaped ([`crate::text`]).
    fn escaped(text: Option<&'a str>) -> Bind<'a> {
        Bind::Text(escape_opt(text))
    }

    /// An amount, as an exact decimal string in the entry's currency.
    fn money(money: Option<Money>) -> Bind<'a> {
        Bind::Text(money.map(|money| Cow::Owned(money.amount().to_string())))
    }

    fn int(value: impl Into<i64>) -> Bind<'a> {
        Bind::Int(Some(value.into()))
    }

    /// `query` with this value bound as its next parameter.
    fn onto<'q, DB>(
        query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
        bind: &'q Bind<'_>,
    ) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        Option<i64>: Encode<'q, DB> + Type<DB>,
        bool: Encode<'q, DB> + Type<DB>,
    {
        match bind {
            Bind::Text(text) => query.bind(text.as_deref()),
            Bind::Int(value) => query.bind(*value),
            Bind::Bool(value) => query.bind(*value),
        }
    }

    /// The same value, owning its text (for a write handed to SQLite's writer).
    #[cfg(feature = "sqlite")]
    fn into_owned(self) -> Bind<'static> {
        match self {
            Bind::Text(text) => Bind::Text(text.map(|text| Cow::Owned(text.into_owned()))),
            Bind::Int(value) => Bind::Int(value),
            Bind::Bool(value) => Bind::Bool(value),
        }
    }
}

/// What a write sets a column to.
#[derive(Debug)]
enum Value<'a> {
    /// A bound value.
    Bind(Bind<'a>),
    /// SQL, `{now}` for the database's clock.
    Sql(&'static str),
    /// SQL with `?` for a bound value.
    SqlWith(&'static str, Bind<'a>),
}

impl<'a> From<Bind<'a>> for Value<'a> {
    fn from(bind: Bind<'a>) -> Self {
        Value::Bind(bind)
    }
}

/// A column and what a write sets it to.
type Column<'a> = (&'static str, Value<'a>);

/// The columns an entry's [`Write`] sets, one line each. The lease is set unless kept as read
/// (unchanged since: the write checks the version), and `settled_at_ms` when it settles.
fn entry_changes(write: &Write) -> Vec<Column<'_>> {
    let next = &write.next;
    let mut columns: Vec<Column<'_>> = vec![
        ("state", Bind::text(next.state.as_str()).into()),
        ("attempts", Bind::int(next.attempts).into()),
        ("ambiguous", Bind::Bool(next.ambiguous).into()),
        (
            "provider_refund_id",
            Bind::escaped(next.provider_refund_id.as_deref()).into(),
        ),
        (
            "refund_status",
            Bind::word(next.refund_status.map(status_str)).into(),
        ),
        ("amount", Bind::money(next.amount).into()),
        ("refunded_total", Bind::money(next.refunded_total).into()),
        ("captured_total", Bind::money(next.captured_total).into()),
        ("already_applied", Bind::Bool(next.already_applied).into()),
        (
            "http_status",
            Bind::Int(next.http_status.map(i64::from)).into(),
        ),
        (
            "error_kind",
            Bind::escaped(next.error_kind.as_deref()).into(),
        ),
        (
            "error_message",
            Bind::escaped(next.error_message.as_deref()).into(),
        ),
        (
            "unresolved_reason",
            Bind::escaped(next.unresolved_reason.as_deref()).into(),
        ),
        (
            "settled_by",
            Bind::word(next.settled_by.map(SettledBy::as_str)).into(),
        ),
        ("wire_ms", Bind::int(next.wire_ms).into()),
        ("updated_at_ms", Value::Sql("{now}")),
        ("version", Value::Sql("version + 1")),
    ];
    match &write.lease {
        LeaseWrite::Keep => {}
        LeaseWrite::Take { owner, ms } => {
            columns.push(("lease_owner", Bind::escaped(Some(owner)).into()));
            columns.push((
                "lease_expires_at_ms",
                Value::SqlWith("{now} + ?", Bind::int(*ms)),
            ));
        }
        LeaseWrite::Release => {
            columns.push(("lease_owner", Bind::Text(None).into()));
            columns.push(("lease_expires_at_ms", Bind::Int(None).into()));
        }
    }
    if write.settle {
        columns.push(("settled_at_ms", Value::Sql("{now}")));
    }
    if write.transition.records_intent() {
        if let LeaseWrite::Take { ms, .. } = &write.lease {
            columns.push(("attempt_at_ms", Value::Sql("{now}")));
            columns.push((
                "attempt_deadline_ms",
                Value::SqlWith("{now} + ?", Bind::int(*ms)),
            ));
        }
    } else if write.transition.records_answer() {
        // The attempt is over: nothing of it is on the wire any more.
        columns.push((
            "attempt_deadline_ms",
            Value::Sql(
                "CASE WHEN attempt_deadline_ms IS NULL OR attempt_deadline_ms > {now} \
                 THEN {now} ELSE attempt_deadline_ms END",
            ),
        ));
    }
    if matches!(next.state, EntryState::Applied | EntryState::NotApplied) {
        // A row that migration 3 kept outside the per-order lease (written before it) comes
        // under it once settled.
        columns.push(("order_lease_exempt", Bind::Bool(false).into()));
    }
    columns
}

/// The columns of a new entry for `request`: attempt 1 in flight, under a lease of `owner`.
fn new_entry<'a>(
    request: &'a RefundRequest,
    canonical: &'a str,
    fingerprint: &'a str,
    owner: &'a str,
    lease_ms: i64,
) -> Vec<Column<'a>> {
    vec![
        ("provider", Bind::text(request.provider.as_str()).into()),
        (
            "merchant_reference",
            Bind::text(request.merchant_reference.as_str()).into(),
        ),
        ("fingerprint", Bind::text(fingerprint).into()),
        ("request", Bind::text(canonical).into()),
        ("order_id", Bind::text(request.order_id.as_str()).into()),
        (
            "currency",
            Bind::text(request.amount.currency().code()).into(),
        ),
        ("state", Bind::text(NEW_ENTRY.as_str()).into()),
        ("attempts", Bind::int(1).into()),
        ("ambiguous", Bind::Bool(false).into()),
        ("lease_owner", Bind::escaped(Some(owner)).into()),
        (
            "lease_expires_at_ms",
            Value::SqlWith("{now} + ?", Bind::int(lease_ms)),
        ),
        ("already_applied", Bind::Bool(false).into()),
        ("wire_ms", Bind::int(0).into()),
        ("created_at_ms", Value::Sql("{now}")),
        ("updated_at_ms", Value::Sql("{now}")),
        ("attempt_at_ms", Value::Sql("{now}")),
        (
            "attempt_deadline_ms",
            Value::SqlWith("{now} + ?", Bind::int(lease_ms)),
        ),
        ("version", Bind::int(1).into()),
    ]
}

/// The columns of `event` on the entry (provider, reference).
fn new_event<'a>(provider: &'a str, reference: &'a str, event: &'a NewEvent) -> Vec<Column<'a>> {
    vec![
        ("provider", Bind::text(provider).into()),
        ("merchant_reference", Bind::text(reference).into()),
        ("at_ms", Value::Sql("{now}")),
        ("kind", Bind::text(event.kind.as_str()).into()),
        ("attempt", Bind::Int(event.attempt.map(i64::from)).into()),
        ("owner", Bind::escaped(event.owner.as_deref()).into()),
        ("outcome", Bind::word(event.outcome.map(outcome_str)).into()),
        (
            "http_status",
            Bind::Int(event.http_status.map(i64::from)).into(),
        ),
        (
            "error_kind",
            Bind::escaped(event.error_kind.as_deref()).into(),
        ),
        ("detail", Bind::escaped(event.detail.as_deref()).into()),
        ("elapsed_ms", Bind::Int(event.elapsed_ms).into()),
    ]
}

/// A write's SQL and its binds, built from a column list: `$1`, `$2`... in the order of the
/// binds.
#[derive(Debug, Default)]
struct Statement<'a> {
    sql: String,
    binds: Vec<Bind<'a>>,
}

impl<'a> Statement<'a> {
    /// `$n` for `bind`, the next parameter.
    fn param(&mut self, bind: Bind<'a>) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    /// The SQL of `value`.
    fn value(&mut self, value: Value<'a>) -> String {
        match value {
            Value::Bind(bind) => self.param(bind),
            Value::Sql(sql) => sql.to_owned(),
            Value::SqlWith(sql, bind) => sql.replace('?', &self.param(bind)),
        }
    }

    /// `INSERT INTO table (columns) VALUES (values) tail`.
    fn insert(now: &str, table: &str, columns: Vec<Column<'a>>, tail: &str) -> Statement<'a> {
        let mut statement = Statement::default();
        let (names, values): (Vec<&str>, Vec<String>) = columns
            .into_iter()
            .map(|(name, value)| (name, statement.value(value)))
            .unzip();
        statement.sql = format!(
            "INSERT INTO {table} ({}) VALUES ({}){tail}",
            names.join(", "),
            values.join(", ")
        )
        .replace("{now}", now);
        statement
    }

    /// The UPDATE of `write`, if the entry's version is still `expected`.
    fn update(now: &str, write: &'a Write, expected: i64) -> Statement<'a> {
        let mut statement = Statement::default();
        let set: Vec<String> = entry_changes(write)
            .into_iter()
            .map(|(name, value)| format!("{name} = {}", statement.value(value)))
            .collect();
        let provider = statement.param(Bind::text(write.next.provider.as_str()));
        let reference = statement.param(Bind::text(write.next.merchant_reference.as_str()));
        let version = statement.param(Bind::int(expected));
        statement.sql = format!(
            "UPDATE refund_journal_entries SET {} WHERE provider = {provider} AND \
             merchant_reference = {reference} AND version = {version}",
            set.join(", ")
        )
        .replace("{now}", now);
        statement
    }

    /// The query, with every value bound.
    #[cfg(feature = "postgres")]
    fn query<DB>(&'a self) -> Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
    where
        DB: sqlx::Database,
        Option<&'a str>: Encode<'a, DB> + Type<DB>,
        Option<i64>: Encode<'a, DB> + Type<DB>,
        bool: Encode<'a, DB> + Type<DB>,
    {
        self.query_of(&self.sql)
    }

    /// `sql` (this statement's SQL with more around it, no parameters of its own), with every
    /// value of this statement bound.
    fn query_of<DB>(&'a self, sql: &'a str) -> Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
    where
        DB: sqlx::Database,
        Option<&'a str>: Encode<'a, DB> + Type<DB>,
        Option<i64>: Encode<'a, DB> + Type<DB>,
        bool: Encode<'a, DB> + Type<DB>,
    {
        self.binds.iter().fold(sqlx::query(sql), Bind::onto)
    }

    /// The same statement, owning its values (for SQLite's writer).
    #[cfg(feature = "sqlite")]
    fn into_owned(self) -> Statement<'static> {
        Statement {
            sql: self.sql,
            binds: self.binds.into_iter().map(Bind::into_owned).collect(),
        }
    }

    /// (PostgreSQL) This statement (an INSERT or UPDATE of an entry, which may write no row)
    /// returning the entry's row, and the INSERT of `events` on the entry, as ONE statement:
    /// the entry's write in a data-modifying CTE, the events inserted from its row (none when
    /// it returns none: nothing written, as when the version did not match), and the entry's
    /// row as the result. One autocommit statement is atomic: both or neither, no
    /// `BEGIN`/`COMMIT`.
    ///
    /// One event (every write on a refund's usual path) goes in as `INSERT ... SELECT <its
    /// values> FROM entry`. Several go in with one `INSERT ... SELECT ... ORDER BY` their
    /// ordinal over a `VALUES` list: PostgreSQL runs the sub-statements of a `WITH`
    /// concurrently, so one INSERT per event would leave the order of their ids (the order the
    /// history reads them in) to the planner; within one INSERT, the ids are drawn row by row in
    /// the order the SELECT gives. The list and its sort are kept to that case because
    /// PostgreSQL sets them up again at every execution of the statement: for one event they
    /// made each write about a tenth slower (pgbench, both writes of a refund).
    #[cfg(feature = "postgres")]
    fn with_events(
        mut self,
        now: &str,
        provider: &'a str,
        reference: &'a str,
        events: &'a [NewEvent],
    ) -> Statement<'a> {
        self.sql.push_str(&format!(" RETURNING {ENTRY_COLUMNS}"));
        let mut names: Vec<&str> = Vec::new();
        // Each event's values, in order, as SQL (`$n` or an expression).
        let mut rows: Vec<String> = Vec::with_capacity(events.len());
        for event in events {
            let (columns, values): (Vec<&str>, Vec<String>) = new_event(provider, reference, event)
                .into_iter()
                .map(|(name, value)| (name, self.value(value)))
                .unzip();
            names = columns;
            rows.push(values.join(", "));
        }
        let columns = names.join(", ");
        let selected = match rows.as_slice() {
            [] => return self,
            [values] => format!("SELECT {values} FROM entry"),
            rows => {
                let rows: Vec<String> = rows
                    .iter()
                    .enumerate()
                    .map(|(ordinal, values)| format!("({ordinal}, {values})"))
                    .collect();
                let named: Vec<String> = names
                    .iter()
                    .map(|name| format!("new_event.{name}"))
                    .collect();
                format!(
                    "SELECT {named} FROM entry CROSS JOIN (VALUES {rows}) \
                     AS new_event (ordinal, {columns}) ORDER BY new_event.ordinal",
                    named = named.join(", "),
                    rows = rows.join(", "),
                )
            }
        };
        self.sql = format!(
            "WITH entry AS ({entry}), \
             events AS (INSERT INTO refund_journal_events ({columns}) {selected}) \
             SELECT {ENTRY_COLUMNS} FROM entry",
            entry = self.sql,
        )
        .replace("{now}", now);
        self
    }

    /// (SQLite) This statement (an INSERT or UPDATE of an entry, which may write no row), then
    /// one INSERT per event, then the entry's row read back, as ONE SQL text: one command to
    /// SQLite's connection thread, which runs its statements in order. Each statement after the
    /// first runs only when the one before it changed a row (`changes() = 1`: the entry's write
    /// for the first event, the event before for the next, the last write for the read), so
    /// none when the entry's statement wrote nothing. The events' rowids follow their order.
    /// (SQLite has no data-modifying `WITH`; and its `RETURNING` fills a temporary table per
    /// statement, which costs more than reading the row back by its primary key.)
    ///
    /// The text's LAST parameter is the write's place among the writes of one command, which
    /// the row read back carries as its `place` column (bound 0 here: a write alone; the writer
    /// binds each write's place when it sends several writes in one command, [`run_together`]).
    #[cfg(feature = "sqlite")]
    fn then_events(
        mut self,
        now: &str,
        provider: &'a str,
        reference: &'a str,
        events: &'a [NewEvent],
    ) -> Statement<'a> {
        for event in events {
            let (names, values): (Vec<&str>, Vec<String>) = new_event(provider, reference, event)
                .into_iter()
                .map(|(name, value)| (name, self.value(value)))
                .unzip();
            let insert = format!(
                "; INSERT INTO refund_journal_events ({}) SELECT {} WHERE changes() = 1",
                names.join(", "),
                values.join(", ")
            );
            self.sql.push_str(&insert.replace("{now}", now));
        }
        let provider = self.param(Bind::text(provider));
        let reference = self.param(Bind::text(reference));
        let place = self.param(Bind::int(0));
        self.sql.push_str(&format!(
            "; SELECT {ENTRY_COLUMNS}, {place} AS place FROM refund_journal_entries \
             WHERE provider = {provider} AND merchant_reference = {reference} AND changes() = 1"
        ));
        self
    }

    /// (SQLite) This statement's SQL with every parameter `$n` renumbered `$(n + by)`: for a
    /// command that sends it after other statements' `by` parameters. (Every value is bound:
    /// the only `$` in the journal's SQL are parameters.)
    #[cfg(feature = "sqlite")]
    fn sql_shifted(&self, by: usize) -> String {
        let mut pieces = self.sql.split('$');
        let mut sql = pieces.next().unwrap_or_default().to_owned();
        for piece in pieces {
            let digits = piece.bytes().take_while(u8::is_ascii_digit).count();
            sql.push('$');
            match piece[..digits].parse::<usize>() {
                Ok(n) => {
                    sql.push_str(&(n + by).to_string());
                    sql.push_str(&piece[digits..]);
                }
                Err(_) => sql.push_str(piece),
            }
        }
        sql
    }
}

/// The database's clock in milliseconds since the Unix epoch.
#[cfg(feature = "sqlite")]
const SQLITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
#[cfg(feature = "postgres")]
const POSTGRES_NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// The journal's migrations, embedded: `migrations/<backend>/<version>_<name>.sql`. A new
/// migration is a new file for each backend and a line here (a test checks that every file is
/// listed).
pub(crate) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "refund journal",
        include_str!("../migrations/sqlite/0001_refund_journal.sql"),
        include_str!("../migrations/postgres/0001_refund_journal.sql"),
    ),
    (
        2,
        "escaped text",
        include_str!("../migrations/sqlite/0002_escaped_text.sql"),
        include_str!("../migrations/postgres/0002_escaped_text.sql"),
    ),
    (
        3,
        "reads and order lease",
        include_str!("../migrations/sqlite/0003_reads_and_order_lease.sql"),
        include_str!("../migrations/postgres/0003_reads_and_order_lease.sql"),
    ),
    (
        4,
        "fewer index writes",
        include_str!("../migrations/sqlite/0004_fewer_index_writes.sql"),
        include_str!("../migrations/postgres/0004_fewer_index_writes.sql"),
    ),
    (
        5,
        "generic plans",
        include_str!("../migrations/sqlite/0005_generic_plans.sql"),
        include_str!("../migrations/postgres/0005_generic_plans.sql"),
    ),
    (
        6,
        "checks without lists",
        include_str!("../migrations/sqlite/0006_checks_without_lists.sql"),
        include_str!("../migrations/postgres/0006_checks_without_lists.sql"),
    ),
    (
        7,
        "checks as domains",
        include_str!("../migrations/sqlite/0007_checks_as_domains.sql"),
        include_str!("../migrations/postgres/0007_checks_as_domains.sql"),
    ),
];

/// The unique index of the per-order lease (migration 3; on SQLite, migration 4's, which also
/// lists the unresolved rows).
const ORDER_LEASE_INDEX: &str = "refund_journal_entries_order_lease";

/// Whether `error` is a write refused by the per-order lease: another AfterPay refund on the
/// order is in flight or unknown. PostgreSQL names the index as the constraint; SQLite names
/// it in the message (`index '...'`: an index on an expression, migration 4), or named its
/// columns (migration 3's index).
fn is_order_lease_violation(error: &JournalError) -> bool {
    let JournalError::Database(sqlx::Error::Database(error)) = error else {
        return false;
    };
    error.is_unique_violation()
        && (error.constraint() == Some(ORDER_LEASE_INDEX)
            || error
                .message()
                .contains(&format!("index '{ORDER_LEASE_INDEX}'"))
            || error.message().contains("refund_journal_entries.order_id"))
}

/// [`JournalError::OrderBusy`] for a write of `request`'s entry that the per-order lease
/// refused (the entry holding it is looked up by the journal); other errors as they are.
fn order_busy(error: JournalError, request: &RefundRequest) -> JournalError {
    if is_order_lease_violation(&error) {
        JournalError::OrderBusy {
            provider: request.provider,
            order_id: request.order_id.clone(),
            reference: request.merchant_reference.clone(),
            holder: None,
        }
    } else {
        error
    }
}

#[derive(Debug, Clone, Copy)]
struct Embedded {
    postgres: bool,
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> futures_core::future::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sqlite, postgres)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(if self.postgres { postgres } else { sqlite }),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Runs `migrator` on `conn`. The boxed future names its lifetimes, which spares callers
/// sqlx's "implementation of `Acquire` is not general enough" when the journal is opened on a
/// spawned task.
fn run_migrations<'c, C>(
    migrator: &'c Migrator,
    conn: &'c mut C,
) -> futures_core::future::BoxFuture<'c, Result<(), sqlx::migrate::MigrateError>>
where
    C: std::ops::DerefMut + Send,
    C::Target: sqlx::migrate::Migrate + Send,
    &'c mut C::Target: sqlx::Acquire<'c>,
    <&'c mut C::Target as sqlx::Acquire<'c>>::Connection: std::ops::DerefMut<Target = C::Target>,
{
    Box::pin(migrator.run(&mut **conn))
}

async fn migrator(postgres: bool) -> Result<Migrator, JournalError> {
    Ok(Migrator::new(Embedded { postgres }).await?)
}

/// Puts a SQLite connection that comes back to the pool in step with SQLite: no transaction
/// open, as sqlx counts and as SQLite has it.
///
/// SQLite rolls a transaction back by itself when some failures strike (a full disk or an I/O
/// error while it writes, a failed `COMMIT`, a trigger's `RAISE(ROLLBACK)`). sqlx then still
/// counts the transaction as open: the rollback it sends when the transaction is dropped fails
/// ("no transaction is active"), and every later `BEGIN` on that connection is refused ("begin
/// at non-zero transaction depth"), until the process restarts. Here, a connection sqlx counts
/// in a transaction is rolled back; if SQLite has none open, a savepoint opens one (outside a
/// transaction, `SAVEPOINT` begins one) for sqlx to roll back, which brings its count to zero.
/// `Ok(false)` (close the connection) if it cannot be brought in step; a connection in step
/// costs one atomic read.
#[cfg(feature = "sqlite")]
fn resync_sqlite_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> futures_core::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    use sqlx::TransactionManager;
    type Manager = <sqlx::Sqlite as sqlx::Database>::TransactionManager;
    Box::pin(async move {
        // The journal never nests transactions: a depth beyond a few is no state of ours.
        for _ in 0..4 {
            if Manager::get_transaction_depth(conn) == 0 {
                return Ok(true);
            }
            if let Err(error) = Manager::rollback(conn).await {
                tracing::warn!(
                    %error,
                    "refund journal: SQLite rolled a failed transaction back by itself; \
                     resynchronizing the connection"
                );
                // SAVEPOINT (depth n -> n + 1) opens a transaction; ROLLBACK TO it (n + 1 -> n),
                // then ROLLBACK (n -> n - 1) ends it.
                if Manager::begin(conn, None).await.is_err()
                    || Manager::rollback(conn).await.is_err()
                    || Manager::rollback(conn).await.is_err()
                {
                    return Ok(false);
                }
            }
        }
        Ok(Manager::get_transaction_depth(conn) == 0)
    })
}

/// The most writes SQLite's writer commits in one transaction.
#[cfg(feature = "sqlite")]
const MAX_BATCH: usize = 64;

/// The most writes of one SQL text SQLite's writer sends in one command ([`run_together`]):
/// the chunks are of 1, 2, 4, 8 or 16 writes, five texts per shape of write to keep prepared;
/// a larger chunk would save little more than its round trips and cost a large prepared
/// statement.
#[cfg(feature = "sqlite")]
const MAX_TOGETHER: usize = 16;

/// How many writes may wait for SQLite's writer before a caller waits to queue.
#[cfg(feature = "sqlite")]
const MAX_QUEUED: usize = 1024;

/// What a write comes to: the entry's row after it, `None` when nothing was written (the
/// version did not match, the reference has an entry), or why it failed.
type Written = Result<Option<Entry>, JournalError>;

/// One write for SQLite's writer: its statements as one SQL text ([`Statement::then_events`])
/// and where its caller waits.
#[cfg(feature = "sqlite")]
struct Job {
    statement: Statement<'static>,
    reply: tokio::sync::oneshot::Sender<Written>,
}

#[cfg(feature = "sqlite")]
impl Job {
    fn answer(self, written: Written) {
        // A caller that stopped waiting no longer hears it.
        let _ = self.reply.send(written);
    }
}

/// SQLite's group commit: one thread owns this process's writes. It takes every write queued
/// (up to [`MAX_BATCH`]; it never waits to gather more, so a lone write goes at once), runs
/// them in ONE `BEGIN IMMEDIATE ... COMMIT` (one fsync for all), and answers each caller once
/// the commit returned: a write is answered as written only when it is durable.
///
/// - The writes of a batch that share their SQL text (most do: a write is one of a handful
///   of shapes) go to SQLite's connection thread together, several in one command
///   ([`run_together`]): one round trip to that thread for each group, not one per write. A
///   lone write takes its `BEGIN IMMEDIATE` and `COMMIT` in its own command: one round trip.
/// - A write that writes nothing (its version no longer matches, its reference has an entry)
///   is answered `None`; the batch goes on.
/// - A write that fails (a unique index such as the per-order lease, a trigger, a full disk, a
///   row that cannot be read back) gets its error, and the transaction is rolled back whole
///   (SQLite undoes a failing statement, not the write's statements before it, and throws the
///   whole transaction away on some failures: `SQLITE_FULL`, `SQLITE_IOERR`, a
///   `RAISE(ROLLBACK)`). A command of several writes does not tell which of them failed: the
///   batch then runs again one write per command, which finds it. The writes before it in
///   the batch, rolled back unseen, run again with the rest in a new transaction: one write's
///   failure spoils none of the others, and costs no fsync (only a commit syncs).
/// - A failed `BEGIN` or `COMMIT` (another process held the lock past the busy limit, the disk
///   filled up) fails every write of the batch: none of them is durable.
/// - The writer keeps a connection of the pool between batches (no pool round trip, and its
///   page cache stays valid: no other connection of this process writes); a pool of one
///   connection (an in-memory database's) is shared with the readers, so the writer gives it
///   back after each batch. It begins and ends its transactions itself (sqlx does not count
///   them): after a failure it rolls back whatever SQLite left open before the connection is
///   used again, and a connection that cannot be rolled back, or whose batch was dropped
///   midway, is closed rather than given back to the pool.
/// - A caller that stops waiting (its future dropped) while its write is queued: the write is
///   left out of the next batch, nothing is written. Once in a batch, it commits or fails
///   with the batch, whether anyone waits for it or not.
/// - The writer runs on a thread of its own, on a runtime of its own: each batch waits on
///   SQLite's connection thread several times (`BEGIN`, each group, `COMMIT`), and on a
///   service's runtime each of those wake-ups would queue behind the service's tasks while
///   every caller with a write in the batch waits. It ends when the pool closes
///   ([`Journal::close`](crate::Journal::close)) or the store is dropped (the last clone of
///   the journal), giving its connection back: writes still queued then fail with
///   [`sqlx::Error::PoolClosed`]. It does not depend on the runtime that opened the journal.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct Writer {
    queue: tokio::sync::mpsc::Sender<Job>,
}

#[cfg(feature = "sqlite")]
impl Writer {
    /// Starts the writer's thread. Its runtime has a clock (the pool's acquire limit) and no
    /// I/O driver: SQLite's connections are threads and channels, not sockets.
    fn start(pool: SqlitePool) -> Result<Writer, JournalError> {
        let (queue, jobs) = tokio::sync::mpsc::channel(MAX_QUEUED);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(sqlx::Error::Io)?;
        std::thread::Builder::new()
            .name("refunds-journal-writer".to_owned())
            .spawn(move || runtime.block_on(write_batches(pool, jobs)))
            .map_err(sqlx::Error::Io)?;
        Ok(Writer { queue })
    }

    /// Writes `statement` with the next batch; answered once it is committed (or failed).
    async fn write(&self, statement: Statement<'static>) -> Written {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.queue.send(Job { statement, reply }).await.is_err() {
            return Err(JournalError::Database(sqlx::Error::PoolClosed));
        }
        // The writer dropped the write unanswered: it ended (the pool closed).
        answer
            .await
            .unwrap_or(Err(JournalError::Database(sqlx::Error::PoolClosed)))
    }
}

/// The writer: batch after batch until the pool closes or every sender is gone.
#[cfg(feature = "sqlite")]
async fn write_batches(pool: SqlitePool, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    let keep = pool.options().get_max_connections() > 1;
    let mut conn = None;
    let mut closed = std::pin::pin!(pool.close_event());
    loop {
        let first = tokio::select! {
            biased;
            () = &mut closed => break,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Callers that stopped waiting: nothing written for them.
        batch.retain(|job| !job.reply.is_closed());
        let mut together = MAX_TOGETHER;
        while !batch.is_empty() {
            batch = commit_batch(&pool, &mut conn, batch, together).await;
            // Only a failure leaves writes to run again: one per command, to find it.
            together = 1;
        }
        if !keep {
            conn = None;
        }
    }
}

/// A command of [`run_together`] failed: its error, and the place in the batch of the write
/// that failed when the command held that write alone (a command of several writes does not
/// tell which of them failed).
#[cfg(feature = "sqlite")]
struct CommandFailed {
    write: Option<usize>,
    error: JournalError,
}

/// A connection inside a transaction the writer began itself: dropped before the transaction
/// ended (the batch's future dropped midway), it is closed, never given back to the pool with
/// the transaction open.
#[cfg(feature = "sqlite")]
struct InTransaction(Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

#[cfg(feature = "sqlite")]
impl InTransaction {
    fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        self.0.as_mut().expect("in a transaction")
    }

    /// The transaction committed: the connection, clean.
    fn committed(mut self) -> sqlx::pool::PoolConnection<sqlx::Sqlite> {
        self.0.take().expect("in a transaction")
    }

    /// The transaction failed: rolls back whatever SQLite left open ("no transaction is
    /// active" when it threw the transaction away itself) and gives the connection back to the
    /// pool; closes it when it cannot be rolled back.
    async fn failed(mut self) {
        let mut conn = self.0.take().expect("in a transaction");
        match sqlx::query("ROLLBACK").execute(&mut *conn).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.message().contains("no transaction is active") => {
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "refund journal: a failed SQLite transaction could not be rolled back; \
                     closing its connection"
                );
                let _ = conn.close().await;
            }
        }
    }
}

#[cfg(feature = "sqlite")]
impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.close_on_drop();
        }
    }
}

/// Runs `batch` in one transaction, on `kept` (the writer's connection) or one of the pool,
/// with up to `together` writes of one SQL text per command ([`run_together`]), and answers
/// every write it settles; returns the writes to run again after a failure (rolled back with
/// it, or all of them when a command of several writes failed). With one write per command
/// (`together` 1), every call answers at least one write, so that the writer moves on. After
/// a commit the connection is in `kept`; after a failure it goes back to the pool.
#[cfg(feature = "sqlite")]
async fn commit_batch(
    pool: &SqlitePool,
    kept: &mut Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>,
    mut batch: Vec<Job>,
    together: usize,
) -> Vec<Job> {
    let conn = match kept.take() {
        Some(conn) => conn,
        None => match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                fail_all(batch, error);
                return Vec::new();
            }
        },
    };
    let mut tx = InTransaction(Some(conn));
    if batch.len() == 1 {
        // One command: BEGIN IMMEDIATE, the write, COMMIT. Whichever fails, the write does.
        let job = batch.pop().expect("one write");
        let sql = format!("BEGIN IMMEDIATE; {}; COMMIT", job.statement.sql);
        match run_job(tx.conn(), &job, &sql).await {
            Ok(written) => {
                *kept = Some(tx.committed());
                job.answer(Ok(written));
            }
            Err(error) => {
                tx.failed().await;
                job.answer(Err(error));
            }
        }
        return Vec::new();
    }
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE").execute(tx.conn()).await {
        tx.failed().await;
        fail_all(batch, error);
        return Vec::new();
    }
    let written = match run_together(tx.conn(), &batch, together).await {
        Ok(written) => written,
        Err(CommandFailed { write, error }) => {
            tx.failed().await;
            // Which write failed is known when its command held it alone; else all of them
            // run again (one per command, to find it).
            if let Some(at) = write {
                batch.remove(at).answer(Err(error));
            }
            return batch;
        }
    };
    match sqlx::query("COMMIT").execute(tx.conn()).await {
        Ok(_) => {
            *kept = Some(tx.committed());
            for (job, written) in batch.into_iter().zip(written) {
                job.answer(Ok(written));
            }
        }
        // Nothing of the batch is durable.
        Err(error) => {
            tx.failed().await;
            fail_all(batch, error);
        }
    }
    Vec::new()
}

/// Runs the writes of `batch` in the writer's transaction with those that share their SQL text
/// in one command: their texts one after the other, each write's parameters numbered after
/// the ones before it ([`Statement::sql_shifted`]) and its last one, its place, bound to its
/// index in `batch` ([`Statement::then_events`]). A group goes in chunks of a power of two
/// writes, up to `together` (at most [`MAX_TOGETHER`]), so that the commands' texts are few (a
/// shape and a size) and stay prepared in the connection's statement cache. Returns the row
/// each write read back, in `batch`'s order, or the first failing command's error.
///
/// Grouping changes the order the writes run in. Any order is one the callers could have
/// met: each write of a batch is a different caller's, none of them is answered yet, and a
/// caller queues its next write only once its last one is answered.
#[cfg(feature = "sqlite")]
async fn run_together(
    conn: &mut sqlx::SqliteConnection,
    batch: &[Job],
    together: usize,
) -> Result<Vec<Option<Entry>>, CommandFailed> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (at, job) in batch.iter().enumerate() {
        match groups.iter_mut().find(|(sql, _)| *sql == job.statement.sql) {
            Some((_, members)) => members.push(at),
            None => groups.push((&job.statement.sql, vec![at])),
        }
    }
    let mut written: Vec<Option<Entry>> = batch.iter().map(|_| None).collect();
    for (_, members) in groups {
        let mut rest = &members[..];
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(1 << rest.len().min(together).ilog2());
            rest = after;
            let failed = |error: JournalError| CommandFailed {
                write: match chunk {
                    [alone] => Some(*alone),
                    _ => None,
                },
                error,
            };
            let mut sql = Vec::with_capacity(chunk.len());
            let mut shift = 0;
            for &at in chunk {
                let statement = &batch[at].statement;
                sql.push(statement.sql_shifted(shift));
                shift += statement.binds.len();
            }
            let sql = sql.join("; ");
            let mut query = sqlx::query(&sql);
            for &at in chunk {
                let (_place, binds) = batch[at]
                    .statement
                    .binds
                    .split_last()
                    .expect("a write's last parameter is its place");
                let place = i64::try_from(at).expect("a place in a batch of MAX_BATCH");
                query = binds.iter().fold(query, Bind::onto).bind(place);
            }
            let rows = query
                .fetch_all(&mut *conn)
                .await
                .map_err(|error| failed(error.into()))?;
            for row in rows {
                let place: i64 = get(&row, "place").map_err(failed)?;
                let slot = usize::try_from(place)
                    .ok()
                    .and_then(|at| written.get_mut(at))
                    .ok_or_else(|| failed(corrupt(format!("place = {place} is out of range"))))?;
                *slot = Some(decode_entry(&row).map_err(failed)?);
            }
        }
    }
    Ok(written)
}

/// One write in the writer's transaction: `sql` (the write's SQL text, or it inside `BEGIN`
/// and `COMMIT`), which reads the entry's row back when it wrote.
#[cfg(feature = "sqlite")]
async fn run_job(conn: &mut sqlx::SqliteConnection, job: &Job, sql: &str) -> Written {
    // Every statement of the text runs (`fetch_optional` would stop at the first row).
    let rows = job.statement.query_of(sql).fetch_all(&mut *conn).await?;
    rows.first().map(decode_entry).transpose()
}

/// Fails every write of `jobs` with `error` (the first gets it, the others a copy).
#[cfg(feature = "sqlite")]
fn fail_all(jobs: Vec<Job>, error: sqlx::Error) {
    let mut error = Some(error);
    let mut jobs = jobs.into_iter().peekable();
    while let Some(job) = jobs.next() {
        let this = if jobs.peek().is_some() {
            copy_error(error.as_ref().expect("kept for the last write"))
        } else {
            error.take().expect("given once")
        };
        job.answer(Err(JournalError::Database(this)));
    }
}

/// `error` again, for another write that failed with it (sqlx's errors are not `Clone`): a
/// database error keeps its message, code, constraint, table and kind, which are what the
/// journal reads of it ([`Target::named`], [`is_order_lease_violation`]); an I/O error its
/// kind and text; the pool's errors themselves; anything else its text.
#[cfg(feature = "sqlite")]
fn copy_error(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::Database(db) => sqlx::Error::Database(Box::new(CopiedDatabaseError {
            message: db.message().to_owned(),
            code: db.code().map(Cow::into_owned),
            constraint: db.constraint().map(str::to_owned),
            table: db.table().map(str::to_owned),
            kind: same_kind(&db.kind()),
        })),
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// A database error that failed a whole batch, as the second and later writes of that batch
/// report it ([`copy_error`]).
#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct CopiedDatabaseError {
    message: String,
    code: Option<String>,
    constraint: Option<String>,
    table: Option<String>,
    kind: sqlx::error::ErrorKind,
}

#[cfg(feature = "sqlite")]
impl std::fmt::Display for CopiedDatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(feature = "sqlite")]
impl std::error::Error for CopiedDatabaseError {}

#[cfg(feature = "sqlite")]
impl sqlx::error::DatabaseError for CopiedDatabaseError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        same_kind(&self.kind)
    }
}

/// `kind` again (sqlx's `ErrorKind` is not `Clone`).
#[cfg(feature = "sqlite")]
fn same_kind(kind: &sqlx::error::ErrorKind) -> sqlx::error::ErrorKind {
    use sqlx::error::ErrorKind;
    match kind {
        ErrorKind::UniqueViolation => ErrorKind::UniqueViolation,
        ErrorKind::ForeignKeyViolation => ErrorKind::ForeignKeyViolation,
        ErrorKind::NotNullViolation => ErrorKind::NotNullViolation,
        ErrorKind::CheckViolation => ErrorKind::CheckViolation,
        _ => ErrorKind::Other,
    }
}

/// One row of a listing: the entry, or a row that cannot be read.
pub(crate) type Listed = Result<Entry, Box<Unreadable>>;

/// A row that cannot be read: its key as stored (`?` where even that cannot be read), and why.
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub provider: String,
    pub merchant_reference: String,
    pub error: JournalError,
}

/// The journal's database: a pool and the statements for its backend.
#[derive(Debug)]
pub(crate) struct Store {
    pool: Pool,
    sql: Sql,
    /// SQLite takes one writer at a time, and each commit costs an fsync: this process's
    /// writes go to one writer, which commits whatever is queued together ([`Writer`]).
    /// Other processes on the same file meet the busy timeout. `None` for PostgreSQL, whose
    /// writes are one statement each and run side by side.
    #[cfg(feature = "sqlite")]
    writer: Option<Writer>,
    /// Which database, as errors name it, and its time limits.
    target: Target,
}

/// How to connect to a [`Database`].
enum Connect {
    #[cfg(feature = "sqlite")]
    Sqlite {
        options: Box<SqliteConnectOptions>,
        /// An in-memory database: one connection, kept forever (the database lives in it).
        memory: bool,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        options: Box<PgConnectOptions>,
        schema: String,
    },
}

/// Where start-up is, for the error when its limit passes.
type StartupPhase = std::sync::Mutex<Phase>;

fn set_phase(phase: &StartupPhase, now: Phase) {
    *phase
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
}

/// A duration in whole milliseconds, for a database setting.
#[cfg(feature = "postgres")]
fn setting_ms(duration: Duration) -> u128 {
    duration.as_millis().max(1)
}

impl Store {
    /// Connects, creates what is missing and applies the migrations, within the start-up limit.
    pub(crate) async fn open(database: &Database) -> Result<Store, JournalError> {
        let (connect, target) = Store::prepare(database)?;
        let phase = StartupPhase::new(Phase::Connecting);
        let started = tokio::time::timeout(
            target.limits.startup,
            Store::start(connect, &target, &phase),
        )
        .await;
        match started {
            Ok(Ok(store)) => Ok(store),
            Ok(Err(error)) => Err(target.named(error).await),
            Err(_) => {
                let phase = *phase
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Err(target.startup_elapsed(phase).await)
            }
        }
    }

    /// The connect options and the target of `database`; an unusable configuration (an
    /// invalid schema, a URL that does not parse) is refused before any I/O.
    fn prepare(database: &Database) -> Result<(Connect, Target), JournalError> {
        let limits = database.limits;
        Ok(match &database.kind {
            #[cfg(feature = "sqlite")]
            Kind::SqliteFile(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(limits.statement);
                let max = database.max_connections.unwrap_or(4);
                (
                    Connect::Sqlite {
                        options: Box::new(options),
                        memory: false,
                    },
                    Target::sqlite(format!("SQLite at {}", path.display()), limits, max),
                )
            }
            #[cfg(feature = "sqlite")]
            Kind::SqliteMemory => {
                let options = SqliteConnectOptions::from_str("sqlite::memory:")?
                    .foreign_keys(true)
                    .busy_timeout(limits.statement);
                (
                    Connect::Sqlite {
                        options: Box::new(options),
                        memory: true,
                    },
                    Target::sqlite("SQLite in memory".to_owned(), limits, 1),
                )
            }
            #[cfg(feature = "postgres")]
            Kind::Postgres { url, schema } => {
                if !valid_schema(schema) {
                    return Err(JournalError::Config(format!(
                        "schema {schema:?}: use lower-case ASCII letters, digits and '_', \
                         starting with a letter or '_', at most 63 characters"
                    )));
                }
                let options = PgConnectOptions::from_str(url.expose_secret())?.options([
                    ("search_path", schema.clone()),
                    (
                        "statement_timeout",
                        setting_ms(limits.statement).to_string(),
                    ),
                ]);
                let max = database.max_connections.unwrap_or(10);
                let target = Target::postgres(&options, limits, max);
                (
                    Connect::Postgres {
                        options: Box::new(options),
                        schema: schema.clone(),
                    },
                    target,
                )
            }
        })
    }

    /// Connects and migrates (the start-up limit is [`Store::open`]'s).
    async fn start(
        connect: Connect,
        target: &Target,
        phase: &StartupPhase,
    ) -> Result<Store, JournalError> {
        let limits = target.limits;
        match connect {
            #[cfg(feature = "sqlite")]
            Connect::Sqlite { options, memory } => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(target.max_connections)
                    .acquire_timeout(limits.acquire)
                    .after_release(|conn, _| resync_sqlite_transaction(conn));
                let pool = if memory {
                    pool.min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    pool
                };
                let pool = pool.connect_with(*options).await?;
                set_phase(phase, Phase::Migrating);
                Store::sqlite(pool, target).await
            }
            #[cfg(feature = "postgres")]
            Connect::Postgres { options, schema } => {
                // sqlx's default stays: a pooled connection is pinged before each use (and, in
                // sqlx 0.8, always after), three round trips for a write of one statement.
                // Without the first ping, journaled refunds ran about a tenth faster on the
                // loopback benchmark, but after a server restart every idle connection carried
                // one write to its failure, an answer's among them (the refund sent, its answer
                // not recorded): `postgres_restarted_between_calls_costs_no_write`.
                let pool = PgPoolOptions::new()
                    .max_connections(target.max_connections)
                    .acquire_timeout(limits.acquire)
                    .connect_with(*options)
                    .await?;
                set_phase(phase, Phase::Schema);
                let mut conn = pool.acquire().await?;
                // Start-up statements (the schema's lock, the migrations, and the wait for
                // another instance's migration lock) run under the start-up limit.
                sqlx::query(&format!(
                    "SET statement_timeout = {}",
                    setting_ms(limits.startup)
                ))
                .execute(&mut *conn)
                .await?;
                // Concurrent first opens (replicas starting together) must not race on the
                // schema: one at a time, under a transaction-scoped advisory lock.
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('refunds_journal.schema'))")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                set_phase(phase, Phase::Migrating);
                // sqlx's migrator holds an advisory lock on the database while it migrates.
                let migrator = migrator(true).await?;
                run_migrations(&migrator, &mut conn).await?;
                sqlx::query(&format!(
                    "SET statement_timeout = {}",
                    setting_ms(limits.statement)
                ))
                .execute(&mut *conn)
                .await?;
                drop(conn);
                Ok(Store {
                    pool: Pool::Postgres(pool),
                    sql: Sql::new(POSTGRES_NOW),
                    #[cfg(feature = "sqlite")]
                    writer: None,
                    target: target.clone(),
                })
            }
        }
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite(pool: SqlitePool, target: &Target) -> Result<Store, JournalError> {
        // SQLite has no advisory lock: processes opening one file together take turns on its
        // write lock, and the migrator's own transactions nest inside this one as savepoints.
        let mut conn = pool.acquire().await?;
        // The wait for another process's start-up (its migrations hold the write lock) runs
        // under the start-up limit, as on PostgreSQL.
        let busy = |limit: Duration| format!("PRAGMA busy_timeout = {}", limit.as_millis().max(1));
        sqlx::query(&busy(target.limits.startup))
            .execute(&mut *conn)
            .await?;
        let migrator = migrator(false).await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        run_migrations(&migrator, &mut tx).await?;
        tx.commit().await?;
        sqlx::query(&busy(target.limits.statement))
            .execute(&mut *conn)
            .await?;
        drop(conn);
        Ok(Store {
            writer: Some(Writer::start(pool.clone())?),
            pool: Pool::Sqlite(pool),
            sql: Sql::new(SQLITE_NOW),
            target: target.clone(),
        })
    }

    /// Which backend: `sqlite` or `postgres`.
    pub(crate) fn backend(&self) -> &'static str {
        match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Which database, as errors name it: `PostgreSQL at host:port/database`, `SQLite at
    /// <path>`.
    pub(crate) fn name(&self) -> &str {
        &self.target.name
    }

    /// Closes the pool; SQLite's writer ends with it (a batch it is committing finishes
    /// first; writes still queued fail, as every call after this does).
    pub(crate) async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// One round trip (`SELECT 1`), within the acquire and statement limits (and, should the
    /// connection hang, a client-side limit of both plus a second).
    pub(crate) async fn ping(&self) -> Result<(), JournalError> {
        let limits = self.target.limits;
        let limit = limits.acquire + limits.statement + Duration::from_secs(1);
        let ping = async {
            on_pool!(self, pool => {
                sqlx::query("SELECT 1").execute(pool).await?;
                Ok(())
            })
        };
        match tokio::time::timeout(limit, ping).await {
            Ok(result) => result,
            Err(_) => Err(self.target.unavailable(
                format!("no answer within {}", human(limit)),
                "the round trip did not finish".to_owned(),
            )),
        }
    }

    /// The database's clock.
    pub(crate) async fn now_ms(&self) -> Result<i64, JournalError> {
        on_pool!(self, pool => {
            let row = sqlx::query(&self.sql.select_now).fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>("now_ms")?)
        })
    }

    /// Records a new entry for `request` in flight, attempt 1 under a lease of `owner`, with its
    /// intent event; `None` when the reference already has an entry.
    pub(crate) async fn insert(
        &self,
        request: &RefundRequest,
        canonical: &str,
        fingerprint: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<Entry>, JournalError> {
        let insert = self.insert_entry(request, canonical, fingerprint, owner, lease_ms);
        let intent = [crate::machine::intent(1, owner, None)];
        self.write_row(
            insert,
            request.provider.as_str(),
            request.merchant_reference.as_str(),
            &intent,
        )
        .await
        .map_err(|error| order_busy(error, request))
    }

    /// Applies `write` to the entry if its version is still `expected` (nobody wrote since it
    /// was read), with its events, atomically. `None` when someone else wrote first.
    pub(crate) async fn write(
        &self,
        expected: i64,
        write: &Write,
    ) -> Result<Option<Entry>, JournalError> {
        let update = Statement::update(self.sql.now, write, expected);
        self.write_row(
            update,
            write.next.provider.as_str(),
            write.next.merchant_reference.as_str(),
            &write.events,
        )
        .await
        .map_err(|error| order_busy(error, &write.next.request))
    }

    /// The INSERT of a new entry for `request` ([`new_entry`]); it writes nothing when the
    /// reference has an entry.
    fn insert_entry<'a>(
        &self,
        request: &'a RefundRequest,
        canonical: &'a str,
        fingerprint: &'a str,
        owner: &'a str,
        lease_ms: i64,
    ) -> Statement<'a> {
        Statement::insert(
            self.sql.now,
            "refund_journal_entries",
            new_entry(request, canonical, fingerprint, owner, lease_ms),
            " ON CONFLICT (provider, merchant_reference) DO NOTHING",
        )
    }

    /// Runs `entry` (the INSERT or UPDATE of the entry (provider, reference), which may write
    /// no row) and, when it writes the row, the INSERT of `events` on the entry, atomically;
    /// returns the entry's row as written. `None` (nothing written) when it writes none.
    ///
    /// - PostgreSQL: one statement ([`Statement::with_events`]), autocommitted: one round trip,
    ///   no transaction to begin or commit.
    /// - SQLite: one SQL text ([`Statement::then_events`]) handed to the writer, which
    ///   commits it with whatever other writes are queued in one transaction ([`Writer`]);
    ///   answered once that commit returned.
    async fn write_row(
        &self,
        entry: Statement<'_>,
        provider: &str,
        reference: &str,
        events: &[NewEvent],
    ) -> Written {
        let result = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => {
                let statement = entry.then_events(self.sql.now, provider, reference, events);
                match &self.writer {
                    Some(writer) => writer.write(statement.into_owned()).await,
                    None => unreachable!("a SQLite store has a writer"),
                }
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let statement = entry.with_events(self.sql.now, provider, reference, events);
                async {
                    let row = statement.query().fetch_optional(pool).await?;
                    row.as_ref().map(decode_entry).transpose()
                }
                .await
            }
        };
        match result {
            Ok(entry) => Ok(entry),
            Err(error) => Err(self.target.named(error).await),
        }
    }

    /// The entry of (provider, reference) and the database's clock.
    pub(crate) async fn read(
        &self,
        provider: Provider,
        reference: &MerchantReference,
    ) -> Result<Option<(Entry, i64)>, JournalError> {
        on_pool!(self, pool => {
            let row = sqlx::query(&self.sql.select_entry)
                .bind(provider.as_str())
                .bind(reference.as_str())
                .fetch_optional(pool)
                .await?;
            row.map(|row| Ok((decode_entry(&row)?, row.try_get::<i64, _>("now_ms")?)))
                .transpose()
        })
    }

    /// Entries whose outcome is unknown or whose sender's lease lapsed, oldest first.
    pub(crate) async fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        self.list(&self.sql.select_unresolved).await
    }

    /// [`Store::unresolved`], row by row: a row that cannot be read is its key (provider and
    /// merchant reference as stored) and the error, and does not hide the others.
    pub(crate) async fn unresolved_rows(&self) -> Result<Vec<Listed>, JournalError> {
        self.rows(&self.sql.select_unresolved).await
    }

    /// [`Store::pending`], row by row, as [`Store::unresolved_rows`].
    pub(crate) async fn pending_rows(&self) -> Result<Vec<Listed>, JournalError> {
        self.rows(&self.sql.select_pending).await
    }

    /// The listing of `sql`, row by row.
    async fn rows(&self, sql: &str) -> Result<Vec<Listed>, JournalError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|row| {
                    decode_entry(row).map_err(|error| {
                        let key = |column| {
                            get::<String, _>(row, column).unwrap_or_else(|_| "?".to_owned())
                        };
                        Box::new(Unreadable {
                            provider: key("provider"),
                            merchant_reference: key("merchant_reference"),
                            error,
                        })
                    })
                })
                .collect())
        })
    }

    /// Applied entries whose provider status is pending, oldest first.
    pub(crate) async fn pending(&self) -> Result<Vec<Entry>, JournalError> {
        self.list(&self.sql.select_pending).await
    }

    /// Applied entries whose provider status is failed, oldest first.
    pub(crate) async fn failed_after_applied(&self) -> Result<Vec<Entry>, JournalError> {
        self.list(&self.sql.select_failed).await
    }

    /// Every entry of `provider` on `order_id`, oldest first.
    pub(crate) async fn order_entries(
        &self,
        provider: Provider,
        order_id: &str,
    ) -> Result<Vec<Entry>, JournalError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(&self.sql.select_order)
                .bind(provider.as_str())
                .bind(order_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode_entry).collect()
        })
    }

    async fn list(&self, sql: &str) -> Result<Vec<Entry>, JournalError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(decode_entry).collect()
        })
    }

    /// The events of (provider, reference), oldest first.
    pub(crate) async fn history(
        &self,
        provider: Provider,
        reference: &MerchantReference,
    ) -> Result<Vec<Event>, JournalError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(&self.sql.select_history)
                .bind(provider.as_str())
                .bind(reference.as_str())
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode_event).collect()
        })
    }
}

#[cfg(feature = "postgres")]
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn corrupt(what: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt(what.to_string())
}

/// The value of `column`; a value that cannot be decoded (a text column outside its list, an
/// integer out of range) is [`JournalError::Corrupt`].
fn get<'r, T, R>(row: &'r R, column: &'static str) -> Result<T, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get::<T, _>(column).map_err(|error| match error {
        sqlx::Error::ColumnDecode { index, source } => corrupt(format!("{index}: {source}")),
        error => JournalError::Database(error),
    })
}

fn to_u32(value: i64, column: &str) -> Result<u32, JournalError> {
    u32::try_from(value).map_err(|_| corrupt(format!("{column} = {value} is out of range")))
}

fn to_u16(value: i64, column: &str) -> Result<u16, JournalError> {
    u16::try_from(value).map_err(|_| corrupt(format!("{column} = {value} is out of range")))
}

/// Reads an entry from a row of either backend.
fn decode_entry<R>(row: &R) -> Result<Entry, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> EntryState: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> StatusColumn: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> SettledBy: Decode<'r, R::Database> + Type<R::Database>,
{
    let provider: Provider = get::<String, _>(row, "provider")?
        .parse()
        .map_err(corrupt)?;
    let reference =
        MerchantReference::new(get::<String, _>(row, "merchant_reference")?).map_err(corrupt)?;
    let request: RefundRequest =
        serde_json::from_str(&get::<String, _>(row, "request")?).map_err(corrupt)?;
    let currency: String = get(row, "currency")?;
    let money = |column: &'static str| -> Result<Option<Money>, JournalError> {
        get::<Option<String>, _>(row, column)?
            .map(|amount| Money::parse(&amount, &currency).map_err(corrupt))
            .transpose()
    };
    let text = |column: &'static str| -> Result<Option<String>, JournalError> {
        Ok(get::<Option<String>, _>(row, column)?.map(unescape))
    };
    let lease = match (
        text("lease_owner")?,
        get::<Option<i64>, _>(row, "lease_expires_at_ms")?,
    ) {
        (Some(owner), Some(expires_at_ms)) => Some(Lease {
            owner,
            expires_at_ms,
        }),
        _ => None,
    };
    Ok(Entry {
        provider,
        merchant_reference: reference,
        fingerprint: get(row, "fingerprint")?,
        request,
        state: get(row, "state")?,
        attempts: to_u32(get(row, "attempts")?, "attempts")?,
        ambiguous: get(row, "ambiguous")?,
        lease,
        provider_refund_id: text("provider_refund_id")?,
        refund_status: get::<Option<StatusColumn>, _>(row, "refund_status")?.map(Into::into),
        amount: money("amount")?,
        refunded_total: money("refunded_total")?,
        captured_total: money("captured_total")?,
        already_applied: get(row, "already_applied")?,
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: text("error_kind")?,
        error_message: text("error_message")?,
        unresolved_reason: text("unresolved_reason")?,
        settled_by: get(row, "settled_by")?,
        wire_ms: get(row, "wire_ms")?,
        created_at_ms: get(row, "created_at_ms")?,
        updated_at_ms: get(row, "updated_at_ms")?,
        settled_at_ms: get(row, "settled_at_ms")?,
        attempt_at_ms: get(row, "attempt_at_ms")?,
        attempt_deadline_ms: get(row, "attempt_deadline_ms")?,
        version: get(row, "version")?,
    })
}

/// Reads an event from a row of either backend.
fn decode_event<R>(row: &R) -> Result<Event, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> EventKind: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> OutcomeColumn: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Event {
        id: get(row, "id")?,
        provider: get::<String, _>(row, "provider")?
            .parse()
            .map_err(corrupt)?,
        merchant_reference: MerchantReference::new(get::<String, _>(row, "merchant_reference")?)
            .map_err(corrupt)?,
        at_ms: get(row, "at_ms")?,
        kind: get(row, "kind")?,
        attempt: get::<Option<i64>, _>(row, "attempt")?
            .map(|a| to_u32(a, "attempt"))
            .transpose()?,
        owner: get::<Option<String>, _>(row, "owner")?.map(unescape),
        outcome: get::<Option<OutcomeColumn>, _>(row, "outcome")?.map(Into::into),
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: get::<Option<String>, _>(row, "error_kind")?.map(unescape),
        detail: get::<Option<String>, _>(row, "detail")?.map(unescape),
        elapsed_ms: get(row, "elapsed_ms")?,
    })
}

#[cfg(all(test, feature = "sqlite"))]
#[allow(irrefutable_let_patterns)] // with the `sqlite` feature alone, a pool is SQLite's
mod tests {
    use super::*;
    use crate::fingerprint::canonical_json;
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    fn request(reference: &str, description_len: usize) -> RefundRequest {
        RefundRequest::new(
            Provider::Moyasar,
            "ORD-FULL",
            Money::parse("1.00", "SAR").unwrap(),
            MerchantReference::new(reference).unwrap(),
        )
        .with_description("x".repeat(description_len))
    }

    fn resolve_not_applied(entry: &Entry) -> Write {
        crate::machine::resolve(
            entry,
            crate::machine::Transition::ResolvedNotApplied,
            "test",
        )
        .unwrap()
    }

    async fn insert(store: &Store, request: &RefundRequest) -> Result<Option<Entry>, JournalError> {
        store
            .insert(request, &canonical_json(request), "fp", "me/1", 60_000)
            .await
    }

    /// SQLite's "database or disk is full" (`SQLITE_FULL`, here from `PRAGMA max_page_count`)
    /// while a statement needs a new page: the write fails and is rolled back whole (SQLite
    /// undoes the statement, the journal the rest). Once there is room again, the next write
    /// on the same connection works.
    #[tokio::test]
    async fn a_full_sqlite_disk_fails_one_write_and_the_next_works_once_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        // One connection: the one that failed is the one that must work again.
        let database = Database::sqlite(dir.path().join("journal.db")).max_connections(1);
        let store = Store::open(&database).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else {
            unreachable!("a SQLite store")
        };
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {}", pages + 16))
            .execute(pool)
            .await
            .unwrap();

        let mut written = 0;
        let error = loop {
            assert!(written < 100, "the database never filled up");
            match insert(&store, &request(&format!("RF-FULL-{written}"), 6_000)).await {
                Ok(Some(_)) => written += 1,
                Ok(None) => unreachable!("a new reference"),
                Err(error) => break error,
            }
        };
        let JournalError::Database(sqlx::Error::Database(full)) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(full.code().as_deref(), Some("13"), "SQLITE_FULL: {full}");
        assert!(written > 0, "some writes fitted before the disk was full");

        // The disk has room again.
        sqlx::query("PRAGMA max_page_count = 1073741823")
            .execute(pool)
            .await
            .unwrap();
        let entry = insert(&store, &request("RF-ROOM", 10))
            .await
            .expect("the next write works")
            .expect("a new entry");
        assert_eq!(entry.merchant_reference.as_str(), "RF-ROOM");
        // The failed write left nothing behind; every earlier one is there.
        let failed = MerchantReference::new(format!("RF-FULL-{written}")).unwrap();
        assert!(
            store
                .read(Provider::Moyasar, &failed)
                .await
                .unwrap()
                .is_none()
        );
        let earlier = MerchantReference::new(format!("RF-FULL-{}", written - 1)).unwrap();
        assert!(
            store
                .read(Provider::Moyasar, &earlier)
                .await
                .unwrap()
                .is_some()
        );
        // And a write of an existing entry too.
        let (entry, _) = store
            .read(Provider::Moyasar, &earlier)
            .await
            .unwrap()
            .unwrap();
        let write = resolve_not_applied(&entry);
        assert!(store.write(entry.version, &write).await.unwrap().is_some());
    }

    /// A commit that fails (SQLite rolls the transaction back, as it does when the disk fills
    /// up while the commit writes): that write fails; the next one, on the same connection,
    /// works once the commit can succeed again.
    #[tokio::test]
    async fn a_failed_sqlite_commit_fails_one_write_and_the_next_works() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let dir = tempfile::tempdir().unwrap();
        for database in [
            Database::sqlite(dir.path().join("journal.db")).max_connections(1),
            Database::sqlite_in_memory(),
        ] {
            let store = Store::open(&database).await.unwrap();
            let Pool::Sqlite(pool) = &store.pool else {
                unreachable!("a SQLite store")
            };
            // The pool's one connection refuses every commit while `full` is set.
            let full = Arc::new(AtomicBool::new(true));
            {
                let mut conn = pool.acquire().await.unwrap();
                let mut handle = conn.lock_handle().await.unwrap();
                let full = Arc::clone(&full);
                handle.set_commit_hook(move || !full.load(Ordering::SeqCst));
            }

            let error = insert(&store, &request("RF-COMMIT-1", 10))
                .await
                .expect_err("the commit fails");
            assert!(
                error.to_string().contains("constraint failed"),
                "{database:?}: {error}"
            );
            full.store(false, Ordering::SeqCst);
            for i in 1..=3 {
                let entry = insert(&store, &request(&format!("RF-COMMIT-{i}"), 10))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{database:?}: write {i} after the failed commit: {e}")
                    })
                    .expect("a new entry");
                assert_eq!(entry.attempts, 1);
                let write = resolve_not_applied(&entry);
                assert!(store.write(entry.version, &write).await.unwrap().is_some());
            }
            store.close().await;
        }
    }

    /// The pool of a SQLite store.
    fn sqlite_pool(store: &Store) -> &SqlitePool {
        let Pool::Sqlite(pool) = &store.pool else {
            unreachable!("a SQLite store")
        };
        pool
    }

    /// A SQLite store on a file of its own, with ONE connection (the writer's batches and the
    /// test's statements meet on it), and a count of the transactions it commits (SQLite's
    /// commit hook: a commit the database makes, not one the journal counts).
    async fn counted_store(dir: &std::path::Path) -> (Store, Arc<AtomicUsize>) {
        let store = Store::open(&Database::sqlite(dir.join("journal.db")).max_connections(1))
            .await
            .unwrap();
        let commits = Arc::new(AtomicUsize::new(0));
        {
            let mut conn = sqlite_pool(&store).acquire().await.unwrap();
            let mut handle = conn.lock_handle().await.unwrap();
            let commits = Arc::clone(&commits);
            handle.set_commit_hook(move || {
                commits.fetch_add(1, Ordering::SeqCst);
                true
            });
        }
        (store, commits)
    }

    /// A write for the writer, as [`Store::insert`] makes it, and where it is answered.
    fn insert_job(store: &Store, request: &RefundRequest) -> (Job, oneshot::Receiver<Written>) {
        let canonical = canonical_json(request);
        let intent = [crate::machine::intent(1, "me/1", None)];
        let statement = store
            .insert_entry(request, &canonical, "fp", "me/1", 60_000)
            .then_events(
                store.sql.now,
                request.provider.as_str(),
                request.merchant_reference.as_str(),
                &intent,
            )
            .into_owned();
        let (reply, answer) = oneshot::channel();
        (Job { statement, reply }, answer)
    }

    /// A write for the writer, as [`Store::write`] makes it.
    fn update_job(
        store: &Store,
        expected: i64,
        write: &Write,
    ) -> (Job, oneshot::Receiver<Written>) {
        let statement = Statement::update(store.sql.now, write, expected)
            .then_events(
                store.sql.now,
                write.next.provider.as_str(),
                write.next.merchant_reference.as_str(),
                &write.events,
            )
            .into_owned();
        let (reply, answer) = oneshot::channel();
        (Job { statement, reply }, answer)
    }

    fn moyasar(reference: &str) -> RefundRequest {
        request(reference, 10)
    }

    fn afterpay(reference: &str, order: &str) -> RefundRequest {
        RefundRequest::new(
            Provider::AfterPay,
            order,
            Money::parse("1.00", "EUR").unwrap(),
            MerchantReference::new(reference).unwrap(),
        )
    }

    async fn history_len(store: &Store, provider: Provider, reference: &str) -> usize {
        store
            .history(provider, &MerchantReference::new(reference).unwrap())
            .await
            .unwrap()
            .len()
    }

    async fn exists(store: &Store, provider: Provider, reference: &str) -> bool {
        store
            .read(provider, &MerchantReference::new(reference).unwrap())
            .await
            .unwrap()
            .is_some()
    }

    /// One batch of seven writes is ONE commit; in it, a write a trigger refuses and a write
    /// the per-order lease refuses each get their error (the transaction is rolled back, the
    /// others run again), a new entry whose reference exists and an update whose version no
    /// longer matches are answered `None`, and none of them spoils the three others, which are
    /// written with their events. Sent together, the first failure fails the command (which
    /// write is not known): the batch runs again one write per command, as the writer does.
    #[tokio::test]
    async fn one_batch_is_one_commit_and_a_refused_write_spoils_none_of_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (store, commits) = counted_store(dir.path()).await;
        let pool = sqlite_pool(&store);
        insert(&store, &moyasar("RF-B-3")).await.unwrap().unwrap();
        insert(&store, &afterpay("RF-AP-1", "ORD-AP"))
            .await
            .unwrap()
            .unwrap();
        let (held, _) = store
            .read(
                Provider::Moyasar,
                &MerchantReference::new("RF-B-3").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON refund_journal_entries FOR EACH ROW \
             WHEN NEW.merchant_reference = 'RF-B-2' \
             BEGIN SELECT RAISE(ABORT, 'injected refusal'); END;",
        )
        .execute(pool)
        .await
        .unwrap();
        commits.store(0, Ordering::SeqCst);

        let stale = resolve_not_applied(&held);
        let mut jobs = Vec::new();
        let mut answers = Vec::new();
        for (job, answer) in [
            insert_job(&store, &moyasar("RF-B-0")),
            insert_job(&store, &moyasar("RF-B-1")),
            insert_job(&store, &moyasar("RF-B-2")),
            insert_job(&store, &moyasar("RF-B-3")),
            insert_job(&store, &afterpay("RF-AP-2", "ORD-AP")),
            update_job(&store, held.version + 7, &stale),
            insert_job(&store, &moyasar("RF-B-4")),
        ] {
            jobs.push(job);
            answers.push(answer);
        }
        // Each failure rolls the transaction back and the others run again: four
        // transactions, one commit.
        let mut together = MAX_TOGETHER;
        let mut transactions = 0;
        while !jobs.is_empty() {
            let before = jobs.len();
            jobs = commit_batch(pool, &mut None, jobs, together).await;
            if together > 1 {
                assert_eq!(jobs.len(), before, "together, none answered: all run again");
            }
            together = 1;
            transactions += 1;
        }
        assert_eq!(
            transactions, 4,
            "together, then one per write: two failures, then the commit"
        );
        let mut answers = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().unwrap());
        for reference in ["RF-B-0", "RF-B-1"] {
            let entry = answers.next().unwrap().unwrap().expect("written");
            assert_eq!(entry.merchant_reference.as_str(), reference);
        }
        let refused = answers
            .next()
            .unwrap()
            .expect_err("the trigger refuses RF-B-2");
        assert!(
            refused.to_string().contains("injected refusal"),
            "{refused}"
        );
        assert!(answers.next().unwrap().unwrap().is_none(), "RF-B-3 exists");
        let busy = answers
            .next()
            .unwrap()
            .expect_err("the order lease refuses RF-AP-2");
        assert!(is_order_lease_violation(&busy), "{busy:?}");
        assert!(
            answers.next().unwrap().unwrap().is_none(),
            "a stale version"
        );
        let entry = answers.next().unwrap().unwrap().expect("written");
        assert_eq!(entry.merchant_reference.as_str(), "RF-B-4");
        assert_eq!(
            commits.load(Ordering::SeqCst),
            1,
            "one commit for the batch"
        );

        for reference in ["RF-B-0", "RF-B-1", "RF-B-4"] {
            assert_eq!(history_len(&store, Provider::Moyasar, reference).await, 1);
        }
        assert!(!exists(&store, Provider::Moyasar, "RF-B-2").await);
        assert_eq!(history_len(&store, Provider::Moyasar, "RF-B-2").await, 0);
        assert!(!exists(&store, Provider::AfterPay, "RF-AP-2").await);
        let (after, _) = store
            .read(
                Provider::Moyasar,
                &MerchantReference::new("RF-B-3").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.version, held.version, "the stale write wrote nothing");
        assert_eq!(after.state, EntryState::InFlight);
        assert_eq!(history_len(&store, Provider::Moyasar, "RF-B-3").await, 1);
        store.close().await;
    }

    /// A write whose failure makes SQLite throw the whole transaction away (a trigger's
    /// `RAISE(ROLLBACK)`, as SQLite itself does on a full disk or an I/O error) fails alone: the
    /// writes before it in the batch are lost with the transaction and run again, with the
    /// rest, in the next one; every one of them is written.
    #[tokio::test]
    async fn a_write_that_throws_the_transaction_away_fails_alone_and_the_others_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let (store, commits) = counted_store(dir.path()).await;
        let pool = sqlite_pool(&store);
        sqlx::query(
            "CREATE TRIGGER lose BEFORE INSERT ON refund_journal_events FOR EACH ROW \
             WHEN NEW.merchant_reference = 'RF-R-2' \
             BEGIN SELECT RAISE(ROLLBACK, 'injected rollback'); END;",
        )
        .execute(pool)
        .await
        .unwrap();
        commits.store(0, Ordering::SeqCst);
        let (jobs, answers): (Vec<Job>, Vec<_>) = (0..5)
            .map(|i| insert_job(&store, &moyasar(&format!("RF-R-{i}"))))
            .unzip();

        let again = commit_batch(pool, &mut None, jobs, MAX_TOGETHER).await;
        assert_eq!(again.len(), 5, "together: which write failed is not known");
        let again = commit_batch(pool, &mut None, again, 1).await;
        assert_eq!(
            again.len(),
            4,
            "the two before the failure and the two after run again"
        );
        assert_eq!(commits.load(Ordering::SeqCst), 0, "nothing committed yet");
        assert!(commit_batch(pool, &mut None, again, 1).await.is_empty());
        assert_eq!(commits.load(Ordering::SeqCst), 1);
        for (i, mut answer) in answers.into_iter().enumerate() {
            let reference = format!("RF-R-{i}");
            match answer.try_recv().unwrap() {
                Err(error) if i == 2 => {
                    assert!(error.to_string().contains("injected rollback"), "{error}");
                    assert!(!exists(&store, Provider::Moyasar, &reference).await);
                }
                Ok(Some(entry)) if i != 2 => {
                    assert_eq!(entry.merchant_reference.as_str(), reference);
                    assert_eq!(history_len(&store, Provider::Moyasar, &reference).await, 1);
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
        store.close().await;
    }

    /// A failed COMMIT fails every write of its batch, each with the commit's error (message
    /// and code alike), and none of them is written; the next batch, on the same connection,
    /// commits.
    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_its_batch_and_the_next_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&Database::sqlite(dir.path().join("journal.db")).max_connections(1))
                .await
                .unwrap();
        let pool = sqlite_pool(&store);
        let full = Arc::new(AtomicBool::new(true));
        {
            let mut conn = pool.acquire().await.unwrap();
            let mut handle = conn.lock_handle().await.unwrap();
            let full = Arc::clone(&full);
            handle.set_commit_hook(move || !full.load(Ordering::SeqCst));
        }
        let requests: Vec<RefundRequest> = (0..3).map(|i| moyasar(&format!("RF-C-{i}"))).collect();
        let (jobs, answers): (Vec<Job>, Vec<_>) =
            requests.iter().map(|r| insert_job(&store, r)).unzip();
        assert!(
            commit_batch(pool, &mut None, jobs, MAX_TOGETHER)
                .await
                .is_empty()
        );
        let mut codes = BTreeSet::new();
        for mut answer in answers {
            let error = answer.try_recv().unwrap().expect_err("the commit fails");
            assert!(error.to_string().contains("constraint failed"), "{error}");
            let JournalError::Database(sqlx::Error::Database(db)) = &error else {
                panic!("{error:?}");
            };
            codes.insert(db.code().map(Cow::into_owned));
        }
        assert_eq!(codes.len(), 1, "one error, copied: {codes:?}");
        for request in &requests {
            assert!(
                !exists(
                    &store,
                    Provider::Moyasar,
                    request.merchant_reference.as_str()
                )
                .await
            );
        }

        full.store(false, Ordering::SeqCst);
        let (jobs, answers): (Vec<Job>, Vec<_>) =
            requests.iter().map(|r| insert_job(&store, r)).unzip();
        assert!(
            commit_batch(pool, &mut None, jobs, MAX_TOGETHER)
                .await
                .is_empty()
        );
        for mut answer in answers {
            answer.try_recv().unwrap().unwrap().expect("written");
        }
        for request in &requests {
            assert!(
                exists(
                    &store,
                    Provider::Moyasar,
                    request.merchant_reference.as_str()
                )
                .await
            );
        }
        store.close().await;
    }

    /// 32 writes at once: each caller is answered only once its write is committed (another
    /// pool, as another process would, reads it at once), they share commits (fewer commits
    /// than writes: the writer took what was queued), and every entry has its event.
    #[tokio::test]
    async fn concurrent_writes_share_commits_and_each_is_committed_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let (store, commits) = counted_store(dir.path()).await;
        let store = Arc::new(store);
        let other = Arc::new(
            Store::open(&Database::sqlite(dir.path().join("journal.db")))
                .await
                .unwrap(),
        );
        commits.store(0, Ordering::SeqCst);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let (store, other) = (Arc::clone(&store), Arc::clone(&other));
            tasks.spawn(async move {
                let request = moyasar(&format!("RF-32-{i}"));
                let entry = insert(&store, &request).await.unwrap().expect("written");
                assert_eq!(entry.merchant_reference, request.merchant_reference);
                // Answered: committed, for every connection.
                let (seen, _) = other
                    .read(Provider::Moyasar, &request.merchant_reference)
                    .await
                    .unwrap()
                    .expect("committed before the answer");
                assert_eq!(seen.version, entry.version);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let commits = commits.load(Ordering::SeqCst);
        assert!((1..32).contains(&commits), "32 writes in {commits} commits");
        for i in 0..32 {
            assert_eq!(
                history_len(&other, Provider::Moyasar, &format!("RF-32-{i}")).await,
                1
            );
        }
        // Two writers on one file (as two processes): each one's writer keeps or gives back
        // its connection between batches, and holds no lock while idle.
        for round in 0..3 {
            insert(&other, &moyasar(&format!("RF-OTHER-{round}")))
                .await
                .unwrap()
                .expect("the other writer writes");
            insert(&store, &moyasar(&format!("RF-AGAIN-{round}")))
                .await
                .unwrap()
                .expect("and this one again");
        }
        store.close().await;
        other.close().await;
    }

    /// A caller that stops waiting while its write is queued writes nothing; one that stops
    /// once its batch started has it written all the same (it is committed with the batch).
    /// Another connection holds the write lock meanwhile, so that the writer waits in a batch
    /// (on `BEGIN IMMEDIATE`, within the busy limit) while the test queues and drops.
    #[tokio::test]
    async fn a_caller_that_stops_waiting_while_queued_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let store = Store::open(&Database::sqlite(&path)).await.unwrap();
        let mut lock = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
            "sqlite://{}",
            path.display()
        ))
        .await
        .unwrap();

        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut lock)
            .await
            .unwrap();
        let blocker = moyasar("RF-BLOCKER");
        let mut waiting = Box::pin(insert(&store, &blocker));
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        taken_by_the_writer(&store).await;
        // Queued behind the blocked batch (the first poll hands the write to the queue), then
        // dropped before the writer took it.
        let queued = moyasar("RF-GONE");
        let mut call = Box::pin(insert(&store, &queued));
        assert!(futures_poll_once(call.as_mut()).await.is_none());
        drop(call);
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        waiting.await.unwrap().expect("the blocker is written");
        insert(&store, &moyasar("RF-NEXT")).await.unwrap().unwrap();
        assert!(!exists(&store, Provider::Moyasar, "RF-GONE").await);
        assert!(exists(&store, Provider::Moyasar, "RF-NEXT").await);

        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut lock)
            .await
            .unwrap();
        let taken = moyasar("RF-TAKEN");
        let mut call = Box::pin(insert(&store, &taken));
        assert!(futures_poll_once(call.as_mut()).await.is_none());
        // The writer took it into a batch, which waits for the lock.
        taken_by_the_writer(&store).await;
        drop(call);
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        insert(&store, &moyasar("RF-AFTER")).await.unwrap().unwrap();
        assert!(exists(&store, Provider::Moyasar, "RF-TAKEN").await);
        store.close().await;
    }

    /// Waits until SQLite's writer has taken every queued write into a batch.
    async fn taken_by_the_writer(store: &Store) {
        let queue = &store.writer.as_ref().expect("a SQLite store").queue;
        tokio::time::timeout(Duration::from_secs(5), async {
            while queue.capacity() < MAX_QUEUED {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the writer takes what is queued");
    }

    /// The writes of one batch that share their SQL text go to SQLite in one command per chunk
    /// of a power of two (here five new entries in a chunk of four and one of one, two updates
    /// of one entry in a chunk of two: three commands, three texts prepared), and each write
    /// gets its own row back, or none when it wrote nothing, in the batch's order.
    #[tokio::test]
    async fn writes_that_share_their_text_go_together_and_each_gets_its_own_row() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&Database::sqlite(dir.path().join("journal.db")).max_connections(1))
                .await
                .unwrap();
        insert(&store, &moyasar("RF-T-OLD")).await.unwrap().unwrap();
        let held = insert(&store, &moyasar("RF-T-UPD")).await.unwrap().unwrap();
        let settle = resolve_not_applied(&held);
        let (batch, _answers): (Vec<Job>, Vec<_>) = [
            insert_job(&store, &moyasar("RF-T-0")),
            update_job(&store, held.version, &settle),
            insert_job(&store, &moyasar("RF-T-1")),
            insert_job(&store, &moyasar("RF-T-OLD")),
            // The same version again: the first update moved it on.
            update_job(&store, held.version, &settle),
            insert_job(&store, &moyasar("RF-T-2")),
            insert_job(&store, &moyasar("RF-T-3")),
        ]
        .into_iter()
        .unzip();

        let mut conn = sqlite_pool(&store).acquire().await.unwrap();
        sqlx::Connection::clear_cached_statements(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        let written = match run_together(&mut conn, &batch, MAX_TOGETHER).await {
            Ok(written) => written,
            Err(failed) => panic!("{:?}", failed.error),
        };
        assert_eq!(
            sqlx::Connection::cached_statements_size(&*conn),
            3,
            "one text per command"
        );
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        drop(conn);

        let found: Vec<Option<(String, i64, EntryState)>> = written
            .into_iter()
            .map(|entry| {
                entry.map(|entry| {
                    (
                        entry.merchant_reference.as_str().to_owned(),
                        entry.version,
                        entry.state,
                    )
                })
            })
            .collect();
        let new = |reference: &str| Some((reference.to_owned(), 1, EntryState::InFlight));
        assert_eq!(
            found,
            [
                new("RF-T-0"),
                Some((
                    "RF-T-UPD".to_owned(),
                    held.version + 1,
                    EntryState::NotApplied
                )),
                new("RF-T-1"),
                None,
                None,
                new("RF-T-2"),
                new("RF-T-3"),
            ]
        );
        for reference in ["RF-T-0", "RF-T-1", "RF-T-2", "RF-T-3", "RF-T-OLD"] {
            assert_eq!(history_len(&store, Provider::Moyasar, reference).await, 1);
        }
        assert_eq!(
            history_len(&store, Provider::Moyasar, "RF-T-UPD").await,
            1 + settle.events.len(),
            "one update wrote its events"
        );
        store.close().await;
    }

    /// A statement's parameters renumbered after another's: every `$n`, of one digit or
    /// several, and nothing else.
    #[test]
    fn a_statement_shifted_renumbers_its_parameters_and_nothing_else() {
        let statement = Statement {
            sql: "SELECT $1, $12 FROM t WHERE a = $3 AND b = 'x'".to_owned(),
            binds: Vec::new(),
        };
        assert_eq!(
            statement.sql_shifted(9),
            "SELECT $10, $21 FROM t WHERE a = $12 AND b = 'x'"
        );
        assert_eq!(statement.sql_shifted(0), statement.sql);
    }

    /// SQLite's writer has a thread and a runtime of its own: a journal opened on one runtime
    /// writes on another once the first is gone.
    #[test]
    fn a_sqlite_store_writes_after_the_runtime_that_opened_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let store = runtime().block_on(async {
            let store = Store::open(&Database::sqlite(dir.path().join("journal.db")))
                .await
                .unwrap();
            insert(&store, &moyasar("RF-FIRST")).await.unwrap().unwrap();
            store
        });
        runtime().block_on(async {
            insert(&store, &moyasar("RF-LATER"))
                .await
                .unwrap()
                .expect("written");
            assert!(exists(&store, Provider::Moyasar, "RF-LATER").await);
            store.close().await;
        });
    }

    /// Polls `future` once: its output if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    /// Once the journal closes, the writer ends: a write fails (the pool is closed)
    /// instead of waiting.
    #[tokio::test]
    async fn a_write_after_close_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Database::sqlite(dir.path().join("journal.db")))
            .await
            .unwrap();
        insert(&store, &moyasar("RF-OPEN")).await.unwrap().unwrap();
        store.close().await;
        let error = insert(&store, &moyasar("RF-CLOSED"))
            .await
            .expect_err("closed");
        assert!(
            matches!(error, JournalError::Database(sqlx::Error::PoolClosed)),
            "{error:?}"
        );
    }

    /// The events of one write are read back in the order the write lists them, on both
    /// backends: on PostgreSQL they go in with the entry's write in one statement, whose
    /// sub-statements run concurrently, so their order rests on the one ordered INSERT.
    #[tokio::test]
    async fn the_events_of_one_write_read_back_in_their_order() {
        let dir = tempfile::tempdir().unwrap();
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut databases = vec![Database::sqlite(dir.path().join("journal.db"))];
        #[cfg(feature = "postgres")]
        let schema = format!("unit_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        #[cfg(feature = "postgres")]
        databases.push(
            Database::postgres(std::env::var("REFUNDS_JOURNAL_PG_URL").expect(
                "REFUNDS_JOURNAL_PG_URL: start a throwaway PostgreSQL (eval \"$(scripts/pg-throwaway start)\")",
            ))
            .schema(&schema),
        );
        for database in databases {
            let store = Store::open(&database).await.unwrap();
            let entry = insert(&store, &moyasar("RF-ORDER")).await.unwrap().unwrap();
            let mut write = resolve_not_applied(&entry);
            let kinds = [
                EventKind::Reconcile,
                EventKind::Read,
                EventKind::Status,
                EventKind::Manual,
            ];
            let written: Vec<String> = (0..40).map(|i| format!("event {i:02}")).collect();
            write.events = written
                .iter()
                .enumerate()
                .map(|(i, detail)| NewEvent {
                    detail: Some(detail.clone()),
                    ..NewEvent::new(kinds[(i * 7) % kinds.len()])
                })
                .collect();
            // Not in the order a sort of the text would give either.
            write.events.reverse();
            let after = store
                .write(entry.version, &write)
                .await
                .unwrap()
                .expect("written");
            assert_eq!(after.version, entry.version + 1);
            let history = store
                .history(Provider::Moyasar, &entry.merchant_reference)
                .await
                .unwrap();
            let details: Vec<&str> = history[1..]
                .iter()
                .map(|event| event.detail.as_deref().unwrap_or(""))
                .collect();
            let expected: Vec<&str> = written.iter().rev().map(String::as_str).collect();
            assert_eq!(details, expected, "{database:?}");
            assert!(history.windows(2).all(|pair| pair[0].id < pair[1].id));
            #[cfg(feature = "postgres")]
            if let Pool::Postgres(pool) = &store.pool {
                sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            store.close().await;
        }
    }

    /// (PostgreSQL) An entry's UPDATE keeps using the primary key as the table grows: a
    /// prepared statement's generic plan, made while the table was empty and kept until the
    /// table is analyzed, cannot read every entry of the provider through another index (no
    /// index but the primary key leads with `provider`, migration 5), and the order's
    /// entries are still read through their own index.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn an_entry_update_keeps_to_the_primary_key_as_the_table_grows() {
        let url = std::env::var("REFUNDS_JOURNAL_PG_URL").expect(
            "REFUNDS_JOURNAL_PG_URL: start a throwaway PostgreSQL (eval \"$(scripts/pg-throwaway start)\")",
        );
        let schema = format!("unit_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let store = Store::open(&Database::postgres(url).schema(&schema).max_connections(1))
            .await
            .unwrap();
        let Pool::Postgres(pool) = &store.pool else {
            unreachable!("a PostgreSQL store")
        };
        let mut conn = pool.acquire().await.unwrap();
        // Prepared and run more than five times while the table is empty (PostgreSQL makes a
        // statement's generic plan after its fifth run).
        sqlx::raw_sql(
            "PREPARE entry_update(text, text, bigint) AS UPDATE refund_journal_entries \
             SET version = version + 1 \
             WHERE provider = $1 AND merchant_reference = $2 AND version = $3",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::raw_sql(&format!(
            "PREPARE order_entries(text, text) AS {}",
            store.sql.select_order
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        for _ in 0..8 {
            sqlx::raw_sql(
                "EXECUTE entry_update('afterpay', 'RF-NONE', 1); \
                 EXECUTE order_entries('afterpay', 'ORD-NONE')",
            )
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        // The table grows (settled entries, as a journal in use holds).
        sqlx::raw_sql(
            "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, \
             request, order_id, currency, state, attempts, ambiguous, already_applied, wire_ms, \
             created_at_ms, updated_at_ms, version) \
             SELECT 'afterpay', 'RF-GROW-' || g, 'fp', '{}', 'ORD-' || g, 'EUR', 'applied', 1, \
             false, false, 0, 0, 0, 1 FROM generate_series(1, 5000) AS g",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        // Each prepared statement, as planned now, reads through its index.
        for (execute, index, what) in [
            (
                "EXECUTE entry_update('afterpay', 'RF-GROW-7', 1)",
                "refund_journal_entries_pkey",
                "the entry's UPDATE",
            ),
            (
                "EXECUTE order_entries('afterpay', 'ORD-7')",
                "refund_journal_entries_by_order",
                "an order's entries",
            ),
        ] {
            let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {execute}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(index),
                "{what}: read through another index than {index}:\n{plan}"
            );
        }
        sqlx::raw_sql("DEALLOCATE entry_update; DEALLOCATE order_entries")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(pool)
            .await
            .unwrap();
        store.close().await;
    }

    /// A real full disk, where the test is given a directory on a small file system of its own
    /// (`REFUNDS_JOURNAL_SMALL_FS`, e.g. `mount -t tmpfs -o size=512k tmpfs /mnt/small`, which
    /// needs root): a filler file takes the space, writes fail with "database or disk is full",
    /// and once the filler is gone every connection of the pool writes again.
    #[tokio::test]
    #[ignore = "needs REFUNDS_JOURNAL_SMALL_FS: a directory on a small file system of its own"]
    async fn a_full_disk_fails_writes_until_there_is_room_again() {
        let small = std::env::var("REFUNDS_JOURNAL_SMALL_FS").expect("REFUNDS_JOURNAL_SMALL_FS");
        // Removed at the end, failed or not.
        let dir = tempfile::tempdir_in(small).unwrap();
        let dir = dir.path();
        let store = Store::open(&Database::sqlite(dir.join("journal.db")))
            .await
            .unwrap();
        // Take every byte left, then write until SQLite says the disk is full.
        let filler = dir.join("filler");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&filler).unwrap();
            while file.write_all(&[0u8; 4096]).is_ok() {}
        }
        let mut written = 0;
        let error = loop {
            assert!(written < 10_000, "the disk never filled up");
            match insert(&store, &request(&format!("RF-DISK-{written}"), 3_000)).await {
                Ok(_) => written += 1,
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("disk is full"), "{error:?}");
        std::fs::remove_file(&filler).unwrap();
        // More writes than the pool has connections: each connection writes again.
        for i in 0..12 {
            insert(&store, &request(&format!("RF-ROOM-{i}"), 10))
                .await
                .unwrap_or_else(|e| panic!("write {i} once there is room: {e}"))
                .expect("a new entry");
        }
        store.close().await;
    }

    /// No statement of a write builds a temporary b-tree (`OpenEphemeral` in its program).
    /// SQLite builds one on every run of a statement for each CHECK with an `IN` list of three
    /// values or more (migration 6 wrote them as comparisons) and for a `RETURNING` clause (the
    /// writer reads the row back instead): about a fifth of the writer's time per write. An
    /// entry's INSERT and its UPDATE set every checked column, so these two, their events'
    /// INSERT and the read back are every statement a write runs.
    #[tokio::test]
    async fn no_sqlite_write_builds_a_temporary_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Database::sqlite(dir.path().join("journal.db")))
            .await
            .unwrap();
        let entry = insert(&store, &moyasar("RF-TEMP-1"))
            .await
            .unwrap()
            .expect("a new entry");
        let (insert, _) = insert_job(&store, &moyasar("RF-TEMP-2"));
        let (update, _) = update_job(&store, entry.version, &resolve_not_applied(&entry));
        for job in [insert, update] {
            // The write's statements, one by one: none holds "; " (every value is bound).
            let statements: Vec<&str> = job.statement.sql.split("; ").collect();
            assert_eq!(statements.len(), 3, "the entry, its event, the read back");
            for statement in statements {
                let program: Vec<String> = sqlx::query(&format!("EXPLAIN {statement}"))
                    .fetch_all(sqlite_pool(&store))
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>("opcode"))
                    .collect();
                assert!(
                    program
                        .iter()
                        .any(|op| op == "OpenWrite" || op == "OpenRead"),
                    "{statement}: {program:?}"
                );
                assert!(
                    !program.iter().any(|op| op == "OpenEphemeral"),
                    "{statement} builds a temporary b-tree: {program:?}"
                );
            }
        }
    }

    /// SQLite's query plan of `sql` (its `$n` bound to `binds`), one line per step.
    async fn plan(pool: &SqlitePool, sql: &str, binds: &[&str]) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let query = binds
            .iter()
            .fold(sqlx::query(&explain), |query, bind| query.bind(*bind));
        query
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect()
    }

    /// Migration 4's layout: the indexes are these and no others (no index that no query
    /// reads: each one is changed by the writes of every refund it covers), every look-up and
    /// listing reads its index (none scans a table), and the events' ids take no
    /// `sqlite_sequence` row (`AUTOINCREMENT`: one more page per commit).
    #[tokio::test]
    async fn every_query_reads_an_index_and_no_index_goes_unread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Database::sqlite(dir.path().join("journal.db")))
            .await
            .unwrap();
        let pool = sqlite_pool(&store);
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT tbl_name, name FROM sqlite_schema WHERE type = 'index' \
             AND tbl_name LIKE 'refund_journal_%' ORDER BY tbl_name, name",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let indexes: Vec<(&str, &str)> = indexes
            .iter()
            .map(|(table, name)| (table.as_str(), name.as_str()))
            .collect();
        assert_eq!(
            indexes,
            [
                ("refund_journal_entries", "refund_journal_entries_by_order"),
                ("refund_journal_entries", "refund_journal_entries_failed"),
                ("refund_journal_entries", ORDER_LEASE_INDEX),
                ("refund_journal_entries", "refund_journal_entries_pending"),
                // The primary key (provider, merchant_reference).
                (
                    "refund_journal_entries",
                    "sqlite_autoindex_refund_journal_entries_1"
                ),
                ("refund_journal_events", "refund_journal_events_by_entry"),
            ]
        );

        let update = "UPDATE refund_journal_entries SET version = version + 1 \
                      WHERE provider = $1 AND merchant_reference = $2 AND version = $3";
        let key: &[&str] = &["afterpay", "RF-1"];
        for (what, sql, binds, expected) in [
            (
                "read",
                store.sql.select_entry.as_str(),
                key,
                "SEARCH refund_journal_entries USING INDEX \
                 sqlite_autoindex_refund_journal_entries_1 (provider=? AND merchant_reference=?)",
            ),
            (
                "write",
                update,
                &["afterpay", "RF-1", "1"][..],
                "SEARCH refund_journal_entries USING INDEX \
                 sqlite_autoindex_refund_journal_entries_1 (provider=? AND merchant_reference=?)",
            ),
            (
                "unresolved",
                store.sql.select_unresolved.as_str(),
                &[][..],
                // The partial index holds the rows in flight or unknown, and only them.
                "SCAN refund_journal_entries USING INDEX refund_journal_entries_order_lease",
            ),
            (
                "pending",
                store.sql.select_pending.as_str(),
                &[][..],
                "SEARCH refund_journal_entries USING INDEX refund_journal_entries_pending \
                 (refund_status=?)",
            ),
            (
                "failed",
                store.sql.select_failed.as_str(),
                &[][..],
                "SCAN refund_journal_entries USING INDEX refund_journal_entries_failed",
            ),
            (
                "order",
                store.sql.select_order.as_str(),
                &["afterpay", "ORD-1"][..],
                "SEARCH refund_journal_entries USING INDEX refund_journal_entries_by_order \
                 (provider=? AND order_id=?)",
            ),
            (
                "history",
                store.sql.select_history.as_str(),
                key,
                "SEARCH refund_journal_events USING INDEX refund_journal_events_by_entry \
                 (provider=? AND merchant_reference=?)",
            ),
        ] {
            let steps = plan(pool, sql, binds).await;
            assert_eq!(
                steps.first().map(String::as_str),
                Some(expected),
                "{what}: {steps:?}"
            );
            assert!(
                steps
                    .iter()
                    .all(|step| !step.starts_with("SCAN") || step.contains("INDEX")),
                "{what} scans a table: {steps:?}"
            );
        }

        insert(&store, &afterpay("RF-SEQ", "ORD-SEQ"))
            .await
            .unwrap()
            .unwrap();
        let sequences: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'")
                .fetch_one(pool)
                .await
                .unwrap();
        if sequences > 0 {
            let rows: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'refund_journal_%'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            assert_eq!(rows, 0, "an AUTOINCREMENT counter of the journal's");
        }
        store.close().await;
    }

    /// What a refund costs the disk: its intent and its settling write each commit the pages
    /// they change to the WAL, and each page is one WAL frame. On a new journal (every table
    /// and index one page), the intent changes six (the entry, its key, its order, the lease,
    /// the event and its index) and the settling write four (the entry, the lease, the event
    /// and its index). Before migration 4 it was 14: an index no query read, changed by both,
    /// and the events' `AUTOINCREMENT` counter, changed by both.
    #[tokio::test]
    async fn a_refund_writes_ten_pages_to_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let store = Store::open(&Database::sqlite(&path)).await.unwrap();
        let pool = sqlite_pool(&store);
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .unwrap();
        let wal = dir.path().join("journal.db-wal");
        let frames = || {
            // A WAL file: a 32-byte header, then per frame a 24-byte header and a page.
            let len = i64::try_from(std::fs::metadata(&wal).map_or(0, |m| m.len())).unwrap();
            (len - 32).max(0) / (24 + page_size)
        };
        assert_eq!(frames(), 0);
        let entry = insert(&store, &afterpay("RF-PAGES", "ORD-PAGES"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frames(), 6, "the intent's pages");
        let write = resolve_not_applied(&entry);
        assert!(store.write(entry.version, &write).await.unwrap().is_some());
        assert_eq!(frames(), 10, "the intent's and the settling write's pages");
        store.close().await;
    }
}
