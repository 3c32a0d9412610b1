//! Refunds per second on the loopback sandbox: the facade's `Refunds::refund` against a direct
//! call of the provider's generated client for the same refund (the same wire body, checked
//! before measuring), per provider, sequentially and with 32 concurrent tasks. Target:
//! facade/direct >= 0.95 (issue 17; `cargo xtask bench` checks it).
//!
//! - `throughput_{seq,c32}/<provider>/{facade,direct}`: one iteration is one refund, so
//!   criterion's time per iteration is the inverse of the throughput.
//! - `paired_{seq,c32}/<provider>`: each sample sends the same number of refunds through both
//!   clients, taking turns in blocks of [`PAIRED_BLOCK`] refunds per task (alternating which
//!   goes first), and its value is facade time over direct time: a paired comparison that load
//!   from elsewhere on the machine does not skew the way it can skew two benchmarks run a
//!   minute apart. Facade/direct throughput is the inverse.
//!
//! Every refund has a fresh merchant reference (the facade remembers settled ones) and goes to
//! an order seeded, before the clock starts, with room for [`PER_ORDER`] refunds; a fresh order
//! every [`PER_ORDER`] refunds keeps answers small (Moyasar answers with the whole order). Each
//! provider and mode gets a freshly started sandbox. The refunds run in spawned tasks on the
//! runtime's workers, as in a service; the sandbox shares those workers (one loopback host).
//!
//! [`LATENCY_VAR`] (microseconds) makes the sandbox take that long longer over every refund (a
//! latency fault): the facade's cost per call is fixed, so its share of a refund's time falls as
//! a provider's round trip grows from the loopback's hundred-odd microseconds.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::Measurement;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use refunds::{Provider, Refunds};
use sandbox::Sandbox;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use common::{Derived, Direct, facade_client, facade_refund, seed};

/// Refunds per order before a fresh one is used.
const PER_ORDER: u64 = 10;

/// Concurrent tasks in the concurrent mode.
const TASKS: u64 = 32;

/// Refunds per task in one block of a paired sample: the two clients take turns this often.
const PAIRED_BLOCK: u64 = 16;

/// The two modes: criterion group suffix and concurrent tasks.
const MODES: [(&str, u64); 2] = [("seq", 1), ("c32", TASKS)];

/// The variable that adds latency to every refund the sandbox answers, in microseconds (unset
/// or 0: none).
const LATENCY_VAR: &str = "REFUNDS_BENCH_LATENCY_US";

/// Which client sends.
#[derive(Clone, Copy)]
enum Via {
    Facade,
    Direct,
}

/// One provider's sandbox, both clients, and the refund numbering.
struct Bench {
    sandbox: Sandbox,
    provider: Provider,
    facade: Refunds,
    direct: Direct,
    /// The next refund's number: refund `n` goes to order `n / PER_ORDER`.
    next: AtomicU64,
    /// How many orders are seeded.
    seeded: Mutex<u64>,
    /// Paired blocks sent (to alternate which client goes first).
    samples: AtomicU64,
}

impl Bench {
    async fn start(provider: Provider) -> Arc<Bench> {
        let sandbox = common::start_sandbox().await;
        let latency = std::env::var(LATENCY_VAR).map_or(0, |us| {
            us.parse()
                .unwrap_or_else(|_| panic!("{LATENCY_VAR} is microseconds, not {us:?}"))
        });
        if latency > 0 {
            common::handle(&sandbox, provider).inject(
                sandbox::Fault::Latency(Duration::from_micros(latency)),
                sandbox::Match::Any,
            );
        }
        let facade = facade_client(&sandbox, provider);
        let direct = Direct::new(&sandbox, provider).await;
        Arc::new(Bench {
            sandbox,
            provider,
            facade,
            direct,
            next: AtomicU64::new(0),
            seeded: Mutex::new(0),
            samples: AtomicU64::new(0),
        })
    }

    async fn stop(self: Arc<Bench>) {
        let Bench {
            sandbox,
            facade,
            direct,
            ..
        } = Arc::into_inner(self).expect("no refund in flight");
        drop((facade, direct));
        sandbox.shutdown().await;
    }

    fn order_id(n: u64) -> String {
        format!("ORD-{}", n / PER_ORDER)
    }

