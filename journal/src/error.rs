//! [`JournalError`]: what can go wrong around a refund, rather than with it.

use refunds::{MerchantReference, Provider, Refund, RefundError};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::entry::EntryState;

/// What a [`JournalError`] means for the money ([`JournalError::outcome`]): whether the failed
/// call left a request at the provider whose answer the journal does not hold.
///
/// Either way, calling again with the **same** request (same merchant reference) is safe: the
/// journal decides from what it recorded, and never sends an unknown outcome again to a
/// provider without a duplicate key. What is never safe after a failure is a new merchant
/// reference for the same refund.
///
/// Serializes as its [`as_str`](ErrorOutcome::as_str) form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOutcome {
    /// Nothing was sent whose answer is not on record. The call failed before it recorded an
    /// intent (the journal sends nothing before that, so no request left), or in a step that
    /// sends nothing (opening, reading, listing, [`resolve_manually`](crate::Journal::resolve_manually),
    /// [`record_status`](crate::Journal::record_status)), or between two attempts after the
    /// first one's answer was recorded (the next was not sent). Where the reference has an
    /// entry, it stands as recorded and says where the money is.
    NothingSent,
    /// A request was sent (or may have been) and its answer is not recorded: the database
    /// failed while recording it ([`JournalError::AnswerNotRecorded`], which carries the
    /// answer), or the call's task was cancelled ([`JournalError::Interrupted`]). The entry
    /// stays in flight under the call's lease; once it lapses, [`Journal::reconcile`](crate::Journal::reconcile)
    /// settles it like a crashed sender's (found by reading the provider's record, or re-sent
    /// under the same merchant reference where the provider deduplicates; on AfterPay
    /// attributed by reading the order, or left with the evidence for
    /// [`resolve_manually`](crate::Journal::resolve_manually)).
    SentNotRecorded,
}

impl ErrorOutcome {
    /// `nothing_sent` or `sent_not_recorded`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOutcome::NothingSent => "nothing_sent",
            ErrorOutcome::SentNotRecorded => "sent_not_recorded",
        }
    }
}

