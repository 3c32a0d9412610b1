//! Orders and recorded refunds: what every provider's server keeps, behind one lock. What a
//! provider keeps beside them (duplicate keys, tokens, its own per-order flags) lives in its
//! room, and the rules that read a seed's provider-specific fields too.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::money;

/// What a new refund on an order settles as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Final: the money went back (Optty `SUCCESSFUL`, AfterPay and Moyasar
    /// success).
    #[default]
    Succeeded,
    /// Registered but not final (Optty `PENDING`, every OpenApp refund until
    /// [`crate::ProviderHandle::settle_refund`]).
    Pending,
    /// Settled as failed ([`crate::ProviderHandle::settle`]): the money did
    /// not go back, so the refund no longer counts towards the order's
    /// refunded total. Only a pending refund can fail; new refunds are never
    /// recorded as failed.
    Failed,
}

/// An order to create in a provider's sandbox. Amounts are in major units
/// (`100.00` = AUD 100.00) for every provider; Moyasar and OpenApp convert
/// them exactly to their integer minor units (Moyasar by the ISO 4217
/// exponent: SAR 2, KWD 3, JPY 0; OpenApp always in 1/100s as its docs say)
/// and a seed that does not convert exactly is refused.
///
/// The same JSON shape is accepted by `POST /__admin/orders`, e.g.
/// `{"id":"ORD-1","currency":"AUD","captured":100.00}`. The optional fields one provider reads
/// are here so that one JSON shape serves every server; the rules that read them are in that
/// provider's room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSeed {
    /// The order id in the provider's path (Optty `orderReference`, AfterPay
    /// `orderNumber`, Moyasar `id`) or, for OpenApp, the `shopOrderId`.
    pub id: String,
    /// ISO 4217 currency code, fixed for the order's lifetime.
    pub currency: String,
    /// The captured amount, the ceiling of all refunds together.
    #[serde(with = "json_decimal::number")]
    pub captured: Decimal,
    /// The authorized amount (defaults to `captured`); reported by AfterPay
    /// and Moyasar.
    #[serde(
        default,
        with = "json_decimal::option_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorized: Option<Decimal>,
    /// Already refunded before the sandbox saw the order (default 0).
    #[serde(default, with = "json_decimal::number")]
    pub refunded: Decimal,
    /// AfterPay's capture number (default
    /// [`crate::afterpay::DEFAULT_CAPTURE_NUMBER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_number: Option<String>,
    /// OpenApp's `oaOrderId` (defaults to `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oa_order_id: Option<String>,
    /// OpenApp: the merchant that owns the order (default
    /// [`crate::openapp::SANDBOX_MERCHANT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What new refunds settle as; only Optty lets this vary (`PENDING` or
    /// `SUCCESSFUL`). OpenApp refunds are always pending.
    #[serde(default)]
    pub refund_status: RefundStatus,
}

impl OrderSeed {
    /// An order of `captured` major units in `currency`, nothing refunded.
    pub fn new(id: impl Into<String>, currency: impl Into<String>, captured: Decimal) -> Self {
        Self {
            id: id.into(),
            currency: currency.into(),
            captured,
            authorized: None,
            refunded: Decimal::ZERO,
            capture_number: None,
            oa_order_id: None,
            owner: None,
            refund_status: RefundStatus::Succeeded,
        }
    }

    /// An order of `captured_minor` minor units of `currency` (by its ISO
    /// 4217 exponent), for Moyasar-style seeding.
    ///
    /// # Panics
    /// If `currency` is not an ISO 4217 code with an exponent.
    pub fn from_minor(id: impl Into<String>, currency: &str, captured_minor: i64) -> Self {
        let exp = money::exponent(currency)
            .unwrap_or_else(|| panic!("{currency} is not an ISO 4217 currency with decimals"));
        Self::new(id, currency, money::from_minor(captured_minor, exp))
    }

    /// Sets the amount refunded before the sandbox saw the order.
    pub fn refunded(mut self, amount: Decimal) -> Self {
        self.refunded = amount;
        self
    }

    /// Sets the authorized amount (default: the captured amount).
    pub fn authorized(mut self, amount: Decimal) -> Self {
        self.authorized = Some(amount);
        self
    }

    /// Sets AfterPay's capture number.
    pub fn capture_number(mut self, number: impl Into<String>) -> Self {
        self.capture_number = Some(number.into());
        self
    }

    /// Sets OpenApp's `oaOrderId`.
    pub fn oa_order_id(mut self, id: impl Into<String>) -> Self {
        self.oa_order_id = Some(id.into());
        self
    }

    /// Sets the owning merchant (OpenApp ownership errors).
    pub fn owner(mut self, merchant: impl Into<String>) -> Self {
        self.owner = Some(merchant.into());
        self
    }

    /// Sets what new refunds on this order settle as (Optty).
    pub fn refund_status(mut self, status: RefundStatus) -> Self {
        self.refund_status = status;
        self
    }
}

/// Why a seed was refused: the field at fault (as named in the seed's JSON)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid order seed: {field}: {message}")]
pub struct SeedError {
    /// The seed field at fault, e.g. `refunded`.
    pub field: &'static str,
    /// What is wrong, e.g. `refunded exceeds captured`.
    pub message: String,
}

impl SeedError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        SeedError {
            field,
            message: message.into(),
        }
    }
}

/// One refund the sandbox recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRefund {
    /// The provider's id of the refund: Optty `bnplRefundId`, AfterPay
    /// refund number, Moyasar transaction id, OpenApp `caseId`.
    pub id: String,
    /// The client's duplicate key when it sent one: Optty `refundReference`,
    /// AfterPay `transactionReference`, Moyasar `transaction_id`, OpenApp
    /// `caseId`.
    pub reference: Option<String>,
    /// The refunded amount in major units.
    #[serde(with = "json_decimal::number")]
    pub amount: Decimal,
    /// Settled or pending.
    pub status: RefundStatus,
    /// When it was recorded, RFC 3339 UTC.
    pub created_at: String,
}

