//! Refunds through a durable journal (SQLite in a temporary file) against the loopback
//! sandbox: one journaled refund per provider, a repeat answered from the journal, and
//! reconciliation reading the providers' records: an AfterPay refund whose answer was lost
//! attributed by reading its order, a Moyasar one found in its order, and an AfterPay one that
//! cannot be attributed (a refund made outside the journal) left for a person and resolved by
//! hand.
//!
//! ```text
//! cargo run -p refunds-journal --example journaled_demo
//! ```

use std::time::Duration;

use refunds::{MerchantReference, Money, Outcome, Provider, RefundRequest, Refunds, RetryPolicy};
use refunds_journal::{
    Database, Entry, EntryState, Journal, JournalConfig, ReconcileReport, Reconciliation,
};
use rust_decimal::Decimal;
use sandbox::{Fault, Match, Sandbox, SandboxConfig};
use test_support::ClientSettings;

type Error = Box<dyn std::error::Error>;

/// The entries a reconcile run could not act on (none in this demo), each with its error and
/// what it means for the money; the next run tries them again.
fn failures(report: &ReconcileReport) {
    for failure in &report.failed {
        println!(
            "   reconcile(): FAILED, tried again next run ({}): {failure}",
            failure.error.outcome()
        );
    }
}

/// A refund of `amount` on `order` in the provider's test currency, with what each provider
/// needs on top (AfterPay: the capture number and a line item carrying the amount; OpenApp:
/// its own order id): the workspace's test fixtures (`test-support/`).
fn request(
    provider: Provider,
    order: &str,
    amount: &str,
    reference: &str,
) -> Result<RefundRequest, Error> {
    let amount = Money::parse(amount, test_support::currency(provider))?;
    let request = RefundRequest::new(provider, order, amount, MerchantReference::new(reference)?);
    Ok(test_support::with_provider_fields(request))
}

/// A facade client of every provider of the sandbox, with its demo credentials (see the
/// facade's `demo` example for the configuration written out).
fn client(sandbox: &Sandbox) -> Result<Refunds, Error> {
    let settings = ClientSettings {
        timeout: refunds::config::DEFAULT_TIMEOUT,
        ..ClientSettings::default()
    };
    Ok(test_support::builder(&test_support::base_urls(sandbox), &settings).build()?)
}

