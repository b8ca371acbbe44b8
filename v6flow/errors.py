"""The one exception hierarchy of the v6flow library.

    V6FlowError
    ├── DeserializationError        a wire payload could not be decoded
    ├── ConfigurationError          a setting or config file field is wrong (names the field)
    ├── EncryptionError             end-to-end encryption could not be applied (v6flow.crypto)
    │   ├── InvalidKey              a key is not a usable RSA key (PEM, at least 2048 bits)
    │   ├── NoPublicKey             the recipient organization has not uploaded a public key
    │   ├── NoPrivateKey            an encrypted payload, but no private key is set up
    │   ├── PublicKeyMismatch       the server holds another public key for our organization
    │   └── DecryptionError         a payload could not be decrypted (names run/organization)
    │       ├── WrongKey            it was not encrypted for this private key
    │       └── TamperedPayload     authentication failed: altered, or moved to another context
    ├── ClientError                 the server answered with an error
    │   ├── AuthenticationError     401: no, bad or expired credentials
    │   ├── PermissionDenied        403 (and v4's 401 "not allowed" answers)
    │   ├── NotFound                404
    │   ├── BadRequest              400 / 422
    │   └── ServerError             5xx, or the server cannot be reached
    ├── RunFailed                   a remote run ended in a failure status
    ├── TaskTimeout                 waiting for a task took longer than allowed
    ├── AlgorithmError              raised inside an algorithm container
    │   ├── MissingEnvironment      a contract env var is missing
    │   ├── DataLoadError           a database could not be read
    │   ├── MethodNotFound          the input names a function the package lacks
    │   ├── MethodFailed            the method raised (the cause is chained)
    │   └── OutputError             the return value is not JSON-serialisable
    └── ImageError                  building an image failed (host side)
        ├── EngineUnavailable       the Docker engine cannot be reached
        └── ImageBuildError         a build step failed (carries the log tail)
"""

from __future__ import annotations


class V6FlowError(Exception):
    """Root of every error raised by v6flow."""


class DeserializationError(V6FlowError):
    """A wire payload (JSON, base64, env value) could not be decoded."""


class ConfigurationError(V6FlowError):
    """A configuration value is wrong; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EncryptionError(V6FlowError):
    """End-to-end encryption of task inputs or results could not be applied."""


class InvalidKey(EncryptionError):
    """A key is not a usable RSA key (PEM, no passphrase, at least 2048 bits)."""


class NoPublicKey(EncryptionError):
    """An organization has no public key on the server, so nothing can be encrypted for it."""

    def __init__(self, organization_id: int) -> None:
        super().__init__(
            f"organization {organization_id} has no public key on the server, so nothing can "
            "be encrypted for it: start its node with encryption enabled (node.yaml "
            "encryption.private_key), or call setup_encryption() as one of its users")
        self.organization_id = organization_id


class NoPrivateKey(EncryptionError):
    """A payload is encrypted (or must be), but no private key was given."""


class PublicKeyMismatch(EncryptionError):
    """The server holds a different public key for our organization than our private key's."""

    def __init__(self, organization_id: int) -> None:
        super().__init__(
            f"the public key of organization {organization_id} on the server is not the one "
            "of this private key: results for the organization are encrypted for another key. "
            "Use the organization's key (the one in its node.yaml), or replace the server's "
            "key with setup_encryption(..., replace_public_key=True) and give the node the "
            "same key")
        self.organization_id = organization_id


class DecryptionError(EncryptionError):
    """A payload could not be decrypted; ``run_id``/``organization_id``/``field`` say which."""

    def __init__(self, reason: str, *, field: str | None = None, run_id: int | None = None,
                 organization_id: int | None = None) -> None:
        where = ", ".join(part for part in (
            f"run {run_id}" if run_id is not None else "",
            f"organization {organization_id}" if organization_id is not None else "",
            field or "") if part)
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.field = field
        self.run_id = run_id
        self.organization_id = organization_id

    def about(self, *, field: str | None = None, run_id: int | None = None,
              organization_id: int | None = None) -> DecryptionError:
        """The same error (same class) naming the payload it is about."""
        return type(self)(self.reason, field=field or self.field,
                          run_id=run_id if run_id is not None else self.run_id,
                          organization_id=(organization_id if organization_id is not None
                                           else self.organization_id))


class WrongKey(DecryptionError):
    """The payload was not encrypted for this private key (its key cannot be unwrapped)."""


class TamperedPayload(DecryptionError):
    """The authentication check failed: the payload was altered, moved to another task,
    organization or collaboration, or is unencrypted where encryption is required."""


