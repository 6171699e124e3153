//! Who may read the secure port: the delegated authentication and authorization every
//! upstream component uses (k8s.io/apiserver `pkg/server/options/authentication.go` and
//! `authorization.go`, `DelegatingAuthenticationOptions` / `DelegatingAuthorizationOptions`).
//!
//! - A path of `--authorization-always-allow-paths` is served without looking at
//!   credentials (upstream's `path.NewAuthorizer`: exact paths, or prefixes ending in `*`).
//! - Any other request needs `Authorization: Bearer <token>`. The API server reviews the
//!   token (TokenReview, authentication.k8s.io/v1): no token or a token it does not accept
//!   is 401. Upstream lets a request without a token through as `system:anonymous` and asks
//!   the API server about that user; bare-ccm answers 401 at once, so unauthenticated
//!   traffic on a public interface never costs the API server a request.
//! - The user is then authorised with a SubjectAccessReview (authorization.k8s.io/v1) for
//!   the non-resource URL (the path) and the lower-case HTTP method as the verb, as the API
//!   server itself authorises `/metrics`: not allowed is 403, a failed review is 500.
//!   Members of `system:masters` skip it (upstream's `AlwaysAllowGroups`).
//! - Answers are cached: token reviews 10 s whether accepted or not
//!   (`NewDelegatingAuthenticationOptions`: `CacheTTL: 10 * time.Second`, used for both in
//!   `authenticatorfactory.DelegatingAuthenticatorConfig.New`), access reviews 10 s allowed
//!   and 10 s denied (`NewDelegatingAuthorizationOptions`: `AllowCacheTTL` and
//!   `DenyCacheTTL`). Failed reviews are not cached. Tokens are cached only as an HMAC under
//!   a key drawn at start, as upstream's token cache keys them.
//!
//! The reviews are the only requests made here; the API server stores neither.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

/// How long an answered token review is reused (upstream's `CacheTTL`).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// How long an allowing access review is reused (upstream's `AllowCacheTTL`).
pub const ALLOW_CACHE_TTL: Duration = Duration::from_secs(10);
/// How long a denying access review is reused (upstream's `DenyCacheTTL`).
pub const DENY_CACHE_TTL: Duration = Duration::from_secs(10);
/// How long one review may take (upstream's `TokenRequestTimeout` and `ClientTimeout`).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries each cache holds at most (upstream's access-review cache holds 8192).
const CACHE_CAPACITY: usize = 8192;

