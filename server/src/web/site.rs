//! The page's files: built into the binary from `www/` (the page and its wasm bundle, as they
//! were when the binary was built), or read from a folder given with `--www` while the page
//! is being worked on.
//!
//! Built in, a file is served from the binary's memory with a strong `ETag` (its SHA-256), so
//! a browser's revalidation of an unchanged file gets 304 and no body; a folder is served as
//! files are, revalidated by `Last-Modified`.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rust_embed::Embed;
use tower_http::services::ServeDir;

/// `www/` at build time.
#[derive(Embed)]
#[folder = "../www/"]
struct Builtin;

/// Where the page's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The files built into this binary.
    Builtin,
    /// A folder with `index.html` and the `pkg/` bundle.
    Folder(PathBuf),
}

impl Site {
    /// Whether the page's wasm bundle is there (a folder may lack it until it is built).
    pub fn has_bundle(&self) -> bool {
        match self {
            Site::Builtin => Builtin::iter().any(|name| name.starts_with("pkg/")),
            Site::Folder(www) => www.join("pkg").is_dir(),
        }
    }

    /// A router serving the files, to be the fallback of the page's other routes.
    pub fn router(&self) -> Router {
        match self {
            Site::Builtin => Router::new().fallback(get(builtin_file)),
            Site::Folder(www) => Router::new()
                .nest_service("/pkg", ServeDir::new(www.join("pkg")))
                .fallback_service(ServeDir::new(www)),
        }
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Builtin => f.write_str("the page built into this binary"),
            Site::Folder(www) => write!(f, "{}", www.display()),
        }
    }
}

/// One built-in file, or 404. Names are matched exactly: nothing else is reachable.
async fn builtin_file(request: Request) -> Response {
    let name = match request.uri().path() {
        "/" => "index.html",
        path => &path[1..],
    };
    let Some(file) = Builtin::get(name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&hash[..16]));
    let Ok(etag) = HeaderValue::from_str(&etag) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let unchanged = request
        .headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match file.data {
            std::borrow::Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
        };
        let mut response = Response::new(Body::from(body));
        if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
            response.headers_mut().insert(CONTENT_TYPE, mime);
        }
        response
    };
    response.headers_mut().insert(ETAG, etag);
    response
}
