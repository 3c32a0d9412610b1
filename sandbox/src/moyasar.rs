//! Moyasar Payment Gateway: `POST /v1/orders/{id}/refund` with the secret
//! key as a bearer token; success is the whole order with the refund as a
//! transaction; amounts in integer minor units.
//!
//! # Retrieve Order
//!
//! `GET /v1/orders/{id}` (`moyasar_api::operations::retrieve_order`, authored in
//! `specs/moyasar/reads.openapi.json`) answers the same Order object the refund route answers,
//! from the same ledger: the capture, a refund transaction for any amount refunded before
//! seeding, then one refund transaction per recorded refund that the read delay lets through
//! ([`crate::SandboxConfig::read_delay`]), each with `id` = the client's `transaction_id` (a
//! UUID made here when the refund carried none) and `status` as the ledger says: `initiated`
//! (pending), `approved` (succeeded) or `failed` (settled as failed through the admin API, with
//! `message` `DECLINED` and `response_code` `05`). The order's `refunded_amount` is the sum of the
//! approved refund transactions it lists (and the seeded amount), as Moyasar documents it.
//! Auth as the refund route, except that [`KEY_WITHOUT_REFUND`] may read (it lacks only the
//! refund permission); an unknown order answers 404 `{"message":"Object not found"}` (not
//! listed on the show page, Moyasar's convention for not found; unverified). Faults injected
//! on [`crate::Operation::Read`] apply here.
//!
//! Assumptions where the docs are silent (wording is ours):
//! - The key may also come as HTTP Basic (`<key>:` as user), as Moyasar's
//!   public API takes it.
//! - Auth is checked first, then the order (404 `Object not found`), then
//!   the body (400 `{message}` for unparsable JSON, 422 for invalid fields).
//! - `transaction_id` is the idempotency key across all orders: a repeat on
//!   the same order answers 200 with the order as it is now and records
//!   nothing; a repeat while the first attempt is still running answers 400
//!   `Initial request is still processing.`; reuse on another order answers
//!   422 `errors.transaction_id`.
//! - Beyond the refundable amount: 400 `{message}` (the shape Moyasar's
//!   refund page documents for 400) with [`EXCEEDS_REFUNDABLE`], a wording
//!   of ours: Moyasar documents none, and the facade reads it as an invalid
//!   request like any other 400.
//! - The order's fixed parts (merchant, card source, airline, sub-merchant)
//!   are demo values shaped as in the docs' example; the capture
//!   transaction's id is a UUID v5 of the order id, so it is stable. Every
//!   transaction's own `refunded_amount` stays 0, as in the docs' example
//!   (the order's `refunded_amount` carries the total).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::by_order::ByOrder;
use crate::wire::Value;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use uuid::Uuid;

use crate::fault::{Fault, Operation, answer_unaltered};
use crate::response::json;
use crate::room::{EnvVar, Room, SentRefund, SpecRoute};
use crate::schema::{self, Problem, RequestSchema};
use crate::server::{
    self, Drawn, DuplicateKey, Listen, MediaType, ProviderHandle, Routes, Surface, after_commit,
    detached, draw_fault, run_read,
};
use crate::shared::{AdminError, RoomBook, Shared};
use crate::state::{
    Order, OrderSeed, OrderState, RecordedRefund, RefundStatus, Units, lock, now_rfc3339,
};
use crate::{clock, money, wire};

/// The demo secret key (`Authorization: Bearer <key>`), allowed to refund.
pub const SECRET_KEY: &str = "sk_test_sandbox_refunds";

/// A demo key the sandbox knows but that lacks the refund permission: answers 403
/// `{"message":"Unauthorized"}`.
pub const KEY_WITHOUT_REFUND: &str = "sk_test_sandbox_read_only";

/// The refund route as Moyasar's spec names it.
pub const REFUND_PATH: &str = moyasar_api::operations::refund_order::PATH;

/// The read route (Retrieve Order) as Moyasar's spec names it
/// (`moyasar_api::operations::retrieve_order::PATH`).
pub const READ_PATH: &str = moyasar_api::operations::retrieve_order::PATH;

