//! What can be read from an error answer in whatever shape a server sends it.
//!
//! Providers document one error shape each, but real servers and the frameworks behind them
//! send others: NestJS validation pipes answer `message` as an array (Optty), ASP.NET answers
//! ModelState problem details `{title, status, errors: {field: [..]}}` (Riverty), Moyasar sends
//! `errors: null`, OpenApp `{errorCode, errorMessage}`, a gateway an HTML page. A 4xx is a
//! refusal whatever its body, so the body is read for text, never required to match a schema:
//! [`ErrorBody::read`] collects every code and message it can find, and each provider's room
//! decides what they mean.

use serde_json::Value;

use crate::answer::json_text;
use crate::error::ProviderMessage;

/// Keys that hold a machine-readable code, in the order they are preferred.
/// `type` last, and only when it is not a URL: Moyasar puts a category there
/// (`invalid_request_error`), ASP.NET problem details a documentation link.
const CODE_KEYS: [&str; 5] = ["code", "errorCode", "error_code", "exception", "type"];
/// Keys that hold the headline text, in the order they are preferred.
const MESSAGE_KEYS: [&str; 7] = [
    "message",
    "errorMessage",
    "error_message",
    "detail",
    "title",
    "error_description",
    "error",
];

/// The codes and texts of an error body, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// The first machine-readable code found (`code`, `errorCode`, `exception`, ...).
    pub code: Option<String>,
    /// The headline: the first message found (`message`, `errorMessage`, `title`, ...), or
    /// the first line of a `message` array, or an excerpt of a body that is not JSON.
    pub message: Option<String>,
    /// Every message, with the field it names where the body says (`errors: {field: [..]}`,
    /// a `message` array, an array of message objects).
    pub messages: Vec<ProviderMessage>,
    /// The body was JSON (an object or an array).
    pub is_json: bool,
    /// A top-level `error` string beside the message: NestJS' reason phrase ("Bad Request").
    pub reason_phrase: Option<String>,
}

