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

use crate::answer::Answer;
use crate::error::{ErrorKind, ProviderMessage, RefundError};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::{answer_error, decode, kind_for_status, raw, undocumented};

const PROVIDER: Provider = Provider::Moyasar;

/// Moyasar's answer to a retry that arrives while the first attempt is still running.
pub const STILL_PROCESSING: &str = "Initial request is still processing.";

/// The 400 message for an amount beyond what is left to refund. Moyasar documents no wording
/// for it; this is the sandbox's (unverified against production): any other 400 is an
/// invalid request, never guessed from a word such as "exceed".
pub const EXCEEDS_REFUNDABLE: &str = "Refund amount exceeds the refundable amount.";

/// The wire body of a refund. The request must have passed [`RefundRequest::validate`].
pub fn refund_body(request: &RefundRequest) -> Result<WireRefund, RefundError> {
    let minor = request
        .amount
        .to_minor_units()
        .map_err(|err| RefundError::invalid("amount", err.to_string()).with_provider(PROVIDER))?;
    let amount = u64::try_from(minor)
        .ok()
        .and_then(NonZeroU64::new)
        .ok_or_else(|| {
            RefundError::invalid("amount", "must be positive").with_provider(PROVIDER)
        })?;
    Ok(WireRefund {
        amount,
        transaction_id: Some(request.merchant_reference.moyasar_transaction_id()),
    })
}

/// Maps any answer from its status, headers and body bytes: the one path from Moyasar's bytes
/// to our result.
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx, the order lists our `transaction_id` | `Ok`, status from the transaction | applied |
/// | 2xx, the order does not list it | [`ErrorKind::Protocol`], not retryable (a retry replays the same order) | unknown |
/// | 400 "Initial request is still processing." | [`ErrorKind::InProgress`] | unknown |
/// | 400 [`EXCEEDS_REFUNDABLE`] | [`ErrorKind::ExceedsRefundable`] | not applied |
/// | other 400, 422 | [`ErrorKind::InvalidRequest`], every field Moyasar names kept | not applied |
/// | 401, 403, 404 | `Unauthorized`, `Forbidden`, `OrderNotFound` | not applied |
/// | 5xx, unreadable body | `ServerError` / `Protocol` | unknown |
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer, &decode(PROVIDER, answer)?),
        400 | 401 | 403 | 404 | 422 => Err(refund_error(
            answer,
            &decode::<ErrorResponse>(PROVIDER, answer)?,
        )),
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

fn protocol(answer: &Answer, message: String) -> RefundError {
    answer_error(PROVIDER, answer, ErrorKind::Protocol).with_provider_message(message)
}

/// The order's refund transaction for this request.
fn refund_success(
    request: &RefundRequest,
    answer: &Answer,
    order: &Order,
) -> Result<Refund, RefundError> {
    let transaction_id = request
        .merchant_reference
        .moyasar_transaction_id()
        .to_string();
    let transaction = order
        .transactions
        .iter()
        .find(|t| t.id.as_deref() == Some(transaction_id.as_str()))
        .ok_or_else(|| {
            // Moyasar accepted the call, so the refund may well exist; a retry would replay
            // this same order, so only reading the order can settle it.
            protocol(
                answer,
                format!("the order does not list the refund transaction {transaction_id}"),
            )
            .with_retry_futile()
        })?;
    let status = match transaction.status.as_deref().unwrap_or_default() {
        "approved" | "succeeded" | "refunded" => RefundStatus::Succeeded,
        "declined" | "failed" | "rejected" => RefundStatus::Failed,
        // "initiated", "pending", "processing", and any status Moyasar adds: the transaction
        // exists, so the refund is not lost; it is not known to be final.
        _ => RefundStatus::Pending,
    };
    let currency = match order.currency.as_deref() {
        Some(code) => Currency::from_code(code).map_err(|err| protocol(answer, err.to_string()))?,
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
        raw: raw(answer),
    })
}

/// A documented error body: `{message}` or `{message, errors: {field: [reasons]}}`.
fn refund_error(answer: &Answer, body: &ErrorResponse) -> RefundError {
    let message = body.message.as_str();
    // Every field Moyasar names, in a stable order, with the provider's own field name.
    let mut fields: Vec<(&String, &Vec<String>)> = body.errors.iter().collect();
    fields.sort();
    let messages: Vec<ProviderMessage> = fields
        .iter()
        .flat_map(|(field, reasons)| {
            reasons.iter().map(|reason| ProviderMessage {
                code: None,
                message: reason.clone(),
                field: Some((*field).clone()),
            })
        })
        .collect();
    let kind = match answer.status {
        400 if message == STILL_PROCESSING => ErrorKind::InProgress,
        400 if message == EXCEEDS_REFUNDABLE => ErrorKind::ExceedsRefundable { limit: None },
        400 | 422 => match fields.first() {
            Some((field, reasons)) => ErrorKind::InvalidRequest {
                field: request_path(field).to_owned(),
                reason: reasons.join("; "),
            },
            None => ErrorKind::InvalidRequest {
                field: "request".to_owned(),
                reason: message.to_owned(),
            },
        },
        status => kind_for_status(status),
    };
    answer_error(PROVIDER, answer, kind)
        .with_provider_message(message)
        .with_provider_messages(messages)
}

/// A Moyasar request field as a path into [`RefundRequest`].
fn request_path(field: &str) -> &'static str {
    match field {
        "amount" => "amount",
        "transaction_id" => "merchant_reference",
        "id" => "order_id",
        _ => "request",
    }
}