/// The largest refund `amount` Moyasar accepts, in minor units: its spec's `maximum`.
pub const MAX_AMOUNT: i64 = moyasar_api::constraints::refund_order::amount::MAXIMUM;

/// The 400 message for a refund beyond captured minus refunded: the
/// sandbox's own wording (Moyasar documents none); no client should key on it.
pub const EXCEEDS_REFUNDABLE: &str = "Refund amount exceeds the refundable amount.";

/// The 400 message for a repeat while the first attempt still runs.
pub const STILL_PROCESSING: &str = "Initial request is still processing.";

/// Moyasar's settings ([`crate::SandboxConfig::moyasar`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A fixed port, taking precedence over [`crate::SandboxConfig::port_base`].
    pub port: Option<u16>,
    /// The normalized OpenAPI document whose request body schema the refund route enforces
    /// (default `moyasar_api::NORMALIZED_OPENAPI`); one without the route's operation, or whose
    /// schema does not compile, fails [`crate::Sandbox::start`].
    pub spec: Cow<'static, str>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: None,
            spec: Cow::Borrowed(moyasar_api::NORMALIZED_OPENAPI),
        }
    }
}

impl Settings {
    /// The settings as `sandbox --print-config json` reports them: none beside the port.
    pub fn report(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
}

/// Moyasar's flags of the `sandbox` binary.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Moyasar")]
// No argument group: each room's `Flags` would claim the same group name.
#[group(skip)]
pub struct Flags {
    /// Moyasar's port (overrides --port-base for Moyasar).
    #[arg(long, value_name = "PORT")]
    pub moyasar_port: Option<u16>,
}

impl Flags {
    /// Sets what the flags say in `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.port = self.moyasar_port;
    }
}

/// The Moyasar sandbox. Dereferences to [`ProviderHandle`].
#[derive(Debug)]
pub struct MoyasarServer {
    handle: ProviderHandle,
    state: Arc<MoyasarState>,
}

impl MoyasarServer {
    /// Records `count` approved refunds of `amount_minor` minor units each on order `order_id`,
    /// as that many refund calls would: each with its own `transaction_id`
    /// ([`earlier_refund_id`]`(order_id, n)` for n in `0..count`), used on this order from then
    /// on, and listed by the refund route's and Retrieve Order's answers like any other refund.
    ///
    /// For an order with thousands of earlier refunds, whose answer (the whole order, about 360
    /// bytes a refund) runs to megabytes: sent one by one, each refund call answers the whole
    /// order so far, so 3,000 of them cost minutes in a debug build; recorded here they cost
    /// milliseconds. Rust only: the admin API (`sandbox/admin.openapi.json`) has no bulk
    /// operation, so a client in another language sends the refunds.
    ///
    /// # Errors
    /// Nothing is recorded when the order is unknown (404, field `order_id`), `count` is 0 or
    /// `amount_minor` below 1 (400), or the refunds together exceed what the order can still
    /// refund (400, field `count`).
    pub fn record_refunds(
        &self,
        order_id: &str,
        count: usize,
        amount_minor: i64,
    ) -> Result<OrderState, AdminError> {
        if count == 0 {
            return Err(AdminError::invalid("count", "must be at least 1"));
        }
        if amount_minor < 1 {
            return Err(AdminError::invalid("amount_minor", "must be at least 1"));
        }
        let mut store = lock(&self.state.shared.store);
        let Some(order) = store.orders.get_mut(order_id) else {
            return Err(AdminError::not_found(
                "order_id",
                format!("no order {order_id}"),
            ));
        };
        let exp = money::exponent(&order.state.currency).unwrap_or(2);
        let amount = money::from_minor(amount_minor, exp);
        let total = i64::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(amount_minor))
            .map(|minor| money::from_minor(minor, exp));
        if total.is_none_or(|total| total > order.state.refundable()) {
            return Err(AdminError::invalid(
                "count",
                format!(
                    "{count} refunds of {amount} exceed the refundable {}",
                    order.state.refundable()
                ),
            ));
        }
        let mut used = lock(&self.state.book.used);
        for n in 0..count {
            let id = earlier_refund_id(order_id, n);
            order.record(RecordedRefund {
                id: id.clone(),
                reference: Some(id.clone()),
                amount,
                status: RefundStatus::Succeeded,
                created_at: now_rfc3339(),
            });
            used.insert(id, order_id, ());
        }
        Ok(order.state.clone())
    }
}

