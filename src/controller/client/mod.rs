//! The Kubernetes client the controller talks through: the shared client configuration
//! wrapped in one tower layer that applies the client-side
//! `--kube-api-qps`/`--kube-api-burst` token bucket, pauses the client when the API server
//! asks for a delay, fences writes (a write that waited is sent only if this replica still
//! leads), and counts every request by verb and status code (bare-ccm's own metric) and as
//! client-go's REST client metrics count it. kube 5 has no built-in client-side limiter,
//! hence this layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::{ClientBuilder, DynBody};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::leader::LeaderGate;
use crate::metrics::{Metrics, REST_CLIENT_ERROR_CODE};

/// Builds a client from `config` (see `crate::kubeclient::client_config`) whose requests
/// all pass through [`ApiLayer`]. kube's built-in retry of 429/503/504 is turned off: it
/// sits below this layer (its retries would escape the rate limit and the request
/// counters) and may hold a request for minutes; the controller's per-node backoff and
/// this layer's Retry-After pause replace it.
pub fn build_client(
    mut config: kube::Config,
    layer: ApiLayer,
) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    let layer = layer.for_host(
        config
            .cluster_url
            .authority()
            .map_or("none", http::uri::Authority::as_str),
    );
    Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

/// A token bucket: `qps` tokens per second, holding at most `burst`. A caller that finds
/// the bucket empty reserves the next token and waits for it, so waiting callers are
/// served in order and the long-run rate never exceeds `qps`.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `burst` below 1 is raised to 1 so that a request can ever pass.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// Takes one token at `now` and returns how long the caller must wait before using it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut s = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.qps).min(self.burst);
        s.last = now;
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.qps)
        }
    }
}

/// The longest Retry-After bare-ccm obeys, so a bogus header cannot stall it for hours.
/// A fenced client obeys at most its fence's [`Fence::max_wait`].
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A write the layer did not send because this replica no longer leads.
#[derive(Debug, thiserror::Error)]
#[error("not sent: this replica no longer holds the leader lease")]
pub struct Fenced;

/// What a client's writes are fenced by: the leader gate, checked just before each write
/// leaves, after any wait for the token bucket or a Retry-After. A write that waited
/// while the lease passed to another replica is dropped instead of landing after the new
/// leader's writes.
#[derive(Clone)]
pub struct Fence {
    gate: Arc<LeaderGate>,
    /// Retry-After pauses are capped at `lease duration - renew deadline`: a leader whose
    /// renewals are late stops writing at the renew deadline, and no other replica may
    /// take the lease before the lease duration, so a write held no longer than the gap
    /// cannot outlive this replica's lease unnoticed.
    max_wait: Duration,
}

/// Whether `error` is a write the layer dropped as [`Fenced`].
pub fn is_fenced(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<Fenced>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl Fence {
    pub fn new(gate: Arc<LeaderGate>, lease_duration: Duration, renew_deadline: Duration) -> Self {
        Fence {
            gate,
            max_wait: lease_duration.saturating_sub(renew_deadline),
        }
    }
}

/// The most of an error body read for `details.retryAfterSeconds`; a Status is a few
/// hundred bytes.
const MAX_STATUS_BODY: usize = 64 * 1024;

/// The tower layer of every bare-ccm client: rate limit, Retry-After pause, request
/// metrics.
#[derive(Clone)]
pub struct ApiLayer {
    limiter: Option<Arc<TokenBucket>>,
    /// Until when the API server asked (429 or 5xx with Retry-After or
    /// `details.retryAfterSeconds`) this client to send nothing.
    paused_until: Arc<Mutex<Option<Instant>>>,
    metrics: Arc<Metrics>,
    fence: Option<Fence>,
    /// The API server's `host:port`, the `host` label of the REST client metrics
    /// (client-go's `none` until known).
    host: Arc<str>,
}

impl ApiLayer {
    /// `qps <= 0` disables the limiter.
    pub fn new(qps: f64, burst: u32, metrics: Arc<Metrics>) -> Self {
        let limiter = (qps > 0.0).then(|| Arc::new(TokenBucket::new(qps, burst)));
        ApiLayer {
            limiter,
            paused_until: Arc::default(),
            metrics,
            fence: None,
            host: Arc::from("none"),
        }
    }

    /// Labels this client's REST client metrics with the API server's `host`.
    fn for_host(mut self, host: &str) -> Self {
        self.host = Arc::from(host);
        self
    }

    /// Fences this client's writes by `fence` (never the lease client's: its writes are
    /// what keeps the lease).
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Whether a request with `method` may leave now.
    fn may_send(&self, method: &Method) -> bool {
        *method == Method::GET || self.fence.as_ref().is_none_or(|f| f.gate.may_write())
    }

    fn max_retry_after(&self) -> Duration {
        self.fence
            .as_ref()
            .map_or(MAX_RETRY_AFTER, |f| f.max_wait.min(MAX_RETRY_AFTER))
    }

    fn pause_until(&self, until: Instant) {
        if let Ok(mut p) = self.paused_until.lock() {
            *p = Some(p.map_or(until, |cur| cur.max(until)));
        }
    }

    fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until
            .lock()
            .ok()
            .and_then(|p| *p)
            .filter(|t| *t > now)
    }
}

impl<S> Layer<S> for ApiLayer {
    type Service = ApiService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiService {
            inner,
            layer: self.clone(),
            sleep: None,
            reserved: false,
            started: None,
        }
    }
}

