"""A loaded avatar: the DAM decoder, the lighting model G and the topology, as torch objects on a device.

`avatar.format` knows files; this module turns a validated `AvatarPackage` into networks. Weights load
strictly: a missing, unexpected or wrong-shape tensor is an error naming the key and the file, because a
silently half-loaded decoder produces plausible-looking garbage that is very hard to trace back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlatrack_engine.avatar.format import (
    NUM_LANDMARKS,
    WEIGHTS_FILE,
    AvatarFormatError,
    AvatarPackage,
    Topology,
    load_avatar_package,
    save_avatar_package,
)
from dlatrack_engine.avatar.landmark_views import ViewBinnedEmbedding
from dlatrack_engine.models.dam import DAM, DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel, relight

log = logging.getLogger(__name__)

HEAD_FRAME = "x-left,y-up,z-forward"
LandmarkEmbeddingTensors = tuple[torch.Tensor, torch.Tensor]  # ℓ_i: faces [68] int64, barycentrics [68,3]


@dataclass
class TopologyTensors:
    """`Topology` as tensors on the avatar's device (indices int64, ready for gather/index ops)."""

    faces: torch.Tensor  # [F,3]
    uv_faces: torch.Tensor  # [F,3]
    uvs: torch.Tensor  # [U,2]
    neutral: torch.Tensor  # [V,3]
    landmark_faces: torch.Tensor  # [68]
    landmark_barycentrics: torch.Tensor  # [68,3]

    @classmethod
    def from_topology(cls, topology: Topology, device: torch.device) -> TopologyTensors:
        def as_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array)).to(device=device, dtype=dtype)

        return cls(
            faces=as_tensor(topology.faces, torch.int64),
            uv_faces=as_tensor(topology.uv_faces, torch.int64),
            uvs=as_tensor(topology.uvs, torch.float32),
            neutral=as_tensor(topology.neutral, torch.float32),
            landmark_faces=as_tensor(topology.landmark_faces, torch.int64),
            landmark_barycentrics=as_tensor(topology.landmark_barycentrics, torch.float32),
        )


def load_state_strict(module: nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str, where: str) -> None:
    """Load `prefix`-ed tensors into `module`, failing on any missing/unexpected/wrong-shape key (named)."""
    expected = module.state_dict()
    given = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing:
        raise AvatarFormatError(
            f"{where}: tensor '{prefix}{missing[0]}' is missing ({len(missing)} missing in all: "
            f"{[prefix + k for k in missing[:5]]}); the weights do not match the model config"
        )
    if unexpected:
        raise AvatarFormatError(
            f"{where}: unexpected tensor '{prefix}{unexpected[0]}' ({len(unexpected)} in all); "
            "the weights do not match the model config"
        )
    for key, value in given.items():
        want = expected[key]
        if tuple(value.shape) != tuple(want.shape):
            raise AvatarFormatError(
                f"{where}: tensor '{prefix}{key}' has shape {list(value.shape)}, expected {list(want.shape)} "
                "from the model config"
            )
        if value.dtype != want.dtype:
            raise AvatarFormatError(f"{where}: tensor '{prefix}{key}' is {value.dtype}, expected {want.dtype}")
    module.load_state_dict(given, strict=True)


