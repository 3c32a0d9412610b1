//! Optty transport: a client-credentials token (cached until shortly before it expires, renewed
//! and the refund re-sent once on 401), the generated request body sent to the generated
//! operation's path, and the answer read within the configured limits.

pub mod config;
pub mod transformers;

use optty_api::constraints::refunds_controller_refund_order as body;

use crate::answer::Answer;
use crate::capabilities::Capabilities;
use crate::lookup::Lookup;
use crate::providers::SpecOperation;
use crate::providers::room::Room;
use crate::reference::MerchantReference;
use std::time::{Duration, Instant, SystemTime};

use optty_api::operations::{
    create_access_token, get_transaction_details, refunds_controller_refund_order as operation,
};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::{ExposeSecret, SecretString};

use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::mapping::read_failed;
use crate::providers::optty::config::OpttyConfig;
use crate::providers::transport::receive;
use crate::providers::transport::{
    BaseUrl, http_client, operation_path, operation_request, secret_header, send_json,
};

const PROVIDER: Provider = Provider::Optty;

/// Whether the provider deduplicates on our merchant reference, so a request whose answer was
/// lost may be sent again (the duplicate key is sent on every attempt). Set on every error of this room
/// ([`RefundError::is_retryable`]) and stated in [`capabilities`].
pub(crate) const DEDUPLICATES: bool = true;

/// A token is renewed this long before Optty says it expires, so a request never leaves with
/// a token that expires in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// The bearer token, as a header value marked sensitive.
struct Session {
    authorization: reqwest::header::HeaderValue,
    renew_at: Instant,
}

/// Refunds through Optty.
pub struct Optty {
    config: OpttyConfig,
    http: reqwest::Client,
    base_url: BaseUrl,
    auth_url: BaseUrl,
    /// The token in use: read by every refund (a lock held only to copy the header out).
    session: std::sync::RwLock<Option<Session>>,
    /// Held while a token is fetched, so that calls which find none fetch one, not one each.
    fetching: tokio::sync::Mutex<()>,
}

