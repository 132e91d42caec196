//! Text the page shows about a picture: sizes, durations and the details line. Pure, so the
//! wording is tested natively and in the browser alike.

/// A byte count in binary units with one decimal, as the command-line client prints it:
/// `512 B`, `992.2 KiB`, `1.4 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Integer arithmetic on tenths of a unit: formatting floats would add their whole
    // formatting machinery to the WebAssembly module.
    let mut unit = 0;
    let mut divisor = 1024_u128;
    let tenths = loop {
        let tenths = (u128::from(bytes) * 10 + divisor / 2) / divisor;
        // 1023.95 KiB and up would print as "1024.0 KiB"; it moves to the next unit instead.
        if tenths < 10_240 || unit + 1 == UNITS.len() {
            break tenths;
        }
        divisor *= 1024;
        unit += 1;
    };
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// A duration measured with `performance.now()`: whole milliseconds below a second
/// (`12 ms`), seconds with up to two decimals above (`1.25 s`, `15 s`). Negative or
/// not-a-number readings, which a clock adjustment could produce, show as `0 ms`.
pub fn human_duration(ms: f64) -> String {
    // `as` saturates: NaN and negative readings become 0.
    let ms = ms.round() as u64;
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let hundredths = (ms + 5) / 10;
    let seconds = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    format!("{} s", seconds.trim_end_matches('0').trim_end_matches('.'))
}

/// What `#details` says about the picture on show.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    /// The catalog title, or a note that the server sent its not-found picture.
    pub title: String,
    pub width: u32,
    pub height: u32,
    /// The picture's own size, when what is shown is a smaller variant of it.
    pub full_size: Option<(u32, u32)>,
    pub mime: String,
    pub bytes: u64,
    /// From sending the request to receiving the whole answer.
    pub elapsed_ms: f64,
}

impl Details {
    /// `House — 720 × 360, image/png, 354.6 KiB in 12 ms`; for a variant,
    /// `Mountain — 1064 × 798 (full size 3264 × 2448), image/jpeg, 95.2 KiB in 40 ms`.
    pub fn text(&self) -> String {
        let full_size = self
            .full_size
            .map(|(width, height)| format!(" (full size {width} × {height})"))
            .unwrap_or_default();
        format!(
            "{} — {} × {}{full_size}, {}, {} in {}",
            self.title,
            self.width,
            self.height,
            self.mime,
            human_size(self.bytes),
            human_duration(self.elapsed_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_command_line_client() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1_016_049), "992.2 KiB");
        assert_eq!(human_size(363_115), "354.6 KiB");
        assert_eq!(human_size(1_048_575), "1.0 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_size(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.0), "0 ms");
        assert_eq!(human_duration(12.4), "12 ms");
        assert_eq!(human_duration(999.4), "999 ms");
        assert_eq!(human_duration(999.6), "1 s");
        assert_eq!(human_duration(1500.0), "1.5 s");
        assert_eq!(human_duration(8000.0), "8 s");
        assert_eq!(human_duration(10_000.0), "10 s");
        assert_eq!(human_duration(59_996.0), "60 s");
        assert_eq!(human_duration(1250.0), "1.25 s");
        assert_eq!(human_duration(-3.0), "0 ms");
        assert_eq!(human_duration(f64::NAN), "0 ms");
    }

    #[test]
    fn details_line() {
        let details = Details {
            title: "House".into(),
            width: 720,
            height: 360,
            full_size: None,
            mime: "image/png".into(),
            bytes: 363_115,
            elapsed_ms: 12.0,
        };
        assert_eq!(
            details.text(),
            "House — 720 × 360, image/png, 354.6 KiB in 12 ms"
        );
        let variant = Details {
            title: "Mountain".into(),
            width: 1064,
            height: 798,
            full_size: Some((3264, 2448)),
            mime: "image/jpeg".into(),
            bytes: 97_485,
            elapsed_ms: 40.0,
        };
        assert_eq!(
            variant.text(),
            "Mountain — 1064 × 798 (full size 3264 × 2448), image/jpeg, 95.2 KiB in 40 ms"
        );
    }
}
