//! The commands that change the catalog (they need the admin token), and `watch`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use picture_client::{Client, ClientError};
use picture_protocol::{Change, ChangeKind, PictureInfo, Selector, Status};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::JsonPicture;
use crate::fetch::{Progress, human_bytes};

/// Exit codes a script can tell apart.
pub const EXIT_NOT_FOUND: u8 = 2;
pub const EXIT_NOT_AUTHORISED: u8 = 3;
pub const EXIT_REJECTED: u8 = 4;

/// What a write does.
pub enum Edit<'a> {
    Put {
        file: &'a Path,
        name: Option<String>,
        title: String,
        replace: bool,
    },
    Delete(Selector),
    Rename(Selector, String),
    Retitle(Selector, String),
    Move(Selector, u32),
}

/// Presents the token, makes the change and prints what the server did. A refusal is one line
/// on standard error and the exit code for its reason.
pub fn run(
    rt: &Runtime,
    client: &mut Client,
    token: Option<&str>,
    edit: Edit<'_>,
) -> anyhow::Result<ExitCode> {
    let Some(token) = token else {
        eprintln!(
            "picture-client: changing pictures needs the admin token: --token or PICTURE_TOKEN"
        );
        return Ok(ExitCode::from(EXIT_NOT_AUTHORISED));
    };
    let result = rt.block_on(async {
        client.authenticate(token).await?;
        apply(client, edit).await
    });
    match result {
        Ok(message) => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Client(ClientError::Server { status, message })) => {
            eprintln!("picture-client: {}: {message}", status.describe());
            Ok(ExitCode::from(exit_code(status)))
        }
        Err(Failure::Client(e)) => Err(e.into()),
        Err(Failure::Other(e)) => Err(e),
    }
}

fn exit_code(status: Status) -> u8 {
    match status {
        Status::NotFound => EXIT_NOT_FOUND,
        Status::Unauthorized | Status::WritesDisabled => EXIT_NOT_AUTHORISED,
        Status::Rejected | Status::Conflict | Status::TooLarge => EXIT_REJECTED,
        _ => 1,
    }
}

enum Failure {
    Client(ClientError),
    Other(anyhow::Error),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

async fn apply(client: &mut Client, edit: Edit<'_>) -> Result<String, Failure> {
    let shown = |verb: &str, p: &PictureInfo| {
        format!(
            "{verb} {} ({}): number {}, {}x{} {}",
            p.title, p.name, p.number, p.width, p.height, p.mime
        )
    };
    Ok(match edit {
        Edit::Put {
            file,
            name,
            title,
            replace,
        } => {
            let bytes = std::fs::read(file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map_err(Failure::Other)?;
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
                    .context("the file's name gives no picture name: use --name")
                    .map_err(Failure::Other)?,
            };
            let bar = Progress::new();
            let stored = client
                .put(&name, &title, replace, &bytes, |done, total| {
                    bar.update(done, total)
                })
                .await;
            bar.finish();
            let stored = stored?;
            let stripped = bytes.len().saturating_sub(stored.size as usize);
            let mut line = shown("stored", &stored);
            line.push_str(&format!(", {}", human_bytes(u64::from(stored.size))));
            if stripped > 0 {
                line.push_str(&format!(
                    " ({} of metadata removed)",
                    human_bytes(stripped as u64)
                ));
            }
            line
        }
        Edit::Delete(selector) => {
            client.delete(selector.clone()).await?;
            format!("deleted {selector}")
        }
        Edit::Rename(selector, name) => shown("renamed", &client.rename(selector, &name).await?),
        Edit::Retitle(selector, title) => {
            shown("retitled", &client.retitle(selector, &title).await?)
        }
        Edit::Move(selector, position) => {
            shown("moved", &client.move_to(selector, position).await?)
        }
    })
}

/// A change as `watch --json` prints it.
#[derive(Serialize)]
struct JsonChange<'a> {
    version: u64,
    change: &'static str,
    name: &'a str,
    picture: Option<JsonPicture<'a>>,
}

/// Prints every change as it happens, one line each, until the connection ends.
pub fn watch(rt: &Runtime, client: &mut Client, json: bool) -> anyhow::Result<ExitCode> {
    let version = rt.block_on(client.watch())?;
    eprintln!("picture-client: watching from catalog version {version}");
    let mut out = std::io::stdout().lock();
    loop {
        let change = rt.block_on(client.next_change())?;
        if json {
            let line = JsonChange {
                version: change.version,
                change: change.kind.name(),
                name: &change.name,
                picture: change.picture.as_ref().map(JsonPicture::from),
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", describe(&change))?;
        }
        out.flush()?;
    }
}

fn describe(change: &Change) -> String {
    let after = change.picture.as_ref();
    let title = after.map_or("", |p| p.title.as_str());
    let number = after.map_or(0, |p| p.number);
    match change.kind {
        ChangeKind::Added => format!(
            "v{} added {} #{number} \"{title}\"",
            change.version, change.name
        ),
        ChangeKind::Replaced => format!("v{} replaced {} #{number}", change.version, change.name),
        ChangeKind::Removed => format!("v{} removed {}", change.version, change.name),
        ChangeKind::Renamed => format!(
            "v{} renamed {} -> {}",
            change.version,
            change.name,
            after.map_or("", |p| p.name.as_str())
        ),
        ChangeKind::Retitled => format!("v{} retitled {} \"{title}\"", change.version, change.name),
        ChangeKind::Moved => format!("v{} moved {} to #{number}", change.version, change.name),
        ChangeKind::Lost => "some changes were missed: reload the catalog".to_owned(),
    }
}
