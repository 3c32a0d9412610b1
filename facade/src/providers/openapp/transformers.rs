//! OpenApp: unified model <-> `openapp_api` wire types (typify, from OpenApp's JSON Schema).
//! Pure: no I/O.
//!
//! | unified | OpenApp |
//! |---|---|
//! | `order_id` | `shopOrderId` (≤36) |
//! | `provider_order_id` | `oaOrderId` (required) |
//! | `amount` | `amount` in 1/100s + `currency` |
//! | `merchant_reference` | `caseId` (≤36, unique per order: the duplicate key) |
//! | `reason` | `reason` (`RETURNED`, `WARRANTY`, `OTHER`; `OTHER` when absent) |
//! | `description` | `notes` (≤500) |
//! | `line_items[i]` | `products[i]`: `id` = product id, `refundedQuantity` = quantity, `amount` = line total in 1/100s |
//!
//! A 2xx only confirms registration: the refund stays [`RefundStatus::Pending`] until OpenApp
//! settles it (visible in its settlement report).

use openapp_api::{ErrorResponse, Reason, RefundAcknowledgement, RefundProduct};

use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::Money;
use crate::providers::{decode, kind_for_status, undocumented};

const PROVIDER: Provider = Provider::OpenApp;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RefundError {
    RefundError::invalid(field, reason).provider(PROVIDER)
}

fn hundredths(money: &Money, field: &str) -> Result<u64, RefundError> {
    money
        .to_minor_units()
        .ok()
        .and_then(|minor| u64::try_from(minor).ok())
        .ok_or_else(|| invalid(field, "must be a non-negative amount in 1/100s"))
}

/// The wire body of a refund. The generated types enforce the schema's maxLength limits; a
/// violation comes back as a field-level error.
pub fn refund_body(request: &RefundRequest) -> Result<openapp_api::RefundRequest, RefundError> {
    let oa_order_id = request.provider_order_id.clone().ok_or_else(|| {
        invalid(
            "provider_order_id",
            "OpenApp needs its own order id (oaOrderId)",
        )
    })?;
    let products = request
        .line_items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = |name: &str| format!("line_items[{index}].{name}");
            let total = item
                .line_total()
                .map_err(|err| invalid(field("quantity"), err.to_string()))?;
            Ok(RefundProduct {
                id: item
                    .product_id
                    .as_str()
                    .try_into()
                    .map_err(|_| invalid(field("product_id"), "at most 36 characters"))?,
                // Quantities are whole units; the schema types them as a JSON number.
                refunded_quantity: item.quantity.into(),
                amount: hundredths(&total, &field("unit_price"))?,
                notes: None,
            })
        })
        .collect::<Result<Vec<_>, RefundError>>()?;
    Ok(openapp_api::RefundRequest {
        oa_order_id,
        shop_order_id: request
            .order_id
            .as_str()
            .try_into()
            .map_err(|_| invalid("order_id", "at most 36 characters"))?,
        currency: request.amount.currency().code().to_owned(),
        amount: hundredths(&request.amount, "amount")?,
        case_id: request
            .merchant_reference
            .as_str()
            .try_into()
            .map_err(|_| invalid("merchant_reference", "at most 36 characters"))?,
        reason: match request.reason {
            Some(RefundReason::Returned) => Reason::Returned,
            Some(RefundReason::Warranty) => Reason::Warranty,
            Some(RefundReason::Other) | None => Reason::Other,
        },
        notes: request
            .description
            .as_deref()
            .map(|notes| {
                notes
                    .try_into()
                    .map_err(|_| invalid("description", "at most 500 characters"))
            })
            .transpose()?,
        products,
    })
}

/// Maps a 2xx acknowledgement: registered, so [`RefundStatus::Pending`]. Its shape is not
/// documented, but it must be a JSON object: anything else (a proxy's HTML page, a wrong base
/// URL) is [`ErrorKind::Protocol`], never a registered refund.
pub fn refund_success(
    request: &RefundRequest,
    status: u16,
    body: &[u8],
) -> Result<Refund, RefundError> {
    let raw: serde_json::Value = decode(PROVIDER, status, body)?;
    let acknowledged: RefundAcknowledgement =
        serde_json::from_value(raw.clone()).map_err(|err| {
            RefundError::new(ErrorKind::Protocol)
                .provider(PROVIDER)
                .status(status)
                .message(format!("the acknowledgement is not an object ({err})"))
        })?;
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: acknowledged
            .case_id
            .map(|id| id.to_string())
            .or_else(|| Some(request.merchant_reference.as_str().to_owned())),
        status: RefundStatus::Pending,
        amount: request.amount,
        refunded_total: None,
        captured_total: None,
        raw,
    })
}

/// Maps an error by OpenApp's exception name, falling back on the status code the docs pair
/// with it.
pub fn refund_error(status: u16, answer: Option<&ErrorResponse>) -> RefundError {
    let exception = answer
        .and_then(|a| a.exception.as_deref())
        .unwrap_or_default();
    let kind = match (exception, status) {
        ("RefundExistsException", _) | ("", 409) => ErrorKind::Duplicate,
        ("RefundTooMuchException", _) => ErrorKind::ExceedsRefundable { limit: None },
        (
            "OrderNotFoundException" | "MerchantOrderOwnershipException" | "UserNotFoundException",
            _,
        ) => ErrorKind::OrderNotFound,
        // The merchant's OpenApp wallet is missing: an account set-up problem, not the order's.
        ("MerchantWalletNotFoundException", _) => ErrorKind::Forbidden,
        // A 400 other than RefundTooMuchException: the request broke OpenApp's schema.
        (_, 400) => ErrorKind::InvalidRequest {
            field: "request".to_owned(),
            reason: answer
                .and_then(|a| a.message.clone())
                .unwrap_or_else(|| "rejected by OpenApp".to_owned()),
        },
        _ => kind_for_status(status),
    };
    let mut error = RefundError::new(kind).provider(PROVIDER).status(status);
    if !exception.is_empty() {
        error = error.code(exception);
    }
    if let Some(message) = answer.and_then(|a| a.message.clone()) {
        error = error.message(message);
    }
    error
}

/// Maps any answer from its status and body bytes.
pub fn refund_result(
    request: &RefundRequest,
    status: u16,
    body: &[u8],
) -> Result<Refund, RefundError> {
    match status {
        200..=299 => refund_success(request, status, body),
        400 | 401 | 403 | 404 | 409 => {
            let answer = decode::<ErrorResponse>(PROVIDER, status, body).ok();
            Err(refund_error(status, answer.as_ref()))
        }
        _ => Err(undocumented(PROVIDER, status, body)),
    }
}
