//! Secure metrics on the real control plane (kube-apiserver with Node,RBAC, on the test bed
//! of tests/testbed): bare-ccm runs on the host with its secure port, and the API server
//! is the authenticator and the authorizer of every scrape. A ServiceAccount token the
//! RBAC does not allow `get` on `/metrics` gets 403, one bound to a ClusterRole allowing
//! it gets the metrics with upstream's names, no token or a forged one gets 401, and the
//! probes need no token. Without the `system:auth-delegator` binding bare-ccm may not ask,
//! and no token gets through; the audit log shows the reviews bare-ccm made and that
//! repeated scrapes were answered from its caches.

use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::testbed::{Ccm, Testbed, exclusive};
use support::{
    AUTH_DELEGATOR_BINDING, METRICS_READER_ROLE, NS, https_get, manifest_binds_auth_delegator,
    manifest_documents, sa_user, sample,
};

/// The ServiceAccount Prometheus would scrape as, bound to the metrics-reader role.
const READER: &str = "metrics-reader";
/// A ServiceAccount with no grant on `/metrics`.
const NOBODY: &str = "metrics-nobody";

/// The manifest's bindings of `system:auth-delegator` (none until the manifests ship it).
fn auth_delegator_bindings() -> Vec<Value> {
    manifest_documents()
        .into_iter()
        .filter(|d| {
            d["kind"] == "ClusterRoleBinding"
                && d.pointer("/roleRef/name").and_then(Value::as_str)
                    == Some("system:auth-delegator")
        })
        .collect()
}

/// A token of ServiceAccount `kube-system/account` from the TokenRequest API.
fn token(bed: &Testbed, account: &str) -> String {
    bed.kubectl(&["create", "token", account, "-n", NS, "--duration", "1h"])
        .trim()
        .to_string()
}

/// The reviews bare-ccm created, by resource, as the audit log records them (code 201).
fn reviews(bed: &Testbed) -> (usize, usize) {
    let ours: Vec<_> = bed
        .audit()
        .into_iter()
        .filter(|e| e.user.username == sa_user("bare-ccm") && e.verb == "create" && e.code() == 201)
        .collect();
    let count = |resource: &str| {
        ours.iter()
            .filter(|e| {
                e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.resource == resource)
            })
            .count()
    };
    (count("tokenreviews"), count("subjectaccessreviews"))
}

