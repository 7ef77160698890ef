//! Reading a JSON object that holds a member list, `{"members": [...]}`,
//! as it arrives: a full-sync request body, or the state file.
//!
//! A million members make more than 100 MB of JSON. [`MembersReader`] takes
//! the text in pieces of any size, parses each member as soon as its last
//! byte is in, checks its fields and stores it compactly in a
//! [`MemberStore`] batch: the text itself is never held whole, and the
//! members are read while the rest is still on its way.
//!
//! Only the object's outer structure is scanned here (keys, and where each
//! member starts and ends); each member is parsed by serde_json. Keys other
//! than `members` are handed to the caller with their raw value.
use std::borrow::Cow;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};
use smallvec::SmallVec;

use super::{MemberStore, StoreError};
use crate::member::{MacAddr, MemberError, MemberIn, Origin, parse_prefix};

/// Why a member list cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or not an object of the expected shape.
    #[error("malformed JSON: {0}")]
    Syntax(String),
    /// A value of the wrong type or form, or an unknown field. `field` is
    /// its path, such as `members[3].c_vlan` or `extra`.
    #[error("{field}: {message}")]
    Field {
        field: String,
        message: String,
        /// The id of the member at fault, when it has one.
        member: Option<String>,
    },
    /// A member that parses but breaks a rule.
    #[error(transparent)]
    Invalid(#[from] MemberError),
}

/// What to do with the object's other keys: `Ok` to accept the raw JSON
/// value, or the error that refuses the whole text.
pub type OtherKey<'a> = dyn FnMut(&str, &[u8]) -> Result<(), ReadError> + 'a;

/// Where the member list's text goes as it is read (see [`MembersReader::tee`]).
pub type Tee<'a> = dyn FnMut(&[u8]) + 'a;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the opening brace.
    Start,
    /// Before a key, or the closing brace if `first`.
    Key { first: bool },
    /// Inside a key's quotes.
    InKey,
    /// After a key: before its colon.
    Colon,
    /// After the colon: before the value.
    Value,
    /// Inside a value (of another key, or a member).
    InValue,
    /// After a key's value: before `,` or `}`.
    AfterValue,
    /// Inside the member list: before a member, or `]` if `first`.
    Member { first: bool },
    /// After a member: before `,` or `]`.
    AfterMember,
    /// After the closing brace: only whitespace may follow.
    End,
}

/// Where a value being read ends.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Open braces and brackets.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// A number, `true`, `false` or `null`: it ends before a delimiter.
    scalar: bool,
    /// The value is a member (else another key's value).
    member: bool,
}

/// Reads `{"members": [MEMBER, ...], ...}` piece by piece, looking at each
/// byte once. See the [module documentation](self).
pub struct MembersReader<'a> {
    state: State,
    scan: Scan,
    /// The key or value being read, when it spans pieces.
    pending: Vec<u8>,
    /// The key whose value is being read.
    key: String,
    /// Offset of the current piece in the text.
    base: usize,
    seen_members: bool,
    batch: MemberStore,
    origin: Origin,
    other: Box<OtherKey<'a>>,
    /// Gets the text of the member list as it is read.
    tee: Option<Box<Tee<'a>>>,
}

impl<'a> MembersReader<'a> {
    /// A reader storing members of `origin`, about `expected` of them;
    /// `other` judges keys other than `members`.
    pub fn new(
        origin: Origin,
        expected: usize,
        other: impl FnMut(&str, &[u8]) -> Result<(), ReadError> + 'a,
    ) -> Self {
        MembersReader {
            state: State::Start,
            scan: Scan::default(),
            pending: Vec::new(),
            key: String::new(),
            base: 0,
            seen_members: false,
            batch: MemberStore::with_capacity(expected),
            origin,
            other: Box::new(other),
            tee: None,
        }
    }

    /// Hands `tee` the text of the member list, `[` to `]`, piece by piece
    /// as it is read: a JSON array of the members read, exactly as sent.
    pub fn tee(mut self, tee: impl FnMut(&[u8]) + 'a) -> Self {
        self.tee = Some(Box::new(tee));
        self
    }

    /// Inside the member list.
    fn in_list(&self) -> bool {
        match self.state {
            State::Member { .. } | State::AfterMember => true,
            State::InValue => self.scan.member,
            _ => false,
        }
    }

