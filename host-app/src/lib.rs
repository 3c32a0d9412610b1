//! A stand-in for a service that depends on `refunds` with default features. Its own types use
//! the serde shapes that break when a dependency turns on serde_json's `arbitrary_precision`
//! (cargo unifies features across the build): untagged and internally tagged enums, and
//! `#[serde(flatten)]`, each holding numbers.

use serde::Deserialize;

/// An untagged enum with numbers.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// A number of items.
    Count(u32),
    /// A rate.
    Rate(f64),
    /// Anything else.
    Named(String),
}

/// An internally tagged enum with numbers.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A shipment of `parcels` weighing `kg`.
    Shipped {
        /// Parcels.
        parcels: u32,
        /// Weight.
        kg: f64,
    },
    /// A refund the service asked for, in minor units.
    RefundRequested {
        /// Minor units.
        minor: i64,
    },
}

/// A struct flattening another that holds numbers.
#[derive(Debug, PartialEq, Deserialize)]
pub struct Envelope {
    /// The envelope's id.
    pub id: u64,
    /// The flattened body.
    #[serde(flatten)]
    pub body: Body,
}

/// The flattened part.
#[derive(Debug, PartialEq, Deserialize)]
pub struct Body {
    /// A count.
    pub retries: u8,
    /// A ratio.
    pub ratio: f64,
}

/// What the service does with the refunds crate: build a client from its settings.
pub fn refunds_client(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<refunds::Refunds, refunds::RefundError> {
    refunds::Refunds::from_lookup(lookup)
}
