//! Tests of the delegated authentication and authorization against a fake reviewer:
//! allow paths, 401/403/500, and the caches.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn always_allowed_paths_match_exactly_or_by_trailing_star_like_upstream() {
    let paths = AlwaysAllowPaths::new(&["/healthz", "readyz", "/debug/*"]).unwrap();
    assert!(paths.allows("/healthz"));
    assert!(paths.allows("/readyz"), "the leading / is optional");
    assert!(paths.allows("/debug/pprof/heap"));
    assert!(paths.allows("/debug/"));
    assert!(
        !paths.allows("/healthz/ping"),
        "exact paths are not prefixes"
    );
    assert!(!paths.allows("/metrics"));
    assert!(!paths.allows("/"));
    assert!(AlwaysAllowPaths::new(&["/a*b"]).is_err());
    assert!(AlwaysAllowPaths::new(&["*/x"]).is_err());
    let root = AlwaysAllowPaths::new(&["/"]).unwrap();
    assert!(root.allows("/") && !root.allows("/metrics"));
    let none = AlwaysAllowPaths::new(&[""]).unwrap();
    assert!(!none.allows("/") && !none.allows("/healthz"));
    let default: Vec<&str> = DEFAULT_ALWAYS_ALLOW_PATHS.split(',').collect();
    let default = AlwaysAllowPaths::new(&default).unwrap();
    for p in ["/healthz", "/readyz", "/livez"] {
        assert!(default.allows(p), "{p}");
    }
    assert!(!default.allows("/metrics"));
}

#[test]
fn cache_entries_expire_after_their_ttl() {
    let mut cache = TtlCache::new(8);
    let t0 = Instant::now();
    cache.insert("a", 1, Duration::from_secs(10), t0);
    assert_eq!(cache.get(&"a", t0 + Duration::from_secs(9)), Some(1));
    assert_eq!(cache.get(&"a", t0 + Duration::from_secs(10)), None);
}

#[test]
fn a_full_cache_drops_expired_entries_then_the_soonest_to_expire() {
    let mut cache = TtlCache::new(2);
    let t0 = Instant::now();
    cache.insert(1, "short", Duration::from_secs(1), t0);
    cache.insert(2, "long", Duration::from_secs(100), t0);
    cache.insert(3, "new", Duration::from_secs(50), t0);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get(&1, t0), None, "the soonest to expire went");
    assert_eq!(cache.get(&2, t0), Some("long"));
    let later = t0 + Duration::from_secs(60);
    cache.insert(4, "newer", Duration::from_secs(10), later);
    assert_eq!(cache.get(&3, later), None, "expired, dropped first");
    assert_eq!(cache.get(&2, later), Some("long"));
    assert_eq!(cache.get(&4, later), Some("newer"));
}

#[test]
fn bearer_tokens_are_read_as_upstream_reads_them() {
    let token = |v: &'static str| bearer_token(&HeaderValue::from_static(v)).map(str::to_string);
    assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
    assert_eq!(token("bearer abc").as_deref(), Some("abc"));
    assert_eq!(token("Bearer abc def").as_deref(), Some("abc"));
    assert_eq!(token("Bearer "), None);
    assert_eq!(token("Basic abc"), None);
    assert_eq!(token("Bearer"), None);
}

/// A stand-in API server: one valid token per user, `/metrics` allowed to "reader"
/// only; counts the reviews.
#[derive(Default)]
struct Fake {
    tokens: AtomicUsize,
    access: AtomicUsize,
    fail_access: bool,
}

impl Reviewer for Fake {
    async fn review_token(&self, token: &str) -> Result<Option<User>, String> {
        self.tokens.fetch_add(1, Ordering::SeqCst);
        let user = |name: &str, groups: &[&str]| User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        };
        Ok(match token {
            "reader-token" => Some(user("reader", &["system:authenticated"])),
            "other-token" => Some(user("other", &["system:authenticated"])),
            "admin-token" => Some(user("admin", &[SYSTEM_MASTERS])),
            _ => None,
        })
    }

    async fn review_access(&self, spec: &SubjectAccessReviewSpec) -> Result<Access, String> {
        self.access.fetch_add(1, Ordering::SeqCst);
        if self.fail_access {
            return Err("connection refused".into());
        }
        let attrs = spec.non_resource_attributes.clone().unwrap_or_default();
        let allowed = spec.user.as_deref() == Some("reader")
            && attrs.path.as_deref() == Some("/metrics")
            && attrs.verb.as_deref() == Some("get");
        Ok(Access {
            allowed,
            denied: false,
            reason: if allowed {
                "RBAC: allowed".into()
            } else {
                String::new()
            },
        })
    }
}

