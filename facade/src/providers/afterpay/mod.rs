//! AfterPay transport: the `X-Auth-Key` header, the generated request body sent to the generated
//! operation's path, and the answer read within the configured limits.

pub mod config;
pub mod transformers;

use afterpay_api::constraints::refund_order as body;

use crate::answer::Answer;
use crate::capabilities::Capabilities;
use crate::lookup::Lookup;
use crate::providers::SpecOperation;
use crate::providers::mapping::read_failed;
use crate::providers::room::Room;
use crate::providers::transport::receive;
use afterpay_api::operations::{get_order, refund_order as operation};
use reqwest::header::{HeaderMap, HeaderName};
use secrecy::ExposeSecret;
use std::time::SystemTime;

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::afterpay::config::AfterPayConfig;
use crate::providers::transport::{
    BaseUrl, http_client, operation_path, operation_request, secret_header, send_json,
};

const PROVIDER: Provider = Provider::AfterPay;

/// Whether the provider deduplicates on our merchant reference, so a request whose answer was
/// lost may be sent again (Riverty documents no duplicate key: an answer lost after sending is never re-sent). Set on every error of this room
/// ([`RefundError::is_retryable`]) and stated in [`capabilities`].
pub(crate) const DEDUPLICATES: bool = false;

/// Refunds through AfterPay (Riverty).
pub struct AfterPay {
    http: reqwest::Client,
    base_url: BaseUrl,
    limits: AnswerLimits,
}

impl AfterPay {
    /// A client for `config`.
    pub fn new(config: &AfterPayConfig) -> Result<AfterPay, RefundError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-auth-key"),
            secret_header(config.api_key.expose_secret())?,
        );
        Ok(AfterPay {
            http: http_client(config.timeout, headers)?,
            base_url: BaseUrl::new("afterpay.base_url", &config.base_url)?,
            limits: config.limits,
        })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        self.send(request)
            .await
            .map_err(|error| error.with_deduplication(DEDUPLICATES))
    }

    async fn send(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = transformers::refund_body(request)?;
        let path = operation_path(operation::PATH, &[&request.order_id]);
        let outgoing = operation_request(&self.http, operation::METHOD, self.base_url.join(&path));
        let answer = send_json(PROVIDER, outgoing, body, self.limits).await?;
        transformers::refund_result(request, &answer)
    }

    /// Reads the order (Get Order) and its refunds ([`transformers::read_result`]); the request
    /// must have passed validation.
    pub async fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        let path = operation_path(get_order::PATH, &[&request.order_id]);
        let url = self.base_url.join(&path);
        let outgoing = operation_request(&self.http, get_order::METHOD, url);
        let answer = receive(PROVIDER, outgoing, self.limits)
            .await
            .map_err(read_failed)?;
        transformers::read_result(request, known_refund_id, &answer, SystemTime::now())
    }
}

impl Room for AfterPay {
    const PROVIDER: Provider = PROVIDER;
    const REFUND_OPERATION: SpecOperation = SpecOperation {
        openapi: afterpay_api::NORMALIZED_OPENAPI,
        method: operation::METHOD,
        path: operation::PATH,
    };
    type Config = AfterPayConfig;

    fn config_from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AfterPayConfig, RefundError> {
        AfterPayConfig::from_lookup(lookup)
    }

    fn connect(config: AfterPayConfig) -> Result<AfterPay, RefundError> {
        AfterPay::new(&config)
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
        transformers::refund_result(request, answer)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        AfterPay::refund(self, request).await
    }

    fn read_result(
        request: &RefundRequest,
        known_refund_id: Option<&str>,
        answer: &Answer,
        read_at: SystemTime,
    ) -> Result<Lookup, RefundError> {
        transformers::read_result(request, known_refund_id, answer, read_at)
    }

    async fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        AfterPay::find(self, request, known_refund_id).await
    }
}

/// AfterPay's refund features (afterpay-refund.txt: `items[]` required for a partial refund,
/// no documented duplicate key) and the limits its spec states.
pub fn capabilities() -> Capabilities {
    Capabilities {
        partial_refunds: true,
        line_items: true,
        partial_requires_line_items: true,
        reasons: false,
        synchronous_result: true,
        idempotent_retries: DEDUPLICATES,
        max_minor_units: None,
        max_reference_len: Capabilities::reference_len(body::transaction_reference::MAX_LENGTH),
        max_description_len: None,
        max_order_id_len: None,
        max_line_items: Some(body::items::MAX_ITEMS),
        max_product_id_len: Some(body::items::items::product_id::MAX_LENGTH),
        currency_exponents: None,
        amount_multiple_of: None,
        requires_capture_number: body::capture_number::REQUIRED,
        max_capture_number_len: Some(body::capture_number::MAX_LENGTH),
        requires_provider_order_id: false,
        order_id_in_path: true,
        record_read: true,
        refund_id_is_reference: false,
    }
}
