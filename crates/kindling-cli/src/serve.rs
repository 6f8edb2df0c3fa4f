//! `kindling serve`: a finished run's model behind HTTP.
//!
//! - `POST /predict[?top=K]` with an image (PNG, JPEG, BMP, GIF, WebP) or WAV file as the raw
//!   body: `{"predictions":[{"class":"Bag","probability":0.93},...]}`, the `K` (default 3)
//!   most probable classes.
//! - `POST /predict[?top=K]` with a `multipart/form-data` body (`curl -F file=@bag.png`, an HTML
//!   form): every file part is predicted. One file part answers exactly as the raw body does;
//!   several answer `{"files":[{"file":"bag.png","predictions":[...]},...]}`, one entry per
//!   file part in the order sent, `file` being the part's file name. Parts without a file name
//!   (plain form fields) are skipped. A request is answered whole or refused whole: when one of
//!   its files is refused, the error names it and no prediction is sent.
//! - `GET /health`: `{"status":"ok"}`.
//! - `GET /model`: the run's name, pipeline, input kind, classes, input shape and layers.
//!
//! Every error is a JSON `{"error":"..."}` with a 4xx status (5xx only for a failure of the
//! model itself), and the server stays up.
//!
//! The server is `tiny_http`: synchronous, no async runtime, four small dependencies, and
//! enough for an endpoint whose time goes into the forward pass, not into connection handling.
//! Multipart bodies are parsed by `multer` (see [`multipart`]).
//! Requests are taken by a pool of handler threads, which read and check the upload, write its
//! files to this server's temporary directory (the run's input reader reads paths, so a file
//! named by a counter, removed after the answer, is simple and exactly the path `kindling
//! predict` takes) and queue them, one job per request, for the inference worker. The worker
//! is the main thread, which owns the model (burn's tensors need not be `Sync`): it takes
//! every request waiting, up to `--max-batch` files, classifies their files in forward passes
//! of at most `--max-batch` and answers each request. A pass with an unreadable file is
//! retried one file at a time, so one bad upload fails alone.
//!
//! SIGINT and SIGTERM (through `signal-hook`, no unsafe code here) stop the handlers from taking
//! new requests; those already taken are answered, then the process exits with status 0. A
//! second SIGINT ends it at once.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use kindling_core::{Dataset, DeviceChoice, Registry};
use kindling_pipeline::Overrides;
use kindling_train::infer::{ClassScore, InferError, Predictor};
use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

mod multipart;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// The port to listen on (0: any free port; the first line printed names it).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on (`0.0.0.0` for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The most requests classified in one forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    max_batch: u16,
    /// The largest upload accepted, in MiB (larger ones get 413).
    #[arg(long, default_value_t = 16)]
    max_body_mib: u64,
    /// Device: auto (a GPU through wgpu when one exists, else CPU), cpu or wgpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// What a run's data stage reads, so an upload of the other kind is refused up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Image,
    Audio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Audio => "audio",
        }
    }
}

/// One request's files waiting for the worker, which answers each, in order.
struct Job {
    files: Vec<PathBuf>,
    reply: mpsc::Sender<Vec<Answer>>,
}

/// The worker's answer: every class, most probable first, or a status and message.
type Answer = std::result::Result<Vec<ClassScore>, (u16, String)>;

/// What the handlers share.
struct Shared {
    stop: Arc<AtomicBool>,
    counter: AtomicU64,
    tmp: PathBuf,
    kind: Option<Kind>,
    classes: usize,
    max_body: u64,
    model: Value,
}

