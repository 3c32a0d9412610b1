//! One adapter per provider, in the layout of hyperswitch's connectors: `transformers.rs` holds
//! the pure mapping (unified request -> generated wire type, provider answer -> unified
//! result), the provider's `mod.rs` the I/O around it with the generated client.
//!
//! The pure functions are what the snapshot tests exercise; the sandbox tests exercise I/O.

use serde::de::DeserializeOwned;

use crate::error::{ErrorKind, RefundError};
use crate::model::Provider;

#[cfg(feature = "afterpay")]
pub mod afterpay;
#[cfg(feature = "moyasar")]
pub mod moyasar;
#[cfg(feature = "openapp")]
pub mod openapp;
#[cfg(feature = "optty")]
pub mod optty;

/// At most this much of an unparsable body is kept in an error message.
const BODY_EXCERPT: usize = 200;

/// A body excerpt for error messages: a proxy's HTML page, say.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(BODY_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_owned()
}

/// What an HTTP status means when the provider's body says nothing more specific: the one
/// place every adapter falls back to.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::OrderNotFound,
        // The provider or a proxy failed; the same request may succeed later.
        408 | 429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Protocol,
    }
}

/// The error for a status the provider does not document, judged by the status alone.
pub(crate) fn undocumented(provider: Provider, status: u16, body: &[u8]) -> RefundError {
    RefundError::new(kind_for_status(status))
        .provider(provider)
        .status(status)
        .message(format!("unexpected HTTP {status}: {}", excerpt(body)))
}

/// Decodes a provider body through its generated type. A body that does not decode says
/// nothing we can trust: [`ErrorKind::Protocol`], or transient for a 5xx such as a proxy's
/// HTML 502.
pub(crate) fn decode<T: DeserializeOwned>(
    provider: Provider,
    status: u16,
    body: &[u8],
) -> Result<T, RefundError> {
    serde_json::from_slice(body).map_err(|err| {
        let kind = match kind_for_status(status) {
            ErrorKind::Transient => ErrorKind::Transient,
            _ => ErrorKind::Protocol,
        };
        RefundError::new(kind)
            .provider(provider)
            .status(status)
            .message(format!(
                "HTTP {status} body does not match the spec ({err}): {}",
                excerpt(body)
            ))
    })
}

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// The provider's answer as JSON for [`Refund::raw`](crate::Refund::raw).
pub(crate) fn raw_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Maps a transport failure of the HTTP client (nothing, or nothing complete, came back).
/// Only a failed connection is [`ErrorKind::Transient`] (nothing was sent); a time-out or a
/// connection dropped after the request left is [`ErrorKind::Timeout`]: the refund may have
/// been recorded, so the outcome is unknown.
pub(crate) fn transport_error(provider: Provider, err: reqwest::Error) -> RefundError {
    let (kind, message) = if err.is_connect() {
        (ErrorKind::Transient, "could not connect to the provider")
    } else if err.is_timeout() {
        (ErrorKind::Timeout, "the provider did not answer in time")
    } else {
        (
            ErrorKind::Timeout,
            "the connection failed before a complete answer arrived",
        )
    };
    RefundError::new(kind)
        .provider(provider)
        .message(message)
        .caused_by(err.without_url())
}

#[cfg(any(feature = "optty", feature = "afterpay", feature = "moyasar"))]
/// Turns the result of a generated (progenitor) client call into ours, the same way for every
/// OpenAPI provider: a documented body goes to `success` or `documented_error`, an undocumented
/// status is read and given to `from_bytes` (the adapter's `refund_result`), and a transport
/// failure becomes [`transport_error`].
pub(crate) async fn settle<T, E, R>(
    provider: Provider,
    result: Result<progenitor_client::ResponseValue<T>, progenitor_client::Error<E>>,
    success: impl FnOnce(T) -> Result<R, RefundError>,
    documented_error: impl FnOnce(u16, E) -> RefundError,
    from_bytes: impl FnOnce(u16, &[u8]) -> Result<R, RefundError>,
) -> Result<R, RefundError> {
    use progenitor_client::Error;
    let protocol = |message: String| {
        Err(RefundError::new(ErrorKind::Protocol)
            .provider(provider)
            .message(message))
    };
    match result {
        Ok(answer) => success(answer.into_inner()),
        Err(Error::ErrorResponse(answer)) => {
            let status = answer.status().as_u16();
            Err(documented_error(status, answer.into_inner()))
        }
        Err(Error::UnexpectedResponse(response)) => {
            read_unexpected(provider, response, from_bytes).await
        }
        Err(Error::CommunicationError(err) | Error::ResponseBodyError(err)) => {
            Err(transport_error(provider, err))
        }
        Err(Error::InvalidResponsePayload(body, err)) => protocol(format!(
            "answer does not match the spec ({err}): {}",
            excerpt(&body)
        )),
        Err(Error::InvalidRequest(message)) => {
            protocol(format!("the request could not be built: {message}"))
        }
        Err(_) => protocol("the HTTP client failed before a usable answer".to_owned()),
    }
}

/// Reads the body of an undocumented answer, then maps it with `map`.
pub(crate) async fn read_unexpected<T>(
    provider: Provider,
    response: reqwest::Response,
    map: impl FnOnce(u16, &[u8]) -> Result<T, RefundError>,
) -> Result<T, RefundError> {
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => map(status, &body),
        Err(err) => Err(transport_error(provider, err).status(status)),
    }
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
                .message("could not build the HTTP client")
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
