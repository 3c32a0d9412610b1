//! AfterPayConfig: where afterpay is, its credentials, and how long to wait for it.

use std::time::Duration;

use secrecy::SecretString;

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::settings::{DEFAULT_TIMEOUT, Settings, from_process_env};

/// AfterPay (Riverty): the `X-Auth-Key` header (one key per webshop and country).
#[derive(Clone, Debug)]
pub struct AfterPayConfig {
    /// API base URL, e.g. `https://api.bnpl-pt.riverty.io` (sandbox) or `https://api.bnpl.riverty.io`.
    pub base_url: String,
    /// The `X-Auth-Key` value.
    pub api_key: SecretString,
    /// Per-request timeout (connection, request and the whole answer).
    pub timeout: Duration,
    /// Caps on the answer's size; past them the outcome is unknown and memory stays bounded.
    pub limits: AnswerLimits,
}

impl AfterPayConfig {
    /// A config with the [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, api_key: impl Into<SecretString>) -> AfterPayConfig {
        AfterPayConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            limits: AnswerLimits::default(),
        }
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> AfterPayConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the caps on the answer's size.
    #[must_use]
    pub fn with_answer_limits(mut self, limits: AnswerLimits) -> AfterPayConfig {
        self.limits = limits;
        self
    }
}

impl AfterPayConfig {
    /// Reads `REFUNDS_AFTERPAY_*` from the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `REFUNDS_AFTERPAY_BASE_URL`, `REFUNDS_AFTERPAY_API_KEY` | base URL, `X-Auth-Key` |
    ///
    /// and the optional variables every provider has (the [`crate::config`] table).
    pub fn from_env() -> Result<AfterPayConfig, RefundError> {
        AfterPayConfig::from_lookup(&from_process_env)
    }

    /// Reads `REFUNDS_AFTERPAY_*` through `lookup`.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AfterPayConfig, RefundError> {
        let env = Settings::new(lookup);
        let (timeout, limits) = env.transport("REFUNDS_AFTERPAY")?;
        Ok(AfterPayConfig {
            base_url: env.base_url("REFUNDS_AFTERPAY_BASE_URL")?,
            api_key: env.required("REFUNDS_AFTERPAY_API_KEY")?.into(),
            timeout,
            limits,
        })
    }
}
