//! The plumbing every provider's server shares: the handle, serving, the router-level answers
//! (unknown route, wrong method, oversized body, wrong content type) in each provider's own
//! error shape, request counting and the request log, and applying a refund's or a read's
//! fault to its answer. The state and its operations live in [`crate::shared`], the admin
//! routes over them in [`crate::admin`], the responses faults answer with in
//! [`crate::response`].

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin;
use crate::fault::{
    AlterAnswer, Fault, FaultHandle, FaultRule, FiredFault, Operation, Trigger, answer_unaltered,
};
use crate::response::{
    drop_connection, gateway_status, is_dropped, malformed_body, non_json_502, oversized_body,
    with_padding_header,
};
use crate::shared::{AdminError, LedgerEntry, LedgerFilter, LoggedRequest, Outcome, Shared};
use crate::state::{OrderSeed, OrderState, RecordedRefund, RefundStatus, SeedError};

/// A running provider server: its address, its orders and its faults.
///
/// Every provider's server type ([`crate::OpttyServer`] and the others)
/// dereferences to this, so `sb.optty().base_url()` and `sb.moyasar().inject(..)`
/// read the same everywhere, and [`crate::Sandbox::handle`] finds it by the
/// provider's name. Dropping the handle stops the server.
///
/// Every method here is also an admin HTTP operation (`/__admin/..`, see
/// `sandbox/admin.openapi.json`): both call the same function, so what a Rust
/// test and a client in another language can do and see is the same.
#[derive(Debug)]
pub struct ProviderHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ProviderHandle {
    /// `http://<address>:<port>`, no trailing slash. A server bound to the
    /// unspecified address (`0.0.0.0`, `::`) reports the loopback address of
    /// the same family, which is where a local client reaches it.
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The provider's name in the list ([`crate::PROVIDERS`]): `optty`, `afterpay`,
    /// `moyasar`, `openapp`.
    pub fn provider(&self) -> &'static str {
        self.shared.provider
    }

    /// Creates (or replaces, resetting its refunds) an order.
    ///
    /// # Panics
    /// If the seed is invalid (see [`ProviderHandle::try_seed_order`]); this
    /// is a test helper and a bad seed is a bug in the test.
    pub fn seed_order(&self, seed: OrderSeed) {
        if let Err(e) = self.try_seed_order(seed) {
            panic!("{e}");
        }
    }

    /// Creates (or replaces) an order; its refunds and the duplicate keys
    /// used on it are forgotten. Refuses unknown currencies, negative
    /// amounts, refunded > captured > authorized, and amounts that do not
    /// convert exactly to the provider's minor units, naming the field.
    /// `POST /__admin/orders`.
    pub fn try_seed_order(&self, seed: OrderSeed) -> Result<OrderState, SeedError> {
        self.shared.seed(seed)
    }

    /// A snapshot of an order by its seed id or the provider's other id for it
    /// (OpenApp: its `oaOrderId`).
    /// `GET /__admin/orders/{id}`.
    pub fn order(&self, id: &str) -> Option<OrderState> {
        self.shared.order(id)
    }

    /// Snapshots of all orders, by id. `GET /__admin/orders`.
    pub fn orders(&self) -> Vec<OrderState> {
        self.shared.orders()
    }

    /// Removes one order with its refunds and the duplicate keys used on it.
    /// `DELETE /__admin/orders/{id}`.
    pub fn delete_order(&self, id: &str) -> Option<OrderState> {
        self.shared.delete_order(id)
    }

    /// Removes every order, every recorded refund and every remembered
    /// duplicate key; returns how many orders there were.
    /// `DELETE /__admin/orders`.
    pub fn reset_orders(&self) -> usize {
        self.shared.reset_orders()
    }

    /// Back to a fresh server: no orders, refunds, duplicate keys, faults or
    /// logged requests, and [`ProviderHandle::requests_received`] at 0.
    /// Provider settings (token lifetime, response signing..) stay.
    /// `POST /__admin/reset`.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// How many refunds were recorded through the API, over all orders.
    pub fn refund_count(&self) -> usize {
        self.shared.ledger(&LedgerFilter::default()).len()
    }

    /// The refund ledger: every refund recorded through the API (by order
    /// id, then oldest first) that `filter` lets through.
    /// `GET /__admin/refunds`.
    pub fn ledger(&self, filter: &LedgerFilter) -> Vec<LedgerEntry> {
        self.shared.ledger(filter)
    }

    /// Every refund recorded through the API, over all orders (by order
    /// id, then oldest first), whose duplicate key
    /// ([`crate::RecordedRefund::reference`]) is `reference`: for a ledger
    /// check such as "exactly one refund per merchant reference". Refunds
    /// recorded without a key never match.
    /// `GET /__admin/refunds?reference=..`.
    pub fn refunds_with_reference(&self, reference: &str) -> Vec<RecordedRefund> {
        self.shared
            .ledger(&LedgerFilter {
                reference: Some(reference.to_owned()),
                ..LedgerFilter::default()
            })
            .into_iter()
            .map(LedgerEntry::into_refund)
            .collect()
    }

    /// How many HTTP requests reached this provider's routes (anything but
    /// `/__admin`), whatever their outcome.
    pub fn requests_received(&self) -> usize {
        self.shared.requests_received()
    }

    /// The request log: every request but the admin ones, oldest first, as
    /// answered (the newest 10000 are kept); with `since`, only those whose
    /// `seq` is greater. `GET /__admin/requests`.
    pub fn request_log(&self, since: Option<u64>) -> Vec<LoggedRequest> {
        self.shared.request_log(since)
    }

    /// Empties the request log; returns how many entries it had.
    /// `DELETE /__admin/requests`.
    pub fn clear_request_log(&self) -> usize {
        self.shared.clear_request_log()
    }

    /// How many duplicate keys are being processed right now (Moyasar
    /// `transaction_id`s between arrival and answer; always 0 where the
    /// provider has no such rule), so a test can wait for a delayed first
    /// attempt before sending its duplicate.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Injects a fault for requests matching `when`: a [`Match`] (refund requests, until
    /// cleared) or a [`Trigger`] such as `Match::Any.once()` (the next refund request) or
    /// `Match::Any.on(`[`Operation::Read`]`).once()` (the next read). Rules are tried in the order
    /// they were injected. `POST /__admin/faults`.
    ///
    /// [`Match`]: crate::Match
    /// [`Operation`]: crate::Operation
    pub fn inject(&self, fault: Fault, when: impl Into<Trigger>) -> FaultHandle {
        self.shared.add_fault(fault, when.into())
    }

    /// Every injected fault, in the order they are tried.
    /// `GET /__admin/faults`.
    pub fn fault_rules(&self) -> Vec<FaultRule> {
        self.shared.fault_rules()
    }

    /// Removes one injected fault by [`FaultHandle::id`]; `false` when there
    /// is none. `DELETE /__admin/faults/{id}`.
    pub fn clear_fault(&self, id: u64) -> bool {
        self.shared.clear_fault(id)
    }

    /// Removes every injected fault. `DELETE /__admin/faults`.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// How long a recorded refund stays out of this provider's reads (eventual consistency;
    /// default [`crate::SandboxConfig::read_delay`], zero unless set). `GET /__admin/settings`.
    pub fn read_delay(&self) -> Duration {
        self.shared.read_delay()
    }

    /// Sets how long a refund recorded from now or before stays out of this provider's reads:
    /// a read lists a refund only once `delay` has passed since it was recorded (the refund's
    /// own answer is not delayed). Zero lists every refund at once.
    /// `PATCH /__admin/settings` with `{"read_delay_ms": ..}`.
    pub fn set_read_delay(&self, delay: Duration) {
        self.shared.set_read_delay(delay);
    }

    /// Settles a refund (by [`crate::RecordedRefund::id`]) on an order (by
    /// its id or the provider's other id for it, OpenApp's `oaOrderId`) as
    /// [`RefundStatus::Succeeded`] or [`RefundStatus::Failed`], as a settlement report or callback
    /// would. A failed refund gives its amount back to the order's
    /// refundable total. Reads show the new status at once (Optty also sends a notification).
    /// Settling again to the same status is a no-op; a settled refund cannot change its
    /// outcome.
    /// `POST /__admin/orders/{order_id}/refunds/{refund_id}/settle`.
    pub fn settle(
        &self,
        order_id: &str,
        refund_id: &str,
        status: RefundStatus,
    ) -> Result<LedgerEntry, AdminError> {
        self.shared.settle(order_id, refund_id, status)
    }

    /// Marks a pending refund as succeeded ([`ProviderHandle::settle`] with
    /// [`RefundStatus::Succeeded`]). `false` when there is no such refund
    /// or it failed already.
    pub fn settle_refund(&self, order_id: &str, refund_id: &str) -> bool {
        self.settle(order_id, refund_id, RefundStatus::Succeeded)
            .is_ok()
    }

    /// Stops accepting connections, lets running requests finish (for at
    /// most 5 s, so a long injected latency cannot hang a test) and waits.
    pub async fn shutdown(&self) {
        if let Some(stop) = crate::state::lock(&self.stop).take() {
            let _ = stop.send(());
        }
        let task = crate::state::lock(&self.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// `http://ip:port`, loopback for an unspecified address.
pub(crate) fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Where and how a provider's server listens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listen {
    /// Address and port (0 = ephemeral).
    pub addr: SocketAddr,
    /// The largest request body read, in bytes; a larger one answers 413 in
    /// the provider's shape.
    pub max_request_body: usize,
    /// The read delay the server starts with ([`ProviderHandle::set_read_delay`]).
    pub read_delay: Duration,
}

/// The media type a route's request body must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl MediaType {
    pub fn essence(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// One route of a provider's API.
#[derive(Debug, Clone)]
struct RouteSpec {
    method: Method,
    /// axum syntax: `/orders/{order_reference}/refund`.
    path: &'static str,
    /// The media type its body must have; `None` for a route that takes no body (its
    /// `Content-Type`, if any, is not checked and its body is read within the limit and
    /// ignored).
    media: Option<MediaType>,
}

/// A provider's routes: the axum router and, from the same calls, the table
/// the router-level answers are decided from (so the two cannot disagree).
pub(crate) struct Routes {
    router: Router,
    table: Vec<RouteSpec>,
}

impl Routes {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// `POST path`, whose body must be `media`, served by `handler` with
    /// `state`.
    pub fn post<H, T, S>(
        mut self,
        path: &'static str,
        media: MediaType,
        handler: H,
        state: S,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        self.router = self
            .router
            .route(path, axum::routing::post(handler).with_state(state));
        self.table.push(RouteSpec {
            method: Method::POST,
            path,
            media: Some(media),
        });
        self
    }

    /// `GET path` (no body), served by `handler` with `state`.
    pub fn get<H, T, S>(mut self, path: &'static str, handler: H, state: S) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        self.router = self
            .router
            .route(path, axum::routing::get(handler).with_state(state));
        self.table.push(RouteSpec {
            method: Method::GET,
            path,
            media: None,
        });
        self
    }
}

/// Why a request was answered before reaching a provider's handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No route has this path: 404.
    NotFound,
    /// The path exists, the method does not: 405 (the `Allow` header is
    /// added by the server).
    MethodNotAllowed { allow: Vec<Method> },
    /// The body is longer than the limit: 413.
    PayloadTooLarge { limit: usize },
    /// The body's content type is not the route's: 415.
    UnsupportedMediaType { expected: &'static str, got: String },
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// A sentence for the provider's error body, e.g. `Cannot GET /x`.
    pub fn message(&self, method: &Method, uri: &Uri) -> String {
        match self {
            Rejection::NotFound => format!("Cannot {method} {}", uri.path()),
            Rejection::MethodNotAllowed { allow } => format!(
                "Method {method} is not allowed on {}; allowed: {}",
                uri.path(),
                allow_list(allow)
            ),
            Rejection::PayloadTooLarge { limit } => {
                format!("The request body is larger than {limit} bytes")
            }
            Rejection::UnsupportedMediaType { expected, got } => {
                format!("Content-Type must be {expected}, not {got}")
            }
        }
    }
}

fn allow_list(allow: &[Method]) -> String {
    allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a provider's answer to a [`Rejection`] in its own error shape
/// (OpenApp: signed), given the request's method and URI.
pub(crate) type Reject = Arc<dyn Fn(&Rejection, &Method, &Uri) -> Response + Send + Sync>;

/// What a provider hands to [`serve`].
pub(crate) struct Surface {
    pub routes: Routes,
    /// Where a refund request carries the duplicate key, for the request log.
    pub duplicate_key: DuplicateKey,
    pub reject: Reject,
    /// Admin routes of the provider's own, under `/__admin` beside the shared ones (Optty's
    /// notifications), answered like them: no auth, not counted, errors as `AdminError`.
    pub admin: Option<Router>,
}

/// Where a provider's refund request carries its duplicate key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DuplicateKey {
    /// A top-level string field of the JSON body (`transactionReference`).
    BodyField(&'static str),
    /// A request header (`Idempotency-Key`, as Stripe-like APIs send it).
    #[allow(
        dead_code,
        reason = "no provider of today sends its key as a header; a new one may"
    )]
    Header(&'static str),
}

impl DuplicateKey {
    /// The key of a request with `headers` and JSON `body`, if it carries one.
    fn of(self, headers: &HeaderMap, body: &[u8]) -> Option<String> {
        match self {
            DuplicateKey::BodyField(field) => body_field(body, field),
            DuplicateKey::Header(name) => headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        }
    }
}

/// What the edge middleware needs.
struct Edge {
    shared: Arc<Shared>,
    table: Vec<RouteSpec>,
    duplicate_key: DuplicateKey,
    reject: Reject,
    max_body: usize,
}

/// Binds `listen.addr` and serves the provider's routes plus the admin
/// routes. Returns once the socket is listening, so a client may connect
/// immediately.
pub(crate) async fn serve(
    listen: Listen,
    shared: Arc<Shared>,
    surface: Surface,
) -> io::Result<ProviderHandle> {
    let listener = TcpListener::bind(listen.addr).await?;
    let addr = listener.local_addr()?;
    let edge = Arc::new(Edge {
        shared: Arc::clone(&shared),
        table: surface.routes.table,
        duplicate_key: surface.duplicate_key,
        reject: surface.reject,
        max_body: listen.max_request_body,
    });
    let (not_found, wrong_method) = (Arc::clone(&edge), Arc::clone(&edge));
    shared.set_read_delay(listen.read_delay);
    let app = surface
        .routes
        .router
        .merge(admin::routes(Arc::clone(&shared)))
        .merge(surface.admin.unwrap_or_default())
        .fallback(move |method: Method, uri: Uri| {
            let edge = Arc::clone(&not_found);
            async move { fallback(&edge, &method, &uri) }
        })
        .method_not_allowed_fallback(move |method: Method, uri: Uri| {
            let edge = Arc::clone(&wrong_method);
            async move { method_not_allowed(&edge, &method, &uri) }
        })
        // The edge reads every body itself, within `max_request_body`.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(edge, edge_layer));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // A dropped sender (handle dropped) stops the server too.
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("sandbox server on {addr} failed: {e}");
        }
    });
    Ok(ProviderHandle {
        shared,
        addr,
        stop: Mutex::new(Some(stop)),
        task: Mutex::new(Some(task)),
    })
}

