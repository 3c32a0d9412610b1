//! # refunds-journal: a durable record of refund intents and outcomes
//!
//! The [`refunds`] facade knows, for every answer, what it means for the money
//! ([`Outcome`](refunds::Outcome): applied, not applied, unknown), and it never re-sends an
//! unknown outcome to a provider without a duplicate key (AfterPay). What it cannot do alone
//! is remember: a service that crashes between sending a refund and recording its answer, or
//! that runs several replicas, loses the thread. This crate is that memory: the
//! idempotency-key table pattern, in SQLite (embedded, the default) or PostgreSQL (shared by
//! the instances of a service).
//!
//! ```no_run
//! use refunds::{MerchantReference, Money, MoyasarConfig, Provider, RefundRequest, Refunds};
//! use refunds_journal::{Database, Journal, JournaledRefund};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let refunds = Refunds::builder()
//!     .moyasar(MoyasarConfig::new("https://api.moyasar.com", "sk_live_..."))
//!     .build()?;
//! let journal = Journal::open(Database::sqlite("refunds-journal.db")).await?;
//! // or Database::postgres(std::env::var("DATABASE_URL")?) for several instances
//!
//! let request = RefundRequest::new(
//!     Provider::Moyasar,
//!     "0191f5a7-44d3-7430-8739-2d80821416bf",
//!     Money::parse("26.00", "SAR")?,
//!     MerchantReference::new("RET-123434")?,
//! );
//! match journal.refund(&refunds, &request).await? {
//!     JournaledRefund::Applied { refund, replayed, .. } => println!("refunded {} (from the record: {replayed})", refund.amount),
//!     JournaledRefund::Rejected { error, .. } => println!("not refunded: {error}"),
//!     JournaledRefund::Unresolved { entry, .. } => println!("unknown: {}", entry.unresolved_reason.unwrap_or_default()),
//!     JournaledRefund::InProgress { .. } => println!("another instance is on it"),
//! }
//! // Periodically, or at start-up:
//! let report = journal.reconcile(&refunds).await?;
//! for done in &report.reconciled {
//!     println!("{} {}: {:?}", done.entry().provider, done.entry().merchant_reference, done.entry().state);
//! }
//! for failure in &report.failed {
//!     eprintln!("not reconciled, tried again next run: {failure}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## The rules
//!
//! A refund is journaled under its key, (provider, merchant reference), with the
//! [`fingerprint`] of its request (SHA-256 of its canonical JSON: provider, order, amount,
//! items, texts, provider ids). [`Journal::refund`]:
//!
//! 1. records the **intent** (attempt number, a lease for this call: owner and expiry) before
//!    any request leaves; then, for a key already on record:
//!    - **another request** under it (different fingerprint): refused before any I/O
//!      ([`JournalError::Conflict`]);
//!    - **applied**: the recorded outcome, nothing sent ([`JournaledRefund::Applied`] with
//!      `replayed`); this is what makes AfterPay retries safe;
//!    - **a live lease elsewhere** (another task, process or replica):
//!      [`JournaledRefund::InProgress`], nothing sent;
//!    - **not applied**: sent again (nothing was refunded, so a new attempt is safe);
//!    - **unknown**, or **in flight under a lapsed lease** (the sender died before recording
//!      its answer): re-sent under the same merchant reference where the provider deduplicates
//!      on it (Optty, Moyasar, OpenApp: it applies the refund once, or answers that it exists);
//!      never on a provider without a duplicate key (AfterPay): [`JournaledRefund::Unresolved`]
//!      with the reason, nothing sent;
//! 2. sends through [`Refunds::refund`](refunds::Refunds::refund), one attempt at a time,
//!    and records each **answer** (time, attempt, HTTP status, outcome, error kind) before it
//!    decides the next step with the facade's pure [`RetryPolicy::decide`](refunds::RetryPolicy::decide);
//!    a retry's intent is recorded (lease renewed) before it is sent;
//! 3. records the final outcome in the entry: state, the provider's refund id, status,
//!    amounts, HTTP status, time on the wire.
//!
//! Why attempt by attempt rather than [`Refunds::refund_with_retries`](refunds::Refunds::refund_with_retries):
//! that executor settles in memory and returns once; a crash between two of its attempts
//! would lose which attempts were sent. Recording each attempt's intent and answer as it
//! happens is the point of the journal, and `decide` is the same pure rule the executor uses,
//! so the two retry alike.
//!
//! ## Reconciliation, by provider
//!
//! [`Journal::unresolved`] lists the entries whose outcome is unknown or whose sender's lease
//! lapsed; [`Journal::reconcile`] settles what it safely can:
//!
//! | provider | duplicate key | what `reconcile` does with an unknown outcome |
//! |---|---|---|
//! | Optty | `refundReference` | re-sends the recorded request: applied once (or "already exists"), or a refusal; settles it |
//! | Moyasar | `transaction_id` (UUID v5 of the reference) | the same; an "Initial request is still processing" answer is retried |
//! | OpenApp | `caseId` (409 `RefundExistsException` when it exists) | the same |
//! | AfterPay | none documented | **nothing is sent**: left unresolved with the reason; an operator looks the refund up at Riverty and calls [`Journal::resolve_manually`] |
//!
//! Each run tries every unresolved entry: one that fails (the database refuses its write, its
//! row cannot be read) is reported in [`ReconcileReport::failed`] with its error, stays as it
//! was, and never stops the entries behind it.
//!
//! What reconciliation cannot settle: an AfterPay unknown (no duplicate key, no refund
//! read-back in the facade), and, on any provider, a refusal after an ambiguous attempt (the
//! ambiguous one may have been applied: e.g. "exceeds the refundable amount" because it was).
//! Those wait for [`Journal::resolve_manually`]. A manual [`Outcome::Applied`](refunds::Outcome::Applied)
//! makes every later call answer from the record; [`Outcome::NotApplied`](refunds::Outcome::NotApplied)
//! lets the next call send it again.
//!
//! [`Journal::pending`] lists applied refunds whose provider status is not final (OpenApp
//! refunds, Optty `PENDING`, "already exists" answers, manual resolutions), and
//! [`Journal::record_status`] moves one to its final status. [`Journal::history`] is the audit
//! trail.
//!
//! ## When the database fails
//!
//! A [`JournalError`] says what it means for the money ([`JournalError::outcome`]):
//! [`ErrorOutcome::NothingSent`] (the intent could not be recorded, so the request never
//! left; or the call sends nothing) or [`ErrorOutcome::SentNotRecorded`] (the request was sent
//! and its answer could not be recorded: [`JournalError::AnswerNotRecorded`] carries the
//! answer; the entry stays in flight and `reconcile` settles it once the lease lapses). A
//! failed write is rolled back whole and leaves the journal usable: after a full disk or a
//! failed commit, the next call works as soon as the database does, without a restart.
//!
//! ## An entry's state machine
//!
//! ```text
//! refund() ─► IN_FLIGHT ── success, or "it already exists" ──────────────► APPLIED
//! (intent +    │   │  ▲                                                     ▲   final: later
//!  lease)      │   │  │ re-sent under the same reference                    │   calls are
//!              │   │  │ (Optty, Moyasar, OpenApp: a call or reconcile)      │   answered from it
//!              │   │  └─────────────────────────────────┐                   │
//!              │   └─ unknown answer, a refusal after ─► UNKNOWN ─ resolve_manually(applied)
//!              │      one, or the sender's lease lapsed  │  AfterPay: stays until an
//!              │                                         │  operator decides
//!              │                                         └─ resolve_manually(not applied) ─┐
//!              │                                                                           ▼
//!              └─ refused, or never reached (nothing ambiguous before) ─────────► NOT_APPLIED
//!                                                       a later call: attempt n+1 ─► IN_FLIGHT
//! ```
//!
//! | state | meaning | a call with the same request | `reconcile` |
//! |---|---|---|---|
//! | `in_flight`, lease live | an attempt is being sent | `InProgress` (another caller) | left to its sender |
//! | `in_flight`, lease lapsed | the sender died between intent and answer | as `unknown` | as `unknown` |
//! | `applied` | the refund exists (provider said so, or an operator) | `Applied`, replayed, no I/O | not listed |
//! | `not_applied` | nothing refunded | sent again (attempt n+1) | not listed |
//! | `unknown` | it may have been applied | dedup providers: re-sent; AfterPay: `Unresolved`, no I/O | dedup: re-sent; AfterPay: left with reason |
//!
//! Every transition is one transaction that also appends its events, and every writer checks
//! the entry's `version` (optimistic concurrency): two replicas that race for one entry never
//! both act on the same state; the loser reads again and decides again. Lease times come from
//! the database's clock, shared by every replica.
//!
//! ## Schema
//!
//! Applied by the journal on open (embedded sqlx migrations, `journal/migrations/<backend>/`;
//! on PostgreSQL in the schema `refunds_journal`, see [`Database`]). Times are milliseconds
//! since the Unix epoch on the database's clock; amounts are exact decimal strings in the
//! request's currency. Free text (*escaped* below: what a provider sent, owners, reasons) is
//! stored with a backslash written `\\` and U+0000 written `\u0000`, alike on both backends,
//! since PostgreSQL's `text` refuses U+0000 ([`Database`] says more); the journal's types read
//! it back exactly as sent.
//!
//! `refund_journal_entries`: one row per (provider, merchant reference).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `provider`, `merchant_reference` | text, primary key | the key |
//! | `fingerprint` | text | SHA-256 (hex) of `request` |
//! | `request` | text | the request's canonical JSON (no secrets: a request holds none) |
//! | `currency` | text | ISO 4217 code of the amounts |
//! | `state` | text | `in_flight`, `applied`, `not_applied`, `unknown` |
//! | `attempts` | bigint | attempts recorded as sent |
//! | `ambiguous` | boolean | an attempt since the last definitive answer had an unknown outcome |
//! | `lease_owner`, `lease_expires_at_ms` | text (escaped), bigint | who may send, until when |
//! | `provider_refund_id`, `refund_status` | text (escaped), text | the provider's id and `succeeded`/`pending`/`failed` |
//! | `amount`, `refunded_total`, `captured_total` | text | amounts of an applied refund |
//! | `already_applied` | boolean | settled by an "it already exists" answer |
//! | `http_status`, `error_kind`, `error_message` | bigint, text (escaped), text (escaped) | the last failed attempt's answer |
//! | `unresolved_reason` | text (escaped) | why it is unknown, and what settles it |
//! | `settled_by` | text | `answer`, `reconcile`, `manual` |
//! | `wire_ms` | bigint | time spent waiting for answers, all attempts |
//! | `created_at_ms`, `updated_at_ms`, `settled_at_ms` | bigint | timing |
//! | `version` | bigint | bumped by every write; writers compare it |
//!
//! `refund_journal_events`: the audit trail, insert-only.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `id` | bigint identity | order of events |
//! | `provider`, `merchant_reference` | text | the entry |
//! | `at_ms` | bigint | when |
//! | `kind` | text | `intent`, `answer`, `lease_expired`, `reconcile`, `manual`, `status` ([`EventKind`]) |
//! | `attempt`, `owner` | bigint, text (escaped) | which attempt, which sender (`operator` for manual) |
//! | `outcome`, `http_status`, `error_kind` | text, bigint, text (escaped) | what the answer said |
//! | `detail` | text (escaped) | the error as displayed, a reason, or the operator's note |
//! | `elapsed_ms` | bigint | how long the attempt waited for its answer |
//!
//! Secrets are never stored: a request holds none, no header is kept, errors display none,
//! and a PostgreSQL URL is held as a secret and shown nowhere.

#![warn(missing_docs)]

mod entry;
mod error;
mod fingerprint;
mod journal;
mod machine;
mod store;
mod text;

pub use entry::{Entry, EntryState, Event, EventKind, Lease, SettledBy, outcome_str};
pub use error::{ErrorOutcome, JournalError};
pub use fingerprint::{canonical_json, fingerprint};
pub use journal::{
    Journal, JournalConfig, JournaledRefund, ReconcileFailure, ReconcileReport, Reconciliation,
};
pub use store::{DEFAULT_SCHEMA, Database};

#[cfg(test)]
mod tests {
    /// Every migration file is embedded, for both backends, in the same versions.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for backend in ["sqlite", "postgres"] {
            let mut files: Vec<String> = std::fs::read_dir(dir.join(backend))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let versions: Vec<i64> = files
                .iter()
                .map(|name| name.split('_').next().unwrap().parse().unwrap())
                .collect();
            let embedded: Vec<i64> = crate::store::MIGRATIONS.iter().map(|m| m.0).collect();
            assert_eq!(versions, embedded, "{backend}: {files:?}");
        }
    }
}
