//! A reconciler a service runs beside its refunds: [`Journal::run_reconciler`] calls
//! [`Journal::reconcile_round`] on a schedule until told to stop.
//!
//! A round does [`Journal::reconcile`]'s work (unresolved entries settled by reading or re-sent,
//! pending refunds read to their final status) with what a long-running task needs on top:
//!
//! - **concurrent**: up to [`ReconcilerConfig::concurrency`] entries at once, so one slow
//!   provider does not hold up the others' entries;
//! - **a deadline per entry** ([`ReconcilerConfig::entry_deadline`]): an entry whose reads or
//!   re-sends take longer is reported failed ([`JournalError::Interrupted`]: a re-send may have
//!   left, its lease lapses and the next round settles it) and the round goes on;
//! - **backing off a provider that fails**: after a failed entry, that provider's entries are
//!   deferred for [`ReconcilerConfig::backoff`], doubling with each round it fails again up to
//!   [`ReconcilerConfig::max_backoff`], and reset by a round in which its entries succeed;
//! - **never stopping at one bad entry**: every failure is reported and the rest go on; a round
//!   that cannot even list the entries (the database is down) is logged and the next one tries.
//!
//! # Schedule
//!
//! Run one reconciler per service (several are safe: the entries' leases and versions keep two
//! from acting on one entry, they only duplicate reads). A round every minute
//! ([`ReconcilerConfig::default`]) settles a lost answer within about a minute plus the
//! provider's read lag; AfterPay's unknowns wait for
//! [`JournalConfig::settling_delay`](crate::JournalConfig::settling_delay) after their attempt
//! before a read may call them not applied. Run a round at start-up too, as `run_reconciler` does.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use refunds::{Provider, Refunds};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::entry::Entry;
use crate::error::JournalError;
use crate::journal::{Journal, ReconcileReport, Reconciliation, failure, listed_entry};

