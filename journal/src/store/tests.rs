use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use refunds::Money;
use tokio::sync::oneshot;

use super::sqlite_writer::{MAX_TOGETHER, commit_batch, run_together};
use super::writer::Job;
use super::*;
use crate::entry::{EntryState, EventKind};
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
                .unwrap_or_else(|e| panic!("{database:?}: write {i} after the failed commit: {e}"))
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
fn update_job(store: &Store, expected: i64, write: &Write) -> (Job, oneshot::Receiver<Written>) {
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
    let store = Store::open(&Database::sqlite(dir.path().join("journal.db")).max_connections(1))
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
    tokio::time::timeout(Duration::from_secs(5), async {
        while store.writer.queued() > 0 {
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
    let store = Store::open(&Database::sqlite(dir.path().join("journal.db")).max_connections(1))
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