/// Whether `path` is an admin path.
pub(crate) fn is_admin(path: &str) -> bool {
    path == admin::PREFIX || path.starts_with(&format!("{}/", admin::PREFIX))
}

/// Whether a request path matches a route pattern: same number of segments,
/// literal segments equal, `{param}` segments non-empty.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return true,
            (Some(p), Some(g)) => {
                let is_param = p.starts_with('{') && p.ends_with('}');
                if (is_param && g.is_empty()) || (!is_param && p != g) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The essence (`type/subtype`, lower case) of a `Content-Type` value.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

enum ReadError {
    TooLarge,
    Broken,
}

/// Reads a body up to `limit` bytes.
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return Err(ReadError::Broken);
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Writes a request's log entry when the request ends, answered or not (a
/// client that goes away mid-request drops the future, and the entry then
/// says so).
struct LogGuard {
    shared: Arc<Shared>,
    started: Instant,
    at: SystemTime,
    method: String,
    path: String,
    duplicate_key: Option<String>,
    fired: FiredFault,
    status: Option<u16>,
    outcome: Outcome,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let fault = self.fired.take();
        let entry = self.shared.log_request(
            self.at,
            self.started.elapsed(),
            std::mem::take(&mut self.method),
            std::mem::take(&mut self.path),
            self.status,
            self.outcome,
            self.duplicate_key.take(),
            fault.as_ref(),
        );
        tracing::info!(
            provider = self.shared.provider,
            seq = entry.seq,
            status = entry.status,
            outcome = ?entry.outcome,
            duplicate_key = entry.duplicate_key.as_deref(),
            fault = entry.fault.as_deref(),
            ms = entry.duration_ms,
            "{} {}",
            entry.method,
            entry.path
        );
    }
}

