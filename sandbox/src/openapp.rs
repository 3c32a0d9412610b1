//! OpenApp: `POST /merchant/v1/orders/refund`, HMAC-signed requests and
//! responses, errors as named exceptions (`{"exception":..,"message":..}`).
//!
//! # Signatures
//!
//! ```text
//! authorization:   hmac v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>
//! x-app-signature: Base64(HMAC-SHA256(apiSecret,
//!                    "<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>$<Base64(SHA256(body))>"))
//! ```
//!
//! METHOD and PATH upper-cased, standard Base64 with padding, and with an
//! empty body the last element is empty. A request passes when the key is
//! known, METHOD and PATH are the request's own, the MAC matches (compared in
//! constant time), the timestamp is within [`DEFAULT_TIMESTAMP_WINDOW`] of
//! the sandbox's clock and the nonce (at most 64 characters) was never seen.
//! Anything else answers 401 `{"exception":"UnauthorizedException",..}`.
//!
//! Responses are signed "the same way" ([`RESPONSE_SIGNATURE_SCHEME`]): they
//! carry an `authorization` header with the request's METHOD and PATH, a
//! fresh epoch-ms and nonce, and an `x-app-signature` over the response
//! body. [`verify`] checks one; the facade's verifier works unchanged.
//!
//! ## Why a second implementation
//!
//! The facade signs and verifies with its own implementation
//! (`facade/src/providers/openapp/signing.rs`); the one here is kept apart on purpose, as an
//! independent oracle: the sandbox is a test tool for any client in any language and does not
//! depend on the facade, and a bug shared by one implementation used on both sides of the wire
//! would pass every end-to-end test. The two agree on every choice the scheme leaves open:
//! epoch milliseconds are `u64` (drift compared with `abs_diff`), the signature is trimmed of
//! surrounding whitespace before it is Base64-decoded, and an `authorization` header that does
//! not parse verifies nothing. Both are tested against the same published vectors, computed
//! outside the workspace with Python's standard library and OpenSSL (`facade/tests/it/signing.rs`
//! and `sandbox/tests/it/signing_vectors.rs`).
//!
//! # No read route
//!
//! OpenApp publishes no way to read a refund back and no refund notification
//! (`specs/openapp/READS.md`; its settlement report is the only record, and its format is not
//! public), so this room serves none: every other path answers 404 `NotFoundException`, and a
//! fault injected on [`crate::Operation::Read`] never fires here. The only read-back a client
//! has is resending the same `caseId`: 409 `RefundExistsException` says the refund was
//! registered. Its status stays in the admin API's ledger (`GET /__admin/refunds`), for tests.
//!
//! # Assumptions where the docs are silent (ours)
//!
//! - Success is 200 `{"caseId":"<caseId>","status":"REGISTERED"}`; the
//!   refund stays pending until [`crate::ProviderHandle::settle_refund`].
//! - The order is looked up by `oaOrderId` and its `shopOrderId` must match
//!   the seed's id, else `OrderNotFoundException`.
//! - Violations of the spec's request schema (required, maxLength, enum,
//!   types, unknown fields since `additionalProperties` is false, ...: every
//!   one, joined by `; `) and a currency other than the order's answer 400
//!   `ValidationException`; an `amount` of 0 is refused the same way (the
//!   schema allows it, a refund of nothing is no refund).
//! - `products[]` is validated against the schema but its amounts are not
//!   summed against `amount`.
//! - `RefundTooMuchException` is for exceeding the order's captured minus
//!   refunded amount; the merchant's wallet balance is not modelled (OpenApp
//!   accepts refunds beyond it and holds them).

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::wire::Value;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fault::{Fault, Operation};
use crate::response::{json, json_bytes};
use crate::room::{EnvVar, Room, SentRefund, SpecRoute};
use crate::schema::{Problem, RequestSchema, Violation, a_type_of};
use crate::server::{
    self, Drawn, DuplicateKey, Listen, MediaType, ProviderHandle, Rejection, Routes, Surface,
    draw_fault, run_refund,
};
use crate::shared::{RoomBook, Shared};
use crate::state::{OrderSeed, RecordedRefund, RefundStatus, Units, lock, now_rfc3339};
use crate::{clock, money, wire};

