//! The emulator's HTTP semantics, one test per rule, each asserting what kube-apiserver
//! returns: status code, `reason`, and the resulting stored object. Requests go over HTTPS
//! through a kube-rs client built from the emulator's kubeconfig, sent raw so that status
//! codes and bodies are visible.

use std::time::Duration;

use bare_ccm_emulator::faults::InjectedStatus;
use bare_ccm_emulator::rbac::RbacPolicy;
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use http_body_util::BodyExt;
use serde_json::{Value, json};

struct Api {
    emu: Emulator,
    client: kube::Client,
}

struct Answer {
    code: u16,
    body: Value,
    retry_after: Option<String>,
    content_type: String,
    warnings: Vec<String>,
}

impl Api {
    async fn start() -> Api {
        Api::start_with(EmulatorOptions::default()).await
    }

    async fn start_with(opts: EmulatorOptions) -> Api {
        let emu = Emulator::start(opts).await.expect("emulator starts");
        let client = raw_client(&emu, &emu.admin_token()).await;
        Api { emu, client }
    }

    async fn as_user(&self, token: &str) -> kube::Client {
        raw_client(&self.emu, token).await
    }

    async fn call_with(
        client: &kube::Client,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Answer {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("json"))
            .unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(kube::client::Body::from(bytes))
            .expect("request");
        let resp = client.send(req).await.expect("response");
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let raw = resp.into_body().collect_bytes().await.expect("body");
        let body = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()));
        Answer {
            code,
            body,
            retry_after,
            content_type,
            warnings,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        Api::call_with(&self.client, method, path, "application/json", body).await
    }

    async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Answer {
        Api::call_with(&self.client, "PATCH", path, content_type, Some(body)).await
    }

    async fn create_node(&self, name: &str) -> Value {
        let node = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":name,"labels":{"role":"worker"}},
            "spec":{"providerID":""},
            "status":{"conditions":[{"type":"Ready","status":"True"}],"addresses":[{"type":"Hostname","address":name}]}});
        let a = self.call("POST", "/api/v1/nodes", Some(&node)).await;
        assert_eq!(a.code, 201, "create {name}: {}", a.body);
        a.body
    }

    /// Opens a watch and returns the raw body to read events from.
    async fn watch(&self, path_and_query: &str) -> (u16, kube::client::Body) {
        let req = hyper::Request::builder()
            .method("GET")
            .uri(path_and_query)
            .body(kube::client::Body::empty())
            .expect("request");
        let resp = self.client.send(req).await.expect("watch response");
        (resp.status().as_u16(), resp.into_body())
    }
}

/// A client from the emulator's kubeconfig with kube-rs's automatic retry of 429/503
/// turned off, so that every answer of the server reaches the test.
async fn raw_client(emu: &Emulator, token: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&emu.kubeconfig_yaml(token)).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {obj}"))
}

/// Reads watch events until `n` arrived, the stream ended, or `wait` passed.
async fn read_events(
    body: &mut kube::client::Body,
    n: usize,
    wait: Duration,
) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < n {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (events, false),
            Ok(None) => return (events, true),
            // A broken connection ends the stream as surely as a clean end.
            Ok(Some(Err(_))) => return (events, true),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                events.push(serde_json::from_slice(&line).expect("event is JSON"));
            }
        }
    }
    (events, false)
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_unauthorized() {
    let api = Api::start().await;
    let stranger = api.as_user("not-a-token").await;
    let a = Api::call_with(&stranger, "GET", "/api/v1/nodes", "application/json", None).await;
    assert_eq!(a.code, 401);
    assert_eq!(a.body["reason"], "Unauthorized");
    assert_eq!(a.body["kind"], "Status");
}

#[tokio::test]
async fn health_and_version_are_served() {
    let api = Api::start().await;
    for path in ["/healthz", "/readyz", "/livez"] {
        let a = api.call("GET", path, None).await;
        assert_eq!((a.code, a.body.clone()), (200, json!("ok")), "{path}");
    }
    let v = api.call("GET", "/version", None).await;
    assert_eq!(v.code, 200);
    assert_eq!(v.body["gitVersion"], "v1.33.0");
    assert_eq!(v.body["major"], "1");
}

#[tokio::test]
async fn discovery_documents_list_groups_resources_and_short_names() {
    let api = Api::start().await;
    let core = api.call("GET", "/api", None).await;
    assert_eq!(core.body["versions"], json!(["v1"]));
    let v1 = api.call("GET", "/api/v1", None).await;
    assert_eq!(v1.body["kind"], "APIResourceList");
    let names: Vec<String> = v1.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_string())
        .collect();
    for n in [
        "nodes",
        "nodes/status",
        "events",
        "configmaps",
        "namespaces",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    let groups = api.call("GET", "/apis", None).await;
    assert_eq!(groups.body["kind"], "APIGroupList");
    let leases = api.call("GET", "/apis/coordination.k8s.io/v1", None).await;
    assert_eq!(leases.body["resources"][0]["name"], "leases");
    assert_eq!(leases.body["resources"][0]["namespaced"], true);
    // Outside the served groups: the plain NotFound page, not a Status.
    let missing = api.call("GET", "/openapi/v2", None).await;
    assert_eq!(missing.code, 404);
    assert!(
        missing.content_type.starts_with("text/plain"),
        "{}",
        missing.content_type
    );
    // Namespaces cannot be deleted as a collection.
    let namespaces = v1.body["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "namespaces")
        .cloned()
        .unwrap_or_default();
    assert!(
        !namespaces["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("deletecollection"))),
        "{namespaces}"
    );
}

#[tokio::test]
async fn a_fresh_cluster_has_its_four_namespaces() {
    let api = Api::start().await;
    let a = api.call("GET", "/api/v1/namespaces", None).await;
    let names: Vec<&str> = a.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert_eq!(a.body["kind"], "NamespaceList");
}

#[tokio::test]
async fn get_of_a_missing_node_is_404_with_the_real_status_shape() {
    let api = Api::start().await;
    let a = api.call("GET", "/api/v1/nodes/x", None).await;
    assert_eq!(a.code, 404);
    assert_eq!(
        a.body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"nodes \"x\" not found","reason":"NotFound",
               "details":{"name":"x","kind":"nodes"},"code":404})
    );
}

#[tokio::test]
async fn create_sets_uid_timestamp_and_one_global_increasing_resource_version() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let uid = n1["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(uid.len(), 36);
    assert_eq!(uid.matches('-').count(), 4);
    let ts = n1["metadata"]["creationTimestamp"]
        .as_str()
        .expect("timestamp");
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    assert_eq!(n1["kind"], "Node");
    assert_eq!(n1["apiVersion"], "v1");
    // Another resource type shares the same counter.
    let cm = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"metadata":{"name":"c"},"data":{"k":"v"}})),
        )
        .await;
    assert_eq!(cm.code, 201);
    assert_eq!(rv(&cm.body), rv(&n1) + 1);
    assert_eq!(api.emu.current_resource_version(), rv(&cm.body));
    assert_eq!(api.emu.get_object("nodes", None, "n1"), Some(n1));
}

