//! `--print-config env`: the sandbox's settings as the `refunds` facade's `REFUNDS_*`
//! environment variables, one `export NAME='value'` line each, so a service under test points
//! at a running sandbox with one `eval`:
//!
//! ```sh
//! sandbox --print-config env > sandbox.env &       # the lines come once every server listens
//! until grep -qs VERIFY_RESPONSE_SIGNATURES sandbox.env; do sleep 0.1; done   # its last line
//! eval "$(cat sandbox.env)"                         # REFUNDS_* now name the sandbox
//! ```
//!
//! The sandbox does not depend on the facade (any team's client can use it), so it names the
//! variables itself, in [`VARIABLES`].
//!
//! `REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES` is always `true`, whatever
//! `--openapp-response-signing` says: `tampered` and `absent` exist to check that a client
//! refuses an answer whose signature is wrong or missing, and turning verification off would
//! make that check pass without testing anything. It is exported anyway (rather than left to
//! the facade's default) so that an earlier `eval` of other settings cannot leave it `false`.
//! A test of a client with verification off sets it to `false` after the `eval`.

use crate::Sandbox;
use crate::credentials::{
    AFTERPAY_API_KEY, MOYASAR_SECRET_KEY, OPENAPP_API_KEY, OPENAPP_API_SECRET, OPTTY_CLIENT_ID,
    OPTTY_CLIENT_SECRET,
};

/// What the facade needs to reach a sandbox, one field per variable of [`VARIABLES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacadeEnv {
    /// Optty's API base URL.
    pub optty_base_url: String,
    /// Optty's auth server base URL (the token endpoint is `<auth_url>/token`): the same server.
    pub optty_auth_url: String,
    /// Optty's OAuth2 client id.
    pub optty_client_id: String,
    /// Optty's OAuth2 client secret.
    pub optty_client_secret: String,
    /// AfterPay's base URL.
    pub afterpay_base_url: String,
    /// AfterPay's `X-Auth-Key`.
    pub afterpay_api_key: String,
    /// Moyasar's base URL.
    pub moyasar_base_url: String,
    /// Moyasar's secret key (allowed to refund).
    pub moyasar_secret_key: String,
    /// OpenApp's base URL.
    pub openapp_base_url: String,
    /// OpenApp's HMAC API key.
    pub openapp_api_key: String,
    /// OpenApp's HMAC secret.
    pub openapp_api_secret: String,
    /// Whether the client verifies OpenApp's answer signatures: `true` from
    /// [`FacadeEnv::of`], whatever the response signing (see the module's documentation).
    pub openapp_verify_response_signatures: bool,
}

impl FacadeEnv {
    /// The settings of a running sandbox: its base URLs and the demo
    /// [`credentials`](crate::credentials).
    pub fn of(sb: &Sandbox) -> FacadeEnv {
        FacadeEnv {
            optty_base_url: sb.optty.base_url(),
            optty_auth_url: sb.optty.base_url(),
            optty_client_id: OPTTY_CLIENT_ID.to_owned(),
            optty_client_secret: OPTTY_CLIENT_SECRET.to_owned(),
            afterpay_base_url: sb.afterpay.base_url(),
            afterpay_api_key: AFTERPAY_API_KEY.to_owned(),
            moyasar_base_url: sb.moyasar.base_url(),
            moyasar_secret_key: MOYASAR_SECRET_KEY.to_owned(),
            openapp_base_url: sb.openapp.base_url(),
            openapp_api_key: OPENAPP_API_KEY.to_owned(),
            openapp_api_secret: OPENAPP_API_SECRET.to_owned(),
            openapp_verify_response_signatures: true,
        }
    }

    /// Each variable's name and value, in [`VARIABLES`]' order.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> {
        VARIABLES.iter().map(|(name, value)| (*name, value(self)))
    }
}

/// Where a variable's value comes from in a [`FacadeEnv`].
pub type ValueOf = fn(&FacadeEnv) -> &str;

