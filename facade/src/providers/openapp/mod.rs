//! OpenApp transport: every request is HMAC-signed as the provider notes describe, and a
//! signed answer is verified before it is believed. OpenApp publishes a JSON Schema, not an
//! OpenAPI document, so there is no generated client: the body type is generated (typify), the
//! method and path come from the generated `endpoint` module, and reqwest sends it.

pub mod transformers;

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;

use crate::config::OpenAppConfig;
use crate::error::{ErrorKind, RefundError};
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::{http_client, read_unexpected, transport_error};
use crate::signing::{OpenAppAuthorization, openapp_signature, verify_openapp_signature};

const PROVIDER: Provider = Provider::OpenApp;

/// Request and response signature header.
pub const SIGNATURE_HEADER: &str = "x-app-signature";

/// Refunds through OpenApp.
pub struct OpenApp {
    config: OpenAppConfig,
    http: reqwest::Client,
    url: String,
}

impl OpenApp {
    /// A client for `config`.
    pub fn new(config: OpenAppConfig) -> Result<OpenApp, RefundError> {
        let http = http_client(config.timeout, HeaderMap::new())?;
        let url = format!(
            "{}{}",
            config.base_url.trim_end_matches('/'),
            openapp_api::endpoint::PATH
        );
        Ok(OpenApp { config, http, url })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = serde_json::to_vec(&transformers::refund_body(request)?).map_err(|err| {
            RefundError::new(ErrorKind::Protocol)
                .provider(PROVIDER)
                .message(format!("could not encode the request: {err}"))
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
            openapp_api::endpoint::METHOD,
            openapp_api::endpoint::PATH,
            epoch_ms,
            &nonce,
            &body,
        );
        let mut authorization = HeaderValue::from_str(&signed.authorization)
            .map_err(|_| RefundError::invalid("credentials", "api key is not header-safe"))?;
        authorization.set_sensitive(true);
        let response = self
            .http
            .post(&self.url)
            .header(AUTHORIZATION, authorization)
            .header(SIGNATURE_HEADER, signed.signature.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| transport_error(PROVIDER, err))?;
        let headers = response.headers().clone();
        read_unexpected(PROVIDER, response, |status, body| {
            // Only answers that say a refund exists (2xx registered, 409 already registered)
            // must be authentic: believing a forged one could stop a refund from happening.
            // Other errors change nothing at OpenApp, and a client with wrong credentials
            // cannot verify them anyway, so they are judged by status and body.
            if self.config.verify_response_signatures
                && ((200..300).contains(&status) || status == 409)
            {
                self.verify_response(&headers, status, body)?;
            }
            transformers::refund_result(request, status, body)
        })
        .await
    }

    /// Checks the answer's signature when it carries one. Answers are signed "the same way" as
    /// requests: an `authorization` header naming our API key, the request's METHOD and PATH,
    /// the signer's epoch-ms and nonce, and an `x-app-signature` over the answer's body.
    fn verify_response(
        &self,
        headers: &HeaderMap,
        status: u16,
        body: &[u8],
    ) -> Result<(), RefundError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(authorization), Some(signature)) =
            (header(AUTHORIZATION.as_str()), header(SIGNATURE_HEADER))
        else {
            // The notes say answers "should" be verified; an unsigned one (a proxy's error
            // page, say) is judged by its status and body alone.
            return Ok(());
        };
        let untrusted = |why: &str| {
            Err(RefundError::new(ErrorKind::Protocol)
                .provider(PROVIDER)
                .status(status)
                .message(format!("the answer's signature is not trusted: {why}")))
        };
        let Some(signed) = OpenAppAuthorization::parse(authorization) else {
            return untrusted("malformed authorization header");
        };
        if signed.api_key != self.config.api_key.expose_secret()
            || signed.method != openapp_api::endpoint::METHOD
            || signed.path != openapp_api::endpoint::PATH.to_uppercase()
        {
            return untrusted("it names another key, method or path");
        }
        if !verify_openapp_signature(&self.config.api_secret, authorization, body, signature) {
            return untrusted("x-app-signature does not match the body");
        }
        Ok(())
    }
}
