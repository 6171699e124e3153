//! Label and field selectors of LIST and WATCH, parsed and matched as kube-apiserver does,
//! with the same 400 messages. Owns only parsing and matching; the HTTP layer turns a
//! [`SelectorError`] into the BadRequest Status.
//!
//! Sources: apimachinery `pkg/labels/selector.go` (lexer, parser, `NewRequirement`,
//! `Requirement.Matches`), apimachinery `pkg/fields/selector.go` (`ParseSelector`,
//! `splitTerms`, `splitTerm`, `UnescapeValue`), the field label conversions of
//! `pkg/apis/core/v1/conversion.go` and apimachinery `runtime.DefaultMetaV1FieldSelectorConversion`,
//! and the selectable field sets of `pkg/registry/core/{node,event,namespace}/strategy.go`.
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

/// Which field labels a kind accepts, and the error for the others (the label conversion
/// function registered for the kind, or the default one).
fn supported_field_labels(kind: Option<&str>) -> (&'static [&'static str], fn(&str) -> String) {
    fn not_supported(label: &str) -> String {
        format!("field label not supported: {label}")
    }
    fn not_known(label: &str) -> String {
        format!(
            "\"{label}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        )
    }
    match kind {
        // pkg/apis/core/v1/conversion.go AddFieldLabelConversionsForNode
        Some("Node") => (&["metadata.name", "spec.unschedulable"], not_supported),
        // AddFieldLabelConversionsForNamespace
        Some("Namespace") => (&["metadata.name", "status.phase"], not_supported),
        // AddFieldLabelConversionsForEvent
        Some("Event") => (
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            not_supported,
        ),
        // ConfigMap, Lease: runtime.DefaultMetaV1FieldSelectorConversion
        Some(_) => (&["metadata.name", "metadata.namespace"], not_known),
        // kind-agnostic: the two labels every kind accepts
        None => (&["metadata.name", "metadata.namespace"], not_supported),
    }
}

/// The value of a selectable field of an object (the kinds' `ToSelectableFields`); a field
/// the object lacks reads as "".
fn field_value(obj: &Value, field: &str) -> String {
    let text = |path: &[&str]| -> String {
        let mut cur = obj;
        for key in path {
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
    match field {
        "spec.unschedulable" => obj
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "source" => text(&["source", "component"]),
        "reportingComponent" => text(&["reportingController"]),
        other => text(&other.split('.').collect::<Vec<_>>()),
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
        Self::parse_with(None, s)
    }

    /// Parses a `fieldSelector` for a kind (`Node`, `Namespace`, `Event`, `ConfigMap`,
    /// `Lease`), accepting exactly the field labels the real server accepts for it.
    pub fn parse_for_kind(kind: &str, s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(Some(kind), s)
    }

    /// Upstream `fields.ParseSelector` followed by the `Transform` through the kind's field
    /// label conversion. Terms are sorted first, so the first error is the sorted-first one.
    fn parse_with(kind: Option<&str>, s: &str) -> Result<FieldSelector, SelectorError> {
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
            terms.push(FieldTerm {
                field: lhs.to_string(),
                value,
                negated: op == "!=",
            });
        }
        let (supported, error) = supported_field_labels(kind);
        if let Some(bad) = terms
            .iter()
            .find(|t| !supported.contains(&t.field.as_str()))
        {
            return Err(SelectorError(error(&bad.field)));
        }
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
            "reportingController": "bare-ccm",
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
}
