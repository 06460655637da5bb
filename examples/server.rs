//! A full server assembled from the crates: the REST API with probes, tracing, request ids,
//! CORS, compression, timeouts and graceful shutdown, and a background job worker beside it
//! (as `crm serve` runs one).
//!
//! ```sh
//! cargo run --example server            # SQLite file ./crm.db, port 8080
//! ```
//!
//! Environment:
//! - `DATABASE_URL` — `sqlite://crm.db` by default, or `postgres://…`; migrations run on start;
//! - `CRM_JWT_SECRET` — HS256 secret (≥ 32 bytes); a random one otherwise (tokens then die with
//!   the process);
//! - `PORT` — 8080 by default; `CRM_CORS_ORIGINS` — comma-separated origins (or `*`);
//! - `CRM_DEMO_PASSWORD` — the demo admin's password on first run (random otherwise, and shown
//!   only in text logs: with `CRM_LOG_FORMAT=json` the first-run message is a JSON event without
//!   it, for a log shipper must not store it);
//! - `CRM_LOG_FORMAT` — `text` (default) or `json`: one JSON object per line, every line;
//! - `CRM_TRUSTED_PROXIES` — reverse proxies (addresses or networks, comma-separated) whose
//!   `Forwarded` / `X-Forwarded-For` name the client (default: none, the peer is the client);
//! - `CRM_STATEMENT_TIMEOUT_MS` — longest a PostgreSQL statement may run (default 30000, `0`: none);
//! - `CRM_METRICS_ADDR` — serve Prometheus metrics (`/metrics`) on this address of its own
//!   instead of next to `/healthz`; `CRM_METRICS_TOKEN` — a bearer token scrapers must send;
//! - `REDIS_URL` — Redis shared by the instances of a deployment: the rate limits count there
//!   and the caches follow its epoch (feature `redis`, on by default); while it does not answer,
//!   each instance counts on its own and reads from the database;
//! - `CRM_WEBHOOK_ALLOW_HTTP`, `CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS` — let webhooks go to plain
//!   `http://` URLs and to this machine's or private networks' addresses (development against a
//!   local receiver; default: `https` to public addresses only);
//! - `RUST_LOG` — log filter (default `info`; `tower_http=debug` adds a line per request).

use std::time::Duration;

use abetworks_crm::http::server::{self, MetricsEndpoint, ServerOptions};
use abetworks_crm::http::{AuthConfig, WebhookSender};
use abetworks_crm::{
    Crm, Error, NewOrganization, NewUser, PoolSettings, Role, TenantContext, WebhookPolicy,
    WebhookSettings, Worker,
};
use anyhow::Context as _;
use rand::Rng as _;
use rand::distr::Alphanumeric;

