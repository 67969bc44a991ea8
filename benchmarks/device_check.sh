#!/usr/bin/env bash
# glore's checks on a lent GPU, in one run of under 8 minutes: the GloRe unit's autocast matrix on CUDA, the first
# steps of every shipped recipe on CUDA as shipped (bf16, channels_last), torch.compile on a GloRe network, and
# GloRe / plain throughput ratios. Everything it prints goes to $OUT/device_check.log too; paste the ratios into
# docs/benchmarks.md with the date and the device.
#
# Prepare here, once (the device image has torch, torchvision, pytest, pyyaml, safetensors, tensorboard, matplotlib,
# but not PyAV or cityscapesscripts):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#       av cityscapesscripts appdirs pyquaternion coloredlogs humanfriendly typing
# then call the device tool's run with carry [".whl"] and the command `bash benchmarks/device_check.sh`.
set -uo pipefail
OUT=${OUT:-/tmp/glore_device_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:$PWD/tests:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
START=$SECONDS

step() {  # step SECONDS TITLE COMMAND...: run one check under its own time limit, say how it ended
    local limit=$1 title=$2
    shift 2
    echo
    echo "=== $title (limit ${limit}s, at $((SECONDS - START))s)"
    timeout "$limit" "$@"
    echo "=== $title: exit $?"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

# 1. The unit under CUDA autocast: every order x mode x dtype against float32 (the CUDA cases of the test file).
step 90 "GloRe autocast matrix" python3 -m pytest -q -p no:cacheprovider tests/layers/test_glore_autocast.py

# 2. Every recipe as shipped, first steps on CUDA (train.device auto takes the GPU): bf16 autocast, channels_last,
#    resume, eval in the recipe's inference mode, predict.
step 210 "recipe matrix on CUDA" python3 -m pytest -q -p no:cacheprovider -x tests/tasks/test_recipe_matrix.py

# 3. torch.compile on a GloRe network through the engine (bf16, channels_last), one short run of the demo recipe.
step 120 "torch.compile" python3 -m glore.cli train configs/demo.yaml --output "$OUT/compile_run" --overwrite \
    --set train.device=cuda --set train.compile=true --set train.amp=bfloat16 --set train.channels_last=true \
    --set train.epochs=1 --set train.progress=plain

# 4. Throughput: GloRe against the plain networks and channels-last against contiguous, ratios measured in one run.
step 60 "memory format" python3 benchmarks/bench_memory_format.py --device cuda --batch 8 --dtype bfloat16 --repeats 5
step 120 "video networks" python3 benchmarks/bench_video_models.py --device cuda --batch 8 --dtype bfloat16 --repeats 5
step 60 "segmentation heads" python3 benchmarks/bench_segmentation.py --part heads --device cuda --dtype bfloat16

echo
echo "device_check.sh: done in $((SECONDS - START))s; log in $OUT/device_check.log"
