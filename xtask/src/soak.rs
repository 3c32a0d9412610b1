//! `cargo xtask soak`: a fault soak of the facade's retry executor against the sandbox.
//!
//! Many logical refunds (the providers in turn, a fresh order each) go through
//! [`Refunds::refund_with_retries`] on one shared client with short time-outs, while the sandbox
//! injects at random (seeded) zero or one fault on each order: failures before the provider
//! acts, failures after it committed the refund (dropped connection, gateway pages, malformed,
//! unsigned, badly signed or oversized answers), and latency past the client's time-out. Each
//! [`Settlement`] is then compared with the sandbox's ledger for that refund's duplicate key,
//! once when it settles and once more after the sandbox has finished the work of every late
//! attempt:
//!
//! - **duplicate**: more than one refund recorded under the key;
//! - **lost**: the caller was told *applied* but nothing is recorded;
//! - **contradicted**: the caller was told *rejected* (not applied) but a refund is recorded;
//! - **misclassified**: a settlement whose error states another outcome than the settlement
//!   (an unresolved one must be *unknown*, a rejected one *not applied*), or more attempts than
//!   the policy allows;
//! - **panics**: a refund task that panicked, or an attempt the facade reports as ended by a
//!   panic of its task.
//!
//! The AfterPay sandbox runs without its replay of a repeated `transactionReference` (Riverty
//! documents no such rule), so a blind re-send after an unknown outcome would show up as a
//! duplicate rather than be hidden by the emulator.
//!
//! [`run`] is what both the command and its test (`xtask/tests/soak.rs`) execute.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use refunds::{
    AnswerLimits, MerchantReference, Money, Outcome, Provider, RefundRequest, Refunds, RetryPolicy,
    Settlement,
};
use rust_decimal::Decimal;
use sandbox::{Fault, Match, Sandbox, SandboxConfig};
use test_support::{ClientSettings, duplicate_key, handle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The client's per-request time-out.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// The retry policy every refund runs under: small back-offs, six attempts.
pub const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 6,
    initial_backoff: Duration::from_millis(1),
    max_backoff: Duration::from_millis(20),
    max_retry_after: Duration::from_millis(100),
};

/// The client's caps on an answer (smaller than the defaults, so oversized answers are cheap
/// to send; the sizes injected are derived from these).
pub const LIMITS: AnswerLimits = AnswerLimits {
    max_body_bytes: 64 * 1024,
    max_header_bytes: 16 * 1024,
};

/// A response head hyper's client refuses outright (its limit is about 400 KiB).
const HEADERS_PAST_HYPER: usize = 512 * 1024;

/// A latency past the client's time-out: the attempt times out, the sandbox commits later.
const LONG_LATENCY_MIN: Duration = Duration::from_millis(550);
const LONG_LATENCY_MAX: Duration = Duration::from_millis(650);

/// Share (in %) of refunds without a fault, and of faulted ones whose fault fires more often
/// than the retry budget.
const NO_FAULT_PERCENT: u32 = 20;
const OVER_BUDGET_PERCENT: u32 = 3;

/// Every seeded order captured 100.00, every refund is of 10.00 (all four currencies have two
/// decimals).
const CAPTURED_MINOR: i64 = 10_000;
const AMOUNT: &str = "10.00";

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoakOptions {
    /// Logical refunds in all, spread round-robin over the four providers.
    pub refunds: usize,
    /// Seed of the fault plan (which refund gets which fault, how often).
    pub seed: u64,
    /// Refunds in flight at once.
    pub concurrency: usize,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            refunds: 10_000,
            seed: 1,
            concurrency: 32,
        }
    }
}

impl SoakOptions {
    /// Parses `[--refunds N] [--seed S] [--concurrency C]` (also `--refunds=N`).
    pub fn parse(args: &[&str]) -> Result<SoakOptions> {
        let mut options = SoakOptions::default();
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value)),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .or_else(|| args.next())
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag {
                "--refunds" => options.refunds = number(flag, value()?)?,
                "--seed" => options.seed = number(flag, value()?)?,
                "--concurrency" => options.concurrency = number(flag, value()?)?,
                _ => bail!("unknown soak option {arg:?}"),
            }
        }
        if options.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        Ok(options)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value
        .parse()
        .with_context(|| format!("{flag} {value:?} is not a number"))
}

