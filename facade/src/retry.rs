//! The retry executor: [`Refunds::refund_with_retries`] sends the same request (the same
//! merchant reference, so the same duplicate key) until it is settled, definitively rejected,
//! or the budget of a [`RetryPolicy`] is spent, and says which in a [`Settlement`].
//!
//! The decision to try again is [`RetryPolicy::decide`], a pure function of the policy, the
//! attempt number, the error and a jitter draw, tested apart from any I/O.

use std::time::Duration;

use tracing::Instrument;

use crate::client::Refunds;
use crate::error::{Outcome, RefundError};
use crate::model::{Refund, RefundRequest, RefundStatus};

/// How hard [`Refunds::refund_with_retries`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5).
    pub max_attempts: u32,
    /// The back-off before the second attempt (default 200 ms); it doubles each attempt.
    pub initial_backoff: Duration,
    /// The longest back-off (default 10 s).
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured (default 60 s): a provider that asks for longer ends
    /// the retries with the error it gave.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the same request again after this wait.
    RetryAfter(Duration),
    /// Stop: the error is the result.
    Stop,
}

impl RetryPolicy {
    /// Whether to send the same request again after attempt number `attempt` (1-based) failed
    /// with `error`, and after what wait. Pure: `jitter` (0..=1000, drawn at random by the
    /// executor) spreads the wait between half and all of the exponential back-off, so that
    /// many clients retrying together do not arrive together.
    ///
    /// - Stop when [`RefundError::is_retryable`] says a resend is unsafe or pointless (an
    ///   unknown outcome on AfterPay is never re-sent), or the attempts are spent.
    /// - Wait at least what the provider asked (`Retry-After`), and stop if it asks for more
    ///   than [`max_retry_after`](RetryPolicy::max_retry_after).
    pub fn decide(&self, attempt: u32, error: &RefundError, jitter: u32) -> Decision {
        self.decide_within(attempt, error, jitter, Duration::MAX)
    }

    /// [`decide`](RetryPolicy::decide) for a call with `remaining` time before its deadline
    /// ([`RefundsBuilder::deadline`](crate::RefundsBuilder::deadline)): stop rather than wait
    /// past it, since an attempt started then could not be answered in time.
    pub fn decide_within(
        &self,
        attempt: u32,
        error: &RefundError,
        jitter: u32,
        remaining: Duration,
    ) -> Decision {
        if !error.is_retryable() || attempt >= self.max_attempts {
            return Decision::Stop;
        }
        let exponential = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let jittered = exponential / 2 + exponential / 2 * jitter.min(1000) / 1000;
        let wait = match error.retry_after() {
            Some(asked) if asked > self.max_retry_after => return Decision::Stop,
            Some(asked) => jittered.max(asked),
            None => jittered,
        };
        if wait >= remaining {
            return Decision::Stop;
        }
        Decision::RetryAfter(wait)
    }
}

/// How a refund ended under [`Refunds::refund_with_retries`].
#[derive(Debug, Clone)]
pub enum Settlement {
    /// The refund exists at the provider.
    Applied {
        /// The refund. When `already_applied`, it is built from the request (the provider only
        /// said that a refund with this merchant reference exists): status
        /// [`RefundStatus::Pending`] (not known to be final), `provider_refund_id` the
        /// reference where it is the provider's id (OpenApp `caseId`), `raw` empty.
        refund: Refund,
        /// The provider answered that a refund with this merchant reference already exists
        /// (OpenApp 409 after an ambiguous attempt, Optty's duplicate reference), rather than
        /// with the refund itself.
        already_applied: bool,
        /// Attempts sent.
        attempts: u32,
    },
    /// Definitively not applied: the provider refused (or the request was invalid) and no
    /// earlier attempt was ambiguous.
    Rejected {
        /// Why; its outcome is [`Outcome::NotApplied`].
        error: RefundError,
        /// Attempts sent.
        attempts: u32,
    },
    /// The outcome is still unknown: reconcile this merchant reference with the provider
    /// (read the order's refunds) before refunding again. For AfterPay this follows the first
    /// unknown outcome, since AfterPay has no duplicate key to make a resend safe.
    Unresolved {
        /// The last error.
        error: RefundError,
        /// Attempts sent.
        attempts: u32,
    },
}

