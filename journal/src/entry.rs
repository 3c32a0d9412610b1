//! What the journal holds: one [`Entry`] per (provider, merchant reference) and its
//! [`Event`]s, the audit trail.

use std::fmt;
use std::str::FromStr;

use refunds::{
    MerchantReference, Money, Outcome, Provider, RawAnswer, Refund, RefundRequest, RefundStatus,
};
use serde::Serialize;

/// Where a journal entry stands. See the state machine in the [crate docs](crate#an-entrys-state-machine).
///
/// Stored as text (the `state` column) through `sqlx::Type`: `in_flight`, `applied`,
/// `not_applied`, `unknown`, as [`EntryState::as_str`] writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// An attempt was recorded as about to be sent and its answer is not recorded yet: the
    /// lease holder is sending it, or died doing so (then the lease expires).
    InFlight,
    /// The provider said the refund exists (or an operator did): final, answered from the
    /// record from then on.
    Applied,
    /// Nothing was refunded: every attempt was refused or never reached the provider. A new
    /// call with the same request sends it again (safe: nothing was applied).
    NotApplied,
    /// It may have been applied: an ambiguous answer (time-out, dropped connection, 5xx,
    /// unreadable answer), or a refusal after an ambiguous attempt, or a sender lost before it
    /// recorded the answer. Settled by [`Journal::reconcile`](crate::Journal::reconcile): by
    /// reading the provider's record (Optty, Moyasar; AfterPay by attribution), by re-sending
    /// where the provider deduplicates; what neither settles waits for
    /// [`Journal::resolve_manually`](crate::Journal::resolve_manually).
    Unknown,
}

impl EntryState {
    /// Every state.
    pub const ALL: [EntryState; 4] = [
        EntryState::InFlight,
        EntryState::Applied,
        EntryState::NotApplied,
        EntryState::Unknown,
    ];

    /// The column value: `in_flight`, `applied`, `not_applied`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::InFlight => "in_flight",
            EntryState::Applied => "applied",
            EntryState::NotApplied => "not_applied",
            EntryState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown entry state {s:?}"))
    }
}

/// Who settled an entry. Stored as text (the `settled_by` column) through `sqlx::Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SettledBy {
    /// The provider's answer to a [`Journal::refund`](crate::Journal::refund) call.
    Answer,
    /// The provider's answer to a re-send by [`Journal::reconcile`](crate::Journal::reconcile).
    Reconcile,
    /// An operator, through [`Journal::resolve_manually`](crate::Journal::resolve_manually).
    Manual,
    /// [`Journal::reconcile`](crate::Journal::reconcile), by reading the provider's own record
    /// ([`Refunds::find`](refunds::Refunds::find)): the refund was found there (Optty, Moyasar),
    /// or attributed to this entry (AfterPay). The status, amount and refund id are the record's.
    Read,
}

impl SettledBy {
    /// Every settler.
    pub const ALL: [SettledBy; 4] = [
        SettledBy::Answer,
        SettledBy::Reconcile,
        SettledBy::Manual,
        SettledBy::Read,
    ];

    /// The column value: `answer`, `reconcile`, `manual`, `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            SettledBy::Answer => "answer",
            SettledBy::Reconcile => "reconcile",
            SettledBy::Manual => "manual",
            SettledBy::Read => "read",
        }
    }
}

impl FromStr for SettledBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SettledBy::ALL
            .into_iter()
            .find(|by| by.as_str() == s)
            .ok_or_else(|| format!("unknown settler {s:?}"))
    }
}

/// The right to send an entry's attempts: whoever holds a live lease is the only sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Who holds it: the journal instance's name and a call number (`host-1234-5f3a/17`).
    pub owner: String,
    /// When it lapses, in milliseconds since the Unix epoch on the database's clock.
    pub expires_at_ms: i64,
}

