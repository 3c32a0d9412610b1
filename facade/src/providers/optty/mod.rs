//! Optty transport: client-credentials token (cached until shortly before it expires, renewed
//! and the refund retried once on 401) and the refund call, through the generated client.

pub mod transformers;

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::OpttyConfig;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::{http_client, secret_header, settle};

const PROVIDER: Provider = Provider::Optty;

/// A token is renewed this long before Optty says it expires, so a request never leaves with
/// a token that expires in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// The bearer token and the client that sends it.
struct Session {
    token: SecretString,
    renew_at: Instant,
    api: optty_api::Client,
}

/// Refunds through Optty.
pub struct Optty {
    config: OpttyConfig,
    auth: optty_api::Client,
    session: Mutex<Option<Session>>,
}

impl Optty {
    /// A client for `config`; no request is made until the first refund.
    pub fn new(config: OpttyConfig) -> Result<Optty, RefundError> {
        let auth = optty_api::Client::new_with_client(
            &config.auth_url,
            http_client(config.timeout, HeaderMap::new())?,
        );
        Ok(Optty {
            config,
            auth,
            session: Mutex::new(None),
        })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = transformers::refund_body(request);
        let api = self.api(false).await?;
        match self.send(&api, request, &body).await {
            // The token may have expired or been revoked early: renew it once and resend the
            // same body (the same refundReference, so Optty cannot refund twice).
            Err(err) if err.http_status() == Some(401) => {
                let api = self.api(true).await?;
                self.send(&api, request, &body).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        api: &optty_api::Client,
        request: &RefundRequest,
        body: &optty_api::types::OrderRefundDto,
    ) -> Result<Refund, RefundError> {
        settle(
            PROVIDER,
            api.refunds_controller_refund_order(&request.order_id, body)
                .await,
            |answer| transformers::refund_success(request, &answer),
            |status, answer| transformers::refund_error(status, &answer),
            |status, body| transformers::refund_result(request, status, body),
        )
        .await
    }

    /// The client carrying a valid token, fetching one if there is none, it is about to
    /// expire, or `renew` says the last one was refused.
    async fn api(&self, renew: bool) -> Result<optty_api::Client, RefundError> {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref()
            && !renew
            && Instant::now() < current.renew_at
        {
            return Ok(current.api.clone());
        }
        let fresh = self.fetch_token().await?;
        let api = fresh.api.clone();
        *session = Some(fresh);
        Ok(api)
    }

    async fn fetch_token(&self) -> Result<Session, RefundError> {
        let requested = Instant::now();
        let form = transformers::token_body(&self.config);
        let answer = settle(
            PROVIDER,
            self.auth.create_access_token(&form).await,
            Ok,
            // The token endpoint documents no error body.
            |status, ()| token_error(status, b""),
            |status, body| Err(token_error(status, body)),
        )
        .await?;
        let token = SecretString::from(answer.access_token);
        let lifetime = Duration::from_secs(answer.expires_in.max(0).unsigned_abs());
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", token.expose_secret()))?,
        );
        let api = optty_api::Client::new_with_client(
            &self.config.base_url,
            http_client(self.config.timeout, headers)?,
        );
        Ok(Session {
            token,
            renew_at: requested + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY),
            api,
        })
    }

    /// Whether a token is cached (for tests and diagnostics; the token itself is never exposed).
    pub async fn has_token(&self) -> bool {
        self.session
            .lock()
            .await
            .as_ref()
            .is_some_and(|session| !session.token.expose_secret().is_empty())
    }
}

/// The token endpoint documents no errors: 401/400 mean the client credentials were refused.
fn token_error(status: u16, body: &[u8]) -> RefundError {
    match status {
        400 | 401 | 403 => RefundError::new(crate::ErrorKind::Unauthorized)
            .provider(PROVIDER)
            .status(status)
            .message("the token endpoint refused the client credentials"),
        _ => crate::providers::undocumented(PROVIDER, status, body),
    }
}
