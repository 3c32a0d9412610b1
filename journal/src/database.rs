//! [`Database`]: where a journal keeps its entries, and its time limits; and what the journal
//! says when the database is out of reach ([`Target::named`]).

#[cfg(feature = "sqlite")]
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "postgres")]
use refunds::SecretString;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgConnectOptions;

use crate::error::JournalError;

/// Where a journal keeps its entries, and how long it waits for it.
///
/// - [`Database::sqlite`] (feature `sqlite`, on by default): a SQLite file (created when
///   missing), WAL mode, `synchronous=FULL` so that a recorded intent survives a power cut
///   before the request leaves. Several processes on one machine may share the file.
/// - [`Database::sqlite_in_memory`] (feature `sqlite`): a private in-memory SQLite database,
///   gone with the journal (tests, demos).
/// - [`Database::postgres`] (feature `postgres`, on by default): a PostgreSQL database shared
///   by every instance of a service. The journal keeps its tables (and sqlx's
///   `_sqlx_migrations` bookkeeping) in its own schema, `refunds_journal` unless
///   [`Database::schema`] says otherwise, so that they never mix with the application's own
///   migrations.
///
/// Give the journal a SQLite file of its own, for the same reason.
///
/// A service on one backend turns the other feature off, so that it does not compile it (a
/// PostgreSQL-only service builds no SQLite):
///
/// ```toml
/// refunds-journal = { git = "...", default-features = false, features = ["postgres"] }
/// ```
///
/// # Time limits
///
/// A stopped or unreachable database fails a call within seconds, with an error that names it
/// ([`JournalError::Unavailable`]: host, port and database, or the SQLite file, what failed and
/// why, never a password), rather than blocking it:
///
/// | limit | default | what it bounds |
/// |---|---|---|
/// | [`acquire_timeout`](Database::acquire_timeout) | 5 s | waiting for a connection: a free one of the pool, or a new one (connecting to a stopped server is retried until then) |
/// | [`statement_timeout`](Database::statement_timeout) | 5 s | one statement: PostgreSQL's `statement_timeout`, set on every connection (the server cancels a statement that runs longer, a wait for a row lock included); SQLite's `busy_timeout` (how long a statement waits for another process's lock on the file) |
/// | [`startup_timeout`](Database::startup_timeout) | 10 s | [`Journal::open`](crate::Journal::open): connecting, creating the schema and running the migrations (a migration statement, and the wait for another instance that migrates, may take this long, rather than the statement limit) |
///
/// A call that finds no connection fails after the acquire limit, plus at most a second spent
/// learning why (one connection attempt outside the pool): `PostgreSQL at
/// 127.0.0.1:5433/refunds: no connection within 5 s (connection refused)`. The journal stays
/// usable: the next call works once the database does. [`Journal::ping`](crate::Journal::ping)
/// makes one round trip within the same limits, for health checks.
///
/// # Text as a provider sent it
///
/// What a provider sends is stored as it came, on either backend: a NUL (U+0000) in a refund
/// id or an error message, or in the excerpt of a body nobody could decode (a compressed or
/// binary page), which PostgreSQL's `text` columns refuse. The free-text columns are stored
/// escaped, alike on both backends: **a backslash is written `\\` and U+0000 is written
/// `\u0000`; nothing else changes.** [`Entry`](crate::Entry) and [`Event`](crate::Event) read
/// back the text exactly as sent. The escaped columns are `provider_refund_id`, `lease_owner`,
/// `error_kind`, `error_message` and `unresolved_reason` of `refund_journal_entries`, and
/// `owner`, `error_kind` and `detail` of `refund_journal_events`; a program that reads them
/// directly unescapes `\\` and `\u0000` (migration 2 doubled the backslashes of rows written
/// before, so every row follows this one rule). The other columns hold only what the journal
/// writes itself (keys, amounts, states, times) or JSON (`request`, whose strings carry a NUL
/// as JSON's own `\u0000`).
///
/// # Writes
///
/// Every state change of an entry is written atomically with its events, and is durable when
/// the call that made it returns (an intent is on disk before its request leaves):
///
/// - **PostgreSQL**: one statement per state change (the entry's `INSERT` or `UPDATE` and its
///   events' `INSERT` in one data-modifying `WITH`). A journal's writes go to its writers
///   (tasks on the runtime that opens the journal, half as many as
///   [`max_connections`](Database::max_connections), at least one), each of which takes
///   whatever is queued (up to 64 writes, without waiting for more): a lone write is
///   autocommitted (no `BEGIN`, no `COMMIT`, one round trip), several go in one transaction
///   (one commit, one WAL flush, for the lot: group commit). Each caller is answered once
///   that commit returned; a write that refuses or fails spoils none of the others of its
///   batch (nor does a deadlock between two writers' transactions: their writes run again one
///   by one); a failed commit fails all of them.
/// - **SQLite** (WAL, `synchronous=FULL`): each commit costs an fsync, and the file takes one
///   writer at a time, so a journal's writes go to one writer that commits whatever is
///   queued (up to 64 writes, without waiting for more) in one `BEGIN IMMEDIATE ... COMMIT`:
///   one fsync for the lot (group commit), with the writes of one shape sent to SQLite
///   together. Each caller is answered once that commit returned. A write that refuses or
///   fails spoils none of the others of its batch; a failed commit fails all of them (none is
///   durable). The writer runs on a thread of its own (named `refunds-journal-writer`, with a
///   Tokio runtime of its own, so it does not depend on the runtime that opens the journal)
///   and keeps one connection of the pool (an in-memory database's only one it shares); it
///   ends when the journal is closed or dropped. Other processes on the same file take turns
///   on its lock within the busy limit ([`statement_timeout`](Database::statement_timeout)).
///
/// # A failed write
///
/// A write that fails (a full disk, an I/O error, a failed commit, a refused statement) is
/// rolled back whole, and the journal stays usable: once the database takes writes again, the
/// next call works, without a restart. (SQLite throws a transaction away by itself after some
/// failures, `SQLITE_FULL` and `SQLITE_IOERR` among them; the journal rolls back whatever is
/// left and puts the connection back in step before it is used again.) What the failed call
/// means for the money is [`JournalError::outcome`].
#[derive(Clone)]
pub struct Database {
    pub(crate) kind: Kind,
    pub(crate) max_connections: Option<u32>,
    pub(crate) limits: Limits,
}

