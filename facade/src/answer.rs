//! A provider's answer as received ([`Answer`]: status, headers, body bytes), the bounded read
//! that produces it, and [`RawAnswer`], the body kept on a [`Refund`](crate::Refund).
//!
//! Every adapter turns an [`Answer`] into our result with one pure function,
//! `providers::<provider>::transformers::refund_result`; production reads the answer with
//! the providers' transport (`providers::transport`) and calls that same function, so what the
//! tests exercise is what runs.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Caps on the size of a provider's answer. An answer past a cap is not read further: the
/// refund's outcome is unknown (the provider may have applied it), the error says which cap it
/// passed, and memory stays bounded.
///
/// # A cap per provider, not a streaming read
///
/// An answer is read whole, up to its cap, and then mapped by the provider's one pure function
/// from its status, headers and bytes (the function the tests run), and those bytes stay on the
/// result as [`RawAnswer`]. So the memory one call holds for its answer is at most its body cap
/// (the buffer is sized from `Content-Length`; a body of unknown length grows its buffer by
/// doubling, briefly up to half as much again while it moves), and the mapping adds little to
/// it: Moyasar's, the one whose answers grow, reads the order in place without building it. A
/// streaming read would bound memory without any cap, but it would have to drop the answer's
/// bytes from the result and split the one mapping in two; and no provider documents an answer
/// size to stream towards.
///
/// Each provider's config starts from its own default:
///
/// - Optty, AfterPay, OpenApp: [`AnswerLimits::DEFAULT`] (512 KiB of body). Their answers
///   describe one refund, or an order's totals and refund numbers: kilobytes.
/// - Moyasar: `MoyasarConfig::DEFAULT_ANSWER_LIMITS` (4 MiB of body). Moyasar answers a refund
///   with the whole order, every earlier refund listed, and documents no limit on refunds per
///   order nor on an order's size (its refund and Retrieve Order pages, in
///   `provider-docs/moyasar-refund.txt` and `reads.md`). A refund transaction is about 360 bytes,
///   so 512 KiB stops at about 1,400 earlier refunds: an applied refund on an order with 3,000
///   (about 1.1 MB) would be reported unknown. 4 MiB holds about 11,000.
///
/// A config's `with_answer_limits` and `REFUNDS_<PROVIDER>_MAX_ANSWER_BYTES` set them per
/// provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// The largest body read, in bytes (default 512 KiB, Moyasar 4 MiB: see above).
    pub max_body_bytes: usize,
    /// The largest total of header names and values, in bytes (default 64 KiB). hyper refuses
    /// a response head above about 400 KiB before it reaches us, so that bounds memory too.
    pub max_header_bytes: usize,
}

impl AnswerLimits {
    /// The default caps of every provider but Moyasar: 512 KiB of body, 64 KiB of headers.
    pub const DEFAULT: AnswerLimits = AnswerLimits {
        max_body_bytes: 512 * 1024,
        max_header_bytes: 64 * 1024,
    };
}

impl Default for AnswerLimits {
    /// [`AnswerLimits::DEFAULT`].
    fn default() -> Self {
        AnswerLimits::DEFAULT
    }
}

/// A provider's answer as received: the input of each adapter's pure `refund_result`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers (OpenApp's signature, `Retry-After`).
    pub headers: HeaderMap,
    /// The body bytes, exactly as received.
    pub body: Bytes,
}

impl Answer {
    /// An answer with no headers.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// Adds a header (for tests and replays). A value that cannot be a header is ignored.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(name, value);
        }
        self
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The wait the provider asked for: `Retry-After` in seconds or as an HTTP date.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.header(RETRY_AFTER.as_str())?.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// A body's JSON text: a UTF-8 byte order mark (which some servers put before JSON, and
/// serde_json refuses) dropped. Every reading of a body goes through it: the providers' mapping,
/// and [`RawAnswer::decode`] and its serialization.
pub(crate) fn json_text(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The body of a provider's answer exactly as received (unknown fields kept), shared with the
/// buffer it was read into rather than copied. Serialized as the JSON it holds, or as a string
/// when it is not JSON.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RawAnswer(Bytes);

impl RawAnswer {
    /// Wraps a body.
    pub fn new(body: impl Into<Bytes>) -> RawAnswer {
        RawAnswer(body.into())
    }

    /// The bytes as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The body decoded into a type of yours, straight from the bytes, so amounts declared as
    /// [`json_decimal::JsonDecimal`] keep their exact text.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(json_text(&self.0))
    }
}

impl fmt::Debug for RawAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawAnswer({})", String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for RawAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = String::from_utf8_lossy(json_text(&self.0));
        // JSON goes out as the provider wrote it (numbers keep their text); anything else as a
        // string.
        match serde_json::value::RawValue::from_string(text.trim().to_owned()) {
            Ok(json) => json.serialize(serializer),
            Err(_) => text.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RawAnswer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(RawAnswer::new(json.get().as_bytes().to_vec()))
    }
}

impl JsonSchema for RawAnswer {
    fn schema_name() -> String {
        "RawAnswer".to_owned()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        // Whatever the provider sent.
        schemars::schema::Schema::Bool(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let answer = Answer::new(429, "").with_header("retry-after", "7");
        assert_eq!(answer.retry_after(), Some(Duration::from_secs(7)));
        let past = Answer::new(503, "").with_header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(past.retry_after(), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = Answer::new(503, "")
            .with_header("retry-after", &future)
            .retry_after()
            .expect("a date");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(
            Answer::new(503, "")
                .with_header("retry-after", "soon")
                .retry_after(),
            None
        );
    }

    #[test]
    fn raw_answer_keeps_the_bytes_and_serializes_as_json() {
        let raw = RawAnswer::new(&b"{\"a\":1.10,\"unknown\":true}"[..]);
        assert_eq!(raw.as_bytes(), b"{\"a\":1.10,\"unknown\":true}");
        assert_eq!(
            serde_json::to_string(&raw).unwrap(),
            "{\"a\":1.10,\"unknown\":true}"
        );
        #[derive(serde::Deserialize)]
        struct Mine {
            a: json_decimal::JsonDecimal,
        }
        let mine: Mine = raw.decode().unwrap();
        assert_eq!(
            mine.a.to_string(),
            "1.10",
            "decoded from the bytes, exactly"
        );
        // A byte order mark before JSON is not part of the JSON.
        let bom = RawAnswer::new(&b"\xEF\xBB\xBF{\"a\":1.10}"[..]);
        assert_eq!(serde_json::to_string(&bom).unwrap(), "{\"a\":1.10}");
        let mine: Mine = bom.decode().unwrap();
        assert_eq!(mine.a.to_string(), "1.10");
        assert_eq!(bom.as_bytes().len(), 13, "the bytes stay as received");
        let html = RawAnswer::new(&b"<html>"[..]);
        assert_eq!(serde_json::to_string(&html).unwrap(), "\"<html>\"");
    }
}
