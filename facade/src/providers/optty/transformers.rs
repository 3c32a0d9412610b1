//! Optty: unified model <-> `optty_api` wire types. Pure: no I/O.
//!
//! | unified | Optty |
//! |---|---|
//! | `order_id` | path `orderReference` |
//! | `amount` | `refundAmount.amount` (major units, exact decimal) + `refundAmount.currency` |
//! | `merchant_reference` | `refundReference` (unique per merchant: the duplicate key) |
//! | `reason` + `description` | `refundDescription` (required; `"Refund"` when both are empty) |

use optty_api::types::{
    ErrorResponse, OrderRefundAmount, OrderRefundDto, RefundResponse, TokenRequest,
    TokenRequestGrantType, TokenRequestScope, TokenResponse,
};
use secrecy::ExposeSecret;

use crate::answer::Answer;
use crate::config::OpttyConfig;
use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::Money;
use crate::providers::{answer_error, decode, kind_for_status, raw, undocumented};

const PROVIDER: Provider = Provider::Optty;

/// `refundDescription` is required; this stands in when the request has neither reason nor
/// description.
pub const DEFAULT_DESCRIPTION: &str = "Refund";

/// The over-limit message's prefix: "You can only refund amount up to AUD 24.98".
const OVER_LIMIT_PREFIX: &str = "You can only refund amount up to ";

/// The wire body of a refund. The request must have passed [`RefundRequest::validate`].
pub fn refund_body(request: &RefundRequest) -> OrderRefundDto {
    OrderRefundDto {
        is_activated_via_o_auth: None,
        refund_amount: OrderRefundAmount {
            amount: request.amount.to_major_decimal().into(),
            currency: request.amount.currency().code().to_owned(),
        },
        refund_description: request
            .folded_description()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_owned()),
        refund_reference: request.merchant_reference.as_str().to_owned(),
    }
}

/// The token endpoint's form body. It holds the client secret: never log or print it.
pub fn token_body(config: &OpttyConfig) -> TokenRequest {
    TokenRequest {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.expose_secret().to_owned(),
        grant_type: TokenRequestGrantType::ClientCredentials,
        scope: TokenRequestScope::ApiUser,
    }
}

/// Maps any answer from its status, headers and body bytes: the one path from Optty's bytes to
/// our result.
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx | `Ok`; `refundStatus` SUCCESSFUL succeeded, FAILED failed, PENDING or any other value pending | applied |
/// | 400 "You can only refund amount up to AUD 24.98" | [`ErrorKind::ExceedsRefundable`] with the limit | not applied |
/// | 400 "Refund reference … already exists" | [`ErrorKind::Duplicate`] | applied |
/// | other 400 | [`ErrorKind::InvalidRequest`] | not applied |
/// | 401, 403, 404 | `Unauthorized`, `Forbidden`, `OrderNotFound` | not applied |
/// | 5xx (documented 500, a gateway's page), unreadable body | `ServerError` / `Protocol` | unknown |
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer, &decode(PROVIDER, answer)?),
        400 | 401 | 403 | 404 | 500 => Err(refund_error(
            answer,
            &decode::<ErrorResponse>(PROVIDER, answer)?,
        )),
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

/// Maps the token endpoint's answer. Its failures never reach the refund: not applied.
pub fn token_result(answer: &Answer) -> Result<TokenResponse, RefundError> {
    match answer.status {
        200..=299 => {
            decode(PROVIDER, answer).map_err(|err| err.with_outcome(crate::Outcome::NotApplied))
        }
        400 | 401 | 403 => Err(answer_error(PROVIDER, answer, ErrorKind::Unauthorized)
            .with_provider_message("the token endpoint refused the client credentials")),
        _ => Err(undocumented(PROVIDER, answer).with_outcome(crate::Outcome::NotApplied)),
    }
}

/// A 200. `refundStatus` SUCCESSFUL is final; PENDING is settled later by Optty's
/// REFUND_CALLBACK webhook. The spec lists no values, so any other one means the refund exists
/// but is not known to be final: pending, never an error that invites a resend.
fn refund_success(
    request: &RefundRequest,
    answer: &Answer,
    body: &RefundResponse,
) -> Result<Refund, RefundError> {
    let status = match body.refund_status.to_ascii_uppercase().as_str() {
        "SUCCESSFUL" | "SUCCESS" | "SUCCEEDED" => RefundStatus::Succeeded,
        "FAILED" | "FAILURE" | "DECLINED" | "REJECTED" => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    };
    let amount =
        Money::new(body.refunded_amount.get(), request.amount.currency()).map_err(|err| {
            answer_error(PROVIDER, answer, ErrorKind::Protocol)
                .with_provider_message(format!("refundedAmount: {err}"))
        })?;
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: Some(body.bnpl_refund_id.clone()),
        status,
        amount,
        refunded_total: None,
        captured_total: None,
        raw: raw(answer),
    })
}

/// A documented error body (`{statusCode, message, error?}`), classified by Optty's phrases
/// only: the over-limit sentence, and the duplicate-reference sentence.
fn refund_error(answer: &Answer, body: &ErrorResponse) -> RefundError {
    let message = body.message.as_str();
    let kind = match answer.status {
        400 => match message.strip_prefix(OVER_LIMIT_PREFIX) {
            Some(limit) => ErrorKind::ExceedsRefundable {
                limit: parse_limit(limit),
            },
            None if is_duplicate_reference(message) => ErrorKind::Duplicate,
            None => ErrorKind::InvalidRequest {
                field: "request".to_owned(),
                reason: message.to_owned(),
            },
        },
        status => kind_for_status(status),
    };
    let error = answer_error(PROVIDER, answer, kind).with_provider_message(message);
    match &body.error {
        Some(code) => error.with_provider_code(code.clone()),
        None => error,
    }
}

/// "Refund reference RF-1 already exists": the reference was used for another refund.
fn is_duplicate_reference(message: &str) -> bool {
    message.starts_with("Refund reference ") && message.ends_with(" already exists")
}

/// "AUD 24.98" -> Money.
fn parse_limit(text: &str) -> Option<Money> {
    let (currency, amount) = text.trim().trim_end_matches('.').split_once(' ')?;
    Money::parse(amount.trim(), currency.trim()).ok()
}
