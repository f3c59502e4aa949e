/**
 * `train-lora.sh`, written beside the training data: LLaVA's LoRA fine-tuning command with the
 * recipe of docs/METHOD.md (LLaVA's finetune_task_lora.sh from a released LLaVA-1.5 checkpoint:
 * LoRA r 128, alpha 256, lr 2e-4, projector lr 2e-5, 1 epoch, global batch 128, cosine, warmup 0.03,
 * weight decay 0, max length 2048, bf16, --version v1, --image_aspect_ratio pad), then the way back
 * to GGUF with llama.cpp's converters, so that srf-native loads the result with `--lora`.
 * srf-native does not run it: it needs LLaVA's Python environment and GPUs.
 *
 * Two Python environments, because the two stacks cannot share one: LLaVA pins torch 2.1.2 and
 * transformers 4.37.2 (its pyproject.toml), llama.cpp's converters pin torch 2.11 and transformers
 * 4.57 (requirements/requirements-convert_legacy_llama.txt). The script checks both before training,
 * so that a missing package or file fails in seconds, not after hours of GPU time.
 */

export interface TrainScriptOptions {
  /**
   * 'tasks': step 1, multi-task data (I->QA / IA->Q / IQ->A) teaching the model to write instructions;
   * 'refine': step 3, original data + kept triplets, plain IQ->A.
   */
  purpose: 'tasks' | 'refine';
  /** Absolute path of the LLaVA JSON to train on. */
  data: string;
  /** Absolute folder the data's image paths are relative to (LLaVA's --image_folder). */
  imageFolder: string;
  /** The SRF round the data belongs to (default 0). */
  round?: number;
  /**
   * 'tasks': the instruction data the step-1 set was cut from and its image folder; the round's
   * `run --merge-with` takes them, so that step 3 trains on original + kept data.
   */
  source?: { data: string; imageFolder: string };
  /** 'refine': the data holds kept triplets only (the run had no --merge-with). */
  syntheticOnly?: boolean;
}

/** A single-quoted shell word (inside `${VAR:-...}` quotes are parsed again, so defaults go through a variable). */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function heading(options: TrainScriptOptions, round: number): string {
  if (options.purpose === 'tasks') {
    return `# SRF round ${round}, step 1: teach LLaVA-1.5 to write instructions (multi-task I->QA / IA->Q / IQ->A data).
# The adapter this trains is the generator of round ${round}: \`srf-native run --lora <it> --round ${round} ...\`.`;
  }
  const warning = options.syntheticOnly
    ? `
# WARNING: this data holds the kept synthetic triplets only (the run had no --merge-with). The method
# trains step 3 on the original instruction data + the kept triplets; run again with --merge-with.`
    : '';
  return `# SRF round ${round}, step 3: train on the original instruction data + the kept triplets (plain IQ->A).
# The adapter this trains is the refined model of round ${round}. Round ${round + 1} starts with step 1 again on
# this data: \`srf-native tasks --data <this data> ...\` (the commands are printed at the end).${warning}`;
}

/** The shell lines that print what to run next (DATA / IMAGE_FOLDER / ADAPTER / MMPROJ are the script's variables). */
function nextCommands(options: TrainScriptOptions, round: number): string {
  const lines: string[] = [];
  const say = (text: string) => lines.push(`echo ${shellQuote(text)}`);
  const sayExpanded = (text: string) => lines.push(`echo "${text}"`);
  if (options.purpose === 'tasks') {
    const source = options.source;
    say(`Next: round ${round}, step 2 (generate and filter) with this adapter as the generator:`);
    sayExpanded(`  srf-native run --model <the base text GGUF> --mmproj \\"$MMPROJ\\" --lora \\"$ADAPTER\\" \\\\`);
    sayExpanded(`    --embedder <sentence-embedding GGUF> --images <unlabeled images> --round ${round} \\\\`);
    if (source) {
      lines.push(`SOURCE_DATA=${shellQuote(source.data)}`, `SOURCE_IMAGE_FOLDER=${shellQuote(source.imageFolder)}`);
      sayExpanded(`    --merge-with \\"$SOURCE_DATA\\" --merge-image-folder \\"$SOURCE_IMAGE_FOLDER\\" --out <round-${round} folder>`);
    } else {
      sayExpanded(`    --merge-with <the instruction data tasks read> --merge-image-folder <its image folder> --out <round-${round} folder>`);
    }
    say('Pass run the same --prompt-qa/--prompt-a2q/--prompt-q2a as tasks (if any): the generator was taught those.');
    return lines.join('\n');
  }
  const next = round + 1;
  say(`Refined model of round ${round}: the adapter and mmproj above (srf-native run/generate --lora "$ADAPTER").`);
  say(`Did it help? Answer a held-out LLaVA question file with it and compare with the model before it:`);
  sayExpanded(`  srf-native eval --questions <questions.jsonl> --model <the base text GGUF> --mmproj \\"$MMPROJ\\" --lora \\"$ADAPTER\\" \\\\`);
  sayExpanded(`    --answers-file round${round}-refined.answers.jsonl --truth <its truth>`);
  sayExpanded(`  srf-native eval --compare <the previous model's answers file> round${round}-refined.answers.jsonl --truth <its truth>`);
  say(`Next: round ${next}, step 1 again on this data, then step 2 with that generator:`);
  sayExpanded(`  srf-native tasks --data \\"$DATA\\" --image-folder \\"$IMAGE_FOLDER\\" --round ${next} --out <round-${next} tasks folder>`);
  sayExpanded(`  <round-${next} tasks folder>/train-lora.sh`);
  sayExpanded(`  srf-native run --model <the base text GGUF> --mmproj <its mmproj> --lora <its adapter> \\\\`);
  sayExpanded(`    --embedder <sentence-embedding GGUF> --images <unlabeled images> --round ${next} \\\\`);
  sayExpanded(`    --merge-with \\"$DATA\\" --merge-image-folder \\"$IMAGE_FOLDER\\" --out <round-${next} folder>`);
  return lines.join('\n');
}

