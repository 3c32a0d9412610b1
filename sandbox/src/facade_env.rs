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
//! variables itself: each provider's room lists its own ([`crate::Room::facade_env`]), and they
//! are printed in the order of the provider list.
//!
//! `REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES` is always `true`, whatever
//! `--openapp-response-signing` says (see OpenApp's room, [`crate::openapp`], for why).

use crate::Sandbox;

/// What the facade needs to reach a sandbox: each variable's name and value, in the order
/// they are printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FacadeEnv {
    /// `(name, value)`, e.g. `("REFUNDS_OPTTY_BASE_URL", "http://127.0.0.1:8080")`.
    pub vars: Vec<(&'static str, String)>,
}

impl FacadeEnv {
    /// The settings of a running sandbox: its base URLs and the demo
    /// [`credentials`](crate::credentials), every provider's in list order.
    pub fn of(sb: &Sandbox) -> FacadeEnv {
        let vars = sb
            .rooms()
            .flat_map(|room| {
                room.facade_env()
                    .iter()
                    .map(|(name, value)| (*name, value(room.handle())))
            })
            .collect();
        FacadeEnv { vars }
    }

    /// Each variable's name and value, in order.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.vars
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
    }
}

/// One `export NAME='value'` line per variable of `env`, each ending in a newline,
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
            vars: vec![
                ("REFUNDS_OPTTY_BASE_URL", "http://127.0.0.1:8080".into()),
                ("REFUNDS_OPTTY_CLIENT_SECRET", "it's".into()),
                ("REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES", "false".into()),
            ],
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
    fn one_export_line_per_variable_in_order() {
        let env = sample();
        let text = env_lines(&env);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), env.vars.len());
        assert!(text.ends_with('\n'));
        for (line, (name, _)) in lines.iter().zip(env.vars()) {
            assert!(line.starts_with(&format!("export {name}='")), "{line}");
        }
        assert_eq!(
            lines[0],
            "export REFUNDS_OPTTY_BASE_URL='http://127.0.0.1:8080'"
        );
        assert_eq!(lines[1], r"export REFUNDS_OPTTY_CLIENT_SECRET='it'\''s'");
        assert_eq!(
            lines[2],
            "export REFUNDS_OPENAPP_VERIFY_RESPONSE_SIGNATURES='false'"
        );
    }
}