type HmacSha256 = Hmac<Sha256>;

/// The demo API key (first element of the HMAC `authorization` header).
pub const API_KEY: &str = "b23a9fa61406440d868271d19d634906";

/// The demo API secret, the HMAC-SHA256 key.
pub const API_SECRET: &str = "sandbox-openapp-secret-0f4b1c2d";

/// The merchant the sandbox's credentials belong to. Orders seeded with another
/// [`OrderSeed::owner`] answer `MerchantOrderOwnershipException`.
pub const SANDBOX_MERCHANT: &str = "sandbox-merchant";

/// The refund route.
pub const REFUND_PATH: &str = openapp_api::operations::refund_order::PATH;

/// The docs' example refund, of the demo order: what `sandbox sign` signs unless given a body.
pub const DEMO_REFUND_BODY: &str = r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables.","products":[{"id":"id123","refundedQuantity":1,"amount":1999}]}"#;

/// The `authorization` header's prefix.
pub const AUTH_PREFIX: &str = "hmac v1$";

/// How far a request's timestamp may be from the sandbox's clock.
pub const DEFAULT_TIMESTAMP_WINDOW: Duration = Duration::from_secs(60);

/// The longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;

/// How the sandbox signs its responses: headers `authorization: hmac
/// v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>` (the request's METHOD
/// and PATH upper-cased, the response's own fresh epoch-ms and nonce) and
/// `x-app-signature: Base64(HMAC-SHA256(apiSecret,
/// "<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>$<Base64(SHA256(response
/// body))>"))`, empty last element for an empty body. Verify with
/// [`verify`]`(secret, authorization, body, signature)`.
pub const RESPONSE_SIGNATURE_SCHEME: &str = "authorization + x-app-signature over the response body, request METHOD and PATH, fresh epoch-ms and nonce";

/// The two headers that sign one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `authorization` header value.
    pub authorization: String,
    /// `x-app-signature` header value.
    pub signature: String,
}

/// `Base64(SHA256(body))`, empty for an empty body.
pub fn content_digest(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        STANDARD.encode(Sha256::digest(body))
    }
}

fn mac(secret: &str, elements: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => unreachable!("HMAC-SHA256 accepts any key length"),
    };
    mac.update(elements.as_bytes());
    mac.update(b"$");
    mac.update(content_digest(body).as_bytes());
    mac
}

/// Signs a request (or response) `body` sent with `method` to `path`;
/// `method` and `path` are upper-cased here.
pub fn sign(
    api_key: &str,
    api_secret: &str,
    method: &str,
    path: &str,
    epoch_ms: u64,
    nonce: &str,
    body: &[u8],
) -> Signature {
    let elements = format!(
        "{api_key}${}${}${epoch_ms}${nonce}",
        method.to_uppercase(),
        path.to_uppercase()
    );
    let tag = mac(api_secret, &elements, body).finalize().into_bytes();
    Signature {
        authorization: format!("{AUTH_PREFIX}{elements}"),
        signature: STANDARD.encode(tag),
    }
}

/// Checks `signature` against the `authorization` header and the exact
/// body, in constant time; `false` for a header that does not parse
/// ([`parse_authorization`]) or a signature that is not Base64 (surrounding
/// whitespace is not part of it, as the facade reads it). Only the MAC: the
/// key, method, path, timestamp and nonce are for the caller to compare.
pub fn verify(api_secret: &str, authorization: &str, body: &[u8], signature: &str) -> bool {
    if parse_authorization(authorization).is_none() {
        return false;
    }
    let Some(elements) = authorization.strip_prefix(AUTH_PREFIX) else {
        return false;
    };
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(api_secret, elements, body).verify_slice(&tag).is_ok()
}

/// The elements of an `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// API key.
    pub api_key: String,
    /// METHOD as written.
    pub method: String,
    /// PATH as written.
    pub path: String,
    /// Milliseconds since the Unix epoch.
    pub epoch_ms: u64,
    /// The nonce.
    pub nonce: String,
}

