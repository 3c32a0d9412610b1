//! OpenApp over real HTTP: HMAC auth, signed responses, named exceptions.

use crate::common::*;
use reqwest::{Client, Response};
use sandbox::credentials::{OPENAPP_API_KEY, OPENAPP_API_SECRET};
use sandbox::openapp::{self, ResponseSigning};
use sandbox::{OrderSeed, RefundStatus, Sandbox};

/// The docs' request (`specs/openapp/examples/`), as documented.
const DOC_REQUEST: &str = include_str!("../../../specs/openapp/examples/refund.request.json");

fn seed(sb: &Sandbox) {
    sb.openapp().seed_order(
        OrderSeed::new("WS1213ASDZXC231A", "PLN", dec("100.00")).oa_order_id("OA12345678901234"),
    );
}

/// Checks the response's signature and returns (status, body).
async fn read_signed(res: Response) -> (u16, String) {
    let auth = res.headers()["authorization"].to_str().unwrap().to_owned();
    let sig = res.headers()["x-app-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = read(res).await;
    assert!(
        openapp::verify(OPENAPP_API_SECRET, &auth, body.as_bytes(), &sig),
        "response signature must verify"
    );
    let parsed = openapp::parse_authorization(&auth).unwrap();
    assert_eq!(parsed.api_key, OPENAPP_API_KEY);
    assert_eq!(parsed.method, "POST");
    assert_eq!(parsed.path, "/MERCHANT/V1/ORDERS/REFUND");
    (status, body)
}

fn unauthorized(message: &str) -> (u16, String) {
    (
        401,
        format!(r#"{{"exception":"UnauthorizedException","message":"{message}"}}"#),
    )
}

/// The docs' request signed as a POST with these parts: each case below changes one of them.
fn doc_signature(
    api_key: &str,
    api_secret: &str,
    path: &str,
    epoch_ms: u64,
    nonce: &str,
) -> openapp::Signature {
    openapp::sign(
        api_key,
        api_secret,
        "POST",
        path,
        epoch_ms,
        nonce,
        DOC_REQUEST.as_bytes(),
    )
}

/// Posts `body` to the refund route with `sig`'s headers.
async fn post_signed(
    sb: &Sandbox,
    c: &Client,
    sig: &openapp::Signature,
    body: impl Into<reqwest::Body>,
) -> Response {
    c.post(sb.openapp().refund_url())
        .header("authorization", &sig.authorization)
        .header("x-app-signature", &sig.signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signed_documented_request_is_registered_and_pending() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let res = openapp_refund(&sb, &c, DOC_REQUEST.into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_signed(res).await,
        (
            200,
            r#"{"caseId":"RET-123434","status":"REGISTERED"}"#.into()
        )
    );
    let order = sb.openapp().order("WS1213ASDZXC231A").unwrap();
    assert_eq!(order.refunded, dec("19.99"));
    assert_eq!(order.refunds[0].status, RefundStatus::Pending);
    assert_eq!(sb.openapp().order("OA12345678901234").unwrap(), order);
    assert!(sb.openapp().settle_refund("WS1213ASDZXC231A", "RET-123434"));
    assert_eq!(
        sb.openapp().order("WS1213ASDZXC231A").unwrap().refunds[0].status,
        RefundStatus::Succeeded
    );
}

#[tokio::test]
async fn signature_is_computed_as_documented() {
    // Independent of the sandbox: the README's scheme, by hand.
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let body = br#"{"a":1}"#;
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(format!("key$POST$/MERCHANT/V1/ORDERS/REFUND$1678206688075$N1${digest}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sig = openapp::sign(
        "key",
        "secret",
        "post",
        "/merchant/v1/orders/refund",
        1_678_206_688_075,
        "N1",
        body,
    );
    assert_eq!(
        sig.authorization,
        "hmac v1$key$POST$/MERCHANT/V1/ORDERS/REFUND$1678206688075$N1"
    );
    assert_eq!(sig.signature, expected);
    // Empty body: the last element is empty.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(b"key$GET$/MERCHANT/ORDER/STATUS$1$N$");
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        openapp::sign(
            "key",
            "secret",
            "GET",
            "/merchant/order/status",
            1,
            "N",
            b""
        )
        .signature,
        expected
    );
}

#[tokio::test]
async fn missing_wrong_or_tampered_signatures_are_rejected() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let res = c
        .post(sb.openapp().refund_url())
        .body(DOC_REQUEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_signed(res).await,
        unauthorized("Missing authorization header")
    );

    // Signed over one body, sent with another.
    let sig = sb.openapp().sign_refund(DOC_REQUEST.as_bytes());
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST.replace("1999", "2999")).await;
    assert_eq!(read_signed(res).await, unauthorized("Invalid signature"));

    // Right scheme, wrong secret.
    let sig = doc_signature(
        OPENAPP_API_KEY,
        "not-the-secret",
        openapp::REFUND_PATH,
        sb.openapp().now_ms(),
        "n-1",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(read_signed(res).await, unauthorized("Invalid signature"));

    // Unknown key.
    let sig = doc_signature(
        "someone-else",
        OPENAPP_API_SECRET,
        openapp::REFUND_PATH,
        sb.openapp().now_ms(),
        "n-2",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(read_signed(res).await, unauthorized("Unknown API key"));

    // Signed for another path.
    let sig = doc_signature(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        "/merchant/order/status",
        sb.openapp().now_ms(),
        "n-3",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(
        read_signed(res).await,
        unauthorized("Signed method or path does not match the request")
    );

    // A nonce longer than 64 characters.
    let sig = doc_signature(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        openapp::REFUND_PATH,
        sb.openapp().now_ms(),
        &"n".repeat(65),
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(read_signed(res).await, unauthorized("Invalid nonce"));
    assert_eq!(sb.openapp().refund_count(), 0);
}

#[tokio::test]
async fn stale_timestamps_are_rejected() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let stale = unauthorized("Request timestamp is outside the allowed window");
    // Signed 61 s ago.
    let sig = doc_signature(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        openapp::REFUND_PATH,
        sb.openapp().now_ms() - 61_000,
        "old-1",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(read_signed(res).await, stale);

    // A client whose clock is 2 minutes behind the server's.
    let client_now = sb.openapp().now_ms();
    sb.openapp().set_clock_skew_ms(120_000);
    let sig = doc_signature(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        openapp::REFUND_PATH,
        client_now,
        "old-2",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(read_signed(res).await, stale);

    // A wider window lets the same skew through.
    sb.openapp()
        .set_timestamp_window(std::time::Duration::from_secs(300));
    let sig = doc_signature(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        openapp::REFUND_PATH,
        client_now,
        "old-3",
    );
    let res = post_signed(&sb, &c, &sig, DOC_REQUEST).await;
    assert_eq!(res.status(), 200);
    assert_eq!(sb.openapp().refund_count(), 1);
}

#[tokio::test]
async fn replayed_nonce_is_rejected() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    let sig = sb.openapp().sign_refund(DOC_REQUEST.as_bytes());
    let send = || post_signed(&sb, &c, &sig, DOC_REQUEST);
    assert_eq!(send().await.status(), 200);
    assert_eq!(
        read_signed(send().await).await,
        unauthorized("Nonce has already been used")
    );
    assert_eq!(sb.openapp().refund_count(), 1);
}

#[tokio::test]
async fn named_exceptions() {
    let sb = start().await;
    seed(&sb);
    sb.openapp()
        .seed_order(OrderSeed::new("WS-OTHER", "PLN", dec("10.00")).owner("another-merchant"));
    sb.openapp()
        .seed_order(OrderSeed::new("WS-GONE", "PLN", dec("10.00")));
    assert!(sb.openapp().set_user_missing("WS-GONE", true));
    let c = client();
    let cases = [
        (
            openapp_body("OA-NOPE", "WS-NOPE", 100, "c-1"),
            404,
            r#"{"exception":"OrderNotFoundException","message":"Order OA-NOPE / WS-NOPE not found"}"#,
        ),
        (
            openapp_body("OA12345678901234", "WS-WRONG", 100, "c-1"),
            404,
            r#"{"exception":"OrderNotFoundException","message":"Order OA12345678901234 / WS-WRONG not found"}"#,
        ),
        (
            openapp_body("WS-OTHER", "WS-OTHER", 100, "c-1"),
            404,
            r#"{"exception":"MerchantOrderOwnershipException","message":"Order WS-OTHER does not belong to this merchant"}"#,
        ),
        (
            openapp_body("WS-GONE", "WS-GONE", 100, "c-1"),
            404,
            r#"{"exception":"UserNotFoundException","message":"The customer of order WS-GONE was not found"}"#,
        ),
        (
            openapp_body("OA12345678901234", "WS1213ASDZXC231A", 10_001, "c-1"),
            400,
            r#"{"exception":"RefundTooMuchException","message":"Refund amount 10001 exceeds the refundable amount 10000 of order OA12345678901234"}"#,
        ),
    ];
    for (body, status, expected) in cases {
        let res = openapp_refund(&sb, &c, body.clone()).send().await.unwrap();
        assert_eq!(
            read_signed(res).await,
            (status, expected.to_owned()),
            "{body}"
        );
    }
    assert_eq!(sb.openapp().refund_count(), 0);

    // caseId is unique per order: 409 on the same order, fine on another.
    let body = openapp_body("OA12345678901234", "WS1213ASDZXC231A", 500, "c-1");
    assert_eq!(
        openapp_refund(&sb, &c, body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = openapp_refund(&sb, &c, body).send().await.unwrap();
    assert_eq!(
        read_signed(res).await,
        (
            409,
            r#"{"exception":"RefundExistsException","message":"A refund with caseId c-1 already exists for order OA12345678901234"}"#.into()
        )
    );
    sb.openapp()
        .seed_order(OrderSeed::new("WS-2", "PLN", dec("10.00")));
    let res = openapp_refund(&sb, &c, openapp_body("WS-2", "WS-2", 500, "c-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sb.openapp().refund_count(), 2);
    assert_eq!(
        sb.openapp().order("WS1213ASDZXC231A").unwrap().refunded,
        dec("5.00")
    );

    sb.openapp().set_wallet_missing(true);
    let res = openapp_refund(&sb, &c, openapp_body("WS-2", "WS-2", 1, "c-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_signed(res).await,
        (404, r#"{"exception":"MerchantWalletNotFoundException","message":"Merchant wallet not found"}"#.into())
    );
}

#[tokio::test]
async fn schema_violations_are_validation_exceptions() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    use openapp_api::constraints::refund_order as body;
    let reasons = body::reason::ENUM.join(", ");
    let case_id_max = body::case_id::MAX_LENGTH;
    // In the order of the schema's `required`, all but the one the request carries.
    let required = body::REQUIRED_PROPERTIES
        .iter()
        .filter(|field| **field != "oaOrderId")
        .map(|field| format!("{field} is required"))
        .collect::<Vec<_>>()
        .join("; ");
    let cases = [
        (
            DOC_REQUEST.replace("\"notes\":", "\"extra\": 1, \"notes\":"),
            "Unrecognized field \\\"extra\\\"".to_owned(),
        ),
        (
            DOC_REQUEST.replace("RETURNED", "BORED"),
            format!("reason must be one of {reasons}"),
        ),
        (
            DOC_REQUEST.replace("RET-123434", &"c".repeat(case_id_max + 1)),
            format!("caseId must be at most {case_id_max} characters"),
        ),
        (
            DOC_REQUEST.replace("\"amount\": 1999,", "\"amount\": 19.99,"),
            "amount must be an integer".to_owned(),
        ),
        (r#"{"oaOrderId":"OA12345678901234"}"#.to_owned(), required),
    ];
    for (body, message) in cases {
        let res = openapp_refund(&sb, &c, body.clone()).send().await.unwrap();
        assert_eq!(
            read_signed(res).await,
            (
                400,
                format!(r#"{{"exception":"ValidationException","message":"{message}"}}"#)
            ),
            "{body}"
        );
    }
    assert_eq!(sb.openapp().refund_count(), 0);
}

#[tokio::test]
async fn response_signing_can_be_broken_for_client_tests() {
    let sb = start().await;
    seed(&sb);
    let c = client();
    sb.openapp().set_response_signing(ResponseSigning::Tampered);
    let res = openapp_refund(
        &sb,
        &c,
        openapp_body("OA12345678901234", "WS1213ASDZXC231A", 1, "t-1"),
    )
    .send()
    .await
    .unwrap();
    let auth = res.headers()["authorization"].to_str().unwrap().to_owned();
    let sig = res.headers()["x-app-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = res.bytes().await.unwrap();
    assert!(!openapp::verify(OPENAPP_API_SECRET, &auth, &body, &sig));
    sb.openapp().set_response_signing(ResponseSigning::Absent);
    let res = openapp_refund(
        &sb,
        &c,
        openapp_body("OA12345678901234", "WS1213ASDZXC231A", 1, "t-2"),
    )
    .send()
    .await
    .unwrap();
    assert!(res.headers().get("x-app-signature").is_none());
    assert_eq!(res.status(), 200);
}