export function trainLoraScript(options: TrainScriptOptions): string {
  const round = options.round ?? 0;
  const name = options.purpose === 'tasks' ? `llava-v1.5-srf-round${round}-multitask-lora` : `llava-v1.5-srf-round${round}-refined-lora`;
  return `#!/usr/bin/env bash
# Written by srf-native. Runs outside srf-native, in LLaVA's trainer (github.com/haotian-liu/LLaVA).
${heading(options, round)}
#
# Recipe (docs/METHOD.md; LLaVA's scripts/v1_5/finetune_task_lora.sh, from a released LLaVA-1.5 checkpoint):
#   LoRA r 128, alpha 256, lr 2e-4, projector lr 2e-5, 1 epoch, global batch 128, cosine schedule,
#   warmup 0.03, weight decay 0, max length 2048, bf16, --version v1, --image_aspect_ratio pad,
#   --mm_projector_type mlp2x_gelu, vision tower openai/clip-vit-large-patch14-336, select layer -2,
#   --group_by_modality_length True.
#
# Two Python environments (their pins conflict: LLaVA needs torch 2.1.2 / transformers 4.37.2,
# llama.cpp's converters torch 2.11 / transformers 4.57):
#   LLaVA:      git clone https://github.com/haotian-liu/LLaVA && cd LLaVA
#               python3.10 -m venv .venv && .venv/bin/pip install -e ".[train]"
#               .venv/bin/pip install flash-attn --no-build-isolation
#               (flash_attn is not in LLaVA's ".[train]" extra, and train_mem.py needs it)
#   llama.cpp:  git clone https://github.com/ggml-org/llama.cpp && cd llama.cpp
#               python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
# Every setting below can be overridden from the environment, e.g. NUM_GPUS=4 ./train-lora.sh
set -euo pipefail
HERE="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"

LLAVA_DIR="\${LLAVA_DIR:-$PWD/LLaVA}"
LLAMA_CPP_DIR="\${LLAMA_CPP_DIR:-$PWD/llama.cpp}"
LLAVA_PY="\${LLAVA_PY:-$LLAVA_DIR/.venv/bin/python}"            # LLaVA's environment: training
LLAMA_CPP_PY="\${LLAMA_CPP_PY:-$LLAMA_CPP_DIR/.venv/bin/python}" # llama.cpp's environment: conversion to GGUF
BASE_MODEL="\${BASE_MODEL:-liuhaotian/llava-v1.5-7b}" # the released LLaVA-1.5 checkpoint the GGUF base came from
DEFAULT_DATA=${shellQuote(options.data)}
DEFAULT_IMAGE_FOLDER=${shellQuote(options.imageFolder)}
DATA="\${DATA:-$DEFAULT_DATA}"
IMAGE_FOLDER="\${IMAGE_FOLDER:-$DEFAULT_IMAGE_FOLDER}"
OUTPUT_DIR="\${OUTPUT_DIR:-$HERE/checkpoints/${name}}"
CLIP_DIR="\${CLIP_DIR:-$PWD/clip-vit-large-patch14-336}" # the full CLIP model: huggingface-cli download openai/clip-vit-large-patch14-336 --local-dir "$CLIP_DIR"
NUM_GPUS="\${NUM_GPUS:-8}"
PER_DEVICE_BATCH="\${PER_DEVICE_BATCH:-16}" # the most per GPU; less is used when that keeps the global batch at 128
GLOBAL_BATCH="\${GLOBAL_BATCH:-128}"
ADAPTER="$OUTPUT_DIR/${name}-f16.gguf"
MMPROJ="$OUTPUT_DIR/mmproj-model-f16.gguf"

fail() { echo "train-lora.sh: $*" >&2; exit 1; }

# ---- 0. Check everything the three steps need before any GPU time is spent --------------------
[ -x "$LLAVA_PY" ] || fail "no LLaVA Python at $LLAVA_PY: make LLaVA's venv (see the top of this script) or set LLAVA_PY"
[ -x "$LLAMA_CPP_PY" ] || fail "no llama.cpp Python at $LLAMA_CPP_PY: make llama.cpp's venv (see the top of this script) or set LLAMA_CPP_PY"
"$LLAVA_PY" -c 'import llava, deepspeed, peft, flash_attn' \\
  || fail "$LLAVA_PY lacks llava, deepspeed, peft or flash_attn: pip install -e \\".[train]\\" in LLaVA, then pip install flash-attn --no-build-isolation"
"$LLAMA_CPP_PY" -c 'import torch, transformers, safetensors, huggingface_hub' \\
  || fail "$LLAMA_CPP_PY lacks torch, transformers, safetensors or huggingface_hub: pip install -r requirements.txt in llama.cpp"
[ -f "$LLAVA_DIR/llava/train/train_mem.py" ] || fail "no LLaVA checkout at $LLAVA_DIR (set LLAVA_DIR)"
[ -f "$LLAMA_CPP_DIR/convert_lora_to_gguf.py" ] || fail "no llama.cpp checkout at $LLAMA_CPP_DIR (set LLAMA_CPP_DIR)"
ENCODER_CONVERTER="$LLAMA_CPP_DIR/tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py"
[ -f "$ENCODER_CONVERTER" ] || ENCODER_CONVERTER="$LLAMA_CPP_DIR/tools/mtmd/convert_image_encoder_to_gguf.py"
[ -f "$ENCODER_CONVERTER" ] || fail "no convert_image_encoder_to_gguf.py under $LLAMA_CPP_DIR/tools/mtmd"
[ -f "$DATA" ] || fail "no training data at $DATA"
[ -d "$IMAGE_FOLDER" ] || fail "no image folder at $IMAGE_FOLDER"
# The full CLIPModel (config.json with vision_config, vocab.json), as llama.cpp's LLaVA-1.5 instructions
# (docs/multimodal/llava.md) convert it: without --clip-model-is-vision, which is for a vision-only config.
[ -f "$CLIP_DIR/config.json" ] && grep -q '"vision_config"' "$CLIP_DIR/config.json" && [ -f "$CLIP_DIR/vocab.json" ] \\
  || fail "$CLIP_DIR is not the full openai/clip-vit-large-patch14-336 (config.json with vision_config, vocab.json): download it there or set CLIP_DIR"

# The base model's config and tokenizer for convert_lora_to_gguf.py, fetched now rather than after training.
# Only these files: a copied pytorch_model.bin.index.json would make the converter index weight shards
# that are not there. LLaVA names the architecture LlavaLlamaForCausalLM, which the converter does not
# know, so the copy says LlamaForCausalLM (LLaVA's LoRA targets only the language model's linear layers,
# which is what a GGUF LoRA can hold).
CONFIG_DIR="$OUTPUT_DIR/base-config-for-gguf"
mkdir -p "$CONFIG_DIR"
"$LLAMA_CPP_PY" - "$BASE_MODEL" "$CONFIG_DIR" <<'PY'
import json, os, shutil, sys
base, dst = sys.argv[1], sys.argv[2]
wanted = ["config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]
if os.path.isdir(base):
    src = base
else:
    from huggingface_hub import snapshot_download
    src = snapshot_download(base, allow_patterns=wanted)
for name in wanted:
    if os.path.isfile(os.path.join(src, name)):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
path = os.path.join(dst, "config.json")
if not os.path.isfile(path):
    sys.exit(f"train-lora.sh: no config.json in {src}")
config = json.load(open(path))
config["architectures"] = ["LlamaForCausalLM"]
config["model_type"] = "llama"
json.dump(config, open(path, "w"), indent=2)
PY

# Global batch: per-device batch P (at most PER_DEVICE_BATCH) and accumulation A with
# NUM_GPUS x P x A = GLOBAL_BATCH, the largest P that gets there exactly; when NUM_GPUS does not divide
# GLOBAL_BATCH none does, and the largest P within 5 % (else the nearest) is used, and said.
if [ -n "\${GRAD_ACCUM:-}" ]; then
  BATCH="$PER_DEVICE_BATCH"
else
  BATCH=0; GRAD_ACCUM=0
  for (( p = PER_DEVICE_BATCH; p >= 1 && BATCH == 0; p-- )); do
    if (( GLOBAL_BATCH % (NUM_GPUS * p) == 0 )); then BATCH=$p; GRAD_ACCUM=$(( GLOBAL_BATCH / (NUM_GPUS * p) )); fi
  done
  best=-1
  for (( p = PER_DEVICE_BATCH; p >= 1 && BATCH == 0; p-- )); do
    a=$(( (GLOBAL_BATCH + NUM_GPUS * p / 2) / (NUM_GPUS * p) )); (( a >= 1 )) || a=1
    g=$(( NUM_GPUS * p * a )); d=$(( g > GLOBAL_BATCH ? g - GLOBAL_BATCH : GLOBAL_BATCH - g ))
    if (( d * 20 <= GLOBAL_BATCH )); then BATCH=$p; GRAD_ACCUM=$a; fi
    if (( best < 0 || d < best )); then best=$d; BEST_P=$p; BEST_A=$a; fi
  done
  if (( BATCH == 0 )); then BATCH=$BEST_P; GRAD_ACCUM=$BEST_A; fi
fi
USED_BATCH=$(( NUM_GPUS * BATCH * GRAD_ACCUM ))
echo "global batch $USED_BATCH = $NUM_GPUS GPUs x $BATCH per device x $GRAD_ACCUM accumulation steps"
if (( USED_BATCH != GLOBAL_BATCH )); then
  echo "train-lora.sh: warning: the recipe's global batch is $GLOBAL_BATCH; $NUM_GPUS GPUs reach $USED_BATCH (set NUM_GPUS, PER_DEVICE_BATCH or GRAD_ACCUM to choose)" >&2
fi

# ---- 1. LoRA fine-tuning in LLaVA's trainer ---------------------------------------------------
"$LLAVA_PY" -m deepspeed.launcher.runner --num_gpus "$NUM_GPUS" "$LLAVA_DIR/llava/train/train_mem.py" \\
    --lora_enable True --lora_r 128 --lora_alpha 256 --mm_projector_lr 2e-5 \\
    --deepspeed "$LLAVA_DIR/scripts/zero3.json" \\
    --model_name_or_path "$BASE_MODEL" \\
    --version v1 \\
    --data_path "$DATA" \\
    --image_folder "$IMAGE_FOLDER" \\
    --vision_tower openai/clip-vit-large-patch14-336 \\
    --mm_projector_type mlp2x_gelu \\
    --mm_vision_select_layer -2 \\
    --mm_use_im_start_end False \\
    --mm_use_im_patch_token False \\
    --image_aspect_ratio pad \\
    --group_by_modality_length True \\
    --bf16 True \\
    --output_dir "$OUTPUT_DIR" \\
    --num_train_epochs 1 \\
    --per_device_train_batch_size "$BATCH" \\
    --per_device_eval_batch_size 4 \\
    --gradient_accumulation_steps "$GRAD_ACCUM" \\
    --evaluation_strategy "no" \\
    --save_strategy "steps" \\
    --save_steps 50000 \\
    --save_total_limit 1 \\
    --learning_rate 2e-4 \\
    --weight_decay 0. \\
    --warmup_ratio 0.03 \\
    --lr_scheduler_type "cosine" \\
    --logging_steps 1 \\
    --tf32 True \\
    --model_max_length 2048 \\
    --gradient_checkpointing True \\
    --dataloader_num_workers 4 \\
    --lazy_preprocess True \\
    --report_to none

# ---- 2. The adapter back to GGUF (llama.cpp's convert_lora_to_gguf.py) ------------------------
"$LLAMA_CPP_PY" "$LLAMA_CPP_DIR/convert_lora_to_gguf.py" --base "$CONFIG_DIR" --outtype f16 \\
    --outfile "$ADAPTER" "$OUTPUT_DIR"

# ---- 3. The projector was trained too (--mm_projector_lr): a new mmproj GGUF from it ------------
"$LLAMA_CPP_PY" - "$OUTPUT_DIR" <<'PY'
import sys, torch
out = sys.argv[1]
weights = torch.load(f"{out}/non_lora_trainables.bin", map_location="cpu")
projector = {k.replace("base_model.model.", "", 1): v.float() for k, v in weights.items() if "mm_projector" in k}
if not projector:
    sys.exit(f"train-lora.sh: no mm_projector weights in {out}/non_lora_trainables.bin")
torch.save(projector, f"{out}/llava.projector")
PY
"$LLAMA_CPP_PY" "$ENCODER_CONVERTER" -m "$CLIP_DIR" --llava-projector "$OUTPUT_DIR/llava.projector" --output-dir "$OUTPUT_DIR"

echo
echo "Adapter: $ADAPTER"
echo "mmproj:  $MMPROJ"
${nextCommands(options, round)}
echo '(Or merge instead: LLaVA'"'"'s scripts/merge_lora_weights.py, then llama.cpp'"'"'s LLaVA conversion, docs/multimodal/llava.md.)'
`;
}
