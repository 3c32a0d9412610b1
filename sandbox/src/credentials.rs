//! Demo credentials the sandbox accepts. They are published on purpose:
//! they open nothing but a local emulator.
//!
//! Each provider's room defines its own (e.g. [`crate::optty::CLIENT_ID`]); this module gathers
//! them under one path for clients and tests.

/// Optty `client_id` for `POST /token`.
pub use crate::optty::CLIENT_ID as OPTTY_CLIENT_ID;
/// Optty `client_secret` for `POST /token`.
pub use crate::optty::CLIENT_SECRET as OPTTY_CLIENT_SECRET;

/// AfterPay `X-Auth-Key`.
pub use crate::afterpay::API_KEY as AFTERPAY_API_KEY;

/// A Moyasar key the sandbox knows but that lacks the refund permission:
/// answers 403 `{"message":"Unauthorized"}`.
pub use crate::moyasar::KEY_WITHOUT_REFUND as MOYASAR_KEY_WITHOUT_REFUND;
/// Moyasar secret key (`Authorization: Bearer <key>`), allowed to refund.
pub use crate::moyasar::SECRET_KEY as MOYASAR_SECRET_KEY;

/// OpenApp API key (first element of the HMAC `authorization` header).
pub use crate::openapp::API_KEY as OPENAPP_API_KEY;
/// OpenApp API secret, the HMAC-SHA256 key.
pub use crate::openapp::API_SECRET as OPENAPP_API_SECRET;
