//! OpenAppConfig: where openapp is, its credentials, and how long to wait for it.

use std::time::Duration;

use secrecy::SecretString;

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::settings::{DEFAULT_TIMEOUT, Settings, from_process_env};

/// OpenApp: HMAC-signed requests (see [`signing`](super::signing)).
#[derive(Clone, Debug)]
pub struct OpenAppConfig {
    /// API base URL (not published by OpenApp: ask for it).
    pub base_url: String,
    /// The API key. It travels in clear in the `authorization` header, but it
    /// is treated as a secret anyway so it never lands in logs.
    pub api_key: SecretString,
    /// The HMAC secret.
    pub api_secret: SecretString,
    /// Per-request timeout (connection, request and the whole answer).
    pub timeout: Duration,
    /// Caps on the answer's size; past them the outcome is unknown and memory stays bounded.
    pub limits: AnswerLimits,
    /// Verify the signature OpenApp puts on its responses (default `true`).
    pub verify_response_signatures: bool,
}

impl OpenAppConfig {
    /// A config with the [`DEFAULT_TIMEOUT`] that verifies response signatures.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<SecretString>,
        api_secret: impl Into<SecretString>,
    ) -> OpenAppConfig {
        OpenAppConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            timeout: DEFAULT_TIMEOUT,
            limits: AnswerLimits::default(),
            verify_response_signatures: true,
        }
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> OpenAppConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the caps on the answer's size.
    #[must_use]
    pub fn with_answer_limits(mut self, limits: AnswerLimits) -> OpenAppConfig {
        self.limits = limits;
        self
    }

    /// Turns verification of response signatures on or off.
    #[must_use]
    pub fn with_verify_response_signatures(mut self, verify: bool) -> OpenAppConfig {
        self.verify_response_signatures = verify;
        self
    }
}

impl OpenAppConfig {
    /// Reads `REFUNDS_OPENAPP_*` from the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `REFUNDS_OPENAPP_BASE_URL`, `REFUNDS_OPENAPP_API_KEY`, `REFUNDS_OPENAPP_API_SECRET` | base URL, HMAC key and secret |
    /// | `REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES` | optional, `true` (default) or `false` |
    ///
    /// and the optional variables every provider has (the [`crate::config`] table).
    pub fn from_env() -> Result<OpenAppConfig, RefundError> {
        OpenAppConfig::from_lookup(&from_process_env)
    }

    /// Reads `REFUNDS_OPENAPP_*` through `lookup`.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OpenAppConfig, RefundError> {
        let env = Settings::new(lookup);
        let (timeout, limits) = env.transport("REFUNDS_OPENAPP")?;
        Ok(OpenAppConfig {
            base_url: env.base_url("REFUNDS_OPENAPP_BASE_URL")?,
            api_key: env.required("REFUNDS_OPENAPP_API_KEY")?.into(),
            api_secret: env.required("REFUNDS_OPENAPP_API_SECRET")?.into(),
            timeout,
            limits,
            verify_response_signatures: env
                .flag("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES")?
                .unwrap_or(true),
        })
    }
}
