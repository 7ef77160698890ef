//! The packet tracer: runs every packet of a pcap through the real XDP
//! program (`BPF_PROG_TEST_RUN`) with tables built from a configuration, and
//! says what the program did with each.
//!
//! The tracer loads its own instance of the program (see
//! [`Mode::Trace`]): it takes the ingress interface from a map, so the
//! interfaces need not exist on this machine, and it never moves a counter.
use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, BufWriter, Read},
    net::IpAddr,
    path::{Path, PathBuf},
};

use pcap_file::{
    DataLink, Endianness,
    pcap::{PcapHeader, PcapWriter, RawPcapPacket},
};
use router_common::{TraceVerdict, reason};
use router_core::{
    changes::RecordedSlots,
    config::Config,
    tables::{LinkInfo, Tables, TablesError},
};

use crate::{
    datapath::{Datapath, DatapathError, LoadOptions, Mode, Sizing, action},
    explain::{self, Names},
    netlink::Snapshot,
};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a readable pcap file ({source}); pcapng files can be converted with `editcap -F pcap IN OUT`"
    )]
    Pcap {
        path: PathBuf,
        #[source]
        source: pcap_file::PcapError,
    },
    #[error("{path}: not a pcap file: {len} bytes, shorter than the 24-byte header of a pcap file")]
    PcapTooShort { path: PathBuf, len: usize },
    #[error("{path}: link type {link:?} is not Ethernet")]
    LinkType { path: PathBuf, link: DataLink },
    #[error(
        "--ingress {0}: not an interface of the configuration (give one of its [[uplink]] or [[access]] interfaces)"
    )]
    UnknownIngress(String),
    #[error(transparent)]
    Tables(#[from] TablesError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
}

/// What happened to one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// 1-based packet number in the pcap.
    pub number: usize,
    /// The XDP action.
    pub action: u32,
    /// One of [`reason`].
    pub reason: u32,
    /// Egress interface, for forwards.
    pub egress: Option<String>,
    /// The member the packet was attributed to.
    pub member: Option<String>,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
    /// The record holds only the start of the frame (a capture with a
    /// snap length): the program saw what was captured.
    pub snapped: Option<Snapped>,
    /// With `--explain`: the steps the program recorded, one sentence each
    /// (see [`crate::explain`]); empty otherwise.
    pub explain: Vec<String>,
}

/// A record captured shorter than the frame was on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapped {
    /// Bytes in the record (`incl_len`).
    pub captured: u32,
    /// Bytes on the wire (`orig_len`).
    pub wire: u32,
}

impl std::fmt::Display for TraceLine {
    /// `N forward IFACE member=ID`, `N reply REASON`, `N pass REASON` or `N drop REASON
    /// member=ID`, followed by ` (captured C of W bytes)` for a record
    /// captured shorter than its frame.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason_name = reason::NAMES
            .get(self.reason as usize)
            .map_or("unknown", |(_, r)| r);
        write!(f, "{} {}", self.number, action::name(self.action))?;
        match self.action {
            action::REDIRECT => write!(f, " {}", self.egress.as_deref().unwrap_or("?"))?,
            _ => write!(f, " {reason_name}")?,
        }
        if self.action != action::PASS
            && let Some(m) = &self.member
        {
            write!(f, " member={m}")?;
        }
        if let Some(s) = self.snapped {
            write!(f, " (captured {} of {} bytes)", s.captured, s.wire)?;
        }
        for step in &self.explain {
            write!(f, "\n    {step}")?;
        }
        Ok(())
    }
}

/// Why a record of the pcap could not be traced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The kernel's test run would give the program only the start of the
    /// frame (see [`Datapath::run`]).
    #[error("frame of {len} bytes is larger than the kernel's test run accepts (at most {max})")]
    TooLarge { len: usize, max: usize },
    /// The kernel's test run refused the frame (kernels before 5.18 refuse
    /// frames larger than it accepts this way).
    #[error("the kernel's test run refused the frame of {len} bytes: {message}")]
    Refused { len: usize, message: String },
    /// The file ends inside the record's 16-byte header.
    #[error(
        "record {number} is cut short: the file ends {present} bytes into its 16-byte record header"
    )]
    CutInHeader { number: usize, present: usize },
    /// The file ends inside the record's data.
    #[error(
        "record {number} is cut short: the file ends after {present} of the {expected} bytes its header announces"
    )]
    CutInData {
        number: usize,
        present: usize,
        expected: usize,
    },
}

