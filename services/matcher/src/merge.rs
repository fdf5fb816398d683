//! Reading the owned partitions in event-time order.
//!
//! librdkafka fetches partitions in assignment order, so a consumer replaying a backlog from
//! one queue reads the topics one after another: identity and referrals months ahead of the
//! releases they belong with. The rules reach the same end state in any order, but applied that
//! way a case is assessed overdue and later engaged, written and published more often than the
//! live stream would cause. Instead, each partition is read through a queue of its own and the
//! next message is always the one with the earliest record timestamp among the partitions'
//! next messages, as Kafka Streams does. No partition is paused: one that runs ahead just stops
//! being fetched when its prefetch queue is full.
//!
//! A partition with nothing buffered holds the others back only while its next message may be
//! the earliest: not once the broker has said it is at its end, and for at most `max_wait`.
//! Live, every partition is at its end and a message is taken as soon as it arrives.
//!
//! [`Merge`] is the choice alone, with time passed in; `PartitionReader` in `lib.rs` feeds it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<M> {
    /// Take this message.
    Take(M),
    /// A partition with nothing buffered may hold an earlier message: read more, waiting no
    /// longer than `until`.
    Wait {
        /// When to go on without it.
        until: Instant,
    },
    /// Nothing is buffered.
    Empty,
}

struct Part<M> {
    buffered: VecDeque<(i64, M)>,
    /// The broker said this partition has nothing after its buffered messages.
    at_end: bool,
    /// When the buffer last became empty, if it is.
    empty_since: Option<Instant>,
}

/// Partitions' buffered messages, taken earliest record timestamp first.
pub struct Merge<M> {
    parts: Vec<Part<M>>,
    /// (timestamp of the first buffered message, partition) for each partition with any.
    heads: BinaryHeap<Reverse<(i64, usize)>>,
    max_wait: Duration,
}

impl<M> Merge<M> {
    /// A merge of `partitions` partitions, numbered from 0, none of them read yet.
    pub fn new(partitions: usize, max_wait: Duration, now: Instant) -> Self {
        Self {
            parts: (0..partitions)
                .map(|_| Part {
                    buffered: VecDeque::new(),
                    at_end: false,
                    empty_since: Some(now),
                })
                .collect(),
            heads: BinaryHeap::new(),
            max_wait,
        }
    }

    /// How many messages partition `p` has buffered.
    pub fn buffered(&self, p: usize) -> usize {
        self.parts[p].buffered.len()
    }

    /// Add a message read from partition `p`, with its record timestamp in milliseconds.
    pub fn offer(&mut self, p: usize, timestamp: i64, message: M) {
        let part = &mut self.parts[p];
        if part.buffered.is_empty() {
            self.heads.push(Reverse((timestamp, p)));
        }
        part.buffered.push_back((timestamp, message));
        part.at_end = false;
        part.empty_since = None;
    }

    /// The broker said partition `p` has no more messages after those offered so far.
    pub fn at_end(&mut self, p: usize) {
        self.parts[p].at_end = true;
    }

    /// The next message to take at `now`.
    pub fn next(&mut self, now: Instant) -> Next<M> {
        let Some(&Reverse((_, p))) = self.heads.peek() else {
            return Next::Empty;
        };
        let holding_back = self
            .parts
            .iter()
            .filter(|part| !part.at_end)
            .filter_map(|part| part.empty_since)
            .map(|since| since + self.max_wait)
            .filter(|until| *until > now)
            .min();
        if let Some(until) = holding_back {
            return Next::Wait { until };
        }
        self.heads.pop();
        let part = &mut self.parts[p];
        let Some((_, message)) = part.buffered.pop_front() else {
            return Next::Empty;
        };
        match part.buffered.front() {
            Some((timestamp, _)) => self.heads.push(Reverse((*timestamp, p))),
            None => part.empty_since = Some(now),
        }
        Next::Take(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(100);

    fn take<M>(merge: &mut Merge<M>, now: Instant) -> Option<M> {
        match merge.next(now) {
            Next::Take(m) => Some(m),
            _ => None,
        }
    }

    #[test]
    fn takes_the_earliest_head_across_partitions() {
        let now = Instant::now();
        let mut merge = Merge::new(3, WAIT, now);
        merge.offer(0, 30, "a30");
        merge.offer(0, 40, "a40");
        merge.offer(1, 10, "b10");
        merge.offer(1, 35, "b35");
        merge.offer(2, 20, "c20");
        for p in 0..3 {
            merge.at_end(p);
        }
        let order: Vec<_> = std::iter::from_fn(|| take(&mut merge, now)).collect();
        assert_eq!(order, ["b10", "c20", "a30", "b35", "a40"]);
        assert_eq!(merge.next(now), Next::Empty);
        // A message after partition 0's end: partitions 1 and 2 are still at theirs.
        merge.offer(0, 50, "a50");
        assert_eq!(take(&mut merge, now), Some("a50"));
    }

    #[test]
    fn an_unread_partition_holds_the_others_back_until_it_answers_or_the_wait_ends() {
        let now = Instant::now();
        let mut merge = Merge::new(2, WAIT, now);
        merge.offer(0, 50, "a50");
        assert_eq!(merge.next(now), Next::Wait { until: now + WAIT });
        merge.offer(1, 10, "b10");
        assert_eq!(take(&mut merge, now), Some("b10"));
        // Partition 1 emptied just now: it may hold something before a50.
        assert_eq!(
            merge.next(now + Duration::from_millis(1)),
            Next::Wait { until: now + WAIT }
        );
        merge.at_end(1);
        assert_eq!(take(&mut merge, now), Some("a50"));
    }

    #[test]
    fn live_partitions_at_their_end_do_not_delay_a_new_message() {
        let now = Instant::now();
        let mut merge = Merge::new(4, WAIT, now);
        for p in 0..4 {
            merge.at_end(p);
        }
        merge.offer(2, 5, "c5");
        assert_eq!(take(&mut merge, now), Some("c5"));
        // Partition 2 itself has emptied and its end is not yet confirmed; nothing waits on
        // it because nothing is buffered.
        assert_eq!(merge.next(now), Next::Empty);
        merge.offer(3, 6, "d6");
        assert_eq!(merge.next(now), Next::Wait { until: now + WAIT });
        merge.at_end(2);
        assert_eq!(take(&mut merge, now), Some("d6"));
    }

    #[test]
    fn an_end_counts_after_the_messages_buffered_before_it_and_not_after_a_new_one() {
        let now = Instant::now();
        let mut merge = Merge::new(2, WAIT, now);
        merge.offer(0, 1, "a1");
        merge.at_end(0);
        merge.offer(1, 2, "b2");
        merge.offer(1, 4, "b4");
        assert_eq!(take(&mut merge, now), Some("a1"));
        // Partition 0 is empty and at its end: b2 and b4 need not wait for it.
        assert_eq!(take(&mut merge, now), Some("b2"));
        assert_eq!(take(&mut merge, now), Some("b4"));
        merge.offer(0, 3, "a3");
        merge.at_end(1);
        merge.offer(1, 5, "b5");
        assert_eq!(take(&mut merge, now), Some("a3"));
        // a3 arrived after partition 0's end was reported, so its end is unknown again.
        assert_eq!(merge.next(now), Next::Wait { until: now + WAIT });
    }
}
