//! Refunds per second through the journal against the facade alone and against a floor, in
//! the same run, on the loopback sandbox (AfterPay, the provider the journal matters most for).
//!
//! ```text
//! cargo bench -p refunds-journal                      # facade and SQLite
//! eval "$(scripts/pg-throwaway start)"                # and PostgreSQL, when this is set
//! cargo bench -p refunds-journal                      # (without PG_THROWAWAY_FAST: durable)
//! ```
//!
//! Each benchmark sends new refunds (a fresh merchant reference every time), either one after
//! the other (`journal_seq/<path>`: the latency each layer adds) or from [`TASKS`] callers at
//! once, each sending its next refund as soon as its last one is answered
//! (`journal_c32/<path>`: the throughput a service gets). One iteration is one refund, so
//! criterion's time per iteration is the inverse of the throughput (refunds per second).
//!
//! The paths:
//!
//! - `facade`: [`Refunds::refund`], no journal;
//! - `floor_sqlite`: the least a journal with the same durability can do: the facade's refund
//!   between two write transactions on a SQLite file with the journal's settings (WAL,
//!   `synchronous=FULL`): one that inserts a row and an event before the request leaves, one
//!   that updates the row and inserts an event after the answer. Minimal rows, no lease, no
//!   fingerprint, one `BEGIN IMMEDIATE ... COMMIT` each, every caller on its own;
//! - `journal_sqlite`: [`Journal::refund`] on a SQLite file (WAL, `synchronous=FULL`);
//! - `floor_postgres`, `journal_postgres`: the same on PostgreSQL (`REFUNDS_JOURNAL_PG_URL`,
//!   each in a schema of its own, dropped at the end; the floor's transactions are `BEGIN ...
//!   COMMIT`). Not measured when the variable is not set.
//!
//! And `journal_paired_seq/<backend>`: journal time over floor time for the same number of
//! sequential refunds, the two taking turns in blocks of [`PAIRED_BLOCK`] within each sample
//! (alternating which goes first), so that load from elsewhere on the machine hits both alike;
//! journal/floor throughput is its inverse. `journal_paired_c32/<backend>` pairs the journal
//! with itself the same way: its time per refund from 32 callers over its time per refund one
//! after the other, in turns of [`PAIRED_C32_BLOCK`] and [`PAIRED_C32_SEQ_BLOCK`] refunds; the
//! 32 callers' throughput over the sequential throughput is its inverse. (Two separate runs of
//! `journal_c32` and `journal_seq`, seconds apart, differ by load as much as by the code.)
//!
//! Targets (`cargo xtask bench` prints them): SQLite sequential journal >= its floor; SQLite
//! with 32 callers >= 4x its sequential throughput; PostgreSQL with 32 callers >= 3x (each
//! from the paired figures).

#[allow(
    dead_code,
    reason = "the journal's paired benchmark measures a time ratio only"
)]
#[path = "../../facade/benches/common/derived.rs"]
mod derived;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::Measurement;
use criterion::{Criterion, SamplingMode, Throughput};
use derived::Derived;
use refunds::{
    AfterPayConfig, LineItem, MerchantReference, Money, Provider, RefundRequest, Refunds,
};
use refunds_journal::{Database, Journal, JournalConfig, JournaledRefund};
use rust_decimal::Decimal;
use sandbox::{DEFAULT_CAPTURE_NUMBER, OrderSeed, Sandbox, SandboxConfig, credentials};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Orders the refunds rotate over (each captures far more than the run refunds).
const ORDERS: u64 = 1_000;
/// Callers at once in the concurrent benchmarks.
const TASKS: u64 = 32;
/// The modes: criterion group suffix and callers.
const MODES: [(&str, u64); 2] = [("seq", 1), ("c32", TASKS)];
/// Refunds per turn of the journal and of its floor in `journal_paired_seq`.
const PAIRED_BLOCK: u64 = 8;
/// Refunds per turn of the 32 callers in `journal_paired_c32`: thirty-two each, so that the
/// turn's start and end (fewer than 32 callers busy) weigh little.
const PAIRED_C32_BLOCK: u64 = TASKS * 32;
/// Refunds per sequential turn in `journal_paired_c32` (about as long as a turn of the 32
/// callers, at the target's ratio).
const PAIRED_C32_SEQ_BLOCK: u64 = PAIRED_C32_BLOCK / 4;

/// The refunds to send: a new merchant reference each time.
struct Requests {
    run: String,
    next: AtomicU64,
}