#[tokio::test]
async fn create_of_an_existing_name_is_409_already_exists() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .call(
            "POST",
            "/api/v1/nodes",
            Some(&json!({"metadata":{"name":"n1"}})),
        )
        .await;
    assert_eq!(a.code, 409);
    assert_eq!(a.body["reason"], "AlreadyExists");
    assert_eq!(a.body["message"], "nodes \"n1\" already exists");
}

#[tokio::test]
async fn create_needs_a_name_or_generate_name() {
    let api = Api::start().await;
    let a = api
        .call("POST", "/api/v1/nodes", Some(&json!({"metadata":{}})))
        .await;
    assert_eq!(a.code, 422);
    assert_eq!(a.body["reason"], "Invalid");
    let g = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"metadata":{"generateName":"cfg-"}})),
        )
        .await;
    assert_eq!(g.code, 201);
    let name = g.body["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_404_for_the_namespace() {
    let api = Api::start().await;
    let a = api
        .call(
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            Some(&json!({"metadata":{"name":"c"}})),
        )
        .await;
    assert_eq!(a.code, 404);
    assert_eq!(a.body["message"], "namespaces \"nope\" not found");
    let mismatch = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"metadata":{"name":"c","namespace":"kube-system"}})),
        )
        .await;
    assert_eq!(
        (mismatch.code, mismatch.body["reason"].clone()),
        (400, json!("BadRequest"))
    );
}

#[tokio::test]
async fn put_with_a_stale_resource_version_is_409_conflict() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let mut first = n1.clone();
    first["metadata"]["labels"]["a"] = json!("1");
    let ok = api.call("PUT", "/api/v1/nodes/n1", Some(&first)).await;
    assert_eq!(ok.code, 200);
    assert!(rv(&ok.body) > rv(&n1));
    let mut stale = n1.clone();
    stale["metadata"]["labels"]["b"] = json!("2");
    let a = api.call("PUT", "/api/v1/nodes/n1", Some(&stale)).await;
    assert_eq!(a.code, 409);
    assert_eq!(a.body["reason"], "Conflict");
    assert_eq!(
        a.body["message"],
        "Operation cannot be fulfilled on nodes \"n1\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let stored = api.emu.get_object("nodes", None, "n1").expect("stored");
    assert_eq!(
        stored["metadata"]["labels"],
        json!({"role":"worker","a":"1"})
    );
}

#[tokio::test]
async fn put_without_resource_version_is_an_unconditional_update() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let mut body = n1.clone();
    body["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    body["metadata"]["labels"]["x"] = json!("y");
    let a = api.call("PUT", "/api/v1/nodes/n1", Some(&body)).await;
    assert_eq!(a.code, 200);
    assert_eq!(a.body["metadata"]["labels"]["x"], "y");
    assert_eq!(a.body["metadata"]["uid"], n1["metadata"]["uid"]);
    let wrong_name = api.call("PUT", "/api/v1/nodes/other", Some(&body)).await;
    assert_eq!(wrong_name.code, 400);
    let missing = api
        .call(
            "PUT",
            "/api/v1/nodes/zz",
            Some(&json!({"metadata":{"name":"zz"}})),
        )
        .await;
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn merge_patch_resource_version_is_a_precondition() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let stale = rv(&n1).to_string();
    let a = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"metadata":{"labels":{"a":"1"}}}),
        )
        .await;
    assert_eq!(a.code, 200);
    assert_eq!(
        a.body["metadata"]["labels"],
        json!({"role":"worker","a":"1"})
    );
    let conflict = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"metadata":{"resourceVersion":stale,"labels":{"b":"2"}}}),
        )
        .await;
    assert_eq!(
        (conflict.code, conflict.body["reason"].clone()),
        (409, json!("Conflict"))
    );
    let current = rv(&a.body).to_string();
    let ok = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"metadata":{"resourceVersion":current,"labels":{"role":null}}}),
        )
        .await;
    assert_eq!(ok.code, 200);
    assert_eq!(
        api.emu.get_object("nodes", None, "n1").expect("node")["metadata"]["labels"],
        json!({"a":"1"})
    );
}

#[tokio::test]
async fn json_patch_applies_every_rfc6902_op_and_a_failed_test_is_422() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let ops = json!([
        {"op":"add","path":"/metadata/labels/a","value":"1"},
        {"op":"replace","path":"/metadata/labels/role","value":"edge"},
        {"op":"copy","from":"/metadata/labels/a","path":"/metadata/labels/b"},
        {"op":"move","from":"/metadata/labels/b","path":"/metadata/labels/c"},
        {"op":"remove","path":"/metadata/labels/a"},
        {"op":"test","path":"/metadata/labels/role","value":"edge"}
    ]);
    let a = api
        .patch("/api/v1/nodes/n1", "application/json-patch+json", &ops)
        .await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.body["metadata"]["labels"], json!({"role":"edge","c":"1"}));
    let before = api.emu.get_object("nodes", None, "n1");
    let failed = api
        .patch(
            "/api/v1/nodes/n1",
            "application/json-patch+json",
            &json!([{"op":"test","path":"/metadata/labels/role","value":"worker"},
                    {"op":"add","path":"/metadata/labels/z","value":"1"}]),
        )
        .await;
    assert_eq!(failed.code, 422);
    assert_eq!(failed.body["reason"], "Invalid");
    assert_eq!(api.emu.get_object("nodes", None, "n1"), before);
    let malformed = api
        .patch(
            "/api/v1/nodes/n1",
            "application/json-patch+json",
            &json!({"op":"add"}),
        )
        .await;
    assert_eq!(
        (malformed.code, malformed.body["reason"].clone()),
        (400, json!("BadRequest"))
    );
}

#[tokio::test]
async fn strategic_merge_patch_merges_conditions_by_type() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1/status",
            "application/strategic-merge-patch+json",
            &json!({"status":{"conditions":[{"type":"MemoryPressure","status":"False"}]}}),
        )
        .await;
    assert_eq!(a.code, 200, "{}", a.body);
    let types: Vec<&str> = a.body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert!(
        types.contains(&"Ready") && types.contains(&"MemoryPressure"),
        "{types:?}"
    );
}

#[tokio::test]
async fn server_side_apply_and_unknown_patch_types_are_415() {
    let api = Api::start().await;
    api.create_node("n1").await;
    for ct in ["application/apply-patch+yaml", "text/plain"] {
        let a = api.patch("/api/v1/nodes/n1", ct, &json!({})).await;
        assert_eq!(a.code, 415, "{ct}");
        assert_eq!(a.body["reason"], "UnsupportedMediaType");
    }
}

