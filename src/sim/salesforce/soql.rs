//! Salesforce simulator: a small SOQL parser — `SELECT f, … | COUNT() FROM Object [WHERE …]
//! [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]` with `= != <> < <= > >=`,
//! `[NOT] IN (…)`, `LIKE`, `AND` / `OR` (not mixed without parentheses), `NOT`, quoted strings
//! with escapes, numbers, `true` / `false` / `null` and unquoted date(time) literals.

use super::errors::ApiError;

/// Where a token starts (1-based, as Salesforce reports `Row:…:Column:…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub row: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// An unquoted date or datetime literal, as written.
    Temporal(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Name, Op, Lit),
    In(Name, bool, Vec<Lit>),
    Like(Name, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub field: Name,
    pub desc: bool,
    pub nulls_last: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    /// None for `COUNT()`.
    pub fields: Option<Vec<Name>>,
    pub object: Name,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Temporal(String),
    Punct(&'static str),
    Eof,
}

/// The message Salesforce builds for a query error: the query line, a caret, the place.
pub fn located(query: &str, pos: Pos, msg: &str) -> String {
    let line = query.lines().nth(pos.row.saturating_sub(1)).unwrap_or("");
    let caret = " ".repeat(pos.col.saturating_sub(1));
    format!(
        "\n{line}\n{caret}^\nERROR at Row:{}:Column:{}\n{msg}",
        pos.row, pos.col
    )
}

fn lex(q: &str) -> Result<Vec<(Tok, Pos)>, ApiError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut row, mut line_start) = (0, 1, 0);
    let malformed =
        |pos: Pos, msg: &str| ApiError::bad_request("MALFORMED_QUERY", located(q, pos, msg));
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos {
            row,
            col: i - line_start + 1,
        };
        if c == '\n' {
            row += 1;
            line_start = i + 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.'))
            {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(malformed(
                            pos,
                            "line 1:0 mismatched character '<EOF>' expecting '''",
                        ))
                    }
                    Some('\'') => break,
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().unwrap_or('\\');
                        let ch = match e {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            // \_ and \% stay escaped for LIKE patterns
                            '_' | '%' => {
                                s.push('\\');
                                e
                            }
                            '\'' | '"' | '\\' => e,
                            _ => {
                                return Err(malformed(
                                    pos,
                                    "Invalid string literal: illegal escape sequence",
                                ))
                            }
                        };
                        s.push(ch);
                        i += 2;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            Tok::Str(s)
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i += 1;
            let temporal = i + 3 < chars.len()
                && chars[start..i + 3].iter().all(char::is_ascii_digit)
                && chars.get(i + 3) == Some(&'-');
            if temporal {
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], 'T' | 'Z' | ':' | '.' | '+' | '-'))
                {
                    i += 1;
                }
                Tok::Temporal(chars[start..i].iter().collect())
            } else {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                Tok::Num(chars[start..i].iter().collect())
            }
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let p = ["!=", "<>", "<=", ">="].into_iter().find(|p| *p == two);
            let p = match p {
                Some(p) => p,
                None => match c {
                    ',' => ",",
                    '(' => "(",
                    ')' => ")",
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    _ => {
                        return Err(malformed(
                            pos,
                            &format!(
                                "line {row}:{} no viable alternative at character '{c}'",
                                pos.col - 1
                            ),
                        ))
                    }
                },
            };
            i += p.len();
            Tok::Punct(p)
        };
        out.push((tok, pos));
    }
    let pos = Pos {
        row,
        col: chars.len() - line_start + 1,
    };
    out.push((Tok::Eof, pos));
    Ok(out)
}

