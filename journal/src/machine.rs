//! The state machine of an entry, as pure functions.
//!
//! What can happen to an entry is one [`Transition`], by name, and where it leads from each
//! state is one function, [`next`]: every write the journal makes is a [`Write`] built from a
//! transition ([`Write::new`]), so no state changes anywhere else. The other functions decide,
//! given the entry as read (with the database's clock) and what happened, which transition it
//! is and what else to write (lease, reasons, amounts, events). The store applies a [`Write`]
//! only if the entry's version is still the one read (optimistic concurrency), so two writers
//! never both act on the same state; the loser reads again and decides again.

use std::fmt;

use refunds::{Outcome, Provider, RecordedRefund, Refund, RefundError, RefundStatus};

use crate::entry::{Entry, EntryState, EventKind, Lease, SettledBy};

/// What happens to an entry, by name. [`next`] says which state each one leads to from each
/// state, or that it does not apply there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transition {
    /// A new entry: attempt 1's intent, recorded under the caller's lease before it is sent.
    Recorded,
    /// The next attempt's intent, under a fresh lease: a later call (or reconcile) sends a
    /// not-applied entry again or re-sends an unknown one where the provider deduplicates, or
    /// the sender retries after recording its answer.
    IntentRecorded,
    /// The sender's lease lapsed with its attempt in flight (it stopped or stalled); another
    /// sender takes the entry over and re-sends under the same merchant reference, which the
    /// provider deduplicates.
    LeaseTakenOver,
    /// The sender's lease lapsed with its attempt in flight, on a provider without a duplicate
    /// key: the outcome is unknown, and nothing is re-sent.
    LeaseLapsed,
    /// The answer to the latest attempt: the refund exists (a success, or "it already
    /// exists"), whoever learns it.
    AnsweredApplied,
    /// The answer to the latest attempt: a refusal, with no ambiguous attempt before it since
    /// the last definitive answer. Nothing was refunded.
    AnsweredNotApplied,
    /// The answer to the latest attempt: its outcome is unknown.
    AnsweredUnknown,
    /// The answer to the latest attempt: a refusal, after an ambiguous attempt that may have
    /// been applied (so it proves nothing).
    RefusedAfterUnknown,
    /// An answer that no longer decides the entry: a later attempt was started since (its
    /// sender was overtaken), or the refund is already applied. Only its event is written.
    AnswerNoted,
    /// Reconciliation looked at an unknown entry it must not re-send, and noted why.
    ReconcileNoted,
    /// An operator found the refund at the provider.
    ResolvedApplied,
    /// An operator found no refund at the provider.
    ResolvedNotApplied,
    /// The provider's status of an applied refund moved.
    StatusRecorded,
    /// Reconciliation read the provider's record and found the refund there (Optty, Moyasar),
    /// or attributed one of the order's refunds to it (AfterPay): applied, settled by reading,
    /// with the record's status, amount and refund id.
    ReadApplied,
    /// Reconciliation read the provider's record (AfterPay) late enough to prove that the
    /// latest attempt was not applied, and records the next attempt's intent in the same write
    /// (the entry never leaves the order's per-order lease in between): sent again.
    ReadNotAppliedResent,
    /// Reconciliation read the final status (succeeded or failed) of a pending refund from the
    /// provider's record.
    StatusRead,
}

impl Transition {
    /// Every transition (the table test goes through them).
    #[cfg(test)]
    pub(crate) const ALL: [Transition; 16] = [
        Transition::Recorded,
        Transition::IntentRecorded,
        Transition::LeaseTakenOver,
        Transition::LeaseLapsed,
        Transition::AnsweredApplied,
        Transition::AnsweredNotApplied,
        Transition::AnsweredUnknown,
        Transition::RefusedAfterUnknown,
        Transition::AnswerNoted,
        Transition::ReconcileNoted,
        Transition::ResolvedApplied,
        Transition::ResolvedNotApplied,
        Transition::StatusRecorded,
        Transition::ReadApplied,
        Transition::ReadNotAppliedResent,
        Transition::StatusRead,
    ];

    /// Whether it records the intent of an attempt about to be sent: the write sets the
    /// attempt's time and its deadline (the lease's expiry).
    pub(crate) const fn records_intent(self) -> bool {
        matches!(
            self,
            Transition::Recorded
                | Transition::IntentRecorded
                | Transition::LeaseTakenOver
                | Transition::ReadNotAppliedResent
        )
    }

    /// Whether it records the answer of the latest attempt: nothing of that attempt is on the
    /// wire any more, so its deadline becomes now (if earlier).
    pub(crate) const fn records_answer(self) -> bool {
        matches!(
            self,
            Transition::AnsweredApplied
                | Transition::AnsweredNotApplied
                | Transition::AnsweredUnknown
                | Transition::RefusedAfterUnknown
        )
    }

    /// An operator's finding: [`Transition::ResolvedApplied`] or
    /// [`Transition::ResolvedNotApplied`]; `None` for [`Outcome::Unknown`], which settles
    /// nothing.
    pub(crate) fn resolved(outcome: Outcome) -> Option<Transition> {
        match outcome {
            Outcome::Applied => Some(Transition::ResolvedApplied),
            Outcome::NotApplied => Some(Transition::ResolvedNotApplied),
            Outcome::Unknown => None,
        }
    }
}

/// A transition that does not apply to the entry's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The state it was tried from; `None`: no entry yet.
    pub from: Option<EntryState>,
    /// The transition.
    pub transition: Transition,
    /// Why it does not apply.
    pub reason: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(state) => write!(f, "{:?} from {state}: {}", self.transition, self.reason),
            None => write!(f, "{:?} without an entry: {}", self.transition, self.reason),
        }
    }
}

/// The state `transition` leads to from `from` (`None`: no entry yet), or why it does not
/// apply. The whole state machine of the [crate docs](crate#an-entrys-state-machine); its table
/// test lists every pair.
pub(crate) const fn next(
    from: Option<EntryState>,
    transition: Transition,
) -> Result<EntryState, Refused> {
    use EntryState::{Applied, InFlight, NotApplied, Unknown};
    use Transition as T;

    const FINAL: &str = "applied is final: later calls are answered from the record";
    const NOT_IN_FLIGHT: &str = "no attempt is in flight";
    const RESOLVED: &str = "only an unresolved entry is resolved by hand";
    const READ: &str = "only an unresolved entry is settled by reading the provider's record";
    const STATUS: &str = "a provider status belongs to an applied refund";
    let Some(state) = from else {
        return match transition {
            T::Recorded => Ok(InFlight),
            _ => Err(Refused {
                from,
                transition,
                reason: "there is no entry yet",
            }),
        };
    };
    let to = match transition {
        T::Recorded => Err("the reference already has an entry"),
        T::IntentRecorded => match state {
            NotApplied | Unknown => Ok(InFlight),
            InFlight => {
                Err("an attempt is in flight: its answer, or its lease lapsing, comes first")
            }
            Applied => Err(FINAL),
        },
        T::LeaseTakenOver => match state {
            InFlight => Ok(InFlight),
            Applied | NotApplied | Unknown => Err(NOT_IN_FLIGHT),
        },
        T::LeaseLapsed => match state {
            InFlight => Ok(Unknown),
            Applied | NotApplied | Unknown => Err(NOT_IN_FLIGHT),
        },
        // From `unknown` or `not_applied` too: the answer of a sender whose entry was marked
        // unknown (or resolved by hand) after its lease lapsed, for the very attempt it sent.
        T::AnsweredApplied => match state {
            InFlight | NotApplied | Unknown => Ok(Applied),
            Applied => Err(FINAL),
        },
        T::AnsweredNotApplied => match state {
            InFlight | NotApplied | Unknown => Ok(NotApplied),
            Applied => Err(FINAL),
        },
        T::AnsweredUnknown | T::RefusedAfterUnknown => match state {
            InFlight | NotApplied | Unknown => Ok(Unknown),
            Applied => Err(FINAL),
        },
        T::AnswerNoted => Ok(state),
        T::ReconcileNoted => match state {
            Unknown => Ok(Unknown),
            InFlight | Applied | NotApplied => {
                Err("reconciliation leaves only an unknown outcome alone with a note")
            }
        },
        // `in_flight`: under a lapsed lease (the journal refuses a live one before).
        T::ResolvedApplied => match state {
            InFlight | Unknown => Ok(Applied),
            Applied | NotApplied => Err(RESOLVED),
        },
        T::ResolvedNotApplied => match state {
            InFlight | Unknown => Ok(NotApplied),
            Applied | NotApplied => Err(RESOLVED),
        },
        T::StatusRecorded | T::StatusRead => match state {
            Applied => Ok(Applied),
            InFlight | NotApplied | Unknown => Err(STATUS),
        },
        // `in_flight`: under a lapsed lease (the journal leaves a live one to its sender).
        T::ReadApplied => match state {
            InFlight | Unknown => Ok(Applied),
            Applied => Err(FINAL),
            NotApplied => Err(READ),
        },
        T::ReadNotAppliedResent => match state {
            InFlight | Unknown => Ok(InFlight),
            Applied => Err(FINAL),
            NotApplied => Err(READ),
        },
    };
    match to {
        Ok(to) => Ok(to),
        Err(reason) => Err(Refused {
            from,
            transition,
            reason,
        }),
    }
}

