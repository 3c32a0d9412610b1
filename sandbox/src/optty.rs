//! Optty: `POST /orders/{orderReference}/refund` with bearer tokens from
//! `POST /token`, errors as NestJS writes them (`{statusCode, message,
//! error?}`).
//!
//! Assumptions where the docs are silent:
//! - `refundReference` is unique per merchant. A repeat with the same order,
//!   amount and currency is an idempotent replay: it answers 200 with the
//!   original response body and records nothing, so a retry after a dropped
//!   connection learns the original result. A repeat that differs answers
//!   400 `Refund reference <ref> already exists`.
//! - The response echoes `refundReference` as sent (the docs' example shows
//!   a `-00` suffix nobody explains) and `refundedAmount` as sent, as the string
//!   Optty's schema declares (its example shows a number; the facade reads both).
//! - The token endpoint, on `auth.optty.com` in real life, is served by the
//!   same server at `/token`.
//! - An empty request body reads as `{}` (as Express' body parser does), so
//!   it fails validation rather than JSON parsing.
//!
//! # Transaction Details: reading an order's refunds
//!
//! `POST /orders/{merchantReference}/details` ([`DETAILS_PATH`],
//! `optty_api::operations::get_transaction_details`, authored in
//! `specs/optty/details.openapi.json`) answers the order from the same ledger as the refund
//! route, with the same bearer tokens. No body, or any JSON body (`{}`), is accepted and
//! ignored (the page documents none); a body that is not JSON answers 400 as the refund route
//! does. The optional `merchantId` query parameter (for "Grand Parent/Parent" accounts) is
//! accepted and ignored: the sandbox has one merchant. The answer, in the field order of the
//! page's sample: `merchantReference` (the order id), `status` `SUCCESSFUL`, `amount` (the
//! authorized amount, a string as in the sample), `currency`, `provider` ([`BNPL_PROVIDER`]),
//! `updatedAt`, `failureReason` `null`, `bnplOrderId` and `transactionReference` (stable
//! per order), `transactionHistory[]` (the order's payment, `SUCCESSFUL`), `refunds[]` and
//! `orderCaptures[]` (the captured amount, as a string). Each recorded refund that the read
//! delay lets through ([`crate::SandboxConfig::read_delay`]), oldest first:
//! `{refundId, amount, currency, status, createdAt, refundReason, refundFailureReason}` with
//! `amount` a string in major units, `createdAt` RFC 3339 with milliseconds, `refundReason`
//! the request's `refundDescription`, and `status` `SUCCESSFUL`, `PENDING`, or `FAILED` for a
//! refund settled as failed through the admin API ([`FAILURE_REASON`] then in
//! `refundFailureReason`, empty otherwise, as in the sample). Refunds made before the order was
//! seeded are not listed (the sandbox knows only their total).
//!
//! **Decision: `refundId` is the client's `refundReference`.** Optty documents `refundId` only
//! as "the unique generated refund Id" (its one sample shows the order reference there; see
//! `shared/provider-docs/reads.md`, open question 1). The sandbox writes the merchant's
//! `refundReference`, the one key a client that lost the refund's answer still has; the facade
//! matches `refundId` against the refund reference or the `bnplRefundId` it was given, so it
//! finds the refund either way.
//!
//! An unknown order answers 404 `{"statusCode":404,"message":"Not Found"}` as the refund route
//! does; no token, or an unknown or expired one, answers the page's 401 sample
//! ([`DETAILS_UNAUTHORIZED`]). Faults injected on [`crate::Operation::Read`] apply here.
//!
//! # Notifications
//!
//! On every status change of a refund, when recorded (`PENDING` or `SUCCESSFUL`, a replay
//! changes nothing) and when settled through the admin API (`SUCCESSFUL` or `FAILED`), the
//! server POSTs a notification to the URL of [`NotifySettings::url`] (`--optty-notify-url`,
//! `PATCH /__admin/notifications`, [`OpttyServer::set_notify_settings`]); none without one.
//! The body has the shape of `OrderNotification` (`specs/optty/notifications.openapi.json`),
//! `{"event", "data"}`, with what we chose where the pages are silent (reads.md, open
//! question 3):
//!
//! ```json
//! {"event": "ORDER_STATUS_UPDATE",
//!  "data": {"type": "REFUND", "merchantReference": "ORD-1", "refundId": "RF-1",
//!           "transactionId": "RF-1", "bnplRefundId": "<uuid>", "status": "SUCCESSFUL",
//!           "amount": "10.00", "currency": "AUD", "refundFailureReason": ""}}
//! ```
//!
//! `event` is [`NotifySettings::event`] (default [`DEFAULT_NOTIFY_EVENT`], an event the pages
//! name; the README's `REFUND_CALLBACK` could not be verified, so it is configurable);
//! `refundId` and `transactionId` are the refund's `refundId` in Transaction Details (the
//! client's `refundReference`), `bnplRefundId` the refund answer's, `status` the refund's as
//! Transaction Details writes it. Unsigned: Optty documents no signature, so a receiver should
//! treat a notification as a hint to read Transaction Details. Delivery never holds up the
//! refund's answer or the settlement: notifications go out one at a time, in the order of the
//! changes, from a task of their own; one answered with anything but 2xx (or not answered within
//! 5 s) is sent again after [`NotifySettings::backoff`], doubling each time, at most
//! [`NotifySettings::retries`] times. Each notification and its attempts are kept for tests
//! ([`OpttyServer::notifications`], `GET /__admin/notifications`, the newest 1000).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::by_order::ByOrder;
use crate::wire::Value;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::admin::{self, body_json, member, object, only_fields, whole};
use crate::fault::{Operation, answer_unaltered};
use crate::response::{json, json_bytes};
use crate::room::{EnvVar, Room, SentRefund, SpecRoute, json_text};
use crate::schema::{Problem, RequestSchema, Violation, either};
use crate::server::{
    self, Drawn, DuplicateKey, Listen, MediaType, ProviderHandle, Routes, Surface, draw_fault,
    run_read, run_refund,
};
use crate::shared::{AdminError, RoomBook, Shared};
use crate::state::{
    Order, OrderSeed, OrderState, RecordedRefund, RefundStatus, Units, lock, now_rfc3339,
};
use crate::{clock, money, wire};

