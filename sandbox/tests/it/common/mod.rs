//! Helpers shared by the sandbox's integration tests.

use std::str::FromStr;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};
use rust_decimal::Decimal;
use sandbox::credentials::*;
use sandbox::{ProviderHandle, Sandbox, SandboxConfig};

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub async fn start() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Status and body text.
pub async fn read(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

pub async fn optty_token(sb: &Sandbox, c: &Client) -> String {
    let res = c
        .post(sb.optty().token_url())
        .form(&[
            ("client_id", OPTTY_CLIENT_ID),
            ("client_secret", OPTTY_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "api-user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

pub fn optty_body(reference: &str, amount: &str, currency: &str) -> String {
    format!(
        r#"{{"refundReference":"{reference}","refundAmount":{{"amount":{amount},"currency":"{currency}"}},"refundDescription":"Please refund this order"}}"#
    )
}

pub fn optty_refund(
    sb: &Sandbox,
    c: &Client,
    token: &str,
    order: &str,
    body: String,
) -> RequestBuilder {
    c.post(format!("{}/orders/{order}/refund", sb.optty().base_url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
}

pub fn afterpay_refund(sb: &Sandbox, c: &Client, order: &str, body: String) -> RequestBuilder {
    c.post(format!(
        "{}/api/v3/orders/{order}/refunds",
        sb.afterpay().base_url()
    ))
    .header("X-Auth-Key", AFTERPAY_API_KEY)
    .header("content-type", "application/json")
    .body(body)
}

pub fn afterpay_body(
    capture: &str,
    gross: &str,
    quantity: &str,
    reference: Option<&str>,
) -> String {
    let reference = reference
        .map(|r| format!(r#","transactionReference":"{r}""#))
        .unwrap_or_default();
    format!(
        r#"{{"captureNumber":"{capture}","items":[{{"productId":"0001","description":"Item 1","netUnitPrice":{gross},"grossUnitPrice":{gross},"quantity":{quantity},"vatPercent":0,"vatAmount":0}}]{reference}}}"#
    )
}

pub fn moyasar_refund(sb: &Sandbox, c: &Client, order: &str, body: String) -> RequestBuilder {
    c.post(format!(
        "{}/v1/orders/{order}/refund",
        sb.moyasar().base_url()
    ))
    .bearer_auth(MOYASAR_SECRET_KEY)
    .header("content-type", "application/json")
    .body(body)
}

/// A request to OpenApp's refund route signed with the demo credentials.
pub fn openapp_refund(sb: &Sandbox, c: &Client, body: String) -> RequestBuilder {
    let sig = sb.openapp().sign_refund(body.as_bytes());
    c.post(sb.openapp().refund_url())
        .header("authorization", sig.authorization)
        .header("x-app-signature", sig.signature)
        .header("content-type", "application/json")
        .body(body)
}

pub fn openapp_body(oa: &str, shop: &str, amount: i64, case_id: &str) -> String {
    format!(
        r#"{{"oaOrderId":"{oa}","shopOrderId":"{shop}","currency":"PLN","amount":{amount},"reason":"RETURNED","caseId":"{case_id}"}}"#
    )
}

/// Polls `cond` (bounded, 5 s) instead of sleeping a guessed time.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The sandbox's server of the provider named `name` (`optty`, `afterpay`, ...).
pub fn provider<'a>(sb: &'a Sandbox, name: &str) -> &'a ProviderHandle {
    sb.handle(name)
        .unwrap_or_else(|| panic!("the sandbox has no server named {name:?}"))
}
