//! `cargo run -p sandbox`: the four refund emulators on loopback, seeded
//! with demo orders, until Ctrl-C.
//!
//! ```text
//! sandbox [--port-base N]        serve (or env SANDBOX_PORT_BASE; default: ephemeral ports)
//! sandbox sign [--base-url URL] [JSON-BODY]
//!                                print a freshly signed curl command for OpenApp's refund
//!                                route (valid 60 s, once: the nonce is single-use)
//! ```

use std::process::ExitCode;
use std::time::SystemTime;

use rust_decimal::Decimal;
use sandbox::credentials::*;
use sandbox::openapp::{self, REFUND_PATH};
use sandbox::{OrderSeed, RefundStatus, Sandbox, SandboxConfig};

const OPENAPP_DEMO_BODY: &str = r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables.","products":[{"id":"id123","refundedQuantity":1,"amount":1999}]}"#;

const USAGE: &str = "usage: sandbox [--port-base N] | sandbox sign [--base-url URL] [JSON-BODY]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("sign") => sign_command(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => serve_command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_command(args: &[String]) -> anyhow::Result<()> {
    let port_base = match args {
        [] => std::env::var("SANDBOX_PORT_BASE").ok(),
        [flag, n] if flag == "--port-base" => Some(n.clone()),
        _ => anyhow::bail!("{USAGE}"),
    };
    let port_base = port_base
        .map(|p| p.parse::<u16>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("port base: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(SandboxConfig {
        port_base,
        ..SandboxConfig::default()
    }))
}

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

async fn serve(config: SandboxConfig) -> anyhow::Result<()> {
    let sb = Sandbox::start(config).await?;
    let demo = [
        (
            "Optty",
            &*sb.optty,
            vec![
                OrderSeed::new("ORD-1001", "AUD", d(10000, 2)),
                OrderSeed::new("ORD-1002", "AUD", d(10000, 2)).refunded(d(7502, 2)),
                OrderSeed::new("ORD-1003", "AUD", d(5000, 2)).refund_status(RefundStatus::Pending),
            ],
        ),
        (
            "AfterPay",
            &*sb.afterpay,
            vec![OrderSeed::new("AP-1001", "EUR", d(30000, 2)).capture_number("000000001")],
        ),
        (
            "Moyasar",
            &*sb.moyasar,
            vec![
                OrderSeed::from_minor("0191f5a7-44a9-76c2-9fec-39709fdbf723", "SAR", 262_346),
                OrderSeed::new("K-1001", "KWD", d(12_345, 3)),
            ],
        ),
        (
            "OpenApp",
            &*sb.openapp,
            vec![
                OrderSeed::new("WS1213ASDZXC231A", "PLN", d(10000, 2))
                    .oa_order_id("OA12345678901234"),
            ],
        ),
    ];
    for (name, handle, seeds) in demo {
        println!("{name}: {}", handle.base_url());
        for seed in seeds {
            let state = handle.try_seed_order(seed)?;
            println!(
                "  order {} {} captured {} refunded {}",
                state.id, state.currency, state.captured, state.refunded
            );
        }
    }

    let optty = sb.optty.base_url();
    let afterpay = sb.afterpay.base_url();
    let moyasar = sb.moyasar.base_url();
    println!(
        r#"
Credentials
  Optty     client_id={OPTTY_CLIENT_ID} client_secret={OPTTY_CLIENT_SECRET}
  AfterPay  X-Auth-Key: {AFTERPAY_API_KEY}
  Moyasar   Authorization: Bearer {MOYASAR_SECRET_KEY}   (no refund permission: {MOYASAR_KEY_WITHOUT_REFUND})
  OpenApp   api key {OPENAPP_API_KEY}, api secret {OPENAPP_API_SECRET}

Admin (every server): POST /__admin/orders {{"id":..,"currency":..,"captured":..}}, GET /__admin/orders[/{{id}}]

Try it
# Optty: token, then refund
TOKEN=$(curl -s {optty}/token -d client_id={OPTTY_CLIENT_ID} -d client_secret={OPTTY_CLIENT_SECRET} -d grant_type=client_credentials -d scope=api-user | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -s {optty}/orders/ORD-1001/refund -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{{"refundReference":"demo-1","refundAmount":{{"amount":10.00,"currency":"AUD"}},"refundDescription":"Demo refund"}}'

# AfterPay
curl -s {afterpay}/api/v3/orders/AP-1001/refunds -H 'X-Auth-Key: {AFTERPAY_API_KEY}' -H 'Content-Type: application/json' -d '{{"captureNumber":"000000001","transactionReference":"demo-1","items":[{{"productId":"0001","description":"Item 1 description","netUnitPrice":10.00,"grossUnitPrice":12.00,"quantity":5.0,"vatPercent":20.00,"vatAmount":2.00}}]}}'

# Moyasar
curl -s {moyasar}/v1/orders/0191f5a7-44a9-76c2-9fec-39709fdbf723/refund -H 'Authorization: Bearer {MOYASAR_SECRET_KEY}' -H 'Content-Type: application/json' -d '{{"amount":1000,"transaction_id":"f351a2a3-97c4-4f12-add3-80c1044091f5"}}'

# OpenApp: signed, valid for 60 s and once (fresh one: cargo run -p sandbox -- sign --base-url {openapp})
{curl}

Ctrl-C stops."#,
        openapp = sb.openapp.base_url(),
        curl = openapp_curl(
            &sb.openapp.base_url(),
            OPENAPP_DEMO_BODY,
            sb.openapp.now_ms()
        ),
    );

    tokio::signal::ctrl_c().await?;
    println!("stopping");
    sb.shutdown().await;
    Ok(())
}

/// A curl command for OpenApp's refund route, signed with the demo
/// credentials at `epoch_ms` with a fresh nonce.
fn openapp_curl(base_url: &str, body: &str, epoch_ms: i64) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let sig = openapp::sign(
        OPENAPP_API_KEY,
        OPENAPP_API_SECRET,
        "POST",
        REFUND_PATH,
        epoch_ms,
        &nonce,
        body.as_bytes(),
    );
    format!(
        "curl -s -i {base_url}{REFUND_PATH} -H 'Content-Type: application/json' -H '{}' -H '{}' --data-binary '{body}'",
        format_args!("authorization: {}", sig.authorization),
        format_args!("x-app-signature: {}", sig.signature),
    )
}

fn sign_command(args: &[String]) -> anyhow::Result<()> {
    let mut base_url = None;
    let mut body = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--base-url" => base_url = rest.next().cloned(),
            _ if body.is_none() => body = Some(arg.clone()),
            _ => anyhow::bail!("{USAGE}"),
        }
    }
    let base_url = base_url
        .or_else(|| {
            std::env::var("SANDBOX_PORT_BASE")
                .ok()
                .and_then(|p| p.parse::<u16>().ok())
                .and_then(|p| p.checked_add(3))
                .map(|p| format!("http://127.0.0.1:{p}"))
        })
        .ok_or_else(|| {
            anyhow::anyhow!("give --base-url (the OpenApp base URL the server printed)")
        })?;
    let body = body.unwrap_or_else(|| OPENAPP_DEMO_BODY.to_owned());
    if body.contains('\'') {
        anyhow::bail!("the body must not contain single quotes (it is pasted into a shell)");
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    println!("{}", openapp_curl(&base_url, &body, i64::try_from(now)?));
    Ok(())
}
