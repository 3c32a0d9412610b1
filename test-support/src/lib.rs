//! The workspace's test fixtures, in one place: each provider's test currency, sample requests,
//! orders seeded in the sandbox, facade clients against a running sandbox, the wire body the
//! facade sends, and the requests the documented answers ([`documented`]) are mapped against.
//!
//! Used by the facade's integration tests and benchmarks, the journal's tests and demo, and the
//! soak (`cargo xtask soak`). Whatever differs by provider is a [`ByProvider`] value (a struct
//! literal with a field per provider), never a `match` with a wildcard arm: a new provider fails
//! to compile here until it says what it gets, and the tests that loop over [`Provider::ALL`]
//! then run for it too.
//!
//! ```no_run
//! # async fn demo() {
//! use refunds::Provider;
//!
//! let sb = test_support::start_sandbox().await;
//! let refunds = test_support::client(&sb);
//! for provider in Provider::ALL {
//!     test_support::seed(&sb, provider, "ORD-1");
//!     let request = test_support::request(provider, "ORD-1", "10.00", "RF-1");
//!     refunds.refund(&request).await.unwrap();
//! }
//! # }
//! ```

use std::str::FromStr;
use std::time::Duration;

use refunds::{
    AfterPayConfig, AnswerLimits, LineItem, MerchantReference, Money, MoyasarConfig, OpenAppConfig,
    OpttyConfig, Provider, RefundRequest, RefundStatus, Refunds, RefundsBuilder,
};
use rust_decimal::Decimal;
use sandbox::credentials::{
    AFTERPAY_API_KEY, MOYASAR_SECRET_KEY, OPENAPP_API_KEY, OPENAPP_API_SECRET, OPTTY_CLIENT_ID,
    OPTTY_CLIENT_SECRET,
};
use sandbox::{DEFAULT_CAPTURE_NUMBER, OrderSeed, ProviderHandle, Sandbox, SandboxConfig};

pub use refunds::ByProvider;

mod proxy;
pub use proxy::DatabaseProxy;

// ---------------------------------------------------------------------------------------------
// Money and references
// ---------------------------------------------------------------------------------------------

/// The currency each provider's test orders and requests are in: a two-decimal one everywhere
/// (Optty's amounts are `multipleOf 0.01`, OpenApp's currencies are two-decimal).
pub const CURRENCY: ByProvider<&str> = ByProvider {
    optty: "AUD",
    afterpay: "EUR",
    moyasar: "SAR",
    openapp: "PLN",
};

/// What [`seed`] captures on an order, in major units of the provider's currency.
pub const CAPTURED: &str = "100.00";

/// The test currency of `provider` ([`CURRENCY`]).
pub fn currency(provider: Provider) -> &'static str {
    CURRENCY.get(provider)
}

/// `text` as a decimal; panics if it is not one.
pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
}

/// `amount` in the test currency of `provider`; panics if it is not money there.
pub fn money(provider: Provider, amount: &str) -> Money {
    Money::parse(amount, currency(provider))
        .unwrap_or_else(|e| panic!("{amount} {}: {e}", currency(provider)))
}

