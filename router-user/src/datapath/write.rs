//! Writing the tables: interfaces, and table changes into the inactive
//! half followed by a flip (and, at the next apply, the catch-up of the
//! half left behind); a whole state at once; member lines on every CPU.
use std::time::Instant;

use aya::maps::MapError;
use router_common::{
    ABI_VERSION, AttachKey, GatewayKey, Globals, IfaceAddrs, IfaceInfo, MAX_IFACES, MAX_IFINDEX,
    MemberCounters, MemberFwd, MemberLine, SlotName,
};
use router_core::changes::{Attachment, Changes, Edge, FullState, SlotIds, Uplinks};

use super::error::{DatapathError, map_err};
use super::pins::slot_name;
use super::{COUNTER_WINDOW, Datapath, GRACE, Lagging, Mode};

impl Datapath {
    pub(super) fn write_globals(
        &mut self,
        uplinks: Uplinks,
        edge: Edge,
    ) -> Result<(), DatapathError> {
        let g = Globals {
            active: self.active,
            max_members: self.sizing.max_members,
            route_half: self.sizing.route_half(),
            uplink4: uplinks.v4,
            uplink6: uplinks.v6,
            abi_version: ABI_VERSION,
            icmp_rate: edge.icmp_rate,
            icmp_burst: edge.icmp_burst,
            router_lifetime: edge.router_lifetime,
            ra_hop_limit: edge.ra_hop_limit,
            _pad: 0,
        };
        self.globals.set(0, g, 0).map_err(map_err("GLOBALS"))
    }

    /// The `[edge]` settings in force.
    pub fn edge(&self) -> Edge {
        self.edge
    }

