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
//!
//! # Reads: Get Order and Get Refunds
//!
//! Authored in `specs/afterpay/reads.openapi.json` (`afterpay_api::operations::{get_order,
//! get_refunds}`), answered from the same ledger, with the refund route's `X-Auth-Key` (401
//! without a body otherwise):
//!
//! - `GET /api/v3/orders/{orderNumber}` ([`GET_ORDER_PATH`]): `orderDetails` (`orderId`, a UUID
//!   v5 of the order number; `orderNumber`; `totalGrossAmount` and `totalNetAmount`, both the
//!   authorized amount, VAT not being modelled; `currency`; `insertedAt`, `updatedAt`),
//!   `payment` (`Invoice`), `captures` (the seeded capture: `captureNumber`, `amount` captured,
//!   `totalRefundedAmount` and `balance` as the listed refunds leave them) and `refunds[]`.
//! - `GET /api/v3/orders/{orderNumber}/refunds/{refundNumber}` ([`GET_REFUNDS_PATH`]):
//!   `{"refunds": [that refund]}`. The list-all form without a number is not documented
//!   (`.../refunds` answers 405, since only the refund POST lives there).
//!
//! Each refund: `refundNumber` (the refund answer's `refundNumbers[0]`), `refundId` (a UUID v5 of
//! order and number, stable), `reservationId`, `orderNumber`, `amount` and `balance` (both the
//! refunded amount, NEGATIVE, as every example of the docs shows them: `-185`), `currency`,
//! `insertedAt` (RFC 3339, when it was recorded), `captureNumber` and `refundItems[]`: the
//! request's items (`items`, else `orderItems`) with the fields the read declares, as sent, but
//! `netUnitPrice`, `grossUnitPrice` and `vatAmount` negated as in the docs' examples (quantities
//! and VAT percentages stay positive), each with the refund's `refundId`; none when the request
//! refunded the whole capture without items. Riverty refunds have no status: a listed refund is
//! booked, so only succeeded ones are listed (every AfterPay refund here is booked at once; one
//! settled as failed through the admin API would not be listed). A refund shows only once the
//! read delay ([`crate::SandboxConfig::read_delay`]) has passed since it was recorded.
//! `transactionReference` is not echoed, as Riverty documents.
//!
//! An unknown order or refund number answers 404 with a ResponseMessage array (code
//! `NotFound`, `fieldReference` `orderNumber` or `refundNumber`): Riverty's "Incorrect
//! Order/Refund Number" example could not be read, so status and body are unverified (the spec
//! declares both 400 and 404). Faults injected on [`crate::Operation::Read`] apply to both.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::by_order::ByOrder;
use crate::wire::{Map, Value};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::ser::SerializeMap;
use uuid::Uuid;

use crate::fault::{Operation, answer_unaltered};
use crate::response::{json, json_bytes};
use crate::room::{EnvVar, Room, SentRefund, SpecRoute};
use crate::schema::{Problem, RequestSchema, Violation, a_type_of};
use crate::server::{
    self, Drawn, DuplicateKey, Listen, MediaType, ProviderHandle, Rejection, Routes, Surface,
    draw_fault, run_read, run_refund,
};
use crate::shared::{RoomBook, Shared};
use crate::state::{Order, OrderSeed, RecordedRefund, RefundStatus, Units, lock, now_rfc3339};
use crate::{clock, money, wire};

/// The demo `X-Auth-Key`.
pub const API_KEY: &str = "sandbox-afterpay-key";

/// The capture number AfterPay orders get when the seed names none
/// ([`OrderSeed::capture_number`]).
pub const DEFAULT_CAPTURE_NUMBER: &str = "000000001";

/// The refund route as Riverty's spec names it.
pub const REFUND_PATH: &str = afterpay_api::operations::refund_order::PATH;

/// Get Order as the spec names it (`afterpay_api::operations::get_order::PATH`).
pub const GET_ORDER_PATH: &str = afterpay_api::operations::get_order::PATH;

