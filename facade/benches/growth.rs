//! Growth: the cost of one refund on a Moyasar order as a function of how many refunds the order
//! already has. Moyasar answers a refund with the whole order, every transaction included, so
//! the answer grows with the order and any client pays for reading it. The target is that the
//! facade adds nothing that grows beyond that.
//!
//! - `growth/{facade,direct}/K`: one refund, over loopback HTTP, on an order with K earlier
//!   refunds (K to K + K/5: an order prepared with K refunds, before the clock, takes at most
//!   K/5 measured ones before a fresh one is prepared), through the facade and through the
//!   generated client.
//! - `growth_answer/decode/K`: decoding that answer (the answer to refund K + 1) into the
//!   generated `Order`: what reading the answer costs any client.
//! - `growth_answer/mapping/K`: the facade's whole mapping of the same answer into a `Refund`
//!   (`moyasar::transformers::refund_result`, which decodes it too).
//! - `growth_extra/K`: facade time minus direct time per refund, paired: each sample sends
//!   refunds through both clients in turn on the same orders, so load from elsewhere on the
//!   machine cancels out. Its growth with K is what the facade adds beyond reading the answer.
//! - `growth_answer_extra/K`: mapping time minus decoding time of the same answer, paired the
//!   same way (each iteration times one of each, alternating which goes first). Negative: the
//!   mapping reads the order in one pass without building it (`moyasar::transformers`, "Reading
//!   the order in one pass"), which costs less than decoding it into the generated `Order`.
//!
//! Criterion records each answer's size as the throughput of its `growth_answer` benchmarks.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use refunds::providers::moyasar;
use refunds::{Answer, MerchantReference, Provider, Refunds};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use sandbox::Sandbox;
use sandbox::credentials::MOYASAR_SECRET_KEY;
use tokio::task::JoinSet;

use common::{Derived, Direct, facade_client, facade_refund, moyasar_body, seed};

const PROVIDER: Provider = Provider::Moyasar;

/// Earlier refunds on the order.
const EARLIER: [u64; 3] = [0, 100, 1000];

/// How many measured refunds an order prepared with `k` refunds takes (the order grows by at
/// most a fifth while it is measured; 1200 refunds, about 430 KB, fit Moyasar's answer cap of
/// 4 MiB, `MoyasarConfig::DEFAULT_ANSWER_LIMITS`).
fn budget(k: u64) -> u64 {
    (k / 5).max(1)
}

/// Concurrent refunds while an order is prepared.
const PREPARE_TASKS: u64 = 4;

/// Refunds through the sandbox without decoding anything: to prepare orders.
#[derive(Clone)]
struct Preparer {
    http: reqwest::Client,
    base_url: String,
}

impl Preparer {
    fn new(sandbox: &Sandbox) -> Preparer {
        Preparer {
            http: reqwest::Client::new(),
            base_url: sandbox.moyasar().base_url(),
        }
    }

