//! Starting servers and speaking the protocol with raw bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use picture_protocol::{
    Command, GetRequest, MAX_RESPONSE_BODY, PictureInfo, Request, Response, Selector, Variant,
    decode_catalog, decode_response,
};
use picture_server::Limits;
use picture_server::access::AdminToken;
use picture_server::answer::Service;
use picture_server::store::{Folder, Store, StoreOptions, StoreUrl};
use picture_server::web::{BridgeConfig, OriginPolicy, Site, Upstream, WebConfig, serve_web};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound on any single wait in these tests, so a broken server fails a test instead of
/// hanging it. Never an expectation about speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The repository's shipped pictures.
pub fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// The shipped picture file whose stem is `name`.
pub fn asset_path(name: &str) -> PathBuf {
    let dir = assets_dir();
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_stem().and_then(|s| s.to_str()) == Some(name)
                && path.extension().is_some_and(|e| e != "toml" && e != "md")
        })
        .unwrap_or_else(|| panic!("no asset named {name}"))
}

/// The bytes of the shipped picture whose stem is `name`.
pub fn asset_bytes(name: &str) -> Vec<u8> {
    let path = asset_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The picture names `assets/catalog.toml` lists, in its order.
pub fn manifest_names() -> Vec<String> {
    let manifest = std::fs::read_to_string(assets_dir().join("catalog.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \"")?.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

/// The admin token of the test servers that accept writes.
pub const TOKEN: &str = "test-admin-token";

pub struct TestServer {
    pub addr: SocketAddr,
    service: Arc<Service>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    /// A server for the shipped pictures (a read-only folder store) with default limits.
    pub async fn start() -> TestServer {
        TestServer::start_with(&assets_dir(), Limits::default()).await
    }

    pub async fn start_with(assets: &Path, limits: Limits) -> TestServer {
        TestServer::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), assets, limits).await
    }

    /// A server on a chosen address, so that a test can restart it at the same place.
    pub async fn start_at(addr: SocketAddr, assets: &Path, limits: Limits) -> TestServer {
        let folder = Folder::load(assets).unwrap_or_else(|e| panic!("loading assets: {e}"));
        let service = Service::new(Arc::new(Store::from_folder(folder)), None);
        TestServer::serve(addr, service, limits).await
    }

    /// A server on a SQLite database at `db` (seeded from the shipped pictures when new) that
    /// accepts writes with [`TOKEN`].
    pub async fn start_sqlite(db: &Path, limits: Limits) -> TestServer {
        TestServer::start_sqlite_with(db, limits, &StoreOptions::default()).await
    }

    /// [`TestServer::start_sqlite`] with store options of the test's choosing.
    pub async fn start_sqlite_with(
        db: &Path,
        limits: Limits,
        options: &StoreOptions,
    ) -> TestServer {
        TestServer::start_store(&StoreUrl::Sqlite(db.to_path_buf()), limits, options).await
    }

    /// A writable server on the store `url` names (seeded with the shipped assets if new).
    pub async fn start_store(url: &StoreUrl, limits: Limits, options: &StoreOptions) -> TestServer {
        let store = Store::open(url, Some(&assets_dir()), options)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        let service = Service::new(Arc::new(store), AdminToken::new(TOKEN));
        TestServer::serve(SocketAddr::from(([127, 0, 0, 1], 0)), service, limits).await
    }

    /// A server for a service the test has made (its own variant settings, say).
    pub async fn start_service(service: Service, limits: Limits) -> TestServer {
        TestServer::serve(SocketAddr::from(([127, 0, 0, 1], 0)), service, limits).await
    }

    async fn serve(addr: SocketAddr, service: Service, limits: Limits) -> TestServer {
        let service = Arc::new(service);
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(picture_server::serve(
            listener,
            None,
            service.clone(),
            limits,
            shutdown.clone(),
        ));
        TestServer {
            addr,
            service,
            shutdown,
            task,
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        self.service.store()
    }

    /// The bridge answering from this server's store, as the binary runs it by default.
    pub fn local(&self) -> Upstream {
        Upstream::local(self.service.clone())
    }

    /// The bridge forwarding to this server's TCP port, as `--upstream` or `bridge` run it.
    pub fn tcp(&self) -> Upstream {
        Upstream::tcp(self.addr.to_string())
    }

    /// The page and a bridge answering from this server's store, with default web settings.
    pub async fn start_web(&self) -> WebServer {
        WebServer::start(web_config(&www_dir(), self.local())).await
    }

    /// Asks the server to shut down; the returned handle completes when it has.
    pub fn begin_shutdown(self) -> JoinHandle<()> {
        self.shutdown.cancel();
        self.task
    }
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    within(TcpStream::connect(addr))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Connects to `addr` from another loopback address (Linux answers all of 127.0.0.0/8), as
/// a second client machine would.
pub async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .bind(SocketAddr::from((source, 0)))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    within(socket.connect(addr))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Awaits `f`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {PATIENCE:?}"))
}

pub fn frame(id: u32, command: Command) -> Vec<u8> {
    Request { id, command }
        .encode()
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

pub fn get(selector: Selector) -> Command {
    Command::Get(GetRequest {
        selector,
        variant: Variant::default(),
    })
}

pub fn by_name(name: &str) -> Command {
    get(Selector::Name(name.into()))
}

/// Reads exactly one response from `stream`, carrying over any extra bytes in `buf`.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    loop {
        match decode_response(buf, MAX_RESPONSE_BODY) {
            Ok(Some((response, used))) => {
                buf.drain(..used);
                return response;
            }
            Ok(None) => {}
            Err(e) => panic!("invalid response: {e}"),
        }
        let mut chunk = vec![0; 256 * 1024];
        let n = within(stream.read(&mut chunk))
            .await
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert!(
            n > 0,
            "server closed the connection before a whole response"
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes all of `bytes`.
pub async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    within(stream.write_all(bytes))
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
}

/// Sends one request on a new connection and returns the response.
pub async fn call(addr: SocketAddr, command: Command) -> Response {
    let mut stream = connect(addr).await;
    send(&mut stream, &frame(1, command)).await;
    read_response(&mut stream, &mut Vec::new()).await
}

pub async fn catalog(addr: SocketAddr) -> Vec<PictureInfo> {
    let response = call(addr, Command::List).await;
    decode_catalog(&response.body).unwrap_or_else(|e| panic!("catalog: {e}"))
}

/// Writes `bytes` and reads until the server closes the connection.
pub async fn exchange_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).await;
    send(&mut stream, bytes).await;
    read_to_end(&mut stream).await
}

pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    within(stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    out
}

/// The repository's page and bundle.
pub fn www_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")
}

