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
    TokenRequestGrantType, TokenRequestScope,
};
use secrecy::ExposeSecret;

use crate::config::OpttyConfig;
use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::Money;
use crate::providers::{decode, kind_for_status, raw_json, undocumented};

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
            amount: request.amount.to_major_decimal(),
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

/// Maps a 200 answer. `refundStatus` SUCCESSFUL is final; PENDING is settled later by Optty's
/// REFUND_CALLBACK webhook.
pub fn refund_success(
    request: &RefundRequest,
    answer: &RefundResponse,
) -> Result<Refund, RefundError> {
    let status = match answer.refund_status.to_ascii_uppercase().as_str() {
        "SUCCESSFUL" | "SUCCESS" | "SUCCEEDED" => RefundStatus::Succeeded,
        "PENDING" => RefundStatus::Pending,
        "FAILED" | "FAILURE" | "DECLINED" | "REJECTED" => RefundStatus::Failed,
        other => {
            return Err(RefundError::new(ErrorKind::Protocol)
                .provider(PROVIDER)
                .status(200)
                .message(format!("unknown refundStatus {other:?}")));
        }
    };
    let amount = Money::new(answer.refunded_amount, request.amount.currency()).map_err(|err| {
        RefundError::new(ErrorKind::Protocol)
            .provider(PROVIDER)
            .status(200)
            .message(format!("refundedAmount: {err}"))
    })?;
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: Some(answer.bnpl_refund_id.clone()),
        status,
        amount,
        refunded_total: None,
        captured_total: None,
        raw: raw_json(answer),
    })
}

/// Maps a documented error answer (`{statusCode, message, error?}`).
pub fn refund_error(status: u16, answer: &ErrorResponse) -> RefundError {
    let message = answer.message.as_str();
    let kind = match status {
        400 => match message.strip_prefix(OVER_LIMIT_PREFIX) {
            Some(limit) => ErrorKind::ExceedsRefundable {
                limit: parse_limit(limit),
            },
            None if message.contains("already exists") || message.contains("already used") => {
                ErrorKind::Duplicate
            }
            None => ErrorKind::InvalidRequest {
                field: "request".to_owned(),
                reason: message.to_owned(),
            },
        },
        _ => kind_for_status(status),
    };
    let error = RefundError::new(kind)
        .provider(PROVIDER)
        .status(status)
        .message(message);
    match &answer.error {
        Some(code) => error.code(code.clone()),
        None => error,
    }
}

/// "AUD 24.98" -> Money.
fn parse_limit(text: &str) -> Option<Money> {
    let (currency, amount) = text.trim().trim_end_matches('.').split_once(' ')?;
    Money::parse(amount.trim(), currency.trim()).ok()
}

/// Maps any answer from its status and body bytes.
pub fn refund_result(
    request: &RefundRequest,
    status: u16,
    body: &[u8],
) -> Result<Refund, RefundError> {
    match status {
        200..=299 => refund_success(request, &decode(PROVIDER, status, body)?),
        400 | 401 | 403 | 404 | 500 => match decode::<ErrorResponse>(PROVIDER, status, body) {
            Ok(answer) => Err(refund_error(status, &answer)),
            Err(undecodable) => Err(undecodable),
        },
        _ => Err(undocumented(PROVIDER, status, body)),
    }
}
