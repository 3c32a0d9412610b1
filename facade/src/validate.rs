//! Validation of a [`RefundRequest`] before any I/O: the generic rules, then the rules of the
//! request's provider ([`Capabilities`], from its room).

use rust_decimal::Decimal;

use crate::capabilities::Capabilities;
use crate::error::RefundError;
use crate::model::RefundRequest;
use crate::money::Money;

impl RefundRequest {
    /// Checks the request before any I/O: the generic rules, then the
    /// provider's [`Capabilities`]. Every violation is reported at once: the
    /// error is an [`ErrorKind::InvalidRequest`](crate::ErrorKind) naming the
    /// first field, and [`RefundError::problems`] lists them all (with the
    /// request's provider set on the error).
    ///
    /// Generic rules: `order_id` not blank; `amount` positive and representable
    /// in `i64` minor units; `description` at most 500 characters; each line
    /// item with at least one product id character, quantity at least 1, prices
    /// in the request's currency, `0 <= unit_vat <= unit_price`,
    /// `0 <= vat_percent <= 100`; line totals summing exactly to `amount`.
    ///
    /// Provider rules: see [`Capabilities`]; fields a provider does not carry
    /// (`line_items` for Optty/Moyasar, `capture_number` outside AfterPay,
    /// `provider_order_id` outside OpenApp) are rejected, not silently dropped.
    pub fn validate(&self) -> Result<(), RefundError> {
        let mut problems = Problems::default();
        self.validate_generic(&mut problems);
        self.validate_for_provider(&self.provider.capabilities(), &mut problems);
        problems
            .into_error()
            .map_or(Ok(()), |error| Err(error.with_provider(self.provider)))
    }

    fn validate_generic(&self, problems: &mut Problems) {
        if self.order_id.trim().is_empty() {
            problems.push("order_id", "is required and must not be blank");
        }
        // Field names are written out only for a problem: the usual request allocates nothing.
        let mut no_control = |field: &dyn Fn() -> String, text: &str| {
            if let Some(bad) = text.chars().find(|c| c.is_control()) {
                problems.push(field(), format!("contains the control character {bad:?}"));
            }
        };
        no_control(&|| "order_id".to_owned(), &self.order_id);
        if let Some(capture) = &self.capture_number {
            no_control(&|| "capture_number".to_owned(), capture);
        }
        if let Some(id) = &self.provider_order_id {
            no_control(&|| "provider_order_id".to_owned(), id);
        }
        for (i, item) in self.line_items.iter().enumerate() {
            no_control(&|| format!("line_items[{i}].product_id"), &item.product_id);
            no_control(
                &|| format!("line_items[{i}].description"),
                &item.description,
            );
        }
        if !self.amount.is_positive() {
            problems.push(
                "amount",
                format!("must be greater than zero, got {}", self.amount),
            );
        }
        if let Err(e) = self.amount.to_minor_units() {
            problems.push("amount", e.to_string());
        }
        if let Some(description) = &self.description {
            if description.trim().is_empty() {
                problems.push(
                    "description",
                    "must not be empty or only whitespace: leave it out instead",
                );
            }
            if let Some(bad) = description.chars().find(|c| c.is_control()) {
                problems.push(
                    "description",
                    format!("contains the control character {bad:?}"),
                );
            }
            let len = description.chars().count();
            if len > Capabilities::MAX_DESCRIPTION_LEN {
                problems.push(
                    "description",
                    format!(
                        "is {len} characters long; at most {} are allowed",
                        Capabilities::MAX_DESCRIPTION_LEN
                    ),
                );
            }
        }
        if self.line_items.is_empty() {
            return;
        }
        let currency = self.amount.currency();
        // `None` once a line total cannot be computed or added.
        let mut sum = Some(Money::zero(currency));
        for (i, item) in self.line_items.iter().enumerate() {
            let field = |name: &str| format!("line_items[{i}].{name}");
            if item.product_id.trim().is_empty() {
                problems.push(field("product_id"), "must not be blank");
            }
            if item.quantity < 1 {
                problems.push(field("quantity"), "must be at least 1");
            }
            for (name, money) in [
                ("unit_price", &item.unit_price),
                ("unit_vat", &item.unit_vat),
            ] {
                if money.currency() != currency {
                    problems.push(
                        field(&format!("{name}.currency")),
                        format!(
                            "is {} but the refund amount is in {}",
                            money.currency(),
                            currency
                        ),
                    );
                }
            }
            if item.unit_price.amount() < Decimal::ZERO {
                problems.push(field("unit_price"), "must not be negative");
            }
            if item.unit_vat.amount() < Decimal::ZERO {
                problems.push(field("unit_vat"), "must not be negative");
            }
            if item.unit_vat.amount() > item.unit_price.amount() {
                problems.push(
                    field("unit_vat"),
                    format!(
                        "{} exceeds the gross unit price {}",
                        item.unit_vat, item.unit_price
                    ),
                );
            }
            if item.vat_percent < Decimal::ZERO || item.vat_percent > Decimal::ONE_HUNDRED {
                problems.push(
                    field("vat_percent"),
                    format!("must be between 0 and 100, got {}", item.vat_percent),
                );
            }
            sum = match item.line_total() {
                Ok(total) => sum.and_then(|sum| sum.checked_add(&total)),
                Err(e) => {
                    problems.push(format!("line_items[{i}]"), e.to_string());
                    None
                }
            };
        }
        let Some(sum) = sum else {
            problems.push(
                "line_items",
                "the line totals cannot be added up in the amount's currency",
            );
            return;
        };
        if sum != self.amount {
            problems.push(
                "line_items",
                format!(
                    "line totals (unit_price x quantity) sum to {sum} but the amount is {}",
                    self.amount
                ),
            );
        }
    }