/// The state of a new entry: [`Transition::Recorded`] (checked at compile time).
pub(crate) const NEW_ENTRY: EntryState = match next(None, Transition::Recorded) {
    Ok(state) => state,
    Err(_) => panic!("a new entry is recorded"),
};

/// Who is driving: a caller's [`Journal::refund`](crate::Journal::refund), or
/// [`Journal::reconcile`](crate::Journal::reconcile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Call,
    Reconcile,
}

impl Mode {
    fn settled_by(self) -> SettledBy {
        match self {
            Mode::Call => SettledBy::Answer,
            Mode::Reconcile => SettledBy::Reconcile,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewEvent {
    pub kind: EventKind,
    pub attempt: Option<u32>,
    pub owner: Option<String>,
    pub outcome: Option<Outcome>,
    pub http_status: Option<u16>,
    pub error_kind: Option<String>,
    pub detail: Option<String>,
    pub elapsed_ms: Option<i64>,
}

impl NewEvent {
    pub(crate) fn new(kind: EventKind) -> NewEvent {
        NewEvent {
            kind,
            attempt: None,
            owner: None,
            outcome: None,
            http_status: None,
            error_kind: None,
            detail: None,
            elapsed_ms: None,
        }
    }
}

/// What to do with the lease columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseWrite {
    /// Leave them as read.
    Keep,
    /// `owner` holds it until the database's now plus `ms`.
    Take { owner: String, ms: i64 },
    /// Nobody holds it.
    Release,
}

/// A change to one entry: the transition, its new columns (timestamps, lease expiry and
/// version are filled in by the database), and the events to append in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    pub transition: Transition,
    pub next: Entry,
    pub lease: LeaseWrite,
    /// `settled_at_ms` becomes the database's now.
    pub settle: bool,
    pub events: Vec<NewEvent>,
}

impl Write {
    /// `transition` of `current`: the entry as read with the state [`next`] gives, the lease
    /// kept, nothing settled, no events yet; or why it does not apply.
    pub(crate) fn new(current: &Entry, transition: Transition) -> Result<Write, Refused> {
        let mut next = current.clone();
        next.state = self::next(Some(current.state), transition)?;
        Ok(Write {
            transition,
            next,
            lease: LeaseWrite::Keep,
            settle: false,
            events: Vec::new(),
        })
    }
}

/// The answer to a claim that sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Applied: answer from the record.
    Replay,
    /// A live lease elsewhere.
    InProgress,
    /// Unknown, and not to be re-sent (no duplicate key).
    Unresolved,
    /// Another request under this reference.
    Conflict,
}

/// What a claim on an existing entry comes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Nothing to write.
    Return(Verdict),
    /// Write, then send the next attempt (`Then::Send`) or answer unresolved.
    Write(Box<Write>, Then),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Send,
    Unresolved,
}

/// One attempt's answer, as the journal records it.
#[derive(Debug, Clone)]
pub(crate) struct AttemptAnswer {
    pub outcome: Outcome,
    pub refund: Option<Refund>,
    pub already_applied: bool,
    pub http_status: Option<u16>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub elapsed_ms: i64,
}

impl AttemptAnswer {
    pub(crate) fn new(result: &Result<Refund, RefundError>, elapsed_ms: i64) -> AttemptAnswer {
        match result {
            Ok(refund) => AttemptAnswer {
                outcome: Outcome::Applied,
                refund: Some(refund.clone()),
                already_applied: false,
                http_status: None,
                error_kind: None,
                error_message: None,
                elapsed_ms,
            },
            Err(error) => AttemptAnswer {
                outcome: error.outcome(),
                refund: None,
                already_applied: error.outcome() == Outcome::Applied,
                http_status: error.http_status(),
                error_kind: Some(error.kind().name().to_owned()),
                error_message: Some(error.to_string()),
                elapsed_ms,
            },
        }
    }
}

/// Whether the provider deduplicates on the merchant reference, so that re-sending an unknown
/// outcome cannot refund twice.
pub(crate) fn deduplicates(provider: Provider) -> bool {
    provider.capabilities().idempotent_retries
}

/// Why an unknown outcome on a provider without a duplicate key is not re-sent, and what settles
/// it: reconcile's attribution where the provider has a read (AfterPay), a person otherwise.
pub(crate) fn no_duplicate_key_reason(entry: &Entry) -> String {
    if entry.provider.capabilities().record_read {
        return format!(
            "{provider} documents no duplicate key, so it is never re-sent blind: reconcile() \
             reads order {order} at {provider} and attributes the refund (exactly one refund \
             there that no journal entry accounts for, made after this attempt, with this \
             amount: applied; none, in a read made after the attempt's deadline plus the \
             settling delay: not applied, then sent again); what it cannot attribute is left \
             for resolve_manually, with the evidence",
            provider = entry.provider,
            order = entry.request.order_id,
        );
    }
    format!(
        "{provider} documents no duplicate key, so re-sending could refund twice: it is never \
         re-sent. Look for a refund with reference {reference} on order {order} at {provider}, \
         then call resolve_manually with what you found",
        provider = entry.provider,
        reference = entry.merchant_reference,
        order = entry.request.order_id,
    )
}

/// The event of a sender whose lease lapsed with its attempt in flight.
fn lost_event(entry: &Entry) -> NewEvent {
    let mut lost = NewEvent::new(EventKind::LeaseExpired);
    lost.attempt = Some(entry.attempts);
    lost.owner = entry.lease.as_ref().map(|lease| lease.owner.clone());
    lost.outcome = Some(Outcome::Unknown);
    lost.detail = Some(lost_sender_detail(entry));
    lost
}

fn lost_sender_detail(entry: &Entry) -> String {
    let owner = entry
        .lease
        .as_ref()
        .map_or("an unknown sender", |lease| lease.owner.as_str());
    format!(
        "attempt {} was recorded as sent by {owner}, whose lease ran out before it recorded an \
         answer (it stopped or stalled): the attempt may have been applied",
        entry.attempts
    )
}

fn reconcile_detail(entry: &Entry) -> String {
    if deduplicates(entry.provider) {
        format!(
            "re-sent with the same merchant reference, which {} deduplicates",
            entry.provider
        )
    } else {
        format!(
            "left unresolved by reconcile: {}",
            no_duplicate_key_reason(entry)
        )
    }
}

