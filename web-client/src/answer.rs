//! What a WebSocket message from the server means for the page. Each message carries exactly
//! one response frame; this checks that and turns the frame into a catalog, a picture, or an
//! error in words.

use picture_protocol::{
    Change, Kind, MAX_RESPONSE_BODY, Page, PictureInfo, Response, Status, decode_catalog,
    decode_response,
};

/// A picture the server sent: the one asked for, or its not-found picture instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPicture {
    /// Whether this is the picture asked for (otherwise it is the not-found picture).
    pub found: bool,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// Decodes one message, which must hold one whole response frame and nothing else.
pub fn read_message(message: &[u8]) -> Result<Response, String> {
    match decode_response(message, MAX_RESPONSE_BODY) {
        Ok(Some((response, used))) if used == message.len() => Ok(response),
        Ok(Some((_, used))) => Err(format!(
            "The server sent {} bytes after its answer.",
            message.len() - used
        )),
        Ok(None) => Err("The server sent an incomplete answer.".to_owned()),
        Err(error) => Err(format!("The server sent an unreadable answer: {error}.")),
    }
}

/// The catalog in the answer to a LIST.
pub fn catalog(response: Response) -> Result<Vec<PictureInfo>, String> {
    let response = expect(Kind::List, response)?;
    decode_catalog(&response.body)
        .map_err(|error| format!("The server sent an unreadable catalog: {error}."))
}

/// The page of the catalog in the answer to a PAGE.
pub fn page(response: Response) -> Result<Page, String> {
    let response = expect(Kind::Page, response)?;
    Page::decode(&response.body)
        .map_err(|error| format!("The server sent an unreadable page of the catalog: {error}."))
}

/// The answer to a write or an AUTH: the picture as it now is (none after a DELETE or an
/// AUTH), or the server's reason for refusing.
pub fn written(asked: Kind, response: Response) -> Result<Option<PictureInfo>, String> {
    let response = expect(asked, response)?;
    if response.body.is_empty() {
        return Ok(None); // AUTH's answer carries nothing.
    }
    decode_catalog(&response.body)
        .map(|mut pictures| pictures.pop())
        .map_err(|error| format!("The server sent an unreadable answer: {error}."))
}

/// Whether a message is a change notice rather than an answer.
pub fn is_notice(response: &Response) -> bool {
    response.head.kind == Some(Kind::Change)
}

/// The change a notice tells of.
pub fn change(response: Response) -> Result<Change, String> {
    let response = expect(Kind::Change, response)?;
    Change::decode(&response.body)
        .map_err(|error| format!("The server sent an unreadable change notice: {error}."))
}

/// The picture in the answer to a GET.
pub fn picture(response: Response) -> Result<ReceivedPicture, String> {
    let Response { head, body } = expect(Kind::Get, response)?;
    Ok(ReceivedPicture {
        found: head.status == Status::Ok,
        mime: head.mime,
        bytes: body,
    })
}

/// Passes an answer of the kind asked for that carries what was asked for (a not-found
/// picture counts, for a GET); anything else becomes the error to show.
fn expect(asked: Kind, response: Response) -> Result<Response, String> {
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
            let explanation = response.text();
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
    use picture_protocol::{CATALOG_MIME, ResponseHead, TEXT_MIME, encode_catalog};

    fn response(kind: Kind, status: Status, mime: &str, body: &[u8]) -> Response {
        Response {
            head: ResponseHead {
                kind: Some(kind),
                status,
                id: 1,
                mime: mime.into(),
                body_len: body.len() as u32,
            },
            body: body.to_vec(),
        }
    }

    fn frame(response: &Response) -> Vec<u8> {
        response.encode().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_whole_frame_per_message() {
        let ok = response(Kind::Get, Status::Ok, "image/png", b"png");
        let bytes = frame(&ok);
        assert_eq!(read_message(&bytes), Ok(ok));
        assert!(read_message(&bytes[..bytes.len() - 1]).is_err_and(|e| e.contains("incomplete")));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_message(&longer).is_err_and(|e| e.contains("1 bytes after")));
        assert!(read_message(b"GIF89a").is_err_and(|e| e.contains("unreadable")));
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
        let notice = response(
            Kind::Change,
            Status::Ok,
            picture_protocol::CHANGE_MIME,
            &body,
        );
        assert!(is_notice(&notice));
        assert_eq!(super::change(notice), Ok(change));
        let list = response(Kind::List, Status::Ok, CATALOG_MIME, &[0, 0]);
        assert!(!is_notice(&list));
        let garbage = response(
            Kind::Change,
            Status::Ok,
            picture_protocol::CHANGE_MIME,
            b"x",
        );
        assert!(super::change(garbage).is_err_and(|e| e.contains("unreadable")));
    }

    #[test]
    fn catalogs_and_pictures() {
        let body = encode_catalog(&[]).unwrap_or_else(|e| panic!("{e}"));
        let list = response(Kind::List, Status::Ok, CATALOG_MIME, &body);
        assert_eq!(catalog(list), Ok(vec![]));
        let get = response(Kind::Get, Status::Ok, "image/png", b"png");
        assert_eq!(
            picture(get),
            Ok(ReceivedPicture {
                found: true,
                mime: "image/png".into(),
                bytes: b"png".to_vec()
            })
        );
        let missing = response(Kind::Get, Status::NotFound, "image/png", b"nf");
        assert!(picture(missing).is_ok_and(|p| !p.found && p.bytes == b"nf"));
    }

    #[test]
    fn errors_carry_the_server_explanation() {
        let down = response(
            Kind::Get,
            Status::Internal,
            TEXT_MIME,
            b"upstream is down\n",
        );
        assert_eq!(
            picture(down),
            Err("The server reported: internal server error: upstream is down".into())
        );
        let busy = response(Kind::List, Status::Busy, TEXT_MIME, b"");
        assert_eq!(
            catalog(busy),
            Err("The server reported: server busy.".into())
        );
    }

    #[test]
    fn mismatched_and_broken_answers_fail() {
        let wrong = response(Kind::Get, Status::Ok, "image/png", b"png");
        assert!(catalog(wrong).is_err_and(|e| e.contains("GET request to a LIST")));
        let missing_list = response(Kind::List, Status::NotFound, "image/png", b"nf");
        assert!(catalog(missing_list).is_err());
        let garbage = response(Kind::List, Status::Ok, CATALOG_MIME, b"\x00");
        assert!(catalog(garbage).is_err_and(|e| e.contains("catalog")));
    }
}
