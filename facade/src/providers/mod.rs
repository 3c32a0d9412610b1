//! One adapter per provider, in the layout of hyperswitch's connectors: `transformers.rs` holds
//! the pure mapping (unified request -> generated wire type, [`Answer`] -> unified result), the
//! provider's `mod.rs` the I/O around it.
//!
//! Each adapter sends the generated wire type itself (method and path from the generated
//! `operations` module) and reads the answer with a size cap ([`crate::answer`]); the one pure
//! `transformers::refund_result(request, &answer)` then decides the result. That function is
//! what production runs and what the snapshot tests exercise.

use crate::answer::Answer;
use crate::error::RefundError;
use crate::provider::{Provider, providers};

pub(crate) mod error_body;
pub(crate) mod mapping;
pub(crate) mod room;
pub(crate) mod transport;

/// The rooms, and the dispatch from a [`Provider`] to its room, expanded from the one provider
/// list: one arm per provider, twice over for its cargo feature, and no wildcard.
macro_rules! rooms {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        $(
            #[cfg(feature = $name)]
            pub mod $room;
        )*

        /// The pure mapping of `request.provider`'s answers: the same function each adapter
        /// runs on what it received (OpenApp here without signature verification; its adapter
        /// checks the signature with its config). For tests, replays and tools that hold a
        /// recorded answer.
        pub fn refund_result(
            request: &crate::RefundRequest,
            answer: &Answer,
        ) -> Result<crate::Refund, RefundError> {
            match request.provider {
                $(
                    #[cfg(feature = $name)]
                    Provider::$variant => <$room::$client as room::Room>::refund_result(request, answer),
                    #[cfg(not(feature = $name))]
                    Provider::$variant => Err(not_compiled(request.provider)),
                )*
            }
        }

        /// The JSON text of the body the facade would send for `request`, compact or `pretty`:
        /// for dry runs, logs and tests. Not validated first ([`crate::RefundRequest::validate`]
        /// is what [`crate::Refunds::refund`] runs before this), so a test can hold a refused
        /// request's body against the provider's schema; `Err` where the room cannot express
        /// the request at all.
        pub fn refund_body_json(
            request: &crate::RefundRequest,
            pretty: bool,
        ) -> Result<String, RefundError> {
            match request.provider {
                $(
                    #[cfg(feature = $name)]
                    Provider::$variant => {
                        <$room::$client as room::Room>::refund_body_json(request, pretty)
                    }
                    #[cfg(not(feature = $name))]
                    Provider::$variant => Err(not_compiled(request.provider)),
                )*
            }
        }

        /// [`crate::Notification::read`], in `provider`'s room.
        pub(crate) fn read_notification(
            provider: Provider,
            body: &[u8],
        ) -> Result<crate::Notification, RefundError> {
            match provider {
                $(
                    #[cfg(feature = $name)]
                    Provider::$variant => <$room::$client as room::Room>::read_notification(body),
                    #[cfg(not(feature = $name))]
                    Provider::$variant => Err(not_compiled(provider)),
                )*
            }
        }

        /// The pure mapping of a read of `request.provider`'s record (see [`crate::lookup`]):
        /// the same function each adapter runs on what it received at `read_at`.
        pub fn read_result(
            request: &crate::RefundRequest,
            known_refund_id: Option<&str>,
            answer: &Answer,
            read_at: std::time::SystemTime,
        ) -> Result<crate::Lookup, RefundError> {
            match request.provider {
                $(
                    #[cfg(feature = $name)]
                    Provider::$variant => <$room::$client as room::Room>::read_result(
                        request,
                        known_refund_id,
                        answer,
                        read_at,
                    ),
                    #[cfg(not(feature = $name))]
                    Provider::$variant => Err(not_compiled(request.provider)),
                )*
            }
        }

        /// The operation `provider`'s room sends a refund with, in the spec its client was
        /// generated from: for contract tests that hold [`refund_body_json`] against the spec's
        /// request schema, and for tools that show where a refund goes.
        pub fn refund_operation(provider: Provider) -> Result<SpecOperation, RefundError> {
            match provider {
                $(
                    #[cfg(feature = $name)]
                    Provider::$variant => Ok(<$room::$client as room::Room>::REFUND_OPERATION),
                    #[cfg(not(feature = $name))]
                    Provider::$variant => Err(not_compiled(provider)),
                )*
            }
        }

        impl Provider {
            /// The caps on the provider's answers that its config starts with
            /// ([`crate::AnswerLimits::DEFAULT`], or larger where the provider's answer is
            /// larger, as Moyasar's whole order). A provider whose cargo feature is off has
            /// [`crate::AnswerLimits::DEFAULT`].
            pub fn default_answer_limits(self) -> crate::AnswerLimits {
                match self {
                    $(
                        #[cfg(feature = $name)]
                        Provider::$variant => {
                            <$room::$client as room::Room>::DEFAULT_ANSWER_LIMITS
                        }
                        #[cfg(not(feature = $name))]
                        Provider::$variant => crate::AnswerLimits::DEFAULT,
                    )*
                }
            }

            /// The provider's refund features and limits: the limits come from its spec (the
            /// generated `constraints` of its crate), the features from its documentation. A
            /// provider whose cargo feature is off has [`crate::Capabilities::NOT_COMPILED`].
            pub fn capabilities(self) -> crate::Capabilities {
                match self {
                    $(
                        #[cfg(feature = $name)]
                        Provider::$variant => <$room::$client as room::Room>::capabilities(),
                        #[cfg(not(feature = $name))]
                        Provider::$variant => crate::Capabilities::NOT_COMPILED,
                    )*
                }
            }
        }
    };
}
providers!(rooms);

/// One operation of a provider's spec, as the provider's generated crate states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecOperation {
    /// The normalized OpenAPI 3.0 document the provider's client was generated from (its
    /// generated crate's `NORMALIZED_OPENAPI`: the vendor's spec with our overlay applied).
    pub openapi: &'static str,
    /// The HTTP method, upper case (`POST`).
    pub method: &'static str,
    /// The path template, as written under the document's `paths`.
    pub path: &'static str,
}

impl SpecOperation {
    /// The JSON Schema of the operation's JSON request body: the document itself with its root
    /// `$ref`ing the body schema, so the document's `#/components/...` references resolve
    /// (OpenAPI 3.0's schema objects follow JSON Schema draft 4). `None` when the operation
    /// has no JSON request body.
    pub fn request_body_schema(&self) -> Option<serde_json::Value> {
        let mut document: serde_json::Value = serde_json::from_str(self.openapi).ok()?;
        let schema = document
            .pointer(&format!(
                "/paths/{}/{}/requestBody/content/application~1json/schema",
                self.path.replace('~', "~0").replace('/', "~1"),
                self.method.to_ascii_lowercase()
            ))?
            .clone();
        let root = document.as_object_mut()?;
        match schema {
            serde_json::Value::Object(schema) => root.extend(schema),
            _ => return None,
        }
        Some(document)
    }
}

/// The error for a provider whose cargo feature is off.
#[allow(dead_code)] // used only when a provider's feature is off
pub(crate) fn not_compiled(provider: Provider) -> RefundError {
    RefundError::invalid("provider", "not compiled in (cargo feature)").with_provider(provider)
}

/// The error of a notification from a provider that documents none ([`room::Room`]'s default).
pub(crate) fn no_notifications(provider: Provider) -> RefundError {
    RefundError::invalid(
        "notification",
        format!("{provider} documents no notifications: nothing to read"),
    )
    .with_provider(provider)
}