/// The `transaction_id` of the `n`th refund [`MoyasarServer::record_refunds`] records on
/// `order_id`: the UUID v5 of `earlier-refund:<order_id>:<n>` in the URL namespace.
pub fn earlier_refund_id(order_id: &str, n: usize) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("earlier-refund:{order_id}:{n}").as_bytes(),
    )
    .to_string()
}

impl Deref for MoyasarServer {
    type Target = ProviderHandle;

    fn deref(&self) -> &ProviderHandle {
        &self.handle
    }
}

impl Room for MoyasarServer {
    fn handle(&self) -> &ProviderHandle {
        &self.handle
    }

    fn title(&self) -> &'static str {
        "Moyasar"
    }

    fn refund_path(&self) -> &'static str {
        REFUND_PATH
    }

    fn read_routes(&self) -> &'static [SpecRoute] {
        use moyasar_api::operations::retrieve_order;
        &[SpecRoute {
            method: retrieve_order::METHOD,
            path: retrieve_order::PATH,
        }]
    }

    fn credentials(&self) -> serde_json::Value {
        serde_json::json!({
            "secret_key": SECRET_KEY,
            "key_without_refund": KEY_WITHOUT_REFUND,
        })
    }

    fn credentials_text(&self) -> String {
        format!("Authorization: Bearer {SECRET_KEY}   (no refund permission: {KEY_WITHOUT_REFUND})")
    }

    fn example(&self) -> String {
        let url = self.handle.base_url();
        format!(
            r#"# Moyasar
curl -s {url}/v1/orders/{DEMO_ORDER}/refund -H 'Authorization: Bearer {SECRET_KEY}' -H 'Content-Type: application/json' -d '{{"amount":1000,"transaction_id":"f351a2a3-97c4-4f12-add3-80c1044091f5"}}'
# Moyasar: read it back (Retrieve Order)
curl -s {url}/v1/orders/{DEMO_ORDER} -H 'Authorization: Bearer {SECRET_KEY}'"#
        )
    }

    fn demo_orders(&self) -> Vec<OrderSeed> {
        vec![
            OrderSeed::from_minor(DEMO_ORDER, "SAR", 262_346),
            OrderSeed::new("K-1001", "KWD", rust_decimal::Decimal::new(12_345, 3)),
        ]
    }

    fn facade_env(&self) -> &'static [EnvVar] {
        FACADE_ENV
    }

    fn send_example_refund<'a>(
        &'a self,
        client: &'a reqwest::Client,
        order_id: &'a str,
        _currency: &'a str,
        reference: &'a str,
    ) -> SentRefund<'a> {
        let body = serde_json::json!({
            "amount": 100,
            "transaction_id": self.example_key(reference),
        });
        let request = client
            .post(format!(
                "{}/v1/orders/{order_id}/refund",
                self.handle.base_url()
            ))
            .bearer_auth(SECRET_KEY)
            .json(&body);
        Box::pin(request.send())
    }

    /// A UUID (v5 in the OID namespace) of `reference`: Moyasar's `transaction_id` must be one.
    fn example_key(&self, reference: &str) -> String {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, reference.as_bytes()).to_string()
    }
}

/// The demo order of the docs' example.
const DEMO_ORDER: &str = "0191f5a7-44a9-76c2-9fec-39709fdbf723";

/// The facade's Moyasar variables.
const FACADE_ENV: &[EnvVar] = &[
    ("REFUNDS_MOYASAR_BASE_URL", |h| h.base_url()),
    ("REFUNDS_MOYASAR_SECRET_KEY", |_| SECRET_KEY.to_owned()),
];

/// The refund route, as the router names it.
const REFUND_ROUTE: &str = "/v1/orders/{id}/refund";

/// The read route (Retrieve Order), as the router names it.
const READ_ROUTE: &str = "/v1/orders/{id}";

