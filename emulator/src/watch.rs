//! WATCH: newline-delimited JSON watch events streamed over a chunked response, with the
//! semantics of the apiserver watch cache (apiserver `pkg/storage/cacher/cacher.go`,
//! `cache_watcher.go`):
//! - `resourceVersion` unset or "0": synthetic ADDED events for the current state, then
//!   live events; a number: every retained event after it, then live events.
//! - A resourceVersion older than the retained window: HTTP 200 and a single ERROR event
//!   carrying a 410 `Expired` Status (`Cacher.Watch` returns `newErrWatcher(err)`, "to
//!   match the uncached watch implementation ... other errors must fail with a watch event
//!   of type ERROR"; message from `watch_cache.go`, "too old resource version: %d (%d)").
//! - `sendInitialEvents=true` (streaming list, the WatchList feature, on by default since
//!   1.34): ADDED for the current state, then, with `allowWatchBookmarks`, a BOOKMARK
//!   annotated `k8s.io/initial-events-end: "true"` at the state's resourceVersion, then
//!   live events (`cacher.go` `setInitialEventsEndBookmarkIfRequested`,
//!   `watch_cache.go` `getAllEventsSinceLocked`); `sendInitialEvents=false` without a
//!   resourceVersion starts at the current one with no initial events.
//! - Selectors: an object moving into the selection is ADDED, out of it DELETED
//!   (`cache_watcher.go`, `convertToWatchEvent`).
//! - `allowWatchBookmarks`: a BOOKMARK every bookmark interval and one 2 s before the
//!   timeout (`cache_watcher.go`, `nextBookmarkTime`: "send bookmark 2 seconds before the
//!   deadline"), each only once something happened after the watch's starting
//!   resourceVersion (`cache_watcher.go` `process`: "only send events newer than
//!   resourceVersion"). The BOOKMARK object is the type's zero object with that
//!   resourceVersion (`cacher.go` `dispatchEvents`: `c.newFunc()`).
//! - A resourceVersion that is not a number: 500 without a reason, the storage error the
//!   cacher returns before the watch starts (`cacher.go` `Watch`,
//!   `versioner.ParseResourceVersion`).
//! - `timeoutSeconds`: the stream ends after it; unset or 0 is a random 30 to 60 minutes
//!   (apiserver `pkg/endpoints/handlers/get.go` `ListResource`: `--min-request-timeout`
//!   (1800 s) times a random factor in [1, 2); "we don't distinguish between
//!   timeoutSeconds=0 and unspecified").
//! - A watcher that falls too far behind is closed rather than buffered without bound, as
//!   the cache closes a watcher whose channel stays full.
//!
//! The store lock is never held while writing; each event's bytes are shared.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::registry::{Selectors, validate_list_options};
use crate::resources::ResourceDef;
use crate::routes::{ResourceRequest, query_param};
use crate::status::ApiError;
use crate::store::{Event, EventType, Store, WatchStart, line_around, watch_line};

/// kube-apiserver's `--min-request-timeout` default, the base of the watch duration when
/// the client gives no `timeoutSeconds`.
const MIN_REQUEST_TIMEOUT_SECS: u64 = 1800;

/// How many serialized lines may wait for a slow client before the watcher blocks (and
/// then, once the fan-out overflows, is closed).
const CLIENT_BUFFER: usize = 256;

/// The longest a watch task works through a backlog before it lets other tasks run, like
/// Go's scheduler preempting a goroutine after ~10 ms. The task runs outside tokio's
/// budget (see `start`); without this a watcher far behind, or one that filters out most
/// events, would hold its worker thread for the whole backlog. (Yielding every 256 events
/// instead doubled the watch latency of a 5000-node burst: measured.)
const MAX_STRETCH: Duration = Duration::from_millis(10);

/// Two events handled closer together than this belong to one stretch of work; a longer
/// gap means the task was waiting (for an event or for room in the client's buffer).
const SAME_STRETCH: Duration = Duration::from_millis(1);

/// A validated watch request.
pub struct WatchRequest {
    def: &'static ResourceDef,
    namespace: Option<String>,
    selectors: Selectors,
    from: Option<u64>,
    /// `sendInitialEvents`, when given.
    initial_events: Option<bool>,
    bookmarks: bool,
    timeout: Duration,
}

