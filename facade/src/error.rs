//! The one error type of the facade: [`RefundError`] with an [`ErrorKind`] a
//! service can branch on, plus what the provider said.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

use crate::money::Money;
use crate::provider::Provider;

/// What an answer tells about the money: the one classification the retry executor, the
/// single-flight of identical calls and a journal rest on.
///
/// | outcome | meaning | produced by |
/// |---|---|---|
/// | [`NotApplied`](Outcome::NotApplied) | nothing reached the provider, or it definitively refused | invalid input, no connection, 401/403/404, 408/429, over-refund, a documented validation error |
/// | [`Unknown`](Outcome::Unknown) | it may have been applied | time-out, connection lost after sending, any 5xx (provider or gateway), an answer that cannot be read, verified or is too large, a request still in flight |
/// | [`Applied`](Outcome::Applied) | the provider says a refund with this merchant reference exists | a success (`Ok`), [`ErrorKind::Duplicate`] |
///
/// Serializes as `"not_applied"`, `"unknown"` or `"applied"` ([`Outcome::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing was refunded by this attempt: nothing reached the provider, or it refused.
    NotApplied,
    /// The refund may or may not have been applied; settle it before giving up (retry with
    /// the same merchant reference where the provider deduplicates, otherwise reconcile).
    Unknown,
    /// The provider says a refund with this merchant reference exists.
    Applied,
}

impl Outcome {
    /// The stable snake_case name, also the serde form: `"not_applied"`, `"unknown"`,
    /// `"applied"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotApplied => "not_applied",
            Outcome::Unknown => "unknown",
            Outcome::Applied => "applied",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::NotApplied => "not applied",
            Outcome::Unknown => "outcome unknown",
            Outcome::Applied => "applied",
        })
    }
}

/// What went wrong, independent of the provider. Each kind has a default
/// [`Outcome`] ([`ErrorKind::outcome`]); see [`RefundError::outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was rejected before any I/O, or the provider rejected a field.
    /// `field` is a path into [`RefundRequest`](crate::RefundRequest), e.g. `"amount"`,
    /// `"line_items[2].quantity"`; the provider's own field name, where it gave one, is in
    /// [`RefundError::provider_messages`]. Not applied.
    InvalidRequest {
        /// Path of the offending field in [`RefundRequest`](crate::RefundRequest).
        field: String,
        /// Human-readable reason.
        reason: String,
    },
    /// The client's configuration is unusable (a base URL without scheme or host, a missing
    /// or malformed environment variable). `setting` names it: `REFUNDS_OPTTY_BASE_URL`, or
    /// `moyasar.base_url` for a config built in code. Not applied: nothing was sent.
    InvalidConfig {
        /// The environment variable or config field.
        setting: String,
        /// Human-readable reason.
        reason: String,
    },
    /// The credentials were missing or rejected (HTTP 401). Not applied.
    Unauthorized,
    /// The credentials are valid but lack permission (HTTP 403). Not applied.
    Forbidden,
    /// The provider does not know the order (or it belongs to another merchant). Not applied.
    OrderNotFound,
    /// A refund with this merchant reference already exists at the provider (OpenApp 409
    /// `RefundExistsException`). Applied: after a retry of an ambiguous attempt this is the
    /// earlier attempt's refund.
    Duplicate,
    /// The amount exceeds what can still be refunded. Not applied.
    ExceedsRefundable {
        /// The refundable amount, where the provider states it
        /// (Optty: "You can only refund amount up to AUD 24.98").
        limit: Option<Money>,
    },
    /// An earlier attempt with the same merchant reference is still being processed
    /// (Moyasar: "Initial request is still processing."). Outcome unknown: wait and retry.
    InProgress,
    /// Nothing was applied and the same request may succeed later: no connection could be
    /// made, or the provider answered 408 or 429. Not applied.
    Transient,
    /// The provider, or a gateway in front of it, answered HTTP 5xx. A gateway's 502/504 can
    /// come after the provider committed the refund: outcome unknown.
    ServerError,
    /// No complete answer: the provider did not answer in time, or the connection dropped
    /// after the request was sent. Outcome unknown.
    Timeout,
    /// The answer could not be trusted: malformed or unexpected body or status, too large, or
    /// (OpenApp) unsigned or badly signed. Outcome unknown.
    Protocol,
}

impl ErrorKind {
    /// The outcome an error of this kind implies unless the error says otherwise.
    pub fn outcome(&self) -> Outcome {
        match self {
            ErrorKind::Duplicate => Outcome::Applied,
            ErrorKind::InProgress
            | ErrorKind::ServerError
            | ErrorKind::Timeout
            | ErrorKind::Protocol => Outcome::Unknown,
            _ => Outcome::NotApplied,
        }
    }

