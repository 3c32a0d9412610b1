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
//! whose `REFUNDS_<PROVIDER>_BASE_URL` is set (`<PROVIDER>` is the upper-case
//! [`Provider::as_str`](crate::Provider::as_str)); each config's `from_env` reads one
//! provider and lists its own variables (`MoyasarConfig::from_env`, ...). A missing or malformed variable is an
//! [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming it. Every provider
//! also reads:
//!
//! | variable | meaning |
//! |---|---|
//! | `REFUNDS_<PROVIDER>_TIMEOUT_MS` | optional per-request timeout in milliseconds (default 30000) |
//! | `REFUNDS_<PROVIDER>_MAX_ANSWER_BYTES` | optional cap on an answer's body (default 524288; Moyasar, whose answer is the whole order, 4194304) |
//!
//! and the client as a whole `REFUNDS_CALL_DEADLINE_MS`, the optional total deadline of each
//! call, retries included (default 60000; [`RefundsBuilder::deadline`](crate::RefundsBuilder::deadline)).

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