/// Web settings as the binary's defaults, for `www` and a bridge to `upstream`.
pub fn web_config(www: &Path, upstream: Upstream) -> WebConfig {
    WebConfig {
        site: Site::Folder(www.to_path_buf()),
        metrics: None,
        tls: None,
        bridge: BridgeConfig {
            upstream,
            idle_timeout: Duration::from_secs(60),
            max_request_payload: picture_protocol::MAX_REQUEST_PAYLOAD,
            max_upload_size: picture_server::limits::DEFAULT_MAX_UPLOAD_SIZE,
        },
        origins: OriginPolicy::default(),
        max_connections: 1024,
        max_connections_per_ip: 64,
        request_timeout: Duration::from_secs(10),
        max_sessions: 256,
        // The binary's default is 16; these tests open up to 64 sessions from loopback (the
        // per-address caps have tests of their own).
        max_sessions_per_ip: 64,
        max_message: 64 * 1024,
        shutdown_grace: Duration::from_secs(10),
    }
}

/// The HTTP side (page and WebSocket bridge) on an ephemeral port.
pub struct WebServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl WebServer {
    pub async fn start(config: WebConfig) -> WebServer {
        WebServer::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn start_at(addr: SocketAddr, config: WebConfig) -> WebServer {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_web(listener, config, shutdown.clone()));
        WebServer {
            addr,
            shutdown,
            task,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = within(self.task).await;
    }
}

/// A 67-byte PNG whose header declares 100,000 x 100,000 pixels (30 GB decoded), with a
/// correct header checksum: a decompression bomb that only a check before decoding stops.
pub fn png_bomb() -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(1, 1)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bomb = png.into_inner();
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
    // The IHDR chunk's CRC covers its type and data (bytes 12..29).
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}

/// Fails the test unless the store's database finds itself sound (SQLite's integrity check,
/// PostgreSQL's catalog rows).
pub async fn assert_intact(store: &Store) {
    let report = store
        .integrity_check()
        .await
        .unwrap_or_else(|e| panic!("integrity check: {e}"));
    assert_eq!(report, "ok");
}

/// A server binary started by a test: the first line it printed (the banner), the rest of its
/// standard output, and its standard error, read as it comes so that the process never blocks
/// on a full pipe, and printed if the test fails.
#[cfg(unix)]
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub banner: String,
    pub stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stderr: Arc<std::sync::Mutex<String>>,
}

