//! The journal's group commit, both backends: the journal's writer (SQLite: one thread;
//! PostgreSQL: several tasks) takes the writes queued and commits them together
//! ([`sqlite_writer`](super::sqlite_writer), [`postgres_writer`](super::postgres_writer));
//! here, the queue and what both share.

use std::borrow::Cow;
use std::future::Future;

use super::Written;
use super::statement::Statement;
use crate::error::JournalError;

/// The most writes a writer commits in one transaction.
pub(super) const MAX_BATCH: usize = 64;

/// How many writes may wait for the writer before a caller waits to queue.
const MAX_QUEUED: usize = 1024;

/// One write for the writer: its statement (SQLite: `Statement::then_events`; PostgreSQL:
/// `Statement::with_events`) and where its caller waits.
pub(super) struct Job {
    pub(super) statement: Statement<'static>,
    pub(super) reply: tokio::sync::oneshot::Sender<Written>,
}

impl Job {
    pub(super) fn answer(self, written: Written) {
        // A caller that stopped waiting no longer hears it.
        let _ = self.reply.send(written);
    }
}

/// The writes queued for a writer, as it receives them.
pub(super) type Jobs = tokio::sync::mpsc::Receiver<Job>;

/// Where the journal's writes queue for its writer.
#[derive(Debug)]
pub(super) struct Writer {
    queue: tokio::sync::mpsc::Sender<Job>,
}

impl Writer {
    /// A queue, and the writer's end of it.
    pub(super) fn new() -> (Writer, Jobs) {
        let (queue, jobs) = tokio::sync::mpsc::channel(MAX_QUEUED);
        (Writer { queue }, jobs)
    }

    /// How many writes wait in the queue (not yet taken into a batch).
    #[cfg(all(test, feature = "sqlite"))]
    pub(super) fn queued(&self) -> usize {
        MAX_QUEUED - self.queue.capacity()
    }

    /// Writes `statement` with the next batch; answered once it is committed (or failed).
    pub(super) async fn write(&self, statement: Statement<'static>) -> Written {
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

/// The next batch: the first write queued (waited for) and every write queued behind it, up to
/// [`MAX_BATCH`] (never waited for, so a lone write goes at once), without those whose callers
/// stopped waiting (nothing is written for them); `None` once `closed` (the pool closed) or
/// every sender is gone (the store dropped).
pub(super) async fn next_batch(
    closed: &mut (impl Future<Output = ()> + Unpin),
    jobs: &mut Jobs,
) -> Option<Vec<Job>> {
    loop {
        let first = tokio::select! {
            biased;
            () = &mut *closed => return None,
            job = jobs.recv() => job?,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

/// Fails every write of `jobs` with `error` (the first gets it, the others a copy).
pub(super) fn fail_all(jobs: Vec<Job>, error: sqlx::Error) {
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
/// journal reads of it ([`Target::named`](crate::database::Target::named),
/// [`is_order_lease_violation`](super::is_order_lease_violation)); an I/O error its
/// kind and text; the pool's errors themselves; anything else its text.
pub(super) fn copy_error(error: &sqlx::Error) -> sqlx::Error {
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
#[derive(Debug)]
pub(super) struct CopiedDatabaseError {
    pub(super) message: String,
    pub(super) code: Option<String>,
    pub(super) constraint: Option<String>,
    pub(super) table: Option<String>,
    pub(super) kind: sqlx::error::ErrorKind,
}

impl std::fmt::Display for CopiedDatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CopiedDatabaseError {}

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
pub(super) fn same_kind(kind: &sqlx::error::ErrorKind) -> sqlx::error::ErrorKind {
    use sqlx::error::ErrorKind;
    match kind {
        ErrorKind::UniqueViolation => ErrorKind::UniqueViolation,
        ErrorKind::ForeignKeyViolation => ErrorKind::ForeignKeyViolation,
        ErrorKind::NotNullViolation => ErrorKind::NotNullViolation,
        ErrorKind::CheckViolation => ErrorKind::CheckViolation,
        _ => ErrorKind::Other,
    }
}