/// A snapshot of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The seed's id.
    pub id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Captured amount, major units.
    #[serde(with = "json_decimal::number")]
    pub captured: Decimal,
    /// Authorized amount, major units.
    #[serde(with = "json_decimal::number")]
    pub authorized: Decimal,
    /// Refunded so far (seeded plus recorded), major units.
    #[serde(with = "json_decimal::number")]
    pub refunded: Decimal,
    /// Refunds recorded through the API, oldest first.
    pub refunds: Vec<RecordedRefund>,
}

impl OrderState {
    /// What can still be refunded: captured minus refunded.
    pub fn refundable(&self) -> Decimal {
        self.captured - self.refunded
    }
}

/// The sandbox's record of an order: the public snapshot plus the seed, whose
/// provider-specific fields the provider's room reads.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub state: OrderState,
    pub seed: OrderSeed,
    pub created: SystemTime,
    pub updated: SystemTime,
    /// When each refund of `state.refunds` was recorded, in the same order: what the read
    /// delay counts from.
    recorded: Vec<Recorded>,
}

/// When a refund was recorded: on the wall clock (for the times a read shows) and on the
/// monotonic one (for the read delay).
#[derive(Debug, Clone, Copy)]
struct Recorded {
    at: SystemTime,
    instant: Instant,
}

/// A refund as a read shows it: one recorded at least the read delay ago.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readable<'a> {
    pub refund: &'a RecordedRefund,
    /// When it was recorded (wall clock, to the nanosecond).
    pub recorded_at: SystemTime,
}

impl Order {
    /// Records a refund and moves the totals.
    pub fn record(&mut self, refund: RecordedRefund) {
        self.state.refunded += refund.amount;
        self.state.refunds.push(refund);
        let now = Recorded {
            at: SystemTime::now(),
            instant: Instant::now(),
        };
        self.recorded.push(now);
        self.updated = now.at;
    }

    /// The refunds a read shows, oldest first: those recorded at least `delay` ago (all of them
    /// for a zero delay). Each in its current status: a settlement shows at once on a refund
    /// already shown.
    pub fn readable(&self, delay: Duration) -> Vec<Readable<'_>> {
        self.state
            .refunds
            .iter()
            .zip(&self.recorded)
            .filter(|(_, recorded)| delay.is_zero() || recorded.instant.elapsed() >= delay)
            .map(|(refund, recorded)| Readable {
                refund,
                recorded_at: recorded.at,
            })
            .collect()
    }
}

/// The orders of one provider's server, by seed id.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub orders: BTreeMap<String, Order>,
}

/// Locks ignoring poisoning: a panicking handler leaves the store in a
/// state that is still consistent (every mutation is a single step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a provider represents amounts, which decides which seeds convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    /// Decimal major units (Optty, AfterPay).
    Major,
    /// Integer minor units by ISO 4217 exponent (Moyasar).
    IsoMinor,
    /// Integer 1/100s whatever the currency (OpenApp).
    Hundredths,
}

impl Units {
    /// The number of decimals an amount may have, `None` for unlimited.
    pub fn exponent(self, currency: &str) -> Option<u32> {
        match self {
            Units::Major => None,
            Units::IsoMinor => money::exponent(currency),
            Units::Hundredths => Some(2),
        }
    }
}

/// Checks a seed and turns it into an order record.
pub(crate) fn build_order(seed: OrderSeed, units: Units) -> Result<Order, SeedError> {
    if seed.id.is_empty() {
        return Err(SeedError::new("id", "id must not be empty"));
    }
    if money::exponent(&seed.currency).is_none() {
        return Err(SeedError::new(
            "currency",
            format!("{} is not an ISO 4217 currency code", seed.currency),
        ));
    }
    if seed.refund_status == RefundStatus::Failed {
        return Err(SeedError::new(
            "refund_status",
            "new refunds settle as SUCCEEDED or PENDING, never FAILED",
        ));
    }
    let authorized = seed.authorized.unwrap_or(seed.captured);
    for (field, amount) in [
        ("captured", seed.captured),
        ("refunded", seed.refunded),
        ("authorized", authorized),
    ] {
        if amount < Decimal::ZERO {
            return Err(SeedError::new(field, "amounts must not be negative"));
        }
    }
    if seed.refunded > seed.captured {
        return Err(SeedError::new("refunded", "refunded exceeds captured"));
    }
    if authorized < seed.captured {
        return Err(SeedError::new("captured", "captured exceeds authorized"));
    }
    if let Some(exp) = units.exponent(&seed.currency) {
        for (field, amount) in [
            ("captured", seed.captured),
            ("refunded", seed.refunded),
            ("authorized", authorized),
        ] {
            if money::to_minor(amount, exp).is_none() {
                return Err(SeedError::new(
                    field,
                    format!(
                        "{amount} {} has more than {exp} decimals for this provider",
                        seed.currency
                    ),
                ));
            }
        }
    }
    let now = SystemTime::now();
    Ok(Order {
        state: OrderState {
            id: seed.id.clone(),
            currency: seed.currency.clone(),
            captured: seed.captured,
            authorized,
            refunded: seed.refunded,
            refunds: Vec::new(),
        },
        seed,
        created: now,
        updated: now,
        recorded: Vec::new(),
    })
}

/// `created_at` for a refund recorded now.
pub(crate) fn now_rfc3339() -> String {
    clock::rfc3339(SystemTime::now())
}
