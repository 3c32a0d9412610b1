//! [`Refunds`]: the one entry point a service calls, whichever provider took the payment.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::RefundError;
use crate::lookup::{Finding, Lookup};
use crate::model::{Provider, Refund, RefundRequest};
use crate::provider::providers;
use crate::reference::MerchantReference;
use crate::settings::Settings;
use crate::single_flight::{FlightResult, Flights, Join, ReplayMemory, lost, outcome_of};

/// Refunds through every configured provider.
///
/// Build it with [`Refunds::builder`], naming each provider's base URL explicitly (there is no
/// default: sandbox or production is the caller's choice). Build one and share it: clones are
/// cheap and share the HTTP connections and the single-flight state, so concurrent calls with
/// the same merchant reference anywhere in the service send one request.
#[derive(Clone)]
pub struct Refunds {
    shared: Arc<Shared>,
}

/// What the clones of one client share.
struct Shared {
    adapters: Adapters,
    flights: Flights,
    deadline: Duration,
}

impl std::fmt::Debug for Refunds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only which providers are configured: the clients hold credentials.
        f.debug_struct("Refunds")
            .field("providers", &self.configured())
            .finish()
    }
}

/// Collects provider configurations for [`Refunds`].
#[derive(Default)]
pub struct RefundsBuilder {
    adapters: Adapters,
    memory: ReplayMemory,
    deadline: Option<Duration>,
    error: Option<RefundError>,
}

impl std::fmt::Debug for RefundsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundsBuilder")
            .field("providers", &self.adapters.configured())
            .field("replay_memory", &self.memory)
            .field("deadline", &self.deadline.unwrap_or(DEFAULT_DEADLINE))
            .finish()
    }
}

impl RefundsBuilder {
    fn add<T>(mut self, client: Result<T, RefundError>, slot: fn(&mut Adapters, T)) -> Self {
        match client {
            Ok(client) => slot(&mut self.adapters, client),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// How long, how many and how many bytes of settled results answer a repeat of their
    /// request without I/O (default: 10 minutes, 1024 results, 4 MiB; past the bytes, the
    /// oldest results' raw answer bodies are dropped first and their facts kept). See
    /// [`ReplayMemory`] and [`Refunds::refund`].
    #[must_use]
    pub fn replay_memory(mut self, memory: ReplayMemory) -> Self {
        self.memory = memory;
        self
    }

    /// The longest a call ([`Refunds::refund`], [`Refunds::refund_with_retries`],
    /// [`Refunds::find`]) waits in all, back-offs and retries included (default
    /// [`DEFAULT_DEADLINE`], 60 s; `REFUNDS_CALL_DEADLINE_MS` for [`Refunds::from_env`]). Each
    /// provider's per-request timeout still bounds each request; this bounds the call, so a
    /// provider that hangs on every attempt cannot hold the caller for attempts x timeout.
    ///
    /// A call whose deadline passes while a refund is on the wire ends with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), outcome unknown; the attempt itself
    /// runs on to its answer, which settles the request for every caller and for a repeat of
    /// it (see [`Refunds::refund`]).
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The client, or the first configuration error: a base URL without `http`/`https` scheme
    /// or host ([`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the
    /// field, e.g. `moyasar.base_url`), an API key that cannot be a header.
    pub fn build(self) -> Result<Refunds, RefundError> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(Refunds {
                shared: Arc::new(Shared {
                    adapters: self.adapters,
                    flights: Flights::new(self.memory),
                    deadline: self.deadline.unwrap_or(DEFAULT_DEADLINE),
                }),
            }),
        }
    }
}

impl Refunds {
    /// Starts a client with no provider configured.
    pub fn builder() -> RefundsBuilder {
        RefundsBuilder::default()
    }

    /// The providers this client can refund through.
    pub fn configured(&self) -> Vec<Provider> {
        self.shared.adapters.configured()
    }

