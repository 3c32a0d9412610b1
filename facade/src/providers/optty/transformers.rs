//! Optty: unified model <-> `optty_api` wire types. Pure: no I/O.
//!
//! | unified | Optty |
//! |---|---|
//! | `order_id` | path `orderReference` |
//! | `amount` | `refundAmount.amount` (major units, exact decimal) + `refundAmount.currency` |
//! | `merchant_reference` | `refundReference` (unique per merchant: the duplicate key) |
//! | `reason` + `description` | `refundDescription` (required; `"Refund"` when both are empty) |

use optty_api::types::{
    OrderRefundAmount, OrderRefundDto, RefundResponse, TokenRequest, TokenRequestGrantType,
    TokenRequestScope, TokenResponse,
};
use secrecy::ExposeSecret;

use std::time::SystemTime;

use optty_api::types::{OrderNotification, TransactionDetails, TransactionRefund};

use crate::answer::Answer;
use crate::error::{ErrorKind, RefundError};
use crate::lookup::{Finding, Lookup, Notification, RecordedRefund};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::error_body::ErrorBody;
use crate::providers::mapping::{
    answer_error, decode, raw, read_error, read_failed, refusal_kind, undocumented, with_body_text,
};
use crate::providers::optty::config::OpttyConfig;

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
/// our result. A UTF-8 byte order mark before the JSON is dropped; an error body is read in any
/// shape (`{statusCode, message, error?}` as documented, NestJS `message` arrays, no `error`,
/// HTML, empty), its text kept as the provider's words.
///
/// | status | result | outcome |
/// |---|---|---|
/// | 2xx `refundStatus` SUCCESSFUL (SUCCESS, SUCCEEDED; any case) | `Ok`, succeeded | applied |
/// | 2xx `refundStatus` FAILED, FAILURE, DECLINED, REJECTED, CANCELLED (CANCELED; any case) | `Ok`, failed: final, nothing refunded (a new refund needs a new reference) | applied (the answer is definite) |
/// | 2xx `refundStatus` PENDING or any other value, `bnplRefundId` a string or `null` | `Ok`, pending (settled by the REFUND_CALLBACK webhook); `provider_refund_id` `None` while null | applied |
/// | 2xx `refundedAmount` a number (`100`, `100.000`, `1e2`) or a string holding one (`"100.50"`, as the published schema types it) | the refunded amount, exact, in the request's currency | applied |
/// | 4xx "You can only refund amount up to AUD 24.98" (any currency, any case, with or without a final period, `message` string or one line of a `message` array) | [`ErrorKind::ExceedsRefundable`] with the limit when it is in the request's currency (`limit: None` when it names another currency or cannot be read exactly; the text is kept) | not applied |
/// | 4xx "Refund reference RF-1 already exists" (a `message` string or array line) | [`ErrorKind::Duplicate`] | applied |
/// | 400 or another 4xx (but 401, 403, 404, 408, 409, 425, 429), any body | [`ErrorKind::InvalidRequest`] on `request`, the first message as the reason | not applied |
/// | 401, 403, 404, any body | `Unauthorized`, `Forbidden`, `OrderNotFound` | not applied |
/// | 408, 429 | `Transient` | not applied |
/// | 409, 425 (undocumented by Optty) | `Protocol` | unknown |
/// | 5xx (documented 500, a gateway's page), any body | `ServerError` | unknown |
/// | 1xx, 3xx; a 2xx body that does not decode (a `refundedAmount` that is no decimal, more decimals than the currency has) | `Protocol` | unknown |
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    read_answer(request, answer).map_err(|error| error.with_deduplication(super::DEDUPLICATES))
}

fn read_answer(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer, &decode(PROVIDER, answer)?),
        400..=499 => Err(refund_error(request, answer)),
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

