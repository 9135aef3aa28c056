"""Blender UI of the add-on: preferences, scene properties, operators and the sidebar panel."""

from __future__ import annotations


def classes() -> list[type]:
    """Every class to register, in dependency order (property groups before users)."""
    from . import avatar_ops, comparison, engine, lighting, panel, preferences, properties, relight, track

    return [
        preferences.DLATrackPreferences,
        properties.DLATrackLighting,
        properties.DLATrackSceneSettings,
        *engine.CLASSES,
        *avatar_ops.CLASSES,
        *track.CLASSES,
        *relight.CLASSES,
        *comparison.CLASSES,
        *panel.CLASSES,
        *lighting.CLASSES,  # its sub-panel after the main panel
    ]