/// A merchant reference; panics if `text` is not a valid one.
pub fn reference(text: &str) -> MerchantReference {
    MerchantReference::new(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Requests on seeded orders, and what the sandbox records
// ---------------------------------------------------------------------------------------------

/// OpenApp's own id of an order seeded by [`order_seed`] (`oaOrderId`); `order_id` is the
/// shop's.
pub fn oa_order_id(order_id: &str) -> String {
    format!("OA-{order_id}")
}

/// One refunded line carrying `total` (AfterPay's refund amount is the sum of its line items).
pub fn line_item(total: Money) -> LineItem {
    LineItem {
        product_id: "SKU-1".to_owned(),
        description: "Returned goods".to_owned(),
        quantity: 1,
        unit_price: total,
        unit_vat: Money::zero(total.currency()),
        vat_percent: Decimal::ZERO,
    }
}

/// `request` with what its provider needs on top of the common fields to refund an order seeded
/// by [`order_seed`]: AfterPay the seeded capture number and a line item carrying the amount
/// (without items AfterPay refunds the whole remaining capture), OpenApp its own order id.
pub fn with_provider_fields(request: RefundRequest) -> RefundRequest {
    let add: ByProvider<fn(RefundRequest) -> RefundRequest> = ByProvider {
        optty: |request| request,
        afterpay: |request| {
            let amount = request.amount;
            request
                .with_capture_number(DEFAULT_CAPTURE_NUMBER)
                .with_line_items(vec![line_item(amount)])
        },
        moyasar: |request| request,
        openapp: |request| {
            let oa_order_id = oa_order_id(&request.order_id);
            request.with_provider_order_id(oa_order_id)
        },
    };
    add.take(request.provider)(request)
}

/// A refund of `amount` (in the provider's [`currency`]) on an order seeded by [`seed`], under
/// `merchant_ref`, with [`with_provider_fields`].
pub fn request(
    provider: Provider,
    order_id: &str,
    amount: &str,
    merchant_ref: &str,
) -> RefundRequest {
    with_provider_fields(RefundRequest::new(
        provider,
        order_id,
        money(provider, amount),
        reference(merchant_ref),
    ))
}

/// The key the provider deduplicates on, as the sandbox records it (Moyasar: the UUID v5 of the
/// reference, its `transaction_id`; the others: the reference itself).
pub fn duplicate_key(provider: Provider, reference: &MerchantReference) -> String {
    let key: ByProvider<fn(&MerchantReference) -> String> = ByProvider {
        optty: |reference| reference.as_str().to_owned(),
        afterpay: |reference| reference.as_str().to_owned(),
        moyasar: |reference| reference.moyasar_transaction_id().to_string(),
        openapp: |reference| reference.as_str().to_owned(),
    };
    key.take(provider)(reference)
}

/// The status of a new refund as the provider (the sandbox) reports it: OpenApp only
/// acknowledges, the others refund at once.
pub const NEW_REFUND_STATUS: ByProvider<RefundStatus> = ByProvider {
    optty: RefundStatus::Succeeded,
    afterpay: RefundStatus::Succeeded,
    moyasar: RefundStatus::Succeeded,
    openapp: RefundStatus::Pending,
};

/// [`NEW_REFUND_STATUS`] of `provider`.
pub fn new_refund_status(provider: Provider) -> RefundStatus {
    *NEW_REFUND_STATUS.get(provider)
}

/// What a provider does with a second request under a duplicate key it has already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Replays the original answer (Optty's refundReference, Moyasar's transaction_id).
    Replays,
    /// Refuses it as a duplicate of an applied refund (OpenApp: 409 `RefundExistsException`).
    RefusesAsApplied,
    /// Documents no duplicate key (AfterPay): a client never re-sends an unknown outcome.
    NoDuplicateKey,
}

/// Each provider's [`Repeat`].
pub const REPEAT: ByProvider<Repeat> = ByProvider {
    optty: Repeat::Replays,
    afterpay: Repeat::NoDuplicateKey,
    moyasar: Repeat::Replays,
    openapp: Repeat::RefusesAsApplied,
};

/// Whether the provider's refund answer carries the order's refunded and captured totals
/// (AfterPay and Moyasar answer with the order; the others do not).
pub const REPORTS_TOTALS: ByProvider<bool> = ByProvider {
    optty: false,
    afterpay: true,
    moyasar: true,
    openapp: false,
};

/// How a provider refuses a refund beyond what is left of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverRefund {
    /// Documents its over-limit sentence, with the limit (Optty: "You can only refund amount up
    /// to AUD 30.00"): `ExceedsRefundable` with the limit.
    ExceedsWithLimit,
    /// Documents an over-refund error without the limit (OpenApp's `RefundTooMuchException`):
    /// `ExceedsRefundable` without it.
    Exceeds,
    /// Documents no over-refund code or wording that could be read (Riverty, Moyasar): a
    /// refusal of the request (`InvalidRequest`), which is what matters for the money.
    Refused,
}