/// A 2xx. `refundStatus` SUCCESSFUL is final, and so are FAILED, DECLINED and CANCELLED (no
/// money moved); PENDING is settled later by Optty's REFUND_CALLBACK webhook. The spec lists no
/// values and none of them in a fixed case, so any other one means the refund exists but is not
/// known to be final: pending, never an error that invites a resend.
fn refund_success(
    request: &RefundRequest,
    answer: &Answer,
    body: &RefundResponse,
) -> Result<Refund, RefundError> {
    let status = refund_status(&body.refund_status);
    let amount =
        Money::new(body.refunded_amount.get(), request.amount.currency()).map_err(|err| {
            answer_error(PROVIDER, answer, ErrorKind::Protocol)
                .with_provider_message(format!("refundedAmount: {err}"))
        })?;
    Ok(Refund {
        provider: PROVIDER,
        // Null (or empty) while the payment provider has not numbered a pending refund yet.
        provider_refund_id: body
            .bnpl_refund_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        status,
        amount,
        refunded_total: None,
        captured_total: None,
        raw: raw(answer),
    })
}

/// What an Optty refund status says, in the refund's answer and in Transaction Details alike:
/// SUCCESSFUL is final, and so are FAILED, DECLINED and CANCELLED (no money moved); any other
/// (PENDING, a status Optty adds) means the refund exists but is not known to be final.
pub fn refund_status(status: &str) -> RefundStatus {
    match status.trim().to_ascii_uppercase().as_str() {
        "SUCCESSFUL" | "SUCCESS" | "SUCCEEDED" => RefundStatus::Succeeded,
        "FAILED" | "FAILURE" | "DECLINED" | "REJECTED" | "CANCELLED" | "CANCELED" => {
            RefundStatus::Failed
        }
        _ => RefundStatus::Pending,
    }
}

/// Maps Transaction Details' answer (`POST /orders/{orderReference}/details`): the one path
/// from its bytes to a [`Lookup`].
///
/// | status | body | result |
/// |---|---|---|
/// | 2xx | the order; a `refunds[]` entry whose `refundId` is our refund reference or `known_refund_id` (our `bnplRefundId`) | [`Finding::Found`], status by [`refund_status`], amount read exactly from a string or a number |
/// | 2xx | the order, no such entry | [`Finding::Absent`] |
/// | 2xx | not an order | [`ErrorKind::Protocol`] |
/// | other | any | by status (as a refund answer of that status, outcome unknown) |
///
/// Every error leaves the refund's outcome unknown: a read says nothing about it when it fails.
pub fn read_result(
    request: &RefundRequest,
    known_refund_id: Option<&str>,
    answer: &Answer,
    read_at: SystemTime,
) -> Result<Lookup, RefundError> {
    if !(200..=299).contains(&answer.status) {
        return Err(read_error(PROVIDER, answer));
    }
    let details: TransactionDetails = decode(PROVIDER, answer).map_err(read_failed)?;
    let ours = |refund: &&TransactionRefund| {
        refund
            .refund_id
            .as_deref()
            .map(str::trim)
            .is_some_and(|id| {
                id == request.merchant_reference.as_str() || Some(id) == known_refund_id
            })
    };
    let finding = match details.refunds.iter().find(ours) {
        Some(refund) => Finding::Found(RecordedRefund {
            provider_refund_id: refund.refund_id.clone(),
            status: refund_status(refund.status.as_deref().unwrap_or_default()),
            amount: recorded_amount(refund, request, answer)?,
            created_at: refund.created_at.clone(),
            failure_reason: refund.refund_failure_reason.clone(),
        }),
        None => Finding::Absent,
    };
    Ok(Lookup {
        provider: PROVIDER,
        finding,
        read_at,
        raw: raw(answer),
    })
}

