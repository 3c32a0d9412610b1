//! [`Journal`]: journaled refunds, reconciliation and the audit trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use refunds::retry::Decision;
use refunds::{
    MerchantReference, Outcome, Provider, Refund, RefundError, RefundRequest, RefundStatus,
    Refunds, RetryPolicy,
};

use serde::Serialize;

use crate::entry::{Entry, EntryState, Event};
use crate::error::JournalError;
use crate::fingerprint::canonical_json;
use crate::machine::{self, AttemptAnswer, Mode, Refused, Step, Then, Transition, Verdict, Write};
use crate::store::{Database, Store};

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
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            lease: Duration::from_secs(120),
            retry: RetryPolicy::default(),
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
    /// ([`Journal::reconcile`] where the provider deduplicates, otherwise
    /// [`Journal::resolve_manually`]). Never refund it again under a new reference.
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

/// What [`Journal::reconcile`] did with one unresolved entry.
///
/// Serializes (`serde`) as an object tagged by `action`: `{"action": "resent", "result":
/// "applied", ...}` (the [`JournaledRefund`]'s fields follow the tag), or `{"action":
/// "left_unresolved", "entry": {...}, "reason": "..."}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Reconciliation {
    /// Re-sent with the same merchant reference (the provider deduplicates), with the result.
    Resent(JournaledRefund),
    /// Left as it is, with the reason: the provider has no duplicate key (AfterPay: resolve it
    /// by hand), or another sender holds a live lease on it.
    LeftUnresolved {
        /// The entry.
        entry: Entry,
        /// Why, and what settles it.
        reason: String,
    },
}

impl Reconciliation {
    /// The entry after reconciliation.
    pub fn entry(&self) -> &Entry {
        match self {
            Reconciliation::Resent(result) => result.entry(),
            Reconciliation::LeftUnresolved { entry, .. } => entry,
        }
    }
}

/// What one [`Journal::reconcile`] run did: every entry it acted on, and every entry it could
/// not, each with its error. One entry that fails (a write the database refuses, a row that
/// cannot be read) never stops the others; it stays as it was, and the next run tries again.
///
/// Serializes (`serde`) as `{"reconciled": [...], "failed": [...]}`.
#[derive(Debug, Default, Serialize)]
#[must_use = "a reconcile report lists the entries that failed: look at `failed`"]
pub struct ReconcileReport {
    /// The entries reconcile acted on, oldest first: re-sent, or left unresolved with the
    /// reason.
    pub reconciled: Vec<Reconciliation>,
    /// The entries it could not act on, oldest first, each with its error.
    pub failed: Vec<ReconcileFailure>,
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
        self.run_to_completion(refunds, request, Mode::Call).await
    }

    /// Runs a call on its own task, so that a caller who stops waiting (a dropped future, a
    /// time-out around it) cannot leave a sent attempt without its answer recorded.
    async fn run_to_completion(
        &self,
        refunds: &Refunds,
        request: &RefundRequest,
        mode: Mode,
    ) -> Result<JournaledRefund, JournalError> {
        let (journal, refunds, request) = (self.clone(), refunds.clone(), request.clone());
        let task = tokio::spawn(async move { journal.run(&refunds, &request, mode).await });
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
    ) -> Result<JournaledRefund, JournalError> {
        let owner = self.owner();
        let entry = match self.claim(request, &owner, mode).await? {
            Claimed::Answer(answer) => return Ok(answer),
            Claimed::Send(entry) => entry,
        };
        if entry.attempts > 1 {
            // The client may remember an earlier call's result for this reference (an AfterPay
            // unknown it would answer again without sending); the journal decided to send.
            refunds.forget(request.provider, &request.merchant_reference);
        }
        self.drive(refunds, request, entry, &owner, mode).await
    }

    /// Records the intent, or decides from the entry on record.
    async fn claim(
        &self,
        request: &RefundRequest,
        owner: &str,
        mode: Mode,
    ) -> Result<Claimed, JournalError> {
        let store = &self.inner.store;
        let canonical = canonical_json(request);
        let fingerprint = crate::fingerprint::fingerprint(request);
        loop {
            if let Some(entry) = store
                .insert(request, &canonical, &fingerprint, owner, self.lease_ms())
                .await?
            {
                return Ok(Claimed::Send(entry));
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
                Step::Write(write, then) => {
                    let Some(written) = store.write(entry.version, &write).await? else {
                        continue; // someone else changed it: decide again
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

    /// Settles the unresolved entries that can be settled safely, oldest first: where the
    /// provider deduplicates on the merchant reference (Optty, Moyasar, OpenApp), the recorded
    /// request is re-sent under the same reference (the provider applies it once, or answers
    /// that it exists) with the journal's retry policy; where it does not (AfterPay), nothing
    /// is sent and the entry stays unresolved with the reason, for
    /// [`resolve_manually`](Journal::resolve_manually). Entries under a live lease are left to
    /// their sender.
    ///
    /// Every entry is tried, whatever happens to the others: one that fails (its write is
    /// refused, its row cannot be read) goes into [`ReconcileReport::failed`] with its error
    /// and stays as it was for the next run. `Err` only when the unresolved entries cannot be
    /// listed at all (nothing was done).
    pub async fn reconcile(&self, refunds: &Refunds) -> Result<ReconcileReport, JournalError> {
        let mut report = ReconcileReport::default();
        for listed in self.inner.store.unresolved_rows().await? {
            let entry = match listed {
                Ok(entry) => entry,
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
                        "reconcile: an unresolved entry cannot be read"
                    );
                    report.failed.push(ReconcileFailure {
                        provider,
                        merchant_reference,
                        entry: None,
                        error,
                    });
                    continue;
                }
            };
            let request = entry.request.clone();
            let result = match self
                .run_to_completion(refunds, &request, Mode::Reconcile)
                .await
            {
                Ok(result) => result,
                Err(error) => {
                    tracing::error!(
                        provider = %entry.provider,
                        merchant_reference = entry.merchant_reference.as_str(),
                        %error,
                        "reconcile: an unresolved entry failed; the others go on"
                    );
                    report.failed.push(ReconcileFailure {
                        provider: entry.provider.as_str().to_owned(),
                        merchant_reference: entry.merchant_reference.as_str().to_owned(),
                        entry: Some(entry),
                        error,
                    });
                    continue;
                }
            };
            report.reconciled.push(match result {
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
            });
        }
        Ok(report)
    }

    /// Records an operator's decision on an unresolved entry (after looking the refund up at
    /// the provider): [`Outcome::Applied`] (the refund exists: from then on every call with
    /// this reference answers it from the record, status pending until
    /// [`record_status`](Journal::record_status)) or [`Outcome::NotApplied`] (it does not: the
    /// next call sends it again). `note` goes into the audit trail; say who decided and on what
    /// evidence.
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
            // Refused unless unresolved: unknown, or in flight under a lapsed lease.
            let write = machine::resolve(&entry, transition, note)
                .map_err(|refused| wrong_state(&entry, refused))?;
            if let Some(written) = store.write(entry.version, &write).await? {
                return Ok(written);
            }
        }
    }

    /// Applied refunds whose provider status is still pending (every OpenApp refund, an Optty
    /// `PENDING`, one settled by "already exists" or by hand), oldest first.
    pub async fn pending(&self) -> Result<Vec<Entry>, JournalError> {
        self.inner.store.pending().await
    }

    /// Records the provider's status of an applied refund (from its callback or a status
    /// read), with an audit entry. Refused ([`JournalError::WrongState`]) for an entry that is
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
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["reconciled"].as_array().unwrap().len(), 2);
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
