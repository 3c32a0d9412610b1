//! What the benchmarks share: the loopback sandbox, one refund built two ways (the facade's
//! [`RefundRequest`], and the generated wire body a service would send without the facade), a
//! facade client and a direct generated client per provider, and fresh orders on demand.
//!
//! Every benchmark target uses a different part of this module.
#![allow(dead_code)]

mod derived;

pub use derived::Derived;

use std::num::NonZeroU64;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use refunds::signing::{openapp_signature, verify_openapp_signature};
use refunds::{
    ByProvider, MerchantReference, Money, Provider, RefundRequest, Refunds, SecretString,
};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;
use sandbox::credentials::{
    AFTERPAY_API_KEY, MOYASAR_SECRET_KEY, OPENAPP_API_KEY, OPENAPP_API_SECRET, OPTTY_CLIENT_ID,
    OPTTY_CLIENT_SECRET,
};
use sandbox::{DEFAULT_CAPTURE_NUMBER, ProviderHandle, Sandbox};
use test_support::ClientSettings;

/// Per-request timeout of every client, facade and direct alike.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Every benchmarked refund is of this many minor units (1.00 in each provider's currency).
pub const AMOUNT_MINOR: i64 = 100;

/// OpenApp's request and response signature header.
const SIGNATURE_HEADER: &str = "x-app-signature";

/// The currency each provider's orders are in (OpenApp and Optty need a 2-decimal one).
pub fn currency(provider: Provider) -> &'static str {
    test_support::currency(provider)
}

/// The refunded amount as money: parsed once per provider and then copied, as a service holds
/// its amounts as typed values (the direct path's amount is a `Decimal` constant likewise), so
/// parsing text into money is not counted as the facade's cost.
pub fn amount(provider: Provider) -> Money {
    static AMOUNTS: OnceLock<ByProvider<Money>> = OnceLock::new();
    *AMOUNTS
        .get_or_init(|| {
            ByProvider::from_fn(|provider| {
                Money::parse("1.00", currency(provider))
                    .expect("1.00 is money in every currency used")
            })
        })
        .get(provider)
}

/// The facade's request for one refund of [`AMOUNT_MINOR`] on `order_id`, with what each provider
/// needs on top (AfterPay: capture number and a line item carrying the amount; OpenApp: its own
/// order id), as a service builds it.
pub fn facade_request(provider: Provider, order_id: &str, reference: &str) -> RefundRequest {
    let reference = MerchantReference::new(reference).expect("bench references are valid");
    test_support::with_provider_fields(RefundRequest::new(
        provider,
        order_id,
        amount(provider),
        reference,
    ))
}

// ---------------------------------------------------------------------------------------------
// The same refund as each generated wire body, built the way a service without the facade would
// ---------------------------------------------------------------------------------------------

/// [`AMOUNT_MINOR`] in major units (every currency used has two decimals).
fn major() -> Decimal {
    Decimal::new(AMOUNT_MINOR, 2)
}

/// Optty's body, straight from the generated types.
pub fn optty_body(reference: &str) -> optty_api::types::OrderRefundDto {
    use optty_api::types::{OrderRefundAmount, OrderRefundDto};
    OrderRefundDto {
        is_activated_via_o_auth: None,
        refund_amount: OrderRefundAmount {
            amount: major().into(),
            currency: currency(Provider::Optty).to_owned(),
        },
        refund_description: "Refund".to_owned(),
        refund_reference: reference.to_owned(),
    }
}

/// AfterPay's body, straight from the generated types.
pub fn afterpay_body(reference: &str) -> afterpay_api::types::RefundOrderRequest {
    use afterpay_api::types::{RefundOrderItem, RefundOrderItemRefundType, RefundOrderRequest};
    let price = major();
    RefundOrderRequest {
        capture_number: DEFAULT_CAPTURE_NUMBER
            .try_into()
            .expect("the capture number fits"),
        items: vec![RefundOrderItem {
            description: "Returned goods".to_owned(),
            gross_unit_price: price.into(),
            group_id: None,
            line_number: Some(1),
            net_unit_price: price.into(),
            product_id: "SKU-1".try_into().expect("the product id fits"),
            quantity: Decimal::ONE.into(),
            refund_type: Some(RefundOrderItemRefundType::Refund),
            type_: None,
            unit_code: None,
            vat_amount: Decimal::new(0, 2).into(),
            vat_category: None,
            vat_percent: Decimal::ZERO.into(),
        }],
        order_items: Vec::new(),
        transaction_reference: Some(reference.try_into().expect("the reference fits")),
        parent_transaction_reference: None,
        credit_note_number: None,
        merchant_id: None,
    }
}

