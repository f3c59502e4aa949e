"""LLaVA-1.5 at toy size, computing exactly what the engine (llama.cpp's clip.cpp + llama) computes.

- Vision tower: CLIP ViT (patch conv without bias, class token, learned positions, pre-layernorm,
  pre-norm blocks with biased q/k/v/out, quick-GELU MLP). LLaVA takes the feature of the
  second-to-last block (mm_vision_select_layer -2) and drops the class token; llama.cpp runs all
  stored blocks but the last, so the GGUF stores all n_layer blocks and the last one is never run.
- Token order inside the tower follows the engine's llama.cpp (vendored in node-llama-cpp 3.21.1),
  whose llava graph appends the class token after the patches while positions and the selected rows
  keep the old class-first numbering (ggml-org/llama.cpp#25814): patch i gets position row i, the
  class token row n, and the projector sees rows 1..n (patches 1..n-1 and the class token). The model
  is trained that way so the GGUF means the same on the engine; CLS_FIRST = True gives HF's order.
- Projector: mlp2x_gelu (Linear, GELU, Linear); GELU in ggml's tanh form.
- Language model: llama (RMSNorm, RoPE on adjacent pairs as llama.cpp's LLAMA rope type applies it to
  unpermuted weights, SwiGLU, untied output), vicuna_v1 prompt, </s> as end of reply.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CLS_FIRST = False
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionBlock(nn.Module):
    def __init__(self, n, heads, ff, eps):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(n, eps=eps)
        self.q = nn.Linear(n, n)
        self.k = nn.Linear(n, n)
        self.v = nn.Linear(n, n)
        self.out = nn.Linear(n, n)
        self.ln2 = nn.LayerNorm(n, eps=eps)
        self.fc1 = nn.Linear(n, ff)
        self.fc2 = nn.Linear(ff, n)

    def forward(self, x):
        b, t, n = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).view(b, t, self.heads, n // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v) if hasattr(F, 'scaled_dot_product_attention') else _attention(q, k, v, None)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, n))
        h = self.fc1(self.ln2(x))
        h = h * torch.sigmoid(1.702 * h)  # quick GELU
        return x + self.fc2(h)


def _attention(q, k, v, mask):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    return scores.softmax(-1) @ v


class VisionTower(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v = cfg['vision']
        self.patch = cfg['patchSize']
        self.n_patches = (cfg['imageSize'] // self.patch) ** 2
        n = v['nEmbd']
        self.patch_embd = nn.Conv2d(3, n, self.patch, self.patch, bias=False)
        self.class_embd = nn.Parameter(torch.randn(n) * 0.02)
        self.position_embd = nn.Parameter(torch.randn(self.n_patches + 1, n) * 0.02)
        self.pre_ln = nn.LayerNorm(n, eps=v['layerNormEps'])
        self.blocks = nn.ModuleList(VisionBlock(n, v['nHead'], v['nFf'], v['layerNormEps']) for _ in range(v['nLayer']))
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1))

    def forward(self, rgb_u8):
        """uint8 [B, H, W, 3] -> features [B, n_patches, n] of the second-to-last block."""
        x = (rgb_u8.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        p = self.patch_embd(x).flatten(2).transpose(1, 2)  # [B, n_patches, n], row-major patches
        cls = self.class_embd.view(1, 1, -1).expand(p.shape[0], 1, -1)
        x = torch.cat([cls, p], 1) if CLS_FIRST else torch.cat([p, cls], 1)
        x = self.pre_ln(x + self.position_embd)
        for block in self.blocks[:-1]:  # LLaVA's select_layer -2
            x = block(x)
        return x[:, 1:]


class Projector(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.mm0 = nn.Linear(n_in, n_out)
        self.mm2 = nn.Linear(n_out, n_out)

    def forward(self, x):
        return self.mm2(F.gelu(self.mm0(x), approximate='tanh'))


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, positions, base):
    """llama.cpp's LLAMA_ROPE_TYPE_NORM: rotates adjacent pairs (x[2i], x[2i+1]). x: [B, H, T, D]."""
    d = x.shape[-1]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    angles = positions.float()[:, None] * inv[None, :]  # [T, D/2]
    cos, sin = angles.cos(), angles.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1).flatten(-2)