/// The fault injected on one refund's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    /// What goes wrong.
    pub fault: Fault,
    /// How many requests on the order it hits.
    pub times: usize,
}

impl FaultPlan {
    /// Whether it fires on every attempt the policy allows.
    pub fn over_budget(&self) -> bool {
        self.times >= POLICY.max_attempts as usize
    }
}

/// The fault's row in the report: its kind, with sizes and delays classed rather than exact.
fn fault_label(plan: Option<&FaultPlan>) -> String {
    let Some(plan) = plan else {
        return "none".to_owned();
    };
    let kind = match &plan.fault {
        Fault::Latency(d) if *d > TIMEOUT => "Latency(> timeout)".to_owned(),
        Fault::Latency(_) => "Latency(< timeout)".to_owned(),
        Fault::OversizedBody(_) => "OversizedBody(> cap)".to_owned(),
        Fault::OversizedHeaders(n) if *n >= HEADERS_PAST_HYPER => {
            "OversizedHeaders(> hyper)".to_owned()
        }
        Fault::OversizedHeaders(_) => "OversizedHeaders(> cap)".to_owned(),
        other => format!("{other:?}"),
    };
    if plan.over_budget() {
        format!("{kind} x{}", plan.times)
    } else {
        kind
    }
}

/// How a fault is drawn: its weight and how to build it.
type Menu = &'static [(u32, fn(&mut fastrand::Rng) -> Fault)];

/// Faults every provider gets (long latency rarer: each firing costs a time-out).
const COMMON: Menu = &[
    (10, |_| Fault::Status(500)),
    (10, |_| Fault::Status(503)),
    (10, |_| Fault::Status(429)),
    (10, |_| Fault::NonJson502),
    (10, |_| Fault::DropAfterCommit),
    (10, |_| Fault::MalformedBody),
    (10, |_| Fault::StatusAfterCommit(502)),
    (10, |_| Fault::StatusAfterCommit(504)),
    (10, |rng| {
        Fault::Latency(Duration::from_millis(rng.u64(5..=50)))
    }),
    (5, |rng| {
        Fault::Latency(Duration::from_millis(rng.u64(
            LONG_LATENCY_MIN.as_millis() as u64..=LONG_LATENCY_MAX.as_millis() as u64,
        )))
    }),
    (10, |rng| {
        Fault::OversizedBody(rng.usize(LIMITS.max_body_bytes + 1..=4 * LIMITS.max_body_bytes))
    }),
    (5, |_| Fault::OversizedHeaders(HEADERS_PAST_HYPER)),
    (5, |rng| {
        Fault::OversizedHeaders(
            rng.usize(LIMITS.max_header_bytes + 1..=2 * LIMITS.max_header_bytes),
        )
    }),
];

/// Faults that only change anything on OpenApp, which signs its answers.
const SIGNED: Menu = &[
    (10, |_| Fault::UnsignedAnswer),
    (10, |_| Fault::WrongSignature),
];

/// Zero or one fault for a refund through `provider`.
fn draw(rng: &mut fastrand::Rng, provider: Provider) -> Option<FaultPlan> {
    if rng.u32(0..100) < NO_FAULT_PERCENT {
        return None;
    }
    let signed = if provider == Provider::OpenApp {
        SIGNED
    } else {
        &[]
    };
    let menu = || COMMON.iter().chain(signed);
    let mut pick = rng.u32(0..menu().map(|(weight, _)| weight).sum::<u32>());
    let make = menu()
        .find(|(weight, _)| {
            let hit = pick < *weight;
            pick = pick.saturating_sub(*weight);
            hit
        })
        .map(|(_, make)| make)?;
    let fault = make(rng);
    let times = if rng.u32(0..100) < OVER_BUDGET_PERCENT {
        POLICY.max_attempts as usize + 2
    } else {
        rng.usize(1..=3)
    };
    Some(FaultPlan { fault, times })
}

