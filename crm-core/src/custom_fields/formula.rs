//! The formula language of computed custom fields: a hand-written tokenizer and a
//! precedence-climbing parser, a type check against the entity's columns and custom fields at
//! define time, and an evaluator over a record's JSON values at write time.
//!
//! The language:
//! - literals: numbers (`12`, `0.5`), text in single or double quotes (`'a'`, `"b"`), `true`,
//!   `false`;
//! - field references: a column of the record by its bare name (`amount_minor`, `name`,
//!   `expected_close_date`) and a custom field as `custom_fields.<key>` (money fields read as
//!   their amount in minor units); computed custom fields are not referable (roll-ups change
//!   without re-running formulas, and formulas of formulas would need an order);
//! - operators, loosest first: `or`, `and`, `not`, comparisons (`=`, `!=`, `<`, `<=`, `>`,
//!   `>=`), `&` (text concatenation of any values), `+ -`, `* /`, unary `-`;
//! - functions: `if(cond, a, b)`, `coalesce(a, b, …)`, `concat(a, b, …)`, `round(x, digits)`,
//!   `days_between(from, to)` (whole days from `from` to `to`; date-times by their UTC date),
//!   `len(text)`, `lower(text)`, `upper(text)`, `date('YYYY-MM-DD')` (a date from text; empty
//!   when it is not one). There is no `today()`: a formula is computed when its record is
//!   written, so a value depending on the clock would go stale.
//!
//! An empty value (`null`) propagates: any operation on one yields one (division by zero too),
//! except `coalesce`, which takes its first non-empty argument, and `if`, whose branch not
//! taken is not evaluated (an empty condition yields an empty result).
//!
//! Limits, so that no formula takes a write, other organizations' writes or the process down:
//! - A formula has at most [`MAX_FORMULA_LENGTH`] characters and no NUL character (PostgreSQL
//!   cannot store one), and nests at most [`MAX_FORMULA_DEPTH`] deep whatever its shape: every
//!   operator, function call and parenthesis is a level, so a chain `a + b + …` counts one per
//!   operator. Evaluation recurses as deep as the tree, and a deeper tree would overflow the
//!   stack of the write that evaluates it. A stored formula past these limits (defined before
//!   them, or by hand) is refused when the definitions load, with a warning, and not evaluated.
//! - No text is built longer than the longest text a field holds ([`MAX_TEXT_CHARS`]
//!   characters), counted before anything is copied: an operation whose text would pass it
//!   yields an empty value, like a division by zero (the field is removed; `coalesce` takes its
//!   next argument). The write is not refused: the record is the user's, the formula the
//!   admin's, and a long body should not stop a user from saving a note. Fields are read without
//!   a copy, so `len(body)` of a long body still counts it.
//! - Evaluation visits each node of the tree at most once (there are no loops), so its steps
//!   are bounded by the length limit, and the cost of each by the text cap and the size of the
//!   fields it reads: a write's formulas take milliseconds, whatever they are.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use super::definition::{CustomFieldDefinition, CustomFieldType, MAX_TEXT_CHARS};
use crate::record::{Column, Kind};

/// Longest expression accepted, in characters.
pub const MAX_FORMULA_LENGTH: usize = 2000;
/// Deepest nesting of an expression, whatever its shape: each operator, function call and
/// parenthesis is a level (a chain `a + b + …` of n terms is n deep).
pub const MAX_FORMULA_DEPTH: usize = 64;

/// The message that refuses a formula nested past [`MAX_FORMULA_DEPTH`].
fn too_deep() -> String {
    format!(
        "a formula nests at most {MAX_FORMULA_DEPTH} deep (each operator and function call is a level: a chain `a + b + …` counts one per operator)"
    )
}