class DecoderLayer(nn.Module):
    def __init__(self, t):
        super().__init__()
        n = t['nEmbd']
        self.heads = t['nHead']
        self.base = t['ropeFreqBase']
        self.attn_norm = RMSNorm(n, t['rmsEps'])
        self.q = nn.Linear(n, n, bias=False)
        self.k = nn.Linear(n, n, bias=False)
        self.v = nn.Linear(n, n, bias=False)
        self.o = nn.Linear(n, n, bias=False)
        self.ffn_norm = RMSNorm(n, t['rmsEps'])
        self.gate = nn.Linear(n, t['nFf'], bias=False)
        self.up = nn.Linear(n, t['nFf'], bias=False)
        self.down = nn.Linear(t['nFf'], n, bias=False)

    def forward(self, x, positions, mask, past=None):
        """`past`: keys and values [1, H, P, d] of a prefix every sequence of the batch shares."""
        b, s, n = x.shape
        h = self.attn_norm(x)
        q, k, v = (f(h).view(b, s, self.heads, n // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        q, k = rope(q, positions, self.base), rope(k, positions, self.base)
        own = (k, v)
        if past is not None:
            k = torch.cat([past[0].expand(b, -1, -1, -1), k], 2)
            v = torch.cat([past[1].expand(b, -1, -1, -1), v], 2)
        a = _attention(q, k, v, mask)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, n))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h)), own


