//! `cargo run -p sandbox -- [OPTIONS]`: the four refund emulators, seeded
//! with demo orders (unless `--no-demo-seed`) and a seed file, until Ctrl-C
//! or SIGTERM. `cargo run -p sandbox -- --help` lists every flag;
//! `sandbox sign` prints a signed curl command for OpenApp.

mod cli;

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use rust_decimal::Decimal;
use sandbox::credentials::*;
use sandbox::facade_env::{FacadeEnv, env_lines};
use sandbox::openapp::{self, REFUND_PATH, ResponseSigning};
use sandbox::{
    OrderSeed, OrderState, ProviderHandle, RefundStatus, Sandbox, SandboxConfig, SeedFile,
};
use serde::Serialize;

use cli::{Cli, Command, LogLevel, PrintConfig, Serve};

const OPENAPP_DEMO_BODY: &str = r#"{"oaOrderId":"OA12345678901234","shopOrderId":"WS1213ASDZXC231A","currency":"PLN","amount":1999,"reason":"RETURNED","caseId":"RET-123434","notes":"Returned without charger cables.","products":[{"id":"id123","refundedQuantity":1,"amount":1999}]}"#;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Sign(sign)) => sign_command(sign),
        None => serve_command(&cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: LogLevel) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .init();
}

fn serve_command(args: &Serve) -> anyhow::Result<()> {
    init_logging(args.log_level);
    // Read and check the seed file before binding anything.
    let seed_file = match &args.seed_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("seed file {}: {e}", path.display()))?;
            SeedFile::parse(&text)
                .map_err(|e| anyhow::anyhow!("seed file {}: {e}", path.display()))?
        }
        None => SeedFile::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, args.config(), seed_file))
}

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

/// The demo orders, per provider (Optty, AfterPay, Moyasar, OpenApp).
fn demo_seeds() -> [Vec<OrderSeed>; 4] {
    [
        vec![
            OrderSeed::new("ORD-1001", "AUD", d(10000, 2)),
            OrderSeed::new("ORD-1002", "AUD", d(10000, 2)).refunded(d(7502, 2)),
            OrderSeed::new("ORD-1003", "AUD", d(5000, 2)).refund_status(RefundStatus::Pending),
        ],
        vec![OrderSeed::new("AP-1001", "EUR", d(30000, 2)).capture_number("000000001")],
        vec![
            OrderSeed::from_minor("0191f5a7-44a9-76c2-9fec-39709fdbf723", "SAR", 262_346),
            OrderSeed::new("K-1001", "KWD", d(12_345, 3)),
        ],
        vec![
            OrderSeed::new("WS1213ASDZXC231A", "PLN", d(10000, 2)).oa_order_id("OA12345678901234"),
        ],
    ]
}

const NAMES: [&str; 4] = ["Optty", "AfterPay", "Moyasar", "OpenApp"];

async fn serve(args: &Serve, config: SandboxConfig, file: SeedFile) -> anyhow::Result<()> {
    let sb = Sandbox::start(config.clone()).await?;
    let demo = if args.no_demo_seed {
        Default::default()
    } else {
        demo_seeds()
    };
    let from_file = [file.optty, file.afterpay, file.moyasar, file.openapp];
    let mut seeded: [Vec<OrderState>; 4] = Default::default();
    for (i, (demo, file)) in demo.into_iter().zip(from_file).enumerate() {
        let handle = sb.providers()[i];
        for seed in demo.into_iter().chain(file) {
            let id = seed.id.clone();
            let state = handle
                .try_seed_order(seed)
                .map_err(|e| anyhow::anyhow!("{} order {id}: {e}", NAMES[i]))?;
            seeded[i].retain(|s| s.id != state.id);
            seeded[i].push(state);
        }
    }
    match args.print_config {
        PrintConfig::Json => println!(
            "{}",
            serde_json::to_string(&machine_config(&sb, &config, &seeded))?
        ),
        PrintConfig::Env => print!("{}", env_lines(&FacadeEnv::of(&sb))),
        PrintConfig::Text => print_text(&sb, &seeded),
    }

    let signal = stop_signal().await?;
    eprintln!("sandbox: {signal}, stopping");
    sb.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM; returns which.
async fn stop_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}

/// `--print-config json`: everything a script needs, one line.
#[derive(Serialize)]
struct MachineConfig<'a> {
    pid: u32,
    bind: String,
    optty: ProviderInfo<'a>,
    afterpay: ProviderInfo<'a>,
    moyasar: ProviderInfo<'a>,
    openapp: ProviderInfo<'a>,
    settings: Settings,
}

