"""Render a picture of the "DLATrack" sidebar panel without a display, for the README.

Blender cannot draw its UI in background mode (no GPU context), so this records what the panel's real
`draw()` asks for (boxes, rows, labels, properties with their current values, operator buttons) through a
stand-in layout, lays it out like Blender's sidebar, and renders that as flat text and rectangles with
Workbench. Widgets are simplified (no icons), but every entry and label comes from the add-on's code.

    .venv-blender/bin/python blender_addon/docs/render_panel.py OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402

WIDTH, LINE, PAD = 300, 22, 6
COLOURS = {
    "panel": (0.19, 0.19, 0.19), "box": (0.15, 0.15, 0.15), "button": (0.33, 0.33, 0.33), "field": (0.11, 0.11, 0.11),
    "text": (0.9, 0.9, 0.9), "dim": (0.6, 0.6, 0.6), "accent": (0.28, 0.45, 0.7), "header": (0.24, 0.24, 0.24),
}  # fmt: skip (sRGB, as in Blender's default theme)


def linear(colour: tuple) -> tuple:
    """Workbench's object colours are scene-linear; the theme colours above are sRGB."""
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour)


class Recorder:
    """Stands in for `bpy.types.UILayout`: records the calls a panel's draw() makes."""

    def __init__(self, kind: str = "column") -> None:
        self.kind, self.items, self.scale_y, self.enabled = kind, [], 1.0, True

    def _child(self, kind: str) -> Recorder:
        child = Recorder(kind)
        self.items.append(child)
        return child

    def box(self) -> Recorder:
        return self._child("box")

    def row(self, **_: object) -> Recorder:
        return self._child("row")

    def column(self, **_: object) -> Recorder:
        return self._child("column")

    def separator(self, **_: object) -> None:
        self.items.append(("separator",))

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self.items.append(("label", text))

    def operator(self, idname: str, text: str | None = None, icon: str = "NONE") -> None:
        module, name = idname.split(".")
        label = text if text is not None else getattr(getattr(bpy.ops, module), name).get_rna_type().name
        self.items.append(("button", label))

    def progress(self, factor: float = 0.0, text: str = "", **_: object) -> None:
        self.items.append(("progress", text, factor))

    def prop(self, data: object, name: str, text: str | None = None, **_: object) -> None:
        rna = data.bl_rna.properties[name]
        label = rna.name if text is None else text
        value = getattr(data, name)
        if rna.type == "BOOLEAN":
            self.items.append(("check", label, bool(value)))
        elif rna.type == "ENUM":
            shown = next(i.name for i in rna.enum_items if i.identifier == value)
            self.items.append(("field", f"{label}: {shown}" if label else shown))
        elif rna.type == "POINTER":
            self.items.append(("field", value.name if value is not None else f"({label or rna.name})"))
        elif rna.type == "STRING":
            self.items.append(("field", value or f"({rna.name})"))
        else:
            self.items.append(("field", f"{label}: {value}"))


def layout(node: Recorder | tuple, x: float, y: float, width: float, out: list) -> float:
    """Place `node` at (x, y) (y grows downwards); appends drawables; returns the height used."""
    if isinstance(node, tuple):
        height = LINE * (0.6 if node[0] == "separator" else 1.0)
        out.append((node, x, y, width, LINE))
        return height + 2
    scale = node.scale_y
    if node.kind == "row":
        children = node.items or []
        each = (width - 2 * (len(children) - 1)) / max(len(children), 1)
        heights = [layout(child, x + i * (each + 2), y, each, out) for i, child in enumerate(children)]
        return max(heights, default=0.0)
    inset = PAD if node.kind == "box" else 0
    if node.kind == "box":
        marker = len(out)
    used = inset
    for child in node.items:
        if isinstance(child, tuple) and scale != 1.0:
            out.append((child, x + inset, y + used, width - 2 * inset, LINE * scale))
            used += LINE * scale + 2
        else:
            used += layout(child, x + inset, y + used, width - 2 * inset, out)
    used += inset
    if node.kind == "box":
        out.insert(marker, (("rect", "box"), x, y, width, used - 2))
    return used + (4 if node.kind == "box" else 0)