/// The request body schema of the refund route in `settings.spec`; errors name the provider
/// as `name`.
pub(crate) fn request_schema(
    name: &'static str,
    settings: &Settings,
) -> std::io::Result<RequestSchema> {
    RequestSchema::for_route(name, &settings.spec, "post", REFUND_ROUTE)
}

#[derive(Debug)]
struct MoyasarState {
    shared: Arc<Shared>,
    schema: RequestSchema,
    book: Arc<Book>,
}

/// What Moyasar keeps beside the orders: the `transaction_id`s used (the order each was used
/// on, for its duplicate rule) and those whose first attempt is still running.
#[derive(Debug, Default)]
struct Book {
    used: Mutex<ByOrder<()>>,
    in_flight: Mutex<HashSet<String>>,
}

impl RoomBook for Book {
    fn forget(&self, order_id: &str) {
        lock(&self.used).forget_order(order_id);
    }

    fn forget_all(&self) {
        lock(&self.used).clear();
    }

    fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }
}

pub(crate) async fn start(
    name: &'static str,
    listen: Listen,
    schema: RequestSchema,
    _settings: &Settings,
) -> std::io::Result<MoyasarServer> {
    let book = Arc::new(Book::default());
    let shared = Shared::new(
        name,
        Units::IsoMinor,
        Arc::clone(&book) as Arc<dyn RoomBook>,
    );
    let state = Arc::new(MoyasarState {
        shared: Arc::clone(&shared),
        schema,
        book,
    });
    let routes = Routes::new()
        .post(REFUND_ROUTE, MediaType::Json, refund, Arc::clone(&state))
        .get(READ_ROUTE, retrieve_order, Arc::clone(&state));
    let surface = Surface {
        routes,
        duplicate_key: DuplicateKey::BodyField("transaction_id"),
        reject: Arc::new(|r, method, uri| message(r.status(), &r.message(method, uri))),
        admin: None,
    };
    let handle = server::serve(listen, shared, surface).await?;
    Ok(MoyasarServer { handle, state })
}

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

fn message(status: StatusCode, message: &str) -> Response {
    json(status, &Message { message })
}

#[derive(Serialize)]
struct ValidationBody {
    message: &'static str,
    errors: BTreeMap<String, Vec<String>>,
}

fn validation(errors: BTreeMap<String, Vec<String>>) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ValidationBody {
            message: "Data validation failed",
            errors,
        },
    )
}

#[derive(Serialize)]
struct OrderBody {
    id: String,
    merchant: Merchant,
    currency: String,
    amount: i64,
    captured_amount: i64,
    refunded_amount: i64,
    voided_amount: i64,
    description: String,
    created_at: String,
    updated_at: String,
    source: Source,
    reauthorized_order_id: Option<String>,
    airline: Airline,
    sub_merchant: SubMerchant,
    agreement: Option<Value>,
    transactions: Vec<Transaction>,
}

#[derive(Serialize)]
struct Merchant {
    id: &'static str,
    acquirer_id: &'static str,
    name: &'static str,
    arabic_name: &'static str,
    merchant_id: &'static str,
    rule_precedence: &'static str,
}

#[derive(Serialize)]
struct Source {
    #[serde(rename = "type")]
    kind: &'static str,
    issuer: Option<String>,
    card_type: Option<String>,
    category: Option<String>,
    country_alpha2: Option<String>,
    scheme: &'static str,
    first_digits: &'static str,
    last_digits: &'static str,
    month: u32,
    year: u32,
}

#[derive(Serialize)]
struct Airline {
    reference: &'static str,
}

#[derive(Serialize)]
struct SubMerchant {
    id: &'static str,
    registered_name: &'static str,
    trading_name: &'static str,
    email: &'static str,
}

#[derive(Serialize)]
struct Transaction {
    id: String,
    status: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    source_type: &'static str,
    reverse_reason: Option<String>,
    justification: Option<String>,
    reversed_transaction_id: Option<String>,
    message: &'static str,
    response_code: &'static str,
    retrieval_reference: String,
    stan: String,
    auth_code: Option<String>,
    amount: i64,
    refunded_amount: i64,
    created_at: String,
}

impl Transaction {
    fn approved(kind: &'static str, id: String, seq: usize, amount: i64, at: String) -> Self {
        Self::in_status(RefundStatus::Succeeded, kind, id, seq, amount, at)
    }

