//! No secret put into a config or an error ever shows in `Debug` or `Display`.

use std::time::Duration;

use refunds::{
    AfterPayConfig, ErrorKind, ExposeSecret, MoyasarConfig, OpenAppConfig, OpttyConfig, Provider,
    ProviderMessage, RefundError,
};

const SECRETS: &[&str] = &[
    "optty-client-secret-9f8e7d",
    "afterpay-x-auth-key-1a2b3c",
    "sk_test_moyasar_4d5e6f",
    "openapp-api-key-7a8b9c",
    "openapp-api-secret-0d1e2f",
];

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret {secret:?} leaked in {text}");
        // Not even a recognisable fragment.
        assert!(
            !text.contains(&secret[..12]),
            "fragment of {secret:?} leaked in {text}"
        );
    }
}

#[test]
fn config_debug_redacts_every_secret() {
    let optty = OpttyConfig::new(
        "https://api.qa.optty.com",
        "https://auth.qa.optty.com/token",
        "client-id-visible",
        SECRETS[0],
    );
    let afterpay = AfterPayConfig::new("https://api.bnpl-pt.riverty.io", SECRETS[1].to_owned());
    let moyasar =
        MoyasarConfig::new("https://pg.mysr.dev", SECRETS[2]).with_timeout(Duration::from_secs(5));
    let openapp = OpenAppConfig::new("http://127.0.0.1:9999", SECRETS[3], SECRETS[4])
        .with_verify_response_signatures(false);

    for debug in [
        format!("{optty:?}"),
        format!("{optty:#?}"),
        format!("{afterpay:?}"),
        format!("{afterpay:#?}"),
        format!("{moyasar:?}"),
        format!("{openapp:?}"),
        format!("{openapp:#?}"),
        format!("{:?}", optty.clone()),
        format!("{:?}", (&optty, &afterpay, &moyasar, &openapp)),
    ] {
        assert_no_secret(&debug);
        assert!(debug.contains("[REDACTED]"), "{debug}");
    }

    // The non-secret settings stay visible, so the Debug output is useful.
    let debug = format!("{optty:?}");
    assert!(debug.contains("client-id-visible"));
    assert!(debug.contains("https://api.qa.optty.com"));
    assert!(debug.contains("30s"), "default timeout 30 s: {debug}");
    assert!(format!("{moyasar:?}").contains("5s"));

    // The secrets are still there for the transport.
    assert_eq!(optty.client_secret.expose_secret(), SECRETS[0]);
    assert_eq!(afterpay.api_key.expose_secret(), SECRETS[1]);
    assert_eq!(moyasar.secret_key.expose_secret(), SECRETS[2]);
    assert_eq!(openapp.api_key.expose_secret(), SECRETS[3]);
    assert_eq!(openapp.api_secret.expose_secret(), SECRETS[4]);
    assert!(!openapp.verify_response_signatures);
    assert!(
        OpenAppConfig::new("http://x", "k", "s").verify_response_signatures,
        "verification is on by default"
    );
}

#[test]
fn errors_carry_no_secrets() {
    // Errors of every kind a transport builds after using the credentials.
    let errors = [
        RefundError::new(ErrorKind::Unauthorized)
            .with_provider(Provider::Optty)
            .with_http_status(401)
            .with_provider_message("Unauthorized"),
        RefundError::new(ErrorKind::Forbidden)
            .with_provider(Provider::Moyasar)
            .with_http_status(403)
            .with_provider_message("Unauthorized"),
        RefundError::new(ErrorKind::Unauthorized)
            .with_provider(Provider::AfterPay)
            .with_http_status(401),
        RefundError::new(ErrorKind::Protocol)
            .with_provider(Provider::OpenApp)
            .with_http_status(200)
            .with_provider_message("response signature did not verify"),
        RefundError::new(ErrorKind::InvalidRequest {
            field: "captureNumber".into(),
            reason: "required".into(),
        })
        .with_provider(Provider::AfterPay)
        .with_http_status(400)
        .with_provider_messages(vec![ProviderMessage {
            code: Some("400.001".into()),
            message: "Capture number is required".into(),
            field: Some("captureNumber".into()),
        }]),
        RefundError::invalid("merchant_reference", "too long"),
    ];
    for error in &errors {
        assert_no_secret(&format!("{error}"));
        assert_no_secret(&format!("{error:?}"));
        assert_no_secret(&format!("{error:#?}"));
    }
}
