//! Router-level answers in each provider's own error shape: unknown routes,
//! wrong methods, oversized bodies and wrong content types (OpenApp's
//! signed), and checked arithmetic on AfterPay amounts.

use crate::common::*;
use reqwest::{Method, Response};
use sandbox::credentials::OPENAPP_API_SECRET;
use sandbox::{OrderSeed, Sandbox, SandboxConfig, openapp};
use serde_json::Value;

use sandbox::PROVIDERS;

/// Each provider's refund path for an order `O-1`, from its room (`Room::refund_path`, the
/// path parameter filled in).
fn refund_path(sb: &Sandbox, p: &str) -> String {
    let template = sb
        .rooms()
        .find(|room| room.handle().provider() == p)
        .unwrap_or_else(|| panic!("{p} is not one of the sandbox's providers"))
        .refund_path();
    match template.split_once('{') {
        Some((head, rest)) => {
            let tail = rest.split_once('}').map_or("", |(_, tail)| tail);
            format!("{head}O-1{tail}")
        }
        None => template.to_owned(),
    }
}

/// Status, headers and JSON body; OpenApp's signature is verified over the
/// exact body, for the request's method and path.
async fn answer(p: &str, method: &Method, path: &str, res: Response) -> (u16, Value, String) {
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json; charset=utf-8", "{p}");
    let allow = res
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let signature = res.headers().get("x-app-signature").cloned();
    let authorization = res.headers().get("authorization").cloned();
    let body = res.bytes().await.unwrap();
    if p == "openapp" {
        let (auth, sig) = (authorization.unwrap(), signature.unwrap());
        let auth = auth.to_str().unwrap();
        assert!(
            openapp::verify(OPENAPP_API_SECRET, auth, &body, sig.to_str().unwrap()),
            "the answer is signed"
        );
        let parsed = openapp::parse_authorization(auth).unwrap();
        assert_eq!(parsed.method, method.as_str());
        assert_eq!(parsed.path, path.to_uppercase());
    } else {
        assert!(signature.is_none(), "{p} does not sign");
    }
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{p}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, json, allow)
}

/// The provider's error message, wherever its shape keeps it: the first string under a
/// `message` key (AfterPay's ResponseMessage array, an object's own or nested one).
fn message(body: &Value) -> String {
    fn find(value: &Value) -> Option<&str> {
        match value {
            Value::Object(object) => object
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| object.values().find_map(find)),
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    find(body).unwrap_or_default().to_owned()
}

/// Checks `body` is the provider's own error shape: the body its refund operation documents for
/// a 400, in the spec its server serves (JSON Schema draft 4, as the sandbox reads requests).
fn assert_shape(sb: &Sandbox, p: &str, body: &Value) {
    let spec = SandboxConfig::default()
        .spec(p)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{p} is not one of the sandbox's providers"));
    let mut document: Value = serde_json::from_str(&spec).unwrap();
    let refund_path = sb.room(p).unwrap().refund_path();
    let operation = document["paths"][refund_path]
        .as_object()
        .and_then(|item| item.values().find(|op| op["responses"].is_object()))
        .unwrap_or_else(|| panic!("{p}: {refund_path} is not in its spec"))
        .clone();
    let schema = operation["responses"]["400"]["content"]["application/json"]["schema"]
        .as_object()
        .unwrap_or_else(|| panic!("{p}: the refund operation documents no 400 body"))
        .clone();
    document.as_object_mut().unwrap().extend(schema);
    let validator = jsonschema::draft4::new(&document).unwrap();
    // The shape says something: not every JSON value is one (OpenApp's documents no required
    // field, so its object type is what holds there).
    assert!(
        !validator.is_valid(&serde_json::json!("not an error body")),
        "{p}: its documented error shape accepts anything"
    );
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{p}: {body} is not its error shape: {errors:?}"
    );
    assert!(!message(body).is_empty(), "{p}: no message in {body}");
}

async fn send(
    sb: &Sandbox,
    p: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value, String) {
    let mut req = client()
        .request(
            method.clone(),
            format!("{}{path}", provider(sb, p).base_url()),
        )
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    answer(p, &method, path, res).await
}