/// Get Refunds as the spec names it (`afterpay_api::operations::get_refunds::PATH`).
pub const GET_REFUNDS_PATH: &str = afterpay_api::operations::get_refunds::PATH;

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

    fn read_routes(&self) -> &'static [SpecRoute] {
        use afterpay_api::operations::{get_order, get_refunds};
        &[
            SpecRoute {
                method: get_order::METHOD,
                path: get_order::PATH,
            },
            SpecRoute {
                method: get_refunds::METHOD,
                path: get_refunds::PATH,
            },
        ]
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
curl -s {url}/api/v3/orders/AP-1001/refunds -H 'X-Auth-Key: {API_KEY}' -H 'Content-Type: application/json' -d '{{"captureNumber":"{DEFAULT_CAPTURE_NUMBER}","transactionReference":"demo-1","items":[{{"productId":"0001","description":"Item 1 description","netUnitPrice":10.00,"grossUnitPrice":12.00,"quantity":5.0,"vatPercent":20.00,"vatAmount":2.00}}]}}'
# AfterPay: read it back (Get Order; Get Refunds: .../refunds/000000002)
curl -s {url}/api/v3/orders/AP-1001 -H 'X-Auth-Key: {API_KEY}'"#
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

    fn send_example_refund<'a>(
        &'a self,
        client: &'a reqwest::Client,
        order_id: &'a str,
        _currency: &'a str,
        reference: &'a str,
    ) -> SentRefund<'a> {
        let reference = crate::room::json_text(reference);
        let body = format!(
            r#"{{"captureNumber":"{DEFAULT_CAPTURE_NUMBER}","transactionReference":{reference},"items":[{{"productId":"0001","description":"Example item","netUnitPrice":1.00,"grossUnitPrice":1.00,"quantity":1,"vatPercent":0,"vatAmount":0}}]}}"#
        );
        let request = client
            .post(format!(
                "{}/api/v3/orders/{order_id}/refunds",
                self.handle.base_url()
            ))
            .header("X-Auth-Key", API_KEY)
            .header("content-type", "application/json")
            .body(body);
        Box::pin(request.send())
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

/// What AfterPay keeps beside the orders: its answers by order and `transactionReference`,
/// and each refund's items as the request sent them (by order, then refund number), for the
/// reads' `refundItems`.
#[derive(Debug, Default)]
struct Book {
    /// The original answer body of each `transactionReference` on its order, answered again
    /// to a repeat.
    replays: Mutex<ByOrder<Vec<u8>>>,
    items: Mutex<HashMap<String, HashMap<String, Vec<Value>>>>,
}

impl RoomBook for Book {
    fn forget(&self, order_id: &str) {
        lock(&self.replays).forget_order(order_id);
        lock(&self.items).remove(order_id);
    }

    fn forget_all(&self) {
        lock(&self.replays).clear();
        lock(&self.items).clear();
    }
}

/// The refund route, as the router names it.
const REFUND_ROUTE: &str = "/api/v3/orders/{order_number}/refunds";

/// Get Order, as the router names it.
const GET_ORDER_ROUTE: &str = "/api/v3/orders/{order_number}";

/// Get Refunds, as the router names it.
const GET_REFUNDS_ROUTE: &str = "/api/v3/orders/{order_number}/refunds/{refund_number}";

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
    let routes = Routes::new()
        .post(REFUND_ROUTE, MediaType::Json, refund, Arc::clone(&state))
        .get(GET_ORDER_ROUTE, get_order, Arc::clone(&state))
        .get(GET_REFUNDS_ROUTE, get_refunds, state);
    let surface = Surface {
        routes,
        duplicate_key: DuplicateKey::BodyField("transactionReference"),
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
        admin: None,
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

/// [`crate::Fault::Status`]: the status alone (Riverty's 500 has no body).
fn status_fault(code: u16) -> Response {
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        .into_response()
}

async fn refund(
    State(st): State<Arc<AfterPayState>>,
    Path(order_number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match draw_fault(
        &st.shared,
        Operation::Refund,
        &[&order_number],
        status_fault,
    ) {
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
    /// The items as sent, for the reads' `refundItems`.
    sent_items: Vec<Value>,
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
        sent_items: list.to_vec(),
        items_total,
        transaction_reference,
    })
}

/// Whether the request carries the demo `X-Auth-Key`.
fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-auth-key").and_then(|v| v.to_str().ok()) == Some(API_KEY)
}

