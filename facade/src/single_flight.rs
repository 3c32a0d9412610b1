//! Single-flight of refunds: concurrent calls with the same provider and merchant reference
//! share one attempt on the wire and all get its result; a call shortly after a settled one
//! gets the same result without I/O; the same reference with a different request is refused.
//!
//! The merchant reference is the duplicate key, so this is what a payment API does with a
//! reused idempotency key, done in the client where a provider (AfterPay) does not do it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::{Outcome, RefundError};
use crate::model::{Provider, Refund, RefundRequest};
use crate::reference::MerchantReference;

/// The shared result of one attempt.
pub(crate) type FlightResult = Result<Refund, RefundError>;

type Key = (Provider, MerchantReference);

/// How long and how many settled results are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayMemory {
    /// How long a settled result answers repeats of its request (default 10 minutes).
    pub window: Duration,
    /// The most results remembered; the oldest is forgotten first (default 1024).
    pub capacity: usize,
}

impl Default for ReplayMemory {
    fn default() -> Self {
        ReplayMemory {
            window: Duration::from_secs(600),
            capacity: 1024,
        }
    }
}

/// What a call does with its request.
pub(crate) enum Join {
    /// Nobody is sending it: send it, then [`Flights::finish`] and publish to the sender. The
    /// request is shared with the flight's record, not copied.
    Lead(
        watch::Sender<Option<FlightResult>>,
        watch::Receiver<Option<FlightResult>>,
        Arc<RefundRequest>,
    ),
    /// Another call is sending it: wait for its result.
    Follow(watch::Receiver<Option<FlightResult>>),
    /// It settled a moment ago: this is its result.
    Replay(FlightResult),
}

struct InFlight {
    request: Arc<RefundRequest>,
    result: watch::Receiver<Option<FlightResult>>,
}

struct Settled {
    request: Arc<RefundRequest>,
    result: FlightResult,
    at: Instant,
}

#[derive(Default)]
struct State {
    in_flight: HashMap<Key, InFlight>,
    settled: HashMap<Key, Settled>,
    order: VecDeque<(Key, Instant)>,
}

/// The calls of one [`Refunds`](crate::Refunds) client.
pub(crate) struct Flights {
    memory: ReplayMemory,
    state: Mutex<State>,
}

impl Flights {
    pub(crate) fn new(memory: ReplayMemory) -> Flights {
        Flights {
            memory,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the flight of `request`, or refuses it when its merchant reference is in use
    /// by a different request.
    pub(crate) fn join(&self, request: &RefundRequest) -> Result<Join, RefundError> {
        let key = (request.provider, request.merchant_reference.clone());
        let mut state = self.state();
        let now = Instant::now();
        let window = self.memory.window;
        while let Some((_, at)) = state.order.front() {
            if now.duration_since(*at) < window {
                break;
            }
            let (old, at) = state.order.pop_front().expect("front exists");
            if state.settled.get(&old).is_some_and(|s| s.at == at) {
                state.settled.remove(&old);
            }
        }
        if let Some(flight) = state.in_flight.get(&key) {
            return same_request(&flight.request, request)
                .map(|()| Join::Follow(flight.result.clone()));
        }
        if let Some(settled) = state.settled.get(&key) {
            return same_request(&settled.request, request)
                .map(|()| Join::Replay(settled.result.clone()));
        }
        let (sender, receiver) = watch::channel(None);
        let request = Arc::new(request.clone());
        state.in_flight.insert(
            key,
            InFlight {
                request: Arc::clone(&request),
                result: receiver.clone(),
            },
        );
        Ok(Join::Lead(sender, receiver, request))
    }

    /// Ends the flight of `request` with `result`, remembering it when a repeat must not be
    /// sent again: the refund exists, or its outcome is unknown on a provider that does not
    /// deduplicate. A result that says nothing was applied is not remembered, so the caller
    /// may try again.
    pub(crate) fn finish(&self, request: &Arc<RefundRequest>, result: &FlightResult) {
        let key = (request.provider, request.merchant_reference.clone());
        let mut state = self.state();
        state.in_flight.remove(&key);
        let remember = match result {
            Ok(_) => true,
            Err(error) => match error.outcome() {
                Outcome::Applied => true,
                Outcome::Unknown => !request.provider.capabilities().idempotent_retries,
                Outcome::NotApplied => false,
            },
        };
        if !remember || self.memory.capacity == 0 {
            return;
        }
        let at = Instant::now();
        while state.settled.len() >= self.memory.capacity {
            let Some((old, old_at)) = state.order.pop_front() else {
                break;
            };
            if state.settled.get(&old).is_some_and(|s| s.at == old_at) {
                state.settled.remove(&old);
            }
        }
        state.order.push_back((key.clone(), at));
        state.settled.insert(
            key,
            Settled {
                request: Arc::clone(request),
                result: result.clone(),
                at,
            },
        );
    }

    /// Forgets the remembered result of a reference (after reconciling it by hand).
    pub(crate) fn forget(&self, provider: Provider, reference: &MerchantReference) -> bool {
        self.state()
            .settled
            .remove(&(provider, reference.clone()))
            .is_some()
    }
}

/// A reused merchant reference must carry the same request: anything else is a misuse of the
/// duplicate key, refused before any I/O.
fn same_request(first: &RefundRequest, again: &RefundRequest) -> Result<(), RefundError> {
    if first == again {
        return Ok(());
    }
    Err(RefundError::invalid(
        "merchant_reference",
        format!(
            "{} is already used by a different refund request (order, amount, items or text \
             differ); a new refund needs a new merchant reference",
            again.merchant_reference.as_str()
        ),
    )
    .with_provider(again.provider))
}

/// Waits for the result of a flight. A flight whose sender vanished (its task panicked) has an
/// unknown outcome.
pub(crate) async fn outcome_of(
    mut receiver: watch::Receiver<Option<FlightResult>>,
    provider: Provider,
) -> FlightResult {
    match receiver.wait_for(Option::is_some).await {
        Ok(result) => result.clone().unwrap_or_else(|| Err(lost(provider))),
        Err(_) => Err(lost(provider)),
    }
}

fn lost(provider: Provider) -> RefundError {
    RefundError::new(crate::ErrorKind::Protocol)
        .with_provider(provider)
        .with_deduplication(provider.capabilities().idempotent_retries)
        .with_provider_message("the attempt ended without a result (its task failed)")
}