/// Reads a notification's body through the generated `OrderNotification` (the documented
/// `{event, data: {status, transactionId, ..}}`, `status` and `transactionId` also read at the
/// top level, where the docs' field table may mean them). Unsigned and naming no order of ours,
/// it is a hint to read back ([`crate::Notification`]).
pub fn notification(body: &[u8]) -> Result<Notification, RefundError> {
    let parsed: OrderNotification = serde_json::from_slice(crate::answer::json_text(body))
        .map_err(|err| {
            RefundError::invalid("notification", format!("not an Optty notification: {err}"))
                .with_provider(PROVIDER)
        })?;
    let data = parsed.data.as_ref();
    Ok(Notification {
        provider: PROVIDER,
        event: parsed.event.trim().to_owned(),
        claimed_status: parsed
            .status
            .clone()
            .or_else(|| data.and_then(|data| data.status.clone())),
        transaction_id: parsed
            .transaction_id
            .clone()
            .or_else(|| data.and_then(|data| data.transaction_id.clone())),
        raw: crate::answer::RawAnswer::new(bytes::Bytes::copy_from_slice(body)),
    })
}

/// A listed refund's amount, in its own currency (else the request's).
fn recorded_amount(
    refund: &TransactionRefund,
    request: &RefundRequest,
    answer: &Answer,
) -> Result<Option<Money>, RefundError> {
    let Some(amount) = &refund.amount else {
        return Ok(None);
    };
    let currency = match refund.currency.as_deref() {
        Some(code) => Currency::from_code(code.trim()),
        None => Ok(request.amount.currency()),
    };
    currency
        .and_then(|currency| Money::new(amount.get().abs(), currency))
        .map(Some)
        .map_err(|err| {
            read_failed(
                answer_error(PROVIDER, answer, ErrorKind::Protocol)
                    .with_provider_message(format!("refunds[].amount: {err}")),
            )
        })
}

/// A 4xx, whatever its body: a refusal ([`refusal_kind`]), recognised as over the limit or as a
/// duplicate reference by Optty's phrases only, in the headline or any line of a `message`
/// array. The documented `error` (the reason phrase, "Bad Request") is kept as the code.
fn refund_error(request: &RefundRequest, answer: &Answer) -> RefundError {
    let body = ErrorBody::read(&answer.body);
    let texts: Vec<&str> = body.texts().collect();
    let kind = match refusal_kind(answer.status, &body) {
        kind @ ErrorKind::InvalidRequest { .. } => {
            if let Some(limit) = texts.iter().find_map(|text| over_limit(text)) {
                ErrorKind::ExceedsRefundable {
                    limit: limit.filter(|l| l.currency() == request.amount.currency()),
                }
            } else if texts.iter().any(|text| is_duplicate_reference(text)) {
                ErrorKind::Duplicate
            } else {
                kind
            }
        }
        kind => kind,
    };
    let reason_phrase = body.reason_phrase.clone().filter(|_| body.code.is_none());
    let error = with_body_text(answer_error(PROVIDER, answer, kind), answer, body);
    match reason_phrase {
        Some(code) => error.with_provider_code(code),
        None => error,
    }
}

/// "Refund reference RF-1 already exists" (a final period allowed): the reference was used for
/// another refund.
fn is_duplicate_reference(message: &str) -> bool {
    let message = message.trim().trim_end_matches('.').to_ascii_lowercase();
    message.starts_with("refund reference ") && message.ends_with(" already exists")
}

/// Optty's over-limit sentence, "You can only refund amount up to AUD 24.98" (any case, a final
/// period allowed): `Some(limit)`, the limit `None` when it cannot be read exactly.
fn over_limit(message: &str) -> Option<Option<Money>> {
    let message = message.trim();
    let head = message.get(..OVER_LIMIT_PREFIX.len())?;
    if !head.eq_ignore_ascii_case(OVER_LIMIT_PREFIX) {
        return None;
    }
    Some(parse_limit(&message[OVER_LIMIT_PREFIX.len()..]))
}