#[tokio::test]
async fn unknown_routes_answer_404_in_the_providers_shape() {
    let sb = start().await;
    for p in PROVIDERS {
        for (method, path) in [
            (Method::POST, "/nowhere"),
            (Method::GET, "/"),
            (Method::POST, "/orders//refund"),
            (Method::POST, "/api/v3/orders/O-1/refunds/extra/more"),
        ] {
            let (status, body, _) = send(&sb, p, method.clone(), path, None, Vec::new()).await;
            assert_eq!(status, 404, "{p} {method} {path}: {body}");
            assert_shape(&sb, p, &body);
            assert!(message(&body).contains(path), "{p}: {body}");
        }
        assert_eq!(provider(&sb, p).requests_received(), 4, "{p}");
    }
    // NestJS' own wording for Optty.
    let (_, body, _) = send(&sb, "optty", Method::POST, "/nowhere", None, Vec::new()).await;
    assert_eq!(
        body,
        serde_json::json!({"statusCode":404,"message":"Cannot POST /nowhere","error":"Not Found"})
    );
}

#[tokio::test]
async fn wrong_methods_answer_405_with_allow_in_the_providers_shape() {
    let sb = start().await;
    for p in PROVIDERS {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let path = refund_path(&sb, p);
            let (status, body, allow) = send(&sb, p, method.clone(), &path, None, Vec::new()).await;
            assert_eq!(status, 405, "{p} {method}: {body}");
            assert_eq!(allow, "POST", "{p}");
            assert_shape(&sb, p, &body);
        }
    }
    // Optty's token route too.
    let (status, body, allow) = send(&sb, "optty", Method::GET, "/token", None, Vec::new()).await;
    assert_eq!((status, allow.as_str()), (405, "POST"));
    assert_eq!(body["error"], "Method Not Allowed");
}

#[tokio::test]
async fn oversized_bodies_answer_413_in_the_providers_shape() {
    let sb = Sandbox::start(SandboxConfig {
        max_request_body: 1024,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    for p in PROVIDERS {
        provider(&sb, p).seed_order(OrderSeed::new("O-1", "PLN", dec("100.00")));
        let big = format!(r#"{{"padding":"{}"}}"#, "x".repeat(2000)).into_bytes();
        let (status, body, _) = send(
            &sb,
            p,
            Method::POST,
            &refund_path(&sb, p),
            Some("application/json"),
            big.clone(),
        )
        .await;
        assert_eq!(status, 413, "{p}: {body}");
        assert_shape(&sb, p, &body);
        assert!(message(&body).contains("1024 bytes"), "{p}: {body}");

        // Chunked, without a length: refused once the limit is passed.
        let (status, head, body) =
            raw_chunked(&provider(&sb, p).base_url(), &refund_path(&sb, p), &big).await;
        assert_eq!(status, 413, "{p} chunked: {head}{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{p}: {head}"
        );
        let body: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_shape(&sb, p, &body);
        assert_eq!(provider(&sb, p).refund_count(), 0, "{p}");
    }
    // A body at the limit is read (and then refused for what it says).
    let (status, body, _) = send(
        &sb,
        "moyasar",
        Method::POST,
        &refund_path(&sb, "moyasar"),
        Some("application/json"),
        vec![b' '; 1024],
    )
    .await;
    assert_eq!(status, 401, "{body}");
}

/// POSTs `bytes` with chunked transfer encoding over a raw connection;
/// returns the status, the response head and the body (whose length the
/// head gives).
async fn raw_chunked(base_url: &str, path: &str, bytes: &[u8]) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in bytes.chunks(512) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = stream.write_all(&req).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, format!("{head}\r\n\r\n"), body.to_owned())
}

#[tokio::test]
async fn wrong_content_types_answer_415_in_the_providers_shape() {
    let sb = start().await;
    for p in PROVIDERS {
        provider(&sb, p).seed_order(OrderSeed::new("O-1", "PLN", dec("100.00")));
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
        ] {
            let (status, body, _) = send(
                &sb,
                p,
                Method::POST,
                &refund_path(&sb, p),
                Some(ct),
                b"{}".to_vec(),
            )
            .await;
            assert_eq!(status, 415, "{p} {ct}: {body}");
            assert_shape(&sb, p, &body);
            assert!(message(&body).contains("application/json"), "{body}");
        }
        // Parameters and case do not matter.
        let res = client()
            .post(format!(
                "{}{}",
                provider(&sb, p).base_url(),
                refund_path(&sb, p)
            ))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 415, "{p}");
    }
    // Optty's token route takes a form, not JSON.
    let (status, body, _) = send(
        &sb,
        "optty",
        Method::POST,
        "/token",
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn edge_answers_are_logged_and_counted() {
    let sb = start().await;
    send(&sb, "openapp", Method::GET, "/x", None, Vec::new()).await;
    let log = sb.openapp().request_log(None);
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/x", Some(404))
    );
    assert_eq!(sb.openapp().requests_received(), 1);
}

