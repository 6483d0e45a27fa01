//! A small hand-written EDN reader that tracks line and column for errors.

use super::value::Edn;
use crate::error::HistoryError;

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

/// Reads EDN forms one after another from a string.
pub struct EdnReader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    column: usize,
    /// Closing delimiter of the top-level vector or list being flattened by
    /// [`EdnReader::next_item`], with where it opened.
    open_top: Option<(char, usize, usize)>,
}

/// A parsed top-level form with the line it started on.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// 1-based line where the form starts.
    pub line: usize,
    /// The form.
    pub value: Edn,
}

impl<'a> EdnReader<'a> {
    /// Starts reading at the beginning of `text`.
    pub fn new(text: &'a str) -> Self {
        EdnReader {
            text,
            pos: 0,
            line: 1,
            column: 1,
            open_top: None,
        }
    }

    /// Like [`EdnReader::next_form`], but steps into top-level vectors and
    /// lists and yields their elements one by one, each with its own line.
    ///
    /// Jepsen writes histories both as one op map per line and as one big
    /// vector of op maps; this reads either the same way.
    pub fn next_item(&mut self) -> Result<Option<Located>, HistoryError> {
        loop {
            self.skip_whitespace_and_discards(0)?;
            if let Some((close, line, column)) = self.open_top {
                match self.peek() {
                    None => {
                        return self.error_at(
                            line,
                            column,
                            format!("this collection is never closed (expected `{close}`)"),
                        );
                    }
                    Some(c) if c == close => {
                        self.bump();
                        self.open_top = None;
                        continue;
                    }
                    Some(_) => {
                        let line = self.line;
                        let value = self.read_form(1)?;
                        return Ok(Some(Located { line, value }));
                    }
                }
            }
            match self.peek() {
                Some(c @ ('[' | '(')) => {
                    let close = if c == '[' { ']' } else { ')' };
                    self.open_top = Some((close, self.line, self.column));
                    self.bump();
                }
                _ => return self.next_form(),
            }
        }
    }

