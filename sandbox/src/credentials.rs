//! Demo credentials the sandbox accepts. They are published on purpose:
//! they open nothing but a local emulator.

/// Optty `client_id` for `POST /token`.
pub const OPTTY_CLIENT_ID: &str = "sandbox-optty-client";
/// Optty `client_secret` for `POST /token`.
pub const OPTTY_CLIENT_SECRET: &str = "sandbox-optty-secret";
/// AfterPay `X-Auth-Key`.
pub const AFTERPAY_API_KEY: &str = "sandbox-afterpay-key";
/// Moyasar secret key (`Authorization: Bearer <key>`), allowed to refund.
pub const MOYASAR_SECRET_KEY: &str = "sk_test_sandbox_refunds";
/// A Moyasar key the sandbox knows but that lacks the refund permission:
/// answers 403 `{"message":"Unauthorized"}`.
pub const MOYASAR_KEY_WITHOUT_REFUND: &str = "sk_test_sandbox_read_only";
/// OpenApp API key (first element of the HMAC `authorization` header).
pub const OPENAPP_API_KEY: &str = "b23a9fa61406440d868271d19d634906";
/// OpenApp API secret, the HMAC-SHA256 key.
pub const OPENAPP_API_SECRET: &str = "sandbox-openapp-secret-0f4b1c2d";
