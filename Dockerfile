# The project image: the `bench` service (pytest benchmarks -n 4), the `api` service
# (titanic-bench serve) and, in the `cluster` profile, the Dask scheduler, workers and
# bench-cluster of docker-compose.yml. The package installs with the versions
# pyproject.toml pins, with its `dask` extra; pytest-xdist is the one dev extra the
# benchmark run needs.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# pytest runs from /app: pyproject.toml holds the ini (bench_paths) and the root conftest.
COPY pyproject.toml README.md conftest.py ./
COPY titanic_bench ./titanic_bench
COPY benchmarks ./benchmarks
RUN pip install ".[dask]" "pytest-xdist>=3.6" && rm -rf build

RUN useradd --create-home --uid 1000 bench \
    && mkdir -p /state \
    && chown -R bench:bench /state /app
USER bench
ENV TITANIC_BENCH_HOME=/state

EXPOSE 8000
CMD ["pytest", "benchmarks", "-n", "4"]
