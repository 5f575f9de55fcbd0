"""Push and pull models on the Hugging Face Hub, and resolve what ``MODEL`` means.

All transport is huggingface_hub's (``HfApi``, ``hf_hub_download``, ``snapshot_download``), so
``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` and the standard cache behave as users expect.
Only ``config.json``, ``model.safetensors``, ``README.md`` and ``samples.png`` are ever fetched:
never pickles, never code. Hub failures become one-line ``HubError``s whose ``__cause__`` keeps
the client's exception.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from i2i.core.errors import CheckpointError, I2IError, one_line, short
from i2i.models.export import export_run, is_run_folder
from i2i.models.folder import (
    CARD,
    CONFIG,
    SAMPLES,
    WEIGHTS,
    read_config,
    verify_model,
)
from i2i.models.safefiles import copy_regular

MODEL_FILES = [CONFIG, WEIGHTS, CARD, SAMPLES]
_log = logging.getLogger("i2i")
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")
DATASET_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[\w.-]{1,96}$")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubError(I2IError):
    """The Hub refused or could not answer; the message says what to do."""


def split_revision(model: str) -> tuple[str, str | None]:
    """``user/repo@rev`` -> (``user/repo``, ``rev``)."""
    repo, _, revision = model.partition("@")
    return repo, revision or None


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


class _OneLineRetries(logging.Filter):
    """huggingface_hub's retries on a network failure, told once in one line instead of ten.

    The client retries a first download five times, over half a minute or more, when the Hub
    does not answer, logging two lines per try: right for a flaky network, and on none it looks
    like a hang. An HTTP error the client retries (a 503, a rate limit) keeps its own lines,
    which say how long it waits. The filter sits on the client's module logger, so while i2i
    talks to the Hub it also quiets other threads' network retries; they still fail as before.
    """

    def __init__(self) -> None:
        super().__init__()
        self.told = False
        self.quiet = False  # whether the last failure was one of those told here

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if " thrown while requesting " in message:
            self.quiet = not message.startswith("HTTP Error")
            if self.quiet and not self.told:
                self.told = True
                why = message.split(" thrown while requesting ")[0].strip("'\" ")
                _log.warning(
                    "the Hub at %s does not answer (%s); trying again for a while (Ctrl-C stops)",
                    _endpoint(),
                    why,
                )
            return not self.quiet
        return not (self.quiet and message.startswith("Retrying in"))


@contextmanager
def hub_errors(
    repo_id: str,
    revision: str | None,
    kind: str = "model repo",
    *,
    token: str | None = None,
    write: bool = False,
) -> Iterator[None]:
    """The Hub's failures as one-line ``HubError``s saying what to do; ``token`` (else the
    login's) and ``write`` (a push, not a read) tell which advice a refusal needs."""
    from huggingface_hub import errors, get_token

    rev = f" at revision {revision!r}" if revision else ""
    retries = logging.getLogger("huggingface_hub.utils._http")
    quiet = _OneLineRetries()
    retries.addFilter(quiet)
    try:
        yield
    except errors.HFValidationError as error:
        raise HubError(f"{repo_id!r} is not a valid Hub repo id ({one_line(error)})") from None
    except errors.RepositoryNotFoundError as error:
        raise HubError(
            f"{kind} {repo_id!r} was not found on {_endpoint()} (check the name; a private "
            f"repo needs a token: set HF_TOKEN or run `hf auth login`)"
        ) from error
    except errors.RevisionNotFoundError as error:
        raise HubError(
            f"repo {repo_id!r} has no revision {revision!r} (a branch, tag or commit)"
        ) from error
    except errors.RemoteEntryNotFoundError as error:
        raise HubError(f"repo {repo_id!r}{rev} has no {CONFIG}: it is not an i2i model") from error
    except errors.LocalEntryNotFoundError as error:
        from huggingface_hub import constants

        way = (
            "unset HF_HUB_OFFLINE to download it"
            if constants.HF_HUB_OFFLINE
            else f"check the network (or HF_ENDPOINT, now {_endpoint()}) and try again"
        )
        raise HubError(
            f"{repo_id!r}{rev} is not in the local cache and the Hub cannot be reached; {way}"
        ) from error
    except errors.OfflineModeIsEnabled as error:
        raise HubError(
            f"HF_HUB_OFFLINE is set, so {repo_id!r} cannot be reached; unset it to push or pull"
        ) from error
    except errors.HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            access = "write" if write else "read"
            if not (token or get_token()):
                raise HubError(
                    f"the Hub needs a token for {repo_id!r} (HTTP {status}) and none is set; set "
                    f"HF_TOKEN or run `hf auth login` with a token that has {access} access"
                ) from error
            raise HubError(
                f"the Hub rejected the token for {repo_id!r} (HTTP {status}); check HF_TOKEN or "
                f"run `hf auth login` with a token that has {access} access to it"
            ) from error
        raise HubError(f"the Hub failed for {repo_id!r}: {one_line(error)}") from error
    except (OSError, ConnectionError) as error:
        raise HubError(f"cannot reach the Hub at {_endpoint()} for {repo_id!r}: {error}") from error
    except Exception as error:
        if type(error).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise
        raise HubError(f"cannot reach the Hub at {_endpoint()} for {repo_id!r}: {error}") from error
    finally:
        retries.removeFilter(quiet)


