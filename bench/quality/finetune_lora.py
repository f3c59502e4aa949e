"""Round 1 of self-refinement: the round-0 world model fine-tuned with LoRA on the language model and a
trained projector, as LLaVA's finetune_task_lora.sh does (--lora_enable, r 128, alpha 256, lr 2e-4,
mm_projector_lr 2e-5, vision tower frozen, cosine schedule, warmup 3 %, weight decay 0), scaled down
to the toy model. Every control is trained by this script with the same steps, batch and seed.

    nice -n 15 /usr/bin/python3 bench/quality/finetune_lora.py DATA_DIR BASE_DIR OUT_DIR [--steps N]

DATA_DIR: train.jsonl, images.u8, config.json, vocab.json (training-data.ts). BASE_DIR: weights-text
and weights-mmproj (.bin/.json, gguf-weights.ts: the shipped round-0 GGUFs). Writes OUT_DIR/
{weights-lora, weights-mmproj}.{bin,json} (GGUF names, torch shapes) for export-round.ts, loss.csv
and train.json.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'training', 'world'))
from llava_model import WorldLlava, gguf_tensors  # noqa: E402
from train_llava import batch_loss, load, write_weights  # noqa: E402

# llama.cpp's LoRA target names -> the decoder layer's modules
TARGETS = {'attn_q': 'q', 'attn_k': 'k', 'attn_v': 'v', 'attn_output': 'o', 'ffn_gate': 'gate', 'ffn_up': 'up', 'ffn_down': 'down'}


class LoraLinear(nn.Module):
    """W x + (alpha / r) B A x with W frozen: what llama.cpp computes for an adapter at scale 1."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # PEFT's initialisation: B = 0, so training starts at W

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def read_weights(stem):
    manifest = json.load(open(stem + '.json'))
    data = open(stem + '.bin', 'rb').read()
    out = {}
    for name, entry in manifest.items():
        count = math.prod(entry['shape'])
        t = torch.frombuffer(bytearray(data[entry['offset']: entry['offset'] + 4 * count]), dtype=torch.float32)
        out[name] = t.view(entry['shape'])
    return out


def load_base(model, base_dir):
    text, mm = gguf_tensors(model)
    weights = {**read_weights(os.path.join(base_dir, 'weights-text')), **read_weights(os.path.join(base_dir, 'weights-mmproj'))}
    with torch.no_grad():
        for name, t in list(text.items()) + list(mm.items()):
            t.copy_(weights[name].view(t.shape))


def write_reference(model, records, images, count, path):
    """Greedy token ids (without </s>) for the first `count` image records, with the projector in F16 as the mmproj stores it."""
    model.eval()
    with torch.no_grad():
        for lin in (model.projector.mm0, model.projector.mm2):
            lin.weight.copy_(lin.weight.half().float())
    cases = []
    for index, r in enumerate(records):
        if len(cases) >= count:
            break
        if r['image'] < 0:
            continue
        ids, _ = model.greedy(images[r['image']], r['pre'], r['post'], 48, 2)
        cases.append({'record': index, 'tokens': ids})
    json.dump({'cases': cases}, open(path, 'w'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('base')
    ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=150)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--rank', type=int, default=8)
    ap.add_argument('--alpha', type=float, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--projector-lr', type=float, default=1e-4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--reference', type=int, default=8, help='greedy replies of the trained model to the first N image records, for the engine parity check')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg, vocab, records, images = load(args.data)
    os.makedirs(args.out, exist_ok=True)
    model = WorldLlava(cfg, len(vocab['tokens']))
    load_base(model, args.base)
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for attr in TARGETS.values():
            setattr(layer, attr, LoraLinear(getattr(layer, attr), args.rank, args.alpha))
    for p in model.projector.parameters():
        p.requires_grad_(True)
    lora_params = [p for n, p in model.named_parameters() if 'lora_' in n]
    opt = torch.optim.AdamW([{'params': lora_params, 'lr': args.lr, 'base': args.lr},
                             {'params': list(model.projector.parameters()), 'lr': args.projector_lr, 'base': args.projector_lr}],
                            weight_decay=0.0)
    warmup = max(1, round(0.03 * args.steps))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    log = open(os.path.join(args.out, 'loss.csv'), 'w')
    log.write('step,loss,seconds\n')
    t0 = time.time()
    order = []
    model.train()
    for step in range(args.steps):
        if len(order) < args.batch:
            order += rng.sample(range(len(records)), len(records))
        batch = [records[i] for i in order[: args.batch]]
        del order[: args.batch]
        for g in opt.param_groups:
            g['lr'] = g['base'] * factor(step)
        loss = batch_loss(model, records, images, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params + list(model.projector.parameters()), 1.0)
        opt.step()
        log.write(f'{step + 1},{loss.item():.4f},{time.time() - t0:.1f}\n')
        log.flush()
        if (step + 1) % 25 == 0:
            print(f'step {step + 1} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)

    write_reference(model, records, images, args.reference, os.path.join(args.out, 'reference.json'))
    lora = {}
    for i, layer in enumerate(model.layers):
        for target, attr in TARGETS.items():
            m = getattr(layer, attr)
            lora[f'blk.{i}.{target}.weight.lora_a'] = m.lora_a
            lora[f'blk.{i}.{target}.weight.lora_b'] = m.lora_b
            setattr(layer, attr, m.base)  # back to plain Linear for gguf_tensors
    write_weights(lora, os.path.join(args.out, 'weights-lora'))
    _, mm = gguf_tensors(model)
    write_weights(mm, os.path.join(args.out, 'weights-mmproj'))
    json.dump({'steps': args.steps, 'batch': args.batch, 'rank': args.rank, 'alpha': args.alpha, 'lr': args.lr,
               'projectorLr': args.projector_lr, 'seed': args.seed, 'threads': args.threads, 'records': len(records),
               'seconds': time.time() - t0, 'torch': torch.__version__},
              open(os.path.join(args.out, 'train.json'), 'w'), indent=1)
    print(f'done in {time.time() - t0:.0f}s', flush=True)


if __name__ == '__main__':
    main()
