//! The `sandbox` command line (clap): serving flags, and `sign`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sandbox::openapp::ResponseSigning;
use sandbox::{ProviderPorts, SandboxConfig};

/// Stateful emulators of the Optty, AfterPay, Moyasar and OpenApp refund
/// APIs, one HTTP server per provider, each with an admin API under
/// /__admin (orders, refund ledger, faults, settlement, request log; see
/// sandbox/admin.openapi.json). Prints the base URLs and credentials once
/// every server listens; Ctrl-C or SIGTERM stops it cleanly (exit 0).
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Serve,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a freshly signed curl command for OpenApp's refund route (valid
    /// for the timestamp window, once: the nonce is single-use).
    Sign(Sign),
}

#[derive(Debug, Args)]
pub struct Sign {
    /// The OpenApp base URL the server printed [default: from
    /// SANDBOX_PORT_BASE + 3 on 127.0.0.1]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The JSON body to sign [default: the docs' example refund]
    #[arg(value_name = "JSON-BODY")]
    pub body: Option<String>,
}

/// How startup information is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrintConfig {
    /// Base URLs, seeded orders, credentials and curl examples for people.
    Text,
    /// One line of JSON on stdout (base and admin URLs, credentials, seeded
    /// orders, settings) for scripts; printed once every server listens.
    Json,
    /// The `refunds` facade's REFUNDS_* environment variables, one `export
    /// NAME='value'` line each, for `eval` in sh; printed once every server
    /// listens. REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES is always true, so
    /// --openapp-response-signing tampered|absent tests the client's check.
    Env,
}

/// The log level of the request log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures of the sandbox itself.
    Error,
    /// Also warnings.
    Warn,
    /// Also one line per provider request (method, path, status, duplicate
    /// key, fault).
    Info,
    /// Also admin requests and more.
    Debug,
    /// Everything.
    Trace,
}

/// OpenApp's response signing, as `--openapp-response-signing` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Signing {
    /// Correct signatures.
    Valid,
    /// A signature over a different body (clients must reject it).
    Tampered,
    /// No signature headers.
    Absent,
}

impl From<Signing> for ResponseSigning {
    fn from(s: Signing) -> Self {
        match s {
            Signing::Valid => ResponseSigning::Valid,
            Signing::Tampered => ResponseSigning::Tampered,
            Signing::Absent => ResponseSigning::Absent,
        }
    }
}

#[derive(Debug, Args)]
pub struct Serve {
    /// Address every server binds (0.0.0.0 to serve other machines).
    #[arg(
        long,
        value_name = "ADDR",
        env = "SANDBOX_BIND",
        default_value = "127.0.0.1"
    )]
    pub bind: IpAddr,

    /// Fixed ports: Optty on PORT, AfterPay PORT+1, Moyasar PORT+2, OpenApp
    /// PORT+3 [default: ephemeral ports]
    #[arg(long, value_name = "PORT", env = "SANDBOX_PORT_BASE",
          value_parser = clap::value_parser!(u16).range(1..=65532))]
    pub port_base: Option<u16>,

    /// Optty's port (overrides --port-base for Optty).
    #[arg(long, value_name = "PORT")]
    pub optty_port: Option<u16>,

    /// AfterPay's port (overrides --port-base for AfterPay).
    #[arg(long, value_name = "PORT")]
    pub afterpay_port: Option<u16>,

    /// Moyasar's port (overrides --port-base for Moyasar).
    #[arg(long, value_name = "PORT")]
    pub moyasar_port: Option<u16>,

    /// OpenApp's port (overrides --port-base for OpenApp).
    #[arg(long, value_name = "PORT")]
    pub openapp_port: Option<u16>,

    /// Start without the demo orders (ORD-1001.. on Optty, AP-1001 on
    /// AfterPay, two on Moyasar, WS1213ASDZXC231A on OpenApp).
    #[arg(long)]
    pub no_demo_seed: bool,

    /// Orders to seed at startup, after the demo ones (an order with the
    /// same id replaces it): {"optty":[ORDER..],"afterpay":[..],
    /// "moyasar":[..],"openapp":[..]}, each ORDER as POST /__admin/orders
    /// takes it, e.g. {"id":"ORD-1","currency":"AUD","captured":100.00}.
    #[arg(long, value_name = "PATH")]
    pub seed_file: Option<PathBuf>,

    /// Lifetime of Optty access tokens, also their expires_in.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub optty_token_lifetime: u64,

    /// How OpenApp signs its answers.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Signing::Valid)]
    pub openapp_response_signing: Signing,

    /// How far an OpenApp request's timestamp may be from the sandbox's
    /// clock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub openapp_timestamp_window: u64,

    /// Whether a repeated AfterPay transactionReference on an order replays
    /// the original answer instead of refunding again.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub afterpay_replay_transaction_reference: bool,

    /// The largest request body read; a larger one answers 413 in the
    /// provider's error shape.
    #[arg(long, value_name = "BYTES", default_value_t = sandbox::DEFAULT_MAX_REQUEST_BODY)]
    pub max_request_body: usize,

    /// What is logged to stderr.
    #[arg(long, value_enum, value_name = "LEVEL", env = "SANDBOX_LOG", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// How the startup information is printed on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = PrintConfig::Text)]
    pub print_config: PrintConfig,
}

impl Serve {
    pub fn config(&self) -> SandboxConfig {
        SandboxConfig {
            bind: self.bind,
            port_base: self.port_base,
            ports: ProviderPorts {
                optty: self.optty_port,
                afterpay: self.afterpay_port,
                moyasar: self.moyasar_port,
                openapp: self.openapp_port,
            },
            optty_token_lifetime: Duration::from_secs(self.optty_token_lifetime),
            afterpay_replay_transaction_reference: self.afterpay_replay_transaction_reference,
            openapp_timestamp_window: Duration::from_secs(self.openapp_timestamp_window),
            openapp_response_signing: self.openapp_response_signing.into(),
            max_request_body: self.max_request_body,
            specs: sandbox::ProviderSpecs::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "sandbox",
            "--port-base",
            "18080",
            "--moyasar-port",
            "19000",
            "--openapp-response-signing",
            "absent",
            "--afterpay-replay-transaction-reference",
            "false",
            "--optty-token-lifetime",
            "30",
        ])
        .unwrap();
        let config = cli.serve.config();
        assert_eq!(config.port_base, Some(18080));
        assert_eq!(config.ports.moyasar, Some(19000));
        assert_eq!(config.openapp_response_signing, ResponseSigning::Absent);
        assert!(!config.afterpay_replay_transaction_reference);
        assert_eq!(config.optty_token_lifetime, Duration::from_secs(30));
        assert!(Cli::try_parse_from(["sandbox", "--port-base", "65535"]).is_err());
    }
}
