//! How many statements a journaled refund sends to PostgreSQL, measured on a real server, two
//! ways:
//!
//! - **on the wire** (the figure the target is held to): the journal connects through a proxy
//!   of the test's own that reads every message the client sends to the server. A statement
//!   executed is a simple `Query` message (`Q`: sqlx sends `BEGIN`, `COMMIT` and `ROLLBACK`
//!   this way) or an `Execute` of the extended protocol (`E`: every query with parameters);
//!   `Sync` (`S`) ends a round trip (sqlx's liveness ping is a `Sync` alone);
//! - **sqlx's own log**: sqlx reports each query it executes as a `tracing` event (target
//!   `sqlx::query`), counted by a subscriber set as the default of a current-thread runtime
//!   (every task of the call runs on that thread). It does not see the `BEGIN` that sqlx
//!   queues in front of a transaction's first query (checked below), so it is the cross-check,
//!   not the measure.
//!
//! The target: at most 2 statements per state change of an entry (a new `version`). A write
//! is one statement (the entry's INSERT or UPDATE and its events' INSERT in one
//! data-modifying `WITH`): a lone write is autocommitted (no `BEGIN`, no `COMMIT`), and writes
//! queued together share one transaction (group commit), so its `BEGIN` and `COMMIT` cost at
//! most one statement per write.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use refunds::{Provider, RefundRequest};
use refunds_journal::{EventKind, Journal, JournaledRefund};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::harness::{Backend, Env, TestDb, config, history_kinds, pg_url, request};

/// What a client sent, as the proxy read it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    /// A simple query (`Q`), with its text.
    Query(String),
    /// An `Execute` (`E`) of the extended protocol, with the SQL of the statement its portal
    /// was bound to (sqlx prepares a statement once per connection and binds it again).
    Execute(String),
    /// `Sync` (`S`): the client waits for the server's answer.
    Sync,
}

impl Sent {
    fn is_statement(&self) -> bool {
        !matches!(self, Sent::Sync)
    }
}

/// A proxy in front of the test's PostgreSQL server that records what clients send.
struct WireProxy {
    port: u16,
    /// What each client sent, with the number of its connection (in the order accepted).
    sent: Arc<Mutex<Vec<(usize, Sent)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WireProxy {
    async fn start(url: &str) -> WireProxy {
        let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            for connection in 0.. {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let mut reader = Frontend {
                        connection,
                        ..Frontend::default()
                    };
                    let mut chunk = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from_client.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // Recorded before it is forwarded: counted before the answer comes.
                        reader.feed(&chunk[..n], &record);
                        if to_server.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown().await;
                });
            }
        });
        WireProxy { port, sent, task }
    }

    /// `url` through the proxy, without TLS (the proxy reads the messages).
    fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.query_pairs_mut().append_pair("sslmode", "disable");
        url.to_string()
    }

    fn take(&self) -> Vec<Sent> {
        self.take_by_connection()
            .into_iter()
            .map(|(_, sent)| sent)
            .collect()
    }

    /// What was sent, each with the number of the connection it came on.
    fn take_by_connection(&self) -> Vec<(usize, Sent)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl Drop for WireProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Splits what a client sends into the protocol's messages: untyped ones first (an
/// `SSLRequest`, then the startup message), then `type, length, body`.
#[derive(Default)]
struct Frontend {
    /// The connection's number, recorded with what it sends.
    connection: usize,
    buffer: Vec<u8>,
    started: bool,
    /// The SQL of each prepared statement, by name (`""`: the unnamed one).
    prepared: std::collections::HashMap<String, String>,
    /// The SQL of the portal bound last.
    bound: String,
}

impl Frontend {
    fn feed(&mut self, bytes: &[u8], record: &Mutex<Vec<(usize, Sent)>>) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let be32 = |at: usize| {
                u32::from_be_bytes(self.buffer[at..at + 4].try_into().unwrap()) as usize
            };
            if !self.started {
                if self.buffer.len() < 8 || self.buffer.len() < be32(0) {
                    return;
                }
                let (length, code) = (be32(0), be32(4));
                self.buffer.drain(..length);
                // SSLRequest, GSSENCRequest: the startup message follows.
                self.started = !matches!(code, 80_877_103 | 80_877_104);
                continue;
            }
            if self.buffer.len() < 5 || self.buffer.len() < 1 + be32(1) {
                return;
            }
            let length = be32(1);
            let tag = self.buffer[0];
            let body = &self.buffer[5..1 + length];
            let text = |bytes: &[u8]| {
                let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                String::from_utf8_lossy(&bytes[..end]).into_owned()
            };
            // Two strings in a row: the first, and what follows its NUL.
            let two = |bytes: &[u8]| {
                let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                (text(bytes), text(&bytes[(end + 1).min(bytes.len())..]))
            };
            let sent = match tag {
                b'Q' => Some(Sent::Query(text(body))),
                b'P' => {
                    // Parse: the statement's name, its SQL.
                    let (name, sql) = two(body);
                    self.prepared.insert(name, sql);
                    None
                }
                b'B' => {
                    // Bind: the portal's name, the statement's.
                    let (_, statement) = two(body);
                    self.bound = self.prepared.get(&statement).cloned().unwrap_or_default();
                    None
                }
                b'E' => Some(Sent::Execute(self.bound.clone())),
                b'S' => Some(Sent::Sync),
                _ => None,
            };
            if let Some(sent) = sent {
                record.lock().unwrap().push((self.connection, sent));
            }
            self.buffer.drain(..1 + length);
        }
    }
}

