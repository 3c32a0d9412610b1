//! [`JournalError`]: what can go wrong around a refund, rather than with it.

use refunds::{MerchantReference, Provider, RefundError};

use crate::entry::EntryState;

/// A failure of the journal itself, or a call it refuses before any I/O. A refund's own
/// failures (refused, outcome unknown) are not errors here: they are
/// [`JournaledRefund`](crate::JournaledRefund) variants, recorded in the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The database failed (connection, query, constraint). Whether a refund was sent is
    /// stated by the entry: nothing is sent before its intent is recorded.
    #[error("refund journal database: {0}")]
    Database(#[from] sqlx::Error),
    /// The journal's migrations could not be applied.
    #[error("refund journal migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request is invalid ([`RefundRequest::validate`](refunds::RefundRequest::validate)):
    /// nothing was recorded or sent.
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
    /// The task running the call was cancelled (the runtime is shutting down). The entry says
    /// what was recorded; an attempt in flight is reconciled once its lease lapses.
    #[error("refund journal call interrupted: {0}")]
    Interrupted(String),
    /// A row could not be read back (edited by hand, or written by a newer version).
    #[error("refund journal entry cannot be read: {0}")]
    Corrupt(String),
}