class ClientError(V6FlowError):
    """The server answered with an error status; ``msg`` is the server's reason."""

    def __init__(self, msg: str, *, status_code: int | None = None,
                 method: str | None = None, url: str | None = None) -> None:
        where = f" ({method} {url} → {status_code})" if method and url else ""
        super().__init__(f"{msg}{where}")
        self.msg = msg
        self.status_code = status_code
        self.method = method
        self.url = url


class AuthenticationError(ClientError):
    """Credentials are missing, wrong or expired (HTTP 401)."""


class PermissionDenied(ClientError):
    """The caller is known but not allowed to do this (HTTP 403)."""


class NotFound(ClientError):
    """The resource does not exist or is not visible to the caller (HTTP 404)."""


class BadRequest(ClientError):
    """The request was malformed or violates a rule (HTTP 400/422)."""


class ServerError(ClientError):
    """The server failed (5xx) or could not be reached."""


class RunFailed(V6FlowError):
    """A run on a node ended in a failure status (crashed, not allowed, ...)."""

    def __init__(self, *, run_id: int, organization_id: int, status: str,
                 log_tail: str = "", task_id: int | None = None) -> None:
        tail = f"\n--- log tail ---\n{log_tail}" if log_tail else ""
        super().__init__(
            f"run {run_id} (organization {organization_id}) ended '{status}'{tail}"
        )
        self.run_id = run_id
        self.task_id = task_id
        self.organization_id = organization_id
        self.status = status
        self.log_tail = log_tail


class TaskTimeout(V6FlowError):
    """A task did not finish within the allowed time."""

    def __init__(self, task_id: int, seconds: float) -> None:
        super().__init__(f"task {task_id} did not finish within {seconds:g} s")
        self.task_id = task_id
        self.seconds = seconds


class AlgorithmError(V6FlowError):
    """An error inside an algorithm container; the wrapper turns it into exit code 1."""


class MissingEnvironment(AlgorithmError):
    """A contract environment variable is missing."""

    def __init__(self, name: str) -> None:
        super().__init__(f"environment variable {name} is not set")
        self.name = name


class DataLoadError(AlgorithmError):
    """A database the task asked for could not be loaded."""


class MethodNotFound(AlgorithmError):
    """The input names a method that the algorithm package does not define."""


class ImageError(V6FlowError):
    """Building or finding a container image failed (host side, v6flow.images)."""


class EngineUnavailable(ImageError):
    """The Docker engine cannot be reached; the message says how to start it."""


class ImageBuildError(ImageError):
    """An image build step failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        tail = f"\n--- build log tail ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{message}{tail}")
        self.log_tail = log_tail


class MethodFailed(AlgorithmError):
    """The algorithm method raised; the original exception is the ``__cause__``."""

    def __init__(self, method: str, exc: BaseException) -> None:
        super().__init__(f"error while calling {method}: {type(exc).__name__}: {exc}")
        self.method = method


class OutputError(AlgorithmError):
    """The return value of the algorithm method cannot be written as JSON."""


class ResultNotJSON(RunFailed):
    """A run ended without a usable result because the partial's return value was not JSON."""

    def __init__(self, *, run_id: int, organization_id: int, status: str,
                 log_tail: str = "", task_id: int | None = None) -> None:
        super().__init__(run_id=run_id, organization_id=organization_id, status=status,
                         log_tail=log_tail, task_id=task_id)
        self.args = (f"run {run_id} (organization {organization_id}): the result was not "
                     f"JSON (status '{status}'); return JSON-serialisable values "
                     f"(dict, list, str, int, float, bool, None)"
                     + (f"\n--- log tail ---\n{log_tail}" if log_tail else ""),)


class NotEnoughResponses(V6FlowError):
    """Fewer organizations answered than a fan-out needs (``min_responses``).

    ``failures`` maps each failed organization id to a one-line reason (run status and
    log tail); ``errors`` keeps the original exceptions.
    """

    def __init__(self, *, required: int, succeeded: list[int],
                 failures: dict[int, str], errors: dict[int, BaseException] | None = None
                 ) -> None:
        lines = "\n".join(f"- organization {org}: {why}" for org, why in failures.items())
        super().__init__(
            f"{len(succeeded)} of {len(succeeded) + len(failures)} organizations answered, "
            f"{required} needed; failed:\n{lines}")
        self.required = required
        self.succeeded = succeeded
        self.failures = failures
        self.errors = dict(errors or {})
