//! Stateful loopback emulators of four refund APIs: Optty, AfterPay
//! (Riverty), Moyasar and OpenApp, each a real HTTP server (axum on tokio)
//! on its own port (`127.0.0.1` unless [`SandboxConfig::bind`] says
//! otherwise), faithful to the provider's documented contract: routes, auth,
//! units, success bodies, error bodies byte for byte where the docs show
//! them, and each provider's duplicate rule. The providers' read operations
//! answer from the same ledger as their refund routes (see "Reads").
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use rust_decimal::Decimal;
//! use sandbox::{Fault, Match, OrderSeed, Sandbox, SandboxConfig};
//!
//! let sb = Sandbox::start(SandboxConfig::default()).await?; // listening on return
//! sb.optty().seed_order(OrderSeed::new("ORD-1", "AUD", Decimal::new(10000, 2)));
//! sb.moyasar().seed_order(OrderSeed::from_minor("0191f5a7", "SAR", 262346));
//! sb.afterpay().inject(Fault::DropAfterCommit, Match::Any.once());
//! // ... point a client at sb.optty().base_url() etc. ...
//! assert_eq!(sb.optty().refund_count(), 0);
//! for server in sb.providers() {
//!     // The same for every provider: sb.handle("optty") finds one by its name.
//!     assert_eq!(server.requests_received(), 0);
//! }
//! sb.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Providers
//!
//! Everything about one provider is in its room, the module named after it ([`optty`],
//! [`afterpay`], [`moyasar`], [`openapp`]): its routes, auth, error bodies and duplicate rule, what
//! it keeps beside the shared orders, its settings ([`optty::Settings`] as
//! [`SandboxConfig::optty`]..), its flags of the `sandbox` binary, its demo orders and
//! credentials, and the facade's variables for it ([`Room`]). The providers are one list, in
//! this file: from it come the modules, [`PROVIDERS`], the settings of [`SandboxConfig`], the
//! servers [`Sandbox::start`] starts (and their ports), [`Sandbox`]'s accessors
//! ([`Sandbox::optty`]..) and the binary's flags ([`ProviderFlags`]). A new provider is its room
//! and one entry in that list; the compiler names whatever the room still lacks.
//!
//! # Routes
//!
//! | provider | route | auth |
//! |---|---|---|
//! | Optty | `POST /orders/{orderReference}/refund`, `POST /token` | bearer token from `/token` ([`optty::CLIENT_ID`]/[`optty::CLIENT_SECRET`]) |
//! | Optty, read | `POST /orders/{merchantReference}/details` (Transaction Details) | the same bearer token |
//! | AfterPay | `POST /api/v3/orders/{orderNumber}/refunds` | `X-Auth-Key: `[`afterpay::API_KEY`] |
//! | AfterPay, read | `GET /api/v3/orders/{orderNumber}` (Get Order), `GET /api/v3/orders/{orderNumber}/refunds/{refundNumber}` (Get Refunds) | the same `X-Auth-Key` |
//! | Moyasar | `POST /v1/orders/{id}/refund` | `Authorization: Bearer `[`moyasar::SECRET_KEY`] |
//! | Moyasar, read | `GET /v1/orders/{id}` (Retrieve Order) | the same key, or [`moyasar::KEY_WITHOUT_REFUND`] |
//! | OpenApp | `POST /merchant/v1/orders/refund` | HMAC ([`openapp`]) with [`openapp::API_KEY`]/[`openapp::API_SECRET`] |
//!
//! OpenApp publishes no read and no notification, so its room serves none. Optty's room also
//! sends refund notifications (see "Reads"). [`credentials`] gathers the demo credentials under
//! one path.
//!
//! # Reads
//!
//! Each read answers from the provider's ledger, the same orders and refunds the refund route
//! records and the admin API shows, in the shape of the provider's authored read spec
//! (`specs/<provider>/`, decoded by the generated types): [`optty`] (Transaction Details:
//! `refunds[]` with `refundId` = the client's `refundReference`, a decision the room documents;
//! `SUCCESSFUL`, `PENDING`, `FAILED`), [`afterpay`] (Get Order and Get Refunds: booked refunds
//! only, `amount` and `balance` negative, the request's items as `refundItems`), [`moyasar`]
//! (Retrieve Order: the refund route's Order object, refund transactions `initiated`,
//! `approved` or `failed`). Each room's documentation has the details and the choices made
//! where the docs are open.
//!
//! - **Settlement.** Settling a pending refund through the admin API
//!   ([`ProviderHandle::settle`]) changes what reads say at once.
//! - **Eventual consistency.** A refund shows in reads only once [`SandboxConfig::read_delay`]
//!   (default zero; `sandbox --read-delay-ms`) has passed since it was recorded; each server's
//!   own changes at run time ([`ProviderHandle::set_read_delay`], `PATCH /__admin/settings`
//!   `{"read_delay_ms": n}`), every server's with [`Sandbox::set_read_delay`]. The refund's own
//!   answer is never delayed.
//! - **Faults.** A fault rule targets one [`Operation`]: refunds (the default) or reads
//!   (`Match::Any.on(Operation::Read)`, `"operation": "read"` in the admin API); see "Faults".
//! - **Notifications.** Optty's server POSTs `{"event", "data"}` (Optty's `OrderNotification`)
//!   to a URL (`--optty-notify-url`, `PATCH /__admin/notifications`,
//!   [`OpttyServer::set_notify_settings`]) on every status change of a refund, recorded or
//!   settled, unsigned, from a task of its own (never holding up an answer), retried with a
//!   doubling backoff a bounded number of times; [`OpttyServer::notifications`] lists them and
//!   their attempts.
//!
//! Each provider's module documents its assumptions where the docs are
//! silent: [`optty`], [`afterpay`], [`moyasar`], [`openapp`].
//!
//! # Request validation
//!
//! Each refund route validates its request body as a whole against the request schema its
//! operation has in the provider's normalized spec (its settings' `spec`, e.g.
//! [`optty::Settings::spec`], by default the generated crate's `NORMALIZED_OPENAPI`, as JSON
//! Schema draft 4 with the `jsonschema` crate), before any business rule, and answers violations in the provider's own 400 shape naming the
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
//! (`/__admin/faults`), read the request log (`/__admin/requests`), read and
//! change the server's settings (`/__admin/settings`: the read delay) and reset
//! everything (`/__admin/reset`). Optty's server adds its notifications
//! (`/__admin/notifications`). JSON in and out; errors are
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
//! (`Match::Any.once()`), or the read routes (`Match::Any.on(Operation::Read).once()`: a rule
//! sees, counts and fires on its [`Operation`]'s requests only); see [`Fault`] for what each
//! does. Before the work:
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
//! Order creation, capture and void flows, Optty's other webhooks (order events,
//! `ORDER_ASYNC_CALLBACK`), Riverty's list-all refunds form (undocumented), OpenApp's wallet
//! balance and settlement reports, rate limits, and TLS.

