//! Configuration a deploy expects: `from_env` variables (every one, missing and malformed) and
//! base URLs checked when the client is built, never a network error later.

use std::collections::HashMap;
use std::time::Duration;

use refunds::{
    AfterPayConfig, ErrorKind, MerchantReference, Money, MoyasarConfig, OpenAppConfig, OpttyConfig,
    Provider, RefundRequest, Refunds,
};

/// Every variable of every provider, valid.
fn complete() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("REFUNDS_OPTTY_BASE_URL", "https://api.qa.optty.com"),
        ("REFUNDS_OPTTY_AUTH_URL", "https://auth.qa.optty.com/"),
        ("REFUNDS_OPTTY_CLIENT_ID", "client-1"),
        ("REFUNDS_OPTTY_CLIENT_SECRET", "optty-secret"),
        ("REFUNDS_OPTTY_TIMEOUT_MS", "1500"),
        (
            "REFUNDS_AFTERPAY_BASE_URL",
            "https://api.bnpl-pt.riverty.io",
        ),
        ("REFUNDS_AFTERPAY_API_KEY", "afterpay-key"),
        ("REFUNDS_AFTERPAY_MAX_ANSWER_BYTES", "65536"),
        ("REFUNDS_MOYASAR_BASE_URL", "https://pg.mysr.dev/"),
        ("REFUNDS_MOYASAR_SECRET_KEY", "sk_test_1"),
        ("REFUNDS_OPENAPP_BASE_URL", "http://127.0.0.1:9000"),
        ("REFUNDS_OPENAPP_API_KEY", "openapp-key"),
        ("REFUNDS_OPENAPP_API_SECRET", "openapp-secret"),
        ("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES", "false"),
    ])
}

fn lookup<'a>(
    vars: &'a HashMap<&'static str, &'static str>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| vars.get(name).map(|value| (*value).to_owned())
}

fn config_error(result: Result<impl std::fmt::Debug, refunds::RefundError>) -> (String, String) {
    match result.expect_err("a configuration error").kind() {
        ErrorKind::InvalidConfig { setting, reason } => (setting.clone(), reason.clone()),
        other => panic!("not a configuration error: {other:?}"),
    }
}

