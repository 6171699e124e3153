//! Request bodies and patch results decoded into the resource's type, as the handlers do
//! (apiserver `pkg/endpoints/handlers/rest.go` `transformDecodeError`, `create.go`,
//! `update.go`, `patch.go`): JSON or YAML, the body's kind and apiVersion checked, unknown
//! fields dropped, warned about or refused as `fieldValidation` says.

use serde_json::{Value, json};

use super::WriteInput;
use super::object::to_stored;
use super::validate::invalid_unnamed;
use crate::gofmt::go_v;
use crate::patch;
use crate::resources::{Decoded, FieldValidation, ResourceDef};
use crate::status::ApiError;
use crate::validation::FieldError;

/// Decodes a create/update body. JSON and YAML are accepted, as by the real server's
/// serializers (apimachinery `pkg/runtime/serializer/codec_factory.go`); protobuf is not
/// implemented by the emulator and is answered with 415 UnsupportedMediaType. client-go
/// falls back to JSON after a 415 only for CBOR (`rest/client.go`,
/// `requestClientContentConfigProvider.UnsupportedMediaType`), so kubectl commands that
/// write through typed clients in protobuf (`kubectl create configmap`) fail here.
fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let value: Value = match patch::media_type(content_type).as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized or could not be decoded: {e}"
            ))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized or could not be decoded: {e}"
                ))
            })?
        }
        _ => return Err(ApiError::unsupported_body_media_type()),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized: the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Rejects a body whose apiVersion/kind names another type, as the decoder does; missing
/// apiVersion/kind are filled in, as the real handlers default them. The message is the
/// handler's `transformDecodeError` (apiserver `pkg/endpoints/handlers/rest.go`) around
/// the scheme's error: a kind the scheme has in the body's version cannot be converted
/// (apimachinery `pkg/runtime/scheme.go` `Convert`: `converting (v1.Pod) to (core.Node):
/// unknown conversion`), any other is not registered (`scheme.go` `New`: `no kind "Widget"
/// is registered for version "v1" in scheme ...`). The emulator knows the kinds it serves.
pub(super) fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let expected_version = def.api_version();
    let given_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let given_kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = if given_version.is_empty() {
        expected_version.as_str()
    } else {
        given_version
    };
    let kind = if given_kind.is_empty() {
        def.kind
    } else {
        given_kind
    };
    if version != expected_version || kind != def.kind {
        let short_version = version.rsplit('/').next().unwrap_or(version);
        let registered = crate::resources::RESOURCES
            .iter()
            .any(|r| r.api_version() == version && r.kind == kind);
        let why = if registered {
            let internal = match def.group {
                "" => "core",
                group => group.split('.').next().unwrap_or(group),
            };
            format!(
                "converting ({short_version}.{kind}) to ({internal}.{}): unknown conversion",
                def.kind
            )
        } else {
            format!(
                "no kind {kind:?} is registered for version {version:?} in scheme \"pkg/runtime/scheme.go:111\""
            )
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version {short_version:?} cannot be handled as a {}: {why}",
            def.kind
        )));
    }
    if let Some(root) = obj.as_object_mut() {
        root.insert("apiVersion".into(), json!(expected_version));
        root.insert("kind".into(), json!(def.kind));
    }
    Ok(())
}

/// Decodes a create/update body into the resource's type (`Decoded`); a body that does
/// not fit the type, or that has unknown fields under `fieldValidation=Strict`, is 400 with
/// the message of apiserver `pkg/endpoints/handlers/rest.go` `transformDecodeError`:
/// `Node in version "v1" cannot be handled as a Node: <decoder error>`.
fn decode_body(
    def: &ResourceDef,
    obj: &Value,
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {why}",
            kind = def.kind,
            version = def.version,
        ))
    };
    decode_as(def, obj, validation, cannot)
}