    /// The stable snake_case name of the kind, for logs, metrics and
    /// [`ErrorSummary::kind`]: `invalid_request`, `invalid_config`, `unauthorized`,
    /// `forbidden`, `order_not_found`, `duplicate`, `exceeds_refundable`, `in_progress`,
    /// `transient`, `server_error`, `timeout`, `protocol`.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest { .. } => "invalid_request",
            ErrorKind::InvalidConfig { .. } => "invalid_config",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::OrderNotFound => "order_not_found",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::ExceedsRefundable { .. } => "exceeds_refundable",
            ErrorKind::InProgress => "in_progress",
            ErrorKind::Transient => "transient",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
        }
    }

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
            ErrorKind::InvalidConfig { setting, reason } => {
                write!(f, "invalid configuration: `{setting}`: {reason}")
            }
            ErrorKind::Unauthorized => f.write_str("unauthorized: credentials missing or rejected"),
            ErrorKind::Forbidden => {
                f.write_str("forbidden: the credentials lack permission for this operation")
            }
            ErrorKind::OrderNotFound => f.write_str("order not found"),
            ErrorKind::Duplicate => {
                f.write_str("duplicate: a refund with this merchant reference already exists")
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
            ErrorKind::Transient => {
                f.write_str("temporary failure before the provider acted (not applied)")
            }
            ErrorKind::ServerError => f.write_str(
                "the provider or a gateway failed (HTTP 5xx; the refund may or may not have been applied)",
            ),
            ErrorKind::Timeout => f.write_str(
                "no complete answer from the provider (timed out or connection lost; the refund may or may not have been applied)",
            ),
            ErrorKind::Protocol => f.write_str(
                "untrusted response from the provider (the refund may or may not have been applied)",
            ),
        }
    }
}

/// One message of a provider error body that carries several (AfterPay's
/// array of `ResponseMessage`); every message is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
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

/// One problem of an invalid request: a field path into
/// [`RefundRequest`](crate::RefundRequest) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldProblem {
    /// Path of the offending field, e.g. `line_items[2].quantity`.
    pub field: String,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.reason)
    }
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    outcome: Outcome,
    retry_futile: bool,
    /// The provider deduplicates on our key (set by its adapter): an unknown outcome may be
    /// re-sent.
    deduplicated: bool,
    retry_after: Option<Duration>,
    provider: Option<Provider>,
    http_status: Option<u16>,
    provider_code: Option<String>,
    provider_message: Option<String>,
    provider_messages: Vec<ProviderMessage>,
    problems: Vec<FieldProblem>,
    cause: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// A failed refund: an [`ErrorKind`] plus what the provider said.
