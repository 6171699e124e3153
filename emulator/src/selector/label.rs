//! Label selectors: what a requirement means and when it matches, as apimachinery
//! `pkg/labels/selector.go` defines them (`NewRequirement` with its checks and messages,
//! `Requirement.Matches`). The text is read by `label_parser`.

use serde_json::{Map, Value};

use super::SelectorError;
use super::label_parser::{Parser, lex};
use crate::validation::{FieldError, aggregate, is_qualified_name, is_valid_label_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream `Requirement.Matches`.
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .map(|v| v.as_str().unwrap_or(""));
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => value.is_some_and(has),
            Op::NotIn | Op::NotEquals => !value.is_some_and(has),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(actual), [wanted]) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.as_slice(),
                ) else {
                    return false;
                };
                match wanted.parse::<i64>() {
                    Ok(w) if self.op == Op::GreaterThan => actual > w,
                    Ok(w) => actual < w,
                    Err(_) => false,
                }
            }
        }
    }
}

/// Upstream `NewRequirement` as the parser calls it (no field path, so errors are reported
/// as `key: ...` / `values[i][key]: ...`, joined as an aggregate).
pub(super) fn new_requirement(
    key: &str,
    op: Op,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let mut errs: Vec<FieldError> = Vec::new();
    let key_errs = is_qualified_name(key);
    if !key_errs.is_empty() {
        errs.push(FieldError::invalid(
            "key",
            Value::String(key.into()),
            &key_errs.join("; "),
        ));
    }
    let list = Value::Array(values.iter().cloned().map(Value::String).collect());
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            errs.push(FieldError::invalid(
                "values",
                list,
                "for 'in', 'notin' operators, values set can't be empty",
            ));
        }
        Op::Equals | Op::DoubleEquals | Op::NotEquals if values.len() != 1 => {
            errs.push(FieldError::invalid(
                "values",
                list,
                "exact-match compatibility requires one single value",
            ));
        }
        Op::GreaterThan | Op::LessThan => {
            if values.len() != 1 {
                errs.push(FieldError::invalid(
                    "values",
                    list,
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        &format!("values[{i}]"),
                        Value::String(v.clone()),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = is_valid_label_value(v);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("values[{i}][{key}]"),
                Value::String(v.clone()),
                &value_errs.join("; "),
            ));
        }
    }
    if errs.is_empty() {
        Ok(Requirement {
            key: key.into(),
            op,
            values,
        })
    } else {
        Err(aggregate(&errs))
    }
}

/// A parsed `labelSelector` query parameter; exists so LIST and WATCH filter by labels
/// exactly as the real server does. The default (empty) selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the syntax of apimachinery `labels.Parse`: comma-separated requirements
    /// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser {
            tokens: lex(s),
            position: 0,
        };
        let requirements = parser.parse().map_err(SelectorError)?;
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}
