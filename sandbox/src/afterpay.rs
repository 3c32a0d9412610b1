//! AfterPay (Riverty): `POST /api/v3/orders/{orderNumber}/refunds` with the
//! `X-Auth-Key` header; 400s are JSON arrays of ResponseMessage.
//!
//! Assumptions where the docs are silent (codes and wording are ours):
//! - The refund amount is the sum of `grossUnitPrice * quantity` over the
//!   items; with no items the whole remaining amount of the capture is
//!   refunded. `items` and the legacy `orderItems` are both accepted.
//! - Refund numbers continue the order's 9-digit sequence the seeded capture
//!   started (capture `000000001`, first refund `000000002`), whatever the
//!   seed's capture number.
//! - `remainingAuthorizedAmount` is authorized minus captured.
//! - A repeated `transactionReference` on the same order returns the
//!   original response and records nothing (switchable by
//!   [`Settings::replay_transaction_reference`]; Riverty documents no
//!   duplicate rule).
//! - An unknown order answers 404 with a ResponseMessage array (code
//!   `NotFound`); an unknown `captureNumber` answers 400 `CaptureNotFound`;
//!   a refund beyond the capture's remaining amount answers 400 with
//!   [`OVER_REFUND_CODE`] and `fieldReference` `items`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::wire::{Map, Value};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::fault::answer_unaltered;
use crate::response::{json, json_bytes};
use crate::room::{EnvVar, Room};
use crate::schema::{Problem, RequestSchema, Violation, a_type_of};
use crate::server::{
    self, Listen, MediaType, ProviderHandle, Rejection, Routes, Surface, Drawn, draw_fault, run_refund,
};
use crate::shared::{RoomBook, Shared};
use crate::state::{OrderSeed, RecordedRefund, RefundStatus, Units, lock, now_rfc3339};
use crate::{money, wire};

/// The demo `X-Auth-Key`.
pub const API_KEY: &str = "sandbox-afterpay-key";

/// The capture number AfterPay orders get when the seed names none
/// ([`OrderSeed::capture_number`]).
pub const DEFAULT_CAPTURE_NUMBER: &str = "000000001";

/// The refund route as Riverty's spec names it.
pub const REFUND_PATH: &str = "/api/v3/orders/{orderNumber}/refunds";

/// AfterPay's settings ([`crate::SandboxConfig::afterpay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A fixed port, taking precedence over [`crate::SandboxConfig::port_base`].
    pub port: Option<u16>,
    /// The normalized OpenAPI document whose request body schema the refund route enforces
    /// (default `afterpay_api::NORMALIZED_OPENAPI`); one without the route's operation, or
    /// whose schema does not compile, fails [`crate::Sandbox::start`].
    pub spec: Cow<'static, str>,
    /// A repeated `transactionReference` on an order replays the original response (default
    /// `true`; Riverty documents no rule).
    pub replay_transaction_reference: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: None,
            spec: Cow::Borrowed(afterpay_api::NORMALIZED_OPENAPI),
            replay_transaction_reference: true,
        }
    }
}

impl Settings {
    /// The settings as `sandbox --print-config json` reports them.
    pub fn report(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![(
            "afterpay_replay_transaction_reference",
            self.replay_transaction_reference.into(),
        )]
    }
}

/// AfterPay's flags of the `sandbox` binary.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "AfterPay")]
// No argument group: each room's `Flags` would claim the same group name.
#[group(skip)]
pub struct Flags {
    /// AfterPay's port (overrides --port-base for AfterPay).
    #[arg(long, value_name = "PORT")]
    pub afterpay_port: Option<u16>,

    /// Whether a repeated AfterPay transactionReference on an order replays
    /// the original answer instead of refunding again.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub afterpay_replay_transaction_reference: bool,
}

impl Flags {
    /// Sets what the flags say in `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.port = self.afterpay_port;
        settings.replay_transaction_reference = self.afterpay_replay_transaction_reference;
    }
}

/// The capture an order's refunds must name: the seed's, or [`DEFAULT_CAPTURE_NUMBER`].
fn capture_number(seed: &OrderSeed) -> &str {
    seed.capture_number
        .as_deref()
        .unwrap_or(DEFAULT_CAPTURE_NUMBER)
}

/// The ResponseMessage `code` of a refund beyond the capture's remaining
/// amount. Riverty's refund page
/// (<https://docs.riverty.com/bnpl/api_reference/refund_payment>) has an
/// example "Unsuccessful Request, Refund Amount Exceeds Capture Amount" whose
/// body could not be read; its response code list
/// (<https://docs.riverty.com/bnpl/documentation/response_codes>) has no
/// refund code, so the sandbox sends the documented generic `400.003` ("Value
/// out of range") with the example's title in its text. The facade does not
/// tell this answer apart from any other 400.
pub const OVER_REFUND_CODE: &str = "400.003";

