//! AfterPay (Riverty): unified model <-> `afterpay_api` wire types. Pure: no I/O.
//!
//! | unified | AfterPay |
//! |---|---|
//! | `order_id` | path `orderNumber` |
//! | `capture_number` | `captureNumber` (required) |
//! | `merchant_reference` | `transactionReference` (≤100; the only reference field Riverty offers) |
//! | `line_items[i]` | `items[i]`: `productId`, `description`, `grossUnitPrice` = unit price, `vatAmount` = unit VAT, `netUnitPrice` = gross - VAT, `vatPercent`, `quantity`, `lineNumber` = i + 1, `refundType` (`Return` for a returned-goods reason, else `Refund`) |
//! | `amount` | not sent: Riverty computes it from the items, or refunds the whole capture without items |
//! | `reason`, `description` | `refundType` per item; the text has no field (validation keeps it within limits, it is not sent) |

use afterpay_api::types::{
    RefundOrderItem, RefundOrderItemRefundType, RefundOrderRequest, RefundOrderResponse,
    ResponseMessage,
};
use rust_decimal::Decimal;

use crate::error::{ErrorKind, ProviderMessage, RefundError};
use crate::model::{LineItem, Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::{decode, raw_json, undocumented};

const PROVIDER: Provider = Provider::AfterPay;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RefundError {
    RefundError::invalid(field, reason).provider(PROVIDER)
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
        capture_number: capture_number
            .try_into()
            .map_err(|_| invalid("capture_number", "at most 50 characters"))?,
        items,
        order_items: Vec::new(),
        transaction_reference: Some(
            request
                .merchant_reference
                .as_str()
                .try_into()
                .map_err(|_| invalid("merchant_reference", "at most 100 characters"))?,
        ),
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
        product_id: item
            .product_id
            .as_str()
            .try_into()
            .map_err(|_| invalid(field("product_id"), "at most 100 characters"))?,
        description: item.description.clone(),
        gross_unit_price: item.unit_price.to_major_decimal(),
        net_unit_price: net.to_major_decimal(),
        vat_amount: item.unit_vat.to_major_decimal(),
        vat_percent: item.vat_percent,
        quantity: Decimal::from(item.quantity),
        line_number: i32::try_from(index + 1).ok(),
        refund_type: Some(refund_type),
        group_id: None,
        type_: None,
        unit_code: None,
        vat_category: None,
    })
}

fn money(value: Decimal, currency: Currency, field: &str) -> Result<Money, RefundError> {
    Money::new(value, currency).map_err(|err| {
        RefundError::new(ErrorKind::Protocol)
            .provider(PROVIDER)
            .status(200)
            .message(format!("{field}: {err}"))
    })
}

/// Maps a 200 answer: AfterPay refunds synchronously and answers with the order's totals and
/// the refund numbers it created. It does not echo the amount, so `amount` is the request's.
pub fn refund_success(
    request: &RefundRequest,
    answer: &RefundOrderResponse,
) -> Result<Refund, RefundError> {
    let currency = request.amount.currency();
    let refunded_total = answer
        .total_refunded_amount
        .map(|total| money(total, currency, "totalRefundedAmount"))
        .transpose()?;
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: answer.refund_numbers.first().cloned(),
        status: RefundStatus::Succeeded,
        amount: request.amount,
        refunded_total,
        captured_total: Some(money(
            answer.total_captured_amount,
            currency,
            "totalCapturedAmount",
        )?),
        raw: raw_json(answer),
    })
}

/// Maps a 400 array of ResponseMessage, keeping every message. Riverty documents no codes;
/// the kind is read from the code and message words (`TooHigh`/`exceed`), and
/// otherwise the first message names the invalid field (`fieldReference`).
pub fn refund_error(status: u16, messages: &[ResponseMessage]) -> RefundError {
    let kept = provider_messages(messages);
    let words = |m: &ResponseMessage| {
        format!(
            "{} {}",
            m.code.as_deref().unwrap_or_default(),
            m.message.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase()
    };
    let kind = if messages.iter().any(|m| {
        let w = words(m);
        w.contains("toohigh") || w.contains("exceed") || w.contains("too high")
    }) {
        ErrorKind::ExceedsRefundable { limit: None }
    } else {
        let first = kept.first();
        ErrorKind::InvalidRequest {
            field: first
                .and_then(|m| m.field.clone())
                .unwrap_or_else(|| "request".to_owned()),
            reason: first.map(|m| m.message.clone()).unwrap_or_default(),
        }
    };
    let mut error = RefundError::new(kind).provider(PROVIDER).status(status);
    if let Some(first) = kept.first() {
        error = error.message(first.message.clone());
        if let Some(code) = &first.code {
            error = error.code(code.clone());
        }
    }
    error.messages(kept)
}

/// Every message of a ResponseMessage array, in our terms.
fn provider_messages(messages: &[ResponseMessage]) -> Vec<ProviderMessage> {
    messages
        .iter()
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

/// Maps any answer from its status and body bytes. 401 and 500 have no documented body.
/// Statuses the page does not list are judged by their status code alone.
pub fn refund_result(
    request: &RefundRequest,
    status: u16,
    body: &[u8],
) -> Result<Refund, RefundError> {
    match status {
        200..=299 => refund_success(request, &decode(PROVIDER, status, body)?),
        400 => Err(refund_error(
            status,
            &decode::<Vec<ResponseMessage>>(PROVIDER, status, body)?,
        )),
        401 => Err(RefundError::new(ErrorKind::Unauthorized)
            .provider(PROVIDER)
            .status(status)
            .message("API user is unauthorized (X-Auth-Key)")),
        // Not in the docs; Riverty answers an unknown order with a 404 whose ResponseMessage
        // array (if any) is kept.
        404 => {
            let messages: Vec<ResponseMessage> = serde_json::from_slice(body).unwrap_or_default();
            Err(RefundError::new(ErrorKind::OrderNotFound)
                .provider(PROVIDER)
                .status(status)
                .messages(provider_messages(&messages)))
        }
        _ => Err(undocumented(PROVIDER, status, body)),
    }
}
