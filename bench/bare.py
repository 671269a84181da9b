"""The ceiling for web: a bare aiohttp app answering `{}` to POST /api/buy, run like web is run."""

import os

from aiohttp import web


async def buy(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({})


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/buy", buy)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
