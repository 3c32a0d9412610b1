//! The two backends behind one set of statements: the journal's database ([`Store`]).
//!
//! Every statement is written once ([`statement`]), with `$n` parameters (SQLite reads `$n` as
//! the n-th parameter too) and `{now}` for the database's clock in milliseconds since the Unix
//! epoch, replaced per backend. The writes (a new entry, an entry's change, an event) are built
//! from one list of columns each, name and value side by side ([`statement::entry_changes`],
//! [`statement::new_entry`], [`statement::new_event`]): a new column is one line there. Each
//! operation's body is written once and compiled for both pools by `on_pool!`. Nothing is
//! checked against a database at build time.
//!
//! The rest has a room each: the embedded [`migrations`], the group commit of both backends
//! ([`writer`]: the queue; [`sqlite_writer`], [`postgres_writer`]: the commits), and the
//! [`rows`] an entry or event is read from.

use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "postgres")]
use refunds::ExposeSecret;
use refunds::{MerchantReference, Provider, RefundRequest};
use sqlx::Row;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::database::{Database, Kind, Phase, Target, human};
use crate::entry::{Entry, Event};
use crate::error::JournalError;
use crate::machine::{NewEvent, Write};

mod migrations;
#[cfg(feature = "postgres")]
mod postgres_writer;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite_writer;
mod statement;
#[cfg(all(test, feature = "sqlite"))]
#[allow(irrefutable_let_patterns)] // with the `sqlite` feature alone, a pool is SQLite's
mod tests;
mod writer;

use migrations::{migrator, run_migrations};
use rows::{decode_entry, decode_event, get};
#[cfg(feature = "sqlite")]
use sqlite_writer::resync_sqlite_transaction;
#[cfg(feature = "postgres")]
use statement::POSTGRES_NOW;
#[cfg(feature = "sqlite")]
use statement::SQLITE_NOW;
use statement::{Sql, Statement, new_entry};
use writer::Writer;

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

/// The result of `body`: fixes its error type for the `?` inside `on_pool!`'s blocks.
async fn named_result<T>(
    body: impl std::future::Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    body.await
}

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

/// What a write comes to: the entry's row after it, `None` when nothing was written (the
/// version did not match, the reference has an entry), or why it failed.
type Written = Result<Option<Entry>, JournalError>;

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
    /// Each commit costs a flush to disk, and SQLite takes one writer at a time: the journal's
    /// writes queue for its writer (SQLite: one thread; PostgreSQL: several tasks), which
    /// commits whatever is queued together ([`Writer`]; [`sqlite_writer`], [`postgres_writer`]).
    /// Other processes (replicas) on the same database have writers of their own: SQLite's
    /// meet the busy timeout, PostgreSQL's run side by side.
    writer: Writer,
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
                    writer: postgres_writer::start(pool.clone(), target.max_connections),
                    pool: Pool::Postgres(pool),
                    sql: Sql::new(POSTGRES_NOW),
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
            writer: sqlite_writer::start(pool.clone())?,
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
    /// The write goes to the writer ([`Writer`]), which commits it with whatever other writes
    /// are queued, in one transaction; answered once that commit returned.
    ///
    /// - PostgreSQL: one statement ([`Statement::with_events`]); a lone write is autocommitted
    ///   (one round trip, no transaction to begin or commit).
    /// - SQLite: one SQL text ([`Statement::then_events`]).
    async fn write_row(
        &self,
        entry: Statement<'_>,
        provider: &str,
        reference: &str,
        events: &[NewEvent],
    ) -> Written {
        let statement = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => entry.then_events(self.sql.now, provider, reference, events),
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => entry.with_events(self.sql.now, provider, reference, events),
        };
        let result = self.writer.write(statement.into_owned()).await;
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
