//! Stateful loopback emulators of four refund APIs: Optty, AfterPay
//! (Riverty), Moyasar and OpenApp, each a real HTTP server (axum on tokio)
//! on its own port (`127.0.0.1` unless [`SandboxConfig::bind`] says
//! otherwise), faithful to the provider's documented contract: routes, auth,
//! units, success bodies, error bodies byte for byte where the docs show
//! them, and each provider's duplicate rule.
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
//! # Request validation
//!
//! Each refund route validates its request body as a whole against the request schema its
//! operation has in the provider's normalized spec ([`SandboxConfig::specs`], by default the
//! generated crates' `NORMALIZED_OPENAPI`, as JSON Schema draft 4 with the `jsonschema` crate),
//! before any business rule, and answers violations in the provider's own 400 shape naming the
//! field (Moyasar: 422 `errors.<field>`). A field or keyword a new spec adds is enforced with no
//! edit of the sandbox. What the schema does not say stays with each provider: balances,
//! duplicates, currencies, price x quantity, and exact readings of amounts where the schema's
//! f64 reading could be wrong.
//!
//! # Admin API
//!
//! Every server also answers, without auth and without counting towards
//! [`ProviderHandle::requests_received`], the admin API under `/__admin`:
//! seed, read and remove orders (`/__admin/orders`), read the refund ledger
//! (`/__admin/refunds`), settle a pending refund, add, list and clear faults
//! (`/__admin/faults`), read the request log (`/__admin/requests`) and reset
//! everything (`/__admin/reset`). JSON in and out; errors are
//! `{"error":..,"field":..}` naming the field at fault. The contract is
//! `sandbox/admin.openapi.json`; [`admin`] lists each operation beside the
//! [`ProviderHandle`] method that does the same (both call one function).
//!
//! # Router-level answers
//!
//! An unknown route (404), a wrong method (405, with `Allow`), a body beyond
//! [`SandboxConfig::max_request_body`] (413) and a body whose content type is
//! not the route's (415; `application/json`, Optty's `/token`
//! `application/x-www-form-urlencoded`) are answered in the provider's own
//! error shape (OpenApp's signed), never with an empty or plain-text body.
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

pub mod admin;
pub mod afterpay;
mod clock;
pub mod credentials;
pub mod facade_env;
mod fault;
mod money;
pub mod moyasar;
pub mod openapp;
pub mod optty;
mod response;
mod schema;
mod server;
mod shared;
mod state;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use admin::{AdminError, AdminErrorKind, LedgerEntry, LedgerFilter, LoggedRequest, SeedFile};
pub use afterpay::AfterPayServer;
pub use fault::{Fault, FaultHandle, FaultRule, Match, Trigger};
pub use moyasar::MoyasarServer;
pub use openapp::OpenAppServer;
pub use optty::OpttyServer;
pub use schema::ProviderSpecs;
pub use server::ProviderHandle;
pub use state::{
    DEFAULT_CAPTURE_NUMBER, OrderSeed, OrderState, RecordedRefund, RefundStatus, SANDBOX_MERCHANT,
    SeedError,
};

/// How to start the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The address every server binds (default `127.0.0.1`).
    pub bind: IpAddr,
    /// `None` (default): every server on an ephemeral port. `Some(p)`: Optty
    /// on `p`, AfterPay on `p + 1`, Moyasar on `p + 2`, OpenApp on `p + 3`.
    pub port_base: Option<u16>,
    /// A port per provider, taking precedence over [`SandboxConfig::port_base`].
    pub ports: ProviderPorts,
    /// Lifetime of Optty tokens (default 86400 s, Optty's `expires_in`).
    pub optty_token_lifetime: Duration,
    /// AfterPay: a repeated `transactionReference` on an order replays the
    /// original response (default `true`; Riverty documents no rule).
    pub afterpay_replay_transaction_reference: bool,
    /// OpenApp: allowed distance between a request's timestamp and the
    /// sandbox's clock (default 60 s).
    pub openapp_timestamp_window: Duration,
    /// OpenApp: how answers are signed (default
    /// [`openapp::ResponseSigning::Valid`]).
    pub openapp_response_signing: openapp::ResponseSigning,
    /// The largest request body a server reads, in bytes (default 1 MiB,
    /// nginx's default); a larger one answers 413 in the provider's shape.
    pub max_request_body: usize,
    /// The normalized OpenAPI documents whose request body schemas each refund route enforces
    /// as a whole (default: the generated crates' `NORMALIZED_OPENAPI`); a document without the
    /// route's operation, or whose schema does not compile, fails [`Sandbox::start`].
    pub specs: ProviderSpecs,
}