    /// A transaction in the status the ledger gives it: `approved`, `initiated` or `failed`.
    fn in_status(
        status: RefundStatus,
        kind: &'static str,
        id: String,
        seq: usize,
        amount: i64,
        at: String,
    ) -> Self {
        let (status, message, response_code) = match status {
            RefundStatus::Succeeded => ("approved", "APPROVED", "00"),
            RefundStatus::Pending => ("initiated", "INITIATED", ""),
            RefundStatus::Failed => ("failed", "DECLINED", "05"),
        };
        Transaction {
            id,
            status,
            kind,
            source_type: "merchant",
            reverse_reason: None,
            justification: None,
            reversed_transaction_id: None,
            message,
            response_code,
            retrieval_reference: format!("2425900{seq:05}"),
            stan: format!("{seq:06}"),
            auth_code: (kind == "capture").then(|| "663390".to_owned()),
            amount,
            refunded_amount: 0,
            created_at: at,
        }
    }
}

/// The order as Moyasar answers it: the capture, a refund transaction for
/// any amount refunded before seeding, then one per recorded refund recorded at least
/// `read_delay` ago (every one for the refund route's answer, which passes zero), in the
/// ledger's status. `refunded_amount` sums the approved ones and the seeded amount.
fn order_body(order: &Order, read_delay: Duration) -> OrderBody {
    let s = &order.state;
    let exp = money::exponent(&s.currency).unwrap_or(2);
    let minor = |d| money::to_minor(d, exp).unwrap_or_default();
    let created = clock::rfc3339(order.created);
    let mut transactions = vec![Transaction::approved(
        "capture",
        Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("capture:{}", s.id).as_bytes()).to_string(),
        0,
        minor(s.captured),
        created.clone(),
    )];
    // What the order's refunded total holds beside the recorded refunds that count (all but
    // the failed ones): the amount refunded before seeding.
    let recorded: rust_decimal::Decimal = s
        .refunds
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
        .map(|r| r.amount)
        .sum();
    let seeded = s.refunded - recorded;
    let listed = order.readable(read_delay);
    let approved: rust_decimal::Decimal = listed
        .iter()
        .filter(|r| r.refund.status == RefundStatus::Succeeded)
        .map(|r| r.refund.amount)
        .sum();
    if seeded > rust_decimal::Decimal::ZERO {
        transactions.push(Transaction::approved(
            "refund",
            Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!("seeded-refund:{}", s.id).as_bytes(),
            )
            .to_string(),
            transactions.len(),
            minor(seeded),
            created.clone(),
        ));
    }
    for r in listed.iter().map(|r| r.refund) {
        transactions.push(Transaction::in_status(
            r.status,
            "refund",
            r.id.clone(),
            transactions.len(),
            minor(r.amount),
            r.created_at.clone(),
        ));
    }
    OrderBody {
        id: s.id.clone(),
        merchant: Merchant {
            id: "0191f5a7-44a5-7700-8c11-ffc3703a7990",
            acquirer_id: "0191f5a7-44a2-73d5-9a9c-745f40f8db31",
            name: "Sandbox Merchant",
            arabic_name: "التاجر التجريبي",
            merchant_id: "60052",
            rule_precedence: "mixed",
        },
        currency: s.currency.clone(),
        amount: minor(s.authorized),
        captured_amount: minor(s.captured),
        refunded_amount: minor(seeded.max(rust_decimal::Decimal::ZERO) + approved),
        voided_amount: 0,
        description: format!("Sandbox order {}", s.id),
        created_at: created,
        updated_at: clock::rfc3339(order.updated),
        source: Source {
            kind: "card",
            issuer: None,
            card_type: None,
            category: None,
            country_alpha2: None,
            scheme: "mastercard",
            first_digits: "55555555",
            last_digits: "4444",
            month: 12,
            year: 2030,
        },
        reauthorized_order_id: None,
        airline: Airline {
            reference: "576449881",
        },
        sub_merchant: SubMerchant {
            id: "ecb0e32fd3d95b41cbf2ca9a9513a3",
            registered_name: "Sandbox Trading LLC",
            trading_name: "Sandbox Shop",
            email: "merchant@sandbox.test",
        },
        agreement: None,
        transactions,
    }
}