def add_rect(scene: bpy.types.Scene, x: float, y: float, w: float, h: float, colour: tuple, z: float) -> None:
    mesh = bpy.data.meshes.new("rect")
    mesh.from_pydata([(x, -y, z), (x + w, -y, z), (x + w, -y - h, z), (x, -y - h, z)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("rect", mesh)
    obj.color = (*linear(colour), 1.0)
    scene.collection.objects.link(obj)


def add_text(scene: bpy.types.Scene, text: str, x: float, y: float, colour: tuple, centre: bool = False) -> None:
    curve = bpy.data.curves.new("text", "FONT")
    curve.body = text if len(text) < 48 else text[:22] + "…" + text[-22:]
    curve.size = 11.0
    curve.align_x = "CENTER" if centre else "LEFT"
    curve.align_y = "CENTER"
    obj = bpy.data.objects.new("text", curve)
    obj.location = (x, -y, 0.3)
    obj.color = (*linear(colour), 1.0)
    scene.collection.objects.link(obj)


def draw(scene: bpy.types.Scene, drawables: list) -> None:
    for (item, *rest), x, y, w, h in drawables:
        mid = y + h / 2
        if item == "rect":
            add_rect(scene, x, y, w, h, COLOURS["box"], 0.05)
        elif item == "label":
            add_text(scene, rest[0], x + 4, mid, COLOURS["text"])
        elif item == "button":
            add_rect(scene, x, y, w, h, COLOURS["button"], 0.1)
            add_text(scene, rest[0], x + w / 2, mid, COLOURS["text"], centre=True)
        elif item == "field":
            add_rect(scene, x, y, w, h, COLOURS["field"], 0.1)
            add_text(scene, rest[0], x + 6, mid, COLOURS["text"] if not rest[0].startswith("(") else COLOURS["dim"])
        elif item == "check":
            add_rect(scene, x + 2, y + 4, h - 8, h - 8, COLOURS["accent"] if rest[1] else COLOURS["field"], 0.1)
            add_text(scene, rest[0], x + h + 2, mid, COLOURS["text"])
        elif item == "progress":
            add_rect(scene, x, y, w, h, COLOURS["field"], 0.1)
            add_rect(scene, x, y, w * rest[1], h, COLOURS["accent"], 0.15)
            add_text(scene, rest[0], x + w / 2, mid, COLOURS["text"], centre=True)


def main(out_png: str) -> None:
    import blender_addon
    from blender_addon.ui.panel import VIEW3D_PT_dlatrack

    blender_addon.register()
    scene = bpy.context.scene
    settings = scene.dlatrack
    settings.avatar_path = "//avatars/sample_subject"
    settings.video_path = "//clips/sunset_window.mp4"
    settings.frame_count = 120
    recorder = Recorder()
    VIEW3D_PT_dlatrack.draw(type("PanelStandIn", (), {"layout": recorder})(), bpy.context)
    drawables: list = [((("label", "DLATrack"),)[0], PAD, 2, WIDTH, LINE)]
    height = LINE + 4 + layout(recorder, PAD, LINE + 6, WIDTH - 2 * PAD, drawables) + PAD

    canvas = bpy.data.scenes.new("panel")
    add_rect(canvas, 0, 0, WIDTH, height, COLOURS["panel"], 0.0)
    add_rect(canvas, 0, 0, WIDTH, LINE + 2, COLOURS["header"], 0.02)
    draw(canvas, drawables)
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = max(WIDTH, height)
    camera.location = (WIDTH / 2, -height / 2, 10)
    canvas.collection.objects.link(camera)
    canvas.camera = camera
    canvas.render.engine = "BLENDER_WORKBENCH"
    canvas.display.shading.light = "FLAT"
    canvas.display.shading.color_type = "OBJECT"
    canvas.view_settings.view_transform = "Standard"
    canvas.render.resolution_x, canvas.render.resolution_y = 2 * WIDTH, int(2 * height)
    canvas.render.filepath = str(Path(out_png).resolve())
    with bpy.context.temp_override(scene=canvas):
        bpy.ops.render.render(write_still=True, scene=canvas.name)


if __name__ == "__main__":
    main(sys.argv[-1])