/// One provider's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderStats {
    /// Logical refunds.
    pub refunds: usize,
    /// Refunds whose order had a fault injected.
    pub faulted: usize,
    /// Attempts, summed over the settlements ([`Settlement::attempts`]); a repeat answered from
    /// the client's replay memory counts here but sends nothing.
    pub attempts: u64,
    /// HTTP requests the provider's sandbox received (Optty: token requests included).
    pub received: usize,
    /// Settled as applied.
    pub applied: usize,
    /// Settled as rejected (not applied).
    pub rejected: usize,
    /// Left unresolved (outcome unknown).
    pub unresolved: usize,
    /// Unresolved ones the ledger shows applied, once the sandbox is quiet.
    pub unresolved_applied: usize,
    /// Unresolved ones the ledger shows not applied.
    pub unresolved_not_applied: usize,
    /// More than one refund recorded under one duplicate key.
    pub duplicates: usize,
    /// Told applied, nothing recorded.
    pub lost: usize,
    /// Told rejected, a refund recorded.
    pub contradicted: usize,
    /// A settlement whose error states another outcome than the settlement, or past the
    /// attempt budget.
    pub misclassified: usize,
    /// Panicked refund tasks and attempts.
    pub panics: usize,
}

impl ProviderStats {
    fn add(&mut self, other: &ProviderStats) {
        self.refunds += other.refunds;
        self.faulted += other.faulted;
        self.attempts += other.attempts;
        self.received += other.received;
        self.applied += other.applied;
        self.rejected += other.rejected;
        self.unresolved += other.unresolved;
        self.unresolved_applied += other.unresolved_applied;
        self.unresolved_not_applied += other.unresolved_not_applied;
        self.duplicates += other.duplicates;
        self.lost += other.lost;
        self.contradicted += other.contradicted;
        self.misclassified += other.misclassified;
        self.panics += other.panics;
    }

    /// The counters [`SoakReport::check`] requires to be zero, by name.
    fn failures(&self) -> Vec<(&'static str, usize)> {
        [
            ("duplicates", self.duplicates),
            ("lost", self.lost),
            ("contradicted", self.contradicted),
            ("misclassified", self.misclassified),
            ("panics", self.panics),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// Settlements of the refunds that had one kind of fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Settled as applied.
    pub applied: usize,
    /// Settled as rejected.
    pub rejected: usize,
    /// Left unresolved.
    pub unresolved: usize,
}

/// One refund the ledger contradicts, with everything needed to replay it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The provider.
    pub provider: Provider,
    /// Which logical refund (0-based).
    pub index: usize,
    /// The seeded order.
    pub order_id: String,
    /// The merchant reference.
    pub reference: String,
    /// The fault injected on the order.
    pub plan: Option<FaultPlan>,
    /// What the caller was told (settlement, attempts, error).
    pub told: String,
    /// Refunds recorded under the key when the refund settled, and once the sandbox was quiet.
    pub ledger: (usize, usize),
    /// What is wrong: duplicate, lost, contradicted, misclassified, panic.
    pub problems: Vec<&'static str>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fault = match &self.plan {
            Some(plan) => format!("{:?} x{}", plan.fault, plan.times),
            None => "no fault".to_owned(),
        };
        write!(
            f,
            "{} #{} (order {}, reference {}): {}; fault {fault}; told {}; ledger {} at settlement, {} at the end",
            self.provider,
            self.index,
            self.order_id,
            self.reference,
            self.problems.join(" + "),
            self.told,
            self.ledger.0,
            self.ledger.1
        )
    }
}

/// What a soak found.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// What ran.
    pub options: SoakOptions,
    /// Counters per provider, in [`Provider::ALL`] order.
    pub providers: Vec<(Provider, ProviderStats)>,
    /// Settlements by fault kind (see the report's rows) and provider.
    pub by_fault: BTreeMap<String, [FaultCounts; 4]>,
    /// Every refund the ledger contradicts.
    pub violations: Vec<Violation>,
    /// From the first refund sent to the last settled.
    pub wall: Duration,
    /// The whole run: sandbox start, refunds, waiting for late work, final ledger sweep.
    pub total: Duration,
}

impl SoakReport {
    /// One provider's counters.
    pub fn stats(&self, provider: Provider) -> &ProviderStats {
        &self.providers[provider_index(provider)].1
    }

    /// All providers together.
    pub fn totals(&self) -> ProviderStats {
        let mut total = ProviderStats::default();
        for (_, stats) in &self.providers {
            total.add(stats);
        }
        total
    }

