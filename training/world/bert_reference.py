"""Pooled embeddings of the trained embedder for fixed texts: the reference the engine's embedder must match.

    /usr/bin/python3 training/world/bert_reference.py BERT_DATA_DIR BERT_TRAIN_DIR OUT_JSON
"""
import json
import os
import sys

import torch

from train_bert import Bert, pad, round_to_f16


def main():
    data_dir, train_dir, out = sys.argv[1:4]
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(data_dir, 'config.json')))
    vocab = json.load(open(os.path.join(data_dir, 'vocab.json')))
    groups = json.load(open(os.path.join(data_dir, 'groups.json')))
    model = Bert(cfg, len(vocab['tokens']))
    model.load_state_dict(torch.load(os.path.join(train_dir, 'checkpoint.pt'))['model'])
    round_to_f16(model)
    model.eval()
    picked = []
    for kind in sorted({g['kind'] for g in groups}):
        g = next(g for g in groups if g['kind'] == kind)
        picked += list(zip(g['texts'][:2], g['tokens'][:2]))
    with torch.no_grad():
        vectors = model(*pad([t for _, t in picked]))
    json.dump({'texts': [x for x, _ in picked], 'vectors': [[round(float(v), 6) for v in row] for row in vectors]}, open(out, 'w'))


if __name__ == '__main__':
    main()