    /// Members read so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The text is complete: the members, or why the text is refused.
    pub fn finish(mut self) -> Result<MemberStore, ReadError> {
        if self.state == State::InValue && self.scan.scalar {
            // Only inside the object, where a delimiter must follow.
            self.feed(b" ")?;
        }
        if self.state != State::End {
            return Err(ReadError::Syntax(format!(
                "EOF while parsing an object at byte {}",
                self.base
            )));
        }
        if !self.seen_members {
            return Err(ReadError::Field {
                field: ".".into(),
                message: "missing field `members`".into(),
                member: None,
            });
        }
        Ok(self.batch)
    }

    fn syntax(&self, at: usize, what: &str, found: u8) -> ReadError {
        ReadError::Syntax(format!(
            "expected {what} at byte {}, found {:?}",
            self.base + at,
            char::from(found)
        ))
    }

    /// Takes the next piece of the text.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), ReadError> {
        let mut at = 0;
        // Where the key or value being read started in this piece.
        let mut start = 0;
        // Where the part of the member list in this piece starts.
        let mut list_from = self.in_list().then_some(0);
        while at < piece.len() {
            let c = piece[at];
            match self.state {
                State::InKey => {
                    match (self.scan.escaped, c) {
                        (true, _) => self.scan.escaped = false,
                        (false, b'\\') => self.scan.escaped = true,
                        (false, b'"') => {
                            self.end_key(&piece[start..=at])?;
                            self.state = State::Colon;
                        }
                        _ => {}
                    }
                    at += 1;
                    continue;
                }
                State::InValue => {
                    if self.scan_value(c) {
                        // A scalar ends before its delimiter, the others
                        // with their last byte.
                        let end = if self.scan.scalar { at } else { at + 1 };
                        self.end_value(&piece[start..end])?;
                        at = end;
                    } else {
                        at += 1;
                    }
                    continue;
                }
                _ => {}
            }
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                at += 1;
                continue;
            }
            match self.state {
                State::Start => {
                    if c != b'{' {
                        return Err(self.syntax(at, "an object", c));
                    }
                    self.state = State::Key { first: true };
                }
                State::Key { first } => {
                    if first && c == b'}' {
                        self.state = State::End;
                    } else if c == b'"' {
                        start = at;
                        self.scan = Scan::default();
                        self.state = State::InKey;
                    } else {
                        return Err(self.syntax(at, "a key", c));
                    }
                }
                State::Colon => {
                    if c != b':' {
                        return Err(self.syntax(at, "':'", c));
                    }
                    self.state = State::Value;
                }
                State::Value => {
                    if self.key == "members" {
                        if self.seen_members {
                            return Err(ReadError::Field {
                                field: "members".into(),
                                message: "duplicate field `members`".into(),
                                member: None,
                            });
                        }
                        if c != b'[' {
                            return Err(ReadError::Field {
                                field: "members".into(),
                                message: "invalid type: expected a list of members".into(),
                                member: None,
                            });
                        }
                        self.seen_members = true;
                        self.state = State::Member { first: true };
                        list_from = Some(at);
                    } else {
                        start = at;
                        self.begin_value(c, false);
                        continue;
                    }
                }
                State::AfterValue => match c {
                    b',' => self.state = State::Key { first: false },
                    b'}' => self.state = State::End,
                    _ => return Err(self.syntax(at, "',' or '}'", c)),
                },
                State::Member { first } => {
                    if first && c == b']' {
                        self.state = State::AfterValue;
                        self.tee_out(piece, &mut list_from, at + 1);
                    } else {
                        // Most members lie whole in the piece: parse them in
                        // place, and let serde_json say where they end.
                        if let Some(end) = self.member_in_place(&piece[at..])? {
                            self.state = State::AfterMember;
                            at += end;
                            continue;
                        }
                        // This one goes on in the next piece.
                        start = at;
                        self.begin_value(c, true);
                        continue;
                    }
                }
                State::AfterMember => match c {
                    b',' => self.state = State::Member { first: false },
                    b']' => {
                        self.state = State::AfterValue;
                        self.tee_out(piece, &mut list_from, at + 1);
                    }
                    _ => return Err(self.syntax(at, "',' or ']'", c)),
                },
                State::End => return Err(self.syntax(at, "the end of the text", c)),
                State::InKey | State::InValue => unreachable!("handled above"),
            }
            at += 1;
        }
        self.tee_out(piece, &mut list_from, piece.len());
        // Keep the part of a key or value that goes on in the next piece.
        if matches!(self.state, State::InKey | State::InValue) {
            self.pending.extend_from_slice(&piece[start..]);
        }
        self.base += piece.len();
        Ok(())
    }

    /// Hands the tee the member list's text from `*from` to `end`.
    fn tee_out(&mut self, piece: &[u8], from: &mut Option<usize>, end: usize) {
        if let (Some(f), Some(tee)) = (from.take(), self.tee.as_mut())
            && f < end
        {
            tee(&piece[f..end]);
        }
    }

    /// Starts reading a value whose first byte is `c` (not consumed yet).
    fn begin_value(&mut self, c: u8, member: bool) {
        self.scan = Scan {
            member,
            scalar: !matches!(c, b'{' | b'[' | b'"'),
            ..Scan::default()
        };
        self.state = State::InValue;
    }

    /// Scans byte `c` of a value; true when the value ends there (a scalar:
    /// just before it).
    fn scan_value(&mut self, c: u8) -> bool {
        let s = &mut self.scan;
        if s.scalar {
            return matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t');
        }
        if s.in_string {
            match (s.escaped, c) {
                (true, _) => s.escaped = false,
                (false, b'\\') => s.escaped = true,
                (false, b'"') => {
                    s.in_string = false;
                    return s.depth == 0;
                }
                _ => {}
            }
            return false;
        }
        match c {
            b'"' => s.in_string = true,
            b'{' | b'[' => s.depth += 1,
            b'}' | b']' => {
                // A mismatched closer is serde_json's to report.
                s.depth = s.depth.saturating_sub(1);
                return s.depth == 0;
            }
            _ => {}
        }
        false
    }

    /// A key is in: `tail` is its last part (all of it unless it spanned
    /// pieces).
    fn end_key(&mut self, tail: &[u8]) -> Result<(), ReadError> {
        let key = if self.pending.is_empty() {
            serde_json::from_slice::<Cow<str>>(tail)
        } else {
            self.pending.extend_from_slice(tail);
            serde_json::from_slice::<Cow<str>>(&self.pending)
        };
        let key = key.map_err(|e| ReadError::Syntax(e.to_string()))?;
        self.key = key.into_owned();
        self.pending.clear();
        Ok(())
    }

    /// A value is in: `tail` is its last part.
    fn end_value(&mut self, tail: &[u8]) -> Result<(), ReadError> {
        let mut pending = std::mem::take(&mut self.pending);
        let text: &[u8] = if pending.is_empty() {
            tail
        } else {
            pending.extend_from_slice(tail);
            &pending
        };
        let r = if self.scan.member {
            self.state = State::AfterMember;
            self.member(text)
        } else {
            self.state = State::AfterValue;
            let key = std::mem::take(&mut self.key);
            (self.other)(&key, text)
        };
        pending.clear();
        self.pending = pending;
        r
    }

    /// Parses, checks and stores the member at the start of `text`, if it
    /// is all there: returns where it ends.
    fn member_in_place(&mut self, text: &[u8]) -> Result<Option<usize>, ReadError> {
        let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<MemberDe>();
        match stream.next() {
            Some(Ok(m)) => {
                let end = stream.byte_offset();
                self.store(m)?;
                Ok(Some(end))
            }
            None => Ok(None),
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => Err(element_error(self.batch.len(), text, e)),
        }
    }

    /// Parses, checks and stores one member whose text is `text`.
    fn member(&mut self, text: &[u8]) -> Result<(), ReadError> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let m = MemberDe::deserialize(&mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| element_error(self.batch.len(), text, e))?;
        self.store(m)
    }

    /// Checks and stores one parsed member.
    fn store(&mut self, m: MemberDe<'_>) -> Result<(), ReadError> {
        let index = self.batch.len();
        let m = m.as_in();
        m.validate_fields()?;
        match self.batch.push(m, self.origin) {
            Ok(_) => Ok(()),
            Err(StoreError::Duplicate(id)) => Err(MemberError::DuplicateId { member: id }.into()),
            Err(e) => Err(ReadError::Field {
                field: format!("members[{index}]"),
                message: e.to_string(),
                member: Some(m.id.to_owned()),
            }),
        }
    }
}

