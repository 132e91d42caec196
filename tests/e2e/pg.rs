//! A private PostgreSQL server for one test: `initdb` into a temporary folder, `postgres` on a
//! free port of 127.0.0.1, stopped (fast shutdown) when the test ends. Debian's `postgresql`
//! package provides the programs; they refuse to run as root, so as root they run as the
//! `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PATIENCE, free_low_port};

pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PgServer {
    /// A new, empty cluster, running.
    pub fn start() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", dir.path().display()));
        }
        let data = dir.path().join("data");
        let status = as_postgres(&program("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth=trust",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("initdb: {e}"));
        assert!(status.success(), "initdb failed");
        let mut server = PgServer {
            dir,
            port: free_low_port(),
            child: None,
        };
        server.resume();
        server
    }

    /// A URL for the `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A URL for another database of the server.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server again (same folder, same port) after [`PgServer::stop`].
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = as_postgres(&program("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("postgres: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "postgres exited at start ({status}): is port {} taken?",
                    self.port
                );
            }
            let ready = Command::new(program("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: sessions are ended, the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + PATIENCE;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs SQL with `psql` in the `postgres` database, returning what it printed (unaligned,
    /// tuples only).
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// [`PgServer::sql`] in another database.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let out = Command::new(program("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url_of(database),
            ])
            .args(["-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest installed PostgreSQL's program `name`.
fn program(name: &str) -> PathBuf {
    let versions = Path::new("/usr/lib/postgresql");
    let mut found: Vec<PathBuf> = std::fs::read_dir(versions)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (PostgreSQL is not installed: apt-get install postgresql)",
                versions.display()
            )
        })
        .flatten()
        .map(|entry| entry.path().join("bin").join(name))
        .filter(|path| path.is_file())
        .collect();
    found.sort_by_key(|path| {
        path.components()
            .nth(4)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
    });
    found
        .pop()
        .unwrap_or_else(|| panic!("no {name} under {}", versions.display()))
}

/// `program` run as the `postgres` user when this process is root.
fn as_postgres(program: &Path) -> Command {
    match run_as() {
        Some(_) => {
            let mut command = Command::new("setpriv");
            command
                .args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The `postgres` user's ids, if this process runs as root.
fn run_as() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
    if uid.split_whitespace().nth(1)? != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let entry = passwd.lines().find(|l| l.starts_with("postgres:"));
    let entry = entry.unwrap_or_else(|| panic!("running as root, and there is no postgres user"));
    let fields: Vec<&str> = entry.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}
