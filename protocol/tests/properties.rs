//! Property tests: every encodable message decodes back to itself, and no byte string makes a
//! decoder panic or claim more bytes than it was given.

use std::num::NonZeroU32;

use picture_protocol::*;
use proptest::prelude::*;

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        (1u32..).prop_map(Selector::Number),
        "[a-zA-Z0-9_ é-]{1,20}".prop_map(Selector::Name),
    ]
}

fn format() -> impl Strategy<Value = Option<Format>> {
    prop_oneof![
        Just(None),
        Just(Some(Format::Jpeg)),
        Just(Some(Format::Png)),
        Just(Some(Format::WebP)),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let get = (selector(), any::<u32>(), any::<u32>(), format()).prop_map(|(s, w, h, f)| {
        Command::Get(GetRequest {
            selector: s,
            variant: Variant {
                max_width: NonZeroU32::new(w),
                max_height: NonZeroU32::new(h),
                format: f,
            },
        })
    });
    let name = "[a-zA-Z0-9_é-]{1,20}";
    let title = ".{0,40}";
    let put =
        (name, title, any::<bool>(), any::<u32>()).prop_map(|(name, title, replace, size)| {
            Command::Put(PutRequest {
                name,
                title,
                replace,
                size,
            })
        });
    let page = (any::<u32>(), 1..=MAX_PAGE_SIZE, ".{0,30}").prop_map(|(after, limit, search)| {
        Command::Page(PageRequest {
            after,
            limit,
            search,
        })
    });
    let command = prop_oneof![
        Just(Command::List),
        Just(Command::Ping),
        Just(Command::Watch),
        get,
        put,
        page,
        proptest::collection::vec(any::<u8>(), 1..=MAX_TOKEN_LEN)
            .prop_map(|t| Command::Auth(t.into())),
        selector().prop_map(Command::Delete),
        (selector(), name).prop_map(|(selector, name)| Command::Rename { selector, name }),
        (selector(), title).prop_map(|(selector, title)| Command::Retitle { selector, title }),
        (selector(), 1u32..).prop_map(|(selector, position)| Command::Move { selector, position }),
    ];
    (any::<u32>(), command).prop_map(|(id, command)| Request { id, command })
}

fn status() -> impl Strategy<Value = Status> {
    (0u8..10).prop_map(|c| Status::from_code(c).unwrap_or(Status::Internal))
}

fn response() -> impl Strategy<Value = Response> {
    let kind = prop_oneof![
        Just(None),
        Just(Some(Kind::List)),
        Just(Some(Kind::Get)),
        Just(Some(Kind::Ping)),
        Just(Some(Kind::Put)),
        Just(Some(Kind::Watch)),
        Just(Some(Kind::Change)),
    ];
    (
        kind,
        status(),
        any::<u32>(),
        "[a-z/+.-]{0,40}",
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, status, id, mime, dimensions, body)| Response {
            head: ResponseHead {
                kind,
                status,
                id,
                mime,
                dimensions: dimensions.map(|(width, height)| Dimensions { width, height }),
                body_len: body.len() as u32,
            },
            body,
        })
}

fn picture() -> impl Strategy<Value = PictureInfo> {
    (
        1u32..,
        "[a-z0-9-]{1,64}",
        ".{0,60}",
        "image/[a-z]{1,10}",
        any::<(u32, u32, u32)>(),
        any::<[u8; 32]>(),
    )
        .prop_filter("title fits its length byte", |t| t.2.len() <= 255)
        .prop_map(
            |(number, name, title, mime, (width, height, size), sha256)| PictureInfo {
                number,
                name,
                title,
                mime,
                width,
                height,
                size,
                sha256,
            },
        )
}

proptest! {
    #[test]
    fn requests_round_trip(req in request(), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut bytes = req.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let len = bytes.len();
        bytes.extend(tail);
        prop_assert_eq!(decode_request(&bytes, MAX_REQUEST_PAYLOAD), Ok(Some((req, len))));
    }

    #[test]
    fn responses_round_trip(resp in response()) {
        let bytes = resp.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_response(&bytes, MAX_RESPONSE_BODY), Ok(Some((resp, bytes.len()))));
    }

    #[test]
    fn catalogs_round_trip(list in proptest::collection::vec(picture(), 0..8)) {
        let bytes = encode_catalog(&list).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_catalog(&bytes), Ok(list));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Some((_, used))) = decode_request(&bytes, MAX_REQUEST_PAYLOAD) {
            prop_assert!(used <= bytes.len());
        }
        if let Ok(Some((_, used))) = decode_response(&bytes, MAX_RESPONSE_BODY) {
            prop_assert!(used <= bytes.len());
        }
        let _ = decode_catalog(&bytes);
        let _ = Page::decode(&bytes);
        let _ = Change::decode(&bytes);
        let _ = Selector::from_choice(&bytes);
    }

    #[test]
    fn text_is_never_taken_for_a_frame(text in "\\PC{1,40}") {
        // Whatever an old client types is text: it must never decode as a framed request,
        // which is what lets one port serve both kinds of client.
        let decoded = decode_request(text.as_bytes(), MAX_REQUEST_PAYLOAD);
        prop_assert!(
            matches!(&decoded, Err(e) if matches!(e.error, DecodeError::BadMagic(_))),
            "{decoded:?}"
        );
    }
}