#[tokio::test]
async fn a_write_that_changes_nothing_keeps_the_resource_version_and_emits_no_event() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let (_, mut body) = api
        .watch(&format!(
            "/api/v1/nodes?watch=1&resourceVersion={}",
            rv(&n1)
        ))
        .await;
    let same = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"metadata":{"labels":{"role":"worker"}}}),
        )
        .await;
    assert_eq!(same.code, 200);
    assert_eq!(rv(&same.body), rv(&n1));
    assert_eq!(api.emu.current_resource_version(), rv(&n1));
    let (events, _) = read_events(&mut body, 1, Duration::from_millis(300)).await;
    assert!(events.is_empty(), "no-op write produced {events:?}");
}

#[tokio::test]
async fn writes_to_a_node_ignore_status_and_writes_to_status_ignore_spec() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let main = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"unschedulable":true},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}}),
        )
        .await;
    assert_eq!(main.code, 200);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert_eq!(stored["spec"]["unschedulable"], true);
    assert_eq!(
        stored["status"]["addresses"],
        json!([{"type":"Hostname","address":"n1"}])
    );
    let status = api
        .patch(
            "/api/v1/nodes/n1/status",
            "application/merge-patch+json",
            &json!({"spec":{"unschedulable":false},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}}),
        )
        .await;
    assert_eq!(status.code, 200);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert_eq!(stored["spec"]["unschedulable"], true);
    assert_eq!(
        stored["status"]["addresses"],
        json!([{"type":"InternalIP","address":"10.0.0.1"}])
    );
}

#[tokio::test]
async fn changing_a_set_provider_id_is_422_invalid() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let set = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"providerID":"bare://n1"}}),
        )
        .await;
    assert_eq!(set.code, 200);
    let change = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"providerID":"bare://other"}}),
        )
        .await;
    assert_eq!(change.code, 422, "{}", change.body);
    assert_eq!(change.body["reason"], "Invalid");
    assert_eq!(change.body["details"]["kind"], "Node");
    assert_eq!(
        api.emu.get_object("nodes", None, "n1").expect("node")["spec"]["providerID"],
        "bare://n1"
    );
}

#[tokio::test]
async fn list_filters_by_label_and_field_selectors() {
    let api = Api::start().await;
    for n in ["a", "b", "c"] {
        api.create_node(n).await;
    }
    api.patch(
        "/api/v1/nodes/b",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"role":"cp"}}}),
    )
    .await;
    let by_label = api
        .call("GET", "/api/v1/nodes?labelSelector=role%3Dworker", None)
        .await;
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names(&by_label.body), vec!["a", "c"]);
    let by_field = api
        .call("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dc", None)
        .await;
    assert_eq!(names(&by_field.body), vec!["c"]);
    let bad = api
        .call("GET", "/api/v1/nodes?fieldSelector=spec.foo%3Dx", None)
        .await;
    assert_eq!(
        (bad.code, bad.body["reason"].clone()),
        (400, json!("BadRequest"))
    );
    // Nodes also accept `spec.unschedulable` (pkg/registry/core/node/strategy.go
    // NodeToSelectableFields); our nodes are all schedulable.
    let schedulable = api
        .call(
            "GET",
            "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse",
            None,
        )
        .await;
    assert_eq!(schedulable.code, 200, "{:?}", schedulable.body);
    assert_eq!(names(&schedulable.body), vec!["a", "b", "c"]);
    // The list carries its resourceVersion and typed items carry no kind/apiVersion.
    assert_eq!(rv(&by_label.body), api.emu.current_resource_version());
    assert!(by_label.body["items"][0].get("kind").is_none());
}

