"""Lamina's error vocabulary: AWS's own error codes, each with its HTTP status.

Every platform error is a `LaminaError`. It carries the AWS error code (`error_type`), the
HTTP status that code maps to, and whether the caller (`User`) or Lamina (`Service`) is at
fault. They become HTTP responses in exactly one place: `lamina.http.errors`.

A failing *user function* is never one of these: its error is data (an error payload plus
`X-Amz-Function-Error`), see `lamina.core.invocation`.
"""

from __future__ import annotations

from typing import ClassVar, Literal


class LaminaError(Exception):
    error_type: ClassVar[str] = "ServiceException"
    status: ClassVar[int] = 500
    fault: ClassVar[Literal["User", "Service"]] = "Service"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class ServiceException(LaminaError):
    pass


class ResourceNotFoundException(LaminaError):
    error_type = "ResourceNotFoundException"
    status = 404
    fault = "User"


class ResourceConflictException(LaminaError):
    error_type = "ResourceConflictException"
    status = 409
    fault = "User"


class ProvisionedConcurrencyConfigNotFoundException(LaminaError):
    error_type = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    fault = "User"


class InvalidParameterValueException(LaminaError):
    error_type = "InvalidParameterValueException"
    status = 400
    fault = "User"


class InvalidRequestContentException(LaminaError):
    error_type = "InvalidRequestContentException"
    status = 400
    fault = "User"


class UnsupportedMediaTypeException(LaminaError):
    error_type = "UnsupportedMediaTypeException"
    status = 415
    fault = "User"


class RequestTooLargeException(LaminaError):
    error_type = "RequestTooLargeException"
    status = 413
    fault = "User"


class TooManyRequestsException(LaminaError):
    """Throttled. `reason` is one of AWS's `ThrottleReason` values."""

    error_type = "TooManyRequestsException"
    status = 429
    fault = "User"


class InvalidZipFileException(LaminaError):
    error_type = "InvalidZipFileException"
    status = 502
    fault = "User"


class UnknownOperationException(LaminaError):
    error_type = "UnknownOperationException"
    status = 404
    fault = "User"


# Errors of the Runtime API itself (what a runtime did wrong), rendered as
# {"errorType", "errorMessage"} by the Runtime API edge.


class InvalidRequestID(LaminaError):
    error_type = "InvalidRequestID"
    status = 400
    fault = "User"


class InvalidStateTransition(LaminaError):
    error_type = "InvalidStateTransition"
    status = 403
    fault = "User"


class RequestEntityTooLarge(LaminaError):
    error_type = "RequestEntityTooLarge"
    status = 413
    fault = "User"


class InvalidFunctionResponseMode(LaminaError):
    error_type = "InvalidFunctionResponseMode"
    status = 400
    fault = "User"