pub(crate) fn run(registry: &Registry, a: ServeArgs) -> Result<ExitCode> {
    let run_dir = &a.run;
    // A packaged run (model.json) serves from its package alone; an older run is rebuilt from
    // its config.yaml, which needs the data it was trained on.
    let (predictor, shape, pipeline, kind, layers) = match crate::eval::package(run_dir)? {
        Some(package) => {
            let predictor = crate::eval::open_package(run_dir, &package, a.device)?;
            let kind = match package.input_kind() {
                Some("image") => Some(Kind::Image),
                Some("audio") => Some(Kind::Audio),
                _ => None,
            };
            // Runs live in `<runs-dir>/<pipeline>/<run-id>`.
            let pipeline = run_dir
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()));
            let shape = Some(package.model.input.clone());
            (predictor, shape, pipeline, kind, Some(package.model.layers.clone()))
        }
        None => {
            let overrides = Overrides { device: Some(a.device), ..Overrides::default() };
            let artifacts = kindling_pipeline::reopen(run_dir, registry, &overrides)?;
            let shape = artifacts.get::<Dataset>().map(|d| d.shape.clone());
            let predictor = Predictor::from_artifacts(artifacts, run_dir)?;
            let (pipeline, kind) = describe(registry, run_dir);
            let layers = std::fs::read_to_string(run_dir.join("model.pytorch.json"))
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| v.get("layers").cloned());
            (predictor, shape, pipeline, kind, layers)
        }
    };
    let run_name = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run_dir.display().to_string());
    let max_batch = usize::from(a.max_batch);
    let max_body = a.max_body_mib.saturating_mul(1 << 20);
    let model = json!({
        "run": run_name,
        "pipeline": pipeline,
        "kind": kind.map(Kind::name),
        "classes": predictor.classes(),
        "input_shape": shape,
        "layers": layers,
        "max_batch": max_batch,
        "max_body_bytes": max_body,
    });

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets `stop`; a second SIGINT (the flag already set) exits at once.
        if signal == signal_hook::consts::SIGINT {
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        }
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let server = Server::http((a.host.as_str(), a.port))
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", a.host, a.port))?;
    let addr = server.server_addr().to_ip().context("the server is not on an IP address")?;
    let tmp = std::env::temp_dir().join(format!("kindling-serve-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let shared =
        Shared { stop, counter: AtomicU64::new(0), tmp, kind, classes: predictor.classes().len(), max_body, model };
    println!("listening on http://{addr}");
    eprintln!(
        "serving {} ({} classes); POST /predict, GET /model, GET /health; Ctrl-C stops",
        run_dir.display(),
        shared.classes
    );

    let (tx, rx) = mpsc::channel::<Job>();
    let mut passes = 0_u64;
    std::thread::scope(|scope| {
        // Enough handlers to fill two batches while one runs.
        for _ in 0..(2 * max_batch).max(4) {
            let tx = tx.clone();
            let (server, shared) = (&server, &shared);
            scope.spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(request)) => handle(request, shared, &tx),
                        Ok(None) => {}
                        Err(e) => eprintln!("warning: a connection failed: {e}"),
                    }
                }
            });
        }
        drop(tx);
        // The worker: ends when every handler has stopped (and dropped its sender).
        while let Ok(first) = rx.recv() {
            let mut files = first.files.len();
            let mut batch = vec![first];
            while files < max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        files += job.files.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            passes += classify(&predictor, batch, max_batch);
        }
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&shared.tmp);
    eprintln!("stopped after {} uploaded file(s) in {passes} batch(es)", shared.counter.load(Ordering::Relaxed));
    Ok(ExitCode::SUCCESS)
}

/// The run's pipeline name, and the kind of file its data stage reads (from the plugin that
/// provides it; `None` for a stage of another plugin, whose uploads are not checked).
fn describe(registry: &Registry, run_dir: &Path) -> (Option<String>, Option<Kind>) {
    let Ok(plan) = kindling_pipeline::load(&run_dir.join("config.yaml"), registry, &[]) else {
        return (None, None);
    };
    let kind = plan.stages.iter().find_map(|s| {
        registry.iter().find(|(_, def)| def.name == s.kind).and_then(|(plugin, _)| match plugin {
            "vision" => Some(Kind::Image),
            "audio" => Some(Kind::Audio),
            _ => None,
        })
    });
    (Some(plan.name), kind)
}

/// Classifies the files of every job of `batch` in forward passes of at most `max_batch` files,
/// answers every job, and returns the number of passes. When a pass fails, its files are tried
/// again one at a time, so a bad upload fails only its own answer.
fn classify(predictor: &Predictor, batch: Vec<Job>, max_batch: usize) -> u64 {
    let files: Vec<PathBuf> = batch.iter().flat_map(|j| j.files.iter().cloned()).collect();
    let mut answers = Vec::with_capacity(files.len());
    let mut passes = 0;
    for chunk in files.chunks(max_batch.max(1)) {
        passes += 1;
        match predict(predictor, chunk) {
            Ok(predictions) => answers.extend(predictions.into_iter().map(Ok)),
            Err(e) if chunk.len() == 1 => answers.push(Err(e)),
            Err(_) => answers.extend(chunk.iter().map(|file| {
                predict(predictor, std::slice::from_ref(file))
                    .and_then(|mut p| p.pop().ok_or((500, "the model gave no prediction".to_owned())))
            })),
        }
    }
    let mut answers = answers.into_iter();
    for job in batch {
        let mine = answers.by_ref().take(job.files.len()).collect();
        let _ = job.reply.send(mine);
    }
    passes
}