class WorldLlava(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        t = cfg['text']
        self.cfg = cfg
        self.vision = VisionTower(cfg)
        self.projector = Projector(cfg['vision']['nEmbd'], t['nEmbd'])
        # Unit-scale token embeddings, as the projected image features have: with 0.02 the image
        # tokens' residual stream was ~600x the text's, RMSNorm divided their gradients by as much and
        # the vision tower stopped learning (measured: blind at step 800).
        self.tok_embd = nn.Embedding(vocab_size, t['nEmbd'])
        self.layers = nn.ModuleList(DecoderLayer(t) for _ in range(t['nLayer']))
        self.norm = RMSNorm(t['nEmbd'], t['rmsEps'])
        self.output = nn.Linear(t['nEmbd'], vocab_size, bias=False)

    def image_embeddings(self, rgb_u8):
        return self.projector(self.vision(rgb_u8))

    def forward_embeddings(self, x):
        s = x.shape[1]
        positions = torch.arange(s, device=x.device)
        mask = torch.full((s, s), float('-inf'), device=x.device).triu(1)
        for layer in self.layers:
            x, _ = layer(x, positions, mask)
        return self.output(self.norm(x))

    def prefix_cache(self, tokens):
        """Keys and values of a token prefix shared by a batch (training computes it once, not per sequence)."""
        x = self.tok_embd(torch.tensor([tokens], dtype=torch.long, device=self.tok_embd.weight.device))
        s = x.shape[1]
        positions = torch.arange(s, device=x.device)
        mask = torch.full((s, s), float('-inf'), device=x.device).triu(1)
        cache = []
        for layer in self.layers:
            x, kv = layer(x, positions, mask)
            cache.append(kv)
        return cache

    def forward_after_prefix(self, x, cache):
        """Logits of x [B, S, n] continuing the shared prefix whose keys and values are `cache`."""
        p = cache[0][0].shape[2]
        s = x.shape[1]
        positions = torch.arange(p, p + s, device=x.device)
        mask = torch.cat([torch.zeros(s, p, device=x.device), torch.full((s, s), float('-inf'), device=x.device).triu(1)], 1)
        for layer, past in zip(self.layers, cache):
            x, _ = layer(x, positions, mask, past)
        return self.output(self.norm(x))

    def sequence(self, pre, image_emb, post, target):
        """Embeddings of one sequence: pre tokens | image | post tokens | target tokens."""
        parts = [self.tok_embd(torch.tensor(pre, dtype=torch.long))]
        if image_emb is not None:
            parts.append(image_emb)
        if post:
            parts.append(self.tok_embd(torch.tensor(post, dtype=torch.long)))
        if target:
            parts.append(self.tok_embd(torch.tensor(target, dtype=torch.long)))
        return torch.cat(parts, 0)

    @torch.no_grad()
    def greedy(self, rgb_u8, pre, post, max_tokens, eos):
        """Greedy reply (token ids, without </s>) and the logits of every step."""
        image = self.image_embeddings(rgb_u8[None])[0] if rgb_u8 is not None else None
        x = self.sequence(pre, image, post, [])[None]
        out, logits_all = [], []
        for _ in range(max_tokens):
            logits = self.forward_embeddings(x)[0, -1]
            logits_all.append(logits)
            token = int(logits.argmax())
            if token == eos:
                break
            out.append(token)
            x = torch.cat([x, self.tok_embd(torch.tensor([[token]]))], 1)
        return out, logits_all


def gguf_tensors(model):
    """The weights under the GGUF names of real LLaVA-1.5 files (text model and mmproj), torch layout."""
    text = {'token_embd.weight': model.tok_embd.weight}
    for i, layer in enumerate(model.layers):
        p = f'blk.{i}.'
        text.update({
            p + 'attn_norm.weight': layer.attn_norm.weight,
            p + 'attn_q.weight': layer.q.weight,
            p + 'attn_k.weight': layer.k.weight,
            p + 'attn_v.weight': layer.v.weight,
            p + 'attn_output.weight': layer.o.weight,
            p + 'ffn_norm.weight': layer.ffn_norm.weight,
            p + 'ffn_gate.weight': layer.gate.weight,
            p + 'ffn_up.weight': layer.up.weight,
            p + 'ffn_down.weight': layer.down.weight,
        })
    text['output_norm.weight'] = model.norm.weight
    text['output.weight'] = model.output.weight
    v = model.vision
    mm = {
        'mm.0.weight': model.projector.mm0.weight,
        'mm.0.bias': model.projector.mm0.bias,
        'mm.2.weight': model.projector.mm2.weight,
        'mm.2.bias': model.projector.mm2.bias,
        'v.class_embd': v.class_embd,
        'v.patch_embd.weight': v.patch_embd.weight,
        'v.position_embd.weight': v.position_embd,
        'v.pre_ln.weight': v.pre_ln.weight,
        'v.pre_ln.bias': v.pre_ln.bias,
    }
    for i, block in enumerate(v.blocks):
        p = f'v.blk.{i}.'
        for name, lin in (('attn_k', block.k), ('attn_v', block.v), ('attn_q', block.q), ('attn_out', block.out)):
            mm[p + name + '.weight'] = lin.weight
            mm[p + name + '.bias'] = lin.bias
        mm.update({
            p + 'ln1.weight': block.ln1.weight,
            p + 'ln1.bias': block.ln1.bias,
            # fc1 under the legacy converter's name ffn_down, fc2 as ffn_up (clip.cpp swaps them back)
            p + 'ffn_down.weight': block.fc1.weight,
            p + 'ffn_down.bias': block.fc1.bias,
            p + 'ffn_up.weight': block.fc2.weight,
            p + 'ffn_up.bias': block.fc2.bias,
            p + 'ln2.weight': block.ln2.weight,
            p + 'ln2.bias': block.ln2.bias,
        })
    return text, mm


def round_to_f16(module):
    """Rounds the weights the GGUF stores in F16 (matrices and 4-D tensors) so torch computes with what the engine loads."""
    with torch.no_grad():
        for t in module.parameters():
            if t.dim() >= 2:
                t.copy_(t.half().float())