/// The type of a formula's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Number,
    Text,
    Bool,
    Date,
    Datetime,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Number => "number",
            Ty::Text => "text",
            Ty::Bool => "boolean",
            Ty::Date => "date",
            Ty::Datetime => "datetime",
        }
    }

    /// The custom field type a formula of this type declares.
    pub(crate) fn field_type(self) -> CustomFieldType {
        match self {
            Ty::Number => CustomFieldType::Number,
            Ty::Text => CustomFieldType::Text,
            Ty::Bool => CustomFieldType::Boolean,
            Ty::Date => CustomFieldType::Date,
            Ty::Datetime => CustomFieldType::Datetime,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a number"))?;
            out.push(Token::Num(n));
            continue;
        }
        if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a text literal is not closed".into()),
                    Some(&q) if q == c => {
                        // A doubled quote stands for itself.
                        if chars.get(i + 1) == Some(&c) {
                            text.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(text));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "!=" => Some("!="),
            "<>" => Some("!="),
            "==" => Some("="),
            _ => None,
        };
        if let Some(op) = op {
            out.push(Token::Op(op));
            i += 2;
            continue;
        }
        out.push(match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            '+' => Token::Op("+"),
            '-' => Token::Op("-"),
            '*' => Token::Op("*"),
            '/' => Token::Op("/"),
            '&' => Token::Op("&"),
            '=' => Token::Op("="),
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            other => return Err(format!("unexpected character `{other}`")),
        });
        i += 1;
    }
    Ok(out)
}

/// A function of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    If,
    Coalesce,
    Concat,
    Round,
    DaysBetween,
    Len,
    Lower,
    Upper,
    Date,
}

impl Func {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "if" => Func::If,
            "coalesce" => Func::Coalesce,
            "concat" => Func::Concat,
            "round" => Func::Round,
            "days_between" => Func::DaysBetween,
            "len" => Func::Len,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "date" => Func::Date,
            _ => return None,
        })
    }
}

/// Where a field reference reads.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Column(&'static str),
    Custom { key: String, money: bool },
}

/// A checked expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Field(Field, Ty),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>, Ty),
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// How deep the tree goes (a leaf is 1 deep). Measured without recursion, so that measuring
    /// a tree too deep to evaluate cannot overflow the stack either.
    fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut pending = vec![(self, 1)];
        while let Some((e, depth)) = pending.pop() {
            deepest = deepest.max(depth);
            match e {
                Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) | Expr::Field(..) => {}
                Expr::Neg(e) | Expr::Not(e) => pending.push((e, depth + 1)),
                Expr::Binary(_, l, r, _) => {
                    pending.push((l, depth + 1));
                    pending.push((r, depth + 1));
                }
                Expr::Call(_, args) => pending.extend(args.iter().map(|a| (a, depth + 1))),
            }
        }
        deepest
    }
}

/// What a formula may reference: the entity's columns and its custom field definitions.
pub(crate) struct Schema<'a> {
    pub(crate) columns: &'static [Column],
    pub(crate) defs: &'a [CustomFieldDefinition],
}

impl Schema<'_> {
    fn resolve(&self, name: &str) -> Result<(Field, Ty), String> {
        if let Some(key) = name.strip_prefix("custom_fields.") {
            let d = self
                .defs
                .iter()
                .find(|d| d.key == key)
                .ok_or_else(|| format!("`{key}` is not a custom field of this entity"))?;
            if d.computed.is_some() {
                return Err(format!(
                    "`{key}` is computed; formulas read stored fields only"
                ));
            }
            use CustomFieldType as T;
            let ty = match d.field_type {
                T::Number | T::Currency => Ty::Number,
                T::Text | T::Select | T::Email | T::Url => Ty::Text,
                T::Boolean => Ty::Bool,
                T::Date => Ty::Date,
                T::Datetime => Ty::Datetime,
                T::MultiSelect => return Err(format!("`{key}` is a multi_select, not a value")),
            };
            let money = d.field_type == T::Currency;
            return Ok((
                Field::Custom {
                    key: key.into(),
                    money,
                },
                ty,
            ));
        }
        let c = self
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                format!(
                    "`{name}` is not a field of this entity (custom fields: `custom_fields.<key>`)"
                )
            })?;
        let ty = match c.kind {
            Kind::Text | Kind::Uuid | Kind::Ref { .. } => Ty::Text,
            Kind::Integer => Ty::Number,
            Kind::Bool => Ty::Bool,
            Kind::Date => Ty::Date,
            Kind::Timestamp => Ty::Datetime,
            Kind::Json => return Err(format!("`{name}` is a document, not a value")),
        };
        Ok((Field::Column(c.name), ty))
    }
}

