//! The semantics of each verb on a resource, as kube-apiserver's generic registry applies
//! them: create, get, list, update, patch, delete and deletecollection, with
//! resourceVersion preconditions, the Node status subresource, decoding of bodies and patch
//! results into the resource's type (unknown fields dropped with a warning, `omitempty`
//! applied), validation, no-op detection, `ListOptions` validation, the Event version
//! conversion, and Table answers for `kubectl get` (`table`).
//!
//! Sources: apiserver `pkg/registry/generic/registry/store.go` (Create/Update/Delete),
//! `pkg/registry/rest/create.go` (`BeforeCreate`), `pkg/registry/rest/update.go`
//! (`BeforeUpdate`), `pkg/endpoints/handlers/{create,update,patch,delete,get}.go`, and
//! kubernetes `pkg/registry/core/node/strategy.go`. Every check and write of one request runs
//! inside one store transaction. No HTTP here: the server turns [`Reply`] and [`ApiError`]
//! into responses.
//!
//! One verb, or one step every verb shares, per file: `read` (get, list), `create`,
//! `update` (update, patch), `delete` (delete, deletecollection); `object` (a stored
//! object's metadata and forms), `decode` (bodies and patch results), `validate` (the
//! kinds' rules and the 422 answers), `list_options` (selectors, `ListOptions`,
//! `continue`), and `table`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::resources::FieldValidation;
use crate::routes::query_param;
use crate::status::ApiError;
use crate::validation::FieldError;
use validate::invalid_unnamed;

mod create;
mod decode;
mod delete;
mod list_options;
mod object;
mod read;
pub mod table;
mod update;
mod validate;

pub use create::{bootstrap, create, namespace_object};
pub use delete::{delete, delete_collection};
pub use list_options::{Selectors, validate_list_options};
pub use read::{get, list};
pub use update::{patch, update};

/// One committed change, for accounting.
#[derive(Debug, Clone)]
pub struct Change {
    /// Namespace of the object ("" when cluster-scoped).
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// The object before (None on create).
    pub before: Option<Arc<Value>>,
    /// The object after (None on delete).
    pub after: Option<Arc<Value>>,
    /// The resourceVersion the change produced.
    pub rv: u64,
}

/// A successful answer: HTTP code, serialized body, and the committed changes (empty for
/// reads, no-op writes and dry runs).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub code: u16,
    /// JSON body.
    pub body: Bytes,
    /// What was written.
    pub changes: Vec<Change>,
    /// `Warning` header texts (unknown fields dropped under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

impl Reply {
    fn json(code: u16, value: &Value, changes: Vec<Change>) -> Reply {
        Reply::bytes(
            code,
            Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            changes,
        )
    }

    fn bytes(code: u16, body: Bytes, changes: Vec<Change>) -> Reply {
        Reply {
            code,
            body,
            changes,
            warnings: Vec::new(),
        }
    }

    fn with_warnings(mut self, unknown_fields: &[String]) -> Reply {
        self.warnings = unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        self
    }
}

/// What a verb answers: the reply, or the `Status` error the server sends instead.
pub type Answer = Result<Reply, ApiError>;

/// The parts of a write request the registry needs beyond the route.
pub struct WriteInput<'a> {
    /// The request body.
    pub body: &'a [u8],
    /// The Content-Type (for PATCH).
    pub content_type: &'a str,
    /// The raw query string.
    pub query: &'a str,
}

impl WriteInput<'_> {
    /// `dryRun=All`: run every check, persist nothing (apiserver
    /// `pkg/endpoints/handlers/rest.go`, `dryrun.IsDryRun`).
    fn dry_run(&self) -> bool {
        query_param(self.query, "dryRun").is_some_and(|v| v == "All")
    }

    /// The `fieldValidation` directive; an unsupported value is 422 on the write's options
    /// kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`), as apimachinery
    /// `pkg/apis/meta/v1/validation` `ValidateFieldValidation` reports it.
    fn field_validation(&self, options_kind: &str) -> Result<FieldValidation, ApiError> {
        let given = query_param(self.query, "fieldValidation");
        FieldValidation::parse(given.as_deref()).ok_or_else(|| {
            invalid_unnamed(
                options_kind,
                "meta.k8s.io",
                &[FieldError::not_supported(
                    "fieldValidation",
                    json!(given.unwrap_or_default()),
                    &["", "Ignore", "Strict", "Warn"],
                )],
            )
        })
    }
}