/// Splits `hmac v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>`.
pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let parts: Vec<&str> = header.strip_prefix(AUTH_PREFIX)?.split('$').collect();
    let [api_key, method, path, epoch, nonce] = parts.as_slice() else {
        return None;
    };
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Authorization {
        api_key: (*api_key).to_owned(),
        method: (*method).to_owned(),
        path: (*path).to_owned(),
        epoch_ms: epoch.parse().ok()?,
        nonce: (*nonce).to_owned(),
    })
}

/// How the sandbox signs responses, so a client's verification can be
/// tested (`--openapp-response-signing valid|tampered|absent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResponseSigning {
    /// Correct signatures.
    #[default]
    Valid,
    /// A signature over a different body (clients must reject it).
    Tampered,
    /// No signature headers.
    Absent,
}

impl ResponseSigning {
    /// `valid`, `tampered` or `absent`, as the flag takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseSigning::Valid => "valid",
            ResponseSigning::Tampered => "tampered",
            ResponseSigning::Absent => "absent",
        }
    }
}

/// OpenApp's settings ([`crate::SandboxConfig::openapp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A fixed port, taking precedence over [`crate::SandboxConfig::port_base`].
    pub port: Option<u16>,
    /// The normalized OpenAPI document whose request body schema the refund route enforces
    /// (default `openapp_api::NORMALIZED_OPENAPI`); one without the route's operation, or whose
    /// schema does not compile, fails [`crate::Sandbox::start`].
    pub spec: Cow<'static, str>,
    /// Allowed distance between a request's timestamp and the sandbox's clock (default
    /// [`DEFAULT_TIMESTAMP_WINDOW`]).
    pub timestamp_window: Duration,
    /// How answers are signed (default [`ResponseSigning::Valid`]).
    pub response_signing: ResponseSigning,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: None,
            spec: Cow::Borrowed(openapp_api::NORMALIZED_OPENAPI),
            timestamp_window: DEFAULT_TIMESTAMP_WINDOW,
            response_signing: ResponseSigning::Valid,
        }
    }
}

impl Settings {
    /// The settings as `sandbox --print-config json` reports them.
    pub fn report(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            (
                "openapp_timestamp_window_s",
                self.timestamp_window.as_secs().into(),
            ),
            (
                "openapp_response_signing",
                self.response_signing.as_str().into(),
            ),
        ]
    }
}

/// OpenApp's flags of the `sandbox` binary.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "OpenApp")]
// No argument group: each room's `Flags` would claim the same group name.
#[group(skip)]
pub struct Flags {
    /// OpenApp's port (overrides --port-base for OpenApp).
    #[arg(long, value_name = "PORT")]
    pub openapp_port: Option<u16>,

    /// How OpenApp signs its answers.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ResponseSigning::Valid)]
    pub openapp_response_signing: ResponseSigning,

    /// How far an OpenApp request's timestamp may be from the sandbox's
    /// clock.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMESTAMP_WINDOW.as_secs())]
    pub openapp_timestamp_window: u64,
}

impl Flags {
    /// Sets what the flags say in `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.port = self.openapp_port;
        settings.response_signing = self.openapp_response_signing;
        settings.timestamp_window = Duration::from_secs(self.openapp_timestamp_window);
    }
}

/// The order's `oaOrderId`: the seed's, or its id.
fn oa_order_id(seed: &OrderSeed) -> &str {
    seed.oa_order_id.as_deref().unwrap_or(&seed.id)
}

/// The merchant that owns the order: the seed's, or [`SANDBOX_MERCHANT`].
fn owner(seed: &OrderSeed) -> &str {
    seed.owner.as_deref().unwrap_or(SANDBOX_MERCHANT)
}

/// A curl command for the refund route at `base_url`, with `body` signed with the demo
/// credentials at `epoch_ms` and a fresh nonce: valid for the timestamp window, once.
pub fn curl_command(base_url: &str, body: &str, epoch_ms: u64) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let sig = sign(
        API_KEY,
        API_SECRET,
        "POST",
        REFUND_PATH,
        epoch_ms,
        &nonce,
        body.as_bytes(),
    );
    format!(
        "curl -s -i {base_url}{REFUND_PATH} -H 'Content-Type: application/json' -H '{}' -H '{}' --data-binary '{body}'",
        format_args!("authorization: {}", sig.authorization),
        format_args!("x-app-signature: {}", sig.signature),
    )
}

