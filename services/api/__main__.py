"""`python -m services.api`: run the api service with configuration from the environment."""

from services.common.logs import setup_logging
from services.common.runner import run
from services.core.config import ApiConfig

from .app import create_app


def main() -> None:
    config = ApiConfig.from_env()
    setup_logging("api", config.http.log_level)
    # SIGTERM/SIGINT: stop serving, then the consumer finishes and commits its batch and leaves the group.
    run(create_app(config), config.http.host, config.http.port, shutdown_timeout=10,
        max_connections=config.http.max_connections)


if __name__ == "__main__":
    main()