    /// The next top-level form, `None` at the end of the text.
    pub fn next_form(&mut self) -> Result<Option<Located>, HistoryError> {
        self.skip_whitespace_and_discards(0)?;
        if self.peek().is_none() {
            return Ok(None);
        }
        let line = self.line;
        let value = self.read_form(0)?;
        Ok(Some(Located { line, value }))
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, HistoryError> {
        Err(HistoryError::Syntax {
            line: self.line,
            column: self.column,
            message: message.into(),
        })
    }

    fn error_at<T>(
        &self,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Result<T, HistoryError> {
        Err(HistoryError::Syntax {
            line,
            column,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut it = self.text[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                self.bump();
            } else if c == ';' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    /// Skips whitespace, comments and `#_ form` discards.
    fn skip_whitespace_and_discards(&mut self, depth: usize) -> Result<(), HistoryError> {
        loop {
            self.skip_whitespace();
            if self.peek() == Some('#') && self.peek_second() == Some('_') {
                self.bump();
                self.bump();
                self.skip_whitespace_and_discards(depth)?;
                if self.peek().is_none() {
                    return self.error("`#_` discards nothing: the text ends");
                }
                self.read_form(depth + 1)?;
            } else {
                return Ok(());
            }
        }
    }

    fn read_form(&mut self, depth: usize) -> Result<Edn, HistoryError> {
        if depth > MAX_DEPTH {
            return self.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let (line, column) = (self.line, self.column);
        let Some(c) = self.peek() else {
            return self.error("unexpected end of text, expected a value");
        };
        match c {
            '(' => {
                self.bump();
                Ok(Edn::List(self.read_seq(')', depth, line, column)?))
            }
            '[' => {
                self.bump();
                Ok(Edn::Vector(self.read_seq(']', depth, line, column)?))
            }
            '{' => {
                self.bump();
                let items = self.read_seq('}', depth, line, column)?;
                if items.len() % 2 != 0 {
                    return self.error_at(
                        line,
                        column,
                        "map has a key without a value (odd number of forms)",
                    );
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Ok(Edn::Map(entries))
            }
            ')' | ']' | '}' => self.error(format!("unmatched closing `{c}`")),
            '"' => self.read_string(),
            '\\' => self.read_char(),
            ':' => {
                self.bump();
                let name = self.read_token();
                if name.is_empty() || name.starts_with(':') {
                    return self.error_at(line, column, format!("invalid keyword `:{name}`"));
                }
                Ok(Edn::Keyword(name))
            }
            '#' => self.read_dispatch(depth, line, column),
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && self.peek_second().is_some_and(|d| d.is_ascii_digit())) =>
            {
                let token = self.read_token();
                parse_number(&token).map_or_else(|m| self.error_at(line, column, m), Ok)
            }
            _ => {
                let token = self.read_token();
                if token.is_empty() {
                    return self.error(format!("unexpected character `{c}`"));
                }
                Ok(match token.as_str() {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => Edn::Symbol(token),
                })
            }
        }
    }

    fn read_seq(
        &mut self,
        close: char,
        depth: usize,
        line: usize,
        column: usize,
    ) -> Result<Vec<Edn>, HistoryError> {
        let mut items = Vec::new();
        loop {
            self.skip_whitespace_and_discards(depth)?;
            match self.peek() {
                None => {
                    return self.error_at(
                        line,
                        column,
                        format!("this collection is never closed (expected `{close}`)"),
                    );
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(c @ (')' | ']' | '}')) => {
                    return self.error(format!("expected `{close}` but found `{c}`"));
                }
                Some(_) => items.push(self.read_form(depth + 1)?),
            }
        }
    }

    fn read_dispatch(
        &mut self,
        depth: usize,
        line: usize,
        column: usize,
    ) -> Result<Edn, HistoryError> {
        self.bump(); // '#'
        match self.peek() {
            Some('{') => {
                self.bump();
                Ok(Edn::Set(self.read_seq('}', depth, line, column)?))
            }
            Some('#') => {
                self.bump();
                let token = self.read_token();
                match token.as_str() {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    _ => self.error_at(line, column, format!("unknown symbolic value `##{token}`")),
                }
            }
            Some(c) if c.is_alphabetic() => {
                let tag = self.read_token();
                self.skip_whitespace_and_discards(depth)?;
                if self.peek().is_none() {
                    return self.error(format!("tag `#{tag}` has no value"));
                }
                let value = self.read_form(depth + 1)?;
                Ok(Edn::Tagged(tag, Box::new(value)))
            }
            _ => self.error_at(line, column, "invalid `#` dispatch"),
        }
    }

    /// A run of characters up to a delimiter.
    fn read_token(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';')
            {
                break;
            }
            // `\` only starts a char literal at the start of a form.
            if c == '\\' && self.pos > start {
                break;
            }
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    fn read_string(&mut self) -> Result<Edn, HistoryError> {
        let (line, column) = (self.line, self.column);
        self.bump(); // opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return self.error_at(line, column, "string is never closed");
            };
            match c {
                '"' => return Ok(Edn::Str(out)),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return self.error_at(line, column, "string is never closed");
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'u' => out.push(self.read_unicode_escape()?),
                        other => return self.error(format!("unknown string escape `\\{other}`")),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn read_unicode_escape(&mut self) -> Result<char, HistoryError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let Some(d) = self.bump().and_then(|c| c.to_digit(16)) else {
                return self.error("`\\u` needs four hex digits");
            };
            code = code * 16 + d;
        }
        char::from_u32(code).map_or_else(
            || self.error(format!("`\\u{code:04x}` is not a character")),
            Ok,
        )
    }

    fn read_char(&mut self) -> Result<Edn, HistoryError> {
        let (line, column) = (self.line, self.column);
        self.bump(); // backslash
        let Some(first) = self.bump() else {
            return self.error_at(line, column, "character literal ends the text");
        };
        let rest = self.read_token();
        let name = format!("{first}{rest}");
        let c = match name.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            n if n.chars().count() == 1 => first,
            n if n.len() == 5 && n.starts_with('u') => {
                let code = u32::from_str_radix(&n[1..], 16);
                match code.ok().and_then(char::from_u32) {
                    Some(c) => c,
                    None => {
                        return self.error_at(line, column, format!("invalid character `\\{n}`"));
                    }
                }
            }
            n => return self.error_at(line, column, format!("invalid character `\\{n}`")),
        };
        Ok(Edn::Char(c))
    }
}

fn parse_number(token: &str) -> Result<Edn, String> {
    let is_float = token.contains(['.', 'e', 'E']) || token.ends_with('M');
    if is_float {
        let digits = token.strip_suffix('M').unwrap_or(token);
        return digits
            .parse::<f64>()
            .map(Edn::Float)
            .map_err(|_| format!("invalid number `{token}`"));
    }
    let digits = token.strip_suffix('N').unwrap_or(token);
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    digits
        .parse::<i128>()
        .map(Edn::Int)
        .map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                format!("integer `{token}` is out of range")
            }
            _ => format!("invalid number `{token}`"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Edn {
        let mut r = EdnReader::new(text);
        let v = r.next_form().unwrap().unwrap().value;
        assert_eq!(r.next_form().unwrap(), None);
        v
    }

    fn err(text: &str) -> String {
        let mut r = EdnReader::new(text);
        loop {
            match r.next_form() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("expected an error for {text:?}"),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn reads_a_jepsen_op_map() {
        let v = one("{:type :invoke, :f :read, :value nil, :process 0, :time 123, :index 0}");
        assert_eq!(v.get_keyword("type"), Some(&Edn::Keyword("invoke".into())));
        assert_eq!(v.get_keyword("value"), Some(&Edn::Nil));
        assert_eq!(v.get_keyword("time"), Some(&Edn::Int(123)));
    }

    #[test]
    fn reads_scalars_and_collections() {
        assert_eq!(one("-42"), Edn::Int(-42));
        assert_eq!(one("42N"), Edn::Int(42));
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("1e3"), Edn::Float(1000.0));
        assert_eq!(one(r#""a\"b\n\u0041""#), Edn::Str("a\"b\nA".into()));
        assert_eq!(one(r"\newline"), Edn::Char('\n'));
        assert_eq!(one(r"\x"), Edn::Char('x'));
        assert_eq!(
            one("[1 (2 3) #{4}]"),
            Edn::Vector(vec![
                Edn::Int(1),
                Edn::List(vec![Edn::Int(2), Edn::Int(3)]),
                Edn::Set(vec![Edn::Int(4)]),
            ])
        );
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("foo/bar"), Edn::Symbol("foo/bar".into()));
        assert_eq!(
            one("#inst \"2020\""),
            Edn::Tagged("inst".into(), Box::new(Edn::Str("2020".into())))
        );
        assert_eq!(
            one("[1 #_ 2 3] ; comment"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(3)])
        );
    }

    #[test]
    fn printing_then_reading_is_identity() {
        let text = r#"{:a [1 -2 3.25 "s\"q" \c nil true], :b #{:k}, :c (x y), :d #tag {1 2}}"#;
        let v = one(text);
        assert_eq!(one(&v.to_string()), v);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err("{:a 1}\n{:b 2\n");
        assert!(
            e.starts_with("line 2, column 1:") && e.contains("never closed"),
            "{e}"
        );
        let e = err("{:a 1}\n  {:b}");
        assert!(
            e.starts_with("line 2, column 3:") && e.contains("odd number"),
            "{e}"
        );
        let e = err("[1 2}");
        assert!(
            e.starts_with("line 1, column 5:") && e.contains("expected `]`"),
            "{e}"
        );
        let e = err("\"abc");
        assert!(e.contains("string is never closed"), "{e}");
        let e = err("99999999999999999999999999999999999999999");
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000);
        assert!(err(&text).contains("nesting deeper"));
    }
}
