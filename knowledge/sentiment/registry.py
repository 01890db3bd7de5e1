"""Where sentiment models live: versioned directories under DATA_DIR/models/sentiment, and the bundled default.

`crypto-agent news train-sentiment` writes DATA_DIR/models/sentiment/<version>/ (version = UTC time of training
plus a digest of the weights, so names sort by age). The service uses the newest directory that loads; with none
(or none loadable) it uses the default shipped in the package (`knowledge/sentiment/default_model`), and says so
in `note`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from knowledge.sentiment.head import META_FILE, ModelFileError, SentimentHead

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "default_model"
VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def models_root(data_dir: Path) -> Path:
    return data_dir / "models" / "sentiment"


@dataclass(frozen=True)
class LoadedModel:
    head: SentimentHead
    path: Path
    bundled: bool
    note: str


def trained_versions(data_dir: Path) -> list[Path]:
    """Trained model directories under `data_dir`, oldest first (names sort by time)."""
    root = models_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and VERSION_RE.match(p.name) and (p / META_FILE).exists())


def newest_version(data_dir: Path) -> Path | None:
    versions = trained_versions(data_dir)
    return versions[-1] if versions else None


def load_model(data_dir: Path) -> LoadedModel:
    """The newest trained model that loads, else the bundled default (with a note saying why)."""
    skipped: list[str] = []
    for path in reversed(trained_versions(data_dir)):
        try:
            head = SentimentHead.load(path)
        except ModelFileError as exc:
            log.warning("skipping sentiment model %s: %s", path, exc)
            skipped.append(path.name)
            continue
        return LoadedModel(head, path, False, f"trained model {head.version} from {path}")
    head = SentimentHead.load(BUNDLED_DIR)
    why = (f"trained models {', '.join(skipped)} could not be loaded" if skipped
           else f"no trained model under {models_root(data_dir)}")
    note = (f"{why}; using the bundled default {head.version} "
            "(train one with `crypto-agent news train-sentiment --data FILE`)")
    return LoadedModel(head, BUNDLED_DIR, True, note)


def save_trained(head: SentimentHead, data_dir: Path) -> Path:
    """Write `head` as DATA_DIR/models/sentiment/<version>/ (written aside, then renamed: never half a model)."""
    import shutil
    import tempfile

    root = models_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / head.version
    if target.exists():
        raise FileExistsError(f"{target} exists already")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        head.save(tmp)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
