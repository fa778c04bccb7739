"""API keys: when API_KEYS is set, every /v1 request needs one of them in X-API-Key."""

import hmac

from fastapi import Depends, Request

from services.common.errors import Problem
from services.common.settings import Settings, current_settings


async def require_api_key(request: Request, settings: Settings = Depends(current_settings)) -> None:
    keys = settings.api_key_set
    if not keys:
        return
    # read from the headers rather than declared as a Header parameter, which the schema would list
    given = request.headers.get("x-api-key", "")
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise Problem(
            401, "missing or wrong X-API-Key", type_="/problems/unauthorized", headers={"WWW-Authenticate": "ApiKey"}
        )
