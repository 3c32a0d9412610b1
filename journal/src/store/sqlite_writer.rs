//! SQLite's group commit: one writer per process commits whatever writes are queued together.

use sqlx::sqlite::SqlitePool;

use super::Written;
use super::rows::{corrupt, decode_entry, get};
use super::statement::Bind;
use super::writer::{Job, Jobs, Writer, fail_all, next_batch};
use crate::entry::Entry;
use crate::error::JournalError;

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
pub(super) fn resync_sqlite_transaction(
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

/// The most writes of one SQL text SQLite's writer sends in one command ([`run_together`]):
/// the chunks are of 1, 2, 4, 8 or 16 writes, five texts per shape of write to keep prepared;
/// a larger chunk would save little more than its round trips and cost a large prepared
/// statement.
pub(super) const MAX_TOGETHER: usize = 16;

/// Starts SQLite's group commit: one thread owns this process's writes. It takes every write
/// queued (up to [`MAX_BATCH`]; it never waits to gather more, so a lone write goes at once),
/// runs them in ONE `BEGIN IMMEDIATE ... COMMIT` (one fsync for all), and answers each caller
/// once the commit returned: a write is answered as written only when it is durable.
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
///
/// [`MAX_BATCH`]: super::writer::MAX_BATCH
pub(super) fn start(pool: SqlitePool) -> Result<Writer, JournalError> {
    // The writer's runtime has a clock (the pool's acquire limit) and no I/O driver: SQLite's
    // connections are threads and channels, not sockets.
    let (writer, jobs) = Writer::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(sqlx::Error::Io)?;
    std::thread::Builder::new()
        .name("refunds-journal-writer".to_owned())
        .spawn(move || runtime.block_on(write_batches(pool, jobs)))
        .map_err(sqlx::Error::Io)?;
    Ok(writer)
}

/// The writer: batch after batch until the pool closes or every sender is gone.
async fn write_batches(pool: SqlitePool, mut jobs: Jobs) {
    let keep = pool.options().get_max_connections() > 1;
    let mut conn = None;
    let mut closed = std::pin::pin!(pool.close_event());
    while let Some(mut batch) = next_batch(&mut closed, &mut jobs).await {
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
pub(super) struct CommandFailed {
    pub(super) write: Option<usize>,
    pub(super) error: JournalError,
}

/// A connection inside a transaction the writer began itself: dropped before the transaction
/// ended (the batch's future dropped midway), it is closed, never given back to the pool with
/// the transaction open.
pub(super) struct InTransaction(Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl InTransaction {
    pub(super) fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        self.0.as_mut().expect("in a transaction")
    }

    /// The transaction committed: the connection, clean.
    pub(super) fn committed(mut self) -> sqlx::pool::PoolConnection<sqlx::Sqlite> {
        self.0.take().expect("in a transaction")
    }

    /// The transaction failed: rolls back whatever SQLite left open ("no transaction is
    /// active" when it threw the transaction away itself) and gives the connection back to the
    /// pool; closes it when it cannot be rolled back.
    pub(super) async fn failed(mut self) {
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
pub(super) async fn commit_batch(
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
///
/// [`Statement::sql_shifted`]: super::statement::Statement::sql_shifted
/// [`Statement::then_events`]: super::statement::Statement::then_events
pub(super) async fn run_together(
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
pub(super) async fn run_job(conn: &mut sqlx::SqliteConnection, job: &Job, sql: &str) -> Written {
    // Every statement of the text runs (`fetch_optional` would stop at the first row).
    let rows = job.statement.query_of(sql).fetch_all(&mut *conn).await?;
    rows.first().map(decode_entry).transpose()
}
