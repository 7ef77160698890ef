//! [`MemberStore`]: members kept compactly, by number.
//!
//! A million members must fit in a few tens of megabytes and be compared,
//! written and read back quickly, so a member is not a `String`-laden
//! struct here but a fixed 20-byte record ([`Rec`]) plus a few bytes in one
//! shared arena: its id, then its prefixes, each as a header byte and only
//! the significant bytes of its address (a /32 takes 5 bytes, a /64 9).
//! Ids are indexed by a hash table of member numbers. Interface names are
//! interned (there are a handful).
//!
//! The same type serves as the member table (the tables', numbered by
//! counter slot, with holes) and as a batch being read from a request body
//! or the state file (numbered in order, without holes; see [`json`]).
//!
//! The store holds members of the member model ([`crate::member`]); it
//! knows nothing of the configuration.
use std::{fmt, hash::BuildHasher as _};

use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Serialize, Serializer, ser::SerializeMap as _};

use crate::member::{MacAddr, Member, MemberIn, Origin};

pub mod json;

#[cfg(test)]
mod tests;

/// [`Rec::flags`] bits.
const PRESENT: u8 = 1 << 0;
const HAS_MAC: u8 = 1 << 1;
const ORIGIN_API: u8 = 1 << 2;
const ORIGIN_SESSION: u8 = 1 << 3;

/// The [`Rec::flags`] bit of `origin` (none for `config`).
fn origin_flag(origin: Origin) -> u8 {
    match origin {
        Origin::Config => 0,
        Origin::Api => ORIGIN_API,
        Origin::Session => ORIGIN_SESSION,
    }
}

/// How many members of each origin: (api, session).
fn origin_counts(flags: u8) -> (usize, usize) {
    (
        usize::from(flags & ORIGIN_API != 0),
        usize::from(flags & ORIGIN_SESSION != 0),
    )
}

/// One member: everything but its id and prefixes, which are `len` bytes
/// at `off` in the arena (`id_len` bytes of id, then the prefixes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rec {
    off: u32,
    len: u16,
    id_len: u8,
    iface: u8,
    s_vlan: u16,
    c_vlan: u16,
    mac: [u8; 6],
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Rec>() == 20);

/// Why a member cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("member {0:?}, id: declared more than once; member ids must be unique")]
    Duplicate(String),
    #[error(
        "member {id:?}, interface: more than {max} distinct interface names are in use",
        max = u8::MAX
    )]
    TooManyInterfaces { id: String },
    #[error("the members take more than 4 GiB")]
    Full,
}

/// Members by number, compactly. See the [module documentation](self).
#[derive(Clone, Default)]
pub struct MemberStore {
    recs: Vec<Rec>,
    arena: Vec<u8>,
    /// Arena bytes no member uses any more.
    garbage: usize,
    /// Member numbers, by id.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    ifaces: Vec<Box<str>>,
    len: usize,
    /// Members of origin `api`.
    api: usize,
    /// Members of origin `session`.
    session: usize,
}

impl fmt::Debug for MemberStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl MemberStore {
    pub fn new() -> MemberStore {
        MemberStore::default()
    }