/// The demo `client_id` for `POST /token`.
pub const CLIENT_ID: &str = "sandbox-optty-client";

/// The demo `client_secret` for `POST /token`.
pub const CLIENT_SECRET: &str = "sandbox-optty-secret";

/// The `bnplProvider` every sandbox refund reports.
pub const BNPL_PROVIDER: &str = "KLARNA_AU";

/// The only scope Optty issues.
pub const SCOPE: &str = "api-user";

/// The refund route as Optty's spec names it.
pub const REFUND_PATH: &str = optty_api::operations::refunds_controller_refund_order::PATH;

/// Transaction Details as Optty's spec names it
/// (`optty_api::operations::get_transaction_details::PATH`).
pub const DETAILS_PATH: &str = optty_api::operations::get_transaction_details::PATH;

/// Transaction Details' 401 message, from the page's "Sample Failure Response".
pub const DETAILS_UNAUTHORIZED: &str = "You are not authorized to view this transaction...!";

/// `refundFailureReason` of a refund settled as failed (the sandbox's wording: Optty publishes
/// no failed-refund example).
pub const FAILURE_REASON: &str = "The refund was declined by the BNPL provider";

/// The lifetime of the tokens issued unless the settings say otherwise: Optty's `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The notifications' `event` unless the settings say otherwise: one of the two events Optty's
/// pages name.
pub const DEFAULT_NOTIFY_EVENT: &str = "ORDER_STATUS_UPDATE";

/// How often a notification not answered 2xx is sent again, unless the settings say otherwise.
pub const DEFAULT_NOTIFY_RETRIES: u32 = 3;

/// The wait before the first resend, unless the settings say otherwise (doubling after it).
pub const DEFAULT_NOTIFY_BACKOFF: Duration = Duration::from_millis(100);

/// The most resends the settings accept.
pub const MAX_NOTIFY_RETRIES: u32 = 10;

/// The longest first backoff the settings accept (60 s).
pub const MAX_NOTIFY_BACKOFF_MS: u64 = 60_000;

/// How many notifications [`OpttyServer::notifications`] keeps (the oldest are dropped).
pub const NOTIFICATION_LOG_CAPACITY: usize = 1000;

/// Where and how refund notifications go (see the module's "Notifications").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The URL notifications are POSTed to (`http` or `https`); `None` (default): none sent.
    pub url: Option<String>,
    /// The `event` they carry (default [`DEFAULT_NOTIFY_EVENT`]).
    pub event: String,
    /// How many times one not answered 2xx is sent again (default [`DEFAULT_NOTIFY_RETRIES`]).
    pub retries: u32,
    /// The wait before the first resend, doubling for each next one (default
    /// [`DEFAULT_NOTIFY_BACKOFF`]).
    pub backoff: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            url: None,
            event: DEFAULT_NOTIFY_EVENT.to_owned(),
            retries: DEFAULT_NOTIFY_RETRIES,
            backoff: DEFAULT_NOTIFY_BACKOFF,
        }
    }
}

/// Optty's settings ([`crate::SandboxConfig::optty`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A fixed port, taking precedence over [`crate::SandboxConfig::port_base`].
    pub port: Option<u16>,
    /// The normalized OpenAPI document whose request body schema the refund route enforces
    /// (default `optty_api::NORMALIZED_OPENAPI`); one without the route's operation, or whose
    /// schema does not compile, fails [`crate::Sandbox::start`].
    pub spec: Cow<'static, str>,
    /// Lifetime of the tokens issued (default [`DEFAULT_TOKEN_LIFETIME`]).
    pub token_lifetime: Duration,
    /// Refund notifications (default: none sent).
    pub notify: NotifySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: None,
            spec: Cow::Borrowed(optty_api::NORMALIZED_OPENAPI),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            notify: NotifySettings::default(),
        }
    }
}

impl Settings {
    /// The settings as `sandbox --print-config json` reports them.
    pub fn report(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            (
                "optty_token_lifetime_s",
                self.token_lifetime.as_secs().into(),
            ),
            ("optty_notify_url", self.notify.url.clone().into()),
            ("optty_notify_event", self.notify.event.clone().into()),
            ("optty_notify_retries", self.notify.retries.into()),
            (
                "optty_notify_backoff_ms",
                millis(self.notify.backoff).into(),
            ),
        ]
    }
}

/// Whole milliseconds of `d`.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Optty's flags of the `sandbox` binary.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Optty")]
// No argument group: each room's `Flags` would claim the same group name.
#[group(skip)]
pub struct Flags {
    /// Optty's port (overrides --port-base for Optty).
    #[arg(long, value_name = "PORT")]
    pub optty_port: Option<u16>,

    /// Lifetime of Optty access tokens, also their expires_in.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TOKEN_LIFETIME.as_secs())]
    pub optty_token_lifetime: u64,

    /// Where Optty's refund notifications are POSTed, on every status change of a refund
    /// (recorded, settled); none are sent without it [default: none]
    #[arg(long, value_name = "URL", value_parser = notify_url)]
    pub optty_notify_url: Option<String>,

    /// The event Optty's notifications carry.
    #[arg(long, value_name = "EVENT", default_value = DEFAULT_NOTIFY_EVENT)]
    pub optty_notify_event: String,

