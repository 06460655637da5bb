//! `GET /metrics`: the Prometheus text format, scraped after real requests and parsed line by
//! line. Requests are counted by route template and status with a latency histogram; sign-in
//! failures and rate-limit refusals by kind; the pool by backend; and no label holds tenant data.
//!
//! The recorder is one per process, shared by every test of this binary: counts are compared
//! before and after, never asserted absolutely.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use crm_axum::metrics::Metrics;
use crm_axum::server::{self, MetricsEndpoint, ServerOptions};
use crm_core::{Backend, Crm};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, config};

crate::on_both_backends!(metrics_count_requests_by_route_template_never_tenant_data);

/// One sample line: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format: every line is a `# HELP` / `# TYPE` comment, empty, or a
/// valid sample; anything else fails the test. Returns the samples and the declared types.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), Some(_)) => assert!(valid_name(name), "{line}"),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(valid_name(name), "{line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    types.insert(name.to_owned(), kind.to_owned());
                }
                _ => panic!("a comment that is neither HELP nor TYPE: {line}"),
            }
            continue;
        }
        samples.push(sample(line));
    }
    (samples, types)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// One sample line, or a panic naming it.
fn sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "{line}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let (start, c) = chars.next().unwrap_or_else(|| panic!("{line}"));
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            // label="value", the value escaped with \\ \" \n
            let eq = inner[start..]
                .find("=\"")
                .unwrap_or_else(|| panic!("{line}"))
                + start;
            let key = &inner[start..eq];
            assert!(valid_name(key) && !key.starts_with("__"), "{line}");
            while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                chars.next();
            }
            let mut value = String::new();
            loop {
                match chars.next().unwrap_or_else(|| panic!("{line}")).1 {
                    '"' => break,
                    '\\' => match chars.next().unwrap_or_else(|| panic!("{line}")).1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        other => panic!("bad escape \\{other} in {line}"),
                    },
                    c => value.push(c),
                }
            }
            assert!(
                labels.insert(key.to_owned(), value).is_none(),
                "repeated label in {line}"
            );
            if chars.peek().is_some_and(|(_, c)| *c == ',') {
                chars.next();
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("{line}"))
        .split(' ');
    let value = match fields.next().unwrap_or_else(|| panic!("{line}")) {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("bad timestamp in {line}"));
    }
    assert!(fields.next().is_none(), "{line}");
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

