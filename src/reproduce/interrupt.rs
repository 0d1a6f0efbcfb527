//! Ctrl-C (SIGINT) and SIGTERM: the step in progress finishes, a checkpoint is written, the
//! worker processes are told and waited for, and `reproduce` exits with "interrupted; rerun the
//! same command to continue". Workers run in their own process group (a terminal's Ctrl-C
//! reaches the parent only, which tells each worker once) and die with their parent: on Linux a
//! killed parent sends them SIGTERM, so they too stop at a checkpoint.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT or SIGTERM; training and evaluation stop at the next step.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The worker processes running now, told when the parent is interrupted.
static WORKERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The error of an interrupted run (`reproduce` exits with 130 on it).
#[derive(Debug, thiserror::Error)]
#[error("interrupted; rerun the same command to continue")]
pub struct Interrupted;

/// The exit status of an interrupted `reproduce` (and of an interrupted worker): 128 + SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

// ANCHOR: handler
/// Installs the handler (once per process). The parent passes `exit_on_second`: a second
/// Ctrl-C then exits at once, and its workers still stop at a checkpoint (they get SIGTERM when
/// it dies). A worker only ever sets the flag, however often it is signalled.
pub fn install(exit_on_second: bool) {
    let _ = ctrlc::set_handler(move || {
        let again = INTERRUPTED.swap(true, Ordering::SeqCst);
        if again && exit_on_second {
            eprintln!("{Interrupted} (the workers stop at their next step)");
            std::process::exit(EXIT_INTERRUPTED.into());
        }
        if !again {
            for &pid in WORKERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                terminate(pid);
            }
        }
    });
}
// ANCHOR_END: handler

/// `Err(Interrupted)` once a signal came.
pub fn check() -> Result<(), Interrupted> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// A worker is running: it is told of an interrupt from now on (and at once if one came).
pub(super) fn register(pid: u32) {
    WORKERS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    if INTERRUPTED.load(Ordering::SeqCst) {
        terminate(pid);
    }
}

/// A worker was waited for: its process id may be reused.
pub(super) fn unregister(pid: u32) {
    WORKERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
}

fn terminate(pid: u32) {
    // SAFETY: kill(2) with a pid of a child this process has not yet waited for.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

// ANCHOR: worker_process
/// Makes `command` a worker: in its own process group, and (on Linux) sent SIGTERM when this
/// process dies, however it dies.
pub(super) fn as_worker(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid, _exit.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // The parent died before the line above: nobody would send the signal.
                if libc::getppid() != parent {
                    libc::_exit(i32::from(EXIT_INTERRUPTED));
                }
                Ok(())
            });
        }
    }
}
// ANCHOR_END: worker_process
