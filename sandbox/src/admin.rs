//! The admin API: orders, the refund ledger, faults, settlement and the
//! request log, the same on every provider's server under `/__admin`, JSON
//! in and out, described by `sandbox/admin.openapi.json`.
//!
//! One implementation: the operations are methods of the provider's shared
//! state (`shared.rs`); [`crate::ProviderHandle`]'s methods and the HTTP handlers
//! here both call them. The HTTP side only turns JSON into the same Rust values
//! ([`OrderSeed`], [`Fault`], [`Match`]..) and back.
//!
//! | operation | HTTP | Rust |
//! |---|---|---|
//! | server info | `GET /__admin` | [`crate::ProviderHandle::provider`], `requests_received`, `refund_count` |
//! | seed an order | `POST /__admin/orders` | [`crate::ProviderHandle::try_seed_order`] |
//! | read orders | `GET /__admin/orders`, `GET /__admin/orders/{id}` | `orders`, `order` |
//! | remove orders | `DELETE /__admin/orders`, `DELETE /__admin/orders/{id}` | `reset_orders`, `delete_order` |
//! | the refund ledger | `GET /__admin/refunds?order=&reference=&status=` | `ledger` |
//! | settle a refund | `POST /__admin/orders/{order_id}/refunds/{refund_id}/settle` | `settle` |
//! | faults (on refunds or reads: `operation`) | `POST`, `GET`, `DELETE /__admin/faults`, `GET`, `DELETE /__admin/faults/{id}` | `inject`, `fault_rules`, `clear_faults`, `clear_fault` |
//! | settings: the read delay | `GET`, `PATCH /__admin/settings` | `read_delay`, `set_read_delay` |
//! | request log | `GET /__admin/requests?since=`, `DELETE /__admin/requests` | `request_log`, `clear_request_log` |
//! | reset everything | `POST /__admin/reset` | `reset` |
//! | Optty only: notifications | `GET`, `PATCH`, `DELETE /__admin/notifications` | [`crate::OpttyServer`]'s `notify_settings`, `set_notify_settings`, `notifications`, `clear_notifications` |
//!
//! The settings survive `POST /__admin/reset` (it empties the state, not the configuration).
//! A provider's own admin routes (Optty's notifications) live in its room; the other servers
//! answer them 404 like any unknown admin route.
//!
//! Errors are `{"error": "<what is wrong>", "field": "<the field at fault>"}`
//! (`field` names the JSON field, query parameter or path parameter, e.g.
//! `fault.status` or `captured`; absent when no field is at fault) with 400
//! (invalid), 404 (no such order, refund, fault or route), 405, 409 (a
//! settled refund asked to change its outcome) or 413.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::fault::{Fault, FaultRule, Match, Operation, Trigger};
use crate::response::json;
use crate::shared::{Shared, status_name};
use crate::state::{OrderSeed, RefundStatus};
use crate::wire::{self, Map, Value};

// The operations' types live with the operations (`shared.rs`); their public paths stay here.
pub use crate::shared::{
    AdminError, AdminErrorKind, LedgerEntry, LedgerFilter, LoggedRequest, MAX_READ_DELAY_MS,
    Outcome, REQUEST_LOG_CAPACITY,
};

/// Where the admin routes live on every server.
pub(crate) const PREFIX: &str = "/__admin";

/// The longest [`Fault::Latency`] the admin API accepts (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// The largest [`Fault::OversizedBody`] the admin API accepts (16 GiB; the
/// body is streamed, never held).
pub const MAX_OVERSIZED_BODY: u64 = 1 << 34;

/// The largest [`Fault::OversizedHeaders`] the admin API accepts (64 MiB;
/// the header is held in memory while it is sent).
pub const MAX_OVERSIZED_HEADERS: u64 = 1 << 26;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// The HTTP answer for an admin error.
pub(crate) fn error_response(e: &AdminError) -> Response {
    json(
        StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
        &ErrorBody {
            error: &e.message,
            field: e.field.as_deref(),
        },
    )
}

// ---------------------------------------------------------------------------
// JSON forms of faults, matches and fault rules.