/// Every request passes here first. Admin requests: body read within the
/// limit, then routed. Provider requests: counted and logged; unknown
/// routes, wrong methods, oversized bodies and wrong content types are
/// answered in the provider's shape; the rest go to the provider's handler
/// with their body read.
async fn edge_layer(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if is_admin(parts.uri.path()) {
        let body = match read_limited(body, edge.max_body).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge) => {
                return admin::error_response(&AdminError::too_large(edge.max_body));
            }
            Err(ReadError::Broken) => {
                return admin::error_response(&AdminError::invalid(
                    "body",
                    "the request body could not be read",
                ));
            }
        };
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    }

    edge.shared.count_request();
    let fired = FiredFault::default();
    let mut log = LogGuard {
        shared: Arc::clone(&edge.shared),
        started: Instant::now(),
        at: SystemTime::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        duplicate_key: None,
        fired: fired.clone(),
        status: None,
        outcome: Outcome::ClientGone,
    };
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let reject = |r: Rejection| reject_response(&edge, &r, &method, &uri);

    let matching: Vec<&RouteSpec> = edge
        .table
        .iter()
        .filter(|r| path_matches(r.path, parts.uri.path()))
        .collect();
    let res = if matching.is_empty() {
        reject(Rejection::NotFound)
    } else if let Some(route) = matching.iter().find(|r| r.method == method) {
        let media = route.media;
        match check_and_read(&edge, &parts.headers, media, body).await {
            Err(rejection) => reject(rejection),
            Ok(bytes) => {
                if media == Some(MediaType::Json) {
                    log.duplicate_key = edge.duplicate_key.of(&parts.headers, &bytes);
                }
                let req = Request::from_parts(parts, Body::from(bytes));
                fired.scope(next.run(req)).await
            }
        }
    } else {
        let mut allow: Vec<Method> = matching.iter().map(|r| r.method.clone()).collect();
        allow.dedup();
        reject(Rejection::MethodNotAllowed { allow })
    };
    if is_dropped(&res) {
        log.outcome = Outcome::Dropped;
    } else {
        log.status = Some(res.status().as_u16());
        log.outcome = Outcome::Answered;
    }
    res
}

