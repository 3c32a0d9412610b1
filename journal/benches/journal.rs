//! Refunds per second through the journal against the facade alone, in the same run, on the
//! loopback sandbox (AfterPay, the provider the journal matters most for).
//!
//! ```text
//! cargo bench -p refunds-journal                      # facade and SQLite
//! eval "$(scripts/pg-throwaway start)"                # and PostgreSQL, when this is set
//! cargo bench -p refunds-journal
//! ```
//!
//! Each benchmark sends new refunds (a fresh merchant reference every time) either one after
//! the other (`sequential`: the latency each layer adds) or 16 at a time (`concurrent_16`: the
//! throughput a service gets). Criterion reports the throughput in refunds per second.
//!
//! - `facade`: [`Refunds::refund`], no journal;
//! - `journal_sqlite`: [`Journal::refund`] on a SQLite file (WAL, `synchronous=FULL`);
//! - `journal_postgres`: [`Journal::refund`] on PostgreSQL (`REFUNDS_JOURNAL_PG_URL`, in a
//!   schema of its own that is dropped at the end).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use refunds::{
    AfterPayConfig, LineItem, MerchantReference, Money, Provider, RefundRequest, Refunds,
};
use refunds_journal::{Database, Journal, JournalConfig, JournaledRefund};
use rust_decimal::Decimal;
use sandbox::{DEFAULT_CAPTURE_NUMBER, OrderSeed, Sandbox, SandboxConfig, credentials};

/// Orders the refunds rotate over (each captures far more than the run refunds).
const ORDERS: u64 = 1_000;
/// Refunds in flight at once in the concurrent benchmarks.
const CONCURRENCY: u64 = 16;

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

/// What a benchmark sends through.
#[derive(Clone)]
enum Path {
    Facade,
    Journal(Journal),
}

impl Path {
    async fn refund(&self, refunds: &Refunds, request: &RefundRequest) {
        match self {
            Path::Facade => {
                refunds.refund(request).await.expect("a refund");
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
}

fn bench(c: &mut Criterion) {
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
    let mut paths = vec![("facade", Path::Facade)];
    let sqlite = runtime
        .block_on(Journal::open_with(
            Database::sqlite(dir.path().join("bench.db")),
            JournalConfig::default(),
        ))
        .expect("the SQLite journal");
    paths.push(("journal_sqlite", Path::Journal(sqlite)));
    let pg_schema = format!("bench_{run}");
    let pg_url = std::env::var("REFUNDS_JOURNAL_PG_URL").ok();
    match &pg_url {
        Some(url) => {
            let postgres = runtime
                .block_on(Journal::open_with(
                    Database::postgres(url).schema(&pg_schema),
                    JournalConfig::default(),
                ))
                .expect("the PostgreSQL journal");
            paths.push(("journal_postgres", Path::Journal(postgres)));
        }
        None => eprintln!(
            "REFUNDS_JOURNAL_PG_URL is not set: no PostgreSQL figures (eval \"$(scripts/pg-throwaway start)\")"
        ),
    }

    let mut group = c.benchmark_group("refunds");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Elements(1));
    for (name, path) in &paths {
        group.bench_function(format!("{name}/sequential"), |b| {
            b.to_async(&runtime).iter(|| {
                let request = requests.next();
                let (path, refunds) = (path.clone(), refunds.clone());
                async move { path.refund(&refunds, &request).await }
            });
        });
    }

    group.throughput(Throughput::Elements(CONCURRENCY));
    for (name, path) in &paths {
        group.bench_function(format!("{name}/concurrent_{CONCURRENCY}"), |b| {
            b.to_async(&runtime).iter(|| {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..CONCURRENCY {
                    let request = requests.next();
                    let (path, refunds) = (path.clone(), refunds.clone());
                    tasks.spawn(async move { path.refund(&refunds, &request).await });
                }
                async move {
                    while let Some(done) = tasks.join_next().await {
                        done.expect("a refund task");
                    }
                }
            });
        });
    }
    group.finish();

    if let Some(url) = pg_url {
        runtime.block_on(async {
            let pool = sqlx::PgPool::connect(&url)
                .await
                .expect("connect for cleanup");
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{pg_schema}\" CASCADE"))
                .execute(&pool)
                .await
                .expect("drop the benchmark schema");
            pool.close().await;
        });
    }
    runtime.block_on(sandbox.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