/// The AfterPay sandbox. Dereferences to [`ProviderHandle`].
#[derive(Debug)]
pub struct AfterPayServer {
    handle: ProviderHandle,
}

impl Deref for AfterPayServer {
    type Target = ProviderHandle;

    fn deref(&self) -> &ProviderHandle {
        &self.handle
    }
}

impl Room for AfterPayServer {
    fn handle(&self) -> &ProviderHandle {
        &self.handle
    }

    fn title(&self) -> &'static str {
        "AfterPay"
    }

    fn refund_path(&self) -> &'static str {
        REFUND_PATH
    }

    fn credentials(&self) -> serde_json::Value {
        serde_json::json!({ "x_auth_key": API_KEY })
    }

    fn credentials_text(&self) -> String {
        format!("X-Auth-Key: {API_KEY}")
    }

    fn example(&self) -> String {
        let url = self.handle.base_url();
        format!(
            r#"# AfterPay
curl -s {url}/api/v3/orders/AP-1001/refunds -H 'X-Auth-Key: {API_KEY}' -H 'Content-Type: application/json' -d '{{"captureNumber":"{DEFAULT_CAPTURE_NUMBER}","transactionReference":"demo-1","items":[{{"productId":"0001","description":"Item 1 description","netUnitPrice":10.00,"grossUnitPrice":12.00,"quantity":5.0,"vatPercent":20.00,"vatAmount":2.00}}]}}'"#
        )
    }

    fn demo_orders(&self) -> Vec<OrderSeed> {
        vec![
            OrderSeed::new("AP-1001", "EUR", Decimal::new(30000, 2))
                .capture_number(DEFAULT_CAPTURE_NUMBER),
        ]
    }

    fn facade_env(&self) -> &'static [EnvVar] {
        FACADE_ENV
    }
}

/// The facade's AfterPay variables.
const FACADE_ENV: &[EnvVar] = &[
    ("REFUNDS_AFTERPAY_BASE_URL", |h| h.base_url()),
    ("REFUNDS_AFTERPAY_API_KEY", |_| API_KEY.to_owned()),
];

#[derive(Debug)]
struct AfterPayState {
    shared: Arc<Shared>,
    schema: RequestSchema,
    book: Arc<Book>,
    replay_transaction_reference: bool,
}

/// An answer kept for a repeat of its `transactionReference` on its order.
#[derive(Debug, Clone)]
struct Replay {
    /// The order the reference was used on.
    order_id: String,
    /// The original response body.
    body: Vec<u8>,
}

/// What AfterPay keeps beside the orders: its answers by order and `transactionReference`.
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
const REFUND_ROUTE: &str = "/api/v3/orders/{order_number}/refunds";

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
) -> std::io::Result<AfterPayServer> {
    let book = Arc::new(Book::default());
    let shared = Shared::new(name, Units::Major, Arc::clone(&book) as Arc<dyn RoomBook>);
    let state = Arc::new(AfterPayState {
        shared: Arc::clone(&shared),
        schema,
        book,
        replay_transaction_reference: settings.replay_transaction_reference,
    });
    let routes = Routes::new().post(REFUND_ROUTE, MediaType::Json, refund, state);
    let surface = Surface {
        routes,
        duplicate_key: "transactionReference",
        reject: Arc::new(|r, method, uri| {
            let (code, field) = match r {
                Rejection::NotFound => ("NotFound", None),
                Rejection::MethodNotAllowed { .. } => ("MethodNotAllowed", None),
                Rejection::PayloadTooLarge { .. } => ("RequestTooLarge", Some("request")),
                Rejection::UnsupportedMediaType { .. } => {
                    ("UnsupportedMediaType", Some("Content-Type"))
                }
            };
            errors(
                r.status(),
                &[ResponseMessage {
                    kind: "TechnicalError",
                    code,
                    message: r.message(method, uri),
                    customer_facing_message: None,
                    action_code: None,
                    field_reference: field.map(str::to_owned),
                }],
            )
        }),
    };
    let handle = server::serve(listen, shared, surface).await?;
    Ok(AfterPayServer { handle })
}

/// One Riverty ResponseMessage; absent fields are omitted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_facing_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_reference: Option<String>,
}

impl ResponseMessage {
    fn business(code: &'static str, message: String, field: Option<&str>) -> Self {
        ResponseMessage {
            kind: "BusinessError",
            code,
            message,
            customer_facing_message: None,
            action_code: None,
            field_reference: field.map(str::to_owned),
        }
    }

