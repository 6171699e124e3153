//! What happened on the emulated API server, for tests and benchmarks to read afterwards:
//! request counters per verb, resource and status code, request counters per user and
//! authorization attributes (so a test can match one user's traffic against the RBAC rules
//! it was granted), a bounded log of writes (who wrote what, when, with which result), and
//! per-node "registered" and "taint removed" timestamps.
//!
//! The server calls in once or twice per request, so the hot path takes one short lock
//! and allocates nothing once a (verb, resource, code) counter exists. This module only
//! records; it never decides how a request is answered.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use serde_json::Value;

use crate::rbac::RequestAttributes;
use crate::sync::{lock, read, write};

/// The taint a kubelet with `--cloud-provider=external` registers with and only a
/// cloud-controller-manager removes (k8s.io/cloud-provider `api/well_known_taints.go`).
pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";

/// Default number of write records kept before the oldest are dropped.
pub const DEFAULT_WRITE_LOG_CAPACITY: usize = 1_000_000;

/// One write request (create, update, patch, delete) as the server answered it.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    /// Monotonic time, for latencies.
    pub at: Instant,
    /// Wall-clock time, for logs and reports.
    pub wall: SystemTime,
    /// The authenticated user name (e.g. `system:serviceaccount:kube-system:bare-ccm`).
    pub user: String,
    /// The request verb: `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The plural resource, e.g. `nodes`.
    pub resource: String,
    /// The subresource, e.g. `status`, or "".
    pub subresource: String,
    /// The namespace, or "" for cluster-scoped objects.
    pub namespace: String,
    /// The object name.
    pub name: String,
    /// The HTTP status code of the response.
    pub code: u16,
    /// The object's resourceVersion after the write, or "" when it failed.
    pub resource_version: String,
}

/// One kind of resource request as kube-apiserver's authorizer sees it (who asked, and the
/// `authorizer.Attributes` of the request), with the status code it was answered with.
/// Counted per distinct value, so a test can tell which RBAC grant each request used and
/// which requests were refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributedRequest {
    /// The authenticated user name.
    pub user: String,
    /// The request verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`...).
    pub verb: String,
    /// The API group, "" for core/v1.
    pub api_group: String,
    /// The plural resource, e.g. `nodes`.
    pub resource: String,
    /// The subresource, e.g. `status`, or "".
    pub subresource: String,
    /// The namespace, or "" for cluster-scoped resources and cluster-wide lists.
    pub namespace: String,
    /// The object name, or "" for create, list and watch.
    pub name: String,
    /// The HTTP status code of the response.
    pub code: u16,
}

impl AttributedRequest {
    fn new(user: &str, attrs: &RequestAttributes, code: u16) -> Self {
        AttributedRequest {
            user: user.to_owned(),
            verb: attrs.verb.to_owned(),
            api_group: attrs.api_group.to_owned(),
            resource: attrs.resource.to_owned(),
            subresource: attrs.subresource.to_owned(),
            namespace: attrs.namespace.to_owned(),
            name: attrs.name.to_owned(),
            code,
        }
    }

    /// The request's attributes in the form the RBAC authorizer takes, to evaluate
    /// recorded traffic against a policy afterwards.
    pub fn attributes(&self) -> RequestAttributes<'_> {
        RequestAttributes {
            verb: &self.verb,
            api_group: &self.api_group,
            resource: &self.resource,
            subresource: &self.subresource,
            namespace: &self.namespace,
            name: &self.name,
            path: "",
        }
    }

    fn is(&self, user: &str, attrs: &RequestAttributes, code: u16) -> bool {
        self.code == code
            && self.user == user
            && self.verb == attrs.verb
            && self.api_group == attrs.api_group
            && self.resource == attrs.resource
            && self.subresource == attrs.subresource
            && self.namespace == attrs.namespace
            && self.name == attrs.name
    }
}

/// The hash of an [`AttributedRequest`] computed from borrowed parts, so that counting a
/// request already seen allocates nothing.
fn attributed_hash(user: &str, attrs: &RequestAttributes, code: u16) -> u64 {
    let mut hasher = DefaultHasher::new();
    (
        user,
        attrs.verb,
        attrs.api_group,
        attrs.resource,
        attrs.subresource,
        attrs.namespace,
        attrs.name,
        code,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// When a Node was created and when its uninitialized taint first disappeared: the two
/// ends of the registration-to-initialisation latency that the benchmarks measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeTimes {
    /// When the Node object was created.
    pub registered: Option<Instant>,
    /// The first time a write removed the uninitialized taint from the Node.
    pub taint_removed: Option<Instant>,
}

/// The shared record of the server's traffic. Cloning is cheap; all clones share it.
#[derive(Clone)]
pub struct Accounting {
    inner: Arc<Inner>,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting::with_write_capacity(DEFAULT_WRITE_LOG_CAPACITY)
    }
}

