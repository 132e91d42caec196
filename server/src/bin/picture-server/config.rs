//! `--config FILE`: every setting a flag takes, in a TOML file under the flag's name
//! (`max-connections = 2048`; `max_connections` works too). A flag beats the environment,
//! which beats the file, which beats the default: the file's settings are handed to clap as
//! flags, but only those that neither the command line nor the environment sets. A key that
//! no command takes is an error naming it; one that only another command takes is left to
//! that command, so one file can serve `picture-server`, `bridge`, `import` and `export`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use picture_server::store::StoreUrl;

/// Settings whose values `picture-server config` does not show.
const SECRETS: &[&str] = &["admin-token"];

/// The command line with the settings of the config file (if one is named) added, and the
/// names of the settings that came from the file.
pub fn with_file_settings(
    command: &Command,
    argv: Vec<OsString>,
) -> anyhow::Result<(Vec<OsString>, HashSet<String>)> {
    // Anything clap refuses is for clap to report, with the command line as it was given.
    let Ok(matches) = command.clone().try_get_matches_from(&argv) else {
        return Ok((argv, HashSet::new()));
    };
    let (running, running_matches) = match matches.subcommand() {
        Some((name, sub)) => (command.find_subcommand(name).unwrap_or(command), sub),
        None => (command, &matches),
    };
    let Some(path) = running_matches.get_one::<PathBuf>("config") else {
        return Ok((argv, HashSet::new()));
    };
    let table = read(path)?;
    let mut added = Vec::new();
    let mut from_file = HashSet::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let Some(arg) = running
            .get_arguments()
            .find(|a| a.get_long() == Some(&*name))
        else {
            let known = std::iter::once(command)
                .chain(command.get_subcommands())
                .any(|c| c.get_arguments().any(|a| a.get_long() == Some(&*name)));
            if known {
                continue;
            }
            bail!("{}: unknown setting {key:?}", path.display());
        };
        let id = arg.get_id().as_str();
        if matches!(
            running_matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{name}");
        match (value, arg.get_action()) {
            (toml::Value::Boolean(true), ArgAction::SetTrue) => added.push(flag.into()),
            (toml::Value::Boolean(false), ArgAction::SetTrue) => {}
            (toml::Value::Array(items), _) => {
                for item in items {
                    added.push(format!("{flag}={}", scalar(path, key, item)?).into());
                }
            }
            (value, _) => added.push(format!("{flag}={}", scalar(path, key, value)?).into()),
        }
        from_file.insert(id.to_owned());
    }
    // After the subcommand's name, where its flags go; the first word otherwise.
    let at = match matches.subcommand_name() {
        Some(name) => argv.iter().position(|a| a == name).map_or(1, |i| i + 1),
        None => 1,
    };
    let mut argv = argv;
    argv.splice(at.min(argv.len())..at.min(argv.len()), added);
    Ok((argv, from_file))
}

fn read(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
}

fn scalar(path: &Path, key: &str, value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => bail!(
            "{}: {key:?} must be a string, a number or a boolean",
            path.display()
        ),
    })
}

/// The effective settings of `command` as `matches` holds them, one `name = value  # source`
/// line each, secrets masked: what `picture-server config` prints.
pub fn describe(command: &Command, matches: &ArgMatches, from_file: &HashSet<String>) -> String {
    let mut out = String::from(
        "# The effective settings: flags, then the environment, then the config file, then \
         the defaults.\n",
    );
    for arg in command.get_arguments() {
        let (Some(name), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if matches!(name, "help" | "version" | "config") {
            continue;
        }
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) if from_file.contains(id) => "config file",
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => {
                out.push_str(&format!("# {name}: not set\n"));
                continue;
            }
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            // A store URL may hold a password: shown as the server shows it, masked.
            .map(|v| match name {
                "store" => v.parse::<StoreUrl>().map_or(v, |url| url.to_string()),
                _ => v,
            })
            .collect();
        let value = match values.as_slice() {
            _ if SECRETS.contains(&name) => "\"********\"".to_owned(),
            [one] => toml_value(one),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|v| toml_value(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!("{name} = {value}  # {source}\n"));
    }
    out
}

/// A value as TOML writes it: numbers and booleans bare, the rest quoted.
fn toml_value(raw: &str) -> String {
    if raw.parse::<i64>().is_ok() || raw.parse::<f64>().is_ok() || raw == "true" || raw == "false" {
        raw.to_owned()
    } else {
        toml::Value::String(raw.to_owned()).to_string()
    }
}
