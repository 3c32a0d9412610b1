//! Encode + decode per refund, per provider, pure (no I/O): the facade's wire body of a request
//! serialized to bytes, plus the facade's mapping of the provider's documented 200 answer
//! (`specs/<provider>/examples/refund.200*.json`) into a `Refund`. Target: at most 5 µs each.
//!
//! `codec/openapp_signed` is OpenApp as the facade runs it by default: the answer carries
//! the provider's signature headers and the mapping verifies them (HMAC-SHA256).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use refunds::providers::{afterpay, moyasar, openapp, optty};
use refunds::signing::openapp_signature;
use refunds::{
    Answer, ByProvider, OpenAppConfig, Provider, Refund, RefundError, RefundRequest, SecretString,
};
use test_support::documented;

/// OpenApp has no documented 200: the sandbox's acknowledgement.
const OPENAPP_ANSWER: &str = r#"{"caseId":"RET-123434","status":"REGISTERED"}"#;

/// The request each documented answer is mapped against (the snapshot tests' requests).
fn request_for(provider: Provider) -> RefundRequest {
    documented::request(provider)
}

/// The documented 200 answer of `provider`, as bytes (Moyasar's with the refund transaction the
/// request derives, as `tests/it/wire_snapshots.rs` maps it).
fn documented_answer(provider: Provider, request: &RefundRequest) -> Bytes {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let read = |file: &str| {
        let path = examples.join(provider.as_str()).join("examples").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let file = ByProvider {
        optty: Some("refund.200.successful.json"),
        afterpay: Some("refund.200.json"),
        moyasar: Some("refund.200.json"),
        openapp: None,
    };
    let text = file.get(provider).map_or(OPENAPP_ANSWER.to_owned(), read);
    Bytes::from(documented::answer(request, &text))
}

/// Encodes the request's wire body to bytes and maps the answer: one refund's pure work.
fn encode_decode(request: &RefundRequest, answer: &Answer) -> (Vec<u8>, Refund) {
    type Codec =
        fn(&RefundRequest, &Answer) -> (serde_json::Result<Vec<u8>>, Result<Refund, RefundError>);
    let codec: ByProvider<Codec> = ByProvider {
        optty: |request, answer| {
            (
                serde_json::to_vec(&optty::transformers::refund_body(request)),
                optty::transformers::refund_result(request, answer),
            )
        },
        afterpay: |request, answer| {
            (
                serde_json::to_vec(&afterpay::transformers::refund_body(request).unwrap()),
                afterpay::transformers::refund_result(request, answer),
            )
        },
        moyasar: |request, answer| {
            (
                serde_json::to_vec(&moyasar::transformers::refund_body(request).unwrap()),
                moyasar::transformers::refund_result(request, answer),
            )
        },
        openapp: |request, answer| {
            (
                serde_json::to_vec(&openapp::transformers::refund_body(request).unwrap()),
                openapp::transformers::refund_result(request, answer, None),
            )
        },
    };
    let (body, refund) = codec.take(request.provider)(request, answer);
    (body.unwrap(), refund.unwrap())
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for provider in Provider::ALL {
        let request = request_for(provider);
        request.validate().expect("the bench request is valid");
        let body = documented_answer(provider, &request);
        // Fail here, not inside the measurement, if the example no longer maps to a refund.
        encode_decode(&request, &Answer::new(200, body.clone()));
        group.bench_function(provider.as_str(), |b| {
            b.iter(|| {
                let answer = Answer::new(200, black_box(body.clone()));
                black_box(encode_decode(black_box(&request), &answer))
            });
        });
    }

    // OpenApp with the answer's signature verified, as the facade's client does by default.
    let request = request_for(Provider::OpenApp);
    let config = OpenAppConfig::new(
        "http://127.0.0.1:1",
        "b23a9fa61406440d868271d19d634906",
        "bench-openapp-secret",
    );
    let secret = SecretString::from("bench-openapp-secret");
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let signed = openapp_signature(
        "b23a9fa61406440d868271d19d634906",
        &secret,
        openapp_api::operations::refund_order::METHOD,
        openapp_api::operations::refund_order::PATH,
        epoch_ms,
        "0123456789abcdef0123456789abcdef",
        OPENAPP_ANSWER.as_bytes(),
    );
    let answer = Answer::new(200, Bytes::from_static(OPENAPP_ANSWER.as_bytes()))
        .with_header("authorization", &signed.authorization)
        .with_header(openapp::SIGNATURE_HEADER, &signed.signature);
    openapp::transformers::refund_result(&request, &answer, Some(&config))
        .expect("a signed acknowledgement is a refund");
    group.bench_function("openapp_signed", |b| {
        b.iter(|| {
            let answer = black_box(&answer);
            let body = serde_json::to_vec(
                &openapp::transformers::refund_body(black_box(&request)).unwrap(),
            )
            .unwrap();
            let refund =
                openapp::transformers::refund_result(&request, answer, Some(&config)).unwrap();
            black_box((body, refund))
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .nresamples(20_000);
    targets = codec
}
criterion_main!(benches);
