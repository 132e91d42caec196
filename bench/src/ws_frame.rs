//! The bytes of a WebSocket frame's head (RFC 6455, section 5.2), with no I/O: what the load
//! generator's own WebSocket client writes and reads (see `ws`).

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Control frames carry at most this much (RFC 6455, 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest head: two bytes, an eight-byte length and a four-byte masking key.
pub const MAX_HEAD: usize = 14;

/// A frame's head as it was sent; what is allowed is for each side to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    /// The three reserved bits, which no extension in use here may set.
    pub reserved: u8,
    pub opcode: u8,
    /// Frames from a client carry a masking key; frames from a server must not.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the head takes.
    pub len: usize,
}

impl FrameHead {
    /// Close, ping and pong.
    pub fn is_control(&self) -> bool {
        self.opcode & 0x08 != 0
    }

    /// What RFC 6455 asks of every control frame: whole, and short.
    pub fn is_valid_control(&self) -> bool {
        self.fin && self.payload_len <= MAX_CONTROL_PAYLOAD as u64
    }
}

/// Reads the head at the start of `bytes`, or `None` until all of it has arrived.
pub fn parse_head(bytes: &[u8]) -> Option<FrameHead> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let (payload_len, mut len) = match second & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    let mask = if second & 0x80 != 0 {
        let key = bytes.get(len..len + 4)?.try_into().ok()?;
        len += 4;
        Some(key)
    } else {
        None
    };
    Some(FrameHead {
        fin: first & 0x80 != 0,
        reserved: (first >> 4) & 0x07,
        opcode: first & 0x0F,
        mask,
        payload_len,
        len,
    })
}

/// Appends a frame head for `len` payload bytes, with the masking key if one is given.
pub fn put_head(out: &mut Vec<u8>, fin: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push((u8::from(fin) << 7) | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
}

/// XORs `payload` with the masking key, which both masks and unmasks it.
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// Appends a whole frame as a client sends it: head, then the payload masked with `mask`.
pub fn put_client_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    put_head(out, fin, opcode, payload.len(), Some(mask));
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_of_every_length_form_read_back() {
        for (len, head_len) in [(0, 2), (125, 2), (126, 4), (0xFFFF, 4), (0x1_0000, 10)] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                put_head(&mut out, true, OP_BINARY, len, mask);
                let expected = head_len + if mask.is_some() { 4 } else { 0 };
                assert_eq!(out.len(), expected, "{len} {mask:?}");
                for cut in 0..out.len() {
                    assert_eq!(parse_head(&out[..cut]), None, "{len} cut at {cut}");
                }
                let head = parse_head(&out).unwrap_or_else(|| panic!("{len}"));
                assert_eq!(
                    head,
                    FrameHead {
                        fin: true,
                        reserved: 0,
                        opcode: OP_BINARY,
                        mask,
                        payload_len: len as u64,
                        len: expected,
                    }
                );
            }
        }
    }

    #[test]
    fn client_frames_are_masked() {
        let mut out = Vec::new();
        let mask = [0x11, 0x22, 0x33, 0x44];
        put_client_frame(&mut out, false, OP_PING, b"abcde", mask);
        assert_eq!(&out[..6], &[0x09, 0x85, 0x11, 0x22, 0x33, 0x44]);
        assert_ne!(&out[6..], b"abcde");
        apply_mask(&mut out[6..], mask);
        assert_eq!(&out[6..], b"abcde");
    }

    #[test]
    fn reserved_bits_and_control_rules() {
        let head = parse_head(&[0xF9, 0x7E, 0, 126]).unwrap_or_else(|| panic!("whole"));
        assert_eq!((head.fin, head.reserved, head.opcode), (true, 7, OP_PING));
        assert!(head.is_control());
        assert!(!head.is_valid_control(), "126 bytes is too long");
        let head = parse_head(&[0x02, 0x00]).unwrap_or_else(|| panic!("whole"));
        assert!(!head.is_control());
    }

    proptest::proptest! {
        #[test]
        fn any_head_reads_back_as_written(
            fin: bool,
            opcode in 0u8..16,
            len in proptest::prop_oneof![0usize..200, 0usize..=0x1_0010],
            mask: Option<[u8; 4]>,
        ) {
            let mut out = Vec::new();
            put_head(&mut out, fin, opcode, len, mask);
            let head = parse_head(&out);
            proptest::prop_assert_eq!(
                head.map(|h| (h.fin, h.reserved, h.opcode, h.mask, h.payload_len, h.len)),
                Some((fin, 0, opcode, mask, len as u64, out.len()))
            );
        }

        #[test]
        fn any_bytes_parse_without_panicking(bytes: Vec<u8>) {
            if let Some(head) = parse_head(&bytes) {
                proptest::prop_assert!(head.len <= bytes.len() && head.len <= MAX_HEAD);
            }
        }
    }
}
