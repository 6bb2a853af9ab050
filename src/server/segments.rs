//! Segments (and parts) as answers: from memory, or from their file in the media directory,
//! with one set of rules for both: `ETag` and `Last-Modified` from the publication time, byte
//! ranges, conditional requests, and the cache lifetime the playlist's window gives them.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use bytes::Bytes;

use super::assets;
use super::error::{blocking_error, not_found_error};
use super::state::StreamView;
use crate::error::Error;
use crate::name::MediaFile;

/// A segment's file, for `sendfile(2)`: the front door ([`super::front`]) sends it instead of
/// the response's body when a response carries it as an extension ([`segment_from_memory`],
/// [`segment_from_disk`]). The bytes are the same: the publisher wrote the file from the bytes
/// in memory and never writes it again, and a body read from disk is read from it.
#[derive(Clone, Debug)]
pub(crate) struct FileBody {
    pub(crate) file: Arc<std::fs::File>,
    /// Where the body starts in the file (a byte range) and how long it is.
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// Segment `seq` from memory, `None` when it is not held (the file on disk is then the answer).
pub(crate) fn segment_in_memory(
    state: &StreamView,
    headers: &header::HeaderMap,
    seq: u64,
) -> Option<HttpResponse> {
    held_answer(state, headers, state.shared.media.segment(seq)?)
}

/// fMP4 init segment `NAME<init>.init.mp4` from memory (`video/mp4`), `None` when it is not
/// held. It is immutable like a segment and lives at least as long as the segments it
/// initialises.
pub(crate) fn init_in_memory(
    state: &StreamView,
    headers: &header::HeaderMap,
    init: u64,
) -> Option<HttpResponse> {
    held_answer(state, headers, state.shared.media.init(init)?)
}

/// The answer for a segment or init segment held in memory: immutable for the segment
/// lifetime, in the stream's container type.
fn held_answer(
    state: &StreamView,
    headers: &header::HeaderMap,
    cached: crate::media_cache::CachedSegment,
) -> Option<HttpResponse> {
    let lifetime = Duration::from_secs(state.params().segment_lifetime_secs);
    Some(segment_from_memory(
        headers,
        cached,
        lifetime,
        state.name.segment_type().content_type(),
    ))
}

/// Segment `file` (a name the stream's own, checked by the caller) from the media directory,
/// under its confinement rules ([`super::media::open_inside`], on the blocking pool): the same
/// answer as from memory, its `ETag` and `Last-Modified` from the file's modification time.
/// The body is read in chunks on the blocking pool as the client takes it; the front door sends
/// the file with `sendfile(2)` instead ([`FileBody`]).
pub(crate) async fn segment_from_disk(
    state: &StreamView,
    headers: &header::HeaderMap,
    file: String,
) -> Result<HttpResponse, Error> {
    let lifetime = Duration::from_secs(state.params().segment_lifetime_secs);
    let dir = state.media_dir.clone();
    let (file, len, published) = web::block(move || {
        let opened = super::media::open_inside(&dir, &file)?;
        let published = opened
            .metadata
            .modified()
            .map_err(|e| Error::io("reading a segment's time", e))?;
        Ok::<_, Error>((opened.file, opened.metadata.len(), published))
    })
    .await
    .map_err(blocking_error)??;
    Ok(segment_answer(
        headers,
        len,
        published,
        lifetime,
        Body::Disk(Arc::new(file)),
        state.name.segment_type().content_type(),
    ))
}

/// A part no longer held in memory: `len` bytes at `offset` of segment `sequence` (a segment is
/// its parts end to end), from the segment in memory, else read from its file under the media
/// directory's confinement rules. Answered like the part itself (ranges, `ETag` from the
/// segment's publication).
pub(crate) async fn part_of_segment(
    state: &StreamView,
    headers: &header::HeaderMap,
    sequence: u64,
    offset: u64,
    len: u64,
) -> Result<HttpResponse, Error> {
    let lifetime = Duration::from_secs(state.params().segment_lifetime_secs);
    let end = offset + len;
    if let Some(segment) = state.shared.media.segment(sequence) {
        if segment.bytes.len() as u64 >= end {
            let bytes = segment.bytes.slice(offset as usize..end as usize);
            return Ok(segment_answer(
                headers,
                len,
                segment.published,
                lifetime,
                Body::Memory(bytes, None),
                state.name.segment_type().content_type(),
            ));
        }
    }
    let dir = state.media_dir.clone();
    let mut name = String::new();
    state
        .name
        .write_file(&mut name, MediaFile::Segment(sequence));
    let (bytes, published) = web::block(move || {
        let opened = super::media::open_inside(&dir, &name)?;
        if opened.metadata.len() < end {
            return Err(not_found_error());
        }
        let published = opened
            .metadata
            .modified()
            .map_err(|e| Error::io("reading a segment's time", e))?;
        let mut buf = vec![0; len as usize];
        opened
            .file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io("reading a part from its segment", e))?;
        Ok::<_, Error>((Bytes::from(buf), published))
    })
    .await
    .map_err(blocking_error)??;
    Ok(segment_answer(
        headers,
        len,
        published,
        lifetime,
        Body::Memory(bytes, None),
        state.name.segment_type().content_type(),
    ))
}

/// Where a segment's bytes are.
enum Body {
    /// In memory, and in the file the publisher wrote them to, when there is one.
    Memory(Bytes, Option<Arc<File>>),
    /// Only in the file.
    Disk(Arc<File>),
}

