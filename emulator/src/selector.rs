//! Label and field selectors of LIST and WATCH, parsed and matched as kube-apiserver does,
//! with the same 400 messages. Owns only parsing and matching; the HTTP layer turns a
//! [`SelectorError`] into the BadRequest Status.
//!
//! Sources: apimachinery `pkg/labels/selector.go` (lexer, parser, `NewRequirement`,
//! `Requirement.Matches`), apimachinery `pkg/fields/selector.go` (`ParseSelector`,
//! `splitTerms`, `splitTerm`, `UnescapeValue`), the field label conversions of
//! `pkg/apis/core/v1/conversion.go`, `pkg/apis/events/v1/conversion.go` and apimachinery
//! `runtime.DefaultMetaV1FieldSelectorConversion`, and the selectable field sets of
//! `pkg/registry/core/{node,event,namespace,pod}/strategy.go`.
//! The apiserver answers a parse error with `errors.NewBadRequest(err.Error())`
//! (`pkg/endpoints/handlers/get.go` `ListResource`).

use serde_json::{Map, Value};

use crate::validation::{FieldError, is_qualified_name, is_valid_label_value};

/// A selector the real server rejects with 400 BadRequest; `Display` is that Status message.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectorError(pub String);

// ----- label selectors -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream `Requirement.Matches`.
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .map(|v| v.as_str().unwrap_or(""));
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => value.is_some_and(has),
            Op::NotIn | Op::NotEquals => !value.is_some_and(has),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(actual), [wanted]) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.as_slice(),
                ) else {
                    return false;
                };
                match wanted.parse::<i64>() {
                    Ok(w) if self.op == Op::GreaterThan => actual > w,
                    Ok(w) => actual < w,
                    Err(_) => false,
                }
            }
        }
    }
}

/// Upstream `NewRequirement` as the parser calls it (no field path, so errors are reported
/// as `key: ...` / `values[i][key]: ...`, joined as an aggregate).
fn new_requirement(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
    let mut errs: Vec<FieldError> = Vec::new();
    let key_errs = is_qualified_name(key);
    if !key_errs.is_empty() {
        errs.push(FieldError::invalid(
            "key",
            Value::String(key.into()),
            &key_errs.join("; "),
        ));
    }
    let list = Value::Array(values.iter().cloned().map(Value::String).collect());
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            errs.push(FieldError::invalid(
                "values",
                list,
                "for 'in', 'notin' operators, values set can't be empty",
            ));
        }
        Op::Equals | Op::DoubleEquals | Op::NotEquals if values.len() != 1 => {
            errs.push(FieldError::invalid(
                "values",
                list,
                "exact-match compatibility requires one single value",
            ));
        }
        Op::GreaterThan | Op::LessThan => {
            if values.len() != 1 {
                errs.push(FieldError::invalid(
                    "values",
                    list,
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        &format!("values[{i}]"),
                        Value::String(v.clone()),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = is_valid_label_value(v);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("values[{i}][{key}]"),
                Value::String(v.clone()),
                &value_errs.join("; "),
            ));
        }
    }
    if errs.is_empty() {
        Ok(Requirement {
            key: key.into(),
            op,
            values,
        })
    } else {
        Err(aggregate(&errs))
    }
}

