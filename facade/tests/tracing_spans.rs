//! Tracing: a span per refund call and per attempt, with provider, order id, merchant
//! reference, attempt number, HTTP status, latency and outcome, and never a secret or a body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use refunds::{
    MerchantReference, Money, MoyasarConfig, Provider, RefundRequest, Refunds, RetryPolicy,
};
use sandbox::{Fault, Match, OrderSeed, Sandbox, SandboxConfig, credentials};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

type Fields = BTreeMap<String, String>;

/// A span: its id, name and fields as finally recorded.
type SpanRecord = (u64, &'static str, Fields);

/// Every span opened, in order.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<SpanRecord>>>);

struct FieldsOf<'a>(&'a mut Fields);

impl Visit for FieldsOf<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut FieldsOf(&mut fields));
        self.0
            .lock()
            .unwrap()
            .push((id.into_u64(), attrs.metadata().name(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, _, fields)) = spans.iter_mut().rev().find(|(i, _, _)| *i == id.into_u64()) {
            values.record(&mut FieldsOf(fields));
        }
    }
}

impl Captured {
    fn spans(&self, name: &str) -> Vec<Fields> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n, _)| *n == name)
            .map(|(_, _, f)| f.clone())
            .collect()
    }
}

#[tokio::test]
async fn refund_calls_and_attempts_are_spans_with_their_fields() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(captured.clone()));

    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox
        .moyasar()
        .seed_order(OrderSeed::from_minor("ord-trace", "SAR", 10_000));
    sandbox
        .moyasar()
        .inject(Fault::StatusAfterCommit(504), Match::Any.once());
    let refunds = Refunds::builder()
        .moyasar(MoyasarConfig::new(
            sandbox.moyasar().base_url(),
            credentials::MOYASAR_SECRET_KEY,
        ))
        .build()
        .unwrap();
    let request = RefundRequest::new(
        Provider::Moyasar,
        "ord-trace",
        Money::parse("12.00", "SAR").unwrap(),
        MerchantReference::new("RF-TRACE-1").unwrap(),
    );
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let settlement = refunds.refund_with_retries(&request, &policy).await;
    assert_eq!(settlement.attempts(), 2);
    // A repeat is answered from memory: its attempt says so.
    refunds.refund(&request).await.unwrap();
    sandbox.shutdown().await;

    let calls = captured.spans("refund_with_retries");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["provider"], "moyasar");
    assert_eq!(call["order_id"], "ord-trace");
    assert_eq!(call["merchant_reference"], "RF-TRACE-1");
    assert_eq!(call["attempts"], "2");
    assert_eq!(call["outcome"], "applied");
    assert!(call.contains_key("latency_ms"));

    let attempts = captured.spans("refund.attempt");
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_str(),
                a.get("http_status").map(String::as_str),
                a["outcome"].as_str(),
                a["answered_by"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("1", Some("504"), "outcome unknown", "wire"),
            ("2", Some("200"), "applied", "wire"),
            ("1", None, "applied", "replay"),
        ]
    );
    for attempt in &attempts {
        assert_eq!(attempt["merchant_reference"], "RF-TRACE-1");
        assert!(attempt["latency_ms"].parse::<u64>().is_ok());
    }
    let single = captured.spans("refund");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0]["outcome"], "applied");

    // Nothing secret, nothing from a body.
    let all = format!("{:?}", captured.0.lock().unwrap());
    for secret in [credentials::MOYASAR_SECRET_KEY, "Gateway", "transactions"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
}
