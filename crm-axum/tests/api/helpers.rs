//! A router over a fresh database, and request helpers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use crm_axum::AuthConfig;
use crm_core::{Crm, NewUser, OrganizationId, Role, TenantContext};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

/// The HS256 secret of test apps.
pub(crate) const SECRET: &[u8] = b"test secret, at least thirty-two bytes long";
/// A password that passes the length rule.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The auth settings of test apps: no principal cache, so deactivations bite at once.
pub(crate) fn config() -> AuthConfig {
    AuthConfig::hs256(SECRET)
        .unwrap()
        .principal_cache_ttl(Duration::ZERO)
}

/// The router under test and the library behind it.
pub(crate) struct TestApp {
    pub(crate) crm: Crm,
    pub(crate) router: Router,
}

/// A response, read.
#[derive(Debug)]
pub(crate) struct Res {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Res {
    /// Asserts the status, naming the body when it differs.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }

    /// Checks the stable `code` of a 409 or 403 problem.
    #[track_caller]
    pub(crate) fn code(self, code: &str) -> Self {
        assert_eq!(self.body["code"], code, "{}", self.body);
        self
    }

    /// Asserts a problem+json response of `status` and `kind` (the end of its `type`).
    #[track_caller]
    pub(crate) fn problem(self, status: u16, kind: &str) -> Self {
        let res = self.expect(status);
        assert_eq!(
            res.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            res.body
        );
        assert_eq!(
            res.body["type"],
            format!("urn:abetworks:crm:problem:{kind}"),
            "{}",
            res.body
        );
        assert_eq!(res.body["status"], status);
        res
    }

    /// The `field`/`code` pairs of a validation problem.
    pub(crate) fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap().to_owned(),
                            e["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The string fields `a` and `b` of each item of a page's `data`.
pub(crate) fn pairs(page: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let s = |k: &str| item[k].as_str().unwrap().to_owned();
            (s(a), s(b))
        })
        .collect()
}

/// A JSON `POST` to `path` as if from the client address `ip` (the per-address limits see it).
pub(crate) fn post_from(ip: [u8; 4], path: &str, body: &Value) -> Request<Body> {
    let mut req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 1234))));
    req
}

/// `uuid` from a JSON string, failing at the caller's line.
#[track_caller]
pub(crate) fn expect_uuid(v: &Value) -> Uuid {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a UUID: {v}"))
}

/// A signed-in user of a registered organization.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) org: Uuid,
    pub(crate) slug: String,
    pub(crate) user: Uuid,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl TestApp {
    pub(crate) fn new(crm: Crm) -> Self {
        Self::with_config(crm, config())
    }

    /// Makes an API key with `scopes` (none: the default, `forms` only) and answers its secret.
    pub(crate) async fn api_key(&self, token: &str, scopes: &[&str]) -> String {
        let mut body = json!({ "name": "test key" });
        if !scopes.is_empty() {
            body["scopes"] = json!(scopes);
        }
        let made = self.post("/api/v1/api-keys", token, body).await.expect(201);
        made.body["key"].as_str().unwrap().to_owned()
    }

    /// A test app over `crm` with its first organization, `acme`, registered.
    pub(crate) async fn signed_up(crm: Crm) -> (Self, Session) {
        let app = Self::new(crm);
        let admin = app.register("acme").await;
        (app, admin)
    }

    pub(crate) fn with_config(crm: Crm, auth: AuthConfig) -> Self {
        let router = crm_axum::router(crm.clone(), auth);
        Self { crm, router }
    }

    /// Sends a request; `body` is JSON unless `raw` gives a content type and bytes.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    /// Sends a prepared request (from 127.0.0.1 unless it says otherwise).
    pub(crate) async fn raw(&self, mut req: Request<Body>) -> Res {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Res {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> Res {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// `DELETE` with `If-Match: tag`.
    pub(crate) async fn delete_if_match(&self, path: &str, token: &str, tag: &str) -> Res {
        self.send(
            Method::DELETE,
            path,
            Some(token),
            None,
            &[("if-match", tag)],
        )
        .await
    }

    /// `PATCH` with `If-Match: tag`.
    pub(crate) async fn patch_if_match(
        &self,
        path: &str,
        token: &str,
        body: Value,
        tag: &str,
    ) -> Res {
        self.send(
            Method::PATCH,
            path,
            Some(token),
            Some(body),
            &[("if-match", tag)],
        )
        .await
    }

    /// Creates a record through `POST /api/v1/{plural}` (asserting 201); returns its id.
    pub(crate) async fn create(&self, token: &str, plural: &str, body: Value) -> String {
        let r = self
            .post(&format!("/api/v1/{plural}"), token, body)
            .await
            .expect(201);
        expect_uuid(&r.body["id"]).to_string()
    }

    /// Registers a new organization; returns its admin's session.
    pub(crate) async fn register(&self, name: &str) -> Session {
        let slug = format!("{name}-{}", &Uuid::now_v7().simple().to_string()[20..]);
        let res = self
            .send(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({
                    "organization_name": name,
                    "organization_slug": slug,
                    "name": "Admin",
                    "email": "admin@example.com",
                    "password": PASSWORD,
                })),
                &[],
            )
            .await
            .expect(201);
        self.session(&res, &slug).await
    }

    /// The session of a token response, completed from `/me`.
    async fn session(&self, tokens: &Res, slug: &str) -> Session {
        let access = tokens.body["access_token"].as_str().unwrap().to_owned();
        let me = self.get("/api/v1/me", &access).await.expect(200);
        Session {
            org: expect_uuid(&me.body["organization"]["id"]),
            slug: slug.to_owned(),
            user: expect_uuid(&me.body["user"]["id"]),
            access,
            refresh: tokens.body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Adds a user with `role` to `org` (through the library) and signs them in.
    pub(crate) async fn user(&self, session: &Session, email: &str, role: Role) -> Session {
        let org = OrganizationId::from_uuid(session.org);
        self.crm
            .tenant(&TenantContext::system(org))
            .users()
            .create(NewUser {
                email: email.into(),
                name: email.into(),
                password: Some(PASSWORD.into()),
                role,
            })
            .await
            .unwrap();
        self.login(&session.slug, email).await
    }

    pub(crate) async fn login(&self, slug: &str, email: &str) -> Session {
        let res = self
            .send(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({ "organization": slug, "email": email, "password": PASSWORD })),
                &[],
            )
            .await
            .expect(200);
        self.session(&res, slug).await
    }
}