    /// Room for `members` members of about `bytes` arena bytes each.
    pub fn with_capacity(members: usize) -> MemberStore {
        MemberStore {
            recs: Vec::with_capacity(members),
            arena: Vec::with_capacity(members * 24),
            index: HashTable::with_capacity(members),
            ..MemberStore::default()
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Members of `origin`.
    pub fn count(&self, origin: Origin) -> usize {
        match origin {
            Origin::Api => self.api,
            Origin::Session => self.session,
            Origin::Config => self.len - self.api - self.session,
        }
    }

    /// One past the highest member number ever used.
    pub fn end(&self) -> u32 {
        self.recs.len() as u32
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn id_at(&self, r: &Rec) -> &str {
        let bytes = &self.arena[r.off as usize..r.off as usize + r.id_len as usize];
        // SAFETY: ids are stored from `&str`s, whole.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The number of the member `id`.
    pub fn number(&self, id: &str) -> Option<u32> {
        self.index
            .find(self.hash(id), |&n| self.id_at(&self.recs[n as usize]) == id)
            .copied()
    }

    /// Member number `n`.
    pub fn get(&self, n: u32) -> Option<MemberView<'_>> {
        let rec = self.recs.get(n as usize)?;
        (rec.flags & PRESENT != 0).then_some(MemberView { store: self, rec })
    }

    /// Member `id`.
    pub fn by_id(&self, id: &str) -> Option<(u32, MemberView<'_>)> {
        let n = self.number(id)?;
        Some((n, self.get(n)?))
    }

    /// Every member with its number, by number.
    pub fn iter(&self) -> impl Iterator<Item = (u32, MemberView<'_>)> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.flags & PRESENT != 0)
            .map(|(n, rec)| (n as u32, MemberView { store: self, rec }))
    }

    /// Appends `m` as the next number (a batch being read). Fails on an id
    /// already present.
    pub fn push(&mut self, m: MemberIn<'_>, origin: Origin) -> Result<u32, StoreError> {
        let n = self.recs.len() as u32;
        let rec = self.encode(m, origin)?;
        // One probe of the index: a duplicate, or the place of the new one.
        let hash = self.hash(m.id);
        let (recs, arena, hasher) = (&self.recs, &self.arena, &self.hasher);
        let entry = self.index.entry(
            hash,
            |&x| id_of(arena, &recs[x as usize]) == m.id,
            |&x| hasher.hash_one(id_of(arena, &recs[x as usize])),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => {
                // Its bytes stay in the arena as garbage.
                self.garbage += rec.len as usize;
                Err(StoreError::Duplicate(m.id.to_owned()))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(n);
                self.recs.push(rec);
                self.len += 1;
                self.count_in(rec.flags);
                Ok(n)
            }
        }
    }

    /// The number of the member `id`, trying number `guess` first (one
    /// record read instead of a hash lookup when lists come in the same
    /// order as the store).
    pub fn number_near(&self, id: &str, guess: u32) -> Option<u32> {
        if let Some(r) = self.recs.get(guess as usize)
            && r.flags & PRESENT != 0
            && self.id_at(r) == id
        {
            return Some(guess);
        }
        self.number(id)
    }

    /// Puts `m` at number `n`, replacing the member there (which must have
    /// the same id) or filling a hole. The caller makes sure that no other
    /// member has `m`'s id.
    pub fn set(&mut self, n: u32, m: MemberIn<'_>, origin: Origin) -> Result<(), StoreError> {
        let rec = self.encode(m, origin)?;
        self.put_rec(n, rec, m.id);
        Ok(())
    }

    /// [`MemberStore::set`] with a member of another store, copied as it is
    /// stored, under `origin`.
    pub fn set_view(
        &mut self,
        n: u32,
        m: &MemberView<'_>,
        origin: Origin,
    ) -> Result<(), StoreError> {
        let iface = self.intern(m.interface(), m.id())?;
        let src = m.rec;
        let bytes = m.bytes();
        // A member replaced by one of the same size (a new MAC, a prefix
        // renumbered) is rewritten in place: a full sync that changes
        // every member leaves no garbage to compact.
        let old = self
            .recs
            .get(n as usize)
            .filter(|r| r.flags & PRESENT != 0 && r.len == src.len)
            .copied();
        let off = match old {
            Some(r) => {
                self.arena[r.off as usize..r.off as usize + bytes.len()].copy_from_slice(bytes);
                r.off as usize
            }
            None => {
                let off = self.arena.len();
                if off > u32::MAX as usize - (1 << 16) {
                    return Err(StoreError::Full);
                }
                self.arena.extend_from_slice(bytes);
                off
            }
        };
        let flags = src.flags & (PRESENT | HAS_MAC) | origin_flag(origin);
        let rec = Rec {
            off: off as u32,
            iface,
            flags,
            ..*src
        };
        self.put_rec(n, rec, m.id());
        Ok(())
    }

    fn put_rec(&mut self, n: u32, rec: Rec, id: &str) {
        let i = n as usize;
        if self.recs.len() <= i {
            self.recs.resize(i + 1, Rec::default());
        }
        let old = self.recs[i];
        self.recs[i] = rec;
        if old.flags & PRESENT != 0 {
            debug_assert_eq!(self.id_at(&old), id, "set() keeps the id");
            if old.off != rec.off {
                self.garbage += old.len as usize;
            }
            self.count_out(old.flags);
        } else {
            self.index_insert(n);
            self.len += 1;
        }
        self.count_in(rec.flags);
        self.maybe_compact();
    }

    /// Removes member number `n`; returns whether it was there.
    pub fn remove(&mut self, n: u32) -> bool {
        let Some(old) = self.recs.get(n as usize).copied() else {
            return false;
        };
        if old.flags & PRESENT == 0 {
            return false;
        }
        let hash = self.hash(self.id_at(&old));
        if let Ok(e) = self.index.find_entry(hash, |&x| x == n) {
            e.remove();
        }
        self.recs[n as usize] = Rec::default();
        self.garbage += old.len as usize;
        self.len -= 1;
        self.count_out(old.flags);
        self.maybe_compact();
        true
    }

    /// Counts a member with `flags` in its origin's count.
    fn count_in(&mut self, flags: u8) {
        let (api, session) = origin_counts(flags);
        self.api += api;
        self.session += session;
    }

    /// Takes a member with `flags` out of its origin's count.
    fn count_out(&mut self, flags: u8) {
        let (api, session) = origin_counts(flags);
        self.api -= api;
        self.session -= session;
    }

    fn index_insert(&mut self, n: u32) {
        let hash = self.hash(self.id_at(&self.recs[n as usize]));
        let (recs, arena, hasher) = (&self.recs, &self.arena, &self.hasher);
        self.index.insert_unique(hash, n, |&x| {
            let r = &recs[x as usize];
            hasher.hash_one(id_of(arena, r))
        });
    }

    /// The record of `m`, its bytes appended to the arena.
    fn encode(&mut self, m: MemberIn<'_>, origin: Origin) -> Result<Rec, StoreError> {
        let iface = self.intern(m.interface, m.id)?;
        let off = self.arena.len();
        if off > u32::MAX as usize - (1 << 16) {
            return Err(StoreError::Full);
        }
        self.arena.extend_from_slice(m.id.as_bytes());
        for net in m.prefixes {
            encode_net(net, &mut self.arena);
        }
        let mut flags = PRESENT | origin_flag(origin);
        let mut mac = [0; 6];
        if let Some(m) = m.mac {
            flags |= HAS_MAC;
            mac = m.0;
        }
        // Checked by validation: ids of at most 64 bytes, at most 1024
        // prefixes of at most 17 bytes (well under 2^16 bytes), and
        // VLANs 1..=4094.
        Ok(Rec {
            off: off as u32,
            len: (self.arena.len() - off) as u16,
            id_len: m.id.len() as u8,
            iface,
            s_vlan: m.s_vlan.unwrap_or(0),
            c_vlan: m.c_vlan.unwrap_or(0),
            mac,
            flags,
        })
    }

    fn intern(&mut self, name: &str, id: &str) -> Result<u8, StoreError> {
        if let Some(i) = self.ifaces.iter().position(|n| &**n == name) {
            return Ok(i as u8);
        }
        if self.ifaces.len() > u8::MAX as usize {
            return Err(StoreError::TooManyInterfaces { id: id.to_owned() });
        }
        self.ifaces.push(name.into());
        Ok((self.ifaces.len() - 1) as u8)
    }

    /// Rewrites the arena without the garbage once it is half of it.
    fn maybe_compact(&mut self) {
        if self.garbage < (1 << 16) || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for r in self.recs.iter_mut().filter(|r| r.flags & PRESENT != 0) {
            let start = arena.len();
            arena.extend_from_slice(&self.arena[r.off as usize..r.off as usize + r.len as usize]);
            r.off = start as u32;
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Approximate heap memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.recs.capacity() * std::mem::size_of::<Rec>()
            + self.arena.capacity()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }
}

fn id_of<'a>(arena: &'a [u8], r: &Rec) -> &'a str {
    let bytes = &arena[r.off as usize..r.off as usize + r.id_len as usize];
    // SAFETY: ids are stored from `&str`s, whole.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Appends `net`: a header byte (IPv4: the length, 0..=32; IPv6: 33 + the
/// length), then the first `ceil(length / 8)` bytes of the network.
fn encode_net(net: &IpNet, out: &mut Vec<u8>) {
    let len = net.prefix_len();
    let n = usize::from(len).div_ceil(8);
    match net {
        IpNet::V4(v4) => {
            out.push(len);
            out.extend_from_slice(&v4.network().octets()[..n]);
        }
        IpNet::V6(v6) => {
            out.push(33 + len);
            out.extend_from_slice(&v6.network().octets()[..n]);
        }
    }
}

/// Reads one prefix written by [`encode_net`]; returns it and the rest.
fn decode_net(bytes: &[u8]) -> (IpNet, &[u8]) {
    let h = bytes[0];
    if h <= 32 {
        let n = usize::from(h).div_ceil(8);
        let mut o = [0u8; 4];
        o[..n].copy_from_slice(&bytes[1..1 + n]);
        let net = Ipv4Net::new(o.into(), h).expect("stored length");
        (IpNet::V4(net), &bytes[1 + n..])
    } else {
        let len = h - 33;
        let n = usize::from(len).div_ceil(8);
        let mut o = [0u8; 16];
        o[..n].copy_from_slice(&bytes[1..1 + n]);
        let net = Ipv6Net::new(o.into(), len).expect("stored length");
        (IpNet::V6(net), &bytes[1 + n..])
    }
}

/// A stored member, read in place.
#[derive(Clone, Copy)]
pub struct MemberView<'a> {
    store: &'a MemberStore,
    rec: &'a Rec,
}

impl<'a> MemberView<'a> {
    pub fn id(&self) -> &'a str {
        self.store.id_at(self.rec)
    }

    pub fn interface(&self) -> &'a str {
        &self.store.ifaces[self.rec.iface as usize]
    }