#[tokio::test]
async fn list_pages_with_limit_and_continue_from_one_snapshot() {
    let api = Api::start().await;
    for n in ["a", "b", "c", "d", "e"] {
        api.create_node(n).await;
    }
    let p1 = api.call("GET", "/api/v1/nodes?limit=2", None).await;
    assert_eq!(p1.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(p1.body["metadata"]["remainingItemCount"], 3);
    let token = p1.body["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    // A node created between pages is not in the continuation (consistent snapshot).
    api.create_node("f").await;
    let p2 = api
        .call(
            "GET",
            &format!("/api/v1/nodes?limit=10&continue={token}"),
            None,
        )
        .await;
    let names: Vec<&str> = p2.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["c", "d", "e"]);
    assert!(p2.body["metadata"].get("continue").is_none());
    assert_eq!(
        p2.body["metadata"]["resourceVersion"],
        p1.body["metadata"]["resourceVersion"]
    );
    api.emu.expire_resource_versions();
    let expired = api
        .call(
            "GET",
            &format!("/api/v1/nodes?limit=2&continue={token}"),
            None,
        )
        .await;
    assert_eq!(
        (expired.code, expired.body["reason"].clone()),
        (410, json!("Expired"))
    );
    let garbage = api.call("GET", "/api/v1/nodes?continue=%21%21", None).await;
    assert_eq!(garbage.code, 400);
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_later_events_then_streams_live() {
    let api = Api::start().await;
    let a = api.create_node("a").await;
    api.create_node("b").await;
    let (code, mut body) = api
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={}",
            rv(&a)
        ))
        .await;
    assert_eq!(code, 200);
    api.patch(
        "/api/v1/nodes/a",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"x":"1"}}}),
    )
    .await;
    api.call("DELETE", "/api/v1/nodes/b", None).await;
    let (events, _) = read_events(&mut body, 3, Duration::from_secs(5)).await;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("ADDED".into(), "b".into()),
            ("MODIFIED".into(), "a".into()),
            ("DELETED".into(), "b".into())
        ]
    );
    assert_eq!(events[1]["object"]["kind"], "Node");
    // The DELETED object carries the deletion's resourceVersion.
    assert_eq!(rv(&events[2]["object"]), api.emu.current_resource_version());
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_synthetic_added_events() {
    let api = Api::start().await;
    api.create_node("a").await;
    api.create_node("b").await;
    let (_, mut body) = api.watch("/api/v1/nodes?watch=1&resourceVersion=0").await;
    let (events, _) = read_events(&mut body, 2, Duration::from_secs(5)).await;
    assert!(events.iter().all(|e| e["type"] == "ADDED"));
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn watch_from_an_expired_resource_version_gets_a_410_error_event() {
    let api = Api::start_with(EmulatorOptions {
        watch_history: 2,
        ..Default::default()
    })
    .await;
    let first = api.create_node("a").await;
    for n in ["b", "c", "d"] {
        api.create_node(n).await;
    }
    let (code, mut body) = api
        .watch(&format!(
            "/api/v1/nodes?watch=1&resourceVersion={}",
            rv(&first)
        ))
        .await;
    assert_eq!(code, 200);
    let (events, ended) = read_events(&mut body, 2, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 1);
    assert!(ended);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert!(
        events[0]["object"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("too old resource version")
    );
    // After expire_resource_versions, even a recent RV is too old.
    let now = api.emu.current_resource_version();
    api.emu.expire_resource_versions();
    api.create_node("e").await;
    let (_, mut again) = api
        .watch(&format!(
            "/api/v1/nodes?watch=1&resourceVersion={}",
            now - 1
        ))
        .await;
    let (events, _) = read_events(&mut again, 1, Duration::from_secs(5)).await;
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn watch_sends_a_bookmark_before_its_timeout_once_something_newer_happened() {
    let api = Api::start().await;
    let before = api.emu.current_resource_version();
    api.create_node("a").await;
    // A write elsewhere: the newest resourceVersion is past everything the watch replays.
    let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}});
    let c = api
        .call("POST", "/api/v1/namespaces/default/configmaps", Some(&cm))
        .await;
    assert_eq!(c.code, 201, "{}", c.body);
    let current = api.emu.current_resource_version();
    let (_, mut body) = api
        .watch(&format!("/api/v1/nodes?watch=1&resourceVersion={before}&allowWatchBookmarks=true&timeoutSeconds=1"))
        .await;
    let (events, ended) = read_events(&mut body, 5, Duration::from_secs(5)).await;
    assert!(ended, "the watch must end at its timeout");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "BOOKMARK");
    let bookmark = &events[1]["object"];
    assert_eq!(
        bookmark["metadata"],
        json!({"resourceVersion": current.to_string()})
    );
    assert_eq!(bookmark["kind"], "Node");
    // The zero Node, as the watch cache's `newFunc` makes it.
    assert_eq!(
        bookmark["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        0
    );

    // Nothing newer than where the watch starts: no bookmark (`cache_watcher.go`
    // `process` sends only events newer than the watch's resourceVersion).
    let (_, mut quiet) = api
        .watch(&format!("/api/v1/nodes?watch=1&resourceVersion={current}&allowWatchBookmarks=true&timeoutSeconds=1"))
        .await;
    let (events, ended) = read_events(&mut quiet, 5, Duration::from_secs(5)).await;
    assert!(ended, "the watch must end at its timeout");
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn streaming_list_watch_sends_the_state_then_an_initial_events_end_bookmark() {
    let api = Api::start().await;
    api.create_node("a").await;
    api.create_node("b").await;
    let current = api.emu.current_resource_version();
    let (code, mut body) = api
        .watch("/api/v1/nodes?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2")
        .await;
    assert_eq!(code, 200);
    let (events, _) = read_events(&mut body, 3, Duration::from_secs(5)).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"], "{events:?}");
    assert_eq!(
        events[2]["object"]["metadata"],
        json!({"resourceVersion": current.to_string(),
               "annotations": {"k8s.io/initial-events-end": "true"}})
    );
    // A legacy watch (no resourceVersion) is defaulted to a streaming list.
    let (_, mut legacy) = api
        .watch("/api/v1/nodes?watch=1&allowWatchBookmarks=true&timeoutSeconds=2")
        .await;
    let (events, _) = read_events(&mut legacy, 3, Duration::from_secs(5)).await;
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true",
        "{events:?}"
    );
    // sendInitialEvents needs resourceVersionMatch=NotOlderThan.
    let bad = api
        .call("GET", "/api/v1/nodes?watch=1&sendInitialEvents=true", None)
        .await;
    assert_eq!(bad.code, 422, "{}", bad.body);
    assert_eq!(
        bad.body["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    );
}

#[tokio::test]
async fn list_options_are_validated_as_upstream() {
    let api = Api::start().await;
    let cases = [
        (
            "/api/v1/nodes?resourceVersionMatch=NotOlderThan",
            422,
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "/api/v1/nodes?resourceVersion=0&resourceVersionMatch=Exact",
            422,
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ),
        (
            "/api/v1/nodes?resourceVersion=1&resourceVersionMatch=Newest",
            422,
            "resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
        (
            "/api/v1/nodes?sendInitialEvents=true",
            422,
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
        (
            "/api/v1/nodes?watch=1&resourceVersionMatch=NotOlderThan",
            422,
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        // The token is decoded before the resourceVersion beside it is refused.
        (
            "/api/v1/nodes?resourceVersion=5&continue=abc",
            400,
            "invalid continue token: continue key is not valid: invalid character 'i' looking for beginning of value",
        ),
        (
            "/api/v1/nodes?resourceVersion=abc",
            400,
            "invalid resource version: resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax",
        ),
    ];
    for (path, code, message) in cases {
        let a = api.call("GET", path, None).await;
        assert_eq!(a.code, code, "{path}: {}", a.body);
        let got = a.body["message"].as_str().unwrap_or("");
        assert!(got.ends_with(message), "{path}: {got}");
    }
}

#[tokio::test]
async fn kube_rs_default_watcher_lists_then_watches() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Node;
    use kube::runtime::watcher;
    let api = Api::start().await;
    api.create_node("a").await;
    let nodes: kube::Api<Node> = kube::Api::all(api.client.clone());
    let mut stream = watcher(nodes, watcher::Config::default()).boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("watcher answers in time")
        .expect("no watcher error");
    assert!(matches!(first, Some(watcher::Event::Init)), "{first:?}");
    let second = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("watcher answers in time")
        .expect("no watcher error");
    match second {
        Some(watcher::Event::InitApply(node)) => {
            assert_eq!(node.metadata.name.as_deref(), Some("a"))
        }
        other => panic!("expected the listed node, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_timeout_seconds_zero_means_unset_not_immediate_end() {
    let api = Api::start().await;
    api.create_node("a").await;
    let (code, mut body) = api.watch("/api/v1/nodes?watch=1&timeoutSeconds=0").await;
    assert_eq!(code, 200);
    let (events, ended) = read_events(&mut body, 2, Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!ended, "a watch with timeoutSeconds=0 must stay open");
}

#[tokio::test]
async fn a_label_selected_watch_sees_objects_leave_as_deleted() {
    let api = Api::start().await;
    let a = api.create_node("a").await;
    let (_, mut body) = api
        .watch(&format!(
            "/api/v1/nodes?watch=1&labelSelector=role%3Dworker&resourceVersion={}",
            rv(&a)
        ))
        .await;
    api.patch(
        "/api/v1/nodes/a",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"role":"cp"}}}),
    )
    .await;
    api.patch(
        "/api/v1/nodes/a",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"role":"worker"}}}),
    )
    .await;
    let (events, _) = read_events(&mut body, 2, Duration::from_secs(5)).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, vec!["DELETED", "ADDED"]);
}

