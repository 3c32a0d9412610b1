//! The request constraints a normalized spec states, as Rust constants in the generated crate
//! (`<provider>_api::constraints`), so that the facade's validation and the sandbox's read
//! them instead of restating them: a vendor change of a limit changes what both accept, and a
//! constraint that disappears breaks the build where it was used.
//!
//! One module per operation (named like progenitor's method), then one module per property of
//! its JSON request body, nested like the body (`items` for an array's elements):
//!
//! ```text
//! openapp_api::constraints::refund_order::case_id::MAX_LENGTH      // 36
//! openapp_api::constraints::refund_order::products::items::id::MAX_LENGTH
//! afterpay_api::constraints::refund_order::items::MAX_ITEMS        // 200
//! ```
//!
//! Each module holds `WIRE_NAME` and `REQUIRED`, and only the keywords its schema states:
//! `MIN_LENGTH`, `MAX_LENGTH`, `PATTERN`, `FORMAT`, `ENUM`, `MINIMUM`, `MAXIMUM` (an `i64` for
//! integer schemas, the exact decimal text otherwise), `EXCLUSIVE_MINIMUM`, `EXCLUSIVE_MAXIMUM`,
//! `MULTIPLE_OF` (text), `MIN_ITEMS`, `MAX_ITEMS`, `NULLABLE`.

use anyhow::{Context, Result};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use serde_json::Value;

use crate::codegen::snake_case;
use crate::spec::operations;

/// The `constraints` module for every operation with a JSON or form request body.
pub fn constraint_tokens(openapi: &Value) -> Result<TokenStream> {
    let mut modules = Vec::new();
    for (method, path, operation) in operations(openapi) {
        let Some(operation_id) = operation["operationId"].as_str() else {
            continue;
        };
        let content = &operation["requestBody"]["content"];
        let Some(schema) = ["application/json", "application/x-www-form-urlencoded"]
            .iter()
            .find_map(|media| content.get(*media).map(|m| &m["schema"]))
        else {
            continue;
        };
        let body = node_tokens(openapi, schema, 0)
            .with_context(|| format!("constraints of {operation_id}"))?;
        let name = ident(operation_id);
        let doc = format!(" The request body of `{} {path}`.", method.to_uppercase());
        modules.push(quote! {
            #[doc = #doc]
            pub mod #name {
                #body
            }
        });
    }
    Ok(quote! {
        /// The request constraints the spec states, one module per operation and per body
        /// property (see the xtask's `constraints` module for the layout). Written by
        /// `cargo xtask generate`: the facade and the sandbox validate with these.
        pub mod constraints {
            #(#modules)*
        }
    })
}

/// A module-safe identifier for a wire name (`caseId` -> `case_id`, `type` -> `type_`).
pub(crate) fn ident(name: &str) -> syn::Ident {
    let mut snake = snake_case(name).replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    if syn::parse_str::<syn::Ident>(&snake).is_err() || snake.starts_with(char::is_numeric) {
        snake.push('_');
    }
    syn::Ident::new(&snake, Span::call_site())
}