/// `{"kind":"latency","ms":250}`, `{"kind":"status","status":503}`..
#[derive(Serialize)]
struct FaultJson {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

impl From<&Fault> for FaultJson {
    fn from(f: &Fault) -> Self {
        let mut json = FaultJson {
            kind: f.kind(),
            ms: None,
            status: None,
            bytes: None,
        };
        match f {
            Fault::Latency(d) => json.ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Fault::Status(s) | Fault::StatusAfterCommit(s) => json.status = Some(*s),
            Fault::OversizedBody(n) | Fault::OversizedHeaders(n) => {
                json.bytes = Some(u64::try_from(*n).unwrap_or(u64::MAX));
            }
            Fault::DropAfterCommit
            | Fault::MalformedBody
            | Fault::NonJson502
            | Fault::UnsignedAnswer
            | Fault::WrongSignature => {}
        }
        json
    }
}

/// `{"kind":"any"}`, `{"kind":"order","order":"ORD-1"}`, `{"kind":"nth","n":2}`.
#[derive(Serialize)]
struct MatchJson<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<usize>,
}

impl<'a> From<&'a Match> for MatchJson<'a> {
    fn from(m: &'a Match) -> Self {
        match m {
            Match::Any => MatchJson {
                kind: "any",
                order: None,
                n: None,
            },
            Match::Order(id) => MatchJson {
                kind: "order",
                order: Some(id),
                n: None,
            },
            Match::Nth(n) => MatchJson {
                kind: "nth",
                order: None,
                n: Some(*n),
            },
        }
    }
}

#[derive(Serialize)]
struct FaultRuleJson<'a> {
    id: u64,
    fault: FaultJson,
    #[serde(rename = "match")]
    matcher: MatchJson<'a>,
    operation: &'static str,
    times_left: Option<usize>,
    seen: usize,
    fired: usize,
}

impl<'a> From<&'a FaultRule> for FaultRuleJson<'a> {
    fn from(r: &'a FaultRule) -> Self {
        FaultRuleJson {
            id: r.id,
            fault: FaultJson::from(&r.fault),
            matcher: MatchJson::from(&r.matcher),
            operation: r.operation.as_str(),
            times_left: r.times_left,
            seen: r.seen,
            fired: r.fired,
        }
    }
}

// ---------------------------------------------------------------------------
// Reading JSON input field by field, so every error names its field.

pub(crate) fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, AdminError> {
    v.as_object()
        .ok_or_else(|| AdminError::invalid(field, "must be a JSON object"))
}

pub(crate) fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), AdminError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(AdminError::invalid(
            k,
            format!("unknown field; expected one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A present, non-null member.
pub(crate) fn member<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Value, AdminError> {
    member(obj, field).ok_or_else(|| AdminError::invalid(field, "is required"))
}

pub(crate) fn string(v: &Value, field: &str) -> Result<String, AdminError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| AdminError::invalid(field, "must be a string"))
}

fn optional_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, AdminError> {
    member(obj, field).map(|v| string(v, field)).transpose()
}

fn decimal(v: &Value, field: &str) -> Result<Decimal, AdminError> {
    wire::decimal(v).ok_or_else(|| AdminError::invalid(field, "must be a number"))
}

/// A whole number in `min..=max`.
pub(crate) fn whole(v: &Value, field: &str, min: u64, max: u64) -> Result<u64, AdminError> {
    wire::integer(v)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            AdminError::invalid(field, format!("must be a whole number from {min} to {max}"))
        })
}

fn refund_status(
    v: &Value,
    field: &str,
    allowed: &[RefundStatus],
) -> Result<RefundStatus, AdminError> {
    let names: Vec<&str> = allowed.iter().map(|s| status_name(*s)).collect();
    v.as_str()
        .and_then(|s| allowed.iter().find(|a| status_name(**a) == s).copied())
        .ok_or_else(|| AdminError::invalid(field, format!("must be one of {}", names.join(", "))))
}

