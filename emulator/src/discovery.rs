//! Discovery documents (`/api`, `/apis`, `/apis/{group}`, the group-version resource lists)
//! and `/version`, in the legacy (unaggregated) JSON form. kubectl and kube-rs accept it: a
//! client asking for aggregated discovery (`application/json;g=apidiscovery.k8s.io;v=v2`)
//! falls back to these documents when the response is plain `application/json`
//! (client-go `discovery/aggregated_discovery.go`, content-type check in
//! `discovery_client.go` `downloadLegacy`/`downloadAPIs`).

use serde_json::{Value, json};

use crate::resources::{self, RESOURCES, STATUS_VERBS};

/// The Kubernetes version the emulator claims to be; matches the k8s-openapi feature
/// (`v1_33`) the project builds against.
pub const GIT_VERSION: &str = "v1.33.0";

/// `/version` (apimachinery `pkg/version/types.go`, `Info`). The emulation and
/// minimum-compatibility versions (KEP-4330) are set by every server since 1.32: a server
/// emulates its own version and is compatible with the one before.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "60a317eadfcb839692a5551a6bc5c3e4f2c9a4d3",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:46Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api` (`APIVersions`).
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_doc(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "name": group,
        "versions": [gv],
        "preferredVersion": gv,
    })
}

/// `/apis` (`APIGroupList`).
pub fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(g, v)| group_doc(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}` (`APIGroup`).
pub fn group(group: &str) -> Value {
    let version = resources::groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map_or("v1", |(_, v)| v);
    let mut doc = group_doc(group, version);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("kind".into(), json!("APIGroup"));
        obj.insert("apiVersion".into(), json!("v1"));
    }
    doc
}

/// `/api/v1` or `/apis/{group}/{version}` (`APIResourceList`), with the `status`
/// subresource rows kubectl needs to address `nodes/status`.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut row = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        // `APIResource.ShortNames` is `omitempty` (apimachinery `meta/v1/types.go`).
        if !r.short_names.is_empty() {
            row["shortNames"] = json!(r.short_names);
        }
        list.push(row);
        for sub in r.subresources {
            list.push(json!({
                "name": format!("{}/{sub}", r.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_resource_list_has_nodes_status_and_short_names() {
        let doc = resource_list("", "v1");
        let res = doc["resources"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = res.iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"nodes") && names.contains(&"nodes/status"));
        let nodes = res
            .iter()
            .find(|r| r["name"] == "nodes")
            .cloned()
            .unwrap_or_default();
        assert_eq!(nodes["shortNames"], json!(["no"]));
        assert_eq!(nodes["namespaced"], json!(false));
        let namespaces = res
            .iter()
            .find(|r| r["name"] == "namespaces")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            namespaces["verbs"],
            json!([
                "create", "delete", "get", "list", "patch", "update", "watch"
            ])
        );
    }

    #[test]
    fn resources_without_short_names_omit_the_field() {
        let doc = resource_list("coordination.k8s.io", "v1");
        assert!(doc["resources"][0].get("shortNames").is_none(), "{doc}");
    }

    #[test]
    fn group_list_names_events_and_coordination() {
        let doc = group_list();
        let names: Vec<&str> = doc["groups"]
            .as_array()
            .map(|g| g.iter().filter_map(|g| g["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, vec!["apps", "events.k8s.io", "coordination.k8s.io"]);
    }
}