#![warn(missing_docs)]

pub mod admin;
mod by_order;
mod clock;
pub mod credentials;
pub mod facade_env;
mod fault;
mod money;
mod response;
mod room;
mod schema;
mod server;
mod shared;
mod state;
mod wire;

use std::any::Any;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use admin::{AdminError, AdminErrorKind, LedgerEntry, LedgerFilter, LoggedRequest};
pub use fault::{Fault, FaultHandle, FaultRule, Match, Operation, Trigger};
pub use room::{EnvVar, Room, SentRefund, SpecRoute};
pub use server::ProviderHandle;
pub use state::{OrderSeed, OrderState, RecordedRefund, RefundStatus, SeedError};
// Their public paths from before the rooms kept them.
pub use afterpay::DEFAULT_CAPTURE_NUMBER;
pub use openapp::SANDBOX_MERCHANT;

/// [`SandboxConfig::max_request_body`]'s default: 1 MiB.
pub const DEFAULT_MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Makes everything that has one item per provider from the provider list: each entry is the
/// provider's name (its room's module, as the facade's `Provider::as_str` writes it) and its
/// server type. Invoked once, below; see the crate documentation's "Providers".
macro_rules! providers {
    ($($name:ident => $Server:ident),+ $(,)?) => {
        $(pub mod $name;)+
        $(pub use $name::$Server;)+

        /// Every provider's name, in the order of the list: the order of [`Sandbox::providers`]
        /// and of the ports from [`SandboxConfig::port_base`].
        pub const PROVIDERS: &[&str] = &[$(stringify!($name)),+];

        /// How to start the sandbox.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct SandboxConfig {
            /// The address every server binds (default `127.0.0.1`).
            pub bind: IpAddr,
            /// `None` (default): every server on an ephemeral port. `Some(p)`: each provider on
            /// `p` plus its place in [`PROVIDERS`] counted from 0 (Optty on `p`, AfterPay on
            /// `p + 1`, Moyasar on `p + 2`, OpenApp on `p + 3`), unless its settings fix a port.
            pub port_base: Option<u16>,
            /// The largest request body a server reads, in bytes (default 1 MiB, nginx's
            /// default); a larger one answers 413 in the provider's shape.
            pub max_request_body: usize,
            /// Eventual consistency of the read routes: a recorded refund shows in a provider's
            /// reads only once this long has passed since it was recorded (default zero: at
            /// once). Every server starts with it; each can change its own at run time
            /// ([`ProviderHandle::set_read_delay`], `PATCH /__admin/settings`), all at once with
            /// [`Sandbox::set_read_delay`]. `sandbox --read-delay-ms`.
            pub read_delay: Duration,
            $(
                #[doc = concat!("[`", stringify!($name), "`]'s settings: port, spec and its own.")]
                pub $name: $name::Settings,
            )+
        }

        impl Default for SandboxConfig {
            fn default() -> Self {
                SandboxConfig {
                    bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port_base: None,
                    max_request_body: DEFAULT_MAX_REQUEST_BODY,
                    read_delay: Duration::ZERO,
                    $($name: $name::Settings::default(),)+
                }
            }
        }

        impl SandboxConfig {
            /// Every provider's own settings as `sandbox --print-config json` reports them
            /// (`optty_token_lifetime_s`..), in list order.
            pub fn provider_settings(&self) -> Vec<(&'static str, serde_json::Value)> {
                let mut all = Vec::new();
                $(all.extend(self.$name.report());)+
                all
            }

            /// The spec the server of the provider named `provider` serves (its settings'
            /// `spec`: by default its generated crate's `NORMALIZED_OPENAPI`).
            pub fn spec(&self, provider: &str) -> Option<&str> {
                $(
                    if provider == stringify!($name) {
                        return Some(&self.$name.spec);
                    }
                )+
                None
            }

            /// The port the settings of the provider named `provider` fix, if any.
            fn port_setting(&self, provider: &str) -> Option<u16> {
                $(
                    if provider == stringify!($name) {
                        return self.$name.port;
                    }
                )+
                None
            }
        }

        /// Every provider's flags of the `sandbox` binary, each under its provider's heading.
        #[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
        pub struct ProviderFlags {
            $(
                #[doc = concat!("[`", stringify!($name), "`]'s flags.")]
                #[command(flatten)]
                pub $name: $name::Flags,
            )+
        }

        impl ProviderFlags {
            /// Sets what the flags say in each provider's settings of `config`.
            pub fn apply(&self, config: &mut SandboxConfig) {
                $(self.$name.apply(&mut config.$name);)+
            }
        }

        impl Sandbox {
            $(
                #[doc = concat!("The [`", stringify!($name), "`] server.")]
                pub fn $name(&self) -> &$Server {
                    self.server(stringify!($name))
                }
            )+
        }

        /// Compiles every provider's request schema, then starts the servers in list order.
        async fn start_rooms(config: &SandboxConfig) -> std::io::Result<Servers> {
            // Every schema first, so that a bad spec fails before any port is bound.
            $(let $name = $name::request_schema(stringify!($name), &config.$name)?;)+
            let mut rooms: Servers = Vec::new();
            $(
                let listen = config.listen(config.$name.port, rooms.len())?;
                let server = $name::start(stringify!($name), listen, $name, &config.$name).await?;
                rooms.push((stringify!($name), Box::new(server)));
            )+
            Ok(rooms)
        }
    };
}