/// One record of a trace: what the program did with the frame, or why it
/// could not be traced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Traced(TraceLine),
    /// `N error: WHY`.
    Error {
        number: usize,
        error: FrameError,
    },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Traced(l) => l.fmt(f),
            Entry::Error { number, error } => write!(f, "{number} error: {error}"),
        }
    }
}

/// The exit status of `collecte trace` when some records could not be
/// traced (error lines) or the file is cut short; every other record was
/// traced. (1 is a trace that could not run at all, 2 a bad command line.)
pub const EXIT_UNTRACED: i32 = 3;

/// How a whole pcap went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read, whole or cut short.
    pub records: usize,
    /// Records that got an error line (a cut-short one included).
    pub errors: usize,
}

/// A loaded tracer: the program's trace instance with the configuration's
/// tables.
pub struct Tracer {
    datapath: Datapath,
    /// Interface name -> the ifindex the tracer uses for it.
    ifindexes: BTreeMap<String, u32>,
    /// Interfaces and members by slot, to name them in lines and
    /// explanations.
    names: Names,
    /// Whether each line gets the program's steps ([`TraceLine::explain`]).
    explain: bool,
    /// Interfaces that do not exist here and got a made-up description.
    pub synthetic: Vec<(String, LinkInfo)>,
    /// The tables are the running daemon's (pinned), not built here.
    pub live: bool,
}

/// Ifindexes given to interfaces absent from this machine: far above real
/// ones, below the datapath's limit.
const SYNTHETIC_IFINDEX_BASE: u32 = 60000;

/// A made-up description for a configured interface that does not exist on
/// this machine: locally administered MAC 02:00:00:00:ff:SLOT, MTU 1500.
pub fn synthetic_link(slot: u32) -> LinkInfo {
    LinkInfo {
        ifindex: SYNTHETIC_IFINDEX_BASE + slot,
        mac: [0x02, 0, 0, 0, 0xff, slot as u8],
        mtu: 1500,
        up: true,
    }
}

/// What `collecte trace` prints (on stderr) for an interface traced with
/// a made-up description.
pub fn synthetic_note(name: &str, link: &LinkInfo) -> String {
    let m = link.mac;
    format!(
        "note: interface {name} does not exist here; tracing it as ifindex {} with MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} and MTU {}",
        link.ifindex, m[0], m[1], m[2], m[3], m[4], m[5], link.mtu
    )
}

