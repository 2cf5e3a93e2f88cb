//! One-shot commands, piped scripts, a held directory and repair, through the real
//! binary.

mod common;

use common::{listing, ok, run, run_in, script};
use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{JsonText, Store, StoreBuilder};

#[test]
fn values_are_stored_as_json_or_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (value, shown) in [
        ("hello", r#""hello""#),
        ("42", "42"),
        (
            r#"{"a": 1, "b": [true, null]}"#,
            r#"{"a":1,"b":[true,null]}"#,
        ),
        (r#""42""#, r#""42""#),
        ("hello world", r#""hello world""#),
        ("{oops", r#""{oops""#),
        ("-1.50", "-1.50"),
    ] {
        assert_eq!(ok(d, &["set", "k", value]), "", "set {value}");
        assert_eq!(
            ok(d, &["get", "k"]),
            format!("{shown}\n"),
            "get after set {value}"
        );
    }
    // Command names are case-insensitive.
    assert_eq!(ok(d, &["GET", "k"]), "-1.50\n");
}

#[test]
fn missing_keys_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "here", "1"]);
    for args in [
        &["get", "gone"][..],
        &["del", "gone"],
        &["ttl", "gone"],
        &["expire", "gone", "10"],
        &["persist", "gone"],
    ] {
        let r = run(d, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.stdout, "", "{args:?}");
        assert_eq!(r.stderr, "not found: gone\n", "{args:?}");
    }
    let r = run(d, &["exists", "gone"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (1, "false\n", "")
    );
    assert_eq!(ok(d, &["exists", "here"]), "true\n");
    assert_eq!(ok(d, &["del", "here"]), "");
    assert_eq!(run(d, &["get", "here"]).code, 1);
}

#[test]
fn ttl_expire_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "k", "v", "ttl", "100"]);
    let left: f64 = ok(d, &["ttl", "k"]).trim().parse().unwrap();
    assert!(left > 90.0 && left <= 100.0, "{left}");
    ok(d, &["expire", "k", "50.5"]);
    let out = ok(d, &["ttl", "k"]);
    let left: f64 = out.trim().parse().unwrap();
    assert!(left > 40.0 && left <= 50.5, "{left}");
    assert_eq!(out.trim().split('.').nth(1).map(str::len), Some(3), "{out}");
    ok(d, &["persist", "k"]);
    assert_eq!(ok(d, &["ttl", "k"]), "none\n");
    // A plain set clears a TTL, as in Redis.
    ok(d, &["set", "k", "v", "TTL", "100"]);
    ok(d, &["set", "k", "w"]);
    assert_eq!(ok(d, &["ttl", "k"]), "none\n");
    for bad in ["0", "-1", "x", "315360001"] {
        let r = run(d, &["expire", "k", bad]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.starts_with("error: SECONDS must be"), "{r:?}");
    }
}

