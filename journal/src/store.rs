//! The two backends behind one set of statements.
//!
//! Every statement is written once, with `$n` parameters (SQLite reads `$n` as the n-th
//! parameter too) and `{now}` for the database's clock in milliseconds since the Unix epoch,
//! replaced per backend. Each operation's body is written once and compiled for both pools by
//! [`on_pool!`]. Nothing is checked against a database at build time.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use refunds::{ExposeSecret, MerchantReference, Money, Provider, RefundRequest, SecretString};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::entry::{
    Entry, EntryState, Event, EventKind, Lease, SettledBy, outcome_str, parse_outcome,
    parse_status, status_str,
};
use crate::error::JournalError;
use crate::machine::{LeaseWrite, Write};

/// Where a journal keeps its entries.
///
/// - [`Database::sqlite`]: a SQLite file (created when missing), WAL mode, `synchronous=FULL`
///   so that a recorded intent survives a power cut before the request leaves. Several
///   processes on one machine may share the file.
/// - [`Database::sqlite_in_memory`]: a private in-memory SQLite database, gone with the
///   journal (tests, demos).
/// - [`Database::postgres`]: a PostgreSQL database shared by every instance of a service. The
///   journal keeps its tables (and sqlx's `_sqlx_migrations` bookkeeping) in its own schema,
///   `refunds_journal` unless [`Database::schema`] says otherwise, so that they never mix with
///   the application's own migrations.
///
/// Give the journal a SQLite file of its own, for the same reason.
#[derive(Clone)]
pub struct Database {
    kind: Kind,
    max_connections: Option<u32>,
}

#[derive(Clone)]
enum Kind {
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres { url: SecretString, schema: String },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PostgreSQL URL may hold a password: never shown.
        match &self.kind {
            Kind::SqliteFile(path) => write!(f, "Database::sqlite({path:?})"),
            Kind::SqliteMemory => f.write_str("Database::sqlite_in_memory()"),
            Kind::Postgres { schema, .. } => {
                write!(f, "Database::postgres(<url>, schema {schema:?})")
            }
        }
    }
}

/// The default PostgreSQL schema of the journal's tables.
pub const DEFAULT_SCHEMA: &str = "refunds_journal";

impl Database {
    /// A SQLite file, created (with its tables) when missing.
    pub fn sqlite(path: impl Into<PathBuf>) -> Database {
        Database {
            kind: Kind::SqliteFile(path.into()),
            max_connections: None,
        }
    }

    /// A private in-memory SQLite database: it lives as long as the [`Journal`](crate::Journal)
    /// (and its clones), and no other journal sees it.
    pub fn sqlite_in_memory() -> Database {
        Database {
            kind: Kind::SqliteMemory,
            max_connections: None,
        }
    }

    /// A PostgreSQL database by URL (`postgres://user:password@host:5432/db`). The URL is kept
    /// as a secret: it appears in no `Debug` output and is never stored.
    pub fn postgres(url: impl Into<String>) -> Database {
        Database {
            kind: Kind::Postgres {
                url: SecretString::from(url.into()),
                schema: DEFAULT_SCHEMA.to_owned(),
            },
            max_connections: None,
        }
    }

    /// The PostgreSQL schema of the journal's tables (created when missing): lower-case ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 63 characters. Ignored
    /// for SQLite.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Database {
        if let Kind::Postgres {
            schema: current, ..
        } = &mut self.kind
        {
            *current = schema.into();
        }
        self
    }

    /// The most connections the journal opens (default: 10 for PostgreSQL, 4 for a SQLite
    /// file, 1 for an in-memory database, which must stay 1).
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Database {
        self.max_connections = Some(max.max(1));
        self
    }
}

/// The pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (the write lock up front, so concurrent
/// writers queue on the busy timeout instead of failing to upgrade), `BEGIN` on PostgreSQL.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

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
    settled_at_ms, version";

const EVENT_COLUMNS: &str = "id, provider, merchant_reference, at_ms, kind, attempt, owner, \
    outcome, http_status, error_kind, detail, elapsed_ms";

/// The statements, with `{now}` replaced for one backend.
#[derive(Debug)]
struct Sql {
    insert_entry: String,
    insert_event: String,
    select_entry: String,
    update_entry: String,
    select_unresolved: String,
    select_pending: String,
    select_history: String,
    select_now: String,
}

