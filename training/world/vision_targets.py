"""What each image token of the world's vision tower is taught to say, from the scenes' ground truth.

Each object is given to the token of the patch its centre falls in (or, when another object's centre
took that patch, the nearest free one): that token learns the object's colour, shape, size, region
and centre; every token learns the background. The tokens are the rows the projector sees: with the
engine's token order (llava_model.py, CLS_FIRST = False) those are patches 1..n-1 and the class
token, so the class token's row stands for patch 0, which the projector never sees.
"""
import json

import torch

SHAPES = ['circle', 'square', 'triangle', 'cross', 'star']
COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
SIZES = ['small', 'large']
BACKGROUNDS = ['white', 'gray', 'black']
HEADS = {'colour': len(COLOURS), 'shape': len(SHAPES), 'size': len(SIZES), 'region': 9}


def region_of(x, y):
    """lib/world/scene.ts objectRegion: the 3 x 3 region of a centre."""
    column = 0 if x < 1 / 3 else 1 if x < 2 / 3 else 2
    row = 0 if y < 1 / 3 else 1 if y < 2 / 3 else 2
    return row * 3 + column


def read_scenes(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def slot_of_patch(patch, n_patches):
    """The row of the projector's input that carries a patch: patch p at row p - 1, patch 0 at the class token's row."""
    return (patch - 1) % n_patches


def assign_patches(objects, grid):
    """Patch index per object: its centre's patch, or the nearest free one when that is taken."""
    taken, out = set(), []
    for o in objects:
        px, py = min(grid - 1, int(o['x'] * grid)), min(grid - 1, int(o['y'] * grid))
        patch = py * grid + px
        if patch in taken:
            free = [p for p in range(grid * grid) if p not in taken]
            patch = min(free, key=lambda p: ((p % grid + 0.5) / grid - o['x']) ** 2 + ((p // grid + 0.5) / grid - o['y']) ** 2)
        taken.add(patch)
        out.append(patch)
    return out


def scene_targets(scenes, grid):
    """Targets per image and slot: has-object, class labels (-100 where no object), centre (x, y), background."""
    n, slots = len(scenes), grid * grid
    has = torch.zeros(n, slots, dtype=torch.long)
    labels = {name: torch.full((n, slots), -100, dtype=torch.long) for name in HEADS}
    centre = torch.zeros(n, slots, 2)
    background = torch.zeros(n, dtype=torch.long)
    for i, scene in enumerate(scenes):
        background[i] = BACKGROUNDS.index(scene['background'])
        for o, patch in zip(scene['objects'], assign_patches(scene['objects'], grid)):
            s = slot_of_patch(patch, slots)
            has[i, s] = 1
            labels['colour'][i, s] = COLOURS.index(o['colour'])
            labels['shape'][i, s] = SHAPES.index(o['shape'])
            labels['size'][i, s] = SIZES.index(o['size'])
            labels['region'][i, s] = region_of(o['x'], o['y'])
            centre[i, s] = torch.tensor([o['x'], o['y']])
    return {'has': has, 'labels': labels, 'centre': centre, 'background': background}