// The provider list.
providers! {
    optty => OpttyServer,
    afterpay => AfterPayServer,
    moyasar => MoyasarServer,
    openapp => OpenAppServer,
}

/// The largest [`SandboxConfig::port_base`] that leaves a port for every provider.
pub const MAX_PORT_BASE: u16 = u16::MAX - (PROVIDERS.len() as u16 - 1);

impl SandboxConfig {
    /// The port of the provider at `place` in the list: `fixed`, else
    /// [`SandboxConfig::port_base`] plus `place`, else 0 (ephemeral).
    fn port(&self, fixed: Option<u16>, place: usize) -> std::io::Result<u16> {
        if let Some(port) = fixed {
            return Ok(port);
        }
        self.port_base.map_or(Ok(0), |base| {
            u16::try_from(place)
                .ok()
                .and_then(|place| base.checked_add(place))
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("port_base + {place} exceeds 65535"),
                    )
                })
        })
    }

    fn listen(&self, fixed: Option<u16>, place: usize) -> std::io::Result<server::Listen> {
        Ok(server::Listen {
            addr: SocketAddr::new(self.bind, self.port(fixed, place)?),
            max_request_body: self.max_request_body,
            read_delay: self.read_delay,
        })
    }

    /// The port the provider named `provider` gets from this configuration before it starts:
    /// `None` for an ephemeral one (or a provider not in [`PROVIDERS`]).
    pub fn fixed_port(&self, provider: &str) -> Option<u16> {
        let place = PROVIDERS.iter().position(|p| *p == provider)?;
        self.port(self.port_setting(provider), place)
            .ok()
            .filter(|port| *port != 0)
    }
}

