//! How long to wait before each reconnection attempt: doubling from a short first delay up to
//! a cap, so a restarting server is found again quickly and a dead one is not hammered.

/// Exponential backoff between reconnection attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first_ms: u32,
    max_ms: u32,
    next_ms: u32,
}

impl Backoff {
    /// Delays of `first_ms`, twice that, ... never more than `max_ms`.
    pub const fn new(first_ms: u32, max_ms: u32) -> Backoff {
        Backoff {
            first_ms,
            max_ms,
            next_ms: first_ms,
        }
    }

    /// The delay before the next attempt; each call doubles the one after it.
    pub fn next_delay_ms(&mut self) -> u32 {
        let delay = self.next_ms.min(self.max_ms);
        self.next_ms = delay.saturating_mul(2).min(self.max_ms);
        delay
    }

    /// Starts over from the first delay, once a connection has proved usable.
    pub fn reset(&mut self) {
        self.next_ms = self.first_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(250, 8000);
        let delays: Vec<u32> = (0..8).map(|_| backoff.next_delay_ms()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(), 250);
    }

    #[test]
    fn never_overflows() {
        let mut backoff = Backoff::new(u32::MAX / 2 + 1, u32::MAX);
        for _ in 0..4 {
            assert!(backoff.next_delay_ms() > 0);
        }
    }
}