/// Why member `index` (whose text is `text`) does not parse: the path of
/// the field at fault, and the member's id if it can be read.
fn element_error(index: usize, text: &[u8], e: serde_json::Error) -> ReadError {
    if e.is_syntax() || e.is_eof() {
        return ReadError::Syntax(e.to_string());
    }
    // Again, to learn the path.
    let mut de = serde_json::Deserializer::from_slice(text);
    let (path, message) = match serde_path_to_error::deserialize::<_, MemberDe>(&mut de) {
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
        Ok(_) => (".".to_owned(), e.to_string()),
    };
    let field = if path == "." || path.is_empty() {
        format!("members[{index}]")
    } else {
        format!("members[{index}].{path}")
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let member = serde_json::Value::deserialize(&mut de)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned));
    ReadError::Field {
        field,
        message,
        member,
    }
}

/// A member as read from JSON, borrowing its strings from the text where
/// it can: the same fields, defaults and errors as
/// [`Member`](crate::member::Member).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberDe<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    interface: Cow<'a, str>,
    #[serde(default)]
    s_vlan: Option<u16>,
    #[serde(default)]
    c_vlan: Option<u16>,
    #[serde(default)]
    mac: Option<MacAddr>,
    #[serde(default, deserialize_with = "prefixes")]
    prefixes: SmallVec<[IpNet; 4]>,
}

