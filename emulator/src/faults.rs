//! Run-time fault injection: which requests the emulator answers with an error instead of
//! serving them, how much latency it adds, and when it refuses connections.
//!
//! This module only decides; the server asks [`Faults::take_failure`] once per request and
//! turns the answer into a `Status` response. It owns no I/O. Every switch can be flipped
//! while the server runs, from any thread, through a cheap clone of [`Faults`].
//!
//! Matching: a rule's verb is a Kubernetes request verb (`get`, `list`, `watch`, `create`,
//! `update`, `patch`, `delete`) or `*`; its resource is the plural resource, with the
//! subresource joined by `/` as RBAC writes it (`nodes`, `nodes/status`, `leases`), or `*`.
//! `nodes` does not match `nodes/status`, as in RBAC.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::sync::lock;

/// Seed of the ratio rules' generator, fixed so that a failing reliability run replays.
const RATIO_SEED: u64 = 0x6261_7265_2d63_636d;

/// An error status the emulator can answer instead of serving a request, with the code and
/// `reason` the real kube-apiserver puts in its `Status` body for that condition
/// (k8s.io/apimachinery `pkg/apis/meta/v1/types.go`, `StatusReason` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedStatus {
    /// 500 `InternalError`: an etcd or server failure.
    InternalError,
    /// 503 `ServiceUnavailable`: the server is shutting down or overloaded.
    ServiceUnavailable,
    /// 429 `TooManyRequests` with a `Retry-After` header (API priority and fairness).
    TooManyRequests {
        /// Seconds sent in `Retry-After` and in `details.retryAfterSeconds`.
        retry_after_secs: u64,
    },
    /// 409 `Conflict`: the object was modified since the client read it.
    Conflict,
}

impl InjectedStatus {
    /// The HTTP status code of the response.
    pub fn code(&self) -> u16 {
        match self {
            InjectedStatus::InternalError => 500,
            InjectedStatus::ServiceUnavailable => 503,
            InjectedStatus::TooManyRequests { .. } => 429,
            InjectedStatus::Conflict => 409,
        }
    }

    /// The `reason` field of the `Status` body.
    pub fn reason(&self) -> &'static str {
        match self {
            InjectedStatus::InternalError => "InternalError",
            InjectedStatus::ServiceUnavailable => "ServiceUnavailable",
            InjectedStatus::TooManyRequests { .. } => "TooManyRequests",
            InjectedStatus::Conflict => "Conflict",
        }
    }

    /// Seconds for the `Retry-After` header, when the status carries one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            InjectedStatus::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// The switchboard of injected faults shared by the server and the test driving it.
/// Cloning is cheap and every clone controls the same faults.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

struct Inner {
    /// True while any count, ratio or first-write rule exists: the per-request fast path
    /// reads only this flag when no fault is configured.
    armed: AtomicBool,
    rules: Mutex<Rules>,
    latency_nanos: AtomicU64,
    /// Origin of `refuse_until_nanos`.
    epoch: Instant,
    refuse_until_nanos: AtomicU64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            armed: AtomicBool::new(false),
            rules: Mutex::new(Rules::default()),
            latency_nanos: AtomicU64::new(0),
            epoch: Instant::now(),
            refuse_until_nanos: AtomicU64::new(0),
        }
    }
}

struct Rules {
    next: Vec<CountRule>,
    ratio: Vec<RatioRule>,
    first_write: Option<FirstWrite>,
    rng: StdRng,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            next: Vec::new(),
            ratio: Vec::new(),
            first_write: None,
            rng: StdRng::seed_from_u64(RATIO_SEED),
        }
    }
}

impl Rules {
    fn is_armed(&self) -> bool {
        !self.next.is_empty() || !self.ratio.is_empty() || self.first_write.is_some()
    }
}

struct Matcher {
    /// Users whose name starts with this ("" for everyone).
    user: String,
    verb: String,
    resource: String,
}

impl Matcher {
    fn new(user: &str, verb: &str, resource: &str) -> Self {
        Matcher {
            user: user.to_owned(),
            verb: verb.to_owned(),
            resource: resource.to_owned(),
        }
    }

    fn matches(&self, user: &str, verb: &str, resource: &str) -> bool {
        user.starts_with(&self.user)
            && (self.verb == "*" || self.verb == verb)
            && (self.resource == "*" || self.resource == resource)
    }
}

struct CountRule {
    matcher: Matcher,
    remaining: usize,
    status: InjectedStatus,
}

struct RatioRule {
    matcher: Matcher,
    ratio: f64,
    statuses: Vec<InjectedStatus>,
}

