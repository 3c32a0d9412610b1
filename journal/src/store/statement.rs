//! The journal's SQL: the statements of both backends, and the writes built from one list of
//! columns each ([`entry_changes`], [`new_entry`], [`new_event`]), name and value side by side.

use std::borrow::Cow;

use refunds::{Money, RefundRequest};
use sqlx::query::Query;
use sqlx::{Encode, Type};

use crate::entry::{EntryState, SettledBy, outcome_str, status_str};
use crate::machine::{LeaseWrite, NEW_ENTRY, NewEvent, Write};
use crate::text::escape_opt;

/// Every column of an entry, in the order [`decode_entry`](super::rows::decode_entry) reads
/// them by name.
pub(super) const ENTRY_COLUMNS: &str = "provider, merchant_reference, fingerprint, request, currency, state, \
    attempts, ambiguous, lease_owner, lease_expires_at_ms, provider_refund_id, refund_status, \
    amount, refunded_total, captured_total, already_applied, http_status, error_kind, \
    error_message, unresolved_reason, settled_by, wire_ms, created_at_ms, updated_at_ms, \
    settled_at_ms, attempt_at_ms, attempt_deadline_ms, version";

pub(super) const EVENT_COLUMNS: &str = "id, provider, merchant_reference, at_ms, kind, attempt, owner, \
    outcome, http_status, error_kind, detail, elapsed_ms";

/// The statements, with `{now}` replaced for one backend; the writes are built per call
/// ([`Statement`]).
#[derive(Debug)]
pub(super) struct Sql {
    /// The database's clock, for `{now}` in the writes.
    pub(super) now: &'static str,
    pub(super) select_entry: String,
    pub(super) select_unresolved: String,
    pub(super) select_pending: String,
    pub(super) select_failed: String,
    pub(super) select_order: String,
    pub(super) select_history: String,
    pub(super) select_now: String,
}

impl Sql {
    pub(super) fn new(now: &'static str) -> Sql {
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
pub(super) enum Bind<'a> {
    /// Text, stored as given: escape free text first ([`Bind::escaped`]).
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(bool),
}

impl<'a> Bind<'a> {
    /// Text the journal chooses itself (keys, amounts, JSON), stored as it is.
    pub(super) fn text(text: impl Into<Cow<'a, str>>) -> Bind<'a> {
        Bind::Text(Some(text.into()))
    }

    /// A column enum's value (`EntryState::as_str`, ...), or NULL.
    pub(super) fn word(word: Option<&'static str>) -> Bind<'a> {
        Bind::Text(word.map(Cow::Borrowed))
    }

    /// Free text (a provider's, an owner, a reason), stored escaped ([`crate::text`]).
    pub(super) fn escaped(text: Option<&'a str>) -> Bind<'a> {
        Bind::Text(escape_opt(text))
    }

    /// An amount, as an exact decimal string in the entry's currency.
    pub(super) fn money(money: Option<Money>) -> Bind<'a> {
        Bind::Text(money.map(|money| Cow::Owned(money.amount().to_string())))
    }

    pub(super) fn int(value: impl Into<i64>) -> Bind<'a> {
        Bind::Int(Some(value.into()))
    }

    /// `query` with this value bound as its next parameter.
    pub(super) fn onto<'q, DB>(
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

    /// The same value, owning its text (for a write handed to the writer).
    pub(super) fn into_owned(self) -> Bind<'static> {
        match self {
            Bind::Text(text) => Bind::Text(text.map(|text| Cow::Owned(text.into_owned()))),
            Bind::Int(value) => Bind::Int(value),
            Bind::Bool(value) => Bind::Bool(value),
        }
    }
}

/// What a write sets a column to.
#[derive(Debug)]
pub(super) enum Value<'a> {
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
pub(super) type Column<'a> = (&'static str, Value<'a>);

/// The columns an entry's [`Write`] sets, one line each. The lease is set unless kept as read
/// (unchanged since: the write checks the version), and `settled_at_ms` when it settles.
pub(super) fn entry_changes(write: &Write) -> Vec<Column<'_>> {
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
pub(super) fn new_entry<'a>(
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
pub(super) fn new_event<'a>(
    provider: &'a str,
    reference: &'a str,
    event: &'a NewEvent,
) -> Vec<Column<'a>> {
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
pub(super) struct Statement<'a> {
    pub(super) sql: String,
    pub(super) binds: Vec<Bind<'a>>,
}

impl<'a> Statement<'a> {
    /// `$n` for `bind`, the next parameter.
    pub(super) fn param(&mut self, bind: Bind<'a>) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    /// The SQL of `value`.
    pub(super) fn value(&mut self, value: Value<'a>) -> String {
        match value {
            Value::Bind(bind) => self.param(bind),
            Value::Sql(sql) => sql.to_owned(),
            Value::SqlWith(sql, bind) => sql.replace('?', &self.param(bind)),
        }
    }

    /// `INSERT INTO table (columns) VALUES (values) tail`.
    pub(super) fn insert(
        now: &str,
        table: &str,
        columns: Vec<Column<'a>>,
        tail: &str,
    ) -> Statement<'a> {
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
    pub(super) fn update(now: &str, write: &'a Write, expected: i64) -> Statement<'a> {
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
    pub(super) fn query<DB>(&'a self) -> Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
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
    pub(super) fn query_of<DB>(
        &'a self,
        sql: &'a str,
    ) -> Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
    where
        DB: sqlx::Database,
        Option<&'a str>: Encode<'a, DB> + Type<DB>,
        Option<i64>: Encode<'a, DB> + Type<DB>,
        bool: Encode<'a, DB> + Type<DB>,
    {
        self.binds.iter().fold(sqlx::query(sql), Bind::onto)
    }

    /// The same statement, owning its values (for the writer, [`super::writer`]).
    pub(super) fn into_owned(self) -> Statement<'static> {
        Statement {
            sql: self.sql,
            binds: self.binds.into_iter().map(Bind::into_owned).collect(),
        }
    }

    /// (PostgreSQL) This statement (an INSERT or UPDATE of an entry, which may write no row)
    /// returning the entry's row, and the INSERT of `events` on the entry, as ONE statement:
    /// the entry's write in a data-modifying CTE, the events inserted from its row (none when
    /// it returns none: nothing written, as when the version did not match), and the entry's
    /// row as the result. One statement is atomic, both or neither: a lone write needs no
    /// `BEGIN`/`COMMIT` (the writer autocommits it, [`super::postgres_writer`]).
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
    pub(super) fn with_events(
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
    /// binds each write's place when it sends several writes in one command,
    /// [`run_together`](super::sqlite_writer::run_together)).
    #[cfg(feature = "sqlite")]
    pub(super) fn then_events(
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
    pub(super) fn sql_shifted(&self, by: usize) -> String {
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
pub(super) const SQLITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
#[cfg(feature = "postgres")]
pub(super) const POSTGRES_NOW: &str =
    "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
