//! Which process holds a reservation in the client's ledger, and whether it still runs.
//!
//! A reservation is written before its payment is sent, so while the process that wrote it
//! runs, the payment may be in flight and only that process may settle or release it. Once
//! that process is gone (it crashed, or was killed mid-payment), the reservation can be
//! followed up by its payment hash by whoever runs next. This module tells the two apart on
//! Linux from `/proc/PID/stat`: the pid and the process's start time (field 22, clock ticks
//! since boot), so that a pid reused by another process is not taken for the owner. It must
//! not decide anything about payments; where `/proc` cannot be read it answers
//! [`Liveness::Unknown`], and callers treat that as running.

use std::path::Path;

/// A process: its pid and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The process id.
    pub pid: u32,
    /// Its start time, clock ticks after boot (`/proc/PID/stat` field 22): with the pid, it
    /// names one process even after the pid is reused.
    pub started: u64,
}

/// Whether an [`Owner`] still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The same process is running.
    Running,
    /// It has exited (no such pid, a zombie, or the pid now belongs to a later process).
    Gone,
    /// This system does not say (no `/proc`, or an entry that cannot be read).
    Unknown,
}

impl Owner {
    /// This process, or `None` where `/proc` does not say.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// The process `pid`, if it runs and `/proc` says when it started.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, started) = parse_stat(&stat)?;
        (!exited(state)).then_some(Self { pid, started })
    }

    /// Whether this process still runs.
    pub fn liveness(&self) -> Liveness {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => match parse_stat(&stat) {
                Some((state, started)) if started == self.started && !exited(state) => {
                    Liveness::Running
                }
                Some(_) => Liveness::Gone,
                None => Liveness::Unknown,
            },
            // No entry for the pid on a system that has /proc: the process has exited.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && Path::new("/proc/self/stat").exists() =>
            {
                Liveness::Gone
            }
            Err(_) => Liveness::Unknown,
        }
    }
}

/// A zombie (`Z`) or dead (`X`) process has exited even though its entry remains.
fn exited(state: &str) -> bool {
    matches!(state, "Z" | "X" | "x")
}

/// The state (field 3) and start time (field 22) from a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // Fields 4 to 21 come between the state and the start time.
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_start_time_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(stat), Some(("S", 987_654)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_runs_and_an_exited_child_is_gone() {
        let me = Owner::current().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.liveness(), Liveness::Running);
        // The same pid with another start time is another process.
        let other = Owner {
            started: me.started + 1,
            ..me
        };
        assert_eq!(other.liveness(), Liveness::Gone);

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = Owner::of(child.id()).unwrap();
        assert_eq!(owner.liveness(), Liveness::Running);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(owner.liveness(), Liveness::Gone);
    }
}