    /// How often an Optty notification not answered 2xx is sent again.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_NOTIFY_RETRIES,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_NOTIFY_RETRIES)))]
    pub optty_notify_retries: u32,

    /// The wait before an Optty notification's first resend, doubling for each next one.
    #[arg(long, value_name = "MS", default_value_t = millis(DEFAULT_NOTIFY_BACKOFF),
          value_parser = clap::value_parser!(u64).range(0..=MAX_NOTIFY_BACKOFF_MS))]
    pub optty_notify_backoff_ms: u64,
}

/// An `http` or `https` URL, for `--optty-notify-url`.
fn notify_url(text: &str) -> Result<String, String> {
    check_notify_url(text).map(|()| text.to_owned())
}

/// Whether `text` is an absolute `http` or `https` URL.
fn check_notify_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("must be an http or https URL, not {other}")),
    }
}

impl Flags {
    /// Sets what the flags say in `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.port = self.optty_port;
        settings.token_lifetime = Duration::from_secs(self.optty_token_lifetime);
        settings.notify = NotifySettings {
            url: self.optty_notify_url.clone(),
            event: self.optty_notify_event.clone(),
            retries: self.optty_notify_retries,
            backoff: Duration::from_millis(self.optty_notify_backoff_ms),
        };
    }
}

/// The Optty sandbox. Dereferences to [`ProviderHandle`] for orders and
/// faults.
#[derive(Debug)]
pub struct OpttyServer {
    handle: ProviderHandle,
    state: Arc<OpttyState>,
}

impl Deref for OpttyServer {
    type Target = ProviderHandle;

    fn deref(&self) -> &ProviderHandle {
        &self.handle
    }
}

impl OpttyServer {
    /// `base_url() + "/token"`, where client-credentials tokens are issued.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.handle.base_url())
    }

    /// Makes every token issued so far invalid (401 on next use).
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Sets the lifetime of tokens issued from now on (default 86400 s; zero
    /// issues tokens that are already expired). Also reported as
    /// `expires_in`, in whole seconds.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state.lifetime) = lifetime;
    }

    /// `base_url() + "/orders/{order}/details"`: the order's Transaction Details.
    pub fn details_url(&self, order: &str) -> String {
        format!("{}/orders/{order}/details", self.handle.base_url())
    }

    /// Where and how refund notifications go now. `GET /__admin/notifications`.
    pub fn notify_settings(&self) -> NotifySettings {
        self.state.notifier.settings()
    }

    /// Sets where and how refund notifications go, from the next status change on (a
    /// notification already queued keeps its URL). `PATCH /__admin/notifications`.
    ///
    /// # Panics
    /// If the URL is not an `http` or `https` URL, or the retries or backoff exceed
    /// [`MAX_NOTIFY_RETRIES`] and [`MAX_NOTIFY_BACKOFF_MS`] (a bug in the test).
    pub fn set_notify_settings(&self, settings: NotifySettings) {
        if let Err(e) = self.state.notifier.set(settings) {
            panic!("{e}");
        }
    }

    /// Sends notifications to `url` from the next status change on (none for `None`), the
    /// other notification settings unchanged.
    pub fn set_notify_url(&self, url: Option<&str>) {
        self.set_notify_settings(NotifySettings {
            url: url.map(str::to_owned),
            ..self.notify_settings()
        });
    }

    /// Every notification queued since the start (or the last clear), oldest first, with its
    /// attempts so far (the newest [`NOTIFICATION_LOG_CAPACITY`]).
    /// `GET /__admin/notifications`.
    pub fn notifications(&self) -> Vec<Notification> {
        self.state.notifier.log()
    }

    /// Forgets the notifications kept (those still being delivered go on); returns how many
    /// there were. `DELETE /__admin/notifications`.
    pub fn clear_notifications(&self) -> usize {
        self.state.notifier.clear()
    }

    /// Sets what new refunds on an order answer (`SUCCESSFUL` or `PENDING`).
    /// `false` when the order does not exist.
    pub fn set_refund_status(&self, order_id: &str, status: RefundStatus) -> bool {
        let mut store = lock(&self.handle.shared().store);
        match store.orders.get_mut(order_id) {
            Some(order) => {
                order.seed.refund_status = status;
                true
            }
            None => false,
        }
    }
}

impl Room for OpttyServer {
    fn handle(&self) -> &ProviderHandle {
        &self.handle
    }

    fn title(&self) -> &'static str {
        "Optty"
    }

    fn refund_path(&self) -> &'static str {
        REFUND_PATH
    }

    fn read_routes(&self) -> &'static [SpecRoute] {
        use optty_api::operations::get_transaction_details as details;
        &[SpecRoute {
            method: details::METHOD,
            path: details::PATH,
        }]
    }

    fn credentials(&self) -> serde_json::Value {
        serde_json::json!({
            "token_url": self.token_url(),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": SCOPE,
        })
    }

    fn credentials_text(&self) -> String {
        format!("client_id={CLIENT_ID} client_secret={CLIENT_SECRET}")
    }

    fn example(&self) -> String {
        let url = self.handle.base_url();
        format!(
            r#"# Optty: token, then refund
TOKEN=$(curl -s {url}/token -d client_id={CLIENT_ID} -d client_secret={CLIENT_SECRET} -d grant_type=client_credentials -d scope={SCOPE} | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -s {url}/orders/ORD-1001/refund -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{{"refundReference":"demo-1","refundAmount":{{"amount":10.00,"currency":"AUD"}},"refundDescription":"Demo refund"}}'
# Optty: read it back (Transaction Details)
curl -s -X POST {url}/orders/ORD-1001/details -H "Authorization: Bearer $TOKEN""#
        )
    }

    fn demo_orders(&self) -> Vec<OrderSeed> {
        vec![
            OrderSeed::new("ORD-1001", "AUD", Decimal::new(10000, 2)),
            OrderSeed::new("ORD-1002", "AUD", Decimal::new(10000, 2))
                .refunded(Decimal::new(7502, 2)),
            OrderSeed::new("ORD-1003", "AUD", Decimal::new(5000, 2))
                .refund_status(RefundStatus::Pending),
        ]
    }

    fn facade_env(&self) -> &'static [EnvVar] {
        FACADE_ENV
    }

    fn send_example_refund<'a>(
        &'a self,
        client: &'a reqwest::Client,
        order_id: &'a str,
        currency: &'a str,
        reference: &'a str,
    ) -> SentRefund<'a> {
        Box::pin(async move {
            let token: serde_json::Value = client
                .post(self.token_url())
                .form(&[
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPE),
                ])
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let token = token["access_token"].as_str().unwrap_or_default();
            // The amount as the docs write it, a JSON number with its decimals (never f64).
            let (reference, currency) = (json_text(reference), json_text(currency));
            let body = format!(
                r#"{{"refundReference":{reference},"refundAmount":{{"amount":1.00,"currency":{currency}}},"refundDescription":"Example refund"}}"#
            );
            client
                .post(format!(
                    "{}/orders/{order_id}/refund",
                    self.handle.base_url()
                ))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        })
    }
}

