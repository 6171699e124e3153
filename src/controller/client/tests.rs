//! Tests of the client layers: request verbs, Retry-After pauses, the rate limit and the lease fence.

use super::*;

fn verb(method: Method, uri: &str) -> &'static str {
    verb_of(&method, &uri.parse().unwrap())
}

#[test]
fn verbs_follow_the_api_server_request_info_rules() {
    for (uri, want) in [
        ("/api/v1/nodes", "list"),
        ("/api/v1/nodes?limit=500", "list"),
        ("/api/v1/nodes?watch=true&resourceVersion=5", "watch"),
        ("/api/v1/nodes/n1", "get"),
        ("/api/v1/nodes/n1/status", "get"),
        (
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/bare-ccm",
            "get",
        ),
        (
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            "list",
        ),
        ("/api/v1/namespaces/kube-system", "get"),
    ] {
        assert_eq!(verb(Method::GET, uri), want, "GET {uri}");
    }
    assert_eq!(verb(Method::PATCH, "/api/v1/nodes/n1/status"), "patch");
    assert_eq!(
        verb(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/default/events"
        ),
        "create"
    );
}

#[test]
fn delay_is_asked_by_429_and_5xx_only() {
    assert!(asks_for_delay(http::StatusCode::TOO_MANY_REQUESTS));
    assert!(asks_for_delay(http::StatusCode::SERVICE_UNAVAILABLE));
    assert!(asks_for_delay(http::StatusCode::INTERNAL_SERVER_ERROR));
    assert!(!asks_for_delay(http::StatusCode::CONFLICT));
    assert!(!asks_for_delay(http::StatusCode::OK));
}

#[test]
fn retry_after_header_takes_integer_seconds() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(header_delay(&headers), None);
    headers.insert(http::header::RETRY_AFTER, " 3 ".parse().unwrap());
    assert_eq!(header_delay(&headers), Some(Duration::from_secs(3)));
    headers.insert(
        http::header::RETRY_AFTER,
        "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(header_delay(&headers), None);
}

#[test]
fn status_body_retry_after_seconds_is_honoured_when_positive() {
    let throttled = br#"{"kind":"Status","apiVersion":"v1","status":"Failure",
            "reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":4}}"#;
    assert_eq!(status_body_delay(throttled), Some(Duration::from_secs(4)));
    let zero = br#"{"kind":"Status","code":503,"details":{"retryAfterSeconds":0}}"#;
    assert_eq!(status_body_delay(zero), None);
    let negative = br#"{"kind":"Status","code":503,"details":{"retryAfterSeconds":-2}}"#;
    assert_eq!(status_body_delay(negative), None);
    assert_eq!(status_body_delay(br#"{"kind":"Status","code":500}"#), None);
    assert_eq!(status_body_delay(b"upstream connect error"), None);
}

/// A stand-in API server that answers every request with `status` and `body`.
struct Answer {
    status: http::StatusCode,
    body: &'static str,
}

impl Service<Request<()>> for Answer {
    type Response = Response<Box<DynBody>>;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        let body: Box<DynBody> = Box::new(
            http_body_util::Full::new(bytes_of(self.body)).map_err(|never| match never {}),
        );
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        std::future::ready(Ok(resp))
    }
}

fn bytes_of(text: &'static str) -> axum::body::Bytes {
    axum::body::Bytes::from_static(text.as_bytes())
}

#[tokio::test]
async fn a_503_status_body_with_retry_after_seconds_pauses_the_client_and_passes_through() {
    const BODY: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503,"details":{"retryAfterSeconds":2}}"#;
    let layer = ApiLayer::new(0.0, 0, Arc::new(Metrics::new()));
    let mut service = layer.layer(Answer {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        body: BODY,
    });
    let request = Request::get("/api/v1/nodes/n1").body(()).unwrap();
    let resp = service.call(request).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, bytes_of(BODY));
    let paused = layer.paused_until(Instant::now()).expect("client paused");
    let left = paused - Instant::now();
    assert!(left > Duration::from_millis(1500) && left <= Duration::from_secs(2));
}

#[tokio::test]
async fn a_conflict_never_pauses_the_client() {
    let layer = ApiLayer::new(0.0, 0, Arc::new(Metrics::new()));
    let mut service = layer.layer(Answer {
        status: http::StatusCode::CONFLICT,
        body: r#"{"kind":"Status","code":409,"details":{"retryAfterSeconds":5}}"#,
    });
    let request = Request::get("/api/v1/nodes/n1").body(()).unwrap();
    service.call(request).await.unwrap();
    assert_eq!(layer.paused_until(Instant::now()), None);
}

/// Counts the requests that reach the stand-in API server.
struct Counting(Answer, Arc<std::sync::atomic::AtomicUsize>);

impl Service<Request<()>> for Counting {
    type Response = Response<Box<DynBody>>;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.call(req)
    }
}