#[tokio::test]
async fn cut_watches_ends_every_open_watch() {
    let api = Api::start().await;
    let (_, mut body) = api.watch("/api/v1/nodes?watch=1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.emu.cut_watches();
    let (_, ended) = read_events(&mut body, 1, Duration::from_secs(5)).await;
    assert!(ended);
}

#[tokio::test]
async fn delete_answers_status_success_and_watchers_see_deleted() {
    let api = Api::start().await;
    let n1 = api.create_node("n1").await;
    let conflict = api
        .call(
            "DELETE",
            "/api/v1/nodes/n1",
            Some(&json!({"preconditions":{"resourceVersion":"1"}})),
        )
        .await;
    assert_eq!(
        (conflict.code, conflict.body["reason"].clone()),
        (409, json!("Conflict"))
    );
    let a = api.call("DELETE", "/api/v1/nodes/n1", None).await;
    assert_eq!(a.code, 200);
    assert_eq!(a.body["status"], "Success");
    assert_eq!(a.body["details"]["name"], "n1");
    assert_eq!(a.body["details"]["uid"], n1["metadata"]["uid"]);
    assert_eq!(api.emu.get_object("nodes", None, "n1"), None);
    let again = api.call("DELETE", "/api/v1/nodes/n1", None).await;
    assert_eq!(again.code, 404);
}

#[tokio::test]
async fn dry_run_validates_but_persists_nothing() {
    let api = Api::start().await;
    let a = api
        .call(
            "POST",
            "/api/v1/nodes?dryRun=All",
            Some(&json!({"metadata":{"name":"n1"}})),
        )
        .await;
    assert_eq!(a.code, 201);
    assert_eq!(api.emu.get_object("nodes", None, "n1"), None);
}

#[tokio::test]
async fn core_and_events_k8s_io_events_share_one_store() {
    let api = Api::start().await;
    let core = json!({"metadata":{"name":"e1"},"involvedObject":{"kind":"Node","name":"n1"},
        "reason":"Synced","message":"node synced","type":"Normal"});
    let a = api
        .call("POST", "/api/v1/namespaces/default/events", Some(&core))
        .await;
    assert_eq!(a.code, 201);
    let v1 = api
        .call(
            "GET",
            "/apis/events.k8s.io/v1/namespaces/default/events/e1",
            None,
        )
        .await;
    assert_eq!(v1.code, 200);
    assert_eq!(v1.body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1.body["note"], "node synced");
    assert_eq!(v1.body["regarding"]["name"], "n1");
    let created = api
        .call(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            Some(&json!({"metadata":{"name":"e2"},"regarding":{"kind":"Node","name":"n2"},"note":"hi","reason":"R","type":"Normal",
                "eventTime":"2025-01-01T00:00:00.000000Z","reportingController":"bare-ccm","reportingInstance":"x","action":"Sync"})),
        )
        .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let stored = api
        .emu
        .get_object("events", Some("default"), "e2")
        .expect("stored");
    assert_eq!(stored["message"], "hi");
    assert_eq!(stored["involvedObject"]["name"], "n2");
    let all = api.call("GET", "/api/v1/events", None).await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(2));
    // Field selectors follow each group's own field names
    // (pkg/apis/events/v1/conversion.go AddFieldLabelConversionsForEvent).
    let by_regarding = api
        .call(
            "GET",
            "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dn2",
            None,
        )
        .await;
    assert_eq!(by_regarding.code, 200, "{}", by_regarding.body);
    assert_eq!(by_regarding.body["items"].as_array().map(Vec::len), Some(1));
    let core_name_on_v1 = api
        .call(
            "GET",
            "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dn2",
            None,
        )
        .await;
    assert_eq!(core_name_on_v1.code, 400, "{}", core_name_on_v1.body);
    let by_involved = api
        .call(
            "GET",
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dn1",
            None,
        )
        .await;
    assert_eq!(by_involved.body["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn delete_with_an_unknown_propagation_policy_is_422_and_deletes_nothing() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let bad = api
        .call("DELETE", "/api/v1/nodes/n1?propagationPolicy=Bogus", None)
        .await;
    assert_eq!(
        (bad.code, bad.body["reason"].clone()),
        (422, json!("Invalid")),
        "{}",
        bad.body
    );
    assert_eq!(bad.body["details"]["kind"], "DeleteOptions");
    assert!(api.emu.get_object("nodes", None, "n1").is_some());
    let ok = api
        .call(
            "DELETE",
            "/api/v1/nodes/n1?propagationPolicy=Background",
            None,
        )
        .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert!(api.emu.get_object("nodes", None, "n1").is_none());
}

#[tokio::test]
async fn leases_are_created_and_replaced_in_their_group() {
    let api = Api::start().await;
    let path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
    let lease = json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"bare-ccm"},
        "spec":{"holderIdentity":"a","leaseDurationSeconds":15}});
    let created = api.call("POST", path, Some(&lease)).await;
    assert_eq!(created.code, 201);
    let mut next = created.body.clone();
    next["spec"]["holderIdentity"] = json!("b");
    let replaced = api
        .call("PUT", &format!("{path}/bare-ccm"), Some(&next))
        .await;
    assert_eq!(replaced.code, 200);
    let stale = api
        .call("PUT", &format!("{path}/bare-ccm"), Some(&next))
        .await;
    assert_eq!(stale.code, 409);
    assert_eq!(
        stale.body["message"],
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"bare-ccm\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        api.emu
            .get_object("leases", Some("kube-system"), "bare-ccm")
            .expect("lease")["spec"]["holderIdentity"],
        "b"
    );
}

const CCM_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bare-ccm
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bare-ccm
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: bare-ccm
subjects:
- kind: ServiceAccount
  name: bare-ccm
  namespace: kube-system
"#;

#[tokio::test]
async fn rbac_denies_ungranted_requests_with_the_real_forbidden_message() {
    let api = Api::start().await;
    api.create_node("n1").await;
    api.emu
        .set_rbac(Some(RbacPolicy::from_yaml(CCM_RBAC).expect("policy")));
    let sa = api
        .as_user(&api.emu.service_account_token("kube-system", "bare-ccm"))
        .await;
    let get = Api::call_with(&sa, "GET", "/api/v1/nodes/n1", "application/json", None).await;
    assert_eq!(get.code, 200);
    let denied = Api::call_with(
        &sa,
        "PATCH",
        "/api/v1/nodes/n1/status",
        "application/merge-patch+json",
        Some(&json!({"status":{}})),
    )
    .await;
    assert_eq!(denied.code, 403);
    assert_eq!(denied.body["reason"], "Forbidden");
    assert_eq!(
        denied.body["message"],
        "nodes \"n1\" is forbidden: User \"system:serviceaccount:kube-system:bare-ccm\" cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope"
    );
    // system:masters bypasses RBAC.
    let admin = api.call("DELETE", "/api/v1/nodes/n1", None).await;
    assert_eq!(admin.code, 200);
}

