//! The bytes every answer is compared with, fetched once before the load starts.
//!
//! Normally they come from the server itself and are checked against its catalog's SHA-256,
//! so that a run proves the server hands out the right picture. A server that speaks only bare
//! choices (the original Python one) has no catalog; there, the first body received is the
//! reference, which still catches answers that differ from one another.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use picture_protocol::{
    Command, GetRequest, PictureInfo, Request, Selector, Variant, decode_catalog,
};
use sha2::{Digest, Sha256};
use tokio::time::timeout;

use crate::bare;
use crate::conn::Conn;
use crate::stream::Target;

/// How long a server may take to answer a LIST before bare mode decides it does not speak the
/// framed protocol.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Checked against the size and SHA-256 in the server's catalog.
    Catalog,
    /// The first body a bare request brought.
    FirstBody,
    /// The first answer to the PAGE request, its entries checked against the request.
    Page,
    /// The file as the server stored it; each upload's answer is checked against the SHA-256
    /// of the variant sent.
    Upload,
    /// The first answer to the request for a variant (scaled or converted): its bytes are
    /// not in the catalog, but a server makes the same ones every time.
    FirstVariant,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Catalog => "catalog",
            Source::FirstBody => "first-body",
            Source::Page => "first-page",
            Source::Upload => "upload",
            Source::FirstVariant => "first-variant",
        }
    }
}

pub struct Reference {
    /// The picture's name in the catalog, or the choice as given when there is no catalog.
    pub name: String,
    pub bytes: Vec<u8>,
    pub source: Source,
}

/// For framed mode: LIST and GET on one connection, the picture checked against the catalog.
pub async fn from_catalog(
    target: &Target,
    ws_protocol: Option<&str>,
    selector: &Selector,
) -> anyhow::Result<Reference> {
    let mut conn = Conn::connect(target, ws_protocol).await?;
    let catalog = list(&mut conn).await?;
    fetch_checked(&mut conn, &catalog, selector).await
}

/// For a variant: the first answer to a GET for it, from a picture the catalog lists.
pub async fn for_variant(
    target: &Target,
    ws_protocol: Option<&str>,
    selector: &Selector,
    variant: Variant,
) -> anyhow::Result<Reference> {
    let mut conn = Conn::connect(target, ws_protocol).await?;
    let catalog = list(&mut conn).await?;
    let Some(info) = catalog.iter().find(|p| p.is_selected_by(selector)) else {
        bail!("the server has no picture {selector}");
    };
    let request = Request {
        id: 2,
        command: Command::Get(GetRequest {
            selector: selector.clone(),
            variant,
        }),
    };
    let bytes = conn
        .call(&request)
        .await
        .with_context(|| format!("GET {selector} as {variant:?} failed"))?;
    ensure!(!bytes.is_empty(), "the server sent an empty variant");
    Ok(Reference {
        name: info.name.clone(),
        bytes,
        source: Source::FirstVariant,
    })
}

/// For bare mode: the catalog's picture if the server also speaks framed mode, otherwise the
/// first body of a bare request.
pub async fn for_bare(
    target: &Target,
    selector: &Selector,
    choice: &str,
) -> anyhow::Result<Reference> {
    let mut conn = Conn::connect(target, None).await?;
    match timeout(PROBE_TIMEOUT, list(&mut conn)).await {
        Ok(Ok(catalog)) => fetch_checked(&mut conn, &catalog, selector).await,
        failed => {
            let why = match failed {
                Ok(Err(e)) => format!("{e:#}"),
                _ => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
            eprintln!(
                "picture-bench: the server does not answer LIST ({why}); \
                 every body is compared with the first one received"
            );
            let mut bytes = Vec::new();
            bare::fetch(target.addr(), choice.as_bytes(), &mut bytes)
                .await
                .context("the first bare request failed")?;
            Ok(Reference {
                name: choice.to_owned(),
                bytes,
                source: Source::FirstBody,
            })
        }
    }
}

async fn list(conn: &mut Conn) -> anyhow::Result<Vec<PictureInfo>> {
    let request = Request {
        id: 1,
        command: Command::List,
    };
    let body = conn.call(&request).await.context("LIST failed")?;
    decode_catalog(&body).context("the server sent an invalid catalog")
}

/// GETs the picture `selector` names and checks it against its catalog entry.
async fn fetch_checked(
    conn: &mut Conn,
    catalog: &[PictureInfo],
    selector: &Selector,
) -> anyhow::Result<Reference> {
    let Some(info) = catalog.iter().find(|p| p.is_selected_by(selector)) else {
        let names: Vec<&str> = catalog.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "the server has no picture {selector}; it has {}",
            names.join(", ")
        );
    };
    let request = Request {
        id: 2,
        command: Command::Get(GetRequest {
            selector: selector.clone(),
            variant: Variant::default(),
        }),
    };
    let bytes = conn
        .call(&request)
        .await
        .with_context(|| format!("GET {selector} failed"))?;
    ensure!(
        bytes.len() == info.size as usize,
        "the server sent {} bytes for {}, and its catalog says {}",
        bytes.len(),
        info.name,
        info.size
    );
    ensure!(
        Sha256::digest(&bytes).as_slice() == info.sha256,
        "the bytes of {} do not match the SHA-256 in the catalog",
        info.name
    );
    Ok(Reference {
        name: info.name.clone(),
        bytes,
        source: Source::Catalog,
    })
}
