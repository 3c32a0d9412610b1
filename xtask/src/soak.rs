//! `cargo xtask soak`: fault soaks against the sandbox, in two modes (`--mode`, [`Command`];
//! `cargo xtask soak --help` prints [`HELP`]).
//!
//! # `--mode retry` (the default): the facade's retry executor
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
//! [`run`] is what both the command and its test (`xtask/tests/soak.rs`) execute.
//!
//! # `--mode settle`: from "sent" to "settled" through the journal
//!
//! Every refund goes through the durable journal ([`refunds_journal::Journal::refund`], SQLite
//! in a temporary file or PostgreSQL) under crashes, after-commit faults, dropped connections,
//! plain 503s, eventual consistency and (PostgreSQL) database cuts; then
//! [`refunds_journal::Journal::reconcile`] (or the reconciler's rounds) runs in rounds until every
//! refund is in a final, verified state, and each is checked against the sandbox's ledger. See
//! [`settle`] for what is injected, how pending refunds are settled (OpenApp's from the
//! sandbox's ledger, as its settlement report would be) and the invariants;
//! [`settle::run`] is what both the command and its test execute.
//!
//! In both modes the AfterPay sandbox runs without its replay of a repeated
//! `transactionReference` (Riverty documents no such rule), so a blind re-send after an unknown
//! outcome would show up as a duplicate rather than be hidden by the emulator.

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

/// What `cargo xtask soak [ARGS]` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `--mode retry` (the default): [`run`].
    Retry(SoakOptions),
    /// `--mode settle`: [`settle::run`].
    Settle(settle::SettleOptions),
    /// `--help` or `-h`: print [`HELP`].
    Help,
}

impl Command {
    /// Parses `[--mode retry|settle] [OPTIONS]` (also `--mode=settle`; the mode may come
    /// anywhere), the options as the mode takes them ([`SoakOptions::parse`],
    /// [`settle::SettleOptions::parse`]); `--help` or `-h` anywhere asks for [`HELP`].
    pub fn parse(args: &[&str]) -> Result<Command> {
        if args.iter().any(|arg| matches!(*arg, "--help" | "-h")) {
            return Ok(Command::Help);
        }
        let mut mode = "retry";
        let mut rest = Vec::new();
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            if arg == "--mode" {
                mode = args
                    .next()
                    .context("--mode needs a value: retry or settle")?;
            } else if let Some(value) = arg.strip_prefix("--mode=") {
                mode = value;
            } else {
                rest.push(arg);
            }
        }
        match mode {
            "retry" => Ok(Command::Retry(SoakOptions::parse(&rest)?)),
            "settle" => Ok(Command::Settle(settle::SettleOptions::parse(&rest)?)),
            other => bail!("unknown soak mode {other:?}: use retry or settle"),
        }
    }
}

/// `cargo xtask soak --help`.
pub const HELP: &str = "\
usage: cargo xtask soak [--mode retry|settle] [OPTIONS]

--mode retry (the default): refunds through the facade's retry executor
(Refunds::refund_with_retries) against the in-process sandbox under seeded faults, one or none
per order; every settlement is checked against the sandbox's ledger. Exits 1 when a refund is
duplicated, lost or contradicted, a settlement misclassified, or a task panicked.
    --refunds N          logical refunds, round-robin over the four providers (default 10000)
    --seed S             seed of the fault plan (default 1)
    --concurrency C      refunds in flight at once (default 32)

--mode settle: refunds through the durable journal (Journal::refund; SQLite in a temporary
file, or PostgreSQL with --database postgres) under crashes (a sender killed while the
provider holds its request, or before it got there), after-commit faults (dropped
connection, 502/504 gateway pages, malformed body; OpenApp unsigned or badly signed
answers), dropped connections (latency past the client's time-out),
plain 503s and 429s before any work, faults on the providers' read operations, and eventual
consistency (a read delay on every sandbox server). Then reconcile rounds (Journal::reconcile,
which reads the providers' records), the sandbox settling every pending refund between rounds
(Optty PENDING orders, every OpenApp refund; some as failed) and OpenApp's statuses recorded
from the sandbox's ledger as its settlement report would be (Journal::record_status), until
nothing is left to settle, nothing changed for a while, or the bound. Prints a table per
provider; exits 1 when a refund is duplicated or lost, an applied refund's status differs from
the sandbox's, a refund is left pending or for a person, or the journal failed.
    --refunds N          logical refunds, round-robin over the four providers (default 2000)
    --seed S             seed of the plan (default 1)
    --concurrency C      refunds in flight at once (default 16)
    --read-delay-ms D    how long a recorded refund stays out of the providers' reads
                         (default 200)
    --settling-ms D      the journal's AfterPay settling delay (default 2000); must exceed the
                         read delay plus the latest a late attempt commits (150 ms)
    --max-rounds R       the most reconcile rounds (default 100)
    --database D         the journal's backend: sqlite (a temporary file, the default) or
                         postgres (a schema of the run's own on REFUNDS_JOURNAL_PG_URL's
                         server, dropped at the end unless a check failed)
    --database-cuts-ms D with postgres: while refunds are sent and reconciled, cut every
                         connection to the database every D ms (a proxy in front of the
                         server); the calls and reconcile rounds it fails are counted apart,
                         and their refunds must end settled as the ledger says like every
                         other
    --database-down-ms D with --database-cuts-ms: each cut keeps the database down this long
                         (connections refused) before it is back (default 0)
    --reconciler         reconcile with the reconciler's rounds (Journal::reconcile_round:
                         8 entries at once, a provider whose entry failed left alone for a
                         while), as a service runs it, instead of Journal::reconcile
";

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
    pub by_fault: BTreeMap<String, [FaultCounts; Provider::ALL.len()]>,
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
        check_failures(
            &format!(
                "the soak (seed {}) found refunds the ledger contradicts",
                self.options.seed
            ),
            self.providers
                .iter()
                .map(|(provider, stats)| (*provider, stats.failures())),
            &self.violations,
        )
    }
}