#[tokio::test]
async fn authorization_comes_before_routing_so_unserved_resources_are_403_for_the_unauthorised() {
    let api = Api::start().await;
    api.emu
        .set_rbac(Some(RbacPolicy::from_yaml(CCM_RBAC).expect("policy")));
    let sa = api
        .as_user(&api.emu.service_account_token("kube-system", "bare-ccm"))
        .await;
    let user = "system:serviceaccount:kube-system:bare-ccm";
    let call = |method: &'static str, path: &'static str| {
        let sa = sa.clone();
        async move { Api::call_with(&sa, method, path, "application/json", None).await }
    };

    // A resource this server does not serve: the caller is not granted it, so 403.
    let services = call("GET", "/api/v1/namespaces/default/services").await;
    assert_eq!(services.code, 403, "{}", services.body);
    assert_eq!(
        services.body["message"],
        format!(
            "services is forbidden: User \"{user}\" cannot list resource \"services\" in API group \"\" in the namespace \"default\""
        )
    );
    let group = call("GET", "/apis/example.com/v1/widgets/w1").await;
    assert_eq!(group.code, 403);
    assert_eq!(
        group.body["details"],
        json!({"name": "w1", "group": "example.com", "kind": "widgets"})
    );
    // A verb the served resource does not support, by a caller not granted it: 403 too.
    let create_named = call("POST", "/api/v1/nodes/n1").await;
    assert_eq!(create_named.code, 403);
    // A non-resource path outside the discovery grants.
    let logs = call("GET", "/logs/").await;
    assert_eq!(
        (logs.code, logs.body["message"].as_str()),
        (
            403,
            Some(format!("forbidden: User \"{user}\" cannot get path \"/logs/\"").as_str())
        )
    );

    // Granted verbs on a served resource still work, and discovery is open to everyone
    // authenticated (bootstrap ClusterRole system:discovery), even for unknown groups.
    assert_eq!(call("GET", "/api/v1/nodes").await.code, 200);
    assert_eq!(call("GET", "/apis").await.code, 200);
    assert_eq!(call("GET", "/api/v1").await.code, 200);
    assert_eq!(call("GET", "/apis/example.com/v1").await.code, 404);
    // Discovery is granted for GET only.
    assert_eq!(call("POST", "/apis").await.code, 403);

    // An authorised caller (system:masters) learns that the resource does not exist.
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/default/services", None)
            .await
            .code,
        404
    );
    assert_eq!(api.call("POST", "/api/v1/nodes/n1", None).await.code, 405);
    assert_eq!(api.call("GET", "/logs/", None).await.code, 404);
}

#[tokio::test]
async fn injected_faults_answer_with_their_status_and_retry_after() {
    let api = Api::start().await;
    api.create_node("n1").await;
    api.emu.faults().fail_next(
        1,
        "get",
        "nodes",
        InjectedStatus::TooManyRequests {
            retry_after_secs: 2,
        },
    );
    let a = api.call("GET", "/api/v1/nodes/n1", None).await;
    assert_eq!(a.code, 429);
    // Priority and fairness answers in plain text, not with a Status.
    assert_eq!(a.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        a.body,
        json!("Too many requests, please try again later.\n")
    );
    assert_eq!(a.retry_after.as_deref(), Some("2"));
    assert_eq!(api.call("GET", "/api/v1/nodes/n1", None).await.code, 200);
    api.emu.faults().fail_next(
        1,
        "patch",
        "nodes/status",
        InjectedStatus::ServiceUnavailable,
    );
    let s = api
        .patch(
            "/api/v1/nodes/n1/status",
            "application/merge-patch+json",
            &json!({"status":{}}),
        )
        .await;
    assert_eq!(
        (s.code, s.body["reason"].clone()),
        (503, json!("ServiceUnavailable"))
    );
}

#[tokio::test]
async fn added_latency_delays_every_request() {
    let api = Api::start().await;
    api.emu.faults().set_latency(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(api.call("GET", "/api/v1/nodes", None).await.code, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn refused_connections_fail_then_the_server_comes_back() {
    let api = Api::start().await;
    let (_, mut watch) = api.watch("/api/v1/nodes?watch=1").await;
    api.emu
        .faults()
        .refuse_connections_for(Duration::from_millis(500));
    // The open watch is cut when the window starts.
    let (_, ended) = read_events(&mut watch, 1, Duration::from_secs(5)).await;
    assert!(ended);
    let fresh = api.as_user(&api.emu.admin_token()).await;
    let req = hyper::Request::builder()
        .uri("/api/v1/nodes")
        .body(kube::client::Body::empty())
        .expect("request");
    assert!(
        fresh.send(req).await.is_err(),
        "connections are refused during the window"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        Api::call_with(&fresh, "GET", "/api/v1/nodes", "application/json", None)
            .await
            .code,
        200
    );
}

#[tokio::test]
async fn accounting_counts_requests_and_logs_writes_with_their_author() {
    let api = Api::start().await;
    api.create_node("n1").await;
    api.patch(
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"a":"b"}}}),
    )
    .await;
    let requests = api.emu.accounting().requests();
    assert_eq!(
        requests.get(&("create".to_string(), "nodes".to_string())),
        Some(&1)
    );
    assert_eq!(
        requests.get(&("patch".to_string(), "nodes".to_string())),
        Some(&1)
    );
    let writes = api.emu.accounting().writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[1].user, "admin");
    assert_eq!(writes[1].verb, "patch");
    assert_eq!(
        writes[1].resource_version,
        api.emu.current_resource_version().to_string()
    );
    assert!(
        api.emu
            .accounting()
            .node_times()
            .get("n1")
            .is_some_and(|t| t.registered.is_some())
    );
}

#[tokio::test]
async fn metadata_sent_to_node_status_is_kept_as_the_node_status_strategy_does() {
    // nodeStatusStrategy.PrepareForUpdate resets only spec (kubernetes
    // pkg/registry/core/node/strategy.go); nodes do not opt in to ResetObjectMetaForStatus.
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1/status",
            "application/merge-patch+json",
            &json!({"metadata":{"labels":{"via-status":"yes"}}}),
        )
        .await;
    assert_eq!(a.code, 200);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert_eq!(stored["metadata"]["labels"]["via-status"], "yes");
}

#[tokio::test]
async fn delete_collection_removes_the_selected_objects_and_returns_them() {
    let api = Api::start().await;
    for n in ["a", "b", "c"] {
        api.create_node(n).await;
    }
    api.patch(
        "/api/v1/nodes/b",
        "application/merge-patch+json",
        &json!({"metadata":{"labels":{"role":"cp"}}}),
    )
    .await;
    let a = api
        .call("DELETE", "/api/v1/nodes?labelSelector=role%3Dworker", None)
        .await;
    assert_eq!(a.code, 200);
    assert_eq!(a.body["kind"], "NodeList");
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(2));
    let left: Vec<String> = api
        .emu
        .list_objects("nodes", None)
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(left, vec!["b"]);
}

