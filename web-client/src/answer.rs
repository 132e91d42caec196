//! What a WebSocket message from the server means for the page. Each message carries exactly
//! one response frame; this checks that and turns the frame into a catalog, a picture, or an
//! error in words.
//!
//! A message stays in the browser's buffer where it arrived. Only its head is copied into wasm
//! memory, and its body too when the page reads it (a catalog, a page, a change notice, an
//! explanation: all small). A picture is never copied in: it is shown from a view of the
//! received buffer. Wasm memory only ever grows, so every picture copied through it would
//! leave its size behind for as long as the page is open.

use js_sys::{ArrayBuffer, Uint8Array};
use picture_protocol::{
    Change, Dimensions, Kind, MAX_RESPONSE_BODY, MAX_RESPONSE_HEAD_LEN, Page, PictureInfo,
    ResponseHead, Status, decode_catalog,
};

/// One response from the server: its head, and its body as the page keeps it.
#[derive(Debug)]
pub struct Received {
    pub head: ResponseHead,
    pub body: Body,
}

/// Where a response's body is kept.
#[derive(Debug)]
pub enum Body {
    /// Copied into wasm memory, to be read.
    Bytes(Vec<u8>),
    /// A picture, left in the browser's buffer: a view of the bytes received, never copied.
    Picture(Uint8Array),
}

impl Body {
    /// The bytes copied in; a picture has none the page reads.
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Bytes(bytes) => bytes,
            Body::Picture(_) => &[],
        }
    }
}

/// A picture the server sent: the one asked for, or its not-found picture instead.
#[derive(Debug)]
pub struct ReceivedPicture {
    /// Whether this is the picture asked for (otherwise it is the not-found picture).
    pub found: bool,
    pub mime: String,
    /// Its width and height, which the server sends with a variant.
    pub dimensions: Option<Dimensions>,
    /// The picture's bytes, where the browser received them.
    pub bytes: Uint8Array,
}

/// Reads one message, which must hold one whole response frame and nothing else. Copies the
/// head into wasm memory, and the body unless it is a picture.
pub fn read_message(message: &ArrayBuffer) -> Result<Received, String> {
    let message = Uint8Array::new(message);
    let len = message.length();
    // The head is in the first MAX_RESPONSE_HEAD_LEN bytes (less in a shorter message).
    let prefix_len = len.min(MAX_RESPONSE_HEAD_LEN as u32);
    let head = read_head(&message.subarray(0, prefix_len).to_vec(), len as usize)?;
    // The body is the rest: the frame is the whole message, and its head (at most
    // MAX_RESPONSE_HEAD_LEN bytes) fits in a u32.
    let body = message.subarray(head.encoded_len() as u32, len);
    let body = if is_picture(&head) {
        Body::Picture(body)
    } else {
        Body::Bytes(body.to_vec())
    };
    Ok(Received { head, body })
}

/// Decodes the head of a message of `message_len` bytes from its first bytes (`prefix`: the
/// first [`MAX_RESPONSE_HEAD_LEN`] of them, or the whole message if it is shorter), and checks that the
/// message is one whole frame with nothing after it.
pub fn read_head(prefix: &[u8], message_len: usize) -> Result<ResponseHead, String> {
    match ResponseHead::decode(prefix, MAX_RESPONSE_BODY) {
        Ok(Some(head)) if head.frame_len() == message_len => Ok(head),
        Ok(Some(head)) if head.frame_len() < message_len => Err(format!(
            "The server sent {} bytes after its answer.",
            message_len - head.frame_len()
        )),
        Ok(_) => Err("The server sent an incomplete answer.".to_owned()),
        Err(error) => Err(format!("The server sent an unreadable answer: {error}.")),
    }
}

/// Whether a response's body is a picture (the one asked for, or the not-found picture), which
/// the page only shows and never reads.
pub fn is_picture(head: &ResponseHead) -> bool {
    head.kind == Some(Kind::Get) && matches!(head.status, Status::Ok | Status::NotFound)
}

/// The catalog in the answer to a LIST.
pub fn catalog(response: Received) -> Result<Vec<PictureInfo>, String> {
    let response = expect(Kind::List, response)?;
    decode_catalog(response.body.bytes())
        .map_err(|error| format!("The server sent an unreadable catalog: {error}."))
}

