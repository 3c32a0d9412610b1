//! Stateful loopback emulators of four refund APIs: Optty, AfterPay
//! (Riverty), Moyasar and OpenApp, each a real HTTP server (axum on tokio)
//! on its own `127.0.0.1` port, faithful to the provider's documented
//! contract: routes, auth, units, success bodies, error bodies byte for byte
//! where the docs show them, and each provider's duplicate rule.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use rust_decimal::Decimal;
//! use sandbox::{Fault, Match, OrderSeed, Sandbox, SandboxConfig};
//!
//! let sb = Sandbox::start(SandboxConfig::default()).await?; // listening on return
//! sb.optty.seed_order(OrderSeed::new("ORD-1", "AUD", Decimal::new(10000, 2)));
//! sb.moyasar.seed_order(OrderSeed::from_minor("0191f5a7", "SAR", 262346));
//! sb.afterpay.inject(Fault::DropAfterCommit, Match::Any.once());
//! // ... point a client at sb.optty.base_url() etc. ...
//! assert_eq!(sb.optty.refund_count(), 0);
//! sb.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Routes
//!
//! | provider | route | auth |
//! |---|---|---|
//! | Optty | `POST /orders/{orderReference}/refund`, `POST /token` | bearer token from `/token` ([`credentials::OPTTY_CLIENT_ID`]/[`credentials::OPTTY_CLIENT_SECRET`]) |
//! | AfterPay | `POST /api/v3/orders/{orderNumber}/refunds` | `X-Auth-Key: `[`credentials::AFTERPAY_API_KEY`] |
//! | Moyasar | `POST /v1/orders/{id}/refund` | `Authorization: Bearer `[`credentials::MOYASAR_SECRET_KEY`] |
//! | OpenApp | `POST /merchant/v1/orders/refund` | HMAC ([`openapp`]) with [`credentials::OPENAPP_API_KEY`]/[`credentials::OPENAPP_API_SECRET`] |
//!
//! Each provider's module documents its assumptions where the docs are
//! silent: [`optty`], [`afterpay`], [`moyasar`], [`openapp`].
//!
//! # Admin endpoints
//!
//! Every server also answers, without auth and without counting towards
//! [`ProviderHandle::requests_received`]:
//!
//! - `POST /__admin/orders` with an [`OrderSeed`] as JSON
//!   (`{"id":"ORD-1","currency":"AUD","captured":100.00}`, optional
//!   `authorized`, `refunded`, `capture_number`, `oa_order_id`, `owner`,
//!   `refund_status` `"SUCCEEDED"`/`"PENDING"`): creates or replaces the
//!   order, 201 with its [`OrderState`]; 400 `{"error":..}` for a bad seed.
//! - `GET /__admin/orders/{id}`: 200 [`OrderState`] or 404 `{"error":..}`.
//! - `GET /__admin/orders`: all orders.
//!
//! # Faults
//!
//! [`ProviderHandle::inject`] makes the refund route misbehave for requests
//! matching a [`Match`], until cleared or for a number of times
//! (`Match::Any.once()`); see [`Fault`] for what each does. Before the work:
//! [`Fault::Status`], [`Fault::NonJson502`] (nothing recorded),
//! [`Fault::Latency`]. After the work, the refund already recorded, an
//! ambiguous answer: [`Fault::DropAfterCommit`] (none at all),
//! [`Fault::MalformedBody`], [`Fault::StatusAfterCommit`] (a gateway's HTML
//! 502/504..), [`Fault::UnsignedAnswer`] and [`Fault::WrongSignature`]
//! (OpenApp's signature missing or not matching), [`Fault::OversizedBody`]
//! (n bytes of JSON-looking body, streamed) and [`Fault::OversizedHeaders`]
//! (an n-byte header). [`ProviderHandle::refunds_with_reference`] then
//! checks that a client's retries left exactly one refund per duplicate key.
//!
//! # Not emulated
//!
//! Order creation, capture and void flows, webhooks (Optty's
//! REFUND_CALLBACK), Riverty's refund read-back, OpenApp's wallet balance
//! and settlement reports, rate limits, and TLS.

#![warn(missing_docs)]

pub mod afterpay;
mod clock;
pub mod credentials;
mod fault;
mod money;
pub mod moyasar;
pub mod openapp;
pub mod optty;
mod server;
mod state;
mod wire;

use std::time::Duration;

pub use afterpay::AfterPayServer;
pub use fault::{Fault, FaultHandle, Match, Trigger};
pub use moyasar::MoyasarServer;
pub use openapp::OpenAppServer;
pub use optty::OpttyServer;
pub use server::ProviderHandle;
pub use state::{
    DEFAULT_CAPTURE_NUMBER, OrderSeed, OrderState, RecordedRefund, RefundStatus, SANDBOX_MERCHANT,
    SeedError,
};

/// How to start the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// `None` (default): every server on an ephemeral port. `Some(p)`: Optty
    /// on `p`, AfterPay on `p + 1`, Moyasar on `p + 2`, OpenApp on `p + 3`.
    pub port_base: Option<u16>,
    /// Lifetime of Optty tokens (default 86400 s, Optty's `expires_in`).
    pub optty_token_lifetime: Duration,
    /// AfterPay: a repeated `transactionReference` on an order replays the
    /// original response (default `true`; Riverty documents no rule).
    pub afterpay_replay_transaction_reference: bool,
    /// OpenApp: allowed distance between a request's timestamp and the
    /// sandbox's clock (default 60 s).
    pub openapp_timestamp_window: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port_base: None,
            optty_token_lifetime: Duration::from_secs(86_400),
            afterpay_replay_transaction_reference: true,
            openapp_timestamp_window: openapp::DEFAULT_TIMESTAMP_WINDOW,
        }
    }
}

/// The four running servers.
#[derive(Debug)]
pub struct Sandbox {
    /// Optty.
    pub optty: OpttyServer,
    /// AfterPay (Riverty).
    pub afterpay: AfterPayServer,
    /// Moyasar.
    pub moyasar: MoyasarServer,
    /// OpenApp.
    pub openapp: OpenAppServer,
}

impl Sandbox {
    /// Starts all four servers; returns once every one is listening.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let port = |offset: u16| {
            config.port_base.map_or(Ok(0), |base| {
                base.checked_add(offset).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "port_base + 3 exceeds 65535",
                    )
                })
            })
        };
        Ok(Sandbox {
            optty: optty::start(port(0)?, config.optty_token_lifetime).await?,
            afterpay: afterpay::start(port(1)?, config.afterpay_replay_transaction_reference)
                .await?,
            moyasar: moyasar::start(port(2)?).await?,
            openapp: openapp::start(port(3)?, config.openapp_timestamp_window).await?,
        })
    }

    /// Stops all four servers gracefully.
    pub async fn shutdown(self) {
        self.optty.shutdown().await;
        self.afterpay.shutdown().await;
        self.moyasar.shutdown().await;
        self.openapp.shutdown().await;
    }
}
