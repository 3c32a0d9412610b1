//! The unified refund model: one [`RefundRequest`] in, one [`Refund`] out, for
//! every [`Provider`].

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::{Money, MoneyError, decimal_string};
pub use crate::provider::{ByProvider, Provider};
use crate::reference::MerchantReference;

/// Why the refund is made (OpenApp's `reason` enum). Providers without a
/// reason field get it folded into their description text
/// ([`RefundRequest::folded_description`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The goods were returned.
    Returned,
    /// A warranty claim.
    Warranty,
    /// Any other reason.
    Other,
}

impl RefundReason {
    /// A short English label: `"Returned"`, `"Warranty"`, `"Other"`.
    pub fn label(self) -> &'static str {
        match self {
            RefundReason::Returned => "Returned",
            RefundReason::Warranty => "Warranty",
            RefundReason::Other => "Other",
        }
    }
}

/// One refunded order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineItem {
    /// The shop's product id (AfterPay `productId`, OpenApp product `id`).
    pub product_id: String,
    /// Product description (AfterPay `description`).
    pub description: String,
    /// Number of units refunded, at least 1.
    pub quantity: u32,
    /// Gross price of one unit, VAT included.
    pub unit_price: Money,
    /// VAT contained in `unit_price`, per unit.
    pub unit_vat: Money,
    /// VAT rate in percent (`20` for 20 %), as a decimal string on the wire.
    #[serde(with = "decimal_string")]
    #[schemars(with = "decimal_string::DecimalString")]
    pub vat_percent: Decimal,
}

impl LineItem {
    /// `unit_price * quantity`, exact; [`MoneyError::OutOfRange`] on overflow.
    pub fn line_total(&self) -> Result<Money, MoneyError> {
        self.unit_price
            .checked_mul(self.quantity)
            .ok_or_else(|| MoneyError::OutOfRange {
                amount: format!("{} x {}", self.unit_price, self.quantity),
                currency: self.unit_price.currency().code().to_owned(),
                detail: "the line total exceeds the decimal range",
            })
    }

    /// `unit_price - unit_vat` (net price of one unit); `None` if the two are
    /// in different currencies.
    pub fn net_unit_price(&self) -> Option<Money> {
        self.unit_price.checked_sub(&self.unit_vat)
    }
}

/// A request to refund (part of) a captured payment.
///
/// Build it with [`RefundRequest::new`] and the `with_*` methods, then check it
/// with [`RefundRequest::validate`] (the adapters call it before any I/O).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefundRequest {
    /// The provider that took the payment.
    pub provider: Provider,
    /// The order id in the provider's URL or body: Optty `orderReference`,
    /// AfterPay `orderNumber`, Moyasar order `id`, OpenApp `shopOrderId`.
    ///
    /// In a URL it is always exactly one path segment of the documented route: every byte but
    /// `A-Z a-z 0-9 - . _ ~` is percent-encoded (`a/b` is sent as `a%2Fb`, `a\b` as `a%5Cb`),
    /// and `.` and `..`, which no encoding keeps in one segment, are refused before any I/O
    /// (`InvalidRequest` on `order_id`). The providers document free-form order references
    /// (Optty, Riverty) and UUIDs (Moyasar), so encoding, not refusal, is the rule for
    /// everything else.
    pub order_id: String,
    /// The amount to refund; must be positive.
    pub amount: Money,
    /// The duplicate key of this refund (kept across retries).
    pub merchant_reference: MerchantReference,
    /// Why the refund is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefundReason>,
    /// Free text (at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The refunded lines; when present their totals must sum to `amount`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line_items: Vec<LineItem>,
    /// AfterPay `captureNumber` (required there, at most 50 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_number: Option<String>,
    /// OpenApp `oaOrderId` (required there); `order_id` is the shop's order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_order_id: Option<String>,
}

impl RefundRequest {
    /// A request with the required fields; the optional ones are empty.
    pub fn new(
        provider: Provider,
        order_id: impl Into<String>,
        amount: Money,
        merchant_reference: MerchantReference,
    ) -> RefundRequest {
        RefundRequest {
            provider,
            order_id: order_id.into(),
            amount,
            merchant_reference,
            reason: None,
            description: None,
            line_items: Vec::new(),
            capture_number: None,
            provider_order_id: None,
        }
    }

    /// Sets the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: RefundReason) -> RefundRequest {
        self.reason = Some(reason);
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> RefundRequest {
        self.description = Some(description.into());
        self
    }

    /// Sets the line items.
    #[must_use]
    pub fn with_line_items(mut self, line_items: Vec<LineItem>) -> RefundRequest {
        self.line_items = line_items;
        self
    }

    /// Sets the AfterPay capture number.
    #[must_use]
    pub fn with_capture_number(mut self, capture_number: impl Into<String>) -> RefundRequest {
        self.capture_number = Some(capture_number.into());
        self
    }

    /// Sets the OpenApp order id (`oaOrderId`).
    #[must_use]
    pub fn with_provider_order_id(mut self, provider_order_id: impl Into<String>) -> RefundRequest {
        self.provider_order_id = Some(provider_order_id.into());
        self
    }

    /// The description text for providers without a reason field: `"Returned:
    /// <description>"`, the reason label alone, the description alone, or
    /// `None` when neither is set.
    pub fn folded_description(&self) -> Option<String> {
        match (self.reason, self.description.as_deref()) {
            (Some(reason), Some(text)) => Some(format!("{}: {text}", reason.label())),
            (Some(reason), None) => Some(reason.label().to_owned()),
            (None, Some(text)) => Some(text.to_owned()),
            (None, None) => None,
        }
    }
}

/// The status of a refund as far as the provider has told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundStatus {
    /// The provider reports the refund as done.
    Succeeded,
    /// Accepted but not final (Optty `PENDING`, every OpenApp refund).
    Pending,
    /// The provider reports the refund as failed.
    Failed,
}

/// The result of a refund call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Refund {
    /// The provider that processed it.
    pub provider: Provider,
    /// The provider's id of this refund (Optty `bnplRefundId`, AfterPay
    /// `refundNumbers[0]`, Moyasar refund transaction `id`), where it gives one.
    pub provider_refund_id: Option<String>,
    /// Succeeded, pending or failed.
    pub status: RefundStatus,
    /// The amount refunded by this call.
    pub amount: Money,
    /// Everything refunded on the order so far, where the provider says.
    pub refunded_total: Option<Money>,
    /// The captured total of the order, where the provider says.
    pub captured_total: Option<Money>,
    /// The provider's answer body exactly as received (unknown fields kept), for audit and
    /// debugging; `RawAnswer::decode` reads it into a type of yours.
    pub raw: crate::answer::RawAnswer,
}