impl ErrorBody {
    /// Reads `body` (a UTF-8 byte order mark is dropped) for codes and messages.
    pub(crate) fn read(body: &[u8]) -> ErrorBody {
        match serde_json::from_slice::<Value>(json_text(body)) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => {
                let mut read = ErrorBody {
                    is_json: true,
                    ..ErrorBody::default()
                };
                read.collect(&value, None, false);
                read.reason_phrase = value
                    .get("error")
                    .and_then(Value::as_str)
                    .and_then(non_empty);
                if read.message.is_none() {
                    read.message = read.messages.first().map(|m| m.message.clone());
                }
                read
            }
            Ok(Value::String(text)) => ErrorBody {
                message: non_empty(&text),
                ..ErrorBody::default()
            },
            _ => ErrorBody {
                message: non_empty(&excerpt(body)),
                ..ErrorBody::default()
            },
        }
    }

    /// Every text of the body, headline first: what a provider's phrase is looked for in.
    #[allow(
        dead_code,
        reason = "shared by the rooms: a build with some providers' features off leaves it unused"
    )]
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.message
            .as_deref()
            .into_iter()
            .chain(self.messages.iter().map(|m| m.message.as_str()))
    }

    /// Collects from `value`; `in_list` for an element of an array of messages, whose
    /// message is one of many rather than the headline.
    fn collect(&mut self, value: &Value, field: Option<&str>, in_list: bool) {
        match value {
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(text) => self.push(None, text, field),
                        other => self.collect(other, field, true),
                    }
                }
            }
            Value::Object(map) => {
                let code = CODE_KEYS
                    .iter()
                    .find_map(|key| map.get(*key).and_then(scalar_text))
                    .filter(|code| !code.contains("://"));
                // A NestJS `message` array's first line is the headline, before `error` (the
                // reason phrase).
                let first_line = match map.get("message") {
                    Some(Value::Array(lines)) => lines.iter().find_map(scalar_text),
                    _ => None,
                };
                let message = MESSAGE_KEYS
                    .iter()
                    .find_map(|key| map.get(*key).and_then(scalar_text))
                    .filter(|_| first_line.is_none())
                    .or(first_line);
                let own_field = ["fieldReference", "field", "property", "path"]
                    .iter()
                    .find_map(|key| map.get(*key).and_then(Value::as_str))
                    .or(field);
                if self.code.is_none() {
                    self.code.clone_from(&code);
                }
                match (&message, in_list || own_field.is_some()) {
                    // A message object in a list, or one naming a field: one message each.
                    (Some(text), true) => {
                        self.messages.push(ProviderMessage {
                            code,
                            message: text.clone(),
                            field: own_field.map(str::to_owned),
                        });
                    }
                    (Some(text), false) if self.message.is_none() => {
                        self.message = Some(text.clone())
                    }
                    _ => {}
                }
                // NestJS: `message: ["amount must be positive", ..]`.
                if let Some(Value::Array(lines)) = map.get("message") {
                    for line in lines {
                        if let Some(text) = scalar_text(line) {
                            self.push(None, &text, field);
                        }
                    }
                }
                // Moyasar / ASP.NET ModelState: `errors: {field: [reasons]}` (or `null`).
                match map.get("errors") {
                    Some(Value::Object(fields)) => {
                        let mut names: Vec<&String> = fields.keys().collect();
                        names.sort();
                        for name in names {
                            match &fields[name] {
                                Value::Array(reasons) => {
                                    for reason in reasons {
                                        match reason {
                                            Value::String(text) => {
                                                self.push(None, text, Some(name))
                                            }
                                            other => self.collect(other, Some(name), true),
                                        }
                                    }
                                }
                                other => {
                                    if let Some(text) = scalar_text(other) {
                                        self.push(None, &text, Some(name));
                                    }
                                }
                            }
                        }
                    }
                    Some(list @ Value::Array(_)) => self.collect(list, field, true),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn push(&mut self, code: Option<String>, text: &str, field: Option<&str>) {
        if let Some(text) = non_empty(text) {
            self.messages.push(ProviderMessage {
                code,
                message: text,
                field: field.map(str::to_owned),
            });
        }
    }
}

/// A string, or a number's text (`"statusCode": 400` is not a message, but `code: 400.002`
/// can be a code).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => non_empty(text),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// At most this much of an unparsable body is kept in an error message.
const BODY_EXCERPT: usize = 200;

/// A body excerpt for error messages: a proxy's HTML page, say.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT * 4)]);
    let mut end = text.len().min(BODY_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, field: Option<&str>) -> ProviderMessage {
        ProviderMessage {
            code: None,
            message: text.to_owned(),
            field: field.map(str::to_owned),
        }
    }

    #[test]
    fn nestjs_message_arrays() {
        let read = ErrorBody::read(
            br#"{"statusCode":400,"message":["refundAmount.amount must be a positive number","refundReference should not be empty"],"error":"Bad Request"}"#,
        );
        assert_eq!(read.code, None);
        assert_eq!(
            read.message.as_deref(),
            Some("refundAmount.amount must be a positive number")
        );
        assert_eq!(read.messages.len(), 2);
    }

    #[test]
    fn asp_net_model_state() {
        let read = ErrorBody::read(
            br#"{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1","title":"One or more validation errors occurred.","status":400,"errors":{"CaptureNumber":["The CaptureNumber field is required."]}}"#,
        );
        assert_eq!(
            read.message.as_deref(),
            Some("One or more validation errors occurred.")
        );
        assert_eq!(
            read.messages,
            [message(
                "The CaptureNumber field is required.",
                Some("CaptureNumber")
            )]
        );
    }

    #[test]
    fn message_arrays_errors_null_bom_and_text() {
        let riverty = ErrorBody::read(
            br#"[{"type":"BusinessError","code":"400.003","message":"Value out of range","fieldReference":"items[0].quantity"}]"#,
        );
        assert_eq!(riverty.code.as_deref(), Some("400.003"));
        assert_eq!(riverty.message.as_deref(), Some("Value out of range"));
        assert_eq!(
            riverty.messages[0].field.as_deref(),
            Some("items[0].quantity")
        );
        let moyasar = ErrorBody::read(
            b"\xEF\xBB\xBF{\"message\":\"Data validation failed\",\"errors\":null}",
        );
        assert_eq!(moyasar.message.as_deref(), Some("Data validation failed"));
        assert!(moyasar.messages.is_empty() && moyasar.is_json);
        let openapp =
            ErrorBody::read(br#"{"errorCode":"REFUND_TOO_MUCH","errorMessage":"Too much"}"#);
        assert_eq!(openapp.code.as_deref(), Some("REFUND_TOO_MUCH"));
        assert_eq!(openapp.message.as_deref(), Some("Too much"));
        let html = ErrorBody::read(b"<html><body>Bad Request</body></html>");
        assert!(!html.is_json);
        assert!(html.message.unwrap().contains("Bad Request"));
        assert_eq!(ErrorBody::read(b"").message, None);
    }
}