/// Decides what a caller (or reconciliation) who wants to send `fingerprint` under an existing
/// entry does, at the database's `now_ms`. See the crate docs' state machine.
pub(crate) fn claim(
    entry: &Entry,
    fingerprint: &str,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    mode: Mode,
) -> Result<Step, Refused> {
    if entry.fingerprint != fingerprint {
        return Ok(Step::Return(Verdict::Conflict));
    }
    if entry.state == EntryState::Applied {
        return Ok(Step::Return(Verdict::Replay));
    }
    if entry
        .lease
        .as_ref()
        .is_some_and(|lease| lease.is_live(now_ms) && lease.owner != owner)
    {
        return Ok(Step::Return(Verdict::InProgress));
    }
    let dedup = deduplicates(entry.provider);
    Ok(match entry.state {
        EntryState::Applied => Step::Return(Verdict::Replay),
        // The sender died (or stalled past its lease) between recording the intent and the
        // answer: the attempt may have been applied.
        EntryState::InFlight => {
            let lost = lost_event(entry);
            if dedup {
                let mut write = take(entry, Transition::LeaseTakenOver, owner, lease_ms, mode)?;
                write.events.insert(0, lost);
                Step::Write(Box::new(write), Then::Send)
            } else {
                // Not `ambiguous`: should the lost sender still record a definitive answer to
                // this same attempt, that answer settles the entry.
                let mut write = Write::new(entry, Transition::LeaseLapsed)?;
                write.lease = LeaseWrite::Release;
                write.events.push(lost);
                write.next.unresolved_reason = Some(if mode == Mode::Reconcile {
                    let note = reconcile_detail(entry);
                    let mut event = NewEvent::new(EventKind::Reconcile);
                    event.detail = Some(note.clone());
                    write.events.push(event);
                    format!("{}. {note}", lost_sender_detail(entry))
                } else {
                    format!(
                        "{}. {}",
                        lost_sender_detail(entry),
                        no_duplicate_key_reason(entry)
                    )
                });
                Step::Write(Box::new(write), Then::Unresolved)
            }
        }
        EntryState::Unknown if dedup => Step::Write(
            Box::new(take(
                entry,
                Transition::IntentRecorded,
                owner,
                lease_ms,
                mode,
            )?),
            Then::Send,
        ),
        EntryState::Unknown => {
            // Reconciliation notes once (in the reason and the history) that it looked and
            // why it left the entry alone.
            let note = reconcile_detail(entry);
            let noted = entry
                .unresolved_reason
                .as_deref()
                .is_some_and(|reason| reason.ends_with(&note));
            if mode == Mode::Reconcile && !noted {
                let mut write = Write::new(entry, Transition::ReconcileNoted)?;
                write.next.unresolved_reason = Some(match &entry.unresolved_reason {
                    Some(earlier) => format!("{earlier}. {note}"),
                    None => note.clone(),
                });
                let mut event = NewEvent::new(EventKind::Reconcile);
                event.detail = Some(note);
                write.events.push(event);
                Step::Write(Box::new(write), Then::Unresolved)
            } else {
                Step::Return(Verdict::Unresolved)
            }
        }
        EntryState::NotApplied => Step::Write(
            Box::new(take(
                entry,
                Transition::IntentRecorded,
                owner,
                lease_ms,
                mode,
            )?),
            Then::Send,
        ),
    })
}

/// Takes the lease and records the intent of the next attempt: `transition` is
/// [`Transition::IntentRecorded`] or [`Transition::LeaseTakenOver`].
fn take(
    entry: &Entry,
    transition: Transition,
    owner: &str,
    lease_ms: i64,
    mode: Mode,
) -> Result<Write, Refused> {
    // Anything but a not-applied entry may have been applied already: a refusal of the next
    // attempt proves nothing.
    let after_unknown = entry.state != EntryState::NotApplied;
    let mut write = Write::new(entry, transition)?;
    let next = &mut write.next;
    next.attempts = entry.attempts + 1;
    next.unresolved_reason = None;
    next.ambiguous = entry.ambiguous || after_unknown;
    next.lease = Some(Lease {
        owner: owner.to_owned(),
        expires_at_ms: 0,
    });
    write.lease = LeaseWrite::Take {
        owner: owner.to_owned(),
        ms: lease_ms,
    };
    if mode == Mode::Reconcile {
        let mut event = NewEvent::new(EventKind::Reconcile);
        event.detail = Some(reconcile_detail(entry));
        write.events.push(event);
    }
    write.events.push(intent(
        write.next.attempts,
        owner,
        after_unknown
            .then_some("re-sent with the same merchant reference after an unknown outcome"),
    ));
    Ok(write)
}

/// The intent event of attempt `attempt`.
pub(crate) fn intent(attempt: u32, owner: &str, detail: Option<&str>) -> NewEvent {
    let mut event = NewEvent::new(EventKind::Intent);
    event.attempt = Some(attempt);
    event.owner = Some(owner.to_owned());
    event.detail = detail.map(str::to_owned);
    event
}

/// Records the answer to attempt `attempt` sent by `owner` on the entry as it is now.
/// `retry_lease_ms` is `Some(lease)` when the sender will try again (it keeps the lease,
/// renewed), `None` when this answer ends its call.
///
/// Every answer goes into the history. The entry itself takes it when the answer is still the
/// latest word: the refund exists (that is final whoever learns it), or no later attempt was
/// started since this one (a sender whose lease ran out and was overtaken only adds history:
/// [`Transition::AnswerNoted`]).
pub(crate) fn answer(
    current: &Entry,
    attempt: u32,
    owner: &str,
    answer: &AttemptAnswer,
    retry_lease_ms: Option<i64>,
    mode: Mode,
) -> Result<Write, Refused> {
    let mut event = NewEvent::new(EventKind::Answer);
    event.attempt = Some(attempt);
    event.owner = Some(owner.to_owned());
    event.outcome = Some(answer.outcome);
    event.http_status = answer.http_status;
    event.error_kind = answer.error_kind.clone();
    event.detail = answer.error_message.clone();
    event.elapsed_ms = Some(answer.elapsed_ms);

    let ours = current
        .lease
        .as_ref()
        .is_some_and(|lease| lease.owner == owner);
    let release = if ours {
        LeaseWrite::Release
    } else {
        LeaseWrite::Keep
    };
    let overtaken = current.attempts != attempt;
    let transition = match answer.outcome {
        // Final whoever learns it, overtaken or not; already applied: only noted.
        Outcome::Applied => match next(Some(current.state), Transition::AnsweredApplied) {
            Ok(_) => Transition::AnsweredApplied,
            Err(_) => Transition::AnswerNoted,
        },
        _ if overtaken || current.state == EntryState::Applied => Transition::AnswerNoted,
        Outcome::Unknown => Transition::AnsweredUnknown,
        Outcome::NotApplied if current.ambiguous => Transition::RefusedAfterUnknown,
        Outcome::NotApplied => Transition::AnsweredNotApplied,
    };
    let mut write = Write::new(current, transition)?;
    write.events.push(event);
    let next = &mut write.next;
    next.wire_ms = current.wire_ms.saturating_add(answer.elapsed_ms);
    if transition == Transition::AnswerNoted {
        // Overtaken (another sender took the entry over after this one's lease ran out), or
        // already applied: this sender is done with it.
        if answer.outcome == Outcome::Applied {
            write.lease = release;
        }
        return Ok(write);
    }
    next.http_status = answer.http_status;
    next.error_kind = answer.error_kind.clone();
    next.error_message = answer.error_message.clone();
    match transition {
        Transition::AnsweredApplied => {
            write.settle = true;
            write.lease = release;
            next.ambiguous = false;
            next.already_applied = answer.already_applied;
            next.unresolved_reason = None;
            next.settled_by = Some(mode.settled_by());
            match &answer.refund {
                Some(refund) => {
                    next.provider_refund_id = refund.provider_refund_id.clone();
                    next.refund_status = Some(refund.status);
                    next.amount = Some(refund.amount);
                    next.refunded_total = refund.refunded_total;
                    next.captured_total = refund.captured_total;
                }
                None => {
                    // "It already exists": the provider's id is only known where the reference
                    // is the id (OpenApp caseId); the status is not known to be final.
                    next.provider_refund_id = current
                        .provider
                        .capabilities()
                        .refund_id_of(&current.merchant_reference);
                    next.refund_status = Some(refunds::RefundStatus::Pending);
                    next.amount = Some(current.request.amount);
                }
            }
            return Ok(write);
        }
        Transition::AnsweredUnknown => {
            next.ambiguous = true;
            next.unresolved_reason = Some(if retry_lease_ms.is_some() {
                format!(
                    "attempt {attempt}: outcome unknown; retrying with the same merchant reference"
                )
            } else if deduplicates(current.provider) {
                format!(
                    "the outcome is still unknown after attempt {attempt}: reconcile() re-sends \
                     it with the same merchant reference, which {} deduplicates",
                    current.provider
                )
            } else {
                no_duplicate_key_reason(current)
            });
        }
        Transition::RefusedAfterUnknown => {
            next.unresolved_reason = Some(format!(
                "attempt {attempt} was refused ({}), but an earlier attempt's outcome is unknown \
                 and may have been applied",
                answer.error_kind.as_deref().unwrap_or("error")
            ));
        }
        Transition::AnsweredNotApplied => {
            next.unresolved_reason = None;
            if retry_lease_ms.is_none() {
                write.settle = true;
                next.settled_by = Some(mode.settled_by());
            }
        }
        // Not the answer of the latest attempt: decided above.
        _ => {}
    }
    write.lease = match retry_lease_ms {
        Some(ms) if ours => LeaseWrite::Take {
            owner: owner.to_owned(),
            ms,
        },
        Some(_) => LeaseWrite::Keep,
        None => release,
    };
    Ok(write)
}

