//! [`Journal`]: journaled refunds, reconciliation and the audit trail.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use refunds::retry::Decision;
use refunds::{
    Finding, Lookup, MerchantReference, Money, Notification, Outcome, Provider, RecordedRefund,
    Refund, RefundError, RefundRequest, RefundStatus, Refunds, RetryPolicy,
};

use serde::Serialize;

use crate::attribution::{self, Attribution, Evidence};
use crate::database::Database;
use crate::entry::{Entry, EntryState, Event, EventKind};
use crate::error::JournalError;
use crate::fingerprint::canonical_json;
use crate::machine::{
    self, AttemptAnswer, Mode, NewEvent, Refused, Step, Then, Transition, Verdict, Write,
};
use crate::store::{Listed, Store};

/// How a [`Journal`] sends.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// How long a sender holds an entry per attempt (default 120 s). Renewed before every
    /// attempt; while it holds, other callers get [`JournaledRefund::InProgress`]; once it
    /// lapses without an answer recorded, the sender is taken for dead and the attempt's
    /// outcome for unknown. Make it longer than one attempt can take: the facade's per-request
    /// timeout (30 s by default; Optty may fetch a token first).
    pub lease: Duration,
    /// The retries of one call ([`RetryPolicy::decide`] after each attempt). An unknown outcome
    /// on a provider without a duplicate key (AfterPay) is never re-sent, whatever the policy.
    pub retry: RetryPolicy,
    /// This instance's name in lease owners and the history (default: process id and a random
    /// suffix, `pid4242-1f9c2a`). Give each replica its own.
    pub instance: String,
    /// (AfterPay attribution) How long after an attempt's deadline (its answer, or its lease
    /// running out) a refund of it may still be missing from a read of the order: Riverty's
    /// read lag, and a refund it books after a gateway answered an error. Only a read made at
    /// least this long after the deadline that lists no unaccounted refund proves the attempt
    /// not applied (then it is sent again). Default 10 minutes: Riverty documents no lag, and a
    /// longer delay only defers the re-send of a refund that was never made.
    pub settling_delay: Duration,
    /// (AfterPay attribution) How far Riverty's clock (a refund's `insertedAt`) may be from the
    /// database's, when a listed refund's time is compared with an attempt's: a refund inserted
    /// more than this before the attempt's intent, or more than this after its deadline plus
    /// the settling delay, cannot be the attempt's, and is evidence of a refund made outside
    /// the journal. Default 5 minutes. Times are compared only where `insertedAt` carries a UTC
    /// offset.
    pub clock_skew: Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            lease: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            settling_delay: Duration::from_secs(600),
            clock_skew: Duration::from_secs(300),
            instance: format!(
                "pid{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
        }
    }
}

/// How a journaled refund call ended. Every variant carries the [`Entry`] as it stands after
/// the call (read it for the attempts, lease, amounts and reasons).
///
/// Serializes (`serde`) as an object tagged by `result` (`applied`, `rejected`,
/// `unresolved`, `in_progress`) with the variant's fields; an error as its
/// [`ErrorSummary`](refunds::ErrorSummary):
/// `{"result": "rejected", "error": {"kind": "order_not_found", ...}, "entry": {...}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum JournaledRefund {
    /// The refund exists at the provider.
    Applied {
        /// The refund: from the provider's answer, or rebuilt from the record when `replayed`
        /// ([`Entry::refund`]: no raw body).
        refund: Refund,
        /// Answered from the journal without sending anything: the reference was already
        /// applied (by an earlier call, another replica, reconciliation or an operator).
        replayed: bool,
        /// The entry.
        entry: Entry,
    },
    /// Nothing was refunded: the provider refused, or the request never reached it, and no
    /// attempt was ambiguous. A later call with the same request sends it again.
    Rejected {
        /// The last attempt's error; its outcome is [`Outcome::NotApplied`].
        error: RefundError,
        /// The entry (state [`EntryState::NotApplied`]).
        entry: Entry,
    },
    /// The outcome is unknown: [`Entry::unresolved_reason`] says why and what settles it
    /// ([`Journal::reconcile`]: by reading the provider's record, or by re-sending where the
    /// provider deduplicates; what it cannot settle waits for [`Journal::resolve_manually`]).
    /// Never refund it again under a new reference.
    Unresolved {
        /// The error of this call's last attempt; `None` when nothing was sent (the entry was
        /// already unresolved on a provider without a duplicate key).
        error: Option<RefundError>,
        /// The entry (state [`EntryState::Unknown`]).
        entry: Entry,
    },
    /// Another caller (task, process or replica) holds a live lease on this reference:
    /// nothing was sent. Ask again after a moment; the entry's lease says until when.
    InProgress {
        /// The entry.
        entry: Entry,
    },
}

impl JournaledRefund {
    /// What it says about the money (in progress: unknown yet).
    pub fn outcome(&self) -> Outcome {
        match self {
            JournaledRefund::Applied { .. } => Outcome::Applied,
            JournaledRefund::Rejected { .. } => Outcome::NotApplied,
            JournaledRefund::Unresolved { .. } | JournaledRefund::InProgress { .. } => {
                Outcome::Unknown
            }
        }
    }

    /// The entry after the call.
    pub fn entry(&self) -> &Entry {
        match self {
            JournaledRefund::Applied { entry, .. }
            | JournaledRefund::Rejected { entry, .. }
            | JournaledRefund::Unresolved { entry, .. }
            | JournaledRefund::InProgress { entry } => entry,
        }
    }

    /// A short name: `applied`, `replayed`, `rejected`, `unresolved`, `in_progress`.
    pub fn label(&self) -> &'static str {
        match self {
            JournaledRefund::Applied {
                replayed: false, ..
            } => "applied",
            JournaledRefund::Applied { replayed: true, .. } => "replayed",
            JournaledRefund::Rejected { .. } => "rejected",
            JournaledRefund::Unresolved { .. } => "unresolved",
            JournaledRefund::InProgress { .. } => "in_progress",
        }
    }
}

/// What [`Journal::reconcile`] did with one entry: an unresolved one (settled by reading,
/// re-sent, or left with the reason) or a pending one whose final status it read.
///
/// Serializes (`serde`) as an object tagged by `action`: `{"action": "resent", "result":
/// "applied", ...}` (the [`JournaledRefund`]'s fields follow the tag), `{"action":
/// "left_unresolved", "entry": {...}, "reason": "..."}`, `{"action": "settled_by_reading",
/// "entry": {...}, "detail": "..."}`, `{"action": "status_read", "entry": {...}}`, or
/// `{"action": "failed_after_applied", "entry": {...}, "reason": "..."}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Reconciliation {
    /// Sent again with the same merchant reference, with the result: where the provider
    /// deduplicates (Optty and Moyasar after a read that did not find the refund, OpenApp
    /// always), or, on AfterPay, after a read proved the earlier attempt not applied.
    Resent(JournaledRefund),
    /// Left as it is, with the reason: the read could not attribute it (AfterPay: the evidence,
    /// for a person), a later read decides (the settling delay has not passed), the read
    /// failed, or another sender holds a live lease on it.
    LeftUnresolved {
        /// The entry.
        entry: Entry,
        /// Why, and what settles it.
        reason: String,
    },
    /// Settled applied by reading the provider's record ([`SettledBy::Read`](crate::SettledBy::Read)):
    /// the refund was found there (Optty, Moyasar), or attributed to the entry (AfterPay), with
    /// the record's status, amount and refund id. Nothing was sent.
    SettledByReading {
        /// The entry (state [`EntryState::Applied`]).
        entry: Entry,
        /// What the read found.
        detail: String,
    },
    /// A pending refund's final status, read from the provider's record: succeeded.
    StatusRead {
        /// The entry (status [`RefundStatus::Succeeded`]).
        entry: Entry,
    },
    /// **A refund believed applied failed**: the provider's record says failed (a pending
    /// refund's final status, or an unknown one found failed). Nothing was refunded; the entry
    /// stays applied under its reference (the provider holds a failed refund under it), is
    /// listed by [`Journal::failed_after_applied`], and its history holds an
    /// [`EventKind::FailedAfterApplied`] event. Refunding
    /// the customer takes a new refund under a new merchant reference.
    FailedAfterApplied {
        /// The entry (status [`RefundStatus::Failed`]).
        entry: Entry,
        /// The provider's reason, where it gave one.
        reason: Option<String>,
    },
}

