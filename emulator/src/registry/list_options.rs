//! The options of LIST and WATCH: label and field selectors, the `ListOptions` rules
//! (apimachinery `pkg/apis/meta/internalversion/validation` `ValidateListOptions`), and
//! the `continue` token that resumes a paged list (apiserver `pkg/storage/continue.go`).

use base64::Engine;
use serde_json::{Value, json};

use super::object::meta;
use super::validate::invalid_unnamed;
use crate::resources::ResourceDef;
use crate::routes::query_param;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::validation::FieldError;

/// The label and field selectors of a LIST or WATCH; a malformed one is a 400 with the
/// parser's message, as the real server answers.
pub struct Selectors {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Selectors {
    /// Parses `labelSelector` and `fieldSelector` from the query; the field labels a
    /// selector may use depend on the group and kind, as each upstream registry declares
    /// them (core/v1 and events.k8s.io/v1 Events differ).
    pub fn parse(def: &ResourceDef, query: &str) -> Result<Selectors, ApiError> {
        let label = query_param(query, "labelSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(&s))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field = query_param(query, "fieldSelector")
            .filter(|s| !s.is_empty())
            .map(|s| FieldSelector::parse_for_resource(def.group, def.kind, &s))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selectors { label, field })
    }

    /// Whether neither selector was given (apimachinery `SelectionPredicate.Empty`).
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    /// Whether the stored object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = meta(obj)
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.label.as_ref().is_none_or(|l| l.matches(labels))
            && self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// apimachinery `pkg/apis/meta/internalversion/validation` `ValidateListOptions`, as the
/// list and watch handlers run it (apiserver `pkg/endpoints/handlers/get.go`
/// `ListResource`): 422 `ListOptions.meta.k8s.io "" is invalid: ...`. The WatchList
/// feature gate is on (the default since 1.34), so a watch may set `sendInitialEvents`
/// with `resourceVersionMatch=NotOlderThan`.
pub fn validate_list_options(query: &str, watch: bool) -> Result<(), ApiError> {
    let given = |k: &str| query_param(query, k).filter(|v| !v.is_empty());
    let rv_match = given("resourceVersionMatch");
    let rv = given("resourceVersion");
    let continue_token = given("continue");
    let send_initial_events = query_param(query, "sendInitialEvents").is_some();
    let mut errs = Vec::new();
    let field = "resourceVersionMatch";
    if watch {
        if send_initial_events && rv_match.as_deref() != Some("NotOlderThan") {
            errs.push(FieldError::forbidden(
                field,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if let Some(m) = &rv_match {
            if !send_initial_events {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    field,
                    json!(m),
                    &["NotOlderThan"],
                ));
            }
            if continue_token.is_some() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if let Some(m) = &rv_match {
            if rv.is_none() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continue_token.is_some() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    field,
                    json!(m),
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if m == "Exact" && rv.as_deref() == Some("0") {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial_events {
            errs.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid_unnamed("ListOptions", "meta.k8s.io", &errs))
    }
}

/// The decoded `continue` token: which snapshot, where to resume.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ContinueToken {
    pub(super) v: String,
    pub(super) rv: u64,
    pub(super) snapshot: u64,
    pub(super) offset: usize,
}

/// Decodes a `continue` token; a malformed one is 400 `invalid continue token: continue key
/// is not valid: ...` (apiserver `pkg/storage/continue.go` `DecodeContinue`, wrapped by
/// `pkg/storage/interfaces.go` `ValidateListOptions`), with the base64 decoder's or, for
/// a token that does not start like JSON, encoding/json's message.
pub(super) fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    // Go's `base64.RawURLEncoding` ignores the unused bits of the last symbol.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let raw = lenient.decode(token.as_bytes()).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            invalid(format!("illegal base64 data at input byte {at}"))
        }
        other => invalid(other.to_string()),
    })?;
    serde_json::from_slice::<ContinueToken>(&raw)
        .map_err(|e| invalid(go_json_start_error(&raw).unwrap_or_else(|| e.to_string())))
}

/// encoding/json's error for a document whose first byte cannot start a JSON value
/// (`scanner.go` `stateBeginValue`: `invalid character 'x' looking for beginning of
/// value`, the byte quoted by `quoteChar`); None when it starts like JSON.
fn go_json_start_error(data: &[u8]) -> Option<String> {
    let &c = data
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if matches!(
        c,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return None;
    }
    // `quoteChar`: strconv.Quote of the byte as a rune, between single quotes.
    let quoted = match c {
        b'\'' => "\\'".to_string(),
        b'"' => "\"".to_string(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0c => "\\f".into(),
        0x0b => "\\v".into(),
        0x20..=0x7e => (c as char).to_string(),
        0x00..=0x1f | 0x7f => format!("\\x{c:02x}"),
        0x80..=0xa0 | 0xad => format!("\\u{:04x}", u32::from(c)),
        _ => char::from(c).to_string(),
    };
    Some(format!(
        "invalid character '{quoted}' looking for beginning of value"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_continue_token_is_reported_as_the_go_decoders_do() {
        let message = |token: &str| {
            decode_continue(token)
                .err()
                .and_then(|e| e.body["message"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        // "garbage" decodes (trailing bits ignored, as Go's RawURLEncoding does) to bytes
        // that are not JSON.
        assert_eq!(
            message("garbage"),
            "invalid continue token: continue key is not valid: invalid character '\\u0081' looking for beginning of value"
        );
        assert_eq!(
            message("a*b"),
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 1"
        );
    }

    #[test]
    fn go_json_start_errors_quote_the_byte_like_quote_char() {
        assert_eq!(
            go_json_start_error(b"  x"),
            Some("invalid character 'x' looking for beginning of value".into())
        );
        assert_eq!(
            go_json_start_error(b"'"),
            Some("invalid character '\\'' looking for beginning of value".into())
        );
        assert_eq!(
            go_json_start_error(&[0x01]),
            Some("invalid character '\\x01' looking for beginning of value".into())
        );
        assert_eq!(go_json_start_error(b"{\"v\":1}"), None);
    }
}
