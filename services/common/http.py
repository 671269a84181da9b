"""HTTP plumbing both services share: JSON answers, and JSON errors for every failure."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from services.core.purchase import ValidationError

log = logging.getLogger(__name__)

# The route segment for a user id: any character but '/' (which arrives as %2F and is decoded into the id).
# aiohttp's default segment pattern would also refuse '{' and '}', so '{"$ne": null}' would 404.
USER_ID = "{userId:[^/]+}"


class ServiceUnavailable(Exception):
    """A dependency (Kafka, MongoDB, the api service) cannot serve the request right now: answer 503."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Unauthorized(Exception):
    """No acceptable bearer token: 401 with `WWW-Authenticate: Bearer` and an RFC 6750 error."""

    def __init__(self, description: str, token_presented: bool = True) -> None:
        super().__init__(description)
        self.description = description
        self.token_presented = token_presented

    def response(self) -> web.Response:
        # RFC 6750, 3.1: a request with no credentials at all is told only the scheme, not an error code.
        challenge = 'Bearer realm="purchase-system"'
        if self.token_presented:
            challenge += ', error="invalid_token", error_description="' + self.description.replace('"', "'") + '"'
        response = error_response(401, "invalid_token", error_description=self.description)
        response.headers["WWW-Authenticate"] = challenge
        return response


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """aiohttp's json_response, encoded with orjson (bytes, UTF-8, no escaping to ASCII)."""
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")


def error_response(status: int, message: str, **extra: object) -> web.Response:
    return json_response({"error": message, **extra}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error leaves as `{"error": ...}` JSON: aiohttp's own (404, 405, 413), ours, and bugs (500)."""
    try:
        return await handler(request)
    except ValidationError as exc:
        details = {"field": exc.field} if exc.field else {}
        return error_response(exc.status, exc.message, **details, **exc.details)
    except Unauthorized as exc:
        return exc.response()
    except ServiceUnavailable as exc:
        response = error_response(503, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 413:
            message = f"body too large ({exc.text})"
        response = error_response(exc.status, message)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(500, "internal error")

