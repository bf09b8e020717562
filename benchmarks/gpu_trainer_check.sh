# End-to-end check of the GRLO trainer on one GPU (CUDA path: fp32 master weights, bf16 autocast, gradient
# checkpointing, HF rollout, checkpoint at step 2, then a resumed run to step 6). Tiny random Qwen3 policy and tiny
# cross-tokenizer RM, so it measures correctness of the GPU path, not throughput (see ppo_update_bench.py for that).
# Ran on 1 x NVIDIA H200 on 2026-11-26; results in benchmarks/results/ppo_trainer_h200/.
# WHEELS: a folder of wheels for packages missing on the GPU machine (jsonschema, math-verify, ...), default .grlo/whl_rlvr.
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHEELS:-.grlo/whl_rlvr}/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv
W=/tmp/w; mkdir -p $W
python3 -c "
from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
build_tiny_policy('$W/policy', seed=0, hidden_size=256, num_layers=4, num_heads=4)
build_tiny_reward_model('$W/rm', seed=0)" || exit 1
cat > $W/gpu.yaml <<'Y'
grlo:
  device: cuda
  n_gpus_per_node: 1
  param_dtype: float32
  compute_dtype: bfloat16
  total_training_steps: 4
  save_freq: 2
  train_batch_size: 8
  max_prompt_length: 256
  max_response_length: 64
  actor: {lr: 1.0e-5, ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2, gradient_checkpointing: true}
  critic: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2, gradient_checkpointing: true}
  rollout: {engine: hf, batch_size: 8}
  reward: {micro_batch_size: 8, dtype: bfloat16}
Y
C="config/config.yaml config/smoke.yaml $W/gpu.yaml"
run() { python3 -m grlo.cli train-grlo --config $C --backbone qwen3-4b-base --prompts grlo/data/fixtures/grlo_prompts_smoke.jsonl --policy-init $W/policy --reward-model $W/rm --output-dir $W/ck --device-record $W/dev.json --no-progress; }
/usr/bin/time -v bash -c "$(declare -f run); C='$C'; W=$W; run" > $W/train.log 2>&1; echo rc=$?
grep -v "^{" $W/train.log | grep -i -E "error|Traceback|Elapsed|Maximum resident" | head -20
cp $W/ck/metrics.jsonl $OUT/ppo_gpu_metrics_run1.jsonl; cp $W/dev.json $OUT/ppo_gpu_device.json; cp $W/train.log $OUT/ppo_gpu_train.log
sed -i 's/total_training_steps: 4/total_training_steps: 6/' $W/gpu.yaml
run > $W/train2.log 2>&1; echo rc2=$?
grep -i -E "error|Traceback|resum" $W/train2.log | head -10
cp $W/ck/metrics.jsonl $OUT/ppo_gpu_metrics_run2.jsonl; cp $W/train2.log $OUT/ppo_gpu_train2.log
ls $W/ck $W/ck/final
python3 - <<'P'
import json
for l in open('/tmp/w/ck/metrics.jsonl'):
    r = json.loads(l); print({k: r.get(k) for k in ('step','reward/score_mean','response_length/mean','critic/vf_loss','actor/pg_clipfrac','time/step','perf/tokens_per_s','perf/max_memory_allocated_gb')})
print(json.load(open('/tmp/w/dev.json')))
P