/// The page of the catalog in the answer to a PAGE.
pub fn page(response: Received) -> Result<Page, String> {
    let response = expect(Kind::Page, response)?;
    Page::decode(response.body.bytes())
        .map_err(|error| format!("The server sent an unreadable page of the catalog: {error}."))
}

/// The answer to a write or an AUTH: the picture as it now is (none after a DELETE or an
/// AUTH), or the server's reason for refusing.
pub fn written(asked: Kind, response: Received) -> Result<Option<PictureInfo>, String> {
    let response = expect(asked, response)?;
    let body = response.body.bytes();
    if body.is_empty() {
        return Ok(None); // AUTH's answer carries nothing.
    }
    decode_catalog(body)
        .map(|mut pictures| pictures.pop())
        .map_err(|error| format!("The server sent an unreadable answer: {error}."))
}

/// Whether a message is a change notice rather than an answer.
pub fn is_notice(response: &Received) -> bool {
    response.head.kind == Some(Kind::Change)
}

/// The change a notice tells of.
pub fn change(response: Received) -> Result<Change, String> {
    let response = expect(Kind::Change, response)?;
    Change::decode(response.body.bytes())
        .map_err(|error| format!("The server sent an unreadable change notice: {error}."))
}

/// The picture in the answer to a GET.
pub fn picture(response: Received) -> Result<ReceivedPicture, String> {
    let Received { head, body } = expect(Kind::Get, response)?;
    match body {
        Body::Picture(bytes) => Ok(ReceivedPicture {
            found: head.status == Status::Ok,
            mime: head.mime,
            dimensions: head.dimensions,
            bytes,
        }),
        // Only an answer that says it answers a GET is kept as a picture.
        Body::Bytes(_) => Err("The server's answer holds no picture.".to_owned()),
    }
}

