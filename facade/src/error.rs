//! The one error type of the facade: [`RefundError`] with an [`ErrorKind`] a
//! service can branch on, plus what the provider said.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::model::Provider;
use crate::money::Money;

/// What went wrong, independent of the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was rejected before any I/O (or the provider rejected a
    /// field). `field` is a path into [`RefundRequest`](crate::RefundRequest),
    /// e.g. `"amount"`, `"line_items[2].quantity"`, `"amount.currency"`.
    InvalidRequest {
        /// Path of the offending field.
        field: String,
        /// Human-readable reason.
        reason: String,
    },
    /// The credentials were missing or rejected (HTTP 401).
    Unauthorized,
    /// The credentials are valid but lack permission (HTTP 403).
    Forbidden,
    /// The provider does not know the order (or it belongs to another merchant).
    OrderNotFound,
    /// The merchant reference was already used for a refund. After a retry of
    /// an ambiguous attempt (see [`RefundError::outcome_unknown`]) this means the
    /// earlier attempt was applied.
    Duplicate,
    /// The amount exceeds what can still be refunded.
    ExceedsRefundable {
        /// The refundable amount, where the provider states it
        /// (Optty: "You can only refund amount up to AUD 24.98").
        limit: Option<Money>,
    },
    /// An earlier attempt with the same idempotency key is still being
    /// processed (Moyasar: "Initial request is still processing.").
    InProgress,
    /// A temporary failure: the provider (or a proxy) answered HTTP 5xx, 408
    /// or 429, or no connection could be made so nothing was sent.
    Transient,
    /// No complete answer: the provider did not answer in time, or the
    /// connection dropped after the request was sent. The request may or may
    /// not have been applied.
    Timeout,
    /// The provider answered something the facade could not interpret
    /// (malformed or unexpected body, unexpected status): the request may or
    /// may not have been applied.
    Protocol,
}

impl ErrorKind {
    /// The field path of an [`ErrorKind::InvalidRequest`], otherwise `None`.
    pub fn field(&self) -> Option<&str> {
        match self {
            ErrorKind::InvalidRequest { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::InvalidRequest { field, reason } => {
                write!(f, "invalid request: `{field}`: {reason}")
            }
            ErrorKind::Unauthorized => f.write_str("unauthorized: credentials missing or rejected"),
            ErrorKind::Forbidden => {
                f.write_str("forbidden: the credentials lack permission for this operation")
            }
            ErrorKind::OrderNotFound => f.write_str("order not found"),
            ErrorKind::Duplicate => {
                f.write_str("duplicate refund: the merchant reference was already used")
            }
            ErrorKind::ExceedsRefundable { limit: Some(limit) } => {
                write!(f, "amount exceeds the refundable amount (at most {limit})")
            }
            ErrorKind::ExceedsRefundable { limit: None } => {
                f.write_str("amount exceeds the refundable amount")
            }
            ErrorKind::InProgress => {
                f.write_str("an earlier attempt with the same merchant reference is still processing")
            }
            ErrorKind::Transient => f.write_str("temporary provider failure"),
            ErrorKind::Timeout => f.write_str(
                "no complete answer from the provider (timed out or connection lost; the refund may or may not have been applied)",
            ),
            ErrorKind::Protocol => f.write_str(
                "unexpected response from the provider (the refund may or may not have been applied)",
            ),
        }
    }
}

/// One message of a provider error body that carries several (AfterPay's
/// array of `ResponseMessage`); every message is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderMessage {
    /// The provider's code for this message, if any.
    pub code: Option<String>,
    /// The message text.
    pub message: String,
    /// The request field the provider points at (AfterPay `fieldReference`).
    pub field: Option<String>,
}

