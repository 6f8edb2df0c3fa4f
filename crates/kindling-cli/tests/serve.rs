//! `kindling serve` as a client sees it: a tiny run served on 127.0.0.1, real HTTP/1.1 requests
//! over TCP, then SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{kindling, root, text};

/// Kills the server if the test fails before it is stopped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `head` (the request line and headers, without the blank line) and `body`; returns the
/// status and the JSON body of the answer.
fn request(addr: &str, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut bytes = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect(&status_line);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", text(&body))))
}

fn post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let head = format!("POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {}", body.len());
    request(addr, &head, body)
}

/// A `multipart/form-data` body as curl's `-F` writes one, with the boundary `kindling-test`:
/// each part a form field name, a file name (`None`: a plain field) and the content.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, content) in parts {
        body.extend_from_slice(b"--kindling-test\r\n");
        let disposition = match file_name {
            Some(f) => format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n"),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        if file_name.is_some() {
            body.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--kindling-test--\r\n");
    body
}

const FORM: &str = "multipart/form-data; boundary=kindling-test";

fn first_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir).unwrap().next().unwrap().unwrap().path()
}

#[test]
fn serve_answers_predictions_batches_refuses_bad_uploads_and_stops_on_sigterm() {
    let tmp = std::env::temp_dir().join(format!("kindling-serve-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let run = tmp.join("run");
    let r = run.to_str().unwrap();
    common::quickstart_run(r, 600, 100);
    let folder = tmp.join("images");
    common::image_folder("train", &folder, 1, &["--rgb", "--classes", common::CLASSES]);
    let bag = first_file(&folder.join("8_Bag"));
    let boot = first_file(&folder.join("9_Ankle boot"));

    // What `kindling predict` says of the bag: the class before the first probability.
    let out = kindling(&["predict", r, bag.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let field = stdout.trim_end().split('\t').nth(1).expect(&stdout);
    let expected = field.rsplit_once(' ').expect(field).0.to_owned();

    // The server reads the run's package alone: a copy whose config.yaml no longer describes
    // any data (so rebuilding the run from it would fail) serves the same answers.
    let copy = tmp.join("served/quickstart/run");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["model.json", "model.safetensors"] {
        std::fs::copy(run.join(file), copy.join(file)).unwrap();
    }
    std::fs::write(copy.join("config.yaml"), "stages: []\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(["serve", copy.to_str().unwrap(), "--port", "0", "--host", "127.0.0.1", "--device", "cpu"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{first}")).to_owned();

    let (status, body) = request(&addr, "GET /health HTTP/1.1", b"");
    assert_eq!((status, &body), (200, &serde_json::json!({"status": "ok"})));

    let (status, model) = request(&addr, "GET /model HTTP/1.1", b"");
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["run"], "run");
    assert_eq!(model["pipeline"], "quickstart");
    assert_eq!(model["kind"], "image");
    assert_eq!(model["input_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(model["classes"].as_array().unwrap().len(), 10);
    assert_eq!(model["classes"][8], "Bag");
    assert!(model["layers"].as_array().is_some_and(|l| !l.is_empty()), "{model}");

    // The bag: the same top class as `kindling predict`, three classes by default, K with ?top=K.
    let png = std::fs::read(&bag).unwrap();
    let (status, body) = post(&addr, "/predict", "image/png", &png);
    assert_eq!(status, 200, "{body}");
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 3, "{body}");
    assert_eq!(predictions[0]["class"], expected.as_str(), "{body}");
    let p: Vec<f64> = predictions.iter().map(|p| p["probability"].as_f64().unwrap()).collect();
    assert!(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1.0 && p[2] >= 0.0, "{body}");
    let (status, body) = post(&addr, "/predict?top=5", "application/octet-stream", &png);
    assert_eq!((status, body["predictions"].as_array().unwrap().len()), (200, 5), "{body}");

    // Requests arriving together: every one answered, each with its own file's classes.
    let boot_png = std::fs::read(&boot).unwrap();
    let (_, alone) = post(&addr, "/predict?top=1", "image/png", &boot_png);
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (addr, png, boot_png) = (addr.clone(), png.clone(), boot_png.clone());
            std::thread::spawn(move || {
                let file = if i % 2 == 0 { &png } else { &boot_png };
                (i, post(&addr, "/predict?top=1", "image/png", file))
            })
        })
        .collect();
    for t in threads {
        let (i, (status, body)) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
        let want = if i % 2 == 0 { expected.as_str() } else { alone["predictions"][0]["class"].as_str().unwrap() };
        assert_eq!(body["predictions"][0]["class"], want, "{body}");
    }

    // A WAV header, for an image model the wrong kind of upload.
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    wav.extend_from_slice(&[0; 32]);
    // Multipart uploads: one file part answers as the raw body does; several answer a list in
    // the order sent, each with its file name and its own classes, batched together.
    let (status, body) = post(&addr, "/predict", FORM, &form(&[("file", Some("bag.png"), &png)]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only `predictions`: {body}");
    assert_eq!(body["predictions"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["predictions"][0]["class"], expected.as_str(), "{body}");
    let two = form(&[
        ("file", Some("bag.png"), &png),
        ("note", None, b"a plain form field, skipped"),
        ("file", Some("boot.png"), &boot_png),
    ]);
    let (status, body) = post(&addr, "/predict?top=2", FORM, &two);
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().expect("several files: a `files` list");
    assert_eq!(files.len(), 2, "{body}");
    assert_eq!(files[0]["file"], "bag.png", "{body}");
    assert_eq!(files[1]["file"], "boot.png", "{body}");
    assert_eq!(files[0]["predictions"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(files[0]["predictions"][0]["class"], expected.as_str(), "{body}");
    assert_eq!(files[1]["predictions"][0]["class"], alone["predictions"][0]["class"], "{body}");

    // Bad multipart uploads: a 4xx naming what is wrong.
    let wrong_boundary = "multipart/form-data; boundary=not-the-one-used";
    let bad_multipart: [(&str, Vec<u8>, u16, &str); 6] = [
        ("multipart/form-data", two.clone(), 400, "boundary"),
        (wrong_boundary, two.clone(), 400, "malformed multipart"),
        (FORM, two[..two.len() / 2].to_vec(), 400, "malformed multipart"),
        (FORM, form(&[("note", None, b"no file here")]), 400, "only form fields"),
        (FORM, form(&[("file", Some("bag.png"), &png), ("file", Some("notes.txt"), b"hello")]), 400, "`notes.txt`"),
        (FORM, form(&[("file", Some("clip.wav"), &wav)]), 415, "classifies image files"),
    ];
    for (content_type, body, want, message) in bad_multipart {
        let (status, answer) = post(&addr, "/predict", content_type, &body);
        assert_eq!(status, want, "{content_type}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(message), "{answer}");
    }
    let truncated = form(&[("file", Some("bag.png"), &png), ("file", Some("cut.png"), b"\x89PNG\r\n\x1a\ncut")]);
    let (status, body) = post(&addr, "/predict", FORM, &truncated);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("file `cut.png`: cannot read the upload"), "{body}");
    let head = format!("POST /predict HTTP/1.1\r\nContent-Type: {FORM}\r\nContent-Length: 1073741824");
    let (status, body) = request(&addr, &head, b"");
    assert_eq!(status, 413, "{body}");

    // Bad requests: a JSON error each, and the server stays up.
    let (status, body) = post(&addr, "/predict", "application/octet-stream", b"this is not an image");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a PNG"), "{body}");
    let (status, body) = post(&addr, "/predict", "image/png", b"\x89PNG\r\n\x1a\ntruncated");
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("cannot read the upload"), "{body}");
    let (status, body) = post(&addr, "/predict", "audio/wav", &wav);
    assert_eq!(status, 415, "{body}");
    assert!(body["error"].as_str().unwrap().contains("classifies image files"), "{body}");
    let (status, body) = post(&addr, "/predict", "text/plain", b"hello");
    assert_eq!(status, 415, "{body}");
    let (status, body) = post(&addr, "/predict?top=0", "image/png", &png);
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&addr, "/predict", "image/png", b"");
    assert_eq!(status, 400, "{body}");
    // Refused from the header: the gigabyte is never sent.
    let head = "POST /predict HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: 1073741824";
    let (status, body) = request(&addr, head, b"");
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    let (status, body) = request(&addr, "GET /nowhere HTTP/1.1", b"");
    assert_eq!(status, 404, "{body}");
    let (status, body) = request(&addr, "GET /predict HTTP/1.1", b"");
    assert_eq!(status, 405, "{body}");
    let (status, body) = request(&addr, "DELETE /model HTTP/1.1", b"");
    assert_eq!(status, 405, "{body}");
    let (status, _) = request(&addr, "GET /health HTTP/1.1", b"");
    assert_eq!(status, 200);

    // SIGTERM: a clean exit with status 0, its temporary files gone.
    let mut server = server;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("stopped after"), "{stderr}");
    assert!(!std::env::temp_dir().join(format!("kindling-serve-{pid}")).exists());
    std::fs::remove_dir_all(&tmp).unwrap();
}