/// The predictor on `files`, with its errors as statuses and messages. A panic in the model is
/// caught and answered 500, so no request can take the server down.
fn predict(predictor: &Predictor, files: &[PathBuf]) -> std::result::Result<Vec<Vec<ClassScore>>, (u16, String)> {
    match catch_unwind(AssertUnwindSafe(|| predictor.predict(files))) {
        Ok(Ok(predictions)) if predictions.len() == files.len() => {
            Ok(predictions.into_iter().map(|p| p.scores).collect())
        }
        Ok(Ok(_)) => Err((500, "the model gave the wrong number of predictions".to_owned())),
        Ok(Err(InferError::Read(e))) => {
            // The message names the temporary file; the client knows it as its upload.
            let mut message = e.to_string();
            for f in files {
                let path = f.display().to_string();
                message = message.replace(&format!("{path}: "), "").replace(&path, "the upload");
            }
            Err((422, format!("cannot read the upload: {message}")))
        }
        Ok(Err(e)) => Err((500, format!("inference failed: {e}"))),
        Err(_) => Err((500, "inference failed (the model panicked)".to_owned())),
    }
}

/// Answers one request.
fn handle(mut request: Request, shared: &Shared, tx: &mpsc::Sender<Job>) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let method = request.method().clone();
    let response = match (path, &method) {
        ("/health", Method::Get | Method::Head) => reply(200, &json!({"status": "ok"})),
        ("/model", Method::Get | Method::Head) => reply(200, &shared.model),
        ("/predict", Method::Post) => match predict_request(&mut request, query, shared, tx) {
            Ok(body) => reply(200, &body),
            Err((status, message)) => error(status, &message),
        },
        ("/health" | "/model", _) => error(405, &format!("{method} {path}: use GET")),
        ("/predict", _) => {
            error(405, &format!("{method} {path}: use POST with the file as the body or as multipart/form-data"))
        }
        _ => error(404, &format!("no such endpoint `{path}` (POST /predict, GET /model, GET /health)")),
    };
    // A client that went away is no concern of the server's.
    let _ = request.respond(response);
}

/// `POST /predict`: checks, reads and queues the upload's files, and waits for their classes.
fn predict_request(
    request: &mut Request,
    query: &str,
    shared: &Shared,
    tx: &mpsc::Sender<Job>,
) -> std::result::Result<Value, (u16, String)> {
    let top = top(query, shared.classes)?;
    let header = request.headers().iter().find(|h| h.field.equiv("Content-Type")).map(|h| h.value.as_str().to_owned());
    let content_type = header.as_deref().map(|h| h.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let (multipart, declared) = match content_type.as_deref() {
        None | Some("application/octet-stream") => (false, None),
        Some("multipart/form-data") => (true, None),
        Some(t) if t.starts_with("image/") => (false, Some(Kind::Image)),
        Some("audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave") => (false, Some(Kind::Audio)),
        Some(t) => {
            return Err((
                415,
                format!(
                    "content type `{t}` is not accepted: send the file as the raw body with image/png, image/jpeg, audio/wav or application/octet-stream, or as multipart/form-data"
                ),
            ));
        }
    };
    if let Some(kind) = declared {
        refuse_other_kind(kind, shared.kind)?;
    }
    // Refused from the header, before a byte of the body is read.
    if let Some(length) = request.body_length()
        && length as u64 > shared.max_body
    {
        return Err((413, format!("the upload is {length} bytes; the limit is {} bytes", shared.max_body)));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(shared.max_body + 1)
        .read_to_end(&mut body)
        .map_err(|e| (400, format!("cannot read the request body: {e}")))?;
    if body.len() as u64 > shared.max_body {
        return Err((413, format!("the upload is over the limit of {} bytes", shared.max_body)));
    }
    if body.is_empty() {
        return Err((400, "the body is empty: send the image or WAV file as the request body".to_owned()));
    }

    // The files, each with the name an error calls it by and its usual extension.
    let mut uploads = Vec::new();
    if multipart {
        let parts = multipart::file_parts(header.as_deref().unwrap_or(""), body)?;
        let several = parts.len() > 1;
        for part in parts {
            let named = |(status, message): (u16, String)| (status, format!("file `{}`: {message}", part.file_name));
            if part.bytes.is_empty() {
                return Err(named((400, "the file part is empty".to_owned())));
            }
            let (kind, ext) = sniff(&part.bytes)
                .ok_or_else(|| named((400, "is not a PNG, JPEG, BMP, GIF, WebP or WAV file".to_owned())))?;
            refuse_other_kind(kind, shared.kind).map_err(named)?;
            let name = several.then(|| part.file_name.clone());
            uploads.push((name, ext, part.bytes));
        }
    } else {
        let Some((kind, ext)) = sniff(&body) else {
            return Err((
                400,
                "the body is not a PNG, JPEG, BMP, GIF, WebP or WAV file (send the file itself as the body, or a multipart/form-data upload)"
                    .to_owned(),
            ));
        };
        refuse_other_kind(kind, shared.kind)?;
        uploads.push((None, ext, body));
    }

    // The request's files go to the worker as one job, so they are classified together.
    let mut stored = Vec::new();
    for (name, ext, bytes) in uploads {
        let n = shared.counter.fetch_add(1, Ordering::Relaxed);
        let file = shared.tmp.join(format!("{n}.{ext}"));
        let written = std::fs::write(&file, &bytes);
        stored.push((name, file));
        if let Err(e) = written {
            for (_, file) in &stored {
                let _ = std::fs::remove_file(file);
            }
            return Err((500, format!("cannot store the upload: {e}")));
        }
    }
    let (reply, answer) = mpsc::channel();
    let job = Job { files: stored.iter().map(|(_, file)| file.clone()).collect(), reply };
    let answers = tx.send(job).ok().and_then(|()| answer.recv().ok());
    for (_, file) in &stored {
        let _ = std::fs::remove_file(file);
    }
    let answers = answers.ok_or((503, "the server is stopping".to_owned()))?;
    if answers.len() != stored.len() {
        return Err((500, "the model gave the wrong number of predictions".to_owned()));
    }
    let mut answered = Vec::new();
    for ((name, _), scores) in stored.into_iter().zip(answers) {
        // The first file refused is the answer.
        match scores {
            Ok(scores) => answered.push((name, scores)),
            Err((status, message)) => {
                let message = match name {
                    Some(name) => format!("file `{name}`: {message}"),
                    None => message,
                };
                return Err((status, message));
            }
        }
    }
    let predictions = |scores: &[ClassScore]| -> Vec<Value> {
        scores.iter().take(top).map(|s| json!({"class": s.class, "probability": s.probability})).collect()
    };
    Ok(match answered.as_slice() {
        [(None, scores)] => json!({ "predictions": predictions(scores) }),
        several => json!({
            "files": several
                .iter()
                .map(|(name, scores)| json!({"file": name, "predictions": predictions(scores)}))
                .collect::<Vec<_>>()
        }),
    })
}

/// `?top=K`: how many classes to answer (default 3, at most the model's classes).
fn top(query: &str, classes: usize) -> std::result::Result<usize, (u16, String)> {
    let mut top = 3;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("top", v)) => {
                top = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&k| k >= 1)
                    .ok_or_else(|| (400, format!("`top={v}`: expected a whole number of classes, at least 1")))?;
            }
            _ => return Err((400, format!("unknown query parameter `{pair}` (only `top=K`)"))),
        }
    }
    Ok(top.min(classes.max(1)))
}