impl WatchRequest {
    /// Parses the query of a watch; Err is the 400 to answer.
    pub fn parse(req: &ResourceRequest, query: &str) -> Result<WatchRequest, ApiError> {
        validate_list_options(query, true)?;
        let selectors = Selectors::parse(req.def, query)?;
        let rv = query_param(query, "resourceVersion").unwrap_or_default();
        let from = match rv.as_str() {
            "" | "0" => None,
            s => Some(s.parse::<u64>().map_err(|_| {
                ApiError::unknown_internal(&format!(
                    "resourceVersion: Invalid value: {s:?}: strconv.ParseUint: parsing {s:?}: invalid syntax"
                ))
            })?),
        };
        let flag = |k: &str| query_param(query, k).is_some_and(|v| v == "true" || v == "1");
        let bookmarks = flag("allowWatchBookmarks");
        let given_initial_events = query_param(query, "sendInitialEvents")
            .map(|v| matches!(v.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"));
        // A legacy watch (resourceVersion unset or "0", neither sendInitialEvents nor
        // resourceVersionMatch) is a streaming list with the WatchList feature on
        // (apimachinery `pkg/apis/meta/internalversion/defaults.go`
        // `SetListOptionsDefaults`): the same initial events, and with bookmarks the
        // annotated one after them.
        let rv_match = query_param(query, "resourceVersionMatch").filter(|m| !m.is_empty());
        let initial_events = match given_initial_events {
            None if rv_match.is_none() && from.is_none() => Some(true),
            given => given,
        };
        let secs = match query_param(query, "timeoutSeconds").filter(|s| !s.is_empty()) {
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))?,
            None => 0,
        };
        let timeout = if secs == 0 {
            default_timeout()
        } else {
            Duration::from_secs(secs)
        };
        Ok(WatchRequest {
            def: req.def,
            namespace: (!req.namespace.is_empty()).then(|| req.namespace.clone()),
            selectors,
            from,
            initial_events,
            bookmarks,
            timeout,
        })
    }
}

/// The duration of a watch without `timeoutSeconds`: 30 to 60 minutes, random so that
/// watches do not all end together.
fn default_timeout() -> Duration {
    let base = MIN_REQUEST_TIMEOUT_SECS as f64;
    Duration::from_secs_f64(base * (1.0 + rand::random::<f64>()))
}

/// A running watch's response body.
pub type WatchBody = UnsyncBoxBody<Bytes, Infallible>;

