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
use openapp_api::{Reason, RefundAcknowledgement, RefundProduct};
use secrecy::ExposeSecret;

use crate::answer::Answer;
use crate::answer::json_text;
use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundReason, RefundRequest, RefundStatus};
use crate::money::Money;
use crate::providers::error_body::ErrorBody;
use crate::providers::mapping::{
    answer_error, decode, raw, refusal_kind, undocumented, with_body_text,
};
use crate::providers::openapp::config::OpenAppConfig;
use crate::providers::openapp::signing::{OpenAppAuthorization, verify_openapp_signature};

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
/// the same `caseId` is safe and gets a signed answer). [`crate::providers::refund_result`]
/// passes no config: nothing is verified there.
///
/// An error body is read in any shape (`{exception, message}`, `{errorCode, errorMessage}`,
/// HTML, empty); the exception name is taken from the code field (`exception`, `errorCode`,
/// `code`; a qualified `com.x.RefundTooMuchException` or `REFUND_TOO_MUCH` spelling too) or
/// found as a word in the message, and the provider's text is kept.
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx with a JSON object, an empty body, or 204 (signed) | `Ok`, pending: OpenApp only registers the refund; `provider_refund_id` its `caseId`, else ours | applied |
/// | 409 `RefundExistsException`, or no exception named (signed) | [`ErrorKind::Duplicate`] | applied |
/// | 409 naming another documented exception | as that exception below | not applied |
/// | 409 naming an undocumented code | `Protocol` | unknown |
/// | another 4xx naming `RefundExistsException` (the status contradicts the name) | `Protocol` | unknown |
/// | 4xx `RefundTooMuchException` (documented 400) | [`ErrorKind::ExceedsRefundable`], no limit stated | not applied |
/// | 4xx `OrderNotFoundException`, `MerchantOrderOwnershipException`, `UserNotFoundException` (documented 404) | [`ErrorKind::OrderNotFound`] | not applied |
/// | 4xx `MerchantWalletNotFoundException` (documented 404) | [`ErrorKind::Forbidden`] (account set-up) | not applied |
/// | other 400 (or 4xx but 401, 403, 404, 408, 409, 425, 429), any body | [`ErrorKind::InvalidRequest`] on `request`, the message as the reason | not applied |
/// | 401, 403, 404 naming nothing documented, any body | `Unauthorized`, `Forbidden`, `OrderNotFound` | not applied |
/// | 408, 429 | `Transient` | not applied |
/// | 425 | `Protocol` | unknown |
/// | 5xx, 1xx, 3xx, a 2xx body that is neither empty nor a JSON object, unsigned or badly signed 2xx/409 | `ServerError` / `Protocol` | unknown |
pub fn refund_result(
    request: &RefundRequest,
    answer: &Answer,
    verify: Option<&OpenAppConfig>,
) -> Result<Refund, RefundError> {
    read_answer(request, answer, verify)
        .map_err(|error| error.with_deduplication(super::DEDUPLICATES))
}

fn read_answer(
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
        400..=499 => Err(refund_error(answer)),
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
/// documented: an empty body (or a 204) is the bare acknowledgement, a JSON object may name the
/// `caseId`. Anything else (a proxy's HTML page, a wrong base URL) is [`ErrorKind::Protocol`],
/// never a registered refund.
fn refund_success(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    let bare = answer.status == 204 || json_text(&answer.body).trim_ascii().is_empty();
    let acknowledged: RefundAcknowledgement = if bare {
        RefundAcknowledgement::default()
    } else {
        decode(PROVIDER, answer)?
    };
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: acknowledged
            .case_id
            .filter(|id| !id.trim().is_empty())
            .or_else(|| super::capabilities().refund_id_of(&request.merchant_reference)),
        status: RefundStatus::Pending,
        amount: request.amount,
        refunded_total: None,
        captured_total: None,
        raw: raw(answer),
    })
}

/// OpenApp's documented exceptions (openapp-refund.txt, "Errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exception {
    OrderNotFound,
    MerchantOrderOwnership,
    RefundExists,
    RefundTooMuch,
    MerchantWalletNotFound,
    UserNotFound,
}

