# One image for every postop service: `docker run IMAGE <ingest|gateway|api|db migrate|...>`.
FROM python:3.11-slim-bookworm
RUN pip install --no-cache-dir uv==0.13.* \
 && useradd --system --create-home --home-dir /app postop
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY vitals vitals
COPY store store
COPY firmware-sim firmware-sim
COPY gateway gateway
COPY ingest ingest
COPY alerts alerts
COPY api api
COPY postop postop
COPY bench bench
RUN uv sync --frozen --no-dev && chown -R postop /app
USER postop
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
ENTRYPOINT ["postop"]
CMD ["--help"]
