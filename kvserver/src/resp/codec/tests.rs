//! The codec's cases: those the `redis-protocol` crate tests its RESP2 decoder with
//! (whole frames, frames followed by more bytes, frames cut short), as requests, and
//! the limits and errors this codec adds.

use super::*;

const LIMITS: RequestLimits = RequestLimits {
    max_args: 100,
    max_request_bytes: 1000,
};

fn codec() -> RespCodec {
    RespCodec::new(LIMITS, false)
}

fn args(list: &[&str]) -> Args {
    list.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

/// Decodes everything in `input`; the requests, and what was left.
fn decode_all(codec: &mut RespCodec, input: &[u8]) -> (Vec<Args>, BytesMut) {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(request) = codec.decode(&mut buf).expect("no protocol error") {
        out.push(request);
    }
    (out, buf)
}

fn error_of(input: &[u8]) -> String {
    error_with(&mut codec(), input)
}

fn error_with(codec: &mut RespCodec, input: &[u8]) -> String {
    let mut buf = BytesMut::from(input);
    loop {
        match codec.decode(&mut buf) {
            Err(CodecError::Protocol(text)) => return text,
            Err(CodecError::Io(e)) => panic!("i/o error {e}"),
            Ok(Some(_)) => continue,
            Ok(None) => panic!(
                "{:?} decoded without an error",
                String::from_utf8_lossy(input)
            ),
        }
    }
}

#[test]
fn a_bulk_string_array_decodes_whole_or_padded() {
    let frame = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
    let (requests, rest) = decode_all(&mut codec(), frame);
    assert_eq!(requests, [args(&["GET", "foo"])]);
    assert!(rest.is_empty());
    let mut padded = frame.to_vec();
    padded.extend_from_slice(b"FOOBARBAZ");
    let (requests, rest) = decode_all(&mut codec(), &padded);
    assert_eq!(requests, [args(&["GET", "foo"])]);
    // What follows is an inline command still without its line end.
    assert_eq!(&rest[..], b"FOOBARBAZ");
}

#[test]
fn an_incomplete_array_waits_at_every_cut() {
    let frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\xff\r\n\r\n";
    for cut in 0..frame.len() {
        let mut c = codec();
        let mut buf = BytesMut::from(&frame[..cut]);
        assert_eq!(c.decode(&mut buf).unwrap(), None, "cut at {cut}");
        buf.extend_from_slice(&frame[cut..]);
        let request = c.decode(&mut buf).unwrap().expect("complete");
        assert_eq!(
            request,
            vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"a\0\xff\r\n"),
            ]
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn byte_by_byte_arrival_decodes_the_same() {
    let stream = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\nPING x\r\n";
    let mut c = codec();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &b in stream {
        buf.extend_from_slice(&[b]);
        while let Some(request) = c.decode(&mut buf).unwrap() {
            out.push(request);
        }
    }
    assert_eq!(
        out,
        [args(&["PING"]), args(&["ECHO", ""]), args(&["PING", "x"])]
    );
}

#[test]
fn pipelined_requests_decode_in_order() {
    let mut input = Vec::new();
    for i in 0..50 {
        let n = i.to_string();
        input.extend_from_slice(format!("*2\r\n$4\r\nINCR\r\n${}\r\n{n}\r\n", n.len()).as_bytes());
    }
    let (requests, rest) = decode_all(&mut codec(), &input);
    assert_eq!(requests.len(), 50);
    assert_eq!(requests[49], args(&["INCR", "49"]));
    assert!(rest.is_empty());
}

#[test]
fn empty_arrays_and_lines_are_skipped() {
    let (requests, rest) = decode_all(&mut codec(), b"*0\r\n*-1\r\n\r\n  \r\nPING\r\n");
    assert_eq!(requests, [args(&["PING"])]);
    assert!(rest.is_empty());
}

#[test]
fn inline_commands_mix_with_arrays() {
    let (requests, _) = decode_all(
        &mut codec(),
        b"SET k \"a b\"\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nDEL k\n",
    );
    assert_eq!(
        requests,
        [
            args(&["SET", "k", "a b"]),
            args(&["GET", "k"]),
            args(&["DEL", "k"])
        ]
    );
}

#[test]
fn malformed_headers_are_the_errors_redis_gives() {
    assert_eq!(
        error_of(b"*x\r\n"),
        "ERR Protocol error: invalid multibulk length"
    );
    assert_eq!(
        error_of(b"*01\r\n"),
        "ERR Protocol error: invalid multibulk length"
    );
    assert_eq!(
        error_of(b"*1\r\n:5\r\n"),
        "ERR Protocol error: expected '$', got ':'"
    );
    assert_eq!(
        error_of(b"*1\r\n$-1\r\n"),
        "ERR Protocol error: invalid bulk length"
    );
    assert_eq!(
        error_of(b"*1\r\n$abc\r\n"),
        "ERR Protocol error: invalid bulk length"
    );
    assert_eq!(
        error_of(b"\"open\r\n"),
        "ERR Protocol error: unbalanced quotes in request"
    );
}

#[test]
fn oversized_requests_are_refused_before_their_bytes_arrive() {
    // Only the headers are sent: the codec refuses on them, buffering nothing more.
    assert_eq!(
        error_of(b"*101\r\n"),
        "ERR Protocol error: invalid multibulk length"
    );
    assert_eq!(
        error_of(b"*2147483648\r\n"),
        "ERR Protocol error: invalid multibulk length"
    );
    assert_eq!(
        error_of(b"*1\r\n$1001\r\n"),
        "ERR Protocol error: invalid bulk length"
    );
    assert_eq!(
        error_of(b"*1\r\n$99999999999999999999\r\n"),
        "ERR Protocol error: invalid bulk length"
    );
    // Within bounds one by one, beyond them together.
    let mut input = b"*3\r\n$3\r\nSET\r\n$600\r\n".to_vec();
    input.extend_from_slice(&[b'a'; 600]);
    input.extend_from_slice(b"\r\n$600\r\n");
    assert_eq!(
        error_of(&input),
        "ERR Protocol error: request larger than 1000 bytes (--max-body-bytes)"
    );
    // At the bounds exactly, accepted.
    let mut input = b"*1\r\n$1000\r\n".to_vec();
    input.extend_from_slice(&[b'a'; 1000]);
    input.extend_from_slice(b"\r\n");
    assert_eq!(decode_all(&mut codec(), &input).0.len(), 1);
    let mut input = b"*100\r\n".to_vec();
    for _ in 0..100 {
        input.extend_from_slice(b"$1\r\na\r\n");
    }
    assert_eq!(decode_all(&mut codec(), &input).0[0].len(), 100);
}

#[test]
fn a_waiting_bulk_string_reserves_its_room_at_once() {
    let mut c = codec();
    let mut buf = BytesMut::from(&b"*1\r\n$900\r\n"[..]);
    assert_eq!(c.decode(&mut buf).unwrap(), None);
    assert!(buf.capacity() >= 4 + 6 + 900 + 2);
}

#[test]
fn long_lines_without_an_end_are_refused() {
    let mut line = b"*".to_vec();
    line.extend_from_slice(&[b'1'; MAX_LINE + 1]);
    assert_eq!(
        error_of(&line),
        "ERR Protocol error: too big mbulk count string"
    );
    let mut line = b"*1\r\n$".to_vec();
    line.extend_from_slice(&[b'1'; MAX_LINE + 1]);
    assert_eq!(
        error_of(&line),
        "ERR Protocol error: too big bulk count string"
    );
    assert_eq!(
        error_of(&vec![b'a'; MAX_LINE + 1]),
        "ERR Protocol error: too big inline request"
    );
}

#[test]
fn strangers_get_small_requests_only() {
    let mut c = RespCodec::new(LIMITS, true);
    assert_eq!(
        error_with(&mut c, b"*11\r\n"),
        "ERR Protocol error: invalid multibulk length"
    );
    let mut c = RespCodec::new(
        RequestLimits {
            max_args: 100,
            max_request_bytes: 1 << 20,
        },
        true,
    );
    assert_eq!(
        error_with(&mut c, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"),
        "ERR Protocol error: invalid bulk length"
    );
    c.set_strict(false);
    let (requests, _) = decode_all(&mut c, b"*11\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n");
    assert_eq!(requests[0].len(), 11);
}

#[test]
fn replies_follow_the_protocol_switch() {
    let mut c = codec();
    let mut out = BytesMut::new();
    c.encode(Reply::Null, &mut out).unwrap();
    c.set_protocol(Protocol::Resp3);
    assert_eq!(c.protocol(), Protocol::Resp3);
    c.encode(Reply::Null, &mut out).unwrap();
    assert_eq!(&out[..], b"$-1\r\n_\r\n");
}

mod against_the_crate {
    //! The `redis-protocol` crate's parser and this codec read every request alike,
    //! however it is cut into reads.

    use super::*;
    use proptest::prelude::*;
    use redis_protocol::resp2::types::OwnedFrame;

    fn request(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn requests_read_as_the_crate_reads_them(
            requests in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6), 1..6),
            cuts in prop::collection::vec(1..50usize, 0..20),
        ) {
            let stream: Vec<u8> = requests.iter().flat_map(|r| request(r)).collect();
            // The crate, on the whole stream.
            let mut expected = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let (frame, len) = redis_protocol::resp2::decode::decode(&stream[at..]).unwrap().unwrap();
                let OwnedFrame::Array(items) = frame else { panic!("an array") };
                expected.push(items.into_iter().map(|i| match i {
                    OwnedFrame::BulkString(b) => b,
                    other => panic!("{other:?}"),
                }).collect::<Vec<_>>());
                at += len;
            }
            // The codec, on the stream cut into reads.
            let mut c = RespCodec::new(RequestLimits { max_args: 100, max_request_bytes: 1 << 20 }, false);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                while let Some(args) = c.decode(&mut buf).unwrap() {
                    got.push(args.into_iter().map(|a| a.to_vec()).collect::<Vec<_>>());
                }
            }
            prop_assert_eq!(got, expected);
            prop_assert!(buf.is_empty());
        }
    }
}