class Avatar:
    """DAM + G + topology on one device. Networks are in eval mode and their weights frozen: gradients flow
    through them to codes and poses, and step 2 adapts a copy of G (fit/video_lighting.py), so a weight
    gradient of the package's own networks is never used; computing them cost ~30 % of a step-3 iteration."""

    def __init__(
        self,
        dam: DAM,
        lighting: LightingModel,
        topology: Topology,
        config: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.dam = dam.to(self.device).eval().requires_grad_(False)
        self.lighting = lighting.to(self.device).eval().requires_grad_(False)
        self.topology_arrays = topology
        self.topology = TopologyTensors.from_topology(topology, self.device)
        self.config: dict[str, Any] = dict(config) if config else {}
        if topology.num_vertices != dam.cfg.num_vertices:
            raise ValueError(
                f"avatar: topology has {topology.num_vertices} vertices but the DAM config says {dam.cfg.num_vertices}"
            )
        if lighting.cfg.texture_size != dam.cfg.texture_size:
            raise ValueError(
                f"avatar: lighting texture_size {lighting.cfg.texture_size} != DAM texture_size {dam.cfg.texture_size}"
            )

    # ---- loading / saving -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Avatar:
        return cls.from_package(load_avatar_package(path), device)

    @classmethod
    def from_package(cls, package: AvatarPackage, device: torch.device | str = "cpu") -> Avatar:
        where_json = f"{package.source}/avatar.json"
        where_weights = f"{package.source}/{WEIGHTS_FILE}"
        try:
            dam_cfg = DAMConfig.from_dict(package.config["dam"])
            light_cfg = LightingConfig.from_dict(package.config["lighting"])
        except (ValueError, TypeError) as error:
            raise AvatarFormatError(f"{where_json}: {error}") from error
        for field, actual in (("texture_size", dam_cfg.texture_size), ("latent_size", dam_cfg.latent_size)):
            if package.config[field] != actual:
                raise AvatarFormatError(
                    f"{where_json}: field '{field}' is {package.config[field]} but 'dam.{field}' is {actual}"
                )
        dam, lighting = DAM(dam_cfg), LightingModel(light_cfg)
        load_state_strict(dam, package.tensors, "dam.", where_weights)
        load_state_strict(lighting, package.tensors, "lighting.", where_weights)
        log.info("loaded avatar '%s' from %s", package.config.get("name"), package.source)
        return cls(dam, lighting, package.topology, package.config, device)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights under the package prefixes `dam.` and `lighting.`."""
        tensors = {f"dam.{k}": v for k, v in self.dam.state_dict().items()}
        tensors.update({f"lighting.{k}": v for k, v in self.lighting.state_dict().items()})
        return tensors

    def package_config(self, provenance: Mapping[str, Any] | None = None, name: str | None = None) -> dict:
        config = dict(self.config)
        config.update(
            {
                "name": name or config.get("name", "avatar"),
                "units": "m",
                "camera_convention": "opencv",
                "head_frame": HEAD_FRAME,
                "texture_size": self.dam.cfg.texture_size,
                "latent_size": self.dam.cfg.latent_size,
                "dam": self.dam.cfg.to_dict(),
                "lighting": self.lighting.cfg.to_dict(),
                "landmarks": {"scheme": "ibug68", "count": NUM_LANDMARKS, **self._embeddings_entry()},
            }
        )
        config["provenance"] = dict(provenance) if provenance is not None else dict(config.get("provenance", {}))
        return config

    def to_package(
        self, path: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None, name: str | None = None
    ) -> Path:
        """Write this avatar as a package (folder or .zip); `provenance` replaces the stored one if given."""
        config = self.package_config(provenance, name)
        self.config = config
        return save_avatar_package(path, config, self.state_tensors(), self.topology_arrays)

    # ---- evaluation -------------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1: (vertices [B,V,3] head frame, fully-lit texture [B,3,T,T]) for codes z and view vectors."""
        return self.dam.decode(z, view)

    def relight(
        self, texture: torch.Tensor, light_code: torch.Tensor, head_view: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. 2-3 on an already decoded texture: -> (relit texture, gain, bias)."""
        gain, bias = self.lighting(light_code, head_view, texture)
        return relight(texture, gain, bias), gain, bias

    def relit_texture(
        self, z: torch.Tensor, view: torch.Tensor, light_code: torch.Tensor, head_view: torch.Tensor
    ) -> torch.Tensor:
        """T_v of Eq. 2 for codes z [B,Z], view [B,3], light code [B,150] and h_v [B,6] -> [B,3,T,T]."""
        _, texture = self.decode(z, view)
        return self.relight(texture, light_code, head_view)[0]

    def landmarks(self, vertices: torch.Tensor, embedding: LandmarkEmbeddingTensors | None = None) -> torch.Tensor:
        """Mesh landmarks ℓ_i (Eq. 6): barycentric points of `vertices` [B,V,3] -> [B,68,3], with the
        topology's default embedding or `embedding` (see `landmark_embedding`)."""
        faces, bary = embedding or (self.topology.landmark_faces, self.topology.landmark_barycentrics)
        corners = self.topology.faces[faces]  # [68,3]
        points = vertices[:, corners]  # [B,68,3(corner),3]
        return (points * bary[None, :, :, None]).sum(dim=2)

    def _detector_embeddings(self) -> dict[str, Any]:
        """{detector name: calibrated ℓ_i record} stored in this package (may be empty)."""
        return self.config.get("landmarks", {}).get("detector_embeddings") or {}

    def _embeddings_entry(self) -> dict[str, Any]:
        embeddings = self._detector_embeddings()
        return {"detector_embeddings": embeddings} if embeddings else {}

    def landmark_embedding(self, detector: str | None) -> tuple[LandmarkEmbeddingTensors, str]:
        """(faces [68], barycentrics [68,3]) of ℓ_i for landmarks from `detector`, and where they come from:
        the embedding calibrated for that detector (`dlatrack train landmarks`) when the package has one,
        else the topology's default."""
        stored = self._detector_embeddings().get(detector or "")
        if stored is None:
            return (self.topology.landmark_faces, self.topology.landmark_barycentrics), "default"
        faces = torch.as_tensor(stored["faces"], dtype=torch.int64, device=self.device)
        bary = torch.as_tensor(stored["barycentrics"], dtype=torch.float32, device=self.device)
        return (faces, bary), f"calibrated for {detector}"

    def landmark_view_bins(self, detector: str | None) -> ViewBinnedEmbedding | None:
        """ℓ_i per view-yaw bin calibrated for `detector` (avatar/landmark_views.py), None where the package
        has a single embedding (or none) for it."""
        bins = (self._detector_embeddings().get(detector or "") or {}).get("view_bins")
        if bins is None:
            return None
        return ViewBinnedEmbedding(
            torch.tensor(np.radians(bins["yaw_deg"]), dtype=torch.float32, device=self.device),
            torch.as_tensor(bins["faces"], dtype=torch.int64, device=self.device),
            torch.as_tensor(bins["barycentrics"], dtype=torch.float32, device=self.device),
        )