fn label_set(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The value of the sample `name` with exactly `labels` (0 when absent: not counted yet).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want = label_set(labels);
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

/// Whether `text` holds a UUID anywhere (8-4-4-4-12 hex digits).
fn holds_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).any(|i| {
        bytes[i..i + 36].iter().enumerate().all(|(j, b)| {
            if [8, 13, 18, 23].contains(&j) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
    })
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = Request::get("/metrics");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = app.raw(req.body(Body::empty()).unwrap()).await;
    let status = res.status.as_u16();
    if status == 200 {
        assert_eq!(
            res.headers[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
    (
        status,
        res.body.as_str().map(str::to_owned).unwrap_or_default(),
    )
}

/// The ready-made app with metrics served on it and a sign-in budget of two failures.
fn app_with_metrics(crm: &Crm, metrics: MetricsEndpoint) -> TestApp {
    let auth = config().login_limits(2, 100, Duration::from_secs(60));
    let options = ServerOptions {
        metrics,
        ..ServerOptions::default()
    };
    TestApp {
        crm: crm.clone(),
        router: server::app(crm.clone(), auth, &options),
    }
}

async fn metrics_count_requests_by_route_template_never_tenant_data(crm: Crm) {
    let metrics = Metrics::install().unwrap();
    let app = app_with_metrics(&crm, MetricsEndpoint::OnApp(metrics));
    let (status, before) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let (before, _) = parse(&before);

    // Traffic: a sign-up, a record read and missed, unknown paths, failed sign-ins.
    let admin = app.register("metered").await;
    let id = app
        .create(&admin.access, "accounts", json!({ "name": "Acme" }))
        .await;
    app.get(&format!("/api/v1/accounts/{id}"), &admin.access)
        .await
        .expect(200);
    app.get(
        &format!("/api/v1/accounts/{}", uuid::Uuid::now_v7()),
        &admin.access,
    )
    .await
    .expect(404);
    for unknown in ["/nope", "/api/v1/nope"] {
        app.get(&format!("{unknown}/{id}"), &admin.access)
            .await
            .expect(404);
    }
    let wrong = json!({ "organization": admin.slug, "email": "admin@example.com",
        "password": format!("not {PASSWORD}") });
    for status in [401, 401, 429] {
        app.send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(wrong.clone()),
            &[],
        )
        .await
        .expect(status);
    }

    let (_, text) = scrape(&app, None).await;
    let (after, types) = parse(&text);
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };

    // Requests by method, route template and status.
    let requests = "crm_http_requests_total";
    assert_eq!(types[requests], "counter");
    let record = "/api/v1/accounts/{id}";
    for status in ["200", "404"] {
        assert!(
            grew(
                requests,
                &[("method", "GET"), ("route", record), ("status", status)]
            ) >= 1.0,
            "{status}:\n{text}"
        );
    }
    let register = [
        ("method", "POST"),
        ("route", "/api/v1/auth/register"),
        ("status", "201"),
    ];
    assert!(grew(requests, &register) >= 1.0, "{text}");
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert!(grew(requests, &unmatched) >= 1.0, "{text}");
    let routes: Vec<&str> = after
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    assert!(
        routes
            .iter()
            .all(|r| *r == "unmatched" || r.starts_with('/')),
        "{routes:?}"
    );
    assert!(!routes.contains(&"/metrics"), "scrapes are not traffic");

    // The latency histogram of the record route: cumulative buckets up to +Inf = count.
    let duration = "crm_http_request_duration_seconds";
    assert_eq!(types[duration], "histogram");
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|s| {
            s.name == format!("{duration}_bucket")
                && s.labels.get("route").map(String::as_str) == Some(record)
                && s.labels["method"] == "GET"
        })
        .map(|s| {
            let le = &s.labels["le"];
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (bound, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
    assert_eq!(
        bounds,
        [
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1.0,
            2.5,
            5.0,
            10.0,
            30.0,
            f64::INFINITY
        ]
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    let route = [("method", "GET"), ("route", record)];
    let count = value(&after, &format!("{duration}_count"), &route);
    assert!(count >= 2.0);
    assert_eq!(buckets.last().unwrap().1, count);
    assert!(value(&after, &format!("{duration}_sum"), &route) > 0.0);

    // Failed sign-ins and the refusal that followed them, by kind.
    assert_eq!(types["crm_login_failures_total"], "counter");
    assert!(
        grew("crm_login_failures_total", &[("kind", "sign_in")]) >= 2.0,
        "{text}"
    );
    assert!(
        grew("crm_rate_limited_total", &[("kind", "sign_in_failures")]) >= 1.0,
        "{text}"
    );

    // The pool of this backend, read at the scrape.
    let backend = match crm.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let pool = [("backend", backend)];
    let max = value(&after, "crm_db_pool_max_connections", &pool);
    assert!(max >= 1.0, "{text}");
    assert!(value(&after, "crm_db_pool_connections", &pool) <= max);
    assert!(
        after
            .iter()
            .any(|s| s.name == "crm_db_pool_idle_connections" && s.labels == label_set(&pool)),
        "{text}"
    );
    // Both backends' pools count the checkouts that waited.
    assert_eq!(types["crm_db_pool_acquire_waits_total"], "counter");
    assert_eq!(types["crm_db_pool_acquire_timeouts_total"], "counter");
    assert!(
        after
            .iter()
            .any(|s| s.name == "crm_db_pool_pending_acquires" && s.labels == label_set(&pool))
    );

    // No tenant data in any label: no id, no email, no slug, no organization name.
    for s in &after {
        for (key, value) in &s.labels {
            assert!(
                !holds_uuid(value)
                    && !value.contains('@')
                    && !value.contains(&admin.slug)
                    && !value.contains("metered"),
                "{}{{{key}=\"{value}\"}}",
                s.name
            );
        }
    }
    assert!(!text.contains(&id) && !text.contains(&admin.org.to_string()));
}

/// With a token, scrapers must send it; served apart, the app itself does not answer
/// `/metrics` but still records its requests, and the metrics app does answer.
#[tokio::test]
async fn metrics_can_require_a_token_or_live_on_a_listener_of_their_own() {
    let crm = crate::harness::sqlite().await;
    let metrics = Metrics::install().unwrap().require_token("scrape-secret");
    let guarded = app_with_metrics(&crm, MetricsEndpoint::OnApp(metrics.clone()));
    assert_eq!(scrape(&guarded, None).await.0, 401);
    assert_eq!(scrape(&guarded, Some("wrong")).await.0, 401);
    let (status, text) = scrape(&guarded, Some("scrape-secret")).await;
    assert_eq!(status, 200);
    parse(&text);

    let apart = app_with_metrics(&crm, MetricsEndpoint::Apart(metrics.clone()));
    let res = apart.get("/metrics", "scrape-secret").await;
    res.problem(404, "no-route");
    let own = TestApp {
        crm: crm.clone(),
        router: server::metrics_app(crm.clone(), &metrics),
    };
    let (status, text) = scrape(&own, Some("scrape-secret")).await;
    assert_eq!(status, 200);
    let (samples, _) = parse(&text);
    let missed = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert!(
        value(&samples, "crm_http_requests_total", &missed) >= 1.0,
        "{text}"
    );
    own.get("/elsewhere", "scrape-secret")
        .await
        .problem(404, "no-route");
}
