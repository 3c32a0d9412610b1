//! The unified refund model: one [`RefundRequest`] in, one [`Refund`] out, for
//! every [`Provider`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::capabilities::Capabilities;
use crate::error::RefundError;
use crate::money::{Money, MoneyError, decimal_string};
use crate::reference::MerchantReference;

/// A payment provider the facade can refund through.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Provider {
    /// Optty (`POST /orders/{orderReference}/refund`).
    Optty,
    /// AfterPay / Riverty (`POST /api/v3/orders/{orderNumber}/refunds`).
    AfterPay,
    /// Moyasar Payment Gateway (`POST /v1/orders/{id}/refund`).
    Moyasar,
    /// OpenApp (`POST /merchant/v1/orders/refund`).
    OpenApp,
}

impl Provider {
    /// Every provider, in declaration order.
    pub const ALL: [Provider; 4] = [
        Provider::Optty,
        Provider::AfterPay,
        Provider::Moyasar,
        Provider::OpenApp,
    ];

    /// The lower-case name: `"optty"`, `"afterpay"`, `"moyasar"`, `"openapp"`
    /// (also the serde form and the cargo feature name).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Optty => "optty",
            Provider::AfterPay => "afterpay",
            Provider::Moyasar => "moyasar",
            Provider::OpenApp => "openapp",
        }
    }
}

/// One value per provider, named by field: what code outside this crate writes instead of a
/// `match` on the `#[non_exhaustive]` [`Provider`] (which would need a `_ =>` arm). A new provider
/// adds a field here, so every `ByProvider { .. }` literal in the workspace fails to compile until
/// it says what the new provider gets; [`ByProvider::get`] matches exhaustively inside this crate.
///
/// ```
/// use refunds::{ByProvider, Provider};
///
/// let currency = ByProvider { optty: "AUD", afterpay: "EUR", moyasar: "SAR", openapp: "PLN" };
/// assert_eq!(*currency.get(Provider::Moyasar), "SAR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByProvider<T> {
    /// Optty's value.
    pub optty: T,
    /// AfterPay's value.
    pub afterpay: T,
    /// Moyasar's value.
    pub moyasar: T,
    /// OpenApp's value.
    pub openapp: T,
}

impl<T> ByProvider<T> {
    /// The value of `provider`.
    pub fn get(&self, provider: Provider) -> &T {
        match provider {
            Provider::Optty => &self.optty,
            Provider::AfterPay => &self.afterpay,
            Provider::Moyasar => &self.moyasar,
            Provider::OpenApp => &self.openapp,
        }
    }