    pub fn s_vlan(&self) -> Option<u16> {
        (self.rec.s_vlan != 0).then_some(self.rec.s_vlan)
    }

    pub fn c_vlan(&self) -> Option<u16> {
        (self.rec.c_vlan != 0).then_some(self.rec.c_vlan)
    }

    pub fn mac(&self) -> Option<MacAddr> {
        (self.rec.flags & HAS_MAC != 0).then_some(MacAddr(self.rec.mac))
    }

    pub fn origin(&self) -> Origin {
        if self.rec.flags & ORIGIN_API != 0 {
            Origin::Api
        } else if self.rec.flags & ORIGIN_SESSION != 0 {
            Origin::Session
        } else {
            Origin::Config
        }
    }

    /// The attachment: (S-tag, C-tag), 0 for none.
    pub fn tags(&self) -> (u16, u16) {
        (self.rec.s_vlan, self.rec.c_vlan)
    }

    /// The prefixes, in their order.
    pub fn prefixes(&self) -> Prefixes<'a> {
        let start = self.rec.off as usize + self.rec.id_len as usize;
        let end = self.rec.off as usize + self.rec.len as usize;
        Prefixes {
            bytes: &self.store.arena[start..end],
        }
    }

    /// Whether this member has exactly the prefixes of `other` (of any
    /// store), in the same order.
    pub fn same_prefixes(&self, other: &MemberView<'_>) -> bool {
        self.bytes()[self.rec.id_len as usize..] == other.bytes()[other.rec.id_len as usize..]
    }

    /// Whether the prefixes include `net`.
    pub fn has_prefix(&self, net: &IpNet) -> bool {
        self.prefixes().any(|p| p == *net)
    }

    /// An owned copy.
    pub fn to_member(&self) -> Member {
        Member {
            id: self.id().to_owned(),
            interface: self.interface().to_owned(),
            s_vlan: self.s_vlan(),
            c_vlan: self.c_vlan(),
            mac: self.mac(),
            prefixes: self.prefixes().collect(),
        }
    }

    /// Whether this member is `m` exactly (origin aside), prefixes in the
    /// same order.
    pub fn same_as(&self, m: MemberIn<'_>) -> bool {
        self.id() == m.id
            && self.interface() == m.interface
            && self.s_vlan() == m.s_vlan
            && self.c_vlan() == m.c_vlan
            && self.mac() == m.mac
            && self.prefixes().eq(m.prefixes.iter().copied())
    }

    /// Whether this member equals `other` of another store (origin aside).
    pub fn same_as_view(&self, other: &MemberView<'_>) -> bool {
        let (a, b) = (self.rec, other.rec);
        a.s_vlan == b.s_vlan
            && a.c_vlan == b.c_vlan
            && a.flags & HAS_MAC == b.flags & HAS_MAC
            && a.mac == b.mac
            && self.bytes() == other.bytes()
            && self.interface() == other.interface()
    }

    /// The member's arena bytes: id, then prefixes.
    fn bytes(&self) -> &'a [u8] {
        let r = self.rec;
        &self.store.arena[r.off as usize..r.off as usize + r.len as usize]
    }
}

