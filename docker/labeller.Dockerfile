# A Geograph labeller worker (CPU). Build from the repository root:
#   docker build -f docker/labeller.Dockerfile -t geocontext-labeller .
# Run one worker (the run folder and, for context tags, the CLIP weights are mounted read-only):
#   docker run -d --restart unless-stopped -v $PWD/runs/final:/models/run:ro \
#     -v $PWD/models/open_clip_pytorch_model.bin:/models/clip.bin:ro geocontext-labeller \
#     label context --endpoint 'https://www.geograph.org.uk/_scripts/labeler.json.php?model=clip' \
#     --run /models/run --pretrained /models/clip.bin --quick-gelu
# `docker stop` sends SIGTERM: the worker posts what it has embedded and exits within one model batch + 5 s
# (the default -t 10 may cut a slow CPU short: give it -t 30). Several containers on one host share its IP:
# give each `--workers N --worker-index I` (README, "Tag the archive").
#
# CUDA variant: start FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 (with python3 and python3-venv
# from apt), install the same requirements (the PyPI torch wheel already carries its CUDA runtime), and
# run with `docker run --gpus all ... --device cuda --batch-size 256`: the model runs in fp16 autocast
# and the embeddings are still posted as float32.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GEOCONTEXT_PROGRESS=0 \
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=4

WORKDIR /opt/geocontext
# CPU-only torch wheels keep the image ~1.5 GB smaller than PyPI's CUDA build; same versions as requirements.txt.
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.15.0+cpu torchvision==0.29.2+cpu \
 && grep -vE '^(torch|torchvision|kaggle|six|matplotlib|pytest)==' requirements.txt > worker-requirements.txt \
 && pip install -r worker-requirements.txt

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . && useradd --system --uid 10001 labeller
USER labeller
# The spooled records of a post that could not be delivered (a 4xx) land in the working folder.
WORKDIR /home/labeller

ENTRYPOINT ["geocontext"]
CMD ["label", "--help"]