struct FirstWrite {
    status: InjectedStatus,
    /// Only writes by users whose name starts with this count ("" for everyone).
    writer: String,
    /// `resource/name` keys whose first write already failed.
    seen: HashSet<String>,
}

/// Verbs that modify an existing object: the ones the first-write rule fails.
fn is_object_write(verb: &str) -> bool {
    verb == "update" || verb == "patch"
}

impl Faults {
    /// A switchboard with no fault configured.
    pub fn new() -> Self {
        Faults::default()
    }

    fn rules(&self) -> MutexGuard<'_, Rules> {
        // A panic while holding this lock cannot leave the rules half-updated in a way
        // that matters to a test double, so a poisoned lock is simply reused.
        lock(&self.inner.rules)
    }

    fn rearm(&self, rules: &Rules) {
        self.inner.armed.store(rules.is_armed(), Ordering::Release);
    }

    /// Fails the next `n` requests matching `verb` and `resource` with `status`. Rules
    /// queue: once this one is used up, the next matching rule applies.
    pub fn fail_next(&self, n: usize, verb: &str, resource: &str, status: InjectedStatus) {
        if n == 0 {
            return;
        }
        let mut rules = self.rules();
        rules.next.push(CountRule {
            matcher: Matcher::new("", verb, resource),
            remaining: n,
            status,
        });
        self.rearm(&rules);
    }

    /// Fails the given fraction (0.0–1.0) of matching requests, each with one of
    /// `statuses` picked at random from a fixed seed. A ratio of 0 (or no statuses)
    /// removes the ratio rule for this verb and resource; a new rule replaces an old one.
    pub fn fail_ratio(
        &self,
        ratio: f64,
        verb: &str,
        resource: &str,
        statuses: Vec<InjectedStatus>,
    ) {
        self.fail_ratio_by("", ratio, verb, resource, statuses);
    }

    /// [`Faults::fail_ratio`] for the requests of users whose name starts with `user`
    /// only: an outage of the system under test alone, while the simulated kubelets and k3s
    /// keep giving it work. Rules of different `user` are separate.
    pub fn fail_ratio_by(
        &self,
        user: &str,
        ratio: f64,
        verb: &str,
        resource: &str,
        statuses: Vec<InjectedStatus>,
    ) {
        let mut rules = self.rules();
        rules.ratio.retain(|rule| {
            let m = &rule.matcher;
            !(m.user == user && m.verb == verb && m.resource == resource)
        });
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        if ratio > 0.0 && !statuses.is_empty() {
            rules.ratio.push(RatioRule {
                matcher: Matcher::new(user, verb, resource),
                ratio,
                statuses,
            });
        }
        self.rearm(&rules);
    }

    /// When enabled, the first `update` or `patch` of every object (per resource, so
    /// `nodes` and `nodes/status` each fail once, and per name) fails with `status`.
    /// Disabling forgets which objects were already failed.
    pub fn fail_first_write_per_object(&self, enabled: bool, status: InjectedStatus) {
        self.set_first_write(enabled.then(|| FirstWrite {
            status,
            writer: String::new(),
            seen: HashSet::new(),
        }));
    }

    /// Like [`Faults::fail_first_write_per_object`], counting only the writes of users
    /// whose name starts with `writer`: the first write of the system under test fails
    /// even when others (simulated kubelets and controllers) wrote to the object first.
    pub fn fail_first_write_per_object_by(&self, writer: &str, status: InjectedStatus) {
        self.set_first_write(Some(FirstWrite {
            status,
            writer: writer.to_owned(),
            seen: HashSet::new(),
        }));
    }

    fn set_first_write(&self, rule: Option<FirstWrite>) {
        let mut rules = self.rules();
        rules.first_write = rule;
        self.rearm(&rules);
    }

    /// Decides whether this request fails, consuming one count of a matching
    /// [`Faults::fail_next`] rule. `name` is the object's name, or "" for collection
    /// requests. For a request of unknown user; see [`Faults::take_failure_for`].
    pub fn take_failure(&self, verb: &str, resource: &str, name: &str) -> Option<InjectedStatus> {
        self.take_failure_for("", verb, resource, name)
    }

    /// [`Faults::take_failure`] for a request of `user`. The server calls it exactly once
    /// per request.
    pub fn take_failure_for(
        &self,
        user: &str,
        verb: &str,
        resource: &str,
        name: &str,
    ) -> Option<InjectedStatus> {
        if !self.inner.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut rules = self.rules();
        let failure = Self::decide(&mut rules, user, verb, resource, name);
        self.rearm(&rules);
        failure
    }

    fn decide(
        rules: &mut Rules,
        user: &str,
        verb: &str,
        resource: &str,
        name: &str,
    ) -> Option<InjectedStatus> {
        if let Some(index) = rules
            .next
            .iter()
            .position(|rule| rule.matcher.matches(user, verb, resource))
        {
            let rule = &mut rules.next[index];
            let status = rule.status;
            rule.remaining -= 1;
            if rule.remaining == 0 {
                rules.next.remove(index);
            }
            return Some(status);
        }
        if let Some(first) = rules.first_write.as_mut()
            && is_object_write(verb)
            && !name.is_empty()
            && user.starts_with(&first.writer)
            && first.seen.insert(format!("{resource}/{name}"))
        {
            return Some(first.status);
        }
        let Rules { ratio, rng, .. } = rules;
        for rule in ratio.iter() {
            if rule.matcher.matches(user, verb, resource) && rng.random_bool(rule.ratio) {
                let pick = rng.random_range(0..rule.statuses.len());
                return rule.statuses.get(pick).copied();
            }
        }
        None
    }

    /// Adds `d` of latency before every response (zero removes it).
    pub fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    /// The latency the server must add before answering.
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.inner.latency_nanos.load(Ordering::Relaxed))
    }

    /// Makes the server refuse (close) every connection for `d` from now, as an
    /// unreachable API server would; it comes back by itself afterwards.
    pub fn refuse_connections_for(&self, d: Duration) {
        let until = self.inner.epoch.elapsed().saturating_add(d);
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.inner
            .refuse_until_nanos
            .store(nanos, Ordering::Release);
    }

    /// Whether connections are being refused right now.
    pub fn refusing(&self) -> bool {
        let until = self.inner.refuse_until_nanos.load(Ordering::Acquire);
        until > 0 && u128::from(until) > self.inner.epoch.elapsed().as_nanos()
    }

    /// Removes every fault: rules, latency and the refusal window.
    pub fn clear(&self) {
        let mut rules = self.rules();
        rules.next.clear();
        rules.ratio.clear();
        rules.first_write = None;
        self.rearm(&rules);
        self.inner.latency_nanos.store(0, Ordering::Relaxed);
        self.inner.refuse_until_nanos.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_the_real_codes_and_reasons() {
        let throttled = InjectedStatus::TooManyRequests {
            retry_after_secs: 3,
        };
        assert_eq!(
            (throttled.code(), throttled.reason()),
            (429, "TooManyRequests")
        );
        assert_eq!(throttled.retry_after(), Some(3));
        let cases = [
            (InjectedStatus::InternalError, 500, "InternalError"),
            (
                InjectedStatus::ServiceUnavailable,
                503,
                "ServiceUnavailable",
            ),
            (InjectedStatus::Conflict, 409, "Conflict"),
        ];
        for (status, code, reason) in cases {
            assert_eq!(
                (status.code(), status.reason(), status.retry_after()),
                (code, reason, None)
            );
        }
    }

    #[test]
    fn fail_next_fails_exactly_n_matching_requests() {
        let faults = Faults::new();
        faults.fail_next(
            2,
            "patch",
            "nodes/status",
            InjectedStatus::ServiceUnavailable,
        );
        assert_eq!(faults.take_failure("patch", "nodes", "a"), None);
        assert_eq!(faults.take_failure("get", "nodes/status", "a"), None);
        assert_eq!(
            faults.take_failure("patch", "nodes/status", "a"),
            Some(InjectedStatus::ServiceUnavailable)
        );
        assert_eq!(
            faults.take_failure("patch", "nodes/status", "b"),
            Some(InjectedStatus::ServiceUnavailable)
        );
        assert_eq!(faults.take_failure("patch", "nodes/status", "c"), None);
    }

    #[test]
    fn the_first_write_rule_can_count_one_writer_only() {
        let faults = Faults::new();
        faults.fail_first_write_per_object_by("system:serviceaccount:", InjectedStatus::Conflict);
        assert_eq!(
            faults.take_failure_for("admin", "patch", "nodes", "a"),
            None
        );
        assert_eq!(
            faults.take_failure_for("system:serviceaccount:kube-system:x", "patch", "nodes", "a"),
            Some(InjectedStatus::Conflict)
        );
        assert_eq!(
            faults.take_failure_for("system:serviceaccount:kube-system:x", "patch", "nodes", "a"),
            None
        );
    }

    #[test]
    fn a_ratio_rule_can_fail_one_user_only_and_is_removed_on_its_own() {
        let faults = Faults::new();
        faults.fail_ratio_by(
            "system:serviceaccount:",
            1.0,
            "*",
            "*",
            vec![InjectedStatus::ServiceUnavailable],
        );
        assert_eq!(
            faults.take_failure_for("system:node:a", "patch", "nodes", "a"),
            None
        );
        assert_eq!(
            faults.take_failure_for("system:serviceaccount:kube-system:x", "get", "nodes", "a"),
            Some(InjectedStatus::ServiceUnavailable)
        );
        faults.fail_ratio(0.0, "*", "*", vec![]);
        assert!(
            faults
                .take_failure_for("system:serviceaccount:kube-system:x", "get", "nodes", "a")
                .is_some(),
            "another user's rule is not removed"
        );
        faults.fail_ratio_by("system:serviceaccount:", 0.0, "*", "*", vec![]);
        assert_eq!(
            faults.take_failure_for("system:serviceaccount:kube-system:x", "get", "nodes", "a"),
            None
        );
    }

    #[test]
    fn wildcard_rules_match_any_verb_and_queue_after_earlier_rules() {
        let faults = Faults::new();
        faults.fail_next(1, "*", "leases", InjectedStatus::InternalError);
        faults.fail_next(1, "*", "*", InjectedStatus::Conflict);
        assert_eq!(
            faults.take_failure("update", "leases", "l"),
            Some(InjectedStatus::InternalError)
        );
        assert_eq!(
            faults.take_failure("list", "nodes", ""),
            Some(InjectedStatus::Conflict)
        );
        assert_eq!(faults.take_failure("list", "nodes", ""), None);
    }

    #[test]
    fn ratio_fails_about_that_share_with_the_given_statuses() {
        let faults = Faults::new();
        let statuses = vec![
            InjectedStatus::InternalError,
            InjectedStatus::ServiceUnavailable,
        ];
        faults.fail_ratio(0.05, "*", "*", statuses.clone());
        let failures: Vec<InjectedStatus> = (0..10_000)
            .filter_map(|i| faults.take_failure("patch", "nodes", &format!("n{i}")))
            .collect();
        assert!(
            (350..=650).contains(&failures.len()),
            "{} failures",
            failures.len()
        );
        assert!(failures.iter().all(|s| statuses.contains(s)));
        assert!(failures.contains(&InjectedStatus::InternalError));
        assert!(failures.contains(&InjectedStatus::ServiceUnavailable));

        faults.fail_ratio(0.0, "*", "*", Vec::new());
        assert!((0..1000).all(|_| faults.take_failure("patch", "nodes", "n").is_none()));
    }

    #[test]
    fn first_write_of_each_object_fails_once() {
        let faults = Faults::new();
        faults.fail_first_write_per_object(true, InjectedStatus::Conflict);
        assert_eq!(faults.take_failure("get", "nodes", "a"), None);
        assert_eq!(
            faults.take_failure("patch", "nodes", "a"),
            Some(InjectedStatus::Conflict)
        );
        assert_eq!(faults.take_failure("patch", "nodes", "a"), None);
        assert_eq!(faults.take_failure("update", "nodes", "a"), None);
        // The status subresource is a separate write target.
        assert_eq!(
            faults.take_failure("patch", "nodes/status", "a"),
            Some(InjectedStatus::Conflict)
        );
        assert_eq!(
            faults.take_failure("update", "nodes", "b"),
            Some(InjectedStatus::Conflict)
        );
        assert_eq!(faults.take_failure("create", "nodes", "c"), None);

        faults.fail_first_write_per_object(false, InjectedStatus::Conflict);
        assert_eq!(faults.take_failure("patch", "nodes", "d"), None);
    }

    #[test]
    fn latency_and_refusal_window_switch_at_run_time() {
        let faults = Faults::new();
        assert_eq!(faults.latency(), Duration::ZERO);
        faults.set_latency(Duration::from_millis(25));
        assert_eq!(faults.latency(), Duration::from_millis(25));

        assert!(!faults.refusing());
        faults.refuse_connections_for(Duration::from_millis(50));
        assert!(faults.refusing());
        std::thread::sleep(Duration::from_millis(80));
        assert!(!faults.refusing());
    }

    #[test]
    fn clear_removes_every_fault_in_all_clones() {
        let faults = Faults::new();
        let handle = faults.clone();
        handle.fail_next(5, "*", "*", InjectedStatus::InternalError);
        handle.fail_first_write_per_object(true, InjectedStatus::Conflict);
        handle.set_latency(Duration::from_secs(1));
        handle.refuse_connections_for(Duration::from_secs(60));
        assert!(faults.refusing());
        faults.clear();
        assert_eq!(handle.take_failure("patch", "nodes", "a"), None);
        assert_eq!(handle.latency(), Duration::ZERO);
        assert!(!handle.refusing());
    }
}
