//! The 64-byte bench frames (UDP, zero payload, untagged or QinQ; an ARP
//! request) and the offsets of their addresses.
use collecte::datapath::bench::BENCH_FRAME_LEN;

pub type Frame = [u8; BENCH_FRAME_LEN];

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// An "internet" host: the far end of member traffic.
pub const REMOTE4: [u8; 4] = [198, 51, 100, 7];
pub const REMOTE6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
];

/// Layer-2 header: MACs, optional QinQ tags (S, C), EtherType. Returns the
/// layer-3 offset.
fn l2(f: &mut Frame, dst: [u8; 6], src: [u8; 6], qinq: Option<(u16, u16)>, proto: u16) -> usize {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    match qinq {
        None => {
            f[12..14].copy_from_slice(&proto.to_be_bytes());
            14
        }
        Some((s, c)) => {
            f[12..14].copy_from_slice(&ETH_P_8021AD.to_be_bytes());
            f[14..16].copy_from_slice(&s.to_be_bytes());
            f[16..18].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
            f[18..20].copy_from_slice(&c.to_be_bytes());
            f[20..22].copy_from_slice(&proto.to_be_bytes());
            22
        }
    }
}

fn checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 UDP frame; returns it with the offsets of its source and
/// destination addresses.
pub fn ipv4(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    qinq: Option<(u16, u16)>,
    src: [u8; 4],
    dst: [u8; 4],
) -> (Frame, u32, u32) {
    let mut f = [0u8; BENCH_FRAME_LEN];
    let l3 = l2(&mut f, dst_mac, src_mac, qinq, ETH_P_IP);
    let tot = (BENCH_FRAME_LEN - l3) as u16;
    let ip = &mut f[l3..l3 + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    udp(&mut f[l3 + 20..], tot - 20);
    (f, (l3 + 12) as u32, (l3 + 16) as u32)
}

/// An IPv4 UDP frame in PPPoE session `session_id` (untagged), to `dst`;
/// returns it with the offset of its source address.
pub fn session4(dst_mac: [u8; 6], src_mac: [u8; 6], session_id: u16, dst: [u8; 4]) -> (Frame, u32) {
    const SESSION_HLEN: usize = 8;
    let (plain, src_at, _) = ipv4(dst_mac, src_mac, None, [0; 4], dst);
    let mut f = [0u8; BENCH_FRAME_LEN];
    f[..12].copy_from_slice(&plain[..12]);
    f[12..14].copy_from_slice(&0x8864u16.to_be_bytes());
    let ip_len = BENCH_FRAME_LEN - 14 - SESSION_HLEN;
    f[14] = 0x11;
    f[16..18].copy_from_slice(&session_id.to_be_bytes());
    f[18..20].copy_from_slice(&((ip_len + 2) as u16).to_be_bytes());
    f[20..22].copy_from_slice(&0x0021u16.to_be_bytes());
    // The plain frame's IP packet, shortened by the session's 8 bytes.
    let ip = ipv4(dst_mac, src_mac, None, [0; 4], dst).0;
    let mut inner = ip[14..14 + ip_len].to_vec();
    inner[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    inner[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&inner[..20]);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    // UDP length.
    inner[24..26].copy_from_slice(&((ip_len - 20) as u16).to_be_bytes());
    f[14 + SESSION_HLEN..].copy_from_slice(&inner);
    let _ = plain;
    (f, src_at + SESSION_HLEN as u32)
}

/// An IPv6 UDP frame; returns it with the offsets of its source and
/// destination addresses.
pub fn ipv6(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 16], dst: [u8; 16]) -> (Frame, u32, u32) {
    let mut f = [0u8; BENCH_FRAME_LEN];
    let l3 = l2(&mut f, dst_mac, src_mac, None, ETH_P_IPV6);
    let payload = (BENCH_FRAME_LEN - l3 - 40) as u16;
    let ip = &mut f[l3..l3 + 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&payload.to_be_bytes());
    ip[6] = 17;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&src);
    ip[24..40].copy_from_slice(&dst);
    udp(&mut f[l3 + 40..], payload);
    (f, (l3 + 8) as u32, (l3 + 24) as u32)
}

/// A broadcast ARP request from `mac` for `target`, padded to the bench
/// frame's length; returns it with the offset of its sender address.
pub fn arp_request(mac: [u8; 6], target: [u8; 4]) -> (Frame, u32) {
    let mut f = [0u8; BENCH_FRAME_LEN];
    let l3 = l2(&mut f, [0xff; 6], mac, None, ETH_P_ARP);
    let a = &mut f[l3..l3 + 28];
    a[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    a[8..14].copy_from_slice(&mac);
    a[24..28].copy_from_slice(&target);
    (f, (l3 + 14) as u32)
}

/// Sets the hop limit of an untagged IPv6 frame.
pub fn set_hop_limit6(f: &mut Frame, hop_limit: u8) {
    f[14 + 7] = hop_limit;
}

fn udp(u: &mut [u8], len: u16) {
    u[0..2].copy_from_slice(&40000u16.to_be_bytes());
    u[2..4].copy_from_slice(&9u16.to_be_bytes());
    u[4..6].copy_from_slice(&len.to_be_bytes());
}