/// 404 for an order this server does not have.
fn order_not_found(order_number: &str) -> Response {
    errors(
        StatusCode::NOT_FOUND,
        &[ResponseMessage::business(
            "NotFound",
            format!("Order '{order_number}' was not found."),
            Some("orderNumber"),
        )],
    )
}

fn handle(st: &AfterPayState, order_number: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    // "API user is unauthorized. Make sure X-Auth-Key header is sent.": the
    // status alone, no body.
    if !authorized(headers) {
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
        return json_bytes(StatusCode::OK, replay.clone());
    }
    let Some(order) = store.orders.get_mut(order_number) else {
        return order_not_found(order_number);
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
    lock(&st.book.items)
        .entry(order_number.to_owned())
        .or_default()
        .insert(number.clone(), req.sent_items);
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
        replays.insert(key, order_number, bytes.clone());
    }
    json_bytes(StatusCode::OK, bytes)
}

// ---------------------------------------------------------------------------------------------
// Reads: Get Order and Get Refunds (see the module's "Reads").

/// The fields of a refund item a read shows, in the order Riverty's read declares them; the
/// amounts among them are negated.
const REFUND_ITEM_FIELDS: &[(&str, bool)] = &[
    ("productId", false),
    ("groupId", false),
    ("description", false),
    ("type", false),
    ("netUnitPrice", true),
    ("grossUnitPrice", true),
    ("quantity", false),
    ("unitCode", false),
    ("vatCategory", false),
    ("vatPercent", false),
    ("vatAmount", true),
    ("imageUrl", false),
    ("lineNumber", false),
];

/// One `refundItems[]` entry: the refund's id, then the request item's fields as sent (amounts
/// negated), in [`REFUND_ITEM_FIELDS`]' order.
struct RefundItem {
    refund_id: String,
    fields: Vec<(&'static str, Value)>,
}

impl RefundItem {
    fn new(refund_id: &str, sent: &Value) -> Self {
        let fields = REFUND_ITEM_FIELDS
            .iter()
            .filter_map(|(name, negate)| {
                let value = sent.get(name).filter(|v| !v.is_null())?;
                Some((
                    *name,
                    if *negate {
                        wire::negated(value)
                    } else {
                        value.clone()
                    },
                ))
            })
            .collect();
        RefundItem {
            refund_id: refund_id.to_owned(),
            fields,
        }
    }
}

impl Serialize for RefundItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len() + 1))?;
        map.serialize_entry("refundId", &self.refund_id)?;
        for (name, value) in &self.fields {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// One refund as Get Order and Get Refunds show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundRecord {
    refund_id: String,
    reservation_id: String,
    refund_number: String,
    order_number: String,
    #[serde(with = "json_decimal::number")]
    amount: Decimal,
    #[serde(with = "json_decimal::number")]
    balance: Decimal,
    currency: String,
    inserted_at: String,
    updated_at: String,
    capture_number: String,
    refund_items: Vec<RefundItem>,
}

