//! The `s3rewind` binary (see the library for what it does).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(s3rewind::execute(std::env::args_os()))
}