#[tokio::test]
async fn afterpay_price_times_quantity_overflow_is_a_400_not_a_500() {
    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("O-1", "EUR", dec("100.00")));
    let c = client();
    for (gross, quantity, bad_item) in [
        // One line beyond Decimal's range.
        ("79228162514264337593543950335", "2", 0),
        ("1e20", "1e20", 0),
        // Each line fits, their sum does not.
        ("79228162514264337593543950335", "1", 1),
    ] {
        let item = |g: &str, q: &str| {
            format!(
                r#"{{"productId":"p","description":"d","netUnitPrice":{g},"grossUnitPrice":{g},"quantity":{q},"vatPercent":0,"vatAmount":0}}"#
            )
        };
        let items = if bad_item == 0 {
            item(gross, quantity)
        } else {
            format!("{},{}", item(gross, quantity), item(gross, quantity))
        };
        let body = format!(r#"{{"captureNumber":"000000001","items":[{items}]}}"#);
        let res = afterpay_refund(&sb, &c, "O-1", body).send().await.unwrap();
        let (status, text) = read(res).await;
        assert_eq!(status, 400, "{gross} x {quantity}: {text}");
        let messages: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(messages[0]["type"], "BusinessError");
        assert_eq!(messages[0]["code"], "ValidationError");
        assert_eq!(messages[0]["fieldReference"], format!("items[{bad_item}]"));
        assert!(
            messages[0]["message"]
                .as_str()
                .unwrap()
                .contains("too large"),
            "{text}"
        );
    }
    // The legacy list name is named as sent.
    let body = r#"{"captureNumber":"000000001","orderItems":[{"productId":"p","description":"d","netUnitPrice":1,"grossUnitPrice":79228162514264337593543950335,"quantity":3,"vatPercent":0,"vatAmount":0}]}"#;
    let (status, text) = read(
        afterpay_refund(&sb, &c, "O-1", body.into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(r#""fieldReference":"orderItems[0]""#),
        "{text}"
    );
    assert_eq!(sb.afterpay().refund_count(), 0);
}

/// Found by schemathesis: optional fields the spec does not make nullable
/// were read as absent when sent as `null`; they are refused now, each in the
/// provider's own validation shape. Also: with both item lists sent, the
/// legacy `orderItems` is validated too.
#[tokio::test]
async fn null_in_a_non_nullable_optional_field_is_refused() {
    let sb = start().await;
    let c = client();
    for p in ["optty", "afterpay", "moyasar"] {
        provider(&sb, p).seed_order(OrderSeed::new("O-1", "SAR", dec("100.00")));
    }
    let res = moyasar_refund(
        &sb,
        &c,
        "O-1",
        r#"{"amount":1,"transaction_id":null}"#.into(),
    )
    .send()
    .await
    .unwrap();
    let (status, text) = read(res).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains(r#""errors":{"transaction_id""#), "{text}");

    let token = optty_token(&sb, &c).await;
    let body = r#"{"refundReference":"r","refundAmount":{"amount":1,"currency":"SAR"},"refundDescription":"x","isActivatedViaOAuth":null}"#;
    let (status, text) = read(
        optty_refund(&sb, &c, &token, "O-1", body.into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("isActivatedViaOAuth must be a boolean value"),
        "{text}"
    );

    let item = r#"{"productId":"p","description":"d","netUnitPrice":1,"grossUnitPrice":1,"quantity":1,"vatPercent":0,"vatAmount":0}"#;
    for (body, field) in [
        (
            format!(
                r#"{{"captureNumber":"000000001","transactionReference":null,"items":[{item}]}}"#
            ),
            "transactionReference",
        ),
        (
            r#"{"captureNumber":"000000001","items":null}"#.to_owned(),
            "items",
        ),
        (
            format!(
                r#"{{"captureNumber":"000000001","items":[{item}],"orderItems":[{{"productId":1}}]}}"#
            ),
            "orderItems[0].productId",
        ),
    ] {
        let (status, text) = read(
            afterpay_refund(&sb, &c, "O-1", body.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(
            text.contains(&format!(r#""fieldReference":"{field}""#)),
            "{body}: {text}"
        );
    }
    for p in ["optty", "afterpay", "moyasar"] {
        assert_eq!(provider(&sb, p).refund_count(), 0, "{p}");
    }
}