impl Lease {
    /// Whether the lease still holds at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// One refund intent and everything known about it: a row of `refund_journal_entries`.
///
/// Times are milliseconds since the Unix epoch, on the database's clock (shared by every
/// replica that uses the database). Text is as the provider sent it, a NUL included: the
/// database holds it escaped ([`Database`](crate::Database#text-as-a-provider-sent-it)), and
/// it reads back exactly.
///
/// Serializes (`serde`) with the field names below; states, settlers and statuses in their
/// column form (`in_flight`, `manual`, `pending`), money as `{"amount": "10.00", "currency":
/// "EUR"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The provider.
    pub provider: Provider,
    /// The merchant reference: with the provider, the entry's key.
    pub merchant_reference: MerchantReference,
    /// SHA-256 of the request's canonical JSON ([`fingerprint`](fn@crate::fingerprint)).
    pub fingerprint: String,
    /// The request as recorded (what reconciliation re-sends). No secrets: a request has none.
    pub request: RefundRequest,
    /// Where it stands.
    pub state: EntryState,
    /// Attempts recorded as sent, over every call (the next one is `attempts + 1`).
    pub attempts: u32,
    /// An attempt since the last definitive answer had an unknown outcome, so a later refusal
    /// does not prove that nothing was refunded.
    pub ambiguous: bool,
    /// The current lease, if any (it may have expired: compare with the database's clock).
    pub lease: Option<Lease>,
    /// The provider's id of the refund, where it gave one.
    pub provider_refund_id: Option<String>,
    /// The provider's status of an applied refund: pending until it says final.
    pub refund_status: Option<RefundStatus>,
    /// The refunded amount of an applied refund.
    pub amount: Option<Money>,
    /// What the order has refunded in all, where the provider said.
    pub refunded_total: Option<Money>,
    /// What the order captured, where the provider said.
    pub captured_total: Option<Money>,
    /// The provider answered that a refund with this reference already exists, rather than
    /// with the refund itself.
    pub already_applied: bool,
    /// The HTTP status of the last failed attempt's answer, where there was one (the facade
    /// does not report the status of a success).
    pub http_status: Option<u16>,
    /// The error kind of the last failed attempt (`server_error`, `timeout`, ...).
    pub error_kind: Option<String>,
    /// The last failed attempt's error, as the facade displays it (no secrets: it holds none).
    pub error_message: Option<String>,
    /// Why the entry is unknown and what settles it.
    pub unresolved_reason: Option<String>,
    /// Who settled it.
    pub settled_by: Option<SettledBy>,
    /// Time spent waiting for the provider's answers, over all attempts, in milliseconds.
    pub wire_ms: i64,
    /// When the intent was first recorded.
    pub created_at_ms: i64,
    /// When the entry last changed.
    pub updated_at_ms: i64,
    /// When it became applied or not applied.
    pub settled_at_ms: Option<i64>,
    /// When the latest attempt's intent was recorded (the attempt left after it). `None` for an
    /// entry written before the journal kept it and never sent since (its latest `intent` event
    /// says).
    pub attempt_at_ms: Option<i64>,
    /// The latest attempt's deadline: when its answer was recorded, or, while none is, when
    /// the lease it was sent under runs out (a sender that outlives its lease is taken for
    /// dead). After it, nothing of that attempt is on the wire. `None` as for `attempt_at_ms`.
    pub attempt_deadline_ms: Option<i64>,
    /// Bumped by every change; writers compare it (optimistic concurrency).
    pub version: i64,
}

impl Entry {
    /// What the entry says about the money: an entry in flight may have been applied.
    pub fn outcome(&self) -> Outcome {
        match self.state {
            EntryState::Applied => Outcome::Applied,
            EntryState::NotApplied => Outcome::NotApplied,
            EntryState::InFlight | EntryState::Unknown => Outcome::Unknown,
        }
    }

    /// Whether someone holds a live lease on it at `now_ms`.
    pub fn is_leased(&self, now_ms: i64) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|lease| lease.is_live(now_ms))
    }

    /// Whether the refund is applied and the provider's final status of it is failed: a refund
    /// believed applied that did not go through, listed by
    /// [`Journal::failed_after_applied`](crate::Journal::failed_after_applied).
    pub fn failed_after_applied(&self) -> bool {
        self.state == EntryState::Applied && self.refund_status == Some(RefundStatus::Failed)
    }

    /// Whether it needs reconciling at `now_ms`: its outcome is unknown, or it is in flight and
    /// its sender's lease lapsed (the sender died before recording the answer).
    pub fn is_unresolved(&self, now_ms: i64) -> bool {
        match self.state {
            EntryState::Unknown => true,
            EntryState::InFlight => !self.is_leased(now_ms),
            EntryState::Applied | EntryState::NotApplied => false,
        }
    }

    /// The refund as recorded, for an applied entry. `raw` is empty: the journal keeps the
    /// provider's fields, not its answer body. A refund settled by the provider's "already
    /// exists" answer or by an operator has status pending and the request's amount, as
    /// [`Settlement::Applied`](refunds::Settlement) reports it.
    pub fn refund(&self) -> Option<Refund> {
        (self.state == EntryState::Applied).then(|| Refund {
            provider: self.provider,
            provider_refund_id: self.provider_refund_id.clone(),
            status: self.refund_status.unwrap_or(RefundStatus::Pending),
            amount: self.amount.unwrap_or(self.request.amount),
            refunded_total: self.refunded_total,
            captured_total: self.captured_total,
            raw: RawAnswer::default(),
        })
    }
}

