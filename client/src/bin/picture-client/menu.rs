//! The interactive menu, as the original client had it: pick a number, get the picture, see it,
//! go again.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use picture_client::Client;
use picture_protocol::{Selector, Variant};
use tokio::runtime::Runtime;

use crate::fetch::{Outcome, fetch_from, file_name};
use crate::preview;

pub fn run(rt: &Runtime, client: &mut Client) -> anyhow::Result<ExitCode> {
    let mut input = io::stdin().lock();
    loop {
        let catalog = rt.block_on(client.list())?;
        println!("What picture do you want?");
        for p in &catalog {
            println!("{}. {}", p.number, p.title);
        }
        let Some(choice) = ask(&mut input, "Number of choice: ")? else {
            return Ok(ExitCode::SUCCESS);
        };
        if choice.is_empty() {
            continue;
        }
        match fetch_from(
            rt,
            client,
            &catalog,
            &Selector::from_choice(choice.as_bytes()),
            Variant::default(),
        )? {
            Outcome::NotFound => {
                println!("There is no picture {choice:?}; the server sent its not-found picture.");
            }
            Outcome::Found(picture) => {
                let path = file_name(&picture.info);
                std::fs::write(&path, &picture.bytes)?;
                println!("{}. Saved as {path}.", picture.summary());
                if yes(&mut input, "Show it? [Y/n] ")? {
                    preview::show(Path::new(&path), &picture.bytes)?;
                }
            }
        }
        if !yes(&mut input, "Get another picture? [Y/n] ")? {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Prints a prompt and reads one line; `None` at end of input.
fn ask(input: &mut impl BufRead, prompt: &str) -> io::Result<Option<String>> {
    print!("{prompt}");
    io::stdout().flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        println!();
        return Ok(None);
    }
    Ok(Some(line.trim().to_owned()))
}

/// A yes/no question where Enter means yes and end of input means no.
fn yes(input: &mut impl BufRead, prompt: &str) -> io::Result<bool> {
    Ok(match ask(input, prompt)? {
        None => false,
        Some(answer) => !answer.to_lowercase().starts_with('n'),
    })
}
