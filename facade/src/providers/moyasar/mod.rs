//! Moyasar transport: the secret key as a bearer token, the generated request body sent to the
//! generated operation's path, and the answer read within the configured limits.
//!
//! Moyasar answers a refund (and Retrieve Order) with the whole order, every earlier refund
//! listed, so its answers grow with the order: its default answer cap is its own, 4 MiB
//! ([`MoyasarConfig::DEFAULT_ANSWER_LIMITS`], where the choice is explained), and the mapping
//! reads the order in one pass without building it (`transformers`).

pub mod config;
pub mod transformers;

use moyasar_api::constraints::refund_order as body;

use crate::answer::Answer;
use crate::capabilities::Capabilities;
use crate::lookup::Lookup;
use crate::providers::SpecOperation;
use crate::providers::room::Room;
use crate::reference::MerchantReference;
use moyasar_api::operations::{refund_order as operation, retrieve_order};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::ExposeSecret;
use std::time::SystemTime;
use uuid::{Uuid, uuid};

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::mapping::read_failed;
use crate::providers::moyasar::config::MoyasarConfig;
use crate::providers::transport::{
    BaseUrl, http_client, operation_path, operation_request, receive, secret_header, send_json,
};

const PROVIDER: Provider = Provider::Moyasar;

/// Whether the provider deduplicates on our merchant reference, so a request whose answer was
/// lost may be sent again (the duplicate key is sent on every attempt). Set on every error of this room
/// ([`RefundError::is_retryable`]) and stated in [`capabilities`].
pub(crate) const DEDUPLICATES: bool = true;

/// The namespace of the UUID v5 Moyasar `transaction_id`s derived by
/// [`MerchantReference::moyasar_transaction_id`](crate::MerchantReference::moyasar_transaction_id).
///
/// It is itself the UUID v5 of the name
/// `urn:refunds-facade:moyasar:transaction_id` in the RFC 4122 URL namespace
/// (`6ba7b811-9dad-11d1-80b4-00c04fd430c8`), i.e. in Python
/// `uuid.uuid5(uuid.NAMESPACE_URL, "urn:refunds-facade:moyasar:transaction_id")`.
///
/// **Never change it**: every idempotency key already sent to Moyasar derives
/// from it, and a different namespace would turn a retry into a second refund.
pub const MOYASAR_TRANSACTION_NAMESPACE: Uuid = uuid!("672dda92-a6cb-567e-b652-c36fe1b59243");

/// Moyasar's key for a refund: its `transaction_id` is a client-made UUID, kept across retries.
impl MerchantReference {
    /// The Moyasar `transaction_id` (idempotency key) for this reference: the
    /// UUID v5 of the reference text in [`MOYASAR_TRANSACTION_NAMESPACE`].
    /// The same reference always yields the same UUID, so retries are
    /// recognised by Moyasar.
    pub fn moyasar_transaction_id(&self) -> Uuid {
        Uuid::new_v5(&MOYASAR_TRANSACTION_NAMESPACE, self.as_str().as_bytes())
    }
}

/// Refunds through Moyasar.
pub struct Moyasar {
    http: reqwest::Client,
    base_url: BaseUrl,
    limits: AnswerLimits,
}

impl Moyasar {
    /// A client for `config`.
    pub fn new(config: &MoyasarConfig) -> Result<Moyasar, RefundError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", config.secret_key.expose_secret()))?,
        );
        Ok(Moyasar {
            http: http_client(config.timeout, headers)?,
            base_url: BaseUrl::new("moyasar.base_url", &config.base_url)?,
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

    /// Reads the order (Retrieve Order) and finds our refund transaction in it
    /// ([`transformers::read_result`]); the request must have passed validation.
    pub async fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        let path = operation_path(retrieve_order::PATH, &[&request.order_id]);
        let url = self.base_url.join(&path);
        let outgoing = operation_request(&self.http, retrieve_order::METHOD, url);
        let answer = receive(PROVIDER, outgoing, self.limits)
            .await
            .map_err(read_failed)?;
        transformers::read_result(request, known_refund_id, &answer, SystemTime::now())
    }
}

impl Room for Moyasar {
    const PROVIDER: Provider = PROVIDER;
    const REFUND_OPERATION: SpecOperation = SpecOperation {
        openapi: moyasar_api::NORMALIZED_OPENAPI,
        method: operation::METHOD,
        path: operation::PATH,
    };
    const DEFAULT_ANSWER_LIMITS: AnswerLimits = MoyasarConfig::DEFAULT_ANSWER_LIMITS;
    type Config = MoyasarConfig;

    fn config_from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MoyasarConfig, RefundError> {
        MoyasarConfig::from_lookup(lookup)
    }

    fn connect(config: MoyasarConfig) -> Result<Moyasar, RefundError> {
        Moyasar::new(&config)
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
        Moyasar::refund(self, request).await
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
        Moyasar::find(self, request, known_refund_id).await
    }
}

/// Moyasar's refund features (`transaction_id` is the idempotency key; amounts in integer
/// minor units) and the limits its spec states (`amount` maximum).
pub fn capabilities() -> Capabilities {
    Capabilities {
        partial_refunds: true,
        line_items: false,
        partial_requires_line_items: false,
        reasons: false,
        synchronous_result: true,
        idempotent_retries: DEDUPLICATES,
        max_minor_units: Some(body::amount::MAXIMUM),
        // The reference is not sent: its UUID v5 is, whatever the reference's length.
        max_reference_len: MerchantReference::MAX_LEN,
        max_description_len: None,
        max_order_id_len: None,
        max_line_items: None,
        max_product_id_len: None,
        currency_exponents: None,
        amount_multiple_of: None,
        requires_capture_number: false,
        max_capture_number_len: None,
        requires_provider_order_id: false,
        order_id_in_path: true,
        record_read: true,
        refund_id_is_reference: false,
    }
}
