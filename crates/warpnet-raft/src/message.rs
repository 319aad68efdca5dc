//! Raft messages between members: raft-rs's message in the project's canonical encoding (not
//! protobuf: one strict encoding with a limit on every field, checked before allocating), and
//! the checks a message passes before it reaches raft-rs (RF10).

use raft::eraftpb::{
    ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use warpnet_types::codec::{CodecError, Reader, Writer};
use warpnet_types::config::COMMITTEE_SIZE_MAX;
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::NodeId;

use crate::error::RaftError;
use crate::types::{node_of, raft_id};

/// Entries in one message, at most.
pub const MESSAGE_ENTRIES_MAX: usize = 1 << 16;
/// Largest snapshot a message carries: what the transport reassembles from pieces at most
/// (`RAFT_PIECES_MAX` pieces of `RAFT_PIECE_BYTES_MAX`). Every other field stays within one
/// frame's limit.
pub const SNAPSHOT_BYTES_MAX: usize =
    warpnet_types::message::RAFT_PIECES_MAX as usize * warpnet_types::message::RAFT_PIECE_BYTES_MAX;

/// One message from one member to another.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftMessage(pub(crate) Message);

impl RaftMessage {
    /// The member it is for.
    pub fn to(&self) -> Option<NodeId> {
        node_of(self.0.to)
    }

    /// The member it claims to come from (checked against the connection by `RF10`).
    pub fn from(&self) -> Option<NodeId> {
        node_of(self.0.from)
    }

    pub fn term(&self) -> u64 {
        self.0.term
    }

    /// The message's kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        kind_name(self.0.get_msg_type())
    }

    /// How many log entries it carries (an append's).
    pub fn entry_count(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether it carries a snapshot (large: the transport may treat it apart).
    /// How many log entries it carries.
    pub fn entries(&self) -> usize {
        self.0.entries.len()
    }

    pub fn is_snapshot(&self) -> bool {
        self.0.get_msg_type() == MessageType::MsgSnapshot
    }

    pub fn encode(&self) -> Vec<u8> {
        let m = &self.0;
        let mut w =
            Writer::with_capacity(96 + m.entries.iter().map(|e| e.data.len() + 48).sum::<usize>());
        w.u8(m.get_msg_type() as u8).u64(m.to).u64(m.from).u64(m.term).u64(m.log_term).u64(m.index);
        w.len(m.entries.len());
        for e in m.entries.iter() {
            encode_entry(&mut w, e);
        }
        w.u64(m.commit).u64(m.commit_term);
        if let Some(s) = m
            .snapshot
            .as_ref()
            .filter(|s| !s.get_metadata().eq(&SnapshotMetadata::default()) || !s.data.is_empty())
        {
            w.u8(1);
            encode_snapshot(&mut w, s);
        } else {
            w.u8(0);
        }
        w.u64(m.request_snapshot)
            .bool(m.reject)
            .u64(m.reject_hint)
            .bytes(&m.context)
            .u64(m.priority as u64);
        w.finish()
    }

    /// Decodes strictly; every length is bounded before allocation.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let mut m = Message::default();
        let t = r.u8("raft message type")?;
        m.set_msg_type(
            msg_type(t).ok_or(CodecError::InvalidTag { what: "raft message type", tag: t })?,
        );
        m.to = r.u64("to")?;
        m.from = r.u64("from")?;
        m.term = r.u64("term")?;
        m.log_term = r.u64("log term")?;
        m.index = r.u64("index")?;
        m.set_entries(r.list("entries", MESSAGE_ENTRIES_MAX, decode_entry)?.into());
        m.commit = r.u64("commit")?;
        m.commit_term = r.u64("commit term")?;
        match r.u8("snapshot tag")? {
            0 => {}
            1 => m.set_snapshot(decode_snapshot(&mut r)?),
            tag => return Err(CodecError::InvalidTag { what: "snapshot tag", tag }),
        }
        m.request_snapshot = r.u64("request snapshot")?;
        m.reject = r.bool("reject")?;
        m.reject_hint = r.u64("reject hint")?;
        m.context = r.bytes("context", MESSAGE_BYTES_MAX)?.to_vec().into();
        m.priority = r.u64("priority")? as i64;
        r.finish()?;
        Ok(Self(m))
    }
}

