//! Differential conformance of the API emulator: one script of HTTP requests
//! (tests/conformance/script.yaml) runs against the emulator (`Emulator::start`, admin
//! token) and against the real kube-apiserver of the test bed (tests/testbed, admin client
//! certificate), and the answers are compared.
//!
//! Every answer is normalised first: uids, timestamps, resourceVersions, continue tokens
//! and managedFields are replaced by placeholders (or dropped), digits in messages become
//! `N`, and values captured from earlier answers (generated names) become `{var}`. Then,
//! per step:
//! - always: the status code (when it differs nothing else of the step is compared), the
//!   media type, and for a `Status` body its shape: its keys, `status`, `reason`,
//!   `details` (keys, name, group, kind, the fields and reasons of `details.causes`);
//!   for a watch, the event types;
//! - the fields the step lists under `compare` (see [`evaluate`] for their forms).
//!
//! A difference is (step, field); the ones the emulator keeps on purpose are listed in
//! docs/testing.md, section "Emulator differences", with the reason each is harmless. The
//! test reads that table: it fails on any difference the table does not list, and on any
//! row that no longer matches a difference, and prints each with both values.
//!
//! The real server is alone in its writes: the test bed runs no hollow nodes, and its
//! controller-manager and scheduler are stopped for the run, so that no controller writes
//! to the Nodes, Pods and namespaces the script creates.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[allow(dead_code)]
mod support;
use support::Cluster;
use support::testbed::{Testbed, exclusive};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/script.yaml");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/testing.md");
const SECTION: &str = "## Emulator differences";

/// How long one plain request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
struct Script {
    steps: Vec<Step>,
}

/// One request of the script (or an action on both servers).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// Unique; the docs name differences by it.
    name: String,
    /// `expire` (every earlier resourceVersion and continue token becomes too old) or
    /// `real-kubectl` (runs `kubectl args` on the real server only, for objects of
    /// resources the emulator does not serve).
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    path: String,
    /// The query string, already URL-encoded; `{var}` is substituted.
    #[serde(default)]
    query: Option<String>,
    /// Patch type: merge, json, strategic or apply (sets the Content-Type).
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    accept: Option<String>,
    /// A JSON body (written as YAML).
    #[serde(default)]
    body: Option<Value>,
    /// A body sent as is.
    #[serde(default)]
    raw: Option<String>,
    /// The code the real server must answer: a check of the script itself.
    #[serde(default)]
    code: Option<u16>,
    /// For a watch: how many events to wait for, and for how long at most.
    #[serde(default)]
    watch: Option<WatchSpec>,
    #[serde(default)]
    compare: Vec<String>,
    /// Values taken from each server's own answer, for later `{var}`s.
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchSpec {
    events: usize,
    #[serde(default = "watch_seconds")]
    seconds: u64,
}

fn watch_seconds() -> u64 {
    5
}

/// An answer as compared: `{"code", "contentType", "warnings", "body"}`; a watch's body
/// is `{"events": [...]}` when it was answered 200.
type Answer = Value;

/// One side of the comparison: a client and the values captured from its answers.
struct Target {
    label: &'static str,
    client: kube::Client,
    vars: BTreeMap<String, String>,
}

