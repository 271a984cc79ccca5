# One image for both programs; the compose file picks the command.

# The web app (central/web: React + TypeScript + Vite), built from the committed lock file into central/web/dist,
# which the Python package ships and central serves at / (a fresh clone has no dist: `make web` builds it natively).
FROM node:20-bookworm-slim AS web
WORKDIR /src/central/web
COPY central/web/package.json central/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY central/web/index.html central/web/vite.config.ts central/web/tsconfig.json ./
COPY central/web/src ./src
RUN npm run --silent build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Fixed uid: secret files mounted from the host must be owned by it with mode 0600 (see docker-compose.yml).
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/gridtokenx gridtokenx
WORKDIR /opt/gridtokenx
COPY pyproject.toml README.md LICENSE ./
COPY protocol ./protocol
COPY gtxconfig ./gtxconfig
COPY gtxhsm ./gtxhsm
COPY edge ./edge
COPY central ./central
COPY --from=web /src/central/web/dist ./central/web/dist
COPY firmware-config ./firmware-config
ARG EXTRAS=edge,central
RUN pip install --no-cache-dir ".[${EXTRAS}]"
USER gridtokenx
WORKDIR /var/lib/gridtokenx
