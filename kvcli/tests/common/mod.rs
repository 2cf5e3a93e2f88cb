//! Helpers shared by the integration tests: running the real `kvcli` binary.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of kvcli did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The kvcli binary, with no history file and no inherited log settings.
pub fn kvcli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvcli"));
    cmd.env("KVCLI_HISTORY", "").env_remove("KVCLI_LOG");
    cmd
}

fn finish(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("kvcli starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Written from a thread so a large input cannot deadlock against the output.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().expect("kvcli runs");
    Run {
        code: out.status.code().expect("kvcli exits normally"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `kvcli DIR ARGS...` with no standard input.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = kvcli();
    cmd.arg(dir).args(args);
    finish(cmd, None)
}

/// `kvcli ARGS...` (no directory argument) in `cwd`.
pub fn run_in(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = kvcli();
    cmd.current_dir(cwd).args(args);
    finish(cmd, None)
}

/// `kvcli DIR ARGS...` with `input` on standard input.
pub fn run_with_input(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    let mut cmd = kvcli();
    cmd.arg(dir).args(args);
    finish(cmd, Some(input))
}

/// `kvcli DIR` reading `script` from a pipe.
pub fn script(dir: &Path, script: &str) -> Run {
    run_with_input(dir, &[], script.as_bytes())
}

/// Runs a one-shot command that must succeed, returning its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let run = run(dir, args);
    assert_eq!(run.code, 0, "kvcli {args:?}: {run:?}");
    run.stdout
}

/// Every file under `dir` with its contents, for before/after comparisons.
pub fn listing(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.insert(path.clone(), b"<dir>".to_vec());
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}