/// Starts the watch: subscribes under the store lock, then streams from a task that holds
/// no lock. `cut` ends the stream early (fault injection, shutdown).
pub fn start(
    store: &Store,
    req: WatchRequest,
    cut: CancellationToken,
    bookmark_interval: Duration,
) -> WatchBody {
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    let from = match (req.initial_events, req.from) {
        // The current state, whatever the resourceVersion ("not older than" it).
        (Some(true), _) => None,
        // From now on, without the current state: a replay after the newest event.
        (Some(false), None) => Some(u64::MAX),
        (_, from) => from,
    };
    match store.subscribe(req.def.store, req.namespace.as_deref(), from) {
        Err(oldest) => {
            let requested = req.from.unwrap_or(0);
            let status =
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"));
            let line = watch_line("ERROR", &status.body);
            // The channel is empty and has room: this cannot fail.
            let _ = tx.try_send(line);
        }
        Ok((start, live, rv)) => {
            // Outside tokio's cooperative budget: a budgeted task yields after ~128 channel
            // operations and waits behind every runnable request task, so under a burst of
            // creates the fan-out itself fell ~1 s behind the commits (measured, 5000 nodes).
            // The real watch cache dispatches from dedicated goroutines (`cacher.go`
            // `dispatchEvents`, `cache_watcher.go` `processInterval`) that Go's scheduler
            // preempts only after ~10 ms; this task likewise yields after `MAX_STRETCH` of
            // continuous work, and whenever the client's buffer is full or no event waits.
            let task = run(req, start, live, rv, tx, cut, bookmark_interval);
            tokio::spawn(tokio::task::unconstrained(task));
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    UnsyncBoxBody::new(StreamBody::new(stream.boxed()))
}

struct Watcher {
    req: WatchRequest,
    events_v1: bool,
    tx: mpsc::Sender<Bytes>,
    /// The RV of the newest event this watcher has processed; bookmarks carry it.
    seen: u64,
    /// The RV the watch started from: a bookmark is sent only for a newer one.
    start: u64,
}

impl Watcher {
    /// Whether an object (or its selector view, see `store::filter_meta`) is selected.
    fn object_matches(&self, obj: &Value) -> bool {
        let ns_ok = self.req.namespace.as_deref().is_none_or(|ns| {
            obj.get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                == Some(ns)
        });
        ns_ok && self.req.selectors.matches(obj)
    }

    /// A line of `event_type` for an object given as JSON, in this watch's API version.
    fn line_around(&self, event_type: &str, object_json: &[u8]) -> Bytes {
        if self.events_v1 {
            let obj: Value = serde_json::from_slice(object_json).unwrap_or(Value::Null);
            watch_line(event_type, &crate::event_versions::to_events_v1(&obj))
        } else {
            line_around(event_type, object_json)
        }
    }

    /// The line to send for a committed event, if this watcher sees it.
    fn line_for(&self, event: &Event) -> Option<Bytes> {
        if event.store != self.req.def.store {
            return None;
        }
        let cur = self.object_matches(&event.meta);
        let prev = event
            .prev_meta
            .as_ref()
            .is_some_and(|p| self.object_matches(p));
        match (event.kind, prev, cur) {
            (EventType::Added | EventType::Deleted, _, true)
            | (EventType::Modified, true, true) => Some(event.wire(self.events_v1)),
            (EventType::Modified, false, true) => {
                Some(self.line_around("ADDED", event.object_json()))
            }
            (EventType::Modified, true, false) => {
                // The object left the selection: DELETED with its previous state at the new
                // resourceVersion.
                let mut last: Value = event
                    .prev_object_json()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                crate::store::set_resource_version(&mut last, event.rv);
                let json = serde_json::to_vec(&last).unwrap_or_default();
                Some(self.line_around("DELETED", &json))
            }
            _ => None,
        }
    }

    /// A BOOKMARK at `seen`; `initial_events_end` marks the end of the initial events of
    /// a streaming list (apiserver `pkg/storage/util.go` `AnnotateInitialEventsEndBookmark`).
    fn bookmark(&self, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.seen.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut object = self.req.def.go_zero_values();
        object["kind"] = json!(self.req.def.kind);
        object["apiVersion"] = json!(self.req.def.api_version());
        object["metadata"] = metadata;
        watch_line("BOOKMARK", &object)
    }
}

async fn run(
    req: WatchRequest,
    start: WatchStart,
    mut live: broadcast::Receiver<Arc<Event>>,
    rv: u64,
    tx: mpsc::Sender<Bytes>,
    cut: CancellationToken,
    bookmark_interval: Duration,
) {
    let deadline = Instant::now() + req.timeout;
    let events_v1 = req.def.is_events_v1();
    let start_rv = match (&start, req.from) {
        (WatchStart::Replay(_), Some(from)) if from != u64::MAX => from,
        _ => rv,
    };
    let mut w = Watcher {
        req,
        events_v1,
        tx,
        seen: rv,
        start: start_rv,
    };
    let mut pace = Pace::new();
    match start {
        WatchStart::Snapshot(objects) => {
            for item in objects {
                pace.tick().await;
                if w.object_matches(&item.meta) {
                    let line = w.line_around("ADDED", &item.json);
                    if !send(&w.tx, line, &cut).await {
                        return;
                    }
                }
            }
            if w.req.initial_events == Some(true)
                && w.req.bookmarks
                && !send(&w.tx, w.bookmark(true), &cut).await
            {
                return;
            }
        }
        WatchStart::Replay(events) => {
            for event in events {
                pace.tick().await;
                // The watcher's position moves past every replayed event, selected or
                // not (`cache_watcher.go` `processInterval`), so a bookmark must be newer.
                w.start = w.start.max(event.rv);
                if let Some(line) = w.line_for(&event)
                    && !send(&w.tx, line, &cut).await
                {
                    return;
                }
            }
        }
    }
    let pre_timeout = deadline
        .checked_sub(Duration::from_secs(2))
        .unwrap_or(deadline);
    let mut next_bookmark = (Instant::now() + bookmark_interval).min(pre_timeout);
    let mut final_bookmark_sent = false;
    loop {
        tokio::select! {
            biased;
            _ = cut.cancelled() => return,
            // The client went away.
            _ = w.tx.closed() => return,
            _ = tokio::time::sleep_until(deadline) => {
                if w.req.bookmarks && !final_bookmark_sent && w.seen > w.start {
                    let _ = w.tx.send(w.bookmark(false)).await;
                }
                return;
            }
            _ = tokio::time::sleep_until(next_bookmark), if w.req.bookmarks => {
                if w.seen > w.start && !send(&w.tx, w.bookmark(false), &cut).await {
                    return;
                }
                final_bookmark_sent = next_bookmark >= pre_timeout;
                next_bookmark = if final_bookmark_sent {
                    deadline + Duration::from_secs(1)
                } else {
                    (Instant::now() + bookmark_interval).min(pre_timeout)
                };
            }
            received = live.recv() => match received {
                Ok(event) => {
                    pace.tick().await;
                    w.seen = event.rv;
                    if let Some(line) = w.line_for(&event)
                        && !send(&w.tx, line, &cut).await
                    {
                        return;
                    }
                }
                // Lagged: the watcher fell behind the fan-out; closed: the store is gone.
                // Either way the watch ends and the client re-watches.
                Err(_) => return,
            },
        }
    }
}

/// Tracks how long a watch task has been working without a pause.
struct Pace {
    stretch_start: Instant,
    last_tick: Instant,
}

impl Pace {
    fn new() -> Pace {
        let now = Instant::now();
        Pace {
            stretch_start: now,
            last_tick: now,
        }
    }

    /// Called once per handled event: yields to other tasks once the current stretch of
    /// work has lasted [`MAX_STRETCH`].
    async fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_tick) > SAME_STRETCH {
            self.stretch_start = now;
        } else if now.duration_since(self.stretch_start) >= MAX_STRETCH {
            tokio::task::yield_now().await;
            self.stretch_start = Instant::now();
        }
        self.last_tick = Instant::now();
    }
}

/// Sends one line to the client, waiting while its buffer is full; false when the watch
/// must end (client gone or watch cut).
async fn send(tx: &mpsc::Sender<Bytes>, line: Bytes, cut: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        _ = cut.cancelled() => false,
        sent = tx.send(line) => sent.is_ok(),
    }
}