/// Each provider's [`OverRefund`].
pub const OVER_REFUND: ByProvider<OverRefund> = ByProvider {
    optty: OverRefund::ExceedsWithLimit,
    afterpay: OverRefund::Refused,
    moyasar: OverRefund::Refused,
    openapp: OverRefund::Exceeds,
};

// ---------------------------------------------------------------------------------------------
// The sandbox: servers and seeded orders
// ---------------------------------------------------------------------------------------------

/// Starts the sandbox with its default configuration (ephemeral loopback ports).
pub async fn start_sandbox() -> Sandbox {
    start_sandbox_with(SandboxConfig::default()).await
}

/// Starts the sandbox with `config`.
pub async fn start_sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting the sandbox: {e}"))
}

/// The sandbox's server of `provider`.
pub fn handle(sb: &Sandbox, provider: Provider) -> &ProviderHandle {
    sb.handle(provider.as_str())
        .unwrap_or_else(|| panic!("the sandbox has no {provider} server"))
}

/// An order of `captured` (major units) in the provider's [`currency`], with what the provider
/// keeps on top (OpenApp: its own id, [`oa_order_id`]); AfterPay's carries the sandbox's
/// default capture number.
pub fn order_seed(provider: Provider, order_id: &str, captured: Decimal) -> OrderSeed {
    let seed = OrderSeed::new(order_id, currency(provider), captured);
    let add: ByProvider<fn(OrderSeed, &str) -> OrderSeed> = ByProvider {
        optty: |seed, _| seed,
        afterpay: |seed, _| seed,
        moyasar: |seed, _| seed,
        openapp: |seed, order_id| seed.oa_order_id(oa_order_id(order_id)),
    };
    add.take(provider)(seed, order_id)
}

/// Seeds an order of [`CAPTURED`] on the provider's server.
pub fn seed(sb: &Sandbox, provider: Provider, order_id: &str) {
    seed_amount(sb, provider, order_id, CAPTURED);
}

/// Seeds an order of `captured` (major units) on the provider's server.
pub fn seed_amount(sb: &Sandbox, provider: Provider, order_id: &str, captured: &str) {
    handle(sb, provider).seed_order(order_seed(provider, order_id, dec(captured)));
}

// ---------------------------------------------------------------------------------------------
// Facade clients against the sandbox
// ---------------------------------------------------------------------------------------------

/// Per-request timeout of the test clients: generous for a loaded 2-core machine, short enough
/// that a hang fails the test instead of stalling the suite.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The credentials a client is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Optty's `client_id`.
    pub optty_client_id: &'static str,
    /// Optty's `client_secret`.
    pub optty_client_secret: &'static str,
    /// AfterPay's `X-Auth-Key`.
    pub afterpay_api_key: &'static str,
    /// Moyasar's secret key.
    pub moyasar_secret_key: &'static str,
    /// OpenApp's API key.
    pub openapp_api_key: &'static str,
    /// OpenApp's HMAC secret.
    pub openapp_api_secret: &'static str,
}

/// The sandbox's demo credentials ([`sandbox::credentials`]).
pub const DEMO: Credentials = Credentials {
    optty_client_id: OPTTY_CLIENT_ID,
    optty_client_secret: OPTTY_CLIENT_SECRET,
    afterpay_api_key: AFTERPAY_API_KEY,
    moyasar_secret_key: MOYASAR_SECRET_KEY,
    openapp_api_key: OPENAPP_API_KEY,
    openapp_api_secret: OPENAPP_API_SECRET,
};

/// Credentials the sandbox does not know (OpenApp: the right key, a wrong HMAC secret).
pub const WRONG: Credentials = Credentials {
    optty_client_id: OPTTY_CLIENT_ID,
    optty_client_secret: "not-the-optty-secret",
    afterpay_api_key: "not-the-afterpay-key",
    moyasar_secret_key: "sk_test_not_a_moyasar_key",
    openapp_api_key: OPENAPP_API_KEY,
    openapp_api_secret: "not-the-openapp-secret",
};

