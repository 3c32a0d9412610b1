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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::wire::Value;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::fault::answer_unaltered;
use crate::response::{json, json_bytes};
use crate::room::{EnvVar, Room};
use crate::schema::{Problem, RequestSchema, Violation, either};
use crate::server::{
    self, Listen, MediaType, ProviderHandle, Routes, Surface, Drawn, draw_fault, run_refund,
};
use crate::shared::{RoomBook, Shared};
use crate::state::{OrderSeed, RecordedRefund, RefundStatus, Units, lock, now_rfc3339};
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
pub const REFUND_PATH: &str = "/orders/{orderReference}/refund";

/// The lifetime of the tokens issued unless the settings say otherwise: Optty's `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: None,
            spec: Cow::Borrowed(optty_api::NORMALIZED_OPENAPI),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }
}

impl Settings {
    /// The settings as `sandbox --print-config json` reports them.
    pub fn report(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("optty_token_lifetime_s", self.token_lifetime.as_secs().into())]
    }
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
}

impl Flags {
    /// Sets what the flags say in `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.port = self.optty_port;
        settings.token_lifetime = Duration::from_secs(self.optty_token_lifetime);
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
curl -s {url}/orders/ORD-1001/refund -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{{"refundReference":"demo-1","refundAmount":{{"amount":10.00,"currency":"AUD"}},"refundDescription":"Demo refund"}}'"#
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
    tokens: Mutex<HashMap<String, Instant>>,
    lifetime: Mutex<Duration>,
}

/// A refund kept under its `refundReference`, which is unique per merchant.
#[derive(Debug, Clone)]
struct Replay {
    /// The order the reference was used on.
    order_id: String,
    /// The order, amount and currency: what must match for a repeat to be a replay.
    fingerprint: String,
    /// The original response body, answered again to a replay.
    body: Vec<u8>,
}

/// What Optty keeps beside the orders: its refunds by `refundReference`.
#[derive(Debug, Default)]
struct Book {
    replays: Mutex<HashMap<String, Replay>>,
}

impl RoomBook for Book {
    fn forget(&self, order_id: &str) {
        lock(&self.replays).retain(|_, r| r.order_id != order_id);
    }

    fn forget_all(&self) {
        lock(&self.replays).clear();
    }
}

/// The refund route, as the router names it.
const REFUND_ROUTE: &str = "/orders/{order_reference}/refund";

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
    let book = Arc::new(Book::default());
    let shared = Shared::new(name, Units::Major, Arc::clone(&book) as Arc<dyn RoomBook>);
    let state = Arc::new(OpttyState {
        shared: Arc::clone(&shared),
        schema,
        book,
        tokens: Mutex::new(HashMap::new()),
        lifetime: Mutex::new(settings.token_lifetime),
    });
    let routes = Routes::new()
        .post("/token", MediaType::Form, token, Arc::clone(&state))
        .post(REFUND_ROUTE, MediaType::Json, refund, Arc::clone(&state));
    let surface = Surface {
        routes,
        duplicate_key: "refundReference",
        // NestJS answers an unknown route `{"statusCode":404,"message":"Cannot
        // POST /x","error":"Not Found"}`; the other router-level answers take
        // the same shape with their status' reason phrase.
        reject: Arc::new(|r, method, uri| {
            let status = r.status();
            error(status, &r.message(method, uri), status.canonical_reason())
        }),
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
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET)
    {
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
    let fault = match draw_fault(&st.shared, &[&order_reference], status_fault) {
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
    Ok(Request {
        reference,
        amount,
        currency,
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
    order.record(RecordedRefund {
        id: refund_id.clone(),
        reference: Some(req.reference.clone()),
        amount: req.amount,
        status,
        created_at: now_rfc3339(),
    });
    let response = RefundResponse {
        refund_reference: req.reference.clone(),
        bnpl_provider: BNPL_PROVIDER,
        refunded_amount: req.amount,
        refund_status: match status {
            RefundStatus::Succeeded => "SUCCESSFUL",
            RefundStatus::Pending => "PENDING",
            // Seeds refuse FAILED, so a new refund never is.
            RefundStatus::Failed => "FAILED",
        },
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
        Replay {
            order_id: order_reference.to_owned(),
            fingerprint,
            body: bytes.clone(),
        },
    );
    json_bytes(StatusCode::OK, bytes)
}