/// Upstream `utilerrors.aggregate.Error`: one message alone, several as `[a, b]` with
/// repeats shown once.
fn aggregate(errs: &[FieldError]) -> String {
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    if errs.len() == 1 || unique.len() == 1 {
        unique.concat()
    } else {
        format!("[{}]", unique.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Error(String),
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier(String),
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

impl Token {
    /// The literal the upstream lexer returns along with the token.
    fn literal(&self) -> &str {
        match self {
            Token::Error(s) | Token::Identifier(s) => s,
            Token::EndOfString => "",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::DoesNotExist => "!",
            Token::DoubleEquals => "==",
            Token::Equals => "=",
            Token::GreaterThan => ">",
            Token::In => "in",
            Token::LessThan => "<",
            Token::NotEquals => "!=",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
        }
    }

    /// Upstream `string2token`.
    fn keyword(s: &str) -> Option<Token> {
        Some(match s {
            ")" => Token::ClosedPar,
            "," => Token::Comma,
            "!" => Token::DoesNotExist,
            "==" => Token::DoubleEquals,
            "=" => Token::Equals,
            ">" => Token::GreaterThan,
            "in" => Token::In,
            "<" => Token::LessThan,
            "!=" => Token::NotEquals,
            "notin" => Token::NotIn,
            "(" => Token::OpenPar,
            _ => return None,
        })
    }
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream `Lexer.Lex`, run over the whole input as `Parser.scan` does. A NUL byte ends
/// the input, as upstream's `read` returns 0 at the end.
fn lex(input: &str) -> Vec<Token> {
    let bytes = input.as_bytes();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut pos = 0;
    let mut tokens = Vec::new();
    loop {
        while is_whitespace(at(pos)) {
            pos += 1;
        }
        let start = pos;
        let token = if at(pos) == 0 {
            Token::EndOfString
        } else if is_special(at(pos)) {
            let mut last: Option<Token> = None;
            while at(pos) != 0 && is_special(at(pos)) {
                let candidate = String::from_utf8_lossy(&bytes[start..=pos]).into_owned();
                match Token::keyword(&candidate) {
                    Some(t) => last = Some(t),
                    None if last.is_some() => break,
                    None => {}
                }
                pos += 1;
            }
            last.unwrap_or_else(|| {
                let found = String::from_utf8_lossy(&bytes[start..pos]);
                Token::Error(format!("error expected: keyword found '{found}'"))
            })
        } else {
            while at(pos) != 0 && !is_special(at(pos)) && !is_whitespace(at(pos)) {
                pos += 1;
            }
            let word = String::from_utf8_lossy(&bytes[start..pos]).into_owned();
            Token::keyword(&word).unwrap_or(Token::Identifier(word))
        };
        let end = token == Token::EndOfString;
        tokens.push(token);
        if end {
            return tokens;
        }
    }
}

/// Upstream `Parser`: a cursor over the scanned tokens. In the `values` context the
/// keywords `in` and `notin` are plain identifiers.
struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn lookahead(&self, values: bool) -> Token {
        let t = self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or(Token::EndOfString);
        match t {
            Token::In if values => Token::Identifier("in".into()),
            Token::NotIn if values => Token::Identifier("notin".into()),
            other => other,
        }
    }

    fn consume(&mut self, values: bool) -> Token {
        let t = self.lookahead(values);
        self.position += 1;
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead(true) {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    match self.consume(true) {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let next = self.lookahead(true);
                            if !matches!(next, Token::Identifier(_) | Token::DoesNotExist) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    next.literal()
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, unary) = self.parse_key_and_infer_operator()?;
        if let Some(op) = unary {
            return new_requirement(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let mut values = match op {
            Op::In | Op::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // upstream collects values in a sets.String and passes its sorted List()
        values.sort();
        values.dedup();
        new_requirement(&key, op, values)
    }

    /// Returns the key, and `Exists`/`DoesNotExist` when no binary operator follows.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut tok = self.consume(true);
        let negated = tok == Token::DoesNotExist;
        if negated {
            tok = self.consume(true);
        }
        let Token::Identifier(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.literal()));
        };
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            // upstream validates with the parser's nil field path, printed as "<nil>"
            return Err(FieldError::invalid(
                "<nil>",
                Value::String(key.clone()),
                &key_errs.join("; "),
            )
            .to_string());
        }
        let at_end = matches!(self.lookahead(true), Token::EndOfString | Token::Comma);
        let unary = if negated {
            Some(Op::DoesNotExist)
        } else if at_end {
            Some(Op::Exists)
        } else {
            None
        };
        Ok((key, unary))
    }

    fn parse_operator(&mut self) -> Result<Op, String> {
        Ok(match self.consume(false) {
            Token::In => Op::In,
            Token::Equals => Op::Equals,
            Token::DoubleEquals => Op::DoubleEquals,
            Token::GreaterThan => Op::GreaterThan,
            Token::LessThan => Op::LessThan,
            Token::NotIn => Op::NotIn,
            Token::NotEquals => Op::NotEquals,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let open = self.consume(true);
        if open != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        let next = self.lookahead(true);
        match next {
            Token::Identifier(_) | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                if self.consume(true) != Token::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", next.literal()));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(true);
                Ok(vec![String::new()])
            }
            other => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            match self.consume(true) {
                Token::Identifier(v) => {
                    values.push(v);
                    match self.lookahead(true) {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or ')'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead(true) {
                        Token::ClosedPar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(true);
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(true), Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume(true) {
            Token::Identifier(v) => Ok(vec![v]),
            other => Err(format!("found '{}', expected: identifier", other.literal())),
        }
    }
}

/// A parsed `labelSelector` query parameter; exists so LIST and WATCH filter by labels
/// exactly as the real server does. The default (empty) selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the syntax of apimachinery `labels.Parse`: comma-separated requirements
    /// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser {
            tokens: lex(s),
            position: 0,
        };
        let requirements = parser.parse().map_err(SelectorError)?;
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

// ----- field selectors -----

/// One `field=value` (`==` is the same) or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed `fieldSelector` query parameter; exists so LIST and WATCH filter by the fields
/// the real server makes selectable. The default (empty) selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// The field label conversion registered for a resource: each label a client may use with
/// the internal label it stands for, and the error the real server gives for any other.
struct LabelConversion {
    labels: &'static [(&'static str, &'static str)],
    unknown: fn(&str) -> String,
}

impl LabelConversion {
    /// The internal label `label` converts to, or the server's 400 message.
    fn convert(&self, label: &str) -> Result<&'static str, String> {
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
fn label_conversion(group: &str, kind: Option<&str>) -> &'static LabelConversion {
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
fn field_value(obj: &Value, field: &str) -> String {
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

/// Upstream `splitTerms`: splits on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut in_slash) = (0, false);
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Upstream `splitTerm`: the first `!=`, `==` or `=` splits the term.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Upstream `UnescapeValue`: `\\`, `\,`, `\=` are escapes; a bare `,` or `=` is an error
/// (upstream prints the rune as its number).
fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses a `fieldSelector` accepting only `metadata.name` and `metadata.namespace`,
    /// the labels every kind supports; any other label is refused with the message Node's
    /// conversion gives (`field label not supported: <label>`).
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(label_conversion("", None), s)
    }

    /// Parses a `fieldSelector` for a core/v1 kind (`Node`, `Namespace`, `Pod`, `Event`,
    /// `ConfigMap`) or a kind whose field labels do not depend on its group (`Lease`,
    /// `Deployment`). Same as [`FieldSelector::parse_for_resource`] with the core group.
    pub fn parse_for_kind(kind: &str, s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_for_resource("", kind, s)
    }

    /// Parses a `fieldSelector` for the resource of `group` (`""` for core) and `kind`,
    /// accepting exactly the field labels the real server accepts for it, so that
    /// events.k8s.io/v1 Events take `regarding.*` and core/v1 Events `involvedObject.*`.
    /// Labels are converted to the internal names the stored object is matched on.
    pub fn parse_for_resource(
        group: &str,
        kind: &str,
        s: &str,
    ) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(label_conversion(group, Some(kind)), s)
    }

    /// Upstream `fields.ParseSelector` followed by the `Transform` through the kind's field
    /// label conversion. Terms are sorted first, so the first error is the sorted-first one.
    fn parse_with(conversion: &LabelConversion, s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs).map_err(SelectorError)?;
            terms.push((lhs, value, op == "!="));
        }
        let terms = terms
            .into_iter()
            .map(|(label, value, negated)| {
                Ok(FieldTerm {
                    field: conversion
                        .convert(label)
                        .map_err(SelectorError)?
                        .to_string(),
                    value,
                    negated,
                })
            })
            .collect::<Result<Vec<_>, SelectorError>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(obj, &t.field) == t.value) != t.negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