/// A fixed port per provider; `None` leaves it to
/// [`SandboxConfig::port_base`] or an ephemeral port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderPorts {
    /// Optty's port.
    pub optty: Option<u16>,
    /// AfterPay's port.
    pub afterpay: Option<u16>,
    /// Moyasar's port.
    pub moyasar: Option<u16>,
    /// OpenApp's port.
    pub openapp: Option<u16>,
}

/// [`SandboxConfig::max_request_body`]'s default: 1 MiB.
pub const DEFAULT_MAX_REQUEST_BODY: usize = 1024 * 1024;

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_base: None,
            ports: ProviderPorts::default(),
            optty_token_lifetime: Duration::from_secs(86_400),
            afterpay_replay_transaction_reference: true,
            openapp_timestamp_window: openapp::DEFAULT_TIMESTAMP_WINDOW,
            openapp_response_signing: openapp::ResponseSigning::Valid,
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            specs: ProviderSpecs::default(),
        }
    }
}

impl SandboxConfig {
    /// The port of the provider at `offset` (Optty 0 .. OpenApp 3).
    fn port(&self, fixed: Option<u16>, offset: u16) -> std::io::Result<u16> {
        if let Some(port) = fixed {
            return Ok(port);
        }
        self.port_base.map_or(Ok(0), |base| {
            base.checked_add(offset).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "port_base + 3 exceeds 65535",
                )
            })
        })
    }

    fn listen(&self, fixed: Option<u16>, offset: u16) -> std::io::Result<server::Listen> {
        Ok(server::Listen {
            addr: SocketAddr::new(self.bind, self.port(fixed, offset)?),
            max_request_body: self.max_request_body,
        })
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
    /// The server of the provider named `name` (`optty`, `afterpay`, `moyasar`, `openapp`: the
    /// facade's `Provider::as_str`), so a client's tests need no match of their own.
    pub fn handle(&self, name: &str) -> Option<&ProviderHandle> {
        match name {
            "optty" => Some(&self.optty),
            "afterpay" => Some(&self.afterpay),
            "moyasar" => Some(&self.moyasar),
            "openapp" => Some(&self.openapp),
            _ => None,
        }
    }

    /// Starts all four servers; returns once every one is listening. Each refund route's
    /// request schema is compiled first, from [`SandboxConfig::specs`] (an error of kind
    /// `InvalidInput` names the one that does not compile).
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let ports = config.ports;
        let specs = &config.specs;
        let optty = optty::request_schema(&specs.optty)?;
        let afterpay = afterpay::request_schema(&specs.afterpay)?;
        let moyasar = moyasar::request_schema(&specs.moyasar)?;
        let openapp = openapp::request_schema(&specs.openapp)?;
        Ok(Sandbox {
            optty: optty::start(
                config.listen(ports.optty, 0)?,
                optty,
                config.optty_token_lifetime,
            )
            .await?,
            afterpay: afterpay::start(
                config.listen(ports.afterpay, 1)?,
                afterpay,
                config.afterpay_replay_transaction_reference,
            )
            .await?,
            moyasar: moyasar::start(config.listen(ports.moyasar, 2)?, moyasar).await?,
            openapp: openapp::start(
                config.listen(ports.openapp, 3)?,
                openapp,
                config.openapp_timestamp_window,
                config.openapp_response_signing,
            )
            .await?,
        })
    }

    /// The four servers, in the order Optty, AfterPay, Moyasar, OpenApp.
    pub fn providers(&self) -> [&ProviderHandle; 4] {
        [&self.optty, &self.afterpay, &self.moyasar, &self.openapp]
    }

    /// Stops all four servers gracefully.
    pub async fn shutdown(self) {
        self.optty.shutdown().await;
        self.afterpay.shutdown().await;
        self.moyasar.shutdown().await;
        self.openapp.shutdown().await;
    }
}