/// The OpenApp sandbox. Dereferences to [`ProviderHandle`].
#[derive(Debug)]
pub struct OpenAppServer {
    handle: ProviderHandle,
    state: Arc<OpenAppState>,
}

impl Deref for OpenAppServer {
    type Target = ProviderHandle;

    fn deref(&self) -> &ProviderHandle {
        &self.handle
    }
}

impl OpenAppServer {
    /// `base_url() + "/merchant/v1/orders/refund"`.
    pub fn refund_url(&self) -> String {
        format!("{}{REFUND_PATH}", self.handle.base_url())
    }

    /// Sets the sandbox's clock to run `ms` milliseconds ahead of the system
    /// clock (negative: behind), so a test can make fresh requests stale.
    pub fn set_clock_skew_ms(&self, ms: i64) {
        self.state.skew_ms.store(ms, Ordering::SeqCst);
    }

    /// Sets how far a request's timestamp may be from the sandbox's clock
    /// (default 60 s).
    pub fn set_timestamp_window(&self, window: Duration) {
        *lock(&self.state.window) = window;
    }

    /// The sandbox's clock, epoch milliseconds (system clock plus skew; 0
    /// if a negative skew reaches before the epoch).
    pub fn now_ms(&self) -> u64 {
        self.state.now_ms()
    }

    /// Makes every refund answer `MerchantWalletNotFoundException` (404)
    /// while `missing`.
    pub fn set_wallet_missing(&self, missing: bool) {
        self.state.wallet_missing.store(missing, Ordering::SeqCst);
    }

    /// Makes refunds on this order (by its seed id) answer `UserNotFoundException` (404)
    /// while `missing`, until the order is seeded again or removed. `false` when the order
    /// does not exist.
    pub fn set_user_missing(&self, order_id: &str, missing: bool) -> bool {
        let store = lock(&self.handle.shared().store);
        if !store.orders.contains_key(order_id) {
            return false;
        }
        let mut users_missing = lock(&self.state.book.users_missing);
        if missing {
            users_missing.insert(order_id.to_owned());
        } else {
            users_missing.remove(order_id);
        }
        true
    }

    /// Sets how responses are signed (default [`ResponseSigning::Valid`]).
    pub fn set_response_signing(&self, signing: ResponseSigning) {
        *lock(&self.state.signing) = signing;
    }

    /// Signs `body` for a refund request with the demo credentials, the
    /// sandbox's clock and a fresh nonce: the headers a client must send.
    pub fn sign_refund(&self, body: &[u8]) -> Signature {
        sign(
            API_KEY,
            API_SECRET,
            "POST",
            REFUND_PATH,
            self.now_ms(),
            &uuid::Uuid::new_v4().simple().to_string(),
            body,
        )
    }
}

impl Room for OpenAppServer {
    fn handle(&self) -> &ProviderHandle {
        &self.handle
    }

    fn title(&self) -> &'static str {
        "OpenApp"
    }

    fn refund_path(&self) -> &'static str {
        REFUND_PATH
    }

    /// None: OpenApp publishes no read (see the module's "No read route").
    fn read_routes(&self) -> &'static [SpecRoute] {
        &[]
    }

    fn credentials(&self) -> serde_json::Value {
        serde_json::json!({ "api_key": API_KEY, "api_secret": API_SECRET })
    }

    fn credentials_text(&self) -> String {
        format!("api key {API_KEY}, api secret {API_SECRET}")
    }

    fn example(&self) -> String {
        let url = self.handle.base_url();
        let window = lock(&self.state.window).as_secs();
        format!(
            "# OpenApp: signed, valid for {window} s and once (fresh one: cargo run -p sandbox -- sign --base-url {url})\n{}",
            curl_command(&url, DEMO_REFUND_BODY, self.now_ms())
        )
    }

    fn demo_orders(&self) -> Vec<OrderSeed> {
        vec![
            OrderSeed::new(
                "WS1213ASDZXC231A",
                "PLN",
                rust_decimal::Decimal::new(10000, 2),
            )
            .oa_order_id("OA12345678901234"),
        ]
    }

    fn facade_env(&self) -> &'static [EnvVar] {
        FACADE_ENV
    }

    /// OpenApp's own order id is taken to be the shop's (`order_id` for both).
    fn send_example_refund<'a>(
        &'a self,
        client: &'a reqwest::Client,
        order_id: &'a str,
        currency: &'a str,
        reference: &'a str,
    ) -> SentRefund<'a> {
        let body = serde_json::json!({
            "oaOrderId": order_id,
            "shopOrderId": order_id,
            "currency": currency,
            "amount": 100,
            "reason": "RETURNED",
            "caseId": reference,
        })
        .to_string();
        let signature = self.sign_refund(body.as_bytes());
        let request = client
            .post(self.refund_url())
            .header("authorization", signature.authorization)
            .header("x-app-signature", signature.signature)
            .header("content-type", "application/json")
            .body(body);
        Box::pin(request.send())
    }
}