///
/// Built with [`RefundError::new`] / [`RefundError::invalid`] and the `with_*` builder
/// methods; read with [`kind`](RefundError::kind), [`outcome`](RefundError::outcome),
/// [`http_status`](RefundError::http_status) and the `provider_*` getters. Neither `Debug` nor `Display` ever
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
                outcome: kind.outcome(),
                retry_futile: false,
                deduplicated: false,
                retry_after: None,
                kind,
                provider: None,
                http_status: None,
                provider_code: None,
                provider_message: None,
                provider_messages: Vec::new(),
                problems: Vec::new(),
                cause: None,
            }),
        }
    }

    /// An [`ErrorKind::InvalidConfig`] for `setting`.
    pub fn invalid_config(setting: impl Into<String>, reason: impl Into<String>) -> RefundError {
        RefundError::new(ErrorKind::InvalidConfig {
            setting: setting.into(),
            reason: reason.into(),
        })
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
    pub fn with_provider(mut self, provider: Provider) -> RefundError {
        self.inner.provider = Some(provider);
        self
    }

    /// Sets the HTTP status of the provider's answer.
    #[must_use]
    pub fn with_http_status(mut self, status: u16) -> RefundError {
        self.inner.http_status = Some(status);
        self
    }

    /// Sets the provider's own error code (e.g. `RefundExistsException`).
    #[must_use]
    pub fn with_provider_code(mut self, code: impl Into<String>) -> RefundError {
        self.inner.provider_code = Some(code.into());
        self
    }

    /// Sets the provider's headline error message.
    #[must_use]
    pub fn with_provider_message(mut self, message: impl Into<String>) -> RefundError {
        self.inner.provider_message = Some(message.into());
        self
    }

    /// Sets all messages of a provider body that carries several.
    #[must_use]
    pub fn with_provider_messages(mut self, messages: Vec<ProviderMessage>) -> RefundError {
        self.inner.provider_messages = messages;
        self
    }

    /// Sets every problem of an invalid request (the kind names the first).
    #[must_use]
    pub fn with_problems(mut self, problems: Vec<FieldProblem>) -> RefundError {
        self.inner.problems = problems;
        self
    }

    /// Overrides the outcome the kind implies (e.g. a [`ErrorKind::Protocol`] error raised
    /// before anything was sent is [`Outcome::NotApplied`]).
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> RefundError {
        self.inner.outcome = outcome;
        self
    }

    /// Says whether the provider deduplicates on our merchant reference, so that an unknown
    /// outcome may be re-sent ([`is_retryable`](RefundError::is_retryable)). Each provider's
    /// adapter sets it on every error it returns, from its room's capability
    /// ([`Capabilities::idempotent_retries`](crate::Capabilities::idempotent_retries)); an error
    /// made elsewhere is not retryable when its outcome is unknown unless it says so.
    #[must_use]
    pub fn with_deduplication(mut self, deduplicated: bool) -> RefundError {
        self.inner.deduplicated = deduplicated;
        self
    }

    /// Marks the error as one that re-sending the same request cannot change (the provider
    /// would answer the same), so [`is_retryable`](RefundError::is_retryable) is `false`.
    #[must_use]
    pub fn with_retry_futile(mut self) -> RefundError {
        self.inner.retry_futile = true;
        self
    }

    /// Sets how long the provider asked the client to wait (`Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> RefundError {
        self.inner.retry_after = Some(wait);
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
    pub fn provider(&self) -> Option<Provider> {
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

    /// Every problem of a request refused by [`RefundRequest::validate`](crate::RefundRequest::validate),
    /// in the order checked; empty for other errors.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.inner.problems
    }

    /// What this error tells about the money: see [`Outcome`].
    pub fn outcome(&self) -> Outcome {
        self.inner.outcome
    }

    /// How long the provider asked to wait before the next attempt (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether sending the *same* request again (same merchant reference) is safe and may
    /// change the result. It follows from the [`outcome`](RefundError::outcome) and the
    /// provider's duplicate key:
    ///
    /// | outcome | provider deduplicates (Optty, Moyasar, OpenApp) | no duplicate key (AfterPay) |
    /// |---|---|---|
    /// | not applied, [`ErrorKind::Transient`] | retry | retry |
    /// | not applied, any other kind | no: the same request fails the same way | no |
    /// | unknown | retry: the provider applies it once, or answers that it exists | **no**: a blind retry could refund twice; reconcile |
    /// | applied | no: it is done | no |
    ///
    /// An error without a provider, or one the provider would answer the same way again (a
    /// Moyasar order that does not list our refund), is not retryable when its outcome is
    /// unknown. Use [`Refunds::refund_with_retries`](crate::Refunds::refund_with_retries)
    /// rather than a loop of your own: it applies this rule with back-off and `Retry-After`.
    pub fn is_retryable(&self) -> bool {
        if self.inner.retry_futile {
            return false;
        }
        match self.inner.outcome {
            Outcome::NotApplied => self.inner.kind == ErrorKind::Transient,
            Outcome::Unknown => self.inner.deduplicated,
            Outcome::Applied => false,
        }
    }

    /// Whether the refund may have been applied although this error was returned
    /// ([`Outcome::Unknown`]): settle it before giving up.
    pub fn outcome_unknown(&self) -> bool {
        self.inner.outcome == Outcome::Unknown
    }

    /// A serializable summary of the error, for a service's answers and logs: see
    /// [`ErrorSummary`]. `RefundError` itself serializes as this summary.
    pub fn summary(&self) -> ErrorSummary {
        let inner = &self.inner;
        let (field, setting, reason) = match &inner.kind {
            ErrorKind::InvalidRequest { field, reason } => {
                (Some(field.clone()), None, Some(reason.clone()))
            }
            ErrorKind::InvalidConfig { setting, reason } => {
                (None, Some(setting.clone()), Some(reason.clone()))
            }
            _ => (None, None, None),
        };
        let limit = match &inner.kind {
            ErrorKind::ExceedsRefundable { limit } => *limit,
            _ => None,
        };
        ErrorSummary {
            kind: inner.kind.name().to_owned(),
            field,
            setting,
            reason,
            problems: inner.problems.clone(),
            limit,
            outcome: inner.outcome,
            retryable: self.is_retryable(),
            provider: inner.provider,
            http_status: inner.http_status,
            provider_code: inner.provider_code.clone(),
            provider_message: inner.provider_message.clone(),
            provider_messages: inner.provider_messages.clone(),
            retry_after_ms: inner
                .retry_after
                .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            message: self.to_string(),
        }
    }
}