impl Reconciliation {
    /// The entry after reconciliation.
    pub fn entry(&self) -> &Entry {
        match self {
            Reconciliation::Resent(result) => result.entry(),
            Reconciliation::LeftUnresolved { entry, .. }
            | Reconciliation::SettledByReading { entry, .. }
            | Reconciliation::StatusRead { entry }
            | Reconciliation::FailedAfterApplied { entry, .. } => entry,
        }
    }

    /// A result of one call's re-send, as reconciliation reports it: an entry reconcile did not
    /// send (unresolved with nothing sent, or under another sender's lease) is left unresolved
    /// with the reason.
    fn of(result: JournaledRefund) -> Reconciliation {
        match result {
            JournaledRefund::Unresolved { error: None, entry } => {
                let reason = entry
                    .unresolved_reason
                    .clone()
                    .unwrap_or_else(|| machine::no_duplicate_key_reason(&entry));
                Reconciliation::LeftUnresolved { entry, reason }
            }
            JournaledRefund::InProgress { entry } => Reconciliation::LeftUnresolved {
                reason: format!(
                    "another sender ({}) holds a live lease on it",
                    entry
                        .lease
                        .as_ref()
                        .map_or("unknown", |lease| lease.owner.as_str())
                ),
                entry,
            },
            other => Reconciliation::Resent(other),
        }
    }

    /// An entry settled applied by reading (`found`): raised when the record says failed.
    fn settled(entry: Entry, found: &RecordedRefund, detail: String) -> Reconciliation {
        if found.status == RefundStatus::Failed {
            Reconciliation::FailedAfterApplied {
                entry,
                reason: found.failure_reason.clone(),
            }
        } else {
            Reconciliation::SettledByReading { entry, detail }
        }
    }
}

/// What one [`Journal::reconcile`] run did: every entry it acted on (unresolved ones, and
/// pending ones whose final status it read), and every entry it could not, each with its
/// error. One entry that fails (a write the database refuses, a row that cannot be read) never
/// stops the others; it stays as it was, and the next run tries again.
///
/// Serializes (`serde`) as `{"reconciled": [...], "failed": [...], "deferred": [...]}`.
#[derive(Debug, Default, Serialize)]
#[must_use = "a reconcile report lists the entries that failed: look at `failed`"]
pub struct ReconcileReport {
    /// The entries reconcile acted on, oldest first, the unresolved ones (settled by reading,
    /// re-sent, or left unresolved with the reason) before the pending ones (final status read;
    /// a pending refund still pending, or not found in the record, is not listed).
    pub reconciled: Vec<Reconciliation>,
    /// The entries it could not act on, oldest first, each with its error.
    pub failed: Vec<ReconcileFailure>,
    /// The providers whose entries a reconciler round left alone this time, after failures
    /// ([`Journal::reconcile_round`]); always empty for [`Journal::reconcile`].
    pub deferred: Vec<Provider>,
}

impl ReconcileReport {
    /// Whether every unresolved entry was acted on (none failed).
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One entry [`Journal::reconcile`] could not act on.
///
/// Serializes (`serde`) with the field names below, the error as its outcome and message
/// (see [`JournalError`]).
#[derive(Debug, Serialize)]
pub struct ReconcileFailure {
    /// The entry's provider, as stored (`optty`, `afterpay`, `moyasar`, `openapp`).
    pub provider: String,
    /// The entry's merchant reference, as stored.
    pub merchant_reference: String,
    /// The entry as read before reconcile acted on it; `None` when its row cannot be read
    /// ([`JournalError::Corrupt`]: edited by hand, or written by a newer version).
    pub entry: Option<Entry>,
    /// Why. Its [`outcome`](JournalError::outcome) says whether a request re-sent by
    /// reconcile is left without its answer on record
    /// ([`ErrorOutcome::SentNotRecorded`](crate::ErrorOutcome::SentNotRecorded): the next run
    /// settles it once the lease lapses).
    pub error: JournalError,
}

impl std::fmt::Display for ReconcileFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.provider, self.merchant_reference, self.error
        )
    }
}

/// What an operator found at the provider about an unresolved refund, for
/// [`Journal::resolve_manually_with`]: the outcome, and for a refund found applied its refund
/// id and amount, with a note for the audit trail (who decided, on what evidence).
///
/// ```
/// use refunds::Money;
/// use refunds_journal::Resolution;
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let found = Resolution::applied("ops/jane: Riverty portal, order ORD-1, refund 4000123")
///     .with_provider_refund_id("4000123")
///     .with_amount(Money::parse("26.00", "EUR")?);
/// let not_found = Resolution::not_applied("ops/jane: no refund on the order in the portal");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Resolution {
    /// [`Outcome::Applied`] or [`Outcome::NotApplied`] ([`Outcome::Unknown`] is refused).
    pub outcome: Outcome,
    /// The provider's id of the refund found applied (AfterPay: its refund number).
    pub provider_refund_id: Option<String>,
    /// The amount of the refund found applied, in the request's currency.
    pub amount: Option<Money>,
    /// For the audit trail: who decided, on what evidence.
    pub note: String,
}

impl Resolution {
    /// `outcome`, with `note`, nothing else recorded.
    pub fn new(outcome: Outcome, note: impl Into<String>) -> Resolution {
        Resolution {
            outcome,
            provider_refund_id: None,
            amount: None,
            note: note.into(),
        }
    }

    /// The refund exists at the provider.
    pub fn applied(note: impl Into<String>) -> Resolution {
        Resolution::new(Outcome::Applied, note)
    }

    /// No refund exists at the provider: the next call sends it again.
    pub fn not_applied(note: impl Into<String>) -> Resolution {
        Resolution::new(Outcome::NotApplied, note)
    }

    /// The provider's id of the refund found applied.
    #[must_use]
    pub fn with_provider_refund_id(mut self, id: impl Into<String>) -> Resolution {
        self.provider_refund_id = Some(id.into());
        self
    }

    /// The amount of the refund found applied.
    #[must_use]
    pub fn with_amount(mut self, amount: Money) -> Resolution {
        self.amount = Some(amount);
        self
    }
}

/// [`Journal::refund_or_wait`]'s first pause before it reads the entry again.
const WAIT_FIRST_POLL: Duration = Duration::from_millis(25);
/// [`Journal::refund_or_wait`]'s longest pause between two reads.
const WAIT_MAX_POLL: Duration = Duration::from_millis(500);

/// A durable journal of refund intents and outcomes in front of a [`Refunds`] client.
///
/// Cheap to clone (the clones share one pool). See the [crate docs](crate) for the rules, the
/// schema and the state machine.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: JournalConfig,
    calls: AtomicU64,
}

/// The entry after a claim.
enum Claimed {
    Send(Entry),
    Answer(JournaledRefund),
}

/// How a call starts: by claiming the entry (with reconciliation's notes, written in the same
/// transaction as the claim when it writes), or with an entry already claimed by `owner`.
enum Start {
    Claim(Vec<NewEvent>),
    Claimed { entry: Box<Entry>, owner: String },
}

impl Journal {
    /// Opens (creating tables as needed: migrations run on open) a journal with the default
    /// [`JournalConfig`].
    pub async fn open(database: Database) -> Result<Journal, JournalError> {
        Journal::open_with(database, JournalConfig::default()).await
    }

