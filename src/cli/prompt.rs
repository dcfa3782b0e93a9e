//! Confirmation before a destructive request.
//!
//! A script that forgot `--yes` must fail at once rather than hang on a
//! prompt nobody sees, so without a terminal on stdin the answer is no.

use std::io::{BufRead, IsTerminal, Write};

use super::error::Failure;

/// Asks `question [y/N]` unless `yes`; `action` names what is refused
/// when stdin is not a terminal (`delete`, `rotate`).
pub(crate) fn confirm(question: &str, action: &str, yes: bool) -> Result<(), Failure> {
    decide(question, action, yes, std::io::stdin().is_terminal(), || {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
}

/// Fails at once, before anything is sent, when a confirmation will be
/// needed and cannot be asked.
pub(crate) fn require_interactive(action: &str, yes: bool) -> Result<(), Failure> {
    if yes || std::io::stdin().is_terminal() { Ok(()) } else { Err(refusal(action)) }
}

fn refusal(action: &str) -> Failure {
    Failure::Usage(format!("refusing to {action} without --yes (stdin is not a terminal)"))
}

/// The rule, with the terminal check and the reading passed in.
fn decide(
    question: &str,
    action: &str,
    yes: bool,
    interactive: bool,
    read: impl FnOnce() -> std::io::Result<String>,
) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !interactive {
        return Err(refusal(action));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = read().unwrap_or_default();
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::Aborted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &'static str) -> impl FnOnce() -> std::io::Result<String> {
        move || Ok(text.to_string())
    }

    #[test]
    fn only_yes_goes_ahead() {
        assert!(decide("Delete peer p1?", "delete", true, false, answer("")).is_ok());
        assert!(decide("Delete peer p1?", "delete", false, true, answer("y\n")).is_ok());
        assert!(decide("Delete peer p1?", "delete", false, true, answer(" YES \n")).is_ok());
        assert!(matches!(decide("Delete peer p1?", "delete", false, true, answer("\n")), Err(Failure::Aborted)));
        assert!(matches!(decide("Delete peer p1?", "delete", false, true, answer("")), Err(Failure::Aborted)));
    }

    #[test]
    fn no_terminal_means_no() {
        let err = decide("Delete peer p1?", "delete", false, false, answer("y\n")).unwrap_err();
        assert_eq!(err.to_string(), "refusing to delete without --yes (stdin is not a terminal)");
        assert_eq!(err.exit_code(), 2);
    }
}
