//! [`Journal`]: journaled refunds, reconciliation and the audit trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use refunds::{
    MerchantReference, Money, Outcome, Provider, RecordedRefund, Refund, RefundError, RefundStatus,
    RetryPolicy,
};

use serde::Serialize;

use crate::database::Database;
use crate::entry::{Entry, EntryState, Event};
use crate::error::JournalError;
use crate::machine::{self, NewEvent, Refused, Verdict};
use crate::store::{Listed, Store};

mod send;
mod settle;

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
    /// [`EventKind::FailedAfterApplied`](crate::EventKind::FailedAfterApplied) event. Refunding
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

/// A durable journal of refund intents and outcomes in front of a
/// [`Refunds`](refunds::Refunds) client.
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

    /// The store, for the reconciler.
    pub(crate) fn store(&self) -> &crate::store::Store {
        &self.inner.store
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
    /// [`EventKind::FailedAfterApplied`](crate::EventKind::FailedAfterApplied) event), or an
    /// answer or [`record_status`](Journal::record_status) did. Nothing was refunded for them;
    /// they stay listed (the journal records no follow-up): refunding the customer takes a new
    /// refund under a new merchant reference.
    pub async fn failed_after_applied(&self) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.failed_after_applied().await
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
    use refunds::{ErrorKind, Money, RawAnswer, RefundRequest};
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