/// sqlx's target for the statements it executes.
const SQLX_QUERY: &str = "sqlx::query";

/// Every statement sqlx logs on this thread while it is the default subscriber.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<String>>>);

impl Logged {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Forgets what was logged and makes sure sqlx's events will reach this subscriber.
    ///
    /// tracing caches each callsite's interest when the callsite is first hit. While only one
    /// dispatcher exists, it asks the *hitting thread's* default: if another test's thread, with
    /// no subscriber, runs sqlx's first query, sqlx's callsite is cached as "never" for every
    /// thread, and this subscriber sees nothing (it happened once in CI; the test
    /// `sqlx_log_is_counted_when_another_thread_ran_the_first_query` shows it). Rebuilding the
    /// cache from this thread asks every live dispatcher again.
    fn restart(&self) {
        self.take();
        tracing::callsite::rebuild_interest_cache();
    }
}

/// The SQL of one `sqlx::query` event: `db.statement`, or the summary of a short statement.
#[derive(Default)]
struct LoggedSql {
    summary: String,
    statement: String,
}

impl Visit for LoggedSql {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.trim().to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}");
        match field.name() {
            "summary" => self.summary = value.trim_matches('"').to_owned(),
            "db.statement" => self.statement = value.trim_matches('"').trim().to_owned(),
            _ => {}
        }
    }
}

