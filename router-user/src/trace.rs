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
    io::{BufReader, BufWriter},
    net::IpAddr,
    path::{Path, PathBuf},
};

use pcap_file::{
    DataLink,
    pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter},
};
use router_common::{TraceVerdict, reason};

use crate::{
    config::Config,
    datapath::{Datapath, DatapathError, LoadOptions, Mode, Sizing, action},
    members::{Tables, TablesError},
    neighbors::{LinkInfo, Snapshot},
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
}

impl std::fmt::Display for TraceLine {
    /// `N forward IFACE member=ID`, `N pass REASON` or `N drop REASON
    /// member=ID`.
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
        Ok(())
    }
}

/// A loaded tracer: the program's trace instance with the configuration's
/// tables.
pub struct Tracer {
    datapath: Datapath,
    /// Interface name -> the ifindex the tracer uses for it.
    ifindexes: BTreeMap<String, u32>,
    /// Interface slot -> name.
    iface_names: BTreeMap<u32, String>,
    /// Member slot -> id.
    member_ids: BTreeMap<u32, String>,
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
            let (members, ifaces) = datapath.recorded_slots()?;
            let ifindexes = ifaces
                .keys()
                .filter_map(|n| system.links.get(n).map(|l| (n.clone(), l.ifindex)))
                .collect();
            return Ok(Tracer {
                datapath,
                ifindexes,
                iface_names: ifaces.into_iter().map(|(n, s)| (s, n)).collect(),
                member_ids: members.into_iter().map(|(n, s)| (s, n)).collect(),
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
        tables.set_locals(&system.addresses)?;
        let mut datapath = Datapath::load(sizing, Mode::Trace)?;
        let mut ifindexes = BTreeMap::new();
        let mut iface_names = BTreeMap::new();
        for (name, iface) in tables.interfaces() {
            datapath.set_iface(iface.slot, name, &iface.info, None)?;
            ifindexes.insert(name.clone(), iface.info.ifindex);
            iface_names.insert(iface.slot, name.clone());
        }
        datapath.apply_full(&tables.full_state())?;
        let member_ids = tables
            .members()
            .map(|(slot, m)| (slot, m.id().to_string()))
            .collect();
        Ok(Tracer {
            datapath,
            ifindexes,
            iface_names,
            member_ids,
            synthetic,
            live: false,
        })
    }

    /// Runs one frame arriving on `ingress`.
    pub fn run(
        &mut self,
        number: usize,
        ingress: &str,
        frame: &[u8],
    ) -> Result<TraceLine, TraceError> {
        let ifindex = *self
            .ifindexes
            .get(ingress)
            .ok_or_else(|| TraceError::UnknownIngress(ingress.to_string()))?;
        let (result, verdict) = self.datapath.run(frame, ifindex)?;
        let v: TraceVerdict = verdict.unwrap_or_default();
        let egress = (result.action == action::REDIRECT)
            .then(|| self.iface_names.get(&v.egress).cloned())
            .flatten();
        Ok(TraceLine {
            number,
            action: result.action,
            reason: v.reason,
            egress,
            member: self.member_ids.get(&v.member).cloned(),
            frame: result.frame,
        })
    }

    /// Traces every packet of the pcap at `input`, writing the frames as
    /// the program left them to `output` when given.
    pub fn run_pcap(
        &mut self,
        ingress: &str,
        input: &Path,
        output: Option<&Path>,
    ) -> Result<Vec<TraceLine>, TraceError> {
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
        let mut reader = PcapReader::new(BufReader::new(file)).map_err(pcap(input))?;
        let header = reader.header();
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
        let mut lines = Vec::new();
        let mut number = 0;
        while let Some(packet) = reader.next_packet() {
            let packet = packet.map_err(pcap(input))?;
            number += 1;
            let line = self.run(number, ingress, &packet.data)?;
            if let (Some(w), Some(path)) = (writer.as_mut(), output) {
                let out = PcapPacket::new(packet.timestamp, line.frame.len() as u32, &line.frame);
                w.write_packet(&out).map_err(pcap(path))?;
            }
            lines.push(line);
        }
        if let (Some(w), Some(path)) = (writer, output) {
            use std::io::Write as _;
            w.into_writer().flush().map_err(io(path))?;
        }
        Ok(lines)
    }

    /// The tracer's program instance.
    pub fn datapath(&self) -> &Datapath {
        &self.datapath
    }
}
