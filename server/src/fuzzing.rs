//! Entry points for the fuzz targets in `fuzz/`: the checks that take bytes from a peer or a
//! file, callable without sockets. Built only with the `fuzzing` feature; none of it is part
//! of the server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::answer::Service;
use crate::store::manifest::Manifest;
use crate::store::{Folder, OpenError, Store, UploadRules, upload};
use crate::web::{BridgeConfig, Upstream, bridge};

/// Parses a `catalog.toml`.
pub fn catalog_toml(text: &str) {
    let _ = Manifest::parse(text);
}

/// Checks an upload as the server does before storing it (format, header, pixel cap, colour
/// profile, decode, container walk, metadata removal), under a pixel cap small enough that
/// decoding stays quick.
pub fn upload(bytes: &[u8]) {
    let rules = UploadRules {
        max_pixels: 1 << 22,
        keep_metadata: false,
    };
    let _ = upload::check(Bytes::copy_from_slice(bytes), rules);
}

/// Makes variants of `bytes` as the server makes them of a stored picture: fitted in a small
/// box as JPEG, PNG and WebP, under a pixel cap small enough that decoding stays quick.
pub fn variant(bytes: &[u8]) {
    use std::num::NonZeroU32;

    use picture_protocol::Format;

    use crate::variants::render::{Bounds, Target, render};

    let bytes = Bytes::copy_from_slice(bytes);
    for format in Format::ALL {
        let target = Target {
            max_width: NonZeroU32::new(48),
            max_height: NonZeroU32::new(32),
            format,
        };
        let bounds = Bounds {
            max_pixels: 1 << 22,
            max_bytes: 1 << 20,
            deadline: std::time::Instant::now() + Duration::from_secs(10),
        };
        let _ = render(&bytes, target, bounds);
    }
}

/// A WebSocket bridge answering from a folder of pictures, fed the bytes a browser sends.
pub struct Bridge {
    runtime: tokio::runtime::Runtime,
    config: BridgeConfig,
}

/// Why a fuzzing bridge could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BridgeSetupError {
    #[error(transparent)]
    Store(#[from] OpenError),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl Bridge {
    /// A bridge over the pictures in `assets`, or why there is none.
    pub fn new(assets: &Path) -> Result<Bridge, BridgeSetupError> {
        let store = Store::from_folder(Folder::load(assets).map_err(OpenError::from)?);
        let service = Arc::new(Service::new(Arc::new(store), None));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let config = BridgeConfig {
            upstream: Upstream::local(service),
            idle_timeout: Duration::from_secs(60),
            max_request_payload: picture_protocol::MAX_REQUEST_PAYLOAD,
            max_upload_size: crate::limits::DEFAULT_MAX_UPLOAD_SIZE,
        };
        Ok(Bridge { runtime, config })
    }

    /// One session: `from_browser` as everything the browser sends after the handshake,
    /// then the end of its stream; whatever the bridge answers is read and dropped.
    pub fn session(&self, from_browser: &[u8]) {
        let (browser, bridge_side) = tokio::io::duplex(64 * 1024);
        let (mut from_bridge, mut to_bridge) = tokio::io::split(browser);
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let shutdown = CancellationToken::new();
        self.runtime.block_on(async {
            let send = async {
                let _ = tokio::io::AsyncWriteExt::write_all(&mut to_bridge, from_browser).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_bridge).await;
                // Kept open until the session ends, so the end is the stream's, not a reset.
                std::future::pending::<()>().await;
            };
            let drain = async {
                let mut sink = vec![0; 64 * 1024];
                while matches!(from_bridge.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            let session = async {
                bridge::run(bridge_side, peer, &self.config, 64 * 1024, &shutdown).await;
            };
            // The session's answers are read as they come, or the bridge would wait on a full
            // stream; the session's end drops its side, which ends the reading.
            let answered = async {
                tokio::join!(session, drain);
            };
            tokio::select! {
                () = answered => {}
                () = send => {}
            }
        });
    }
}
