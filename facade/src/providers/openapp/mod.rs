//! OpenApp transport: every request is HMAC-signed as the provider notes describe, and a
//! signed answer is verified before it is believed. OpenApp publishes a JSON Schema, not an
//! OpenAPI document, so there is no generated client: the body type is generated (typify), the
//! method and path come from the generated `operations` module, and reqwest sends it.

pub mod config;
pub mod signing;
pub mod transformers;

use openapp_api::constraints::refund_order as body;

use crate::answer::Answer;
use crate::capabilities::Capabilities;
use crate::lookup::Lookup;
use crate::providers::SpecOperation;
use crate::providers::room::Room;
use std::time::{SystemTime, UNIX_EPOCH};

use openapp_api::operations::refund_order as operation;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;

use self::signing::openapp_signature;
use crate::error::{ErrorKind, Outcome, RefundError};
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::openapp::config::OpenAppConfig;
use crate::providers::transport::receive;
use crate::providers::transport::{BaseUrl, http_client, operation_request};

pub use transformers::SIGNATURE_HEADER;

const PROVIDER: Provider = Provider::OpenApp;

/// Whether the provider deduplicates on our merchant reference, so a request whose answer was
/// lost may be sent again (the duplicate key is sent on every attempt). Set on every error of this room
/// ([`RefundError::is_retryable`]) and stated in [`capabilities`].
pub(crate) const DEDUPLICATES: bool = true;

/// Refunds through OpenApp.
pub struct OpenApp {
    config: OpenAppConfig,
    http: reqwest::Client,
    /// The refund operation's URL, parsed once.
    url: url::Url,
}

impl OpenApp {
    /// A client for `config`.
    pub fn new(config: OpenAppConfig) -> Result<OpenApp, RefundError> {
        let http = http_client(config.timeout, HeaderMap::new())?;
        let url = BaseUrl::new("openapp.base_url", &config.base_url)?.join(operation::PATH);
        Ok(OpenApp { config, http, url })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        self.send(request)
            .await
            .map_err(|error| error.with_deduplication(DEDUPLICATES))
    }

    async fn send(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = serde_json::to_vec(&transformers::refund_body(request)?).map_err(|err| {
            RefundError::new(ErrorKind::Protocol)
                .with_outcome(Outcome::NotApplied)
                .with_provider(PROVIDER)
                .with_provider_message(format!("could not encode the request: {err}"))
        })?;
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let signed = openapp_signature(
            self.config.api_key.expose_secret(),
            &self.config.api_secret,
            operation::METHOD,
            operation::PATH,
            epoch_ms,
            &nonce,
            &body,
        );
        let mut authorization = HeaderValue::from_str(&signed.authorization)
            .map_err(|_| RefundError::invalid("credentials", "api key is not header-safe"))?;
        authorization.set_sensitive(true);
        let request_builder = operation_request(&self.http, operation::METHOD, self.url.clone())
            .header(AUTHORIZATION, authorization)
            .header(SIGNATURE_HEADER, signed.signature.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let answer = receive(PROVIDER, request_builder, self.config.limits).await?;
        transformers::refund_result(request, &answer, Some(&self.config))
    }
}

impl Room for OpenApp {
    const PROVIDER: Provider = PROVIDER;
    const REFUND_OPERATION: SpecOperation = SpecOperation {
        openapi: openapp_api::NORMALIZED_OPENAPI,
        method: operation::METHOD,
        path: operation::PATH,
    };
    type Config = OpenAppConfig;

    fn config_from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OpenAppConfig, RefundError> {
        OpenAppConfig::from_lookup(lookup)
    }

    fn connect(config: OpenAppConfig) -> Result<OpenApp, RefundError> {
        OpenApp::new(config)
    }

    fn capabilities() -> Capabilities {
        capabilities()
    }

    fn refund_body_json(request: &RefundRequest, pretty: bool) -> Result<String, RefundError> {
        crate::providers::transport::body_json(
            PROVIDER,
            &transformers::refund_body(request)?,
            pretty,
        )
    }

    fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
        transformers::refund_result(request, answer, None)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        OpenApp::refund(self, request).await
    }

    fn read_result(
        _request: &RefundRequest,
        _known_refund_id: Option<&str>,
        _answer: &Answer,
        _read_at: SystemTime,
    ) -> Result<Lookup, RefundError> {
        Err(no_record_read())
    }

    async fn find(
        &self,
        _request: &RefundRequest,
        _known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        Err(no_record_read())
    }
}

/// The error of every read: OpenApp publishes no read of a refund and no callback (its pages,
/// checked for `specs/openapp/READS.md`, list none); the refund's execution shows only in its
/// settlement report, whose format and delivery are not public. Feed what that report says to
/// the journal's `record_status`.
fn no_record_read() -> RefundError {
    RefundError::invalid(
        "provider",
        "OpenApp publishes no read of a refund: its settlement report is the only record",
    )
    .with_provider(PROVIDER)
    .with_outcome(crate::Outcome::Unknown)
    .with_retry_futile()
}

/// OpenApp's refund features (a 2xx only confirms registration; `caseId` unique per order;
/// a `reason` enum; amounts in 1/100s, so only 2-decimal currencies) and the limits its JSON
/// Schema states.
pub fn capabilities() -> Capabilities {
    Capabilities {
        partial_refunds: true,
        line_items: true,
        partial_requires_line_items: false,
        reasons: true,
        synchronous_result: false,
        idempotent_retries: DEDUPLICATES,
        max_minor_units: None,
        max_reference_len: Capabilities::reference_len(body::case_id::MAX_LENGTH),
        max_description_len: Some(body::notes::MAX_LENGTH),
        max_order_id_len: Some(body::shop_order_id::MAX_LENGTH),
        max_line_items: None,
        max_product_id_len: Some(body::products::items::id::MAX_LENGTH),
        // The amount counts 1/100s: a unit, not a spec keyword.
        currency_exponents: Some(&[2]),
        amount_multiple_of: None,
        requires_capture_number: false,
        max_capture_number_len: None,
        requires_provider_order_id: body::oa_order_id::REQUIRED,
        order_id_in_path: false,
        record_read: false,
        refund_id_is_reference: true,
    }
}
