//! OpttyConfig: where optty is, its credentials, and how long to wait for it.

use std::time::Duration;

use secrecy::SecretString;

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::settings::{DEFAULT_TIMEOUT, Settings, from_process_env};

/// Optty: OAuth2 client credentials against `auth_url`, then a bearer token
/// against `base_url`.
#[derive(Clone, Debug)]
pub struct OpttyConfig {
    /// API base URL, e.g. `https://api.qa.optty.com` (sandbox) or `https://api.optty.com`.
    pub base_url: String,
    /// Base URL of the auth server, e.g. `https://auth.qa.optty.com` (sandbox) or
    /// `https://auth.optty.com`; the token endpoint is `<auth_url>/token`.
    pub auth_url: String,
    /// OAuth2 client id (not secret).
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: SecretString,
    /// Per-request timeout (connection, request and the whole answer).
    pub timeout: Duration,
    /// Caps on the answer's size; past them the outcome is unknown and memory stays bounded.
    pub limits: AnswerLimits,
}

impl OpttyConfig {
    /// A config with the [`DEFAULT_TIMEOUT`].
    pub fn new(
        base_url: impl Into<String>,
        auth_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> OpttyConfig {
        OpttyConfig {
            base_url: base_url.into(),
            auth_url: auth_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            timeout: DEFAULT_TIMEOUT,
            limits: AnswerLimits::default(),
        }
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> OpttyConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the caps on the answer's size.
    #[must_use]
    pub fn with_answer_limits(mut self, limits: AnswerLimits) -> OpttyConfig {
        self.limits = limits;
        self
    }
}

impl OpttyConfig {
    /// Reads `REFUNDS_OPTTY_*` from the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `REFUNDS_OPTTY_BASE_URL`, `REFUNDS_OPTTY_AUTH_URL` | API and auth server base URLs |
    /// | `REFUNDS_OPTTY_CLIENT_ID`, `REFUNDS_OPTTY_CLIENT_SECRET` | OAuth2 client credentials |
    ///
    /// and the optional variables every provider has (the [`crate::config`] table).
    pub fn from_env() -> Result<OpttyConfig, RefundError> {
        OpttyConfig::from_lookup(&from_process_env)
    }

    /// Reads `REFUNDS_OPTTY_*` through `lookup` (a service's own configuration source).
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OpttyConfig, RefundError> {
        let env = Settings::new(lookup);
        let (timeout, limits) = env.transport("REFUNDS_OPTTY")?;
        Ok(OpttyConfig {
            base_url: env.base_url("REFUNDS_OPTTY_BASE_URL")?,
            auth_url: env.base_url("REFUNDS_OPTTY_AUTH_URL")?,
            client_id: env.required("REFUNDS_OPTTY_CLIENT_ID")?,
            client_secret: env.required("REFUNDS_OPTTY_CLIENT_SECRET")?.into(),
            timeout,
            limits,
        })
    }
}
