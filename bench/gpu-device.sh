#!/usr/bin/env bash
# The real-GPU run in one script (see bench/README.md, "Real GPU run"):
#   1. a Node binary (the machine's own, or the one carried in bench/.carry/node.xz),
#   2. the Vulkan loader and NVIDIA's Vulkan driver found (or carried .deb files unpacked),
#   3. a WebGPU adapter probed through Dawn — fail fast with the reason when there is none,
#   4. bench/gpu-compare.mjs (ours vs TensorFlow.js WebGPU on the same Dawn device),
#   5. the same workloads in PyTorch/CUDA (bench/peers/torch_gpu.py),
#   6. the main job (phantom.json) trained with --backend webgpu,
# everything written to $OUT (default ./gpu-out). Stages have time limits so the
# whole run stays under 8 minutes.
#
#   bash bench/gpu-device.sh                       # on the GPU machine
#   bash bench/gpu-device.sh --skip-torch --allow-software --steps 20 --reps 1   # here, on llvmpipe
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
OUT="${OUT:-$root/gpu-out}"
skip_torch=0 allow_software=0 steps=1000 reps=5 bench_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-torch) skip_torch=1 ;;
    --allow-software) allow_software=1 ;;
    --steps) steps="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --only) bench_only="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu-device.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
log() { echo "[gpu-device $(date -u +%H:%M:%S)] $*" | tee -a "$OUT/gpu-device.log" >&2; }
die() { log "FAILED: $*"; exit 1; }
t_start=$(date +%s)

# ---- 1. node
NODE="$(command -v node || true)"
if [ -n "$NODE" ] && ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then NODE=""; fi
if [ -z "$NODE" ]; then
  carried="$here/.carry/node.xz"
  [ -f "$carried" ] || die "no Node >= 20 on PATH and no carried binary at $carried (make it with: xz -T0 -9 -c \"\$(command -v node)\" > bench/.carry/node.xz)"
  command -v xz >/dev/null || python3 -c 'import lzma' 2>/dev/null || die "cannot unpack $carried: neither xz nor Python's lzma is available"
  mkdir -p "$OUT/.bin"
  if command -v xz >/dev/null; then xz -dc "$carried" > "$OUT/.bin/node"; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$carried" "$OUT/.bin/node"; fi
  chmod +x "$OUT/.bin/node"
  NODE="$OUT/.bin/node"
fi
log "node: $NODE ($("$NODE" --version))"
[ -f "$root/packages/largo/dist/cli.js" ] || die "packages/*/dist is missing: run 'npm run build' before carrying the tree"
[ -d "$root/node_modules/webgpu" ] || die "node_modules/webgpu is missing: the tree must carry node_modules (npm ci) with it"

# ---- 2. Vulkan loader and driver (Dawn's default backend on Linux)
extra_root="$OUT/.root"
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  debs=$(ls "$here"/.carry/debs/*.deb 2>/dev/null || true)
  if [ -n "$debs" ]; then
    mkdir -p "$extra_root"
    for d in $debs; do dpkg-deb -x "$d" "$extra_root" || die "could not unpack $d"; done
    export LD_LIBRARY_PATH="$extra_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "Vulkan loader: unpacked $(echo $debs | wc -w) carried package(s) into $extra_root"
  else
    log "warning: no libvulkan.so.1 on this machine and no carried bench/.carry/debs/*.deb (apt-get download libvulkan1); Dawn will not find Vulkan"
  fi
fi
# NVIDIA's Vulkan driver lives in libGLX_nvidia.so.0; containers often mount it without the ICD manifest
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  glx="$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0/{print $NF; exit}')"
  if [ -n "$glx" ]; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" > "$OUT/nvidia_icd.json"
    export VK_ICD_FILENAMES="$OUT/nvidia_icd.json"
    log "Vulkan ICD: wrote $OUT/nvidia_icd.json for $glx"
  fi
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1 && log "nvidia-smi: $(cat "$OUT/nvidia-smi.txt")"

# ---- 3. adapter probe
cd "$root"
probe=$(timeout 60 "$NODE" --input-type=module -e "
const { selectBackend } = await import('largo');
try { const s = await selectBackend(process.argv[1] === '1' ? 'webgpu' : 'auto'); console.log(JSON.stringify(s)); }
catch (e) { console.log(JSON.stringify({ error: e.message })); }
" "$allow_software" 2>"$OUT/probe.stderr")
log "adapter probe: $probe"
case "$probe" in
  *'"name":"webgpu"'*) ;;
  *) die "no usable WebGPU adapter (${probe:-probe timed out}); see $OUT/probe.stderr. On an NVIDIA machine Dawn needs libvulkan1 and the NVIDIA Vulkan ICD; --allow-software accepts llvmpipe" ;;
esac

# ---- 4. our WebGPU kernels vs TensorFlow.js WebGPU
left() { echo $(( 480 - ($(date +%s) - t_start) )); }
log "gpu-compare (budget $(left) s)"
# half of what is left (two thirds without PyTorch), the rest for PyTorch and training
share=2; [ "$skip_torch" = 1 ] && share=3
timeout $(( $(left) * (share - 1) / share )) "$NODE" bench/gpu-compare.mjs --reps "$reps" ${bench_only:+--only "$bench_only"} --out "$OUT/gpu-compare" > "$OUT/gpu-compare.log" 2>&1 \
  && log "gpu-compare: $OUT/gpu-compare.md" || log "gpu-compare failed or ran out of time (exit $?); see $OUT/gpu-compare.log"

# ---- 5. PyTorch / CUDA
if [ "$skip_torch" = 1 ]; then log "PyTorch/CUDA skipped (--skip-torch)"
else
  timeout $(( $(left) / 3 )) python3 bench/peers/torch_gpu.py "$OUT/torch-cuda.json" --reps "$reps" > "$OUT/torch-cuda.log" 2>&1 \
    && log "torch-cuda: $OUT/torch-cuda.json" || log "PyTorch/CUDA failed (exit $?); see $OUT/torch-cuda.log"
fi

# ---- 6. the main job on the GPU
budget=$(( $(left) - 20 ))
[ "$budget" -gt 30 ] || die "no time left for training"
log "train phantom.json --backend webgpu --steps $steps (budget $budget s)"
timeout "$budget" "$NODE" packages/largo/dist/cli.js train --config packages/largo/configs/phantom.json --backend webgpu \
  --steps "$steps" --checkpoint-every 25 --out "$OUT/runs" --run-name gpu --plain > "$OUT/train.md" 2> "$OUT/train.log"
rc=$?
if [ $rc -eq 0 ]; then log "trained: $OUT/runs/gpu (table in $OUT/train.md)"
elif [ $rc -eq 124 ]; then log "training stopped at the time limit; the last checkpoint is in $OUT/runs/gpu (resume with --resume)"
else log "training failed (exit $rc); see $OUT/train.log"; fi
log "done in $(( $(date +%s) - t_start )) s; results in $OUT"