    fn validation(field: String, message: String) -> Self {
        ResponseMessage {
            kind: "BusinessError",
            code: "ValidationError",
            message,
            customer_facing_message: None,
            action_code: Some("AskConsumerToReEnterData"),
            field_reference: Some(field),
        }
    }
}

fn errors(status: StatusCode, messages: &[ResponseMessage]) -> Response {
    json(status, messages)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundOrderResponse {
    #[serde(with = "json_decimal::number")]
    total_captured_amount: Decimal,
    #[serde(with = "json_decimal::number")]
    total_authorized_amount: Decimal,
    #[serde(with = "json_decimal::number")]
    total_refunded_amount: Decimal,
    #[serde(with = "json_decimal::number")]
    remaining_authorized_amount: Decimal,
    refund_numbers: Vec<String>,
}

async fn refund(
    State(st): State<Arc<AfterPayState>>,
    Path(order_number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Riverty's 500 has no body.
    let status = |code| {
        StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    };
    let fault = match draw_fault(&st.shared, &[&order_number], status) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_refund(fault, answer_unaltered, async move {
        handle(&st, &order_number, &headers, &body)
    })
    .await
}

struct Item {
    gross_unit_price: Decimal,
    quantity: Decimal,
}

struct Request {
    capture_number: String,
    items: Vec<Item>,
    /// The sum of `grossUnitPrice * quantity` over the items (checked:
    /// [`total`]).
    items_total: Decimal,
    transaction_reference: Option<String>,
}

/// The sum of `grossUnitPrice * quantity` over `items` (named `list`), or
/// the validation error naming the first item whose product, or the sum up
/// to it, does not fit a decimal (about 7.9e28).
fn total(items: &[Item], list: &str) -> Result<Decimal, ResponseMessage> {
    let mut sum = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        sum = item
            .gross_unit_price
            .checked_mul(item.quantity)
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| {
                let path = format!("{list}[{i}]");
                ResponseMessage::validation(
                    path.clone(),
                    format!(
                        "'{path}.grossUnitPrice' * '{path}.quantity' is too large: the refund amount must not exceed {}.",
                        Decimal::MAX
                    ),
                )
            })?;
    }
    Ok(sum)
}

/// A schema violation as a Riverty validation message naming the field (`items[0].productId`).
fn describe(v: &Violation) -> ResponseMessage {
    if v.field.is_root() && matches!(v.problem, Problem::Type(_)) {
        return ResponseMessage::validation(
            "request".into(),
            "The request body must be a JSON object.".into(),
        );
    }
    let field = v.field.dotted();
    let what = match &v.problem {
        Problem::Required => "is required".to_owned(),
        Problem::NotAllowed => "is not allowed".to_owned(),
        Problem::Type(types) => format!("must be {}", a_type_of(types)),
        Problem::MaxLength(n) => format!("must be at most {n} characters long"),
        Problem::MinLength(n) => format!("must be at least {n} characters long"),
        Problem::MaxItems(n) => format!("must not have more than {n} items"),
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
        Problem::Format(format) => format!("must be a valid {format}"),
        Problem::Other(message) => format!("is invalid: {message}"),
    };
    ResponseMessage::validation(field.clone(), format!("'{field}' {what}."))
}

/// The decimal at `item[field]` (named `path.field`), read exactly from the number as sent: a
/// number no `Decimal` holds (`1e30`), which the schema's f64 reading lets through, is refused.
fn item_decimal(item: &Value, path: &str, field: &str) -> Result<Decimal, ResponseMessage> {
    wire::decimal(&item[field]).ok_or_else(|| {
        let path = format!("{path}.{field}");
        ResponseMessage::validation(path.clone(), format!("'{path}' is out of range."))
    })
}

/// The values the refund needs from a body that conforms to the schema, with the rules the
/// schema does not state.
fn read(v: &Value) -> Result<Request, Vec<ResponseMessage>> {
    let capture_number = v["captureNumber"].as_str().unwrap_or_default().to_owned();
    let transaction_reference = v["transactionReference"].as_str().map(str::to_owned);
    // `items` is the list refunded; the legacy `orderItems` only when `items` is absent.
    let (name, list) = match (v.get("items"), v.get("orderItems")) {
        (Some(Value::Array(list)), _) => ("items", list.as_slice()),
        (None, Some(Value::Array(list))) => ("orderItems", list.as_slice()),
        _ => ("items", &[][..]),
    };
    let mut out = Vec::new();
    let mut items = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("{name}[{i}]");
        let gross = item_decimal(item, &path, "grossUnitPrice");
        let quantity = item_decimal(item, &path, "quantity");
        match (gross, quantity) {
            // A refunded line of nothing is no refund line (the spec sets no `minimum`).
            (_, Ok(q)) if q <= Decimal::ZERO => out.push(ResponseMessage::validation(
                format!("{path}.quantity"),
                format!("'{path}.quantity' must be greater than 0."),
            )),
            (Ok(gross_unit_price), Ok(quantity)) => items.push(Item {
                gross_unit_price,
                quantity,
            }),
            (gross, quantity) => out.extend(gross.err().into_iter().chain(quantity.err())),
        }
    }
    if !out.is_empty() {
        return Err(out);
    }
    let items_total = total(&items, name).map_err(|m| vec![m])?;
    Ok(Request {
        capture_number,
        items,
        items_total,
        transaction_reference,
    })
}