/// The facade's OpenApp variables. `REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES` is always
/// `true`, whatever [`Settings::response_signing`] says: `tampered` and `absent` exist to check
/// that a client refuses an answer whose signature is wrong or missing, and turning
/// verification off would make that check pass without testing anything. It is exported
/// anyway (rather than left to the facade's default) so that an earlier `eval` of other
/// settings cannot leave it `false`. A test of a client with verification off sets it to
/// `false` after the `eval`.
const FACADE_ENV: &[EnvVar] = &[
    ("REFUNDS_OPENAPP_BASE_URL", |h| h.base_url()),
    ("REFUNDS_OPENAPP_API_KEY", |_| API_KEY.to_owned()),
    ("REFUNDS_OPENAPP_API_SECRET", |_| API_SECRET.to_owned()),
    ("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES", |_| {
        "true".to_owned()
    }),
];

#[derive(Debug)]
struct OpenAppState {
    shared: Arc<Shared>,
    schema: RequestSchema,
    book: Arc<Book>,
    nonces: Mutex<HashSet<String>>,
    skew_ms: AtomicI64,
    window: Mutex<Duration>,
    wallet_missing: AtomicBool,
    signing: Mutex<ResponseSigning>,
}

impl OpenAppState {
    fn now_ms(&self) -> u64 {
        let ms =
            clock::epoch_ms(SystemTime::now()).saturating_add(self.skew_ms.load(Ordering::SeqCst));
        u64::try_from(ms).unwrap_or(0)
    }
}

/// What OpenApp keeps beside the orders: the orders whose customer is gone, by seed id. It
/// also knows an order by its `oaOrderId`.
#[derive(Debug, Default)]
struct Book {
    users_missing: Mutex<HashSet<String>>,
}

impl RoomBook for Book {
    fn forget(&self, order_id: &str) {
        lock(&self.users_missing).remove(order_id);
    }

    fn forget_all(&self) {
        lock(&self.users_missing).clear();
    }

    fn alias<'a>(&self, seed: &'a OrderSeed) -> Option<&'a str> {
        seed.oa_order_id.as_deref()
    }
}

/// The request body schema of the refund route in `settings.spec`; errors name the provider
/// as `name`.
pub(crate) fn request_schema(
    name: &'static str,
    settings: &Settings,
) -> std::io::Result<RequestSchema> {
    RequestSchema::for_route(name, &settings.spec, "post", REFUND_PATH)
}

pub(crate) async fn start(
    name: &'static str,
    listen: Listen,
    schema: RequestSchema,
    settings: &Settings,
) -> std::io::Result<OpenAppServer> {
    let book = Arc::new(Book::default());
    let shared = Shared::new(
        name,
        Units::Hundredths,
        Arc::clone(&book) as Arc<dyn RoomBook>,
    );
    let state = Arc::new(OpenAppState {
        shared: Arc::clone(&shared),
        schema,
        book,
        nonces: Mutex::new(HashSet::new()),
        skew_ms: AtomicI64::new(0),
        window: Mutex::new(settings.timestamp_window),
        wallet_missing: AtomicBool::new(false),
        signing: Mutex::new(settings.response_signing),
    });
    let routes = Routes::new().post(REFUND_PATH, MediaType::Json, refund, Arc::clone(&state));
    let signer = Arc::clone(&state);
    let surface = Surface {
        routes,
        duplicate_key: DuplicateKey::BodyField("caseId"),
        // Named like the documented exceptions, and signed like every answer.
        reject: Arc::new(move |r, method, uri| {
            let name = match r {
                Rejection::NotFound => "NotFoundException",
                Rejection::MethodNotAllowed { .. } => "MethodNotAllowedException",
                Rejection::PayloadTooLarge { .. } => "PayloadTooLargeException",
                Rejection::UnsupportedMediaType { .. } => "UnsupportedMediaTypeException",
            };
            signed_exception(
                &signer,
                method,
                uri,
                r.status(),
                name,
                &r.message(method, uri),
            )
        }),
        admin: None,
    };
    let handle = server::serve(listen, shared, surface).await?;
    Ok(OpenAppServer { handle, state })
}