#[test]
fn every_variable_is_read() {
    let vars = complete();
    let refunds = Refunds::from_lookup(&lookup(&vars)).expect("complete settings");
    // The providers written out above (every provider's variables, as the sandbox prints them,
    // are read in `the_sandbox_env_lines_configure_every_provider`).
    let named = [
        Provider::Optty,
        Provider::AfterPay,
        Provider::Moyasar,
        Provider::OpenApp,
    ];
    assert_eq!(refunds.configured(), named);

    let optty = OpttyConfig::from_lookup(&lookup(&vars)).unwrap();
    assert_eq!(optty.base_url, "https://api.qa.optty.com");
    assert_eq!(optty.auth_url, "https://auth.qa.optty.com/");
    assert_eq!(optty.client_id, "client-1");
    assert_eq!(optty.timeout, Duration::from_millis(1500));
    let afterpay = AfterPayConfig::from_lookup(&lookup(&vars)).unwrap();
    assert_eq!(afterpay.limits.max_body_bytes, 65536);
    assert_eq!(afterpay.timeout, refunds::config::DEFAULT_TIMEOUT);
    let moyasar = MoyasarConfig::from_lookup(&lookup(&vars)).unwrap();
    assert_eq!(moyasar.base_url, "https://pg.mysr.dev/");
    let openapp = OpenAppConfig::from_lookup(&lookup(&vars)).unwrap();
    assert!(!openapp.verify_response_signatures);
    // Secrets are read but never shown.
    for debug in [
        format!("{optty:?}"),
        format!("{afterpay:?}"),
        format!("{moyasar:?}"),
        format!("{openapp:?}"),
    ] {
        for secret in [
            "optty-secret",
            "afterpay-key",
            "sk_test_1",
            "openapp-secret",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

#[test]
fn a_provider_without_its_base_url_is_simply_not_configured() {
    let mut vars = complete();
    vars.retain(|name, _| name.starts_with("REFUNDS_MOYASAR_"));
    let refunds = Refunds::from_lookup(&lookup(&vars)).unwrap();
    assert_eq!(refunds.configured(), [Provider::Moyasar]);

    let (setting, reason) = config_error(Refunds::from_lookup(&|_| None));
    assert_eq!(setting, "REFUNDS_<PROVIDER>_BASE_URL");
    assert!(reason.contains("no provider"), "{reason}");
}

#[test]
fn each_missing_variable_is_named() {
    let required = complete()
        .into_keys()
        .filter(|name| {
            !name.ends_with("_BASE_URL")
                && !name.ends_with("_TIMEOUT_MS")
                && !name.ends_with("_MAX_ANSWER_BYTES")
                && !name.ends_with("_VERIFY_RESPONSE_SIGNATURES")
        })
        .collect::<Vec<_>>();
    assert_eq!(required.len(), 7);
    for missing in required {
        let mut vars = complete();
        vars.remove(missing);
        let (setting, reason) = config_error(Refunds::from_lookup(&lookup(&vars)));
        assert_eq!(setting, missing);
        assert_eq!(reason, "is not set");
        // Empty is the same as unset.
        vars.insert(missing, "  ");
        assert_eq!(
            config_error(Refunds::from_lookup(&lookup(&vars))).0,
            missing
        );
    }
}

#[test]
fn malformed_values_are_named_with_the_reason() {
    let cases = [
        ("REFUNDS_MOYASAR_BASE_URL", "pg.mysr.dev", "not a URL"),
        ("REFUNDS_MOYASAR_BASE_URL", "ftp://pg.mysr.dev", "https://"),
        (
            "REFUNDS_OPTTY_AUTH_URL",
            "https://auth.optty.com?x=1",
            "query",
        ),
        (
            "REFUNDS_AFTERPAY_BASE_URL",
            "mailto:ops@example.com",
            "https://",
        ),
        ("REFUNDS_OPENAPP_BASE_URL", "http://", "not a URL"),
        ("REFUNDS_OPTTY_TIMEOUT_MS", "1.5s", "whole number"),
        ("REFUNDS_AFTERPAY_MAX_ANSWER_BYTES", "-1", "whole number"),
        (
            "REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES",
            "maybe",
            "neither true nor false",
        ),
    ];
    for (name, value, expected) in cases {
        let mut vars = complete();
        vars.insert(name, value);
        let (setting, reason) = config_error(Refunds::from_lookup(&lookup(&vars)));
        assert_eq!(setting, name, "{value}");
        assert!(reason.contains(expected), "{name}={value}: {reason}");
    }
}

#[test]
fn base_urls_are_checked_when_the_client_is_built() {
    let cases: [(&str, Result<Refunds, refunds::RefundError>); 4] = [
        (
            "moyasar.base_url",
            Refunds::builder()
                .moyasar(MoyasarConfig::new("pg.mysr.dev", "sk"))
                .build(),
        ),
        (
            "optty.auth_url",
            Refunds::builder()
                .optty(OpttyConfig::new(
                    "https://api.optty.com",
                    "auth.optty.com",
                    "id",
                    "s",
                ))
                .build(),
        ),
        (
            "afterpay.base_url",
            Refunds::builder()
                .afterpay(AfterPayConfig::new("https://", "key"))
                .build(),
        ),
        (
            "openapp.base_url",
            Refunds::builder()
                .openapp(OpenAppConfig::new("file:///tmp/openapp", "k", "s"))
                .build(),
        ),
    ];
    for (field, result) in cases {
        let (setting, reason) = config_error(result);
        assert_eq!(setting, field, "{reason}");
    }
}

/// A trailing slash on a base URL is harmless: the refund reaches the right path.
#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_harmless() {
    use sandbox::{OrderSeed, Sandbox, SandboxConfig, credentials};
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox
        .moyasar()
        .seed_order(OrderSeed::from_minor("ord-1", "SAR", 10_000));
    sandbox
        .optty()
        .seed_order(OrderSeed::new("ORD-1", "AUD", "100.00".parse().unwrap()));
    let slash = |url: String| format!("{url}/");
    let refunds = Refunds::builder()
        .moyasar(MoyasarConfig::new(
            slash(sandbox.moyasar().base_url()),
            credentials::MOYASAR_SECRET_KEY,
        ))
        .optty(OpttyConfig::new(
            slash(sandbox.optty().base_url()),
            slash(sandbox.optty().base_url()),
            credentials::OPTTY_CLIENT_ID,
            credentials::OPTTY_CLIENT_SECRET,
        ))
        .build()
        .unwrap();
    for (provider, order, currency) in [
        (Provider::Moyasar, "ord-1", "SAR"),
        (Provider::Optty, "ORD-1", "AUD"),
    ] {
        let request = RefundRequest::new(
            provider,
            order,
            Money::parse("10.00", currency).unwrap(),
            MerchantReference::new("RF-SLASH-1").unwrap(),
        );
        let refund = refunds
            .refund(&request)
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(refund.amount, request.amount);
    }
    sandbox.shutdown().await;
}

/// The sandbox's `--print-config env` lines (`export NAME='value'`, sh-quoted) read back into a
/// map, as `eval` in sh would set them.
fn parse_export_lines(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(|line| {
            let (name, quoted) = line
                .strip_prefix("export ")
                .and_then(|rest| rest.split_once('='))
                .unwrap_or_else(|| panic!("not an export line: {line:?}"));
            let value = quoted
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("not single-quoted: {line:?}"))
                .replace(r"'\''", "'");
            (name.to_owned(), value)
        })
        .collect()
}

/// What the sandbox prints for `eval` configures the facade for every provider, and a refund
/// through each of them succeeds.
#[tokio::test]
async fn the_sandbox_env_lines_configure_every_provider() {
    use sandbox::facade_env::{FacadeEnv, env_lines};
    let sb = test_support::start_sandbox().await;
    let vars = parse_export_lines(&env_lines(&FacadeEnv::of(&sb)));
    assert_eq!(vars["REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES"], "true");
    let refunds =
        Refunds::from_lookup(&|name| vars.get(name).cloned()).expect("the sandbox's settings");
    assert_eq!(refunds.configured(), Provider::ALL);
    for provider in Provider::ALL {
        test_support::seed(&sb, provider, "ORD-ENV-1");
        let request = test_support::request(provider, "ORD-ENV-1", "10.00", "RF-ENV-1");
        let refund = refunds
            .refund(&request)
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(refund.amount, request.amount, "{provider}");
        assert_eq!(
            refund.status,
            test_support::new_refund_status(provider),
            "{provider}"
        );
    }
    sb.shutdown().await;
}