#[tokio::test]
async fn deleting_a_namespace_removes_what_it_contains() {
    let api = Api::start().await;
    let ns = api
        .call(
            "POST",
            "/api/v1/namespaces",
            Some(&json!({"metadata":{"name":"tmp"}})),
        )
        .await;
    assert_eq!(ns.code, 201);
    assert_eq!(ns.body["status"]["phase"], "Active");
    assert_eq!(
        ns.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "tmp"
    );
    api.call(
        "POST",
        "/api/v1/namespaces/tmp/configmaps",
        Some(&json!({"metadata":{"name":"c"}})),
    )
    .await;
    let lease = json!({"metadata":{"name":"l"},"spec":{"holderIdentity":"a"}});
    let l = api
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/tmp/leases",
            Some(&lease),
        )
        .await;
    assert_eq!(l.code, 201, "{}", l.body);
    let protected = api
        .call("DELETE", "/api/v1/namespaces/kube-system", None)
        .await;
    assert_eq!(protected.code, 403);
    assert_eq!(
        protected.body["message"],
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
    let del = api.call("DELETE", "/api/v1/namespaces/tmp", None).await;
    assert_eq!(del.code, 200);
    // The answer is the Namespace marked for deletion, as the namespace registry gives it.
    assert_eq!(del.body["kind"], "Namespace", "{}", del.body);
    assert_eq!(del.body["status"]["phase"], "Terminating");
    assert!(del.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(api.emu.get_object("configmaps", Some("tmp"), "c"), None);
    assert_eq!(api.emu.get_object("leases", Some("tmp"), "l"), None);
    assert_eq!(api.emu.get_object("namespaces", None, "tmp"), None);
}

#[tokio::test]
async fn nodes_are_created_with_the_not_ready_taint_of_the_admission_plugin() {
    let api = Api::start().await;
    let plain = api.create_node("a").await;
    assert_eq!(
        plain["spec"]["taints"],
        json!([{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}])
    );
    // Already there (same key and effect): not added twice.
    let tainted = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"b"},
        "spec":{"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"},
                          {"key":"k","value":"v","effect":"NoExecute"}]}});
    let b = api.call("POST", "/api/v1/nodes", Some(&tainted)).await;
    assert_eq!(b.body["spec"]["taints"], tainted["spec"]["taints"]);
    // Go writes the zero NodeStatus structs a client left out.
    assert_eq!(
        b.body["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        0
    );
    assert_eq!(b.body["status"]["nodeInfo"]["kubeletVersion"], "");
}

#[tokio::test]
async fn a_put_with_another_uid_fails_the_storage_precondition_with_409() {
    let api = Api::start().await;
    api.create_node("a").await;
    let body = json!({"apiVersion":"v1","kind":"Node",
        "metadata":{"name":"a","uid":"6b1b7f0e-0000-4000-8000-000000000000"}});
    let a = api.call("PUT", "/api/v1/nodes/a", Some(&body)).await;
    assert_eq!(a.code, 409, "{}", a.body);
    let message = a.body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Operation cannot be fulfilled on nodes \"a\": StorageError: invalid object, Code: 4, Key: /registry/minions/a, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: 6b1b7f0e-0000-4000-8000-000000000000, UID in object meta: "),
        "{message}"
    );
    // A delete precondition names the kind.
    let del = api
        .call(
            "DELETE",
            "/api/v1/nodes/a",
            Some(&json!({"preconditions":{"resourceVersion":"1"}})),
        )
        .await;
    assert_eq!(del.code, 409, "{}", del.body);
    assert_eq!(del.body["details"]["kind"], "Node");
    assert!(
        del.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("the ResourceVersion in the precondition (1) does not match the ResourceVersion in record"),
        "{}",
        del.body
    );
}

#[tokio::test]
async fn watches_filter_by_fields_outside_metadata() {
    let api = Api::start().await;
    let before = api.emu.current_resource_version();
    let ev = |name: &str, node: &str| json!({"metadata":{"name":name},"involvedObject":{"kind":"Node","name":node},"reason":"R"});
    for (name, node) in [("e1", "n1"), ("e2", "n2")] {
        let a = api
            .call(
                "POST",
                "/api/v1/namespaces/default/events",
                Some(&ev(name, node)),
            )
            .await;
        assert_eq!(a.code, 201, "{}", a.body);
    }
    let (_, mut body) = api
        .watch(&format!(
            "/apis/events.k8s.io/v1/namespaces/default/events?watch=1&resourceVersion={before}&fieldSelector=regarding.name%3Dn2&timeoutSeconds=1"
        ))
        .await;
    let (events, _) = read_events(&mut body, 5, Duration::from_secs(5)).await;
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["e2"], "{events:?}");
}

#[tokio::test]
async fn put_of_a_missing_event_creates_it_as_the_event_strategy_allows() {
    let api = Api::start().await;
    let ev = json!({"metadata":{"name":"e1"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"R","message":"m"});
    let a = api
        .call("PUT", "/api/v1/namespaces/default/events/e1", Some(&ev))
        .await;
    assert_eq!(a.code, 201);
    assert!(
        api.emu
            .get_object("events", Some("default"), "e1")
            .is_some()
    );
}

#[tokio::test]
async fn yaml_bodies_are_decoded_and_protobuf_bodies_are_415() {
    let api = Api::start().await;
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/yaml")
        .body(kube::client::Body::from(
            b"metadata:\n  name: from-yaml\ndata:\n  k: v\n".to_vec(),
        ))
        .expect("request");
    let resp = api.client.send(req).await.expect("response");
    let code = resp.status().as_u16();
    let body = resp.into_body().collect_bytes().await.expect("body");
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        api.emu
            .get_object("configmaps", Some("default"), "from-yaml")
            .expect("cm")["data"]["k"],
        "v"
    );
    let a = Api::call_with(
        &api.client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        Some(&json!({})),
    )
    .await;
    assert_eq!(
        (a.code, a.body["reason"].clone()),
        (415, json!("UnsupportedMediaType"))
    );
}

#[tokio::test]
async fn an_object_with_finalizers_is_marked_then_deleted_when_the_last_finalizer_goes() {
    let api = Api::start().await;
    let cm = json!({"metadata":{"name":"f","finalizers":["example.com/keep"]}});
    api.call("POST", "/api/v1/namespaces/default/configmaps", Some(&cm))
        .await;
    let del = api
        .call("DELETE", "/api/v1/namespaces/default/configmaps/f", None)
        .await;
    assert_eq!(del.code, 200);
    assert_eq!(del.body["kind"], "ConfigMap");
    assert!(del.body["metadata"]["deletionTimestamp"].is_string());
    let stored = api
        .emu
        .get_object("configmaps", Some("default"), "f")
        .expect("still there");
    assert!(stored["metadata"]["deletionTimestamp"].is_string());
    let done = api
        .patch(
            "/api/v1/namespaces/default/configmaps/f",
            "application/merge-patch+json",
            &json!({"metadata":{"finalizers":null}}),
        )
        .await;
    assert_eq!(done.code, 200);
    assert_eq!(api.emu.get_object("configmaps", Some("default"), "f"), None);
}

