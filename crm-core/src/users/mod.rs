//! Users: the people who sign in to an organization, with a role and an argon2id password hash.

mod model;
mod password;
mod profile;
mod service;

pub use model::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, NewUser, PasswordKind, Role, User, UserId};
pub(crate) use service::PreparedUser;
pub use service::Users;
