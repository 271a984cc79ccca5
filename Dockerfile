# One image for both programs; the compose file picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --create-home --home-dir /var/lib/gridtokenx gridtokenx
WORKDIR /opt/gridtokenx
COPY pyproject.toml README.md LICENSE ./
COPY protocol ./protocol
COPY edge ./edge
COPY central ./central
COPY firmware-config ./firmware-config
ARG EXTRAS=edge,central
RUN pip install --no-cache-dir ".[${EXTRAS}]"
USER gridtokenx
WORKDIR /var/lib/gridtokenx