    /// Sets interface `slot`'s own addresses and its gateway addresses
    /// (`gateways`, all of this slot: those it had and lacks now go).
    pub fn set_iface_addrs(
        &mut self,
        slot: u32,
        addrs: &IfaceAddrs,
        gateways: &[GatewayKey],
    ) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        let stale: Vec<GatewayKey> = self
            .gateways
            .keys()
            .filter_map(Result::ok)
            .filter(|k| u32::from(k.iface) == slot && !gateways.contains(k))
            .collect();
        for key in stale {
            match self.gateways.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(MapError::SyscallError(ref e)) if is_enoent(&e.io_error) => {}
                Err(e) => return Err(map_err("GATEWAYS")(e)),
            }
        }
        for key in gateways {
            if u32::from(key.iface) != slot {
                return Err(DatapathError::IfaceSlot(u32::from(key.iface)));
            }
            self.gateways
                .insert(key, 1, 0)
                .map_err(map_err("GATEWAYS"))?;
        }
        self.iface_addrs
            .set(slot, addrs, 0)
            .map_err(map_err("IFACE_ADDRS"))
    }

    /// Installs interface `slot`. `previous_ifindex` is the ifindex the slot
    /// had, whose classification entry is removed when it differs.
    pub fn set_iface(
        &mut self,
        slot: u32,
        name: &str,
        info: &IfaceInfo,
        previous_ifindex: Option<u32>,
    ) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if info.ifindex >= MAX_IFINDEX {
            return Err(DatapathError::IfindexTooLarge {
                interface: name.to_string(),
                ifindex: info.ifindex,
            });
        }
        if self.mode == Mode::Forward {
            self.egress
                .set(slot, info.ifindex, None, 0)
                .map_err(|source| DatapathError::Egress {
                    interface: name.to_string(),
                    ifindex: info.ifindex,
                    source,
                })?;
        }
        self.ifaces.set(slot, info, 0).map_err(map_err("IFACES"))?;
        if let Some(names) = self.iface_names.as_mut()
            && let Some(n) = names.as_mut_slice().get_mut(slot as usize)
        {
            *n = slot_name(name);
        }
        if let Some(old) = previous_ifindex
            && old != info.ifindex
            && old < MAX_IFINDEX
        {
            self.ifindex_slot
                .set(old, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.ifindex_slot
            .set(info.ifindex, slot, 0)
            .map_err(map_err("IFINDEX_SLOT"))
    }

    /// Removes interface `slot` from the datapath.
    pub fn clear_iface(&mut self, slot: u32, ifindex: u32) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if ifindex < MAX_IFINDEX {
            self.ifindex_slot
                .set(ifindex, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.set_iface_addrs(slot, &IfaceAddrs::default(), &[])?;
        self.ifaces
            .set(slot, IfaceInfo::default(), 0)
            .map_err(map_err("IFACES"))
    }

    /// Applies `changes`: writes them (and whatever the inactive half still
    /// lacks) into the inactive half, then makes it active.
    pub fn apply(&mut self, mut changes: Changes) -> Result<(), DatapathError> {
        let half = 1 - self.active;
        // The inactive half was active until `last_flip`.
        let since = self.last_flip.elapsed();
        if since < GRACE {
            std::thread::sleep(GRACE - since);
        }
        let zero = std::mem::take(&mut changes.zero_counters);
        self.zero_member_counters(&zero)?;
        self.forget_learned(&zero)?;
        self.keep_learned(changes.members.iter().map(|(slot, m)| (*slot, m)))?;
        let ids = std::mem::take(&mut changes.ids);
        self.write_ids(&ids)?;
        // What the half missed at the last apply (copied from the active
        // half, which has it), then this change.
        let lagging = std::mem::take(&mut self.lagging);
        self.catch_up(half, &lagging)?;
        self.write_half(half, &changes)?;
        self.flip(half, changes.uplinks, changes.edge)?;
        // Only where the other half lacks this change, not its values.
        self.lagging = Lagging {
            members: changes.members.iter().map(|(slot, _)| *slot).collect(),
            routes: changes.routes.iter().map(|(i, _)| *i).collect(),
            attachments: changes.attachments,
        };
        Ok(())
    }

    /// Brings `half` up to date with the other (active) half where the
    /// last apply changed it.
    fn catch_up(&mut self, half: u32, lag: &Lagging) -> Result<(), DatapathError> {
        let (to, from) = ((half & 1) as usize, (1 - (half & 1)) as usize);
        self.each_line(lag.members.iter().map(|s| (*s, ())), |line, ()| {
            // SAFETY: `line` points at a line of a live read-write window;
            // the program never writes `fwd`.
            unsafe {
                let fwd = std::ptr::addr_of!((*line).fwd[from]).read_volatile();
                std::ptr::addr_of_mut!((*line).fwd[to]).write_volatile(fwd);
            }
        })?;
        let route_half = self.sizing.route_half() as usize;
        self.routes.copy_between(
            from * route_half,
            to * route_half,
            lag.routes.iter().map(|&i| i as usize),
        )?;
        self.write_attachments(half, lag.attachments.iter().copied())
    }

    /// Makes `half` active.
    fn flip(&mut self, half: u32, uplinks: Uplinks, edge: Edge) -> Result<(), DatapathError> {
        self.active = half;
        self.uplinks = uplinks;
        self.edge = edge;
        self.write_globals(uplinks, edge)?;
        self.last_flip = Instant::now();
        Ok(())
    }

    /// Replaces the whole table contents with `full` (from
    /// `Tables::full_state`), whatever the halves held before (a restart
    /// over pinned tables): writes the inactive half whole, flips, then
    /// writes the other half whole too.
    pub fn apply_full(&mut self, full: &FullState<'_>) -> Result<(), DatapathError> {
        self.zero_member_counters(&full.zero_counters)?;
        self.forget_learned(&full.zero_counters)?;
        self.keep_learned(full.members.iter().map(|(slot, m)| (*slot, m)))?;
        if let Some(names) = self.member_ids.as_ref() {
            names.fill(0, names.len, SlotName::default())?;
        }
        self.write_ids(&full.ids)?;
        for _ in 0..2 {
            let since = self.last_flip.elapsed();
            if since < GRACE {
                std::thread::sleep(GRACE - since);
            }
            let half = 1 - self.active;
            self.write_full_half(half, full)?;
            self.flip(half, full.uplinks, full.edge)?;
        }
        self.lagging = Lagging::default();
        Ok(())
    }

    fn write_full_half(&mut self, half: u32, full: &FullState<'_>) -> Result<(), DatapathError> {
        // Routes: the roots and every allocated group. Groups beyond are
        // unreachable, whatever they hold.
        let base = (half * self.sizing.route_half()) as usize;
        self.routes.copy_in(base, &full.routes)?;
        self.write_members(
            half,
            full.members
                .iter()
                .map(|(slot, m)| (*slot, MemberFwd::from_info(m))),
        )?;
        // Attachments: exactly `full.attachments` in this half.
        let wanted: std::collections::HashSet<Attachment> =
            full.attachments.iter().map(|(k, _)| *k).collect();
        let stale: Vec<AttachKey> = self
            .attachments
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.half == half as u16)
            .filter(|k| {
                !wanted.contains(&Attachment {
                    iface: k.iface,
                    s_vlan: k.s_vlan,
                    c_vlan: k.c_vlan,
                })
            })
            .collect();
        for key in stale {
            match self.attachments.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(MapError::SyscallError(ref e)) if is_enoent(&e.io_error) => {}
                Err(e) => return Err(map_err("ATTACHMENTS")(e)),
            }
        }
        self.write_attachments(half, full.attachments.iter().map(|(k, v)| (*k, Some(*v))))
    }

    fn write_ids(&mut self, ids: &SlotIds) -> Result<(), DatapathError> {
        if let Some(names) = self.member_ids.as_ref() {
            names.write(
                ids.iter()
                    .map(|(slot, id)| (slot as usize, slot_name(id.unwrap_or("")))),
            )?;
        }
        Ok(())
    }

    fn write_half(&mut self, half: u32, c: &Changes) -> Result<(), DatapathError> {
        self.write_members(
            half,
            c.members
                .iter()
                .map(|(slot, m)| (*slot, MemberFwd::from_info(m))),
        )?;
        let route_base = (half * self.sizing.route_half()) as usize;
        self.routes.write(
            c.routes
                .iter()
                .map(|&(index, v)| (route_base + index as usize, v)),
        )?;
        self.write_attachments(half, c.attachments.iter().map(|(k, v)| (*k, *v)))
    }

    /// Writes attachments of `half` (`None` removes).
    fn write_attachments(
        &mut self,
        half: u32,
        attachments: impl IntoIterator<Item = (Attachment, Option<u32>)>,
    ) -> Result<(), DatapathError> {
        for (
            Attachment {
                iface,
                s_vlan,
                c_vlan,
            },
            v,
        ) in attachments
        {
            let key = AttachKey {
                iface,
                half: half as u16,
                s_vlan,
                c_vlan,
            };
            match v {
                Some(v) => self
                    .attachments
                    .insert(key, v, 0)
                    .map_err(map_err("ATTACHMENTS"))?,
                None => match self.attachments.remove(&key) {
                    Ok(()) | Err(MapError::KeyNotFound) => {}
                    Err(MapError::SyscallError(ref e)) if is_enoent(&e.io_error) => {}
                    Err(e) => return Err(map_err("ATTACHMENTS")(e)),
                },
            }
        }
        Ok(())
    }

    /// Zeroes the counters of `slots` on every CPU, leaving their
    /// forwarding data alone.
    fn zero_member_counters<'a>(
        &mut self,
        slots: impl IntoIterator<Item = &'a u32>,
    ) -> Result<(), DatapathError> {
        self.each_line(slots.into_iter().map(|s| (*s, ())), |line, ()| {
            // SAFETY: `line` points at a line of a live read-write window.
            unsafe {
                std::ptr::addr_of_mut!((*line).counters).write_volatile(MemberCounters::default())
            }
        })
    }

    /// Writes each member's forwarding data as half `half` of its line, on
    /// every CPU, leaving the counters alone. Later values for a slot win.
    fn write_members(
        &mut self,
        half: u32,
        members: impl IntoIterator<Item = (u32, MemberFwd)>,
    ) -> Result<(), DatapathError> {
        let half = (half & 1) as usize;
        self.each_line(members, |line, fwd| {
            // SAFETY: `line` points at a line of a live read-write window;
            // the program never writes `fwd`, and reads this half only once
            // it is active.
            unsafe { std::ptr::addr_of_mut!((*line).fwd[half]).write_volatile(*fwd) }
        })
    }

    /// Calls `f` on every CPU's line of each slot of `items`, in order,
    /// through read-write windows of at most [`COUNTER_WINDOW`] slots:
    /// consecutive items in one window share its mappings, so that a whole
    /// table in slot order costs a few mappings, and one change one page
    /// per CPU.
    fn each_line<X>(
        &mut self,
        items: impl IntoIterator<Item = (u32, X)>,
        mut f: impl FnMut(*mut MemberLine, &X),
    ) -> Result<(), DatapathError> {
        let mut batch: Vec<(u32, X)> = Vec::new();
        let mut last = 0;
        for (slot, x) in items {
            if slot >= self.sizing.max_members {
                return Err(self.slot_error(slot));
            }
            // A batch is one window's worth of slots, none below its first.
            if let Some(&(first, _)) = batch.first()
                && (slot / COUNTER_WINDOW != first / COUNTER_WINDOW || slot < first)
            {
                self.write_lines(&batch, last + 1, &mut f)?;
                batch.clear();
            }
            last = if batch.is_empty() {
                slot
            } else {
                last.max(slot)
            };
            batch.push((slot, x));
        }
        if !batch.is_empty() {
            self.write_lines(&batch, last + 1, &mut f)?;
        }
        Ok(())
    }

    /// [`Datapath::each_line`] for one window: slots from `batch[0]` to
    /// `end` (exclusive).
    fn write_lines<X>(
        &self,
        batch: &[(u32, X)],
        end: u32,
        f: &mut impl FnMut(*mut MemberLine, &X),
    ) -> Result<(), DatapathError> {
        let first = batch[0].0;
        for cpu in 0..self.ncpus as u32 {
            let window = self.line_window(cpu, first, end, true)?;
            for (slot, x) in batch {
                f(window.ptr((slot - first) as usize), x);
            }
        }
        Ok(())
    }
}

/// aya reports a missing key on delete as the syscall's ENOENT.
fn is_enoent(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}