/// The facade's Optty variables: the token endpoint is served by the same server.
const FACADE_ENV: &[EnvVar] = &[
    ("REFUNDS_OPTTY_BASE_URL", |h| h.base_url()),
    ("REFUNDS_OPTTY_AUTH_URL", |h| h.base_url()),
    ("REFUNDS_OPTTY_CLIENT_ID", |_| CLIENT_ID.to_owned()),
    ("REFUNDS_OPTTY_CLIENT_SECRET", |_| CLIENT_SECRET.to_owned()),
];

#[derive(Debug)]
struct OpttyState {
    shared: Arc<Shared>,
    schema: RequestSchema,
    book: Arc<Book>,
    notifier: Arc<Notifier>,
    tokens: Mutex<HashMap<String, Instant>>,
    lifetime: Mutex<Duration>,
}

/// A refund kept under its `refundReference`, which is unique per merchant.
#[derive(Debug, Clone)]
struct Replay {
    /// The order, amount and currency: what must match for a repeat to be a replay.
    fingerprint: String,
    /// The original response body, answered again to a replay.
    body: Vec<u8>,
    /// The request's `refundDescription`: Transaction Details' `refundReason`.
    description: String,
}

/// What Optty keeps beside the orders: its refunds by `refundReference`, and the notifier a
/// settlement tells.
#[derive(Debug)]
struct Book {
    replays: Mutex<ByOrder<Replay>>,
    notifier: Arc<Notifier>,
}

impl RoomBook for Book {
    fn forget(&self, order_id: &str) {
        lock(&self.replays).forget_order(order_id);
    }

    fn forget_all(&self) {
        lock(&self.replays).clear();
    }

    fn settled(&self, order: &OrderState, refund: &RecordedRefund) {
        self.notifier.notify(order, refund);
    }
}

/// The refund route, as the router names it.
const REFUND_ROUTE: &str = "/orders/{order_reference}/refund";

/// Transaction Details, as the router names it.
const DETAILS_ROUTE: &str = "/orders/{merchant_reference}/details";

/// The request body schema of the refund route in `settings.spec`; errors name the provider
/// as `name`.
pub(crate) fn request_schema(
    name: &'static str,
    settings: &Settings,
) -> std::io::Result<RequestSchema> {
    RequestSchema::for_route(name, &settings.spec, "post", REFUND_ROUTE)
}

pub(crate) async fn start(
    name: &'static str,
    listen: Listen,
    schema: RequestSchema,
    settings: &Settings,
) -> std::io::Result<OpttyServer> {
    let notifier = Notifier::start(settings.notify.clone())?;
    let book = Arc::new(Book {
        replays: Mutex::new(ByOrder::default()),
        notifier: Arc::clone(&notifier),
    });
    let shared = Shared::new(name, Units::Major, Arc::clone(&book) as Arc<dyn RoomBook>);
    let state = Arc::new(OpttyState {
        shared: Arc::clone(&shared),
        schema,
        book,
        notifier: Arc::clone(&notifier),
        tokens: Mutex::new(HashMap::new()),
        lifetime: Mutex::new(settings.token_lifetime),
    });
    let routes = Routes::new()
        .post("/token", MediaType::Form, token, Arc::clone(&state))
        .post(REFUND_ROUTE, MediaType::Json, refund, Arc::clone(&state))
        .post(DETAILS_ROUTE, MediaType::Json, details, Arc::clone(&state));
    let surface = Surface {
        routes,
        duplicate_key: DuplicateKey::BodyField("refundReference"),
        // NestJS answers an unknown route `{"statusCode":404,"message":"Cannot
        // POST /x","error":"Not Found"}`; the other router-level answers take
        // the same shape with their status' reason phrase.
        reject: Arc::new(|r, method, uri| {
            let status = r.status();
            error(status, &r.message(method, uri), status.canonical_reason())
        }),
        admin: Some(notification_routes(notifier)),
    };
    let handle = server::serve(listen, shared, surface).await?;
    Ok(OpttyServer { handle, state })
}

/// `{statusCode, message, error?}` in NestJS' field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status_code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn error(status: StatusCode, message: &str, error: Option<&str>) -> Response {
    json(
        status,
        &ErrorBody {
            status_code: status.as_u16(),
            message,
            error,
        },
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message, Some("Bad Request"))
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "Unauthorized", None)
}