impl fmt::Display for ProviderMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = &self.code {
            write!(f, "[{code}] ")?;
        }
        f.write_str(&self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    provider: Option<Provider>,
    http_status: Option<u16>,
    provider_code: Option<String>,
    provider_message: Option<String>,
    provider_messages: Vec<ProviderMessage>,
    cause: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// A failed refund: an [`ErrorKind`] plus what the provider said.
///
/// Built with [`RefundError::new`] / [`RefundError::invalid`] and the builder
/// methods [`provider`](RefundError::provider), [`status`](RefundError::status),
/// [`code`](RefundError::code), [`message`](RefundError::message),
/// [`messages`](RefundError::messages). Neither `Debug` nor `Display` ever
/// contains credentials: the error holds none.
///
/// The data lives behind one `Box` so that `Result<_, RefundError>` stays small.
#[derive(Clone)]
pub struct RefundError {
    inner: Box<Inner>,
}

impl RefundError {
    /// An error of the given kind with no provider details.
    pub fn new(kind: ErrorKind) -> RefundError {
        RefundError {
            inner: Box::new(Inner {
                kind,
                provider: None,
                http_status: None,
                provider_code: None,
                provider_message: None,
                provider_messages: Vec::new(),
                cause: None,
            }),
        }
    }

    /// An [`ErrorKind::InvalidRequest`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RefundError {
        RefundError::new(ErrorKind::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        })
    }

    /// Sets the provider that produced (or would have received) the request.
    #[must_use]
    pub fn provider(mut self, provider: Provider) -> RefundError {
        self.inner.provider = Some(provider);
        self
    }

    /// Sets the HTTP status of the provider's answer.
    #[must_use]
    pub fn status(mut self, status: u16) -> RefundError {
        self.inner.http_status = Some(status);
        self
    }

    /// Sets the provider's own error code (e.g. `RefundExistsException`).
    #[must_use]
    pub fn code(mut self, code: impl Into<String>) -> RefundError {
        self.inner.provider_code = Some(code.into());
        self
    }

    /// Sets the provider's error message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> RefundError {
        self.inner.provider_message = Some(message.into());
        self
    }

    /// Sets all messages of a provider body that carries several.
    #[must_use]
    pub fn messages(mut self, messages: Vec<ProviderMessage>) -> RefundError {
        self.inner.provider_messages = messages;
        self
    }

    /// Attaches the underlying error (e.g. the HTTP client's), exposed through
    /// [`std::error::Error::source`].
    #[must_use]
    pub fn caused_by(mut self, cause: impl StdError + Send + Sync + 'static) -> RefundError {
        self.inner.cause = Some(Arc::new(cause));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The field path, for [`ErrorKind::InvalidRequest`].
    pub fn field(&self) -> Option<&str> {
        self.inner.kind.field()
    }

    /// The provider the error concerns, if known.
    pub fn source_provider(&self) -> Option<Provider> {
        self.inner.provider
    }

    /// The HTTP status of the provider's answer, if there was one.
    pub fn http_status(&self) -> Option<u16> {
        self.inner.http_status
    }

    /// The provider's own error code, if any.
    pub fn provider_code(&self) -> Option<&str> {
        self.inner.provider_code.as_deref()
    }

    /// The provider's error message, if any.
    pub fn provider_message(&self) -> Option<&str> {
        self.inner.provider_message.as_deref()
    }

    /// Every message of a provider body that carries several (AfterPay).
    pub fn provider_messages(&self) -> &[ProviderMessage] {
        &self.inner.provider_messages
    }

    /// Whether sending the *same* request again (same merchant reference) is
    /// safe and may succeed.
    ///
    /// - `InProgress`, `Transient`: `true`.
    /// - `Timeout`, `Protocol`: the first attempt may have been applied
    ///   ([`outcome_unknown`](RefundError::outcome_unknown)). A retry is safe
    ///   only because the provider deduplicates on the merchant reference
    ///   (Optty `refundReference`, Moyasar `transaction_id`, OpenApp `caseId`):
    ///   a retry then either performs the refund once or answers
    ///   [`ErrorKind::Duplicate`], which means the earlier attempt was applied.
    ///   So these are `true`, **except** when the error's provider does not
    ///   deduplicate ([`Capabilities::idempotent_retries`](crate::Capabilities)
    ///   is `false`: AfterPay documents no duplicate key), where a blind retry
    ///   could refund twice: `false` (reconcile by reading the order's refunds
    ///   instead). An error without a provider is judged by its kind alone.
    /// - Everything else: `false` (the same request will fail the same way).
    ///
    /// Retry with a bounded number of attempts and back-off: a `Protocol`
    /// error caused by a body the facade cannot parse may repeat.
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            ErrorKind::InProgress | ErrorKind::Transient => true,
            ErrorKind::Timeout | ErrorKind::Protocol => self
                .inner
                .provider
                .is_none_or(|provider| provider.capabilities().idempotent_retries),
            _ => false,
        }
    }

    /// Whether the refund may have been applied even though this error was
    /// returned (`Timeout`, `Protocol`): reconcile before giving up.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout | ErrorKind::Protocol)
    }
}

impl From<ErrorKind> for RefundError {
    fn from(kind: ErrorKind) -> Self {
        RefundError::new(kind)
    }
}

impl fmt::Debug for RefundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut s = f.debug_struct("RefundError");
        s.field("kind", &inner.kind)
            .field("provider", &inner.provider)
            .field("http_status", &inner.http_status)
            .field("provider_code", &inner.provider_code)
            .field("provider_message", &inner.provider_message)
            .field("provider_messages", &inner.provider_messages);
        if let Some(cause) = &inner.cause {
            s.field("cause", &format_args!("{cause}"));
        }
        s.finish()
    }
}

impl fmt::Display for RefundError {
    /// `optty: amount exceeds the refundable amount (at most AUD 24.98) (HTTP 400): You can only refund amount up to AUD 24.98`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        if let Some(provider) = inner.provider {
            write!(f, "{provider}: ")?;
        }
        write!(f, "{}", inner.kind)?;
        match (inner.http_status, &inner.provider_code) {
            (Some(status), Some(code)) => write!(f, " (HTTP {status}, {code})")?,
            (Some(status), None) => write!(f, " (HTTP {status})")?,
            (None, Some(code)) => write!(f, " ({code})")?,
            (None, None) => {}
        }
        if let Some(message) = &inner.provider_message {
            write!(f, ": {message}")?;
        }
        for (i, message) in inner.provider_messages.iter().enumerate() {
            let sep = if i == 0 && inner.provider_message.is_none() {
                ": "
            } else {
                "; "
            };
            write!(f, "{sep}{message}")?;
        }
        Ok(())
    }
}

impl StdError for RefundError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .cause
            .as_deref()
            .map(|cause| cause as &(dyn StdError + 'static))
    }
}
