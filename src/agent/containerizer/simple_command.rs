//! A shell command line that the shell would only split into words and run:
//! `sleep 600`, `./server --port 8080`, `/usr/bin/redis-server`. Such a task
//! is exec'd directly, as `bash -c` does on its own (the shell of the CentOS
//! hosts most Mesos clusters ran on); Debian's `/bin/sh` (dash) forks the
//! command and waits, which costs each task a second exec (~1 ms of CPU on
//! these VMs) and a resident shell for its whole life.
//!
//! ```text
//!  "sleep 600" ─▶ only plain characters? first word no builtin or keyword,
//!                 no assignment? found on the task's PATH, executable?
//!        yes ─▶ exec /usr/bin/sleep ["sleep", "600"], PWD set as sh sets it
//!        no  ─▶ /bin/sh -c "sleep 600" (quotes, $, globs, ;, |, ~, builtins,
//!               a program not found: the shell's own words and exit codes)
//! ```
//!
//! What a task can tell apart: `ps` shows no `sh -c` parent, and a command
//! killed by a signal reports the signal rather than sh's `128 + n`, as it
//! would under bash.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Characters that mean nothing to the shell inside an unquoted word.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./,:+@%=-".contains(c)
}

/// dash's builtins and reserved words: run by the shell, never exec'd.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "chdir", "command", "continue", "do",
    "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg",
    "fi", "for", "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read",
    "readonly", "return", "set", "shift", "test", "then", "times", "trap", "true", "type",
    "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The program and argv `sh -c line` would exec, when it would do nothing
/// else; None when the shell must run it. `env` is the task's environment
/// (its PATH is searched as the shell would) and `cwd` where it runs.
pub fn direct(
    line: &str,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Option<(PathBuf, Vec<String>)> {
    if !line.chars().all(|c| c == ' ' || c == '\t' || plain(c)) {
        return None;
    }
    let words: Vec<String> = line
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let first = words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first.as_str()) {
        return None;
    }
    let program = if first.contains('/') {
        let path = cwd.join(first);
        executable(&path).then_some(path)?
    } else {
        // An empty PATH entry is the working directory, as in the shell.
        let path = env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|dir| {
                if dir.is_empty() {
                    cwd.join(first)
                } else {
                    Path::new(dir).join(first)
                }
            })
            .find(|candidate| executable(candidate))?
    };
    Some((program, words))
}

/// dash's search path when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("PATH".to_string(), path.to_string())])
    }

    #[test]
    fn plain_words_of_a_program_on_the_path_are_execd() {
        let (program, argv) =
            direct("sleep  600", &env("/nope:/bin:/usr/bin"), Path::new("/")).expect("direct");
        assert!(
            program.ends_with("sleep") && program.starts_with("/"),
            "{program:?}"
        );
        assert_eq!(argv, ["sleep", "600"]);
        let (program, argv) =
            direct("/bin/sh -x --flag=a,b:c+d@e%f", &env(""), Path::new("/")).expect("a path");
        assert_eq!(program, Path::new("/bin/sh"));
        assert_eq!(argv[2], "--flag=a,b:c+d@e%f");
        let (program, _) = direct("bin/sh", &env(""), Path::new("/")).expect("relative to the cwd");
        assert_eq!(program, Path::new("/bin/sh"));
    }

    #[test]
    fn anything_the_shell_would_do_more_with_stays_with_the_shell() {
        let e = env("/bin:/usr/bin");
        for line in [
            "sleep $PORT0",
            "sleep 1; sleep 2",
            "sleep 1 && true",
            "sleep 1 | cat",
            "sleep 1 > out",
            "sleep 1 &",
            "sleep '1'",
            "sleep \"1\"",
            "sleep \\1",
            "ls *",
            "ls ?",
            "ls [a]",
            "ls ~",
            "ls {a,b}",
            "sleep `echo 1`",
            "sleep 1 # comment",
            "! sleep 1",
            "(sleep 1)",
            "sleep 1\nsleep 2",
            "A=1 sleep 1",
            "exit 3",
            "echo hi",
            "cd /tmp",
            "true",
            "test -f x",
            "no-such-command-here",
            "./missing",
            "",
            "   ",
        ] {
            assert_eq!(direct(line, &e, Path::new("/")), None, "{line:?}");
        }
        assert_eq!(
            direct("sleep 1", &env("/nope"), Path::new("/")),
            None,
            "not found: the shell says so"
        );
    }
}