    /// Fails unless, for every provider, no refund was duplicated, lost or contradicted, no
    /// settlement misclassified (every unresolved one is outcome unknown) and nothing panicked.
    pub fn check(&self) -> Result<()> {
        let failing: Vec<String> = self
            .providers
            .iter()
            .filter_map(|(provider, stats)| {
                let failures = stats.failures();
                (!failures.is_empty()).then(|| {
                    let list: Vec<String> = failures
                        .iter()
                        .map(|(name, n)| format!("{name} {n}"))
                        .collect();
                    format!("{provider}: {}", list.join(", "))
                })
            })
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        let mut message = format!(
            "the soak (seed {}) found refunds the ledger contradicts: {}",
            self.options.seed,
            failing.join("; ")
        );
        for violation in self.violations.iter().take(20) {
            message.push_str(&format!("\n  {violation}"));
        }
        if self.violations.len() > 20 {
            message.push_str(&format!("\n  .. and {} more", self.violations.len() - 20));
        }
        bail!(message)
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "fault soak: {} refunds, seed {}, concurrency {}; client timeout {} ms, {} attempts, back-off {}..{} ms",
            o.refunds,
            o.seed,
            o.concurrency,
            TIMEOUT.as_millis(),
            POLICY.max_attempts,
            POLICY.initial_backoff.as_millis(),
            POLICY.max_backoff.as_millis()
        )?;
        writeln!(
            f,
            "{:<9} {:>7} {:>7} {:>8} {:>8} {:>7} {:>8} {:>22} {:>10} {:>5} {:>12} {:>13} {:>6}",
            "provider",
            "refunds",
            "faulted",
            "attempts",
            "received",
            "applied",
            "rejected",
            "unresolved (appl/not)",
            "duplicates",
            "lost",
            "contradicted",
            "misclassified",
            "panics"
        )?;
        let totals = self.totals();
        let rows = self
            .providers
            .iter()
            .map(|(provider, stats)| (provider.to_string(), stats))
            .chain(std::iter::once(("total".to_owned(), &totals)));
        for (name, s) in rows {
            let unresolved = format!(
                "{} ({}/{})",
                s.unresolved, s.unresolved_applied, s.unresolved_not_applied
            );
            writeln!(
                f,
                "{:<9} {:>7} {:>7} {:>8} {:>8} {:>7} {:>8} {:>22} {:>10} {:>5} {:>12} {:>13} {:>6}",
                name,
                s.refunds,
                s.faulted,
                s.attempts,
                s.received,
                s.applied,
                s.rejected,
                unresolved,
                s.duplicates,
                s.lost,
                s.contradicted,
                s.misclassified,
                s.panics
            )?;
        }
        writeln!(
            f,
            "wall time: {:.2} s sending and settling ({:.2} s in all, with the sandbox start, the wait for late work and the final ledger sweep)",
            self.wall.as_secs_f64(),
            self.total.as_secs_f64()
        )?;
        writeln!(f)?;
        writeln!(f, "settlements by fault, applied/rejected/unresolved:")?;
        write!(f, "{:<28}", "fault")?;
        for provider in Provider::ALL {
            write!(f, " {:>14}", provider.to_string())?;
        }
        writeln!(f)?;
        for (label, counts) in &self.by_fault {
            write!(f, "{label:<28}")?;
            for c in counts {
                let cell = if c.applied + c.rejected + c.unresolved == 0 {
                    "-".to_owned()
                } else {
                    format!("{}/{}/{}", c.applied, c.rejected, c.unresolved)
                };
                write!(f, " {cell:>14}")?;
            }
            writeln!(f)?;
        }
        if !self.violations.is_empty() {
            writeln!(f)?;
            writeln!(f, "violations ({}):", self.violations.len())?;
            for violation in self.violations.iter().take(50) {
                writeln!(f, "  {violation}")?;
            }
            if self.violations.len() > 50 {
                writeln!(f, "  .. and {} more", self.violations.len() - 50)?;
            }
        }
        Ok(())
    }
}

fn provider_index(provider: Provider) -> usize {
    Provider::ALL
        .iter()
        .position(|p| *p == provider)
        .unwrap_or_default()
}

/// A refund of [`AMOUNT`] on a seeded order, with what each provider needs on top: AfterPay
/// the capture number and a line item carrying the amount, OpenApp its own order id (the
/// workspace's test fixtures, `test-support/`).
fn request(
    provider: Provider,
    order_id: &str,
    reference: MerchantReference,
) -> Result<RefundRequest> {
    let amount = Money::parse(AMOUNT, test_support::currency(provider))?;
    let request = RefundRequest::new(provider, order_id, amount, reference);
    Ok(test_support::with_provider_fields(request))
}

