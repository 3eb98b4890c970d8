//! `parrot inspect` from the outside: JSON per file, exit codes, stream framing.

use std::process::Command;

fn corpus(name: &str) -> String {
    format!(
        "{}/../conformance/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn inspect(args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_parrot"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap(), lines)
}

#[test]
fn valid_messages_exit_zero_with_one_json_object_each() {
    let (code, v) = inspect(&[&corpus("wsinv"), &corpus("noreason")]);
    assert_eq!(code, 0);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["kind"], "request");
    assert_eq!(v[0]["method"], "INVITE");
    assert_eq!(v[0]["call_id"], "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(v[0]["headers"], 14);
    assert_eq!(v[1]["kind"], "response");
    assert_eq!(v[1]["status"], 100);
}

#[test]
fn invalid_messages_say_why_and_what_a_uas_answers() {
    let (code, v) = inspect(&[&corpus("wsinv"), &corpus("badvers"), &corpus("bigcode")]);
    assert_eq!(code, 1);
    assert_eq!(v[1]["valid"], false);
    assert_eq!(v[1]["response"], 505);
    assert!(v[1]["error"].as_str().unwrap().contains("SIP/2.0"));
    assert_eq!(
        v[2]["response"],
        serde_json::Value::Null,
        "bad responses are dropped"
    );
}

#[test]
fn stream_framing_needs_content_length() {
    let (code, v) = inspect(&["--stream", &corpus("inv2543")]);
    assert_eq!(code, 1);
    assert_eq!(v[0]["response"], 400);
    let (code, v) = inspect(&["--stream", &corpus("wsinv")]);
    assert_eq!((code, &v[0]["valid"]), (0, &serde_json::Value::Bool(true)));
}

#[test]
fn usage_errors_exit_two() {
    let out = Command::new(env!("CARGO_BIN_EXE_parrot"))
        .args(["inspect", "/nonexistent/file.sip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = Command::new(env!("CARGO_BIN_EXE_parrot"))
        .arg("inspect")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn pretty_output_spans_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_parrot"))
        .args(["inspect", "--pretty", &corpus("esc01")])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 5);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["valid"], true);
}
