//! The label selector syntax, as apimachinery `pkg/labels/selector.go` reads it: its
//! lexer (`Lexer.Lex`, `string2token`) and parser (`Parser.parse`, `parseRequirement`,
//! `parseKeyAndInferOperator`, `parseOperator`, `parseValues`, `parseIdentifiersList`,
//! `parseExactValue`), with the same error messages, so that a malformed selector is
//! refused with the words the real server uses.

use serde_json::Value;

use super::label::{Op, Requirement, new_requirement};
use crate::validation::{FieldError, is_qualified_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
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
pub(super) fn lex(input: &str) -> Vec<Token> {
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
pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) position: usize,
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

    pub(super) fn parse(&mut self) -> Result<Vec<Requirement>, String> {
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
