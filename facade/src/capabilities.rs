//! What each provider's refund API can express, and the limits its spec sets.
//!
//! [`RefundRequest::validate`](crate::RefundRequest::validate) enforces these
//! before any I/O, so a request that passes is one the provider's schema
//! accepts.

use serde::Serialize;

use crate::model::Provider;
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
    /// The ISO 4217 exponents the provider's amount unit can express exactly:
    /// Optty takes "up to 2 decimal places", OpenApp counts 1/100s.
    /// `None`: any currency.
    pub currency_exponents: Option<&'static [u32]>,
    /// `capture_number` is required (AfterPay `captureNumber`).
    pub requires_capture_number: bool,
    /// The longest capture number (AfterPay: 50).
    pub max_capture_number_len: Option<usize>,
    /// `provider_order_id` is required (OpenApp `oaOrderId`).
    pub requires_provider_order_id: bool,
}

impl Capabilities {
    /// The facade's own limit on the description length, in characters.
    pub const MAX_DESCRIPTION_LEN: usize = 500;
}

impl Provider {
    /// The provider's refund features and limits.
    pub fn capabilities(self) -> Capabilities {
        match self {
            // optty-refund-openapi.md: `OrderRefundDto`; refundReference is
            // "unique per merchant"; amount "up to 2 decimal places"; the answer
            // carries `refundStatus` (SUCCESSFUL, or PENDING settled by webhook).
            Provider::Optty => Capabilities {
                partial_refunds: true,
                line_items: false,
                partial_requires_line_items: false,
                reasons: false,
                synchronous_result: true,
                idempotent_retries: true,
                max_minor_units: None,
                max_reference_len: MerchantReference::MAX_LEN,
                max_description_len: None,
                max_order_id_len: None,
                max_line_items: None,
                max_product_id_len: None,
                currency_exponents: Some(&[0, 1, 2]),
                requires_capture_number: false,
                max_capture_number_len: None,
                requires_provider_order_id: false,
            },
            // afterpay-refund.txt + README: captureNumber required (<= 50),
            // items[] (<= 200, productId <= 100) required for a partial refund,
            // transactionReference <= 100, no documented duplicate key.
            Provider::AfterPay => Capabilities {
                partial_refunds: true,
                line_items: true,
                partial_requires_line_items: true,
                reasons: false,
                synchronous_result: true,
                idempotent_retries: false,
                max_minor_units: None,
                max_reference_len: MerchantReference::MAX_LEN,
                max_description_len: None,
                max_order_id_len: None,
                max_line_items: Some(200),
                max_product_id_len: Some(100),
                currency_exponents: None,
                requires_capture_number: true,
                max_capture_number_len: Some(50),
                requires_provider_order_id: false,
            },
            // moyasar-refund.txt + README: integer minor units, at most
            // 100000000; transaction_id is the idempotency key.
            Provider::Moyasar => Capabilities {
                partial_refunds: true,
                line_items: false,
                partial_requires_line_items: false,
                reasons: false,
                synchronous_result: true,
                idempotent_retries: true,
                max_minor_units: Some(100_000_000),
                max_reference_len: MerchantReference::MAX_LEN,
                max_description_len: None,
                max_order_id_len: None,
                max_line_items: None,
                max_product_id_len: None,
                currency_exponents: None,
                requires_capture_number: false,
                max_capture_number_len: None,
                requires_provider_order_id: false,
            },
            // openapp-refund.txt (JSON Schema): amount in 1/100s, caseId <= 36
            // unique per order (409 RefundExistsException), shopOrderId <= 36,
            // notes <= 500, products[].id <= 36, reason enum, oaOrderId
            // required; a 2xx only confirms registration.
            Provider::OpenApp => Capabilities {
                partial_refunds: true,
                line_items: true,
                partial_requires_line_items: false,
                reasons: true,
                synchronous_result: false,
                idempotent_retries: true,
                max_minor_units: None,
                max_reference_len: 36,
                max_description_len: Some(500),
                max_order_id_len: Some(36),
                max_line_items: None,
                max_product_id_len: Some(36),
                currency_exponents: Some(&[2]),
                requires_capture_number: false,
                max_capture_number_len: None,
                requires_provider_order_id: true,
            },
        }
    }
}