/// Each server by its provider's name, in list order.
type Servers = Vec<(&'static str, Box<dyn Room>)>;

/// The running servers, one per provider of the list.
#[derive(Debug)]
pub struct Sandbox {
    servers: Servers,
}

impl Sandbox {
    /// Starts a server per provider; returns once every one is listening. Each refund route's
    /// request schema is compiled first, from its provider's settings (an error of kind
    /// `InvalidInput` names the provider whose schema does not compile).
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        Ok(Sandbox {
            servers: start_rooms(&config).await?,
        })
    }

    /// The server of the provider named `name` (`optty`, `afterpay`, `moyasar`, `openapp`: the
    /// facade's `Provider::as_str`), so a client's tests need no match of their own.
    pub fn handle(&self, name: &str) -> Option<&ProviderHandle> {
        self.room(name).map(Room::handle)
    }

    /// The room of the provider named `name` (as [`Sandbox::handle`]): its server as the room
    /// describes it, with [`Room::send_example_refund`].
    pub fn room(&self, name: &str) -> Option<&dyn Room> {
        self.servers
            .iter()
            .find(|(provider, _)| *provider == name)
            .map(|(_, room)| &**room)
    }

    /// Every server, in list order ([`PROVIDERS`]).
    pub fn providers(&self) -> impl ExactSizeIterator<Item = &ProviderHandle> {
        self.rooms().map(|room| room.handle())
    }

    /// Every server as its room describes it (for the `sandbox` binary's startup output and
    /// [`facade_env`]), in list order.
    pub fn rooms(&self) -> impl ExactSizeIterator<Item = &dyn Room> {
        self.servers.iter().map(|(_, room)| &**room)
    }

    /// Sets every server's read delay ([`ProviderHandle::set_read_delay`]).
    pub fn set_read_delay(&self, delay: Duration) {
        for server in self.providers() {
            server.set_read_delay(delay);
        }
    }

    /// Stops every server gracefully.
    pub async fn shutdown(self) {
        for room in self.rooms() {
            room.handle().shutdown().await;
        }
    }

    /// The server of the provider named `name`, as its room's type.
    fn server<S: Room>(&self, name: &str) -> &S {
        let server = self
            .room(name)
            .and_then(|room| (room as &dyn Any).downcast_ref::<S>());
        match server {
            Some(server) => server,
            None => unreachable!("Sandbox::start starts a server of its room's type for {name}"),
        }
    }
}