    /// A client for every provider whose `REFUNDS_<PROVIDER>_BASE_URL` is set in the process
    /// environment (variables in [`config`](crate::config)). A missing or malformed variable of
    /// a provider that is set up, or no provider at all, is an
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the variable.
    pub fn from_env() -> Result<Refunds, RefundError> {
        Refunds::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Like [`Refunds::from_env`], reading the variables through `lookup`.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use refunds::{Provider, Refunds};
    ///
    /// let settings = HashMap::from([
    ///     ("REFUNDS_MOYASAR_BASE_URL", "https://pg.mysr.dev/"),
    ///     ("REFUNDS_MOYASAR_SECRET_KEY", "sk_test_123"),
    /// ]);
    /// let refunds = Refunds::from_lookup(&|name| settings.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(refunds.configured(), [Provider::Moyasar]);
    ///
    /// let broken = HashMap::from([("REFUNDS_AFTERPAY_BASE_URL", "api.bnpl.riverty.io")]);
    /// let err = Refunds::from_lookup(&|name| broken.get(name).map(|v| v.to_string())).unwrap_err();
    /// assert!(err.to_string().contains("REFUNDS_AFTERPAY_BASE_URL"), "{err}");
    /// # Ok::<(), refunds::RefundError>(())
    /// ```
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Refunds, RefundError> {
        let settings = Settings::new(lookup);
        let is_set = |provider: Provider| {
            settings
                .get(&format!(
                    "REFUNDS_{}_BASE_URL",
                    provider.as_str().to_ascii_uppercase()
                ))
                .is_some()
        };
        let mut builder = Refunds::builder().add_from_lookup(lookup, &is_set)?;
        if let Some(ms) = settings.number("REFUNDS_CALL_DEADLINE_MS")? {
            builder = builder.deadline(Duration::from_millis(ms));
        }
        let refunds = builder.build()?;
        if refunds.configured().is_empty() {
            return Err(RefundError::invalid_config(
                "REFUNDS_<PROVIDER>_BASE_URL",
                "no provider is configured: set the base URL and credentials of at least one",
            ));
        }
        Ok(refunds)
    }

    /// Refunds `request` through its provider, once.
    ///
    /// - The request is validated first ([`RefundRequest::validate`]): invalid input fails with
    ///   a field-level [`ErrorKind::InvalidRequest`](crate::ErrorKind) and nothing is sent.
    /// - Concurrent calls with the same provider and merchant reference share one attempt on
    ///   the wire and all get its result. A repeat within the replay memory
    ///   ([`RefundsBuilder::replay_memory`]) of a call whose refund exists, or whose outcome is
    ///   unknown on a provider without a duplicate key (AfterPay), gets that same result
    ///   without I/O. A result that says nothing was applied is not remembered.
    /// - The same merchant reference with a different request (order, amount, items, text)
    ///   while the first is in flight or remembered is refused before any I/O
    ///   (`InvalidRequest` on `merchant_reference`): a new refund needs a new reference.
    /// - Once sent, an attempt runs to completion even if the caller stops waiting (its future
    ///   is dropped), so its result still reaches the other callers and the replay memory. The
    ///   attempt runs inside the first caller's own future; only a caller that stops waiting
    ///   hands it to a task of its own on the current tokio runtime. Dropped outside any
    ///   runtime, it cannot finish: its outcome is then unknown for every caller.
    /// - A result remembered past [`ReplayMemory::max_bytes`] may have lost its raw answer
    ///   body: a replay then carries the same facts with an empty [`Refund::raw`].
    ///
    /// Every error states its [`Outcome`](crate::Outcome); to retry safely use
    /// [`Refunds::refund_with_retries`].
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let call = call_span("refund", request);
        let started = Instant::now();
        let result = traced(
            &call,
            self.within(self.deadline(), request, self.attempt(request, 1)),
        )
        .await;
        record_result(&call, started, result.as_ref().map(|_| ()));
        result
    }

    /// The deadline of each call ([`RefundsBuilder::deadline`]).
    pub fn deadline(&self) -> Duration {
        self.shared.deadline
    }

    /// `call`'s result, or, once `remaining` has passed, [`deadline_passed`]: the attempt goes on
    /// on a task of its own (see [`Attempt`]), only this caller stops waiting.
    ///
    /// A mapped time-out, not an `async fn`: that would hold `call` twice, as its argument and
    /// inside the time-out, and every call's future would grow by it.
    pub(crate) fn within<T>(
        &self,
        remaining: Duration,
        request: &RefundRequest,
        call: impl Future<Output = Result<T, RefundError>>,
    ) -> impl Future<Output = Result<T, RefundError>> {
        let (provider, deadline) = (request.provider, self.shared.deadline);
        tokio::time::timeout(remaining, call).map(move |timed| {
            timed.unwrap_or_else(|_elapsed| Err(deadline_passed(provider, deadline)))
        })
    }