fn encode_entry(w: &mut Writer, e: &Entry) {
    w.u8(e.get_entry_type() as u8)
        .u64(e.term)
        .u64(e.index)
        .bytes(&e.data)
        .bytes(&e.context)
        .bool(e.sync_log);
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, CodecError> {
    let mut e = Entry::default();
    let t = r.u8("entry type")?;
    e.set_entry_type(match t {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        tag => return Err(CodecError::InvalidTag { what: "entry type", tag }),
    });
    e.term = r.u64("entry term")?;
    e.index = r.u64("entry index")?;
    e.data = r.bytes("entry data", MESSAGE_BYTES_MAX)?.to_vec().into();
    e.context = r.bytes("entry context", MESSAGE_BYTES_MAX)?.to_vec().into();
    e.sync_log = r.bool("sync log")?;
    Ok(e)
}

fn encode_ids(w: &mut Writer, ids: &[u64]) {
    w.len(ids.len());
    for id in ids {
        w.u64(*id);
    }
}

fn decode_ids(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u64>, CodecError> {
    r.list(what, COMMITTEE_SIZE_MAX, |r| r.u64(what))
}

fn encode_snapshot(w: &mut Writer, s: &Snapshot) {
    let md = s.get_metadata();
    let cs = md.get_conf_state();
    w.u64(md.index).u64(md.term);
    encode_ids(w, &cs.voters);
    encode_ids(w, &cs.learners);
    encode_ids(w, &cs.voters_outgoing);
    encode_ids(w, &cs.learners_next);
    w.bool(cs.auto_leave).bytes(&s.data);
}

fn decode_snapshot(r: &mut Reader<'_>) -> Result<Snapshot, CodecError> {
    let mut md = SnapshotMetadata::default();
    md.index = r.u64("snapshot index")?;
    md.term = r.u64("snapshot term")?;
    let mut cs = ConfState::default();
    cs.voters = decode_ids(r, "voters")?;
    cs.learners = decode_ids(r, "learners")?;
    cs.voters_outgoing = decode_ids(r, "outgoing voters")?;
    cs.learners_next = decode_ids(r, "next learners")?;
    cs.auto_leave = r.bool("auto leave")?;
    md.set_conf_state(cs);
    let mut s = Snapshot::default();
    s.set_metadata(md);
    s.data = r.bytes("snapshot data", SNAPSHOT_BYTES_MAX)?.to_vec().into();
    Ok(s)
}

fn msg_type(t: u8) -> Option<MessageType> {
    use MessageType::*;
    Some(match t {
        0 => MsgHup,
        1 => MsgBeat,
        2 => MsgPropose,
        3 => MsgAppend,
        4 => MsgAppendResponse,
        5 => MsgRequestVote,
        6 => MsgRequestVoteResponse,
        7 => MsgSnapshot,
        8 => MsgHeartbeat,
        9 => MsgHeartbeatResponse,
        10 => MsgUnreachable,
        11 => MsgSnapStatus,
        12 => MsgCheckQuorum,
        13 => MsgTransferLeader,
        14 => MsgTimeoutNow,
        15 => MsgReadIndex,
        16 => MsgReadIndexResp,
        17 => MsgRequestPreVote,
        18 => MsgRequestPreVoteResponse,
        _ => return None,
    })
}

pub(crate) fn kind_name(t: MessageType) -> &'static str {
    use MessageType::*;
    match t {
        MsgHup => "hup",
        MsgBeat => "beat",
        MsgPropose => "propose",
        MsgAppend => "append",
        MsgAppendResponse => "append_response",
        MsgRequestVote => "vote",
        MsgRequestVoteResponse => "vote_response",
        MsgSnapshot => "snapshot",
        MsgHeartbeat => "heartbeat",
        MsgHeartbeatResponse => "heartbeat_response",
        MsgUnreachable => "unreachable",
        MsgSnapStatus => "snap_status",
        MsgCheckQuorum => "check_quorum",
        MsgTransferLeader => "transfer_leader",
        MsgTimeoutNow => "timeout_now",
        MsgReadIndex => "read_index",
        MsgReadIndexResp => "read_index_response",
        MsgRequestPreVote => "pre_vote",
        MsgRequestPreVoteResponse => "pre_vote_response",
    }
}

/// RF10: a message reaches raft-rs only if it comes from the member whose connection carried
/// it, is addressed to us, is of a kind peers may send, and (for a forwarded proposal) holds
/// only non-empty commands within the limit: membership changes are the leader's own (RF4),
/// and leadership moves only to a public member by the local operator (RF1).
pub(crate) fn check(
    m: &Message,
    sender: NodeId,
    me: NodeId,
    me_public: bool,
    command_bytes_max: usize,
) -> Result<(), RaftError> {
    if m.from != raft_id(sender) {
        return Err(RaftError::WrongSender { sender, claimed: m.from });
    }
    if m.to != raft_id(me) {
        return Err(RaftError::WrongRecipient { me, to: m.to });
    }
    use MessageType::*;
    let t = m.get_msg_type();
    match t {
        MsgHup | MsgBeat | MsgUnreachable | MsgSnapStatus | MsgCheckQuorum | MsgTransferLeader => {
            return Err(RaftError::ForbiddenKind { kind: kind_name(t) });
        }
        // RF1: a member that is not public never campaigns, not even when told to.
        MsgTimeoutNow if !me_public => return Err(RaftError::NotPublic { id: me }),
        MsgPropose => {
            for e in m.entries.iter() {
                if e.get_entry_type() != EntryType::EntryNormal {
                    return Err(RaftError::ForbiddenKind { kind: "forwarded membership change" });
                }
                if e.data.is_empty() {
                    return Err(RaftError::EmptyCommand);
                }
                if e.data.len() > command_bytes_max {
                    return Err(RaftError::CommandTooLarge {
                        len: e.data.len(),
                        max: command_bytes_max,
                    });
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_trailing_bytes_are_refused() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 5;
        let mut e = Entry::default();
        e.index = 9;
        e.term = 5;
        e.data = b"cmd".to_vec().into();
        m.set_entries(vec![e].into());
        let mut s = Snapshot::default();
        s.mut_metadata().index = 4;
        s.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        s.data = b"state".to_vec().into();
        m.set_snapshot(s);
        let msg = RaftMessage(m);
        let bytes = msg.encode();
        assert_eq!(RaftMessage::decode(&bytes), Ok(msg));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RaftMessage::decode(&longer).is_err());
        assert!(RaftMessage::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes;
        bad[0] = 99;
        assert!(matches!(RaftMessage::decode(&bad), Err(CodecError::InvalidTag { .. })));
    }
}
