//! The refund journal against the sandbox, over real loopback HTTP, on both backends.
//!
//! Every scenario of [`scenarios`] runs twice: as `sqlite::<scenario>` on a SQLite file of its
//! own, and as `postgres::<scenario>` in a PostgreSQL schema of its own in the database named
//! by `REFUNDS_JOURNAL_PG_URL`. Without that variable the PostgreSQL half fails, saying how to
//! start a throwaway server (`eval "$(scripts/pg-throwaway start)"`).
//!
//! The scenarios of [`failures`] (a provider's text with a NUL, an entry that cannot be
//! written, a transaction the database threw away, what a database error says about the money),
//! of [`reads`] (settling by reading the provider's record: pending refunds, unknown outcomes
//! found or attributed, the per-order lease, migrations 3, 4 and 6) and of [`service`] (`refund_or_wait`,
//! a manual resolution with the refund's id and amount, a lock held past the statement limit)
//! run the same way; [`service`]'s PostgreSQL-only tests (a server that is not there, one that
//! stops and comes back) run once, in `postgres_stopped`.
//!
//! The crash and replica tests run real child processes: this binary again, running only
//! [`child`]'s entry point, with the sandbox in the parent.

mod child;
mod failures;
mod group_commit;
mod harness;
mod reads;
mod scenarios;
mod service;
mod statements;

/// `mod $backend { #[tokio::test] fn <scenario>() }` for every scenario.
macro_rules! suite {
    ($backend:ident => $kind:expr; $($scenario:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    crate::scenarios::$scenario($kind).await;
                }
            )+
        }
    };
}

macro_rules! both_backends {
    ($($scenario:ident),+ $(,)?) => {
        suite!(sqlite => crate::harness::Backend::Sqlite; $($scenario),+);
        suite!(postgres => crate::harness::Backend::Postgres; $($scenario),+);
    };
}

both_backends!(
    refund_records_intent_answer_and_outcome,
    settled_reference_is_answered_without_io,
    another_request_under_a_reference_is_refused_before_io,
    live_lease_elsewhere_is_in_progress,
    a_caller_that_stops_waiting_still_gets_the_answer_recorded,
    afterpay_resolved_not_applied_is_sent_again,
    deduplicating_providers_retry_an_unknown_outcome_to_one_refund,
    exhausted_retries_are_settled_by_reconcile,
    not_applied_is_recorded_and_sent_again,
    pending_refunds_move_to_their_final_status,
    concurrent_opens_migrate_once,
    crash_deduplicating_providers_end_in_one_refund,
    replicas_send_each_refund_once,
    provider_text_with_nul_is_recorded,
    reconcile_settles_every_entry_it_can,
    a_failed_transaction_leaves_the_journal_usable,
    database_errors_say_what_was_sent,
    rows_written_before_escaping_read_back_exactly,
    pending_refunds_are_settled_by_reading,
    a_notification_reads_back_the_notifying_providers_refunds,
    a_reconciler_round_bounds_each_entry_and_backs_off_a_failing_provider,
    moyasar_unknown_is_settled_by_reading,
    afterpay_lost_answer_is_attributed_by_reading,
    afterpay_refund_never_made_is_sent_again_after_the_settling_delay,
    afterpay_unattributable_refunds_are_left_for_a_person,
    a_second_afterpay_refund_on_an_unresolved_order_is_refused_before_io,
    concurrent_afterpay_refunds_on_one_order_go_one_at_a_time,
    crash_afterpay_is_attributed_by_reading,
    migration_3_brings_earlier_rows_under_the_order_lease,
    migration_4_keeps_the_order_lease_the_listing_and_the_history,
    migrations_6_and_7_keep_every_row_and_check_the_same_values,
    refund_or_wait_answers_the_other_callers_outcome,
    a_manual_resolution_records_the_refund_id_and_amount,
    a_lock_held_past_the_statement_limit_fails_the_call_and_names_the_database,
);

/// PostgreSQL out of reach: a port where nothing listens (no server needed), a server that
/// stops and comes back, and one that restarts between calls (`REFUNDS_JOURNAL_PG_URL`).
mod postgres_stopped {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_that_is_not_there_fails_open_fast_and_says_so() {
        crate::service::postgres_that_is_not_there_fails_open_fast_and_says_so().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_that_stops_fails_calls_fast_and_the_journal_recovers() {
        crate::service::postgres_that_stops_fails_calls_fast_and_the_journal_recovers().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_restarted_between_calls_costs_no_write() {
        crate::service::postgres_restarted_between_calls_costs_no_write().await;
    }
}

/// The in-memory SQLite journal (for tests and demos) works like the file.
#[tokio::test]
async fn sqlite_in_memory_journal() {
    use refunds::Provider;
    let env = harness::Env::start().await;
    let journal = refunds_journal::Journal::open_with(
        refunds_journal::Database::sqlite_in_memory(),
        harness::config(),
    )
    .await
    .unwrap();
    env.seed(Provider::Moyasar, "ORD-MEM");
    let req = harness::request(Provider::Moyasar, "ORD-MEM", "10.00", "RF-MEM");
    let refunds = env.refunds();
    assert_eq!(
        journal.refund(&refunds, &req).await.unwrap().label(),
        "applied"
    );
    assert_eq!(
        journal.refund(&refunds, &req).await.unwrap().label(),
        "replayed"
    );
    assert_eq!(journal.backend(), "sqlite");
}