    /// Opens a journal with `config`.
    pub async fn open_with(
        database: Database,
        config: JournalConfig,
    ) -> Result<Journal, JournalError> {
        let store = Store::open(&database).await?;
        Ok(Journal {
            inner: Arc::new(Inner {
                store,
                config,
                calls: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &JournalConfig {
        &self.inner.config
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// Closes the connections. Calls after this fail with [`JournalError::Database`].
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    /// The database's clock, in milliseconds since the Unix epoch: the clock leases are
    /// measured on.
    pub async fn now_ms(&self) -> Result<i64, JournalError> {
        self.inner.store.now_ms().await
    }

    /// For health checks: one round trip to the database (`SELECT 1`), within the
    /// [`Database`]'s acquire and statement limits (5 s each by default; and, should a
    /// connection hang, a limit of both plus a second on the client side). `Ok(())`, or the
    /// error that names the database and the cause
    /// ([`JournalError::Unavailable`]: `PostgreSQL at 10.0.0.5:5432/refunds: no connection
    /// within 5 s (connection refused)`). Sends nothing to any provider, writes nothing.
    pub async fn ping(&self) -> Result<(), JournalError> {
        self.inner.store.ping().await
    }

    /// Which database, as the journal's errors name it: `PostgreSQL at host:port/database`,
    /// `SQLite at <path>` or `SQLite in memory` (never a password).
    pub fn database(&self) -> &str {
        self.inner.store.name()
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.inner.config.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }

    fn owner(&self) -> String {
        let call = self.inner.calls.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}/{call}", self.inner.config.instance)
    }

    /// Refunds `request` through `refunds`, exactly once per (provider, merchant reference)
    /// across retries, crashes and replicas.
    ///
    /// 1. The request is validated; an invalid one is refused ([`JournalError::Invalid`]) with
    ///    nothing recorded or sent.
    /// 2. The intent is recorded: a new entry in flight (attempt 1, a lease for this call), or,
    ///    for a reference already journaled:
    ///    - another request under it (its fingerprint differs): [`JournalError::Conflict`],
    ///      nothing sent;
    ///    - applied: [`JournaledRefund::Applied`] with `replayed`, nothing sent;
    ///    - a live lease elsewhere: [`JournaledRefund::InProgress`], nothing sent;
    ///    - not applied: sent again (attempt n+1);
    ///    - outcome unknown (or in flight under a lapsed lease: its sender died): re-sent with
    ///      the same merchant reference where the provider deduplicates; on AfterPay never,
    ///      [`JournaledRefund::Unresolved`] with nothing sent.
    /// 3. Each attempt goes through [`Refunds::refund`]; its answer (outcome, HTTP status, error
    ///    kind, time) is recorded before the next decision, which is
    ///    [`RetryPolicy::decide`] of the journal's policy. Before a retry, its intent is
    ///    recorded and the lease renewed.
    ///
    /// The call runs on a task of its own: a caller that stops waiting (drops the future, or a
    /// time-out around it fires) does not stop it, so an attempt that was sent still gets its
    /// answer recorded.
    ///
    /// A database failure says what it means for the money ([`JournalError::outcome`]):
    /// [`JournalError::Database`] when nothing was sent whose answer is not recorded (the
    /// intent could not be recorded, so the request never left), or
    /// [`JournalError::AnswerNotRecorded`], with the provider's answer, when a request was sent
    /// and its answer could not be recorded: the entry stays in flight, its lease lapses, and
    /// it is then reconciled like a crashed sender's.
    pub async fn refund(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
    ) -> Result<JournaledRefund, JournalError> {
        request.validate().map_err(JournalError::Invalid)?;
        self.run_to_completion(refunds, request, Mode::Call, Start::Claim(Vec::new()))
            .await
    }

    /// [`refund`](Journal::refund), and, when another caller (task, process or replica) holds
    /// the entry's lease ([`JournaledRefund::InProgress`]), waits for its outcome instead of
    /// answering at once: it reads the entry with a short back-off (25 ms, doubling up to
    /// 500 ms, never past `wait`) until it leaves in flight (or its holder's lease lapses), then
    /// asks again, which decides from the record as a later [`refund`](Journal::refund) does:
    ///
    /// - **applied**: [`JournaledRefund::Applied`], replayed, nothing sent;
    /// - **unknown** (or its holder died): re-sent under the same merchant reference where the
    ///   provider deduplicates; on AfterPay, [`JournaledRefund::Unresolved`] with nothing sent;
    /// - **not applied** (the holder's attempt was refused): sent again, as a later call would
    ///   (nothing was refunded);
    ///
    /// and if another caller took the entry meanwhile, it waits again. When `wait` passes with
    /// the entry still in flight under a live lease, it returns the
    /// [`JournaledRefund::InProgress`] it last saw (the entry as last read). `wait` bounds the
    /// waiting only: an attempt this call sends once the entry is free runs as in
    /// [`refund`](Journal::refund). Errors as [`refund`](Journal::refund)'s (a read that fails
    /// while waiting ends the wait with its error: nothing was sent by this call then).
    ///
    /// For a service whose callers want an answer, not "ask again": a request that meets its
    /// own retry, a replica that meets another's attempt.
    pub async fn refund_or_wait(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
        wait: Duration,
    ) -> Result<JournaledRefund, JournalError> {
        let deadline = Instant::now() + wait;
        let mut pause = WAIT_FIRST_POLL;
        loop {
            let result = self.refund(refunds, request).await?;
            let JournaledRefund::InProgress { entry } = result else {
                return Ok(result);
            };
            let mut last = entry;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(JournaledRefund::InProgress { entry: last });
                }
                // A little jitter, so that waiters on one entry do not read in step.
                let jitter = pause.mul_f64(fastrand::f64() * 0.1);
                tokio::time::sleep((pause + jitter).min(left)).await;
                pause = (pause * 2).min(WAIT_MAX_POLL);
                match self
                    .inner
                    .store
                    .read(request.provider, &request.merchant_reference)
                    .await?
                {
                    Some((entry, now_ms)) => {
                        let free = entry.state != EntryState::InFlight || !entry.is_leased(now_ms);
                        last = entry;
                        if free {
                            break;
                        }
                    }
                    // Gone (removed by hand): ask again.
                    None => break,
                }
            }
        }
    }

    /// Runs a call on its own task, so that a caller who stops waiting (a dropped future, a
    /// time-out around it) cannot leave a sent attempt without its answer recorded.
    async fn run_to_completion(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
        mode: Mode,
        start: Start,
    ) -> Result<JournaledRefund, JournalError> {
        let (journal, refunds, request) = (self.clone(), refunds.clone(), request.clone());
        let task = tokio::spawn(async move { journal.run(&refunds, &request, mode, start).await });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(JournalError::Interrupted(error.to_string())),
        }
    }

    async fn run(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
        mode: Mode,
        start: Start,
    ) -> Result<JournaledRefund, JournalError> {
        let (entry, owner) = match start {
            Start::Claim(notes) => {
                let owner = self.owner();
                match self.claim(request, &owner, mode, &notes).await? {
                    Claimed::Answer(answer) => return Ok(answer),
                    Claimed::Send(entry) => (entry, owner),
                }
            }
            Start::Claimed { entry, owner } => (*entry, owner),
        };
        if entry.attempts > 1 {
            // The client may remember an earlier call's result for this reference (an AfterPay
            // unknown it would answer again without sending); the journal decided to send.
            refunds.forget(request.provider, &request.merchant_reference);
        }
        self.drive(refunds, request, entry, &owner, mode).await
    }

    /// Records the intent, or decides from the entry on record. `notes` (reconciliation's
    /// reads) go into the history with the claim's write, before its own events.
    async fn claim(
        &self,
        request: &RefundRequest,
        owner: &str,
        mode: Mode,
        notes: &[NewEvent],
    ) -> Result<Claimed, JournalError> {
        let store = &self.inner.store;
        let canonical = canonical_json(request);
        let fingerprint = crate::fingerprint::fingerprint(request);
        loop {
            match store
                .insert(request, &canonical, &fingerprint, owner, self.lease_ms())
                .await
            {
                Ok(Some(entry)) => return Ok(Claimed::Send(entry)),
                Ok(None) => {}
                // The order is held by another refund; unless this reference has an entry of
                // its own (a repeat of this very refund: its entry decides), refused.
                Err(JournalError::OrderBusy { .. })
                    if store
                        .read(request.provider, &request.merchant_reference)
                        .await?
                        .is_some() => {}
                Err(JournalError::OrderBusy { .. }) => return Err(self.order_busy(request).await),
                Err(error) => return Err(error),
            }
            let Some((entry, now_ms)) = store
                .read(request.provider, &request.merchant_reference)
                .await?
            else {
                continue;
            };
            let step = machine::claim(&entry, &fingerprint, owner, now_ms, self.lease_ms(), mode)
                .map_err(|refused| wrong_state(&entry, refused))?;
            match step {
                Step::Return(verdict) => {
                    return Ok(Claimed::Answer(verdict_answer(
                        verdict,
                        entry,
                        &fingerprint,
                    )?));
                }
                Step::Write(mut write, then) => {
                    if !notes.is_empty() {
                        let at = write
                            .events
                            .iter()
                            .position(|event| {
                                matches!(event.kind, EventKind::Reconcile | EventKind::Intent)
                            })
                            .unwrap_or(write.events.len());
                        write.events.splice(at..at, notes.iter().cloned());
                    }
                    let written = match store.write(entry.version, &write).await {
                        Ok(Some(written)) => written,
                        Ok(None) => continue, // someone else changed it: decide again
                        Err(JournalError::OrderBusy { .. }) => {
                            return Err(self.order_busy(request).await);
                        }
                        Err(error) => return Err(error),
                    };
                    return Ok(match then {
                        Then::Send => Claimed::Send(written),
                        Then::Unresolved => Claimed::Answer(JournaledRefund::Unresolved {
                            error: None,
                            entry: written,
                        }),
                    });
                }
            }
        }
    }

    /// Sends the attempts of a claimed entry and records each answer.
    async fn drive(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
        mut entry: Entry,
        owner: &str,
        mode: Mode,
    ) -> Result<JournaledRefund, JournalError> {
        let policy = self.inner.config.retry;
        let mut sent_in_call = 0u32;
        loop {
            sent_in_call += 1;
            let attempt = entry.attempts;
            let started = Instant::now();
            let result = refunds.refund(request).await;
            let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let answer = AttemptAnswer::new(&result, elapsed_ms);
            let decision = match &result {
                Err(error) if error.outcome() != Outcome::Applied => {
                    policy.decide(sent_in_call, error, fastrand::u32(0..=1000))
                }
                _ => Decision::Stop,
            };
            let retry_lease = match decision {
                Decision::RetryAfter(wait) => Some(
                    self.lease_ms()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4)),
                ),
                Decision::Stop => None,
            };
            let recorded = self
                .apply(entry, |current| {
                    machine::answer(current, attempt, owner, &answer, retry_lease, mode)
                        .map(Some)
                        .map_err(|refused| wrong_state(current, refused))
                })
                .await;
            entry = match recorded {
                Ok(written) => written.unwrap_or_else(|current| current),
                // The request was sent: say so, with its answer (the entry stays in flight
                // under this call's lease, and is reconciled once it lapses).
                Err(source) => {
                    tracing::error!(
                        provider = %request.provider,
                        merchant_reference = request.merchant_reference.as_str(),
                        attempt,
                        outcome = crate::entry::outcome_str(answer.outcome),
                        error = %source,
                        "refund sent but its answer could not be recorded"
                    );
                    return Err(JournalError::AnswerNotRecorded {
                        provider: request.provider,
                        reference: request.merchant_reference.clone(),
                        answer: Box::new(result),
                        source: Box::new(source),
                    });
                }
            };
            let error = result.as_ref().err().cloned();
            if entry.state == EntryState::Applied {
                let refund = match result {
                    Ok(refund) => refund,
                    Err(_) => entry.refund().expect("an applied entry has a refund"),
                };
                return Ok(JournaledRefund::Applied {
                    refund,
                    replayed: false,
                    entry,
                });
            }
            let Decision::RetryAfter(wait) = decision else {
                return Ok(finished(entry, error));
            };
            tokio::time::sleep(wait).await;
            match self
                .apply(entry, |current| {
                    Ok(machine::next_attempt(
                        current,
                        attempt,
                        owner,
                        self.lease_ms(),
                    ))
                })
                .await?
            {
                Ok(next) => entry = next,
                // Lost the entry during the wait (our lease lapsed and someone took over, or
                // it turned out applied): say where it stands now.
                Err(current) => return Ok(standing(current, error)),
            }
        }
    }