/// `afterpay  RF-afterpay-2  unknown  attempts=1  http=504 server_error`
fn line(entry: &Entry) -> String {
    let mut text = format!(
        "{:<9} {:<14} {:<8} attempts={}",
        entry.provider.as_str(),
        entry.merchant_reference.as_str(),
        entry.state.as_str(),
        entry.attempts
    );
    if entry.state == EntryState::Applied {
        if let Some(amount) = entry.amount {
            text.push_str(&format!("  {amount}"));
        }
        if let Some(status) = entry.refund_status {
            text.push_str(&format!("  {status:?}"));
        }
        if let Some(id) = &entry.provider_refund_id {
            text.push_str(&format!("  id={id}"));
        }
    } else {
        if let Some(status) = entry.http_status {
            text.push_str(&format!("  http={status}"));
        }
        if let Some(kind) = &entry.error_kind {
            text.push_str(&format!("  {kind}"));
        }
    }
    text
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// What a reconcile run did, one line per entry, and what it could not do.
fn reconciled(report: &ReconcileReport) {
    for done in &report.reconciled {
        let (action, entry) = match done {
            Reconciliation::Resent(result) => ("re-sent", result.entry()),
            Reconciliation::SettledByReading { entry, .. } => ("settled by reading", entry),
            Reconciliation::StatusRead { entry } => ("final status read", entry),
            Reconciliation::FailedAfterApplied { entry, .. } => ("FAILED after applied", entry),
            Reconciliation::LeftUnresolved { entry, reason } => {
                println!(
                    "   reconcile(): left unresolved, nothing sent: {}",
                    line(entry)
                );
                for (i, text) in wrap(reason, 90).iter().enumerate() {
                    let label = if i == 0 { "reason:" } else { "" };
                    println!("      {label:<8}{text}");
                }
                continue;
            }
        };
        println!("   reconcile(): {action} -> {}", line(entry));
    }
    failures(report);
}

/// The unresolved entries with their reasons.
async fn unresolved(journal: &Journal) -> Result<(), Error> {
    println!("   unresolved():");
    for entry in journal.unresolved().await? {
        println!("      {}", line(&entry));
        let reason = entry.unresolved_reason.as_deref().unwrap_or("-");
        for (i, text) in wrap(reason, 90).iter().enumerate() {
            let label = if i == 0 { "reason:" } else { "" };
            println!("      {label:<8}{text}");
        }
    }
    Ok(())
}

async fn history(journal: &Journal, entry: &Entry) -> Result<(), Error> {
    for event in journal
        .history(entry.provider, &entry.merchant_reference)
        .await?
    {
        let mut text = event.to_string();
        if text.len() > 120 {
            text.truncate(117);
            text.push_str("...");
        }
        println!("      {text}");
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // AfterPay documents no duplicate key: the sandbox does not replay a repeated one either.
    let sandbox = Sandbox::start(SandboxConfig {
        afterpay: sandbox::afterpay::Settings {
            replay_transaction_reference: false,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    for provider in Provider::ALL {
        let seed = test_support::order_seed(provider, "ORD-1", Decimal::new(100, 0));
        test_support::handle(&sandbox, provider).seed_order(seed);
    }
    let seed = test_support::order_seed(Provider::AfterPay, "ORD-2", Decimal::new(100, 0));
    test_support::handle(&sandbox, Provider::AfterPay).seed_order(seed);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("refunds-journal.db");
    let journal = Journal::open_with(
        Database::sqlite(&path),
        JournalConfig {
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(5),
                ..RetryPolicy::default()
            },
            ..JournalConfig::default()
        },
    )
    .await?;
    let refunds = client(&sandbox)?;
    println!("Refund journal: SQLite at {}", path.display());

    println!("\n1. One journaled refund per provider (intent recorded before each request leaves)");
    for provider in Provider::ALL {
        let req = request(provider, "ORD-1", "10.00", &format!("RF-{provider}-1"))?;
        let result = journal.refund(&refunds, &req).await?;
        println!("   {:<10} {}", result.label(), line(result.entry()));
    }

    println!(
        "\n2. The same request again, from a new client (as after a restart): nothing is sent"
    );
    let req = request(Provider::AfterPay, "ORD-1", "10.00", "RF-afterpay-1")?;
    let before = sandbox.afterpay().requests_received();
    let again = journal.refund(&client(&sandbox)?, &req).await?;
    println!(
        "   {:<10} {}  (requests to AfterPay: {before} -> {})",
        again.label(),
        line(again.entry()),
        sandbox.afterpay().requests_received()
    );

    println!("\n3. AfterPay refunds, then a gateway answers 504 (injected fault): outcome unknown");
    sandbox
        .afterpay()
        .inject(Fault::StatusAfterCommit(504), Match::Any.once());
    let req = request(Provider::AfterPay, "ORD-1", "15.00", "RF-afterpay-2")?;
    let result = journal.refund(&refunds, &req).await?;
    println!("   {:<10} {}", result.label(), line(result.entry()));
    unresolved(&journal).await?;
    println!("   reconcile() reads order ORD-1 at AfterPay and attributes the refund:");
    let report = journal.reconcile(&refunds).await?;
    reconciled(&report);
    let repeat = journal.refund(&client(&sandbox)?, &req).await?;
    println!(
        "   the same request again: {} (AfterPay refunds for RF-afterpay-2: {})",
        repeat.label(),
        sandbox
            .afterpay()
            .refunds_with_reference("RF-afterpay-2")
            .len()
    );
    println!("   history:");
    history(&journal, repeat.entry()).await?;

    println!(
        "\n4. Moyasar: the connection drops after Moyasar refunded, and the call does not retry"
    );
    sandbox
        .moyasar()
        .inject(Fault::DropAfterCommit, Match::Any.once());
    let req = request(Provider::Moyasar, "ORD-1", "20.00", "RF-moyasar-2")?;
    let no_retry = Journal::open_with(
        Database::sqlite(&path),
        JournalConfig {
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            ..JournalConfig::default()
        },
    )
    .await?;
    let result = no_retry.refund(&refunds, &req).await?;
    println!("   {:<10} {}", result.label(), line(result.entry()));
    println!("   reconcile() reads the order at Moyasar first:");
    let report = journal.reconcile(&refunds).await?;
    reconciled(&report);
    let key = req.merchant_reference.moyasar_transaction_id().to_string();
    println!(
        "   Moyasar refunds for RF-moyasar-2: {}; unresolved(): {}",
        sandbox.moyasar().refunds_with_reference(&key).len(),
        journal.unresolved().await?.len()
    );
    println!("   history:");
    history(&journal, result.entry()).await?;

    println!(
        "\n5. AfterPay: an answer lost, and a refund made outside the journal on the same order"
    );
    sandbox
        .afterpay()
        .inject(Fault::DropAfterCommit, Match::Any.once());
    let req = request(Provider::AfterPay, "ORD-2", "10.00", "RF-afterpay-3")?;
    let result = journal.refund(&refunds, &req).await?;
    println!("   {:<10} {}", result.label(), line(result.entry()));
    let outside = request(Provider::AfterPay, "ORD-2", "10.00", "RF-elsewhere")?;
    refunds.refund(&outside).await?;
    println!("   (RF-elsewhere refunded on ORD-2 without the journal)");
    let report = journal.reconcile(&refunds).await?;
    reconciled(&report);
    let entry = journal
        .resolve_manually(
            Provider::AfterPay,
            &req.merchant_reference,
            Outcome::Applied,
            "ops/alice: the first refund on ORD-2 at Riverty is RF-afterpay-3",
        )
        .await?;
    println!("   resolve_manually(applied) -> {}", line(&entry));
    println!("   history:");
    history(&journal, &entry).await?;

    println!("\n6. Optty answers PENDING; later Optty settles the refund; reconcile() reads it");
    let seed = test_support::order_seed(Provider::Optty, "ORD-3", Decimal::new(100, 0))
        .refund_status(sandbox::RefundStatus::Pending);
    sandbox.optty().seed_order(seed);
    let req = request(Provider::Optty, "ORD-3", "10.00", "RF-optty-3")?;
    let result = journal.refund(&refunds, &req).await?;
    println!("   {:<10} {}", result.label(), line(result.entry()));
    let recorded = sandbox
        .optty()
        .refunds_with_reference(req.merchant_reference.as_str());
    for refund in &recorded {
        sandbox
            .optty()
            .settle("ORD-3", &refund.id, sandbox::RefundStatus::Succeeded)?;
    }
    println!("   (Optty settles it: SUCCESSFUL in Transaction Details)");
    let report = journal.reconcile(&refunds).await?;
    reconciled(&report);

    println!(
        "\npending(): {} refund(s) awaiting a final provider status",
        journal.pending().await?.len()
    );
    journal.close().await;
    sandbox.shutdown().await;
    Ok(())
}
