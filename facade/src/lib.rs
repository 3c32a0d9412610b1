//! # refunds: one refund model over Optty, AfterPay (Riverty), Moyasar and OpenApp
//!
//! A service describes a refund once, as a [`RefundRequest`], and gets back a
//! [`Refund`] or a [`RefundError`], whichever provider took the payment.
//!
//! ## The model
//!
//! - [`Money`]: an exact decimal amount in an ISO 4217 [`Currency`], never more
//!   decimal places than the currency has (JPY 0, SAR 2, KWD 3). Conversions to
//!   minor units (Moyasar, OpenApp) and to major units (Optty, AfterPay) are
//!   exact or rejected; there is no floating point anywhere.
//! - [`MerchantReference`]: the caller's id for one logical refund, sent as each
//!   provider's duplicate key, so retrying with the same reference can never
//!   refund twice where the provider deduplicates
//!   ([`Capabilities::idempotent_retries`]).
//! - [`RefundRequest`]: provider, order id, amount, merchant reference, and
//!   optionally a [`RefundReason`], a description, [`LineItem`]s and the
//!   provider-specific ids (AfterPay capture number, OpenApp order id).
//!   [`RefundRequest::validate`] rejects bad input before any I/O with a
//!   field-level [`ErrorKind::InvalidRequest`], using the limits of each
//!   provider's spec ([`Provider::capabilities`]).
//! - [`Refund`]: the provider's refund id, a [`RefundStatus`], the amount, the
//!   refunded and captured totals where the provider reports them, and the raw
//!   provider answer.
//! - [`RefundError`]: an [`ErrorKind`] a service can branch on, the [`Outcome`]
//!   it implies for the money, plus the provider's status, code and messages;
//!   [`RefundError::is_retryable`] says whether sending the same request again
//!   is safe.
//!
//! ## Exactly once, and always known
//!
//! Every failure states its [`Outcome`]: *not applied* (nothing reached the
//! provider, or it refused), *unknown* (a time-out, a dropped connection, any
//! 5xx from the provider or a gateway, an answer that cannot be read, verified
//! or is too large) or *applied* (the provider says the refund exists). Each
//! provider's answers go through one pure function (`providers::<p>::transformers::refund_result`,
//! whose rustdoc holds that provider's table of statuses and outcomes); it is
//! what production runs on the bytes it received and what the tests exercise.
//!
//! - [`Refunds::refund_with_retries`] re-sends the same request under a
//!   [`RetryPolicy`] and ends in a [`Settlement`]: applied (also when a retry
//!   learns that an earlier attempt was applied), rejected, or unresolved. It
//!   never re-sends an unknown outcome to AfterPay, which has no duplicate key.
//! - [`Refunds::refund`] lets concurrent calls with the same merchant
//!   reference share one attempt, answers a repeat of a settled request from
//!   memory ([`ReplayMemory`]), and refuses the same reference with a different
//!   request before any I/O.
//! - Answers are read within [`AnswerLimits`]; OpenApp answers that say a
//!   refund exists must be signed when the client verifies signatures.
//!
//! The guide [`handling_outcomes`] shows what a service does with each.
//! - [`config`]: per-provider settings whose secrets never appear in `Debug`.
//! - [`signing`]: OpenApp's HMAC request and response signatures.
//! - [`Refunds`]: the client; [`providers`]: one adapter per provider (pure mapping in
//!   `transformers`, I/O around it).
//!
//! ## A complete refund
//!
//! Against the workspace's sandbox (real HTTP on loopback); in production only the base URL
//! and the credentials change.
//!
//! ```
//! use refunds::{MerchantReference, Money, Provider, RefundRequest, RefundStatus, Refunds};
//! use refunds::{ErrorKind, OpttyConfig};
//! use sandbox::{OrderSeed, Sandbox, SandboxConfig, credentials};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! sandbox.optty().seed_order(OrderSeed::new("ORD-1", "AUD", "100.00".parse()?));
//!
//! let refunds = Refunds::builder()
//!     .optty(OpttyConfig::new(
//!         sandbox.optty().base_url(),   // refund API
//!         sandbox.optty().base_url(),   // token endpoint (auth.optty.com in production)
//!         credentials::OPTTY_CLIENT_ID,
//!         credentials::OPTTY_CLIENT_SECRET,
//!     ))
//!     .build()?;
//!
//! let request = RefundRequest::new(
//!     Provider::Optty,
//!     "ORD-1",
//!     Money::parse("24.98", "AUD")?,
//!     MerchantReference::new("RF-2024-0001")?,
//! );
//! let refund = refunds.refund(&request).await?;
//! assert_eq!(refund.status, RefundStatus::Succeeded);
//! assert_eq!(refund.amount, Money::parse("24.98", "AUD")?);
//!
//! // More than what is left is refused by the provider, with its limit.
//! let too_much = RefundRequest::new(
//!     Provider::Optty,
//!     "ORD-1",
//!     Money::parse("80.00", "AUD")?,
//!     MerchantReference::new("RF-2024-0002")?,
//! );
//! let err = refunds.refund(&too_much).await.unwrap_err();
//! assert_eq!(
//!     err.kind(),
//!     &ErrorKind::ExceedsRefundable { limit: Some(Money::parse("75.02", "AUD")?) }
//! );
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ```
//! use refunds::{MerchantReference, Money, Provider, RefundReason, RefundRequest};
//!
//! let request = RefundRequest::new(
//!     Provider::Moyasar,
//!     "0191f5a7-44d3-7430-8739-2d80821416bf",
//!     Money::parse("26.00", "SAR")?,
//!     MerchantReference::new("RET-123434")?,
//! )
//! .with_reason(RefundReason::Returned);
//! request.validate()?;
//! assert_eq!(request.amount.to_minor_units()?, 2600);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod answer;
pub mod capabilities;
pub mod config;
pub mod error;
pub mod lookup;
pub mod model;
pub mod money;
pub mod provider;
pub mod reference;
mod settings;
#[cfg(feature = "openapp")]
pub use providers::openapp::signing;
mod validate;

pub mod client;
pub mod providers;
pub mod retry;
mod single_flight;

pub use answer::{Answer, AnswerLimits, RawAnswer};
pub use capabilities::Capabilities;
pub use client::{Refunds, RefundsBuilder};
/// Each room's config at the crate root too, from the one provider list.
macro_rules! root_configs {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        $(
            #[cfg(feature = $name)]
            pub use config::$config;
        )*
    };
}
provider::providers!(root_configs);
pub use error::{ErrorKind, ErrorSummary, FieldProblem, Outcome, ProviderMessage, RefundError};
pub use lookup::{Finding, Lookup, Notification, RecordedRefund};
pub use model::{
    ByProvider, LineItem, Provider, Refund, RefundReason, RefundRequest, RefundStatus,
};
pub use money::{Currency, Money, MoneyError};
pub use reference::MerchantReference;
pub use retry::{RetryPolicy, Settlement};
pub use secrecy::{ExposeSecret, SecretString};
pub use single_flight::ReplayMemory;

#[doc = include_str!("../docs/handling-outcomes.md")]
pub mod handling_outcomes {}

// The README's examples are compiled as doctests of this crate.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
