//! Micro-benchmarks of the wire format: what every request and response costs to encode and
//! decode, apart from any I/O. Run with `cargo bench -p picture-protocol`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use picture_protocol::{
    Command, GetRequest, Kind, MAX_REQUEST_PAYLOAD, MAX_RESPONSE_BODY, PictureInfo, Request,
    ResponseHead, Selector, Status, Variant, decode_catalog, decode_request, encode_catalog,
};

fn get(selector: Selector) -> Request {
    Request {
        id: 0x0102_0304,
        command: Command::Get(GetRequest {
            selector,
            variant: Variant::default(),
        }),
    }
}

fn encoded(request: &Request) -> Vec<u8> {
    request
        .encode()
        .unwrap_or_else(|e| panic!("encoding {request:?}: {e}"))
}

fn requests(c: &mut Criterion) {
    let by_number = get(Selector::Number(5));
    let by_name = get(Selector::Name("forest-small".into()));
    let mut group = c.benchmark_group("request");
    group.bench_function("encode GET by number", |b| {
        b.iter(|| black_box(&by_number).encode())
    });
    group.bench_function("encode GET by name", |b| {
        b.iter(|| black_box(&by_name).encode())
    });
    let number_frame = encoded(&by_number);
    let name_frame = encoded(&by_name);
    group.bench_function("decode GET by number", |b| {
        b.iter(|| decode_request(black_box(&number_frame), MAX_REQUEST_PAYLOAD))
    });
    group.bench_function("decode GET by name", |b| {
        b.iter(|| decode_request(black_box(&name_frame), MAX_REQUEST_PAYLOAD))
    });
    group.finish();
}

fn response_heads(c: &mut Criterion) {
    let head = ResponseHead {
        kind: Some(Kind::Get),
        status: Status::Ok,
        id: 0x0102_0304,
        mime: "image/jpeg".into(),
        dimensions: None,
        body_len: 102_595,
    };
    let mut group = c.benchmark_group("response head");
    // The buffer is reused, as a server reuses its output buffer, so only encoding is timed.
    let mut out = Vec::with_capacity(head.encoded_len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&head).encode_into(&mut out)
        })
    });
    let mut frame = Vec::new();
    head.encode_into(&mut frame)
        .unwrap_or_else(|e| panic!("encoding the head: {e}"));
    group.bench_function("decode", |b| {
        b.iter(|| ResponseHead::decode(black_box(&frame), MAX_RESPONSE_BODY))
    });
    group.finish();
}

/// A catalog the size of the shipped one.
fn catalog() -> Vec<PictureInfo> {
    [
        "car",
        "house",
        "dog",
        "forest",
        "mountain",
        "ocean",
        "forest-small",
        "thumbnail",
    ]
    .iter()
    .zip(1..)
    .map(|(name, number)| PictureInfo {
        number,
        name: (*name).into(),
        title: name.to_uppercase(),
        mime: "image/jpeg".into(),
        width: 1500,
        height: 938,
        size: 1_016_049,
        sha256: [0xAB; 32],
    })
    .collect()
}

fn catalogs(c: &mut Criterion) {
    let pictures = catalog();
    let body = encode_catalog(&pictures).unwrap_or_else(|e| panic!("encoding the catalog: {e}"));
    let mut group = c.benchmark_group("catalog of 8");
    group.bench_function("encode", |b| {
        b.iter(|| encode_catalog(black_box(&pictures)))
    });
    group.bench_function("decode", |b| b.iter(|| decode_catalog(black_box(&body))));
    group.finish();
}

criterion_group!(benches, requests, response_heads, catalogs);
criterion_main!(benches);