#[cfg(unix)]
impl ServerProcess {
    /// Starts `command` (killed when this is dropped) and waits for its banner.
    pub async fn start(mut command: tokio::process::Command) -> ServerProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let collected = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = collected.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = tokio::io::BufReader::new(stdout).lines();
        let banner = within(stdout.next_line())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("server printed nothing"));
        ServerProcess {
            child,
            banner,
            stdout,
            stderr: collected,
        }
    }

    /// The next line it prints after the banner.
    pub async fn next_line(&mut self) -> String {
        within(self.stdout.next_line())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the server printed no more lines"))
    }

    /// The address after `scheme` (`tcp://`, `http://`) in the banner.
    pub fn addr(&self, scheme: &str) -> SocketAddr {
        addr_in(&self.banner, scheme)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_else(|| panic!("no pid"))
    }

    /// What it has written to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The first line of standard error that holds `needle`, waiting for it if need be.
    pub async fn stderr_line(&self, needle: &str) -> String {
        within(async {
            loop {
                if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                    return line.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }
}

#[cfg(unix)]
impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the server's standard error:\n{}", self.stderr());
        }
    }
}

/// The `picture-client` program.
pub fn client_program() -> PathBuf {
    workspace_program("picture-client")
}

/// The `picture-bench` program.
pub fn bench_program() -> PathBuf {
    workspace_program("picture-bench")
}

/// A program of another package of the workspace, where cargo puts it: beside the folder that
/// holds this test's own executable (`target/debug/deps/`). Cargo gives a test the path of its
/// own package's programs only; `cargo test --workspace` builds the others too, because their
/// packages have integration tests of their own. A program older than one of the source files
/// it was built from (cargo lists them beside it, in `NAME.d`) is refused, so that a test
/// never runs a stale build (as after `cargo test -p picture-server` following a change to
/// the client).
fn workspace_program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no folder above {}", exe.display()));
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified());
    let built = modified(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `cargo test --workspace` to build it",
            path.display()
        )
    });
    let sources = std::fs::read_to_string(dir.join(format!("{name}.d"))).unwrap_or_default();
    let newer = sources
        .split_once(": ")
        .map_or("", |(_, list)| list)
        .split_whitespace()
        .map(Path::new)
        .find(|source| modified(source).is_ok_and(|time| time > built));
    if let Some(newer) = newer {
        panic!(
            "{} is older than {}: run `cargo test --workspace` to build it again",
            path.display(),
            newer.display()
        );
    }
    path
}

/// What a process wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The address after the first `scheme` (`tcp://`, `http://`) in a line a server printed.
pub fn addr_in(line: &str, scheme: &str) -> SocketAddr {
    line.split(scheme)
        .nth(1)
        .and_then(|rest| rest.split(['/', ',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
}

/// The `picture-server` binary on ephemeral ports with the shipped assets and a database at
/// `db`, with extra environment.
#[cfg(unix)]
pub async fn start_server_binary(db: &Path, env: &[(&str, &str)]) -> ServerProcess {
    start_server_binary_on(&StoreUrl::Sqlite(db.to_path_buf()), env).await
}

/// [`start_server_binary`] on any store.
#[cfg(unix)]
pub async fn start_server_binary_on(store: &StoreUrl, env: &[(&str, &str)]) -> ServerProcess {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .args([
            "--tcp-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--assets",
        ])
        .arg(assets_dir())
        .arg("--store")
        .arg(match store {
            // Display masks a password; the tests' URLs have none.
            StoreUrl::Postgres(url) => url.clone(),
            other => other.to_string(),
        })
        .envs(env.iter().copied());
    ServerProcess::start(command).await
}

/// A memory figure of a process from /proc/PID/status (Linux), in KiB: `VmRSS` (resident now)
/// or `VmHWM` (the most it has been).
#[cfg(target_os = "linux")]
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("{e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A port nothing listens on now, nor on the port 10,000 above it (SeaweedFS puts each
/// service's gRPC port there), both below the ephemeral range so that no outgoing connection
/// takes them meanwhile; never one this process handed out before (tests run at once).
pub fn free_low_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 11000 + (std::process::id() % 400) as u16 * 16;
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    (0..2000)
        .map(|_| base + NEXT.fetch_add(1, Ordering::Relaxed) % 6000)
        .find(|port| free(*port) && free(port + 10000))
        .unwrap_or_else(|| panic!("no free port"))
}