/// An [`OrderSeed`] as JSON (see `OrderSeed` in `admin.openapi.json`).
pub(crate) fn parse_seed(v: &Value) -> Result<OrderSeed, AdminError> {
    let obj = object(v, "body")?;
    only_fields(
        obj,
        &[
            "id",
            "currency",
            "captured",
            "authorized",
            "refunded",
            "capture_number",
            "oa_order_id",
            "owner",
            "refund_status",
        ],
    )?;
    let mut seed = OrderSeed::new(
        string(required(obj, "id")?, "id")?,
        string(required(obj, "currency")?, "currency")?,
        decimal(required(obj, "captured")?, "captured")?,
    );
    seed.authorized = member(obj, "authorized")
        .map(|v| decimal(v, "authorized"))
        .transpose()?;
    if let Some(v) = member(obj, "refunded") {
        seed.refunded = decimal(v, "refunded")?;
    }
    seed.capture_number = optional_string(obj, "capture_number")?;
    seed.oa_order_id = optional_string(obj, "oa_order_id")?;
    seed.owner = optional_string(obj, "owner")?;
    if let Some(v) = member(obj, "refund_status") {
        seed.refund_status = refund_status(
            v,
            "refund_status",
            &[RefundStatus::Succeeded, RefundStatus::Pending],
        )?;
    }
    Ok(seed)
}

/// A [`Fault`] as JSON, e.g. `{"kind":"status","status":503}`.
fn parse_fault(v: &Value) -> Result<Fault, AdminError> {
    let obj = object(v, "")?;
    let kind = string(required(obj, "kind")?, "kind")?;
    let bare = |fault: Fault| only_fields(obj, &["kind"]).map(|()| fault);
    match kind.as_str() {
        "latency" => {
            only_fields(obj, &["kind", "ms"])?;
            let ms = whole(required(obj, "ms")?, "ms", 0, MAX_LATENCY_MS)?;
            Ok(Fault::Latency(Duration::from_millis(ms)))
        }
        "status" => Ok(Fault::Status(status_code(obj)?)),
        "status_after_commit" => Ok(Fault::StatusAfterCommit(status_code(obj)?)),
        "oversized_body" => Ok(Fault::OversizedBody(bytes(obj, MAX_OVERSIZED_BODY)?)),
        "oversized_headers" => Ok(Fault::OversizedHeaders(bytes(obj, MAX_OVERSIZED_HEADERS)?)),
        "drop_after_commit" => bare(Fault::DropAfterCommit),
        "malformed_body" => bare(Fault::MalformedBody),
        "non_json_502" => bare(Fault::NonJson502),
        "unsigned_answer" => bare(Fault::UnsignedAnswer),
        "wrong_signature" => bare(Fault::WrongSignature),
        _ => Err(AdminError::invalid(
            "kind",
            "must be one of latency, status, drop_after_commit, malformed_body, \
             non_json_502, status_after_commit, unsigned_answer, wrong_signature, \
             oversized_body, oversized_headers",
        )),
    }
}

/// The size of [`Fault::OversizedBody`] and [`Fault::OversizedHeaders`].
fn bytes(obj: &Map<String, Value>, max: u64) -> Result<usize, AdminError> {
    only_fields(obj, &["kind", "bytes"])?;
    let n = whole(required(obj, "bytes")?, "bytes", 0, max)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// An HTTP status for [`Fault::Status`] and [`Fault::StatusAfterCommit`].
fn status_code(obj: &Map<String, Value>) -> Result<u16, AdminError> {
    only_fields(obj, &["kind", "status"])?;
    let n = whole(required(obj, "status")?, "status", 100, 599)?;
    Ok(u16::try_from(n).unwrap_or(500))
}

/// A [`Match`] as JSON, e.g. `{"kind":"order","order":"ORD-1"}`.
fn parse_match(v: &Value) -> Result<Match, AdminError> {
    let obj = object(v, "")?;
    let kind = string(required(obj, "kind")?, "kind")?;
    match kind.as_str() {
        "any" => {
            only_fields(obj, &["kind"])?;
            Ok(Match::Any)
        }
        "order" => {
            only_fields(obj, &["kind", "order"])?;
            Ok(Match::Order(string(required(obj, "order")?, "order")?))
        }
        "nth" => {
            only_fields(obj, &["kind", "n"])?;
            let n = whole(required(obj, "n")?, "n", 1, u64::from(u32::MAX))?;
            Ok(Match::Nth(usize::try_from(n).unwrap_or(usize::MAX)))
        }
        _ => Err(AdminError::invalid(
            "kind",
            "must be one of any, order, nth",
        )),
    }
}

/// `POST /__admin/faults`'s body: `{"fault": {..}, "match": {..}, "times": n, "operation":
/// "refund"|"read"}`.
fn parse_fault_request(v: &Value) -> Result<(Fault, Trigger), AdminError> {
    let obj = object(v, "body")?;
    only_fields(obj, &["fault", "match", "times", "operation"])?;
    let fault = parse_fault(required(obj, "fault")?).map_err(|e| e.within("fault"))?;
    let matcher = match member(obj, "match") {
        Some(m) => parse_match(m).map_err(|e| e.within("match"))?,
        None => Match::Any,
    };
    let times = member(obj, "times")
        .map(|t| whole(t, "times", 1, u64::from(u32::MAX)))
        .transpose()?
        .map(|t| usize::try_from(t).unwrap_or(usize::MAX));
    let operation = match member(obj, "operation") {
        Some(v) => operation(v)?,
        None => Operation::Refund,
    };
    Ok((
        fault,
        Trigger {
            matcher,
            times,
            operation,
        },
    ))
}

/// An [`Operation`] as the admin API writes it.
fn operation(v: &Value) -> Result<Operation, AdminError> {
    [Operation::Refund, Operation::Read]
        .into_iter()
        .find(|op| v.as_str() == Some(op.as_str()))
        .ok_or_else(|| AdminError::invalid("operation", "must be one of refund, read"))
}

/// A request body as JSON, numbers exact.
pub(crate) fn body_json(body: &[u8]) -> Result<Value, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AdminError::invalid("body", "a JSON body is required"));
    }
    wire::from_slice(body).map_err(|e| AdminError::invalid("body", format!("not JSON: {e}")))
}