impl Requests {
    fn next(&self) -> RefundRequest {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let amount = Money::parse("1.00", "EUR").expect("amount");
        RefundRequest::new(
            Provider::AfterPay,
            format!("ORD-{}", n % ORDERS),
            amount,
            MerchantReference::new(format!("RF-{}-{n}", self.run)).expect("reference"),
        )
        .with_capture_number(DEFAULT_CAPTURE_NUMBER)
        .with_line_items(vec![LineItem {
            product_id: "SKU-1".to_owned(),
            description: "Returned goods".to_owned(),
            quantity: 1,
            unit_price: amount,
            unit_vat: Money::zero(amount.currency()),
            vat_percent: Decimal::ZERO,
        }])
    }
}

/// The floor's two tables: the least a record of intent and outcome takes.
const FLOOR_SQLITE_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS floor_entries (
        reference TEXT PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS floor_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        reference TEXT NOT NULL REFERENCES floor_entries (reference),
        kind TEXT NOT NULL);";
const FLOOR_POSTGRES_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS floor_entries (
        reference TEXT PRIMARY KEY, state TEXT NOT NULL, version BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS floor_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        reference TEXT NOT NULL REFERENCES floor_entries (reference),
        kind TEXT NOT NULL);";

/// The floor: the facade's refund between two durable write transactions, as plain as they
/// come.
#[derive(Clone)]
enum Floor {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Floor {
    /// A SQLite file with the journal's settings, and its pool's size (4).
    async fn sqlite(path: &std::path::Path) -> Floor {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("the floor's SQLite file");
        sqlx::raw_sql(FLOOR_SQLITE_SCHEMA)
            .execute(&pool)
            .await
            .expect("the floor's tables");
        Floor::Sqlite(pool)
    }

    /// A PostgreSQL schema of its own, and the journal's pool size (10).
    async fn postgres(url: &str, schema: &str) -> Floor {
        let admin = PgPool::connect(url).await.expect("PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&admin)
            .await
            .expect("the floor's schema");
        admin.close().await;
        let options: PgConnectOptions = url.parse().expect("the PostgreSQL URL");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options.options([("search_path", schema)]))
            .await
            .expect("PostgreSQL");
        sqlx::raw_sql(FLOOR_POSTGRES_SCHEMA)
            .execute(&pool)
            .await
            .expect("the floor's tables");
        Floor::Postgres(pool)
    }

    /// The intent: a row and its event, committed.
    async fn before(&self, reference: &str) {
        let entry =
            "INSERT INTO floor_entries (reference, state, version) VALUES ($1, 'in_flight', 1)";
        let event = "INSERT INTO floor_events (reference, kind) VALUES ($1, 'intent')";
        self.transaction(entry, event, reference).await;
    }

    /// The outcome: the row updated and its event, committed.
    async fn after(&self, reference: &str) {
        let entry = "UPDATE floor_entries SET state = 'applied', version = version + 1 \
                     WHERE reference = $1 AND version = 1";
        let event = "INSERT INTO floor_events (reference, kind) VALUES ($1, 'answer')";
        self.transaction(entry, event, reference).await;
    }

    async fn transaction(&self, entry: &str, event: &str, reference: &str) {
        match self {
            Floor::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("BEGIN");
                let written = sqlx::query(entry)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .expect("the floor's row");
                assert_eq!(written.rows_affected(), 1);
                sqlx::query(event)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .expect("the floor's event");
                tx.commit().await.expect("COMMIT");
            }
            Floor::Postgres(pool) => {
                let mut tx = pool.begin().await.expect("BEGIN");
                let written = sqlx::query(entry)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .expect("the floor's row");
                assert_eq!(written.rows_affected(), 1);
                sqlx::query(event)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .expect("the floor's event");
                tx.commit().await.expect("COMMIT");
            }
        }
    }
}

/// What a benchmark sends through.
#[derive(Clone)]
enum Path {
    Facade,
    Floor(Floor),
    Journal(Journal),
}

impl Path {
    async fn refund(&self, refunds: &Refunds, request: &RefundRequest) {
        match self {
            Path::Facade => {
                refunds.refund(request).await.expect("a refund");
            }
            Path::Floor(floor) => {
                let reference = request.merchant_reference.as_str();
                floor.before(reference).await;
                refunds.refund(request).await.expect("a refund");
                floor.after(reference).await;
            }
            Path::Journal(journal) => {
                let result = journal.refund(refunds, request).await.expect("journaled");
                assert!(
                    matches!(
                        result,
                        JournaledRefund::Applied {
                            replayed: false,
                            ..
                        }
                    ),
                    "{result:?}"
                );
            }
        }
    }

