"""One way to get an authenticated `HfApi`: the write token from $HF_TOKEN only, never a flag or a file in
the repository. `$HF_ENDPOINT` (read by huggingface_hub itself) points it at another Hub, e.g. a mirror."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import UserError


def hub_api(what: str):
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise UserError(f"HF_TOKEN is not set: {what} needs a Hub write token (a CI secret, never a repo file)")
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError(f"{what} needs huggingface_hub: pip install '.[cloud]'") from None
    return HfApi(token=token, endpoint=os.environ.get("HF_ENDPOINT") or None)


@contextmanager
def hub_errors(repo: str) -> Iterator[None]:
    """A refused token, a missing permission or an unreachable Hub as one line, not a traceback.
    RepositoryNotFoundError passes through: a caller may treat a new repo as empty."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        yield
    except RepositoryNotFoundError:
        raise
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no answer"
        raise UserError(f"the Hub refused the request for {repo} (HTTP {status}): {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise UserError(f"cannot reach the Hub for {repo}: {exc}") from None