impl Tracer {
    /// Builds the tables of `config` with the interfaces and addresses of
    /// `system` (interfaces it lacks get [`synthetic_link`]s).
    ///
    /// When a daemon has pinned its tables under the configuration's
    /// `pin_dir`, the tracer reads those live tables instead (never writing
    /// them, never counting).
    pub fn new(config: &Config, system: &Snapshot) -> Result<Self, TraceError> {
        let sizing = Sizing {
            max_members: config.datapath.max_members,
            route_groups: config.datapath.route_groups(),
        };
        let pin_dir = &config.datapath.pin_dir;
        if pin_dir.join("GLOBALS").exists() {
            let datapath = Datapath::load_with(&LoadOptions {
                sizing,
                mode: Mode::Trace,
                pin_dir: Some(pin_dir.clone()),
            })?;
            let RecordedSlots { members, ifaces } = datapath.recorded_slots()?;
            let ifindexes = ifaces
                .keys()
                .filter_map(|n| system.links.get(n).map(|l| (n.clone(), l.ifindex)))
                .collect();
            // The configuration's members, by the slots the daemon gave
            // them (those provisioned through the API are known by id).
            let slots: BTreeMap<&str, u32> =
                members.iter().map(|(n, s)| (n.as_str(), *s)).collect();
            let known = config
                .members
                .iter()
                .filter_map(|m| slots.get(m.id.as_str()).map(|s| (*s, m.clone())))
                .collect();
            return Ok(Tracer {
                datapath,
                ifindexes,
                names: Names {
                    ifaces: ifaces.into_iter().map(|(n, s)| (s, n)).collect(),
                    member_ids: members.into_iter().map(|(n, s)| (s, n)).collect(),
                    members: known,
                },
                explain: false,
                synthetic: Vec::new(),
                live: true,
            });
        }
        let mut links = system.links.clone();
        let gateways: BTreeMap<IpAddr, [u8; 6]> = BTreeMap::new();
        // Slots first, to derive synthetic descriptions from them.
        let probe = Tables::from_config(config, &links, &gateways)?;
        let mut synthetic = Vec::new();
        for (name, iface) in probe.interfaces() {
            if !links.contains_key(name) {
                let l = synthetic_link(iface.slot);
                synthetic.push((name.clone(), l));
                links.insert(name.clone(), l);
            }
        }
        let mut tables = Tables::from_config(config, &links, &gateways)?;
        tables.set_link_addresses(&system.link_addresses);
        tables.set_locals(&system.addresses)?;
        let mut datapath = Datapath::load(sizing, Mode::Trace)?;
        let mut ifindexes = BTreeMap::new();
        let mut iface_names = BTreeMap::new();
        for (name, iface) in tables.interfaces() {
            datapath.set_iface(iface.slot, name, &iface.info, None)?;
            datapath.set_iface_addrs(iface.slot, &iface.addrs, &iface.gateways)?;
            ifindexes.insert(name.clone(), iface.info.ifindex);
            iface_names.insert(iface.slot, name.clone());
        }
        datapath.apply_full(&tables.full_state())?;
        let member_ids = tables
            .members()
            .map(|(slot, m)| (slot, m.id().to_string()))
            .collect();
        let members = tables
            .members()
            .map(|(slot, m)| (slot, m.to_member()))
            .collect();
        Ok(Tracer {
            datapath,
            ifindexes,
            names: Names {
                ifaces: iface_names,
                member_ids,
                members,
            },
            explain: false,
            synthetic,
            live: false,
        })
    }

    /// Runs one frame arriving on `ingress`.
    ///
    /// A frame shorter than an Ethernet header, which the kernel's test run
    /// refuses, is reported as the program's first check treats it: `drop
    /// malformed`, unchanged. A frame the test run cannot give the program
    /// whole is an [`Entry::Error`]. Only what concerns the tracer as a
    /// whole (an unknown ingress, a map that cannot be read) is an `Err`.
    pub fn run(&mut self, number: usize, ingress: &str, frame: &[u8]) -> Result<Entry, TraceError> {
        let ifindex = *self
            .ifindexes
            .get(ingress)
            .ok_or_else(|| TraceError::UnknownIngress(ingress.to_string()))?;
        let (result, verdict) = match self.datapath.run(frame, ifindex) {
            Ok(r) => r,
            // router-ebpf's `process`: no Ethernet header, `DROP_MALFORMED`,
            // before anything else is looked at.
            Err(DatapathError::FrameTooShort { .. }) => {
                return Ok(Entry::Traced(TraceLine {
                    number,
                    action: action::DROP,
                    reason: reason::DROP_MALFORMED,
                    egress: None,
                    member: None,
                    frame: frame.to_vec(),
                    snapped: None,
                    explain: if self.explain {
                        vec![
                            format!(
                                "headers: {} bytes, shorter than an Ethernet header; the kernel's test run refuses such a frame, and the program's first check drops it",
                                frame.len()
                            ),
                            format!(
                                "drop (XDP_DROP), reason malformed: {}",
                                explain::describe(reason::DROP_MALFORMED)
                            ),
                        ]
                    } else {
                        Vec::new()
                    },
                }));
            }
            Err(DatapathError::FrameTooLarge { len, max }) => {
                return Ok(Entry::Error {
                    number,
                    error: FrameError::TooLarge { len, max },
                });
            }
            Err(DatapathError::TestRun(e)) => {
                return Ok(Entry::Error {
                    number,
                    error: FrameError::Refused {
                        len: frame.len(),
                        message: error_chain(&e),
                    },
                });
            }
            Err(e) => return Err(e.into()),
        };
        let v: TraceVerdict = verdict.unwrap_or_default();
        let egress = (result.action == action::REDIRECT)
            .then(|| self.names.ifaces.get(&v.egress).cloned())
            .flatten();
        Ok(Entry::Traced(TraceLine {
            number,
            action: result.action,
            reason: v.reason,
            egress,
            member: self.names.member_ids.get(&v.member).cloned(),
            explain: if self.explain {
                self.names.explain(ingress, frame, &v, result.action)
            } else {
                Vec::new()
            },
            frame: result.frame,
            snapped: None,
        }))
    }