    /// Applies the write `decide` makes of the entry as it is, retrying on concurrent changes.
    /// `Ok(entry)` after a write, `Err(entry)` when `decide` declined (nothing written).
    async fn apply(
        &self,
        mut current: Entry,
        decide: impl Fn(&Entry) -> Result<Option<Write>, JournalError>,
    ) -> Result<Result<Entry, Entry>, JournalError> {
        let store = &self.inner.store;
        loop {
            let Some(write) = decide(&current)? else {
                return Ok(Err(current));
            };
            if let Some(written) = store.write(current.version, &write).await? {
                return Ok(Ok(written));
            }
            current = match store
                .read(current.provider, &current.merchant_reference)
                .await?
            {
                Some((entry, _)) => entry,
                None => {
                    return Err(JournalError::NotFound {
                        provider: current.provider,
                        reference: current.merchant_reference,
                    });
                }
            };
        }
    }

    /// Every entry whose outcome is unknown, or whose sender's lease lapsed before it recorded
    /// an answer, oldest first. A row that cannot be read fails the listing
    /// ([`JournalError::Corrupt`]); [`reconcile`](Journal::reconcile) reports such a row on its
    /// own and goes on with the others.
    pub async fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.unresolved().await
    }

    /// Settles what it safely can, without a person wherever the provider allows it. First the
    /// unresolved entries ([`unresolved`](Journal::unresolved)), oldest first:
    ///
    /// - **Optty, Moyasar** (a read, and a duplicate key): the provider's record is read first
    ///   ([`Refunds::find`]); the refund found there settles the entry applied, with the record's
    ///   status and refund id ([`Reconciliation::SettledByReading`], nothing sent). Not found,
    ///   or the read failed: the recorded request is re-sent under the same merchant reference
    ///   (the provider applies it once, or answers that it exists), with the journal's retry
    ///   policy ([`Reconciliation::Resent`]).
    /// - **OpenApp** (a duplicate key, no read): re-sent as above.
    /// - **AfterPay** (a read, no duplicate key): never re-sent blind. The order is read and
    ///   the refund attributed (see the [crate docs](crate#reconciliation-by-provider)): exactly
    ///   one refund on the order that no journal entry accounts for, made after the attempt,
    ///   with this amount, is this one (applied, settled by reading, its refund number on
    ///   record); none, in a read made after the attempt's deadline plus
    ///   [`JournalConfig::settling_delay`], proves it not applied, and it is sent again at once;
    ///   anything else is left unresolved with the evidence in its reason, for
    ///   [`resolve_manually`](Journal::resolve_manually).
    ///
    /// Entries under a live lease are left to their sender. Then the applied refunds whose
    /// status is pending ([`pending`](Journal::pending), as listed when the run started) on
    /// providers with a read: a final status in the record is recorded
    /// ([`Reconciliation::StatusRead`]; a failed one is raised as
    /// [`Reconciliation::FailedAfterApplied`]); one still pending, not found, or whose read
    /// failed is left as it is for the next run.
    ///
    /// Every entry is tried, whatever happens to the others: one that fails (its write is
    /// refused, its row cannot be read) goes into [`ReconcileReport::failed`] with its error
    /// and stays as it was for the next run. `Err` only when the entries cannot be listed at
    /// all (nothing was done). Run it periodically (a reconciler task) and at start-up: each
    /// run notes a reason in an entry's history only when it changed.
    pub async fn reconcile(&self, refunds: &Refunds) -> Result<ReconcileReport, JournalError> {
        self.reconcile_where(refunds, |_| true).await
    }

    /// What to do with an Optty notification ([`Notification::read`]): [`reconcile`]'s work on
    /// the notifying provider's entries only, its unresolved and pending refunds read back from
    /// the provider's record. The notification itself settles nothing: it is unsigned and names
    /// no refund of ours (see [`Notification`]), so whatever it claims, only the record read
    /// now counts, and a forged or repeated one costs a few reads.
    ///
    /// [`reconcile`]: Journal::reconcile
    ///
    /// ```no_run
    /// # use refunds::{Notification, Provider, Refunds};
    /// # use refunds_journal::Journal;
    /// // In an axum service: `POST /webhooks/optty` with the raw body.
    /// async fn optty_webhook(
    ///     journal: &Journal,
    ///     refunds: &Refunds,
    ///     body: axum_like::Bytes,
    /// ) -> u16 {
    ///     let Ok(notification) = Notification::read(Provider::Optty, &body) else {
    ///         return 400; // not Optty's shape: nothing to read
    ///     };
    ///     // Answer at once and read in the background: Optty retries an unanswered delivery.
    ///     let (journal, refunds) = (journal.clone(), refunds.clone());
    ///     tokio::spawn(async move {
    ///         if let Err(error) = journal.settle_notified(&refunds, &notification).await {
    ///             tracing::warn!(%error, "reading back after a notification");
    ///         }
    ///     });
    ///     200
    /// }
    /// # mod axum_like { pub type Bytes = Vec<u8>; }
    /// ```
    pub async fn settle_notified(
        &self,
        refunds: &Refunds,
        notification: &Notification,
    ) -> Result<ReconcileReport, JournalError> {
        tracing::info!(
            provider = %notification.provider,
            event = notification.event.as_str(),
            claimed_status = notification.claimed_status.as_deref().unwrap_or(""),
            "a notification: reading the provider's records back"
        );
        self.reconcile_where(refunds, |entry| entry.provider == notification.provider)
            .await
    }

    /// [`Journal::reconcile`] on the entries `selected` keeps.
    async fn reconcile_where(
        &self,
        refunds: &Refunds,
        selected: impl Fn(&Entry) -> bool,
    ) -> Result<ReconcileReport, JournalError> {
        let mut report = ReconcileReport::default();
        let store = &self.inner.store;
        let unresolved = store.unresolved_rows().await?;
        let pending = store.pending_rows().await?;
        for listed in unresolved {
            let Some(entry) = listed_entry(listed, &mut report) else {
                continue;
            };
            if !selected(&entry) {
                continue;
            }
            match self.reconcile_unresolved(refunds, &entry).await {
                Ok(done) => report.reconciled.push(done),
                Err(error) => report.failed.push(failure(entry, error)),
            }
        }
        for listed in pending {
            let Some(entry) = listed_entry(listed, &mut report) else {
                continue;
            };
            if !entry.provider.capabilities().record_read || !selected(&entry) {
                continue;
            }
            match self.read_status(refunds, &entry).await {
                Ok(Some(done)) => report.reconciled.push(done),
                Ok(None) => {}
                Err(error) => report.failed.push(failure(entry, error)),
            }
        }
        Ok(report)
    }

    /// The store, for the reconciler.
    pub(crate) fn store(&self) -> &crate::store::Store {
        &self.inner.store
    }

    /// Reconciles one unresolved entry (see [`Journal::reconcile`]).
    pub(crate) async fn reconcile_unresolved(
        &self,
        refunds: &Refunds,
        listed: &Entry,
    ) -> Result<Reconciliation, JournalError> {
        let provider = listed.provider;
        if !provider.capabilities().record_read {
            return self.resend(refunds, listed, Vec::new()).await;
        }
        loop {
            let (entry, now_ms) = self
                .read_existing(provider, &listed.merchant_reference)
                .await?;
            if !entry.is_unresolved(now_ms) || entry.is_leased(now_ms) {
                // Settled or taken meanwhile, or a sender is at work on it (waiting to retry):
                // the claim says where it stands.
                return self.resend(refunds, &entry, Vec::new()).await;
            }
            let done = if machine::deduplicates(provider) {
                self.read_then_resend(refunds, &entry).await?
            } else {
                self.attribute(refunds, &entry).await?
            };
            if let Some(done) = done {
                return Ok(done);
            }
            // Someone else wrote the entry meanwhile: decide again.
        }
    }

    /// Re-sends an unresolved entry through a claim (in reconcile's mode), `notes` written with
    /// the claim.
    async fn resend(
        &self,
        refunds: &Refunds,
        entry: &Entry,
        notes: Vec<NewEvent>,
    ) -> Result<Reconciliation, JournalError> {
        let result = self
            .run_to_completion(
                refunds,
                &entry.request,
                Mode::Reconcile,
                Start::Claim(notes),
            )
            .await?;
        Ok(Reconciliation::of(result))
    }

    /// Optty, Moyasar: reads the provider's record; the refund found there settles the entry,
    /// otherwise it is re-sent under the same reference (the read noted in the history).
    /// `None`: the entry changed meanwhile.
    async fn read_then_resend(
        &self,
        refunds: &Refunds,
        entry: &Entry,
    ) -> Result<Option<Reconciliation>, JournalError> {
        let provider = entry.provider;
        let note = match refunds
            .find(&entry.request, entry.provider_refund_id.as_deref())
            .await
        {
            Ok(Lookup {
                finding: Finding::Found(found),
                ..
            }) => {
                let detail = format!(
                    "found in {provider}'s record: refund {}, status {}",
                    attribution::describe(&found),
                    crate::entry::status_str(found.status)
                );
                let write = machine::read_applied(entry, &found, detail.clone())
                    .map_err(|refused| wrong_state(entry, refused))?;
                return Ok(self
                    .inner
                    .store
                    .write(entry.version, &write)
                    .await?
                    .map(|written| Reconciliation::settled(written, &found, detail)));
            }
            Ok(_) => format!(
                "{provider}'s record, read first, holds no refund of ours (yet): re-sent under \
                 the same merchant reference, which {provider} deduplicates"
            ),
            Err(error) => format!(
                "the read of {provider}'s record failed ({}): re-sent under the same merchant \
                 reference, which {provider} deduplicates",
                read_error(&error)
            ),
        };
        let mut event = NewEvent::new(EventKind::Read);
        event.attempt = Some(entry.attempts);
        event.outcome = Some(Outcome::Unknown);
        event.detail = Some(note);
        self.resend(refunds, entry, vec![event]).await.map(Some)
    }

    /// AfterPay: reads the order and attributes the refund ([`attribution::attribute`]).
    /// `None`: the entry changed meanwhile.
    async fn attribute(
        &self,
        refunds: &Refunds,
        entry: &Entry,
    ) -> Result<Option<Reconciliation>, JournalError> {
        let store = &self.inner.store;
        let (provider, order) = (entry.provider, entry.request.order_id.as_str());
        let others: Vec<Entry> = store
            .order_entries(provider, order)
            .await?
            .into_iter()
            .filter(|other| other.merchant_reference != entry.merchant_reference)
            .collect();
        let accounted: BTreeSet<String> = others
            .iter()
            .filter_map(|other| other.provider_refund_id.as_deref())
            .map(|number| number.trim().to_owned())
            .collect();
        let unnumbered: Vec<String> = others
            .iter()
            .filter(|other| match other.state {
                EntryState::Applied => other.provider_refund_id.is_none(),
                EntryState::InFlight | EntryState::Unknown => true,
                EntryState::NotApplied => false,
            })
            .map(|other| other.merchant_reference.as_str().to_owned())
            .collect();
        let intent_at_ms = entry.attempt_at_ms.unwrap_or(entry.created_at_ms);
        let deadline_ms = entry
            .attempt_deadline_ms
            .unwrap_or_else(|| intent_at_ms.saturating_add(self.lease_ms()));
        // The database's clock before the read leaves: the read is made at this time or later.
        let read_at_ms = store.now_ms().await?;
        let decision = match refunds.find(&entry.request, None).await {
            Ok(lookup) => {
                let listed = match lookup.finding {
                    Finding::Found(found) => vec![found],
                    Finding::Unattributed(listed) => listed,
                    _ => Vec::new(),
                };
                attribution::attribute(&Evidence {
                    amount: entry.request.amount,
                    intent_at_ms,
                    deadline_ms,
                    refunds: &listed,
                    read_at_ms,
                    accounted: &accounted,
                    unnumbered: &unnumbered,
                    settling_ms: millis(self.inner.config.settling_delay),
                    skew_ms: millis(self.inner.config.clock_skew),
                })
            }
            Err(error) => {
                let reason = format!(
                    "reconcile could not read order {order} at {provider} ({}): the next \
                     reconcile reads it again",
                    read_error(&error)
                );
                return self.note_read(entry, reason).await;
            }
        };
        let reason = match decision {
            Attribution::Ours(found) => {
                let detail = format!(
                    "attributed by reading order {order} at {provider}: refund {} is the only \
                     refund on the order that no journal entry accounts for, made after this \
                     attempt, with this refund's amount",
                    attribution::describe(&found)
                );
                let write = machine::read_applied(entry, &found, detail.clone())
                    .map_err(|refused| wrong_state(entry, refused))?;
                return Ok(store
                    .write(entry.version, &write)
                    .await?
                    .map(|written| Reconciliation::settled(written, &found, detail)));
            }
            Attribution::NotApplied => {
                let detail = format!(
                    "not applied: order {order} at {provider}, read at least {} s after the \
                     attempt's deadline ({}), lists no refund that the journal does not account \
                     for",
                    self.inner.config.settling_delay.as_secs(),
                    attribution::format_ms(deadline_ms)
                );
                let owner = self.owner();
                let write = machine::read_not_applied(entry, &owner, self.lease_ms(), detail)
                    .map_err(|refused| wrong_state(entry, refused))?;
                let Some(written) = store.write(entry.version, &write).await? else {
                    return Ok(None);
                };
                let result = self
                    .run_to_completion(
                        refunds,
                        &written.request.clone(),
                        Mode::Reconcile,
                        Start::Claimed {
                            entry: Box::new(written),
                            owner,
                        },
                    )
                    .await?;
                return Ok(Some(Reconciliation::of(result)));
            }
            Attribution::NotYet { decide_at_ms } => format!(
                "reconcile read order {order} at {provider}: no refund there that the journal \
                 does not account for, yet; if none shows in a read from {} on (the attempt's \
                 deadline plus the settling delay), it was not applied and is sent again",
                attribution::format_ms(decide_at_ms)
            ),
            Attribution::Ambiguous(evidence) => format!(
                "reconcile read order {order} at {provider} and cannot attribute this refund: \
                 {evidence}. (Attribution relies on every refund of the order going through the \
                 journal.) Look at the order at {provider}, then call resolve_manually with what \
                 you found"
            ),
        };
        self.note_read(entry, reason).await
    }

    /// Leaves an unresolved entry with `reason` (written when it changed).
    async fn note_read(
        &self,
        entry: &Entry,
        reason: String,
    ) -> Result<Option<Reconciliation>, JournalError> {
        let written = match machine::read_noted(entry, reason.clone())
            .map_err(|refused| wrong_state(entry, refused))?
        {
            Some(write) => match self.inner.store.write(entry.version, &write).await? {
                Some(written) => written,
                None => return Ok(None),
            },
            None => entry.clone(),
        };
        Ok(Some(Reconciliation::LeftUnresolved {
            entry: written,
            reason,
        }))
    }

    /// Reads the final status of a pending refund from the provider's record. `None`: still
    /// pending, not found, the read failed (logged), or the entry moved meanwhile.
    pub(crate) async fn read_status(
        &self,
        refunds: &Refunds,
        listed: &Entry,
    ) -> Result<Option<Reconciliation>, JournalError> {
        let found = match refunds
            .find(&listed.request, listed.provider_refund_id.as_deref())
            .await
        {
            Ok(Lookup {
                finding: Finding::Found(found),
                ..
            }) => found,
            Ok(_) => {
                tracing::info!(
                    provider = %listed.provider,
                    merchant_reference = listed.merchant_reference.as_str(),
                    "reconcile: a pending refund is not in the provider's record (yet)"
                );
                return Ok(None);
            }
            Err(error) => {
                tracing::warn!(
                    provider = %listed.provider,
                    merchant_reference = listed.merchant_reference.as_str(),
                    %error,
                    "reconcile: the status read of a pending refund failed; the next run reads again"
                );
                return Ok(None);
            }
        };
        if found.status == RefundStatus::Pending {
            return Ok(None);
        }
        loop {
            let (entry, _) = self
                .read_existing(listed.provider, &listed.merchant_reference)
                .await?;
            if entry.state != EntryState::Applied
                || entry.refund_status != Some(RefundStatus::Pending)
            {
                return Ok(None);
            }
            let write = machine::status_read(&entry, &found)
                .map_err(|refused| wrong_state(&entry, refused))?;
            if let Some(written) = self.inner.store.write(entry.version, &write).await? {
                if found.status == RefundStatus::Failed {
                    tracing::error!(
                        provider = %written.provider,
                        merchant_reference = written.merchant_reference.as_str(),
                        reason = found.failure_reason.as_deref().unwrap_or(""),
                        "a refund believed applied failed at the provider"
                    );
                }
                return Ok(Some(match found.status {
                    RefundStatus::Failed => Reconciliation::FailedAfterApplied {
                        entry: written,
                        reason: found.failure_reason.clone(),
                    },
                    _ => Reconciliation::StatusRead { entry: written },
                }));
            }
        }
    }

    /// Every entry of `provider` on `order_id` (the request's order), oldest first: the
    /// journal's refunds on that order, in every state. Their
    /// [`provider_refund_id`](Entry::provider_refund_id)s are the refund numbers the journal
    /// accounts for there, which AfterPay attribution relies on.
    pub async fn order_entries(
        &self,
        provider: Provider,
        order_id: &str,
    ) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.order_entries(provider, order_id).await
    }

    /// Refunds believed applied whose provider's final status is **failed** (state applied,
    /// status failed), oldest first: the provider's record said so when reconcile read it
    /// ([`Reconciliation::FailedAfterApplied`], an
    /// [`EventKind::FailedAfterApplied`] event), or an
    /// answer or [`record_status`](Journal::record_status) did. Nothing was refunded for them;
    /// they stay listed (the journal records no follow-up): refunding the customer takes a new
    /// refund under a new merchant reference.
    pub async fn failed_after_applied(&self) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.failed_after_applied().await
    }

    /// [`JournalError::OrderBusy`] for `request`, naming the refund that holds its order.
    async fn order_busy(&self, request: &RefundRequest) -> JournalError {
        let holder = self
            .inner
            .store
            .order_entries(request.provider, &request.order_id)
            .await
            .ok()
            .and_then(|entries| {
                entries
                    .into_iter()
                    .find(|entry| {
                        entry.merchant_reference != request.merchant_reference
                            && matches!(entry.state, EntryState::InFlight | EntryState::Unknown)
                    })
                    .map(|entry| entry.merchant_reference)
            });
        JournalError::OrderBusy {
            provider: request.provider,
            order_id: request.order_id.clone(),
            reference: request.merchant_reference.clone(),
            holder,
        }
    }

    /// Records an operator's decision on an unresolved entry (after looking the refund up at
    /// the provider): [`Outcome::Applied`] (the refund exists: from then on every call with
    /// this reference answers it from the record, status pending until
    /// [`record_status`](Journal::record_status)) or [`Outcome::NotApplied`] (it does not: the
    /// next call sends it again). `note` goes into the audit trail; say who decided and on what
    /// evidence.
    ///
    /// [`resolve_manually_with`](Journal::resolve_manually_with) records what the operator
    /// found besides (the provider's refund id and amount); prefer it for a refund found
    /// applied on AfterPay, whose later attribution on the same order counts only the refund
    /// numbers on record.
    ///
    /// Refused ([`JournalError::WrongState`]) for [`Outcome::Unknown`], for an entry that is not
    /// unresolved, and for one under a live lease (its sender is still at work).
    pub async fn resolve_manually(
        &self,
        provider: Provider,
        reference: &MerchantReference,
        outcome: Outcome,
        note: &str,
    ) -> Result<Entry, JournalError> {
        self.resolve_manually_with(provider, reference, Resolution::new(outcome, note))
            .await
    }

    /// Records an operator's decision on an unresolved entry with what they found at the
    /// provider ([`Resolution`]): the outcome, and for a refund found applied its
    /// **refund id** (the provider's number of it) and **amount** (exact, in the request's
    /// currency), stored in the entry ([`Entry::provider_refund_id`], [`Entry::amount`]) and
    /// written in the audit event with the note (`<note> [recorded: refund id "R-1",
    /// amount EUR 9.99]`).
    ///
    /// On AfterPay the refund id matters beyond the record: attribution counts the refund
    /// numbers on record on the order as accounted for, and a refund applied **without** one
    /// may own any refund of the order, which leaves every later unknown refund on that order
    /// for a person (see [reconciliation](crate#afterpay-attribution)). With its number on
    /// record, the next unknown refund on the order is attributed by reading as usual.
    ///
    /// Without an id, the provider's own rule gives one where its id is the reference; without
    /// an amount, the request's. Refused before any write:
    ///
    /// - [`JournalError::Invalid`]: an amount in another currency than the request's, or not
    ///   positive; an empty refund id; a refund id or an amount with
    ///   [`Outcome::NotApplied`] (nothing was refunded);
    /// - [`JournalError::WrongState`]: [`Outcome::Unknown`], an entry that is not unresolved,
    ///   one under a live lease (its sender is still at work).
    pub async fn resolve_manually_with(
        &self,
        provider: Provider,
        reference: &MerchantReference,
        resolution: Resolution,
    ) -> Result<Entry, JournalError> {
        let Resolution {
            outcome,
            provider_refund_id,
            amount,
            note,
        } = resolution;
        let provider_refund_id = provider_refund_id.map(|id| id.trim().to_owned());
        let invalid = |field: &str, reason: &str| {
            Err(JournalError::Invalid(RefundError::invalid(field, reason)))
        };
        if outcome == Outcome::NotApplied {
            if provider_refund_id.is_some() {
                return invalid(
                    "provider_refund_id",
                    "a refund found not applied has no refund id",
                );
            }
            if amount.is_some() {
                return invalid("amount", "a refund found not applied has no amount");
            }
        }
        if provider_refund_id.as_deref() == Some("") {
            return invalid("provider_refund_id", "must not be empty");
        }
        if let Some(amount) = amount
            && !amount.is_positive()
        {
            return invalid("amount", "must be positive");
        }
        let found = machine::Found {
            provider_refund_id,
            amount,
        };
        let store = &self.inner.store;
        loop {
            let (entry, now_ms) = self.read_existing(provider, reference).await?;
            let wrong = |reason: &str| JournalError::WrongState {
                provider,
                reference: reference.clone(),
                state: entry.state,
                reason: reason.to_owned(),
            };
            let Some(transition) = Transition::resolved(outcome) else {
                return Err(wrong("a manual resolution says applied or not applied"));
            };
            if entry.is_leased(now_ms) {
                return Err(wrong(
                    "a sender holds a live lease on it; wait for its answer",
                ));
            }
            if let Some(amount) = found.amount
                && amount.currency() != entry.request.amount.currency()
            {
                return invalid(
                    "amount",
                    &format!(
                        "in {}, the refund request's currency (not {})",
                        entry.request.amount.currency().code(),
                        amount.currency().code()
                    ),
                );
            }
            // Refused unless unresolved: unknown, or in flight under a lapsed lease.
            let write = machine::resolve_with(&entry, transition, &note, &found)
                .map_err(|refused| wrong_state(&entry, refused))?;
            if let Some(written) = store.write(entry.version, &write).await? {
                return Ok(written);
            }
        }
    }

    /// Applied refunds whose provider status is still pending (every OpenApp refund, an Optty
    /// `PENDING`, a Moyasar `initiated`, one settled by "already exists" or by hand), oldest
    /// first. [`reconcile`](Journal::reconcile) reads their final status where the provider
    /// has a read.
    pub async fn pending(&self) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.pending().await
    }

    /// Records the provider's status of an applied refund (from its callback, a settlement
    /// report or a status read of the service's own), with an audit entry. Refused ([`JournalError::WrongState`]) for an entry that is
    /// not applied.
    pub async fn record_status(
        &self,
        provider: Provider,
        reference: &MerchantReference,
        status: RefundStatus,
    ) -> Result<Entry, JournalError> {
        let store = &self.inner.store;
        loop {
            let (entry, _) = self.read_existing(provider, reference).await?;
            // Refused unless applied.
            let write =
                machine::status(&entry, status).map_err(|refused| wrong_state(&entry, refused))?;
            if let Some(written) = store.write(entry.version, &write).await? {
                return Ok(written);
            }
        }
    }

    /// The entry of a reference, if any.
    pub async fn entry(
        &self,
        provider: Provider,
        reference: &MerchantReference,
    ) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .inner
            .store
            .read(provider, reference)
            .await?
            .map(|(entry, _)| entry))
    }

    /// The audit trail of a reference: every intent, answer, lapsed lease, reconciliation,
    /// manual decision and status change, oldest first.
    pub async fn history(
        &self,
        provider: Provider,
        reference: &MerchantReference,
    ) -> Result<Vec<Event>, JournalError> {
        self.inner.store.history(provider, reference).await
    }

    async fn read_existing(
        &self,
        provider: Provider,
        reference: &MerchantReference,
    ) -> Result<(Entry, i64), JournalError> {
        self.inner
            .store
            .read(provider, reference)
            .await?
            .ok_or_else(|| JournalError::NotFound {
                provider,
                reference: reference.clone(),
            })
    }
}

