//! The host's own serde code deserializes correctly while it depends on `refunds` (in the same
//! build as every other workspace member, as `cargo test --workspace` builds it). With
//! serde_json's `arbitrary_precision` turned on by any crate of the build, each of these fails
//! ("invalid type: map, expected u32" and the like).

use host_app::{Body, Envelope, Event, Limit};

#[test]
fn untagged_enums_with_numbers() {
    let limits: Vec<Limit> = serde_json::from_str(r#"[3, 0.25, "unbounded"]"#).unwrap();
    assert_eq!(
        limits,
        [
            Limit::Count(3),
            Limit::Rate(0.25),
            Limit::Named("unbounded".into())
        ]
    );
}

#[test]
fn internally_tagged_enums_with_numbers() {
    let events: Vec<Event> = serde_json::from_str(
        r#"[{"type":"shipped","parcels":2,"kg":1.5},{"type":"refund_requested","minor":2600}]"#,
    )
    .unwrap();
    assert_eq!(
        events,
        [
            Event::Shipped {
                parcels: 2,
                kg: 1.5
            },
            Event::RefundRequested { minor: 2600 }
        ]
    );
}

#[test]
fn flattened_structs_with_numbers() {
    let envelope: Envelope = serde_json::from_str(r#"{"id":7,"retries":3,"ratio":0.5}"#).unwrap();
    assert_eq!(
        envelope,
        Envelope {
            id: 7,
            body: Body {
                retries: 3,
                ratio: 0.5
            }
        }
    );
}

#[test]
fn the_host_uses_refunds_with_default_features() {
    let settings = |name: &str| match name {
        "REFUNDS_MOYASAR_BASE_URL" => Some("https://pg.mysr.dev".to_owned()),
        "REFUNDS_MOYASAR_SECRET_KEY" => Some("sk_test_1".to_owned()),
        _ => None,
    };
    let refunds = host_app::refunds_client(&settings).unwrap();
    assert_eq!(refunds.configured(), [refunds::Provider::Moyasar]);
}
