//! The string syntax checks of apimachinery `pkg/util/validation/validation.go`:
//! `IsQualifiedName`, `IsValidLabelValue`, `IsDNS1123Subdomain`, `IsDNS1123Label`, with
//! their exact messages (the patterns are part of the text a client sees). Each returns the
//! reasons a string breaks its rule; where the string sits is the caller's concern.

use std::sync::LazyLock;

use regex::Regex;

/// One rule of the file: a length limit and a pattern, with the words of its `RegexError`.
struct Syntax {
    /// The pattern as upstream prints it in the message.
    fmt: &'static str,
    /// The message before the examples.
    err: &'static str,
    /// The longest value allowed, in bytes.
    max: usize,
    /// The examples the message offers.
    examples: &'static [&'static str],
    /// `fmt`, anchored.
    re: LazyLock<Regex>,
}

impl Syntax {
    /// The reasons `value` breaks the rule: too long, not matching, both or neither.
    fn errors(&self, value: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if value.len() > self.max {
            errs.push(max_len_error(self.max));
        }
        if !self.re.is_match(value) {
            errs.push(self.regex_error());
        }
        errs
    }

    fn regex_error(&self) -> String {
        regex_error(self.err, self.fmt, self.examples)
    }
}

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// The name part of a qualified name.
static QUALIFIED_NAME: Syntax = Syntax {
    fmt: QUALIFIED_NAME_FMT,
    err: "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    max: 63,
    examples: &["MyName", "my.name", "123-abc"],
    re: LazyLock::new(|| anchored(QUALIFIED_NAME_FMT)),
};
static LABEL_VALUE: Syntax = Syntax {
    fmt: LABEL_VALUE_FMT,
    err: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    max: 63,
    examples: &["MyValue", "my_value", "12345"],
    re: LazyLock::new(|| anchored(LABEL_VALUE_FMT)),
};
static DNS1123_LABEL: Syntax = Syntax {
    fmt: DNS1123_LABEL_FMT,
    err: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    max: 63,
    examples: &["my-name", "123-abc"],
    re: LazyLock::new(|| anchored(DNS1123_LABEL_FMT)),
};
static DNS1123_SUBDOMAIN: Syntax = Syntax {
    fmt: DNS1123_SUBDOMAIN_FMT,
    err: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    max: 253,
    examples: &["example.com"],
    re: LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT)),
};

fn anchored(fmt: &str) -> Regex {
    match Regex::new(&format!("^(?:{fmt})$")) {
        Ok(re) => re,
        // The patterns are constants of this module, covered by the validation tests.
        Err(e) => unreachable!("invalid built-in pattern {fmt}: {e}"),
    }
}

/// Upstream `MaxLenError`.
fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Upstream `RegexError`: the message, examples, and the pattern.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = msg.to_string();
    if examples.is_empty() {
        return format!("{s} (regex used for validation is '{fmt}')");
    }
    s.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

/// Upstream `IsQualifiedName`: `[prefix/]name`, the prefix a DNS-1123 subdomain and the name
/// at most 63 alphanumerics, `-`, `_`, `.`. Returns the reasons it is not, empty if it is.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                QUALIFIED_NAME.regex_error()
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME.max {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME.max)));
    }
    if !QUALIFIED_NAME.re.is_match(name) {
        errs.push(format!("name part {}", QUALIFIED_NAME.regex_error()));
    }
    errs
}

/// Upstream `IsValidLabelValue`: empty, or at most 63 alphanumerics, `-`, `_`, `.` starting
/// and ending alphanumeric.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    LABEL_VALUE.errors(value)
}

/// Upstream `IsDNS1123Subdomain` (names of nodes, configmaps, leases, events).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    DNS1123_SUBDOMAIN.errors(value)
}

/// Upstream `IsDNS1123Label` (names of namespaces).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    DNS1123_LABEL.errors(value)
}
