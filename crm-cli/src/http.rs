//! `crm serve`, `crm token issue` and `crm openapi`: the REST API of `crm-axum`.
//!
//! The signing secret comes from `CRM_JWT_SECRET` only (never a flag, which shell history and
//! process lists would show), as for `examples/server.rs`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use crm_axum::AuthConfig;
use crm_axum::server::{self, MetricsEndpoint, ServerOptions};
use crm_core::Crm;
use serde::Serialize;

use crate::Output;
use crate::connect::organization;

/// The longest lifetime `crm token issue` grants: an access token cannot be revoked, only
/// outlived.
const MAX_TOKEN_MINUTES: u64 = 24 * 60;

/// Arguments of `crm serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CRM_LISTEN", default_value = "0.0.0.0")]
    listen: String,
    /// Port to listen on (0: a free one, named in the "listening on" log line).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Comma-separated origins allowed by CORS (`*` for any); none by default.
    #[arg(long, env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Option<Vec<String>>,
    /// Longest a request may take, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Whether anyone who reaches the server may sign up a new organization (`POST
    /// auth/register`); `off` for a single company's own server (`crm org create` still
    /// works). Default: `CRM_REGISTRATION`, else on.
    #[arg(long, value_parser = ["on", "off"])]
    registration: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address of its own (e.g.
    /// `127.0.0.1:9100`, reachable only by the scraper) instead of on the main listener. With
    /// CRM_METRICS_TOKEN set, scrapers must send it as a bearer token, on either.
    #[arg(long, env = "CRM_METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// Redis shared by the instances of this deployment (`redis://[:password@]host[:port][/db]`):
    /// the rate limits count there, so every instance spends one budget, and a cache epoch there
    /// makes a deactivation, key revocation or custom-field change apply on every instance at
    /// once. While it does not answer, each instance counts on its own and reads from the
    /// database. Default: none (in-process limits and caches).
    #[cfg(feature = "redis")]
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Do not run background jobs in this process (a separate `crm worker` fleet does).
    /// `CRM_NO_WORKER`: any value but empty, `0`, `false`, `no` or `off` sets it.
    #[arg(long, env = "CRM_NO_WORKER", value_parser = clap::builder::FalseyValueParser::new())]
    no_worker: bool,
    #[command(flatten)]
    worker: crate::jobs::WorkerArgs,
}

/// Token commands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print an access token for a user (for scripts and tests); signed with CRM_JWT_SECRET.
    Issue {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The user's email or id.
        #[arg(long)]
        user: String,
        /// Lifetime in minutes (1 to 1440: a day at most; a token cannot be revoked before it
        /// expires).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=MAX_TOKEN_MINUTES))]
        minutes: u64,
    },
}

/// Output format of `crm openapi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SpecFormat {
    /// YAML, as committed in docs/openapi.yaml.
    Yaml,
    /// JSON, as served at /api/v1/openapi.json.
    Json,
}

fn secret(required: bool) -> anyhow::Result<Option<String>> {
    match std::env::var("CRM_JWT_SECRET") {
        Ok(s) => Ok(Some(s)),
        Err(_) if required => {
            bail!("CRM_JWT_SECRET is not set: tokens must be signed with the server's secret")
        }
        Err(_) => Ok(None),
    }
}

pub(crate) async fn serve(crm: Crm, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Kept to the end: dropping it sends the last spans (feature `otel`).
    let _tracing = crm_axum::server::init_tracing(
        crm_axum::server::LogFormat::from_env().map_err(anyhow::Error::msg)?,
    )?;
    let secret = match secret(false)? {
        Some(s) => s,
        None => {
            tracing::warn!(
                "CRM_JWT_SECRET is not set: using a random secret, tokens end with the process"
            );
            (0..48).map(|_| fastrand::alphanumeric()).collect()
        }
    };
    let auth = AuthConfig::hs256(secret.as_bytes())
        .context("CRM_JWT_SECRET")?
        .trusted_proxies_from_env()
        .context(crm_axum::TRUSTED_PROXIES_ENV)?
        .ipv6_limit_prefix_from_env()
        .context(crm_axum::IPV6_LIMIT_PREFIX_ENV)?
        .registration_from_env()?;
    let auth = match args.registration.as_deref() {
        Some(switch) => auth.registration(switch == "on"),
        None => auth,
    };
    #[cfg(feature = "redis")]
    let auth = match args.redis_url.as_deref().filter(|url| !url.is_empty()) {
        Some(url) => {
            let auth = auth.redis_url(url).context("--redis-url / REDIS_URL")?;
            match auth.check_redis().await {
                Ok(()) => {
                    tracing::info!("rate limits and the cache epoch are shared through Redis");
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "Redis (--redis-url / REDIS_URL) does not answer: rate limits count in this process until it does"
                ),
            }
            auth
        }
        None => auth,
    };
    let (metrics, metrics_listener) =
        MetricsEndpoint::serve_at(&crm, args.metrics_addr.as_deref()).await?;
    // Blank entries are none: an empty CRM_CORS_ORIGINS (as docker compose passes an unset
    // variable) means no CORS, like an unset one.
    let cors_origins = args
        .cors_origins
        .map(|o| {
            o.into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|o| !o.is_empty());
    let options = ServerOptions {
        request_timeout: Duration::from_secs(args.timeout),
        cors_origins,
        metrics,
    };
    let app = server::app(crm.clone(), auth, &options);
    let listener = tokio::net::TcpListener::bind((args.listen.as_str(), args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.listen, args.port))?;
    // The bound address, not the asked one: `--port 0` takes a free port and says which.
    let bound = listener
        .local_addr()
        .with_context(|| format!("binding {}:{}", args.listen, args.port))?;
    tracing::info!("listening on http://{bound} (API docs at /docs)");
    let worker =
        (!args.no_worker).then(|| crate::jobs::Background::start(args.worker.worker(&crm)));
    server::serve_beside(listener, app, metrics_listener, server::shutdown_signal()).await?;
    // Requests are drained; running jobs get their grace period, waiting ones stay queued.
    if let Some(worker) = worker {
        worker.stop().await?;
    }
    crm.close().await;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Issued {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

pub(crate) async fn token(crm: &Crm, cmd: TokenCommand, out: Output) -> anyhow::Result<ExitCode> {
    let TokenCommand::Issue { org, user, minutes } = cmd;
    let secret = secret(true)?.unwrap_or_default();
    let org = organization(crm, &org).await?;
    let t = crm.tenant(&crm_core::TenantContext::system(org.id));
    let user = crate::connect::user(&t, &user).await?;
    // The principal check refuses deactivated users and suspended organizations, as the API does.
    let principal = crm
        .auth()
        .principal(org.id, user.id)
        .await
        .context("the user may not sign in")?;
    let auth = AuthConfig::hs256(secret.as_bytes())
        .context("CRM_JWT_SECRET")?
        .access_ttl(Duration::from_secs(minutes * 60));
    let (access_token, expires_in) = auth.issue_access_token(&principal)?;
    let issued = Issued {
        access_token,
        token_type: "Bearer",
        expires_in,
    };
    out.show(&issued, || issued.access_token.clone())?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn openapi(format: SpecFormat) -> anyhow::Result<ExitCode> {
    let spec = crm_axum::openapi();
    let text = match format {
        SpecFormat::Yaml => spec.to_yaml()?,
        SpecFormat::Json => spec.to_pretty_json()? + "\n",
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
