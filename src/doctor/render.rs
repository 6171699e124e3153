//! The human-readable report: the verdict line, then one block per problem with its fix,
//! then the notes. Per-node findings of one kind are grouped when there are many, so a
//! thousand stuck nodes read as one block with a few example names.

use std::fmt::Write as _;

use super::finding::{Finding, Report, Severity};

/// Above this many nodes with the same finding, they are printed as one group.
const GROUP_ABOVE: usize = 3;
/// Node names shown in a group.
const GROUP_EXAMPLES: usize = 3;
/// Text is wrapped at this column; continuation lines are indented by `INDENT`.
const WIDTH: usize = 100;
const INDENT: &str = "        ";

impl Report {
    /// The text form of `bare-ccm doctor`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.verdict);
        let _ = writeln!(
            out,
            "nodes: {}, tainted uninitialised: {}",
            self.nodes, self.tainted_nodes
        );
        let mut rest = self.findings.as_slice();
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|f| {
                    f.severity == first.severity && f.code == first.code && f.node.is_some()
                })
                .count()
                .max(1);
            let (block, tail) = rest.split_at(run);
            if block.len() > GROUP_ABOVE {
                write_group(&mut out, block);
            } else {
                block.iter().for_each(|f| write_one(&mut out, f));
            }
            rest = tail;
        }
        out
    }
}

fn label(severity: Severity) -> String {
    format!("{:<7}", severity.as_str())
}

fn write_one(out: &mut String, f: &Finding) {
    let subject = match &f.node {
        Some(node) => format!(" node {node}"),
        None => String::new(),
    };
    out.push('\n');
    wrap(
        out,
        &format!("{} [{}]{subject}: {}", label(f.severity), f.code, f.message),
    );
    if !f.fix.is_empty() {
        wrap(out, &format!("{INDENT}fix: {}", f.fix));
    }
}

fn write_group(out: &mut String, block: &[Finding]) {
    let Some(first) = block.first() else {
        return;
    };
    let names: Vec<&str> = block
        .iter()
        .filter_map(|f| f.node.as_deref())
        .take(GROUP_EXAMPLES)
        .collect();
    let more = block.len().saturating_sub(names.len());
    out.push('\n');
    wrap(
        out,
        &format!(
            "{} [{}] {} nodes, e.g. {}{}",
            label(first.severity),
            first.code,
            block.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    );
    wrap(
        out,
        &format!(
            "{INDENT}e.g. {}: {}",
            first.node.as_deref().unwrap_or(""),
            first.message
        ),
    );
    if !first.fix.is_empty() {
        wrap(out, &format!("{INDENT}fix: {}", first.fix));
    }
}

/// Appends `text` as lines of at most `WIDTH` columns (a longer word gets its own line),
/// continuation lines indented by `INDENT`.
fn wrap(out: &mut String, text: &str) {
    let body = text.trim_start_matches(' ');
    let mut line = text[..text.len() - body.len()].to_string();
    let mut fresh = true;
    for word in body.split(' ') {
        if !fresh && line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{line}");
            line = INDENT.to_string();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    let _ = writeln!(out, "{line}");
}
