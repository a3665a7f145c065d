"""The whole chain in one command: ``jellyroll run CONFIG.toml`` (see :func:`run_pipeline`)."""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "config": ["ConfigError", "RunConfig", "load_config"],
        "run": ["PipelineResult", "run_pipeline"],
    },
)