/// The size of each read of a segment sent from disk through actix-web.
const DISK_CHUNK: u64 = 64 * 1024;

/// `len` bytes of `file` from `offset`, read a chunk at a time on the blocking pool, each read
/// only when the client has taken the one before.
fn file_chunks(
    file: Arc<File>,
    offset: u64,
    len: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, Error>> {
    futures_util::stream::unfold((offset, len), move |(at, left)| {
        let file = file.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(DISK_CHUNK);
            let read = web::block(move || {
                let mut buf = vec![0; n as usize];
                file.read_exact_at(&mut buf, at)
                    .map(|()| Bytes::from(buf))
                    .map_err(|e| Error::io("reading a segment", e))
            })
            .await
            .map_err(blocking_error)
            .and_then(|r| r);
            let next = if read.is_ok() {
                (at + n, left - n)
            } else {
                (at, 0)
            };
            Some((read, next))
        }
    })
}

/// A segment (or part) held in memory: the whole of it, or one byte range (`206`; `416`, not
/// cacheable, when the range is outside it), with the same headers as from the file, a strong
/// `ETag` (length and publication instant: a name reused by a later `--fresh` run gets another),
/// and conditional requests: `If-None-Match` / `If-Modified-Since` answer `304`, an `If-Range`
/// that does not match turns a range request into the whole segment (RFC 9110 §13).
pub(crate) fn segment_from_memory(
    headers: &header::HeaderMap,
    cached: crate::media_cache::CachedSegment,
    lifetime: Duration,
    content_type: &'static str,
) -> HttpResponse {
    let total = cached.bytes.len() as u64;
    let body = Body::Memory(cached.bytes, cached.file);
    segment_answer(
        headers,
        total,
        cached.published,
        lifetime,
        body,
        content_type,
    )
}

/// The answer for a segment (or part) of `total` bytes published at `published`, whose bytes
/// are `body`: see [`segment_from_memory`].
fn segment_answer(
    headers: &header::HeaderMap,
    total: u64,
    published: SystemTime,
    lifetime: Duration,
    body: Body,
    content_type: &'static str,
) -> HttpResponse {
    let (cache_control, expires) = segment_cache_headers(published, lifetime);
    let published_ns = published
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"m{total:x}-{published_ns:x}\"");
    let last_modified = header::HttpDate::from(published);
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
    let not_modified = match text(header::IF_NONE_MATCH) {
        Some(v) => assets::if_none_match_hits(v, &etag),
        None => text(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.parse::<header::HttpDate>().ok())
            .is_some_and(|since| {
                // HTTP dates have whole seconds.
                let secs = |t: SystemTime| {
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                };
                secs(SystemTime::from(since)) >= secs(published)
            }),
    };
    if not_modified {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::EXPIRES, expires.to_string()))
            .finish();
    }
    let range_applies = match text(header::IF_RANGE) {
        None => true,
        // A strong validator must match exactly; a date must equal Last-Modified.
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => v
            .parse::<header::HttpDate>()
            .is_ok_and(|d| d.to_string() == last_modified.to_string()),
    };
    let range = text(header::RANGE)
        .filter(|_| range_applies)
        .and_then(|v| v.parse::<header::Range>().ok());
    // (status, Content-Range, first byte, length); no range, or several, is the whole segment
    // (RFC 9110 §14.2).
    let (status, content_range, first, len) = match range {
        Some(header::Range::Bytes(specs)) if specs.len() == 1 => {
            match specs[0].to_satisfiable_range(total) {
                Some((first, last)) => (
                    StatusCode::PARTIAL_CONTENT,
                    Some(format!("bytes {first}-{last}/{total}")),
                    first,
                    last - first + 1,
                ),
                None => {
                    return HttpResponse::RangeNotSatisfiable()
                        .insert_header((header::CONTENT_RANGE, format!("bytes */{total}")))
                        .insert_header((header::CACHE_CONTROL, "no-store"))
                        .finish();
                }
            }
        }
        _ => (StatusCode::OK, None, 0, total),
    };
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::EXPIRES, expires.to_string()))
        .insert_header((header::ETAG, etag))
        .insert_header((header::LAST_MODIFIED, last_modified.to_string()))
        .content_type(content_type);
    if let Some(cr) = content_range {
        res.insert_header((header::CONTENT_RANGE, cr));
    }
    let file = match &body {
        Body::Memory(_, file) => file.clone(),
        Body::Disk(file) => Some(file.clone()),
    };
    if let Some(file) = file {
        // The front door sends these bytes from the file, without a copy.
        res.extensions_mut().insert(FileBody {
            file,
            offset: first,
            len,
        });
    }
    match body {
        Body::Memory(bytes, _) => res.body(bytes.slice(first as usize..(first + len) as usize)),
        Body::Disk(file) => res.body(SizedStream::new(len, file_chunks(file, first, len))),
    }
}

/// `Cache-Control` and `Expires` of a segment published at `published` that stays on the server
/// for `lifetime`: a segment never changes, so caches may keep it for all of its remaining life
/// (RFC 8216 §6.2.2: `Expires` should reflect its planned time-to-live, R27), and no longer, in
/// case a later run (`--fresh`) reuses the name.
fn segment_cache_headers(published: SystemTime, lifetime: Duration) -> (String, header::HttpDate) {
    let expires = published + lifetime;
    let remaining = expires
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let remaining = remaining.min(lifetime).as_secs();
    (
        format!("public, max-age={remaining}, immutable"),
        header::HttpDate::from(expires),
    )
}
