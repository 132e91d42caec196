//! Command-line parsing and error lines shared by the picture programs (`picture-server`,
//! `picture-client`, `picture-bench`): an argument error is one line on standard error and exit
//! code 1, like every other failure, so that exit codes the programs give a meaning to
//! (picture-client's 2 for "no such picture") keep that one meaning; durations and counts are
//! checked against their ranges as they are parsed.

#![forbid(unsafe_code)]

use std::fmt::Display;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

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

/// An error and its causes on one line, each cause once: libraries often repeat their
/// cause's text in their own message, which `{:#}` would print again.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Shortest duration a flag takes: below a millisecond, timers cannot keep it.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// Longest duration a flag takes: a week is longer than any timeout is meant to be, and far
/// from where adding it to the clock could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A number of seconds (fractions allowed) from `MIN_DURATION` to `MAX_DURATION`.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if (MIN_DURATION..=MAX_DURATION).contains(&d) => Ok(d),
        _ => Err(format!(
            "must be from {} to {} seconds",
            MIN_DURATION.as_secs_f64(),
            MAX_DURATION.as_secs()
        )),
    }
}

/// A whole number from `min` to `max`, for counts and sizes.
pub fn within<N>(min: N, max: N) -> impl Fn(&str) -> Result<N, String> + Clone
where
    N: FromStr + PartialOrd + Display + Copy,
{
    move |text| match text.parse::<N>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_outside_the_range_are_refused() {
        for text in [
            "0",
            "0.000000001",
            "0.0009",
            "-1",
            "1e19",
            "1e300",
            "inf",
            "NaN",
            "",
            "x",
        ] {
            assert!(seconds(text).is_err(), "{text}");
        }
        assert_eq!(seconds("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("604800"), Ok(MAX_DURATION));
        assert!(seconds("604800.5").is_err());
    }

    #[test]
    fn each_cause_is_printed_once() {
        let inner = std::io::Error::other("disk on fire");
        let error = anyhow::Error::new(inner).context("writing x.png");
        assert_eq!(one_line(&error), "writing x.png: disk on fire");
        // A cause already in its parent's message is not repeated.
        let error = anyhow::anyhow!("disk on fire").context("write failed: disk on fire");
        assert_eq!(one_line(&error), "write failed: disk on fire");
    }

    #[test]
    fn counts_outside_the_range_are_refused() {
        let count = within(1usize, 10);
        assert_eq!(count("1"), Ok(1));
        assert_eq!(count("10"), Ok(10));
        for text in ["0", "11", "-1", "1.5", ""] {
            assert!(count(text).is_err(), "{text}");
        }
    }
}
