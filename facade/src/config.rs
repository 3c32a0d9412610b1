//! Per-provider connection settings. Secrets are [`SecretString`]s and every
//! `Debug` output shows them as `"[REDACTED]"`.
//!
//! There is no default base URL: the caller always names the environment
//! (sandbox or production), so a test setup can never reach production by
//! omission. Base URLs are checked when the client is built (an `http` or
//! `https` scheme and a host; a trailing slash is harmless).
//!
//! # From the environment
//!
//! [`Refunds::from_env`](crate::Refunds::from_env) configures every provider
//! whose `REFUNDS_<PROVIDER>_BASE_URL` is set; each `from_env` below reads one
//! provider. A missing or malformed variable is an
//! [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming it.
//!
//! | variable | provider | meaning |
//! |---|---|---|
//! | `REFUNDS_OPTTY_BASE_URL`, `REFUNDS_OPTTY_AUTH_URL` | Optty | API and auth server base URLs |
//! | `REFUNDS_OPTTY_CLIENT_ID`, `REFUNDS_OPTTY_CLIENT_SECRET` | Optty | OAuth2 client credentials |
//! | `REFUNDS_AFTERPAY_BASE_URL`, `REFUNDS_AFTERPAY_API_KEY` | AfterPay | base URL, `X-Auth-Key` |
//! | `REFUNDS_MOYASAR_BASE_URL`, `REFUNDS_MOYASAR_SECRET_KEY` | Moyasar | base URL, secret key |
//! | `REFUNDS_OPENAPP_BASE_URL`, `REFUNDS_OPENAPP_API_KEY`, `REFUNDS_OPENAPP_API_SECRET` | OpenApp | base URL, HMAC key and secret |
//! | `REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES` | OpenApp | optional, `true` (default) or `false` |
//! | `REFUNDS_<PROVIDER>_TIMEOUT_MS` | each | optional per-request timeout in milliseconds (default 30000) |
//! | `REFUNDS_<PROVIDER>_MAX_ANSWER_BYTES` | each | optional cap on an answer's body (default 524288) |

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::RefundError;

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

/// A source of settings: the process environment, or any lookup a service provides.
pub(crate) struct Settings<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Settings<'a> {
        Settings { lookup }
    }

    /// A variable's value; unset and empty are the same.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, name: &str) -> Result<String, RefundError> {
        self.get(name)
            .ok_or_else(|| RefundError::invalid_config(name, "is not set"))
    }

    fn base_url(&self, name: &str) -> Result<String, RefundError> {
        let url = self.required(name)?;
        check_base_url(name, &url)?;
        Ok(url)
    }

    fn number(&self, name: &str) -> Result<Option<u64>, RefundError> {
        self.get(name)
            .map(|value| {
                value.trim().parse::<u64>().map_err(|_| {
                    RefundError::invalid_config(name, format!("{value:?} is not a whole number"))
                })
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, RefundError> {
        self.get(name)
            .map(|value| match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(RefundError::invalid_config(
                    name,
                    format!("{value:?} is neither true nor false"),
                )),
            })
            .transpose()
    }

    /// The optional timeout and answer cap of the provider whose variables start with `prefix`.
    fn transport(&self, prefix: &str) -> Result<(Duration, AnswerLimits), RefundError> {
        let timeout = self
            .number(&format!("{prefix}_TIMEOUT_MS"))?
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let mut limits = AnswerLimits::default();
        if let Some(bytes) = self.number(&format!("{prefix}_MAX_ANSWER_BYTES"))? {
            limits.max_body_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        Ok((timeout, limits))
    }
}

fn from_process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Checks that `url` can be a base URL: an `http` or `https` scheme, a host, no query or
/// fragment. `setting` names it in the error.
pub(crate) fn check_base_url(setting: &str, url: &str) -> Result<(), RefundError> {
    let parsed = url::Url::parse(url.trim()).map_err(|err| {
        RefundError::invalid_config(setting, format!("{url:?} is not a URL ({err})"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(RefundError::invalid_config(
            setting,
            format!("{url:?} must start with https:// (or http:// for a local sandbox)"),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(RefundError::invalid_config(
            setting,
            format!("{url:?} has no host"),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(RefundError::invalid_config(
            setting,
            format!("{url:?} must not carry a query or fragment"),
        ));
    }
    Ok(())
}

impl OpttyConfig {
    /// Reads `REFUNDS_OPTTY_*` from the process environment (see the [module docs](self)).
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

impl AfterPayConfig {
    /// Reads `REFUNDS_AFTERPAY_*` from the process environment (see the [module docs](self)).
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

impl MoyasarConfig {
    /// Reads `REFUNDS_MOYASAR_*` from the process environment (see the [module docs](self)).
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

impl OpenAppConfig {
    /// Reads `REFUNDS_OPENAPP_*` from the process environment (see the [module docs](self)).
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