/// Moyasar's body: the amount in minor units and a UUID v5 of the reference as idempotency key.
pub fn moyasar_body(reference: &str) -> moyasar_api::types::RefundRequest {
    moyasar_api::types::RefundRequest {
        amount: NonZeroU64::new(AMOUNT_MINOR as u64).expect("positive"),
        transaction_id: Some(uuid::Uuid::new_v5(
            &refunds::reference::MOYASAR_TRANSACTION_NAMESPACE,
            reference.as_bytes(),
        )),
    }
}

/// OpenApp's body (typify types; OpenApp has no generated client).
pub fn openapp_body(order_id: &str, reference: &str) -> openapp_api::RefundRequest {
    openapp_api::RefundRequest {
        oa_order_id: test_support::oa_order_id(order_id),
        shop_order_id: order_id.try_into().expect("the order id fits"),
        currency: currency(Provider::OpenApp).to_owned(),
        amount: AMOUNT_MINOR as u64,
        case_id: reference.try_into().expect("the reference fits"),
        reason: openapp_api::Reason::Other,
        notes: None,
        products: Vec::new(),
    }
}

/// Panics unless the facade and the direct path put the same bytes on the wire for a refund:
/// the comparison is of the same refund.
pub fn assert_same_wire_body(provider: Provider) {
    let (order, reference) = ("ORD-CHECK", "BENCH-CHECK-1");
    let request = facade_request(provider, order, reference);
    request.validate().expect("the bench request is valid");
    let facade = test_support::wire_body(&request).expect("the facade builds a body");
    let direct: ByProvider<fn(&str, &str) -> serde_json::Result<String>> = ByProvider {
        optty: |_, reference| serde_json::to_string(&optty_body(reference)),
        afterpay: |_, reference| serde_json::to_string(&afterpay_body(reference)),
        moyasar: |_, reference| serde_json::to_string(&moyasar_body(reference)),
        openapp: |order, reference| serde_json::to_string(&openapp_body(order, reference)),
    };
    assert_eq!(
        facade,
        direct.take(provider)(order, reference).unwrap(),
        "{provider}: the facade and the direct client must send the same refund"
    );
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// The sandbox's server of `provider`.
pub fn handle(sb: &Sandbox, provider: Provider) -> &ProviderHandle {
    test_support::handle(sb, provider)
}

/// Starts the four emulators on ephemeral loopback ports.
pub async fn start_sandbox() -> Sandbox {
    test_support::start_sandbox().await
}

/// Seeds order `order_id` with `captured_minor` minor units captured.
pub fn seed(sb: &Sandbox, provider: Provider, order_id: &str, captured_minor: i64) {
    let captured = Decimal::new(captured_minor, 2);
    handle(sb, provider).seed_order(test_support::order_seed(provider, order_id, captured));
}

/// A facade client with only `provider` configured, pointed at the sandbox.
pub fn facade_client(sb: &Sandbox, provider: Provider) -> Refunds {
    test_support::client_for(
        sb,
        provider,
        &ClientSettings::default().with_timeout(TIMEOUT),
    )
}

/// One refund through the facade; panics unless it is applied.
pub async fn facade_refund(refunds: &Refunds, provider: Provider, order_id: &str, reference: &str) {
    let request = facade_request(provider, order_id, reference);
    if let Err(err) = refunds.refund(&request).await {
        panic!("{provider}: facade refund {reference} on {order_id} failed: {err} ({err:?})");
    }
}

/// A reqwest client as the facade builds its own: the same timeout, `headers` by default.
fn http_client(headers: HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .default_headers(headers)
        .build()
        .expect("a reqwest client")
}

fn sensitive(value: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(value).expect("a header value");
    value.set_sensitive(true);
    value
}

/// The generated client of a provider, called directly: what a service writes without the
/// facade. Authentication is a default header (Optty: a token fetched once, up front).
pub enum Direct {
    /// progenitor's Optty client, with a bearer token.
    Optty(optty_api::Client),
    /// progenitor's AfterPay client, with `X-Auth-Key`.
    AfterPay(afterpay_api::Client),
    /// progenitor's Moyasar client, with the secret key as bearer token.
    Moyasar(moyasar_api::Client),
    /// reqwest with the generated body type, signed with the facade's public signing function;
    /// the answer is decoded into the generated acknowledgement and its signature verified,
    /// as OpenApp's notes ask of any client.
    OpenApp {
        /// The HTTP client.
        http: reqwest::Client,
        /// The refund endpoint.
        url: String,
        /// OpenApp's HMAC secret.
        secret: SecretString,
    },
}

impl Direct {
    /// The direct client of `provider` against the sandbox.
    pub async fn new(sb: &Sandbox, provider: Provider) -> Direct {
        /// Which generated client a provider is called with.
        #[derive(Clone, Copy)]
        enum Kind {
            Optty,
            AfterPay,
            Moyasar,
            OpenApp,
        }
        let kind = ByProvider {
            optty: Kind::Optty,
            afterpay: Kind::AfterPay,
            moyasar: Kind::Moyasar,
            openapp: Kind::OpenApp,
        };
        match kind.get(provider) {
            Kind::Optty => {
                use optty_api::types::{TokenRequest, TokenRequestGrantType, TokenRequestScope};
                let base_url = sb.optty().base_url();
                let anonymous =
                    optty_api::Client::new_with_client(&base_url, http_client(HeaderMap::new()));
                let token = anonymous
                    .create_access_token(&TokenRequest {
                        client_id: OPTTY_CLIENT_ID.to_owned(),
                        client_secret: OPTTY_CLIENT_SECRET.to_owned(),
                        grant_type: TokenRequestGrantType::ClientCredentials,
                        scope: TokenRequestScope::ApiUser,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("optty token: {e}"))
                    .into_inner();
                let mut headers = HeaderMap::new();
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&format!("Bearer {}", token.access_token)),
                );
                Direct::Optty(optty_api::Client::new_with_client(
                    &base_url,
                    http_client(headers),
                ))
            }
            Kind::AfterPay => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    HeaderName::from_static("x-auth-key"),
                    sensitive(AFTERPAY_API_KEY),
                );
                Direct::AfterPay(afterpay_api::Client::new_with_client(
                    &sb.afterpay().base_url(),
                    http_client(headers),
                ))
            }
            Kind::Moyasar => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&format!("Bearer {MOYASAR_SECRET_KEY}")),
                );
                Direct::Moyasar(moyasar_api::Client::new_with_client(
                    &sb.moyasar().base_url(),
                    http_client(headers),
                ))
            }
            Kind::OpenApp => Direct::OpenApp {
                http: http_client(HeaderMap::new()),
                url: format!(
                    "{}{}",
                    sb.openapp().base_url(),
                    openapp_api::operations::refund_order::PATH
                ),
                secret: SecretString::from(OPENAPP_API_SECRET),
            },
        }
    }

    /// One refund through the generated client; panics unless it is applied.
    pub async fn refund(&self, order_id: &str, reference: &str) {
        let failed = |e: &dyn std::fmt::Display| -> ! {
            panic!("direct refund {reference} on {order_id} failed: {e}")
        };
        match self {
            Direct::Optty(client) => {
                let body = optty_body(reference);
                client
                    .refunds_controller_refund_order(order_id, &body)
                    .await
                    .unwrap_or_else(|e| failed(&e));
            }
            Direct::AfterPay(client) => {
                let body = afterpay_body(reference);
                client
                    .refund_order(order_id, &body)
                    .await
                    .unwrap_or_else(|e| failed(&e));
            }
            Direct::Moyasar(client) => {
                let body = moyasar_body(reference);
                client
                    .refund_order(order_id, &body)
                    .await
                    .unwrap_or_else(|e| failed(&e));
            }
            Direct::OpenApp { http, url, secret } => {
                openapp_direct(http, url, secret, order_id, reference)
                    .await
                    .unwrap_or_else(|e| failed(&e));
            }
        }
    }
}

