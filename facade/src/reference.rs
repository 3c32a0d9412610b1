//! [`MerchantReference`]: the caller's id for one logical refund, used as every
//! provider's duplicate key.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

use crate::error::RefundError;

/// The namespace of the UUID v5 Moyasar `transaction_id`s derived by
/// [`MerchantReference::moyasar_transaction_id`].
///
/// It is itself the UUID v5 of the name
/// `urn:refunds-facade:moyasar:transaction_id` in the RFC 4122 URL namespace
/// (`6ba7b811-9dad-11d1-80b4-00c04fd430c8`), i.e. in Python
/// `uuid.uuid5(uuid.NAMESPACE_URL, "urn:refunds-facade:moyasar:transaction_id")`.
///
/// **Never change it**: every idempotency key already sent to Moyasar derives
/// from it, and a different namespace would turn a retry into a second refund.
pub const MOYASAR_TRANSACTION_NAMESPACE: Uuid = uuid!("672dda92-a6cb-567e-b652-c36fe1b59243");

/// The caller's identifier of one logical refund, and each provider's
/// duplicate key: Optty `refundReference`, OpenApp `caseId`, the Moyasar
/// `transaction_id` (via [`moyasar_transaction_id`](Self::moyasar_transaction_id)),
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

    /// The Moyasar `transaction_id` (idempotency key) for this reference: the
    /// UUID v5 of the reference text in [`MOYASAR_TRANSACTION_NAMESPACE`].
    /// The same reference always yields the same UUID, so retries are
    /// recognised by Moyasar.
    pub fn moyasar_transaction_id(&self) -> Uuid {
        Uuid::new_v5(&MOYASAR_TRANSACTION_NAMESPACE, self.0.as_bytes())
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
