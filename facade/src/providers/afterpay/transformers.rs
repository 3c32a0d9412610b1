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

use std::time::SystemTime;

use afterpay_api::types::{
    GetOrderResponse, Refund as OrderRefund, RefundOrderItem, RefundOrderItemRefundType,
    RefundOrderRequest, RefundOrderResponse,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::answer::json_text;
use crate::error::{ErrorKind, ProviderMessage, RefundError};
use crate::lookup::{Finding, Lookup, RecordedRefund};
use crate::model::{LineItem, Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::error_body::ErrorBody;
use crate::providers::mapping::{
    answer_error, decode, raw, read_error, read_failed, undocumented, with_body_text,
};

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
/// | status | body | result | outcome |
/// |---|---|---|---|
/// | 2xx | `RefundOrderResponse` (a UTF-8 BOM before it dropped; totals read exactly, `300.000` and `3e2` are 300) | `Ok`, succeeded (AfterPay refunds synchronously) | applied |
/// | 2xx | anything else | [`ErrorKind::Protocol`] | unknown |
/// | 400 | the documented array of ResponseMessage, or one ResponseMessage object | [`ErrorKind::InvalidRequest`] naming the most telling message's `fieldReference` as our request path; every message kept, errors before notifications | not applied |
/// | 400 | ASP.NET ModelState `{type, title, status, errors: {Field: [..]}}` (`CaptureNumber`, `Items[0].Quantity`, `$.items[0].quantity`) | [`ErrorKind::InvalidRequest`] naming the first field as our request path, `title` as the provider's message, every field's text kept | not applied |
/// | 400 | HTML, plain text, empty, any other JSON | [`ErrorKind::InvalidRequest`] on `request`, the text (or "empty body") kept | not applied |
/// | 401 | any (the docs name none) | [`ErrorKind::Unauthorized`], any text kept | not applied |
/// | 404 | any (not documented; an unknown order) | [`ErrorKind::OrderNotFound`], any text kept | not applied |
/// | other 4xx | any | by status (`providers::kind_for_status`): 403 `Forbidden`, 408/429 `Transient`, 409/425 `Protocol` (unknown), others `InvalidRequest` | not applied but 409/425 |
/// | 5xx (500 is documented without a body) | any | [`ErrorKind::ServerError`] | unknown |
///
/// An amount beyond what is left to refund is **not** told apart: it is an
/// [`ErrorKind::InvalidRequest`] like any other 400 (still not applied), never
/// [`ErrorKind::ExceedsRefundable`]. Riverty's refund page
/// (<https://docs.riverty.com/bnpl/api_reference/refund_payment>) lists an example named
/// "Unsuccessful Request, Refund Amount Exceeds Capture Amount", but its body (code and text)
/// could not be read, and its response code list
/// (<https://docs.riverty.com/bnpl/documentation/response_codes>) names no refund code (its
/// generic `400.003` "Value out of range" says nothing about which limit). A code or a wording
/// of our own (the sandbox once sent `RefundAmountTooHigh`) would misread the day Riverty
/// sends something else, so none is recognised.
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    read_answer(request, answer).map_err(|error| error.with_deduplication(super::DEDUPLICATES))
}

fn read_answer(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer, &decode(PROVIDER, answer)?),
        400 => Err(refusal(answer)),
        401 => Err(with_text(
            answer_error(PROVIDER, answer, ErrorKind::Unauthorized),
            answer,
            "API user is unauthorized (X-Auth-Key)",
        )),
        404 => Err(with_text(
            answer_error(PROVIDER, answer, ErrorKind::OrderNotFound),
            answer,
            "order not found",
        )),
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

/// Riverty's `ResponseMessage` read without its enums: an `actionCode` or `type` the spec does
/// not list, or a code sent as a number, must not make the whole error unreadable.
#[derive(Debug, Default)]
struct LenientMessage {
    type_: Option<String>,
    code: Option<String>,
    message: Option<String>,
    customer_facing_message: Option<String>,
    field_reference: Option<String>,
}

impl LenientMessage {
    /// A ResponseMessage from a JSON object; `None` for an object without a code or a text, and
    /// for a lone object (`alone`, not in an array) that has no field only a ResponseMessage has
    /// (`code`, `type`, `actionCode`, `fieldReference`, `customerFacingMessage`): a bare
    /// `{message}` is any framework's body, read as text.
    fn from_object(map: &Map<String, Value>, alone: bool) -> Option<LenientMessage> {
        if alone
            && ![
                "code",
                "type",
                "actionCode",
                "fieldReference",
                "customerFacingMessage",
            ]
            .iter()
            .any(|key| map.contains_key(*key))
        {
            return None;
        }
        let text = |key: &str| match map.get(key) {
            Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let message = LenientMessage {
            type_: text("type"),
            code: text("code"),
            message: text("message"),
            customer_facing_message: text("customerFacingMessage"),
            field_reference: text("fieldReference"),
        };
        (message.code.is_some()
            || message.message.is_some()
            || message.customer_facing_message.is_some())
        .then_some(message)
    }

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

/// The ResponseMessages of a body in the documented shape (a JSON array of them) or as a single
/// object; `None` for any other body (ModelState, HTML, empty, ...).
fn response_messages(body: &[u8]) -> Option<Vec<LenientMessage>> {
    match serde_json::from_slice::<Value>(json_text(body)).ok()? {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_object()
                    .and_then(|map| LenientMessage::from_object(map, false))
            })
            .collect(),
        // A ModelState body also has `type` and `title`; its `errors` make it not a message.
        Value::Object(map) if !map.contains_key("errors") => {
            LenientMessage::from_object(&map, true).map(|message| vec![message])
        }
        _ => None,
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

/// A 400: a refusal whatever its body, naming the field the body names where it can be mapped
/// to our request, every text the body holds kept.
fn refusal(answer: &Answer) -> RefundError {
    let (messages, headline, code, body) = match response_messages(&answer.body) {
        Some(messages) => {
            let kept = ranked(&messages);
            let headline = kept.first().map(|m| m.message.clone());
            let code = kept.first().and_then(|m| m.code.clone());
            (kept, headline, code, None)
        }
        None => {
            let body = ErrorBody::read(&answer.body);
            (body.messages.clone(), None, None, Some(body))
        }
    };
    let first = messages.first();
    let kind = ErrorKind::InvalidRequest {
        field: first
            .and_then(|m| m.field.as_deref())
            .map_or_else(|| "request".to_owned(), request_path),
        reason: first
            .map(|m| m.message.clone())
            .filter(|reason| !reason.is_empty())
            .or_else(|| body.as_ref().and_then(|b| b.message.clone()))
            .unwrap_or_else(|| format!("refused with HTTP {}", answer.status)),
    };
    let error = answer_error(PROVIDER, answer, kind);
    match body {
        Some(body) => with_body_text(error, answer, body),
        None => {
            let mut error = error.with_provider_messages(messages);
            if let Some(headline) = headline {
                error = error.with_provider_message(headline);
            }
            match code {
                Some(code) => error.with_provider_code(code),
                None => error,
            }
        }
    }
}

/// `error` with whatever the body says (ResponseMessages, or any text read leniently); `fallback`
/// as the message when the body is empty.
fn with_text(error: RefundError, answer: &Answer, fallback: &str) -> RefundError {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return error.with_provider_message(fallback);
    }
    match response_messages(&answer.body) {
        Some(messages) => {
            let kept = ranked(&messages);
            let mut error = error;
            if let Some(headline) = kept.first() {
                error = error.with_provider_message(headline.message.clone());
                if let Some(code) = &headline.code {
                    error = error.with_provider_code(code.clone());
                }
            }
            error.with_provider_messages(kept)
        }
        None => with_body_text(error, answer, ErrorBody::read(&answer.body)),
    }
}

/// A field name Riverty (or the ASP.NET model binder in front of it) reports, as a path into
/// [`RefundRequest`]: `captureNumber`, `CaptureNumber`, `items[2].productId`,
/// `Items[2].ProductId`, `$.items[2].quantity` become `capture_number`,
/// `line_items[2].product_id`, `line_items[2].quantity`; `request` when it names nothing we send.
fn request_path(field: &str) -> String {
    let field = field.trim();
    let field = field
        .strip_prefix("$.")
        .or_else(|| field.strip_prefix('$'))
        .unwrap_or(field);
    if field.is_empty() {
        return "request".to_owned();
    }
    let mut path = Vec::new();
    for segment in field.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (segment, None),
        };
        let ours = match name.to_ascii_lowercase().as_str() {
            "capturenumber" => "capture_number",
            "transactionreference" => "merchant_reference",
            "items" | "orderitems" => "line_items",
            "productid" => "product_id",
            "description" => "description",
            "grossunitprice" | "netunitprice" => "unit_price",
            "vatamount" => "unit_vat",
            "vatpercent" => "vat_percent",
            "quantity" => "quantity",
            _ => return "request".to_owned(),
        };
        path.push(match index {
            Some(index) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{ours}[{index}]")
            }
            Some(_) => return "request".to_owned(),
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

/// Maps Get Order's answer (`GET /api/v3/orders/{orderNumber}`): the one path from its bytes to
/// a [`Lookup`]. A listed refund is booked (Riverty's refunds have no status): succeeded.
/// Amounts are read as absolute values (the documented examples are negative).
///
/// | status | body | `known_refund_id` | result |
/// |---|---|---|---|
/// | 2xx | the order, its `refunds[]` listing `refundNumber` = the known number | given | [`Finding::Found`] |
/// | 2xx | the order, not listing it | given | [`Finding::Absent`] |
/// | 2xx | the order with no refunds | none | [`Finding::Absent`] |
/// | 2xx | the order with refunds | none | [`Finding::Unattributed`]: every refund, for the journal to attribute (Riverty echoes no reference of ours) |
/// | 2xx | not an order | either | [`ErrorKind::Protocol`] |
/// | other | any | either | by status (as a refund answer of that status, outcome unknown) |
///
/// Every error leaves the refund's outcome unknown.
pub fn read_result(
    request: &RefundRequest,
    known_refund_id: Option<&str>,
    answer: &Answer,
    read_at: SystemTime,
) -> Result<Lookup, RefundError> {
    if !(200..=299).contains(&answer.status) {
        return Err(read_error(PROVIDER, answer));
    }
    let order: GetOrderResponse = decode(PROVIDER, answer).map_err(read_failed)?;
    let order_currency = order
        .order_details
        .as_ref()
        .and_then(|details| details.currency.as_deref());
    let recorded = |refund: &OrderRefund| -> Result<RecordedRefund, RefundError> {
        let code = refund.currency.as_deref().or(order_currency);
        let currency = match code {
            Some(code) => Currency::from_code(code.trim())
                .map_err(|err| read_failed(protocol_text(answer, format!("currency: {err}"))))?,
            None => request.amount.currency(),
        };
        let amount = refund
            .amount
            .map(|amount| money(answer, amount.get().abs(), currency, "refunds[].amount"))
            .transpose()
            .map_err(read_failed)?;
        Ok(RecordedRefund {
            provider_refund_id: refund.refund_number.clone(),
            status: RefundStatus::Succeeded,
            amount,
            created_at: refund.inserted_at.clone(),
            failure_reason: None,
        })
    };
    let finding = match known_refund_id {
        Some(known) => match order
            .refunds
            .iter()
            .find(|refund| refund.refund_number.as_deref().map(str::trim) == Some(known))
        {
            Some(refund) => Finding::Found(recorded(refund)?),
            None => Finding::Absent,
        },
        None if order.refunds.is_empty() => Finding::Absent,
        None => Finding::Unattributed(
            order
                .refunds
                .iter()
                .map(recorded)
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Lookup {
        provider: PROVIDER,
        finding,
        read_at,
        raw: raw(answer),
    })
}

fn protocol_text(answer: &Answer, message: String) -> RefundError {
    answer_error(PROVIDER, answer, ErrorKind::Protocol).with_provider_message(message)
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
        // ASP.NET ModelState names: PascalCase, JSON paths.
        assert_eq!(request_path("CaptureNumber"), "capture_number");
        assert_eq!(request_path("Items[0].Quantity"), "line_items[0].quantity");
        assert_eq!(
            request_path("$.items[0].quantity"),
            "line_items[0].quantity"
        );
        assert_eq!(
            request_path("$.orderItems[1].grossUnitPrice"),
            "line_items[1].unit_price"
        );
        assert_eq!(request_path("$"), "request");
        assert_eq!(request_path("items[x].quantity"), "request");
    }

    fn request() -> RefundRequest {
        RefundRequest::new(
            Provider::AfterPay,
            "ORDER-1",
            Money::parse("60.00", "EUR").unwrap(),
            crate::MerchantReference::new("RF-1").unwrap(),
        )
        .with_capture_number("000000001")
    }

    fn error(status: u16, body: &str) -> RefundError {
        refund_result(&request(), &Answer::new(status, body.as_bytes().to_vec()))
            .expect_err("an error")
    }

    #[test]
    fn an_over_refund_is_a_refusal_never_told_apart_by_an_invented_code() {
        for code in ["RefundAmountTooHigh", "400.003"] {
            let body = format!(
                r#"[{{"type":"BusinessError","code":"{code}","message":"Refund amount exceeds capture amount","fieldReference":"items"}}]"#
            );
            let err = error(400, &body);
            assert!(
                matches!(err.kind(), ErrorKind::InvalidRequest { field, .. } if field == "line_items"),
                "{err:?}"
            );
            assert_eq!(err.outcome(), crate::Outcome::NotApplied);
        }
    }

    #[test]
    fn every_400_body_is_a_refusal() {
        for body in [
            "",
            "<html><body><h1>400 Bad Request</h1></body></html>",
            r#"{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1","title":"One or more validation errors occurred.","status":400,"errors":{"$.items[0].quantity":["The JSON value could not be converted to System.Decimal."]}}"#,
            r#"{"type":"BusinessError","code":"400.002","message":"Value is required","fieldReference":"captureNumber"}"#,
            "[]",
        ] {
            let err = error(400, body);
            assert!(
                matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
                "{body}: {err:?}"
            );
            assert_eq!(err.outcome(), crate::Outcome::NotApplied, "{body}");
        }
        assert_eq!(
            error(400, r#"{"type":"BusinessError","code":"400.002","message":"Value is required","fieldReference":"captureNumber"}"#).field(),
            Some("capture_number")
        );
    }

    fn order(refunds: &str) -> Answer {
        Answer::new(
            200,
            format!(
                r#"{{"orderDetails":{{"orderNumber":"ORDER-1","currency":"EUR"}},"refunds":{refunds}}}"#
            ),
        )
    }

    fn finding(answer: &Answer, known: Option<&str>) -> Finding {
        read_result(&request(), known, answer, SystemTime::UNIX_EPOCH)
            .unwrap()
            .finding
    }

    #[test]
    fn get_order_finds_a_known_refund_number_and_lists_the_rest_unattributed() {
        let two = order(
            r#"[{"refundNumber":"R-1","amount":-185,"balance":-185,"insertedAt":"2026-12-03T10:00:00Z","captureNumber":"000000001"},
                {"refundNumber":"R-2","amount":-25.21}]"#,
        );
        let Finding::Found(found) = finding(&two, Some("R-2")) else {
            panic!("R-2 is listed")
        };
        assert_eq!(found.status, RefundStatus::Succeeded);
        assert_eq!(found.amount, Some(Money::parse("25.21", "EUR").unwrap()));
        assert_eq!(finding(&two, Some("R-3")), Finding::Absent);
        let Finding::Unattributed(all) = finding(&two, None) else {
            panic!("without a number nothing is ours by the record")
        };
        assert_eq!(
            all.iter()
                .map(|r| (r.provider_refund_id.as_deref(), r.amount))
                .collect::<Vec<_>>(),
            [
                (Some("R-1"), Some(Money::parse("185", "EUR").unwrap())),
                (Some("R-2"), Some(Money::parse("25.21", "EUR").unwrap()))
            ]
        );
        assert_eq!(finding(&order("[]"), None), Finding::Absent);
    }

    #[test]
    fn a_failed_read_leaves_the_outcome_unknown() {
        for (status, body) in [
            (
                400,
                r#"[{"type":"BusinessError","code":"400.003","message":"Order not found"}]"#,
            ),
            (401, ""),
            (404, ""),
            (502, "<html>bad gateway</html>"),
        ] {
            let error = read_result(
                &request(),
                None,
                &Answer::new(status, body),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap_err();
            assert_eq!(error.outcome(), crate::Outcome::Unknown, "{status}");
        }
    }
}
