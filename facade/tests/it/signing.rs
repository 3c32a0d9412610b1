//! OpenApp HMAC signatures against vectors computed outside this crate.
//!
//! The expected values were computed with Python's standard library and
//! cross-checked with OpenSSL (both printed the same strings):
//!
//! ```text
//! python3 -c '
//! import hmac, hashlib, base64
//! secret=b"s3cr3t-0penApp-HMAC-key"
//! key="b23a9fa61406440d868271d19d634906"
//! msg=key+"$GET$/MERCHANT/ORDER/STATUS$1678206688075$AB1CSA86767CVSJKLN878AS$"
//! print(base64.b64encode(hmac.new(secret,msg.encode(),hashlib.sha256).digest()).decode())
//! body=b"{\"oaOrderId\":\"OA12345678901234\",\"shopOrderId\":\"WS1213ASDZXC231A\",\"currency\":\"PLN\",\"amount\":1999,\"reason\":\"RETURNED\",\"caseId\":\"RET-123434\",\"notes\":\"Returned without charger cables.\"}"
//! d=base64.b64encode(hashlib.sha256(body).digest()).decode()
//! print(d)
//! msg2=key+"$POST$/MERCHANT/V1/ORDERS/REFUND$1678206688075$3f0c9a1e-7b2d-4c5e-9f10-2a6b8c4d1e7f$"+d
//! print(base64.b64encode(hmac.new(secret,msg2.encode(),hashlib.sha256).digest()).decode())
//! '
//! # -> oY1FSoiWoFXO5HmRY/VFO9r4gkIlMWQjFnlvZAi7kiw=
//! # -> eW2CoATMwgDlMtB9Kh+aGYofBFJUUhWDfKjhg/B5v38=
//! # -> xjnK1cF3KVNwMD+e5ln7iMk1SxsNpcmpQ4Fof1f5s18=
//!
//! printf '%s' 'b23a9fa61406440d868271d19d634906$GET$/MERCHANT/ORDER/STATUS$1678206688075$AB1CSA86767CVSJKLN878AS$' \
//!   | openssl dgst -sha256 -hmac 's3cr3t-0penApp-HMAC-key' -binary | base64
//! # -> oY1FSoiWoFXO5HmRY/VFO9r4gkIlMWQjFnlvZAi7kiw=
//! BODY='{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables."}'
//! D=$(printf '%s' "$BODY" | openssl dgst -sha256 -binary | base64)
//! printf '%s' "b23a9fa61406440d868271d19d634906\$POST\$/MERCHANT/V1/ORDERS/REFUND\$1678206688075\$3f0c9a1e-7b2d-4c5e-9f10-2a6b8c4d1e7f\$$D" \
//!   | openssl dgst -sha256 -hmac 's3cr3t-0penApp-HMAC-key' -binary | base64
//! # -> xjnK1cF3KVNwMD+e5ln7iMk1SxsNpcmpQ4Fof1f5s18=
//! ```

use refunds::SecretString;
use refunds::signing::{OpenAppAuthorization, openapp_signature, verify_openapp_signature};

const SECRET: &str = "s3cr3t-0penApp-HMAC-key";
const API_KEY: &str = "b23a9fa61406440d868271d19d634906";
const EPOCH_MS: u64 = 1_678_206_688_075;

/// The docs' example `authorization` header.
const DOCS_AUTHORIZATION: &str = "hmac v1$b23a9fa61406440d868271d19d634906$GET$/MERCHANT/ORDER/STATUS$1678206688075$AB1CSA86767CVSJKLN878AS";
const GET_SIGNATURE: &str = "oY1FSoiWoFXO5HmRY/VFO9r4gkIlMWQjFnlvZAi7kiw=";

const POST_NONCE: &str = "3f0c9a1e-7b2d-4c5e-9f10-2a6b8c4d1e7f";
const POST_BODY: &str = r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables."}"#;
const POST_SIGNATURE: &str = "xjnK1cF3KVNwMD+e5ln7iMk1SxsNpcmpQ4Fof1f5s18=";

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