/// Why the key was refused for `operation`, or `None` when it may go ahead: the secret key may
/// refund and read, [`KEY_WITHOUT_REFUND`] may only read.
fn auth_error(headers: &HeaderMap, operation: Operation) -> Option<Response> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Some(message(
            StatusCode::UNAUTHORIZED,
            "Missing authentication information",
        ));
    };
    let key = if let Some(token) = value.strip_prefix("Bearer ") {
        Some(token.trim().to_owned())
    } else if let Some(basic) = value.strip_prefix("Basic ") {
        STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|user_pass| user_pass.split(':').next().unwrap_or_default().to_owned())
    } else {
        None
    };
    match (key.as_deref(), operation) {
        (Some(SECRET_KEY), _) | (Some(KEY_WITHOUT_REFUND), Operation::Read) => None,
        (Some(KEY_WITHOUT_REFUND), Operation::Refund) => {
            Some(message(StatusCode::FORBIDDEN, "Unauthorized"))
        }
        (Some(""), _) => Some(message(
            StatusCode::UNAUTHORIZED,
            "Missing authentication information",
        )),
        _ => Some(message(
            StatusCode::UNAUTHORIZED,
            "Invalid authorization credentials",
        )),
    }
}

struct Request {
    amount: i64,
    transaction_id: Option<String>,
}

/// A schema violation in the words of Moyasar's 422 (`errors.<field>`).
fn describe(problem: &Problem) -> String {
    let what = match problem {
        Problem::Required => return "The value is required.".into(),
        Problem::NotAllowed => return "The field is not allowed.".into(),
        Problem::Type(types) => format!("must be {}", schema::a_type_of(types)),
        Problem::MaxLength(n) => format!("must be at most {n} characters"),
        Problem::MinLength(n) => format!("must be at least {n} characters"),
        Problem::MaxItems(n) => format!("must have at most {n} items"),
        Problem::MinItems(n) => format!("must have at least {n} items"),
        Problem::Enum(options) => format!("must be one of: {}", options.join(", ")),
        Problem::Maximum { limit, exclusive } => format!(
            "must be less than {}{limit}",
            if *exclusive { "" } else { "or equal to " }
        ),
        Problem::Minimum { limit, exclusive } => format!(
            "must be greater than {}{limit}",
            if *exclusive { "" } else { "or equal to " }
        ),
        Problem::Pattern(pattern) => format!("must match the pattern {pattern}"),
        Problem::MultipleOf(step) => format!("must be a multiple of {step}"),
        Problem::Format(format) if format == "uuid" => "must be a valid UUID".to_owned(),
        Problem::Format(format) => format!("must be a valid {format}"),
        Problem::Other(message) => format!("is invalid: {message}"),
    };
    format!("The value {what}.")
}

/// The values the refund needs from a body that conforms to the schema.
fn read(v: &Value) -> Result<Request, BTreeMap<String, Vec<String>>> {
    // Exact, on the number as sent: draft 4 judged an f64 (or a u64), so only an integer
    // written as one and held by an i64 is an amount here.
    let Some(amount) = wire::integer(&v["amount"]) else {
        return Err(BTreeMap::from([(
            "amount".to_owned(),
            vec!["The value must be an integer.".to_owned()],
        )]));
    };
    Ok(Request {
        amount,
        transaction_id: v["transaction_id"].as_str().map(str::to_owned),
    })
}

/// [`Fault::Status`]: `{"message": <the status' reason phrase>}`.
fn status_fault(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    message(status, status.canonical_reason().unwrap_or("Error"))
}

/// Retrieve Order (`GET /v1/orders/{id}`): see the module's "Retrieve Order".
async fn retrieve_order(
    State(st): State<Arc<MoyasarState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let fault = match draw_fault(&st.shared, Operation::Read, &[&id], status_fault) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_read(fault, async move {
        if let Some(res) = auth_error(&headers, Operation::Read) {
            return res;
        }
        let delay = st.shared.read_delay();
        match lock(&st.shared.store).orders.get(&id) {
            Some(order) => json(StatusCode::OK, &order_body(order, delay)),
            None => message(StatusCode::NOT_FOUND, "Object not found"),
        }
    })
    .await
}

