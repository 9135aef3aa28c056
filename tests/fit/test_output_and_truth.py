"""fit/output.py, fit/ground_truth.py and fit/lighting_preview.py on the fixtures' dome: what a frame's npz and
PNGs hold, the step-1 / step-3 loss fields, the overlay blend, the true registration state of a written clip
(rows, working size, K) and the preview's two halves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, truth_lighting, write_clip

from dlatrack_engine.colour import linear_to_srgb8, srgb8_to_linear
from dlatrack_engine.fit import output
from dlatrack_engine.fit.ground_truth import code_for_vertices, load_ground_truth_clip, track_arrays, truth_params
from dlatrack_engine.fit.lighting_preview import GREY, preview_png
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step3 import TrackTerms
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.png import decode_png


def test_params_round_trip_through_the_job_folder(tmp_path):
    folder = JobFolder.create(tmp_path / "job", "job-1", "track")
    params = FrameParams(torch.randn(3, 3), torch.randn(3, 3), torch.randn(3, 6))
    output.save_params(folder, tmp_path / "job" / "init.npz", params, loss=np.arange(3.0))
    assert folder.trusted(tmp_path / "job" / "init.npz")
    back, data = output.load_params(tmp_path / "job" / "init.npz", torch.device("cpu"))
    assert torch.equal(back.r, params.r) and torch.equal(back.t, params.t) and torch.equal(back.z, params.z)
    assert sorted(data) == ["loss", "r", "t", "z"] and data["loss"].tolist() == [0.0, 1.0, 2.0]
    assert output.load_npz(tmp_path / "job" / "init.npz")["loss"].tolist() == [0.0, 1.0, 2.0]
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):  # a job file never holds pickled objects
        output.load_npz(tmp_path / "objects.npz")


def test_a_texture_png_is_srgb_with_row_0_at_the_top():
    texture = torch.zeros(3, 2, 2)
    texture[0, 0, 1] = 1.0  # red, top right
    texture[2, 1, 0] = 0.5  # some blue, bottom left
    png = output.texture_png(texture.requires_grad_())
    assert png.shape == (2, 2, 3) and png.dtype == np.uint8
    assert png[0, 1].tolist() == [255, 0, 0] and png[1, 0].tolist() == [0, 0, int(linear_to_srgb8(np.array(0.5)))]


def test_the_overlay_blends_the_render_by_alpha_times_the_mask():
    frame, render = np.full((2, 2, 3), 0.2), np.full((2, 2, 3), 0.6)
    mask = np.array([[[1.0], [0.0]], [[0.5], [1.0]]])
    expected = linear_to_srgb8(frame * (1 - 0.85 * mask) + render * 0.85 * mask)
    assert np.array_equal(output.overlay_image(frame, render, mask), expected)
    assert np.array_equal(output.overlay_image(frame, render, mask, alpha=1.0)[0, 0], linear_to_srgb8(render[0, 0]))


@pytest.mark.parametrize("with_terms", [True, False], ids=["step 3", "step 1"])
def test_a_batch_writes_only_the_frames_to_do_with_their_losses(avatar, tmp_path, with_terms):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    folder = JobFolder.create(tmp_path / "job", "job-1", "track")
    params = gt_params(3)
    frames = torch.rand(3, HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(0))
    terms = TrackTerms(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.1, 0.2, 0.3])) if with_terms else None
    init_loss = torch.tensor([5.0, 6.0, 7.0, 8.0, 9.0])
    lighting = truth_lighting(avatar)
    flags = {} if with_terms else {"overlays": False, "textures": False}  # both on by default
    output.write_batch(folder, scene, lighting, frames, params, terms, init_loss, rows=[2, 3, 4], todo=[3, 4],
                       indices=[10, 11, 12, 13, 14], **flags)
    assert folder.frames_done() == [13, 14]
    frame = folder.read_frame(13)
    with torch.no_grad():
        out = scene.render(params, lighting, background=frames)
    assert np.allclose(frame["vertices"], out.vertices[1].numpy()) and np.allclose(frame["r"], params.r[1].numpy())
    assert np.allclose(frame["head_R"], params.rotation()[1].numpy()) and np.allclose(frame["head_t"], params.t[1])
    assert np.allclose(frame["z"], params.z[1].numpy())
    losses = {k: float(v) for k, v in frame.items() if k.startswith("loss_")}
    if with_terms:
        assert losses == {"loss_landmark": 8.0, "loss_pixel": pytest.approx(2.0), "loss_flow": pytest.approx(0.2)}
        assert np.array_equal(folder.read_texture("full", 14), output.texture_png(out.texture[2]))
        assert np.array_equal(folder.read_texture("relit", 14), output.texture_png(out.relit_texture[2]))
        overlay = decode_png(folder.overlay_path(13).read_bytes())
        assert np.array_equal(overlay, output.overlay_image(frames[1].numpy(), out.image[1].numpy(),
                                                            out.mask[1].numpy()))
    else:
        assert losses == {"loss_landmark": 8.0}
        assert not folder.texture_path("full", 13).exists() and not folder.overlay_path(13).exists()
        assert not folder.texture_path("relit", 13).exists()


def test_the_true_state_of_a_written_clip(avatar, tmp_path):
    truth = gt_params(3)
    write_clip(tmp_path, avatar, truth)
    clip = load_ground_truth_clip(tmp_path, avatar, work_size=48, rows=[2, 0])
    assert (clip.scene.width, clip.scene.height) == (48, 48) and clip.frames.shape == (2, 48, 48, 3)
    assert torch.allclose(clip.scene.K, torch.diag(torch.tensor([0.5, 0.5, 1.0])) @ intrinsics())
    assert np.allclose(clip.gt["K"], intrinsics().numpy()) and np.allclose(clip.gt["head_t"], truth.t[[2, 0]])
    assert torch.allclose(clip.truth.rotation(), truth.rotation()[[2, 0]], atol=1e-5)
    assert torch.allclose(clip.truth.t, truth.t[[2, 0]])
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    with torch.no_grad():
        true_mesh = scene.geometry(truth.z[[2, 0]])
        fitted = scene.geometry(clip.truth.z)
    assert float((fitted - true_mesh).norm(dim=-1).max()) < 2e-4  # 0.2 mm
    whole = load_ground_truth_clip(tmp_path, avatar, work_size=None)
    assert whole.frames.shape == (3, HEIGHT, WIDTH, 3) and torch.allclose(whole.scene.K, intrinsics())
    arrays = track_arrays(scene, clip.truth)
    assert sorted(arrays) == ["head_R", "head_t", "vertices"] and np.allclose(arrays["vertices"], fitted.numpy())
    assert np.allclose(arrays["head_R"], clip.truth.rotation().numpy())


def test_the_code_of_a_mesh_starts_at_zero_and_converges(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    z = 0.5 * torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mesh = scene.geometry(z)
    assert torch.equal(code_for_vertices(scene, mesh, iterations=0), torch.zeros(2, 6))
    one = code_for_vertices(scene, mesh, iterations=1)
    assert torch.allclose(one.abs(), torch.full((2, 6), 0.05), atol=1e-4)  # Adam's first step is lr = 0.05
    fitted = code_for_vertices(scene, mesh)
    with torch.no_grad():
        assert float((scene.geometry(fitted) - mesh).norm(dim=-1).max()) < 2e-4
    params = truth_params(scene, np.eye(3)[None].repeat(2, 0), np.zeros((2, 3)), mesh.numpy())
    assert torch.equal(params.r, torch.zeros(2, 3)) and params.t.dtype == params.r.dtype == torch.float32


def test_the_preview_is_the_frame_beside_the_relit_avatar_on_grey(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    params = gt_params(1)
    params.t[0, 2] = 2.0  # far away: small, so grey shows around it
    frame = torch.rand(HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(2))
    lighting = truth_lighting(avatar)
    image = decode_png(preview_png(scene, frame, params, lighting))
    assert image.shape == (HEIGHT, 2 * WIDTH, 3)
    assert np.array_equal(image[:, :WIDTH], linear_to_srgb8(frame.numpy()))
    with torch.no_grad():
        render = scene.render(params, lighting, background=torch.full((1, HEIGHT, WIDTH, 3), GREY)).image[0]
    assert np.array_equal(image[:, WIDTH:], linear_to_srgb8(render.numpy()))
    assert GREY == 0.18 and np.allclose(srgb8_to_linear(image[0, WIDTH]), 0.18, atol=3e-3)
