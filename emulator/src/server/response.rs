//! The shapes of an answer on the wire: JSON bodies, `Status` errors, the flow-control 429
//! in Go's `http.Error` form, and `Warning` headers, as kube-apiserver writes them.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::status::ApiError;

pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(super) fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

pub(super) fn response(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    response(code, "application/json", full(bytes))
}

pub(super) fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.body)
}

/// The text API priority and fairness answers a rejected request with: not a `Status`
/// but Go's `http.Error` (`text/plain`, `X-Content-Type-Options: nosniff`, a trailing
/// newline) plus `Retry-After` (apiserver `pkg/server/filters/maxinflight.go`,
/// `tooManyRequests`, called by the `priority-and-fairness.go` filter).
pub(super) fn too_many_requests(retry_after_secs: u64) -> Response<Body> {
    let mut resp = response(
        429,
        "text/plain; charset=utf-8",
        full(Bytes::from_static(
            b"Too many requests, please try again later.\n",
        )),
    );
    let headers = resp.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// One `Warning: 299 - "<text>"` header per warning, the text quoted and escaped as
/// apiserver `pkg/endpoints/handlers/responsewriters` / `pkg/warning` write it (RFC 7234
/// warn-code 299, agent `-`).
pub(super) fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for text in warnings {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(hyper::header::WARNING, v);
        }
    }
}
