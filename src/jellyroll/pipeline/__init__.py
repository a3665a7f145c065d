"""The whole chain in one command: ``jellyroll run CONFIG.toml`` (see :func:`run_pipeline`)."""

from jellyroll.pipeline.config import ConfigError, RunConfig, load_config
from jellyroll.pipeline.run import PipelineResult, run_pipeline

__all__ = ["ConfigError", "PipelineResult", "RunConfig", "load_config", "run_pipeline"]
