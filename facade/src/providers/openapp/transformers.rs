//! OpenApp: unified model <-> `openapp_api` wire types (typify, from OpenApp's JSON Schema).
//! Pure: no I/O.
//!
//! | unified | OpenApp |
//! |---|---|
//! | `order_id` | `shopOrderId` (the schema's maxLength) |
//! | `provider_order_id` | `oaOrderId` (required) |
//! | `amount` | `amount` in 1/100s + `currency` |
//! | `merchant_reference` | `caseId` (the schema's maxLength; unique per order: the duplicate key) |
//! | `reason` | `reason` (`RETURNED`, `WARRANTY`, `OTHER`; `OTHER` when absent) |
//! | `description` | `notes` (the schema's maxLength) |
//! | `line_items[i]` | `products[i]`: `id` = product id, `refundedQuantity` = quantity, `amount` = line total in 1/100s |
//!
//! A 2xx only confirms registration: the refund stays [`RefundStatus::Pending`] until OpenApp
//! settles it (visible in its settlement report).

use openapp_api::operations::refund_order as operation;
use openapp_api::{ErrorResponse, Reason, RefundAcknowledgement, RefundProduct};
use secrecy::ExposeSecret;

use crate::answer::Answer;
use crate::config::OpenAppConfig;
use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::Money;
use crate::providers::{answer_error, decode, kind_for_status, raw, undocumented};
use crate::signing::{OpenAppAuthorization, verify_openapp_signature};

/// Request and response signature header.
pub const SIGNATURE_HEADER: &str = "x-app-signature";

const PROVIDER: Provider = Provider::OpenApp;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RefundError {
    RefundError::invalid(field, reason).with_provider(PROVIDER)
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
                id: item.product_id.as_str().try_into().map_err(
                    |err: openapp_api::error::ConversionError| {
                        invalid(field("product_id"), err.to_string())
                    },
                )?,
                // Quantities are whole units; the schema types them as a JSON number.
                refunded_quantity: item.quantity.into(),
                amount: hundredths(&total, &field("unit_price"))?,
                notes: None,
            })
        })
        .collect::<Result<Vec<_>, RefundError>>()?;
    Ok(openapp_api::RefundRequest {
        oa_order_id,
        shop_order_id: request.order_id.as_str().try_into().map_err(
            |err: openapp_api::error::ConversionError| invalid("order_id", err.to_string()),
        )?,
        currency: request.amount.currency().code().to_owned(),
        amount: hundredths(&request.amount, "amount")?,
        case_id: request.merchant_reference.as_str().try_into().map_err(
            |err: openapp_api::error::ConversionError| {
                invalid("merchant_reference", err.to_string())
            },
        )?,
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
                    .map_err(|err: openapp_api::error::ConversionError| {
                        invalid("description", err.to_string())
                    })
            })
            .transpose()?,
        products,
    })
}

/// Maps any answer from its status, headers and body bytes: the one path from OpenApp's bytes
/// to our result. With `verify` (the client's config, when it verifies response signatures), an
/// answer that says a refund exists (2xx, 409) must carry a valid signature; an unsigned or
/// badly signed one is never believed: [`ErrorKind::Protocol`], outcome unknown (a retry with
/// the same `caseId` is safe and gets a signed answer).
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx (a JSON object, signed) | `Ok`, pending: OpenApp only registers the refund | applied |
/// | 409 `RefundExistsException` (signed) | [`ErrorKind::Duplicate`] | applied |
/// | 400 `RefundTooMuchException` | [`ErrorKind::ExceedsRefundable`] | not applied |
/// | other 400 | [`ErrorKind::InvalidRequest`] | not applied |
/// | 404 `OrderNotFoundException`, `MerchantOrderOwnershipException`, `UserNotFoundException` | [`ErrorKind::OrderNotFound`] | not applied |
/// | 404 `MerchantWalletNotFoundException` | [`ErrorKind::Forbidden`] (account set-up) | not applied |
/// | 401, 403 | `Unauthorized`, `Forbidden` | not applied |
/// | 5xx, unreadable, unsigned or badly signed 2xx/409 | `ServerError` / `Protocol` | unknown |
pub fn refund_result(
    request: &RefundRequest,
    answer: &Answer,
    verify: Option<&OpenAppConfig>,
) -> Result<Refund, RefundError> {
    let says_refund_exists = (200..300).contains(&answer.status) || answer.status == 409;
    if says_refund_exists && let Some(config) = verify.filter(|c| c.verify_response_signatures) {
        verify_signature(config, answer)?;
    }
    match answer.status {
        200..=299 => refund_success(request, answer),
        400 | 401 | 403 | 404 | 409 => {
            let body = decode::<ErrorResponse>(PROVIDER, answer).ok();
            Err(refund_error(answer, body.as_ref()))
        }
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

/// Checks the answer's signature. Answers are signed "the same way" as requests: an
/// `authorization` header naming our API key, the request's METHOD and PATH, the signer's
/// epoch-ms and nonce, and an `x-app-signature` over the answer's body.
fn verify_signature(config: &OpenAppConfig, answer: &Answer) -> Result<(), RefundError> {
    let untrusted = |why: &str| {
        Err(answer_error(PROVIDER, answer, ErrorKind::Protocol)
            .with_provider_message(format!("the answer's signature is not trusted: {why}")))
    };
    let (Some(authorization), Some(signature)) = (
        answer.header("authorization"),
        answer.header(SIGNATURE_HEADER),
    ) else {
        return untrusted("the answer is not signed");
    };
    let Some(signed) = OpenAppAuthorization::parse(authorization) else {
        return untrusted("malformed authorization header");
    };
    if signed.api_key != config.api_key.expose_secret()
        || signed.method != operation::METHOD
        || signed.path != operation::PATH.to_uppercase()
    {
        return untrusted("it names another key, method or path");
    }
    if !verify_openapp_signature(&config.api_secret, authorization, &answer.body, signature) {
        return untrusted("x-app-signature does not match the body");
    }
    Ok(())
}

/// A 2xx acknowledgement: registered, so [`RefundStatus::Pending`]. Its shape is not
/// documented, but it must be a JSON object: anything else (a proxy's HTML page, a wrong base
/// URL) is [`ErrorKind::Protocol`], never a registered refund.
fn refund_success(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    let acknowledged: RefundAcknowledgement = decode(PROVIDER, answer)?;
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
        raw: raw(answer),
    })
}

/// An error by OpenApp's exception name, falling back on the status code the docs pair with it.
fn refund_error(answer: &Answer, body: Option<&ErrorResponse>) -> RefundError {
    let exception = body
        .and_then(|a| a.exception.as_deref())
        .unwrap_or_default();
    let kind = match (exception, answer.status) {
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
            reason: body
                .and_then(|a| a.message.clone())
                .unwrap_or_else(|| "rejected by OpenApp".to_owned()),
        },
        (_, status) => kind_for_status(status),
    };
    let mut error = answer_error(PROVIDER, answer, kind);
    if !exception.is_empty() {
        error = error.with_provider_code(exception);
    }
    if let Some(message) = body.and_then(|a| a.message.clone()) {
        error = error.with_provider_message(message);
    }
    error
}
