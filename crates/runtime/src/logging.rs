//! JSON logs to stderr, and panics logged as errors like everything else.

/// JSON logs to stderr, filtered by `RUST_LOG` (default `info`). Call once, first.
pub fn init_logging() {
    // A panicking task would otherwise print to stderr outside the JSON log. Once per
    // process: tests start several services in one.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            tracing::error!(panic = %info, "a task panicked");
            default_hook(info);
        }));
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