/// What an [`Event`] records. Stored as text (the `kind` column) through `sqlx::Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Attempt `attempt` is about to be sent by `owner` under a fresh lease: written (with the
    /// entry) before anything leaves.
    Intent,
    /// The answer to attempt `attempt`: its outcome, HTTP status, error kind and time.
    Answer,
    /// Attempt `attempt`'s sender lost its lease before recording an answer (it crashed or
    /// stalled): the attempt's outcome is unknown.
    LeaseExpired,
    /// Reconciliation looked at the entry and what it did, in `detail`.
    Reconcile,
    /// An operator's decision (`outcome`) and note (`detail`).
    Manual,
    /// The provider's status of the refund moved (`detail`: from and to).
    Status,
    /// Reconciliation read the provider's own record ([`Refunds::find`](refunds::Refunds::find)):
    /// what it found and what it settled (`outcome`: applied, not applied, or unknown when the
    /// read settled nothing), in `detail`: a refund found or attributed, a final status read,
    /// the evidence that left it unresolved, or a read that failed.
    Read,
    /// The provider's record says **failed** for a refund the journal holds as applied (read
    /// by reconciliation): nothing was refunded after all. `detail`: the status change and the
    /// provider's reason. The entry is listed by
    /// [`Journal::failed_after_applied`](crate::Journal::failed_after_applied).
    FailedAfterApplied,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::Intent,
        EventKind::Answer,
        EventKind::LeaseExpired,
        EventKind::Reconcile,
        EventKind::Manual,
        EventKind::Status,
        EventKind::Read,
        EventKind::FailedAfterApplied,
    ];

    /// The column value: `intent`, `answer`, `lease_expired`, `reconcile`, `manual`, `status`,
    /// `read`, `failed_after_applied`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Intent => "intent",
            EventKind::Answer => "answer",
            EventKind::LeaseExpired => "lease_expired",
            EventKind::Reconcile => "reconcile",
            EventKind::Manual => "manual",
            EventKind::Status => "status",
            EventKind::Read => "read",
            EventKind::FailedAfterApplied => "failed_after_applied",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?}"))
    }
}

/// One line of an entry's audit trail: a row of `refund_journal_events`, never changed once
/// written. Its text reads back exactly as written, a provider's NUL included (the database
/// holds it escaped: [`Database`](crate::Database#text-as-a-provider-sent-it)).
/// Serializes (`serde`) with the field names below, kinds and outcomes in their column form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increasing with time within the database.
    pub id: i64,
    /// The entry's provider.
    pub provider: Provider,
    /// The entry's merchant reference.
    pub merchant_reference: MerchantReference,
    /// When, in milliseconds since the Unix epoch, on the database's clock.
    pub at_ms: i64,
    /// What happened.
    pub kind: EventKind,
    /// The attempt it concerns (intents, answers, lost leases).
    pub attempt: Option<u32>,
    /// The lease owner who wrote it, or `operator` for manual decisions.
    pub owner: Option<String>,
    /// The outcome it records.
    pub outcome: Option<Outcome>,
    /// The HTTP status of the answer, where there was one.
    pub http_status: Option<u16>,
    /// The error kind of a failed attempt (`server_error`, `timeout`, ...).
    pub error_kind: Option<String>,
    /// The error as displayed, the reason, or the operator's note.
    pub detail: Option<String>,
    /// How long the attempt waited for its answer, in milliseconds.
    pub elapsed_ms: Option<i64>,
}

impl fmt::Display for Event {
    /// `#3 answer attempt=1 outcome=unknown http=504 kind=server_error (12 ms): ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.id, self.kind)?;
        if let Some(attempt) = self.attempt {
            write!(f, " attempt={attempt}")?;
        }
        if let Some(outcome) = self.outcome {
            write!(f, " outcome={}", outcome_str(outcome))?;
        }
        if let Some(status) = self.http_status {
            write!(f, " http={status}")?;
        }
        if let Some(kind) = &self.error_kind {
            write!(f, " kind={kind}")?;
        }
        if let Some(elapsed) = self.elapsed_ms {
            write!(f, " ({elapsed} ms)")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// The column form of an [`Outcome`]: `applied`, `not_applied`, `unknown`.
pub fn outcome_str(outcome: Outcome) -> &'static str {
    outcome.as_str()
}

/// The `outcome` column: the facade's [`Outcome`] as stored (the facade's type does not know
/// sqlx), `applied`, `not_applied`, `unknown` as [`outcome_str`] writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub(crate) enum OutcomeColumn {
    Applied,
    NotApplied,
    Unknown,
}

