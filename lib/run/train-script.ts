/**
 * `train-lora.sh`, written beside the training data: LLaVA's LoRA fine-tuning command with the
 * recipe of SRF-METHOD.md (LLaVA's finetune_task_lora.sh from a released LLaVA-1.5 checkpoint:
 * LoRA r 128, alpha 256, lr 2e-4, projector lr 2e-5, 1 epoch, global batch 128, cosine, warmup 0.03,
 * weight decay 0, max length 2048, bf16, --version v1, --image_aspect_ratio pad), then the way back
 * to GGUF with llama.cpp's converters, so that the next round loads the result with `--lora`.
 * srf-native does not run it: it needs LLaVA's Python environment and GPUs.
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
  /** The round that produced the data (refine), recorded in names. */
  round?: number;
}

/** A single-quoted shell word (inside `${VAR:-...}` quotes are parsed again, so defaults go through a variable). */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function trainLoraScript(options: TrainScriptOptions): string {
  const round = options.round ?? 0;
  const name = options.purpose === 'tasks' ? 'llava-v1.5-srf-multitask-lora' : `llava-v1.5-srf-round${round + 1}-lora`;
  const heading =
    options.purpose === 'tasks'
      ? `# SRF step 1: teach LLaVA-1.5 to write instructions (multi-task I->QA / IA->Q / IQ->A data).
# The adapter this trains is the generator of \`srf-native run --lora ...\` (round 0).`
      : `# SRF step 3 of round ${round}: train on the original instruction data + the kept triplets (plain IQ->A).
# The result is the model of round ${round + 1}: \`srf-native run ... --lora <adapter> --round ${round + 1}\`.`;
  return `#!/usr/bin/env bash
# Written by srf-native. Runs outside srf-native, in LLaVA's trainer (github.com/haotian-liu/LLaVA).
${heading}
#
# Recipe (SRF-METHOD.md; LLaVA's scripts/v1_5/finetune_task_lora.sh, from a released LLaVA-1.5 checkpoint):
#   LoRA r 128, alpha 256, lr 2e-4, projector lr 2e-5, 1 epoch, global batch 128, cosine schedule,
#   warmup 0.03, weight decay 0, max length 2048, bf16, --version v1, --image_aspect_ratio pad,
#   --mm_projector_type mlp2x_gelu, vision tower openai/clip-vit-large-patch14-336, select layer -2,
#   --group_by_modality_length True.
# Every path below can be overridden from the environment, e.g. NUM_GPUS=4 ./train-lora.sh
set -euo pipefail
HERE="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"

LLAVA_DIR="\${LLAVA_DIR:-$PWD/LLaVA}"               # git clone https://github.com/haotian-liu/LLaVA (pip install -e ".[train]")
LLAMA_CPP_DIR="\${LLAMA_CPP_DIR:-$PWD/llama.cpp}"   # git clone https://github.com/ggml-org/llama.cpp (pip install -r requirements.txt)
BASE_MODEL="\${BASE_MODEL:-liuhaotian/llava-v1.5-7b}" # the released LLaVA-1.5 checkpoint the GGUF base came from
DEFAULT_DATA=${shellQuote(options.data)}
DEFAULT_IMAGE_FOLDER=${shellQuote(options.imageFolder)}
DATA="\${DATA:-$DEFAULT_DATA}"
IMAGE_FOLDER="\${IMAGE_FOLDER:-$DEFAULT_IMAGE_FOLDER}"
OUTPUT_DIR="\${OUTPUT_DIR:-$HERE/checkpoints/${name}}"
CLIP_DIR="\${CLIP_DIR:-$PWD/clip-vit-large-patch14-336}" # huggingface-cli download openai/clip-vit-large-patch14-336 --local-dir "$CLIP_DIR"
NUM_GPUS="\${NUM_GPUS:-8}"
PER_DEVICE_BATCH="\${PER_DEVICE_BATCH:-16}"
GLOBAL_BATCH=128
GRAD_ACCUM=$(( GLOBAL_BATCH / (NUM_GPUS * PER_DEVICE_BATCH) ))
if [ "$GRAD_ACCUM" -lt 1 ]; then GRAD_ACCUM=1; fi

# ---- 1. LoRA fine-tuning in LLaVA's trainer ---------------------------------------------------
deepspeed --num_gpus "$NUM_GPUS" "$LLAVA_DIR/llava/train/train_mem.py" \\
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
    --per_device_train_batch_size "$PER_DEVICE_BATCH" \\
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
# The converter needs the base model's config; LLaVA's names the architecture LlavaLlamaForCausalLM,
# which llama.cpp's converter does not know, so it gets a copy that says LlamaForCausalLM.
# LLaVA's LoRA targets only the language model's linear layers, which is what a GGUF LoRA can hold.
BASE_DIR="\${BASE_DIR:-$(python3 -c 'import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1], allow_patterns=["*.json", "tokenizer.model"]))' "$BASE_MODEL")}"
CONFIG_DIR="$OUTPUT_DIR/base-config-for-gguf"
mkdir -p "$CONFIG_DIR"
python3 - "$BASE_DIR" "$CONFIG_DIR" <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for name in os.listdir(src):
    if name.endswith(".json") or name == "tokenizer.model":
        shutil.copy(os.path.join(src, name), dst)
path = os.path.join(dst, "config.json")
config = json.load(open(path))
config["architectures"] = ["LlamaForCausalLM"]
config["model_type"] = "llama"
json.dump(config, open(path, "w"), indent=2)
PY
python3 "$LLAMA_CPP_DIR/convert_lora_to_gguf.py" --base "$CONFIG_DIR" --outtype f16 \\
    --outfile "$OUTPUT_DIR/${name}-f16.gguf" "$OUTPUT_DIR"

# ---- 3. The projector was trained too (--mm_projector_lr): a new mmproj GGUF from it ------------
python3 - "$OUTPUT_DIR" <<'PY'
import sys, torch
out = sys.argv[1]
weights = torch.load(f"{out}/non_lora_trainables.bin", map_location="cpu")
projector = {k.replace("base_model.model.", "", 1): v.float() for k, v in weights.items() if "mm_projector" in k}
torch.save(projector, f"{out}/llava.projector")
PY
python3 "$LLAMA_CPP_DIR/tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py" \\
    -m "$CLIP_DIR" --llava-projector "$OUTPUT_DIR/llava.projector" --output-dir "$OUTPUT_DIR" --clip-model-is-vision

echo
echo "Adapter: $OUTPUT_DIR/${name}-f16.gguf"
echo "mmproj:  $OUTPUT_DIR/mmproj-model-f16.gguf"
echo "Next:    srf-native run --model <the same base text GGUF> --mmproj $OUTPUT_DIR/mmproj-model-f16.gguf \\\\"
echo "           --lora $OUTPUT_DIR/${name}-f16.gguf${options.purpose === 'refine' ? ` --round ${round + 1} --merge-with "$DATA"` : ''} --images ... --out ..."
echo "(Or merge instead: LLaVA's scripts/merge_lora_weights.py, then llama.cpp's LLaVA conversion, docs/multimodal/llava.md.)"
`;
}
