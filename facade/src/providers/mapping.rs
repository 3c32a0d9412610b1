//! From an answer's status and body to our error: the rules every provider's room falls back
//! on (a status's kind, the provider's text kept, a body decoded through its generated type).

use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::answer::json_text;
use crate::answer::{Answer, RawAnswer};
use crate::error::{ErrorKind, RefundError};
use crate::provider::Provider;
use crate::providers::error_body::{self, excerpt};

/// What an HTTP status means when the provider's body says nothing more specific: the one
/// place every adapter falls back to. Its [`ErrorKind::outcome`] follows:
///
/// - a 4xx is a refusal (not applied) whatever its body, with its own kind for 401, 403 and
///   404, and [`ErrorKind::InvalidRequest`] on `request` for the rest, except:
///   408 (not received in time) and 429 (rate limited) are [`ErrorKind::Transient`]; 409
///   (a conflict: possibly with a refund that exists) and 425 (too early: a replay the server
///   would not judge) say nothing definite, [`ErrorKind::Protocol`], unless the provider's room
///   documents them (OpenApp's 409 is its duplicate answer);
/// - a 5xx, from the provider or a gateway in front of it, may come after the refund was
///   committed: [`ErrorKind::ServerError`], outcome unknown;
/// - anything else (1xx, 3xx): [`ErrorKind::Protocol`], outcome unknown.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::OrderNotFound,
        408 | 429 => ErrorKind::Transient,
        409 | 425 => ErrorKind::Protocol,
        400..=499 => ErrorKind::InvalidRequest {
            field: "request".to_owned(),
            reason: format!("refused with HTTP {status}"),
        },
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    }
}

/// A refusal's kind from its status and the text read from its body: [`kind_for_status`],
/// with an [`ErrorKind::InvalidRequest`]'s reason taken from the body when it says one.
pub(crate) fn refusal_kind(status: u16, body: &error_body::ErrorBody) -> ErrorKind {
    match kind_for_status(status) {
        ErrorKind::InvalidRequest { field, reason } => ErrorKind::InvalidRequest {
            field,
            reason: body.message.clone().unwrap_or(reason),
        },
        kind => kind,
    }
}

/// An error of `kind` about `answer`: provider, HTTP status and `Retry-After` set.
pub(crate) fn answer_error(provider: Provider, answer: &Answer, kind: ErrorKind) -> RefundError {
    let error = RefundError::new(kind)
        .with_provider(provider)
        .with_http_status(answer.status);
    match answer.retry_after() {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
}

/// The error for a status or body the provider does not document, judged by the status
/// ([`kind_for_status`]), with whatever code and text the body holds kept.
pub(crate) fn undocumented(provider: Provider, answer: &Answer) -> RefundError {
    let body = error_body::ErrorBody::read(&answer.body);
    with_body_text(
        answer_error(provider, answer, refusal_kind(answer.status, &body)),
        answer,
        body,
    )
}

/// `error` with the body's code, headline and messages kept as the provider's own words.
pub(crate) fn with_body_text(
    error: RefundError,
    answer: &Answer,
    body: error_body::ErrorBody,
) -> RefundError {
    let error = error.with_provider_message(match &body.message {
        Some(message) => message.clone(),
        None if answer.body.is_empty() => format!("HTTP {} with an empty body", answer.status),
        None => format!("HTTP {}: {}", answer.status, excerpt(&answer.body)),
    });
    let error = match body.code {
        Some(code) => error.with_provider_code(code),
        None => error,
    };
    if body.messages.is_empty() {
        error
    } else {
        error.with_provider_messages(body.messages)
    }
}

/// Decodes a provider body through its generated type. A body that does not decode says
/// nothing we can trust: [`ErrorKind::Protocol`], or [`ErrorKind::ServerError`] for a 5xx such
/// as a gateway's HTML 502; the outcome is unknown either way ([`decode_error`]).
#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
pub(crate) fn decode<T: DeserializeOwned>(
    provider: Provider,
    answer: &Answer,
) -> Result<T, RefundError> {
    serde_json::from_slice(json_text(&answer.body))
        .map_err(|err| decode_error(provider, answer, err))
}

/// Reads a provider body with `seed`, borrowing from the body's bytes: for a room that reads
/// a large answer in one pass instead of building all of it (Moyasar's order). The body must be
/// one JSON value and nothing after it, as for [`decode`], and its errors are [`decode`]'s.
#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
pub(crate) fn decode_seed<'a, S: DeserializeSeed<'a>>(
    provider: Provider,
    answer: &'a Answer,
    seed: S,
) -> Result<S::Value, RefundError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json_text(&answer.body));
    seed.deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|err| decode_error(provider, answer, err))
}

/// The error of a body that does not decode ([`decode`]).
fn decode_error(provider: Provider, answer: &Answer, err: serde_json::Error) -> RefundError {
    let kind = match kind_for_status(answer.status) {
        ErrorKind::ServerError => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    };
    answer_error(provider, answer, kind).with_provider_message(format!(
        "HTTP {} body does not match the spec ({err}): {}",
        answer.status,
        excerpt(&answer.body)
    ))
}

/// A read's error from a non-2xx answer: judged by its status ([`undocumented`]), the
/// provider's text kept, and then [`read_failed`].
#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
pub(crate) fn read_error(provider: Provider, answer: &Answer) -> RefundError {
    read_failed(undocumented(provider, answer))
}

/// What any failed read means for the refund it was about: nothing. Its outcome stays unknown
/// (a read that fails proves neither that the refund exists nor that it does not), and reading
/// again is always safe.
pub(crate) fn read_failed(error: RefundError) -> RefundError {
    error
        .with_outcome(crate::error::Outcome::Unknown)
        .with_deduplication(true)
}

/// The answer's body for [`Refund::raw`](crate::Refund::raw): the bytes as received.
pub(crate) fn raw(answer: &Answer) -> RawAnswer {
    RawAnswer::new(answer.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_kinds_carry_their_outcome() {
        use crate::Outcome;
        for status in [500, 502, 503, 504] {
            assert_eq!(
                kind_for_status(status).outcome(),
                Outcome::Unknown,
                "{status}"
            );
        }
        for status in [401, 403, 404, 408, 429] {
            assert_eq!(
                kind_for_status(status).outcome(),
                Outcome::NotApplied,
                "{status}"
            );
        }
    }
}