impl Subscriber for Logged {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == SQLX_QUERY
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != SQLX_QUERY {
            return;
        }
        let mut sql = LoggedSql::default();
        event.record(&mut sql);
        self.0.lock().unwrap().push(if sql.statement.is_empty() {
            sql.summary
        } else {
            sql.statement
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// What one call sent.
struct Measured {
    wire: Vec<Sent>,
    logged: Vec<String>,
    /// The entry's state changes during the call (versions it moved).
    changes: i64,
    result: JournaledRefund,
}

impl Measured {
    fn statements(&self) -> usize {
        self.wire.iter().filter(|sent| sent.is_statement()).count()
    }

    fn round_trips(&self) -> usize {
        self.wire
            .iter()
            .filter(|sent| matches!(sent, Sent::Sync | Sent::Query(_)))
            .count()
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what} ({}): {} statement(s) on the wire, {} logged by sqlx, for {} state change(s); \
             {} round trip(s) in all (sqlx's liveness pings included)",
            self.result.label(),
            self.statements(),
            self.logged.len(),
            self.changes,
            self.round_trips(),
        );
        for sent in &self.wire {
            let line = match sent {
                Sent::Query(sql) => format!("Q {sql}"),
                Sent::Execute(sql) => format!("E {sql}"),
                Sent::Sync => "S".to_owned(),
            };
            eprintln!("  {}", line.chars().take(110).collect::<String>());
        }
    }

    /// At most 2 statements per state change, none of them a transaction's own.
    fn assert_within_target(&self, what: &str) {
        assert!(self.changes > 0, "{what}: nothing written");
        let statements = i64::try_from(self.statements()).unwrap();
        assert!(
            statements <= 2 * self.changes,
            "{what}: {statements} statements for {} state changes: {:#?}",
            self.changes,
            self.wire
        );
        assert!(
            self.logged.len() <= self.statements(),
            "{what}: sqlx logged more than the wire carried: {:#?}",
            self.logged
        );
        for sent in &self.wire {
            if let Sent::Query(sql) | Sent::Execute(sql) = sent {
                let word = sql.split_whitespace().next().unwrap_or("");
                assert!(
                    ![
                        "BEGIN",
                        "COMMIT",
                        "ROLLBACK",
                        "SAVEPOINT",
                        "RELEASE",
                        "START"
                    ]
                    .iter()
                    .any(|keyword| word.eq_ignore_ascii_case(keyword)),
                    "{what}: a transaction statement: {sql}"
                );
            }
        }
    }
}

/// Runs one refund and returns what it sent.
async fn measure(
    proxy: &WireProxy,
    logged: &Logged,
    journal: &Journal,
    env: &Env,
    req: &RefundRequest,
) -> Measured {
    let before = journal
        .entry(req.provider, &req.merchant_reference)
        .await
        .unwrap()
        .map_or(0, |entry| entry.version);
    // A connection the read returns to the pool is pinged on its way back (a `Sync`): let
    // that pass before counting.
    tokio::task::yield_now().await;
    proxy.take();
    logged.restart();
    let result = journal.refund(&env.refunds(), req).await.unwrap();
    tokio::task::yield_now().await;
    Measured {
        wire: proxy.take(),
        logged: logged.take(),
        changes: result.entry().version - before,
        result,
    }
}

/// Runs `test` on a current-thread runtime whose thread has `logged` as its subscriber.
fn on_one_thread<F: std::future::Future<Output = ()>>(logged: &Logged, test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _default = tracing::subscriber::set_default(logged.clone());
    runtime.block_on(test);
}

/// The sandbox, the proxy, a PostgreSQL test database and a journal on it through the proxy.
async fn through_proxy() -> (Env, WireProxy, TestDb, Journal) {
    let env = Env::start().await;
    let proxy = WireProxy::start(&pg_url()).await;
    let db = TestDb::new(Backend::Postgres);
    let journal = Journal::open_with(db.database_at(&proxy.url(&pg_url())), config())
        .await
        .unwrap();
    (env, proxy, db, journal)
}

/// A refund on PostgreSQL: 2 statements for its 2 state changes (the intent, the answer), on
/// a fresh journal and on a warm one, and for a rejected one; the rejected refund sent again:
/// 4 statements for 2 state changes (the claim's INSERT of a new entry, which finds the
/// reference taken and writes nothing, its read of the entry, the claim, the answer); a replay:
/// 2 statements, nothing written. The history reads back in order.
#[test]
fn postgres_sends_at_most_two_statements_per_state_change() {
    let logged = Logged::default();
    on_one_thread(&logged, async {
        let (env, proxy, db, journal) = through_proxy().await;

        env.seed(Provider::Moyasar, "ORD-STMT");
        let first = request(Provider::Moyasar, "ORD-STMT", "1.00", "RF-STMT-1");
        let cold = measure(&proxy, &logged, &journal, &env, &first).await;
        cold.report("first refund on a new journal");
        assert_eq!(cold.result.label(), "applied");
        assert_eq!(cold.changes, 2, "the intent and the answer");
        assert_eq!(cold.statements(), 2, "{:#?}", cold.wire);
        cold.assert_within_target("first refund");

        let second = request(Provider::Moyasar, "ORD-STMT", "1.00", "RF-STMT-2");
        let warm = measure(&proxy, &logged, &journal, &env, &second).await;
        warm.report("second refund");
        assert_eq!(warm.statements(), 2, "{:#?}", warm.wire);
        assert_eq!(warm.logged.len(), 2, "{:#?}", warm.logged);
        warm.assert_within_target("second refund");

        // An order the provider does not know: rejected (not applied), then sent again once it
        // exists.
        let again = request(Provider::Moyasar, "ORD-STMT-LATER", "1.00", "RF-STMT-3");
        let rejected = measure(&proxy, &logged, &journal, &env, &again).await;
        rejected.report("a rejected refund");
        assert_eq!(rejected.result.label(), "rejected", "{:?}", rejected.result);
        rejected.assert_within_target("a rejected refund");
        env.seed(Provider::Moyasar, "ORD-STMT-LATER");
        let resent = measure(&proxy, &logged, &journal, &env, &again).await;
        resent.report("the same refund sent again");
        assert_eq!(resent.result.label(), "applied", "{:?}", resent.result);
        assert_eq!(resent.changes, 2);
        assert_eq!(resent.statements(), 4, "{:#?}", resent.wire);
        resent.assert_within_target("the refund sent again");

        let replay = measure(&proxy, &logged, &journal, &env, &again).await;
        replay.report("a replayed refund");
        assert_eq!(replay.result.label(), "replayed");
        assert_eq!(replay.changes, 0, "nothing written");
        assert_eq!(replay.statements(), 2, "{:#?}", replay.wire);

        assert_eq!(
            history_kinds(&journal, Provider::Moyasar, &again.merchant_reference).await,
            [
                EventKind::Intent,
                EventKind::Answer,
                EventKind::Intent,
                EventKind::Answer
            ]
        );
        journal.close().await;
        db.cleanup().await;
    });
}

/// 32 refunds at once on PostgreSQL: every one applied, at most 2 statements per state change
/// on the wire in all, and writes queued together committed together: every transaction holds
/// at least two writes (a lone write is autocommitted), and at least one transaction was
/// opened (32 callers' intents queue while the first ones are written).
#[test]
fn postgres_commits_concurrent_writes_together() {
    const CALLERS: usize = 32;
    let logged = Logged::default();
    on_one_thread(&logged, async {
        let (env, proxy, db, journal) = through_proxy().await;
        let requests: Vec<RefundRequest> = (0..CALLERS)
            .map(|i| {
                let order = format!("ORD-STMT-GC-{i}");
                env.seed(Provider::Moyasar, &order);
                request(
                    Provider::Moyasar,
                    &order,
                    "1.00",
                    &format!("RF-STMT-GC-{i}"),
                )
            })
            .collect();
        tokio::task::yield_now().await;
        proxy.take();
        let mut calls = tokio::task::JoinSet::new();
        for req in requests {
            let (journal, refunds) = (journal.clone(), env.refunds());
            calls.spawn(async move { journal.refund(&refunds, &req).await });
        }
        let mut changes = 0;
        while let Some(done) = calls.join_next().await {
            let result = done.unwrap().unwrap();
            assert_eq!(result.label(), "applied", "{result:?}");
            changes += result.entry().version;
        }
        tokio::task::yield_now().await;
        let by_connection = proxy.take_by_connection();
        let wire: Vec<Sent> = by_connection.iter().map(|(_, sent)| sent.clone()).collect();
        assert_eq!(changes, 2 * CALLERS as i64, "the intents and the answers");
        let statements = wire.iter().filter(|sent| sent.is_statement()).count();
        assert!(
            statements as i64 <= 2 * changes,
            "{statements} statements for {changes} state changes: {wire:#?}"
        );
        // Each transaction on the wire: how many writes (`Execute`s) it held, followed on the
        // connection that sent it.
        let mut transactions: Vec<usize> = Vec::new();
        let mut open: std::collections::HashMap<usize, usize> = Default::default();
        for (connection, sent) in &by_connection {
            match sent {
                Sent::Query(sql) if sql == "BEGIN" => {
                    assert!(open.insert(*connection, 0).is_none(), "BEGIN inside BEGIN");
                }
                Sent::Query(sql) if sql == "COMMIT" => {
                    let writes = open.remove(connection);
                    transactions.push(writes.expect("a COMMIT after its BEGIN"));
                }
                Sent::Execute(_) => {
                    if let Some(writes) = open.get_mut(connection) {
                        *writes += 1;
                    }
                }
                _ => {}
            }
        }
        assert!(open.is_empty(), "a transaction left open: {open:?}");
        eprintln!(
            "{CALLERS} refunds at once: {statements} statements for {changes} state changes; \
             transactions of {transactions:?} writes, the other writes alone"
        );
        assert!(
            !transactions.is_empty(),
            "no writes were committed together"
        );
        assert!(
            transactions.iter().all(|writes| *writes >= 2),
            "a transaction of fewer than two writes: {transactions:?}"
        );
        journal.close().await;
        db.cleanup().await;
    });
}

/// The measurements measure: through the proxy, a transaction's `BEGIN`, its query and its
/// `COMMIT` are three statements on the wire; sqlx's log shows the query and the `COMMIT` only
/// (it queues the `BEGIN` in front of the query unlogged), which is why the wire is the figure
/// the target is held to.
#[test]
fn the_wire_count_sees_every_statement_and_sqlx_log_misses_begin() {
    let logged = Logged::default();
    on_one_thread(&logged, async {
        let proxy = WireProxy::start(&pg_url()).await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&proxy.url(&pg_url()))
            .await
            .unwrap();
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        tokio::task::yield_now().await;
        proxy.take();
        logged.restart();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT $1::int")
            .bind(3)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let statements: Vec<Sent> = proxy
            .take()
            .into_iter()
            .filter(Sent::is_statement)
            .collect();
        assert_eq!(
            statements,
            [
                Sent::Query("BEGIN".into()),
                Sent::Execute("SELECT $1::int".into()),
                Sent::Query("COMMIT".into()),
            ]
        );
        assert_eq!(logged.take(), ["SELECT $1::int", "COMMIT"]);
        pool.close().await;
    });
}

/// sqlx's events reach the counting subscriber even when a thread with no subscriber ran sqlx's
/// first query (and so cached its callsite's interest as "never"): what `Logged::restart` is for.
#[test]
fn sqlx_log_is_counted_when_another_thread_ran_the_first_query() {
    let logged = Logged::default();
    on_one_thread(&logged, async {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
                sqlx::query("SELECT 1").execute(&pool).await.unwrap();
                pool.close().await;
            });
        })
        .join()
        .unwrap();
        let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
        logged.restart();
        sqlx::query("SELECT 2").execute(&pool).await.unwrap();
        assert_eq!(logged.take(), ["SELECT 2"]);
        pool.close().await;
    });
}