impl Target {
    fn substitute(&self, text: &str, problems: &mut Vec<String>, step: &str) -> String {
        let re = Regex::new(r"\{([a-z][a-z0-9_]*)\}").expect("regex");
        re.replace_all(text, |c: &regex::Captures<'_>| {
            let name = &c[1];
            let now = jiff::Timestamp::now();
            match name {
                "now" => now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "now_micro" => now.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string(),
                _ => self.vars.get(name).cloned().unwrap_or_else(|| {
                    problems.push(format!(
                        "step {step}: {{{name}}} was never captured on the {}",
                        self.label
                    ));
                    format!("unset-{name}")
                }),
            }
        })
        .into_owned()
    }

    async fn run(&self, step: &Step, problems: &mut Vec<String>) -> Answer {
        let path = self.substitute(&step.path, problems, &step.name);
        let uri = match &step.query {
            Some(q) => format!("{path}?{}", self.substitute(q, problems, &step.name)),
            None => path,
        };
        let body = match (&step.body, &step.raw) {
            (Some(b), _) => self.substitute(&b.to_string(), problems, &step.name),
            (None, Some(raw)) => self.substitute(raw, problems, &step.name),
            (None, None) => String::new(),
        };
        let content_type = match (step.patch.as_deref(), &step.content_type) {
            (_, Some(ct)) => ct.clone(),
            (Some("merge"), _) => "application/merge-patch+json".into(),
            (Some("json"), _) => "application/json-patch+json".into(),
            (Some("strategic"), _) => "application/strategic-merge-patch+json".into(),
            (Some("apply"), _) => "application/apply-patch+yaml".into(),
            (Some(other), _) => panic!("step {}: unknown patch type {other}", step.name),
            (None, None) => "application/json".into(),
        };
        let method = if step.patch.is_some() {
            "PATCH"
        } else {
            step.method.as_str()
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(
                http::header::ACCEPT,
                step.accept.as_deref().unwrap_or("application/json"),
            )
            .header(http::header::ACCEPT_ENCODING, "identity");
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(kube::client::Body::from(body.into_bytes()))
            .expect("a request");
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.send(request)).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return json!({"code": 0, "body": {"error": e.to_string()}}),
            Err(_) => return json!({"code": 0, "body": {"error": "no answer"}}),
        };
        let code = response.status().as_u16();
        let media = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let warnings: Vec<Value> = response
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| json!(v))
            .collect();
        let mut body = response.into_body();
        let body = match (&step.watch, code) {
            (Some(w), 200) => read_events(&mut body, w).await,
            _ => {
                let bytes = match tokio::time::timeout(REQUEST_TIMEOUT, body.collect()).await {
                    Ok(Ok(b)) => b.to_bytes().to_vec(),
                    Ok(Err(e)) => format!("<body error: {e}>").into_bytes(),
                    Err(_) => b"<body timed out>".to_vec(),
                };
                serde_json::from_slice(&bytes).unwrap_or_else(
                    |_| json!({"text": String::from_utf8_lossy(&bytes).trim().to_string()}),
                )
            }
        };
        json!({"code": code, "contentType": media, "warnings": warnings, "body": body})
    }
}

/// Reads watch events until `w.events` arrived, the stream ended or `w.seconds` passed.
async fn read_events(body: &mut kube::client::Body, w: &WatchSpec) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.seconds);
    let mut buffer: Vec<u8> = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    while events.len() < w.events {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            events.push(serde_json::from_slice(&line).unwrap_or_else(
                |_| json!({"type": "UNPARSABLE", "text": String::from_utf8_lossy(&line)}),
            ));
        }
    }
    // A frame may carry more lines than were asked for.
    events.truncate(w.events);
    json!({"events": events})
}

// ----- pointers -----

/// One token of a pointer: a key or index, `*` (every element), or `[key=value]` (the
/// first element whose `key` is `value`).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Key(String),
    All,
    Select(String, String),
}

/// Splits `/a/b[k=v/w]/*/c` into tokens; `/` inside `[...]` does not split.
fn tokens(pointer: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_select = false;
    let flush = |current: &mut String, out: &mut Vec<Token>| {
        if current.is_empty() {
            return;
        }
        let token = if current == "*" {
            Token::All
        } else {
            Token::Key(current.replace("~1", "/").replace("~0", "~"))
        };
        out.push(token);
        current.clear();
    };
    for c in pointer.chars() {
        match (c, in_select) {
            ('[', false) => {
                flush(&mut current, &mut out);
                in_select = true;
            }
            (']', true) => {
                let (k, v) = current.split_once('=').unwrap_or((current.as_str(), ""));
                out.push(Token::Select(k.to_string(), v.to_string()));
                current.clear();
                in_select = false;
            }
            ('/', false) => flush(&mut current, &mut out),
            (c, _) => current.push(c),
        }
    }
    flush(&mut current, &mut out);
    out
}

fn resolve<'a>(v: &'a Value, toks: &[Token]) -> Option<Value> {
    let Some((first, rest)) = toks.split_first() else {
        return Some(v.clone());
    };
    match first {
        Token::Key(k) => {
            let next: Option<&'a Value> = match v {
                Value::Object(m) => m.get(k),
                Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            };
            next.and_then(|n| resolve(n, rest))
        }
        Token::All => match v {
            Value::Array(a) => Some(Value::Array(
                a.iter()
                    .map(|e| resolve(e, rest).unwrap_or(Value::Null))
                    .collect(),
            )),
            _ => None,
        },
        Token::Select(k, want) => v
            .as_array()?
            .iter()
            .find(|e| e.get(k).and_then(Value::as_str) == Some(want.as_str()))
            .and_then(|e| resolve(e, rest)),
    }
}

