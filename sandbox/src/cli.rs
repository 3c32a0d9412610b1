//! The `sandbox` command line (clap): serving flags, and `sign`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sandbox::{ProviderFlags, SandboxConfig};

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
    /// The OpenApp base URL the server printed [default: OpenApp's port
    /// from SANDBOX_PORT_BASE, on 127.0.0.1]
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

    /// Fixed ports: PORT for the first provider, PORT+1 for the next and so
    /// on, in the order of the provider headings below; a provider's own port
    /// flag overrides it [default: ephemeral ports]
    #[arg(long, value_name = "PORT", env = "SANDBOX_PORT_BASE",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(sandbox::MAX_PORT_BASE)))]
    pub port_base: Option<u16>,

    /// Start without each provider's demo orders (the startup text lists
    /// them).
    #[arg(long)]
    pub no_demo_seed: bool,

    /// Orders to seed at startup, after the demo ones (an order with the
    /// same id replaces it): {"optty":[ORDER..],"moyasar":[..],..}, a key
    /// per provider as the admin API names it, each ORDER as POST
    /// /__admin/orders takes it, e.g.
    /// {"id":"ORD-1","currency":"AUD","captured":100.00}.
    #[arg(long, value_name = "PATH")]
    pub seed_file: Option<PathBuf>,

    /// The largest request body read; a larger one answers 413 in the
    /// provider's error shape.
    #[arg(long, value_name = "BYTES", default_value_t = sandbox::DEFAULT_MAX_REQUEST_BODY)]
    pub max_request_body: usize,

    /// Eventual consistency of the read routes (Optty's Transaction Details, AfterPay's Get
    /// Order and Get Refunds, Moyasar's Retrieve Order): a refund shows in reads only this
    /// long after it was recorded; every server's own can change at run time (PATCH
    /// /__admin/settings).
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=sandbox::admin::MAX_READ_DELAY_MS))]
    pub read_delay_ms: u64,

    /// What is logged to stderr.
    #[arg(long, value_enum, value_name = "LEVEL", env = "SANDBOX_LOG", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// How the startup information is printed on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = PrintConfig::Text)]
    pub print_config: PrintConfig,

    #[command(flatten)]
    pub providers: ProviderFlags,
}

impl Serve {
    pub fn config(&self) -> SandboxConfig {
        let mut config = SandboxConfig {
            bind: self.bind,
            port_base: self.port_base,
            max_request_body: self.max_request_body,
            read_delay: std::time::Duration::from_millis(self.read_delay_ms),
            ..SandboxConfig::default()
        };
        self.providers.apply(&mut config);
        config
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
            "--read-delay-ms",
            "250",
            "--optty-notify-url",
            "http://127.0.0.1:9/hook",
            "--optty-notify-retries",
            "5",
        ])
        .unwrap();
        let config = cli.serve.config();
        assert_eq!(config.port_base, Some(18080));
        assert_eq!(config.moyasar.port, Some(19000));
        assert_eq!(config.optty.port, None);
        assert_eq!(
            config.openapp.response_signing,
            sandbox::openapp::ResponseSigning::Absent
        );
        assert!(!config.afterpay.replay_transaction_reference);
        assert_eq!(
            config.optty.token_lifetime,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(config.fixed_port("openapp"), Some(18083));
        assert_eq!(config.read_delay, std::time::Duration::from_millis(250));
        assert_eq!(
            config.optty.notify.url.as_deref(),
            Some("http://127.0.0.1:9/hook")
        );
        assert_eq!(config.optty.notify.retries, 5);
        assert!(Cli::try_parse_from(["sandbox", "--optty-notify-url", "ftp://x"]).is_err());
        assert!(Cli::try_parse_from(["sandbox", "--port-base", "65535"]).is_err());

        // Without flags, every provider's settings are its defaults (the environment may set
        // the bind address and the port base).
        let parsed = Cli::try_parse_from(["sandbox"]).unwrap().serve.config();
        let defaults = SandboxConfig::default();
        assert_eq!(
            SandboxConfig {
                bind: defaults.bind,
                port_base: defaults.port_base,
                ..parsed
            },
            defaults
        );
    }
}
