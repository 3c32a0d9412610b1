//! MoyasarConfig: where moyasar is, its credentials, and how long to wait for it.

use std::time::Duration;

use secrecy::SecretString;

use crate::answer::AnswerLimits;
use crate::error::RefundError;
use crate::settings::{DEFAULT_TIMEOUT, Settings, from_process_env};

/// Moyasar Payment Gateway: `Authorization: Bearer <secret key>`.
#[derive(Clone, Debug)]
pub struct MoyasarConfig {
    /// API base URL, e.g. `https://pg.mysr.dev` (sandbox) or `https://pg.moyasar.com`.
    pub base_url: String,
    /// The secret API key.
    pub secret_key: SecretString,
    /// Per-request timeout (connection, request and the whole answer).
    pub timeout: Duration,
    /// Caps on the answer's size; past them the outcome is unknown and memory stays bounded.
    pub limits: AnswerLimits,
}

impl MoyasarConfig {
    /// A config with the [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<SecretString>) -> MoyasarConfig {
        MoyasarConfig {
            base_url: base_url.into(),
            secret_key: secret_key.into(),
            timeout: DEFAULT_TIMEOUT,
            limits: AnswerLimits::default(),
        }
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> MoyasarConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the caps on the answer's size.
    #[must_use]
    pub fn with_answer_limits(mut self, limits: AnswerLimits) -> MoyasarConfig {
        self.limits = limits;
        self
    }
}

impl MoyasarConfig {
    /// Reads `REFUNDS_MOYASAR_*` from the process environment (the `refunds::config` table).
    pub fn from_env() -> Result<MoyasarConfig, RefundError> {
        MoyasarConfig::from_lookup(&from_process_env)
    }

    /// Reads `REFUNDS_MOYASAR_*` through `lookup`.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MoyasarConfig, RefundError> {
        let env = Settings::new(lookup);
        let (timeout, limits) = env.transport("REFUNDS_MOYASAR")?;
        Ok(MoyasarConfig {
            base_url: env.base_url("REFUNDS_MOYASAR_BASE_URL")?,
            secret_key: env.required("REFUNDS_MOYASAR_SECRET_KEY")?.into(),
            timeout,
            limits,
        })
    }
}