    /// One refund with `reference`'s idempotency key; the answer's bytes.
    async fn refund(&self, order_id: &str, reference: &str) -> Bytes {
        let answer = self
            .http
            .post(format!("{}/v1/orders/{order_id}/refund", self.base_url))
            .header(AUTHORIZATION, format!("Bearer {MOYASAR_SECRET_KEY}"))
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&moyasar_body(reference)).expect("a body"))
            .send()
            .await
            .expect("the sandbox answers");
        assert!(answer.status().is_success(), "{}", answer.status());
        answer.bytes().await.expect("the answer's body")
    }

    /// Seeds `order_id` with room for `k` + `extra` refunds and refunds it `k` times.
    async fn order_with(&self, sandbox: &Sandbox, order_id: &str, k: u64, extra: u64) {
        seed(
            sandbox,
            PROVIDER,
            order_id,
            (k + extra + 1) as i64 * common::AMOUNT_MINOR,
        );
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..PREPARE_TASKS {
            let (preparer, next, order_id) = (self.clone(), Arc::clone(&next), order_id.to_owned());
            tasks.spawn(async move {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= k {
                        break;
                    }
                    preparer
                        .refund(&order_id, &format!("{order_id}-P{j}"))
                        .await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    }
}

/// Which client sends.
#[derive(Clone, Copy)]
enum Via {
    Facade,
    Direct,
}

/// The order being measured and how many measured refunds it took.
struct Current {
    order_id: String,
    used: u64,
}

struct Bench {
    sandbox: Sandbox,
    facade: Refunds,
    direct: Direct,
    preparer: Preparer,
    k: u64,
    orders: Mutex<(u64, Option<Current>)>,
    refunds: Mutex<u64>,
}

impl Bench {
    async fn start(k: u64) -> Arc<Bench> {
        let sandbox = common::start_sandbox().await;
        let facade = facade_client(&sandbox, PROVIDER);
        let direct = Direct::new(&sandbox, PROVIDER).await;
        let preparer = Preparer::new(&sandbox);
        let bench = Bench {
            sandbox,
            facade,
            direct,
            preparer,
            k,
            orders: Mutex::new((0, None)),
            refunds: Mutex::new(0),
        };
        // The first order is ready before criterion starts its clock: its warm-up, which plans
        // the samples from wall time, then sees preparation amortized over the order's budget.
        bench.prepare_order().await;
        Arc::new(bench)
    }

    /// Prepares a fresh order with `k` refunds (untimed) and makes it the one measured.
    async fn prepare_order(&self) -> String {
        let order_id = {
            let mut orders = self.orders.lock().unwrap();
            orders.0 += 1;
            format!("ORD-{}", orders.0)
        };
        self.preparer
            .order_with(&self.sandbox, &order_id, self.k, budget(self.k))
            .await;
        self.orders.lock().unwrap().1 = Some(Current {
            order_id: order_id.clone(),
            used: 0,
        });
        order_id
    }

    /// The order of the next measured refund, a fresh one when the last one is used up.
    async fn next_order(&self) -> String {
        loop {
            {
                let mut orders = self.orders.lock().unwrap();
                if let Some(current) = orders.1.as_mut().filter(|c| c.used < budget(self.k)) {
                    current.used += 1;
                    return current.order_id.clone();
                }
            }
            self.prepare_order().await;
        }
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

    /// One refund via `via` on the current order; the time it took (preparation excluded).
    async fn refund(&self, via: Via) -> Duration {
        let order_id = self.next_order().await;
        let reference = {
            let mut refunds = self.refunds.lock().unwrap();
            *refunds += 1;
            format!("GROWTH-{}", *refunds)
        };
        let started = Instant::now();
        match via {
            Via::Facade => facade_refund(&self.facade, PROVIDER, &order_id, &reference).await,
            Via::Direct => self.direct.refund(&order_id, &reference).await,
        }
        started.elapsed()
    }

    /// `iters` refunds via `via`, one after the other; the time of the refunds alone.
    async fn run(self: Arc<Bench>, via: Via, iters: u64) -> Duration {
        let mut measured = Duration::ZERO;
        for _ in 0..iters {
            measured += self.refund(via).await;
        }
        measured
    }

    /// `iters` pairs of refunds, one through each client on the same order (alternating which
    /// goes first); the sum of facade time - direct time, in nanoseconds.
    async fn paired(self: Arc<Bench>, iters: u64) -> f64 {
        let mut extra = 0.0;
        for i in 0..iters {
            let (facade, direct) = if i.is_multiple_of(2) {
                let facade = self.refund(Via::Facade).await;
                (facade, self.refund(Via::Direct).await)
            } else {
                let direct = self.refund(Via::Direct).await;
                (self.refund(Via::Facade).await, direct)
            };
            extra += facade.as_secs_f64() * 1e9 - direct.as_secs_f64() * 1e9;
        }
        extra
    }
}

/// For each K of [`EARLIER`]: the answer to the refund after K earlier ones, and the request it
/// answers (prepared once, for both criterion groups).
fn answers(runtime: &tokio::runtime::Runtime) -> &'static [(u64, refunds::RefundRequest, Bytes)] {
    static ANSWERS: OnceLock<Vec<(u64, refunds::RefundRequest, Bytes)>> = OnceLock::new();
    ANSWERS.get_or_init(|| {
        EARLIER
            .iter()
            .map(|&k| {
                let (request, body) = runtime.block_on(answer_after(k));
                moyasar::transformers::refund_result(&request, &Answer::new(200, body.clone()))
                    .expect("the answer maps to the refund");
                (k, request, body)
            })
            .collect()
    })
}

/// The answer to the refund after `k` earlier ones, and the request it answers.
async fn answer_after(k: u64) -> (refunds::RefundRequest, Bytes) {
    let sandbox = common::start_sandbox().await;
    let preparer = Preparer::new(&sandbox);
    let order_id = format!("ANSWER-{k}");
    preparer.order_with(&sandbox, &order_id, k, 1).await;
    let reference = format!("ANSWER-{k}-REFUND");
    let body = preparer.refund(&order_id, &reference).await;
    sandbox.shutdown().await;
    let request = common::facade_request(PROVIDER, &order_id, &reference);
    assert_eq!(
        request.merchant_reference,
        MerchantReference::new(reference).unwrap()
    );
    (request, body)
}

fn growth(c: &mut Criterion) {
    let runtime = common::runtime();
    let runtime = &runtime;

    let mut group = c.benchmark_group("growth_answer");
    for (k, request, body) in answers(runtime) {
        let k = *k;
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::new("decode", k), |b| {
            b.iter(|| {
                serde_json::from_slice::<moyasar_api::types::Order>(black_box(body))
                    .expect("an order")
            });
        });
        group.bench_function(BenchmarkId::new("mapping", k), |b| {
            b.iter(|| {
                let answer = Answer::new(200, black_box(body.clone()));
                moyasar::transformers::refund_result(black_box(request), &answer).expect("a refund")
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("growth");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for k in EARLIER {
        let bench = runtime.block_on(Bench::start(k));
        for (name, via) in [("facade", Via::Facade), ("direct", Via::Direct)] {
            group.bench_function(BenchmarkId::new(name, k), |b| {
                b.to_async(runtime).iter_custom(|iters| {
                    let bench = Arc::clone(&bench);
                    on_worker(bench.run(via, iters))
                });
            });
        }
        runtime.block_on(bench.stop());
    }
    group.finish();
}

/// Facade time - direct time per refund, and mapping time - decoding time per answer, paired
/// within each sample.
fn growth_extra(c: &mut Criterion<Derived>) {
    let runtime = common::runtime();
    let runtime = &runtime;

    let mut group = c.benchmark_group("growth_answer_extra");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (k, request, body) in answers(runtime) {
        group.bench_function(BenchmarkId::from_parameter(k), |b| {
            b.iter_custom(|iters| {
                let mut extra = 0.0;
                for i in 0..iters {
                    let decode = || {
                        let started = Instant::now();
                        black_box(
                            serde_json::from_slice::<moyasar_api::types::Order>(black_box(body))
                                .expect("an order"),
                        );
                        started.elapsed()
                    };
                    let mapping = || {
                        let started = Instant::now();
                        let answer = Answer::new(200, black_box(body.clone()));
                        black_box(
                            moyasar::transformers::refund_result(black_box(request), &answer)
                                .expect("a refund"),
                        );
                        started.elapsed()
                    };
                    let (decode, mapping) = if i.is_multiple_of(2) {
                        let decode = decode();
                        (decode, mapping())
                    } else {
                        let mapping = mapping();
                        (decode(), mapping)
                    };
                    extra += mapping.as_secs_f64() * 1e9 - decode.as_secs_f64() * 1e9;
                }
                extra
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("growth_extra");
    configure(&mut group);
    group.sample_size(20);
    for k in EARLIER {
        // A refund at K = 1000 takes milliseconds and varies by a fraction of one: more pairs.
        group.measurement_time(Duration::from_secs(if k >= 1000 { 10 } else { 3 }));
        let bench = runtime.block_on(Bench::start(k));
        group.bench_function(BenchmarkId::from_parameter(k), |b| {
            b.to_async(runtime).iter_custom(|iters| {
                let bench = Arc::clone(&bench);
                on_worker(bench.paired(iters))
            });
        });
        runtime.block_on(bench.stop());
    }
    group.finish();
}

/// The HTTP benchmarks: flat sampling (each sample the same number of refunds), 10 samples.
fn configure<M: Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Runs `f` on a worker thread of the runtime, as a service's handler would run.
async fn on_worker<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(f)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

criterion_group! {
    name = wall_time;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .nresamples(20_000);
    targets = growth
}
criterion_group! {
    name = paired_difference;
    config = Criterion::default().with_measurement(Derived::time_difference()).nresamples(20_000);
    targets = growth_extra
}
criterion_main!(wall_time, paired_difference);
