//! The state every provider's server keeps and every operation on it, in one place: orders,
//! the refund ledger and settlement, fault rules, request counting and the request log, and
//! the read delay (how long a recorded refund stays out of the provider's reads).
//!
//! Provider-neutral: the provider rooms ([`crate::optty`] and the others) read and record
//! refunds through [`Shared::store`], and keep what only they have (duplicate keys, in-flight
//! requests, per-order flags) in a [`RoomBook`] of their own, which the operations here keep in
//! step with the orders. [`crate::ProviderHandle`]'s methods and the admin HTTP handlers
//! ([`crate::admin`]) both call the operations here, so what a Rust test and a client in another
//! language can do and see is the same.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::fault::{Fault, FaultHandle, FaultRule, Faults, Trigger};
use crate::state::{
    self, OrderSeed, OrderState, RecordedRefund, RefundStatus, SeedError, Store, Units, lock,
};

/// How many requests the request log keeps (the oldest are dropped).
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// What a provider's room keeps beside the shared orders (its duplicate keys, the requests it
/// is working on, flags of its own per order), told by the operations here when orders go, so
/// that a re-seeded or removed order leaves nothing of its past behind.
///
/// The operations call it with the orders locked; a room locks its book after the orders too
/// (never the other way round), so the two locks cannot deadlock.
pub(crate) trait RoomBook: Debug + Send + Sync {
    /// The order with this seed id was replaced by a new seed or removed.
    fn forget(&self, order_id: &str);

    /// Every order was removed.
    fn forget_all(&self);

    /// Another id the order seeded as `seed` answers to in the admin API and the ledger
    /// filter, beside its seed id (OpenApp: its `oaOrderId`).
    fn alias<'a>(&self, _seed: &'a OrderSeed) -> Option<&'a str> {
        None
    }

    /// How many duplicate keys are being processed right now.
    fn in_flight(&self) -> usize {
        0
    }

    /// A refund of `order` was settled through the admin API: its status changed to
    /// `refund.status` (a settlement to the status it has already calls nothing). Called with
    /// the orders locked, so it must not block (Optty queues a notification).
    fn settled(&self, _order: &OrderState, _refund: &RecordedRefund) {}
}

/// The state every provider keeps.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The provider's name in the list ([`crate::PROVIDERS`]).
    pub provider: &'static str,
    pub units: Units,
    pub store: Mutex<Store>,
    pub faults: Arc<Faults>,
    /// What the provider's room keeps of its own.
    book: Arc<dyn RoomBook>,
    /// Requests to the provider's routes: only through the operations below.
    requests: AtomicUsize,
    /// Only through the operations below.
    log: Mutex<RequestLog>,
    /// How long a recorded refund stays out of reads: only through the operations below.
    read_delay: Mutex<Duration>,
}

impl Shared {
    pub fn new(provider: &'static str, units: Units, book: Arc<dyn RoomBook>) -> Arc<Self> {
        Arc::new(Shared {
            provider,
            units,
            store: Mutex::new(Store::default()),
            faults: Arc::new(Faults::default()),
            book,
            requests: AtomicUsize::new(0),
            log: Mutex::new(RequestLog::default()),
            read_delay: Mutex::new(Duration::ZERO),
        })
    }
}

/// The longest read delay the admin API accepts (1 hour).
pub const MAX_READ_DELAY_MS: u64 = 3_600_000;

/// What kind of error an admin operation met, and so its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminErrorKind {
    /// 400: the input is invalid.
    Invalid,
    /// 404: no such order, refund, fault or route.
    NotFound,
    /// 405: the admin path does not take this method.
    MethodNotAllowed,
    /// 409: the request contradicts the state (a settled refund asked to
    /// change its outcome).
    Conflict,
    /// 413: the request body is too large.
    TooLarge,
}

impl AdminErrorKind {
    /// The HTTP status the admin API answers with.
    pub fn status(self) -> u16 {
        match self {
            AdminErrorKind::Invalid => 400,
            AdminErrorKind::NotFound => 404,
            AdminErrorKind::MethodNotAllowed => 405,
            AdminErrorKind::Conflict => 409,
            AdminErrorKind::TooLarge => 413,
        }
    }
}

/// Why an admin operation was refused, naming the field at fault. The HTTP
/// answer is `{"error": message, "field": field}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct AdminError {
    /// The kind, and so the HTTP status.
    pub kind: AdminErrorKind,
    /// The field, query or path parameter at fault (`fault.status`,
    /// `captured`, `order_id`..), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl AdminError {
    fn new(kind: AdminErrorKind, field: Option<&str>, message: impl Into<String>) -> Self {
        AdminError {
            kind,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// 400 about `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(AdminErrorKind::Invalid, Some(field), message)
    }

    /// 404 about `field`.
    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        Self::new(AdminErrorKind::NotFound, Some(field), message)
    }

    pub(crate) fn method_not_allowed(method: impl std::fmt::Display, path: &str) -> Self {
        Self::new(
            AdminErrorKind::MethodNotAllowed,
            None,
            format!("{method} is not allowed on {path}"),
        )
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            AdminErrorKind::TooLarge,
            Some("body"),
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// The same error about `prefix.field` (or `prefix` alone).
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = Some(match self.field {
                Some(f) if f.starts_with('[') => format!("{prefix}{f}"),
                Some(f) => format!("{prefix}.{f}"),
                None => prefix.to_owned(),
            });
        }
        self
    }
}

