//! Fault injection: rules that make a provider's refund route, or its read routes, misbehave.
//!
//! Each rule targets one [`Operation`]: the refund route ([`Operation::Refund`], the default,
//! what every rule meant before reads existed) or the read routes ([`Operation::Read`]: Optty's
//! Transaction Details, AfterPay's Get Order and Get Refunds, Moyasar's Retrieve Order). Never
//! Optty's `/token`, never `/__admin`, so a test can break refunds or reads while
//! authentication still works.
//!
//! Provider-neutral: the rules, which request draws which fault, and the note of the fault a
//! request drew (for the request log) live here. What a fault does to an answer is applied by
//! the server ([`crate::server`]) with two hooks each provider's room supplies: before the work,
//! its answer to [`Fault::Status`] in its own error shape; after the work, its own effect on its
//! answer ([`AlterAnswer`]), which every fault that fired goes to before the provider-neutral
//! effects (OpenApp's acts on [`Fault::UnsignedAnswer`] and [`Fault::WrongSignature`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::Response;

use crate::state::lock;

/// What goes wrong. On the refund route, "the work" is recording the refund; on a read route
/// ([`Operation::Read`]) nothing is ever recorded, and the faults "after the work" replace or
/// alter the read's answer the same way (a read whose connection drops, whose body is a
/// gateway's HTML page, or too large); the signature faults change nothing there (OpenApp, the
/// only provider that signs, has no read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long before handling the request (Moyasar: after the
    /// `transaction_id` was marked in flight, so a concurrent duplicate gets
    /// "Initial request is still processing."). The work runs to completion
    /// even if the client gives up meanwhile, as a real server's would.
    Latency(Duration),
    /// Answer this status at once, doing nothing; the body is the provider's
    /// own shape for it (Optty `{"statusCode":500,"message":"Internal server
    /// error"}`, AfterPay empty, Moyasar `{"message":..}`, OpenApp
    /// `{"exception":..,"message":..}`).
    Status(u16),
    /// Handle the request fully (recording the refund when it succeeds),
    /// then close the TCP connection without sending a single response byte.
    DropAfterCommit,
    /// Handle the request fully (recording the refund when it succeeds),
    /// then answer `200` with an HTML body instead of JSON, as a broken
    /// proxy in front of the provider would.
    MalformedBody,
    /// Answer `502 Bad Gateway` with a `text/html` body at once, doing
    /// nothing, as a gateway in front of the provider would.
    NonJson502,
    /// Handle the request fully (recording the refund when it succeeds),
    /// then discard the provider's answer and answer this status with a
    /// gateway's HTML page (`content-type: text/html`), as a gateway in
    /// front of the provider does when it timed out after the provider
    /// committed. 500, 502, 503 and 504 get nginx's page for that status
    /// (`<title>504 Gateway Time-out</title>`..); any other status a generic
    /// page with its canonical reason. A number that is no HTTP status
    /// (outside 100..=999) answers 502.
    StatusAfterCommit(u16),
    /// Handle the request fully (recording the refund when it succeeds),
    /// then send the provider's real answer (status, headers, body) without
    /// its response-signature headers: OpenApp's `authorization` and
    /// `x-app-signature` are removed. Optty, AfterPay and Moyasar do not
    /// sign their answers, so for them this changes nothing.
    UnsignedAnswer,
    /// Handle the request fully (recording the refund when it succeeds),
    /// then send the provider's real answer with an `x-app-signature` that
    /// does not match its body: OpenApp's `authorization` header is kept and
    /// the signature is a well-formed HMAC under the right secret and that
    /// header's elements, but over a different body. Optty, AfterPay and
    /// Moyasar do not sign their answers, so for them this changes nothing;
    /// nor does it on OpenApp while
    /// [`crate::openapp::ResponseSigning::Absent`] leaves answers unsigned.
    WrongSignature,
    /// Handle the request fully (recording the refund when it succeeds),
    /// then discard the provider's answer and answer `200` with
    /// `content-type: application/json; charset=utf-8` and a body of exactly
    /// this many bytes: `{"padding":"xxx..x"}` (for fewer than 14 bytes, the
    /// first n bytes of `{"padding":""}`). The body is streamed in chunks of
    /// at most 64 KiB with chunked transfer encoding and no
    /// `content-length`, so the client learns its size only by reading it;
    /// the server never holds more than one chunk of it in memory.
    OversizedBody(usize),
    /// Handle the request fully (recording the refund when it succeeds),
    /// then send the provider's real answer plus one extra header,
    /// `x-sandbox-padding`, whose value is this many `x` bytes (visible
    /// ASCII). hyper's client refuses a response head beyond about 400 KiB
    /// (`max_buf_size`), so 1 MiB makes reqwest fail after the refund was
    /// recorded, while 64 KiB arrives.
    OversizedHeaders(usize),
}