/// How a test client is configured: [`DEMO`] credentials, [`TIMEOUT`], each provider's own
/// default answer limits, OpenApp's response signatures verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// The credentials of every provider.
    pub credentials: Credentials,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Caps on the answers' size of every provider; `None` keeps each provider's default
    /// (Moyasar's is larger: its answer is the whole order).
    pub answer_limits: Option<AnswerLimits>,
    /// Whether OpenApp's answers must carry a valid signature.
    pub verify_openapp_signatures: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            credentials: DEMO,
            timeout: TIMEOUT,
            answer_limits: None,
            verify_openapp_signatures: true,
        }
    }
}

impl ClientSettings {
    /// These settings with `credentials`.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        ClientSettings {
            credentials,
            ..self
        }
    }

    /// These settings with `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        ClientSettings { timeout, ..self }
    }
}

/// The base URL of every provider's server of `sb` (Optty's token endpoint is served by the
/// Optty server itself, at `/token` under it).
pub fn base_urls(sb: &Sandbox) -> ByProvider<String> {
    ByProvider::from_fn(|provider| handle(sb, provider).base_url())
}

/// `builder` with `provider` configured at `base_url`.
pub fn configure(
    builder: RefundsBuilder,
    provider: Provider,
    base_url: &str,
    settings: &ClientSettings,
) -> RefundsBuilder {
    type Configure = fn(RefundsBuilder, &str, &ClientSettings) -> RefundsBuilder;
    let configure: ByProvider<Configure> = ByProvider {
        optty: |builder, url, settings| {
            let credentials = &settings.credentials;
            builder.optty(limited(
                OpttyConfig::new(
                    url,
                    url,
                    credentials.optty_client_id,
                    credentials.optty_client_secret,
                )
                .with_timeout(settings.timeout),
                settings,
                OpttyConfig::with_answer_limits,
            ))
        },
        afterpay: |builder, url, settings| {
            builder.afterpay(limited(
                AfterPayConfig::new(url, settings.credentials.afterpay_api_key)
                    .with_timeout(settings.timeout),
                settings,
                AfterPayConfig::with_answer_limits,
            ))
        },
        moyasar: |builder, url, settings| {
            builder.moyasar(limited(
                MoyasarConfig::new(url, settings.credentials.moyasar_secret_key)
                    .with_timeout(settings.timeout),
                settings,
                MoyasarConfig::with_answer_limits,
            ))
        },
        openapp: |builder, url, settings| {
            let credentials = &settings.credentials;
            builder.openapp(limited(
                OpenAppConfig::new(
                    url,
                    credentials.openapp_api_key,
                    credentials.openapp_api_secret,
                )
                .with_timeout(settings.timeout)
                .with_verify_response_signatures(settings.verify_openapp_signatures),
                settings,
                OpenAppConfig::with_answer_limits,
            ))
        },
    };
    configure.take(provider)(builder, base_url, settings)
}

/// `config` with the settings' answer limits, if they set any.
fn limited<C>(config: C, settings: &ClientSettings, with: fn(C, AnswerLimits) -> C) -> C {
    match settings.answer_limits {
        Some(limits) => with(config, limits),
        None => config,
    }
}

/// A client builder with every provider configured at `urls`.
pub fn builder(urls: &ByProvider<String>, settings: &ClientSettings) -> RefundsBuilder {
    Provider::ALL
        .into_iter()
        .fold(Refunds::builder(), |b, provider| {
            configure(b, provider, urls.get(provider), settings)
        })
}

/// A client with every provider configured at `urls`; panics if it cannot be built.
pub fn client_at(urls: &ByProvider<String>, settings: &ClientSettings) -> Refunds {
    builder(urls, settings)
        .build()
        .unwrap_or_else(|e| panic!("building the facade client: {e}"))
}

/// A client of every provider of `sb`, with the [`ClientSettings::default`] settings.
pub fn client(sb: &Sandbox) -> Refunds {
    client_with(sb, &ClientSettings::default())
}