/// OpenApp by hand: sign, send, read, verify the answer's signature, decode it.
async fn openapp_direct(
    http: &reqwest::Client,
    url: &str,
    secret: &SecretString,
    order_id: &str,
    reference: &str,
) -> Result<openapp_api::RefundAcknowledgement, String> {
    use openapp_api::operations::refund_order::{METHOD, PATH};
    let body = serde_json::to_vec(&openapp_body(order_id, reference)).map_err(|e| e.to_string())?;
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let signed = openapp_signature(
        OPENAPP_API_KEY,
        secret,
        METHOD,
        PATH,
        epoch_ms,
        &nonce,
        &body,
    );
    let response = http
        .post(url)
        .header(AUTHORIZATION, sensitive(&signed.authorization))
        .header(SIGNATURE_HEADER, signed.signature)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (authorization, signature) = (header("authorization"), header(SIGNATURE_HEADER));
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let (Some(authorization), Some(signature)) = (authorization, signature) else {
        return Err("unsigned answer".to_owned());
    };
    if !verify_openapp_signature(secret, &authorization, &bytes, &signature) {
        return Err("badly signed answer".to_owned());
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A multi-threaded tokio runtime with as many workers as CPUs (tokio's default), shared by the
/// sandbox and the clients, as on one loopback host.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
