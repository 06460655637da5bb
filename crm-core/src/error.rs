//! The one error type of the library, and the helpers that turn storage errors into it.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call to the library.
///
/// Each variant says what it means to the caller; `crm-axum` maps it to an HTTP status in one
/// place. The text of [`Error::Storage`] and [`Error::Internal`] is for logs only: it may hold SQL
/// or driver details and must never reach a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record does not exist *in the caller's organization* (or is soft-deleted and the call
    /// did not ask for deleted records). Another organization's id answers exactly this. HTTP 404.
    #[error("{entity} not found")]
    NotFound {
        /// Entity name, e.g. `"account"`.
        entity: &'static str,
        /// The id that was asked for, when there was one.
        id: Option<Uuid>,
    },
    /// The input is invalid; one entry per offending field. HTTP 422.
    #[error("validation failed: {}", FieldErrors(.0))]
    Validation(Vec<FieldError>),
    /// The write conflicts with existing state (a duplicate email, a record in the wrong state).
    /// HTTP 409, with the refusal's `code`.
    #[error("conflict: {0}")]
    Conflict(Refusal),
    /// The new records look like existing ones (or like each other) and the caller asked to
    /// refuse duplicates ([`DuplicatePolicy::Reject`](crate::record::DuplicatePolicy)). HTTP 409,
    /// code `duplicates`, with the matches.
    #[error("{entity}: {} likely duplicate(s)", .matches.len())]
    Duplicates {
        /// Entity name, e.g. `"contact"`.
        entity: &'static str,
        /// What matched what.
        matches: Vec<crate::record::Duplicate>,
    },
    /// The record was merged into another one, which answers for it now. HTTP 308 to the
    /// survivor.
    #[error("{entity} {id} was merged into {to}")]
    Moved {
        /// Entity name, e.g. `"account"`.
        entity: &'static str,
        /// The merged record's id.
        id: Uuid,
        /// The record it was merged into.
        to: Uuid,
    },
    /// The caller's expected version is not the stored one: someone else wrote first. HTTP 412
    /// when the version came from `If-Match`, 409 otherwise.
    #[error("version mismatch: expected {expected}, found {actual}")]
    VersionMismatch {
        /// The version the caller expected.
        expected: i64,
        /// The version that is stored.
        actual: i64,
    },
    /// The caller is known but may not do this. HTTP 403, with the refusal's `code`.
    #[error("forbidden: {0}")]
    Forbidden(Refusal),
    /// What was asked for existed once and is gone for good (a change-feed cursor behind the
    /// retention horizon). HTTP 410, with the refusal's `code`.
    #[error("gone: {0}")]
    Gone(Refusal),
    /// The caller is not known (bad credentials, deactivated user). HTTP 401.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Too many requests; retry after `retry_after`. HTTP 429 with `Retry-After`.
    #[error("rate limited for {retry_after:?}")]
    RateLimited {
        /// How long until the limit lets the next request through.
        retry_after: std::time::Duration,
    },
    /// The library was set up wrongly (bad database URL, TLS to the database that cannot be set
    /// up, feature not compiled in).
    #[error("configuration error: {0}")]
    Config(String),
    /// The database failed. Opaque to clients; logged by the host. HTTP 500 / 503.
    #[error("storage error")]
    Storage(#[source] sqlx::Error),
    /// The database cannot serve the call right now: it is unreachable, shutting down or
    /// restarting, out of connections, it cancelled a statement that ran past the statement
    /// timeout, or the call kept losing a race with concurrent writers (a deadlock, a
    /// serialization failure, SQLite busy) after the library had retried it
    /// ([`Error::is_contention`]). Nothing is wrong with the call itself; retry shortly. HTTP 503.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The server has more of some costly work queued than it takes on now (password checks
    /// during a flood of sign-ins); the text says which. Nothing is wrong with the call; retry
    /// shortly. HTTP 503 with `Retry-After`.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// Applying migrations failed.
    #[error("migration error")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A bug or an unexpected state inside the library. HTTP 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A [`Error::NotFound`] for `entity` with `id`.
    pub fn not_found(entity: &'static str, id: impl Into<Uuid>) -> Self {
        Error::NotFound {
            entity,
            id: Some(id.into()),
        }
    }

    /// A [`Error::Conflict`]: `code` is stable, for programs (`"not_draft"`); `message` is for
    /// people.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict(Refusal::new(code, message))
    }

    /// A [`Error::Forbidden`]: `code` is stable, for programs (`"admin_only"`); `message` is for
    /// people.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden(Refusal::new(code, message))
    }

    /// A [`Error::Gone`]: `code` is stable, for programs (`"cursor_expired"`); `message` is for
    /// people.
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Error::Gone(Refusal::new(code, message))
    }

    /// Whether the call lost a race with concurrent writers and its transaction was undone as
    /// a whole, so that running it again is safe: PostgreSQL's `deadlock_detected` (`40P01`)
    /// and `serialization_failure` (`40001`), SQLite's `SQLITE_BUSY` and `SQLITE_LOCKED`. The
    /// library retries such a call a few times itself (outside a unit of work) before it
    /// answers this error.
    pub fn is_contention(&self) -> bool {
        matches!(self, Error::Unavailable(e) if is_contention(e))
    }

    /// A [`Error::Validation`] with a single field error.
    pub fn invalid(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }
}

