"""`python -m services.api`: run the api service with configuration from the environment."""

from services.common.runner import run_service
from services.core.config import ApiConfig

from .app import create_app

if __name__ == "__main__":
    # SIGTERM/SIGINT: stop serving, then the consumer finishes and commits its batch and leaves the group.
    run_service("api", ApiConfig.from_env(), create_app, shutdown_timeout=10)
