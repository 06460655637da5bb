//! Many rows for one table, inserted in as few statements as the backend allows.
//!
//! PostgreSQL gets one statement whatever the number of rows: each column travels as one array
//! parameter and `unnest` turns the arrays back into rows
//! (`insert into t (a, b) select * from unnest($1, $2)`). The statement text stays the same
//! for any batch size, so PostgreSQL parses and plans a few dozen parameters instead of tens of
//! thousands, and the statement is prepared once per connection. SQLite has no arrays: it gets
//! multi-row `values` lists, cut to stay under its 32,766 parameters a statement.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Arg, Backend, Sql};
use crate::error::{Error, Result};

/// The values of one column of many rows, bound as one PostgreSQL array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Array {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    Json(Vec<Option<Value>>),
}

impl Array {
    /// An empty array of the type of `first`, with room for `n` values.
    fn like(first: &Arg, n: usize) -> Result<Self> {
        Ok(match first {
            Arg::Uuid(_) => Self::Uuid(Vec::with_capacity(n)),
            Arg::Text(_) => Self::Text(Vec::with_capacity(n)),
            Arg::Int(_) => Self::Int(Vec::with_capacity(n)),
            Arg::Float(_) => Self::Float(Vec::with_capacity(n)),
            Arg::Bool(_) => Self::Bool(Vec::with_capacity(n)),
            Arg::Time(_) => Self::Time(Vec::with_capacity(n)),
            Arg::Date(_) => Self::Date(Vec::with_capacity(n)),
            Arg::Json(_) => Self::Json(Vec::with_capacity(n)),
            Arg::Array(_) => return Err(Error::Internal("an array inside an array".into())),
        })
    }

    /// Appends `value`, which must have the array's type.
    fn push(&mut self, value: Arg) -> Result<()> {
        match (self, value) {
            (Self::Uuid(a), Arg::Uuid(v)) => a.push(v),
            (Self::Text(a), Arg::Text(v)) => a.push(v),
            (Self::Int(a), Arg::Int(v)) => a.push(v),
            (Self::Float(a), Arg::Float(v)) => a.push(v),
            (Self::Bool(a), Arg::Bool(v)) => a.push(v),
            (Self::Time(a), Arg::Time(v)) => a.push(v),
            (Self::Date(a), Arg::Date(v)) => a.push(v),
            (Self::Json(a), Arg::Json(v)) => a.push(v),
            (array, value) => {
                return Err(Error::Internal(format!(
                    "a column mixes types: {value:?} in {array:?}"
                )));
            }
        }
        Ok(())
    }
}

/// Rows to insert into one table, one [`Arg`] per column in the order of the column list.
#[derive(Debug)]
pub(crate) struct Rows {
    table: &'static str,
    columns: Vec<&'static str>,
    /// Row after row.
    cells: Vec<Arg>,
    /// The columns to return, when the rows are read back.
    returning: Option<&'static str>,
}

impl Rows {
    /// No rows yet, for `table` and its `columns` (SQL identifiers of the registry or the
    /// source), with room for `capacity` rows.
    pub(crate) fn new(table: &'static str, columns: Vec<&'static str>, capacity: usize) -> Self {
        let cells = Vec::with_capacity(columns.len() * capacity);
        Self {
            table,
            columns,
            cells,
            returning: None,
        }
    }

    /// Reads the inserted rows back: `columns` (a column list) after the statements' tail.
    pub(crate) fn returning(mut self, columns: &'static str) -> Self {
        self.returning = Some(columns);
        self
    }

