//! PostgreSQL's group commit: the journal's writers commit whatever writes are queued together.

use std::sync::Arc;

use sqlx::postgres::PgPool;
use tokio::sync::Mutex;

use super::Written;
use super::rows::decode_entry;
use super::statement::Statement;
use super::writer::{Job, Jobs, Writer, fail_all, next_batch};
use crate::error::JournalError;

/// Starts PostgreSQL's group commit: [`writers`] tasks take the journal's writes. Each takes
/// every write queued (up to [`MAX_BATCH`](super::writer::MAX_BATCH); it never waits to gather
/// more, so a lone write goes at once) and commits them together:
///
/// - A lone write is its one statement ([`Statement::with_events`]), autocommitted: one round
///   trip, no `BEGIN`, no `COMMIT`.
/// - Several go in ONE transaction (`BEGIN`, each write's statement, `COMMIT`): one commit, one
///   WAL flush, for all of them, and at most two statements per write even for two. Each
///   caller is answered once the commit returned: a write is answered as written only when it
///   is durable.
/// - A write that writes nothing (its version no longer matches, its reference has an entry)
///   is answered `None`; the batch goes on.
/// - A write that fails (a unique index such as the per-order lease, a statement time-out, a
///   trigger, a row that cannot be read back) gets its error and the transaction is rolled
///   back; the writes before it, rolled back unseen, run again with the rest in a new
///   transaction: one write's failure spoils none of the others.
/// - Two writers' transactions can wait for each other (each holds a row the other writes
///   next: two callers on the same references at once); the server then rolls one back
///   (`deadlock_detected`), and its writes run again one by one, autocommitted, none of them
///   failed for it (a lone write rolled back so runs again, up to [`DEADLOCK_RETRIES`] times).
/// - A failed `BEGIN` or `COMMIT` fails every write of the batch. (A `COMMIT` whose answer was
///   lost may have committed, as may a lone write whose answer was lost: each caller gets the
///   error, which the journal takes as such.)
/// - Several writers commit side by side, as PostgreSQL takes them: one writer's round trips
///   would leave the server's other cores idle while 32 callers wait.
/// - Each batch takes a connection of the pool and gives it back, as a lone write always did:
///   the pool's liveness ping before use replaces a connection that died while idle (a server
///   restart) before a write is sent on it, and one ping serves the whole batch.
/// - A caller that stops waiting (its future dropped) while its write is queued: the write is
///   left out of the next batch, nothing is written. Once in a batch, it commits or fails with
///   the batch, whether anyone waits for it or not.
/// - The writers are tasks on the runtime that opens the journal, as the pool's connections
///   belong to it; they end when the pool closes ([`Journal::close`](crate::Journal::close))
///   or the store is dropped: writes still queued then fail with [`sqlx::Error::PoolClosed`].
pub(super) fn start(pool: PgPool, max_connections: u32) -> Writer {
    let (writer, jobs) = Writer::new();
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..writers(max_connections) {
        tokio::spawn(write_batches(pool.clone(), Arc::clone(&jobs)));
    }
    writer
}

/// One writer: batch after batch until the pool closes or every sender is gone. The writers
/// share the queue: one at a time waits for the next write, the others wait their turn.
async fn write_batches(pool: PgPool, jobs: Arc<Mutex<Jobs>>) {
    let mut closed = std::pin::pin!(pool.close_event());
    loop {
        let batch = next_batch(&mut closed, &mut *jobs.lock().await).await;
        let Some(mut batch) = batch else {
            break;
        };
        let mut together = true;
        while !batch.is_empty() {
            (batch, together) = commit_batch(&pool, batch, together).await;
        }
    }
}

/// How many writers a pool of `max_connections` gets: half of it (at least one), so that the
/// writers' batches leave the other half of the connections to reads.
fn writers(max_connections: u32) -> u32 {
    (max_connections / 2).max(1)
}

/// Runs `batch` on a connection of the pool, in one transaction if `together`, else its first
/// write alone, and answers every write it settles. Returns the writes still to run, and
/// whether they may go together: after a write failed, the writes rolled back with it run again
/// together; after a deadlock, every write of the batch runs again alone (it was not the
/// write's own failure, and alone, autocommitted, a write holds no lock another one waits
/// for). Every call answers at least one write or runs the batch again alone, so that the
/// writer moves on.
async fn commit_batch(pool: &PgPool, mut batch: Vec<Job>, together: bool) -> (Vec<Job>, bool) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            fail_all(batch, error);
            return (Vec::new(), together);
        }
    };
    if batch.len() == 1 || !together {
        let job = batch.remove(0);
        let mut written = run(&mut conn, &job.statement).await;
        for _ in 0..DEADLOCK_RETRIES {
            // Rolled back whole by the server: nothing of it was written.
            if !matches!(&written, Err(error) if is_deadlock(error)) {
                break;
            }
            written = run(&mut conn, &job.statement).await;
        }
        job.answer(written);
        return (batch, together);
    }
    let mut tx = match sqlx::Connection::begin(&mut *conn).await {
        Ok(tx) => tx,
        Err(error) => {
            fail_all(batch, error);
            return (Vec::new(), together);
        }
    };
    let mut written = Vec::with_capacity(batch.len());
    for (at, job) in batch.iter().enumerate() {
        match run(&mut tx, &job.statement).await {
            Ok(entry) => written.push(entry),
            Err(error) => {
                // The transaction rolls back as it is dropped (before its connection is used
                // again, sqlx sends the `ROLLBACK`).
                drop(tx);
                if is_deadlock(&error) {
                    return (batch, false);
                }
                batch.remove(at).answer(Err(error));
                return (batch, together);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (job, entry) in batch.into_iter().zip(written) {
                job.answer(Ok(entry));
            }
        }
        Err(error) => fail_all(batch, error),
    }
    (Vec::new(), together)
}

/// How many times a lone write the server rolled back for a deadlock is run again before its
/// caller gets the error.
const DEADLOCK_RETRIES: usize = 3;

/// Whether `error` is PostgreSQL's `deadlock_detected` (SQLSTATE 40P01): two transactions
/// waited for each other's rows (two writers' batches, each holding a row the other writes
/// next), and the server rolled this one back.
fn is_deadlock(error: &JournalError) -> bool {
    matches!(
        error,
        JournalError::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40P01")
    )
}

/// One write's statement on `conn`: the entry's row as written, `None` when it wrote none.
async fn run(conn: &mut sqlx::PgConnection, statement: &Statement<'static>) -> Written {
    let row = statement.query().fetch_optional(conn).await?;
    row.as_ref().map(decode_entry).transpose()
}
