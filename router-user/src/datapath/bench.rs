//! The bench build, for the `bench` crate only (cargo feature `bench`).
//!
//! The program's rodata global `BENCH` set to 1: before parsing, each run
//! restores the frame from a template and writes a random address from
//! `BENCH_ADDRS` into it (router-ebpf/src/bench.rs). Nothing else in the
//! datapath depends on this module; production instances load with
//! `BENCH = 0`.
use std::time::Duration;

use aya::{
    maps::{Array, MapData, PerCpuArray, PerCpuValues},
    programs::{TestRun, TestRunOptions},
};

use super::error::{DatapathError, map_err};
use super::{Datapath, LoadOptions, Mode, Sizing};

/// Length of every bench frame.
pub const BENCH_FRAME_LEN: usize = 64;

/// Bytes of `BENCH_CONF`'s value: count, offset, address length, first
/// (`u32` each), then the frame.
pub const BENCH_CONF_LEN: usize = 16 + BENCH_FRAME_LEN;

/// The value of `BENCH_CONF` (router-ebpf/src/bench.rs): each run starts
/// from `frame` with one of `count` addresses from entry `first` of
/// `BENCH_ADDRS` written at byte `offset`. With `addr_len` 16 an entry is
/// one address; with 4, four IPv4 addresses (see [`bench_pack4`]).
pub fn bench_conf(
    frame: &[u8; BENCH_FRAME_LEN],
    offset: u32,
    addr_len: u32,
    first: u32,
    count: u32,
) -> [u8; BENCH_CONF_LEN] {
    let mut conf = [0u8; BENCH_CONF_LEN];
    conf[0..4].copy_from_slice(&count.to_ne_bytes());
    conf[4..8].copy_from_slice(&offset.to_ne_bytes());
    conf[8..12].copy_from_slice(&addr_len.to_ne_bytes());
    conf[12..16].copy_from_slice(&first.to_ne_bytes());
    conf[16..].copy_from_slice(frame);
    conf
}

/// IPv4 addresses (network byte order) packed four to a `BENCH_ADDRS`
/// entry.
pub fn bench_pack4(addresses: &[[u8; 4]]) -> Vec<[u8; 16]> {
    addresses
        .chunks(4)
        .map(|c| {
            let mut e = [0u8; 16];
            for (i, a) in c.iter().enumerate() {
                e[4 * i..4 * i + 4].copy_from_slice(a);
            }
            e
        })
        .collect()
}

impl Datapath {
    /// Loads the bench build of the forwarding program (empty tables, no
    /// pins), with room for `addresses` entries in `BENCH_ADDRS`.
    pub fn load_bench(sizing: Sizing, addresses: u32) -> Result<Self, DatapathError> {
        let opts = LoadOptions {
            sizing,
            mode: Mode::Forward,
            pin_dir: None,
        };
        Self::load_inner(&opts, Some(addresses))
    }

    fn bench_map(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, DatapathError> {
        self.ebpf
            .map_mut(name)
            .ok_or(DatapathError::MissingMap { map: name })
    }

    /// Writes `BENCH_ADDRS` from entry 0 (see [`bench_conf`]).
    pub fn bench_addresses(&mut self, addresses: &[[u8; 16]]) -> Result<(), DatapathError> {
        let mut map: Array<&mut MapData, [u8; 16]> = self
            .bench_map("BENCH_ADDRS")?
            .try_into()
            .map_err(map_err("BENCH_ADDRS"))?;
        for (i, a) in addresses.iter().enumerate() {
            map.set(i as u32, a, 0).map_err(map_err("BENCH_ADDRS"))?;
        }
        Ok(())
    }

    /// Writes `BENCH_CONF` (see [`bench_conf`]), and gives every CPU its
    /// whole `[edge] icmp_burst` again (`ICMP_RATE` at 0): a measurement
    /// of the answers' paths measures answers, not the rate limit's drops.
    pub fn bench_setup(&mut self, conf: &[u8; BENCH_CONF_LEN]) -> Result<(), DatapathError> {
        let mut map: Array<&mut MapData, [u8; BENCH_CONF_LEN]> = self
            .bench_map("BENCH_CONF")?
            .try_into()
            .map_err(map_err("BENCH_CONF"))?;
        map.set(0, conf, 0).map_err(map_err("BENCH_CONF"))?;
        let ncpus = self.ncpus;
        let mut rate: PerCpuArray<&mut MapData, u64> = self
            .bench_map("ICMP_RATE")?
            .try_into()
            .map_err(map_err("ICMP_RATE"))?;
        let zeros =
            PerCpuValues::try_from(vec![0u64; ncpus]).map_err(|e| DatapathError::Layout {
                map: "ICMP_RATE",
                message: e.to_string(),
            })?;
        rate.set(0, zeros, 0).map_err(map_err("ICMP_RATE"))
    }

    /// Runs the program `repeat` times on `frame` arriving on
    /// `ingress_ifindex` (which must exist in the caller's namespace), without
    /// copying the frame back: the action of the last run and the kernel's
    /// mean time per run.
    pub fn bench_run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
    ) -> Result<(u32, Duration), DatapathError> {
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        let result = self
            .program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(DatapathError::TestRun)?;
        Ok((result.return_value, result.duration))
    }
}