/// The facade's variables and where each value comes from. Keep in step with the table in
/// `facade/src/config.rs` (the `refunds::config` documentation), which is what the facade
/// reads; the optional `REFUNDS_<PROVIDER>_TIMEOUT_MS` and `_MAX_ANSWER_BYTES` are left to the
/// facade's defaults.
pub const VARIABLES: [(&str, ValueOf); 12] = [
    ("REFUNDS_OPTTY_BASE_URL", |e| &e.optty_base_url),
    ("REFUNDS_OPTTY_AUTH_URL", |e| &e.optty_auth_url),
    ("REFUNDS_OPTTY_CLIENT_ID", |e| &e.optty_client_id),
    ("REFUNDS_OPTTY_CLIENT_SECRET", |e| &e.optty_client_secret),
    ("REFUNDS_AFTERPAY_BASE_URL", |e| &e.afterpay_base_url),
    ("REFUNDS_AFTERPAY_API_KEY", |e| &e.afterpay_api_key),
    ("REFUNDS_MOYASAR_BASE_URL", |e| &e.moyasar_base_url),
    ("REFUNDS_MOYASAR_SECRET_KEY", |e| &e.moyasar_secret_key),
    ("REFUNDS_OPENAPP_BASE_URL", |e| &e.openapp_base_url),
    ("REFUNDS_OPENAPP_API_KEY", |e| &e.openapp_api_key),
    ("REFUNDS_OPENAPP_API_SECRET", |e| &e.openapp_api_secret),
    ("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES", |e| {
        if e.openapp_verify_response_signatures {
            "true"
        } else {
            "false"
        }
    }),
];

/// One `export NAME='value'` line per variable of [`VARIABLES`], each ending in a newline,
/// values quoted by [`sh_quote`]: what `--print-config env` prints.
pub fn env_lines(env: &FacadeEnv) -> String {
    env.vars()
        .map(|(name, value)| format!("export {name}={}\n", sh_quote(value)))
        .collect()
}

/// `value` as one POSIX sh word that expands to exactly `value`: in single quotes, each `'`
/// inside written `'\''` (close the quotes, an escaped quote, reopen). Nothing else is special
/// between single quotes (`$`, `` ` ``, `\`, `"`, newlines). A NUL cannot be in an
/// environment variable and is not expected.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FacadeEnv {
        FacadeEnv {
            optty_base_url: "http://127.0.0.1:8080".into(),
            optty_auth_url: "http://127.0.0.1:8080".into(),
            optty_client_id: "id".into(),
            optty_client_secret: "it's".into(),
            afterpay_base_url: "http://127.0.0.1:8081".into(),
            afterpay_api_key: "a".into(),
            moyasar_base_url: "http://127.0.0.1:8082".into(),
            moyasar_secret_key: "m".into(),
            openapp_base_url: "http://127.0.0.1:8083".into(),
            openapp_api_key: "k".into(),
            openapp_api_secret: "s".into(),
            openapp_verify_response_signatures: false,
        }
    }

    #[test]
    fn quotes_are_closed_escaped_and_reopened() {
        assert_eq!(sh_quote("plain"), "'plain'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("''"), r"''\'''\'''");
        assert_eq!(sh_quote("$HOME `x` \\ \""), "'$HOME `x` \\ \"'");
    }

    #[test]
    fn one_export_line_per_variable_in_table_order() {
        let text = env_lines(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), VARIABLES.len());
        assert!(text.ends_with('\n'));
        for (line, (name, _)) in lines.iter().zip(VARIABLES) {
            assert!(line.starts_with(&format!("export {name}='")), "{line}");
        }
        assert_eq!(
            lines[0],
            "export REFUNDS_OPTTY_BASE_URL='http://127.0.0.1:8080'"
        );
        assert_eq!(lines[3], r"export REFUNDS_OPTTY_CLIENT_SECRET='it'\''s'");
        assert_eq!(
            lines[11],
            "export REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES='false'"
        );
    }
}