/// [`crate::Fault::Status`]: the documented 500 body, and the same shape with the
/// status' reason phrase for any other code.
fn status_fault(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        "Internal server error"
    } else {
        status.canonical_reason().unwrap_or("Error")
    };
    error(status, message, None)
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    token_type: &'static str,
    scope: &'static str,
}

async fn token(State(st): State<Arc<OpttyState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(_) => return bad_request("Invalid form body"),
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return unauthorized();
    }
    if field("grant_type") != Some("client_credentials") {
        return bad_request("grant_type must be client_credentials");
    }
    if field("scope").is_some_and(|s| s != SCOPE) {
        return bad_request("scope must be api-user");
    }
    let lifetime = *lock(&st.lifetime);
    let access_token = format!("sbx-optty.{}", uuid::Uuid::new_v4().simple());
    lock(&st.tokens).insert(access_token.clone(), Instant::now() + lifetime);
    json(
        StatusCode::OK,
        &TokenResponse {
            access_token,
            expires_in: lifetime.as_secs(),
            token_type: "Bearer",
            scope: SCOPE,
        },
    )
}

fn authorized(st: &OpttyState, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let now = Instant::now();
    let mut tokens = lock(&st.tokens);
    tokens.retain(|_, expires| *expires > now);
    tokens.contains_key(token.trim())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundResponse {
    refund_reference: String,
    bnpl_provider: &'static str,
    /// The published schema's `type: string` (the docs' example shows a number; the facade
    /// reads both, and the sandbox answers as the schema says, so schemathesis holds it to it).
    #[serde(serialize_with = "decimal_text")]
    refunded_amount: Decimal,
    refund_status: &'static str,
    description: Value,
    refund_date: String,
    bnpl_refund_id: String,
}

fn decimal_text<S: serde::Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

async fn refund(
    State(st): State<Arc<OpttyState>>,
    Path(order_reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match draw_fault(
        &st.shared,
        Operation::Refund,
        &[&order_reference],
        status_fault,
    ) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_refund(fault, answer_unaltered, async move {
        handle(&st, &order_reference, &headers, &body)
    })
    .await
}

/// JavaScript's `JSON.parse` message for a body serde_json refused, as
/// Optty (a Node service) answers it.
fn js_parse_message(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "Unexpected end of JSON input".into();
    }
    let pos = wire::offset_of(body, e.line(), e.column());
    match std::str::from_utf8(&body[pos..])
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => format!("Unexpected token {c} in JSON at position {pos}"),
        None => "Unexpected end of JSON input".into(),
    }
}

struct Request {
    reference: String,
    amount: Decimal,
    currency: String,
    description: String,
}

/// A schema violation in class-validator's words (NestJS' `ValidationPipe`, as Optty answers
/// them), naming the field by its path (`refundAmount.amount`).
fn describe(v: &Violation) -> String {
    let field = v.field.dotted();
    if v.field.is_root() && matches!(v.problem, Problem::Type(_)) {
        return "The request body must be a JSON object".into();
    }
    let what = match &v.problem {
        Problem::Required => return format!("{field} should not be empty"),
        Problem::NotAllowed => return format!("property {field} should not exist"),
        Problem::Type(types) => match types.as_slice() {
            ["string"] => "must be a string".to_owned(),
            ["number"] => "must be a number conforming to the specified constraints".to_owned(),
            ["integer"] => "must be an integer number".to_owned(),
            ["boolean"] => "must be a boolean value".to_owned(),
            ["object"] => "must be an object".to_owned(),
            ["array"] => "must be an array".to_owned(),
            types => format!("must be a {}", either(types)),
        },
        Problem::MaxLength(n) => format!("must be shorter than or equal to {n} characters"),
        Problem::MinLength(n) => format!("must be longer than or equal to {n} characters"),
        Problem::MaxItems(n) => format!("must contain no more than {n} elements"),
        Problem::MinItems(n) => format!("must contain at least {n} elements"),
        Problem::Enum(options) => {
            format!(
                "must be one of the following values: {}",
                options.join(", ")
            )
        }
        Problem::Maximum {
            limit,
            exclusive: false,
        } => format!("must not be greater than {limit}"),
        Problem::Maximum {
            limit,
            exclusive: true,
        } => format!("must be less than {limit}"),
        Problem::Minimum {
            limit,
            exclusive: false,
        } => format!("must not be less than {limit}"),
        Problem::Minimum {
            limit,
            exclusive: true,
        } => format!("must be greater than {limit}"),
        Problem::Pattern(pattern) => format!("must match {pattern} regular expression"),
        Problem::MultipleOf(step) => format!("must be a multiple of {step}"),
        Problem::Format(format) => format!("must be a valid {format}"),
        Problem::Other(message) => format!("is invalid: {message}"),
    };
    format!("{field} {what}")
}

/// The values the refund needs from a body that conforms to the schema, with the rules the
/// schema does not state.
fn read(v: &Value) -> Result<Request, String> {
    // Optty's `@IsNotEmpty()`: the reference is the refund's duplicate key, so a blank one is
    // refused though the schema sets no `minLength`.
    let reference = match v["refundReference"].as_str() {
        Some(s) if !s.trim().is_empty() => s.to_owned(),
        _ => return Err("refundReference should not be empty".into()),
    };
    // Exact, on the number as sent: the description's "positive" (the schema's `minimum` is 0),
    // and an amount f64 would misread (`-1e-400` reads as -0, which `minimum: 0` lets through)
    // or that no `Decimal` holds.
    let amount = wire::decimal(&v["refundAmount"]["amount"])
        .filter(|a| *a > Decimal::ZERO)
        .ok_or("refundAmount.amount must be a positive number")?;
    let currency = v["refundAmount"]["currency"]
        .as_str()
        .ok_or("refundAmount.currency must be a string")?
        .to_owned();
    // Required by the schema; kept for Transaction Details' `refundReason`.
    let description = v["refundDescription"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Request {
        reference,
        amount,
        currency,
        description,
    })
}