/// A compared field as the script writes it:
/// - `/json/pointer` (into the body), with `*` and `[key=value]` tokens; `[key=*]` stands
///   for one field per value of `key` in the emulator's answer;
/// - `keys:/pointer` (the sorted keys of an object), `len:/pointer`, `has:/pointer`;
/// - `warnings` (the `Warning` headers), `content-type`, `code`.
fn evaluate(answer: &Value, spec: &str) -> Option<Value> {
    let (mode, pointer) = match spec.split_once(':') {
        Some((m @ ("keys" | "len" | "has"), p)) => (m, p),
        _ => ("", spec),
    };
    let target = match pointer {
        "warnings" => answer.get("warnings").cloned(),
        "content-type" => answer.get("contentType").cloned(),
        "code" => answer.get("code").cloned(),
        p => answer.get("body").and_then(|b| resolve(b, &tokens(p))),
    };
    match mode {
        "keys" => target.map(|t| match t {
            Value::Object(m) => json!(m.keys().collect::<Vec<_>>()),
            other => json!(format!("<not an object: {other}>")),
        }),
        "len" => target.map(|t| match t {
            Value::Array(a) => json!(a.len()),
            Value::Object(m) => json!(m.len()),
            other => json!(format!("<no length: {other}>")),
        }),
        "has" => Some(json!(target.is_some_and(|t| !t.is_null()))),
        _ => target,
    }
}

/// Expands a `[key=*]` token into one spec per value found in `source`.
fn expand(spec: &str, source: &Value) -> Vec<String> {
    let Some(at) = spec.find("=*]") else {
        return vec![spec.to_string()];
    };
    let open = spec[..at].rfind('[').expect("a [key=*] selector");
    let key = &spec[open + 1..at];
    let (mode, prefix) = match spec[..open].split_once(':') {
        Some((m, p)) => (format!("{m}:"), p),
        None => (String::new(), &spec[..open]),
    };
    let items = source
        .get("body")
        .and_then(|b| resolve(b, &tokens(prefix)))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item.get(key).and_then(Value::as_str))
        .map(|value| format!("{mode}{prefix}[{key}={value}]{}", &spec[at + "=*]".len()..]))
        .collect()
}

// ----- normalisation -----

struct Normaliser {
    time: Regex,
    uuid: Regex,
    digits: Regex,
}

impl Normaliser {
    fn new() -> Normaliser {
        Normaliser {
            time: Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
                .expect("regex"),
            uuid: Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .expect("regex"),
            digits: Regex::new(r"\d+").expect("regex"),
        }
    }

    /// The answer with its run-specific values replaced; `names` maps captured values
    /// (generated names and the like) to their `{var}`.
    fn normalise(&self, v: &Value, names: &[(String, String)]) -> Value {
        self.walk(None, v, names)
    }

    fn walk(&self, key: Option<&str>, v: &Value, names: &[(String, String)]) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, child) in m {
                    if k == "managedFields" {
                        continue;
                    }
                    out.insert(k.clone(), self.walk(Some(k), child, names));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|c| self.walk(key, c, names)).collect()),
            Value::String(s) => json!(self.string(key, s, names)),
            other => other.clone(),
        }
    }

    fn string(&self, key: Option<&str>, s: &str, names: &[(String, String)]) -> String {
        if s.is_empty() {
            return String::new();
        }
        match key {
            Some("resourceVersion") => return "<rv>".into(),
            Some("uid") => return "<uid>".into(),
            Some("continue") => return "<continue>".into(),
            _ => {}
        }
        if self.time.is_match(s) {
            return if s.contains('.') {
                "<microtime>".into()
            } else {
                "<time>".into()
            };
        }
        let mut out = s.to_string();
        for (value, var) in names {
            out = out.replace(value.as_str(), &format!("{{{var}}}"));
        }
        let out = self.uuid.replace_all(&out, "<uid>").into_owned();
        if key == Some("message") {
            return self.digits.replace_all(&out, "N").into_owned();
        }
        out
    }
}

// ----- comparison -----

/// A difference between the two answers of a step.
#[derive(Debug, Clone)]
struct Difference {
    step: String,
    field: String,
    emulator: Option<Value>,
    real: Option<Value>,
}