/// A transition the entry's state refuses ([`machine::next`]), as the caller sees it.
fn wrong_state(entry: &Entry, refused: Refused) -> JournalError {
    JournalError::WrongState {
        provider: entry.provider,
        reference: entry.merchant_reference.clone(),
        state: entry.state,
        reason: refused.reason.to_owned(),
    }
}

/// The entry of a listed row; a row that cannot be read goes into the report's failures.
pub(crate) fn listed_entry(listed: Listed, report: &mut ReconcileReport) -> Option<Entry> {
    match listed {
        Ok(entry) => Some(entry),
        Err(unreadable) => {
            let crate::store::Unreadable {
                provider,
                merchant_reference,
                error,
            } = *unreadable;
            tracing::error!(
                provider,
                merchant_reference,
                %error,
                "reconcile: an entry cannot be read"
            );
            report.failed.push(ReconcileFailure {
                provider,
                merchant_reference,
                entry: None,
                error,
            });
            None
        }
    }
}

/// An entry reconcile could not act on.
pub(crate) fn failure(entry: Entry, error: JournalError) -> ReconcileFailure {
    tracing::error!(
        provider = %entry.provider,
        merchant_reference = entry.merchant_reference.as_str(),
        %error,
        "reconcile: an entry failed; the others go on"
    );
    ReconcileFailure {
        provider: entry.provider.as_str().to_owned(),
        merchant_reference: entry.merchant_reference.as_str().to_owned(),
        entry: Some(entry),
        error,
    }
}