#[derive(Serialize)]
struct GetRefundsBody {
    refunds: Vec<RefundRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetOrderBody {
    order_details: OrderDetails,
    payment: Payment,
    captures: Vec<Capture>,
    refunds: Vec<RefundRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderDetails {
    order_id: String,
    order_number: String,
    #[serde(with = "json_decimal::number")]
    total_net_amount: Decimal,
    #[serde(with = "json_decimal::number")]
    total_gross_amount: Decimal,
    currency: String,
    inserted_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct Payment {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Capture {
    reservation_id: String,
    capture_number: String,
    order_number: String,
    #[serde(with = "json_decimal::number")]
    amount: Decimal,
    #[serde(with = "json_decimal::number")]
    balance: Decimal,
    #[serde(with = "json_decimal::number")]
    total_refunded_amount: Decimal,
    currency: String,
    inserted_at: String,
    updated_at: String,
}

/// A stable UUID (v5) for `what` of an order.
fn stable_uuid(what: &str, order_number: &str, more: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("afterpay-{what}:{order_number}:{more}").as_bytes(),
    )
    .to_string()
}

/// The order's refunds a read lists, from the server's ledger and book.
fn listed_refunds(st: &AfterPayState, order: &Order) -> Vec<RefundRecord> {
    let items = lock(&st.book.items);
    listed(order, st.shared.read_delay(), items.get(&order.state.id))
}

/// The order's refunds a read lists: booked (succeeded) ones recorded at least `read_delay`
/// ago, oldest first, with the items `sent` (by refund number).
fn listed(
    order: &Order,
    read_delay: std::time::Duration,
    sent: Option<&HashMap<String, Vec<Value>>>,
) -> Vec<RefundRecord> {
    let id = &order.state.id;
    let currency = &order.state.currency;
    let exp = money::exponent(currency).unwrap_or(2);
    let capture = capture_number(&order.seed).to_owned();
    order
        .readable(read_delay)
        .into_iter()
        .filter(|r| r.refund.status == RefundStatus::Succeeded)
        .map(|r| {
            let number = r.refund.id.clone();
            let refund_id = stable_uuid("refund", id, &number);
            let refund_items = sent
                .and_then(|by_number| by_number.get(&number))
                .map(|list| {
                    list.iter()
                        .map(|item| RefundItem::new(&refund_id, item))
                        .collect()
                })
                .unwrap_or_default();
            let amount = -money::normalize(r.refund.amount, exp);
            RefundRecord {
                reservation_id: stable_uuid("reservation", id, ""),
                refund_number: number,
                order_number: id.clone(),
                amount,
                balance: amount,
                currency: currency.clone(),
                inserted_at: clock::rfc3339(r.recorded_at),
                updated_at: clock::rfc3339(r.recorded_at),
                capture_number: capture.clone(),
                refund_items,
                refund_id,
            }
        })
        .collect()
}

/// Get Order's answer for `order`.
fn order_body(st: &AfterPayState, order: &Order) -> GetOrderBody {
    let s = &order.state;
    let exp = money::exponent(&s.currency).unwrap_or(2);
    let refunds = listed_refunds(st, order);
    // The refunded total the capture shows: what was refunded before seeding, plus the
    // refunds listed.
    let recorded: Decimal = s
        .refunds
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
        .map(|r| r.amount)
        .sum();
    let listed: Decimal = refunds.iter().map(|r| -r.amount).sum();
    let refunded = (s.refunded - recorded).max(Decimal::ZERO) + listed;
    let created = clock::rfc3339(order.created);
    let updated = clock::rfc3339(order.updated);
    let captures = if s.captured > Decimal::ZERO {
        vec![Capture {
            reservation_id: stable_uuid("reservation", &s.id, ""),
            capture_number: capture_number(&order.seed).to_owned(),
            order_number: s.id.clone(),
            amount: money::normalize(s.captured, exp),
            balance: money::normalize(s.captured - refunded, exp),
            total_refunded_amount: money::normalize(refunded, exp),
            currency: s.currency.clone(),
            inserted_at: created.clone(),
            updated_at: updated.clone(),
        }]
    } else {
        Vec::new()
    };
    GetOrderBody {
        order_details: OrderDetails {
            order_id: stable_uuid("order", &s.id, ""),
            order_number: s.id.clone(),
            total_net_amount: money::normalize(s.authorized, exp),
            total_gross_amount: money::normalize(s.authorized, exp),
            currency: s.currency.clone(),
            inserted_at: created,
            updated_at: updated,
        },
        payment: Payment { kind: "Invoice" },
        captures,
        refunds,
    }
}

/// Get Order (`GET /api/v3/orders/{orderNumber}`).
async fn get_order(
    State(st): State<Arc<AfterPayState>>,
    Path(order_number): Path<String>,
    headers: HeaderMap,
) -> Response {
    let fault = match draw_fault(&st.shared, Operation::Read, &[&order_number], status_fault) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_read(fault, async move {
        if !authorized(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let store = lock(&st.shared.store);
        match store.orders.get(&order_number) {
            Some(order) => json(StatusCode::OK, &order_body(&st, order)),
            None => order_not_found(&order_number),
        }
    })
    .await
}

/// Get Refunds (`GET /api/v3/orders/{orderNumber}/refunds/{refundNumber}`): the one refund.
async fn get_refunds(
    State(st): State<Arc<AfterPayState>>,
    Path((order_number, refund_number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = match draw_fault(&st.shared, Operation::Read, &[&order_number], status_fault) {
        Drawn::Work(fault) => fault,
        Drawn::Answer(answer) => return answer,
    };
    run_read(fault, async move {
        if !authorized(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let store = lock(&st.shared.store);
        let Some(order) = store.orders.get(&order_number) else {
            return order_not_found(&order_number);
        };
        let refunds: Vec<RefundRecord> = listed_refunds(&st, order)
            .into_iter()
            .filter(|r| r.refund_number == refund_number)
            .collect();
        if refunds.is_empty() {
            return errors(
                StatusCode::NOT_FOUND,
                &[ResponseMessage::business(
                    "NotFound",
                    format!("Refund '{refund_number}' was not found for order '{order_number}'."),
                    Some("refundNumber"),
                )],
            );
        }
        json(StatusCode::OK, &GetRefundsBody { refunds })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::build_order;

    #[test]
    fn only_booked_refunds_are_listed_negative_with_their_items() {
        let seed = OrderSeed::new("AP-1", "EUR", Decimal::new(10000, 2));
        let mut order = build_order(seed, Units::Major).unwrap();
        for (number, status) in [
            ("000000002", RefundStatus::Succeeded),
            ("000000003", RefundStatus::Pending),
            ("000000004", RefundStatus::Failed),
        ] {
            order.record(RecordedRefund {
                id: number.to_owned(),
                reference: None,
                amount: Decimal::new(1250, 2),
                status,
                created_at: now_rfc3339(),
            });
        }
        let item = crate::wire::from_slice(
            br#"{"productId":"P","description":"d","netUnitPrice":10.50,"grossUnitPrice":12.50,"quantity":1,"vatPercent":19,"vatAmount":2.00,"refundType":"Return"}"#,
        )
        .unwrap();
        let sent = HashMap::from([("000000002".to_owned(), vec![item])]);
        let listed = listed(&order, std::time::Duration::ZERO, Some(&sent));
        let numbers: Vec<&str> = listed.iter().map(|r| r.refund_number.as_str()).collect();
        assert_eq!(numbers, ["000000002"], "a listed refund is booked");
        let json = serde_json::to_value(&listed[0]).unwrap();
        assert_eq!(json["amount"], serde_json::json!(-12.50));
        assert_eq!(json["balance"], serde_json::json!(-12.50));
        assert_eq!(
            json["refundItems"][0],
            serde_json::json!({"refundId": listed[0].refund_id, "productId":"P","description":"d",
                "netUnitPrice":-10.50,"grossUnitPrice":-12.50,"quantity":1,"vatPercent":19,"vatAmount":-2.00})
        );
        assert!(listed_is_empty_when_delayed(&order));
    }

    fn listed_is_empty_when_delayed(order: &Order) -> bool {
        listed(order, std::time::Duration::from_secs(3600), None).is_empty()
    }
}
