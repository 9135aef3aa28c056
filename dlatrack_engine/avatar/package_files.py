"""The avatar package's three files, in a folder or a zip: reading each within its size limit, and writing
them so that an interrupted save never leaves a package that looks complete but is not. What the files
must contain is `format.py`'s job."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from dlatrack_engine.avatar.limits import LimitError, check_member_size
from dlatrack_engine.wire.atomic import atomic_write_bytes, atomic_write_with

AVATAR_JSON = "avatar.json"
WEIGHTS_FILE = "weights.safetensors"
TOPOLOGY_FILE = "topology.npz"


class AvatarFormatError(ValueError):
    """An avatar package that does not follow the format; the message says where and what."""


def write_package_files(target: Path, payload: Mapping[str, bytes]) -> Path:
    """Write {file name: bytes} as a folder, or as one zip when `target` ends in .zip; each file atomically."""
    if target.suffix == ".zip":

        def write_zip(handle: BinaryIO) -> None:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, data in payload.items():
                    archive.writestr(name, data)

        atomic_write_with(target, write_zip)
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name, data in payload.items():
        atomic_write_bytes(target / name, data)
    return target


class PackageFiles:
    """Uniform read access to the three files, whether the package is a folder or a zip."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not root.exists():
            raise AvatarFormatError(f"avatar package '{root}' does not exist")
        self.archive: zipfile.ZipFile | None = None
        self.prefix = ""
        if root.is_file():
            try:
                self.archive = zipfile.ZipFile(root)
            except zipfile.BadZipFile as error:
                raise AvatarFormatError(
                    f"avatar package '{root}' is a file but not a zip (expected a folder or a .zip)"
                ) from error
            # A zip of the folder may keep the folder name as a prefix.
            names = self.archive.namelist()
            json_names = [n for n in names if n.rsplit("/", 1)[-1] == AVATAR_JSON]
            if len(json_names) == 1:
                self.prefix = json_names[0][: -len(AVATAR_JSON)]

    def name(self, file: str) -> str:
        return f"{self.root}:{self.prefix}{file}" if self.archive else str(self.root / file)

    def read(self, file: str) -> bytes:
        """The file's bytes; its size is checked (zip directory or file system) before it is read, and at
        most that many bytes are read whatever the zip directory claims."""
        if self.archive is not None:
            try:
                info = self.archive.getinfo(self.prefix + file)
            except KeyError as error:
                raise AvatarFormatError(f"{self.name(file)}: missing from the avatar package") from error
            self._limit(file, info.file_size)
            with self.archive.open(info) as handle:
                data = handle.read(info.file_size + 1)  # the directory's size, checked; no more is read
        else:
            full = self.root / file
            if not full.is_file():
                raise AvatarFormatError(f"{full}: missing from the avatar package (expected {AVATAR_JSON}, "
                                        f"{WEIGHTS_FILE} and {TOPOLOGY_FILE})")
            size = full.stat().st_size
            self._limit(file, size)
            with open(full, "rb") as handle:
                data = handle.read(size + 1)
        self._limit(file, len(data))  # grew, or the zip directory understated it
        return data

    def _limit(self, file: str, size: int) -> None:
        try:
            check_member_size(file, self.name(file), size)
        except LimitError as error:
            raise AvatarFormatError(str(error)) from error