    /// Traces every record of the pcap at `input`, calling `each` with each
    /// entry in order, and writes the frames to `output` when given: as the
    /// program left them, unchanged when they were not forwarded or could
    /// not be traced, one record per record read, with its timestamp. A
    /// record captured shorter than its frame is traced as captured (its
    /// line says so), and written with its wire length changed by what the
    /// program added or removed. A file that ends inside a record gets an
    /// error line for that record, and the trace ends there; nothing is
    /// written for that record.
    pub fn run_pcap(
        &mut self,
        ingress: &str,
        input: &Path,
        output: Option<&Path>,
        mut each: impl FnMut(&Entry),
    ) -> Result<Summary, TraceError> {
        if !self.ifindexes.contains_key(ingress) {
            return Err(TraceError::UnknownIngress(ingress.to_string()));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TraceError::Io { path, source }
        };
        let pcap = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TraceError::Pcap { path, source }
        };
        let file = File::open(input).map_err(io(input))?;
        let (header, mut records) = Records::open(BufReader::new(file), input)?;
        if header.datalink != DataLink::ETHERNET {
            return Err(TraceError::LinkType {
                path: input.to_path_buf(),
                link: header.datalink,
            });
        }
        let mut writer = match output {
            Some(path) => {
                let file = File::create(path).map_err(io(path))?;
                let header = PcapHeader {
                    snaplen: header.snaplen.max(65535),
                    ..header
                };
                Some(PcapWriter::with_header(BufWriter::new(file), header).map_err(pcap(path))?)
            }
            None => None,
        };
        let mut summary = Summary::default();
        loop {
            let number = summary.records + 1;
            let record = match records.next(number).map_err(io(input))? {
                Next::End => break,
                Next::Record(r) => r,
                Next::CutShort(error) => {
                    summary.records += 1;
                    summary.errors += 1;
                    each(&Entry::Error { number, error });
                    break;
                }
            };
            summary.records += 1;
            let mut entry = self.run(number, ingress, &record.data)?;
            let frame: &[u8] = match &mut entry {
                Entry::Traced(line) => {
                    if record.incl_len < record.orig_len {
                        line.snapped = Some(Snapped {
                            captured: record.incl_len,
                            wire: record.orig_len,
                        });
                    }
                    &line.frame
                }
                Entry::Error { .. } => {
                    summary.errors += 1;
                    &record.data
                }
            };
            if let (Some(w), Some(path)) = (writer.as_mut(), output) {
                // The wire length grows or shrinks with the frame (tags
                // pushed or popped); what was not captured stays missing.
                let missing = record.orig_len.saturating_sub(record.incl_len);
                let out = RawPcapPacket {
                    ts_sec: record.ts_sec,
                    ts_frac: record.ts_frac,
                    incl_len: frame.len() as u32,
                    orig_len: (frame.len() as u32).saturating_add(missing),
                    data: frame.into(),
                };
                w.write_raw_packet(&out).map_err(pcap(path))?;
            }
            each(&entry);
        }
        if let (Some(w), Some(path)) = (writer, output) {
            use std::io::Write as _;
            w.into_writer().flush().map_err(io(path))?;
        }
        Ok(summary)
    }

    /// Whether each line gets the program's steps, in words.
    pub fn set_explain(&mut self, on: bool) {
        self.explain = on;
    }

    /// The tracer's program instance.
    pub fn datapath(&self) -> &Datapath {
        &self.datapath
    }
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// What [`Records::next`] found.
#[derive(Debug)]
enum Next {
    Record(RawPcapPacket<'static>),
    /// The file ends inside this record.
    CutShort(FrameError),
    End,
}

/// The records of a pcap file, read one at a time. (pcap-file's reader
/// refuses a record whose wire length exceeds the file's snap length,
/// which is what a capture with a snap length holds, and reports a file
/// cut short as a bare end of file.)
struct Records<R> {
    reader: R,
    endianness: Endianness,
}

/// Reads into `buf` until it is full or the input ends; returns how many
/// bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Records<R> {
    /// Reads the file header of `path`.
    fn open(mut reader: R, path: &Path) -> Result<(PcapHeader, Records<R>), TraceError> {
        let mut head = [0u8; 24];
        let got = read_full(&mut reader, &mut head).map_err(|source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if got < head.len() {
            return Err(TraceError::PcapTooShort {
                path: path.to_path_buf(),
                len: got,
            });
        }
        let (_, header) = PcapHeader::from_slice(&head).map_err(|source| TraceError::Pcap {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((
            header,
            Records {
                reader,
                endianness: header.endianness,
            },
        ))
    }

    /// Record `number` (1-based, for errors), if any.
    fn next(&mut self, number: usize) -> std::io::Result<Next> {
        let mut head = [0u8; 16];
        let got = read_full(&mut self.reader, &mut head)?;
        if got == 0 {
            return Ok(Next::End);
        }
        if got < head.len() {
            return Ok(Next::CutShort(FrameError::CutInHeader {
                number,
                present: got,
            }));
        }
        let field = |i: usize| {
            let b: [u8; 4] = head[4 * i..4 * i + 4].try_into().unwrap();
            match self.endianness {
                Endianness::Big => u32::from_be_bytes(b),
                Endianness::Little => u32::from_le_bytes(b),
            }
        };
        let (ts_sec, ts_frac, incl_len, orig_len) = (field(0), field(1), field(2), field(3));
        // Read as it comes: a corrupt length allocates no more than the file
        // holds.
        let mut data = Vec::new();
        (&mut self.reader)
            .take(u64::from(incl_len))
            .read_to_end(&mut data)?;
        if data.len() < incl_len as usize {
            return Ok(Next::CutShort(FrameError::CutInData {
                number,
                present: data.len(),
                expected: incl_len as usize,
            }));
        }
        Ok(Next::Record(RawPcapPacket {
            ts_sec,
            ts_frac,
            incl_len,
            orig_len,
            data: data.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file: its header, then `(incl_len, orig_len, data)` records,
    /// in `endianness`.
    fn pcap(endianness: Endianness, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = PcapHeader {
            endianness,
            ..PcapHeader::default()
        };
        header.write_to(&mut out).unwrap();
        for (i, (incl, orig, data)) in records.iter().enumerate() {
            for v in [100 + i as u32, 7, *incl, *orig] {
                out.extend(match endianness {
                    Endianness::Big => v.to_be_bytes(),
                    Endianness::Little => v.to_le_bytes(),
                });
            }
            out.extend_from_slice(data);
        }
        out
    }

    /// Every record of `bytes`, then what ended them.
    fn read(bytes: &[u8]) -> (Vec<RawPcapPacket<'static>>, Option<FrameError>) {
        let (_, mut r) = Records::open(bytes, Path::new("t.pcap")).unwrap();
        let mut got = Vec::new();
        for number in 1.. {
            match r.next(number).unwrap() {
                Next::Record(p) => got.push(p),
                Next::CutShort(e) => return (got, Some(e)),
                Next::End => break,
            }
        }
        (got, None)
    }

    #[test]
    fn reads_records_of_either_byte_order() {
        let (a, b) = ([1u8; 60], [2u8; 14]);
        for e in [Endianness::Little, Endianness::Big] {
            let (got, end) = read(&pcap(e, &[(60, 60, &a), (14, 14, &b)]));
            assert_eq!(end, None);
            assert_eq!(got.len(), 2);
            assert_eq!(
                (
                    got[0].ts_sec,
                    got[0].ts_frac,
                    got[0].incl_len,
                    got[0].orig_len
                ),
                (100, 7, 60, 60)
            );
            assert_eq!(&*got[0].data, &a[..]);
            assert_eq!((got[1].ts_sec, &*got[1].data), (101, &b[..]));
        }
    }

    /// A capture with a snap length: the record holds 64 of 1514 bytes,
    /// beyond the file's snap length (pcap-file's reader refuses it).
    #[test]
    fn reads_a_record_captured_shorter_than_its_frame() {
        let data = [3u8; 64];
        let mut bytes = pcap(Endianness::Little, &[(64, 1514, &data)]);
        bytes[16..20].copy_from_slice(&64u32.to_le_bytes()); // snaplen
        let (got, end) = read(&bytes);
        assert_eq!(end, None);
        assert_eq!((got[0].incl_len, got[0].orig_len), (64, 1514));
        assert_eq!(&*got[0].data, &data[..]);
    }

    #[test]
    fn names_a_record_cut_short() {
        let a = [1u8; 60];
        let whole = pcap(Endianness::Little, &[(60, 60, &a), (60, 60, &a)]);
        // In the second record's data: 20 of its 60 bytes.
        let (got, end) = read(&whole[..whole.len() - 40]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            end,
            Some(FrameError::CutInData {
                number: 2,
                present: 20,
                expected: 60
            })
        );
        assert_eq!(
            end.unwrap().to_string(),
            "record 2 is cut short: the file ends after 20 of the 60 bytes its header announces"
        );
        // In its header: 7 of 16 bytes.
        let (got, end) = read(&whole[..24 + 16 + 60 + 7]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            end,
            Some(FrameError::CutInHeader {
                number: 2,
                present: 7
            })
        );
        // A corrupt length claims more than the file holds: cut short,
        // nothing of that size allocated.
        let (got, end) = read(&pcap(Endianness::Little, &[(u32::MAX, u32::MAX, &a)]));
        assert!(got.is_empty());
        assert_eq!(
            end,
            Some(FrameError::CutInData {
                number: 1,
                present: 60,
                expected: u32::MAX as usize
            })
        );
    }

    #[test]
    fn an_empty_capture_has_no_record() {
        let (got, end) = read(&pcap(Endianness::Little, &[]));
        assert!(got.is_empty());
        assert_eq!(end, None);
    }

    #[test]
    fn refuses_a_file_shorter_than_a_pcap_header_and_a_bad_magic() {
        let e = Records::open(&b"short"[..], Path::new("x.pcap"))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "x.pcap: not a pcap file: 5 bytes, shorter than the 24-byte header of a pcap file"
        );
        let e = Records::open(&[0u8; 24][..], Path::new("x.pcap"))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("x.pcap: not a readable pcap file"),
            "{e}"
        );
    }

    #[test]
    fn lines_say_what_happened() {
        let line = TraceLine {
            number: 3,
            action: action::DROP,
            reason: reason::DROP_MALFORMED,
            egress: None,
            member: None,
            frame: vec![0; 10],
            snapped: None,
            explain: Vec::new(),
        };
        assert_eq!(Entry::Traced(line.clone()).to_string(), "3 drop malformed");
        let snapped = TraceLine {
            snapped: Some(Snapped {
                captured: 64,
                wire: 1514,
            }),
            ..line
        };
        assert_eq!(
            Entry::Traced(snapped).to_string(),
            "3 drop malformed (captured 64 of 1514 bytes)"
        );
        let e = Entry::Error {
            number: 5,
            error: FrameError::TooLarge {
                len: 9014,
                max: 3520,
            },
        };
        assert_eq!(
            e.to_string(),
            "5 error: frame of 9014 bytes is larger than the kernel's test run accepts (at most 3520)"
        );
    }
}