/// How [`Journal::run_reconciler`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// The time from the start of one round to the start of the next (default 60 s).
    pub every: Duration,
    /// Entries worked on at once (default 8).
    pub concurrency: usize,
    /// The longest one entry may take, its reads and re-sends included (default 30 s).
    pub entry_deadline: Duration,
    /// How long a provider whose entry failed is left alone (default 30 s), doubling each
    /// round it fails again.
    pub backoff: Duration,
    /// The longest a provider is left alone (default 10 min).
    pub max_backoff: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        ReconcilerConfig {
            every: Duration::from_secs(60),
            concurrency: 8,
            entry_deadline: Duration::from_secs(30),
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// The providers a reconciler leaves alone for a while, and until when.
#[derive(Debug, Clone, Default)]
pub struct ProviderBackoff {
    /// Per provider: until when it is deferred, and the wait it was given.
    deferred: BTreeMap<Provider, (Instant, Duration)>,
}

impl ProviderBackoff {
    /// Whether `provider`'s entries wait at `now`.
    pub fn is_deferred(&self, provider: Provider, now: Instant) -> bool {
        self.deferred
            .get(&provider)
            .is_some_and(|(until, _)| *until > now)
    }

    /// After a round: a provider with a failed entry is deferred (the last wait doubled, within
    /// `config`), one whose entries all succeeded is no longer.
    fn after_round(
        &mut self,
        failed: &BTreeSet<Provider>,
        succeeded: &BTreeSet<Provider>,
        now: Instant,
        config: &ReconcilerConfig,
    ) {
        for provider in failed {
            let wait = match self.deferred.get(provider) {
                Some((_, last)) => last.saturating_mul(2).min(config.max_backoff),
                None => config.backoff.min(config.max_backoff),
            };
            self.deferred.insert(*provider, (now + wait, wait));
        }
        for provider in succeeded.difference(failed) {
            self.deferred.remove(provider);
        }
    }
}

/// What one entry's task did (boxed: a reconciliation holds a whole entry).
enum Done {
    Acted(Box<Reconciliation>),
    Nothing,
}

impl Journal {
    /// One reconciler round (see the [module docs](crate::reconciler)): the unresolved and
    /// pending entries of the providers `backoff` does not defer, `config.concurrency` at a
    /// time, each within `config.entry_deadline`; then `backoff` is updated from what failed.
    /// The report lists what was done and what failed (in no particular order: entries run
    /// concurrently) and, in [`ReconcileReport::deferred`], the providers left alone. `Err` only
    /// when the entries cannot be listed.
    pub async fn reconcile_round(
        &self,
        refunds: &Refunds,
        config: &ReconcilerConfig,
        backoff: &mut ProviderBackoff,
    ) -> Result<ReconcileReport, JournalError> {
        let mut report = ReconcileReport::default();
        let started = Instant::now();
        let unresolved = self.store().unresolved_rows().await?;
        let pending = self.store().pending_rows().await?;
        let mut work: Vec<(Entry, bool)> = Vec::new();
        let mut deferred = BTreeSet::new();
        for (rows, is_unresolved) in [(unresolved, true), (pending, false)] {
            for listed in rows {
                let Some(entry) = listed_entry(listed, &mut report) else {
                    continue;
                };
                if !is_unresolved && !entry.provider.capabilities().record_read {
                    continue;
                }
                if backoff.is_deferred(entry.provider, started) {
                    deferred.insert(entry.provider);
                    continue;
                }
                work.push((entry, is_unresolved));
            }
        }
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (entry, is_unresolved) in work {
            let (journal, refunds, permits) = (self.clone(), refunds.clone(), permits.clone());
            let deadline = config.entry_deadline;
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let work = async {
                    if is_unresolved {
                        journal
                            .reconcile_unresolved(&refunds, &entry)
                            .await
                            .map(|done| Done::Acted(Box::new(done)))
                    } else {
                        journal.read_status(&refunds, &entry).await.map(|done| {
                            done.map_or(Done::Nothing, |done| Done::Acted(Box::new(done)))
                        })
                    }
                };
                let result = match tokio::time::timeout(deadline, work).await {
                    Ok(result) => result,
                    Err(_) => Err(JournalError::Interrupted(format!(
                        "the reconciler's deadline of {} ms per entry passed; the next round \
                         tries again",
                        deadline.as_millis()
                    ))),
                };
                (entry, result)
            });
        }
        let (mut failed, mut succeeded) = (BTreeSet::new(), BTreeSet::new());
        while let Some(joined) = tasks.join_next().await {
            let Ok((entry, result)) = joined else {
                // A panicking entry task: the entry stays as it was for the next round.
                tracing::error!("reconciler: an entry's task panicked; the others go on");
                continue;
            };
            match result {
                Ok(Done::Acted(done)) => {
                    succeeded.insert(entry.provider);
                    report.reconciled.push(*done);
                }
                Ok(Done::Nothing) => {
                    succeeded.insert(entry.provider);
                }
                Err(error) => {
                    failed.insert(entry.provider);
                    report.failed.push(failure(entry, error));
                }
            }
        }
        backoff.after_round(&failed, &succeeded, Instant::now(), config);
        report.deferred = deferred.into_iter().collect();
        Ok(report)
    }

    /// Runs [`Journal::reconcile_round`] at once and then every [`ReconcilerConfig::every`]
    /// until `shutdown` completes, logging each round's failures; a round that cannot list the
    /// entries is logged and the next one tries again. Spawn it beside the service:
    ///
    /// ```no_run
    /// # async fn run(journal: refunds_journal::Journal, refunds: refunds::Refunds) {
    /// use refunds_journal::ReconcilerConfig;
    ///
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let reconciler = tokio::spawn(async move {
    ///     let shutdown = async {
    ///         let _ = stopped.await;
    ///     };
    ///     journal
    ///         .run_reconciler(&refunds, ReconcilerConfig::default(), shutdown)
    ///         .await
    /// });
    /// // ... serve; on shutdown:
    /// let _ = stop.send(());
    /// let _ = reconciler.await;
    /// # }
    /// ```
    pub async fn run_reconciler(
        &self,
        refunds: &Refunds,
        config: ReconcilerConfig,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut backoff = ProviderBackoff::default();
        let rounds = async {
            loop {
                let started = tokio::time::Instant::now();
                match self.reconcile_round(refunds, &config, &mut backoff).await {
                    Ok(report) => {
                        for failure in &report.failed {
                            tracing::warn!(%failure, "reconciler: tried again next round");
                        }
                        tracing::info!(
                            reconciled = report.reconciled.len(),
                            failed = report.failed.len(),
                            deferred = report.deferred.len(),
                            "reconciler round"
                        );
                    }
                    Err(error) => {
                        tracing::error!(%error, "reconciler: the entries cannot be listed");
                    }
                }
                tokio::time::sleep_until(started + config.every).await;
            }
        };
        tokio::select! {
            () = rounds => {}
            () = shutdown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_provider_waits_longer_each_round_and_is_freed_by_success() {
        let config = ReconcilerConfig {
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(25),
            ..ReconcilerConfig::default()
        };
        let mut backoff = ProviderBackoff::default();
        let now = Instant::now();
        let moyasar = BTreeSet::from([Provider::Moyasar]);
        let none = BTreeSet::new();
        backoff.after_round(&moyasar, &none, now, &config);
        assert!(backoff.is_deferred(Provider::Moyasar, now + Duration::from_secs(9)));
        assert!(!backoff.is_deferred(Provider::Moyasar, now + Duration::from_secs(10)));
        assert!(!backoff.is_deferred(Provider::Optty, now));
        backoff.after_round(&moyasar, &none, now, &config);
        assert!(backoff.is_deferred(Provider::Moyasar, now + Duration::from_secs(19)));
        backoff.after_round(&moyasar, &none, now, &config);
        assert!(backoff.is_deferred(Provider::Moyasar, now + Duration::from_secs(24)));
        assert!(
            !backoff.is_deferred(Provider::Moyasar, now + Duration::from_secs(25)),
            "capped at max_backoff"
        );
        backoff.after_round(&none, &moyasar, now, &config);
        assert!(!backoff.is_deferred(Provider::Moyasar, now));
    }
}