/// Follows `$ref` and a single-element `allOf` (`{"allOf":[{"$ref":..}], "description":..}`),
/// merging the outer keywords over the referenced schema.
fn resolve(openapi: &Value, schema: &Value, depth: usize) -> Result<Value> {
    anyhow::ensure!(depth < 32, "schema references nest too deep");
    if let Some(reference) = schema["$ref"].as_str() {
        let pointer = reference
            .strip_prefix('#')
            .with_context(|| format!("external reference {reference}"))?;
        let target = openapi
            .pointer(pointer)
            .with_context(|| format!("dangling reference {reference}"))?;
        return resolve(openapi, target, depth + 1);
    }
    if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
        let mut merged = resolve(openapi, only, depth + 1)?;
        if let (Some(merged), Some(outer)) = (merged.as_object_mut(), schema.as_object()) {
            for (key, value) in outer {
                if key != "allOf" {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        return Ok(merged);
    }
    Ok(schema.clone())
}

/// The constants of one schema node, and one child module per property (or `items`).
fn node_tokens(openapi: &Value, schema: &Value, depth: usize) -> Result<TokenStream> {
    let schema = resolve(openapi, schema, depth)?;
    let mut items = keyword_tokens(&schema);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema["properties"].as_object() {
        if !required.is_empty() {
            items.push(quote! {
                /// The properties the object must have (wire names).
                pub const REQUIRED_PROPERTIES: &[&str] = &[#(#required),*];
            });
        }
        for (wire_name, property) in properties {
            let name = ident(wire_name);
            let is_required = required.contains(&wire_name.as_str());
            let body = node_tokens(openapi, property, depth + 1)?;
            let doc = format!(" `{wire_name}`.");
            items.push(quote! {
                #[doc = #doc]
                pub mod #name {
                    /// The property's name on the wire.
                    pub const WIRE_NAME: &str = #wire_name;
                    /// Whether the object must carry it.
                    pub const REQUIRED: bool = #is_required;
                    #body
                }
            });
        }
    }
    if let Some(element) = schema.get("items") {
        let body = node_tokens(openapi, element, depth + 1)?;
        items.push(quote! {
            /// Each element of the array.
            pub mod items {
                #body
            }
        });
    }
    Ok(quote! { #(#items)* })
}

/// The constants for the keywords a schema states itself.
fn keyword_tokens(schema: &Value) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let integer = schema["type"].as_str() == Some("integer");
    let count = |key: &str| schema[key].as_u64().and_then(|n| usize::try_from(n).ok());
    for (key, name, doc) in [
        ("minLength", "MIN_LENGTH", " The fewest characters."),
        ("maxLength", "MAX_LENGTH", " The most characters."),
        ("minItems", "MIN_ITEMS", " The fewest elements."),
        ("maxItems", "MAX_ITEMS", " The most elements."),
    ] {
        if let Some(n) = count(key) {
            let name = syn::Ident::new(name, Span::call_site());
            let n = proc_macro2::Literal::usize_unsuffixed(n);
            out.push(quote! { #[doc = #doc] pub const #name: usize = #n; });
        }
    }
    for (key, name, doc) in [
        ("minimum", "MINIMUM", " The smallest value."),
        ("maximum", "MAXIMUM", " The largest value."),
        (
            "multipleOf",
            "MULTIPLE_OF",
            " Values are multiples of this.",
        ),
    ] {
        let Some(number) = schema.get(key).filter(|v| v.is_number()) else {
            continue;
        };
        let name = syn::Ident::new(name, Span::call_site());
        match number.as_i64() {
            Some(n) if integer => {
                let n = proc_macro2::Literal::i64_unsuffixed(n);
                out.push(quote! { #[doc = #doc] pub const #name: i64 = #n; });
            }
            _ => {
                // As text: the consumer parses it as an exact decimal. (The spec's number was
                // read by serde_json; its shortest round-trip text is what the spec wrote for
                // any bound a payment spec states.)
                let text = number.to_string();
                out.push(quote! { #[doc = #doc] pub const #name: &str = #text; });
            }
        }
    }
    for (key, name, doc) in [
        (
            "exclusiveMinimum",
            "EXCLUSIVE_MINIMUM",
            " The minimum itself is excluded.",
        ),
        (
            "exclusiveMaximum",
            "EXCLUSIVE_MAXIMUM",
            " The maximum itself is excluded.",
        ),
        ("nullable", "NULLABLE", " Whether `null` is allowed."),
    ] {
        if let Some(flag) = schema[key].as_bool() {
            let name = syn::Ident::new(name, Span::call_site());
            out.push(quote! { #[doc = #doc] pub const #name: bool = #flag; });
        }
    }
    for (key, name, doc) in [
        (
            "pattern",
            "PATTERN",
            " The regular expression values match (ECMA 262).",
        ),
        ("format", "FORMAT", " The value's format."),
    ] {
        if let Some(text) = schema[key].as_str() {
            let name = syn::Ident::new(name, Span::call_site());
            out.push(quote! { #[doc = #doc] pub const #name: &str = #text; });
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if texts.len() == values.len() && !texts.is_empty() {
            out.push(quote! {
                /// The values allowed.
                pub const ENUM: &[&str] = &[#(#texts),*];
            });
        }
    }
    out
}