    /// One attempt of `request` (numbered `attempt` by the executor): validation, then the
    /// single-flight, then the wire. Traced as a `refund.attempt` span.
    pub(crate) async fn attempt(
        &self,
        request: &RefundRequest,
        attempt: u32,
    ) -> Result<Refund, RefundError> {
        let span = tracing::info_span!(
            "refund.attempt",
            provider = %request.provider,
            order_id = %request.order_id,
            merchant_reference = request.merchant_reference.as_str(),
            attempt,
            answered_by = tracing::field::Empty,
            http_status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = traced(&span, self.single_flight(request, &span)).await;
        if let Err(error) = &result
            && let Some(status) = error.http_status()
            && !span.is_disabled()
        {
            span.record("http_status", status);
        }
        record_result(&span, started, result.as_ref().map(|_| ()));
        result
    }

    async fn single_flight(
        &self,
        request: &RefundRequest,
        span: &tracing::Span,
    ) -> Result<Refund, RefundError> {
        request.validate()?;
        if !self.shared.adapters.is_configured(request.provider) {
            return Err(RefundError::invalid(
                "provider",
                format!("{} is not configured in this client", request.provider),
            )
            .with_provider(request.provider));
        }
        match self.shared.flights.join(request)? {
            Join::Replay(result) => {
                answered_by(span, "replay");
                result
            }
            Join::Follow(receiver) => {
                answered_by(span, "joined");
                outcome_of(receiver, request.provider).await
            }
            Join::Lead(request) => {
                answered_by(span, "wire");
                Attempt::new(&self.shared, request, span).await
            }
        }
    }

    /// Reads the provider's own record of `request`'s refund: found (with the provider's
    /// current status and amount), absent (the record, read at [`Lookup::read_at`], holds no
    /// refund of ours), or, for AfterPay without `known_refund_id`, the order's refunds
    /// unattributed. `known_refund_id` is the provider's id of the refund where an answer gave
    /// it ([`Refund::provider_refund_id`]). How each provider's record names our refund:
    /// [`crate::lookup`].
    ///
    /// Nothing is sent to the refund route, so this is safe to call at any time and as often as
    /// needed. The request is validated first, as for [`Refunds::refund`]. Every error leaves
    /// the refund's [`Outcome`](crate::Outcome) unknown; a provider that publishes no read
    /// (OpenApp, [`Capabilities::record_read`](crate::Capabilities::record_read)) fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) on `provider`.
    pub async fn find(
        &self,
        request: &RefundRequest,
        known_refund_id: Option<&str>,
    ) -> Result<Lookup, RefundError> {
        let span = tracing::info_span!(
            "refund.find",
            provider = %request.provider,
            order_id = %request.order_id,
            merchant_reference = request.merchant_reference.as_str(),
            http_status = tracing::field::Empty,
            finding = tracing::field::Empty,
        );
        async {
            request.validate()?;
            let lookup = self
                .within(
                    self.deadline(),
                    request,
                    self.shared.adapters.find_in_room(request, known_refund_id),
                )
                .await
                .map_err(crate::providers::mapping::read_failed)?;
            tracing::Span::current().record(
                "finding",
                match &lookup.finding {
                    Finding::Found(_) => "found",
                    Finding::Absent => "absent",
                    Finding::Unattributed(_) => "unattributed",
                },
            );
            Ok(lookup)
        }
        .instrument(span)
        .await
    }

    /// Forgets the remembered result of `reference` (see [`Refunds::refund`]), for example after
    /// an unknown AfterPay outcome was reconciled by hand and found not applied. Returns whether
    /// there was one.
    pub fn forget(&self, provider: Provider, reference: &MerchantReference) -> bool {
        self.shared.flights.forget(provider, reference)
    }
}

/// One attempt on the wire, driven by the call that leads its flight: polled inline, in the
/// leader's own future, so a refund costs no task of its own and no wake-up of another thread.
///
/// An attempt already sent runs to completion even when its leader stops waiting (its future
/// is dropped: a deadline, a `select!`, an aborted task): dropping an unfinished `Attempt`
/// hands the attempt, boxed and `'static` for this, to a task of its own on the current tokio
/// runtime, which finishes it and publishes its result to the flight's followers and to the
/// replay memory. Dropped where there is no runtime to finish it on (outside any runtime's
/// context, or while the runtime shuts down and drops its tasks), the attempt cannot go on:
/// its result is published as lost, outcome unknown, which the replay memory keeps for
/// AfterPay (no blind re-send) and the other providers' deduplication makes safe to re-send.
struct Attempt {
    /// The attempt, which publishes its own result ([`Publish`]); `None` once it completed (or
    /// panicked while polled).
    wire: Option<Pin<Box<dyn Future<Output = FlightResult> + Send>>>,
    /// The attempt's span, for the task a dropped leader hands the attempt to.
    span: tracing::Span,
    /// The request's provider.
    provider: Provider,
}

impl Attempt {
    fn new(shared: &Arc<Shared>, request: Arc<RefundRequest>, span: &tracing::Span) -> Attempt {
        let provider = request.provider;
        let mut publish = Publish {
            shared: Arc::clone(shared),
            request,
            published: false,
        };
        let wire = Box::pin(async move {
            let result = publish.shared.adapters.send(&publish.request).await;
            publish.publish(&result);
            result
        });
        Attempt {
            wire: Some(wire),
            span: span.clone(),
            provider,
        }
    }
}

impl Future for Attempt {
    type Output = FlightResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<FlightResult> {
        // Out of `self` while polled: if the attempt panics, the unwinding drops it here (its
        // `Publish` reports it lost) and `Drop` finds nothing to hand on.
        let Some(mut wire) = self.wire.take() else {
            return Poll::Ready(Err(lost(self.provider)));
        };
        let poll = wire.as_mut().poll(cx);
        if poll.is_pending() {
            self.wire = Some(wire);
        }
        poll
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let Some(wire) = self.wire.take() else {
            // Completed (and published), or it panicked (and `Publish` reported it lost).
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // A runtime shutting down drops the task unpolled: `Publish` reports it lost.
                drop(
                    runtime.spawn(
                        async move {
                            // Published by the attempt itself.
                            let _published = wire.await;
                        }
                        .instrument(self.span.clone()),
                    ),
                );
            }
            Err(_) => {
                tracing::warn!(
                    parent: &self.span,
                    "an attempt on the wire was dropped outside a tokio runtime: it cannot \
                     finish, its outcome is unknown"
                );
                // Its `Publish` reports it lost.
                drop(wire);
            }
        }
    }
}

