//! AfterPay (Riverty): unified model <-> `afterpay_api` wire types. Pure: no I/O.
//!
//! | unified | AfterPay |
//! |---|---|
//! | `order_id` | path `orderNumber` |
//! | `capture_number` | `captureNumber` (required) |
//! | `merchant_reference` | `transactionReference` (the spec's maxLength; the only reference field Riverty offers) |
//! | `line_items[i]` | `items[i]`: `productId`, `description`, `grossUnitPrice` = unit price, `vatAmount` = unit VAT, `netUnitPrice` = gross - VAT, `vatPercent`, `quantity`, `lineNumber` = i + 1, `refundType` (`Return` for a returned-goods reason, else `Refund`) |
//! | `amount` | not sent: Riverty computes it from the items, or refunds the whole capture without items |
//! | `reason`, `description` | `refundType` per item; the text has no field (validation keeps it within limits, it is not sent) |

use afterpay_api::types::{
    RefundOrderItem, RefundOrderItemRefundType, RefundOrderRequest, RefundOrderResponse,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::answer::Answer;
use crate::error::{ErrorKind, ProviderMessage, RefundError};
use crate::model::{LineItem, Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::{answer_error, decode, raw, undocumented};

const PROVIDER: Provider = Provider::AfterPay;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RefundError {
    RefundError::invalid(field, reason).with_provider(PROVIDER)
}

/// The wire body of a refund. Field limits the generated types enforce (maxLength) come back
/// as field-level errors, though [`RefundRequest::validate`] already checks them.
pub fn refund_body(request: &RefundRequest) -> Result<RefundOrderRequest, RefundError> {
    let capture_number = request
        .capture_number
        .as_deref()
        .ok_or_else(|| invalid("capture_number", "AfterPay needs the capture to refund"))?;
    let refund_type = match request.reason {
        Some(RefundReason::Returned) => RefundOrderItemRefundType::Return,
        _ => RefundOrderItemRefundType::Refund,
    };
    let items = request
        .line_items
        .iter()
        .enumerate()
        .map(|(index, item)| refund_item(index, item, refund_type))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RefundOrderRequest {
        capture_number: capture_number.try_into().map_err(
            |err: afterpay_api::types::error::ConversionError| {
                invalid("capture_number", err.to_string())
            },
        )?,
        items,
        order_items: Vec::new(),
        transaction_reference: Some(request.merchant_reference.as_str().try_into().map_err(
            |err: afterpay_api::types::error::ConversionError| {
                invalid("merchant_reference", err.to_string())
            },
        )?),
        parent_transaction_reference: None,
        credit_note_number: None,
        merchant_id: None,
    })
}

fn refund_item(
    index: usize,
    item: &LineItem,
    refund_type: RefundOrderItemRefundType,
) -> Result<RefundOrderItem, RefundError> {
    let field = |name: &str| format!("line_items[{index}].{name}");
    let net = item
        .net_unit_price()
        .ok_or_else(|| invalid(field("unit_vat"), "must be in the unit price's currency"))?;
    Ok(RefundOrderItem {
        product_id: item.product_id.as_str().try_into().map_err(
            |err: afterpay_api::types::error::ConversionError| {
                invalid(field("product_id"), err.to_string())
            },
        )?,
        description: item.description.clone(),
        gross_unit_price: item.unit_price.to_major_decimal().into(),
        net_unit_price: net.to_major_decimal().into(),
        vat_amount: item.unit_vat.to_major_decimal().into(),
        vat_percent: item.vat_percent.into(),
        quantity: Decimal::from(item.quantity).into(),
        line_number: i32::try_from(index + 1).ok(),
        refund_type: Some(refund_type),
        group_id: None,
        type_: None,
        unit_code: None,
        vat_category: None,
    })
}

/// Maps any answer from its status, headers and body bytes: the one path from AfterPay's bytes
/// to our result. AfterPay documents no duplicate key, so an unknown outcome is never re-sent
/// ([`RefundError::is_retryable`] is `false` for it): reconcile by reading the order's refunds.
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx | `Ok`, succeeded (AfterPay refunds synchronously) | applied |
/// | 400 with a `RefundAmountTooHigh` message | [`ErrorKind::ExceedsRefundable`] | not applied |
/// | other 400 | [`ErrorKind::InvalidRequest`] naming the first error's field | not applied |
/// | 401 (no body), 403, 404 | `Unauthorized`, `Forbidden`, `OrderNotFound` | not applied |
/// | 5xx (500 has no body), unreadable body | `ServerError` / `Protocol` | unknown |
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer, &decode(PROVIDER, answer)?),
        400 => Err(refund_error(
            answer,
            &decode::<Vec<LenientMessage>>(PROVIDER, answer)?,
        )),
        401 => Err(answer_error(PROVIDER, answer, ErrorKind::Unauthorized)
            .with_provider_message("API user is unauthorized (X-Auth-Key)")),
        // Not in the docs; Riverty answers an unknown order with a 404 whose ResponseMessage
        // array (if any) is kept.
        404 => {
            let messages: Vec<LenientMessage> =
                serde_json::from_slice(&answer.body).unwrap_or_default();
            Err(answer_error(PROVIDER, answer, ErrorKind::OrderNotFound)
                .with_provider_messages(ranked(&messages)))
        }
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

