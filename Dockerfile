# The streamrec worker image. CPU by default; the GPU encoder builds it on a CUDA PyTorch base:
#   docker build --build-arg BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime --build-arg TORCH=skip .
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG TORCH=cpu
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
RUN if [ "$TORCH" = "cpu" ]; then \
      pip install torch --index-url https://download.pytorch.org/whl/cpu; \
    fi
COPY pyproject.toml README.md ./
COPY streamrec ./streamrec
RUN pip install .
ENV STREAMREC_DATA_DIR=/data STREAMREC_METRICS_HOST=0.0.0.0
VOLUME /data
EXPOSE 9464
ENTRYPOINT ["streamrec"]
CMD ["--help"]