/// Publishes an attempt's result to its flight exactly once: when the attempt completes, or,
/// if it ends without a result (it panicked, or was dropped with no runtime to finish it on),
/// as an unknown outcome (the request may have left).
struct Publish {
    shared: Arc<Shared>,
    request: Arc<RefundRequest>,
    published: bool,
}

impl Publish {
    fn publish(&mut self, result: &FlightResult) {
        if !self.published {
            self.published = true;
            self.shared.flights.finish(&self.request, result);
        }
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        if !self.published {
            self.publish(&Err(lost(self.request.provider)));
        }
    }
}

/// The span of one refund call (`refund` or `refund_with_retries`): who, and in the end how.
pub(crate) fn call_span(name: &'static str, request: &RefundRequest) -> tracing::Span {
    match name {
        "refund_with_retries" => tracing::info_span!(
            "refund_with_retries",
            provider = %request.provider,
            order_id = %request.order_id,
            merchant_reference = request.merchant_reference.as_str(),
            attempts = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        ),
        _ => tracing::info_span!(
            "refund",
            provider = %request.provider,
            order_id = %request.order_id,
            merchant_reference = request.merchant_reference.as_str(),
            latency_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        ),
    }
}

/// `future` inside `span`. A disabled span (no subscriber wants it) is swapped for
/// [`Span::none`](tracing::Span::none), whose entering does nothing: the disabled span still
/// carries its metadata, and with tracing's `log` feature entering it would consult the `log`
/// crate at every poll. One future type either way: an `async` choice between awaiting `future`
/// as it is and awaiting it instrumented would hold room for both, and each layer of the call
/// would double its size.
fn traced<F: Future>(span: &tracing::Span, future: F) -> tracing::instrument::Instrumented<F> {
    if span.is_disabled() {
        future.instrument(tracing::Span::none())
    } else {
        future.instrument(span.clone())
    }
}

/// Records how an attempt was answered (`wire`, `joined`, `replay`) on its span.
fn answered_by(span: &tracing::Span, how: &'static str) {
    if !span.is_disabled() {
        span.record("answered_by", how);
    }
}