impl std::fmt::Display for ErrorOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of the journal itself, or a call it refuses before any I/O. A refund's own
/// failures (refused, outcome unknown) are not errors here: they are
/// [`JournaledRefund`](crate::JournaledRefund) variants, recorded in the journal.
///
/// Every error says what it means for the money: [`JournalError::outcome`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The database failed (connection, query, constraint, a full disk, a failed commit)
    /// before anything unrecorded was sent: [`ErrorOutcome::NothingSent`]. Nothing is sent
    /// before its intent is recorded, and a failure to record an answer is
    /// [`JournalError::AnswerNotRecorded`] instead. The transaction was rolled back whole; the
    /// journal stays usable, and the next call works once the database does.
    #[error(
        "refund journal database: {0} (nothing was sent: no request leaves before its intent \
         is recorded)"
    )]
    Database(#[from] sqlx::Error),
    /// A refund request was sent and the provider answered, but the database failed while the
    /// answer was being recorded: [`ErrorOutcome::SentNotRecorded`]. `answer` is what the
    /// provider said (an `Ok` refund means it exists). The entry stays in flight under this
    /// call's lease; once the lease lapses, [`Journal::reconcile`](crate::Journal::reconcile)
    /// settles it. Never refund it again under a new merchant reference.
    #[error(
        "{provider}: the refund with merchant reference {reference} was sent and answered \
         ({}), but the answer could not be recorded: {source}; the entry stays in flight until \
         its lease lapses, then reconcile() settles it",
        describe_answer(answer)
    )]
    AnswerNotRecorded {
        /// The provider.
        provider: Provider,
        /// The reference.
        reference: MerchantReference,
        /// The provider's answer, as the facade read it.
        answer: Box<Result<Refund, RefundError>>,
        /// Why it could not be recorded (usually [`JournalError::Database`]).
        source: Box<JournalError>,
    },
    /// The database could not be reached, or did not answer, within the journal's time limits
    /// ([`Database::acquire_timeout`](crate::Database::acquire_timeout),
    /// [`Database::statement_timeout`](crate::Database::statement_timeout),
    /// [`Database::startup_timeout`](crate::Database::startup_timeout)): a stopped or
    /// unreachable server, refused credentials, every connection busy, a lock held too long.
    /// [`ErrorOutcome::NothingSent`], as [`JournalError::Database`] (a failure to record an
    /// answer is [`JournalError::AnswerNotRecorded`] around it). It names the database (host,
    /// port and database name, or the SQLite file), what failed and the cause, never a
    /// password:
    ///
    /// `PostgreSQL at 127.0.0.1:5433/refunds: no connection within 5 s (connection refused)`
    ///
    /// The journal stays usable: the next call works once the database does.
    #[error("{database}: {problem} ({cause})")]
    Unavailable {
        /// Which database: `PostgreSQL at host:port/database` (or its Unix socket directory),
        /// `SQLite at <path>`, `SQLite in memory`.
        database: String,
        /// What failed: `no connection within 5 s`, `a statement ran past the 5 s statement
        /// limit`, `start-up (connect and migrate) not done within 10 s`, `the connection
        /// failed`, ...
        problem: String,
        /// Why, as the server or the operating system said (`connection refused`, `password
        /// authentication failed for user "refunds"`, `database is locked`, ...).
        cause: String,
    },
    /// The journal's migrations could not be applied.
    #[error("refund journal migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request is invalid ([`RefundRequest::validate`](refunds::RefundRequest::validate)),
    /// or a manual [`Resolution`](crate::Resolution) is (an amount in another currency, a
    /// refund id on a refund found not applied): nothing was recorded or sent.
    #[error("refused before any I/O: {0}")]
    Invalid(RefundError),
    /// The merchant reference is already journaled for a different request (order, amount,
    /// items or text differ): nothing was sent. A new refund needs a new merchant reference.
    #[error(
        "{provider}: merchant reference {reference} is already journaled for a different refund \
         request (fingerprint {recorded}, this request {requested}); nothing was sent: a new \
         refund needs a new merchant reference"
    )]
    Conflict {
        /// The provider.
        provider: Provider,
        /// The reference.
        reference: MerchantReference,
        /// The fingerprint on record.
        recorded: String,
        /// This request's fingerprint.
        requested: String,
    },
    /// (AfterPay) Another refund on the same order is in flight or unresolved, so this one is
    /// refused before any I/O: nothing was recorded for it (or, for a reference already
    /// journaled, its entry stays as it was) and nothing was sent. Call again once `holder`
    /// settles: an attempt in flight settles within its call; an unknown outcome is settled by
    /// [`Journal::reconcile`](crate::Journal::reconcile) (or by hand).
    ///
    /// Riverty echoes none of our references in its record, so the journal tells its refunds
    /// on an order apart only if at most one of them is unresolved at a time: the **per-order
    /// lease**, enforced by the database (a unique index over the AfterPay entries in flight or
    /// unknown, per order) for every replica alike. See
    /// [reconciliation](crate#reconciliation-by-provider).
    #[error(
        "{provider}: another refund on order {order_id} is in flight or unresolved{}; refund \
         {reference} was refused before any I/O (nothing was sent): at most one {provider} \
         refund per order is unresolved at a time, so that reconcile() can attribute it; call \
         again once that one is settled",
        holder.as_ref().map(|holder| format!(" ({holder})")).unwrap_or_default()
    )]
    OrderBusy {
        /// The provider.
        provider: Provider,
        /// The order.
        order_id: String,
        /// The refused refund's merchant reference.
        reference: MerchantReference,
        /// The merchant reference of the refund holding the order, where it could be read.
        holder: Option<MerchantReference>,
    },
    /// There is no entry for this provider and merchant reference.
    #[error("{provider}: no journal entry for merchant reference {reference}")]
    NotFound {
        /// The provider.
        provider: Provider,
        /// The reference.
        reference: MerchantReference,
    },
    /// The entry is not in a state that allows the operation (e.g. a manual resolution of an
    /// entry that is not unresolved, a status for a refund that is not applied).
    #[error("{provider}: merchant reference {reference} is {state}: {reason}")]
    WrongState {
        /// The provider.
        provider: Provider,
        /// The reference.
        reference: MerchantReference,
        /// Its state.
        state: EntryState,
        /// Why the operation does not apply.
        reason: String,
    },
    /// The configuration is unusable (e.g. an invalid PostgreSQL schema name).
    #[error("refund journal configuration: {0}")]
    Config(String),
    /// The task running the call was cancelled (the runtime is shutting down):
    /// [`ErrorOutcome::SentNotRecorded`], as a request may have left. The entry says what was
    /// recorded; an attempt in flight is reconciled once its lease lapses.
    #[error("refund journal call interrupted: {0}")]
    Interrupted(String),
    /// A row could not be read back (edited by hand, or written by a newer version).
    #[error("refund journal entry cannot be read: {0}")]
    Corrupt(String),
}

