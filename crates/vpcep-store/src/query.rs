//! Small helpers for building filtered, paged queries with `$n` placeholders.

use crate::conn::{FromCol, Query, QueryScalar};
use vpcep_domain::list::{Page, SortDir, SortKey};

/// `$first, $first+1, ...` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `ORDER BY` for a page: the sort column, then insertion order as the tie-breaker.
pub(crate) fn order_by(page: &Page) -> String {
    let col = match page.sort_key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
    };
    let dir = match page.sort_dir {
        SortDir::Asc => "ASC",
        SortDir::Desc => "DESC",
    };
    format!("ORDER BY {col} {dir}, seq {dir}")
}

/// `LIMIT .. OFFSET ..` of a page (numbers, validated by the domain).
pub(crate) fn limit_offset(page: &Page) -> String {
    format!("LIMIT {} OFFSET {}", page.limit, page.offset)
}

/// A conjunction of conditions with their text bind values, numbered in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Where {
    conds: Vec<String>,
    binds: Vec<String>,
}

impl Where {
    /// Adds `cond`, where `?` stands for `value`'s placeholder.
    pub(crate) fn and(&mut self, cond: &str, value: impl Into<String>) -> &mut Self {
        self.binds.push(value.into());
        self.conds
            .push(cond.replace('?', &format!("${}", self.binds.len())));
        self
    }

    /// Adds `col = value`.
    pub(crate) fn eq(&mut self, col: &str, value: impl Into<String>) -> &mut Self {
        self.and(&format!("{col} = ?"), value)
    }

    /// Adds a case-insensitive substring match on `col`.
    pub(crate) fn contains_ci(&mut self, col: &str, needle: &str) -> &mut Self {
        self.and(
            &format!("lower({col}) LIKE ? ESCAPE '\\'"),
            format!("%{}%", like_escape(&needle.to_lowercase())),
        )
    }

    /// Adds `col IN (values)`; an empty list matches nothing.
    pub(crate) fn is_in(&mut self, col: &str, values: &[String]) -> &mut Self {
        if values.is_empty() {
            self.conds.push("1 = 0".into());
            return self;
        }
        let first = self.binds.len() + 1;
        self.conds
            .push(format!("{col} IN ({})", placeholders(first, values.len())));
        self.binds.extend(values.iter().cloned());
        self
    }

    /// Adds `(col1 IN (values) OR col2 IN (values) ...)`; an empty list matches nothing.
    pub(crate) fn any_in(&mut self, cols: &[&str], values: &[String]) -> &mut Self {
        if values.is_empty() {
            self.conds.push("1 = 0".into());
            return self;
        }
        let mut ors = Vec::with_capacity(cols.len());
        for col in cols {
            let first = self.binds.len() + 1;
            ors.push(format!("{col} IN ({})", placeholders(first, values.len())));
            self.binds.extend(values.iter().cloned());
        }
        self.conds.push(format!("({})", ors.join(" OR ")));
        self
    }

    /// Adds `(col LIKE p1 ESCAPE '\' OR col LIKE p2 ...)`; an empty list matches nothing.
    pub(crate) fn any_like(&mut self, col: &str, patterns: &[String]) -> &mut Self {
        if patterns.is_empty() {
            self.conds.push("1 = 0".into());
            return self;
        }
        let mut ors = Vec::with_capacity(patterns.len());
        for p in patterns {
            self.binds.push(p.clone());
            ors.push(format!("{col} LIKE ${} ESCAPE '\\'", self.binds.len()));
        }
        self.conds.push(format!("({})", ors.join(" OR ")));
        self
    }

    /// The SQL after `WHERE`.
    pub(crate) fn sql(&self) -> String {
        if self.conds.is_empty() {
            "1 = 1".into()
        } else {
            self.conds.join(" AND ")
        }
    }

    /// Binds the values to a query built from [`Where::sql`].
    pub(crate) fn bind<'q>(&self, q: Query<'q>) -> Query<'q> {
        self.binds.iter().fold(q, |q, b| q.bind(b))
    }

    /// Binds the values to a scalar query built from [`Where::sql`].
    pub(crate) fn bind_scalar<'q, O: FromCol>(&self, q: QueryScalar<'q, O>) -> QueryScalar<'q, O> {
        self.binds.iter().fold(q, |q, b| q.bind(b))
    }
}
