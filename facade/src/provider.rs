//! The providers the facade refunds through, and [`ByProvider`] for code outside the crate that
//! needs one value per provider without a wildcard `match` arm.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A payment provider the facade can refund through.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Provider {
    /// Optty (`POST /orders/{orderReference}/refund`).
    Optty,
    /// AfterPay / Riverty (`POST /api/v3/orders/{orderNumber}/refunds`).
    AfterPay,
    /// Moyasar Payment Gateway (`POST /v1/orders/{id}/refund`).
    Moyasar,
    /// OpenApp (`POST /merchant/v1/orders/refund`).
    OpenApp,
}

impl Provider {
    /// Every provider, in declaration order.
    pub const ALL: [Provider; 4] = [
        Provider::Optty,
        Provider::AfterPay,
        Provider::Moyasar,
        Provider::OpenApp,
    ];

    /// The lower-case name: `"optty"`, `"afterpay"`, `"moyasar"`, `"openapp"`
    /// (also the serde form and the cargo feature name).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Optty => "optty",
            Provider::AfterPay => "afterpay",
            Provider::Moyasar => "moyasar",
            Provider::OpenApp => "openapp",
        }
    }
}

/// One value per provider, named by field: what code outside this crate writes instead of a
/// `match` on the `#[non_exhaustive]` [`Provider`] (which would need a `_ =>` arm). A new provider
/// adds a field here, so every `ByProvider { .. }` literal in the workspace fails to compile until
/// it says what the new provider gets; [`ByProvider::get`] matches exhaustively inside this crate.
///
/// ```
/// use refunds::{ByProvider, Provider};
///
/// let currency = ByProvider { optty: "AUD", afterpay: "EUR", moyasar: "SAR", openapp: "PLN" };
/// assert_eq!(*currency.get(Provider::Moyasar), "SAR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByProvider<T> {
    /// Optty's value.
    pub optty: T,
    /// AfterPay's value.
    pub afterpay: T,
    /// Moyasar's value.
    pub moyasar: T,
    /// OpenApp's value.
    pub openapp: T,
}

impl<T> ByProvider<T> {
    /// The value of `provider`.
    pub fn get(&self, provider: Provider) -> &T {
        match provider {
            Provider::Optty => &self.optty,
            Provider::AfterPay => &self.afterpay,
            Provider::Moyasar => &self.moyasar,
            Provider::OpenApp => &self.openapp,
        }
    }

    /// The value of `provider`, owned (for one-off values such as closures' results).
    pub fn take(self, provider: Provider) -> T {
        match provider {
            Provider::Optty => self.optty,
            Provider::AfterPay => self.afterpay,
            Provider::Moyasar => self.moyasar,
            Provider::OpenApp => self.openapp,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