    /// Appends a cell of the current row; a row is complete after one cell per column.
    pub(crate) fn push(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.cells.push(value.into());
        self
    }

    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.cells.len() / self.columns.len().max(1)
    }

    /// The statements that insert the rows on `backend`, each ending with `tail` (such as
    /// `" returning *"`, or `""`).
    ///
    /// # Errors
    /// [`Error::Internal`] when a row is incomplete or a column mixes value types.
    pub(crate) fn statements(self, backend: Backend, tail: &'static str) -> Result<Vec<Sql>> {
        let width = self.columns.len();
        if width == 0 || !self.cells.len().is_multiple_of(width) {
            return Err(Error::Internal(format!(
                "{} values for {width} columns of {}",
                self.cells.len(),
                self.table
            )));
        }
        if self.cells.is_empty() {
            return Ok(Vec::new());
        }
        match backend {
            Backend::Postgres => self.unnest(tail).map(|q| vec![q]),
            Backend::Sqlite => Ok(self.values(tail)),
        }
    }

    /// `insert into t (…) ` up to the rows.
    fn head(&self) -> Sql {
        let mut q = Sql::new("insert into ");
        q.push(self.table).push(" (");
        for (i, c) in self.columns.iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " }).push(c);
        }
        q.push(") ");
        q
    }

    /// One statement, one array per column.
    fn unnest(self, tail: &'static str) -> Result<Sql> {
        let mut q = self.head();
        let width = self.columns.len();
        let n = self.len();
        let mut arrays = Vec::with_capacity(width);
        for first in &self.cells[..width] {
            arrays.push(Array::like(first, n)?);
        }
        for (i, cell) in self.cells.into_iter().enumerate() {
            arrays[i % width].push(cell)?;
        }
        q.push("select * from unnest(");
        for (i, array) in arrays.into_iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " })
                .bind(Arg::Array(array));
        }
        q.push(")").push(tail);
        if let Some(columns) = self.returning {
            q.push(" returning ").push(columns);
        }
        Ok(q)
    }

    /// `values (…), (…)` statements of at most 30,000 parameters each.
    fn values(self, tail: &'static str) -> Vec<Sql> {
        let width = self.columns.len();
        let per_statement = (30_000 / width).max(1);
        let head = self.head();
        let returning = self.returning;
        let mut statements = Vec::new();
        let mut cells = self.cells.into_iter().peekable();
        while cells.peek().is_some() {
            let mut q = head.clone();
            q.push("values ");
            for row in 0..per_statement {
                if cells.peek().is_none() {
                    break;
                }
                q.push(if row == 0 { "(" } else { ", (" });
                q.bind_list(cells.by_ref().take(width)).push(")");
            }
            q.push(tail);
            if let Some(columns) = returning {
                q.push(" returning ").push(columns);
            }
            statements.push(q);
        }
        statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_rows() -> Rows {
        let mut rows = Rows::new("t", vec!["a", "b"], 3);
        for i in 0..3 {
            rows.push(i64::from(i)).push(Some(format!("v{i}")));
        }
        rows
    }

    #[test]
    fn one_unnest_statement_of_one_array_per_column() {
        let q = three_rows()
            .returning("a, b")
            .statements(Backend::Postgres, "")
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            q[0].text(),
            "insert into t (a, b) select * from unnest($1, $2) returning a, b"
        );
        assert_eq!(
            q[0].args(),
            [
                Arg::Array(Array::Int(vec![Some(0), Some(1), Some(2)])),
                Arg::Array(Array::Text(vec![
                    Some("v0".into()),
                    Some("v1".into()),
                    Some("v2".into())
                ])),
            ]
        );
    }

    #[test]
    fn values_lists_where_there_are_no_arrays() {
        let q = three_rows().statements(Backend::Sqlite, "").unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            q[0].text(),
            "insert into t (a, b) values ($1, $2), ($3, $4), ($5, $6)"
        );
        assert_eq!(q[0].args()[5], Arg::Text(Some("v2".into())));
    }

    #[test]
    fn values_statements_stay_under_the_parameter_limit() {
        let mut rows = Rows::new("t", vec!["a", "b", "c"], 25_000);
        for i in 0..25_000_i64 {
            rows.push(i).push(i).push(i);
        }
        let q = rows.statements(Backend::Sqlite, "").unwrap();
        assert_eq!(q.len(), 3);
        assert!(q.iter().all(|q| q.args().len() <= 30_000));
        assert_eq!(q.iter().map(|q| q.args().len()).sum::<usize>(), 75_000);
    }

    #[test]
    fn incomplete_rows_and_mixed_columns_are_refused() {
        let mut rows = Rows::new("t", vec!["a", "b"], 1);
        rows.push(1_i64);
        assert!(rows.statements(Backend::Sqlite, "").is_err());
        let mut rows = Rows::new("t", vec!["a"], 2);
        rows.push(1_i64).push("x");
        assert!(rows.statements(Backend::Postgres, "").is_err());
        let empty = Rows::new("t", vec!["a"], 0);
        assert!(empty.statements(Backend::Postgres, "").unwrap().is_empty());
    }
}