/// The intent of the next attempt by the sender that holds the entry after its retry wait;
/// `None` when it lost the entry meanwhile (its lease ran out and someone took over, or the
/// refund turned out applied).
pub(crate) fn next_attempt(
    current: &Entry,
    done: u32,
    owner: &str,
    lease_ms: i64,
) -> Option<Write> {
    let ours = current
        .lease
        .as_ref()
        .is_some_and(|lease| lease.owner == owner);
    if !ours || current.attempts != done {
        return None;
    }
    // Refused once applied (final) or in flight again (someone else's attempt).
    let mut write = Write::new(current, Transition::IntentRecorded).ok()?;
    write.next.attempts = done + 1;
    write.lease = LeaseWrite::Take {
        owner: owner.to_owned(),
        ms: lease_ms,
    };
    write.events.push(intent(done + 1, owner, Some("retry")));
    Some(write)
}

/// [`resolve_with`] with nothing found besides the outcome (for tests).
#[cfg(test)]
pub(crate) fn resolve(
    current: &Entry,
    transition: Transition,
    note: &str,
) -> Result<Write, Refused> {
    resolve_with(current, transition, note, &Found::default())
}

/// What an operator found at the provider besides the outcome: the refund's id and amount.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Found {
    pub provider_refund_id: Option<String>,
    pub amount: Option<refunds::Money>,
}

/// An operator's decision on an unresolved entry: `transition` is
/// [`Transition::ResolvedApplied`] or [`Transition::ResolvedNotApplied`]
/// ([`Transition::resolved`]), recording what the operator found: on an applied refund, its id
/// (else the one the provider's id rule gives, or the one on record) and its amount (else the
/// request's).
pub(crate) fn resolve_with(
    current: &Entry,
    transition: Transition,
    note: &str,
    found: &Found,
) -> Result<Write, Refused> {
    let mut write = Write::new(current, transition)?;
    write.lease = LeaseWrite::Release;
    write.settle = true;
    let next = &mut write.next;
    next.ambiguous = false;
    next.unresolved_reason = None;
    next.settled_by = Some(SettledBy::Manual);
    if next.state == EntryState::Applied {
        next.refund_status = Some(refunds::RefundStatus::Pending);
        next.amount = Some(found.amount.unwrap_or(current.request.amount));
        if let Some(id) = found.provider_refund_id.clone().or_else(|| {
            current
                .provider
                .capabilities()
                .refund_id_of(&current.merchant_reference)
        }) {
            next.provider_refund_id = Some(id);
        }
    }
    let mut recorded = Vec::new();
    if let Some(id) = &found.provider_refund_id {
        recorded.push(format!("refund id {id:?}"));
    }
    if let Some(amount) = found.amount {
        recorded.push(format!("amount {amount}"));
    }
    let mut event = NewEvent::new(EventKind::Manual);
    event.owner = Some("operator".to_owned());
    event.outcome = Some(next.outcome());
    event.detail = Some(if recorded.is_empty() {
        note.to_owned()
    } else {
        format!("{note} [recorded: {}]", recorded.join(", "))
    });
    write.events.push(event);
    Ok(write)
}

/// The provider's status of an applied refund moves.
pub(crate) fn status(current: &Entry, status: refunds::RefundStatus) -> Result<Write, Refused> {
    let mut write = Write::new(current, Transition::StatusRecorded)?;
    write.next.refund_status = Some(status);
    let mut event = NewEvent::new(EventKind::Status);
    event.outcome = Some(Outcome::Applied);
    event.detail = Some(format!(
        "{} -> {}",
        current
            .refund_status
            .map_or("none", crate::entry::status_str),
        crate::entry::status_str(status)
    ));
    write.events.push(event);
    Ok(write)
}

/// The event that raises a refund believed applied whose provider's record says failed.
fn failed_event(from: Option<RefundStatus>, found: &RecordedRefund) -> NewEvent {
    let mut event = NewEvent::new(EventKind::FailedAfterApplied);
    event.detail = Some(format!(
        "read from the provider's record: {} -> failed{}",
        from.map_or("none", crate::entry::status_str),
        found
            .failure_reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default()
    ));
    event
}

/// The refund found (or attributed) in the provider's record settles an unresolved entry:
/// applied, settled by reading, with the record's status, amount (where it is in the request's
/// currency) and refund id. An entry in flight (under a lapsed lease: the journal checks) also
/// gets its lost sender noted; a failed status is raised ([`EventKind::FailedAfterApplied`]).
pub(crate) fn read_applied(
    current: &Entry,
    found: &RecordedRefund,
    detail: String,
) -> Result<Write, Refused> {
    let mut write = Write::new(current, Transition::ReadApplied)?;
    write.lease = LeaseWrite::Release;
    write.settle = true;
    if current.state == EntryState::InFlight {
        write.events.push(lost_event(current));
    }
    let next = &mut write.next;
    next.ambiguous = false;
    next.unresolved_reason = None;
    next.already_applied = false;
    next.settled_by = Some(SettledBy::Read);
    next.refund_status = Some(found.status);
    next.amount = Some(
        found
            .amount
            .filter(|amount| amount.currency() == current.request.amount.currency())
            .unwrap_or(current.request.amount),
    );
    if let Some(id) = found.provider_refund_id.clone().or_else(|| {
        current
            .provider
            .capabilities()
            .refund_id_of(&current.merchant_reference)
    }) {
        next.provider_refund_id = Some(id);
    }
    let mut event = NewEvent::new(EventKind::Read);
    event.attempt = Some(current.attempts);
    event.outcome = Some(Outcome::Applied);
    event.detail = Some(detail);
    write.events.push(event);
    if found.status == RefundStatus::Failed {
        write.events.push(failed_event(None, found));
    }
    Ok(write)
}

