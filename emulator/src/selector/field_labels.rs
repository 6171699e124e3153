//! Which field labels each resource accepts in a field selector, what internal field each
//! one names, and that field's value in a stored object. The conversions are those of
//! `pkg/apis/core/v1/conversion.go`, `pkg/apis/events/v1/conversion.go` and apimachinery
//! `runtime.DefaultMetaV1FieldSelectorConversion`; the selectable field sets those of
//! `pkg/registry/core/{node,event,namespace,pod}/strategy.go` (`ToSelectableFields`).

use serde_json::Value;

/// The field label conversion registered for a resource: each label a client may use with
/// the internal label it stands for, and the error the real server gives for any other.
pub(super) struct LabelConversion {
    labels: &'static [(&'static str, &'static str)],
    unknown: fn(&str) -> String,
}

impl LabelConversion {
    /// The internal label `label` converts to, or the server's 400 message.
    pub(super) fn convert(&self, label: &str) -> Result<&'static str, String> {
        self.labels
            .iter()
            .find(|(client, _)| *client == label)
            .map(|(_, internal)| *internal)
            .ok_or_else(|| (self.unknown)(label))
    }
}

/// The message of the conversion functions registered in `pkg/apis/*/v1/conversion.go`.
fn not_supported(label: &str) -> String {
    format!("field label not supported: {label}")
}

/// The message of apimachinery `runtime.DefaultMetaV1FieldSelectorConversion`.
fn not_known(label: &str) -> String {
    format!(
        "\"{label}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    )
}

/// Kind-agnostic: the two labels every kind accepts.
const COMMON_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("metadata.name", "metadata.name"),
        ("metadata.namespace", "metadata.namespace"),
    ],
    unknown: not_supported,
};

/// ConfigMap, Lease, Deployment: no conversion registered, so the default one applies.
const DEFAULT_META_LABELS: LabelConversion = LabelConversion {
    labels: COMMON_LABELS.labels,
    unknown: not_known,
};

/// kubernetes `pkg/apis/core/v1/conversion.go`, the Node conversion.
const NODE_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("metadata.name", "metadata.name"),
        ("spec.unschedulable", "spec.unschedulable"),
    ],
    unknown: not_supported,
};

/// kubernetes `pkg/apis/core/v1/conversion.go` `AddFieldLabelConversionsForNamespace`.
const NAMESPACE_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("status.phase", "status.phase"),
        ("metadata.name", "metadata.name"),
    ],
    unknown: not_supported,
};

/// kubernetes `pkg/apis/core/v1/conversion.go`, the Pod conversion (`spec.host` is the old
/// name of `spec.nodeName`). `kubectl describe node` lists the node's pods with
/// `spec.nodeName=N,status.phase!=Failed,status.phase!=Succeeded`.
const POD_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("metadata.name", "metadata.name"),
        ("metadata.namespace", "metadata.namespace"),
        ("spec.nodeName", "spec.nodeName"),
        ("spec.restartPolicy", "spec.restartPolicy"),
        ("spec.schedulerName", "spec.schedulerName"),
        ("spec.serviceAccountName", "spec.serviceAccountName"),
        ("spec.hostNetwork", "spec.hostNetwork"),
        ("status.phase", "status.phase"),
        ("status.podIP", "status.podIP"),
        ("status.podIPs", "status.podIPs"),
        ("status.nominatedNodeName", "status.nominatedNodeName"),
        ("spec.host", "spec.nodeName"),
    ],
    unknown: not_supported,
};

/// kubernetes `pkg/apis/core/v1/conversion.go` `AddFieldLabelConversionsForEvent`.
const CORE_EVENT_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("involvedObject.kind", "involvedObject.kind"),
        ("involvedObject.namespace", "involvedObject.namespace"),
        ("involvedObject.name", "involvedObject.name"),
        ("involvedObject.uid", "involvedObject.uid"),
        ("involvedObject.apiVersion", "involvedObject.apiVersion"),
        (
            "involvedObject.resourceVersion",
            "involvedObject.resourceVersion",
        ),
        ("involvedObject.fieldPath", "involvedObject.fieldPath"),
        ("reason", "reason"),
        ("reportingComponent", "reportingComponent"),
        ("source", "source"),
        ("type", "type"),
        ("metadata.namespace", "metadata.namespace"),
        ("metadata.name", "metadata.name"),
    ],
    unknown: not_supported,
};

/// kubernetes `pkg/apis/events/v1/conversion.go` `AddFieldLabelConversionsForEvent`: the
/// events.k8s.io names map onto the core Event's selectable fields, and the core names
/// (`involvedObject.*`, `reportingComponent`) are not accepted.
const EVENTS_V1_EVENT_LABELS: LabelConversion = LabelConversion {
    labels: &[
        ("reason", "reason"),
        ("regarding.kind", "involvedObject.kind"),
        ("regarding.namespace", "involvedObject.namespace"),
        ("regarding.name", "involvedObject.name"),
        ("regarding.uid", "involvedObject.uid"),
        ("regarding.apiVersion", "involvedObject.apiVersion"),
        (
            "regarding.resourceVersion",
            "involvedObject.resourceVersion",
        ),
        ("regarding.fieldPath", "involvedObject.fieldPath"),
        ("reportingController", "reportingComponent"),
        ("source", "source"),
        ("type", "type"),
        ("metadata.namespace", "metadata.namespace"),
        ("metadata.name", "metadata.name"),
    ],
    unknown: not_supported,
};

/// The conversion the real server registers for (group, kind); `None` is kind-agnostic.
pub(super) fn label_conversion(group: &str, kind: Option<&str>) -> &'static LabelConversion {
    match (group, kind) {
        ("", Some("Node")) => &NODE_LABELS,
        ("", Some("Namespace")) => &NAMESPACE_LABELS,
        ("", Some("Pod")) => &POD_LABELS,
        ("", Some("Event")) => &CORE_EVENT_LABELS,
        ("events.k8s.io", Some("Event")) => &EVENTS_V1_EVENT_LABELS,
        (_, Some(_)) => &DEFAULT_META_LABELS,
        (_, None) => &COMMON_LABELS,
    }
}

/// The value of an internal selectable field of a stored object (the kinds'
/// `ToSelectableFields`, read from the stored v1 JSON); a field the object lacks reads as "".
pub(super) fn field_value(obj: &Value, field: &str) -> String {
    let text = |path: &str| -> String {
        let mut cur = obj;
        for key in path.split('.') {
            match cur.get(key) {
                Some(v) => cur = v,
                None => return String::new(),
            }
        }
        match cur {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let flag = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    match field {
        "spec.unschedulable" => flag("/spec/unschedulable"),
        // pod strategy: the internal SecurityContext.HostNetwork, false when unset
        "spec.hostNetwork" => flag("/spec/hostNetwork"),
        // pod strategy: the first of the internal PodIPs, which v1 `podIP` takes precedence
        // in (`Convert_v1_PodStatus_To_core_PodStatus`)
        "status.podIP" => match text("status.podIP") {
            ip if ip.is_empty() => obj
                .pointer("/status/podIPs/0/ip")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            ip => ip,
        },
        // accepted by the conversion but absent from the pod's selectable fields, so it
        // always reads as ""
        "status.podIPs" => String::new(),
        // event strategy `ToSelectableFields`: the source component, else the reporting
        // controller (stored under its core/v1 JSON name `reportingComponent`)
        "source" => match text("source.component") {
            c if c.is_empty() => text("reportingComponent"),
            c => c,
        },
        other => text(other),
    }
}