/// The documented 400 code for an amount beyond what is left to refund. Riverty's page names
/// no codes; this one is the sandbox's (unverified), and only this code, never a word in a
/// message, makes an error [`ErrorKind::ExceedsRefundable`].
pub const AMOUNT_TOO_HIGH: &str = "RefundAmountTooHigh";

/// Riverty's `ResponseMessage` read without its enums: an `actionCode` or `type` the spec does
/// not list must not make the whole error unreadable.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LenientMessage {
    #[serde(rename = "type")]
    type_: Option<String>,
    code: Option<String>,
    message: Option<String>,
    customer_facing_message: Option<String>,
    field_reference: Option<String>,
}

impl LenientMessage {
    /// Business and technical errors say why the request failed; notifications do not.
    fn rank(&self) -> u8 {
        match self.type_.as_deref() {
            Some("BusinessError") => 0,
            Some("TechnicalError") => 1,
            Some("NotificationMessage") => 3,
            _ => 2,
        }
    }
}

/// Every message, the most telling first (errors before notifications, otherwise in order).
fn ranked(messages: &[LenientMessage]) -> Vec<ProviderMessage> {
    let mut order: Vec<&LenientMessage> = messages.iter().collect();
    order.sort_by_key(|m| m.rank());
    order
        .into_iter()
        .map(|m| ProviderMessage {
            code: m.code.clone(),
            message: m
                .message
                .clone()
                .or_else(|| m.customer_facing_message.clone())
                .unwrap_or_default(),
            field: m.field_reference.clone(),
        })
        .collect()
}

/// A 400 array of ResponseMessage, every message kept; the headline is the most telling one.
fn refund_error(answer: &Answer, messages: &[LenientMessage]) -> RefundError {
    let kept = ranked(messages);
    let headline = kept.first();
    let kind = if kept
        .iter()
        .any(|m| m.code.as_deref() == Some(AMOUNT_TOO_HIGH))
    {
        ErrorKind::ExceedsRefundable { limit: None }
    } else {
        ErrorKind::InvalidRequest {
            field: headline
                .and_then(|m| m.field.as_deref())
                .map_or_else(|| "request".to_owned(), request_path),
            reason: headline.map(|m| m.message.clone()).unwrap_or_default(),
        }
    };
    let mut error = answer_error(PROVIDER, answer, kind);
    if let Some(headline) = headline {
        error = error.with_provider_message(headline.message.clone());
        if let Some(code) = &headline.code {
            error = error.with_provider_code(code.clone());
        }
    }
    error.with_provider_messages(kept)
}

/// A Riverty `fieldReference` (`captureNumber`, `items[2].productId`) as a path into
/// [`RefundRequest`] (`capture_number`, `line_items[2].product_id`); `request` when it names
/// nothing we send.
fn request_path(field: &str) -> String {
    let mut path = Vec::new();
    for segment in field.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (segment, None),
        };
        let ours = match name {
            "captureNumber" => "capture_number",
            "transactionReference" => "merchant_reference",
            "items" | "orderItems" => "line_items",
            "productId" => "product_id",
            "description" => "description",
            "grossUnitPrice" | "netUnitPrice" => "unit_price",
            "vatAmount" => "unit_vat",
            "vatPercent" => "vat_percent",
            "quantity" => "quantity",
            _ => return "request".to_owned(),
        };
        path.push(match index {
            Some(index) => format!("{ours}[{index}]"),
            None => ours.to_owned(),
        });
    }
    path.join(".")
}

fn money(
    answer: &Answer,
    value: Decimal,
    currency: Currency,
    field: &str,
) -> Result<Money, RefundError> {
    Money::new(value, currency).map_err(|err| {
        answer_error(PROVIDER, answer, ErrorKind::Protocol)
            .with_provider_message(format!("{field}: {err}"))
    })
}

/// A 200: AfterPay refunds synchronously and answers with the order's totals and the refund
/// numbers it created. It does not echo the amount, so `amount` is the request's.
fn refund_success(
    request: &RefundRequest,
    answer: &Answer,
    body: &RefundOrderResponse,
) -> Result<Refund, RefundError> {
    let currency = request.amount.currency();
    let refunded_total = body
        .total_refunded_amount
        .map(|total| money(answer, total.get(), currency, "totalRefundedAmount"))
        .transpose()?;
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: body.refund_numbers.first().cloned(),
        status: RefundStatus::Succeeded,
        amount: request.amount,
        refunded_total,
        captured_total: Some(money(
            answer,
            body.total_captured_amount.get(),
            currency,
            "totalCapturedAmount",
        )?),
        raw: raw(answer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_references_become_request_paths() {
        assert_eq!(request_path("captureNumber"), "capture_number");
        assert_eq!(
            request_path("items[2].productId"),
            "line_items[2].product_id"
        );
        assert_eq!(request_path("transactionReference"), "merchant_reference");
        assert_eq!(request_path("merchantId"), "request");
    }
}
