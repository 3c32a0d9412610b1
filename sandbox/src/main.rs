//! `cargo run -p sandbox -- [OPTIONS]`: a refund emulator per provider, seeded
//! with demo orders (unless `--no-demo-seed`) and a seed file, until Ctrl-C
//! or SIGTERM. `cargo run -p sandbox -- --help` lists every flag;
//! `sandbox sign` prints a signed curl command for OpenApp.

mod cli;

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use sandbox::facade_env::{FacadeEnv, env_lines};
use sandbox::{OrderState, Room, Sandbox, SandboxConfig, SeedFile, openapp};
use serde_json::{Map, Value};

use cli::{Cli, Command, LogLevel, PrintConfig, Serve};

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

/// Each server, as its room describes it, with the orders seeded on it.
type Seeded<'a> = Vec<(&'a dyn Room, Vec<OrderState>)>;

async fn serve(args: &Serve, config: SandboxConfig, file: SeedFile) -> anyhow::Result<()> {
    let sb = Sandbox::start(config.clone()).await?;
    let mut seeded: Seeded = Vec::new();
    for room in sb.rooms() {
        let demo = if args.no_demo_seed {
            Vec::new()
        } else {
            room.demo_orders()
        };
        let from_file = file.orders(room.handle().provider()).iter().cloned();
        let mut states: Vec<OrderState> = Vec::new();
        for seed in demo.into_iter().chain(from_file) {
            let id = seed.id.clone();
            let state = room
                .handle()
                .try_seed_order(seed)
                .map_err(|e| anyhow::anyhow!("{} order {id}: {e}", room.title()))?;
            states.retain(|s| s.id != state.id);
            states.push(state);
        }
        seeded.push((room, states));
    }
    match args.print_config {
        PrintConfig::Json => println!(
            "{}",
            serde_json::to_string(&machine_config(&config, &seeded))?
        ),
        PrintConfig::Env => print!("{}", env_lines(&FacadeEnv::of(&sb))),
        PrintConfig::Text => print_text(&seeded),
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

/// `--print-config json`: everything a script needs, one line: `pid`, `bind`, an object per
/// provider by its name (base and admin URLs, port, refund route, credentials, seeded orders)
/// and `settings`.
fn machine_config(config: &SandboxConfig, seeded: &Seeded) -> Value {
    let mut out = Map::new();
    out.insert("pid".into(), std::process::id().into());
    out.insert("bind".into(), config.bind.to_string().into());
    for (room, states) in seeded {
        let handle = room.handle();
        let orders: Vec<&str> = states.iter().map(|s| s.id.as_str()).collect();
        out.insert(
            handle.provider().into(),
            serde_json::json!({
                "base_url": handle.base_url(),
                "admin_url": format!("{}/__admin", handle.base_url()),
                "port": handle.addr().port(),
                "refund_path": room.refund_path(),
                "read_routes": room
                    .read_routes()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                "credentials": room.credentials(),
                "orders": orders,
            }),
        );
    }
    let mut settings: Map<String, Value> = config
        .provider_settings()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    settings.insert("max_request_body".into(), config.max_request_body.into());
    settings.insert(
        "read_delay_ms".into(),
        u64::try_from(config.read_delay.as_millis())
            .unwrap_or(u64::MAX)
            .into(),
    );
    out.insert("settings".into(), settings.into());
    out.into()
}

fn print_text(seeded: &Seeded) {
    for (room, states) in seeded {
        println!("{}: {}", room.title(), room.handle().base_url());
        for state in states {
            println!(
                "  order {} {} captured {} refunded {}",
                state.id, state.currency, state.captured, state.refunded
            );
        }
    }

    println!("\nCredentials");
    for (room, _) in seeded {
        println!("  {:<10}{}", room.title(), room.credentials_text());
    }
    println!(
        r#"
Admin API (every server, under /__admin; contract: sandbox/admin.openapi.json)
  orders    POST/GET/DELETE /__admin/orders, GET/DELETE /__admin/orders/{{id}}
  ledger    GET /__admin/refunds?order=&reference=&status=
  settle    POST /__admin/orders/{{order_id}}/refunds/{{refund_id}}/settle {{"status":"SUCCEEDED"|"FAILED"}}
  faults    POST/GET/DELETE /__admin/faults, GET/DELETE /__admin/faults/{{id}}
  requests  GET/DELETE /__admin/requests;  reset: POST /__admin/reset
  settings  GET/PATCH /__admin/settings {{"read_delay_ms":N}}  (reads lag refunds by N ms)
  notify    GET/PATCH/DELETE /__admin/notifications {{"url":"http://.."}}  (Optty only)

Try it"#
    );
    for (room, _) in seeded {
        println!("{}\n", room.example());
    }
    if let Some((room, _)) = seeded.first() {
        println!(
            "# A fault: the next {} refund is recorded, then the connection drops\n\
             curl -s {}/__admin/faults -H 'Content-Type: application/json' -d '{{\"fault\":{{\"kind\":\"drop_after_commit\"}},\"times\":1}}'\n",
            room.title(),
            room.handle().base_url()
        );
    }
    println!("Ctrl-C stops.");
}

fn sign_command(args: cli::Sign) -> anyhow::Result<()> {
    let base_url = args
        .base_url
        .or_else(|| {
            let config = SandboxConfig {
                port_base: std::env::var("SANDBOX_PORT_BASE").ok()?.parse().ok(),
                ..SandboxConfig::default()
            };
            let port = config.fixed_port("openapp")?;
            Some(format!("http://127.0.0.1:{port}"))
        })
        .ok_or_else(|| {
            anyhow::anyhow!("give --base-url (the OpenApp base URL the server printed)")
        })?;
    let body = args
        .body
        .unwrap_or_else(|| openapp::DEMO_REFUND_BODY.to_owned());
    if body.contains('\'') {
        anyhow::bail!("the body must not contain single quotes (it is pasted into a shell)");
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    println!(
        "{}",
        openapp::curl_command(&base_url, &body, u64::try_from(now)?)
    );
    Ok(())
}