    /// Sends `iters` refunds from `tasks` callers at once (each sends its next as soon as its
    /// last is answered); the time it took.
    async fn run(
        &self,
        refunds: &Refunds,
        requests: &Arc<Requests>,
        iters: u64,
        tasks: u64,
    ) -> Duration {
        let left = Arc::new(AtomicU64::new(iters));
        let started = Instant::now();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..tasks.min(iters) {
            let (path, refunds, requests, left) = (
                self.clone(),
                refunds.clone(),
                Arc::clone(requests),
                Arc::clone(&left),
            );
            callers.spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    path.refund(&refunds, &requests.next()).await;
                }
            });
        }
        while let Some(done) = callers.join_next().await {
            done.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        }
        started.elapsed()
    }
}

/// Everything a run needs: the sandbox, the facade client, the requests and the paths.
struct Setup {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    refunds: Refunds,
    requests: Arc<Requests>,
    /// The paths, in the order the table lists them.
    paths: Vec<(&'static str, Path)>,
    /// Per backend: the floor and the journal, for the paired benchmark.
    pairs: Vec<(&'static str, Path, Path)>,
    pg: Option<(String, Vec<String>)>,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let sandbox = runtime
            .block_on(Sandbox::start(SandboxConfig::default()))
            .expect("the sandbox");
        for i in 0..ORDERS {
            sandbox.afterpay().seed_order(OrderSeed::new(
                format!("ORD-{i}"),
                "EUR",
                Decimal::new(1_000_000_000, 0),
            ));
        }
        let refunds = Refunds::builder()
            .afterpay(AfterPayConfig::new(
                sandbox.afterpay().base_url(),
                credentials::AFTERPAY_API_KEY,
            ))
            .build()
            .expect("the facade client");
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let requests = Arc::new(Requests {
            run: run.clone(),
            next: AtomicU64::new(0),
        });

        let dir = tempfile::tempdir().expect("a temporary directory");
        let floor_sqlite =
            Path::Floor(runtime.block_on(Floor::sqlite(&dir.path().join("floor.db"))));
        let journal_sqlite = Path::Journal(
            runtime
                .block_on(Journal::open_with(
                    Database::sqlite(dir.path().join("journal.db")),
                    JournalConfig::default(),
                ))
                .expect("the SQLite journal"),
        );
        let mut paths = vec![
            ("facade", Path::Facade),
            ("floor_sqlite", floor_sqlite.clone()),
            ("journal_sqlite", journal_sqlite.clone()),
        ];
        let mut pairs = vec![("sqlite", floor_sqlite, journal_sqlite)];
        let pg = match std::env::var("REFUNDS_JOURNAL_PG_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let (floor_schema, journal_schema) =
                    (format!("bench_floor_{run}"), format!("bench_{run}"));
                let floor = Path::Floor(runtime.block_on(Floor::postgres(&url, &floor_schema)));
                let journal = Path::Journal(
                    runtime
                        .block_on(Journal::open_with(
                            Database::postgres(&url).schema(&journal_schema),
                            JournalConfig::default(),
                        ))
                        .expect("the PostgreSQL journal"),
                );
                paths.push(("floor_postgres", floor.clone()));
                paths.push(("journal_postgres", journal.clone()));
                pairs.push(("postgres", floor, journal));
                Some((url, vec![floor_schema, journal_schema]))
            }
            _ => {
                eprintln!(
                    "REFUNDS_JOURNAL_PG_URL is not set: PostgreSQL not measured \
                     (eval \"$(scripts/pg-throwaway start)\", without PG_THROWAWAY_FAST)"
                );
                None
            }
        };
        Setup {
            runtime,
            sandbox,
            refunds,
            requests,
            paths,
            pairs,
            pg,
            _dir: dir,
        }
    }

    /// Drops the PostgreSQL schemas and stops the sandbox.
    fn finish(self) {
        let Setup {
            runtime,
            sandbox,
            paths,
            pairs,
            pg,
            ..
        } = self;
        drop((paths, pairs));
        runtime.block_on(async {
            if let Some((url, schemas)) = pg {
                let pool = PgPool::connect(&url).await.expect("connect for cleanup");
                for schema in schemas {
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&pool)
                        .await
                        .expect("drop a benchmark schema");
                }
                pool.close().await;
            }
            sandbox.shutdown().await;
        });
    }
}

