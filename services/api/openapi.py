"""api's OpenAPI 3.1 document, served at /openapi.json."""

from services.common.openapi import TEXT, document, health_paths, history_responses

ONE_ID = {"name": "id", "in": "query", "schema": {"type": "string", "format": "uuid"},
          "description": "Only this purchase (an empty array if it is not stored)"}
PAGING = [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/before"}]

DOCUMENT = document(
    "Random Item Purchase System: api",
    "Customer management: consumes the purchases topic into MongoDB and serves the history.",
    {
        "/api/purchases": {"get": {
            "summary": "A customer's purchases, newest first",
            "parameters": [{"name": "userId", "in": "query", "required": True, "schema": TEXT}, ONE_ID, *PAGING],
            "responses": history_responses("MongoDB is unavailable"),
        }},
        "/api/purchases/{userId}": {"get": {
            "summary": "The same, the user id in the path",
            "parameters": [{"$ref": "#/components/parameters/userIdPath"}, ONE_ID, *PAGING],
            "responses": history_responses("MongoDB is unavailable"),
        }},
        **health_paths("MongoDB reachable and the consumer running"),
    },
)
