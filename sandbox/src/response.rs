//! Building responses: JSON bodies, and the answers faults put in place of a provider's (a
//! gateway's HTML pages, padded bodies and headers, a connection closed without an answer).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Marks [`drop_connection`]'s response, which never reaches the client.
#[derive(Debug, Clone, Copy)]
struct Dropped;

/// Whether `res` is [`drop_connection`]'s, which the client never receives.
pub(crate) fn is_dropped(res: &Response) -> bool {
    res.extensions().get::<Dropped>().is_some()
}

/// A JSON response whose body is exactly `value` serialized (field order as
/// declared in the struct, which is why bodies are structs and not maps).
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            tracing::error!("serializing a sandbox response failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A JSON response with a body already serialized.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// The HTML a gateway answers with.
const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";

/// [`crate::Fault::MalformedBody`]: status 200, but HTML where JSON belongs.
pub(crate) fn malformed_body() -> Response {
    html(StatusCode::OK)
}

/// [`crate::Fault::NonJson502`].
pub(crate) fn non_json_502() -> Response {
    html(StatusCode::BAD_GATEWAY)
}

fn html(status: StatusCode) -> Response {
    html_page(status, Body::from(BAD_GATEWAY_HTML))
}

fn html_page(status: StatusCode, page: Body) -> Response {
    let mut res = (status, page).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}

/// nginx's pages for the statuses a gateway answers when the upstream
/// fails or times out (same layout as [`BAD_GATEWAY_HTML`]).
const INTERNAL_SERVER_ERROR_HTML: &str = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n";
const SERVICE_UNAVAILABLE_HTML: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n";
const GATEWAY_TIMEOUT_HTML: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n";

/// [`crate::Fault::StatusAfterCommit`]: a gateway's HTML page for `code`.
pub(crate) fn gateway_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = match status.as_u16() {
        500 => Body::from(INTERNAL_SERVER_ERROR_HTML),
        502 => Body::from(BAD_GATEWAY_HTML),
        503 => Body::from(SERVICE_UNAVAILABLE_HTML),
        504 => Body::from(GATEWAY_TIMEOUT_HTML),
        _ => {
            let line = format!(
                "{} {}",
                status.as_str(),
                status.canonical_reason().unwrap_or("Error")
            );
            Body::from(format!(
                "<!DOCTYPE html>\n<html>\n<head><title>{line}</title></head>\n<body>\n<h1>{line}</h1>\n</body>\n</html>\n"
            ))
        }
    };
    html_page(status, page)
}

/// The largest chunk [`crate::Fault::OversizedBody`] sends at once.
const PADDING_CHUNK: usize = 64 * 1024;

/// The bytes every chunk of padding is cut from (static, so streaming a
/// huge body allocates nothing per chunk).
static PADDING: [u8; PADDING_CHUNK] = [b'x'; PADDING_CHUNK];

/// The smallest complete padding body; its first 12 bytes open it and its
/// last 2 close it.
const PADDING_JSON: &[u8] = b"{\"padding\":\"\"}";

/// [`crate::Fault::OversizedBody`]'s body: `{"padding":"` then `x`s then `"}`,
/// exactly `n` bytes in all, produced chunk by chunk as hyper asks.
struct Padding {
    head: &'static [u8],
    xs: usize,
    tail: &'static [u8],
}

impl Padding {
    fn new(n: usize) -> Self {
        match n.checked_sub(PADDING_JSON.len()) {
            Some(xs) => Padding {
                head: &PADDING_JSON[..12],
                xs,
                tail: &PADDING_JSON[12..],
            },
            None => Padding {
                head: &PADDING_JSON[..n],
                xs: 0,
                tail: &[],
            },
        }
    }
}

impl futures_core::Stream for Padding {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let chunk = if !self.head.is_empty() {
            std::mem::take(&mut self.head)
        } else if self.xs > 0 {
            let len = self.xs.min(PADDING_CHUNK);
            self.xs -= len;
            &PADDING[..len]
        } else if !self.tail.is_empty() {
            std::mem::take(&mut self.tail)
        } else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(Bytes::from_static(chunk))))
    }
}

/// [`crate::Fault::OversizedBody`]: 200, JSON content type, `n` streamed bytes.
pub(crate) fn oversized_body(n: usize) -> Response {
    let mut res = Response::new(Body::from_stream(Padding::new(n)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// [`crate::Fault::OversizedHeaders`]: `res` plus `x-sandbox-padding` of `n` `x`s.
pub(crate) fn with_padding_header(mut res: Response, n: usize) -> Response {
    match HeaderValue::from_maybe_shared(Bytes::from(vec![b'x'; n])) {
        Ok(value) => {
            res.headers_mut().insert("x-sandbox-padding", value);
            res
        }
        // `x` is a valid header byte; this arm is never taken.
        Err(_) => unreachable!("a run of `x` is a valid header value"),
    }
}

/// A body that fails on its first poll. hyper then closes the connection
/// without flushing the response head it had only buffered, so the client
/// sees the connection end with no response: [`crate::Fault::DropAfterCommit`].
struct Abort;

impl futures_core::Stream for Abort {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "sandbox fault: drop after commit",
        ))))
    }
}

/// [`crate::Fault::DropAfterCommit`]'s response: no response at all.
pub(crate) fn drop_connection() -> Response {
    let mut res = Response::new(Body::from_stream(Abort));
    res.extensions_mut().insert(Dropped);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_core::Stream;

    /// The whole padding body, and the largest chunk it came in.
    fn padding(n: usize) -> (Vec<u8>, usize) {
        let mut stream = Padding::new(n);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (mut body, mut largest) = (Vec::new(), 0);
        while let Poll::Ready(Some(chunk)) = Pin::new(&mut stream).poll_next(&mut cx) {
            let chunk = chunk.unwrap_or_default();
            largest = largest.max(chunk.len());
            body.extend_from_slice(&chunk);
        }
        (body, largest)
    }

    #[test]
    fn padding_is_exactly_n_bytes_in_bounded_chunks() {
        for n in [
            0,
            1,
            13,
            14,
            15,
            PADDING_CHUNK + 13,
            PADDING_CHUNK + 14,
            3 * PADDING_CHUNK + 15,
        ] {
            let (body, largest) = padding(n);
            assert_eq!(body.len(), n);
            assert!(largest <= PADDING_CHUNK);
            if n >= PADDING_JSON.len() {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                assert_eq!(
                    v["padding"].as_str().map(str::len),
                    Some(n - PADDING_JSON.len())
                );
            } else {
                assert_eq!(body, &PADDING_JSON[..n]);
            }
        }
    }

    #[test]
    fn gateway_status_falls_back_to_502_for_a_non_status() {
        assert_eq!(gateway_status(42).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(gateway_status(1000).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(gateway_status(504).status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
