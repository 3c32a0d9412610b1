//! Settling what a refund's answer left open: reconciliation by reading the provider's record
//! or sending again ([`Journal::reconcile`]), a provider's notification
//! ([`Journal::settle_notified`]), pending refunds, and an operator's resolution
//! ([`Journal::resolve_manually_with`]).

use std::collections::BTreeSet;

use refunds::{
    Finding, Lookup, MerchantReference, Notification, Outcome, Provider, RefundError, RefundStatus,
    Refunds,
};

use super::{
    Journal, ReconcileReport, Reconciliation, Resolution, Start, failure, listed_entry, millis,
    read_error, wrong_state,
};
use crate::attribution::{self, Attribution, Evidence};
use crate::entry::{Entry, EntryState, EventKind};
use crate::error::JournalError;
use crate::machine::{self, Mode, NewEvent, Transition};

impl Journal {
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
    ///   [`JournalConfig::settling_delay`](super::JournalConfig::settling_delay), proves it not
    ///   applied, and it is sent again at once;
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
    pub(super) async fn reconcile_where(
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
    pub(super) async fn resend(
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
    pub(super) async fn read_then_resend(
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
    pub(super) async fn attribute(
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
    pub(super) async fn note_read(
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
}
