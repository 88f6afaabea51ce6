//! Entry point: everything happens in the library's [`aws_session_daemon::run`].

fn main() -> std::process::ExitCode {
    aws_session_daemon::run()
}
