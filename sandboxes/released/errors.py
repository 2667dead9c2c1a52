"""The contract's error envelope, and the one exception every handler raises to produce it."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# status -> (errorNumber, type), shaped like Xero's so existing mappers can be reused.
_KINDS: dict[int, tuple[int, str]] = {
    400: (10, "ValidationException"),
    401: (401, "Unauthorized"),
    404: (404, "NotFoundException"),
    405: (405, "MethodNotAllowed"),
    409: (409, "BusinessRuleException"),
    412: (412, "PreconditionFailed"),
    415: (415, "UnsupportedMediaType"),
    422: (422, "IdempotencyKeyReused"),
    429: (429, "RateLimitExceeded"),
    500: (500, "InternalError"),
    503: (503, "ServiceUnavailable"),
}


class ApiError(Exception):
    """An error response in the contract's envelope; ``code`` goes in ``validationErrors``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        element_id: str = "request",
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.element_id = element_id
        self.error_type = error_type
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        number, kind = _KINDS.get(self.status, (self.status, "Error"))
        errors = self.details or [{"code": self.code, "message": self.message}]
        return {
            "errorNumber": number,
            "type": self.error_type or kind,
            "message": self.message,
            "elements": [{"id": self.element_id, "validationErrors": errors}],
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} {ident} not found", element_id=ident)


def conflict(code: str, message: str, ident: str = "request") -> ApiError:
    return ApiError(409, code, message, element_id=ident)


def invalid(code: str, message: str, ident: str = "request") -> ApiError:
    return ApiError(400, code, message, element_id=ident)