fn auth(fake: Fake) -> DelegatedAuth<Fake> {
    let paths: Vec<&str> = DEFAULT_ALWAYS_ALLOW_PATHS.split(',').collect();
    DelegatedAuth::new(fake, AlwaysAllowPaths::new(&paths).unwrap()).unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

#[tokio::test]
async fn metrics_need_a_token_the_api_server_accepts_and_allows() {
    let auth = auth(Fake::default());
    let get = Method::GET;
    assert_eq!(
        auth.decide(&get, "/metrics", None).await,
        Decision::Unauthorized
    );
    assert_eq!(
        auth.decide(&get, "/metrics", Some(&bearer("forged"))).await,
        Decision::Unauthorized
    );
    assert_eq!(
        auth.decide(&get, "/metrics", Some(&bearer("other-token")))
            .await,
        Decision::Forbidden(r#"User "other" cannot get path "/metrics""#.into())
    );
    assert_eq!(
        auth.decide(&get, "/metrics", Some(&bearer("reader-token")))
            .await,
        Decision::Allow
    );
    assert_eq!(
        auth.decide(&Method::POST, "/metrics", Some(&bearer("reader-token")))
            .await,
        Decision::Forbidden(r#"User "reader" cannot post path "/metrics""#.into()),
        "the verb is the lower-case method"
    );
    assert_eq!(
        auth.decide(&get, "/other", Some(&bearer("reader-token")))
            .await,
        Decision::Forbidden(r#"User "reader" cannot get path "/other""#.into()),
        "every path not always allowed is authorised"
    );
}

#[tokio::test]
async fn always_allowed_paths_and_system_masters_ask_nothing() {
    let auth = auth(Fake::default());
    for path in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(auth.decide(&Method::GET, path, None).await, Decision::Allow);
        assert_eq!(
            auth.decide(&Method::GET, path, Some(&bearer("forged")))
                .await,
            Decision::Allow
        );
    }
    assert_eq!(auth.reviewer.tokens.load(Ordering::SeqCst), 0);
    assert_eq!(
        auth.decide(&Method::GET, "/metrics", Some(&bearer("admin-token")))
            .await,
        Decision::Allow
    );
    assert_eq!(auth.reviewer.tokens.load(Ordering::SeqCst), 1);
    assert_eq!(auth.reviewer.access.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn answers_are_reused_and_failures_are_not() {
    let auth = auth(Fake::default());
    for _ in 0..3 {
        auth.decide(&Method::GET, "/metrics", Some(&bearer("reader-token")))
            .await;
        auth.decide(&Method::GET, "/metrics", Some(&bearer("other-token")))
            .await;
        auth.decide(&Method::GET, "/metrics", Some(&bearer("forged")))
            .await;
    }
    assert_eq!(
        auth.reviewer.tokens.load(Ordering::SeqCst),
        3,
        "one per token"
    );
    assert_eq!(
        auth.reviewer.access.load(Ordering::SeqCst),
        2,
        "one per user"
    );
    assert!(lock(&auth.tokens).len() == 3 && lock(&auth.access).len() == 2);

    let failing = auth_failing();
    for _ in 0..2 {
        let decision = failing
            .decide(&Method::GET, "/metrics", Some(&bearer("reader-token")))
            .await;
        assert!(matches!(decision, Decision::Failed(_)), "{decision:?}");
    }
    assert_eq!(
        failing.reviewer.access.load(Ordering::SeqCst),
        2,
        "not cached"
    );
}

fn auth_failing() -> DelegatedAuth<Fake> {
    auth(Fake {
        fail_access: true,
        ..Fake::default()
    })
}

#[test]
fn the_access_review_asks_about_the_user_and_the_non_resource_url() {
    let user = User {
        name: "system:serviceaccount:monitoring:prometheus".into(),
        uid: "u-1".into(),
        groups: vec!["system:serviceaccounts".into()],
        extra: BTreeMap::from([("k".to_string(), vec!["v".to_string()])]),
    };
    let spec = serde_json::to_value(access_spec(&user, "/metrics", "get")).unwrap();
    assert_eq!(
        spec,
        serde_json::json!({
            "user": "system:serviceaccount:monitoring:prometheus",
            "uid": "u-1",
            "groups": ["system:serviceaccounts"],
            "extra": {"k": ["v"]},
            "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
        })
    );
}