impl Settlement {
    /// What this settlement says about the money.
    pub fn outcome(&self) -> Outcome {
        match self {
            Settlement::Applied { .. } => Outcome::Applied,
            Settlement::Rejected { .. } => Outcome::NotApplied,
            Settlement::Unresolved { .. } => Outcome::Unknown,
        }
    }

    /// Attempts sent.
    pub fn attempts(&self) -> u32 {
        match self {
            Settlement::Applied { attempts, .. }
            | Settlement::Rejected { attempts, .. }
            | Settlement::Unresolved { attempts, .. } => *attempts,
        }
    }
}

impl Refunds {
    /// Refunds `request` with bounded retries of the *same* request, so every attempt carries
    /// the same duplicate key, and ends in a [`Settlement`]: applied (including "already
    /// applied by an earlier attempt"), rejected, or unresolved.
    ///
    /// Waits follow [`RetryPolicy::decide`]: exponential back-off with jitter, `Retry-After`
    /// honoured, [`ErrorKind::InProgress`](crate::ErrorKind::InProgress) waited out. It never re-sends when the outcome is
    /// unknown and the provider has no duplicate key (AfterPay): that refund is
    /// [`Settlement::Unresolved`] at once. A refusal after an ambiguous attempt is also
    /// unresolved, since the ambiguous attempt may have been applied.
    ///
    /// ```
    /// use refunds::{MerchantReference, Money, Provider, RefundRequest, Refunds, RetryPolicy, Settlement};
    /// use refunds::MoyasarConfig;
    /// use sandbox::{Fault, Match, OrderSeed, Sandbox, SandboxConfig, credentials};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    /// sandbox.moyasar().seed_order(OrderSeed::from_minor("ord-1", "SAR", 10_000));
    /// // A gateway times out after Moyasar committed the refund.
    /// sandbox.moyasar().inject(Fault::StatusAfterCommit(504), Match::Any.once());
    ///
    /// let refunds = Refunds::builder()
    ///     .moyasar(MoyasarConfig::new(sandbox.moyasar().base_url(), credentials::MOYASAR_SECRET_KEY))
    ///     .build()?;
    /// let request = RefundRequest::new(
    ///     Provider::Moyasar,
    ///     "ord-1",
    ///     Money::parse("26.00", "SAR")?,
    ///     MerchantReference::new("RET-1")?,
    /// );
    /// let policy = RetryPolicy { initial_backoff: std::time::Duration::from_millis(1), ..RetryPolicy::default() };
    /// let settlement = refunds.refund_with_retries(&request, &policy).await;
    /// assert!(matches!(settlement, Settlement::Applied { attempts: 2, .. }));
    /// assert_eq!(sandbox.moyasar().refund_count(), 1); // the retry was deduplicated
    /// sandbox.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn refund_with_retries(
        &self,
        request: &RefundRequest,
        policy: &RetryPolicy,
    ) -> Settlement {
        let call = crate::client::call_span("refund_with_retries", request);
        let started = std::time::Instant::now();
        let settlement = self
            .settle_with_retries(request, policy)
            .instrument(call.clone())
            .await;
        call.record("attempts", settlement.attempts());
        crate::client::record_result(
            &call,
            started,
            match &settlement {
                Settlement::Applied { .. } => Ok(()),
                Settlement::Rejected { error, .. } | Settlement::Unresolved { error, .. } => {
                    Err(error)
                }
            },
        );
        settlement
    }

    async fn settle_with_retries(
        &self,
        request: &RefundRequest,
        policy: &RetryPolicy,
    ) -> Settlement {
        let mut ambiguous = false;
        let mut attempt = 0;
        let deadline = std::time::Instant::now() + self.deadline();
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let error = match self
                .within(remaining, request, self.attempt(request, attempt))
                .await
            {
                Ok(refund) => {
                    return Settlement::Applied {
                        refund,
                        already_applied: false,
                        attempts: attempt,
                    };
                }
                Err(error) => error,
            };
            match error.outcome() {
                Outcome::Applied => {
                    return Settlement::Applied {
                        refund: existing_refund(request),
                        already_applied: true,
                        attempts: attempt,
                    };
                }
                Outcome::Unknown => ambiguous = true,
                Outcome::NotApplied => {}
            }
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match policy.decide_within(attempt, &error, fastrand::u32(0..=1000), remaining) {
                Decision::RetryAfter(wait) => {
                    tracing::info!(
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "retrying with the same merchant reference"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::Stop if ambiguous => {
                    tracing::warn!("refund unresolved: reconcile before refunding again");
                    return Settlement::Unresolved {
                        error: error.with_outcome(Outcome::Unknown),
                        attempts: attempt,
                    };
                }
                Decision::Stop => {
                    return Settlement::Rejected {
                        error,
                        attempts: attempt,
                    };
                }
            }
        }
    }
}

