"""`python -m services.web`: run the web service with configuration from the environment."""

from services.common.logs import setup_logging
from services.common.runner import run
from services.core.config import WebConfig

from .app import create_app
from .auth.rules import MAX_TOKEN_CHARS

# Header lines up to 32 KiB are read, so an over-long bearer token is answered 401 by sign-in, not 431 by aiohttp.
MAX_HEADER_LINE = 4 * MAX_TOKEN_CHARS


def main() -> None:
    config = WebConfig.from_env()
    setup_logging("web", config.http.log_level)
    # SIGTERM/SIGINT: stop accepting, let in-flight buys finish, then the cleanup contexts flush Kafka.
    run(create_app(config), config.http.host, config.http.port, shutdown_timeout=15,
        max_connections=config.http.max_connections, max_field_size=MAX_HEADER_LINE)


if __name__ == "__main__":
    main()
