//! The one reader of response bodies: streamed chunk by chunk, capped on decompressed bytes.
//!
//! `reqwest::Response::{bytes, text, json}` are banned in `clippy.toml` because they buffer
//! without a limit; this reader stops as soon as the cap would be passed. A body that ends before
//! its `Content-Length`, or whose connection breaks, is [`Error::Incomplete`]: a partial body is
//! never handed to a connector as if it were a page.

use super::Error;

/// Never reserve more than this up front, whatever `Content-Length` claims: the header is
/// untrusted and the buffer grows as bytes actually arrive.
const MAX_INITIAL_CAPACITY: usize = 1024 * 1024;

/// Reads the whole body of `response`, failing with [`Error::TooLarge`] past `limit_bytes`
/// (after decompression) and with [`Error::Incomplete`] when it is cut short. `url` is only used
/// in errors.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit_bytes: u64,
    url: &str,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        url: url.to_owned(),
        limit_bytes,
    };
    // With decompression the length is unknown here; without it, a declared length over the cap
    // fails before any byte is read.
    let declared = response.content_length();
    if declared.is_some_and(|len| len > limit_bytes) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit_bytes).unwrap_or(usize::MAX);
    let initial = declared
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(MAX_INITIAL_CAPACITY);
    let mut body = Vec::with_capacity(initial);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if chunk.len() > limit - body.len() {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(source) if source.is_timeout() => {
                return Err(Error::Timeout {
                    url: url.to_owned(),
                    source,
                });
            }
            Err(source) if is_corrupt_encoding(&source) => {
                return Err(Error::Decode {
                    url: url.to_owned(),
                    source,
                });
            }
            Err(source) => {
                return Err(Error::Incomplete {
                    url: url.to_owned(),
                    received_bytes: body.len() as u64,
                    source: Some(source),
                });
            }
        }
    }
    // hyper already fails a body shorter than its Content-Length; this guards the invariant in
    // case a layer in between ever stops doing so.
    if let Some(expected) = declared
        && (body.len() as u64) < expected
    {
        return Err(Error::Incomplete {
            url: url.to_owned(),
            received_bytes: body.len() as u64,
            source: None,
        });
    }
    Ok(body)
}

/// Whether a body error means the bytes arrived but are not valid in their `Content-Encoding`
/// (retrying will not help), as opposed to a stream cut short (decoders then report an
/// unexpected end of file, which is [`Error::Incomplete`]).
fn is_corrupt_encoding(error: &reqwest::Error) -> bool {
    if !error.is_decode() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::InvalidData;
        }
        cause = current.source();
    }
    false
}
