//! The EDN data model (the subset Jepsen histories use) and its printer.

use std::fmt::{self, Write};

/// One EDN value.
///
/// Covers what Jepsen writes into histories: maps, vectors, lists, sets,
/// keywords, symbols, strings, characters, integers, floats, `nil`,
/// booleans, and tagged values such as `#jepsen.history.Op{...}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer; wide enough for both `i64` and `u64` values.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A character literal such as `\a`.
    Char(char),
    /// A keyword, stored without its leading colon.
    Keyword(String),
    /// A symbol other than `nil`, `true` and `false`.
    Symbol(String),
    /// `( ... )`
    List(Vec<Edn>),
    /// `[ ... ]`
    Vector(Vec<Edn>),
    /// `{ ... }`, in source order.
    Map(Vec<(Edn, Edn)>),
    /// `#{ ... }`, in source order.
    Set(Vec<Edn>),
    /// `#tag value`
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// Looks up a keyword key in a map; `None` for non-maps or a missing key.
    pub fn get_keyword(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(k) if k == name => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// True when `name` can be printed as a keyword or symbol and read back.
pub(crate) fn is_symbolic(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ok_first = first.is_alphabetic() || "*+!-_?<>=.".contains(first);
    if !ok_first
        || (matches!(first, '-' | '+' | '.') && name[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        return false;
    }
    name.chars()
        .all(|c| c.is_alphanumeric() || "*+!-_?<>=./:#$%&'".contains(c))
        && !matches!(name, "nil" | "true" | "false")
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => {
                if x.is_finite() {
                    // Debug prints the shortest text that reads back exactly
                    // and always marks it as a float ("1.0", "1e-7").
                    write!(f, "{x:?}")
                } else if x.is_nan() {
                    f.write_str("##NaN")
                } else if *x > 0.0 {
                    f.write_str("##Inf")
                } else {
                    f.write_str("##-Inf")
                }
            }
            Edn::Str(s) => write_string(f, s),
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                c if c.is_control() => write!(f, "\\u{:04x}", *c as u32),
                c => write!(f, "\\{c}"),
            },
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(items) => write_seq(f, "(", items, ")"),
            Edn::Vector(items) => write_seq(f, "[", items, "]"),
            Edn::Set(items) => write_seq(f, "#{", items, "}"),
            Edn::Map(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_char('}')
            }
            Edn::Tagged(tag, value) => write!(f, "#{tag} {value}"),
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