/// Passes an answer of the kind asked for that carries what was asked for (a not-found
/// picture counts, for a GET); anything else becomes the error to show.
fn expect(asked: Kind, response: Received) -> Result<Received, String> {
    if let Some(kind) = response.head.kind.filter(|&kind| kind != asked) {
        return Err(format!(
            "The server answered a {} request to a {} request.",
            kind.name(),
            asked.name()
        ));
    }
    match response.head.status {
        Status::Ok => Ok(response),
        Status::NotFound if asked == Kind::Get => Ok(response),
        status => {
            let explanation = String::from_utf8_lossy(response.body.bytes());
            let explanation = explanation.trim();
            Err(if explanation.is_empty() {
                format!("The server reported: {}.", status.describe())
            } else {
                format!("The server reported: {}: {explanation}", status.describe())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picture_protocol::{CATALOG_MIME, Response, TEXT_MIME, encode_catalog};

    fn head(kind: Kind, status: Status, mime: &str, body_len: usize) -> ResponseHead {
        ResponseHead {
            kind: Some(kind),
            status,
            id: 1,
            mime: mime.into(),
            dimensions: None,
            body_len: body_len as u32,
        }
    }

    /// A response the page reads, as `read_message` keeps it.
    fn received(kind: Kind, status: Status, mime: &str, body: &[u8]) -> Received {
        Received {
            head: head(kind, status, mime, body.len()),
            body: Body::Bytes(body.to_vec()),
        }
    }

    fn frame(kind: Kind, status: Status, mime: &str, body: &[u8]) -> Vec<u8> {
        let response = Response {
            head: head(kind, status, mime, body.len()),
            body: body.to_vec(),
        };
        response.encode().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `read_head` as `read_message` calls it for a message of these bytes.
    fn head_of(message: &[u8]) -> Result<ResponseHead, String> {
        read_head(
            &message[..message.len().min(MAX_RESPONSE_HEAD_LEN)],
            message.len(),
        )
    }

    #[test]
    fn one_whole_frame_per_message() {
        let bytes = frame(Kind::Get, Status::Ok, "image/png", b"png");
        assert_eq!(
            head_of(&bytes),
            Ok(head(Kind::Get, Status::Ok, "image/png", 3))
        );
        assert!(head_of(&bytes[..bytes.len() - 1]).is_err_and(|e| e.contains("incomplete")));
        assert!(head_of(&bytes[..5]).is_err_and(|e| e.contains("incomplete")));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(head_of(&longer).is_err_and(|e| e.contains("1 bytes after")));
        assert!(head_of(b"GIF89a").is_err_and(|e| e.contains("unreadable")));
    }

    #[test]
    fn the_head_is_read_from_the_first_bytes_alone() {
        // The longest MIME type the wire allows, and a variant's dimensions, end the head
        // exactly at MAX_RESPONSE_HEAD_LEN.
        let longest = ResponseHead {
            dimensions: Some(picture_protocol::Dimensions {
                width: 400,
                height: 300,
            }),
            ..head(Kind::Get, Status::Ok, &"x".repeat(255), 20_000_000)
        };
        let mut bytes = Vec::new();
        longest
            .encode_into(&mut bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bytes.len(), MAX_RESPONSE_HEAD_LEN);
        // A 20 MB picture's head needs none of its body to be read, nor checked.
        assert_eq!(read_head(&bytes, longest.frame_len()), Ok(longest.clone()));
        assert!(
            read_head(&bytes, longest.frame_len() - 1).is_err_and(|e| e.contains("incomplete"))
        );
        assert!(
            read_head(&bytes, longest.frame_len() + 2).is_err_and(|e| e.contains("2 bytes after"))
        );
    }

    #[test]
    fn only_pictures_stay_out_of_wasm_memory() {
        assert!(is_picture(&head(Kind::Get, Status::Ok, "image/png", 3)));
        assert!(is_picture(&head(
            Kind::Get,
            Status::NotFound,
            "image/png",
            3
        )));
        // An explanation is read, even in the answer to a GET.
        assert!(!is_picture(&head(
            Kind::Get,
            Status::Internal,
            TEXT_MIME,
            3
        )));
        assert!(!is_picture(&head(Kind::List, Status::Ok, CATALOG_MIME, 3)));
        let unknown = ResponseHead {
            kind: None,
            ..head(Kind::Get, Status::Ok, "image/png", 3)
        };
        assert!(!is_picture(&unknown));
        // Such an answer is not taken for a picture either.
        let unknown = Received {
            head: unknown,
            body: Body::Bytes(b"png".to_vec()),
        };
        assert!(picture(unknown).is_err_and(|e| e.contains("no picture")));
    }

    #[test]
    fn notices_are_told_from_answers() {
        let change = picture_protocol::Change {
            version: 4,
            kind: picture_protocol::ChangeKind::Removed,
            name: "car".into(),
            picture: None,
        };
        let body = change.encode().unwrap_or_else(|e| panic!("{e}"));
        let notice = received(
            Kind::Change,
            Status::Ok,
            picture_protocol::CHANGE_MIME,
            &body,
        );
        assert!(is_notice(&notice));
        assert_eq!(super::change(notice), Ok(change));
        let list = received(Kind::List, Status::Ok, CATALOG_MIME, &[0, 0]);
        assert!(!is_notice(&list));
        let garbage = received(
            Kind::Change,
            Status::Ok,
            picture_protocol::CHANGE_MIME,
            b"x",
        );
        assert!(super::change(garbage).is_err_and(|e| e.contains("unreadable")));
    }

    #[test]
    fn catalogs() {
        let body = encode_catalog(&[]).unwrap_or_else(|e| panic!("{e}"));
        let list = received(Kind::List, Status::Ok, CATALOG_MIME, &body);
        assert_eq!(catalog(list), Ok(vec![]));
    }

    #[test]
    fn errors_carry_the_server_explanation() {
        let down = received(
            Kind::Get,
            Status::Internal,
            TEXT_MIME,
            b"upstream is down\n",
        );
        assert_eq!(
            picture(down).map(|_| ()),
            Err("The server reported: internal server error: upstream is down".into())
        );
        let busy = received(Kind::List, Status::Busy, TEXT_MIME, b"");
        assert_eq!(
            catalog(busy),
            Err("The server reported: server busy.".into())
        );
    }

    #[test]
    fn mismatched_and_broken_answers_fail() {
        let wrong = received(Kind::Get, Status::Ok, "image/png", b"png");
        assert!(catalog(wrong).is_err_and(|e| e.contains("GET request to a LIST")));
        let missing_list = received(Kind::List, Status::NotFound, "image/png", b"nf");
        assert!(catalog(missing_list).is_err());
        let garbage = received(Kind::List, Status::Ok, CATALOG_MIME, b"\x00");
        assert!(catalog(garbage).is_err_and(|e| e.contains("catalog")));
    }
}
