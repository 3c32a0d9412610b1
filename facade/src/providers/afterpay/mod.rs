//! AfterPay transport: the `X-Auth-Key` header and the refund call, through the generated
//! client.

pub mod transformers;

use reqwest::header::{HeaderMap, HeaderName};
use secrecy::ExposeSecret;

use crate::config::AfterPayConfig;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::{http_client, secret_header, settle};

const PROVIDER: Provider = Provider::AfterPay;

/// Refunds through AfterPay (Riverty).
pub struct AfterPay {
    api: afterpay_api::Client,
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
            api: afterpay_api::Client::new_with_client(
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
            |status, messages| transformers::refund_error(status, &messages),
            |status, body| transformers::refund_result(request, status, body),
        )
        .await
    }
}
