//! Reading the counters: a member's, summed over its line on every CPU
//! (through short-lived read-only mappings), and an interface's per
//! reason.
use aya::maps::PerCpuValues;
use router_common::{MemberCounters, reason};

use super::error::{DatapathError, map_err};
use super::{COUNTER_WINDOW, Datapath};

impl Datapath {
    fn sum<T: aya::Pod + Default + Copy>(values: &PerCpuValues<T>, add: impl Fn(&mut T, &T)) -> T {
        let mut total = T::default();
        for v in values.iter() {
            add(&mut total, v);
        }
        total
    }

    /// A member's counters, summed over CPUs.
    pub fn member_counters(&self, slot: u32) -> Result<MemberCounters, DatapathError> {
        Ok(self.member_counters_many(&[slot])?[0])
    }

    /// The counters of each of `slots`, summed over CPUs, in the same order.
    ///
    /// Read through short-lived memory mappings of at most
    /// [`COUNTER_WINDOW`] slots per CPU: a scrape of a million members reads
    /// memory instead of making a system call per member, and holds only
    /// one window in the process at a time.
    pub fn member_counters_many(
        &self,
        slots: &[u32],
    ) -> Result<Vec<MemberCounters>, DatapathError> {
        if let Some(&bad) = slots.iter().find(|&&s| s >= self.sizing.max_members) {
            return Err(self.slot_error(bad));
        }
        let mut out = vec![MemberCounters::default(); slots.len()];
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_unstable_by_key(|&i| slots[i]);
        for group in order.chunk_by(|&a, &b| slots[a] / COUNTER_WINDOW == slots[b] / COUNTER_WINDOW)
        {
            let first = slots[group[0]];
            let end = slots[group[group.len() - 1]] + 1;
            for cpu in 0..self.ncpus as u32 {
                let window = self.line_window(cpu, first, end, false)?;
                for &i in group {
                    let c = window.counters((slots[i] - first) as usize);
                    let t = &mut out[i];
                    t.rx_packets += c.rx_packets;
                    t.rx_bytes += c.rx_bytes;
                    t.tx_packets += c.tx_packets;
                    t.tx_bytes += c.tx_bytes;
                    t.spoofed_packets += c.spoofed_packets;
                }
            }
        }
        Ok(out)
    }

    /// An interface's packet counters per [`reason`], summed over CPUs.
    pub fn iface_counters(
        &self,
        slot: u32,
    ) -> Result<[u64; reason::COUNT as usize], DatapathError> {
        let mut out = [0u64; reason::COUNT as usize];
        for (r, total) in out.iter_mut().enumerate() {
            let values = self
                .iface_counters
                .get(&(slot * reason::REASON_SLOTS + r as u32), 0)
                .map_err(map_err("IFACE_COUNTERS"))?;
            *total = Self::sum(&values, |t, v| *t += v);
        }
        Ok(out)
    }
}