fn handle(st: &OpttyState, order_reference: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    if !authorized(st, headers) {
        return unauthorized();
    }
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(crate::wire::Map::new()))
    } else {
        crate::wire::from_slice(body)
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => return bad_request(&js_parse_message(body, &e)),
    };
    if let Some(violation) = st.schema.violations(&value).first() {
        return bad_request(&describe(violation));
    }
    let req = match read(&value) {
        Ok(req) => req,
        Err(message) => return bad_request(&message),
    };

    let mut store = lock(&st.shared.store);
    let fingerprint = format!(
        "{order_reference}\n{}\n{}",
        req.amount.normalize(),
        req.currency
    );
    if !store.orders.contains_key(order_reference) {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let mut replays = lock(&st.book.replays);
    if let Some(replay) = replays.get(&req.reference) {
        return if replay.fingerprint == fingerprint {
            json_bytes(StatusCode::OK, replay.body.clone())
        } else {
            bad_request(&format!(
                "Refund reference {} already exists",
                req.reference
            ))
        };
    }
    let Some(order) = store.orders.get_mut(order_reference) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let currency = order.state.currency.clone();
    if req.currency != currency {
        return bad_request(&format!(
            "Refund currency {} does not match the order currency {currency}",
            req.currency
        ));
    }
    let exp = money::exponent(&currency).unwrap_or(2);
    if req.amount.normalize().scale() > exp {
        return bad_request(&format!(
            "refundAmount.amount must have at most {exp} decimal places"
        ));
    }
    // The spec's `multipleOf` (Optty: "up to 2 decimal places"), again and exactly, read from
    // the spec the server runs: the schema judged an f64, and an f64 rounds a decimal with more
    // digits than it holds (`12345678901234.565` may read as a multiple of 0.01).
    if let Some(step) = st
        .schema
        .number_keyword(&["refundAmount", "amount"], "multipleOf")
        .filter(|step| !step.is_zero())
        && !(req.amount % step).is_zero()
    {
        return bad_request(&format!("refundAmount.amount must be a multiple of {step}"));
    }
    let refundable = order.state.refundable();
    if req.amount > refundable {
        let mut limit = refundable;
        limit.rescale(exp);
        return bad_request(&format!(
            "You can only refund amount up to {currency} {limit}"
        ));
    }
    let status = order.seed.refund_status;
    let refund_id = uuid::Uuid::new_v4().to_string();
    let recorded = RecordedRefund {
        id: refund_id.clone(),
        reference: Some(req.reference.clone()),
        amount: req.amount,
        status,
        created_at: now_rfc3339(),
    };
    order.record(recorded.clone());
    st.notifier.notify(&order.state, &recorded);
    let response = RefundResponse {
        refund_reference: req.reference.clone(),
        bnpl_provider: BNPL_PROVIDER,
        refunded_amount: req.amount,
        // Seeds refuse FAILED, so a new refund never is.
        refund_status: status_text(status),
        description: Value::Object(crate::wire::Map::new()),
        refund_date: clock::rfc1123(SystemTime::now()),
        bnpl_refund_id: refund_id,
    };
    let bytes = match serde_json::to_vec(&response) {
        Ok(bytes) => bytes,
        Err(_) => return status_fault(500),
    };
    replays.insert(
        req.reference,
        order_reference,
        Replay {
            fingerprint,
            body: bytes.clone(),
            description: req.description,
        },
    );
    json_bytes(StatusCode::OK, bytes)
}

/// A refund status as Optty writes it: `SUCCESSFUL`, `PENDING`, `FAILED`.
fn status_text(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Succeeded => "SUCCESSFUL",
        RefundStatus::Pending => "PENDING",
        RefundStatus::Failed => "FAILED",
    }
}

/// `amount` as Optty's reads write it: a string of major units with the currency's decimals.
fn amount_text(amount: Decimal, currency: &str) -> String {
    money::normalize(amount, money::exponent(currency).unwrap_or(2)).to_string()
}

// ---------------------------------------------------------------------------------------------
// Transaction Details (see the module's "Transaction Details").

/// The order's Transaction Details, in the field order of the page's sample.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    merchant_reference: String,
    status: &'static str,
    amount: String,
    currency: String,
    provider: &'static str,
    updated_at: String,
    failure_reason: Option<String>,
    bnpl_order_id: String,
    transaction_reference: String,
    transaction_history: Vec<HistoryEntry>,
    refunds: Vec<DetailsRefund>,
    order_captures: Vec<CaptureEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    transaction_id: String,
    status: &'static str,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailsRefund {
    refund_id: String,
    amount: String,
    currency: String,
    status: &'static str,
    created_at: String,
    refund_reason: String,
    refund_failure_reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptureEntry {
    capture_id: String,
    amount: String,
    status: &'static str,
    created_at: String,
}

/// A stable id of the order for `what`: the hex of a UUID v5, cut to `len`.
fn stable_id(what: &str, order_id: &str, len: usize) -> String {
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("optty-{what}:{order_id}").as_bytes(),
    );
    id.simple().to_string()[..len].to_owned()
}

/// The refund's `refundId` in reads and notifications: the client's `refundReference` (the
/// decision of the module's "Transaction Details"), else the refund's own id.
fn refund_id(refund: &RecordedRefund) -> &str {
    refund.reference.as_deref().unwrap_or(&refund.id)
}