impl From<SeedError> for AdminError {
    fn from(e: SeedError) -> Self {
        AdminError::invalid(e.field, e.message)
    }
}

/// Which refunds [`crate::ProviderHandle::ledger`] returns; `None` fields
/// match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only refunds of this order (by its id or the provider's other id for it, OpenApp's
    /// `oaOrderId`).
    pub order: Option<String>,
    /// Only refunds recorded under this duplicate key.
    pub reference: Option<String>,
    /// Only refunds in this status.
    pub status: Option<RefundStatus>,
}

/// One refund of the ledger: a [`RecordedRefund`] with its order's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The order's seed id.
    pub order_id: String,
    /// [`RecordedRefund::id`].
    pub id: String,
    /// [`RecordedRefund::reference`], the duplicate key.
    pub reference: Option<String>,
    /// [`RecordedRefund::amount`], major units.
    #[serde(with = "json_decimal::number")]
    pub amount: Decimal,
    /// [`RecordedRefund::status`].
    pub status: RefundStatus,
    /// [`RecordedRefund::created_at`].
    pub created_at: String,
}

impl LedgerEntry {
    fn new(order_id: &str, r: &RecordedRefund) -> Self {
        LedgerEntry {
            order_id: order_id.to_owned(),
            id: r.id.clone(),
            reference: r.reference.clone(),
            amount: r.amount,
            status: r.status,
            created_at: r.created_at.clone(),
        }
    }

    /// The refund without its order id.
    pub fn into_refund(self) -> RecordedRefund {
        RecordedRefund {
            id: self.id,
            reference: self.reference,
            amount: self.amount,
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// How a logged request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An answer was sent (`status` says which).
    Answered,
    /// The connection was closed without an answer
    /// ([`Fault::DropAfterCommit`]).
    Dropped,
    /// The client went away before the answer was ready.
    ClientGone,
}

/// One entry of the request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// 1, 2, 3.. per server, in the order requests ended.
    pub seq: u64,
    /// When the request arrived, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `POST`..
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The status answered; `null` when no answer was sent.
    pub status: Option<u16>,
    /// How the request ended.
    pub outcome: Outcome,
    /// The duplicate key the body carried (Optty `refundReference`,
    /// AfterPay `transactionReference`, Moyasar `transaction_id`, OpenApp
    /// `caseId`), if any.
    pub duplicate_key: Option<String>,
    /// The kind of the injected fault that fired on it (`drop_after_commit`..),
    /// if any.
    pub fault: Option<String>,
    /// Arrival to end, milliseconds.
    pub duration_ms: u64,
}

/// A server's request log, bounded.
#[derive(Debug, Default)]
struct RequestLog {
    next_seq: u64,
    entries: VecDeque<LoggedRequest>,
}

/// The operations, shared by [`crate::ProviderHandle`] and the admin HTTP handlers.
impl Shared {
    /// The key of an order by its seed id or the other id its provider knows it by
    /// ([`RoomBook::alias`]).
    fn resolve(&self, store: &Store, id: &str) -> Option<String> {
        if store.orders.contains_key(id) {
            return Some(id.to_owned());
        }
        store
            .orders
            .iter()
            .find(|(_, o)| self.book.alias(&o.seed) == Some(id))
            .map(|(key, _)| key.clone())
    }

    pub fn seed(&self, seed: OrderSeed) -> Result<OrderState, SeedError> {
        let order = state::build_order(seed, self.units)?;
        let snapshot = order.state.clone();
        let mut store = lock(&self.store);
        self.book.forget(&snapshot.id);
        store.orders.insert(snapshot.id.clone(), order);
        Ok(snapshot)
    }

    pub fn order(&self, id: &str) -> Option<OrderState> {
        let store = lock(&self.store);
        let key = self.resolve(&store, id)?;
        store.orders.get(&key).map(|o| o.state.clone())
    }

    /// How many orders there are.
    pub fn order_count(&self) -> usize {
        lock(&self.store).orders.len()
    }

    pub fn orders(&self) -> Vec<OrderState> {
        lock(&self.store)
            .orders
            .values()
            .map(|o| o.state.clone())
            .collect()
    }

    pub fn delete_order(&self, id: &str) -> Option<OrderState> {
        let mut store = lock(&self.store);
        let key = self.resolve(&store, id)?;
        self.book.forget(&key);
        store.orders.remove(&key).map(|o| o.state)
    }

    pub fn reset_orders(&self) -> usize {
        let mut store = lock(&self.store);
        self.book.forget_all();
        std::mem::take(&mut store.orders).len()
    }

    pub fn reset(&self) {
        self.reset_orders();
        self.clear_faults();
        self.clear_request_log();
        self.requests.store(0, Ordering::SeqCst);
    }

