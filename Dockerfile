# One image for the API and the workers. JAX_EXTRA picks the accelerator build of jaxlib
# ("cuda12" for NVIDIA GPUs; empty for CPU only).
FROM python:3.11-slim
ARG JAX_EXTRA=cuda12
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lrsched ./lrsched
COPY service ./service
COPY worker ./worker
RUN pip install . && if [ -n "$JAX_EXTRA" ]; then pip install "jax[$JAX_EXTRA]"; fi
RUN useradd --create-home lrsched && mkdir -p /data && chown lrsched /data
USER lrsched
EXPOSE 8000
CMD ["lrsched", "serve", "--host", "0.0.0.0", "--port", "8000"]
