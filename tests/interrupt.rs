//! `reproduce` against what users do to long runs (issue 22): two runs at once on the same
//! models, Ctrl-C or SIGTERM, `kill -9` of the parent or of one worker, and then the same
//! command again. Each run is the tiny `smoke` reproduction (two models on synthetic-5i, 60
//! steps each) so that the whole file takes seconds of training; the interrupts come when the
//! training log shows a given step, so no test depends on timing. Linux only (signals, /proc).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const STEPS: u64 = 60;
/// `reproduce` scales the schedule to the step budget: a checkpoint every quarter.
const CHECKPOINT_EVERY: u64 = STEPS / 4;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("srpnet-interrupt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `reproduce smoke` at the test budget into `out`.
fn reproduce(out: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reproduce"));
    c.args([
        "smoke",
        "--quiet",
        "--episodes",
        "2",
        "--seeds",
        "7",
        "--steps",
    ])
    .arg(STEPS.to_string())
    .args(args)
    .arg("--out")
    .arg(out)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The data rows of the smoke table (the provenance lines carry times and are left out).
fn rows(out: &Path) -> Vec<String> {
    let path = out.join("smoke.synthetic-5i.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let rows: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert!(rows.len() > 2, "{}: no rows", path.display());
    rows
}

/// The rows of an uninterrupted run, made once per test binary.
fn reference() -> Vec<String> {
    static ROWS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let out = out_dir("reference");
        check(
            &reproduce(&out, &["--jobs", "1"]).output().unwrap(),
            "reference run",
        );
        let r = rows(&out);
        let _ = std::fs::remove_dir_all(&out);
        r
    })
    .clone()
}

/// The run folders under `out/runs`.
fn run_folders(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join("runs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cache-key.json").is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// The last step in a run's training log (0 without one).
fn logged_step(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("train-log.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The step of a run's checkpoint (0 without one).
fn checkpoint_step(run: &Path) -> u64 {
    ["checkpoint", "checkpoint.old"]
        .iter()
        .find_map(|c| std::fs::read_to_string(run.join(c).join("state.json")).ok())
        .map_or(0, |t| {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            v["step"].as_u64().unwrap()
        })
}

/// Waits until some run under `out` has logged `step`; panics if `child` ends first.
fn wait_for_step(out: &Path, step: u64, child: &mut Child) {
    let start = Instant::now();
    while !run_folders(out).iter().any(|r| logged_step(r) >= step) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("reproduce ended ({status}) before step {step}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no step {step} in 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a process this test started (or its child, found in /proc).
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// The processes whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                // `pid (comm) state ppid ...`: the fields after the last ')'.
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Waits until nothing holds the lock of any run folder (every worker has exited).
fn wait_unlocked(out: &Path) {
    let start = Instant::now();
    for run in run_folders(out) {
        let file = std::fs::File::open(run.join("lock")).unwrap();
        while file.try_lock().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} stays locked",
                run.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        file.unlock().unwrap();
    }
}

/// No temporary file or checkpoint folder is left anywhere under `out`.
fn no_temporaries(out: &Path) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.file_name().unwrap().to_string_lossy().contains(".tmp") {
                found.push(p.clone());
            }
            if p.is_dir() {
                walk(&p, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(out, &mut found);
    assert!(found.is_empty(), "temporaries left: {found:?}");
}

/// Runs the same command again (1 or 2 jobs) and checks its numbers are the uninterrupted ones.
fn rerun_matches(out: &Path, jobs: &str) {
    check(
        &reproduce(out, &["--jobs", jobs]).output().unwrap(),
        "the rerun",
    );
    assert_eq!(
        rows(out),
        reference(),
        "the rerun differs from an uninterrupted run"
    );
    no_temporaries(out);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn two_runs_at_once_on_the_same_models_agree() {
    let out = out_dir("concurrent");
    // One in worker processes, one in-process with --fresh: the second waits for each run
    // folder the first holds, and never empties one the first is training in.
    let mut first = reproduce(&out, &["--jobs", "2"]).spawn().unwrap();
    // Once the first is training, each of its workers holds a run folder for 57 more steps.
    wait_for_step(&out, 3, &mut first);
    let second = reproduce(&out, &["--jobs", "1", "--fresh"])
        .spawn()
        .unwrap();
    check(&first.wait_with_output().unwrap(), "the first of two runs");
    let second = second.wait_with_output().unwrap();
    check(&second, "the second of two runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("waiting for") && stderr.contains("another reproduce (process"),
        "the second run did not wait for the first: {stderr}"
    );
    assert_eq!(rows(&out), reference());
    for run in run_folders(&out) {
        assert_eq!(checkpoint_step(&run), STEPS, "{}", run.display());
    }
    no_temporaries(&out);
    // And the models they left load and give the same numbers from the cache.
    rerun_matches(&out, "1");
}

/// Interrupts `reproduce` with `sig` once a run logged `step`; the checkpoint then holds every
/// step that was logged, and the process says how to continue.
fn interrupt_at(name: &str, jobs: &str, sig: libc::c_int, step: u64) {
    let out = out_dir(name);
    let mut child = reproduce(&out, &["--jobs", jobs]).spawn().unwrap();
    wait_for_step(&out, step, &mut child);
    signal(child.id(), sig);
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{name}: {stderr}");
    assert!(
        stderr.contains("interrupted; rerun the same command to continue"),
        "{name}: {stderr}"
    );
    let runs = run_folders(&out);
    assert!(runs.iter().any(|r| checkpoint_step(r) >= step), "{name}");
    for run in &runs {
        assert_eq!(
            checkpoint_step(run),
            logged_step(run),
            "{name}: steps lost in {}",
            run.display()
        );
    }
    rerun_matches(&out, jobs);
}

#[test]
fn ctrl_c_and_sigterm_stop_at_a_checkpoint_and_the_rerun_continues() {
    // Steps chosen away from the checkpoints (every 15): what a signal saves is its own.
    interrupt_at("sigint-serial", "1", libc::SIGINT, 7);
    interrupt_at("sigint-workers", "2", libc::SIGINT, 23);
    interrupt_at("sigterm-workers", "2", libc::SIGTERM, 38);
}

/// `reproduce --jobs 2` once a run logged `step`: its output folder, the parent, the workers.
fn with_two_workers(name: &str, step: u64) -> (PathBuf, Child, Vec<u32>) {
    let out = out_dir(name);
    let mut child = reproduce(&out, &["--jobs", "2"]).spawn().unwrap();
    wait_for_step(&out, step, &mut child);
    let workers = children(child.id());
    assert_eq!(workers.len(), 2, "workers of {}: {workers:?}", child.id());
    (out, child, workers)
}

#[test]
fn a_killed_parent_takes_its_workers_with_it_at_a_checkpoint() {
    let (out, mut child, workers) = with_two_workers("kill-parent", 11);
    signal(child.id(), libc::SIGKILL);
    let _ = child.wait();
    // The parent-death signal is SIGTERM: each worker finishes its step and saves it.
    wait_unlocked(&out);
    for w in workers {
        assert!(
            !Path::new(&format!("/proc/{w}/stat")).exists() || {
                // A zombie of the dead parent is reaped by init; it no longer runs.
                std::fs::read_to_string(format!("/proc/{w}/stat")).is_ok_and(|s| s.contains(") Z"))
            }
        );
    }
    for run in run_folders(&out) {
        // Stopped soon after the parent died (not trained on to the end), at a checkpoint.
        assert!(
            checkpoint_step(&run) < STEPS,
            "{} trained on",
            run.display()
        );
        assert_eq!(
            checkpoint_step(&run),
            logged_step(&run),
            "{}",
            run.display()
        );
    }
    rerun_matches(&out, "2");
}

#[test]
fn a_killed_worker_loses_only_its_steps_since_the_checkpoint() {
    let (out, child, workers) = with_two_workers("kill-worker", 19);
    signal(workers[0], libc::SIGKILL);
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("worker") && stderr.contains(".log") && stderr.contains("again"),
        "the error names the worker, its log and what to do: {stderr}"
    );
    let runs = run_folders(&out);
    assert_eq!(runs.len(), 2);
    // The error names the killed worker's run, the one without a finished model.
    let unfinished: Vec<&PathBuf> = runs.iter().filter(|r| checkpoint_step(r) < STEPS).collect();
    assert_eq!(unfinished.len(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("unfinished: {}", unfinished[0].display())),
        "the error names the unfinished run: {stderr}"
    );
    // The other worker finished its model and its evaluation.
    assert!(
        runs.iter()
            .any(|r| checkpoint_step(r) == STEPS && r.join("evals").is_dir()),
        "the other worker's results were not kept"
    );
    for run in &runs {
        let (saved, logged) = (checkpoint_step(run), logged_step(run));
        assert!(
            saved <= logged && logged - saved < CHECKPOINT_EVERY,
            "{}: checkpoint at {saved}, log at {logged}",
            run.display()
        );
    }
    rerun_matches(&out, "2");
}