/// The live formulas of one entity's definitions, parsed (one that no longer parses, because a
/// field it read was archived or changed, or because it was stored past a limit of the
/// language, yields nothing and is left alone, with a warning).
pub(crate) fn parse_all(defs: &[CustomFieldDefinition]) -> Vec<(String, Formula)> {
    let Some(entity) = defs
        .first()
        .and_then(|d| d.entity.parse::<crate::entities::EntityKind>().ok())
    else {
        return Vec::new();
    };
    defs.iter()
        .filter(|d| !d.archived)
        .filter_map(|d| match &d.computed {
            Some(super::computation::Computed::Formula(f)) => {
                let schema = Schema {
                    columns: entity.columns(),
                    defs,
                };
                match parse(&f.expression, &schema) {
                    Ok(parsed) => Some((d.key.clone(), parsed)),
                    Err(e) => {
                        tracing::warn!(key = %d.key, error = %e, "a formula no longer parses");
                        None
                    }
                }
            }
            _ => None,
        })
        .collect()
}

/// A parsed and type-checked formula.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Formula {
    expr: Expr,
    ty: Ty,
}

/// Parses and checks `src` against `schema`; the message says what is wrong and where.
pub(crate) fn parse(src: &str, schema: &Schema<'_>) -> Result<Formula, String> {
    if src.chars().count() > MAX_FORMULA_LENGTH {
        return Err(format!(
            "a formula has at most {MAX_FORMULA_LENGTH} characters"
        ));
    }
    if src.contains('\0') {
        return Err("a formula must not contain NUL characters".into());
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        schema,
        depth: 0,
    };
    let expr = p.expr(0)?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(format!("unexpected {} after the expression", describe(t)));
    }
    // The parser bounds its own recursion, but a chain grows the tree in a loop.
    if expr.depth() > MAX_FORMULA_DEPTH {
        return Err(too_deep());
    }
    let ty = type_of(&expr);
    Ok(Formula { expr, ty })
}

impl Formula {
    /// The fields it reads: column names and custom field keys.
    pub(crate) fn reads(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut pending = vec![&self.expr];
        while let Some(e) = pending.pop() {
            match e {
                Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => {}
                Expr::Field(Field::Column(name), _) => out.push(*name),
                Expr::Field(Field::Custom { key, .. }, _) => out.push(key.as_str()),
                Expr::Neg(e) | Expr::Not(e) => pending.push(e),
                Expr::Binary(_, l, r, _) => pending.extend([&**l, &**r]),
                Expr::Call(_, args) => pending.extend(args),
            }
        }
        out
    }

    /// The type of its value.
    pub(crate) fn ty(&self) -> Ty {
        self.ty
    }

    /// Its value for a record (`fields`: its columns; `custom`: its custom fields), in the
    /// stored form of its declared type; `None` when empty.
    pub(crate) fn eval(
        &self,
        fields: &Map<String, Value>,
        custom: &Map<String, Value>,
    ) -> Option<Value> {
        let v = eval(&self.expr, fields, custom)?;
        match v {
            V::Num(n) => number(n),
            // A field read as it is may be longer than a text field holds.
            V::Text(t) if fits(&[&t]) => Some(Value::String(t.into_owned())),
            V::Text(_) => None,
            V::Bool(b) => Some(Value::Bool(b)),
            V::Date(d) => Some(Value::String(d.format("%Y-%m-%d").to_string())),
            V::Datetime(t) => Some(Value::String(
                t.to_rfc3339_opts(SecondsFormat::Micros, true),
            )),
        }
    }
}

