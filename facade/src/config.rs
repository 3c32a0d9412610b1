//! Per-provider connection settings. Secrets are [`SecretString`]s and every
//! `Debug` output shows them as `"[REDACTED]"`.
//!
//! There is no default base URL: the caller always names the environment
//! (sandbox or production), so a test setup can never reach production by
//! omission.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

pub use crate::answer::AnswerLimits;

/// The request timeout used unless a config says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What `Debug` prints in place of a secret.
const REDACTED: &str = "[REDACTED]";

/// Optty: OAuth2 client credentials against `auth_url`, then a bearer token
/// against `base_url`.
#[derive(Clone)]
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

impl fmt::Debug for OpttyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpttyConfig")
            .field("base_url", &self.base_url)
            .field("auth_url", &self.auth_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

/// AfterPay (Riverty): the `X-Auth-Key` header (one key per webshop and country).
#[derive(Clone)]
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

impl fmt::Debug for AfterPayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterPayConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &REDACTED)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Moyasar Payment Gateway: `Authorization: Bearer <secret key>`.
#[derive(Clone)]
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

impl fmt::Debug for MoyasarConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MoyasarConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &REDACTED)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

/// OpenApp: HMAC-signed requests (see [`crate::signing`]).
#[derive(Clone)]
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

impl fmt::Debug for OpenAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAppConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &REDACTED)
            .field("api_secret", &REDACTED)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .field(
                "verify_response_signatures",
                &self.verify_response_signatures,
            )
            .finish()
    }
}
