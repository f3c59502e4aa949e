"""Pretrains the world's vision tower alone on the scenes' ground truth: the world's counterpart of
the pretrained CLIP that LLaVA-1.5 starts from (which it then keeps frozen, as train_llava.py does).

    nice -n 15 /usr/bin/python3 training/world/pretrain_vision.py DATA_DIR OUT_DIR [--steps N] [--seed S] [--device cpu|cuda]

Every image token the projector sees is taught, through linear heads on the tower's output, what
vision_targets.py gives it: whether an object is centred in its patch, that object's colour, shape,
size, region and centre, and the background. Writes OUT_DIR/{vision.pt, vision-loss.csv,
vision-train.json, probe.json}; resumes from OUT_DIR/vision-checkpoint.pt with --resume.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from llava_model import VisionTower
from probe_vision import load_images, probe
from vision_targets import BACKGROUNDS, HEADS, read_scenes, scene_targets


class TowerWithHeads(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tower = VisionTower(cfg)
        n = cfg['vision']['nEmbd']
        self.heads = nn.ModuleDict({name: nn.Linear(n, classes) for name, classes in HEADS.items()})
        self.has = nn.Linear(n, 2)
        self.centre = nn.Linear(n, 2)
        self.background = nn.Linear(n, len(BACKGROUNDS))

    def loss(self, images, t):
        f = self.tower(images)  # [B, slots, n]
        parts = {'has': F.cross_entropy(self.has(f).flatten(0, 1), t['has'].flatten())}
        for name, head in self.heads.items():
            parts[name] = F.cross_entropy(head(f).flatten(0, 1), t['labels'][name].flatten(), ignore_index=-100)
        mask = t['has'].bool()
        # Centres in units of a patch side, so a pixel off costs about what a wrong class does.
        grid = math.sqrt(f.shape[1])
        parts['centre'] = F.smooth_l1_loss(self.centre(f)[mask] * grid, t['centre'][mask] * grid)
        parts['background'] = F.cross_entropy(self.background(f).mean(1), t['background'])
        return sum(parts.values()), parts


def select(t, idx):
    return {'has': t['has'][idx], 'labels': {k: v[idx] for k, v in t['labels'].items()}, 'centre': t['centre'][idx], 'background': t['background'][idx]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--resume', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = json.load(open(os.path.join(args.data, 'config.json')))
    grid = cfg['imageSize'] // cfg['patchSize']
    images = load_images(os.path.join(args.data, 'images.u8'), cfg['imageSize'])
    targets = scene_targets(read_scenes(os.path.join(args.data, 'world', 'scenes.jsonl')), grid)
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device(args.device)
    model = TowerWithHeads(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup))))

    ckpt_path = os.path.join(args.out, 'vision-checkpoint.pt')
    start, elapsed, mode = 0, 0.0, 'w'
    gen = torch.Generator().manual_seed(args.seed)
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location='cpu')
        model.load_state_dict(ckpt['model'])
        opt.load_state_dict(ckpt['opt'])
        gen.set_state(ckpt['gen'])
        start, elapsed, mode = ckpt['step'], ckpt['elapsed'], 'a'
    log = open(os.path.join(args.out, 'vision-loss.csv'), mode)
    if mode == 'w':
        log.write('step,loss,' + ','.join(['has', *HEADS, 'centre', 'background']) + ',lr,seconds\n')
    t0 = time.time() - elapsed
    for step in range(start, args.steps):
        idx = torch.randint(0, images.shape[0], (args.batch,), generator=gen)
        batch = images[idx]
        t = {k: (v.to(dev) if torch.is_tensor(v) else {n: x.to(dev) for n, x in v.items()}) for k, v in select(targets, idx).items()}
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        loss, parts = model.loss(batch.to(dev), t)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.write(f'{step + 1},{loss.item():.4f},' + ','.join(f'{p.item():.4f}' for p in parts.values()) + f',{lr_at(step):.6f},{time.time() - t0:.1f}\n')
        log.flush()
        if (step + 1) % 50 == 0:
            print(f'step {step + 1} loss {loss.item():.4f} ' + ' '.join(f'{k} {v.item():.3f}' for k, v in parts.items()) + f' {time.time() - t0:.0f}s', flush=True)
        if (step + 1) % 250 == 0 or step + 1 == args.steps:
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'gen': gen.get_state(), 'step': step + 1, 'elapsed': time.time() - t0}, ckpt_path)
    seconds = time.time() - t0
    tower = model.tower.cpu()
    torch.save({'tower': tower.state_dict()}, os.path.join(args.out, 'vision.pt'))
    json.dump({'steps': args.steps, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'threads': args.threads, 'device': args.device,
               'seconds': seconds, 'images': int(images.shape[0]), 'torch': torch.__version__},
              open(os.path.join(args.out, 'vision-train.json'), 'w'), indent=1)
    print(f'vision tower done in {seconds:.0f}s; probing', flush=True)
    tower.eval()
    result = probe(tower, args.data, cfg)
    result['probed'] = 'vision tower output'
    json.dump(result, open(os.path.join(args.out, 'probe.json'), 'w'), indent=1)
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
