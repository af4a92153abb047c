//! Replays the saved fuzz corpus (`fuzz/corpus/`) through the same decoders the `cargo fuzz`
//! targets exercise, in the normal test suite: every input decodes or is refused with a clear
//! `denied` error, and none panics. Inputs named `bad-*` must be refused.

use dsh::error::ErrorKind;
use dsh::node::PeerRequest;
use dsh::proto::{decode, decode_frame, encode, Envelope, Faults, KeyValue, LogCommand, Op, ProcessAction, Request};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(CORPUS).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|f| (f.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&f).unwrap()))
        .collect()
}

/// Runs both decoders on one input: a panic fails the test naming the input, and every refusal
/// must be `denied` with a message. Returns how many of the two accepted it.
fn replay(name: &str, decoders: impl Fn() -> [Result<(), dsh::Error>; 2]) -> usize {
    let results = catch_unwind(AssertUnwindSafe(decoders)).unwrap_or_else(|_| panic!("{name} made a decoder panic"));
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.kind, ErrorKind::Denied, "{name}: {e}");
        assert!(!e.message.is_empty(), "{name}: a refusal says why");
    }
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    if name.starts_with("bad-") {
        assert_eq!(accepted, 0, "{name} is malformed yet decoded");
    }
    accepted
}

#[test]
fn every_saved_frame_decodes_or_is_denied() {
    let inputs = inputs("frame");
    assert!(inputs.len() >= 10, "the frame corpus is there");
    let mut accepted = 0;
    for (name, data) in &inputs {
        accepted += replay(name, || {
            [decode_frame::<Envelope>(data).map(|_| ()), decode_frame::<PeerRequest>(data).map(|_| ())]
        });
    }
    assert!(accepted > 0, "some saved frames are well formed");
}

#[test]
fn every_saved_request_body_decodes_or_is_denied() {
    let inputs = inputs("request");
    assert!(inputs.len() >= 10, "the request corpus is there");
    let mut accepted = 0;
    for (name, data) in &inputs {
        accepted += replay(name, || [decode::<Envelope>(data).map(|_| ()), decode::<PeerRequest>(data).map(|_| ())]);
    }
    assert!(accepted > 0, "some saved requests are well formed");
}

fn env(request: Request) -> Envelope {
    Envelope::new(5000, request)
}

/// The seeds: one of each kind of request a node reads, and a few broken frames.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), 41);
    let vote = openraft::Vote::new_committed(3, 1);
    let entry = |ops: Vec<Op>| openraft::Entry {
        log_id,
        payload: openraft::EntryPayload::Normal(LogCommand { at_ms: 1, ops: ops.into() }),
    };
    let append = PeerRequest::Append(openraft::raft::AppendEntriesRequest {
        vote,
        prev_log_id: Some(log_id),
        leader_commit: Some(log_id),
        entries: vec![entry(vec![Op::Put { key: "k".into(), value: "v".into() }, Op::Tick])],
    });
    let heartbeat = PeerRequest::Append(openraft::raft::AppendEntriesRequest {
        vote,
        prev_log_id: None,
        leader_commit: None,
        entries: vec![],
    });
    let peer_vote = PeerRequest::Vote(openraft::raft::VoteRequest::new(openraft::Vote::new(4, 2), Some(log_id)));
    let requests = [
        ("put", Request::Put { key: "k".into(), value: "v".into() }),
        ("get", Request::Get { key: "k".into(), stale: false }),
        ("cas", Request::Cas { key: "k".into(), expected: Some("v".into()), new: "w".into() }),
        ("scan", Request::Scan { prefix: "k".into(), limit: 10, stale: true }),
        ("faults", Request::SetFaults(Faults { cut: vec![2], slow: vec![] })),
        (
            "repair",
            Request::Repair {
                set: vec![KeyValue { key: "k".into(), value: "v".into(), revision: 3 }],
                remove: vec![],
                revision: 3,
            },
        ),
        ("process", Request::Process(ProcessAction::Crash)),
        ("chat", Request::ChatSend { id: 9, from: "ann".into(), text: "hi".into() }),
        (
            "lock",
            Request::LockAcquire {
                name: "l".into(),
                owner: "o".into(),
                shared: false,
                ttl_ms: 1000,
                wait_ms: 0,
                queue: false,
            },
        ),
        ("queue", Request::QueuePush { queue: "q".into(), item: "i".into() }),
        ("leaves", Request::LeafKeys { leaves: vec![1, 200] }),
    ];
    let body = |frame: Vec<u8>| frame[4..].to_vec();
    let mut out = Vec::new();
    for (name, req) in &requests {
        let frame = encode(&env(req.clone())).unwrap();
        out.push((*name, body(frame.clone())));
        out.push((*name, frame));
    }
    for (name, req) in [("append", append), ("heartbeat", heartbeat), ("vote", peer_vote)] {
        let frame = encode(&req).unwrap();
        out.push((name, body(frame.clone())));
        out.push((name, frame));
    }
    let forward = encode(&PeerRequest::Forward(env(Request::Ping))).unwrap();
    out.push(("forward", forward));
    out
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand after changing the wire types"]
fn write_seed_corpus() {
    for (name, bytes) in seeds() {
        // A whole frame starts with its own length; a body does not.
        let is_frame =
            bytes.len() >= 4 && u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize == bytes.len() - 4;
        let target = if is_frame { "frame" } else { "request" };
        std::fs::write(Path::new(CORPUS).join(target).join(name), bytes).unwrap();
    }
    let put = encode(&env(Request::Put { key: "k".into(), value: "v".into() })).unwrap();
    let bad_frames: [(&str, Vec<u8>); 5] = [
        ("bad-oversized", vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        ("bad-truncated-header", vec![0, 0]),
        ("bad-truncated-body", put[..put.len() - 2].to_vec()),
        ("bad-trailing", [put.as_slice(), b"xx"].concat()),
        ("bad-garbage", vec![0, 0, 0, 6, 0xff, 0x13, 0x37, 0x00, 0xde, 0xad]),
    ];
    for (name, bytes) in bad_frames {
        std::fs::write(Path::new(CORPUS).join("frame").join(name), bytes).unwrap();
    }
    // CBOR that announces far more than it carries, and nesting deeper than any request.
    let bad_bodies: [(&str, Vec<u8>); 3] = [
        ("bad-huge-string", vec![0xa2, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, b'x']),
        ("bad-deep-nesting", vec![0x81; 10_000]),
        ("bad-empty", vec![]),
    ];
    for (name, bytes) in bad_bodies {
        std::fs::write(Path::new(CORPUS).join("request").join(name), bytes).unwrap();
    }
}