#[derive(Clone)]
pub(crate) enum Kind {
    #[cfg(feature = "sqlite")]
    SqliteFile(PathBuf),
    #[cfg(feature = "sqlite")]
    SqliteMemory,
    #[cfg(feature = "postgres")]
    Postgres { url: SecretString, schema: String },
}

/// The time limits of a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub acquire: Duration,
    pub statement: Duration,
    pub startup: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            acquire: Database::DEFAULT_ACQUIRE_TIMEOUT,
            statement: Database::DEFAULT_STATEMENT_TIMEOUT,
            startup: Database::DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PostgreSQL URL may hold a password: never shown.
        match &self.kind {
            #[cfg(feature = "sqlite")]
            Kind::SqliteFile(path) => write!(f, "Database::sqlite({path:?})")?,
            #[cfg(feature = "sqlite")]
            Kind::SqliteMemory => f.write_str("Database::sqlite_in_memory()")?,
            #[cfg(feature = "postgres")]
            Kind::Postgres { schema, .. } => {
                write!(f, "Database::postgres(<url>, schema {schema:?})")?;
            }
        }
        let Limits {
            acquire,
            statement,
            startup,
        } = self.limits;
        write!(
            f,
            ".acquire_timeout({acquire:?}).statement_timeout({statement:?}).startup_timeout({startup:?})"
        )?;
        if let Some(max) = self.max_connections {
            write!(f, ".max_connections({max})")?;
        }
        Ok(())
    }
}

/// The default PostgreSQL schema of the journal's tables.
#[cfg(feature = "postgres")]
pub const DEFAULT_SCHEMA: &str = "refunds_journal";

impl Database {
    /// The default [`acquire_timeout`](Database::acquire_timeout): 5 s.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default [`statement_timeout`](Database::statement_timeout): 5 s.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default [`startup_timeout`](Database::startup_timeout): 10 s.
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

    fn of(kind: Kind) -> Database {
        Database {
            kind,
            max_connections: None,
            limits: Limits::default(),
        }
    }

