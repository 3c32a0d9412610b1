//! The state machine of an entry, as pure functions: given the entry as read (with the
//! database's clock) and what happened, what to write. The store applies a [`Write`] only if
//! the entry's version is still the one read (optimistic concurrency), so two writers never
//! both act on the same state; the loser reads again and decides again.

use refunds::{Outcome, Provider, Refund, RefundError};

use crate::entry::{Entry, EntryState, EventKind, Lease, SettledBy};

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

/// A change to one entry: its new columns (timestamps, lease expiry and version are filled in
/// by the database), and the events to append in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    pub next: Entry,
    pub lease: LeaseWrite,
    /// `settled_at_ms` becomes the database's now.
    pub settle: bool,
    pub events: Vec<NewEvent>,
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
                error_kind: Some(kind_name(error.kind()).to_owned()),
                error_message: Some(error.to_string()),
                elapsed_ms,
            },
        }
    }
}

/// The error kind's column value.
pub(crate) fn kind_name(kind: &refunds::ErrorKind) -> &'static str {
    use refunds::ErrorKind as K;
    match kind {
        K::InvalidRequest { .. } => "invalid_request",
        K::InvalidConfig { .. } => "invalid_config",
        K::Unauthorized => "unauthorized",
        K::Forbidden => "forbidden",
        K::OrderNotFound => "order_not_found",
        K::Duplicate => "duplicate",
        K::ExceedsRefundable { .. } => "exceeds_refundable",
        K::InProgress => "in_progress",
        K::Transient => "transient",
        K::ServerError => "server_error",
        K::Timeout => "timeout",
        K::Protocol => "protocol",
        _ => "other",
    }
}

/// Whether the provider deduplicates on the merchant reference, so that re-sending an unknown
/// outcome cannot refund twice.
pub(crate) fn deduplicates(provider: Provider) -> bool {
    provider.capabilities().idempotent_retries
}

/// Why an unknown outcome on a provider without a duplicate key stays unresolved.
pub(crate) fn no_duplicate_key_reason(entry: &Entry) -> String {
    format!(
        "{provider} documents no duplicate key, so re-sending could refund twice: it is never \
         re-sent. Look for a refund with reference {reference} on order {order} at {provider}, \
         then call resolve_manually with what you found",
        provider = entry.provider,
        reference = entry.merchant_reference,
        order = entry.request.order_id,
    )
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
) -> Step {
    if entry.fingerprint != fingerprint {
        return Step::Return(Verdict::Conflict);
    }
    if entry.state == EntryState::Applied {
        return Step::Return(Verdict::Replay);
    }
    if entry
        .lease
        .as_ref()
        .is_some_and(|lease| lease.is_live(now_ms) && lease.owner != owner)
    {
        return Step::Return(Verdict::InProgress);
    }
    let dedup = deduplicates(entry.provider);
    match entry.state {
        EntryState::Applied => Step::Return(Verdict::Replay),
        // The sender died (or stalled past its lease) between recording the intent and the
        // answer: the attempt may have been applied.
        EntryState::InFlight => {
            let mut lost = NewEvent::new(EventKind::LeaseExpired);
            lost.attempt = Some(entry.attempts);
            lost.owner = entry.lease.as_ref().map(|lease| lease.owner.clone());
            lost.outcome = Some(Outcome::Unknown);
            lost.detail = Some(lost_sender_detail(entry));
            if dedup {
                let mut write = take(entry, owner, lease_ms, mode, true);
                write.events.insert(0, lost);
                Step::Write(Box::new(write), Then::Send)
            } else {
                // Not `ambiguous`: should the lost sender still record a definitive answer to
                // this same attempt, that answer settles the entry.
                let mut next = entry.clone();
                next.state = EntryState::Unknown;
                let mut events = vec![lost];
                next.unresolved_reason = Some(if mode == Mode::Reconcile {
                    let note = reconcile_detail(entry);
                    let mut event = NewEvent::new(EventKind::Reconcile);
                    event.detail = Some(note.clone());
                    events.push(event);
                    format!("{}. {note}", lost_sender_detail(entry))
                } else {
                    format!(
                        "{}. {}",
                        lost_sender_detail(entry),
                        no_duplicate_key_reason(entry)
                    )
                });
                Step::Write(
                    Box::new(Write {
                        next,
                        lease: LeaseWrite::Release,
                        settle: false,
                        events,
                    }),
                    Then::Unresolved,
                )
            }
        }
        EntryState::Unknown if dedup => Step::Write(
            Box::new(take(entry, owner, lease_ms, mode, true)),
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
                let mut next = entry.clone();
                next.unresolved_reason = Some(match &entry.unresolved_reason {
                    Some(earlier) => format!("{earlier}. {note}"),
                    None => note.clone(),
                });
                let mut event = NewEvent::new(EventKind::Reconcile);
                event.detail = Some(note);
                Step::Write(
                    Box::new(Write {
                        next,
                        lease: LeaseWrite::Keep,
                        settle: false,
                        events: vec![event],
                    }),
                    Then::Unresolved,
                )
            } else {
                Step::Return(Verdict::Unresolved)
            }
        }
        EntryState::NotApplied => Step::Write(
            Box::new(take(entry, owner, lease_ms, mode, false)),
            Then::Send,
        ),
    }
}

