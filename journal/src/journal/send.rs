//! A journaled refund: [`Journal::refund`] and [`Journal::refund_or_wait`] claim the entry,
//! send the refund at most once, and record its answer.

use std::time::{Duration, Instant};

use refunds::retry::Decision;
use refunds::{Outcome, RefundRequest, Refunds};

use super::{
    Claimed, Journal, JournaledRefund, Start, WAIT_FIRST_POLL, WAIT_MAX_POLL, finished, standing,
    verdict_answer, wrong_state,
};
use crate::entry::{Entry, EntryState, EventKind};
use crate::error::JournalError;
use crate::fingerprint::canonical_json;
use crate::machine::{self, AttemptAnswer, Mode, NewEvent, Step, Then, Write};

impl Journal {
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
    ///    [`RetryPolicy::decide`](refunds::RetryPolicy::decide) of the journal's policy. Before a
    ///    retry, its intent is recorded and the lease renewed.
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
    pub(super) async fn run_to_completion(
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

    pub(super) async fn run(
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
    pub(super) async fn claim(
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
    pub(super) async fn drive(
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
    pub(super) async fn apply(
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

    /// [`JournalError::OrderBusy`] for `request`, naming the refund that holds its order.
    pub(super) async fn order_busy(&self, request: &RefundRequest) -> JournalError {
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
}
