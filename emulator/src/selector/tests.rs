//! Tests of label and field selectors: parsing, the server's messages, and matching.

use serde_json::{Map, Value, json};

use super::*;

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn label_selectors_match_like_requirement_matches() {
    let node = labels(json!({ "role": "worker", "zone": "a", "gen": "5", "empty": "" }));
    let cases = [
        ("", true),
        ("role=worker", true),
        ("role==worker", true),
        ("role=master", false),
        ("role!=master", true),
        ("missing!=x", true),
        ("zone in (a,b)", true),
        ("zone in (b)", false),
        ("zone notin (b, c)", true),
        ("missing notin (b)", true),
        ("missing in (b)", false),
        ("role", true),
        ("missing", false),
        ("!missing", true),
        ("!role", false),
        ("gen>4", true),
        ("gen<5", false),
        ("empty=", true),
        ("empty in ()", true),
        ("role=worker,zone=a,!missing", true),
        ("role=worker,zone=b", false),
        ("  role = worker  ", true),
        ("x in (in,notin),role", false),
    ];
    for (selector, want) in cases {
        let parsed = LabelSelector::parse(selector);
        let got = parsed.as_ref().map(|s| s.matches(Some(&node)));
        assert_eq!(got, Ok(want), "selector {selector:?} parsed as {parsed:?}");
    }
    let parsed = LabelSelector::parse("!a,b notin (x)").map(|s| s.matches(None));
    assert_eq!(parsed, Ok(true), "absent labels match negations only");
}

