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
//! use refunds_journal::{Database, Journal, JournaledRefund, Reconciliation};
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
//! // Periodically (a reconciler task), and at start-up:
//! let report = journal.reconcile(&refunds).await?;
//! for done in &report.reconciled {
//!     println!("{} {}: {:?}", done.entry().provider, done.entry().merchant_reference, done.entry().state);
//!     if let Reconciliation::FailedAfterApplied { entry, reason } = done {
//!         eprintln!("refund {} failed at the provider: {reason:?}", entry.merchant_reference);
//!     }
//! }
//! for failure in &report.failed {
//!     eprintln!("not reconciled, tried again next run: {failure}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Features: one backend or both
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `sqlite` | on | [`Database::sqlite`], [`Database::sqlite_in_memory`] (SQLite, bundled: `libsqlite3-sys`) |
//! | `postgres` | on | [`Database::postgres`], [`Database::schema`], [`DEFAULT_SCHEMA`] |
//!
//! A service on one backend turns the other off, and does not compile it: with
//! `default-features = false, features = ["postgres"]`, no SQLite is built. At least one is
//! needed.
//!
//! ## A service on PostgreSQL
//!
//! Several replicas share one database. Each opens the journal at start-up (the migrations
//! run once, whoever comes first), answers its health checks with [`Journal::ping`], waits
//! for another replica's attempt instead of answering "in progress"
//! ([`Journal::refund_or_wait`]), and runs the reconciler (running it on every replica is safe:
//! writers compare versions, and a live lease is left to its sender). The [`Database`]'s time
//! limits make a database that is stopped or out of reach fail each call within seconds, with
//! an error that names it ([`JournalError::Unavailable`]: host, port, database and cause, never
//! the password), rather than block it:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use refunds::{RefundRequest, Refunds};
//! use refunds_journal::{Database, Journal, JournalError, JournaledRefund};
//!
//! # async fn service() -> Result<(), Box<dyn std::error::Error>> {
//! let refunds = Refunds::from_env()?;
//! let database = Database::postgres(std::env::var("DATABASE_URL")?)
//!     .max_connections(10)
//!     // The defaults, spelled out: a connection within 5 s, a statement within 5 s (the
//!     // server's `statement_timeout`), start-up (connect, schema, migrations) within 10 s.
//!     .acquire_timeout(Duration::from_secs(5))
//!     .statement_timeout(Duration::from_secs(5))
//!     .startup_timeout(Duration::from_secs(10));
//! // A database that is not there fails here within seconds, e.g. "PostgreSQL at
//! // 10.0.0.5:5432/refunds: no connection within 5 s (connection refused)".
//! let journal = Journal::open(database).await?;
//!
//! // The reconciler: now (at start-up), then every minute.
//! tokio::spawn({
//!     let (journal, refunds) = (journal.clone(), refunds.clone());
//!     async move {
//!         let mut every = tokio::time::interval(Duration::from_secs(60));
//!         loop {
//!             every.tick().await;
//!             match journal.reconcile(&refunds).await {
//!                 Ok(report) => {
//!                     for failure in &report.failed {
//!                         eprintln!("not reconciled, tried again next run: {failure}");
//!                     }
//!                 }
//!                 // The database is out of reach: the next run tries again.
//!                 Err(error) => eprintln!("reconcile: {error}"),
//!             }
//!         }
//!     }
//! });
//!
//! // Readiness: one round trip to the database within the limits.
//! async fn ready(journal: &Journal) -> Result<(), JournalError> {
//!     journal.ping().await
//! }
//!
//! // A refund request: a retry that meets the first attempt (on this replica or another)
//! // waits up to 10 s for its outcome instead of answering "in progress".
//! async fn refund(
//!     journal: &Journal,
//!     refunds: &Refunds,
//!     request: &RefundRequest,
//! ) -> Result<JournaledRefund, JournalError> {
//!     journal.refund_or_wait(refunds, request, Duration::from_secs(10)).await
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## The rules
//!
//! A refund is journaled under its key, (provider, merchant reference), with the
//! [`fingerprint()`] of its request (SHA-256 of its canonical JSON: provider, order, amount,
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
//!      with the reason, nothing sent ([`Journal::reconcile`] settles it by reading);
//!
//!    and, on AfterPay, **another refund on the same order in flight or unknown** (a new
//!    reference, or a not-applied one sent again): refused before any I/O
//!    ([`JournalError::OrderBusy`]; the per-order lease, see below);
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
//! lapsed, [`Journal::pending`] the applied refunds whose provider status is not final.
//! [`Journal::reconcile`], the one entry point (run it periodically from a reconciler task,
//! and at start-up), settles what it safely can, without a person wherever the provider
//! allows it, by reading the provider's own record ([`Refunds::find`](refunds::Refunds::find))
//! where there is one:
//!
//! | provider | duplicate key | read of its record | an unknown outcome | a pending refund |
//! |---|---|---|---|---|
//! | Optty | `refundReference` | Transaction Details | **read first**: found, it is applied ([`SettledBy::Read`], the record's status and id); not found, or the read failed: re-sent under the same reference (applied once, or "already exists"), the read noted | its final status read (`PENDING` until then) |
//! | Moyasar | `transaction_id` (UUID v5 of the reference) | Retrieve Order | the same ("Initial request is still processing" is retried) | the same (`initiated`) |
//! | OpenApp | `caseId` (409 `RefundExistsException` when it exists) | none published | re-sent, as above | left: [`Journal::record_status`] from its settlement report |
//! | AfterPay | none documented | Get Order, which echoes none of our references | **never re-sent blind: attributed by reading the order** (below) | none (Riverty has no pending state) |
//!
//! A final status read on a pending refund is recorded ([`Reconciliation::StatusRead`]); a
//! **failed** one, on a refund the service was told was applied, is raised distinctly: a
//! [`Reconciliation::FailedAfterApplied`] in the report, an [`EventKind::FailedAfterApplied`]
//! event, and [`Journal::failed_after_applied`] lists every such refund (nothing was refunded:
//! refunding the customer takes a new refund under a new reference). A refund still pending,
//! or not found in the record, is left as it is for the next run. A refund found **failed**
//! when an unknown outcome is read is applied with status failed, and raised the same way.
//!
//! ### AfterPay: attribution
//!
//! Riverty's record lists an order's refunds by refund number, amount and `insertedAt`, and
//! nothing of ours. The journal makes attribution possible, and reconcile attributes an
//! unknown AfterPay refund by reading its order (`find` without a refund number: every refund
//! of the order, [`Finding::Unattributed`](refunds::Finding::Unattributed)):
//!
//! - **one unresolved AfterPay refund per order**: a new AfterPay refund on an order whose
//!   other AfterPay refund is in flight or unknown is refused before any I/O
//!   ([`JournalError::OrderBusy`]), on every replica alike: the database enforces it (a unique
//!   index over the AfterPay entries in flight or unknown, per order). So a refund on the
//!   order that no other entry accounts for can only be the unresolved one's;
//! - **every refund number on record, per order**: the number of each AfterPay refund the
//!   journal learns (from an answer, or by attribution) is kept with its entry, and
//!   [`Journal::order_entries`] lists an order's entries;
//! - **an attempt's deadline** ([`Entry::attempt_deadline_ms`]): when its answer was recorded,
//!   or when the lease it was sent under ran out; after it nothing of the attempt is on the
//!   wire.
//!
//! The decision, on the order's refunds that no other entry of the journal accounts for
//! (*unaccounted*), in order:
//!
//! | # | the read | decision |
//! |---|---|---|
//! | 1 | none unaccounted (the order lists none, or only refunds on record), in a read made at or after the attempt's deadline plus [`JournalConfig::settling_delay`] | **not applied**: sent again at once (attempt n+1, in the same write, so the order stays held), [`Reconciliation::Resent`] |
//! | 2 | none unaccounted, in an earlier read | left unresolved: a read after the delay decides |
//! | 3 | some unaccounted, while another entry on the order may own a refund whose number is not on record (applied without one, e.g. by hand; or unresolved itself: rows written before the per-order rule) | left for a person, with the evidence |
//! | 4 | an unaccounted refund without a refund number | left for a person |
//! | 5 | an unaccounted refund inserted before the attempt's intent, or after its deadline plus the settling delay (either beyond [`JournalConfig::clock_skew`]): made outside the journal | left for a person |
//! | 6 | two or more unaccounted | left for a person |
//! | 7 | exactly one, of another (or no) amount | left for a person |
//! | 8 | exactly one, with this refund's amount | **applied**, settled by reading ([`SettledBy::Read`]), its refund number on record, [`Reconciliation::SettledByReading`]; nothing sent |
//!
//! Times are compared only where Riverty's `insertedAt` carries a UTC offset (the database's
//! clock stands for ours; the read's time is the database's clock just before it was sent).
//! "Left for a person": [`Reconciliation::LeftUnresolved`], the evidence (every unaccounted
//! refund with its number, amount and time, and the numbers on record) in
//! [`Entry::unresolved_reason`] and a [`EventKind::Read`] event, then
//! [`Journal::resolve_manually`]. A reason is written again only when it changes, so a
//! reconciler running every minute does not fill the history.
//!
//! **This relies on every refund of an AfterPay order going through the journal.** A refund
//! made elsewhere (Riverty's merchant portal, another system) that looks like ours (after our
//! attempt, our amount, while ours was not applied) would be taken for ours; one that does not
//! look like ours is evidence that the rule was broken, and leaves the entry to a person.
//!
//! ### What waits for a person
//!
//! An AfterPay read that cannot be attributed (rows 3 to 7); on OpenApp (no read), a refusal
//! after an ambiguous attempt (the ambiguous one may have been applied: e.g. "exceeds the
//! refundable amount" because it was); an entry whose row cannot be read. Those wait for
//! [`Journal::resolve_manually_with`] (or [`Journal::resolve_manually`], the outcome and a
//! note alone). A manual [`Outcome::Applied`](refunds::Outcome::Applied) makes every later
//! call answer from the record; [`Outcome::NotApplied`](refunds::Outcome::NotApplied) lets the
//! next call send it again. The operator records what they found ([`Resolution`]): the
//! provider's refund id and the amount, stored in the entry (exact), with the note in the
//! audit event. On AfterPay, record the refund number: attribution counts it as accounted for,
//! whereas a refund applied without one may own any refund of its order and leaves every later
//! unknown refund there for a person (row 3).
//!
//! Each run tries every entry: one that fails (the database refuses its write, its row cannot
//! be read) is reported in [`ReconcileReport::failed`] with its error, stays as it was, and
//! never stops the entries behind it. A read that fails leaves the entry as it was (Optty and
//! Moyasar: re-sent instead) for the next run.
//!
//! [`Journal::pending`] lists applied refunds whose provider status is not final (OpenApp
//! refunds, Optty `PENDING`, Moyasar `initiated`, "already exists" answers, manual
//! resolutions); reconcile reads theirs where it can, and [`Journal::record_status`] records
//! one learnt elsewhere (a callback, a settlement report). [`Journal::history`] is the audit
//! trail.
//!
//! ## When the database fails
//!
//! Every wait on the database is bounded ([`Database`]'s time limits: a connection within
//! 5 s, a statement within 5 s, start-up within 10 s, each configurable): a database that is
//! stopped, out of reach, refusing the login or holding a lock too long fails the call with
//! [`JournalError::Unavailable`], which names the database (host, port and database, or the
//! SQLite file), what failed and the cause, and never a password. [`Journal::ping`] checks the
//! database within the same limits, for health checks.
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
//! (intent +    │   │  ▲                                                     ▲ ▲  ▲ final: later calls
//!  lease)      │   │  │ re-sent under the same reference:                   │ │  │ are answered from it;
//!              │   │  │ Optty, Moyasar, OpenApp (a call, or reconcile       │ │  └ reconcile reads a
//!              │   │  │ after a read that did not find it); AfterPay        │ │    pending status to
//!              │   │  │ (reconcile, once a read proved it not applied)      │ │    its final one
//!              │   │  └─────────────────────────────────┐                   │ │
//!              │   └─ unknown answer, a refusal after ─► UNKNOWN ─ found in the provider's
//!              │      one, or the sender's lease lapsed  │  │      record, or attributed
//!              │                                         │  │      (AfterPay): reconcile reads
//!              │                                         │  └─ resolve_manually(applied)
//!              │                                         └─ resolve_manually(not applied) ─┐
//!              │                                                                           ▼
//!              └─ refused, or never reached (nothing ambiguous before) ─────────► NOT_APPLIED
//!                                                       a later call: attempt n+1 ─► IN_FLIGHT
//! ```
//!
//! | state | meaning | a call with the same request | `reconcile` |
//! |---|---|---|---|
//! | `in_flight`, lease live | an attempt is being sent | `InProgress` (another caller) | left to its sender |
//! | `in_flight`, lease lapsed | the sender died between intent and answer | as `unknown` | as `unknown` (its lost sender noted) |
//! | `applied` | the refund exists (provider said so, a read found it, or an operator) | `Applied`, replayed, no I/O | a pending status read to its final one |
//! | `not_applied` | nothing refunded | sent again (attempt n+1) | not listed |
//! | `unknown` | it may have been applied | dedup providers: re-sent; AfterPay: `Unresolved`, no I/O | Optty, Moyasar: read, else re-sent; OpenApp: re-sent; AfterPay: read and attributed, or left with the reason |
//!
//! Every transition is written atomically with the events it appends (on PostgreSQL one
//! statement, on SQLite within one transaction that commits several callers' writes together:
//! see [`Database`'s writes](Database#writes)), and every writer checks the entry's `version`
//! (optimistic concurrency): two replicas that race for one entry never both act on the same
//! state; the loser reads again and decides again. Lease times come from the database's clock,
//! shared by every replica.
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
//! | `settled_by` | text | `answer`, `reconcile`, `manual`, `read` |
//! | `wire_ms` | bigint | time spent waiting for answers, all attempts |
//! | `created_at_ms`, `updated_at_ms`, `settled_at_ms` | bigint | timing |
//! | `version` | bigint | bumped by every write; writers compare it |
//! | `order_id` | text | the request's order (as the request holds it; `''` for a row whose stored request was no JSON when migration 3 ran) |
//! | `attempt_at_ms`, `attempt_deadline_ms` | bigint | when the latest attempt's intent was recorded, and its deadline (its answer, or its lease's expiry) |
//! | `order_lease_exempt` | boolean | a row migration 3 kept outside the per-order lease (the later of two AfterPay refunds already unresolved on one order); cleared once it settles |
//!
//! A unique index over (`provider`, `order_id`) of the AfterPay rows in flight or unknown (not
//! exempt) is the per-order lease; [`Journal::order_entries`] and
//! [`Journal::failed_after_applied`] have indexes of their own. On SQLite (migration 4) the
//! lease's index holds every row in flight or unknown (only an AfterPay row not exempt counts
//! against the lease), and is what [`Journal::unresolved`] reads: every index a refund's
//! writes change is one a query reads, since each changed index is one more page written and
//! synced per commit. On PostgreSQL (migration 5) the index of [`Journal::order_entries`] is on
//! (`order_id`, `provider`), so that no index but the primary key leads with `provider`: the
//! journal's prepared statements keep the one plan PostgreSQL makes after their fifth run
//! (its default `plan_cache_mode`), and a plan made while the table was empty still reads an
//! entry by its primary key once the table has grown. On SQLite (migration 6) the columns whose
//! values are listed above are checked by comparisons joined by `OR`, not by an `IN` list,
//! which SQLite checks through a temporary b-tree built anew on every write. On PostgreSQL
//! (migration 7) the same columns, here and in `refund_journal_events`, are of domains over
//! text (`refund_journal_state`, `refund_journal_refund_status`, `refund_journal_settled_by`,
//! `refund_journal_event_kind`, `refund_journal_outcome`) that check the same values: a
//! domain's check is prepared once per connection, a table's CHECK rebuilt from its stored
//! text by every statement that writes the table. Clients read and bind them as text.
//!
//! `refund_journal_events`: the audit trail, insert-only.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `id` | bigint identity | order of events (SQLite: the rowid, one more than the highest) |
//! | `provider`, `merchant_reference` | text | the entry |
//! | `at_ms` | bigint | when |
//! | `kind` | text | `intent`, `answer`, `lease_expired`, `reconcile`, `manual`, `status`, `read`, `failed_after_applied` ([`EventKind`]) |
//! | `attempt`, `owner` | bigint, text (escaped) | which attempt, which sender (`operator` for manual) |
//! | `outcome`, `http_status`, `error_kind` | text, bigint, text (escaped) | what the answer said |
//! | `detail` | text (escaped) | the error as displayed, a reason, or the operator's note |
//! | `elapsed_ms` | bigint | how long the attempt waited for its answer |
//!
//! Secrets are never stored: a request holds none, no header is kept, errors display none,
//! and a PostgreSQL URL is held as a secret and shown nowhere (an error names the host, port
//! and database only).

#![warn(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "refunds-journal needs a backend: turn on its `sqlite` feature, its `postgres` feature, or both"
);

mod attribution;
mod database;
mod entry;
mod error;
mod fingerprint;
mod journal;
mod machine;
pub mod reconciler;
mod store;
mod text;

#[cfg(feature = "postgres")]
pub use database::DEFAULT_SCHEMA;
pub use database::Database;
pub use entry::{Entry, EntryState, Event, EventKind, Lease, SettledBy, outcome_str};
pub use error::{ErrorOutcome, JournalError};
pub use fingerprint::{canonical_json, fingerprint};
pub use journal::{
    Journal, JournalConfig, JournaledRefund, ReconcileFailure, ReconcileReport, Reconciliation,
    Resolution,
};
pub use reconciler::{ProviderBackoff, ReconcilerConfig};
