//! The sandbox's OpenApp HMAC (its own implementation, an oracle independent of the facade's)
//! against the same published vectors the facade's is tested with (`facade/tests/it/signing.rs`),
//! computed outside the workspace with Python's standard library and cross-checked with OpenSSL:
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
//! ```
//!
//! The choices the scheme leaves open are checked here as the facade makes them: epoch
//! milliseconds are `u64`, a signature is trimmed before it is Base64-decoded, and a header
//! that does not parse verifies nothing.

use sandbox::openapp::{self, Authorization};

const SECRET: &str = "s3cr3t-0penApp-HMAC-key";
const API_KEY: &str = "b23a9fa61406440d868271d19d634906";
const EPOCH_MS: u64 = 1_678_206_688_075;

/// The docs' example `authorization` header.
const DOCS_AUTHORIZATION: &str = "hmac v1$b23a9fa61406440d868271d19d634906$GET$/MERCHANT/ORDER/STATUS$1678206688075$AB1CSA86767CVSJKLN878AS";
const GET_SIGNATURE: &str = "oY1FSoiWoFXO5HmRY/VFO9r4gkIlMWQjFnlvZAi7kiw=";

const POST_NONCE: &str = "3f0c9a1e-7b2d-4c5e-9f10-2a6b8c4d1e7f";
const POST_BODY: &str = r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables."}"#;
const POST_DIGEST: &str = "eW2CoATMwgDlMtB9Kh+aGYofBFJUUhWDfKjhg/B5v38=";
const POST_SIGNATURE: &str = "xjnK1cF3KVNwMD+e5ln7iMk1SxsNpcmpQ4Fof1f5s18=";

fn post_authorization() -> String {
    format!("hmac v1${API_KEY}$POST$/MERCHANT/V1/ORDERS/REFUND${EPOCH_MS}${POST_NONCE}")
}

#[test]
fn get_without_body_matches_the_docs_header_and_the_independent_vector() {
    // Method and path are upper-cased by the signer.
    let signed = openapp::sign(
        API_KEY,
        SECRET,
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
    assert_eq!(openapp::content_digest(POST_BODY.as_bytes()), POST_DIGEST);
    assert_eq!(openapp::content_digest(b""), "");
    let signed = openapp::sign(
        API_KEY,
        SECRET,
        "POST",
        "/merchant/v1/orders/refund",
        EPOCH_MS,
        POST_NONCE,
        POST_BODY.as_bytes(),
    );
    assert_eq!(signed.authorization, post_authorization());
    assert_eq!(signed.signature, POST_SIGNATURE);
}

#[test]
fn verification_accepts_the_vectors_and_rejects_any_change() {
    let body = POST_BODY.as_bytes();
    assert!(openapp::verify(
        SECRET,
        DOCS_AUTHORIZATION,
        b"",
        GET_SIGNATURE
    ));
    assert!(openapp::verify(
        SECRET,
        &post_authorization(),
        body,
        POST_SIGNATURE
    ));
    assert!(!openapp::verify(
        "other",
        &post_authorization(),
        body,
        POST_SIGNATURE
    ));
    let tampered = POST_BODY.replace("1999", "1998");
    assert!(!openapp::verify(
        SECRET,
        &post_authorization(),
        tampered.as_bytes(),
        POST_SIGNATURE
    ));
    for header in [
        post_authorization().replace("POST", "GET"),
        post_authorization().replace("1678206688075", "1678206688076"),
        post_authorization().replace(POST_NONCE, "another-nonce"),
    ] {
        assert!(
            !openapp::verify(SECRET, &header, body, POST_SIGNATURE),
            "{header}"
        );
    }
    for signature in ["", "not base64!", &POST_SIGNATURE[..20]] {
        assert!(
            !openapp::verify(SECRET, &post_authorization(), body, signature),
            "{signature}"
        );
    }
}

#[test]
fn the_signature_is_trimmed_before_decoding_as_the_facade_does() {
    for padded in [
        format!(" {POST_SIGNATURE}"),
        format!("{POST_SIGNATURE}\t"),
        format!("\r\n{POST_SIGNATURE} \n"),
    ] {
        assert!(
            openapp::verify(SECRET, &post_authorization(), POST_BODY.as_bytes(), &padded),
            "{padded:?}"
        );
    }
}

#[test]
fn malformed_headers_verify_nothing_as_in_the_facade() {
    for header in [
        "",
        "hmac v2$a$GET$/X$1$n",
        "hmac v1$a$GET$/X$1",
        "hmac v1$a$GET$/X$1$n$extra",
        "hmac v1$a$GET$/X$notanumber$n",
        "hmac v1$a$GET$/X$-1$n",
    ] {
        assert!(
            !openapp::verify(SECRET, header, b"", GET_SIGNATURE),
            "{header}"
        );
    }
}

#[test]
fn epochs_are_unsigned_milliseconds_as_in_the_facade() {
    assert_eq!(
        openapp::parse_authorization(DOCS_AUTHORIZATION),
        Some(Authorization {
            api_key: API_KEY.into(),
            method: "GET".into(),
            path: "/MERCHANT/ORDER/STATUS".into(),
            epoch_ms: EPOCH_MS,
            nonce: "AB1CSA86767CVSJKLN878AS".into(),
        })
    );
    // The whole u64 range, as the facade's `OpenAppAuthorization::epoch_ms`; nothing beyond.
    let max = format!("hmac v1$k$GET$/X${}$n", u64::MAX);
    assert_eq!(
        openapp::parse_authorization(&max).map(|a| a.epoch_ms),
        Some(u64::MAX)
    );
    let beyond = format!("hmac v1$k$GET$/X${}0$n", u64::MAX);
    assert_eq!(openapp::parse_authorization(&beyond), None);
    let signed = openapp::sign("k", SECRET, "GET", "/x", u64::MAX, "n", b"");
    assert!(signed.authorization.ends_with(&format!("${}$n", u64::MAX)));
    assert!(openapp::verify(
        SECRET,
        &signed.authorization,
        b"",
        &signed.signature
    ));
}