impl Exception {
    const ALL: [(Exception, &'static str); 6] = [
        (Exception::OrderNotFound, "OrderNotFoundException"),
        (
            Exception::MerchantOrderOwnership,
            "MerchantOrderOwnershipException",
        ),
        (Exception::RefundExists, "RefundExistsException"),
        (Exception::RefundTooMuch, "RefundTooMuchException"),
        (
            Exception::MerchantWalletNotFound,
            "MerchantWalletNotFoundException",
        ),
        (Exception::UserNotFound, "UserNotFoundException"),
    ];

    fn name(self) -> &'static str {
        Exception::ALL
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |(_, name)| name)
    }

    /// A code field's value: the name (any case), qualified (`com.x.RefundTooMuchException`),
    /// without the suffix or in upper snake case (`REFUND_TOO_MUCH`).
    fn from_code(code: &str) -> Option<Exception> {
        let last = code.trim().rsplit(['.', '$', ':', '/']).next()?;
        let squashed: String = last
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let squashed = squashed.strip_suffix("exception").unwrap_or(&squashed);
        Exception::ALL.iter().find_map(|(exception, name)| {
            let name = name.strip_suffix("Exception").unwrap_or(name);
            (squashed == name.to_ascii_lowercase()).then_some(*exception)
        })
    }

    /// The full name as a word of a message ("RefundTooMuchException: amount too big").
    fn in_text(text: &str) -> Option<Exception> {
        Exception::ALL.iter().find_map(|(exception, name)| {
            text.match_indices(name)
                .any(|(at, _)| {
                    let before = text[..at].chars().next_back();
                    let after = text[at + name.len()..].chars().next();
                    !before.is_some_and(|c| c.is_alphanumeric())
                        && !after.is_some_and(|c| c.is_alphanumeric())
                })
                .then_some(*exception)
        })
    }
}