/// The group whose members are never reviewed (upstream's `AlwaysAllowGroups` default).
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The default of `--authorization-always-allow-paths` (upstream's).
pub const DEFAULT_ALWAYS_ALLOW_PATHS: &str = "/healthz,/readyz,/livez";

/// `--authorization-always-allow-paths`: paths served without credentials.
#[derive(Clone, Debug, Default)]
pub struct AlwaysAllowPaths {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl AlwaysAllowPaths {
    /// Parses the flag's entries as upstream's `path.NewAuthorizer`: a leading `/` is
    /// optional, a trailing `*` makes a prefix, a `*` anywhere else is an error; an empty
    /// entry is skipped (pflag reads `--flag=` as no entries).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut paths = AlwaysAllowPaths::default();
        for entry in entries {
            let entry = entry.as_ref();
            if entry.is_empty() {
                continue;
            }
            let path = entry.strip_prefix('/').unwrap_or(entry);
            match path.strip_suffix('*') {
                _ if path.is_empty() => {
                    paths.exact.insert(String::new());
                }
                Some(prefix) if !prefix.contains('*') => paths.prefixes.push(prefix.to_string()),
                None if !path.contains('*') => {
                    paths.exact.insert(path.to_string());
                }
                _ => {
                    return Err(format!(
                        "--authorization-always-allow-paths: only a trailing * is allowed, in {entry:?}"
                    ));
                }
            }
        }
        Ok(paths)
    }

    /// Whether `path` is served without credentials.
    pub fn allows(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        self.exact.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// A map whose entries expire; bounded, so that many distinct tokens cannot grow it
/// without limit (when full, expired entries go first, then the one closest to expiry).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: HashMap<K, (V, Instant)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The value stored for `key`, unless it expired by `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    /// Stores `value` for `ttl` from `now`.
    pub fn insert(&mut self, key: K, value: V, ttl: Duration, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(key, (value, now + ttl));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An authenticated user, as a TokenReview returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A SubjectAccessReview's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub allowed: bool,
    pub denied: bool,
    pub reason: String,
}

/// What the API server is asked. A trait so that the decision logic is tested without
/// one.
pub trait Reviewer: Send + Sync {
    /// The user `token` stands for; `None` when the API server does not accept it.
    fn review_token(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<User>, String>> + Send;

    /// Whether `user` may `verb` the non-resource URL `path`.
    fn review_access(
        &self,
        spec: &SubjectAccessReviewSpec,
    ) -> impl Future<Output = Result<Access, String>> + Send;
}

/// The answer to one request on the secure port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// 401: no bearer token, or one the API server did not accept.
    Unauthorized,
    /// 403, with upstream's message (`User "x" cannot get path "/metrics"`).
    Forbidden(String),
    /// 500: the access review failed.
    Failed(String),
}

/// Decides requests, caching the API server's answers.
pub struct DelegatedAuth<R> {
    reviewer: R,
    always_allow: AlwaysAllowPaths,
    token_key: ring::hmac::Key,
    tokens: Mutex<TtlCache<[u8; 32], Option<User>>>,
    access: Mutex<TtlCache<String, Access>>,
}

impl<R: Reviewer> DelegatedAuth<R> {
    /// Fails only when the system has no randomness for the token cache's key.
    pub fn new(reviewer: R, always_allow: AlwaysAllowPaths) -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let token_key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| anyhow::anyhow!("no randomness for the token cache's key"))?;
        Ok(DelegatedAuth {
            reviewer,
            always_allow,
            token_key,
            tokens: Mutex::new(TtlCache::new(CACHE_CAPACITY)),
            access: Mutex::new(TtlCache::new(CACHE_CAPACITY)),
        })
    }

    /// The decision for a request of `method` on `path` with this `Authorization` header.
    pub async fn decide(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Decision {
        if self.always_allow.allows(path) {
            return Decision::Allow;
        }
        let Some(token) = authorization.and_then(bearer_token) else {
            return Decision::Unauthorized;
        };
        let user = match self.authenticate(token).await {
            Ok(Some(user)) => user,
            Ok(None) => return Decision::Unauthorized,
            Err(e) => {
                // Upstream logs the failure and answers as for a bad token.
                tracing::warn!(error = %e, "token review failed; answering 401");
                return Decision::Unauthorized;
            }
        };
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return Decision::Allow;
        }
        let verb = method.as_str().to_ascii_lowercase();
        let spec = access_spec(&user, path, &verb);
        match self.authorize(&spec).await {
            Ok(access) if access.allowed && !access.denied => Decision::Allow,
            Ok(access) => {
                let mut message = format!("User {:?} cannot {verb} path {path:?}", user.name);
                if !access.reason.is_empty() {
                    message = format!("{message}: {}", access.reason);
                }
                Decision::Forbidden(message)
            }
            Err(e) => {
                tracing::warn!(error = %e, "access review failed; answering 500");
                Decision::Failed(e)
            }
        }
    }

    async fn authenticate(&self, token: &str) -> Result<Option<User>, String> {
        let key = self.token_cache_key(token);
        if let Some(user) = lock(&self.tokens).get(&key, Instant::now()) {
            return Ok(user);
        }
        let user = self.reviewer.review_token(token).await?;
        lock(&self.tokens).insert(key, user.clone(), TOKEN_CACHE_TTL, Instant::now());
        Ok(user)
    }

    async fn authorize(&self, spec: &SubjectAccessReviewSpec) -> Result<Access, String> {
        // Upstream's key: the review's spec as JSON.
        let key = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        if let Some(access) = lock(&self.access).get(&key, Instant::now()) {
            return Ok(access);
        }
        let access = self.reviewer.review_access(spec).await?;
        let ttl = if access.allowed {
            ALLOW_CACHE_TTL
        } else {
            DENY_CACHE_TTL
        };
        lock(&self.access).insert(key, access.clone(), ttl, Instant::now());
        Ok(access)
    }

    fn token_cache_key(&self, token: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.token_key, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The token of `Authorization: Bearer <token>` (upstream's `bearertoken` authenticator:
/// scheme case-insensitive, the token up to the next space, never empty).
pub fn bearer_token(header: &HeaderValue) -> Option<&str> {
    let value = header.to_str().ok()?;
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The SubjectAccessReview spec upstream's webhook authorizer sends for a non-resource
/// request (`plugin/pkg/authorizer/webhook/webhook.go`, `Authorize`).
pub fn access_spec(user: &User, path: &str, verb: &str) -> SubjectAccessReviewSpec {
    SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        non_resource_attributes: Some(NonResourceAttributes {
            path: Some(path.to_string()),
            verb: Some(verb.to_string()),
        }),
        resource_attributes: None,
    }
}

/// The API server as reviewer, through bare-ccm's client layer (its own token bucket,
/// never fenced: a standby replica answers scrapes too).
pub struct KubeReviewer {
    client: kube::Client,
}

impl KubeReviewer {
    pub fn new(client: kube::Client) -> Self {
        KubeReviewer { client }
    }
}

impl Reviewer for KubeReviewer {
    async fn review_token(&self, token: &str) -> Result<Option<User>, String> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer =
            tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| format!("no answer to the TokenReview within {REVIEW_TIMEOUT:?}"))?
                .map_err(|e| format!("TokenReview: {}", crate::telemetry::Chain(&e)))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        Ok(Some(User {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        }))
    }

    async fn review_access(&self, spec: &SubjectAccessReviewSpec) -> Result<Access, String> {
        let review = SubjectAccessReview {
            spec: spec.clone(),
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer =
            tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| {
                    format!("no answer to the SubjectAccessReview within {REVIEW_TIMEOUT:?}")
                })?
                .map_err(|e| format!("SubjectAccessReview: {}", crate::telemetry::Chain(&e)))?;
        let status = answer.status.unwrap_or_default();
        Ok(Access {
            allowed: status.allowed,
            denied: status.denied.unwrap_or(false),
            reason: status.reason.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
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
        let token =
            |v: &'static str| bearer_token(&HeaderValue::from_static(v)).map(str::to_string);
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
}