/// Takes the lease and records the intent of the next attempt.
fn take(entry: &Entry, owner: &str, lease_ms: i64, mode: Mode, after_unknown: bool) -> Write {
    let mut next = entry.clone();
    next.state = EntryState::InFlight;
    next.attempts = entry.attempts + 1;
    next.unresolved_reason = None;
    // An earlier attempt may have been applied: a refusal of this one proves nothing.
    next.ambiguous = entry.ambiguous || after_unknown;
    next.lease = Some(Lease {
        owner: owner.to_owned(),
        expires_at_ms: 0,
    });
    let mut events = Vec::new();
    if mode == Mode::Reconcile {
        let mut event = NewEvent::new(EventKind::Reconcile);
        event.detail = Some(reconcile_detail(entry));
        events.push(event);
    }
    events.push(intent(
        next.attempts,
        owner,
        after_unknown
            .then_some("re-sent with the same merchant reference after an unknown outcome"),
    ));
    Write {
        next,
        lease: LeaseWrite::Take {
            owner: owner.to_owned(),
            ms: lease_ms,
        },
        settle: false,
        events,
    }
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
/// started since this one (a sender whose lease ran out and was overtaken only adds history).
pub(crate) fn answer(
    current: &Entry,
    attempt: u32,
    owner: &str,
    answer: &AttemptAnswer,
    retry_lease_ms: Option<i64>,
    mode: Mode,
) -> Write {
    let mut event = NewEvent::new(EventKind::Answer);
    event.attempt = Some(attempt);
    event.owner = Some(owner.to_owned());
    event.outcome = Some(answer.outcome);
    event.http_status = answer.http_status;
    event.error_kind = answer.error_kind.clone();
    event.detail = answer.error_message.clone();
    event.elapsed_ms = Some(answer.elapsed_ms);

    let mut next = current.clone();
    next.wire_ms = current.wire_ms.saturating_add(answer.elapsed_ms);
    let ours = current
        .lease
        .as_ref()
        .is_some_and(|lease| lease.owner == owner);
    let release = || {
        if ours {
            LeaseWrite::Release
        } else {
            LeaseWrite::Keep
        }
    };

    if answer.outcome == Outcome::Applied {
        let mut settle = false;
        if current.state != EntryState::Applied {
            settle = true;
            next.state = EntryState::Applied;
            next.ambiguous = false;
            next.already_applied = answer.already_applied;
            next.unresolved_reason = None;
            next.settled_by = Some(mode.settled_by());
            next.http_status = answer.http_status;
            next.error_kind = answer.error_kind.clone();
            next.error_message = answer.error_message.clone();
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
                    next.provider_refund_id = (current.provider == Provider::OpenApp)
                        .then(|| current.merchant_reference.as_str().to_owned());
                    next.refund_status = Some(refunds::RefundStatus::Pending);
                    next.amount = Some(current.request.amount);
                }
            }
        }
        return Write {
            next,
            lease: release(),
            settle,
            events: vec![event],
        };
    }

    if current.attempts != attempt || current.state == EntryState::Applied {
        // Overtaken: another sender took the entry over after this one's lease ran out.
        return Write {
            next,
            lease: LeaseWrite::Keep,
            settle: false,
            events: vec![event],
        };
    }

    next.http_status = answer.http_status;
    next.error_kind = answer.error_kind.clone();
    next.error_message = answer.error_message.clone();
    let mut settle = false;
    match answer.outcome {
        Outcome::Unknown => {
            next.state = EntryState::Unknown;
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
        Outcome::NotApplied if current.ambiguous => {
            next.state = EntryState::Unknown;
            next.unresolved_reason = Some(format!(
                "attempt {attempt} was refused ({}), but an earlier attempt's outcome is unknown \
                 and may have been applied",
                answer.error_kind.as_deref().unwrap_or("error")
            ));
        }
        Outcome::NotApplied => {
            next.state = EntryState::NotApplied;
            next.unresolved_reason = None;
            if retry_lease_ms.is_none() {
                settle = true;
                next.settled_by = Some(mode.settled_by());
            }
        }
        Outcome::Applied => unreachable!("handled above"),
    }
    let lease = match retry_lease_ms {
        Some(ms) if ours => LeaseWrite::Take {
            owner: owner.to_owned(),
            ms,
        },
        Some(_) => LeaseWrite::Keep,
        None => release(),
    };
    Write {
        next,
        lease,
        settle,
        events: vec![event],
    }
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
    if !ours || current.attempts != done || current.state == EntryState::Applied {
        return None;
    }
    let mut next = current.clone();
    next.state = EntryState::InFlight;
    next.attempts = done + 1;
    Some(Write {
        next,
        lease: LeaseWrite::Take {
            owner: owner.to_owned(),
            ms: lease_ms,
        },
        settle: false,
        events: vec![intent(done + 1, owner, Some("retry"))],
    })
}

