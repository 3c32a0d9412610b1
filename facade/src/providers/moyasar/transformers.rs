//! Moyasar: unified model <-> `moyasar_api` wire types. Pure: no I/O.
//!
//! | unified | Moyasar |
//! |---|---|
//! | `order_id` | path `id` |
//! | `amount` | `amount` in integer minor units (1..=100000000) |
//! | `merchant_reference` | `transaction_id`: UUID v5 of the reference, so every retry carries the same idempotency key |
//! | `reason`, `description` | no field (not sent) |
//!
//! The answer is the whole order; this refund is the `refund` transaction whose `id` is our
//! `transaction_id`, and its `status` is the refund's status.

use std::num::NonZeroU64;

use moyasar_api::types::{ErrorResponse, Order, RefundRequest as WireRefund};

use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::{decode, kind_for_status, raw_json, undocumented};

const PROVIDER: Provider = Provider::Moyasar;

/// Moyasar's answer to a retry that arrives while the first attempt is still running.
pub const STILL_PROCESSING: &str = "Initial request is still processing.";

/// The wire body of a refund. The request must have passed [`RefundRequest::validate`].
pub fn refund_body(request: &RefundRequest) -> Result<WireRefund, RefundError> {
    let minor = request
        .amount
        .to_minor_units()
        .map_err(|err| RefundError::invalid("amount", err.to_string()).provider(PROVIDER))?;
    let amount = u64::try_from(minor)
        .ok()
        .and_then(NonZeroU64::new)
        .ok_or_else(|| RefundError::invalid("amount", "must be positive").provider(PROVIDER))?;
    Ok(WireRefund {
        amount,
        transaction_id: Some(request.merchant_reference.moyasar_transaction_id()),
    })
}

fn protocol(message: String) -> RefundError {
    RefundError::new(ErrorKind::Protocol)
        .provider(PROVIDER)
        .status(200)
        .message(message)
}

/// Maps a 200 answer (the order) to the refund transaction this request created.
pub fn refund_success(request: &RefundRequest, order: &Order) -> Result<Refund, RefundError> {
    let transaction_id = request
        .merchant_reference
        .moyasar_transaction_id()
        .to_string();
    let transaction = order
        .transactions
        .iter()
        .find(|t| t.id.as_deref() == Some(transaction_id.as_str()))
        .ok_or_else(|| {
            protocol(format!(
                "the order has no transaction {transaction_id} for this refund"
            ))
        })?;
    let status = match transaction.status.as_deref().unwrap_or_default() {
        "approved" | "succeeded" | "refunded" => RefundStatus::Succeeded,
        "initiated" | "pending" | "processing" => RefundStatus::Pending,
        "declined" | "failed" | "rejected" => RefundStatus::Failed,
        other => return Err(protocol(format!("unknown transaction status {other:?}"))),
    };
    let currency = match order.currency.as_deref() {
        Some(code) => Currency::from_code(code).map_err(|err| protocol(err.to_string()))?,
        None => request.amount.currency(),
    };
    let minor = |value: Option<i64>| value.map(|minor| Money::from_minor_units(minor, currency));
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: transaction.id.clone(),
        status,
        amount: minor(transaction.amount).unwrap_or(request.amount),
        refunded_total: minor(order.refunded_amount),
        captured_total: minor(order.captured_amount),
        raw: raw_json(order),
    })
}

/// Maps a documented error answer: 400 business rule ("Initial request is still processing."
/// is [`ErrorKind::InProgress`]), 401, 403, 404, 422 validation naming the field.
pub fn refund_error(status: u16, answer: &ErrorResponse) -> RefundError {
    let message = answer.message.as_str();
    let kind = match status {
        400 if message == STILL_PROCESSING => ErrorKind::InProgress,
        400 if is_over_refund(message) => ErrorKind::ExceedsRefundable { limit: None },
        400 | 422 => {
            // Report the first field Moyasar names, in our model's terms.
            let (field, reasons) = answer
                .errors
                .iter()
                .min_by(|a, b| a.0.cmp(b.0))
                .map(|(field, reasons)| (field.as_str(), reasons.join("; ")))
                .unwrap_or(("request", message.to_owned()));
            let field = match field {
                "transaction_id" => "merchant_reference",
                other => other,
            };
            ErrorKind::InvalidRequest {
                field: field.to_owned(),
                reason: reasons,
            }
        }
        _ => kind_for_status(status),
    };
    RefundError::new(kind)
        .provider(PROVIDER)
        .status(status)
        .message(message)
}

/// A 400 about the amount exceeding what can still be refunded (wording not documented).
fn is_over_refund(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("exceed")
        || message.contains("greater than the refundable")
        || message.contains("more than")
}

/// Maps any answer from its status and body bytes.
pub fn refund_result(
    request: &RefundRequest,
    status: u16,
    body: &[u8],
) -> Result<Refund, RefundError> {
    match status {
        200..=299 => refund_success(request, &decode(PROVIDER, status, body)?),
        400 | 401 | 403 | 404 | 422 => Err(refund_error(
            status,
            &decode::<ErrorResponse>(PROVIDER, status, body)?,
        )),
        _ => Err(undocumented(PROVIDER, status, body)),
    }
}