/// A failed read in a few stable words (its kind and HTTP status), for a reason that does not
/// change from one run to the next.
fn read_error(error: &RefundError) -> String {
    match error.http_status() {
        Some(status) => format!("{}, HTTP {status}", error.kind().name()),
        None => error.kind().name().to_owned(),
    }
}

/// A duration in milliseconds, saturating.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

fn verdict_answer(
    verdict: Verdict,
    entry: Entry,
    fingerprint: &str,
) -> Result<JournaledRefund, JournalError> {
    Ok(match verdict {
        Verdict::Replay => JournaledRefund::Applied {
            refund: entry.refund().expect("an applied entry has a refund"),
            replayed: true,
            entry,
        },
        Verdict::InProgress => JournaledRefund::InProgress { entry },
        Verdict::Unresolved => JournaledRefund::Unresolved { error: None, entry },
        Verdict::Conflict => {
            return Err(JournalError::Conflict {
                provider: entry.provider,
                reference: entry.merchant_reference,
                recorded: entry.fingerprint,
                requested: fingerprint.to_owned(),
            });
        }
    })
}

/// The result of a call whose last answer is recorded and that sends no more.
fn finished(entry: Entry, error: Option<RefundError>) -> JournaledRefund {
    if entry.state == EntryState::Unknown {
        tracing::warn!(
            provider = %entry.provider,
            merchant_reference = entry.merchant_reference.as_str(),
            attempts = entry.attempts,
            reason = entry.unresolved_reason.as_deref().unwrap_or(""),
            "refund unresolved: the outcome is unknown"
        );
    }
    match (entry.state, error) {
        (EntryState::NotApplied, Some(error)) => JournaledRefund::Rejected { error, entry },
        (EntryState::Unknown | EntryState::NotApplied, error) => JournaledRefund::Unresolved {
            error: error.map(|e| e.with_outcome(Outcome::Unknown)),
            entry,
        },
        // Overtaken by another sender that now holds the entry.
        (_, _) => JournaledRefund::InProgress { entry },
    }
}