impl fmt::Debug for MemberView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_member().fmt(f)
    }
}

/// A stored member's prefixes.
#[derive(Clone)]
pub struct Prefixes<'a> {
    bytes: &'a [u8],
}

impl Iterator for Prefixes<'_> {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        if self.bytes.is_empty() {
            return None;
        }
        let (net, rest) = decode_net(self.bytes);
        self.bytes = rest;
        Some(net)
    }
}

/// Serializes exactly as [`Member`] does: the `[[member]]` shape.
impl Serialize for MemberView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", self.id())?;
        map.serialize_entry("interface", self.interface())?;
        if let Some(v) = self.s_vlan() {
            map.serialize_entry("s_vlan", &v)?;
        }
        if let Some(v) = self.c_vlan() {
            map.serialize_entry("c_vlan", &v)?;
        }
        if let Some(mac) = self.mac() {
            map.serialize_entry("mac", &mac)?;
        }
        map.serialize_entry("prefixes", &PrefixText(self.prefixes()))?;
        map.end()
    }
}

/// Prefixes as a list of strings.
struct PrefixText<'a>(Prefixes<'a>);

impl Serialize for PrefixText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone().map(NetText))
    }
}

/// A prefix as `address/length`, written without allocating.
struct NetText(IpNet);

impl Serialize for NetText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}
