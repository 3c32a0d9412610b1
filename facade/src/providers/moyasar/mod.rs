//! Moyasar transport: the secret key as a bearer token and the refund call, through the
//! generated client.

pub mod transformers;

use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::ExposeSecret;

use crate::config::MoyasarConfig;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::{http_client, secret_header, settle};

const PROVIDER: Provider = Provider::Moyasar;

/// Refunds through Moyasar.
pub struct Moyasar {
    api: moyasar_api::Client,
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
            api: moyasar_api::Client::new_with_client(
                &config.base_url,
                http_client(config.timeout, headers)?,
            ),
        })
    }

    /// Sends one refund; the request must have passed validation.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let body = transformers::refund_body(request)?;
        settle(
            PROVIDER,
            self.api.refund_order(&request.order_id, &body).await,
            |answer| transformers::refund_success(request, &answer),
            |status, answer| transformers::refund_error(status, &answer),
            |status, body| transformers::refund_result(request, status, body),
        )
        .await
    }
}
