//! What every provider's room tells about its running server, so that the code around the
//! rooms ([`crate::Sandbox`], [`crate::facade_env`], the `sandbox` binary) needs no provider's
//! name: it goes through [`crate::Sandbox::rooms`].

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use crate::server::ProviderHandle;
use crate::state::OrderSeed;

/// One of the `refunds` facade's `REFUNDS_*` environment variables and where its value comes
/// from: the provider's running server (its base URL) or the demo credentials.
pub type EnvVar = (&'static str, fn(&ProviderHandle) -> String);

/// The answer to [`Room::send_example_refund`], on its way.
pub type SentRefund<'a> =
    Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

/// A provider's running server as its room describes it. Each provider's server type
/// ([`crate::OpttyServer`] and the others) implements it; [`crate::Sandbox::rooms`] lists them in
/// the order of the provider list.
pub trait Room: Any + Debug + Send + Sync {
    /// The server's orders, faults, ledger and request log.
    fn handle(&self) -> &ProviderHandle;

    /// The provider's name as its documentation writes it (`Optty`, `AfterPay`..), for people.
    fn title(&self) -> &'static str;

    /// The refund route, its path parameter named as in the provider's spec
    /// (`/orders/{orderReference}/refund`).
    fn refund_path(&self) -> &'static str;

    /// The read routes, from the generated crate's `operations` (the path parameters named as
    /// in the provider's spec: `POST /orders/{merchantReference}/details`); none for a provider
    /// that publishes no read (OpenApp).
    fn read_routes(&self) -> &'static [SpecRoute];

    /// The demo credentials ([`crate::credentials`]) and where they are used, as JSON: what
    /// `sandbox --print-config json` shows under `credentials`.
    fn credentials(&self) -> serde_json::Value;

    /// The demo credentials in one line, for people.
    fn credentials_text(&self) -> String;

    /// Shell commands refunding a demo order of [`Room::demo_orders`] on this server, for
    /// people.
    fn example(&self) -> String;

    /// The orders the `sandbox` binary seeds at startup (unless `--no-demo-seed`).
    fn demo_orders(&self) -> Vec<OrderSeed>;

    /// The facade's variables that point a client at this server, in the order
    /// `sandbox --print-config env` prints them. Keep in step with the provider's config in the
    /// facade (its `from_env`, whose documentation lists them), which is what the facade reads
    /// (the facade's test of these lines refunds through every provider); the optional
    /// `REFUNDS_<PROVIDER>_TIMEOUT_MS` and `_MAX_ANSWER_BYTES` are left to the facade's defaults.
    fn facade_env(&self) -> &'static [EnvVar];

    /// Sends a valid refund of 1.00 of order `order_id` (seeded in `currency`, a two-decimal
    /// one) under the duplicate key [`Room::example_key`] of `reference`, with the demo
    /// credentials, as the provider's client would (Optty: a token first): for tests that need
    /// a refund on every server without knowing each provider's request.
    fn send_example_refund<'a>(
        &'a self,
        client: &'a reqwest::Client,
        order_id: &'a str,
        currency: &'a str,
        reference: &'a str,
    ) -> SentRefund<'a>;

    /// The duplicate key [`Room::send_example_refund`] sends for `reference`, as the server
    /// records it ([`ProviderHandle::refunds_with_reference`](crate::ProviderHandle)): the
    /// reference itself, or for Moyasar, whose key is a UUID, one derived from it.
    fn example_key(&self, reference: &str) -> String {
        reference.to_owned()
    }
}

/// An operation of a provider's spec: its method and path template, as the provider's generated
/// crate names them (`<provider>_api::operations::<operation>::{METHOD, PATH}`). Shown as
/// `METHOD path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecRoute {
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The path template, its parameters named as in the spec.
    pub path: &'static str,
}

impl std::fmt::Display for SpecRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// `text` as a JSON string literal, quotes and escapes included, for request bodies written
/// with `format!` (amounts stay as written: JSON numbers, never `f64`).
pub(crate) fn json_text(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