impl JournalError {
    /// What this error means for the money: [`ErrorOutcome::NothingSent`] (no request left
    /// whose answer is not recorded: every error but two), or
    /// [`ErrorOutcome::SentNotRecorded`] (a request was sent and its answer is not recorded:
    /// [`JournalError::AnswerNotRecorded`], and [`JournalError::Interrupted`], where it may have
    /// been sent). [`Journal::reconcile`](crate::Journal::reconcile) settles the second once the
    /// call's lease lapses.
    pub fn outcome(&self) -> ErrorOutcome {
        match self {
            JournalError::AnswerNotRecorded { .. } | JournalError::Interrupted(_) => {
                ErrorOutcome::SentNotRecorded
            }
            JournalError::Database(_)
            | JournalError::Unavailable { .. }
            | JournalError::Migrate(_)
            | JournalError::Invalid(_)
            | JournalError::Conflict { .. }
            | JournalError::OrderBusy { .. }
            | JournalError::NotFound { .. }
            | JournalError::WrongState { .. }
            | JournalError::Config(_)
            | JournalError::Corrupt(_) => ErrorOutcome::NothingSent,
        }
    }
}

/// Serializes as `{"outcome": "nothing_sent", "message": "..."}`: its
/// [`outcome`](JournalError::outcome) and its `Display` (which holds no secrets: a database
/// error names no password, a refund error holds no credentials).
impl Serialize for JournalError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("JournalError", 2)?;
        s.serialize_field("outcome", &self.outcome())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

/// An answer in a few words: `applied, refund id X` or the error.
fn describe_answer(answer: &Result<Refund, RefundError>) -> String {
    match answer {
        Ok(refund) => match &refund.provider_refund_id {
            Some(id) => format!("applied, refund id {id:?}"),
            None => "applied".to_owned(),
        },
        Err(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refunds::{ErrorKind, Money, RawAnswer, RefundStatus};

    fn reference() -> MerchantReference {
        MerchantReference::new("RF-1").unwrap()
    }

    fn database() -> JournalError {
        JournalError::Database(sqlx::Error::Protocol("disk is full".into()))
    }

    #[test]
    fn only_an_unrecorded_answer_or_an_interrupted_call_may_have_sent_something() {
        let nothing = [
            database(),
            JournalError::Invalid(RefundError::invalid("amount", "must be positive")),
            JournalError::Conflict {
                provider: Provider::Moyasar,
                reference: reference(),
                recorded: "a".into(),
                requested: "b".into(),
            },
            JournalError::NotFound {
                provider: Provider::Moyasar,
                reference: reference(),
            },
            JournalError::OrderBusy {
                provider: Provider::AfterPay,
                order_id: "ORD-1".into(),
                reference: reference(),
                holder: Some(MerchantReference::new("RF-0").unwrap()),
            },
            JournalError::WrongState {
                provider: Provider::Moyasar,
                reference: reference(),
                state: EntryState::Applied,
                reason: "r".into(),
            },
            JournalError::Config("c".into()),
            JournalError::Corrupt("c".into()),
            JournalError::Unavailable {
                database: "PostgreSQL at 127.0.0.1:5433/refunds".into(),
                problem: "no connection within 5 s".into(),
                cause: "connection refused".into(),
            },
        ];
        for error in &nothing {
            assert_eq!(error.outcome(), ErrorOutcome::NothingSent, "{error:?}");
        }
        assert!(database().to_string().contains("nothing was sent"));

        let refund = Refund {
            provider: Provider::Moyasar,
            provider_refund_id: Some("rf\0id".into()),
            status: RefundStatus::Succeeded,
            amount: Money::parse("1.00", "SAR").unwrap(),
            refunded_total: None,
            captured_total: None,
            raw: RawAnswer::default(),
        };
        let unrecorded = JournalError::AnswerNotRecorded {
            provider: Provider::Moyasar,
            reference: reference(),
            answer: Box::new(Ok(refund)),
            source: Box::new(database()),
        };
        assert_eq!(unrecorded.outcome(), ErrorOutcome::SentNotRecorded);
        let text = unrecorded.to_string();
        assert!(text.contains("was sent and answered (applied"), "{text}");
        assert!(text.contains("reconcile() settles it"), "{text}");
        let refused = JournalError::AnswerNotRecorded {
            provider: Provider::Moyasar,
            reference: reference(),
            answer: Box::new(Err(RefundError::new(ErrorKind::OrderNotFound))),
            source: Box::new(database()),
        };
        assert_eq!(refused.outcome(), ErrorOutcome::SentNotRecorded);
        assert_eq!(
            JournalError::Interrupted("cancelled".into()).outcome(),
            ErrorOutcome::SentNotRecorded
        );
        assert_eq!(
            ErrorOutcome::SentNotRecorded.to_string(),
            "sent_not_recorded"
        );
    }
}
