//! One control protocol's Configure exchange (RFC 1661 4, simplified to
//! what a server needs): our Configure-Request with its restart timer and
//! Max-Configure count, and the answer to the peer's Configure-Request
//! (Ack, Nak or Reject) from a per-option verdict. The protocol is open
//! when both sides have acknowledged.
use std::time::{Duration, Instant};

use super::ppp::{self, Opt};

/// The verdict on one option of the peer's Configure-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ack,
    /// Acceptable with this value instead.
    Nak(Opt),
    /// Not recognised or not negotiable.
    Reject,
}

/// Our side of a control protocol.
#[derive(Clone, Debug)]
pub struct Cp {
    pub protocol: u16,
    /// The options of our Configure-Request.
    pub ours: Vec<Opt>,
    /// The peer acknowledged our request.
    pub ours_acked: bool,
    /// We acknowledged the peer's request.
    pub peer_acked: bool,
    /// Identifier of our last Configure-Request.
    pub id: u8,
    /// When it was sent (None: not sent yet).
    pub sent_at: Option<Instant>,
    /// Requests sent without an acknowledgement.
    pub tries: u32,
}

impl Cp {
    pub fn new(protocol: u16, ours: Vec<Opt>, first_id: u8) -> Cp {
        Cp {
            protocol,
            ours,
            ours_acked: false,
            peer_acked: false,
            id: first_id,
            sent_at: None,
            tries: 0,
        }
    }

    /// Both sides acknowledged.
    pub fn is_open(&self) -> bool {
        self.ours_acked && self.peer_acked
    }

    /// Our Configure-Request (a new identifier), as a session payload.
    pub fn request(&mut self, now: Instant) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        self.sent_at = Some(now);
        self.tries += 1;
        ppp::encode(
            self.protocol,
            ppp::CONFIGURE_REQUEST,
            self.id,
            &ppp::encode_options(&self.ours),
        )
    }

    /// Is our unacknowledged request due for a retransmission?
    pub fn due(&self, now: Instant, restart: Duration) -> bool {
        !self.ours_acked && self.sent_at.is_some_and(|t| now >= t + restart)
    }

    /// A Configure-Ack from the peer: does it acknowledge our last request
    /// (identifier and options)?
    pub fn on_ack(&mut self, id: u8, data: &[u8]) -> bool {
        if id == self.id && data == ppp::encode_options(&self.ours) {
            self.ours_acked = true;
            self.tries = 0;
        }
        self.ours_acked
    }

    /// Is this Nak or Reject an answer to our last request?
    pub fn answers_ours(&self, id: u8) -> bool {
        id == self.id && !self.ours_acked
    }

    /// Answers the peer's Configure-Request `id` with options `opts`:
    /// Reject if any option is rejected, else Nak if any is Nak'ed (and
    /// with the `hints` of options the peer should have asked for), else
    /// Ack. Returns the session payload.
    pub fn answer(
        &mut self,
        id: u8,
        data: &[u8],
        opts: &[Opt],
        mut verdict: impl FnMut(&Opt) -> Verdict,
        hints: &[Opt],
    ) -> Vec<u8> {
        let mut rejected = Vec::new();
        let mut naked = Vec::new();
        for o in opts {
            match verdict(o) {
                Verdict::Ack => {}
                Verdict::Nak(n) => naked.push(n),
                Verdict::Reject => rejected.push(o.clone()),
            }
        }
        self.peer_acked = false;
        if !rejected.is_empty() {
            ppp::encode(
                self.protocol,
                ppp::CONFIGURE_REJECT,
                id,
                &ppp::encode_options(&rejected),
            )
        } else if !naked.is_empty() || !hints.is_empty() {
            naked.extend_from_slice(hints);
            ppp::encode(
                self.protocol,
                ppp::CONFIGURE_NAK,
                id,
                &ppp::encode_options(&naked),
            )
        } else {
            self.peer_acked = true;
            ppp::encode(self.protocol, ppp::CONFIGURE_ACK, id, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_wins_over_nak_and_an_ack_echoes_the_request() {
        let now = Instant::now();
        let mut cp = Cp::new(ppp::IPCP, vec![Opt::new(3, &[10, 0, 0, 1])], 0);
        let req = cp.request(now);
        assert_eq!(req, [0x80, 0x21, 1, 1, 0, 10, 3, 6, 10, 0, 0, 1]);
        assert!(!cp.due(now, Duration::from_secs(3)));
        assert!(cp.due(now + Duration::from_secs(3), Duration::from_secs(3)));
        let opts = [Opt::new(3, &[0; 4]), Opt::new(129, &[0; 4])];
        let data = ppp::encode_options(&opts);
        let ans = cp.answer(
            4,
            &data,
            &opts,
            |o| match o.kind {
                3 => Verdict::Nak(Opt::new(3, &[100, 64, 0, 2])),
                _ => Verdict::Reject,
            },
            &[],
        );
        assert_eq!(ans, [0x80, 0x21, 4, 4, 0, 10, 129, 6, 0, 0, 0, 0]);
        let ans = cp.answer(
            5,
            &data[..6],
            &opts[..1],
            |_| Verdict::Nak(Opt::new(3, &[100, 64, 0, 2])),
            &[],
        );
        assert_eq!(ans, [0x80, 0x21, 3, 5, 0, 10, 3, 6, 100, 64, 0, 2]);
        let good = ppp::encode_options(&[Opt::new(3, &[100, 64, 0, 2])]);
        let ans = cp.answer(6, &good, &[], |_| Verdict::Ack, &[]);
        assert_eq!(ans[2], ppp::CONFIGURE_ACK);
        assert_eq!(&ans[6..], &good[..]);
        assert!(cp.peer_acked && !cp.is_open());
        assert!(!cp.on_ack(9, &[3, 6, 10, 0, 0, 1]), "wrong identifier");
        assert!(cp.on_ack(1, &[3, 6, 10, 0, 0, 1]));
        assert!(cp.is_open());
    }
}
