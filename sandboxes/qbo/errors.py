"""QBO fault bodies, built in one place so every route fails exactly as QBO does."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from sandboxes.qbo.clock import response_time, utcnow
from sandboxes.qbo.money import dumps


class QboFault(Exception):
    """A fault QBO would answer with: HTTP status plus the ``Fault`` body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: str = "",
        fault_type: str = "ValidationFault",
        element: str = "",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.fault_type = fault_type
        self.element = element

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.fault_type}, "time": response_time()}

    def fault_only(self) -> dict[str, Any]:
        """The ``Fault`` object alone, as it appears inside a BatchItemResponse."""
        fault: dict[str, Any] = self.body()["Fault"]
        return fault


def not_found(entity: str, obj_id: str) -> QboFault:
    return QboFault(
        400,
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. "
        f"Entity={entity} Id={obj_id}",
    )


def stale(entity: str, user: str = "Sandbox User") -> QboFault:
    return QboFault(
        400,
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and {user} were working on this at the same time. "
        f"{user} finished before you did, so your work was not saved. Entity={entity}",
    )


def business_rule(detail: str) -> QboFault:
    return QboFault(
        400,
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def required(param: str) -> QboFault:
    return QboFault(
        400,
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {param} is missing in the request",
    )


def invalid(detail: str, code: str = "2010") -> QboFault:
    return QboFault(400, code, "Request has invalid or unsupported property", detail)


def unsupported(operation: str) -> QboFault:
    return QboFault(400, "500", "Unsupported Operation", f"Operation {operation} is not supported.")


def duplicate_name(name: str, existing_id: str) -> QboFault:
    return QboFault(
        400,
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another customer, vendor or employee is already "
        f"using this name. Please use a different name. Id={existing_id} Name={name}",
    )


def query_parse(detail: str) -> QboFault:
    return QboFault(
        # QBO answers a malformed query with a ValidationFault (it has no other fault type for
        # it); the parser's complaint is in the Detail.
        400,
        "4000",
        "Error parsing query",
        f"QueryParserError: {detail}",
    )


def throttled() -> QboFault:
    return QboFault(
        429,
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        "ThrottleExceeded",
    )


def injected_server_error(status: int) -> QboFault:
    if status == 503:
        return QboFault(
            503, "10001", "Service Unavailable", "Service is unavailable.", "SystemFault"
        )
    return QboFault(
        500,
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data.",
        "SystemFault",
    )


def fault_response(fault: QboFault) -> Response:
    return Response(dumps(fault.body()), fault.status, media_type="application/json")


def auth_failure_response(detail: str) -> Response:
    """QBO's 401: a different, lower-case body from the data API's ``Fault``."""
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                    "element": None,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(utcnow().timestamp() * 1000),
        "status": None,
        "cdcresponse": [],
    }
    return Response(
        json.dumps(body),
        401,
        media_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="Intuit"'},
    )


def authorization_failure_response(realm_id: str) -> Response:
    fault = QboFault(
        403,
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        f"The token does not grant access to company {realm_id}",
        "AuthorizationFault",
    )
    return fault_response(fault)


def no_route(method: str, path: str) -> QboFault:
    """What an unknown path answers: QBO's fault shape, never plain text."""
    return QboFault(
        404, "610", "Object Not Found", f"No resource at {method} {path}", "ValidationFault"
    )