/// A client of every provider of `sb`, with `settings`.
pub fn client_with(sb: &Sandbox, settings: &ClientSettings) -> Refunds {
    client_at(&base_urls(sb), settings)
}

/// A client with only `provider` configured, at `base_url`.
pub fn client_of(provider: Provider, base_url: &str, settings: &ClientSettings) -> Refunds {
    configure(Refunds::builder(), provider, base_url, settings)
        .build()
        .unwrap_or_else(|e| panic!("building the facade client: {e}"))
}

/// A client with only `provider` of `sb` configured.
pub fn client_for(sb: &Sandbox, provider: Provider, settings: &ClientSettings) -> Refunds {
    client_of(provider, &handle(sb, provider).base_url(), settings)
}

// ---------------------------------------------------------------------------------------------
// Wire bodies
// ---------------------------------------------------------------------------------------------

fn wire(request: &RefundRequest, pretty: bool) -> Option<String> {
    refunds::providers::refund_body_json(request, pretty).ok()
}

/// The JSON text of the body the facade sends for `request`
/// (`providers::<p>::transformers::refund_body`), if its adapter can build one.
pub fn wire_body(request: &RefundRequest) -> Option<String> {
    wire(request, false)
}

/// [`wire_body`], pretty-printed (amounts keep their decimals: the generated types write them
/// from their text, never through `f64`).
pub fn wire_body_pretty(request: &RefundRequest) -> Option<String> {
    wire(request, true)
}

// ---------------------------------------------------------------------------------------------
// Documented answers
// ---------------------------------------------------------------------------------------------

/// The requests that go with each provider's documented answers
/// (`specs/<provider>/examples/refund.<status>[.<label>].json`).
pub mod documented {
    use refunds::{ByProvider, LineItem, MerchantReference, Money, Provider, RefundRequest};
    use rust_decimal::Decimal;