#[tokio::test]
async fn a_patch_result_that_does_not_decode_is_422_and_nothing_is_stored() {
    let api = Api::start().await;
    let before = api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"taints":"x"}}),
        )
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["reason"], "Invalid");
    let message = a.body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(" \"\" is invalid: patch: Invalid value: \"{"),
        "{message}"
    );
    assert!(message.contains("spec.taints"), "{message}");
    assert_eq!(a.body["details"]["causes"][0]["field"], "patch");
    assert!(a.body["details"].get("name").is_none(), "{}", a.body);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert_eq!(rv(&stored), rv(&before));
    // The strategic patcher names the patch map as Go prints it.
    let s = api
        .patch(
            "/api/v1/nodes/n1",
            "application/strategic-merge-patch+json",
            &json!({"spec":{"unschedulable":"yes"}}),
        )
        .await;
    assert_eq!(s.code, 422, "{}", s.body);
    let message = s.body["message"].as_str().unwrap_or("");
    assert!(
        message.contains("patch: Invalid value: \"map[spec:map[unschedulable:yes]]\""),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_fields_are_dropped_with_a_warning_or_refused_when_strict() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"bogusField":1,"unschedulable":true}}),
        )
        .await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(
        a.warnings,
        vec![r#"299 - "unknown field \"spec.bogusField\"""#.to_string()]
    );
    assert!(a.body["spec"].get("bogusField").is_none(), "{}", a.body);
    assert_eq!(a.body["spec"]["unschedulable"], true);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert!(stored["spec"].get("bogusField").is_none(), "{stored}");

    let strict = api
        .patch(
            "/api/v1/nodes/n1?fieldValidation=Strict",
            "application/merge-patch+json",
            &json!({"spec":{"bogusField":1}}),
        )
        .await;
    assert_eq!(strict.code, 422, "{}", strict.body);
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap_or("")
            .ends_with(r#"strict decoding error: unknown field "spec.bogusField""#),
        "{}",
        strict.body
    );

    let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":""},"extra":1});
    let created = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            Some(&cm),
        )
        .await;
    assert_eq!(created.code, 400, "{}", created.body);
    assert_eq!(
        created.body["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra""#
    );
    let created = api
        .call("POST", "/api/v1/namespaces/default/configmaps", Some(&cm))
        .await;
    assert_eq!(created.code, 201, "{}", created.body);
    assert!(created.body.get("extra").is_none());
    // A map value "" is data, not an empty field: it stays.
    assert_eq!(created.body["data"], json!({"k":""}));
    assert_eq!(created.warnings.len(), 1, "{:?}", created.warnings);
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_400_cannot_be_handled() {
    let api = Api::start().await;
    let node =
        json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"taints":{"a":1}}});
    let a = api.call("POST", "/api/v1/nodes", Some(&node)).await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert_eq!(a.body["reason"], "BadRequest");
    let message = a.body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(r#"Node in version "v1" cannot be handled as a Node: json: "#),
        "{message}"
    );
    assert!(api.emu.get_object("nodes", None, "n").is_none());
}

#[tokio::test]
async fn empty_omitempty_fields_are_not_stored() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"metadata":{"annotations":{}},"spec":{"taints":[],"podCIDR":""}}),
        )
        .await;
    assert_eq!(a.code, 200, "{}", a.body);
    let stored = api.emu.get_object("nodes", None, "n1").expect("node");
    assert!(stored["spec"].get("taints").is_none(), "{stored}");
    assert!(stored["spec"].get("podCIDR").is_none(), "{stored}");
    assert!(stored["metadata"].get("annotations").is_none(), "{stored}");
    // Fields without omitempty stay even when empty: a taint's key is required.
    let t = api
        .patch(
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            &json!({"spec":{"taints":[{"key":"k","value":"","effect":"NoSchedule"}]}}),
        )
        .await;
    assert_eq!(t.code, 200, "{}", t.body);
    assert_eq!(
        t.body["spec"]["taints"],
        json!([{"key":"k","effect":"NoSchedule"}])
    );
}

#[tokio::test]
async fn create_with_a_resource_version_is_500_as_the_storage_refuses_it() {
    let api = Api::start().await;
    let node =
        json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"n","resourceVersion":"7"}});
    let a = api.call("POST", "/api/v1/nodes", Some(&node)).await;
    assert_eq!(a.code, 500, "{}", a.body);
    assert_eq!(
        a.body["message"],
        "resourceVersion should not be set on objects to be created"
    );
    assert!(api.emu.get_object("nodes", None, "n").is_none());
}

#[tokio::test]
async fn method_media_type_and_path_errors_have_the_upstream_bodies() {
    let api = Api::start().await;
    let a = api.call("PUT", "/api/v1/nodes", Some(&json!({}))).await;
    assert_eq!(
        a.body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"the server does not allow this method on the requested resource",
               "reason":"MethodNotAllowed","details":{},"code":405})
    );
    let p = api.call("GET", "/api/v1/nothing", None).await;
    assert_eq!(p.code, 404);
    assert_eq!(p.body["details"], json!({}));
    let m = Api::call_with(
        &api.client,
        "POST",
        "/api/v1/nodes",
        "application/vnd.kubernetes.protobuf",
        Some(&json!({})),
    )
    .await;
    assert_eq!(m.code, 415);
    assert_eq!(
        m.body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
}

#[tokio::test]
async fn events_and_leases_are_validated_by_their_own_rules() {
    let api = Api::start().await;
    let lease = json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
        "metadata":{"name":"l"},"spec":{"leaseDurationSeconds":0}});
    let a = api
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            Some(&lease),
        )
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["details"]["kind"], "Lease");
    assert_eq!(a.body["details"]["group"], "coordination.k8s.io");
    assert_eq!(
        a.body["details"]["causes"][0]["field"],
        "spec.leaseDurationSeconds"
    );
    // An empty holderIdentity is a set `*string`: kept, not omitted.
    let held = json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
        "metadata":{"name":"l"},"spec":{"holderIdentity":"","leaseDurationSeconds":15}});
    let ok = api
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            Some(&held),
        )
        .await;
    assert_eq!(ok.code, 201, "{}", ok.body);
    assert_eq!(ok.body["spec"]["holderIdentity"], "");

    let event = json!({"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e"}});
    let e = api
        .call(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            Some(&event),
        )
        .await;
    assert_eq!(e.code, 422, "{}", e.body);
    // The core Event strategy validates both versions, and names the internal kind.
    assert_eq!(e.body["details"]["kind"], "Event");
    assert_eq!(e.body["details"].get("group"), None, "{}", e.body);
    assert!(
        e.body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Event \"e\" is invalid: "),
        "{}",
        e.body
    );
}

#[tokio::test]
async fn an_unsupported_field_validation_value_is_422_on_the_options() {
    let api = Api::start().await;
    api.create_node("n1").await;
    let a = api
        .patch(
            "/api/v1/nodes/n1?fieldValidation=Loud",
            "application/merge-patch+json",
            &json!({"metadata":{"labels":{"a":"b"}}}),
        )
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        a.body["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn""#
    );
}
