//! Requests sent and not yet answered, oldest first. Bounded, so a server that stops answering
//! cannot make the page hold an ever-growing list.

use std::collections::VecDeque;

/// A request waiting for its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight<T> {
    pub id: u32,
    /// `performance.now()` when it was sent, to tell how long the transfer took.
    pub sent_ms: f64,
    /// What the answer is for.
    pub purpose: T,
}

/// Refused because `capacity` requests are already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The requests in flight on one connection, in the order they were sent (which is the order
/// the server answers them in).
#[derive(Debug)]
pub struct Pending<T> {
    in_flight: VecDeque<InFlight<T>>,
    capacity: usize,
    last_id: u32,
}

impl<T> Pending<T> {
    pub fn new(capacity: usize) -> Pending<T> {
        Pending {
            in_flight: VecDeque::with_capacity(capacity),
            capacity,
            last_id: 0,
        }
    }

    /// Records a request about to be sent and gives it a fresh id. Ids never repeat among the
    /// requests in flight and are never 0, which the server uses for unreadable requests.
    pub fn start(&mut self, purpose: T, now_ms: f64) -> Result<u32, Full> {
        if self.in_flight.len() >= self.capacity {
            return Err(Full);
        }
        let id = loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && self.in_flight.iter().all(|r| r.id != self.last_id) {
                break self.last_id;
            }
        };
        self.in_flight.push_back(InFlight {
            id,
            sent_ms: now_ms,
            purpose,
        });
        Ok(id)
    }

    /// The request an answer with this id is for, if it is still waiting. Id 0 means the
    /// server could not read the request; answers come in order, so it is the oldest one.
    pub fn take(&mut self, id: u32) -> Option<InFlight<T>> {
        if id == 0 {
            return self.in_flight.pop_front();
        }
        let position = self.in_flight.iter().position(|r| r.id == id)?;
        self.in_flight.remove(position)
    }

    /// Whether a request for this purpose is waiting.
    pub fn is_waiting(&self, purpose: &T) -> bool
    where
        T: PartialEq,
    {
        self.in_flight.iter().any(|r| r.purpose == *purpose)
    }

    /// Every waiting request, oldest first, for when the connection is gone.
    pub fn take_all(&mut self) -> Vec<InFlight<T>> {
        self.in_flight.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_whether_a_purpose_is_waiting() {
        let mut pending = Pending::new(4);
        let id = pending
            .start("refresh", 1.0)
            .unwrap_or_else(|_| panic!("room"));
        assert!(pending.is_waiting(&"refresh"));
        assert!(!pending.is_waiting(&"list"));
        pending.take(id);
        assert!(!pending.is_waiting(&"refresh"));
    }

    #[test]
    fn answers_find_their_request() {
        let mut pending = Pending::new(4);
        let list = pending.start("list", 1.0);
        let get = pending.start("get", 2.0);
        assert_eq!((list, get), (Ok(1), Ok(2)));
        let answered = pending.take(2).map(|r| (r.purpose, r.sent_ms));
        assert_eq!(answered, Some(("get", 2.0)));
        assert_eq!(pending.take(2), None);
        assert_eq!(pending.take_all().len(), 1);
    }

    #[test]
    fn id_zero_answers_the_oldest() {
        let mut pending = Pending::new(4);
        let _ = pending.start("first", 0.0);
        let _ = pending.start("second", 0.0);
        assert_eq!(pending.take(0).map(|r| r.purpose), Some("first"));
    }

    #[test]
    fn bounded() {
        let mut pending = Pending::new(2);
        assert!(pending.start((), 0.0).is_ok());
        assert!(pending.start((), 0.0).is_ok());
        assert_eq!(pending.start((), 0.0), Err(Full));
        assert_eq!(pending.take_all().len(), 2);
        assert!(pending.start((), 0.0).is_ok());
    }

    #[test]
    fn ids_skip_zero_and_ids_still_waiting() {
        let mut pending = Pending::new(4);
        pending.last_id = u32::MAX - 1;
        assert_eq!(pending.start('a', 0.0), Ok(u32::MAX));
        assert_eq!(pending.start('b', 0.0), Ok(1));
        pending.last_id = u32::MAX - 1;
        assert_eq!(pending.start('c', 0.0), Ok(2));
    }
}
