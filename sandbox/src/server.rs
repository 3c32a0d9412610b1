//! What every provider's server shares: the handle, serving on loopback,
//! request counting, the admin routes and the fault responses.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fault::{Fault, FaultHandle, Faults, Trigger};
use crate::openapp;
use crate::state::{
    self, OrderSeed, OrderState, RecordedRefund, RefundStatus, SeedError, Store, Units, lock,
};

/// The state every provider keeps.
#[derive(Debug)]
pub(crate) struct Shared {
    pub units: Units,
    pub store: Mutex<Store>,
    pub faults: Arc<Faults>,
    pub requests: AtomicUsize,
}

impl Shared {
    pub fn new(units: Units) -> Arc<Self> {
        Arc::new(Shared {
            units,
            store: Mutex::new(Store::default()),
            faults: Arc::new(Faults::default()),
            requests: AtomicUsize::new(0),
        })
    }

    pub fn seed(&self, seed: OrderSeed) -> Result<OrderState, SeedError> {
        let order = state::build_order(seed, self.units)?;
        let snapshot = order.state.clone();
        lock(&self.store)
            .orders
            .insert(order.state.id.clone(), order);
        Ok(snapshot)
    }

    pub fn order(&self, id: &str) -> Option<OrderState> {
        let store = lock(&self.store);
        store
            .orders
            .get(id)
            .or_else(|| {
                store
                    .orders
                    .values()
                    .find(|o| o.seed.oa_order_id.as_deref() == Some(id))
            })
            .map(|o| o.state.clone())
    }
}

/// A running provider server: its address, its orders and its faults.
///
/// The four provider types ([`crate::OpttyServer`] and the others)
/// dereference to this, so `sb.optty.base_url()` and `sb.moyasar.inject(..)`
/// read the same everywhere. Dropping the handle stops the server.
#[derive(Debug)]
pub struct ProviderHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ProviderHandle {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Creates (or replaces) an order. Refuses unknown currencies, negative
    /// amounts, refunded > captured > authorized, and amounts that do not
    /// convert exactly to the provider's minor units.
    pub fn try_seed_order(&self, seed: OrderSeed) -> Result<OrderState, SeedError> {
        self.shared.seed(seed)
    }

    /// A snapshot of an order by its seed id (OpenApp: or its `oaOrderId`).
    pub fn order(&self, id: &str) -> Option<OrderState> {
        self.shared.order(id)
    }

    /// Snapshots of all orders, by id.
    pub fn orders(&self) -> Vec<OrderState> {
        lock(&self.shared.store)
            .orders
            .values()
            .map(|o| o.state.clone())
            .collect()
    }

    /// How many refunds were recorded through the API, over all orders.
    pub fn refund_count(&self) -> usize {
        lock(&self.shared.store)
            .orders
            .values()
            .map(|o| o.state.refunds.len())
            .sum()
    }

    /// Every refund recorded through the API, over all orders (by order
    /// id, then oldest first), whose duplicate key
    /// ([`crate::RecordedRefund::reference`]) is `reference`: for a ledger
    /// check such as "exactly one refund per merchant reference". Refunds
    /// recorded without a key never match.
    pub fn refunds_with_reference(&self, reference: &str) -> Vec<RecordedRefund> {
        lock(&self.shared.store)
            .orders
            .values()
            .flat_map(|o| &o.state.refunds)
            .filter(|r| r.reference.as_deref() == Some(reference))
            .cloned()
            .collect()
    }

    /// How many HTTP requests reached this provider's routes (anything but
    /// `/__admin`), whatever their outcome.
    pub fn requests_received(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many duplicate keys are being processed right now (Moyasar
    /// `transaction_id`s between arrival and answer), so a test can wait for
    /// a delayed first attempt before sending its duplicate.
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.store).inflight.len()
    }

    /// Injects a fault for refund requests matching `when`: a [`Match`]
    /// (until cleared) or a [`Trigger`] such as `Match::Any.once()`. Rules
    /// are tried in the order they were injected.
    ///
    /// [`Match`]: crate::Match
    pub fn inject(&self, fault: Fault, when: impl Into<Trigger>) -> FaultHandle {
        self.shared.faults.add(fault, when.into())
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Marks a pending refund (by [`crate::RecordedRefund::id`]) as
    /// succeeded, as a settlement report or callback would. `false` when
    /// there is no such refund.
    pub fn settle_refund(&self, order_id: &str, refund_id: &str) -> bool {
        let mut store = lock(&self.shared.store);
        let Some(order) = store.orders.get_mut(order_id) else {
            return false;
        };
        match order.state.refunds.iter_mut().find(|r| r.id == refund_id) {
            Some(refund) => {
                refund.status = RefundStatus::Succeeded;
                true
            }
            None => false,
        }
    }

    /// Stops accepting connections, lets running requests finish (for at
    /// most 5 s, so a long injected latency cannot hang a test) and waits.
    pub async fn shutdown(&self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        let task = lock(&self.task).take();
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

/// Binds `127.0.0.1:<port>` (0 = ephemeral) and serves `routes` plus the
/// admin routes. Returns once the socket is listening, so a client may
/// connect immediately.
pub(crate) async fn serve(
    port: u16,
    shared: Arc<Shared>,
    routes: Router,
) -> io::Result<ProviderHandle> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let app = routes
        .merge(admin_routes(Arc::clone(&shared)))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), count));
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

