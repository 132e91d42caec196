//! `picture-client`: the interactive menu of the original client, plus scriptable subcommands.

#![forbid(unsafe_code)]

mod fetch;
mod menu;
mod preview;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use picture_protocol::{PictureInfo, Selector};
use picture_server::client::Client;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::fetch::{Outcome, fetch, file_name};

#[derive(Debug, Parser)]
#[command(version, about = "Fetches pictures from a picture server")]
struct Args {
    /// The picture server: HOST:PORT, or ws://HOST:PORT/ws through the WebSocket bridge.
    #[arg(
        long,
        short,
        env = "PICTURE_SERVER",
        default_value = "127.0.0.1:40674",
        global = true
    )]
    server: String,
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
    },
    /// Fetches one picture by menu number or name. Exits with 2 if there is no such picture.
    Get {
        /// Menu number or name (any case).
        choice: String,
        /// Where to save it ("-" for standard output); default: a file named after the picture.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Checks that the server answers.
    Ping,
}

/// Exit code for a picture that does not exist.
const EXIT_NOT_FOUND: u8 = 2;

fn main() -> ExitCode {
    let args: Args = match picture_server::args::parse("picture-client") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picture-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut client = rt.block_on(Client::connect(&args.server))?;
    match args.command {
        None => menu::run(&rt, &mut client),
        Some(Cmd::List { json }) => list(&rt, &mut client, json),
        Some(Cmd::Get { choice, output }) => get(&rt, &mut client, &choice, output),
        Some(Cmd::Ping) => {
            let started = std::time::Instant::now();
            rt.block_on(client.ping())?;
            println!("{} answered in {:.1?}", args.server, started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A catalog entry as `list --json` prints it.
#[derive(Serialize)]
struct JsonPicture<'a> {
    number: u32,
    name: &'a str,
    title: &'a str,
    mime: &'a str,
    width: u32,
    height: u32,
    size: u32,
    sha256: String,
}

fn list(rt: &Runtime, client: &mut Client, json: bool) -> anyhow::Result<ExitCode> {
    let pictures = rt.block_on(client.list())?;
    let mut out = std::io::stdout().lock();
    if json {
        let entries: Vec<JsonPicture> = pictures
            .iter()
            .map(|p| JsonPicture {
                number: p.number,
                name: &p.name,
                title: &p.title,
                mime: &p.mime,
                width: p.width,
                height: p.height,
                size: p.size,
                sha256: p.sha256_hex(),
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &pictures)?;
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

fn get(
    rt: &Runtime,
    client: &mut Client,
    choice: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let selector = Selector::from_choice(choice.as_bytes());
    let picture = match fetch(rt, client, &selector)? {
        Outcome::Found(picture) => picture,
        Outcome::NotFound => {
            eprintln!("picture-client: not found: the server has no picture {selector}");
            return Ok(ExitCode::from(EXIT_NOT_FOUND));
        }
    };
    match output {
        Some(path) if path.as_os_str() == "-" => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&picture.bytes)?;
            stdout.flush()?;
        }
        output => {
            let path = output.unwrap_or_else(|| PathBuf::from(file_name(&picture.info)));
            std::fs::write(&path, &picture.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{} -> {}", picture.summary(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
