//! What reading the provider's own record says about one refund: [`Lookup`], the result of
//! [`Refunds::find`](crate::Refunds::find).
//!
//! A refund's own answer is not always the last word (Optty answers `PENDING`, an answer can be
//! lost after the provider committed); the provider's record is. How a provider's record names
//! "our" refund, and which read it is, is each room's to say: the rustdoc of
//! `providers::<provider>::transformers::read_result` (for AfterPay, whose record echoes none of
//! our references, the order's refunds come back [`Finding::Unattributed`] for the journal to
//! attribute). A provider that publishes no read says so in
//! [`Capabilities::record_read`](crate::Capabilities::record_read).

use std::time::SystemTime;

use serde::Serialize;

use crate::answer::RawAnswer;
use crate::model::{Provider, RefundStatus};
use crate::money::Money;

/// One refund as the provider's record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRefund {
    /// The provider's id of the refund (Optty `refundId`, AfterPay `refundNumber`, Moyasar
    /// transaction `id`).
    pub provider_refund_id: Option<String>,
    /// Its status in the record.
    pub status: RefundStatus,
    /// Its amount (positive), where the record states one in a currency we know.
    pub amount: Option<Money>,
    /// When the provider says it was made, in the provider's own text.
    pub created_at: Option<String>,
    /// Why it failed, where the provider says (Optty `refundFailureReason`, Moyasar `message`
    /// of a failed transaction).
    pub failure_reason: Option<String>,
}

/// What the record says about the request's refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", content = "refunds", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// The record holds our refund.
    Found(RecordedRefund),
    /// The record, read at [`Lookup::read_at`], holds no refund of ours. A refund sent just
    /// before may not show yet (providers' reads can lag): wait out a settling delay before
    /// concluding it was not applied.
    Absent,
    /// (AfterPay) The order's refunds, none of which the record ties to our request: Riverty
    /// echoes no reference of ours, so only a journal that knows every refund made on the order
    /// can tell which, if any, is ours.
    Unattributed(Vec<RecordedRefund>),
}

/// A read of the provider's record for one refund request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lookup {
    /// The provider read.
    pub provider: Provider,
    /// What the record says about our refund.
    pub finding: Finding,
    /// When the answer was received (the record is at least this recent).
    pub read_at: SystemTime,
    /// The provider's answer body exactly as received, for audit.
    pub raw: RawAnswer,
}

/// A notification a provider POSTed to the service (Optty's webhooks), read by
/// [`Notification::read`]: a **hint to read back, never a status to trust**. Optty documents no
/// signature for its notifications, so anyone who knows the URL can send one; and its documented
/// body names no order or refund of ours. What a service does with one is read its records
/// back ([`Refunds::find`](crate::Refunds::find), or the journal's `settle_notified`), which is
/// safe whatever the notification says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// The provider that (says it) sent it.
    pub provider: Provider,
    /// Its event type as sent (Optty: `ORDER_STATUS_UPDATE`, `ORDER_ASYNC_CALLBACK`, ...).
    pub event: String,
    /// The status it claims, as sent; informational only.
    pub claimed_status: Option<String>,
    /// The provider's transaction id it names, if any.
    pub transaction_id: Option<String>,
    /// The body exactly as received.
    pub raw: RawAnswer,
}

impl Notification {
    /// Reads the body of a notification from `provider`. A body that is not the provider's
    /// notification shape, or a provider that sends no notifications (AfterPay, Moyasar and
    /// OpenApp document none), is an [`ErrorKind::InvalidRequest`](crate::ErrorKind) on
    /// `notification`: answer the sender 400 and read nothing.
    ///
    /// ```
    /// use refunds::{Notification, Provider};
    ///
    /// let body = br#"{"event":"ORDER_STATUS_UPDATE","data":{"status":"SUCCESSFUL","transactionId":"T-1"}}"#;
    /// let hint = Notification::read(Provider::Optty, body)?;
    /// assert_eq!(hint.event, "ORDER_STATUS_UPDATE");
    /// assert_eq!(hint.transaction_id.as_deref(), Some("T-1"));
    /// assert!(Notification::read(Provider::Moyasar, body).is_err());
    /// # Ok::<(), refunds::RefundError>(())
    /// ```
    pub fn read(provider: Provider, body: &[u8]) -> Result<Notification, crate::RefundError> {
        crate::providers::read_notification(provider, body)
    }
}