/// Waits until `service` may send: the rate limit and any Retry-After pause apply here.
async fn ready<S: Service<Request<()>>>(service: &mut S)
where
    S::Error: std::fmt::Debug,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
}

/// A gate of a replica that leads with a fresh renewal (lease 15 s, renew deadline 10 s),
/// and the fence of its writes.
fn leading_gate() -> (Arc<LeaderGate>, Fence) {
    let renewals = Arc::new(crate::leader::RenewClock::default());
    let gate = Arc::new(LeaderGate::elected(
        renewals.clone(),
        Duration::from_secs(10),
    ));
    renewals.renewed(Instant::now());
    gate.set_leading(true);
    let fence = Fence::new(
        gate.clone(),
        Duration::from_secs(15),
        Duration::from_secs(10),
    );
    (gate, fence)
}

#[tokio::test]
async fn a_write_that_waited_while_the_lease_was_lost_is_not_sent() {
    let (gate, fence) = leading_gate();
    // Five tokens a second: the second write waits 200 ms for its token.
    let layer = ApiLayer::new(5.0, 1, Arc::new(Metrics::new())).fenced(fence);
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut service = layer.layer(Counting(
        Answer {
            status: http::StatusCode::OK,
            body: "{}",
        },
        sent.clone(),
    ));
    let patch = || Request::patch("/api/v1/nodes/n1").body(()).unwrap();
    ready(&mut service).await;
    service.call(patch()).await.unwrap();
    assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The lease is lost while the second write waits for its token.
    let lose = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.set_leading(false);
    };
    tokio::join!(ready(&mut service), lose);
    match service.call(patch()).await {
        Err(refused) => assert!(refused.is::<Fenced>(), "{refused}"),
        Ok(_) => panic!("a write after the lease was lost got an answer"),
    }
    assert_eq!(
        sent.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the write was sent"
    );

    // Reads are never fenced.
    ready(&mut service).await;
    service
        .call(Request::get("/api/v1/nodes/n1").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_fenced_client_obeys_retry_after_only_up_to_lease_minus_renew_deadline() {
    let gate = Arc::new(LeaderGate::always());
    let fence = Fence::new(gate, Duration::from_secs(15), Duration::from_secs(10));
    let layer = ApiLayer::new(0.0, 0, Arc::new(Metrics::new())).fenced(fence);
    let mut service = layer.layer(Answer {
        status: http::StatusCode::TOO_MANY_REQUESTS,
        body: r#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":40}}"#,
    });
    let request = Request::get("/api/v1/nodes/n1").body(()).unwrap();
    service.call(request).await.unwrap();
    let paused = layer.paused_until(Instant::now()).expect("client paused");
    assert!(paused - Instant::now() <= Duration::from_secs(5));
}

#[test]
fn token_bucket_allows_burst_then_spaces_requests_at_qps() {
    let bucket = TokenBucket::new(10.0, 3);
    let now = Instant::now();
    for _ in 0..3 {
        assert_eq!(bucket.reserve(now), Duration::ZERO);
    }
    // The fourth and fifth wait 1/qps and 2/qps.
    assert_eq!(bucket.reserve(now), Duration::from_millis(100));
    assert_eq!(bucket.reserve(now), Duration::from_millis(200));
    // After a long idle period the bucket is full again, never more than burst.
    let later = now + Duration::from_secs(60);
    for _ in 0..3 {
        assert_eq!(bucket.reserve(later), Duration::ZERO);
    }
    assert!(bucket.reserve(later) > Duration::ZERO);
}

/// An API server that answers after `delay`, counting the requests it answered.
struct Slow(std::time::Duration, Arc<std::sync::atomic::AtomicUsize>);

impl Service<Request<()>> for Slow {
    type Response = Response<Box<DynBody>>;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let (delay, answered) = (self.0, self.1.clone());
        let mut answer = Answer {
            status: http::StatusCode::OK,
            body: "{}",
        };
        let resp = answer.call(req);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            resp.await
        })
    }
}

#[tokio::test]
async fn a_write_still_in_flight_when_the_lease_is_lost_is_dropped() {
    let (gate, fence) = leading_gate();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layer = ApiLayer::new(0.0, 0, Arc::new(Metrics::new())).fenced(fence);
    let mut service = layer.layer(Slow(Duration::from_millis(300), answered.clone()));
    let patch = || Request::patch("/api/v1/nodes/n1").body(()).unwrap();

    // Leading throughout: the slow write is answered.
    ready(&mut service).await;
    service.call(patch()).await.unwrap();
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The lease is lost while the next write is on its way: it is dropped, not completed.
    ready(&mut service).await;
    let write = service.call(patch());
    let lose = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.set_leading(false);
    };
    let (result, ()) = tokio::join!(
        async {
            // Polled again after the loss, as an in-flight request is when its connection
            // makes progress.
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => break r,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        },
        lose
    );
    match result {
        Err(refused) => assert!(refused.is::<Fenced>(), "{refused}"),
        Ok(_) => panic!("a write in flight when the lease was lost was completed"),
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
}