#[test]
fn incr_count_keys_clear_stats_compact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ok(d, &["incr", "n"]), "1\n");
    assert_eq!(ok(d, &["incr", "n", "41"]), "42\n");
    assert_eq!(ok(d, &["incr", "n", "-50"]), "-8\n");
    ok(d, &["set", "s", "text"]);
    let r = run(d, &["incr", "s"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not an integer"), "{r:?}");

    for key in ["user:2", "user:1", "admin", "user:10"] {
        ok(d, &["set", key, "{}"]);
    }
    assert_eq!(ok(d, &["keys"]), "admin\nn\ns\nuser:1\nuser:10\nuser:2\n");
    assert_eq!(ok(d, &["keys", "user:?"]), "user:1\nuser:2\n");
    assert_eq!(ok(d, &["keys", "user:*"]), "user:1\nuser:10\nuser:2\n");
    assert_eq!(ok(d, &["keys", "nothing*"]), "");
    let r = run(d, &["keys", "[oops"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid pattern"), "{r:?}");

    assert_eq!(ok(d, &["count"]), "6\n");
    let stats = ok(d, &["stats"]);
    assert!(stats.starts_with("keys 6\nhits "), "{stats}");
    for field in [
        "misses",
        "expirations",
        "evictions",
        "journal_bytes",
        "snapshot_bytes",
    ] {
        assert!(stats.contains(&format!("\n{field} ")), "{field}: {stats}");
    }
    let compacted = ok(d, &["compact"]);
    assert!(compacted.starts_with("compacted: 6 keys"), "{compacted}");
    assert!(!ok(d, &["stats"]).contains("\nsnapshot_bytes 0\n"));
    assert_eq!(ok(d, &["get", "n"]), "-8\n");
    assert_eq!(ok(d, &["clear"]), "6\n");
    assert_eq!(ok(d, &["count"]), "0\n");
}

#[test]
fn usage_errors_exit_2_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    for (args, message) in [
        (&["frobnicate"][..], "error: unknown command \"frobnicate\""),
        (&["get"], "error: usage: get KEY"),
        (&["set", "k"], "error: usage: set KEY VALUE [ttl SECONDS]"),
        (&["set", "k", "v", "for", "3"], "error: usage: set KEY"),
        (&["incr", "k", "1.5"], "error: BY must be"),
        (
            &["import", "x.txt"],
            "error: cannot tell the format of x.txt",
        ),
        (
            &["export", "x.csv", "--format", "yaml"],
            "error: unknown dataset format",
        ),
    ] {
        let r = run(&d, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with(message), "{args:?}: {r:?}");
    }
    // A read-only command on a missing directory is an error and creates nothing...
    for args in [&["get", "k"][..], &["count"], &["keys"], &["repair"]] {
        let r = run(&d, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("does not exist"), "{args:?}: {r:?}");
    }
    assert!(!d.exists());
    // ...while a write creates the directory.
    ok(&d, &["set", "k", "1"]);
    assert!(d.join("LOCK").exists());

    let r = run(&d, &["--format", "csv", "get", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--format applies only"), "{r:?}");
    // Arguments after the command are the command's, even when they look like flags.
    assert_eq!(ok(&d, &["incr", "k", "-3"]), "-2\n");
}

#[test]
fn the_directory_defaults_to_kvdata() {
    let cwd = tempfile::tempdir().unwrap();
    let r = run_in(cwd.path(), &["set", "a", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(cwd.path().join("kvdata").join("LOCK").exists());
    assert_eq!(run_in(cwd.path(), &["get", "a"]).stdout, "1\n");
    assert_eq!(run_in(cwd.path(), &["COUNT"]).stdout, "1\n");
    // An existing directory named like a command is a directory.
    std::fs::create_dir(cwd.path().join("count")).unwrap();
    assert_eq!(run_in(cwd.path(), &["count", "count"]).stdout, "0\n");
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let r = common::kvcli().arg("--help").output().unwrap();
    assert_eq!(r.status.code(), Some(0));
    let help = String::from_utf8(r.stdout).unwrap();
    for info in kvcli::cmd::COMMANDS {
        let usage = format!("  {} {}", info.name, info.args);
        assert!(help.contains(usage.trim_end()), "{usage}\n{help}");
        assert!(help.contains(info.about), "{}", info.about);
    }
    assert!(help.contains("Exit status of one command: 0 done, 1 key not found"));
    assert!(help.contains("line N: error:"));
    // `help` as a command prints the same list without opening anything.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("none");
    assert!(ok(&d, &["help"]).contains("  repair "));
    assert!(!d.exists());
}

#[test]
fn help_in_a_script_tells_how_scripts_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = script(dir.path(), "help\n");
    assert_eq!(r.code, 0, "{r:?}");
    for info in kvcli::cmd::COMMANDS {
        assert!(r.stdout.contains(info.about), "{}", info.name);
    }
    assert!(
        r.stdout.contains("In a script every line runs"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("Exit status of one command"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Tab completes"), "{}", r.stdout);
    // One-shot help keeps the exit statuses and piped mode.
    let one_shot = ok(dir.path(), &["help"]);
    assert!(
        one_shot.contains("Exit status of one command"),
        "{one_shot}"
    );
    assert!(!one_shot.contains("Tab completes"), "{one_shot}");
}

#[test]
fn unknown_commands_suggest_the_nearest_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    for (typed, meant) in [
        ("scan", "keys"),
        ("gett", "get"),
        ("DELETE", "del"),
        ("dbsize", "count"),
    ] {
        let r = run(&d, &[typed, "x"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert_eq!(
            r.stderr,
            format!(
                "error: unknown command {typed:?}: did you mean `{meant}`? run `help` (or \
                 kvcli --help) for the list\n"
            )
        );
    }
    assert!(!d.exists());
    let r = script(dir.path(), "set a 1\ngte a\ncount\n");
    assert_eq!(r.stdout, "1\n");
    assert_eq!(
        r.stderr,
        "line 2: error: unknown command \"gte\": did you mean `get`? run `help` (or kvcli \
         --help) for the list\n"
    );
}

#[test]
fn a_script_keeps_going_past_errors_and_names_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = script(
        d,
        "set a 1\n\
         # a comment, then a blank line\n\
         \n\
         incr a notanumber\n\
         incr a\n\
         get missing\n\
         set b \"two words\"\r\n\
         nosuchcommand x\n\
         get b\n",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "2\n\"two words\"\n");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stderr);
    assert!(
        lines[0].starts_with("line 4: error: BY must be"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "line 6: not found: missing");
    assert!(
        lines[2].starts_with("line 8: error: unknown command \"nosuchcommand\""),
        "{}",
        lines[2]
    );
}

#[test]
fn a_script_with_only_missing_keys_succeeds_and_quit_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = script(d, "set x 1\nget nope\nexists nope\nQUIT\nset y 2\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "false\n");
    assert_eq!(r.stderr, "line 2: not found: nope\n");
    assert_eq!(ok(d, &["keys"]), "x\n");
    // An error on the third line, with results around it.
    let r = script(d, "get x\nset z 3\nexpire z never\nget z\n");
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "1\n3\n");
    assert!(r.stderr.starts_with("line 3: error: SECONDS"), "{r:?}");
}

#[test]
fn a_held_directory_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "a", "1"]);
    let held = StoreBuilder::new()
        .open::<JsonText>(d, PersistOptions::default().fsync(Fsync::Always))
        .unwrap();
    let before = listing(d);
    let message = format!(
        "error: data directory {} is in use by process {}; stop that process or choose another directory\n",
        d.display(),
        std::process::id()
    );
    for args in [
        &["get", "a"][..],
        &["set", "a", "2"],
        &["clear"],
        &["repair"],
        &["compact"],
    ] {
        let r = run(d, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr, message, "{args:?}");
        assert_eq!(r.stdout, "");
    }
    let r = script(d, "set a 3\nclear\n");
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stderr, message);
    assert_eq!(listing(d), before, "kvcli changed a held directory");
    drop(held);
    assert_eq!(ok(d, &["get", "a"]), "1\n");
}

#[test]
fn repair_fixes_a_journal_damaged_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "first", "1"]);
    ok(d, &["set", "second", "2"]);
    ok(d, &["set", "third", "\"DAMAGED-HERE\""]);
    ok(d, &["set", "fourth", "4"]);
    ok(d, &["set", "fifth", "5"]);
    let journal = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "kvj"))
        .unwrap();
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"DAMAGED-HERE")
        .unwrap();
    bytes[at + 3] ^= 0x20;
    std::fs::write(&journal, &bytes).unwrap();

    let r = run(d, &["get", "first"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("corrupt at byte offset"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("run `kvcli {} repair`", d.display())),
        "{r:?}"
    );

    let report = ok(d, &["repair"]);
    assert!(report.starts_with("truncated "), "{report}");
    assert!(report.contains(".kvj at byte "), "{report}");
    assert_eq!(ok(d, &["get", "first"]), "1\n");
    assert_eq!(ok(d, &["get", "second"]), "2\n");
    assert_eq!(run(d, &["get", "third"]).code, 1);
    assert_eq!(ok(d, &["count"]), "2\n");
    assert!(ok(d, &["repair"]).starts_with("nothing to repair"));
}