impl Sql {
    fn new(now: &str) -> Sql {
        let s = |text: String| text.replace("{now}", now);
        Sql {
            insert_entry: s(format!(
                "INSERT INTO refund_journal_entries (provider, merchant_reference, fingerprint, \
                 request, currency, state, attempts, ambiguous, lease_owner, lease_expires_at_ms, \
                 already_applied, wire_ms, created_at_ms, updated_at_ms, version) \
                 VALUES ($1, $2, $3, $4, $5, 'in_flight', 1, $6, $7, {{now}} + $8, $6, 0, \
                 {{now}}, {{now}}, 1) \
                 ON CONFLICT (provider, merchant_reference) DO NOTHING \
                 RETURNING {ENTRY_COLUMNS}"
            )),
            insert_event: s("INSERT INTO refund_journal_events (provider, merchant_reference, \
                 at_ms, kind, attempt, owner, outcome, http_status, error_kind, detail, elapsed_ms) \
                 VALUES ($1, $2, {now}, $3, $4, $5, $6, $7, $8, $9, $10)"
                .to_owned()),
            select_entry: s(format!(
                "SELECT {ENTRY_COLUMNS}, {{now}} AS now_ms FROM refund_journal_entries \
                 WHERE provider = $1 AND merchant_reference = $2"
            )),
            update_entry: s(format!(
                "UPDATE refund_journal_entries SET state = $3, attempts = $4, ambiguous = $5, \
                 lease_owner = $6, lease_expires_at_ms = COALESCE({{now}} + $7, $8), \
                 provider_refund_id = $9, refund_status = $10, amount = $11, \
                 refunded_total = $12, captured_total = $13, already_applied = $14, \
                 http_status = $15, error_kind = $16, error_message = $17, \
                 unresolved_reason = $18, settled_by = $19, wire_ms = $20, \
                 settled_at_ms = CASE WHEN $21 THEN {{now}} ELSE settled_at_ms END, \
                 updated_at_ms = {{now}}, version = version + 1 \
                 WHERE provider = $1 AND merchant_reference = $2 AND version = $22 \
                 RETURNING {ENTRY_COLUMNS}"
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
            select_history: format!(
                "SELECT {EVENT_COLUMNS} FROM refund_journal_events \
                 WHERE provider = $1 AND merchant_reference = $2 ORDER BY id"
            ),
            select_now: s("SELECT {now} AS now_ms".to_owned()),
        }
    }
}

/// The database's clock in milliseconds since the Unix epoch.
const SQLITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
const POSTGRES_NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// The journal's migrations, embedded: `migrations/<backend>/<version>_<name>.sql`. A new
/// migration is a new file for each backend and a line here (a test checks that every file is
/// listed).
pub(crate) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[(
    1,
    "refund journal",
    include_str!("../migrations/sqlite/0001_refund_journal.sql"),
    include_str!("../migrations/postgres/0001_refund_journal.sql"),
)];

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
}

impl Store {
    /// Connects, creates what is missing and applies the migrations.
    pub(crate) async fn open(database: &Database) -> Result<Store, JournalError> {
        match &database.kind {
            Kind::SqliteFile(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(database.max_connections.unwrap_or(4))
                    .connect_with(options)
                    .await?;
                Store::sqlite(pool).await
            }
            Kind::SqliteMemory => {
                // One connection, kept forever: the database lives in it.
                let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(options)
                    .await?;
                Store::sqlite(pool).await
            }
            Kind::Postgres { url, schema } => {
                if !valid_schema(schema) {
                    return Err(JournalError::Config(format!(
                        "schema {schema:?}: use lower-case ASCII letters, digits and '_', \
                         starting with a letter or '_', at most 63 characters"
                    )));
                }
                let options = PgConnectOptions::from_str(url.expose_secret())?
                    .options([("search_path", schema.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(database.max_connections.unwrap_or(10))
                    .connect_with(options)
                    .await?;
                // Concurrent first opens (replicas starting together) must not race on the
                // schema: one at a time, under a transaction-scoped advisory lock.
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('refunds_journal.schema'))")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                // sqlx's migrator holds an advisory lock on the database while it migrates.
                let migrator = migrator(true).await?;
                let mut conn = pool.acquire().await?;
                run_migrations(&migrator, &mut conn).await?;
                drop(conn);
                Ok(Store {
                    pool: Pool::Postgres(pool),
                    sql: Sql::new(POSTGRES_NOW),
                    writers: None,
                })
            }
        }
    }

    async fn sqlite(pool: SqlitePool) -> Result<Store, JournalError> {
        // SQLite has no advisory lock: processes opening one file together take turns on its
        // write lock, and the migrator's own transactions nest inside this one as savepoints.
        let mut conn = pool.acquire().await?;
        let migrator = migrator(false).await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        run_migrations(&migrator, &mut tx).await?;
        tx.commit().await?;
        drop(conn);
        Ok(Store {
            pool: Pool::Sqlite(pool),
            sql: Sql::new(SQLITE_NOW),
            writers: Some(tokio::sync::Mutex::new(())),
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
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
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
        let provider = request.provider.as_str();
        let reference = request.merchant_reference.as_str();
        let intent = crate::machine::intent(1, owner, None);
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(&self.sql.insert_entry)
                .bind(provider)
                .bind(reference)
                .bind(fingerprint)
                .bind(canonical)
                .bind(request.amount.currency().code())
                .bind(false)
                .bind(owner)
                .bind(lease_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry = decode_entry(&row)?;
            sqlx::query(&self.sql.insert_event)
                .bind(provider)
                .bind(reference)
                .bind(intent.kind.as_str())
                .bind(intent.attempt.map(i64::from))
                .bind(intent.owner.as_deref())
                .bind(intent.outcome.map(outcome_str))
                .bind(intent.http_status.map(i64::from))
                .bind(intent.error_kind.as_deref())
                .bind(intent.detail.as_deref())
                .bind(intent.elapsed_ms)
                .execute(&mut *tx)
                .await?;
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

    /// Applies `write` to the entry if its version is still `expected` (nobody wrote since it
    /// was read), with its events, in one transaction. `None` when someone else wrote first.
    pub(crate) async fn write(
        &self,
        expected: i64,
        write: &Write,
    ) -> Result<Option<Entry>, JournalError> {
        let next = &write.next;
        let provider = next.provider.as_str();
        let reference = next.merchant_reference.as_str();
        let (lease_owner, renew_ms, expires_at) = match &write.lease {
            LeaseWrite::Keep => (
                next.lease.as_ref().map(|lease| lease.owner.clone()),
                None,
                next.lease.as_ref().map(|lease| lease.expires_at_ms),
            ),
            LeaseWrite::Take { owner, ms } => (Some(owner.clone()), Some(*ms), None),
            LeaseWrite::Release => (None, None, None),
        };
        let money = |m: &Option<Money>| m.map(|m| m.amount().to_string());
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(&self.sql.update_entry)
                .bind(provider)
                .bind(reference)
                .bind(next.state.as_str())
                .bind(i64::from(next.attempts))
                .bind(next.ambiguous)
                .bind(lease_owner.as_deref())
                .bind(renew_ms)
                .bind(expires_at)
                .bind(next.provider_refund_id.as_deref())
                .bind(next.refund_status.map(status_str))
                .bind(money(&next.amount))
                .bind(money(&next.refunded_total))
                .bind(money(&next.captured_total))
                .bind(next.already_applied)
                .bind(next.http_status.map(i64::from))
                .bind(next.error_kind.as_deref())
                .bind(next.error_message.as_deref())
                .bind(next.unresolved_reason.as_deref())
                .bind(next.settled_by.map(SettledBy::as_str))
                .bind(next.wire_ms)
                .bind(write.settle)
                .bind(expected)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry = decode_entry(&row)?;
            for event in &write.events {
                sqlx::query(&self.sql.insert_event)
                    .bind(provider)
                    .bind(reference)
                    .bind(event.kind.as_str())
                    .bind(event.attempt.map(i64::from))
                    .bind(event.owner.as_deref())
                    .bind(event.outcome.map(outcome_str))
                    .bind(event.http_status.map(i64::from))
                    .bind(event.error_kind.as_deref())
                    .bind(event.detail.as_deref())
                    .bind(event.elapsed_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Some(entry))
        })
    }

    /// Entries whose outcome is unknown or whose sender's lease lapsed, oldest first.
    pub(crate) async fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        self.list(&self.sql.select_unresolved).await
    }

    /// Applied entries whose provider status is pending, oldest first.
    pub(crate) async fn pending(&self) -> Result<Vec<Entry>, JournalError> {
        self.list(&self.sql.select_pending).await
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

fn get<'r, T, R>(row: &'r R, column: &'static str) -> Result<T, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get::<T, _>(column)?)
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
    let lease = match (
        get::<Option<String>, _>(row, "lease_owner")?,
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
        state: get::<String, _>(row, "state")?
            .parse::<EntryState>()
            .map_err(corrupt)?,
        attempts: to_u32(get(row, "attempts")?, "attempts")?,
        ambiguous: get(row, "ambiguous")?,
        lease,
        provider_refund_id: get(row, "provider_refund_id")?,
        refund_status: get::<Option<String>, _>(row, "refund_status")?
            .map(|s| parse_status(&s).map_err(corrupt))
            .transpose()?,
        amount: money("amount")?,
        refunded_total: money("refunded_total")?,
        captured_total: money("captured_total")?,
        already_applied: get(row, "already_applied")?,
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: get(row, "error_kind")?,
        error_message: get(row, "error_message")?,
        unresolved_reason: get(row, "unresolved_reason")?,
        settled_by: get::<Option<String>, _>(row, "settled_by")?
            .map(|s| s.parse::<SettledBy>().map_err(corrupt))
            .transpose()?,
        wire_ms: get(row, "wire_ms")?,
        created_at_ms: get(row, "created_at_ms")?,
        updated_at_ms: get(row, "updated_at_ms")?,
        settled_at_ms: get(row, "settled_at_ms")?,
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
{
    Ok(Event {
        id: get(row, "id")?,
        provider: get::<String, _>(row, "provider")?
            .parse()
            .map_err(corrupt)?,
        merchant_reference: MerchantReference::new(get::<String, _>(row, "merchant_reference")?)
            .map_err(corrupt)?,
        at_ms: get(row, "at_ms")?,
        kind: get::<String, _>(row, "kind")?
            .parse::<EventKind>()
            .map_err(corrupt)?,
        attempt: get::<Option<i64>, _>(row, "attempt")?
            .map(|a| to_u32(a, "attempt"))
            .transpose()?,
        owner: get(row, "owner")?,
        outcome: get::<Option<String>, _>(row, "outcome")?
            .map(|s| parse_outcome(&s).map_err(corrupt))
            .transpose()?,
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: get(row, "error_kind")?,
        detail: get(row, "detail")?,
        elapsed_ms: get(row, "elapsed_ms")?,
    })
}