#[derive(Serialize)]
struct ProviderInfo<'a> {
    base_url: String,
    admin_url: String,
    port: u16,
    /// The refund route, with its path parameter as in the spec.
    refund_path: &'static str,
    credentials: serde_json::Value,
    orders: Vec<&'a str>,
}

#[derive(Serialize)]
struct Settings {
    optty_token_lifetime_s: u64,
    afterpay_replay_transaction_reference: bool,
    openapp_timestamp_window_s: u64,
    openapp_response_signing: &'static str,
    max_request_body: usize,
}

fn machine_config<'a>(
    sb: &Sandbox,
    config: &SandboxConfig,
    seeded: &'a [Vec<OrderState>; 4],
) -> MachineConfig<'a> {
    let info = |handle: &ProviderHandle, i: usize, refund_path, credentials| ProviderInfo {
        base_url: handle.base_url(),
        admin_url: format!("{}/__admin", handle.base_url()),
        port: handle.addr().port(),
        refund_path,
        credentials,
        orders: seeded[i].iter().map(|s| s.id.as_str()).collect(),
    };
    MachineConfig {
        pid: std::process::id(),
        bind: config.bind.to_string(),
        optty: info(
            &sb.optty,
            0,
            "/orders/{orderReference}/refund",
            serde_json::json!({
                "token_url": sb.optty.token_url(),
                "client_id": OPTTY_CLIENT_ID,
                "client_secret": OPTTY_CLIENT_SECRET,
                "scope": sandbox::optty::SCOPE,
            }),
        ),
        afterpay: info(
            &sb.afterpay,
            1,
            "/api/v3/orders/{orderNumber}/refunds",
            serde_json::json!({ "x_auth_key": AFTERPAY_API_KEY }),
        ),
        moyasar: info(
            &sb.moyasar,
            2,
            "/v1/orders/{id}/refund",
            serde_json::json!({
                "secret_key": MOYASAR_SECRET_KEY,
                "key_without_refund": MOYASAR_KEY_WITHOUT_REFUND,
            }),
        ),
        openapp: info(
            &sb.openapp,
            3,
            REFUND_PATH,
            serde_json::json!({ "api_key": OPENAPP_API_KEY, "api_secret": OPENAPP_API_SECRET }),
        ),
        settings: Settings {
            optty_token_lifetime_s: config.optty_token_lifetime.as_secs(),
            afterpay_replay_transaction_reference: config.afterpay_replay_transaction_reference,
            openapp_timestamp_window_s: config.openapp_timestamp_window.as_secs(),
            openapp_response_signing: match config.openapp_response_signing {
                ResponseSigning::Valid => "valid",
                ResponseSigning::Tampered => "tampered",
                ResponseSigning::Absent => "absent",
            },
            max_request_body: config.max_request_body,
        },
    }
}

fn print_text(sb: &Sandbox, seeded: &[Vec<OrderState>; 4]) {
    for (i, handle) in sb.providers().into_iter().enumerate() {
        println!("{}: {}", NAMES[i], handle.base_url());
        for state in &seeded[i] {
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

Admin API (every server, under /__admin; contract: sandbox/admin.openapi.json)
  orders    POST/GET/DELETE /__admin/orders, GET/DELETE /__admin/orders/{{id}}
  ledger    GET /__admin/refunds?order=&reference=&status=
  settle    POST /__admin/orders/{{order_id}}/refunds/{{refund_id}}/settle {{"status":"SUCCEEDED"|"FAILED"}}
  faults    POST/GET/DELETE /__admin/faults, GET/DELETE /__admin/faults/{{id}}
  requests  GET/DELETE /__admin/requests;  reset: POST /__admin/reset

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

# A fault: the next Moyasar refund is recorded, then the connection drops
curl -s {moyasar}/__admin/faults -H 'Content-Type: application/json' -d '{{"fault":{{"kind":"drop_after_commit"}},"times":1}}'

Ctrl-C stops."#,
        openapp = sb.openapp.base_url(),
        curl = openapp_curl(
            &sb.openapp.base_url(),
            OPENAPP_DEMO_BODY,
            sb.openapp.now_ms()
        ),
    );
}

/// A curl command for OpenApp's refund route, signed with the demo
/// credentials at `epoch_ms` with a fresh nonce.
fn openapp_curl(base_url: &str, body: &str, epoch_ms: u64) -> String {
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

fn sign_command(args: cli::Sign) -> anyhow::Result<()> {
    let base_url = args
        .base_url
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
    let body = args.body.unwrap_or_else(|| OPENAPP_DEMO_BODY.to_owned());
    if body.contains('\'') {
        anyhow::bail!("the body must not contain single quotes (it is pasted into a shell)");
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    println!("{}", openapp_curl(&base_url, &body, u64::try_from(now)?));
    Ok(())
}