#[test]
fn a_script_can_repair_a_damaged_directory_and_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    script(d, "set a 1\nset b XXXXXXXX\nset c 3\n");
    let journal = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "kvj"))
        .unwrap();
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = bytes.windows(8).position(|w| w == b"XXXXXXXX").unwrap();
    bytes[at] = b'Y';
    std::fs::write(&journal, &bytes).unwrap();
    let r = script(d, "get a\nrepair\nget a\nset d 4\nkeys\n");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("line 1: error: "), "{r:?}");
    assert!(r.stderr.contains("repair"), "{r:?}");
    let out: Vec<&str> = r.stdout.lines().collect();
    assert!(out[0].starts_with("truncated "), "{r:?}");
    assert_eq!(&out[1..], ["1", "a", "d"]);
}

#[test]
fn values_a_redis_client_stored_show_as_json_and_stay_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let store = StoreBuilder::new()
            .open::<kvcore::Bytes>(d, PersistOptions::default().fsync(Fsync::Always))
            .unwrap();
        for (key, bytes) in [
            ("bin", &b"\x00\xffab"[..]),
            ("text", b"hello world"),
            ("spaced", br#"{ "a" : 1 }"#),
            ("n", b"41"),
        ] {
            store
                .set(key, kvcore::Bytes::from(bytes), kvcore::SetOptions::new())
                .unwrap();
        }
    }
    assert_eq!(ok(d, &["get", "bin"]), "{\"$base64\":\"AP9hYg==\"}\n");
    assert_eq!(ok(d, &["get", "text"]), "\"hello world\"\n");
    assert_eq!(ok(d, &["get", "spaced"]), "{\"a\":1}\n");
    assert_eq!(ok(d, &["incr", "n"]), "42\n");
    assert!(ok(d, &["check"]).ends_with("ok\n"));
    let exported = ok(d, &["export", "-"]);
    let mut lines: Vec<&str> = exported.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            r#"{"key":"bin","value":{"$base64":"AP9hYg=="}}"#,
            r#"{"key":"n","value":42}"#,
            r#"{"key":"spaced","value":{"a":1}}"#,
            r#"{"key":"text","value":"hello world"}"#,
        ]
    );
    // Reading, exporting and checking kept every byte.
    let store = StoreBuilder::new()
        .open::<kvcore::Bytes>(d, PersistOptions::default())
        .unwrap();
    assert_eq!(store.get("bin").unwrap().as_bytes(), b"\x00\xffab");
    assert_eq!(store.get("spaced").unwrap().as_bytes(), br#"{ "a" : 1 }"#);
    assert_eq!(store.get("n").unwrap().as_bytes(), b"42");
}
