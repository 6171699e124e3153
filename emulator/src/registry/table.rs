//! `meta.k8s.io` Table answers, which `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` to print the server's
//! columns. Nodes get the columns of kubernetes `pkg/printers/internalversion/printers.go`
//! (`nodeColumnDefinitions`, `printNode`); the other resources a NAME/AGE table. The
//! server always renders every column; kubectl hides those with `priority: 1` unless
//! `-o wide` (apiserver `pkg/printers/storage/storage.go` generates with `Wide: true`).

use serde_json::{Map, Value, json};

use crate::resources::{ResourceDef, StoreKind};
use crate::routes::query_param;

/// What a Table request asked for: the Table version, and what each row carries as its
/// `object` (`includeObject`, default `Metadata`; apimachinery
/// `pkg/apis/meta/v1/types.go` `IncludeObjectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    api_version: &'static str,
    include: Include,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    None,
    Metadata,
    Object,
}

/// The Table the `Accept` header asks for, if any: the first media range with `as=Table`
/// and `g=meta.k8s.io` in a version this server renders (v1 or v1beta1); a client that
/// lists plain JSON first gets plain JSON.
pub fn negotiate(accept: &str, query: &str) -> Option<TableRequest> {
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return None,
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) => {
                let include = match query_param(query, "includeObject").as_deref() {
                    Some("None") => Include::None,
                    Some("Object") => Include::Object,
                    _ => Include::Metadata,
                };
                let api_version = if v == "v1" {
                    "meta.k8s.io/v1"
                } else {
                    "meta.k8s.io/v1beta1"
                };
                return Some(TableRequest {
                    api_version,
                    include,
                });
            }
            _ => continue,
        }
    }
    None
}

/// ObjectMeta `name` and `creationTimestamp` descriptions (apimachinery
/// `pkg/apis/meta/v1/types_swagger_doc_generated.go`).
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

/// ConfigMap `data` and LeaseSpec `holderIdentity` descriptions (k8s.io/api
/// `core/v1/types_swagger_doc_generated.go`, `coordination/v1/types_swagger_doc_generated.go`).
const CONFIGMAP_DATA_DOC: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const LEASE_HOLDER_DOC: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