/// The refund a provider says exists under the request's merchant reference.
fn existing_refund(request: &RefundRequest) -> Refund {
    Refund {
        provider: request.provider,
        provider_refund_id: request
            .provider
            .capabilities()
            .refund_id_of(&request.merchant_reference),
        status: RefundStatus::Pending,
        amount: request.amount,
        refunded_total: None,
        captured_total: None,
        raw: crate::answer::RawAnswer::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;
    use crate::error::ErrorKind;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(5),
        }
    }

    fn error(kind: ErrorKind, provider: Provider) -> RefundError {
        RefundError::new(kind)
            .with_provider(provider)
            .with_deduplication(provider.capabilities().idempotent_retries)
    }

    #[test]
    fn no_wait_reaches_past_the_calls_deadline() {
        let p = policy();
        let e = error(ErrorKind::ServerError, Provider::Moyasar);
        let within = |remaining| p.decide_within(1, &e, 1000, remaining);
        assert_eq!(
            within(Duration::from_millis(101)),
            Decision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(within(Duration::from_millis(100)), Decision::Stop);
        assert_eq!(within(Duration::ZERO), Decision::Stop);
        let asked =
            error(ErrorKind::Transient, Provider::Optty).with_retry_after(Duration::from_secs(2));
        assert_eq!(
            p.decide_within(1, &asked, 0, Duration::from_secs(1)),
            Decision::Stop,
            "a Retry-After beyond the deadline ends the call"
        );
        assert_eq!(p.decide(1, &e, 1000), within(Duration::MAX));
    }

    #[test]
    fn backs_off_exponentially_with_jitter_up_to_the_cap() {
        let p = policy();
        let e = error(ErrorKind::ServerError, Provider::Moyasar);
        let wait = |attempt, jitter| p.decide(attempt, &e, jitter);
        assert_eq!(
            wait(1, 1000),
            Decision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(wait(1, 0), Decision::RetryAfter(Duration::from_millis(50)));
        assert_eq!(
            wait(2, 1000),
            Decision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(
            wait(3, 1000),
            Decision::RetryAfter(Duration::from_millis(250))
        );
        assert_eq!(
            wait(3, 500),
            Decision::RetryAfter(Duration::from_micros(187_500))
        );
        assert_eq!(wait(4, 1000), Decision::Stop, "the budget is four attempts");
    }

    #[test]
    fn unknown_outcomes_are_retried_only_where_the_provider_deduplicates() {
        let p = policy();
        for kind in [
            ErrorKind::ServerError,
            ErrorKind::Timeout,
            ErrorKind::Protocol,
            ErrorKind::InProgress,
        ] {
            for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
                assert!(
                    matches!(
                        p.decide(1, &error(kind.clone(), provider), 0),
                        Decision::RetryAfter(_)
                    ),
                    "{kind:?} {provider}"
                );
            }
            assert_eq!(
                p.decide(1, &error(kind, Provider::AfterPay), 0),
                Decision::Stop
            );
        }
    }

    #[test]
    fn not_applied_errors_are_retried_only_when_temporary() {
        let p = policy();
        assert!(matches!(
            p.decide(1, &error(ErrorKind::Transient, Provider::AfterPay), 0),
            Decision::RetryAfter(_)
        ));
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::OrderNotFound,
            ErrorKind::ExceedsRefundable { limit: None },
            ErrorKind::Duplicate,
        ] {
            assert_eq!(
                p.decide(1, &error(kind, Provider::Optty), 1000),
                Decision::Stop
            );
        }
        let futile = error(ErrorKind::Protocol, Provider::Moyasar).with_retry_futile();
        assert_eq!(p.decide(1, &futile, 0), Decision::Stop);
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_wait_stops() {
        let p = policy();
        let asked = |wait| error(ErrorKind::Transient, Provider::Optty).with_retry_after(wait);
        assert_eq!(
            p.decide(1, &asked(Duration::from_secs(2)), 1000),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            p.decide(1, &asked(Duration::ZERO), 1000),
            Decision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            p.decide(1, &asked(Duration::from_secs(6)), 0),
            Decision::Stop
        );
    }
}
