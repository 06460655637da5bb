//! The `crm` binary, run as an operator would, on SQLite and (with `CRM_TEST_DATABASE_URL`)
//! on PostgreSQL in a schema of its own.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use crm_core::sqlx::{self, Connection as _, Executor as _};
use serde_json::Value;

/// A database for one test: a SQLite file in `dir`, or a fresh PostgreSQL schema.
async fn database(dir: &Path, postgres: bool) -> Option<String> {
    if !postgres {
        return Some(format!("sqlite://{}", dir.join("crm.db").display()));
    }
    let url = match std::env::var("CRM_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("CRM_TEST_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL suite skipped"
            );
            eprintln!("skipped: CRM_TEST_DATABASE_URL is not set");
            return None;
        }
    };
    let schema = format!("crm_cli_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("create schema {schema}")))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

fn crm(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("crm").unwrap();
    cmd.env("DATABASE_URL", url).args(args);
    cmd
}

/// Runs `crm --json …`, expects success, returns the JSON it printed.
fn json(url: &str, args: &[&str]) -> Value {
    let out = crm(url, &[&["--json"], args].concat()).output().unwrap();
    assert!(
        out.status.success(),
        "crm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `crm …`, expects success, returns standard output.
fn text(url: &str, args: &[&str]) -> String {
    let out = crm(url, args).output().unwrap();
    assert!(
        out.status.success(),
        "crm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn organizations_users_and_errors(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let status = json(&url, &["migrate", "--status"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["applied"] == false)
    );
    let status = json(&url, &["migrate"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["applied"] == true)
    );

    let org = json(&url, &["org", "create", "--name", "Acme Corp"]);
    assert_eq!(org["slug"], "acme-corp");
    assert_eq!(
        json(&url, &["org", "suspend", "acme-corp"])["status"],
        "suspended"
    );
    assert_eq!(
        json(&url, &["org", "resume", org["id"].as_str().unwrap()])["status"],
        "active"
    );
    assert_eq!(json(&url, &["org", "list"]).as_array().unwrap().len(), 1);

    let user = crm(
        &url,
        &[
            "--json",
            "user",
            "create",
            "--org",
            "acme-corp",
            "--email",
            "ann@acme.test",
            "--name",
            "Ann",
            "--role",
            "company_admin",
            "--password-stdin",
        ],
    )
    .write_stdin("correct horse battery\n")
    .output()
    .unwrap();
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    json(
        &url,
        &[
            "user",
            "create",
            "--org",
            "acme-corp",
            "--email",
            "bob@acme.test",
            "--name",
            "Bob",
            "--no-password",
        ],
    );
    assert_eq!(
        json(
            &url,
            &[
                "user",
                "set-role",
                "--org",
                "acme-corp",
                "bob@acme.test",
                "company_admin"
            ]
        )["role"],
        "company_admin"
    );
    assert_eq!(
        json(
            &url,
            &["user", "deactivate", "--org", "acme-corp", "bob@acme.test"]
        )["is_active"],
        false
    );
    assert_eq!(
        json(&url, &["user", "list", "--org", "acme-corp"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Clear messages and non-zero exit codes.
    for (args, message) in [
        (
            &["org", "suspend", "nope"][..],
            "unknown organization `nope`",
        ),
        (
            &[
                "user",
                "create",
                "--org",
                "acme-corp",
                "--email",
                "x@acme.test",
                "--name",
                "X",
            ],
            "--password-stdin",
        ),
        (
            &[
                "user",
                "set-role",
                "--org",
                "acme-corp",
                "ann@acme.test",
                "root",
            ],
            "unknown role",
        ),
        (&["org", "create", "--name", "Acme Corp"], "already exists"),
    ] {
        let out = crm(&url, args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = crm("postgres://nobody@127.0.0.1:1/none", &["org", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the database"));
}

async fn seed_import_export_round_trip_and_purge(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let seeded = json(
        &url,
        &["seed", "--orgs", "1", "--records", "120", "--seed", "3"],
    );
    assert_eq!(
        (
            seeded["organizations"].as_u64(),
            seeded["contacts"].as_u64()
        ),
        (Some(1), Some(120))
    );
    assert_eq!(seeded["accounts"], 12);
    let again = crm(
        &url,
        &["seed", "--orgs", "1", "--records", "10", "--seed", "3"],
    )
    .output()
    .unwrap();
    assert!(!again.status.success(), "the same seed twice is refused");

    // Export, then import the export into another organization: same people.
    let export = text(
        &url,
        &[
            "export",
            "contacts",
            "--org",
            "seed-3-1",
            "--filter",
            "account_id:is_null:true",
        ],
    );
    assert_eq!(
        export.lines().count(),
        1,
        "seeded contacts all have an account: {export}"
    );
    let csv_path = dir.path().join("contacts.csv");
    let exported = text(
        &url,
        &[
            "export",
            "contacts",
            "--org",
            "seed-3-1",
            "--output",
            csv_path.to_str().unwrap(),
        ],
    );
    assert!(exported.is_empty());
    json(&url, &["org", "create", "--name", "Copy"]);
    let defined = crm(
        &url,
        &[
            "import",
            "contacts",
            csv_path.to_str().unwrap(),
            "--org",
            "copy",
        ],
    )
    .output()
    .unwrap();
    assert!(
        !defined.status.success(),
        "custom_fields.score is not defined in the copy, and account ids are foreign"
    );
    let report = json(
        &url,
        &[
            "import",
            "contacts",
            csv_path.to_str().unwrap(),
            "--org",
            "copy",
            "--map",
            "custom_fields.score=",
            "--map",
            "account_id=",
        ],
    );
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(120), Some(120))
    );
    let jsonl = |org: &str| -> Vec<(String, String)> {
        let mut rows: Vec<_> = text(
            &url,
            &["export", "contacts", "--org", org, "--format", "jsonl"],
        )
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["email"].as_str().unwrap().to_owned(),
                v["last_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
        rows.sort();
        rows
    };
    assert_eq!(jsonl("seed-3-1"), jsonl("copy"));

    // A file with good and bad rows: all or nothing by default, or skip the bad ones.
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(
        &mixed,
        "First,Last,E-mail,Phone\nAda,Lovelace,ada@x.test,1\nBad,Row,not-an-email,2\nGrace,Hopper,grace@x.test,3\n,,,4\n",
    )
    .unwrap();
    let maps = [
        "--map",
        "First=first_name",
        "--map",
        "Last=last_name",
        "--map",
        "E-mail=email",
        "--map",
        "Phone=phone",
    ];
    let run = |extra: &[&str]| {
        let args = [
            &[
                "--json",
                "import",
                "contacts",
                mixed.to_str().unwrap(),
                "--org",
                "acme",
            ][..],
            &maps,
            extra,
        ]
        .concat();
        crm(&url, &args).output().unwrap()
    };
    json(&url, &["org", "create", "--name", "Acme"]);
    let out = run(&["--dry-run"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<_> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5], "rows are reported by their line in the file");
    assert!(
        report["rejected"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("email:")
    );
    let out = run(&[]);
    assert!(!out.status.success(), "all or nothing");
    assert!(
        text(&url, &["export", "contacts", "--org", "acme"])
            .lines()
            .count()
            == 1,
        "nothing imported"
    );
    let out = run(&["--skip-invalid"]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 2);
    assert_eq!(
        text(&url, &["export", "contacts", "--org", "acme"])
            .lines()
            .count(),
        3
    );

    // Purge: nothing is trashed long enough yet; a dry run first, then for real.
    let out = json(&url, &["purge", "--older-than", "30d"]);
    assert!(out.as_array().unwrap().is_empty());
    let t_before = text(
        &url,
        &["export", "contacts", "--org", "acme", "--format", "jsonl"],
    );
    let ada: Value = serde_json::from_str(t_before.lines().next().unwrap()).unwrap();
    // Trash Ada through the library itself (the CLI has no delete): same database.
    let crm_lib = crm_core::Crm::connect(&url).await.unwrap();
    let org = crm_lib.organizations().get_by_slug("acme").await.unwrap();
    let t = crm_lib.tenant(&crm_core::TenantContext::system(org.id));
    t.contacts()
        .delete(ada["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    crm_lib.close().await;
    let dry = json(&url, &["purge", "--older-than", "0m", "--org", "acme"]);
    assert_eq!(dry[0]["purged"], 1);
    assert_eq!(
        text(
            &url,
            &["export", "contacts", "--org", "acme", "--include-deleted"]
        )
        .lines()
        .count(),
        3,
        "dry run"
    );
    let done = json(
        &url,
        &["purge", "--older-than", "0m", "--org", "acme", "--yes"],
    );
    assert_eq!(
        (done[0]["entity"].as_str(), done[0]["purged"].as_u64()),
        (Some("contact"), Some(1))
    );
    assert_eq!(
        text(
            &url,
            &["export", "contacts", "--org", "acme", "--include-deleted"]
        )
        .lines()
        .count(),
        2
    );
}

#[tokio::test]
async fn sqlite_organizations_users_and_errors() {
    organizations_users_and_errors(false).await;
}

#[tokio::test]
async fn postgres_organizations_users_and_errors() {
    organizations_users_and_errors(true).await;
}

#[tokio::test]
async fn sqlite_seed_import_export_round_trip_and_purge() {
    seed_import_export_round_trip_and_purge(false).await;
}

#[tokio::test]
async fn postgres_seed_import_export_round_trip_and_purge() {
    seed_import_export_round_trip_and_purge(true).await;
}

async fn api_keys_tokens_and_openapi(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    json(&url, &["org", "create", "--name", "Keys"]);
    json(
        &url,
        &[
            "user",
            "create",
            "--org",
            "keys",
            "--email",
            "k@keys.test",
            "--name",
            "K",
            "--no-password",
        ],
    );
    let created = json(
        &url,
        &["api-key", "create", "--org", "keys", "--name", "forms"],
    );
    assert!(created["secret"].as_str().unwrap().starts_with("crm_key_"));
    // Without --scope a key is for web forms only; scopes are listed.
    assert_eq!(created["scopes"], serde_json::json!(["forms"]));
    let id = created["id"].as_str().unwrap().to_owned();
    let create = |name: &str, scopes: &[&str]| {
        let mut args = vec!["api-key", "create", "--org", "keys", "--name", name];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = create("sync", &["leads:read", "accounts:write,contacts:read"]);
    let scoped = json(&url, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        scoped["scopes"],
        serde_json::json!(["leads:read", "accounts:write", "contacts:read"])
    );
    assert_ne!(scoped["prefix"], created["prefix"]);
    let args = create("x", &["leads:own"]);
    let bad = crm(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let listed = json(&url, &["api-key", "list", "--org", "keys"]);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[1]["scopes"], scoped["scopes"]);
    assert!(json(&url, &["api-key", "revoke", "--org", "keys", &id])["revoked_at"].is_string());

    // Tokens need the server's secret, and a user who may sign in.
    let out = crm(
        &url,
        &["token", "issue", "--org", "keys", "--user", "k@keys.test"],
    )
    .env_remove("CRM_JWT_SECRET")
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRM_JWT_SECRET"));
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "token",
            "issue",
            "--org",
            "keys",
            "--user",
            "k@keys.test",
        ];
        args.extend_from_slice(extra);
        crm(&url, &args)
            .env("CRM_JWT_SECRET", "0123456789abcdef0123456789abcdef")
            .output()
            .unwrap()
    };
    let out = issue(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        issued["access_token"].as_str().unwrap().split('.').count(),
        3,
        "a JWT"
    );
    assert_eq!(issued["expires_in"], 900);
    // Tokens cannot be revoked: their lifetime is bounded.
    for minutes in ["0", "1441", "99999999999"] {
        let out = issue(&["--minutes", minutes]);
        assert!(!out.status.success(), "--minutes {minutes} was accepted");
    }

    // The spec needs no database.
    let spec = text("sqlite::memory:", &["openapi", "--format", "json"]);
    let spec: Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    assert_eq!(
        text("sqlite::memory:", &["openapi"]),
        committed,
        "crm openapi prints the committed spec"
    );
}

#[tokio::test]
async fn sqlite_api_keys_tokens_and_openapi() {
    api_keys_tokens_and_openapi(false).await;
}

#[tokio::test]
async fn postgres_api_keys_tokens_and_openapi() {
    api_keys_tokens_and_openapi(true).await;
}

/// `crm serve` answers on its port and stops on SIGTERM (SQLite; the server is crm-axum's, tested
/// on both backends there).
#[test]
fn serve_answers_and_stops() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crm"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("crm.db").display()),
        )
        .env("CRM_JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            s.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