/// The query parameters, refusing any not in `allowed`.
fn query(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, AdminError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| AdminError::invalid("query", e.to_string()))?;
    match pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(AdminError::invalid(
            k,
            format!(
                "unknown query parameter; expected one of {}",
                allowed.join(", ")
            ),
        )),
        None => Ok(pairs),
    }
}

// ---------------------------------------------------------------------------
// HTTP.

type St = State<Arc<Shared>>;

fn answer<T: Serialize>(status: StatusCode, result: Result<T, AdminError>) -> Response {
    match result {
        Ok(value) => json(status, &value),
        Err(e) => error_response(&e),
    }
}

/// The admin routes, with the state they work on.
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__admin", get(info))
        .route(
            "/__admin/orders",
            get(list_orders).post(seed_order).delete(delete_orders),
        )
        .route("/__admin/orders/{id}", get(get_order).delete(delete_order))
        .route(
            "/__admin/orders/{order_id}/refunds/{refund_id}/settle",
            post(settle),
        )
        .route("/__admin/refunds", get(ledger))
        .route(
            "/__admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__admin/faults/{id}", get(get_fault).delete(delete_fault))
        .route("/__admin/requests", get(requests).delete(clear_requests))
        .route("/__admin/settings", get(settings).patch(change_settings))
        .route("/__admin/reset", post(reset))
        .with_state(shared)
}

#[derive(Serialize)]
struct Info {
    provider: &'static str,
    orders: usize,
    refunds: usize,
    faults: usize,
    requests_received: usize,
    in_flight: usize,
}

async fn info(State(shared): St) -> Response {
    // One lock at a time: a guard held across the next call would deadlock.
    let orders = shared.order_count();
    let info = Info {
        provider: shared.provider,
        orders,
        refunds: shared.ledger(&LedgerFilter::default()).len(),
        faults: shared.fault_rules().len(),
        requests_received: shared.requests_received(),
        in_flight: shared.in_flight(),
    };
    json(StatusCode::OK, &info)
}

async fn list_orders(State(shared): St) -> Response {
    json(StatusCode::OK, &shared.orders())
}

async fn seed_order(State(shared): St, body: Bytes) -> Response {
    let result = body_json(&body)
        .and_then(|v| parse_seed(&v))
        .and_then(|seed| shared.seed(seed).map_err(AdminError::from));
    answer(StatusCode::CREATED, result)
}

#[derive(Serialize)]
struct Removed {
    removed: usize,
}

async fn delete_orders(State(shared): St) -> Response {
    json(
        StatusCode::OK,
        &Removed {
            removed: shared.reset_orders(),
        },
    )
}

