//! OpenAPI Overlay 1.0 (<https://spec.openapis.org/overlay/v1.0.0.html>): the format of our
//! corrections to vendor documents.
//!
//! Each action selects nodes with an RFC 9535 JSONPath `target` and either merges `update` into
//! them (objects merge recursively, arrays append, anything else is replaced) or removes them.
//! We additionally insist that every action carries a `description` (the documented evidence that
//! forces the correction) and that every target selects at least one node, so a stale overlay
//! action fails loudly instead of silently doing nothing after a vendor update.

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::{JsonPath, PathElement};

/// A parsed overlay document.
#[derive(Debug, Deserialize)]
pub struct Overlay {
    /// Overlay format version; we accept 1.0.x.
    pub overlay: String,
    /// Title and version of this overlay.
    pub info: OverlayInfo,
    /// Corrections, applied in order.
    pub actions: Vec<Action>,
}

/// The `info` object of an overlay.
#[derive(Debug, Deserialize)]
pub struct OverlayInfo {
    /// What the overlay corrects.
    pub title: String,
    /// Version of the overlay itself.
    pub version: String,
}

/// One correction.
#[derive(Debug, Deserialize)]
pub struct Action {
    /// JSONPath selecting the nodes to change.
    pub target: String,
    /// Why: the documented payload that forces this correction.
    pub description: Option<String>,
    /// Value merged into every selected node.
    pub update: Option<Value>,
    /// Remove the selected nodes.
    #[serde(default)]
    pub remove: bool,
}

impl Overlay {
    /// Parses an overlay and checks the rules above that do not need the target document.
    pub fn parse(text: &str) -> Result<Self> {
        let overlay: Overlay = serde_json::from_str(text).context("overlay is not valid JSON")?;
        ensure!(
            overlay.overlay.starts_with("1.0."),
            "unsupported overlay version {}",
            overlay.overlay
        );
        for (index, action) in overlay.actions.iter().enumerate() {
            let described = action
                .description
                .as_deref()
                .is_some_and(|d| !d.trim().is_empty());
            ensure!(
                described,
                "overlay action {index} ({}) has no description naming its evidence",
                action.target
            );
            ensure!(
                action.remove != action.update.is_some(),
                "overlay action {index} ({}) must have exactly one of `update` and `remove: true`",
                action.target
            );
        }
        Ok(overlay)
    }

    /// Applies every action to `document`, in order.
    pub fn apply(&self, document: &mut Value) -> Result<()> {
        for (index, action) in self.actions.iter().enumerate() {
            apply_action(document, action)
                .with_context(|| format!("overlay action {index} ({})", action.target))?;
        }
        Ok(())
    }

    /// Applies every action that still applies, in order, and returns the failure of each one
    /// that does not (a target that selects nothing after a vendor update): what `cargo xtask
    /// diff` needs to go on reporting the vendor's changes beside the stale actions.
    pub fn apply_leniently(&self, document: &mut Value) -> Vec<anyhow::Error> {
        self.actions
            .iter()
            .enumerate()
            .filter_map(|(index, action)| {
                apply_action(document, action)
                    .with_context(|| format!("overlay action {index} ({})", action.target))
                    .err()
            })
            .collect()
    }
}

fn apply_action(document: &mut Value, action: &Action) -> Result<()> {
    let path = JsonPath::parse(&action.target).map_err(|e| anyhow!("bad JSONPath: {e}"))?;
    let pointers: Vec<Vec<Step>> = path
        .query_located(document)
        .locations()
        .map(|location| location.iter().map(Step::from).collect())
        .collect();
    if pointers.is_empty() {
        bail!("target selects nothing; the vendor document changed or the overlay is stale");
    }
    if let Some(update) = &action.update {
        for elements in &pointers {
            let node = node_mut(document, elements)?;
            merge(node, update);
        }
    } else {
        // Remove from the back so that earlier array indices stay valid.
        for elements in pointers.iter().rev() {
            let (last, parent) = elements.split_last().expect("root cannot be removed");
            match (node_mut(document, parent)?, last) {
                (Value::Object(map), Step::Name(name)) => {
                    map.remove(name);
                }
                (Value::Array(items), Step::Index(i)) => {
                    items.remove(*i);
                }
                _ => bail!("cannot remove {last:?}"),
            }
        }
    }
    Ok(())
}

/// One step of a located JSONPath result, owned so the document can be mutated afterwards.
#[derive(Debug)]
enum Step {
    Name(String),
    Index(usize),
}

impl From<&PathElement<'_>> for Step {
    fn from(element: &PathElement<'_>) -> Self {
        match element {
            PathElement::Name(name) => Step::Name((*name).to_owned()),
            PathElement::Index(i) => Step::Index(*i),
        }
    }
}

fn node_mut<'a>(mut node: &'a mut Value, steps: &[Step]) -> Result<&'a mut Value> {
    for step in steps {
        node = match (node, step) {
            (Value::Object(map), Step::Name(name)) => map
                .get_mut(name)
                .ok_or_else(|| anyhow!("no member {name}"))?,
            (Value::Array(items), Step::Index(i)) => {
                items.get_mut(*i).ok_or_else(|| anyhow!("no index {i}"))?
            }
            _ => bail!("path does not match the document"),
        };
    }
    Ok(node)
}

/// Overlay 1.0 merge: objects merge recursively, arrays append, other values are replaced.
fn merge(target: &mut Value, update: &Value) {
    match (target, update) {
        (Value::Object(target), Value::Object(update)) => {
            for (key, value) in update {
                match target.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(update)) => target.extend(update.iter().cloned()),
        (target, update) => *target = update.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overlay(actions: Value) -> Overlay {
        Overlay::parse(
            &json!({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": actions})
                .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn update_merges_and_remove_deletes() {
        let mut doc = json!({"a": {"b": 1, "c": [1]}, "d": {"e": true}, "r": ["x", "y", "z"]});
        overlay(json!([
            {"target": "$.a", "description": "why", "update": {"b": 2, "c": [2], "n": "new"}},
            {"target": "$.d.e", "description": "why", "remove": true},
            {"target": "$.r[?@ == 'y']", "description": "why", "remove": true}
        ]))
        .apply(&mut doc)
        .unwrap();
        assert_eq!(
            doc,
            json!({"a": {"b": 2, "c": [1, 2], "n": "new"}, "d": {}, "r": ["x", "z"]})
        );
    }

    #[test]
    fn an_action_that_selects_nothing_is_an_error() {
        let mut doc = json!({"a": 1});
        let err = overlay(json!([{"target": "$.missing", "description": "why", "remove": true}]))
            .apply(&mut doc)
            .unwrap_err();
        assert!(format!("{err:#}").contains("selects nothing"), "{err:#}");
    }

    #[test]
    fn an_action_without_evidence_is_rejected() {
        let text = json!({"overlay": "1.0.0", "info": {"title": "t", "version": "1"},
            "actions": [{"target": "$.a", "remove": true}]})
        .to_string();
        assert!(Overlay::parse(&text).is_err());
    }
}