/// The service [`ApiLayer`] produces. The rate limit is applied in `poll_ready`, so the
/// request is not sent before its token is due (kube's client drives this service through
/// a `tower::buffer::Buffer`, whose worker waits on `poll_ready`).
pub struct ApiService<S> {
    inner: S,
    layer: ApiLayer,
    sleep: Option<Pin<Box<Sleep>>>,
    reserved: bool,
    /// When the next request began waiting for its token: its latency counts from here.
    started: Option<Instant>,
}

impl<S, B> Service<Request<B>> for ApiService<S>
where
    S: Service<Request<B>, Response = Response<Box<DynBody>>>,
    S::Future: Send + 'static,
    S::Error: From<Fenced> + Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Box<DynBody>>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.reserved {
            if self.sleep.is_none() {
                let now = Instant::now();
                self.started.get_or_insert(now);
                let mut until = self.layer.paused_until(now);
                if let Some(limiter) = &self.layer.limiter {
                    let wait = limiter.reserve(now);
                    if !wait.is_zero() {
                        until = Some(until.map_or(now + wait, |u| u.max(now + wait)));
                    }
                }
                if let Some(until) = until {
                    self.sleep = Some(Box::pin(tokio::time::sleep_until(until)));
                }
            }
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            self.reserved = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.reserved = false;
        let started = self.started.take().unwrap_or_else(Instant::now);
        let verb = verb_of(req.method(), req.uri());
        if !self.layer.may_send(req.method()) {
            self.layer.metrics.api_request(verb, "fenced");
            return Box::pin(std::future::ready(Err(Fenced.into())));
        }
        let method = req.method().clone();
        let layer = self.layer.clone();
        let mut fut = Box::pin(self.inner.call(req));
        Box::pin(async move {
            // The gate is checked again before every poll of a write until it is answered:
            // a write still connecting or waiting for its connection when this replica
            // stops leading (a frozen process, a paused API server) is dropped, not sent
            // late. What the API server has already received cannot be called back.
            let fenced = method != Method::GET && layer.fence.is_some();
            let mut dropped = false;
            let result = std::future::poll_fn(|cx| {
                if fenced && !layer.may_send(&method) {
                    dropped = true;
                    return Poll::Ready(Err(Fenced.into()));
                }
                fut.as_mut().poll(cx)
            })
            .await;
            if dropped {
                layer.metrics.api_request(verb, "fenced");
                return result;
            }
            let metrics = &layer.metrics;
            // client-go observes no latency for watches (`Request.Watch` has no
            // RequestLatency), only their result.
            if verb != "watch" {
                metrics.rest_latency(&layer.host, method.as_str(), started.elapsed());
            }
            let Ok(resp) = result else {
                metrics.api_request(verb, "error");
                metrics.rest_request(REST_CLIENT_ERROR_CODE, &layer.host, method.as_str());
                return result;
            };
            let status = resp.status();
            metrics.api_request(verb, status.as_str());
            metrics.rest_request(status.as_str(), &layer.host, method.as_str());
            if !asks_for_delay(status) {
                return Ok(resp);
            }
            // The header is read first (client-go `checkWait`); only when it is absent is
            // the (small) Status body read for `details.retryAfterSeconds`, then handed on
            // unchanged.
            let (resp, wait) = match header_delay(resp.headers()) {
                Some(wait) => (resp, Some(wait)),
                None => {
                    let (parts, body) = resp.into_parts();
                    let bytes = axum::body::to_bytes(axum::body::Body::new(body), MAX_STATUS_BODY)
                        .await
                        .unwrap_or_default();
                    let wait = status_body_delay(&bytes);
                    let body: Box<DynBody> =
                        Box::new(http_body_util::Full::new(bytes).map_err(|never| match never {}));
                    (Response::from_parts(parts, body), wait)
                }
            };
            if let Some(wait) = wait {
                layer.pause_until(Instant::now() + wait.min(layer.max_retry_after()));
            }
            Ok(resp)
        })
    }
}

/// Whether a response status may carry a delay request: 429 and every 5xx, as client-go's
/// `checkWait` (k8s.io/client-go `rest/request.go`) treats them.
fn asks_for_delay(status: http::StatusCode) -> bool {
    status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The delay a `Retry-After: <seconds>` header asks for (client-go `retryAfterSeconds`
/// reads only the integer form).
fn header_delay(headers: &http::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// The delay a Status body asks for in `details.retryAfterSeconds` when it is positive
/// (apimachinery `errors.SuggestsClientDelay`, which client-go's retry consults too).
fn status_body_delay(body: &[u8]) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Status {
        details: Option<Details>,
    }
    #[derive(serde::Deserialize)]
    struct Details {
        #[serde(rename = "retryAfterSeconds")]
        retry_after_seconds: Option<i64>,
    }
    let status: Status = serde_json::from_slice(body).ok()?;
    let secs = status.details?.retry_after_seconds?;
    u64::try_from(secs)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

/// The Kubernetes verb of a request, from its method and path (as the API server's
/// request-info resolver does: a GET naming an object is `get`, a GET of a collection is
/// `list`, or `watch` with `watch=true`).
fn verb_of(method: &Method, uri: &http::Uri) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::GET => {
            let query = uri.query().unwrap_or("");
            if query
                .split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1")
            {
                return "watch";
            }
            let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
            // Skip "api/v1" or "apis/<group>/<version>".
            let rest = match segments.first() {
                Some(&"api") => segments.get(2..),
                Some(&"apis") => segments.get(3..),
                _ => None,
            }
            .unwrap_or(&[]);
            // Skip "namespaces/<ns>" when a namespaced resource follows it.
            let rest = if rest.len() > 2 && rest[0] == "namespaces" {
                &rest[2..]
            } else {
                rest
            };
            if rest.len() >= 2 { "get" } else { "list" }
        }
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