/// Counts every request but the admin ones, unknown paths included (a
/// layer on the whole app, because route layers skip the fallback).
async fn count(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(ADMIN_PREFIX) {
        shared.requests.fetch_add(1, Ordering::SeqCst);
    }
    next.run(req).await
}

const ADMIN_PREFIX: &str = "/__admin/";

fn admin_routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__admin/orders", get(admin_list).post(admin_seed))
        .route("/__admin/orders/{id}", get(admin_get))
        .with_state(shared)
}

#[derive(Serialize)]
struct AdminError {
    error: String,
}

async fn admin_list(State(shared): State<Arc<Shared>>) -> Response {
    let orders: Vec<OrderState> = lock(&shared.store)
        .orders
        .values()
        .map(|o| o.state.clone())
        .collect();
    json(StatusCode::OK, &orders)
}

async fn admin_seed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed = match serde_json::from_slice::<OrderSeed>(&body) {
        Ok(seed) => seed,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &AdminError {
                    error: e.to_string(),
                },
            );
        }
    };
    match shared.seed(seed) {
        Ok(state) => json(StatusCode::CREATED, &state),
        Err(e) => json(StatusCode::BAD_REQUEST, &AdminError { error: e.0 }),
    }
}

async fn admin_get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.order(&id) {
        Some(state) => json(StatusCode::OK, &state),
        None => json(
            StatusCode::NOT_FOUND,
            &AdminError {
                error: format!("order {id} not found"),
            },
        ),
    }
}

/// A JSON response whose body is exactly `value` serialized (field order as
/// declared in the struct, which is why bodies are structs and not maps).
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            tracing::error!("serializing a sandbox response failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A JSON response with a body already serialized.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// The HTML a gateway answers with.
const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";

/// [`Fault::MalformedBody`]: status 200, but HTML where JSON belongs.
pub(crate) fn malformed_body() -> Response {
    html(StatusCode::OK)
}

/// [`Fault::NonJson502`].
pub(crate) fn non_json_502() -> Response {
    html(StatusCode::BAD_GATEWAY)
}

fn html(status: StatusCode) -> Response {
    html_page(status, Body::from(BAD_GATEWAY_HTML))
}

fn html_page(status: StatusCode, page: Body) -> Response {
    let mut res = (status, page).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}

/// nginx's pages for the statuses a gateway answers when the upstream
/// fails or times out (same layout as [`BAD_GATEWAY_HTML`]).
const INTERNAL_SERVER_ERROR_HTML: &str = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n";
const SERVICE_UNAVAILABLE_HTML: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n";
const GATEWAY_TIMEOUT_HTML: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n";

/// [`Fault::StatusAfterCommit`]: a gateway's HTML page for `code`.
pub(crate) fn gateway_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = match status.as_u16() {
        500 => Body::from(INTERNAL_SERVER_ERROR_HTML),
        502 => Body::from(BAD_GATEWAY_HTML),
        503 => Body::from(SERVICE_UNAVAILABLE_HTML),
        504 => Body::from(GATEWAY_TIMEOUT_HTML),
        _ => {
            let line = format!(
                "{} {}",
                status.as_str(),
                status.canonical_reason().unwrap_or("Error")
            );
            Body::from(format!(
                "<!DOCTYPE html>\n<html>\n<head><title>{line}</title></head>\n<body>\n<h1>{line}</h1>\n</body>\n</html>\n"
            ))
        }
    };
    html_page(status, page)
}

/// The largest chunk [`Fault::OversizedBody`] sends at once.
const PADDING_CHUNK: usize = 64 * 1024;

/// The bytes every chunk of padding is cut from (static, so streaming a
/// huge body allocates nothing per chunk).
static PADDING: [u8; PADDING_CHUNK] = [b'x'; PADDING_CHUNK];

/// The smallest complete padding body; its first 12 bytes open it and its
/// last 2 close it.
const PADDING_JSON: &[u8] = b"{\"padding\":\"\"}";

/// [`Fault::OversizedBody`]'s body: `{"padding":"` then `x`s then `"}`,
/// exactly `n` bytes in all, produced chunk by chunk as hyper asks.
struct Padding {
    head: &'static [u8],
    xs: usize,
    tail: &'static [u8],
}

