"""Linear probes of the world's image tokens: how much of each object's colour, shape, size and region
a linear read-out of the token carrying it recovers, fitted on training scenes and scored on held-out
ones (the validation scenes of make-data.ts, never trained on).

    /usr/bin/python3 training/world/probe_vision.py DATA_DIR CHECKPOINT [--projector] [--out probe.json]

CHECKPOINT is pretrain_vision.py's vision.pt or train_llava.py's checkpoint.pt; --projector probes the
projector's output (what the language model reads) instead of the tower's.
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F

from llava_model import VisionTower, WorldLlava
from vision_targets import HEADS, read_scenes, scene_targets


def load_images(path, size):
    raw = open(path, 'rb').read()
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, size, size, 3)


@torch.no_grad()
def features_of(fn, images, batch=500):
    return torch.cat([fn(images[i : i + batch]) for i in range(0, images.shape[0], batch)])


def object_rows(features, targets):
    """One row per object: its token's features and its labels."""
    mask = targets['has'].bool()
    return features[mask], {name: targets['labels'][name][mask] for name in HEADS}


def fit_linear(x, y, classes, steps=300):
    """Multinomial logistic regression (full-batch LBFGS, light L2), on standardised features."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn='strong_wolfe')
    xs = (x - mean) / std

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, y) + 1e-4 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: ((z - mean) / std) @ w.detach() + b.detach()


def probe(feature_fn, data_dir, cfg, train_scenes=3000):
    """Held-out accuracy of a linear probe per attribute, at the token that carries each object."""
    grid = cfg['imageSize'] // cfg['patchSize']
    size = cfg['imageSize']
    train_images = load_images(os.path.join(data_dir, 'images.u8'), size)[:train_scenes]
    train_targets = scene_targets(read_scenes(os.path.join(data_dir, 'world', 'scenes.jsonl'))[:train_scenes], grid)
    val_images = load_images(os.path.join(data_dir, 'images-val.u8'), size)
    val_targets = scene_targets(read_scenes(os.path.join(data_dir, 'val-world', 'scenes.jsonl')), grid)
    x_train, y_train = object_rows(features_of(feature_fn, train_images), train_targets)
    x_val, y_val = object_rows(features_of(feature_fn, val_images), val_targets)
    result = {'trainObjects': int(x_train.shape[0]), 'heldOutObjects': int(x_val.shape[0])}
    for name, classes in HEADS.items():
        read_out = fit_linear(x_train, y_train[name], classes)
        result[name] = float((read_out(x_val).argmax(1) == y_val[name]).float().mean())
    return result


def tower_state(state):
    """The tower's weights from vision.pt, pretrain_vision.py's checkpoint (tower.*) or train_llava.py's (vision.*)."""
    if 'tower' in state:
        return state['tower']
    for prefix in ('tower.', 'vision.'):
        found = {k[len(prefix):]: v for k, v in state['model'].items() if k.startswith(prefix)}
        if found:
            return found
    raise ValueError('no vision tower in this checkpoint')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('checkpoint')
    ap.add_argument('--projector', action='store_true')
    ap.add_argument('--out')
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(args.data, 'config.json')))
    state = torch.load(args.checkpoint)
    if args.projector:
        vocab = json.load(open(os.path.join(args.data, 'vocab.json')))
        model = WorldLlava(cfg, len(vocab['tokens']))
        model.load_state_dict(state['model'])
        fn = model.image_embeddings
    else:
        tower = VisionTower(cfg)
        tower.load_state_dict(tower_state(state))
        fn = tower
    result = probe(fn, args.data, cfg)
    result['probed'] = 'projector output' if args.projector else 'vision tower output'
    print(json.dumps(result), flush=True)
    if args.out:
        json.dump(result, open(args.out, 'w'), indent=1)


if __name__ == '__main__':
    main()
