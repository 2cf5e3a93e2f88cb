//! The REPL, driven through a pseudo-terminal: help, set/get, tab completion, history
//! across sessions, quit and Ctrl-D.

use std::path::Path;
use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;

const TIMEOUT_MS: u64 = 15_000;

/// What rustyline writes when it starts reading a line (bracketed paste on). Input
/// typed ahead of it can be lost with the previous line's read buffer, as when a
/// person types during a slow command, so the tests wait for it before each line.
const READY: &str = "\x1b[?2004h";

/// Types `line` and Enter, and returns what was written until the next prompt.
fn command(p: &mut PtySession, line: &str) -> String {
    p.send_line(line).unwrap();
    p.exp_string(READY).unwrap()
}

fn start(dir: &Path, history: &Path) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvcli"));
    cmd.arg(dir)
        .env("KVCLI_HISTORY", history)
        .env("TERM", "xterm")
        .env_remove("KVCLI_LOG");
    let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).expect("kvcli starts");
    p.exp_string("quit or Ctrl-D leaves.").unwrap();
    p.exp_string(READY).unwrap();
    p
}

fn exit_code(p: &mut PtySession) -> i32 {
    p.exp_eof().unwrap();
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("kvcli did not exit normally: {other:?}"),
    }
}

#[test]
fn a_session_with_help_set_get_completion_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let history = tmp.path().join("state").join("history");

    let mut p = start(&dir, &history);
    // Help tells what applies in the REPL: its keys, not exit statuses or scripts.
    let help = command(&mut p, "help");
    assert!(help.contains("Tab completes"), "{help}");
    assert!(!help.contains("Exit status"), "{help}");
    assert!(!help.contains("line N: error"), "{help}");
    for info in kvcli::cmd::COMMANDS {
        assert!(help.contains(info.about), "{}: {help}", info.name);
    }

    // The typed line is echoed with its spaces; the value prints compacted.
    command(&mut p, r#"set greeting {"n": 12345, "s": "hi there"}"#);
    let got = command(&mut p, "GET greeting");
    assert!(got.contains(r#"{"n":12345,"s":"hi there"}"#), "{got:?}");

    command(&mut p, "set a 1");
    assert!(command(&mut p, "incr a 41").contains("\r\n42\r\n"));
    assert!(command(&mut p, "get nothing").contains("not found: nothing"));
    let got = command(&mut p, "frobnicate");
    assert!(
        got.contains("error: unknown command \"frobnicate\""),
        "{got:?}"
    );
    let got = command(&mut p, "scan");
    assert!(got.contains("did you mean `keys`?"), "{got:?}");

    // Tab completes a command name.
    p.send("cou\t").unwrap();
    p.flush().unwrap();
    p.exp_string("count").unwrap();
    let got = command(&mut p, "");
    assert!(got.contains("\r\n2\r\n"), "{got:?}");

    // Tab completes key names after a command that takes a key, quoting them when
    // they need it.
    p.send("get gre\t").unwrap();
    p.flush().unwrap();
    p.exp_string("greeting").unwrap();
    let got = command(&mut p, "");
    assert!(got.contains(r#"{"n":12345,"s":"hi there"}"#), "{got:?}");
    command(&mut p, "set 'two words' 2");
    p.send("incr tw\t").unwrap();
    p.flush().unwrap();
    p.exp_string("'two words'").unwrap();
    let got = command(&mut p, "");
    assert!(got.contains("\r\n3\r\n"), "{got:?}");
    // The completer's handle on the store is gone once the line runs: repair can
    // close and reopen the directory.
    let got = command(&mut p, "repair");
    assert!(got.contains("nothing to repair"), "{got:?}");

    p.send_line("quit").unwrap();
    assert_eq!(exit_code(&mut p), 0);

    let saved = std::fs::read_to_string(&history).expect("history saved");
    for line in ["help", "set a 1", "incr a 41", "quit"] {
        assert!(saved.lines().any(|l| l == line), "{line:?} in {saved:?}");
    }

    // A new session recalls the last session's lines: ten times up is `incr a 41`
    // (before get nothing, frobnicate, scan, count, get greeting, set 'two words' 2,
    // incr 'two words', repair and quit).
    let mut p = start(&dir, &history);
    p.send(&"\x1b[A".repeat(10)).unwrap();
    p.flush().unwrap();
    p.exp_string("incr a 41").unwrap();
    assert!(command(&mut p, "").contains("\r\n83\r\n"));
    // Ctrl-D leaves with status 0, and the change is on disk.
    p.send_control('d').unwrap();
    assert_eq!(exit_code(&mut p), 0);

    let out = Command::new(env!("CARGO_BIN_EXE_kvcli"))
        .arg(&dir)
        .args(["get", "a"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "83\n");
}

#[test]
fn a_held_directory_is_refused_before_the_prompt() {
    let tmp = tempfile::tempdir().unwrap();
    let _held = kvcore::StoreBuilder::new()
        .open::<kvcore::JsonText>(tmp.path(), kvcore::persist::PersistOptions::default())
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvcli"));
    cmd.arg(tmp.path())
        .env("KVCLI_HISTORY", "")
        .env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
    p.exp_string("is in use by process").unwrap();
    assert_eq!(exit_code(&mut p), 2);
}
