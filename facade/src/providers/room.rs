//! [`Room`]: what every provider's room gives the rest of the facade. The client and the
//! dispatch in `providers/mod.rs` call rooms only through it, expanded from the one provider
//! list, so a room that lacks one of these does not compile.

use std::future::Future;
use std::time::SystemTime;

use crate::answer::{Answer, AnswerLimits};
use crate::capabilities::Capabilities;
use crate::error::RefundError;
use crate::lookup::{Lookup, Notification};
use crate::model::{Provider, Refund, RefundRequest};
use crate::providers::SpecOperation;

/// One provider's room: its config, its client, its features and limits, and the pure mapping
/// of its answers.
pub(crate) trait Room: Sized + Send + Sync + 'static {
    /// The room's connection settings ([`crate::config`]).
    type Config;

    /// The settings from `REFUNDS_<PROVIDER>_*` variables read through `lookup`.
    fn config_from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self::Config, RefundError>;

    /// A client for `config`, its base URLs checked first (an
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the setting).
    fn connect(config: Self::Config) -> Result<Self, RefundError>;

    /// The provider's refund features and limits.
    fn capabilities() -> Capabilities;

    /// The JSON text of the refund body the room sends for `request` (validated or not),
    /// compact or `pretty`.
    fn refund_body_json(request: &RefundRequest, pretty: bool) -> Result<String, RefundError>;

    /// The pure mapping of one refund answer (for replays and tests: no signature check).
    fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError>;

    /// The pure mapping of one read of the provider's record ([`crate::lookup`]), received at
    /// `read_at`; `known_refund_id` is the provider's id of the refund where an answer gave it.
    fn read_result(
        request: &RefundRequest,
        known_refund_id: Option<&str>,
        answer: &Answer,
        read_at: SystemTime,
    ) -> Result<Lookup, RefundError>;

    /// Reads the provider's record of the request's refund; the request has passed validation.
    fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> impl Future<Output = Result<Lookup, RefundError>> + Send;

    /// The provider the room serves.
    const PROVIDER: Provider;

    /// The refund operation the room sends, in the provider's normalized spec.
    const REFUND_OPERATION: SpecOperation;

    /// The caps on the provider's answers unless its config sets others.
    const DEFAULT_ANSWER_LIMITS: AnswerLimits = AnswerLimits::DEFAULT;

    /// Reads a notification the provider POSTed to us ([`Notification::read`]). By default
    /// none: most providers document no notifications.
    fn read_notification(_body: &[u8]) -> Result<Notification, RefundError> {
        Err(crate::providers::no_notifications(Self::PROVIDER))
    }

    /// Sends one refund; the request has passed validation.
    fn refund(
        &self,
        request: &RefundRequest,
    ) -> impl Future<Output = Result<Refund, RefundError>> + Send;
}