#[derive(Serialize)]
struct Exception<'a> {
    exception: &'a str,
    message: &'a str,
}

fn exception(status: StatusCode, exception: &str, message: &str) -> Response {
    json(status, &Exception { exception, message })
}

/// [`exception`], signed like every answer, for answers given without running the handler.
fn signed_exception(
    st: &OpenAppState,
    method: &Method,
    uri: &Uri,
    status: StatusCode,
    exception: &str,
    message: &str,
) -> Response {
    let body = serde_json::to_vec(&Exception { exception, message }).unwrap_or_default();
    let (parts, _) = json_bytes(status, body.clone()).into_parts();
    sign_parts(st, method, uri, parts, Bytes::from(body))
}

fn unauthorized(message: &str) -> Response {
    exception(StatusCode::UNAUTHORIZED, "UnauthorizedException", message)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies a request's signature headers; the error is the 401 message.
fn authenticate(
    st: &OpenAppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), &'static str> {
    let authorization = header(headers, "authorization").ok_or("Missing authorization header")?;
    let signature = header(headers, "x-app-signature").ok_or("Missing x-app-signature header")?;
    let auth = parse_authorization(authorization).ok_or("Malformed authorization header")?;
    if auth.api_key != API_KEY {
        return Err("Unknown API key");
    }
    if auth.method != method.as_str().to_uppercase() || auth.path != uri.path().to_uppercase() {
        return Err("Signed method or path does not match the request");
    }
    if auth.nonce.is_empty() || auth.nonce.chars().count() > MAX_NONCE_LEN {
        return Err("Invalid nonce");
    }
    if !verify(API_SECRET, authorization, body, signature) {
        return Err("Invalid signature");
    }
    let window = u64::try_from(lock(&st.window).as_millis()).unwrap_or(u64::MAX);
    if st.now_ms().abs_diff(auth.epoch_ms) > window {
        return Err("Request timestamp is outside the allowed window");
    }
    // Recorded only for requests that passed every other check, so a forger
    // cannot burn a legitimate client's nonces.
    if !lock(&st.nonces).insert(auth.nonce) {
        return Err("Nonce has already been used");
    }
    Ok(())
}

/// What [`ResponseSigning::Tampered`] and [`Fault::WrongSignature`] sign
/// instead of the real body.
const TAMPERED_BODY: &[u8] = b"{\"tampered\":true}";

/// OpenApp's hook for the faults whose effect is its own (the server applies the others):
/// [`Fault::UnsignedAnswer`] removes the signature headers of the (already signed) answer,
/// [`Fault::WrongSignature`] replaces its signature.
pub(crate) fn alter_answer(fault: &Fault, answer: &mut Response) {
    match fault {
        Fault::UnsignedAnswer => remove_signature(answer.headers_mut()),
        Fault::WrongSignature => tamper_signature(answer.headers_mut()),
        Fault::Latency(_)
        | Fault::Status(_)
        | Fault::DropAfterCommit
        | Fault::MalformedBody
        | Fault::NonJson502
        | Fault::StatusAfterCommit(_)
        | Fault::OversizedBody(_)
        | Fault::OversizedHeaders(_) => {}
    }
}

/// [`Fault::UnsignedAnswer`]: removes the signature headers.
fn remove_signature(headers: &mut HeaderMap) {
    headers.remove("authorization");
    headers.remove("x-app-signature");
}