/// A create or update body as the handler decodes it: JSON or YAML, its kind/apiVersion
/// checked, decoded into the resource's type under `fieldValidation` (`options` names the
/// options kind for its errors), in stored form.
pub(super) fn decode_write_body(
    def: &ResourceDef,
    input: &WriteInput<'_>,
    options: &str,
) -> Result<Decoded, ApiError> {
    let mut obj = parse_body(input.body, input.content_type)?;
    check_type(def, &mut obj)?;
    let decoded = decode_body(def, &obj, input.field_validation(options)?)?;
    Ok(Decoded {
        object: to_stored(def, decoded.object),
        unknown_fields: decoded.unknown_fields,
    })
}

/// apimachinery `pkg/runtime/error.go` `strictDecodingError.Error`: `strict decoding
/// error: unknown field "a", unknown field "b"`.
fn strict_decoding_error(unknown_fields: &[String]) -> String {
    let fields: Vec<String> = unknown_fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    format!("strict decoding error: {}", fields.join(", "))
}

/// Decodes a patch result. A result that does not fit the type, or has unknown fields
/// under `Strict`, is 422 `"" is invalid: patch: Invalid value: "<value>": <error>`
/// (apiserver `pkg/endpoints/handlers/patch.go`, `applyPatchToCurrentObject`: the JSON and
/// merge patchers name the patched object, the strategic one the patch map as Go's `%+v`
/// prints it).
pub(super) fn decode_patched(
    def: &ResourceDef,
    kind: patch::PatchKind,
    body: &[u8],
    patched: &Value,
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    let invalid_patch = |why: String| {
        let bad_value = match kind {
            patch::PatchKind::Strategic => serde_json::from_slice::<Value>(body)
                .map(|v| go_v(&v))
                .unwrap_or_default(),
            _ => serde_json::to_string(patched).unwrap_or_default(),
        };
        invalid_unnamed(
            "",
            "",
            &[FieldError::invalid("patch", json!(bad_value), &why)],
        )
    };
    decode_as(def, patched, validation, invalid_patch)
}

/// Decodes `obj` into the resource's type under `fieldValidation`: a value that does not
/// fit the type, or unknown fields under `Strict`, fail with `error(why)`; under `Ignore`
/// the unknown fields are forgotten, so that no warning names them.
fn decode_as(
    def: &ResourceDef,
    obj: &Value,
    validation: FieldValidation,
    error: impl Fn(String) -> ApiError,
) -> Result<Decoded, ApiError> {
    let decoded = def.decode(obj).map_err(&error)?;
    match validation {
        FieldValidation::Strict if !decoded.unknown_fields.is_empty() => {
            Err(error(strict_decoding_error(&decoded.unknown_fields)))
        }
        FieldValidation::Ignore => Ok(Decoded {
            unknown_fields: Vec::new(),
            ..decoded
        }),
        _ => Ok(decoded),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_of_another_kind_is_refused_with_the_decoders_message() {
        let nodes = crate::resources::find("", "v1", "nodes").expect("nodes");
        let message = |body: Value| {
            let mut body = body;
            check_type(nodes, &mut body)
                .err()
                .and_then(|e| e.body["message"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        assert_eq!(
            message(json!({"apiVersion": "v1", "kind": "Pod"})),
            "Pod in version \"v1\" cannot be handled as a Node: converting (v1.Pod) to (core.Node): unknown conversion"
        );
        assert_eq!(
            message(json!({"apiVersion": "v1", "kind": "Widget"})),
            "Widget in version \"v1\" cannot be handled as a Node: no kind \"Widget\" is registered for version \"v1\" in scheme \"pkg/runtime/scheme.go:111\""
        );
        assert_eq!(
            message(json!({"apiVersion": "apps/v1", "kind": "Node"})),
            "Node in version \"v1\" cannot be handled as a Node: no kind \"Node\" is registered for version \"apps/v1\" in scheme \"pkg/runtime/scheme.go:111\""
        );
        let mut bare = json!({"metadata": {"name": "n"}});
        assert!(check_type(nodes, &mut bare).is_ok());
        assert_eq!(bare["kind"], "Node");
    }
}