/// Polls `GET /metrics` with `token` until it answers `code` (RBAC changes reach the
/// authorizer through informers, a moment after kubectl returns).
async fn scrape_until(ccm: &Ccm, token: &str, code: u16, what: &str) -> String {
    let start = Instant::now();
    loop {
        let answer = https_get(ccm.secure_port(), "/metrics", Some(token)).await;
        if let Some((got, body)) = &answer
            && *got == code
        {
            return body.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: GET /metrics answered {answer:?}, not {code}; bare-ccm log:\n{}",
            ccm.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_to_tokens_the_api_server_authorises_and_to_no_one_else() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--hollow-nodes", "1"]);
    bed.apply_manifest_without_workload();
    // The first part runs without the binding, whether or not the manifest has it.
    for binding in auth_delegator_bindings() {
        let name = binding.pointer("/metadata/name").and_then(Value::as_str);
        bed.kubectl(&["delete", "clusterrolebinding", name.unwrap_or_default()]);
    }
    bed.kubectl_with_input(&["apply", "-f", "-"], Some(METRICS_READER_ROLE));
    bed.kubectl_with_input(
        &["apply", "-f", "-"],
        Some(&support::metrics_reader_binding(
            "bare-ccm-metrics-reader",
            &format!("kind: ServiceAccount\n    name: {READER}\n    namespace: {NS}"),
        )),
    );
    for account in [READER, NOBODY] {
        bed.kubectl(&["create", "serviceaccount", account, "-n", NS]);
    }
    let (reader, nobody) = (token(&bed, READER), token(&bed, NOBODY));

    let dir = tempfile::tempdir().unwrap();
    let ccm = Ccm::start(&bed, dir.path(), &support::manifest_config(), &[]);
    ccm.wait_ready().await;
    let secure = ccm.secure_port();

    // The probes: no token needed on the secure port, and only they on the plain one.
    for path in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(
            https_get(secure, path, None).await,
            Some((200, "ok".to_string())),
            "secure {path}"
        );
        assert_eq!(
            support::http_get(ccm.port(), path).await.map(|r| r.0),
            Some(200),
            "plain {path}"
        );
    }
    assert_eq!(
        support::http_get(ccm.port(), "/metrics").await.map(|r| r.0),
        Some(404)
    );

    // Without system:auth-delegator the API server refuses bare-ccm's TokenReview: no
    // token is accepted, not even the reader's.
    let body = scrape_until(&ccm, &reader, 401, "reader before auth-delegator").await;
    assert!(body.contains("Unauthorized"), "{body}");
    assert!(
        ccm.log_text().contains("token review failed"),
        "{}",
        ccm.log_text()
    );

    // With it (the manifest's binding, or the documented one until the manifest has it),
    // the API server decides. The refused review above was not cached: the first scrape
    // after the grant already succeeds.
    if manifest_binds_auth_delegator() {
        bed.apply_manifest_without_workload();
    } else {
        bed.kubectl_with_input(&["apply", "-f", "-"], Some(AUTH_DELEGATOR_BINDING));
    }
    let before = reviews(&bed);
    let scrape = scrape_until(&ccm, &reader, 200, "reader").await;
    let granted = Instant::now();

    let (code, body) = https_get(secure, "/metrics", None).await.unwrap();
    assert_eq!(code, 401, "no token: {body}");
    let (code, body) = https_get(secure, "/metrics", Some("forged")).await.unwrap();
    assert_eq!(code, 401, "forged token: {body}");
    let (code, body) = https_get(secure, "/metrics", Some(&nobody)).await.unwrap();
    assert_eq!(code, 403, "a token without get on /metrics: {body}");
    let who = sa_user(NOBODY);
    assert!(
        body.contains(&format!(r#"User \"{who}\" cannot get path \"/metrics\""#)),
        "{body}"
    );
    // Asked again at once: the answers come from bare-ccm's caches.
    for (token, code) in [
        (reader.as_str(), 200),
        ("forged", 401),
        (nobody.as_str(), 403),
    ] {
        let answer = https_get(secure, "/metrics", Some(token))
            .await
            .map(|r| r.0);
        assert_eq!(answer, Some(code));
    }
    assert!(
        granted.elapsed() < Duration::from_secs(5),
        "the repeats came too late"
    );

    // The API server reviewed each token once (reader, forged, nobody) and each user's
    // access once (reader, nobody). The audit log is written a moment later.
    let expected = (before.0 + 3, before.1 + 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = reviews(&bed);
    while after != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = reviews(&bed);
    }
    assert_eq!(
        after, expected,
        "(TokenReviews, SubjectAccessReviews) by bare-ccm"
    );

    // Upstream's names, alongside bare-ccm's own.
    for series in [
        "workqueue_depth{name=\"cloud-node\"}",
        "workqueue_adds_total{name=\"cloud-node\"}",
        "workqueue_retries_total{name=\"cloud-node\"}",
        "workqueue_queue_duration_seconds_count{name=\"cloud-node\"}",
        "workqueue_work_duration_seconds_count{name=\"cloud-node\"}",
        "bare_ccm_node_initializations_total",
    ] {
        assert!(sample(&scrape, series).is_some(), "{series} in:\n{scrape}");
    }
    assert!(sample(&scrape, "workqueue_adds_total{name=\"cloud-node\"}") >= Some(1.0));
    for family in [
        "workqueue_queue_duration_seconds_bucket{",
        "workqueue_work_duration_seconds_bucket{",
        "rest_client_requests_total{code=\"201\",",
        "rest_client_request_duration_seconds_bucket{",
    ] {
        assert!(
            scrape.lines().any(|l| l.starts_with(family)),
            "{family} in:\n{scrape}"
        );
    }
    let status = "leader_election_master_status{name=\"bare-ccm\"}";
    let start = Instant::now();
    loop {
        let scrape = scrape_until(&ccm, &reader, 200, "reader").await;
        if sample(&scrape, status) == Some(1.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{status} never 1:\n{scrape}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ccm.stop().await;
}