/// Orders to seed into providers at startup (`sandbox --seed-file`): a JSON object with a key
/// per provider ([`PROVIDERS`]; every key optional) whose value is an array of seeds, each as
/// `POST /__admin/orders` takes it: `{"optty": [seed, ..], "moyasar": [..]}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedFile {
    orders: BTreeMap<&'static str, Vec<OrderSeed>>,
}

impl SeedFile {
    /// Parses a seed file, naming the field at fault (`moyasar[1].captured`, or the key of a
    /// provider the list does not have).
    pub fn parse(text: &str) -> Result<SeedFile, AdminError> {
        let value = wire::from_slice(text.as_bytes())
            .map_err(|e| AdminError::invalid("seed file", format!("not JSON: {e}")))?;
        let obj = admin::object(&value, "seed file")?;
        let mut file = SeedFile::default();
        for (key, list) in obj {
            let Some(provider) = PROVIDERS.iter().copied().find(|p| p == key) else {
                return Err(AdminError::invalid(
                    key,
                    format!("unknown provider: use one of {}", PROVIDERS.join(", ")),
                ));
            };
            let wire::Value::Array(items) = list else {
                return Err(AdminError::invalid(key, "must be an array of orders"));
            };
            let orders = file.orders.entry(provider).or_default();
            for (i, item) in items.iter().enumerate() {
                orders.push(admin::parse_seed(item).map_err(|e| e.within(&format!("{key}[{i}]")))?);
            }
        }
        Ok(file)
    }

    /// The orders for the provider named `provider`, in the file's order (none when the file
    /// names none).
    pub fn orders(&self, provider: &str) -> &[OrderSeed] {
        self.orders.get(provider).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_files_name_the_field_at_fault() {
        let file = SeedFile::parse(
            r#"{"optty":[{"id":"A","currency":"AUD","captured":10.10}],"openapp":[]}"#,
        )
        .unwrap();
        assert_eq!(file.orders("optty")[0].captured.to_string(), "10.10");
        assert!(file.orders("openapp").is_empty());
        let e = SeedFile::parse(
            r#"{"moyasar":[{"id":"A","currency":"SAR","captured":1},{"id":"B","currency":"SAR"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("moyasar[1].captured"));
        let e = SeedFile::parse(r#"{"paypal":[]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("paypal"));
    }

    #[test]
    fn ports_follow_the_list_from_the_base_unless_fixed() {
        let mut config = SandboxConfig {
            port_base: Some(18_000),
            ..SandboxConfig::default()
        };
        config.moyasar.port = Some(19_000);
        let ports: Vec<Option<u16>> = PROVIDERS.iter().map(|p| config.fixed_port(p)).collect();
        // The base plus each provider's place in the list, but Moyasar's, which is fixed.
        let expected: Vec<Option<u16>> = (18_000..)
            .zip(PROVIDERS)
            .map(|(port, p)| Some(if *p == "moyasar" { 19_000 } else { port }))
            .collect();
        assert_eq!(ports, expected);
        assert_eq!(&ports[..3], [Some(18_000), Some(18_001), Some(19_000)]);
        assert_eq!(SandboxConfig::default().fixed_port("optty"), None);
        let too_high = SandboxConfig {
            port_base: Some(u16::MAX),
            ..SandboxConfig::default()
        };
        assert!(too_high.port(None, 1).is_err());
    }
}
