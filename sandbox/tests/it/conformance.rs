//! Every body the sandbox sends decodes through the generated type of its
//! operation and status, and what the generated request types serialize is
//! accepted by the sandbox.

use std::num::NonZeroU64;
use std::time::Duration;

use crate::common::*;
use reqwest::Response;
use sandbox::credentials::*;
use sandbox::{Fault, Match, OrderSeed, Sandbox};

/// Status and raw body bytes.
async fn raw(res: Response) -> (u16, Vec<u8>) {
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

/// Decodes `body` as `T`, failing with the body text.
fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> T {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn optty_bodies_decode_and_generated_requests_are_accepted() {
    use optty_api::types::{
        ErrorResponse, OrderRefundDto, RefundResponse, TokenRequest, TokenResponse,
    };

    let sb = start().await;
    sb.optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", dec("100.00")).refunded(dec("50.00")));
    let c = client();

    // Token: the generated request, form-encoded as the generated client does.
    let token_req: TokenRequest = serde_json::from_value(serde_json::json!({
        "client_id": OPTTY_CLIENT_ID,
        "client_secret": OPTTY_CLIENT_SECRET,
        "grant_type": optty_api::constraints::create_access_token::grant_type::ENUM[0],
        "scope": optty_api::constraints::create_access_token::scope::ENUM[0],
    }))
    .unwrap();
    let (status, body) = raw(c
        .post(sb.optty().token_url())
        .form(&token_req)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, 200);
    let token: TokenResponse = decode("token 200", &body);
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 86_400);

    let mut wrong = token_req.clone();
    wrong.client_secret = "nope".into();
    let (status, body) = raw(c
        .post(sb.optty().token_url())
        .form(&wrong)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, 401);
    let e: ErrorResponse = decode("token 401", &body);
    assert_eq!((e.status_code, e.message.as_str()), (401, "Unauthorized"));

    // Refund: the documented request through the generated type.
    let dto: OrderRefundDto = serde_json::from_str(
        r#"{"refundReference":"TgEHcPtpN2HSrTMK-0","refundAmount":{"amount":24.98,"currency":"AUD"},"refundDescription":"Please refund this order"}"#,
    )
    .unwrap();
    let wire = serde_json::to_vec(&dto).unwrap();
    let send = |body: Vec<u8>, order: &str, token: &str| {
        c.post(format!("{}/orders/{order}/refund", sb.optty().base_url()))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, body) = raw(send(wire.clone(), "ORD-1", &token.access_token)
        .await
        .unwrap())
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ok: RefundResponse = decode("refund 200", &body);
    assert_eq!(ok.refunded_amount.get(), dec("24.98"));
    assert_eq!(ok.refunded_amount.to_string(), "24.98");
    assert_eq!(ok.refund_status, "SUCCESSFUL");
    assert_eq!(ok.bnpl_provider, "KLARNA_AU");
    assert_eq!(ok.description, serde_json::json!({}));

    // Every error kind decodes as ErrorResponse with its status code.
    let mut over = dto.clone();
    over.refund_reference = "over".into();
    over.refund_amount.amount = dec("25.03").into();
    let mut dup = dto.clone();
    dup.refund_amount.amount = dec("1.00").into();
    let errors = [
        (
            send(
                serde_json::to_vec(&over).unwrap(),
                "ORD-1",
                &token.access_token,
            )
            .await,
            400,
        ),
        (
            send(
                b"{\"refundReference\": abc}".to_vec(),
                "ORD-1",
                &token.access_token,
            )
            .await,
            400,
        ),
        (
            send(
                serde_json::to_vec(&dup).unwrap(),
                "ORD-1",
                &token.access_token,
            )
            .await,
            400,
        ),
        (send(wire.clone(), "ORD-1", "expired").await, 401),
        (send(wire.clone(), "NOPE", &token.access_token).await, 404),
    ];
    for (res, expected) in errors {
        let (status, body) = raw(res.unwrap()).await;
        assert_eq!(status, expected);
        let e: ErrorResponse = decode("refund error", &body);
        assert_eq!(e.status_code, i64::from(expected));
    }
    sb.optty().inject(Fault::Status(500), Match::Any.once());
    let (status, body) = raw(send(wire, "ORD-1", &token.access_token).await.unwrap()).await;
    assert_eq!(status, 500);
    let e: ErrorResponse = decode("refund 500", &body);
    assert_eq!(e.message, "Internal server error");
    assert_eq!(sb.optty().refund_count(), 1);
}

#[tokio::test]
async fn afterpay_bodies_decode_and_generated_requests_are_accepted() {
    use afterpay_api::types::{RefundOrderRequest, RefundOrderResponse, ResponseMessage};

    let sb = start().await;
    sb.afterpay()
        .seed_order(OrderSeed::new("AP-1", "EUR", dec("300.00")));
    let c = client();
    let send = |order: &str, body: Vec<u8>| {
        afterpay_refund(&sb, &c, order, String::from_utf8(body).unwrap()).send()
    };

    // The docs' request (legacy orderItems) and the current `items` name.
    let legacy: RefundOrderRequest = serde_json::from_str(include_str!(
        "../../../specs/afterpay/examples/refund.request.json"
    ))
    .unwrap();
    let mut current = legacy.clone();
    current.items = std::mem::take(&mut current.order_items);
    for (n, req) in [legacy, current.clone()].into_iter().enumerate() {
        let (status, body) = raw(send("AP-1", serde_json::to_vec(&req).unwrap())
            .await
            .unwrap())
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let ok: RefundOrderResponse = decode("refund 200", &body);
        assert_eq!(ok.total_captured_amount.get(), dec("300.00"));
        assert_eq!(
            ok.total_refunded_amount.map(|total| total.get()),
            Some(dec("60.00") * dec(&(n + 1).to_string()))
        );
        assert_eq!(
            ok.remaining_authorized_amount.map(|left| left.get()),
            Some(dec("0.00"))
        );
        assert_eq!(ok.refund_numbers, [format!("{:09}", n + 2)]);
    }

    let mut too_much = current.clone();
    too_much.items[0].quantity = dec("100").into();
    let bad_requests = [
        send("AP-1", serde_json::to_vec(&too_much).unwrap()).await,
        send("AP-1", br#"{"items":[{}]}"#.to_vec()).await,
        send("AP-1", br#"{"captureNumber":"999"}"#.to_vec()).await,
        send("AP-1", b"{nope".to_vec()).await,
    ];
    for res in bad_requests {
        let (status, body) = raw(res.unwrap()).await;
        assert_eq!(status, 400);
        let messages: Vec<ResponseMessage> = decode("refund 400", &body);
        assert!(!messages.is_empty());
        assert!(
            messages
                .iter()
                .all(|m| m.code.is_some() && m.message.is_some() && m.type_.is_some())
        );
    }
    let (status, body) = raw(send("NOPE", serde_json::to_vec(&current).unwrap())
        .await
        .unwrap())
    .await;
    assert_eq!(status, 404);
    let messages: Vec<ResponseMessage> = decode("refund 404", &body);
    assert_eq!(messages[0].code.as_deref(), Some("NotFound"));
    // 401 and 500 have no body, as documented.
    let res = c
        .post(format!(
            "{}/api/v3/orders/AP-1/refunds",
            sb.afterpay().base_url()
        ))
        .json(&current)
        .send()
        .await
        .unwrap();
    assert_eq!(raw(res).await, (401, Vec::new()));
    sb.afterpay().inject(Fault::Status(500), Match::Any.once());
    let res = send("AP-1", serde_json::to_vec(&current).unwrap())
        .await
        .unwrap();
    assert_eq!(raw(res).await, (500, Vec::new()));
    assert_eq!(sb.afterpay().refund_count(), 2);
}

#[tokio::test]
async fn moyasar_bodies_decode_and_generated_requests_are_accepted() {
    use moyasar_api::types::{ErrorResponse, Order, RefundRequest};

    let sb = start().await;
    let order_id = "0191f5a7-44a9-76c2-9fec-39709fdbf723";
    sb.moyasar()
        .seed_order(OrderSeed::from_minor(order_id, "SAR", 262_346));
    let c = client();
    let tx = uuid::Uuid::new_v4();
    let req = RefundRequest {
        amount: NonZeroU64::new(1000).unwrap(),
        transaction_id: Some(tx),
    };
    let wire = serde_json::to_vec(&req).unwrap();
    let send = |order: &str, key: &str, body: Vec<u8>| {
        c.post(format!(
            "{}/v1/orders/{order}/refund",
            sb.moyasar().base_url()
        ))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
    };
    let (status, body) = raw(send(order_id, MOYASAR_SECRET_KEY, wire.clone())
        .await
        .unwrap())
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let order: Order = decode("refund 200", &body);
    assert_eq!(order.id.as_deref(), Some(order_id));
    assert_eq!(order.refunded_amount, Some(1000.into()));
    let refund = order.transactions.last().unwrap();
    assert_eq!(refund.id.as_deref(), Some(tx.to_string().as_str()));
    assert_eq!(refund.type_.as_deref(), Some("refund"));
    assert_eq!(refund.amount, Some(1000.into()));

    // A replay decodes the same way.
    let (status, body) = raw(send(order_id, MOYASAR_SECRET_KEY, wire.clone())
        .await
        .unwrap())
    .await;
    assert_eq!(status, 200);
    let replay: Order = decode("replay 200", &body);
    assert_eq!(replay.transactions.len(), order.transactions.len());

    let too_much = serde_json::to_vec(&RefundRequest {
        amount: NonZeroU64::new(262_346).unwrap(),
        transaction_id: None,
    })
    .unwrap();
    let errors = [
        (send(order_id, MOYASAR_SECRET_KEY, too_much).await, 400),
        (send(order_id, "sk_wrong", wire.clone()).await, 401),
        (
            send(order_id, MOYASAR_KEY_WITHOUT_REFUND, wire.clone()).await,
            403,
        ),
        (send("missing", MOYASAR_SECRET_KEY, wire.clone()).await, 404),
        (
            send(order_id, MOYASAR_SECRET_KEY, br#"{"amount":0}"#.to_vec()).await,
            422,
        ),
    ];
    for (res, expected) in errors {
        let (status, body) = raw(res.unwrap()).await;
        assert_eq!(status, expected);
        let e: ErrorResponse = decode("refund error", &body);
        assert!(!e.message.is_empty());
        assert_eq!(expected == 422, e.errors.contains_key("amount"));
    }

    // "Initial request is still processing." decodes too.
    sb.moyasar().inject(
        Fault::Latency(Duration::from_millis(500)),
        Match::Any.once(),
    );
    let again = serde_json::to_vec(&RefundRequest {
        amount: NonZeroU64::new(1).unwrap(),
        transaction_id: Some(uuid::Uuid::new_v4()),
    })
    .unwrap();
    let first = tokio::spawn(send(order_id, MOYASAR_SECRET_KEY, again.clone()));
    wait_until(|| sb.moyasar().in_flight() == 1).await;
    let (status, body) = raw(send(order_id, MOYASAR_SECRET_KEY, again).await.unwrap()).await;
    assert_eq!(status, 400);
    let e: ErrorResponse = decode("still processing", &body);
    assert_eq!(e.message, "Initial request is still processing.");
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn openapp_bodies_decode_and_generated_requests_are_accepted() {
    use openapp_api::{ErrorResponse, RefundAcknowledgement, RefundRequest};

    let sb: Sandbox = start().await;
    sb.openapp().seed_order(
        OrderSeed::new("WS1213ASDZXC231A", "PLN", dec("100.00")).oa_order_id("OA12345678901234"),
    );
    sb.openapp()
        .seed_order(OrderSeed::new("WS-OTHER", "PLN", dec("1.00")).owner("someone-else"));
    let c = client();
    let req: RefundRequest = serde_json::from_str(
        r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables.","products":[{"id":"id123","refundedQuantity":1,"amount":1999}]}"#,
    )
    .unwrap();
    let wire = String::from_utf8(serde_json::to_vec(&req).unwrap()).unwrap();
    let (status, body) = raw(openapp_refund(&sb, &c, wire.clone()).send().await.unwrap()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ack: RefundAcknowledgement = decode("refund 200", &body);
    assert_eq!(ack.case_id.as_deref(), Some("RET-123434"));
    assert_eq!(ack.status.as_deref(), Some("REGISTERED"));

    let mut too_much = req.clone();
    too_much.case_id = "RET-2".parse().unwrap();
    too_much.amount = 100_000;
    let mut other = req.clone();
    other.oa_order_id = "WS-OTHER".into();
    other.shop_order_id = "WS-OTHER".parse().unwrap();
    let mut unknown = req.clone();
    unknown.oa_order_id = "OA-NOPE".into();
    let cases = [
        (
            serde_json::to_string(&too_much).unwrap(),
            400,
            "RefundTooMuchException",
        ),
        (wire.clone(), 409, "RefundExistsException"),
        (
            serde_json::to_string(&other).unwrap(),
            404,
            "MerchantOrderOwnershipException",
        ),
        (
            serde_json::to_string(&unknown).unwrap(),
            404,
            "OrderNotFoundException",
        ),
        (r#"{"extra":1}"#.to_owned(), 400, "ValidationException"),
    ];
    for (body, expected, exception) in cases {
        let (status, bytes) = raw(openapp_refund(&sb, &c, body).send().await.unwrap()).await;
        assert_eq!(status, expected);
        let e: ErrorResponse = decode("refund error", &bytes);
        assert_eq!(e.exception.as_deref(), Some(exception));
    }
    // 401 (unsigned) decodes as well.
    let (status, bytes) = raw(c
        .post(sb.openapp().refund_url())
        .body(wire)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, 401);
    let e: ErrorResponse = decode("refund 401", &bytes);
    assert_eq!(e.exception.as_deref(), Some("UnauthorizedException"));
    assert_eq!(sb.openapp().refund_count(), 1);
}