    fn validate_for_provider(&self, caps: &Capabilities, problems: &mut Problems) {
        let provider = self.provider;
        let too_long = |field: &str, len: usize, max: usize| {
            (
                field.to_owned(),
                format!("is {len} characters long; {provider} accepts at most {max}"),
            )
        };

        // The order id as one path segment: encoding keeps every other text in its segment,
        // but no encoding keeps a dot segment there (URL parsers resolve `%2e%2e` too).
        if caps.order_id_in_path && matches!(self.order_id.as_str(), "." | "..") {
            problems.push(
                "order_id",
                format!(
                    "`{}` cannot be one segment of {provider}'s refund path (URLs resolve it as a directory step)",
                    self.order_id
                ),
            );
        }

        // Amount.
        let currency = self.amount.currency();
        if let Some(exponents) = caps.currency_exponents
            && !exponents.contains(&currency.exponent())
        {
            problems.push("amount.currency",
                format!(
                    "{provider} cannot express {currency} amounts exactly ({currency} has {} decimal places; {provider} supports {})",
                    currency.exponent(),
                    exponents
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),);
        }
        if let Some(step) = caps.amount_multiple_of
            && !(self.amount.amount() % step).is_zero()
        {
            problems.push(
                "amount",
                format!(
                    "{provider} takes amounts in steps of {step}; {} is not one",
                    self.amount
                ),
            );
        }
        // An amount that does not fit i64 minor units is already a problem of its own.
        if let (Some(max), Ok(minor)) = (caps.max_minor_units, self.amount.to_minor_units())
            && minor > max
        {
            problems.push(
                "amount",
                format!(
                    "{} is {minor} minor units; {provider} accepts at most {max}",
                    self.amount
                ),
            );
        }

        // Identifiers and text.
        if let Some(max) = caps.max_order_id_len {
            let len = self.order_id.chars().count();
            if len > max {
                problems.push_pair(too_long("order_id", len, max));
            }
        }
        let reference_len = self.merchant_reference.as_str().len();
        if reference_len > caps.max_reference_len {
            problems.push_pair(too_long(
                "merchant_reference",
                reference_len,
                caps.max_reference_len,
            ));
        }
        if let (Some(max), Some(description)) = (caps.max_description_len, &self.description) {
            let len = description.chars().count();
            if len > max {
                problems.push_pair(too_long("description", len, max));
            }
        }

        // Line items. Without them AfterPay refunds the whole remaining capture whatever
        // `amount` says, so the facade could report an amount the provider did not refund.
        if caps.partial_requires_line_items && self.line_items.is_empty() {
            problems.push(
                "line_items",
                format!(
                    "{provider} takes the refunded amount only as line items (without them it \
                     refunds the whole remaining capture, whatever the amount says); list the \
                     refunded items, or one goodwill item for the amount"
                ),
            );
        }
        if !self.line_items.is_empty() {
            if !caps.line_items {
                problems.push(
                    "line_items",
                    format!(
                        "{provider} does not accept line items; send the amount without line items"
                    ),
                );
            }
            if let Some(max) = caps.max_line_items
                && self.line_items.len() > max
            {
                problems.push(
                    "line_items",
                    format!(
                        "has {} items; {provider} accepts at most {max}",
                        self.line_items.len()
                    ),
                );
            }
            if let Some(max) = caps.max_product_id_len {
                for (i, item) in self.line_items.iter().enumerate() {
                    let len = item.product_id.chars().count();
                    if len > max {
                        problems.push_pair(too_long(
                            &format!("line_items[{i}].product_id"),
                            len,
                            max,
                        ));
                    }
                }
            }
        }

        // Provider-specific identifiers.
        match (&self.capture_number, caps.requires_capture_number) {
            (None, true) => {
                problems.push("capture_number", format!("is required by {provider}"));
            }
            (Some(capture), true) => {
                if capture.trim().is_empty() {
                    problems.push("capture_number", "must not be blank");
                }
                if let Some(max) = caps.max_capture_number_len {
                    let len = capture.chars().count();
                    if len > max {
                        problems.push_pair(too_long("capture_number", len, max));
                    }
                }
            }
            (Some(_), false) => {
                problems.push(
                    "capture_number",
                    format!(
                        "is not used by {provider} (only by {})",
                        providers_that(|caps| caps.requires_capture_number)
                    ),
                );
            }
            (None, false) => {}
        }
        match (&self.provider_order_id, caps.requires_provider_order_id) {
            (None, true) => {
                problems.push("provider_order_id", format!("is required by {provider}"));
            }
            (Some(id), true) if id.trim().is_empty() => {
                problems.push("provider_order_id", "must not be blank");
            }
            (Some(_), false) => problems.push(
                "provider_order_id",
                format!(
                    "is not used by {provider} (only by {})",
                    providers_that(|caps| caps.requires_provider_order_id)
                ),
            ),
            _ => {}
        }
    }
}

/// The providers whose capabilities satisfy `rule`, for messages: `afterpay` or
/// `afterpay, openapp`.
fn providers_that(rule: fn(&Capabilities) -> bool) -> String {
    crate::Provider::ALL
        .into_iter()
        .filter(|provider| rule(&provider.capabilities()))
        .map(crate::Provider::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The problems of one request, collected so that all are reported together.
#[derive(Default)]
struct Problems(Vec<crate::error::FieldProblem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(crate::error::FieldProblem {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn push_pair(&mut self, (field, reason): (String, String)) {
        self.push(field, reason);
    }

    fn into_error(self) -> Option<RefundError> {
        let first = self.0.first()?;
        Some(RefundError::invalid(first.field.clone(), first.reason.clone()).with_problems(self.0))
    }
}
