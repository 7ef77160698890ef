//! Running the program on one frame with the kernel's test run
//! (`BPF_PROG_TEST_RUN`): the tracer's and the fixture tests' way in.
use aya::programs::{TestRun, TestRunOptions};
use router_common::TraceVerdict;

use super::error::{DatapathError, ETH_HLEN, map_err};
use super::{Datapath, Mode, RunResult};

impl Datapath {
    /// Runs the program once on `frame` as if it arrived on `ingress_ifindex`.
    /// In [`Mode::Forward`] the interface must exist in the caller's network
    /// namespace; in [`Mode::Trace`] it need not, and the verdict is returned
    /// too.
    ///
    /// The kernel's test run takes frames of [`ETH_HLEN`] bytes or more
    /// ([`DatapathError::FrameTooShort`] otherwise, without running), and
    /// gives the program at most PAGE_SIZE − 256 (`XDP_PACKET_HEADROOM`) −
    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` bytes: 3520 with
    /// 4 KiB pages on x86-64. Kernels since 5.18 put the rest of a larger
    /// frame in fragments, which this program (not fragment-aware) never
    /// sees: such a run's verdict is about part of the frame, and is
    /// refused as [`DatapathError::FrameTooLarge`], with the limit measured
    /// from the run itself. Older kernels refuse such a frame outright
    /// ([`DatapathError::TestRun`], EINVAL).
    pub fn run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
    ) -> Result<(RunResult, Option<TraceVerdict>), DatapathError> {
        if frame.len() < ETH_HLEN {
            return Err(DatapathError::FrameTooShort { len: frame.len() });
        }
        if self.mode == Mode::Trace {
            let t = TraceVerdict {
                ingress_ifindex,
                ..TraceVerdict::default()
            };
            self.trace.set(0, t, 0).map_err(map_err("TRACE_VERDICT"))?;
        }
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        if self.mode == Mode::Forward {
            ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        }
        // Room for pushed tags.
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx_out = [0u8; 24];
        let result = self
            .program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ctx_out: Some(&mut ctx_out),
                ..TestRunOptions::default()
            })
            .map_err(DatapathError::TestRun)?;
        // What the program saw and left: the context's data..data_end. The
        // output also holds the fragments the program never saw, which the
        // program did not change: the frame's first `len - fragments` bytes
        // are what the kernel gave it.
        let field = |at: usize| u32::from_ne_bytes(ctx_out[at..at + 4].try_into().unwrap());
        let linear = field(4).saturating_sub(field(0)) as usize;
        let size = result.data_size_out as usize;
        if size > linear {
            return Err(DatapathError::FrameTooLarge {
                len: frame.len(),
                max: frame.len().saturating_sub(size - linear),
            });
        }
        out.truncate(size);
        let verdict = if self.mode == Mode::Trace {
            Some(self.trace.get(&0, 0).map_err(map_err("TRACE_VERDICT"))?)
        } else {
            None
        };
        Ok((
            RunResult {
                action: result.return_value,
                frame: out,
            },
            verdict,
        ))
    }
}