/// A [`RefundError`] as plain data, for a service's answers and structured logs: what
/// [`RefundError::summary`] returns and what a `RefundError` serializes as.
///
/// Every key is always present (`null` or `[]` when it does not apply), so the shape is
/// stable:
///
/// ```json
/// {
///   "kind": "exceeds_refundable", "field": null, "setting": null, "reason": null,
///   "problems": [], "limit": {"amount": "24.98", "currency": "AUD"},
///   "outcome": "not_applied", "retryable": false, "provider": "optty",
///   "http_status": 400, "provider_code": null,
///   "provider_message": "You can only refund amount up to AUD 24.98",
///   "provider_messages": [], "retry_after_ms": null,
///   "message": "optty: amount exceeds the refundable amount (at most AUD 24.98) [not applied] (HTTP 400): You can only refund amount up to AUD 24.98"
/// }
/// ```
///
/// It holds no secrets: neither does the error (credentials never enter it), and the
/// underlying cause ([`std::error::Error::source`], e.g. the HTTP client's error, which may
/// name a URL) is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ErrorSummary {
    /// The kind's stable snake_case name ([`ErrorKind::name`]), e.g. `"invalid_request"`.
    pub kind: String,
    /// The field path of an [`ErrorKind::InvalidRequest`].
    #[serde(default)]
    pub field: Option<String>,
    /// The setting of an [`ErrorKind::InvalidConfig`].
    #[serde(default)]
    pub setting: Option<String>,
    /// Why, for an [`ErrorKind::InvalidRequest`] or [`ErrorKind::InvalidConfig`].
    #[serde(default)]
    pub reason: Option<String>,
    /// Every problem of a request refused by validation ([`RefundError::problems`]).
    #[serde(default)]
    pub problems: Vec<FieldProblem>,
    /// The refundable amount of an [`ErrorKind::ExceedsRefundable`], where the provider stated
    /// it.
    #[serde(default)]
    pub limit: Option<Money>,
    /// What the error tells about the money ([`RefundError::outcome`]): `"not_applied"`,
    /// `"unknown"` or `"applied"`.
    pub outcome: Outcome,
    /// Whether the same request may be sent again ([`RefundError::is_retryable`]).
    pub retryable: bool,
    /// The provider the error concerns, if known.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// The HTTP status of the provider's answer, if there was one.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The provider's own error code.
    #[serde(default)]
    pub provider_code: Option<String>,
    /// The provider's headline error message.
    #[serde(default)]
    pub provider_message: Option<String>,
    /// Every message of a provider body that carries several.
    #[serde(default)]
    pub provider_messages: Vec<ProviderMessage>,
    /// How long the provider asked to wait (`Retry-After`), in milliseconds.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// The error as displayed (`Display` of [`RefundError`]).
    pub message: String,
}

/// Serializes as the error's [`ErrorSummary`].
impl Serialize for RefundError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(serializer)
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
            .field("outcome", &inner.outcome)
            .field("provider", &inner.provider)
            .field("http_status", &inner.http_status)
            .field("provider_code", &inner.provider_code)
            .field("provider_message", &inner.provider_message)
            .field("provider_messages", &inner.provider_messages);
        if inner.problems.len() > 1 {
            s.field("problems", &inner.problems);
        }
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
        write!(f, "{} [{}]", inner.kind, inner.outcome)?;
        match (inner.http_status, &inner.provider_code) {
            (Some(status), Some(code)) => write!(f, " (HTTP {status}, {code})")?,
            (Some(status), None) => write!(f, " (HTTP {status})")?,
            (None, Some(code)) => write!(f, " ({code})")?,
            (None, None) => {}
        }
        if let Some(message) = &inner.provider_message {
            write!(f, ": {message}")?;
        }
        if inner.problems.len() > 1 {
            write!(f, "; also")?;
            for (i, problem) in inner.problems.iter().skip(1).enumerate() {
                let sep = if i == 0 { " " } else { "; " };
                write!(f, "{sep}{problem}")?;
            }
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

/// Parsing a provider's name fails with a [`RefundError`] naming the field, so the impl lives
/// with the error (the provider list itself knows nothing of errors).
impl std::str::FromStr for Provider {
    type Err = RefundError;

    /// Parses the [`as_str`](Provider::as_str) form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
                RefundError::invalid(
                    "provider",
                    format!(
                        "unknown provider {s:?}: expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}
