//! The quick start: starts the sandbox in-process, refunds one order through every provider
//! via the facade, and prints what each provider answered.
//!
//! Run it with `cargo xtask demo` (regenerates the clients first) or
//! `cargo run -p refunds --example demo`.

use refunds::{
    AfterPayConfig, LineItem, MerchantReference, Money, MoyasarConfig, OpenAppConfig, OpttyConfig,
    Provider, RefundReason, RefundRequest, Refunds,
};
use rust_decimal::Decimal;
use sandbox::{OrderSeed, Sandbox, SandboxConfig, credentials};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;

    // One captured order per provider.
    sandbox
        .optty()
        .seed_order(OrderSeed::new("ORD-OPTTY-1", "AUD", Decimal::new(10000, 2)));
    sandbox.afterpay().seed_order(
        OrderSeed::new("ORD-AFTERPAY-1", "EUR", Decimal::new(30000, 2))
            .capture_number(sandbox::DEFAULT_CAPTURE_NUMBER),
    );
    sandbox.moyasar().seed_order(OrderSeed::new(
        "ORD-MOYASAR-1",
        "SAR",
        Decimal::new(262346, 2),
    ));
    sandbox.openapp().seed_order(
        OrderSeed::new("ORD-OPENAPP-1", "PLN", Decimal::new(5000, 2))
            .oa_order_id("OA12345678901234"),
    );

    // Base URLs are always named explicitly: here, the sandbox's.
    let refunds = Refunds::builder()
        .optty(OpttyConfig::new(
            sandbox.optty().base_url(),
            sandbox.optty().base_url(),
            credentials::OPTTY_CLIENT_ID,
            credentials::OPTTY_CLIENT_SECRET,
        ))
        .afterpay(AfterPayConfig::new(
            sandbox.afterpay().base_url(),
            credentials::AFTERPAY_API_KEY,
        ))
        .moyasar(MoyasarConfig::new(
            sandbox.moyasar().base_url(),
            credentials::MOYASAR_SECRET_KEY,
        ))
        .openapp(OpenAppConfig::new(
            sandbox.openapp().base_url(),
            credentials::OPENAPP_API_KEY,
            credentials::OPENAPP_API_SECRET,
        ))
        .build()?;

    let requests = [
        RefundRequest::new(
            Provider::Optty,
            "ORD-OPTTY-1",
            Money::parse("24.98", "AUD")?,
            MerchantReference::new("demo-optty-1")?,
        )
        .with_description("Customer returned the item"),
        RefundRequest::new(
            Provider::AfterPay,
            "ORD-AFTERPAY-1",
            Money::parse("300.00", "EUR")?,
            MerchantReference::new("demo-afterpay-1")?,
        )
        .with_capture_number(sandbox::DEFAULT_CAPTURE_NUMBER)
        // AfterPay takes the amount as line items: here the whole capture, 25 x 12.00.
        .with_line_items(vec![LineItem {
            product_id: "0001".to_owned(),
            description: "Item 1 description".to_owned(),
            quantity: 25,
            unit_price: Money::parse("12.00", "EUR")?,
            unit_vat: Money::parse("2.00", "EUR")?,
            vat_percent: Decimal::new(20, 0),
        }]),
        RefundRequest::new(
            Provider::Moyasar,
            "ORD-MOYASAR-1",
            Money::parse("1000.00", "SAR")?,
            MerchantReference::new("demo-moyasar-1")?,
        ),
        RefundRequest::new(
            Provider::OpenApp,
            "ORD-OPENAPP-1",
            Money::parse("19.99", "PLN")?,
            MerchantReference::new("demo-openapp-1")?,
        )
        .with_provider_order_id("OA12345678901234")
        .with_reason(RefundReason::Returned),
    ];

    println!(
        "{:<9} {:<15} {:>12} {:<10} {:<38} {:>18}",
        "provider", "order", "amount", "status", "provider refund id", "refunded so far"
    );
    let mut failures = 0;
    for request in &requests {
        match refunds.refund(request).await {
            Ok(refund) => {
                // The facade's view where the provider reports a total; otherwise the
                // sandbox's own books.
                let refunded_so_far = match refund.refunded_total {
                    Some(total) => total.to_string(),
                    None => {
                        let state = sandbox
                            .handle(request.provider.as_str())
                            .and_then(|server| server.order(&request.order_id));
                        state.map_or("?".to_owned(), |s| {
                            format!("{} {} (sandbox)", s.currency, s.refunded)
                        })
                    }
                };
                println!(
                    "{:<9} {:<15} {:>12} {:<10} {:<38} {:>18}",
                    refund.provider.as_str(),
                    request.order_id,
                    refund.amount.to_string(),
                    format!("{:?}", refund.status),
                    refund.provider_refund_id.as_deref().unwrap_or("-"),
                    refunded_so_far
                );
            }
            Err(err) => {
                failures += 1;
                println!(
                    "{:<9} {:<15} error: {err}",
                    request.provider.as_str(),
                    request.order_id
                );
            }
        }
    }
    sandbox.shutdown().await;
    if failures > 0 {
        return Err(format!("{failures} refund(s) failed").into());
    }
    Ok(())
}