struct Counter {
    verb: Box<str>,
    resource: Box<str>,
    code: u16,
    count: AtomicU64,
}

struct WriteLog {
    records: VecDeque<WriteRecord>,
    capacity: usize,
    dropped: u64,
}

struct Inner {
    /// Few distinct keys (verbs × resources × codes), so a scan under a read lock is
    /// cheaper than hashing owned keys, and counting needs no write lock.
    counters: RwLock<Vec<Counter>>,
    /// Per-user attributed counts, bucketed by [`attributed_hash`].
    attributed: Mutex<HashMap<u64, Vec<(AttributedRequest, u64)>>>,
    writes: Mutex<WriteLog>,
    nodes: Mutex<HashMap<String, NodeTimes>>,
}

/// Whether a Node JSON object carries the uninitialized taint (any value and effect, as
/// the upstream node controller only looks at the key).
fn has_uninitialized_taint(node: &Value) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|taints| {
            taints
                .iter()
                .any(|taint| taint.get("key").and_then(Value::as_str) == Some(UNINITIALIZED_TAINT))
        })
}

impl Accounting {
    /// A record keeping at most `capacity` write records (the oldest are dropped first).
    pub fn with_write_capacity(capacity: usize) -> Self {
        Accounting {
            inner: Arc::new(Inner {
                counters: RwLock::new(Vec::new()),
                attributed: Mutex::new(HashMap::new()),
                writes: Mutex::new(WriteLog {
                    records: VecDeque::new(),
                    capacity,
                    dropped: 0,
                }),
                nodes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts one answered request. `resource` joins a subresource with `/`
    /// (`nodes/status`), as RBAC does.
    pub fn record_request(&self, verb: &str, resource: &str, code: u16) {
        let find = |counters: &[Counter]| {
            counters
                .iter()
                .position(|c| c.code == code && &*c.verb == verb && &*c.resource == resource)
        };
        {
            let counters = read(&self.inner.counters);
            if let Some(index) = find(&counters) {
                counters[index].count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut counters = write(&self.inner.counters);
        match find(&counters) {
            Some(index) => {
                counters[index].count.fetch_add(1, Ordering::Relaxed);
            }
            None => counters.push(Counter {
                verb: verb.into(),
                resource: resource.into(),
                code,
                count: AtomicU64::new(1),
            }),
        }
    }

    /// Counts one answered resource request of `user`, keyed by its authorization
    /// attributes (whether or not RBAC is enforced) and status code.
    pub fn record_attributed_request(&self, user: &str, attrs: &RequestAttributes, code: u16) {
        let hash = attributed_hash(user, attrs, code);
        let mut attributed = lock(&self.inner.attributed);
        let bucket = attributed.entry(hash).or_default();
        match bucket
            .iter_mut()
            .find(|(seen, _)| seen.is(user, attrs, code))
        {
            Some((_, count)) => *count += 1,
            None => bucket.push((AttributedRequest::new(user, attrs, code), 1)),
        }
    }

    /// Request counts per user, authorization attributes and status code, sorted by user,
    /// then verb, API group, resource, subresource, namespace, name and code.
    pub fn attributed_requests(&self) -> BTreeMap<AttributedRequest, u64> {
        lock(&self.inner.attributed)
            .values()
            .flatten()
            .map(|(request, count)| (request.clone(), *count))
            .collect()
    }

    /// Appends a write to the log, dropping the oldest record when the log is full.
    pub fn record_write(&self, rec: WriteRecord) {
        let mut log = lock(&self.inner.writes);
        if log.capacity == 0 {
            log.dropped += 1;
            return;
        }
        if log.records.len() >= log.capacity {
            log.records.pop_front();
            log.dropped += 1;
        }
        log.records.push_back(rec);
    }

    /// Updates a Node's timestamps from one stored change: `before` is the stored object
    /// before the write (None on create), `after` the stored object after it (None on
    /// delete). A create sets `registered` (and forgets an earlier incarnation's times);
    /// the first change that drops the uninitialized taint sets `taint_removed`.
    pub fn observe_node(&self, name: &str, before: Option<&Value>, after: Option<&Value>) {
        let now = Instant::now();
        match (before, after) {
            (None, Some(_)) => {
                let times = NodeTimes {
                    registered: Some(now),
                    taint_removed: None,
                };
                lock(&self.inner.nodes).insert(name.to_owned(), times);
            }
            (Some(before), Some(after))
                if has_uninitialized_taint(before) && !has_uninitialized_taint(after) =>
            {
                let mut nodes = lock(&self.inner.nodes);
                // A node created before the last reset gets an entry without `registered`.
                let times = nodes.entry(name.to_owned()).or_default();
                times.taint_removed.get_or_insert(now);
            }
            _ => {}
        }
    }

    /// Request counts per (verb, resource), summed over status codes.
    pub fn requests(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for ((verb, resource, _), count) in self.responses() {
            *out.entry((verb, resource)).or_insert(0) += count;
        }
        out
    }

    /// Request counts per (verb, resource, status code), to count e.g. conflicts.
    pub fn responses(&self) -> BTreeMap<(String, String, u16), u64> {
        let counters = read(&self.inner.counters);
        counters
            .iter()
            .map(|c| {
                (
                    (c.verb.to_string(), c.resource.to_string(), c.code),
                    c.count.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// A copy of the retained write log, oldest first.
    pub fn writes(&self) -> Vec<WriteRecord> {
        lock(&self.inner.writes).records.iter().cloned().collect()
    }

    /// How many write records were dropped because the log was full.
    pub fn dropped_writes(&self) -> u64 {
        lock(&self.inner.writes).dropped
    }

    /// The timestamps of every Node seen since the last reset, by name.
    pub fn node_times(&self) -> BTreeMap<String, NodeTimes> {
        lock(&self.inner.nodes)
            .iter()
            .map(|(name, times)| (name.clone(), *times))
            .collect()
    }

    /// Forgets all counters, writes and node timestamps (the capacity is kept), so a
    /// benchmark can measure one phase alone.
    pub fn reset(&self) {
        write(&self.inner.counters).clear();
        lock(&self.inner.attributed).clear();
        {
            let mut log = lock(&self.inner.writes);
            log.records.clear();
            log.dropped = 0;
        }
        lock(&self.inner.nodes).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(taints: &[&str]) -> Value {
        let taints: Vec<Value> = taints
            .iter()
            .map(|key| json!({"key": key, "effect": "NoSchedule"}))
            .collect();
        json!({"metadata": {"name": "n"}, "spec": {"taints": taints}})
    }

    fn write(name: &str) -> WriteRecord {
        WriteRecord {
            at: Instant::now(),
            wall: SystemTime::now(),
            user: "system:serviceaccount:kube-system:bare-ccm".into(),
            verb: "patch".into(),
            resource: "nodes".into(),
            subresource: String::new(),
            namespace: String::new(),
            name: name.into(),
            code: 200,
            resource_version: "7".into(),
        }
    }

    #[test]
    fn taint_removal_time_is_the_first_write_that_drops_the_uninitialized_taint() {
        let accounting = Accounting::default();
        let tainted = node(&[UNINITIALIZED_TAINT, "node.kubernetes.io/not-ready"]);
        let other_removed = node(&[UNINITIALIZED_TAINT]);
        let initialised = node(&[]);

        accounting.observe_node("n", None, Some(&tainted));
        let registered = accounting.node_times()["n"].registered;
        assert!(registered.is_some());

        accounting.observe_node("n", Some(&tainted), Some(&other_removed));
        assert_eq!(accounting.node_times()["n"].taint_removed, None);

        accounting.observe_node("n", Some(&other_removed), Some(&initialised));
        let removed = accounting.node_times()["n"].taint_removed;
        assert!(removed.is_some() && removed >= registered);

        // Re-adding and removing the taint later keeps the first removal time.
        std::thread::sleep(std::time::Duration::from_millis(2));
        accounting.observe_node("n", Some(&initialised), Some(&tainted));
        accounting.observe_node("n", Some(&tainted), Some(&initialised));
        assert_eq!(accounting.node_times()["n"].taint_removed, removed);
    }

    #[test]
    fn node_created_without_the_taint_has_no_removal_time() {
        let accounting = Accounting::default();
        accounting.observe_node("n", None, Some(&node(&[])));
        accounting.observe_node("n", Some(&node(&[])), Some(&node(&[])));
        let times = accounting.node_times()["n"];
        assert!(times.registered.is_some());
        assert_eq!(times.taint_removed, None);
    }

    #[test]
    fn recreating_a_node_starts_its_timestamps_again() {
        let accounting = Accounting::default();
        let tainted = node(&[UNINITIALIZED_TAINT]);
        accounting.observe_node("n", None, Some(&tainted));
        accounting.observe_node("n", Some(&tainted), Some(&node(&[])));
        accounting.observe_node("n", Some(&node(&[])), None);
        accounting.observe_node("n", None, Some(&tainted));
        assert_eq!(accounting.node_times()["n"].taint_removed, None);
    }

    #[test]
    fn requests_are_counted_per_verb_resource_and_code() {
        let accounting = Accounting::default();
        accounting.record_request("patch", "nodes", 200);
        accounting.record_request("patch", "nodes", 409);
        accounting.record_request("patch", "nodes", 200);
        accounting.record_request("patch", "nodes/status", 200);
        let requests = accounting.requests();
        assert_eq!(requests[&("patch".into(), "nodes".into())], 3);
        assert_eq!(requests[&("patch".into(), "nodes/status".into())], 1);
        let responses = accounting.responses();
        assert_eq!(responses[&("patch".into(), "nodes".into(), 409)], 1);
        assert_eq!(responses[&("patch".into(), "nodes".into(), 200)], 2);
    }

    #[test]
    fn attributed_requests_are_counted_per_user_attributes_and_code() {
        let accounting = Accounting::default();
        let sa = "system:serviceaccount:kube-system:bare-ccm";
        let renew = RequestAttributes {
            verb: "update",
            api_group: "coordination.k8s.io",
            resource: "leases",
            namespace: "kube-system",
            name: "bare-ccm",
            ..Default::default()
        };
        let status = RequestAttributes {
            verb: "patch",
            resource: "nodes",
            subresource: "status",
            name: "n1",
            ..Default::default()
        };
        accounting.record_attributed_request(sa, &renew, 200);
        accounting.record_attributed_request(sa, &renew, 200);
        accounting.record_attributed_request(sa, &renew, 409);
        accounting.record_attributed_request("admin", &renew, 200);
        accounting.record_attributed_request(sa, &status, 403);

        let counts: Vec<(String, String, String, u16, u64)> = accounting
            .attributed_requests()
            .into_iter()
            .map(|(r, n)| (r.user, r.resource, r.name, r.code, n))
            .collect();
        let row = |user: &str, resource: &str, name: &str, code, n| {
            (
                user.to_string(),
                resource.to_string(),
                name.to_string(),
                code,
                n,
            )
        };
        assert_eq!(
            counts,
            [
                row("admin", "leases", "bare-ccm", 200, 1),
                row(sa, "nodes", "n1", 403, 1),
                row(sa, "leases", "bare-ccm", 200, 2),
                row(sa, "leases", "bare-ccm", 409, 1),
            ]
        );
        let refused = accounting
            .attributed_requests()
            .into_keys()
            .find(|r| r.code == 403)
            .unwrap();
        let attrs = refused.attributes();
        assert_eq!((attrs.verb, attrs.subresource), ("patch", "status"));
    }

    #[test]
    fn write_log_drops_the_oldest_records_beyond_capacity() {
        let accounting = Accounting::with_write_capacity(2);
        for name in ["a", "b", "c"] {
            accounting.record_write(write(name));
        }
        let names: Vec<String> = accounting.writes().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(accounting.dropped_writes(), 1);
    }

    #[test]
    fn reset_forgets_everything() {
        let accounting = Accounting::default();
        accounting.record_request("get", "nodes", 200);
        let get = RequestAttributes {
            verb: "get",
            resource: "nodes",
            name: "a",
            ..Default::default()
        };
        accounting.record_attributed_request("admin", &get, 200);
        accounting.record_write(write("a"));
        accounting.observe_node("a", None, Some(&node(&[])));
        accounting.reset();
        assert!(accounting.requests().is_empty());
        assert!(accounting.attributed_requests().is_empty());
        assert!(accounting.writes().is_empty());
        assert!(accounting.node_times().is_empty());
    }
}
