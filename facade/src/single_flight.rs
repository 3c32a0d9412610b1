//! Single-flight of refunds: concurrent calls with the same provider and merchant reference
//! share one attempt on the wire and all get its result; a call shortly after a settled one
//! gets the same result without I/O; the same reference with a different request is refused.
//!
//! The merchant reference is the duplicate key, so this is what a payment API does with a
//! reused idempotency key, done in the client where a provider (AfterPay) does not do it.
//!
//! The attempt itself is driven by its leader (see `Refunds::refund` in `client.rs`); this
//! module keeps the books: who is in flight, who waits for whom, and what is remembered within
//! the [`ReplayMemory`] limits (a window, a count and a byte budget).

use std::collections::{HashMap, VecDeque, hash_map};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::answer::RawAnswer;
use crate::error::{ErrorKind, Outcome, RefundError};
use crate::model::{Provider, Refund, RefundRequest};
use crate::reference::MerchantReference;

/// The shared result of one attempt.
pub(crate) type FlightResult = Result<Refund, RefundError>;

/// How long, how many and how many bytes of settled results are remembered, to answer a repeat
/// of their request without I/O (see [`Refunds::refund`](crate::Refunds::refund)).
///
/// Three limits, whichever binds first:
///
/// - [`window`](ReplayMemory::window): a result older than this is forgotten;
/// - [`capacity`](ReplayMemory::capacity): past this many results the oldest is forgotten;
/// - [`max_bytes`](ReplayMemory::max_bytes): the memory's retained size. Past it, the *raw
///   answer bodies* ([`Refund::raw`]) of the oldest results are dropped first, and their
///   facts kept (provider refund id, status, amounts; an error whole): a replay of such a
///   result is the same [`Refund`] with an empty `raw` ([`RawAnswer::default`]). Only when
///   the facts alone are past the budget are whole results forgotten, oldest first. The newest
///   result is always kept, at least its facts, so a result whose raw body alone is larger
///   than the budget is remembered without its body.
///
/// Raw bodies are what grows: Moyasar answers a refund with its whole order, so the answers on
/// a large order grow with every refund (1,400 refunds on one order came to 350 MB of bodies
/// under a count limit alone). Facts are a few hundred bytes per result, so with the defaults
/// the count binds before the budget does for them.
///
/// Forgetting matters for AfterPay only: the other providers deduplicate on the merchant
/// reference, so a forgotten result's repeat is sent again and answered as a duplicate. An
/// AfterPay result forgotten early (a repeat after the window, or past the capacity) is not
/// protected by this memory; that is what the journal is for. Dropping a raw body never
/// forgets a result.
///
/// Build it from [`ReplayMemory::default`] with the `with_*` methods, or set the public fields
/// (`ReplayMemory { window, ..ReplayMemory::default() }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayMemory {
    /// How long a settled result answers repeats of its request (default 10 minutes).
    pub window: Duration,
    /// The most results remembered; the oldest is forgotten first (default 1024; 0 remembers
    /// nothing).
    pub capacity: usize,
    /// The most bytes the remembered results hold (default [`ReplayMemory::DEFAULT_MAX_BYTES`],
    /// 4 MiB): their raw answer bodies, texts (ids, error messages), the requests they answer,
    /// and a fixed estimate of the bookkeeping per result. Raw bodies are dropped first, oldest
    /// first, then whole results; the newest result's facts are always kept.
    pub max_bytes: usize,
}

impl ReplayMemory {
    /// [`ReplayMemory::max_bytes`]'s default: 4 MiB, about ten raw answers of a Moyasar order
    /// with a thousand refunds, or thousands of ordinary answers (a few KiB each).
    pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

    /// These limits with `window`.
    #[must_use]
    pub const fn with_window(self, window: Duration) -> ReplayMemory {
        ReplayMemory { window, ..self }
    }

    /// These limits with `capacity`.
    #[must_use]
    pub const fn with_capacity(self, capacity: usize) -> ReplayMemory {
        ReplayMemory { capacity, ..self }
    }

    /// These limits with `max_bytes`.
    #[must_use]
    pub const fn with_max_bytes(self, max_bytes: usize) -> ReplayMemory {
        ReplayMemory { max_bytes, ..self }
    }
}

