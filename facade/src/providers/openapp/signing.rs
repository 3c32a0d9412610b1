//! OpenApp request/response signing (HMAC-SHA256), as pure functions.
//!
//! ```text
//! authorization:   hmac v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>
//! x-app-signature: Base64(HMAC-SHA256(apiSecret,
//!                      "<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>$<Base64(SHA256(body))>"))
//! ```
//!
//! METHOD and PATH are upper-cased; with no body the last element is empty.
//! Base64 is the standard alphabet with padding. Timestamp skew (60 s) and
//! nonce replay checks belong to the caller: [`OpenAppAuthorization::parse`]
//! exposes both.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The `authorization` header's scheme prefix.
pub const OPENAPP_AUTH_PREFIX: &str = "hmac v1$";

/// The two headers that sign one OpenApp request (or response).
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAppSignature {
    /// The `authorization` header value: `hmac v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>`.
    pub authorization: String,
    /// The `x-app-signature` header value (Base64 HMAC-SHA256).
    pub signature: String,
}

impl fmt::Debug for OpenAppSignature {
    // Neither value is secret (both travel in headers); the API secret is
    // never part of this type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAppSignature")
            .field("authorization", &self.authorization)
            .field("signature", &self.signature)
            .finish()
    }
}

/// The parsed elements of an OpenApp `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAppAuthorization {
    /// The API key.
    pub api_key: String,
    /// The upper-cased HTTP method.
    pub method: String,
    /// The upper-cased path.
    pub path: String,
    /// Milliseconds since the Unix epoch when the message was signed.
    pub epoch_ms: u64,
    /// The nonce (at most 64 characters per OpenApp; not checked here).
    pub nonce: String,
}

impl OpenAppAuthorization {
    /// Parses `hmac v1$<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>`; `None`
    /// if the header does not have exactly these six parts or the timestamp
    /// is not a decimal integer.
    pub fn parse(header: &str) -> Option<OpenAppAuthorization> {
        let rest = header.strip_prefix(OPENAPP_AUTH_PREFIX)?;
        let mut parts = rest.split('$');
        let api_key = parts.next()?;
        let method = parts.next()?;
        let path = parts.next()?;
        let epoch = parts.next()?;
        let nonce = parts.next()?;
        if parts.next().is_some() || epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(OpenAppAuthorization {
            api_key: api_key.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            epoch_ms: epoch.parse().ok()?,
            nonce: nonce.to_owned(),
        })
    }
}

/// `<api-key>$<METHOD>$<PATH>$<epoch-ms>$<nonce>` (elements already upper-cased).
fn header_elements(api_key: &str, method: &str, path: &str, epoch_ms: u64, nonce: &str) -> String {
    format!("{api_key}${method}${path}${epoch_ms}${nonce}")
}

/// `Base64(SHA256(body))`, or the empty string for an empty body.
fn content_digest(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        STANDARD.encode(Sha256::digest(body))
    }
}

/// The HMAC over `<elements>$<digest>`, ready to finalize or verify.
fn mac_for(api_secret: &SecretString, elements: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(api_secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(elements.as_bytes());
    mac.update(b"$");
    mac.update(content_digest(body).as_bytes());
    mac
}

/// Signs one OpenApp message. `method` and `path` are upper-cased here;
/// `body` is the exact bytes sent (empty for none).
pub fn openapp_signature(
    api_key: &str,
    api_secret: &SecretString,
    method: &str,
    path: &str,
    epoch_ms: u64,
    nonce: &str,
    body: &[u8],
) -> OpenAppSignature {
    let elements = header_elements(
        api_key,
        &method.to_uppercase(),
        &path.to_uppercase(),
        epoch_ms,
        nonce,
    );
    let tag = mac_for(api_secret, &elements, body).finalize().into_bytes();
    OpenAppSignature {
        authorization: format!("{OPENAPP_AUTH_PREFIX}{elements}"),
        signature: STANDARD.encode(tag),
    }
}

/// Checks an `x-app-signature` against the `authorization` header it came
/// with and the exact body bytes, in constant time. `false` for a malformed
/// header or signature.
///
/// This checks the MAC only: the caller compares the parsed
/// [`OpenAppAuthorization`] with what it expects (API key, method, path),
/// the timestamp with its clock (OpenApp allows 60 s of drift) and the nonce
/// with the ones already seen.
pub fn verify_openapp_signature(
    api_secret: &SecretString,
    authorization: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    if OpenAppAuthorization::parse(authorization).is_none() {
        return false;
    }
    // Surrounding whitespace is not part of the signature (the sandbox trims it alike).
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    // Sign the header's elements verbatim, exactly as the signer wrote them.
    let elements = &authorization[OPENAPP_AUTH_PREFIX.len()..];
    mac_for(api_secret, elements, body)
        .verify_slice(&tag)
        .is_ok()
}