def pull(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """Download (or find in the HF cache) a model; returns its local folder."""
    from huggingface_hub import hf_hub_download, snapshot_download

    from i2i import __version__

    if "@" in repo_id and revision is None:
        repo_id, revision = split_revision(repo_id)
    if not REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub model id; expected USER/REPO")
    if revision is not None and not revision.strip():
        raise HubError("the revision is empty; give a branch, tag or commit, or leave it out")
    with hub_errors(repo_id, revision, token=token):
        # config.json first: a repo that is not an i2i model fails before any large download.
        config_path = hf_hub_download(
            repo_id,
            CONFIG,
            revision=revision,
            token=token,
            library_name="i2i",
            library_version=__version__,
        )
        read_config(Path(config_path).parent)
        folder = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=MODEL_FILES,
            token=token,
            library_name="i2i",
            library_version=__version__,
        )
    if not (Path(folder) / WEIGHTS).is_file():
        raise HubError(f"repo {repo_id!r} has no {WEIGHTS}: it is not a complete i2i model")
    try:
        verify_model(Path(folder))  # the config resolves and fits the header: nothing allocated
    except I2IError as error:
        raise HubError(f"repo {repo_id!r}{f'@{revision}' if revision else ''}: {error}") from None
    return Path(folder)


def _verify_copy(source: Path, staged: Path) -> None:
    """The staged copy is what is sent, so it is checked again: a file replaced between the
    check of ``source`` and its copy is not uploaded."""
    try:
        verify_model(staged)
    except I2IError:  # a bad checkpoint, or a config now naming an unknown network
        raise CheckpointError(
            f"{source} changed while it was being pushed (its files no longer fit together); "
            f"push it again once nothing writes to it"
        ) from None


def push(
    model: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
    with_discriminators: bool = False,
    license: str | None = None,
    datasets: Sequence[str] = (),
    check: Callable[[dict[str, Any]], object] | None = None,
) -> Any:
    """Upload a model folder, or a training run exported on the fly, to ``repo_id``.

    The card is re-rendered with ``repo_id`` so its usage lines are copy-paste ready;
    ``license`` (a Hub license id: mit, apache-2.0, cc-by-nc-4.0, other...) and ``datasets``
    (Hub dataset ids) go into the pushed config.json and the card's metadata. ``check`` is
    called with the config to be pushed before anything is uploaded: what comes after the push
    (a Space that serves it) can refuse a model before the repo is touched.
    """
    from huggingface_hub import HfApi

    from i2i.models.card import render_card

    if license is not None and not LICENSE_ID.match(license):
        raise HubError(f"--license {short(license)} is not a Hub license id (e.g. mit, apache-2.0)")
    bad = [d for d in datasets if not DATASET_ID.match(d)]
    if bad:
        raise HubError(f"--dataset {short(bad[0])} is not a Hub dataset id (NAME or USER/NAME)")
    if not REPO_ID.match(repo_id):
        name, at = split_revision(repo_id)
        if at and REPO_ID.match(name):
            raise HubError(f"push to {name!r} with --revision {at} (Python: revision=) instead")
        raise HubError(f"{repo_id!r} is not a Hub repo id; expected USER/REPO")
    source = Path(model)
    with tempfile.TemporaryDirectory(prefix="i2i-push-") as tmp:
        staged = Path(tmp) / "model"
        if is_run_folder(source):
            export_run(source, staged, with_discriminators=with_discriminators)
        elif (source / CONFIG).is_file():
            verify_model(source)  # the config resolves and fits the weights: nothing broken
            if with_discriminators and not read_config(source).get("discriminators"):
                raise I2IError(
                    f"{source} is a model folder without discriminators, and only a training "
                    f"run has them: push the run folder with --with-discriminators, or push "
                    f"this folder without it"
                )
            staged.mkdir()
            for name in (WEIGHTS, SAMPLES):  # the card is rewritten below
                path = source / name
                if path.exists() or path.is_symlink():  # a link out of the folder is refused
                    copy_regular(path, source, staged / name, name)
            copy_regular(source / CONFIG, source, staged / CONFIG, CONFIG)
            _verify_copy(source, staged)
        else:
            raise I2IError(f"{source} is neither an i2i model folder nor a training run folder")
        config = read_config(staged)
        if check is not None:
            check(config)
        if license is not None or datasets:
            config["license"] = license if license is not None else config.get("license")
            config["datasets"] = list(datasets) or config.get("datasets", [])
            (staged / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        config["has_samples"] = (staged / SAMPLES).is_file()
        (staged / CARD).write_text(render_card(config, repo_id=repo_id, revision=revision))
        api = HfApi(token=token)
        with hub_errors(repo_id, revision, token=token, write=True):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if private:  # an existing public repo stays public unless told otherwise
                api.update_repo_settings(repo_id, private=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            # A file of the model format that this push lacks (an old samples.png) would stay
            # in the repo and describe another model: it goes in the same commit.
            stale = [name for name in MODEL_FILES if not (staged / name).is_file()]
            return api.upload_folder(
                folder_path=str(staged),
                repo_id=repo_id,
                revision=revision,
                commit_message=message or "Upload i2i model",
                delete_patterns=stale or None,
            )