    /// A SQLite file, created (with its tables) when missing. Needs the `sqlite` feature (on by
    /// default).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl Into<PathBuf>) -> Database {
        Database::of(Kind::SqliteFile(path.into()))
    }

    /// A private in-memory SQLite database: it lives as long as the [`Journal`](crate::Journal)
    /// (and its clones), and no other journal sees it. Needs the `sqlite` feature (on by
    /// default).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_in_memory() -> Database {
        Database::of(Kind::SqliteMemory)
    }

    /// A PostgreSQL database by URL (`postgres://user:password@host:5432/db`). The URL is kept
    /// as a secret: it appears in no `Debug` output, no error and is never stored; errors name
    /// the host, port and database only. Needs the `postgres` feature (on by default).
    #[cfg(feature = "postgres")]
    pub fn postgres(url: impl Into<String>) -> Database {
        Database::of(Kind::Postgres {
            url: SecretString::from(url.into()),
            schema: DEFAULT_SCHEMA.to_owned(),
        })
    }

    /// The PostgreSQL schema of the journal's tables (created when missing): lower-case ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 63 characters. Ignored
    /// for SQLite. Needs the `postgres` feature.
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Database {
        #[allow(irrefutable_let_patterns)] // with the `postgres` feature alone
        if let Kind::Postgres {
            schema: current, ..
        } = &mut self.kind
        {
            *current = schema.into();
        }
        self
    }

    /// The most connections the journal opens (default: 10 for PostgreSQL, 4 for a SQLite
    /// file, 1 for an in-memory database, which must stay 1). On a SQLite file, the writer
    /// keeps one of them for its batches (see [writes](Database#writes)); the others read.
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Database {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How long a call waits for a connection (default
    /// [`DEFAULT_ACQUIRE_TIMEOUT`](Database::DEFAULT_ACQUIRE_TIMEOUT), 5 s): a free one of the
    /// pool, or a new one (a refused connection is retried, with a back-off, until then). Past
    /// it the call fails with [`JournalError::Unavailable`] (`no connection within 5 s`, and
    /// why: the cause of a connection attempt made then, or every connection in use). At
    /// least 1 ms.
    #[must_use]
    pub fn acquire_timeout(mut self, limit: Duration) -> Database {
        self.limits.acquire = at_least_1_ms(limit);
        self
    }

    /// How long one statement may run (default
    /// [`DEFAULT_STATEMENT_TIMEOUT`](Database::DEFAULT_STATEMENT_TIMEOUT), 5 s). On PostgreSQL,
    /// `statement_timeout` on every connection: the server cancels a statement that runs
    /// longer (a wait for another transaction's row lock included), and the call fails with
    /// [`JournalError::Unavailable`] (`a statement ran past the 5 s statement limit`). On
    /// SQLite, `busy_timeout`: how long a statement waits for another process's lock on the
    /// file before it fails (`database is locked`: the writes of that batch fail); the writes
    /// of one journal reach the file through its one writer, in batches. At least 1 ms.
    #[must_use]
    pub fn statement_timeout(mut self, limit: Duration) -> Database {
        self.limits.statement = at_least_1_ms(limit);
        self
    }

    /// How long [`Journal::open`](crate::Journal::open) may take in all (default
    /// [`DEFAULT_STARTUP_TIMEOUT`](Database::DEFAULT_STARTUP_TIMEOUT), 10 s): connecting (within
    /// the acquire limit as well), creating the PostgreSQL schema and running the migrations,
    /// which may wait for another instance that migrates at the same time. Migration statements
    /// (and that wait: PostgreSQL's `statement_timeout`, SQLite's `busy_timeout` on the
    /// migrating connection) run under this limit rather than the statement limit: raise it
    /// for a migration that rewrites a large table. Past it, [`JournalError::Unavailable`] (`start-up (connect and
    /// migrate) not done within 10 s`, and the step it was in). At least 1 ms.
    #[must_use]
    pub fn startup_timeout(mut self, limit: Duration) -> Database {
        self.limits.startup = at_least_1_ms(limit);
        self
    }
}

fn at_least_1_ms(limit: Duration) -> Duration {
    limit.max(Duration::from_millis(1))
}

/// A duration as an operator reads it: `5 s`, `250 ms`, `1.5 s`.
pub(crate) fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// The longest connection attempt made outside the pool to learn why the pool got none.
#[cfg(feature = "postgres")]
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Which database a journal talks to, as its errors name it, and how to try one connection
/// outside the pool. Its `Debug` shows the name only (the connect options hold the password).
#[derive(Clone)]
pub(crate) struct Target {
    /// `PostgreSQL at host:port/database`, `SQLite at <path>`, `SQLite in memory`.
    pub name: String,
    pub limits: Limits,
    pub max_connections: u32,
    probe: Probe,
}

#[derive(Clone)]
enum Probe {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres(Box<PgConnectOptions>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Where start-up is: what [`JournalError::Unavailable`] says when the start-up limit passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    #[cfg(feature = "postgres")]
    Schema,
    Migrating,
}

impl Target {
    /// A SQLite file or in-memory database.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(name: String, limits: Limits, max_connections: u32) -> Target {
        Target {
            name,
            limits,
            max_connections,
            probe: Probe::Sqlite,
        }
    }

    /// A PostgreSQL database: named by host, port (or socket directory) and database.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(
        options: &PgConnectOptions,
        limits: Limits,
        max_connections: u32,
    ) -> Target {
        // libpq's default database is the user's name.
        let database = options
            .get_database()
            .unwrap_or_else(|| options.get_username());
        let name = match options.get_socket() {
            Some(socket) => format!("PostgreSQL at {}/{database}", socket.display()),
            None => {
                let host = options.get_host();
                // An IPv6 address in brackets (a URL's host has them already).
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                format!("PostgreSQL at {host}:{}/{database}", options.get_port())
            }
        };
        Target {
            name,
            limits,
            max_connections,
            probe: Probe::Postgres(Box::new(options.clone())),
        }
    }

    /// `error` as [`JournalError::Unavailable`] where it is the database out of reach or out of
    /// time (no connection within the acquire limit, a failed connection, a refused login, a
    /// statement past its limit, a lock held too long); any other error as it is.
    pub(crate) async fn named(&self, error: JournalError) -> JournalError {
        use sqlx::migrate::MigrateError;
        let cause = match &error {
            JournalError::Database(cause)
            | JournalError::Migrate(
                MigrateError::Execute(cause) | MigrateError::ExecuteMigration(cause, _),
            ) => cause,
            _ => return error,
        };
        let (problem, cause) = match cause {
            sqlx::Error::PoolTimedOut => (
                format!("no connection within {}", human(self.limits.acquire)),
                self.probe().await,
            ),
            sqlx::Error::Io(io) => ("the connection failed".to_owned(), io_cause(io)),
            sqlx::Error::Tls(tls) => ("the TLS connection failed".to_owned(), tls.to_string()),
            sqlx::Error::Database(db) => match self.database_problem(db.as_ref()) {
                Some(problem) => (problem, db.message().to_owned()),
                None => return error,
            },
            _ => return error,
        };
        self.unavailable(problem, cause)
    }

    /// [`JournalError::Unavailable`] on this database.
    pub(crate) fn unavailable(&self, problem: String, cause: String) -> JournalError {
        JournalError::Unavailable {
            database: self.name.clone(),
            problem,
            cause,
        }
    }

    /// The start-up limit passed in `phase`.
    pub(crate) async fn startup_elapsed(&self, phase: Phase) -> JournalError {
        let cause = match phase {
            Phase::Connecting => format!("connecting: {}", self.probe().await),
            #[cfg(feature = "postgres")]
            Phase::Schema => "creating the schema: another instance may be starting up, or a \
                              lock on the schema is held"
                .to_owned(),
            Phase::Migrating => "migrating: another instance may hold the migration lock, or a \
                                 migration takes longer (raise Database::startup_timeout)"
                .to_owned(),
        };
        self.unavailable(
            format!(
                "start-up (connect and migrate) not done within {}",
                human(self.limits.startup)
            ),
            cause,
        )
    }

    /// What a database error says about reaching the database, if it says anything: a login
    /// or connection refused, a server shutting down, a statement past its limit, a lock held
    /// past SQLite's busy limit.
    fn database_problem(&self, db: &dyn sqlx::error::DatabaseError) -> Option<String> {
        let code = db.code();
        let code = code.as_deref().unwrap_or("");
        match self.probe {
            #[cfg(feature = "postgres")]
            Probe::Postgres(_) => match code {
                "57014" if db.message().contains("statement timeout") => Some(format!(
                    "a statement ran past the {} statement limit",
                    human(self.limits.statement)
                )),
                // admin_shutdown, crash_shutdown, cannot_connect_now
                "57P01" | "57P02" | "57P03" => {
                    Some("the server is shutting down or starting up".to_owned())
                }
                // too_many_connections, invalid_catalog_name (no such database)
                "53300" | "3D000" => Some("the server refused the connection".to_owned()),
                // connection exceptions, invalid authorization
                _ if code.starts_with("08") => Some("the connection failed".to_owned()),
                _ if code.starts_with("28") => Some("the server refused the connection".to_owned()),
                _ => None,
            },
            #[cfg(feature = "sqlite")]
            Probe::Sqlite => {
                // SQLITE_BUSY and its extended codes (the low byte is the primary code).
                match code.parse::<i64>().map(|code| code & 0xff) {
                    Ok(5) => Some(format!(
                        "another process held the database's lock past the {} busy limit",
                        human(self.limits.statement)
                    )),
                    // SQLITE_CANTOPEN
                    Ok(14) => Some("the database file could not be opened".to_owned()),
                    _ => None,
                }
            }
        }
    }

    /// Why the pool got no connection: the error of one connection attempt made now, outside
    /// the pool (at most [`PROBE_LIMIT`]), or, when it connects, every connection in use.
    async fn probe(&self) -> String {
        match &self.probe {
            #[cfg(feature = "sqlite")]
            Probe::Sqlite => format!("all {} connections were in use", self.max_connections),
            #[cfg(feature = "postgres")]
            Probe::Postgres(options) => {
                use sqlx::{ConnectOptions, Connection};
                let limit = PROBE_LIMIT.min(self.limits.acquire);
                match tokio::time::timeout(limit, options.connect()).await {
                    Err(_) => format!("no answer to a connection attempt within {}", human(limit)),
                    Ok(Err(sqlx::Error::Io(io))) => io_cause(&io),
                    Ok(Err(sqlx::Error::Database(db))) => db.message().to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        format!(
                            "the server accepts connections now: all {} connections were in \
                             use, or it was out of reach until a moment ago",
                            self.max_connections
                        )
                    }
                }
            }
        }
    }
}