/// [`Fault::WrongSignature`]: replaces a signed answer's `x-app-signature`
/// by a MAC under the same `authorization` elements but over another body.
/// Leaves answers without both signature headers (OpenApp's under
/// [`ResponseSigning::Absent`]) unchanged.
fn tamper_signature(headers: &mut HeaderMap) {
    if !headers.contains_key("x-app-signature") {
        return;
    }
    let Some(elements) = header(headers, "authorization").and_then(|a| a.strip_prefix(AUTH_PREFIX))
    else {
        return;
    };
    let tag = mac(API_SECRET, elements, TAMPERED_BODY)
        .finalize()
        .into_bytes();
    if let Ok(value) = HeaderValue::from_str(&STANDARD.encode(tag)) {
        headers.insert("x-app-signature", value);
    }
}

/// Adds the response signature headers.
async fn sign_response(st: &OpenAppState, method: &Method, uri: &Uri, res: Response) -> Response {
    let (parts, body) = res.into_parts();
    // Every body here is an in-memory buffer, so collecting cannot fail.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    sign_parts(st, method, uri, parts, bytes)
}

/// Signs a response whose body is `bytes` (per [`ResponseSigning`]).
fn sign_parts(
    st: &OpenAppState,
    method: &Method,
    uri: &Uri,
    mut parts: axum::http::response::Parts,
    bytes: Bytes,
) -> Response {
    let signing = *lock(&st.signing);
    if signing != ResponseSigning::Absent {
        let signed_over: &[u8] = if signing == ResponseSigning::Tampered {
            TAMPERED_BODY
        } else {
            &bytes
        };
        let sig = sign(
            API_KEY,
            API_SECRET,
            method.as_str(),
            uri.path(),
            st.now_ms(),
            &uuid::Uuid::new_v4().simple().to_string(),
            signed_over,
        );
        for (name, value) in [
            ("authorization", sig.authorization),
            ("x-app-signature", sig.signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                parts.headers.insert(name, value);
            }
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn refund(
    State(st): State<Arc<OpenAppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ids = order_ids(&body);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let status = |code| {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        signed_exception(
            &st,
            &method,
            &uri,
            status,
            "InternalServerErrorException",
            reason,
        )
    };
    let fault = match draw_fault(&st.shared, Operation::Refund, &ids, status) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_refund(fault, alter_answer, async move {
        let res = match authenticate(&st, &method, &uri, &headers, &body) {
            Ok(()) => handle(&st, &body),
            Err(message) => unauthorized(message),
        };
        sign_response(&st, &method, &uri, res).await
    })
    .await
}

/// `oaOrderId` and `shopOrderId` from a body, for fault matching before any
/// validation.
fn order_ids(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(obj)) = crate::wire::from_slice(body) else {
        return Vec::new();
    };
    ["oaOrderId", "shopOrderId"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

struct Request {
    oa_order_id: String,
    shop_order_id: String,
    currency: String,
    amount: i64,
    case_id: String,
}

/// A schema violation in the words of OpenApp's `ValidationException`, naming the field
/// (`products[0].id`).
fn describe(v: &Violation) -> String {
    if v.field.is_root() && matches!(v.problem, Problem::Type(_)) {
        return "The request body must be a JSON object".into();
    }
    let field = v.field.dotted();
    let what = match &v.problem {
        Problem::Required => "is required".to_owned(),
        Problem::NotAllowed => return format!("Unrecognized field \"{field}\""),
        Problem::Type(types) => format!("must be {}", a_type_of(types)),
        Problem::MaxLength(n) => format!("must be at most {n} characters"),
        Problem::MinLength(n) => format!("must be at least {n} characters"),
        Problem::MaxItems(n) => format!("must have at most {n} items"),
        Problem::MinItems(n) => format!("must have at least {n} items"),
        Problem::Enum(options) => format!("must be one of {}", options.join(", ")),
        Problem::Maximum {
            limit,
            exclusive: false,
        } => format!("must be at most {limit}"),
        Problem::Maximum {
            limit,
            exclusive: true,
        } => format!("must be less than {limit}"),
        Problem::Minimum {
            limit,
            exclusive: false,
        } => format!("must be at least {limit}"),
        Problem::Minimum {
            limit,
            exclusive: true,
        } => format!("must be greater than {limit}"),
        Problem::Pattern(pattern) => format!("must match {pattern}"),
        Problem::MultipleOf(step) => format!("must be a multiple of {step}"),
        Problem::Format(format) => format!("must be a valid {format}"),
        Problem::Other(message) => format!("is invalid: {message}"),
    };
    format!("{field} {what}")
}

/// The values the refund needs from a body that conforms to the schema, with the rules the
/// schema does not state.
fn read(v: &Value) -> Result<Request, String> {
    let text = |field: &str| v[field].as_str().unwrap_or_default().to_owned();
    // Exact, on the number as sent: draft 4 judged an f64 (or a u64) and takes `1e20` for an
    // integer; the amount must be an integer written as one that an i64 holds.
    let amount = wire::integer(&v["amount"]).ok_or("amount must be an integer")?;
    // The schema allows 0; a refund of nothing is no refund.
    if amount == 0 {
        return Err("amount must be greater than 0".into());
    }
    Ok(Request {
        oa_order_id: text("oaOrderId"),
        shop_order_id: text("shopOrderId"),
        currency: text("currency"),
        amount,
        case_id: text("caseId"),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered<'a> {
    case_id: &'a str,
    status: &'static str,
}

fn handle(st: &OpenAppState, body: &[u8]) -> Response {
    let value = match crate::wire::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return exception(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("Malformed JSON: {e}"),
            );
        }
    };
    let violations = st.schema.violations(&value);
    if !violations.is_empty() {
        let messages: Vec<String> = violations.iter().map(describe).collect();
        return exception(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &messages.join("; "),
        );
    }
    let req = match read(&value) {
        Ok(req) => req,
        Err(message) => {
            return exception(StatusCode::BAD_REQUEST, "ValidationException", &message);
        }
    };
    let mut store = lock(&st.shared.store);
    let not_found = || {
        exception(
            StatusCode::NOT_FOUND,
            "OrderNotFoundException",
            &format!(
                "Order {} / {} not found",
                req.oa_order_id, req.shop_order_id
            ),
        )
    };
    let Some(order) = store
        .orders
        .values_mut()
        .find(|o| oa_order_id(&o.seed) == req.oa_order_id)
    else {
        return not_found();
    };
    if order.seed.id != req.shop_order_id {
        return not_found();
    }
    if owner(&order.seed) != SANDBOX_MERCHANT {
        return exception(
            StatusCode::NOT_FOUND,
            "MerchantOrderOwnershipException",
            &format!("Order {} does not belong to this merchant", req.oa_order_id),
        );
    }
    if st.wallet_missing.load(Ordering::SeqCst) {
        return exception(
            StatusCode::NOT_FOUND,
            "MerchantWalletNotFoundException",
            "Merchant wallet not found",
        );
    }
    if lock(&st.book.users_missing).contains(&order.seed.id) {
        return exception(
            StatusCode::NOT_FOUND,
            "UserNotFoundException",
            &format!("The customer of order {} was not found", req.oa_order_id),
        );
    }
    if req.currency != order.state.currency {
        return exception(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &format!(
                "currency {} does not match the order currency {}",
                req.currency, order.state.currency
            ),
        );
    }
    if order
        .state
        .refunds
        .iter()
        .any(|r| r.reference.as_deref() == Some(req.case_id.as_str()))
    {
        return exception(
            StatusCode::CONFLICT,
            "RefundExistsException",
            &format!(
                "A refund with caseId {} already exists for order {}",
                req.case_id, req.oa_order_id
            ),
        );
    }
    let amount = money::from_minor(req.amount, 2);
    let refundable = order.state.refundable();
    if amount > refundable {
        return exception(
            StatusCode::BAD_REQUEST,
            "RefundTooMuchException",
            &format!(
                "Refund amount {} exceeds the refundable amount {} of order {}",
                req.amount,
                money::to_minor(refundable, 2).unwrap_or_default(),
                req.oa_order_id
            ),
        );
    }
    order.record(RecordedRefund {
        id: req.case_id.clone(),
        reference: Some(req.case_id.clone()),
        amount,
        status: RefundStatus::Pending,
        created_at: now_rfc3339(),
    });
    json(
        StatusCode::OK,
        &Registered {
            case_id: &req.case_id,
            status: "REGISTERED",
        },
    )
}