impl Fault {
    /// The fault's kind as the admin API names it: `latency`, `status`,
    /// `drop_after_commit`, `malformed_body`, `non_json_502`,
    /// `status_after_commit`, `unsigned_answer`, `wrong_signature`,
    /// `oversized_body`, `oversized_headers`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Latency(_) => "latency",
            Fault::Status(_) => "status",
            Fault::DropAfterCommit => "drop_after_commit",
            Fault::MalformedBody => "malformed_body",
            Fault::NonJson502 => "non_json_502",
            Fault::StatusAfterCommit(_) => "status_after_commit",
            Fault::UnsignedAnswer => "unsigned_answer",
            Fault::WrongSignature => "wrong_signature",
            Fault::OversizedBody(_) => "oversized_body",
            Fault::OversizedHeaders(_) => "oversized_headers",
        }
    }
}

/// Waits out `fault` if it is a [`Fault::Latency`]; any other fault, or a zero delay, waits
/// for nothing (tokio's timer would still take its next tick, a millisecond, over a zero sleep).
pub(crate) async fn wait_latency(fault: Option<&Fault>) {
    if let Some(Fault::Latency(delay)) = fault
        && !delay.is_zero()
    {
        tokio::time::sleep(*delay).await;
    }
}

/// A provider's own effect of a fault on its answer, applied in place after the work was done
/// and before the provider-neutral effects (OpenApp: [`Fault::UnsignedAnswer`] removes the
/// signature headers, [`Fault::WrongSignature`] replaces the signature). The server calls it
/// with every fault that fired; a provider whose answers no fault alters supplies
/// [`answer_unaltered`].
pub(crate) type AlterAnswer = fn(&Fault, &mut Response);

/// The [`AlterAnswer`] hook of a provider without effects of its own: its answers carry no
/// signature, so the signature faults change nothing there.
pub(crate) fn answer_unaltered(_fault: &Fault, _answer: &mut Response) {}

tokio::task_local! {
    /// Where [`Faults::take`] notes the fault the current request drew.
    static FIRED: FiredFault;
}

/// The fault a request drew, noted by [`Faults::take`] while the request's handler runs
/// within [`FiredFault::scope`], for the request log.
#[derive(Debug, Clone, Default)]
pub(crate) struct FiredFault(Arc<Mutex<Option<Fault>>>);

impl FiredFault {
    /// Runs `work` (a request's handler) so that a fault it draws is noted here.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        FIRED.scope(self.clone(), work).await
    }

    /// The fault noted, if any, leaving none.
    pub fn take(&self) -> Option<Fault> {
        lock(&self.0).take()
    }

    /// Notes `fault` for the request being handled, if any.
    fn note(fault: &Fault) {
        let _ = FIRED.try_with(|fired| *lock(&fired.0) = Some(fault.clone()));
    }
}

/// Which of a provider's operations a fault rule targets. Provider-neutral: each room says
/// which of its routes is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Operation {
    /// The refund route (`POST .../refund(s)`). The default: a rule that names no operation
    /// targets refunds.
    #[default]
    Refund,
    /// The read routes: Optty's `POST /orders/{merchantReference}/details`, AfterPay's
    /// `GET /api/v3/orders/{orderNumber}` and `GET .../refunds/{refundNumber}`, Moyasar's
    /// `GET /v1/orders/{id}` (OpenApp has none).
    Read,
}

impl Operation {
    /// `refund` or `read`, as the admin API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Refund => "refund",
            Operation::Read => "read",
        }
    }
}

