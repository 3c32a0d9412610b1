//! What each provider's refund API can express, and the limits its spec sets.
//!
//! [`RefundRequest::validate`](crate::RefundRequest::validate) enforces these
//! before any I/O, so a request that passes is one the provider's schema
//! accepts.

use serde::Serialize;

use crate::reference::MerchantReference;

/// The refund features and limits of one provider, from its documentation and spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// An amount below the captured total can be refunded.
    pub partial_refunds: bool,
    /// Line items can be sent (AfterPay `items[]`, OpenApp `products[]`). When
    /// `false`, a request with line items is rejected (field `line_items`)
    /// rather than silently dropping them.
    pub line_items: bool,
    /// The amount can only be expressed through line items (AfterPay): without
    /// them the provider refunds the whole remaining capture, so the facade
    /// requires line items summing to the amount.
    pub partial_requires_line_items: bool,
    /// The API has a structured reason field (OpenApp `reason`); other
    /// providers fold [`RefundReason`](crate::RefundReason) into their text.
    pub reasons: bool,
    /// A successful answer is final or states its status (Optty may answer
    /// `PENDING`). When `false` (OpenApp) a 2xx only acknowledges the request
    /// and the refund is [`RefundStatus::Pending`](crate::RefundStatus).
    pub synchronous_result: bool,
    /// The provider deduplicates on the merchant reference, so re-sending a
    /// request whose outcome is unknown cannot refund twice. AfterPay
    /// documents no duplicate key: `false`.
    pub idempotent_retries: bool,
    /// The largest amount in minor units (Moyasar: 100000000).
    pub max_minor_units: Option<i64>,
    /// The longest merchant reference the provider's carrier field accepts
    /// (never more than [`MerchantReference::MAX_LEN`]).
    pub max_reference_len: usize,
    /// The longest description (OpenApp `notes`: 500). The facade's own limit
    /// of 500 characters applies to every provider.
    pub max_description_len: Option<usize>,
    /// The longest order id (OpenApp `shopOrderId`: 36).
    pub max_order_id_len: Option<usize>,
    /// The most line items per request (AfterPay: 200).
    pub max_line_items: Option<usize>,
    /// The longest line item product id (AfterPay `productId`: 100, OpenApp
    /// product `id`: 36).
    pub max_product_id_len: Option<usize>,
    /// The ISO 4217 exponents the provider's amount unit can express exactly
    /// (OpenApp counts 1/100s). `None`: any currency.
    pub currency_exponents: Option<&'static [u32]>,
    /// The step every amount must be a multiple of, in major units (Optty's
    /// `multipleOf: 0.01`, "up to 2 decimal places"), from the spec.
    pub amount_multiple_of: Option<rust_decimal::Decimal>,
    /// `capture_number` is required (AfterPay `captureNumber`).
    pub requires_capture_number: bool,
    /// The longest capture number (AfterPay: 50).
    pub max_capture_number_len: Option<usize>,
    /// `provider_order_id` is required (OpenApp `oaOrderId`).
    pub requires_provider_order_id: bool,
    /// `order_id` is one segment of the refund route's path (Optty `orderReference`, AfterPay
    /// `orderNumber`, Moyasar `id`). It is percent-encoded there, every byte but the unreserved
    /// `A-Z a-z 0-9 - . _ ~`; `.` and `..` are refused, since URL parsers resolve them (even
    /// written `%2e`) as "this" and "parent" directory instead of keeping one segment.
    pub order_id_in_path: bool,
    /// The provider's id of a refund is our merchant reference (OpenApp's `caseId`), so a
    /// refund known to exist has a known id even when no answer named it (a duplicate answer,
    /// a journal entry settled without one): [`Capabilities::refund_id_of`].
    pub refund_id_is_reference: bool,
    /// The provider publishes a read of its refund record, so
    /// [`Refunds::find`](crate::Refunds::find) can settle an unknown or pending refund by
    /// reading (see [`crate::lookup`]). OpenApp publishes none: `false`.
    pub record_read: bool,
}

impl Capabilities {
    /// The provider's id of the refund made under `reference`, where the provider's id is the
    /// reference itself ([`Capabilities::refund_id_is_reference`]); otherwise unknown until an
    /// answer names it.
    pub fn refund_id_of(&self, reference: &MerchantReference) -> Option<String> {
        self.refund_id_is_reference
            .then(|| reference.as_str().to_owned())
    }

    /// The facade's own limit on the description length, in characters.
    pub const MAX_DESCRIPTION_LEN: usize = 500;
}

impl Capabilities {
    /// What the facade assumes of a provider whose cargo feature is off: nothing it could
    /// check, and no duplicate key (a request for it fails as not configured anyway).
    pub const NOT_COMPILED: Capabilities = Capabilities {
        partial_refunds: false,
        line_items: false,
        partial_requires_line_items: false,
        reasons: false,
        synchronous_result: false,
        idempotent_retries: false,
        max_minor_units: None,
        max_reference_len: MerchantReference::MAX_LEN,
        max_description_len: None,
        max_order_id_len: None,
        max_line_items: None,
        max_product_id_len: None,
        currency_exponents: None,
        amount_multiple_of: None,
        requires_capture_number: false,
        max_capture_number_len: None,
        requires_provider_order_id: false,
        order_id_in_path: false,
        refund_id_is_reference: false,
        record_read: false,
    };

    /// A spec's `multipleOf` text as a decimal step (`None` if it is not a positive decimal).
    #[cfg(feature = "optty")]
    pub(crate) fn step(multiple_of: &str) -> Option<rust_decimal::Decimal> {
        rust_decimal::Decimal::from_str_exact(multiple_of)
            .ok()
            .filter(|step| step.is_sign_positive() && !step.is_zero())
    }

    /// The shorter of our own reference limit and the provider's field limit.
    #[allow(
        dead_code,
        reason = "shared by the rooms: a build with some providers' features off leaves it unused"
    )]
    pub(crate) const fn reference_len(provider_max: usize) -> usize {
        if provider_max < MerchantReference::MAX_LEN {
            provider_max
        } else {
            MerchantReference::MAX_LEN
        }
    }
}
