//! A PostgreSQL cluster of a test's own, to stop and restart without touching the shared server.

use std::path::PathBuf;
use std::process::Command;

/// Where the PostgreSQL server binaries are: `pg_config --bindir`, else where PostgreSQL 15 puts
/// them on Debian and Ubuntu.
fn bindir() -> PathBuf {
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|dir| PathBuf::from(dir.trim()))
        .filter(|dir| dir.join("initdb").exists())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// A throwaway cluster in a temporary directory, listening on 127.0.0.1 on a free port; stopped
/// and removed when dropped.
pub(crate) struct ThrowawayPg {
    /// The server binaries ([`bindir`]).
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// initdb refuses to run as root: then everything runs as `postgres`.
    as_postgres: bool,
}

impl ThrowawayPg {
    /// Creates and starts a cluster; `None` (the test skips) when the binaries are not there,
    /// unless the PostgreSQL suite is required (`CRM_TEST_REQUIRE_POSTGRES`, set by CI): then
    /// the test fails. The test is noted in the ledger as having reached PostgreSQL.
    pub(crate) fn start() -> Option<Self> {
        let bin = bindir();
        if !bin.join("initdb").exists() {
            assert!(
                std::env::var_os("CRM_TEST_REQUIRE_POSTGRES").is_none(),
                "CRM_TEST_REQUIRE_POSTGRES is set but there is no initdb in {} (pg_config --bindir)",
                bin.display()
            );
            eprintln!("skipped: no PostgreSQL binaries in {}", bin.display());
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let dir = std::env::temp_dir().join(format!("crm-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(&dir));
        }
        let pg = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.data();
        pg.run_pg(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        pg.ctl(&["start"]);
        crate::harness::record_backend("postgres");
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The URL of its `postgres` database, as the superuser.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl <action>` (`start`, `stop -m fast`, `restart -m fast`), waiting for it.
    pub(crate) fn ctl(&self, action: &[&str]) {
        let data = self.data();
        let log = self.dir.join("log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut args = vec!["pg_ctl", "-D", &data, "-l", &log, "-o", &options, "-w"];
        args.extend_from_slice(action);
        self.run_pg(&args);
    }

    fn run_pg(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        run(cmd.args(&args[1..]));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