#[test]
fn label_selector_errors_carry_the_servers_messages() {
    let cases = [
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (
            ",a",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        (
            "a in b",
            "unable to parse requirement: found 'b' expected: '('",
        ),
        (
            "a in (b",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "a=(",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier",
        ),
        (
            "-a=b",
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "a=-b",
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a=!!",
            "unable to parse requirement: found '!', expected: identifier",
        ),
        // `gt` is printed as an operator but the lexer only knows `>`
        (
            "a gt 4",
            "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt",
        ),
    ];
    for (selector, want) in cases {
        assert_eq!(
            LabelSelector::parse(selector),
            Err(SelectorError(want.into())),
            "selector {selector:?}"
        );
    }
}

#[test]
fn field_selectors_accept_only_the_kinds_field_labels() {
    let cases = [
        (None, "metadata.name=n1", Ok(())),
        (None, "metadata.namespace==default,metadata.name!=x", Ok(())),
        (
            None,
            "spec.foo=x",
            Err("field label not supported: spec.foo"),
        ),
        (Some("Node"), "spec.unschedulable=true", Ok(())),
        (
            Some("Node"),
            "metadata.namespace=x",
            Err("field label not supported: metadata.namespace"),
        ),
        (
            Some("Event"),
            "involvedObject.name=n1,reason=Registered",
            Ok(()),
        ),
        (
            Some("ConfigMap"),
            "spec.foo=x",
            Err(
                "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
        ),
        (
            None,
            "metadata.name",
            Err("invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ),
        (
            None,
            "metadata.name=a=b",
            Err("invalid field selector: unescaped character in value: 61"),
        ),
        (
            None,
            "metadata.name=a\\x",
            Err("invalid field selector: invalid escape sequence: \\x"),
        ),
        // terms are sorted before conversion, so the sorted-first bad label is reported
        (None, "z.b=1,a.b=1", Err("field label not supported: a.b")),
    ];
    for (kind, selector, want) in cases {
        let got = match kind {
            Some(k) => FieldSelector::parse_for_kind(k, selector),
            None => FieldSelector::parse(selector),
        };
        assert_eq!(
            got.map(|_| ()),
            want.map_err(|m| SelectorError(m.into())),
            "{kind:?} {selector:?}"
        );
    }
}

#[test]
fn field_selectors_match_selectable_fields() {
    let node = json!({ "metadata": { "name": "n1" }, "spec": {} });
    let event = json!({
        "metadata": { "name": "e1", "namespace": "default" },
        "involvedObject": { "kind": "Node", "name": "n1" },
        "source": { "component": "bare-ccm" },
        "reportingComponent": "bare-ccm",
        "type": "Normal",
    });
    let cases = [
        (Some("Node"), "metadata.name=n1", &node, true),
        (Some("Node"), "metadata.name!=n1", &node, false),
        (Some("Node"), "spec.unschedulable=false", &node, true),
        (None, "", &node, true),
        (None, "metadata.name=n\\,1", &node, false),
        (None, "metadata.namespace=", &node, true),
        (
            Some("Event"),
            "involvedObject.kind=Node,involvedObject.name=n1",
            &event,
            true,
        ),
        (
            Some("Event"),
            "source=bare-ccm,reportingComponent=bare-ccm,type=Normal",
            &event,
            true,
        ),
        (Some("Event"), "type=Warning", &event, false),
    ];
    for (kind, selector, obj, want) in cases {
        let parsed = match kind {
            Some(k) => FieldSelector::parse_for_kind(k, selector),
            None => FieldSelector::parse(selector),
        };
        assert_eq!(
            parsed.map(|s| s.matches(obj)),
            Ok(want),
            "{kind:?} {selector:?}"
        );
    }
}

#[test]
fn events_v1_field_selectors_take_regarding_and_core_ones_take_involved_object() {
    let cases = [
        (
            "",
            "regarding.kind=Node",
            Err("field label not supported: regarding.kind"),
        ),
        (
            "",
            "reportingController=x",
            Err("field label not supported: reportingController"),
        ),
        ("", "involvedObject.kind=Node,reportingComponent=x", Ok(())),
        (
            "events.k8s.io",
            "involvedObject.kind=Node",
            Err("field label not supported: involvedObject.kind"),
        ),
        (
            "events.k8s.io",
            "reportingComponent=x",
            Err("field label not supported: reportingComponent"),
        ),
        (
            "events.k8s.io",
            "regarding.kind=Node,regarding.name=n1,reportingController=c,reason=R,type=Normal,source=c,metadata.name=e",
            Ok(()),
        ),
    ];
    for (group, selector, want) in cases {
        assert_eq!(
            FieldSelector::parse_for_resource(group, "Event", selector).map(|_| ()),
            want.map_err(|m| SelectorError(m.into())),
            "{group:?} {selector:?}"
        );
    }
}

#[test]
fn events_v1_labels_match_the_stored_core_event() {
    // events are stored in their core/v1 form whichever version wrote them
    let stored = json!({
        "metadata": { "name": "e1", "namespace": "default" },
        "involvedObject": { "kind": "Node", "name": "n1", "uid": "u1" },
        "reportingComponent": "bare-ccm",
        "reason": "Synced",
        "type": "Normal",
    });
    let matches = |group: &str, selector: &str| {
        FieldSelector::parse_for_resource(group, "Event", selector).map(|f| f.matches(&stored))
    };
    assert_eq!(
        matches(
            "events.k8s.io",
            "regarding.kind=Node,regarding.name=n1,regarding.uid=u1,reportingController=bare-ccm"
        ),
        Ok(true)
    );
    assert_eq!(matches("events.k8s.io", "regarding.name=n2"), Ok(false));
    assert_eq!(
        matches("", "reportingComponent=bare-ccm,reason=Synced"),
        Ok(true)
    );
    // `source` falls back to the reporting controller when no source component is set
    assert_eq!(matches("", "source=bare-ccm"), Ok(true));
    assert_eq!(matches("events.k8s.io", "source=other"), Ok(false));
}

#[test]
fn pod_field_selectors_serve_kubectl_describe_node() {
    let running = json!({
        "metadata": { "name": "p1", "namespace": "kube-system" },
        "spec": { "nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "sa", "hostNetwork": true },
        "status": { "phase": "Running", "podIP": "10.42.0.5", "podIPs": [{ "ip": "10.42.0.5" }, { "ip": "fd00::5" }] },
    });
    let succeeded = json!({
        "metadata": { "name": "p2", "namespace": "default" },
        "spec": { "nodeName": "n1" },
        "status": { "phase": "Succeeded", "podIPs": [{ "ip": "10.42.0.6" }] },
    });
    let describe = "spec.nodeName=n1,status.phase!=Failed,status.phase!=Succeeded";
    let cases = [
        (describe, &running, true),
        (describe, &succeeded, false),
        ("spec.host=n1", &succeeded, true),
        (
            "spec.hostNetwork=true,spec.serviceAccountName=sa",
            &running,
            true,
        ),
        ("spec.hostNetwork=false", &succeeded, true),
        (
            "spec.restartPolicy=Always,spec.schedulerName=default-scheduler",
            &running,
            true,
        ),
        ("status.podIP=10.42.0.5", &running, true),
        // the first of podIPs when the v1 podIP is unset
        ("status.podIP=10.42.0.6", &succeeded, true),
        // accepted, but not among the pod's selectable fields: only "" matches
        ("status.podIPs=10.42.0.5", &running, false),
        ("status.podIPs=", &running, true),
        ("status.nominatedNodeName=", &running, true),
    ];
    for (selector, pod, want) in cases {
        assert_eq!(
            FieldSelector::parse_for_kind("Pod", selector).map(|f| f.matches(pod)),
            Ok(want),
            "{selector:?}"
        );
    }
    assert_eq!(
        FieldSelector::parse_for_kind("Pod", "status.hostIP=1.2.3.4").map(|_| ()),
        Err(SelectorError(
            "field label not supported: status.hostIP".into()
        ))
    );
    assert_eq!(
        FieldSelector::parse_for_resource("apps", "Deployment", "spec.replicas=1").map(|_| ()),
        Err(SelectorError(
            "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into()
        ))
    );
}