impl From<sqlx::Error> for Error {
    /// `RowNotFound` never escapes the storage layer as a driver error: callers get a
    /// [`Error::NotFound`]; the database being away is [`Error::Unavailable`]
    /// (`is_transient`); a failure to set up TLS is [`Error::Config`], with the driver's
    /// reason; every other driver error is kept opaque in [`Error::Storage`].
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Error::NotFound {
                entity: "record",
                id: None,
            },
            // Setting up TLS failed: the server offers none, its certificate is not trusted,
            // or a certificate file is unusable. Retrying does not help; the URL's `sslmode`
            // (or the certificates) must change.
            sqlx::Error::Tls(reason) => tls_failed(&reason),
            // The TLS layer reports a refused handshake (an untrusted certificate, a name that
            // does not match) as invalid data read from the socket; nothing else on the
            // database's socket does.
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                match io.get_ref() {
                    Some(reason) => tls_failed(reason),
                    None => Error::Unavailable(sqlx::Error::Io(io)),
                }
            }
            other if is_transient(&other) => Error::Unavailable(other),
            other => Error::Storage(other),
        }
    }
}

/// Why a call was refused ([`Error::Conflict`], [`Error::Forbidden`]): a stable
/// machine-readable `code` to match on, and a message for people (which may change).
///
/// Codes of the library: `admin_only`, `super_admin_only`, `role_above_own`, `not_owner`,
/// `not_permitted`, `out_of_scope`, `users_only` (refusals); `duplicate`, `merged`,
/// `still_linked`, `still_required`, `last_admin`, `not_deleted`, `not_draft`, `wrong_state`,
/// `not_a_task`, `already_converted`, `unqualified`, `converted_read_only`, `unit_ended`
/// (conflicts). HTTP layers add their own (crm-axum: `registration_off`, `api_key_only`, and
/// `users_only` for routes that are a signed-in user's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// A stable machine-readable code (`"not_draft"`).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The [`Error::Config`] of a TLS connection to the database that could not be set up.
fn tls_failed(reason: &dyn std::fmt::Display) -> Error {
    Error::Config(format!(
        "cannot set up TLS to the database: {reason} (check the database URL's sslmode, and \
         its sslrootcert for verify-ca and verify-full)"
    ))
}

/// Whether `e` says the database is away or busy for now rather than that the statement is
/// wrong: I/O errors, an exhausted or closed pool, PostgreSQL's connection exceptions (class
/// `08`), `admin_shutdown` / `crash_shutdown` / `cannot_connect_now` (`57P01`–`57P03`),
/// insufficient resources (class `53`: a full disk, no memory, too many connections),
/// `query_canceled` (`57014`, also the statement timeout), SQLite's `SQLITE_FULL` (13), and
/// lost races ([`is_contention`]).
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            #[cfg(feature = "sqlite")]
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return db.code().as_deref() == Some("13") || is_contention(e);
            }
            db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("53")
                    || matches!(&*c, "57P01" | "57P02" | "57P03" | "57014")
            }) || is_contention(e)
        }
        _ => false,
    }
}

/// Whether `e` says the transaction lost a race with another and was undone: PostgreSQL's
/// `deadlock_detected` (`40P01`) and `serialization_failure` (`40001`); SQLite's `SQLITE_BUSY`
/// (5) and `SQLITE_LOCKED` (6), with any extended code (sqlx reports the extended code, whose
/// low byte is the primary one).
fn is_contention(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    #[cfg(feature = "sqlite")]
    if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        return sqlx::error::DatabaseError::code(sqlite)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|n| matches!(n & 0xff, 5 | 6));
    }
    db.code().is_some_and(|c| matches!(&*c, "40P01" | "40001"))
}

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as the caller named it (`"email"`, `"custom_fields.tier"`).
    pub field: String,
    /// A stable machine-readable code (`"required"`, `"invalid_format"`, `"unknown_field"`…).
    pub code: &'static str,
    /// A human-readable message.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

struct FieldErrors<'a>(&'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// What a unique or foreign-key violation means, mapped in one place (EXAMPLES §12).
///
/// SQLite reports no constraint names, so the kind of violation decides; PostgreSQL's constraint
/// name is only a refinement.
pub(crate) trait ResultExt<T> {
    /// Maps a unique violation to a `duplicate` conflict with `message`.
    fn on_unique(self, message: impl FnOnce() -> String) -> Result<T>;
    /// Maps a foreign-key violation to a `still_linked` conflict with `message` (a row still
    /// referenced).
    fn on_foreign_key(self, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, Error> {
    fn on_unique(self, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e {
            Error::Storage(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Error::conflict("duplicate", message())
            }
            other => other,
        })
    }

    fn on_foreign_key(self, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e {
            Error::Storage(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Error::conflict("still_linked", message())
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_not_found_becomes_not_found() {
        assert!(matches!(
            Error::from(sqlx::Error::RowNotFound),
            Error::NotFound { .. }
        ));
    }
}
