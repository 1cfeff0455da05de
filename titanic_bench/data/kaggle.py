"""Download the Titanic training set from Kaggle with kagglehub.

kagglehub finds the credentials itself: ``KAGGLE_API_TOKEN``, or ``KAGGLE_USERNAME`` and
``KAGGLE_KEY``, or a ``kaggle.json`` in ``KAGGLE_CONFIG_DIR`` (default ``~/.kaggle``); a
public data set downloads without any. A ``kaggle.json`` in the working directory is
offered to it too, by pointing ``KAGGLE_CONFIG_DIR`` there for the download only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from titanic_bench.errors import DataError

KAGGLE_HANDLE = "yasserh/titanic-dataset"
KAGGLE_FILE = "Titanic-Dataset.csv"
CONFIG_DIR_ENV = "KAGGLE_CONFIG_DIR"
CREDENTIALS_FILE = "kaggle.json"


def download_from_kaggle() -> Path:
    """The data set's CSV, downloaded (or found in kagglehub's cache)."""
    import kagglehub

    try:
        with _credentials_in_working_directory():
            folder = Path(kagglehub.dataset_download(KAGGLE_HANDLE))
    except Exception as error:  # kagglehub raises many network, auth and file types
        raise DataError(
            f"could not download {KAGGLE_HANDLE} from Kaggle ({type(error).__name__}: "
            f"{_without_key(str(error).strip().splitlines()[0] if str(error).strip() else '')}). "
            "Check the network and your Kaggle credentials (KAGGLE_USERNAME and KAGGLE_KEY, or a "
            "kaggle.json as in kaggle.json.template), or use the shipped copy with --bench-data package."
        ) from None
    for candidate in (folder / KAGGLE_FILE, *sorted(folder.glob("*.csv"))):
        if candidate.is_file():
            return candidate
    raise DataError(f"the Kaggle download in {folder} holds no CSV file ({KAGGLE_FILE} expected).")


@contextmanager
def _credentials_in_working_directory() -> Iterator[None]:
    """Let kagglehub read ./kaggle.json when it has no credentials file of its own."""
    local = Path.cwd() / CREDENTIALS_FILE
    own = Path(os.environ.get(CONFIG_DIR_ENV, Path.home() / ".kaggle")) / CREDENTIALS_FILE
    if own.is_file() or not local.is_file():
        yield
        return
    previous = os.environ.get(CONFIG_DIR_ENV)
    os.environ[CONFIG_DIR_ENV] = str(local.parent)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[CONFIG_DIR_ENV]
        else:
            os.environ[CONFIG_DIR_ENV] = previous


def _without_key(text: str) -> str:
    """``text`` with the Kaggle key, wherever kagglehub found it, masked."""
    from kagglehub.config import get_kaggle_credentials

    try:
        with _credentials_in_working_directory():
            credentials = get_kaggle_credentials()
    except ValueError:  # an unreadable kaggle.json
        credentials = None
    for secret in (credentials.key, credentials.api_key) if credentials else ():
        if secret:
            text = text.replace(secret, "***")
    return text