async fn refund(
    State(st): State<Arc<MoyasarState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match draw_fault(&st.shared, Operation::Refund, &[&id], status_fault) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    detached(async move {
        let res = handle(&st, &id, &headers, &body, fault.as_ref()).await;
        after_commit(fault.as_ref(), answer_unaltered, res)
    })
    .await
}

/// Removes a `transaction_id` from the in-flight set however the attempt
/// ends.
struct InFlight<'a> {
    book: &'a Book,
    key: Option<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.book.in_flight).remove(&key);
        }
    }
}

async fn handle(
    st: &MoyasarState,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    fault: Option<&Fault>,
) -> Response {
    if let Some(res) = auth_error(headers, Operation::Refund) {
        return res;
    }
    if !lock(&st.shared.store).orders.contains_key(id) {
        return message(StatusCode::NOT_FOUND, "Object not found");
    }
    let value = match crate::wire::from_slice(body) {
        Ok(v) => v,
        Err(_) => return message(StatusCode::BAD_REQUEST, "Malformed JSON request body."),
    };
    let violations = st.schema.violations(&value);
    if !violations.is_empty() {
        // The body itself (not an object) is Rails' `base`.
        let mut errors = schema::by_field(&violations, describe);
        if let Some(base) = errors.remove("") {
            errors.insert("base".to_owned(), base);
        }
        return validation(errors);
    }
    let req = match read(&value) {
        Ok(req) => req,
        Err(errors) => return validation(errors),
    };
    let shared = &*st.shared;

    let guard = {
        let store = lock(&shared.store);
        if let Some(tx) = &req.transaction_id {
            let mut in_flight = lock(&st.book.in_flight);
            if in_flight.contains(tx) {
                return message(StatusCode::BAD_REQUEST, STILL_PROCESSING);
            }
            if let Some(used_on) = lock(&st.book.used).order_of(tx) {
                if used_on != id {
                    let mut errors = BTreeMap::new();
                    errors.insert(
                        "transaction_id".to_owned(),
                        vec!["The value has already been taken.".to_owned()],
                    );
                    return validation(errors);
                }
                return match store.orders.get(id) {
                    Some(order) => json(StatusCode::OK, &order_body(order, Duration::ZERO)),
                    None => message(StatusCode::NOT_FOUND, "Object not found"),
                };
            }
            in_flight.insert(tx.clone());
        }
        InFlight {
            book: &st.book,
            key: req.transaction_id.clone(),
        }
    };
    // The delay runs while the transaction_id is in flight, which is what
    // lets a concurrent duplicate see "Initial request is still processing."
    crate::fault::wait_latency(fault).await;

    let mut store = lock(&shared.store);
    let Some(order) = store.orders.get_mut(id) else {
        return message(StatusCode::NOT_FOUND, "Object not found");
    };
    let exp = money::exponent(&order.state.currency).unwrap_or(2);
    let amount = money::from_minor(req.amount, exp);
    if amount > order.state.refundable() {
        return message(StatusCode::BAD_REQUEST, EXCEEDS_REFUNDABLE);
    }
    let tx_id = req
        .transaction_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    order.record(RecordedRefund {
        id: tx_id.clone(),
        reference: req.transaction_id.clone(),
        amount,
        status: RefundStatus::Succeeded,
        created_at: now_rfc3339(),
    });
    order.updated = SystemTime::now();
    let body = order_body(order, Duration::ZERO);
    lock(&st.book.used).insert(tx_id, id, ());
    drop(store);
    drop(guard);
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::AdminErrorKind;
    use crate::state::build_order;

    #[tokio::test]
    async fn recorded_refunds_are_listed_in_the_order_and_keep_the_duplicate_rule() {
        let sb = crate::Sandbox::start(crate::SandboxConfig::default())
            .await
            .unwrap();
        let server = sb.moyasar();
        server.seed_order(OrderSeed::from_minor("O-BULK", "SAR", 1_000));
        server.seed_order(OrderSeed::from_minor("O-OTHER", "SAR", 1_000));

        // Nothing recorded when refused.
        for (order, count, minor, kind, field) in [
            ("O-NONE", 1, 100, AdminErrorKind::NotFound, "order_id"),
            ("O-BULK", 0, 100, AdminErrorKind::Invalid, "count"),
            ("O-BULK", 1, 0, AdminErrorKind::Invalid, "amount_minor"),
            ("O-BULK", 11, 100, AdminErrorKind::Invalid, "count"),
            ("O-BULK", usize::MAX, 100, AdminErrorKind::Invalid, "count"),
        ] {
            let error = server.record_refunds(order, count, minor).unwrap_err();
            assert_eq!((error.kind, error.field.as_deref()), (kind, Some(field)));
        }
        assert!(server.order("O-BULK").unwrap().refunds.is_empty());

        let state = server.record_refunds("O-BULK", 3, 100).unwrap();
        assert_eq!(state.refunds.len(), 3);
        assert_eq!(state.refunded, money::from_minor(300, 2));
        let ids: Vec<String> = (0..3).map(|n| earlier_refund_id("O-BULK", n)).collect();
        let body = {
            let store = lock(&server.state.shared.store);
            let order = store.orders.get("O-BULK").unwrap();
            order_body(order, Duration::ZERO)
        };
        let listed: Vec<(&str, &str, i64)> = body
            .transactions
            .iter()
            .filter(|t| t.kind == "refund")
            .map(|t| (t.id.as_str(), t.status, t.amount))
            .collect();
        assert_eq!(
            listed,
            ids.iter()
                .map(|id| (id.as_str(), "approved", 100))
                .collect::<Vec<_>>()
        );
        assert_eq!(body.refunded_amount, 300);
        // Each id is marked used on this order (the duplicate rule's book), as a sent refund's.
        assert_eq!(
            lock(&server.state.book.used).order_of(&ids[0]),
            Some("O-BULK")
        );
        sb.shutdown().await;
    }

    fn refund(id: &str, minor: i64, status: RefundStatus) -> RecordedRefund {
        RecordedRefund {
            id: id.to_owned(),
            reference: Some(id.to_owned()),
            amount: money::from_minor(minor, 2),
            status,
            created_at: now_rfc3339(),
        }
    }

    #[test]
    fn refund_transactions_carry_the_ledgers_status_and_only_approved_ones_count() {
        let seed = OrderSeed::from_minor("O-1", "SAR", 10_000).refunded(money::from_minor(500, 2));
        let mut order = build_order(seed, Units::IsoMinor).unwrap();
        order.record(refund("a", 1_000, RefundStatus::Succeeded));
        order.record(refund("b", 2_000, RefundStatus::Pending));
        order.record(refund("c", 3_000, RefundStatus::Pending));
        // Settled as failed: what `Shared::settle` does to the order.
        order.state.refunds[2].status = RefundStatus::Failed;
        order.state.refunded -= order.state.refunds[2].amount;

        let body = order_body(&order, Duration::ZERO);
        let refunds: Vec<(&str, &str, &str, i64)> = body
            .transactions
            .iter()
            .filter(|t| t.kind == "refund")
            .map(|t| (t.id.as_str(), t.status, t.message, t.amount))
            .collect();
        assert_eq!(
            refunds.len(),
            4,
            "the seeded refund, then the three recorded"
        );
        assert_eq!(refunds[0].1, "approved");
        assert_eq!(refunds[0].3, 500);
        assert_eq!(
            &refunds[1..],
            [
                ("a", "approved", "APPROVED", 1_000),
                ("b", "initiated", "INITIATED", 2_000),
                ("c", "failed", "DECLINED", 3_000),
            ]
        );
        // The seeded 500 and the approved 1000; not the initiated nor the failed ones.
        assert_eq!(body.refunded_amount, 1_500);

        // A read delay longer than the refunds' age lists none of the recorded ones.
        let body = order_body(&order, Duration::from_secs(3600));
        assert_eq!(
            body.transactions
                .iter()
                .filter(|t| t.kind == "refund")
                .count(),
            1
        );
        assert_eq!(body.refunded_amount, 500);
    }
}
