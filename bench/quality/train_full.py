"""One model of the data-limited loop (loop.ts): the world LLaVA's language model and projector trained in
full, the vision tower frozen, as LLaVA-1.5 trains the whole language model in stage 2.

    nice -n 15 /usr/bin/python3 bench/quality/train_full.py DATA_DIR OUT_DIR --base BASE_DIR [--init CKPT] [--val VAL_DIR] [--steps N] [--seed S]

DATA_DIR / VAL_DIR: train.jsonl, images.u8, config.json, vocab.json (training-data.ts). BASE_DIR: the
shipped world model's weights (gguf-weights.ts); only its vision tower is taken (frozen, as in the
world model's own training). Without --init the language model and projector start from random
weights (the loop's stage 1, on captions); with --init they start from that checkpoint (stage 2).
With --val the weights kept are those of the lowest validation loss, measured every --val-every
steps (early stopping on a labelled split: every arm gets the same step budget and stops where its
own data stops helping). Writes OUT_DIR/{weights-text,weights-mmproj}.{bin,json} (export.ts),
model.pt (for --init), loss.csv, val-loss.csv and train.json, the last one only when done.
"""
import argparse
import copy
import json
import math
import os
import random
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'training', 'world'))
from llava_model import WorldLlava, gguf_tensors, round_to_f16  # noqa: E402
from train_llava import Packed, batch_loss, common_prefix, load, read_images, read_jsonl, tower_features, validation_loss, write_export  # noqa: E402
from finetune_lora import read_weights  # noqa: E402


def load_tower(model, base_dir):
    """The shipped mmproj's vision tower (already F16-rounded, as the engine loads it), frozen."""
    _, mm = gguf_tensors(model)
    weights = read_weights(os.path.join(base_dir, 'weights-mmproj'))
    with torch.no_grad():
        for name, t in mm.items():
            if name.startswith('v.'):
                t.copy_(weights[name].view(t.shape))
    for p in model.vision.parameters():
        p.requires_grad_(False)


def read_set(folder, cfg):
    return read_jsonl(os.path.join(folder, 'train.jsonl')), read_images(os.path.join(folder, 'images.u8'), cfg['imageSize'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('out')
    ap.add_argument('--base', required=True)
    ap.add_argument('--init')
    ap.add_argument('--val')
    ap.add_argument('--steps', type=int, default=400)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--val-every', type=int, default=50)
    args = ap.parse_args()

    torch.set_num_threads(1)  # measured 5-10x faster than 2 on 2 shared cores (train_llava.py)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg, vocab = load(args.data)
    os.makedirs(args.out, exist_ok=True)
    model = WorldLlava(cfg, len(vocab['tokens']))
    load_tower(model, args.base)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location='cpu')['model'])
    model.eval()  # no dropout anywhere; the tower is never trained
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = min(50, args.steps // 10)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    records, images = read_set(args.data, cfg)
    val_records, val_images = read_set(args.val, cfg) if args.val else ([], None)
    prefix = common_prefix([r['pre'] for r in records + val_records])
    n_img = cfg['imageTokens']
    train_set = Packed(records, len(prefix), n_img)
    features = tower_features(model, images)
    val_set = Packed(val_records, len(prefix), n_img) if args.val else None
    val_features = tower_features(model, val_images) if args.val else None
    print(f'{len(records)} records on {features.shape[0]} images, {len(val_records)} validation records, {args.steps} steps', flush=True)

    log = open(os.path.join(args.out, 'loss.csv'), 'w')
    log.write('step,loss,lr,seconds\n')
    val_log = open(os.path.join(args.out, 'val-loss.csv'), 'w')
    val_log.write('step,val_loss\n')
    t0 = time.time()
    order = []
    best = {'loss': math.inf, 'step': 0, 'state': None}
    for step in range(args.steps):
        if len(order) < args.batch:
            order += rng.sample(range(train_set.size), train_set.size)
        idx, order = order[: args.batch], order[args.batch:]
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        loss = batch_loss(model, prefix, train_set, features, idx)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        log.write(f'{step + 1},{loss.item():.4f},{lr_at(step):.6f},{time.time() - t0:.1f}\n')
        if (step + 1) % 50 == 0:
            log.flush()  # a reader can follow a long run
        if val_set and ((step + 1) % args.val_every == 0 or step + 1 == args.steps):
            v = validation_loss(model, prefix, val_set, val_features, limit=val_set.size)
            val_log.write(f'{step + 1},{v:.4f}\n')
            val_log.flush()
            if v < best['loss']:
                best = {'loss': v, 'step': step + 1, 'state': copy.deepcopy(model.state_dict())}
    if best['state'] is not None:
        model.load_state_dict(best['state'])
    torch.save({'model': model.state_dict()}, os.path.join(args.out, 'model.pt'))
    seconds = time.time() - t0
    write_export(model, args.out)
    json.dump({'steps': args.steps, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'records': len(records), 'images': int(features.shape[0]),
               'init': args.init, 'bestStep': best['step'] if args.val else args.steps, 'bestValLoss': best['loss'] if args.val else None,
               'seconds': seconds, 'torch': torch.__version__}, open(os.path.join(args.out, 'train.json'), 'w'), indent=1)
    print(f'done in {seconds:.0f}s, kept step {best["step"] if args.val else args.steps} (validation loss {best["loss"]:.4f})', flush=True)


if __name__ == '__main__':
    main()
