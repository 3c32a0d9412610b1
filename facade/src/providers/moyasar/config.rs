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
    /// Caps on the answer's size; past them the outcome is unknown and memory stays bounded
    /// (default [`MoyasarConfig::DEFAULT_ANSWER_LIMITS`]).
    pub limits: AnswerLimits,
}

impl MoyasarConfig {
    /// Moyasar's default caps: 4 MiB of body (an order with about 11,000 refunds), 64 KiB of
    /// headers.
    ///
    /// Moyasar answers a refund with the whole order, and the order lists every transaction it
    /// ever had: its capture and each earlier refund, about 360 bytes apiece. Its docs set no
    /// limit on refunds per order nor on an order's size (the refund and Retrieve Order pages:
    /// `provider-docs/moyasar-refund.txt`, `reads.md`), so no documented size can size the cap.
    /// The other providers' 512 KiB ([`AnswerLimits::DEFAULT`]) would stop at about 1,400
    /// earlier refunds and report an applied refund on a larger order as unknown; 4 MiB keeps
    /// an order with 3,000 earlier refunds (about 1.1 MB) well inside, with room for several
    /// times that, while one call still holds at most 4 MiB for its answer (the mapping reads
    /// the order in place: `transformers`). Past it the outcome is unknown, with an error that
    /// names the cap; a service with larger orders raises it (`with_answer_limits`,
    /// `REFUNDS_MOYASAR_MAX_ANSWER_BYTES`). Read Retrieve Order within the same caps.
    pub const DEFAULT_ANSWER_LIMITS: AnswerLimits = AnswerLimits {
        max_body_bytes: 4 * 1024 * 1024,
        ..AnswerLimits::DEFAULT
    };
}

impl MoyasarConfig {
    /// A config with the [`DEFAULT_TIMEOUT`] and [`MoyasarConfig::DEFAULT_ANSWER_LIMITS`].
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<SecretString>) -> MoyasarConfig {
        MoyasarConfig {
            base_url: base_url.into(),
            secret_key: secret_key.into(),
            timeout: DEFAULT_TIMEOUT,
            limits: MoyasarConfig::DEFAULT_ANSWER_LIMITS,
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

/// The variable that sets Moyasar's body cap (read by `Settings::transport`).
const MAX_ANSWER_BYTES: &str = "REFUNDS_MOYASAR_MAX_ANSWER_BYTES";

impl MoyasarConfig {
    /// Reads `REFUNDS_MOYASAR_*` from the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `REFUNDS_MOYASAR_BASE_URL`, `REFUNDS_MOYASAR_SECRET_KEY` | base URL, secret key |
    /// | `REFUNDS_MOYASAR_MAX_ANSWER_BYTES` | optional cap on an answer's body: Moyasar's default is 4194304 ([`MoyasarConfig::DEFAULT_ANSWER_LIMITS`]), not the other providers' 524288 |
    ///
    /// and the optional variables every provider has (the [`crate::config`] table).
    pub fn from_env() -> Result<MoyasarConfig, RefundError> {
        MoyasarConfig::from_lookup(&from_process_env)
    }

    /// Reads `REFUNDS_MOYASAR_*` through `lookup`; without `REFUNDS_MOYASAR_MAX_ANSWER_BYTES`,
    /// the body cap is [`MoyasarConfig::DEFAULT_ANSWER_LIMITS`]'s.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MoyasarConfig, RefundError> {
        let env = Settings::new(lookup);
        let (timeout, mut limits) = env.transport("REFUNDS_MOYASAR")?;
        if env.get(MAX_ANSWER_BYTES).is_none() {
            limits.max_body_bytes = MoyasarConfig::DEFAULT_ANSWER_LIMITS.max_body_bytes;
        }
        Ok(MoyasarConfig {
            base_url: env.base_url("REFUNDS_MOYASAR_BASE_URL")?,
            secret_key: env.required("REFUNDS_MOYASAR_SECRET_KEY")?.into(),
            timeout,
            limits,
        })
    }
}
