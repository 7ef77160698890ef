//! Member slots: which are free, which rest for one apply before reuse, and
//! which a previous run gave to members that may come back.
//!
//! Slots are stable: a member keeps its counter slot for as long as it
//! exists. A freed slot rests for one apply before reuse, so that the
//! datapath is done with it; a reserved slot is only ever given back to its
//! member (or freed, when it does not come back).
use hashbrown::HashMap;

#[derive(Clone, Debug, Default)]
pub(super) struct Slots {
    /// Slots that can be given out, last first.
    free: Vec<u32>,
    /// Slots freed since the last apply: free at the next one.
    resting: Vec<u32>,
    /// Slots below this were given out once; those above, never.
    next: u32,
    max: u32,
    /// Slots a previous run gave to members (restored from the pinned
    /// tables): a member with one of these ids gets its slot back.
    reserved: HashMap<String, u32>,
}

impl Slots {
    /// `max` slots, none given out.
    pub(super) fn new(max: u32) -> Slots {
        Slots {
            max,
            ..Slots::default()
        }
    }

    /// `max` slots, with those of `reserved` (member id, slot) kept for
    /// their members. Fresh slots come from the gaps between the reserved
    /// ones, then from above them.
    pub(super) fn with_reserved(
        max: u32,
        reserved: impl IntoIterator<Item = (String, u32)>,
    ) -> Slots {
        let mut s = Slots::new(max);
        s.reserved = reserved
            .into_iter()
            .filter(|(_, slot)| *slot < max)
            .collect();
        let mut used = vec![false; s.reserved.values().max().map_or(0, |s| *s as usize + 1)];
        for slot in s.reserved.values() {
            used[*slot as usize] = true;
        }
        s.next = used.len() as u32;
        s.free = (0..s.next)
            .rev()
            .filter(|slot| !used[*slot as usize])
            .collect();
        s
    }

    /// Slots that can be given to new members, reserved ones aside.
    pub(super) fn available(&self) -> usize {
        self.free.len() + self.max.saturating_sub(self.next) as usize
    }

    /// Whether a previous run gave `id` a slot it has not had back yet.
    pub(super) fn is_reserved(&self, id: &str) -> bool {
        self.reserved.contains_key(id)
    }

    /// The slot a previous run gave `id`, taken back.
    pub(super) fn take_reserved(&mut self, id: &str) -> Option<u32> {
        self.reserved.remove(id)
    }

    /// A fresh slot (its counters must be zeroed), `None` when all are in
    /// use.
    pub(super) fn alloc(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            Some(s)
        } else if self.next < self.max {
            self.next += 1;
            Some(self.next - 1)
        } else {
            None
        }
    }

    /// `slot` is no longer used: reusable after the next apply.
    pub(super) fn rest(&mut self, slot: u32) {
        self.resting.push(slot);
    }

    /// Releases the reserved slots no member came back for (`taken` says
    /// whether a member holds a slot); they rest like freed ones.
    pub(super) fn release_reserved(&mut self, taken: impl Fn(u32) -> bool) {
        if self.reserved.is_empty() {
            return;
        }
        let reserved = std::mem::take(&mut self.reserved);
        for (_, slot) in reserved {
            if !taken(slot) {
                self.resting.push(slot);
            }
        }
    }

    /// An apply happened: the resting slots become reusable.
    pub(super) fn recycle(&mut self) {
        self.free.append(&mut self.resting);
    }
}
