"""Trains the world LLaVA from scratch on the step-1 data of make-data.ts, on the CPU.

    nice -n 15 /usr/bin/python3 training/world/train_llava.py DATA_DIR OUT_DIR [--steps N] [--seed S]

DATA_DIR holds config.json, vocab.json, train.jsonl and images.u8 (make-data.ts). Writes
OUT_DIR/{loss.csv, checkpoint.pt, weights-text.bin/.json, weights-mmproj.bin/.json, train.json}:
the weights under their GGUF names, rounded to F16 where the GGUF stores F16, for export.ts.
"""
import argparse
import json
import math
import os
import random
import struct
import time

import torch
import torch.nn.functional as F

from llava_model import WorldLlava, gguf_tensors, round_to_f16


def load(data_dir):
    cfg = json.load(open(os.path.join(data_dir, 'config.json')))
    vocab = json.load(open(os.path.join(data_dir, 'vocab.json')))
    records = [json.loads(line) for line in open(os.path.join(data_dir, 'train.jsonl'))]
    raw = open(os.path.join(data_dir, 'images.u8'), 'rb').read()
    size = cfg['imageSize']
    images = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, size, size, 3)
    return cfg, vocab, records, images


def shared_prefix(batch):
    """Tokens every sequence of the batch starts with (the system prompt), leaving each at least one of its own."""
    first = batch[0]['pre']
    n = min(len(r['pre']) for r in batch) - 1
    for r in batch:
        k = 0
        while k < n and r['pre'][k] == first[k]:
            k += 1
        n = k
    return first[:n]


def batch_loss(model, records, images, batch, share_prefix=True):
    """Mean cross-entropy over the target tokens (and </s>) of the batch's sequences. The common prefix
    (system prompt) is evaluated once and its keys/values shared: the same numbers, a third less work."""
    prefix = shared_prefix(batch) if share_prefix else []
    cache = model.prefix_cache(prefix) if prefix else None
    with_image = [r for r in batch if r['image'] >= 0]
    emb = model.image_embeddings(images[[r['image'] for r in with_image]]) if with_image else None
    seqs, labels = [], []
    k = 0
    for r in batch:
        image = None
        if r['image'] >= 0:
            image = emb[k]
            k += 1
        seq = model.sequence(r['pre'][len(prefix):], image, r['post'], r['target'])
        n_prompt = seq.shape[0] - len(r['target'])
        seqs.append(seq)
        labels.append(torch.tensor([-100] * n_prompt + r['target'], dtype=torch.long))
    length = max(s.shape[0] for s in seqs)
    x = torch.stack([F.pad(s, (0, 0, 0, length - s.shape[0])) for s in seqs])
    y = torch.stack([F.pad(l, (0, length - l.shape[0]), value=-100) for l in labels])
    logits = model.forward_after_prefix(x, cache) if cache else model.forward_embeddings(x)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1), ignore_index=-100)


def write_weights(tensors, path):
    manifest, offset = {}, 0
    with open(path + '.bin', 'wb') as f:
        for name, t in tensors.items():
            data = t.detach().contiguous().float().numpy().tobytes() if hasattr(t, 'numpy') else None
            f.write(data)
            manifest[name] = {'shape': list(t.shape), 'offset': offset}
            offset += len(data)
    json.dump(manifest, open(path + '.json', 'w'), indent=1)


def write_export(model, out):
    round_to_f16(model)
    text, mm = gguf_tensors(model)
    write_weights(text, os.path.join(out, 'weights-text'))
    write_weights(mm, os.path.join(out, 'weights-mmproj'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=1200)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--pretrain-steps', type=int, default=0, help='first steps on pretrain.jsonl (captions: LLaVA\'s feature-alignment stage)')
    ap.add_argument('--caption-share', type=float, default=0.0, help='share of each stage-2 batch drawn from the captions (keeps the grounding stage 1 taught)')
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--weights-only', action='store_true', help='write the weights of OUT/checkpoint.pt (e.g. mid-training) and stop')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)  # 1 by default: measured 5-10x faster than 2 on 2 shared cores
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg, vocab, records, images = load(args.data)
    captions = [json.loads(line) for line in open(os.path.join(args.data, 'pretrain.jsonl'))] if args.pretrain_steps else []
    os.makedirs(args.out, exist_ok=True)
    model = WorldLlava(cfg, len(vocab['tokens']))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = 50

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    start_step, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, 'checkpoint.pt')
    log_mode = 'w'
    if (args.resume or args.weights_only) and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path)
        model.load_state_dict(ckpt['model'])
        opt.load_state_dict(ckpt['opt'])
        rng.setstate(ckpt['rng'])
        torch.set_rng_state(ckpt['torch_rng'])
        start_step, elapsed_before = ckpt['step'], ckpt['elapsed']
        log_mode = 'a'
    if args.weights_only:
        write_export(model, args.out)
        return
    params = sum(p.numel() for p in model.parameters())
    print(f'{params} parameters, {len(records)} records, {images.shape[0]} images', flush=True)
    log = open(os.path.join(args.out, 'loss.csv'), log_mode)
    if log_mode == 'w':
        log.write('step,loss,lr,seconds\n')
    t0 = time.time() - elapsed_before
    order, caption_order = [], []
    n_captions = round(args.batch * args.caption_share)
    for step in range(start_step, args.steps):
        # Stage 1 (captions), then stage 2 (the step-1 multi-task data, with a share of captions),
        # each source in seeded shuffled epochs.
        stage1 = step < args.pretrain_steps
        take = args.batch if stage1 else n_captions
        if len(caption_order) < take:
            caption_order += rng.sample(range(len(captions)), len(captions))
        batch = [captions[i] for i in caption_order[:take]]
        del caption_order[:take]
        if not stage1:
            if len(order) < args.batch - take:
                order += rng.sample(range(len(records)), len(records))
            batch += [records[i] for i in order[: args.batch - take]]
            del order[: args.batch - take]
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        loss = batch_loss(model, records, images, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.write(f'{step + 1},{loss.item():.4f},{lr_at(step):.6f},{time.time() - t0:.1f}\n')
        log.flush()
        if (step + 1) % 10 == 0:
            print(f'step {step + 1} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'rng': rng.getstate(),
                        'torch_rng': torch.get_rng_state(), 'step': step + 1, 'elapsed': time.time() - t0}, ckpt_path)
    seconds = time.time() - t0
    write_export(model, args.out)
    json.dump({'parameters': params, 'steps': args.steps, 'pretrainSteps': args.pretrain_steps, 'captionShare': args.caption_share, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed,
               'threads': args.threads, 'seconds': seconds, 'records': len(records), 'torch': torch.__version__},
              open(os.path.join(args.out, 'train.json'), 'w'), indent=1)
    print(f'done in {seconds:.0f}s', flush=True)


if __name__ == '__main__':
    main()