fn details_body(order: &Order, read_delay: Duration, replays: &ByOrder<Replay>) -> Details {
    let s = &order.state;
    let created = clock::rfc3339_ms(order.created);
    let refunds = order
        .readable(read_delay)
        .into_iter()
        .map(|r| DetailsRefund {
            refund_id: refund_id(r.refund).to_owned(),
            amount: amount_text(r.refund.amount, &s.currency),
            currency: s.currency.clone(),
            status: status_text(r.refund.status),
            created_at: clock::rfc3339_ms(r.recorded_at),
            refund_reason: r
                .refund
                .reference
                .as_ref()
                .and_then(|reference| replays.get(reference))
                .map(|replay| replay.description.clone())
                .unwrap_or_default(),
            refund_failure_reason: match r.refund.status {
                RefundStatus::Failed => FAILURE_REASON.to_owned(),
                RefundStatus::Succeeded | RefundStatus::Pending => String::new(),
            },
        })
        .collect();
    let order_captures = if s.captured > Decimal::ZERO {
        vec![CaptureEntry {
            capture_id: format!("CAPTURE-{}", stable_id("capture", &s.id, 12)),
            amount: amount_text(s.captured, &s.currency),
            status: "SUCCESSFUL",
            created_at: created.clone(),
        }]
    } else {
        Vec::new()
    };
    Details {
        merchant_reference: s.id.clone(),
        status: "SUCCESSFUL",
        amount: amount_text(s.authorized, &s.currency),
        currency: s.currency.clone(),
        provider: BNPL_PROVIDER,
        updated_at: clock::rfc3339_ms(order.updated),
        failure_reason: None,
        bnpl_order_id: stable_id("bnpl-order", &s.id, 12),
        transaction_reference: stable_id("transaction-reference", &s.id, 10),
        transaction_history: vec![HistoryEntry {
            transaction_id: uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_URL,
                format!("optty-transaction:{}", s.id).as_bytes(),
            )
            .to_string(),
            status: "SUCCESSFUL",
            created_at: created,
        }],
        refunds,
        order_captures,
    }
}

/// Transaction Details (`POST /orders/{merchantReference}/details`).
async fn details(
    State(st): State<Arc<OpttyState>>,
    Path(merchant_reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match draw_fault(
        &st.shared,
        Operation::Read,
        &[&merchant_reference],
        status_fault,
    ) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_read(fault, async move {
        read_details(&st, &merchant_reference, &headers, &body)
    })
    .await
}

fn read_details(
    st: &OpttyState,
    merchant_reference: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if !authorized(st, headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            DETAILS_UNAUTHORIZED,
            Some("Unauthorized"),
        );
    }
    if !body.iter().all(u8::is_ascii_whitespace)
        && let Err(e) = crate::wire::from_slice(body)
    {
        return bad_request(&js_parse_message(body, &e));
    }
    let store = lock(&st.shared.store);
    let Some(order) = store.orders.get(merchant_reference) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let replays = lock(&st.book.replays);
    json(
        StatusCode::OK,
        &details_body(order, st.shared.read_delay(), &replays),
    )
}

// ---------------------------------------------------------------------------------------------
// Notifications (see the module's "Notifications").

/// How a notification's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Queued, or being sent (again).
    Pending,
    /// Answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    GaveUp,
}

/// One notification and its attempts, as [`OpttyServer::notifications`] and
/// `GET /__admin/notifications` list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// 1, 2, 3.. in the order of the status changes.
    pub seq: u64,
    /// Where it is sent (the URL set when the status changed).
    pub url: String,
    /// The body sent: `{"event", "data"}`.
    pub body: serde_json::Value,
    /// The HTTP status of each attempt so far, `None` where no answer came (refused
    /// connection, 5 s timeout).
    pub attempts: Vec<Option<u16>>,
    /// How its delivery stands.
    pub delivery: Delivery,
}

/// Queues notifications and delivers them, one at a time, from a task of its own.
#[derive(Debug)]
struct Notifier {
    settings: Mutex<NotifySettings>,
    log: Mutex<NotificationLog>,
    queue: mpsc::UnboundedSender<u64>,
}

#[derive(Debug, Default)]
struct NotificationLog {
    next_seq: u64,
    entries: VecDeque<Notification>,
}

impl Notifier {
    /// A notifier with `settings`, and its delivery task (which ends when the notifier goes).
    fn start(settings: NotifySettings) -> std::io::Result<Arc<Notifier>> {
        check_notify_settings(&settings)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let (queue, queued) = mpsc::unbounded_channel();
        let notifier = Arc::new(Notifier {
            settings: Mutex::new(settings),
            log: Mutex::new(NotificationLog::default()),
            queue,
        });
        tokio::spawn(deliver(Arc::downgrade(&notifier), queued));
        Ok(notifier)
    }

    fn settings(&self) -> NotifySettings {
        lock(&self.settings).clone()
    }

    fn set(&self, settings: NotifySettings) -> Result<(), AdminError> {
        check_notify_settings(&settings)?;
        *lock(&self.settings) = settings;
        Ok(())
    }

    fn log(&self) -> Vec<Notification> {
        lock(&self.log).entries.iter().cloned().collect()
    }

    fn clear(&self) -> usize {
        std::mem::take(&mut lock(&self.log).entries).len()
    }

    /// Queues the notification of `refund`'s status on `order`, if a URL is set.
    fn notify(&self, order: &OrderState, refund: &RecordedRefund) {
        let settings = self.settings();
        let Some(url) = settings.url else {
            return;
        };
        let body = serde_json::json!({
            "event": settings.event,
            "data": {
                "type": "REFUND",
                "merchantReference": order.id,
                "refundId": refund_id(refund),
                "transactionId": refund_id(refund),
                "bnplRefundId": refund.id,
                "status": status_text(refund.status),
                "amount": amount_text(refund.amount, &order.currency),
                "currency": order.currency,
                "refundFailureReason": match refund.status {
                    RefundStatus::Failed => FAILURE_REASON,
                    RefundStatus::Succeeded | RefundStatus::Pending => "",
                },
            },
        });
        let seq = {
            let mut log = lock(&self.log);
            log.next_seq += 1;
            let seq = log.next_seq;
            if log.entries.len() == NOTIFICATION_LOG_CAPACITY {
                log.entries.pop_front();
            }
            log.entries.push_back(Notification {
                seq,
                url,
                body,
                attempts: Vec::new(),
                delivery: Delivery::Pending,
            });
            seq
        };
        // The delivery task ends only with the notifier, so the queue is open.
        let _ = self.queue.send(seq);
    }