fn column(name: &str, priority: u8, description: &str) -> Value {
    let mut c = json!({"name": name, "type": "string", "format": "", "description": description, "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    match def.store {
        StoreKind::Nodes => {}
        StoreKind::ConfigMaps => {
            return vec![
                column("Name", 0, NAME_DOC),
                column("Data", 0, CONFIGMAP_DATA_DOC),
                column("Age", 0, CREATION_DOC),
            ];
        }
        StoreKind::Namespaces => {
            return vec![
                column("Name", 0, NAME_DOC),
                column("Status", 0, "The status of the namespace"),
                column("Age", 0, CREATION_DOC),
            ];
        }
        StoreKind::Leases => {
            return vec![
                column("Name", 0, NAME_DOC),
                column("Holder", 0, LEASE_HOLDER_DOC),
                column("Age", 0, CREATION_DOC),
            ];
        }
        _ => return vec![column("Name", 0, NAME_DOC), column("Age", 0, CREATION_DOC)],
    }
    vec![
        column("Name", 0, NAME_DOC),
        column("Status", 0, "The status of the node"),
        column("Roles", 0, "The roles of the node"),
        column("Age", 0, CREATION_DOC),
        column("Version", 0, "Kubelet Version reported by the node."),
        column("Internal-IP", 1, ADDRESSES_DOC),
        column("External-IP", 1, ADDRESSES_DOC),
        column(
            "OS-Image",
            1,
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        column(
            "Kernel-Version",
            1,
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        column(
            "Container-Runtime",
            1,
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        ),
    ]
}

fn text<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(obj, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "<unknown>".into()
    } else {
        s.to_string()
    }
}

/// `printNode`: STATUS is `Ready`/`NotReady` from the Ready condition (`Unknown` without
/// one), plus `SchedulingDisabled` when unschedulable; ROLES from the
/// `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role` label value,
/// sorted (`findNodeRoles`).
fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let conditions = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut status: Vec<&str> = Vec::new();
    if let Some(ready) = conditions
        .iter()
        .rev()
        .find(|c| text(c, &["type"]) == "Ready")
    {
        status.push(if text(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    } else {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            Some(_) => None,
            None if k == "kubernetes.io/role" => {
                v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            }
            None => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        node.pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| text(a, &["type"]) == kind)
            .map(|a| text(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let info = |field: &str| or_unknown(text(node, &["status", "nodeInfo", field]));
    // `printNode` appends the architecture to the kernel version (1.37).
    let architecture = text(node, &["status", "nodeInfo", "architecture"]);
    let kernel = if architecture.is_empty() {
        info("kernelVersion")
    } else {
        format!("{} ({architecture})", info("kernelVersion"))
    };
    vec![
        json!(text(node, &["metadata", "name"])),
        json!(status.join(",")),
        json!(roles),
        json!(age(node, now)),
        json!(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(kernel),
        json!(info("containerRuntimeVersion")),
    ]
}

/// `translateTimestampSince`: the age in apimachinery `util/duration.HumanDuration` form,
/// `<unknown>` without a creationTimestamp.
fn age(obj: &Value, now: jiff::Timestamp) -> String {
    match text(obj, &["metadata", "creationTimestamp"]).parse::<jiff::Timestamp>() {
        Ok(created) => human_duration(now.as_second() - created.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

/// apimachinery `pkg/util/duration/duration.go` `HumanDuration`, on whole seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return two_units(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return two_units(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return two_units(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return two_units(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// `5m3s`, or `5m` when the smaller unit is zero.
fn two_units(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

/// The Table of `objects` (as the client sees them), with the list metadata of the answer
/// (`resourceVersion`, `continue`, `remainingItemCount`).
pub fn render(
    def: &ResourceDef,
    request: &TableRequest,
    list_meta: &Map<String, Value>,
    objects: &[&Value],
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let name = json!(text(obj, &["metadata", "name"]));
            let cells = match def.store {
                StoreKind::Nodes => node_cells(obj, now),
                // `printConfigMap`: the number of data and binaryData keys.
                StoreKind::ConfigMaps => {
                    let count = |field: &str| {
                        obj.get(field)
                            .and_then(Value::as_object)
                            .map_or(0, Map::len)
                    };
                    vec![
                        name,
                        json!(count("data") + count("binaryData")),
                        json!(age(obj, now)),
                    ]
                }
                // `printNamespace`: the phase.
                StoreKind::Namespaces => vec![
                    name,
                    json!(text(obj, &["status", "phase"])),
                    json!(age(obj, now)),
                ],
                // `printLease`: the holder.
                StoreKind::Leases => vec![
                    name,
                    json!(text(obj, &["spec", "holderIdentity"])),
                    json!(age(obj, now)),
                ],
                _ => vec![name, json!(age(obj, now))],
            };
            let mut row = json!({"cells": cells});
            match request.include {
                Include::None => {}
                Include::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": request.api_version,
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                Include::Object => row["object"] = (*obj).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": request.api_version,
        "metadata": list_meta,
        "columnDefinitions": columns(def),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_negotiates_a_v1_table_with_metadata_rows() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(accept, ""),
            Some(TableRequest {
                api_version: "meta.k8s.io/v1",
                include: Include::Metadata
            })
        );
        assert_eq!(negotiate("application/json", ""), None);
        assert_eq!(
            negotiate(
                "application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
                ""
            ),
            None
        );
        assert_eq!(
            negotiate(
                "application/json;as=Table;v=v1;g=meta.k8s.io",
                "includeObject=Object"
            )
            .map(|t| t.include),
            Some(Include::Object)
        );
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (10 * 365 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn node_row_shows_ready_scheduling_disabled_roles_and_addresses() {
        let node = json!({"metadata":{"name":"n1","creationTimestamp":"2026-01-01T00:00:00Z",
            "labels":{"node-role.kubernetes.io/master":"true","node-role.kubernetes.io/control-plane":"true"}},
            "spec":{"unschedulable":true,"taints":[{"key":"k","effect":"NoSchedule"}]},
            "status":{"conditions":[{"type":"Ready","status":"True"}],
                "addresses":[{"type":"Hostname","address":"n1"},{"type":"InternalIP","address":"10.0.0.1"}],
                "nodeInfo":{"kubeletVersion":"v1.33.1+k3s1","osImage":"Debian"}}});
        let now: jiff::Timestamp = "2026-01-01T00:02:05Z".parse().expect("timestamp");
        assert_eq!(
            node_cells(&node, now),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("2m5s"),
                json!("v1.33.1+k3s1"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        let tainted =
            json!({"metadata":{"name":"n2"},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}});
        assert_eq!(node_cells(&tainted, now)[1], json!("Unknown"));
        let with_arch = json!({"metadata":{"name":"n3"},
            "status":{"nodeInfo":{"kernelVersion":"6.8.0","architecture":"arm64"}}});
        assert_eq!(node_cells(&with_arch, now)[8], json!("6.8.0 (arm64)"));
    }

    #[test]
    fn configmaps_namespaces_and_leases_have_their_printer_columns() {
        let request = TableRequest {
            api_version: "meta.k8s.io/v1",
            include: Include::None,
        };
        let names = |table: &Value| -> Vec<String> {
            table["columnDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        };
        let def = |plural| crate::resources::find_by_plural(plural).expect("served");
        let cm = json!({"metadata":{"name":"c"},"data":{"a":"1","b":"2"},"binaryData":{"c":""}});
        let table = render(def("configmaps"), &request, &Map::new(), &[&cm]);
        assert_eq!(names(&table), ["Name", "Data", "Age"]);
        assert_eq!(table["rows"][0]["cells"][1], json!(3));
        let ns = json!({"metadata":{"name":"n"},"status":{"phase":"Active"}});
        let table = render(def("namespaces"), &request, &Map::new(), &[&ns]);
        assert_eq!(names(&table), ["Name", "Status", "Age"]);
        assert_eq!(table["rows"][0]["cells"][1], json!("Active"));
        let lease = json!({"metadata":{"name":"l"},"spec":{"holderIdentity":"me"}});
        let table = render(def("leases"), &request, &Map::new(), &[&lease]);
        assert_eq!(names(&table), ["Name", "Holder", "Age"]);
        assert_eq!(table["rows"][0]["cells"][1], json!("me"));
    }
}
