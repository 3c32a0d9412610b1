//! The `sandbox` binary: its flags, fixed ports, a seed file, the
//! machine-readable startup line, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sandbox");

/// A base port with it and the next three free right now, below Linux's ephemeral ports
/// (32768 and up by default, where a connection's own end could take one before the sandbox
/// binds it), and handed to no other test of this binary: the tests run in parallel in one
/// process, and a base checked free is free again for the next test to find.
fn free_port_base() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    // Bases 10000..32760, seven apart, starting where this process's id says.
    let slots = (32_760 - 10_000) / 7;
    let start = std::process::id() % slots;
    let base = (0..slots)
        .map(|i| 10_000 + ((start + i) % slots * 7) as u16)
        .filter(|base| !handed_out.contains(base))
        .find(|&base| {
            let listeners: Vec<_> = (0..4)
                .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
                .collect();
            listeners.len() == 4
        })
        .expect("four free consecutive ports");
    handed_out.push(base);
    base
}

/// One free port.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Waits (bounded) for the child to exit.
fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sandbox did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--port-base",
        "--optty-port",
        "--afterpay-port",
        "--moyasar-port",
        "--openapp-port",
        "--no-demo-seed",
        "--seed-file",
        "--optty-token-lifetime",
        "--openapp-response-signing",
        "--openapp-timestamp-window",
        "--afterpay-replay-transaction-reference",
        "--max-request-body",
        "--log-level",
        "--print-config",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(help.contains("SIGTERM"), "{help}");
}

