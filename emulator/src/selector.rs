//! Label and field selectors of LIST and WATCH, parsed and matched as kube-apiserver does,
//! with the same 400 messages. Owns only parsing and matching; the HTTP layer turns a
//! [`SelectorError`] into the BadRequest Status.
//!
//! The apiserver answers a parse error with `errors.NewBadRequest(err.Error())`
//! (`pkg/endpoints/handlers/get.go` `ListResource`).
//!
//! The label selector lives in `label` (meaning and matching) and `label_parser` (syntax);
//! the field selector in `field` (syntax and matching) and `field_labels` (what each
//! resource makes selectable); each file cites the upstream code it mirrors.

mod field;
mod field_labels;
mod label;
mod label_parser;
#[cfg(test)]
mod tests;

pub use field::FieldSelector;
pub use label::LabelSelector;

/// A selector the real server rejects with 400 BadRequest; `Display` is that Status message.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectorError(pub String);