impl MemberDe<'_> {
    fn as_in(&self) -> MemberIn<'_> {
        MemberIn {
            id: &self.id,
            interface: &self.interface,
            s_vlan: self.s_vlan,
            c_vlan: self.c_vlan,
            mac: self.mac,
            prefixes: &self.prefixes,
        }
    }
}

/// A list of "address/length" strings, without allocating for the usual
/// few.
fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<SmallVec<[IpNet; 4]>, D::Error> {
    struct List;
    impl<'de> de::Visitor<'de> for List {
        type Value = SmallVec<[IpNet; 4]>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = SmallVec::new();
            while let Some(Text(s)) = seq.next_element()? {
                out.push(parse_prefix(&s).map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(List)
}

/// A string, borrowed from the text unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_pieces(text: &[u8], piece: usize) -> Result<MemberStore, ReadError> {
        let mut r = MembersReader::new(Origin::Api, 0, |key, _| {
            Err(ReadError::Field {
                field: key.into(),
                message: format!("unknown field `{key}`, expected `members`"),
                member: None,
            })
        });
        for p in text.chunks(piece.max(1)) {
            r.feed(p)?;
        }
        r.finish()
    }

    const GOOD: &str = r#" { "members" : [
        {"id":"a","interface":"acc0","prefixes":["198.51.100.8/29","2001:db8:1::/48"]},
        {"id":"b\u0062","interface":"acc0","c_vlan":7,"mac":"02:00:00:00:00:01","prefixes":["198.51.100.1/32"]} ,
        {"prefixes":["198.51.100.2/32"],"id":"c","interface":"acc1","s_vlan":10,"c_vlan":11}
    ] } "#;

    #[test]
    fn any_piece_size_gives_the_same_members() {
        for piece in [1, 2, 3, 5, 7, 16, 64, 1 << 20] {
            let s = read_in_pieces(GOOD.as_bytes(), piece).unwrap();
            assert_eq!(s.len(), 3, "piece {piece}");
            let b = s.get(s.number("bb").unwrap()).unwrap();
            assert_eq!(b.c_vlan(), Some(7));
            assert_eq!(b.mac(), Some(MacAddr([2, 0, 0, 0, 0, 1])));
            let c = s.get(2).unwrap();
            assert_eq!((c.id(), c.interface(), c.tags()), ("c", "acc1", (10, 11)));
            assert_eq!(s.get(0).unwrap().prefixes().count(), 2);
        }
        let empty = read_in_pieces(br#"{"members":[]}"#, 3).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn errors_name_the_field_and_member() {
        let field = |text: &str| {
            [1, 4, 1000]
                .map(|piece| match read_in_pieces(text.as_bytes(), piece) {
                    Err(ReadError::Field { field, member, .. }) => (field, member),
                    other => panic!("{text}: {other:?}"),
                })
                .into_iter()
                .reduce(|a, b| {
                    assert_eq!(a, b);
                    a
                })
                .unwrap()
        };
        assert_eq!(
            field(
                r#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/32"]},{"id":"b","interface":"acc0","c_vlan":true}]}"#
            ),
            ("members[1].c_vlan".into(), Some("b".into()))
        );
        assert_eq!(
            field(r#"{"members":[{"id":"a","interface":"acc0","x":1}]}"#),
            ("members[0].x".into(), Some("a".into()))
        );
        assert_eq!(
            field(r#"{"members":[{"interface":"acc0","prefixes":["198.51.100.1/32"]}]}"#),
            ("members[0]".into(), None)
        );
        assert_eq!(
            field(r#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/33"]}]}"#),
            ("members[0].prefixes".into(), Some("a".into()))
        );
        assert_eq!(field(r#"{"members":[],"extra":1}"#), ("extra".into(), None));
        assert_eq!(
            field(r#"{"extra":{"a":[1,"]"]},"members":[]}"#),
            ("extra".into(), None)
        );
        assert_eq!(field(r#"{}"#), (".".into(), None));
        assert_eq!(field(r#"{"members":{}}"#), ("members".into(), None));
        assert_eq!(
            field(r#"{"members":[],"members":[]}"#),
            ("members".into(), None)
        );
    }

    #[test]
    fn malformed_text_is_a_syntax_error() {
        for text in [
            "",
            "[]",
            r#"{"members":[}"#,
            r#"{"members":[]} x"#,
            r#"{"members":[] "#,
            r#"{"members" []}"#,
            r#"{"members":[{"id":"a",}]}"#,
            r#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/32"]} {"id":"b"}]}"#,
            r#"{"members":[]},"#,
            r#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/32"]}"#,
        ] {
            for piece in [1, 3, 1000] {
                let r = read_in_pieces(text.as_bytes(), piece);
                assert!(
                    matches!(r, Err(ReadError::Syntax(_))),
                    "{text:?} ({piece}): {r:?}"
                );
            }
        }
    }

    #[test]
    fn members_are_checked_as_they_come() {
        let r = read_in_pieces(
            br#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/32"]},{"id":"a","interface":"acc0","prefixes":["198.51.100.2/32"]}]}"#,
            5,
        );
        assert!(
            matches!(r, Err(ReadError::Invalid(MemberError::DuplicateId { ref member })) if member == "a"),
            "{r:?}"
        );
        let r = read_in_pieces(
            br#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/30"]}]}"#,
            5,
        );
        assert!(
            matches!(r, Err(ReadError::Invalid(MemberError::BadPrefix { .. }))),
            "{r:?}"
        );
        let r = read_in_pieces(br#"{"members":[{"id":"a","interface":"acc0"}]}"#, 5);
        assert!(
            matches!(r, Err(ReadError::Invalid(MemberError::NoPrefixes { .. }))),
            "{r:?}"
        );
    }

    #[test]
    fn the_tee_gets_the_member_list_as_sent() {
        for piece in [1, 2, 5, 64, 1 << 20] {
            let mut list = Vec::new();
            let mut r = MembersReader::new(Origin::Api, 0, |_, _| Ok(()))
                .tee(|b| list.extend_from_slice(b));
            for p in GOOD.as_bytes().chunks(piece) {
                r.feed(p).unwrap();
            }
            assert_eq!(r.finish().unwrap().len(), 3);
            let start = GOOD.find('[').unwrap();
            let end = GOOD.rfind(']').unwrap();
            assert_eq!(
                std::str::from_utf8(&list).unwrap(),
                &GOOD[start..=end],
                "piece {piece}"
            );
        }
        let mut list = Vec::new();
        let mut r =
            MembersReader::new(Origin::Api, 0, |_, _| Ok(())).tee(|b| list.extend_from_slice(b));
        r.feed(br#"{"x":[1],"members" : [ ] }"#).unwrap();
        r.finish().unwrap();
        assert_eq!(list, b"[ ]");
    }

    #[test]
    fn other_keys_go_to_the_caller() {
        let mut seen = Vec::new();
        let mut r = MembersReader::new(Origin::Api, 0, |k, v| {
            seen.push((k.to_owned(), String::from_utf8(v.to_vec()).unwrap()));
            Ok(())
        });
        let text = br#"{"format":"collecte-state","version":1,"revision":42,"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.1/32"]}],"z":null}"#;
        for p in text.chunks(4) {
            r.feed(p).unwrap();
        }
        assert_eq!(r.finish().unwrap().len(), 1);
        assert_eq!(
            seen,
            vec![
                ("format".into(), "\"collecte-state\"".into()),
                ("version".into(), "1".into()),
                ("revision".into(), "42".into()),
                ("z".into(), "null".into()),
            ]
        );
    }
}
