//! One adapter per provider, in the layout of hyperswitch's connectors: `transformers.rs` holds
//! the pure mapping (unified request -> generated wire type, [`Answer`] -> unified result), the
//! provider's `mod.rs` the I/O around it.
//!
//! Each adapter sends the generated wire type itself (method and path from the generated
//! `operations` module) and reads the answer with a size cap ([`crate::answer`]); the one pure
//! `transformers::refund_result(request, &answer)` then decides the result. That function is
//! what production runs and what the snapshot tests exercise.

use serde::de::DeserializeOwned;

use crate::answer::{Answer, RawAnswer};
use crate::error::{ErrorKind, RefundError};
use crate::model::Provider;

pub(crate) mod error_body;

#[cfg(feature = "afterpay")]
pub mod afterpay;
#[cfg(feature = "moyasar")]
pub mod moyasar;
#[cfg(feature = "openapp")]
pub mod openapp;
#[cfg(feature = "optty")]
pub mod optty;

/// The pure mapping of `request.provider`'s answers: the same function each adapter runs on
/// what it received (OpenApp here without signature verification; its adapter passes its
/// config). For tests, replays and tools that hold a recorded answer.
pub fn refund_result(
    request: &crate::RefundRequest,
    answer: &Answer,
) -> Result<crate::Refund, RefundError> {
    match request.provider {
        #[cfg(feature = "optty")]
        Provider::Optty => optty::transformers::refund_result(request, answer),
        #[cfg(feature = "afterpay")]
        Provider::AfterPay => afterpay::transformers::refund_result(request, answer),
        #[cfg(feature = "moyasar")]
        Provider::Moyasar => moyasar::transformers::refund_result(request, answer),
        #[cfg(feature = "openapp")]
        Provider::OpenApp => openapp::transformers::refund_result(request, answer, None),
        #[allow(unreachable_patterns)]
        _ => Err(
            RefundError::invalid("provider", "not compiled in (cargo feature)")
                .with_provider(request.provider),
        ),
    }
}

/// At most this much of an unparsable body is kept in an error message.
const BODY_EXCERPT: usize = 200;

/// A body excerpt for error messages: a proxy's HTML page, say.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT * 4)]);
    let mut end = text.len().min(BODY_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_owned()
}

/// A body's JSON text: a UTF-8 byte order mark (which some servers put before JSON, and
/// serde_json refuses) dropped.
pub(crate) fn json_text(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

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
/// as a gateway's HTML 502; the outcome is unknown either way.
pub(crate) fn decode<T: DeserializeOwned>(
    provider: Provider,
    answer: &Answer,
) -> Result<T, RefundError> {
    serde_json::from_slice(json_text(&answer.body)).map_err(|err| {
        let kind = match kind_for_status(answer.status) {
            ErrorKind::ServerError => ErrorKind::ServerError,
            _ => ErrorKind::Protocol,
        };
        answer_error(provider, answer, kind).with_provider_message(format!(
            "HTTP {} body does not match the spec ({err}): {}",
            answer.status,
            excerpt(&answer.body)
        ))
    })
}

/// The answer's body for [`Refund::raw`](crate::Refund::raw): the bytes as received.
pub(crate) fn raw(answer: &Answer) -> RawAnswer {
    RawAnswer::new(answer.body.clone())
}

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): what a caller's
/// value is percent-encoded with in a path. Stricter than progenitor's `encode_path`, which
/// leaves `\` as it is, and URL parsers read that as `/` in http(s) URLs.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// The path of an operation: each `{parameter}` of the generated `PATH` template filled, in
/// order, with the value percent-encoded as one segment ([`PATH_SEGMENT`]). A value of `.` or
/// `..` stays a dot segment whatever its encoding: validation refuses those before any I/O
/// ([`Capabilities::order_id_in_path`](crate::Capabilities::order_id_in_path)).
pub(crate) fn operation_path(template: &str, values: &[&str]) -> String {
    let mut path = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut values = values.iter();
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |i| open + i);
        let value = values.next().copied().unwrap_or_default();
        path.extend(percent_encoding::utf8_percent_encode(value, PATH_SEGMENT));
        rest = &rest[(close + 1).min(rest.len())..];
    }
    path.push_str(rest);
    path
}

/// `base_url` + `path`, with a trailing slash on the base URL harmless.
pub(crate) fn operation_url(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// The request of a generated operation: its method (from the generated constant) to `url`.
pub(crate) fn operation_request(
    http: &reqwest::Client,
    method: &str,
    url: String,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
    http.request(method, url)
}

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// Sends `body` as JSON with `request` and reads the answer within `limits`: the transport of
/// every adapter.
pub(crate) async fn send_json(
    provider: Provider,
    request: reqwest::RequestBuilder,
    body: &impl serde::Serialize,
    limits: crate::answer::AnswerLimits,
) -> Result<Answer, RefundError> {
    let body = serde_json::to_vec(body).map_err(|err| {
        RefundError::new(ErrorKind::Protocol)
            .with_outcome(crate::Outcome::NotApplied)
            .with_provider(provider)
            .with_provider_message(format!("could not encode the request: {err}"))
    })?;
    let request = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    crate::answer::receive(provider, request, limits).await
}

/// A reqwest client with the provider's timeout, rustls, and the given default headers (marked
/// sensitive, so reqwest never prints them).
pub(crate) fn http_client(
    timeout: std::time::Duration,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, RefundError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .map_err(|err| {
            RefundError::new(ErrorKind::Protocol)
                .with_outcome(crate::Outcome::NotApplied)
                .with_provider_message("could not build the HTTP client")
                .caused_by(err)
        })
}

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// A header value that is never printed (API keys, bearer tokens).
pub(crate) fn secret_header(value: &str) -> Result<reqwest::header::HeaderValue, RefundError> {
    let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        RefundError::invalid("credentials", "contains characters not allowed in a header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
    fn paths_are_filled_in_order_and_encoded() {
        assert_eq!(
            operation_path("/v1/orders/{id}/refund", &["a b/c"]),
            "/v1/orders/a%20b%2Fc/refund"
        );
        assert_eq!(
            operation_path("/v1/orders/{id}/refund", &[r"..\payments\x;y%2e?#é"]),
            "/v1/orders/..%5Cpayments%5Cx%3By%252e%3F%23%C3%A9/refund"
        );
        assert_eq!(operation_path("/token", &[]), "/token");
        assert_eq!(operation_url("http://h:1/", "/token"), "http://h:1/token");
    }

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