/// A read of the provider's record proved the latest attempt of an unresolved entry not
/// applied (AfterPay: nothing unaccounted on the order, late enough): the next attempt's intent
/// is recorded under `owner`'s fresh lease in the same write, so the entry stays in flight (and
/// keeps the order's per-order lease) until it is sent. Not `ambiguous`: what was in doubt is
/// settled, so a refusal of the next attempt proves nothing was refunded.
pub(crate) fn read_not_applied(
    current: &Entry,
    owner: &str,
    lease_ms: i64,
    detail: String,
) -> Result<Write, Refused> {
    let mut write = Write::new(current, Transition::ReadNotAppliedResent)?;
    if current.state == EntryState::InFlight {
        write.events.push(lost_event(current));
    }
    let mut event = NewEvent::new(EventKind::Read);
    event.attempt = Some(current.attempts);
    event.outcome = Some(Outcome::NotApplied);
    event.detail = Some(detail);
    write.events.push(event);
    let next = &mut write.next;
    next.attempts = current.attempts + 1;
    next.ambiguous = false;
    next.unresolved_reason = None;
    next.lease = Some(Lease {
        owner: owner.to_owned(),
        expires_at_ms: 0,
    });
    write.lease = LeaseWrite::Take {
        owner: owner.to_owned(),
        ms: lease_ms,
    };
    write.events.push(intent(
        write.next.attempts,
        owner,
        Some("sent again: a read of the provider's record proved the earlier attempt not applied"),
    ));
    Ok(write)
}

/// A read of the provider's record that settles nothing leaves the entry unresolved with
/// `reason` (the evidence, or when a later read decides). Written only when the reason changes,
/// so that a reconciler running every minute does not fill the history; `None` when it is
/// already on record. An entry in flight (under a lapsed lease: the journal checks) becomes
/// unknown, its lost sender noted.
pub(crate) fn read_noted(current: &Entry, reason: String) -> Result<Option<Write>, Refused> {
    let mut event = NewEvent::new(EventKind::Read);
    event.attempt = Some(current.attempts);
    event.outcome = Some(Outcome::Unknown);
    event.detail = Some(reason.clone());
    let mut write = match current.state {
        EntryState::InFlight => {
            let mut write = Write::new(current, Transition::LeaseLapsed)?;
            write.lease = LeaseWrite::Release;
            write.events.push(lost_event(current));
            write
        }
        _ if current.unresolved_reason.as_deref() == Some(reason.as_str()) => {
            // Refused unless unknown, as when it is written.
            Write::new(current, Transition::ReconcileNoted)?;
            return Ok(None);
        }
        _ => Write::new(current, Transition::ReconcileNoted)?,
    };
    write.events.push(event);
    write.next.unresolved_reason = Some(reason);
    Ok(Some(write))
}