/// A JSON number: an integer when the value is one, none for NaN or infinities.
fn number(n: f64) -> Option<Value> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Some(Value::Number(Number::from(n as i64)))
    } else {
        Number::from_f64(n).map(Value::Number)
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Num(n) => format!("number {n}"),
        Token::Str(s) => format!("text '{s}'"),
        Token::Ident(i) => format!("`{i}`"),
        Token::Op(o) => format!("`{o}`"),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

struct Parser<'s, 'a> {
    tokens: Vec<Token>,
    pos: usize,
    schema: &'s Schema<'a>,
    depth: usize,
}

/// Binding power of a binary operator (higher binds tighter).
fn power(op: &str) -> Option<u8> {
    Some(match op {
        "or" => 1,
        "and" => 2,
        "=" | "!=" | "<" | "<=" | ">" | ">=" => 4,
        "&" => 5,
        "+" | "-" => 6,
        "*" | "/" => 7,
        _ => return None,
    })
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {what}, found {}", describe(&t))),
            None => Err(format!("expected {what} at the end")),
        }
    }

    fn binary_op(&self) -> Option<&'static str> {
        match self.peek()? {
            Token::Op(o) => Some(o),
            Token::Ident(i) if i == "and" => Some("and"),
            Token::Ident(i) if i == "or" => Some("or"),
            _ => None,
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_FORMULA_DEPTH {
            return Err(too_deep());
        }
        let mut left = self.unary()?;
        while let Some(op) = self.binary_op() {
            let Some(p) = power(op) else { break };
            if p <= min {
                break;
            }
            self.pos += 1;
            let right = self.expr(p)?;
            left = binary(op, left, right)?;
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Token::Op("-")) => {
                self.pos += 1;
                let e = self.expr(7)?;
                want(&e, Ty::Number, "`-`")?;
                Ok(Expr::Neg(Box::new(e)))
            }
            Some(Token::Ident(i)) if i == "not" => {
                self.pos += 1;
                let e = self.expr(3)?;
                want(&e, Ty::Bool, "`not`")?;
                Ok(Expr::Not(Box::new(e)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            None => Err("the formula ends too early".into()),
            Some(Token::Num(n)) => Ok(Expr::Num(n)),
            Some(Token::Str(s)) => Ok(Expr::Str(s)),
            Some(Token::LParen) => {
                let e = self.expr(0)?;
                self.expect(Token::RParen, "`)`")?;
                Ok(e)
            }
            Some(Token::Ident(name)) => match name.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                _ if self.peek() == Some(&Token::LParen) => {
                    let f = Func::of(&name).ok_or_else(|| format!("unknown function `{name}`"))?;
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Token::RParen) {
                        loop {
                            args.push(self.expr(0)?);
                            if self.peek() == Some(&Token::Comma) {
                                self.pos += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect(Token::RParen, "`)` after the arguments")?;
                    call(f, &name, args)
                }
                _ => {
                    let (field, ty) = self.schema.resolve(&name)?;
                    Ok(Expr::Field(field, ty))
                }
            },
            Some(t) => Err(format!("unexpected {}", describe(&t))),
        }
    }
}

fn type_of(e: &Expr) -> Ty {
    match e {
        Expr::Num(_) | Expr::Neg(_) => Ty::Number,
        Expr::Str(_) => Ty::Text,
        Expr::Bool(_) | Expr::Not(_) => Ty::Bool,
        Expr::Field(_, ty) | Expr::Binary(_, _, _, ty) => *ty,
        Expr::Call(f, args) => match f {
            Func::If => args.get(1).map_or(Ty::Text, type_of),
            Func::Coalesce => args.first().map_or(Ty::Text, type_of),
            Func::Concat | Func::Lower | Func::Upper => Ty::Text,
            Func::Round | Func::DaysBetween | Func::Len => Ty::Number,
            Func::Date => Ty::Date,
        },
    }
}

fn want(e: &Expr, ty: Ty, context: &str) -> Result<(), String> {
    let got = type_of(e);
    if got == ty {
        Ok(())
    } else {
        Err(format!(
            "{context} takes a {}, not a {}",
            ty.name(),
            got.name()
        ))
    }
}

fn binary(op: &'static str, l: Expr, r: Expr) -> Result<Expr, String> {
    let (lt, rt) = (type_of(&l), type_of(&r));
    let ty = match op {
        "and" | "or" => {
            want(&l, Ty::Bool, &format!("`{op}`"))?;
            want(&r, Ty::Bool, &format!("`{op}`"))?;
            Ty::Bool
        }
        "+" | "-" | "*" | "/" => {
            want(&l, Ty::Number, &format!("`{op}`"))?;
            want(&r, Ty::Number, &format!("`{op}`"))?;
            Ty::Number
        }
        "&" => Ty::Text,
        _ => {
            if lt != rt {
                return Err(format!(
                    "`{op}` compares values of one type, not a {} with a {}",
                    lt.name(),
                    rt.name()
                ));
            }
            if lt == Ty::Bool && !matches!(op, "=" | "!=") {
                return Err(format!("booleans compare with = and != only, not `{op}`"));
            }
            Ty::Bool
        }
    };
    Ok(Expr::Binary(op, Box::new(l), Box::new(r), ty))
}

fn call(f: Func, name: &str, args: Vec<Expr>) -> Result<Expr, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{name}` takes {n} argument(s), not {}",
                args.len()
            ))
        }
    };
    let ctx = format!("`{name}`");
    match f {
        Func::If => {
            arity(3)?;
            want(&args[0], Ty::Bool, "the condition of `if`")?;
            let (a, b) = (type_of(&args[1]), type_of(&args[2]));
            if a != b {
                return Err(format!(
                    "the branches of `if` must have one type, not {} and {}",
                    a.name(),
                    b.name()
                ));
            }
        }
        Func::Coalesce => {
            if args.is_empty() {
                return Err("`coalesce` takes at least one argument".into());
            }
            let first = type_of(&args[0]);
            if args.iter().any(|a| type_of(a) != first) {
                return Err("the arguments of `coalesce` must have one type".into());
            }
        }
        Func::Concat => {
            if args.is_empty() {
                return Err("`concat` takes at least one argument".into());
            }
        }
        Func::Round => {
            arity(2)?;
            want(&args[0], Ty::Number, &ctx)?;
            want(&args[1], Ty::Number, &ctx)?;
        }
        Func::DaysBetween => {
            arity(2)?;
            for a in &args {
                if !matches!(type_of(a), Ty::Date | Ty::Datetime) {
                    return Err(format!(
                        "`days_between` takes dates or date-times, not a {}",
                        type_of(a).name()
                    ));
                }
            }
        }
        Func::Len | Func::Lower | Func::Upper | Func::Date => {
            arity(1)?;
            want(&args[0], Ty::Text, &ctx)?;
        }
    }
    Ok(Expr::Call(f, args))
}

/// A value during evaluation; a text borrows from the record or the formula until an operation
/// builds a new one.
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    Num(f64),
    Text(Cow<'a, str>),
    Bool(bool),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
}

impl V<'_> {
    fn num(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn text(&self) -> Cow<'_, str> {
        match self {
            V::Num(n) => match number(*n) {
                Some(v) => Cow::Owned(v.to_string()),
                None => Cow::Borrowed(""),
            },
            V::Text(t) => Cow::Borrowed(t),
            V::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            V::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
            V::Datetime(t) => Cow::Owned(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }

    fn date(&self) -> Option<NaiveDate> {
        match self {
            V::Date(d) => Some(*d),
            V::Datetime(t) => Some(t.date_naive()),
            _ => None,
        }
    }
}

/// Whether `parts` together hold at most [`MAX_TEXT_CHARS`] characters. A character takes one
/// to four bytes, so a part is counted only when its length in bytes leaves it open.
fn fits(parts: &[&str]) -> bool {
    let mut left = MAX_TEXT_CHARS;
    parts.iter().all(|p| {
        if p.len() > 4 * left {
            return false;
        }
        match left.checked_sub(p.chars().count()) {
            Some(rest) => {
                left = rest;
                true
            }
            None => false,
        }
    })
}

/// The text of `parts` joined; empty when it would pass [`MAX_TEXT_CHARS`] characters (found
/// before anything is copied).
fn joined<'a>(parts: &[&str]) -> Option<V<'a>> {
    fits(parts).then(|| V::Text(Cow::Owned(parts.concat())))
}

/// `text` in lower or upper case; empty past [`MAX_TEXT_CHARS`] characters, before or after
/// (a case can take more characters than another: `ß` is `SS`).
fn cased<'a>(text: &str, upper: bool) -> Option<V<'a>> {
    if !fits(&[text]) {
        return None;
    }
    let out = if upper {
        text.to_uppercase()
    } else {
        text.to_lowercase()
    };
    fits(&[&out]).then_some(V::Text(Cow::Owned(out)))
}

fn read(value: Option<&Value>, ty: Ty, money: bool) -> Option<V<'_>> {
    let value = value?;
    let value = if money {
        value.get("amount_minor")?
    } else {
        value
    };
    Some(match ty {
        Ty::Number => V::Num(value.as_f64()?),
        Ty::Text => V::Text(Cow::Borrowed(value.as_str()?)),
        Ty::Bool => V::Bool(value.as_bool()?),
        Ty::Date => V::Date(NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()?),
        Ty::Datetime => V::Datetime(
            DateTime::parse_from_rfc3339(value.as_str()?)
                .ok()?
                .with_timezone(&Utc),
        ),
    })
}

fn eval<'a>(
    e: &'a Expr,
    fields: &'a Map<String, Value>,
    custom: &'a Map<String, Value>,
) -> Option<V<'a>> {
    let ev = |e: &'a Expr| eval(e, fields, custom);
    match e {
        Expr::Num(n) => Some(V::Num(*n)),
        Expr::Str(s) => Some(V::Text(Cow::Borrowed(s))),
        Expr::Bool(b) => Some(V::Bool(*b)),
        Expr::Field(Field::Column(name), ty) => read(fields.get(*name), *ty, false),
        Expr::Field(Field::Custom { key, money }, ty) => read(custom.get(key), *ty, *money),
        Expr::Neg(e) => Some(V::Num(-ev(e)?.num()?)),
        Expr::Not(e) => match ev(e)? {
            V::Bool(b) => Some(V::Bool(!b)),
            _ => None,
        },
        Expr::Binary(op, l, r, _) => {
            let (l, r) = (ev(l)?, ev(r)?);
            Some(match *op {
                "&" => return joined(&[&l.text(), &r.text()]),
                "and" | "or" => match (l, r) {
                    (V::Bool(a), V::Bool(b)) => V::Bool(if *op == "and" { a && b } else { a || b }),
                    _ => return None,
                },
                "+" | "-" | "*" | "/" => {
                    let (a, b) = (l.num()?, r.num()?);
                    let n = match *op {
                        "+" => a + b,
                        "-" => a - b,
                        "*" => a * b,
                        _ if b == 0.0 => return None,
                        _ => a / b,
                    };
                    if !n.is_finite() {
                        return None;
                    }
                    V::Num(n)
                }
                cmp => {
                    let ord = match (&l, &r) {
                        (V::Num(a), V::Num(b)) => a.partial_cmp(b)?,
                        (V::Text(a), V::Text(b)) => a.cmp(b),
                        (V::Bool(a), V::Bool(b)) => a.cmp(b),
                        (V::Date(a), V::Date(b)) => a.cmp(b),
                        (V::Datetime(a), V::Datetime(b)) => a.cmp(b),
                        _ => return None,
                    };
                    use std::cmp::Ordering::*;
                    V::Bool(match cmp {
                        "=" => ord == Equal,
                        "!=" => ord != Equal,
                        "<" => ord == Less,
                        "<=" => ord != Greater,
                        ">" => ord == Greater,
                        _ => ord != Less,
                    })
                }
            })
        }
        Expr::Call(f, args) => match f {
            Func::If => match ev(&args[0])? {
                V::Bool(true) => ev(&args[1]),
                V::Bool(false) => ev(&args[2]),
                _ => None,
            },
            Func::Coalesce => args.iter().find_map(ev),
            Func::Concat => {
                let values = args.iter().map(ev).collect::<Option<Vec<_>>>()?;
                let texts: Vec<_> = values.iter().map(V::text).collect();
                let parts: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
                joined(&parts)
            }
            Func::Round => {
                let (x, digits) = (ev(&args[0])?.num()?, ev(&args[1])?.num()?);
                let digits = digits.clamp(-15.0, 15.0).trunc() as i32;
                let scale = 10f64.powi(digits);
                let n = (x * scale).round() / scale;
                n.is_finite().then_some(V::Num(n))
            }
            Func::DaysBetween => {
                let (a, b) = (ev(&args[0])?.date()?, ev(&args[1])?.date()?);
                Some(V::Num((b - a).num_days() as f64))
            }
            Func::Len => match ev(&args[0])? {
                V::Text(t) => Some(V::Num(t.chars().count() as f64)),
                _ => None,
            },
            Func::Lower => cased(&ev(&args[0])?.text(), false),
            Func::Upper => cased(&ev(&args[0])?.text(), true),
            Func::Date => NaiveDate::parse_from_str(&ev(&args[0])?.text(), "%Y-%m-%d")
                .ok()
                .map(V::Date),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLUMNS: &[Column] = &[
        Column::of::<String>("name"),
        Column::of::<Option<i64>>("amount_minor"),
        Column::of::<Option<NaiveDate>>("expected_close_date"),
    ];

    fn run(src: &str, fields: Value) -> Result<Option<Value>, String> {
        let schema = Schema {
            columns: COLUMNS,
            defs: &[],
        };
        let f = parse(src, &schema)?;
        let fields = fields.as_object().cloned().unwrap_or_default();
        Ok(f.eval(&fields, &Map::new()))
    }

    #[test]
    fn arithmetic_text_dates_and_conditionals() {
        let rec =
            json!({"name": "Acme", "amount_minor": 1000, "expected_close_date": "2026-03-01"});
        assert_eq!(
            run("amount_minor * 2 + 1", rec.clone()),
            Ok(Some(json!(2001)))
        );
        assert_eq!(
            run("amount_minor / 3", rec.clone()),
            Ok(Some(json!(1000.0 / 3.0)))
        );
        assert_eq!(
            run("round(amount_minor / 3, 1)", rec.clone()),
            Ok(Some(json!(333.3)))
        );
        assert_eq!(
            run("name & ' #' & 7", rec.clone()),
            Ok(Some(json!("Acme #7")))
        );
        assert_eq!(
            run("concat(upper(name), len(name))", rec.clone()),
            Ok(Some(json!("ACME4")))
        );
        assert_eq!(
            run(
                "days_between(date(\"2026-02-01\"), expected_close_date)",
                rec.clone()
            ),
            Ok(Some(json!(28)))
        );
        assert!(
            run(
                "days_between('2026-02-01', expected_close_date)",
                rec.clone()
            )
            .unwrap_err()
            .contains("dates")
        );
        assert_eq!(
            run(
                "if(amount_minor >= 1000 and not (name = 'x'), 'big', 'small')",
                rec.clone()
            ),
            Ok(Some(json!("big")))
        );
        assert_eq!(run("-amount_minor", rec.clone()), Ok(Some(json!(-1000))));
        assert_eq!(run("1 - 2 - 3", rec.clone()), Ok(Some(json!(-4))));
        assert_eq!(run("2 * 3 + 4 * 5", rec), Ok(Some(json!(26))));
    }

    #[test]
    fn nulls_propagate_and_division_by_zero_is_empty() {
        let rec = json!({"name": "Acme"});
        assert_eq!(run("amount_minor + 1", rec.clone()), Ok(None));
        assert_eq!(
            run("coalesce(amount_minor, 0) + 1", rec.clone()),
            Ok(Some(json!(1)))
        );
        assert_eq!(run("10 / 0", rec.clone()), Ok(None));
        assert_eq!(run("name & amount_minor", rec), Ok(None));
    }

    #[test]
    fn type_and_syntax_errors() {
        let rec = json!({});
        for (src, says) in [
            ("name + 1", "`+` takes a number, not a text"),
            ("nope * 2", "`nope` is not a field"),
            ("if(1, 2, 3)", "condition of `if`"),
            ("if(true, 2, 'x')", "branches of `if`"),
            ("frob(1)", "unknown function `frob`"),
            ("(1 + 2", "expected `)`"),
            ("1 2", "unexpected number 2"),
            ("'open", "not closed"),
            ("name < 3", "compares values of one type"),
            ("1 $ 2", "unexpected character"),
        ] {
            let err = run(src, rec.clone()).unwrap_err();
            assert!(err.contains(says), "{src}: {err}");
        }
        assert!(
            run(&"1+".repeat(1500), rec)
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn depth_is_bounded_whatever_the_shape() {
        let rec = json!({});
        let chain = |terms: usize| vec!["1"; terms].join("+");
        assert_eq!(
            run(&chain(MAX_FORMULA_DEPTH), rec.clone()),
            Ok(Some(json!(MAX_FORMULA_DEPTH)))
        );
        // A chain grows the tree in the parser's loop, not in its recursion.
        let nested = format!(
            "{}1{}",
            "(1+".repeat(MAX_FORMULA_DEPTH),
            ")".repeat(MAX_FORMULA_DEPTH)
        );
        for deep in [chain(MAX_FORMULA_DEPTH + 1), chain(600), nested] {
            let err = run(&deep, rec.clone()).unwrap_err();
            assert!(err.contains("nests at most"), "{err}");
        }
    }

    #[test]
    fn built_text_is_capped() {
        let half = MAX_TEXT_CHARS / 2;
        let rec = json!({ "name": "é".repeat(half) });
        assert_eq!(
            run("len(name & name)", rec.clone()),
            Ok(Some(json!(MAX_TEXT_CHARS)))
        );
        assert_eq!(run("name & name & 'x'", rec.clone()), Ok(None));
        assert_eq!(run("len(concat(name, name, 1))", rec.clone()), Ok(None));
        assert_eq!(
            run("coalesce(name & name & 'x', 'long')", rec.clone()),
            Ok(Some(json!("long")))
        );
        // A field is read as it is, however long; only what a formula builds is capped.
        let rec = json!({ "name": "ß".repeat(MAX_TEXT_CHARS * 3) });
        assert_eq!(
            run("len(name)", rec.clone()),
            Ok(Some(json!(MAX_TEXT_CHARS * 3)))
        );
        assert_eq!(run("name", rec.clone()), Ok(None));
        assert_eq!(run("lower(name)", rec), Ok(None));
        // Upper case can take more characters than the text had.
        let rec = json!({ "name": "ß".repeat(half + 1) });
        assert_eq!(
            run("len(lower(name))", rec.clone()),
            Ok(Some(json!(half + 1)))
        );
        assert_eq!(run("upper(name)", rec), Ok(None));
    }

    #[test]
    fn nul_characters_are_refused() {
        let err = run("name & 'a\u{0}'", json!({})).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }
}
