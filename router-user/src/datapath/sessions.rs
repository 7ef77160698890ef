//! PPPoE sessions in the datapath (`SESSIONS`, `SESSION_LINES`; see
//! `router_common::pppoe`): what the session manager writes once a session
//! is up, removes when it ends, and reads back after a restart.
use router_common::pppoe::{Session, SessionKey, SessionLine, line_flags};

use super::Datapath;
use super::error::{DatapathError, map_err};

impl Datapath {
    /// Writes `SESSION_LINES[session.member]`, then `SESSIONS[key]`, so
    /// that a session's frames are taken out of it only once packets to
    /// its member can be put in. Idempotent.
    pub fn put_session(&mut self, key: SessionKey, session: Session) -> Result<(), DatapathError> {
        self.check_session(&key, &session)?;
        let line = SessionLine {
            session_id: key.session_id,
            mru: session.mru,
            flags: line_flags::PRESENT,
            _pad: 0,
        };
        self.session_lines
            .set(session.member, line, 0)
            .map_err(map_err("SESSION_LINES"))?;
        self.sessions
            .insert(key, session, 0)
            .map_err(map_err("SESSIONS"))
    }

    /// Removes `SESSIONS[key]`, then clears `SESSION_LINES` at its member.
    /// An absent session is not an error.
    pub fn remove_session(&mut self, key: &SessionKey) -> Result<(), DatapathError> {
        let session = match self.sessions.get(key, 0) {
            Ok(s) => s,
            Err(aya::maps::MapError::KeyNotFound) => return Ok(()),
            Err(e) => return Err(map_err("SESSIONS")(e)),
        };
        match self.sessions.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err("SESSIONS")(e)),
        }
        if session.member < self.sizing.max_members {
            self.session_lines
                .set(session.member, SessionLine::default(), 0)
                .map_err(map_err("SESSION_LINES"))?;
        }
        Ok(())
    }

    /// Every session in `SESSIONS`, in key order (for reconciling after a
    /// restart).
    pub fn sessions(&self) -> Result<Vec<(SessionKey, Session)>, DatapathError> {
        let mut all = self
            .sessions
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err("SESSIONS"))?;
        all.sort_by_key(|(k, _)| *k);
        Ok(all)
    }

    /// The line of member `slot`'s session in `SESSION_LINES` (whose flags
    /// say whether it holds one).
    pub fn session_line(&self, slot: u32) -> Result<SessionLine, DatapathError> {
        if slot >= self.sizing.max_members {
            return Err(self.slot_error(slot));
        }
        self.session_lines
            .get(&slot, 0)
            .map_err(map_err("SESSION_LINES"))
    }

    fn check_session(&self, key: &SessionKey, session: &Session) -> Result<(), DatapathError> {
        if session.member >= self.sizing.max_members {
            return Err(self.slot_error(session.member));
        }
        if key.session_id == 0 || key.session_id == u16::MAX {
            return Err(DatapathError::SessionId {
                session_id: key.session_id,
            });
        }
        if key.iface == 0 || u32::from(key.iface) >= router_common::MAX_IFACES {
            return Err(DatapathError::IfaceSlot(key.iface.into()));
        }
        Ok(())
    }
}
