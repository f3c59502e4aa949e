"""Trains the world's sentence embedder: BERT as llama.cpp's bert graph computes it (token + type +
position embeddings, LayerNorm, post-LayerNorm blocks with GELU MLP, mean pooling over all tokens
incl. [CLS]/[SEP], L2-normalised), contrastively (InfoNCE, in-batch negatives of the same kind) on
embedder-data.ts's groups of same-meaning texts.

    nice -n 15 /usr/bin/python3 training/world/train_bert.py BERT_DATA_DIR OUT_DIR [--steps N]
"""
import argparse
import json
import os
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from train_llava import write_weights


class BertLayer(nn.Module):
    def __init__(self, n, heads, ff, eps):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(n, n) for _ in range(4))
        self.attn_norm = nn.LayerNorm(n, eps=eps)
        self.up = nn.Linear(n, ff)
        self.down = nn.Linear(ff, n)
        self.out_norm = nn.LayerNorm(n, eps=eps)

    def forward(self, x, pad_mask):
        b, t, n = x.shape
        q, k, v = (f(x).view(b, t, self.heads, n // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        scores = q @ k.transpose(-1, -2) / (n // self.heads) ** 0.5 + pad_mask
        a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, n)
        x = self.attn_norm(self.o(a) + x)
        return self.out_norm(self.down(F.gelu(self.up(x), approximate='tanh')) + x)


class Bert(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        n, eps = cfg['nEmbd'], cfg['layerNormEps']
        self.tok = nn.Embedding(vocab_size, n)
        self.types = nn.Parameter(torch.randn(2, n) * 0.02)
        self.pos = nn.Embedding(cfg['nCtxTrain'], n)
        self.norm = nn.LayerNorm(n, eps=eps)
        self.layers = nn.ModuleList(BertLayer(n, cfg['nHead'], cfg['nFf'], eps) for _ in range(cfg['nLayer']))
        for e in (self.tok, self.pos):
            nn.init.normal_(e.weight, std=0.02)

    def forward(self, ids, lengths):
        b, t = ids.shape
        valid = torch.arange(t)[None, :] < lengths[:, None]
        x = self.norm(self.tok(ids) + self.types[0] + self.pos(torch.arange(t))[None])
        pad_mask = torch.where(valid, 0.0, float('-inf'))[:, None, None, :]
        for layer in self.layers:
            x = layer(x, pad_mask)
        pooled = (x * valid[..., None]).sum(1) / lengths[:, None]
        return F.normalize(pooled, dim=-1)


def gguf_tensors(m):
    t = {'token_embd.weight': m.tok.weight, 'token_types.weight': m.types, 'position_embd.weight': m.pos.weight,
         'token_embd_norm.weight': m.norm.weight, 'token_embd_norm.bias': m.norm.bias}
    for i, l in enumerate(m.layers):
        p = f'blk.{i}.'
        for name, lin in (('attn_q', l.q), ('attn_k', l.k), ('attn_v', l.v), ('attn_output', l.o)):
            t[p + name + '.weight'], t[p + name + '.bias'] = lin.weight, lin.bias
        t.update({p + 'attn_output_norm.weight': l.attn_norm.weight, p + 'attn_output_norm.bias': l.attn_norm.bias,
                  p + 'ffn_up.weight': l.up.weight, p + 'ffn_up.bias': l.up.bias,
                  p + 'ffn_down.weight': l.down.weight, p + 'ffn_down.bias': l.down.bias,
                  p + 'layer_output_norm.weight': l.out_norm.weight, p + 'layer_output_norm.bias': l.out_norm.bias})
    return t


def round_to_f16(m):
    """The GGUF stores 2-D weights in F16 except token_types (F32, as the fixture layout has it)."""
    with torch.no_grad():
        for name, p in gguf_tensors(m).items():
            if p.dim() >= 2 and name != 'token_types.weight':
                p.copy_(p.half().float())


def pad(seqs):
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
    return ids, lengths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--batch', type=int, default=48)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg = json.load(open(os.path.join(args.data, 'config.json')))
    vocab = json.load(open(os.path.join(args.data, 'vocab.json')))
    groups = json.load(open(os.path.join(args.data, 'groups.json')))
    by_kind = {}
    for g in groups:
        by_kind.setdefault(g['kind'], []).append(g)
    kinds = sorted(by_kind)
    model = Bert(cfg, len(vocab['tokens']))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, 'loss.csv'), 'w')
    log.write('step,loss,seconds\n')
    t0 = time.time()
    for step in range(args.steps):
        # Half the batch from one kind (hard negatives: "red" against "blue"), half from any.
        kind = kinds[step % len(kinds)]
        pool = by_kind[kind]
        chosen = rng.sample(pool, min(len(pool), args.batch // 2))
        while len(chosen) < args.batch:
            g = rng.choice(groups)
            if g not in chosen:
                chosen.append(g)
        a, b = [], []
        for g in chosen:
            i, j = rng.sample(range(len(g['tokens'])), 2)
            a.append(g['tokens'][i])
            b.append(g['tokens'][j])
        ea, eb = model(*pad(a)), model(*pad(b))
        logits = ea @ eb.T / 0.05
        target = torch.arange(len(chosen))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.write(f'{step + 1},{loss.item():.4f},{time.time() - t0:.1f}\n')
        if (step + 1) % 100 == 0:
            print(f'step {step + 1} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)
            log.flush()
    seconds = time.time() - t0
    torch.save({'model': model.state_dict()}, os.path.join(args.out, 'checkpoint.pt'))
    round_to_f16(model)
    write_weights(gguf_tensors(model), os.path.join(args.out, 'weights'))
    json.dump({'steps': args.steps, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'seconds': seconds,
               'groups': len(groups), 'torch': torch.__version__}, open(os.path.join(args.out, 'train.json'), 'w'), indent=1)
    print(f'done in {seconds:.0f}s', flush=True)


if __name__ == '__main__':
    main()
