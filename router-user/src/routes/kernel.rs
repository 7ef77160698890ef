//! The kernel side of the member routes: one rtnetlink socket, a table's
//! routes of ours dumped, and changes sent in batches.
//!
//! A batch is many `RTM_NEWROUTE` / `RTM_DELROUTE` messages in one
//! `send`. The kernel handles a send's messages one after the other before
//! the call returns, and answers each failure with an error message naming
//! its sequence number; only the last message of a batch asks for an
//! acknowledgement even on success, so that a million routes do not cost a
//! million answers to read. A batch holds at most as many messages as the
//! receive buffer has room for answers, so that even a batch where every
//! message fails loses none of them; if answers are lost all the same
//! (`ENOBUFS`), the exchange is reported lost and the table is dumped again.
//!
//! Blocking: the routes' thread calls it.
use std::{os::fd::AsRawFd as _, time::Duration};

use ipnet::IpNet;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use router_core::export::{Failure, Ops, PROTO};

use super::codec::{self, AF_INET, AF_INET6, Change, Message};

/// Why an exchange with the kernel failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The socket cannot be opened or set up.
    #[error("cannot open a netlink socket for routing table {table}: {source}")]
    Socket {
        table: u32,
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("netlink {what} for routing table {table} failed: {source}")]
    Io {
        what: &'static str,
        table: u32,
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a dump.
    #[error("the kernel refused to dump routing table {table}: {}", std::io::Error::from_raw_os_error(*errno))]
    Dump { table: u32, errno: i32 },
    /// The kernel's answer does not read.
    #[error("routing table {table}: {source}")]
    Codec {
        table: u32,
        #[source]
        source: codec::CodecError,
    },
    /// A batch ended without its acknowledgement.
    #[error(
        "routing table {table}: the kernel's answers to a batch of {messages} route changes are incomplete"
    )]
    Unanswered { table: u32, messages: usize },
    /// A dump kept being interrupted by other changes of the table.
    #[error("routing table {table}: the dump was interrupted by changes {tries} times in a row")]
    Interrupted { table: u32, tries: u32 },
}

/// Bytes of route messages in one send at most.
const BATCH_BYTES: usize = 256 << 10;
/// The socket buffers asked for (`SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`, which
/// need CAP_NET_ADMIN; without it, what the system allows).
const SEND_BUFFER: usize = 1 << 20;
const RECEIVE_BUFFER: usize = 8 << 20;
/// Receive buffer room one answer takes, at most (a small skb).
const ANSWER_ROOM: usize = 2048;
/// How long an answer may take: the kernel answers a send before it
/// returns, so this only bounds a broken exchange.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// An rtnetlink socket working on one routing table.
pub struct KernelTable {
    socket: Socket,
    table: u32,
    seq: u32,
    /// Messages per batch, from the receive buffer's room.
    max_messages: usize,
    out: Vec<u8>,
    inbuf: Vec<u8>,
}

/// What a batch of changes did: the refused ones.
pub type Refused = Vec<(IpNet, bool, Failure)>;

