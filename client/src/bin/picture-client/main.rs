//! `picture-client`: the interactive menu of the original client, plus scriptable subcommands.

#![forbid(unsafe_code)]

mod edit;
mod fetch;
mod menu;
mod preview;

use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use picture_client::Client;
use picture_protocol::{Format, PictureInfo, Selector, Variant};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::edit::Edit;
use crate::fetch::{Outcome, fetch, file_name, variant_file_name};

#[derive(Debug, Parser)]
#[command(version, about = "Fetches pictures from a picture server")]
struct Args {
    /// The picture server: HOST:PORT, tls://HOST:PORT over TLS, or ws://HOST:PORT/ws
    /// (wss:// over TLS) through the WebSocket bridge.
    #[arg(
        long,
        short,
        env = "PICTURE_SERVER",
        default_value = "127.0.0.1:40674",
        global = true
    )]
    server: String,
    /// PEM file of the certificate authority to trust for tls:// and wss:// (a private CA)
    /// instead of the system's.
    #[arg(long, env = "PICTURE_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    /// The admin token, for the commands that change pictures.
    #[arg(long, env = "PICTURE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Lists the pictures the server holds.
    List {
        /// One JSON array for programs instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the pictures whose name or title contains this text (ignoring case).
        #[arg(long)]
        search: Option<String>,
    },
    /// Fetches one picture by menu number or name. Exits with 2 if there is no such picture.
    Get {
        /// Menu number or name (any case).
        choice: String,
        /// Where to save it ("-" for standard output); default: a file named after the picture.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Scaled down to at most this width, in pixels (never scaled up; aspect ratio kept).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        width: Option<u32>,
        /// Scaled down to at most this height, in pixels.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        height: Option<u32>,
        /// Converted to this format: jpeg, png or webp.
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
    },
    /// Checks that the server answers.
    Ping,
    /// Uploads a picture (needs the token). Exits with 4 if the server refuses it.
    Put {
        /// JPEG, PNG, GIF or WebP file.
        file: PathBuf,
        /// Name to store it under [default: the file's name without its ending].
        #[arg(long)]
        name: Option<String>,
        /// Title the menu shows [default: made from the name].
        #[arg(long, default_value = "")]
        title: String,
        /// Replace the picture of that name instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    /// Deletes a picture (needs the token).
    Delete {
        /// Menu number or name.
        choice: String,
    },
    /// Gives a picture a new name (needs the token).
    Rename { choice: String, new_name: String },
    /// Gives a picture a new title (needs the token).
    Retitle { choice: String, title: String },
    /// Moves a picture to a menu position, 1 being first (needs the token).
    Move { choice: String, position: u32 },
    /// Prints every change to the catalog as it happens, one line each.
    Watch {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args: Args = match picture_args::parse("picture-client") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picture-client: {}", picture_args::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut client = rt.block_on(Client::connect_trusting(
        &args.server,
        args.ca_cert.as_deref(),
    ))?;
    let token = args.token.as_deref();
    match args.command {
        None => menu::run(&rt, &mut client),
        Some(Cmd::List { json, search }) => list(&rt, &mut client, json, search.as_deref()),
        Some(Cmd::Get {
            choice,
            output,
            width,
            height,
            format,
        }) => {
            let variant = Variant {
                max_width: width.and_then(NonZeroU32::new),
                max_height: height.and_then(NonZeroU32::new),
                format,
            };
            get(&rt, &mut client, &choice, variant, output)
        }
        Some(Cmd::Watch { json }) => edit::watch(&rt, &mut client, json),
        Some(Cmd::Put {
            file,
            name,
            title,
            replace,
        }) => {
            let put = Edit::Put {
                file: &file,
                name,
                title,
                replace,
            };
            edit::run(&rt, &mut client, token, put)
        }
        Some(Cmd::Delete { choice }) => {
            edit::run(&rt, &mut client, token, Edit::Delete(choose(&choice)))
        }
        Some(Cmd::Rename { choice, new_name }) => edit::run(
            &rt,
            &mut client,
            token,
            Edit::Rename(choose(&choice), new_name),
        ),
        Some(Cmd::Retitle { choice, title }) => edit::run(
            &rt,
            &mut client,
            token,
            Edit::Retitle(choose(&choice), title),
        ),
        Some(Cmd::Move { choice, position }) => edit::run(
            &rt,
            &mut client,
            token,
            Edit::Move(choose(&choice), position),
        ),
        Some(Cmd::Ping) => {
            let started = std::time::Instant::now();
            rt.block_on(client.ping())?;
            println!("{} answered in {:.1?}", args.server, started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A menu number or a name, as a person types it.
fn choose(choice: &str) -> Selector {
    Selector::from_choice(choice.as_bytes())
}

/// A catalog entry as `list --json` prints it.
#[derive(Serialize)]
pub struct JsonPicture<'a> {
    number: u32,
    name: &'a str,
    title: &'a str,
    mime: &'a str,
    width: u32,
    height: u32,
    size: u32,
    sha256: String,
}

impl<'a> From<&'a PictureInfo> for JsonPicture<'a> {
    fn from(p: &'a PictureInfo) -> Self {
        JsonPicture {
            number: p.number,
            name: &p.name,
            title: &p.title,
            mime: &p.mime,
            width: p.width,
            height: p.height,
            size: p.size,
            sha256: p.sha256_hex(),
        }
    }
}

fn list(
    rt: &Runtime,
    client: &mut Client,
    json: bool,
    search: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let pictures = rt.block_on(client.list_all(search.unwrap_or_default()))?;
    let mut out = std::io::stdout().lock();
    if json {
        let entries: Vec<JsonPicture> = pictures.iter().map(JsonPicture::from).collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &pictures)?;
        let formats: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        writeln!(
            out,
            "Any picture also comes scaled down or as {} (get --width, --height, --format).",
            formats.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(out: &mut impl Write, pictures: &[PictureInfo]) -> std::io::Result<()> {
    let name_width = pictures
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let title_width = pictures
        .iter()
        .map(|p| p.title.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:>3}  {:name_width$}  {:title_width$}  {:10}  {:>11}  {:>9}",
        "#", "NAME", "TITLE", "TYPE", "SIZE", "BYTES"
    )?;
    for p in pictures {
        writeln!(
            out,
            "{:>3}  {:name_width$}  {:title_width$}  {:10}  {:>11}  {:>9}",
            p.number,
            p.name,
            p.title,
            p.mime,
            format!("{}x{}", p.width, p.height),
            p.size
        )?;
    }
    Ok(())
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("not a format the protocol knows ({})", names.join(", "))
    })
}

fn get(
    rt: &Runtime,
    client: &mut Client,
    choice: &str,
    variant: Variant,
    output: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let selector = Selector::from_choice(choice.as_bytes());
    let picture = match fetch(rt, client, &selector, variant)? {
        Outcome::Found(picture) => picture,
        Outcome::NotFound => {
            eprintln!("picture-client: not found: the server has no picture {selector}");
            return Ok(ExitCode::from(edit::EXIT_NOT_FOUND));
        }
    };
    match output {
        Some(path) if path.as_os_str() == "-" => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&picture.bytes)?;
            stdout.flush()?;
        }
        output => {
            let path = output.unwrap_or_else(|| {
                PathBuf::from(if variant.is_original() {
                    file_name(&picture.info)
                } else {
                    variant_file_name(&picture.info)
                })
            });
            std::fs::write(&path, &picture.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{} -> {}", picture.summary(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
