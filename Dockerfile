# One image for both programs; the compose file picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Fixed uid: secret files mounted from the host must be owned by it with mode 0600 (see docker-compose.yml).
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/gridtokenx gridtokenx
WORKDIR /opt/gridtokenx
COPY pyproject.toml README.md LICENSE ./
COPY protocol ./protocol
COPY gtxconfig ./gtxconfig
COPY edge ./edge
COPY central ./central
COPY firmware-config ./firmware-config
ARG EXTRAS=edge,central
RUN pip install --no-cache-dir ".[${EXTRAS}]"
USER gridtokenx
WORKDIR /var/lib/gridtokenx
