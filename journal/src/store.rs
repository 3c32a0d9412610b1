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

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (the write lock up front, so concurrent
/// writers queue on the busy timeout instead of failing to upgrade), `BEGIN` on PostgreSQL.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

#[cfg(feature = "sqlite")]
impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

#[cfg(feature = "postgres")]
impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
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
            select_unresolved: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE state = 'unknown' OR (state = 'in_flight' AND \
                 (lease_expires_at_ms IS NULL OR lease_expires_at_ms <= {{now}})) \
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

/// A value a write binds, of a type both backends encode.
#[derive(Debug)]
enum Bind<'a> {
    /// Text, stored as given: escape free text first ([`Bind::escaped`]).
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(bool),
    State(EntryState),
    Status(Option<StatusColumn>),
    SettledBy(Option<SettledBy>),
    Kind(EventKind),
    Outcome(Option<OutcomeColumn>),
}

impl<'a> Bind<'a> {
    /// Text the journal chooses itself (keys, amounts, JSON), stored as it is.
    fn text(text: impl Into<Cow<'a, str>>) -> Bind<'a> {
        Bind::Text(Some(text.into()))
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
        ("state", Bind::State(next.state).into()),
        ("attempts", Bind::int(next.attempts).into()),
        ("ambiguous", Bind::Bool(next.ambiguous).into()),
        (
            "provider_refund_id",
            Bind::escaped(next.provider_refund_id.as_deref()).into(),
        ),
        (
            "refund_status",
            Bind::Status(next.refund_status.map(StatusColumn::from)).into(),
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
        ("settled_by", Bind::SettledBy(next.settled_by).into()),
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
        ("state", Bind::State(NEW_ENTRY).into()),
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
        ("kind", Bind::Kind(event.kind).into()),
        ("attempt", Bind::Int(event.attempt.map(i64::from)).into()),
        ("owner", Bind::escaped(event.owner.as_deref()).into()),
        (
            "outcome",
            Bind::Outcome(event.outcome.map(OutcomeColumn::from)).into(),
        ),
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
             merchant_reference = {reference} AND version = {version} RETURNING {ENTRY_COLUMNS}",
            set.join(", ")
        )
        .replace("{now}", now);
        statement
    }

    /// The query, with every value bound.
    fn query<DB>(&'a self) -> Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
    where
        DB: sqlx::Database,
        Option<&'a str>: Encode<'a, DB> + Type<DB>,
        Option<i64>: Encode<'a, DB> + Type<DB>,
        bool: Encode<'a, DB> + Type<DB>,
        EntryState: Encode<'a, DB> + Type<DB>,
        Option<StatusColumn>: Encode<'a, DB> + Type<DB>,
        Option<SettledBy>: Encode<'a, DB> + Type<DB>,
        EventKind: Encode<'a, DB> + Type<DB>,
        Option<OutcomeColumn>: Encode<'a, DB> + Type<DB>,
    {
        self.binds
            .iter()
            .fold(sqlx::query(&self.sql), |query, bind| match bind {
                Bind::Text(text) => query.bind(text.as_deref()),
                Bind::Int(value) => query.bind(*value),
                Bind::Bool(value) => query.bind(*value),
                Bind::State(state) => query.bind(*state),
                Bind::Status(status) => query.bind(*status),
                Bind::SettledBy(by) => query.bind(*by),
                Bind::Kind(kind) => query.bind(*kind),
                Bind::Outcome(outcome) => query.bind(*outcome),
            })
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
];

/// The unique index of the per-order lease (migration 3).
const ORDER_LEASE_INDEX: &str = "refund_journal_entries_order_lease";

/// Whether `error` is a write refused by the per-order lease: another AfterPay refund on the
/// order is in flight or unknown. PostgreSQL names the index; SQLite names its columns.
fn is_order_lease_violation(error: &JournalError) -> bool {
    let JournalError::Database(sqlx::Error::Database(error)) = error else {
        return false;
    };
    error.is_unique_violation()
        && (error.constraint() == Some(ORDER_LEASE_INDEX)
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
    /// SQLite takes one writer at a time; its busy handler makes a waiting writer sleep (1, 2,
    /// 5, 10.. ms), so this process's writers queue here instead and reach the file one by
    /// one. Other processes on the same file still meet the busy timeout. `None` for
    /// PostgreSQL, whose writers run side by side.
    writers: Option<tokio::sync::Mutex<()>>,
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
                    writers: None,
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
            pool: Pool::Sqlite(pool),
            sql: Sql::new(SQLITE_NOW),
            writers: Some(tokio::sync::Mutex::new(())),
            target: target.clone(),
        })
    }

    /// Waits for this process's turn to write (SQLite only).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writers {
            Some(writers) => Some(writers.lock().await),
            None => None,
        }
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

    /// Closes the pool.
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
        let insert = Statement::insert(
            self.sql.now,
            "refund_journal_entries",
            new_entry(request, canonical, fingerprint, owner, lease_ms),
            &format!(
                " ON CONFLICT (provider, merchant_reference) DO NOTHING RETURNING {ENTRY_COLUMNS}"
            ),
        );
        let intent = crate::machine::intent(1, owner, None);
        let events = [self.event(
            request.provider.as_str(),
            request.merchant_reference.as_str(),
            &intent,
        )];
        self.write_row(&insert, &events)
            .await
            .map_err(|error| order_busy(error, request))
    }

    /// Applies `write` to the entry if its version is still `expected` (nobody wrote since it
    /// was read), with its events, in one transaction. `None` when someone else wrote first.
    pub(crate) async fn write(
        &self,
        expected: i64,
        write: &Write,
    ) -> Result<Option<Entry>, JournalError> {
        let update = Statement::update(self.sql.now, write, expected);
        let provider = write.next.provider.as_str();
        let reference = write.next.merchant_reference.as_str();
        let events: Vec<Statement<'_>> = write
            .events
            .iter()
            .map(|event| self.event(provider, reference, event))
            .collect();
        self.write_row(&update, &events)
            .await
            .map_err(|error| order_busy(error, &write.next.request))
    }

    /// The INSERT of `event` on the entry (provider, reference).
    fn event<'a>(
        &self,
        provider: &'a str,
        reference: &'a str,
        event: &'a NewEvent,
    ) -> Statement<'a> {
        Statement::insert(
            self.sql.now,
            "refund_journal_events",
            new_event(provider, reference, event),
            "",
        )
    }

    /// Runs `entry` (a statement that returns the entry's row, or none) and, when it returns
    /// one, `events`, in one write transaction. `None` (nothing written) when it returns none.
    async fn write_row(
        &self,
        entry: &Statement<'_>,
        events: &[Statement<'_>],
    ) -> Result<Option<Entry>, JournalError> {
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let Some(row) = entry.query().fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry = decode_entry(&row)?;
            for event in events {
                event.query().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Some(entry))
        })
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
}
