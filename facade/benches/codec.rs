//! Encode + decode per refund, per provider, pure (no I/O): the facade's wire body of a request
//! serialized to JSON text, plus the facade's mapping of the provider's documented 200 answer
//! (`specs/<provider>/examples/refund.200*.json`, `test_support::documented::success_answer`)
//! into a `Refund`, both through the facade's dispatch to the provider's room. Target: at most
//! 5 µs each.
//!
//! `codec/openapp_signed` is OpenApp as the facade runs it by default: the answer carries
//! the provider's signature headers and the mapping verifies them (HMAC-SHA256).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use refunds::providers::openapp;
use refunds::signing::openapp_signature;
use refunds::{Answer, OpenAppConfig, Provider, Refund, RefundRequest, SecretString};
use test_support::documented;

/// Encodes the request's wire body and maps the answer, through the facade's dispatch to the
/// provider's room: one refund's pure work.
fn encode_decode(request: &RefundRequest, answer: &Answer) -> (String, Refund) {
    let body = refunds::providers::refund_body_json(request, false).expect("a wire body");
    let refund = refunds::providers::refund_result(request, answer).expect("a refund");
    (body, refund)
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for provider in Provider::ALL {
        let request = documented::request(provider);
        request.validate().expect("the bench request is valid");
        let body = Bytes::from(documented::success_answer(provider));
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
    let request = documented::request(Provider::OpenApp);
    let acknowledgement = documented::UNDOCUMENTED_SUCCESS
        .openapp
        .expect("OpenApp documents no 200");
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
        acknowledgement.as_bytes(),
    );
    let answer = Answer::new(200, Bytes::from_static(acknowledgement.as_bytes()))
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
