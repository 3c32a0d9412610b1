//! The child processes of the crash and replica tests: this test binary run again with
//! `child::entry --exact --ignored`, told its role and everything else through the
//! environment (the sandbox runs in the parent; the child gets its URLs).

use std::sync::Arc;
use std::time::Duration;

use refunds::RefundRequest;
use refunds_journal::{Journal, JournalConfig, JournaledRefund};

use crate::harness::{TestDb, Urls, config, config_with_lease};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of the crash and replica tests, which run it"]
async fn entry() {
    match std::env::var("JOURNAL_IT_ROLE").as_deref() {
        Ok("crash") => crash().await,
        Ok("replica") => replica().await,
        _ => eprintln!("child::entry runs only as a child of the crash and replica tests"),
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Records the intent and sends one refund; the parent kills this process while the provider
/// holds the request, so the answer is never recorded.
async fn crash() {
    let lease = Duration::from_millis(var("JOURNAL_IT_LEASE_MS").parse().unwrap());
    let journal = Journal::open_with(TestDb::database_from_env(), config_with_lease(lease))
        .await
        .expect("open the journal");
    let request: RefundRequest = serde_json::from_str(&var("JOURNAL_IT_REQUEST")).unwrap();
    let result = journal.refund(&Urls::from_env().refunds(), &request).await;
    // Only reached if the parent did not kill us in time.
    println!("JOURNAL-IT finished {result:?}");
}

/// One replica of a service: its own pool and its own `Refunds`, sending every request (16 at a
/// time), waiting out `InProgress` answers, then printing `JOURNAL-IT <reference> <label>
/// <waits>` per request.
async fn replica() {
    let journal = Journal::open_with(
        TestDb::database_from_env().max_connections(8),
        JournalConfig {
            instance: var("JOURNAL_IT_INSTANCE"),
            ..config()
        },
    )
    .await
    .expect("open the journal");
    let refunds = Urls::from_env().refunds();
    let requests: Vec<RefundRequest> = serde_json::from_str(&var("JOURNAL_IT_REQUESTS")).unwrap();
    // Start together with the other replica.
    let start_at: u128 = var("JOURNAL_IT_START_AT_MS").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if start_at > now {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(start_at - now).unwrap(),
        ))
        .await;
    }

    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let (journal, refunds, permits) = (journal.clone(), refunds.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let mut waits = 0u32;
            loop {
                let result = journal
                    .refund(&refunds, &request)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", request.merchant_reference));
                if let JournaledRefund::InProgress { .. } = result {
                    waits += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                return format!("{} {} {waits}", request.merchant_reference, result.label());
            }
        });
    }
    let mut lines = Vec::new();
    while let Some(line) = tasks.join_next().await {
        lines.push(line.expect("a refund task"));
    }
    for line in lines {
        println!("JOURNAL-IT {line}");
    }
    journal.close().await;
}