/// The size and content-type checks, then the body.
async fn check_and_read(
    edge: &Edge,
    headers: &HeaderMap,
    media: Option<MediaType>,
    body: Body,
) -> Result<Bytes, Rejection> {
    let too_large = Rejection::PayloadTooLarge {
        limit: edge.max_body,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > edge.max_body as u64) {
        return Err(too_large);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // A wrong content type is refused before the body is read. A missing one
    // is read as the route's own (clients that omit it keep working; their
    // body is validated like any other).
    if let Some(media) = media
        && let Some(got) = content_type
        && essence(&got) != media.essence()
    {
        return Err(Rejection::UnsupportedMediaType {
            expected: media.essence(),
            got,
        });
    }
    let bytes = match read_limited(body, edge.max_body).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => return Err(too_large),
        // The client went away while sending; nobody reads this answer.
        Err(ReadError::Broken) => Bytes::new(),
    };
    Ok(bytes)
}

/// The string at `field` of a JSON object body.
fn body_field(body: &[u8], field: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Any(serde_json::Map<String, serde_json::Value>);
    let Any(obj) = serde_json::from_slice(body).ok()?;
    obj.get(field)?.as_str().map(str::to_owned)
}

fn reject_response(edge: &Edge, rejection: &Rejection, method: &Method, uri: &Uri) -> Response {
    let mut res = (edge.reject)(rejection, method, uri);
    if let Rejection::MethodNotAllowed { allow } = rejection
        && let Ok(value) = HeaderValue::from_str(&allow_list(allow))
    {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

/// Requests the route table let through but axum did not route: admin
/// paths (the table holds only provider routes), and in principle nothing
/// else.
fn fallback(edge: &Edge, method: &Method, uri: &Uri) -> Response {
    if is_admin(uri.path()) {
        return admin::error_response(&AdminError::not_found(
            "path",
            format!("no admin route {method} {}", uri.path()),
        ));
    }
    reject_response(edge, &Rejection::NotFound, method, uri)
}

/// A known path with a method it does not serve (axum adds `Allow`).
fn method_not_allowed(edge: &Edge, method: &Method, uri: &Uri) -> Response {
    if is_admin(uri.path()) {
        return admin::error_response(&AdminError::method_not_allowed(method, uri.path()));
    }
    let allow: Vec<Method> = edge
        .table
        .iter()
        .filter(|r| path_matches(r.path, uri.path()))
        .map(|r| r.method.clone())
        .collect();
    reject_response(edge, &Rejection::MethodNotAllowed { allow }, method, uri)
}

/// Runs a handler's work on its own task, so it completes (and records the
/// refund) even when the client disconnects meanwhile, as a real server's
/// work would.
pub(crate) async fn detached<F>(work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!("sandbox handler failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What a request does under the fault it drew ([`draw_fault`]).
pub(crate) enum Drawn {
    /// The work runs, under this fault if any.
    Work(Option<Fault>),
    /// This is answered at once, with no work done.
    Answer(Response),
}

/// Draws the fault of a request of `operation` about `orders` (the order ids it names) and
/// answers at once the faults that act before any work: [`Fault::Status`] in the provider's own
/// shape, through its `status` hook, and [`Fault::NonJson502`] as a gateway in front of any
/// provider would.
pub(crate) fn draw_fault(
    shared: &Shared,
    operation: Operation,
    orders: &[&str],
    status: impl FnOnce(u16) -> Response,
) -> Drawn {
    match shared.faults.take(operation, orders) {
        Some(Fault::Status(code)) => Drawn::Answer(status(code)),
        Some(Fault::NonJson502) => Drawn::Answer(non_json_502()),
        fault => Drawn::Work(fault),
    }
}

/// A refund handler's work under its fault: [`Fault::Latency`] delays it, the work runs
/// [`detached`], and [`after_commit`] may then replace or alter its response (the provider's own
/// effects through `alter`). (Moyasar applies the latency itself, inside its in-flight window.)
pub(crate) async fn run_refund<F>(fault: Option<Fault>, alter: AlterAnswer, work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    detached(async move {
        crate::fault::wait_latency(fault.as_ref()).await;
        let res = work.await;
        after_commit(fault.as_ref(), alter, res)
    })
    .await
}

/// A read handler's work under its fault ([`draw_fault`] with [`Operation::Read`]):
/// [`Fault::Latency`] delays it, and the faults "after the work" replace or pad its answer as
/// they do a refund's (nothing was recorded; no provider with a read signs its answers).
pub(crate) async fn run_read<F>(fault: Option<Fault>, work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    run_refund(fault, answer_unaltered, work).await
}

/// Applies a fault that fired to the response the work produced. The provider's own effect
/// comes first, through its `alter` hook, which every fault goes to (OpenApp's acts on its
/// already signed answer, so a signature fault acts on what a client would verify); then the
/// provider-neutral effects, which replace or pad the answer whatever the provider.
pub(crate) fn after_commit(
    fault: Option<&Fault>,
    alter: AlterAnswer,
    mut res: Response,
) -> Response {
    let Some(fault) = fault else {
        return res;
    };
    alter(fault, &mut res);
    match fault {
        Fault::DropAfterCommit => drop_connection(),
        Fault::MalformedBody => malformed_body(),
        Fault::StatusAfterCommit(code) => gateway_status(*code),
        Fault::OversizedBody(n) => oversized_body(*n),
        Fault::OversizedHeaders(n) => with_padding_header(res, *n),
        // Nothing neutral to do after the work: the answer as the provider left it.
        Fault::Latency(_)
        | Fault::Status(_)
        | Fault::NonJson502
        | Fault::UnsignedAnswer
        | Fault::WrongSignature => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duplicate_key_is_read_where_the_provider_sends_it() {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_static("RF-HEADER"));
        let body = br#"{"refundReference":"RF-BODY","amount":1}"#;
        assert_eq!(
            DuplicateKey::BodyField("refundReference").of(&headers, body),
            Some("RF-BODY".to_owned())
        );
        assert_eq!(
            DuplicateKey::Header("Idempotency-Key").of(&headers, body),
            Some("RF-HEADER".to_owned())
        );
        assert_eq!(DuplicateKey::BodyField("caseId").of(&headers, body), None);
        assert_eq!(
            DuplicateKey::Header("Idempotency-Key").of(&HeaderMap::new(), body),
            None
        );
    }
}