impl Padding {
    fn new(n: usize) -> Self {
        match n.checked_sub(PADDING_JSON.len()) {
            Some(xs) => Padding {
                head: &PADDING_JSON[..12],
                xs,
                tail: &PADDING_JSON[12..],
            },
            None => Padding {
                head: &PADDING_JSON[..n],
                xs: 0,
                tail: &[],
            },
        }
    }
}

impl futures_core::Stream for Padding {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let chunk = if !self.head.is_empty() {
            std::mem::take(&mut self.head)
        } else if self.xs > 0 {
            let len = self.xs.min(PADDING_CHUNK);
            self.xs -= len;
            &PADDING[..len]
        } else if !self.tail.is_empty() {
            std::mem::take(&mut self.tail)
        } else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(Bytes::from_static(chunk))))
    }
}

/// [`Fault::OversizedBody`]: 200, JSON content type, `n` streamed bytes.
pub(crate) fn oversized_body(n: usize) -> Response {
    let mut res = Response::new(Body::from_stream(Padding::new(n)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// [`Fault::OversizedHeaders`]: `res` plus `x-sandbox-padding` of `n` `x`s.
pub(crate) fn with_padding_header(mut res: Response, n: usize) -> Response {
    match HeaderValue::from_maybe_shared(Bytes::from(vec![b'x'; n])) {
        Ok(value) => {
            res.headers_mut().insert("x-sandbox-padding", value);
            res
        }
        // `x` is a valid header byte; this arm is never taken.
        Err(_) => unreachable!("a run of `x` is a valid header value"),
    }
}

/// A body that fails on its first poll. hyper then closes the connection
/// without flushing the response head it had only buffered, so the client
/// sees the connection end with no response: [`Fault::DropAfterCommit`].
struct Abort;

impl futures_core::Stream for Abort {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "sandbox fault: drop after commit",
        ))))
    }
}

/// [`Fault::DropAfterCommit`]'s response: no response at all.
pub(crate) fn drop_connection() -> Response {
    Response::new(Body::from_stream(Abort))
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

/// A refund handler's work under its fault: [`Fault::Latency`] delays it, the work runs
/// [`detached`], and [`after_commit`] may then replace its response. (Moyasar applies the
/// latency itself, inside its in-flight window.)
pub(crate) async fn run_refund<F>(fault: Option<Fault>, work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    detached(async move {
        if let Some(Fault::Latency(delay)) = fault {
            tokio::time::sleep(delay).await;
        }
        let res = work.await;
        after_commit(fault.as_ref(), res)
    })
    .await
}

/// Applies the faults that replace or alter the response after the work was
/// done. OpenApp passes its already signed answer, so the signature faults
/// act on the signature a client would verify.
pub(crate) fn after_commit(fault: Option<&Fault>, mut res: Response) -> Response {
    match fault {
        Some(Fault::DropAfterCommit) => drop_connection(),
        Some(Fault::MalformedBody) => malformed_body(),
        Some(Fault::StatusAfterCommit(code)) => gateway_status(*code),
        Some(Fault::UnsignedAnswer) => {
            openapp::remove_signature(res.headers_mut());
            res
        }
        Some(Fault::WrongSignature) => {
            openapp::tamper_signature(res.headers_mut());
            res
        }
        Some(Fault::OversizedBody(n)) => oversized_body(*n),
        Some(Fault::OversizedHeaders(n)) => with_padding_header(res, *n),
        Some(Fault::Latency(_) | Fault::Status(_) | Fault::NonJson502) | None => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_core::Stream;

    /// The whole padding body, and the largest chunk it came in.
    fn padding(n: usize) -> (Vec<u8>, usize) {
        let mut stream = Padding::new(n);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (mut body, mut largest) = (Vec::new(), 0);
        while let Poll::Ready(Some(chunk)) = Pin::new(&mut stream).poll_next(&mut cx) {
            let chunk = chunk.unwrap_or_default();
            largest = largest.max(chunk.len());
            body.extend_from_slice(&chunk);
        }
        (body, largest)
    }

    #[test]
    fn padding_is_exactly_n_bytes_in_bounded_chunks() {
        for n in [
            0,
            1,
            13,
            14,
            15,
            PADDING_CHUNK + 13,
            PADDING_CHUNK + 14,
            3 * PADDING_CHUNK + 15,
        ] {
            let (body, largest) = padding(n);
            assert_eq!(body.len(), n);
            assert!(largest <= PADDING_CHUNK);
            if n >= PADDING_JSON.len() {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                assert_eq!(
                    v["padding"].as_str().map(str::len),
                    Some(n - PADDING_JSON.len())
                );
            } else {
                assert_eq!(body, &PADDING_JSON[..n]);
            }
        }
    }

    #[test]
    fn gateway_status_falls_back_to_502_for_a_non_status() {
        assert_eq!(gateway_status(42).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(gateway_status(1000).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(gateway_status(504).status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
