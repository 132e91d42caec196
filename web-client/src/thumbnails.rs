//! The thumbnails the strip still needs, a few on their way at a time so that the picture the
//! reader asks for never waits behind a whole strip, and the box each is asked for in.

use std::collections::VecDeque;

/// Thumbnails asked for at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// The box a thumbnail is shown in, in CSS pixels (`.strip img` in `www/style.css`).
pub const THUMBNAIL_BOX: (u32, u32) = (112, 84);

/// A picture whose thumbnail is wanted: its name (to ask for it: a number shifts when a
/// picture before it is added or deleted) and its content's SHA-256 (what the thumbnail is
/// kept by: the same bytes under another name need no new one).
pub type Wanted = (String, [u8; 32]);

#[derive(Debug, Default)]
pub struct Thumbnails {
    wanted: VecDeque<Wanted>,
    in_flight: usize,
}

impl Thumbnails {
    /// The thumbnails the strip lacks now, in strip order; those wanted before and not asked
    /// for yet are forgotten.
    pub fn want(&mut self, wanted: Vec<Wanted>) {
        self.wanted = wanted.into();
    }

    /// The next thumbnail to ask for, unless enough are on their way.
    pub fn next_to_ask(&mut self) -> Option<Wanted> {
        if self.in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        let next = self.wanted.pop_front()?;
        self.in_flight += 1;
        Some(next)
    }

    /// One that was asked for is answered, or failed.
    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The connection is gone with every request on it: start over when the menu is read again.
    pub fn reset(&mut self) {
        *self = Thumbnails::default();
    }
}

/// The largest size, in device pixels, that shows crisply in a box of `css` pixels on a
/// screen with `device_pixel_ratio` device pixels per CSS pixel. A side of 0 (not measured)
/// stays 0: no bound.
pub fn device_box(css: (u32, u32), device_pixel_ratio: f64) -> (u32, u32) {
    let ratio = if device_pixel_ratio.is_finite() && device_pixel_ratio > 0.0 {
        device_pixel_ratio.min(8.0)
    } else {
        1.0
    };
    // `as` saturates; the ratio is at most 8, so the sides stay far from the limit.
    let scale = |side: u32| (f64::from(side) * ratio).ceil() as u32;
    (scale(css.0), scale(css.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_a_few_are_on_their_way() {
        let mut thumbnails = Thumbnails::default();
        let wanted = |n: u8| (format!("p{n}"), [n; 32]);
        thumbnails.want((1..=10).map(wanted).collect());
        let first: Vec<[u8; 32]> = std::iter::from_fn(|| thumbnails.next_to_ask())
            .map(|(_, sha256)| sha256)
            .collect();
        assert_eq!(first, vec![[1; 32], [2; 32], [3; 32], [4; 32]]);
        thumbnails.finished();
        assert_eq!(thumbnails.next_to_ask(), Some(wanted(5)));
        assert_eq!(thumbnails.next_to_ask(), None);
        // A new menu replaces what was still wanted; those on their way still count.
        thumbnails.want(vec![wanted(7)]);
        assert_eq!(thumbnails.next_to_ask(), None);
        thumbnails.finished();
        assert_eq!(thumbnails.next_to_ask(), Some(wanted(7)));
        thumbnails.reset();
        assert_eq!(thumbnails.next_to_ask(), None);
        thumbnails.want(vec![wanted(9)]);
        assert_eq!(thumbnails.next_to_ask(), Some(wanted(9)));
    }

    #[test]
    fn the_box_is_in_device_pixels() {
        assert_eq!(device_box((112, 84), 1.0), (112, 84));
        assert_eq!(device_box((112, 84), 2.0), (224, 168));
        assert_eq!(device_box((112, 84), 1.5), (168, 126));
        assert_eq!(device_box((112, 84), 2.625), (294, 221));
        assert_eq!(device_box((112, 84), f64::NAN), (112, 84));
        assert_eq!(device_box((112, 84), 0.0), (112, 84));
        assert_eq!(device_box((0, 84), 3.0), (0, 252));
    }
}