    /// The URL and body of notification `seq`, if it is still kept.
    fn outgoing(&self, seq: u64) -> Option<(String, serde_json::Value)> {
        lock(&self.log)
            .entries
            .iter()
            .find(|n| n.seq == seq)
            .map(|n| (n.url.clone(), n.body.clone()))
    }

    /// Notes an attempt's answer (and the delivery's state) on notification `seq`.
    fn attempted(&self, seq: u64, status: Option<u16>, delivery: Delivery) {
        if let Some(n) = lock(&self.log).entries.iter_mut().find(|n| n.seq == seq) {
            n.attempts.push(status);
            n.delivery = delivery;
        }
    }
}

/// The settings' limits, naming the field at fault as the admin API does.
fn check_notify_settings(settings: &NotifySettings) -> Result<(), AdminError> {
    if let Some(url) = &settings.url {
        check_notify_url(url).map_err(|e| AdminError::invalid("url", e))?;
    }
    if settings.retries > MAX_NOTIFY_RETRIES {
        return Err(AdminError::invalid(
            "retries",
            format!("must be a whole number from 0 to {MAX_NOTIFY_RETRIES}"),
        ));
    }
    if millis(settings.backoff) > MAX_NOTIFY_BACKOFF_MS {
        return Err(AdminError::invalid(
            "backoff_ms",
            format!("must be a whole number from 0 to {MAX_NOTIFY_BACKOFF_MS}"),
        ));
    }
    Ok(())
}

/// The delivery task: sends each queued notification until answered 2xx or out of retries,
/// one at a time, in order; ends when the notifier is gone.
async fn deliver(notifier: Weak<Notifier>, mut queued: mpsc::UnboundedReceiver<u64>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("optty notifications: no HTTP client: {e}");
            return;
        }
    };
    while let Some(seq) = queued.recv().await {
        let Some(notifier) = notifier.upgrade() else {
            return;
        };
        let Some((url, body)) = notifier.outgoing(seq) else {
            continue;
        };
        let NotifySettings {
            retries, backoff, ..
        } = notifier.settings();
        let mut wait = backoff;
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            let status = match client.post(&url).json(&body).send().await {
                Ok(res) => Some(res.status().as_u16()),
                Err(e) => {
                    tracing::warn!("optty notification {seq} to {url}: {e}");
                    None
                }
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let delivery = if delivered {
                Delivery::Delivered
            } else if attempt == retries {
                Delivery::GaveUp
            } else {
                Delivery::Pending
            };
            notifier.attempted(seq, status, delivery);
            if delivered {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Optty's own admin routes: `/__admin/notifications`.

/// `GET /__admin/notifications`: the settings and the notifications kept.
#[derive(Serialize)]
struct NotificationsView {
    url: Option<String>,
    event: String,
    retries: u32,
    backoff_ms: u64,
    notifications: Vec<Notification>,
}

fn view(notifier: &Notifier) -> NotificationsView {
    let settings = notifier.settings();
    NotificationsView {
        url: settings.url,
        event: settings.event,
        retries: settings.retries,
        backoff_ms: millis(settings.backoff),
        notifications: notifier.log(),
    }
}

fn notification_routes(notifier: Arc<Notifier>) -> Router {
    Router::new()
        .route(
            "/__admin/notifications",
            get(list_notifications)
                .patch(change_notifications)
                .delete(clear_notifications),
        )
        .with_state(notifier)
}

type Notifications = State<Arc<Notifier>>;

async fn list_notifications(State(notifier): Notifications) -> Response {
    json(StatusCode::OK, &view(&notifier))
}

/// `PATCH /__admin/notifications`: `{"url": "http://.." | null, "event", "retries",
/// "backoff_ms"}`, each optional; those given change.
async fn change_notifications(State(notifier): Notifications, body: Bytes) -> Response {
    let result = body_json(&body).and_then(|v| {
        let obj = object(&v, "body")?;
        only_fields(obj, &["url", "event", "retries", "backoff_ms"])?;
        let mut settings = notifier.settings();
        match obj.get("url") {
            None => {}
            Some(wire::Value::Null) => settings.url = None,
            Some(wire::Value::String(url)) => settings.url = Some(url.clone()),
            Some(_) => return Err(AdminError::invalid("url", "must be a string or null")),
        }
        if let Some(event) = member(obj, "event") {
            settings.event = event
                .as_str()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| AdminError::invalid("event", "must be a non-empty string"))?
                .to_owned();
        }
        if let Some(retries) = member(obj, "retries") {
            let n = whole(retries, "retries", 0, u64::from(MAX_NOTIFY_RETRIES))?;
            settings.retries = u32::try_from(n).unwrap_or(MAX_NOTIFY_RETRIES);
        }
        if let Some(ms) = member(obj, "backoff_ms") {
            settings.backoff =
                Duration::from_millis(whole(ms, "backoff_ms", 0, MAX_NOTIFY_BACKOFF_MS)?);
        }
        notifier.set(settings)?;
        Ok(view(&notifier))
    });
    match result {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => admin::error_response(&e),
    }
}

#[derive(Serialize)]
struct Removed {
    removed: usize,
}

async fn clear_notifications(State(notifier): Notifications) -> Response {
    json(
        StatusCode::OK,
        &Removed {
            removed: notifier.clear(),
        },
    )
}