fn no_order(id: &str) -> AdminError {
    AdminError::not_found("id", format!("no order {id}"))
}

async fn get_order(State(shared): St, Path(id): Path<String>) -> Response {
    answer(
        StatusCode::OK,
        shared.order(&id).ok_or_else(|| no_order(&id)),
    )
}

async fn delete_order(State(shared): St, Path(id): Path<String>) -> Response {
    answer(
        StatusCode::OK,
        shared.delete_order(&id).ok_or_else(|| no_order(&id)),
    )
}

async fn settle(
    State(shared): St,
    Path((order_id, refund_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = body_json(&body).and_then(|v| {
        let obj = object(&v, "body")?;
        only_fields(obj, &["status"])?;
        let status = refund_status(
            required(obj, "status")?,
            "status",
            &[RefundStatus::Succeeded, RefundStatus::Failed],
        )?;
        shared.settle(&order_id, &refund_id, status)
    });
    answer(StatusCode::OK, result)
}

async fn ledger(State(shared): St, RawQuery(raw): RawQuery) -> Response {
    let result = query(raw.as_deref(), &["order", "reference", "status"]).and_then(|pairs| {
        let mut filter = LedgerFilter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "order" => filter.order = Some(v),
                "reference" => filter.reference = Some(v),
                _ => {
                    filter.status = Some(refund_status(
                        &Value::String(v),
                        "status",
                        &[
                            RefundStatus::Succeeded,
                            RefundStatus::Pending,
                            RefundStatus::Failed,
                        ],
                    )?);
                }
            }
        }
        Ok(shared.ledger(&filter))
    });
    answer(StatusCode::OK, result)
}

async fn list_faults(State(shared): St) -> Response {
    let rules = shared.fault_rules();
    let json_rules: Vec<FaultRuleJson> = rules.iter().map(FaultRuleJson::from).collect();
    json(StatusCode::OK, &json_rules)
}

/// The rule with this id as JSON, or 404.
fn fault_rule(shared: &Shared, id: u64) -> Response {
    match shared.fault_rules().iter().find(|r| r.id == id) {
        Some(rule) => json(StatusCode::OK, &FaultRuleJson::from(rule)),
        None => error_response(&no_fault(id)),
    }
}

fn no_fault(id: u64) -> AdminError {
    AdminError::not_found("id", format!("no fault {id}"))
}

async fn add_fault(State(shared): St, body: Bytes) -> Response {
    match body_json(&body).and_then(|v| parse_fault_request(&v)) {
        Ok((fault, trigger)) => {
            let handle = shared.add_fault(fault, trigger);
            let mut res = fault_rule(&shared, handle.id());
            *res.status_mut() = StatusCode::CREATED;
            res
        }
        Err(e) => error_response(&e),
    }
}

async fn clear_faults(State(shared): St) -> Response {
    let removed = shared.fault_rules().len();
    shared.clear_faults();
    json(StatusCode::OK, &Removed { removed })
}

fn fault_id(raw: &str) -> Result<u64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::invalid("id", "must be a fault id (a whole number)"))
}

async fn get_fault(State(shared): St, Path(id): Path<String>) -> Response {
    match fault_id(&id) {
        Ok(id) => fault_rule(&shared, id),
        Err(e) => error_response(&e),
    }
}

async fn delete_fault(State(shared): St, Path(id): Path<String>) -> Response {
    let result = fault_id(&id).and_then(|id| {
        if shared.clear_fault(id) {
            Ok(Removed { removed: 1 })
        } else {
            Err(no_fault(id))
        }
    });
    answer(StatusCode::OK, result)
}

async fn requests(State(shared): St, RawQuery(raw): RawQuery) -> Response {
    let result = query(raw.as_deref(), &["since"]).and_then(|pairs| {
        let since = pairs
            .into_iter()
            .map(|(_, v)| {
                v.parse::<u64>()
                    .map_err(|_| AdminError::invalid("since", "must be a whole number"))
            })
            .next_back()
            .transpose()?;
        Ok(shared.request_log(since))
    });
    answer(StatusCode::OK, result)
}

async fn clear_requests(State(shared): St) -> Response {
    json(
        StatusCode::OK,
        &Removed {
            removed: shared.clear_request_log(),
        },
    )
}