    /// The id of the refund transaction in Moyasar's documented answer; its reference is
    /// unknowable, so [`answer`] puts the one the request derives in its place.
    pub const MOYASAR_EXAMPLE_REFUND_ID: &str = "f351a2a3-97c4-4f12-add3-80c1044091f5";

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency).unwrap_or_else(|e| panic!("{amount} {currency}: {e}"))
    }

    /// A line of `quantity` x `unit` (VAT `vat` per unit, at 20 %, or none when `vat` is `"0"`),
    /// described as `"<product> description"`.
    pub fn item(product: &str, quantity: u32, unit: &str, vat: &str, currency: &str) -> LineItem {
        LineItem {
            product_id: product.to_owned(),
            description: format!("{product} description"),
            quantity,
            unit_price: money(unit, currency),
            unit_vat: money(vat, currency),
            // A goodwill item carries no VAT.
            vat_percent: if vat == "0" {
                Decimal::ZERO
            } else {
                Decimal::new(20, 0)
            },
        }
    }

    /// The request each provider's documented answers are mapped against: order `ORDER-1`, the
    /// documented currency, amount and reference, AfterPay's capture number and line of
    /// 5 x 12.00 EUR, OpenApp's order id.
    pub fn request(provider: Provider) -> RefundRequest {
        let (currency, amount, reference) = *ByProvider {
            optty: ("AUD", "100", "TgEHcPtpN2HSrTMK-0"),
            afterpay: ("EUR", "60.00", "RF-1"),
            // The reference whose derived transaction_id is the one in Moyasar's example is
            // unknowable: see `answer`.
            moyasar: ("SAR", "2623.46", "RF-1"),
            openapp: ("PLN", "19.99", "RET-123434"),
        }
        .get(provider);
        let request = RefundRequest::new(
            provider,
            "ORDER-1",
            money(amount, currency),
            MerchantReference::new(reference).expect("a documented reference"),
        );
        let add: ByProvider<fn(RefundRequest) -> RefundRequest> = ByProvider {
            optty: |request| request,
            afterpay: |request| {
                request
                    .with_capture_number("000000001")
                    .with_line_items(vec![item("0001", 5, "12.00", "2.00", "EUR")])
            },
            moyasar: |request| request,
            openapp: |request| request.with_provider_order_id("OA12345678901234"),
        };
        add.take(provider)(request)
    }

    /// `request` with what its provider needs on top of the common fields, with the
    /// documented values: AfterPay capture number `000000001` and one goodwill line carrying the
    /// amount, OpenApp's order id `OA12345678901234`.
    pub fn with_provider_fields(request: RefundRequest) -> RefundRequest {
        let add: ByProvider<fn(RefundRequest) -> RefundRequest> = ByProvider {
            optty: |request| request,
            // AfterPay takes its amount only as line items: one goodwill item here.
            afterpay: |request| {
                let amount = request.amount.amount().to_string();
                let currency = request.amount.currency().code();
                request
                    .with_capture_number("000000001")
                    .with_line_items(vec![item("goodwill", 1, &amount, "0", currency)])
            },
            moyasar: |request| request,
            openapp: |request| request.with_provider_order_id("OA12345678901234"),
        };
        add.take(request.provider)(request)
    }

    /// The success answer of a provider that documents none: OpenApp's, as the sandbox
    /// acknowledges a refund (OpenApp's docs show no response body).
    pub const UNDOCUMENTED_SUCCESS: ByProvider<Option<&str>> = ByProvider {
        optty: None,
        afterpay: None,
        moyasar: None,
        openapp: Some(r#"{"caseId":"RET-123434","status":"REGISTERED"}"#),
    };

    /// The provider's documented 200 answer to a refund (the first
    /// `specs/<provider>/examples/refund.200*.json`, or [`UNDOCUMENTED_SUCCESS`]), made to
    /// answer [`request`]`(provider)` with [`answer`].
    pub fn success_answer(provider: Provider) -> String {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../specs")
            .join(provider.as_str())
            .join("examples");
        let mut documented: Vec<_> = std::fs::read_dir(&examples)
            .unwrap_or_else(|e| panic!("{}: {e}", examples.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("refund.200") && name.ends_with(".json"))
            })
            .collect();
        documented.sort();
        let text = match (documented.first(), UNDOCUMENTED_SUCCESS.get(provider)) {
            (Some(path), None) => {
                std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
            (None, Some(text)) => (*text).to_owned(),
            (found, stated) => panic!(
                "{provider}: documented 200 {found:?}, undocumented success {stated:?}: \
                 exactly one of them"
            ),
        };
        answer(&request(provider), &text)
    }

    /// A documented answer `text` of `request.provider`, made to answer `request`: Moyasar's
    /// refund transaction gets the id `request` derives ([`MOYASAR_EXAMPLE_REFUND_ID`]
    /// replaced), so the example maps to a refund rather than "not listed".
    pub fn answer(request: &RefundRequest, text: &str) -> String {
        let answer: ByProvider<fn(&RefundRequest, &str) -> String> = ByProvider {
            optty: |_, text| text.to_owned(),
            afterpay: |_, text| text.to_owned(),
            moyasar: |request, text| {
                let ours = request.merchant_reference.moyasar_transaction_id();
                text.replace(MOYASAR_EXAMPLE_REFUND_ID, &ours.to_string())
            },
            openapp: |_, text| text.to_owned(),
        };
        answer.take(request.provider)(request, text)
    }
}

/// The process's peak resident set size so far (`VmHWM` in `/proc/self/status`), in kB: for the
/// memory tests, each alone in its test binary (the mark belongs to the whole process and only
/// ever grows).
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Panics unless the peak resident set size grew by less than `max_kb` since it was `before_kb`
/// ([`peak_rss_kb`] read before the test started anything); prints both readings.
pub fn assert_peak_growth_below(before_kb: u64, max_kb: u64) {
    let after = peak_rss_kb();
    let growth = after.saturating_sub(before_kb);
    eprintln!("VmHWM before {before_kb} kB, after {after} kB, growth {growth} kB");
    assert!(
        growth < max_kb,
        "peak RSS grew by {growth} kB (from {before_kb} to {after}), more than {max_kb} kB"
    );
}