fn leaf_diff(
    path: &str,
    a: Option<&Value>,
    b: Option<&Value>,
    out: &mut Vec<(String, Option<Value>, Option<Value>)>,
) {
    match (a, b) {
        (None, None) => {}
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let child = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                leaf_diff(&child, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (xe, ye)) in x.iter().zip(y).enumerate() {
                leaf_diff(&format!("{path}/{i}"), Some(xe), Some(ye), out);
            }
        }
        (a, b) if a != b => out.push((path.to_string(), a.cloned(), b.cloned())),
        _ => {}
    }
}

/// The fields compared for every step, besides the step's own.
fn implicit_specs(step: &Step, e: &Value, r: &Value) -> Vec<String> {
    let mut specs = vec!["content-type".to_string()];
    let is_status = |a: &Value| a.pointer("/body/kind").and_then(Value::as_str) == Some("Status");
    if is_status(e) || is_status(r) {
        for s in [
            "keys:/",
            "keys:/metadata",
            "/status",
            "/reason",
            "/code",
            "keys:/details",
            "/details/name",
            "/details/group",
            "/details/kind",
            "/details/causes/*/field",
            "/details/causes/*/reason",
        ] {
            specs.push(s.to_string());
        }
    }
    if step.watch.is_some() && r["code"] == 200 {
        specs.push("/events/*/type".into());
    }
    specs
}