/// 415 when the upload is of the other kind than the model reads.
fn refuse_other_kind(upload: Kind, model: Option<Kind>) -> std::result::Result<(), (u16, String)> {
    match model {
        Some(model) if model != upload => Err((
            415,
            format!("this run's model classifies {} files; the upload is an {} file", model.name(), upload.name()),
        )),
        _ => Ok(()),
    }
}

/// The kind and usual extension of a file, from its first bytes.
fn sniff(body: &[u8]) -> Option<(Kind, &'static str)> {
    let riff = |tag: &[u8]| body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == tag;
    if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((Kind::Image, "png"))
    } else if body.starts_with(&[0xff, 0xd8, 0xff]) {
        Some((Kind::Image, "jpg"))
    } else if body.starts_with(b"GIF87a") || body.starts_with(b"GIF89a") {
        Some((Kind::Image, "gif"))
    } else if body.starts_with(b"BM") && body.len() > 26 {
        Some((Kind::Image, "bmp"))
    } else if riff(b"WEBP") {
        Some((Kind::Image, "webp"))
    } else if riff(b"WAVE") {
        Some((Kind::Audio, "wav"))
    } else {
        None
    }
}

fn reply(status: u16, body: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let response = Response::from_string(body.to_string()).with_status_code(status);
    match Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

fn error(status: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    reply(status, &json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_accepted_formats_and_nothing_else() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some((Kind::Image, "png")));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some((Kind::Audio, "wav")));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some((Kind::Image, "webp")));
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some((Kind::Image, "jpg")));
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF"), None);
    }

    #[test]
    fn top_defaults_to_3_caps_at_the_classes_and_refuses_nonsense() {
        assert_eq!(top("", 10), Ok(3));
        assert_eq!(top("top=5", 10), Ok(5));
        assert_eq!(top("top=50", 10), Ok(10));
        assert_eq!(top("top=0", 10).map_err(|e| e.0), Err(400));
        assert_eq!(top("top=x", 10).map_err(|e| e.0), Err(400));
        assert_eq!(top("k=1", 10).map_err(|e| e.0), Err(400));
    }
}
