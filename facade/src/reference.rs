//! [`MerchantReference`]: the caller's id for one logical refund, used as every
//! provider's duplicate key.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::RefundError;

#[cfg(feature = "moyasar")]
pub use crate::providers::moyasar::MOYASAR_TRANSACTION_NAMESPACE;

/// The caller's identifier of one logical refund, and each provider's
/// duplicate key: Optty `refundReference`, OpenApp `caseId`, the Moyasar
/// `transaction_id` (a UUID v5 of it: `MerchantReference::moyasar_transaction_id`, with the moyasar feature),
/// AfterPay `transactionReference`.
///
/// Keep the same reference across retries of one refund, and use a new one
/// for every new refund. Treat it as unique per merchant account across *all*
/// orders: Optty requires uniqueness per merchant, and the Moyasar key derived
/// from it does not depend on the order.
///
/// Rules: 1 to 255 characters, ASCII letters, digits and `.`, `_`, `:`, `-` only
/// (safe in every provider's field and in a URL path). The provider's own field
/// limit (the `maxLength` of OpenApp `caseId` or AfterPay `transactionReference`
/// in their specs) applies in `RefundRequest::validate`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantReference(
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9._:-]{1,255}$")
    )]
    String,
);

impl MerchantReference {
    /// The longest reference the facade accepts for any provider, in characters: our own
    /// bound; each provider's field limit may be lower.
    pub const MAX_LEN: usize = 255;

    /// Validates `reference`; errors are [`ErrorKind::InvalidRequest`](crate::ErrorKind)
    /// with field `merchant_reference`.
    pub fn new(reference: impl Into<String>) -> Result<MerchantReference, RefundError> {
        let reference = reference.into();
        const FIELD: &str = "merchant_reference";
        if reference.is_empty() {
            return Err(RefundError::invalid(
                FIELD,
                "is required and must not be empty",
            ));
        }
        if let Some(bad) = reference
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(RefundError::invalid(
                FIELD,
                format!(
                    "contains {bad:?}: only ASCII letters, digits, '.', '_', ':' and '-' are allowed"
                ),
            ));
        }
        // All characters are ASCII here, so bytes == characters.
        if reference.len() > Self::MAX_LEN {
            return Err(RefundError::invalid(
                FIELD,
                format!(
                    "is {} characters long; at most {} are allowed",
                    reference.len(),
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(MerchantReference(reference))
    }

    /// The reference text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MerchantReference {
    type Error = RefundError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        MerchantReference::new(value)
    }
}

impl TryFrom<&str> for MerchantReference {
    type Error = RefundError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        MerchantReference::new(value)
    }
}

impl From<MerchantReference> for String {
    fn from(value: MerchantReference) -> Self {
        value.0
    }
}

impl AsRef<str> for MerchantReference {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MerchantReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantReference({:?})", self.0)
    }
}

impl fmt::Display for MerchantReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
