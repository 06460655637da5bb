//! The dialect seam: every SQL difference between PostgreSQL and SQLite, in one place. Code above
//! storage asks the connection's [`Backend`] for the piece it needs instead of matching on it.

use serde_json::Value;
use uuid::Uuid;

use super::{Arg, Backend, FieldKey, Sql};

impl Backend {
    /// What makes a `select` lock the rows it reads, to update them, until the transaction ends:
    /// `for no key update` on PostgreSQL; nothing on SQLite, where a writing transaction (`begin
    /// immediate`) already holds the database's write lock.
    ///
    /// `for no key update`, not `for update`: the library never changes a key (`organization_id`,
    /// `id`) of a row it updates, and this lock does not conflict with the `for key share` lock
    /// that a foreign-key check of a concurrent insert or update of a child takes on the parent.
    /// With `for update`, writers of children of one parent that refresh its roll-ups each held
    /// the share lock and waited for the others' to upgrade it: a deadlock
    /// (`tests/behaviour/rollup_concurrency.rs`). A `delete` still takes the full lock itself.
    pub(crate) fn lock_rows(self) -> &'static str {
        match self {
            Backend::Postgres => " for no key update",
            Backend::Sqlite => "",
        }
    }

    /// The statement that begins a transaction that will write: on SQLite `begin immediate`,
    /// so that two writers queue on the busy timeout instead of failing when a read lock would
    /// have to be upgraded.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Postgres => "begin",
            Backend::Sqlite => "begin immediate",
        }
    }

    /// Whether an append to the event log takes its change-feed position as it writes (SQLite,
    /// which writes one transaction at a time) rather than at commit (PostgreSQL's deferred
    /// trigger, migration `0008_change_feed`).
    pub(crate) fn stamps_feed_on_write(self) -> bool {
        self == Backend::Sqlite
    }

    /// The change feed's `select`, up to the organization to bind: each event with its
    /// position as `feed_position`, the event table aliased `e`.
    pub(crate) fn feed_select(self) -> &'static str {
        match self {
            Backend::Postgres => {
                "select c.position as feed_position, e.* from feed_commits c join events e on e.organization_id = c.organization_id and e.txid = c.txid where c.organization_id = "
            }
            Backend::Sqlite => {
                "select e.position as feed_position, e.* from events e where e.organization_id = "
            }
        }
    }

    /// The change-feed position in [`Backend::feed_select`]'s query.
    pub(crate) fn feed_position(self) -> &'static str {
        match self {
            Backend::Postgres => "c.position",
            Backend::Sqlite => "e.position",
        }
    }

    /// The full-text query for `words` (letters and digits only, so nothing in them is
    /// syntax): every word as a prefix. PostgreSQL `tsquery` text, or an FTS5 `match` string.
    pub(crate) fn search_match(self, words: &[String]) -> String {
        let mut out = String::new();
        for (i, w) in words.iter().enumerate() {
            match self {
                Backend::Postgres => {
                    out.push_str(if i > 0 { " & " } else { "" });
                    out.push_str(w);
                    out.push_str(":*");
                }
                Backend::Sqlite => {
                    out.push_str(if i > 0 { " \"" } else { "\"" });
                    out.push_str(w);
                    out.push_str("\"*");
                }
            }
        }
        out
    }

    /// Appends the `select kind, id, title, rank` of the records of `table` in organization
    /// `org` that match `matching` ([`Backend::search_match`]), trash left out, the title
    /// joining the `titles` columns: on PostgreSQL through `crm_search_hits_<table>`, which reads
    /// the GIN index of `crm_search_<table>` (migrations `0009_search`, `0016_search_under_rls`),
    /// on SQLite through the FTS5 table `fts` (migration `0009_search`).
    pub(crate) fn push_search_select(
        self,
        sql: &mut Sql,
        (table, fts): (&'static str, &'static str),
        titles: impl Iterator<Item = &'static str>,
        org: Uuid,
        matching: &str,
    ) {
        sql.push("select ")
            .bind(table)
            .push(" as kind, r.id, trim(");
        for (i, column) in titles.enumerate() {
            if i > 0 {
                sql.push(" || ' ' || ");
            }
            sql.push("coalesce(r.").push(column).push(", '')");
        }
        sql.push(") as title, ");
        match self {
            // The hits come from `crm_search_hits_<table>` (migration `0016_search_under_rls`:
            // under row-level security `@@` could not use the GIN index), joined back to the
            // table under the policy.
            Backend::Postgres => {
                sql.push("cast(h.rank as float8) as rank from crm_search_hits_")
                    .push(table)
                    .push("(to_tsquery('simple', ")
                    .bind(matching)
                    .push(")) h join ")
                    .push(table)
                    .push(" r on r.organization_id = ")
                    .bind(org)
                    .push(" and r.id = h.id and not r.is_deleted");
            }
            Backend::Sqlite => {
                sql.push("-bm25(")
                    .push(fts)
                    .push(") as rank from ")
                    .push(fts)
                    .push(" join search_keys k on k.key = ")
                    .push(fts)
                    .push(".rowid join ")
                    .push(table)
                    .push(" r on r.organization_id = k.organization_id and r.id = k.id where ")
                    .push(fts)
                    .push(" match ")
                    .bind(matching)
                    .push(" and k.organization_id = ")
                    .bind(org)
                    .push(" and k.entity = ")
                    .bind(table)
                    .push(" and not r.is_deleted");
            }
        }
    }

    /// The `select position, id` of the change feed's events, up to the organization to bind
    /// (for retention: the last one before a time, see [`Backend::feed_time`]).
    pub(crate) fn feed_last_before(self) -> &'static str {
        match self {
            Backend::Postgres => {
                "select c.position, e.id from feed_commits c join events e on e.organization_id = c.organization_id and e.txid = c.txid where c.organization_id = "
            }
            Backend::Sqlite => "select e.position, e.id from events e where e.organization_id = ",
        }
    }

    /// When a change entered the feed, in [`Backend::feed_last_before`]'s query: its commit on
    /// PostgreSQL, its write on SQLite (one writer at a time: the same order).
    pub(crate) fn feed_time(self) -> &'static str {
        match self {
            Backend::Postgres => "c.committed_at",
            Backend::Sqlite => "e.occurred_at",
        }
    }

    /// `delete` of an organization's events by feed position, up to the organization to bind;
    /// the caller adds ` and {feed_position} <= $n)`.
    pub(crate) fn feed_delete_events(self) -> &'static str {
        match self {
            Backend::Postgres => {
                "delete from events where (organization_id, txid) in (select c.organization_id, c.txid from feed_commits c where c.organization_id = "
            }
            Backend::Sqlite => {
                "delete from events where id in (select e.id from events e where e.organization_id = "
            }
        }
    }

    /// `delete` of an organization's feed commits up to the organization to bind, where
    /// commits are rows of their own (PostgreSQL).
    pub(crate) fn feed_delete_commits(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => Some("delete from feed_commits where organization_id = "),
            Backend::Sqlite => None,
        }
    }

    /// Whether sessions are bound to a tenant in the database (row-level security).
    pub(crate) fn binds_tenants(self) -> bool {
        self == Backend::Postgres
    }

    /// Appends JSON column `column` as text, for `like` (PostgreSQL stores `jsonb`, SQLite
    /// text).
    pub(crate) fn push_json_text(self, sql: &mut Sql, column: &'static str) {
        match self {
            Backend::Postgres => sql.push("cast(").push(column).push(" as text)"),
            Backend::Sqlite => sql.push(column),
        };
    }

    /// Appends custom field `key`'s value, compared as JSON on PostgreSQL and as an SQL value
    /// on SQLite (where `->>` yields numbers as numbers); of a money field, its amount.
    pub(crate) fn push_custom_value(self, sql: &mut Sql, key: FieldKey<'_>, money: bool) {
        match (self, money) {
            (Backend::Postgres, false) => sql.push("custom_fields->'").push_key(key).push("'"),
            (Backend::Postgres, true) => sql
                .push("custom_fields->'")
                .push_key(key)
                .push("'->'amount_minor'"),
            (Backend::Sqlite, false) => sql.push("custom_fields->>'").push_key(key).push("'"),
            (Backend::Sqlite, true) => sql
                .push("custom_fields->>'$.")
                .push_key(key)
                .push(".amount_minor'"),
        };
    }

    /// Appends custom field `key`'s value as text that orders like it (byte order on
    /// PostgreSQL, as SQLite compares).
    pub(crate) fn push_custom_text(self, sql: &mut Sql, key: FieldKey<'_>) {
        match self {
            Backend::Postgres => sql
                .push("(custom_fields->>'")
                .push_key(key)
                .push("') collate \"C\""),
            Backend::Sqlite => sql.push("custom_fields->>'").push_key(key).push("'"),
        };
    }

    /// Whether date and date-time custom fields compare as their text (PostgreSQL: JSON
    /// strings do not order as times; SQLite's `->>` already yields the text).
    pub(crate) fn dates_compare_as_text(self) -> bool {
        self == Backend::Postgres
    }

    /// Whether custom-field equality is containment (`@>`), which PostgreSQL's GIN index on
    /// `custom_fields` serves.
    pub(crate) fn equality_is_containment(self) -> bool {
        self == Backend::Postgres
    }

    /// How an operand compared with [`Backend::push_custom_value`] binds: JSON on PostgreSQL
    /// (text when `as_text`), a plain SQL value on SQLite.
    pub(crate) fn custom_operand(self, v: Value, as_text: bool) -> Arg {
        match (self, v) {
            (Backend::Postgres, Value::String(s)) if as_text => Arg::Text(Some(s)),
            (Backend::Postgres, v) => Arg::Json(Some(v)),
            (Backend::Sqlite, Value::String(s)) => Arg::Text(Some(s)),
            (Backend::Sqlite, Value::Bool(b)) => Arg::Bool(Some(b)),
            (Backend::Sqlite, Value::Number(n)) => match n.as_i64() {
                Some(i) => Arg::Int(Some(i)),
                None => Arg::Float(n.as_f64()),
            },
            (Backend::Sqlite, v) => Arg::Json(Some(v)),
        }
    }

    /// Appends "custom field `key` holds `value`" (of a multi-select: has it among its values):
    /// containment on PostgreSQL, `json_each` on SQLite.
    pub(crate) fn push_custom_contains(
        self,
        sql: &mut Sql,
        key: FieldKey<'_>,
        value: Value,
        multi: bool,
    ) {
        match self {
            Backend::Postgres => {
                let inner = if multi {
                    Value::Array(vec![value])
                } else {
                    value
                };
                let mut object = serde_json::Map::new();
                object.insert(key.as_str().to_owned(), inner);
                sql.push("custom_fields @> ").bind(Value::Object(object));
            }
            Backend::Sqlite => {
                sql.push("exists (select 1 from json_each(custom_fields, '$.")
                    .push_key(key);
                sql.push("') where value = ")
                    .bind(self.custom_operand(value, false))
                    .push(")");
            }
        }
    }

    /// Appends custom field `key` of `table`'s row as an SQL number, for aggregates (of a
    /// money field, its amount in minor units).
    pub(crate) fn push_custom_number(
        self,
        sql: &mut Sql,
        table: &'static str,
        key: FieldKey<'_>,
        money: bool,
    ) {
        match (self, money) {
            (Backend::Postgres, false) => sql
                .push("cast(")
                .push(table)
                .push(".custom_fields->>'")
                .push_key(key)
                .push("' as numeric)"),
            (Backend::Postgres, true) => sql
                .push("cast(")
                .push(table)
                .push(".custom_fields->'")
                .push_key(key)
                .push("'->>'amount_minor' as numeric)"),
            (Backend::Sqlite, false) => sql
                .push(table)
                .push(".custom_fields->>'")
                .push_key(key)
                .push("'"),
            (Backend::Sqlite, true) => sql
                .push(table)
                .push(".custom_fields->>'$.")
                .push_key(key)
                .push(".amount_minor'"),
        };
    }

    /// Appends timestamp column `table.column` as the text a date-time custom field stores
    /// (UTC, `…T…Z`), which orders like the time.
    pub(crate) fn push_time_text(self, sql: &mut Sql, table: &'static str, column: &'static str) {
        match self {
            Backend::Postgres => sql
                .push("to_char(")
                .push(table)
                .push(".")
                .push(column)
                .push(" at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
            Backend::Sqlite => sql
                .push("(strftime('%Y-%m-%dT%H:%M:%f', ")
                .push(table)
                .push(".")
                .push(column)
                .push(") || '000Z')"),
        };
    }

    /// Appends the sum of the values `value` appends (0 over no rows), saturating at the 64-bit
    /// integer range instead of failing, as the pipeline summary does: SQLite's `sum` raises
    /// `integer overflow` past it, and PostgreSQL's sums (numeric) would store a number no
    /// 64-bit reader takes back. Same result on both backends: whole numbers sum exactly; with a
    /// fraction among them the sum is a float on SQLite (`total`), exact on PostgreSQL.
    ///
    /// SQLite sums whole numbers as high and low 32-bit halves (neither sum can overflow),
    /// joined again only when the total fits.
    pub(crate) fn push_saturating_sum(self, sql: &mut Sql, value: impl Fn(&mut Sql)) {
        const MAX: &str = "9223372036854775807";
        // An integer: `-9223372036854775808` would read as a float negated.
        const MIN: &str = "(-9223372036854775807 - 1)";
        match self {
            Backend::Postgres => {
                sql.push("least(greatest(coalesce(sum(");
                value(sql);
                sql.push("), 0), ")
                    .push(MIN)
                    .push("), ")
                    .push(MAX)
                    .push(")");
            }
            Backend::Sqlite => {
                let high = |sql: &mut Sql| {
                    sql.push("(coalesce(sum((");
                    value(sql);
                    sql.push(") >> 32), 0) + coalesce(sum((");
                    value(sql);
                    sql.push(") & 4294967295), 0) / 4294967296)");
                };
                sql.push("(case when max(typeof(");
                value(sql);
                sql.push(") = 'real') then max(min(total(");
                value(sql);
                sql.push("), ").push(MAX).push("), ").push(MIN);
                sql.push(") when ");
                high(sql);
                sql.push(" > 2147483647 then ").push(MAX).push(" when ");
                high(sql);
                sql.push(" < -2147483648 then ").push(MIN).push(" else ");
                high(sql);
                sql.push(" * 4294967296 + coalesce(sum((");
                value(sql);
                sql.push(") & 4294967295), 0) % 4294967296 end)");
            }
        }
    }

    /// Appends the `custom_fields` of the row `alias` being updated with `key` set to the value
    /// `value` appends, or removed when that value is NULL.
    pub(crate) fn push_custom_set(
        self,
        sql: &mut Sql,
        alias: &'static str,
        key: FieldKey<'_>,
        value: impl FnOnce(&mut Sql),
    ) {
        match self {
            Backend::Postgres => {
                sql.push("(")
                    .push(alias)
                    .push(".custom_fields - '")
                    .push_key(key);
                sql.push("') || jsonb_strip_nulls(jsonb_build_object('")
                    .push_key(key)
                    .push("', ");
                value(sql);
                sql.push("))");
            }
            Backend::Sqlite => {
                // A merge patch removes the keys it sets to null.
                sql.push("json_patch(")
                    .push(alias)
                    .push(".custom_fields, json_object('");
                sql.push_key(key).push("', ");
                value(sql);
                sql.push("))");
            }
        }
    }
}