impl Optty {
    /// A client for `config`; no request is made until the first refund.
    pub fn new(config: OpttyConfig) -> Result<Optty, RefundError> {
        Ok(Optty {
            http: http_client(config.timeout, HeaderMap::new())?,
            base_url: BaseUrl::new("optty.base_url", &config.base_url)?,
            auth_url: BaseUrl::new("optty.auth_url", &config.auth_url)?,
            config,
            session: std::sync::RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        self.attempt(request)
            .await
            .map_err(|error| error.with_deduplication(DEDUPLICATES))
    }

    async fn attempt(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = transformers::refund_body(request);
        let authorization = self.authorization(false).await?;
        match self.send(authorization, request, &body).await {
            // The token may have expired or been revoked early: renew it once and resend the
            // same body (the same refundReference, so Optty cannot refund twice).
            Err(err) if err.http_status() == Some(401) => {
                let authorization = self.authorization(true).await?;
                self.send(authorization, request, &body).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        authorization: reqwest::header::HeaderValue,
        request: &RefundRequest,
        body: &optty_api::types::OrderRefundDto,
    ) -> Result<Refund, RefundError> {
        let path = operation_path(operation::PATH, &[&request.order_id]);
        let outgoing = operation_request(&self.http, operation::METHOD, self.base_url.join(&path))
            .header(AUTHORIZATION, authorization);
        let answer = send_json(PROVIDER, outgoing, body, self.config.limits).await?;
        transformers::refund_result(request, &answer)
    }

    /// Reads the order's Transaction Details and finds our refund in them
    /// ([`transformers::read_result`]), renewing the token once on 401 like a refund; the
    /// request must have passed validation. No body and no `merchantId` are sent: the docs
    /// show none for a merchant's own orders.
    pub async fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        let read = async |renew: bool| -> Result<Answer, RefundError> {
            let authorization = self.authorization(renew).await?;
            let path = operation_path(get_transaction_details::PATH, &[&request.order_id]);
            let url = self.base_url.join(&path);
            let outgoing = operation_request(&self.http, get_transaction_details::METHOD, url)
                .header(AUTHORIZATION, authorization);
            receive(PROVIDER, outgoing, self.config.limits).await
        };
        let mut answer = read(false).await.map_err(read_failed)?;
        if answer.status == 401 {
            answer = read(true).await.map_err(read_failed)?;
        }
        transformers::read_result(request, known_refund_id, &answer, SystemTime::now())
    }

    /// The bearer header, fetching a token if there is none, it is about to expire, or `renew`
    /// says the last one was refused.
    async fn authorization(
        &self,
        renew: bool,
    ) -> Result<reqwest::header::HeaderValue, RefundError> {
        if !renew && let Some(current) = self.current_token() {
            return Ok(current);
        }
        let _fetching = self.fetching.lock().await;
        // Fetched by the call this one waited for.
        if !renew && let Some(current) = self.current_token() {
            return Ok(current);
        }
        let fresh = self.fetch_token().await?;
        let authorization = fresh.authorization.clone();
        *self.session_mut() = Some(fresh);
        Ok(authorization)
    }

    /// The token in use, unless there is none or it is due for renewal.
    fn current_token(&self) -> Option<reqwest::header::HeaderValue> {
        // A panic elsewhere while holding the lock leaves a plain value behind: still usable.
        let session = self
            .session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        session
            .as_ref()
            .filter(|current| Instant::now() < current.renew_at)
            .map(|current| current.authorization.clone())
    }

    fn session_mut(&self) -> std::sync::RwLockWriteGuard<'_, Option<Session>> {
        self.session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch_token(&self) -> Result<Session, RefundError> {
        let requested = Instant::now();
        let url = self.auth_url.join(create_access_token::PATH);
        let form = transformers::token_body(&self.config);
        let outgoing = operation_request(&self.http, create_access_token::METHOD, url).form(&form);
        let answer = receive(PROVIDER, outgoing, self.config.limits)
            .await
            // Nothing reached the refund endpoint yet.
            .map_err(|err| err.with_outcome(crate::Outcome::NotApplied))?;
        let granted = transformers::token_result(&answer)?;
        let token = SecretString::from(granted.access_token);
        let lifetime = Duration::from_secs(granted.expires_in.max(0).unsigned_abs());
        Ok(Session {
            authorization: secret_header(&format!("Bearer {}", token.expose_secret()))?,
            renew_at: requested + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY),
        })
    }

    /// Whether a token is cached (for tests and diagnostics; the token itself is never exposed).
    pub async fn has_token(&self) -> bool {
        self.session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }
}

impl Room for Optty {
    const PROVIDER: Provider = PROVIDER;
    const REFUND_OPERATION: SpecOperation = SpecOperation {
        openapi: optty_api::NORMALIZED_OPENAPI,
        method: operation::METHOD,
        path: operation::PATH,
    };
    type Config = OpttyConfig;

    fn config_from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OpttyConfig, RefundError> {
        OpttyConfig::from_lookup(lookup)
    }

    fn connect(config: OpttyConfig) -> Result<Optty, RefundError> {
        Optty::new(config)
    }

    fn capabilities() -> Capabilities {
        capabilities()
    }

    fn refund_body_json(request: &RefundRequest, pretty: bool) -> Result<String, RefundError> {
        crate::providers::transport::body_json(
            PROVIDER,
            &transformers::refund_body(request),
            pretty,
        )
    }

    fn read_notification(body: &[u8]) -> Result<crate::Notification, RefundError> {
        transformers::notification(body)
    }

    fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
        transformers::refund_result(request, answer)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        Optty::refund(self, request).await
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
        Optty::find(self, request, known_refund_id).await
    }
}

/// Optty's refund features (optty-refund-openapi.md: `OrderRefundDto`; refundReference is
/// "unique per merchant"; the answer carries `refundStatus`, SUCCESSFUL or PENDING settled by
/// webhook) and the limits its spec states (`refundAmount.amount` `multipleOf`).
pub fn capabilities() -> Capabilities {
    Capabilities {
        partial_refunds: true,
        line_items: false,
        partial_requires_line_items: false,
        reasons: false,
        synchronous_result: true,
        idempotent_retries: DEDUPLICATES,
        max_minor_units: None,
        max_reference_len: MerchantReference::MAX_LEN,
        max_description_len: None,
        max_order_id_len: None,
        max_line_items: None,
        max_product_id_len: None,
        currency_exponents: None,
        amount_multiple_of: Capabilities::step(body::refund_amount::amount::MULTIPLE_OF),
        requires_capture_number: false,
        max_capture_number_len: None,
        requires_provider_order_id: false,
        order_id_in_path: true,
        record_read: true,
        refund_id_is_reference: false,
    }
}