/// Records the latency and outcome of a finished call or attempt on its span.
pub(crate) fn record_result(
    span: &tracing::Span,
    started: Instant,
    result: Result<(), &RefundError>,
) {
    // A disabled span records nothing, but looking its fields up by name still costs.
    if span.is_disabled() {
        return;
    }
    span.record(
        "latency_ms",
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    let outcome = match result {
        Ok(()) => crate::Outcome::Applied,
        Err(error) => error.outcome(),
    };
    span.record("outcome", tracing::field::display(outcome));
}

/// The configured rooms, the builder's methods and the dispatch to a room, expanded from the one
/// provider list.
macro_rules! adapters {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        /// The configured provider adapters.
        #[derive(Default)]
        struct Adapters {
            $(
                #[cfg(feature = $name)]
                $room: Option<crate::providers::$room::$client>,
            )*
        }

        impl RefundsBuilder {
            $(
                #[doc = concat!("Enables [`Provider::", stringify!($variant), "`].")]
                #[cfg(feature = $name)]
                pub fn $room(self, config: crate::config::$config) -> Self {
                    let client = <crate::providers::$room::$client as crate::providers::room::Room>::connect(config);
                    self.add(client, |adapters, client| adapters.$room = Some(client))
                }
            )*

            /// Adds every compiled-in provider that `is_set`, its config read through `lookup`.
            fn add_from_lookup(
                #[allow(unused_mut)] mut self,
                lookup: &dyn Fn(&str) -> Option<String>,
                is_set: &dyn Fn(Provider) -> bool,
            ) -> Result<Self, RefundError> {
                $(
                    #[cfg(feature = $name)]
                    if is_set(Provider::$variant) {
                        self = self.$room(<crate::providers::$room::$client as crate::providers::room::Room>::config_from_lookup(lookup)?);
                    }
                )*
                let _ = (lookup, is_set);
                Ok(self)
            }
        }

        impl Adapters {
            fn is_configured(&self, provider: Provider) -> bool {
                match provider {
                    $(
                        #[cfg(feature = $name)]
                        Provider::$variant => self.$room.is_some(),
                        #[cfg(not(feature = $name))]
                        Provider::$variant => false,
                    )*
                }
            }

            /// Reads the record of the request's refund at its provider (configured and
            /// validated).
            async fn find_in_room(
                &self,
                request: &RefundRequest,
                known_refund_id: Option<&str>,
            ) -> Result<Lookup, RefundError> {
                match request.provider {
                    $(
                        #[cfg(feature = $name)]
                        Provider::$variant => match &self.$room {
                            Some(client) => {
                                crate::providers::room::Room::find(client, request, known_refund_id).await
                            }
                            None => Err(not_configured(request.provider)),
                        },
                        #[cfg(not(feature = $name))]
                        Provider::$variant => Err(not_configured(request.provider)),
                    )*
                }
            }

            /// Sends one attempt through the request's provider (configured and validated).
            async fn send_to_room(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
                match request.provider {
                    $(
                        #[cfg(feature = $name)]
                        Provider::$variant => match &self.$room {
                            Some(client) => crate::providers::room::Room::refund(client, request).await,
                            None => Err(not_configured(request.provider)),
                        },
                        #[cfg(not(feature = $name))]
                        Provider::$variant => Err(not_configured(request.provider)),
                    )*
                }
            }
        }
    };
}
providers!(adapters);

/// [`RefundsBuilder::deadline`]'s default: long enough for a slow provider's answer and a
/// retry or two, short enough that a caller (an HTTP handler, a worker) is not held for minutes.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The error of a call whose deadline passed before its answer: a time-out, outcome unknown
/// (the request may be on the wire), retryable where the provider deduplicates.
pub(crate) fn deadline_passed(provider: Provider, deadline: Duration) -> RefundError {
    RefundError::new(crate::ErrorKind::Timeout)
        .with_provider(provider)
        .with_deduplication(provider.capabilities().idempotent_retries)
        .with_provider_message(format!(
            "the call's deadline of {} ms passed before an answer; an attempt on the wire runs \
             on and its result settles a repeat of this request",
            deadline.as_millis()
        ))
}

/// The error for a provider this client has no config for.
fn not_configured(provider: Provider) -> RefundError {
    RefundError::invalid("provider", "not configured").with_provider(provider)
}

impl Adapters {
    fn configured(&self) -> Vec<Provider> {
        Provider::ALL
            .into_iter()
            .filter(|provider| self.is_configured(*provider))
            .collect()
    }

    /// Sends one attempt through the request's provider and logs how it ended.
    async fn send(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let result = self.send_to_room(request).await;
        match &result {
            Ok(refund) => tracing::info!(status = ?refund.status, "refund applied"),
            Err(error) => tracing::warn!(
                outcome = %error.outcome(),
                kind = %error.kind(),
                "refund attempt failed"
            ),
        }
        result
    }
}
