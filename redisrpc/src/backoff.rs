//! The one retry policy: exponential backoff between a first and a longest
//! pause. Every loop that waits before trying again (a server that cannot
//! pop, a reply push, a subscription or a mirror reconnecting, an
//! interrupted pop being asked again) takes its pauses from a [`Backoff`],
//! so they all grow the same way and none spins.

use std::time::Duration;

/// Pauses that start at `first` and multiply by `factor` up to `longest`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    longest: Duration,
    factor: u32,
    next: Duration,
}

impl Backoff {
    /// Pauses from `first`, doubling up to `longest`.
    pub(crate) const fn new(first: Duration, longest: Duration) -> Backoff {
        Backoff {
            first,
            longest,
            factor: 2,
            next: first,
        }
    }

    /// The same, multiplying by `factor` instead of doubling.
    pub(crate) const fn with_factor(mut self, factor: u32) -> Backoff {
        self.factor = factor;
        self
    }

    /// The pause to wait now; the next one is longer, up to the longest.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * self.factor).min(self.longest);
        pause
    }

    /// Starts again from the first pause, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }

    /// The longest pause.
    pub(crate) fn longest(&self) -> Duration {
        self.longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_longest_and_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(20), ms(100));
        let pauses: Vec<_> = (0..5).map(|_| backoff.next_pause()).collect();
        assert_eq!(pauses, [ms(20), ms(40), ms(80), ms(100), ms(100)]);
        backoff.reset();
        assert_eq!(backoff.next_pause(), ms(20));
        let mut fours = Backoff::new(ms(20), ms(320)).with_factor(4);
        let pauses: Vec<_> = (0..4).map(|_| fours.next_pause()).collect();
        assert_eq!(pauses, [ms(20), ms(80), ms(320), ms(320)]);
    }
}