    pub fn ledger(&self, filter: &LedgerFilter) -> Vec<LedgerEntry> {
        let store = lock(&self.store);
        let only = match &filter.order {
            Some(id) => match self.resolve(&store, id) {
                Some(key) => Some(key),
                None => return Vec::new(),
            },
            None => None,
        };
        store
            .orders
            .iter()
            .filter(|(key, _)| only.as_ref().is_none_or(|k| k == *key))
            .flat_map(|(key, o)| o.state.refunds.iter().map(move |r| (key, r)))
            .filter(|(_, r)| {
                filter
                    .reference
                    .as_ref()
                    .is_none_or(|k| r.reference.as_ref() == Some(k))
                    && filter.status.is_none_or(|s| r.status == s)
            })
            .map(|(key, r)| LedgerEntry::new(key, r))
            .collect()
    }

    /// Counts one request to the provider's routes.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// How many requests reached the provider's routes since the last reset.
    pub fn requests_received(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.book.in_flight()
    }

    pub fn settle(
        &self,
        order_id: &str,
        refund_id: &str,
        status: RefundStatus,
    ) -> Result<LedgerEntry, AdminError> {
        if status == RefundStatus::Pending {
            return Err(AdminError::invalid(
                "status",
                "a refund settles as SUCCEEDED or FAILED",
            ));
        }
        let mut store = lock(&self.store);
        let key = self
            .resolve(&store, order_id)
            .ok_or_else(|| AdminError::not_found("order_id", format!("no order {order_id}")))?;
        let order = store
            .orders
            .get_mut(&key)
            .ok_or_else(|| AdminError::not_found("order_id", format!("no order {order_id}")))?;
        let refund = order
            .state
            .refunds
            .iter_mut()
            .find(|r| r.id == refund_id)
            .ok_or_else(|| {
                AdminError::not_found(
                    "refund_id",
                    format!("order {order_id} has no refund {refund_id}"),
                )
            })?;
        match (refund.status, status) {
            (from, to) if from == to => {}
            (RefundStatus::Pending, to) => {
                refund.status = to;
                let settled = refund.clone();
                if to == RefundStatus::Failed {
                    order.state.refunded -= settled.amount;
                }
                order.updated = SystemTime::now();
                self.book.settled(&order.state, &settled);
            }
            (from, to) => {
                return Err(AdminError::new(
                    AdminErrorKind::Conflict,
                    Some("status"),
                    format!(
                        "refund {refund_id} is settled as {}; it cannot become {}",
                        status_name(from),
                        status_name(to)
                    ),
                ));
            }
        }
        let entry = order
            .state
            .refunds
            .iter()
            .find(|r| r.id == refund_id)
            .map(|r| LedgerEntry::new(&key, r));
        entry.ok_or_else(|| AdminError::not_found("refund_id", "the refund vanished"))
    }

    /// How long a recorded refund stays out of the provider's reads.
    pub fn read_delay(&self) -> Duration {
        *lock(&self.read_delay)
    }

    pub fn set_read_delay(&self, delay: Duration) {
        *lock(&self.read_delay) = delay;
    }

    pub fn add_fault(self: &Arc<Self>, fault: Fault, trigger: Trigger) -> FaultHandle {
        self.faults.add(fault, trigger)
    }

    pub fn fault_rules(&self) -> Vec<FaultRule> {
        self.faults.list()
    }

    pub fn clear_fault(&self, id: u64) -> bool {
        self.faults.remove(id)
    }

    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    pub fn request_log(&self, since: Option<u64>) -> Vec<LoggedRequest> {
        lock(&self.log)
            .entries
            .iter()
            .filter(|e| since.is_none_or(|s| e.seq > s))
            .cloned()
            .collect()
    }

    /// How many requests the log holds.
    pub fn request_log_len(&self) -> usize {
        lock(&self.log).entries.len()
    }

    pub fn clear_request_log(&self) -> usize {
        std::mem::take(&mut lock(&self.log).entries).len()
    }

    /// Appends one entry (dropping the oldest beyond the capacity) and
    /// returns it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log_request(
        &self,
        at: SystemTime,
        took: Duration,
        method: String,
        path: String,
        status: Option<u16>,
        outcome: Outcome,
        duplicate_key: Option<String>,
        fault: Option<&Fault>,
    ) -> LoggedRequest {
        let mut log = lock(&self.log);
        log.next_seq += 1;
        let entry = LoggedRequest {
            seq: log.next_seq,
            time: clock::rfc3339_ms(at),
            method,
            path,
            status,
            outcome,
            duplicate_key,
            fault: fault.map(|f| f.kind().to_owned()),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        };
        if log.entries.len() == REQUEST_LOG_CAPACITY {
            log.entries.pop_front();
        }
        log.entries.push_back(entry.clone());
        entry
    }
}

/// A refund status as the admin API writes it.
pub(crate) fn status_name(s: RefundStatus) -> &'static str {
    match s {
        RefundStatus::Succeeded => "SUCCEEDED",
        RefundStatus::Pending => "PENDING",
        RefundStatus::Failed => "FAILED",
    }
}