impl From<Outcome> for OutcomeColumn {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Applied => OutcomeColumn::Applied,
            Outcome::NotApplied => OutcomeColumn::NotApplied,
            Outcome::Unknown => OutcomeColumn::Unknown,
        }
    }
}

impl From<OutcomeColumn> for Outcome {
    fn from(column: OutcomeColumn) -> Self {
        match column {
            OutcomeColumn::Applied => Outcome::Applied,
            OutcomeColumn::NotApplied => Outcome::NotApplied,
            OutcomeColumn::Unknown => Outcome::Unknown,
        }
    }
}

/// The column form of a [`RefundStatus`]: `succeeded`, `pending`, `failed`.
pub(crate) fn status_str(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Succeeded => "succeeded",
        RefundStatus::Pending => "pending",
        RefundStatus::Failed => "failed",
        // A status a newer facade adds: the refund exists, not known to be final.
        _ => "pending",
    }
}

/// The `refund_status` column: the facade's [`RefundStatus`] as stored, `succeeded`,
/// `pending`, `failed` as [`status_str`] writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub(crate) enum StatusColumn {
    Succeeded,
    Pending,
    Failed,
}

impl From<RefundStatus> for StatusColumn {
    fn from(status: RefundStatus) -> Self {
        match status {
            RefundStatus::Succeeded => StatusColumn::Succeeded,
            RefundStatus::Pending => StatusColumn::Pending,
            RefundStatus::Failed => StatusColumn::Failed,
            // A status a newer facade adds: the refund exists, not known to be final.
            _ => StatusColumn::Pending,
        }
    }
}

impl From<StatusColumn> for RefundStatus {
    fn from(column: StatusColumn) -> Self {
        match column {
            StatusColumn::Succeeded => RefundStatus::Succeeded,
            StatusColumn::Pending => RefundStatus::Pending,
            StatusColumn::Failed => RefundStatus::Failed,
        }
    }
}

/// Through a SQLite database (the column types are alike on both backends).
#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use sqlx::SqlitePool;

    /// The text `value` is stored as, and the value that text reads back as.
    async fn stored<T>(pool: &SqlitePool, value: T) -> (String, T)
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + Send
            + Unpin
            + Copy
            + 'static,
    {
        let text: String = sqlx::query_scalar("SELECT $1")
            .bind(value)
            .fetch_one(pool)
            .await
            .unwrap();
        let back: T = sqlx::query_scalar("SELECT $1")
            .bind(text.clone())
            .fetch_one(pool)
            .await
            .unwrap();
        (text, back)
    }

    /// The column enums' `sqlx::Type` writes what their `as_str` (the documented column
    /// values, the values the migrations' checks allow) says, and reads it back. PostgreSQL takes the same
    /// text (`journal/tests/it` writes and reads every state on both backends).
    #[tokio::test]
    async fn column_enums_are_stored_as_their_documented_text() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        for state in EntryState::ALL {
            assert_eq!(
                stored(&pool, state).await,
                (state.as_str().to_owned(), state)
            );
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        for kind in EventKind::ALL {
            assert_eq!(stored(&pool, kind).await, (kind.as_str().to_owned(), kind));
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        for by in SettledBy::ALL {
            assert_eq!(stored(&pool, by).await, (by.as_str().to_owned(), by));
            assert_eq!(by.as_str().parse(), Ok(by));
        }
        for outcome in [Outcome::Applied, Outcome::NotApplied, Outcome::Unknown] {
            let (text, back) = stored(&pool, OutcomeColumn::from(outcome)).await;
            assert_eq!(
                (text.as_str(), Outcome::from(back)),
                (outcome_str(outcome), outcome)
            );
        }
        for status in [
            RefundStatus::Succeeded,
            RefundStatus::Pending,
            RefundStatus::Failed,
        ] {
            let (text, back) = stored(&pool, StatusColumn::from(status)).await;
            assert_eq!(
                (text.as_str(), RefundStatus::from(back)),
                (status_str(status), status)
            );
        }
        let unknown: Result<EntryState, _> = sqlx::query_scalar("SELECT 'settled'")
            .fetch_one(&pool)
            .await;
        assert!(unknown.is_err(), "{unknown:?}");
    }
}
