//! `parrot inspect FILE...`: parse each file as one SIP message and print a JSON verdict.

use bytes::Bytes;
use parrot_proto::{parse_stream, Message, ParseError, Parsed, StartLine};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `parrot inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Files, each holding one SIP message.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Apply the stream (TCP/TLS/WS) framing rules instead of the datagram (UDP) rules.
    #[arg(long)]
    stream: bool,
    /// Pretty-print each JSON object over several lines.
    #[arg(long)]
    pretty: bool,
}

pub fn run(args: &Args) -> ExitCode {
    let mut all_valid = true;
    for path in &args.files {
        let bytes = match std::fs::read(path) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                eprintln!("parrot inspect: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let verdict = inspect(&path.display().to_string(), bytes, args.stream);
        all_valid &= verdict["valid"] == Value::Bool(true);
        let line = if args.pretty {
            serde_json::to_string_pretty(&verdict)
        } else {
            serde_json::to_string(&verdict)
        };
        println!("{}", line.unwrap_or_default());
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The JSON verdict for one file.
pub fn inspect(file: &str, bytes: Bytes, stream: bool) -> Value {
    let mut out = Map::new();
    out.insert("file".into(), json!(file));
    let parsed = if stream {
        match parse_stream(&bytes) {
            Ok(Parsed::Complete(m, used)) => {
                out.insert("bytes_used".into(), json!(used));
                Ok(Some(m))
            }
            Ok(Parsed::Partial) => Ok(None),
            Ok(Parsed::KeepAlive { len, ping }) => {
                out.insert("valid".into(), json!(true));
                out.insert("kind".into(), json!(if ping { "ping" } else { "pong" }));
                out.insert("bytes_used".into(), json!(len));
                return Value::Object(out);
            }
            Err(e) => Err(e),
        }
    } else {
        Message::parse(bytes).map(Some)
    };
    match parsed {
        Ok(None) => {
            out.insert("valid".into(), json!(false));
            out.insert(
                "error".into(),
                json!("incomplete: the stream needs more bytes (Content-Length not reached)"),
            );
            out.insert("response".into(), Value::Null);
        }
        Ok(Some(m)) => {
            describe(&m, &mut out);
            match m.validate() {
                Ok(()) => {
                    out.insert("valid".into(), json!(true));
                }
                Err(e) => error(&e, &mut out),
            }
        }
        Err(e) => error(&e, &mut out),
    }
    Value::Object(out)
}

fn describe(m: &Message, out: &mut Map<String, Value>) {
    match m.start_line() {
        StartLine::Request { method, uri } => {
            out.insert("kind".into(), json!("request"));
            out.insert("method".into(), json!(method.as_str()));
            out.insert("request_uri".into(), json!(uri));
        }
        StartLine::Response { code, reason } => {
            out.insert("kind".into(), json!("response"));
            out.insert("status".into(), json!(code));
            out.insert("reason".into(), json!(reason));
        }
    }
    out.insert("call_id".into(), json!(m.call_id().ok()));
    out.insert("headers".into(), json!(m.header_count()));
    out.insert("body_bytes".into(), json!(m.body_slice().len()));
}

fn error(e: &ParseError, out: &mut Map<String, Value>) {
    out.insert("valid".into(), json!(false));
    out.insert("error".into(), json!(e.to_string()));
    out.insert("response".into(), json!(e.response_code()));
    if !out.contains_key("kind") {
        if let Some(r) = e.is_request() {
            out.insert("kind".into(), json!(if r { "request" } else { "response" }));
        }
    }
}
