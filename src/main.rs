use std::process::ExitCode;

use s3_proxy::config::Config;
use s3_proxy::fields;
use s3_proxy::log::{self, Level};

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            log::event(
                Level::Error,
                &format!("invalid configuration: {error}"),
                fields! {"variable" => error.variable, "problem" => error.problem},
            );
            return ExitCode::from(2);
        }
    };
    log::set_level(config.log_level);
    log::event(Level::Info, "starting", config.to_log_fields());

    let running = match s3_proxy::server::start(config) {
        Ok(running) => running,
        Err(error) => {
            log::event(Level::Error, "startup failed", fields! {"error" => error.to_string()});
            return ExitCode::from(1);
        }
    };
    match running.run_until_signal() {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            log::event(
                Level::Error,
                "signal handling failed",
                fields! {"error" => error.to_string()},
            );
            ExitCode::from(1)
        }
    }
}