/// Fails, saying `what`, each provider's failures (counters by name) and the first violations,
/// unless no provider has a failure: the end of both soaks' checks.
fn check_failures(
    what: &str,
    failures: impl Iterator<Item = (Provider, Vec<(&'static str, usize)>)>,
    violations: &[impl fmt::Display],
) -> Result<()> {
    let failing: Vec<String> = failures
        .filter(|(_, failures)| !failures.is_empty())
        .map(|(provider, failures)| {
            let list: Vec<String> = failures
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            format!("{provider}: {}", list.join(", "))
        })
        .collect();
    if failing.is_empty() {
        return Ok(());
    }
    let mut message = format!("{what}: {}", failing.join("; "));
    for violation in violations.iter().take(20) {
        message.push_str(&format!("\n  {violation}"));
    }
    if violations.len() > 20 {
        message.push_str(&format!("\n  .. and {} more", violations.len() - 20));
    }
    bail!(message)
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
        answer_limits: Some(LIMITS),
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

    let mut by_fault: BTreeMap<String, [FaultCounts; Provider::ALL.len()]> = BTreeMap::new();
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

pub mod settle {
    //! `cargo xtask soak --mode settle`: refunds through the durable journal under crashes, faults
    //! and eventual consistency, then reconciliation until every refund is settled and verified.
    //!
    //! # What runs
    //!
    //! The sandbox starts with a read delay ([`SettleOptions::read_delay`]: a recorded refund shows
    //! in the providers' reads only that long after it was recorded) and AfterPay without its
    //! replay of a repeated reference. A journal opens on a fresh SQLite file (or, with
    //! [`Backend::Postgres`], a fresh schema on the server of `REFUNDS_JOURNAL_PG_URL`, through a
    //! [`DatabaseProxy`] that cuts every connection every [`SettleOptions::database_cuts`] until
    //! the checks, where asked), with a short AfterPay settling delay
    //! ([`SettleOptions::settling_delay`]) and the retry soak's [`POLICY`].
    //! Then [`SettleOptions::refunds`] refunds, the providers in turn, each of 10.00 on a fresh
    //! order (40% of Optty's orders record their refunds `PENDING`; every OpenApp refund is pending
    //! until settled), go through [`Journal::refund`] with [`SettleOptions::concurrency`] in
    //! flight, each with at most one *disruption* drawn from the seed:
    //!
    //! - **a fault on the refund route** (up to 3 firings, or past the retry budget for 8% of them,
    //!   half of the `429`s: refused until the call gives up, not applied): plain `503` and `429`
    //!   before any work; `NonJson502` (a gateway's page, nothing done); after the refund was
    //!   recorded, a dropped connection ([`Fault::DropAfterCommit`]), a gateway's `502`/`504` page
    //!   ([`Fault::StatusAfterCommit`]), a malformed body and (OpenApp) an unsigned or badly signed
    //!   answer; latency below the client's time-out, and past it (the client drops the connection,
    //!   the provider commits later);
    //! - **a crash** of the sender mid-attempt: the sender (its own journal instance on the same
    //!   file, with a [`CRASH_LEASE`], and its own client) runs on a runtime of its own, which is
    //!   dropped, every task of it where it stands, once its attempt is on the wire: either while
    //!   the provider holds the request (a latency fault; the provider commits after the crash) or
    //!   while the request is stuck on its way (the sender's client points at a listener that reads
    //!   and never answers; the provider never sees it). None of its tasks runs another step, so
    //!   nothing past the point the crash reached is recorded; its connections close (as the
    //!   operating system closes a dead process's) and its lease lapses unrenewed;
    //!
    //! and, independently, 30% of the orders of providers with a read get **a fault on the read
    //! operation** (`503`, a gateway's `502` or `504` page, a dropped connection, a malformed body,
    //! latency past the time-out; 1 or 2 firings).
    //!
    //! Then **reconcile rounds**: [`Journal::reconcile`] (or, with [`SettleOptions::reconciler`],
    //! [`Journal::reconcile_round`], as a service's reconciler runs it; either reads pending
    //! refunds to their final status, reads Optty and Moyasar unknowns before re-sending,
    //! attributes AfterPay unknowns by reading the order, re-sends OpenApp's); after each round
    //! the sandbox **settles every pending refund** through its API
    //! ([`sandbox::ProviderHandle::settle`]: Optty `PENDING`, every OpenApp refund; 10% of them,
    //! drawn from the seed, as failed), and **OpenApp's settlement
    //! report** is fed to the journal: OpenApp has no read, so its pending refunds are settled in
    //! the journal only by [`Journal::record_status`]; the soak reads the OpenApp sandbox's ledger,
    //! as the settlement report would list it, and records the final status of every journaled
    //! refund still pending there (matched by `caseId`, the merchant reference). Rounds go on, a
    //! short pause between them, until nothing is left unresolved or pending in the journal (and no
    //! crashed sender's entry is still in flight), or no round changed anything for longer than the
    //! settling delay and a crashed sender's lease together, or [`SettleOptions::max_rounds`].
    //!
    //! # What is checked
    //!
    //! Per refund, the journal's entry against the sandbox's refunds under its duplicate key, once
    //! the rounds are over:
    //!
    //! | column | meaning | must be |
    //! |---|---|---|
    //! | duplicates | more than one sandbox refund under the merchant reference | 0 |
    //! | lost | a sandbox refund the journal does not hold as applied, an applied entry without a sandbox refund, or a sandbox refund under a key no refund of the soak has | 0 |
    //! | mismatched | an applied entry whose status is not the sandbox refund's (succeeded, failed) | 0 |
    //! | pending left | an applied entry still pending (the sandbox settled everything) | 0 |
    //! | left for a person | an entry still unknown or in flight (AfterPay included: in the sandbox every refund of an order goes through the journal, so attribution always decides) | 0 |
    //! | errors | a journal call or a reconcile entry that failed with a [`refunds_journal::JournalError`] (with database cuts, a call the database failed is counted apart: its refund is held to the rows above like every other) | 0 |
    //!
    //! and counts what happened: refunds attempted, applied, not applied, unresolved when the call
    //! returned (crashed ones included), crashed, settled by reading (entries the journal settled
    //! by finding or attributing the refund in the provider's record), status read (pending ones
    //! read to their final status), reported (OpenApp statuses recorded from the settlement
    //! report), re-sent by reconcile, failed (the sandbox settled them failed: raised by the
    //! journal as failed after applied), and the round in which the provider's last change came.

    use std::collections::{BTreeMap, HashMap};
    use std::fmt;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, bail};
    use refunds::{ByProvider, MerchantReference, Provider, RefundRequest, RefundStatus, Refunds};
    use refunds_journal::{
        Database, Entry, EntryState, Journal, JournalConfig, JournalError, ProviderBackoff,
        ReconcilerConfig, Reconciliation, SettledBy,
    };
    use rust_decimal::Decimal;
    use sandbox::{Fault, FaultHandle, Match, Operation, Sandbox, SandboxConfig};
    use test_support::{ClientSettings, DatabaseProxy, duplicate_key, handle};
    use tokio::sync::{Semaphore, oneshot};
    use tokio::task::JoinSet;

    use super::{
        CAPTURED_MINOR, FaultPlan, LIMITS, LONG_LATENCY_MAX, LONG_LATENCY_MIN, Menu, POLICY,
        SIGNED, TIMEOUT, fault_label, number, provider_index, request,
    };

    /// The lease of the main journal's calls: far longer than an attempt can take here.
    pub const LEASE: Duration = Duration::from_secs(10);
    /// The lease of a crashing sender's journal: once it lapses, the sender is taken for dead.
    pub const CRASH_LEASE: Duration = Duration::from_millis(1500);
    /// How long the provider holds a crashing sender's request (the sender is killed meanwhile).
    const CRASH_HOLD: Duration = Duration::from_millis(700);
    /// How many times a crashing sender tries to open its journal (a database cut may fail one).
    const OPEN_TRIES: usize = 5;
    /// How long the soak waits for a crashing sender's attempt to be on the wire.
    const CRASH_WAIT: Duration = Duration::from_secs(15);
    /// The pause between two reconcile rounds.
    const ROUND_PAUSE: Duration = Duration::from_millis(250);
    /// The latest a timed-out attempt commits after the client gave up on it.
    pub const LATE_COMMIT: Duration = LONG_LATENCY_MAX.saturating_sub(TIMEOUT);

    /// Shares (in %) of the plan.
    const NO_DISRUPTION_PERCENT: u32 = 20;
    const CRASH_PERCENT: u32 = 8;
    const OVER_BUDGET_PERCENT: u32 = 8;
    const REFUSED_OVER_BUDGET_PERCENT: u32 = 50;
    const READ_FAULT_PERCENT: u32 = 30;
    const PENDING_PERCENT: u32 = 40;
    const SETTLE_FAILED_PERCENT: u32 = 10;

    /// Faults on the refund route.
    const REFUND_FAULTS: Menu = &[
        (12, |_| Fault::Status(503)),
        (6, |_| Fault::Status(429)),
        (8, |_| Fault::NonJson502),
        (12, |_| Fault::DropAfterCommit),
        (10, |_| Fault::StatusAfterCommit(502)),
        (10, |_| Fault::StatusAfterCommit(504)),
        (10, |_| Fault::MalformedBody),
        (5, |rng| {
            Fault::Latency(Duration::from_millis(rng.u64(5..=50)))
        }),
        (8, |rng| {
            Fault::Latency(Duration::from_millis(rng.u64(
                LONG_LATENCY_MIN.as_millis() as u64..=LONG_LATENCY_MAX.as_millis() as u64,
            )))
        }),
    ];

    /// Faults on the read operation (long latency rarer: reconcile reads one entry at a time).
    const READ_FAULTS: Menu = &[
        (10, |_| Fault::Status(503)),
        (10, |_| Fault::NonJson502),
        (10, |_| Fault::DropAfterCommit),
        (10, |_| Fault::StatusAfterCommit(504)),
        (10, |_| Fault::MalformedBody),
        (3, |rng| {
            Fault::Latency(Duration::from_millis(rng.u64(
                LONG_LATENCY_MIN.as_millis() as u64..=LONG_LATENCY_MAX.as_millis() as u64,
            )))
        }),
    ];

    /// What to run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SettleOptions {
        /// Logical refunds in all, spread round-robin over the four providers.
        pub refunds: usize,
        /// Seed of the plan (disruptions, read faults, pending orders, failed settlements).
        pub seed: u64,
        /// Journal calls in flight at once.
        pub concurrency: usize,
        /// The sandbox's read delay: how long a recorded refund stays out of reads.
        pub read_delay: Duration,
        /// The journal's AfterPay settling delay ([`JournalConfig::settling_delay`]).
        pub settling_delay: Duration,
        /// The most reconcile rounds.
        pub max_rounds: usize,
        /// The journal's backend.
        pub backend: Backend,
        /// PostgreSQL only: while refunds are sent and reconciled, every connection to the
        /// database is cut this often (a server that restarts; see [`DatabaseProxy::cut`]).
        pub database_cuts: Option<Duration>,
        /// How long each cut keeps the database down (nothing listening: connections refused)
        /// before it is back; zero for a server that is back at once.
        pub database_down: Duration,
        /// Reconcile with [`Journal::reconcile_round`] ([`RECONCILER`]: several entries at once,
        /// a deadline per entry, a provider whose entry failed left alone for a while), as a
        /// service's reconciler does, instead of [`Journal::reconcile`].
        pub reconciler: bool,
    }

    /// The reconciler's settings with `--reconciler`: [`ReconcilerConfig::default`]'s
    /// concurrency and entry deadline, a round every 250 ms (the soak's pause between rounds)
    /// and backoffs to match.
    pub const RECONCILER: ReconcilerConfig = ReconcilerConfig {
        every: ROUND_PAUSE,
        concurrency: 8,
        entry_deadline: Duration::from_secs(30),
        backoff: ROUND_PAUSE,
        max_backoff: Duration::from_secs(2),
    };

    /// Where the soak's journal lives.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Backend {
        /// A SQLite file of the run's own in the temporary directory.
        #[default]
        Sqlite,
        /// A schema of the run's own on the PostgreSQL server of `REFUNDS_JOURNAL_PG_URL`.
        Postgres,
    }

    impl Default for SettleOptions {
        fn default() -> Self {
            SettleOptions {
                refunds: 2_000,
                seed: 1,
                concurrency: 16,
                read_delay: Duration::from_millis(200),
                settling_delay: Duration::from_millis(2_000),
                max_rounds: 100,
                backend: Backend::Sqlite,
                database_cuts: None,
                database_down: Duration::ZERO,
                reconciler: false,
            }
        }
    }

    impl SettleOptions {
        /// Parses `[--refunds N] [--seed S] [--concurrency C] [--read-delay-ms D]
        /// [--settling-ms D] [--max-rounds R] [--database sqlite|postgres]
        /// [--database-cuts-ms D] [--database-down-ms D] [--reconciler]` (also `--flag=value`).
        /// Refuses a
        /// settling delay that does not exceed the read delay plus [`LATE_COMMIT`]: the journal
        /// would then rightly be told a refund that shows late was never made (run such a
        /// configuration through [`run`] to see the soak catch the duplicate).
        pub fn parse(args: &[&str]) -> Result<SettleOptions> {
            let mut options = SettleOptions::default();
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
                let millis = |value: &str| number::<u64>(flag, value).map(Duration::from_millis);
                match flag {
                    "--refunds" => options.refunds = number(flag, value()?)?,
                    "--seed" => options.seed = number(flag, value()?)?,
                    "--concurrency" => options.concurrency = number(flag, value()?)?,
                    "--read-delay-ms" => options.read_delay = millis(value()?)?,
                    "--settling-ms" => options.settling_delay = millis(value()?)?,
                    "--max-rounds" => options.max_rounds = number(flag, value()?)?,
                    "--database" => {
                        options.backend = match value()? {
                            "sqlite" => Backend::Sqlite,
                            "postgres" => Backend::Postgres,
                            other => bail!("--database {other:?}: sqlite or postgres"),
                        }
                    }
                    "--database-cuts-ms" => options.database_cuts = Some(millis(value()?)?),
                    "--database-down-ms" => options.database_down = millis(value()?)?,
                    "--reconciler" => options.reconciler = true,
                    _ => bail!("unknown option {arg:?} of --mode settle (see --help)"),
                }
            }
            if options.concurrency == 0 {
                bail!("--concurrency must be at least 1");
            }
            if options.max_rounds == 0 {
                bail!("--max-rounds must be at least 1");
            }
            match options.database_cuts {
                None if !options.database_down.is_zero() => {
                    bail!("--database-down-ms needs --database-cuts-ms")
                }
                Some(every) if every.is_zero() => bail!("--database-cuts-ms must be at least 1"),
                Some(_) if options.backend != Backend::Postgres => {
                    bail!("--database-cuts-ms needs --database postgres")
                }
                _ => {}
            }
            if options.settling_delay <= options.read_delay + LATE_COMMIT {
                bail!(
                    "--settling-ms {} must exceed the read delay ({} ms) plus the latest a late \
                     attempt commits ({} ms): a shorter one lets the journal take a refund that \
                     shows late for one never made, and send it again",
                    options.settling_delay.as_millis(),
                    options.read_delay.as_millis(),
                    LATE_COMMIT.as_millis()
                );
            }
            Ok(options)
        }
    }

    /// What happens to one refund's call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Disruption {
        /// Nothing.
        None,
        /// A fault on the refund route of its order.
        Fault(FaultPlan),
        /// The sender crashes while the provider holds its request; the provider commits after.
        CrashAtProvider,
        /// The sender crashes while its request is on its way; the provider never sees it.
        CrashOnTheWay,
    }

    impl Disruption {
        fn label(&self) -> String {
            match self {
                Disruption::None => "none".to_owned(),
                Disruption::Fault(plan) => fault_label(Some(plan)),
                Disruption::CrashAtProvider => "crash: provider holds it".to_owned(),
                Disruption::CrashOnTheWay => "crash: on the way".to_owned(),
            }
        }

        fn is_crash(&self) -> bool {
            matches!(
                self,
                Disruption::CrashAtProvider | Disruption::CrashOnTheWay
            )
        }
    }

    /// One logical refund and its plan.
    #[derive(Debug, Clone)]
    struct Trial {
        index: usize,
        provider: Provider,
        order_id: String,
        reference: MerchantReference,
        key: String,
        disruption: Disruption,
        read_fault: Option<FaultPlan>,
        /// (Optty) the order records its refunds `PENDING`.
        pending: bool,
        /// The sandbox settles the refund failed, where it is pending.
        settle_failed: bool,
    }

    /// A fault from `menus`, weighted.
    fn pick(rng: &mut fastrand::Rng, menus: &[Menu]) -> Fault {
        let all = || menus.iter().flat_map(|menu| menu.iter());
        let mut at = rng.u32(0..all().map(|(weight, _)| weight).sum::<u32>());
        for (weight, make) in all() {
            if at < *weight {
                return make(rng);
            }
            at -= weight;
        }
        unreachable!("the draw is below the sum of the weights")
    }

    /// The plan of one refund through `provider`: (disruption, read fault, pending, failed).
    fn draw(
        rng: &mut fastrand::Rng,
        provider: Provider,
    ) -> (Disruption, Option<FaultPlan>, bool, bool) {
        let roll = rng.u32(0..100);
        let disruption = if roll < NO_DISRUPTION_PERCENT {
            Disruption::None
        } else if roll < NO_DISRUPTION_PERCENT + CRASH_PERCENT {
            if rng.bool() {
                Disruption::CrashAtProvider
            } else {
                Disruption::CrashOnTheWay
            }
        } else {
            let menus: &[Menu] = if provider == Provider::OpenApp {
                &[REFUND_FAULTS, SIGNED]
            } else {
                &[REFUND_FAULTS]
            };
            let fault = pick(rng, menus);
            // A 429 is a refusal (nothing done): past the budget it settles not applied.
            let over_budget = if fault == Fault::Status(429) {
                REFUSED_OVER_BUDGET_PERCENT
            } else {
                OVER_BUDGET_PERCENT
            };
            let times = if rng.u32(0..100) < over_budget {
                POLICY.max_attempts as usize + 2
            } else {
                rng.usize(1..=3)
            };
            Disruption::Fault(FaultPlan { fault, times })
        };
        let read_fault = (rng.u32(0..100) < READ_FAULT_PERCENT).then(|| FaultPlan {
            fault: pick(rng, &[READ_FAULTS]),
            times: rng.usize(1..=2),
        });
        let read_fault = read_fault.filter(|_| provider.capabilities().record_read);
        let pending = provider == Provider::Optty && rng.u32(0..100) < PENDING_PERCENT;
        let settle_failed = rng.u32(0..100) < SETTLE_FAILED_PERCENT;
        (disruption, read_fault, pending, settle_failed)
    }

    /// The whole plan, from the seed alone.
    fn plan(options: &SettleOptions) -> Result<Vec<Trial>> {
        let mut rng = fastrand::Rng::with_seed(options.seed);
        (0..options.refunds)
            .map(|index| {
                let provider = Provider::ALL[index % Provider::ALL.len()];
                let text = format!("SETTLE-{}-{index}", options.seed);
                let text = if text.len() <= MerchantReference::MAX_LEN {
                    text
                } else {
                    format!("SETTLE-{index}")
                };
                let reference = MerchantReference::new(text.as_str())?;
                let key = duplicate_key(provider, &reference);
                let (mut disruption, read_fault, pending, settle_failed) = draw(&mut rng, provider);
                // Each provider's first refund crashes its sender while the provider holds the
                // request, whatever the seed draws: every provider's recovery from a crash is
                // exercised, however many providers share the refunds.
                if index < Provider::ALL.len() {
                    disruption = Disruption::CrashAtProvider;
                }
                Ok(Trial {
                    index,
                    provider,
                    order_id: format!("SETTLE-ORD-{index}"),
                    reference,
                    key,
                    disruption,
                    read_fault,
                    pending,
                    settle_failed,
                })
            })
            .collect()
    }

    /// How a refund's call through the journal ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum CallEnd {
        /// [`refunds_journal::JournaledRefund::label`]: `applied`, `replayed`, `rejected`,
        /// `unresolved`, `in_progress`.
        Returned(&'static str),
        /// A [`refunds_journal::JournalError`], displayed.
        Failed {
            /// The error.
            error: String,
            /// Whether the database failed the call ([`by_database`]): what a database cut
            /// does.
            by_database: bool,
        },
        /// The sender was killed mid-attempt.
        Crashed,
        /// The crash came too late: the sender's call had returned (its label).
        CrashMissed(&'static str),
    }

    impl CallEnd {
        /// Whether the call left the refund settled (applied or not applied).
        fn settled(&self) -> bool {
            matches!(
                self,
                CallEnd::Returned("applied" | "replayed" | "rejected")
                    | CallEnd::CrashMissed("applied" | "replayed" | "rejected")
            )
        }

        fn describe(&self) -> String {
            match self {
                CallEnd::Returned(label) => (*label).to_owned(),
                CallEnd::Failed { error, .. } => format!("journal error: {error}"),
                CallEnd::Crashed => "crashed mid-attempt".to_owned(),
                CallEnd::CrashMissed(label) => format!("{label} (the crash came too late)"),
            }
        }
    }

    /// What every refund task shares.
    struct Ctx {
        sb: Arc<Sandbox>,
        journal: Journal,
        refunds: Refunds,
        urls: ByProvider<String>,
        settings: ClientSettings,
        store: SoakStore,
        settling_delay: Duration,
    }

    /// The journal configuration of the soak: `lease`, the retry soak's policy, `settling`.
    fn journal_config(instance: String, lease: Duration, settling: Duration) -> JournalConfig {
        JournalConfig {
            lease,
            retry: POLICY,
            settling_delay: settling,
            instance,
            ..JournalConfig::default()
        }
    }

    /// Seeds the trial's order, injects its faults, and sends it through the journal (or
    /// crashes a sender mid-attempt).
    async fn send(ctx: Arc<Ctx>, trial: Trial) -> Result<CallEnd> {
        let provider = trial.provider;
        let handle = handle(&ctx.sb, provider);
        let mut seed =
            test_support::order_seed(provider, &trial.order_id, Decimal::new(CAPTURED_MINOR, 2));
        if trial.pending {
            seed = seed.refund_status(sandbox::RefundStatus::Pending);
        }
        handle
            .try_seed_order(seed)
            .with_context(|| format!("seeding {provider} order {}", trial.order_id))?;
        if let Some(plan) = &trial.read_fault {
            handle.inject(
                plan.fault.clone(),
                Match::Order(trial.order_id.clone())
                    .on(Operation::Read)
                    .times(plan.times),
            );
        }
        let request = request(provider, &trial.order_id, trial.reference.clone())?;
        match &trial.disruption {
            Disruption::CrashAtProvider | Disruption::CrashOnTheWay => {
                crash(&ctx, &trial, request).await
            }
            Disruption::None | Disruption::Fault(_) => {
                if let Disruption::Fault(plan) = &trial.disruption {
                    handle.inject(
                        plan.fault.clone(),
                        Match::Order(trial.order_id.clone()).times(plan.times),
                    );
                }
                Ok(match ctx.journal.refund(&ctx.refunds, &request).await {
                    Ok(result) => CallEnd::Returned(result.label()),
                    Err(error) => CallEnd::Failed {
                        by_database: by_database(&error),
                        error: error.to_string(),
                    },
                })
            }
        }
    }

    /// Whether the database failed `error` (a database error, the database out of reach, or an
    /// answer it could not record): what a database cut does.
    fn by_database(error: &JournalError) -> bool {
        matches!(
            error,
            JournalError::Database(_)
                | JournalError::Unavailable { .. }
                | JournalError::AnswerNotRecorded { .. }
        )
    }

    /// A loopback listener that reads what it is sent and never answers: a request stuck on
    /// its way to the provider. Stops (dropping every connection) when dropped.
    struct BlackHole {
        url: String,
        touched: Arc<AtomicBool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl BlackHole {
        async fn start() -> Result<BlackHole> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a loopback port")?;
            let url = format!("http://{}", listener.local_addr()?);
            let touched = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&touched);
            let task = tokio::spawn(async move {
                let mut held = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let flag = Arc::clone(&flag);
                    held.spawn(async move {
                        let mut buf = [0u8; 4096];
                        while stream.readable().await.is_ok() {
                            match stream.try_read(&mut buf) {
                                Ok(0) => break,
                                Ok(_) => flag.store(true, Ordering::SeqCst),
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => break,
                            }
                        }
                        // Held open, unanswered, until the listener goes.
                        std::future::pending::<()>().await;
                    });
                }
            });
            Ok(BlackHole { url, touched, task })
        }

        fn touched(&self) -> bool {
            self.touched.load(Ordering::SeqCst)
        }
    }

    impl Drop for BlackHole {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Sends the trial from a sender of its own (a journal instance with [`CRASH_LEASE`] on
    /// the same file, its own client, on a runtime of its own thread) and kills it once its
    /// attempt is on the wire: the provider holds the request ([`Disruption::CrashAtProvider`],
    /// a latency fault of [`CRASH_HOLD`]) or a listener that never answers has it
    /// ([`Disruption::CrashOnTheWay`]). Killing drops the runtime: every task of the sender
    /// stops where it stands, its connections close, its lease lapses unrenewed.
    async fn crash(ctx: &Ctx, trial: &Trial, request: RefundRequest) -> Result<CallEnd> {
        let provider = trial.provider;
        let mut held: Option<FaultHandle> = None;
        let mut hole: Option<BlackHole> = None;
        let urls = if trial.disruption == Disruption::CrashAtProvider {
            held = Some(handle(&ctx.sb, provider).inject(
                Fault::Latency(CRASH_HOLD),
                Match::Order(trial.order_id.clone()).once(),
            ));
            ctx.urls.clone()
        } else {
            let started = BlackHole::start().await?;
            let url = started.url.clone();
            hole = Some(started);
            ByProvider::from_fn(|p| {
                if p == provider {
                    url.clone()
                } else {
                    ctx.urls.get(p).clone()
                }
            })
        };
        let on_the_wire = || {
            held.as_ref().is_some_and(|fault| fault.fired() > 0)
                || hole.as_ref().is_some_and(BlackHole::touched)
        };

        let (kill, killed) = oneshot::channel::<()>();
        let (report, mut ended) = oneshot::channel::<Result<Option<&'static str>>>();
        let (db, settings, settling) = (ctx.store.clone(), ctx.settings, ctx.settling_delay);
        let instance = format!("soak-crashing-sender-{}", trial.index);
        std::thread::Builder::new()
            .name(format!("soak-sender-{}", trial.index))
            .spawn(move || {
                let end = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting a crashing sender's runtime")
                    .and_then(|runtime| {
                        let end = runtime.block_on(crashing_sender(
                            &db, urls, settings, settling, instance, request, killed,
                        ));
                        // The crash: every task of this sender dropped where it stands.
                        drop(runtime);
                        end
                    });
                let _ = report.send(end);
            })
            .context("starting a crashing sender's thread")?;

        let give_up = Instant::now() + CRASH_WAIT;
        loop {
            match ended.try_recv() {
                Ok(end) => return Ok(CallEnd::CrashMissed(end?.unwrap_or("killed"))),
                Err(oneshot::error::TryRecvError::Closed) => {
                    bail!("a crashing sender's thread ended without a word")
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if on_the_wire() || Instant::now() >= give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = kill.send(());
        let end = ended
            .await
            .context("a crashing sender's thread ended without a word")??;
        drop(hole);
        Ok(match end {
            None => CallEnd::Crashed,
            Some(label) => CallEnd::CrashMissed(label),
        })
    }

    /// The crashing sender: `None` when killed, the call's label when it returned first.
    async fn crashing_sender(
        db: &SoakStore,
        urls: ByProvider<String>,
        settings: ClientSettings,
        settling: Duration,
        instance: String,
        request: RefundRequest,
        killed: oneshot::Receiver<()>,
    ) -> Result<Option<&'static str>> {
        // A database cut may fail an opening: a service starting up tries again.
        let mut tries = 1;
        let journal = loop {
            let opened = Journal::open_with(
                db.database().max_connections(1),
                journal_config(instance.clone(), CRASH_LEASE, settling),
            )
            .await;
            match opened {
                Ok(journal) => break journal,
                Err(_) if tries < OPEN_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(error).context("opening the crashing sender's journal"),
            }
        };
        let refunds = test_support::builder(&urls, &settings).build()?;
        tokio::select! {
            biased;
            _ = killed => Ok(None),
            result = journal.refund(&refunds, &request) => Ok(Some(match result {
                Ok(result) => result.label(),
                Err(_) => "journal error",
            })),
        }
    }

    /// Counters of one provider.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SettleStats {
        /// Refunds sent through the journal.
        pub attempted: usize,
        /// Applied at the end.
        pub applied: usize,
        /// Not applied at the end.
        pub not_applied: usize,
        /// Calls that returned without settling the refund (unresolved, in progress, a journal
        /// error) or crashed: what reconciliation had to settle.
        pub unresolved_after_call: usize,
        /// Senders killed mid-attempt.
        pub crashed: usize,
        /// More than one sandbox refund under a merchant reference.
        pub duplicates: usize,
        /// A sandbox refund the journal does not hold as applied, an applied entry without a
        /// sandbox refund, or a sandbox refund under a key of no refund of the soak.
        pub lost: usize,
        /// An applied entry whose status is not the sandbox refund's.
        pub mismatched: usize,
        /// Applied entries still pending at the end.
        pub pending_left: usize,
        /// Entries still unknown or in flight at the end.
        pub left_for_person: usize,
        /// Entries settled by reading the provider's record ([`SettledBy::Read`]).
        pub settled_by_reading: usize,
        /// Pending refunds whose final status reconcile read ([`Reconciliation::StatusRead`],
        /// [`Reconciliation::FailedAfterApplied`]).
        pub status_read: usize,
        /// Statuses recorded from OpenApp's settlement report ([`Journal::record_status`]).
        pub reported: usize,
        /// Re-sent by reconcile ([`Reconciliation::Resent`]).
        pub resent: usize,
        /// Applied refunds whose final status is failed (the sandbox settled them failed).
        pub failed: usize,
        /// Journal calls and reconcile entries that failed with a journal error.
        pub errors: usize,
        /// Journal calls the database failed while it was being cut
        /// ([`SettleOptions::database_cuts`]): not errors, but their refunds must end settled
        /// as the ledger says like every other.
        pub failed_by_cuts: usize,
        /// The reconcile round of the provider's last change (0: none).
        pub last_round: usize,
    }

    impl SettleStats {
        fn add(&mut self, o: &SettleStats) {
            self.attempted += o.attempted;
            self.applied += o.applied;
            self.not_applied += o.not_applied;
            self.unresolved_after_call += o.unresolved_after_call;
            self.crashed += o.crashed;
            self.duplicates += o.duplicates;
            self.lost += o.lost;
            self.mismatched += o.mismatched;
            self.pending_left += o.pending_left;
            self.left_for_person += o.left_for_person;
            self.settled_by_reading += o.settled_by_reading;
            self.status_read += o.status_read;
            self.reported += o.reported;
            self.resent += o.resent;
            self.failed += o.failed;
            self.errors += o.errors;
            self.failed_by_cuts += o.failed_by_cuts;
            self.last_round = self.last_round.max(o.last_round);
        }

        /// The counters [`SettleReport::check`] requires to be zero, by name.
        fn failures(&self) -> Vec<(&'static str, usize)> {
            [
                ("duplicates", self.duplicates),
                ("lost", self.lost),
                ("mismatched", self.mismatched),
                ("pending left", self.pending_left),
                ("left for a person", self.left_for_person),
                ("errors", self.errors),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
        }
    }

    /// Refunds of one disruption (or read fault) kind and provider.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct KindCounts {
        /// Refunds.
        pub trials: usize,
        /// Their calls that left them unresolved (or crashed).
        pub unresolved_after_call: usize,
        /// Settled by reading at the end.
        pub settled_by_reading: usize,
    }

    /// Why the reconcile rounds stopped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Stop {
        /// Nothing left unresolved, in flight or pending in the journal.
        Settled,
        /// No round changed anything for longer than the settling delay and a crashed
        /// sender's lease together.
        Idle,
        /// [`SettleOptions::max_rounds`].
        Bound,
    }

    /// One refund the checks found wrong, with what is needed to replay it.
    #[derive(Debug, Clone)]
    pub struct SettleViolation {
        /// The provider.
        pub provider: Provider,
        /// Which refund (0-based).
        pub index: usize,
        /// The seeded order.
        pub order_id: String,
        /// The merchant reference.
        pub reference: String,
        /// The disruption and read fault.
        pub plan: String,
        /// How the call ended.
        pub call: String,
        /// The journal's entry at the end.
        pub entry: String,
        /// The sandbox's refunds under the key (statuses).
        pub sandbox: Vec<String>,
        /// What is wrong.
        pub problems: Vec<&'static str>,
    }

    impl fmt::Display for SettleViolation {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "{} #{} (order {}, reference {}): {}; plan {}; call {}; journal {}; sandbox [{}]",
                self.provider,
                self.index,
                self.order_id,
                self.reference,
                self.problems.join(" + "),
                self.plan,
                self.call,
                self.entry,
                self.sandbox.join(", ")
            )
        }
    }

    /// What a settle soak found.
    #[derive(Debug, Clone)]
    pub struct SettleReport {
        /// What ran.
        pub options: SettleOptions,
        /// Counters per provider, in [`Provider::ALL`] order.
        pub providers: Vec<(Provider, SettleStats)>,
        /// Refunds by disruption (`read ...` rows: by read fault) and provider.
        pub by_kind: BTreeMap<String, [KindCounts; Provider::ALL.len()]>,
        /// Every refund the checks found wrong (and sandbox refunds of no refund of the soak).
        pub violations: Vec<SettleViolation>,
        /// Reconcile rounds run.
        pub rounds: usize,
        /// Why they stopped.
        pub stopped: Stop,
        /// Crashes that came too late (the sender's call had returned).
        pub crash_missed: usize,
        /// Times every database connection was cut (while refunds were sent and reconciled).
        pub database_cuts: usize,
        /// Reconcile rounds a cut spoiled (a call or an entry failed by the database): tried
        /// again, not errors.
        pub rounds_cut: usize,
        /// The journal's database (file or schema), kept when a check failed (removed
        /// otherwise).
        pub kept_journal: Option<SoakStore>,
        /// Sending every refund.
        pub sending: Duration,
        /// The reconcile rounds.
        pub reconciling: Duration,
        /// The whole run.
        pub total: Duration,
    }

    impl SettleReport {
        /// One provider's counters.
        pub fn stats(&self, provider: Provider) -> &SettleStats {
            &self.providers[provider_index(provider)].1
        }

        /// All providers together.
        pub fn totals(&self) -> SettleStats {
            let mut total = SettleStats::default();
            for (_, stats) in &self.providers {
                total.add(stats);
            }
            total
        }

        /// Fails unless, for every provider, nothing is duplicated, lost or mismatched, nothing
        /// is left pending or for a person, and the journal never failed.
        pub fn check(&self) -> Result<()> {
            super::check_failures(
                &format!(
                    "the settle soak (seed {}) found refunds not settled as the sandbox's ledger \
                     says",
                    self.options.seed
                ),
                self.providers
                    .iter()
                    .map(|(provider, stats)| (*provider, stats.failures())),
                &self.violations,
            )
        }
    }

    impl fmt::Display for SettleReport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let o = &self.options;
            writeln!(
                f,
                "settle soak: {} refunds through the journal ({}), seed {}, concurrency {}; \
                 read delay {} ms, settling delay {} ms; client timeout {} ms, {} attempts; \
                 lease {} s, crashed senders' {} ms; reconciled by {}",
                o.refunds,
                match o.backend {
                    Backend::Sqlite => "SQLite",
                    Backend::Postgres => "PostgreSQL",
                },
                o.seed,
                o.concurrency,
                o.read_delay.as_millis(),
                o.settling_delay.as_millis(),
                TIMEOUT.as_millis(),
                POLICY.max_attempts,
                LEASE.as_secs(),
                CRASH_LEASE.as_millis(),
                if o.reconciler {
                    "Journal::reconcile_round (the reconciler's rounds)"
                } else {
                    "Journal::reconcile"
                }
            )?;
            let header = [
                "provider",
                "attempted",
                "applied",
                "not applied",
                "unresolved after call",
                "crashed",
                "duplicates",
                "lost",
                "mismatched",
                "pending left",
                "left for a person",
                "errors",
                "settled by reading",
                "status read",
                "reported",
                "resent",
                "failed",
                "rounds",
            ];
            let widths: Vec<usize> = header.iter().map(|h| h.len().max(5)).collect();
            let line = |cells: Vec<String>| -> String {
                cells
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (cell, width))| {
                        if i == 0 {
                            format!("{cell:<9}")
                        } else {
                            format!(" | {cell:>width$}")
                        }
                    })
                    .collect()
            };
            writeln!(
                f,
                "{}",
                line(header.iter().map(|h| (*h).to_owned()).collect())
            )?;
            let totals = self.totals();
            let rows = self
                .providers
                .iter()
                .map(|(provider, stats)| (provider.to_string(), stats))
                .chain(std::iter::once(("total".to_owned(), &totals)));
            for (name, s) in rows {
                let rounds = if name == "total" {
                    self.rounds
                } else {
                    s.last_round
                };
                writeln!(
                    f,
                    "{}",
                    line(vec![
                        name,
                        s.attempted.to_string(),
                        s.applied.to_string(),
                        s.not_applied.to_string(),
                        s.unresolved_after_call.to_string(),
                        s.crashed.to_string(),
                        s.duplicates.to_string(),
                        s.lost.to_string(),
                        s.mismatched.to_string(),
                        s.pending_left.to_string(),
                        s.left_for_person.to_string(),
                        s.errors.to_string(),
                        s.settled_by_reading.to_string(),
                        s.status_read.to_string(),
                        s.reported.to_string(),
                        s.resent.to_string(),
                        s.failed.to_string(),
                        rounds.to_string(),
                    ])
                )?;
            }
            let stopped = match self.stopped {
                Stop::Settled => "nothing left to settle",
                Stop::Idle => "nothing changed for longer than the settling delay and a lease",
                Stop::Bound => "the bound",
            };
            writeln!(
                f,
                "must be 0: duplicates, lost, mismatched, pending left, left for a person, errors. \
                 rounds: the round of the provider's last change (total: rounds run, stopped at \
                 {stopped}); crashes that came too late: {}",
                self.crash_missed
            )?;
            if let Some(every) = o.database_cuts {
                let failed: Vec<String> = self
                    .providers
                    .iter()
                    .map(|(p, s)| format!("{p} {}", s.failed_by_cuts))
                    .collect();
                writeln!(
                    f,
                    "database cuts: {} (every {} ms while sending and reconciling, down {} ms \
                     each); journal calls they failed: {}; reconcile rounds they spoiled: {}",
                    self.database_cuts,
                    every.as_millis(),
                    o.database_down.as_millis(),
                    failed.join(", "),
                    self.rounds_cut
                )?;
            }
            writeln!(
                f,
                "wall time: {:.2} s sending, {:.2} s reconciling, {:.2} s in all",
                self.sending.as_secs_f64(),
                self.reconciling.as_secs_f64(),
                self.total.as_secs_f64()
            )?;
            writeln!(f)?;
            writeln!(
                f,
                "refunds by disruption (read ...: by fault on the read operation), \
                 refunds/unresolved after the call/settled by reading:"
            )?;
            write!(f, "{:<28}", "disruption")?;
            for provider in Provider::ALL {
                write!(f, " {:>12}", provider.to_string())?;
            }
            writeln!(f)?;
            for (label, counts) in &self.by_kind {
                write!(f, "{label:<28}")?;
                for c in counts {
                    let cell = if c.trials == 0 {
                        "-".to_owned()
                    } else {
                        format!(
                            "{}/{}/{}",
                            c.trials, c.unresolved_after_call, c.settled_by_reading
                        )
                    };
                    write!(f, " {cell:>12}")?;
                }
                writeln!(f)?;
            }
            if let Some(store) = &self.kept_journal {
                writeln!(f)?;
                writeln!(f, "the journal is kept for a look: {store}")?;
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

    /// The soak's journal database: a SQLite file or a PostgreSQL schema of the run's own.
    #[derive(Debug, Clone)]
    pub enum SoakStore {
        /// A SQLite file in the temporary directory.
        Sqlite(PathBuf),
        /// A schema on the server of `REFUNDS_JOURNAL_PG_URL`.
        Postgres {
            /// The server's URL (never printed: it holds the password).
            url: String,
            /// The URL the journals connect to: the server's, or a [`DatabaseProxy`]'s in
            /// front of it.
            connect: String,
            /// The run's schema.
            schema: String,
        },
    }

    impl SoakStore {
        /// A new database of `backend` for a run of `seed`, named so that no other run (of this
        /// process or another) shares it.
        fn new(backend: Backend, seed: u64) -> Result<SoakStore> {
            static RUNS: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let run = format!(
                "{}_{seed}_{}_{nanos}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::Relaxed)
            );
            Ok(match backend {
                Backend::Sqlite => SoakStore::Sqlite(
                    std::env::temp_dir().join(format!("refunds-settle-soak-{run}.db")),
                ),
                Backend::Postgres => {
                    let url = std::env::var("REFUNDS_JOURNAL_PG_URL")
                        .ok()
                        .filter(|url| !url.trim().is_empty())
                        .context(
                            "--database postgres needs REFUNDS_JOURNAL_PG_URL (a throwaway \
                             server: eval \"$(scripts/pg-throwaway start)\")",
                        )?;
                    SoakStore::Postgres {
                        connect: url.clone(),
                        url,
                        // PostgreSQL's identifiers are at most 63 bytes.
                        schema: format!("soak_{run}").chars().take(63).collect(),
                    }
                }
            })
        }

        /// The journal's [`Database`].
        pub fn database(&self) -> Database {
            match self {
                SoakStore::Sqlite(path) => Database::sqlite(path),
                SoakStore::Postgres {
                    connect, schema, ..
                } => Database::postgres(connect.clone()).schema(schema.clone()),
            }
        }

        /// Removes the file (with its WAL and shared-memory files) or drops the schema.
        pub async fn remove(&self) -> Result<()> {
            match self {
                SoakStore::Sqlite(path) => {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut name = path.as_os_str().to_owned();
                        name.push(suffix);
                        let _ = std::fs::remove_file(PathBuf::from(name));
                    }
                }
                SoakStore::Postgres { url, schema, .. } => {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(url)
                        .await
                        .context("connecting to drop the soak's schema")?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&mut conn)
                        .await
                        .with_context(|| format!("dropping schema {schema}"))?;
                    let _ = conn.close().await;
                }
            }
            Ok(())
        }

        /// Journals connect through `proxy` (PostgreSQL's; a SQLite file has no connection to
        /// cut).
        fn through(&mut self, proxy: &DatabaseProxy) {
            if let SoakStore::Postgres { url, connect, .. } = self {
                *connect = proxy.url(url);
            }
        }
    }

    impl fmt::Display for SoakStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                SoakStore::Sqlite(path) => write!(f, "{}", path.display()),
                SoakStore::Postgres { schema, .. } => {
                    write!(f, "schema {schema} on REFUNDS_JOURNAL_PG_URL's database")
                }
            }
        }
    }

    /// The sandbox's refunds by (provider index, duplicate key).
    type Ledger = HashMap<(usize, String), Vec<sandbox::RecordedRefund>>;

    fn ledger(sb: &Sandbox) -> (Ledger, Vec<(usize, sandbox::RecordedRefund)>) {
        let mut by_key: Ledger = HashMap::new();
        let mut unkeyed = Vec::new();
        for (p, provider) in Provider::ALL.into_iter().enumerate() {
            for order in handle(sb, provider).orders() {
                for refund in order.refunds {
                    match refund.reference.clone() {
                        Some(key) => by_key.entry((p, key)).or_default().push(refund),
                        None => unkeyed.push((p, refund)),
                    }
                }
            }
        }
        (by_key, unkeyed)
    }

    fn sandbox_status(status: sandbox::RefundStatus) -> RefundStatus {
        match status {
            sandbox::RefundStatus::Succeeded => RefundStatus::Succeeded,
            sandbox::RefundStatus::Pending => RefundStatus::Pending,
            sandbox::RefundStatus::Failed => RefundStatus::Failed,
        }
    }

    /// The sandbox settles every pending refund: failed where the refund's plan says so,
    /// succeeded otherwise. Returns how many per provider.
    fn settle_sandbox(
        sb: &Sandbox,
        failed: &HashMap<(usize, String), bool>,
    ) -> [usize; Provider::ALL.len()] {
        let mut settled = [0; Provider::ALL.len()];
        for (p, provider) in Provider::ALL.into_iter().enumerate() {
            let handle = handle(sb, provider);
            for order in handle.orders() {
                for refund in &order.refunds {
                    if refund.status != sandbox::RefundStatus::Pending {
                        continue;
                    }
                    let fails = refund
                        .reference
                        .as_ref()
                        .and_then(|key| failed.get(&(p, key.clone())))
                        .copied()
                        .unwrap_or(false);
                    let status = if fails {
                        sandbox::RefundStatus::Failed
                    } else {
                        sandbox::RefundStatus::Succeeded
                    };
                    if handle.settle(&order.id, &refund.id, status).is_ok() {
                        settled[p] += 1;
                    }
                }
            }
        }
        settled
    }

    /// OpenApp's settlement report: every journaled OpenApp refund still pending whose refund
    /// the sandbox's ledger lists final gets that status ([`Journal::record_status`]). Returns
    /// how many, and the errors.
    async fn feed_openapp_report(
        journal: &Journal,
        sb: &Sandbox,
    ) -> Result<(usize, Vec<(MerchantReference, JournalError)>)> {
        let provider = Provider::OpenApp;
        let p = provider_index(provider);
        let (ledger, _) = ledger(sb);
        let mut recorded = 0;
        let mut errors = Vec::new();
        let pending = journal.pending().await.context("listing pending refunds")?;
        for entry in pending.iter().filter(|entry| entry.provider == provider) {
            let key = duplicate_key(provider, &entry.merchant_reference);
            let Some([refund]) = ledger.get(&(p, key)).map(Vec::as_slice) else {
                continue; // not in the report (or more than one: the checks say so)
            };
            let status = sandbox_status(refund.status);
            if status == RefundStatus::Pending {
                continue;
            }
            match journal
                .record_status(provider, &entry.merchant_reference, status)
                .await
            {
                Ok(_) => recorded += 1,
                Err(error) => errors.push((entry.merchant_reference.clone(), error)),
            }
        }
        Ok((recorded, errors))
    }

    /// Everything in the journal that later rounds may still settle: unresolved entries,
    /// pending ones, and crashed senders' entries still in flight under their lease.
    async fn outstanding(
        journal: &Journal,
        may_be_in_flight: &[(Provider, MerchantReference)],
    ) -> Result<usize> {
        let mut n = journal.unresolved().await?.len() + journal.pending().await?.len();
        for (provider, reference) in may_be_in_flight {
            if let Some(entry) = journal.entry(*provider, reference).await?
                && entry.state == EntryState::InFlight
            {
                n += 1;
            }
        }
        Ok(n)
    }

    fn describe_entry(entry: Option<&Entry>) -> String {
        let Some(entry) = entry else {
            return "no entry".to_owned();
        };
        let mut text = format!("{} after {} attempt(s)", entry.state, entry.attempts);
        if let Some(status) = entry.refund_status {
            text.push_str(&format!(", status {status:?}"));
        }
        if let Some(by) = entry.settled_by {
            text.push_str(&format!(", settled by {}", by.as_str()));
        }
        if let Some(reason) = &entry.unresolved_reason {
            let reason: String = reason.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = reason.chars().take(240).collect();
            text.push_str(&format!(", reason: {short}"));
        }
        text
    }

    /// What the end state of one refund says is wrong: its entry's state and status (`None`:
    /// no entry) against the sandbox's refunds under its key.
    fn problems(
        entry: Option<(EntryState, Option<RefundStatus>)>,
        recorded: &[sandbox::RecordedRefund],
    ) -> Vec<&'static str> {
        let mut found = Vec::new();
        let state = entry.map(|(state, _)| state);
        let status = entry.and_then(|(_, status)| status);
        let applied = state == Some(EntryState::Applied);
        if recorded.len() > 1 {
            found.push("duplicate");
        }
        if (!recorded.is_empty() && !applied) || (applied && recorded.is_empty()) {
            found.push("lost");
        }
        if let [refund] = recorded
            && applied
            && status != Some(RefundStatus::Pending)
            && status != Some(sandbox_status(refund.status))
        {
            found.push("mismatched");
        }
        if applied && status == Some(RefundStatus::Pending) {
            found.push("pending left");
        }
        if matches!(state, Some(EntryState::Unknown | EntryState::InFlight)) {
            found.push("left for a person");
        }
        found
    }

    /// Runs the settle soak (see the [module docs](self)).
    pub async fn run(options: &SettleOptions) -> Result<SettleReport> {
        if options.concurrency == 0 {
            bail!("the concurrency must be at least 1");
        }
        let store = SoakStore::new(options.backend, options.seed)?;
        store.remove().await?;
        // A run that fails (rather than a check) keeps its journal too, and says where.
        let kept = store.to_string();
        run_on(options, store)
            .await
            .with_context(|| format!("the journal is kept for a look: {kept}"))
    }

    /// [`run`] on `store`, a new database: removed at the end unless a check failed.
    async fn run_on(options: &SettleOptions, mut store: SoakStore) -> Result<SettleReport> {
        let started = Instant::now();
        let sb = Arc::new(
            Sandbox::start(SandboxConfig {
                read_delay: options.read_delay,
                // Riverty documents no duplicate rule: the journal must not lean on one.
                afterpay: sandbox::afterpay::Settings {
                    replay_transaction_reference: false,
                    ..Default::default()
                },
                ..SandboxConfig::default()
            })
            .await
            .context("starting the sandbox")?,
        );
        let settings = ClientSettings {
            timeout: TIMEOUT,
            answer_limits: Some(LIMITS),
            ..ClientSettings::default()
        };
        let urls = test_support::base_urls(&sb);
        let refunds = test_support::builder(&urls, &settings)
            .build()
            .context("building the facade client")?;
        let mut proxy = None;
        if let (Some(_), SoakStore::Postgres { url, .. }) = (options.database_cuts, &store) {
            let started = DatabaseProxy::start(url).await;
            store.through(&started);
            proxy = Some(started);
        }
        let journal = Journal::open_with(
            store.database(),
            journal_config("soak-main".to_owned(), LEASE, options.settling_delay),
        )
        .await
        .context("opening the journal")?;
        let ctx = Arc::new(Ctx {
            sb: Arc::clone(&sb),
            journal: journal.clone(),
            refunds: refunds.clone(),
            urls,
            settings,
            store: store.clone(),
            settling_delay: options.settling_delay,
        });

        let trials = plan(options)?;

        // Sending, with the database cut every so often where asked.
        let (stop_cutting, cutting) = oneshot::channel::<()>();
        let down = options.database_down;
        let cutter = options.database_cuts.zip(proxy).map(|(every, mut proxy)| {
            tokio::spawn(async move {
                let mut cuts = 0;
                let mut cutting = std::pin::pin!(cutting);
                loop {
                    tokio::select! {
                        _ = &mut cutting => break,
                        () = tokio::time::sleep(every) => {
                            proxy.cut(down).await;
                            cuts += 1;
                        }
                    }
                }
                // The proxy stays up (listening) for the reconcile rounds.
                (proxy, cuts)
            })
        });
        let sending = Instant::now();
        let permits = Arc::new(Semaphore::new(options.concurrency));
        let mut tasks = JoinSet::new();
        let mut ends: Vec<Option<CallEnd>> = vec![None; trials.len()];
        for trial in &trials {
            let permit = Arc::clone(&permits)
                .acquire_owned()
                .await
                .context("the semaphore closed")?;
            let (ctx, task_trial) = (Arc::clone(&ctx), trial.clone());
            tasks.spawn(async move {
                let index = task_trial.index;
                let end = send(ctx, task_trial).await;
                drop(permit);
                (index, end)
            });
            while let Some(joined) = tasks.try_join_next() {
                let (index, end) = joined.context("a refund task failed")?;
                ends[index] = Some(end?);
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let (index, end) = joined.context("a refund task failed")?;
            ends[index] = Some(end?);
        }
        let sending = sending.elapsed();

        // Reconcile rounds.
        let reconciling = Instant::now();
        let failed_plan: HashMap<(usize, String), bool> = trials
            .iter()
            .map(|t| ((provider_index(t.provider), t.key.clone()), t.settle_failed))
            .collect();
        // Entries a call may have left in flight (`unresolved` does not list them): a crashed
        // sender's, and, with database cuts, the main journal's where the database failed the
        // call, or later a reconcile round's re-send (its answer not recorded).
        let mut may_be_in_flight: Vec<(Provider, MerchantReference)> = trials
            .iter()
            .zip(&ends)
            .filter(|(t, end)| {
                t.disruption.is_crash()
                    || matches!(
                        end,
                        Some(CallEnd::Failed {
                            by_database: true,
                            ..
                        })
                    )
            })
            .map(|(t, _)| (t.provider, t.reference.clone()))
            .collect();
        let mut stats: Vec<SettleStats> = vec![SettleStats::default(); Provider::ALL.len()];
        let mut error_notes: Vec<String> = Vec::new();
        // Idle long enough for a settling delay and a crashed sender's lease (with database
        // cuts, the main journal's) to run out.
        let lease = if options.database_cuts.is_some() {
            LEASE
        } else {
            CRASH_LEASE
        };
        let idle_limit = ((options.settling_delay + lease + options.read_delay).as_millis()
            / ROUND_PAUSE.as_millis()) as usize
            + 2;
        let (mut rounds, mut idle) = (0, 0);
        // A failure a database cut explains: counted apart, and the round tried again.
        let cut_by = |error: &JournalError| options.database_cuts.is_some() && by_database(error);
        let cut = |error: &anyhow::Error| error.downcast_ref::<JournalError>().is_some_and(cut_by);
        let mut rounds_cut = 0;
        let mut backoff = ProviderBackoff::default();
        let stopped = loop {
            rounds += 1;
            let mut changed = [0usize; Provider::ALL.len()];
            let listed = if options.reconciler {
                journal
                    .reconcile_round(&refunds, &RECONCILER, &mut backoff)
                    .await
            } else {
                journal.reconcile(&refunds).await
            };
            let report = match listed.context("reconcile could not list the journal's entries") {
                Ok(report) => report,
                Err(error) if cut(&error) => {
                    rounds_cut += 1;
                    if rounds >= options.max_rounds {
                        break Stop::Bound;
                    }
                    tokio::time::sleep(ROUND_PAUSE).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            for done in &report.reconciled {
                let p = provider_index(done.entry().provider);
                match done {
                    Reconciliation::Resent(_) => {
                        stats[p].resent += 1;
                        changed[p] += 1;
                    }
                    Reconciliation::SettledByReading { .. } => changed[p] += 1,
                    Reconciliation::StatusRead { .. }
                    | Reconciliation::FailedAfterApplied { .. } => {
                        stats[p].status_read += 1;
                        changed[p] += 1;
                    }
                    Reconciliation::LeftUnresolved { .. } => {}
                }
            }
            let mut was_cut = false;
            for failure in &report.failed {
                let p = Provider::ALL
                    .iter()
                    .position(|provider| provider.as_str() == failure.provider)
                    .unwrap_or(0);
                if cut_by(&failure.error) {
                    was_cut = true;
                    let reference = MerchantReference::new(&failure.merchant_reference)
                        .context("a failed entry's merchant reference")?;
                    let entry = (Provider::ALL[p], reference);
                    if !may_be_in_flight.contains(&entry) {
                        may_be_in_flight.push(entry);
                    }
                    continue;
                }
                stats[p].errors += 1;
                error_notes.push(format!("round {rounds}: reconcile: {failure}"));
            }
            let settled = settle_sandbox(&sb, &failed_plan);
            let openapp = provider_index(Provider::OpenApp);
            match feed_openapp_report(&journal, &sb).await {
                Ok((reported, report_errors)) => {
                    stats[openapp].reported += reported;
                    changed[openapp] += reported;
                    for (reference, error) in report_errors {
                        if cut_by(&error) {
                            was_cut = true;
                            continue;
                        }
                        stats[openapp].errors += 1;
                        error_notes.push(format!(
                            "round {rounds}: settlement report: {reference}: {error}"
                        ));
                    }
                }
                Err(error) if cut(&error) => was_cut = true,
                Err(error) => return Err(error),
            }
            for p in 0..changed.len() {
                changed[p] += settled[p];
                if changed[p] > 0 {
                    stats[p].last_round = rounds;
                }
            }
            match outstanding(&journal, &may_be_in_flight).await {
                Ok(0) if !was_cut => break Stop::Settled,
                Ok(_) => {}
                Err(error) if cut(&error) => was_cut = true,
                Err(error) => return Err(error),
            }
            rounds_cut += usize::from(was_cut);
            // A round a cut spoiled is no sign that nothing is left to do.
            idle = if changed.iter().sum::<usize>() == 0 && !was_cut {
                idle + 1
            } else {
                0
            };
            if rounds >= options.max_rounds {
                break Stop::Bound;
            }
            if idle >= idle_limit {
                break Stop::Idle;
            }
            tokio::time::sleep(ROUND_PAUSE).await;
        };
        let reconciling = reconciling.elapsed();
        let _ = stop_cutting.send(());
        let (_proxy, database_cuts) = match cutter {
            Some(cutter) => {
                let (proxy, cuts) = cutter.await.context("the database cutter failed")?;
                (Some(proxy), cuts)
            }
            None => (None, 0),
        };

        // The checks, once the sandbox and the database are quiet.
        let (mut ledger, unkeyed) = ledger(&sb);
        let mut by_kind: BTreeMap<String, [KindCounts; Provider::ALL.len()]> = BTreeMap::new();
        let mut violations = Vec::new();
        let mut crash_missed = 0;
        for (trial, end) in trials.iter().zip(&ends) {
            let p = provider_index(trial.provider);
            let end = end.clone().unwrap_or(CallEnd::Failed {
                error: "never ran".to_owned(),
                by_database: false,
            });
            let entry = journal
                .entry(trial.provider, &trial.reference)
                .await
                .context("reading an entry")?;
            let recorded = ledger.remove(&(p, trial.key.clone())).unwrap_or_default();
            let s = &mut stats[p];
            s.attempted += 1;
            let unresolved = !end.settled();
            s.unresolved_after_call += usize::from(unresolved);
            match &end {
                CallEnd::Crashed => s.crashed += 1,
                CallEnd::CrashMissed(_) => crash_missed += 1,
                // A database cut fails calls; what matters is that the refund ends settled as
                // the ledger says, which the checks below hold it to.
                CallEnd::Failed {
                    by_database: true, ..
                } if options.database_cuts.is_some() => {
                    s.failed_by_cuts += 1;
                }
                CallEnd::Failed { error, .. } => {
                    s.errors += 1;
                    error_notes.push(format!("{} {}: {error}", trial.provider, trial.reference));
                }
                CallEnd::Returned(_) => {}
            }
            let by_read = entry
                .as_ref()
                .is_some_and(|e| e.settled_by == Some(SettledBy::Read));
            if let Some(entry) = &entry {
                match entry.state {
                    EntryState::Applied => s.applied += 1,
                    EntryState::NotApplied => s.not_applied += 1,
                    EntryState::Unknown | EntryState::InFlight => {}
                }
                s.failed += usize::from(entry.refund_status == Some(RefundStatus::Failed));
            }
            s.settled_by_reading += usize::from(by_read);
            let found = problems(
                entry.as_ref().map(|e| (e.state, e.refund_status)),
                &recorded,
            );
            for problem in &found {
                match *problem {
                    "duplicate" => s.duplicates += 1,
                    "lost" => s.lost += 1,
                    "mismatched" => s.mismatched += 1,
                    "pending left" => s.pending_left += 1,
                    _ => s.left_for_person += 1,
                }
            }
            let mut rows = vec![trial.disruption.label()];
            if let Some(plan) = &trial.read_fault {
                rows.push(format!("read {}", fault_label(Some(plan))));
            }
            for row in rows {
                let counts = &mut by_kind.entry(row).or_default()[p];
                counts.trials += 1;
                counts.unresolved_after_call += usize::from(unresolved);
                counts.settled_by_reading += usize::from(by_read);
            }
            if !found.is_empty() {
                let read = trial
                    .read_fault
                    .as_ref()
                    .map(|plan| format!(", read {:?} x{}", plan.fault, plan.times))
                    .unwrap_or_default();
                let disruption = match &trial.disruption {
                    Disruption::Fault(plan) => format!("{:?} x{}", plan.fault, plan.times),
                    other => other.label(),
                };
                violations.push(SettleViolation {
                    provider: trial.provider,
                    index: trial.index,
                    order_id: trial.order_id.clone(),
                    reference: trial.reference.as_str().to_owned(),
                    plan: format!(
                        "{disruption}{read}{}",
                        if trial.pending { ", pending order" } else { "" }
                    ),
                    call: end.describe(),
                    entry: describe_entry(entry.as_ref()),
                    sandbox: recorded
                        .iter()
                        .map(|r| format!("{} {:?} at {}", r.id, r.status, r.created_at))
                        .collect(),
                    problems: found,
                });
            }
        }
        // Sandbox refunds of no refund of the soak.
        let strays = ledger
            .into_iter()
            .flat_map(|((p, key), refunds)| {
                refunds.into_iter().map(move |r| (p, Some(key.clone()), r))
            })
            .chain(unkeyed.into_iter().map(|(p, r)| (p, None, r)));
        for (p, key, refund) in strays {
            stats[p].lost += 1;
            violations.push(SettleViolation {
                provider: Provider::ALL[p],
                index: usize::MAX,
                order_id: String::new(),
                reference: key.unwrap_or_default(),
                plan: String::new(),
                call: "none: no refund of the soak has this key".to_owned(),
                entry: "no entry".to_owned(),
                sandbox: vec![format!(
                    "{} {:?} at {}",
                    refund.id, refund.status, refund.created_at
                )],
                problems: vec!["lost"],
            });
        }
        violations.sort_by_key(|v| v.index);
        for note in error_notes.iter().take(20) {
            eprintln!("journal error: {note}");
        }

        drop(ctx);
        journal.close().await;
        drop(refunds);
        for provider in Provider::ALL {
            handle(&sb, provider).shutdown().await;
        }

        let mut report = SettleReport {
            options: *options,
            providers: Provider::ALL.into_iter().zip(stats).collect(),
            by_kind,
            violations,
            rounds,
            stopped,
            crash_missed,
            database_cuts,
            rounds_cut,
            kept_journal: None,
            sending,
            reconciling,
            total: started.elapsed(),
        };
        if report.check().is_ok() {
            store.remove().await?;
        } else {
            report.kept_journal = Some(store);
        }
        Ok(report)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn options_parse_and_refuse_a_settling_delay_within_the_read_lag() {
            assert_eq!(SettleOptions::parse(&[]).unwrap(), SettleOptions::default());
            let options = SettleOptions::parse(&[
                "--refunds=40",
                "--seed",
                "7",
                "--read-delay-ms",
                "50",
                "--settling-ms=900",
                "--max-rounds",
                "9",
                "--database",
                "postgres",
                "--reconciler",
            ])
            .unwrap();
            assert_eq!(
                options,
                SettleOptions {
                    refunds: 40,
                    seed: 7,
                    read_delay: Duration::from_millis(50),
                    settling_delay: Duration::from_millis(900),
                    max_rounds: 9,
                    backend: Backend::Postgres,
                    reconciler: true,
                    ..SettleOptions::default()
                }
            );
            assert_eq!(
                SettleOptions::parse(&["--database", "postgres", "--database-cuts-ms", "250"])
                    .unwrap()
                    .database_cuts,
                Some(Duration::from_millis(250))
            );
            assert_eq!(
                SettleOptions::parse(&[
                    "--database=postgres",
                    "--database-cuts-ms=250",
                    "--database-down-ms=100"
                ])
                .unwrap()
                .database_down,
                Duration::from_millis(100)
            );
            assert_eq!(
                SettleOptions::parse(&["--database=sqlite"])
                    .unwrap()
                    .backend,
                Backend::Sqlite
            );
            for bad in [
                &["--settling-ms", "300"][..],
                &["--read-delay-ms", "2000"],
                &["--max-rounds", "0"],
                &["--concurrency", "0"],
                &["--refunds"],
                &["--verbose"],
                &["--database", "mysql"],
                &["--database-cuts-ms", "250"],
                &["--database", "postgres", "--database-cuts-ms", "0"],
                &["--database", "postgres", "--database-down-ms", "100"],
            ] {
                assert!(SettleOptions::parse(bad).is_err(), "{bad:?}");
            }
        }

        #[test]
        fn the_plan_depends_on_the_seed_alone_and_covers_every_disruption() {
            let options = |seed| SettleOptions {
                refunds: 2_000,
                seed,
                ..SettleOptions::default()
            };
            let labels = |seed| {
                plan(&options(seed))
                    .unwrap()
                    .iter()
                    .map(|t| (t.disruption.clone(), t.read_fault.clone(), t.pending))
                    .collect::<Vec<_>>()
            };
            assert_eq!(labels(3), labels(3));
            assert_ne!(labels(3), labels(4));
            let trials = plan(&options(3)).unwrap();
            let kinds: std::collections::BTreeSet<String> = trials
                .iter()
                .map(|t| t.disruption.label())
                .map(|l| l.split(" x").next().unwrap_or_default().to_owned())
                .collect();
            // Every refund fault, the signature ones, both crashes and none.
            assert_eq!(
                kinds.len(),
                REFUND_FAULTS.len() + SIGNED.len() + 3,
                "{kinds:?}"
            );
            let reads: std::collections::BTreeSet<String> = trials
                .iter()
                .filter_map(|t| t.read_fault.as_ref())
                .map(|plan| fault_label(Some(plan)))
                .collect();
            assert_eq!(reads.len(), READ_FAULTS.len(), "{reads:?}");
            assert!(
                trials
                    .iter()
                    .all(|t| t.provider != Provider::OpenApp || t.read_fault.is_none())
            );
            assert!(
                trials
                    .iter()
                    .all(|t| !t.pending || t.provider == Provider::Optty)
            );
            assert!(trials.iter().any(|t| t.pending));
        }

        #[test]
        fn problems_compare_the_entry_with_the_sandbox() {
            let refund = |status| sandbox::RecordedRefund {
                id: "rf".into(),
                reference: Some("R-1".into()),
                amount: Decimal::new(1000, 2),
                status,
                created_at: String::new(),
            };
            let ok = sandbox::RefundStatus::Succeeded;
            let applied = Some((EntryState::Applied, Some(RefundStatus::Succeeded)));
            assert!(problems(applied, &[refund(ok)]).is_empty());
            assert_eq!(problems(applied, &[]), ["lost"]);
            assert_eq!(problems(applied, &[refund(ok), refund(ok)]), ["duplicate"]);
            assert_eq!(
                problems(applied, &[refund(sandbox::RefundStatus::Failed)]),
                ["mismatched"]
            );
            let failed = Some((EntryState::Applied, Some(RefundStatus::Failed)));
            assert!(problems(failed, &[refund(sandbox::RefundStatus::Failed)]).is_empty());
            let pending = Some((EntryState::Applied, Some(RefundStatus::Pending)));
            assert_eq!(problems(pending, &[refund(ok)]), ["pending left"]);
            let unknown = Some((EntryState::Unknown, None));
            assert_eq!(
                problems(unknown, &[refund(ok)]),
                ["lost", "left for a person"]
            );
            assert_eq!(problems(unknown, &[]), ["left for a person"]);
            let in_flight = Some((EntryState::InFlight, None));
            assert_eq!(problems(in_flight, &[]), ["left for a person"]);
            let not_applied = Some((EntryState::NotApplied, None));
            assert!(problems(not_applied, &[]).is_empty());
            assert_eq!(problems(not_applied, &[refund(ok)]), ["lost"]);
            assert_eq!(problems(None, &[refund(ok)]), ["lost"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_fails_naming_each_failing_provider_and_the_first_violations() {
        let none: [String; 0] = [];
        let clean = [
            (Provider::Optty, Vec::new()),
            (Provider::AfterPay, Vec::new()),
        ];
        assert!(check_failures("the soak", clean.into_iter(), &none).is_ok());

        let failures = [
            (Provider::Optty, Vec::new()),
            (Provider::AfterPay, vec![("duplicated", 2), ("lost", 1)]),
        ];
        let violations: Vec<String> = (0..23).map(|i| format!("refund {i}")).collect();
        let message = check_failures("the soak", failures.into_iter(), &violations)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("the soak: afterpay: duplicated 2, lost 1\n  refund 0\n"),
            "{message}"
        );
        assert!(!message.contains("optty"), "{message}");
        assert!(
            message.contains("\n  refund 19\n  .. and 3 more"),
            "{message}"
        );
        assert!(!message.contains("refund 20"), "{message}");
    }

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
                .map(|i| draw(&mut rng, Provider::ALL[i % Provider::ALL.len()]))
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
                .filter(|(i, _)| Provider::ALL[i % Provider::ALL.len()] != Provider::OpenApp)
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