/// Where an entry this call lost stands.
fn standing(entry: Entry, error: Option<RefundError>) -> JournaledRefund {
    match entry.state {
        EntryState::Applied => JournaledRefund::Applied {
            refund: entry.refund().expect("an applied entry has a refund"),
            replayed: true,
            entry,
        },
        EntryState::Unknown => JournaledRefund::Unresolved { error, entry },
        _ => JournaledRefund::InProgress { entry },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Lease, SettledBy};
    use refunds::{ErrorKind, Money, RawAnswer};
    use serde_json::json;

    fn entry(state: EntryState) -> Entry {
        let request = RefundRequest::new(
            Provider::Moyasar,
            "ORD-1",
            Money::parse("10.00", "SAR").unwrap(),
            MerchantReference::new("RF-1").unwrap(),
        );
        Entry {
            provider: Provider::Moyasar,
            merchant_reference: request.merchant_reference.clone(),
            fingerprint: "fp".into(),
            request,
            state,
            attempts: 2,
            ambiguous: true,
            lease: Some(Lease {
                owner: "host-1/7".into(),
                expires_at_ms: 1_700_000_060_000,
            }),
            provider_refund_id: None,
            refund_status: None,
            amount: None,
            refunded_total: None,
            captured_total: None,
            already_applied: false,
            http_status: Some(504),
            error_kind: Some("server_error".into()),
            error_message: Some("moyasar: gateway time-out".into()),
            unresolved_reason: Some("reconcile re-sends it".into()),
            settled_by: None,
            wire_ms: 30_012,
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_030_000,
            settled_at_ms: None,
            attempt_at_ms: Some(1_700_000_000_000),
            attempt_deadline_ms: Some(1_700_000_030_000),
            version: 4,
        }
    }

    fn applied() -> Entry {
        Entry {
            state: EntryState::Applied,
            ambiguous: false,
            lease: None,
            provider_refund_id: Some("rf-9".into()),
            refund_status: Some(RefundStatus::Succeeded),
            amount: Some(Money::parse("10.00", "SAR").unwrap()),
            unresolved_reason: None,
            settled_by: Some(SettledBy::Reconcile),
            settled_at_ms: Some(1_700_000_090_000),
            ..entry(EntryState::Unknown)
        }
    }

    /// An entry serializes with its field names, its state, settler and status in column form
    /// and its money as amount and currency.
    #[test]
    fn an_entry_serializes() {
        let value = serde_json::to_value(entry(EntryState::InFlight)).unwrap();
        assert_eq!(value["provider"], "moyasar");
        assert_eq!(value["merchant_reference"], "RF-1");
        assert_eq!(value["state"], "in_flight");
        assert_eq!(
            value["lease"],
            json!({"owner": "host-1/7", "expires_at_ms": 1_700_000_060_000_i64})
        );
        assert_eq!(value["request"]["order_id"], "ORD-1");
        assert_eq!(
            value["request"]["amount"],
            json!({"amount": "10.00", "currency": "SAR"})
        );
        assert_eq!(value["http_status"], 504);
        assert_eq!(value["settled_by"], json!(null));

        let value = serde_json::to_value(applied()).unwrap();
        assert_eq!(value["state"], "applied");
        assert_eq!(value["settled_by"], "reconcile");
        assert_eq!(value["refund_status"], "succeeded");
        assert_eq!(
            value["amount"],
            json!({"amount": "10.00", "currency": "SAR"})
        );
    }

    /// Reconciliations, the results they carry and a reconcile report serialize tagged, with
    /// a refund error as its summary and a journal error as its outcome and message.
    #[test]
    fn reconciliations_and_results_serialize() {
        let refund = Refund {
            provider: Provider::Moyasar,
            provider_refund_id: Some("rf-9".into()),
            status: RefundStatus::Succeeded,
            amount: Money::parse("10.00", "SAR").unwrap(),
            refunded_total: None,
            captured_total: None,
            raw: RawAnswer::default(),
        };
        let resent = Reconciliation::Resent(JournaledRefund::Applied {
            refund,
            replayed: false,
            entry: applied(),
        });
        let value = serde_json::to_value(&resent).unwrap();
        assert_eq!(value["action"], "resent");
        assert_eq!(value["result"], "applied");
        assert_eq!(value["replayed"], false);
        assert_eq!(value["refund"]["provider_refund_id"], "rf-9");
        assert_eq!(value["entry"]["state"], "applied");

        let left = Reconciliation::LeftUnresolved {
            entry: entry(EntryState::Unknown),
            reason: "no duplicate key: resolve it by hand".into(),
        };
        let value = serde_json::to_value(&left).unwrap();
        assert_eq!(value["action"], "left_unresolved");
        assert_eq!(value["reason"], "no duplicate key: resolve it by hand");
        assert_eq!(value["entry"]["state"], "unknown");

        let read = Reconciliation::SettledByReading {
            entry: applied(),
            detail: "found in moyasar's record".into(),
        };
        let value = serde_json::to_value(&read).unwrap();
        assert_eq!(value["action"], "settled_by_reading");
        assert_eq!(value["detail"], "found in moyasar's record");
        assert_eq!(value["entry"]["settled_by"], "reconcile");
        let status = Reconciliation::StatusRead { entry: applied() };
        assert_eq!(
            serde_json::to_value(&status).unwrap()["action"],
            "status_read"
        );
        let failed = Reconciliation::FailedAfterApplied {
            entry: Entry {
                refund_status: Some(RefundStatus::Failed),
                ..applied()
            },
            reason: Some("declined".into()),
        };
        let value = serde_json::to_value(&failed).unwrap();
        assert_eq!(value["action"], "failed_after_applied");
        assert_eq!(value["reason"], "declined");
        assert_eq!(value["entry"]["refund_status"], "failed");
        assert!(failed.entry().failed_after_applied());

        let error = RefundError::new(ErrorKind::ServerError)
            .with_provider(Provider::Moyasar)
            .with_http_status(504)
            .with_provider_code("gateway_timeout");
        let unresolved = JournaledRefund::Unresolved {
            error: Some(error.clone()),
            entry: entry(EntryState::Unknown),
        };
        let value = serde_json::to_value(&unresolved).unwrap();
        assert_eq!(value["result"], "unresolved");
        assert_eq!(
            value["error"],
            serde_json::to_value(error.summary()).unwrap()
        );
        assert_eq!(value["error"]["kind"], "server_error");
        assert_eq!(value["error"]["outcome"], "unknown");
        assert_eq!(value["error"]["provider_code"], "gateway_timeout");
        let in_progress = JournaledRefund::InProgress {
            entry: entry(EntryState::InFlight),
        };
        assert_eq!(
            serde_json::to_value(&in_progress).unwrap()["result"],
            "in_progress"
        );

        let report = ReconcileReport {
            reconciled: vec![resent, left],
            failed: vec![ReconcileFailure {
                provider: "moyasar".into(),
                merchant_reference: "RF-2".into(),
                entry: None,
                error: JournalError::Corrupt("state \"settled\"".into()),
            }],
            deferred: vec![Provider::AfterPay],
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["reconciled"].as_array().unwrap().len(), 2);
        assert_eq!(value["deferred"], json!(["afterpay"]));
        assert_eq!(
            value["failed"][0],
            json!({
                "provider": "moyasar",
                "merchant_reference": "RF-2",
                "entry": null,
                "error": {
                    "outcome": "nothing_sent",
                    "message": "refund journal entry cannot be read: state \"settled\"",
                },
            })
        );
    }
}