/// A 4xx, whatever its body: by OpenApp's exception name where one is found, else a refusal
/// judged by the status ([`refusal_kind`]), with 409 (documented only as
/// `RefundExistsException`) a duplicate unless the body names another code.
fn refund_error(answer: &Answer) -> RefundError {
    let body = ErrorBody::read(&answer.body);
    let exception = body
        .code
        .as_deref()
        .and_then(Exception::from_code)
        .or_else(|| body.message.as_deref().and_then(Exception::in_text))
        .or_else(|| {
            body.messages
                .iter()
                .find_map(|m| Exception::in_text(&m.message))
        });
    let kind = match (exception, answer.status) {
        (Some(Exception::RefundExists), 409) => ErrorKind::Duplicate,
        // The one documented 409; a body naming no code at all (empty, a gateway's page) is it.
        (None, 409) if body.code.is_none() => ErrorKind::Duplicate,
        // "The refund exists" under a status OpenApp never pairs with it: neither believed nor
        // taken for a refusal.
        (Some(Exception::RefundExists), _) => ErrorKind::Protocol,
        (Some(Exception::RefundTooMuch), _) => ErrorKind::ExceedsRefundable { limit: None },
        (
            Some(
                Exception::OrderNotFound
                | Exception::MerchantOrderOwnership
                | Exception::UserNotFound,
            ),
            _,
        ) => ErrorKind::OrderNotFound,
        // The merchant's OpenApp wallet is missing: an account set-up problem, not the order's.
        (Some(Exception::MerchantWalletNotFound), _) => ErrorKind::Forbidden,
        (None, status) => refusal_kind(status, &body),
    };
    let named = exception
        .filter(|_| body.code.is_none())
        .map(Exception::name);
    let error = with_body_text(answer_error(PROVIDER, answer, kind), answer, body);
    match named {
        Some(name) => error.with_provider_code(name),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Outcome;
    use crate::providers::openapp::signing::openapp_signature;
    use crate::reference::MerchantReference;

    fn request() -> RefundRequest {
        RefundRequest::new(
            PROVIDER,
            "WS1213ASDZXC231A",
            Money::parse("19.99", "PLN").unwrap(),
            MerchantReference::new("RET-123434").unwrap(),
        )
        .with_provider_order_id("OA12345678901234")
    }

    fn config() -> OpenAppConfig {
        OpenAppConfig::new("http://unused", "api-key", "api-secret")
    }

    fn signed(status: u16, body: &str) -> Answer {
        let signature = openapp_signature(
            "api-key",
            &secrecy::SecretString::from("api-secret"),
            "POST",
            operation::PATH,
            1_678_206_688_075,
            "nonce-1",
            body.as_bytes(),
        );
        Answer::new(status, body.to_owned())
            .with_header("authorization", &signature.authorization)
            .with_header(SIGNATURE_HEADER, &signature.signature)
    }

    #[test]
    fn a_signed_empty_acknowledgement_is_a_registered_refund() {
        for answer in [signed(200, ""), signed(204, ""), signed(202, " \r\n")] {
            let refund = refund_result(&request(), &answer, Some(&config())).unwrap();
            assert_eq!(refund.status, RefundStatus::Pending);
            assert_eq!(refund.provider_refund_id.as_deref(), Some("RET-123434"));
        }
    }

    #[test]
    fn an_unsigned_acknowledgement_or_409_is_never_believed() {
        for status in [200, 204, 409] {
            let err =
                refund_result(&request(), &Answer::new(status, ""), Some(&config())).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Protocol, "{status}");
            assert_eq!(err.outcome(), Outcome::Unknown, "{status}");
        }
        // Signed over another body.
        let mut forged = signed(204, "");
        forged.body = bytes::Bytes::from_static(b"{}");
        let err = refund_result(&request(), &forged, Some(&config())).unwrap_err();
        assert_eq!(err.outcome(), Outcome::Unknown);
        // Without verification (the pure dispatch) the bare acknowledgement is read as such.
        let refund = refund_result(&request(), &Answer::new(204, ""), None).unwrap();
        assert_eq!(refund.status, RefundStatus::Pending);
    }

    #[test]
    fn exception_names_in_either_field_and_any_spelling() {
        assert_eq!(
            Exception::from_code("RefundTooMuchException"),
            Some(Exception::RefundTooMuch)
        );
        assert_eq!(
            Exception::from_code("com.openapp.RefundExistsException"),
            Some(Exception::RefundExists)
        );
        assert_eq!(
            Exception::from_code("REFUND_TOO_MUCH"),
            Some(Exception::RefundTooMuch)
        );
        assert_eq!(Exception::from_code("ValidationException"), None);
        assert_eq!(
            Exception::in_text("OrderNotFoundException: order OA1 not found"),
            Some(Exception::OrderNotFound)
        );
        assert_eq!(Exception::in_text("NoOrderNotFoundExceptionHere"), None);
        for (status, body, kind) in [
            (
                400,
                r#"{"errorCode":"RefundTooMuchException","errorMessage":"too much"}"#,
                ErrorKind::ExceedsRefundable { limit: None },
            ),
            (
                400,
                r#"{"exception":"ValidationException","message":"RefundTooMuchException"}"#,
                ErrorKind::ExceedsRefundable { limit: None },
            ),
            (
                404,
                r#"{"message":"UserNotFoundException"}"#,
                ErrorKind::OrderNotFound,
            ),
            (
                404,
                r#"{"errorCode":"MerchantWalletNotFoundException"}"#,
                ErrorKind::Forbidden,
            ),
            (404, "", ErrorKind::OrderNotFound),
            (401, "<html></html>", ErrorKind::Unauthorized),
            (429, "", ErrorKind::Transient),
            (
                400,
                r#"{"errorCode":"ValidationException","errorMessage":"caseId too long"}"#,
                ErrorKind::InvalidRequest {
                    field: "request".into(),
                    reason: "caseId too long".into(),
                },
            ),
        ] {
            let err = refund_result(&request(), &Answer::new(status, body), None).unwrap_err();
            assert_eq!(err.kind(), &kind, "{status} {body}");
            assert_eq!(err.outcome(), Outcome::NotApplied, "{status} {body}");
        }
    }

    #[test]
    fn a_duplicate_only_where_documented() {
        let exists = r#"{"exception":"RefundExistsException","message":"exists"}"#;
        let err = refund_result(&request(), &signed(409, exists), Some(&config())).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Duplicate);
        assert_eq!(err.provider_code(), Some("RefundExistsException"));
        let err = refund_result(&request(), &signed(409, ""), Some(&config())).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Duplicate);
        // Another code on a 409, or the name under another status: nothing definite.
        for (status, body) in [
            (409, r#"{"errorCode":"OptimisticLockException"}"#),
            (400, exists),
            (404, exists),
        ] {
            let err = refund_result(&request(), &Answer::new(status, body), None).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Protocol, "{status} {body}");
            assert_eq!(err.outcome(), Outcome::Unknown, "{status} {body}");
        }
    }
}
