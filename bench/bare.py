"""The ceiling for web: a bare aiohttp app answering `{}` to POST /api/buy, run exactly as web is run."""

import os

from aiohttp import web

from services.common.runner import run


async def buy(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({})


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/buy", buy)
    run(app, "127.0.0.1", int(os.environ["PORT"]), shutdown_timeout=1)


if __name__ == "__main__":
    main()
