use std::process::ExitCode;

use clap::Parser;
use cloud_assistant_exporter::{app, clock::Clock, config::Flags, logging};

// glibc's allocator keeps the memory freed after each cycle's JSON and page
// buffers (its mmap threshold grows after a large free), which more than
// doubled the resident size at 100 000 instances; mimalloc returns it.
// Its version 2 (the `v2` feature) gives freed memory back after 10 ms where
// version 3 waits a second, so a region's old rows and pieces are gone
// before the next region's walk ends (BENCHMARKS.md: peak RSS 2026-12-07).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // One line, the usage error itself; exit code 2 as for every usage error.
            let rendered = e.to_string();
            eprintln!(
                "{}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    logging::init(flags.log_level, flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let running = match app::start(&flags, |k| std::env::var(k).ok(), Clock::System).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        serve_until_signal(&running).await;
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    });
    // A reload still waiting on a credential endpoint must not hold the
    // exit: what runs past this is abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Serves until SIGTERM or Ctrl-C; SIGHUP re-reads the configuration files
/// (`--config.file`, `--web.config.file`) as `POST /-/reload` does, in a
/// task of its own, so a slow reload never holds up SIGTERM.
async fn serve_until_signal(running: &app::Running) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            loop {
                tokio::select! {
                    _ = term.recv() => return,
                    _ = tokio::signal::ctrl_c() => return,
                    _ = hup.recv() => {
                        // Each part logs what it did; a failure keeps the running config.
                        tracing::info!("SIGHUP: reloading the configuration files");
                        let opts = running.server_options();
                        tokio::spawn(async move {
                            let _ = cloud_assistant_exporter::server::reload(&opts).await;
                        });
                    }
                }
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