    /// The value of `provider`, owned (for one-off values such as closures' results).
    pub fn take(self, provider: Provider) -> T {
        match provider {
            Provider::Optty => self.optty,
            Provider::AfterPay => self.afterpay,
            Provider::Moyasar => self.moyasar,
            Provider::OpenApp => self.openapp,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = RefundError;

    /// Parses the [`as_str`](Provider::as_str) form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                RefundError::invalid(
                    "provider",
                    format!("unknown provider {s:?}: expected optty, afterpay, moyasar or openapp"),
                )
            })
    }
}

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

    /// Checks the request before any I/O: the generic rules, then the
    /// provider's [`Capabilities`]. Every violation is reported at once: the
    /// error is an [`ErrorKind::InvalidRequest`](crate::ErrorKind) naming the
    /// first field, and [`RefundError::problems`] lists them all (with the
    /// request's provider set on the error).
    ///
    /// Generic rules: `order_id` not blank; `amount` positive and representable
    /// in `i64` minor units; `description` at most 500 characters; each line
    /// item with at least one product id character, quantity at least 1, prices
    /// in the request's currency, `0 <= unit_vat <= unit_price`,
    /// `0 <= vat_percent <= 100`; line totals summing exactly to `amount`.
    ///
    /// Provider rules: see [`Capabilities`]; fields a provider does not carry
    /// (`line_items` for Optty/Moyasar, `capture_number` outside AfterPay,
    /// `provider_order_id` outside OpenApp) are rejected, not silently dropped.
    pub fn validate(&self) -> Result<(), RefundError> {
        let mut problems = Problems::default();
        self.validate_generic(&mut problems);
        self.validate_for_provider(&self.provider.capabilities(), &mut problems);
        problems
            .into_error()
            .map_or(Ok(()), |error| Err(error.with_provider(self.provider)))
    }

    fn validate_generic(&self, problems: &mut Problems) {
        if self.order_id.trim().is_empty() {
            problems.push("order_id", "is required and must not be blank");
        }
        let texts = [
            ("order_id".to_owned(), Some(self.order_id.as_str())),
            ("capture_number".to_owned(), self.capture_number.as_deref()),
            (
                "provider_order_id".to_owned(),
                self.provider_order_id.as_deref(),
            ),
        ];
        let item_texts = self.line_items.iter().enumerate().flat_map(|(i, item)| {
            [
                (
                    format!("line_items[{i}].product_id"),
                    Some(item.product_id.as_str()),
                ),
                (
                    format!("line_items[{i}].description"),
                    Some(item.description.as_str()),
                ),
            ]
        });
        for (field, text) in texts.into_iter().chain(item_texts) {
            if let Some(bad) = text.and_then(|text| text.chars().find(|c| c.is_control())) {
                problems.push(field, format!("contains the control character {bad:?}"));
            }
        }
        if !self.amount.is_positive() {
            problems.push(
                "amount",
                format!("must be greater than zero, got {}", self.amount),
            );
        }
        if let Err(e) = self.amount.to_minor_units() {
            problems.push("amount", e.to_string());
        }
        if let Some(description) = &self.description {
            if description.trim().is_empty() {
                problems.push(
                    "description",
                    "must not be empty or only whitespace: leave it out instead",
                );
            }
            if let Some(bad) = description.chars().find(|c| c.is_control()) {
                problems.push(
                    "description",
                    format!("contains the control character {bad:?}"),
                );
            }
            let len = description.chars().count();
            if len > Capabilities::MAX_DESCRIPTION_LEN {
                problems.push(
                    "description",
                    format!(
                        "is {len} characters long; at most {} are allowed",
                        Capabilities::MAX_DESCRIPTION_LEN
                    ),
                );
            }
        }
        if self.line_items.is_empty() {
            return;
        }
        let currency = self.amount.currency();
        // `None` once a line total cannot be computed or added.
        let mut sum = Some(Money::zero(currency));
        for (i, item) in self.line_items.iter().enumerate() {
            let field = |name: &str| format!("line_items[{i}].{name}");
            if item.product_id.trim().is_empty() {
                problems.push(field("product_id"), "must not be blank");
            }
            if item.quantity < 1 {
                problems.push(field("quantity"), "must be at least 1");
            }
            for (name, money) in [
                ("unit_price", &item.unit_price),
                ("unit_vat", &item.unit_vat),
            ] {
                if money.currency() != currency {
                    problems.push(
                        field(&format!("{name}.currency")),
                        format!(
                            "is {} but the refund amount is in {}",
                            money.currency(),
                            currency
                        ),
                    );
                }
            }
            if item.unit_price.amount() < Decimal::ZERO {
                problems.push(field("unit_price"), "must not be negative");
            }
            if item.unit_vat.amount() < Decimal::ZERO {
                problems.push(field("unit_vat"), "must not be negative");
            }
            if item.unit_vat.amount() > item.unit_price.amount() {
                problems.push(
                    field("unit_vat"),
                    format!(
                        "{} exceeds the gross unit price {}",
                        item.unit_vat, item.unit_price
                    ),
                );
            }
            if item.vat_percent < Decimal::ZERO || item.vat_percent > Decimal::ONE_HUNDRED {
                problems.push(
                    field("vat_percent"),
                    format!("must be between 0 and 100, got {}", item.vat_percent),
                );
            }
            sum = match item.line_total() {
                Ok(total) => sum.and_then(|sum| sum.checked_add(&total)),
                Err(e) => {
                    problems.push(format!("line_items[{i}]"), e.to_string());
                    None
                }
            };
        }
        let Some(sum) = sum else {
            problems.push(
                "line_items",
                "the line totals cannot be added up in the amount's currency",
            );
            return;
        };
        if sum != self.amount {
            problems.push(
                "line_items",
                format!(
                    "line totals (unit_price x quantity) sum to {sum} but the amount is {}",
                    self.amount
                ),
            );
        }
    }

    fn validate_for_provider(&self, caps: &Capabilities, problems: &mut Problems) {
        let provider = self.provider;
        let too_long = |field: &str, len: usize, max: usize| {
            (
                field.to_owned(),
                format!("is {len} characters long; {provider} accepts at most {max}"),
            )
        };

        // The order id as one path segment: encoding keeps every other text in its segment,
        // but no encoding keeps a dot segment there (URL parsers resolve `%2e%2e` too).
        if caps.order_id_in_path && matches!(self.order_id.as_str(), "." | "..") {
            problems.push(
                "order_id",
                format!(
                    "`{}` cannot be one segment of {provider}'s refund path (URLs resolve it as a directory step)",
                    self.order_id
                ),
            );
        }

        // Amount.
        let currency = self.amount.currency();
        if let Some(exponents) = caps.currency_exponents
            && !exponents.contains(&currency.exponent())
        {
            problems.push("amount.currency",
                format!(
                    "{provider} cannot express {currency} amounts exactly ({currency} has {} decimal places; {provider} supports {})",
                    currency.exponent(),
                    exponents
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),);
        }
        if let Some(step) = caps.amount_multiple_of
            && !(self.amount.amount() % step).is_zero()
        {
            problems.push(
                "amount",
                format!(
                    "{provider} takes amounts in steps of {step}; {} is not one",
                    self.amount
                ),
            );
        }
        // An amount that does not fit i64 minor units is already a problem of its own.
        if let (Some(max), Ok(minor)) = (caps.max_minor_units, self.amount.to_minor_units())
            && minor > max
        {
            problems.push(
                "amount",
                format!(
                    "{} is {minor} minor units; {provider} accepts at most {max}",
                    self.amount
                ),
            );
        }

        // Identifiers and text.
        if let Some(max) = caps.max_order_id_len {
            let len = self.order_id.chars().count();
            if len > max {
                problems.push_pair(too_long("order_id", len, max));
            }
        }
        let reference_len = self.merchant_reference.as_str().len();
        if reference_len > caps.max_reference_len {
            problems.push_pair(too_long(
                "merchant_reference",
                reference_len,
                caps.max_reference_len,
            ));
        }
        if let (Some(max), Some(description)) = (caps.max_description_len, &self.description) {
            let len = description.chars().count();
            if len > max {
                problems.push_pair(too_long("description", len, max));
            }
        }

        // Line items. Without them AfterPay refunds the whole remaining capture whatever
        // `amount` says, so the facade could report an amount the provider did not refund.
        if caps.partial_requires_line_items && self.line_items.is_empty() {
            problems.push(
                "line_items",
                format!(
                    "{provider} takes the refunded amount only as line items (without them it \
                     refunds the whole remaining capture, whatever the amount says); list the \
                     refunded items, or one goodwill item for the amount"
                ),
            );
        }
        if !self.line_items.is_empty() {
            if !caps.line_items {
                problems.push(
                    "line_items",
                    format!(
                        "{provider} does not accept line items; send the amount without line items"
                    ),
                );
            }
            if let Some(max) = caps.max_line_items
                && self.line_items.len() > max
            {
                problems.push(
                    "line_items",
                    format!(
                        "has {} items; {provider} accepts at most {max}",
                        self.line_items.len()
                    ),
                );
            }
            if let Some(max) = caps.max_product_id_len {
                for (i, item) in self.line_items.iter().enumerate() {
                    let len = item.product_id.chars().count();
                    if len > max {
                        problems.push_pair(too_long(
                            &format!("line_items[{i}].product_id"),
                            len,
                            max,
                        ));
                    }
                }
            }
        }

        // Provider-specific identifiers.
        match (&self.capture_number, caps.requires_capture_number) {
            (None, true) => {
                problems.push("capture_number", format!("is required by {provider}"));
            }
            (Some(capture), true) => {
                if capture.trim().is_empty() {
                    problems.push("capture_number", "must not be blank");
                }
                if let Some(max) = caps.max_capture_number_len {
                    let len = capture.chars().count();
                    if len > max {
                        problems.push_pair(too_long("capture_number", len, max));
                    }
                }
            }
            (Some(_), false) => {
                problems.push(
                    "capture_number",
                    format!("is not used by {provider} (only by afterpay)"),
                );
            }
            (None, false) => {}
        }
        match (&self.provider_order_id, caps.requires_provider_order_id) {
            (None, true) => {
                problems.push("provider_order_id", format!("is required by {provider}"));
            }
            (Some(id), true) if id.trim().is_empty() => {
                problems.push("provider_order_id", "must not be blank");
            }
            (Some(_), false) => problems.push(
                "provider_order_id",
                format!("is not used by {provider} (only by openapp)"),
            ),
            _ => {}
        }
    }
}

/// The problems of one request, collected so that all are reported together.
#[derive(Default)]
struct Problems(Vec<crate::error::FieldProblem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(crate::error::FieldProblem {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn push_pair(&mut self, (field, reason): (String, String)) {
        self.push(field, reason);
    }

    fn into_error(self) -> Option<RefundError> {
        let first = self.0.first()?;
        Some(RefundError::invalid(first.field.clone(), first.reason.clone()).with_problems(self.0))
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
