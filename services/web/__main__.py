"""`python -m services.web`: run the web service with configuration from the environment."""

from services.common.runner import run_service
from services.core.config import WebConfig

from .app import create_app

if __name__ == "__main__":
    # SIGTERM/SIGINT: stop accepting, let in-flight buys finish, then the cleanup contexts flush Kafka.
    config = WebConfig.from_env()
    run_service("web", config, create_app, shutdown_timeout=15, workers=config.workers)
