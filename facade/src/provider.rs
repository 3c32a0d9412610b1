//! The providers the facade refunds through: the one provider list (`providers!`), the
//! [`Provider`] enum made from it, and [`ByProvider`] for code outside the crate that needs one
//! value per provider without a wildcard `match` arm.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one provider list of the facade. Each entry names, in order: the [`Provider`] variant
/// (with its doc), the lower-case name (serde form, cargo feature, room module under
/// `providers/`, builder method and [`ByProvider`] field), the room's client type and its
/// config type.
///
/// Code that has one item or arm per provider expands this list with a macro of its own
/// (`providers!(some_macro)`) instead of spelling the providers out, so a new provider is its
/// room plus one entry here, and every room that lacks what the others give fails to compile.
///
/// Exported (hidden, as `refunds::__providers!`) for the workspace's tests, which name one test
/// function per provider from it instead of a list of their own. Not a stable API: the
/// entries' shape changes with the facade.
#[doc(hidden)]
#[macro_export]
macro_rules! __providers {
    ($then:ident) => {
        $then! {
            /// Optty (`POST /orders/{orderReference}/refund`).
            Optty optty "optty" Optty OpttyConfig;
            /// AfterPay / Riverty (`POST /api/v3/orders/{orderNumber}/refunds`).
            AfterPay afterpay "afterpay" AfterPay AfterPayConfig;
            /// Moyasar Payment Gateway (`POST /v1/orders/{id}/refund`).
            Moyasar moyasar "moyasar" Moyasar MoyasarConfig;
            /// OpenApp (`POST /merchant/v1/orders/refund`).
            OpenApp openapp "openapp" OpenApp OpenAppConfig;
        }
    };
}
pub(crate) use crate::__providers as providers;

/// [`Provider`], [`ByProvider`] and their exhaustive matches, from the list.
macro_rules! provider_enum {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        // `#[non_exhaustive]`: a service that depends on this crate keeps compiling when a
        // provider is added (it names the providers it uses, or reads `Provider::ALL` /
        // `ByProvider`); inside this crate every `match` is exhaustive.
        /// A payment provider the facade can refund through.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            JsonSchema,
        )]
        #[serde(rename_all = "lowercase")]
        #[non_exhaustive]
        pub enum Provider {
            $( $(#[$doc])* $variant, )*
        }

        impl Provider {
            /// Every provider, in declaration order.
            pub const ALL: [Provider; [$( Provider::$variant, )*].len()] = [$( Provider::$variant, )*];

            /// The lower-case name (`"optty"`, `"afterpay"`, ...): the serde form and the cargo
            /// feature name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Provider::$variant => $name, )*
                }
            }
        }

        /// One value per provider, named by field: what code outside this crate writes instead
        /// of a `match` on the `#[non_exhaustive]` [`Provider`] (which would need a `_ =>` arm).
        /// A new provider adds a field here, so every `ByProvider { .. }` literal in the
        /// workspace fails to compile until it says what the new provider gets;
        /// [`ByProvider::get`] matches exhaustively inside this crate.
        ///
        /// ```
        /// use refunds::{ByProvider, Provider};
        ///
        /// let currency = ByProvider { optty: "AUD", afterpay: "EUR", moyasar: "SAR", openapp: "PLN" };
        /// assert_eq!(*currency.get(Provider::Moyasar), "SAR");
        /// let names = ByProvider::from_fn(Provider::as_str);
        /// assert_eq!(names.afterpay, "afterpay");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct ByProvider<T> {
            $(
                #[doc = concat!("The value of [`Provider::", stringify!($variant), "`].")]
                pub $room: T,
            )*
        }

        impl<T> ByProvider<T> {
            /// The value of `provider`.
            pub fn get(&self, provider: Provider) -> &T {
                match provider {
                    $( Provider::$variant => &self.$room, )*
                }
            }

            /// The value of `provider`, owned (for one-off values such as closures' results).
            pub fn take(self, provider: Provider) -> T {
                match provider {
                    $( Provider::$variant => self.$room, )*
                }
            }

            /// Each provider's value computed by `value`, called in [`Provider::ALL`] order.
            pub fn from_fn(mut value: impl FnMut(Provider) -> T) -> Self {
                ByProvider { $( $room: value(Provider::$variant), )* }
            }
        }
    };
}
providers!(provider_enum);

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