/// `GET /__admin/settings`: the server's settings an admin call can change.
#[derive(Serialize)]
struct Settings {
    read_delay_ms: u64,
}

fn current_settings(shared: &Shared) -> Settings {
    Settings {
        read_delay_ms: u64::try_from(shared.read_delay().as_millis()).unwrap_or(u64::MAX),
    }
}

async fn settings(State(shared): St) -> Response {
    json(StatusCode::OK, &current_settings(&shared))
}

/// `PATCH /__admin/settings`: `{"read_delay_ms": n}`; the fields given change, the others stay.
async fn change_settings(State(shared): St, body: Bytes) -> Response {
    let result = body_json(&body).and_then(|v| {
        let obj = object(&v, "body")?;
        only_fields(obj, &["read_delay_ms"])?;
        if let Some(ms) = member(obj, "read_delay_ms") {
            let ms = whole(ms, "read_delay_ms", 0, MAX_READ_DELAY_MS)?;
            shared.set_read_delay(Duration::from_millis(ms));
        }
        Ok(current_settings(&shared))
    });
    answer(StatusCode::OK, result)
}

#[derive(Serialize)]
struct ResetDone {
    orders: usize,
    faults: usize,
    requests: usize,
}

async fn reset(State(shared): St) -> Response {
    let orders = shared.order_count();
    let requests = shared.request_log_len();
    let done = ResetDone {
        orders,
        faults: shared.fault_rules().len(),
        requests,
    };
    shared.reset();
    json(StatusCode::OK, &done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        wire::from_slice(s.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn faults_parse_and_name_the_field_at_fault() {
        let (fault, trigger) = parse_fault_request(&v(
            r#"{"fault":{"kind":"status","status":503},"match":{"kind":"order","order":"O-1"},"times":2}"#,
        ))
        .unwrap();
        assert_eq!(fault, Fault::Status(503));
        assert_eq!(trigger, Match::Order("O-1".into()).times(2));
        let err = |s: &str| parse_fault_request(&v(s)).unwrap_err().field;
        assert_eq!(
            err(r#"{"fault":{"kind":"status","status":42}}"#).as_deref(),
            Some("fault.status")
        );
        assert_eq!(
            err(r#"{"fault":{"kind":"nope"}}"#).as_deref(),
            Some("fault.kind")
        );
        assert_eq!(
            err(r#"{"fault":{"kind":"latency","ms":1,"x":1}}"#).as_deref(),
            Some("fault.x")
        );
        assert_eq!(
            err(r#"{"fault":{"kind":"malformed_body"},"match":{"kind":"nth","n":0}}"#).as_deref(),
            Some("match.n")
        );
        assert_eq!(
            err(r#"{"fault":{"kind":"malformed_body"},"times":0}"#).as_deref(),
            Some("times")
        );
        assert_eq!(err(r#"{"match":{"kind":"any"}}"#).as_deref(), Some("fault"));
        assert_eq!(
            err(r#"{"fault":{"kind":"non_json_502"},"operation":"write"}"#).as_deref(),
            Some("operation")
        );
        let (_, trigger) = parse_fault_request(&v(
            r#"{"fault":{"kind":"non_json_502"},"match":{"kind":"nth","n":2},"operation":"read"}"#,
        ))
        .unwrap();
        assert_eq!(trigger, Match::Nth(2).on(Operation::Read));
        let (_, trigger) = parse_fault_request(&v(r#"{"fault":{"kind":"non_json_502"}}"#)).unwrap();
        assert_eq!(trigger.operation, Operation::Refund);
    }

    #[test]
    fn every_fault_round_trips_through_its_json() {
        for fault in [
            Fault::Latency(Duration::from_millis(250)),
            Fault::Status(503),
            Fault::DropAfterCommit,
            Fault::MalformedBody,
            Fault::NonJson502,
            Fault::StatusAfterCommit(504),
            Fault::UnsignedAnswer,
            Fault::WrongSignature,
            Fault::OversizedBody(1 << 20),
            Fault::OversizedHeaders(1 << 16),
        ] {
            let text = serde_json::to_string(&FaultJson::from(&fault)).unwrap_or_default();
            assert_eq!(parse_fault(&v(&text)).unwrap(), fault, "{text}");
        }
    }
}
