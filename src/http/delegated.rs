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
mod tests;
