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
use picture_server::store::FolderStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The bytes of the asset file whose stem is `name`.
pub fn asset_bytes(name: &str) -> Vec<u8> {
    let dir = assets_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_stem().and_then(|s| s.to_str()) == Some(name)
            && path.extension().is_some_and(|e| e != "toml" && e != "md")
        {
            return std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    panic!("no asset named {name}");
}

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    /// A server for the shipped pictures with default limits.
    pub async fn start() -> TestServer {
        TestServer::start_with(&assets_dir(), Limits::default()).await
    }

    pub async fn start_with(assets: &Path, limits: Limits) -> TestServer {
        let store = FolderStore::load(assets).unwrap_or_else(|e| panic!("loading assets: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(picture_server::serve(
            listener,
            Arc::new(store),
            limits,
            shutdown.clone(),
        ));
        TestServer {
            addr,
            shutdown,
            task,
        }
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

/// Sends one request on a new connection and returns the response.
pub async fn call(addr: SocketAddr, command: Command) -> Response {
    let mut stream = connect(addr).await;
    stream
        .write_all(&frame(1, command))
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    read_response(&mut stream, &mut Vec::new()).await
}

pub async fn catalog(addr: SocketAddr) -> Vec<PictureInfo> {
    let response = call(addr, Command::List).await;
    decode_catalog(&response.body).unwrap_or_else(|e| panic!("catalog: {e}"))
}

/// Writes `bytes` and reads until the server closes the connection.
pub async fn exchange_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).await;
    stream
        .write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    read_to_end(&mut stream).await
}

pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    within(stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    out
}