    /// Seeds every order refunds `..end` go to (untimed).
    fn seed_until(&self, end: u64) {
        let mut seeded = self.seeded.lock().unwrap();
        while *seeded * PER_ORDER < end {
            seed(
                &self.sandbox,
                self.provider,
                &Bench::order_id(*seeded * PER_ORDER),
                // Twice the room needed: a large order, small refunds.
                2 * PER_ORDER as i64 * common::AMOUNT_MINOR,
            );
            *seeded += 1;
        }
    }

    async fn refund(&self, via: Via, n: u64) {
        let order_id = Bench::order_id(n);
        let reference = format!("BENCH-{n}");
        match via {
            Via::Facade => facade_refund(&self.facade, self.provider, &order_id, &reference).await,
            Via::Direct => self.direct.refund(&order_id, &reference).await,
        }
    }

    /// Sends `iters` refunds via `via` with `tasks` concurrent tasks; the time they took.
    async fn run(self: &Arc<Bench>, via: Via, iters: u64, tasks: u64) -> Duration {
        let first = self.next.fetch_add(iters, Ordering::SeqCst);
        let end = first + iters;
        self.seed_until(end);
        let counter = Arc::new(AtomicU64::new(first));
        let started = Instant::now();
        let mut workers = JoinSet::new();
        for _ in 0..tasks.min(iters) {
            let bench = Arc::clone(self);
            let counter = Arc::clone(&counter);
            workers.spawn(async move {
                loop {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        break;
                    }
                    bench.refund(via, n).await;
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            if let Err(err) = done {
                std::panic::resume_unwind(err.into_panic());
            }
        }
        started.elapsed()
    }

    /// `iters` refunds through each client, in alternating blocks (which client goes first
    /// alternates too); `iters` times facade time / direct time.
    async fn paired(self: Arc<Bench>, iters: u64, tasks: u64) -> f64 {
        let mut facade = Duration::ZERO;
        let mut direct = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let block = left.min(PAIRED_BLOCK * tasks);
            left -= block;
            if self
                .samples
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(2)
            {
                facade += self.run(Via::Facade, block, tasks).await;
                direct += self.run(Via::Direct, block, tasks).await;
            } else {
                direct += self.run(Via::Direct, block, tasks).await;
                facade += self.run(Via::Facade, block, tasks).await;
            }
        }
        iters as f64 * facade.as_secs_f64() / direct.as_secs_f64()
    }
}

/// Runs `f` on a worker thread of `runtime`, as a service's handler would run.
async fn on_worker<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(f)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

fn configure<M: Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// Refunds/s of each client on its own.
fn throughput(c: &mut Criterion) {
    let runtime = common::runtime();
    let runtime: &Runtime = &runtime;
    for provider in Provider::ALL {
        common::assert_same_wire_body(provider);
    }
    for (mode, tasks) in MODES {
        let mut group = c.benchmark_group(format!("throughput_{mode}"));
        configure(&mut group);
        group.throughput(Throughput::Elements(1));
        for provider in Provider::ALL {
            let bench = runtime.block_on(Bench::start(provider));
            for (name, via) in [("facade", Via::Facade), ("direct", Via::Direct)] {
                group.bench_function(BenchmarkId::new(provider.as_str(), name), |b| {
                    b.to_async(runtime).iter_custom(|iters| {
                        let bench = Arc::clone(&bench);
                        on_worker(async move { bench.run(via, iters, tasks).await })
                    });
                });
            }
            runtime.block_on(bench.stop());
        }
        group.finish();
    }
}

/// Facade time over direct time, paired within each sample.
fn paired(c: &mut Criterion<Derived>) {
    let runtime = common::runtime();
    let runtime: &Runtime = &runtime;
    for (mode, tasks) in MODES {
        let mut group = c.benchmark_group(format!("paired_{mode}"));
        configure(&mut group);
        // Each iteration is two refunds, one per client.
        group.measurement_time(Duration::from_secs(4));
        for provider in Provider::ALL {
            let bench = runtime.block_on(Bench::start(provider));
            group.bench_function(provider.as_str(), |b| {
                b.to_async(runtime).iter_custom(|iters| {
                    let bench = Arc::clone(&bench);
                    on_worker(bench.paired(iters, tasks))
                });
            });
            runtime.block_on(bench.stop());
        }
        group.finish();
    }
}

criterion_group! {
    name = wall_time;
    config = Criterion::default().nresamples(20_000);
    targets = throughput
}
criterion_group! {
    name = paired_ratio;
    config = Criterion::default().with_measurement(Derived::time_ratio("x direct time")).nresamples(20_000);
    targets = paired
}
criterion_main!(wall_time, paired_ratio);