/// The final status of a pending refund, read from the provider's record: succeeded (a
/// [`EventKind::Read`] event) or failed ([`EventKind::FailedAfterApplied`]: the refund believed
/// applied did not go through). The provider's refund id is learnt if none was on record.
pub(crate) fn status_read(current: &Entry, found: &RecordedRefund) -> Result<Write, Refused> {
    let mut write = Write::new(current, Transition::StatusRead)?;
    write.next.refund_status = Some(found.status);
    if write.next.provider_refund_id.is_none() {
        write.next.provider_refund_id = found.provider_refund_id.clone();
    }
    if found.status == RefundStatus::Failed {
        write
            .events
            .push(failed_event(current.refund_status, found));
    } else {
        let mut event = NewEvent::new(EventKind::Read);
        event.outcome = Some(Outcome::Applied);
        event.detail = Some(format!(
            "read from the provider's record: {} -> {}",
            current
                .refund_status
                .map_or("none", crate::entry::status_str),
            crate::entry::status_str(found.status)
        ));
        write.events.push(event);
    }
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use refunds::{ErrorKind, MerchantReference, Money, RefundRequest};

    const OWNER: &str = "me/1";
    const LEASE: i64 = 60_000;

    fn entry(provider: Provider, state: EntryState) -> Entry {
        let request = RefundRequest::new(
            provider,
            "ORD-1",
            Money::parse("10.00", "EUR").unwrap(),
            MerchantReference::new("RF-1").unwrap(),
        );
        Entry {
            provider,
            merchant_reference: request.merchant_reference.clone(),
            fingerprint: "fp".into(),
            request,
            state,
            attempts: 1,
            ambiguous: false,
            lease: None,
            provider_refund_id: None,
            refund_status: None,
            amount: None,
            refunded_total: None,
            captured_total: None,
            already_applied: false,
            http_status: None,
            error_kind: None,
            error_message: None,
            unresolved_reason: None,
            settled_by: None,
            wire_ms: 0,
            created_at_ms: 0,
            updated_at_ms: 0,
            settled_at_ms: None,
            attempt_at_ms: Some(0),
            attempt_deadline_ms: Some(LEASE),
            version: 1,
        }
    }

    fn leased(mut entry: Entry, owner: &str, expires_at_ms: i64) -> Entry {
        entry.lease = Some(Lease {
            owner: owner.into(),
            expires_at_ms,
        });
        entry
    }

    fn failure(kind: ErrorKind, provider: Provider, status: u16) -> AttemptAnswer {
        AttemptAnswer::new(
            &Err(RefundError::new(kind)
                .with_provider(provider)
                .with_http_status(status)),
            5,
        )
    }

    /// The whole state machine, every (state, transition) pair: where [`next`] leads, or `__`
    /// where it refuses. Columns: no entry yet, then every [`EntryState`]. A new transition
    /// fails to compile here until its row is written.
    #[test]
    fn next_of_every_state_and_transition() {
        const __: Option<EntryState> = None;
        const IN_FLIGHT: Option<EntryState> = Some(EntryState::InFlight);
        const APPLIED: Option<EntryState> = Some(EntryState::Applied);
        const NOT_APPLIED: Option<EntryState> = Some(EntryState::NotApplied);
        const UNKNOWN: Option<EntryState> = Some(EntryState::Unknown);
        #[rustfmt::skip]
        fn expected(transition: Transition) -> [Option<EntryState>; 5] {
            use Transition as T;
            match transition {
                //                       no entry   in_flight  applied  not_applied  unknown
                T::Recorded =>            [IN_FLIGHT, __,        __,      __,          __],
                T::IntentRecorded =>      [__,        __,        __,      IN_FLIGHT,   IN_FLIGHT],
                T::LeaseTakenOver =>      [__,        IN_FLIGHT, __,      __,          __],
                T::LeaseLapsed =>         [__,        UNKNOWN,   __,      __,          __],
                T::AnsweredApplied =>     [__,        APPLIED,   __,      APPLIED,     APPLIED],
                T::AnsweredNotApplied =>  [__,        NOT_APPLIED, __,    NOT_APPLIED, NOT_APPLIED],
                T::AnsweredUnknown =>     [__,        UNKNOWN,   __,      UNKNOWN,     UNKNOWN],
                T::RefusedAfterUnknown => [__,        UNKNOWN,   __,      UNKNOWN,     UNKNOWN],
                T::AnswerNoted =>         [__,        IN_FLIGHT, APPLIED, NOT_APPLIED, UNKNOWN],
                T::ReconcileNoted =>      [__,        __,        __,      __,          UNKNOWN],
                T::ResolvedApplied =>     [__,        APPLIED,   __,      __,          APPLIED],
                T::ResolvedNotApplied =>  [__,        NOT_APPLIED, __,    __,          NOT_APPLIED],
                T::StatusRecorded =>      [__,        __,        APPLIED, __,          __],
                T::ReadApplied =>         [__,        APPLIED,   __,      __,          APPLIED],
                T::ReadNotAppliedResent => [__,       IN_FLIGHT, __,      __,          IN_FLIGHT],
                T::StatusRead =>          [__,        __,        APPLIED, __,          __],
            }
        }
        let from: Vec<Option<EntryState>> = std::iter::once(None)
            .chain(EntryState::ALL.map(Some))
            .collect();
        assert_eq!(from, [__, IN_FLIGHT, APPLIED, NOT_APPLIED, UNKNOWN]);
        for (i, transition) in Transition::ALL.into_iter().enumerate() {
            assert!(
                !Transition::ALL[..i].contains(&transition),
                "{transition:?} twice"
            );
            for (&from, to) in from.iter().zip(expected(transition)) {
                let next = next(from, transition);
                assert_eq!(next.ok(), to, "{transition:?} from {from:?}: {next:?}");
                if let Err(refused) = next {
                    assert_eq!((refused.from, refused.transition), (from, transition));
                    assert!(!refused.reason.is_empty());
                }
            }
        }
        assert_eq!(NEW_ENTRY, EntryState::InFlight);
    }

    /// What the journal tells a caller whose operation the state refuses.
    #[test]
    fn refusals_say_why() {
        let reason = |from, transition| next(Some(from), transition).unwrap_err().reason;
        assert_eq!(
            reason(EntryState::NotApplied, Transition::ResolvedApplied),
            "only an unresolved entry is resolved by hand"
        );
        assert_eq!(
            reason(EntryState::Unknown, Transition::StatusRecorded),
            "a provider status belongs to an applied refund"
        );
        assert!(reason(EntryState::Applied, Transition::IntentRecorded).contains("final"));
        assert_eq!(
            Transition::resolved(Outcome::Applied),
            Some(Transition::ResolvedApplied)
        );
        assert_eq!(Transition::resolved(Outcome::Unknown), None);
    }

    /// Every write a decision makes names its transition, and its state is [`next`]'s.
    #[test]
    fn writes_carry_their_transition() {
        let lost = leased(
            entry(Provider::Optty, EntryState::InFlight),
            "dead/1",
            1_000,
        );
        let Step::Write(write, _) = claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call).unwrap()
        else {
            panic!("re-sent");
        };
        assert_eq!(write.transition, Transition::LeaseTakenOver);
        let lost = leased(
            entry(Provider::AfterPay, EntryState::InFlight),
            "dead/1",
            1_000,
        );
        let Step::Write(write, _) = claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call).unwrap()
        else {
            panic!("marked unknown");
        };
        assert_eq!(write.transition, Transition::LeaseLapsed);
        let refused = entry(Provider::AfterPay, EntryState::NotApplied);
        let Step::Write(write, _) = claim(&refused, "fp", OWNER, 0, LEASE, Mode::Call).unwrap()
        else {
            panic!("sent again");
        };
        assert_eq!(write.transition, Transition::IntentRecorded);

        let current = leased(entry(Provider::Moyasar, EntryState::InFlight), OWNER, 10);
        let ok = AttemptAnswer::new(
            &Err(RefundError::new(ErrorKind::Duplicate).with_provider(Provider::Moyasar)),
            1,
        );
        let write = answer(&current, 1, OWNER, &ok, None, Mode::Call).unwrap();
        assert_eq!(write.transition, Transition::AnsweredApplied);
        assert!(write.settle);
        // The same answer again, on the applied entry: only its event, and the lease let go.
        let again = answer(&write.next, 1, OWNER, &ok, None, Mode::Call).unwrap();
        assert_eq!(again.transition, Transition::AnswerNoted);
        assert_eq!(again.next.state, EntryState::Applied);
        assert!(!again.settle);
        assert_eq!(again.lease, LeaseWrite::Release);
        assert_eq!(again.events.len(), 1);

        let applied = entry(Provider::Moyasar, EntryState::Applied);
        assert!(next_attempt(&leased(applied.clone(), OWNER, 10), 1, OWNER, LEASE).is_none());
        let error = resolve(&applied, Transition::ResolvedNotApplied, "n").unwrap_err();
        assert_eq!(error.from, Some(EntryState::Applied));
        let resolved = resolve(
            &entry(Provider::AfterPay, EntryState::Unknown),
            Transition::ResolvedApplied,
            "found at Riverty",
        )
        .unwrap();
        assert_eq!(resolved.next.state, EntryState::Applied);
        assert_eq!(resolved.events[0].outcome, Some(Outcome::Applied));
        assert!(status(&resolved.next, RefundStatus::Succeeded).is_ok());
        assert!(
            status(
                &entry(Provider::Optty, EntryState::Unknown),
                RefundStatus::Succeeded
            )
            .is_err()
        );
    }

    /// An operator's finding records the refund's id and amount on an applied refund, and says
    /// so in the event; without them, the request's amount and the provider's id rule.
    #[test]
    fn a_manual_resolution_records_what_the_operator_found() {
        let unknown = entry(Provider::AfterPay, EntryState::Unknown);
        let found = Found {
            provider_refund_id: Some("RN-7731".to_owned()),
            amount: Some(Money::parse("9.99", "EUR").unwrap()),
        };
        let write = resolve_with(
            &unknown,
            Transition::ResolvedApplied,
            "seen in Riverty's portal",
            &found,
        )
        .unwrap();
        assert_eq!(write.next.state, EntryState::Applied);
        assert_eq!(write.next.provider_refund_id.as_deref(), Some("RN-7731"));
        assert_eq!(write.next.amount, found.amount);
        assert_eq!(write.next.refund_status, Some(RefundStatus::Pending));
        assert_eq!(write.next.settled_by, Some(SettledBy::Manual));
        assert_eq!(
            write.events[0].detail.as_deref(),
            Some("seen in Riverty's portal [recorded: refund id \"RN-7731\", amount EUR 9.99]")
        );
        let plain = resolve(&unknown, Transition::ResolvedApplied, "found").unwrap();
        assert_eq!(plain.next.provider_refund_id, None);
        assert_eq!(plain.next.amount, Some(unknown.request.amount));
        assert_eq!(plain.events[0].detail.as_deref(), Some("found"));
        // Moyasar's refund id is the reference itself.
        let moyasar = resolve(
            &entry(Provider::Moyasar, EntryState::Unknown),
            Transition::ResolvedApplied,
            "found",
        )
        .unwrap();
        assert_eq!(
            moyasar.next.provider_refund_id,
            Provider::Moyasar
                .capabilities()
                .refund_id_of(&moyasar.next.merchant_reference)
        );
    }

    fn found(number: &str, status: RefundStatus, amount: Option<&str>) -> RecordedRefund {
        RecordedRefund {
            provider_refund_id: Some(number.to_owned()),
            status,
            amount: amount.map(|amount| Money::parse(amount, "EUR").unwrap()),
            created_at: Some("2023-09-27T12:00:00Z".to_owned()),
            failure_reason: (status == RefundStatus::Failed).then(|| "DECLINED".to_owned()),
        }
    }

    fn kinds(write: &Write) -> Vec<EventKind> {
        write.events.iter().map(|event| event.kind).collect()
    }

    /// A refund found (or attributed) in the record settles an unknown entry, or one whose
    /// sender was lost (noted): applied by reading, with the record's status, id and amount.
    #[test]
    fn a_refund_found_in_the_record_settles_the_entry_by_reading() {
        let unknown = entry(Provider::Moyasar, EntryState::Unknown);
        let write = read_applied(
            &unknown,
            &found("tx-1", RefundStatus::Succeeded, Some("10.00")),
            "found".into(),
        )
        .unwrap();
        assert_eq!(write.transition, Transition::ReadApplied);
        assert_eq!(write.next.state, EntryState::Applied);
        assert_eq!(write.next.settled_by, Some(SettledBy::Read));
        assert_eq!(write.next.provider_refund_id.as_deref(), Some("tx-1"));
        assert_eq!(write.next.refund_status, Some(RefundStatus::Succeeded));
        assert_eq!(write.next.amount, Some(unknown.request.amount));
        assert_eq!(write.next.attempts, 1, "nothing sent");
        assert!(write.settle && !write.next.ambiguous);
        assert_eq!(write.lease, LeaseWrite::Release);
        assert_eq!(kinds(&write), [EventKind::Read]);
        assert_eq!(write.events[0].outcome, Some(Outcome::Applied));

        // Another currency than the request's is not stored as the entry's amount.
        let mut other = found("tx-1", RefundStatus::Pending, None);
        other.amount = Some(Money::parse("10.00", "SAR").unwrap());
        let write = read_applied(&unknown, &other, "found".into()).unwrap();
        assert_eq!(write.next.amount, Some(unknown.request.amount));
        assert_eq!(write.next.refund_status, Some(RefundStatus::Pending));

        let lost = leased(entry(Provider::AfterPay, EntryState::InFlight), "dead/1", 5);
        let write = read_applied(
            &lost,
            &found("RN-1", RefundStatus::Succeeded, Some("10.00")),
            "attributed".into(),
        )
        .unwrap();
        assert_eq!(kinds(&write), [EventKind::LeaseExpired, EventKind::Read]);
        assert_eq!(write.next.provider_refund_id.as_deref(), Some("RN-1"));

        // Found failed: applied (the provider holds a failed refund under the reference), and
        // raised.
        let write = read_applied(
            &unknown,
            &found("tx-1", RefundStatus::Failed, Some("10.00")),
            "found".into(),
        )
        .unwrap();
        assert_eq!(write.next.refund_status, Some(RefundStatus::Failed));
        assert!(write.next.failed_after_applied());
        assert_eq!(
            kinds(&write),
            [EventKind::Read, EventKind::FailedAfterApplied]
        );
        assert_eq!(
            write.events[1].detail.as_deref(),
            Some("read from the provider's record: none -> failed: DECLINED")
        );

        for state in [EntryState::Applied, EntryState::NotApplied] {
            let refused = read_applied(
                &entry(Provider::Moyasar, state),
                &found("tx-1", RefundStatus::Succeeded, None),
                "found".into(),
            )
            .unwrap_err();
            assert_eq!(refused.transition, Transition::ReadApplied);
        }
    }

    /// Proven not applied by a read: the next attempt's intent in the same write, under a
    /// fresh lease, and no longer ambiguous (a refusal of it is definitive).
    #[test]
    fn a_read_that_proves_not_applied_sends_the_next_attempt() {
        let mut unknown = entry(Provider::AfterPay, EntryState::Unknown);
        unknown.ambiguous = true;
        unknown.unresolved_reason = Some("no duplicate key".into());
        let write = read_not_applied(&unknown, OWNER, LEASE, "none on the order".into()).unwrap();
        assert_eq!(write.transition, Transition::ReadNotAppliedResent);
        assert!(write.transition.records_intent());
        assert_eq!(write.next.state, EntryState::InFlight);
        assert_eq!(write.next.attempts, 2);
        assert!(!write.next.ambiguous);
        assert_eq!(write.next.unresolved_reason, None);
        assert_eq!(
            write.lease,
            LeaseWrite::Take {
                owner: OWNER.into(),
                ms: LEASE
            }
        );
        assert_eq!(kinds(&write), [EventKind::Read, EventKind::Intent]);
        assert_eq!(write.events[0].outcome, Some(Outcome::NotApplied));
        assert_eq!(write.events[0].attempt, Some(1));
        assert_eq!(write.events[1].attempt, Some(2));
        // Its answer is recorded as for any attempt: a refusal now settles it.
        let refused = failure(ErrorKind::OrderNotFound, Provider::AfterPay, 404);
        let answered = answer(&write.next, 2, OWNER, &refused, None, Mode::Reconcile).unwrap();
        assert_eq!(answered.transition, Transition::AnsweredNotApplied);
        assert!(answered.transition.records_answer());

        let lost = leased(entry(Provider::AfterPay, EntryState::InFlight), "dead/1", 5);
        let write = read_not_applied(&lost, OWNER, LEASE, "none".into()).unwrap();
        assert_eq!(
            kinds(&write),
            [EventKind::LeaseExpired, EventKind::Read, EventKind::Intent]
        );
        assert!(
            read_not_applied(
                &entry(Provider::AfterPay, EntryState::NotApplied),
                OWNER,
                LEASE,
                "x".into()
            )
            .is_err()
        );
    }

    /// A read that settles nothing notes its reason once; an entry whose sender was lost
    /// becomes unknown with it.
    #[test]
    fn a_read_that_settles_nothing_is_noted_when_its_reason_changes() {
        let unknown = entry(Provider::AfterPay, EntryState::Unknown);
        let write = read_noted(&unknown, "two refunds".into()).unwrap().unwrap();
        assert_eq!(write.transition, Transition::ReconcileNoted);
        assert_eq!(write.next.unresolved_reason.as_deref(), Some("two refunds"));
        assert_eq!(kinds(&write), [EventKind::Read]);
        assert_eq!(write.events[0].outcome, Some(Outcome::Unknown));
        assert_eq!(read_noted(&write.next, "two refunds".into()).unwrap(), None);
        assert!(
            read_noted(&write.next, "three refunds".into())
                .unwrap()
                .is_some()
        );

        let lost = leased(entry(Provider::AfterPay, EntryState::InFlight), "dead/1", 5);
        let write = read_noted(&lost, "not yet".into()).unwrap().unwrap();
        assert_eq!(write.transition, Transition::LeaseLapsed);
        assert_eq!(write.next.state, EntryState::Unknown);
        assert_eq!(write.lease, LeaseWrite::Release);
        assert_eq!(kinds(&write), [EventKind::LeaseExpired, EventKind::Read]);

        let applied = entry(Provider::AfterPay, EntryState::Applied);
        assert!(read_noted(&applied, "x".into()).is_err());
    }

    /// A pending refund's final status read from the record: succeeded (a read event), or
    /// failed (raised); the refund id learnt if none was on record.
    #[test]
    fn a_final_status_read_is_recorded_and_a_failure_raised() {
        let mut pending = entry(Provider::Optty, EntryState::Applied);
        pending.refund_status = Some(RefundStatus::Pending);
        let write = status_read(&pending, &found("RF-1", RefundStatus::Succeeded, None)).unwrap();
        assert_eq!(write.transition, Transition::StatusRead);
        assert_eq!(write.next.refund_status, Some(RefundStatus::Succeeded));
        assert_eq!(write.next.provider_refund_id.as_deref(), Some("RF-1"));
        assert!(!write.settle, "settled already");
        assert_eq!(kinds(&write), [EventKind::Read]);
        assert_eq!(
            write.events[0].detail.as_deref(),
            Some("read from the provider's record: pending -> succeeded")
        );

        pending.provider_refund_id = Some("KL-9".into());
        let write = status_read(&pending, &found("RF-1", RefundStatus::Failed, None)).unwrap();
        assert_eq!(
            write.next.provider_refund_id.as_deref(),
            Some("KL-9"),
            "kept"
        );
        assert!(write.next.failed_after_applied());
        assert_eq!(kinds(&write), [EventKind::FailedAfterApplied]);
        assert_eq!(
            write.events[0].detail.as_deref(),
            Some("read from the provider's record: pending -> failed: DECLINED")
        );
        let refused = status_read(
            &entry(Provider::Optty, EntryState::Unknown),
            &found("RF-1", RefundStatus::Succeeded, None),
        )
        .unwrap_err();
        assert_eq!(
            refused.reason,
            "a provider status belongs to an applied refund"
        );
    }

    /// Which transitions set an attempt's time and deadline, and which end an attempt.
    #[test]
    fn intents_and_answers_are_named() {
        let intents: Vec<Transition> = Transition::ALL
            .into_iter()
            .filter(|t| t.records_intent())
            .collect();
        assert_eq!(
            intents,
            [
                Transition::Recorded,
                Transition::IntentRecorded,
                Transition::LeaseTakenOver,
                Transition::ReadNotAppliedResent
            ]
        );
        let answers: Vec<Transition> = Transition::ALL
            .into_iter()
            .filter(|t| t.records_answer())
            .collect();
        assert_eq!(
            answers,
            [
                Transition::AnsweredApplied,
                Transition::AnsweredNotApplied,
                Transition::AnsweredUnknown,
                Transition::RefusedAfterUnknown
            ]
        );
    }

    #[test]
    fn another_request_under_the_reference_is_a_conflict_whatever_the_state() {
        for state in [
            EntryState::InFlight,
            EntryState::Applied,
            EntryState::NotApplied,
            EntryState::Unknown,
        ] {
            let step = claim(
                &entry(Provider::Optty, state),
                "other",
                OWNER,
                0,
                LEASE,
                Mode::Call,
            )
            .unwrap();
            assert_eq!(step, Step::Return(Verdict::Conflict), "{state}");
        }
    }

    #[test]
    fn applied_replays_and_a_live_lease_elsewhere_is_in_progress() {
        let applied = entry(Provider::AfterPay, EntryState::Applied);
        assert_eq!(
            claim(&applied, "fp", OWNER, 0, LEASE, Mode::Call).unwrap(),
            Step::Return(Verdict::Replay)
        );
        let in_flight = leased(
            entry(Provider::AfterPay, EntryState::InFlight),
            "other/7",
            1_000,
        );
        assert_eq!(
            claim(&in_flight, "fp", OWNER, 999, LEASE, Mode::Call).unwrap(),
            Step::Return(Verdict::InProgress)
        );
    }

    #[test]
    fn an_expired_lease_in_flight_is_resent_only_where_the_provider_deduplicates() {
        for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
            let lost = leased(entry(provider, EntryState::InFlight), "dead/1", 1_000);
            let Step::Write(write, Then::Send) =
                claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call).unwrap()
            else {
                panic!("{provider}: an expired in-flight entry is re-sent");
            };
            assert_eq!(write.next.attempts, 2);
            assert!(write.next.ambiguous);
            assert_eq!(write.events[0].kind, EventKind::LeaseExpired);
            assert_eq!(write.events[1].kind, EventKind::Intent);
        }
        let lost = leased(
            entry(Provider::AfterPay, EntryState::InFlight),
            "dead/1",
            1_000,
        );
        let Step::Write(write, Then::Unresolved) =
            claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call).unwrap()
        else {
            panic!("afterpay: an expired in-flight entry is never re-sent");
        };
        assert_eq!(write.next.state, EntryState::Unknown);
        assert_eq!(write.next.attempts, 1, "nothing new is sent");
        assert_eq!(write.lease, LeaseWrite::Release);
        // Once unknown, a call answers without writing; reconciliation notes its reason once.
        let unknown = write.next;
        assert_eq!(
            claim(&unknown, "fp", OWNER, 2_000, LEASE, Mode::Call).unwrap(),
            Step::Return(Verdict::Unresolved)
        );
        let Step::Write(noted, Then::Unresolved) =
            claim(&unknown, "fp", OWNER, 2_000, LEASE, Mode::Reconcile).unwrap()
        else {
            panic!("the first reconciliation notes why it left the entry");
        };
        assert_eq!(
            claim(&noted.next, "fp", OWNER, 3_000, LEASE, Mode::Reconcile).unwrap(),
            Step::Return(Verdict::Unresolved)
        );
    }

    #[test]
    fn a_stalled_afterpay_sender_that_answers_after_all_settles_its_entry() {
        // Its lease lapsed; another caller marked the entry unknown without sending.
        let stalled = leased(
            entry(Provider::AfterPay, EntryState::InFlight),
            "slow/1",
            1_000,
        );
        let Step::Write(marked, Then::Unresolved) =
            claim(&stalled, "fp", OWNER, 1_000, LEASE, Mode::Call).unwrap()
        else {
            panic!("marked unknown");
        };
        let mut marked = marked.next;
        marked.lease = None;
        // The stalled sender's definitive refusal of that same attempt settles it.
        let refused = failure(ErrorKind::OrderNotFound, Provider::AfterPay, 404);
        let write = answer(&marked, 1, "slow/1", &refused, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::NotApplied);
        assert!(write.settle);
        // And its success does too.
        let applied = AttemptAnswer::new(
            &Err(RefundError::new(ErrorKind::Duplicate).with_provider(Provider::AfterPay)),
            1,
        );
        let write = answer(&marked, 1, "slow/1", &applied, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::Applied);
    }

    #[test]
    fn not_applied_is_sent_again() {
        let refused = entry(Provider::AfterPay, EntryState::NotApplied);
        let Step::Write(write, Then::Send) =
            claim(&refused, "fp", OWNER, 0, LEASE, Mode::Call).unwrap()
        else {
            panic!("a not-applied entry is sent again");
        };
        assert_eq!(write.next.state, EntryState::InFlight);
        assert_eq!(write.next.attempts, 2);
    }

    #[test]
    fn a_refusal_after_an_unknown_outcome_stays_unknown() {
        let mut current = leased(entry(Provider::Moyasar, EntryState::InFlight), OWNER, 10);
        current.ambiguous = true;
        current.attempts = 2;
        let refused = failure(
            ErrorKind::ExceedsRefundable { limit: None },
            Provider::Moyasar,
            400,
        );
        let write = answer(&current, 2, OWNER, &refused, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::Unknown);
        assert!(!write.settle);
        assert_eq!(write.lease, LeaseWrite::Release);
    }

    #[test]
    fn a_late_answer_of_an_overtaken_sender_only_adds_history_unless_it_is_applied() {
        let mut current = leased(
            entry(Provider::Optty, EntryState::InFlight),
            "new/1",
            10_000,
        );
        current.attempts = 2;
        let late = failure(ErrorKind::Timeout, Provider::Optty, 504);
        let write = answer(&current, 1, "old/1", &late, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::InFlight);
        assert_eq!(write.lease, LeaseWrite::Keep);
        assert_eq!(write.events.len(), 1);

        let applied = AttemptAnswer::new(
            &Err(RefundError::new(ErrorKind::Duplicate).with_provider(Provider::Optty)),
            3,
        );
        let write = answer(&current, 1, "old/1", &applied, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::Applied);
        assert!(write.next.already_applied);
        assert_eq!(write.next.refund_status, Some(RefundStatus::Pending));
        assert_eq!(
            write.lease,
            LeaseWrite::Keep,
            "the lease is the other sender's"
        );
    }

    #[test]
    fn a_retry_keeps_the_lease_and_an_afterpay_unknown_says_why_it_is_not_resent() {
        let current = leased(entry(Provider::Optty, EntryState::InFlight), OWNER, 10);
        let unknown = failure(ErrorKind::ServerError, Provider::Optty, 502);
        let write = answer(&current, 1, OWNER, &unknown, Some(LEASE), Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::Unknown);
        assert_eq!(
            write.lease,
            LeaseWrite::Take {
                owner: OWNER.into(),
                ms: LEASE
            }
        );
        let next = next_attempt(&write.next, 1, OWNER, LEASE).expect("still ours");
        assert_eq!(next.next.attempts, 2);
        assert!(next_attempt(&write.next, 1, "other/2", LEASE).is_none());

        let current = leased(entry(Provider::AfterPay, EntryState::InFlight), OWNER, 10);
        let unknown = failure(ErrorKind::ServerError, Provider::AfterPay, 504);
        let write = answer(&current, 1, OWNER, &unknown, None, Mode::Call).unwrap();
        assert_eq!(write.next.state, EntryState::Unknown);
        assert!(
            write
                .next
                .unresolved_reason
                .as_deref()
                .unwrap()
                .contains("no duplicate key")
        );
    }
}