/// One client for all four providers of `sb`, with the soak's time-out and answer caps.
fn client(sb: &Sandbox) -> Result<Refunds> {
    let settings = ClientSettings {
        timeout: TIMEOUT,
        answer_limits: LIMITS,
        ..ClientSettings::default()
    };
    Ok(test_support::builder(&test_support::base_urls(sb), &settings).build()?)
}

/// The settlement as the caller saw it, reduced to what the ledger is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Applied,
    Rejected,
    Unresolved,
}

/// One logical refund.
#[derive(Debug, Clone)]
struct Trial {
    index: usize,
    provider: Provider,
    order_id: String,
    reference: String,
    key: String,
    plan: Option<FaultPlan>,
}

/// A trial after its settlement.
#[derive(Debug)]
struct Settled {
    trial: Trial,
    told: Told,
    /// `Applied (already applied) after 2 attempts` or `Unresolved after 1 attempt: <error>`.
    description: String,
    attempts: u32,
    misclassified: bool,
    panicked: bool,
    ledger_at_settlement: usize,
}

/// What the two ledger snapshots say is wrong with a settled refund.
fn problems(
    told: Told,
    ledgers: [usize; 2],
    misclassified: bool,
    panicked: bool,
) -> Vec<&'static str> {
    let mut found = Vec::new();
    if ledgers.iter().any(|n| *n > 1) {
        found.push("duplicate");
    }
    if told == Told::Applied && ledgers.contains(&0) {
        found.push("lost");
    }
    if told == Told::Rejected && ledgers.iter().any(|n| *n > 0) {
        found.push("contradicted");
    }
    if misclassified {
        found.push("misclassified");
    }
    if panicked {
        found.push("panic");
    }
    found
}

/// Messages of the facade's errors for an attempt whose task panicked or vanished.
const PANIC_MESSAGES: [&str; 2] = [
    "the attempt's task panicked",
    "the attempt ended without a result",
];

async fn refund_once(sb: Arc<Sandbox>, refunds: Refunds, trial: Trial) -> Result<Settled> {
    let provider = trial.provider;
    let handle = handle(&sb, provider);
    let captured = Decimal::new(CAPTURED_MINOR, 2);
    let seed = test_support::order_seed(provider, &trial.order_id, captured);
    handle
        .try_seed_order(seed)
        .with_context(|| format!("seeding {provider} order {}", trial.order_id))?;
    if let Some(plan) = &trial.plan {
        handle.inject(
            plan.fault.clone(),
            Match::Order(trial.order_id.clone()).times(plan.times),
        );
    }
    let reference = MerchantReference::new(trial.reference.as_str())?;
    let request = request(provider, &trial.order_id, reference)?;

    let settlement = refunds.refund_with_retries(&request, &POLICY).await;

    let ledger_at_settlement = handle.refunds_with_reference(&trial.key).len();
    let attempts = settlement.attempts();
    let (told, misclassified, description, panicked) = match &settlement {
        Settlement::Applied {
            already_applied, ..
        } => (
            Told::Applied,
            settlement.outcome() != Outcome::Applied,
            format!(
                "Applied{} after {attempts} attempt(s)",
                if *already_applied {
                    " (already applied)"
                } else {
                    ""
                }
            ),
            false,
        ),
        Settlement::Rejected { error, .. } => (
            Told::Rejected,
            settlement.outcome() != Outcome::NotApplied || error.outcome() != Outcome::NotApplied,
            format!("Rejected after {attempts} attempt(s): {error}"),
            PANIC_MESSAGES
                .iter()
                .any(|m| error.provider_message().unwrap_or_default().starts_with(m)),
        ),
        Settlement::Unresolved { error, .. } => (
            Told::Unresolved,
            settlement.outcome() != Outcome::Unknown || error.outcome() != Outcome::Unknown,
            format!("Unresolved after {attempts} attempt(s): {error}"),
            PANIC_MESSAGES
                .iter()
                .any(|m| error.provider_message().unwrap_or_default().starts_with(m)),
        ),
    };
    let misclassified = misclassified || attempts == 0 || attempts > POLICY.max_attempts;
    // Gateway pages span lines; a violation is reported on one.
    let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Settled {
        trial,
        told,
        description,
        attempts,
        misclassified,
        panicked,
        ledger_at_settlement,
    })
}

