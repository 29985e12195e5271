# The streamrec worker image. CPU by default; the GPU encoder builds it on a CUDA PyTorch base:
#   docker build --build-arg BASE=pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime --build-arg TORCH=skip .
ARG BASE=python:3.11-slim
FROM ${BASE}
# `cpu` installs the CPU build of torch (the default index would pull the multi-GB CUDA one);
# `skip` keeps the torch of a base image that already has it.
ARG TORCH=cpu
# The version the test suite runs (see Makefile).
ARG TORCH_VERSION=2.13.0
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
RUN if [ "$TORCH" = "cpu" ]; then \
      pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu; \
    fi
COPY pyproject.toml README.md ./
COPY streamrec ./streamrec
RUN pip install . \
    && useradd --create-home --uid 10001 streamrec \
    && mkdir -p /data && chown streamrec /data
# Named volumes mounted on /data start with this ownership, so the worker needs no root.
USER streamrec
ENV STREAMREC_DATA_DIR=/data STREAMREC_METRICS_HOST=0.0.0.0
VOLUME /data
EXPOSE 9464
ENTRYPOINT ["streamrec"]
CMD ["--help"]