impl Default for ReplayMemory {
    fn default() -> Self {
        ReplayMemory {
            window: Duration::from_secs(600),
            capacity: 1024,
            max_bytes: ReplayMemory::DEFAULT_MAX_BYTES,
        }
    }
}

/// What a call does with its request.
pub(crate) enum Join {
    /// Nobody is sending it: send it, then [`Flights::finish`] it. The request is shared with
    /// the flight's record, not copied again.
    Lead(Arc<RefundRequest>),
    /// Another call is sending it: wait for its result ([`outcome_of`]).
    Follow(watch::Receiver<Option<FlightResult>>),
    /// It settled a moment ago: this is its result.
    Replay(FlightResult),
}

/// A flight's key: its request, hashed and compared by the merchant reference alone (there is
/// a map per provider), and borrowed as that text, so a lookup allocates nothing.
#[derive(Clone)]
struct Keyed(Arc<RefundRequest>);

impl Keyed {
    fn reference(&self) -> &str {
        self.0.merchant_reference.as_str()
    }
}

impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` requires it.
        self.reference().hash(state);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Keyed) -> bool {
        self.reference() == other.reference()
    }
}

impl Eq for Keyed {}

impl std::borrow::Borrow<str> for Keyed {
    fn borrow(&self) -> &str {
        self.reference()
    }
}

/// Where a flight's result goes to the calls that joined it.
type Followers = watch::Sender<Option<FlightResult>>;

/// Where a reference stands.
enum Entry {
    /// Being sent. `followers` carries the result to the calls that joined: made when the
    /// first one joins, so a flight nobody joins (the usual case) costs no channel.
    InFlight { followers: Option<Followers> },
    /// Settled and remembered, in the slot numbered `seq`.
    Settled { seq: u64 },
}

/// A remembered result, in the order remembered.
struct Slot {
    /// The request and its result; `None` once forgotten by [`Flights::forget`] (the slot
    /// waits to reach the front, holding nothing).
    live: Option<(Keyed, FlightResult)>,
    at: Instant,
    /// Bytes this slot holds, its raw body included ([`retained_bytes`]).
    bytes: usize,
    /// Bytes of the raw body it still holds (0 once dropped, or for an error).
    raw: usize,
}

const PROVIDERS: usize = Provider::ALL.len();

/// The index of `provider` in [`Provider::ALL`].
fn index(provider: Provider) -> usize {
    Provider::ALL
        .iter()
        .position(|p| *p == provider)
        .unwrap_or_default()
}

struct State {
    /// Each provider's references in flight or remembered.
    flights: [HashMap<Keyed, Entry>; PROVIDERS],
    /// The remembered results, oldest first; `slots[i]` is numbered `first_seq + i`.
    slots: VecDeque<Slot>,
    first_seq: u64,
    /// No slot numbered below this holds a raw body any more.
    raw_cursor: u64,
    /// The sum of the live slots' `bytes`.
    bytes: usize,
    /// How many slots are live.
    remembered: usize,
}

impl Default for State {
    fn default() -> State {
        State {
            flights: std::array::from_fn(|_| HashMap::new()),
            slots: VecDeque::new(),
            first_seq: 0,
            raw_cursor: 0,
            bytes: 0,
            remembered: 0,
        }
    }
}

impl State {
    fn slot(&self, seq: u64) -> Option<&Slot> {
        self.slots
            .get(usize::try_from(seq.checked_sub(self.first_seq)?).ok()?)
    }

    /// Forgets the oldest slot; what it held (to drop once the lock is released), or `None`
    /// when there was no slot.
    fn pop_front(&mut self) -> Option<Option<(Keyed, FlightResult)>> {
        let slot = self.slots.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        self.raw_cursor = self.raw_cursor.max(self.first_seq);
        let Some(live) = slot.live else {
            return Some(None);
        };
        let key = &live.0;
        if let hash_map::Entry::Occupied(entry) =
            self.flights[index(key.0.provider)].entry(key.clone())
            && matches!(entry.get(), Entry::Settled { seq: current } if *current == seq)
        {
            entry.remove();
        }
        self.remembered -= 1;
        self.bytes -= slot.bytes;
        Some(Some(live))
    }

    /// Drops the raw body of the oldest slot that holds one; whether there was one.
    fn drop_oldest_raw(&mut self) -> bool {
        self.raw_cursor = self.raw_cursor.max(self.first_seq);
        while let Some(slot) = usize::try_from(self.raw_cursor - self.first_seq)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        {
            self.raw_cursor += 1;
            if slot.raw > 0 {
                let freed = strip_raw(slot);
                self.bytes -= freed;
                return true;
            }
        }
        false
    }

    /// Forgets the oldest live result unless it is the only one; whether one was forgotten.
    fn forget_oldest(&mut self) -> bool {
        if self.remembered <= 1 {
            return false;
        }
        let before = self.remembered;
        while self.remembered == before && self.pop_front().is_some() {}
        true
    }
}

/// Drops the raw body `slot` holds; the bytes freed.
fn strip_raw(slot: &mut Slot) -> usize {
    let freed = slot.raw;
    if let Some((_, Ok(refund))) = &mut slot.live {
        refund.raw = RawAnswer::default();
    }
    slot.raw = 0;
    slot.bytes -= freed;
    freed
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
        let now = Instant::now();
        let provider = index(request.provider);
        let reference = request.merchant_reference.as_str();
        // Copied before taking the lock, for the flight this call most likely leads (a call
        // that joins or is replayed drops it after the lock).
        let led = Arc::new(request.clone());
        let mut state = self.state();
        while state
            .slots
            .front()
            .is_some_and(|slot| now.duration_since(slot.at) >= self.memory.window)
        {
            drop(state.pop_front());
        }
        let state = &mut *state;
        match state.flights[provider].get_key_value(reference) {
            Some((key, Entry::Settled { seq })) => {
                same_request(&key.0, request)?;
                let result = state
                    .slot(*seq)
                    .and_then(|slot| slot.live.as_ref())
                    .map(|(_, result)| result.clone());
                // A settled entry always has its live slot; were it missing, lead anew.
                if let Some(result) = result {
                    return Ok(Join::Replay(result));
                }
            }
            Some((key, Entry::InFlight { .. })) => {
                same_request(&key.0, request)?;
                if let Some(Entry::InFlight { followers }) =
                    state.flights[provider].get_mut(reference)
                {
                    let receiver = match followers {
                        Some(sender) => sender.subscribe(),
                        None => {
                            let (sender, receiver) = watch::channel(None);
                            *followers = Some(sender);
                            receiver
                        }
                    };
                    return Ok(Join::Follow(receiver));
                }
            }
            None => {}
        }
        state.flights[provider]
            .insert(Keyed(Arc::clone(&led)), Entry::InFlight { followers: None });
        Ok(Join::Lead(led))
    }

    /// Ends the flight of `request` with `result`: hands the result to the calls that joined,
    /// and remembers it when a repeat must not be sent again: the refund exists, or its outcome
    /// is unknown on a provider that does not deduplicate. A result that says nothing was
    /// applied is not remembered, so the caller may try again.
    pub(crate) fn finish(&self, request: &Arc<RefundRequest>, result: &FlightResult) {
        // The entry is made before taking the lock, which is held only to file it.
        let slot = (remembers(request.provider, result) && self.memory.capacity > 0).then(|| {
            // A raw body larger than the whole budget is not copied: remembered for its facts
            // alone.
            let raw = raw_bytes(result);
            let with_raw = raw <= self.memory.max_bytes;
            let mut slot = Slot {
                live: Some((Keyed(Arc::clone(request)), kept(result, with_raw))),
                at: Instant::now(),
                bytes: retained_bytes(request, result),
                raw,
            };
            if !with_raw {
                strip_raw(&mut slot);
            }
            slot
        });
        let (followers, evicted) = {
            let mut state = self.state();
            if let Some(slot) = slot {
                self.remember(&mut state, request, slot)
            } else {
                let followers = match state.flights[index(request.provider)]
                    .remove(request.merchant_reference.as_str())
                {
                    Some(Entry::InFlight { followers }) => followers,
                    _ => None,
                };
                (followers, None)
            }
        };
        // Outside the lock: the result the count evicted is freed here, and every follower
        // holds its receiver already, while a call that comes now finds the result remembered
        // (or leads a new attempt, when nothing was applied).
        drop(evicted);
        if let Some(followers) = followers {
            followers.send_replace(Some(result.clone()));
        }
    }

    /// Files `slot`, the result of `request`, within the limits; the flight's followers, to
    /// hand the result to, and the result the count evicted, to drop outside the lock.
    fn remember(
        &self,
        state: &mut State,
        request: &Arc<RefundRequest>,
        slot: Slot,
    ) -> (Option<Followers>, Option<(Keyed, FlightResult)>) {
        let mut evicted = None;
        while state.remembered >= self.memory.capacity {
            match state.pop_front() {
                Some(Some(live)) => evicted = Some(live),
                Some(None) => {}
                None => break,
            }
        }
        let seq = state.first_seq + state.slots.len() as u64;
        let followers = match state.flights[index(request.provider)]
            .insert(Keyed(Arc::clone(request)), Entry::Settled { seq })
        {
            Some(Entry::InFlight { followers }) => followers,
            _ => None,
        };
        state.bytes += slot.bytes;
        state.remembered += 1;
        state.slots.push_back(slot);
        while state.bytes > self.memory.max_bytes {
            if !state.drop_oldest_raw() && !state.forget_oldest() {
                break;
            }
        }
        (followers, evicted)
    }

    /// Forgets the remembered result of a reference (after reconciling it by hand).
    pub(crate) fn forget(&self, provider: Provider, reference: &MerchantReference) -> bool {
        let mut state = self.state();
        let map = &mut state.flights[index(provider)];
        let Some(Entry::Settled { seq }) = map.get(reference.as_str()) else {
            return false;
        };
        let seq = *seq;
        map.remove(reference.as_str());
        let first_seq = state.first_seq;
        let Some(slot) = seq
            .checked_sub(first_seq)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| state.slots.get_mut(i))
        else {
            return false;
        };
        let freed = slot.bytes;
        slot.live = None;
        slot.raw = 0;
        slot.bytes = 0;
        state.bytes -= freed;
        state.remembered -= 1;
        true
    }
}

/// Whether a repeat of a request must get `result` rather than be sent again.
fn remembers(provider: Provider, result: &FlightResult) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => match error.outcome() {
            Outcome::Applied => true,
            Outcome::Unknown => !provider.capabilities().idempotent_retries,
            Outcome::NotApplied => false,
        },
    }
}

/// The fixed part of one remembered result: its slot, its entry in the map (with the map's
/// control bytes), the shared request and its reference counts, and the allocator's overhead.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Slot>()
    + std::mem::size_of::<(Keyed, Entry)>()
    + std::mem::size_of::<RefundRequest>()
    + 2 * std::mem::size_of::<usize>()
    + 64;

/// The fixed part of an error's boxed details (not visible from here, so an upper estimate),
/// and of an underlying cause.
const ERROR_OVERHEAD: usize = 512;

/// What the memory keeps of `result`: a clone whose raw body is a copy of its own, or, without
/// `with_raw`, empty. A clone of the caller's body would share it: every refund would pay for
/// making the caller's buffer a shared one, and the memory would hold that buffer until the
/// result is forgotten, by then cold and freed, often on another thread. The copy is one
/// allocation of the body's length, and the caller's buffer is freed wherever the caller drops
/// it. Built field by field: `refund.clone()` would already share the body.
fn kept(result: &FlightResult, with_raw: bool) -> FlightResult {
    let Ok(refund) = result else {
        return result.clone();
    };
    Ok(Refund {
        provider: refund.provider,
        provider_refund_id: refund.provider_refund_id.clone(),
        status: refund.status,
        amount: refund.amount,
        refunded_total: refund.refunded_total,
        captured_total: refund.captured_total,
        raw: if with_raw {
            RawAnswer::new(refund.raw.as_bytes().to_vec())
        } else {
            RawAnswer::default()
        },
    })
}

/// The raw body a result holds, in bytes (its length: what the memory keeps is a copy of exactly
/// that length, see [`kept`]).
fn raw_bytes(result: &FlightResult) -> usize {
    match result {
        Ok(refund) => refund.raw.as_bytes().len(),
        Err(_) => 0,
    }
}

/// What remembering `result` for `request` holds in memory, in bytes: the raw body, every text
/// (the request's, the refund id, an error's messages), and a fixed overhead per entry. An
/// estimate, not an allocator's count, but it grows with everything that grows.
fn retained_bytes(request: &RefundRequest, result: &FlightResult) -> usize {
    let text = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    let request_bytes = request.order_id.len()
        + request.merchant_reference.as_str().len()
        + text(&request.description)
        + text(&request.capture_number)
        + text(&request.provider_order_id)
        + request
            .line_items
            .iter()
            .map(|item| {
                std::mem::size_of_val(item) + item.product_id.len() + item.description.len()
            })
            .sum::<usize>();
    let result_bytes = match result {
        Ok(refund) => text(&refund.provider_refund_id) + refund.raw.as_bytes().len(),
        Err(error) => error_bytes(error),
    };
    ENTRY_OVERHEAD + request_bytes + result_bytes
}

/// The texts an error holds, plus [`ERROR_OVERHEAD`].
fn error_bytes(error: &RefundError) -> usize {
    let kind = match error.kind() {
        ErrorKind::InvalidRequest { field, reason } => field.len() + reason.len(),
        ErrorKind::InvalidConfig { setting, reason } => setting.len() + reason.len(),
        _ => 0,
    };
    let opt = |text: Option<&str>| text.map_or(0, str::len);
    let messages: usize = error
        .provider_messages()
        .iter()
        .map(|m| {
            std::mem::size_of_val(m)
                + m.message.len()
                + m.code.as_ref().map_or(0, String::len)
                + m.field.as_ref().map_or(0, String::len)
        })
        .sum();
    let problems: usize = error
        .problems()
        .iter()
        .map(|p| std::mem::size_of_val(p) + p.field.len() + p.reason.len())
        .sum();
    ERROR_OVERHEAD
        + kind
        + opt(error.provider_code())
        + opt(error.provider_message())
        + messages
        + problems
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

/// Waits for the result of a flight. A flight that ended without one has an unknown outcome.
pub(crate) async fn outcome_of(
    mut receiver: watch::Receiver<Option<FlightResult>>,
    provider: Provider,
) -> FlightResult {
    match receiver.wait_for(Option::is_some).await {
        Ok(result) => result.clone().unwrap_or_else(|| Err(lost(provider))),
        Err(_) => Err(lost(provider)),
    }
}

/// The result of an attempt that ended without one (its task panicked, or was dropped with no
/// runtime to finish it on): the request may have left, so the outcome is unknown.
pub(crate) fn lost(provider: Provider) -> RefundError {
    RefundError::new(ErrorKind::Protocol)
        .with_provider(provider)
        .with_deduplication(provider.capabilities().idempotent_retries)
        .with_provider_message(
            "the attempt ended without a result (it panicked, or was dropped with no runtime to \
             finish it on); the request may have been sent",
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RefundStatus;
    use crate::money::Money;

    /// A request of 1.00 EUR: the flights neither validate nor send it.
    fn request(provider: Provider, reference: &str) -> Arc<RefundRequest> {
        Arc::new(RefundRequest::new(
            provider,
            "ORD-1",
            Money::parse("1.00", "EUR").unwrap(),
            MerchantReference::new(reference).unwrap(),
        ))
    }

    fn refund(request: &RefundRequest, raw_len: usize) -> FlightResult {
        Ok(Refund {
            provider: request.provider,
            provider_refund_id: Some(format!("id-{}", request.merchant_reference.as_str())),
            status: RefundStatus::Succeeded,
            amount: request.amount,
            refunded_total: None,
            captured_total: None,
            raw: RawAnswer::new(vec![b'x'; raw_len]),
        })
    }

    /// Leads and finishes `request` with `result`, as a call does.
    fn settle(flights: &Flights, request: &Arc<RefundRequest>, result: &FlightResult) {
        match flights.join(request).unwrap() {
            Join::Lead(_) => {}
            _ => panic!("{} should lead", request.merchant_reference.as_str()),
        }
        flights.finish(request, result);
    }

    /// The remembered result of `request`, if any.
    fn replay(flights: &Flights, request: &RefundRequest) -> Option<FlightResult> {
        match flights.join(request).unwrap() {
            Join::Replay(result) => Some(result),
            Join::Lead(request) => {
                // Not remembered: end the flight again, leaving nothing behind.
                flights.state().flights[index(request.provider)]
                    .remove(request.merchant_reference.as_str());
                None
            }
            Join::Follow(_) => panic!("nothing is in flight"),
        }
    }

    fn raw_len(result: &FlightResult) -> usize {
        result.as_ref().unwrap().raw.as_bytes().len()
    }

    /// Checks the books: the total is the sum of the live slots, each slot's size is its
    /// estimate, each remembered reference names its live slot, and nothing is in flight.
    fn assert_consistent(flights: &Flights) -> usize {
        let state = flights.state();
        let live: Vec<(u64, &Slot)> = state
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| (state.first_seq + i as u64, slot))
            .filter(|(_, slot)| slot.live.is_some())
            .collect();
        let sum: usize = live.iter().map(|(_, slot)| slot.bytes).sum();
        assert_eq!(state.bytes, sum, "the total is the sum of the live slots");
        assert_eq!(state.remembered, live.len());
        for (seq, slot) in &live {
            let (key, result) = slot.live.as_ref().unwrap();
            assert_eq!(slot.bytes, retained_bytes(&key.0, result));
            assert_eq!(slot.raw, raw_bytes(result));
            assert!(matches!(
                state.flights[index(key.0.provider)].get(key.reference()),
                Some(Entry::Settled { seq: current }) if current == seq
            ));
        }
        for map in &state.flights {
            assert!(
                map.values()
                    .all(|entry| matches!(entry, Entry::Settled { .. })),
                "nothing in flight"
            );
        }
        let settled: usize = state.flights.iter().map(HashMap::len).sum();
        assert_eq!(settled, live.len(), "one entry per live slot");
        state.bytes
    }

    #[test]
    fn a_remembered_body_is_a_copy_of_its_own() {
        let flights = Flights::new(ReplayMemory::default());
        let first = request(Provider::AfterPay, "R-1");
        let answered = refund(&first, 300);
        settle(&flights, &first, &answered);
        let replayed = replay(&flights, &first).expect("remembered").unwrap();
        let answered = answered.unwrap();
        assert_eq!(replayed, answered, "the same refund, body included");
        assert_ne!(
            replayed.raw.as_bytes().as_ptr(),
            answered.raw.as_bytes().as_ptr(),
            "the memory holds a copy, not a share of the caller's buffer"
        );
    }

    #[test]
    fn retained_bytes_counts_the_raw_body_and_the_texts() {
        let small = request(Provider::Moyasar, "R-1");
        let large = request(Provider::Moyasar, "R-1-LONGER-REFERENCE");
        let base = retained_bytes(&small, &refund(&small, 0));
        assert!(base >= ENTRY_OVERHEAD);
        assert_eq!(
            retained_bytes(&small, &refund(&small, 100_000)),
            base + 100_000,
            "every byte of the raw body counts"
        );
        // The reference is held once in the (shared) request, and in the id here.
        assert_eq!(
            retained_bytes(&large, &refund(&large, 0)),
            base + 2 * ("R-1-LONGER-REFERENCE".len() - "R-1".len())
        );
        let with_text = Arc::new(RefundRequest::clone(&small).with_description("d".repeat(300)));
        assert_eq!(retained_bytes(&with_text, &refund(&small, 0)), base + 300);
        let error = RefundError::new(ErrorKind::Timeout)
            .with_provider_message("m".repeat(1000))
            .with_provider_code("CODE");
        let bare = RefundError::new(ErrorKind::Timeout);
        assert_eq!(
            retained_bytes(&small, &Err(error)),
            retained_bytes(&small, &Err(bare)) + 1004
        );
    }

    #[test]
    fn raw_bodies_of_the_oldest_are_dropped_first_past_the_budget() {
        let requests: Vec<_> = (0..6)
            .map(|i| request(Provider::Moyasar, &format!("R-{i}")))
            .collect();
        let facts = retained_bytes(&requests[0], &refund(&requests[0], 0));
        // Room for the facts of all six results and the raw bodies of three (not four).
        let flights =
            Flights::new(ReplayMemory::default().with_max_bytes(6 * facts + 3 * 10_000 + 5_000));
        for request in &requests {
            settle(&flights, request, &refund(request, 10_000));
            let bytes = assert_consistent(&flights);
            assert!(
                bytes <= flights.memory.max_bytes,
                "{bytes} bytes remembered"
            );
        }
        // Every result is still remembered, with its facts; only the newest keep their bodies.
        let lens: Vec<usize> = requests
            .iter()
            .map(|request| raw_len(&replay(&flights, request).expect("remembered")))
            .collect();
        assert_eq!(lens, [0, 0, 0, 10_000, 10_000, 10_000]);
        let oldest = replay(&flights, &requests[0]).unwrap().unwrap();
        assert_eq!(oldest.provider_refund_id.as_deref(), Some("id-R-0"));
        assert_eq!(oldest.amount, requests[0].amount);
        assert_eq!(oldest.status, RefundStatus::Succeeded);
    }

    #[test]
    fn a_result_larger_than_the_budget_is_remembered_without_its_body() {
        let flights = Flights::new(ReplayMemory::default().with_max_bytes(50_000));
        let small = request(Provider::AfterPay, "R-SMALL");
        settle(&flights, &small, &refund(&small, 1_000));
        let huge = request(Provider::AfterPay, "R-HUGE");
        settle(&flights, &huge, &refund(&huge, 1_000_000));
        let bytes = assert_consistent(&flights);
        assert!(bytes <= 50_000, "{bytes}");
        let replayed = replay(&flights, &huge).expect("the huge result is remembered");
        assert_eq!(raw_len(&replayed), 0, "without its body");
        assert_eq!(
            replayed.unwrap().provider_refund_id.as_deref(),
            Some("id-R-HUGE")
        );
        assert_eq!(
            raw_len(&replay(&flights, &small).expect("remembered")),
            1_000,
            "the small one keeps its body: the huge body never entered"
        );
    }

    #[test]
    fn an_unknown_afterpay_outcome_is_remembered_however_small_the_budget() {
        let flights = Flights::new(ReplayMemory::default().with_max_bytes(0));
        let first = request(Provider::AfterPay, "R-1");
        settle(&flights, &first, &refund(&first, 500));
        let unknown = request(Provider::AfterPay, "R-UNKNOWN");
        let error = RefundError::new(ErrorKind::Timeout)
            .with_provider(Provider::AfterPay)
            .with_provider_message("m".repeat(10_000));
        settle(&flights, &unknown, &Err(error));
        assert_consistent(&flights);
        let replayed = replay(&flights, &unknown).expect("the newest result is kept");
        let replayed = replayed.expect_err("the error itself");
        assert!(replayed.outcome_unknown());
        assert_eq!(replayed.provider_message().map(str::len), Some(10_000));
        // The budget forgot the older result for it (it has no body left to drop).
        assert!(replay(&flights, &first).is_none());
        // A not-applied result is never remembered, whatever the budget.
        let refused = request(Provider::AfterPay, "R-REFUSED");
        settle(
            &flights,
            &refused,
            &Err(RefundError::new(ErrorKind::OrderNotFound)),
        );
        assert!(replay(&flights, &refused).is_none());
        assert!(replay(&flights, &unknown).is_some());
    }

    #[test]
    fn whole_results_go_oldest_first_once_only_facts_are_left() {
        let one = {
            let r = request(Provider::Moyasar, "R-00");
            retained_bytes(&r, &refund(&r, 0))
        };
        // Room for the facts of three results.
        let flights = Flights::new(ReplayMemory::default().with_max_bytes(3 * one + one / 2));
        let requests: Vec<_> = (0..5)
            .map(|i| request(Provider::Moyasar, &format!("R-{i:02}")))
            .collect();
        for request in &requests {
            settle(&flights, request, &refund(request, 200));
            assert!(assert_consistent(&flights) <= flights.memory.max_bytes);
        }
        let kept: Vec<bool> = requests
            .iter()
            .map(|request| replay(&flights, request).is_some())
            .collect();
        assert_eq!(kept, [false, false, true, true, true]);
    }

    #[test]
    fn forgetting_and_the_window_release_their_bytes() {
        let flights = Flights::new(ReplayMemory::default());
        let first = request(Provider::Optty, "R-1");
        let second = request(Provider::Optty, "R-2");
        settle(&flights, &first, &refund(&first, 5_000));
        settle(&flights, &second, &refund(&second, 7_000));
        let both = assert_consistent(&flights);
        assert!(flights.forget(Provider::Optty, &first.merchant_reference));
        assert_eq!(
            assert_consistent(&flights),
            both - retained_bytes(&first, &refund(&first, 5_000))
        );
        // The forgotten reference leads again, and its new result counts once.
        settle(&flights, &first, &refund(&first, 5_000));
        assert_eq!(assert_consistent(&flights), both);
        assert!(!flights.forget(Provider::AfterPay, &first.merchant_reference));
        // The forgotten slot leaves with the oldest; the reference's new result stays.
        let third = request(Provider::Optty, "R-3");
        let small = Flights::new(ReplayMemory::default().with_capacity(2));
        settle(&small, &first, &refund(&first, 10));
        assert!(small.forget(Provider::Optty, &first.merchant_reference));
        settle(&small, &first, &refund(&first, 10));
        settle(&small, &second, &refund(&second, 10));
        settle(&small, &third, &refund(&third, 10));
        assert_consistent(&small);
        assert!(replay(&small, &first).is_none(), "the oldest by count");
        assert!(replay(&small, &second).is_some() && replay(&small, &third).is_some());
        assert!(small.state().slots.len() <= 2);

        let short = Flights::new(ReplayMemory::default().with_window(Duration::ZERO));
        settle(&short, &first, &refund(&first, 5_000));
        assert!(replay(&short, &first).is_none(), "past the window");
        assert_eq!(assert_consistent(&short), 0);
        assert!(short.state().slots.is_empty());
    }

    #[test]
    fn the_capacity_still_bounds_the_count() {
        let flights = Flights::new(ReplayMemory::default().with_capacity(2));
        let requests: Vec<_> = (0..10)
            .map(|i| request(Provider::OpenApp, &format!("R-{i}")))
            .collect();
        for request in &requests {
            settle(&flights, request, &refund(request, 100));
            assert_consistent(&flights);
            let slots = flights.state().slots.len();
            assert!(slots <= 2, "the slots do not outgrow the count: {slots}");
        }
        let kept: Vec<bool> = requests
            .iter()
            .map(|request| replay(&flights, request).is_some())
            .collect();
        assert_eq!(
            kept,
            [
                false, false, false, false, false, false, false, false, true, true
            ]
        );
    }

    #[test]
    fn followers_get_the_result_and_a_flight_nobody_joins_has_no_channel() {
        let flights = Flights::new(ReplayMemory::default());
        let request = request(Provider::AfterPay, "R-1");
        let Join::Lead(led) = flights.join(&request).unwrap() else {
            panic!("leads")
        };
        let no_channel = |flights: &Flights| {
            matches!(
                flights.state().flights[index(request.provider)]
                    .get(request.merchant_reference.as_str()),
                Some(Entry::InFlight { followers: None })
            )
        };
        assert!(no_channel(&flights), "no follower, no channel");
        let Join::Follow(mut one) = flights.join(&request).unwrap() else {
            panic!("follows")
        };
        let Join::Follow(two) = flights.join(&request).unwrap() else {
            panic!("follows")
        };
        assert!(one.borrow().is_none(), "no result yet");
        let result = refund(&request, 10);
        flights.finish(&led, &result);
        // The leader's side is gone with the flight; the result stays readable.
        assert!(
            one.has_changed().is_err(),
            "the channel closed after the result"
        );
        let got = |seen: &Option<FlightResult>| seen.clone().expect("a result").ok();
        assert_eq!(got(&one.borrow_and_update()), result.clone().ok());
        assert_eq!(got(&two.borrow()), result.ok());
        // A different request under the same reference is refused while in flight too.
        let Join::Lead(again) = flights.join(&request_for_other_order()).unwrap() else {
            panic!("another reference leads")
        };
        let reused = RefundRequest {
            order_id: "ORD-OTHER".to_owned(),
            ..RefundRequest::clone(&again)
        };
        let err = flights.join(&reused).err().expect("refused");
        assert_eq!(err.field(), Some("merchant_reference"));
    }

    fn request_for_other_order() -> Arc<RefundRequest> {
        request(Provider::AfterPay, "R-2")
    }
}