/// Runs the soak: starts a sandbox, sends `options.refunds` refunds under faults through one
/// client, waits for the sandbox to finish late work, and compares every settlement with the
/// ledger.
pub async fn run(options: &SoakOptions) -> Result<SoakReport> {
    if options.concurrency == 0 {
        bail!("the concurrency must be at least 1");
    }
    let started = Instant::now();
    let sb = Arc::new(
        Sandbox::start(SandboxConfig {
            // Riverty documents no duplicate rule: the facade must not lean on one.
            afterpay: sandbox::afterpay::Settings {
                replay_transaction_reference: false,
                ..Default::default()
            },
            ..SandboxConfig::default()
        })
        .await
        .context("starting the sandbox")?,
    );
    let refunds = client(&sb).context("building the facade client")?;

    // The whole plan is drawn up front, so it depends on the seed alone.
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let trials: Vec<Trial> = (0..options.refunds)
        .map(|index| {
            let provider = Provider::ALL[index % Provider::ALL.len()];
            let reference = format!("SOAK-{}-{index}", options.seed);
            let reference = if reference.len() <= MerchantReference::MAX_LEN {
                reference
            } else {
                format!("SOAK-{index}")
            };
            let key = duplicate_key(provider, &MerchantReference::new(reference.as_str())?);
            Ok(Trial {
                index,
                provider,
                order_id: format!("SOAK-ORD-{index}"),
                reference,
                key,
                plan: draw(&mut rng, provider),
            })
        })
        .collect::<Result<_>>()?;

    let mut stats: Vec<ProviderStats> = vec![ProviderStats::default(); Provider::ALL.len()];
    let mut settled: Vec<Settled> = Vec::with_capacity(trials.len());
    let mut task_panics: Vec<Trial> = Vec::new();
    let mut running: HashMap<tokio::task::Id, Trial> = HashMap::new();
    let mut tasks = JoinSet::new();
    let permits = Arc::new(Semaphore::new(options.concurrency));

    let mut collect =
        |joined: Result<(tokio::task::Id, Result<Settled>), tokio::task::JoinError>,
         running: &mut HashMap<tokio::task::Id, Trial>|
         -> Result<()> {
            match joined {
                Ok((id, result)) => {
                    running.remove(&id);
                    settled.push(result?);
                }
                Err(err) => {
                    let trial = running.remove(&err.id());
                    if err.is_panic() {
                        task_panics.extend(trial);
                    } else {
                        bail!("a refund task was cancelled: {err}");
                    }
                }
            }
            Ok(())
        };

    let sending = Instant::now();
    for trial in &trials {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .context("the semaphore closed")?;
        let (sb, refunds, task_trial) = (Arc::clone(&sb), refunds.clone(), trial.clone());
        let id = tasks
            .spawn(async move {
                let settled = refund_once(sb, refunds, task_trial).await;
                drop(permit);
                settled
            })
            .id();
        running.insert(id, trial.clone());
        while let Some(joined) = tasks.try_join_next_with_id() {
            collect(joined, &mut running)?;
        }
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        collect(joined, &mut running)?;
    }
    let wall = sending.elapsed();

    // Late work: an attempt that timed out under latency commits after its delay.
    tokio::time::sleep(LONG_LATENCY_MAX + TIMEOUT).await;

    // The ledger once everything is quiet, one pass per provider.
    let mut ledger: HashMap<(usize, String), usize> = HashMap::new();
    for (p, provider) in Provider::ALL.into_iter().enumerate() {
        let handle = handle(&sb, provider);
        stats[p].received = handle.requests_received();
        for order in handle.orders() {
            for refund in order.refunds {
                if let Some(key) = refund.reference {
                    *ledger.entry((p, key)).or_default() += 1;
                }
            }
        }
    }

    let mut by_fault: BTreeMap<String, [FaultCounts; 4]> = BTreeMap::new();
    let mut violations = Vec::new();
    for s in &settled {
        let p = provider_index(s.trial.provider);
        let at_end = ledger
            .get(&(p, s.trial.key.clone()))
            .copied()
            .unwrap_or_default();
        let stats = &mut stats[p];
        stats.refunds += 1;
        stats.faulted += usize::from(s.trial.plan.is_some());
        stats.attempts += u64::from(s.attempts);
        let counts = &mut by_fault
            .entry(fault_label(s.trial.plan.as_ref()))
            .or_default()[p];
        match s.told {
            Told::Applied => {
                stats.applied += 1;
                counts.applied += 1;
            }
            Told::Rejected => {
                stats.rejected += 1;
                counts.rejected += 1;
            }
            Told::Unresolved => {
                stats.unresolved += 1;
                counts.unresolved += 1;
                if at_end > 0 {
                    stats.unresolved_applied += 1;
                } else {
                    stats.unresolved_not_applied += 1;
                }
            }
        }
        let found = problems(
            s.told,
            [s.ledger_at_settlement, at_end],
            s.misclassified,
            s.panicked,
        );
        for problem in &found {
            match *problem {
                "duplicate" => stats.duplicates += 1,
                "lost" => stats.lost += 1,
                "contradicted" => stats.contradicted += 1,
                "misclassified" => stats.misclassified += 1,
                _ => stats.panics += 1,
            }
        }
        if !found.is_empty() {
            violations.push(Violation {
                provider: s.trial.provider,
                index: s.trial.index,
                order_id: s.trial.order_id.clone(),
                reference: s.trial.reference.clone(),
                plan: s.trial.plan.clone(),
                told: s.description.clone(),
                ledger: (s.ledger_at_settlement, at_end),
                problems: found,
            });
        }
    }
    for trial in task_panics {
        let p = provider_index(trial.provider);
        stats[p].refunds += 1;
        stats[p].faulted += usize::from(trial.plan.is_some());
        stats[p].panics += 1;
        let at_end = ledger
            .get(&(p, trial.key.clone()))
            .copied()
            .unwrap_or_default();
        violations.push(Violation {
            provider: trial.provider,
            index: trial.index,
            order_id: trial.order_id,
            reference: trial.reference,
            plan: trial.plan,
            told: "nothing: the refund task panicked".to_owned(),
            ledger: (at_end, at_end),
            problems: vec!["panic"],
        });
    }
    violations.sort_by_key(|v| v.index);

    drop(refunds);
    for provider in Provider::ALL {
        handle(&sb, provider).shutdown().await;
    }

    Ok(SoakReport {
        options: *options,
        providers: Provider::ALL.into_iter().zip(stats).collect(),
        by_fault,
        violations,
        wall,
        total: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_flags_with_or_without_equals() {
        assert_eq!(SoakOptions::parse(&[]).unwrap(), SoakOptions::default());
        let options =
            SoakOptions::parse(&["--refunds", "40", "--seed=7", "--concurrency", "4"]).unwrap();
        assert_eq!(
            options,
            SoakOptions {
                refunds: 40,
                seed: 7,
                concurrency: 4
            }
        );
        for bad in [
            &["--refunds"][..],
            &["--refunds", "many"],
            &["--concurrency", "0"],
            &["--verbose"],
        ] {
            assert!(SoakOptions::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_plan_depends_on_the_seed_alone_and_covers_every_fault() {
        let plan = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..2000)
                .map(|i| draw(&mut rng, Provider::ALL[i % 4]))
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(3), plan(3));
        assert_ne!(plan(3), plan(4));
        let labels: std::collections::BTreeSet<String> = plan(3)
            .iter()
            .map(|p| fault_label(p.as_ref()))
            .map(|label| label.split(" x").next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(labels.len(), COMMON.len() + SIGNED.len() + 1, "{labels:?}");
        assert!(plan(3).iter().flatten().any(FaultPlan::over_budget));
        assert!(
            plan(3)
                .iter()
                .enumerate()
                .filter(|(i, _)| Provider::ALL[i % 4] != Provider::OpenApp)
                .all(|(_, p)| !matches!(
                    p.as_ref().map(|p| &p.fault),
                    Some(Fault::UnsignedAnswer | Fault::WrongSignature)
                )),
            "signature faults only where answers are signed"
        );
    }

    #[test]
    fn problems_compare_the_settlement_with_both_ledger_snapshots() {
        assert!(problems(Told::Applied, [1, 1], false, false).is_empty());
        assert_eq!(problems(Told::Applied, [0, 1], false, false), ["lost"]);
        assert_eq!(problems(Told::Applied, [1, 2], false, false), ["duplicate"]);
        assert_eq!(
            problems(Told::Rejected, [0, 1], false, false),
            ["contradicted"]
        );
        assert!(problems(Told::Unresolved, [0, 1], false, false).is_empty());
        assert_eq!(
            problems(Told::Unresolved, [0, 0], true, true),
            ["misclassified", "panic"]
        );
    }
}
