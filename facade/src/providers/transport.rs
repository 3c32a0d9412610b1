//! The providers' transport: a request built from a generated operation (its method and path,
//! a caller's value kept in one path segment), sent, and its answer read within
//! [`AnswerLimits`]; what a failure before a complete answer means for the money.

use bytes::BytesMut;

use crate::answer::{Answer, AnswerLimits};
use crate::error::{ErrorKind, Outcome, RefundError};
use crate::provider::Provider;
use crate::settings::check_base_url;

#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): what a caller's
/// value is percent-encoded with in a path. Stricter than progenitor's `encode_path`, which
/// leaves `\` as it is, and URL parsers read that as `/` in http(s) URLs.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
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

/// A provider's base URL (checked as [`check_base_url`] does), parsed once: each request's URL
/// is a copy with the operation's path appended, so no request parses a whole URL again.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(url::Url);

impl BaseUrl {
    /// `text` as a base URL; `setting` names it in the error.
    pub(crate) fn new(setting: &str, text: &str) -> Result<BaseUrl, RefundError> {
        check_base_url(setting, text).map(BaseUrl)
    }

    /// The base URL + `path` (an [`operation_path`], already encoded), with a trailing slash on
    /// the base URL harmless.
    pub(crate) fn join(&self, path: &str) -> url::Url {
        let mut url = self.0.clone();
        let joined = format!("{}{path}", self.0.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }
}

/// The request of a generated operation: its method (from the generated constant) to `url`.
pub(crate) fn operation_request(
    http: &reqwest::Client,
    method: &str,
    url: url::Url,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
    http.request(method, url)
}

#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
/// Sends `body` as JSON with `request` and reads the answer within `limits`: the transport of
/// every adapter. The body is taken by value and encoded now, before any I/O, so the returned
/// future does not hold it (see [`receive`]).
pub(crate) fn send_json<T: serde::Serialize>(
    provider: Provider,
    request: reqwest::RequestBuilder,
    body: T,
    limits: AnswerLimits,
) -> impl Future<Output = Result<Answer, RefundError>> + Send + use<T> {
    // Room for a typical refund body up front: no regrowth while it is written.
    let mut bytes = Vec::with_capacity(512);
    let sent = serde_json::to_writer(&mut bytes, &body)
        .map(|()| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(bytes)
                .send()
        })
        .map_err(|err| {
            RefundError::new(ErrorKind::Protocol)
                .with_outcome(crate::Outcome::NotApplied)
                .with_provider(provider)
                .with_provider_message(format!("could not encode the request: {err}"))
        });
    async move { read_answer(provider, sent?, limits).await }
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

#[allow(
    dead_code,
    reason = "shared by the rooms: a build with some providers' features off leaves it unused"
)]
/// A header value that is never printed (API keys, bearer tokens).
pub(crate) fn secret_header(value: &str) -> Result<reqwest::header::HeaderValue, RefundError> {
    let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        RefundError::invalid("credentials", "contains characters not allowed in a header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Sends `request` and reads the answer within `limits` (a cap, not a streaming read: see
/// [`AnswerLimits`]). A failure here never saw a complete answer: see [`transport_error`] for
/// its outcome; an answer past a cap is [`ErrorKind::Protocol`], outcome unknown, and its
/// message names the cap.
///
/// The request is built now and sent once the future is polled: the future holds reqwest's
/// pending request, a pointer, not the builder. That keeps every room's refund future small,
/// and each attempt boxes one (`client::Attempt`): under 1 KiB, the box comes from the
/// allocator's per-thread cache (glibc's tcache) instead of an arena that other threads lock.
pub(crate) fn receive(
    provider: Provider,
    request: reqwest::RequestBuilder,
    limits: AnswerLimits,
) -> impl Future<Output = Result<Answer, RefundError>> + Send + use<> {
    read_answer(provider, request.send(), limits)
}

/// The answer to `sent`, read as [`receive`] says.
async fn read_answer(
    provider: Provider,
    sent: impl Future<Output = Result<reqwest::Response, reqwest::Error>>,
    limits: AnswerLimits,
) -> Result<Answer, RefundError> {
    let mut response = sent.await.map_err(|err| transport_error(provider, err))?;
    let status = response.status().as_u16();
    // The attempt's span (see `Refunds::refund`) carries the status of what came back; with no
    // subscriber for it, finding the current span would cost for nothing.
    if tracing::level_enabled!(tracing::Level::INFO) {
        tracing::Span::current().record("http_status", status);
    }
    let too_large = |what: String| {
        RefundError::new(ErrorKind::Protocol)
            .with_provider(provider)
            .with_http_status(status)
            .with_provider_message(format!(
                "the answer was not read: {what}; the refund may have been applied"
            ))
    };
    let header_bytes: usize = response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(too_large(format!(
            "its headers are {header_bytes} bytes, more than the {} allowed",
            limits.max_header_bytes
        )));
    }
    if let Some(length) = response.content_length()
        && length > limits.max_body_bytes as u64
    {
        return Err(too_large(format!(
            "its body is {length} bytes, more than the {} allowed (the provider's answer cap, \
             AnswerLimits::max_body_bytes)",
            limits.max_body_bytes
        )));
    }
    let headers = std::mem::take(response.headers_mut());
    // Copied into a buffer of its own, sized from Content-Length (already checked against the
    // cap), so it is allocated once instead of growing chunk by chunk. Not kept as hyper's
    // chunk: that shares hyper's whole read buffer, which the replay memory would then hold
    // for every remembered answer while counting only the answer's length.
    let expected = response
        .content_length()
        .and_then(|length| usize::try_from(length).ok())
        .unwrap_or(0);
    let mut body = BytesMut::with_capacity(expected.min(limits.max_body_bytes));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport_error(provider, err).with_http_status(status))?
    {
        if body.len() + chunk.len() > limits.max_body_bytes {
            return Err(too_large(format!(
                "its body is larger than the {} bytes allowed (the provider's answer cap, \
                 AnswerLimits::max_body_bytes)",
                limits.max_body_bytes
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: body.freeze(),
    })
}

/// Maps a failure of the HTTP client, where no complete answer came back:
///
/// - the request could not be built, or no connection could be made: nothing was sent,
///   [`ErrorKind::Transient`] (or [`ErrorKind::Protocol`] for a request that cannot be built),
///   not applied;
/// - a time-out, or the connection lost after the request left: [`ErrorKind::Timeout`],
///   outcome unknown;
/// - an answer hyper could not parse (a response head too large, a broken status line):
///   [`ErrorKind::Protocol`], outcome unknown.
pub(crate) fn transport_error(provider: Provider, err: reqwest::Error) -> RefundError {
    let (kind, outcome, message) = if err.is_builder() {
        (
            ErrorKind::Protocol,
            Outcome::NotApplied,
            "the request could not be built (check the base URL)",
        )
    } else if err.is_connect() {
        (
            ErrorKind::Transient,
            Outcome::NotApplied,
            "could not connect to the provider; nothing was sent",
        )
    } else if err.is_timeout() {
        (
            ErrorKind::Timeout,
            Outcome::Unknown,
            "the provider did not answer in time",
        )
    } else if unparsable_answer(&err) {
        (
            ErrorKind::Protocol,
            Outcome::Unknown,
            "the answer could not be parsed as HTTP (its head may be too large)",
        )
    } else {
        (
            ErrorKind::Timeout,
            Outcome::Unknown,
            "the connection failed before a complete answer arrived",
        )
    };
    RefundError::new(kind)
        .with_outcome(outcome)
        .with_provider(provider)
        .with_provider_message(message)
        .caused_by(err.without_url())
}

/// Whether hyper refused the answer as malformed HTTP.
fn unparsable_answer(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if current
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// A wire body's JSON text (amounts as their own decimal text: the generated types never write
/// them through a binary float), compact or `pretty`.
pub(crate) fn body_json<T: serde::Serialize>(
    provider: Provider,
    body: &T,
    pretty: bool,
) -> Result<String, RefundError> {
    if pretty {
        serde_json::to_string_pretty(body)
    } else {
        serde_json::to_string(body)
    }
    .map_err(|err| {
        RefundError::new(ErrorKind::Protocol)
            .with_outcome(crate::Outcome::NotApplied)
            .with_provider(provider)
            .with_provider_message(format!("could not encode the request: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
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
    }

    #[test]
    fn base_urls_keep_their_path_and_take_the_operation_path_once_encoded() {
        let join = |base: &str, path: &str| {
            BaseUrl::new("base_url", base)
                .expect("a base URL")
                .join(path)
                .to_string()
        };
        assert_eq!(join("http://h:1/", "/token"), "http://h:1/token");
        assert_eq!(join("http://h:1", "/token"), "http://h:1/token");
        assert_eq!(join("https://h/api/", "/v1/x"), "https://h/api/v1/x");
        // Already encoded by `operation_path`: kept as it is, one segment.
        let path = operation_path("/v1/orders/{id}/refund", &[r"..\a/b?c#d"]);
        assert_eq!(
            join("https://h/api", &path),
            "https://h/api/v1/orders/..%5Ca%2Fb%3Fc%23d/refund"
        );
        assert!(BaseUrl::new("base_url", "https://h/?q=1").is_err());
    }
}
