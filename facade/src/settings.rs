//! Reading settings (the process environment, or a service's own lookup) and checking base
//! URLs: what every provider's config shares.

use std::time::Duration;

use crate::answer::AnswerLimits;
use crate::error::RefundError;

/// The request timeout used unless a config says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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

    pub(crate) fn required(&self, name: &str) -> Result<String, RefundError> {
        self.get(name)
            .ok_or_else(|| RefundError::invalid_config(name, "is not set"))
    }

    pub(crate) fn base_url(&self, name: &str) -> Result<String, RefundError> {
        let url = self.required(name)?;
        check_base_url(name, &url)?;
        Ok(url)
    }

    pub(crate) fn number(&self, name: &str) -> Result<Option<u64>, RefundError> {
        self.get(name)
            .map(|value| {
                value.trim().parse::<u64>().map_err(|_| {
                    RefundError::invalid_config(name, format!("{value:?} is not a whole number"))
                })
            })
            .transpose()
    }

    #[cfg(feature = "openapp")]
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, RefundError> {
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
    pub(crate) fn transport(&self, prefix: &str) -> Result<(Duration, AnswerLimits), RefundError> {
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

pub(crate) fn from_process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Checks that `url` can be a base URL: an `http` or `https` scheme, a host, no query or
/// fragment; the URL parsed. `setting` names it in the error.
pub(crate) fn check_base_url(setting: &str, url: &str) -> Result<url::Url, RefundError> {
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
    Ok(parsed)
}
