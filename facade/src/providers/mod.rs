//! One adapter per provider, in the layout of hyperswitch's connectors: `transformers.rs` holds
//! the pure mapping (unified request -> generated wire type, [`Answer`] -> unified result), the
//! provider's `mod.rs` the I/O around it.
//!
//! Each adapter sends the generated wire type itself (method and path from the generated
//! `operations` module) and reads the answer with a size cap ([`crate::answer`]); the one pure
//! `transformers::refund_result(request, &answer)` then decides the result. That function is
//! what production runs and what the snapshot tests exercise.

use crate::answer::Answer;
use crate::error::RefundError;
use crate::provider::Provider;

pub(crate) mod error_body;
pub(crate) mod mapping;
pub(crate) mod transport;

#[cfg(feature = "afterpay")]
pub mod afterpay;
#[cfg(feature = "moyasar")]
pub mod moyasar;
#[cfg(feature = "openapp")]
pub mod openapp;
#[cfg(feature = "optty")]
pub mod optty;

/// The pure mapping of `request.provider`'s answers: the same function each adapter runs on
/// what it received (OpenApp here without signature verification; its adapter passes its
/// config). For tests, replays and tools that hold a recorded answer.
pub fn refund_result(
    request: &crate::RefundRequest,
    answer: &Answer,
) -> Result<crate::Refund, RefundError> {
    // One arm per provider, twice over for its cargo feature: no wildcard, so a new provider
    // does not compile until it is listed here.
    match request.provider {
        #[cfg(feature = "optty")]
        Provider::Optty => optty::transformers::refund_result(request, answer),
        #[cfg(not(feature = "optty"))]
        Provider::Optty => not_compiled(request),
        #[cfg(feature = "afterpay")]
        Provider::AfterPay => afterpay::transformers::refund_result(request, answer),
        #[cfg(not(feature = "afterpay"))]
        Provider::AfterPay => not_compiled(request),
        #[cfg(feature = "moyasar")]
        Provider::Moyasar => moyasar::transformers::refund_result(request, answer),
        #[cfg(not(feature = "moyasar"))]
        Provider::Moyasar => not_compiled(request),
        #[cfg(feature = "openapp")]
        Provider::OpenApp => openapp::transformers::refund_result(request, answer, None),
        #[cfg(not(feature = "openapp"))]
        Provider::OpenApp => not_compiled(request),
    }
}

/// The answer for a provider whose cargo feature is off.
#[cfg(not(all(
    feature = "optty",
    feature = "afterpay",
    feature = "moyasar",
    feature = "openapp"
)))]
fn not_compiled(request: &crate::RefundRequest) -> Result<crate::Refund, RefundError> {
    Err(
        RefundError::invalid("provider", "not compiled in (cargo feature)")
            .with_provider(request.provider),
    )
}

impl Provider {
    /// The provider's refund features and limits: the limits come from its spec (the
    /// generated `constraints` of its crate), the features from its documentation. A
    /// provider whose cargo feature is off has [`crate::Capabilities::NOT_COMPILED`].
    pub fn capabilities(self) -> crate::Capabilities {
        match self {
            #[cfg(feature = "optty")]
            Provider::Optty => optty::capabilities(),
            #[cfg(feature = "afterpay")]
            Provider::AfterPay => afterpay::capabilities(),
            #[cfg(feature = "moyasar")]
            Provider::Moyasar => moyasar::capabilities(),
            #[cfg(feature = "openapp")]
            Provider::OpenApp => openapp::capabilities(),
            #[cfg(not(feature = "optty"))]
            Provider::Optty => crate::Capabilities::NOT_COMPILED,
            #[cfg(not(feature = "afterpay"))]
            Provider::AfterPay => crate::Capabilities::NOT_COMPILED,
            #[cfg(not(feature = "moyasar"))]
            Provider::Moyasar => crate::Capabilities::NOT_COMPILED,
            #[cfg(not(feature = "openapp"))]
            Provider::OpenApp => crate::Capabilities::NOT_COMPILED,
        }
    }
}