/// Which requests (of the rule's [`Operation`]) a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Every request.
    Any,
    /// Requests for this order id (the path id; for an OpenApp refund the
    /// `oaOrderId` or `shopOrderId` in the body).
    Order(String),
    /// Only the n-th request (1-based) of the rule's operation counted from when the fault was
    /// injected.
    Nth(usize),
}

impl Match {
    /// This match, firing once and then clearing itself.
    pub fn once(self) -> Trigger {
        self.times(1)
    }

    /// This match, firing `n` times and then clearing itself.
    pub fn times(self, n: usize) -> Trigger {
        Trigger::from(self).times(n)
    }

    /// This match on `operation`'s requests (`Match::Any.on(Operation::Read).once()`), until
    /// cleared.
    pub fn on(self, operation: Operation) -> Trigger {
        Trigger::from(self).on(operation)
    }
}

/// A [`Match`] on an [`Operation`]'s requests, with an optional limit on how often the fault
/// fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Which requests.
    pub matcher: Match,
    /// How many times at most; `None` = until cleared.
    pub times: Option<usize>,
    /// Which operation's requests (default [`Operation::Refund`]).
    pub operation: Operation,
}

impl Trigger {
    /// This trigger, firing once and then clearing itself.
    pub fn once(self) -> Trigger {
        self.times(1)
    }

    /// This trigger, firing `n` times and then clearing itself.
    pub fn times(self, n: usize) -> Trigger {
        Trigger {
            times: Some(n),
            ..self
        }
    }

    /// This trigger on `operation`'s requests instead.
    pub fn on(self, operation: Operation) -> Trigger {
        Trigger { operation, ..self }
    }
}

impl From<Match> for Trigger {
    fn from(matcher: Match) -> Self {
        Trigger {
            matcher,
            times: None,
            operation: Operation::Refund,
        }
    }
}

/// One injected fault as [`crate::ProviderHandle::fault_rules`] and
/// `GET /__admin/faults` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The rule's id, unique per provider server ([`FaultHandle::id`]).
    pub id: u64,
    /// What goes wrong.
    pub fault: Fault,
    /// Which requests.
    pub matcher: Match,
    /// Which operation's requests.
    pub operation: Operation,
    /// Firings left; `None` = until cleared. A rule at 0 stays listed (and
    /// fires no more) until cleared.
    pub times_left: Option<usize>,
    /// Requests of its operation this rule has seen since it was injected (what
    /// [`Match::Nth`] counts).
    pub seen: usize,
    /// Requests it fired on.
    pub fired: usize,
}

#[derive(Debug)]
struct Rule {
    id: u64,
    fault: Fault,
    matcher: Match,
    operation: Operation,
    remaining: Option<usize>,
    seen: usize,
    fired: usize,
}

#[derive(Debug, Default)]
struct Rules {
    next_id: u64,
    rules: Vec<Rule>,
}

/// A provider's fault rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    inner: Mutex<Rules>,
}

impl Faults {
    pub fn add(self: &Arc<Self>, fault: Fault, trigger: Trigger) -> FaultHandle {
        let mut rules = lock(&self.inner);
        rules.next_id += 1;
        let id = rules.next_id;
        rules.rules.push(Rule {
            id,
            fault,
            matcher: trigger.matcher,
            operation: trigger.operation,
            remaining: trigger.times,
            seen: 0,
            fired: 0,
        });
        FaultHandle {
            faults: Arc::clone(self),
            id,
        }
    }

    pub fn clear(&self) {
        lock(&self.inner).rules.clear();
    }