#[cfg(unix)]
#[tokio::test]
async fn fixed_ports_and_a_seed_file_serve_those_orders_until_sigterm() {
    let dir = std::env::temp_dir().join(format!("sandbox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed_file = dir.join("orders.json");
    std::fs::write(
        &seed_file,
        r#"{"optty":[{"id":"ORD-77","currency":"AUD","captured":77.70}],
            "moyasar":[{"id":"M-1","currency":"KWD","captured":1.234,"refunded":0.234}],
            "openapp":[{"id":"SHOP-1","oa_order_id":"OA-1","currency":"PLN","captured":5.00}]}"#,
    )
    .unwrap();
    let base = free_port_base();
    let moyasar_port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port-base", &base.to_string()])
        .args(["--moyasar-port", &moyasar_port.to_string()])
        .arg("--seed-file")
        .arg(&seed_file)
        .args([
            "--no-demo-seed",
            "--print-config",
            "json",
            "--log-level",
            "off",
        ])
        .args(["--optty-token-lifetime", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let config: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));

    assert_eq!(config["optty"]["port"], base);
    assert_eq!(config["afterpay"]["port"], base + 1);
    assert_eq!(config["moyasar"]["port"], moyasar_port);
    assert_eq!(config["openapp"]["port"], base + 3);
    assert_eq!(
        config["optty"]["base_url"],
        format!("http://127.0.0.1:{base}")
    );
    assert_eq!(config["optty"]["orders"], serde_json::json!(["ORD-77"]));
    assert_eq!(config["afterpay"]["orders"], serde_json::json!([]));
    assert_eq!(
        config["afterpay"]["credentials"]["x_auth_key"],
        sandbox::credentials::AFTERPAY_API_KEY
    );
    assert_eq!(config["settings"]["optty_token_lifetime_s"], 30);

    let c = client();
    let order: Value = c
        .get(format!(
            "{}/orders/M-1",
            config["moyasar"]["admin_url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["refunded"], serde_json::json!(0.234));
    let res = c
        .get(format!("http://127.0.0.1:{}/__admin/orders/OA-1", base + 3))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The token lifetime flag reached Optty.
    let token: Value = c
        .post(format!("http://127.0.0.1:{base}/token"))
        .form(&[
            ("client_id", sandbox::credentials::OPTTY_CLIENT_ID),
            ("client_secret", sandbox::credentials::OPTTY_CLIENT_SECRET),
            (
                "grant_type",
                optty_api::constraints::create_access_token::grant_type::ENUM[0],
            ),
            (
                "scope",
                optty_api::constraints::create_access_token::scope::ENUM[0],
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 30);

    let pid = config["pid"].as_u64().unwrap().to_string();
    assert_eq!(pid, child.id().to_string());
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("SIGTERM, stopping"), "{stderr}");
    assert!(
        c.get(format!("http://127.0.0.1:{base}/__admin"))
            .send()
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_seed_file_is_refused_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("sandbox-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed_file = dir.join("orders.json");
    std::fs::write(
        &seed_file,
        r#"{"moyasar":[{"id":"M-1","currency":"SAR","captured":"12"}]}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--seed-file")
        .arg(&seed_file)
        .args(["--log-level", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("moyasar[0].captured"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `script` with `sh -c` after `eval` of the file `env` holds; its stdout.
#[cfg(unix)]
fn sh_after_eval(env: &std::path::Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(r#"eval "$(cat "$1")"; {script}"#))
        .arg("sh")
        .arg(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(unix)]
#[test]
fn print_config_env_exports_the_facade_variables_for_eval() {
    use sandbox::credentials::*;

    let base = free_port_base();
    let mut child = Command::new(BIN)
        .args(["--port-base", &base.to_string()])
        .args(["--print-config", "env", "--log-level", "off"])
        // Not what the facade should do: it still verifies (see sandbox::facade_env).
        .args(["--openapp-response-signing", "absent"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = |offset: u16| format!("http://127.0.0.1:{}", base + offset);
    let expected = [
        ("REFUNDS_OPTTY_BASE_URL", url(0)),
        ("REFUNDS_OPTTY_AUTH_URL", url(0)),
        ("REFUNDS_OPTTY_CLIENT_ID", OPTTY_CLIENT_ID.to_owned()),
        (
            "REFUNDS_OPTTY_CLIENT_SECRET",
            OPTTY_CLIENT_SECRET.to_owned(),
        ),
        ("REFUNDS_AFTERPAY_BASE_URL", url(1)),
        ("REFUNDS_AFTERPAY_API_KEY", AFTERPAY_API_KEY.to_owned()),
        ("REFUNDS_MOYASAR_BASE_URL", url(2)),
        ("REFUNDS_MOYASAR_SECRET_KEY", MOYASAR_SECRET_KEY.to_owned()),
        ("REFUNDS_OPENAPP_BASE_URL", url(3)),
        ("REFUNDS_OPENAPP_API_KEY", OPENAPP_API_KEY.to_owned()),
        ("REFUNDS_OPENAPP_API_SECRET", OPENAPP_API_SECRET.to_owned()),
        (
            "REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES",
            "true".to_owned(),
        ),
    ];
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in &expected {
        stdout.read_line(&mut text).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != expected.len() {
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
        panic!(
            "{} lines, not {}: {text}\nstderr: {stderr}",
            lines.len(),
            expected.len()
        );
    }
    for (line, (name, value)) in lines.iter().zip(&expected) {
        assert_eq!(*line, format!("export {name}='{value}'"));
    }

    // sh gives every value back.
    let dir = std::env::temp_dir().join(format!("sandbox-cli-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sandbox.env");
    std::fs::write(&file, &text).unwrap();
    assert_eq!(
        sh_after_eval(&file, r#"printf %s "$REFUNDS_OPTTY_CLIENT_SECRET""#),
        OPTTY_CLIENT_SECRET
    );
    for (name, value) in &expected {
        assert_eq!(
            sh_after_eval(&file, &format!(r#"printf %s "${name}""#)),
            *value
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Values sh would otherwise read (quotes, `$`, backquotes, backslashes, newlines) come back
/// from `eval` unchanged.
#[cfg(unix)]
#[test]
fn env_lines_survive_eval_whatever_the_value() {
    use sandbox::facade_env::{FacadeEnv, env_lines};

    let nasty = "it's 'quoted' \"twice\" $HOME `id` \\n\nline two ''";
    let env = FacadeEnv {
        vars: vec![
            ("REFUNDS_OPTTY_BASE_URL", "http://127.0.0.1:1".into()),
            ("REFUNDS_OPTTY_CLIENT_ID", "'".into()),
            ("REFUNDS_OPTTY_CLIENT_SECRET", nasty.into()),
            ("REFUNDS_AFTERPAY_API_KEY", String::new()),
            ("REFUNDS_MOYASAR_SECRET_KEY", "a'b".into()),
            ("REFUNDS_OPENAPP_API_KEY", "$(touch /nonexistent/x)".into()),
            ("REFUNDS_OPENAPP_API_SECRET", ";exit 3".into()),
            ("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES", "false".into()),
        ],
    };
    let dir = std::env::temp_dir().join(format!("sandbox-cli-quote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sandbox.env");
    std::fs::write(&file, env_lines(&env)).unwrap();
    assert_eq!(
        sh_after_eval(&file, r#"printf %s "$REFUNDS_OPTTY_CLIENT_SECRET""#),
        nasty
    );
    for (name, value) in env.vars() {
        assert_eq!(
            sh_after_eval(&file, &format!(r#"printf %s "${name}""#)),
            value,
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
