"""Load, validate and fingerprint the Titanic training set (the Kaggle download: data.kaggle).

Every source (the copy shipped in the package, Kaggle, or a file the user names)
goes through one validation, so a session never trains on data it has not checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

from titanic_bench.errors import DataError

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; pytest loads this module for every run
    import pandas as pd

#: The raw columns a model receives: the Kaggle CSV's, less the label.
INPUT_COLUMNS: tuple[str, ...] = (
    "PassengerId", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare",
    "Cabin", "Embarked",
)  # fmt: skip
TARGET_COLUMN = "Survived"

#: sha256 of the Kaggle training set with line endings folded to LF.
PINNED_DIGEST = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"
DATASET_NAME = "titanic"
MIN_ROWS = 300

#: Source names accepted besides a file path.
PACKAGE_SOURCE = "package"
KAGGLE_SOURCE = "kaggle"

_NUMERIC_COLUMNS = ("PassengerId", "Survived", "Pclass", "Age", "SibSp", "Parch", "Fare")


@dataclass(frozen=True)
class TitanicData:
    """A validated data set and where it came from."""

    frame: pd.DataFrame
    digest: str
    source: str
    pinned: bool

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.loc[:, list(INPUT_COLUMNS)]

    @property
    def target(self) -> pd.Series:
        return self.frame[TARGET_COLUMN]


def content_digest(raw: bytes) -> str:
    """sha256 of the file's bytes with CRLF and CR folded to LF."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")).hexdigest()


def packaged_csv() -> Path:
    """The copy of the Kaggle training set shipped inside the package."""
    return Path(str(resources.files("titanic_bench") / "data" / "titanic.csv"))


def load_titanic(source: str = PACKAGE_SOURCE, *, allow_other: bool = False) -> TitanicData:
    """Load and validate the data from ``package``, ``kaggle`` or a CSV path.

    Raises :class:`DataError` when the data is unreadable, malformed, or differs
    from the pinned Kaggle file and ``allow_other`` is false.
    """
    path = resolve_source(source)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(
            f"cannot read the data file {path}: {error.strerror or error}. "
            "Check the path given with --bench-data / TITANIC_BENCH_DATA."
        ) from None
    frame = parse_csv(raw, path)
    validate_schema(frame, path)
    digest = content_digest(raw)
    pinned = digest == PINNED_DIGEST
    if not pinned and not allow_other:
        raise DataError(
            f"the data in {path} differs from the pinned Titanic training set "
            f"(sha256 {digest[:12]}..., expected {PINNED_DIGEST[:12]}...). Restore the file, "
            "or pass --bench-allow-other-data (TITANIC_BENCH_ALLOW_OTHER_DATA=1) to benchmark "
            "a different data set on purpose."
        )
    return TitanicData(frame=frame, digest=digest, source=str(path), pinned=pinned)


def resolve_source(source: str) -> Path:
    """Turn a source name into a local CSV path, downloading from Kaggle if asked."""
    if source == PACKAGE_SOURCE:
        return packaged_csv()
    if source == KAGGLE_SOURCE:
        from titanic_bench.data.kaggle import download_from_kaggle

        return download_from_kaggle()
    return Path(source).expanduser()


def parse_csv(raw: bytes, path: Path) -> pd.DataFrame:
    if not raw.strip():
        raise DataError(f"the data file {path} is empty. Restore it or point to another file.")
    import pandas as pd

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"the data file {path} is not a UTF-8 CSV (byte {error.start} is {raw[error.start]:#04x}). "
            "Save it as UTF-8, or point --bench-data at the Kaggle training set."
        ) from None
    try:
        return pd.read_csv(StringIO(text))
    except (ValueError, pd.errors.ParserError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"the data file {path} is not a readable CSV ({first}). Fix the file.") from None


def validate_schema(frame: pd.DataFrame, path: Path) -> None:
    """Check columns, dtypes, labels, keys and size; raise one DataError naming the fault."""
    import pandas as pd

    expected = (*INPUT_COLUMNS, TARGET_COLUMN)
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise DataError(
            f"the data in {path} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, frame.columns))}. Use the Kaggle Titanic training set (train.csv)."
        )
    for column in _NUMERIC_COLUMNS:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(
                f"column {column} in {path} should be numeric but holds {frame[column].dtype} "
                f"values such as {frame[column].dropna().iloc[0]!r}. Fix the file."
            )
    labels = set(frame[TARGET_COLUMN].dropna().unique().tolist())
    missing_labels = " and missing values" if frame[TARGET_COLUMN].isna().any() else ""
    if missing_labels or not labels <= {0, 1}:
        raise DataError(
            f"column {TARGET_COLUMN} in {path} must hold only 0 and 1, found {sorted(labels, key=str)}"
            f"{missing_labels}. Fix the file: 1 for survived, 0 for not."
        )
    duplicates = frame["PassengerId"][frame["PassengerId"].duplicated()].tolist()
    if duplicates:
        raise DataError(
            f"PassengerId must be unique in {path}; repeated: {duplicates[:5]}. "
            "Fix the file: one row per passenger."
        )
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"the data in {path} has {len(frame)} rows; at least {MIN_ROWS} are needed "
            "for a meaningful benchmark."
        )