    /// Removes one rule; `false` when there is none with this id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = lock(&self.inner);
        let before = rules.rules.len();
        rules.rules.retain(|r| r.id != id);
        rules.rules.len() != before
    }

    /// Every rule, in the order they are tried.
    pub fn list(&self) -> Vec<FaultRule> {
        lock(&self.inner)
            .rules
            .iter()
            .map(|r| FaultRule {
                id: r.id,
                fault: r.fault.clone(),
                matcher: r.matcher.clone(),
                operation: r.operation,
                times_left: r.remaining,
                seen: r.seen,
                fired: r.fired,
            })
            .collect()
    }

    /// Decides the fault for one request of `operation` about `orders` (the ids the request
    /// names). Every rule of that operation counts the request for [`Match::Nth`]; the first
    /// matching rule with firings left wins. Rules of the other operation neither see nor
    /// fire on it.
    pub fn take(&self, operation: Operation, orders: &[&str]) -> Option<Fault> {
        let mut rules = lock(&self.inner);
        let mut chosen = None;
        for rule in rules.rules.iter_mut().filter(|r| r.operation == operation) {
            rule.seen += 1;
            if chosen.is_some() || rule.remaining == Some(0) {
                continue;
            }
            let hit = match &rule.matcher {
                Match::Any => true,
                Match::Order(id) => orders.contains(&id.as_str()),
                Match::Nth(n) => rule.seen == *n,
            };
            if hit {
                rule.fired += 1;
                if let Some(r) = rule.remaining.as_mut() {
                    *r -= 1;
                }
                chosen = Some(rule.fault.clone());
            }
        }
        if let Some(fault) = &chosen {
            FiredFault::note(fault);
        }
        chosen
    }
}

/// A handle to one injected fault.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    faults: Arc<Faults>,
    id: u64,
}

impl FaultHandle {
    /// The rule's id, as `GET /__admin/faults` lists it.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn with<R>(&self, f: impl FnOnce(&mut Rule) -> R) -> Option<R> {
        let mut rules = lock(&self.faults.inner);
        rules.rules.iter_mut().find(|r| r.id == self.id).map(f)
    }

    /// Limits the fault to fire once more, then clear itself.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// Limits the fault to fire `n` more times.
    pub fn times(self, n: usize) -> Self {
        self.with(|r| r.remaining = Some(n));
        self
    }

    /// How many requests this fault has hit.
    pub fn fired(&self) -> usize {
        self.with(|r| r.fired).unwrap_or(0)
    }

    /// Removes the fault.
    pub fn clear(&self) {
        self.faults.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_zero_latency_waits_for_nothing() {
        let polled_once = |fault: Fault| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            std::pin::pin!(wait_latency(Some(&fault))).poll(&mut cx)
        };
        assert!(polled_once(Fault::Latency(Duration::ZERO)).is_ready());
        assert!(polled_once(Fault::Status(500)).is_ready());
        assert!(polled_once(Fault::Latency(Duration::from_millis(50))).is_pending());
    }

    #[test]
    fn once_fires_once_and_nth_counts_from_injection() {
        let faults = Arc::new(Faults::default());
        let refund = |orders: &[&str]| faults.take(Operation::Refund, orders);
        let h = faults.add(Fault::Status(500), Match::Any.once());
        assert_eq!(refund(&["a"]), Some(Fault::Status(500)));
        assert_eq!(refund(&["a"]), None);
        assert_eq!(h.fired(), 1);
        faults.add(Fault::NonJson502, Match::Nth(2).into());
        assert_eq!(refund(&["a"]), None);
        assert_eq!(refund(&["a"]), Some(Fault::NonJson502));
        assert_eq!(refund(&["a"]), None);
        faults.clear();
        let h = faults.add(Fault::MalformedBody, Match::Order("b".into()).into());
        assert_eq!(refund(&["a"]), None);
        assert_eq!(refund(&["x", "b"]), Some(Fault::MalformedBody));
        h.clear();
        assert_eq!(refund(&["b"]), None);
    }

    #[test]
    fn a_rule_sees_only_its_operations_requests() {
        let faults = Arc::new(Faults::default());
        faults.add(Fault::Status(503), Match::Nth(2).on(Operation::Read).once());
        faults.add(Fault::NonJson502, Match::Any.once());
        // Refunds do not count towards the read rule's n-th.
        assert_eq!(faults.take(Operation::Read, &["a"]), None);
        assert_eq!(
            faults.take(Operation::Refund, &["a"]),
            Some(Fault::NonJson502)
        );
        assert_eq!(
            faults.take(Operation::Read, &["a"]),
            Some(Fault::Status(503))
        );
        let rules = faults.list();
        assert_eq!(
            (rules[0].operation, rules[0].seen, rules[1].seen),
            (Operation::Read, 2, 1)
        );
        assert_eq!(Trigger::from(Match::Any).operation, Operation::Refund);
    }
}