/// "AUD 24.98" (or "24.98 AUD", "AUD 1,024.98") -> Money, exactly; `None` for anything else.
fn parse_limit(text: &str) -> Option<Money> {
    let text = text.trim();
    let text = text.strip_suffix('.').unwrap_or(text).trim();
    let mut words = text.split_whitespace();
    let (first, second) = (words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    let is_code = |w: &str| w.len() == 3 && w.bytes().all(|b| b.is_ascii_alphabetic());
    let (currency, amount) = if is_code(first) {
        (first, second)
    } else if is_code(second) {
        (second, first)
    } else {
        return None;
    };
    Money::parse(&without_grouping(amount)?, &currency.to_ascii_uppercase()).ok()
}

/// `1,024.98` -> `1024.98`: commas only as thousands separators (groups of three digits).
fn without_grouping(amount: &str) -> Option<String> {
    if !amount.contains(',') {
        return Some(amount.to_owned());
    }
    let (whole, fraction) = match amount.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (amount, None),
    };
    let mut groups = whole.split(',');
    let lead = groups.next()?;
    let lead_ok = (1..=3).contains(&lead.len()) && lead.bytes().all(|b| b.is_ascii_digit());
    let rest: Vec<&str> = groups.collect();
    if !lead_ok
        || !rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut plain = lead.to_owned();
    plain.extend(rest);
    if let Some(fraction) = fraction {
        plain.push('.');
        plain.push_str(fraction);
    }
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Outcome;
    use crate::reference::MerchantReference;

    fn request() -> RefundRequest {
        RefundRequest::new(
            PROVIDER,
            "ORDER-1",
            Money::parse("100.50", "AUD").unwrap(),
            MerchantReference::new("RF-1").unwrap(),
        )
    }

    fn success(amount: &str, status: &str, id: &str) -> Answer {
        Answer::new(
            200,
            format!(
                r#"{{"refundReference":"RF-1","bnplProvider":"KLARNA_AU","refundedAmount":{amount},"refundStatus":"{status}","description":{{}},"refundDate":"Fri, 08 Oct 2021 06:22:20 GMT","bnplRefundId":{id}}}"#
            ),
        )
    }

    fn aud(amount: &str) -> Option<Money> {
        Some(Money::parse(amount, "AUD").unwrap())
    }

    #[test]
    fn refunded_amount_as_string_or_number_exactly() {
        for amount in [
            r#""100.50""#,
            "100.50",
            "100.500",
            "1.005e2",
            r#""1.005e2""#,
        ] {
            let refund = refund_result(&request(), &success(amount, "SUCCESSFUL", r#""b-1""#))
                .unwrap_or_else(|err| panic!("{amount}: {err}"));
            assert_eq!(refund.amount, aud("100.50").unwrap(), "{amount}");
        }
        for amount in [r#""100.505""#, r#""abc""#, "null", r#""""#] {
            let err =
                refund_result(&request(), &success(amount, "SUCCESSFUL", r#""b-1""#)).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Protocol, "{amount}");
            assert_eq!(err.outcome(), Outcome::Unknown, "{amount}");
        }
    }

    #[test]
    fn statuses_in_any_case_and_a_null_refund_id() {
        for (status, expected) in [
            ("successful", RefundStatus::Succeeded),
            ("Successful", RefundStatus::Succeeded),
            ("CANCELLED", RefundStatus::Failed),
            ("Canceled", RefundStatus::Failed),
            ("DECLINED", RefundStatus::Failed),
            ("failed", RefundStatus::Failed),
            ("PENDING", RefundStatus::Pending),
            ("PROCESSING", RefundStatus::Pending),
        ] {
            let refund = refund_result(&request(), &success("100.50", status, r#""b-1""#)).unwrap();
            assert_eq!(refund.status, expected, "{status}");
        }
        let pending = refund_result(&request(), &success("100.50", "PENDING", "null")).unwrap();
        assert_eq!(pending.status, RefundStatus::Pending);
        assert_eq!(pending.provider_refund_id, None);
    }

    #[test]
    fn the_over_limit_sentence_in_any_currency_and_shape() {
        assert_eq!(
            over_limit("You can only refund amount up to AUD 24.98"),
            Some(aud("24.98"))
        );
        assert_eq!(
            over_limit("You can only refund amount up to AUD 24.98."),
            Some(aud("24.98"))
        );
        assert_eq!(
            over_limit(" you can only refund amount up to aud 24.98 "),
            Some(aud("24.98"))
        );
        assert_eq!(
            over_limit("You can only refund amount up to 24.98 AUD"),
            Some(aud("24.98"))
        );
        assert_eq!(
            over_limit("You can only refund amount up to AUD 1,024.98"),
            Some(aud("1024.98"))
        );
        assert_eq!(
            over_limit("You can only refund amount up to JPY 2500"),
            Some(Some(Money::parse("2500", "JPY").unwrap()))
        );
        // The sentence, but a limit that cannot be read exactly.
        for text in [
            "You can only refund amount up to AUD 24.985",
            "You can only refund amount up to AUD 1,02.98",
            "You can only refund amount up to XYZ 24.98",
            "You can only refund amount up to AUD",
            "You can only refund amount up to the captured amount",
        ] {
            assert_eq!(over_limit(text), Some(None), "{text}");
        }
        assert_eq!(
            over_limit("Refund amount exceeds the refundable amount"),
            None
        );
        assert_eq!(
            over_limit("Unexpected token a in JSON at position 157"),
            None
        );
    }

    #[test]
    fn a_limit_in_another_currency_is_not_reported_as_ours() {
        let answer = Answer::new(
            400,
            r#"{"statusCode":400,"message":["You can only refund amount up to NZD 24.98"]}"#,
        );
        let err = refund_result(&request(), &answer).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::ExceedsRefundable { limit: None });
        assert_eq!(err.outcome(), Outcome::NotApplied);
        assert_eq!(
            err.provider_message(),
            Some("You can only refund amount up to NZD 24.98")
        );
    }

    #[test]
    fn any_4xx_is_a_refusal_whatever_its_body() {
        for (status, body, kind) in [
            (
                400,
                "",
                ErrorKind::InvalidRequest {
                    field: "request".into(),
                    reason: "refused with HTTP 400".into(),
                },
            ),
            (401, "<html>nope</html>", ErrorKind::Unauthorized),
            (403, r#"{"statusCode":403}"#, ErrorKind::Forbidden),
            (
                404,
                r#"{"message":"Cannot POST /orders/x/refund"}"#,
                ErrorKind::OrderNotFound,
            ),
            (
                422,
                r#"{"statusCode":422,"message":["refundReference should not be empty"],"error":"Unprocessable Entity"}"#,
                ErrorKind::InvalidRequest {
                    field: "request".into(),
                    reason: "refundReference should not be empty".into(),
                },
            ),
            (429, "Too Many Requests", ErrorKind::Transient),
        ] {
            let err = refund_result(&request(), &Answer::new(status, body)).unwrap_err();
            assert_eq!(err.kind(), &kind, "{status} {body}");
            assert_eq!(err.outcome(), Outcome::NotApplied, "{status} {body}");
        }
        for status in [409, 425, 500, 502] {
            let err = refund_result(&request(), &Answer::new(status, "")).unwrap_err();
            assert_eq!(err.outcome(), Outcome::Unknown, "{status}");
        }
    }

    #[test]
    fn duplicate_reference_in_a_message_array() {
        let answer = Answer::new(
            400,
            r#"{"statusCode":400,"message":["Refund reference RF-1 already exists."],"error":"Bad Request"}"#,
        );
        let err = refund_result(&request(), &answer).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Duplicate);
        assert_eq!(err.outcome(), Outcome::Applied);
        assert_eq!(err.provider_code(), Some("Bad Request"));
    }

    fn details(refunds: &str) -> Answer {
        Answer::new(
            200,
            format!(
                r#"{{"merchantReference":"ORDER-1","status":"SUCCESSFUL","amount":"260","currency":"AUD","refunds":{refunds}}}"#
            ),
        )
    }

    fn finding(answer: &Answer, known: Option<&str>) -> Finding {
        read_result(&request(), known, answer, SystemTime::UNIX_EPOCH)
            .unwrap()
            .finding
    }

    #[test]
    fn details_find_our_refund_by_reference_or_known_id() {
        let ours = details(
            r#"[{"refundId":"OTHER","amount":"5","currency":"AUD","status":"SUCCESSFUL"},
                {"refundId":"RF-1","amount":"100.50","currency":"AUD","status":"pending","createdAt":"2026-12-03T10:00:00Z"}]"#,
        );
        let Finding::Found(refund) = finding(&ours, None) else {
            panic!("our reference is listed")
        };
        assert_eq!(refund.status, RefundStatus::Pending);
        assert_eq!(refund.amount, aud("100.50"));
        assert_eq!(refund.created_at.as_deref(), Some("2026-12-03T10:00:00Z"));

        let by_bnpl_id = details(
            r#"[{"refundId":"KL-9","amount":240,"currency":"AUD","status":"DECLINED","refundFailureReason":"card closed"}]"#,
        );
        assert_eq!(finding(&by_bnpl_id, None), Finding::Absent);
        let Finding::Found(refund) = finding(&by_bnpl_id, Some("KL-9")) else {
            panic!("the known bnplRefundId is listed")
        };
        assert_eq!(refund.status, RefundStatus::Failed);
        assert_eq!(refund.amount, aud("240"));
        assert_eq!(refund.failure_reason.as_deref(), Some("card closed"));
    }

    #[test]
    fn details_without_our_refund_are_absent_and_failed_reads_say_nothing() {
        assert_eq!(finding(&details("[]"), None), Finding::Absent);
        for answer in [
            Answer::new(
                401,
                r#"{"statusCode":401,"message":"You are not authorized to view this transaction...!","error":"Unauthorized"}"#,
            ),
            Answer::new(404, ""),
            Answer::new(503, "<html>busy</html>"),
            Answer::new(200, r#"{"refunds":"none"}"#),
        ] {
            let error = read_result(&request(), None, &answer, SystemTime::UNIX_EPOCH).unwrap_err();
            assert_eq!(error.outcome(), Outcome::Unknown, "{answer:?}: {error}");
        }
    }

    #[test]
    fn notifications_are_read_in_the_documented_shape_and_at_the_top_level() {
        let documented = br#"{"event":"ORDER_ASYNC_CALLBACK","data":{"initiator":"payment-link","metadata":{"invoiceNumber":"000098"}}}"#;
        let hint = notification(documented).unwrap();
        assert_eq!(hint.event, "ORDER_ASYNC_CALLBACK");
        assert_eq!(hint.claimed_status, None);
        let nested = br#"{"event":"ORDER_STATUS_UPDATE","data":{"type":"REFUND","status":"FAILED","transactionId":"RF-1","merchantReference":"ORDER-1"}}"#;
        let hint = notification(nested).unwrap();
        assert_eq!(
            (
                hint.claimed_status.as_deref(),
                hint.transaction_id.as_deref()
            ),
            (Some("FAILED"), Some("RF-1"))
        );
        let top = "\u{feff}{\"event\":\"ORDER_STATUS_UPDATE\",\"status\":\"SUCCESSFUL\",\"transactionId\":\"T-9\"}";
        let hint = notification(top.as_bytes()).unwrap();
        assert_eq!(hint.transaction_id.as_deref(), Some("T-9"));
        for junk in [&b"{}"[..], b"not json", b"[]"] {
            let error = notification(junk).unwrap_err();
            assert!(
                matches!(error.kind(), ErrorKind::InvalidRequest { field, .. } if field == "notification"),
                "{error}"
            );
        }
    }
}