/// An operator's decision on an unresolved entry.
pub(crate) fn resolve(current: &Entry, outcome: Outcome, note: &str) -> Write {
    let mut next = current.clone();
    next.ambiguous = false;
    next.unresolved_reason = None;
    next.settled_by = Some(SettledBy::Manual);
    match outcome {
        Outcome::Applied => {
            next.state = EntryState::Applied;
            next.refund_status = Some(refunds::RefundStatus::Pending);
            next.amount = Some(current.request.amount);
            if current.provider == Provider::OpenApp {
                next.provider_refund_id = Some(current.merchant_reference.as_str().to_owned());
            }
        }
        _ => next.state = EntryState::NotApplied,
    }
    let mut event = NewEvent::new(EventKind::Manual);
    event.owner = Some("operator".to_owned());
    event.outcome = Some(outcome);
    event.detail = Some(note.to_owned());
    Write {
        next,
        lease: LeaseWrite::Release,
        settle: true,
        events: vec![event],
    }
}

/// The provider's status of an applied refund moves.
pub(crate) fn status(current: &Entry, status: refunds::RefundStatus) -> Write {
    let mut next = current.clone();
    next.refund_status = Some(status);
    let mut event = NewEvent::new(EventKind::Status);
    event.outcome = Some(Outcome::Applied);
    event.detail = Some(format!(
        "{} -> {}",
        current
            .refund_status
            .map_or("none", crate::entry::status_str),
        crate::entry::status_str(status)
    ));
    Write {
        next,
        lease: LeaseWrite::Keep,
        settle: false,
        events: vec![event],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refunds::{ErrorKind, MerchantReference, Money, RefundRequest, RefundStatus};

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
            );
            assert_eq!(step, Step::Return(Verdict::Conflict), "{state}");
        }
    }

    #[test]
    fn applied_replays_and_a_live_lease_elsewhere_is_in_progress() {
        let applied = entry(Provider::AfterPay, EntryState::Applied);
        assert_eq!(
            claim(&applied, "fp", OWNER, 0, LEASE, Mode::Call),
            Step::Return(Verdict::Replay)
        );
        let in_flight = leased(
            entry(Provider::AfterPay, EntryState::InFlight),
            "other/7",
            1_000,
        );
        assert_eq!(
            claim(&in_flight, "fp", OWNER, 999, LEASE, Mode::Call),
            Step::Return(Verdict::InProgress)
        );
    }

    #[test]
    fn an_expired_lease_in_flight_is_resent_only_where_the_provider_deduplicates() {
        for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
            let lost = leased(entry(provider, EntryState::InFlight), "dead/1", 1_000);
            let Step::Write(write, Then::Send) =
                claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call)
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
            claim(&lost, "fp", OWNER, 1_000, LEASE, Mode::Call)
        else {
            panic!("afterpay: an expired in-flight entry is never re-sent");
        };
        assert_eq!(write.next.state, EntryState::Unknown);
        assert_eq!(write.next.attempts, 1, "nothing new is sent");
        assert_eq!(write.lease, LeaseWrite::Release);
        // Once unknown, a call answers without writing; reconciliation notes its reason once.
        let unknown = write.next;
        assert_eq!(
            claim(&unknown, "fp", OWNER, 2_000, LEASE, Mode::Call),
            Step::Return(Verdict::Unresolved)
        );
        let Step::Write(noted, Then::Unresolved) =
            claim(&unknown, "fp", OWNER, 2_000, LEASE, Mode::Reconcile)
        else {
            panic!("the first reconciliation notes why it left the entry");
        };
        assert_eq!(
            claim(&noted.next, "fp", OWNER, 3_000, LEASE, Mode::Reconcile),
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
            claim(&stalled, "fp", OWNER, 1_000, LEASE, Mode::Call)
        else {
            panic!("marked unknown");
        };
        let mut marked = marked.next;
        marked.lease = None;
        // The stalled sender's definitive refusal of that same attempt settles it.
        let refused = failure(ErrorKind::OrderNotFound, Provider::AfterPay, 404);
        let write = answer(&marked, 1, "slow/1", &refused, None, Mode::Call);
        assert_eq!(write.next.state, EntryState::NotApplied);
        assert!(write.settle);
        // And its success does too.
        let applied = AttemptAnswer::new(
            &Err(RefundError::new(ErrorKind::Duplicate).with_provider(Provider::AfterPay)),
            1,
        );
        let write = answer(&marked, 1, "slow/1", &applied, None, Mode::Call);
        assert_eq!(write.next.state, EntryState::Applied);
    }

    #[test]
    fn not_applied_is_sent_again() {
        let refused = entry(Provider::AfterPay, EntryState::NotApplied);
        let Step::Write(write, Then::Send) = claim(&refused, "fp", OWNER, 0, LEASE, Mode::Call)
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
        let write = answer(&current, 2, OWNER, &refused, None, Mode::Call);
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
        let write = answer(&current, 1, "old/1", &late, None, Mode::Call);
        assert_eq!(write.next.state, EntryState::InFlight);
        assert_eq!(write.lease, LeaseWrite::Keep);
        assert_eq!(write.events.len(), 1);

        let applied = AttemptAnswer::new(
            &Err(RefundError::new(ErrorKind::Duplicate).with_provider(Provider::Optty)),
            3,
        );
        let write = answer(&current, 1, "old/1", &applied, None, Mode::Call);
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
        let write = answer(&current, 1, OWNER, &unknown, Some(LEASE), Mode::Call);
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
        let write = answer(&current, 1, OWNER, &unknown, None, Mode::Call);
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
