//! Field selectors: the `fieldSelector` syntax as apimachinery `pkg/fields/selector.go`
//! reads it (`ParseSelector`, `splitTerms`, `splitTerm`, `UnescapeValue`), the `Transform`
//! of each label through the resource's conversion (`field_labels`), and matching.

use serde_json::Value;

use super::SelectorError;
use super::field_labels::{LabelConversion, field_value, label_conversion};

/// One `field=value` (`==` is the same) or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed `fieldSelector` query parameter; exists so LIST and WATCH filter by the fields
/// the real server makes selectable. The default (empty) selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// Upstream `splitTerms`: splits on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut in_slash) = (0, false);
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Upstream `splitTerm`: the first `!=`, `==` or `=` splits the term.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Upstream `UnescapeValue`: `\\`, `\,`, `\=` are escapes; a bare `,` or `=` is an error
/// (upstream prints the rune as its number).
fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses a `fieldSelector` accepting only `metadata.name` and `metadata.namespace`,
    /// the labels every kind supports; any other label is refused with the message Node's
    /// conversion gives (`field label not supported: <label>`).
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(label_conversion("", None), s)
    }

    /// Parses a `fieldSelector` for a core/v1 kind (`Node`, `Namespace`, `Pod`, `Event`,
    /// `ConfigMap`) or a kind whose field labels do not depend on its group (`Lease`,
    /// `Deployment`). Same as [`FieldSelector::parse_for_resource`] with the core group.
    pub fn parse_for_kind(kind: &str, s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_for_resource("", kind, s)
    }

    /// Parses a `fieldSelector` for the resource of `group` (`""` for core) and `kind`,
    /// accepting exactly the field labels the real server accepts for it, so that
    /// events.k8s.io/v1 Events take `regarding.*` and core/v1 Events `involvedObject.*`.
    /// Labels are converted to the internal names the stored object is matched on.
    pub fn parse_for_resource(
        group: &str,
        kind: &str,
        s: &str,
    ) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(label_conversion(group, Some(kind)), s)
    }

    /// Upstream `fields.ParseSelector` followed by the `Transform` through the kind's field
    /// label conversion. Terms are sorted first, so the first error is the sorted-first one.
    fn parse_with(conversion: &LabelConversion, s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs).map_err(SelectorError)?;
            terms.push((lhs, value, op == "!="));
        }
        let terms = terms
            .into_iter()
            .map(|(label, value, negated)| {
                Ok(FieldTerm {
                    field: conversion
                        .convert(label)
                        .map_err(SelectorError)?
                        .to_string(),
                    value,
                    negated,
                })
            })
            .collect::<Result<Vec<_>, SelectorError>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(obj, &t.field) == t.value) != t.negated)
    }
}