/// An I/O error in a few words: `connection refused`, `connection reset`, ...
fn io_cause(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let words = match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::NotConnected => "not connected",
        ErrorKind::BrokenPipe => "connection closed",
        ErrorKind::UnexpectedEof => "the server closed the connection",
        ErrorKind::TimedOut => "timed out",
        ErrorKind::HostUnreachable => "host unreachable",
        ErrorKind::NetworkUnreachable => "network unreachable",
        ErrorKind::AddrNotAvailable => "address not available",
        _ => return error.to_string(),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_an_operator_says_them() {
        assert_eq!(human(Duration::from_secs(5)), "5 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::ZERO), "0 ms");
    }

    #[test]
    fn limits_default_to_a_few_seconds_and_are_configurable() {
        let limits = Limits::default();
        assert_eq!(limits.acquire, Duration::from_secs(5));
        assert_eq!(limits.statement, Duration::from_secs(5));
        assert_eq!(limits.startup, Duration::from_secs(10));
        #[cfg(feature = "sqlite")]
        {
            let database = Database::sqlite_in_memory()
                .acquire_timeout(Duration::from_secs(2))
                .statement_timeout(Duration::ZERO)
                .startup_timeout(Duration::from_secs(30));
            assert_eq!(
                database.limits,
                Limits {
                    acquire: Duration::from_secs(2),
                    statement: Duration::from_millis(1),
                    startup: Duration::from_secs(30),
                }
            );
        }
    }

    /// The name of a PostgreSQL database holds its host, port and database, never the password
    /// of its URL; neither does the `Debug` of the database or of the target.
    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgres_target_is_named_without_its_password() {
        use std::str::FromStr;
        let url = "postgres://refunds:hunter2-secret@127.0.0.1:5433/refunds";
        let options = PgConnectOptions::from_str(url).unwrap();
        let target = Target::postgres(&options, Limits::default(), 10);
        assert_eq!(target.name, "PostgreSQL at 127.0.0.1:5433/refunds");
        assert!(!format!("{target:?}").contains("hunter2"));
        assert!(!format!("{:?}", Database::postgres(url)).contains("hunter2"));
        let options = PgConnectOptions::from_str("postgres://me:pw@[::1]/").unwrap();
        assert_eq!(
            Target::postgres(&options, Limits::default(), 10).name,
            "PostgreSQL at [::1]:5432/me"
        );
    }
}