const DEMO_SLUG: &str = "demo";
const DEMO_EMAIL: &str = "admin@demo.example";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let format = crm_axum::server::LogFormat::from_env().map_err(anyhow::Error::msg)?;
    let _tracing = crm_axum::server::init_tracing(format)?;

    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://crm.db".into());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().context("PORT must be a port number")?,
        Err(_) => 8080,
    };
    let secret = std::env::var("CRM_JWT_SECRET").unwrap_or_else(|_| {
        tracing::warn!(
            "CRM_JWT_SECRET is not set: using a random secret, tokens end with the process"
        );
        random(48)
    });
    let cors_origins = std::env::var("CRM_CORS_ORIGINS")
        .ok()
        .map(|v| v.split(',').map(|o| o.trim().to_owned()).collect());

    // Connecting migrates the database.
    let crm = Crm::builder()
        .database_url(&url)
        .pool(PoolSettings::from_env()?)
        .webhook_policy(WebhookPolicy::from_env())
        .build()
        .await
        .context("connecting to DATABASE_URL")?;
    bootstrap(&crm, port, format == crm_axum::server::LogFormat::Json).await?;

    let auth = AuthConfig::hs256(secret.as_bytes())
        .context("CRM_JWT_SECRET")?
        .trusted_proxies_from_env()
        .context("CRM_TRUSTED_PROXIES")?
        .ipv6_limit_prefix_from_env()
        .context("CRM_IPV6_LIMIT_PREFIX")?
        .registration_from_env()?
        .redis_url_from_env()
        .context("REDIS_URL")?;
    // Said at start rather than found at the first request; serving goes on either way.
    if let Err(e) = auth.check_redis().await {
        tracing::warn!(error = %e, "REDIS_URL does not answer: rate limits count in this process until it does");
    }
    let metrics_addr = std::env::var(server::METRICS_ADDR_ENV).ok();
    let (metrics, metrics_listener) =
        MetricsEndpoint::serve_at(&crm, metrics_addr.as_deref()).await?;
    let options = ServerOptions {
        request_timeout: Duration::from_secs(30),
        cors_origins,
        metrics,
    };
    let app = server::app(crm.clone(), auth, &options);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("binding port {port}"))?;
    tracing::info!("listening on http://localhost:{port} (API docs at /docs)");
    // The daily maintenance (overdue invoices, trash retention, expiry sweeps) with its retries,
    // and the outbound webhooks; stopped after the server, letting running work finish.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(&crm).webhooks(WebhookSender::default(), WebhookSettings::default());
    let worker = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    server::serve_beside(listener, app, metrics_listener, server::shutdown_signal()).await?;
    let _ = stop.send(());
    worker.await.context("the job worker panicked")??;
    crm.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// On first run: a demo organization and its admin, and how to sign in. With `json` logs, a log
/// event instead of the text block, and never the password: a log shipper would store it.
async fn bootstrap(crm: &Crm, port: u16, json: bool) -> anyhow::Result<()> {
    match crm.organizations().get_by_slug(DEMO_SLUG).await {
        Ok(_) if json => {
            tracing::info!(
                organization = DEMO_SLUG,
                email = DEMO_EMAIL,
                "the demo organization exists"
            );
            return Ok(());
        }
        Ok(_) => {
            println!("Demo organization `{DEMO_SLUG}` exists; sign in as {DEMO_EMAIL}.");
            return Ok(());
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let chosen = std::env::var("CRM_DEMO_PASSWORD").ok();
    let password = chosen.clone().unwrap_or_else(|| random(20));
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: "Demo".into(),
            slug: Some(DEMO_SLUG.into()),
        })
        .await?;
    crm.tenant(&TenantContext::system(org.id))
        .users()
        .create(NewUser {
            email: DEMO_EMAIL.into(),
            name: "Demo Admin".into(),
            password: Some(password.as_str().into()),
            role: Role::CompanyAdmin,
        })
        .await?;
    if json {
        tracing::info!(
            organization = DEMO_SLUG,
            email = DEMO_EMAIL,
            login = %format!("http://localhost:{port}/api/v1/auth/login"),
            password = if chosen.is_some() {
                "CRM_DEMO_PASSWORD"
            } else {
                "generated, not logged: set one with `crm user set-password`"
            },
            "created the demo organization and its admin"
        );
        return Ok(());
    }
    println!(
        "Created the demo organization `{DEMO_SLUG}` and its admin. Sign in with:\n\n  \
         curl -s -X POST http://localhost:{port}/api/v1/auth/login \\\n    \
         -H 'content-type: application/json' \\\n    \
         -d '{{\"organization\":\"{DEMO_SLUG}\",\"email\":\"{DEMO_EMAIL}\",\"password\":\"{password}\"}}'\n\n\
         then call the API with `-H \"authorization: Bearer <access_token>\"`, e.g.\n\n  \
         curl -s http://localhost:{port}/api/v1/contacts -H \"authorization: Bearer $TOKEN\"\n\n\
         API docs: http://localhost:{port}/docs\n"
    );
    Ok(())
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}