#[test]
fn get_without_body_matches_the_docs_header_and_the_independent_vector() {
    // Method and path are upper-cased by the signer.
    let signed = openapp_signature(
        API_KEY,
        &secret(),
        "get",
        "/merchant/order/status",
        EPOCH_MS,
        "AB1CSA86767CVSJKLN878AS",
        b"",
    );
    assert_eq!(signed.authorization, DOCS_AUTHORIZATION);
    assert_eq!(signed.signature, GET_SIGNATURE);
}

#[test]
fn post_refund_with_json_body_matches_the_independent_vector() {
    let signed = openapp_signature(
        API_KEY,
        &secret(),
        "POST",
        "/merchant/v1/orders/refund",
        EPOCH_MS,
        POST_NONCE,
        POST_BODY.as_bytes(),
    );
    assert_eq!(
        signed.authorization,
        format!("hmac v1${API_KEY}$POST$/MERCHANT/V1/ORDERS/REFUND${EPOCH_MS}${POST_NONCE}")
    );
    assert_eq!(signed.signature, POST_SIGNATURE);
}

#[test]
fn verification_accepts_the_vectors() {
    assert!(verify_openapp_signature(
        &secret(),
        DOCS_AUTHORIZATION,
        b"",
        GET_SIGNATURE
    ));
    let authorization =
        format!("hmac v1${API_KEY}$POST$/MERCHANT/V1/ORDERS/REFUND${EPOCH_MS}${POST_NONCE}");
    assert!(verify_openapp_signature(
        &secret(),
        &authorization,
        POST_BODY.as_bytes(),
        POST_SIGNATURE
    ));
}

#[test]
fn verification_rejects_any_change() {
    let authorization =
        format!("hmac v1${API_KEY}$POST$/MERCHANT/V1/ORDERS/REFUND${EPOCH_MS}${POST_NONCE}");
    let body = POST_BODY.as_bytes();
    // Wrong secret.
    assert!(!verify_openapp_signature(
        &SecretString::from("other"),
        &authorization,
        body,
        POST_SIGNATURE
    ));
    // Tampered body (amount 1999 -> 1998).
    let tampered = POST_BODY.replace("1999", "1998");
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        tampered.as_bytes(),
        POST_SIGNATURE
    ));
    // Empty body instead of the signed one.
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        b"",
        POST_SIGNATURE
    ));
    // Tampered header elements.
    for header in [
        authorization.replace("POST", "GET"),
        authorization.replace("REFUND", "REFUNDS"),
        authorization.replace("1678206688075", "1678206688076"),
        authorization.replace(POST_NONCE, "another-nonce"),
    ] {
        assert!(
            !verify_openapp_signature(&secret(), &header, body, POST_SIGNATURE),
            "{header}"
        );
    }
    // Tampered, truncated, or non-base64 signatures.
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        body,
        &POST_SIGNATURE.replace('x', "y")
    ));
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        body,
        &POST_SIGNATURE[..20]
    ));
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        body,
        "not base64!"
    ));
    assert!(!verify_openapp_signature(
        &secret(),
        &authorization,
        body,
        ""
    ));
    // Malformed headers.
    for header in [
        "",
        "hmac v2$a$GET$/X$1$n",
        "hmac v1$a$GET$/X$1",
        "hmac v1$a$GET$/X$1$n$extra",
        "hmac v1$a$GET$/X$notanumber$n",
    ] {
        assert!(
            !verify_openapp_signature(&secret(), header, b"", GET_SIGNATURE),
            "{header}"
        );
    }
}

#[test]
fn authorization_header_parses_into_its_elements() {
    let parsed = OpenAppAuthorization::parse(DOCS_AUTHORIZATION).unwrap();
    assert_eq!(
        parsed,
        OpenAppAuthorization {
            api_key: API_KEY.into(),
            method: "GET".into(),
            path: "/MERCHANT/ORDER/STATUS".into(),
            epoch_ms: EPOCH_MS,
            nonce: "AB1CSA86767CVSJKLN878AS".into(),
        }
    );
    assert_eq!(OpenAppAuthorization::parse("Bearer abc"), None);
}

#[test]
fn signature_debug_never_contains_the_secret() {
    let signed = openapp_signature(
        API_KEY,
        &secret(),
        "POST",
        "/merchant/v1/orders/refund",
        EPOCH_MS,
        POST_NONCE,
        POST_BODY.as_bytes(),
    );
    let debug = format!("{signed:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains(POST_SIGNATURE));
}