impl KernelTable {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open(table: u32) -> Result<KernelTable, KernelError> {
        let err = |source| KernelError::Socket { table, source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        // Error messages with their reason; the kernel filters dumps by
        // table and protocol; error answers without the request copied.
        socket.set_ext_ack(true).map_err(err)?;
        let _ = socket.set_netlink_get_strict_chk(true);
        let _ = socket.set_cap_ack(true);
        set_buffer(&socket, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, SEND_BUFFER);
        let room = set_buffer(
            &socket,
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            RECEIVE_BUFFER,
        );
        let max_messages = (room / ANSWER_ROOM).max(16);
        let timeout = libc::timeval {
            tv_sec: ANSWER_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: a valid socket and a timeval of the right size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(KernelTable {
            socket,
            table,
            seq: 0,
            max_messages,
            out: Vec::with_capacity(BATCH_BYTES + 1024),
            inbuf: vec![0; 64 << 10],
        })
    }

    pub fn table(&self) -> u32 {
        self.table
    }

    fn io(&self, what: &'static str) -> impl Fn(std::io::Error) -> KernelError + '_ {
        move |source| KernelError::Io {
            what,
            table: self.table,
            source,
        }
    }

    /// Reads one datagram into `inbuf`; its length.
    fn receive(&mut self, what: &'static str) -> Result<usize, KernelError> {
        // SAFETY: `inbuf` is valid for its length.
        let n = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                self.inbuf.as_mut_ptr().cast(),
                self.inbuf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(self.io(what)(std::io::Error::last_os_error()));
        }
        Ok(n as usize)
    }

    /// Every route of protocol [`PROTO`] in the table, both families.
    pub fn dump(&mut self) -> Result<Vec<IpNet>, KernelError> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let mut tries = 0;
            loop {
                tries += 1;
                let start = out.len();
                match self.dump_family(family, &mut out)? {
                    true => break,
                    false if tries < 5 => out.truncate(start),
                    false => {
                        return Err(KernelError::Interrupted {
                            table: self.table,
                            tries,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// One family's dump into `out`; false when it was interrupted.
    fn dump_family(&mut self, family: u8, out: &mut Vec<IpNet>) -> Result<bool, KernelError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.out.clear();
        codec::push_dump(&mut self.out, family, self.table, seq);
        self.socket
            .send(&self.out, 0)
            .map_err(self.io("dump request"))?;
        let mut interrupted = false;
        loop {
            let n = self.receive("dump")?;
            for m in codec::parse(&self.inbuf[..n]) {
                let m = m.map_err(|source| KernelError::Codec {
                    table: self.table,
                    source,
                })?;
                match m {
                    Message::Route {
                        seq: s,
                        route,
                        interrupted: i,
                    } if s == seq => {
                        interrupted |= i;
                        if let Some(r) = route
                            && r.table == self.table
                            && r.proto == PROTO
                        {
                            out.push(r.prefix);
                        }
                    }
                    Message::Done {
                        seq: s,
                        interrupted: i,
                        error,
                    } if s == seq => {
                        // A dump that failed part-way is not an empty
                        // table: reconciling against it would be wrong.
                        if error < 0 {
                            return Err(KernelError::Dump {
                                table: self.table,
                                errno: -error,
                            });
                        }
                        return Ok(!(interrupted || i));
                    }
                    // A table that does not exist yet holds nothing.
                    Message::Answer { seq: s, error } if s == seq => {
                        if error == -libc::ENOENT {
                            return Ok(true);
                        }
                        return Err(KernelError::Dump {
                            table: self.table,
                            errno: -error,
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends `ops` (removals first, so that a prefix moving between
    /// families of changes never collides), in batches; returns the
    /// changes the kernel refused.
    pub fn apply(&mut self, ops: &Ops) -> Result<Refused, KernelError> {
        let mut refused = Vec::new();
        for (change, list) in [(Change::Remove, &ops.remove), (Change::Add, &ops.add)] {
            for batch in codec::batches(list, BATCH_BYTES, self.max_messages) {
                self.send_batch(change, batch, &mut refused)?;
            }
        }
        Ok(refused)
    }

    fn send_batch(
        &mut self,
        change: Change,
        batch: &[IpNet],
        refused: &mut Refused,
    ) -> Result<(), KernelError> {
        let first = self.seq.wrapping_add(1);
        self.out.clear();
        for (i, p) in batch.iter().enumerate() {
            self.seq = self.seq.wrapping_add(1);
            let last = i + 1 == batch.len();
            codec::push_route(&mut self.out, change, p, self.table, self.seq, last);
        }
        let last = self.seq;
        self.socket.send(&self.out, 0).map_err(self.io("send"))?;
        let add = change == Change::Add;
        loop {
            let n = match self.receive("answers") {
                Ok(n) => n,
                Err(KernelError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return Err(KernelError::Unanswered {
                        table: self.table,
                        messages: batch.len(),
                    });
                }
                Err(e) => return Err(e),
            };
            for m in codec::parse(&self.inbuf[..n]) {
                let m = m.map_err(|source| KernelError::Codec {
                    table: self.table,
                    source,
                })?;
                let Message::Answer { seq, error } = m else {
                    continue;
                };
                let i = seq.wrapping_sub(first) as usize;
                if i >= batch.len() {
                    continue;
                }
                if error != 0 {
                    let failure = match -error {
                        libc::EEXIST if add => Failure::Exists,
                        libc::ESRCH | libc::ENOENT if !add => Failure::Missing,
                        errno => Failure::Other(errno),
                    };
                    refused.push((batch[i], add, failure));
                }
                if seq == last {
                    return Ok(());
                }
            }
        }
    }
}

/// Asks for `size` bytes of socket buffer (`force`, else `plain`); returns
/// what the socket has.
fn set_buffer(socket: &Socket, force: libc::c_int, plain: libc::c_int, size: usize) -> usize {
    let value = size as libc::c_int;
    let set = |opt| {
        // SAFETY: a valid socket and an int option.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(force) != 0 {
        set(plain);
    }
    let mut got: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            plain,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // The kernel reports twice what it counts against (its bookkeeping).
    (got.max(0) as usize) / 2
}

/// Removes every route of ours from `table` (`collecte stop --detach`, a
/// table no longer configured): how many there were.
pub fn remove_all(table: u32) -> Result<usize, KernelError> {
    let mut k = KernelTable::open(table)?;
    let remove = router_core::export::normalize(k.dump()?);
    let n = remove.len();
    let refused = k.apply(&Ops {
        add: Vec::new(),
        remove,
    })?;
    let failed: Vec<_> = refused
        .iter()
        .filter(|(_, _, f)| *f != Failure::Missing)
        .collect();
    if let Some((prefix, _, Failure::Other(errno))) = failed.first() {
        return Err(KernelError::Io {
            what: "route removal",
            table,
            source: std::io::Error::other(format!(
                "{prefix}: {}",
                std::io::Error::from_raw_os_error(*errno)
            )),
        });
    }
    Ok(n)
}
