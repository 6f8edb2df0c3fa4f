//! The files of a `multipart/form-data` body: what `curl -F file=@cat.png` and an HTML form
//! with `<input type="file">` send.
//!
//! The parsing is `multer`'s (the parser behind axum's and Rocket's multipart support), not
//! ours: boundaries, transport padding, part headers and `Content-Disposition` quoting are
//! easy to get subtly wrong. multer is async, but the body is already in memory (read whole,
//! under the server's size limit, before this module sees it), so its futures never wait on
//! anything: [`now`] polls them with std's no-op waker instead of an executor. A part with a
//! file name is a file; a part without one is a plain form field and is skipped.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// The most files one request may carry (each is a prediction, batched with the others).
pub(super) const MAX_FILES: usize = 256;

/// One file part of the body.
#[derive(Debug)]
pub(super) struct FilePart {
    /// The part's file name, as the client sent it (`cat.png`).
    pub(super) file_name: String,
    pub(super) bytes: Vec<u8>,
}

/// The file parts of `body`, in the order they were sent, given the request's full
/// `Content-Type` header (which names the boundary). A malformed body, or one with no file
/// part, is a 400 with a message saying what is wrong.
pub(super) fn file_parts(content_type: &str, body: Vec<u8>) -> Result<Vec<FilePart>, (u16, String)> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        let why = match e {
            multer::Error::NoBoundary => "it names no `boundary` parameter".to_owned(),
            e => e.to_string(),
        };
        (400, format!("Content-Type `{content_type}`: {why}; a multipart/form-data upload's header is `multipart/form-data; boundary=...`"))
    })?;
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(body)]);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut files = Vec::new();
    let mut fields = Vec::new();
    while let Some(field) = now(multipart.next_field())?.map_err(malformed)? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            // Drained by the next `next_field`.
            fields.push(field.name().unwrap_or("").to_owned());
            continue;
        };
        if files.len() == MAX_FILES {
            return Err((
                413,
                format!("the upload has more than {MAX_FILES} files; send at most {MAX_FILES} per request"),
            ));
        }
        let bytes = now(field.bytes())?.map_err(malformed)?;
        files.push(FilePart { file_name, bytes: bytes.into() });
    }
    if files.is_empty() {
        let found = if fields.is_empty() {
            "no parts".to_owned()
        } else {
            format!("only form fields without a file name ({})", fields.join(", "))
        };
        return Err((
            400,
            format!(
                "the multipart upload has {found}: send each image or WAV file as a file part (`curl -F file=@cat.png`)"
            ),
        ));
    }
    Ok(files)
}

fn malformed(e: multer::Error) -> (u16, String) {
    (
        400,
        format!(
            "malformed multipart/form-data body: {e} (is the boundary in the body the one its Content-Type names?)"
        ),
    )
}

/// The output of `future`, which waits on nothing: the body is in memory. multer may answer
/// `Pending` after a step of progress (expecting to be polled again), so it is polled again, a
/// bounded number of times; a future still pending after that is an error, never a hang.
fn now<F: Future>(future: F) -> Result<F::Output, (u16, String)> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..(1 << 16) {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
    }
    Err((500, "the multipart parser stalled on a body already in memory".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    /// A body with `parts` (`(headers, content)`), separated by the boundary `XyZ`.
    fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (headers, content) in parts {
            out.extend_from_slice(format!("--XyZ\r\n{headers}\r\n\r\n").as_bytes());
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    /// A file name and the file's bytes.
    type Named = (String, Vec<u8>);

    /// The file names and contents `file_parts` finds, or its status and message.
    fn check(content_type: &str, body: Vec<u8>) -> Result<Vec<Named>, (u16, String)> {
        file_parts(content_type, body).map(|f| f.into_iter().map(|p| (p.file_name, p.bytes)).collect())
    }

    #[test]
    fn finds_the_file_parts_in_order_and_skips_plain_fields() {
        let b = body(&[
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"cat.png\"\r\nContent-Type: image/png",
                b"one\r\n--Xy",
            ),
            ("Content-Disposition: form-data; name=\"note\"", b"hello"),
            ("Content-Disposition: form-data; name=\"b\"; filename=\"dog.wav\"", b"two"),
        ]);
        let expected = vec![("cat.png".to_owned(), b"one\r\n--Xy".to_vec()), ("dog.wav".to_owned(), b"two".to_vec())];
        assert_eq!(check(TYPE, b), Ok(expected));
    }

    #[test]
    fn refuses_malformed_bodies_with_a_400_that_says_why() {
        let file = body(&[("Content-Disposition: form-data; name=\"a\"; filename=\"cat.png\"", b"one")]);
        for (content_type, body, expected) in [
            ("multipart/form-data", file.clone(), "no `boundary`"),
            ("multipart/form-data; boundary=Other", file.clone(), "malformed"),
            (TYPE, file[..file.len() - 12].to_vec(), "malformed"),
            (TYPE, b"not multipart at all".to_vec(), "malformed"),
            (TYPE, body(&[("Content-Disposition: form-data; name=\"note\"", b"hi")]), "only form fields"),
            (TYPE, b"--XyZ--\r\n".to_vec(), "no parts"),
        ] {
            let (status, message) = check(content_type, body).unwrap_err();
            assert_eq!(status, 400, "{message}");
            assert!(message.contains(expected), "{content_type}: {message}");
        }
    }

    #[test]
    fn refuses_more_files_than_the_limit() {
        let header = "Content-Disposition: form-data; name=\"f\"; filename=\"x.png\"";
        let parts: Vec<(&str, &[u8])> = (0..=MAX_FILES).map(|_| (header, &b"x"[..])).collect();
        assert_eq!(check(TYPE, body(&parts)).map_err(|e| e.0), Err(413));
    }
}