fn handle(st: &AfterPayState, order_number: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    // "API user is unauthorized. Make sure X-Auth-Key header is sent.": the
    // status alone, no body.
    if headers.get("x-auth-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match crate::wire::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &[ResponseMessage::validation(
                        "request".into(),
                        format!("The request body is not valid JSON: {e}."),
                    )],
                );
            }
        }
    };
    let violations = st.schema.violations(&value);
    if !violations.is_empty() {
        let messages: Vec<ResponseMessage> = violations.iter().map(describe).collect();
        return errors(StatusCode::BAD_REQUEST, &messages);
    }
    let req = match read(&value) {
        Ok(req) => req,
        Err(messages) => return errors(StatusCode::BAD_REQUEST, &messages),
    };

    let mut store = lock(&st.shared.store);
    let replay_key = req
        .transaction_reference
        .as_ref()
        .filter(|_| st.replay_transaction_reference)
        .map(|r| format!("{order_number}\n{r}"));
    let mut replays = lock(&st.book.replays);
    if let Some(replay) = replay_key.as_ref().and_then(|k| replays.get(k)) {
        return json_bytes(StatusCode::OK, replay.body.clone());
    }
    let Some(order) = store.orders.get_mut(order_number) else {
        return errors(
            StatusCode::NOT_FOUND,
            &[ResponseMessage::business(
                "NotFound",
                format!("Order '{order_number}' was not found."),
                Some("orderNumber"),
            )],
        );
    };
    if req.capture_number != capture_number(&order.seed) {
        return errors(
            StatusCode::BAD_REQUEST,
            &[ResponseMessage::business(
                "CaptureNotFound",
                format!(
                    "Capture '{}' was not found for order '{order_number}'.",
                    req.capture_number
                ),
                Some("captureNumber"),
            )],
        );
    }
    let currency = order.state.currency.clone();
    let exp = money::exponent(&currency).unwrap_or(2);
    let refundable = order.state.refundable();
    let amount = if req.items.is_empty() {
        refundable
    } else {
        req.items_total
    };
    if amount <= Decimal::ZERO {
        let message = if req.items.is_empty() {
            "The capture has no amount left to refund.".to_owned()
        } else {
            "The refund amount must be greater than 0.".to_owned()
        };
        return errors(
            StatusCode::BAD_REQUEST,
            &[ResponseMessage::business(
                "InvalidRefundAmount",
                message,
                Some("items"),
            )],
        );
    }
    if amount > refundable {
        return errors(
            StatusCode::BAD_REQUEST,
            &[ResponseMessage::business(
                OVER_REFUND_CODE,
                format!(
                    "Refund Amount Exceeds Capture Amount: the refund amount {} {currency} exceeds the remaining captured amount {} {currency}.",
                    money::normalize(amount, exp),
                    money::normalize(refundable, exp)
                ),
                Some("items"),
            )],
        );
    }
    // One sequence numbers an order's capture and refunds: the seeded capture took 1, each
    // refund recorded since took the next (refunds are never removed).
    let number = format!("{:09}", order.state.refunds.len() + 2);
    order.record(RecordedRefund {
        id: number.clone(),
        reference: req.transaction_reference.clone(),
        amount: money::normalize(amount, exp),
        status: RefundStatus::Succeeded,
        created_at: now_rfc3339(),
    });
    let s = &order.state;
    let response = RefundOrderResponse {
        total_captured_amount: money::normalize(s.captured, exp),
        total_authorized_amount: money::normalize(s.authorized, exp),
        total_refunded_amount: money::normalize(s.refunded, exp),
        remaining_authorized_amount: money::normalize(s.authorized - s.captured, exp),
        refund_numbers: vec![number],
    };
    let Ok(bytes) = serde_json::to_vec(&response) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(key) = replay_key {
        replays.insert(
            key,
            Replay {
                order_id: order_number.to_owned(),
                body: bytes.clone(),
            },
        );
    }
    json_bytes(StatusCode::OK, bytes)
}
