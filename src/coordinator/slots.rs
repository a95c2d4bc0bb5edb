//! The registered workers and the ledger of what each holds: every task handed out
//! gets an id and stays here until its worker acknowledges it (or is found dead), and
//! the count of tasks in flight per host comes from the same ledger, so the two cannot
//! disagree. Generic over what the Coordinator keeps beside each task.

use std::collections::HashMap;

use actix::Recipient;

use crate::work::{RunTask, Task, TaskId, host_of};

struct Slot {
    tasks: Recipient<RunTask>,
    /// Tasks it may hold at once; 0 once it is found dead.
    capacity: usize,
    busy: usize,
}

/// One task handed out and not yet acknowledged.
struct Held<T> {
    slot: usize,
    /// For the per-host count.
    host: String,
    entry: T,
}

pub struct Slots<T> {
    slots: Vec<Slot>,
    in_flight: HashMap<TaskId, Held<T>>,
    /// Tasks in flight per host, across every worker.
    host_busy: HashMap<String, usize>,
    next_id: TaskId,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), in_flight: HashMap::new(), host_busy: HashMap::new(), next_id: 0 }
    }
}

impl<T> Slots<T> {
    /// A worker that can hold `capacity` tasks at once (a `SyncArbiter` pool: its thread
    /// count, sharing one mailbox; an async worker: its requests in flight).
    pub fn register(&mut self, tasks: Recipient<RunTask>, capacity: usize) {
        if capacity > 0 {
            self.slots.push(Slot { tasks, capacity, busy: 0 });
        }
    }

    /// Tasks all live workers can hold at once.
    pub fn capacity(&self) -> usize {
        self.slots.iter().map(|s| s.capacity).sum()
    }

    /// Tasks the live workers can take now.
    pub fn free(&self) -> usize {
        self.slots.iter().map(|s| s.capacity.saturating_sub(s.busy)).sum()
    }

    /// The least loaded worker with room, so async workers share the load.
    pub fn free_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.busy < s.capacity)
            .min_by_key(|(_, s)| s.busy * 1024 / s.capacity)
            .map(|(i, _)| i)
    }

    /// Hands `task` to the worker in `slot`, keeping `entry` beside it until it comes
    /// back.
    pub fn send(&mut self, slot: usize, task: Task, entry: T) -> TaskId {
        let id = self.next_id;
        self.next_id += 1;
        self.slots[slot].busy += 1;
        let host = host_of(task.url());
        match self.host_busy.get_mut(host) {
            Some(busy) => *busy += 1,
            None => _ = self.host_busy.insert(host.to_string(), 1),
        }
        let host = host.to_string();
        self.slots[slot].tasks.do_send(RunTask { id, task });
        self.in_flight.insert(id, Held { slot, host, entry });
        id
    }

    /// The task `id` came back: what was kept beside it. `None` for an id not handed out
    /// or already back (nothing counts twice).
    pub fn take(&mut self, id: TaskId) -> Option<T> {
        let held = self.in_flight.remove(&id)?;
        let slot = &mut self.slots[held.slot];
        slot.busy = slot.busy.saturating_sub(1);
        if let Some(busy) = self.host_busy.get_mut(&held.host) {
            *busy = busy.saturating_sub(1);
        }
        Some(held.entry)
    }

    pub fn host_busy(&self, host: &str) -> usize {
        self.host_busy.get(host).copied().unwrap_or(0)
    }

    /// Workers whose mailbox is gone since the last look (their Arbiter or thread died):
    /// they get no more tasks; what they hold is the caller's to count.
    pub fn newly_dead(&mut self) -> Vec<usize> {
        let mut dead = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.capacity > 0 && !slot.tasks.connected() {
                slot.capacity = 0;
                dead.push(i);
            }
        }
        dead
    }

    /// Workers were registered and none is left.
    pub fn all_dead(&self) -> bool {
        !self.slots.is_empty() && self.slots.iter().all(|s| s.capacity == 0)
    }

    /// The tasks held by `slot`, or by every worker.
    pub fn held_by(&self, slot: Option<usize>) -> Vec<TaskId> {
        self.in_flight.iter().filter(|(_, h)| slot.is_none_or(|s| h.slot == s)).map(|(id, _)| *id).collect()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;
    use url::Url;

    struct Sink;

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Handler<RunTask> for Sink {
        type Result = ();

        fn handle(&mut self, _: RunTask, _: &mut Context<Self>) {}
    }

    fn page(url: &str) -> Task {
        Task::listing(1, Url::parse(url).unwrap())
    }

    #[actix::test]
    async fn the_ledger_counts_per_worker_and_per_host_and_nothing_twice() {
        let mut slots: Slots<&str> = Slots::default();
        let (a, b) = (Sink.start(), Sink.start());
        slots.register(a.clone().recipient(), 2);
        slots.register(b.recipient(), 1);
        assert_eq!(slots.capacity(), 3);
        let first = slots.send(slots.free_slot().unwrap(), page("http://h.test/1"), "one");
        let second = slots.send(slots.free_slot().unwrap(), page("http://h.test/2"), "two");
        assert_eq!(slots.held_by(Some(0)).len() + slots.held_by(Some(1)).len(), 2, "the load is shared");
        slots.send(slots.free_slot().unwrap(), page("http://g.test/3"), "three");
        assert_eq!(slots.free_slot(), None, "every worker full");
        assert_eq!((slots.host_busy("h.test"), slots.host_busy("g.test")), (2, 1));
        assert_eq!(slots.take(first), Some("one"));
        assert_eq!(slots.take(first), None, "an acknowledgement counts once");
        assert_eq!(slots.host_busy("h.test"), 1);
        assert!(slots.free_slot().is_some());
        assert_eq!(slots.take(second), Some("two"));
        assert_eq!(slots.in_flight(), 1);
    }
}
