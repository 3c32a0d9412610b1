//! Per-provider connection settings. Secrets are [`SecretString`](crate::SecretString)s and every
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
//! | `REFUNDS_CALL_DEADLINE_MS` | all | optional total deadline of each call, retries included (default 60000; [`RefundsBuilder::deadline`](crate::RefundsBuilder::deadline)) |

pub use crate::answer::AnswerLimits;
pub use crate::settings::DEFAULT_TIMEOUT;

/// Each room's config at `refunds::config::<Config>`, from the one provider list.
macro_rules! configs {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        $(
            #[cfg(feature = $name)]
            pub use crate::providers::$room::config::$config;
        )*
    };
}
crate::provider::providers!(configs);