struct Parser<'a> {
    q: &'a str,
    toks: Vec<(Tok, Pos)>,
    i: usize,
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET",
];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> Pos {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> (Tok, Pos) {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        self.i += 1;
        t
    }

    fn unexpected(&self) -> ApiError {
        let shown = match self.peek() {
            Tok::Word(w) | Tok::Num(w) | Tok::Temporal(w) => format!("'{w}'"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Eof => "<EOF>".into(),
        };
        ApiError::bad_request(
            "MALFORMED_QUERY",
            located(self.q, self.pos(), &format!("unexpected token: {shown}")),
        )
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ApiError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        let hit = matches!(self.peek(), Tok::Punct(x) if *x == p);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect(&mut self, p: &str) -> Result<(), ApiError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn name(&mut self) -> Result<Name, ApiError> {
        match self.peek().clone() {
            Tok::Word(w) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&w)) => {
                let (_, pos) = self.bump();
                Ok(Name { text: w, pos })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn count(&mut self) -> Result<usize, ApiError> {
        match self.peek().clone() {
            Tok::Num(n) => match n.parse::<usize>() {
                Ok(v) => {
                    self.i += 1;
                    Ok(v)
                }
                Err(_) => Err(self.unexpected()),
            },
            _ => Err(self.unexpected()),
        }
    }

    fn select(&mut self) -> Result<Select, ApiError> {
        self.expect_kw("SELECT")?;
        let fields = if self.is_kw("COUNT")
            && matches!(self.toks.get(self.i + 1), Some((Tok::Punct("("), _)))
        {
            self.i += 2;
            self.expect(")")?;
            None
        } else {
            let mut names = vec![self.name()?];
            while self.eat(",") {
                names.push(self.name()?);
            }
            Some(names)
        };
        self.expect_kw("FROM")?;
        let object = self.name()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let field = self.name()?;
                let desc = self.eat_kw("DESC");
                if !desc {
                    self.eat_kw("ASC");
                }
                let nulls_last = if self.eat_kw("NULLS") {
                    if self.eat_kw("LAST") {
                        true
                    } else {
                        self.expect_kw("FIRST").map(|()| false)?
                    }
                } else {
                    desc
                };
                order.push(Order {
                    field,
                    desc,
                    nulls_last,
                });
                if !self.eat(",") {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.count()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Select {
            fields,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    /// Terms joined by one connective; mixing AND and OR needs parentheses.
    fn expr(&mut self) -> Result<Expr, ApiError> {
        let mut terms = vec![self.unary()?];
        let mut conj: Option<bool> = None;
        loop {
            let and = if self.is_kw("AND") {
                true
            } else if self.is_kw("OR") {
                false
            } else {
                break;
            };
            if conj.is_some_and(|c| c != and) {
                return Err(self.unexpected());
            }
            conj = Some(and);
            self.i += 1;
            terms.push(self.unary()?);
        }
        Ok(match (conj, terms.len()) {
            (_, 1) => terms.remove(0),
            (Some(false), _) => Expr::Or(terms),
            _ => Expr::And(terms),
        })
    }

    fn unary(&mut self) -> Result<Expr, ApiError> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let e = self.expr()?;
            self.expect(")")?;
            return Ok(e);
        }
        let field = self.name()?;
        if self.eat_kw("LIKE") {
            return match self.bump().0 {
                Tok::Str(s) => Ok(Expr::Like(field, s)),
                _ => {
                    self.i -= 1;
                    Err(self.unexpected())
                }
            };
        }
        let negated = self.is_kw("NOT")
            && matches!(&self.toks.get(self.i + 1), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case("IN"));
        if negated {
            self.i += 1;
        }
        if self.eat_kw("IN") {
            self.expect("(")?;
            let mut values = vec![self.literal()?];
            while self.eat(",") {
                values.push(self.literal()?);
            }
            self.expect(")")?;
            return Ok(Expr::In(field, negated, values));
        }
        let op = match self.peek() {
            Tok::Punct("=") => Op::Eq,
            Tok::Punct("!=") | Tok::Punct("<>") => Op::Ne,
            Tok::Punct("<") => Op::Lt,
            Tok::Punct("<=") => Op::Le,
            Tok::Punct(">") => Op::Gt,
            Tok::Punct(">=") => Op::Ge,
            _ => return Err(self.unexpected()),
        };
        self.i += 1;
        Ok(Expr::Cmp(field, op, self.literal()?))
    }

    fn literal(&mut self) -> Result<Lit, ApiError> {
        let lit = match self.peek().clone() {
            Tok::Str(s) => Lit::Str(s),
            Tok::Temporal(t) => Lit::Temporal(t),
            Tok::Num(n) => match n.parse::<f64>() {
                Ok(v) => Lit::Num(v),
                Err(_) => return Err(self.unexpected()),
            },
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Lit::Null,
            _ => return Err(self.unexpected()),
        };
        self.i += 1;
        Ok(lit)
    }
}

/// Parses one SOQL statement; errors are 400 `MALFORMED_QUERY`.
pub fn parse(q: &str) -> Result<Select, ApiError> {
    let toks = lex(q)?;
    Parser { q, toks, i: 0 }.select()
}