/// Runs `f` on a worker of the runtime (as a service's handler would run).
async fn on_worker<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(f)
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

fn configure<M: Measurement>(group: &mut criterion::BenchmarkGroup<'_, M>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

/// Refunds/s of each path, sequential and with 32 callers.
fn throughput(c: &mut Criterion, setup: &Setup) {
    let runtime = &setup.runtime;
    for (mode, tasks) in MODES {
        let mut group = c.benchmark_group(format!("journal_{mode}"));
        configure(&mut group);
        group.throughput(Throughput::Elements(1));
        for (name, path) in &setup.paths {
            group.bench_function(*name, |b| {
                b.to_async(runtime).iter_custom(|iters| {
                    let (path, refunds, requests) = (
                        path.clone(),
                        setup.refunds.clone(),
                        Arc::clone(&setup.requests),
                    );
                    on_worker(async move { path.run(&refunds, &requests, iters, tasks).await })
                });
            });
        }
        group.finish();
    }
}

/// One side of a paired benchmark: a path, the refunds it sends per turn, from how many
/// callers at once.
struct Side {
    path: Path,
    block: u64,
    tasks: u64,
}

impl Side {
    fn new(path: &Path, block: u64, tasks: u64) -> Side {
        Side {
            path: path.clone(),
            block,
            tasks,
        }
    }
}

/// `measured`'s time per refund over `baseline`'s, the two taking turns (the baseline first on
/// even turns, `measured` on odd ones, so that load from elsewhere hits both alike) until
/// together they sent `iters` refunds, at least one turn each.
async fn paired_ratio(
    measured: &Side,
    baseline: &Side,
    refunds: &Refunds,
    requests: &Arc<Requests>,
    iters: u64,
) -> f64 {
    let mut time = [Duration::ZERO; 2];
    let mut done = [0u64; 2];
    let mut turn = 0u64;
    while done[0] + done[1] < iters || turn == 0 {
        let even = turn.is_multiple_of(2);
        for baseline_turn in [even, !even] {
            let (side, at) = if baseline_turn {
                (baseline, 1)
            } else {
                (measured, 0)
            };
            time[at] += side
                .path
                .run(refunds, requests, side.block, side.tasks)
                .await;
            done[at] += side.block;
        }
        turn += 1;
    }
    let per_refund = |at: usize| time[at].as_secs_f64() / done[at] as f64;
    per_refund(0) / per_refund(1)
}

/// Per backend, the paired ratio ([`paired_ratio`]) of the two sides `sides` makes of the
/// backend's floor and journal, in criterion group `group`; `per` names the baseline in the
/// output (`x floor time`).
fn paired(
    setup: &Setup,
    group: &str,
    per: &'static str,
    sides: impl Fn(&Path, &Path) -> (Side, Side),
) {
    let runtime = &setup.runtime;
    let mut c = Criterion::default()
        .with_measurement(Derived::time_ratio(per))
        .configure_from_args();
    let mut group = c.benchmark_group(group);
    configure(&mut group);
    for (backend, floor, journal) in &setup.pairs {
        let sides = Arc::new(sides(floor, journal));
        group.bench_function(*backend, |b| {
            b.to_async(runtime).iter_custom(|iters| {
                let (sides, refunds, requests) = (
                    Arc::clone(&sides),
                    setup.refunds.clone(),
                    Arc::clone(&setup.requests),
                );
                on_worker(async move {
                    let (measured, baseline) = &*sides;
                    paired_ratio(measured, baseline, &refunds, &requests, iters).await
                        * iters as f64
                })
            });
        });
    }
    group.finish();
}

/// One setup (sandbox, databases, journals) for both kinds of measurement, in one run.
fn main() {
    let setup = Setup::new();
    let mut wall_time = Criterion::default().configure_from_args();
    throughput(&mut wall_time, &setup);
    // Journal time over floor time for the same sequential refunds.
    paired(
        &setup,
        "journal_paired_seq",
        "x floor time",
        |floor, journal| {
            (
                Side::new(journal, PAIRED_BLOCK, 1),
                Side::new(floor, PAIRED_BLOCK, 1),
            )
        },
    );
    // The journal's time per refund from 32 callers over its time per refund one after the
    // other.
    paired(
        &setup,
        "journal_paired_c32",
        "x sequential time",
        |_, journal| {
            (
                Side::new(journal, PAIRED_C32_BLOCK, TASKS),
                Side::new(journal, PAIRED_C32_SEQ_BLOCK, 1),
            )
        },
    );
    setup.finish();
    wall_time.final_summary();
}
