"""Greedy replies of the trained PyTorch model for fixed cases: the reference the engine must reproduce.

    /usr/bin/python3 training/world/reference.py DATA_DIR TRAIN_DIR CASES_DIR

CASES_DIR/cases.json (written by parity-cases.ts) holds, per case, an image index into
CASES_DIR/images.u8 and the prompt tokens as the engine builds them; writes CASES_DIR/reference.json:
per case the greedy token ids (without </s>), their text, whether </s> ended the reply, and the
top-1/top-2 logit margin of every step (how close a tie came).
"""
import json
import os
import sys

import torch

from llava_model import WorldLlava, round_to_f16


def decode(vocab, ids):
    out = bytearray()
    for i in ids:
        tok, typ = vocab['tokens'][i], vocab['tokenTypes'][i]
        if typ == 6:
            out.append(int(tok[3:5], 16))
        elif typ in (1, 4):
            out += tok.replace('\u2581', ' ').encode('utf8')
    return out.decode('utf8', errors='replace')


def main():
    data_dir, train_dir, cases_dir = sys.argv[1:4]
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(data_dir, 'config.json')))
    vocab = json.load(open(os.path.join(data_dir, 'vocab.json')))
    model = WorldLlava(cfg, len(vocab['tokens']))
    model.load_state_dict(torch.load(os.path.join(train_dir, 'checkpoint.pt'))['model'])
    round_to_f16(model)
    model.eval()
    cases = json.load(open(os.path.join(cases_dir, 'cases.json')))
    size = cfg['imageSize']
    raw = open(os.path.join(cases_dir, 'images.u8'), 'rb').read()
    images = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, size, size, 3)
    results = []
    for case in cases['cases']:
        ids, logits = model.greedy(images[case['image']], case['pre'], case['post'], case['maxTokens'], 2)
        margins = [float((l.topk(2).values[0] - l.topk(2).values[1])) for l in logits]
        # Per step: the reply's text before the token chosen there, and how far the top token led.
        steps = [{'textBefore': len(decode(vocab, ids[:k])), 'margin': round(m, 5)} for k, m in enumerate(margins)]
        results.append({'task': case['task'], 'tokens': ids, 'text': decode(vocab, ids), 'eos': len(ids) < case['maxTokens'],
                        'minMargin': min(margins), 'steps': steps})
    json.dump({'results': results}, open(os.path.join(cases_dir, 'reference.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