fn compare_step(step: &Step, e: &Value, r: &Value) -> Vec<Difference> {
    let diff = |field: &str, emulator: Option<Value>, real: Option<Value>| Difference {
        step: step.name.clone(),
        field: field.to_string(),
        emulator,
        real,
    };
    if e["code"] != r["code"] {
        return vec![diff(
            "code",
            Some(e["code"].clone()),
            Some(r["code"].clone()),
        )];
    }
    let mut specs = implicit_specs(step, e, r);
    for spec in &step.compare {
        specs.extend(expand(spec, e));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for spec in specs {
        if !seen.insert(spec.clone()) {
            continue;
        }
        let (a, b) = (evaluate(e, &spec), evaluate(r, &spec));
        if spec.contains(':') {
            // keys:, len:, has: compare as one value.
            if a != b {
                out.push(diff(&spec, a, b));
            }
            continue;
        }
        let mut leaves = Vec::new();
        leaf_diff(&spec, a.as_ref(), b.as_ref(), &mut leaves);
        out.extend(leaves.into_iter().map(|(f, a, b)| diff(&f, a, b)));
    }
    out
}

// ----- the documented differences -----

/// (step, field) of each row of the table under `## Emulator differences`.
fn documented() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(DOCS).unwrap_or_else(|e| {
        panic!("cannot read {DOCS}, which lists the emulator differences: {e}")
    });
    let start = text
        .find(SECTION)
        .unwrap_or_else(|| panic!("{DOCS} has no section {SECTION:?}"));
    let section = &text[start + SECTION.len()..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    let mut rows = Vec::new();
    for line in section.lines().map(str::trim) {
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let unquote = |s: &str| s.trim_matches('`').to_string();
        let (Some(step), Some(field)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        if step.starts_with("---") || step.eq_ignore_ascii_case("step") {
            continue;
        }
        rows.push((unquote(step), unquote(field)));
    }
    rows
}

/// Whether documented `field` covers the reported one (equal, or a parent of it).
fn covers(documented: &str, reported: &str) -> bool {
    reported == documented
        || reported
            .strip_prefix(documented)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn show(v: &Option<Value>) -> String {
    let s = match v {
        None => "(absent)".to_string(),
        Some(v) => v.to_string(),
    };
    if s.len() > 600 {
        format!("{}... ({} bytes)", &s[..600], s.len())
    } else {
        s
    }
}

// ----- the real server's side of `expire` -----

/// Compacts etcd at its current revision and restarts kube-apiserver, so that its watch
/// cache starts again at the current revision and etcd refuses reads at older ones: every
/// earlier resourceVersion and continue token is then too old, as after a long outage.
async fn expire_real(bed: &Testbed, client: &kube::Client) {
    let status = bed.status();
    let pid = status["components"]["apiserver"]
        .as_u64()
        .expect("the apiserver's pid in testbed status");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("apiserver cmdline");
    let etcd = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .find_map(|a| a.strip_prefix("--etcd-servers=").map(str::to_string))
        .expect("--etcd-servers in the apiserver's arguments");
    let address = etcd
        .strip_prefix("http://")
        .expect("a plain-HTTP etcd URL")
        .split(',')
        .next()
        .expect("one etcd server")
        .to_string();
    let range = etcd_post(
        &address,
        "/v3/kv/range",
        r#"{"key":"AA==","count_only":true}"#,
    )
    .await;
    let revision = range["header"]["revision"]
        .as_str()
        .expect("etcd's revision")
        .to_string();
    etcd_post(
        &address,
        "/v3/kv/compaction",
        &json!({"revision": revision, "physical": true}).to_string(),
    )
    .await;
    bed.signal("apiserver", "KILL");
    bed.signal("apiserver", "RESTART");
    // Ready when a read through the new watch cache succeeds.
    let start = Instant::now();
    loop {
        let request = http::Request::get("/api/v1/nodes?resourceVersion=0&limit=1")
            .body(kube::client::Body::from(Vec::new()))
            .expect("a request");
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), client.send(request)).await
            && r.status() == 200
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "kube-apiserver not serving 60 s after its restart:\n{}",
            bed.component_log("apiserver")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs JSON to etcd's gRPC gateway over plain HTTP/1.1 and returns the answer.
async fn etcd_post(address: &str, path: &str, body: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to etcd at {address}: {e}"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("etcd write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("etcd read");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "etcd {path}: {text}");
    // A chunked answer: the JSON object is the text between the first `{` and the last `}`.
    let json = body
        .find('{')
        .zip(body.rfind('}'))
        .map_or("", |(a, b)| &body[a..=b]);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("etcd {path} answered {body:?}: {e}"))
}

// ----- the test -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_answers_the_script_as_the_real_api_server_does() {
    let _guard = exclusive().await;
    let started = Instant::now();
    let script: Script = serde_saphyr::from_str(
        &std::fs::read_to_string(SCRIPT).unwrap_or_else(|e| panic!("cannot read {SCRIPT}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{SCRIPT}: {e}"));
    let mut names = BTreeSet::new();
    for step in &script.steps {
        assert!(names.insert(&step.name), "step {} appears twice", step.name);
        assert!(
            step.action.is_some() || step.code.is_some(),
            "step {} says no code the real server must answer",
            step.name
        );
    }
    let documented = documented();

    let bed = Testbed::start(&["--hollow-nodes", "0"]);
    // No controller writes to what the script creates. They are stopped, not paused: the
    // watch cache holds back bookmarks while a paused client's watches are stuck.
    bed.signal("controller-manager", "KILL");
    bed.signal("scheduler", "KILL");
    let Cluster { emu, client, .. } = Cluster::builder().start().await;
    let mut emulator = Target {
        label: "emulator",
        client,
        vars: BTreeMap::new(),
    };
    let mut real = Target {
        label: "real server",
        client: bed.client().await,
        vars: BTreeMap::new(),
    };
    let normaliser = Normaliser::new();
    let mut problems: Vec<String> = Vec::new();
    let mut differences: Vec<Difference> = Vec::new();
    let mut requests = 0;
    for step in &script.steps {
        match step.action.as_deref() {
            Some("expire") => {
                emu.expire_resource_versions();
                expire_real(&bed, &real.client).await;
                continue;
            }
            Some("real-kubectl") => {
                let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
                bed.kubectl(&args);
                continue;
            }
            Some(other) => panic!("step {}: unknown action {other}", step.name),
            None => {}
        }
        requests += 1;
        let e = emulator.run(step, &mut problems).await;
        let r = real.run(step, &mut problems).await;
        // CONFORMANCE_DUMP=step,step prints those steps' raw answers.
        if std::env::var("CONFORMANCE_DUMP").is_ok_and(|d| d.split(',').any(|s| s == step.name)) {
            eprintln!("--- {}\nemulator: {e}\nreal:     {r}", step.name);
        }
        if let Some(code) = step.code
            && r["code"] != code
        {
            problems.push(format!(
                "step {}: the real server answered {} where the script expects {code}: {}",
                step.name,
                r["code"],
                show(&Some(r["body"].clone()))
            ));
        }
        for (var, pointer) in &step.capture {
            for (target, answer) in [(&mut emulator, &e), (&mut real, &r)] {
                match evaluate(answer, pointer) {
                    Some(Value::String(s)) => {
                        target.vars.insert(var.clone(), s);
                    }
                    Some(other) => {
                        target.vars.insert(var.clone(), other.to_string());
                    }
                    None => problems.push(format!(
                        "step {}: nothing at {pointer} to capture as {var} on the {}: {}",
                        step.name,
                        target.label,
                        show(&Some(answer["body"].clone()))
                    )),
                }
            }
        }
        let names = |t: &Target| -> Vec<(String, String)> {
            t.vars
                .iter()
                .filter(|(_, v)| v.len() >= 6)
                .map(|(k, v)| (v.clone(), k.clone()))
                .collect()
        };
        let e = normaliser.normalise(&e, &names(&emulator));
        let r = normaliser.normalise(&r, &names(&real));
        differences.extend(compare_step(step, &e, &r));
    }
    drop(bed);
    emu.shutdown().await;

    let mut report = String::new();
    let unlisted: Vec<&Difference> = differences
        .iter()
        .filter(|d| {
            !documented
                .iter()
                .any(|(s, f)| *s == d.step && covers(f, &d.field))
        })
        .collect();
    let stale: Vec<&(String, String)> = documented
        .iter()
        .filter(|(s, f)| {
            !differences
                .iter()
                .any(|d| d.step == *s && covers(f, &d.field))
        })
        .collect();
    for d in &unlisted {
        report.push_str(&format!(
            "\nstep {}, field {}\n  emulator: {}\n  real:     {}\n  docs row: | `{}` | `{}` | ... |\n",
            d.step,
            d.field,
            show(&d.emulator),
            show(&d.real),
            d.step,
            d.field
        ));
    }
    for (s, f) in &stale {
        report.push_str(&format!(
            "\ndocumented difference no longer seen: step {s}, field {f} (remove its row from docs/testing.md)\n"
        ));
    }
    for p in &problems {
        report.push_str(&format!("\nscript: {p}\n"));
    }
    eprintln!(
        "conformance: {} steps ({requests} requests to each server), {} differences ({} documented, {} not), {:.1} s",
        script.steps.len(),
        differences.len(),
        differences.len() - unlisted.len(),
        unlisted.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        report.is_empty(),
        "the emulator and the real API server differ where docs/testing.md ({SECTION}) does not say so:\n{report}"
    );
}

#[test]
fn pointers_select_expand_and_diff_at_the_leaves() {
    let answer = json!({"body": {"resources": [
        {"name": "nodes", "verbs": ["get"]},
        {"name": "nodes/status", "verbs": ["get", "patch"]},
    ], "items": [{"a": 1}, {"a": 2}]}});
    assert_eq!(
        evaluate(&answer, "/resources[name=nodes/status]/verbs/1"),
        Some(json!("patch"))
    );
    assert_eq!(evaluate(&answer, "/items/*/a"), Some(json!([1, 2])));
    assert_eq!(evaluate(&answer, "len:/items"), Some(json!(2)));
    assert_eq!(evaluate(&answer, "has:/nothing"), Some(json!(false)));
    assert_eq!(
        expand("/resources[name=*]/verbs", &answer),
        vec![
            "/resources[name=nodes]/verbs",
            "/resources[name=nodes/status]/verbs"
        ]
    );
    let mut out = Vec::new();
    leaf_diff(
        "/x",
        Some(&json!({"a": 1, "b": {"c": 2}})),
        Some(&json!({"a": 1, "b": {"c": 3, "d": 4}})),
        &mut out,
    );
    let fields: Vec<&str> = out.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(fields, vec!["/x/b/c", "/x/b/d"]);
    assert!(covers("/status", "/status/nodeInfo/bootID"));
    assert!(!covers("/status", "/statusX"));
}

#[test]
fn normalising_hides_what_differs_between_runs() {
    let n = Normaliser::new();
    let v = json!({"metadata": {"uid": "x", "resourceVersion": "12", "creationTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{}], "name": "ev-abcdef"}, "eventTime": "2026-01-01T00:00:00.123456Z",
        "message": "too old resource version: 12 (340)"});
    assert_eq!(
        n.normalise(&v, &[("ev-abcdef".into(), "ev".into())]),
        json!({"metadata": {"uid": "<uid>", "resourceVersion": "<rv>", "creationTimestamp": "<time>",
            "name": "{ev}"}, "eventTime": "<microtime>", "message": "too old resource version: N (N)"})
    );
}
