"""Trains the world LLaVA from scratch on the step-1 data of make-data.ts, on the CPU.

    nice -n 15 /usr/bin/python3 training/world/train_llava.py DATA_DIR OUT_DIR --vision VISION_PT [--steps N] [--seed S]

DATA_DIR holds config.json, vocab.json, train.jsonl, pretrain.jsonl, val.jsonl, images.u8 and
images-val.u8 (make-data.ts); VISION_PT the tower pretrain_vision.py trained, kept frozen here (its
features are computed once). Writes OUT_DIR/{loss.csv, val-loss.csv, checkpoint.pt,
weights-text.bin/.json, weights-mmproj.bin/.json, train.json}: the weights under their GGUF names,
rounded to F16 where the GGUF stores F16, for export.ts.
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
    return cfg, vocab


def read_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def read_images(path, size):
    raw = open(path, 'rb').read()
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, size, size, 3)


def common_prefix(sequences):
    """Tokens every record's prompt starts with (the system prompt): evaluated once per batch, its keys
    and values shared by every sequence (the same loss and gradients, a third less work)."""
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for s in sequences:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return first[:n]


class Packed:
    """Records as padded tensors, so a batch is an index, not a loop over records: per record the tokens
    after the shared prefix (image slots hold a placeholder the image's embeddings replace), the labels
    (-100 but on the reply and </s>), where the image goes, and which image."""

    def __init__(self, records, prefix_len, image_tokens):
        rows = []
        for r in records:
            n_img = image_tokens if r['image'] >= 0 else 0
            head = r['pre'][prefix_len:] + [0] * n_img + r['post']
            rows.append((head + r['target'], len(head), n_img, len(r['pre']) - prefix_len))
        longest = max(len(ids) for ids, _, _, _ in rows)
        n = len(rows)
        self.ids = torch.zeros(n, longest, dtype=torch.long)
        self.labels = torch.full((n, longest), -100, dtype=torch.long)
        self.image_slots = torch.zeros(n, longest, dtype=torch.bool)
        self.length = torch.zeros(n, dtype=torch.long)
        self.image = torch.tensor([r['image'] for r in records], dtype=torch.long)
        for i, (ids, n_head, n_img, n_pre) in enumerate(rows):
            self.ids[i, : len(ids)] = torch.tensor(ids)
            self.labels[i, n_head : len(ids)] = torch.tensor(ids[n_head:])
            self.image_slots[i, n_pre : n_pre + n_img] = True
            self.length[i] = len(ids)
        self.size = n

    def batch(self, idx):
        idx = torch.as_tensor(idx, dtype=torch.long)
        width = int(self.length[idx].max())
        return self.ids[idx, :width], self.labels[idx, :width], self.image_slots[idx, :width], self.image[idx]


def batch_loss(model, prefix, packed, features, idx):
    """Mean cross-entropy over the reply tokens (and </s>) of the batch's sequences, after the shared prefix."""
    dev = features.device
    ids, labels, slots, image = (t.to(dev) for t in packed.batch(idx))
    x = model.tok_embd(ids)
    with_image = image[image >= 0]
    if with_image.numel() > 0:
        emb = model.projector(features[with_image])  # [b, image_tokens, n], in batch order as the slots are
        x = x.masked_scatter(slots.unsqueeze(-1).expand_as(x), emb)
    cache = model.prefix_cache(prefix)
    logits = model.forward_after_prefix(x, cache)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


@torch.no_grad()
def tower_features(model, images, batch=500):
    """The frozen tower's output for every image, once: the language stages never run the tower."""
    dev = model.tok_embd.weight.device
    return torch.cat([model.vision(images[i : i + batch].to(dev)) for i in range(0, images.shape[0], batch)])


@torch.no_grad()
def validation_loss(model, prefix, packed, features, batch=64, limit=1024):
    n = min(limit, packed.size)
    total, weight = 0.0, 0
    for i in range(0, n, batch):
        idx = list(range(i, min(n, i + batch)))
        tokens = int((packed.batch(idx)[1][:, 1:] != -100).sum())
        total += float(batch_loss(model, prefix, packed, features, idx)) * tokens
        weight += tokens
    return total / weight


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
    ap.add_argument('--vision', required=True, help="pretrain_vision.py's vision.pt: the tower, kept frozen")
    ap.add_argument('--steps', type=int, default=1200)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--pretrain-steps', type=int, default=0, help='first steps on pretrain.jsonl (captions: LLaVA\'s feature-alignment stage)')
    ap.add_argument('--caption-share', type=float, default=0.0, help='share of each stage-2 batch drawn from the captions (keeps the grounding stage 1 taught)')
    ap.add_argument('--val-every', type=int, default=250)
    ap.add_argument('--device', default='cpu', help='cuda on a GPU machine (the same recipe; the tower features are cached there too)')
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--weights-only', action='store_true', help='write the weights of OUT/checkpoint.pt (e.g. mid-training) and stop')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)  # 1 by default: measured 5-10x faster than 2 on 2 shared cores
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg, vocab = load(args.data)
    os.makedirs(args.out, exist_ok=True)
    model = WorldLlava(cfg, len(vocab['tokens']))
    # LLaVA-1.5 keeps its pretrained CLIP frozen; so does this. Rounded to F16 first, as the mmproj
    # stores it, so the cached features are the engine's.
    model.vision.load_state_dict(torch.load(args.vision, map_location='cpu')['tower'])
    for p in model.vision.parameters():
        p.requires_grad_(False)
    round_to_f16(model.vision)
    model.to(torch.device(args.device))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
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
        ckpt = torch.load(ckpt_path, map_location='cpu')
        model.load_state_dict(ckpt['model'])
        opt.load_state_dict(ckpt['opt'])
        rng.setstate(ckpt['rng'])
        torch.set_rng_state(ckpt['torch_rng'])
        start_step, elapsed_before = ckpt['step'], ckpt['elapsed']
        log_mode = 'a'
    if args.weights_only:
        write_export(model.cpu(), args.out)
        return

    records = read_jsonl(os.path.join(args.data, 'train.jsonl'))
    captions = read_jsonl(os.path.join(args.data, 'pretrain.jsonl'))
    val_records = read_jsonl(os.path.join(args.data, 'val.jsonl'))
    prefix = common_prefix([r['pre'] for r in records + captions + val_records])
    n_img = cfg['imageTokens']
    train_set, caption_set, val_set = (Packed(rs, len(prefix), n_img) for rs in (records, captions, val_records))
    model.eval()  # no dropout anywhere; the tower is never trained
    features = tower_features(model, read_images(os.path.join(args.data, 'images.u8'), cfg['imageSize']))
    val_features = tower_features(model, read_images(os.path.join(args.data, 'images-val.u8'), cfg['imageSize']))
    params = sum(p.numel() for p in model.parameters())
    print(f'{params} parameters ({sum(p.numel() for p in trainable)} trained), {len(records)} records, {len(captions)} captions, '
          f'{features.shape[0]} images, {len(val_records)} validation records, shared prefix {len(prefix)} tokens', flush=True)
    log = open(os.path.join(args.out, 'loss.csv'), log_mode)
    val_log = open(os.path.join(args.out, 'val-loss.csv'), log_mode)
    if log_mode == 'w':
        log.write('step,loss,lr,seconds\n')
        val_log.write('step,val_loss,train_loss_mean\n')
    t0 = time.time() - elapsed_before
    order, caption_order = [], []
    n_captions = round(args.batch * args.caption_share)
    recent = []
    for step in range(start_step, args.steps):
        # Stage 1 (captions), then stage 2 (the step-1 multi-task data, with a share of captions),
        # each source in seeded shuffled epochs.
        stage1 = step < args.pretrain_steps
        take = args.batch if stage1 else n_captions
        if len(caption_order) < take:
            caption_order += rng.sample(range(caption_set.size), caption_set.size)
        parts = []
        if take:
            parts.append((caption_set, caption_order[:take]))
        del caption_order[:take]
        if not stage1:
            if len(order) < args.batch - take:
                order += rng.sample(range(train_set.size), train_set.size)
            parts.append((train_set, order[: args.batch - take]))
            del order[: args.batch - take]
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        # Each source's share of the batch weighs by its reply tokens, as one mixed batch would.
        tokens = [int((s.batch(idx)[1][:, 1:] != -100).sum()) for s, idx in parts]
        loss = sum(batch_loss(model, prefix, s, features, idx) * (n / sum(tokens)) for (s, idx), n in zip(parts, tokens))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-args.val_every:]
        log.write(f'{step + 1},{loss.item():.4f},{lr_at(step):.6f},{time.time() - t0:.1f}\n')
        log.flush()
        if (step + 1) % 50 == 0:
            print(f'step {step + 1} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)
        if (step + 1) % args.val_every == 0 or step + 1 == args.steps:
            v = validation_loss(model, prefix, val_set, val_features)
            val_log.write(f'{step + 1},{v:.4f},{sum(recent) / len(recent):.4f}\n')
            val_log.flush()
            print(f'step {step + 1} validation loss {v:.4f} (training, last {len(recent)} steps: {sum(recent) / len(recent):.4f})', flush=True)
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'rng': rng.getstate(),
                        'torch_rng': torch.get_rng_state(), 'step': step + 1, 'elapsed': time.time() - t0}, ckpt_path)
    seconds = time.time() - t0
    model.cpu()
    write_export(model, args.out)
    json.dump({'parameters': params, 'steps': args.steps, 'pretrainSteps': args.pretrain_steps, 'captionShare': args.caption_share, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed,
               'threads': args.threads, 'device': args.device, 'seconds': seconds, 'records': len(records), 'captions': len(captions), 'visionFrozen': True, 'torch': torch.__version__},
              open(os.path.join(args.out, 'train.json'), 'w'), indent=1)
    print(f'done in {seconds:.0f}s', flush=True)


if __name__ == '__main__':
    main()
