//! Command-line parsing shared by the binaries: an argument error is one line on standard
//! error and exit code 1, like every other failure, so that exit codes the binaries give a
//! meaning to (picture-client's 2 for "no such picture") keep that one meaning.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// The parsed arguments, or the exit code after the message is printed (help and version
/// print as usual and exit 0).
pub fn parse<A: Parser>(program: &str) -> Result<A, ExitCode> {
    match A::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            // clap's message is several lines with the usage; its first line says it all.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{program}: {first} (see --help)");
            Err(ExitCode::FAILURE)
        }
    }
}
